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

#: The operations that wait for each operation (every node a key): a dict of
#: lists, or an ``nx.DiGraph`` (``graph[node]`` is its successors too).
Successors = Mapping[str, Iterable[str]]


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


def take_ready(ready: dict[str, list[tuple[float, str]]], room: int, controller_limits: Mapping[str, int],
               groups: Mapping[str, list[str]], group_limits: Mapping[str, int],
               controller_busy: Mapping[str, int] | None = None,
               group_busy: Mapping[str, int] | None = None) -> list[str]:
    """Pop from ``ready`` (a heap of (-bottom level, id) per controller) the operations
    that may start together: at most ``room`` of them, none over a controller's or a
    group's limit counting the ``busy`` ones already running; longest remaining path
    first, ties by id. Operations held back by a full group stay in ``ready``.

    Both the planner's waves and the executor's dispatch take operations this way.
    """
    taken: list[str] = []
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
    deferred: list[tuple[str, tuple[float, str]]] = []
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
    ``order`` is a topological order of ``graph``, when the caller has one."""
    groups = groups or {}
    group_limits = group_limits or {}
    succ = _lists(graph)
    level = _levels(succ, duration, order)
    waiting = _in_degrees(succ)
    # One ready queue per controller (see take_ready).
    ready: dict[str, list[tuple[float, str]]] = {ctrl: [] for ctrl in sorted(set(controller.values()))}
    push = heapq.heappush
    for node, count in waiting.items():
        if count == 0:
            push(ready[controller[node]], (-level[node], node))
    waves: list[list[str]] = []
    makespan = 0.0
    while any(ready.values()):
        wave = take_ready(ready, limit, controller_limits, groups, group_limits)
        for node in wave:
            for nxt in succ[node]:
                waiting[nxt] -= 1
                if not waiting[nxt]:
                    push(ready[controller[nxt]], (-level[nxt], nxt))
        wave.sort()
        waves.append(wave)
        makespan += max([duration[n] for n in wave])
    critical = max(level.values(), default=0.0)
    return Schedule(waves=waves, makespan=makespan, critical_path=critical)
