"""Both ends of Temporal for ordo: workers (``ordo worker``) and starting and following a run
(``ordo apply --engine temporal``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import shlex
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from domain.errors import clipped
from domain.project import Project
from executor.core.loop import begun
from executor.engine import ApplyOptions, Listener, RunResult, left_in_doubt, run_started
from executor.journal import Event, Journal, JournalError, JournalLost
from executor.store import is_url, location
from executor.temporal import Temporal, TemporalError, workflow_command, workflow_id
from executor.temporal.activities import HEARTBEAT_THROTTLE, Activities
from executor.temporal.sweep import SWEEP, SweepWorkflow
from executor.temporal.wire import Ref, planning_queue, queue_for
from executor.temporal.workflow import WORKFLOW, RunWorkflow
from planner.bounded import default_memory_mb
from planner.plan import Plan

T = TypeVar("T")

#: Modules the workflow sandbox takes from the worker as they are (deterministic, no I/O on import).
PASSTHROUGH = ("executor.core", "executor.temporal.wire", "planner.plan", "planner.schedule", "domain",
               "networkx", "pydantic", "pydantic_core", "yaml")


_RUNTIME: Runtime | None = None


def _runtime() -> Runtime:
    """The SDK's runtime of this process, made once: its core's log records go to Python's logging
    (errors only), where ordo's commands show them, on stderr. By default the core wrote its own
    warnings to stdout, in colour, while a server was down: `ordo apply --json` was no JSON then."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))))
    return _RUNTIME


async def _connect(address: str) -> Client:
    try:
        return await Client.connect(address, namespace="default", runtime=_runtime())
    except Exception as exc:  # the SDK raises RuntimeError with the transport's text
        raise TemporalError(f"cannot reach Temporal at {address}: {transport_said(str(exc))} (is a Temporal "
                            "server listening there? `temporal server start-dev` starts one)") from None


def transport_said(text: str) -> str:
    """What the SDK's connection error says, without the Rust types around it: 'Connection refused',
    not 'Failed client connect: Server connection error: tonic::transport::Error(Transport, ...'."""
    found = re.search(r'\b(?:message|error): "([^"]{1,300})"', text)
    if found:
        return found.group(1)
    first = (text.strip().splitlines() or [""])[0].removeprefix("Failed client connect: ")
    return first[:300] or "no answer"


# --- workers --------------------------------------------------------------------------

def worker_queues(prefix: str, controllers: Iterable[str]) -> list[str]:
    """The main queue (workflows, re-planning, journal), the planning queue (sweeps' scenarios) and one
    per controller (its calls)."""
    return [prefix, planning_queue(prefix), *(queue_for(name, prefix) for name in sorted(controllers))]


def run_workers(address: str, queues: list[str], prefix: str, *, journal: Path | str | None = None,
                project: Path | None = None,
                on_ready: Callable[[], None] | None = None, on_stop: Callable[[], None] | None = None) -> None:
    """Serve ``queues`` until SIGTERM, SIGINT or SIGHUP (then ``on_stop``, before the activities under way get
    their last seconds): the main queue ``prefix`` runs workflows and the steps' activities; its planning
    queue, sweeps' scenarios, as many at once as this process has plan slots (the activities' ``plans``:
    re-plans take them too); every other queue, controller calls. ``project``: the project folder whose
    runs this worker carries out (a run of another is refused)."""
    asyncio.run(_serve(address, queues, prefix, journal, project, on_ready, on_stop))


