"""Policy metadata: who a policy is, and how strictly it is enforced.

Every policy file opens with a header of ``%@ key: value`` lines, kept apart
from its rules (as Sentinel keeps enforcement levels apart from policy code)::

    %@ name: anti-affinity
    %@ description: VNFs with the same anti-affinity label are in different zones.
    %@ owner: cloud-platform
    %@ enforcement: hard          # hard | soft | advisory
    %@ weight: 10                 # soft only: the cost of each violation (default 1)
    %@ priority: 2                # soft only: its priority level (default 1)

The project may override the enforcement of any policy by name in
``ordo.yaml`` (``policies.enforcement``), without touching the file:

* ``hard``: a plan must satisfy every constraint of the policy;
* ``soft``: each violated constraint instance costs ``weight`` at
  ``priority``; the planner minimises the cost and the plan lists what it
  violates;
* ``advisory``: never enforced; the plan lists what it violates.

Only integrity constraints (``:- body.``) are subject to enforcement; ordering
rules and preferences are what they are.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from domain.errors import Diagnostic
from domain.formats import solver_value

LEVELS = ("hard", "soft", "advisory")
KEYS = ("name", "description", "owner", "enforcement", "weight", "priority")
_LINE = re.compile(r"^%@\s*(?P<key>[A-Za-z_-]+)\s*:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class PolicyMeta:
    name: str
    description: str = ""
    owner: str = ""
    enforcement: str = "hard"
    weight: int = 1
    priority: int = 1
    declared: bool = False          # the file has a metadata header
    line: int = 0                   # where the header's enforcement (or first line) is

    def with_enforcement(self, level: str, weight: int | None, priority: int | None) -> PolicyMeta:
        return replace(self, enforcement=level, weight=weight if weight is not None else self.weight,
                       priority=priority if priority is not None else self.priority)


def _late_metadata(lines: list[str], first: int, display: str) -> list[Diagnostic]:
    """Metadata lines below the first statement (line ``first``), which the header does not reach: the
    policy would silently keep its defaults (hard, named after its file) where the author set others."""
    out = []
    for number, raw in enumerate(lines[first:], start=first + 1):
        match = _LINE.match(raw.strip().split(" #", 1)[0].rstrip())
        if match is not None and match["key"] in KEYS:
            out.append(Diagnostic(
                file=display, line=number, column=raw.index("%@") + 1, code="metadata",
                summary=f"metadata '{match['key']}' below the first statement (line {first}) is not read",
                detail="the %@ header is the comment block at the top of the file: move the line there"))
    return out


def clingo_lines(text: str) -> list[str]:
    """A policy's lines as clingo numbers them: at each line feed only (``str.splitlines`` also breaks
    at a lone CR, a form feed, U+2028 ...: a comment holding one put every line after it off by one,
    and the check of numbers too large read the wrong lines), without a CRLF's CR."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_metadata(source: str, display: str, default_name: str) -> tuple[PolicyMeta, list[Diagnostic]]:
    """The ``%@`` header of a policy file (the leading comment block)."""
    values: dict[str, tuple[str, int]] = {}
    problems: list[Diagnostic] = []
    lines = clingo_lines(source)
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if not text.startswith("%"):   # the header is the comment block at the top
            problems += _late_metadata(lines, number, display)
            break
        if not text.startswith("%@"):
            continue
        match = _LINE.match(text.split(" #", 1)[0].rstrip())
        if match is None:
            problems.append(Diagnostic(file=display, line=number, column=1, summary="bad metadata line",
                                       detail="expected '%@ key: value'", code="metadata"))
            continue
        key, value = match["key"], match["value"]
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            problems.append(Diagnostic(
                file=display, line=number, column=text.index(key) + 1, summary=f"unknown metadata key '{key}'",
                detail=f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(KEYS)}",
                code="metadata"))
            continue
        if key in values:
            problems.append(Diagnostic(file=display, line=number, column=1,
                                       summary=f"metadata key '{key}' given twice",
                                       detail=f"first at line {values[key][1]}", code="metadata"))
            continue
        values[key] = (value, number)
    meta = PolicyMeta(name=default_name, declared=bool(values), line=min((n for _, n in values.values()), default=0))
    fields: dict[str, object] = {}
    for key, (value, number) in values.items():
        column = 1
        if key == "enforcement":
            if value not in LEVELS:
                problems.append(Diagnostic(file=display, line=number, column=column,
                                           summary=f"unknown enforcement level '{value}'",
                                           detail=f"expected one of: {', '.join(LEVELS)}", code="metadata"))
                continue
            fields[key] = value
        elif key in ("weight", "priority"):
            if not re.fullmatch(r"-?\d+", value) or (key == "weight" and int(value) < 1):
                wanted = "a whole number of at least 1" if key == "weight" else "a whole number"
                problems.append(Diagnostic(file=display, line=number, column=column,
                                           summary=f"{key}: expected {wanted}, got '{value}'", code="metadata"))
                continue
            try:
                fields[key] = solver_value(int(value))
            except ValueError as exc:
                problems.append(Diagnostic(file=display, line=number, column=column, summary=f"{key}: {exc}",
                                           code="metadata"))
        elif key == "name":
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]*", value):
                problems.append(Diagnostic(file=display, line=number, column=column,
                                           summary=f"invalid policy name '{value}'",
                                           detail="expected letters, digits and _ . : -", code="metadata"))
                continue
            fields[key] = value
        else:
            fields[key] = value
    meta = replace(meta, **fields)  # type: ignore[arg-type]
    for key in ("weight", "priority"):
        if key in values and meta.enforcement != "soft":
            problems.append(Diagnostic(file=display, line=values[key][1], column=1,
                                       summary=f"'{key}' only applies to soft policies",
                                       detail=f"this one is {meta.enforcement}", severity="warning",
                                       code="metadata"))
    return meta, problems
