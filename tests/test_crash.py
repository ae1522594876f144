"""Crash safety: kill `ordo apply` at every named point and at random moments,
resume, and check the simulated world's ledger (the truth) against the journal.

After every crash and resume: the run is complete, every requested resource
is active where the last plan put it, no effect was applied twice (no key twice
in the ledger, no resend refused by the world's precondition), every ledger row
is an operation of one of the run's plans, and `ordo plan` finds nothing to do.
The worlds here are not idempotent, so a duplicate would be visible.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from executor.controllers.simulated import read_ledger, read_world
from executor.engine import CRASH_POINTS
from executor.journal import Event, Journal
from planner.plan import Plan
from tests.conftest import ordo_env, ordo_executable, run_ordo, run_ordo_forked
from tests.zygote import Forked, shared

# --- helpers: the CLI, the world, the journal ---------------------------------

#: What requests/instantiate.yaml asks for (all wanted active), and the VNFs' parts.
REQUESTED = ("vfw-service", "protected-net", "unprotected-net", "vpg", "vpg-base", "vsink", "vsink-base",
             "vfw", "vfw-logs", "vfw-base")
PARTS = {"vfw-base": "vfw", "vfw-logs": "vfw", "vpg-base": "vpg", "vsink-base": "vsink"}
VNFS = ("vfw", "vpg", "vsink")
PLAIN = {"seed": 1, "idempotent": False, "latency": 0.01}
REFUSING = {"seed": 7, "idempotent": False, "latency": 0.01,
            "faults": [{"target": "region-two", "operation": "create", "error": "refused"}]}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-4000:]}\n--- stderr\n{self.err[-4000:]}"


def ordo(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run `ordo` in this process, or in a process of its own (forked from the
    zygote, tests/zygote.py) when a crash point is to kill it; ``env`` adds
    variables (the ORDO_* ones are not inherited)."""
    if env and "ORDO_CRASH_POINT" in env:
        run = run_ordo_forked(*args, env=env, timeout=timeout)
    else:
        run = run_ordo(*args, env=env)
    return Result(run.code, run.out, run.err)


def write_scenario(project: Path, scenario: dict[str, Any], name: str = "crash.yaml") -> Path:
    path = project / name
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def apply_args(project: Path, scenario: Path, *extra: str) -> list[str | Path]:
    return ["apply", "-C", project, "--auto-approve", "--simulation", scenario, "--json", *extra]


def world_file(project: Path) -> Path:
    return project / ".ordo" / "simulated-world.db"


def journal_events(project: Path, run: int = 1) -> list[Event]:
    with Journal(project / ".ordo" / "journal.db", create=False) as jr:
        return jr.events(run)


def journal_state(project: Path) -> dict[str, Any]:
    with Journal(project / ".ordo" / "journal.db", create=False) as jr:
        return jr.state()


def plans_of(events: list[Event]) -> dict[int, Plan]:
    """The run's plans by number (1 = the initial plan)."""
    return {ev.data["number"]: Plan.from_json(ev.data["plan"]) for ev in events if ev.kind in ("plan", "replan")}


def crash_apply(project: Path, scenario: Path, point: str, *extra: str) -> Result:
    run = ordo(*apply_args(project, scenario, *extra), env={"ORDO_CRASH_POINT": point})
    assert run.code == -signal.SIGKILL, f"expected death by SIGKILL at {point}\n{run.text}"
    return run


def resume_to_end(project: Path, *extra: str, tries: int = 2) -> list[Result]:
    """`ordo resume 1` until it exits 0 (at most ``tries`` times)."""
    runs = []
    for _ in range(tries):
        runs.append(ordo("resume", "1", "-C", project, "--json", *extra))
        if runs[-1].code == 0:
            return runs
    raise AssertionError("the run did not complete after resuming:\n" + "\n".join(r.text for r in runs))


def start_killable(args: list[str | Path], log: Path) -> Forked:
    """Start a CLI call (forked from the zygote, tests/zygote.py) writing its JSON events to ``log``;
    returns once the run has started."""
    log.write_text("")
    proc = shared().spawn(ordo_executable(), [str(a) for a in args], Path.cwd(), ordo_env(), log,
                          error=Path(os.devnull))
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text()
        if '"kind": "run-started"' in text or '"kind": "resumed"' in text:
            return proc
        if proc.poll() is not None:
            raise AssertionError(f"{args[0]} exited ({proc.returncode}) before its run started:\n{text}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{args[0]} did not start a run within 60 s")
        time.sleep(0.005)


def kill_after(proc: Forked, delay: float) -> int:
    """SIGKILL ``proc`` ``delay`` seconds from now (unless it ended first); its exit code."""
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=30)


