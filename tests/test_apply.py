"""The executor carrying plans out: through the Python API and `ordo apply`.

Every run here is against the simulated controller with no (or tiny)
latency; the world's file (PROJECT/.ordo/simulated-world.db) is the truth of
what was applied, the journal (PROJECT/.ordo/journal.db) what ordo recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import yaml

from domain.project import Project, load_project
from executor.controllers.simulated import read_ledger, read_world
from executor.engine import ApplyOptions, Executor, RunResult
from executor.journal import Event, Journal, NoJournal, default_path
from planner.core import make_plan
from planner.plan import Plan
from tests.conftest import VFW, ordo_env, ordo_executable, run_ordo

SMOOTH = {"seed": 1, "latency": 0}
REFUSED_REGION_TWO = {"seed": 7, "latency": 0, "faults": [
    {"target": "region-two", "operation": "create", "error": "refused",
     "message": "region-two: quota exceeded for instances"}]}
REFUSED_TWO_AND_THREE = {"seed": 11, "latency": 0, "faults": [
    {"target": ["region-two", "region-three"], "operation": "create", "error": "refused"}]}
VFW_RESOURCES = {"vfw-service", "unprotected-net", "protected-net", "vpg", "vpg-base", "vsink", "vsink-base",
                 "vfw", "vfw-logs", "vfw-base"}


# --- helpers --------------------------------------------------------------------


def scenario(where: Path, data: dict[str, Any], name: str = "scenario.yaml") -> Path:
    path = where / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def world_file(project: Path) -> Path:
    return project / ".ordo" / "simulated-world.db"


def world(project: Path) -> dict[str, dict[str, Any]]:
    return read_world(world_file(project))


def ledger(project: Path) -> list[dict[str, Any]]:
    return read_ledger(world_file(project))


def events(project: Path, run: int = 1) -> list[Event]:
    with Journal(default_path(project), create=False) as jr:
        return jr.events(run)


def status(project: Path, run: int = 1) -> str:
    with Journal(default_path(project), create=False) as jr:
        return jr.run(run).effective_status


def journal_state(project: Path) -> dict[str, Any]:
    with Journal(default_path(project), create=False) as jr:
        return jr.state()


def kinds(evs: Iterable[Event]) -> list[str]:
    return [ev.kind for ev in evs]


def first_plan(evs: list[Event]) -> Plan:
    return Plan.from_json(next(ev for ev in evs if ev.kind == "plan").data["plan"])


def set_retry(project: Path, **retry: Any) -> None:
    """Give every controller of the project's catalog this retry policy."""
    path = project / "catalog.yaml"
    catalog = yaml.safe_load(path.read_text())
    for spec in catalog["controllers"].values():
        spec["retry"] = dict(retry)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))


def max_in_flight(evs: list[Event], key: Callable[[Event], Iterable[str]] = lambda ev: ["all"]) -> dict[str, int]:
    """Most operations in flight at once, per key, in journal order.

    An intent is committed before its call starts and the result (retry,
    failure) after it ended, so the interval between them contains the call:
    this is an upper bound on what really ran at once.
    """
    now: dict[str, int] = {}
    most: dict[str, int] = {}
    started: dict[str, Event] = {}
    for ev in sorted(evs, key=lambda e: e.seq):
        if ev.kind == "intent":
            started[ev.op] = ev
            for k in key(ev):
                now[k] = now.get(k, 0) + 1
                most[k] = max(most.get(k, 0), now[k])
        elif ev.kind in ("result", "retry", "failed") and ev.op in started:
            for k in key(started.pop(ev.op)):
                now[k] -= 1
    assert not started, f"calls without an end: {sorted(started)}"
    return most


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def has_event(project: Path, kind: str, run: int = 1) -> bool:
    path = default_path(project)
    if not path.exists():
        return False
    try:
        with Journal(path, create=False) as jr:
            return bool(jr.runs()) and jr.has_event(run, kind)
    except NoJournal:   # the apply is making it
        return False


def start_ordo(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([ordo_executable(), *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ordo_env())


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"ordo did not end:\n{out}\n{err}") from None
    return proc.returncode, out + err


def loader_for(project: Project, journal: Path) -> Callable[[list], Project]:
    def load(observed: list) -> Project:
        return load_project(project.root, project.request_path, project.inventory_file,
                            project.extra_policy_files, observed=observed, observed_name=".ordo/journal.db")
    return load


def api_apply(root: Path, simulation: dict[str, Any], **options: Any) -> tuple[RunResult, list[Event]]:
    """`ordo apply --auto-approve` through the Python API: plan, then carry it out."""
    project = load_project(root)
    outcome = make_plan(project)
    assert outcome.plan is not None, outcome.status
    path = default_path(project.root)
    with Journal(path) as jr:
        executor = Executor(jr, loader_for(project, path), options=ApplyOptions(simulation=simulation, **options))
        try:
            result = executor.apply(project, outcome.plan)
        finally:
            executor.close()
        return result, jr.events(result.run)


def assert_all_active(project: Path) -> None:
    found = world(project)
    assert {name: found[name]["state"] for name in VFW_RESOURCES} == dict.fromkeys(VFW_RESOURCES, "active")


# --- the happy path ----------------------------------------------------------------


def test_apply_vfw_then_nothing_left_to_do(vfw_copy, tmp_path):
    sim = scenario(tmp_path, SMOOTH)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created, 0 changed, 0 deleted." in run.out
    assert "Traceback" not in run.text
    # outputs are shown on the result lines (not swallowed as markup)
    assert "unprotected-net/create: done after" in run.out and "[network_id=network-" in run.out
    assert_all_active(vfw_copy)
    found = world(vfw_copy)
    assert found["vfw"]["target"] == "region-two" and found["vpg"]["target"] == "region-one"
    assert len(ledger(vfw_copy)) == 32

    # What the run did counts as observed: nothing left to do.
    again = run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode")
    assert again.code == 0, again.text
    assert "No changes." in again.out
    state = journal_state(vfw_copy)
    assert {name: rec.state for name, rec in state.items()} == dict.fromkeys(VFW_RESOURCES, "active")
    assert state["vfw"].placement == "region-two"

    history = run_ordo("history", "-C", vfw_copy, "--json")
    assert history.code == 0, history.text
    runs = json.loads(history.out)
    assert [(r["run"], r["status"]) for r in runs] == [(1, "complete")]
    assert runs[0]["summary"]["created"] == 10 and runs[0]["summary"]["operations"] == 32
    # times as the service gives them, RFC 3339 in UTC ("2026-12-07 09:29:30" said no zone: the CLI sweep)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", runs[0]["started"]), runs[0]

    show = run_ordo("show", "1", "-C", vfw_copy)
    assert show.code == 0, show.text
    assert "Run 1: requests/instantiate.yaml, complete" in show.out
    assert "run started: requests/instantiate.yaml" in show.out
    assert "plan 1: 32 operations (initial)" in show.out
    assert "intent   vfw-service/assign attempt 1 on so" in show.out
    assert "result   vfw/activate -> active" in show.out
    assert "ended complete: 10 created, 0 changed, 0 deleted." in show.out

    # Applying again finds nothing to do and starts no run.
    again = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim)
    assert again.code == 0, again.text
    assert "No changes." in again.out
    with Journal(default_path(vfw_copy), create=False) as jr:
        assert jr.last_run() == 1


