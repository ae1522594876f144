"""The plan: an immutable, versioned value.

A plan records what it was made from (a digest of every input), the
operations with the reason each is there, the precedence edges with the rule
that made each, placements, the objective's cost and a schedule into waves.
Fields such as ``reason`` are for people; execution uses operations, edges and
inputs only. Serialised with sorted keys and sorted lists: the same inputs
give the same bytes.

A plan file may come from elsewhere: ``Plan.read`` bounds its size and
``Plan.from_json`` refuses anything ordo would not have written (bad JSON,
wrong types, names outside the models' pattern, operations that edges, waves,
groups or changes name but the plan lacks, a cycle), naming the file and the
field. Whether the plan is the one ordo makes from the project is for
``planner/verify.py``.
"""

from __future__ import annotations

import functools
import itertools
import json
import keyword
import operator
import types
import typing
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import DuplicateKey, Name, SettingsSpec, unique_keys
from domain.gcpause import paused_gc
from domain.yamlsrc import format_path, not_utf8, read_at_most

FORMAT_VERSION = "1.2"
#: Versions ``from_json`` reads (1.0 had no concurrency groups, 1.1 not the files it was made from;
#: they default to none).
READABLE_VERSIONS = ("1.0", "1.1", FORMAT_VERSION)
MB = 1024 * 1024
#: The largest plan file ``Plan.read`` accepts by default, in bytes: settings.max_plan_mb's
#: default (a plan of 10,000 resources is about 17 MB, of 100,000 about 170 MB).
MAX_PLAN_BYTES = SettingsSpec.model_construct().max_plan_bytes
#: Past DENSE_FROM bytes, a plan file with more than one object or array in MIN_PART_BYTES is
#: refused before it is parsed. Each costs 56 to 360 bytes of memory once parsed: a file of
#: nothing but empty lists would take 22 times its size (1.4 GB at the default 64 MB), the
#: densest that passes about 15 times. Ordo's plans have one in about 85 bytes; an edge
#: between one-letter names with one rule, the densest part of one, one in 27.
DENSE_FROM = MB
MIN_PART_BYTES = 16
#: The most problems reported for one plan file.
MAX_PROBLEMS = 20

OpId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*/[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                                        max_length=401)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]   # clingo's statistics and line numbers fit in 64 bits
Positive = Annotated[int, Field(ge=1, le=2**31 - 1)]
# A cost or a priority level: clasp's sums are 32-bit (weights adding up past that are refused).
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]

# The answer to a planning request (planner.core.Outcome). Only optimal and satisfiable
# come with a plan; a saved plan that claims another is refused by verify_saved_plan.
Status = Literal["optimal", "satisfiable", "no_plan", "timeout"]
Action = Literal["create", "delete", "update", "change", "run"]


class _Frozen(BaseModel):
    # defer_build: `ordo plan` makes its plan without validation (``trusted``) and writes it
    # with ``to_json``; the validators are built when a saved plan is first read
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def _json(self) -> dict[str, Any]:
        """Its fields as ``to_json`` writes them (``model_dump(mode="json")``'s:
        every field here is a JSON type, a tuple, or another part of the plan)."""
        return self.__dict__


M = TypeVar("M", bound=_Frozen)
T = TypeVar("T")
#: A list of a plan: validation stops at its first bad item (``Field(fail_fast=True)``). Every
#: error is an object of its own: 60 MB of operations with a bad value each were 727,000.
Items = Annotated[tuple[T, ...], Field(fail_fast=True)]
#: A mapping of a plan, read the same way.
Names = Annotated[dict[Name, Name], Field(fail_fast=True)]
Texts = Annotated[dict[str, str], Field(fail_fast=True)]
_new = object.__new__
_set = object.__setattr__


def trusted(cls: type[M], **values: Any) -> M:
    """A part of a plan from values ordo has just computed (``build_plan``),
    without validation: what ``cls(**values)`` gives for them, in about two
    thirds of its time, as ``model_construct`` does (which is slower than
    validating).
    Every field must be given, with the type the model has (a tuple, not a
    list; a float, not an int); a field missing or unknown is a TypeError.
    Never for what is read: ``from_json`` validates every plan that comes
    from elsewhere. For many parts of one kind, ``maker(cls)`` once."""
    return maker(cls)(**values)


