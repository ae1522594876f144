"""A server makes a bounded number of plans at once (service.engine.LocalEngine's
plan slots): a request past them waits for one, at most a plan's time limit,
then is refused with 503 and Retry-After, over the API as over SO's."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from domain.project import load_project
from planner.slots import PlanSlots, SlotsBusy
from service import engine as engine_module
from service.engine import LocalEngine, Unavailable
from tests.servicekit import INSTANTIATE, thread_server


def test_a_plan_past_the_slots_waits_then_is_refused(vfw_copy: Path) -> None:
    # (2 s: the vFW's plan itself struck a limit of 0.5 s on a slow machine)
    engine = LocalEngine(vfw_copy, plan_timeout=2.0, plan_slots=1)
    engine.start()
    try:
        assert engine.plan(None).plan is not None   # a slot, given back
        project = load_project(vfw_copy)
        with engine._planning(project):   # the one slot, taken by a plan in progress
            started = time.monotonic()
            with pytest.raises(Unavailable, match=r"busy \(1 plan in progress, as many as"):
                engine.plan(None)
            assert 1.9 < time.monotonic() - started < 10   # waited for a slot, up to the plan's time limit
        assert engine.plan(None).plan is not None
    finally:
        engine.shutdown(10)


def test_plans_past_the_slots_wait_their_turn(vfw_copy: Path) -> None:
    """Four requests at once on one slot: never two plans at once, and each is answered."""
    engine = LocalEngine(vfw_copy, plan_slots=1)
    engine.start()
    inside, most, lock = 0, 0, threading.Lock()
    planned = engine_module.make_plan

    def counted(*args, **kwargs):
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            return planned(*args, **kwargs)
        finally:
            with lock:
                inside -= 1

    results: list = []
    try:
        engine_module.make_plan = counted
        threads = [threading.Thread(target=lambda: results.append(engine.plan(None).status)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        engine_module.make_plan = planned
        engine.shutdown(10)
    assert results == ["optimal"] * 4 and most == 1


def _at_once(slots: PlanSlots, project) -> int:
    """How many plans of ``project`` the slots let in at once."""
    with ExitStack() as stack:
        for count in range(64):
            try:
                stack.enter_context(slots.slot(project, timeout=0))
            except SlotsBusy:
                return count
    return 64


def test_the_default_slots_fit_the_machine(vfw_copy: Path, monkeypatch) -> None:
    """One plan per CPU, no more than fit the memory at the project's cap each
    (by default half the memory, at most 4 GB)."""
    from planner import machine

    project = load_project(vfw_copy)
    monkeypatch.setattr(machine, "cpus", lambda: 8)
    monkeypatch.setattr(machine, "memory_mb", lambda: 8192)
    assert _at_once(PlanSlots.for_machine(), project) == 2      # caps of 4 GB in 8 GB
    monkeypatch.setattr(machine, "memory_mb", lambda: 65536)
    assert _at_once(PlanSlots.for_machine(), project) == 8      # one per CPU
    monkeypatch.setattr(machine, "cpus", lambda: 1)
    monkeypatch.setattr(machine, "memory_mb", lambda: 300)
    assert _at_once(PlanSlots.for_machine(), project) == 1      # never none


def test_over_the_api_a_plan_that_finds_no_slot_is_a_503(vfw_copy: Path, monkeypatch) -> None:
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace("solve_timeout: 20 ", "solve_timeout: 1  "))
    monkeypatch.setattr(PlanSlots, "for_machine", classmethod(lambda cls: cls(1, None)))
    planned = engine_module.make_plan

    def slow(*args, **kwargs):
        time.sleep(3)   # longer than a plan's time limit: the next request waits that long for the slot
        return planned(*args, **kwargs)

    monkeypatch.setattr(engine_module, "make_plan", slow)
    with thread_server(vfw_copy) as url:
        answers: list[httpx.Response] = []
        first = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{url}/v1/plans", json={"request": INSTANTIATE}, timeout=60)))
        first.start()
        time.sleep(0.5)
        second = httpx.post(f"{url}/v1/plans", json={"request": INSTANTIATE}, timeout=60)
        first.join(60)
    assert second.status_code == 503 and second.headers["Retry-After"] == "5", second.text
    assert "as many as this process makes at once" in second.json()["detail"]
    assert [a.status_code for a in answers] == [200]


def test_a_runs_replan_takes_the_servers_slots(vfw_copy: Path, monkeypatch) -> None:
    """A run of the server that fails re-plans within the server's plan slots (executor/shared.py),
    as the server's own plans do."""
    import yaml

    from executor import engine as executor_engine
    from service.engine import Submission
    from tests.test_apply import REFUSED_REGION_TWO

    simulation = vfw_copy / "sim.yaml"
    simulation.write_text(yaml.safe_dump(REFUSED_REGION_TWO))
    engine = LocalEngine(vfw_copy, simulation=simulation, plan_slots=1)
    seen: list[int] = []
    planned = executor_engine.make_plan

    def counted(*args, **kwargs):
        seen.append(engine._shared.plans.busy)
        return planned(*args, **kwargs)

    monkeypatch.setattr(executor_engine, "make_plan", counted)
    engine.start()
    try:
        run = engine.submit(Submission(), "test").run
        deadline = time.monotonic() + 120
        while engine.driving(run):
            assert time.monotonic() < deadline, engine.run(run).effective_status
            time.sleep(0.05)
        assert engine.run(run).status == "complete"
    finally:
        engine.shutdown(30)
    assert seen == [1]   # one re-plan, made holding the server's one slot


def test_serve_without_the_serve_extra_says_which_extra_to_install(monkeypatch) -> None:
    """ordo installed alone (pip install ordo): serve names the extra, not a bug in ordo."""
    import sys

    from tests.conftest import VFW, run_ordo

    for name in [n for n in sys.modules if n == "service.server"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)   # import uvicorn: ModuleNotFoundError
    done = run_ordo("serve", "-C", VFW, "--listen", "127.0.0.1:0")
    assert done.code == 1 and "ordo serve needs the serve extra (pip install 'ordo[serve]')" in done.err, done.text
