"""The run loop as a deterministic state machine: inputs in, commands out.

One plan at a time (:class:`PlanState`): dispatch every ready operation the
limits allow (global, per controller, per concurrency group), longest
remaining path first, once the guards admit it; settle what completes
(results release successors; transient errors are retried after the
operation's backoff; calls without an answer in time are in doubt); on a
failure dispatch nothing new, let the calls in flight finish, observe what is
concerned, learn, and plan again (or end: stop, rollback, fallout). An
operation in doubt is dispatched with ``observe_first`` under the key it was
sent with. See docs/architecture.md (Executing) for the protocol.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from executor.core.messages import (
    Abandon,
    Admit,
    Admitted,
    Arrived,
    Begin,
    Call,
    CallError,
    Collect,
    Command,
    Completed,
    Concern,
    Continue,
    Dispatch,
    End,
    Event,
    ExecutionError,
    Input,
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
    Stop,
    Tick,
    Wait,
)
from executor.core.state import RunState
from planner.plan import Plan, PlannedOperation
from planner.schedule import take_ready

if TYPE_CHECKING:
    from domain.model import WaitRule

_NO_SPEC = OpSpec(timeout=0.0)


@dataclass
class Running:
    op: str
    token: int
    attempt: int
    started: float
    deadline: float
    key: str


#: Seconds past a wait's deadline at which the operation fails: an event accepted up to the deadline (by
#: `ordo event` or the service, which refuse one after it) is written to the journal then, and a host reads
#: the journal for events every half second (ApplyOptions.poll). Failed at the deadline itself, an event
#: accepted just before it ("it goes on at once") was written beside the failure and dropped.
WAIT_GRACE = 1.0


@dataclass
class Waiting:
    """A waiting operation of the plan: when it fails (``deadline``: the wait's, plus WAIT_GRACE), when it
    is observed next (``poll``)."""

    deadline: float
    poll: float | None


@dataclass
class PlanState:
    """The working state of the plan being carried out (derived from the run's state and the spec)."""

    spec: PlanSpec
    ops: dict[str, PlannedOperation]
    succ: dict[str, list[str]]
    waiting: dict[str, int]                        # predecessors not done yet
    level: dict[str, float]                        # longest remaining path: the dispatch priority
    groups: dict[str, list[str]]                   # op -> the concurrency groups it is in
    group_limit: dict[str, int]
    ready: dict[str, list[tuple[float, str]]] = field(default_factory=dict)   # a heap per controller
    running: dict[int, Running] = field(default_factory=dict)
    per_ctl: dict[str, int] = field(default_factory=dict)
    per_group: dict[str, int] = field(default_factory=dict)
    retries: list[tuple[float, str]] = field(default_factory=list)     # (when, op)
    held: dict[str, bool] = field(default_factory=dict)   # a guard said wait -> ask again when an op ends?
    rechecks: list[tuple[float, str]] = field(default_factory=list)
    waits: dict[str, Waiting] = field(default_factory=dict)  # operations waiting (policies/README.md, Waiting)
    starting: list[str] = field(default_factory=list)        # operations about to wait (the core takes them in)

    @classmethod
    def of(cls, plan: Plan, spec: PlanSpec, done: set[str], sent: set[str] = frozenset()) -> PlanState:
        """``sent``: operations whose call was carried out and that only wait now."""
        ops = {op.id: op for op in plan.operations}
        succ: dict[str, list[str]] = {oid: [] for oid in ops}
        waiting = dict.fromkeys(ops, 0)
        for edge in plan.edges:
            if edge.before in ops and edge.after in ops:
                succ[edge.before].append(edge.after)
                if edge.before not in done:
                    waiting[edge.after] += 1
        groups: dict[str, list[str]] = {}
        group_limit: dict[str, int] = {}
        for group in plan.groups:
            group_limit[group.name] = group.limit
            for oid in group.operations:
                groups.setdefault(oid, []).append(group.name)
        ps = cls(spec=spec, ops=ops, succ=succ, waiting=waiting, level=_bottom_levels(ops, succ), groups=groups,
                 group_limit=group_limit)
        for oid in sorted(ops):
            if oid not in done and waiting[oid] == 0:
                if oid in sent and spec.ops.get(oid, _NO_SPEC).wait is not None:
                    ps.starting.append(oid)
                else:
                    ps.release(oid)
        return ps

    def release(self, oid: str) -> None:
        """All its predecessors are done: ready to dispatch, or to wait when it sends nothing."""
        spec = self.spec.ops.get(oid)
        if spec is not None and spec.wait is not None and not spec.wait.send:
            self.starting.append(oid)
        else:
            self.make_ready(oid)

    def finish(self, oid: str) -> list[str]:
        """``oid`` is done: its successors that have no other predecessor left."""
        released = []
        for nxt in self.succ[oid]:
            self.waiting[nxt] -= 1
            if self.waiting[nxt] == 0:
                released.append(nxt)
        return released

    def make_ready(self, oid: str) -> None:
        heapq.heappush(self.ready.setdefault(self.ops[oid].controller, []), (-self.level[oid], oid))

    def pick(self) -> list[str]:
        """Ready operations that fit the limits now, longest remaining path first
        (planner.schedule.take_ready: the planner's waves are taken the same way)."""
        return take_ready(self.ready, self.spec.limit - len(self.running), self.spec.controller_limits,
                          self.groups, self.group_limit, self.per_ctl, self.per_group)

    def next_timer(self, overdue: set[str] | frozenset[str] = frozenset(), polls: bool = True) -> float | None:
        """When the core must be woken next; ``overdue``: waits past their deadline that wait for the journal
        to be read (Collect), not for a time (while a stop lets calls in flight finish, say: woken at once
        for them, the core was woken again and again until the calls ended); ``polls``: whether a wait's
        next look counts (not while no Probe goes out: a failure drains, a stop; the same)."""
        times = [r.deadline for r in self.running.values()]
        if self.retries:
            times.append(self.retries[0][0])
        if self.rechecks:
            times.append(self.rechecks[0][0])
        for oid, w in self.waits.items():
            if oid not in overdue:
                times.append(w.deadline if w.poll is None or not polls else min(w.deadline, w.poll))
        return min(times) if times else None


class RunCore:
    """The decisions of one run. ``key_prefix`` + plan number + operation id is a new idempotency key;
    ``on_failure``: replan | rollback | stop."""

    def __init__(self, state: RunState, *, key_prefix: str, on_failure: str = "replan") -> None:
        self.state = state
        self.key_prefix = key_prefix
        self.on_failure = on_failure
        self.plan: PlanState | None = None
        self.spec: PlanSpec | None = None
        self.token = 0
        self.stopping = ""
        self.admitting: list[str] | None = None      # an Admit is out
        self.concerns: dict[str, list[str]] = {}     # an Observe is out
        self.replanning: tuple[str, str] | None = None  # (reason, mode) of a Replan that is out
        self.probing = False                         # a Probe is out
        self.overdue: set[str] = set()               # event waits past their deadline, to look for first
        self.collecting: list[str] = []              # a Collect is out, for these
        self.collected: set[str] = set()             # looked for since their deadline passed: they fail

    def step(self, inp: Input) -> list[Command]:
        """The commands that follow from ``inp``, in order."""
        return _STEPS[type(inp)](self, inp)

    # --- starting ------------------------------------------------------------------

    def _begin(self, inp: Begin) -> list[Command]:
        events = begun(inp.plan, inp.started)
        self._apply(events, inp.plan)
        return [Record(events, "planned"), *self._start(inp.spec, inp.now)]

    def _resumed(self, inp: Resumed) -> list[Command]:
        # A run stopped on a failure (--on-failure stop) forgets what it learnt from it, as after a fallout:
        # the operator was told to fix the cause first; unless resumed to re-plan around it (journaled: the
        # state read back forgets as this one does)
        forget = inp.previous == "failed" and self.on_failure != "replan"
        events = [Event("resumed", data={"from": inp.previous, **({"rollback": True} if inp.rollback else {}),
                                         **({"host": inp.host} if inp.host else {}),
                                         **({"forget": True} if forget else {})})]
        self._apply(events)
        cmds: list[Command] = [Record(events, "resumed")]
        if inp.rollback:
            cmds.append(self._replan(f"rolling back on request (the run was {inp.previous})", mode="rollback"))
        elif inp.previous == "fallout":
            cmds.append(self._replan("resumed after fallout"))
        return cmds

    def _continue(self, inp: Continue) -> list[Command]:
        self.stopping = self.stopping or inp.stop
        if self.state.failures:   # observed and learnt first (a target that refused), whatever the inputs now
            self.spec = inp.spec
            return self._past_deadline(inp) + self._observe()
        if inp.inputs_changed or inp.spec is None:
            return [self._replan("inputs changed since the plan was made", mode=self.state.pending_mode)]
        self.spec = inp.spec
        if self.state.pending_replan:
            # the mode of the re-plan owed (a resume's, or one a stop cut short), else as after the
            # observation that learnt the failure (_observed)
            mode = self.state.pending_mode or ("rollback" if self.on_failure == "rollback" else None)
            why = ("resumed: the failure's cause taken as fixed, re-planning" if self.state.forgot else
                   "resumed: the failure was observed, re-planning")
            return [self._replan(why, mode=mode)]
        return self._start(inp.spec, inp.now)

    def _past_deadline(self, inp: Continue) -> list[Command]:
        """Waits the run left past their deadline (and grace), on a resume that observes a failure first:
        they fail with it, as while the run went on (the journal was read whole: an event that came is in
        the state), rather than in the next plan, at once, each costing a re-plan of its own."""
        rs, ops = self.state, inp.spec.ops if inp.spec is not None else {}
        due = [oid for oid, w in sorted(rs.waits.items()) if oid not in rs.arrived and oid not in rs.done
               and oid in ops and ops[oid].wait is not None and w["deadline"] + WAIT_GRACE <= inp.now]
        events = [self._deadline_failed(oid, ops[oid].wait) for oid in due]
        return [Record(events, "settled")] if events else []

    def _deadline_failed(self, oid: str, w: WaitRule) -> Event:
        """The failure of a wait whose deadline passed: for good, not in doubt."""
        rs = self.state
        return self._made(Event("failed", op=oid, key=rs.keys.get(oid), data={
            "attempt": max(rs.attempts.get(oid, 0), 1), "transient": False, "scope": "resource", "code": "deadline",
            "in_doubt": False, "error": f"no {w.describe()} within the deadline of {w.deadline:g} s"}))

    def _start(self, spec: PlanSpec, now: float) -> list[Command]:
        assert self.state.plan is not None
        self.spec = spec
        self.plan = PlanState.of(self.state.plan, spec, self.state.done, set(self.state.sent))
        return self._advance(now)

    # --- the plan's loop -----------------------------------------------------------

    def _advance(self, now: float) -> list[Command]:
        """Timers that are due, calls that are late, then dispatch what the limits allow."""
        p = self.plan
        assert p is not None
        while p.retries and p.retries[0][0] <= now:
            p.make_ready(heapq.heappop(p.retries)[1])
        while p.rechecks and p.rechecks[0][0] <= now:
            oid = heapq.heappop(p.rechecks)[1]
            if p.held.pop(oid, None) is not None:
                p.make_ready(oid)
        cmds: list[Command] = []
        # Calls that did not answer in time: in doubt, retried after observing.
        late = [r for r in p.running.values() if now > r.deadline]
        if late:
            cmds.append(Abandon([r.token for r in late]))
            cmds.extend(self._settle([Outcome(r.token, r.op, error=CallError(
                f"no answer within {r.deadline - r.started:.0f} s", transient=True, code="timeout"))
                for r in late], now))
        cmds.extend(self._waits(now))
        if not self.state.failures and not self.stopping:
            batch = p.pick()
            if batch:
                if p.spec.guarded:
                    self.admitting = batch
                    cmds.append(Admit(batch))
                    return cmds
                cmds.extend(self._dispatch(batch, now))
        return cmds + self._settled_or_wait(now)

    def _settled_or_wait(self, now: float) -> list[Command]:
        """The plan's end once nothing is in flight, else a wait for the next call or timer."""
        p, rs = self.plan, self.state
        assert p is not None
        overdue = sorted(oid for oid in self.overdue if oid in p.waits)
        if overdue and not self.stopping and not self.probing and not self.collecting:
            # also while a failure drains, and before it is observed: those that came complete, the others
            # fail with it (kept for the next plan, each cost a re-plan of its own)
            self.overdue.clear()
            self.collecting = overdue
            return [Collect(overdue)]
        if not p.running:
            if rs.failures:
                return self._observe()
            if self.stopping:
                return [End(self.stopping)]
            if not p.retries and not any(p.ready.values()) and not p.held and not p.waits:
                if len(rs.done) >= len(p.ops):
                    return [End("rolled_back" if rs.mode == "rollback" else "complete")]
                raise ExecutionError(f"run {rs.run}: operations left that can never start "
                                     f"({', '.join(sorted(set(p.ops) - rs.done)[:5])})")
        probes = not rs.failures and not self.stopping
        if probes and not self.probing and not self.collecting:
            due = sorted(oid for oid, w in p.waits.items() if w.poll is not None and w.poll <= now)
            if due:
                self.probing = True
                return [Probe(due)]
        return [Wait(p.next_timer(self.overdue, polls=probes))]

    def _dispatch(self, batch: list[str], now: float) -> list[Command]:
        """The calls of ``batch``, after the ``waiting`` events of those that wait once sent (a wait's
        deadline counts from its first dispatch, so an event that arrives during the call counts)."""
        p, rs = self.plan, self.state
        assert p is not None
        waiting = [self._made(self._waiting(oid, now)) for oid in batch
                   if p.spec.ops[oid].wait is not None and oid not in rs.waits]
        calls = []
        for oid in batch:
            op = p.ops[oid]
            timeout = p.spec.ops[oid].timeout
            in_doubt = oid in rs.in_doubt
            # A key names one attempt at one effect. An operation in doubt keeps the key it was
            # sent with (even into a new plan), so the controller can tell it was applied; once
            # that is settled, running it again is a new attempt, under the key of its plan.
            key = rs.keys[oid] if in_doubt and oid in rs.keys else f"{self.key_prefix}{rs.plan_no}:{oid}"
            attempt = rs.attempts.get(oid, 0) + 1
            self.token += 1
            p.running[self.token] = Running(op=oid, token=self.token, attempt=attempt, started=now,
                                            deadline=now + timeout, key=key)
            p.per_ctl[op.controller] = p.per_ctl.get(op.controller, 0) + 1
            for g in p.groups.get(oid, ()):
                p.per_group[g] = p.per_group.get(g, 0) + 1
            calls.append(Call(token=self.token, op=oid, attempt=attempt, key=key, observe_first=in_doubt,
                              timeout=timeout))
        return [Record(waiting, "waiting"), Dispatch(calls)] if waiting else [Dispatch(calls)]

    def _completed(self, inp: Completed) -> list[Command]:
        p = self.plan
        assert p is not None
        cmds = self._settle(inp.outcomes, inp.now)
        if p.held:  # something finished: what a guard of the run's state held back is asked again
            for oid in sorted(oid for oid, on_change in p.held.items() if on_change):
                del p.held[oid]
                p.make_ready(oid)
        return cmds + self._advance(inp.now)

    def _settle(self, outcomes: list[Outcome], now: float) -> list[Command]:
        p, rs = self.plan, self.state
        assert p is not None
        events: list[Event] = []
        released: list[str] = []
        for done in outcomes:
            call = p.running.pop(done.token, None)
            if call is None:
                continue  # the late answer of a call given up on
            oid = done.op
            op = p.ops[oid]
            p.per_ctl[op.controller] -= 1
            for g in p.groups.get(oid, ()):
                p.per_group[g] -= 1
            if done.error is None:
                data = {"attempt": call.attempt, "outputs": done.outputs or {}, "seconds": round(done.seconds, 4),
                        "observed": done.observed}
                if p.spec.ops[oid].wait is not None:  # sent: now it waits
                    events.append(self._made(Event("sent", op=oid, key=call.key, data=data)))
                    p.starting.append(oid)
                    continue
                ev = Event("result", op=oid, key=call.key, data={**data, "state": op.to_state})
                rs.apply(ev)
                events.append(ev)
                released.extend(p.finish(oid))
                continue
            err = done.error
            retry = p.spec.ops[oid].retry
            data = {"attempt": call.attempt, "error": err.message, "transient": err.transient,
                    "scope": err.scope, "code": err.code, "in_doubt": err.applied is not False}
            if err.transient and call.attempt < retry.attempts:
                delay = retry.delay(call.attempt)
                # (queued while stopping too, as before: its timer is one of a workflow's commands on replay)
                heapq.heappush(p.retries, (now + delay, oid))
                if self.stopping:   # not sent again by this run, which ends ("again in 1s", it said): by its
                    data["on_resume"] = self.stopping == "interrupted"   # resume, if it is one that is resumed
                else:
                    data["retry_in"] = round(delay, 3)
                ev = Event("retry", op=oid, key=call.key, data=data)
            else:
                if err.transient:
                    data["error"] = f"{err.message} (after {call.attempt} attempts)"
                ev = Event("failed", op=oid, key=call.key, data=data)
            rs.apply(ev)
            events.append(ev)
        for nxt in sorted(released):
            p.release(nxt)
        return [Record(events, "settled")] if events else []

    # --- declared waits ------------------------------------------------------------------

    def _waiting(self, oid: str, now: float) -> Event:
        """The event that starts a wait; its deadline is on the host's clock and outlives the process."""
        op, spec = self.plan.ops[oid], self.plan.spec.ops[oid]
        w = spec.wait
        assert w is not None
        data: dict[str, Any] = {"resource": op.resource, "deadline": round(now + w.deadline, 6),
                                "seconds": w.deadline, "send": w.send}
        if w.event is not None:
            data["event"] = w.event
        else:
            data["observe"] = {"state": w.state} if w.state is not None else {"output": w.output, "equals": w.equals}
            data["every"] = w.every
        if spec.outputs:
            data["outputs"] = list(spec.outputs)
        if spec.secrets:
            data["hidden"] = list(spec.secrets)  # names its data masks ("secrets" would be masked itself)
        return Event("waiting", op=oid, data=data)

    def _waits(self, now: float) -> list[Command]:
        """Operations that begin to wait (journaled once: a wait resumed keeps its deadline), then those
        whose event arrived (complete) or whose deadline passed (failed for good, not in doubt); again for
        those a completed one released that wait without sending anything (they were left out, and the
        run stopped on "operations left that can never start")."""
        p, rs = self.plan, self.state
        assert p is not None
        cmds: list[Command] = []
        while True:
            starting, p.starting = sorted(p.starting), []
            begun = [self._made(self._waiting(oid, now)) for oid in starting if oid not in rs.waits]
            for oid in starting:
                self.collected.discard(oid)   # (a wait begun anew, in a new plan)
                observing = p.spec.ops[oid].wait.event is None
                p.waits[oid] = Waiting(deadline=rs.waits[oid]["deadline"] + WAIT_GRACE,
                                       poll=now if observing else None)
            if begun:
                cmds.append(Record(begun, "waiting"))
            cmds.extend(self._waits_over(now))
            if not p.starting:
                return cmds

    def _waits_over(self, now: float) -> list[Command]:
        """The waits whose event arrived (complete) or whose deadline passed (failed for good)."""
        p, rs = self.plan, self.state
        assert p is not None
        events: list[Event] = []
        released: list[str] = []
        for oid in sorted(p.waits):
            if oid in rs.arrived:
                events.append(self._met(oid, rs.arrived[oid].get("data") or {}, "event", now))
                released.extend(p.finish(oid))
            elif p.waits[oid].deadline <= now:
                if p.spec.ops[oid].wait.event is not None and oid not in self.collected:
                    self.overdue.add(oid)   # the journal looked at first (Collect), then it fails
                    continue
                self.collected.discard(oid)
                del p.waits[oid]
                events.append(self._deadline_failed(oid, p.spec.ops[oid].wait))
        for nxt in sorted(released):
            p.release(nxt)
        return [Record(events, "settled")] if events else []

    def _met(self, oid: str, found: dict[str, Any], how: str, now: float) -> Event:
        """The wait of ``oid`` is over: its result, with the outputs of its call and those it declares
        among what completed it (the event's data, the observed attributes)."""
        p, rs = self.plan, self.state
        del p.waits[oid]
        spec = p.spec.ops[oid]
        began = rs.waits[oid]["deadline"] - rs.waits[oid]["seconds"]
        outputs = {**rs.sent.get(oid, {}), **{k: v for k, v in found.items() if k in spec.outputs}}
        return self._made(Event("result", op=oid, key=rs.keys.get(oid), data={
            "attempt": rs.attempts.get(oid, 0), "outputs": outputs, "state": p.ops[oid].to_state,
            "seconds": round(max(now - began, 0.0), 4), "observed": how == "observed", "waited": how}))

    def _arrived(self, inp: Arrived) -> list[Command]:
        for ev in inp.events:
            self.state.apply(ev)
        self.collected.update(self.collecting)   # (the answer to a Collect: looked for, they may fail now)
        self.collecting = []
        return self._advance(inp.now)

    def _probed(self, inp: Probed) -> list[Command]:
        """A waiting operation whose resource shows the state (or the output's value) is complete;
        the others (and a look that failed) are observed again ``every`` seconds later."""
        p = self.plan
        assert p is not None
        self.probing = False
        events: list[Event] = []
        released: list[str] = []
        for look in inp.looks:
            if look.op not in p.waits:
                continue
            w = p.spec.ops[look.op].wait
            met = look.error is None and (look.state == w.state if w.state is not None
                                          else w.output in look.attributes and look.attributes[w.output] == w.equals)
            if met:
                events.append(self._met(look.op, look.attributes, "observed", inp.now))
                released.extend(p.finish(look.op))
            else:
                p.waits[look.op].poll = inp.now + w.every
        for nxt in sorted(released):
            p.release(nxt)
        return ([Record(events, "settled")] if events else []) + self._advance(inp.now)

    def _admitted(self, inp: Admitted) -> list[Command]:
        """A denial is journaled once per (operation, guard) until the operation runs; then, as the
        guard says, the operation waits (asked again after retry_after seconds and, for guards on what
        is in flight or present, when an operation ends) or fails (on_deny fail, or replan: a failure
        that names the target when the guard is about targets, so the next plan may go elsewhere)."""
        p, rs = self.plan, self.state
        assert p is not None and self.admitting is not None
        batch, self.admitting = self.admitting, None
        events: list[Event] = []
        for d in inp.denied:
            if (d.op, d.guard) not in rs.denied:
                events.append(self._made(Event("guard-denied", op=d.op, data=d.data)))
            if d.on_deny == "wait":
                p.held[d.op] = d.on_change
                heapq.heappush(p.rechecks, (inp.now + d.retry_after, d.op))
                continue
            scope = "target" if d.on_deny == "replan" and d.about_targets and d.target else "resource"
            events.append(self._made(Event("failed", op=d.op, data={
                "attempt": rs.attempts.get(d.op, 0) + 1, "error": f"denied by guard '{d.guard}': {d.reason}",
                "transient": False, "scope": scope, "code": "guard-denied", "in_doubt": False, "guard": d.guard,
                "on_deny": d.on_deny, "target": d.target})))
        cmds: list[Command] = [Record(events, "guarded")] if events else []
        if inp.allowed:
            cmds.extend(self._dispatch(inp.allowed, inp.now))
        if len(inp.allowed) < len(batch) and not rs.failures and not self.stopping:
            more = p.pick()  # some were held back: others may take their places
            if more:
                self.admitting = more
                return [*cmds, Admit(more)]
        return cmds + self._settled_or_wait(inp.now)

    def _stop(self, inp: Stop) -> list[Command]:
        self.stopping = self.stopping or inp.reason
        if self.replanning is not None:
            # The host's answer to a Replan when a stop came first (while the plan waited or was
            # being made): nothing is in flight. Journaled with its mode, so that a resume makes
            # that re-plan (a rollback asked for stays one).
            (reason, mode), self.replanning = self.replanning, None
            events = [self._made(Event("replan-stopped", data={"reason": reason, "mode": mode}))]
            return [Record(events, "replan-stopped"), End(self.stopping)]
        return self._advance(inp.now)

    def _tick(self, inp: Tick) -> list[Command]:
        return self._advance(inp.now)

    # --- after a failure ------------------------------------------------------------

    def _observe(self) -> list[Command]:
        """Observe the resources concerned: those that failed, and those whose last operation is in doubt."""
        rs = self.state
        concerned: dict[str, list[str]] = {}
        for oid in [f.op for f in rs.failures] + sorted(rs.in_doubt):
            ops = concerned.setdefault(oid.rpartition("/")[0], [])
            if oid not in ops:
                ops.append(oid)
        by_id = {o.id: o for o in rs.plan.operations} if rs.plan else {}
        self.concerns = concerned
        return [Observe([Concern(name, oids, next((by_id[o].controller for o in oids if o in by_id), None))
                         for name, oids in concerned.items()])]

    def _observed(self, inp: Observed) -> list[Command]:
        rs = self.state
        by_id = {o.id: o for o in rs.plan.operations} if rs.plan else {}
        events: list[Event] = []
        for found in inp.found:
            if found.error is not None:
                events.append(self._made(Event("observed", data={"resource": found.resource, "error": found.error})))
                continue
            if found.state is None:
                continue  # the controller cannot tell; keep what the journal knows
            data = {"resource": found.resource, "state": found.state, "target": found.target,
                    **({"applied": found.applied} if found.applied is not None else {})}
            # In doubt no longer where the state says whether it was applied: journaled, so that
            # a resumed run knows it too (a later execution of the operation gets a new key).
            ops = [by_id[o] for o in self.concerns.get(found.resource, ()) if o in by_id]
            # (one that keeps the state, an update, where the controller asked by its key says it applied it: an
            # update found applied was counted nowhere in the summary, a review's)
            settled = sorted(op.id for op in ops if op.id in rs.in_doubt and (
                op.from_state != op.to_state and found.state in (op.from_state, op.to_state)
                or found.applied is True and found.state == op.to_state))
            if settled:
                data["settled"] = settled
            events.append(self._made(Event("observed", data=data)))
        facts: list[list[str]] = []
        refused = set(rs.refused)
        for failure in rs.failures:
            facts.append(["failed", failure.resource, failure.operation])
            if failure.scope == "target" and failure.target and failure.target not in refused:
                refused.add(failure.target)
                facts.append(["refused", failure.target])
        why = rs.failure_text()
        events.append(self._made(Event("learnt", data={"facts": facts})))
        self.concerns = {}
        cmds: list[Command] = [Record(events, "observed")]
        if self.on_failure == "stop":
            return [*cmds, End("failed", why)]
        if rs.mode == "forward" and self.on_failure == "rollback":
            return [*cmds, self._replan("rolling back: " + why, mode="rollback")]
        limit = self.spec.max_replans if self.spec is not None else 3
        if rs.replans >= limit:
            return [*cmds, End("fallout", f"gave up after {rs.replans} re-plan(s): {why}")]
        return [*cmds, self._replan(why)]

    def _replan(self, reason: str, mode: str | None = None) -> Replan:
        rs = self.state
        mode = mode or rs.mode
        self.plan = None
        self.replanning = (reason, mode)
        return Replan(reason=reason, mode=mode, failed=sorted(rs.failed), refused=sorted(rs.refused),
                      placements=dict(rs.plan.placements) if rs.plan else {},
                      snapshot=rs.snapshot if mode == "rollback" else {})

    def _planned(self, inp: Planned) -> list[Command]:
        assert self.replanning is not None
        (reason, mode), self.replanning = self.replanning, None
        events = [replanned(self.state.plan_no + 1, reason, mode, inp.seconds, inp.plan, inp.snapshot)]
        self._apply(events, inp.plan)
        return [Record(events, "replanned"), *self._start(inp.spec, inp.now)]

    def _no_plan(self, inp: NoPlan) -> list[Command]:
        assert self.replanning is not None
        (reason, _), self.replanning = self.replanning, None
        events = [Event("no-plan", data={"status": inp.status, "reason": reason, "seconds": round(inp.seconds, 3),
                                         "explanation": inp.explanation})]
        self._apply(events)
        return [Record(events, "no-plan"), End("fallout", f"no plan after failure: {reason}")]

    # --- helpers ----------------------------------------------------------------------

    def _apply(self, events: list[Event], plan: Plan | None = None) -> None:
        for ev in events:
            self.state.apply(ev, plan)

    def _made(self, ev: Event) -> Event:
        self.state.apply(ev)
        return ev


def begun(plan: Plan, started: dict[str, Any]) -> list[Event]:
    """The events that start a run with ``plan`` (a host that writes them itself makes the same)."""
    return [Event("run-started", data=started),
            Event("plan", data={"number": 1, "reason": "initial", "digest": plan.digest, "plan": plan.to_json()})]


def replanned(number: int, reason: str, mode: str, seconds: float, plan: Plan,
              snapshot: dict[str, Any]) -> Event:
    """The event of plan ``number``, made again after a failure."""
    data = {"number": number, "reason": reason, "mode": mode, "seconds": round(seconds, 3),
            "digest": plan.digest, "plan": plan.to_json()}
    if snapshot:
        data["snapshot"] = snapshot
    return Event("replan", data=data)


_STEPS = {Begin: RunCore._begin, Resumed: RunCore._resumed, Continue: RunCore._continue,
          Completed: RunCore._completed, Tick: RunCore._tick, Stop: RunCore._stop, Admitted: RunCore._admitted,
          Observed: RunCore._observed, Planned: RunCore._planned, NoPlan: RunCore._no_plan,
          Arrived: RunCore._arrived, Probed: RunCore._probed}


def _bottom_levels(ops: dict[str, PlannedOperation], succ: dict[str, list[str]]) -> dict[str, float]:
    """Longest remaining path (by expected duration) from each operation: the dispatch priority
    (planner.schedule.bottom_levels on plain dicts: four times faster than a networkx graph at 30,000
    operations, and a Temporal workflow task must end within 2 s)."""
    waiting = dict.fromkeys(ops, 0)
    for nexts in succ.values():
        for b in nexts:
            waiting[b] += 1
    order = [oid for oid, n in waiting.items() if n == 0]
    for oid in order:  # grows as it goes: a topological order
        for b in succ[oid]:
            waiting[b] -= 1
            if waiting[b] == 0:
                order.append(b)
    level: dict[str, float] = {}
    for oid in reversed(order):
        level[oid] = ops[oid].duration + max((level[s] for s in succ[oid]), default=0.0)
    return level
