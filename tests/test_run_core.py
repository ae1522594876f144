"""The run core alone (executor/core/): inputs in, commands out; no thread, clock, file or journal.

A test plays the host: it writes nothing, and answers the core's commands by hand.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from domain.model import RetryPolicy
from executor.core import (
    Abandon,
    Admit,
    Admitted,
    Begin,
    CallError,
    Completed,
    Concern,
    Continue,
    Denial,
    Dispatch,
    End,
    Event,
    Found,
    NoPlan,
    Observe,
    Observed,
    OpSpec,
    Outcome,
    Planned,
    PlanSpec,
    Record,
    Replan,
    Resumed,
    RunCore,
    RunState,
    Stop,
    Tick,
    Wait,
)
from planner.plan import Edge, Group, Plan, PlannedOperation, ResourceChange

ROOT = Path(__file__).resolve().parent.parent
RETRY = RetryPolicy(initial_interval=1.0, coefficient=2.0, max_interval=60.0, attempts=3)


def plan_of(ops: dict[str, tuple[str, float]], edges: tuple[tuple[str, str], ...] = (),
            groups: tuple[tuple[str, int, tuple[str, ...]], ...] = (), placements: dict[str, str] | None = None,
            digest: str = "d1") -> Plan:
    """A plan of operations ``id -> (controller, duration)``, every one absent -> active."""
    wave = dict.fromkeys(ops, 1)
    for _ in ops:
        for a, b in edges:
            wave[b] = max(wave[b], wave[a] + 1)
    return Plan(
        status="optimal", request="r", digest=digest, inputs=(),
        resource_changes=tuple(ResourceChange(resource=oid.split("/")[0], type="vm", actions=("create",),
                                              before="absent", after="active", operations=(oid,), reason="")
                               for oid in ops),
        operations=tuple(PlannedOperation(id=oid, resource=oid.split("/")[0], type="vm",
                                          operation=oid.split("/")[1], from_state="absent", to_state="active",
                                          controller=ctl, duration=duration, wave=wave[oid], reason="")
                         for oid, (ctl, duration) in ops.items()),
        edges=tuple(Edge(before=a, after=b, rules=()) for a, b in edges),
        waves=tuple(tuple(o for o in ops if wave[o] == w) for w in sorted(set(wave.values()))),
        placements=placements or {}, cost=(), makespan=1.0, critical_path=1.0, concurrency=8,
        groups=tuple(Group(name=n, limit=lim, operations=members) for n, lim, members in groups),
        ground_atoms=0, ground_rules=0)


def spec_of(plan: Plan, limit: int = 8, timeout: float = 30.0, **kw: Any) -> PlanSpec:
    return PlanSpec(limit=limit, ops={op.id: OpSpec(timeout=timeout, retry=RETRY) for op in plan.operations}, **kw)


class Host:
    """Plays the host by hand: records what the core asks to write (with sequence numbers),
    writes the intents a Dispatch asks for and applies them, as the local host does."""

    def __init__(self, core: RunCore) -> None:
        self.core = core
        self.journal: list[Event] = []
        self.in_flight: dict[str, int] = {}    # op -> token of its call

    def step(self, inp: Any) -> list[Any]:
        cmds = self.core.step(inp)
        for cmd in cmds:
            if isinstance(cmd, Record):
                self.journal.extend(self._stored(ev) for ev in cmd.events)
            elif isinstance(cmd, Dispatch):
                for call in cmd.calls:
                    ev = self._stored(Event("intent", op=call.op, key=call.key, data={
                        "attempt": call.attempt, "target": "r1", "observe_first": call.observe_first}))
                    self.journal.append(ev)
                    self.core.state.apply(ev)
                    self.in_flight[call.op] = call.token
            elif isinstance(cmd, Abandon):
                self.in_flight = {op: t for op, t in self.in_flight.items() if t not in cmd.tokens}
            elif isinstance(cmd, End):
                ev = self._stored(Event("run-ended", data={"status": cmd.status}))
                self.journal.append(ev)
                self.core.state.apply(ev)
        return cmds

    def complete(self, now: float, *ops: str, error: CallError | None = None) -> list[Any]:
        return self.step(Completed([Outcome(self.in_flight.pop(op), op, outputs={} if error is None else None,
                                            error=error) for op in ops], now))

    def _stored(self, ev: Event) -> Event:
        stored = Event(ev.kind, op=ev.op, key=ev.key, data=ev.data, seq=len(self.journal) + 1, run=1)
        self.core.state.seq = stored.seq
        return stored


def begin(plan: Plan, spec: PlanSpec | None = None, **core: Any) -> tuple[Host, list[Any]]:
    host = Host(RunCore(RunState(run=1), key_prefix="ordo:j:1:", **core))
    return host, host.step(Begin(plan, spec or spec_of(plan), {"snapshot": {}}, now=0.0))


def only(cmds: list[Any], kind: type) -> list[Any]:
    return [c for c in cmds if isinstance(c, kind)]


def dispatched(cmds: list[Any]) -> list[str]:
    return [call.op for d in only(cmds, Dispatch) for call in d.calls]


def kinds(cmds: list[Any]) -> list[str]:
    return [ev.kind for r in only(cmds, Record) for ev in r.events]


# --- readiness and limits ---------------------------------------------------------


def test_ready_operations_fill_the_limits_longest_path_first():
    plan = plan_of({"a1/create": ("ca", 1), "a2/create": ("ca", 5), "a3/create": ("ca", 3), "b1/create": ("cb", 1),
                    "b2/create": ("cb", 1), "c1/create": ("cc", 1), "c2/create": ("cc", 1)},
                   edges=(("c1/create", "c2/create"),), groups=(("g", 1, ("b1/create", "b2/create")),))
    host, cmds = begin(plan, spec_of(plan, limit=4, controller_limits={"ca": 2}))
    assert kinds(cmds) == ["run-started", "plan"]
    # ca: two at most, the longest first; the group holds one of b1, b2; c2 waits for c1.
    assert sorted(dispatched(cmds)) == ["a2/create", "a3/create", "b1/create", "c1/create"]
    assert only(cmds, Wait) == [Wait(30.0)]   # the earliest deadline
    cmds = host.complete(1.0, "a2/create")
    assert dispatched(cmds) == ["a1/create"]  # ca has room again; the global limit is full
    cmds = host.complete(2.0, "c1/create", "b1/create")
    assert sorted(dispatched(cmds)) == ["b2/create", "c2/create"]
    for op in ("a1/create", "a3/create", "b2/create", "c2/create"):
        cmds = host.complete(3.0, op)
    assert cmds[-1] == End("complete")
    assert kinds(cmds) == ["result"]
    assert host.core.state.done == {op.id for op in plan.operations}


# --- retries ------------------------------------------------------------------------


def test_transient_failures_are_retried_with_backoff_then_fail():
    plan = plan_of({"a/create": ("c", 1)})
    host, cmds = begin(plan)
    first = only(cmds, Dispatch)[0].calls[0]
    busy = CallError("busy", transient=True, applied=False)
    cmds = host.complete(10.0, "a/create", error=busy)
    assert kinds(cmds) == ["retry"] and only(cmds, Record)[0].events[0].data["retry_in"] == 1.0
    assert only(cmds, Wait) == [Wait(11.0)] and not dispatched(cmds)
    assert not dispatched(host.step(Tick(10.9)))
    cmds = host.step(Tick(11.0))
    again = only(cmds, Dispatch)[0].calls[0]
    assert (again.attempt, again.key, again.observe_first) == (2, first.key, False)
    cmds = host.complete(12.0, "a/create", error=busy)
    assert only(cmds, Wait) == [Wait(14.0)]   # 1 s, then 2 s
    host.step(Tick(14.0))
    cmds = host.complete(15.0, "a/create", error=busy)
    failed = only(cmds, Record)[0].events[0]
    assert failed.kind == "failed" and failed.data["error"] == "busy (after 3 attempts)"
    assert only(cmds, Observe) == [Observe([Concern("a", ["a/create"], "c")])]



def test_the_backoff_stays_at_its_longest_however_many_attempts():
    """A float power overflowed past the longest wait (attempt 1,025 of coefficient 2, the third of
    1e200): the run crashed there, and at every resume (a sweep of clocks and time's)."""
    steady = RetryPolicy(initial_interval=1.0, coefficient=2.0, max_interval=60.0, attempts=2000)
    assert [steady.delay(n) for n in (1, 2, 6, 7, 1025, 10**9)] == [1.0, 2.0, 32.0, 60.0, 60.0, 60.0]
    steep = RetryPolicy(initial_interval=0.5, coefficient=1e200, max_interval=30.0, attempts=5)
    assert [steep.delay(n) for n in (1, 2, 3, 4)] == [0.5, 30.0, 30.0, 30.0]
    assert RetryPolicy(initial_interval=0.0, coefficient=1e200, max_interval=0.0).delay(5000) == 0.0
    assert RetryPolicy(initial_interval=0.0, coefficient=3.0, max_interval=9.0).delay(5000) == 0.0
    assert RetryPolicy(initial_interval=5.0, coefficient=1.0, max_interval=9.0).delay(5000) == 5.0
    assert RetryPolicy(initial_interval=20.0, coefficient=2.0, max_interval=9.0).delay(1) == 9.0
    tiny = RetryPolicy(initial_interval=1e-320, coefficient=2.0, max_interval=60.0, attempts=2000)   # (a review's)
    assert tiny.delay(1) == 1e-320 and 0 < tiny.delay(1060) < 60.0 and tiny.delay(1025) < tiny.delay(1060)
    assert tiny.delay(1100) == tiny.delay(10**9) == 60.0

# --- in doubt -------------------------------------------------------------------------


def test_a_call_without_an_answer_is_in_doubt_and_observed_before_it_is_sent_again():
    plan = plan_of({"a/create": ("c", 1)})
    host, cmds = begin(plan, spec_of(plan, timeout=5.0))
    key = only(cmds, Dispatch)[0].calls[0].key
    assert only(cmds, Wait) == [Wait(5.0)]
    cmds = host.step(Tick(5.5))
    assert only(cmds, Abandon) and kinds(cmds) == ["retry"]
    retry = only(cmds, Record)[0].events[0]
    assert retry.data["code"] == "timeout" and retry.data["in_doubt"] is True
    cmds = host.step(Tick(6.5))
    call = only(cmds, Dispatch)[0].calls[0]
    assert (call.observe_first, call.key, call.attempt) == (True, key, 2)
    # The late answer of the call given up on is ignored.
    assert not kinds(host.core.step(Completed([Outcome(1, "a/create", outputs={})], 6.6)))


def test_in_doubt_carries_into_the_next_plan_under_the_key_it_was_sent_with():
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)})
    host, cmds = begin(plan, spec_of(plan, timeout=5.0))
    keys = {c.op: c.key for c in only(cmds, Dispatch)[0].calls}
    cmds = host.complete(1.0, "b/create", error=CallError("quota", scope="target", applied=False))
    assert not dispatched(cmds) and only(cmds, Wait)       # drain: a is still in flight
    cmds = host.step(Tick(5.5))                            # a: no answer
    observe = only(cmds, Observe)[0]
    assert observe.concerns == [Concern("b", ["b/create"], "c"), Concern("a", ["a/create"], "c")]
    cmds = host.step(Observed([Found("b", state="absent"), Found("a")], 6.0))   # a: cannot tell
    assert kinds(cmds) == ["observed", "learnt"]
    learnt = only(cmds, Record)[0].events[-1]
    assert learnt.data["facts"] == [["failed", "b", "create"], ["refused", "r1"]]
    replan = only(cmds, Replan)[0]
    assert (replan.failed, replan.refused, replan.mode) == ([("b", "create")], ["r1"], "forward")
    plan2 = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)}, digest="d2")
    cmds = host.step(Planned(plan2, spec_of(plan2), 0.1, {}, 7.0))
    assert kinds(cmds) == ["replan"] and only(cmds, Record)[0].events[0].data["number"] == 2
    calls = {c.op: c for c in only(cmds, Dispatch)[0].calls}
    assert calls["a/create"].observe_first and calls["a/create"].key == keys["a/create"]
    assert not calls["b/create"].observe_first and calls["b/create"].key == "ordo:j:1:2:b/create"


