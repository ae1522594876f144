"""The vFW plans respect every real dependency of SO's macro templates,
and only those: independent branches are not serialised."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from domain.project import load_project
from planner.core import make_plan
from planner.plan import Plan
from tests.conftest import VFW

# SO's Service-Macro-Create and -Delete templates as (resource type, operation),
# in template order (SO's building-block templates for macro flows). ordo's vnf lifecycle names
# ControllerExecutionBB(vnf, config-*) as operations of the vnf.
SO_CREATE = [
    ("service", "assign"), ("network", "assign"), ("vnf", "assign"), ("volume-group", "assign"),
    ("vf-module", "assign"), ("vnf", "config-assign"), ("network", "create"), ("network", "activate"),
    ("volume-group", "create"), ("volume-group", "activate"), ("vf-module", "create"),
    ("vf-module", "activate"), ("vnf", "config-deploy"), ("vnf", "activate"), ("service", "activate"),
]
SO_DELETE = [
    ("vf-module", "deactivate"), ("vf-module", "delete"), ("volume-group", "deactivate"),
    ("volume-group", "delete"), ("vnf", "deactivate"), ("network", "deactivate"), ("network", "delete"),
    ("service", "deactivate"), ("vf-module", "unassign"), ("volume-group", "unassign"), ("vnf", "unassign"),
    ("network", "unassign"), ("service", "unassign"),
]


def plan_of(request: str, inventory: str | None = None) -> tuple[Plan, object]:
    project = load_project(VFW, VFW / "requests" / request, VFW / inventory if inventory else None)
    outcome = make_plan(project)
    assert outcome.plan is not None, outcome.explanation
    return outcome.plan, project.model


def dag(plan: Plan) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(op.id for op in plan.operations)
    graph.add_edges_from((e.before, e.after) for e in plan.edges)
    return graph


def _collector(plan: Plan):
    """A set of dependencies and a function that adds one when both operations are planned."""
    ops = {op.id for op in plan.operations}
    deps: set[tuple[str, str]] = set()

    def dep(a: str, b: str) -> None:
        if a in ops and b in ops:
            deps.add((a, b))

    return deps, dep


def real_dependencies_create(plan: Plan, model) -> set[tuple[str, str]]:
    """Dependencies SO's create template encodes for a reason, written from the model."""
    deps, dep = _collector(plan)
    for name, res in model.resources.items():
        lifecycle = ["assign", "create", "activate"] if res.type != "vnf" else [
            "assign", "config-assign", "config-deploy", "activate"]
        for first, second in zip(lifecycle, lifecycle[1:], strict=False):
            dep(f"{name}/{first}", f"{name}/{second}")
        if res.part_of:
            dep(f"{res.part_of}/assign", f"{name}/assign")     # a child after its parent is assigned
            dep(f"{name}/activate", f"{res.part_of}/activate")  # a parent activated after its parts
        for kind, used in res.relations:
            if kind == "uses":                                # networks and volume groups active first
                dep(f"{used}/activate", f"{name}/create")
        if res.type == "vf-module":                           # config-deploy needs the VMs up
            dep(f"{name}/activate", f"{res.part_of}/config-deploy")
    return deps


def real_dependencies_delete(plan: Plan, model) -> set[tuple[str, str]]:
    """Dependencies SO's delete template encodes for a reason, written from the model."""
    deps, dep = _collector(plan)
    for name, res in model.resources.items():
        for first, second in [("deactivate", "delete"), ("delete", "unassign"), ("deactivate", "unassign")]:
            dep(f"{name}/{first}", f"{name}/{second}")
        if res.part_of:
            dep(f"{name}/deactivate", f"{res.part_of}/deactivate")
            dep(f"{name}/unassign", f"{res.part_of}/unassign")
        for kind, used in res.relations:
            if kind == "uses":                                # users gone before what they use stops
                dep(f"{name}/delete", f"{used}/deactivate")
    return deps


def random_linear_orders(graph: nx.DiGraph, count: int, seed: int = 7):
    """Random topological orders: any of them is a schedule a serial executor may pick."""
    rng = random.Random(seed)
    for _ in range(count):
        indegree = {n: graph.in_degree(n) for n in graph}
        ready = sorted(n for n, d in indegree.items() if d == 0)
        order = []
        while ready:
            node = ready.pop(rng.randrange(len(ready)))
            order.append(node)
            for succ in graph.successors(node):
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
        yield order


