"""Why a plan is as it is: why an operation is in it, and why it comes after another.

Works on a saved plan: every operation records the reason it is there (the
goal that needs it) and every precedence edge the rules (file:line) that made
it. Given the policy rules (``RuleInfo``), each hop is told with the rule's
comment, in words.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass, field

from domain.errors import OrdoError
from planner.plan import Plan, PlannedOperation
from planner.program import RuleInfo


class UnknownOperation(OrdoError):
    """The plan has no such operation (names close ones)."""


@dataclass(frozen=True)
class Hop:
    before: str
    after: str
    rules: tuple[str, ...]          # file:line
    descriptions: tuple[str, ...]   # the comment above each rule, when known

    def to_dict(self) -> dict:
        return {"before": self.before, "after": self.after, "rules": list(self.rules),
                "descriptions": list(self.descriptions)}


@dataclass
class OperationWhy:
    operation: PlannedOperation
    reason: str                      # the goal that needs it
    path: list[str]                  # the resource's operations in this plan, in lifecycle order
    waits_for: list[Hop] = field(default_factory=list)
    needed_by: list[Hop] = field(default_factory=list)
    after: str | None = None
    chain: list[Hop] | None = None   # from `after` to the operation; None: no chain (independent)

    def to_dict(self) -> dict:
        op = self.operation
        return {
            "operation": op.id, "resource": op.resource, "type": op.type, "from": op.from_state, "to": op.to_state,
            "controller": op.controller, "wave": op.wave, "reason": self.reason, "path": self.path,
            "waits_for": [h.to_dict() for h in self.waits_for], "needed_by": [h.to_dict() for h in self.needed_by],
            "after": self.after, "chain": None if self.chain is None else [h.to_dict() for h in self.chain],
        }


def _lookup(plan: Plan, op_id: str) -> PlannedOperation:
    try:
        return plan.operation(op_id)
    except KeyError:
        ids = [op.id for op in plan.operations]
        close = difflib.get_close_matches(op_id, ids, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "operations are named RESOURCE/OPERATION"
        raise UnknownOperation(f"the plan has no operation '{op_id}' ({hint})") from None


def explain_operation(plan: Plan, op_id: str, after: str | None = None,
                      rules: list[RuleInfo] | None = None) -> OperationWhy:
    op = _lookup(plan, op_id)
    if after is not None:
        _lookup(plan, after)
    described = {r.location: r.comment for r in rules or []}

    def hop(edge_before: str, edge_after: str, locations: tuple[str, ...]) -> Hop:
        return Hop(edge_before, edge_after, locations, tuple(described.get(loc, "") for loc in locations))

    edges = {(e.before, e.after): e.rules for e in plan.edges}
    succ: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
    change = next(c for c in plan.resource_changes if c.resource == op.resource)
    why = OperationWhy(operation=op, reason=op.reason, path=list(change.operations))
    why.waits_for = [hop(a, b, r) for (a, b), r in sorted(edges.items()) if b == op.id]
    why.needed_by = [hop(a, b, r) for (a, b), r in sorted(edges.items()) if a == op.id]
    if after is not None:
        why.after = after
        why.chain = _chain(after, op.id, succ, edges, hop)
    return why


def _chain(start: str, goal: str, succ: dict[str, list[str]], edges: dict, hop) -> list[Hop] | None:
    """The shortest chain of precedences from start to goal (breadth first, stable)."""
    if start == goal:
        return []
    parent: dict[str, str] = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in succ.get(node, ()):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                return [hop(a, b, edges[(a, b)]) for a, b in zip(path, path[1:], strict=False)]
            queue.append(nxt)
    return None
