"""The journal: append-only events, the runs and state projections, one live run per journal.

The tests that take ``journal`` or ``journal_url`` run on SQLite and on PostgreSQL
(tests/stores.py); those about a file, or a run's owner judged by its pid, on SQLite."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.formats import ObservedResource
from domain.procs import stat_fields
from executor.journal import SCHEMA_VERSION, Event, Journal, JournalError
from tests.conftest import ROOT, VFW, run_ordo
from tests.stores import Owner, eventually


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    with Journal(journal_url) as jr:
        yield jr


@pytest.fixture
def sqlite_journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / ".ordo" / "journal.db") as jr:
        yield jr


def record(name: str, state: str = "active", **attributes: object) -> ObservedResource:
    return ObservedResource(name=name, type="network", state=state, attributes=attributes)


def set_owner(jr: Journal, run: int, pid: int) -> None:
    """Pretend another process owns ``run`` (the journal's own file, another connection)."""
    with sqlite3.connect(jr.path) as db:
        db.execute("UPDATE runs SET pid=? WHERE id=?", (pid, run))
    db.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- events --------------------------------------------------------------------------


def test_append_and_read_back_with_sequence_numbers(journal: Journal) -> None:
    run = journal.start_run("/project", "requests/a.yaml", {"concurrency": 2})
    assert run == 1
    stored = journal.append(run, [
        Event("run-started", data={"request": "requests/a.yaml"}),
        Event("intent", op="net/create", key="k1", data={"attempt": 1, "inputs": {"cidr": "10.0.0.0/8"}}),
    ])
    assert [ev.seq for ev in stored] == [1, 2]
    assert all(ev.run == run and ev.at > 0 for ev in stored)
    more = journal.append(run, [Event("result", op="net/create", key="k1", data={"outputs": {"id": "n-1"}})])
    assert more[0].seq == 3

    read = journal.events(run)
    assert [(ev.seq, ev.kind, ev.op, ev.key) for ev in read] == [
        (1, "run-started", None, None), (2, "intent", "net/create", "k1"), (3, "result", "net/create", "k1")]
    assert read[1].data == {"attempt": 1, "inputs": {"cidr": "10.0.0.0/8"}}
    assert read[:2] == stored and read[2] == more[0]
    assert [ev.seq for ev in journal.events(run, since=2)] == [3]
    assert journal.has_event(run, "result") and not journal.has_event(run, "result", since=3)
    assert not journal.has_event(run, "failed")
    assert stored[1].as_dict() == {"seq": 2, "run": 1, "at": round(stored[1].at, 6), "kind": "intent",
                                   "op": "net/create", "key": "k1", "attempt": 1,
                                   "inputs": {"cidr": "10.0.0.0/8"}}

    # Runs have their own events; sequence numbers are the journal's, across runs.
    journal.append(run, [Event("run-ended", data={"status": "complete"})], status="complete")
    second = journal.start_run("/project", "requests/b.yaml", {})
    assert second == 2
    assert journal.append(second, [Event("run-started")])[0].seq == 5
    assert [ev.kind for ev in journal.events(second)] == ["run-started"]
    assert journal.last_run() == 2


def test_events_survive_reopening(journal_url: str) -> None:
    path = journal_url
    with Journal(path) as jr:
        ident = jr.id
        run = jr.start_run("/p", "r", {})
        jr.append(run, [Event("plan", data={"number": 1})], state={"net": record("net")})
    with Journal(path, create=False) as jr:
        assert jr.id == ident
        assert [ev.kind for ev in jr.events(run)] == ["plan"]
        assert jr.state()["net"].state == "active"


def test_events_survive_the_process_being_killed(journal_url: str) -> None:
    path = journal_url
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from executor.journal import Event, Journal
        jr = Journal({str(path)!r})
        run = jr.start_run("/p", "r", {{}})
        jr.append(run, [Event("intent", op="a/create", key="k", data={{"attempt": 1}})])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Journal(path, create=False) as jr:
        assert [(ev.kind, ev.op) for ev in jr.events(1)] == [("intent", "a/create")]
        assert jr.run(1).status == "running"
        assert eventually(lambda: jr.run(1).effective_status == "crashed")  # once the server saw it gone


# --- projections -------------------------------------------------------------------------


def test_state_and_run_status_are_written_with_the_events(journal: Journal) -> None:
    run = journal.start_run("/p", "r", {})
    assert journal.state() == {}
    journal.append(run, [Event("result", op="net/create")], state={"net": record("net", "created", network_id="n-1")})
    assert journal.state()["net"].state == "created"
    assert journal.state()["net"].attributes == {"network_id": "n-1"}
    journal.append(run, [Event("result", op="net/activate")], state={"net": record("net", "active", network_id="n-1"),
                                                                    "sub": record("sub")})
    assert {name: rec.state for name, rec in journal.state().items()} == {"net": "active", "sub": "active"}
    journal.append(run, [Event("result", op="sub/unassign")], state={"sub": None})
    assert list(journal.state()) == ["net"]
    with pytest.raises(JournalError, match="in progress"):
        journal.forget(["net"])     # not while a run may be writing it

    summary = {"created": 1, "status": "complete"}
    journal.append(run, [Event("run-ended", data=summary)], status="complete", summary=summary)
    assert journal.forget(["net", "nope"]) == ["net"]
    assert journal.state() == {}
    info = journal.run(run)
    assert (info.status, info.summary, info.request) == ("complete", summary, "r")
    assert info.updated >= info.created
    assert [r.id for r in journal.runs(status="complete")] == [run]
    assert journal.runs(status="running") == []


def test_a_failed_append_writes_nothing(journal: Journal) -> None:
    run = journal.start_run("/p", "r", {})
    journal.append(run, [Event("plan")], state={"net": record("net", "assigned")})
    with pytest.raises(AttributeError):
        # the second state entry cannot be stored: the events and the first entry go too
        journal.append(run, [Event("result", op="net/create"), Event("result", op="x/create")],
                       state={"net": record("net", "created"), "x": object()}, status="complete")  # type: ignore[dict-item]
    assert [ev.kind for ev in journal.events(run)] == ["plan"]
    assert journal.state()["net"].state == "assigned"
    assert journal.run(run).status == "running"
    # and the journal is still usable (sequence numbers only grow: PostgreSQL skips those of the rolled back)
    assert journal.append(run, [Event("result", op="net/create")])[0].seq >= 2
    assert [ev.kind for ev in journal.events(run)] == ["plan", "result"]


def test_wal_and_full_synchronous(sqlite_journal: Journal) -> None:
    journal = sqlite_journal
    db = journal._store  # the journal's own connection: synchronous is a per-connection setting
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    other = sqlite3.connect(journal.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file
    finally:
        other.close()


# --- one live run per journal -----------------------------------------------------------


def test_a_second_run_is_refused_while_one_is_live(sqlite_journal: Journal, sleeper: subprocess.Popen) -> None:
    journal = sqlite_journal
    run = journal.start_run("/p", "r", {})
    assert journal.run(run).owner_alive and journal.active_run().id == run
    # The same process cannot start a second run either: one run at a time.
    with pytest.raises(JournalError, match=r"run 1 is in progress \(pid \d+\)"):
        journal.start_run("/p", "r", {})
    # Another live process owns it.
    set_owner(journal, run, sleeper.pid)
    info = journal.run(run)
    assert info.pid == sleeper.pid and info.owner_alive and info.effective_status == "running"
    with pytest.raises(JournalError) as caught:
        journal.start_run("/p", "r", {})
    message = str(caught.value)
    assert str(journal.path) in message
    assert f"run 1 is in progress (pid {sleeper.pid}); wait for it, or `ordo abort 1`" in message
    with pytest.raises(JournalError, match="in progress"):
        journal.claim(run)
    assert len(journal.runs()) == 1

    # Its owner dies: the run is crashed, and may be taken over.
    sleeper.kill()
    sleeper.wait()
    assert journal.run(run).effective_status == "crashed"
    assert journal.active_run() is None
    journal.claim(run)
    assert journal.run(run).pid == os.getpid() and journal.run(run).effective_status == "running"


def test_a_zombie_owner_counts_as_dead(sqlite_journal: Journal, sleeper: subprocess.Popen) -> None:
    journal = sqlite_journal
    run = journal.start_run("/p", "r", {})
    set_owner(journal, run, sleeper.pid)
    sleeper.send_signal(signal.SIGKILL)
    # Not reaped yet: a zombie, which kill(pid, 0) still finds.
    stat = Path(f"/proc/{sleeper.pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().split(") ", 1)[1][:1] != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(sleeper.pid, 0)
    assert journal.run(run).effective_status == "crashed"


def test_a_live_owner_is_told_apart_by_its_start_not_by_the_wall_clock(tmp_path: Path, sleeper) -> None:
    """The owner was judged by its start (the boot time, which moves with the wall clock, plus its
    ticks) against its row's last update: after a step of the clock forward by more than a minute, a
    live `ordo apply` looked crashed and `ordo resume` took its run over while it ran (a sweep of clocks
    and time's). The row names its owner by pid, boot and start ticks; a process given the pid later
    (a crash, a reboot) is not it."""
    path = tmp_path / "journal.db"
    with Journal(path) as jr, Owner(str(path)) as owner:
        with sqlite3.connect(path) as db:   # its row written an hour "before" its process started
            db.execute("UPDATE runs SET updated = updated - 3600 WHERE id = ?", (owner.run,))
        db.close()
        info = jr.run(owner.run)
        assert info.owner is not None and info.owner.split()[0] == str(owner.proc.pid)
        assert info.owner_alive and info.effective_status == "running"
        with pytest.raises(JournalError, match="in progress"):
            jr.claim(owner.run)
        # the pid given to another process since: its start is not the owner's
        boot, started = info.owner.split()[1], int(stat_fields(sleeper.pid)[19])
        for ticks, status in ((started + 1, "crashed"), (started, "running")):
            with sqlite3.connect(path) as db:
                db.execute("UPDATE runs SET pid = ?, owner = ?, updated = ? WHERE id = ?",
                           (sleeper.pid, f"{sleeper.pid} {boot} {ticks}", time.time() + 3600, owner.run))
            db.close()
            assert jr.run(owner.run).effective_status == status


def test_a_run_whose_owner_is_gone_is_crashed(sqlite_journal: Journal) -> None:
    journal = sqlite_journal
    run = journal.start_run("/p", "r", {})
    set_owner(journal, run, dead_pid())
    info = journal.run(run)
    assert info.status == "running" and not info.owner_alive and info.effective_status == "crashed"
    assert journal.active_run() is None
    with pytest.raises(JournalError, match="run 1 is crashed, and can be resumed"):
        journal.start_run("/p", "r", {})  # its plan would go stale (tests/test_durability.py)
    # Only a running run can be crashed; an ended one keeps its status.
    journal.append(run, [Event("run-ended")], status="fallout")
    assert journal.run(run).effective_status == "fallout"


def test_a_run_of_a_live_process_holds_the_journal_until_it_is_killed(journal_url: str) -> None:
    """On either backend: another process's run is live while the process is (SQLite: its pid on this
    host; PostgreSQL: the lock its connection holds); killed -9, the run is crashed and can be resumed."""
    with Journal(journal_url) as jr, Owner(journal_url) as owner:
        info = jr.run(owner.run)
        assert info.owner_alive and info.effective_status == "running" and not info.mine
        assert jr.active_run().id == owner.run
        with pytest.raises(JournalError, match=rf"run {owner.run} is in progress \(pid {owner.proc.pid}\); "):
            jr.start_run("/p", "r", {})
        with pytest.raises(JournalError, match="in progress"):
            jr.claim(owner.run)
        with pytest.raises(JournalError, match="in progress"):
            jr.forget(["net"])
        owner.kill()
        assert eventually(lambda: jr.run(owner.run).effective_status == "crashed")
        assert jr.active_run() is None and [r.id for r in jr.resumable()] == [owner.run]
        # resumed by yet another process, which is killed in turn
        with Owner(journal_url, resume=owner.run) as again:
            assert again.run == owner.run
            assert jr.run(owner.run).effective_status == "running" and jr.run(owner.run).pid == again.proc.pid
            again.kill()
            assert eventually(lambda: jr.run(owner.run).effective_status == "crashed")
        jr.claim(owner.run)
        assert jr.run(owner.run).mine and jr.run(owner.run).effective_status == "running"


def test_two_writers_race_for_one_run(journal_url: str) -> None:
    path = journal_url
    Journal(path).close()
    barrier = threading.Barrier(2)
    outcome: list[object] = []

    def start() -> None:
        with Journal(path) as jr:
            barrier.wait()
            try:
                outcome.append(jr.start_run("/p", "r", {}))
            except JournalError as exc:
                outcome.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(type(x).__name__ for x in outcome) == ["JournalError", "int"]


def test_a_page_of_runs_and_their_counts_are_read_in_part(journal: Journal, monkeypatch) -> None:
    """A server's list of runs, its web page and its metrics read every run of the history for each
    page (0.8 s at 20,000 runs for a page of one: the serve soak sweep): a page is read alone, and the
    counts are SQL's, but those of running runs, whose owner is asked of each (crashed when gone)."""
    import executor.journal as module

    statuses = ["complete", "fallout", "complete", "aborted", "running", "complete", "failed", "running"]
    for number, status in enumerate(statuses, start=1):
        run = journal.start_run("/p", f"r{number}.yaml", {}, claims=[f"thing-{number}"])   # (side by side)
        if status != "running":
            journal.append(run, [], status=status)
    everything = list(reversed(journal.runs()))
    for state in (None, "complete", "running", "crashed", "rolled_back"):
        found = [r for r in everything if state is None or r.effective_status == state]
        for offset, limit in ((0, 50), (1, 2), (3, 1), (9, 5)):
            page, total = journal.runs_newest(state, offset, limit)
            assert ([r.id for r in page], total) == ([r.id for r in found[offset:offset + limit]], len(found))
    assert journal.run_counts() == {"complete": 3, "fallout": 1, "aborted": 1, "failed": 1, "running": 2} == \
        collections.Counter(r.effective_status for r in everything)
    read = []
    made = module._run_info
    monkeypatch.setattr(module, "_run_info", lambda row, path: read.append(row) or made(row, path))
    assert [r.id for r in journal.runs_newest(None, 0, 2)[0]] == [8, 7] and len(read) == 2


def test_an_unknown_run_is_named(journal: Journal) -> None:
    with pytest.raises(JournalError, match=r"no run 1 \(no run was recorded yet; see `ordo history`\)"):
        journal.run(1)
    journal.start_run("/p", "r", {})
    with pytest.raises(JournalError, match=r"no run 7 \(runs are numbered 1 to 1; see `ordo history`\)"):
        journal.run(7)


# --- opening ---------------------------------------------------------------------------


def test_a_damaged_journal_says_so(tmp_path: Path) -> None:
    """Pages overwritten past the header: SQLite's "malformed" was shown as "not an ordo journal"
    (the crash sweep of 6 December)."""
    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        jr.start_run("/p", "r", {"filler": "x" * 20_000})
    data = bytearray(path.read_bytes())
    data[4096:] = bytes(range(256)) * ((len(data) - 4096) // 256) + bytes((len(data) - 4096) % 256)
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=f"{path}: the journal is damaged \\(database disk image is malformed\\); "
                                           "restore a backup of it"):
        Journal(path)


def test_a_run_is_never_given_the_id_of_one_whose_row_was_lost(tmp_path: Path) -> None:
    """The runs' page damaged (rows lost, their events kept): `ordo history` refused, but apply started a
    run under the id of the last one lost, and its events were stored among that run's (`ordo show 1`
    then showed another request's events under the new run's name: the filesystem-faults sweep)."""
    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        first = jr.start_run("/p", "r", {})
        jr.append(first, [Event(kind="op-started", op="a/create")], status="complete")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM runs WHERE id = ?", (first,))   # (as a damaged page loses it)
    with Journal(path, create=False) as jr:
        with pytest.raises(JournalError, match="the journal is damaged: events of run 1 are stored, but its run "
                                               "is not; restore a backup"):
            jr.start_run("/p", "other", {})
        assert jr.runs() == []   # nothing started: the transaction was undone
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT run, count(*) FROM events GROUP BY run").fetchall() == [(1, 1)]


def test_a_failed_write_says_resume_only_of_a_run_this_process_carries_on(tmp_path: Path, monkeypatch) -> None:
    """A write that failed (a full disk, a read-only file) said "run 1 stopped at its last recorded event:
    once that is fixed, `ordo resume 1`" of an abort and of a resume --rollback's takeover too: followed,
    it carried forward the run the operator had asked to stop or roll back (the filesystem-faults sweep)."""
    def full(*_args, **_kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    path = tmp_path / "journal.db"
    with Journal(path) as carrier:
        run = carrier.start_run("/p", "r", {})
        with Journal(path, create=False) as other:
            monkeypatch.setattr(Journal, "_insert", full)
            with pytest.raises(JournalError) as caught:
                carrier.append(run, [Event(kind="op-started", op="a/create")])
            assert str(caught.value).endswith("once that is fixed, `ordo resume 1`"), caught.value
            with pytest.raises(JournalError) as caught:   # (as `ordo abort` writes, for a run it does not carry)
                other.append(run, [Event(kind="run-ended")], status="aborted")
            assert str(caught.value).endswith("database or disk is full; nothing was written: once that is fixed, "
                                              "run the command again"), caught.value
            monkeypatch.setattr(Journal, "_claims_locked", full)
            with pytest.raises(JournalError) as caught:   # (a resume's takeover)
                other.claim(run)
            assert "ordo resume" not in str(caught.value) and "nothing was written" in str(caught.value)
    monkeypatch.undo()
    with Journal(path, create=False) as jr:   # a takeover whose commit fails (a full disk): it holds the run
        jr.append(run, [], status="failed")     # before its commit, and was taken as carried on (a review)
    with Journal(path, create=False) as other:
        monkeypatch.setattr(other._store, "commit", full)
        with pytest.raises(JournalError) as caught:
            other.claim(run)
        assert "ordo resume" not in str(caught.value) and "nothing was written" in str(caught.value), caught.value
        assert run not in other._carrying


def test_a_journal_linked_to_a_volume_not_mounted_is_refused(tmp_path: Path) -> None:
    """A journal kept as a link to a volume not mounted was read as no journal: `ordo history` said "No
    runs yet", `ordo plan` planned everything anew and apply made it, in a new journal inside the empty
    mount point (the filesystem-faults sweep)."""
    volume = tmp_path / "vol"
    volume.mkdir()
    with Journal(volume / "journal.db") as jr:
        jr.start_run("/p", "r", {})
    link = tmp_path / "project" / ".ordo" / "journal.db"
    link.parent.mkdir(parents=True)
    link.symlink_to(volume / "journal.db")
    volume.rename(tmp_path / "vol.unmounted")
    volume.mkdir()   # (the empty mount point)
    for create in (True, False):
        with pytest.raises(JournalError, match=f"{link}: the journal is a link to {volume / 'journal.db'}, which "
                                               "does not exist \\(a volume not mounted\\?\\)"):
            Journal(link, create=create)
    assert list(volume.iterdir()) == []
    run = run_ordo("history", "-C", VFW, "--journal", link)
    assert run.code == 1 and "which does not exist" in run.err and "No runs" not in run.out, run.text
    # the journal's folder kept so (`.ordo -> /vol/ordo-state`): history said "No runs yet" (a review)
    folder = tmp_path / "other" / ".ordo"
    folder.parent.mkdir()
    folder.symlink_to(volume / "ordo-state")
    with pytest.raises(JournalError, match=f"its folder {folder} is a link to {volume / 'ordo-state'}, which does "
                                           "not exist"):
        Journal(folder / "journal.db", create=False)


def test_a_side_file_of_sqlite_is_no_journal(tmp_path: Path) -> None:
    """`--journal journal.db-wal` kept runs in a file that SQLite, opening journal.db next, took for its
    write-ahead log and deleted (the filesystem-faults sweep)."""
    with Journal(tmp_path / "journal.db") as jr:
        jr.start_run("/p", "r", {})
    for side in ("-wal", "-shm", "-journal"):
        with pytest.raises(JournalError, match=f"journal.db{side}: SQLite's {side[1:]} file of the journal"):
            Journal(tmp_path / f"journal.db{side}")
    with Journal(tmp_path / "other-journal") as jr:   # (a name that ends so, beside no database of its stem)
        assert jr.runs() == []
    (tmp_path / "deploy").write_text("a file, not a database\n")   # (refused too: a review)
    with Journal(tmp_path / "deploy-journal") as jr:
        assert jr.runs() == []


def test_a_write_refused_names_the_side_file_or_the_size_limit(tmp_path: Path, monkeypatch) -> None:
    """A read of a read-only journal leaves its -shm read-only: the journal made writable again was still
    "an attempt to write a readonly database", naming only journal.db; a write past `ulimit -f` was a
    "disk I/O error", which reads as failing hardware (the filesystem-faults sweep). (Root writes what its
    modes forbid: who may write is asked of os.access.)"""
    from executor.store import sqlite as store

    path = tmp_path / "journal.db"
    with Journal(path) as jr:
        jr.start_run("/p", "r", {})
        backend = jr._store
        shm = Path(f"{path}-shm")
        assert shm.is_file()
        readonly = sqlite3.OperationalError("attempt to write a readonly database")
        readonly.sqlite_errorcode = sqlite3.SQLITE_READONLY
        monkeypatch.setattr(store.os, "access", lambda where, _mode: Path(where) != shm)
        assert backend.describe(readonly) == f"{shm} is not writable (attempt to write a readonly database)"
        monkeypatch.undo()
        assert backend.describe(readonly) == "attempt to write a readonly database"
        io = sqlite3.OperationalError("disk I/O error")
        io.sqlite_errorcode = sqlite3.SQLITE_IOERR
        size = path.stat().st_size
        monkeypatch.setattr(store.resource, "getrlimit", lambda _what: (size, store.resource.RLIM_INFINITY))
        assert backend.describe(io) == f"{path} reached this process's file size limit (ulimit -f) (disk I/O error)"
        monkeypatch.setattr(store.resource, "getrlimit", lambda _what: (size * 100, store.resource.RLIM_INFINITY))
        assert backend.describe(io) == "disk I/O error"


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("this is not a database, only text long enough to fill a header page " * 20)
    with pytest.raises(JournalError) as caught:
        Journal(text)
    assert str(text) in str(caught.value) and "not an ordo journal" in str(caught.value)

    other = tmp_path / "other.db"   # an SQLite file of another schema
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA user_version=1")
        db.execute("CREATE TABLE things (x)")
    db.close()
    with pytest.raises(JournalError, match=f"{other}: not an ordo journal"):
        Journal(other)

    newer = tmp_path / "newer.db"   # (ordo's first tables, as any of its journals holds them)
    with sqlite3.connect(newer) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
        db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(JournalError, match=f"{newer}: journal schema version 99 was written by a newer ordo: "
                                           f"upgrade ordo to use it \\(this ordo reads version {SCHEMA_VERSION}\\)"):
        Journal(newer)


def test_a_missing_journal_is_not_created_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "none" / "journal.db"
    with pytest.raises(JournalError, match="no journal here"):
        Journal(path, create=False)
    assert not path.exists()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(folder)


# --- the CLI's views of the journal ---------------------------------------------------------


def test_an_error_naming_untrusted_text_shows_it_as_it_is(tmp_path: Path) -> None:
    """An error's text is never read as markup (a tag that closes nothing crashed ordo with a traceback)
    nor sent to the terminal raw (an escape sequence)."""
    for name, shown in (("[/x]journal.db", "[/x]journal.db"), ("[red]journal.db", "[red]journal.db"),
                        ("\x1b[31mjournal.db", "\\x1b[31mjournal.db")):
        journal = tmp_path / name
        run = run_ordo("show", "1", "-C", VFW, "--journal", journal)
        assert run.code == 1 and f"{tmp_path}/{shown}: no journal here" in run.err, run.text
        assert "\x1b" not in run.err


def test_history_and_show_without_runs(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    run = run_ordo("history", "-C", VFW, "--journal", journal)
    assert run.code == 0, run.text
    assert run.out.strip() == "No runs yet."
    run = run_ordo("history", "-C", VFW, "--journal", journal, "--json")
    assert run.code == 0 and json.loads(run.out) == []
    assert not journal.exists()
    run = run_ordo("show", "-C", VFW, "--journal", journal)
    assert run.code == 1
    assert f"{journal}: no journal here" in run.err and "Traceback" not in run.text
    assert not journal.exists()

    Journal(journal).close()      # a journal with no runs
    run = run_ordo("history", "-C", VFW, "--journal", journal)
    assert run.code == 0 and run.out.strip() == "No runs yet."
    run = run_ordo("show", "-C", VFW, "--journal", journal)
    assert run.code == 1 and "no run was recorded yet" in run.err


def test_show_an_unknown_run(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with Journal(journal) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {})
        jr.append(run, [Event("run-started", data={"request": "requests/instantiate.yaml"}),
                        Event("run-ended", data={"status": "complete", "created": 1})],
                  status="complete", summary={"status": "complete", "created": 1})
    shown = run_ordo("show", "99", "-C", VFW, "--journal", journal)
    assert shown.code == 1
    assert "error:" in shown.err and "no run 99 (runs are numbered 1 to 1; see `ordo history`)" in shown.err
    assert "Traceback" not in shown.text
    for command in (["abort", "99"], ["resume", "99"]):
        other = run_ordo(*command, "-C", VFW, "--journal", journal)
        assert other.code == 1 and "no run 99" in other.err and "Traceback" not in other.text, command

    shown = run_ordo("show", "-C", VFW, "--journal", journal)     # the last run
    assert shown.code == 0, shown.text
    assert "Run 1: requests/instantiate.yaml, complete" in shown.out
    assert "Apply complete: 1 created, 0 changed, 0 deleted." in shown.out
    shown = run_ordo("show", "1", "-C", VFW, "--journal", journal, "--json")
    assert [json.loads(line)["kind"] for line in shown.out.splitlines()] == ["run-started", "run-ended"]


def test_cli_names_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    bogus = tmp_path / "journal.db"
    bogus.write_text("not a database " * 100)
    for command in (["history"], ["show", "1"], ["abort", "1"], ["plan"]):
        run = run_ordo(*command, "-C", VFW, "--journal", bogus)
        assert run.code == 1, (command, run.text)
        assert f"{bogus}: not an ordo journal" in run.err, command
        assert "Traceback" not in run.text


def test_state_lists_exports_and_forgets_records(vfw_copy, tmp_path):
    assert run_ordo("apply", "-C", vfw_copy, "--auto-approve").code == 0
    listed = run_ordo("state", "-C", vfw_copy)
    assert listed.code == 0
    assert any(line.split()[:4] == ["vfw", "vnf", "active", "region-two"] for line in listed.out.splitlines())
    # The export is an inventory: planned from it alone (no journal), nothing is left to do.
    exported = tmp_path / "inventory-now.yaml"
    exported.write_text(run_ordo("state", "-C", vfw_copy, "--export").out)
    elsewhere = tmp_path / "journal-elsewhere.db"
    run = run_ordo("plan", "-C", vfw_copy, "--inventory", exported, "--journal", elsewhere, "--detailed-exitcode")
    assert run.code == 0, run.text
    assert "No changes." in run.out
    # Forgetting a record: the inventory file speaks for it again.
    run = run_ordo("state", "-C", vfw_copy, "rm", "vfw-bse")
    assert run.code == 1 and "the journal has no record of 'vfw-bse' (did you mean 'vfw-base'?)" in run.err
    run = run_ordo("state", "-C", vfw_copy, "rm", "vfw-base")
    assert run.code == 0 and "Forgot 1 record(s): vfw-base." in run.out
    run = run_ordo("plan", "-C", vfw_copy)
    assert "Plan: 1 to create, 0 to change, 0 to delete." in run.out


def test_a_journal_in_a_folder_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    """Even a reader makes SQLite's files beside the journal: in a folder made immutable (or read-only,
    for a user other than root) every command said only 'unable to open database file'."""
    folder = tmp_path / ".ordo"
    with Journal(folder / "journal.db") as jr:
        jr.start_run("/p", "r", {})
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not allowed here (root on a file system that has it)")
    try:
        with pytest.raises(JournalError, match=f"{folder}/journal.db: cannot open the journal: its folder {folder} "
                                               "is not writable, and SQLite keeps files beside the journal"):
            Journal(folder / "journal.db", create=False)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
