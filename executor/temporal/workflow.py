"""The Temporal host of the run core: a workflow that carries the core's commands out.

Like the local host (``executor/engine.py``) it feeds :class:`executor.core.RunCore`
inputs and carries out the commands it returns, and decides nothing itself:
``Record`` is an activity that writes the events to the shared journal;
``Dispatch`` an activity that writes the intents, then one activity per call on
its controller's task queue; ``Admit``, ``Observe`` and ``Replan`` are activities
(clingo never runs in workflow code); ``Wait`` is a workflow timer raced against
the calls completing and the ``stop`` signal; ``Abandon`` cancels the calls;
``End`` writes ``run-ended`` and completes the workflow, except for a fallout: then
the workflow waits (without a timeout of its own) for the ``decide`` signal: on
``resume`` or ``rollback`` an activity journals who asked, and the core is fed
``Resumed`` in the same workflow (it plans again: an activity), as ``ordo resume``
feeds it on the local host; on ``abort`` the run ends aborted. A run superseded
while it waited (``ordo apply --supersede``) is sent an abort, and its workflow
ends with the end the journal holds. Time is ``workflow.now()``.

The plan crosses no history: the workflow's input and what it hands on when it
continues as new is a reference to the run (``wire.Ref``); the client (the
plan confirmed) and the re-planning activity journal each plan (with the events
the core makes of it, which the workflow then does not record again) and the
workflow reads an
outline of it (``wire.Outline``: what the core needs) in pages. A workflow
continued as new takes up the run's state as a worker read it back from the
journal through ``RunState.apply`` (as ``ordo resume`` does), in a compact form.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from executor.core import (
        Abandon,
        Admit,
        Admitted,
        Begin,
        Call,
        CallError,
        Completed,
        Continue,
        Dispatch,
        End,
        NoPlan,
        Observe,
        Observed,
        Outcome,
        Planned,
        Record,
        Replan,
        Resumed,
        RunCore,
        RunState,
        Stop,
        Tick,
        Wait,
    )
    from executor.core.messages import Input, PlanSpec
    from executor.temporal.wire import (
        INPUTS,
        PAGE_EDGES,
        PAGE_OPS,
        Outline,
        Ref,
        denial_in,
        event_in,
        event_out,
        found_in,
        outcome_in,
        outline_in,
        queue_for,
        ref_problem,
        state_in,
    )

WORKFLOW = "ordo-run"
#: A run's statuses in which a decision did not end it: the workflow waits for the next.
UNDECIDED = ("running", "fallout")
#: Decisions kept waiting at most (more are dropped: one is taken at a time, and a resume drops the rest).
MAX_DECISIONS = 8
#: The ``decide`` signal's actions, for a run that fell out.
DECISIONS = ("resume", "rollback", "abort")
#: The core's records that are journaled with the plan (by the client, by ``ordo.replan``).
_WRITTEN_WITH_THE_PLAN = ("planned", "replanned")
#: The steps' activities (journal, planner, guards, observation): retried unless the inputs are wrong;
#: a lost worker is noticed by its missing heartbeat. While the journal's database is gone (restarting,
#: failing over, a network cut) a step is retried for up to STEP_FOR in all; any other failure 20 times
#: (the activity tells them apart: ``activities.STEP_ATTEMPTS``): retried for as long as it takes, an
#: error that never passes (a damaged journal row, a missing plan) held the run, and an abort with it,
#: for good. (All failures had 20 attempts, some 85 s: a database down for longer failed the workflow
#: and left the run crashed.)
_STEP_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                          maximum_attempts=0, non_retryable_error_types=["ordo-inputs", "permanent"])
STEP_FOR = timedelta(hours=1)
#: A call is retried by Temporal only when its worker was lost or its attempt failed outside the
#: controller (the next attempt observes first); the controller's own errors are the core's to retry.
_CALL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                          maximum_attempts=0, non_retryable_error_types=["permanent", "ordo-inputs"])
_HEARTBEAT = 3.0
#: The steps' activities may hold the GIL for seconds (reading a plan of 30,000 operations, clingo's
#: grounding), which stops the heartbeats of their worker: a lost main-queue worker is noticed later.
_STEP_HEARTBEAT = 30.0
#: The patch that lets a stop cancel a re-plan (``workflow.patched``: a history from before replays as it ran).
_STOPPABLE_REPLAN = "stoppable-replan"
#: The patch that tells a carried stop with the state (Continue), before anything is dispatched.
_CARRIED_STOP = "carried-stop"
#: The patch that journals a batch's intents a page at a time (INTENTS_PER_STEP), not in one activity.
_PAGED_INTENTS = "paged-intents"
#: Intents per ``ordo.intents`` activity: its answer carries each call's inputs, and a payload is at most
#: 2 MiB (a wave of 800 calls with 3 KB of inputs each failed the run; 100 such calls make 0.4 MiB).
INTENTS_PER_STEP = 100


#: Half of Temporal's default history limits (51,200 events, 50 MiB): past either, the workflow
#: hands on, keeping the other half for the calls in flight to finish. Temporal's own suggestion
#: (from 4 MiB) is not followed: a plan's outline alone is 3.4 MiB at 31,700 operations, and
#: every execution reads it again.
_HISTORY_EVENTS = 25_600
_HISTORY_BYTES = 25 * 2**20


def _step_options(ref: Ref) -> dict[str, Any]:
    """How a step's activity runs: on the main queue, retried, heartbeating."""
    return {"task_queue": ref["queue"], "start_to_close_timeout": timedelta(minutes=10),
            "schedule_to_close_timeout": STEP_FOR, "heartbeat_timeout": timedelta(seconds=_STEP_HEARTBEAT),
            "retry_policy": _STEP_RETRY}


