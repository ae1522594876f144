"""Version 3 of the journal: idempotency keys indexed (those of older runs found after the
migration), and slot leases on the controllers' concurrency shared by runs side by side."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from executor.journal import Journal
from tests.test_journal_schema import version_1_journal


def test_keys_of_runs_before_version_3_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    version_1_journal(path, claims=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("""UPDATE runs SET options='{"idempotency_key": "order-17", "principal": "portal"}' WHERE id=1""")
    db.close()
    with Journal(path) as jr:
        assert jr.run_of_key("order-17") == 1 and jr.run_of_key("order-18") is None
        run = jr.start_run("/p", "s.yaml", {"idempotency_key": "order-18"}, claims=["net"])
        assert jr.run_of_key("order-18") == run


def test_slots_are_shared_released_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path) as one, Journal(path) as two:
        a = one.start_run("/p", "a.yaml", {}, claims=["a"])
        b = two.start_run("/p", "b.yaml", {}, claims=["b"])
        later = time.time() + 60
        assert one.lease_slots(a, [("a/x", "sdnc", 2, later), ("a/y", "sdnc", 2, later)]) == {"a/x", "a/y"}
        assert two.lease_slots(b, [("b/x", "sdnc", 2, later), ("b/y", "cds", 1, later)]) == {"b/y"}
        assert one.lease_slots(a, [("a/x", "sdnc", 2, later)]) == {"a/x"}  # its own lease, taken again
        one.release_slots(a, ["a/x"])
        assert two.lease_slots(b, [("b/x", "sdnc", 2, later)]) == {"b/x"}
        two.release_slots(b)  # all of b's
        one.lease_slots(a, [("a/z", "cds", 1, time.time() - 1)])  # expired at once: its holder died
        assert two.lease_slots(b, [("b/z", "cds", 1, later)]) == {"b/z"}
