"""Plan only what a request changes: the slice of the model the solver needs.

Against the state of a large project, a small request changes a few
resources; the rest keeps its state, and grounding lifecycles, placements and
policies for it costs time and tells nothing new. ``prune`` returns the facts
of a smaller model that gives the same plan (the same operations, order and
cost; where placements tie on cost the smaller search may meet another of
them first, still deterministic for the same inputs), or None when that cannot
be shown, and the planner then solves the whole model. The rule (documented in
docs/architecture.md, checked by tests/test_slice.py against the full
program on generated instances and the examples):

* Only when every policy is the base library or a stock policy in
  ``SLICEABLE`` with its own header's enforcement and default parameters: a
  project's own rules may read any fact, so with any of them nothing is
  pruned. Nor when a run re-plans (failed, refused, planned: a policy may
  replace what is outside) or the request orders siblings (the objective).
* The slice: every resource the request may change (asked for a state other
  than its current one, changed params, an operation to run, a pin) and the
  parts that go away with it; then everything related to one of those
  (part_of both ways, every relation both ways, params read), every
  ancestor (``located`` follows part_of), every descendant, and every
  resource sharing an anti-affinity label value with the slice.
* Outside the slice nothing changes (its goal is its current state, so it
  has no operation and, unplaced, no choice), and its placements are facts:
  capacity it takes is subtracted from its target's capacity (exact for
  capacity.lp's sum), prefer-cheaper-region costs nothing for a resource
  where it is placed. What a constraint says of resources all outside the
  slice is checked here instead (anti-affinity, and ordering.lp's goals
  that cannot hold together); when one is violated, or a target is over
  capacity already, nothing is pruned and the full program explains it.
* A slice without a plan is planned again in full (the explanation then
  names the real capacities and every resource).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.model import Model, Resource
from planner.facts import model_facts
from planner.program import Program

#: Stock policies whose reads are known (see the module's docstring).
SLICEABLE = frozenset({"capacity", "anti-affinity", "prefer-cheaper-region", "protected-resources",
                       "strict-teardown"})
ANTI_AFFINITY = "anti-affinity"   # anti-affinity.lp's default label_key
#: ordering.lp's goals that cannot hold together: (relation, milestone of A, milestone of B).
PAIRS = (("part_of", "assigned", "assigned"), ("uses", "created", "active"), ("hosted_on", "assigned", "active"))


@dataclass
class Slice:
    facts: list[str]
    placements: dict[str, str]   # place(R,T) of the resources left out, as the full program has them
    kept: int                    # resources in the slice


def sliceable(program: Program, model: Model, enforcement: dict, parameters: dict) -> bool:
    """Whether the policies and the model allow pruning at all."""
    if enforcement or parameters or model.failed or model.refused or model.planned:
        return False
    for pfile in program.files:
        if pfile.origin == "project" or (pfile.origin == "library" and pfile.meta.name not in SLICEABLE):
            return False
        if pfile.origin == "base" and not pfile.display.startswith("<base>/"):
            return False   # <replan>/ files
    return not any(res.priority is not None for res in model.resources.values())


def prune(program: Program, model: Model, enforcement: dict, parameters: dict) -> Slice | None:
    """The facts of the slice, or None: plan the whole model."""
    if not sliceable(program, model, enforcement, parameters):
        return None
    resources = model.resources
    initial = {name: kind.initial for name, kind in model.kinds.items()}
    changing: set[str] = set()
    for name, res in resources.items():
        if _may_change(model, res, initial):
            changing.add(name)
            if 2 * len(changing) > len(resources):
                return None   # most of it changes: a slice would save little
    children: dict[str, list[str]] = {}
    users: dict[str, set[str]] = {}
    for name, res in resources.items():
        if res.part_of:
            children.setdefault(res.part_of, []).append(name)
        for _, other in res.relations:
            users.setdefault(other, set()).add(name)
        for ref in res.refs:
            users.setdefault(ref.producer, set()).add(name)
    # Parts that go away with their whole (lifecycle.lp: gone, cascade), also
    # under a whole asked to stay gone.
    stack = [n for n, res in resources.items() if res.requested and res.desired == initial[res.type]]
    while stack:
        for child in children.get(stack.pop(), []):
            if not (resources[child].requested and resources[child].desired is not None) and child not in changing:
                changing.add(child)
                stack.append(child)
    keep = set(changing)
    for name in changing:
        res = resources[name]
        keep.update(other for _, other in res.relations)
        keep.update(ref.producer for ref in res.refs)
        keep.update(users.get(name, ()))
    members: dict[str, set[str]] = {}
    for name, res in resources.items():
        if ANTI_AFFINITY in res.labels:
            members.setdefault(str(res.labels[ANTI_AFFINITY]), set()).add(name)
    stack = list(keep)
    while stack:   # every descendant, every ancestor and every anti-affinity peer of what is kept
        name = stack.pop()
        res = resources[name]
        others = [*children.get(name, []), *([res.part_of] if res.part_of else [])]
        if ANTI_AFFINITY in res.labels:
            others += sorted(members[str(res.labels[ANTI_AFFINITY])])
        for other in others:
            if other not in keep:
                keep.add(other)
                stack.append(other)
    if len(keep) == len(resources):
        return None
    located = _located(model, initial)
    outside = [n for n in resources if n not in keep]
    if not _outside_holds(model, outside, changing, located):
        return None
    capacity = _capacity_left(model, outside, located, initial)
    if capacity is None:
        return None
    sub = replace(model, resources={n: r for n, r in resources.items() if n in keep}, targets=capacity)
    placements = {n: resources[n].placement for n in outside
                  if resources[n].placement and resources[n].current != initial[resources[n].type]}
    return Slice(facts=model_facts(sub), placements=placements, kept=len(keep))


def _present(model: Model, name: str, initial: dict[str, str]) -> bool:
    res = model.resources[name]
    return res.current != initial[res.type]


def _may_change(model: Model, res: Resource, initial: dict[str, str]) -> bool:
    """Whether the full program may give the resource an operation or a new placement."""
    if (res.requested and res.desired is not None and res.desired != res.current) or res.changed or res.run \
            or res.pinned:
        return True
    return not res.placement and model.kinds[res.type].placement and res.current != initial[res.type]


def _located(model: Model, initial: dict[str, str]) -> dict[str, str]:
    """located/2 of placement.lp for resources that keep their state: their own
    placement when present, else their whole's location."""
    out: dict[str, str] = {}

    def where(name: str, depth: int = 0) -> str | None:
        if name in out:
            return out[name]
        res = model.resources[name]
        found = None
        if res.placement and _present(model, name, initial):
            found = res.placement
        elif res.part_of and depth < len(model.resources):
            found = where(res.part_of, depth + 1)
        if found is not None:
            out[name] = found
        return found

    for name in model.resources:
        where(name)
    return out