def test_an_observation_that_tells_settles_the_doubt():
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan, spec_of(plan, timeout=5.0))
    host.step(Tick(5.5))
    host.step(Tick(6.5))                      # resent, observe first
    cmds = host.complete(7.0, "a/create", error=CallError("refused", applied=None))
    cmds = host.step(Observed([Found("a", state="active", target="r1")], 8.0))
    observed = only(cmds, Record)[0].events[0]
    assert observed.data == {"resource": "a", "state": "active", "target": "r1", "settled": ["a/create"]}
    assert not host.core.state.in_doubt


# --- permanent failure, replan, fallout -----------------------------------------------


def test_permanent_failure_stops_dispatch_observes_then_replans():
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)}, edges=(("a/create", "b/create"),),
                   placements={"a": "r1"})
    host, _ = begin(plan)
    cmds = host.complete(1.0, "a/create", error=CallError("refused", scope="target", applied=False))
    assert kinds(cmds) == ["failed"] and not dispatched(cmds)
    assert only(cmds, Observe) == [Observe([Concern("a", ["a/create"], "c")])]
    cmds = host.step(Observed([Found("a", state="absent")], 2.0))
    replan = only(cmds, Replan)[0]
    assert replan.reason == "a/create failed: refused" and replan.placements == {"a": "r1"}
    plan2 = plan_of({"a/create": ("c", 1)}, placements={"a": "r2"}, digest="d2")
    cmds = host.step(Planned(plan2, spec_of(plan2), 0.2, {}, 3.0))
    assert dispatched(cmds) == ["a/create"]
    assert host.core.state.replans == 1 and host.core.state.refused == {"r1"}
    assert host.complete(4.0, "a/create")[-1] == End("complete")


