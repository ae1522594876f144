"""The planning pipeline: load -> facts -> solve -> decode -> order -> schedule.

``make_plan`` is the one entry point. "No plan exists" is an outcome with an
explanation, not an exception; exceptions are for bad input (DiagnosticsError).
"""

from __future__ import annotations

import difflib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from clingo import ast

import policies
from domain.errors import Diagnostic, DiagnosticsError, first_of
from domain.gcpause import paused_gc
from domain.model import Model
from domain.project import POLICY_CACHE, Project, display_path, input_name
from domain.secrets import scrub
from domain.yamlsrc import Source
from planner.bounded import LIMIT_HINTS, memory_for, solve_bounded, workers_for
from planner.decode import Decoded, decode, op_id
from planner.explain import Explanation, conflicts_from, explain_cycle
from planner.facts import keep_placements, model_facts
from planner.lint import lint, vocabulary_lint
from planner.parameters import apply_parameters
from planner.plan import (
    FORMAT_VERSION,
    PLACEMENTS,
    CostLevel,
    Edge,
    Group,
    InputFile,
    Plan,
    PlannedOperation,
    ResourceChange,
    Status,
    Violation,
    maker,
    trusted,
)
from planner.program import Program, load_program
from planner.schedule import schedule
from planner.slice import Scope
from planner.slice import prune as prune_model
from planner.solve import SolveResult


@dataclass
class Outcome:
    """The answer to one planning request."""

    status: Status  # a plan comes with optimal or satisfiable only
    plan: Plan | None = None
    explanation: Explanation | None = None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    #: "no plan": the whole model's facts it was solved on, for a caller that searches them again
    #: (``ordo explain``'s goals to give up), which need not make them a second time
    facts: list[str] | None = field(default=None, repr=False)
    #: what the solver was given: a slice of the model, or the whole model and why (planner/slice.py)
    scope: Scope | None = None
    #: a timeout called before the limit: the seconds grounding the model's parts was expected to take
    needs: float = 0.0


def library_files(names: list[str], src: Source) -> tuple[list[tuple[Path, str, str]], list[Diagnostic]]:
    """(path, display name, origin) of the base library and the named stock
    policies, and a diagnostic (pointing into ordo.yaml) for each name that is
    not a stock policy."""
    stock = policies.library()
    problems = []
    files = [(p, f"<base>/{p.name}", "base") for p in policies.base_files()]
    for index, name in enumerate(names):
        if name not in stock:
            close = difflib.get_close_matches(name, list(stock), n=1)
            detail = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(stock)}"
            summary = f"unknown library policy '{name}'"
            problems.append(src.diagnostic(("policies", "library", index), summary, detail))
            continue
        files.append((stock[name], f"<library>/{stock[name].name}", "library"))
    return files, problems


def all_policy_files(names: list[str], paths: list[Path], root: Path,
                     src: Source) -> tuple[list[tuple[Path, str, str]], list[Diagnostic]]:
    """(path, display name, origin) of base, library and project policy files,
    and the problems with the library names."""
    files, problems = library_files(names, src)
    files += [(path, display_path(path, root), "project") for path in paths]
    return files, problems


def policy_files(project: Project) -> list[tuple[Path, str, str]]:
    files, problems = all_policy_files(project.library, project.policy_files, project.root, project.source)
    if problems:
        raise DiagnosticsError(problems)
    model = project.model
    if model.planned or model.failed or model.refused:
        files += [(p, f"<replan>/{p.name}", "base") for p in policies.replan_files()]
    return files


def checked_program(files: list[tuple[Path, str, str]], root: Path, levels: dict, src: Source | None,
                    model: Model | None = None, parameters: dict | None = None, *, warn: bool = True) -> Program:
    """The one policy pipeline of check, plan, apply, test, whatif and explain:
    parse the files (expanding ``#include``), apply the project's enforcement
    levels and the stock policies' parameters (planner/parameters.py), lint
    (planner/lint.py; the vocabulary too when there is a model, unless ``warn`` is False). Every
    problem, error or warning, is in ``program.diagnostics``; nothing is
    grounded, so nothing a refused policy says has run. A file that does not
    parse hides nothing the lint finds in the others: they are linted all the same (unsafe
    variables, found by grounding, wait until every file parses: planner/check.py)."""
    program = load_program(files, root)
    unparsed = program.errors
    program.diagnostics += apply_enforcement(program, levels, src)
    program.diagnostics += _levels_without_constraints(program, levels, src)
    program.diagnostics += apply_parameters(program, parameters or {}, src, model, warn=warn)
    program.diagnostics += lint(program, unparsed, root / POLICY_CACHE)
    if model is not None and warn:
        program.diagnostics += vocabulary_lint(program, model)
    program.linted = not unparsed
    return program