def _outside_holds(model: Model, outside: list[str], changing: set[str], located: dict[str, str]) -> bool:
    """No hard rule is broken where the slice program cannot see it: between
    two resources that keep their state, one of them outside the slice."""
    out = set(outside)
    zones: dict[str, set[str]] = {}
    for name in outside:   # every peer of a kept resource is kept: pairs outside only
        value = model.resources[name].labels.get(ANTI_AFFINITY)
        target = model.targets.get(located.get(name, ""))
        if value is not None and target is not None and target.zone:
            if target.zone in zones.setdefault(str(value), set()):
                return False
            zones[str(value)].add(target.zone)
    # needs[type][state]: for each relation, the milestones its other end must have reached
    # (ordering.lp's pairs whose own milestone a resource of the type in the state is at or past);
    # missing[type][state]: the milestones of the type a resource in the state has not reached.
    needs: dict[str, dict[str, dict[str, set[str]]]] = {}
    missing: dict[str, dict[str, set[str]]] = {}
    for tname, kind in model.kinds.items():
        ranks = {state: i for i, state in enumerate(kind.states)}
        needs[tname], missing[tname] = {}, {}
        for state, i in ranks.items():
            reached = {m for m, ms in kind.milestones if ranks[ms] <= i}
            missing[tname][state] = {m for m, _ in kind.milestones} - reached
            wants: dict[str, set[str]] = {}
            for rel, mine, needed in PAIRS:
                if mine in reached:
                    wants.setdefault(rel, set()).add(needed)
            needs[tname][state] = wants
    resources = model.resources
    for name, res in resources.items():
        if not (res.part_of or res.relations) or name in changing:
            continue
        wants = needs[res.type][res.current]
        if not wants:
            continue
        mine_out = name in out
        for kind, other in [("part_of", res.part_of), *res.relations] if res.part_of else res.relations:
            needed = wants.get(kind)
            if not needed or other in changing or not (mine_out or other in out):
                continue
            theirs = resources[other]
            if not needed.isdisjoint(missing[theirs.type][theirs.current]):
                return False
    return True


def _capacity_left(model: Model, outside: list[str], located: dict[str, str],
                   initial: dict[str, str]) -> dict | None:
    """The targets with the capacity that resources outside the slice take
    subtracted; None when one is over capacity already."""
    used: dict[tuple[str, str], int] = {}
    for name in outside:
        res = model.resources[name]
        if res.requires and name in located and _present(model, name, initial):
            for key, amount in res.requires.items():
                used[(located[name], key)] = used.get((located[name], key), 0) + amount
    targets = {}
    for tname, target in model.targets.items():
        left = {key: amount - used.get((tname, key), 0) for key, amount in target.capacity.items()}
        if any(v < 0 for v in left.values()):
            return None
        targets[tname] = target.model_copy(update={"capacity": left}) if left != target.capacity else target
    return targets