def test_data_passes_from_producers_to_consumers(vfw_copy):
    result, evs = api_apply(vfw_copy, SMOOTH)
    assert result.status == "complete", result.reason
    rows = {(row["resource"], row["operation"]): row for row in ledger(vfw_copy)}
    stack = rows[("vfw-base", "create")]["inputs"]
    assert stack["unprotected_net_id"] == rows[("unprotected-net", "create")]["outputs"]["network_id"]
    assert stack["protected_net_id"] == rows[("protected-net", "create")]["outputs"]["network_id"]
    assert stack["mgmt_net_id"] == "net-0001"      # observed in the inventory, not created by the run
    assert stack["unprotected_net_id"] != stack["protected_net_id"]
    # The journal's intent records the same resolved inputs, and the result the outputs.
    intent = next(ev for ev in evs if ev.kind == "intent" and ev.op == "vfw-base/create")
    assert intent.data["inputs"] == stack
    produced = next(ev for ev in evs if ev.kind == "result" and ev.op == "unprotected-net/create")
    assert produced.data["outputs"]["network_id"] == stack["unprotected_net_id"]
    # and the records the next plan starts from carry them
    state = journal_state(vfw_copy)
    assert state["unprotected-net"].attributes["network_id"] == stack["unprotected_net_id"]
    assert state["vfw-base"].attributes["mgmt_net_id"] == "net-0001"


# --- references checked at plan time ------------------------------------------------


def _add_line_after(path: Path, anchor: str, new: str) -> int:
    """Insert ``new`` after the line holding ``anchor``; the new line's number."""
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if anchor in line)
    lines.insert(index + 1, new + "\n")
    path.write_text("".join(lines))
    return index + 2


def test_unknown_output_is_a_plan_time_error_with_file_and_line(vfw_copy):
    request = vfw_copy / "requests" / "instantiate.yaml"
    line = _add_line_after(request, "mgmt_net_id:", "              bogus: ${vpg.outputs.nothing}")
    for command in ("plan", "apply"):
        run = run_ordo(command, "-C", vfw_copy, "--auto-approve" if command == "apply" else "--detailed-exitcode")
        assert run.code == 1, run.text
        assert f"requests/instantiate.yaml:{line}:" in run.err
        assert "'vpg' (vnf) has no output 'nothing'" in run.err
        assert "Traceback" not in run.text
    assert not default_path(vfw_copy).exists()


def test_producer_neither_created_nor_observed_is_a_plan_time_error(vfw_copy):
    request = vfw_copy / "requests" / "instantiate.yaml"
    text = request.read_text()
    text = text.replace("      - name: protected-net\n",
                        "      - name: spare-net\n        state: assigned\n      - name: protected-net\n")
    request.write_text(text)
    line = _add_line_after(request, "- name: vpg ", "        params: { spare: '${spare-net.outputs.network_id}' }")
    run = run_ordo("plan", "-C", vfw_copy)
    assert run.code == 1, run.text
    assert f"requests/instantiate.yaml:{line}:" in run.err
    assert "reads ${spare-net.outputs.network_id}, which has no value" in run.err
    assert "'create' operation is not in this plan" in run.err
    assert "Traceback" not in run.text


def test_a_param_edited_to_read_a_new_output_is_sent_by_an_update(vfw_copy, tmp_path):
    """An existing network's param edited to read the id of a network the same request adds: the plan
    updates it once that id is known, and the world has it. The plan used to create the new network
    only, and say so; the param was never sent, and the next plan found nothing to change."""
    sim = scenario(tmp_path, SMOOTH)
    assert run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim).code == 0
    request = vfw_copy / "requests" / "instantiate.yaml"
    request.write_text(request.read_text().replace(
        "        params: { cidr: 192.168.20.0/24 }\n",
        "        params: { cidr: 192.168.20.0/24, peer: '${extra-net.outputs.network_id}' }\n"
        "      - name: extra-net\n        params: { cidr: 192.168.30.0/24 }\n", 1))
    saved = vfw_copy / "plan.json"
    run = run_ordo("plan", "-C", vfw_copy, "--out", saved)
    assert run.code == 0, run.text
    assert "update" in run.out and "params changed: peer" in saved.read_text()
    plan = Plan.from_json(saved.read_text())
    assert nx.has_path(nx.DiGraph([(e.before, e.after) for e in plan.edges]),
                       "extra-net/create", "protected-net/update")
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim)
    assert run.code == 0 and "1 created, 1 changed, 0 deleted" in run.out, run.text
    found = world(vfw_copy)
    assert found["protected-net"]["attributes"]["peer"] == found["extra-net"]["attributes"]["network_id"]
    again = run_ordo("plan", "-C", vfw_copy)
    assert again.code == 0 and "No changes." in again.out, again.text


