"""The journal in an SQLite file (the default: ``.ordo/journal.db``).

WAL mode with ``synchronous=FULL``: a committed event survives the process being killed and
the machine losing power. Every write transaction is ``BEGIN IMMEDIATE``: one writer at a
time, across processes, so checking claims and starting a run cannot interleave with
another. The schema version is SQLite's ``user_version``. A run's owner is judged by its pid
on this host (a journal file is used from one machine).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from executor.store.base import Backend, JournalError

#: SQLite's primary result codes for a file that cannot be read or written as it is (not a damaged one).
_CANNOT = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
           sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM}


def private_file(path: Path, *, narrow: bool = True) -> None:
    """Create ``path`` (and its folder) readable by its owner only: folder 0700, file 0600.
    An existing file readable by others is narrowed (unless not ``narrow``: a journal's file is
    narrowed once it is known to be one, not a file given by mistake); SQLite gives its -wal and
    -shm files the database's permissions.

    An existing file is never opened here. Its locks (POSIX's, which SQLite takes) belong to the
    process, and closing any descriptor of the file drops them all, those of this process's SQLite
    connections too: another process closing its last connection then took itself for the last
    user and deleted the -wal file under a server still writing to it (events it had reported,
    lost)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):   # (a file where a folder of the path is: "[Errno 17] File
        # exists: 'ordo.yaml'")
        above = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
        raise NotAFileError(f"{above or path.parent} is not a folder") from None
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = each.stat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):   # a device, a pipe, a folder: not narrowed (/dev/null made 0600 for all)
            raise NotAFileError(f"{each} is not a file")
        if mode & 0o077 and narrow:
            each.chmod(stat.S_IMODE(mode) & 0o700)   # (a file made read-only stays so: 0444 becomes 0400)


class NotAFileError(OSError):
    """What ``private_file`` was given, or found beside it, is not a regular file."""


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


class SqliteBackend(Backend):
    errors = (sqlite3.Error,)
    #: Seconds a statement waits for another process's lock (SQLite's busy timeout).
    timeout = 10.0
    types = {"id": "INTEGER PRIMARY KEY", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "int": "INTEGER",
             "real": "REAL", "add_column": "ADD COLUMN"}   # (under the journal's write lock: once)

    def __init__(self, path: Path) -> None:
        self.where = path
        try:
            private_file(path, narrow=False)
            # (a URI of the file itself: SQLite reads a name starting 'file:' as a URI of its own, with options)
            self._db = sqlite3.connect(Path(path).absolute().as_uri(), uri=True, check_same_thread=False,
                                       isolation_level=None, timeout=self.timeout)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc}") from None

    def foreign_tables(self) -> list[str] | None:
        def tables() -> list[str]:
            return [name for (name,) in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]

        first = self.version()
        found = tables()
        # another ordo may make it a journal between the reads (its tables and version are written in
        # one transaction): the version read again tells
        if first == 0 and self.version() == 0:
            return found
        # a version of its own without ordo's tables: another program's file (applications set
        # user_version too), which was switched to WAL and narrowed before anything refused it
        found = tables()
        return [] if {"meta", "runs"} <= set(found) else found or ["none of ordo's"]

    def prepare(self) -> None:
        # Switching a new file to WAL takes it whole, and SQLite answers "database is locked" at once,
        # without its busy handler, while another process does (two ordo making one journal at the
        # same moment: one was refused). Asked again until the connection's timeout has passed.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        try:
            private_file(self.where)   # a journal, or an empty file about to be one: now narrowed
        except OSError as exc:
            raise JournalError(f"{self.where}: cannot open the journal: {exc}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def writers(self) -> threading.Lock:
        return _writers(self.where)

    def begin(self, lock: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")  # one writer at a time: every lock is the whole file's

    def begin_snapshot(self) -> None:
        self._db.execute("BEGIN")   # deferred: in WAL mode its first read fixes what the others see

    def lock(self, key: int) -> None:
        """Nothing more to take: a write transaction holds the whole file."""

    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version={int(version)}")

    def describe(self, exc: BaseException) -> str:
        """SQLite's message; a full disk said in words (SQLite may call it an I/O error: the WAL
        index or a new journal file could not be made)."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _no_room(self.where)):
            return f"the disk is full ({exc})"
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR) \
                and self.where.parent.is_dir() and not os.access(self.where.parent, os.W_OK):
            # (even a reader makes the write-ahead log's files beside the journal)
            return f"its folder {self.where.parent} is not writable, and SQLite keeps files beside the journal ({exc})"
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
            stuck = [side for side in (self.where, *(Path(f"{self.where}{s}") for s in ("-wal", "-shm")))
                     if side.is_file() and not os.access(side, os.W_OK)]
            if stuck:   # (a read of a read-only journal leaves its -shm so: the journal made writable again
                # was still refused, with nothing naming the file)
                return f"{', '.join(map(str, stuck))} {'is' if len(stuck) == 1 else 'are'} not writable ({exc})"
        if code == sqlite3.SQLITE_IOERR and (full := _at_size_limit(self.where)):
            return f"{full} reached this process's file size limit (ulimit -f) ({exc})"
        return str(exc)

    def unusable(self, exc: BaseException) -> bool:
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _CANNOT

    def close(self) -> None:
        self._db.close()


def _at_size_limit(path: Path) -> Path | None:
    """The journal's file (or its write-ahead log) that this process's file size limit (RLIMIT_FSIZE)
    stopped, within a few pages: SQLite says "disk I/O error" of a write refused so (EFBIG)."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    for side in (path, Path(f"{path}-wal")):
        with contextlib.suppress(OSError):
            if side.stat().st_size > limit - (1 << 16):
                return side
    return None


def _no_room(path: Path) -> bool:
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 1 << 16