@pytest.mark.parametrize(("on_failure", "max_replans", "end"), [
    ("replan", 0, End("fallout", "gave up after 0 re-plan(s): a/create failed: no")),
    ("stop", 3, End("failed", "a/create failed: no")),
])
def test_after_the_observation_the_run_ends_as_the_options_say(on_failure, max_replans, end):
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan, spec_of(plan, max_replans=max_replans), on_failure=on_failure)
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    cmds = host.step(Observed([Found("a", state="absent")], 2.0))
    assert kinds(cmds) == ["observed", "learnt"] and cmds[-1] == end


def test_rollback_plans_toward_the_snapshot():
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan, on_failure="rollback")
    host.core.state.snapshot = {"a": {"state": "absent"}}
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    replan = only(host.step(Observed([], 2.0)), Replan)[0]
    assert replan.mode == "rollback" and replan.snapshot == {"a": {"state": "absent"}}
    plan2 = plan_of({"a/create": ("c", 1)}, digest="d2")
    host.step(Planned(plan2, spec_of(plan2), 0.1, {}, 3.0))
    assert host.core.state.mode == "rollback"
    assert host.complete(4.0, "a/create")[-1] == End("rolled_back")


def test_no_plan_is_a_fallout_with_the_explanation():
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan)
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    host.step(Observed([], 2.0))
    cmds = host.step(NoPlan("no_plan", {"summary": "nowhere to go"}, 0.3, 3.0))
    assert kinds(cmds) == ["no-plan"]
    assert only(cmds, Record)[0].events[0].data["explanation"] == {"summary": "nowhere to go"}
    assert cmds[-1] == End("fallout", "no plan after failure: a/create failed: no")


