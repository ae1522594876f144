"""The simulated controller: an in-process world with latencies and seeded faults.

Every run of a context talks to one :class:`World`, a SQLite file in the
run's work folder (``simulated-world.db`` unless the scenario names another).
It holds the resources (seeded once from the inventory, when the file is
created) and a ledger of every effect applied, keyed by idempotency key, which
tests read as the truth (:func:`read_ledger`, :func:`read_world`). Writes are
single transactions in WAL mode, so the file survives the process being
killed at any moment and a resumed run carries on from what was applied.

The scenario comes from ``context.settings["simulation"]``, a mapping that
:func:`load_simulation` reads from a ``--simulation`` file (with the model
files' bounded YAML loader, every setting checked with its line)::

    seed: 1                 # all randomness derives from it (int or string)
    idempotent: true        # a repeated key returns the first answer, applying nothing
    latency: 0.0            # seconds, or {default: 0.1, create: 0.5, "vf-module/create": 2}
    jitter: 0.0             # latency * uniform(1 - jitter, 1 + jitter), seeded by key and attempt
    transient_rate: 0.0     # chance an attempt fails transiently before applying
    world: simulated-world.db   # the world's file, inside the work folder (relative, no '..')
    faults:                 # the first matching fault that has hits left fires
      - {target: region-two, operation: create, error: refused}
      - {resource: vpg, operation: assign, error: transient, times: 2}

A fault matches on any of ``resource``, ``type``, ``operation``, ``target``
and ``controller`` (each a name or a list of names; all given must match).
``error`` is one of: ``refused`` (PermanentError, scope "target"),
``permanent`` (PermanentError, scope "resource"), ``transient``
(TransientError), ``lost`` (the effect is applied, then TransientError with
applied=None: the answer was lost), ``died`` (the effect is applied, then
PermanentError with applied=None: the controller died, as one killed by the
out-of-memory killer mid-call), ``hang`` (the call blocks until the
controller is closed, then TransientError). ``times`` limits how often a fault
fires (default: unlimited for refused and permanent, once for the others);
hits are counted in the world's file, so they survive a crash and resume.
An optional ``message`` replaces the error's text.

A controller's catalog ``config`` may set ``latency`` and ``jitter``; the
scenario's values, when given, replace them.

Nothing here is module-level state: many runs may share one process, each
with its own :class:`ControllerContext` and world.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from domain.errors import DiagnosticsError
from domain.yamlsrc import PathKey, format_path, load_yaml
from executor.controllers.base import (
    ConfigError,
    ControllerContext,
    Observation,
    OperationRequest,
    PermanentError,
    TransientError,
    check_keys,
)
from executor.journal import private_file

__all__ = [
    "ERRORS", "Fault", "Scenario", "SettingError", "SimulatedController", "World", "load_simulation",
    "output_value", "read_ledger", "read_world", "world_path",
]

SHARED_NAME = "simulated-world"
DEFAULT_FILE = "simulated-world.db"
SCHEMA_VERSION = 1
HANG_LIMIT = 3600.0          # a hanging call gives up after an hour even if nobody closes the controller

ERRORS = ("refused", "permanent", "transient", "lost", "died", "hang")
DEFAULT_TIMES: Mapping[str, int | None] = MappingProxyType(
    {"refused": None, "permanent": None, "transient": 1, "lost": 1, "died": 1, "hang": 1})
MATCH_FIELDS = ("resource", "type", "operation", "target", "controller")
FAULT_KEYS = (*MATCH_FIELDS, "error", "times", "message")
SCENARIO_KEYS = ("seed", "idempotent", "latency", "jitter", "transient_rate", "faults", "world")
CONFIG_KEYS = ("latency", "jitter")

_SCHEMA = (
    """CREATE TABLE resources (
        name TEXT PRIMARY KEY, type TEXT, state TEXT, target TEXT, attributes TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, run TEXT, controller TEXT,
        resource TEXT NOT NULL, type TEXT, operation TEXT, from_state TEXT, to_state TEXT, target TEXT,
        attempt INTEGER, inputs TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}', at REAL)""",
    "CREATE INDEX ledger_key ON ledger(key)",
    "CREATE TABLE fault_hits (fault INTEGER PRIMARY KEY, count INTEGER NOT NULL DEFAULT 0)",
)


# --- the scenario -------------------------------------------------------------