def test_a_recorded_param_that_reads_an_output_is_compared_with_that_output_now():
    """What a journal record of a resource at its goal holds of a param that reads an output, against
    that output as observed now: a record lacking it was never sent it. An inventory file's entry may
    leave its params out (inventory-deployed.yaml does): only what it holds is compared. A secret output
    known only by its fingerprint cannot be compared."""
    from domain.formats import ObservedResource
    from domain.secrets import fingerprint

    deployed = yaml.safe_load((VFW / "inventory-deployed.yaml").read_text())["resources"]
    entry = {r["name"]: r for r in deployed}
    sent = {"unprotected_net_id": "net-0002", "protected_net_id": "net-0003", "mgmt_net_id": "net-0001"}

    def base(**attributes: Any) -> ObservedResource:
        return ObservedResource.model_validate({**entry["vfw-base"], "attributes": attributes})

    def changed(*observed: ObservedResource) -> list[str]:
        project = load_project(VFW, VFW / "requests" / "instantiate.yaml", VFW / "inventory-deployed.yaml",
                               observed=list(observed))
        return project.model.resources["vfw-base"].changed_params()

    assert changed() == []
    assert changed(base(**sent)) == []
    assert changed(base(**{**sent, "protected_net_id": "net-0009"})) == ["protected_net_id"]
    assert changed(base(unprotected_net_id="net-0002")) == ["mgmt_net_id", "protected_net_id"]
    secret = ObservedResource.model_validate(
        {**entry["protected-net"], "attributes": {"network_id": fingerprint("net-0003")}})
    assert changed(base(**{**sent, "protected_net_id": fingerprint("net-0003")}), secret) == []
    # never sent (the record lacks it), whatever the output is now: a fingerprint too (the review of 6 December)
    assert changed(base(**{k: v for k, v in sent.items() if k != "protected_net_id"}), secret) == ["protected_net_id"]
    # hidden by the journal's masking (a value seen under a secret key elsewhere): not compared, never resent
    masked = ObservedResource.model_validate({**entry["protected-net"], "attributes": {"network_id": "***"}})
    assert changed(base(**sent), masked) == []
    assert changed(base(**{**sent, "protected_net_id": "***"})) == []
    # an output neither observed nor to come (the producer is at its goal): no update could send it
    unknown = ObservedResource.model_validate({**entry["protected-net"], "attributes": {"cidr": "192.168.20.0/24"}})
    assert changed(base(**sent), unknown) == []


# --- failures and re-planning ----------------------------------------------------------


def test_refused_region_replans_onto_another(vfw_copy, tmp_path):
    # The example's scenario (region-two refuses stacks, one answer is lost), without its latencies.
    example = yaml.safe_load((VFW / "simulations" / "region-two-refuses.yaml").read_text())
    assert {f["error"] for f in example["faults"]} == {"refused", "lost"}
    sim = scenario(tmp_path, {**example, "latency": 0, "jitter": 0})
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created, 0 changed, 0 deleted; 1 re-plan." in run.out
    assert "Re-planned (plan 2" in run.out and "vfw: region-two -> region-three" in run.out
    assert_all_active(vfw_copy)
    found = world(vfw_copy)
    assert found["vfw"]["target"] == "region-three"
    assert journal_state(vfw_copy)["vfw"].placement == "region-three"

    evs = events(vfw_copy)
    seen = kinds(evs)
    for kind in ("failed", "observed", "learnt", "replan"):
        assert kind in seen, kind
    assert seen.index("failed") < seen.index("observed") < seen.index("learnt") < seen.index("replan")
    failed = next(ev for ev in evs if ev.kind == "failed")
    assert failed.data["scope"] == "target" and "region-two: quota exceeded" in failed.data["error"]
    learnt = next(ev for ev in evs if ev.kind == "learnt")
    assert ["refused", "region-two"] in learnt.data["facts"]
    assert ["failed", failed.op.split("/")[0], failed.op.split("/")[1]] in learnt.data["facts"]
    assert status(vfw_copy) == "complete"

    # The half-built vFW was torn down where it was, and built again on region-three.
    rows = ledger(vfw_copy)
    assert not any(row["operation"] == "create" and row["target"] == "region-two" for row in rows)
    torn = [row for row in rows if row["resource"] == "vfw" and row["to_state"] == "absent"]
    assert torn and all(row["target"] == "region-two" for row in torn)
    assert all(row["target"] == "region-three" for row in rows
               if row["resource"] in ("vfw", "vfw-logs", "vfw-base") and row["operation"] in ("create", "activate"))
    # every key applied once, the lost answer's operation too
    assert len({row["key"] for row in rows}) == len(rows)
    assert sum(row["resource"] == "protected-net" and row["operation"] == "activate" for row in rows) == 1


def test_answer_lost_before_a_replan_is_observed_before_planning_again(vfw_copy):
    # protected-net/activate's answer is lost (applied, then an error) and its
    # retry is not due before region-two refuses vfw-logs/create. Before
    # planning again, ordo observes it: it is active, so plan 2 does not send
    # it again, and it is applied exactly once.
    sim = {"seed": 7, "latency": {"default": 0, "volume-group/assign": 0.1}, "faults": [
        *REFUSED_REGION_TWO["faults"],
        {"resource": "protected-net", "operation": "activate", "error": "lost", "times": 1}]}
    result, evs = api_apply(vfw_copy, sim)
    assert result.status == "complete", result.reason
    assert result.summary["replans"] == 1
    rows = [row for row in ledger(vfw_copy) if row["resource"] == "protected-net" and row["operation"] == "activate"]
    assert len(rows) == 1
    replan = next(i for i, ev in enumerate(evs) if ev.kind == "replan")
    observed = [ev for ev in evs[:replan] if ev.kind == "observed" and ev.data.get("resource") == "protected-net"]
    assert observed and observed[-1].data["state"] == "active"
    later = [ev for ev in evs[replan:] if ev.kind == "intent" and ev.op == "protected-net/activate"]
    assert later == []
    assert_all_active(vfw_copy)


