"""The producing path builds its plan without re-validating it (planner.plan.trusted)
and writes it without a dict copy (Plan.to_json): what it gives must be exactly
what validation and ``model_dump`` give. Reading a plan still validates it."""

from __future__ import annotations

import json

import pytest

from domain.project import load_project
from planner.core import make_plan
from planner.plan import CostLevel, Edge, Plan, PlannedOperation, maker, trusted
from planner.schedule import schedule, topological_order
from tests.test_bounded_planning import add_policy


def _dumped(plan: Plan) -> str:
    """plan.json as ordo wrote it before: ``model_dump`` with sorted keys."""
    return json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":")) + "\n"


@pytest.fixture
def plan(vfw_copy) -> Plan:
    """The vFW plan with concurrency groups and an advisory violation."""
    add_policy(vfw_copy, "groups.lp", "% groups\ngroup(R,T) :- located(R,T).\ngroup_limit(T,2) :- target(T).\n")
    ordo = vfw_copy / "ordo.yaml"
    ordo.write_text(ordo.read_text().replace("policies:\n", "policies:\n  enforcement:\n"
                                             "    capacity: { level: advisory }\n", 1))
    made = make_plan(load_project(vfw_copy)).plan
    assert made.violations and made.groups and made.placements
    assert any(c.placement is None for c in made.resource_changes)
    return made


def test_a_built_plan_is_what_strict_validation_gives(plan):
    # strict: tuples where the model has tuples, floats where it has floats, every name valid
    again = Plan.model_validate(plan.model_dump(), strict=True)
    assert again == plan
    assert again.model_dump() == plan.model_dump()
    assert again.model_fields_set == plan.model_fields_set
    for op in plan.operations:
        assert PlannedOperation.model_validate(op.model_dump(), strict=True) == op
    assert Plan.from_json(plan.to_json()) == plan


def test_plan_json_is_model_dump_with_sorted_keys(plan):
    plan.operation(plan.operations[0].id)   # caches the lookup in the plan's __dict__: not a field
    assert plan.to_json() == _dumped(plan)
    read = Plan.from_json(plan.to_json())
    assert read.to_json() == _dumped(read) == plan.to_json()
    for cost in ((CostLevel(priority=1, cost=9, bound=4), CostLevel(priority=0, cost=2)), ()):
        changed = plan.model_copy(update={"cost": cost, "status": "satisfiable"})
        assert changed.to_json() == _dumped(changed)
    assert '"bound":4' in changed.model_copy(update={"cost": (CostLevel(priority=1, cost=9, bound=4),)}).to_json()


def test_trusted_takes_every_field_and_nothing_else():
    edge = trusted(Edge, before="a/x", after="b/y", rules=("r.lp:1",))
    assert edge == Edge(before="a/x", after="b/y", rules=("r.lp:1",))
    with pytest.raises(TypeError, match="rules"):
        trusted(Edge, before="a/x", after="b/y")
    with pytest.raises(TypeError, match="extra"):
        trusted(Edge, before="a/x", after="b/y", rules=(), extra=1)
    with pytest.raises(ValueError, match="frozen"):
        edge.before = "c/z"   # still a frozen model
    new_edge = maker(Edge)    # the same, for many parts: they share one set of the fields given
    first, second = new_edge(before="a/x", after="b/y", rules=()), new_edge(before="b/y", after="c/z", rules=())
    assert first.model_fields_set is second.model_fields_set and first.model_fields_set == set(Edge.model_fields)
    changed = first.model_copy(update={"rules": ("r.lp:2",)})
    assert changed.rules == ("r.lp:2",) and first.rules == ()
    assert second.model_fields_set == {"before", "after", "rules"}
    with pytest.raises(TypeError, match="rules"):
        new_edge(before="a/x", after="b/y")


def test_schedule_with_the_callers_order_is_the_same():
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": []}
    duration = {"a": 1.0, "b": 3.0, "c": 1.0, "d": 2.0, "e": 5.0}
    controller = {"a": "x", "b": "y", "c": "x", "d": "y", "e": "x"}
    for limit in (1, 2, 3):
        assert (schedule(graph, duration, controller, limit, {"x": 1}, order=topological_order(graph))
                == schedule(graph, duration, controller, limit, {"x": 1}))
    with pytest.raises(ValueError, match="cycle"):
        schedule({"a": ["b"], "b": ["a"]}, {"a": 1.0, "b": 1.0}, {"a": "x", "b": "x"}, 1, {})


def test_plain_text_output_is_made_safe_line_by_line():
    import io

    from rich.console import Console

    from ordo.render import print_lines, terminal_safe, terminal_safe_lines

    hostile = ["plain", "esc \x1b[31m red", "bidi \u202e txt", "", "nul \x00 and del \x7f", "tab\tok"]
    text = "\n".join(hostile)
    assert terminal_safe_lines(text) == "\n".join(terminal_safe(line) for line in hostile)
    for lines in (hostile, hostile + ["a line\nbreak inside", "cr\r"]):
        out = io.StringIO()
        print_lines(Console(file=out), [(line, "") for line in lines])
        assert out.getvalue() == "\n".join(terminal_safe(line) for line in lines) + "\n"


def test_symbol_texts_past_the_buffer_are_whole(monkeypatch):
    import clingo

    import planner.solve as solve

    terms = ['op("db-1","start")', f'place("{"x" * 70_000}","t")', "a", r'g("q \"x\" \\ y")', "(1,(a,b),())"]
    symbols = [clingo.parse_term(t) for t in terms]
    assert solve.symbol_texts(symbols) == [str(sym) for sym in symbols]
    monkeypatch.setattr(solve, "TEXT_BUFFER", 8)   # every text but "a" longer than the buffer
    assert solve.symbol_texts(symbols) == [str(sym) for sym in symbols]
