"""How many plans a long-lived process makes at once (planner/slots.py): one per CPU, their
memory caps within the memory, first come first served; and who takes the slots (a run's
re-plan, a sweep's scenario)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from domain.project import load_project
from executor import engine as engine_module
from executor import sweeps
from executor.engine import ApplyOptions, Executor
from executor.journal import Journal, default_path
from planner.core import make_plan
from planner.slots import PlanCancelled, PlanSlots, SlotsBusy
from tests.test_apply import REFUSED_REGION_TWO, loader_for


def capped(mb: int) -> SimpleNamespace:
    """A project as the slots read it: its settings' memory cap."""
    return SimpleNamespace(settings=SimpleNamespace(memory_limit_mb=mb))


def _hold(slots: PlanSlots, project, log: list, name: str, release: threading.Event,
          urgent: bool = False) -> threading.Thread:
    def hold() -> None:
        with slots.slot(project, urgent=urgent):
            log.append(name)
            release.wait(10)
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def _refused(jr: Journal, project, path: Path, slots: PlanSlots | None = None, **options) -> Executor:
    """An executor of the vFW whose simulated region-two refuses creates (a re-plan follows)."""
    return Executor(jr, loader_for(project, path), options=ApplyOptions(simulation=REFUSED_REGION_TWO, **options),
                    plans=slots)


def _carried(executor: Executor, act):
    try:
        return act(executor)
    finally:
        executor.close()


