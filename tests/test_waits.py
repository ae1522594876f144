"""Declared waits (issue 13): an operation that completes when an outside event arrives at ordo
(`ordo event`, POST /v1/runs/RUN/events) or when a polled observation matches, and fails for good
at its deadline; journaled, and resumed with its original deadline.

Runs are carried out on a thread of this process (the library, or `ordo serve` on a thread) while
the test delivers the events; simulated controllers, deadlines of a fraction of a second or an
injected host clock: nothing sleeps long.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.errors import DiagnosticsError
from domain.project import load_project
from executor.controllers.base import OperationRequest
from executor.controllers.simulated import World
from executor.core import ExecutionError
from executor.core.loop import WAIT_GRACE
from executor.engine import ApplyOptions, Executor, RunResult, rebuild
from executor.journal import Event, Journal
from planner.core import make_plan
from tests.conftest import run_ordo
from tests.servicekit import thread_server, wait_state

CATALOG = """\
controllers:
  aai: {}
  cloud: {}
lifecycles:
  pnf:
    states: [absent, registered]
    operations:
      register:   { from: absent, to: registered }
      unregister: { from: registered, to: absent }
  app:
    states: [absent, deployed]
    operations:
      deploy: { from: absent, to: deployed }
      remove: { from: deployed, to: absent }
types:
  pnf:                    # a PNF registers itself: ordo sends nothing and waits for the event
    lifecycle: pnf
    controller: aai
    secrets: [psk]
    operations:
      register: { outputs: [ip_address, psk], wait: { event: registered, deadline: DEADLINE, send: false } }
  app:                    # deployed through the controller, which calls back when it is done
    lifecycle: app
    controller: cloud
    operations:
      deploy: { outputs: [stack_id, ready_at], wait: { event: deployed, deadline: 600 } }
  box:                    # ready once the controller reports status = ready
    lifecycle: app
    controller: cloud
    operations:
      deploy: { outputs: [status], wait: { observe: { output: status, equals: ready }, every: 0.05,
                                           deadline: 600, send: false } }
"""

BOTH = """\
resources:
  - { name: pnf-1, type: pnf }
  - { name: web, type: app }
