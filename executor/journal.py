"""The journal: a durable, append-only record of every run.

In an SQLite file by default (``.ordo/journal.db`` in the project unless told otherwise), or
in a PostgreSQL database that several workers and servers share (``--journal
postgresql://...``): the logic here is written once, over a backend (``executor/store/``)
that gives each database its placeholders, its locking, its schema version and its way of
telling whether a run's owner is still there.

Three tables, and a fourth beside them. ``events`` is the truth and is only ever appended to: per run,
the plan, each intent to dispatch with its idempotency key (committed before
the controller is called), results with outputs, failures, observations,
re-plans and the end state. ``runs`` and ``state`` are projections of the
events, written in the same transaction: the status of each run, and what the
journal knows of each resource now (the observed inventory the next plan
starts from). Writers batch: one transaction holds every event of one
scheduling round (group commit), which is what makes thousands of
operations a second possible with an fsync per commit.

``claims`` lets runs share the journal: a run started with claims holds only
those resources (written in the transaction that starts it), so runs on
disjoint resources may go side by side (the service, ``ordo serve``); a run
started without claims (``ordo apply``) holds the whole journal. A claim
counts while its run can still go on (running, or resumable: a crashed
owner's claims stay held until the run is resumed or aborted), and lapses
with the run's end, so nothing has to release it. Checking claims and starting
a run are one transaction under the journal's write lock, across processes.

Indexes for the service: ``idempotency`` (a key -> the run it started) and ``request_ids``
(the ids clients know runs by: the ``request_id`` of the run's options, and that of each
``resume-requested`` event that has one, written in the same transaction as the run or the
event), so that one is found without reading every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import operator
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from domain.errors import DiagnosticsError
from domain.formats import STORED, ObservedResource, quoted
from domain.procs import boot_id, started, stat_fields
from executor.core.event import Event
from executor.core.options import ON_FAILURE
from executor.redact import Redactor, scrub
from executor.store import Backend, ClaimError, JournalError, JournalLost, JournalUrl, location, open_backend
from executor.store.schema import SCHEMA_VERSION, steps
from executor.store.sqlite import private_file

#: Statuses a run can have. "running" with a dead owner means it crashed.
STATUSES = ("running", "complete", "fallout", "interrupted", "aborted", "rolled_back", "failed", "superseded")
#: Statuses from which `ordo resume` may continue ("running": when its owner is gone).
RESUMABLE = ("running", "fallout", "interrupted", "failed")
#: Seconds a command that only reads waits for a journal file of version 0 to be made one (by the
#: process that created it) before it says there is no journal.
MAKING = 2.0
#: A claim on a target (a run adds load to it) is its name after this mark, which no resource's name holds.
TARGET_MARK = "@"


def utc_text(ts: float) -> str:
    """A journal time (seconds since the epoch) as machine-readable outputs give it: RFC 3339, UTC, to
    the millisecond (``2026-12-07T09:29:30.123Z``)."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def target_claim(target: str) -> str:
    """The claim of a run that adds load to ``target`` (beside the resources it claims)."""
    return f"{TARGET_MARK}{target}"


def claim_target(claim: str) -> str | None:
    """The target a claim is of (``target_claim``'s), or None for a resource's."""
    return claim[len(TARGET_MARK):] if claim.startswith(TARGET_MARK) else None


def claimed(claim: str) -> str:
    """A claim as a message names it: a resource's name, or ``target NAME``."""
    target = claim_target(claim)
    return claim if target is None else f"target {target}"
#: What to do about a run in progress when another would start.
START_BUSY = "wait for it, or `ordo abort {run}`"

#: The lock of write transactions that start, claim or check runs (others lock the run they write).
WHOLE = 0
#: The write lock that orders the transactions writing resource records (``state_since`` relies on it).
STATE = -1


class RequestIdTaken(JournalError):
    """A run cannot start under a request id that another already has (a client's own id, sent twice)."""


class KeyTaken(JournalError):
    """A run cannot start under an Idempotency-Key that another run took meanwhile (a server beside this one
    started it): ``run`` is that run."""

    def __init__(self, message: str, run: int) -> None:
        super().__init__(message)
        self.run = run


class NoJournal(JournalError):
    """Where a journal was to be read there is none yet: no file, or one that no ordo has made a
    journal of (empty, or another process's, being made one at this moment)."""


class NotAJournal(JournalError):
    """What was opened as a journal is another program's, or damaged: asking again will not help."""


class NoRun(JournalError):
    """The journal holds no run of that number (not a passing trouble: asking again will not help)."""


class RunEnded(JournalError):
    """A run cannot be carried on: it ended for good (completed, aborted, superseded...) meanwhile."""


@dataclass(frozen=True)
class RunInfo:
    id: int
    created: float
    updated: float
    project: str
    request: str
    status: str
    pid: int | None
    host: str | None
    options: dict[str, Any]
    summary: dict[str, Any]
    #: Whether its owner's connection holds it (a journal on a server); None: judged by pid on this host.
    held: bool | None = None
    #: Its owner process as ``_owner`` wrote it ("PID BOOT_ID START_TICKS"), or None (an older ordo's row).
    owner: str | None = None

    @property
    def owner_alive(self) -> bool:
        """Whether the process that runs it still lives."""
        if self.held is not None:
            return self.held
        if self.pid is None or self.host != _host():
            return False
        return self.pid == os.getpid() or _lives(self.pid, self.updated, self.owner)

    @property
    def mine(self) -> bool:
        """Whether this process runs it."""
        return self.pid == os.getpid() and self.host == _host()

    @property
    def effective_status(self) -> str:
        """"crashed" for a run left "running" by a process that is gone."""
        if self.status == "running" and not self.owner_alive:
            return "crashed"
        return self.status

    @property
    def summary_is_current(self) -> bool:
        """Whether the summary is of the run as it is now, not of an earlier stop: a run resumed keeps
        the summary its last stop wrote (figures and reason) while it runs again, or once it crashed."""
        return self.summary.get("status", self.effective_status) == self.effective_status


def _host() -> str:
    return os.uname().nodename


def _owner() -> str | None:
    """This process as a run's row names its owner: its pid, this boot's id and its start (clock ticks
    since boot), which a process given the pid later (after a crash, or a reboot) does not share; None
    where /proc does not say."""
    began, boot = started(os.getpid()), boot_id()
    return None if began is None or boot is None else f"{os.getpid()} {boot} {began}"


