"""Each example policy changes the plan: remove it, and the plan differs as expected."""

from __future__ import annotations

from pathlib import Path

import yaml

from domain.project import load_project
from planner.core import make_plan


def set_library(project: Path, names: list[str]) -> None:
    data = yaml.safe_load((project / "ordo.yaml").read_text())
    data["policies"]["library"] = names
    (project / "ordo.yaml").write_text(yaml.safe_dump(data))


def without(project: Path, name: str) -> None:
    data = yaml.safe_load((project / "ordo.yaml").read_text())
    set_library(project, [n for n in data["policies"]["library"] if n != name])


def plan(project: Path, request: str = "instantiate.yaml", inventory: str | None = None):
    loaded = load_project(project, project / "requests" / request, project / inventory if inventory else None)
    return make_plan(loaded)


def test_capacity_keeps_a_region_from_overfilling(vfw_copy):
    # With capacity: vpg and vsink share region-one (6 of 10 vcpu), vfw alone on region-two.
    assert plan(vfw_copy).plan.placements == {"vfw": "region-two", "vpg": "region-one", "vsink": "region-one"}
    without(vfw_copy, "capacity")
    # Without it the cheaper region takes vsink too: 12 vcpu on a 10-vcpu region.
    result = plan(vfw_copy).plan
    assert result.placements == {"vfw": "region-two", "vpg": "region-one", "vsink": "region-two"}
    assert result.cost[0].cost == 4 * 1 + 8 * 1 + 2 * 3


def test_anti_affinity_splits_the_traffic_path(vfw_copy):
    without(vfw_copy, "anti-affinity")
    result = plan(vfw_copy).plan
    # vpg and vfw may now share region-two; vsink moves to region-one to fit.
    assert result.placements == {"vfw": "region-two", "vpg": "region-two", "vsink": "region-one"}
    assert result.cost[0].cost == 2 * 1 + 8 * 1 + 4 * 3


def test_prefer_cheaper_region_is_the_objective(vfw_copy):
    assert plan(vfw_copy).plan.status == "optimal"
    without(vfw_copy, "prefer-cheaper-region")
    result = plan(vfw_copy).plan
    assert result.status == "satisfiable"  # any valid placement will do: nothing to optimise
    assert result.cost == ()


def test_protected_resources_block_deletion(vfw_copy):
    inventory = vfw_copy / "inventory-deployed.yaml"
    data = yaml.safe_load(inventory.read_text())
    for res in data["resources"]:
        if res["name"] == "vfw-logs":
            res["labels"] = {"protected": True}
    inventory.write_text(yaml.safe_dump(data))
    outcome = plan(vfw_copy, "delete.yaml", "inventory-deployed.yaml")
    assert outcome.status == "no_plan"
    assert [(c.policy, c.resources) for c in outcome.explanation.conflicts] == [
        ("protected-resources", ("vfw-logs",))]
    without(vfw_copy, "protected-resources")
    outcome = plan(vfw_copy, "delete.yaml", "inventory-deployed.yaml")
    assert outcome.status == "optimal" or outcome.status == "satisfiable"
    assert "vfw-logs/delete" in {op.id for op in outcome.plan.operations}


def test_config_after_modules_orders_config_deploy(vfw_copy):
    before = plan(vfw_copy).plan
    extra = [e for e in before.edges if e.rules == ("policies/config-after-modules.lp:8",)]
    assert {(e.before, e.after) for e in extra} >= {("vfw-base/activate", "vfw/config-deploy"),
                                                    ("vpg-base/activate", "vpg/config-deploy")}
    (vfw_copy / "policies" / "config-after-modules.lp").unlink()
    text = (vfw_copy / "ordo.yaml").read_text().replace("    - policies/config-after-modules.lp\n", "")
    text = text.replace("  files:                       # this project's own rule files\n", "  files: []\n")
    (vfw_copy / "ordo.yaml").write_text(text)
    after = plan(vfw_copy).plan
    edges = {(e.before, e.after) for e in after.edges}
    assert ("vfw-base/activate", "vfw/config-deploy") not in edges
    # config-deploy may now run before the VMs are up: it moves to an earlier wave
    assert after.operation("vfw/config-deploy").wave < before.operation("vfw/config-deploy").wave


def test_deliberate_conflict_names_policy_and_line():
    from tests.conftest import VFW

    loaded = load_project(VFW, VFW / "requests" / "delete-mgmt-net.yaml", VFW / "inventory-deployed.yaml")
    outcome = make_plan(loaded)
    assert outcome.status == "no_plan"
    named = {(c.policy, c.location) for c in outcome.explanation.conflicts}
    assert ("protected-resources", "<library>/protected-resources.lp:8") in named
    assert ("ordering", "<base>/ordering.lp:34") in named
    assert "drop or relax: ordering, protected-resources" in outcome.explanation.summary