class SettingError(ConfigError):
    """A wrong setting, with its path (for a message at the file's line)."""

    def __init__(self, path: PathKey, problem: str) -> None:
        super().__init__(f"{format_path(path)}: {problem}")
        self.path, self.problem = path, problem


def _check_keys(spec: dict[str, Any], allowed: tuple[str, ...], where: PathKey) -> None:
    try:
        check_keys(spec, allowed, format_path(where), "setting")
    except ConfigError as exc:
        key = next(str(k) for k in spec if k not in allowed)
        raise SettingError(where + (key,), str(exc).removeprefix(f"{format_path(where)}.{key}: ")) from None


def _mapping(value: Any, where: PathKey) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError(where, f"expected a mapping, not {type(value).__name__}")
    return dict(value)


def _number(value: Any, where: PathKey, *, high: float | None = None) -> float:
    bounds = f"a number from 0 to {high:g}" if high is not None else "a number of at least 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingError(where, f"expected {bounds}, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (high is not None and number > high):
        raise SettingError(where, f"expected {bounds}, not {value!r}")
    return number


def _latency(value: Any, where: PathKey) -> dict[str, float]:
    """A latency table: keys "default", an operation, or "type/operation"."""
    if isinstance(value, Mapping):
        table: dict[str, float] = {}
        for key, seconds in value.items():
            if not isinstance(key, str) or not key or key.count("/") > 1 or key.startswith("/") or key.endswith("/"):
                raise SettingError(where, f"key {key!r}: expected 'default', an operation or 'type/operation'")
            table[key] = _number(seconds, where + (key,))
        return table
    return {"default": _number(value, where)}


def _names(value: Any, where: PathKey) -> frozenset[str]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise SettingError(where, f"expected a name or a list of names, not {value!r}")
    return frozenset(items)


# A world file: relative to the journal folder and inside it (no '..', no
# absolute path, nothing but letters, digits and _ . - in each part).
_WORLD = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _world(value: Any, where: PathKey) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _WORLD.fullmatch(value) or {".", ".."} & set(value.split("/")):
        raise SettingError(where, f"expected a file name inside the journal folder (a relative path of "
                                  f"letters, digits and _ . -, without '..'), not {value!r}")
    if value.rsplit("/", 1)[-1] in _JOURNALS:
        raise SettingError(where, f"{value!r} is the journal's file, or one SQLite keeps beside it: a world there "
                                  "would overwrite the journal; name another file")
    return value


#: The endings of the files SQLite keeps beside a database: its write-ahead log, shared memory, rollback journal.
_COMPANIONS = ("-wal", "-shm", "-journal")
#: The journal's file as ordo names it in a project's .ordo, and those beside it.
_JOURNALS = frozenset({"journal.db", *(f"journal.db{end}" for end in _COMPANIONS)})


@dataclass(frozen=True)
class Fault:
    """One injected fault: which calls it matches and what it does."""

    index: int
    error: str
    match: Mapping[str, frozenset[str]] = field(default_factory=dict)
    times: int | None = None
    message: str = ""

    def matches(self, request: OperationRequest, controller: str) -> bool:
        values = {"resource": request.resource, "type": request.type, "operation": request.operation,
                  "target": request.target, "controller": controller}
        return all(values[name] in allowed for name, allowed in self.match.items())

    @classmethod
    def parse(cls, index: int, data: Any, where: PathKey) -> Fault:
        spec = _mapping(data, where)
        _check_keys(spec, FAULT_KEYS, where)
        error = spec.get("error")
        if error not in ERRORS:
            raise SettingError(where + ("error",), f"expected one of {', '.join(ERRORS)}"
                               + ("" if error is None else f", not {error!r}"))
        times = spec.get("times", DEFAULT_TIMES[error])
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
            raise SettingError(where + ("times",), f"expected a whole number of at least 0, not {times!r}")
        message = spec.get("message", "")
        if not isinstance(message, str):
            raise SettingError(where + ("message",), f"expected text, not {message!r}")
        match = {name: _names(spec[name], where + (name,)) for name in MATCH_FIELDS if name in spec}
        return cls(index=index, error=error, match=MappingProxyType(match), times=times, message=message)


