"""What the journal's logic asks of a backend, the errors it raises, and a journal's URL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from domain.errors import OrdoError


class JournalError(OrdoError):
    """The journal cannot be opened or is used wrongly (names the file or the database)."""


class JournalLost(JournalError):
    """The journal's database went away under a command (a PostgreSQL restart or a network drop closed
    the connection): opened anew, it may answer; what it holds is not in question. ``run``: the run
    whose events were being written (the message says how to carry it on)."""

    def __init__(self, message: str, *, run: int | None = None) -> None:
        super().__init__(message)
        self.run = run


class ClaimError(JournalError):
    """A run cannot start: another run that can still go on holds resources it needs. ``held``: each
    claim of those asked for that another run holds, with that run (empty when a run holds the whole
    journal)."""

    def __init__(self, message: str, held: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.held = dict(held or {})


@dataclass(frozen=True)
class JournalUrl:
    """A journal on a database server, taken where a journal file is taken: shown as its URL
    without the password, with ``parent`` the folder of the files kept beside a journal (the
    project's ``.ordo/``: simulated worlds, the service's requests)."""

    url: str
    parent: Path

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host)
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))  # no password, no query (it may hold one)

    def resolve(self) -> JournalUrl:
        return self

    def relative_to(self, *other: object) -> Path:
        raise ValueError(f"{self} is not a path")

    def exists(self) -> bool:
        """Whether the database holds an ordo journal, or tables of its names that are another program's
        (opening it then says so); False when nothing was written to it yet."""
        from executor.store.postgres import journal_exists

        return journal_exists(self)


class Backend:
    """One connection to a journal. SQL is written with ``?`` placeholders; the caller holds
    its own lock around every use (one connection, many threads)."""

    where: Path | JournalUrl
    #: The errors of the database driver (the journal reports them naming itself).
    errors: tuple[type[BaseException], ...] = ()
    #: Column types of the schema that differ between databases (schema.py).
    types: dict[str, str] = {}
    #: SQL over ``runs``: whether the run's owner holds it now; NULL where the pid on this host says.
    held: str = "NULL"

    def prepare(self) -> None:
        """Settings of the connection, before the schema is read (its errors say what the file is)."""

    def foreign_tables(self) -> list[str] | None:
        """Before ``prepare`` (which may change the store: SQLite's WAL mode stays in the file):
        for a store with no ordo schema yet, the tables it holds, another program's; [] for an
        empty one; None where that is not asked (a PostgreSQL database may be shared)."""
        return None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def begin(self, lock: int) -> None:
        """Start a write transaction that holds ``lock``: 0 the whole journal (starting, claiming,
        checking claims, forgetting state, migrating), else one run (appending to it)."""
        raise NotImplementedError

    def begin_snapshot(self) -> None:
        """Start a read-only transaction whose statements all see one snapshot of the database."""
        self.execute("BEGIN")

    def lock(self, key: int) -> None:
        """Inside a write transaction, also hold ``key`` until it ends (taken before any row is
        written: transactions that hold the same key commit in the order they took it)."""
        raise NotImplementedError

    def writers(self) -> contextlib.AbstractContextManager:
        """Held around each write transaction: where the database's own wait for the write lock
        does not suit many writers in one process, they queue here instead."""
        return contextlib.nullcontext()

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def in_transaction(self) -> bool:
        raise NotImplementedError

    def version(self) -> int:
        """The schema version (0: none yet)."""
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    def hold(self, run: int) -> bool:
        """Mark this connection as the owner of ``run`` while it lasts; False when another holds it."""
        return True

    def release(self, run: int) -> None:
        """This connection no longer carries ``run`` on."""

    def describe(self, exc: BaseException) -> str:
        """The driver's error in words."""
        return str(exc).strip() or type(exc).__name__

    def lost(self, exc: BaseException) -> bool:
        """Whether an error of a statement says the connection is gone (not what the journal holds)."""
        return False

    def unusable(self, exc: BaseException) -> bool:
        """Whether an error while opening is about reaching the journal (not about what it holds)."""
        return True

    def close(self) -> None:
        raise NotImplementedError
