"""The run core's messages as plain JSON values: what crosses Temporal's payloads.

Used on both sides (workflow and activities), so it imports nothing that does I/O.
A run is named by a *reference* (``Ref``: where its journal and project are, its
number, its options), never by its plan: the plan lives in the journal.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from domain.model import RetryPolicy
from executor.core import CallError, Denial, Event, Failure, Found, OpSpec, Outcome, PlanSpec, RunState
from planner.plan import Edge, Group, Plan, PlannedOperation

#: A run's reference: journal, project files, run number, options (all JSON values).
Ref = dict[str, Any]


def event_out(ev: Event) -> dict[str, Any]:
    return asdict(ev)


def event_in(data: dict[str, Any]) -> Event:
    return Event(**data)


def outcome_out(outcome: Outcome) -> dict[str, Any]:
    return asdict(outcome)


def outcome_in(data: dict[str, Any]) -> Outcome:
    error = data.get("error")
    return Outcome(**{**data, "error": CallError(**error) if error else None})


def denial_in(data: dict[str, Any]) -> Denial:
    return Denial(**data)


def found_in(data: dict[str, Any]) -> Found:
    return Found(**data)


def queue_for(controller: str, prefix: str) -> str:
    """The task queue of a controller's calls: workers next to that controller listen on it."""
    return f"{prefix}-{controller}"


# --- a plan and a run's state, as a workflow gets them ----------------------------------
# The plan's JSON (about 530 bytes per operation) stays in the journal: a workflow gets an
# outline of it (what the run core reads: operations, edges, groups, placements, and each
# operation's spec), in pages far below Temporal's 2 MiB payload limit.

#: Operations, and edges, per page of an outline.
PAGE_OPS = 5000
PAGE_EDGES = 20000
#: Calls a workflow has in flight at most (Temporal allows 2,000 pending activities).
MAX_IN_FLIGHT = 1000


class Outline(Plan):
    """A plan as a workflow holds it: what the run core reads. Its JSON is in the journal, not here."""

    def to_json(self) -> str:
        return ""


def _spec_table(spec: PlanSpec) -> list[dict[str, Any]]:
    return sorted({_key(asdict(o)): asdict(o) for o in spec.ops.values()}.values(), key=_key)


def _key(data: dict[str, Any]) -> str:
    return repr(sorted((k, sorted(v.items()) if isinstance(v, dict) else v) for k, v in data.items()))


def outline_head(plan: Plan, spec: PlanSpec) -> dict[str, Any]:
    """The outline's first part: sizes, placements, groups, limits and the distinct operation specs."""
    index = {op.id: i for i, op in enumerate(plan.operations)}
    return {"digest": plan.digest, "status": plan.status, "placements": dict(plan.placements),
            "operations": len(plan.operations), "edges": len(plan.edges),
            "groups": [[g.name, g.limit, [index[o] for o in g.operations]] for g in plan.groups],
            "specs": _spec_table(spec), "limit": min(spec.limit, MAX_IN_FLIGHT),
            "controller_limits": dict(spec.controller_limits), "guarded": spec.guarded,
            "max_replans": spec.max_replans}


def outline_page(plan: Plan, spec: PlanSpec, part: str, start: int) -> list[list[Any]]:
    """Operations ``[id, controller, duration, from, to, spec]`` (spec: index in the head's table, -1: none)
    or edges ``[before, after]`` (operation indices), from ``start``."""
    if part == "edges":
        index = {op.id: i for i, op in enumerate(plan.operations)}
        return [[index[e.before], index[e.after]] for e in plan.edges[start:start + PAGE_EDGES]]
    table = {_key(d): i for i, d in enumerate(_spec_table(spec))}
    return [[op.id, op.controller, op.duration, op.from_state, op.to_state,
             table[_key(asdict(spec.ops[op.id]))] if op.id in spec.ops else -1]
            for op in plan.operations[start:start + PAGE_OPS]]


def outline_in(head: dict[str, Any], ops: list[list[Any]], edges: list[list[int]]) -> tuple[Outline, PlanSpec]:
    """The outline and the plan's spec, from the head and every page (in order)."""
    specs = [OpSpec(timeout=d["timeout"], retry=RetryPolicy(**d["retry"])) for d in head["specs"]]
    operations = tuple(PlannedOperation.model_construct(
        id=oid, resource=oid.rpartition("/")[0], type="", operation=oid.rpartition("/")[2], from_state=before,
        to_state=after, controller=ctl, duration=duration, wave=1, reason="")
        for oid, ctl, duration, before, after, _ in ops)
    plan = Outline.model_construct(
        status=head["status"], request="", digest=head["digest"], inputs=(), resource_changes=(),
        operations=operations, edges=tuple(Edge.model_construct(before=operations[a].id, after=operations[b].id,
                                                               rules=()) for a, b in edges),
        waves=(), placements=dict(head["placements"]), cost=(), makespan=0.0, critical_path=0.0, concurrency=1,
        groups=tuple(Group.model_construct(name=name, limit=limit, operations=tuple(operations[i].id for i in idx))
                     for name, limit, idx in head["groups"]),
        violations=(), ground_atoms=0, ground_rules=0)
    spec = PlanSpec(limit=head["limit"], ops={row[0]: specs[row[5]] for row in ops if row[5] >= 0},
                    controller_limits=dict(head["controller_limits"]), guarded=head["guarded"],
                    max_replans=head["max_replans"])
    return plan, spec


def state_out(rs: RunState) -> dict[str, Any]:
    """What a workflow continued as new needs of the run's state (read from the journal by a worker):
    done operations as indices into the plan, the rest of :class:`RunState` for operations not done.
    Outputs, resources touched and the snapshot stay in the journal (activities read them there)."""
    ops = [op.id for op in rs.plan.operations] if rs.plan else []
    open_ = [oid for oid in ops if oid not in rs.done]
    return {"seq": rs.seq, "plan_no": rs.plan_no, "done": [i for i, oid in enumerate(ops) if oid in rs.done],
            "attempts": {o: rs.attempts[o] for o in open_ if o in rs.attempts},
            "in_doubt": sorted(rs.in_doubt), "keys": {o: rs.keys[o] for o in sorted(rs.in_doubt) if o in rs.keys},
            "targets": {o: rs.targets[o] for o in open_ if o in rs.targets}, "pending_replan": rs.pending_replan,
            "failed": sorted(rs.failed), "refused": sorted(rs.refused), "failures": [asdict(f) for f in rs.failures],
            "replans": rs.replans, "mode": rs.mode, "denied": sorted(rs.denied), "ended": rs.ended,
            "abort_seq": rs.abort_seq}


def state_in(run: int, data: dict[str, Any], plan: Plan | None) -> RunState:
    ops = plan.operations if plan is not None else ()
    return RunState(run=run, seq=data["seq"], plan=plan, plan_no=data["plan_no"],
                    done={ops[i].id for i in data["done"]}, attempts=dict(data["attempts"]),
                    in_doubt=set(data["in_doubt"]), keys=dict(data["keys"]), targets=dict(data["targets"]),
                    pending_replan=data["pending_replan"], failed={tuple(f) for f in data["failed"]},
                    refused=set(data["refused"]), failures=[Failure(**f) for f in data["failures"]],
                    replans=data["replans"], mode=data["mode"], denied={tuple(d) for d in data["denied"]},
                    ended=data["ended"], abort_seq=data["abort_seq"])