# --- guards ----------------------------------------------------------------------------


def test_guards_are_asked_before_dispatch_and_a_wait_is_asked_again():
    plan = plan_of({"a/create": ("c", 2), "b/create": ("c", 1)})
    host, cmds = begin(plan, spec_of(plan, guarded=True))
    assert only(cmds, Admit) == [Admit(["a/create", "b/create"])] and not dispatched(cmds)
    hold = Denial(op="a/create", guard="g", data={"guard": "g"}, reason="busy", on_deny="wait", retry_after=4.0)
    cmds = host.step(Admitted(["b/create"], [hold], 1.0))
    assert kinds(cmds) == ["guard-denied"] and dispatched(cmds) == ["b/create"]
    assert only(cmds, Wait) == [Wait(5.0)]
    cmds = host.step(Tick(5.0))
    assert only(cmds, Admit) == [Admit(["a/create"])]
    cmds = host.step(Admitted([], [hold], 5.0))
    assert not kinds(cmds)                     # journaled once per (operation, guard)
    fail = Denial(op="a/create", guard="h", data={"guard": "h"}, reason="no", on_deny="replan",
                  retry_after=0.0, about_targets=True, target="r9")
    host.step(Tick(9.0))
    cmds = host.step(Admitted([], [fail], 9.0))
    assert kinds(cmds) == ["guard-denied", "failed"]
    assert host.core.state.failures[0].target == "r9" and host.core.state.failures[0].scope == "target"


