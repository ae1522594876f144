"""The file formats people write by hand, as pydantic v2 models.

Four kinds of file: the project file (``ordo.yaml``), the catalog (resource
types, lifecycles, controllers), the inventory (what exists now) and the
request (what the operator wants). Cross-references between them are checked
in :mod:`domain.model`; here each file is checked on its own.
"""

from __future__ import annotations

import difflib
import json
import operator
import re
import unicodedata
from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.errors import Diagnostic, DiagnosticsError
from domain.limits import LEAST_MEMORY_MB, LEAST_POLL_SECONDS, MOST_AT_ONCE, MOST_MEMORY_MB, MOST_REPLANS, MOST_SECONDS
from domain.secrets import MASK, scrub, secret_name
from domain.yamlsrc import Source, format_path

_NAME_PATTERN, _NAME_MOST = r"[A-Za-z0-9][A-Za-z0-9_.:-]*", 200
Name = Annotated[
    str,
    StringConstraints(pattern=f"^{_NAME_PATTERN}$", max_length=_NAME_MOST),
]
_NAME = re.compile(_NAME_PATTERN)


def is_name(value: Any) -> bool:
    """Whether ``value`` is a Name: text of letters, digits and ``_.:-``, not starting with one of
    those four, at most 200 characters."""
    return type(value) is str and len(value) <= _NAME_MOST and _NAME.fullmatch(value) is not None


def _no_decimals(value: Any) -> Any:
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(
            f"decimal number {value} is not supported here: policies do integer arithmetic; "
            "use a whole number (scale it, e.g. 1.5 -> 15) or a string")
    return value


#: The largest magnitude of a number that reaches the solver. clingo computes
#: in signed 32-bit integers (at most 2,147,483,647) and wraps silently beyond:
#: a requirement of 99999999999999999999 vcpu became -1610612737 and fitted
#: anywhere. 10**9 keeps every value, and the sum of any two, inside that
#: range; the sums the capacity policy makes are bounded as a whole in
#: domain.model (the total of each `requires` key). Real quantities stay far
#: below: a region's memory in GB or its vcpus, a VXLAN id (< 2**24), a cost.
MAX_INT = 10**9

# Characters that may not reach the solver or a terminal: C0 and C1 control
# characters other than tab, newline and carriage return (a NUL ends clingo's
# parser: "<block>:105:28: lexer error"), and unpaired surrogates, which are
# not text (they cannot be encoded as UTF-8).
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: The longest text a value may hold: a value is a name, an address or a small
#: document (cloud-init data), and every one is a fact the solver keeps in memory.
MAX_TEXT = 1 << 20