"""
PNF = "resources:\n  - { name: pnf-1, type: pnf }\n"


def project(tmp_path: Path, request: str = BOTH, deadline: float = 600) -> Path:
    (tmp_path / "catalog.yaml").write_text(CATALOG.replace("DEADLINE", str(deadline)), encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text("targets: {}\nresources: []\n", encoding="utf-8")
    (tmp_path / "request.yaml").write_text(request, encoding="utf-8")
    (tmp_path / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n",
                                        encoding="utf-8")
    return tmp_path


def journal_of(root: Path) -> Path:
    return root / ".ordo" / "journal.db"


def events(root: Path, run: int = 1) -> list[Event]:
    with Journal(journal_of(root), create=False) as jr:
        return jr.events(run)


def wait_for(root: Path, kind: str, op: str, run: int = 1, timeout: float = 30) -> Event:
    """The first event of ``kind`` on ``op`` once the run has written it."""
    deadline = time.monotonic() + timeout
    while True:
        if journal_of(root).exists():
            found = [ev for ev in events(root, run) if ev.kind == kind and ev.op == op]
            if found:
                return found[0]
        assert time.monotonic() < deadline, f"no {kind} of {op}: {[e.kind for e in events(root, run)]}"
        time.sleep(0.02)


class Driven:
    """A run carried out on a thread by an :class:`Executor` (``clock``: the host's clock)."""

    def __init__(self, root: Path, clock: Callable[[], float] | None = None, max_replans: int = 0) -> None:
        project_ = load_project(root)
        plan = make_plan(project_).plan
        assert plan is not None
        self.journal = Journal(journal_of(root))
        self.executor = Executor(self.journal, lambda observed: load_project(root, observed=observed),
                                 options=ApplyOptions(poll=0.02, max_replans=max_replans), clock=clock)
        self.result: RunResult | None = None
        self.thread = threading.Thread(target=self._go, args=(lambda: self.executor.apply(project_, plan),))
        self.thread.start()

    def _go(self, start: Callable[[], RunResult]) -> None:
        try:
            self.result = start()
        finally:
            self.executor.close()
            self.journal.close()

    def resume(self, root: Path, run: int, clock: Callable[[], float] | None = None) -> None:
        self.journal = Journal(journal_of(root))
        self.executor = Executor(self.journal, lambda observed: load_project(root, observed=observed),
                                 options=ApplyOptions(poll=0.02, max_replans=0), clock=clock)
        self.result = None
        self.thread = threading.Thread(target=self._go, args=(lambda: self.executor.resume(run),))
        self.thread.start()

    def end(self, timeout: float = 30) -> RunResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        assert self.result is not None
        return self.result

    def stop(self) -> RunResult:
        self.executor.request_stop()
        return self.end()


def test_events_from_the_cli_complete_the_waiting_operations_and_the_run(tmp_path: Path) -> None:
    root = project(tmp_path)
    run = Driven(root)
    waiting = wait_for(root, "waiting", "pnf-1/register")
    assert waiting.data["event"] == "registered" and waiting.data["send"] is False
    assert waiting.data["deadline"] == pytest.approx(waiting.at + 600, abs=5)
    sent = wait_for(root, "sent", "web/deploy")            # called first, then waits for the callback
    assert not [ev for ev in events(root) if ev.kind == "intent" and ev.op == "pnf-1/register"]  # sent nothing
    assert not [ev for ev in events(root) if ev.kind == "result"]

    done = run_ordo("event", "1", "pnf-1", "registered", "--data", "ip_address=10.0.0.7", "--data", "psk=s3cr3t-psk",
                    "-C", root)
    assert done.code == 0, done.err
    assert "delivered to run 1 (pnf-1/register)" in done.out
    wait_for(root, "result", "pnf-1/register")
    assert not [ev for ev in events(root) if ev.kind == "result" and ev.op == "web/deploy"]
    done = run_ordo("event", "1", "web", "deployed", "--data", "ready_at=12:00", "--data", "password=hunter22",
                    "-C", root)
    assert done.code == 0, done.err
    assert run.end().status == "complete"

    journaled = events(root)
    received = [ev for ev in journaled if ev.kind == "event-received"]
    assert [(ev.op, ev.data["event"]) for ev in received] == [("pnf-1/register", "registered"),
                                                             ("web/deploy", "deployed")]
    assert all(ev.data["principal"].startswith("cli:") for ev in received)
    results = {ev.op: ev.data for ev in journaled if ev.kind == "result"}
    assert results["pnf-1/register"]["waited"] == "event"
    assert results["pnf-1/register"]["outputs"]["ip_address"] == "10.0.0.7"
    # the call's outputs and the declared ones of the event's data; undeclared data stays in the event
    assert set(results["web/deploy"]["outputs"]) == {"stack_id", "ready_at"}
    assert results["web/deploy"]["outputs"]["stack_id"] == sent.data["outputs"]["stack_id"]
    assert results["web/deploy"]["outputs"]["ready_at"] == "12:00"
    text = journal_of(root).read_bytes() + b"".join(p.read_bytes() for p in root.glob(".ordo/journal.db-wal"))
    assert b"hunter22" not in text and b"s3cr3t-psk" not in text   # secret-looking and declared secrets masked
    with Journal(journal_of(root), create=False) as jr:
        assert jr.state()["pnf-1"].state == "registered"
        assert jr.state()["pnf-1"].attributes["ip_address"] == "10.0.0.7"
    shown = run_ordo("show", "1", "-C", root)
    assert "waiting  pnf-1/register for event 'registered' until" in shown.out
    assert "event    web/deploy 'deployed' from cli:" in shown.out


def test_an_event_is_taken_by_its_deadline_on_the_wall_clock_of_the_process_that_delivers_it(tmp_path: Path) -> None:
    """The run's clock is monotonic: after the wall clock was set forward an hour (NTP, a VM resumed),
    the deadline it journaled for a wait just begun was an hour past for every other process, and
    `ordo event` refused the event at once (a sweep of clocks and time's). Its deadline is also the
    wait's length from when its start was journaled, on the wall clock."""
    root = project(tmp_path, PNF)
    run = Driven(root, clock=lambda: time.time() - 3600)   # the wall clock set an hour forward since the run began
    waiting = wait_for(root, "waiting", "pnf-1/register")
    assert waiting.data["deadline"] < time.time() - 2000
    done = run_ordo("event", "1", "pnf-1", "registered", "--data", "ip_address=10.0.0.7", "-C", root)
    assert done.code == 0, done.text
    assert run.end().status == "complete"


def test_the_runs_clock_does_not_follow_the_wall_clock_set_forward(tmp_path: Path, monkeypatch) -> None:
    """Calls' time limits and retries are timed on it: a clock that followed the wall clock set forward (a
    review of 7 December) took every call in flight for one past its time limit, its answer thrown away."""
    with Journal(tmp_path / "j.db") as jr:
        executor = Executor(jr, lambda observed: None)
        before = executor.clock()
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)
        assert executor.clock() - before < 60


