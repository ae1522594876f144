"""Why a plan is as it is: why an operation is in it, why it comes after
another, and why a resource is placed where it is.

Operations work on a saved plan alone: every operation records the reason it
is there (the goal that needs it) and every precedence edge the rules
(file:line) that made it. Given the policy rules (``RuleInfo``), each hop is
told with the rule's comment, in words.

A placement is explained by planning again with the resource fixed on each
other target, under a time limit: either no plan exists there (the policies
that rule it out, with file:line, from the relaxed solve of
planner/explain.py), or one does, at its cost, with the other resources it
moves. Of the plans of least cost there, the one that moves fewest of the
plan's other placements is taken (planner.facts.keep_placements), so that
the moves shown are those the resource's new place calls for, not another
choice among placements that cost the same. Where planner/slice.py cuts the
model into parts that share no choice, only the resource's part is planned
again, and the rest of the plan keeps its cost.
"""

from __future__ import annotations

import difflib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from domain.errors import OrdoError
from domain.project import Project
from planner.explain import Conflict, explain_no_plan
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
    chain: list[Hop] | None = None   # from `after` to the operation; None: no chain
    #: without that chain, one from the operation to `after` (it comes first); None: neither (independent)
    reverse: list[Hop] | None = None

    def to_dict(self) -> dict:
        op = self.operation
        return {
            "operation": op.id, "resource": op.resource, "type": op.type, "from": op.from_state, "to": op.to_state,
            "controller": op.controller, "wave": op.wave, "reason": self.reason, "path": self.path,
            "waits_for": [h.to_dict() for h in self.waits_for], "needed_by": [h.to_dict() for h in self.needed_by],
            "after": self.after, "chain": None if self.chain is None else [h.to_dict() for h in self.chain],
            "reverse": None if self.reverse is None else [h.to_dict() for h in self.reverse],
        }


def _lookup(plan: Plan, op_id: str) -> PlannedOperation:
    try:
        return plan.operation(op_id)
    except KeyError:
        ids = [op.id for op in plan.operations]
        own = [i for i in ids if i.split("/", 1)[0] == op_id]
        # a resource's name mistyped is nearer to the names than to the operations' ids
        names = sorted(set(plan.placements) | {i.split("/", 1)[0] for i in ids}) if "/" not in op_id else ids
        close = difflib.get_close_matches(op_id, names, n=3)
        hint = (f"'{op_id}' is a resource the plan does not place; its operations: {', '.join(own)}" if own else
                f"did you mean {', '.join(close)}?" if close else
                "operations are named RESOURCE/OPERATION; a placed resource is named alone")
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
        if why.chain is None:   # (asked the wrong way round: it comes first, and `after` waits for it)
            why.reverse = _chain(op.id, after, succ, edges, hop)
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


@dataclass(frozen=True)
class Alternative:
    """Another target for a placed resource, and what planning with it there gives."""

    target: str
    status: str                                   # "plan", "no_plan" or "timeout"
    cost: tuple[tuple[int, int], ...] = ()        # (priority, cost) of the best plan found there
    optimal: bool = False                         # that cost is proven the best with it there
    moves: tuple[tuple[str, str], ...] = ()       # other resources that plan places elsewhere than the plan
    conflicts: tuple[Conflict, ...] = ()          # no plan: the policies that rule it out
    summary: str = ""
    complete: bool = True                         # False: a limit cut it short (not decided, or not explained)

    def to_dict(self) -> dict:
        return {"target": self.target, "status": self.status,
                "cost": [{"priority": p, "cost": c} for p, c in self.cost], "optimal": self.optimal,
                "moves": [{"resource": r, "target": t} for r, t in self.moves],
                "conflicts": [c.to_dict() for c in self.conflicts], "summary": self.summary,
                "complete": self.complete}


