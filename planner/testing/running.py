"""Running policy tests: each collected case loaded, planned and checked, then coverage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from domain.errors import DiagnosticsError, OrdoError
from domain.project import PROJECT_FILE, load_project
from planner.bounded import ChildEnded, PlanningLimitError
from planner.core import load_policies, make_plan
from planner.testing.checking import brief, check_outcome
from planner.testing.collection import Case, Collection, Suite
from planner.testing.coverage import exercised_rules, measure_coverage
from planner.testing.loading import diag, load_case, resolve_expect
from planner.testing.results import CaseResult, CaseRun, Report


def run(collection: Collection, *, coverage: bool = False, base: Path | None = None,
        on_suite: Callable[[Suite], None] | None = None,
        on_result: Callable[[CaseResult], None] | None = None) -> Report:
    """Run every collected case (none when the collection has errors); with
    ``coverage``, then find which policy rules the cases exercised."""
    started = time.perf_counter()
    report = Report(results=[], errors=list(collection.errors), deselected=collection.deselected)
    if collection.errors:
        report.seconds = time.perf_counter() - started
        return report
    seen: dict[tuple[str, int], list[tuple[str, int]]] = {}
    planned: list[CaseRun] = []
    # by project: the policy file that grounds largest where a case struck a planning limit, and why the
    # cases after it that load that file are not run (each would wait for the limit too)
    stopped: dict[Path | None, tuple[str, str]] = {}
    refused: dict[Path | None, bool] = {}   # whether a project's own policies do not load (looked at once)
    for suite in collection.suites:
        if not suite.cases:
            continue
        if on_suite is not None:
            on_suite(suite)
        project = suite.project.resolve() if suite.project else None
        for case in suite.cases:
            done = run_case(case, stopped.get(project))
            if done.limit is not None:
                stopped.setdefault(project, done.limit)
            elif _stops_the_others(case, done, project, refused):
                # the project's policies or its file refused (every case reads them as ordo check does): said
                # once, the cases after it not run (the same errors were said under each, an authoring sweep's)
                stopped.setdefault(project, ("", f"not run: the project's policies have errors, said under "
                                                 f"{done.result.location}; fix them, then run the tests again"))
            for key in done.exercised:
                seen.setdefault(key, []).append((done.result.file, done.result.line))
            if coverage and done.program is not None:
                planned.append(done)
            report.results.append(done.result)
            if on_result is not None:
                on_result(done.result)
    if coverage:
        projects = sorted({s.project.resolve() for s in collection.suites if s.cases and s.project}, key=str)
        report.coverage = measure_coverage(projects, seen, base, planned)
    report.seconds = time.perf_counter() - started
    return report


def run_case(case: Case, stopped: tuple[str, str] | None = None) -> CaseRun:
    """Load, plan and check one case. ``stopped``: a policy file (all, when "") that an earlier case of
    the project struck a planning limit with, and why: a case that loads it is not run."""
    started = time.perf_counter()
    suite = case.suite
    result = CaseResult(file=suite.display, line=case.line, name=case.name, outcome="passed")
    done = CaseRun(result=result)
    if case.spec.skip is not None:
        result.outcome, result.reason = "skipped", case.spec.skip
        return done
    if stopped is not None and not stopped[0]:   # (every case of the project: not even loaded)
        result.outcome, result.errors = "error", [diag(case, case.key, stopped[1])]
        return done
    try:
        project, program, problems = load_case(case)
        problems += resolve_expect(case, project.model, program)
        if problems:
            raise DiagnosticsError(problems)
        if stopped is not None and any(f.display == stopped[0] for f in program.files):
            result.outcome, result.errors = "error", [diag(case, case.key, stopped[1])]
            return done
        outcome = make_plan(project)
    except DiagnosticsError as exc:
        result.outcome, result.errors = "error", exc.diagnostics
        result.seconds = time.perf_counter() - started
        return done
    except (PlanningLimitError, ChildEnded) as exc:
        where = exc.file if isinstance(exc, PlanningLimitError) and exc.file else "the planning process"
        result.outcome, result.errors = "error", [diag(case, case.key, f"{where}: {exc}")]
        result.seconds = time.perf_counter() - started
        if isinstance(exc, PlanningLimitError):   # each other case with that file would wait for the limit too
            limit = "time limit" if exc.kind == "time" else "memory cap"
            done.limit = (exc.file, f"not run: planning struck the {limit} in {result.location} ({where}); fix that, "
                                    "then run the tests again")
        return done
    except OrdoError as exc:   # (the solver's refusal of the case's program: the other cases still run)
        result.outcome, result.errors = "error", [diag(case, case.key, str(exc))]
        result.seconds = time.perf_counter() - started
        return done
    result.status = outcome.status
    if outcome.status == "timeout":
        result.outcome = "error"
        result.errors = [diag(case, case.key, "the solver found no answer in time",
                              f"settings.solve_timeout is {project.settings.solve_timeout:g}s")]
    else:
        result.failures = check_outcome(case, outcome, {f.display: f.meta.name for f in program.files})
        result.got = brief(outcome)
        if result.failures:
            result.outcome = "failed"
        done.exercised = exercised_rules(outcome, project.root)
        if outcome.plan is not None:
            done.project, done.program = project, program
    result.seconds = time.perf_counter() - started
    return done


def _stops_the_others(case: Case, done: CaseRun, root: Path | None, refused: dict[Path | None, bool]) -> bool:
    """Whether the case's errors are its project's (its policies or its file; not the case's own files, nor
    its plan's) and the project's own policies do not load (``refused``: what was found of each project)."""
    if done.result.outcome != "error" or not done.result.errors or case.spec.policies is not None \
            or not all(_of_the_project(d.file) for d in done.result.errors):
        return False
    if root not in refused:
        refused[root] = _refused(root)
    return refused[root]


def _refused(root: Path | None) -> bool:
    """Whether the project's own policies do not load, as ordo check reads them (not a case's data: a test's
    own inventory whose numbers a policy cannot count stopped every other test, a review's)."""
    if root is None:
        return False
    try:
        load_policies(load_project(root, need_request=False), warnings=False)
    except DiagnosticsError:
        return True
    except OrdoError:
        pass
    return False


def _of_the_project(file: str) -> bool:
    """Whether a problem's file is one every case of a project reads: a policy file, or the project file."""
    return file.endswith(".lp") or Path(file).name == PROJECT_FILE