def test_an_event_over_http_completes_the_operation_and_bad_ones_are_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    with thread_server(root) as url, httpx.Client(base_url=url, timeout=30) as api:
        accepted = api.post("/v1/runs", json={})
        assert accepted.status_code == 202, accepted.text
        run = accepted.json()["id"]
        wait_for(root, "waiting", "pnf-1/register", run=run)
        wait_for(root, "sent", "web/deploy", run=run)

        def post(body: Any, to: int = run) -> httpx.Response:
            return api.post(f"/v1/runs/{to}/events", json=body)

        assert post({"resource": "pnf-1", "event": "registered"}, to=99).status_code == 404
        unknown = post({"resource": "nope", "event": "registered"})
        assert unknown.status_code == 422 and "no operation on 'nope'" in unknown.json()["detail"]
        other = post({"resource": "pnf-1", "event": "deployed"})
        assert other.status_code == 422 and "waits for 'registered', not 'deployed'" in other.json()["detail"]
        nested = post({"resource": "pnf-1", "event": "registered", "data": {"a": {"b": 1}}})
        assert nested.status_code == 422 and nested.json()["detail"][0]["loc"][:3] == ["body", "data", "a"]
        long = post({"resource": "pnf-1", "event": "registered", "data": {"a": "x" * 5000}})
        assert long.status_code == 422 and "data.a: text of 5,000 characters" in long.json()["detail"]
        control = post({"resource": "pnf-1", "event": "registered", "data": {"a": "x\x00y"}})
        assert control.status_code == 422 and "control character" in control.json()["detail"]
        extra = post({"resource": "pnf-1", "event": "registered", "by": "me"})
        assert extra.status_code == 422
        assert not [ev for ev in events(root, run) if ev.kind == "event-received"]   # nothing refused was written

        ok = post({"resource": "pnf-1", "event": "registered",
                   "data": {"ip_address": "10.0.0.9", "token": "t0ps3cret", "link": "http://h/p?a=1"}})
        assert ok.status_code == 202, ok.text
        assert "delivered" in ok.json()["message"]
        sent = {"ip_address": "10.0.0.9", "token": "t0ps3cret", "link": "http://h/p?a=1"}
        # a retried callback, once the run took the first and its operation is done: "no operation on 'pnf-1'
        # waits for an event now", a 409 (a race the test lost now and then, on a slow machine)
        wait_for(root, "result", "pnf-1/register", run=run)
        again = post({"resource": "pnf-1", "event": "registered", "data": sent})
        assert again.status_code == 202 and "had arrived already" in again.json()["message"], again.text
        for data in ({**sent, "ip_address": "10.0.0.8"}, {**sent, "token": "other"}, {**sent, "n": 1},
                     {k: v for k, v in sent.items() if k != "token"},
                     {**sent, "link": "http://h/p?a=2"}):   # (a difference the masking of text hides, too)
            changed = post({"resource": "pnf-1", "event": "registered", "data": data})
            assert changed.status_code == 409 and "arrived already with other data" in changed.json()["detail"], \
                (data, changed.text)
        assert post({"resource": "web", "event": "deployed"}).status_code == 202
        assert wait_state(api, run, ("complete",), timeout=30)
        late = post({"resource": "web", "event": "deployed"})
        assert late.status_code == 409 and f"run {run} is complete" in late.json()["detail"]
    journaled = events(root, run)
    received = [ev for ev in journaled if ev.kind == "event-received"]
    assert len(received) == 2 and received[0].data["principal"].startswith("local")
    assert received[0].data["data"]["token"] != "t0ps3cret"
    results = {ev.op: ev.data for ev in journaled if ev.kind == "result"}
    assert results["pnf-1/register"]["outputs"] == {"ip_address": "10.0.0.9"}


def test_a_waiting_run_of_the_service_waits_on_after_a_restart_with_its_deadline(tmp_path: Path) -> None:
    root = project(tmp_path, PNF)
    with thread_server(root) as url, httpx.Client(base_url=url, timeout=30) as api:
        run = api.post("/v1/runs", json={}).json()["id"]
        first = wait_for(root, "waiting", "pnf-1/register", run=run)
    assert [ev.data["status"] for ev in events(root, run) if ev.kind == "run-ended"] == ["interrupted"]
    with thread_server(root) as url, httpx.Client(base_url=url, timeout=30) as api:   # resumed on start
        assert api.get(f"/v1/runs/{run}").json()["state"] == "running"
        ok = api.post(f"/v1/runs/{run}/events", json={"resource": "pnf-1", "event": "registered"})
        assert ok.status_code == 202, ok.text
        assert wait_state(api, run, ("complete",), timeout=30)
    journaled = events(root, run)
    assert [ev.data["deadline"] for ev in journaled if ev.kind == "waiting"] == [first.data["deadline"]]
    assert [ev.kind for ev in journaled if ev.kind in ("resumed", "event-received", "result")] == [
        "resumed", "event-received", "result"]