def test_fallout_explains_then_resumes_once_fixed(vfw_copy, tmp_path):
    sim = scenario(tmp_path, REFUSED_TWO_AND_THREE)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim)
    assert run.code == 3, run.text
    assert "Apply fell out:" in run.out
    assert "No plan exists" in run.out
    assert "avoid-refused-targets (<library>/avoid-refused-targets.lp:" in run.out
    assert "Fix the cause, then `ordo resume 1`; or `ordo abort 1`." in run.out
    assert "Traceback" not in run.text
    history = json.loads(run_ordo("history", "-C", vfw_copy, "--json").out)
    assert [(r["run"], r["status"]) for r in history] == [(1, "fallout")]
    learnt = [f for ev in events(vfw_copy) if ev.kind == "learnt" for f in ev.data["facts"]]
    assert ["refused", "region-two"] in learnt and ["refused", "region-three"] in learnt
    assert "no-plan" in kinds(events(vfw_copy))

    # The cause is fixed: the regions take stacks again.
    fixed = scenario(tmp_path, SMOOTH, "fixed.yaml")
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--simulation", fixed)
    assert resumed.code == 0, resumed.text
    assert "Apply complete:" in resumed.out
    assert_all_active(vfw_copy)
    assert status(vfw_copy) == "complete"
    again = run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode")
    assert again.code == 0, again.text
    # A completed run cannot be resumed.
    twice = run_ordo("resume", "1", "-C", vfw_copy)
    assert twice.code == 1 and "run 1 cannot be resumed: it completed" in twice.err


@pytest.mark.slow
def test_transient_failures_converge_and_apply_each_operation_once(vfw_copy):
    set_retry(vfw_copy, initial_interval=0.001, max_interval=0.005, attempts=8)
    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    assert plan is not None
    expected = sorted((op.resource, op.operation) for op in plan.operations)
    retried = 0
    for seed in range(6):
        journal = vfw_copy / f"journal-{seed}.db"
        sim = {"seed": seed, "latency": 0, "transient_rate": 0.2, "world": f"world-{seed}.db"}
        with Journal(journal) as jr:
            executor = Executor(jr, loader_for(project, journal), options=ApplyOptions(simulation=sim))
            try:
                result = executor.apply(project, plan)
            finally:
                executor.close()
            evs = jr.events(result.run)
        assert result.status == "complete", (seed, result.reason)
        # (once in a loaded full run, a seed re-planned: what failed for good says why, next time)
        assert result.summary["replans"] == 0, (seed, [(ev.kind, ev.op, ev.data) for ev in evs
                                                       if ev.kind in ("failed", "replan", "timeout")])
        retried += kinds(evs).count("retry")
        rows = read_ledger(vfw_copy / f"world-{seed}.db")
        assert sorted((row["resource"], row["operation"]) for row in rows) == expected, seed
    assert retried > 6 * 32 * 0.1      # about one attempt in five failed


def test_transient_failures_exhausted_count_as_permanent(vfw_copy):
    set_retry(vfw_copy, initial_interval=0.001, attempts=3)
    # Five failures: three attempts in plan 1 (then it counts as failed for
    # good), the re-plan sends it again and it goes through at its third attempt.
    sim = {"seed": 1, "latency": 0, "faults": [
        {"resource": "vfw-logs", "operation": "create", "error": "transient", "times": 5}]}
    result, evs = api_apply(vfw_copy, sim)
    assert result.status == "complete", result.reason
    assert result.summary["replans"] == 1
    ops = [(ev.kind, ev.data.get("attempt")) for ev in evs if ev.op == "vfw-logs/create"
           and ev.kind in ("retry", "failed", "result")]
    assert ops == [("retry", 1), ("retry", 2), ("failed", 3), ("retry", 1), ("retry", 2), ("result", 3)]
    failed = next(ev for ev in evs if ev.kind == "failed")
    assert failed.data["transient"] and "(after 3 attempts)" in failed.data["error"]
    assert ["failed", "vfw-logs", "create"] in next(ev for ev in evs if ev.kind == "learnt").data["facts"]
    assert_all_active(vfw_copy)


def test_on_failure_stop_leaves_a_resumable_failed_run(vfw_copy, tmp_path):
    set_retry(vfw_copy, initial_interval=0.001, attempts=3)
    sim = scenario(tmp_path, {"seed": 1, "latency": 0, "faults": [
        {"resource": "vfw-logs", "operation": "create", "error": "transient", "times": 3}]})
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim, "--on-failure", "stop")
    assert run.code == 1, run.text
    assert "Apply failed:" in run.out and "vfw-logs/create failed" in run.out
    assert "Fix the cause, then `ordo resume 1`" in run.out
    assert status(vfw_copy) == "failed"
    assert "replan" not in kinds(events(vfw_copy))
    assert world(vfw_copy)["vfw-logs"]["state"] == "assigned"
    # The fault has spent its hits (it was transient after all): resume completes.
    resumed = run_ordo("resume", "1", "-C", vfw_copy)
    assert resumed.code == 0, resumed.text
    assert status(vfw_copy) == "complete"
    assert_all_active(vfw_copy)
    assert len(ledger(vfw_copy)) == 32


def test_on_failure_rollback_returns_to_the_state_before_the_run(vfw_copy, tmp_path):
    before = world(vfw_copy) if world_file(vfw_copy).exists() else {}
    assert before == {}
    sim = scenario(tmp_path, {"seed": 1, "latency": 0, "faults": [
        {"resource": "vfw-base", "operation": "create", "error": "permanent"}]})
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim, "--on-failure", "rollback")
    assert run.code == 1, run.text
    assert "Apply rolled back:" in run.out
    assert status(vfw_copy) == "rolled_back"
    found = world(vfw_copy)
    assert found["onap-mgmt-net"]["state"] == "active"          # was there before: untouched
    touched = {row["resource"] for row in ledger(vfw_copy)}
    assert touched and "onap-mgmt-net" not in touched
    assert {name: found[name]["state"] for name in touched} == dict.fromkeys(touched, "absent")
    state = journal_state(vfw_copy)
    assert all(state[name].state == "absent" for name in touched)
    replans = [ev for ev in events(vfw_copy) if ev.kind == "replan"]
    assert len(replans) == 1 and replans[0].data["mode"] == "rollback"


def test_after_a_rollback_the_request_can_be_planned_again(vfw_copy):
    sim = {"seed": 1, "latency": 0, "faults": [{"resource": "vfw-base", "operation": "create", "error": "permanent"}]}
    result, _ = api_apply(vfw_copy, sim, on_failure="rollback")
    assert result.status == "rolled_back"
    run = run_ordo("plan", "-C", vfw_copy)
    assert run.code == 0, run.text


