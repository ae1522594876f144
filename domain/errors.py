"""One root exception type and the diagnostics every loader collects."""

from __future__ import annotations

from dataclasses import dataclass, field


class OrdoError(Exception):
    """Root of every error ordo raises on purpose."""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in an input, with where it is and what was expected."""

    file: str = ""
    line: int = 0
    column: int = 0
    summary: str = ""
    path: str = ""
    detail: str = ""
    severity: str = "error"
    code: str = field(default="", compare=False)

    @property
    def location(self) -> str:
        where = self.file or "<input>"
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: "
        if self.path:
            text += f"{self.path}: "
        text += self.summary
        if self.detail:
            text += f" ({self.detail})"
        return text


class DiagnosticsError(OrdoError):
    """Raised with every problem found, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def clipped(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters, an ellipsis last where it was cut (an answer over HTTP
    that would quote an input's megabytes)."""
    return text if len(text) <= most else text[:most - 1] + "…"


def first_of(items: list[str], most: int, total: int | None = None) -> str:
    """``items`` joined with commas, the first ``most`` of them and how many more: a message about
    thousands of resources names a few. ``total``: how many there are, where ``items`` holds the
    first of them only."""
    more = (len(items) if total is None else total) - most
    return ", ".join(items[:most]) + (f" and {more:,} more" if more > 0 else "")
