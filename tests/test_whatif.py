"""What-if scenarios (`ordo whatif`) and plan comparison (`ordo plan --compare`)."""

from __future__ import annotations

import json

import pytest
import yaml

import planner.slice as slicing
from benchmarks.generate import write_project
from domain.project import load_project
from planner.core import load_policies, make_plan
from planner.diff import diff_plans
from planner.whatif import Scenario
from tests.conftest import VFW, run_ordo, run_ordo_process

FORBID_REGION_TWO = """%@ name: no-region-two
%@ description: Nothing is located in region-two.
%@ enforcement: hard

% nothing is located in region-two (it is being retired)
:- located(R,"region-two").
"""


def _json(run) -> dict:
    assert run.code == 0, run.text
    return json.loads(run.out)


def _placement(diff: dict, resource: str) -> tuple[str | None, str | None] | None:
    for change in diff["placements"]:
        if change["resource"] == resource:
            return change["before"], change["after"]
    return None


@pytest.fixture(scope="module")
def baseline():
    return make_plan(load_project(VFW)).plan


def _scenario(**options):
    scenario = Scenario.from_options(**options)
    project = load_project(VFW, scenario.request, scenario.inventory, list(scenario.with_policies))
    return make_plan(scenario.apply(project))


def test_same_plan_has_no_differences(baseline):
    diff = diff_plans(baseline, baseline)
    assert diff.empty and diff.comparable
    assert diff.to_dict()["placements"] == [] and diff.to_dict()["empty"] is True


def test_region_down_moves_vfw_and_costs_more(vfw_copy):
    run = run_ordo("whatif", "-C", vfw_copy, "--target-down", "region-two")
    assert run.code == 0, run.text
    lines = run.out.splitlines()
    assert lines[0].startswith("Baseline: 10 to create") and "cost 26@1" in lines[0]
    assert lines[1].startswith("Scenario (region-two down): 10 to create")
    assert "Placements changed\n  ~ vfw: region-two -> " in run.out
    assert "Cost\n  ~ priority 1: 26 -> " in run.out
    diff = _json(run_ordo("whatif", "-C", vfw_copy, "--target-down", "region-two", "--format", "json"))
    before, after = _placement(diff, "vfw")
    assert before == "region-two" and after not in (None, "region-two")
    assert all(change["after"] != "region-two" for change in diff["placements"])
    (cost,) = diff["cost"]
    assert cost["after"] > cost["before"] == 26
    assert diff["scenario"] == ["region-two down"]
    assert diff["operations"] == {"added": [], "removed": []}  # the same operations, elsewhere
    assert diff["base"]["digest"] != diff["other"]["digest"]    # a scenario plan is not the project's


def test_more_capacity_lets_vsink_join_the_cheap_region():
    scenario = _scenario(capacity=("region-two:vcpu=16",))
    diff = diff_plans(make_plan(load_project(VFW)), scenario)
    assert [(p.resource, p.before, p.after) for p in diff.placements] == [("vsink", "region-one", "region-two")]
    assert diff.cost == ((1, 26, 18),)
    assert not diff.operations_added and not diff.operations_removed


def test_without_anti_affinity_vpg_joins_vfw(vfw_copy):
    run = run_ordo("whatif", "-C", vfw_copy, "--without-policy", "anti-affinity")
    assert run.code == 0, run.text
    assert "  ~ vpg: region-one -> region-two" in run.out
    assert "~ priority 1: 26 -> 22 (-4)" in run.out


def test_with_policy_forbidding_a_region(vfw_copy, tmp_path):
    policy = tmp_path / "no-region-two.lp"
    policy.write_text(FORBID_REGION_TWO)
    diff = _json(run_ordo("whatif", "-C", vfw_copy, "--with-policy", policy, "--format", "json"))
    assert _placement(diff, "vfw")[0] == "region-two"
    assert all(change["after"] != "region-two" for change in diff["placements"])
    assert diff["scenario"] == [f"with policy {policy}"]


