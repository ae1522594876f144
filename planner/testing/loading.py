"""A policy test case's project and policies, as the case asks for them, and
the problems with what it names (unknown resources, targets, policies ...)."""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import policies
from domain.errors import Diagnostic, DiagnosticsError
from domain.model import Model
from domain.project import PROJECT_FILE, Project, load_project, read_project_file
from domain.yamlsrc import PathKey, Source
from planner.core import load_policies
from planner.metadata import read_metadata
from planner.program import Program, policy_name
from planner.testing.collection import Case


def diag(case: Case, where: PathKey, summary: str, detail: str = "") -> Diagnostic:
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


def load_case(case: Case) -> tuple[Project, Program, list[Diagnostic]]:
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
            raise DiagnosticsError([diag(case, case.key, "no request to plan",
                                         f"give 'request:' (a file or inline) here or in {PROJECT_FILE}")])
    project = load_project(suite.project, request, _model_ref(case, "inventory"),
                           catalog=[catalog] if catalog is not None else None)
    problems = _learn(case, project.model)
    if case.spec.policies is not None:
        # the project's policies as ordo check reads them, first: a case that leaves one out (or changes a
        # level) must not run what check refuses (two files of one name, both left out by `without`)
        load_policies(project, warnings=False)
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
    for key, targets in (("refused", learnt.refused), ("claimed_elsewhere", learnt.claimed_elsewhere)):
        for index, target in enumerate(targets):
            if target not in model.targets:
                problems.append(diag(case, where + (key, index), f"unknown target '{target}'",
                                     _choices(target, model.targets)))
            getattr(model, key).add(target)
    for res, target in learnt.planned.items():
        if res not in model.resources:
            problems.append(diag(case, where + ("planned", res), f"unknown resource '{res}'",
                                 _choices(res, model.resources)))
        if target not in model.targets:
            problems.append(diag(case, where + ("planned", res), f"unknown target '{target}'",
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
                problems.append(diag(case, where + (key, index), f"the project has no policy '{name}'",
                                     _choices(name, own)))
    if spec.only is not None:
        library = [(n, p) for n, p in library if p in spec.only]
        files = [(f, p) for f, p in files if p in spec.only]
    library = [(n, p) for n, p in library if p not in spec.without]
    files = [(f, p) for f, p in files if p not in spec.without]
    for index, name in enumerate(spec.library):
        if name not in stock:
            problems.append(diag(case, where + ("library", index), f"unknown library policy '{name}'",
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
            problems.append(diag(case, where + ("enforcement", name), f"no policy '{name}' is loaded in this test",
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
        return diag(case, where, f"expected RESOURCE/OPERATION, got '{text}'", "e.g. vfw/assign")
    if res not in model.resources:
        return diag(case, where, f"unknown resource '{res}'", _choices(res, model.resources))
    if sep:
        kind = model.kinds.get(model.resources[res].type)
        ops = [o.name for o in kind.operations] if kind else []
        if op not in ops:
            return diag(case, where, f"'{res}' (a {model.resources[res].type}) has no operation '{op}'",
                        _choices(op, ops))
    return None


def resolve_expect(case: Case, model: Model, program: Program) -> list[Diagnostic]:
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
            problems.append(diag(case, where + ("before", index), f"{pair[0]} cannot come before itself"))
    for res, targets in (expect.placements or {}).items():
        if res not in model.resources:
            problems.append(diag(case, where + ("placements", res), f"unknown resource '{res}'",
                                 _choices(res, model.resources)))
        elif not model.kinds[model.resources[res].type].placement:
            problems.append(diag(case, where + ("placements", res), f"'{res}' is not placed on targets",
                                 f"its type '{model.resources[res].type}' has no 'placement: true'"))
        for index, target in enumerate(targets):
            if target not in model.targets:
                at = where + ("placements", res) + ((index,) if len(targets) > 1 else ())
                problems.append(diag(case, at, f"unknown target '{target}'", _choices(target, model.targets)))
    names = {f.meta.name for f in program.files}
    for key in ("violations", "conflicts"):
        for index, item in enumerate(getattr(expect, key) or []):
            if item.policy not in names:
                problems.append(diag(case, where + (key, index), f"no policy '{item.policy}' is loaded in this test",
                                     _choices(item.policy, names)))
            for number, res in enumerate(item.resources):
                if res not in model.resources:
                    problems.append(diag(case, where + (key, index, "resources", number),
                                         f"unknown resource '{res}'", _choices(res, model.resources)))
    return [p for p in problems if p is not None]