# --- stop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["aborted", "interrupted"])
def test_stop_drains_the_calls_in_flight_and_dispatches_nothing_new(reason):
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "c/create": ("c", 1)})
    host, cmds = begin(plan, spec_of(plan, limit=2))
    assert len(dispatched(cmds)) == 2
    cmds = host.step(Stop(reason, 1.0))
    assert not dispatched(cmds) and only(cmds, Wait)
    first, second = sorted(host.in_flight)
    cmds = host.complete(2.0, first)
    assert not dispatched(cmds) and only(cmds, Wait)
    cmds = host.complete(3.0, second)
    assert cmds[-1] == End(reason) and len(host.core.state.done) == 2


def test_a_call_that_fails_for_now_while_the_run_stops_is_sent_again_by_its_resume():
    """A server whose drain ran out closes its controllers: the calls cut short failed for now, and each was
    journaled "again in 1.0s" just before the run ended interrupted (an operator's first day). Nothing more is
    sent by a stopping run: the event says its resume sends it, and the run ends once nothing is in flight."""
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)})
    host, cmds = begin(plan, spec_of(plan, limit=2))
    host.step(Stop("interrupted", 1.0))
    cmds = host.complete(2.0, "a/create", error=CallError("controller closed during the call", transient=True,
                                                          applied=False))
    retried = only(cmds, Record)[0].events[0]
    assert retried.kind == "retry" and retried.data["on_resume"] is True and "retry_in" not in retried.data
    # its retry's timer as before 4a7cee4, which dropped it: a workflow's commands on replay (a review's)
    assert not dispatched(cmds) and only(cmds, Wait) == [Wait(3.0)]
    assert host.complete(3.0, "b/create")[-1] == End("interrupted")
    # read back, it is the attempt a resume counts from
    assert replayed(host.journal).in_doubt == host.core.state.in_doubt
    # an abort: never sent again (it said "sent again when the run is resumed" of a run none resumes: a review's)
    host, cmds = begin(plan, spec_of(plan, limit=2))
    host.step(Stop("aborted", 1.0))
    cmds = host.complete(2.0, "a/create", error=CallError("closed", transient=True, applied=False))
    assert only(cmds, Record)[0].events[0].data["on_resume"] is False
    assert host.complete(3.0, "b/create")[-1] == End("aborted")


@pytest.mark.parametrize(("on_failure", "mode"), [("replan", "forward"), ("rollback", "rollback")])
def test_a_stop_that_answers_a_replan_ends_the_run_and_a_resume_plans_again(on_failure, mode):
    """The host answers a Replan with a Stop when a stop came while the plan waited for a slot or
    was being made: the run ends as asked, and when resumed it plans again, as the options say."""
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)})
    host, _ = begin(plan, on_failure=on_failure)
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    assert only(host.step(Observed([], 2.0)), Replan)[0].mode == mode
    cmds = host.step(Stop("interrupted", 3.0))
    assert kinds(cmds) == ["replan-stopped"] and cmds[-1] == End("interrupted") and host.core.replanning is None
    stopped = only(cmds, Record)[0].events[0].data
    assert stopped["mode"] == mode and stopped["reason"].endswith("a/create failed: no")
    resumed = Host(RunCore(replayed(host.journal), key_prefix="ordo:j:1:", on_failure=on_failure))
    assert _state(resumed.core.state) == {**_state(host.core.state), "ended": "interrupted"}
    assert only(resumed.step(Resumed("interrupted", 4.0)), Replan) == []
    replan = only(resumed.step(Continue(spec_of(plan), False, 5.0)), Replan)[0]
    assert replan.mode == mode and not dispatched([replan])


def test_a_stop_carried_into_the_next_execution_dispatches_nothing():
    """A Temporal workflow hands on its history (continue-as-new) with a stop it heard: the next execution
    starts its core from the journal with Continue. The stop came only as a later input, after the core had
    dispatched a new batch (an abort, then five calls sent: the sweep of 6 December)."""
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "d/create": ("c", 1)})
    host, _ = begin(plan, spec_of(plan, limit=1))
    host.complete(1.0, "a/create")
    handed_on = Host(RunCore(replayed(host.journal), key_prefix="ordo:j:1:"))
    cmds = handed_on.step(Continue(spec_of(plan, limit=1), False, 2.0, stop="aborted"))
    assert not dispatched(cmds) and cmds[-1] == End("aborted")
    going_on = Host(RunCore(replayed(host.journal), key_prefix="ordo:j:1:"))
    assert dispatched(going_on.step(Continue(spec_of(plan, limit=1), False, 2.0)))


