"""Durability: a new apply next to a resumable run, a full disk, a damaged journal.

The CLI runs in-process (``ordo.cli.main``) except where a process must die or
run while the test fills its disk.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from executor.controllers.base import OperationRequest, TransientError
from executor.controllers.simulated import World, read_ledger, read_world
from executor.journal import Event, Journal, JournalError
from ordo.cli import main
from tests.stores import Owner, eventually
from tests.test_crash import PLAIN, REQUESTED, Crashed, crash_apply, world_file, write_scenario


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``ordo ARGS`` in this process: its exit code, stdout and stderr."""
    for name in ("ORDO_CRASH_POINT", "ORDO_SIMULATION", "ORDO_JOURNAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "500")

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def contents(journal: Path) -> str:
    """Everything the journal stores (its file's bytes change as the WAL is checkpointed)."""
    with sqlite3.connect(journal) as db:
        dump = "\n".join(db.iterdump())
    db.close()
    return hashlib.sha256(dump.encode()).hexdigest()


def statuses(journal: Path) -> list[tuple[int, str]]:
    with Journal(journal, create=False) as jr:
        return [(r.id, r.effective_status) for r in jr.runs()]


def assert_world_complete(project: Path, journal: Path | None = None) -> None:
    """Every requested resource active in the world, no effect applied twice."""
    world = read_world(world_file(project) if journal is None else journal.parent / "simulated-world.db")
    assert all(world[name]["state"] == "active" for name in REQUESTED), world
    ledger = read_ledger(world_file(project) if journal is None else journal.parent / "simulated-world.db")
    twice = [k for k, n in collections.Counter(row["key"] for row in ledger).items() if n > 1]
    assert not twice, twice
    applied = collections.Counter((row["resource"], row["operation"]) for row in ledger)
    assert max(applied.values()) == 1, applied  # a run to instantiate applies each operation once


# --- a new apply while an earlier run can be resumed ------------------------------------------


def test_a_new_apply_is_refused_while_a_crashed_run_can_be_resumed(vfw_copy, cli):
    scenario = write_scenario(vfw_copy, PLAIN)
    crash_apply(vfw_copy, scenario, "result-written:5")
    journal = vfw_copy / ".ordo" / "journal.db"
    before = contents(journal)
    refused = cli("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario)
    assert refused.code == 1, refused
    assert "Traceback" not in refused.err
    text = " ".join(refused.err.split())
    assert (f"{journal}: run 1 is crashed, and can be resumed: `ordo resume 1` carries it on, `ordo abort 1` "
            "closes it, or `ordo apply --supersede` starts anew") in text, text
    assert statuses(journal) == [(1, "crashed")]
    assert contents(journal) == before
    # resuming it is what the message says: it completes, and then a new apply finds nothing to do
    assert cli("resume", "1", "-C", vfw_copy, "--json").code == 0
    again = cli("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario)
    assert again.code == 0 and "No changes." in again.out, again
    assert_world_complete(vfw_copy)


def test_supersede_ends_the_crashed_run_for_good(vfw_copy, cli):
    """A crash after an effect was applied and before its result was written: the superseding
    run observes that operation (under the old run's key) instead of sending it again."""
    scenario = write_scenario(vfw_copy, PLAIN)
    crash_apply(vfw_copy, scenario, "applied:5")
    unrecorded = Crashed.now(vfw_copy).unrecorded
    assert unrecorded
    journal = vfw_copy / ".ordo" / "journal.db"
    done = cli("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario, "--supersede", "--json")
    assert done.code == 0, done
    assert statuses(journal) == [(1, "superseded"), (2, "complete")]
    with Journal(journal, create=False) as jr:
        ended = jr.events(1)[-1]
        assert ended.kind == "run-ended" and ended.data["status"] == "superseded"
        assert ended.data["superseded_by"] == 2 and ended.data["reason"] == "superseded by run 2 while crashed"
        observed = {ev.key for ev in jr.events(2) if ev.kind == "result" and ev.data["observed"]}
    assert observed == set(unrecorded)  # the effects applied before the crash, found by observing
    assert_world_complete(vfw_copy)
    assert not [row for row in read_ledger(world_file(vfw_copy)) if row["key"].split(":")[2] not in ("1", "2")]

    resumed = cli("resume", "1", "-C", vfw_copy)
    assert resumed.code == 1
    assert "run 1 cannot be resumed: it was superseded by run 2 while crashed; its plan is stale" in resumed.err
    aborted = cli("abort", "1", "-C", vfw_copy)
    assert aborted.code == 1 and "run 1 is superseded: there is nothing to abort" in aborted.err
    shown = cli("show", "1", "-C", vfw_copy)
    assert shown.code == 0 and "Run 1: requests/instantiate.yaml, superseded" in shown.out, shown
    assert cli("plan", "-C", vfw_copy, "--detailed-exitcode").code == 0


@pytest.mark.parametrize("status", ["fallout", "interrupted", "failed", "crashed"])
def test_every_resumable_status_blocks_a_new_run(journal_url, status):
    with Journal(journal_url) as jr:
        if status == "crashed":   # its owner, another process, was killed
            with Owner(journal_url) as owner:
                owner.kill()
                assert eventually(lambda: jr.run(owner.run).effective_status == "crashed")
        else:
            run = jr.start_run("/p", "r", {})
            jr.append(run, [Event("run-ended", data={"status": status})], status=status, summary={"status": status})
        with pytest.raises(JournalError, match=f"run 1 is {status}, and can be resumed"):
            jr.start_run("/p", "r", {})
        assert jr.start_run("/p", "r", {}, supersede=True) == 2
        assert [(r.id, r.effective_status) for r in jr.runs()] == [(1, "superseded"), (2, "running")]
        assert jr.run(1).summary == {"status": "superseded", "superseded_by": 2,
                                     "reason": f"superseded by run 2 while {status}"}


@pytest.mark.parametrize("status", ["complete", "aborted", "rolled_back"])
def test_an_ended_run_does_not_block_a_new_one(journal_url, status):
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "r", {})
        jr.append(run, [Event("run-ended")], status=status)
        assert jr.start_run("/p", "r", {}) == 2
        assert jr.run(1).status == status


# --- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of its own. A real full disk (ENOSPC from the kernel, for every writer:
    the journal's WAL and the simulated world alike) needs a file system that can fill up
    without touching anyone else's: mounting one needs root, so the test skips without it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system up to its last byte."""
    filler = disk / "filler"
    block = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError:
            pass
    small = disk / "filler-tail"  # what is left below one block
    with small.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def test_a_full_disk_stops_the_run_with_a_clear_error_and_resume_completes(vfw_copy, tmp_path, small_disk, cli):
    journal = small_disk / "journal.db"
    scenario = write_scenario(vfw_copy, {**PLAIN, "latency": 0.05})
    log, errors = tmp_path / "apply.jsonl", tmp_path / "apply.err"
    with log.open("w") as out, errors.open("w") as err:
        proc = subprocess.Popen([_ordo(), "apply", "-C", str(vfw_copy), "--auto-approve", "--simulation",
                                 str(scenario), "--json", "--journal", str(journal)], stdout=out, stderr=err)
    deadline = time.monotonic() + 60
    while '"kind": "run-started"' not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    fill(small_disk)
    assert proc.wait(timeout=60) == 1, errors.read_text()
    text = " ".join(errors.read_text().split())
    assert "Traceback" not in text, text
    assert f"error: {journal}: cannot write to the journal: the disk is full" in text, text
    assert "run 1 stopped at its last recorded event: once that is fixed, `ordo resume 1`" in text, text
    assert statuses(journal) == [(1, "crashed")]
    kinds = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    assert "run-ended" not in kinds and "failed" not in kinds and "learnt" not in kinds, kinds

    still = cli("resume", "1", "-C", vfw_copy, "--journal", journal)
    assert still.code == 1, still
    text = " ".join(still.err.split())
    assert "Traceback" not in text and "cannot rollback" not in text, text
    assert f"{journal}: cannot write to the journal: the disk is full" in text, text
    # (the resume's takeover did not commit: it names no other command, which a --rollback's would be wrong)
    assert "nothing was written: once that is fixed, run the command again" in text, text

    for name in ("filler", "filler-tail"):
        (small_disk / name).unlink()
    resumed = cli("resume", "1", "-C", vfw_copy, "--journal", journal, "--json")
    assert resumed.code == 0, resumed
    assert statuses(journal) == [(1, "complete")]
    assert_world_complete(vfw_copy, journal)
    with Journal(journal, create=False) as jr:
        assert not [ev for ev in jr.events(1) if ev.kind in ("failed", "learnt")]
    assert cli("plan", "-C", vfw_copy, "--journal", journal, "--detailed-exitcode").code == 0


def test_apply_on_a_full_disk_says_so(vfw_copy, small_disk, cli):
    journal = small_disk / "journal.db"
    scenario = write_scenario(vfw_copy, PLAIN)
    with Journal(journal):
        pass
    fill(small_disk)
    run = cli("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario, "--journal", journal)
    assert run.code == 1
    text = " ".join(run.err.split())
    assert "Traceback" not in text and f"{journal}: " in text and "disk is full" in text, text


def test_the_simulated_world_failing_to_write_is_transient(small_disk):
    world = World(small_disk / "world.db", [{"name": "net", "type": "network", "state": "absent"}])
    try:
        fill(small_disk)
        request = OperationRequest(run="1", key="k1", resource="net", type="network", operation="assign",
                                   from_state="absent", to_state="assigned")
        deadline = time.monotonic() + 5
        with pytest.raises(TransientError) as caught:
            while time.monotonic() < deadline:  # the WAL may hold a little room: write until it is gone
                world.apply(request, "sdnc")
                request = OperationRequest(**{**request.__dict__, "key": request.key + "+"})
        assert caught.value.code == "world-io" and "database or disk is full" in caught.value.message
        assert caught.value.applied in (None, False)
    finally:
        world.close()


# --- a damaged journal -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vFW example applied once (complete), to damage copies of."""
    from tests.conftest import VFW

    project = tmp_path_factory.mktemp("applied") / "vfw"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    scenario = write_scenario(project, PLAIN)
    done = subprocess.run([_ordo(), "apply", "-C", str(project), "--auto-approve", "--simulation", str(scenario)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return project


def _ordo() -> str:
    from tests.conftest import ordo_executable

    return ordo_executable()


def damage(project: Path, sql: str) -> Path:
    journal = project / ".ordo" / "journal.db"
    with sqlite3.connect(journal) as db:
        assert db.execute(sql).rowcount == 1
    db.close()
    return journal


DAMAGES = {
    "state record": ("UPDATE state SET record = '{\"name\": \"vfw\", \"type\"' WHERE resource = 'vfw'",
                     "table state, the record of 'vfw' is damaged (Invalid JSON",
                     "`ordo state rm vfw` forgets it",
                     ("plan", "apply", "state", "resume", "whatif")),
    "state field": ("UPDATE state SET record = json_set(record, '$.state', 7) WHERE resource = 'vpg'",
                    "table state, the record of 'vpg' is damaged (state: Input should be a valid string)",
                    "`ordo state rm vpg` forgets it",
                    ("plan", "state", "resume")),
    "event JSON": ("UPDATE events SET data = '{\"attempt\": ' WHERE seq = 5",
                   "table events, event 5 (intent",
                   "is damaged: not valid JSON",
                   ("show", "resume")),
    "plan JSON": ("UPDATE events SET data = json_set(data, '$.plan', '{\"format\": 1}') WHERE kind = 'plan'",
                  "table events, event 2 (plan of run 1) is damaged:",
                  "",
                  ("show", "show --json", "resume")),
    "event field": ("UPDATE events SET data = json_remove(data, '$.attempt') WHERE seq = 5",
                    "table events, event 5 (intent",
                    "is damaged: it has no field 'attempt'",
                    ("show", "resume")),
    "run summary": ("UPDATE runs SET summary = '{' WHERE id = 1",
                    "table runs, run 1, its summary is damaged: not valid JSON",
                    "",
                    ("history", "show", "resume", "apply")),
}

COMMANDS = {
    "plan": ["plan"], "apply": ["apply", "--auto-approve", "--supersede"], "state": ["state"],
    "resume": ["resume", "1"],
    "show": ["show", "1"], "show --json": ["show", "1", "--json"], "history": ["history"],
    "whatif": ["whatif", "--target-down", "region-two"],
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_a_damaged_journal_is_named_not_a_traceback(applied, tmp_path, cli, case):
    sql, first, second, commands = DAMAGES[case]
    project = tmp_path / "vfw"
    shutil.copytree(applied, project)
    damage(project, "UPDATE runs SET status = 'interrupted' WHERE id = 1")  # so that resume reads it back
    journal = damage(project, sql)
    before = contents(journal)
    for command in commands:
        run = cli(*COMMANDS[command], "-C", project)
        text = " ".join(run.err.split())
        assert run.code == 1, (command, run)
        assert "Traceback" not in text and f"error: {journal}: {first}" in text and second in text, (command, text)
        assert contents(journal) == before, command


def test_a_damaged_state_record_can_be_forgotten(applied, tmp_path, cli):
    project = tmp_path / "vfw"
    shutil.copytree(applied, project)
    damage(project, DAMAGES["state record"][0])
    assert cli("plan", "-C", project).code == 1
    done = cli("state", "-C", project, "rm", "vfw")
    assert done.code == 0 and "Forgot 1 record(s): vfw." in done.out, done
    assert cli("plan", "-C", project).code == 0


def test_a_run_begins_with_its_first_events_or_not_at_all(journal_url):
    """begin_run writes the run's row, the end of the runs it supersedes and its first events in
    one transaction. A process killed between the row and its run-started event left a run that
    could not be resumed, and what the superseded run had left in doubt (handed on in that event)
    was lost: sent again under new keys, not observed first (the crash sweep of 6 December)."""
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "r", {})
        jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout", summary={"status": "x"})
        unwritable = Event(None, data={"inherited": {"a/create": "k1"}})   # fails in the write: a kind is NOT NULL
        with pytest.raises(JournalError):
            jr.begin_run("/p", "r", {}, [unwritable], supersede=True)
        assert [(r.id, r.status) for r in jr.runs()] == [(1, "fallout")]   # nothing of it stands
        started = Event("run-started", data={"inherited": {"a/create": "k1"}})
        new, stored = jr.begin_run("/p", "r", {}, [started, Event("plan", data={"number": 1})], supersede=True)
        assert [(r.id, r.status) for r in jr.runs()] == [(1, "superseded"), (new, "running")]
        assert [(ev.kind, ev.seq) for ev in stored] == [(ev.kind, ev.seq) for ev in jr.events(new)]
        assert jr.events(new)[0].data == {"inherited": {"a/create": "k1"}}