# --- saved plans, confirmation, JSON ---------------------------------------------------


def test_saved_plan_applies_and_is_refused_once_stale(vfw_copy, tmp_path):
    sim = scenario(tmp_path, SMOOTH)
    stale = tmp_path / "stale.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", stale).code == 0
    catalog = vfw_copy / "catalog.yaml"
    catalog.write_text(catalog.read_text() + "\n# a comment is a change too\n")
    run = run_ordo("apply", "-C", vfw_copy, stale, "--auto-approve", "--simulation", sim)
    assert run.code == 1, run.text
    assert "the plan is stale: catalog.yaml changed since it was made; plan again" in run.err
    assert "Traceback" not in run.text

    saved = tmp_path / "saved.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    request = vfw_copy / "requests" / "instantiate.yaml"
    request.write_text(request.read_text().replace("size_gb: 20", "size_gb: 40"))
    run = run_ordo("apply", "-C", vfw_copy, saved, "--auto-approve", "--simulation", sim)
    assert run.code == 1, run.text
    assert "requests/instantiate.yaml changed since it was made" in run.err
    assert "Traceback" not in run.text
    assert not default_path(vfw_copy).exists() and not world_file(vfw_copy).exists()

    fresh = tmp_path / "fresh.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", fresh).code == 0
    run = run_ordo("apply", "-C", vfw_copy, fresh, "--auto-approve", "--simulation", sim)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created" in run.out
    assert world(vfw_copy)["vfw-logs"]["attributes"]["size_gb"] == 40
    assert first_plan(events(vfw_copy)).digest == json.loads(fresh.read_text())["digest"]


def test_apply_without_a_terminal_needs_auto_approve(vfw_copy, tmp_path):
    sim = scenario(tmp_path, SMOOTH)
    run = run_ordo("apply", "-C", vfw_copy, "--simulation", sim)  # stdin is not a terminal
    assert run.code == 1, run.text
    assert "not a terminal, so there is no one to confirm: pass --auto-approve" in run.err
    assert "Traceback" not in run.err
    assert not default_path(vfw_copy).exists() and not world_file(vfw_copy).exists()


def test_json_stream(vfw_copy, tmp_path):
    sim = scenario(tmp_path, SMOOTH)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--json", "--simulation", sim)
    assert run.code == 0, run.text
    lines = run.out.splitlines()
    assert lines
    bodies = [json.loads(line) for line in lines]
    seen = [body["kind"] for body in bodies]
    for kind in ("run-started", "plan", "intent", "result", "run-ended"):
        assert kind in seen, kind
    assert seen[0] == "run-started" and seen[-1] == "run-ended"
    assert seen.count("intent") == seen.count("result") == 32
    assert [body["seq"] for body in bodies] == sorted(body["seq"] for body in bodies)
    plan = next(body for body in bodies if body["kind"] == "plan")
    assert plan["operations"] == 32 and plan["placements"]["vfw"] == "region-two" and "plan" not in plan
    assert bodies[-1]["status"] == "complete" and bodies[-1]["created"] == 10
    assert "Apply complete" not in run.out


# --- limits ---------------------------------------------------------------------------


def test_global_and_per_controller_concurrency_limits(vfw_copy, tmp_path):
    sim = scenario(tmp_path, {"seed": 1, "latency": 0.05})
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim, "--concurrency", "2")
    assert run.code == 0, run.text
    evs = events(vfw_copy)
    assert max_in_flight(evs) == {"all": 2}
    assert first_plan(evs).concurrency == 2

    # The project's limit (10) with the catalog's per-controller limits: cds 2, openstack 3.
    project = tmp_path / "unlimited"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    # (calls of 0.2 s: at 0.05 s, on a slow machine, openstack's third call had not started as the first ended)
    slower = scenario(tmp_path, {"seed": 1, "latency": 0.2}, "slower.yaml")
    run = run_ordo("apply", "-C", project, "--auto-approve", "--simulation", slower)
    assert run.code == 0, run.text
    evs = events(project)
    per_controller = max_in_flight(evs, key=lambda ev: [ev.data["controller"]])
    assert per_controller["cds"] <= 2 and per_controller["openstack"] <= 3, per_controller
    assert per_controller["sdnc"] <= 4 and per_controller["so"] <= 10, per_controller
    assert per_controller["cds"] == 2 and per_controller["openstack"] == 3, per_controller
    assert max_in_flight(evs)["all"] > 3


def test_concurrency_group_from_a_policy(vfw_copy, tmp_path):
    policy = vfw_copy / "policies" / "one-per-region.lp"
    policy.write_text("% one operation per region at a time\n"
                      "group(R,T) :- located(R,T).\ngroup_limit(T,1) :- target(T).\n")
    sim = scenario(tmp_path, {"seed": 1, "latency": 0.01})
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim, "--policy", policy)
    assert run.code == 0, run.text
    evs = events(vfw_copy)
    plan = first_plan(evs)
    assert plan.groups
    assert {g.name for g in plan.groups} == {"region-one", "region-two"}
    assert all(g.limit == 1 for g in plan.groups)
    group_of = {oid: g.name for g in plan.groups for oid in g.operations}
    assert group_of["vfw-base/create"] == "region-two" and group_of["vpg/assign"] == "region-one"
    most = max_in_flight(evs, key=lambda ev: [group_of[ev.op]] if ev.op in group_of else [])
    assert most == {"region-one": 1, "region-two": 1}
    assert max_in_flight(evs)["all"] > 1          # the groups limit only themselves
    # The ledger agrees: every operation of a group carries the group's target.
    for row in ledger(vfw_copy):
        oid = f"{row['resource']}/{row['operation']}"
        if oid in group_of:
            assert row["target"] == group_of[oid], row