def test_a_polled_observation_that_matches_completes_the_operation(tmp_path: Path) -> None:
    root = project(tmp_path, "resources:\n  - { name: box-1, type: box }\n")
    run = Driven(root)
    waiting = wait_for(root, "waiting", "box-1/deploy")
    assert waiting.data["observe"] == {"output": "status", "equals": "ready"} and waiting.data["every"] == 0.05
    time.sleep(0.2)   # observed a few times: not there yet
    assert not [ev for ev in events(root) if ev.kind in ("result", "failed")]
    world = World(root / ".ordo" / "simulated-world.db")
    try:   # someone else brings it up: status starting, then ready
        world.apply(OperationRequest(run="outside", key="outside-1", resource="box-1", type="box", operation="deploy",
                                     from_state="absent", to_state="deployed", inputs={"status": "starting"}), "x")
        time.sleep(0.2)
        assert not [ev for ev in events(root) if ev.kind == "result"]
        world.apply(OperationRequest(run="outside", key="outside-2", resource="box-1", type="box", operation="deploy",
                                     from_state="deployed", to_state="deployed", inputs={"status": "ready"}), "x")
    finally:
        world.close()
    assert run.end().status == "complete"
    result = wait_for(root, "result", "box-1/deploy")
    assert result.data["waited"] == "observed" and result.data["outputs"] == {"status": "ready"}


def test_the_deadline_fails_the_operation_for_good(tmp_path: Path) -> None:
    root = project(tmp_path, PNF, deadline=0.3)
    done = run_ordo("apply", "--auto-approve", "--max-replans", "0", "-C", root)
    assert done.code == 3, done.out + done.err      # fallout: failed, observed, no re-plan left
    failed = [ev for ev in events(root) if ev.kind == "failed"]
    assert len(failed) == 1 and failed[0].op == "pnf-1/register"
    assert failed[0].data["code"] == "deadline" and failed[0].data["in_doubt"] is False
    assert failed[0].data["transient"] is False
    assert "no event 'registered' within the deadline of 0.3 s" in failed[0].data["error"]
    learnt = [ev for ev in events(root) if ev.kind == "learnt"]
    assert learnt[0].data["facts"] == [["failed", "pnf-1", "register"]]
    late = run_ordo("event", "1", "pnf-1", "registered", "-C", root)   # its wait is over
    assert late.code == 1 and "no operation on 'pnf-1' waits for an event now" in late.err


def test_a_resumed_wait_keeps_its_original_deadline(tmp_path: Path) -> None:
    root = project(tmp_path, PNF)
    now = [1000.0]
    run = Driven(root, clock=lambda: now[0])
    assert wait_for(root, "waiting", "pnf-1/register").data["deadline"] == 1600.0
    assert run.stop().status == "interrupted"
    live = run.executor.state
    with Journal(journal_of(root), create=False) as jr:
        read = rebuild(jr, 1)      # what the journal says is what the run knew
    assert (read.waits, read.sent, read.arrived, read.done) == (live.waits, live.sent, live.arrived, live.done)

    now[0] = 1300.0    # resumed later: it waits on, until 1600 and not 1300 + 600
    run.resume(root, 1, clock=lambda: now[0])
    wait_for(root, "resumed", None)
    time.sleep(0.2)
    assert run.thread.is_alive()
    now[0] = 1600.5    # past the deadline, not past its grace: an event accepted at the deadline may be on its way
    time.sleep(0.2)
    assert run.thread.is_alive()
    now[0] = 1600 + WAIT_GRACE + 0.5
    assert run.end().status == "fallout"
    journaled = events(root)
    assert [ev.data["deadline"] for ev in journaled if ev.kind == "waiting"] == [1600.0]   # journaled once
    failed = [ev for ev in journaled if ev.kind == "failed"]
    assert len(failed) == 1 and failed[0].data["code"] == "deadline"


def test_an_event_accepted_at_the_deadline_completes_the_operation(tmp_path: Path) -> None:
    """`ordo event` (or the service) accepts an event up to the wait's deadline and says the run goes on
    with it; the run, which reads the journal for events every poll, failed the wait at the deadline
    itself, and an event written just before was dropped. It fails WAIT_GRACE later."""
    from executor.waits import deliver

    root = project(tmp_path, PNF)
    now = [1000.0]
    run = Driven(root, clock=lambda: now[0])
    assert wait_for(root, "waiting", "pnf-1/register").data["deadline"] == 1600.0
    now[0] = 1600.2    # the host's clock is past the deadline ...
    time.sleep(0.1)
    with Journal(journal_of(root), create=False) as jr:   # ... as the event, accepted just before it, is written
        done = deliver(jr, 1, "pnf-1", "registered", {"ip_address": "10.0.0.9"}, "callback", now=1599.99)
    assert "it goes on at once" in done.message
    assert run.end().status == "complete"
    results = [ev for ev in events(root) if ev.kind == "result"]
    assert results[0].op == "pnf-1/register" and results[0].data["outputs"] == {"ip_address": "10.0.0.9"}
    assert not [ev for ev in events(root) if ev.kind == "failed"]