def test_the_policies_warnings_are_printed_as_ordo_plan_prints_them(vfw_copy, tmp_path):
    """whatif printed none of the policies' warnings ordo plan prints (a policy without its metadata)."""
    policy = tmp_path / "bare.lp"
    policy.write_text("unused(R) :- resource(R, _).\n")
    planned = run_ordo("plan", "-C", vfw_copy, "--policy", policy)
    run = run_ordo("whatif", "-C", vfw_copy, "--with-policy", policy, "--format", "json")
    warning = "bare.lp:1:1: warning: policy has no metadata"
    assert planned.err.count(warning) == 1 and run.code == 0 and run.err.count(warning) == 1, run.text
    _json(run)   # (stdout: the JSON alone)
    # one the baseline has too (a project's policy) is said once
    (vfw_copy / "policies" / "bare.lp").write_text(policy.read_text())
    project = yaml.safe_load((vfw_copy / "ordo.yaml").read_text())
    project["policies"]["files"] = [*project["policies"].get("files", []), "policies/bare.lp"]
    (vfw_copy / "ordo.yaml").write_text(yaml.safe_dump(project))
    run = run_ordo("whatif", "-C", vfw_copy, "--target-down", "region-two")
    assert run.code == 0 and run.err.count("policies/bare.lp:1:1: warning: policy has no metadata") == 1, run.text


def test_another_request_and_inventory(vfw_copy):
    run = run_ordo("whatif", "-C", vfw_copy, "--request", "requests/delete.yaml",
                   "--inventory", "inventory-deployed.yaml")
    assert run.code == 0, run.text
    assert "0 to create, 0 to change, 10 to delete" in run.out.splitlines()[1]
    assert "Operations added\n" in run.out and "Operations removed\n" in run.out
    assert "  + vf-module.vfw-base" in run.out and "delete         created -> assigned" in run.out
    assert "  ~ vfw: create (active) -> delete (absent)" in run.out
    assert "Makespan\n  ~ estimated 22s -> 10s (-12s)" in run.out


def test_order_changes_only_between_operations_both_plans_have():
    base = make_plan(load_project(VFW))
    other = _scenario(request=VFW / "requests/delete.yaml", inventory=VFW / "inventory-deployed.yaml")
    diff = diff_plans(base, other)
    common = {op.id for op in base.plan.operations} & {op.id for op in other.plan.operations}
    assert not common and not diff.edges_added and not diff.edges_removed
    assert [op.id for op in diff.operations_added] == sorted(op.id for op in other.plan.operations)


def test_scenario_without_plan_exits_3_with_explanation(vfw_copy):
    run = run_ordo("whatif", "-C", vfw_copy, "--target-down", "region-two", "--target-down", "region-three")
    assert run.code == 3, run.text
    assert "Scenario (region-two down; region-three down): no plan" in run.out
    # (a VNF placed on a region down is one violation, not one more for each of its new modules)
    assert "No plan exists: no plan satisfies every policy; drop or relax: avoid-refused-targets" in run.out
    assert "Traceback" not in run.text
    body = json.loads(run_ordo("whatif", "-C", vfw_copy, "--target-down", "region-two", "--target-down",
                               "region-three", "--format", "json").out)
    assert body["comparable"] is False and body["other"]["status"] == "no_plan"
    assert body["other"]["explanation"]["conflicts"][0]["policy"] == "avoid-refused-targets"
    # the side with a plan keeps its figures, as its cost: null only on the side without one
    before = body["base"]
    assert [c["before"] for c in body["cost"]] == [c["cost"] for c in before["cost"]]
    assert body["makespan"] == {"before": before["makespan"], "after": None, "delta": None}
    assert body["critical_path"] == {"before": before["critical_path"], "after": None, "delta": None}