@dataclass
class PlacementWhy:
    resource: str
    target: str
    reason: str
    cost: tuple[tuple[int, int], ...]             # the plan's
    alternatives: list[Alternative] = field(default_factory=list)
    inputs_changed: bool = False                  # the project is not as it was when the plan was made

    def to_dict(self) -> dict:
        return {"resource": self.resource, "target": self.target, "reason": self.reason,
                "cost": [{"priority": p, "cost": c} for p, c in self.cost],
                "alternatives": [a.to_dict() for a in self.alternatives], "inputs_changed": self.inputs_changed,
                "complete": self.complete}

    @property
    def complete(self) -> bool:
        """Every other target decided and explained: no limit cut the answer short."""
        return all(alt.complete for alt in self.alternatives)


#: The reason of a placement that only planning it elsewhere explains.
CHOSEN = "chosen by the planner: of the targets every hard policy allows, the one of least cost"
#: The same, of a plan made from other inputs than today's (or edited): what it chose then is not
#: claimed to be the least cost now; the other targets say what today's inputs give.
CHOSEN_THEN = ("where this plan put it, made from other inputs than today's (or edited): not shown to be "
               "the least cost now; the other targets are planned on today's inputs")
#: A target the time limit left no time to plan on.
UNDECIDED = "not decided within the time limit"
#: A target without a plan in the resource's part that the time limit left no time to explain on the whole model.
UNEXPLAINED = "no plan with it there (not explained within the time limit)"


def _undecided(target: str) -> Alternative:
    return Alternative(target, "timeout", summary=UNDECIDED, complete=False)


def explain_placement(project: Project, plan: Plan, resource: str, *, timeout: float,
                      memory_mb: int | None = None) -> PlacementWhy:
    """Why ``plan`` puts ``resource`` where it does: for each other target,
    the policies that rule it out or the cost of the best plan with the
    resource there. ``project`` is loaded as for ``ordo apply plan.json``.
    The other targets are planned in a child within the limits, as a plan is
    (``placement_here``, planner.bounded.placement_bounded): the project may
    have changed since the plan was made, or the plan come from elsewhere,
    and a policy can ground without end. ``timeout`` bounds the whole
    explanation; ``memory_mb`` defaults to the project's
    settings.memory_limit_mb. Past a limit before any other target is
    decided, PlanningLimitError naming the policy that grounds largest (or
    ChildEnded); after, the targets decided stand and the others say what
    cut them short."""
    from planner.bounded import ChildEnded, PlanningLimitError, memory_for, placement_bounded
    from planner.core import load_policies

    _placed(plan, resource)
    if resource not in project.model.resources:   # (every other target: "no plan", pinning what is not there)
        raise UnknownOperation(f"the project has no resource '{resource}' now: the plan was made from other "
                               "inputs (`ordo plan` makes one of these)")
    program = load_policies(project)
    why = _placement_reason(project, program, plan, resource)
    others = _others(project, why)
    if why.reason not in (CHOSEN, CHOSEN_THEN) or not others:
        return why
    decided: dict[str, tuple[Alternative, bool]] = {}
    try:
        return placement_bounded(project, program, plan, resource, timeout=timeout,
                                 memory_mb=memory_for(project, memory_mb), decided=decided)
    except (PlanningLimitError, ChildEnded) as exc:
        if not decided:
            raise
        cause = ("within the time limit" if isinstance(exc, PlanningLimitError) and exc.kind == "time" else
                 "within the memory cap" if isinstance(exc, PlanningLimitError) else
                 "before the planning process ended unexpectedly")
    # a grounding ran past a limit after some targets were decided: those stand, the rest (and one
    # whose explanation on the whole model was under way) say what cut them short
    why.alternatives = []
    for other in others:
        found, provisional = decided.get(other, (_undecided(other), True))
        if provisional:
            found = replace(found, summary=found.summary.replace("within the time limit", cause))
        why.alternatives.append(found)
    return why


def _placed(plan: Plan, resource: str) -> None:
    if resource not in plan.placements:
        placed = ", ".join(sorted(plan.placements)) or "none"
        raise UnknownOperation(f"the plan places no resource '{resource}' (it places: {placed})")


def _others(project: Project, why: PlacementWhy) -> list[str]:
    return sorted(t for t in project.model.targets if t != why.target)