async def _serve(address: str, queues: list[str], prefix: str, journal: Path | str | None, project: Path | None,
                 on_ready: Callable[[], None] | None, on_stop: Callable[[], None] | None) -> None:
    client = await _connect(address)
    acts = Activities(journal=journal, project=project)
    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ordo-worker")
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    # Scenarios taken from the planning queue: as many as fit the slots at the default memory cap, one
    # fewer when this worker re-plans runs too (the main queue), so that a re-plan finds a slot free.
    fit = acts.plans.at_once(default_memory_mb())
    scenarios = max(1, fit - 1) if prefix in queues else fit
    workers = []
    for queue in queues:
        main, planning = queue == prefix, queue == planning_queue(prefix)
        workers.append(Worker(
            client, task_queue=queue, workflows=[RunWorkflow, SweepWorkflow] if main else [],
            activities=acts.step_activities() if main else [acts.whatif] if planning else [acts.call],
            activity_executor=pool, workflow_runner=runner,
            max_concurrent_activities=scenarios if planning else 64,
            # a workflow whose worker was lost moves to another one within seconds
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
            # the steps' heartbeats sent within a second (not 0.8 of the heartbeat timeout, 24 s): a
            # cancellation reaches an activity only in the answer to one (a re-plan stopped by an abort)
            **({"max_heartbeat_throttle_interval": timedelta(seconds=HEARTBEAT_THROTTLE)} if main else {}),
            graceful_shutdown_timeout=timedelta(seconds=5)))
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # (SIGHUP, a terminal gone, killed it at once:
        loop.add_signal_handler(sig, stopping.set)                 # its calls' programs left running on their own)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    if on_ready is not None:
        on_ready()
    await asyncio.wait([*tasks, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set() and on_stop is not None:
        on_stop()
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    for task in tasks:
        if task.done() and task.exception() is not None:
            raise TemporalError(f"a worker stopped: {task.exception()}")
    acts.close()
    pool.shutdown(wait=False, cancel_futures=True)


# --- runs -------------------------------------------------------------------------------

async def submit(client: Client, ref: Ref, wid: str) -> tuple[WorkflowHandle, bool]:
    """Start the run's workflow, or find the one started already (never a second one, even after
    the first completed): (handle, started now). While Temporal does not answer, asked again for up
    to START_FOR seconds: an answer lost after the workflow started would otherwise end the run
    failed while its workflow went on (asked again, the start finds it)."""
    give_up = time.monotonic() + START_FOR
    while True:
        try:
            handle = await client.start_workflow(WORKFLOW, ref, id=wid, task_queue=ref["queue"],
                                                 id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            return handle, True
        except WorkflowAlreadyStartedError:
            return client.get_workflow_handle(wid), False
        except RPCError as exc:
            if not _unreachable(exc) or time.monotonic() > give_up:
                raise
        await asyncio.sleep(REACH_AGAIN)


#: Seconds a run's workflow is tried to be started while Temporal does not answer.
START_FOR = 60.0


class Stopper:
    """Handed to the CLI's Ctrl-C handler in place of an executor: a stop becomes a signal."""

    def __init__(self) -> None:
        self.reason = ""

    def request_stop(self) -> None:
        self.reason = "interrupted"

    def notice_abort(self) -> None:
        """An abort reaches the workflow as a signal (``runs.abort``): nothing to hear here."""


def reference(project: Project, options: ApplyOptions, journal: Journal, run: int, plan: Plan,
              temporal: Temporal) -> Ref:
    """What the workflow gets: where things are, the run, its options, the digest of the plan confirmed."""
    def absolute(path: Path | None) -> str | None:
        return str(Path(path).resolve()) if path is not None else None

    return {"journal": str(journal.path.resolve()), "journal_id": journal.id, "run": run,
            "root": str(Path(project.root).resolve()), "request": absolute(project.request_path),
            "inventory": absolute(project.inventory_file),
            "policies": [str(Path(p).resolve()) for p in project.extra_policy_files],
            "options": options.as_dict(), "digest": plan.digest, "queue": temporal.queue,
            "continue_every": temporal.continue_every}


def apply(project: Project, plan: Plan, options: ApplyOptions, path: Path, temporal: Temporal, *,
          listener: Listener, around: Callable[[Any], Any], supersede: bool = False,
          claims: Iterable[str] | None = None, record: dict[str, Any] | None = None) -> RunResult:
    """Start a run of ``plan`` as a workflow and follow it (the journal's events to ``listener``) to its end.
    The run is recorded once Temporal answers (an unreachable service leaves nothing to resume)."""
    def start(jr: Journal) -> Ref:
        request = project.model.request_name or project.request_file or ""
        inherited = left_in_doubt(jr, supersede, claims)
        # (the folder resolved, as the reference names it: a worker compares the two, and '.' is another
        # folder to each process)
        recorded = {**options.as_dict(), **(record or {}), "engine": "temporal", "temporal": temporal.address}
        run, _ = jr.begin_run(str(Path(project.root).resolve()), request, recorded,
                              begun(plan, run_started(project, plan, options, inherited)),   # the plan confirmed
                              supersede=supersede, claims=claims, unchanged=project.observed_mark)
        return reference(project, options, jr, run, plan, temporal)

    stopper = Stopper()
    controllers = sorted({op.controller for op in plan.operations})
    with Journal(path) as jr, around(stopper):
        return asyncio.run(_apply(jr, start, temporal, controllers, listener, stopper))


async def _apply(jr: Journal, start: Callable[[Journal], Ref], temporal: Temporal, controllers: list[str],
                 listener: Listener, stopper: Stopper) -> RunResult:
    from temporalio.api.enums.v1 import TaskQueueType

    client = await _connect(temporal.address)
    try:
        # refused before the run is recorded: without a worker on a queue it would wait without a word
        await _unserved(client, temporal, [(temporal.queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "runs")] + [
            (queue_for(name, temporal.queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, f"the calls to {name}")
            for name in controllers])
        if stopper.reason:   # Ctrl-C while the queues were asked about
            raise TemporalError("stopped before the run was recorded: nothing was started")
        ref = start(jr)
        return await _to_the_end(jr, ref["run"], submit(client, ref, workflow_id(jr.id, ref["run"])), listener,
                                 stopper)
    finally:
        # The SDK's client must be gone before the interpreter finalizes (temporalio/sdk-python#300).
        del client
        gc.collect()


def follow_again(path: Path, run: int, temporal: Temporal, *, listener: Listener,
                 around: Callable[[Any], Any]) -> RunResult:
    """Follow a run whose workflow went on without the process that followed it (``ordo serve``
    restarted): this process holds the run in the journal again, its events go to ``listener``."""
    async def go(jr: Journal, stopper: Stopper) -> RunResult:
        client = await _connect(temporal.address)   # (before the run is held: Temporal down leaves it as it was)
        try:
            # held only while it still reads as followed by nobody (one that fell out meanwhile waits for a
            # decision; a claim made it running with nothing to decide it)
            jr.claim(run, only=("running", "interrupted", "failed"))
            last = jr.last_event(run)
            past = last.seq if last is not None else 0   # (a fallout before: decided since)
            return await _to_the_end(jr, run, _existing(client, workflow_id(jr.id, run)), listener, stopper,
                                     past=past)
        finally:
            del client
            gc.collect()

    stopper = Stopper()
    with Journal(path, create=False) as jr, around(stopper):
        return asyncio.run(go(jr, stopper))


async def _existing(client: Client, wid: str) -> tuple[WorkflowHandle, bool]:
    return client.get_workflow_handle(wid), False


class _Reader:
    """The journal a run's follower reads. Its database gone under it (JournalLost: a PostgreSQL restart,
    a network drop), it is opened anew and the run held again (the lost connection held it: the run read
    as crashed while its workflow went on), for up to REOPEN_FOR seconds; the process that followed
    the run exited with the error."""

    def __init__(self, jr: Journal, run: int) -> None:
        self.jr, self.run, self._opened = jr, run, []
        self.notice: Callable[[str], None] = lambda text: _logged(text, run)

    async def events(self, since: int) -> list[Event]:
        give_up = time.monotonic() + REOPEN_FOR
        lost = False
        while True:
            try:
                return self.jr.events(self.run, since=since)
            except JournalLost as exc:
                if not lost:
                    lost = True
                    self.notice(f"the journal does not answer ({_plain(str(exc), 200)}): asked again for up to "
                                f"{REOPEN_FOR:.0f}s; run {self.run} goes on in its workflow meanwhile")
                if time.monotonic() > give_up:
                    raise JournalLost(
                        f"{exc}; run {self.run} goes on in its workflow on Temporal, which waits for the journal: "
                        f"once the journal answers, `ordo show {self.run}` says how it goes (crashed while nothing "
                        f"follows it; `ordo serve` follows it again), and `ordo abort {self.run}` stops it",
                        run=self.run) from None
            await asyncio.sleep(1.0)
            with contextlib.suppress(JournalError):   # (not back yet: tried again)
                fresh = Journal(self.jr.path, create=False)
                self._opened.append(fresh)
                self.jr = fresh
                # held again while it runs; fallen out or ended meanwhile (its end is read next), or taken
                # over by another process: read, not held
                with contextlib.suppress(JournalError):
                    fresh.hold_again(self.run)

    def close(self) -> None:
        for jr in self._opened:
            with contextlib.suppress(Exception):
                jr.close()


#: Seconds a run's follower tries to open its journal again once its database went away.
REOPEN_FOR = 60.0


async def _to_the_end(jr: Journal, run: int, handle_of: Awaitable[tuple[WorkflowHandle, bool]], listener: Listener,
                      stopper: Stopper, since: int = 0, past: int = 0) -> RunResult:
    """The run's workflow followed to its end (or its fallout: the workflow then waits for a decision);
    a workflow that failed, or a Temporal that cannot be reached, ends the run ``failed`` in the journal
    if its workflow did not write its end. ``past``: the events up to this one are read again, not news
    (``follow``)."""
    reader = _Reader(jr, run)
    try:
        handle, _ = await handle_of
        answer = await follow(handle, reader, listener, stopper, since=since, past=past)
    except (WorkflowFailureError, TemporalError, RPCError) as exc:
        jr = reader.jr
        why = _causes(exc)
        info = jr.run(run)
        if info.status == "running":  # the workflow did not get to write its end
            summary = {**info.summary, "status": "failed", "reason": why}
            # (written here, not by the workflow: which may still go on, if Temporal lost its answer; a resume
            # or an abort asks it first, runs.unfollowed)
            jr.append(run, [Event("run-ended", data={**summary, "follower": True})], status="failed",
                      summary=summary)
        for ev in jr.events(run, since=0):
            if ev.kind == "run-ended":
                listener(ev)
        return RunResult(run=run, status="failed", summary=jr.run(run).summary, reason=why)
    finally:
        reader.close()
    return RunResult(run=run, status=answer["status"], summary=answer["summary"], reason=answer.get("reason", ""))


def reachable(address: str) -> None:
    """TemporalError now if Temporal does not answer at ``address`` (an apply asks before it plans: the
    plan, shown and confirmed, was otherwise thrown away, and the journal made, for nothing)."""
    async def go() -> None:
        client = await _connect(address)
        del client
        gc.collect()   # (sdk-python#300: a client of its own, gone before this returns)

    asyncio.run(go())


def workflow_state(address: str, journal_id: str, run: int) -> str:
    """What a run's workflow does: "gone" (over, or unknown to Temporal), "waits" (for a decision: the
    run fell out, or the resume that took it died before its decision reached it) or "goes on".
    TemporalError when Temporal does not answer."""
    async def state(handle: WorkflowHandle) -> str:
        if await _over(handle, address, run):
            return "gone"
        try:
            progress = await _asked_of(handle.query(RunWorkflow.progress, rpc_timeout=_ASK), address, run)
        except WorkflowQueryFailedError:   # (it ended between the two asks)
            return "gone"
        if progress is None:
            return "gone"
        return "waits" if progress.get("awaiting") == "decision" else "goes on"

    return _on_workflow(address, journal_id, run, state)


def workflow_gone(address: str, journal_id: str, run: int) -> bool:
    """Whether a run's workflow is over or unknown to Temporal (completed, failed, terminated, or its
    history gone): nothing will write to the run again."""
    return _on_workflow(address, journal_id, run, lambda handle: _over(handle, address, run))


async def _over(handle: WorkflowHandle, address: str, run: int) -> bool:
    """Whether the workflow is not running (or unknown to Temporal); TemporalError when Temporal does
    not answer."""
    described = await _asked_of(handle.describe(rpc_timeout=_ASK), address, run)
    return described is None or described.status != WorkflowExecutionStatus.RUNNING


async def _asked_of(ask: Awaitable[T], address: str, run: int) -> T | None:
    """Temporal's answer about a run's workflow; None when it knows no such workflow, TemporalError
    when it does not answer."""
    try:
        return await ask
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise TemporalError(f"cannot ask Temporal at {address} about run {run}'s workflow: {exc}") from None


def stop_workflow(address: str, journal_id: str, run: int, reason: str) -> None:
    """Signal a run's workflow to stop (``ordo abort``)."""
    _signal(address, journal_id, run, RunWorkflow.stop, reason)


def end_superseded(address: str, journal_id: str, run: int) -> None:
    """Let the workflow of a run that waited for a decision, and was superseded meanwhile, end: the
    abort it is sent finds the run ended (``ordo.decide`` writes nothing) and the workflow ends with it."""
    _signal(address, journal_id, run, RunWorkflow.decide, {"action": "abort", "principal": "", "record": {}})


def _signal(address: str, journal_id: str, run: int, signal: Any, arg: Any) -> None:
    async def send(handle: WorkflowHandle) -> None:
        try:
            await handle.signal(signal, arg)
        except Exception as exc:  # gone, or completed meanwhile
            raise TemporalError(f"cannot signal run {run}'s workflow at {address}: {exc}") from None

    _on_workflow(address, journal_id, run, send)


def _on_workflow(address: str, journal_id: str, run: int, ask: Callable[[WorkflowHandle], Awaitable[T]]) -> T:
    """``ask`` of a run's workflow, on a client of its own that is gone before this returns (sdk-python#300)."""
    async def go() -> T:
        client = await _connect(address)
        try:
            return await ask(client.get_workflow_handle(workflow_id(journal_id, run)))
        finally:
            del client
            gc.collect()

    return asyncio.run(go())


#: How long a workflow's status and progress are waited for.
_ASK = timedelta(seconds=20)


def decide(path: Path, run: int, address: str, action: str, record: dict[str, Any], *, listener: Listener,
           around: Callable[[Any], Any]) -> RunResult | None:
    """A run that fell out on Temporal decided (``action``: resume, rollback or abort; ``record``: who asked)
    by the ``decide`` signal to its workflow, which still waits, and followed to its end; None when its
    workflow is not waiting any more (it ended: the run is resumed or aborted as any other)."""
    async def go(jr: Journal, stopper: Stopper) -> RunResult | None:
        client = await _connect(address)
        try:
            handle = client.get_workflow_handle(workflow_id(jr.id, run))
            # gone only where Temporal says it knows no such workflow: one that did not answer in time was taken
            # for gone, and the run carried on here while its workflow still waited (a review's)
            described = await _asked_of(handle.describe(rpc_timeout=_ASK), address, run)
            if described is None or described.status != WorkflowExecutionStatus.RUNNING:
                return None
            try:
                progress = await handle.query(RunWorkflow.progress, rpc_timeout=_ASK)
            except (RPCError, WorkflowQueryFailedError) as exc:
                # running, and no worker answers (a query needs one): taken for gone, the run was closed or
                # carried on here while its workflow waited on for a decision no one could send it any more
                # an abort may do without a worker: a workflow ended by Temporal itself is gone, and the run
                # is then aborted here (the journal holds it)
                without = (f"; or end the workflow ({workflow_command('terminate', handle.id, address)}) and "
                           "abort again, without one" if action == "abort" else "")
                raise TemporalError(f"run {run}'s workflow is running, but no worker answers it "
                                    f"({clipped(str(exc), 200)}): start `ordo worker` for it, then try again "
                                    f"({workflow_command('describe', handle.id, address)}){without}") from None
            if progress.get("awaiting") != "decision":
                return None
            ended = jr.last_event(run, kinds=("run-ended",))
            if action != "abort" and progress.get("fallout") not in (None, ended.seq if ended is not None else None):
                return None   # the journal has moved past the fallout the workflow waits on: not to be taken
            last = jr.last_event(run)
            since = last.seq if last is not None else 0
            if action != "abort":
                jr.claim(run)  # this process follows it, as the local host would hold it
            try:
                await handle.signal(RunWorkflow.decide, {"action": action, "principal": record.get("principal", ""),
                                                         "record": record, "fallout": progress.get("fallout")})
            except RPCError as exc:
                # not sent (Temporal did not answer): the run, held here, is let go as a stopped follower's
                # (it stayed running under a live server, nothing deciding it); a resume sends the decision
                if action != "abort":
                    with contextlib.suppress(JournalError):
                        jr.append(run, [Event("interrupted", data={"how": f"the decision was not sent: {exc}"})],
                                  status="interrupted")
                raise TemporalError(f"cannot send the decision to run {run}'s workflow: {exc}") from None
            return await _to_the_end(jr, run, _existing(client, handle.id), listener, stopper, since=since)
        finally:
            del client
            gc.collect()

    stopper = Stopper()
    with Journal(path, create=False) as jr, around(stopper):
        return asyncio.run(go(jr, stopper))


async def follow(handle: WorkflowHandle, reader: _Reader, listener: Listener, stopper: Stopper | None = None,
                 poll: float = 0.25, since: int = 0, past: int = 0) -> dict[str, Any]:
    """The run's events after ``since`` as the workers journal them, to ``listener``, until the workflow
    ends or the run falls out (the workflow waits for ``decide``); an ``ordo abort`` (its journal event)
    and a Ctrl-C (``stopper``) become the ``stop`` signal. ``past``: the events up to this one are the
    run's history read again (a run followed again): a fallout among them was decided since. While no
    event comes, what the workflow waits for is said (``Quiet``)."""
    result = asyncio.ensure_future(handle.result())
    seq, signalled, aborted, cut_off, end = since, False, False, False, None
    quiet = Quiet(handle, reader, notice_of(listener))
    while True:
        finished = result.done()
        if finished and not result.cancelled() and _unreachable(result.exception()):
            # Temporal cannot be reached (restarted, the network cut) and the client has stopped trying
            # (after some 6 s): the workflow is not known to have ended, and goes on when Temporal is back.
            # The run is followed on, in the journal, and its end asked for again (it was ended failed
            # here while its workflow went on, and a resume in between carried it out beside it).
            finished, cut_off = False, True
            result = asyncio.ensure_future(_after(REACH_AGAIN, handle.result))
        for ev in await reader.events(seq):
            seq = ev.seq
            listener(ev)
            quiet.heard(ev)
            if ev.kind == "run-ended" and ev.seq > past:
                end = ev
            aborted = aborted or ev.kind == "abort-requested"
        if end is not None and not finished and (cut_off or end.data.get("status") == "fallout"):
            # fallen out: the workflow waits for a decision; any other end, while Temporal does not
            # answer, is the workflow's (its last activity journaled it)
            result.cancel()
            return {"status": end.data.get("status", "failed"), "summary": end.data,
                    "reason": end.data.get("reason", "")}
        if aborted and not signalled:
            signalled = await _signalled(handle, "aborted")
        if finished:
            return result.result()
        if stopper is not None and stopper.reason and not signalled:
            signalled = await _signalled(handle, stopper.reason)
        await quiet.look()
        await asyncio.wait([result], timeout=poll)


#: Seconds without an event of a followed run before the client asks Temporal what its workflow waits for.
QUIET_FOR = 30.0
#: Seconds after which a task scheduled at one look and still scheduled (the same attempt) at the next is said
#: to wait for a worker (seen twice by this process's clock: Temporal's times are another machine's).
STUCK_FOR = 10.0

log = logging.getLogger("ordo.temporal")

#: Where a follower says what a quiet run waits for: the text, and the run's number.
Notice = Callable[[str, int], None]


def notice_of(listener: Listener) -> Notice:
    """The listener's ``notice`` (the command line's views print it), else the log (``ordo serve``'s)."""
    return getattr(listener, "notice", None) or _logged


def _logged(text: str, run: int) -> None:
    """A notice in the log (``ordo serve``'s), naming its run."""
    log.warning("run %d: %s", run, text)


class Quiet:
    """What a followed run waits for, said once it has journaled nothing for QUIET_FOR seconds (a client
    said nothing while no worker was left to take the workflow's tasks, or the workers could not reach the
    journal): tasks Temporal has scheduled that no worker has taken (seen at two looks STUCK_FOR apart, the
    same attempt), an activity that keeps failing (Temporal retries it: a worker that cannot open the
    journal), Temporal not answering. Each thing once, until the run journals again."""

    def __init__(self, handle: WorkflowHandle, reader: _Reader, notice: Notice) -> None:
        self.handle, self.notice, self.run = handle, notice, reader.run
        self.since = time.monotonic()
        self.look_at = self.since + QUIET_FOR
        self.said: set[tuple] = set()
        self.scheduled: set[tuple] = set()   # the tasks scheduled at the last look
        reader.notice = lambda text: notice(text, reader.run)

    def heard(self, ev: Event) -> None:
        self.since = time.monotonic()
        self.look_at = self.since + QUIET_FOR
        self.said.clear()
        self.scheduled.clear()

    async def look(self) -> None:
        now = time.monotonic()
        if now < self.look_at:
            return
        self.look_at = now + QUIET_FOR
        quiet = f"nothing journaled for {now - self.since:.0f}s"
        try:
            raw = (await self.handle.describe()).raw_description
            waiting = Waiting.of(raw)
        except RPCError as exc:
            if _unreachable(exc):
                self._say(("unreachable",), f"{quiet}: Temporal does not answer ({_plain(exc.message, 200)}); the "
                                           "run goes on when it is back")
            return
        except Exception as exc:  # noqa: BLE001 - a look that fails says nothing: following the run goes on
            log.debug("run %d: cannot ask Temporal what its workflow waits for: %s", self.run, exc)
            return
        stuck = [task for task in waiting.scheduled if task.key in self.scheduled]
        if set(t.key for t in waiting.scheduled) - self.scheduled:   # (new ones: looked at again soon)
            self.look_at = now + STUCK_FOR
        self.scheduled = {t.key for t in waiting.scheduled}
        for key, text in waiting.failing:
            self._say(key, f"{quiet}: {text}")
        for key, text in said_of(stuck, self.handle.id):
            self._say(key, f"{quiet}: {text}")

    def _say(self, key: tuple, text: str) -> None:
        if key not in self.said:
            self.said.add(key)
            self.notice(text, self.run)


@dataclass(frozen=True)
class Task:
    """A task of the workflow's that Temporal has scheduled and no worker has taken: the workflow's own
    (``name`` None) or an activity, on ``queue``; ``key`` tells one attempt of it from another."""

    key: tuple
    name: str | None
    queue: str


@dataclass(frozen=True)
class Waiting:
    """What a workflow's description (DescribeWorkflowExecutionResponse) shows it waiting on: tasks
    scheduled, not taken, and activities that failed and are tried again (key, words)."""

    scheduled: list[Task]
    failing: list[tuple[tuple, str]]

    @classmethod
    def of(cls, raw: Any) -> Waiting:
        from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState

        queue = raw.execution_config.task_queue.name
        scheduled, failing = [], []
        task = raw.pending_workflow_task
        if raw.HasField("pending_workflow_task") \
                and task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
            scheduled.append(Task(("workflow", task.attempt, task.original_scheduled_time.seconds,
                                   task.original_scheduled_time.nanos), None, queue))
        for act in raw.pending_activities:
            if act.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
                continue   # (taken by a worker: running, a retry's too)
            name = act.activity_type.name
            if act.attempt > 1 and act.HasField("last_failure"):
                message = _plain(act.last_failure.message, 300)
                failing.append((("failing", name, message), f"{name} has failed {act.attempt - 1} time(s), and "
                                                            f"Temporal tries it again: {message}"))
            # scheduled, a retry too: one whose worker died (a heartbeat's timeout) waits for another, and one
            # in its backoff (seconds) is taken before the next look; the same attempt at two looks waits
            try:   # (a field of Temporal's API since 2025: an older SDK's message has none)
                own = act.activity_options.task_queue.name if act.HasField("activity_options") else ""
            except ValueError:
                own = ""
            scheduled.append(Task(("activity", act.activity_id, act.attempt), name, own or "?"))
        return cls(scheduled, failing)


def said_of(stuck: list[Task], workflow: str) -> list[tuple[tuple, str]]:
    """Tasks that no worker has taken, in words, by kind and queue."""
    said = []
    by: dict[tuple[str, str], int] = {}
    for task in stuck:
        if task.name is None:
            said.append((("workflow",), f"no worker has taken up the run's workflow task ({workflow}, task queue "
                                        f"{task.queue}): it goes on once an `ordo worker` serving that queue takes it"))
        else:
            by[(task.name, task.queue)] = by.get((task.name, task.queue), 0) + 1
    for (name, queue), count in sorted(by.items()):
        what = "call(s) to a controller" if name == "ordo.call" else f"{name} task(s)"
        where = f"task queue {queue}" if queue != "?" else "their task queue"
        said.append((("stuck", name, queue), f"{count} {what} wait for a worker of {where}: no `ordo worker` "
                                             "serving it has taken them (none is running, or all are busy)"))
    return said


def _plain(text: str, most: int) -> str:
    """Text from a worker or Temporal, cut at ``most`` characters, its control characters written out (it
    goes to a server's log as it is)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", clipped(text, most))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


#: Seconds between asks for a followed run's end while Temporal cannot be reached.
REACH_AGAIN = 2.0


def _unreachable(exc: BaseException | None) -> bool:
    """Whether an error of Temporal's client says only that Temporal did not answer (not what it did)."""
    return isinstance(exc, RPCError) and exc.status in _NO_ANSWER


#: Statuses of a call Temporal did not answer: down, too slow, the connection cut mid-call (UNKNOWN
#: "transport error", CANCELLED, INTERNAL: a server killed while a long poll was out; the run was ended
#: failed while its workflow went on, and a resume then carried it out beside it, a sweep's), or too busy.
_NO_ANSWER = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNKNOWN,
                        RPCStatusCode.CANCELLED, RPCStatusCode.INTERNAL, RPCStatusCode.ABORTED,
                        RPCStatusCode.RESOURCE_EXHAUSTED})


async def _after(seconds: float, ask: Callable[[], Awaitable[T]]) -> T:
    await asyncio.sleep(seconds)
    return await ask()


async def _signalled(handle: WorkflowHandle, reason: str) -> bool:
    """The ``stop`` signal sent (or the workflow over: nothing to stop, its result tells how it ended);
    False while Temporal cannot be reached (sent at a later look)."""
    try:
        await handle.signal(RunWorkflow.stop, reason)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return True
        if not _unreachable(exc):
            raise
        return False
    return True


def _causes(exc: BaseException) -> str:
    """An error with the chain of its causes (Temporal wraps the activity's error twice)."""
    parts = []
    while exc is not None and len(parts) < 5:
        parts.append(str(exc))
        exc = getattr(exc, "cause", None) or exc.__cause__
    return ": ".join(parts)


#: Seconds a sweep waits for a worker on each of its queues (one just started may not have polled yet).
SERVED_WAIT = 10.0


async def _served(client: Client, queue: str, kind: int) -> bool:
    """Whether a worker polls ``queue`` for ``kind`` of tasks (Temporal lists those seen in the last
    minutes), asking again for up to SERVED_WAIT seconds."""
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    ask = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind)
    deadline = time.monotonic() + SERVED_WAIT
    while True:
        if (await client.workflow_service.describe_task_queue(ask)).pollers:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.5)