def test_an_event_accepted_before_the_deadline_is_taken_after_a_slow_observation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host was busy observing another waiting resource (a slow controller) from before the deadline
    until past its grace: the wait failed on the clock alone, and the event accepted before the deadline
    was dropped (a review's repro). The journal is looked at for its event first (Collect)."""
    from executor.waits import deliver

    root = project(tmp_path, PNF + "  - { name: b, type: box }\n", deadline=100)   # (b's: 600 s)
    now = [1000.0]
    observed = Executor._probe

    def slow(self: Executor, core: Any, cmd: Any) -> Any:
        if now[0] < 1100:   # once: the event is accepted during the look, which ends past the grace
            with Journal(journal_of(root), create=False) as jr:
                deliver(jr, 1, "pnf-1", "registered", {"ip_address": "10.0.0.8"}, "callback", now=1099.7)
            now[0] = 1100 + WAIT_GRACE + 1
        return observed(self, core, cmd)

    monkeypatch.setattr(Executor, "_probe", slow)
    run = Driven(root, clock=lambda: now[0])
    assert wait_for(root, "waiting", "pnf-1/register").data["deadline"] == 1100.0
    wait_for(root, "result", "pnf-1/register")
    assert not [ev for ev in events(root) if ev.kind == "failed"]
    run.stop()


def test_an_event_for_a_run_nobody_carries_out_is_kept_for_its_resume(tmp_path: Path) -> None:
    root = project(tmp_path, PNF)
    run = Driven(root)
    wait_for(root, "waiting", "pnf-1/register")
    assert run.stop().status == "interrupted"

    refused = {
        ("9", "pnf-1", "registered"): "no run 9",
        ("1", "nope", "registered"): "resource: run 1 has no operation on 'nope'",
        ("1", "pnf-1", "deployed"): "event: 'pnf-1' waits for 'registered', not 'deployed'",
        ("1", "pnf 1", "registered"): "resource: 'pnf 1' is not a name",
    }
    for args, message in refused.items():
        done = run_ordo("event", *args, "-C", root)
        assert done.code == 1 and message in done.err, (args, done.err)
    for data, message in (("novalue", "the 1st one has no =: expected KEY=VALUE"),
                          ("=hunter2", "the 1st one has no KEY before =: expected KEY=VALUE"),
                          ("bad key=1", "key 'bad key' is not a name"),
                          ("k=" + "x" * 5000, "data.k: text of 5,000 characters")):
        done = run_ordo("event", "1", "pnf-1", "registered", "--data", data, "-C", root)
        assert done.code == 1 and message in done.err, (data, done.err)
        assert "Traceback" not in done.err
    # what was meant as KEY=VALUE is not shown: it may hold a secret, and be long (the CLI sweep of 6 December)
    done = run_ordo("event", "1", "pnf-1", "registered", "--data", "a=1", "--data", "password:hunter2SECRET",
                    "-C", root)
    assert done.code == 1 and "the 2nd one has no =" in done.err and "hunter2" not in done.err, done.err
    assert not [ev for ev in events(root) if ev.kind == "event-received"]

    done = run_ordo("event", "1", "pnf-1", "registered", "--data", "ip_address=10.1.1.1", "-C", root)
    assert done.code == 0 and "`ordo resume 1` goes on with it" in done.out
    resumed = run_ordo("resume", "1", "-C", root)
    assert resumed.code == 0, resumed.out + resumed.err
    result = [ev for ev in events(root) if ev.kind == "result"]
    assert result[0].op == "pnf-1/register" and result[0].data["outputs"] == {"ip_address": "10.1.1.1"}
    ended = run_ordo("event", "1", "pnf-1", "registered", "-C", root)
    assert ended.code == 1 and "run 1 is complete: it waits for nothing" in ended.err


def test_of_two_deliveries_at_once_with_other_data_one_is_written_and_the_other_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each delivery read the run, found the event not arrived, and wrote it: both were answered
    "delivered", and the run took the first one's data only (the hostile sweep of 6 December). The
    other delivery is made here between one's read of the run and its write."""
    import executor.waits as waits
    from executor.waits import deliver

    root = project(tmp_path, PNF)
    run = Driven(root)
    wait_for(root, "waiting", "pnf-1/register")
    assert run.stop().status == "interrupted"
    read = waits.rebuild
    others: list[str] = []

    def read_then_another_delivers(jr: Journal, run_id: int, evs: list[Event] | None = None) -> object:
        rs = read(jr, run_id, evs)
        if not others:
            others.append("")
            others[0] = deliver(jr, run_id, "pnf-1", "registered", {"ip_address": "10.0.0.1"}, "other").message
        return rs

    monkeypatch.setattr(waits, "rebuild", read_then_another_delivers)
    with Journal(journal_of(root), create=False) as jr:
        with pytest.raises(ExecutionError, match="arrived already with other data"):
            deliver(jr, 1, "pnf-1", "registered", {"ip_address": "10.0.0.2"}, "late")
        assert "delivered to run 1" in others[0]
        again = deliver(jr, 1, "pnf-1", "registered", {"ip_address": "10.0.0.1"}, "late")
        assert "had arrived already" in again.message and again.seq is None
    received = [ev for ev in events(root) if ev.kind == "event-received"]
    assert [ev.data["principal"] for ev in received] == ["other"]


def test_a_stopping_run_with_a_wait_past_its_deadline_is_not_woken_again_and_again() -> None:
    """A stop lets the calls in flight finish; an event wait past its deadline then waits for the journal to
    be read (Collect), which a stopping run does not ask: its deadline, in the past, was the next timer,
    and the host woke the core at once, again and again, until the calls ended."""
    from dataclasses import replace

    from domain.model import WaitRule
    from executor.core import Collect, Stop, Tick, Wait
    from tests.test_run_core import begin, dispatched, only, plan_of, spec_of

    plan = plan_of({"a/create": ("c", 1), "p/create": ("c", 1), "q/create": ("c", 1)})
    spec = spec_of(plan, limit=3, timeout=30.0)
    ops = dict(spec.ops)
    ops["p/create"] = replace(ops["p/create"], wait=WaitRule(deadline=5.0, event="gone", send=False))
    ops["q/create"] = replace(ops["q/create"], wait=WaitRule(deadline=100.0, state="present", every=0.5,
                                                             send=False))
    host, cmds = begin(plan, replace(spec, ops=ops))
    assert dispatched(cmds) == ["a/create"]
    host.step(Stop("interrupted", 1.0))
    cmds = host.step(Tick(10.0))
    # a's timeout: not p's deadline, nor q's next look (no Probe goes out while the run stops), both past
    assert not only(cmds, Collect) and only(cmds, Wait)[0].until == 30.0


def test_a_wait_past_its_deadline_while_a_failure_drains_is_looked_for_and_fails_with_it() -> None:
    """A failure leaves calls in flight to finish before it is observed; an event wait past its deadline
    meanwhile was kept for the next plan, where it failed at once and cost a re-plan of its own."""
    from dataclasses import replace

    from domain.model import WaitRule
    from executor.core import Arrived, CallError, Collect, Tick
    from tests.test_run_core import begin, dispatched, only, plan_of, spec_of

    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "p/create": ("c", 1)})
    spec = spec_of(plan, limit=3, timeout=300.0)
    ops = dict(spec.ops)
    ops["p/create"] = replace(ops["p/create"], wait=WaitRule(deadline=5.0, event="gone", send=False))
    host, cmds = begin(plan, replace(spec, ops=ops))
    assert sorted(dispatched(cmds)) == ["a/create", "b/create"]
    host.complete(2.0, "b/create", error=CallError("no", applied=False))
    cmds = host.step(Tick(10.0))
    assert only(cmds, Collect) == [Collect(["p/create"])]
    host.step(Arrived([], 10.0))
    failed = sorted(ev.op for ev in host.journal if ev.kind == "failed")
    assert failed == ["b/create", "p/create"]   # in plan 1, with b's