def _placement_reason(project: Project, program, plan: Plan, resource: str) -> PlacementWhy:
    """The explanation without the other targets: the reason it is where it is."""
    from planner.core import digest

    _placed(plan, resource)
    why = PlacementWhy(resource=resource, target=plan.placements[resource], reason="",
                       cost=tuple((c.priority, c.cost) for c in plan.cost),
                       inputs_changed=digest(project, program)[0] != plan.digest)
    res = project.model.resources.get(resource)
    if res is not None and res.pinned is not None:
        why.reason = f"the request pins it to {res.pinned}"
    elif not any(c.resource == resource and c.placement for c in plan.resource_changes):
        why.reason = (f"it is on {why.target} already; a resource moves only when it is replaced "
                      "(<base>/placement.lp)")
    else:
        why.reason = CHOSEN_THEN if why.inputs_changed else CHOSEN
    return why


@dataclass
class _Limits:
    """The time an explanation has, and a bounded child's parent to tell as
    each grounding starts and ends (it ends a grounding that runs past
    ``deadline``: a grounding cannot be stopped). No grounding starts that the
    longest one so far would take past the deadline."""

    deadline: float                                        # time.monotonic()
    on_grounding: Callable[[], None] | None = None
    on_grounded: Callable[[], None] | None = None
    longest: float = 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def may_ground(self) -> bool:
        return self.left() > self.longest

    def share(self, targets: int) -> float:
        """The search time of the first of ``targets`` still to plan: an equal share
        of what their groundings, at the pace of the longest so far, leave of
        the time (of what this one's leaves, when theirs would take it all)."""
        spare = self.left() - self.longest * targets
        return max(0.0, spare if spare > 0 else self.left() - self.longest) / targets

    def solve(self, program, facts: list[str], timeout: float, keep_control: bool = True):
        from planner.solve import solve

        def grounded(seconds: float) -> float:
            self.longest = max(self.longest, seconds)
            if self.on_grounded is not None:
                self.on_grounded()
            return min(timeout, max(0.0, self.left()))

        if self.on_grounding is not None:
            self.on_grounding()
        return solve(program, facts, timeout=timeout, keep_control=keep_control, on_grounded=grounded)


def placement_here(project: Project, program, plan: Plan, resource: str, *, timeout: float,
                   facts: list[str] | None = None, on_grounding: Callable[[], None] | None = None,
                   on_grounded: Callable[[], None] | None = None,
                   on_decided: Callable[[Alternative, bool], None] | None = None) -> PlacementWhy:
    """``explain_placement`` in this process, with ``program`` (the project's
    policies, checked) and ``facts`` (the model's, unless given). Each other
    target's search has an equal share of the time its grounding and the
    others' leave (``_Limits.share``); one the time limit leaves none for is
    not planned ("timeout"). ``on_grounding`` and
    ``on_grounded`` are told as each grounding starts and ends,
    ``on_decided`` each target as it is decided, and whether only for now (a
    target without a plan in the resource's part, not explained yet, while it
    is explained on the whole model)."""
    from planner.facts import model_facts

    why = _placement_reason(project, program, plan, resource)
    if why.reason not in (CHOSEN, CHOSEN_THEN):
        return why
    limits = _Limits(time.monotonic() + timeout, on_grounding, on_grounded)
    others = _others(project, why)
    whole = model_facts(project.model) if facts is None else facts
    scope = _part(project, program, plan, resource, limits, timeout / (len(others) + 1)) \
        if others and not why.inputs_changed and plan.status == "optimal" and limits.may_ground() else None
    part, rest = scope if scope is not None else (whole, None)
    res = project.model.resources.get(resource)
    placed_now = res.placement if why.inputs_changed and res is not None else None
    for index, other in enumerate(others):
        share = len(others) - index   # the targets left to plan, this one included
        found = _undecided(other)
        if limits.may_ground():
            found = _alternative(program, part, project.model, plan, resource, other, limits,
                                 limits.share(share), rest, placed_now=placed_now)
        if found.status == "no_plan" and rest is not None:   # explained on the whole model, its real capacities
            found = Alternative(other, "no_plan", summary=UNEXPLAINED, complete=False)
            if limits.may_ground():
                if on_decided is not None:
                    on_decided(found, True)   # what stands if the whole model's grounding runs past the deadline
                again = _alternative(program, whole, project.model, plan, resource, other, limits,
                                     limits.share(share), None, placed_now=placed_now)
                found = again if again.status != "timeout" else found
        if on_decided is not None:
            on_decided(found, False)
        why.alternatives.append(found)
    return why