def solver_value(value: Any, *, shown: bool = True) -> Any:
    """value unchanged if the solver can take it: a number within MAX_INT
    either way, text without control characters. ValueError saying why not
    (without the value when not ``shown``: a param's or an event's, which may be a secret)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"{value if shown else 'the number'} is out of range: numbers here are at most "
                         f"{MAX_INT:,} either way (the planner computes in 32-bit integers)"
                         + ("" if shown else "; the value is not shown, it may be a secret"))
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"text of {len(value):,} characters is too long: at most {MAX_TEXT:,}")
    if isinstance(value, str) and (bad := _BAD_TEXT.search(value)):
        raise ValueError(f"text holds {_kind_of(bad.group())} {bad.group()!r} at position {bad.start()}: "
                         "only printable characters, tabs and line breaks are allowed")
    return value


#: What a refused character is called, by its Unicode category (a control character, Cc, otherwise:
#: a right-to-left override was called one).
_KINDS = {"Cf": "the invisible formatting character", "Zl": "the line separator", "Zp": "the paragraph separator",
          "Cs": "the unpaired surrogate", "Cc": "the control character"}


def _kind_of(char: str) -> str:
    return _KINDS.get(unicodedata.category(char), "the control character")


def _no_bool(value: Any) -> Any:
    """A number, never a boolean: YAML's and JSON's true is no 1 (pydantic's lax mode reads it so)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value


#: Before a number's validation: a boolean is refused.
NOT_BOOL = BeforeValidator(_no_bool)
#: Numbers of settings (YAML's ``yes`` and ``on`` are true, not 1: ``concurrency: yes`` ran one at a time).
AtLeastOne = Annotated[PositiveInt, NOT_BOOL]
AtLeastZero = Annotated[NonNegativeInt, NOT_BOOL]
AboveZero = Annotated[PositiveFloat, NOT_BOOL]
# A value policies read: names and text, whole numbers, booleans.
Scalar = Annotated[bool | int | str, BeforeValidator(_no_decimals), AfterValidator(solver_value)]
# A quantity the planner adds up (capacity, requires).
Amount = Annotated[NonNegativeInt, NOT_BOOL, AfterValidator(solver_value)]
class DuplicateKey(ValueError):
    """A JSON object names ``key`` twice (``json.loads`` keeps the last of them)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key[:60]!r} appears twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` that refuses a key named twice (DuplicateKey): what
    read the text before ordo may have taken the first where json takes the last."""
    out = dict(pairs)
    if len(out) < len(pairs):   # the first key seen twice, found again the slow way
        seen: set[str] = set()
        raise DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return out


#: YAML's values that JSON has no form for, by what they are called in messages.
_NOT_JSON = {"date": "a date", "datetime": "a date and time", "bytes": "binary data", "set": "a set"}


def plain_value(value: Any, *, nonfinite_as_null: bool = False) -> Any:
    """value as JSON holds it (text, numbers, booleans, null, lists, and mappings whose keys are
    text), as the journal stores it and a plan compares it again: a key YAML reads as a number,
    a boolean or null (``80: 8080``) becomes the text JSON writes for it (``"80"``). ValueError
    for what JSON has no form for: YAML reads ``2024-01-01`` as a date, ``!!binary`` as bytes
    and ``!!set`` as a set; stored, such a value came back as something else (a date as text:
    the same request then changed the resource again) or could not be stored at all (binary
    data that is not UTF-8 ended a run half-way), nor for an unpaired surrogate, which is not text
    (a controller acted, and its record could not be written). A number that is not finite (YAML's ``.nan``,
    JSON's ``NaN`` from a controller) is refused, or with ``nonfinite_as_null`` becomes null, as
    the journal stores it. The value itself is returned, not a copy, unless something in it
    changes (a key, a number): records read back from the journal are checked, never rebuilt."""
    kind = type(value)
    if kind in _SCALARS or (kind is float and value - value == 0):
        if kind is str and _surrogate(value):
            raise ValueError(unstorable(value))
        return value
    if _plain_as_it_is(value, nonfinite_as_null):
        return value
    return _made_plain(value, nonfinite_as_null)


_SCALARS = frozenset({str, bool, int, type(None)})


def _plain_as_it_is(value: Any, nonfinite_as_null: bool) -> bool:
    """Whether value is plain as it is; False when a key or a number must change; ValueError for
    what cannot be made plain. Walked without recursion (YAML files and controllers' answers are
    bounded in depth; a plug-in's outputs need not be)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            if kind is str and _surrogate(item):
                raise ValueError(unstorable(value))   # (no journal stores one: where, in words)
            continue
        if kind is float or (kind is not bool and isinstance(item, float)):
            if item - item != 0:   # inf or nan
                if not nonfinite_as_null:
                    raise ValueError(f"{item} is not a number JSON holds: write a finite number")
                return False
        elif kind is list or isinstance(item, list | tuple):   # (a plug-in's tuple: JSON writes a list)
            stack.extend(item)
        elif kind is dict or isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    return False
                if _surrogate(key):
                    raise ValueError(unstorable(value))
            stack.extend(item.values())
        elif not isinstance(item, str | int):   # (a plug-in's str or int enum: JSON writes its value)
            _not_plain(item)
    return True


def _made_plain(value: Any, nonfinite_as_null: bool) -> Any:
    if isinstance(value, float):
        if value - value == 0:
            return value
        if nonfinite_as_null:
            return None
        raise ValueError(f"{value} is not a number JSON holds: write a finite number")
    if isinstance(value, str) and _surrogate(value):
        raise ValueError(unstorable(value))
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, list | tuple):
        return [_made_plain(item, nonfinite_as_null) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            text = key if isinstance(key, str) else _key_text(key)
            if _surrogate(text):
                raise ValueError(unstorable({text: None}))
            if text in out:
                raise ValueError(f"two keys are the text {text!r} (one of them written as {key!r}): keep one")
            out[text] = _made_plain(item, nonfinite_as_null)
        return out
    _not_plain(value)


def _not_plain(value: Any) -> None:
    """ValueError: what JSON has no form for (a date, binary data, a set ...)."""
    what = _NOT_JSON.get(type(value).__name__, f"a value of type {type(value).__name__}")
    raise ValueError(f"{what} is not a value ordo takes: quote it to pass it as text"
                     + (", or write a list" if isinstance(value, set | frozenset) else ""))


def _key_text(key: Any) -> str:
    """A mapping key that is not text, as JSON writes it."""
    if key is None or isinstance(key, bool | int):
        return json.dumps(key)
    if isinstance(key, float) and key == key and key not in (float("inf"), float("-inf")):
        return json.dumps(key)
    raise ValueError(f"the key {key} is not text (YAML reads it as {type(key).__name__}): quote it")


def _param_value(value: Any) -> Any:
    value = solver_value(value if isinstance(value, str | int) else plain_value(value), shown=False)
    if isinstance(value, list | dict):
        _nested_text(value)
    return value


def _nested_text(value: list | dict) -> None:
    """ValueError, naming where, for text inside a param's lists and mappings (keys too) that a
    top-level param's would be refused for: a control character, an unpaired surrogate (the
    journal cannot store one: a run that sent it crashed once the controller had acted), more
    than MAX_TEXT characters."""
    for text, where, key in _texts(value):
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if is_name(p) else f"[{json.dumps(p)}]"
                     for p in where).lstrip(".")
        _text_at(text, f"a key of {at or 'it'}" if key else f"the text at {at}")


def _texts(value: Any) -> Iterator[tuple[str, tuple, bool]]:
    """Each text of a plain ``value``, with where it is (the keys and indexes to it; a key's: its
    mapping's) and whether it is a key: a mapping's keys before what they hold."""
    stack: list[tuple[Any, tuple]] = [(value, ())]
    while stack:
        item, where = stack.pop()
        if type(item) is str:
            yield item, where, False
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str):
                    yield key, where, True
                stack.append((inner, (*where, key)))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (*where, i)) for i, inner in enumerate(item))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate(text: str) -> re.Match | None:
    """An unpaired surrogate in ``text`` (none in ASCII: asked first, as nearly all text is)."""
    return None if text.isascii() else _SURROGATE.search(text)


def unstorable(value: Any) -> str | None:
    """Where ``value`` (plain: what JSON holds) has an unpaired surrogate, a key too, in words: no
    journal stores one (an inventory's attribute or a controller's output that held one crashed the
    run once its operation was done); None when it has none."""
    for text, where, key in _texts(value):
        if bad := _surrogate(text):
            at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
            return (f"{at + ': ' if at else ''}{'a key' if key else 'its text'} holds an unpaired "
                    f"surrogate ({bad.group()!r}), which is not text")
    return None


def _text_at(text: str, what: str) -> None:
    try:
        solver_value(text, shown=False)
    except ValueError as exc:
        raise ValueError(f"inside it, {what}: {exc}") from None


# A param: any value JSON holds, as the controller takes it; a top-level number or
# text is also a fact (param/3) for the policies.
Param = Annotated[Any, AfterValidator(_param_value)]
#: The validation context of records read back from the journal: JSON that ordo wrote, plain
#: as it is (``ObservedResource``'s attributes are not walked again: 40 ms at 10,000 records).
STORED = {"stored": True}


class _Strict(BaseModel):
    # allow_inf_nan: `.inf` and `.nan` are not durations, timeouts or intervals.
    # defer_build: a model's validator is built when it first validates, not at
    # import: a file model (ProjectFile, CatalogFile ...) builds its nested
    # specs inline, and the models a command never reads (guards, policy
    # tests, a journal's records) cost nothing (docs/architecture.md, start-up).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False,
                              defer_build=True)


# --- catalog -----------------------------------------------------------------


#: A number of seconds a catalog gives (a timeout, a wait, a deadline): finite, at most MOST_SECONDS (a
#: timeout of 1e308 passed check and ended apply in "a bug in ordo", OverflowError).
Seconds = Annotated[float, NOT_BOOL, Field(gt=0, le=MOST_SECONDS, allow_inf_nan=False)]
PollSeconds = Annotated[float, NOT_BOOL, Field(ge=LEAST_POLL_SECONDS, le=MOST_SECONDS, allow_inf_nan=False)]
NonNegativeSeconds = Annotated[float, NOT_BOOL, Field(ge=0, le=MOST_SECONDS, allow_inf_nan=False)]


class RetrySpec(_Strict):
    """How transient failures are retried: exponential backoff (Temporal's retry policy)."""

    initial_interval: NonNegativeSeconds = Field(1.0, description="seconds before the first retry")
    coefficient: Annotated[float, NOT_BOOL, Field(ge=1.0)] = Field(2.0, description="each wait is this times the last")
    max_interval: NonNegativeSeconds = Field(60.0, description="longest wait between attempts, in seconds")
    attempts: AtLeastOne = Field(5, description="attempts in all, the first included (1 = never retry)")


class ControllerSpec(_Strict):
    """A controller that carries out operations (SDN-C, a cloud, CDS ...)."""

    kind: Name = Field("simulated", description="adapter name: simulated, http, command, or a plug-in")
    concurrency: AtLeastOne | None = Field(None, description="at most this many of its operations at once")
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="adapter settings")
    retry: RetrySpec | None = Field(None, description="retry policy for its operations unless a type sets one")
    timeout: Seconds | None = Field(None, description="seconds an operation may take before it is in doubt")


class TransitionSpec(_Strict):
    """One lifecycle operation: the state it starts from and the one it leaves."""

    from_: Name = Field(alias="from")
    to: Name


class LifecycleSpec(_Strict):
    """States in rank order (the first is the initial state) and operations."""

    states: list[Name] = Field(min_length=1)
    milestones: dict[Name, Name] = Field(
        default_factory=dict,
        description="milestone name -> state of this lifecycle that counts as reaching it",
    )
    operations: dict[Name, TransitionSpec] = Field(min_length=1)


class ObserveSpec(_Strict):
    """What a polled observation of the resource must show: its ``state``, or an ``output`` (an
    attribute the controller reports) that ``equals`` a value."""

    state: Name | None = Field(None, description="the state the controller must report")
    output: Name | None = Field(None, description="an attribute the controller reports ...")
    equals: Scalar | None = Field(None, description="... and the value it must have")

    @model_validator(mode="after")
    def _one(self) -> ObserveSpec:
        if (self.state is None) == (self.output is None):
            raise ValueError("give either 'state', or 'output' with 'equals'")
        if (self.output is None) != (self.equals is None):
            raise ValueError("'output' and 'equals' go together")
        return self


class WaitSpec(_Strict):
    """The operation completes when an outside event arrives at ordo (``event``: `ordo event`, or
    POST /v1/runs/RUN/events) or when a polled observation matches (``observe``, every ``every``
    seconds); ``deadline`` seconds after it is first dispatched it fails (for good, not in doubt)."""

    event: Name | None = Field(None, description="the name of the event that completes it")
    observe: ObserveSpec | None = Field(None, description="what a polled observation must show")
    every: PollSeconds | None = Field(None, description="seconds between observations (observe only; default 10; "
                                                        f"at least {LEAST_POLL_SECONDS})")
    deadline: Seconds = Field(description="seconds from its first dispatch until it fails")
    send: bool = Field(True, description="call the controller first (false: only wait)")

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        if (self.event is None) == (self.observe is None):
            raise ValueError("give either 'event' or 'observe'")
        if self.every is not None and self.observe is None:
            raise ValueError("'every' goes with 'observe' (an event is not polled for)")
        return self


class OperationSpec(_Strict):
    """Per-type settings of one operation."""

    controller: Name | None = None
    duration: Annotated[PositiveFloat, NOT_BOOL, AfterValidator(solver_value)] | None = Field(
        None, description="expected duration in seconds, for scheduling")
    outputs: list[Name] = Field(default_factory=list, description="values it returns that later params may read")
    retry: RetrySpec | None = Field(None, description="retry policy for transient failures")
    timeout: Seconds | None = Field(None, description="seconds it may take before its outcome is in doubt")
    wait: WaitSpec | None = Field(None, description="complete on an outside event or an observation, "
                                  "with a deadline (policies/README.md: Waiting)")


class TypeSpec(_Strict):
    """A resource type: its lifecycle and who carries out its operations."""

    lifecycle: Name
    controller: Name | None = Field(None, description="default controller for every operation")
    placement: bool = Field(False, description="resources of this type are homed on a target")
    final: Name | None = Field(None, description="default desired state (the last state if unset)")
    update: Name | None = Field(None, description="operation that applies changed params in place")
    retry: RetrySpec | None = Field(None, description="retry policy for its operations unless one sets its own")
    operations: dict[Name, OperationSpec] = Field(default_factory=dict)
    secrets: list[Name] = Field(default_factory=list, description="params and outputs whose values are secret: "
                                "the journal keeps a fingerprint, views show none (docs/security.md)")
    description: str = ""


class CatalogFile(_Strict):
    controllers: dict[Name, ControllerSpec] = Field(default_factory=dict)
    lifecycles: dict[Name, LifecycleSpec] = Field(default_factory=dict)
    types: dict[Name, TypeSpec] = Field(default_factory=dict)


# --- inventory ---------------------------------------------------------------


class TargetSpec(_Strict):
    """A placement target: a cloud region or a host, with its capacities."""

    zone: Name | None = None
    capacity: dict[Name, Amount] = Field(default_factory=dict)
    attributes: dict[Name, Scalar] = Field(default_factory=dict)
    labels: dict[Name, Scalar] = Field(default_factory=dict)


class _Related(_Strict):
    part_of: Name | None = Field(None, description="the resource this one is part of")
    uses: list[Name] = Field(default_factory=list)
    hosted_on: Name | None = None
    member_of: list[Name] = Field(
        default_factory=list,
        description="wholes it serves while they exist but outlives (a PNF, shared infrastructure): ordered "
                    "like part_of, never deleted with them (policies/README.md)")
    relations: dict[Name, list[Name]] = Field(
        default_factory=dict, description="other relationship kinds: kind -> targets"
    )
    requires: dict[Name, Amount] = Field(
        default_factory=dict, description="capacity it takes on its target (vcpu, memory_gb ...)"
    )
    labels: dict[Name, Scalar] = Field(default_factory=dict, description="metadata that policies read")


class ObservedResource(_Related):
    """A resource as it is now."""

    name: Name
    type: Name
    state: Name
    placement: Name | None = Field(None, description="the target it is placed on")
    attributes: dict[Name, Any] = Field(default_factory=dict, description="observed params and outputs")
    # (left out of its JSON when empty: a record without params is written as before there were any)
    params: list[Name] = Field(default_factory=list, exclude_if=operator.not_,
                               description="which attributes are params ordo sent it (the others are outputs): "
                                           "what making it again sends, where the request gives it none")
    reads_outputs: list[Name] = Field(default_factory=list, exclude_if=operator.not_,
                                      description="which of those params read other resources' outputs (their "
                                                  "values, those outputs as they were: not sent again)")

    @field_validator("attributes")
    @classmethod
    def _plain_attributes(cls, attributes: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Each value as JSON holds it (``plain_value``): the inventory's and a controller's
        outputs; a number that is not finite (a controller's NaN) is null, as the journal has
        always stored it; no unpaired surrogate (no journal stores one). Not walked for records read
        back from the journal (``STORED``)."""
        if not attributes or (info.context is not None and info.context.get("stored")):
            return attributes
        out = None
        for key, value in attributes.items():
            try:
                plain = plain_value(value, nonfinite_as_null=True)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
            if plain is not value:
                out = out if out is not None else dict(attributes)
                out[key] = plain
        return attributes if out is None else out


class InventoryFile(_Strict):
    targets: dict[Name, TargetSpec] = Field(default_factory=dict)
    resources: list[ObservedResource] = Field(default_factory=list)


# --- request -----------------------------------------------------------------


class DesiredResource(_Related):
    """A resource as the operator wants it. Children nest under it.

    For a resource that exists (inventory or journal), only state, params,
    run and priority may differ from what is observed, and requires keys it does not record
    (domain.model; the table is in policies/README.md)."""

    name: Name
    type: Name | None = Field(None, description="defaults from the list it is in (vnfs -> vnf ...)")
    state: Name | None = Field(None, description="desired state; the type's final state if unset")
    params: dict[Name, Param] = Field(default_factory=dict, description="desired configuration")
    placement: Name | None = Field(None, description="pin to this target")
    run: list[Name] = Field(default_factory=list, description="extra operations to run (healthcheck)")
    priority: Annotated[int, NOT_BOOL, AfterValidator(solver_value)] | None = Field(
        None, description="order among its siblings (the parts of one whole, or the top-level resources), lower "
                          "first on the way up and last on the way down: a preference the plan keeps where no "
                          "dependency says otherwise (SO's processing priority)")
    services: list[DesiredResource] = Field(default_factory=list)
    networks: list[DesiredResource] = Field(default_factory=list)
    vnfs: list[DesiredResource] = Field(default_factory=list)
    pnfs: list[DesiredResource] = Field(default_factory=list)
    vf_modules: list[DesiredResource] = Field(default_factory=list)
    volume_groups: list[DesiredResource] = Field(default_factory=list)
    resources: list[DesiredResource] = Field(default_factory=list, description="children of any type")


class ServiceSpec(DesiredResource):
    name: Name | None = None  # type: ignore[assignment]  # the mapping key names it


#: Besides _BAD_TEXT, what a name shown on one line may not hold: tabs and line breaks (Unicode's
#: too), marks that turn the direction of what follows around, and characters that show nothing.
_NOT_ONE_LINE = re.compile("[\t\n\r\u0085\u2028\u2029\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


def _one_line(value: str) -> str:
    """Text shown on one line (a request's name, in run lists): no control character, not even a tab
    or a line break, no mark that turns the direction of what follows around, no unpaired surrogate."""
    if (bad := _BAD_TEXT.search(value) or _NOT_ONE_LINE.search(value)) is not None:
        raise ValueError(f"text holds {_kind_of(bad.group())} {bad.group()!r} at position {bad.start()}: "
                         "a name is one line of printable characters")
    return value


class RequestFile(_Strict):
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(_one_line)] | None = None
    description: Annotated[str, AfterValidator(solver_value)] = ""
    services: dict[Name, ServiceSpec] = Field(default_factory=dict)
    resources: list[DesiredResource] = Field(default_factory=list, description="top-level resources of any type")


# Child lists and the type their members have unless they say otherwise.
CHILD_LISTS: dict[str, str | None] = {
    "services": "service",
    "networks": "network",
    "vnfs": "vnf",
    "pnfs": "pnf",
    "vf_modules": "vf-module",
    "volume_groups": "volume-group",
    "resources": None,
}


# --- project -----------------------------------------------------------------


class EnforcementSpec(_Strict):
    """How strictly one policy is enforced, overriding its file's header."""

    level: Literal["hard", "soft", "advisory"] = Field(
        description="hard: every plan satisfies it; soft: violations cost weight@priority; advisory: reported only")
    weight: Annotated[PositiveInt, NOT_BOOL, AfterValidator(solver_value)] | None = Field(
        None, description="soft: the cost of each violated instance")
    priority: Annotated[int, NOT_BOOL, AfterValidator(solver_value)] | None = Field(
        None, description="soft: the priority level of that cost")


class PoliciesSpec(_Strict):
    library: list[Name] = Field(default_factory=list, description="stock policies shipped with ordo, by name")
    files: list[str] = Field(default_factory=list, description="rule files or folders of this project (a "
                                                               "folder's *.lp files, hidden ones left out)")
    enforcement: dict[Name, EnforcementSpec] = Field(
        default_factory=dict, description="policy name -> enforcement level, overriding the policy file's header")
    parameters: dict[Name, dict[Name, Scalar]] = Field(
        default_factory=dict, description="stock policy -> parameter -> value: the label, attribute or capacity "
                                          "keys it reads (policies/README.md)")


class SettingsSpec(_Strict):
    concurrency: AtLeastOne = Field(10, le=MOST_AT_ONCE, description="operations running at once, in all")
    solve_timeout: AboveZero = Field(30.0, le=MOST_SECONDS, allow_inf_nan=False,
                                         description="seconds grounding and solving may take together")
    max_replans: AtLeastZero = Field(3, le=MOST_REPLANS, description="re-plans one run may make after failures")
    memory_limit_mb: AtLeastOne | None = Field(
        None, ge=LEAST_MEMORY_MB, le=MOST_MEMORY_MB,
        description="megabytes grounding and solving may take (default 4096, or half the machine's memory if that "
                    "is less)")
    max_plan_mb: Annotated[float, NOT_BOOL] = Field(
        64, gt=0, le=16384, allow_inf_nan=False,
        description="largest plan file ordo reads back (apply and explain plan.json, plan --compare, "
                    "whatif --baseline), in megabytes, at most 16384: a plan of 10,000 resources is about 17 MB, "
                    "of 100,000 about 170 MB, and reading one takes about 13 times its size in memory")
    planning_workers: Annotated[int, NOT_BOOL] | None = Field(
        None, ge=1, le=64, description="processes that solve the independent parts of a large plan at once "
                                       "(default 2; never more than the CPUs, nor than give each less than "
                                       "1 GB of memory_limit_mb, which they share)")

    @property
    def max_plan_bytes(self) -> int:
        return int(self.max_plan_mb * 1024 * 1024)


class ProjectFile(_Strict):
    catalog: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                       Field(min_length=1, description="catalog file, or a list of them")] = ["catalog.yaml"]
    inventory: str | None = "inventory.yaml"
    request: str | None = None
    policies: PoliciesSpec = Field(default_factory=PoliciesSpec)
    settings: SettingsSpec = Field(default_factory=SettingsSpec)
    guards: list[str] = Field(
        default_factory=list,
        description="runtime guard files (rate limits, instance counts, block lists, freezes, windows, "
                    "exclusions), checked before each operation runs; see docs/guards.md")


# --- validation --------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names accepted at loc, for did-you-mean hints."""
    ann: Any = model
    for part in loc:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            ann = field.annotation
        elif get_origin(ann) is dict:
            ann = get_args(ann)[1]
        elif get_origin(ann) is list:
            ann = get_args(ann)[0]
        else:
            return []
    ann = _unwrap(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return sorted(f.alias or n for n, f in ann.model_fields.items())
    return []


def _unwrap(ann: Any) -> Any:
    """The model inside ``X | None``; other annotations as they are."""
    if get_origin(ann) in (Union, UnionType):
        for arg in get_args(ann):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return ann


def quoted(value: Any, most: int = 60) -> str:
    """A value a message quotes, cut short: what was given in the wrong place may be a whole file (a
    secret, or megabytes of text), and the message goes to a screen or a log; what looks secret in it
    masked (a URL's password, a token, a private key: an answer over HTTP quoted them to the gateways
    and logs that keep it, a service sweep's)."""
    text = repr(value)
    whole = len(text)
    text = scrub(text[:10 * most])   # (masked whole, then cut: a key's start alone is not one the patterns know)
    return text if len(text) <= most else f"{text[:most]}... ({whole:,} characters)"


def _describe(error: dict, model: type[BaseModel], loc: tuple) -> tuple[str, str]:
    kind = error["type"]
    if kind == "missing":
        return f"missing required field '{loc[-1]}'", ""
    if kind == "extra_forbidden":
        allowed = _field_names(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        detail = f"did you mean '{hint[0]}'?" if hint else f"expected one of: {', '.join(allowed)}"
        return f"unknown field '{loc[-1]}'", detail
    if kind == "string_pattern_mismatch":
        return (
            f"invalid name {quoted(error.get('input'))}",
            "expected letters, digits and _ . : - (starting with a letter or digit)",
        )
    got = error.get("input")
    # (not the value of a whole file of the wrong kind: a secret's file given as the request was shown; nor
    # one under a name that looks like a secret's, wherever it is: `requires: {api_key: ...}`)
    hidden = any(secret_name(part) for part in loc)
    got_text = "" if got is None or isinstance(got, (dict, list)) else \
        f", got {type(got).__name__}" + (f" {quoted(got)}" if loc and not hidden else "")
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        if hidden and isinstance(got, int | float | str) and str(got) and str(got) in message:
            return message.replace(str(got), MASK), "the value is not shown: its name looks like a secret's"
        return message, ""
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}{got_text}", ""
    if kind == "union_type":   # (_unions_as_one)
        return f"expected {error['words']}{got_text}", ""
    return error["msg"][0].lower() + error["msg"][1:], ""


#: How pydantic names the members of a union in an error's location ("constrained-str": a str with limits).
_UNION_TAGS = re.compile(r"(?:constrained-)?(?:str|int|float|bool)|none|(?:list|dict|tuple|set)\[.*\]")


def _unions_as_one(errors: list[dict]) -> list[dict]:
    """A value that is none of a union's kinds is one problem, not one per kind ("expected a
    string", "expected a whole number", ... at ``cidr.constrained-str``, ``cidr.int``, ...): the
    kinds' words joined, at the value's own place; one of a kind that breaks a limit of it (too long
    a text) is that problem alone. A union's errors are told by their places (a member's name last,
    each once) and their input (the one value, the same object for each member): mapping keys that
    are such names ({str: 1, int: 2}) are not a union's."""
    groups: dict[tuple, list[dict]] = {}
    for error in errors:
        loc = error["loc"]
        if loc and isinstance(loc[-1], str) and _UNION_TAGS.fullmatch(loc[-1]):
            groups.setdefault(loc[:-1], []).append(error)
    instead: dict[int, list[dict]] = {}
    for parent, group in groups.items():
        if len(group) < 2 or len({e["loc"][-1] for e in group}) < len(group) \
                or any(e.get("input") is not group[0].get("input") for e in group):
            continue
        closest = [{**e, "loc": parent} for e in group if e["type"] not in _TYPE_WORDS]
        if len(closest) > 1:
            continue   # (two kinds that each fit but break a limit: keys named like kinds, {str: -1, int: -1})
        if closest:
            one = closest
        else:
            words = list(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in group))
            if "a number" in words and "a whole number" in words:
                words.remove("a whole number")
            if len(words) < 2:
                continue
            words = [w.replace("true or false", "true/false") for w in words]
            one = [{**group[0], "loc": parent, "type": "union_type",
                    "words": ", ".join(words[:-1]) + " or " + words[-1]}]
        instead.update({id(e): [] for e in group})
        instead[id(group[0])] = one
    return [one for error in errors for one in instead.get(id(error), [error])]


#: What YAML reads a key that is not text as, for messages.
_YAML_READS = {"bool": "a boolean", "int": "a number", "float": "a number", "NoneType": "null", "date": "a date",
               "datetime": "a date and time"}


def parse(model: type[M], source: Source, base: tuple = ()) -> M:
    """Validate source.data against model; every problem becomes a diagnostic."""
    data = source.data if source.data is not None else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in _unions_as_one(exc.errors()):
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            if loc and loc[-1] == "[key]":
                # A bad mapping key: name the key (always text in the path, as JSON writes it) and point at it.
                key = error.get("input")   # pydantic's loc has a key of true as 1
                written = source.key_written(base + loc[:-2], key)   # (`on:` read as true: named as written)
                loc = loc[:-2] + (written if written is not None else json.dumps(key)
                                  if isinstance(key, bool) or key is None else str(loc[-2]),)
                summary, detail = _describe(error, model, loc)
                if written is not None:
                    detail = (f"YAML reads {written} as {_YAML_READS.get(type(key).__name__, 'a value')}, not text: "
                              f"quote it ('{written}')")
                line, column = source.where_key(base + loc)
                problems.append(Diagnostic(file=source.file, line=line, column=column,
                                           path=scrub(format_path(source.prefix + base + loc)), summary=summary,
                                           detail=detail, code="schema"))
                continue
            summary, detail = _describe(error, model, loc)
            problems.append(source.diagnostic(base + loc, summary, detail, code="schema"))
        raise DiagnosticsError(problems) from None
