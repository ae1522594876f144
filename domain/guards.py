"""Runtime guards: policies decided just before an operation runs.

A guard file (YAML, named under ``guards:`` in ``ordo.yaml``) lists guards:
rate limits, instance counts, block lists, change freezes and windows, and
one control loop blocking another (ONAP's FrequencyLimiter, MinMax,
Blacklist and FirstBlocksSecond). The syntax is in ``docs/guards.md``.

Here each file is parsed and checked on its own (every problem with
file:line:col, the field, and did-you-mean), then against the catalog
(types, operations and controllers a guard names must exist). The result is
a list of :class:`Guard`, plain frozen values the executor's guard engine
(:mod:`executor.guards`) turns into facts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import AboveZero, AtLeastZero, Name, _Strict, parse, quoted
from domain.limits import MOST_SECONDS
from domain.yamlsrc import PathKey, Source, format_path, load_yaml

KINDS = ("rate_limit", "max_instances", "min_instances", "block_list", "freeze", "window", "exclusive")
ON_DENY = ("wait", "replan", "fail")
SELECTOR_FIELDS = ("operation", "type", "resource", "target", "controller")
#: ``per`` words; any other value names a resource type (the resource or its nearest ancestor of that type).
PER_WORDS = ("resource", "part_of", "type", "target", "controller")

#: Fields each kind takes besides the selector, name, description, on_deny and retry_after.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "rate_limit": ("max", "seconds", "per"),
    "max_instances": ("max", "per"),
    "min_instances": ("min", "per"),
    "block_list": ("resources", "types", "targets"),
    "freeze": ("start", "end", "daily"),
    "window": ("start", "end", "daily"),
    "exclusive": ("while", "per"),
}
COMMON_FIELDS = ("name", "description", "kind", "on_deny", "retry_after", *SELECTOR_FIELDS)


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Name], BeforeValidator(_listify)]


def _choice(value: str, options: tuple[str, ...], what: str) -> str:
    close = difflib.get_close_matches(value, options, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(options)}"
    return f"unknown {what} '{value}' ({hint})"


_DAILY = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_daily(text: str) -> tuple[int, int]:
    """'22:00-06:00' -> (79200, 21600): seconds after midnight UTC, start and end."""
    m = _DAILY.match(text)
    if not m:
        raise ValueError(f"invalid daily window {text!r}: expected HH:MM-HH:MM in UTC, e.g. \"22:00-06:00\"")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"invalid daily window {text!r}: hours run 00-23 (24:00 as an end), minutes 00-59")
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if start == end % 86400 and (start, end) != (0, 86400):   # (00:00-24:00: the whole day)
        raise ValueError(f"invalid daily window {text!r}: it starts where it ends (the whole day is 00:00-24:00)")
    return start, end


def _as_time(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"invalid time {value!r}: expected ISO-8601, e.g. 2026-12-20T00:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


When = Annotated[dt.datetime, BeforeValidator(_as_time)]


class SelectorSpec(_Strict):
    """Which operations: every field given must match (a name or a list of names); none given: all."""

    operation: Names | None = Field(None, description="operation names (create, assign, heal ...)")
    type: Names | None = Field(None, description="resource types")
    resource: Names | None = Field(None, description="resource names")
    target: Names | None = Field(None, description="targets (cloud regions) the operation goes to")
    controller: Names | None = Field(None, description="controllers that carry it out")


class GuardSpec(SelectorSpec):
    """One guard, as written."""

    name: Name
    description: str = ""
    kind: str = Field(description=f"one of: {', '.join(KINDS)}")
    on_deny: str = Field("wait", description="wait (re-check later), replan, or fail")
    retry_after: AboveZero | None = Field(None, le=MOST_SECONDS, allow_inf_nan=False,
                                              description="wait: seconds before checking again")
    max: AtLeastZero | None = Field(None, description="rate_limit: operations per window; max_instances: count")
    min: AtLeastZero | None = Field(None, description="min_instances: fewest resources to keep")
    seconds: AboveZero | None = Field(None, le=MOST_SECONDS, allow_inf_nan=False,   # (1e308: apply's overflow)
                                          description="rate_limit: the sliding window, in seconds")
    per: str | None = Field(None, description="count or block separately per resource, part_of, type, target, "
                                              "controller, or per resource of the named type")
    resources: Names | None = Field(None, description="block_list: resources that may not be touched")
    types: Names | None = Field(None, description="block_list: resource types that may not be touched")
    targets: Names | None = Field(None, description="block_list: targets that may not be touched")
    start: When | None = Field(None, description="freeze/window: from this time (ISO-8601; UTC unless it says)")
    end: When | None = Field(None, description="freeze/window: until this time (excluded)")
    daily: Annotated[list[str], BeforeValidator(_listify)] | None = Field(
        None, description="freeze/window: every day, \"HH:MM-HH:MM\" in UTC (may wrap past midnight)")
    while_: SelectorSpec | None = Field(None, alias="while",
                                        description="exclusive: the operations that block while in flight")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(_choice(value, KINDS, "kind"))
        return value

    @field_validator("on_deny")
    @classmethod
    def _on_deny(cls, value: str) -> str:
        if value not in ON_DENY:
            raise ValueError(_choice(value, ON_DENY, "on_deny"))
        return value

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            if not isinstance(text, str):
                raise ValueError(f"expected \"HH:MM-HH:MM\" text, got {text!r}")
            parse_daily(text)
        return value


class GuardsFile(_Strict):
    guards: list[GuardSpec] = Field(default_factory=list, description="the guards, checked in this order")


# --- the parsed form ---------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Per field, the names allowed; an empty tuple allows any."""

    operation: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    controller: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: SelectorSpec | None) -> Selector:
        if spec is None:
            return cls()
        return cls(**{f: tuple(getattr(spec, f) or ()) for f in SELECTOR_FIELDS})

    def constrained(self) -> dict[str, tuple[str, ...]]:
        return {f: getattr(self, f) for f in SELECTOR_FIELDS if getattr(self, f)}

    def matches(self, values: dict[str, str | None]) -> bool:
        """Whether an operation with these field values is selected (a reference; the engine asks Datalog)."""
        return all(values.get(f) in names for f, names in self.constrained().items())