# --- the checks -------------------------------------------------------------------


@dataclass
class Crashed:
    """What the world and the journal held when the process died."""

    project: Path
    seq: int                          # the journal's last event
    unrecorded: dict[str, tuple[str, str]]  # key -> (resource, state): applied, with no result in the journal
    in_doubt: set[str]                # operations with an intent and no result, failure or retry after it

    @classmethod
    def now(cls, project: Path) -> Crashed:
        events = journal_events(project)
        results = {ev.key for ev in events if ev.kind == "result"}
        ledger = read_ledger(world_file(project)) if world_file(project).exists() else []
        unrecorded = {row["key"]: (row["resource"], row["to_state"]) for row in ledger if row["key"] not in results}
        open_ops: set[str] = set()
        for ev in events:
            if ev.kind == "intent":
                open_ops.add(ev.op)
            elif ev.kind in ("result", "failed", "retry"):
                open_ops.discard(ev.op)
        return cls(project, events[-1].seq, unrecorded, open_ops)

    def check_resolved(self) -> None:
        """After the resume: effects applied before the crash were found by
        observing (under the key they were applied with, or by the resource's
        state before a re-plan), and operations in doubt were observed before
        anything was sent again."""
        later = [ev for ev in journal_events(self.project) if ev.seq > self.seq]
        observed = [(ev.seq, ev.data.get("resource"), ev.data.get("state")) for ev in later if ev.kind == "observed"]
        for key, (resource, state) in self.unrecorded.items():
            found = [ev for ev in later if ev.kind == "result" and ev.key == key]
            seen = [seq for seq, name, now in observed if name == resource and now == state]
            assert (len(found) == 1 and found[0].data["observed"] is True) or (seen and not found), (
                key, [ev.as_dict() for ev in found], observed)
        for op in self.in_doubt:
            intents = [ev for ev in later if ev.kind == "intent" and ev.op == op]
            if not intents:
                continue  # a re-plan dropped it
            looked = any(seq < intents[0].seq and name == op.rpartition("/")[0] for seq, name, _ in observed)
            assert intents[0].data["observe_first"] is True or looked, intents[0].as_dict()


def check_recovered(project: Path, *, refused: str | None = None, exactly_once: bool = False) -> None:
    """(a) complete, (b) the world in the goal state, (c) no duplicate effects, (d) nothing left to plan."""
    # (a) the run completed
    history = json.loads(ordo("history", "-C", project, "--json").out)
    assert [(r["run"], r["status"]) for r in history] == [(1, "complete")], history

    events = journal_events(project)
    plans = plans_of(events)
    last = plans[max(plans)]

    # (b) every requested resource is active in the world, placed consistently
    world = read_world(world_file(project))
    for name in (*REQUESTED, "onap-mgmt-net"):
        assert world.get(name, {}).get("state") == "active", (name, world.get(name))
    for vnf in VNFS:
        assert world[vnf]["target"] == last.placements[vnf], (vnf, world[vnf], last.placements)
    for part, vnf in PARTS.items():
        assert world[part]["target"] == world[vnf]["target"], (part, world[part], world[vnf])
    assert len({world[v]["target"] for v in ("vfw", "vpg")}) == 2, "anti-affinity: vfw and vpg share a region"
    if refused is not None:
        on_refused = sorted(n for n, r in world.items() if r["target"] == refused)
        assert not on_refused, f"left on {refused}, which refuses: {on_refused}"
        # once learnt (also across a crash), nothing is created there again
        learnt = next(ev.seq for ev in events if ev.kind == "learnt")
        again = [ev.op for ev in events if ev.kind == "intent" and ev.seq > learnt
                 and ev.data["operation"] == "create" and ev.data["target"] == refused]
        assert not again, f"sent to {refused} after it refused: {again}"
    # ... and the journal knows the world as it is
    state = journal_state(project)
    for name in REQUESTED:
        assert state[name].state == world[name]["state"], (name, state[name].state, world[name])
    for vnf in VNFS:
        assert state[vnf].placement == world[vnf]["target"], (vnf, state[vnf].placement, world[vnf])

    # (c) no effect applied twice, none the plans do not justify
    ledger = read_ledger(world_file(project))
    keys = collections.Counter(row["key"] for row in ledger)
    assert not [k for k, n in keys.items() if n > 1], f"applied twice: {[k for k, n in keys.items() if n > 1]}"
    refused_resends = [(ev.op, ev.data.get("error")) for ev in events
                       if ev.kind == "failed" and ev.data.get("code") == "precondition"]
    assert not refused_resends, f"operations resent after they were applied (the world refused): {refused_resends}"
    plan_ops = {n: {op.id: op for op in plan.operations} for n, plan in plans.items()}
    for row in ledger:
        _, _journal, run, number, oid = row["key"].split(":", 4)
        assert run == "1" and int(number) in plan_ops, row["key"]
        op = plan_ops[int(number)].get(oid)
        assert op is not None, f"{row['key']}: not an operation of plan {number}"
        assert (op.resource, op.operation) == (row["resource"], row["operation"]), row
    justified = collections.Counter((op.resource, op.operation) for ops in plan_ops.values() for op in ops.values())
    applied = collections.Counter((row["resource"], row["operation"]) for row in ledger)
    assert not applied - justified, f"applied more often than the plans justify: {applied - justified}"
    results = {ev.key for ev in events if ev.kind == "result"}
    assert results <= set(keys), f"results the world never applied: {sorted(results - set(keys))}"
    if exactly_once:
        wanted = collections.Counter((op.resource, op.operation) for op in plans[1].operations)
        assert len(wanted) == 32
        assert applied == wanted, (f"missing: {sorted((wanted - applied).elements())}, "
                                   f"extra: {sorted((applied - wanted).elements())}")

    # (d) the journal's state matches the world: nothing left to do
    plan = ordo("plan", "-C", project, "--detailed-exitcode")
    assert plan.code == 0, plan.text
    assert "No changes." in plan.out


