"""Policy tests: small models with expectations about the outcome, run like pytest.

A test file (``*_test.yaml`` or ``test_*.yaml``) names the project whose
catalog and policies it tests and lists cases. Each case may replace the
catalog, inventory or request (a path relative to the test file, or the model
written inline), tell what a run learnt (``failed``, ``refused``,
``planned``), change the policies (add, keep only, drop, re-enforce), and
states what it expects of the outcome::

    tests:
      - name: vFW goes to the cheapest region with room
        request: ../requests/instantiate.yaml
        expect:
          placements: { vfw: region-two }
          before: [[vfw-base/activate, vfw/config-deploy]]

Every problem in a test file is a diagnostic with file, line and column (as
``ordo check`` gives them); a problem found only once a case's models load
(an unknown resource in an expectation ...) makes that case an error.

Coverage: a policy's labelled rules (planner/program.py) are *exercised* when
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

Library code: nothing here prints; the CLI (``ordo test``) renders a Report.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeInt

import policies
from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import EnforcementSpec, Name, parse
from domain.model import Model
from domain.project import PROJECT_FILE, Project, load_project, project_policy_files, read_project_file
from domain.yamlsrc import PathKey, Source, format_path, load_yaml
from planner.core import Outcome, all_policy_files, apply_enforcement, load_policies, make_plan
from planner.explain import Explanation
from planner.facts import model_facts
from planner.metadata import read_metadata
from planner.plan import Plan
from planner.program import Program, RuleInfo, load_program, policy_name
from planner.solve import solve

#: File names collected from folders (a file named on the command line is run whatever its name).
PATTERNS = ("*_test.yaml", "test_*.yaml", "*_test.yml", "test_*.yml")


# --- the file format -----------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _path_or_mapping(value: Any) -> Any:
    if value is None or isinstance(value, (str, dict)):
        return value
    raise ValueError(f"expected a file path (relative to this file) or the model written inline as a mapping, "
                     f"got {type(value).__name__} {value!r}")


def _pair(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"expected a pair [A, B] of operations (A comes before B), got {value!r}")


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _policy_item(value: Any) -> Any:
    return {"policy": value} if isinstance(value, str) else value


#: A model file: its path relative to the test file, or the model inline.
ModelRef = Annotated[Any, BeforeValidator(_path_or_mapping)]


class PolicyExpect(_Strict):
    """A policy expected among the violations (or conflicts), optionally about some resources."""

    policy: Name
    resources: list[Name] = Field(default_factory=list,
                                  description="resources the policy must be violated for (at least these)")


PolicyItem = Annotated[PolicyExpect, BeforeValidator(_policy_item)]


class CountExpect(_Strict):
    operations: NonNegativeInt | None = None
    waves: NonNegativeInt | None = None
    create: NonNegativeInt | None = Field(None, description="resources to create")
    change: NonNegativeInt | None = Field(None, description="resources to change")
    delete: NonNegativeInt | None = Field(None, description="resources to delete")
    run: NonNegativeInt | None = Field(None, description="resources to run an operation on")


class Expect(_Strict):
    status: Literal["plan", "no_plan"] | None = Field(
        None, description="plan (a plan exists) or no_plan; implied by the other expectations")
    operations: list[str] | None = Field(
        None, description="operations in the plan: RESOURCE/OPERATION, or RESOURCE for any operation on it")
    absent: list[str] | None = Field(
        None, description="operations not in the plan: RESOURCE/OPERATION, or RESOURCE for none on it")
    before: list[Annotated[list[str], BeforeValidator(_pair)]] | None = Field(
        None, description="[A, B]: a chain of precedences leads from operation A to operation B")
    placements: dict[Name, Annotated[list[Name], BeforeValidator(_one_or_more)]] | None = Field(
        None, description="resource -> the target the plan puts it on (or a list: one of them)")
    violations: list[PolicyItem] | None = Field(
        None, description="exactly the soft or advisory policies the plan violates ([] for none)")
    conflicts: list[PolicyItem] | None = Field(
        None, description="no plan, and exactly these policies are named by the explanation")
    count: CountExpect | None = None


class Learnt(_Strict):
    """What a run learnt before it re-plans, as the executor gives it to the planner."""

    failed: list[str] = Field(default_factory=list, description="RESOURCE/OPERATION that failed for good")
    refused: list[Name] = Field(default_factory=list, description="targets that refused an operation")
    planned: dict[Name, Name] = Field(default_factory=dict, description="resource -> target the last plan chose")


class CasePolicies(_Strict):
    library: list[Name] = Field(default_factory=list, description="stock policies to add, by name")
    files: list[str] = Field(default_factory=list, description="policy files to add, relative to the test file")
    only: list[Name] | None = Field(None, description="keep only these of the project's policies, by name")
    without: list[Name] = Field(default_factory=list, description="drop these of the project's policies")
    enforcement: dict[Name, EnforcementSpec] = Field(
        default_factory=dict, description="policy name -> enforcement level for this test")


class CaseSpec(_Strict):
    name: Annotated[str, Field(min_length=1)]
    skip: str | None = Field(None, description="skip this test, for this reason")
    catalog: ModelRef = None
    inventory: ModelRef = None
    request: ModelRef = None
    learnt: Learnt | None = None
    policies: CasePolicies | None = None
    expect: Expect


class TestFileSpec(_Strict):
    project: str | None = Field(None, description="the project folder, relative to this file "
                                                  "(default: the nearest folder above with ordo.yaml)")
    catalog: ModelRef = None
    inventory: ModelRef = None
    request: ModelRef = None
    tests: list[Any] = Field(min_length=1, description="the test cases (each checked on its own)")


_PLAN_KEYS = ("operations", "absent", "before", "placements", "violations", "count")


# --- collecting -----------------------------------------------------------------


@dataclass
class Case:
    suite: Suite
    index: int
    spec: CaseSpec
    line: int
    column: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> PathKey:
        return ("tests", self.index)


@dataclass
class Suite:
    """One test file."""

    path: Path
    display: str
    source: Source | None = None
    spec: TestFileSpec | None = None
    project: Path | None = None
    cases: list[Case] = field(default_factory=list)


@dataclass
class Collection:
    suites: list[Suite]
    errors: list[Diagnostic]
    deselected: int = 0

    @property
    def cases(self) -> list[Case]:
        return [case for suite in self.suites for case in suite.cases]


def discover(paths: list[Path]) -> list[Path]:
    """Test files under the given folders (by name pattern) and the files named, sorted, each once."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for pattern in PATTERNS:
                found += [p for p in path.rglob(pattern)
                          if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        else:
            found.append(path)
    out: list[Path] = []
    seen: set[Path] = set()
    for path in sorted(found, key=lambda p: str(p)):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def _shown(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _nearest_project(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return None


def collect(files: list[Path], *, project: Path | None = None, base: Path | None = None,
            select: str | None = None) -> Collection:
    """Read and check test files. ``project`` is the project of a file that
    names none and lies in no project folder; ``base`` is the folder paths are
    shown relative to; ``select`` keeps the cases whose name contains it."""
    suites: list[Suite] = []
    errors: list[Diagnostic] = []
    deselected = 0
    for path in files:
        suite = Suite(path=path, display=_shown(path, base))
        problems: list[Diagnostic] = []
        try:
            suite.source = src = load_yaml(path, suite.display)
        except DiagnosticsError as exc:
            errors.extend(exc.diagnostics)
            continue
        try:
            suite.spec = spec = parse(TestFileSpec, src)
        except DiagnosticsError as exc:
            # Check the cases all the same: every problem of the file at once.
            problems.extend(exc.diagnostics)
            spec = None
        folder = path.resolve().parent
        if spec is None:
            pass
        elif spec.project is not None:
            root = folder / spec.project
            if not (root / PROJECT_FILE).is_file() and not (root.is_file() and root.suffix in (".yaml", ".yml")):
                problems.append(src.diagnostic(("project",), f"no {PROJECT_FILE} at '{spec.project}'",
                                               "the path is relative to this test file"))
            suite.project = root
        else:
            suite.project = _nearest_project(folder) or project
            if suite.project is None:
                problems.append(src.diagnostic((), "no project to test",
                                               f"name one with 'project:' (a folder with {PROJECT_FILE}, "
                                               "relative to this file), or pass -C"))
        for key in ("catalog", "inventory", "request"):
            problems += _check_ref(src, (key,), getattr(spec, key, None), folder)
        raw = src.data.get("tests") if isinstance(src.data, dict) else None
        names: dict[str, int] = {}
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            where: PathKey = ("tests", index)
            line, column = src.where(where)
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name in names:
                problems.append(src.diagnostic(where + ("name",), f"test '{name}' is named twice",
                                               f"first at line {names[name]}"))
            if isinstance(name, str):
                names.setdefault(name, line)
            try:
                case = parse(CaseSpec, dataclasses.replace(src, data=item), base=where)
            except DiagnosticsError as exc:
                problems.extend(exc.diagnostics)
                continue
            for key in ("catalog", "inventory", "request"):
                problems += _check_ref(src, where + (key,), getattr(case, key), folder)
            for number, rel in enumerate(case.policies.files if case.policies else []):
                if not (folder / rel).is_file():
                    problems.append(src.diagnostic(where + ("policies", "files", number),
                                                   f"no such policy file '{rel}'",
                                                   "the path is relative to this test file"))
            problems += _check_expect(src, where + ("expect",), case.expect)
            if select is not None and select.lower() not in case.name.lower():
                deselected += 1
                continue
            suite.cases.append(Case(suite=suite, index=index, spec=case, line=line, column=column))
        if problems:
            errors.extend(problems)
            continue
        suites.append(suite)
    return Collection(suites=suites, errors=sorted(errors), deselected=deselected)


def _check_ref(src: Source, where: PathKey, value: Any, folder: Path) -> list[Diagnostic]:
    if isinstance(value, str) and not (folder / value).is_file():
        return [src.diagnostic(where, f"no such file '{value}'", "the path is relative to this test file")]
    return []


def _check_expect(src: Source, where: PathKey, expect: Expect) -> list[Diagnostic]:
    given = [k for k in (*_PLAN_KEYS, "conflicts") if getattr(expect, k) is not None]
    if expect.status is None and not given:
        return [src.diagnostic(where, "the test expects nothing",
                               "give status, operations, absent, before, placements, violations, conflicts "
                               "or count")]
    plan_keys = [k for k in given if k != "conflicts"]
    if expect.status == "plan" and "conflicts" in given:
        return [src.diagnostic(where + ("conflicts",), "'conflicts' expects no plan, but status is plan")]
    if plan_keys and (expect.status == "no_plan" or "conflicts" in given):
        other = "status is no_plan" if expect.status == "no_plan" else "'conflicts' expects none"
        return [src.diagnostic(where + (plan_keys[0],), f"'{plan_keys[0]}' expects a plan, but {other}",
                               "a test has either a plan or no plan: make these two tests")]
    return []


# --- results --------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """An expectation the outcome does not meet, with where the expectation is written."""

    file: str
    line: int
    column: int
    path: str
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        return f"{self.location}: {self.path}: {self.message}"


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    outcome: str                     # passed, failed, error, skipped
    failures: list[Failure] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    got: list[str] = field(default_factory=list)   # the outcome, briefly, for the report of a failure
    reason: str = ""                 # why it was skipped
    seconds: float = 0.0
    status: str = ""                 # the planner's status

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class RuleCoverage:
    file: str
    line: int
    kind: str          # constraint or before
    text: str
    exercised_by: list[str] = field(default_factory=list)   # test locations

    @property
    def exercised(self) -> bool:
        return bool(self.exercised_by)


@dataclass
class FileCoverage:
    file: str
    policy: str
    rules: list[RuleCoverage]

    @property
    def exercised(self) -> int:
        return sum(r.exercised for r in self.rules)


@dataclass
class Coverage:
    files: list[FileCoverage]

    @property
    def total(self) -> int:
        return sum(len(f.rules) for f in self.files)

    @property
    def exercised(self) -> int:
        return sum(f.exercised for f in self.files)

    @property
    def percent(self) -> float:
        return 100.0 * self.exercised / self.total if self.total else 100.0


@dataclass
class Report:
    results: list[CaseResult]
    errors: list[Diagnostic] = field(default_factory=list)   # in test files: nothing was run
    deselected: int = 0
    seconds: float = 0.0
    coverage: Coverage | None = None

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    @property
    def ok(self) -> bool:
        return not self.errors and not any(r.outcome in ("failed", "error") for r in self.results)


# --- running --------------------------------------------------------------------


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
    for suite in collection.suites:
        if not suite.cases:
            continue
        if on_suite is not None:
            on_suite(suite)
        for case in suite.cases:
            done = run_case(case)
            for key in done.exercised:
                seen.setdefault(key, []).append((done.result.file, done.result.line))
            if coverage and done.program is not None:
                planned.append(done)
            report.results.append(done.result)
            if on_result is not None:
                on_result(done.result)
    if coverage:
        projects = sorted({s.project.resolve() for s in collection.suites if s.cases and s.project}, key=str)
        report.coverage = _coverage(projects, seen, base, planned)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class CaseRun:
    """A case's result, the rules it exercised as (file key, line), and, when
    it has a plan, what it was planned from (for coverage's probes)."""

    result: CaseResult
    exercised: set[tuple[str, int]] = field(default_factory=set)
    project: Project | None = None
    program: Program | None = None


def run_case(case: Case) -> CaseRun:
    """Load, plan and check one case."""
    started = time.perf_counter()
    suite = case.suite
    result = CaseResult(file=suite.display, line=case.line, name=case.name, outcome="passed")
    done = CaseRun(result=result)
    if case.spec.skip is not None:
        result.outcome, result.reason = "skipped", case.spec.skip
        return done
    try:
        project, program, problems = _load_case(case)
        problems += _resolve_expect(case, project.model, program)
        if problems:
            raise DiagnosticsError(problems)
        outcome = make_plan(project)
    except DiagnosticsError as exc:
        result.outcome, result.errors = "error", exc.diagnostics
        result.seconds = time.perf_counter() - started
        return done
    result.status = outcome.status
    if outcome.status == "timeout":
        result.outcome = "error"
        result.errors = [_diag(case, case.key, "the solver found no answer in time",
                               f"settings.solve_timeout is {project.settings.solve_timeout:g}s")]
    else:
        result.failures = _check(case, outcome, {f.display: f.meta.name for f in program.files})
        result.got = _brief(outcome)
        if result.failures:
            result.outcome = "failed"
        done.exercised = _exercised(outcome, project.root)
        if outcome.plan is not None:
            done.project, done.program = project, program
    result.seconds = time.perf_counter() - started
    return done


def _diag(case: Case, where: PathKey, summary: str, detail: str = "") -> Diagnostic:
    assert case.suite.source is not None
    return case.suite.source.diagnostic(where, summary, detail, code="test")


def _model_ref(case: Case, key: str) -> Path | Source | None:
    """The case's catalog/inventory/request, else the file's: a path or an inline source."""
    suite = case.suite
    assert suite.source is not None and suite.spec is not None
    for owner, where in ((case.spec, case.key + (key,)), (suite.spec, (key,))):
        value = getattr(owner, key)
        if isinstance(value, str):
            return (suite.path.resolve().parent / value).resolve()
        if isinstance(value, dict):
            return suite.source.sub(where)
    return None


def _load_case(case: Case) -> tuple[Project, Program, list[Diagnostic]]:
    """The case's project and policies, and the problems with what it asks
    (unknown targets, policies ...). Raises DiagnosticsError when the models
    or the policies do not load."""
    suite = case.suite
    assert suite.project is not None
    catalog = _model_ref(case, "catalog")
    request = _model_ref(case, "request")
    if request is None:
        _, project_file, _ = read_project_file(suite.project)
        if project_file.request is None:
            raise DiagnosticsError([_diag(case, case.key, "no request to plan",
                                          f"give 'request:' (a file or inline) here or in {PROJECT_FILE}")])
    project = load_project(suite.project, request, _model_ref(case, "inventory"),
                           catalog=[catalog] if catalog is not None else None)
    problems = _learn(case, project.model)
    if case.spec.policies is not None:
        project, more = _adjust_policies(case, project)
        problems += more
    return project, load_policies(project), problems


def _choices(value: str, options: Any) -> str:
    names = sorted(options)
    close = difflib.get_close_matches(value, names, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"expected one of: {', '.join(names)}" if names else "there are none"


def _learn(case: Case, model: Model) -> list[Diagnostic]:
    learnt = case.spec.learnt
    if learnt is None:
        return []
    where = case.key + ("learnt",)
    problems: list[Diagnostic] = []
    for index, text in enumerate(learnt.failed):
        problem = _check_operation(case, model, where + ("failed", index), text, whole=True)
        if problem:
            problems.append(problem)
        else:
            res, op = text.split("/", 1)
            model.failed.add((res, op))
    for index, target in enumerate(learnt.refused):
        if target not in model.targets:
            problems.append(_diag(case, where + ("refused", index), f"unknown target '{target}'",
                                  _choices(target, model.targets)))
        model.refused.add(target)
    for res, target in learnt.planned.items():
        if res not in model.resources:
            problems.append(_diag(case, where + ("planned", res), f"unknown resource '{res}'",
                                  _choices(res, model.resources)))
        if target not in model.targets:
            problems.append(_diag(case, where + ("planned", res), f"unknown target '{target}'",
                                  _choices(target, model.targets)))
        model.planned[res] = target
    return problems


def _file_policy_name(path: Path, display: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return policy_name(display)
    return read_metadata(text, display, policy_name(display))[0].name


def _adjust_policies(case: Case, project: Project) -> tuple[Project, list[Diagnostic]]:
    """The project's policies as the case wants them: some kept or dropped,
    some added, enforcement levels changed."""
    spec = case.spec.policies
    assert spec is not None
    where = case.key + ("policies",)
    problems: list[Diagnostic] = []
    stock = policies.library()
    library = [(name, _file_policy_name(stock[name], name)) if name in stock else (name, name)
               for name in project.library]
    files = [(path, _file_policy_name(path, path.name)) for path in project.policy_files]
    own = [n for _, n in library] + [n for _, n in files]
    for key, names in (("only", spec.only or []), ("without", spec.without)):
        for index, name in enumerate(names):
            if name not in own:
                problems.append(_diag(case, where + (key, index), f"the project has no policy '{name}'",
                                      _choices(name, own)))
    if spec.only is not None:
        library = [(n, p) for n, p in library if p in spec.only]
        files = [(f, p) for f, p in files if p in spec.only]
    library = [(n, p) for n, p in library if p not in spec.without]
    files = [(f, p) for f, p in files if p not in spec.without]
    for index, name in enumerate(spec.library):
        if name not in stock:
            problems.append(_diag(case, where + ("library", index), f"unknown library policy '{name}'",
                                  _choices(name, stock)))
        elif name not in [n for n, _ in library]:
            library.append((name, _file_policy_name(stock[name], name)))
    folder = case.suite.path.resolve().parent
    for rel in spec.files:
        path = (folder / rel).resolve()
        files.append((path, _file_policy_name(path, path.name)))
    loaded = {p for _, p in library} | {p for _, p in files}
    for name in spec.enforcement:
        if name not in loaded:
            problems.append(_diag(case, where + ("enforcement", name), f"no policy '{name}' is loaded in this test",
                                  _choices(name, loaded)))
    enforcement = {n: s for n, s in project.enforcement.items() if n in loaded}
    enforcement.update((n, s) for n, s in spec.enforcement.items() if n in loaded)
    changed = dataclasses.replace(project, library=[n for n, _ in library], policy_files=[f for f, _ in files],
                                  enforcement=enforcement)
    return changed, problems


def _check_operation(case: Case, model: Model, where: PathKey, text: str, *, whole: bool) -> Diagnostic | None:
    """A problem with RESOURCE/OPERATION (or RESOURCE when not ``whole``) in a test, or None."""
    res, sep, op = text.partition("/")
    if whole and not sep:
        return _diag(case, where, f"expected RESOURCE/OPERATION, got '{text}'", "e.g. vfw/assign")
    if res not in model.resources:
        return _diag(case, where, f"unknown resource '{res}'", _choices(res, model.resources))
    if sep:
        kind = model.kinds.get(model.resources[res].type)
        ops = [o.name for o in kind.operations] if kind else []
        if op not in ops:
            return _diag(case, where, f"'{res}' (a {model.resources[res].type}) has no operation '{op}'",
                         _choices(op, ops))
    return None


def _resolve_expect(case: Case, model: Model, program: Program) -> list[Diagnostic]:
    """Problems with what the expectations name: resources, operations, targets, policies."""
    expect = case.spec.expect
    where = case.key + ("expect",)
    problems: list[Diagnostic | None] = []
    for key in ("operations", "absent"):
        for index, text in enumerate(getattr(expect, key) or []):
            problems.append(_check_operation(case, model, where + (key, index), text, whole=False))
    for index, pair in enumerate(expect.before or []):
        for side, text in enumerate(pair):
            problems.append(_check_operation(case, model, where + ("before", index, side), text, whole=True))
        if pair[0] == pair[1]:
            problems.append(_diag(case, where + ("before", index), f"{pair[0]} cannot come before itself"))
    for res, targets in (expect.placements or {}).items():
        if res not in model.resources:
            problems.append(_diag(case, where + ("placements", res), f"unknown resource '{res}'",
                                  _choices(res, model.resources)))
        elif not model.kinds[model.resources[res].type].placement:
            problems.append(_diag(case, where + ("placements", res), f"'{res}' is not placed on targets",
                                  f"its type '{model.resources[res].type}' has no 'placement: true'"))
        for index, target in enumerate(targets):
            if target not in model.targets:
                at = where + ("placements", res) + ((index,) if len(targets) > 1 else ())
                problems.append(_diag(case, at, f"unknown target '{target}'", _choices(target, model.targets)))
    names = {f.meta.name for f in program.files}
    for key in ("violations", "conflicts"):
        for index, item in enumerate(getattr(expect, key) or []):
            if item.policy not in names:
                problems.append(_diag(case, where + (key, index), f"no policy '{item.policy}' is loaded in this test",
                                      _choices(item.policy, names)))
            for number, res in enumerate(item.resources):
                if res not in model.resources:
                    problems.append(_diag(case, where + (key, index, "resources", number),
                                          f"unknown resource '{res}'", _choices(res, model.resources)))
    return [p for p in problems if p is not None]


# --- checking expectations --------------------------------------------------------


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


def _check(case: Case, outcome: Outcome, policy_of: dict[str, str]) -> list[Failure]:
    """The expectations the outcome does not meet. ``policy_of``: policy file -> policy name."""
    expect = case.spec.expect
    where = case.key + ("expect",)
    given = [k for k in _PLAN_KEYS if getattr(expect, k) is not None]
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
    failures = []
    want = {item.policy for item in expected}
    if want != set(named):
        failures.append(_failure(case, where + ("conflicts",),
                                 f"expected the explanation to name {_listing(want)}; it names {_listing(set(named))}"
                                 + (f" ({explanation.summary})" if explanation and not named else "")))
    for index, item in enumerate(expected):
        missing = sorted(set(item.resources) - named.get(item.policy, set()))
        if item.policy in named and missing:
            failures.append(_failure(case, where + ("conflicts", index, "resources"),
                                     f"{item.policy} is not named for {', '.join(missing)} "
                                     f"(it is for: {_listing(named[item.policy])})"))
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
        want = {item.policy for item in expect.violations}
        if want != set(violated):
            failures.append(_failure(case, where + ("violations",),
                                     f"expected the plan to violate {_listing(want)}; it violates "
                                     f"{_listing(set(violated))}"))
        for index, item in enumerate(expect.violations):
            missing = sorted(set(item.resources) - violated.get(item.policy, set()))
            if item.policy in violated and missing:
                failures.append(_failure(case, where + ("violations", index, "resources"),
                                         f"{item.policy} is not violated for {', '.join(missing)} "
                                         f"(it is for: {_listing(violated[item.policy])})"))
    if expect.count is not None:
        counts = plan.counts()
        got_counts = {"operations": len(plan.operations), "waves": len(plan.waves), **counts}
        for key, value in expect.count.model_dump(exclude_none=True).items():
            if got_counts[key] != value:
                failures.append(_failure(case, where + ("count", key), f"expected {value}, got {got_counts[key]}"))
    return failures


def _brief(outcome: Outcome) -> list[str]:
    """What the planner answered, in a few lines, shown under a failure."""
    plan = outcome.plan
    if plan is None:
        explanation = outcome.explanation
        lines = [f"no plan: {explanation.summary}" if explanation else "no plan"]
        for c in explanation.conflicts if explanation else []:
            values = ", ".join(f"{k}={v}" for k, v in c.bindings)
            lines.append(f"  {c.policy} ({c.location}): {values}")
        return lines
    counts = plan.counts()
    lines = [f"a plan ({plan.status}): {len(plan.operations)} operations in {len(plan.waves)} waves; "
             f"{counts['create']} to create, {counts['change']} to change, {counts['delete']} to delete"]
    if plan.placements:
        lines.append("placements: " + ", ".join(f"{r} -> {t}" for r, t in sorted(plan.placements.items())))
    for v in plan.violations:
        lines.append(f"violates {v.policy} ({v.enforcement}, {v.file}:{v.line})"
                     + (f" for {', '.join(v.resources)}" if v.resources else ""))
    return lines


# --- coverage ----------------------------------------------------------------------


def _rule_key(display: str, root: Path) -> str:
    """A policy file the same whichever project or test names it."""
    return display if display.startswith("<") else str((root / display).resolve())


def _exercised(outcome: Outcome, root: Path) -> set[tuple[str, int]]:
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


def _coverage(projects: list[Path], seen: dict[tuple[str, int], list[tuple[str, int]]],
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
            shown = pfile.display if pfile.display.startswith("<") else _shown(Path(key), base)
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