@dataclass(frozen=True)
class Guard:
    """One guard, validated and normalised (times in seconds, UTC)."""

    name: str
    kind: str
    description: str = ""
    match: Selector = Selector()
    on_deny: str = "wait"
    retry_after: float | None = None
    max: int | None = None
    min: int | None = None
    seconds: float | None = None
    per: str | None = None
    block_resources: tuple[str, ...] = ()
    block_types: tuple[str, ...] = ()
    block_targets: tuple[str, ...] = ()
    periods: tuple[tuple[float, float], ...] = ()     # absolute [start, end), epoch seconds
    daily: tuple[tuple[int, int], ...] = ()           # [start, end) seconds after midnight UTC; no wrap
    blocker: Selector | None = None                    # exclusive: what blocks while in flight
    file: str = ""
    line: int = 0
    index: int = 0                                     # its place in its file's list

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def about_targets(self) -> bool:
        """Whether the guard is about where an operation goes (a re-plan may place it elsewhere)."""
        return bool(self.match.target or self.block_targets or self.per == "target")


def _normalise(spec: GuardSpec, file: str, line: int, index: int) -> Guard:
    daily: list[tuple[int, int]] = []
    for text in spec.daily or ():
        start, end = parse_daily(text)
        if end > start:
            daily.append((start, end))
        else:  # wraps past midnight: two pieces
            daily.append((start, 86400))
            if end:
                daily.append((0, end))
    periods = ((spec.start.timestamp(), spec.end.timestamp()),) if spec.start and spec.end else ()
    return Guard(
        name=spec.name, kind=spec.kind, description=spec.description, match=Selector.of(spec),
        on_deny=spec.on_deny, retry_after=spec.retry_after, max=spec.max, min=spec.min, seconds=spec.seconds,
        per=spec.per, block_resources=tuple(spec.resources or ()), block_types=tuple(spec.types or ()),
        block_targets=tuple(spec.targets or ()), periods=periods, daily=tuple(sorted(daily)),
        blocker=Selector.of(spec.while_) if spec.kind == "exclusive" else None, file=file, line=line, index=index)


# --- loading -------------------------------------------------------------------------


