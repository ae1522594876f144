"""The journal: a durable, append-only record of every run (SQLite).

One database file per working folder (``.ordo/journal.db`` in the project
unless told otherwise), in WAL mode with ``synchronous=FULL``: a committed
event survives the process being killed and the machine losing power.

Three tables. ``events`` is the truth and is only ever appended to: per run,
the plan, each intent to dispatch with its idempotency key (committed before
the controller is called), results with outputs, failures, observations,
re-plans and the end state. ``runs`` and ``state`` are projections of the
events, written in the same transaction: the status of each run, and what the
journal knows of each resource now (the observed inventory the next plan
starts from). Writers batch: one transaction holds every event of one
scheduling round (group commit), which is what makes thousands of
operations a second possible with an fsync per commit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import OrdoError
from domain.formats import ObservedResource
from executor.redact import Redactor

SCHEMA_VERSION = 1

#: Statuses a run can have. "running" with a dead owner means it crashed.
STATUSES = ("running", "complete", "fallout", "interrupted", "aborted", "rolled_back", "failed")
#: Statuses from which `ordo resume` may continue.
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


class JournalError(OrdoError):
    """The journal cannot be opened or is used wrongly (names the file)."""


@dataclass(frozen=True)
class Event:
    """One journal entry. ``data`` is JSON-compatible."""

    kind: str
    op: str | None = None
    key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    run: int = 0
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "run": self.run, "at": round(self.at, 6), "kind": self.kind}
        if self.op is not None:
            out["op"] = self.op
        if self.key is not None:
            out["key"] = self.key
        out.update(self.data)
        return out


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
            raise JournalError(f"{self.path}: journal schema {version}, this ordo reads {SCHEMA_VERSION}")
        if version == 0:
            db.executescript(_SCHEMA)  # idempotent: another process may be creating it too
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", (uuid.uuid4().hex,))
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
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

    def start_run(self, project: str, request: str, options: dict[str, Any]) -> int:
        """A new run owned by this process. JournalError if another live
        process holds a run in this journal (one writer per working folder)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                busy = self._live_run_locked()
                if busy is not None:
                    raise JournalError(f"{self.path}: run {busy.id} is in progress (pid {busy.pid}); "
                                       f"wait for it, or `ordo abort {busy.id}`")
                now = time.time()
                cur = self._db.execute(
                    "INSERT INTO runs (created, updated, project, request, status, pid, host, options) "
                    "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                    (now, now, project, request, os.getpid(), _host(), json.dumps(options, sort_keys=True)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return int(cur.lastrowid)

    def claim(self, run_id: int) -> RunInfo:
        """Take over a run to resume it: JournalError if a live process has it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                run = self._run_locked(run_id)
                busy = self._live_run_locked()
                if busy is not None and busy.pid != os.getpid():
                    raise JournalError(f"run {busy.id} is in progress (pid {busy.pid}); "
                                       f"wait for it, or `ordo abort {busy.id}`")
                self._db.execute("UPDATE runs SET pid=?, host=?, status='running', updated=? WHERE id=?",
                                 (os.getpid(), _host(), time.time(), run_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return run

    def _live_run_locked(self) -> RunInfo | None:
        rows = self._db.execute("SELECT * FROM runs WHERE status='running' ORDER BY id").fetchall()
        for row in rows:
            run = _run_info(row)
            if run.owner_alive:
                return run
        return None

    def run(self, run_id: int) -> RunInfo:
        with self._lock:
            return self._run_locked(run_id)

    def _run_locked(self, run_id: int) -> RunInfo:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            last = self._db.execute("SELECT max(id) FROM runs").fetchone()[0]
            hint = f"runs are numbered 1 to {last}" if last else "no run was recorded yet"
            raise JournalError(f"{self.path}: no run {run_id} ({hint}; see `ordo history`)")
        return _run_info(row)

    def runs(self, status: str | None = None) -> list[RunInfo]:
        with self._lock:
            if status:
                rows = self._db.execute("SELECT * FROM runs WHERE status=? ORDER BY id", (status,)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_info(r) for r in rows]

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
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
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
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return stored

    def events(self, run: int, since: int = 0, limit: int = -1) -> list[Event]:
        """The run's events after ``since``, in order (at most ``limit``; -1: all)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, run, at, kind, op, key, data FROM events WHERE run=? AND seq>? ORDER BY seq LIMIT ?",
                (run, since, limit)).fetchall()
        return [Event(seq=r[0], run=r[1], at=r[2], kind=r[3], op=r[4], key=r[5], data=json.loads(r[6]))
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
        return {name: ObservedResource.model_validate_json(record) for name, record in rows}

    def forget(self, names: list[str]) -> list[str]:
        """Drop the state records of these resources (an operator's correction:
        the inventory file speaks for them again). Refused while a run is in
        progress. Returns the names that had a record."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                busy = self._live_run_locked()
                if busy is not None:
                    raise JournalError(f"{self.path}: run {busy.id} is in progress (pid {busy.pid}); "
                                       "its records cannot be changed now")
                gone = [n for n in names
                        if self._db.execute("DELETE FROM state WHERE resource=?", (n,)).rowcount]
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return gone

    def state_runs(self) -> dict[str, int]:
        """For each recorded resource, the run that last wrote it."""
        with self._lock:
            return dict(self._db.execute("SELECT resource, run FROM state").fetchall())


def _run_info(row: tuple) -> RunInfo:
    return RunInfo(id=row[0], created=row[1], updated=row[2], project=row[3], request=row[4], status=row[5],
                   pid=row[6], host=row[7], options=json.loads(row[8]), summary=json.loads(row[9]))