def _lives(pid: int, since: float, owner: str | None = None) -> bool:
    """Whether process ``pid`` of this host lives and can be the one that wrote it into a run's row
    last updated at ``since`` (``owner``: the row's mark of it, when it has one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    mark = owner.split() if owner else []
    if len(mark) == 3 and mark[0] == str(pid):
        # the process that wrote the row is told apart exactly: no wall clock comes in (a step of the clock
        # by more than OWNER_MARGIN forward made a live owner look younger than its row, and a resume took
        # its run over while it ran: a sweep of clocks and time's)
        began, boot = started(pid), boot_id()
        if began is not None and boot is not None:
            return mark[1:] == [boot, str(began)]
    return _could_own(pid, since)   # (a zombie is not its owner there either)


#: Seconds by which a process may seem to have started after it wrote its pid into a run's row.
OWNER_MARGIN = 60.0


def _could_own(pid: int, since: float) -> bool:
    """Whether the live process ``pid`` can be the one that wrote its pid into a run's row, which was
    last updated at ``since``: not a zombie, and started before then (a pid the system gave to another
    process since, after a crash or a reboot, left the run held by it for good). Where /proc does not
    tell, it can."""
    fields = stat_fields(pid)
    if fields is None:
        return True
    if fields[0] == "Z":
        return False
    try:
        started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return True
    # a minute's margin: the boot time is whole seconds, and moves with the clock when it is set (a
    # step of the clock must not make a live owner look younger than its run's row)
    return started <= since + OWNER_MARGIN


@functools.cache
def _boot_time() -> float:
    with open("/proc/stat") as fh:
        return float(next(line.split()[1] for line in fh if line.startswith("btime ")))


@dataclass(frozen=True)
class RequestRef:
    """An id a client knows a run by: the request that started it, or a resume of it (``original``:
    the id the resume was asked under)."""

    id: str
    run: int
    original: str | None
    at: float


def default_path(project_root: Path) -> Path:
    return project_root / ".ordo" / "journal.db"


class Journal:
    """One journal. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path | str | JournalUrl, *, create: bool = True,
                 redactor: Redactor | None = None) -> None:
        self.path = location(path)
        if not create and isinstance(self.path, Path) and not self.path.exists():
            raise NoJournal(f"{self.path}: no journal here (nothing was applied with this working folder)")
        self.redactor = redactor or Redactor()
        self._store: Backend = open_backend(self.path)
        self._lock = threading.Lock()
        self._carrying: set[int] = set()   # the runs this journal's process holds and carries on
        self._columns = ("runs.id, runs.created, runs.updated, runs.project, runs.request, runs.status, runs.pid, "
                         f"runs.host, runs.options, runs.summary, {self._store.held}, runs.owner")
        self._runs = f"SELECT {self._columns} FROM runs"
        try:
            self._setup(create)
        except self._store.errors as exc:
            self._store.close()
            if self._store.unusable(exc):  # the file or the server, not what it holds
                raise JournalError(f"{self.path}: cannot open the journal: {self._store.describe(exc)}") from None
            damaged = "malformed" in str(exc)   # (SQLite's words: a database whose pages do not hold together)
            raise NotAJournal(f"{self.path}: {'the journal is damaged' if damaged else 'not an ordo journal'} "
                               f"({exc})" + ("; restore a backup of it (SQLite's .recover may save some of what it "
                                             "held)" if damaged else "")) from None
        except BaseException:  # a journal of another schema: do not leave the connection open
            self._store.close()
            raise

    def _setup(self, create: bool) -> None:
        db = self._store
        foreign = db.foreign_tables()   # nothing is written to a file that is not a journal yet
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            own = "a file" if isinstance(self.path, Path) else "a database"
            raise NotAJournal(f"{self.path}: not an ordo journal: it holds another program's tables ({shown}); "
                               f"give the journal {own} of its own")
        if not create and not self._made_meanwhile(db):   # (a command that only reads makes none of an empty file)
            raise NoJournal(f"{self.path}: no journal here (nothing was applied with this journal)")
        db.prepare()
        version = self._readable(db.version())
        if version < SCHEMA_VERSION:
            self._migrate()
        row = db.execute("SELECT value FROM meta WHERE key='id'").fetchone()
        if row is None or type(row[0]) is not str:
            raise JournalError(f"{self.path}: the journal is damaged: table meta holds no id of the journal "
                               "(runs on Temporal and the service's requests are named by it); restore a backup")
        self.id = row[0]

    def _made_meanwhile(self, db: Backend) -> bool:
        """Whether the journal has a schema, or a file of version 0 is given one within MAKING seconds
        (another process, which created the file a moment ago, is making it a journal)."""
        deadline = time.monotonic() + (MAKING if isinstance(self.path, Path) else 0)
        while db.version() == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _readable(self, version: int) -> int:
        """The schema version, if this ordo reads it or can bring it up to date."""
        if version < 0 or version > SCHEMA_VERSION:
            newer = "a newer ordo: upgrade ordo to use it" if version > SCHEMA_VERSION else "an unknown program"
            raise JournalError(f"{self.path}: journal schema version {version} was written by {newer} "
                               f"(this ordo reads version {SCHEMA_VERSION})")
        return version

    def _migrate(self) -> None:
        """Bring the schema to this ordo's version in one transaction (another process may be doing it too:
        the version is read again under the journal's write lock)."""
        with self._transaction(WHOLE) as db:
            version = self._readable(db.version())
            if version < SCHEMA_VERSION:
                for statement in steps(version, db.types):
                    db.execute(statement)
                if version < 3:
                    self._index_keys_locked()
                if version < 4:
                    self._index_request_ids_locked()
                db.execute("INSERT INTO meta (key, value) VALUES ('id', ?) ON CONFLICT DO NOTHING",
                           (uuid.uuid4().hex,))
                db.set_version(SCHEMA_VERSION)

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ------------------------------------------------------------

    def active_run(self) -> RunInfo | None:
        """A run still being carried out by a live process (the state lock)."""
        for run in self.runs(status="running"):
            if run.owner_alive:
                return run
        return None

    def start_run(self, project: str, request: str, options: dict[str, Any], *, supersede: bool = False,
                  claims: Iterable[str] | None = None) -> int:
        """A new run owned by this process, with no event yet (``begin_run`` writes its first ones with it)."""
        return self.begin_run(project, request, options, [], supersede=supersede, claims=claims)[0]

    def begin_run(self, project: str, request: str, options: dict[str, Any], events: list[Event], *,
                  supersede: bool = False, claims: Iterable[str] | None = None,
                  unchanged: tuple | None = None) -> tuple[int, list[Event]]:
        """A new run owned by this process, and its first ``events`` (run-started, which names what it
        takes over, and its plan) in the same transaction: a process killed between the two left a run
        that could not be resumed, and lost what the runs it superseded had left in doubt. Returns the
        run and its events as stored. JournalError if another live
        process holds a run in this journal (one writer per working folder),
        or if an earlier run can still be resumed (crashed, interrupted, failed,
        fallen out): its plan would go stale. With ``supersede`` those runs end
        as "superseded" instead, in the same transaction, and can never be resumed.
        With ``claims`` (resource names), the run holds those alone: ClaimError if a run
        that can still go on holds one of them or the whole journal, else it starts
        beside the others. ``unchanged``: the ``state_mark`` the run's plan was made from: JournalError,
        nothing started, if the state moved since (a run ended meanwhile: `ordo apply` confirmed at its
        prompt while another apply ran, and sent a plan of a state gone); not with ``claims`` (a run of
        the service holds what it changes, and plans again where another changed it)."""
        if claims is not None:
            return self._start_claiming(project, request, options, sorted(set(claims)), events)
        with self._exclusive(START_BUSY, others_only=False) as db:
            if unchanged is not None and _mark(db) != tuple(unchanged):
                raise JournalError("the journal's state changed since the plan was made (a run ended "
                                   "meanwhile): nothing was started; plan again")
            waiting = []
            for old in self._startable_locked(supersede):
                db.lock(old.id)  # an append to it that looked at its status (append_once) commits first
                old = self._run_locked(old.id)
                if old.status in RESUMABLE:  # else it ended meanwhile (aborted): nothing to supersede
                    waiting.append(old)
            run = self._insert_run(project, request, options)
            now = time.time()
            for old in waiting:
                summary = {**old.summary, "status": "superseded", "superseded_by": run,
                           "reason": f"superseded by run {run} while {old.effective_status}"}
                db.execute("INSERT INTO events (run, at, kind, data) VALUES (?, ?, 'run-ended', ?)",
                           (old.id, now, json.dumps(summary, sort_keys=True)))
                db.execute("UPDATE runs SET status='superseded', summary=?, updated=? WHERE id=?",
                           (json.dumps(summary, sort_keys=True), now, old.id))
            stored = self._insert(db, run, events, None, None, None)
        return run, stored

    def state_mark(self) -> tuple[int, int]:
        """What tells whether the state changed: its records, and the last event that wrote one (a
        record written, added or forgotten changes it)."""
        with self._read() as db:
            return _mark(db)

    def start_claims(self) -> list[str] | None:
        """What ``start_run`` claims when it is given no claims: None, the whole journal (a handle for
        the service's runs claims theirs: executor/runs.py)."""
        return None

    def _insert_run(self, project: str, request: str, options: dict[str, Any]) -> int:
        """The run's row, owned by this process (inside the transaction: it is never seen unowned)."""
        now = time.time()
        run = int(self._store.execute(
            "INSERT INTO runs (created, updated, project, request, status, pid, host, options, owner) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?) RETURNING id",
            (now, now, project, self.redactor.text(request), os.getpid(), _host(),
             json.dumps(options, sort_keys=True), _owner())).fetchone()[0])
        if self._store.execute("SELECT 1 FROM events WHERE run = ? LIMIT 1", (run,)).fetchone() is not None:
            # the runs' table lost rows that its events still name (a damaged page): a new run given the
            # id of a run lost would mix its events into that run's (the transaction is undone)
            raise JournalError(f"{self.path}: the journal is damaged: events of run {run} are stored, but its "
                               "run is not; restore a backup (`ordo history` says what it cannot read)")
        self._hold(run)
        return run

    def _hold(self, run: int) -> None:
        if not self._store.hold(run):
            raise JournalError(f"{self.path}: run {run} is carried on by another process")
        self._carrying.add(run)

    def _start_claiming(self, project: str, request: str, options: dict[str, Any], claims: list[str],
                        events: list[Event]) -> tuple[int, list[Event]]:
        if not claims:
            raise JournalError(f"{self.path}: a run started with claims must claim at least one resource")
        with self._write() as db:
            self._check_claims_locked(claims)
            run = self._insert_run(project, request, options)
            db.executemany("INSERT INTO claims (run, resource) VALUES (?, ?)", [(run, name) for name in claims])
            if isinstance(options.get("idempotency_key"), str):
                self._key_locked(options["idempotency_key"], run)
            if isinstance(options.get("request_id"), str):
                if db.execute("SELECT 1 FROM request_ids WHERE id=?", (options["request_id"],)).fetchone():
                    # a client's own id (SO's X-ONAP-RequestID) names one request: checked with the run's
                    # insert, so two servers on one journal cannot both take it
                    raise RequestIdTaken(f"RequestId: {options['request_id']} already exists")
                self._request_id_locked(options["request_id"], run, None, time.time())
            stored = self._insert(db, run, events, None, None, None)
        return run, stored

    # --- idempotency keys (the service's) ------------------------------------

    def _key_locked(self, key: str, run: int, *, migrating: bool = False) -> None:
        """Index ``key`` as run ``run``'s; KeyTaken if another run that began has it (one that never began,
        killed before its first event, gives it up: the client sends its request again). ``migrating``:
        the runs of an older journal, indexed in order (the last with a key has it, as before)."""
        row = None if migrating else self._store.execute("SELECT run FROM idempotency WHERE key=?", (key,)).fetchone()
        if row is not None and row[0] != run and not self._run_locked(row[0]).summary.get("never_began"):
            raise KeyTaken(f"{self.path}: the Idempotency-Key is run {row[0]}'s", row[0])
        self._store.execute("INSERT INTO idempotency (key, run) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET run=excluded.run", (key, run))

    def _index_keys_locked(self) -> None:
        """Migrating to version 3: the keys of the runs before it, from their options."""
        for run, options in self._store.execute("SELECT id, options FROM runs ORDER BY id").fetchall():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                key = json.loads(options).get("idempotency_key")
                if isinstance(key, str):
                    self._key_locked(key, run, migrating=True)

    def run_of_key(self, key: str) -> int | None:
        """The run last started with this idempotency key (kept with the run's options), if any."""
        with self._read() as db:
            row = db.execute("SELECT run FROM idempotency WHERE key=?", (key,)).fetchone()
        return None if row is None else int(row[0])

    # --- request ids: the ids clients know a run by (the service's SO requests) -----------

    def _request_id_locked(self, request_id: str, run: int, original: str | None, at: float) -> None:
        self._store.execute("INSERT INTO request_ids (id, run, original, at) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (id) DO NOTHING", (request_id, run, original, at))

    def _index_request_ids_locked(self) -> None:
        """Migrating to version 4: the ids of the runs before it, from their options (the service kept
        its SO request's under ``so``; no resume had an id of its own)."""
        rows = self._store.execute("SELECT id, created, options FROM runs ORDER BY id").fetchall()
        for run, created, options in rows:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                data = json.loads(options)
                found = data.get("request_id") or (data.get("so") or {}).get("request_id")
                if isinstance(found, str):
                    self._request_id_locked(found, run, None, created)

    def request(self, request_id: str) -> tuple[RequestRef, RunInfo] | None:
        """The run a client's request id names (the run's own, or that of a resume requested), if any."""
        with self._read():
            found = self._requests_locked("WHERE q.id=?", (request_id,))
        return found[0] if found else None

    def requests(self, statuses: tuple[str, ...] | None = None) -> list[tuple[RequestRef, RunInfo]]:
        """Every request id and its run (of these statuses), in the order they were made: the runs'
        rows and the index only, none of their events."""
        where, params = "", ()
        if statuses is not None:
            where, params = f"WHERE runs.status IN ({', '.join('?' * len(statuses))})", statuses
        with self._read():
            return self._requests_locked(where, params)

    def _requests_locked(self, where: str, params: tuple) -> list[tuple[RequestRef, RunInfo]]:
        rows = self._store.execute(f"SELECT q.id, q.original, q.at, {self._columns} FROM request_ids q "
                                   f"JOIN runs ON runs.id = q.run {where} ORDER BY q.at, q.id", params).fetchall()
        return [(RequestRef(id=r[0], run=r[3], original=r[1], at=r[2]), _run_info(r[3:], self.path)) for r in rows]

    # --- slots: the controllers' concurrency, shared by the runs side by side ----------

    def lease_slots(self, run: int, wanted: list[tuple[str, str, int, float]]) -> set[str]:
        """Take a slot of each operation's controller where one is free: ``wanted`` is (operation,
        controller, its concurrency, when the lease expires); returns the operations that got one.
        A lease lasts until :meth:`release_slots`, or until it expires (its holder died with it)."""
        granted: set[str] = set()
        with self._write(whole=True) as db:
            db.execute("DELETE FROM slots WHERE expires < ?", (time.time(),))
            marks = ",".join("?" * len(wanted))
            held: dict[str, int] = dict(db.execute(
                f"SELECT controller, count(*) FROM slots WHERE NOT (run=? AND op IN ({marks})) GROUP BY controller",
                (run, *[w[0] for w in wanted])).fetchall()) if wanted else {}
            for op, controller, limit, expires in wanted:
                if held.get(controller, 0) < limit:
                    held[controller] = held.get(controller, 0) + 1
                    db.execute("INSERT INTO slots (run, op, controller, expires) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (run, op) DO UPDATE SET controller=excluded.controller, "
                               "expires=excluded.expires", (run, op, controller, expires))
                    granted.add(op)
        return granted

    def release_slots(self, run: int, ops: Iterable[str] | None = None) -> None:
        """Give back the slots of these operations of ``run`` (None: all it holds)."""
        with self._write(whole=True) as db:
            if ops is None:
                db.execute("DELETE FROM slots WHERE run=?", (run,))
            else:
                db.executemany("DELETE FROM slots WHERE run=? AND op=?", [(run, op) for op in ops])

    def check_claims(self, claims: Iterable[str]) -> None:
        """ClaimError now if a run started with these claims would be refused (before planning)."""
        with self._read():
            self._check_claims_locked(sorted(set(claims)))

    def runs_now(self) -> tuple[frozenset[int], int]:
        """The runs that can still go on, and the last run's number: taken before the state is read
        for a plan, so that ``changed_since`` can tell whether that state was still being written."""
        with self._snapshot() as db:   # one state of the journal (else a run starting between the reads is in neither)
            last = db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
            return frozenset(run.id for run in self._runs_locked(RESUMABLE)), last

    def changed_since(self, runs_then: tuple[frozenset[int], int], claims: Iterable[str]) -> list[int]:
        """The runs that may have changed any of these resources since ``runs_then`` (``runs_now``):
        those that could go on then, and those started since, that claim one of them or the whole
        journal. A plan made from the state read after ``runs_then`` was made from what such a run
        had not written yet (or had, and then wrote more)."""
        active, last = runs_then
        wanted = set(claims)
        out = []
        with self._read() as db:
            later = {run for (run,) in db.execute("SELECT id FROM runs WHERE id>?", (last,)).fetchall()}
            for run in sorted(active | later):
                names = set(self._claims_locked(run))
                if not names or names & wanted:
                    out.append(run)
        return out

    def held_targets(self) -> dict[str, int]:
        """The targets runs that can still go on add load to (their ``@TARGET`` claims), each with its run."""
        marks = ", ".join("?" * len(RESUMABLE))
        with self._read() as db:
            rows = db.execute(f"SELECT claims.resource, claims.run FROM claims JOIN runs ON runs.id = claims.run "
                              f"WHERE claims.resource LIKE ? AND runs.status IN ({marks}) "
                              f"ORDER BY claims.resource{db.by_code_point}, claims.run",
                              (f"{TARGET_MARK}%", *RESUMABLE)).fetchall()
        return {claim_target(name): run for name, run in rows}

    def claims(self, run_id: int) -> list[str]:
        """The resources a run holds while it can go on; [] for a run that holds the whole journal."""
        with self._read():
            return self._claims_locked(run_id)

    def _claims_locked(self, run_id: int) -> list[str]:
        return [r for (r,) in self._store.execute(
            f"SELECT resource FROM claims WHERE run=? ORDER BY resource{self._store.by_code_point}",
            (run_id,)).fetchall()]

    def extend_claims(self, run_id: int, claims: Iterable[str]) -> dict[str, int]:
        """Add these claims to those of run ``run_id`` (a re-plan's: what its new plan works on and adds
        load to), all or none: the ones another run that can still go on holds, each with that run
        (nothing is taken then); {} when they were taken, or when ``run_id`` holds the whole journal."""
        with self._write() as db:
            own = set(self._claims_locked(run_id))
            wanted = set(claims) - own
            if not own or not wanted:
                return {}
            held: dict[str, int] = {}
            for run, names in self._holders_locked(wanted, besides=run_id):
                for name in sorted(wanted if names is None else names):
                    held.setdefault(name, run.id)
            if not held:
                db.executemany("INSERT INTO claims (run, resource) VALUES (?, ?)",
                               [(run_id, name) for name in sorted(wanted)])
            return held

    def _holders_locked(self, wanted: set[str], besides: int | None = None) -> list[tuple[RunInfo, set[str] | None]]:
        """The runs that can still go on (but ``besides``) holding any of ``wanted``, each with those it
        holds (None: it holds the whole journal)."""
        out: list[tuple[RunInfo, set[str] | None]] = []
        for run in self._runs_locked(RESUMABLE):
            if run.id == besides:
                continue
            names = set(self._claims_locked(run.id))
            if not names or names & wanted:
                out.append((run, (names & wanted) or None))
        return out

    def _check_claims_locked(self, claims: list[str], besides: int | None = None) -> None:
        held, taken, whole = [], {}, False
        for run, names in self._holders_locked(set(claims), besides):
            if names is None:
                whole = True
                held.append(f"run {run.id} ({run.effective_status}) holds the whole journal")
            else:
                taken.update(dict.fromkeys(names, run.id))
                shown = [claimed(name) for name in sorted(names)]
                more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
                held.append(f"run {run.id} ({run.effective_status}) holds {', '.join(shown[:5])}{more}")
        if held:
            raise ClaimError(f"{self.path}: {'; '.join(held)}: wait for it to end, resume or abort it",
                             None if whole else taken)

    def claim(self, run_id: int, only: tuple[str, ...] | None = None) -> RunInfo:
        """Take over a run to resume it: JournalError if a live process has it, RunEnded if it
        ended for good (read under its lock: a supersede or an abort that came first is seen), or is
        in none of the statuses ``only`` names (read under its lock too: a run on Temporal followed
        again that fell out meanwhile is its workflow's, waiting for a decision). A run
        holding the whole journal is refused while a run of another live process goes on; one holding
        claims (the service's) only while another run holds some of them or the whole journal, as when
        it started: servers sharing a journal take over each other's runs while they run their own."""
        with self._write(run_id, whole=True) as db:
            own = self._claims_locked(run_id)
            if own:
                self._check_claims_locked(own, besides=run_id)
            else:
                self._refuse_busy_locked("wait for it, or `ordo abort {run}`", True)
            db.lock(run_id)
            run = self._run_locked(run_id)
            if run.status == "running" and run.owner_alive and not run.mine:   # (a pid of this host that lives)
                raise self._in_progress(run, "wait for it, or `ordo abort {run}`")
            if run.status not in RESUMABLE or (only is not None and run.status not in only):
                raise RunEnded(f"{self.path}: run {run_id} cannot be carried on: it is {run.status}"
                               + (f" ({run.summary['reason']})" if run.summary.get("reason") else ""))
            self._hold(run_id)
            db.execute("UPDATE runs SET pid=?, host=?, owner=?, status='running', updated=? WHERE id=?",
                       (os.getpid(), _host(), _owner(), time.time(), run_id))
        return run

    def hold_again(self, run_id: int) -> bool:
        """Hold a run this process carries on again, on this connection, after the one that held it was
        lost (a PostgreSQL restart): only while it is still running and no other live process holds it
        (a run that fell out, or ended, meanwhile stays as it is, unlike ``claim``). Whether it is held."""
        with self._write(run_id, whole=True) as db:
            run = self._run_locked(run_id)
            if run.status != "running" or (run.owner_alive and not run.mine) or not self._store.hold(run_id):
                return False
            self._carrying.add(run_id)
            db.execute("UPDATE runs SET pid=?, host=?, owner=?, updated=? WHERE id=?",
                       (os.getpid(), _host(), _owner(), time.time(), run_id))
        return True

    def _live_run_locked(self) -> RunInfo | None:
        for run in self._runs_locked(("running",)):
            if run.owner_alive:
                return run
        return None

    def check_startable(self, supersede: bool = False) -> list[RunInfo]:
        """JournalError now if `start_run` would refuse, for a run in progress or one that can be
        resumed (before planning: a plan made only to be refused is time lost and a screen misread);
        else the runs a supersede would end."""
        with self._read():
            self._refuse_busy_locked(START_BUSY, others_only=False)
            return self._startable_locked(supersede)

    def resumable(self) -> list[RunInfo]:
        """The runs `ordo resume` could carry on (crashed, interrupted, failed, fallen out)."""
        with self._read():
            return self._resumable_locked()

    def _resumable_locked(self) -> list[RunInfo]:
        return [run for run in self._runs_locked(RESUMABLE) if run.effective_status != "running"]

    def _runs_locked(self, statuses: tuple[str, ...] | None = None) -> list[RunInfo]:
        if statuses is None:
            rows = self._store.execute(f"{self._runs} ORDER BY id").fetchall()
        else:
            marks = ", ".join("?" * len(statuses))
            rows = self._store.execute(f"{self._runs} WHERE status IN ({marks}) ORDER BY id", statuses).fetchall()
        return [_run_info(row, self.path) for row in rows]

    def _startable_locked(self, supersede: bool) -> list[RunInfo]:
        """The runs that could still be resumed; JournalError if there are any, unless they are
        to be superseded."""
        waiting = self._resumable_locked()
        if waiting and not supersede:
            runs = "; ".join(f"run {r.id} is {r.effective_status}" for r in waiting)
            first = waiting[0].id
            raise JournalError(
                f"{self.path}: {runs}, and can be resumed: {resume_or_abort(first)}, or `ordo apply --supersede` "
                "starts anew (a superseded run can never be resumed)")
        return waiting

    @contextlib.contextmanager
    def _read(self) -> Iterator[Backend]:
        """Under the lock; the database's errors become a JournalError naming the journal."""
        with self._lock:
            try:
                yield self._store
            except self._store.errors as exc:
                error = JournalLost if self._store.lost(exc) else JournalError
                raise error(f"{self.path}: cannot read the journal: {self._store.describe(exc)}") from exc

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Backend]:
        """``_read`` for several statements that must see one state of the journal (a writer may
        commit between two statements of an autocommitting connection)."""
        with self._read() as db:
            db.begin_snapshot()
            try:
                yield db
            finally:
                if db.in_transaction():
                    with contextlib.suppress(*db.errors):
                        db.rollback()   # read only: nothing to keep

    @contextlib.contextmanager
    def _write(self, run: int | None = None, *, whole: bool = False) -> Iterator[Backend]:
        """One write transaction, under the lock. It holds the write lock of ``run`` (its events),
        else (or if ``whole``) the whole journal's (starting, claiming, forgetting). The database's
        errors become a JournalError naming the journal (and, for ``run``, how to carry it on)."""
        with self._lock, self._store.writers():
            db = self._store
            carried = run in self._carrying   # (before: a takeover that holds it in this transaction)
            try:
                with self._transaction(WHOLE if run is None or whole else run):
                    yield db
            except db.errors as exc:
                if run is not None and not carried and run in self._carrying:   # a takeover that did not commit
                    self._carrying.discard(run)
                    with contextlib.suppress(*db.errors):
                        db.release(run)
                # how to carry on: for a run this process carries on, not a write about one it does not (an
                # abort, a resume's takeover: `ordo resume` there would carry on what was to be stopped)
                then = (f"; run {run} stopped at its last recorded event: once that is fixed, `ordo resume {run}`"
                        if carried else "; nothing was written: once that is fixed, run the command again"
                        if run is not None else "")
                message = f"{self.path}: cannot write to the journal: {db.describe(exc)}{then}"
                raise (JournalLost(message, run=run) if db.lost(exc) else JournalError(message)) from exc

    @contextlib.contextmanager
    def _transaction(self, lock: int) -> Iterator[Backend]:
        """Committed, or rolled back on any error. A COMMIT that failed may have ended the
        transaction already (a full disk): then there is nothing to roll back, and the error
        that matters is the first one."""
        db = self._store
        db.begin(lock)
        try:
            yield db
            db.commit()
        except BaseException:
            if db.in_transaction():
                with contextlib.suppress(*db.errors):
                    db.rollback()
            raise

    @contextlib.contextmanager
    def _exclusive(self, then: str, *, others_only: bool = True) -> Iterator[Backend]:
        """A write transaction refused while a run of another live process (or, unless
        ``others_only``, of this one) is in progress: one writer per working folder.
        ``then`` says what to do about it ({run} is the run in progress)."""
        with self._write(whole=True) as db:
            self._refuse_busy_locked(then, others_only)
            yield db

    def _refuse_busy_locked(self, then: str, others_only: bool) -> None:
        busy = self._live_run_locked()
        if busy is not None and not (others_only and busy.mine):
            raise self._in_progress(busy, then)

    def _in_progress(self, busy: RunInfo, then: str) -> JournalError:
        return JournalError(f"{self.path}: run {busy.id} is in progress (pid {busy.pid}"
                            + (f" on {busy.host}" if busy.host != _host() else "") + "); " + then.format(run=busy.id))

    def run(self, run_id: int) -> RunInfo:
        with self._read():
            return self._run_locked(run_id)

    def _run_locked(self, run_id: int) -> RunInfo:
        row = self._store.execute(f"{self._runs} WHERE id=?", (run_id,)).fetchone()
        if row is None:
            last = self._store.execute("SELECT max(id) FROM runs").fetchone()[0]
            hint = f"runs are numbered 1 to {last}" if last else "no run was recorded yet"
            raise NoRun(f"{self.path}: no run {run_id} ({hint}; see `ordo history`)")
        return _run_info(row, self.path)

    def runs(self, status: str | tuple[str, ...] | None = None) -> list[RunInfo]:
        """The runs, oldest first; those of a stored ``status`` (or of one of them) when given."""
        with self._read():
            return self._runs_locked((status,) if isinstance(status, str) else status or None)

    def runs_newest(self, status: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[RunInfo], int]:
        """A page of the runs, newest first, and how many there are in all; only those whose effective
        status is ``status`` when given. Read a page at a time: a list of the whole history, made for
        each page (a server's list, its web page, its metrics), grew with every run ever made (0.8 s
        at 20,000 runs for a page of one)."""
        with self._read():
            if status in ("running", "crashed"):   # (a running run whose owner is gone is crashed: asked of each)
                found = [r for r in reversed(self._runs_locked(("running",))) if r.effective_status == status]
                return found[offset:offset + limit], len(found)
            where, args = ("WHERE status = ?", (status,)) if status else ("", ())
            total = int(self._store.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0])
            rows = self._store.execute(f"{self._runs} {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                                       (*args, limit, offset)).fetchall()
            return [_run_info(row, self.path) for row in rows], total

    def run_counts(self) -> dict[str, int]:
        """How many runs there are in each effective status (counted in SQL, but the running ones)."""
        with self._read():
            counts = {str(status): int(count) for status, count in self._store.execute(
                "SELECT status, count(*) FROM runs WHERE status <> 'running' GROUP BY status").fetchall()}
            for run in self._runs_locked(("running",)):
                counts[run.effective_status] = counts.get(run.effective_status, 0) + 1
            return counts

    def last_run(self) -> int | None:
        with self._read() as db:
            return db.execute("SELECT max(id) FROM runs").fetchone()[0]

    # --- events ----------------------------------------------------------

    def append(self, run: int, events: Iterable[Event], *,
               state: dict[str, ObservedResource | None] | None = None,
               status: str | None = None, summary: dict[str, Any] | None = None) -> list[Event]:
        """Append events and update the projections, in one transaction.

        ``state`` maps resource names to their new record (None forgets one).
        Returns the events with their sequence numbers and times. A status other than
        "running" ends this process's ownership of the run.
        """
        return self.append_once(run, list(events), since=None, state=state, status=status, summary=summary)[0]

    def append_once(self, run: int, events: list[Event], *, since: int | None,
                    same: Callable[[Event, Event], bool] | None = None,
                    state: dict[str, ObservedResource | None] | None = None,
                    status: str | None = None, summary: dict[str, Any] | None = None,
                    only_if: Callable[[RunInfo], bool] | None = None) -> tuple[list[Event], bool]:
        """``append``, unless these events stand already after ``since``, written by another
        attempt of the same step (a retried activity whose first attempt is still running, on
        another worker): then nothing is written, and those are returned. The look and the write
        are one transaction under the run's write lock, so of two attempts one writes and the
        other finds. ``same(new, stored)``: whether two events are one write (default: the same
        kind, operation, key and data, as redacted). ``only_if(run)``: whether the run, as read in
        the same transaction (its status, and whether its owner is alive), is still in the state the
        events are for; else nothing is written and nothing returned (the run moved on: superseded,
        or taken over by a resume). Returns the events and whether this call wrote them; with
        ``since`` None, nothing is looked for."""
        found: list[Event] | None = None
        with self._write(run) as db:
            if since is not None and events:
                found = self._standing(db, run, since, events, same or self._same)
            if found is None and only_if is not None and not only_if(self._run_locked(run)):
                found = []
            if found is None:
                stored = self._insert(db, run, events, state, status, summary)
        if status is not None and status != "running":   # this process carries the run on no more, either way
            self._carrying.discard(run)
            with self._lock, contextlib.suppress(*self._store.errors):  # a lost connection lost its locks too
                self._store.release(run)
        return (stored, True) if found is None else (found, False)

    def _insert(self, db: Backend, run: int, events: list[Event], state: dict[str, ObservedResource | None] | None,
                status: str | None, summary: dict[str, Any] | None) -> list[Event]:
        """``append``'s writes, in its transaction: the events, the records, the run's status."""
        now = time.time()
        stored = []
        if state:  # before any sequence number is taken: state rows commit in their seqs' order
            db.lock(STATE)
        last = 0
        for ev in events:
            data = self.redactor.event(ev.data)
            last = int(db.execute(
                "INSERT INTO events (run, at, kind, op, key, data) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
                (run, now, ev.kind, ev.op, ev.key, json.dumps(data, sort_keys=True, default=str))).fetchone()[0])
            stored.append(Event(kind=ev.kind, op=ev.op, key=ev.key, data=data, seq=last, run=run, at=now))
            if ev.kind == "resume-requested" and isinstance(data.get("request_id"), str):
                self._request_id_locked(data["request_id"], run, data.get("original_request_id"), now)
        for name, record in (state or {}).items():
            if record is None:
                db.execute("DELETE FROM state WHERE resource=?", (name,))
            else:
                db.execute("INSERT INTO state (resource, record, run, seq) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (resource) DO UPDATE SET record=excluded.record, run=excluded.run, "
                           "seq=excluded.seq", (name, self.redactor.record(record).model_dump_json(), run, last))
        if status is not None or summary is not None:
            db.execute("UPDATE runs SET status=coalesce(?, status), summary=coalesce(?, summary), "
                       "updated=? WHERE id=?",
                       (status, json.dumps(self.redactor.tree(summary), sort_keys=True)
                        if summary is not None else None,
                        now, run))
        return stored

    def _standing(self, db: Backend, run: int, since: int, events: list[Event],
                  same: Callable[[Event, Event], bool]) -> list[Event] | None:
        """The stored run of events after ``since`` that ``events`` are, one by one; else None."""
        after = [self._event(r) for r in db.execute(
            "SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND seq>? ORDER BY seq",
            (run, since)).fetchall()]
        for i in range(len(after) - len(events) + 1):
            if all(same(ev, after[i + j]) for j, ev in enumerate(events)):
                return after[i:i + len(events)]
        return None

    def _same(self, new: Event, stored: Event) -> bool:
        """One write: the same kind, operation, key and data (the new event's as it would be stored)."""
        return (new.kind, new.op, new.key) == (stored.kind, stored.op, stored.key) and json.dumps(
            self.redactor.event(new.data), sort_keys=True, default=str) == json.dumps(
            stored.data, sort_keys=True, default=str)

    def events(self, run: int, since: int = 0, limit: int = -1, kinds: tuple[str, ...] | None = None, *,
               resources: tuple[str, ...] | None = None, last: bool = False) -> list[Event]:
        """The run's events after ``since``, in order (at most ``limit``; -1: all; only ``kinds`` if
        given; only those of operations on ``resources`` if given; ``last``: the last ``limit`` of them)."""
        sql, params = "SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND seq>?", (run, since)
        if kinds is not None:
            sql, params = f"{sql} AND kind IN ({', '.join('?' * len(kinds))})", (*params, *kinds)
        if resources is not None:   # (an operation's id is RESOURCE/OPERATION; a resource's name has no "/")
            sql = f"{sql} AND ({' OR '.join(['substr(op, 1, ?) = ?'] * len(resources)) or 'FALSE'})"
            params = (*params, *(p for name in resources for p in (len(name) + 1, f"{name}/")))
        with self._read() as db:
            if limit >= 0:
                rows = db.execute(f"{sql} ORDER BY seq {'DESC ' if last else ''}LIMIT ?", (*params, limit)).fetchall()
            else:
                rows = db.execute(f"{sql} ORDER BY seq", params).fetchall()
        return [self._event(r) for r in (reversed(rows) if last and limit >= 0 else rows)]

    def event_sizes(self, run: int, since: int = 0, limit: int = -1) -> list[tuple[int, int]]:
        """The seq and stored size (characters of its data) of the run's events after ``since``, in
        order (at most ``limit``): what reading them will hold, known before they are read."""
        sql, params = "SELECT seq, length(data) FROM events WHERE run=? AND seq>? ORDER BY seq", (run, since)
        if limit >= 0:
            sql, params = f"{sql} LIMIT ?", (*params, limit)
        with self._read() as db:
            return [(int(seq), int(size or 0)) for seq, size in db.execute(sql, params).fetchall()]

    def doubt_events(self, run: int) -> tuple[list[Event], int]:
        """The events of ``run`` that decide what it left in doubt, in order, and the run's last event.

        Those are: its ``run-started`` (what it took over) and ``observed`` events, and the intents,
        results, sends, retries and failures of the operations on resources that may still be in doubt:
        those whose last intent no result followed (a result settles every operation on its resource),
        and those it took over. Replayed through ``RunState.apply`` they give the
        run's ``in_doubt`` and keys exactly as all its events do, without reading the rest: its plans
        and what it settled (an aborted run of 10,000 resources took 2 s to read back whole, at each
        new run)."""
        ops = ("intent", "result", "sent", "retry", "failed")
        with self._snapshot() as db:
            firsts = db.execute("SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND "
                                "kind IN ('run-started', 'observed') ORDER BY seq", (run,)).fetchall()
            rows = db.execute(f"SELECT seq, kind, op FROM events WHERE run=? AND kind IN ({', '.join('?' * len(ops))})"
                              " AND op IS NOT NULL ORDER BY seq", (run, *ops)).fetchall()
            last = db.execute("SELECT coalesce(max(seq), 0) FROM events WHERE run=?", (run,)).fetchone()[0]
            events = [self._event(r) for r in firsts]
            took_over = {op.rpartition("/")[0] for ev in events if ev.kind == "run-started"
                         for op in ev.data.get("in_doubt") or ()}
            resources = [op.rpartition("/")[0] for _, _, op in rows]
            intent_at: dict[str, int] = {}
            result_at: dict[str, int] = {}
            for (seq, kind, _), res in zip(rows, resources, strict=True):
                if kind == "intent":
                    intent_at[res] = seq
                elif kind == "result":
                    result_at[res] = seq
            open_ = {res for res, seq in intent_at.items() if seq > result_at.get(res, 0)}
            open_ |= took_over   # (their results read too: one settles what was taken over)
            wanted = [row[0] for row, res in zip(rows, resources, strict=True) if res in open_]
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                events += [self._event(r) for r in db.execute(
                    f"SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND seq IN "
                    f"({', '.join('?' * len(chunk))})", (run, *chunk)).fetchall()]
        return sorted(events, key=lambda ev: ev.seq), int(last)

    def last_event(self, run: int, kinds: tuple[str, ...] | None = None) -> Event | None:
        """The run's last event (of one of these kinds, if given), read backwards: a status answer
        does not read the run's whole history."""
        sql, params = "SELECT seq, run, at, kind, op, key, data FROM events WHERE run=?", (run,)
        if kinds is not None:
            sql, params = f"{sql} AND kind IN ({', '.join('?' * len(kinds))})", (*params, *kinds)
        with self._read() as db:
            row = db.execute(f"{sql} ORDER BY seq DESC LIMIT 1", params).fetchone()
        return None if row is None else self._event(row)

    def _event(self, r: tuple) -> Event:
        # _EVENT_COLUMNS, written out: read for every event, a third as costly as a loop over them
        if not (type(r[0]) is int and type(r[1]) is int and type(r[2]) in (float, int) and -MAX_TIME < r[2] < MAX_TIME
                and type(r[3]) is str and (r[4] is None or type(r[4]) is str) and (r[5] is None or type(r[5]) is str)):
            raise JournalError(f"{self.path}: table events, event {r[0]} is damaged: {_misfit(r, _EVENT_COLUMNS)}")
        return Event(seq=r[0], run=r[1], at=r[2], kind=r[3], op=r[4], key=r[5],
                     data=_json(r[6], self.path, f"table events, event {r[0]} ({r[3]} of run {r[1]})"))

    def has_event(self, run: int, kind: str, since: int = 0) -> bool:
        with self._read() as db:
            return db.execute("SELECT 1 FROM events WHERE run=? AND kind=? AND seq>? LIMIT 1",
                              (run, kind, since)).fetchone() is not None

    # --- state -----------------------------------------------------------

    def state(self) -> dict[str, ObservedResource]:
        """What the journal knows of each resource now."""
        return self.state_json()[0]

    def state_json(self) -> tuple[dict[str, ObservedResource], list[str]]:
        """The state, and each record's JSON as stored (in the same order)."""
        rows = self.state_rows()
        return self._records(rows), [record for _, record in rows]

    def state_rows(self) -> list[tuple[str, str]]:
        """Each record's resource and JSON as stored, in name order, not read (``_records`` reads them)."""
        with self._read() as db:
            return self._named(db.execute(
                f"SELECT resource, record FROM state ORDER BY resource{db.by_code_point}").fetchall())

    def written_by_runs_under_way(self) -> set[str]:
        """The resources whose records were written last by a run that may go on (RESUMABLE)."""
        marks = ", ".join("?" * len(RESUMABLE))
        with self._read() as db:
            return {name for (name,) in db.execute(f"SELECT state.resource FROM state JOIN runs ON runs.id = state.run "
                                                   f"WHERE runs.status IN ({marks})", RESUMABLE).fetchall()}

    def state_since(self, seq: int, texts: dict[str, str] | None = None,
                    ) -> tuple[dict[str, ObservedResource], int, int]:
        """The records written with events after ``seq``, how many records there are in all (fewer
        than a copy holds: some were removed since), and the event of the last record written.
        ``texts``: filled with each of those records' JSON as stored. Both read one snapshot: a record
        written between them would otherwise be counted, and its event seen, but not read."""
        with self._snapshot() as db:
            rows = db.execute(f"SELECT resource, record FROM state WHERE seq>? ORDER BY resource{db.by_code_point}",
                              (seq,)).fetchall()
            count, last = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM state").fetchone()
        if texts is not None:
            texts.update(rows)
        return self._records(rows), int(count), int(last)

    def _records(self, rows: list[tuple[str, str]]) -> dict[str, ObservedResource]:
        """The rows' records, each parsed and validated on its own but in one call (10,000 calls
        cost a fifth more); when one is damaged, each is read alone again to name the first."""
        self._named(rows)
        try:
            records = _records_adapter().validate_python([record for _, record in rows], context=STORED)
        except ValueError as exc:  # pydantic's ValidationError: bad JSON or a bad field
            for name, record in rows:
                self._record(name, record)
            raise JournalError(f"{self.path}: table state is damaged ({_first_error(exc)})") from None
        out = {name: record for (name, _), record in zip(rows, records, strict=True)}
        wrong = next(((n, r) for n, r in out.items() if r.name != n), None)   # (by hand: it would stand for another)
        if wrong is not None:
            name, record = wrong
            raise JournalError(
                f"{self.path}: table state, the record of '{name}' is damaged (it is named {quoted(record.name)}); "
                f"`ordo state rm {name}` forgets it (the inventory file speaks for it again)")
        return out

    def _record(self, name: str, record: str) -> ObservedResource:
        try:
            return ObservedResource.model_validate_json(record, context=STORED)
        except ValueError as exc:  # pydantic's ValidationError: bad JSON or a bad field
            raise JournalError(
                f"{self.path}: table state, the record of '{name}' is damaged ({_first_error(exc)}); "
                f"`ordo state rm {name}` forgets it (the inventory file speaks for it again)") from None

    def forget(self, names: list[str]) -> list[str]:
        """Drop the state records of these resources (an operator's correction:
        the inventory file speaks for them again). Refused while a run is in
        progress. Returns the names that had a record."""
        with self._exclusive("its records cannot be changed now", others_only=False) as db:
            return [n for n in names if db.execute("DELETE FROM state WHERE resource=?", (n,)).rowcount]

    def written_since(self, seq: int, names: Iterable[str]) -> set[str]:
        """Those of these resources whose state record was written after event ``seq``."""
        wanted = sorted(set(names))
        with self._read() as db:
            return {name for name in wanted if db.execute(
                "SELECT 1 FROM state WHERE resource=? AND seq>?", (name, seq)).fetchone() is not None}

    def state_runs(self) -> dict[str, int]:
        """For each recorded resource, the run that last wrote it."""
        with self._read() as db:
            return dict(self._named(db.execute("SELECT resource, run FROM state").fetchall()))

    def _named(self, rows: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """The state's rows, each naming its resource (no `ordo state rm` can name one that does not)."""
        if any(type(name) is not str for name, _ in rows):
            raise JournalError(f"{self.path}: table state is damaged: a row names no resource; delete it (SQLite: "
                               "DELETE FROM state WHERE typeof(resource) <> 'text') or restore a backup")
        return rows


def refreshed(journal: Journal, records: dict[str, ObservedResource], seen: int,
              texts: dict[str, str] | None = None) -> tuple[dict[str, ObservedResource], int]:
    """A copy of the journal's records (``records``, current as of the record written with event
    ``seen``; -1: none yet) brought up to date, and the event it is now current as of: the records
    written since (all of them at first, or when some were removed since, which the count shows),
    not every record each time. ``texts``, if given, is kept alongside: each record's JSON as
    stored (replaced, not updated, when all are read again: the returned records tell)."""
    if seen >= 0:
        changed, count, last = journal.state_since(seen, texts)
        records.update(changed)
        if len(records) == count and last >= seen:   # (a journal put back from a backup goes back in time)
            return records, last
    if texts is not None:
        texts.clear()
    records, _, last = journal.state_since(-1, texts)
    return records, last


class StateCopy:
    """The journal's state as a long-lived process keeps it (`ordo serve`): brought up to date
    before each plan by reading what was written since (``refreshed``), instead of reading and
    validating every record each time. Thread-safe; the records it hands out are not to be changed
    (nothing changes a record in place: a Resource built from one copies what it changes). A record
    changed in the database without a new event (by hand, outside ordo) is not seen until the
    process starts again; a journal put back from a backup is read whole when its last event is
    older than the copy's, or when it is another journal (its id)."""

    def __init__(self) -> None:
        self._records: dict[str, ObservedResource] = {}
        self._texts: dict[str, str] = {}
        self._seen = -1
        self._journal = ""   # the id of the journal copied: another one (made anew) is read whole
        self._lock = threading.Lock()
        #: The last digest worked out (``digest``), with the records and texts it is of.
        self._digest: tuple[list[ObservedResource], list[str], str] | None = None

    def observed(self, journal: Journal) -> tuple[list[ObservedResource], list[str]]:
        """The records in name order, and their JSON as stored (what ``load_project`` takes)."""
        with self._lock:
            if journal.id != self._journal:
                self._journal, self._seen = journal.id, -1
            self._records, self._seen = refreshed(journal, self._records, self._seen, self._texts)
            names = sorted(self._records)
            return [self._records[n] for n in names], [self._texts[n] for n in names]

    def digest(self, records: list[ObservedResource], texts: list[str]) -> str:
        """``domain.project.observed_digest(records, texts)`` of what ``observed`` handed out, worked
        out again only when they are not the very objects of the last time: a record not written
        since is the same object from one plan to the next, and neither records nor texts change
        in place, so the same objects have the same digest (writing 10,000 records out to check
        their texts took a fifth of a small request's plan against them: 0.02 of 0.10 s)."""
        last = self._digest
        if (last is not None and len(last[0]) == len(records) and len(last[1]) == len(texts)
                and all(map(operator.is_, last[0], records)) and all(map(operator.is_, last[1], texts))):
            return last[2]
        from domain.project import observed_digest  # (the YAML reader and the models: not for every journal)

        value = observed_digest(records, texts)
        self._digest = (records, texts, value)   # one assignment: a thread reads the old entry or this one
        return value


class RecordValues(SimpleNamespace):
    """A record read back as the values of its JSON, unvalidated: the fields of an
    ``ObservedResource``, for a record this very text of which was read and validated before
    (``read_state``), and only to be read. The fields its JSON leaves out when empty, here."""

    params: tuple = ()
    reads_outputs: tuple = ()


#: Where a project keeps the digests of the journal states it read, each record validated (``read_state``).
STATE_CACHE = Path(".ordo", "cache", "state")


def read_state(journal: Journal, folder: Path | None) -> tuple[Sequence[Any], str]:
    """The journal's records in name order, and their digest (``domain.project.observed_digest``),
    for a command that plans from them.

    Every record is parsed and validated (``Journal._records``: half of reading a 10,000-record
    state, and writing them out again to digest them nearly as much), except for a state read so
    before: when the project's ``folder`` (STATE_CACHE) holds an entry of this journal (its id) for
    the sha256 of these very texts and of the rows' names, made by the same ordo (the code that
    validates and digests records) when each text was found to be exactly what its valid record
    writes out, the texts are only parsed as JSON, and only when first read (``RecordsLater``: a
    command whose model is kept reads none), and that sha256 is their digest. One entry a project,
    of the last state read: a state written since, by any run, or another journal's, is read and
    validated whole, and its entry replaces the old. Whoever can write ``folder`` can make damaged
    records pass unchecked, as one who can write the journal can change them (docs/security.md)."""
    # (the YAML reader and the models: not for every journal)
    from domain.project import observed_digest, texts_digest, written_as_stored
    from domain.yamlsrc import ParseCache

    rows = journal.state_rows()
    texts = [text for _, text in rows]
    cache = digest = vouched = None
    fingerprint = _state_fingerprint() if folder is not None else None
    if fingerprint is not None and all(type(text) is str for text in texts):   # (else: damaged, as _records says)
        cache, digest = ParseCache(folder, "state", fingerprint), texts_digest(texts)
        vouched = {"journal": journal.id, "names": texts_digest([name for name, _ in rows]), "written_as_stored": True}
        if cache.get(digest, 0) == (vouched,):
            return RecordsLater(journal, rows), digest
    observed = list(journal._records(rows).values())
    if not written_as_stored(observed, texts):
        return observed, observed_digest(observed)
    if cache is not None:
        cache.put(digest, vouched)
    return observed, digest or texts_digest(texts)


class RecordsLater(Sequence):
    """The records of a state read and validated before (``read_state``), as the values of their JSON
    (``RecordValues``: what validation gave then), parsed when first read."""

    def __init__(self, journal: Journal, rows: list[tuple[str, str]]) -> None:
        self._journal, self._rows = journal, rows
        self._records: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        return self._parsed()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._parsed())

    def _parsed(self) -> list[Any]:
        records = self._records
        if records is None:
            from pydantic_core import from_json

            rows = self._rows
            try:
                values = from_json("[" + ",".join(text for _, text in rows) + "]")
                shapes = _record_shapes()
                records = [RecordValues(**v) for v in values] \
                    if len(values) == len(rows) and all(type(v) is dict and v.keys() in shapes for v in values) \
                    else None
            except (ValueError, TypeError):
                records = None
            if records is None or any(r.name != name for (name, _), r in zip(rows, records, strict=True)):
                # not as the entry said (forged, or a sha256 shared by other texts): read as any state is
                records = list(self._journal._records(rows).values())
            self._records = records
        return records


#: The ``state_mark`` of a journal with no records (or none yet).
EMPTY_MARK = (0, 0)


def _mark(db: Any) -> tuple[int, int]:
    count, last = db.execute("SELECT COUNT(*), MAX(seq) FROM state").fetchone()
    return int(count), int(last or 0)


#: The fields a record is written without when they are empty (``ObservedResource``: exclude_if).
_NO_PARAMS = ("params", "reads_outputs")


@functools.cache
def _record_shapes() -> tuple[frozenset[str], ...]:
    """The keys a record's JSON may have as ordo writes it: every field, less those left out when empty."""
    fields = _record_fields()
    return (fields - set(_NO_PARAMS), fields - {"reads_outputs"}, fields)


@functools.cache
def _record_fields() -> frozenset[str]:
    """The keys of a record's JSON as ordo writes it: every field of ``ObservedResource``."""
    return frozenset(ObservedResource.model_fields)


@functools.cache
def _state_fingerprint() -> str | None:
    """What a state's entry depends on besides its texts: the code that validates records, writes
    them out and digests them (taken once a process, of the code it runs), and pydantic's version;
    None, and no entry read or kept, where that code's source files are not there to be read."""
    import pydantic
    import pydantic_core

    import domain.formats
    import domain.project
    from domain.yamlsrc import code_fingerprint

    return code_fingerprint("state", [m.__file__ for m in (domain.formats, domain.project, sys.modules[__name__])],
                            pydantic.VERSION, pydantic_core.__version__)


@functools.cache
def _records_adapter() -> Any:
    """The state table's records, each a JSON text. Built when first used, not at import (a plan builds
    the records' validator anyway, for the inventory file's: this one then costs little)."""
    from pydantic import Json, TypeAdapter

    return TypeAdapter(list[Json[ObservedResource]])


def resume_or_abort(run: int) -> str:
    """What to do with a run left to resume, as messages say it."""
    return f"`ordo resume {run}` carries it on, `ordo abort {run}` closes it"


def _run_info(row: tuple, path: Path | JournalUrl) -> RunInfo:
    where = f"table runs, run {row[0]}"
    if not _columns_fit(row, _RUN_COLUMNS):
        raise JournalError(f"{path}: {where} is damaged: {_misfit(row, _RUN_COLUMNS)}")
    options = _json(row[8], path, f"{where}, its options")
    bad = next((key for key, fits in _OPTIONS.items() if options.get(key) is not None and not fits(options[key])), None)
    if bad is None and options.get("engine") == "temporal" and type(options.get("temporal")) is not str:
        bad = "temporal"
    if bad is not None:   # (a resume takes them as the run's, a stop of a Temporal run its address)
        raise JournalError(f"{path}: {where} is damaged: its options hold {bad} {quoted(options.get(bad), 40)}")
    # the request's name masked again on the way out (a journal written before it was on the way in)
    return RunInfo(id=row[0], created=row[1], updated=row[2], project=row[3], request=scrub(row[4]), status=row[5],
                   pid=row[6], host=row[7], options=options, summary=_json(row[9], path, f"{where}, its summary"),
                   held=None if row[10] is None else bool(row[10]), owner=row[11] if type(row[11]) is str else None)


#: What a run's stored options may hold (ApplyOptions.as_dict, and the engine's), each checked when read.
_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "concurrency": lambda v: type(v) is int and v >= 1,
    "max_replans": lambda v: type(v) is int and v >= 0,
    "on_failure": lambda v: v in ON_FAILURE,
    "default_timeout": lambda v: type(v) in (int, float) and v > 0,   # (inf: an older ordo took --op-timeout inf)
    "simulation": lambda v: isinstance(v, dict),
    "engine": lambda v: type(v) is str,
}


