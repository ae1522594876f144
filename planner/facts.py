"""Models to facts: the interface predicates of policies/base/interface.lp.

Facts are formatted as text exactly as clingo prints the same symbols
(``_render``, checked against clingo in the tests): every name passed the
loaders' name pattern and every other string is escaped, so no value can add
a rule. They are sorted, so that the same model always gives the same
program text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import clingo

from domain.model import Model

#: What a policy sees as the value of a secret param (``secrets:`` on its type).
SECRET = "<secret>"

#: name/arity of every predicate this module writes (the policy interface).
FACT_SIGNATURES: frozenset[tuple[str, int]] = frozenset({
    ("resource", 2), ("state", 3), ("transition", 4), ("milestone", 3), ("final", 2),
    ("update", 2), ("controller", 3), ("duration", 3), ("current", 2), ("desired", 2),
    ("part_of", 2), ("relation", 3), ("changed", 1), ("run", 2), ("requested", 1),
    ("placeable", 1), ("placed", 2), ("pinned", 2), ("requires", 3), ("label", 3),
    ("param", 3), ("target", 1), ("zone", 2), ("capacity", 3), ("attr", 3),
    ("target_label", 3), ("ref", 3), ("failed", 2), ("refused", 1), ("claimed_elsewhere", 1), ("planned", 2),
    ("planned_goal", 2),
    ("priority", 2),
})


def term(value: Any) -> clingo.Symbol:
    """A YAML scalar as a clingo term: names are strings, booleans constants."""
    if isinstance(value, bool):
        return clingo.Function("true" if value else "false")
    if isinstance(value, int):
        return clingo.Number(value)
    return clingo.String(str(value))


def _render(value: Any) -> str:
    """The text of term(value), as clingo prints it (checked against clingo in the tests)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _fact(name: str, *args: Any) -> str:
    # Formatting text directly is ten times faster than building clingo symbols
    # and printing them; _render matches clingo's own printing exactly.
    return f"{name}({','.join(_render(a) for a in args)})."


#: The priority at which a plan keeps another's placements (``keep_placements``):
#: the lowest of clingo's 32-bit priorities, below every level the stock
#: policies use and every number a model holds (at most MAX_INT either way),
#: so that it only chooses among the plans of least cost at every other level.
#: (A project policy's own arithmetic could reach it; its level would then be
#: left out of the cost with this one, where placements are kept.)
KEEP_LEVEL = -(2 ** 31)


def keep_placements(placements: Mapping[str, str], but: str | None = None) -> list[str]:
    """Facts that make the plan keep ``placements`` (another plan's; ``but`` one
    resource) wherever that costs nothing at any other level: of the plans of
    least cost, the one that moves fewest of them. So that what differs from
    that plan is what the change calls for, not another choice among
    placements that cost the same (why a resource is placed where it is,
    what-if scenarios). Only the strict program counts it (``__strict``): an
    explanation of "no plan" is the same with or without it. The level is
    left out of the plan's cost (planner.solve); a plan that keeps nothing
    else optimises is still only satisfiable."""
    kept = [f'__plan_place("{r}","{t}").' for r, t in sorted(placements.items()) if r != but]  # names: no quotes
    return [*kept, "#defined __plan_place/2.",
            f":~ place(R,T), __plan_place(R,P), T != P, __strict. [1@{KEEP_LEVEL},R]"]


def keeps_placements(facts: list[str]) -> bool:
    """True when the facts keep another plan's placements (``keep_placements``)."""
    return any(fact.startswith("__plan_place(") for fact in facts)


def orders_siblings(facts: list[str]) -> bool:
    """True when the request orders siblings (priority/2): the base library's
    preference for that order (ordering.lp) is then to be optimised."""
    return any(fact.startswith("priority(") for fact in facts)


def model_facts(model: Model, types: set[str] | None = None) -> list[str]:
    """Every fact of the model, sorted and without duplicates. The lifecycles
    written are those of the resources' types, or of ``types`` (a slice of a
    model has the whole model's: a policy may read a lifecycle on its own)."""
    out: list[str] = []
    add = out.append
    used_types = {r.type for r in model.resources.values()} if types is None else types
    for tname in sorted(used_types):
        kind = model.kinds[tname]
        for rank, state in enumerate(kind.states):
            add(_fact("state", tname, state, rank))
        for milestone, state in kind.milestones:
            add(_fact("milestone", tname, milestone, state))
        add(_fact("final", tname, kind.final))
        if kind.update:
            add(_fact("update", tname, kind.update))
        for op in kind.operations:
            add(_fact("transition", tname, op.name, op.from_state, op.to_state))
            add(_fact("controller", tname, op.name, op.controller))
            add(_fact("duration", tname, op.name, math.ceil(op.duration)))
    for tname, target in model.targets.items():
        add(_fact("target", tname))
        if target.zone:
            add(_fact("zone", tname, target.zone))
        for key, amount in target.capacity.items():
            add(_fact("capacity", tname, key, amount))
        for key, value in target.attributes.items():
            add(_fact("attr", tname, key, value))
        for key, value in target.labels.items():
            add(_fact("target_label", tname, key, value))
    q = _render
    for name, res in model.resources.items():
        # The resource's own name rendered once for all of its facts (a tenth of the time at 10,000).
        n = q(name)
        kind = model.kinds[res.type]
        add(f"resource({n},{q(res.type)}).")
        add(f"current({n},{q(res.current)}).")
        if res.requested and res.desired:
            add(f"desired({n},{q(res.desired)}).")
            add(f"requested({n}).")
        if res.part_of:
            add(f"part_of({n},{q(res.part_of)}).")
        for rel_kind, other in res.relations:
            add(f"relation({q(rel_kind)},{n},{q(other)}).")
        if res.changed and res.current != kind.initial:  # nothing to update in a resource that is gone
            add(f"changed({n}).")
        for opname in res.run:
            add(f"run({n},{q(opname)}).")
        if res.requested and res.priority is not None:
            add(f"priority({n},{q(res.priority)}).")
        if kind.placement:
            add(f"placeable({n}).")
        if res.placement:
            add(f"placed({n},{q(res.placement)}).")
        if res.pinned:
            add(f"pinned({n},{q(res.pinned)}).")
        for key, amount in res.requires.items():
            add(f"requires({n},{q(key)},{q(amount)}).")
        for key, value in res.labels.items():
            add(f"label({n},{q(key)},{q(value)}).")
        if res.params:
            wired = {ref.param for ref in res.refs}
            for key, value in res.params.items():
                if isinstance(value, (str, int, bool)) and key not in wired:
                    # A secret's value never reaches the solver: a policy could bind it and
                    # an explanation would then print it. Policies see that it is set.
                    add(f"param({n},{q(key)},{q(SECRET if key in kind.secrets else value)}).")
        for ref in res.refs:
            if ref.operation:
                add(f"ref({n},{q(ref.producer)},{q(ref.operation)}).")
    for name, opname in model.failed:
        add(_fact("failed", name, opname))
    for target in model.refused:
        add(_fact("refused", target))
    for target in sorted(model.claimed_elsewhere):
        add(_fact("claimed_elsewhere", target))
    for name, target in model.planned.items():
        add(_fact("planned", name, target))
    for name, state in model.planned_goals.items():
        add(_fact("planned_goal", name, state))
    return sorted(set(out))
