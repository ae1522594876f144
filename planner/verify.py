"""Is a saved plan one ordo would carry out from the project as it is now?

A plan file may come from elsewhere, or be edited by hand: its digest only
says which inputs it claims to be made from. Plans are deterministic, so
``verify_saved_plan`` plans again from the same inputs and requires the saved
plan to be that plan, field for field (all but the grounder's statistics):
operations, edges, placements, waves, groups, resource changes, cost.

When the solver's time limit cut the optimisation short (status
``satisfiable`` with an objective, on either side) or the new plan timed
out, another answer is legitimate. Then the saved placements (the base
library's choice; a request that orders siblings by priority adds another,
which of those orders to keep, that is not fixed here: such a plan cut short
is refused unless ordo keeps the same ones) are fixed and the rest is planned from them:
the hard policies must hold for them, and everything else (the operations
the lifecycles give, the precedences the policies require, the schedule,
and the cost, unless that plan too was cut short) must come out as saved.
A hard policy the saved placements break is named.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import quoted
from domain.limits import MOST_AT_ONCE
from domain.project import Project
from planner.core import build_plan, check_references, digest, load_policies, make_plan
from planner.decode import decode, find_cycle
from planner.explain import explain_no_plan
from planner.facts import model_facts
from planner.plan import MAX_PROBLEMS, Plan, cost_text
from planner.program import Program
from planner.solve import solve

#: Fields that describe the grounding or the file, not the plan: never compared (the format's version:
#: a plan saved by the ordo before is the same plan; the files it was made from: the digest checked them).
UNCOMPARED = frozenset({"ground_atoms", "ground_rules", "format_version", "request_file", "inventory_file"})
#: What may differ when the saved placements stand in for an optimisation that was cut short.
SEARCH = frozenset({"status", "cost"})

FIXED_PLACEMENTS = """
:- place(R,T), not __saved_place(R,T).
:- __saved_place(R,T), not place(R,T).
"""


class PlanRefused(DiagnosticsError):
    """A saved plan that is stale, or not the plan ordo makes from the inputs."""


def verify_saved_plan(project: Project, plan: Plan, source: str, *, timeout: float | None = None,
                      program: Program | None = None) -> None:
    """Raise PlanRefused unless ``plan`` is what ordo plans from ``project`` (``program``: its
    policies, when the caller has loaded them already)."""
    if plan.status not in ("optimal", "satisfiable"):
        raise _refuse(source, "status", f"the saved plan has status '{plan.status}'; there is nothing to apply")
    if plan.concurrency > MOST_AT_ONCE:   # (as settings, --concurrency and the service bound it)
        raise _refuse(source, "concurrency", f"the saved plan runs {plan.concurrency:,} operations at once; "
                                             f"ordo plans at most {MOST_AT_ONCE:,}")
    program = program if program is not None else load_policies(project)
    now, inputs = digest(project, program)
    if now != plan.digest:
        before = {i.path: i.sha256 for i in plan.inputs}
        after = {i.path: i.sha256 for i in inputs}
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        if plan.format_version in ("1.0", "1.1"):   # (read with the project's own files: they may not be its)
            raise _refuse(source, "digest", f"the plan is stale: {', '.join(changed) or 'its digest'} differ from "
                          f"what it was made from (a plan of format {plan.format_version} names no request or "
                          "inventory file, so the project's own were read); plan again")
        # (what the plan says it was made from and what it holds, told apart from inputs changed since: each
        # of these said "stale ... changed since it was made", wrong advice for an edited or foreign plan, an
        # operator's sweep)
        named = [("request_file", plan.request_file), ("inventory_file", plan.inventory_file)]
        for field_name, name in named:
            if name and name not in before:
                raise _refuse(source, field_name, f"the plan names {name} as its {field_name.split('_')[0]}, but "
                                                  "was not made from it (an edited plan); plan again")
        if not changed:
            raise _refuse(source, "digest", "the plan's digest is not the one of the inputs it names (an edited "
                                            "plan); plan again")
        # (ordo names a file by its path from the project folder, ../ where it is outside: a path from / is
        # none it wrote, and /etc/passwd, there, was said to have changed since)
        rooted = sorted(p for p in before if p not in after and PurePosixPath(p).is_absolute())
        if rooted:
            raise _refuse(source, "inputs", f"the plan names inputs by paths ordo does not write ("
                                            f"{', '.join(quoted(p) for p in rooted[:5])}"
                                            f"{', ...' if len(rooted) > 5 else ''}): an edited plan; plan again")
        absent = sorted(p for p in before if p not in after and not (project.root / p).exists()
                        and not p.startswith("<"))
        if absent:
            raise _refuse(source, "inputs", f"the plan was made from files this project does not have ("
                                            f"{', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''}): "
                                            "another project's plan, or files removed since; plan again")
        raise _refuse(source, "digest", f"the plan is stale: {', '.join(changed)} changed since it was made; "
                      "plan again")
    unknown = _unknown_to_catalog(project, plan)
    if unknown:
        raise _refused(source, unknown)
    limit = timeout if timeout is not None else project.settings.solve_timeout
    outcome = make_plan(project, timeout=timeout, concurrency=plan.concurrency, program=program)
    if outcome.status == "no_plan":
        summary = outcome.explanation.summary if outcome.explanation else "no plan exists"
        raise _refuse(source, "", "ordo finds no plan from these inputs, so the saved plan cannot be one", summary)
    fresh, skip, against = outcome.plan, UNCOMPARED, "the plan ordo makes from these inputs"
    if fresh is None or _cut_short(program, fresh) or _cut_short(program, plan):
        fresh, skip = _plan_with_placements(project, program, plan, source, limit), UNCOMPARED | SEARCH
        against = "the plan ordo makes from these inputs with the saved placements"
        # the status and the bound may differ; the cost is what these placements cost, once that is known
        # (a plan that said "satisfiable" and kept the optimum's cost was carried out with dearer placements)
        costs = [(c.priority, c.cost) for c in plan.cost], [(c.priority, c.cost) for c in fresh.cost]
        if not _cut_short(program, fresh) and costs[0] != costs[1]:
            raise _refuse(source, "cost", f"the plan's cost is {cost_text(costs[0])}, what its placements cost "
                                          f"is {cost_text(costs[1])} ({against})")
        # A plan that says the time limit cut it short is taken for that, unless the optimum is proved
        # here and costs less: a file whose status, placements and cost were edited to match was carried
        # out with placements of the editor's choosing (an operator's sweep).
        best = [(c.priority, c.cost) for c in outcome.plan.cost] if outcome.plan is not None else []
        if best and not _cut_short(program, outcome.plan) and _cut_short(program, plan) and best < costs[1]:
            raise _refuse(source, "status", f"the plan says the time limit cut its search short (satisfiable, "
                                            f"cost {cost_text(costs[1])}), but here the optimum is proved, at "
                                            f"{cost_text(best)}: plan again (a plan made where the limit struck "
                                            "first, or one edited)")
    found = differences(plan, fresh, skip)
    if found:
        raise _refused(source, [(p, s.replace("{ordo}", against)) for p, s in found])


def verify_explained_plan(project: Project, plan: Plan, source: str, *, timeout: float | None = None) -> None:
    """Before a saved plan's choices are explained: a plan of the inputs as they are now must be
    the plan ordo makes from them (``verify_saved_plan``: an edited one is refused as ``ordo apply``
    refuses it, not explained as the planner's choice). A plan of other inputs (stale) is
    explained as it is: the explanation names the inputs as changed."""
    program = load_policies(project)
    now, inputs = digest(project, program)
    # (its inputs as they are, its digest edited: refused as ordo apply refuses it, not explained as made from
    # inputs that changed since, a review's)
    if plan.digest == now or {i.path: i.sha256 for i in plan.inputs} == {i.path: i.sha256 for i in inputs}:
        verify_saved_plan(project, plan, source, timeout=timeout, program=program)


def _refuse(source: str, path: str, summary: str, detail: str = "") -> PlanRefused:
    return _refused(source, [(path, summary)], detail)


def _refused(source: str, problems: list[tuple[str, str]], detail: str = "") -> PlanRefused:
    out = [Diagnostic(file=source, path=p, summary=s, detail=detail) for p, s in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        out.append(Diagnostic(file=source, summary=f"and {len(problems) - MAX_PROBLEMS} more problems"))
    return PlanRefused(out)


def _cut_short(program: Program, plan: Plan) -> bool:
    """Did the time limit stop the optimisation (so another plan is as legitimate)?"""
    return program.has_objective and plan.status == "satisfiable"


def _unknown_to_catalog(project: Project, plan: Plan) -> list[tuple[str, str]]:
    """Operations on resources the project does not have, or that their type does not define."""
    model = project.model
    problems = []
    for i, op in enumerate(plan.operations):
        res = model.resources.get(op.resource)
        if res is None:
            problems.append((f"operations[{i}].resource", f"there is no resource '{op.resource}' in the project"))
            continue
        kind = model.kinds[res.type]
        names = sorted(o.name for o in kind.operations)
        if op.operation not in names:
            problems.append((f"operations[{i}].operation", f"'{op.resource}' (type {res.type}) has no operation "
                             f"'{op.operation}' (it has: {', '.join(names)})"))
    for name, target in sorted(plan.placements.items()):
        if name not in model.resources:
            problems.append((f"placements.{name}", f"there is no resource '{name}' in the project"))
        if target not in model.targets:
            problems.append((f"placements.{name}", f"there is no target '{target}' in the inventory"))
    return problems


def _plan_with_placements(project: Project, program: Program, plan: Plan, source: str, limit: float) -> Plan:
    """The plan ordo makes when the saved placements are taken as chosen."""
    saved = [f'__saved_place("{r}","{t}").' for r, t in sorted(plan.placements.items())]
    facts = [*model_facts(project.model), "#defined __saved_place/2.", *saved, FIXED_PLACEMENTS]
    result = solve(program, facts, timeout=limit, keep_control=True)
    control, result.control = result.control, None
    if result.status == "timeout":
        raise _refuse(source, "", f"ordo could not check the saved plan within {limit:g}s", "raise --timeout")
    if result.status == "unsatisfiable":
        why = explain_no_plan(program, facts, project.model, timeout=limit, control=control)
        broken = [("placements", f"the saved placements break the hard policy {c.policy} ({c.location}) for "
                   f"{', '.join(c.resources)}") for c in why.conflicts]
        raise _refused(source, broken) if broken else _refuse(
            source, "placements", "the saved placements are not ones ordo can choose from these inputs", why.summary)
    del control
    decoded = decode(result)
    cycle = find_cycle(decoded.graph)
    if cycle:
        raise _refuse(source, "placements", "with the saved placements the ordering rules form a cycle",
                      " -> ".join(cycle))
    check_references(project.model, decoded)
    return build_plan(project, program, result, decoded, plan.concurrency)


def _name(key: Any) -> str:
    """A key as text; one that is not a plain name (a group named in a policy) is quoted."""
    if isinstance(key, tuple):
        return " -> ".join(_name(part) for part in key)
    plain = isinstance(key, int) or (isinstance(key, str) and key.isprintable() and " " not in key)
    return str(key) if plain else repr(key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _keyed(field: str, what: str, saved: dict[Any, Any], ordo: dict[Any, Any]) -> list[tuple[str, str]]:
    """Differences of two collections keyed by name or number."""
    out = [(field, f"{what} {_name(key)} is not in {{ordo}}") for key in sorted(set(saved) - set(ordo))]
    out += [(field, f"{what} {_name(key)} is missing: {{ordo}} has it") for key in sorted(set(ordo) - set(saved))]
    for key in sorted(set(saved) & set(ordo)):
        mine, theirs, name = saved[key], ordo[key], _name(key)
        if mine == theirs:
            continue
        if isinstance(mine, dict):
            for part in sorted(set(mine) | set(theirs)):
                if mine.get(part) != theirs.get(part):
                    out.append((f"{field}[{name}].{part}", f"{what} {name}: {part} is {_short(mine.get(part))}, "
                                f"{{ordo}} has {_short(theirs.get(part))}"))
        else:
            out.append((f"{field}[{name}]", f"{what} {name} is {_short(mine)}, {{ordo}} has {_short(theirs)}"))
    return out


def differences(saved: Plan, ordo: Plan, skip: frozenset[str] = UNCOMPARED) -> list[tuple[str, str]]:
    """(field path, what differs) between a saved plan and ordo's; each text has
    an ``{ordo}`` slot for the name of ordo's plan."""
    a, b = saved.model_dump(mode="json"), ordo.model_dump(mode="json")
    keyed = {"operations": ("operation", lambda o: o["id"]),
             "edges": ("precedence", lambda e: (e["before"], e["after"])),
             "resource_changes": ("the change of", lambda c: c["resource"]),
             "groups": ("group", lambda g: g["name"])}
    out = []
    for field in a:
        if field in skip or a[field] == b[field]:
            continue
        if field in keyed:
            what, key = keyed[field]
            twice = sorted(k for k, n in Counter(key(x) for x in a[field]).items() if n > 1)
            out += [(field, f"{what} {_name(k)} is listed more than once") for k in twice]
            out += _keyed(field, what, {key(x): x for x in a[field]}, {key(x): x for x in b[field]})
        elif field == "placements":
            out += _keyed(field, "the placement of", a[field], b[field])
        elif field == "waves":
            out += _keyed(field, "wave", {i + 1: w for i, w in enumerate(a[field])},
                          {i + 1: w for i, w in enumerate(b[field])})
        else:
            out.append((field, f"{field} is {_short(a[field])}, {{ordo}} has {_short(b[field])}"))
    return out

