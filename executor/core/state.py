"""What one run knows: built by applying its journal events, live and on resume alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from executor.core.messages import Event
from planner.plan import Plan


@dataclass
class Failure:
    op: str
    resource: str
    operation: str
    error: str
    scope: str
    target: str | None
    in_doubt: bool


@dataclass
class RunState:
    """The run's state. Changed only by :meth:`apply` (one journal event at a time): the core applies
    the events it makes as it makes them, the host the intents it writes and, on resume, the journal."""

    run: int
    seq: int = 0                 # the last stored event applied
    plan: Plan | None = None
    plan_no: int = 0
    done: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)   # every operation completed in the run, whichever plan had it
    attempts: dict[str, int] = field(default_factory=dict)
    in_doubt: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)        # idempotency key of each op's last intent
    targets: dict[str, str | None] = field(default_factory=dict)  # target of each op's last intent
    pending_replan: bool = False   # failures were observed and learnt, the new plan not yet made
    forgot: bool = False           # the last resume forgot what the run had learnt (its cause taken as fixed)
    pending_mode: str | None = None   # the mode of the re-plan owed: a resume's, or one a stop cut short
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: set[tuple[str, str]] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)   # since the last plan, not yet learnt from
    replans: int = 0             # since the run started, or was resumed after it fell out (what max_replans bounds)
    replanned: int = 0           # since the run started (what its summary counts)
    snapshot: dict[str, dict[str, Any]] = field(default_factory=dict)  # resource -> state before the run
    mode: str = "forward"        # forward | rollback
    touched: set[str] = field(default_factory=set)
    denied: set[tuple[str, str]] = field(default_factory=set)  # (op, guard) journaled since the op last ran
    # Declared waits (policies/README.md, Waiting): each waiting operation's `waiting` event data (with
    # its deadline on the host's clock), the outputs of its call once sent, the event that arrived for it.
    waits: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrived: dict[str, dict[str, Any]] = field(default_factory=dict)
    ended: str | None = None
    abort_seq: int = 0           # the last abort-requested event (a resumed run is not aborted by it)

    def apply(self, ev: Event, plan: Plan | None = None) -> None:
        """One journal event into the state (``plan``: the plan of a plan/replan event, when at hand)."""
        handler = _APPLY.get(ev.kind)
        if handler is not None:
            handler(self, ev, plan)
        if ev.seq:  # an event another process wrote (event-received) may be applied after later ones
            self.seq = max(self.seq, ev.seq)

    def failure_text(self) -> str:
        if not self.failures:
            return "an operation failed"
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return f"{first.op} failed: {first.error}{more}"


def _run_started(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.snapshot = dict(ev.data.get("snapshot", {}))
    # what earlier runs left in doubt, taken over: observed before it is sent again, under its key
    inherited = ev.data.get("in_doubt") or {}
    rs.in_doubt.update(inherited)
    rs.keys.update({op: key for op, key in inherited.items() if key})


def _plan(rs: RunState, ev: Event, plan: Plan | None) -> None:
    data = ev.data
    rs.plan = plan if plan is not None else Plan.from_json(data["plan"])
    rs.plan_no = data["number"]
    rs.done, rs.attempts, rs.failures = set(), {}, []  # in_doubt carries over: observed before a resend
    rs.pending_replan, rs.pending_mode = False, None
    if ev.kind == "replan":
        rs.replans += 1
        rs.replanned += 1
        rs.mode = data.get("mode", rs.mode)
        rs.snapshot.update(data.get("snapshot", {}))


def _intent(rs: RunState, ev: Event, plan: Plan | None) -> None:
    op = ev.op
    rs.attempts[op] = ev.data["attempt"]
    rs.in_doubt.add(op)  # until its result is written
    if ev.key:
        rs.keys[op] = ev.key
    rs.targets[op] = ev.data.get("target")
    if rs.denied:
        rs.denied.difference_update([k for k in rs.denied if k[0] == op])


def _result(rs: RunState, ev: Event, plan: Plan | None) -> None:
    resource = ev.op.rpartition("/")[0]
    rs.done.add(ev.op)
    rs.ran.add(ev.op)
    # No earlier attempt on the resource is in doubt any more (its key names a settled
    # attempt; the operation, if run again, gets a new key).
    rs.in_doubt.difference_update([oid for oid in rs.in_doubt if oid.rpartition("/")[0] == resource])
    outputs = ev.data.get("outputs")
    if outputs:
        rs.outputs.setdefault(resource, {}).update(outputs)
    rs.touched.add(resource)
    _waited(rs, ev.op)


def _waited(rs: RunState, op: str) -> None:
    """The operation completed or failed: its wait is over (a later attempt waits anew)."""
    for table in (rs.waits, rs.sent, rs.arrived):
        table.pop(op, None)


def _waiting(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.waits[ev.op] = dict(ev.data)


def _sent(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.sent[ev.op] = dict(ev.data.get("outputs") or {})
    rs.in_doubt.discard(ev.op)


def _event_received(rs: RunState, ev: Event, plan: Plan | None) -> None:
    if ev.op in rs.waits:
        rs.arrived.setdefault(ev.op, dict(ev.data))


def _observed(rs: RunState, ev: Event, plan: Plan | None) -> None:
    settled = ev.data.get("settled", ())
    rs.in_doubt.difference_update(settled)
    # a call in doubt found applied (its resource in the state the call leads to, and its controller, asked by
    # its key, not saying it was not) is this run's change: the resource it created was counted "found there
    # already" (a review's); one someone else made, "created" (a review of that)
    ops = {op.id: op for op in rs.plan.operations if op.id in settled} if settled and rs.plan is not None else {}
    if ev.data.get("applied") is not False and any(op.to_state == ev.data.get("state") for op in ops.values()):
        rs.touched.add(ev.data["resource"])


def _retry_or_failed(rs: RunState, ev: Event, plan: Plan | None) -> None:
    data = ev.data
    if not data.get("in_doubt"):
        rs.in_doubt.discard(ev.op)
    if ev.kind == "failed":
        resource, _, operation = ev.op.rpartition("/")
        target = data["target"] if "target" in data else rs.targets.get(ev.op)  # a guard's names its own
        rs.failures.append(Failure(op=ev.op, resource=resource, operation=operation, error=data.get("error", ""),
                                   scope=data.get("scope", "resource"), target=target,
                                   in_doubt=bool(data.get("in_doubt"))))
        _waited(rs, ev.op)


def _learnt(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.failures = []
    rs.pending_replan = True
    for fact in ev.data.get("facts", []):
        if fact[0] == "failed":
            rs.failed.add((fact[1], fact[2]))
        elif fact[0] == "refused":
            rs.refused.add(fact[1])


def _no_plan(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.failures = []


def _guard_denied(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.denied.add((ev.op, ev.data.get("guard", "")))


def _resumed(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.forgot = ev.data.get("from") == "fallout" or bool(ev.data.get("forget"))
    if rs.forgot:
        # The cause was fixed (that is why one resumes; a run stopped on a failure, --on-failure stop, tells
        # the operator to fix it first, and its resume says so, ``forget``, unless it re-plans around it):
        # what the run learnt (failed operations, refused targets) no longer holds. (Kept after a stop, it tore
        # down what it had placed on a target that refused and placed it on a dearer one: an operator's sweep.)
        rs.failures = []
        rs.failed, rs.refused = set(), set()
    if ev.data.get("from") == "fallout":
        rs.replans = 0
    if ev.data.get("rollback") or ev.data.get("from") == "fallout":
        # the core plans again at once (RunCore._resumed): owed, in that mode, until a plan is made
        rs.pending_replan, rs.pending_mode = True, "rollback" if ev.data.get("rollback") else rs.mode


def _replan_stopped(rs: RunState, ev: Event, plan: Plan | None) -> None:
    """A stop came while the core waited for a re-plan: it is still owed, in the mode it was asked in."""
    rs.pending_replan, rs.pending_mode = True, ev.data.get("mode")


def _run_ended(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.ended = ev.data.get("status")


def _abort_requested(rs: RunState, ev: Event, plan: Plan | None) -> None:
    rs.abort_seq = ev.seq


_APPLY = {"run-started": _run_started, "plan": _plan, "replan": _plan, "intent": _intent, "result": _result,
          "observed": _observed, "retry": _retry_or_failed, "failed": _retry_or_failed, "learnt": _learnt,
          "no-plan": _no_plan, "guard-denied": _guard_denied, "resumed": _resumed, "run-ended": _run_ended,
          "abort-requested": _abort_requested, "waiting": _waiting, "sent": _sent,
          "event-received": _event_received, "replan-stopped": _replan_stopped}