@functools.cache
def maker(cls: type[M]) -> Callable[..., M]:
    """``trusted`` for one model: a function taking exactly its fields, as
    keywords (Python's own binding refuses a field missing or unknown), that
    makes the model from them without validation: about a third of the time
    validation takes, half of ``trusted``'s. Every part it makes shares one
    set of the fields given, which nothing changes: they are all given, and
    the models are frozen. Written as dataclasses write their ``__init__``."""
    names = tuple(cls.__pydantic_fields__)   # a field's name never starts with '_': the names below are free
    if not all(name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name
               for name in names):   # (source code reads a name in NFKC)
        raise TypeError(f"{cls.__name__}: a field whose name is no parameter's")
    given = set(names)
    source = (f"def make(*, {', '.join(names)}):\n"
              f"    _obj = _new(_cls)\n"
              f"    _set(_obj, '__dict__', {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n"
              f"    _set(_obj, '__pydantic_fields_set__', _given)\n"
              f"    _set(_obj, '__pydantic_extra__', None)\n"
              f"    _set(_obj, '__pydantic_private__', None)\n"
              f"    return _obj\n")
    scope: dict[str, Any] = {"_new": _new, "_set": _set, "_cls": cls, "_given": given}
    exec(source, scope)  # noqa: S102 (the fields' names only, checked above)
    make = scope["make"]
    make.__qualname__ = f"maker({cls.__name__})"
    return make


class InputFile(_Frozen):
    path: str
    sha256: str


class PlannedOperation(_Frozen):
    id: OpId
    resource: Name
    type: Name
    operation: Name
    from_state: Name
    to_state: Name
    controller: Name
    duration: Seconds
    wave: Positive
    reason: str


class Edge(_Frozen):
    before: OpId
    after: OpId
    rules: Items[str]


class ResourceChange(_Frozen):
    resource: Name
    type: Name
    actions: Items[Action] = Field(min_length=1)
    before: Name
    after: Name
    placement: Name | None = None
    operations: Items[OpId]
    reason: str

    @property
    def shape(self) -> str:
        """Its action as a plan shows it: ``replace`` for a replacement (torn down, made again)."""
        return self.actions[0] if len(self.actions) == 1 else "replace"


class Group(_Frozen):
    """A concurrency group named in policies: at most ``limit`` of its operations at once."""

    name: str
    limit: Positive
    operations: Items[OpId]


class Violation(_Frozen):
    """A soft or advisory policy's constraint that the plan does not satisfy."""

    policy: str
    enforcement: str
    file: str
    line: Count
    description: str
    rule: str
    bindings: Texts
    resources: Items[str]


def cost_text(levels: Iterable[tuple[int, int]]) -> str:
    """(priority, cost) levels as ordo shows them: ``26@1, 3@0``; ``none`` for no level."""
    return ", ".join(f"{cost}@{priority}" for priority, cost in levels) or "none"


class CostLevel(_Frozen):
    priority: Int32
    cost: Int32
    # The solver's proven lower bound, when the time limit struck before the
    # cost was proved optimal (status satisfiable): cost - bound is the gap.
    bound: Int32 | None = Field(None, exclude_if=lambda v: v is None)

    def _json(self) -> dict[str, Any]:
        return self.__dict__ if self.bound is not None else {k: v for k, v in self.__dict__.items() if k != "bound"}