def test_plan_compare(vfw_copy, tmp_path):
    saved = tmp_path / "saved.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    same = run_ordo("plan", "-C", vfw_copy, "--compare", saved)
    assert same.code == 0, same.text
    assert same.out.splitlines()[0].startswith(f"Saved plan ({saved}): 10 to create")
    assert "No differences." in same.out
    # --detailed-exitcode follows what is printed, the difference (the plan itself has changes: 10 to create)
    assert run_ordo("plan", "-C", vfw_copy, "--compare", saved, "--detailed-exitcode").code == 0
    policy = vfw_copy / "policies/config-after-modules.lp"
    policy.write_text(policy.read_text() + '\n% vfw stays out of region-two\n:- located("vfw","region-two").\n')
    changed = run_ordo("plan", "-C", vfw_copy, "--compare", saved)
    assert changed.code == 0, changed.text
    assert "No differences." not in changed.out
    assert "Placements changed\n  ~ vfw: region-two -> " in changed.out
    assert run_ordo("plan", "-C", vfw_copy, "--compare", saved, "--detailed-exitcode").code == 2
    diff = _json(run_ordo("plan", "-C", vfw_copy, "--compare", saved, "--format", "json"))
    assert diff["empty"] is False and _placement(diff, "vfw")[0] == "region-two"


def test_whatif_against_saved_baseline(vfw_copy, tmp_path):
    saved = tmp_path / "base.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    run = run_ordo("whatif", "-C", vfw_copy, "--baseline", saved, "--capacity", "region-two:vcpu=16")
    assert run.code == 0, run.text
    assert run.out.startswith(f"Baseline ({saved}): ")
    assert "  ~ vsink: region-one -> region-two" in run.out
    args = ("whatif", "-C", vfw_copy, "--baseline", saved, "--target-down", "region-three")
    assert _json(run_ordo(*args, "--format", "json"))["baseline_inputs_changed"] is False
    # the inventory changed since the baseline was saved: part of the difference is that change, said so
    inventory = vfw_copy / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("attributes: { cost: 3 }", "attributes: { cost: 30 }"))
    stale = run_ordo(*args)
    assert stale.code == 0 and stale.out.startswith(f"Note: {saved} was made from other inputs"), stale.text
    assert _json(run_ordo(*args, "--format", "json"))["baseline_inputs_changed"] is True


def test_whatif_against_a_saved_plan_of_another_request(vfw_copy, tmp_path):
    """The scenario is planned from the request and inventory the baseline was made from (format 1.2
    names them): it was planned from the project's own, and the whole difference was theirs."""
    assert run_ordo("plan", "-C", vfw_copy, "requests/delete.yaml", "--inventory", "inventory-deployed.yaml",
                    "--out", vfw_copy / "delete.json").code == 0
    args = ("whatif", "-C", vfw_copy, "--baseline", vfw_copy / "delete.json", "--target-down", "region-two")
    run = run_ordo(*args)
    assert run.code == 0 and "No differences." in run.out and "Note:" not in run.out, run.text
    assert _json(run_ordo(*args, "--format", "json"))["baseline_inputs_changed"] is False
    # --request still names the scenario's own
    run = run_ordo(*args, "--request", vfw_copy / "requests" / "instantiate.yaml")
    assert run.code == 0 and "No differences." not in run.out, run.text


def test_json_is_deterministic(vfw_copy):
    # this process (its own hash seed) and another process with another seed
    args = ("whatif", "-C", vfw_copy, "--target-down", "region-two", "--without-policy", "anti-affinity",
            "--format", "json")
    runs = [run_ordo(*args), run_ordo_process(*args, env={"PYTHONHASHSEED": "1"})]
    assert [run.code for run in runs] == [0, 0], [run.text for run in runs]
    outputs = [run.out for run in runs]
    assert outputs[0] == outputs[1]
    body = json.loads(outputs[0])
    assert list(body) == sorted(body)


