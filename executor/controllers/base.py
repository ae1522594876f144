"""The controller interface: what every adapter implements.

A controller carries out one operation on one resource and returns the
operation's outputs, and observes a resource's current state. It signals
failure by raising :class:`TransientError` (worth retrying: a timeout, a 503,
a lost connection) or :class:`PermanentError` (retrying will not help: a
rejected request, a region out of quota). Whether a failed call took effect may
be unknown; the executor then observes before it sends the operation again.

Adapters are found by name through the ``ordo.controllers`` entry-point group
and imported only when a catalog uses them (:mod:`executor.controllers`). An
adapter is a class (or any callable) taking ``(name, config, context)`` and
returning an object with ``execute``, ``observe`` and ``close``.

Every call carries an idempotency key, the same for every attempt of one
intent. Controllers that honour keys (the simulated one, an HTTP API with an
``Idempotency-Key`` header) never apply one intent twice.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from domain.errors import OrdoError, clipped
from domain.formats import is_name, unique_keys, unstorable
from domain.limits import MOST_SECONDS
from domain.yamlsrc import MAX_DEPTH, nested_deeper
from executor.redact import Redactor


@dataclass(frozen=True)
class OperationRequest:
    """One call: carry out ``operation`` on ``resource``."""

    run: str                 # the run this call belongs to
    key: str                 # idempotency key: the same for every attempt of one intent
    resource: str
    type: str
    operation: str
    from_state: str
    to_state: str
    target: str | None = None                          # placement (cloud region, host), if any
    inputs: dict[str, Any] = field(default_factory=dict)  # the resource's params, references resolved
    attempt: int = 1
    timeout: float | None = None                        # seconds the executor waits for an answer
    outputs: tuple[str, ...] = ()                       # outputs the catalog declares for this operation

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "key": self.key, "resource": self.resource, "type": self.type,
            "operation": self.operation, "from": self.from_state, "to": self.to_state,
            "target": self.target, "inputs": self.inputs, "attempt": self.attempt,
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class Observation:
    """What a controller knows of a resource now.

    ``applied`` answers "did the call with this idempotency key take effect?"
    when the controller can tell (True/False); None when it cannot, and the
    executor then judges from ``state``. ``outputs`` are the outputs of that
    call when it was applied and the controller remembers them.
    """

    exists: bool
    state: str | None = None
    target: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    applied: bool | None = None
    outputs: dict[str, Any] | None = None


class ControllerError(OrdoError):
    """A controller call failed.

    ``scope`` says what the failure concerns: "resource" (this resource
    cannot be brought there) or "target" (the placement target refused: a
    region out of quota or down), which the planner learns as a fact.
    ``applied`` is whether the call may have taken effect: False when it
    certainly did not (the request was never sent or was rejected), None when
    unknown (a timeout, a lost answer).
    """

    transient: bool = False

    def __init__(self, message: str, *, scope: Literal["resource", "target"] = "resource",
                 applied: bool | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.scope = scope
        self.applied = applied
        self.code = code


class TransientError(ControllerError):
    """Worth retrying after a while."""

    transient = True


class PermanentError(ControllerError):
    """Retrying will not help; the executor observes and re-plans."""

    transient = False


class ConfigError(OrdoError):
    """A controller's settings in the catalog are wrong (names the field)."""


#: The largest answer a controller may give (its stdout, its HTTP body), in bytes: ids, addresses,
#: states, small documents; a larger one fails the call rather than fill the journal and the screen.
MAX_ANSWER_BYTES = 1 << 20


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent; ValueError for one too large for a float (``1e400``:
    Python reads it as infinity, which the journal would then hold as ``Infinity``, no JSON)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number (it reads as infinity)")
    return value


#: The deepest an answer may nest (what reads it walks it recursively: the redaction of secrets),
#: as deep as a YAML file may.
MAX_ANSWER_DEPTH = MAX_DEPTH


