"""Every bundled example checks clean and plans, as its README says."""

from __future__ import annotations

import pytest

from domain.project import load_project
from planner.check import check
from planner.core import make_plan
from tests.conftest import EXAMPLES

VCPE = EXAMPLES / "vcpe"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if (p / "ordo.yaml").exists()))
def test_example_is_valid_and_plans(example):
    root = EXAMPLES / example
    assert [str(d) for d in check(root)] == []
    outcome = make_plan(load_project(root))
    assert outcome.status == "optimal", outcome.explanation
    # each request is written against the project's inventory or the deployed one
    inventories = [None] + sorted(root.glob("inventory-*.yaml"))
    for request in sorted((root / "requests").glob("*.yaml")):
        results = [[str(d) for d in check(root, request, inventory)] for inventory in inventories]
        assert [] in results, (request.name, results)


def test_vcpe_add_customer_touches_only_the_new_customer():
    outcome = make_plan(load_project(VCPE, VCPE / "requests/add-customer.yaml", VCPE / "inventory-deployed.yaml"))
    plan = outcome.plan
    assert outcome.status == "optimal"
    assert sorted(c.resource for c in plan.resource_changes) == [
        "vbrg-c5", "vbrg-c5-base", "vcpe-cust-5", "vg-c5", "vg-c5-base"]
    # the vG goes where its vGMUX is (vg-follows-vgmux.lp)
    assert plan.placements["vg-c5"] == plan.placements["vgmux"]


def test_vcpe_policies_shape_the_plan():
    plan = make_plan(load_project(VCPE)).plan
    rules = {r for e in plan.edges for r in e.rules}
    assert any(r.startswith("policies/brg-after-vg.lp:") for r in rules)
    assert any(r.startswith("policies/vg-follows-vgmux.lp:") for r in rules)
    for n in range(1, 5):
        assert plan.placements[f"vg-c{n}"] == plan.placements["vgmux"]
    assert plan.placements["vdns-a"] != plan.placements["vdns-b"]


def test_vcpe_deployed_inventory_is_converged():
    plan = make_plan(load_project(VCPE, None, VCPE / "inventory-deployed.yaml")).plan
    assert plan.operations == ()