@pytest.mark.parametrize("args,message", [
    (["--capacity", "region-one:vcpu"], "expected TARGET:KEY=N"),
    (["--capacity", "region-one:vcpu=-2"], "expected TARGET:KEY=N"),
    (["--capacity", "region-tow:vcpu=3"], "no target 'region-tow' in the inventory (did you mean 'region-two'?)"),
    (["--capacity", "region-one:vpcu=3"], "did you mean 'vcpu'?"),
    (["--capacity", "region-two:vcpu=5", "--capacity", "region-two:vcpu=20"], "region-two:vcpu is given twice"),
    (["--target-down", "regoin-two"], "did you mean 'region-two'?"),
    (["--without-policy", "anti-afinity"], "no policy named 'anti-afinity' (did you mean 'anti-affinity'?)"),
    (["--without-policy", "placement"], "part of the base library"),
    (["--target-down", "region-two", "--without-policy", "avoid-refused-targets"], "cannot go with"),
    (["--with-policy", "missing.lp"], "no such policy file"),
    ([], "name a change"),
])
def test_bad_options_are_clear_errors(vfw_copy, args, message):
    run = run_ordo("whatif", "-C", vfw_copy, *args)
    assert run.code == 1, run.text
    assert message in run.err
    assert "Traceback" not in run.text
    # the name given is said once: "--without-policy 'x': the project loads no policy named 'x'" said it twice
    for option, name in zip(args[::2], args[1::2], strict=True):
        if option in ("--without-policy", "--target-down"):
            assert run.err.count(f"'{name}'") <= 1, run.err


def test_without_project_policy_drops_its_enforcement_override(vfw_copy):
    project = vfw_copy / "ordo.yaml"
    project.write_text(project.read_text().replace(
        "settings:", "  enforcement:\n    config-after-modules: { level: advisory }\nsettings:", 1))
    run = run_ordo("whatif", "-C", vfw_copy, "--without-policy", "config-after-modules")
    assert run.code == 0, run.text
    assert "Order changed\n  - vfw-base/activate before vfw/config-deploy  (policies/config-after-modules.lp:8)" \
        in run.out


def test_a_scenario_moves_only_what_it_calls_for(tmp_path):
    """A region down on generate.py's project: the scenario keeps the
    baseline's placements wherever that costs nothing, so every placement
    that differs is on the region that went down or shares an anti-affinity
    group with one that was (its peers make room), at the cost the scenario
    has without keeping them. (Without keeping them, 12 of the 27 placements
    that differed here were other choices of the same cost elsewhere.)"""
    root = tmp_path / "p"
    write_project(1000, root)
    base = make_plan(load_project(root)).plan
    down = "region-east"
    scenario = Scenario(targets_down=(down,))
    kept = make_plan(scenario.apply(load_project(root)), keep=base.placements)
    alone = make_plan(scenario.apply(load_project(root)))
    assert kept.status == alone.status == "optimal"
    assert kept.plan.cost == alone.plan.cost   # the same cost at every level
    assert "<kept placements>" in {i.path for i in kept.plan.inputs} and kept.plan.digest != alone.plan.digest
    groups: dict[str, str] = {r["name"]: r["labels"]["anti-affinity"] for r in yaml.safe_load(
        (root / "request.yaml").read_text(encoding="utf-8"))["resources"] if "anti-affinity" in r.get("labels", {})}
    shaken = {groups[r] for r, t in base.placements.items() if t == down and r in groups}
    changes = diff_plans(base, kept).placements
    assert any(change.before == down for change in changes)
    moved = [change for change in changes if change.before != down]
    assert all(groups.get(change.resource) in shaken for change in moved), moved
    # `ordo whatif` keeps them too, against the project planned now or a saved plan
    saved = tmp_path / "base.json"
    saved.write_text(base.to_json(), encoding="utf-8")
    for args in ((), ("--baseline", saved)):
        diff = _json(run_ordo("whatif", "-C", root, "--target-down", down, "--format", "json", *args))
        assert [(c["resource"], c["before"], c["after"]) for c in diff["placements"]] == \
            [(c.resource, c.before, c.after) for c in changes]


