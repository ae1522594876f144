"""The executor: carry a plan out against controllers, durably, re-planning on failure.

One :class:`Executor` drives one run at a time and keeps every piece of state
on itself (nothing at module level), so a service can drive many runs in one
process. The loop of one plan:

1. dispatch every ready operation the limits allow (global, per controller,
   per concurrency group named in policies), longest remaining path first,
   once the project's runtime guards admit it (``executor/guards.py``; a
   denial waits, fails the operation or re-plans, as the guard says);
2. write one intent per dispatch, with its idempotency key, in one
   transaction, *then* call the controllers, each call on its own thread;
3. collect what finished, write results (outputs, the resources' new state)
   in one transaction, release successors; schedule retries of transient
   failures with exponential backoff;
4. on a permanent failure (or retries spent), dispatch nothing new, let
   in-flight calls finish, observe the resources concerned, record what was
   learnt (``failed``, ``refused``), and plan again from the observed state
   toward the same goal; a bounded number of times. No plan: "fallout", with
   the planner's explanation, nothing undone silently.

An operation whose outcome is in doubt (a timeout, a lost answer, a crash
between intent and result) is observed at its controller before it is sent
again, so a non-idempotent operation is never applied twice.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from domain.errors import OrdoError
from domain.formats import ObservedResource
from domain.model import REFERENCE, Model, Resource, observed_record, references_in
from domain.project import Project, display_path
from executor.controllers import (
    Controller,
    ControllerContext,
    ControllerError,
    Observation,
    OperationRequest,
    PermanentError,
    TransientError,
    make_controllers,
)
from executor.journal import UNREADABLE, Event, Journal, JournalError, damaged_event
from planner.core import Outcome, make_plan
from planner.plan import Plan, PlannedOperation
from planner.schedule import bottom_levels, take_ready

#: Where a test may have the process killed (ORDO_CRASH_POINT=name[:N]).
CRASH_POINTS = ("plan-saved", "intent-written", "applied", "result-written", "failure-observed", "replanned")

#: A ProjectLoader builds the project from the journal's records of what
#: runs did (the CLI closes over the project folder, request and options).
ProjectLoader = Callable[[list[ObservedResource]], Project]
Listener = Callable[[Event], None]


class ExecutionError(OrdoError):
    """A run cannot start or continue (names what and why)."""


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
            self._at[name] = int(count) if count.isdigit() and int(count) > 0 else 1

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


@dataclass
class _Completion:
    token: int
    op: str
    outputs: dict[str, Any] | None = None
    error: ControllerError | None = None
    observed: bool = False       # the effect was found applied by observing, not by calling
    seconds: float = 0.0


@dataclass
class _Running:
    op: str
    token: int
    attempt: int
    started: float
    deadline: float | None
    request: OperationRequest


@dataclass
class _Failure:
    op: str
    resource: str
    operation: str
    error: str
    scope: str
    target: str | None
    in_doubt: bool


@dataclass
class _RunState:
    """What one run knows; rebuilt from the journal on resume."""

    run: int
    seq: int = 0                 # the last event read back (resume)
    plan: Plan | None = None
    plan_no: int = 0
    project: Project | None = None
    done: set[str] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)
    in_doubt: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)        # idempotency key of each op's last intent
    pending_replan: bool = False   # failures were observed and learnt, the new plan not yet made
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: set[tuple[str, str]] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    failures: list[_Failure] = field(default_factory=list)   # since the last plan, not yet handled
    replans: int = 0
    snapshot: dict[str, dict[str, Any]] = field(default_factory=dict)  # resource -> state before the run
    records: dict[str, ObservedResource] = field(default_factory=dict)
    mode: str = "forward"        # forward | rollback
    touched: set[str] = field(default_factory=set)
    ended: str | None = None
    guards: Any = None           # executor.guards.GuardEngine when the project has guards
    guard_tickets: dict[str, int] = field(default_factory=dict)   # op in flight -> its guard ticket
    denied: set[tuple[str, str]] = field(default_factory=set)     # (op, guard) journaled since it last ran


class Executor:
    """Carries plans out; one instance per run being driven."""

    def __init__(self, journal: Journal, loader: ProjectLoader, *, options: ApplyOptions | None = None,
                 listener: Listener | None = None) -> None:
        self.journal = journal
        self.loader = loader
        self.options = options or ApplyOptions()
        self.listener = listener or (lambda event: None)
        self.crash = CrashPoints(self.options.crash)
        self._stop = threading.Event()
        self._context: ControllerContext | None = None
        self._controllers: dict[str, Controller] = {}
        self._queue: queue.SimpleQueue[_Completion] = queue.SimpleQueue()
        self._token = 0
        # A pool of daemon workers: starting a thread per call costs more than
        # the call itself at thousands a second. A call given up on (no answer
        # in time) keeps its worker; a new one takes its place.
        self._jobs: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._workers = 0
        self._abandoned: set[int] = set()
        self._abort_since = 0

    # --- public --------------------------------------------------------------

    def request_stop(self) -> None:
        """Drain: dispatch nothing new, let in-flight calls finish, save state (Ctrl-C once)."""
        self._stop.set()

    def apply(self, project: Project, plan: Plan, *, supersede: bool = False) -> RunResult:
        """Start a run of ``plan`` (made from ``project``) and carry it to an end. Refused while an
        earlier run can be resumed, unless ``supersede`` ends it (for good) in favour of this one."""
        request = project.model.request_name or project.request_file or ""
        rs = _RunState(run=0, plan=plan, plan_no=1, project=project, records=self.journal.state())
        for name in sorted({op.controller for op in plan.operations}):
            self._controller(name, rs)  # a controller that cannot be set up fails before the run starts
        if supersede:  # what the runs it ends left in doubt is observed before it is sent again
            for old in self.journal.resumable():
                prior = self._rebuild(old.id)
                rs.in_doubt |= prior.in_doubt
                rs.keys.update((oid, prior.keys[oid]) for oid in prior.in_doubt if oid in prior.keys)
            self._abort_since = 0
        rs.run = self.journal.start_run(str(project.root), request, self.options.as_dict(), supersede=supersede)
        rs.snapshot = self._snapshot(project.model, plan, {})
        self._emit(rs, [
            Event("run-started", data={
                "request": request, "project": str(project.root), "snapshot": rs.snapshot,
                "options": self.options.as_dict(),
                "files": {"request": str(project.request_path) if project.request_path else None,
                          "inventory": str(project.inventory_file) if project.inventory_file else None,
                          "policies": [str(p) for p in project.extra_policy_files]}}),
            Event("plan", data={"number": 1, "reason": "initial", "digest": plan.digest, "plan": plan.to_json()}),
        ])
        self.crash.hit("plan-saved")
        return self._drive(rs)

    def resume(self, run_id: int) -> RunResult:
        """Continue a run that crashed, was interrupted, or fell out (after the cause was fixed)."""
        info = self.journal.run(run_id)
        status = info.effective_status
        if status not in ("crashed", "fallout", "interrupted", "failed"):
            why = {"running": "it is running now", "complete": "it completed",
                   "aborted": "it was aborted", "rolled_back": "it was rolled back",
                   "superseded": f"it was {info.summary.get('reason', 'superseded')}; "
                                 "its plan is stale"}.get(status, status)
            raise ExecutionError(f"run {run_id} cannot be resumed: {why}")
        rs = self._rebuild(run_id)  # a journal that cannot be read back is refused before the run is claimed
        self.journal.claim(run_id)
        if self.journal.events(run_id, since=rs.seq, limit=1):  # another process carried it on meanwhile
            rs = self._rebuild(run_id)
        self._emit(rs, [Event("resumed", data={"from": status})])
        if status == "fallout":
            rs.replans = 0
            rs.failures = []
            # The cause was fixed (that is why one resumes): what the run learnt
            # (failed operations, refused targets) no longer holds.
            rs.failed, rs.refused = set(), set()
            return self._replan(rs, reason="resumed after fallout") or self._drive(rs)
        project = self.loader(list(rs.records.values()))
        # The journal's own records are an input too, and they changed with every
        # result: only edited files (request, catalog, inventory) call for a new plan.
        journal = {display_path(self.journal.path, project.root), str(self.journal.path)}
        if rs.plan is None or _model_inputs(project, journal) != _model_inputs_of_plan(rs.plan, journal):
            rs.project = project
            return self._replan(rs, reason="inputs changed since the plan was made") or self._drive(rs)
        rs.project = project
        self._replay_guards(rs)
        if rs.failures:
            return self._after_failure(rs) or self._drive(rs)
        if rs.pending_replan:
            return self._replan(rs, reason="resumed: the failure was observed, re-planning") or self._drive(rs)
        return self._drive(rs)

    def close(self) -> None:
        for _ in range(self._workers):
            self._jobs.put(None)
        self._workers = 0
        for ctl in self._controllers.values():
            with contextlib.suppress(Exception):
                ctl.close()
        self._controllers = {}
        if self._context is not None:
            self._context.close()
            self._context = None

    # --- the run loop --------------------------------------------------------

    def _drive(self, rs: _RunState) -> RunResult:
        while True:
            status = self._execute_plan(rs)
            if status == "complete":
                final = "rolled_back" if rs.mode == "rollback" else "complete"
                return self._end(rs, final)
            if status in ("interrupted", "aborted"):
                return self._end(rs, status)
            result = self._after_failure(rs)
            if result is not None:
                return result

    def _after_failure(self, rs: _RunState) -> RunResult | None:
        """Observe, learn, and plan again: the run's end, or None when a new plan is ready."""
        self._observe_failures(rs)
        self.crash.hit("failure-observed")
        if self.options.on_failure == "stop":
            return self._end(rs, "failed", reason=self._failure_text(rs))
        if rs.mode == "forward" and self.options.on_failure == "rollback":
            rs.mode = "rollback"
            return self._replan(rs, reason="rolling back: " + self._failure_text(rs))
        limit = self.options.max_replans
        if limit is None:
            limit = rs.project.settings.max_replans if rs.project else 3
        if rs.replans >= limit:
            reason = f"gave up after {rs.replans} re-plan(s): {self._failure_text(rs)}"
            return self._end(rs, "fallout", reason=reason)
        return self._replan(rs, reason=self._failure_text(rs))

    def _replan(self, rs: _RunState, reason: str) -> RunResult | None:
        """A new plan from the state now: None when it is ready to run, else the run's end (fallout)."""
        started = time.monotonic()
        project = self.loader(list(rs.records.values()))
        model = project.model
        model.failed = set(rs.failed)
        model.refused = set(rs.refused)
        if rs.plan is not None:
            model.planned = {r: t for r, t in rs.plan.placements.items() if r in model.resources}
        if rs.mode == "rollback":
            _roll_back(model, rs.snapshot)
        outcome: Outcome = make_plan(project, concurrency=self.options.concurrency)
        seconds = time.monotonic() - started
        rs.failures = []
        if rs.project is None:  # resumed after a fallout: the summary needs a model
            rs.project = project
        if outcome.plan is None:
            explanation = outcome.explanation
            self._emit(rs, [Event("no-plan", data={
                "status": outcome.status, "reason": reason, "seconds": round(seconds, 3),
                "explanation": _explanation_data(explanation)})])
            result = self._end(rs, "fallout", reason=f"no plan after failure: {reason}")
            result.explanation = explanation
            return result
        rs.replans += 1
        rs.plan_no += 1
        rs.plan, rs.project = outcome.plan, project
        rs.done, rs.attempts = set(), {}  # in_doubt carries over: observed before anything is resent
        rs.snapshot.update(self._snapshot(model, outcome.plan, rs.snapshot))
        self._emit(rs, [Event("replan", data={"number": rs.plan_no, "reason": reason, "mode": rs.mode,
                                              "seconds": round(seconds, 3), "digest": outcome.plan.digest,
                                              "plan": outcome.plan.to_json()})])
        self.crash.hit("replanned")
        return None

    def _execute_plan(self, rs: _RunState) -> str:
        plan, project = rs.plan, rs.project
        assert plan is not None and project is not None
        model = project.model
        ops = {op.id: op for op in plan.operations}
        succ: dict[str, list[str]] = {oid: [] for oid in ops}
        waiting = dict.fromkeys(ops, 0)
        for edge in plan.edges:
            if edge.before in ops and edge.after in ops:
                succ[edge.before].append(edge.after)
                if edge.before not in rs.done:
                    waiting[edge.after] += 1
        level = _bottom_levels(ops, succ)
        groups: dict[str, list[str]] = {}
        group_limit: dict[str, int] = {}
        for group in plan.groups:
            group_limit[group.name] = group.limit
            for oid in group.operations:
                groups.setdefault(oid, []).append(group.name)
        ctl_limit = {name: spec.concurrency for name, spec in model.controllers.items() if spec.concurrency}
        limit = self.options.concurrency or plan.concurrency or project.settings.concurrency
        ready: dict[str, list[tuple[float, str]]] = {}

        def make_ready(oid: str) -> None:
            heapq.heappush(ready.setdefault(ops[oid].controller, []), (-level[oid], oid))

        for oid in sorted(ops):
            if oid not in rs.done and waiting[oid] == 0:
                make_ready(oid)
        running: dict[int, _Running] = {}
        per_ctl: dict[str, int] = {}
        per_group: dict[str, int] = {}
        retries: list[tuple[float, str]] = []
        guards = self._guard_engine(rs)  # None: the project has no guards, and no guard work is done
        held: dict[str, bool] = {}       # ready, but a guard said wait -> re-check when an operation ends?
        rechecks: list[tuple[float, str]] = []
        next_poll = time.monotonic() + self.options.poll
        stopping = ""
        while True:
            now = time.monotonic()
            while retries and retries[0][0] <= now:
                make_ready(heapq.heappop(retries)[1])
            while rechecks and rechecks[0][0] <= now:
                oid = heapq.heappop(rechecks)[1]
                if held.pop(oid, None) is not None:
                    make_ready(oid)
            # Calls that did not answer in time: in doubt, retried after observing.
            late = [r for r in running.values() if r.deadline is not None and now > r.deadline]
            if late:
                self._abandoned.update(r.token for r in late)
                self._settle(rs, [_Completion(token=r.token, op=r.op, error=TransientError(
                    f"no answer within {r.deadline - r.started:.0f} s", applied=None, code="timeout"))
                    for r in late], running, per_ctl, per_group, groups, ops, succ, waiting, make_ready, retries)
            if now >= next_poll:
                next_poll = now + self.options.poll
                if self.journal.has_event(rs.run, "abort-requested", since=self._abort_since):
                    stopping = stopping or "aborted"
            if self._stop.is_set():
                stopping = stopping or "interrupted"
            if not rs.failures and not stopping:
                batch = self._pick(ready, ops, limit, len(running), per_ctl, ctl_limit, per_group, group_limit,
                                   groups)
                while batch:
                    allowed = batch if guards is None else self._guard(rs, guards, batch, ops, model, held, rechecks)
                    if allowed:
                        self._dispatch(rs, allowed, ops, model, running, per_ctl, per_group, groups)
                    if len(allowed) == len(batch) or rs.failures:
                        break
                    # some were held back: others may take their places
                    batch = self._pick(ready, ops, limit, len(running), per_ctl, ctl_limit, per_group,
                                       group_limit, groups)
            if not running:
                if rs.failures:
                    return "failed"
                if stopping:
                    return stopping
                if not retries and not any(ready.values()) and not held:
                    if len(rs.done) >= len(ops):
                        return "complete"
                    raise ExecutionError(f"run {rs.run}: operations left that can never start "
                                         f"({', '.join(sorted(set(ops) - rs.done)[:5])})")
            wait = next_poll - now
            if retries:
                wait = min(wait, retries[0][0] - now)
            if rechecks:
                wait = min(wait, rechecks[0][0] - now)
            deadlines = [r.deadline for r in running.values() if r.deadline is not None]
            if deadlines:
                wait = min(wait, min(deadlines) - now)
            try:
                first = self._queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                continue
            batch_done = [first]
            while True:
                try:
                    batch_done.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._settle(rs, batch_done, running, per_ctl, per_group, groups, ops, succ, waiting, make_ready,
                         retries)
            if held:  # something finished: what a guard of the run's state held back is checked again
                for oid in sorted(oid for oid, on_change in held.items() if on_change):
                    del held[oid]
                    make_ready(oid)

    def _replay_guards(self, rs: _RunState) -> None:
        """A resumed run's guards count what it did before (rate limits over a
        crash): its intents and their ends, replayed at the times journaled."""
        guards = self._guard_engine(rs)
        if guards is None:
            return
        from executor.guards import operation_info

        planned: dict[str, PlannedOperation] = {}
        tickets: dict[str, int] = {}
        model = rs.project.model
        for ev in self.journal.events(rs.run):
            if ev.kind in ("plan", "replan"):
                planned.update((op.id, op) for op in Plan.from_json(ev.data["plan"]).operations)
            elif ev.kind == "intent" and ev.op in planned and planned[ev.op].resource in model.resources:
                info = operation_info(model, planned[ev.op], ev.data.get("target"))
                tickets[ev.op] = guards.started(info, now=ev.at)
            elif ev.kind in ("result", "retry", "failed") and ev.op in tickets:
                guards.finished(tickets.pop(ev.op), ok=ev.kind == "result", now=ev.at)
        for ticket in tickets.values():  # in doubt: counted as dispatched, no longer in flight
            guards.finished(ticket, ok=False)

    def _guard_engine(self, rs: _RunState) -> Any:
        """The run's guard engine, its resources as they are now; None when the project has no guards."""
        if rs.project is None or not rs.project.guards:
            return None
        from executor.guards import GuardEngine, model_resources

        if rs.guards is None:
            rs.guards = GuardEngine(rs.project.guards)
        rs.guards.set_resources(model_resources(rs.project.model))
        return rs.guards

    def _guard(self, rs: _RunState, guards: Any, batch: list[str], ops: dict[str, PlannedOperation], model: Model,
               held: dict[str, bool], rechecks: list[tuple[float, str]]) -> list[str]:
        """The operations of ``batch`` the guards allow now (recorded as started). A denial is
        journaled once per (operation, guard) until the operation runs; then, as the guard says,
        the operation waits (re-checked after retry_after seconds, and, for guards on what is in
        flight or present (exclusive, max/min_instances), when an operation ends),
        or fails (on_deny fail, or replan: a failure that names the target when the guard is
        about targets, so the next plan may go elsewhere)."""
        from executor.guards import operation_info

        allowed: list[str] = []
        events: list[Event] = []
        for oid in batch:
            if rs.failures:
                break  # the plan ends: nothing more is dispatched (the next plan makes its own choices)
            op = ops[oid]
            target = self._target(rs, model, op.resource)
            info = operation_info(model, op, target)
            decision, ticket = guards.admit(info)
            if decision.allowed:
                allowed.append(oid)
                rs.guard_tickets[oid] = ticket
                if rs.denied:
                    rs.denied.difference_update([k for k in rs.denied if k[0] == oid])
                continue
            if (oid, decision.guard) not in rs.denied:
                rs.denied.add((oid, decision.guard))
                events.append(Event("guard-denied", op=oid, data=decision.as_data()))
            if decision.on_deny == "wait":
                held[oid] = decision.kind in ("exclusive", "max_instances", "min_instances")
                heapq.heappush(rechecks, (time.monotonic() + decision.retry_after, oid))
                continue
            scope = "target" if decision.on_deny == "replan" and decision.about_targets and target else "resource"
            error = f"denied by guard '{decision.guard}': {decision.reason}"
            events.append(Event("failed", op=oid, data={
                "attempt": rs.attempts.get(oid, 0) + 1, "error": error, "transient": False, "scope": scope,
                "code": "guard-denied", "in_doubt": False, "guard": decision.guard, "on_deny": decision.on_deny}))
            rs.failures.append(_Failure(op=oid, resource=op.resource, operation=op.operation, error=error,
                                        scope=scope, target=target, in_doubt=False))
        if events:
            self._emit(rs, events)
        return allowed

    def _pick(self, ready: dict[str, list[tuple[float, str]]], ops: dict[str, PlannedOperation], limit: int,
              in_flight: int, per_ctl: dict[str, int], ctl_limit: dict[str, int], per_group: dict[str, int],
              group_limit: dict[str, int], groups: dict[str, list[str]]) -> list[str]:
        """Ready operations that fit the limits now, longest remaining path first: the
        planner's waves are taken the same way, with nothing in flight."""
        return take_ready(ready, limit - in_flight, ctl_limit, groups, group_limit, per_ctl, per_group)

    def _dispatch(self, rs: _RunState, batch: list[str], ops: dict[str, PlannedOperation], model: Model,
                  running: dict[int, _Running], per_ctl: dict[str, int], per_group: dict[str, int],
                  groups: dict[str, list[str]]) -> None:
        events = []
        calls = []
        now = time.monotonic()
        for oid in batch:
            op = ops[oid]
            res = model.resources[op.resource]
            kind_op = model.kinds[res.type].operation(op.operation)
            attempt = rs.attempts.get(oid, 0) + 1
            rs.attempts[oid] = attempt
            timeout = kind_op.timeout or self.options.default_timeout
            in_doubt = oid in rs.in_doubt
            # In doubt since an earlier plan: observe (and resend) under the key it was sent with.
            key = self._key(rs, oid)
            request = OperationRequest(
                run=str(rs.run), key=key, resource=op.resource, type=op.type,
                operation=op.operation, from_state=op.from_state, to_state=op.to_state,
                target=self._target(rs, model, op.resource), inputs=self._inputs(rs, model, res),
                attempt=attempt, timeout=timeout, outputs=kind_op.outputs)
            events.append(Event("intent", op=oid, key=request.key, data={
                "attempt": attempt, "controller": op.controller, "resource": op.resource,
                "operation": op.operation, "target": request.target, "inputs": request.inputs,
                "observe_first": in_doubt, "plan": rs.plan_no}))
            self._token += 1
            running[self._token] = _Running(op=oid, token=self._token, attempt=attempt, started=now,
                                            deadline=now + timeout, request=request)
            per_ctl[op.controller] = per_ctl.get(op.controller, 0) + 1
            for g in groups.get(oid, ()):
                per_group[g] = per_group.get(g, 0) + 1
            rs.in_doubt.add(oid)  # until its result is written
            calls.append((self._token, oid, request, in_doubt, op.controller, model.kinds[res.type].initial))
        self._emit(rs, events)
        self.crash.hit("intent-written")
        while self._workers - len(self._abandoned) < len(running):
            threading.Thread(target=self._worker, name=f"ordo-worker-{self._workers}", daemon=True).start()
            self._workers += 1
        for token, oid, request, in_doubt, ctl_name, initial in calls:
            self._jobs.put((self._controller(ctl_name, rs), token, oid, request, in_doubt, initial))

    def _worker(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._call(*job)

    def _call(self, ctl: Controller, token: int, oid: str, request: OperationRequest, in_doubt: bool,
              initial: str) -> None:
        started = time.monotonic()
        try:
            if in_doubt:
                obs = ctl.observe(request.resource, request.type, request)
                verdict = _judge(obs, request, initial)
                if verdict == "applied":
                    self._queue.put(_Completion(token, oid, outputs=dict(obs.outputs or {}), observed=True,
                                                seconds=time.monotonic() - started))
                    return
                if verdict != "resend":
                    self._queue.put(_Completion(token, oid, error=PermanentError(verdict, applied=False),
                                                seconds=time.monotonic() - started))
                    return
            outputs = ctl.execute(request)
            self.crash.hit("applied")
            self._queue.put(_Completion(token, oid, outputs=dict(outputs or {}), seconds=time.monotonic() - started))
        except ControllerError as exc:
            self._queue.put(_Completion(token, oid, error=exc, seconds=time.monotonic() - started))
        except Exception as exc:  # an adapter bug must not kill the run
            self._queue.put(_Completion(token, oid, error=PermanentError(
                f"controller raised {type(exc).__name__}: {exc}", applied=None), seconds=time.monotonic() - started))

    def _settle(self, rs: _RunState, completions: list[_Completion], running: dict[int, _Running],
                per_ctl: dict[str, int], per_group: dict[str, int], groups: dict[str, list[str]],
                ops: dict[str, PlannedOperation], succ: dict[str, list[str]], waiting: dict[str, int],
                make_ready: Callable[[str], None], retries: list[tuple[float, str]]) -> None:
        model = rs.project.model
        events: list[Event] = []
        state: dict[str, ObservedResource | None] = {}
        released: list[str] = []
        for done in completions:
            call = running.pop(done.token, None)
            if call is None:
                self._abandoned.discard(done.token)  # a late answer from a call given up on: its worker is free
                continue
            oid = done.op
            op = ops[oid]
            per_ctl[op.controller] -= 1
            if rs.guards is not None and oid in rs.guard_tickets:
                rs.guards.finished(rs.guard_tickets.pop(oid), ok=done.error is None)
            for g in groups.get(oid, ()):
                per_group[g] -= 1
            res = model.resources[op.resource]
            if done.error is None:
                rs.done.add(oid)
                _moved_on(rs, op.resource)
                rs.touched.add(op.resource)
                outputs = done.outputs or {}
                if outputs:
                    rs.outputs.setdefault(op.resource, {}).update(outputs)
                record = self._record(rs, model, res, op.to_state, call.request, outputs)
                rs.records[op.resource] = record
                state[op.resource] = record
                events.append(Event("result", op=oid, key=call.request.key, data={
                    "attempt": call.attempt, "outputs": outputs, "state": op.to_state,
                    "seconds": round(done.seconds, 4), "observed": done.observed}))
                for nxt in succ[oid]:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        released.append(nxt)
                continue
            err = done.error
            retry = model.kinds[res.type].operation(op.operation).retry
            doubt = err.applied is not False
            if not doubt:
                rs.in_doubt.discard(oid)
            data = {"attempt": call.attempt, "error": err.message, "transient": err.transient,
                    "scope": err.scope, "code": err.code, "in_doubt": doubt}
            if err.transient and call.attempt < retry.attempts:
                delay = retry.delay(call.attempt)
                data["retry_in"] = round(delay, 3)
                events.append(Event("retry", op=oid, key=call.request.key, data=data))
                heapq.heappush(retries, (time.monotonic() + delay, oid))
                continue
            if err.transient:
                data["error"] = f"{err.message} (after {call.attempt} attempts)"
            events.append(Event("failed", op=oid, key=call.request.key, data=data))
            rs.failures.append(_Failure(op=oid, resource=op.resource, operation=op.operation, error=data["error"],
                                        scope=err.scope, target=call.request.target, in_doubt=doubt))
        for nxt in sorted(released):
            make_ready(nxt)
        if events:
            self._emit(rs, events, state=state)
            self.crash.hit("result-written")

    # --- failures ------------------------------------------------------------

    def _observe_failures(self, rs: _RunState) -> None:
        """Observe the resources concerned (those that failed, and those whose
        last operation is in doubt) and learn facts for the next plan."""
        model = rs.project.model
        events: list[Event] = []
        state: dict[str, ObservedResource | None] = {}
        by_id = {o.id: o for o in rs.plan.operations} if rs.plan else {}
        concerned: dict[str, list[str]] = {}
        for failure in rs.failures:
            concerned.setdefault(failure.resource, []).append(failure.op)
        for oid in sorted(rs.in_doubt):
            concerned.setdefault(oid.rpartition("/")[0], []).append(oid)
        for name, oids in concerned.items():
            res = model.resources.get(name)
            if res is None:
                continue
            kind = model.kinds[res.type]
            ops = [by_id[o] for o in oids if o in by_id]
            controller = ops[0].controller if ops else kind.operation(oids[0].rpartition("/")[2]).controller
            try:
                obs = self._controller(controller, rs).observe(res.name, res.type, None)
            except ControllerError as exc:
                events.append(Event("observed", data={"resource": res.name, "error": exc.message}))
                continue
            if obs.state is None and obs.exists:
                continue  # the controller cannot tell; keep what the journal knows
            now_state = obs.state if obs.exists and obs.state in kind.states else kind.initial
            target = obs.target if now_state != kind.initial else None
            record = self._record(rs, model, res, now_state, None, dict(obs.attributes),
                                  target=target or self._target(rs, model, res.name))
            rs.records[res.name] = record
            state[res.name] = record
            data = {"resource": res.name, "state": now_state, "target": target}
            # In doubt no longer where the state says whether it was applied: journaled, so that
            # a resumed run knows it too (a later execution of the operation gets a new key).
            settled = sorted(op.id for op in ops if op.id in rs.in_doubt and op.from_state != op.to_state
                             and now_state in (op.from_state, op.to_state))
            if settled:
                data["settled"] = settled
                rs.in_doubt.difference_update(settled)
            events.append(Event("observed", data=data))
        facts = []
        for failure in rs.failures:
            rs.failed.add((failure.resource, failure.operation))
            facts.append(["failed", failure.resource, failure.operation])
            if failure.scope == "target" and failure.target and failure.target not in rs.refused:
                rs.refused.add(failure.target)
                facts.append(["refused", failure.target])
        events.append(Event("learnt", data={"facts": facts}))
        self._emit(rs, events, state=state)

    def _failure_text(self, rs: _RunState) -> str:
        if not rs.failures:
            return "an operation failed"
        first = rs.failures[0]
        more = f" (and {len(rs.failures) - 1} more)" if len(rs.failures) > 1 else ""
        return f"{first.op} failed: {first.error}{more}"

    # --- end -------------------------------------------------------------------

    def _end(self, rs: _RunState, status: str, reason: str = "") -> RunResult:
        summary = self._summary(rs)
        summary["status"] = status
        if reason:
            summary["reason"] = reason
        self._emit(rs, [Event("run-ended", data=summary)], status=status, summary=summary)
        rs.ended = status
        return RunResult(run=rs.run, status=status, summary=summary, reason=self.journal.redactor.text(reason))

    def _summary(self, rs: _RunState) -> dict[str, Any]:
        """Resources that reached their goal, by what happened to them from the
        start of the run (Terraform's summary), and those left short of it."""
        counts = {"created": 0, "changed": 0, "deleted": 0, "unfinished": 0}
        model = rs.project.model if rs.project else None
        goals = {c.resource: c.after for c in rs.plan.resource_changes} if rs.plan else {}
        for name in sorted(set(rs.snapshot) | set(goals)):
            if model is None or name not in model.resources:
                continue
            initial = model.kinds[model.resources[name].type].initial
            record = rs.records.get(name)
            before = rs.snapshot.get(name, {}).get("state", initial)
            now = record.state if record else model.resources[name].current
            if now != goals.get(name, now):
                counts["unfinished"] += name in rs.touched
            elif before == initial and now == initial:
                continue  # created and removed again (a rollback): no net change
            elif before == initial and now != initial:
                counts["created"] += 1
            elif before != initial and now == initial:
                counts["deleted"] += 1
            elif name in rs.touched:
                counts["changed"] += 1
        return {**counts, "replans": rs.replans, "operations": len(rs.done), "plan": rs.plan_no}

    # --- helpers ----------------------------------------------------------------

    def _emit(self, rs: _RunState, events: list[Event], *, state: dict[str, ObservedResource | None] | None = None,
              status: str | None = None, summary: dict[str, Any] | None = None) -> None:
        stored = self.journal.append(rs.run, events, state=state, status=status, summary=summary)
        for ev in stored:
            self.listener(ev)

    def _key(self, rs: _RunState, oid: str) -> str:
        """A key names one attempt at one effect. An operation in doubt keeps the key it
        was sent with (even into a new plan), so the controller can tell it was applied;
        once that is settled (a result on its resource, or an observation that tells),
        running it again is a new attempt, under the key of the plan it is in."""
        if oid in rs.in_doubt and oid in rs.keys:
            return rs.keys[oid]
        rs.keys[oid] = f"ordo:{self.journal.id[:12]}:{rs.run}:{rs.plan_no}:{oid}"
        return rs.keys[oid]

    def _controller(self, name: str, rs: _RunState) -> Controller:
        if name not in self._controllers:
            if self._context is None:
                self._context = ControllerContext(
                    workdir=self.journal.path.parent, root=rs.project.root,
                    inventory=[{"name": r.name, "type": r.type, "state": r.current, "placement": r.placement,
                                "attributes": r.attributes}
                               for r in rs.project.model.resources.values() if r.observed],
                    targets=sorted(rs.project.model.targets),
                    settings={"simulation": self.options.simulation or {}}, redactor=self.journal.redactor)
            self.journal.redactor.add_names(n for kind in rs.project.model.kinds.values() for n in kind.secrets)
            self._controllers.update(make_controllers(rs.project.model.controllers, {name}, self._context))
        return self._controllers[name]

    def _target(self, rs: _RunState, model: Model, name: str) -> str | None:
        # Where the resource is while it exists (its teardown goes there, also
        # when the plan moves it elsewhere), else where the plan puts it.
        seen = set()
        while name and name not in seen:
            seen.add(name)
            res = model.resources.get(name)
            record = rs.records.get(name)
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

    def _inputs(self, rs: _RunState, model: Model, res: Resource) -> dict[str, Any]:
        if not res.refs:
            return dict(res.params)

        def value_of(producer: str, output: str) -> Any:
            if output in rs.outputs.get(producer, {}):
                return rs.outputs[producer][output]
            record = rs.records.get(producer)
            if record is not None and output in record.attributes:
                return record.attributes[output]
            other = model.resources.get(producer)
            if other is not None and output in other.attributes:
                return other.attributes[output]
            raise KeyError(output)

        return {k: v for k, v in ((k, _resolve(v, value_of)) for k, v in res.params.items()) if v is not _MISSING}

    def _record(self, rs: _RunState, model: Model, res: Resource, state: str, request: OperationRequest | None,
                outputs: dict[str, Any], target: str | None = None) -> ObservedResource:
        kind = model.kinds[res.type]
        previous = rs.records.get(res.name)
        attributes = dict(previous.attributes if previous else res.attributes)
        if state == kind.initial:
            attributes = {}
            placement = None
        else:
            if request is not None:
                attributes.update(request.inputs)
            attributes.update(outputs)
            placement = target or (request.target if request else None) or (previous.placement if previous else None)
            # Only placeable resources carry a placement of their own; parts inherit it.
            if not kind.placement:
                placement = None
        return observed_record(res, state, placement, attributes)

    def _snapshot(self, model: Model, plan: Plan, known: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for change in plan.resource_changes:
            if change.resource in known:
                continue
            res = model.resources[change.resource]
            out[change.resource] = {"state": res.current, "placement": res.placement,
                                    "attributes": dict(res.attributes)}
        return out

    def _rebuild(self, run_id: int) -> _RunState:
        rs = _RunState(run=run_id, records=self.journal.state())
        targets: dict[str, str | None] = {}  # a failure's target is the one its intent named
        for ev in self.journal.events(run_id):
            try:
                self._replay(rs, ev, targets)
            except UNREADABLE as exc:
                raise damaged_event(self.journal.path, ev, exc) from None
            rs.seq = ev.seq
        return rs

    def _replay(self, rs: _RunState, ev: Event, targets: dict[str, str | None]) -> None:
        """One journaled event, read back into the run's state."""
        data = ev.data
        if ev.kind == "run-started":
            rs.snapshot = dict(data.get("snapshot", {}))
        elif ev.kind in ("plan", "replan"):
            rs.plan = Plan.from_json(data["plan"])
            rs.plan_no = data["number"]
            rs.done, rs.attempts, rs.failures = set(), {}, []
            rs.pending_replan = False
            if ev.kind == "replan":
                rs.replans += 1
                rs.mode = data.get("mode", rs.mode)
        elif ev.kind == "intent":
            rs.attempts[ev.op] = data["attempt"]
            rs.in_doubt.add(ev.op)
            if ev.key:
                rs.keys[ev.op] = ev.key
            targets[ev.op] = data.get("target")
        elif ev.kind == "result":
            resource = ev.op.rpartition("/")[0]
            rs.done.add(ev.op)
            _moved_on(rs, resource)
            if data.get("outputs"):
                rs.outputs.setdefault(resource, {}).update(data["outputs"])
            rs.touched.add(resource)
        elif ev.kind == "observed":
            rs.in_doubt.difference_update(data.get("settled", ()))
        elif ev.kind in ("retry", "failed"):
            if not data.get("in_doubt"):
                rs.in_doubt.discard(ev.op)
            if ev.kind == "failed":
                resource, _, operation = ev.op.rpartition("/")
                rs.failures.append(_Failure(op=ev.op, resource=resource, operation=operation,
                                            error=data.get("error", ""), scope=data.get("scope", "resource"),
                                            target=targets.get(ev.op), in_doubt=bool(data.get("in_doubt"))))
        elif ev.kind == "learnt":
            rs.failures = []
            rs.pending_replan = True
            for fact in data.get("facts", []):
                if fact[0] == "failed":
                    rs.failed.add((fact[1], fact[2]))
                elif fact[0] == "refused":
                    rs.refused.add(fact[1])
        elif ev.kind == "abort-requested":
            self._abort_since = ev.seq


# --- pure helpers ---------------------------------------------------------------

_MISSING = object()


def _moved_on(rs: _RunState, resource: str) -> None:
    """An operation on ``resource`` has a result: no earlier attempt on it is in doubt any more
    (its key names a settled attempt; the operation, if run again, gets a new key)."""
    rs.in_doubt.difference_update([oid for oid in rs.in_doubt if oid.rpartition("/")[0] == resource])


def _resolve(value: Any, value_of: Callable[[str, str], Any]) -> Any:
    """A param with ``${R.outputs.X}`` replaced by the value; _MISSING if one is not known yet."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        try:
            if whole:
                producer, _, output = whole.group(1).rpartition(".outputs.")
                return value_of(producer, output)
            if not references_in(value):
                return value

            def sub(m: Any) -> str:
                producer, _, output = m.group(1).rpartition(".outputs.")
                return str(value_of(producer, output))

            return REFERENCE.sub(sub, value)
        except KeyError:
            return _MISSING
    if isinstance(value, dict):
        out = {k: _resolve(v, value_of) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in out.values()) else out
    if isinstance(value, list):
        items = [_resolve(v, value_of) for v in value]
        return _MISSING if any(v is _MISSING for v in items) else items
    return value


def _judge(obs: Observation, request: OperationRequest, initial: str) -> str:
    """After an answer was lost: 'applied', 'resend', or why neither is safe."""
    if obs.applied is True:
        return "applied"
    if obs.applied is False:
        return "resend"
    if request.from_state == request.to_state:
        return "resend"  # a same-state operation cannot be told apart: it must be idempotent
    state = obs.state if obs.exists else initial
    if state is None:
        return "resend"
    if state == request.to_state:
        return "applied"
    if state == request.from_state:
        return "resend"
    return (f"'{request.resource}' is {state}, neither {request.from_state} nor {request.to_state}: "
            f"cannot tell whether {request.operation} was applied")


def _bottom_levels(ops: dict[str, PlannedOperation], succ: dict[str, list[str]]) -> dict[str, float]:
    """Longest remaining path (by expected duration) from each operation: the dispatch priority."""
    graph = nx.DiGraph()
    graph.add_nodes_from(ops)
    graph.add_edges_from((a, b) for a, nexts in succ.items() for b in nexts)
    return bottom_levels(graph, {oid: op.duration for oid, op in ops.items()})


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
        res.params = {}
        res.refs = ()
        res.pinned = before.get("placement")
    model.planned = {}


def _model_inputs(project: Project, skip: set[str]) -> dict[str, str]:
    return {path: sha for path, sha in project.inputs if not path.startswith("<") and path not in skip}


def _model_inputs_of_plan(plan: Plan, skip: set[str]) -> dict[str, str]:
    return {i.path: i.sha256 for i in plan.inputs
            if not i.path.startswith("<") and not i.path.endswith(".lp") and i.path not in skip}


def _explanation_data(explanation: Any) -> dict[str, Any] | None:
    if explanation is None:
        return None
    return explanation.to_dict()


__all__ = ["ApplyOptions", "CRASH_POINTS", "CrashPoints", "ExecutionError", "Executor", "JournalError",
           "ProjectLoader", "RunResult"]
