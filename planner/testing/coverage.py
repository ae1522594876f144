"""Policy test coverage.

A policy's labelled rules (planner/program.py) are *exercised* when
some test shows them at work: an ordering rule when it makes an edge of a
test's plan (or of a cycle); a constraint when it is violated in a test's
outcome - named by a no-plan explanation, listed among a plan's soft or
advisory violations - or, failing that, when it holds some test's plan back:
the *probe* solves that test again with this one constraint relaxed to the
cheapest of preferences (minimised below every other priority; the others
enforced as usual) and finds it violated, so without it the plan would differ.
Constraints are probed one at a time (relaxing all at once lets one hide
another: without capacity everything crowds into one region, and a rule
about keeping two resources together then holds by accident), and only those
no outcome showed, each until one test shows it.
"""

from __future__ import annotations

from pathlib import Path

import policies
from domain.errors import DiagnosticsError
from domain.project import project_policy_files, read_project_file
from planner.core import Outcome, all_policy_files, apply_enforcement
from planner.facts import model_facts
from planner.program import RuleInfo, load_program
from planner.solve import solve
from planner.testing.collection import shown_path
from planner.testing.results import CaseRun, Coverage, FileCoverage, RuleCoverage


def _rule_key(display: str, root: Path) -> str:
    """A policy file the same whichever project or test names it."""
    return display if display.startswith("<") else str((root / display).resolve())


def exercised_rules(outcome: Outcome, root: Path) -> set[tuple[str, int]]:
    """The rules (file key, line) the outcome shows at work: its plan's edges and
    violations, or the conflicts and cycle of its no-plan explanation."""
    keys: set[tuple[str, int]] = set()

    def add(location: str) -> None:
        file, _, line = location.rpartition(":")
        keys.add((_rule_key(file, root), int(line)))

    if outcome.plan is not None:
        for edge in outcome.plan.edges:
            for location in edge.rules:
                add(location)
        for v in outcome.plan.violations:
            add(f"{v.file}:{v.line}")
    elif outcome.explanation is not None:
        for c in outcome.explanation.conflicts:
            add(c.location)
        for hop in outcome.explanation.cycle_rules:
            for location in hop:
                add(location)
    return keys


#: The probe (policies/internal/probe.lp): one constraint costs least of all,
#: below every preference; every other one is enforced as usual. If the
#: probe's optimum violates it, the constraint held the case's plan back.
PROBE = policies.internal("probe")


def _bites(done: CaseRun, key: tuple[str, int]) -> bool:
    """Does the constraint at ``key`` hold the case's plan back (see PROBE)?"""
    project, program = done.project, done.program
    assert project is not None and program is not None
    origin = {f.display: f for f in program.files}
    probed = [r.index for r in program.rules if r.kind == "constraint" and r.file in origin
              and origin[r.file].origin != "base" and origin[r.file].meta.enforcement in ("hard", "soft")
              and (_rule_key(r.file, project.root), r.line) == key]
    if not probed:
        return False  # not loaded in this case
    facts = model_facts(project.model) + [f"__probe({index})." for index in probed]
    try:
        answer = solve(program, facts, timeout=project.settings.solve_timeout, mode=PROBE)
    except DiagnosticsError:
        return False
    return any(sym.name == "__violation" and sym.arguments[0].number in probed for sym in answer.symbols)


def measure_coverage(projects: list[Path], seen: dict[tuple[str, int], list[tuple[str, int]]],
              base: Path | None, planned: list[CaseRun]) -> Coverage:
    """Per policy file of the projects (their own and library policies, as
    ordo.yaml names them), which labelled rules some test exercised. A
    constraint no outcome showed violated is probed in each case with a plan
    until one shows it biting."""
    files: dict[str, FileCoverage] = {}
    for root in projects:
        try:
            root, project_file, src = read_project_file(root)
        except DiagnosticsError:
            continue
        own, _ = project_policy_files(root, project_file, src)
        listed, _ = all_policy_files(project_file.policies.library, own, root, src)
        program = load_program([f for f in listed if f[2] != "base"], root)
        apply_enforcement(program, dict(project_file.policies.enforcement), None)
        by_file: dict[str, list[RuleInfo]] = {}
        for rule in program.rules:
            by_file.setdefault(rule.file, []).append(rule)
        for pfile in program.files:
            key = _rule_key(pfile.display, root)
            if key in files:
                continue
            shown = pfile.display if pfile.display.startswith("<") else shown_path(Path(key), base)
            rules = []
            for rule in by_file.get(pfile.display, []):
                where = seen.get((key, rule.line), [])
                if not where and rule.kind == "constraint":
                    where = next(([(d.result.file, d.result.line)] for d in planned
                                  if _bites(d, (key, rule.line))), [])
                rules.append(RuleCoverage(file=shown, line=rule.line, kind=rule.kind, text=rule.text,
                                          exercised_by=[f"{f}:{n}" for f, n in sorted(set(where))]))
            files[key] = FileCoverage(file=shown, policy=pfile.meta.name, rules=rules)
    return Coverage(files=sorted(files.values(), key=lambda f: f.file))
