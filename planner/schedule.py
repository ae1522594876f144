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
from collections import Counter
from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class Schedule:
    waves: list[list[str]]
    makespan: float       # sum over waves of the longest operation in each
    critical_path: float  # longest path by duration: a lower bound on any schedule


def bottom_levels(graph: nx.DiGraph, duration: dict[str, float]) -> dict[str, float]:
    """Longest path from each node to a sink, counting the node itself."""
    level: dict[str, float] = {}
    for node in reversed(list(nx.topological_sort(graph))):
        tail = max((level[s] for s in graph.successors(node)), default=0.0)
        level[node] = duration[node] + tail
    return level


def schedule(graph: nx.DiGraph, duration: dict[str, float], controller: dict[str, str],
             limit: int, controller_limits: dict[str, int],
             groups: dict[str, list[str]] | None = None, group_limits: dict[str, int] | None = None) -> Schedule:
    """``groups`` maps an operation to the concurrency groups it counts against."""
    groups = groups or {}
    group_limits = group_limits or {}
    level = bottom_levels(graph, duration)
    waiting = {n: graph.in_degree(n) for n in graph.nodes}
    # One ready queue per controller, so a saturated controller costs nothing
    # to skip: each wave looks only at the head of each queue.
    ready: dict[str, list[tuple[float, str]]] = {}

    def make_ready(node: str) -> None:
        heapq.heappush(ready.setdefault(controller[node], []), (-level[node], node))

    for node, count in waiting.items():
        if count == 0:
            make_ready(node)
    waves: list[list[str]] = []
    makespan = 0.0
    while any(ready.values()):
        heads = [(queue[0], ctrl) for ctrl, queue in ready.items() if queue]
        heapq.heapify(heads)
        used: Counter[str] = Counter()
        in_group: Counter[str] = Counter()
        deferred: list[tuple[str, tuple[float, str]]] = []
        wave: list[str] = []
        while heads and len(wave) < limit:
            _, ctrl = heapq.heappop(heads)
            queue = ready[ctrl]
            item = heapq.heappop(queue)
            node = item[1]
            if any(in_group[g] >= group_limits[g] for g in groups.get(node, ())):
                deferred.append((ctrl, item))  # its group is full in this wave
            else:
                wave.append(node)
                used[ctrl] += 1
                in_group.update(groups.get(node, ()))
            cap = controller_limits.get(ctrl)
            if queue and (cap is None or used[ctrl] < cap):
                heapq.heappush(heads, (queue[0], ctrl))
        for ctrl, item in deferred:
            heapq.heappush(ready[ctrl], item)
        for node in wave:
            for succ in graph.successors(node):
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    make_ready(succ)
        wave.sort()
        waves.append(wave)
        makespan += max(duration[n] for n in wave)
    critical = max(level.values(), default=0.0)
    return Schedule(waves=waves, makespan=makespan, critical_path=critical)