# --- 1. every named crash point ---------------------------------------------------------

# Points reached only after a failure need the refusing region; the others are
# crashed at their first and at a later occurrence.
CASES = [
    *[(point, "plain") for point in CRASH_POINTS if point not in ("failure-observed", "replanned")],
    # later occurrences; intents and results are written per batch, and the longest
    # chain of the vFW plan is 10 operations, so the 10th batch always comes
    *[(f"{point}:{n}", "plain") for point in ("intent-written", "result-written") for n in (5, 10)],
    *[(f"applied:{n}", "plain") for n in (5, 15)],
    ("failure-observed", "refusing"),
    ("replanned", "refusing"),
    # a region refuses: crashes around the failure (operations in doubt across the
    # re-plan) and in the second plan (plan 1 applies ~17 of the ~40 operations)
    ("applied:12", "refusing"),
    ("result-written:12", "refusing"),
    ("intent-written:12", "refusing"),
    ("applied:30", "refusing"),
]


@pytest.mark.slow
@pytest.mark.parametrize("point,kind", CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_crash_point_then_resume(vfw_copy, point, kind):
    scenario = write_scenario(vfw_copy, PLAIN if kind == "plain" else REFUSING)
    crash_apply(vfw_copy, scenario, point)
    events = journal_events(vfw_copy)
    assert events[0].kind == "run-started" and events[-1].kind != "run-ended", [e.kind for e in events[-3:]]
    crashed = Crashed.now(vfw_copy)
    if point.startswith("applied"):
        assert crashed.unrecorded, "the crash came after an effect was applied: one is not in the journal"
    resume_to_end(vfw_copy)
    crashed.check_resolved()
    if kind == "plain":
        check_recovered(vfw_copy, exactly_once=True)
    else:
        check_recovered(vfw_copy, refused="region-two")
        kinds = [ev.kind for ev in journal_events(vfw_copy)]
        assert "learnt" in kinds and "replan" in kinds


def test_crash_points_are_all_covered():
    assert {case.partition(":")[0] for case, _ in CASES} == set(CRASH_POINTS)


# --- 2. SIGKILL at random moments ----------------------------------------------------------

LATENCY = {"seed": 5, "idempotent": False, "latency": 0.05, "jitter": 0.5}
#: Seconds from the run's start to the kill; the run takes ~0.55 s (a chain of 10 operations of ~0.05 s).
_RNG = random.Random(20240611)
DELAYS = [round(_RNG.uniform(0.02, 0.3), 3) for _ in range(5)]


@pytest.mark.slow
@pytest.mark.parametrize("delay", DELAYS)
def test_kill_at_a_random_moment(vfw_copy, tmp_path, delay):
    scenario = write_scenario(vfw_copy, LATENCY)
    proc = start_killable(apply_args(vfw_copy, scenario), tmp_path / "apply.jsonl")
    code = kill_after(proc, delay)
    assert code == -signal.SIGKILL, f"the run ended ({code}) before the kill after {delay} s"
    crashed = Crashed.now(vfw_copy)
    resume_to_end(vfw_copy)
    crashed.check_resolved()
    check_recovered(vfw_copy, exactly_once=True)


@pytest.mark.slow
def test_kill_the_resume_too(vfw_copy, tmp_path):
    rng = random.Random(7)
    scenario = write_scenario(vfw_copy, {**LATENCY, "seed": 9})
    proc = start_killable(apply_args(vfw_copy, scenario), tmp_path / "apply.jsonl")
    assert kill_after(proc, rng.uniform(0.05, 0.2)) == -signal.SIGKILL
    proc = start_killable(["resume", "1", "-C", vfw_copy, "--json"], tmp_path / "resume.jsonl")
    assert kill_after(proc, rng.uniform(0.05, 0.15)) == -signal.SIGKILL, (tmp_path / "resume.jsonl").read_text()
    crashed = Crashed.now(vfw_copy)
    resume_to_end(vfw_copy)
    crashed.check_resolved()
    check_recovered(vfw_copy, exactly_once=True)
    resumed = [ev for ev in journal_events(vfw_copy) if ev.kind == "resumed"]
    assert [ev.data["from"] for ev in resumed] == ["crashed", "crashed"]


@pytest.mark.slow
def test_kill_during_a_replan_run(vfw_copy, tmp_path):
    """A random kill in a run whose region refuses: the re-plan and the crash mix."""
    scenario = write_scenario(vfw_copy, {**REFUSING, "latency": 0.04, "jitter": 0.5})
    proc = start_killable(apply_args(vfw_copy, scenario), tmp_path / "apply.jsonl")
    assert kill_after(proc, 0.3) == -signal.SIGKILL
    crashed = Crashed.now(vfw_copy)
    resume_to_end(vfw_copy)
    crashed.check_resolved()
    check_recovered(vfw_copy, refused="region-two")


# --- 3. lost answers and 4. a hang -----------------------------------------------------------

LOST = [("protected-net", "activate"), ("vfw-base", "create"), ("vpg", "assign")]


def test_lost_answers_are_observed_not_resent(vfw_copy):
    scenario = write_scenario(vfw_copy, {
        "seed": 3, "idempotent": False, "latency": 0.01,
        "faults": [{"resource": r, "operation": o, "error": "lost"} for r, o in LOST]})
    run = ordo(*apply_args(vfw_copy, scenario))
    assert run.code == 0, run.text
    check_recovered(vfw_copy, exactly_once=True)
    shown = [json.loads(line) for line in ordo("show", "1", "-C", vfw_copy, "--json").out.splitlines()]
    for resource, operation in LOST:
        op = f"{resource}/{operation}"
        retries = [ev for ev in shown if ev["kind"] == "retry" and ev["op"] == op]
        assert retries and retries[0]["in_doubt"] and retries[0]["code"] == "lost", retries
        results = [ev for ev in shown if ev["kind"] == "result" and ev["op"] == op]
        assert len(results) == 1 and results[0]["observed"] is True, results
        intents = [ev for ev in shown if ev["kind"] == "intent" and ev["op"] == op]
        assert [ev["observe_first"] for ev in intents] == [False, True], intents
    others = [ev["op"] for ev in shown if ev["kind"] == "result" and ev["observed"]]
    assert sorted(others) == sorted(f"{r}/{o}" for r, o in LOST)


def test_hung_call_is_observed_then_sent_again(vfw_copy):
    scenario = write_scenario(vfw_copy, {
        "seed": 4, "idempotent": False, "latency": 0.01,
        "faults": [{"resource": "vsink-base", "operation": "create", "error": "hang", "times": 1}]})
    run = ordo(*apply_args(vfw_copy, scenario, "--op-timeout", "0.5"))
    assert run.code == 0, run.text
    check_recovered(vfw_copy, exactly_once=True)
    shown = [json.loads(line) for line in ordo("show", "1", "-C", vfw_copy, "--json").out.splitlines()]
    op = "vsink-base/create"
    retries = [ev for ev in shown if ev["kind"] == "retry" and ev["op"] == op]
    assert len(retries) == 1 and retries[0]["code"] == "timeout" and retries[0]["in_doubt"], retries
    intents = [ev for ev in shown if ev["kind"] == "intent" and ev["op"] == op]
    assert [ev["observe_first"] for ev in intents] == [False, True], intents
    results = [ev for ev in shown if ev["kind"] == "result" and ev["op"] == op]
    assert len(results) == 1 and results[0]["observed"] is False, results
    rows = [row for row in read_ledger(world_file(vfw_copy)) if (row["resource"], row["operation"]) ==
            ("vsink-base", "create")]
    assert len(rows) == 1 and rows[0]["attempt"] == 2, rows


# --- 5. a doubt settled by observing, then a crash before the new plan runs ----------------

#: vfw fails for good (a transient failure, then a permanent one after its retry delay) while
#: vfw-base/activate is in doubt and its retry is not yet due (the module's create is slow, so
#: its activate comes later). Observing after the failure settles the doubt: "lost" applied the
#: activate (observed active), "hang" did not (observed created).
SETTLED = {
    "lost": ({"resource": "vfw-base", "operation": "activate", "error": "lost", "times": 1}, "active"),
    "hang": ({"resource": "vfw-base", "operation": "activate", "error": "hang", "times": 1}, "created"),
}


@pytest.mark.parametrize("fault", sorted(SETTLED))
def test_observed_doubt_stays_settled_across_a_crash(vfw_copy, fault):
    """A crash right after the re-plan; the new plan runs vfw-base/activate again ("lost":
    replace-failed tears vfw and its parts down and brings them up again). The resumed run
    must send it under a new key, as a plain call: the old key names an attempt that is
    settled. Before the fix, "lost" found the old key in the ledger and recorded the module
    active while the world had it only created; "hang" observed again under the old key."""
    if fault == "lost":
        project_file = vfw_copy / "ordo.yaml"
        project_file.write_text(project_file.read_text().replace(
            "    - avoid-refused-targets", "    - replace-failed\n    - avoid-refused-targets", 1))
    spec, observed = SETTLED[fault]
    scenario = write_scenario(vfw_copy, {
        "seed": 1, "idempotent": False, "latency": {"default": 0.01, "vf-module/create": 0.3},
        "faults": [spec,
                   {"resource": "vfw", "operation": "config-assign", "error": "transient", "times": 1},
                   {"resource": "vfw", "operation": "config-assign", "error": "permanent", "times": 1}]})
    crash_apply(vfw_copy, scenario, "replanned:1", "--op-timeout", "0.6")
    before = journal_events(vfw_copy)
    first_key = next(ev.key for ev in before if ev.kind == "intent" and ev.op == "vfw-base/activate")
    assert [ev.data["state"] for ev in before if ev.kind == "observed"
            and ev.data["resource"] == "vfw-base"] == [observed]
    assert "vfw-base/activate" in {op.id for op in plans_of(before)[2].operations}
    resume_to_end(vfw_copy)
    check_recovered(vfw_copy)
    later = [ev for ev in journal_events(vfw_copy) if ev.seq > before[-1].seq]
    again = [ev for ev in later if ev.kind == "intent" and ev.op == "vfw-base/activate"]
    assert again and all(ev.key != first_key and not ev.data["observe_first"] for ev in again), \
        [ev.as_dict() for ev in again]


def test_an_abort_asked_right_after_a_resume_claimed_the_run_stops_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`ordo abort` between `ordo resume`'s claim of the run and its second read saw the run running,
    wrote its request and said the run would stop; the resume took that request for one made before
    it, and completed the run (the executor's review of 6 December)."""
    from executor import runs

    root = tmp_path / "p"
    root.mkdir()
    (root / "catalog.yaml").write_text(
        "controllers:\n  c: { description: simulated }\nlifecycles:\n  simple:\n    states: [absent, present]\n"
        "    operations:\n      create: {from: absent, to: present}\n      delete: {from: present, to: absent}\n"
        "types:\n  thing: {lifecycle: simple, controller: c}\n")
    (root / "request.yaml").write_text("resources:\n" + "".join(f"  - {{name: r{i}, type: thing}}\n" for i in range(6)))
    (root / "inventory.yaml").write_text("resources: []\n")
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\nrequest: request.yaml\ninventory: inventory.yaml\n"
                                    "settings: {concurrency: 1}\n")
    (root / "sim.yaml").write_text("seed: 1\nlatency: 0.1\n")
    crashed = subprocess.run([ordo_executable(), "apply", "-C", root, "--auto-approve", "--simulation",
                              root / "sim.yaml"], env={**ordo_env(), "ORDO_CRASH_POINT": "intent-written"},
                             capture_output=True, timeout=120)
    assert crashed.returncode != 0
    claim, said = Journal.claim, []

    def claimed_then_aborted(self: Journal, run_id: int) -> Any:
        info = claim(self, run_id)
        said.append(runs.abort(root, None, run_id))   # another process's `ordo abort`, on its own connection
        return info

    monkeypatch.setattr(Journal, "claim", claimed_then_aborted)
    result = runs.resume(root, None, None, 1, root / "sim.yaml", None, None, None)
    assert said and said[0].startswith("Abort requested: run 1"), said
    assert result.status == "aborted", result