def test_a_resume_that_observes_a_failure_fails_a_wait_past_its_deadline_with_it() -> None:
    """The run stopped while a failure drained and a wait passed its deadline; resumed, it observed the
    failure and planned again, where the wait failed at once and cost a re-plan of its own (a run with
    max_replans 1 fell out). It fails with the failure, before the first re-plan, as in a run going on."""
    from dataclasses import replace

    from domain.model import WaitRule
    from executor.core import CallError, Continue, Observe, Record, Resumed, RunCore
    from tests.test_run_core import Host, begin, only, plan_of, replayed, spec_of

    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "p/create": ("c", 1)})
    spec = spec_of(plan, limit=3, timeout=300.0)
    ops = dict(spec.ops)
    ops["p/create"] = replace(ops["p/create"], wait=WaitRule(deadline=5.0, event="gone", send=False))
    spec = replace(spec, ops=ops)
    host, _ = begin(plan, spec)
    host.complete(2.0, "b/create", error=CallError("no", applied=False))   # a still runs: the process dies
    resumed = Host(RunCore(replayed(host.journal), key_prefix="ordo:j:1:"))
    resumed.step(Resumed("crashed", 10.0))
    cmds = resumed.step(Continue(spec, False, 10.0))
    [failed] = [ev for cmd in only(cmds, Record) for ev in cmd.events if ev.kind == "failed"]
    assert failed.op == "p/create" and failed.data["code"] == "deadline"
    assert {c.resource for c in only(cmds, Observe)[0].concerns} >= {"b", "p"}   # observed with b's failure