@pytest.mark.parametrize("request_file,inventory,deps_of,expected_ops", [
    ("instantiate.yaml", None, real_dependencies_create, 32),
    ("delete.yaml", "inventory-deployed.yaml", real_dependencies_delete, 26),
])
def test_every_linear_order_respects_every_real_dependency(request_file, inventory, deps_of, expected_ops):
    plan, model = plan_of(request_file, inventory)
    graph = dag(plan)
    assert nx.is_directed_acyclic_graph(graph)
    assert len(plan.operations) == expected_ops
    deps = deps_of(plan, model)
    assert len(deps) > 20
    # Every linear order of the DAG respects a dependency exactly when the DAG
    # has a path for it; check that, and sample orders as a second witness.
    closure = {n: nx.descendants(graph, n) for n in graph}
    missing = sorted((a, b) for a, b in deps if b not in closure[a])
    assert not missing, f"dependencies the plan does not enforce: {missing}"
    for order in random_linear_orders(graph, 200):
        position = {n: i for i, n in enumerate(order)}
        assert all(position[a] < position[b] for a, b in deps)


@pytest.mark.parametrize("request_file,inventory,template", [
    ("instantiate.yaml", None, SO_CREATE),
    ("delete.yaml", "inventory-deployed.yaml", SO_DELETE),
])
def test_so_template_order_is_one_valid_order(request_file, inventory, template):
    """SO's strictly serial order is a linear order of ordo's DAG: ordo adds no
    dependency that SO's template would break, it only drops serialisation."""
    plan, model = plan_of(request_file, inventory)
    rank = {step: i for i, step in enumerate(template)}
    for edge in plan.edges:
        a, b = plan.operation(edge.before), plan.operation(edge.after)
        ra, rb = rank[(a.type, a.operation)], rank[(b.type, b.operation)]
        assert ra < rb or (ra == rb and a.resource != b.resource), (
            f"{edge.before} -> {edge.after} ({', '.join(edge.rules)}) reverses SO's order")
    covered = {(op.type, op.operation) for op in plan.operations}
    assert covered <= set(rank)


@pytest.mark.parametrize("request_file,inventory", [
    ("instantiate.yaml", None), ("delete.yaml", "inventory-deployed.yaml"),
])
def test_independent_vnfs_are_not_serialised(request_file, inventory):
    plan, model = plan_of(request_file, inventory)
    graph = dag(plan)
    subtree = {v: {v} | {n for n, r in model.resources.items() if r.part_of == v}
               for v in ("vpg", "vsink", "vfw")}
    for first, second in [("vpg", "vsink"), ("vpg", "vfw"), ("vsink", "vfw")]:
        ops1 = [o.id for o in plan.operations if o.resource in subtree[first]]
        ops2 = [o.id for o in plan.operations if o.resource in subtree[second]]
        for a in ops1:
            for b in ops2:
                assert not nx.has_path(graph, a, b) and not nx.has_path(graph, b, a), (a, b)
        # and the schedule really runs them side by side
        wave_of = {op.id: op.wave for op in plan.operations}
        assert {wave_of[a] for a in ops1} & {wave_of[b] for b in ops2}, (first, second)


def test_waves_respect_edges_and_limits():
    plan, model = plan_of("instantiate.yaml")
    wave = {op.id: op.wave for op in plan.operations}
    for edge in plan.edges:
        assert wave[edge.before] < wave[edge.after]
    limits = {"sdnc": 4, "openstack": 3, "cds": 2, "so": 10}
    for ops in plan.waves:
        assert len(ops) <= plan.concurrency
        for ctrl, cap in limits.items():
            assert sum(1 for o in ops if plan.operation(o).controller == ctrl) <= cap
    assert plan.critical_path <= plan.makespan


def cheapest_placements(model) -> tuple[int, list[dict[str, str]]]:
    """Every placement of the unplaced resources that needs capacity, by brute
    force: the least cost (prefer-cheaper-region: the target's cost x vcpu) of
    those that keep capacity and anti-affinity, and the placements that cost it."""
    movable = sorted(n for n, r in model.resources.items() if r.requires and r.placement is None)
    targets = sorted(model.targets)
    costs: dict[int, list[dict[str, str]]] = {}
    for choice in itertools.product(targets, repeat=len(movable)):
        where = dict(zip(movable, choice, strict=True))
        if any(sum(model.resources[r].requires.get(key, 0) for r in movable if where[r] == t) > cap
               for t in targets for key, cap in model.targets[t].capacity.items()):
            continue
        labelled = [(r, model.resources[r].labels.get("anti-affinity")) for r in movable]
        if any(a != b and la is not None and la == lb and model.targets[where[a]].zone == model.targets[where[b]].zone
               for a, la in labelled for b, lb in labelled):
            continue
        cost = sum(model.targets[where[r]].attributes["cost"] * model.resources[r].requires["vcpu"] for r in movable)
        costs.setdefault(cost, []).append(where)
    least = min(costs)
    return least, costs[least]


