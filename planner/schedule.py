"""A list scheduler over the plan's DAG.

Operations go into waves: an operation is in a wave only when all its
predecessors are in earlier waves, and no wave holds more than the global
limit, or more than a controller's limit of that controller's operations.
Among ready operations the one with the longest remaining path (by expected
duration) goes first, ties by id, so schedules are deterministic. Graham's
bound keeps list schedules within 2 - 1/K of the optimum.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

#: The operations that wait for each operation (every node a key): a dict of
#: lists, or an ``nx.DiGraph`` (``graph[node]`` is its successors too).
Successors = Mapping[str, Iterable[str]]
#: An operation as take_ready sees it: its id (the executor), or its number in id order (``schedule``).
Node = TypeVar("Node", str, int)


@dataclass(frozen=True)
class Schedule:
    waves: list[list[str]]
    makespan: float       # sum over waves of the longest operation in each
    critical_path: float  # longest path by duration: a lower bound on any schedule


def topological_order(succ: Mapping[str, list[str]]) -> list[str]:
    """The nodes, each after all its predecessors (Kahn's algorithm on plain
    dicts, five times cheaper than networkx's); fewer than all of them when
    some lie on a cycle."""
    waiting = _in_degrees(succ)
    order = [node for node, count in waiting.items() if count == 0]
    for node in order:  # grows while it is read
        for nxt in succ[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                order.append(nxt)
    return order


def _in_degrees(succ: Mapping[str, list[str]]) -> dict[str, int]:
    waiting = dict.fromkeys(succ, 0)
    for nexts in succ.values():
        for node in nexts:
            waiting[node] += 1
    return waiting


def _lists(graph: Successors) -> Mapping[str, list[str]]:
    """The successors as lists: a dict of lists as it is (it is only read)."""
    if isinstance(graph, dict) and all(type(nexts) is list for nexts in graph.values()):
        return graph
    return {node: list(graph[node]) for node in graph}


def bottom_levels(graph: Successors, duration: dict[str, float]) -> dict[str, float]:
    """Longest path from each node to a sink, counting the node itself."""
    return _levels(_lists(graph), duration)


def _levels(succ: Mapping[str, list[str]], duration: dict[str, float],
            order: list[str] | None = None) -> dict[str, float]:
    """``order``: a topological order of ``succ``, when the caller has one."""
    order = topological_order(succ) if order is None else order
    if len(order) < len(succ):
        raise ValueError("the graph has a cycle")
    level: dict[str, float] = {}
    for node in reversed(order):
        nexts = succ[node]
        level[node] = duration[node] + (max([level[s] for s in nexts]) if nexts else 0.0)
    return level


def take_ready(ready: dict[str, list[tuple[float, Node]]], room: int, controller_limits: Mapping[str, int],
               groups: Mapping[Node, list[str]], group_limits: Mapping[str, int],
               controller_busy: Mapping[str, int] | None = None,
               group_busy: Mapping[str, int] | None = None) -> list[Node]:
    """Pop from ``ready`` (a heap of (-bottom level, node) per controller) the operations
    that may start together: at most ``room`` of them, none over a controller's or a
    group's limit counting the ``busy`` ones already running; longest remaining path
    first, ties by id. Operations held back by a full group stay in ``ready``.

    Both the planner's waves and the executor's dispatch take operations this way.
    """
    taken: list[Node] = []
    if room <= 0:
        return taken
    used = dict(controller_busy) if controller_busy else {}
    in_group = dict(group_busy) if group_busy else {}
    pop, push = heapq.heappop, heapq.heappush

    def has_room(ctrl: str) -> bool:
        cap = controller_limits.get(ctrl)
        return cap is None or used.get(ctrl, 0) < cap

    # Each controller's queue is looked at only through its head, so a saturated
    # controller costs nothing to skip.
    heads = [(queue[0], ctrl) for ctrl, queue in ready.items() if queue and has_room(ctrl)]
    heapq.heapify(heads)
    deferred: list[tuple[str, tuple[float, Node]]] = []
    while heads and len(taken) < room:
        _, ctrl = pop(heads)
        queue = ready[ctrl]
        item = pop(queue)
        node = item[1]
        mine = groups.get(node) if groups else None
        if mine and any(in_group.get(g, 0) >= group_limits[g] for g in mine):
            deferred.append((ctrl, item))  # its group is full
        else:
            taken.append(node)
            used[ctrl] = used.get(ctrl, 0) + 1
            for g in mine or ():
                in_group[g] = in_group.get(g, 0) + 1
        if queue and has_room(ctrl):
            push(heads, (queue[0], ctrl))
    for ctrl, item in deferred:
        push(ready[ctrl], item)
    return taken


def schedule(graph: Successors, duration: dict[str, float], controller: dict[str, str],
             limit: int, controller_limits: dict[str, int],
             groups: dict[str, list[str]] | None = None, group_limits: dict[str, int] | None = None,
             order: list[str] | None = None) -> Schedule:
    """``groups`` maps an operation to the concurrency groups it counts against;
    ``order`` is a topological order of ``graph``, when the caller has one.

    The operations are numbered in id order and scheduled by number (lists
    instead of string-keyed dicts, which at 30,000 operations and more no
    longer fit the processor's caches): the same waves, since a number
    orders as its id does."""
    group_limits = group_limits or {}
    succ = _lists(graph)
    ids = sorted(succ)
    number = {node: i for i, node in enumerate(ids)}
    topo = [number[node] for node in (topological_order(succ) if order is None else order)]
    if len(topo) < len(ids):
        raise ValueError("the graph has a cycle")
    nexts = [[number[s] for s in succ[node]] for node in ids]
    took = [duration[node] for node in ids]
    ctrl_of = [controller[node] for node in ids]
    level = [0.0] * len(ids)
    for i in reversed(topo):
        after = nexts[i]
        level[i] = took[i] + (max([level[s] for s in after]) if after else 0.0)
    waiting = [0] * len(ids)
    for after in nexts:
        for s in after:
            waiting[s] += 1
    numbered_groups = {number[node]: gs for node, gs in (groups or {}).items() if node in number}
    # One ready queue per controller (see take_ready), of (-bottom level, number).
    ready: dict[str, list[tuple[float, int]]] = {ctrl: [] for ctrl in sorted(set(ctrl_of))}
    push = heapq.heappush
    for i, count in enumerate(waiting):
        if count == 0:
            push(ready[ctrl_of[i]], (-level[i], i))
    waves: list[list[str]] = []
    makespan = 0.0
    while any(ready.values()):
        wave = take_ready(ready, limit, controller_limits, numbered_groups, group_limits)
        for i in wave:
            for s in nexts[i]:
                waiting[s] -= 1
                if not waiting[s]:
                    push(ready[ctrl_of[s]], (-level[s], s))
        wave.sort()
        waves.append([ids[i] for i in wave])
        makespan += max([took[i] for i in wave])
    critical = max(level, default=0.0)
    return Schedule(waves=waves, makespan=makespan, critical_path=critical)