def test_a_wait_that_follows_a_wait_begins_when_the_first_is_met() -> None:
    """Two operations that send nothing and wait, one after the other: the first's event released the
    second, which was left out of the waits, and the run stopped on "operations left that can never start"
    (a review's fuzzing of the run core)."""
    from dataclasses import replace

    from domain.model import WaitRule
    from executor.core import Arrived, Wait
    from tests.test_run_core import begin, only, plan_of, spec_of

    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)}, (("a/create", "b/create"),))
    spec = spec_of(plan)
    ops = dict(spec.ops)
    for oid, event in (("a/create", "first"), ("b/create", "second")):
        ops[oid] = replace(ops[oid], wait=WaitRule(deadline=60.0, event=event, send=False))
    host, _ = begin(plan, replace(spec, ops=ops))
    came = Event("event-received", op="a/create", data={"resource": "a", "event": "first", "data": {},
                                                         "principal": "test"}, seq=len(host.journal) + 1, run=1)
    host.journal.append(came)
    cmds = host.step(Arrived([came], 1.0))
    assert [(ev.kind, ev.op) for ev in host.journal[-2:]] == [("result", "a/create"), ("waiting", "b/create")]
    assert only(cmds, Wait)


@pytest.mark.parametrize(("wait", "message"), [
    ("{ event: x, observe: { state: registered }, deadline: 5 }", "give either 'event' or 'observe'"),
    ("{ event: x }", "deadline"),
    ("{ event: x, deadline: 5, every: 1 }", "'every' goes with 'observe'"),
    ("{ observe: { output: status }, deadline: 5 }", "'output' and 'equals' go together"),
    ("{ observe: { state: up }, deadline: 5 }", "unknown state 'up'"),
    ("{ event: x, deadline: 0 }", "greater than 0"),
    # a typo polled the controller back to back (a sweep of clocks and time's)
    ("{ observe: { state: registered }, every: 0.000001, deadline: 5 }", "greater than or equal to 0.01"),
])
def test_a_wrong_wait_in_the_catalog_is_named(tmp_path: Path, wait: str, message: str) -> None:
    root = project(tmp_path, PNF)
    catalog = root / "catalog.yaml"
    text = catalog.read_text().replace("wait: { event: registered, deadline: 600, send: false }", f"wait: {wait}")
    catalog.write_text(text)
    with pytest.raises(DiagnosticsError) as caught:
        load_project(root)
    problems = [(d.file, d.line, d.path, d.summary + " " + (d.detail or "")) for d in caught.value.diagnostics]
    assert any(message in text and path.startswith("types.pnf.operations.register.wait") and line == 21
               for _, line, path, text in problems), problems


def test_temporal_refuses_a_plan_with_waits(tmp_path: Path) -> None:
    from executor.core import ExecutionError
    from executor.runs import execute
    from executor.temporal import Temporal

    root = project(tmp_path, PNF)
    loaded = load_project(root)
    plan = make_plan(loaded).plan
    with pytest.raises(ExecutionError, match=r"does not carry out declared waits yet \(pnf-1/register\)"):
        execute(loaded, plan, ApplyOptions(), None, temporal=Temporal(address="127.0.0.1:1"))
    assert not journal_of(root).exists() or not events(root)