def _kind_problems(spec: GuardSpec, src: Source, path: PathKey) -> list[Diagnostic]:
    """Fields a kind needs and fields it does not take."""
    problems: list[Diagnostic] = []
    kind = spec.kind
    given = set(spec.model_fields_set)
    allowed = set(COMMON_FIELDS) | set(KIND_FIELDS[kind])
    for name in sorted(given):
        key = "while" if name == "while_" else name
        if key not in allowed:
            line, column = src.where_key(path + (key,))
            takes = ", ".join(KIND_FIELDS[kind])
            problems.append(Diagnostic(file=src.file, line=line, column=column, path=_path(path + (key,)),
                                       summary=f"'{key}' does not apply to a {kind} guard",
                                       detail=f"a {kind} guard takes: {takes}", code="schema"))

    def need(field: str, why: str) -> None:
        line, column = src.where_key(path + ("kind",))
        problems.append(Diagnostic(file=src.file, line=line, column=column, path=_path(path),
                                   summary=f"missing required field '{field}'", detail=why, code="schema"))

    if kind == "rate_limit":
        if spec.max is None:
            need("max", "a rate_limit guard allows at most 'max' operations per 'seconds'")
        elif spec.max == 0:
            problems.append(src.diagnostic(path + ("max",), "a rate limit of 0 blocks every operation",
                                           "use a block_list guard for that", code="schema"))
        if spec.seconds is None:
            need("seconds", "the sliding window of a rate_limit guard, in seconds")
    elif kind in ("max_instances", "min_instances"):
        bound = "max" if kind == "max_instances" else "min"
        if getattr(spec, bound) is None:
            need(bound, f"a {kind} guard bounds the count of resources of its 'type'")
        if not spec.type:
            need("type", f"the resource type(s) a {kind} guard counts")
        if spec.per is not None and spec.per in PER_WORDS and spec.per != "part_of":
            problems.append(src.diagnostic(path + ("per",), f"a {kind} guard counts per 'part_of' or per "
                                           f"resource of a named type, not per '{spec.per}'", code="schema"))
    elif kind == "block_list":
        if not (spec.resources or spec.types or spec.targets):
            need("resources", "a block_list guard names resources, types or targets (at least one)")
    elif kind in ("freeze", "window"):
        if (spec.start is None) != (spec.end is None):
            need("end" if spec.end is None else "start", "an absolute window needs both start and end")
        elif spec.start is not None and spec.end is not None and spec.end <= spec.start:
            problems.append(src.diagnostic(path + ("end",), "the window ends before it starts",
                                           f"start {spec.start.isoformat()}, end {spec.end.isoformat()}",
                                           code="schema"))
        if spec.start is None and spec.end is None and not spec.daily:
            need("daily", f"a {kind} guard needs start and end, or daily (\"HH:MM-HH:MM\" UTC)")
    elif kind == "exclusive" and spec.while_ is None:
        need("while", "the operations that, while in flight, hold back the ones this guard selects")
    return problems


def _path(path: PathKey) -> str:
    return format_path(path)


def load_guard_file(path: Path, display: str) -> tuple[list[Guard], Source, list[Diagnostic]]:
    """One guard file, parsed and checked on its own: its well-formed guards and the problems of
    the others, every one (a guard of an unknown kind hid the other guards' missing fields and
    what check_guards finds of them: a review's). Raises DiagnosticsError when the file cannot be
    read, or its shape is not a list of guards."""
    src = load_yaml(path, display)
    problems: list[Diagnostic] = []
    try:
        specs = list(enumerate(parse(GuardsFile, src).guards))
    except DiagnosticsError as exc:
        specs, problems = _well_formed(src, exc), list(exc.diagnostics)
        problems += _named_twice(src, {index for index, _ in specs})
    guards: list[Guard] = []
    for index, spec in specs:
        base: PathKey = ("guards", index)
        problems += _kind_problems(spec, src, base)
        guards.append(_normalise(spec, src.file, src.where(base)[0], index))
    return guards, src, problems


def _well_formed(src: Source, failed: DiagnosticsError) -> list[tuple[int, GuardSpec]]:
    """The guards of a file that did not validate whole, each validated on its own: those without a
    problem (the whole file's validation named every problem of the others); ``failed`` raised again
    when the file is not a list of guards."""
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("guards"), list):
        raise failed
    specs = []
    for index, item in enumerate(data["guards"]):
        with contextlib.suppress(ValidationError):   # (named already; Source.sub per guard read the file's
            specs.append((index, GuardSpec.model_validate(item)))   # positions once each: quadratic, a review's)
    return specs