def test_a_group_limit_under_one_is_read_as_one_and_said(vfw_copy):
    """group_limit(T,0) would let nothing of the group run: it is read as 1, and the plan says so (it was silent)."""
    policy = vfw_copy / "policies" / "none-per-region.lp"
    policy.write_text("% nothing per region at a time?\ngroup(R,T) :- located(R,T).\ngroup_limit(T,0) :- target(T).\n"
                      'group_limit("region-one",-2).\n')
    run = run_ordo("plan", "-C", vfw_copy, "--policy", policy)
    assert run.code == 0, run.text
    for group, value in (("region-one", -2), ("region-three", 0), ("region-two", 0)):
        assert (f"\nWarning: concurrency group '{group}' has group_limit {value}: a group runs at least one operation "
                "at a time, so it is read as 1\n") in run.err, run.err


# --- stopping a run ------------------------------------------------------------------


HUNG = "vfw-base/create"


def start_hanging_apply(project: Path, tmp_path: Path, op_timeout: float = 0.3) -> subprocess.Popen:
    """`ordo apply` in its own process, in a run that cannot end by itself:
    vfw-base/create hangs at every attempt (each given up on after ``op_timeout``
    seconds, then observed and sent again). Returns once that call is in flight."""
    set_retry(project, initial_interval=0.01, max_interval=0.05, attempts=100000)
    sim = scenario(tmp_path, {"seed": 1, "latency": 0, "faults": [
        {"resource": "vfw-base", "operation": "create", "error": "hang", "times": 100000}]})
    proc = start_ordo("apply", "-C", project, "--auto-approve", "--simulation", sim, "--op-timeout", str(op_timeout))
    try:
        wait_for(lambda: has_event(project, "intent") and any(
            ev.kind == "intent" and ev.op == HUNG for ev in events(project)), what=f"{HUNG} to start")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def assert_stopped_with_nothing_in_flight(project: Path) -> None:
    """Every call has its end (a result, retry or failure); the hung one never succeeded."""
    evs = events(project)
    assert max_in_flight(evs)["all"] >= 1
    results = [ev.op for ev in evs if ev.kind == "result"]
    assert HUNG not in results and len(results) < 32
    assert len(ledger(project)) == len(results)


@pytest.mark.slow
def test_abort_a_running_apply(vfw_copy, tmp_path):
    # The run cannot end before the abort arrives, and ends soon after it.
    proc = start_hanging_apply(vfw_copy, tmp_path)
    try:
        assert status(vfw_copy) == "running"
        aborted = run_ordo("abort", "1", "-C", vfw_copy)
        assert aborted.code == 0, aborted.text
        assert "Abort requested: run 1" in aborted.out
        code, text = finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 1, text
    # the run's own screen says so, and who asked (it said nothing of an abort from another process)
    assert f"Abort requested (pid {os.getpid()}): finishing operations in flight" in text, text
    assert "Apply aborted:" in text
    assert status(vfw_copy) == "aborted"
    evs = events(vfw_copy)
    assert "abort-requested" in kinds(evs) and kinds(evs)[-1] == "run-ended"
    assert_stopped_with_nothing_in_flight(vfw_copy)
    again = run_ordo("abort", "1", "-C", vfw_copy)
    assert again.code == 1 and "run 1 is aborted: there is nothing to abort" in again.err
    resumed = run_ordo("resume", "1", "-C", vfw_copy)
    assert resumed.code == 1 and "cannot be resumed: it was aborted" in resumed.err


def test_abort_closes_a_fallen_out_run(vfw_copy, tmp_path):
    sim = scenario(tmp_path, REFUSED_TWO_AND_THREE)
    assert run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim).code == 3
    run = run_ordo("abort", "1", "-C", vfw_copy)
    assert run.code == 0, run.text
    assert "Run 1 aborted (it was fallout); nothing was undone." in run.out
    assert status(vfw_copy) == "aborted"
    history = json.loads(run_ordo("history", "-C", vfw_copy, "--json").out)
    assert history[0]["status"] == "aborted"
    resumed = run_ordo("resume", "1", "-C", vfw_copy)
    assert resumed.code == 1 and "it was aborted" in resumed.err
    # A new run may start.
    fixed = scenario(tmp_path, SMOOTH, "fixed.yaml")
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", fixed)
    assert run.code == 0, run.text
    assert "Apply complete:" in run.out and status(vfw_copy, 2) == "complete"
    assert_all_active(vfw_copy)


@pytest.mark.slow
@pytest.mark.parametrize(("sent", "said"), [(signal.SIGINT, "Stopping:"), (signal.SIGTERM, "Stopping (SIGTERM):")])
def test_ctrl_c_drains_then_resume_completes(vfw_copy, tmp_path, sent, said):
    """Ctrl-C, or SIGTERM as a service manager or a container's end sends it, drains the run."""
    proc = start_hanging_apply(vfw_copy, tmp_path)  # Ctrl-C is the only way out
    try:
        proc.send_signal(sent)
        code, text = finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 130, text
    assert f"{said} letting the operations in flight finish" in text
    assert "`ordo resume 1` carries it on; or `ordo abort 1`." in text and "Fix the cause" not in text
    assert "Apply interrupted:" in text
    assert "Traceback" not in text
    assert status(vfw_copy) == "interrupted"
    assert_stopped_with_nothing_in_flight(vfw_copy)

    fast = scenario(tmp_path, SMOOTH, "fast.yaml")
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--simulation", fast)
    assert resumed.code == 0, resumed.text
    assert "Apply complete: 10 created, 0 changed, 0 deleted." in resumed.out
    assert status(vfw_copy) == "complete"
    assert_all_active(vfw_copy)
    rows = ledger(vfw_copy)
    assert len(rows) == 32 and len({(r["resource"], r["operation"]) for r in rows}) == 32