def test_the_core_takes_an_event_that_came_during_the_call_and_a_wait_holds_no_slot() -> None:
    """The run core alone (tests/test_run_core.py's hand-played host): with a limit of one operation
    at a time, a sent operation that waits lets the next one go; an event that arrived during its
    call completes it once the call is done; a deadline fails another; the journal reads back as
    the live state at every step."""
    from dataclasses import replace

    from domain.model import WaitRule
    from executor.core import Arrived, Collect, Observe, Probe, Tick, Wait
    from tests.test_run_core import _state, begin, dispatched, only, plan_of, replayed, spec_of

    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "p/create": ("c", 1)})
    spec = spec_of(plan, limit=1)
    ops = dict(spec.ops)
    ops["a/create"] = replace(ops["a/create"], wait=WaitRule(deadline=100.0, event="up"), outputs=("ip",))
    ops["p/create"] = replace(ops["p/create"], wait=WaitRule(deadline=5.0, event="gone", send=False))
    host, cmds = begin(plan, replace(spec, ops=ops))

    def check() -> None:
        assert _state(replayed(host.journal)) == _state(host.core.state)

    assert dispatched(cmds) == ["a/create"]
    waiting = [ev for ev in host.journal if ev.kind == "waiting"]
    assert [(ev.op, ev.data["deadline"]) for ev in waiting] == [("p/create", 5.0), ("a/create", 100.0)]
    check()
    arrived = Event("event-received", op="a/create", data={"resource": "a", "event": "up", "data": {"ip": "1.2.3.4",
                                                                                                      "x": 1},
                                                          "principal": "test"}, seq=len(host.journal) + 1, run=1)
    host.journal.append(arrived)
    host.step(Arrived([arrived], 1.0))          # during the call: nothing completes yet
    assert not [ev for ev in host.journal if ev.kind == "result"]
    check()
    cmds = host.complete(2.0, "a/create")       # sent, and the event is there: complete; b takes the slot
    of_a = [ev for ev in host.journal if ev.op == "a/create"]
    assert [ev.kind for ev in of_a] == ["waiting", "intent", "event-received", "sent", "result"]
    assert of_a[-1].data["outputs"] == {"ip": "1.2.3.4"} and of_a[-1].data["waited"] == "event"
    assert dispatched(cmds) == ["b/create"]
    check()
    cmds = host.complete(3.0, "b/create")
    assert not only(cmds, Probe) and only(cmds, Wait)[0].until == 5.0 + WAIT_GRACE   # p waits for its deadline
    assert not [ev for ev in host.journal if ev.kind == "failed"]
    cmds = host.step(Tick(5.0 + WAIT_GRACE))   # the journal is looked at for its event first: none came
    assert only(cmds, Collect) == [Collect(["p/create"])] and not [ev for ev in host.journal if ev.kind == "failed"]
    cmds = host.step(Arrived([], 5.0 + WAIT_GRACE))
    failed = [ev for ev in host.journal if ev.kind == "failed"]
    assert [(ev.op, ev.data["code"], ev.data["in_doubt"]) for ev in failed] == [("p/create", "deadline", False)]
    assert only(cmds, Observe)
    check()


def test_the_web_page_shows_an_operation_waiting_for_its_event_as_waiting(tmp_path: Path) -> None:
    """An operation that sends nothing and waits has a `waiting` event and no intent: the page drew it
    pending, as if nothing had started, for as long as it waited (a sweep's)."""
    root = project(tmp_path)
    with thread_server(root) as url, httpx.Client(base_url=url, timeout=30) as api:
        run = api.post("/v1/runs", json={}).json()["id"]
        wait_for(root, "waiting", "pnf-1/register", run=run)
        page = api.get(f"/ui/runs/{run}").text
        assert re.search(r'<g class="op waiting" id="op-\d+" data-op="pnf-1/register"', page), page
        assert '"waiting": "waiting"' in page and '<span class="key waiting">' in page   # the live script, the legend
        assert api.post(f"/v1/runs/{run}/events", json={"resource": "pnf-1", "event": "registered"}).status_code == 202
        wait_for(root, "sent", "web/deploy", run=run)
        assert api.post(f"/v1/runs/{run}/events", json={"resource": "web", "event": "deployed"}).status_code == 202
        wait_state(api, run, ("complete",), timeout=30)


def test_a_retried_callback_after_a_re_plan_is_answered_as_before_it(tmp_path: Path) -> None:
    """The event's operation done and a re-plan made since (another resource failed), the operation is in
    no plan of the run's now: a retried callback was refused, "run 1 has no operation on 'pnf-1'" (a 422),
    and one with other data too, not as a conflict (a review's)."""
    from executor.waits import deliver

    root = project(tmp_path, "resources:\n  - { name: pnf-1, type: pnf }\n"
                             "  - { name: web, type: app, params: { ip: '${pnf-1.outputs.ip_address}' } }\n")
    built = load_project(root)
    with Journal(journal_of(root)) as jr:
        ex = Executor(jr, lambda observed: load_project(root, observed=observed), options=ApplyOptions(
            poll=0.02, max_replans=2, simulation={"seed": 1, "faults": [
                {"resource": "web", "operation": "deploy", "error": "permanent", "times": 1}]}))
        ended: list[Any] = []
        runner = threading.Thread(target=lambda: ended.append(ex.apply(built, make_plan(built).plan)))
        runner.start()
        try:
            wait_for(root, "waiting", "pnf-1/register")
            with Journal(journal_of(root), create=False) as other:
                assert "delivered" in deliver(other, 1, "pnf-1", "registered", {"ip_address": "10.0.0.7"}, "t").message
                deadline = time.monotonic() + 30
                while not [ev for ev in events(root) if ev.kind == "replan"]:
                    assert time.monotonic() < deadline, [ev.kind for ev in events(root)]
                    time.sleep(0.02)
                again = deliver(other, 1, "pnf-1", "registered", {"ip_address": "10.0.0.7"}, "t")
                assert "had arrived already" in again.message and again.seq is None, again.message
                with pytest.raises(ExecutionError, match="arrived already with other data"):
                    deliver(other, 1, "pnf-1", "registered", {"ip_address": "10.0.0.8"}, "t")
        finally:
            ex.request_stop()
            runner.join(30)
            ex.close()