async def _unserved(client: Client, temporal: Temporal, queues: list[tuple[str, int, str]]) -> None:
    """TemporalError naming the first of ``queues`` (name, kind of tasks, what they carry) that no worker
    serves, and how to serve it."""
    for queue, kind, what in queues:
        if not await _served(client, queue, kind):
            main, named = shlex.quote(temporal.queue), shlex.quote(queue)   # (a queue's name may hold spaces)
            raise TemporalError(f"no worker serves the task queue {queue} ({what}) on {temporal.address}: start "
                                f"`ordo worker --temporal {temporal.address} --main-queue {main} -C PROJECT` "
                                f"(it serves every queue of the project's catalog), or one with `--task-queue {named}`")


def crossing(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sweep jobs as they go into Temporal's history: a journal's URL without its password or query (a
    planning worker takes its own ``--journal``, else connects as the URL says, PGPASSWORD and the like)."""
    return [{**job, "journal": str(location(job["journal"]))} if is_url(job.get("journal") or "") else job
            for job in jobs]


def sweep(temporal: Temporal, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A what-if sweep's jobs planned as activities across the workers of the planning queue, in order;
    refused when no worker serves the main queue (the sweep's workflow) or the planning queue: it would
    wait for one without a word. A journal's URL crosses Temporal without its password or query."""
    from temporalio.api.enums.v1 import TaskQueueType

    jobs = crossing(jobs)

    async def go() -> list[dict[str, Any]]:
        client = await _connect(temporal.address)
        try:
            await _unserved(client, temporal, [
                (temporal.queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "a sweep's workflow"),
                (planning_queue(temporal.queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "a sweep's scenarios")])
            return await client.execute_workflow(SWEEP, args=[temporal.queue, jobs], id=f"ordo-sweep-{uuid.uuid4()}",
                                                 task_queue=temporal.queue)
        except (WorkflowFailureError, RPCError) as exc:
            raise TemporalError(f"the sweep on Temporal failed: {_causes(exc)}") from None
        finally:
            del client
            gc.collect()

    return asyncio.run(go())