def test_keeping_the_baselines_placements_does_not_make_a_plan_optimal(vfw_copy, tmp_path):
    """Without an objective of its own (no prefer-cheaper-region) a plan is only
    satisfiable; keeping the baseline's placements (an optimisation of its own)
    leaves it so, and a scenario that changes nothing differs in nothing."""
    text = (vfw_copy / "ordo.yaml").read_text(encoding="utf-8")
    (vfw_copy / "ordo.yaml").write_text(text.replace("    - prefer-cheaper-region\n", ""), encoding="utf-8")
    saved = tmp_path / "plan.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    diff = _json(run_ordo("whatif", "-C", vfw_copy, "--baseline", saved, "--format", "json"))
    assert (diff["base"]["status"], diff["other"]["status"], diff["empty"]) == ("satisfiable", "satisfiable", True)
    more = _json(run_ordo("whatif", "-C", vfw_copy, "--capacity", "region-one:vcpu=1000", "--format", "json"))
    assert (more["base"]["status"], more["other"]["status"]) == ("satisfiable", "satisfiable")


def test_each_part_keeps_the_baselines_placements(tmp_path, monkeypatch):
    """Cut into parts (PART_MIN, PART_SIZE lowered): given placements as cheap
    as the plan's but another choice (two anti-affinity peers of the same
    size swapped), planning again keeps every one of them, part by part."""
    root = tmp_path / "p"
    write_project(300, root)
    monkeypatch.setattr(slicing, "PART_MIN", 100)
    monkeypatch.setattr(slicing, "PART_SIZE", 40)
    project = load_project(root)
    cut = slicing.prune(load_policies(project), project.model, project.enforcement, project.parameters)
    assert cut is not None and len(cut.parts) >= 5
    base = make_plan(project).plan
    resources = project.model.resources
    groups: dict[tuple[str, int], list[str]] = {}
    for name in sorted(base.placements):
        res = resources[name]
        if "anti-affinity" in res.labels:
            groups.setdefault((str(res.labels["anti-affinity"]), res.requires["vcpu"]), []).append(name)
    other = dict(base.placements)
    for a, b, *_ in (members for members in groups.values() if len(members) >= 2):
        other[a], other[b] = base.placements[b], base.placements[a]
    swapped = {r for r in other if other[r] != base.placements[r]}
    assert len({part for part, names in enumerate(cut.names) if swapped & names}) >= 2
    kept = make_plan(load_project(root), keep=other)
    assert (kept.status, kept.plan.cost) == ("optimal", base.cost)
    assert dict(kept.plan.placements) == other


def test_a_violation_in_the_difference_names_its_resources_as_the_plan_does(vfw_copy, tmp_path):
    """An advisory rule of no variable, about vsink: the difference lists it with vsink, as `ordo plan`
    does, not with an empty list of values after a colon."""
    rule = tmp_path / "stay-off-region-one.lp"
    rule.write_text('%@ name: stay-off-region-one\n%@ description: vsink stays off region-one.\n%@ owner: t\n'
                    '%@ enforcement: advisory\n\n:- place("vsink","region-one").\n')
    run = run_ordo("whatif", "-C", vfw_copy, "--with-policy", rule)
    assert run.code == 0, run.text
    assert "Policy violations\n  + advisory: stay-off-region-one" in run.out, run.out
    line = next(x for x in run.out.splitlines() if "+ advisory: stay-off-region-one" in x)
    assert line.endswith("stay-off-region-one.lp:6): resources: vsink"), line


def test_an_edited_baseline_is_refused_as_ordo_explain_refuses_it(vfw_copy, tmp_path):
    """--baseline took a saved plan whose placements were edited (a resource the project does not
    have, a target the inventory does not have) and printed them as the baseline's (the sweep of
    6 December); ordo explain and ordo apply refused the same file."""
    saved = tmp_path / "base.json"
    assert run_ordo("plan", "-C", vfw_copy, "--out", saved).code == 0
    data = json.loads(saved.read_text())
    data["placements"].update(vfw="nowhere", ghost="region-one")
    saved.write_text(json.dumps(data))
    run = run_ordo("whatif", "-C", vfw_copy, "--baseline", saved, "--target-down", "region-two")
    assert run.code == 1 and "placements.ghost: there is no resource 'ghost' in the project" in run.err
    assert "placements.vfw: there is no target 'nowhere' in the inventory" in run.err and not run.out, run.text