def load_policies(project: Project, *, warnings: bool = True) -> Program:
    """The project's policies, refused (DiagnosticsError, with the warnings
    too) on any error ``ordo check`` would report for them. ``warnings``
    False: a caller that shows none skips the checks against the model that
    can only warn (the vocabulary), unless the policies are refused."""
    program = checked_program(policy_files(project), project.root, project.enforcement, project.source,
                              project.model, project.parameters, warn=warnings)
    if program.errors:
        if not warnings:
            return load_policies(project)   # refused: raises, with the warnings, as ordo check reports them
        raise DiagnosticsError(program.diagnostics)
    return program


def apply_enforcement(program: Program, levels: dict, src: Source | None) -> list[Diagnostic]:
    """The project's enforcement levels (ordo.yaml) over the files' headers."""
    problems = []
    by_name: dict[str, list] = {}
    for pfile in program.files:
        by_name.setdefault(pfile.meta.name, []).append(pfile)
    for name, spec in levels.items():
        files = by_name.get(name, [])
        where = ("policies", "enforcement", name)
        if not files:
            names = sorted(n for n, fs in by_name.items() if any(f.origin != "base" for f in fs))
            close = difflib.get_close_matches(name, names, n=1)
            detail = f"did you mean '{close[0]}'?" if close else f"loaded policies: {', '.join(names) or 'none'}"
            if src is not None:
                problems.append(src.diagnostic(where, f"no loaded policy is named '{name}'", detail))
            continue
        for pfile in files:
            if pfile.origin == "base":
                if src is not None:
                    problems.append(src.diagnostic(where, f"'{name}' is part of the base library",
                                                   "the base library is always hard"))
                continue
            pfile.meta = pfile.meta.with_enforcement(spec.level, spec.weight, spec.priority)
    return problems


def _levels_without_constraints(program: Program, levels: dict, src: Source | None) -> list[Diagnostic]:
    """A warning for each policy made soft or advisory (in ordo.yaml or its header) that has no integrity
    constraint for that to act on, nor a preference (a weak constraint or #minimize: prefer-cheaper-region
    is soft so): its orderings bind all the same, and nothing said so (an authoring sweep's)."""
    constrained = {rule.file for rule in program.rules if rule.kind == "constraint"} | {
        f.display for f in program.files if any(s.ast_type == ast.ASTType.Minimize for s in f.statements)}
    files: dict[str, list] = {}
    for pfile in program.files:
        if pfile.origin != "base" and pfile.meta.enforcement in ("soft", "advisory"):
            files.setdefault(pfile.meta.name, []).append(pfile)
    out = []
    for name, pfiles in sorted(files.items()):
        if any(f.display in constrained for f in pfiles):
            continue
        summary = (f"policy '{name}' is {pfiles[0].meta.enforcement}, but it has no integrity constraint "
                   "(':- ...') for that to act on: its other rules (orderings) hold all the same")
        if name in levels and src is not None:
            found = src.diagnostic(("policies", "enforcement", name), summary, code="metadata")
            out.append(replace(found, severity="warning"))
        else:
            out.append(Diagnostic(file=pfiles[0].display, summary=summary, severity="warning", code="metadata"))
    return out


#: The input of a plan's digest that stands for the placements it kept (``make_plan(keep=...)``).
KEPT = "<kept placements>"


def digest(project: Project, program: Program) -> tuple[str, list[InputFile]]:
    inputs = dict(project.inputs)
    inputs.update((input_name(pfile.path, project.root) if pfile.origin == "project" else pfile.display, pfile.sha256)
                  for pfile in program.files)
    listed = [InputFile(path=p, sha256=h) for p, h in sorted(inputs.items())]
    whole = hashlib.sha256("".join(f"{i.path}\0{i.sha256}\n" for i in listed).encode()).hexdigest()
    return f"sha256:{whole}", listed