@pytest.mark.slow
def test_an_apply_while_a_run_is_in_progress_is_refused_before_it_plans(vfw_copy, tmp_path):
    """It planned and printed a whole plan (from the half-done state) before it was refused."""
    proc = start_hanging_apply(vfw_copy, tmp_path)
    try:
        second = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario(tmp_path, SMOOTH,
                                                                                                "fast.yaml"))
    finally:
        proc.kill()
        proc.communicate()
    assert second.code == 1, second.text
    assert "run 1 is in progress (pid" in second.err and "wait for it, or `ordo abort 1`" in second.err
    assert "Solver:" not in second.text and "Wave 1" not in second.out, second.out


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_stops_at_once_and_the_run_is_resumable(vfw_copy, tmp_path, sent):
    """The second Ctrl-C (or SIGTERM) does not wait for the call in flight (60 s here): ordo ends at
    once, exits 130 as for a drained run, and the run is interrupted, to be resumed."""
    proc = start_hanging_apply(vfw_copy, tmp_path, op_timeout=60)
    try:
        proc.send_signal(sent)
        time.sleep(0.5)   # the first is heard before the second comes
        asked = time.monotonic()
        proc.send_signal(sent)
        code, text = finish(proc, timeout=30)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 130 and took < 10, (code, took, text)
    assert "Interrupted." in text and "Aborted" not in text and "Traceback" not in text
    assert status(vfw_copy) == "interrupted"
    fast = scenario(tmp_path, SMOOTH, "fast.yaml")
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--simulation", fast)
    assert resumed.code == 0, resumed.text
    assert status(vfw_copy) == "complete"


# --- many runs in one process ----------------------------------------------------------


def test_two_executors_in_one_process(tmp_path):
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
        roots.append(root)
    sims = [{"seed": 1, "latency": 0.005}, {"seed": 2, "latency": 0.005, "faults": REFUSED_REGION_TWO["faults"]}]
    results: dict[str, Any] = {}

    def drive(root: Path, sim: dict[str, Any]) -> None:
        try:
            results[root.name] = api_apply(root, sim)[0]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[root.name] = exc

    threads = [threading.Thread(target=drive, args=(root, sim)) for root, sim in zip(roots, sims, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert {name: getattr(r, "status", r) for name, r in results.items()} == {"a": "complete", "b": "complete"}
    assert results["a"].summary["replans"] == 0 and results["b"].summary["replans"] == 1
    for root in roots:
        assert_all_active(root)
        assert {row["run"] for row in ledger(root)} == {"1"}
    assert world(roots[0])["vfw"]["target"] == "region-two"
    assert world(roots[1])["vfw"]["target"] == "region-three"
    # Separate journals, separate keys.
    keys = [{row["key"].split(":")[1] for row in ledger(root)} for root in roots]
    assert len(keys[0]) == len(keys[1]) == 1 and keys[0] != keys[1]


def test_a_policy_written_during_a_re_plan_is_read_again(vfw_copy, monkeypatch):
    """A re-plan whose planning child found a policy file changed since it was read (PoliciesChanged)
    reads the files again and plans, instead of the run's driver giving up on it."""
    import executor.engine as engine_module
    from planner.bounded import PoliciesChanged

    real, calls = engine_module.make_plan, []

    def changed_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise PoliciesChanged("a policy file changed while planning; plan again")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "make_plan", changed_once)
    sim = {"seed": 1, "latency": 0, "faults": [
        {"resource": "vfw-logs", "operation": "create", "error": "transient", "times": 5}]}
    set_retry(vfw_copy, initial_interval=0.001, attempts=3)
    result, evs = api_apply(vfw_copy, sim)   # (the first plan is api_apply's own; the re-plan, the engine's)
    assert result.status == "complete" and result.summary["replans"] == 1, result.reason
    assert len(calls) == 2


def test_an_operation_a_request_runs_is_run_once_across_re_plans_and_resumes(vfw_copy: Path) -> None:
    """vfw's health check fails for good; each re-plan (and the resume after the fallout) asked vpg's,
    which had passed, again: five times in one run (a sweep's). A run operation carried out is not asked
    again in the same run."""
    scenario = vfw_copy / "hc.yaml"
    scenario.write_text("seed: 1\nlatency: 0.01\nfaults:\n"
                        "  - { resource: vfw, operation: healthcheck, error: permanent }\n")
    run = run_ordo("apply", "-C", vfw_copy, "requests/healthcheck.yaml", "--inventory", "inventory-deployed.yaml",
                   "--auto-approve", "--simulation", scenario)
    assert run.code == 3 and "Apply fell out" in run.out, run.text
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--inventory", "inventory-deployed.yaml",
                       "--simulation", vfw_copy / "simulations" / "smooth.yaml")
    assert resumed.code == 0, resumed.text
    checks = [(row["resource"], row["operation"]) for row in ledger(vfw_copy) if row["operation"] == "healthcheck"]
    assert checks == [("vpg", "healthcheck"), ("vfw", "healthcheck")], checks


def test_a_run_operation_carried_out_is_asked_again_where_the_resource_changes_since() -> None:
    # (left out whatever the new plan did to the resource, a passed check was not run after its update: a review's)
    from executor.engine import _ran_once

    project = load_project(VFW, VFW / "requests" / "healthcheck.yaml", VFW / "inventory-deployed.yaml")
    model = project.model
    assert "healthcheck" in model.resources["vpg"].run and "healthcheck" in model.resources["vfw"].run
    model.resources["vpg"].params = {**model.resources["vpg"].params, "rate": 20}   # changed since the check
    _ran_once(model, {"vpg/healthcheck", "vfw/healthcheck"})
    assert "healthcheck" in model.resources["vpg"].run and "healthcheck" not in model.resources["vfw"].run


def test_a_plan_confirmed_after_another_run_changed_the_state_is_not_started(vfw_copy, monkeypatch):
    """An apply waited at its prompt while another apply ran to its end; its "yes" started the plan of the
    state gone, sent vfw-service/assign again (a real controller: a duplicate create) and journaled the run
    "complete: 10 created" (an upgrade sweep's). Refused now, nothing started; planned again, it has no work."""
    import click

    from tests.conftest import run_ordo_process

    def meanwhile(*_args, **_kwargs) -> bool:   # the other apply, while this one waits for its answer
        other = run_ordo_process("apply", "-C", vfw_copy, "--auto-approve")
        assert other.code == 0, other.text
        return True

    import click.testing

    # a terminal to answer at (the runner's streams are none)
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    monkeypatch.setattr(click, "confirm", meanwhile)
    late = run_ordo("apply", "-C", vfw_copy)
    assert late.code == 1 and "the journal's state changed since the plan was made" in late.err, late.text
    assert "plan again" in late.err and "Traceback" not in late.text
    with Journal(default_path(vfw_copy), create=False) as jr:
        assert [r.id for r in jr.runs()] == [1] and jr.run(1).status == "complete"
    again = run_ordo("plan", "-C", vfw_copy)
    assert again.code == 0 and "No changes" in again.out, again.text