def _part(project: Project, program, plan: Plan, resource: str, limits: _Limits,
          timeout: float) -> tuple[list[str], dict[int, int]] | None:
    """The facts of the part of the model that ``resource`` is planned in
    (planner/slice.py's parts, or its slice), and what the rest of ``plan``
    costs at each priority: the parts share no choice, so the resource fixed
    elsewhere changes the cost of its part only. For an optimal plan of the
    project as it is now; None when the model is planned whole, or the part's
    own optimum is not proven in ``timeout``."""
    from planner.slice import prune

    sliced = prune(program, project.model, project.enforcement, project.parameters)
    holding = [facts for facts, names in zip(sliced.parts, sliced.names, strict=True)
               if resource in names] if sliced is not None else []
    if len(holding) != 1:
        return None
    alone = limits.solve(program, holding[0], timeout, keep_control=False)
    if alone.status != "optimal":
        return None
    rest = {level.priority: level.cost for level in plan.cost}
    for priority, cost in zip(alone.priorities, alone.cost, strict=True):
        rest[priority] = rest.get(priority, 0) - cost
    return holding[0], rest


def _alternative(program, facts: list[str], model, plan: Plan, resource: str, target: str, limits: _Limits,
                 timeout: float, rest: dict[int, int] | None, placed_now: str | None = None) -> Alternative:
    """Plan with ``resource`` fixed on ``target`` (a constraint no policy can
    relax), the plan's other placements kept where that costs nothing
    (planner.facts.keep_placements); ``rest``: what the rest of the plan costs, when
    ``facts`` are one part of the model (None: they are the whole model). A
    part without a plan is not explained here: its facts hold the capacity
    left, not the targets' own (planner/slice.py), so the caller asks again
    on the whole model. ``placed_now``: where the resource is placed now, when the inputs changed since
    the plan was made (a target it cannot move to for that reason alone is said so)."""
    from planner.facts import keep_placements
    from planner.solve import own_objective

    fixed = [*facts, f':- not place("{resource}","{target}").',   # names match the models' pattern: no quotes
             *keep_placements(plan.placements, but=resource)]
    result = limits.solve(program, fixed, timeout)
    control, result.control = result.control, None
    if result.status == "timeout":
        return _undecided(target)
    if result.status == "unsatisfiable":
        if rest is not None:
            return Alternative(target, "no_plan")
        explanation = explain_no_plan(program, fixed, model, timeout=min(timeout, max(0.0, limits.left())),
                                      control=control)
        if explanation.kind == "unknown" and placed_now not in (None, target):
            # no policy to blame, and the resource was placed since the plan was made: the base's placement
            # rule keeps it where it is unless it is replaced
            return Alternative(target, "no_plan", summary=(
                f"it is on {placed_now} now, observed since the plan was made, and a resource placed already "
                "moves only when it is replaced (<base>/placement.lp)"))
        return Alternative(target, "no_plan", conflicts=tuple(explanation.conflicts), summary=explanation.summary)
    placed = {str(s.arguments[0].string): str(s.arguments[1].string) for s in result.symbols
              if s.name == "place" and len(s.arguments) == 2}
    moves = tuple(sorted((r, t) for r, t in placed.items() if r != resource and plan.placements.get(r, t) != t))
    cost = dict(rest or {})
    for priority, value in zip(result.priorities, result.cost, strict=True):
        cost[priority] = cost.get(priority, 0) + value
    # with nothing of its own to optimise, any plan there costs the least (keeping placements aside)
    least = result.status == "optimal" or not own_objective(program, facts)
    return Alternative(target, "plan", cost=tuple(sorted(cost.items(), reverse=True)), optimal=least, moves=moves)
