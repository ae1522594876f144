"""The executor's local host: carry a plan out against controllers, durably, re-planning on failure.

The decisions (what is ready, limits, retries, in doubt, what was learnt, when
to plan again, fallout) are the run core's (``executor/core/``): it takes
inputs and returns commands. :class:`Executor` carries those commands out in
one process: the journal (SQLite) for every event, a pool of worker threads
for the controller calls, the runtime guards (``executor/guards.py``) before
each dispatch, the planner for a new plan; and feeds what happened back to
the core. One :class:`Executor` drives one run at a time and keeps every
piece of state on itself (nothing at module level), so a service can drive
many runs in one process.

Intents are written, in one transaction per dispatch, *before* the calls; an
operation whose outcome is in doubt (a timeout, a lost answer, a crash
between intent and result) is observed at its controller before it is sent
again, so a non-idempotent operation is never applied twice.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from domain.errors import DiagnosticsError, OrdoError
from domain.formats import ObservedResource, is_name, quoted
from domain.model import MISSING, Model, Resource, observed_record, resolve_value
from domain.project import Project, display_path
from domain.secrets import is_fingerprint, redacted, same_value
from executor.claims import plan_beside, run_claims, targets_only
from executor.controllers import (
    Controller,
    ControllerContext,
    ControllerError,
    Observation,
    OperationRequest,
    make_controllers,
)
from executor.controllers.base import misnamed
from executor.core import (
    Abandon,
    Admit,
    Admitted,
    Arrived,
    Begin,
    Call,
    CallError,
    Collect,
    Completed,
    Continue,
    Denial,
    Dispatch,
    End,
    ExecutionError,
    Found,
    Look,
    NoPlan,
    Observe,
    Observed,
    OpSpec,
    Outcome,
    Planned,
    PlanSpec,
    Probe,
    Probed,
    Record,
    Replan,
    Resumed,
    RunCore,
    RunState,
    Stop,
    Tick,
    Wait,
)
from executor.core.loop import begun
from executor.core.messages import Input
from executor.journal import (
    UNREADABLE,
    Event,
    Journal,
    JournalError,
    JournalLost,
    claim_target,
    claimed,
    damaged_event,
)
from executor.shared import GRACE, RETRY, Shared
from planner.bounded import ChildEnded, PlanningLimitError, PoliciesChanged
from planner.core import Outcome as PlanOutcome
from planner.core import make_plan
from planner.decode import op_id
from planner.plan import Plan, PlannedOperation
from planner.slots import CANCEL_POLL, PlanCancelled, PlanSlots

#: Reads of the state a re-plan of a run that shares the journal makes while runs beside it that could
#: have written what its plan works on end meanwhile (executor.engine.Executor._plan_holding).
STALE_READS = 3
#: Reads of the policy files a re-plan makes when one is written while it plans (PoliciesChanged).
POLICY_READS = 3
#: Where a test may have the process killed (ORDO_CRASH_POINT=name[:N]).
CRASH_POINTS = ("plan-saved", "intent-written", "applied", "result-written", "failure-observed", "replanned")

#: A ProjectLoader builds the project from the journal's records of what
#: runs did (the CLI closes over the project folder, request and options).
ProjectLoader = Callable[[list[ObservedResource]], Project]
Listener = Callable[[Event], None]


class CrashPoints:
    """Kill the process (SIGKILL, as `kill -9`) at a named point, for tests.

    Spec: "name" or "name:N" (the N-th time it is reached), comma-separated.
    """

    def __init__(self, spec: str | None) -> None:
        self._at: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            name, _, count = part.partition(":")
            if name not in CRASH_POINTS:
                raise ExecutionError(f"unknown crash point '{name}' (expected one of: {', '.join(CRASH_POINTS)})")
            self._at[name] = int(count) if count.isascii() and count.isdigit() and len(count) < 10 \
                and int(count) > 0 else 1

    def hit(self, name: str) -> None:
        if name not in self._at:
            return
        with self._lock:
            self._seen[name] = self._seen.get(name, 0) + 1
            if self._seen[name] == self._at[name]:
                os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class ApplyOptions:
    concurrency: int | None = None          # None: the plan's
    max_replans: int | None = None          # None: the project's settings.max_replans
    on_failure: str = "replan"              # replan | rollback | stop
    default_timeout: float = 600.0          # seconds an operation may take unless the catalog says
    simulation: dict[str, Any] | None = None
    crash: str | None = None                # ORDO_CRASH_POINT
    poll: float = 0.5                       # seconds between checks for `ordo abort`

    def as_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "max_replans": self.max_replans, "on_failure": self.on_failure,
                "default_timeout": self.default_timeout, "simulation": self.simulation}


@dataclass
class RunResult:
    run: int
    status: str                  # complete, fallout, interrupted, aborted, rolled_back, failed
    summary: dict[str, Any]
    explanation: Any = None      # planner Explanation for a fallout
    reason: str = ""


#: Seconds between looks for an abort as calls end (their successors would start), besides ApplyOptions.poll;
#: and how far back, in the journal's sequence numbers, from the run's last event each of them reads.
ABORT_LOOK = 0.05
ABORT_WINDOW = 1000

#: What wakes an executor's wait on its queue of ended calls (a stop, an abort noticed), not a call's end.
_WAKE = object()


class Executor:
    """Carries plans out; one instance per run being driven. The local host of the run core
    (``executor/core/``): it carries out the core's commands with worker threads, the journal,
    the controllers, the guard engine and the planner, and feeds their outcomes back to it."""

    def __init__(self, journal: Journal, loader: ProjectLoader, *, options: ApplyOptions | None = None,
                 listener: Listener | None = None, shared: Shared | None = None,
                 clock: Callable[[], float] | None = None, plans: PlanSlots | None = None) -> None:
        self.journal = journal
        self.shared = shared  # the limits and guards of the runs side by side (a server's), else the run's own
        # the plan slots a re-plan takes (a long-lived process's: planner/slots.py), else none
        self.plans = plans or (shared.plans if shared is not None else None)
        # The core's clock: seconds since the epoch that never go back within the process (a wait's
        # deadline is journaled on it and outlives the process); ``clock`` replaces it in tests.
        epoch = time.time() - time.monotonic()
        self.clock = clock or (lambda: epoch + time.monotonic())
        self.loader = loader
        self.options = options or ApplyOptions()
        self.listener = listener or (lambda event: None)
        self.crash = CrashPoints(self.options.crash)
        self._stop = threading.Event()
        self._context: ControllerContext | None = None
        self._controllers: dict[str, Controller] = {}
        self._queue: queue.SimpleQueue[Outcome | object] = queue.SimpleQueue()
        self._held: list[Outcome] = []   # calls that ended as a stop came: given to the core after it
        self._look = False               # the service asked a run it drives to stop: read the journal now
        # A pool of daemon workers: starting a thread per call costs more than
        # the call itself at thousands a second. A call given up on (no answer
        # in time) keeps its worker; a new one takes its place.
        self._jobs: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._workers = 0
        self._abandoned: set[int] = set()
        self.state: RunState | None = None  # the state of the run being driven (its core's)
        # A Temporal activity's: its writes are looked for after this sequence number first, and
        # not written again when another attempt of the same step wrote them (Journal.append_once).
        self.once_since: int | None = None
        self.once_same: Callable[[Event, Event], bool] | None = None
        # The run being driven, as far as the core does not keep it:
        self._loaded: Project | None = None             # (``_project``)
        self._records: dict[str, ObservedResource] = {}   # the journal's state projection
        self._calls: dict[int, str] = {}                   # token in flight -> operation
        self._requests: dict[str, OperationRequest] = {}   # operation -> its last request
        self._found: dict[str, ObservedResource] = {}      # records of the observation under way
        self._guards: Any = None        # executor.guards.GuardEngine when the project has guards
        self._tickets: dict[str, int] = {}                 # operation in flight -> its guard ticket
        self._slots: set[str] = set()                      # operations in flight holding a controller slot
        self._explanation: Any = None
        self._begun: list[Event] = []   # a new run's first events, written with its row: not again
        self._until: float | None = None
        self._next_poll = 0.0
        self._abort_look = 0.0   # when an abort is next looked for as calls end (ABORT_LOOK)
        self._written = 0        # the sequence number of the run's last event written here
        self._abort_since = 0
        self._stop_sent = False
        self._arrivals = 0           # the journal's seq up to which event-received events were looked for

    # --- public --------------------------------------------------------------

    def request_stop(self) -> None:
        """Drain: dispatch nothing new, let in-flight calls finish, save state (Ctrl-C once)."""
        self._stop.set()
        self._queue.put(_WAKE)

    def halt(self) -> None:
        """Stop at once, from another thread (a server whose drain ran out): nothing new is dispatched,
        and the controllers end what they run for the calls in flight (a command's programs), which
        return as failed with their effect unknown: in doubt, observed first by a resume."""
        self.request_stop()
        self._close_controllers()

    def _close_controllers(self) -> None:
        for ctl in list(self._controllers.values()):
            with contextlib.suppress(Exception):
                ctl.close()

    def notice_abort(self) -> None:
        """An abort was just journaled for the run driven here (the service's): look now, not at
        the next poll, so that nothing new is dispatched meanwhile."""
        self._look = True
        self._queue.put(_WAKE)

    def apply(self, project: Project, plan: Plan, *, supersede: bool = False) -> RunResult:
        """Start a run of ``plan`` (made from ``project``) and carry it to an end. Refused while an
        earlier run can be resumed, unless ``supersede`` ends it (for good) in favour of this one."""
        request = project.model.request_name or project.request_file or ""
        self._project, self._records = project, self.journal.state()
        rs = RunState(run=0)
        for name in sorted({op.controller for op in plan.operations}):
            self._controller(name)  # a controller that cannot be set up fails before the run starts
        inherited = left_in_doubt(self.journal, supersede, self.journal.start_claims())
        started = run_started(project, plan, self.options, inherited)
        # the run's first events (the core's Record of them is written already) with its row
        rs.run, self._begun = self.journal.begin_run(str(project.root), request, self.options.as_dict(),
                                                     begun(plan, started), supersede=supersede,
                                                     unchanged=project.observed_mark)
        result = self._drive(self._core(rs), Begin(plan, self._spec(project, plan), started, self.clock()))
        assert result is not None
        return result

    def resume(self, run_id: int, *, rollback: bool = False) -> RunResult:
        """Continue a run that crashed, was interrupted, or fell out (after the cause was fixed).
        ``rollback``: instead, take a run that fell out, failed or was interrupted back to the state
        before it (what it created removed, what it changed put back, within its resources)."""
        info = self.journal.run(run_id)
        status = info.effective_status
        if rollback and status == "crashed":
            raise ExecutionError(f"run {run_id} crashed: its operations in doubt are observed when it is resumed "
                                 f"(`ordo resume {run_id}`); roll it back once it has stopped (fallout, failed)")
        if status not in ("crashed", "fallout", "interrupted", "failed"):
            why = {"running": "it is running now", "complete": "it completed",
                   "aborted": "it was aborted", "rolled_back": "it was rolled back",
                   "superseded": f"it was {info.summary.get('reason', 'superseded')}; "
                                 "its plan is stale"}.get(status, status)
            raise ExecutionError(f"run {run_id} cannot be resumed: {why}")
        # A journal that cannot be read back is refused before the run is claimed.
        self._records, rs = self.journal.state(), self._rebuild(run_id)
        # an abort asked before this resume does not stop it; one asked since it was read does (`ordo
        # abort` right after the claim below saw the run running, and said it would stop)
        self._abort_since = rs.abort_seq
        self.journal.claim(run_id)
        if self.journal.events(run_id, since=rs.seq, limit=1):  # another process carried it on meanwhile
            self._records, rs = self.journal.state(), self._rebuild(run_id)
        core = self._core(rs)
        taken = "embedded" if info.options.get("engine") == "temporal" else ""   # (its workflow over: runs.resume)
        result = self._drive(core, Resumed(status, self.clock(), rollback=rollback, host=taken))
        if result is not None or status == "fallout":  # a run that fell out plans again from the state now
            assert result is not None
            return result
        project = self.loader(list(self._records.values()))
        # The journal's own records are an input too, and they changed with every
        # result: only edited files (request, catalog, inventory) call for a new plan.
        journal = {display_path(self.journal.path, project.root), str(self.journal.path)}
        self._project = project
        if rs.plan is None or _model_inputs(project, journal) != _model_inputs_of_plan(rs.plan, journal):
            # (the spec's limits, such as max_replans, stand while failures recorded before are learnt)
            spec = self._spec(project, rs.plan) if rs.plan is not None else None
            result = self._drive(core, Continue(spec, True, self.clock()))
        else:
            self._replay_guards(rs)
            result = self._drive(core, Continue(self._spec(project, rs.plan), False, self.clock()))
        assert result is not None
        return result

    def close(self) -> None:
        if self._slots and self.state is not None:
            with contextlib.suppress(JournalError):  # they expire anyway
                self.journal.release_slots(self.state.run)
            self._slots = set()
        for _ in range(self._workers):
            self._jobs.put(None)
        self._workers = 0
        self._close_controllers()
        self._controllers = {}
        if self._context is not None:
            self._context.close()
            self._context = None

    # --- carrying the core's commands out ------------------------------------------

    def _core(self, rs: RunState) -> RunCore:
        self.state = rs
        self._arrivals = rs.seq
        return RunCore(rs, key_prefix=f"ordo:{self.journal.id[:12]}:{rs.run}:", on_failure=self.options.on_failure)

    def _drive(self, core: RunCore, inp: Input) -> RunResult | None:
        """Step the core and carry its commands out until the run ends; None when the core waits
        for an input only the caller can give (:class:`Continue` after :class:`Resumed`). The journal's
        database gone under a read says, as under a write, how the run is carried on."""
        try:
            return self._steps(core, inp)
        except JournalLost as exc:
            if exc.run is not None:   # a write's: it says so already
                raise
            run = core.state.run
            raise JournalLost(f"{exc}; run {run} stopped at its last recorded event: once the journal answers, "
                              f"`ordo resume {run}`", run=run) from exc

    def _steps(self, core: RunCore, inp: Input) -> RunResult | None:
        self._next_poll = time.monotonic() + self.options.poll
        while True:
            follow: Input | None = None
            waiting = False
            for cmd in core.step(inp):
                kind = type(cmd)
                if kind is Record:
                    self._record_events(core, cmd)
                elif kind is Dispatch:
                    self._dispatch(core, cmd)
                elif kind is Wait:
                    self._until, waiting = cmd.until, True
                elif kind is Abandon:
                    self._abandon(cmd)
                elif kind is Admit:
                    follow = self._admit(core, cmd)
                elif kind is Observe:
                    follow = self._observe(core, cmd)
                elif kind is Probe:
                    follow = self._probe(core, cmd)
                elif kind is Collect:   # the events that came, read before the waits past their deadline fail
                    follow = Arrived(self._arrived(core.state.run), self.clock())
                elif kind is Replan:
                    follow = self._replan(core, cmd)
                elif kind is End:
                    return self._end(core, cmd)
            if follow is not None:
                inp = follow
            elif waiting:
                inp = self._wait(core.state.run)
            else:
                return None

    def _aborted(self, run: int) -> bool:
        """Whether `ordo abort` (or the service) asked the run to stop since it started or resumed."""
        return self.journal.has_event(run, "abort-requested", since=self._abort_since)

    def _wait(self, run: int) -> Input:
        """The next thing that happens: calls completing, a timer, a stop, an abort, an event that
        arrived for a waiting operation (written to the journal by `ordo event` or the service)."""
        now = time.monotonic()
        if now >= self._next_poll or self._look:
            self._next_poll, self._look = now + self.options.poll, False
            if not self._stop_sent and self._aborted(run):
                self._stop_sent = True
                # the abort asked (by another process, or over HTTP): shown as the run's events are, which
                # it is not (it is not written here); the run's screen said nothing of it, an operator's sweep
                asked = self.journal.last_event(run, ("abort-requested",))
                if asked is not None:
                    self.listener(asked)
                return Stop("aborted", self.clock())
            arrived = self._arrived(run)
            if arrived:
                return Arrived(arrived, self.clock())
        if self._stop.is_set() and not self._stop_sent:
            self._stop_sent = True
            return Stop("interrupted", self.clock())
        if self._held:   # the calls that ended as the stop came, now that the core knows of the stop
            batch, self._held = self._held, []
            return self._completed(run, batch)
        wait = self._next_poll - now
        if self._until is not None:
            wait = min(wait, self._until - self.clock())
        try:
            first = self._queue.get(timeout=max(0.0, wait))
        except queue.Empty:
            return Tick(self.clock())
        batch = [first]
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        ended: list[Outcome] = [done for done in batch if done is not _WAKE]  # type: ignore[misc]
        if ended and not self._stop_sent and not self._look and time.monotonic() >= self._abort_look:
            # What the calls free would go to new operations: an abort asked since the last look (`ordo abort`
            # from another process, read every ``poll`` seconds) is looked for first, at most every ABORT_LOOK
            # seconds (an abort acknowledged, the run went on to start more and ended complete: an
            # operator's sweep), among the events of the last ABORT_WINDOW sequence numbers before this
            # run's last: the query reads every event of the run past ``since``, 16 ms at 60,000 (a
            # review's). An abort written longer ago than that is the next poll's, which reads them all.
            self._abort_look = time.monotonic() + ABORT_LOOK
            self._look = self.journal.has_event(run, "abort-requested",
                                                since=max(self._abort_since, self._written - ABORT_WINDOW))
        if not self._stop_sent and (self._stop.is_set() or self._look):
            # A stop (or an abort) came while the calls ended: looked at as above, first, so that
            # what the calls free is not given to new operations; the calls follow.
            self._held = ended
            return self._wait(run)
        if not ended:
            return Tick(self.clock())
        return self._completed(run, ended)

    def _completed(self, run: int, batch: list[Outcome]) -> Input:
        """Calls that ended, fed to the core in one input (late answers of calls given up on dropped)."""
        outcomes = []
        for done in batch:
            oid = self._calls.pop(done.token, None)
            if oid is None:
                self._abandoned.discard(done.token)  # a late answer from a call given up on: its worker is free
                continue
            if self._guards is not None and oid in self._tickets:
                self._guards.finished(self._tickets.pop(oid), ok=done.error is None)
            outcomes.append(done)
        self._free_slots(run, [done.op for done in outcomes])
        return Completed(outcomes, self.clock())

    def _arrived(self, run: int) -> list[Event]:
        """The event-received events written since the last look (only while operations wait)."""
        if not self.state or not self.state.waits:
            return []
        events = self.journal.events(run, since=self._arrivals, kinds=("event-received",))
        if events:
            self._arrivals = events[-1].seq
        return events

    def _record_events(self, core: RunCore, cmd: Record) -> None:
        state: dict[str, ObservedResource | None] | None = None
        if cmd.step == "settled":  # the resources' new states, in the results' transaction
            state = {}
            model, ops = self._project.model, core.plan.ops
            for ev in cmd.events:
                if ev.kind == "result":
                    op = ops[ev.op]
                    request = self._requests.get(ev.op)
                    if request is None and ev.data.get("waited"):  # sent nothing, or sent before a resume
                        request, _ = self._request(core.state, op, ev.key or "", 1, 0.0)
                    record = self._record(model, model.resources[op.resource], op.to_state,
                                          request, ev.data["outputs"])
                    self._records[op.resource] = state[op.resource] = record
        elif cmd.step == "observed":
            state, self._found = dict(self._found), {}
        if cmd.step == "planned" and self._begun:   # begin_run wrote them (the same: loop.begun)
            stored, self._begun = self._begun, []
            for ev in stored:
                self.listener(ev)
            core.state.seq = self._written = stored[-1].seq
        else:
            self._emit(core.state, cmd.events, state=state)
        point = _CRASH_AFTER.get(cmd.step)
        if point:
            self.crash.hit(point)

    def _dispatch(self, core: RunCore, cmd: Dispatch) -> None:
        """One intent per call, in one transaction, then the calls, each on a worker."""
        rs, ops = core.state, core.plan.ops
        events = []
        calls = []
        refused = []
        for call in cmd.calls:
            op = ops[call.op]
            request, intent, initial = self._intent(rs, op, call)
            why = intent.data.get("refused")
            events.append(intent)
            self._requests[call.op] = request
            self._calls[call.token] = call.op
            if why is not None:  # never sent
                refused.append(Outcome.refused(call.token, call.op, why))
            else:
                calls.append((op.controller, call.token, call.op, request, call.observe_first, initial))
        for ev in self._emit(rs, events):
            rs.apply(ev)
        self.crash.hit("intent-written")
        for outcome in refused:
            self._queue.put(outcome)
        while self._workers - len(self._abandoned) < len(self._calls):
            threading.Thread(target=self._worker, name=f"ordo-worker-{self._workers}", daemon=True).start()
            self._workers += 1
        for ctl_name, token, oid, request, in_doubt, initial in calls:
            self._jobs.put((self._controller(ctl_name), token, oid, request, in_doubt, initial))

    def _request(self, rs: RunState, op: PlannedOperation, key: str, attempt: int,
                 timeout: float) -> tuple[OperationRequest, str | None]:
        """The request of one operation (its target and inputs resolved), and why it must not be
        sent when an input is a secret output known only by its fingerprint, or an output no one
        returned (else None)."""
        model = self._project.model
        res = model.resources[op.resource]
        why = None
        missing: list[tuple[str, str]] = []
        states = model.kinds[res.type].states
        try:
            inputs = self._inputs(rs, model, res, missing)
        except SecretUnavailable as exc:
            inputs, why = {}, exc.explain(res)
        up = states.index(op.to_state) > states.index(op.from_state)
        kept = up and not res.requested and bool(res.sent)
        if kept:   # on its way up where the request does not name it (moved, or put back by a re-plan)
            inputs = {k: res.attributes[k] for k in res.sent if k in res.attributes}
        restored = set(inputs) & (set(res.sent) if kept else set(res.restored))   # (the journal's values)
        # on its way up with params it had (a record's, or a rollback's): never a secret the journal keeps
        # only the fingerprint of; and, made again from its initial state, not one that read another
        # resource's output (the value it read may be gone: the value is kept, not where from)
        lacking = [k for k in sorted(restored) if redacted(inputs[k])] if up else []
        if not up:   # (on the way down, or an update in place: sent without it, never a fingerprint)
            inputs = {k: v for k, v in inputs.items() if k not in restored or not redacted(v)}
        if up and op.from_state == states[0]:
            lacking += [k for k in sorted(set(res.sent_reading) & restored) if k not in lacking]
        if lacking:
            k = lacking[0]
            what = (f"its param '{k}' holds a secret the journal keeps only the fingerprint of" if redacted(inputs[k])
                    else f"its param '{k}' read another resource's output, which may have changed since (the "
                         "journal keeps the value it read, not where from)")
            inputs, why = {}, (f"'{res.name}' would be brought up again with the params it had, but {what}: "
                               f"nothing was sent; give '{res.name}' in the request with its params")
        # Left out while the operation that returns it is still to come; once it is done, never (its answer
        # may have been lost, the operation found done by observing it). On the way down, not read.
        lost = next((r for r in res.refs if (r.producer, r.output) in missing and r.operation
                     and op_id(r.producer, r.operation) in rs.done), None) if missing else None
        if why is None and lost is not None and states.index(op.to_state) >= states.index(op.from_state):
            why = (f"param '{lost.param}' of '{res.name}' reads ${{{lost.producer}.outputs.{lost.output}}}, which "
                   f"has no value: {lost.producer}/{lost.operation} is done, but returned none and none was "
                   "observed (its answer may have been lost, and the operation found done by observing it), so "
                   "nothing was sent")
        request = OperationRequest(
            run=str(rs.run), key=key, resource=op.resource, type=op.type,
            operation=op.operation, from_state=op.from_state, to_state=op.to_state,
            target=self._target(rs, model, op.resource), inputs=inputs,
            attempt=attempt, timeout=timeout, outputs=model.kinds[res.type].operation(op.operation).outputs)
        return request, why

    def _intent(self, rs: RunState, op: PlannedOperation, call: Call) -> tuple[OperationRequest, Event, str]:
        """The request of one call, its intent event, and the initial state of the resource's kind
        (what observing it before a resend compares with). An intent whose data says ``refused``
        (why) must not be sent: it fails as a permanent error would."""
        request, why = self._request(rs, op, call.key, call.attempt, call.timeout)
        kind = self._project.model.kinds[op.type]
        intent = Event("intent", op=call.op, key=call.key, data={
            "attempt": call.attempt, "controller": op.controller, "resource": op.resource,
            "operation": op.operation, "target": request.target, "inputs": request.inputs,
            "observe_first": call.observe_first, "plan": rs.plan_no, **({"refused": why} if why else {})})
        return request, intent, kind.initial

    def _abandon(self, cmd: Abandon) -> None:
        given_up = []
        for token in cmd.tokens:
            self._abandoned.add(token)
            oid = self._calls.pop(token)
            given_up.append(oid)
            if self._guards is not None and oid in self._tickets:
                self._guards.finished(self._tickets.pop(oid), ok=False)
        if self.state is not None:
            self._free_slots(self.state.run, given_up)

    def _worker(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._call(*job)

    def _call(self, ctl: Controller, token: int, oid: str, request: OperationRequest, in_doubt: bool,
              initial: str) -> None:
        self._queue.put(self._outcome(ctl, token, oid, request, in_doubt, initial))

    def _outcome(self, ctl: Controller, token: int, oid: str, request: OperationRequest, in_doubt: bool,
                 initial: str) -> Outcome:
        """Make one call (observing first when ``in_doubt``: resent only when not applied)."""
        started = time.monotonic()
        try:
            if in_doubt:
                try:
                    obs = ctl.observe(request.resource, request.type, request)
                except ControllerError as exc:   # whether the call took effect is still not known, whatever
                    # the observe's own error says of the observe (a failed check resent it under a new key)
                    return Outcome(token, oid, error=CallError(exc.message, exc.transient, "resource", exc.code,
                                                               applied=None), seconds=time.monotonic() - started)
                verdict = _judge(obs, request, initial)
                if verdict == "applied":
                    return _answered(token, oid, obs.outputs, started, observed=True)
                if verdict != "resend":   # (still in doubt: a new key is sent only once it is known not applied)
                    return Outcome(token, oid, error=CallError(verdict, applied=None),
                                   seconds=time.monotonic() - started)
            outputs = ctl.execute(request)
            self.crash.hit("applied")
            return _answered(token, oid, outputs, started)
        except ControllerError as exc:
            return Outcome(token, oid, error=CallError(exc.message, exc.transient, exc.scope, exc.code, exc.applied),
                           seconds=time.monotonic() - started)
        except Exception as exc:  # an adapter bug must not kill the run
            return Outcome(token, oid, error=CallError(f"controller raised {type(exc).__name__}: {exc}"),
                           seconds=time.monotonic() - started)

    def _admit(self, core: RunCore, cmd: Admit) -> Admitted:
        """Ask the guards, in order, up to the first denial that does not wait (the plan ends there:
        nothing more is dispatched, the next plan makes its own choices); an operation allowed is
        recorded as started."""
        from executor.guards import operation_info

        model, ops = self._project.model, core.plan.ops
        allowed: list[str] = []
        denied: list[Denial] = []
        slotless = self._take_slots(core, cmd.ops)
        for i, oid in enumerate(cmd.ops):
            op = ops[oid]
            if oid in slotless:
                denied.append(slotless[oid])
                continue
            if self._guards is None:
                allowed.append(oid)
                continue
            target = self._target(core.state, model, op.resource)
            decision, ticket = self._guards.admit(operation_info(model, op, target))
            if decision.allowed:
                allowed.append(oid)
                self._tickets[oid] = ticket
                continue
            denied.append(Denial(op=oid, guard=decision.guard, data=decision.as_data(), reason=decision.reason,
                                 on_deny=decision.on_deny, retry_after=decision.retry_after,
                                 on_change=decision.kind in ("exclusive", "max_instances", "min_instances"),
                                 about_targets=decision.about_targets, target=target))
            if decision.on_deny != "wait":
                self._free_slots(core.state.run, [oid, *cmd.ops[i + 1:]])
                break
            self._free_slots(core.state.run, [oid])
        return Admitted(allowed, denied, self.clock())

    def _take_slots(self, core: RunCore, oids: list[str]) -> dict[str, Denial]:
        """With limits shared across runs: a slot of its controller for each operation whose controller
        has a concurrency, else a denial (it waits; asked again shortly, or when one of its run's ends)."""
        limits = core.plan.spec.controller_limits if self.shared is not None else {}
        ops = core.plan.ops
        wanted = [(oid, ops[oid].controller, limits[ops[oid].controller],
                   time.time() + core.plan.spec.ops[oid].timeout + GRACE)
                  for oid in oids if ops[oid].controller in limits]
        if not wanted:
            return {}
        granted = self.journal.lease_slots(core.state.run, wanted)
        self._slots |= granted
        out = {}
        for oid, controller, limit, _ in wanted:
            if oid not in granted:
                reason = (f"controller '{controller}' has {limit} operation(s) in flight (its concurrency), "
                          "counting every run going on")
                guard = f"concurrency of {controller}"
                out[oid] = Denial(op=oid, guard=guard, reason=reason, on_deny="wait", retry_after=RETRY,
                                  on_change=True, data={"guard": guard, "guard_kind": "concurrency",
                                                        "reason": reason, "on_deny": "wait",
                                                        "retry_after": RETRY, "where": "catalog: controllers"})
        return out

    def _free_slots(self, run: int, oids: list[str]) -> None:
        mine = [oid for oid in oids if oid in self._slots]
        if mine:
            self._slots.difference_update(mine)
            self.journal.release_slots(run, mine)

    def _observe(self, core: RunCore, cmd: Observe) -> Observed:
        """Ask the controllers what is true of the resources concerned (kept as records
        until the core has said what the observation settles)."""
        model = self._project.model
        found: list[Found] = []
        self._found = {}
        for concern in cmd.concerns:
            res = model.resources.get(concern.resource)
            if res is None:
                continue
            kind = model.kinds[res.type]
            controller = concern.controller or kind.operation(concern.ops[0].rpartition("/")[2]).controller
            asked, sent = self._in_doubt_request(core, concern, controller)
            try:
                obs = self._controller(controller).observe(res.name, res.type, asked)
            except ControllerError as exc:
                found.append(Found(res.name, error=exc.message))
                continue
            if obs.state is None and obs.exists:
                found.append(Found(res.name))  # the controller cannot tell
                continue
            if obs.exists and obs.state not in kind.states:   # not absent: whatever was done stays in doubt
                found.append(Found(res.name, error=f"it exists in a state its lifecycle does not have, "
                                                   f"{quoted(obs.state)} (type {res.type}: "
                                                   f"{', '.join(kind.states)})"))
                continue
            if (problem := misnamed(obs.attributes, "an attribute")) is not None:
                found.append(Found(res.name, error=problem))
                continue
            now_state = obs.state if obs.exists else kind.initial
            # (a type without placement is placed nowhere: what its controller says of a target is not kept, nor shown)
            target = obs.target if now_state != kind.initial and kind.placement else None
            if target is not None and (problem := _unknown_target(target, model)) is not None:
                found.append(Found(res.name, error=problem))   # (recorded, it failed the run and each resume)
                continue
            # what the call in doubt answered, where the controller says it applied it (it was lost: the params
            # that read an output of it had no value, and no plan, a sweep's)
            applied = asked is not None and obs.applied is True
            answered = obs.outputs if applied and obs.outputs else {}
            if (problem := misnamed(answered, "an output")) is not None:   # (a bug in ordo, as it was: a review's)
                found.append(Found(res.name, error=problem))
                continue
            # and the params the call sent, as a result records them (without, a resource with params was found
            # "changed" by the next plan, and one whose type has no update had no plan: a review's)
            record = self._record(model, res, now_state, sent if applied else None, {**obs.attributes, **answered},
                                  target=target or self._target(core.state, model, res.name))
            self._records[res.name] = self._found[res.name] = record
            found.append(Found(res.name, state=now_state, target=target,
                               applied=obs.applied if asked is not None and isinstance(obs.applied, bool) else None))
        return Observed(found, self.clock())

    def _in_doubt_request(self, core: RunCore, concern: Any,
                          controller: str) -> tuple[OperationRequest | None, OperationRequest | None]:
        """The request of the concern's call in doubt (its key) that ``controller`` was sent, for the
        observation to ask about: whether it was applied, and what it answered. Asked of the resource
        alone, a controller cannot tell, and the outputs of a call that failed in doubt (its controller
        died after it applied it) were lost for good. With it, the request as it was sent, to record
        where it was applied (a secret in it as the journal keeps it: its fingerprint, never sent). None,
        None when there is none (or it cannot be made)."""
        rs, plan = core.state, core.plan
        # (a resume observes before it takes the plan up again)
        ops = plan.ops if plan is not None else {op.id: op for op in rs.plan.operations} if rs.plan else {}
        spec = plan.spec if plan is not None else core.spec
        specs = spec.ops if spec is not None else {}
        for oid in concern.ops:
            key = rs.keys.get(oid)
            op = ops.get(oid)
            if key is None or op is None or oid not in rs.in_doubt or op.controller != controller:
                continue
            sent = self._requests.get(oid)
            if sent is not None and sent.key == key:
                return sent, sent
            spec = specs.get(oid)
            try:
                request, why = self._request(rs, op, key, rs.attempts.get(oid, 1), spec.timeout if spec else 0.0)
            except (KeyError, ValueError):
                return None, None
            if why is not None:
                return None, None
            # what its intent says was sent (its params, its target): the request as made now reads the files
            # as they are now, and an edit since the call was recorded as sent (the change then planned for no
            # more, a review's). A value the journal keeps the fingerprint of is the one made now where it is
            # the same; where not (a password changed since), it is recorded as the journal has it, and the
            # controller is asked with the value now, never the fingerprint (a review of that)
            intent = next((ev for ev in reversed(self.journal.events(rs.run, kinds=("intent",),
                                                                     resources=(op.resource,)))
                           if ev.op == oid and ev.key == key), None)
            if intent is None or not isinstance(then := intent.data.get("inputs"), dict):
                return request, request
            now, target = request.inputs, intent.data.get("target", request.target)
            recorded = {k: now[k] if k in now and same_value(v, now[k]) else v for k, v in then.items()}
            asked = {k: now[k] if k in now and redacted(v) else v for k, v in recorded.items()
                     if k in now or not redacted(v)}
            return replace(request, target=target, inputs=asked), replace(request, target=target, inputs=recorded)
        return None, None

    def _probe(self, core: RunCore, cmd: Probe) -> Probed:
        """Observe the resources of waiting operations at their controllers (a declared wait's poll)."""
        model, ops = self._project.model, core.plan.ops
        looks = []
        for oid in cmd.ops:
            op = ops[oid]
            try:
                obs = self._controller(op.controller).observe(op.resource, op.type, None)
            except ControllerError as exc:
                looks.append(Look(oid, error=exc.message))
                continue
            state = obs.state if obs.exists else model.kinds[op.type].initial
            attributes = {**obs.attributes, **(obs.outputs or {})}
            if (problem := misnamed(attributes, "an attribute")) is not None:
                looks.append(Look(oid, error=problem))
                continue
            looks.append(Look(oid, state=state, attributes=attributes))
        return Probed(looks, self.clock())

    def _replan(self, core: RunCore, cmd: Replan, *, stoppable: bool = True,
                cancelled: Callable[[], bool] | None = None) -> Planned | NoPlan | Stop:
        """A new plan from the state now: the project loaded again from the journal's records, with
        what was learnt (failed, refused) and the current placements (stability). ``stoppable`` (this
        process drives the run): a stop or an abort while it waits for a plan slot or is being made
        ends it (Stop: the run ends as asked, and a resume plans again). ``cancelled``: another host's
        question instead (a Temporal activity's: its workflow heard the stop); once it says so, the
        planning ends and PlanCancelled is raised."""
        started = time.monotonic()
        run = core.state.run
        holds = bool(self.journal.claims(run))   # False: the run holds the whole journal, no run writes beside it

        def load() -> Project:
            if holds:   # the journal's records, with what other runs wrote since this one read them (and
                # what it observed that the journal is about to have): as the service plans a new run
                self._records = {**self.journal.state(), **self._found}
            project = self.loader(list(self._records.values()))
            model = project.model
            model.failed = set(cmd.failed)
            model.refused = set(cmd.refused)
            _ran_once(model, core.state.ran)
            if core.state.plan is not None:
                model.planned = {r: t for r, t in cmd.placements.items() if r in model.resources}
                # what the request does not name stays the previous plan's to reach (a replacement torn down
                # when one of its operations failed was left half made, and the run ended complete)
                model.planned_goals = {c.resource: c.after for c in core.state.plan.resource_changes
                                       if c.resource in model.resources and not model.resources[c.resource].requested}
            if cmd.mode == "rollback":
                _roll_back(model, cmd.snapshot)
            return project

        then = self.journal.runs_now() if holds else None   # before the state is read: see _plan_holding
        try:
            project = load()
        except DiagnosticsError as exc:
            if self._project is None:   # (no model for the summary: refused as it was given)
                raise
            return self._unplanned(exc, started)
        model = project.model
        if self._project is None:  # resumed after a fallout: the summary needs a model, even if stopped now
            self._project = project
        stop: list[str] = []
        look = [0.0]   # when the journal is next read for an abort (asked at every wake-up of a slot's wait)

        def stop_asked() -> bool:
            if not stop and time.monotonic() >= look[0]:
                look[0] = time.monotonic() + CANCEL_POLL
                if self._aborted(run):
                    stop.append("aborted")
            if not stop and self._stop.is_set():
                stop.append("interrupted")
            return bool(stop)

        try:
            # urgent: the run waits on it, ahead of new plans and sweeps' scenarios
            asked = cancelled if cancelled is not None else stop_asked if stoppable else None
            with self.plans.slot(project, urgent=True, cancelled=asked) if self.plans is not None \
                    else contextlib.nullcontext():
                if then is not None:
                    project, outcome = self._plan_holding(run, project, load, then, asked)
                    model = project.model
                else:
                    outcome = self._make_plan(project, asked)
        except PlanCancelled:
            if cancelled is not None:
                raise
            self._stop_sent = True
            return Stop(stop[0], self.clock())
        except (DiagnosticsError, PlanningLimitError, PoliciesChanged, ChildEnded) as exc:
            return self._unplanned(exc, started)
        seconds = time.monotonic() - started
        if isinstance(outcome, Held):   # what the new plan works on is another run's now
            return NoPlan(outcome.status, outcome.explanation, seconds, self.clock())
        if outcome.plan is None:
            self._explanation = outcome.explanation
            return NoPlan(outcome.status, _explanation_data(outcome.explanation), seconds, self.clock())
        self._project = project
        return Planned(outcome.plan, self._spec(project, outcome.plan), seconds,
                       _snapshot(model, outcome.plan, core.state.snapshot), self.clock())

    def _unplanned(self, exc: OrdoError, started: float) -> NoPlan:
        """A re-plan that could not be made of the inputs as they are now (edited into errors, a limit
        struck, the planning process ended): the run falls out saying why, rather than ending as if its
        own process had crashed (a resume, once the cause is fixed, plans again)."""
        status = "timeout" if isinstance(exc, PlanningLimitError) and exc.kind == "time" else "error"
        return NoPlan(status, {"summary": str(exc)}, time.monotonic() - started, self.clock())

    def _plan_holding(self, run: int, project: Project, load: Callable[[], Project],
                      then: tuple[frozenset[int], int], asked: Callable[[], bool] | None,
                      ) -> tuple[Project, PlanOutcome | Held]:
        """The re-plan of a run that holds claims (it shares the journal with other runs), and the claims
        its new plan needs beyond those it holds (``executor.claims.run_claims``), taken with it. It places
        nothing new on the targets other runs hold (``executor.claims.plan_beside``), nor on one a run
        claims before this one does: planned again without it. The state read again and planned again
        when a run that could have written there (one going on at ``then``, taken before the state was
        read, or started since) has ended meanwhile. Held: a resource another run holds, no plan without
        the targets others hold, or runs that kept ending."""
        for attempt in range(STALE_READS):
            if attempt:   # a run that may have written there ended while the plan was made
                then = self.journal.runs_now()
                project = load()
            # target -> the run that holds it: those held now, and any a run claims before this one does
            elsewhere = {target: other for target, other in self.journal.held_targets().items() if other != run}
            while True:
                outcome, kept_off = plan_beside(project, partial(self._make_plan, project, asked), elsewhere)
                if outcome.plan is None:
                    return project, outcome
                wanted = run_claims(project, outcome.plan)
                taken = self.journal.extend_claims(run, wanted)
                if not taken:   # (with kept_off: the runs that held its targets have ended since)
                    break
                targets = targets_only(taken)
                if kept_off is not None and targets is not None:   # only held targets stand in its way
                    return project, _no_plan_beside(targets, kept_off)
                if targets is None or targets.keys() <= elsewhere.keys():
                    name = (sorted(c for c in taken if claim_target(c) is None) or sorted(taken))[0]
                    return project, Held("held", f"the new plan works on {claimed(name)}, which run {taken[name]} "
                                                 "holds: resume this run once that one has ended")
                elsewhere.update(targets)
            if not [other for other in self.journal.changed_since(then, wanted) if other != run]:
                return project, outcome
        return project, Held("stale", f"runs beside this one kept changing what its new plan works on "
                                      f"({STALE_READS} reads of the state): resume it once they have ended")

    def _make_plan(self, project: Project, asked: Callable[[], bool] | None) -> PlanOutcome:
        """make_plan; a policy file written while it planned (PoliciesChanged) is read again and the plan
        made anew, up to POLICY_READS times in all, before the run's driver gives up on it."""
        for _ in range(POLICY_READS - 1):
            with contextlib.suppress(PoliciesChanged):
                return make_plan(project, concurrency=self.options.concurrency, cancelled=asked)
        return make_plan(project, concurrency=self.options.concurrency, cancelled=asked)

    def _spec(self, project: Project, plan: Plan) -> PlanSpec:
        """What the core needs of the catalog for ``plan``: limits, each operation's timeout and retries."""
        model = project.model
        ops = {}
        for op in plan.operations:
            res = model.resources.get(op.resource)
            if res is not None:
                kind = model.kinds[res.type]
                kind_op = kind.operation(op.operation)
                ops[op.id] = OpSpec(timeout=kind_op.timeout or self.options.default_timeout, retry=kind_op.retry,
                                    wait=kind_op.wait, outputs=kind_op.outputs, secrets=kind.secrets)
        limits = {name: spec.concurrency for name, spec in model.controllers.items() if spec.concurrency}
        max_replans = self.options.max_replans
        shared_limits = self.shared is not None and bool(limits)
        return PlanSpec(limit=self.options.concurrency or plan.concurrency or project.settings.concurrency,
                        ops=ops, controller_limits=limits,
                        guarded=self._guard_engine() is not None or shared_limits,
                        max_replans=project.settings.max_replans if max_replans is None else max_replans)

    def _replay_guards(self, rs: RunState, *, live: bool = False) -> None:
        """A resumed run's guards count what it did before (rate limits over a
        crash): its intents and their ends, replayed at the times journaled.
        ``live``: the run goes on elsewhere (a Temporal host), so what has no end yet is in flight."""
        guards = self._guard_engine()
        if guards is None:
            return
        from executor.guards import operation_info

        planned: dict[str, PlannedOperation] = {}
        tickets: dict[str, int] = {}
        model = self._project.model
        for ev in self.journal.events(rs.run):
            if ev.kind in ("plan", "replan"):
                planned.update((op.id, op) for op in Plan.from_json(ev.data["plan"]).operations)
            elif ev.kind == "intent" and ev.op in planned and planned[ev.op].resource in model.resources:
                info = operation_info(model, planned[ev.op], ev.data.get("target"))
                tickets[ev.op] = guards.started(info, now=ev.at)
            elif ev.kind in ("result", "retry", "failed") and ev.op in tickets:
                guards.finished(tickets.pop(ev.op), ok=ev.kind == "result", now=ev.at)
        for ticket in [] if live else tickets.values():  # in doubt: counted as dispatched, no longer in flight
            guards.finished(ticket, ok=False)

    def _guard_engine(self) -> Any:
        """The run's guard engine, its resources as they are now; None when the project has no guards."""
        if self._project is None or not self._project.guards:
            return None
        from executor.guards import GuardEngine, model_resources

        if self.shared is not None:  # other runs count in it too: what it knows is kept
            self._guards = self.shared.guard_engine(self._project.guards)
            self._guards.add_resources(model_resources(self._project.model))
            return self._guards
        if self._guards is None:
            self._guards = GuardEngine(self._project.guards)
        self._guards.set_resources(model_resources(self._project.model))
        return self._guards

    # --- end -------------------------------------------------------------------

    def _end(self, core: RunCore, cmd: End) -> RunResult:
        rs = core.state
        summary = self._summary(rs, cmd.status)
        summary["status"] = cmd.status
        if self._slots:  # nothing is in flight any more
            self.journal.release_slots(rs.run)
            self._slots = set()
        if cmd.reason:
            summary["reason"] = cmd.reason
        for ev in self._emit(rs, [Event("run-ended", data=summary)], status=cmd.status, summary=summary):
            rs.apply(ev)
        result = RunResult(run=rs.run, status=cmd.status, summary=summary,
                           reason=self.journal.redactor.text(cmd.reason))
        if cmd.status == "fallout":
            result.explanation = self._explanation
        return result

    def _summary(self, rs: RunState, status: str) -> dict[str, Any]:
        """Resources that reached their goal, by what happened to them from the
        start of the run (Terraform's summary), and those left short of it: every
        resource the plan changes that is not at its goal, started or not (an
        abort before most operations started leaves most of the plan unfinished),
        and, in a run that did not complete, one whose change keeps its state (an
        update, a run, a replacement) with operations of the plan not done."""
        counts = {"created": 0, "changed": 0, "deleted": 0, "unfinished": 0}
        model = self._project.model if self._project else None
        changes = rs.plan.resource_changes if rs.plan else ()
        goals = {c.resource: c.after for c in changes}
        pending = {c.resource for c in changes if c.before == c.after and not rs.done.issuperset(c.operations)} \
            if status != "complete" else set()
        torn = set()   # what went down to its initial state on the way (an operation of this run)
        for oid in rs.done if model is not None else ():
            name, _, operation = oid.rpartition("/")
            res = model.resources.get(name)
            kind = model.kinds.get(res.type) if res is not None else None
            if kind is not None and kind.tears_down(operation):
                torn.add(name)
        for name in sorted(set(rs.snapshot) | set(goals)):
            if model is None or name not in model.resources:
                continue
            initial = model.kinds[model.resources[name].type].initial
            record = self._records.get(name)
            before = rs.snapshot.get(name, {}).get("state", initial)
            now = record.state if record else model.resources[name].current
            if now != goals.get(name, now) or name in pending:
                counts["unfinished"] += 1
            elif before == initial and now == initial:
                continue  # created and removed again (a rollback): no net change
            elif before == initial and now != initial and name not in rs.touched:
                # found there by an observation (an operation refused as already done; a record forgotten
                # with `ordo state rm`): this run made nothing (it was counted "1 created", an operator's sweep)
                counts["found"] = counts.get("found", 0) + 1
            elif before == initial and now != initial:
                counts["created"] += 1
            elif before != initial and now == initial:
                counts["deleted"] += 1
            elif name in torn:   # torn down and made again (moved, replaced): deleted and created, as planned
                counts["created"] += 1
                counts["deleted"] += 1
            elif name in rs.touched:
                counts["changed"] += 1
        # (the re-plans of the whole run: counted from a resume after a fallout, the summary said "1 re-plan"
        # where ordo show listed four, an operator's sweep)
        return {**counts, "replans": rs.replanned, "operations": len(rs.done), "plan": rs.plan_no}

    # --- helpers ----------------------------------------------------------------

    def _emit(self, rs: RunState, events: list[Event], *, state: dict[str, ObservedResource | None] | None = None,
              status: str | None = None, summary: dict[str, Any] | None = None) -> list[Event]:
        stored, written = self.journal.append_once(rs.run, events, since=self.once_since, same=self.once_same,
                                                   state=state, status=status, summary=summary)
        for ev in stored if written else ():
            self.listener(ev)
        if stored:
            rs.seq = self._written = stored[-1].seq
        return stored

    @property
    def _project(self) -> Project | None:
        """The project of the run being driven (its plan's, or the re-plan's)."""
        return self._loaded

    @_project.setter
    def _project(self, project: Project | None) -> None:
        # its catalog's secrets are redacted from every write from now on: a resumed run's first
        # intents were written before a controller (which taught them) was made
        self._loaded = project
        if project is not None:
            self.learn_secrets(project)

    def learn_secrets(self, project: Project) -> None:
        """The catalog's secret params and outputs, redacted from every write of this executor's journal."""
        self.journal.redactor.add_names(n for kind in project.model.kinds.values() for n in kind.secrets)

    def _controller(self, name: str) -> Controller:
        if name not in self._controllers:
            project = self._project
            if self._context is None:
                self._context = ControllerContext(
                    workdir=self.journal.path.parent, root=project.root,
                    inventory=[{"name": r.name, "type": r.type, "state": r.current, "placement": r.placement,
                                "attributes": r.attributes}
                               for r in project.model.resources.values() if r.observed],
                    targets=sorted(project.model.targets),
                    settings={"simulation": self.options.simulation or {}}, redactor=self.journal.redactor)
            self.learn_secrets(project)
            self._controllers.update(make_controllers(project.model.controllers, {name}, self._context))
        return self._controllers[name]

    def _target(self, rs: RunState, model: Model, name: str) -> str | None:
        # Where the resource is while it exists (its teardown goes there, also
        # when the plan moves it elsewhere), else where the plan puts it.
        seen = set()
        while name and name not in seen:
            seen.add(name)
            res = model.resources.get(name)
            record = self._records.get(name)
            if record is not None:
                if record.placement:
                    return record.placement
            elif res is not None and res.placement and res.current != model.kinds[res.type].initial:
                return res.placement
            if rs.plan and name in rs.plan.placements:
                return rs.plan.placements[name]
            if res is None:
                return None
            if res.placement:
                return res.placement
            name = res.part_of or ""
        return None

    def _inputs(self, rs: RunState, model: Model, res: Resource,
                missing: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """``res``'s params with the outputs they read; a param that reads one not known is left out
        (and the output added to ``missing``)."""
        if not res.refs:
            return dict(res.params)

        def value_of(producer: str, output: str) -> Any:
            value = found(producer, output)
            if is_fingerprint(value):   # (not any value holding "***": "card ****1234" is an output as any other)
                raise SecretUnavailable(producer, output)
            return value

        def found(producer: str, output: str) -> Any:
            if output in rs.outputs.get(producer, {}):
                return rs.outputs[producer][output]
            record = self._records.get(producer)
            if record is not None and output in record.attributes:
                return record.attributes[output]
            other = model.resources.get(producer)
            if other is not None and output in other.attributes:
                return other.attributes[output]
            if missing is not None:
                missing.append((producer, output))
            raise KeyError(output)

        return {k: v for k, v in ((k, resolve_value(v, value_of)) for k, v in res.params.items()) if v is not MISSING}

    def _record(self, model: Model, res: Resource, state: str, request: OperationRequest | None,
                outputs: dict[str, Any], target: str | None = None) -> ObservedResource:
        kind = model.kinds[res.type]
        previous = self._records.get(res.name)
        attributes = dict(previous.attributes if previous else res.attributes)
        sent = set(previous.params if previous else res.sent)
        reading = set(previous.reads_outputs if previous else res.sent_reading)
        if state != kind.initial and (previous.state if previous else res.current) == kind.initial:
            # made anew: what it has is what it is sent now, not the params kept of its earlier life
            attributes, sent, reading = {}, set(), set()
        if request is not None:
            sent |= set(request.inputs)
            if res.requested:   # which params read outputs: the request says, for those it gives (a rollback's
                # resource: its snapshot)
                reading = (reading - set(res.params)) | {ref.param for ref in res.refs} \
                    | (set(res.sent_reading) & set(res.restored))
        if state == kind.initial:
            # its params stay, to be sent again if it is made again where the request gives it none (a move,
            # a rollback: it was made again with none, broken); its outputs went with it
            attributes = {k: v for k, v in attributes.items() if k in sent}
            placement = None
        else:
            if request is not None:
                attributes.update(request.inputs)
            attributes.update(outputs)
            placement = target or (request.target if request else None) or (previous.placement if previous else None)
            # Only placeable resources carry a placement of their own; parts inherit it.
            if not kind.placement:
                placement = None
        return observed_record(res, state, placement, attributes, sent, reading & sent)

    def _rebuild(self, run_id: int) -> RunState:
        return rebuild(self.journal, run_id)


def _unknown_target(target: Any, model: Model) -> str | None:
    """Why an observed ``target`` cannot be recorded as a placement: not a name, or none the
    inventory has; None when it can."""
    if not is_name(target):
        return (f"its answer places it on {quoted(target if isinstance(target, str) else repr(target))}, which is "
                "not a name (letters, digits and _.:-, starting with a letter or digit, at most 200 characters)")
    if target not in model.targets:
        return f"its answer places it on '{target}', a target the inventory does not have"
    return None


def _answered(token: int, oid: str, outputs: dict[str, Any] | None, started: float, *,
              observed: bool = False) -> Outcome:
    """A call's outputs as its outcome; an error when one of them cannot be recorded (a resource's
    attributes are named: one named otherwise failed the run's record of it after the call, and
    each resume made the call again)."""
    seconds = time.monotonic() - started
    problem = misnamed(outputs, "an output")
    if problem is not None:
        return Outcome(token, oid, error=CallError(problem, code="output", applied=True), seconds=seconds)
    return Outcome(token, oid, outputs=dict(outputs or {}), observed=observed, seconds=seconds)


#: The crash point reached once the events of a step of the core are written.
_CRASH_AFTER = {"planned": "plan-saved", "settled": "result-written", "observed": "failure-observed",
                "replanned": "replanned"}


def rebuild(journal: Journal, run_id: int, events: list[Event] | None = None) -> RunState:
    """The run's state, read back from its journal through :meth:`RunState.apply` (``events``: those of
    its events to read, in order, else all)."""
    rs = RunState(run=run_id)
    for ev in journal.events(run_id) if events is None else events:
        try:
            rs.apply(ev)
        except UNREADABLE as exc:
            raise damaged_event(journal.path, ev, exc) from None
    return rs


def left_in_doubt(journal: Journal, supersede: bool, claims: Iterable[str] | None = None) -> dict[str, str | None]:
    """What earlier runs left in doubt, for a new run to take over (observed before it is sent again,
    under the key it was sent with, if any): all that the runs ``supersede`` ends left, and what aborted
    runs left (an abort settles nothing) on resources whose record no run has written since their last
    event; of a run that claims some resources only (``claims``: the service's), what is on those (it
    observes what it takes over, and writes the records: not of resources another run may hold). Each
    host puts it in the new run's ``run-started`` event, where ``RunState`` reads it again on a resume
    (the command line's and the service's runs, and those on Temporal)."""
    held = None if claims is None else set(claims)
    out: dict[str, str | None] = {}
    for old in (journal.resumable() if supersede else []) + journal.runs("aborted"):
        events, last = journal.doubt_events(old.id)
        prior = rebuild(journal, old.id, events)
        doubt = set(prior.in_doubt)
        if old.status == "aborted" and doubt:
            written = journal.written_since(last, {oid.rpartition("/")[0] for oid in doubt})
            doubt = {oid for oid in doubt if oid.rpartition("/")[0] not in written}
        out.update({oid: prior.keys.get(oid) for oid in sorted(doubt)
                    if held is None or oid.rpartition("/")[0] in held})
    return out


# --- pure helpers ---------------------------------------------------------------

class SecretUnavailable(Exception):
    """A param reads a secret output that is known here only by its fingerprint (an earlier run's,
    from the journal: the value itself was never written down)."""

    def __init__(self, producer: str, output: str) -> None:
        super().__init__(producer, output)
        self.producer, self.output = producer, output

    def explain(self, res: Resource) -> str:
        param = next((r.param for r in res.refs if (r.producer, r.output) == (self.producer, self.output)), "?")
        return (f"param '{param}' of '{res.name}' reads ${{{self.producer}.outputs.{self.output}}}, a secret "
                f"output of '{self.producer}' from an earlier run: the journal keeps only its fingerprint and "
                "this run does not have the value, so nothing was sent. Give the value in the request (a "
                f"param of '{res.name}'), or have '{self.producer}' return it again in the same run")


def _judge(obs: Observation, request: OperationRequest, initial: str) -> str:
    """After an answer was lost: 'applied', 'resend', or why neither is safe."""
    if obs.applied is True:
        return "applied"
    if obs.applied is False:
        return "resend"
    if request.from_state == request.to_state:
        return "resend"  # a same-state operation cannot be told apart: it must be idempotent
    state = obs.state if obs.exists else initial
    if state is None:   # it exists, its state not said: not deleted (resent), else cannot tell
        if request.to_state == initial:
            return "resend"
        return (f"'{request.resource}' exists, and its controller does not say in what state: cannot tell "
                f"whether {request.operation} was applied")
    if state == request.to_state:
        return "applied"
    if state == request.from_state:
        return "resend"
    return (f"'{request.resource}' is {state}, neither {request.from_state} nor {request.to_state}: "
            f"cannot tell whether {request.operation} was applied")


def run_started(project: Project, plan: Plan, options: ApplyOptions,
                inherited: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The data of a run's ``run-started`` event: what it was planned from, and its snapshot for rollback;
    ``inherited``: what earlier runs left in doubt that this one takes over (:func:`left_in_doubt`)."""
    data = {"request": project.model.request_name or project.request_file or "", "project": str(project.root),
            "snapshot": _snapshot(project.model, plan, {}), "options": options.as_dict(),
            "files": {"request": str(project.request_path) if project.request_path else None,
                      "inventory": str(project.inventory_file) if project.inventory_file else None,
                      "policies": [str(p) for p in project.extra_policy_files]}}
    if inherited:
        data["in_doubt"] = dict(sorted(inherited.items()))
    return data


def _snapshot(model: Model, plan: Plan, known: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The state before the run of the resources ``plan`` changes (and ``known`` does not hold yet)."""
    out = {}
    for change in plan.resource_changes:
        if change.resource in known:
            continue
        res = model.resources[change.resource]
        out[change.resource] = {"state": res.current, "placement": res.placement,
                                "attributes": dict(res.attributes)}
        if res.params or res.sent:   # the names of its params: their values before the run are among its attributes
            names = set(res.params) | set(res.sent)
            out[change.resource]["params"] = sorted(names)
            reads = names & ({ref.param for ref in res.refs} | set(res.sent_reading))
            if reads:   # those that read other resources' outputs: their values then may be gone
                out[change.resource]["reads"] = sorted(reads)
    return out


def _ran_once(model: Model, done: set[str]) -> None:
    """The operations a request asks to run (``run: [healthcheck]``) that this run carried out already are
    not asked again: each re-plan, and each resume, sent them anew (a health check that passed, five times
    in one run: a sweep's)."""
    for oid in done:
        name, _, operation = oid.rpartition("/")
        res = model.resources.get(name)
        if res is None or operation not in res.run or res.changed or (res.desired not in (None, res.current)):
            continue   # (one the new plan changes is checked again after the change: a review's)
        res.run = tuple(o for o in res.run if o != operation)


def _roll_back(model: Model, snapshot: dict[str, dict[str, Any]]) -> None:
    """Turn the model's request into "as before the run" for what the run touched."""
    for res in model.resources.values():
        before = snapshot.get(res.name)
        if before is None:
            res.requested, res.desired, res.run, res.params = False, None, (), {}
            res.refs = ()
            continue
        res.requested = True
        res.desired = before["state"]
        res.run = ()
        res.params, res.restored = _params_before(model, res, before)
        res.sent_reading = tuple(sorted(set(before.get("reads") or ()) & set(res.restored)))
        res.refs = ()
        res.pinned = before.get("placement")
    model.planned = {}
    model.planned_goals = {}


def _params_before(model: Model, res: Resource, before: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The params a rollback sends ``res`` (the request's, ``before``: its snapshot), and which of them
    are put back from the journal: each it had before the run as it was then (its attribute), the
    others as the request gives them now (one the run added); a secret as the request gives it now,
    else as the journal keeps it, its fingerprint, which ``Executor._request`` never sends; one that
    read another resource's output as it was (sent again to what still exists; what is made again
    from its initial state is refused: the value it read may be gone). None at all where they differ
    from what it has and an update cannot run in the state before the run: the resource is then put
    back in state only (a params change there has no plan)."""
    known = before.get("attributes") or {}
    old = {k: known[k] for k in before.get("params") or () if k in known}
    if not old:   # (none before the run, or a snapshot journalled before params were kept: state only)
        return {}, ()
    wired = {ref.param for ref in res.refs}
    now = {k: v for k, v in res.params.items() if k not in wired}
    restored = tuple(sorted(k for k, v in old.items() if not (k in now and redacted(v))))
    params = {**now, **{k: old[k] for k in restored}}
    kind = model.kinds[res.type]
    if res.current != kind.initial and not any(
            op.name == kind.update and op.from_state == op.to_state == before["state"] for op in kind.operations) \
            and any(not (same_value(res.attributes.get(k), v) or same_value(v, res.attributes.get(k)))
                    for k, v in params.items()):   # (either may be a fingerprint: the journal's, or observed)
        return {}, ()
    return params, restored


def _model_inputs(project: Project, skip: set[str]) -> dict[str, str]:
    return {path: sha for path, sha in project.inputs if not path.startswith("<") and path not in skip}


def _model_inputs_of_plan(plan: Plan, skip: set[str]) -> dict[str, str]:
    return {i.path: i.sha256 for i in plan.inputs
            if not i.path.startswith("<") and not i.path.endswith(".lp") and i.path not in skip}


@dataclass(frozen=True)
class Held:
    """Why a re-plan of a run that shares the journal has no plan: what it needs is other runs' now."""

    status: str   # held: another run holds what the plan needs; stale: runs beside it kept ending
    summary: str
    planner: dict[str, Any] | None = None   # the planner's explanation, where it had no plan

    @property
    def explanation(self) -> dict[str, Any]:
        from planner.explain import Explanation

        return {**(self.planner or Explanation(kind="unknown", summary="").to_dict()), "summary": self.summary}


def _no_plan_beside(in_the_way: dict[str, int], outcome: PlanOutcome) -> Held:
    """No plan without the targets other runs hold: the targets the plan made as if they were free would
    add load to, and the runs holding them, named first; then what the planner said without them."""
    held = ", ".join(f"{target} (run {run})" for target, run in sorted(in_the_way.items()))
    said = outcome.explanation.summary if outcome.explanation is not None else f"status {outcome.status}"
    return Held("held", f"no plan keeps off the targets other runs hold now; it would add load to {held}: resume "
                        f"this run once they have ended (the planner, without them: {said})",
                outcome.explanation.to_dict() if outcome.explanation is not None else None)


def _explanation_data(explanation: Any) -> dict[str, Any] | None:
    if explanation is None:
        return None
    return explanation.to_dict()


__all__ = ["ApplyOptions", "CRASH_POINTS", "CrashPoints", "ExecutionError", "Executor", "JournalError",
           "ProjectLoader", "RunResult", "rebuild", "run_started"]
