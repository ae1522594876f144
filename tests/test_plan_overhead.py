"""What cut the Python overhead of `ordo plan` keeps doing what it did.

The pause of the garbage collector, the plain-dict scheduling and cycle check,
and the YAML loader's shortcuts (tag cache, no alias count without anchors).
Speed itself is measured by benchmarks/ordo_probe.py, not here.
"""

from __future__ import annotations

import gc

import networkx as nx
import pytest
import yaml

import planner.core
from domain import load_project, yamlsrc
from domain import project as project_module
from domain.errors import DiagnosticsError
from domain.gcpause import paused_gc
from planner.core import make_plan
from planner.decode import decode, find_cycle
from planner.schedule import bottom_levels, schedule, topological_order
from planner.solve import SolveResult
from tests.conftest import EXAMPLES


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    # as it was before, also when the test left it off (a later test in this worker expects it on)
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_gc_nests_and_restores(collector_on):
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_paused_gc_leaves_a_disabled_collector_disabled(collector_on):
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_paused_gc_restores_after_an_error(collector_on):
    with pytest.raises(ValueError), paused_gc():
        raise ValueError
    assert gc.isenabled()


def test_loading_and_planning_run_with_the_collector_paused(collector_on, monkeypatch):
    seen = {}
    real_build, real_facts = project_module.build_model, planner.core.model_facts
    monkeypatch.setattr(project_module, "build_model", _recording(real_build, seen, "load"))
    monkeypatch.setattr(planner.core, "model_facts", _recording(real_facts, seen, "plan"))
    outcome = make_plan(load_project(EXAMPLES / "vfw"))
    assert outcome.plan is not None
    assert seen == {"load": False, "plan": False}
    assert gc.isenabled()


def _recording(func, seen: dict, key: str):
    def wrapped(*args, **kwargs):
        seen[key] = gc.isenabled()
        return func(*args, **kwargs)
    return wrapped


GRAPH = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": ["d"]}
DURATION = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.5, "e": 0.5}
CONTROLLER = {"a": "x", "b": "y", "c": "x", "d": "y", "e": "x"}


def _nx(succ: dict[str, list[str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(succ)
    graph.add_edges_from((a, b) for a, bs in succ.items() for b in bs)
    return graph


def test_schedule_on_successor_lists_is_the_schedule_on_a_networkx_graph():
    for limit in (1, 2, 3):
        plain = schedule(GRAPH, DURATION, CONTROLLER, limit, {"x": 1})
        graph = schedule(_nx(GRAPH), DURATION, CONTROLLER, limit, {"x": 1})
        assert plain == graph
    assert bottom_levels(GRAPH, DURATION) == {"a": 7.5, "b": 6.5, "c": 3.5, "d": 1.5, "e": 2.0}
    assert bottom_levels(_nx(GRAPH), DURATION) == bottom_levels(GRAPH, DURATION)


def test_topological_order_leaves_out_a_cycle():
    order = topological_order(GRAPH)
    assert sorted(order) == sorted(GRAPH)
    assert all(order.index(a) < order.index(b) for a, bs in GRAPH.items() for b in bs)
    cyclic = {"a": ["b"], "b": ["c"], "c": ["b"], "d": []}
    assert sorted(topological_order(cyclic)) == ["a", "d"]
    with pytest.raises(ValueError, match="cycle"):
        bottom_levels(cyclic, dict.fromkeys(cyclic, 1.0))


def _decoded(shown: list[str]):
    return decode(SolveResult(status="optimal", shown=shown))


def test_decoded_successors_graph_and_cycle():
    ops = ['op("a","create")', 'op("b","create")', 'op("c","create")']
    acyclic = _decoded(ops + ['__before(op("a","create"),op("b","create"),0)',
                              '__before(op("a","create"),op("c","create"),1)'])
    assert acyclic.successors == {"a/create": ["b/create", "c/create"], "b/create": [], "c/create": []}
    assert sorted(acyclic.graph.edges) == [("a/create", "b/create"), ("a/create", "c/create")]
    assert acyclic.cycle() == []
    cyclic = _decoded(ops + ['__before(op("a","create"),op("b","create"),0)',
                             '__before(op("b","create"),op("a","create"),1)'])
    assert sorted(cyclic.cycle()) == ["a/create", "b/create"]
    assert cyclic.cycle() == find_cycle(cyclic.graph)


SCALARS = ["a", "yes", "No", "on", "~", "null", "''", "1", "-7", "0x1F", "0o17", "1_000", "1.5", "1e3", ".inf",
           "-.Inf", ".nan", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "true", "'yes'", '"1"',
           # (a leading zero is YAML 1.1's octal: the fast builder read 012 as 12, PyYAML as 10)
           "012", "-012", "+0777", "0", "-0", "00", "08", "012.5", "0.5"]


@pytest.mark.parametrize("text", SCALARS)
def test_the_tag_cache_reads_scalars_as_pyyaml_does(tmp_path, text):
    # twice in one document: the second is read from the cache
    path = tmp_path / "doc.yaml"
    path.write_text(f"first: {text}\nsecond: [{text}, {text}]\n", encoding="utf-8")
    expected = yaml.safe_load(path.read_text(encoding="utf-8"))
    got = yamlsrc.load_yaml(path).data
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("text", [*SCALARS, "=", "<<"])
def test_the_tag_cache_gives_pyyaml_s_tags(text):
    document = f"{text}: [{text}, {text}, {{{text}: {text}}}]\n"

    def tags(node) -> list[str]:
        if isinstance(node, yaml.ScalarNode):
            return [node.tag]
        pairs = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
        return [node.tag] + [tag for child in pairs for tag in tags(child)]

    assert tags(yamlsrc._compose(document, yamlsrc._CLoader)) == tags(yaml.compose(document, yaml.SafeLoader))


def test_a_document_too_large_without_anchors_is_one_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlsrc, "MAX_NODES", 50)
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\na: 2\nitems:\n" + "".join(f"  - {i}\n" for i in range(60)), encoding="utf-8")
    with pytest.raises(DiagnosticsError) as caught:
        yamlsrc.load_yaml(path)
    assert [d.summary for d in caught.value.diagnostics] == [yamlsrc._too_large()]
    assert caught.value.diagnostics[0].line == 1


def test_anchors_still_get_the_alias_checks(tmp_path):
    path = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DiagnosticsError, match="document too large"):
        yamlsrc.load_yaml(path)
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &x\n  b: *x\n", encoding="utf-8")
    with pytest.raises(DiagnosticsError):
        yamlsrc.load_yaml(loop)
