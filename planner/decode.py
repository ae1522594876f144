"""Read a solver answer back into operations, edges, goals and placements."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import clingo

from planner.schedule import topological_order
from planner.solve import SolveResult

if TYPE_CHECKING:  # imported where a cycle is named: a tenth of a second at start-up
    import networkx as nx


def op_id(resource: str, operation: str) -> str:
    return f"{resource}/{operation}"


#: The stray before/2 atoms a decode keeps, at most (for a message: the first few).
STRAY_MOST = 20


def _node(term: clingo.Symbol) -> str:
    """An end of a before/2 atom: an operation's id, else the term as clingo writes it."""
    args = term.arguments if term.type == clingo.SymbolType.Function and term.name == "op" else ()
    if len(args) == 2 and all(a.type == clingo.SymbolType.String for a in args):
        return op_id(args[0].string, args[1].string)
    return str(term)


def every_edge(result: SolveResult) -> dict[tuple[str, str], set[int]]:
    """Every before/2 atom of an answer, between what it orders (an operation's id, else the term
    itself) with its rules: those between operations the plan does not take, or things that are no
    operation, too (``decode`` keeps the plan's). For an explanation: a cycle there has no plan."""
    edges: dict[tuple[str, str], set[int]] = {}
    for text in result.texts():
        if text.startswith("__before(") and len(args := clingo.parse_term(text).arguments) == 3:
            edges.setdefault((_node(args[0]), _node(args[1])), set()).add(args[2].number)
    return edges


@dataclass
class Decoded:
    ops: dict[str, tuple[str, str]]                      # id -> (resource, operation)
    edges: dict[tuple[str, str], set[int]]               # (before, after) -> rule indexes, sorted
    goals: dict[str, str]
    why: dict[str, list[str]]
    placements: dict[str, str]
    successors: dict[str, list[str]]                     # id -> the ids that wait for it (every id a key)
    groups: dict[str, list[str]] = field(default_factory=dict)   # resource -> concurrency groups
    group_limits: dict[str, int] = field(default_factory=dict)
    below_one: dict[str, int] = field(default_factory=dict)   # group -> the limit under 1 a policy gave (read as 1)
    #: before/2 atoms that order what is not an operation ("a", "b", rule index), STRAY_MOST of them, and
    #: how many there are
    stray: list[tuple[str, str, int]] = field(default_factory=list)
    strays: int = 0
    order: list[str] | None = None                       # a topological order, once cycle() found none

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The order as a networkx graph, built when asked for (a cycle to name, an explanation)."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(sorted(self.ops))
        graph.add_edges_from(sorted(self.edges))
        return graph

    def cycle(self) -> list[str]:
        """The operations of one cycle in the order, or [] when there is none
        (and then ``order`` holds a topological order, for the schedule)."""
        order = topological_order(self.successors)
        if len(order) == len(self.successors):
            self.order = order
            return []
        return find_cycle(self.graph)


def find_cycle(graph: nx.DiGraph) -> list[str]:
    """The operations of one cycle in the order graph, or [] when it is acyclic."""
    import networkx as nx

    if nx.is_directed_acyclic_graph(graph):
        return []
    return [u for u, _ in nx.find_cycle(graph)]


def _name(sym: clingo.Symbol) -> str:
    return sym.string if sym.type == clingo.SymbolType.String else str(sym)


def decode(result: SolveResult) -> Decoded:
    """Read the shown atoms back. Every name in them passed the models' name
    pattern (no quotes, no backslashes), so splitting each atom's text on '"'
    is exact, and ten times faster than walking clingo symbols."""
    ops: dict[str, tuple[str, str]] = {}
    edges: dict[tuple[str, str], set[int]] = {}
    goals: dict[str, str] = {}
    why: dict[str, list[str]] = {}
    placements: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    limits: dict[str, int] = {}
    below: dict[str, int] = {}
    stray: list[tuple[str, str, int]] = []
    strays = 0
    for text in result.texts():
        parts = text.split('"')
        head = parts[0]   # 'op(', '__before(op(', ... when the first argument is a string
        if (head == "__before(op(" and len(parts) == 9 and parts[2] == parts[6] == "," and parts[4] == "),op("
                and parts[8].startswith("),") and parts[8][2:-1].isdigit()):   # (op to op: no other shape)
            key = (parts[1] + "/" + parts[3], parts[5] + "/" + parts[7])   # op_id
            rule = int(parts[8].strip("),"))
            found = edges.get(key)
            if found is None:
                edges[key] = {rule}
            else:
                found.add(rule)
        elif head.startswith("__before("):   # an end that is no operation
            strays += 1
            if len(stray) < STRAY_MOST and len(args := clingo.parse_term(text).arguments) == 3:
                stray.append((_node(args[0]), _node(args[1]), args[2].number))
        elif head == "op(" and len(parts) == 5 and parts[4] == ")":   # (op/2 alone: no atom of another arity)
            ops[parts[1] + "/" + parts[3]] = (parts[1], parts[3])
        elif head == "goal(" and len(parts) == 5 and parts[4] == ")":
            goals[parts[1]] = parts[3]
        elif head == "why(" and len(parts) == 5:
            why.setdefault(parts[1], []).append(
                f"part of {parts[3]}, which goes away" if parts[2].endswith("cascade(") else parts[3])
        elif head == "place(" and len(parts) == 5 and parts[4] == ")":
            placements[parts[1]] = parts[3]
        elif text.startswith("group(") and len(args := clingo.parse_term(text).arguments) == 2:
            groups.setdefault(_name(args[0]), []).append(_name(args[1]))
        elif text.startswith("group_limit(") and len(args := clingo.parse_term(text).arguments) == 2 \
                and args[1].type == clingo.SymbolType.Number:
            name = _name(args[0])
            if args[1].number < 1:
                below[name] = min(below.get(name, args[1].number), args[1].number)
            limits[name] = max(1, min(limits.get(name, args[1].number), args[1].number))
    edges = {key: edges[key] for key in sorted(edges) if key[0] in ops and key[1] in ops}
    successors: dict[str, list[str]] = {oid: [] for oid in sorted(ops)}
    for before, after in edges:
        successors[before].append(after)
    groups = {r: sorted(g for g in gs if g in limits) for r, gs in groups.items()}
    return Decoded(ops=ops, edges=edges, goals=goals, why=why, placements=placements, successors=successors,
                   groups={r: gs for r, gs in groups.items() if gs}, group_limits=limits, below_one=below,
                   stray=sorted(stray), strays=strays)


