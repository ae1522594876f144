"""Read a solver answer back into operations, edges, goals and placements."""

from __future__ import annotations

from dataclasses import dataclass, field

import clingo
import networkx as nx

from planner.solve import SolveResult


def op_id(resource: str, operation: str) -> str:
    return f"{resource}/{operation}"


@dataclass
class Decoded:
    ops: dict[str, tuple[str, str]]                      # id -> (resource, operation)
    edges: dict[tuple[str, str], set[int]]               # (before, after) -> rule indexes
    goals: dict[str, str]
    why: dict[str, list[str]]
    placements: dict[str, str]
    graph: nx.DiGraph
    groups: dict[str, list[str]] = field(default_factory=dict)   # resource -> concurrency groups
    group_limits: dict[str, int] = field(default_factory=dict)


def find_cycle(graph: nx.DiGraph) -> list[str]:
    """The operations of one cycle in the order graph, or [] when it is acyclic."""
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
    for text in result.texts():
        head = text[:text.index("(")] if "(" in text else text
        parts = text.split('"')
        if head == "op" and len(parts) == 5:
            ops[op_id(parts[1], parts[3])] = (parts[1], parts[3])
        elif head == "__before" and len(parts) == 9:
            key = (op_id(parts[1], parts[3]), op_id(parts[5], parts[7]))
            edges.setdefault(key, set()).add(int(parts[8].strip("),")))
        elif head == "goal" and len(parts) == 5:
            goals[parts[1]] = parts[3]
        elif head == "why" and len(parts) == 5:
            why.setdefault(parts[1], []).append(
                f"part of {parts[3]}, which goes away" if parts[2].endswith("cascade(") else parts[3])
        elif head == "place" and len(parts) == 5:
            placements[parts[1]] = parts[3]
        elif head == "group" and len(args := clingo.parse_term(text).arguments) == 2:
            groups.setdefault(_name(args[0]), []).append(_name(args[1]))
        elif head == "group_limit" and len(args := clingo.parse_term(text).arguments) == 2 \
                and args[1].type == clingo.SymbolType.Number:
            name = _name(args[0])
            limits[name] = max(1, min(limits.get(name, args[1].number), args[1].number))
    edges = {key: idx for key, idx in edges.items() if key[0] in ops and key[1] in ops}
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(ops))
    graph.add_edges_from(sorted(edges))
    groups = {r: sorted(g for g in gs if g in limits) for r, gs in groups.items()}
    return Decoded(ops=ops, edges=edges, goals=goals, why=why, placements=placements, graph=graph,
                   groups={r: gs for r, gs in groups.items() if gs}, group_limits=limits)


