"""take_ready: how both the planner's waves and the executor's dispatch take ready operations."""

import heapq

from planner.schedule import take_ready


def queues(**by_controller: list[tuple[float, str]]) -> dict[str, list[tuple[float, str]]]:
    ready = {ctrl: list(items) for ctrl, items in by_controller.items()}
    for items in ready.values():
        heapq.heapify(items)
    return ready


def test_longest_path_first_within_the_global_room():
    ready = queues(a=[(-5.0, "a1"), (-1.0, "a2")], b=[(-3.0, "b1")])
    assert take_ready(ready, 2, {}, {}, {}) == ["a1", "b1"]
    assert ready == {"a": [(-1.0, "a2")], "b": []}


def test_what_is_running_counts_against_controller_and_group_limits():
    ready = queues(a=[(-5.0, "a1"), (-4.0, "a2")], b=[(-3.0, "b1"), (-2.0, "b2")])
    groups = {"b1": ["g"], "b2": ["g"]}
    # a has one of its two slots busy, group g one of its two: one more of each fits
    taken = take_ready(ready, 10, {"a": 2}, groups, {"g": 2}, controller_busy={"a": 1}, group_busy={"g": 1})
    assert taken == ["a1", "b1"]
    # held back by the full group, b2 is still ready; a2 waits for a's slot
    assert sorted(op for items in ready.values() for _, op in items) == ["a2", "b2"]


def test_no_room_takes_nothing():
    ready = queues(a=[(-1.0, "a1")])
    assert take_ready(ready, 0, {}, {}, {}) == []
    assert ready == {"a": [(-1.0, "a1")]}


def test_busy_counts_are_not_changed():
    busy = {"a": 1}
    take_ready(queues(a=[(-1.0, "a1")]), 5, {"a": 3}, {}, {}, controller_busy=busy)
    assert busy == {"a": 1}
