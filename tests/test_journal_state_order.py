"""Resource records commit in the order of their sequence numbers, on SQLite and on PostgreSQL.

``Journal.state_since(seq)`` (how a Temporal worker keeps its copy of the state current) reads the
records written after the last one it saw. That is only sound if a record with a smaller sequence
number can never commit after a reader has seen a larger one. On PostgreSQL, appends to different
runs go side by side, so two runs' results could commit out of order; the transactions that write
records therefore also take one shared lock before they take their sequence numbers."""

from __future__ import annotations

import threading
from pathlib import Path

from domain.formats import ObservedResource
from executor.journal import Event, Journal


def _record(name: str) -> ObservedResource:
    return ObservedResource(name=name, type="network", state="active")


def test_a_record_never_commits_behind_one_already_seen(journal_url: str, tmp_path: Path) -> None:
    with Journal(journal_url) as one, Journal(journal_url, create=False) as two, \
            Journal(journal_url, create=False) as reader:
        a = one.start_run("/p", "a.yaml", {}, claims=["a"])
        b = two.start_run("/p", "b.yaml", {}, claims=["b"])
        _, _, before = reader.state_since(-1)
        inserted, go_on = threading.Event(), threading.Event()
        execute = one._store.execute

        def slow(sql: str, params=()):  # run a's transaction waits after taking its sequence number
            out = execute(sql, params)
            if sql.startswith("INSERT INTO events"):
                inserted.set()
                assert go_on.wait(30)
            return out

        one._store.execute = slow
        first = threading.Thread(target=one.append, args=(a, [Event("result", op="a/create")]),
                                 kwargs={"state": {"a": _record("a")}})
        first.start()
        assert inserted.wait(30)
        second = threading.Thread(target=two.append, args=(b, [Event("result", op="b/create")]),
                                  kwargs={"state": {"b": _record("b")}})
        second.start()
        second.join(1.0)
        seen, _, last = reader.state_since(before)
        go_on.set()
        first.join(30)
        second.join(30)
        one._store.execute = execute
        assert "b" not in seen, "run b's record committed while run a's, with a smaller seq, was not yet"
        later, _, _ = reader.state_since(last)
        assert set(later) == {"a", "b"}


def test_the_state_is_in_the_order_of_pythons_strings_whatever_the_databases_collation(
        postgres_server: str, tmp_path: Path) -> None:
    """A database whose collation is a language's (ICU en-US) listed 'cpe_public' before 'cpe-x', where
    SQLite and Python put '-' first; the journal's state cache, which checks that order, then never held
    (a sweep's). Every listing by name is in code point order on either backend."""
    import uuid

    import psycopg

    name = f"icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu "
                   "ICU_LOCALE 'en-US' LOCALE 'C'")
    names = ["cpe_public", "cpe-x", "Cpe", "cpe.b", "cpeZ", "cpe:1"]
    for where in (f"{postgres_server}/{name}", str(tmp_path / "journal.db")):
        with Journal(where) as journal:
            run = journal.start_run("/p", "r.yaml", {}, claims=names)
            journal.append(run, [Event("result", op=f"{n}/create") for n in names],
                           state={n: _record(n) for n in names})
            assert [n for n, _ in journal.state_rows()] == sorted(names), where
            assert list(journal.state_since(-1)[0]) == sorted(names), where
            assert journal.claims(run) == sorted(names), where
