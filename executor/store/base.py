"""What the journal's logic asks of a backend, the errors it raises, and a journal's URL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

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


class UrlParts(NamedTuple):
    """A ``postgresql://`` URL's parts, as written (percent-escapes kept): ``password`` None without a
    ':' in the user part; ``database`` None without a '/' after the hosts."""

    scheme: str
    user: str
    password: str | None
    hosts: str
    database: str | None
    query: str

    @property
    def passwords(self) -> list[str]:
        """Its password, in its user part or its query (``password=``, the key maybe escaped), as
        written and unescaped."""
        written = [self.password or "", *(value for key, _, value in (item.partition("=")
                                                                      for item in self.query.split("&"))
                                          if _unescaped(key) == "password")]
        return sorted({v for raw in written for v in (raw, _unescaped(raw)) if v})


def split_url(url: str) -> UrlParts:
    """A URL taken apart as libpq takes it, not as urllib does: the user part runs to the first '@'
    that comes before any '/' ('#' and '?' are a password's own characters there), the hosts to the
    next '/' or '?', the database's name to the '?' ('#' is its own character too). urllib cut
    ``u:2024#Winter@host`` at the '#', and a message showed ``u:2024``, the password's start, as a
    host and port."""
    scheme, _, rest = url.partition("://")
    user, password = "", None
    end = next((i for i, c in enumerate(rest) if c in "@/"), len(rest))
    if end < len(rest) and rest[end] == "@":
        user, colon, written = rest[:end].partition(":")
        password = written if colon else None
        rest = rest[end + 1:]
    where, _, query = rest.partition("?")
    hosts, slash, database = where.partition("/")
    return UrlParts(scheme, user, password, hosts, database if slash else None, query)


def _unescaped(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


@dataclass(frozen=True)
class JournalUrl:
    """A journal on a database server, taken where a journal file is taken: shown as its URL
    without the password, with ``parent`` the folder of the files kept beside a journal (the
    project's ``.ordo/``: simulated worlds, the service's requests)."""

    url: str
    parent: Path

    def __str__(self) -> str:
        parts = split_url(self.url)   # no password, no query (it may hold one)
        return (f"{parts.scheme}://{parts.user + '@' if parts.user else ''}{parts.hosts}"
                f"{'/' + parts.database if parts.database is not None else ''}")

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
    #: What follows a text column in ORDER BY for the order of Python's strings (code points), whatever
    #: the database's collation: a state listed in another order than SQLite's, and its cache never used.
    by_code_point: str = ""

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