def test_instantiate_placements_and_cost():
    plan, model = plan_of("instantiate.yaml")
    assert plan.status == "optimal"
    least, cheapest = cheapest_placements(model)
    assert [(c.priority, c.cost) for c in plan.cost] == [(1, least)]
    assert cheapest == [plan.placements]  # the only placement that cheap
    assert plan.placements == {"vfw": "region-two", "vpg": "region-one", "vsink": "region-one"}
    assert least == 26  # vfw 8 vcpu x 1 + vpg 2 x 3 (not beside vfw) + vsink 4 x 3 (region-two is full)


def test_scale_out_touches_only_the_new_module():
    plan, model = plan_of("scale-out.yaml", "inventory-deployed.yaml")
    assert [op.id for op in plan.operations] == [
        "vpg-scale-1/activate", "vpg-scale-1/assign", "vpg-scale-1/create"]
    assert [c.resource for c in plan.resource_changes] == ["vpg-scale-1"]
    assert plan.counts() == {"create": 1, "change": 0, "delete": 0, "run": 0}
    # nothing moves, and the new module is not placed on its own: it is part of vpg, on region-one
    deployed = {name: r.placement for name, r in model.resources.items() if r.placement is not None}
    assert plan.placements == deployed and deployed["vpg"] == "region-one"
    assert "vpg-scale-1" not in plan.placements and model.resources["vpg-scale-1"].part_of == "vpg"


def test_converged_inventory_gives_no_changes():
    plan, _ = plan_of("instantiate.yaml", "inventory-deployed.yaml")
    assert plan.operations == () and plan.waves == ()


def test_delete_leaves_the_shared_network_alone():
    plan, _ = plan_of("delete.yaml", "inventory-deployed.yaml")
    assert all(op.resource != "onap-mgmt-net" for op in plan.operations)
    assert plan.counts() == {"create": 0, "change": 0, "delete": 10, "run": 0}
    reasons = {op.resource: op.reason for op in plan.operations}
    assert reasons["vfw-service"].startswith("requested: absent")
    assert reasons["vpg-base"].startswith("part of vpg, which goes away")


def test_every_edge_names_the_rule_that_made_it():
    plan, _ = plan_of("instantiate.yaml")
    rules = {r for e in plan.edges for r in e.rules}
    assert any(r.startswith("<base>/ordering.lp:") for r in rules)
    assert any(r.startswith("<base>/lifecycle.lp:") for r in rules)
    assert any(r.startswith("policies/config-after-modules.lp:") for r in rules)


def test_changed_params_are_updated_in_place():
    plan, _ = plan_of("change-network.yaml", "inventory-deployed.yaml")
    assert [op.id for op in plan.operations] == ["protected-net/update"]
    change = plan.resource_changes[0]
    assert change.actions == ("update",) and change.before == change.after == "active"
    assert change.reason == "requested: active (now active); params changed: cidr"
    assert plan.counts() == {"create": 0, "change": 1, "delete": 0, "run": 0}


def test_change_without_an_update_operation_has_no_plan(vfw_copy):
    catalog = vfw_copy / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("    update: update ", "    # no update "))
    project = load_project(vfw_copy, vfw_copy / "requests/change-network.yaml",
                           vfw_copy / "inventory-deployed.yaml")
    outcome = make_plan(project)
    assert outcome.status == "no_plan"
    [conflict] = outcome.explanation.conflicts
    assert conflict.description == "Params changed, but the type has no operation to apply them in place."
    assert conflict.resources == ("protected-net",) and conflict.policy == "lifecycle"


def test_requested_runs_follow_the_state_they_need():
    plan, _ = plan_of("healthcheck.yaml", "inventory-deployed.yaml")
    assert [op.id for op in plan.operations] == ["vfw/healthcheck", "vpg/healthcheck"]
    assert plan.counts() == {"create": 0, "change": 0, "delete": 0, "run": 2}
    # on a fresh inventory the VNFs are brought up first and checked once active
    plan, _ = plan_of("healthcheck.yaml")
    edges = {(e.before, e.after) for e in plan.edges}
    assert ("vfw/activate", "vfw/healthcheck") in edges
    assert plan.operation("vfw/healthcheck").wave > plan.operation("vfw/activate").wave