def limit_hints(timeout: float | None, memory_mb: int | None) -> tuple[str, str]:
    """What a user raises when a limit strikes: the option that gave it (every command that takes a
    limit calls it --timeout, --memory-limit), else the project's setting."""
    return ("--timeout" if timeout is not None else LIMIT_HINTS[0],
            "--memory-limit" if memory_mb is not None else LIMIT_HINTS[1])


@paused_gc()
def make_plan(project: Project, *, timeout: float | None = None, concurrency: int | None = None,
              memory_mb: int | None = None, prune: bool = True, program: Program | None = None,
              deadline: float | None = None, keep: Mapping[str, str] | None = None,
              cancelled: Callable[[], bool] | None = None) -> Outcome:
    """``timeout`` bounds grounding and solving together (default
    settings.solve_timeout), ``memory_mb`` their memory (default
    settings.memory_limit_mb); past either, PlanningLimitError. ``prune``:
    solve only the slice of the model the request changes, where
    planner/slice.py shows that gives the same plan; when the slice has no
    plan, the whole model is solved again, to explain it, in the time left
    (``deadline``, a ``time.monotonic()``). ``program``: the project's
    policies as ``load_policies(project)`` gave them, for a caller that
    needs them too (loaded here otherwise). ``keep``: another plan's
    placements, kept wherever that costs nothing (planner.facts.keep_placements:
    a what-if scenario against its baseline). ``cancelled``: asked while the
    children plan (planner.bounded.solve_bounded); once it says so,
    PlanCancelled."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if program is None:
        program = load_policies(project)
    why = [] if prune else ["the whole model was asked for"]
    sliced = prune_model(program, project.model, project.enforcement, project.parameters, why) if prune else None
    total = len(project.model.resources)
    scope = (Scope(total, sliced.held, len(sliced.parts)) if sliced is not None
             else Scope(total, total, whole=why[0]))
    parts = sliced.parts if sliced is not None else [model_facts(project.model)]
    if keep and sliced is not None:   # each part keeps the placements of its own resources
        parts = [[*facts, *keep_placements({r: keep[r] for r in names if r in keep})]
                 for facts, names in zip(parts, sliced.names, strict=True)]
    elif keep:
        parts = [[*parts[0], *keep_placements(keep)]]
    facts = parts[0] if len(parts) == 1 else []
    timings["load"] = time.perf_counter() - started
    limit = timeout if timeout is not None else project.settings.solve_timeout
    memory = memory_for(project, memory_mb)
    if deadline is None:
        deadline = time.monotonic() + limit
    result, explanation, explained = solve_bounded(program, facts, project.model, timeout=limit, memory_mb=memory,
                                                   deadline=deadline, explain=sliced is None,
                                                   parts=parts if len(parts) > 1 else None,
                                                   workers=workers_for(project, memory), cancelled=cancelled,
                                                   hints=limit_hints(timeout, memory_mb))
    if sliced is not None and result.status == "unsatisfiable":   # explained on the whole model
        whole = make_plan(project, timeout=timeout, concurrency=concurrency, memory_mb=memory_mb, prune=False,
                          program=program, deadline=deadline, keep=keep, cancelled=cancelled)
        return replace(whole, scope=replace(scope, planned=scope.resources, parts=1,
                                            whole="the slice has no plan: the whole model explains why"))
    result.warnings[:0] = program.warnings  # the policies' (ordo check's) first
    timings["ground"] = result.ground_seconds
    timings["solve"] = result.solve_seconds
    if result.status == "timeout":
        return Outcome(status="timeout", timings=timings, warnings=result.warnings, scope=scope, needs=result.needs)
    if result.status == "unsatisfiable":
        timings["explain"] = explained
        return Outcome(status="no_plan", explanation=explanation, timings=timings, warnings=result.warnings,
                       facts=facts, scope=scope)
    started = time.perf_counter()
    decoded = decode(result)
    if sliced is not None:
        decoded.placements.update(sliced.placements)
    cycle = decoded.cycle()
    if cycle:
        return Outcome(status="no_plan", explanation=explain_cycle(cycle, decoded, program.rules),
                       timings=timings, warnings=result.warnings, scope=scope)
    check_references(project.model, decoded)
    if keep:   # what the plan kept is one of its inputs
        kept = hashlib.sha256("".join(f"{r}\t{t}\n" for r, t in sorted(keep.items())).encode()).hexdigest()
        project = replace(project, inputs=sorted({*project.inputs, (KEPT, kept)}))
    plan = build_plan(project, program, result, decoded, concurrency or project.settings.concurrency)
    timings["decode"] = time.perf_counter() - started
    result.warnings += [Diagnostic(summary=f"concurrency group '{name}' has group_limit {value}: a group runs at "
                                           "least one operation at a time, so it is read as 1", severity="warning",
                                   code="schedule") for name, value in sorted(decoded.below_one.items())]
    if decoded.stray:
        result.warnings.append(_stray_order(decoded.stray, decoded.strays, program))
    return Outcome(status=plan.status, plan=plan, timings=timings, warnings=result.warnings, scope=scope)


def _stray_order(stray: list[tuple[str, str, int]], count: int, program: Program) -> Diagnostic:
    """A warning for before/2 atoms whose ends are no operation (``count``, the first of them ``stray``):
    they order nothing (a plan's order is between its operations, op(R,O)), and a cycle of them leaves
    no plan."""
    first = program.rules[stray[0][2]]
    shown = first_of([f"{a} before {b}" for a, b, _ in stray], 5, count)
    return Diagnostic(file=first.file, line=first.line, summary=f"before/2 orders what is no operation: {shown}",
                      detail="an order is between operations, before(op(R1,O1),op(R2,O2)); these order nothing",
                      severity="warning", code="ordering")


def check_references(model: Model, decoded: Decoded) -> None:
    """Every output a planned operation's params read must come from an
    operation in this plan or be known already (observed). Raises
    DiagnosticsError at the param, so a missing value is found now, not mid-run."""
    planned = {res for res, _ in decoded.ops.values()}
    problems = []
    for name in sorted(planned):
        res = model.resources[name]
        kind = model.kinds[res.type]
        if decoded.goals.get(name, res.current) == kind.initial:
            continue  # going away: its params are not sent
        for ref in res.refs:
            producer = model.resources[ref.producer]
            if ref.output in producer.attributes:
                continue
            if ref.operation and op_id(ref.producer, ref.operation) in decoded.ops:
                continue
            how = f"its '{ref.operation}' operation is not in this plan" if ref.operation else "no operation returns it"
            problems.append(Diagnostic(
                file=ref.file, line=ref.line, column=ref.column, path=f"{name}.params.{ref.param}",
                summary=f"'{name}' reads {ref.text}, which has no value",
                detail=f"'{ref.producer}' is {producer.current}, no value was observed, and {how}",
                code="reference"))
    if problems:
        raise DiagnosticsError(problems)


def _reason(model: Model, name: str, goal: str, why: dict[str, list[str]]) -> str:
    res = model.resources[name]
    causes = why.get(name, [])
    if "request" in causes:
        text = f"requested: {goal} (now {res.current})"
    elif causes and causes[0].startswith("part of"):
        text = f"{causes[0]}: {goal} (now {res.current})"
    else:
        text = f"to reach {goal} (now {res.current})"
    if "changed" in causes:
        text += f"; params changed: {', '.join(res.changed_params())}"
    return text


def _actions(model: Model, name: str, goal: str, ops: list[str]) -> tuple[str, ...]:
    res = model.resources[name]
    kind = model.kinds[res.type]
    if res.current == kind.initial and goal != kind.initial:
        return ("create",)
    if goal == kind.initial and res.current != kind.initial:
        return ("delete",)
    if any(map(kind.tears_down, ops)):   # down, and up again: replaced
        return ("delete", "create")
    if res.current == goal:
        if any(o == kind.update for o in ops):
            return ("update",)
        return ("run",)
    return ("change",)


def build_plan(project: Project, program: Program, result: SolveResult, decoded: Decoded,
               concurrency: int) -> Plan:
    """The plan of a decoded answer. Its parts are made with ``planner.plan.trusted``
    (no validation: names come from the validated model, the rest is computed
    here); the placements the policies chose and the small parts are validated."""
    model = project.model
    resources = model.resources
    op_of = {oid: model.kinds[resources[res].type].operation(opname) for oid, (res, opname) in decoded.ops.items()}
    duration = {oid: op.duration for oid, op in op_of.items()}
    ctrl = {oid: op.controller for oid, op in op_of.items()}
    limits = {name: c.concurrency for name, c in model.controllers.items() if c.concurrency}
    op_groups = {oid: decoded.groups[res] for oid, (res, _) in decoded.ops.items() if res in decoded.groups}
    sched = schedule(decoded.successors, duration, ctrl, concurrency, limits, op_groups, decoded.group_limits,
                     order=decoded.order)
    wave_of: dict[str, int] = {}
    per_resource: dict[str, list[str]] = {}
    for number, wave in enumerate(sched.waves, start=1):   # each wave sorted: by (wave, id)
        for oid in wave:
            wave_of[oid] = number
            per_resource.setdefault(decoded.ops[oid][0], []).append(oid)
    reasons = {res: _reason(model, res, decoded.goals.get(res, resources[res].current), decoded.why)
               for res in per_resource}
    new_op, new_change, new_edge = maker(PlannedOperation), maker(ResourceChange), maker(Edge)
    operations = tuple(
        new_op(id=oid, resource=res, type=resources[res].type, operation=opname,
                from_state=op.from_state, to_state=op.to_state, controller=op.controller,
                duration=float(op.duration), wave=wave_of[oid], reason=reasons[res])
        for oid, (res, opname), op in ((oid, decoded.ops[oid], op_of[oid]) for oid in sorted(decoded.ops)))
    changes = []
    for res, ids in sorted(per_resource.items()):
        r = resources[res]
        goal = decoded.goals.get(res, r.current)
        changes.append(new_change(
            resource=res, type=r.type,
            actions=_actions(model, res, goal, [decoded.ops[i][1] for i in ids]), before=r.current, after=goal,
            # where it is placed anew: newly, or elsewhere than it is (moved)
            placement=placed if (placed := decoded.placements.get(res)) != r.placement else None,
            operations=tuple(ids),
            reason=reasons[res]))
    where: dict[frozenset[int], tuple[str, ...]] = {}
    edges = []
    for (a, b), idx in decoded.edges.items():   # sorted by decode
        key = frozenset(idx)
        if key not in where:
            where[key] = tuple(sorted({program.rules[i].location for i in idx}))
        edges.append(new_edge(before=a, after=b, rules=where[key]))
    placements = PLACEMENTS.validate_python({r: t for r, t in sorted(decoded.placements.items())})
    members: dict[str, list[str]] = {}
    for oid, gs in sorted(op_groups.items()):
        for g in gs:
            members.setdefault(g, []).append(oid)
    groups = tuple(Group(name=g, limit=decoded.group_limits[g], operations=tuple(ids))
                   for g, ids in sorted(members.items()))
    bounds = result.bound if result.status == "satisfiable" and result.bound else [None] * len(result.cost)
    cost = tuple(CostLevel(priority=p, cost=c, bound=b)
                 for p, c, b in zip(result.priorities, result.cost, bounds, strict=False))
    violations = tuple(Violation(
        policy=c.policy, enforcement=c.enforcement, file=c.file, line=c.line, description=c.description,
        rule=c.rule, bindings=dict(c.bindings), resources=c.resources)
        for c in conflicts_from(result.symbols, program, model, levels=("soft", "advisory"),
                                placements=decoded.placements))   # a slice's answer places only its own
    dig, inputs = digest(project, program)
    return trusted(
        Plan, format_version=FORMAT_VERSION, status=result.status,
        request=project.model.request_name or scrub(project.request_file or ""),
        request_file=input_name(project.request_path, project.root) if project.request_path is not None else "",
        inventory_file=input_name(project.inventory_file, project.root) if project.inventory_file else "",
        digest=dig, inputs=tuple(inputs),
        resource_changes=tuple(changes), operations=operations, edges=tuple(edges),
        waves=tuple(tuple(w) for w in sched.waves), placements=placements, cost=cost,
        makespan=float(sched.makespan), critical_path=float(sched.critical_path), concurrency=concurrency,
        groups=groups, violations=violations, ground_atoms=result.atoms, ground_rules=result.rules)