def test_a_rollback_asked_for_and_stopped_before_its_plan_is_still_a_rollback_when_resumed():
    """`ordo resume --rollback` stopped while it plans: a plain resume then rolls back (the journal says so)."""
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan)
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    host.step(Observed([], 2.0))
    assert host.step(NoPlan("no_plan", None, 0.1, 2.5))[-1].status == "fallout"
    host.core = RunCore(replayed(host.journal), key_prefix="ordo:j:1:")   # `ordo resume --rollback`
    assert only(host.step(Resumed("fallout", 3.0, rollback=True)), Replan)[0].mode == "rollback"
    assert host.step(Stop("interrupted", 3.5))[-1] == End("interrupted")
    host.core = RunCore(replayed(host.journal), key_prefix="ordo:j:1:")   # then a plain `ordo resume`
    assert only(host.step(Resumed("interrupted", 4.0)), Replan) == []
    assert only(host.step(Continue(spec_of(plan), False, 5.0)), Replan)[0].mode == "rollback"


# --- the state: the same from the journal as live --------------------------------------------


def _state(rs: RunState) -> dict[str, Any]:
    out = {f.name: getattr(rs, f.name) for f in fields(rs)}
    out["plan"] = rs.plan.to_json() if rs.plan else None
    return out


def replayed(journal: list[Event]) -> RunState:
    rs = RunState(run=1)
    for ev in journal:
        rs.apply(Event(ev.kind, op=ev.op, key=ev.key, data=ev.data, seq=ev.seq, run=ev.run))  # plan from JSON
    return rs


def test_the_state_read_back_from_the_journal_is_the_live_state_at_every_step():
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1), "d/create": ("c", 1)},
                   edges=(("a/create", "d/create"),))
    host, _ = begin(plan, spec_of(plan, timeout=5.0, guarded=True))
    checks = 0

    def check() -> None:
        nonlocal checks
        assert _state(replayed(host.journal)) == _state(host.core.state)
        checks += 1

    host.step(Admitted(["a/create", "b/create"], [Denial(op="d/create", guard="g", data={"guard": "g"},
                                                          reason="x", on_deny="wait", retry_after=1.0)], 0.0))
    check()
    host.complete(1.0, "a/create")
    check()
    host.complete(1.5, "b/create", error=CallError("gone", scope="target", applied=None))   # failed, in doubt
    check()
    host.step(Observed([Found("b", state="absent", target=None)], 2.0))
    check()
    plan2 = plan_of({"b/create": ("c", 1), "d/create": ("c", 1)}, digest="d2")
    cmds = host.step(Planned(plan2, spec_of(plan2, timeout=5.0, guarded=True), 0.1, {"b": {"state": "absent"}}, 3.0))
    assert only(cmds, Admit)
    host.step(Admitted(only(cmds, Admit)[0].ops, [], 3.0))
    check()
    host.step(Tick(9.0))                       # both late: in doubt, retried
    check()
    host.step(Tick(10.0))
    host.step(Admitted(["b/create", "d/create"], [], 10.0))
    host.complete(11.0, "b/create", "d/create")
    check()
    assert host.core.state.ended == "complete" and host.core.state.snapshot == {"b": {"state": "absent"}}
    assert checks == 7