class Plan(_Frozen):
    format_version: str = FORMAT_VERSION
    status: Status
    request: str
    #: The request and the inventory file it was made from, as its inputs name them (relative to the
    #: project folder when inside it; "": none, or a plan of 1.1 or before): what ``ordo apply
    #: plan.json`` loads again (ordo/cli.py), which the digest then checks.
    request_file: str = ""
    inventory_file: str = ""
    digest: str
    inputs: Items[InputFile]
    resource_changes: Items[ResourceChange]
    operations: Items[PlannedOperation]
    edges: Items[Edge]
    waves: Items[Items[OpId]]
    placements: Names
    cost: Items[CostLevel]
    makespan: Seconds
    critical_path: Seconds
    # (a plan from elsewhere is held to MOST_AT_ONCE by planner.verify; a run journaled before the bound
    # was set may hold more, and is still read)
    concurrency: Positive
    groups: Items[Group] = ()
    violations: Items[Violation] = ()
    ground_atoms: Count
    ground_rules: Count

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[str, int]:
        """Resources to create, change (update in place or another state), delete,
        and run an operation on without changing them (Terraform's summary, plus runs); one
        replaced (torn down, made again) counts as deleted and created, as in Terraform's."""
        counts = {"create": 0, "change": 0, "delete": 0, "run": 0}
        for change in self.resource_changes:
            for action in dict.fromkeys(change.actions):
                counts[action if action in counts else "change"] += 1
        return counts

    @cached_property
    def _by_id(self) -> dict[str, PlannedOperation]:
        return {op.id: op for op in self.operations}

    def operation(self, op_id: str) -> PlannedOperation:
        return self._by_id[op_id]

    def _json(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in type(self).__pydantic_fields__}   # not the cached _by_id

    @paused_gc()
    def to_json(self) -> str:
        """``json.dumps(self.model_dump(mode="json"), sort_keys=True)``, compact,
        byte for byte, in 60% of its time: the long lists (operations, edges,
        resource changes) a row at a time from a template, the rest by json's
        C encoder walking the plan itself (no dict copy). Compact because the C
        encoder only runs without indent (ten times faster on large plans):
        pipe through `python -m json.tool` to read it."""
        return "{" + ",".join([f"{_text(name)}:{_ROWS[name](value) if name in _ROWS else _dumps(value)}"
                               for name, value in sorted(self._json().items())]) + "}\n"

    @classmethod
    @paused_gc()
    def from_json(cls, text: str, source: str = "<plan>") -> Plan:
        """A plan from its JSON text; raises DiagnosticsError naming ``source``
        and the field for anything ordo would not have written."""
        parts = text.count("{") + text.count("[")
        if len(text) > DENSE_FROM and parts * MIN_PART_BYTES > len(text):
            raise DiagnosticsError([Diagnostic(
                file=source, summary=f"not an ordo plan: {parts:,} objects and arrays in {len(text):,} bytes",
                detail=f"more than one in {MIN_PART_BYTES} bytes; ordo's plans have about one in 85")])
        data = _parse(text, source)
        version = data.get("format_version") if isinstance(data, dict) else None
        if not isinstance(data, dict) or version not in READABLE_VERSIONS:
            found = "none" if version is None else repr(version)
            summary = ("not an ordo plan: expected a JSON object" if not isinstance(data, dict) else
                       f"format_version {found[:60]} is not one ordo reads")
            detail = f"expected {' or '.join(READABLE_VERSIONS)}"
            if isinstance(data, dict) and version is None and "operations" not in data:
                # (a request written in JSON, as `ordo plan` reads one: here a .json file is a saved plan)
                summary = "not an ordo plan (no format_version, no operations): a .json file is read as a plan " \
                          "saved by `ordo plan --out`"
                detail = "a request written in JSON is read as one when named *.yaml: YAML reads JSON"
            raise DiagnosticsError([Diagnostic(file=source, path="" if not isinstance(data, dict) else
                                               "format_version", summary=summary, detail=detail)])
        problems = _unknown_or_missing(data, cls, ())
        del data
        if problems:
            raise DiagnosticsError([Diagnostic(file=source, path=format_path(path), summary=summary)
                                    for path, summary in problems])
        try:
            plan = cls.model_validate_json(text, strict=True)
        except ValidationError as exc:
            raise DiagnosticsError(_field_problems(exc, source)) from None
        problems = plan._inconsistencies()
        if problems:
            raise DiagnosticsError([Diagnostic(file=source, path=path, summary=summary) for path, summary in problems])
        return plan

    @classmethod
    def read(cls, path: Path, limit: int | None = None) -> Plan:
        """A plan file from elsewhere: at most ``limit`` (default MAX_PLAN_BYTES; the project's
        settings.max_plan_mb where there is one) bytes of UTF-8 JSON."""
        source = str(path)
        limit = MAX_PLAN_BYTES if limit is None else limit
        try:
            with path.open("rb") as handle:
                raw = read_at_most(handle, limit)
        except OSError as exc:
            raise DiagnosticsError([Diagnostic(file=source, summary=f"cannot read the plan: {exc.strerror}")]) from None
        if raw is None:
            raise DiagnosticsError([Diagnostic(
                file=source, summary=f"the plan file is larger than {limit:,} bytes",
                detail="settings.max_plan_mb in ordo.yaml raises the limit")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:   # (as a YAML or a policy file says it: "byte 38" read as its value)
            raise DiagnosticsError([not_utf8(source, raw, exc.start, "a saved plan")]) from None
        del raw   # not held while the plan is built: as large again as the text
        return cls.from_json(text, source)

    def _inconsistencies(self) -> list[tuple[str, str]]:
        """(field path, problem), at most MAX_PROBLEMS, for what no plan of ordo's has:
        operations named twice or under another id, references to operations the plan
        lacks, a cycle, waves that do not hold each operation once, in order."""
        # The first few only: a file of millions of bad references would take gigabytes to name them all.
        named = [] if self._consistent() else list(itertools.islice(self._naming_problems(), MAX_PROBLEMS))
        return named or self._ordering_problems()   # as for every plan of ordo's: only the order is left to check

    def _naming_problems(self) -> Iterator[tuple[str, str]]:
        ids = Counter(op.id for op in self.operations)
        for i, op in enumerate(self.operations):
            if op.id != f"{op.resource}/{op.operation}":
                yield f"operations[{i}].id", f"'{op.id}' is not '{op.resource}/{op.operation}'"
            if ids[op.id] > 1:
                yield f"operations[{i}].id", f"operation '{op.id}' is listed {ids[op.id]} times"
        unknown = "operation '{}' is not in the plan's operations"
        for i, edge in enumerate(self.edges):
            if edge.before not in ids:
                yield f"edges[{i}].before", unknown.format(edge.before)
            if edge.after not in ids:
                yield f"edges[{i}].after", unknown.format(edge.after)
        listed = Counter((e.before, e.after) for e in self.edges)
        yield from (("edges", f"the edge {a} -> {b} is listed {n} times") for (a, b), n in sorted(listed.items())
                    if n > 1)
        seen: dict[str, int] = {}
        for w, wave in enumerate(self.waves):
            if not wave:
                yield f"waves[{w}]", "an empty wave (ordo writes none)"
            for j, op_id in enumerate(wave):
                if op_id not in ids:
                    yield f"waves[{w}][{j}]", unknown.format(op_id)
                if op_id in seen:
                    yield f"waves[{w}][{j}]", f"operation '{op_id}' is in more than one place in waves"
                seen.setdefault(op_id, w + 1)
        for i, op in enumerate(self.operations):
            if seen.get(op.id, op.wave) != op.wave:
                yield f"operations[{i}].wave", f"operation '{op.id}' is in wave {seen[op.id]}, not {op.wave}"
            elif op.id not in seen:
                yield "waves", f"operation '{op.id}' is in no wave"
        for i, group in enumerate(self.groups):
            for j, op_id in enumerate(group.operations):
                if op_id not in ids:
                    yield f"groups[{i}].operations[{j}]", unknown.format(op_id)
        changed: dict[str, str] = {}
        for i, change in enumerate(self.resource_changes):
            for j, op_id in enumerate(change.operations):
                if op_id not in ids:
                    yield f"resource_changes[{i}].operations[{j}]", unknown.format(op_id)
                elif self.operation(op_id).resource != change.resource:
                    yield (f"resource_changes[{i}].operations[{j}]",
                           f"operation '{op_id}' is not an operation of '{change.resource}'")
                changed.setdefault(op_id, change.resource)
        yield from (("resource_changes", f"operation '{op.id}' is in no resource change") for op in self.operations
                    if op.id not in changed)

    def _consistent(self) -> bool:
        """Whether ``_inconsistencies`` finds nothing before the order: the same conditions,
        each checked a set at a time (its loops, which name each problem, take five times as
        long on a large plan)."""
        ops, edges = self.operations, self.edges
        ids = {op.id for op in ops}
        if len(ids) != len(ops) or any(op.id != f"{op.resource}/{op.operation}" for op in ops):
            return False   # an operation named twice, or under another id
        if not ({e.before for e in edges} <= ids and {e.after for e in edges} <= ids) or \
                len({(e.before, e.after) for e in edges}) != len(edges):
            return False   # an edge to an unknown operation, or listed twice
        wave_of = {op_id: number for number, wave in enumerate(self.waves, start=1) for op_id in wave}
        if not all(self.waves) or sum(map(len, self.waves)) != len(wave_of) or not wave_of.keys() <= ids or \
                any(wave_of.get(op.id) != op.wave for op in ops):
            return False   # an empty wave, an unknown operation in one, one in two places, or not in its own
        if not all(ids.issuperset(group.operations) for group in self.groups):
            return False
        resource_of = {op.id: op.resource for op in ops}
        if not all(resource_of.get(op_id) == change.resource
                   for change in self.resource_changes for op_id in change.operations):
            return False   # an unknown operation in a change, or another resource's
        return len({op_id for change in self.resource_changes for op_id in change.operations}) == len(ids)

    def _ordering_problems(self) -> list[tuple[str, str]]:
        """A cycle in the edges, or an edge whose operations' waves run the other way."""
        wave = {op.id: op.wave for op in self.operations}
        if all(wave[e.before] < wave[e.after] for e in self.edges):
            return []   # the waves order every edge: a cycle would have to go back in one
        after: dict[str, list[str]] = {op.id: [] for op in self.operations}
        waiting = dict.fromkeys(after, 0)
        for edge in self.edges:
            after[edge.before].append(edge.after)
            waiting[edge.after] += 1
        ready = [op_id for op_id, n in waiting.items() if n == 0]
        while ready:
            for nxt in after[ready.pop()]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        stuck = sorted(op_id for op_id, n in waiting.items() if n > 0)
        if stuck:
            shown = ", ".join(stuck[:5]) + (f" and {len(stuck) - 5} more" if len(stuck) > 5 else "")
            return [("edges", f"the edges form a cycle through {shown}")]
        backwards = ((i, e) for i, e in enumerate(self.edges) if wave[e.before] >= wave[e.after])
        return [(f"edges[{i}]", f"{e.before} (wave {wave[e.before]}) must come before {e.after} (wave {wave[e.after]})")
                for i, e in itertools.islice(backwards, MAX_PROBLEMS)]


#: What pydantic says of a value of another JSON kind, by the kind a field takes.
_KINDS: dict[type, tuple[tuple[type, ...], str]] = {
    dict: ((dict,), "Input should be an object"), tuple: ((list,), "Input should be a valid array"),
    str: ((str,), "Input should be a valid string"), int: ((int,), "Input should be a valid integer"),
    float: ((int, float), "Input should be a valid number")}
#: The JSON kinds that can hold more than themselves.
_CONTAINERS = frozenset({list, dict})


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _kind(annotation: Any) -> tuple[tuple[type, ...], str] | None:
    """The JSON kinds (as parsed) a field of this annotation takes, and the problem otherwise."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is Literal and all(isinstance(arg, str) for arg in typing.get_args(annotation)):
        return _KINDS[str]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _KINDS[dict]
    return _KINDS.get(origin or annotation)


class _Form(NamedTuple):
    """What a field holds, as parsed JSON: ``kind`` (list, dict, a model, or None for a
    value that holds nothing more: a string, a number, null), and what its items hold."""
    kind: Any
    problem: str   # what pydantic says of another kind here
    items: _Form | None = None


def _is_part(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, _Frozen)


def _form(annotation: Any) -> _Form:
    annotation = _unwrap(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _form(next(arg for arg in args if arg is not type(None)))   # or null, which holds nothing
    if _is_part(annotation):
        return _Form(annotation, _KINDS[dict][1])
    if origin is tuple:
        return _Form(list, _KINDS[tuple][1], _form(args[0]))
    if origin is dict:
        return _Form(dict, _KINDS[dict][1], _form(args[1]))
    kind = _kind(annotation)
    return _Form(None, kind[1] if kind else "Input should be a valid value")


def _wrong_form(value: Any, form: _Form, path: tuple) -> list[tuple[tuple, str]]:
    """The first place in ``value`` that holds a list or an object where ``form`` has none,
    or none where it has one: [(path, problem)], or []. Pydantic's error for such a
    place keeps all it holds, converted from the JSON (2 GB for a 60 MB list of zeros)."""
    kind, items = form.kind, form.items
    if kind is None:
        return [(path, form.problem)] if type(value) in _CONTAINERS else []
    if _is_part(kind):
        return _unknown_or_missing(value, kind, path)
    if type(value) is not kind:
        return [(path, form.problem)]
    if items.kind is None and _CONTAINERS.isdisjoint(map(type, value.values() if kind is dict else value)):
        return []   # scalars: one pass first
    if kind is list and _is_part(items.kind) and (leaf := _shape(items.kind)).flat and _flat_parts(value, leaf):
        return []   # parts without parts: a field at a time first
    for key in (value.keys() if kind is dict else range(len(value))):
        found = _wrong_form(value[key], items, (*path, key))
        if found:
            return found
    return []


class _Shape(NamedTuple):
    fields: frozenset[str]
    required: frozenset[str]
    kinds: dict[str, tuple[tuple[type, ...], str]]   # the JSON kind each field takes, where known
    forms: tuple[tuple[str, _Form], ...]              # what each field holds
    scalars: tuple[str, ...]                          # the fields that hold no list or object
    holders: tuple[tuple[str, type], ...]             # those that hold a list (or an object) of such
    flat: bool                                        # whether those are all its fields


@functools.cache
def _shape(model: type[_Frozen]) -> _Shape:
    """What ``_unknown_or_missing`` checks of a part of ``model``, from its fields."""
    fields = model.model_fields
    forms = tuple((name, _form(info.annotation)) for name, info in fields.items())
    scalars = tuple(name for name, form in forms if form.kind is None)
    holders = tuple((name, form.kind) for name, form in forms if form.kind in (list, dict) and form.items.kind is None)
    return _Shape(frozenset(fields), frozenset(name for name, info in fields.items() if info.is_required()),
                  {name: kind for name, info in fields.items() if (kind := _kind(info.annotation))}, forms,
                  scalars, holders, len(scalars) + len(holders) == len(fields))


def _flat_parts(items: list, shape: _Shape) -> bool:
    """Whether every item of a list of parts of a flat model (no part within) is an object
    with the model's fields, each a list, an object or neither as the model says, and no
    list or object within those: all values, or a field, at a time at C speed."""
    if not ({dict} >= set(map(type, items)) and all(map(shape.fields.issuperset, items))):
        return False
    if not ({len(shape.fields)} >= set(map(len, items)) if shape.required == shape.fields else   # no field optional
            all(map(operator.ge, map(dict.keys, items), repeat(shape.required)))):
        return False
    if not shape.holders:
        return _CONTAINERS.isdisjoint(map(type, chain.from_iterable(map(dict.values, items))))
    if not all(_CONTAINERS.isdisjoint(map(type, map(dict.get, items, repeat(name)))) for name in shape.scalars):
        return False
    for name, kind in shape.holders:
        column = list(map(dict.get, items, repeat(name), repeat(kind())))
        inner = chain.from_iterable(column if kind is list else map(dict.values, column))
        if not ({kind} >= set(map(type, column)) and _CONTAINERS.isdisjoint(map(type, inner))):
            return False
    return True


def _unknown_or_missing(data: Any, model: type[_Frozen], path: tuple) -> list[tuple[tuple, str]]:
    """The first part of a parsed plan that has fields its model lacks, lacks fields it
    requires, or holds a list or an object where its model has none (or none where it has
    one): (path of the field, problem) for each, with those of its fields whose value is of
    another JSON kind (at most MAX_PROBLEMS in all); [] when none does. Checked before
    validation, whose errors cost too much on such input: one for each field unknown
    (millions in a file of 60 MB); each for a missing field holds the whole object it is
    missing from, made anew from the JSON (a file of 6 MB missing its top-level fields took
    1.4 GB to refuse); each for a value of another kind holds that value."""
    if not isinstance(data, dict):
        return []   # validation says what it should be
    shape = _shape(model)
    fields, required, kinds = shape.fields, shape.required, shape.kinds
    if not data.keys() <= fields or not required <= data.keys():
        problems = [((*path, name), "Extra inputs are not permitted")
                    for name in itertools.islice((name for name in data if name not in fields), MAX_PROBLEMS)]
        problems += [((*path, name), "Field required") for name in sorted(required - data.keys())]
        problems += [((*path, name), kinds[name][1]) for name in sorted(data.keys() & kinds.keys())
                     if not isinstance(data[name], kinds[name][0]) or data[name] is True or data[name] is False]
        return sorted(problems)[:MAX_PROBLEMS]
    for name, form in shape.forms:
        found = name in data and _wrong_form(data[name], form, (*path, name))
        if found:
            return found
    return []


def _fields(obj: Any) -> dict[str, Any]:
    if isinstance(obj, _Frozen):
        return obj._json()
    raise TypeError(f"{type(obj).__name__} is not part of a plan")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_fields, sort_keys=True, separators=(",", ":"))


_text = encode_basestring_ascii   # what json.dumps writes for a str, a float and an int
_float = float.__repr__
_int = int.__repr__


def _texts(items: tuple[str, ...]) -> str:
    return ",".join(map(_text, items))


def _template(model: type[_Frozen], lists: tuple[str, ...] = ()) -> str:
    """``{"a":%s,...}``: the model's fields in sorted order, ``lists`` as JSON lists."""
    return "{" + ",".join(f'"{name}":[%s]' if name in lists else f'"{name}":%s'
                          for name in sorted(model.__pydantic_fields__)) + "}"


# One row per operation, edge and resource change, the values in the templates' (sorted) field order.
_OPERATION = _template(PlannedOperation)
_EDGE = _template(Edge, ("rules",))
_CHANGE = _template(ResourceChange, ("actions", "operations"))


def _operations(ops: tuple[PlannedOperation, ...]) -> str:
    return "[" + ",".join([_OPERATION % (
        _text(o.controller), _float(o.duration), _text(o.from_state), _text(o.id), _text(o.operation),
        _text(o.reason), _text(o.resource), _text(o.to_state), _text(o.type), _int(o.wave)) for o in ops]) + "]"


def _edges(edges: tuple[Edge, ...]) -> str:
    return "[" + ",".join([_EDGE % (_text(e.after), _text(e.before), _texts(e.rules)) for e in edges]) + "]"


def _changes(changes: tuple[ResourceChange, ...]) -> str:
    return "[" + ",".join([_CHANGE % (
        _texts(c.actions), _text(c.after), _text(c.before), _texts(c.operations),
        "null" if c.placement is None else _text(c.placement), _text(c.reason), _text(c.resource), _text(c.type))
        for c in changes]) + "]"


_ROWS = {"operations": _operations, "edges": _edges, "resource_changes": _changes}


#: Placement targets come from the policies' place/2 atoms: checked as the models' names.
PLACEMENTS = TypeAdapter(dict[Name, Name])


class _NotPlan(ValueError):
    pass


def _no_constant(name: str) -> float:
    raise _NotPlan(f"{name} is not a number JSON allows")


def _parse(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DiagnosticsError([Diagnostic(file=source, line=exc.lineno, column=exc.colno,
                                           summary=f"not valid JSON: {exc.msg}",
                                           detail="a saved plan is the JSON `ordo plan --out FILE` writes"
                                           if exc.pos == 0 else "")]) from None
    except (_NotPlan, DuplicateKey) as exc:
        raise DiagnosticsError([Diagnostic(file=source, summary=f"not an ordo plan: {exc}")]) from None
    except RecursionError:
        raise DiagnosticsError([Diagnostic(file=source, summary="not an ordo plan: nested too deeply")]) from None
    except ValueError as exc:   # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise DiagnosticsError([Diagnostic(file=source, summary=f"not an ordo plan: {str(exc).split(':')[0]}")]) \
            from None


def _field_problems(exc: ValidationError, source: str) -> list[Diagnostic]:
    out = []
    for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) or err["type"] == "missing" else repr(value)
        detail = f"found {shown[:60]}{'...' if len(shown) > 60 else ''}" if shown else ""
        out.append(Diagnostic(file=source, path=format_path(tuple(err["loc"])), summary=err["msg"], detail=detail))
    count = exc.error_count()
    if count > MAX_PROBLEMS:
        out.append(Diagnostic(file=source, summary=f"and {count - MAX_PROBLEMS} more problems"))
    return out
