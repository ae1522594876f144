"""What running policy tests gives: per case a result, per policy file its rules' coverage, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.errors import Diagnostic
from domain.project import Project
from planner.program import Program


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


@dataclass
class CaseRun:
    """A case's result, the rules it exercised as (file key, line), and, when
    it has a plan, what it was planned from (for coverage's probes)."""

    result: CaseResult
    exercised: set[tuple[str, int]] = field(default_factory=set)
    project: Project | None = None
    program: Program | None = None
    limit: tuple[str, str] | None = None   # it struck a planning limit: the policy file, and why others are not run
