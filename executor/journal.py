"""The journal: a durable, append-only record of every run (SQLite).

One database file per working folder (``.ordo/journal.db`` in the project
unless told otherwise), in WAL mode with ``synchronous=FULL``: a committed
event survives the process being killed and the machine losing power.

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
with the run's end, so nothing has to release it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import DiagnosticsError, OrdoError
from domain.formats import ObservedResource
from executor.core.messages import Event
from executor.redact import Redactor

SCHEMA_VERSION = 1

#: Statuses a run can have. "running" with a dead owner means it crashed.
STATUSES = ("running", "complete", "fallout", "interrupted", "aborted", "rolled_back", "failed", "superseded")
#: Statuses from which `ordo resume` may continue ("running": when its owner is gone).
RESUMABLE = ("running", "fallout", "interrupted", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    project TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    options TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL REFERENCES runs(id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    op TEXT,
    key TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run, seq);
CREATE TABLE IF NOT EXISTS state (
    resource TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
"""

#: Added beside the schema of version 1 (an older ordo ignores it: it never starts runs with claims).
_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    run INTEGER NOT NULL REFERENCES runs(id),
    resource TEXT NOT NULL,
    PRIMARY KEY (resource, run)
);
"""


#: SQLite's primary result codes for a file that cannot be read or written as it is (not a damaged one).
_CANNOT = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
           sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM}


class JournalError(OrdoError):
    """The journal cannot be opened or is used wrongly (names the file)."""


class ClaimError(JournalError):
    """A run cannot start: another run that can still go on holds resources it needs."""


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

    @property
    def owner_alive(self) -> bool:
        """Whether the process that runs it still lives (on this host)."""
        if self.pid is None or self.host != _host():
            return False
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_zombie(self.pid)

    @property
    def effective_status(self) -> str:
        """"crashed" for a run left "running" by a process that is gone."""
        if self.status == "running" and not self.owner_alive:
            return "crashed"
        return self.status


def _host() -> str:
    return os.uname().nodename


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def default_path(project_root: Path) -> Path:
    return project_root / ".ordo" / "journal.db"


def private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by its owner only: folder 0700, file 0600.
    An existing file readable by others is narrowed; SQLite gives its -wal and -shm files the
    database's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each.stat().st_mode & 0o077:
                each.chmod(0o600)
        except FileNotFoundError:
            pass


_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


def _writers(path: Path) -> threading.Lock:
    """One lock per journal file in this process. Its writers (the service drives each run on a
    Journal of its own) queue on it, blocked, rather than in SQLite's busy handler, which polls:
    with 200 runs writing at once, some polled past its timeout, and their runs stopped
    ("database is locked"). The busy timeout is left for other processes."""
    key = str(path.resolve())
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, threading.Lock())


class Journal:
    """One journal database. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path | str, *, create: bool = True, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise JournalError(f"{self.path}: no journal here (nothing was applied with this working folder)")
        self.redactor = redactor or Redactor()
        try:
            private_file(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"{self.path}: cannot open the journal: {exc}") from None
        self._lock = threading.Lock()
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _CANNOT:  # the file, not what it holds
                raise JournalError(f"{self.path}: cannot open the journal: {_sqlite_text(exc, self.path)}") from None
            raise JournalError(f"{self.path}: not an ordo journal ({exc})") from None
        except BaseException:  # a journal of another schema: do not leave the connection open
            self._db.close()
            raise

    def _setup(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            newer = "a newer ordo: upgrade ordo to use it" if version > SCHEMA_VERSION else "an unknown program"
            raise JournalError(f"{self.path}: journal schema version {version} was written by {newer} "
                               f"(this ordo reads version {SCHEMA_VERSION})")
        if version == 0:
            db.executescript(_SCHEMA)  # idempotent: another process may be creating it too
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", (uuid.uuid4().hex,))
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='claims'").fetchone() is None:
            db.executescript(_CLAIMS)
        self.id = db.execute("SELECT value FROM meta WHERE key='id'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
        """A new run owned by this process. JournalError if another live
        process holds a run in this journal (one writer per working folder),
        or if an earlier run can still be resumed (crashed, interrupted, failed,
        fallen out): its plan would go stale. With ``supersede`` those runs end
        as "superseded" instead, in the same transaction, and can never be resumed.
        With ``claims`` (resource names), the run holds those alone: ClaimError if a run
        that can still go on holds one of them or the whole journal, else it starts
        beside the others."""
        if claims is not None:
            return self._start_claiming(project, request, options, sorted(set(claims)))
        with self._exclusive("wait for it, or `ordo abort {run}`", others_only=False) as db:
            waiting = self._startable_locked(supersede)
            run = self._insert_run(project, request, options)
            now = time.time()
            for old in waiting:
                summary = {**old.summary, "status": "superseded", "superseded_by": run,
                           "reason": f"superseded by run {run} while {old.effective_status}"}
                db.execute("INSERT INTO events (run, at, kind, data) VALUES (?, ?, 'run-ended', ?)",
                           (old.id, now, json.dumps(summary, sort_keys=True)))
                db.execute("UPDATE runs SET status='superseded', summary=?, updated=? WHERE id=?",
                           (json.dumps(summary, sort_keys=True), now, old.id))
        return run

    def _insert_run(self, project: str, request: str, options: dict[str, Any]) -> int:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO runs (created, updated, project, request, status, pid, host, options) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
            (now, now, project, request, os.getpid(), _host(), json.dumps(options, sort_keys=True)))
        return int(cur.lastrowid)

    def _start_claiming(self, project: str, request: str, options: dict[str, Any], claims: list[str]) -> int:
        if not claims:
            raise JournalError(f"{self.path}: a run started with claims must claim at least one resource")
        with self._write() as db:
            self._check_claims_locked(claims)
            run = self._insert_run(project, request, options)
            db.executemany("INSERT INTO claims (run, resource) VALUES (?, ?)", [(run, name) for name in claims])
        return run

    def check_claims(self, claims: Iterable[str]) -> None:
        """ClaimError now if a run started with these claims would be refused (before planning)."""
        with self._lock:
            self._check_claims_locked(sorted(set(claims)))

    def claims(self, run_id: int) -> list[str]:
        """The resources a run holds while it can go on; [] for a run that holds the whole journal."""
        with self._lock:
            return [r for (r,) in self._db.execute(
                "SELECT resource FROM claims WHERE run=? ORDER BY resource", (run_id,)).fetchall()]

    def _check_claims_locked(self, claims: list[str]) -> None:
        marks = ", ".join("?" * len(RESUMABLE))
        rows = self._db.execute(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id", RESUMABLE).fetchall()
        wanted = set(claims)
        held = []
        for run in (_run_info(row, self.path) for row in rows):
            names = {r for (r,) in self._db.execute("SELECT resource FROM claims WHERE run=?", (run.id,))}
            if not names:
                held.append(f"run {run.id} ({run.effective_status}) holds the whole journal")
            elif names & wanted:
                shown = sorted(names & wanted)
                more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
                held.append(f"run {run.id} ({run.effective_status}) holds {', '.join(shown[:5])}{more}")
        if held:
            raise ClaimError(f"{self.path}: {'; '.join(held)}: wait for it to end, resume or abort it")

    def claim(self, run_id: int) -> RunInfo:
        """Take over a run to resume it: JournalError if a live process has it."""
        with self._exclusive("wait for it, or `ordo abort {run}`", run=run_id) as db:
            run = self._run_locked(run_id)
            db.execute("UPDATE runs SET pid=?, host=?, status='running', updated=? WHERE id=?",
                       (os.getpid(), _host(), time.time(), run_id))
        return run

    def _live_run_locked(self) -> RunInfo | None:
        rows = self._db.execute("SELECT * FROM runs WHERE status='running' ORDER BY id").fetchall()
        for row in rows:
            run = _run_info(row, self.path)
            if run.owner_alive:
                return run
        return None

    def check_startable(self, supersede: bool = False) -> None:
        """JournalError now if `start_run` would refuse for a resumable run (before planning)."""
        with self._lock:
            self._startable_locked(supersede)

    def resumable(self) -> list[RunInfo]:
        """The runs `ordo resume` could carry on (crashed, interrupted, failed, fallen out)."""
        with self._lock:
            return self._resumable_locked()

    def _resumable_locked(self) -> list[RunInfo]:
        marks = ", ".join("?" * len(RESUMABLE))
        rows = self._db.execute(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id", RESUMABLE).fetchall()
        return [run for run in (_run_info(row, self.path) for row in rows) if run.effective_status != "running"]

    def _startable_locked(self, supersede: bool) -> list[RunInfo]:
        """The runs that could still be resumed; JournalError if there are any, unless they are
        to be superseded."""
        waiting = self._resumable_locked()
        if waiting and not supersede:
            runs = "; ".join(f"run {r.id} is {r.effective_status}" for r in waiting)
            first = waiting[0].id
            raise JournalError(
                f"{self.path}: {runs}, and can be resumed: `ordo resume {first}` carries it on, "
                f"`ordo abort {first}` closes it, or `ordo apply --supersede` starts anew (a superseded run "
                "can never be resumed)")
        return waiting

    @contextlib.contextmanager
    def _write(self, run: int | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the lock: committed, or rolled back on any error.
        A COMMIT that failed may have ended the transaction already (a full disk): then there
        is nothing to roll back, and the error that matters is the first one. SQLite's errors
        become a JournalError naming the journal (and, for ``run``, how to carry it on)."""
        with self._lock, _writers(self.path):
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                what = _sqlite_text(exc, self.path)
                then = (f"; run {run} stopped at its last recorded event: once that is fixed, `ordo resume {run}`"
                        if run is not None else "")
                raise JournalError(f"{self.path}: cannot write to the journal: {what}{then}") from exc

    @contextlib.contextmanager
    def _exclusive(self, then: str, *, run: int | None = None,
                   others_only: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction refused while a run of another live process (or, unless
        ``others_only``, of this one) is in progress: one writer per working folder.
        ``then`` says what to do about it ({run} is the run in progress)."""
        with self._write(run) as db:
            busy = self._live_run_locked()
            if busy is not None and not (others_only and busy.pid == os.getpid()):
                raise JournalError(f"{self.path}: run {busy.id} is in progress (pid {busy.pid}); "
                                   + then.format(run=busy.id))
            yield db

    def run(self, run_id: int) -> RunInfo:
        with self._lock:
            return self._run_locked(run_id)

    def _run_locked(self, run_id: int) -> RunInfo:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            last = self._db.execute("SELECT max(id) FROM runs").fetchone()[0]
            hint = f"runs are numbered 1 to {last}" if last else "no run was recorded yet"
            raise JournalError(f"{self.path}: no run {run_id} ({hint}; see `ordo history`)")
        return _run_info(row, self.path)

    def runs(self, status: str | None = None) -> list[RunInfo]:
        with self._lock:
            if status:
                rows = self._db.execute("SELECT * FROM runs WHERE status=? ORDER BY id", (status,)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_info(r, self.path) for r in rows]

    def last_run(self) -> int | None:
        with self._lock:
            return self._db.execute("SELECT max(id) FROM runs").fetchone()[0]

    # --- events ----------------------------------------------------------

    def append(self, run: int, events: Iterable[Event], *,
               state: dict[str, ObservedResource | None] | None = None,
               status: str | None = None, summary: dict[str, Any] | None = None) -> list[Event]:
        """Append events and update the projections, in one transaction.

        ``state`` maps resource names to their new record (None forgets one).
        Returns the events with their sequence numbers and times.
        """
        now = time.time()
        stored = []
        with self._write(run) as db:
            last = 0
            for ev in events:
                data = self.redactor.event(ev.data)
                cur = db.execute(
                    "INSERT INTO events (run, at, kind, op, key, data) VALUES (?, ?, ?, ?, ?, ?)",
                    (run, now, ev.kind, ev.op, ev.key, json.dumps(data, sort_keys=True, default=str)))
                last = int(cur.lastrowid)
                stored.append(Event(kind=ev.kind, op=ev.op, key=ev.key, data=data, seq=last, run=run, at=now))
            for name, record in (state or {}).items():
                if record is None:
                    db.execute("DELETE FROM state WHERE resource=?", (name,))
                else:
                    db.execute("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                               (name, self.redactor.record(record).model_dump_json(), run, last))
            if status is not None or summary is not None:
                db.execute("UPDATE runs SET status=coalesce(?, status), summary=coalesce(?, summary), "
                           "updated=? WHERE id=?",
                           (status, json.dumps(self.redactor.tree(summary), sort_keys=True)
                            if summary is not None else None,
                            now, run))
        return stored

    def events(self, run: int, since: int = 0, limit: int = -1) -> list[Event]:
        """The run's events after ``since``, in order (at most ``limit``; -1: all)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND seq>? ORDER BY seq LIMIT ?",
                (run, since, limit)).fetchall()
        return [Event(seq=r[0], run=r[1], at=r[2], kind=r[3], op=r[4], key=r[5],
                      data=_json(r[6], self.path, f"table events, event {r[0]} ({r[3]} of run {r[1]})"))
                for r in rows]

    def has_event(self, run: int, kind: str, since: int = 0) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM events WHERE run=? AND kind=? AND seq>? LIMIT 1",
                                    (run, kind, since)).fetchone() is not None

    # --- state -----------------------------------------------------------

    def state(self) -> dict[str, ObservedResource]:
        """What the journal knows of each resource now."""
        with self._lock:
            rows = self._db.execute("SELECT resource, record FROM state ORDER BY resource").fetchall()
        out = {}
        for name, record in rows:
            try:
                out[name] = ObservedResource.model_validate_json(record)
            except ValueError as exc:  # pydantic's ValidationError: bad JSON or a bad field
                raise JournalError(
                    f"{self.path}: table state, the record of '{name}' is damaged ({_first_error(exc)}); "
                    f"`ordo state rm {name}` forgets it (the inventory file speaks for it again)") from None
        return out

    def forget(self, names: list[str]) -> list[str]:
        """Drop the state records of these resources (an operator's correction:
        the inventory file speaks for them again). Refused while a run is in
        progress. Returns the names that had a record."""
        with self._exclusive("its records cannot be changed now", others_only=False) as db:
            return [n for n in names if db.execute("DELETE FROM state WHERE resource=?", (n,)).rowcount]

    def state_runs(self) -> dict[str, int]:
        """For each recorded resource, the run that last wrote it."""
        with self._lock:
            return dict(self._db.execute("SELECT resource, run FROM state").fetchall())


def _run_info(row: tuple, path: Path) -> RunInfo:
    where = f"table runs, run {row[0]}"
    return RunInfo(id=row[0], created=row[1], updated=row[2], project=row[3], request=row[4], status=row[5],
                   pid=row[6], host=row[7], options=_json(row[8], path, f"{where}, its options"),
                   summary=_json(row[9], path, f"{where}, its summary"))


def _json(text: str, path: Path, where: str) -> dict[str, Any]:
    """A JSON object stored in the journal; a JournalError naming the record when it is damaged."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"{path}: {where} is damaged: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise JournalError(f"{path}: {where} is damaged: expected a JSON object, found {type(value).__name__}")
    return value


#: What reading an event's data back raises when the stored data is damaged.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, DiagnosticsError)


def damaged_event(path: Path, ev: Event, exc: Exception) -> JournalError:
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


def _sqlite_text(exc: sqlite3.Error, path: Path) -> str:
    """SQLite's message; a full disk said in words (SQLite may call it an I/O error: the WAL
    index or a new journal file could not be made)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _no_room(path)):
        return f"the disk is full ({exc})"
    return str(exc)


def _no_room(path: Path) -> bool:
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 1 << 16