#: A time the journal holds (epoch seconds) is within this of 1970: a datetime can show it (one of 1e300
#: was read, and every command that showed it, and the service's list of runs, failed on it).
MAX_TIME = 1e11


def _time(value: Any) -> bool:
    return type(value) in (int, float) and -MAX_TIME < value < MAX_TIME


def _pid(value: Any) -> bool:
    return value is None or (type(value) is int and 0 < value < 2**31)


def _text(value: Any) -> bool:
    return type(value) is str


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _whole(value: Any) -> bool:
    return type(value) is int


#: What each column of a row of runs (as Journal._columns reads it) and of events holds, by name: a
#: row written by another program (or by hand) is refused in words, not read into a crash later.
_RUN_COLUMNS = (("id", _whole), ("created", _time), ("updated", _time), ("project", _text),
                ("request", _text), ("status", _text), ("pid", _pid), ("host", _text_or_none))
_EVENT_COLUMNS = (("seq", _whole), ("run", _whole), ("at", _time), ("kind", _text), ("op", _text_or_none),
                  ("key", _text_or_none))


def _columns_fit(row: tuple, columns: tuple) -> bool:
    return all(fits(value) for (_, fits), value in zip(columns, row, strict=False))


def _misfit(row: tuple, columns: tuple) -> str:
    name, value = next((name, value) for (name, fits), value in zip(columns, row, strict=False) if not fits(value))
    return f"its {name} is {quoted(value, 40)}, which that column does not hold"