def _until(check, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_at_most_one_plan_per_cpu() -> None:
    slots = PlanSlots(2, None)
    inside, most, lock = 0, 0, threading.Lock()

    def plan() -> None:
        nonlocal inside, most
        with slots.slot(capped(100)):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.2)   # long enough for the other slot's thread to be inside too
            with lock:
                inside -= 1

    threads = [threading.Thread(target=plan) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 2 and slots.busy == 0


def test_memory_caps_add_up_to_the_memory_at_most() -> None:
    slots = PlanSlots(8, 8192)
    log: list[str] = []
    release = threading.Event()
    threads = [_hold(slots, capped(4096), log, name, release) for name in ("a", "b", "c")]
    _until(lambda: len(log) == 2)
    time.sleep(0.1)
    assert len(log) == 2 and slots.busy == 2   # the third cap does not fit beside two
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(log) == ["a", "b", "c"] and slots.busy == 0


def test_a_cap_larger_than_the_memory_runs_alone_and_is_not_refused() -> None:
    slots = PlanSlots(4, 1024)
    assert slots.need(capped(8192)) == 1024
    with slots.slot(capped(8192), timeout=0.1), pytest.raises(SlotsBusy), slots.slot(capped(10), timeout=0.1):
        pass
    with slots.slot(capped(10), timeout=0.1):
        assert slots.busy == 1


def test_first_come_first_served_a_large_cap_is_not_passed_over() -> None:
    """A small plan arriving after a large one that waits does not go before it, though it would fit."""
    slots = PlanSlots(4, 8000)
    log: list[str] = []
    first = threading.Event()
    _hold(slots, capped(1000), log, "small-1", first)
    _until(lambda: log == ["small-1"])
    big_done = threading.Event()
    big = _hold(slots, capped(8000), log, "big", big_done)
    _until(lambda: len(slots._queue) == 1)   # the big one waits for the whole memory
    late = threading.Event()
    _hold(slots, capped(1000), log, "small-2", late)
    _until(lambda: len(slots._queue) == 2)
    assert log == ["small-1"]   # small-2 would fit beside small-1, but big came first
    first.set()
    _until(lambda: log == ["small-1", "big"])
    time.sleep(0.1)
    assert log == ["small-1", "big"]   # small-2 does not fit beside big
    big_done.set()
    big.join(10)
    _until(lambda: log == ["small-1", "big", "small-2"])
    late.set()


def test_an_urgent_plan_goes_ahead_of_those_waiting_behind_the_urgent_before_it() -> None:
    """A run's re-plan (urgent) is not held up by the scenarios of a sweep waiting before it."""
    slots = PlanSlots(1, None)
    log: list[str] = []
    gates = {name: threading.Event() for name in ("running", "scenario-1", "scenario-2", "replan-1", "replan-2")}
    threads = [_hold(slots, capped(10), log, "running", gates["running"])]
    _until(lambda: log == ["running"])
    for name, urgent in (("scenario-1", False), ("scenario-2", False), ("replan-1", True), ("replan-2", True)):
        threads.append(_hold(slots, capped(10), log, name, gates[name], urgent=urgent))
        _until(lambda: len(slots._queue) == len(threads) - 1)
    for count, name in enumerate(("running", "replan-1", "replan-2", "scenario-1"), start=2):
        gates[name].set()   # the one holding the slot is done: the next in line takes it
        _until(lambda count=count: len(log) == count)
    gates["scenario-2"].set()
    for thread in threads:
        thread.join(10)
    assert log == ["running", "replan-1", "replan-2", "scenario-1", "scenario-2"]


def test_how_many_plans_of_a_cap_fit_at_once() -> None:
    assert PlanSlots(8, 8192).at_once(4096) == 2
    assert PlanSlots(2, 65536).at_once(4096) == 2
    assert PlanSlots(4, 1024).at_once(8192) == 1   # a cap past the memory still runs, alone
    assert PlanSlots(3, None).at_once(4096) == 3


@pytest.mark.parametrize("ends", ["timeout", "cancelled"])
def test_a_wait_that_ends_unserved_raises_and_leaves_the_line(ends: str) -> None:
    """Past its timeout: busy. Cancelled (a stop or an abort of the run whose re-plan waits): PlanCancelled."""
    slots = PlanSlots(1, None)
    log: list[str] = []
    release = threading.Event()
    holder = _hold(slots, capped(10), log, "holder", release)
    _until(lambda: log == ["holder"])
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    raised = (pytest.raises(SlotsBusy, match="1 plan in progress, as many as this process makes at once")
              if ends == "timeout" else pytest.raises(PlanCancelled, match="waited for a plan slot"))
    with raised, slots.slot(capped(10), **({"timeout": 0.2} if ends == "timeout" else {"cancelled": stop.is_set})):
        pass
    assert (0.15 if ends == "timeout" else 0.25) < time.monotonic() - started < 5
    assert slots._queue == []
    release.set()
    holder.join(10)
    with slots.slot(capped(10), timeout=1):   # the one that gave up is not in the way
        assert slots.busy == 1


def test_the_machines_slots_follow_its_cpus_and_memory(monkeypatch) -> None:
    from planner import machine

    monkeypatch.setattr(machine, "cpus", lambda: 3)
    monkeypatch.setattr(machine, "memory_mb", lambda: 6000)
    slots = PlanSlots.for_machine()
    assert (slots.cpus, slots.memory_mb) == (3, 6000)


def test_a_runs_replan_takes_a_slot(vfw_copy: Path, monkeypatch) -> None:
    """A run that fails re-plans within the process's slots (a server's runs, a worker's)."""
    slots = PlanSlots(1, None)
    seen: list[int] = []
    planned = engine_module.make_plan

    def counted(*args, **kwargs):
        seen.append(slots.busy)
        return planned(*args, **kwargs)

    monkeypatch.setattr(engine_module, "make_plan", counted)
    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    path = default_path(project.root)
    with Journal(path) as jr:
        result = _carried(_refused(jr, project, path, slots), lambda ex: ex.apply(project, plan))
    assert result.status == "complete"
    assert seen and seen == [1] * len(seen) and slots.busy == 0


def test_a_sweep_job_waits_for_a_slot(vfw_copy: Path, monkeypatch) -> None:
    """A sweep's scenario planned by a worker (executor.sweeps.plan_job) takes a slot: it waits while
    the only one is taken."""
    from collections import OrderedDict

    monkeypatch.setattr(sweeps, "_BASELINES", OrderedDict())   # no baseline planned by an earlier test
    slots = PlanSlots(1, None)
    job = sweeps.jobs(vfw_copy, None, None, None, [], None, None)[0]
    done: list[dict] = []
    with slots.slot(capped(10)):
        thread = threading.Thread(target=lambda: done.append(sweeps.plan_job(job, slots)))
        thread.start()
        time.sleep(0.5)
        assert not done   # waits for the slot
    thread.join(60)
    assert done and done[0]["status"] == "optimal"


def test_a_plan_no_longer_wanted_ends_its_children(vfw_copy: Path) -> None:
    import multiprocessing

    slow = vfw_copy / "slow.lp"   # grounds for seconds: its child would outlive the checks below
    slow.write_text("%@ name: slow\n%@ description: grounds for a while\n%@ owner: t\n%@ enforcement: hard\n"
                    "slow_n(1..1500).\nslow_pair(X,Y) :- slow_n(X), slow_n(Y).\n")
    project = load_project(vfw_copy, extra_policy_files=[slow])
    started = time.monotonic()
    with pytest.raises(PlanCancelled, match="being made"):
        make_plan(project, prune=False, cancelled=lambda: time.monotonic() - started > 0.3)
    assert time.monotonic() - started < 1.5
    _until(lambda: not [p for p in multiprocessing.active_children() if p.name == "ordo-planner"], seconds=0.5)


def test_a_stop_while_the_replan_waits_for_a_slot_ends_the_run_and_a_resume_plans_again(vfw_copy: Path) -> None:
    """Ctrl-C (request_stop) while a run's re-plan waits for a slot another plan holds: the run ends
    interrupted at once, not when the slot frees; `ordo resume` then plans again and completes."""
    slots = PlanSlots(1, None)
    log: list[str] = []
    release = threading.Event()
    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    path = default_path(project.root)
    with Journal(path) as jr:
        executor = _refused(jr, project, path, slots)
        holder = None
        real = executor._replan

        def replan(core, cmd):   # another plan takes the only slot just before the run's re-plan asks
            nonlocal holder
            holder = _hold(slots, capped(10), log, "other", release)
            _until(lambda: log == ["other"])
            threading.Timer(0.2, executor.request_stop).start()
            return real(core, cmd)

        executor._replan = replan
        started = time.monotonic()
        result = _carried(executor, lambda ex: ex.apply(project, plan))
        assert result.status == "interrupted" and time.monotonic() - started < 8
        assert slots.busy == 1 and slots._queue == []
        release.set()
        holder.join(10)
        resumed = _carried(_refused(jr, project, path), lambda ex: ex.resume(result.run))
        kinds = [ev.kind for ev in jr.events(result.run)]
    assert resumed.status == "complete"
    assert kinds.index("learnt") < kinds.index("run-ended") < kinds.index("resumed") < kinds.index("replan")


def test_a_resume_stopped_while_it_plans_keeps_the_summary_and_a_rollback_asked_for(vfw_copy: Path) -> None:
    """A run fallen out (no re-plan allowed), then `ordo resume --rollback` stopped (Ctrl-C) while it
    plans: the run's summary still counts what it did, and a plain `ordo resume` rolls back."""
    project = load_project(vfw_copy)
    plan = make_plan(project).plan
    path = default_path(project.root)

    def run(act, stop: bool = False):
        executor = _refused(jr, project, path, max_replans=0)
        if stop:
            executor.request_stop()
        return _carried(executor, act)

    with Journal(path) as jr:
        first = run(lambda ex: ex.apply(project, plan))
        assert first.status == "fallout" and first.summary["created"] > 0
        second = run(lambda ex: ex.resume(first.run, rollback=True), stop=True)
        assert second.status == "interrupted"
        assert (second.summary["created"], second.summary["unfinished"]) == (
            first.summary["created"], first.summary["unfinished"])
        third = run(lambda ex: ex.resume(first.run))
        modes = [ev.data["mode"] for ev in jr.events(first.run) if ev.kind in ("replan-stopped", "replan")]
    assert modes == ["rollback", "rollback"] and third.status == "rolled_back"