def _history_half_full() -> bool:
    info = workflow.info()
    return info.get_current_history_length() > _HISTORY_EVENTS or info.get_current_history_size() > _HISTORY_BYTES


@workflow.defn(name=WORKFLOW)
class RunWorkflow:
    def __init__(self) -> None:
        self._state: RunState | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}   # calls in flight, by token
        self._done: list[Outcome] = []                     # their outcomes, not yet fed to the core
        self._stop: str | None = None
        self._stop_sent = False
        self._seq = 0                                       # the last journal sequence number seen
        self._requests: dict[str, dict[str, Any]] = {}      # operation -> its last intent's request
        self._found: dict[str, dict[str, Any]] = {}         # records of the observation under way
        self._settled = 0                                   # outcomes fed since this execution began
        self._frozen: float | None = None                   # the core's time while handing the history on
        self._decisions: list[dict[str, Any]] = []          # after a fallout: resume, rollback or abort, in turn
        self._awaiting = False                              # fallen out, waiting for the decision
        self._fallout: int | None = None                    # the seq of that fallout's run-ended

    @workflow.signal
    def stop(self, reason: str) -> None:
        """Dispatch nothing new, let the calls in flight finish, end (``aborted`` or ``interrupted``)."""
        if reason in ("aborted", "interrupted") and self._stop is None:
            self._stop = reason

    @workflow.signal
    def decide(self, decision: dict[str, Any]) -> None:
        """What to do with a run that fell out: ``{"action": resume | rollback | abort, "principal": ...,
        "record": {...}, "fallout": seq}`` (``record``: more for the journal's event; ``fallout``: the
        fallout it is for, the ``progress`` query's, and it is dropped at any other: a decision sent for
        one that another decision resumed does not act on the next). Taken once the run has fallen out."""
        if len(self._decisions) < MAX_DECISIONS and isinstance(decision, dict) and decision.get("action") in DECISIONS:
            record, fallout = decision.get("record"), decision.get("fallout")
            self._decisions.append({"action": decision["action"], "principal": str(decision.get("principal") or ""),
                                    "record": record if isinstance(record, dict) else {},
                                    "fallout": fallout if isinstance(fallout, int) else None})

    @workflow.query
    def progress(self) -> dict[str, Any]:
        rs = self._state
        if rs is None:
            return {}
        return {"run": rs.run, "plan": rs.plan_no, "done": len(rs.done),
                "operations": len(rs.plan.operations) if rs.plan else 0, "in_flight": len(self._tasks),
                "in_doubt": sorted(rs.in_doubt), "replans": rs.replans, "stopping": self._stop or "",
                "ended": rs.ended or "", "awaiting": "decision" if self._awaiting else "",
                "fallout": self._fallout if self._awaiting else None}

    @workflow.run
    async def run(self, ref: Any) -> dict[str, Any]:   # (Any: what is no reference is refused below, not decoded)
        problem = ref_problem(ref)
        if problem is not None:   # ordo's client sends none such: someone else started this workflow
            raise ApplicationError(f"not a run's reference: {problem}", type=INPUTS, non_retryable=True)
        if ref.get("carried") and workflow.info().continued_run_id is None:
            # (a carried reference comes from the run's own workflow continued as new, never from a start:
            # one started by hand with "carried" skipped the first step's checks, and carried out an
            # aborted run's plan again: a sweep's)
            raise ApplicationError("not a run's reference: 'carried' is set only by the run's own workflow, "
                                   "continued as new", type=INPUTS, non_retryable=True)
        carried_stop = workflow.patched(_CARRIED_STOP)
        # the stop the execution before heard; a stop signalled before this execution's first task is
        # applied before this runs (it was overwritten, and an abort as the history was handed on lost)
        self._stop = (self._stop if carried_stop else None) or ref.get("stop") or None
        inp: Input
        if ref.get("carried"):
            carried = await self._step("ordo.state", ref)
            plan, spec = (await self._outline(ref, carried["state"]["plan_no"], carried["head"])
                          if carried["head"] else (None, None))
            rs = state_in(ref["run"], carried["state"], plan)
            self._seq = rs.seq
            # the stop told with the state, before anything is dispatched (as a later input, it came after
            # a batch of new calls went out); told again at the first wait, as a stop is (so that a re-plan
            # the carried state's failure asks for is cancelled by it, as by a stop signalled then)
            inp = Continue(spec, False, self._now(), stop=(self._stop or "") if carried_stop else "")
        else:
            rs = RunState(run=ref["run"])
            begun = await self._step("ordo.begin", ref)
            self._seq = begun["seq"]
            plan, spec = await self._outline(ref, 1, begun["head"])
            inp = Begin(plan, spec, begun["started"], self._now())
        self._state = rs
        core = RunCore(rs, key_prefix=f"ordo:{ref['journal_id'][:12]}:{rs.run}:",
                       on_failure=ref["options"]["on_failure"])
        while True:
            answer = await self._drive(ref, rs, core, inp)
            if answer["status"] != "fallout":
                return answer
            self._fallout = answer.get("seq")   # (none from a worker before it answered with it: any is taken)
            while True:
                self._awaiting = True   # as long as it takes: a decision may come days later
                await workflow.wait_condition(lambda: bool(self._decisions))
                decision = self._decisions.pop(0)
                if decision.pop("fallout") not in (None, self._fallout) and self._fallout is not None:
                    continue   # for an earlier fallout
                self._awaiting = False
                taken = await self._step("ordo.decide", ref, self._seq, decision)
                if "seq" in taken:   # resumed: the decisions sent meanwhile were for this fallout too
                    self._decisions.clear()
                    break
                if taken["status"] not in UNDECIDED:  # aborted, or the run ended meanwhile (superseded)
                    rs.ended = taken["status"]
                    return taken
                # an abort after a resume took the run: the resume's decision is the next
            self._seq = max(self._seq, taken["seq"])
            rs.ended = None
            inp = Resumed("fallout", self._now(), rollback=decision["action"] == "rollback")

    async def _drive(self, ref: Ref, rs: RunState, core: RunCore, inp: Input) -> dict[str, Any]:
        """Step the core and carry its commands out until it ends the run: ``ordo.end``'s answer."""
        while True:
            # Past the threshold, the history is handed on: the calls in flight finish, what the core
            # dispatches meanwhile is not carried out (no intent is written: nothing happened), and
            # the next execution rebuilds the state from the journal and dispatches it. Meanwhile the
            # core's clock stands still, so that no timer of a call not carried out runs out.
            if self._frozen is None and (self._settled >= ref["continue_every"] or _history_half_full()):
                self._frozen = self._now()
            draining = self._frozen is not None
            follow: Input | None = None
            until: float | None = None
            waiting = False
            for cmd in core.step(inp):
                kind = type(cmd)
                if kind is Record:
                    if cmd.step not in _WRITTEN_WITH_THE_PLAN:
                        await self._record(ref, rs, cmd)
                elif kind is Dispatch:
                    if not draining:
                        await self._dispatch(ref, rs, cmd)
                elif kind is Abandon:
                    self._abandon(cmd)
                elif kind is Wait:
                    until, waiting = cmd.until, True
                elif kind is Admit:
                    if draining:  # nothing is dispatched: the next execution asks the guards
                        follow = Admitted(list(cmd.ops), [], self._now())
                    else:
                        follow = await self._admit(ref, rs, cmd)
                elif kind is Observe:
                    follow = await self._observe(ref, rs, cmd)
                elif kind is Replan:
                    follow = await self._replan(ref, rs, cmd)
                elif kind is End:
                    answer = await self._step("ordo.end", ref, cmd.status, cmd.reason, self._seq)
                    rs.ended = answer["status"]
                    return answer
            if follow is not None:
                inp = follow
                continue
            if draining and not self._tasks and not self._done:
                workflow.continue_as_new({**ref, "carried": True, "stop": self._stop or ""})
            if not waiting:
                raise ApplicationError(f"run {rs.run}: the run core is waiting for an input this host cannot give",
                                       type=INPUTS, non_retryable=True)
            inp = await self._wait(None if draining else until)

    # --- carrying commands out ---------------------------------------------------------

    async def _record(self, ref: Ref, rs: RunState, cmd: Record) -> None:
        requests = ({ev.op: self._requests[ev.op] for ev in cmd.events if ev.kind == "result" and ev.op in
                     self._requests} if cmd.step == "settled" else {})
        found = self._found if cmd.step == "observed" else {}
        seq = await self._step("ordo.record", ref, rs.plan_no, self._seq, cmd.step,
                               [event_out(ev) for ev in cmd.events], requests, found)
        self._seq = max(self._seq, seq)
        if cmd.step == "observed":
            self._found = {}

    async def _dispatch(self, ref: Ref, rs: RunState, cmd: Dispatch) -> None:
        page = INTENTS_PER_STEP if workflow.patched(_PAGED_INTENTS) else len(cmd.calls)
        for start in range(0, len(cmd.calls), page):
            calls = cmd.calls[start:start + page]
            made = await self._step("ordo.intents", ref, rs.plan_no, self._seq, [asdict(c) for c in calls])
            for call, intent in zip(calls, made, strict=True):
                ev = event_in(intent["event"])
                rs.apply(ev)
                self._seq = max(self._seq, ev.seq)
                self._requests[call.op] = intent["request"]
                self._tasks[call.token] = asyncio.create_task(self._call(ref, rs.plan_no, call, intent))

    async def _call(self, ref: Ref, plan_no: int, call: Call, intent: dict[str, Any]) -> None:
        why = intent["event"]["data"].get("refused")
        if why is not None:  # never sent (an input is a secret known only by its fingerprint)
            self._tasks.pop(call.token, None)
            self._done.append(Outcome.refused(call.token, call.op, why))
            return
        payload = {"token": call.token, "op": call.op, "request": intent["request"], "initial": intent["initial"],
                   "controller": intent["controller"], "observe_first": call.observe_first, "plan_no": plan_no,
                   "inputs_digest": intent.get("inputs_digest")}   # the request's secrets are fingerprinted
        timeout = timedelta(seconds=call.timeout)
        try:
            answer = await workflow.execute_activity(
                "ordo.call", args=[ref, payload], task_queue=queue_for(intent["controller"], ref["queue"]),
                start_to_close_timeout=timeout, schedule_to_close_timeout=timeout,
                heartbeat_timeout=timedelta(seconds=min(_HEARTBEAT, call.timeout)), retry_policy=_CALL_RETRY)
            outcome = outcome_in(answer)
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, CancelledError):
                return  # abandoned
            if isinstance(cause, ApplicationError) and cause.type == "permanent" and cause.details:
                outcome = outcome_in(cause.details[0])
            else:  # no answer: in doubt (observed before it is sent again)
                outcome = Outcome(call.token, call.op, error=CallError(
                    f"no answer from the call: {cause or exc}", transient=True, code="timeout"))
        except asyncio.CancelledError:
            return  # abandoned
        if self._tasks.pop(call.token, None) is not None:
            self._done.append(outcome)

    def _abandon(self, cmd: Abandon) -> None:
        for token in cmd.tokens:
            task = self._tasks.pop(token, None)
            if task is not None:
                task.cancel()

    async def _admit(self, ref: Ref, rs: RunState, cmd: Admit) -> Admitted:
        answer = await self._step("ordo.admit", ref, rs.plan_no, cmd.ops)
        return Admitted(answer["allowed"], [denial_in(d) for d in answer["denied"]], self._now())

    async def _observe(self, ref: Ref, rs: RunState, cmd: Observe) -> Observed:
        answer = await self._step("ordo.observe", ref, rs.plan_no, [asdict(c) for c in cmd.concerns])
        self._found = answer["records"]
        return Observed([found_in(f) for f in answer["found"]], self._now())

    async def _replan(self, ref: Ref, rs: RunState, cmd: Replan) -> Planned | NoPlan | Stop:
        """A new plan (``ordo.replan``). A stop meanwhile (``ordo abort``, an interrupt) cancels it, as the
        local host's re-plan ends at one: the planning children are ended and nothing is journaled (Stop,
        and a resume plans again), unless the plan was journaled first (then it stands, and the stop
        is heard next)."""
        args = (ref, rs.plan_no, self._seq, {**asdict(cmd), "snapshot": {}})
        if not workflow.patched(_STOPPABLE_REPLAN):   # a history from before: the stop waited for the plan
            answer = await self._step("ordo.replan", *args)
        else:
            step = self._start_step("ordo.replan", *args)
            await workflow.wait_condition(lambda: step.done() or (self._stop is not None and not self._stop_sent))
            cancelled = not step.done()
            if cancelled:
                step.cancel()
            try:
                answer = await step
            except ActivityError:
                if not cancelled:
                    raise
                # Cancelled, or failed once the cancellation was asked (Temporal retries no attempt
                # then): a plan an attempt journaled before its answer was lost stands.
                answer = await self._step("ordo.replanned", ref, rs.plan_no, self._seq)
                if answer is None:
                    self._stop_sent = True
                    return Stop(self._stop, self._now())
        if "head" not in answer:
            return NoPlan(answer["status"], answer["explanation"], answer["seconds"], self._now())
        self._seq = max(self._seq, answer["seq"])
        plan, spec = await self._outline(ref, rs.plan_no + 1, answer["head"])
        return Planned(plan, spec, answer["seconds"], {}, self._now())

    async def _wait(self, until: float | None) -> Input:
        """The next thing that happens: calls completing, the timer, or a stop."""
        def ready() -> bool:
            return bool(self._done) or (self._stop is not None and not self._stop_sent)

        if not ready():
            timeout = None if until is None else until - self._now()
            if timeout is not None and timeout <= 0:
                return Tick(self._now())
            try:
                await workflow.wait_condition(ready, timeout=timeout)
            except TimeoutError:
                return Tick(self._now())
        if self._stop is not None and not self._stop_sent:
            self._stop_sent = True
            return Stop(self._stop, self._now())
        batch, self._done = self._done, []
        self._settled += len(batch)
        return Completed(batch, self._now())

    async def _outline(self, ref: Ref, plan_no: int, head: dict[str, Any]) -> tuple[Outline, PlanSpec]:
        """Plan ``plan_no``'s outline, read from the journal a page at a time."""
        ops: list[list[Any]] = []
        for start in range(0, head["operations"], PAGE_OPS):
            ops += await self._step("ordo.outline", ref, plan_no, "ops", start)
        edges: list[list[int]] = []
        for start in range(0, head["edges"], PAGE_EDGES):
            edges += await self._step("ordo.outline", ref, plan_no, "edges", start)
        return outline_in(head, ops, edges)

    async def _step(self, name: str, ref: Ref, *args: Any) -> Any:
        return await workflow.execute_activity(name, args=[ref, *args], **_step_options(ref))

    def _start_step(self, name: str, ref: Ref, *args: Any) -> workflow.ActivityHandle[Any]:
        """A step that may be cancelled: its cancellation waits for the activity's answer (a result
        that stands, or the cancellation acknowledged), so that what it journaled is known."""
        return workflow.start_activity(
            name, args=[ref, *args], **_step_options(ref),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)

    def _now(self) -> float:
        return workflow.now().timestamp() if self._frozen is None else self._frozen
