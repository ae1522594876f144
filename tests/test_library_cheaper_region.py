"""prefer-cheaper-region minimises only what a dearer target costs above a
resource's cheapest (a constant known when grounding), and adds the constant
back: the cost a plan reports is today's definition (target cost x size per
new placement), and the optimum is the one the direct encoding finds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from domain.project import load_project
from planner.core import load_policies, make_plan
from planner.facts import model_facts
from planner.program import STRICT
from planner.solve import _ground
from tests.conftest import VFW

# The encoding before the rewrite: every placement's whole cost minimised.
DIRECT = """%@ name: direct-cheaper-region
%@ enforcement: soft
#minimize { C*A@1,R : place(R,T), attr(T,"cost",C), requires(R,"vcpu",A), not placed(R,T) }.
"""


def _inventory(project: Path, inventory: str, change) -> None:
    data = yaml.safe_load((project / inventory).read_text())
    change(data)
    (project / inventory).write_text(yaml.safe_dump(data))


def _no_cost_and_a_negative_one(data: dict) -> None:
    targets = data["targets"]
    del targets["region-two"]["attributes"]["cost"]     # costs nothing (as before)
    targets["region-three"]["attributes"]["cost"] = -2
    for target in targets.values():
        target["capacity"]["vcpu"] = 20


def _vsink_gone(data: dict) -> None:
    """vFW and vPG placed already (they cost nothing where they are), vSink new."""
    data["resources"] = [r for r in data["resources"] if not r["name"].startswith("vsink")]


def _both(data: dict) -> None:
    _vsink_gone(data)
    _no_cost_and_a_negative_one(data)


SCENARIOS = {
    "instantiate": (None, None),
    "no cost, negative cost": (None, _no_cost_and_a_negative_one),
    "some placed already": ("inventory-deployed.yaml", _vsink_gone),
    "some placed already, no cost, negative cost": ("inventory-deployed.yaml", _both),
}


def _cost(project: Path, inventory: str | None) -> tuple[int, dict[str, str], object]:
    loaded = load_project(project, None, project / inventory if inventory else None)
    plan = make_plan(loaded).plan
    assert plan.status == "optimal"
    return plan.cost[0].cost, dict(plan.placements), loaded.model


def _direct_cost(placements: dict[str, str], model) -> int:
    """Today's definition, from the plan's placements: a new placement costs
    the target's cost times the resource's vcpu."""
    total = 0
    for name, target in placements.items():
        res = model.resources[name]
        cost = model.targets[target].attributes.get("cost")
        if res.placement != target and cost is not None and "vcpu" in res.requires:
            total += cost * res.requires["vcpu"]
    return total


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_optimum_and_its_reported_cost_are_todays(tmp_path, scenario):
    inventory, change = SCENARIOS[scenario]
    new, direct = tmp_path / "new", tmp_path / "direct"
    for project in (new, direct):
        shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
        if change:
            _inventory(project, inventory or "inventory.yaml", change)
    (direct / "policies" / "direct.lp").write_text(DIRECT)
    text = (direct / "ordo.yaml").read_text().replace("    - prefer-cheaper-region\n", "")
    listed = "    - policies/config-after-modules.lp\n"
    (direct / "ordo.yaml").write_text(text.replace(listed, listed + "    - policies/direct.lp\n"))
    cost, placements, model = _cost(new, inventory)
    direct_cost, _, _ = _cost(direct, inventory)
    assert cost == direct_cost == _direct_cost(placements, model)


def test_the_least_is_a_constant_of_the_grounding():
    loaded = load_project(VFW)
    ctl, messages = _ground(load_policies(loaded), model_facts(loaded.model), STRICT, [])
    assert messages == []   # no note from clingo (such as a global variable in an aggregate's tuple)
    least = {str(a.symbol): a.is_fact for a in ctl.symbolic_atoms.by_signature("cheaper_region_least", 2)}
    # vcpu 8, 2, 4 (vfw, vpg, vsink) at the cheapest region's cost of 1
    assert least == {'cheaper_region_least("vfw",8)': True, 'cheaper_region_least("vpg",2)': True,
                     'cheaper_region_least("vsink",4)': True}
