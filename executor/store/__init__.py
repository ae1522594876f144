"""Where the journal is kept, below the journal's logic (``executor/journal.py``).

The journal's events, projections, runs, claims and their checks are written once, over a
small backend: ``sqlite.py`` (a file, the default) and ``postgres.py`` (a database server
several workers and servers share). A backend gives SQL with ``?`` placeholders its own
form, opens write transactions with its own locking, keeps the schema version its own way,
and tells whether a run's owner is still there. ``schema.py`` holds the versioned schema,
once, with the few column types that differ. The journal is chosen by where it is: a path,
or a ``postgresql://`` URL (:func:`location`).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from executor.store.base import Backend, ClaimError, JournalError, JournalLost, JournalUrl, split_url

URL_SCHEMES = ("postgresql://", "postgres://")
#: Any URL's scheme: a journal given as ``mysql://...`` is refused, not taken for a file path.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: What comes between a URL's ``//`` and its last ``@``: the user and the password (which may
#: hold ``/``, ``?`` or ``@`` of its own), masked in messages.
_USERINFO = re.compile(r"//.*@")


def is_url(where: object) -> bool:
    return isinstance(where, str) and where.startswith(URL_SCHEMES)


def location(where: Path | str | JournalUrl, files: Path | None = None) -> Path | JournalUrl:
    """A journal's place: a file path, or a database URL whose files kept beside the journal
    (simulated worlds, requests of the service) go in ``files`` (default ``.ordo`` here)."""
    if isinstance(where, JournalUrl):
        return where
    if is_url(where):
        _check_url(str(where))
        return JournalUrl(str(where), files if files is not None else Path(".ordo"))
    if isinstance(where, str) and _SCHEME.match(where):
        raise JournalError(f"{_masked(where)}: not a journal: expected a file or a postgresql:// URL")
    if isinstance(where, str) and (where == ":memory:" or where[:5].lower() == "file:"):
        # (SQLite's own names: a database in memory, which a run's records did not outlive, or a URI whose
        # options, mode=memory or nolock=1, were SQLite's to take, and whose file was not the one checked)
        what = "in-memory database" if where == ":memory:" else "URI"
        raise JournalError(f"{where[:80]}: not a journal: SQLite's {what}; expected a file's path or a "
                           "postgresql:// URL")
    text = os.fspath(where)
    if not text.strip():
        raise JournalError("the journal's path is empty: expected a file or a postgresql:// URL")
    if len(os.fsencode(text)) >= 4096 or any(len(os.fsencode(part)) > 255 for part in Path(text).parts):
        raise JournalError(f"{text[:80]}...: the journal's path is longer than the system allows")
    path = Path(where)
    with contextlib.suppress(OSError):
        if not path.exists():
            # (a journal, or its folder, kept on a volume not mounted: read as "no runs yet", and apply made
            # everything anew in a new journal, one the volume hid once mounted again)
            for link in (path, *path.parents):
                if link.is_symlink() and not link.exists():
                    what = "the journal" if link == path else f"its folder {link}"
                    raise JournalError(f"{text}: {what} is a link to {os.readlink(link)}, which does not exist (a "
                                       "volume not mounted?): make it reachable, or remove the link for a new journal")
        for side in ("-wal", "-shm", "-journal"):
            if text.endswith(side) and _sqlite_file(Path(text[:-len(side)])):
                # (SQLite takes such a file for the side file of that database, and deletes it)
                raise JournalError(f"{text}: SQLite's {side[1:]} file of the journal {text[:-len(side)]}, which "
                                   "SQLite may delete: give that journal's path, or another name")
    return path


def _sqlite_file(path: Path) -> bool:
    """Whether ``path`` is a file that starts as SQLite's databases do."""
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\0"
    except OSError:
        return False


#: A user part a URL can hold (``user:password``): no '/', '@' or blank, and '%' only as an escape.
_PLAIN_USERINFO = re.compile(r"(?:[^/@\s%]|%[0-9A-Fa-f]{2})*")


def _check_url(url: str) -> None:
    """JournalError naming the URL (its password masked) when it does not parse: a port that
    is not a number, or out of range, an unclosed ``[`` of an IPv6 address, a user part with a
    '/', '@', blank or stray '%' (a password not percent-encoded: it was taken apart, a piece of it
    looked up as a host name, and the driver's message quoted the rest)."""
    parts = split_url(url)
    userinfo = parts.user + (f":{parts.password}" if parts.password is not None else "")
    # An '@' past the user part ends a password that holds a '/' ('u:p/w@host/db') or a second '@'
    # ('u:p?x@pw@host'), or is a database's own ('host/team@ordo'): no rule tells them apart ('u:2024/pw@host'
    # is host u, port 2024 to libpq, and the password's end is sent as a database's name), so either is
    # escaped (%40). A query item without '=' is a password's end too ('u:2024?Winter/x@host': libpq
    # takes 'u:2024' as host and port, and its message quoted the rest).
    if "@" in f"{parts.hosts}/{parts.database or ''}" or not _PLAIN_USERINFO.fullmatch(userinfo) \
            or any(item and "=" not in item for item in parts.query.split("&")):
        raise JournalError(f"{_masked(url)}: not a journal URL (a '/', '@', blank or '%' that is not escaped "
                           "before its last '@'); percent-encode them in a password (%2F, %40, %20, %25) or a "
                           "database's name (%40), or give the password in PGPASSWORD or ~/.pgpass")
    said = next((problem for host in parts.hosts.split(",") if (problem := _host_problem(host))), None)
    if said is not None:
        raise JournalError(f"{_masked(url)}: not a journal URL ({said}); expected "
                           "postgresql://user@host:port/database")


def _host_problem(host: str) -> str | None:
    """What is wrong with one ``host[:port]`` of a URL's hosts (``[v6]:port`` too), or None."""
    if host.startswith("["):
        name, closed, port = host[1:].partition("]")
        if not closed:
            return "its host opens a [ it does not close"
        if port and not port.startswith(":"):
            return "something follows its host's ] that is not a port"
        port = port[1:]
    else:
        port = host.partition(":")[2]
    if port and not (port.isascii() and port.isdigit()):
        return "its port is not a number"
    if port and int(port) > 65535:
        return "its port is out of the range 0-65535"
    return None


def _masked(url: str) -> str:
    """The URL without what may hold a password: its user part and its query."""
    return re.split(r"[?#]", _USERINFO.sub("//***@", url), maxsplit=1)[0][:200]


def open_backend(where: Path | JournalUrl) -> Backend:
    """The backend of a journal (connected; the schema is the journal's business)."""
    if isinstance(where, JournalUrl):
        from executor.store.postgres import PostgresBackend

        return PostgresBackend(where)
    from executor.store.sqlite import SqliteBackend

    return SqliteBackend(where)


__all__ = ["Backend", "ClaimError", "JournalError", "JournalLost", "JournalUrl", "is_url", "location", "open_backend"]
