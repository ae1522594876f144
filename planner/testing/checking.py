"""Checking a policy test case's expectations against the planner's outcome."""

from __future__ import annotations

import networkx as nx

from domain.errors import first_of
from domain.policytests import PLAN_KEYS, PolicyExpect
from domain.yamlsrc import PathKey, format_path
from planner.core import Outcome
from planner.explain import Explanation
from planner.plan import Plan
from planner.program import policy_name
from planner.testing.collection import Case
from planner.testing.results import Failure


def _failure(case: Case, where: PathKey, message: str) -> Failure:
    assert case.suite.source is not None
    line, column = case.suite.source.where(where)
    return Failure(file=case.suite.display, line=line, column=column, path=format_path(where[2:]),
                   message=message)


def _named(explanation: Explanation | None) -> dict[str, set[str]]:
    """Policy -> resources, of what a no-plan explanation names."""
    out: dict[str, set[str]] = {}
    if explanation is None:
        return out
    for conflict in explanation.conflicts:
        out.setdefault(conflict.policy, set()).update(conflict.resources)
    return out


def _listing(items: list[str] | set[str]) -> str:
    return ", ".join(sorted(items)) if items else "none"


def check_outcome(case: Case, outcome: Outcome, policy_of: dict[str, str]) -> list[Failure]:
    """The expectations the outcome does not meet. ``policy_of``: policy file -> policy name."""
    expect = case.spec.expect
    where = case.key + ("expect",)
    given = [k for k in PLAN_KEYS if getattr(expect, k) is not None]
    wants = expect.status or ("no_plan" if expect.conflicts is not None else "plan")
    plan = outcome.plan
    if wants == "plan" and plan is None:
        at = where + (("status",) if expect.status else (given[0],))
        summary = outcome.explanation.summary if outcome.explanation else "no plan exists"
        return [_failure(case, at, f"expected a plan; got none: {summary}")]
    if wants == "no_plan" and plan is not None:
        at = where + (("status",) if expect.status else ("conflicts",))
        return [_failure(case, at, f"expected no plan; got one with {len(plan.operations)} operation(s)")]
    if plan is None:
        return _check_conflicts(case, where, outcome, policy_of)
    return _check_plan(case, where, plan)


def _check_conflicts(case: Case, where: PathKey, outcome: Outcome, policy_of: dict[str, str]) -> list[Failure]:
    expected = case.spec.expect.conflicts
    if expected is None:
        return []
    explanation = outcome.explanation
    named = _named(explanation)
    if explanation is not None and explanation.kind == "cycle":
        # An ordering cycle: the policies whose rules make its edges.
        for hop in explanation.cycle_rules:
            for location in hop:
                file = location.rsplit(":", 1)[0]
                named.setdefault(policy_of.get(file, policy_name(file)), set())
    note = f" ({explanation.summary})" if explanation and not named else ""
    return _compare_policies(case, where + ("conflicts",), expected, named,
                             ("the explanation to name", "it names", "named"), note)


def _compare_policies(case: Case, where: PathKey, expected: list[PolicyExpect], got: dict[str, set[str]],
                      words: tuple[str, str, str], note: str = "") -> list[Failure]:
    """Failures where the policies ``got`` (policy -> resources) are not exactly those
    ``expected``, or miss resources an expectation names. ``words``: how to say "expected
    the plan to violate", "it violates" and "violated" (or name, for conflicts)."""
    expect_to, it_does, done = words
    failures = []
    want = {item.policy for item in expected}
    if want != set(got):
        failures.append(_failure(case, where, f"expected {expect_to} {_listing(want)}; {it_does} "
                                              f"{_listing(set(got))}{note}"))
    for index, item in enumerate(expected):
        missing = sorted(set(item.resources) - got.get(item.policy, set()))
        if item.policy in got and missing:
            failures.append(_failure(case, where + (index, "resources"),
                                     f"{item.policy} is not {done} for {', '.join(missing)} "
                                     f"(it is for: {_listing(got[item.policy])})"))
    return failures