@dataclass(frozen=True)
class Scenario:
    """The simulation settings of a run, validated."""

    seed: str = "0"
    idempotent: bool = True
    latency: Mapping[str, float] | None = None     # None: not set (a controller's config may set it)
    jitter: float | None = None
    transient_rate: float = 0.0
    faults: tuple[Fault, ...] = ()
    world: str | None = None

    @classmethod
    def parse(cls, data: Any, where: PathKey = ("simulation",)) -> Scenario:
        spec = _mapping(data, where)
        _check_keys(spec, SCENARIO_KEYS, where)
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int | str):
            raise SettingError(where + ("seed",), f"expected a whole number or text, not {seed!r}")
        idempotent = spec.get("idempotent", True)
        if not isinstance(idempotent, bool):
            raise SettingError(where + ("idempotent",), f"expected true or false, not {idempotent!r}")
        faults = spec.get("faults") or []
        if not isinstance(faults, list):
            raise SettingError(where + ("faults",), f"expected a list, not {type(faults).__name__}")
        return cls(
            seed=str(seed),
            idempotent=idempotent,
            latency=MappingProxyType(_latency(spec["latency"], where + ("latency",))) if "latency" in spec else None,
            jitter=_number(spec["jitter"], where + ("jitter",), high=1) if "jitter" in spec else None,
            transient_rate=_number(spec.get("transient_rate", 0.0), where + ("transient_rate",), high=1),
            faults=tuple(Fault.parse(i, item, where + ("faults", i)) for i, item in enumerate(faults)),
            world=_world(spec.get("world"), where + ("world",)),
        )


def load_simulation(path: Path) -> dict[str, Any]:
    """A simulation scenario file (``--simulation``), read with the model
    files' loader (bounded in size and depth) and validated: a DiagnosticsError
    names the file, line and setting."""
    src = load_yaml(path)
    data = src.data if src.data is not None else {}
    try:
        Scenario.parse(data, where=())
    except SettingError as exc:
        raise DiagnosticsError([src.diagnostic(exc.path, exc.problem)]) from None
    return data


def world_path(context: ControllerContext) -> Path:
    """The world file a context's simulated controllers use (ConfigError if the scenario is wrong)."""
    scenario = Scenario.parse(context.settings.get("simulation"))
    return Path(context.workdir) / (scenario.world or DEFAULT_FILE)


def output_value(seed: str | int, resource: str, name: str) -> str:
    """The value the simulated world gives output ``name`` of ``resource``: network_id -> network-1a2b3c4d."""
    digest = hashlib.sha256(f"{seed}:{resource}:{name}".encode()).hexdigest()[:8]
    return f"{name.removesuffix('_id')}-{digest}"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _field(item: Any, *names: str) -> Any:
    """A field of an inventory entry, a dict or an object (the first of ``names`` present)."""
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value is not None:
            return value
    return None


# --- the world ----------------------------------------------------------------


def _no_other_file(path: Path) -> None:
    """ConfigError for a file there that is no SQLite database (the journal's write-ahead log, say:
    opened as a world, a run's events were lost from the journal), or a name SQLite gives a file
    beside a database that is there (a journal named otherwise)."""
    for end in _COMPANIONS:
        if path.name.endswith(end) and path.with_name(path.name.removesuffix(end)).is_file():
            raise ConfigError(f"{path}: SQLite keeps this file beside the database {path.name.removesuffix(end)} "
                              "(the journal's?): name another file in the simulation's world")
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{path}: the simulated world cannot be read: {exc.strerror or exc}") from None
    if head and head != b"SQLite format 3\x00":
        raise ConfigError(f"{path}: not a simulated world (not an SQLite database): name another file in the "
                          "simulation's world")


def _wal(db: sqlite3.Connection, path: Path) -> None:
    """The world's file in WAL mode. Two processes opening a new world at once: the second's change of
    mode is refused at once ("database is locked": SQLite waits for no lock there), which was "a bug in
    ordo" in the `ordo apply` that would have been refused as the second anyway (an operator's sweep):
    tried again for five seconds, then said."""
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == 49:
                raise ConfigError(f"{path}: the simulated world is locked by another process (another ordo "
                                  "using the same simulation's world?)") from None
            time.sleep(0.1)


