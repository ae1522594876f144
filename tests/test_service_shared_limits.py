"""Runs side by side in one server share the controllers' concurrency and the runtime guards:
two runs on disjoint resources never have more calls in flight at a controller than its
concurrency, and a guard's budget counts the operations of both."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from executor.controllers.simulated import read_ledger, read_world
from executor.journal import Journal
from service.engine import LocalEngine, Submission

LATENCY = 0.3


def lab(name: str, networks: int) -> dict:
    """A request disjoint from the vFW's and from other labs: a service with its own networks."""
    return {"services": {name: {"networks": [{"name": f"{name}-net{i}", "params": {"cidr": f"10.{i}.0.0/24"}}
                                             for i in range(networks)]}}}


def run_side_by_side(project: Path, *requests: dict) -> list[int]:
    """The runs of ``requests``, submitted at once to one server's engine, carried to their end. Calls
    to SDN-C (assign, activate) take LATENCY; the cloud's (create) next to nothing."""
    simulation = project / "sim.yaml"
    simulation.write_text(yaml.safe_dump({"seed": 1, "latency": {"default": LATENCY, "create": 0.01}}))
    engine = LocalEngine(project, simulation=simulation)
    engine.start()
    try:
        runs = [engine.submit(Submission(request=r), "test").run for r in requests]
        deadline = time.monotonic() + 120
        while any(engine.driving(run) for run in runs):
            assert time.monotonic() < deadline, [engine.run(run).effective_status for run in runs]
            time.sleep(0.05)
        return runs
    finally:
        engine.shutdown(30)


def set_controller(project: Path, name: str, concurrency: int) -> None:
    path = project / "catalog.yaml"
    catalog = yaml.safe_load(path.read_text())
    catalog["controllers"][name]["concurrency"] = concurrency
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))


def test_two_runs_at_once_never_overlap_at_a_controller_of_concurrency_one(vfw_copy: Path) -> None:
    set_controller(vfw_copy, "sdnc", 1)
    runs = run_side_by_side(vfw_copy, lab("lab-a", 3), lab("lab-b", 3))
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert [jr.run(run).status for run in runs] == ["complete", "complete"]
        held = [ev.data for run in runs for ev in jr.events(run) if ev.kind == "guard-denied"]
        assert jr._store.execute("SELECT count(*) FROM slots").fetchone()[0] == 0  # every slot given back
    calls = [row for row in read_ledger(vfw_copy / ".ordo" / "simulated-world.db") if row["controller"] == "sdnc"]
    assert {row["run"] for row in calls} == {str(run) for run in runs} and len(calls) == 12  # assign, activate x 6
    # each call takes LATENCY before it is applied (`at`): one at a time, the applications are that far apart
    ends = sorted(row["at"] for row in calls)
    gaps = [round(b - a, 3) for a, b in zip(ends, ends[1:], strict=False)]
    assert min(gaps) >= LATENCY * 0.9, gaps
    assert any(d["guard_kind"] == "concurrency" and d["guard"] == "concurrency of sdnc" for d in held), held


def test_a_guard_budget_counts_the_operations_of_both_runs(vfw_copy: Path) -> None:
    """At most 2 networks (onap-mgmt-net is one): each run alone may create its network, not both."""
    (vfw_copy / "guards.yaml").write_text(yaml.safe_dump({"guards": [{
        "name": "two-networks", "kind": "max_instances", "type": "network", "max": 2, "on_deny": "fail"}]}))
    runs = run_side_by_side(vfw_copy, lab("lab-a", 1), lab("lab-b", 1))
    world = read_world(vfw_copy / ".ordo" / "simulated-world.db")
    made = [name for name in ("lab-a-net0", "lab-b-net0") if world.get(name, {}).get("state") not in (None, "absent")]
    assert len(made) == 1, world
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        denied = [(run, ev.data["guard"]) for run in runs for ev in jr.events(run) if ev.kind == "guard-denied"]
        statuses = sorted(jr.run(run).status for run in runs)
    assert [guard for _, guard in denied] == ["two-networks"], denied
    assert statuses[0] == "complete" and statuses[1] != "complete", statuses
