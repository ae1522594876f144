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

* Only when every policy is the base library, a stock policy in
  ``SLICEABLE`` with its own header's enforcement and default parameters, or
  a project's own rule file that reads only what a slice keeps
  (planner/locality.py: every rule about resources anchored on one the plan
  changes, and reading only those directly related to it). Nor when a run
  re-plans (failed, refused, planned: a policy may replace what is outside)
  or the request orders siblings (the objective).
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

A large slice (PART_MIN resources or more) is cut further, into parts solved
one after the other, or by several children at once, each a program of its
own (``parts``): the solver's time grows faster than the program (each core
of the optimisation makes it go over every assumption again), so two
programs of half the size take less than half as long, and two children
ground them side by side. The rule:

* A resource *moves* when it may change (above) or a whole above it may (its
  location follows its whole's); the others are *fixed*: their state and
  place are what they are now, whatever the plan.
* Moving resources related as the slice relates them (part_of, relations,
  params read, anti-affinity peers) are in the same part; a part holds its
  moving resources, the fixed ones they relate to (and the wholes above
  those, for their location), so every rule instance that reads a moving
  resource is in the part that holds it. A fixed resource may be in several
  parts: it has the same atoms in each (no choice, no operation, no cost).
* What a constraint says of fixed resources only is checked here, as for the
  resources outside a slice; and capacity.lp's sum, the one rule over every
  resource of a target, must be unable to bind: every moving resource's
  requires on every target, plus what is fixed there, within its capacity.
  Otherwise the slice is solved whole.
* The parts' operations, order and placements are the slice's; their costs
  add up: every cost element is a moving resource's, as long as no resource
  that keeps its place could cost anything in prefer-cheaper-region.lp,
  which ``unsliceable`` makes sure of (no target with a negative cost, no
  resource placed on a target the inventory does not list), for the slice
  itself too. Where placements tie on cost, the parts may meet another of
  them first, deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from domain.model import Model, Resource
from planner.facts import model_facts
from planner.locality import NOT_LOCAL, nonlocal_rule
from planner.program import Program

#: Stock policies whose reads are known (see the module's docstring). avoid-refused-targets and
#: replace-failed read nothing but through refused/1 and failed/2, which only a re-plan gives (or a
#: what-if's target down), and a re-plan is never sliced: without them their rules bind nothing. (They
#: kept every plan whole, the vFW example's too, which lists avoid-refused-targets: an authoring sweep's.)
SLICEABLE = frozenset({"capacity", "anti-affinity", "prefer-cheaper-region", "protected-resources",
                       "strict-teardown", "avoid-refused-targets", "replace-failed"})
ANTI_AFFINITY = "anti-affinity"   # anti-affinity.lp's default label_key
CAPACITY = "capacity"
CHEAPER = "prefer-cheaper-region"
COST, WEIGHT = "cost", "vcpu"     # prefer-cheaper-region.lp's default cost_key and weight_key
#: A slice of at least PART_MIN resources is solved in parts of about PART_SIZE
#: moving resources each, where it falls apart into independent groups; of
#: half of them each (at least PART_MIN // 2) where there are fewer than
#: 2 x PART_SIZE, so that two children share the work (``_part_size``).
PART_MIN = 500
PART_SIZE = 2500
#: From this many resources on, a plan of the whole model costs enough that
#: ``ordo check`` notes a project rule that keeps every plan whole, and ``ordo plan`` says why it solved the whole.
SLICE_NOTE_MIN = 1000
#: ordering.lp's goals that cannot hold together: (relation, milestone of A, milestone of B).
PAIRS = (("part_of", "assigned", "assigned"), ("uses", "created", "active"), ("hosted_on", "assigned", "active"))


@dataclass
class Slice:
    parts: list[list[str]]       # the facts of each program to solve (one: the slice as one program)
    placements: dict[str, str]   # place(R,T) of the resources in no part, as the full program has them
    kept: int                    # resources in the slice
    held: int                    # resources the parts hold (fewer than kept where a fixed one relates to none)
    names: list[set[str]]        # the resources of each part (a fixed one may be in several)


#: Why a re-plan is solved whole: what the run learnt and where it placed things may move anything.
REPLANNED = "a run is re-planned (its failed operations, refusing targets and placements so far may change anything)"


@dataclass(frozen=True)
class Scope:
    """What a plan was solved on: ``planned`` of the model's ``resources``, in
    ``parts`` programs; ``whole``, where the whole model was solved, says why
    no slice would do (a phrase, from ``prune``)."""

    resources: int
    planned: int
    parts: int = 1
    whole: str | None = None


def unsliceable(program: Program, model: Model, enforcement: dict, parameters: dict) -> str | None:
    """Why the policies or the model do not allow pruning at all (for ``ordo plan`` to say), or None."""
    if enforcement:
        return "the project sets enforcement levels (policies.enforcement)"
    if parameters:
        return "the project sets policy parameters (policies.parameters)"
    if model.failed or model.refused or model.planned or model.planned_goals:
        return REPLANNED
    for pfile in program.files:
        if pfile.origin == "library" and pfile.meta.name not in SLICEABLE:
            return f"the stock policy '{pfile.meta.name}' is not one whose reads the slice knows"
        if pfile.origin == "base" and not pfile.display.startswith("<base>/"):
            return REPLANNED   # <replan>/ files
    if (note := nonlocal_rule(program.files)) is not None:
        return f"{note.location}: {note.summary.removeprefix(NOT_LOCAL)}"
    if any(res.priority is not None for res in model.resources.values()):
        return "the request orders resources (priority)"
    if any(f.meta.name == CHEAPER for f in program.files) and _placed_resources_cost(model):
        return ("prefer-cheaper-region may count a cost for a resource that keeps its place (a target with "
                "a negative cost, or a resource placed on a target the inventory does not list)")
    return None


def _placed_resources_cost(model: Model) -> bool:
    """Whether prefer-cheaper-region may count a cost for a resource that keeps
    its place (it must count none: such a resource is left out of the slice,
    or held by several parts): one placed on a target the inventory does not
    list (it is then never free), or any target with a negative cost (every
    placed resource then has a cost level, if one of 0)."""
    if any(isinstance(cost, int | float) and not isinstance(cost, bool) and cost < 0
           for target in model.targets.values() if (cost := target.attributes.get(COST)) is not None):
        return True
    return any(res.placement is not None and res.placement not in model.targets and WEIGHT in res.requires
               for res in model.resources.values())


def prune(program: Program, model: Model, enforcement: dict, parameters: dict,
          why: list[str] | None = None) -> Slice | None:
    """The facts of the slice, in parts where it is large (PART_MIN, PART_SIZE),
    or None: plan the whole model as one program (``why``, when given, then
    gets the reason, a phrase, for ``ordo plan`` to say)."""
    reason = unsliceable(program, model, enforcement, parameters)
    if reason is not None:
        return _whole(why, reason)
    resources = model.resources
    initial = {name: kind.initial for name, kind in model.kinds.items()}
    index = _Index(model, initial)
    changing, children = index.changing, index.children
    most = len(changing) > len(resources) // 2   # most of it changes: the slice would leave little out
    # Parts that go away with their whole (lifecycle.lp: gone, cascade), also
    # under a whole asked to stay gone.
    stack = list(index.gone)
    while stack:
        for child in children.get(stack.pop(), []):
            if not (resources[child].requested and resources[child].desired is not None) and child not in changing:
                changing.add(child)
                stack.append(child)
    keep = set(resources) if most else _closure(model, index)
    everything = ("more than half of the resources may change" if most
                  else "every resource is related to one the request may change")
    if len(keep) < PART_MIN and len(keep) == len(resources):
        return _whole(why, everything)
    located = _locator(model, initial)
    if len(keep) == len(resources):
        capacity = model.targets
    elif not _outside_holds(model, index, keep, located):
        return _whole(why, "resources the request leaves alone share an anti-affinity label in one zone, or "
                           "break an ordering goal, as they are (a slice would not see them)")
    elif (capacity := _capacity_left(model, index, keep, located, initial)) is None:
        return _whole(why, "the resources the request leaves alone take more than a target's capacity "
                           "(a slice would not see them)")
    sub = replace(model, resources={n: r for n, r in resources.items() if n in keep}, targets=capacity)
    groups = None
    if len(keep) >= PART_MIN:
        groups = _parts(model, sub, index, located, initial,
                        any(f.meta.name == CAPACITY for f in program.files))
    if groups is None:
        if len(keep) == len(resources):
            return _whole(why, everything)
        groups = [set(keep)]
    placed = set().union(*groups)
    placements = {n: res.placement for n, res in resources.items()
                  if res.placement and n not in placed and res.current != initial[res.type]}
    types = {res.type for res in resources.values()}   # the whole program's lifecycles, in every part
    return Slice(parts=[model_facts(replace(sub, resources={n: sub.resources[n] for n in sorted(group)}), types)
                        for group in groups], placements=placements, kept=len(keep),
                 held=len(placed), names=groups)


def _whole(why: list[str] | None, reason: str) -> None:
    if why is not None:
        why.append(reason)
    return None


def _closure(model: Model, index: _Index) -> set[str]:
    """The slice: what may change and everything related to it (the module's docstring)."""
    resources, children, users, members = model.resources, index.children, index.users, index.members
    keep = set(index.changing)
    for name in index.changing:
        res = resources[name]
        keep.update(other for _, other in res.relations)
        keep.update(ref.producer for ref in res.refs)
        keep.update(users.get(name, ()))
    stack = list(keep)
    labelled: set[str] = set()   # anti-affinity groups taken in already
    while stack:   # every descendant, every ancestor and every anti-affinity peer of what is kept
        name = stack.pop()
        res = resources[name]
        others = [*children.get(name, []), *([res.part_of] if res.part_of else [])]
        if ANTI_AFFINITY in res.labels and (value := str(res.labels[ANTI_AFFINITY])) not in labelled:
            labelled.add(value)
            others += sorted(members[value])
        for other in others:
            if other not in keep:
                keep.add(other)
                stack.append(other)
    return keep


def _parts(model: Model, sub: Model, index: _Index, located: Callable[[str], str | None],
           initial: dict[str, str], capacity_rule: bool) -> list[set[str]] | None:
    """The slice ``sub`` of ``model`` cut into parts that can be solved each on its own
    (the module's docstring), each about ``_part_size`` moving resources and sorted;
    None when it cannot be cut, or would be one part."""
    resources, changing = sub.resources, index.changing
    moving: set[str] = set()
    still: set[str] = set()
    for name in resources:   # up the part_of chain to a whole that moves, or one known not to
        below: list[str] = []
        node: str | None = name
        while node is not None and node in resources and node not in still and len(below) <= len(resources):
            if node in moving or node in changing:
                moving.add(node)
                moving.update(below)
                break
            below.append(node)
            node = resources[node].part_of
        else:
            still.update(below)
    size = _part_size(len(moving))
    if len(moving) <= size:
        return None   # one part at most
    if not _outside_holds(model, index, moving, located):
        return None   # the slice, solved whole, explains it
    if capacity_rule and _capacity_may_bind(sub, moving, located, initial):
        return None
    parent = {name: name for name in moving}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    fixed_of: dict[str, list[str]] = {}   # the fixed resources each moving one relates to
    labelled: set[str] = set()            # anti-affinity groups joined already (once each: a group may be large)
    for name in moving:
        res = resources[name]
        links = [other for _, other in res.relations]
        if res.refs:
            links += [ref.producer for ref in res.refs]
        if res.part_of:
            links.append(res.part_of)
        if res.labels and ANTI_AFFINITY in res.labels and (value := str(res.labels[ANTI_AFFINITY])) not in labelled:
            labelled.add(value)
            links += index.members[value]
        users = index.users.get(name)
        fixed = [other for other in users if other not in moving and other in resources] if users else []
        root = find(name)
        for other in links:
            if other in moving:
                if (theirs := find(other)) != root:   # the smaller name stays the root
                    if theirs < root:
                        parent[root] = root = theirs
                    else:
                        parent[theirs] = root
            elif other in resources:
                fixed.append(other)
        if fixed:
            fixed_of[name] = fixed
    components: dict[str, list[str]] = {}
    for name in sorted(moving):
        components.setdefault(find(name), []).append(name)
    groups: list[set[str]] = []
    members: set[str] = set()
    for names in components.values():   # in the order of their first names
        members.update(names)
        if len(members) >= size:
            groups.append(members)
            members = set()
    if members:
        groups.append(members)
    if len(groups) < 2:
        return None
    for group in groups:
        stack = [other for name in group for other in fixed_of.get(name, ())]
        while stack:   # the fixed resources they relate to, and the wholes above those
            name = stack.pop()
            if name not in group:
                group.add(name)
                whole = resources[name].part_of
                if whole is not None and whole in resources:
                    stack.append(whole)
    return groups


def _part_size(moving: int) -> int:
    """The moving resources a part packs: PART_SIZE, or half of them where there
    are fewer than twice that, but not below PART_MIN // 2, where the second
    child would cost more than it saves. From the count alone, never from the
    machine: the same model is cut the same way everywhere, so its plan is too."""
    return min(PART_SIZE, max(PART_MIN // 2, -(-moving // 2)))


def _capacity_may_bind(sub: Model, moving: set[str], located: Callable[[str], str | None],
                       initial: dict[str, str]) -> bool:
    """Whether capacity.lp could refuse some placement of the moving resources:
    all of them on any one target, with what is fixed there, over its capacity."""
    anywhere: dict[str, int] = {}
    fixed: dict[tuple[str, str], int] = {}
    for name, res in sub.resources.items():
        if not res.requires:
            continue
        if name in moving:
            for key, amount in res.requires.items():
                anywhere[key] = anywhere.get(key, 0) + amount
        elif res.current != initial[res.type] and (where := located(name)) is not None:
            for key, amount in res.requires.items():
                fixed[(where, key)] = fixed.get((where, key), 0) + amount
    return any(anywhere.get(key, 0) + fixed.get((tname, key), 0) > amount
               for tname, target in sub.targets.items() for key, amount in target.capacity.items())


class _Index:
    """What the slice is built from, found in one pass over the model: the
    resources that may change, each resource's parts and users, the
    anti-affinity groups, the resources that take capacity, and the resources
    short of one of their type's milestones (only a relation to one of those
    can break an ordering goal; ``missing``: _missing's table, which found them)."""

    def __init__(self, model: Model, initial: dict[str, str]) -> None:
        self.changing: set[str] = set()
        self.children: dict[str, list[str]] = {}
        self.users: dict[str, set[str]] = {}
        self.members: dict[str, set[str]] = {}
        self.gone: list[str] = []
        self.takers: list[str] = []
        self.short: list[str] = []
        self.missing = missing = _missing(model)
        changing, children, users, members = self.changing, self.children, self.users, self.members
        for name, res in model.resources.items():
            if _may_change(model, res, initial):
                changing.add(name)
            if res.part_of:
                children.setdefault(res.part_of, []).append(name)
            for _, other in res.relations:
                users.setdefault(other, set()).add(name)
            for ref in res.refs:
                users.setdefault(ref.producer, set()).add(name)
            if res.labels and ANTI_AFFINITY in res.labels:
                members.setdefault(str(res.labels[ANTI_AFFINITY]), set()).add(name)
            if res.requested and res.desired == initial[res.type]:
                self.gone.append(name)
            if res.requires:
                self.takers.append(name)
            if missing[res.type][res.current]:
                self.short.append(name)


def _may_change(model: Model, res: Resource, initial: dict[str, str]) -> bool:
    """Whether the full program may give the resource an operation or a new placement."""
    if (res.requested and res.desired is not None and res.desired != res.current) or res.run or res.pinned \
            or (res.params and res.changed):
        return True
    return not res.placement and model.kinds[res.type].placement and res.current != initial[res.type]


def _locator(model: Model, initial: dict[str, str]) -> Callable[[str], str | None]:
    """located/2 of placement.lp for resources that keep their state: their own
    placement when present, else their whole's location; found when asked, up
    the part_of chain without recursion."""
    out: dict[str, str] = {}

    def where(name: str) -> str | None:
        chain, found = [], None
        node: str | None = name
        while node is not None and len(chain) <= len(model.resources):
            if node in out:
                found = out[node]
                break
            res = model.resources[node]
            chain.append(node)
            if res.placement and res.current != initial[res.type]:
                found = res.placement
                break
            node = res.part_of
        if found is not None:
            out.update(dict.fromkeys(chain, found))
        return found

    return where


def _missing(model: Model) -> dict[str, dict[str, set[str]]]:
    """missing[type][state]: the milestones of the type a resource in the state has not reached."""
    out: dict[str, dict[str, set[str]]] = {}
    for tname, kind in model.kinds.items():
        ranks = {state: i for i, state in enumerate(kind.states)}
        out[tname] = {state: {m for m, ms in kind.milestones if ranks[ms] > i} for state, i in ranks.items()}
    return out


def _needs(model: Model) -> dict[str, dict[str, dict[str, set[str]]]]:
    """needs[type][state]: for each relation, the milestones its other end must have reached
    (ordering.lp's pairs whose own milestone a resource of the type in the state is at or past)."""
    out: dict[str, dict[str, dict[str, set[str]]]] = {}
    for tname, kind in model.kinds.items():
        ranks = {state: i for i, state in enumerate(kind.states)}
        out[tname] = {}
        for state, i in ranks.items():
            reached = {m for m, ms in kind.milestones if ranks[ms] <= i}
            wants: dict[str, set[str]] = {}
            for rel, mine, needed in PAIRS:
                if mine in reached:
                    wants.setdefault(rel, set()).add(needed)
            out[tname][state] = wants
    return out


def _outside_holds(model: Model, index: _Index, keep: set[str], located: Callable[[str], str | None]) -> bool:
    """No hard rule is broken where the slice program cannot see it: between
    two resources that keep their state, one of them outside the slice."""
    resources = model.resources
    zones: dict[str, set[str]] = {}
    # Every peer of a resource in the slice is in it: the pairs not in ``keep`` are pairs outside. (With the
    # moving resources as ``keep``, pairs of fixed resources in the slice are checked too.)
    for value, names in index.members.items():
        for name in names:
            if name in keep:
                continue
            target = model.targets.get(located(name) or "")
            if target is not None and target.zone:
                if target.zone in zones.setdefault(value, set()):
                    return False
                zones[value].add(target.zone)
    # An ordering goal fails only where the other end has not reached a milestone: look at
    # the relations to those resources (their parts and users), none else.
    if not index.short:
        return True
    needs, missing = _needs(model), index.missing
    changing = index.changing
    for other in index.short:
        if other in changing:
            continue
        theirs = resources[other]
        lacking = missing[theirs.type][theirs.current]
        for name in {*index.children.get(other, ()), *index.users.get(other, ())}:
            res = resources[name]
            if name in changing or (name in keep and other in keep):
                continue
            wants = needs[res.type][res.current]
            edges = [("part_of", res.part_of), *res.relations] if res.part_of else res.relations
            for kind, target in edges:
                needed = wants.get(kind)
                if target == other and needed and not needed.isdisjoint(lacking):
                    return False
    return True


def _capacity_left(model: Model, index: _Index, keep: set[str], located: Callable[[str], str | None],
                   initial: dict[str, str]) -> dict | None:
    """The targets with the capacity that resources outside the slice take
    subtracted; None when one is over capacity already."""
    used: dict[tuple[str, str], int] = {}
    for name in index.takers:
        res = model.resources[name]
        if name in keep or res.current == initial[res.type]:   # kept, or not present
            continue
        where = located(name)
        if where is not None:
            for key, amount in res.requires.items():
                used[(where, key)] = used.get((where, key), 0) + amount
    targets = {}
    for tname, target in model.targets.items():
        left = {key: amount - used.get((tname, key), 0) for key, amount in target.capacity.items()}
        if any(v < 0 for v in left.values()):
            return None
        targets[tname] = target.model_copy(update={"capacity": left}) if left != target.capacity else target
    return targets
