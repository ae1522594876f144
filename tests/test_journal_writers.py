"""Writers of one journal in one process (the service drives each run on a Journal of its own)
queue on a lock in the process, not in SQLite's busy handler: that one polls, and with 200 runs
writing at once some waited past its timeout and their runs stopped ("database is locked";
benchmarks/bench_serve.py found it)."""

from __future__ import annotations

import subprocess
import sys
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


def test_another_process_closing_the_journal_keeps_the_wal_a_writer_here_uses(tmp_path: Path) -> None:
    """A server holds a journal open and opens it again for another run; a CLI command reads it
    and closes. The file's locks belong to the server's process, and closing any descriptor of
    the file there dropped them all: the command, closing, took itself for the last user and
    deleted the -wal file, and what the server wrote next went to a deleted file, lost."""
    path = tmp_path / ".ordo" / "journal.db"
    wal = path.with_name("journal.db-wal")
    read = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "print(db.execute('SELECT count(*) FROM events').fetchone()[0]); db.close()")
    with Journal(path) as server:
        run = server.start_run("/p", "r", {})
        server.append(run, [Event("note", data={"n": 1})])
        with Journal(path) as again:   # the next run's journal, in the same process
            again.runs()
        command = subprocess.run([sys.executable, "-c", read, str(path)], capture_output=True, text=True, check=True)
        assert int(command.stdout) >= 1
        assert wal.exists(), "the -wal file was deleted under a writer"
        server.append(run, [Event("note", data={"n": 2})])
        seen = subprocess.run([sys.executable, "-c", read, str(path)], capture_output=True, text=True, check=True)
        assert int(seen.stdout) == len(server.events(run)), "what the writer wrote since is lost to others"


def test_processes_making_one_new_journal_at_once_all_open_it(tmp_path: Path) -> None:
    """Switching a new journal to WAL mode takes the file whole, and SQLite answers 'database is
    locked' at once, without waiting, while another process does: of three ordo starting on a new
    journal at once, one was sometimes refused (found 6 December, 5 times in 30)."""
    import subprocess
    import sys

    code = ("import sys, time\nfrom pathlib import Path\nfrom executor.journal import Journal\n"
            "root = Path(sys.argv[1])\n(root / f'ready-{sys.argv[2]}').touch()\n"
            "while not (root / 'go').exists():\n    time.sleep(0.001)\n"
            "for i in range(30):\n"   # each journal made by the three at once: they meet before each
            "    (root / f'at-{i}-{sys.argv[2]}').touch()\n"
            "    while len(list(root.glob(f'at-{i}-*'))) < 3:\n"
            "        if list(root.glob('refused-*')):\n            sys.exit(2)\n"   # one of the others was
            "        time.sleep(0.0005)\n"
            "    try:\n        Journal(root / f'j{i}.db').close()\n"
            "    except Exception:\n        (root / f'refused-{sys.argv[2]}').touch()\n        raise\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(n)], stderr=subprocess.PIPE, text=True)
             for n in range(3)]
    while len(list(tmp_path.glob("ready-*"))) < 3:
        assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
        time.sleep(0.01)
    (tmp_path / "go").touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