class World:
    """The simulated resources and the ledger of applied effects, in one SQLite file.

    One connection, shared by the threads of a run under a lock; every change
    is one transaction. The file is seeded from ``inventory`` only when it is
    created; opening an existing file (a resumed run) keeps what it holds.
    """

    def __init__(self, path: Path | str, inventory: Any = (), scenario: Scenario | None = None) -> None:
        self.path = Path(path)
        self.scenario = scenario or Scenario()
        self._lock = threading.Lock()
        self._closed = False
        self._waiters: set[threading.Event] = set()
        _no_other_file(self.path)
        private_file(self.path)
        self._db = sqlite3.connect(self.path.absolute().as_uri(), uri=True, timeout=5.0, isolation_level=None,
                                   check_same_thread=False)   # (its own file: ':memory:' or 'file:' no database)
        try:
            self._db.execute("PRAGMA busy_timeout = 5000")
            tables = sorted(row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            if tables and "resources" not in tables:   # (before anything is written to it)
                raise ConfigError(f"{self.path}: not a simulated world: it holds other tables "
                                  f"({', '.join(tables[:5])}; the journal's?): name another file in the "
                                  "simulation's world")
            _wal(self._db, self.path)
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._setup(list(inventory or ()))
        except BaseException:
            self._db.close()
            raise

    def _setup(self, inventory: list[Any]) -> None:
        with self._transaction() as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'resources'").fetchone()
            if found:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise ConfigError(f"{self.path}: not a simulated world of schema {SCHEMA_VERSION} "
                                      f"(found {version})")
                return
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for item in inventory:
                name = _field(item, "name")
                if not name:
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO resources(name, type, state, target, attributes) VALUES (?, ?, ?, ?, ?)",
                    (name, _field(item, "type"), _field(item, "state", "current"), _field(item, "placement"),
                     _dumps(dict(_field(item, "attributes") or {}))))

    @contextlib.contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock. The world's file failing (a full disk, an I/O error,
        locked too long) is the controller's trouble, not the resource's: a TransientError,
        retried; applied=None when it was the COMMIT that failed (it may have reached the disk)."""
        with self._lock:
            if self._closed:
                raise TransientError(f"the simulated world {self.path.name} is closed", applied=False)
            committing = False
            try:
                self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise
                committing = True
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise TransientError(f"the simulated world {self.path} cannot be used: {exc}",
                                     applied=None if committing else False, code="world-io") from exc

    # waiters: events of hanging or sleeping calls, woken when the world closes

    def attach(self, event: threading.Event) -> None:
        with self._lock:
            if self._closed:
                event.set()
            self._waiters.add(event)

    def detach(self, event: threading.Event) -> None:
        with self._lock:
            self._waiters.discard(event)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiters, self._waiters = list(self._waiters), set()
            self._db.close()
        for event in waiters:
            event.set()

    # reads

    def recorded(self, key: str) -> dict[str, Any] | None:
        """The outputs the first application of ``key`` returned; None if it was never applied."""
        with self._transaction(immediate=False) as db:
            return self._recorded(db, key)

    @staticmethod
    def _recorded(db: sqlite3.Connection, key: str) -> dict[str, Any] | None:
        row = db.execute("SELECT outputs FROM ledger WHERE key = ? ORDER BY seq LIMIT 1", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def resource(self, name: str) -> dict[str, Any] | None:
        with self._transaction(immediate=False) as db:
            return self._resource(db, name)

    @staticmethod
    def _resource(db: sqlite3.Connection, name: str) -> dict[str, Any] | None:
        row = db.execute("SELECT type, state, target, attributes FROM resources WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return {"type": row[0], "state": row[1], "target": row[2], "attributes": json.loads(row[3] or "{}")}

    def observe(self, name: str, key: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The resource's row and, for ``key``, the outputs of its first application (None if not applied)."""
        with self._transaction(immediate=False) as db:
            return self._resource(db, name), (self._recorded(db, key) if key is not None else None)

    def hits(self, fault: Fault) -> int:
        with self._transaction(immediate=False) as db:
            return self._hits(db, fault)

    @staticmethod
    def _hits(db: sqlite3.Connection, fault: Fault) -> int:
        row = db.execute("SELECT count FROM fault_hits WHERE fault = ?", (fault.index,)).fetchone()
        return 0 if row is None else row[0]

    # writes

    @staticmethod
    def _count_hit(db: sqlite3.Connection, fault: Fault) -> bool:
        if fault.times is not None and World._hits(db, fault) >= fault.times:
            return False
        db.execute("INSERT INTO fault_hits(fault, count) VALUES (?, 1) "
                   "ON CONFLICT(fault) DO UPDATE SET count = count + 1", (fault.index,))
        return True

    def hit(self, fault: Fault) -> bool:
        """Count one hit of ``fault`` if it has hits left; whether it fires."""
        with self._transaction() as db:
            return self._count_hit(db, fault)

    def apply(self, request: OperationRequest, controller: str,
              lost: Fault | None = None) -> tuple[dict[str, Any], bool]:
        """Apply ``request`` in one transaction: check the precondition, move the
        resource, write the ledger row. Returns the outputs and whether the
        ``lost`` fault fired (counted in the same transaction). In an
        idempotent world a key that is already in the ledger (another attempt
        got there first) returns its recorded outputs and applies nothing.
        """
        scenario = self.scenario
        with self._transaction() as db:
            if scenario.idempotent:
                recorded = self._recorded(db, request.key)
                if recorded is not None:
                    return recorded, False
            current = self._resource(db, request.resource)
            if current is None:    # unknown to the world: accepted from any state, stored from now on
                target, attributes = None, {}
            else:
                if current["state"] is not None and current["state"] != request.from_state:
                    raise PermanentError(f"'{request.resource}' is {current['state']}, not {request.from_state}",
                                         applied=False, code="precondition")
                if current["type"] and current["type"] != request.type:
                    raise PermanentError(f"'{request.resource}' is a {current['type']}, not a {request.type}",
                                         applied=False, code="precondition")
                target, attributes = current["target"], current["attributes"]
            # an output the resource already has (an id assigned earlier) keeps its value
            outputs = {name: attributes[name] if name in attributes else output_value(scenario.seed,
                                                                                     request.resource, name)
                       for name in request.outputs}
            attributes = {**attributes, **request.inputs, **outputs}
            target = request.target if request.target is not None else target
            db.execute(
                "INSERT INTO resources(name, type, state, target, attributes) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET type = excluded.type, state = excluded.state, "
                "target = excluded.target, attributes = excluded.attributes",
                (request.resource, request.type, request.to_state, target, _dumps(attributes)))
            db.execute(
                "INSERT INTO ledger(key, run, controller, resource, type, operation, from_state, to_state, target, "
                "attempt, inputs, outputs, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.key, request.run, controller, request.resource, request.type, request.operation,
                 request.from_state, request.to_state, target, request.attempt, _dumps(request.inputs),
                 _dumps(outputs), time.time()))
            was_lost = lost is not None and self._count_hit(db, lost)
            return json.loads(_dumps(outputs)), was_lost