def _named_twice(src: Source, well_formed: set[int]) -> list[Diagnostic]:
    """The guards of a file that did not validate whole that take a name an earlier one took, where
    either is not well formed (check_guards names those of two well-formed ones): a guard with other
    problems hid that the next one of its name was defined twice (a docs sweep's)."""
    problems: list[Diagnostic] = []
    first: dict[str, int] = {}
    for index, item in enumerate(src.data["guards"]):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first and not {index, first[name]} <= well_formed:
            problems.append(src.diagnostic(("guards", index, "name"), f"guard {quoted(name)} is defined twice",
                                           f"first at {src.file}:{src.where(('guards', first[name]))[0]}",
                                           code="guards"))
        first.setdefault(name, index)
    return problems


def check_guards(guards: list[Guard], sources: dict[str, Source], model: Any) -> list[Diagnostic]:
    """Names a guard uses that the catalog (or, for a target, the inventory) does not define; guard
    names used twice."""
    problems: list[Diagnostic] = []
    types = sorted(model.kinds)
    operations = sorted({op.name for kind in model.kinds.values() for op in kind.operations})
    controllers = sorted(model.controllers)
    first: dict[str, Guard] = {}
    for guard in guards:
        src = sources[guard.file]
        base: PathKey = ("guards", guard.index)
        if guard.name in first:
            other = first[guard.name]
            problems.append(src.diagnostic(base + ("name",), f"guard '{guard.name}' is defined twice",
                                           f"first at {other.where}", code="guards"))
        first.setdefault(guard.name, guard)

        selectors: list[tuple[Selector, PathKey]] = [(guard.match, base)]
        if guard.blocker is not None:
            selectors.append((guard.blocker, base + ("while",)))
        for selector, at in selectors:
            for field_name, options, what in (("type", types, "resource type"),
                                              ("operation", operations, "operation"),
                                              ("controller", controllers, "controller")):
                values = getattr(selector, field_name)
                single = isinstance(_raw(src, at + (field_name,)), str)
                for i, value in enumerate(values):
                    problems += _known(src, value, options, what, at + ((field_name,) if single else (field_name, i)))
        single = isinstance(_raw(src, base + ("types",)), str)
        for i, value in enumerate(guard.block_types):
            problems += _known(src, value, types, "resource type", base + (("types",) if single else ("types", i)))
        # a target blocked that the inventory does not have would block nothing (a typo protects nothing);
        # resources are not checked: a block list may name one a later request makes
        single = isinstance(_raw(src, base + ("targets",)), str)
        for i, value in enumerate(guard.block_targets):
            problems += _known(src, value, sorted(model.targets), "target",
                               base + (("targets",) if single else ("targets", i)))
        if guard.per is not None and guard.per not in PER_WORDS and guard.per not in model.kinds:
            close = difflib.get_close_matches(guard.per, list(PER_WORDS) + types, n=1)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"expected one of: {', '.join(PER_WORDS)}, or a resource type ({', '.join(types)})")
            problems.append(src.diagnostic(base + ("per",), f"unknown per '{guard.per}'", hint,
                                           code="guards"))
    return problems


def _known(src: Source, value: str, options: list[str], what: str, at: PathKey) -> list[Diagnostic]:
    if value in options:
        return []
    close = difflib.get_close_matches(value, options, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(options)}"
    return [src.diagnostic(at, f"unknown {what} '{value}'", hint, code="guards")]


def _raw(src: Source, path: PathKey) -> Any:
    data: Any = src.data
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def load_guards(root: Path, rels: list[str], project_src: Source,
                display: Any) -> tuple[list[Guard], dict[str, Source], list[Diagnostic]]:
    """The guard files ordo.yaml names, in order: guards, their sources, problems."""
    guards: list[Guard] = []
    sources: dict[str, Source] = {}
    problems: list[Diagnostic] = []
    for index, rel in enumerate(rels):
        path = root / rel
        if not path.is_file():
            problems.append(project_src.diagnostic(("guards", index), f"no such guard file '{rel}'"))
            continue
        try:
            found, src, file_problems = load_guard_file(path, display(path, root))
        except DiagnosticsError as exc:
            problems.extend(exc.diagnostics)
            continue
        problems.extend(file_problems)
        if src.file in sources:
            problems.append(project_src.diagnostic(("guards", index), f"guard file '{rel}' is named twice"))
            continue
        sources[src.file] = src
        guards.extend(found)
    return guards, sources, problems


__all__ = ["Guard", "GuardSpec", "GuardsFile", "KINDS", "ON_DENY", "SELECTOR_FIELDS", "Selector", "check_guards",
           "load_guard_file", "load_guards", "parse_daily"]