def test_the_core_imports_no_clock_thread_file_database_random_or_planner():
    forbidden = {"time", "threading", "random", "sqlite3", "os", "queue", "pathlib", "io", "subprocess", "clingo",
                 "socket", "datetime", "uuid"}
    for path in sorted((ROOT / "executor" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & forbidden, f"{path.name} imports {names}"
    code = ("import sys, executor.core; "
            "print(sorted(m for m in ('sqlite3', 'clingo', 'pyDatalog', 'executor.journal', 'executor.engine',"
            " 'planner.core') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_through_the_local_host_the_state_read_back_equals_the_live_one(vfw_copy):
    """A real run (a region refuses, one answer is lost: in doubt, a failure, an observation, a re-plan)
    through Executor and its journal: the state _rebuild reads back is the one the run ended with."""
    from domain.project import load_project
    from executor.engine import ApplyOptions, Executor
    from executor.journal import Journal, default_path
    from planner.core import make_plan
    from tests.test_apply import loader_for

    simulation = {"seed": 7, "latency": 0, "faults": [
        {"target": "region-two", "operation": "create", "error": "refused"},
        {"resource": "protected-net", "operation": "activate", "error": "lost", "times": 1}]}

    project = load_project(vfw_copy)
    outcome = make_plan(project)
    path = default_path(vfw_copy)
    with Journal(path) as jr:
        executor = Executor(jr, loader_for(project, path), options=ApplyOptions(simulation=simulation))
        try:
            result = executor.apply(project, outcome.plan)
        finally:
            executor.close()
        assert result.status == "complete" and result.summary["replans"] >= 1, result
        evs = jr.events(result.run)
        assert any(ev.kind == "retry" and ev.data["in_doubt"] for ev in evs)  # the lost answer
        assert any(ev.kind == "learnt" and ev.data["facts"] for ev in evs)
        live = executor.state
        assert live is not None and live.ended == "complete"
        assert _state(Executor(jr, loader_for(project, path))._rebuild(result.run)) == _state(live)


@pytest.mark.parametrize("cut", ["stopped", "crashed"])
def test_a_resumes_replan_cut_short_is_made_in_its_own_mode(cut):
    """on_failure rollback, the way back has no plan: the run falls out. Its resume plans forward; when a
    stop (or a crash) cuts that re-plan short, the next resume plans forward too, not back."""
    plan = plan_of({"a/create": ("c", 1)})
    host, _ = begin(plan, on_failure="rollback")
    host.complete(1.0, "a/create", error=CallError("no", applied=False))
    assert only(host.step(Observed([], 2.0)), Replan)[0].mode == "rollback"
    assert host.step(NoPlan("no_plan", None, 0.1, 2.5))[-1].status == "fallout"
    host.core = RunCore(replayed(host.journal), key_prefix="ordo:j:1:", on_failure="rollback")
    assert only(host.step(Resumed("fallout", 3.0)), Replan)[0].mode == "forward"
    if cut == "stopped":
        assert host.step(Stop("interrupted", 3.5))[-1] == End("interrupted")
    for inputs_changed in (False, True):
        core = RunCore(replayed(host.journal), key_prefix="ordo:j:1:", on_failure="rollback")
        assert only(core.step(Resumed("interrupted" if cut == "stopped" else "crashed", 4.0)), Replan) == []
        assert only(core.step(Continue(spec_of(plan), inputs_changed, 5.0)), Replan)[0].mode == "forward"


def test_a_failure_not_yet_learnt_is_learnt_before_a_resume_plans_edited_inputs() -> None:
    """A run crashed after a target refused an operation, before the failure was observed and learnt.
    Resumed with its request edited, it re-planned at once: without the refused target (the new plan
    could go straight back to it) and without observing the operation still in doubt (the executor's
    review of 6 December). It observes and learns first, then re-plans."""
    plan = plan_of({"a/create": ("c", 1), "b/create": ("c", 1)}, placements={"a": "r1", "b": "r1"})
    host, _ = begin(plan, spec_of(plan, max_replans=10))
    host.complete(1.0, "a/create", error=CallError("region full", scope="target", applied=False))
    rs = RunState(run=1)
    for ev in host.journal:   # the crash: rebuilt from what the journal holds (b still in flight)
        rs.apply(ev)
    rs.replans = 3   # (the project allows 10: the engine gives the old plan's spec, with the project's limits)
    core = RunCore(rs, key_prefix="ordo:j:1:")
    core.step(Resumed("crashed", now=2.0))
    [observe] = only(core.step(Continue(spec_of(plan, max_replans=10), True, now=2.0)), Observe)
    assert [(c.resource, c.ops) for c in observe.concerns] == [("a", ["a/create"]), ("b", ["b/create"])]
    cmds = core.step(Observed([Found("a", state="absent"), Found("b", state="absent")], now=3.0))
    [replan] = only(cmds, Replan)
    assert replan.refused == ["r1"] and replan.failed == [("a", "create")], replan