def _check_plan(case: Case, where: PathKey, plan: Plan) -> list[Failure]:
    expect = case.spec.expect
    failures: list[Failure] = []
    ops = {op.id: op for op in plan.operations}
    on: dict[str, list[str]] = {}
    for op in plan.operations:
        on.setdefault(op.resource, []).append(op.id)
    for index, text in enumerate(expect.operations or []):
        at = where + ("operations", index)
        if "/" in text and text not in ops:
            res = text.split("/", 1)[0]
            failures.append(_failure(case, at, f"{text} is not in the plan (operations on {res}: "
                                               f"{_listing(on.get(res, []))})"))
        elif "/" not in text and text not in on:
            failures.append(_failure(case, at, f"the plan has no operation on {text}"))
    for index, text in enumerate(expect.absent or []):
        at = where + ("absent", index)
        if "/" in text and text in ops:
            failures.append(_failure(case, at, f"{text} is in the plan (wave {ops[text].wave}: {ops[text].reason})"))
        elif "/" not in text and text in on:
            failures.append(_failure(case, at, f"the plan has operations on {text}: {_listing(on[text])}"))
    if expect.before:
        graph = nx.DiGraph()
        graph.add_nodes_from(ops)
        graph.add_edges_from((e.before, e.after) for e in plan.edges)
        for index, (first, then) in enumerate(expect.before):
            at = where + ("before", index)
            missing = [x for x in (first, then) if x not in ops]
            if missing:
                failures.append(_failure(case, at, f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                                                   "not in the plan"))
            elif not nx.has_path(graph, first, then):
                if nx.has_path(graph, then, first):
                    chain = " -> ".join(nx.shortest_path(graph, then, first))
                    failures.append(_failure(case, at, f"{first} comes after {then}: {chain}"))
                else:
                    failures.append(_failure(case, at, f"no chain of precedences leads from {first} to {then} "
                                                       f"(waves {ops[first].wave} and {ops[then].wave}: they are "
                                                       "not ordered)"))
    for res, targets in (expect.placements or {}).items():
        got = plan.placements.get(res)
        if got not in targets:
            wanted = " or ".join(targets)
            failures.append(_failure(case, where + ("placements", res),
                                     f"expected {res} on {wanted}, got {got}" if got else
                                     f"expected {res} on {wanted}; the plan does not place it (is it present?)"))
    if expect.violations is not None:
        violated: dict[str, set[str]] = {}
        for v in plan.violations:
            violated.setdefault(v.policy, set()).update(v.resources)
        failures += _compare_policies(case, where + ("violations",), expect.violations, violated,
                                      ("the plan to violate", "it violates", "violated"))
    if expect.count is not None:
        counts = plan.counts()
        got_counts = {"operations": len(plan.operations), "waves": len(plan.waves), **counts}
        for key, value in expect.count.model_dump(exclude_none=True).items():
            if got_counts[key] != value:
                failures.append(_failure(case, where + ("count", key), f"expected {value}, got {got_counts[key]}"))
    return failures


#: Items a line of ``brief`` names at most, and its lines of conflicts or violations: a failure in a
#: test of 5,000 resources showed its 1,196 placements on one line of 38 KB.
BRIEF_MOST = 20


def brief(outcome: Outcome) -> list[str]:
    """What the planner answered, in a few lines, shown under a failure."""
    plan = outcome.plan
    if plan is None:
        explanation = outcome.explanation
        lines = [f"no plan: {explanation.summary}" if explanation else "no plan"]
        conflicts = explanation.conflicts if explanation else []
        for c in conflicts[:BRIEF_MOST]:
            values = ", ".join(f"{k}={v}" for k, v in c.bindings)
            lines.append(f"  {c.policy} ({c.location}): {values}")
        if len(conflicts) > BRIEF_MOST:
            lines.append(f"  and {len(conflicts) - BRIEF_MOST:,} more")
        return lines
    counts = plan.counts()
    lines = [f"a plan ({plan.status}): {len(plan.operations)} operations in {len(plan.waves)} waves; "
             f"{counts['create']} to create, {counts['change']} to change, {counts['delete']} to delete"]
    if plan.placements:
        lines.append("placements: " + first_of([f"{r} -> {t}" for r, t in sorted(plan.placements.items())],
                                                 BRIEF_MOST))
    for v in plan.violations[:BRIEF_MOST]:
        lines.append(f"violates {v.policy} ({v.enforcement}, {v.file}:{v.line})"
                     + (f" for {first_of(list(v.resources), BRIEF_MOST)}" if v.resources else ""))
    if len(plan.violations) > BRIEF_MOST:
        lines.append(f"and {len(plan.violations) - BRIEF_MOST:,} more violations")
    return lines