def test_apply_json_asks_on_stderr_after_showing_the_plan_there(vfw_copy, monkeypatch):
    """`ordo apply --json` at a terminal asked to confirm a plan it never showed, and wrote its question
    to stdout, the first event's line then began with it (the CLI contract sweep): the plan and the
    question go to stderr, stdout carries the events alone."""
    import click
    import click.testing

    asked = []

    def confirm(text, **options) -> bool:
        asked.append(options.get("err"))
        return True

    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    monkeypatch.setattr(click, "confirm", confirm)
    run = run_ordo("apply", "-C", vfw_copy, "--json", "--simulation", vfw_copy / "simulations" / "smooth.yaml")
    assert run.code == 0 and asked == [True], run.text
    assert "10 to create" in run.err, run.err
    events = [json.loads(line) for line in run.out.splitlines()]
    assert events and all("at" in event for event in events)



def _refusing(where: Path) -> Path:
    """region-two-refuses.yaml's refusal, without its latencies (a second a test less)."""
    return scenario(where, {"seed": 7, "latency": 0, "faults": [
        {"target": "region-two", "operation": "create", "error": "refused", "message": "region-two: quota exceeded"}]},
        "refusing.yaml")


def test_a_run_stopped_on_a_failure_forgets_it_once_resumed(vfw_copy: Path, tmp_path: Path) -> None:
    """--on-failure stop says "Fix the cause, then `ordo resume 1`": the resume kept what the run had learnt
    (region-two refused), tore down the vFW placed there and rebuilt it on the dearest region, the cause
    fixed as told (an operator's sweep). As after a fallout, a resume forgets it."""
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", _refusing(tmp_path),
                   "--on-failure", "stop")
    assert run.code == 1 and status(vfw_copy) == "failed", run.text
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--simulation", scenario(tmp_path, {"seed": 1, "latency": 0}))
    assert resumed.code == 0 and status(vfw_copy) == "complete", resumed.text
    with Journal(default_path(vfw_copy), create=False) as jr:
        assert jr.state()["vfw"].placement == "region-two", jr.state()["vfw"]
    assert not [row for row in ledger(vfw_copy) if row["operation"] in ("unassign", "config-unassign")], ledger(
        vfw_copy)
    assert "resumed: the failure's cause taken as fixed, re-planning" in resumed.out, resumed.out


def test_a_run_stopped_on_a_failure_and_resumed_to_replan_goes_around_it(vfw_copy: Path, tmp_path: Path) -> None:
    """Resumed with --on-failure replan (not fixed, but planned around: a review's), the run keeps what it
    learnt, and does not send the target that refused another create."""
    sims = _refusing(tmp_path)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sims, "--on-failure", "stop")
    assert run.code == 1 and status(vfw_copy) == "failed", run.text
    refused = [row for row in ledger(vfw_copy) if row.get("target") == "region-two"]
    resumed = run_ordo("resume", "1", "-C", vfw_copy, "--simulation", sims, "--on-failure", "replan")
    assert resumed.code == 0 and status(vfw_copy) == "complete", resumed.text
    assert "resumed: the failure was observed, re-planning" in resumed.out, resumed.out
    with Journal(default_path(vfw_copy), create=False) as jr:
        assert jr.state()["vfw"].placement == "region-three", jr.state()["vfw"]
    failed = [ev for ev in events(vfw_copy) if ev.kind == "failed"]
    assert len(failed) == 1, [(ev.op, ev.data.get("error")) for ev in failed]
    later = [row for row in ledger(vfw_copy) if row.get("target") == "region-two"][len(refused):]
    assert all(row["operation"] in ("unassign", "config-unassign", "delete") for row in later), later


def test_an_abort_from_another_process_starts_nothing_more_than_its_next_look(vfw_copy, tmp_path):
    """The executor read the journal for `ordo abort` every half second: in between, the calls that ended gave
    their successors to new operations, and an abort acknowledged ("will stop once its operations in flight
    finish") ended complete (an operator's sweep). Calls that end look for it first (every ABORT_LOOK s):
    here the poll is longer than the run, so only that look can see it."""
    from executor import runs
    from executor.controllers.simulated import load_simulation

    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    sim = load_simulation(scenario(tmp_path, {"seed": 1, "latency": 0.05}))
    ended: list[RunResult] = []
    thread = threading.Thread(target=lambda: ended.append(runs.execute(
        project, plan, ApplyOptions(poll=60.0, simulation=sim), default_path(vfw_copy))))
    thread.start()
    try:
        wait_for(lambda: has_event(vfw_copy, "result"), what="a first result")
        runs.abort(vfw_copy, None, 1)
    finally:
        thread.join(60)
    assert ended and ended[0].status == "aborted", ended
    evs = events(vfw_copy)
    asked = next(i for i, ev in enumerate(evs) if ev.kind == "abort-requested")
    # at most the run's concurrency (10) more: those started before the next look saw it (6 on an idle machine,
    # 8 in a suite beside other work; all the rest, and a complete run, before the fix)
    assert sum(ev.kind == "intent" for ev in evs[asked:]) <= 10, [(ev.kind, ev.op) for ev in evs[asked:]]


def test_a_saved_plan_applied_with_another_concurrency_says_the_run_keeps_to_it(vfw_copy: Path, tmp_path: Path):
    """The confirmation showed the saved plan's "(at most 10 at once)" alone while the run kept to
    --concurrency 2 (an operator's sweep)."""
    saved = tmp_path / "plan.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    run = run_ordo("apply", "-C", vfw_copy, saved, "--concurrency", "2", "--auto-approve", "--simulation",
                   scenario(tmp_path, {"seed": 1, "latency": 0.005}))
    assert run.code == 0, run.text
    assert ("The run keeps to at most 2 operations at once (--concurrency); the waves and the estimate above are "
            "the saved plan's, for 10.") in run.out, run.out
    assert max_in_flight(events(vfw_copy))["all"] <= 2