def answer_json(text: str | bytes) -> Any:
    """A controller's answer parsed as JSON, strictly: ValueError for what is not JSON, ``NaN``,
    ``Infinity`` and a number too large for a float too (``1e400``: Python's json reads them; the
    journal, a client of the events and ``show --json`` then held text that is not JSON), for an
    answer nested deeper than
    MAX_ANSWER_DEPTH (one 700 deep ended apply in a RecursionError after the call), for an object
    naming a key twice (json keeps the last, what the controller meant may be the first), and for one
    holding half of a UTF-16 pair (``"\\ud800"``): no text (it cannot be written as UTF-8; the
    journal's write of the result failed after the call, and ``ordo show`` of an error quoting it)."""
    if isinstance(text, bytes):   # UTF-8, strictly (json.loads of bytes let the bytes of a surrogate through)
        text = text.decode("utf-8-sig")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=unique_keys)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_ANSWER_DEPTH} levels deep") from None
    if nested_deeper(value, MAX_ANSWER_DEPTH):
        raise ValueError(f"nested more than {MAX_ANSWER_DEPTH} levels deep")
    if _SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"an unpaired surrogate ({exc.object[exc.start]!r}): not text") from None
    return value


#: A UTF-16 surrogate, or its JSON escape: whole pairs are read as one character, a lone half is no text.
_SURROGATE = re.compile("[\ud800-\udfff]|\\\\u[dD][89a-fA-F]")


def misnamed(values: dict[str, Any] | None, what: str) -> str | None:
    """Why a controller's outputs or attributes (``what``) cannot be recorded: the first key that is
    no name (letters, digits and ``_.:-``, at most 200 characters), which a resource's attributes
    must be, or an unpaired surrogate in them; None when there is neither. (The call was made: it
    is an answer that cannot be kept.)"""
    for key in values or ():
        if not is_name(key):
            shown = clipped(key, 60) if isinstance(key, str) else repr(key)
            return (f"its answer holds {what} named {shown!r}, which is not a name (letters, digits and _.:-, "
                    "starting with a letter or digit, at most 200 characters)")
    if values and (problem := unstorable(values)) is not None:   # (no journal stores one)
        return f"its answer holds {what} that no journal can store: {problem}"
    return None


def check_keys(spec: dict[str, Any], allowed: tuple[str, ...], where: str, noun: str = "field") -> None:
    """ConfigError for the first key of ``spec`` not in ``allowed``, with a did-you-mean."""
    import difflib

    for key in spec:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(allowed)}"
            raise ConfigError(f"{where}.{key}: unknown {noun} ({hint})")


def settings(config: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An adapter's ``config``: a mapping with no unknown keys, else ConfigError naming the key."""
    if not isinstance(config, dict):
        raise ConfigError("config: expected a mapping")
    check_keys(config, allowed, "config")
    return config


def seconds(value: Any, where: str) -> float:
    """A positive number of seconds up to MOST_SECONDS, else ConfigError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MOST_SECONDS:
        raise ConfigError(f"{where}: expected a positive number of seconds, at most {MOST_SECONDS:,}, "
                          f"got {value!r}")
    return float(value)


@runtime_checkable
class Controller(Protocol):
    def execute(self, request: OperationRequest) -> dict[str, Any]:
        """Carry out the operation; return its outputs. Raises ControllerError."""

    def observe(self, resource: str, type: str, request: OperationRequest | None = None) -> Observation:
        """The resource's state now; with ``request``, also whether that call was applied."""

    def close(self) -> None:
        """Release connections and threads; wake any call that is still hanging."""


@dataclass
class ControllerContext:
    """What adapters share within one run, instead of module-level state.

    ``workdir`` is the folder of the journal (adapters keep their own files
    there, such as the simulated world). ``shared(name, make)`` returns one
    object per name for the life of the context: every simulated controller
    of a run talks to the same world.
    """

    workdir: Path
    root: Path = Path(".")                                          # the project folder (relative commands)
    inventory: list[dict[str, Any]] = field(default_factory=list)  # observed resources, as the planner saw them
    targets: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)          # e.g. the simulation scenario
    redactor: Redactor = field(default_factory=Redactor)            # learns the secrets adapters read or send
    _shared: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def shared(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._shared:
                self._shared[name] = make()
            return self._shared[name]

    def close(self) -> None:
        with self._lock:
            items, self._shared = list(self._shared.values()), {}
        for item in items:
            close = getattr(item, "close", None)
            if close is not None:
                close()


Factory = Callable[[str, dict[str, Any], ControllerContext], Controller]