def test_ordering_cycle_is_reported_with_its_rules(vfw_copy):
    (vfw_copy / "policies" / "backwards.lp").write_text(
        "% backwards: activate the service before anything else (a mistake).\n"
        'before(op(S,"activate"), X) :- resource(S,"service"), op(S,"activate"), op(R,O), R != S,\n'
        '                                X = op(R,O).\n')
    text = (vfw_copy / "ordo.yaml").read_text().replace(
        "    - policies/config-after-modules.lp", "    - policies/config-after-modules.lp\n    - policies/backwards.lp")
    (vfw_copy / "ordo.yaml").write_text(text)
    outcome = plan(vfw_copy)
    assert outcome.status == "no_plan"
    assert outcome.explanation.kind == "cycle"
    assert "vfw-service/activate" in outcome.explanation.cycle
    flat = {r for hop in outcome.explanation.cycle_rules for r in hop}
    assert "policies/backwards.lp:2" in flat


def test_check_warns_about_labels_no_model_uses(vfw_copy):
    from planner.check import check

    (vfw_copy / "policies" / "config-after-modules.lp").write_text(
        "%@ name: typo\n%@ owner: test\n"
        "% typo: the label key is anti-affinity\n"
        ':- label(R1,"anti_affinity",G), label(R2,"anti_affinity",G), R1 < R2, located(R1,T), located(R2,T).\n'
        'before(X,Y) :- relation("uses_",A,B), raises(B,"active",X), raises(A,"created",Y).\n')
    found = [str(d) for d in check(vfw_copy)]
    assert found == [
        "policies/config-after-modules.lp:4:4: warning: label key 'anti_affinity' is in no model file "
        "read (did you mean 'anti-affinity'?)",
        "policies/config-after-modules.lp:4:33: warning: label key 'anti_affinity' is in no model file "
        "read (did you mean 'anti-affinity'?)",
        "policies/config-after-modules.lp:5:16: warning: relationship kind 'uses_' is in no model file "
        "read (did you mean 'uses'?)",
    ]


def test_capacity_conflict_names_target_and_the_resources_on_it(vfw_copy):
    inventory = vfw_copy / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("vcpu: 10,", "vcpu: 6,"))
    outcome = plan(vfw_copy)
    assert outcome.status == "no_plan"
    [conflict] = outcome.explanation.conflicts
    assert conflict.policy == "capacity" and conflict.location == "<library>/capacity.lp:9"
    assert dict(conflict.bindings)["K"] == "vcpu" and dict(conflict.bindings)["C"] == "6"
    assert "vfw" in conflict.resources  # 8 vcpu fits on no 6-vcpu region
    assert [g[0] for g in outcome.explanation.goals] == list(conflict.resources)


def test_capacity_conflict_names_the_part_that_overflows_the_target(vfw_copy):
    # a VF module added to vPG on region-one, 7 vcpu there: the conflict named vpg and vsink (6, which fit), not
    # the new part that overflows (parts have no place/2 of their own: a sweep's)
    inventory = vfw_copy / "inventory-deployed.yaml"
    text = inventory.read_text()
    one = "  region-one:\n    zone: az1\n    capacity: { vcpu: 10,"
    assert text.count(one) == 1, text[:400]
    inventory.write_text(text.replace(one, one.replace("vcpu: 10,", "vcpu: 7,")))
    outcome = plan(vfw_copy, "scale-out.yaml", "inventory-deployed.yaml")
    assert outcome.status == "no_plan"
    [conflict] = outcome.explanation.conflicts
    assert conflict.policy == "capacity" and conflict.resources == ("vpg", "vpg-scale-1", "vsink"), conflict


def test_anti_affinity_grounds_in_proportion_to_the_targets_of_a_zone(vfw_copy):
    """A pair of labelled resources was read through every pair of targets of one zone: the square
    of the targets a zone has (the sweep of 6 December: 500 targets in 7 zones grounded 5.6 million
    atoms for 1,000 resources, 1,000 targets went past 6 GB). Doubling the targets of each zone now
    about doubles the ground program, and the plan is the same."""
    def with_targets(per_zone: int) -> tuple[int, dict]:
        inventory = vfw_copy / "inventory.yaml"
        data = yaml.safe_load(inventory.read_text())
        data["targets"] = {f"region-{zone}-{i:03d}": {"zone": f"az{zone}", "capacity": {"vcpu": 10, "memory_gb": 64},
                                                       "attributes": {"cost": 1 + zone}}
                           for zone in (1, 2, 3) for i in range(per_zone)}
        inventory.write_text(yaml.safe_dump(data))
        result = plan(vfw_copy).plan
        zones = {res: target.split("-")[1] for res, target in result.placements.items()}
        return result.ground_rules, zones

    small, zones_small = with_targets(40)
    large, zones_large = with_targets(80)
    assert large < 2.3 * small, (small, large)
    assert zones_small == zones_large and len({zones_small[r] for r in ("vfw", "vpg")}) == 2
