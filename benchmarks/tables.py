"""The result tables the benchmarks print (plain text) and write (markdown)."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, spec: str = "", none: str = "-") -> str:
    """``value`` formatted by ``spec``; ``none`` for a missing value or NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return none
    return format(value, spec)


def text_table(header: tuple[str, ...], body: list[list[str]]) -> str:
    """Right-aligned columns, a rule under the header."""
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def md_table(header: tuple[str, ...], body: list[list[str]]) -> str:
    """A markdown table, every column right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)