def _json(text: str, path: Path | JournalUrl, where: str) -> dict[str, Any]:
    """A JSON object stored in the journal; a JournalError naming the record when it is damaged."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JournalError(f"{path}: {where} is damaged: nested too deep to read") from None
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{path}: {where} is damaged: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise JournalError(f"{path}: {where} is damaged: expected a JSON object, found {type(value).__name__}")
    return value


#: What reading an event's data back raises when the stored data is damaged.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, DiagnosticsError)


def damaged_event(path: Path | JournalUrl, ev: Event, exc: Exception) -> JournalError:
    """The error for an event whose data cannot be read back (a field missing or of the wrong
    kind, a plan that is not a valid plan): names the journal, the event and what is wrong."""
    what = ev.kind + (f" {ev.op}" if ev.op else "")
    return JournalError(f"{path}: table events, event {ev.seq} ({what} of run {ev.run}) is damaged: "
                        f"{_first_error(exc)}")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"it has no field {exc.args[0]!r}"
    if isinstance(exc, DiagnosticsError):  # a plan that is not a valid plan
        first = exc.diagnostics[0]
        return f"{first.path}: {first.summary}" if first.path else first.summary
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc).splitlines()[0] or type(exc).__name__


__all__ = ["ClaimError", "Event", "Journal", "JournalError", "JournalLost", "JournalUrl", "KeyTaken", "NoJournal",
           "RequestRef", "RunEnded", "RunInfo", "private_file"]
