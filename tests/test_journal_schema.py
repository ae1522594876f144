"""The journal's schema versions: a journal of an older version is brought up to date in place,
one of a newer version is refused; and how a journal on PostgreSQL is opened."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from domain.formats import ObservedResource
from executor.journal import SCHEMA_VERSION, Event, Journal, JournalError
from tests.stores import free_port

#: The schema of version 1 as ordo wrote it (executor/journal.py before versioned migrations).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, project TEXT NOT NULL,
    request TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER, host TEXT, options TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL REFERENCES runs(id), at REAL NOT NULL,
    kind TEXT NOT NULL, op TEXT, key TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run, seq);
CREATE TABLE IF NOT EXISTS state (resource TEXT PRIMARY KEY, record TEXT NOT NULL, run INTEGER NOT NULL,
                                  seq INTEGER NOT NULL);
"""
V1_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (run INTEGER NOT NULL REFERENCES runs(id), resource TEXT NOT NULL,
                                   PRIMARY KEY (resource, run));
"""


def version_1_journal(path: Path, *, claims: bool) -> None:
    """A journal as the code of version 1 left it: one complete run, its events, a state record."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA + (V1_CLAIMS if claims else ""))
    db.execute("INSERT INTO meta VALUES ('id', 'old-journal-id')")
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO runs VALUES (1, 1.0, 2.0, '/p', 'r.yaml', 'complete', 1, 'h', "
               "'{\"so\": {\"request_id\": \"so-1\"}}', '{\"status\": \"complete\"}')")
    db.execute("INSERT INTO events (run, at, kind, op, key, data) VALUES (1, 1.5, 'result', 'net/create', 'k', "
               "'{\"outputs\": {\"id\": \"n-1\"}}')")
    record = ObservedResource(name="net", type="network", state="active").model_dump_json()
    db.execute("INSERT INTO state VALUES ('net', ?, 1, 1)", (record,))
    db.close()


@pytest.mark.parametrize("claims", [False, True], ids=["without-claims", "with-claims"])
def test_a_version_1_journal_is_migrated_in_place(tmp_path: Path, claims: bool) -> None:
    path = tmp_path / "journal.db"
    version_1_journal(path, claims=claims)
    with Journal(path) as jr:
        assert jr.id == "old-journal-id"
        assert jr.run(1).status == "complete" and jr.run(1).summary == {"status": "complete"}
        assert [(ev.seq, ev.kind, ev.data) for ev in jr.events(1)] == [(1, "result", {"outputs": {"id": "n-1"}})]
        assert jr.state()["net"].state == "active"
        found = jr.request("so-1")  # the SO request of a run before version 4, indexed (version 4)
        assert found is not None and found[0].run == 1 and found[0].at == 1.0 and found[0].original is None
        run = jr.start_run("/p", "s.yaml", {}, claims=["net"])   # the claims of version 2
        assert run == 2 and jr.claims(run) == ["net"]
        assert jr.append(run, [Event("plan")])[0].seq == 2
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"events_run", "claims_run", "runs_status", "request_ids_run"} <= indexes
    finally:
        db.close()


def test_a_newer_journal_on_postgresql_is_refused(postgres_url: str) -> None:
    Journal(postgres_url).close()
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("INSERT INTO ordo_schema (version) VALUES (99)")
    shown = postgres_url  # no password in it
    with pytest.raises(JournalError, match=f"{shown}: journal schema version 99 was written by a newer ordo: "
                                           f"upgrade ordo to use it \\(this ordo reads version {SCHEMA_VERSION}\\)"):
        Journal(postgres_url)


def test_a_postgresql_journal_is_created_once_by_many_at_once(postgres_url: str) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(6)

    def open_it() -> None:
        barrier.wait()
        with Journal(postgres_url) as jr:
            ids.append(jr.id)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(ids) == 6 and len(set(ids)) == 1
    import psycopg

    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM ordo_schema ORDER BY version").fetchall() == [(5,)]


def test_opening_a_postgresql_journal_that_is_not_there(postgres_url: str) -> None:
    with pytest.raises(JournalError, match=f"{postgres_url}: no journal here"):
        Journal(postgres_url, create=False)   # an empty database: reading creates nothing
    from executor.store import location

    assert not location(postgres_url).exists()
    Journal(postgres_url).close()
    assert location(postgres_url).exists()
    # a server that is not there, a password in the URL: named without it
    port = free_port()
    with pytest.raises(JournalError) as caught:
        Journal(f"postgresql://postgres:s3cret@127.0.0.1:{port}/x?sslmode=disable&password=s3cret")
    assert str(caught.value).startswith(f"postgresql://postgres@127.0.0.1:{port}/x: cannot open the journal: ")
    assert "s3cret" not in str(caught.value)


def test_a_migration_never_sets_a_newer_journal_back(tmp_path: Path) -> None:
    """The version is read again under the write lock: a newer ordo may have migrated the journal
    while this one waited for it."""
    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        other = sqlite3.connect(path)
        other.execute("PRAGMA user_version=6")
        other.close()
        with pytest.raises(JournalError, match="schema version 6 was written by a newer ordo"):
            jr._migrate()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6
    finally:
        db.close()
