"""Writers of one journal in one process (the service drives each run on a Journal of its own)
queue on a lock in the process, not in SQLite's busy handler: that one polls, and with 200 runs
writing at once some waited past its timeout and their runs stopped ("database is locked";
benchmarks/bench_serve.py found it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from executor.journal import Event, Journal


def test_a_second_writer_in_the_process_waits_for_the_first_past_sqlites_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / ".ordo" / "journal.db"
    with Journal(path) as first, Journal(path) as second:
        run = first.start_run("/p", "r", {})
        second._store.execute("PRAGMA busy_timeout = 50")  # SQLite alone would give up after 50 ms
        done: list[object] = []

        def write() -> None:
            try:
                done.append(second.append(run, [Event("note", data={"from": "second"})]))
            except Exception as exc:  # noqa: BLE001 - the failure is what the test reports
                done.append(exc)

        with first._write(run) as db:  # a write transaction held 0.3 s
            db.execute("UPDATE runs SET updated=updated WHERE id=?", (run,))
            other = threading.Thread(target=write)
            other.start()
            time.sleep(0.3)
        other.join(10)
        assert len(done) == 1 and isinstance(done[0], list), done
        assert [ev.kind for ev in first.events(run)] == ["note"]
