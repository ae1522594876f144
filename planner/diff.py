"""The difference between two plans: a baseline and another (a what-if
scenario, or a plan made later).

``diff_plans(base, other)`` compares what the operator cares about: which
operations are added or removed, where resources are placed, the order
(precedence edges between operations both plans have, and waves), what happens to each resource, the policies
violated, the objective's cost per priority, the makespan and the critical
path. Either side may be an ``Outcome`` without a plan (no plan exists, or
the solver timed out); then only the statuses and the explanation are
compared, since listing every operation of the other side as added or
removed says nothing. Every list is sorted: the same plans give the same
``to_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.explain import Explanation
from planner.plan import Plan, PlannedOperation, Status, Violation


@dataclass(frozen=True)
class Side:
    """One side of the comparison, summed up."""

    status: Status
    digest: str = ""
    request: str = ""
    operations: int = 0
    waves: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # create / change / delete / run
    cost: tuple[tuple[int, int], ...] = ()  # (priority, cost)
    makespan: float = 0.0
    critical_path: float = 0.0
    explanation: Explanation | None = None

    @property
    def has_plan(self) -> bool:
        return self.status in ("optimal", "satisfiable")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "has_plan": self.has_plan}
        if self.has_plan:
            out.update(digest=self.digest, request=self.request, operations=self.operations, waves=self.waves,
                       counts=dict(sorted(self.counts.items())),
                       cost=[{"priority": p, "cost": c} for p, c in self.cost],
                       makespan=self.makespan, critical_path=self.critical_path)
        else:
            out["explanation"] = self.explanation.to_dict() if self.explanation is not None else None
        return out


@dataclass(frozen=True)
class OperationRef:
    id: str
    resource: str
    type: str
    operation: str
    from_state: str
    to_state: str
    wave: int

    @classmethod
    def of(cls, op: PlannedOperation) -> OperationRef:
        return cls(op.id, op.resource, op.type, op.operation, op.from_state, op.to_state, op.wave)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "resource": self.resource, "type": self.type, "operation": self.operation,
                "from": self.from_state, "to": self.to_state, "wave": self.wave}


@dataclass(frozen=True)
class PlacementChange:
    resource: str
    before: str | None   # None: not placed in the baseline
    after: str | None    # None: not placed in the other plan

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class EdgeRef:
    before: str
    after: str
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "rules": list(self.rules)}


@dataclass(frozen=True)
class WaveChange:
    operation: str
    before: int
    after: int

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ResourceChangeDiff:
    """A resource whose actions (create, delete, ...) or goal differ; empty
    actions: the plan does nothing to it."""

    resource: str
    actions_before: tuple[str, ...]
    actions_after: tuple[str, ...]
    goal_before: str | None
    goal_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "actions_before": list(self.actions_before),
                "actions_after": list(self.actions_after), "goal_before": self.goal_before,
                "goal_after": self.goal_after}


@dataclass(frozen=True)
class ViolationRef:
    policy: str
    enforcement: str
    location: str
    bindings: tuple[tuple[str, str], ...]
    resources: tuple[str, ...]

    @classmethod
    def of(cls, v: Violation) -> ViolationRef:
        return cls(v.policy, v.enforcement, f"{v.file}:{v.line}", tuple(sorted(v.bindings.items())), v.resources)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "enforcement": self.enforcement, "location": self.location,
                "bindings": dict(self.bindings), "resources": list(self.resources)}


@dataclass(frozen=True)
class PlanDiff:
    base: Side
    other: Side
    operations_added: tuple[OperationRef, ...] = ()
    operations_removed: tuple[OperationRef, ...] = ()
    placements: tuple[PlacementChange, ...] = ()
    edges_added: tuple[EdgeRef, ...] = ()
    edges_removed: tuple[EdgeRef, ...] = ()
    waves: tuple[WaveChange, ...] = ()
    resource_changes: tuple[ResourceChangeDiff, ...] = ()
    violations_added: tuple[ViolationRef, ...] = ()
    violations_removed: tuple[ViolationRef, ...] = ()

    @property
    def comparable(self) -> bool:
        """Both sides have a plan (else only the statuses differ)."""
        return self.base.has_plan and self.other.has_plan

    @property
    def cost(self) -> tuple[tuple[int, int | None, int | None], ...]:
        """(priority, before, after) for every priority of either side, highest first."""
        before, after = dict(self.base.cost), dict(self.other.cost)
        return tuple((p, before.get(p), after.get(p)) for p in sorted(set(before) | set(after), reverse=True))

    @property
    def cost_changed(self) -> bool:
        return self.comparable and any(b != a for _, b, a in self.cost)

    @property
    def order_changed(self) -> bool:
        return bool(self.edges_added or self.edges_removed or self.waves)

    @property
    def empty(self) -> bool:
        """Nothing differs that a person would care about (digests aside)."""
        if self.base.status != self.other.status:
            return False
        if not self.comparable:
            return True
        return not (self.operations_added or self.operations_removed or self.placements or self.order_changed
                    or self.resource_changes or self.violations_added or self.violations_removed
                    or self.cost_changed or self.base.makespan != self.other.makespan
                    or self.base.critical_path != self.other.critical_path)

    def _delta(self, name: str) -> dict[str, Any]:
        """A side's figure, as the cost's: null on a side without a plan, and then no delta."""
        before = getattr(self.base, name) if self.base.has_plan else None
        after = getattr(self.other, name) if self.other.has_plan else None
        delta = after - before if before is not None and after is not None else None
        return {"before": before, "after": after, "delta": delta}

    def to_dict(self) -> dict[str, Any]:
        def items(values: tuple) -> list[dict[str, Any]]:
            return [v.to_dict() for v in values]

        return {
            "base": self.base.to_dict(), "other": self.other.to_dict(),
            "comparable": self.comparable, "empty": self.empty,
            "operations": {"added": items(self.operations_added), "removed": items(self.operations_removed)},
            "placements": items(self.placements),
            "order": {"edges_added": items(self.edges_added), "edges_removed": items(self.edges_removed),
                      "waves": items(self.waves)},
            "resource_changes": items(self.resource_changes),
            "violations": {"added": items(self.violations_added), "removed": items(self.violations_removed)},
            "cost": [{"priority": p, "before": b, "after": a} for p, b, a in self.cost],
            "makespan": self._delta("makespan"),
            "critical_path": self._delta("critical_path"),
        }


def side(result: Any) -> tuple[Side, Plan | None]:
    """A ``Plan``, or anything with ``status``, ``plan`` and ``explanation``
    (``planner.core.Outcome``), summed up."""
    plan = result if isinstance(result, Plan) else getattr(result, "plan", None)
    if plan is None:
        return Side(status=result.status, explanation=getattr(result, "explanation", None)), None
    return Side(status=plan.status, digest=plan.digest, request=plan.request, operations=len(plan.operations),
                waves=len(plan.waves), counts=plan.counts(), cost=tuple((c.priority, c.cost) for c in plan.cost),
                makespan=plan.makespan, critical_path=plan.critical_path), plan


def diff_plans(base: Any, other: Any) -> PlanDiff:
    """What changes from ``base`` to ``other`` (each a ``Plan`` or an ``Outcome``)."""
    base_side, a = side(base)
    other_side, b = side(other)
    if a is None or b is None:
        return PlanDiff(base=base_side, other=other_side)
    ops_a = {op.id: op for op in a.operations}
    ops_b = {op.id: op for op in b.operations}
    added = tuple(OperationRef.of(ops_b[i]) for i in sorted(set(ops_b) - set(ops_a)))
    removed = tuple(OperationRef.of(ops_a[i]) for i in sorted(set(ops_a) - set(ops_b)))
    waves = tuple(WaveChange(i, ops_a[i].wave, ops_b[i].wave)
                  for i in sorted(set(ops_a) & set(ops_b)) if ops_a[i].wave != ops_b[i].wave)
    placements = tuple(PlacementChange(r, a.placements.get(r), b.placements.get(r))
                       for r in sorted(set(a.placements) | set(b.placements))
                       if a.placements.get(r) != b.placements.get(r))
    # Edges to or from an added or removed operation come with it: only the
    # precedences between operations both plans have tell a change of order.
    common = set(ops_a) & set(ops_b)
    edges_a = {(e.before, e.after): e for e in a.edges if e.before in common and e.after in common}
    edges_b = {(e.before, e.after): e for e in b.edges if e.before in common and e.after in common}
    edges_added = tuple(EdgeRef(k[0], k[1], edges_b[k].rules) for k in sorted(set(edges_b) - set(edges_a)))
    edges_removed = tuple(EdgeRef(k[0], k[1], edges_a[k].rules) for k in sorted(set(edges_a) - set(edges_b)))
    changes_a = {c.resource: c for c in a.resource_changes}
    changes_b = {c.resource: c for c in b.resource_changes}
    changes = []
    for res in sorted(set(changes_a) | set(changes_b)):
        ca, cb = changes_a.get(res), changes_b.get(res)
        before = (ca.actions, ca.after) if ca else ((), None)
        after = (cb.actions, cb.after) if cb else ((), None)
        if before != after:
            changes.append(ResourceChangeDiff(res, before[0], after[0], before[1], after[1]))
    viol_a = {ViolationRef.of(v) for v in a.violations}
    viol_b = {ViolationRef.of(v) for v in b.violations}

    def vkey(v: ViolationRef) -> tuple:
        return (v.policy, v.location, v.bindings, v.resources, v.enforcement)

    return PlanDiff(
        base=base_side, other=other_side, operations_added=added, operations_removed=removed,
        placements=placements, edges_added=edges_added, edges_removed=edges_removed, waves=waves,
        resource_changes=tuple(changes),
        violations_added=tuple(sorted(viol_b - viol_a, key=vkey)),
        violations_removed=tuple(sorted(viol_a - viol_b, key=vkey)),
    )