# --- the controller -----------------------------------------------------------


class SimulatedController:
    """A controller acting on the context's simulated world (``factory(name, config, context)``)."""

    def __init__(self, name: str, config: dict[str, Any], context: ControllerContext) -> None:
        self.name = name
        scenario = Scenario.parse(context.settings.get("simulation"))
        own_latency, own_jitter = self._settings(config)
        self.latency: Mapping[str, float] = scenario.latency if scenario.latency is not None else own_latency
        self.jitter: float = scenario.jitter if scenario.jitter is not None else own_jitter
        path = Path(context.workdir) / (scenario.world or DEFAULT_FILE)
        self.world: World = context.shared(SHARED_NAME, lambda: World(path, context.inventory, scenario))
        self._stop = threading.Event()
        self.world.attach(self._stop)

    @staticmethod
    def _settings(config: Any) -> tuple[dict[str, float], float]:
        """The latency table and jitter ``config`` sets; SettingError naming the field that is wrong."""
        config = _mapping(config, ("config",))
        _check_keys(config, CONFIG_KEYS, ("config",))
        latency = _latency(config["latency"], ("config", "latency")) if "latency" in config else {}
        jitter = _number(config["jitter"], ("config", "jitter"), high=1) if "jitter" in config else 0.0
        return latency, jitter

    @classmethod
    def check_config(cls, config: dict[str, Any], root: Path) -> None:
        """ConfigError for what making the controller of ``config`` would refuse (``ordo check``)."""
        cls._settings(config)

    @property
    def scenario(self) -> Scenario:
        return self.world.scenario

    def delay(self, request: OperationRequest) -> float:
        """Seconds this attempt takes: the latency table's entry, jittered (seeded by key and attempt)."""
        table = self.latency
        base = table.get(f"{request.type}/{request.operation}",
                         table.get(request.operation, table.get("default", 0.0)))
        if base <= 0 or self.jitter <= 0:
            return max(base, 0.0)
        rng = random.Random(f"{self.scenario.seed}:jitter:{request.key}:{request.attempt}")
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)

    def _describe(self, request: OperationRequest) -> str:
        where = f" on {request.target}" if request.target else ""
        return f"{request.operation} of '{request.resource}'{where}"

    def _fail(self, fault: Fault, request: OperationRequest) -> None:
        what = self._describe(request)
        if fault.error == "refused":
            raise PermanentError(fault.message or f"target {request.target or '?'} refused {what} (simulated)",
                                 scope="target", applied=False, code="refused")
        if fault.error == "permanent":
            raise PermanentError(fault.message or f"{what} failed (simulated)",
                                 scope="resource", applied=False, code="permanent")
        if fault.error == "transient":
            raise TransientError(fault.message or f"{what} failed for now (simulated)",
                                 applied=False, code="transient")
        # hang: block until close() (or the world closes), then give up without applying
        self._stop.wait(HANG_LIMIT)
        raise TransientError(fault.message or f"{what} hung (simulated)", applied=False, code="hang")

    def execute(self, request: OperationRequest) -> dict[str, Any]:
        scenario, world = self.scenario, self.world
        if scenario.idempotent:
            recorded = world.recorded(request.key)
            if recorded is not None:
                return recorded
        lost: Fault | None = None
        for fault in scenario.faults:
            if not fault.matches(request, self.name):
                continue
            if fault.error in ("lost", "died"):   # counted when the effect is applied, in the same transaction
                if fault.times is None or world.hits(fault) < fault.times:
                    lost = fault
                    break
            elif world.hit(fault):
                self._fail(fault, request)
        if scenario.transient_rate > 0:
            roll = random.Random(f"{scenario.seed}:transient:{request.key}:{request.attempt}").random()
            if roll < scenario.transient_rate:
                raise TransientError(f"{self._describe(request)} failed for now (simulated, rate "
                                     f"{scenario.transient_rate:g})", applied=False, code="transient")
        seconds = self.delay(request)
        if seconds > 0 and self._stop.wait(seconds):
            raise TransientError(f"{self._describe(request)}: controller closed during the call",
                                 applied=False, code="closed")
        if self._stop.is_set():
            raise TransientError(f"{self._describe(request)}: controller closed", applied=False, code="closed")
        outputs, was_lost = world.apply(request, self.name, lost=lost)
        if was_lost and lost is not None and lost.error == "died":
            raise PermanentError(lost.message or f"{self._describe(request)}: the controller died after it applied "
                                 "it (simulated)", applied=None, code="died")
        if was_lost:
            raise TransientError(lost.message if lost and lost.message else
                                 f"{self._describe(request)}: answer lost (simulated)", applied=None, code="lost")
        return outputs

    def observe(self, resource: str, type: str, request: OperationRequest | None = None) -> Observation:
        row, outputs = self.world.observe(resource, request.key if request is not None else None)
        applied = None if request is None else outputs is not None
        if row is None:
            return Observation(exists=False, applied=applied, outputs=outputs)
        return Observation(exists=True, state=row["state"], target=row["target"], attributes=row["attributes"],
                           applied=applied, outputs=outputs)

    def close(self) -> None:
        self._stop.set()
        self.world.detach(self._stop)


# --- reading a world file (tests, tools) ---------------------------------------


@contextlib.contextmanager
def _read_only(path: Path | str) -> Iterator[sqlite3.Connection]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no simulated world at {path}")
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)) as db:
        db.execute("PRAGMA busy_timeout = 5000")
        yield db


def read_ledger(path: Path | str) -> list[dict[str, Any]]:
    """Every effect the world at ``path`` applied, in order (inputs and outputs decoded)."""
    with _read_only(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM ledger ORDER BY seq").fetchall()
    return [{**dict(row), "inputs": json.loads(row["inputs"]), "outputs": json.loads(row["outputs"])}
            for row in rows]


def read_world(path: Path | str) -> dict[str, dict[str, Any]]:
    """The resources of the world at ``path``: name -> {type, state, target, attributes}."""
    with _read_only(path) as db:
        rows = db.execute("SELECT name, type, state, target, attributes FROM resources ORDER BY name").fetchall()
    return {name: {"type": rtype, "state": state, "target": target, "attributes": json.loads(attrs or "{}")}
            for name, rtype, state, target, attrs in rows}
