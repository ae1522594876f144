"""Collecting policy tests: the test files under folders, read and checked into suites of cases."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import parse
from domain.policytests import PATTERNS, CaseSpec, TestFileSpec, expect_problems
from domain.project import PROJECT_FILE, display_path
from domain.yamlsrc import PathKey, Source, load_yaml


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


def shown_path(path: Path, base: Path | None) -> str:
    """``path`` as reports show it: relative to ``base`` when inside it."""
    return display_path(path, base) if base is not None else str(path)


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
        suite = Suite(path=path, display=shown_path(path, base))
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
                                                   f"{_not_a_file(folder / rel, 'policy file')} '{rel}'",
                                                   "the path is relative to this test file"))
            problems += expect_problems(src, where + ("expect",), case.expect)
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
        return [src.diagnostic(where, f"{_not_a_file(folder / value, 'file')} '{value}'",
                               "the path is relative to this test file")]
    return []


def _not_a_file(path: Path, noun: str) -> str:
    """Why a path named as a file is none: missing, a folder, or something else (a device, a pipe)."""
    if path.is_dir():
        return f"a folder, not a {noun}:"
    return f"not a {noun} (not a regular file):" if path.exists() else f"no such {noun}"
