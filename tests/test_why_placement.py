"""Why a resource is placed where it is (``ordo explain plan.json RESOURCE``) on
a generated project: each other target's plan moves only the placements the
resource's new place calls for, not another choice among placements that cost
the same; and where planner/slice.py cuts the model into parts, only the
resource's part is planned again, at the costs the whole model gives."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

import planner.slice as slicing
import planner.why as why_module
from benchmarks.generate import write_project
from domain.project import load_project
from planner.core import load_policies, make_plan
from planner.plan import Plan
from planner.why import explain_placement, placement_here
from tests.conftest import VFW, run_ordo


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Plan]:
    """generate.py's 300 resources and their plan."""
    root = tmp_path_factory.mktemp("why") / "p"
    write_project(300, root)
    outcome = make_plan(load_project(root))
    assert outcome.status == "optimal"
    return root, outcome.plan


def _here(root: Path, plan: Plan, name: str, timeout: float = 30):
    """The explanation made in this process (``placement_here``), where a test's monkeypatches hold."""
    project = load_project(root)
    return placement_here(project, load_policies(project), plan, name, timeout=timeout)


def _grouped(root: Path) -> tuple[str, set[str]]:
    """A VNF with an anti-affinity label and its peers (the resources its place bears on)."""
    request = (root / "request.yaml").read_text(encoding="utf-8")
    labels = {r["name"]: r["labels"]["anti-affinity"] for r in yaml.safe_load(request)["resources"]
              if "anti-affinity" in r.get("labels", {})}
    name = sorted(labels)[0]
    return name, {other for other, value in labels.items() if value == labels[name]}


def _service(name: str) -> str:
    return name.split("-vnf-")[0]


def test_other_targets_move_only_what_the_new_place_calls_for(generated, monkeypatch):
    """Planned whole (no slice: parts off), the alternative plans keep every
    placement they can: what moves is the resource's anti-affinity peers, in
    its own service; without planner.facts.keep_placements the search met other placements of
    the same cost all over the model."""
    root, plan = generated
    name, peers = _grouped(root)
    monkeypatch.setattr(why_module, "_part", lambda *args: None)
    why = _here(root, plan, name)
    assert len(why.alternatives) == 3 and all(alt.status == "plan" and alt.optimal for alt in why.alternatives)
    moved = {r for alt in why.alternatives for r, _ in alt.moves}
    assert moved <= peers, moved - peers


def test_in_parts_only_the_resources_part_is_planned_again_at_the_whole_models_costs(generated, monkeypatch):
    root, plan = generated
    name, _ = _grouped(root)
    monkeypatch.setattr(slicing, "PART_MIN", 100)
    monkeypatch.setattr(slicing, "PART_SIZE", 40)
    project = load_project(root)
    program = load_policies(project)
    cut = slicing.prune(program, project.model, project.enforcement, project.parameters)
    assert cut is not None and len(cut.parts) >= 5
    part = why_module._part(project, program, plan, name, why_module._Limits(time.monotonic() + 30), 30)
    assert part is not None
    facts, rest = part
    assert facts in cut.parts and len(facts) < sum(map(len, cut.parts)) / 3
    assert rest.keys() == {level.priority for level in plan.cost}
    in_parts = _here(root, plan, name)
    monkeypatch.setattr(why_module, "_part", lambda *args: None)
    whole = _here(root, plan, name)
    assert [(a.target, a.status, a.cost, a.optimal, len(a.moves)) for a in in_parts.alternatives] == \
        [(a.target, a.status, a.cost, a.optimal, len(a.moves)) for a in whole.alternatives]
    assert {_service(r) for alt in in_parts.alternatives for r, _ in alt.moves} <= {_service(name)}


def test_a_plan_cut_short_or_made_from_other_inputs_is_explained_on_the_whole_model(generated, monkeypatch):
    """The rest of the plan keeps its cost only if it is the optimum of these inputs."""
    root, plan = generated
    name, _ = _grouped(root)
    monkeypatch.setattr(slicing, "PART_MIN", 100)
    monkeypatch.setattr(slicing, "PART_SIZE", 40)
    asked = []
    monkeypatch.setattr(why_module, "_part", lambda *args: asked.append(args) or None)
    body = json.loads(plan.to_json())
    body["status"] = "satisfiable"
    _here(root, Plan.from_json(json.dumps(body)), name)
    body["status"], body["digest"] = "optimal", "sha256:" + "0" * 64
    changed = _here(root, Plan.from_json(json.dumps(body)), name)
    assert changed.inputs_changed and asked == []
    _here(root, plan, name)
    assert len(asked) == 1


def _extra_on_deployed(root: Path) -> Plan:
    """A small request against vFW's deployed inventory, stock policies only
    (a slice): its plan."""
    shutil.copytree(VFW, root)
    text = (root / "ordo.yaml").read_text(encoding="utf-8")
    for old, new in (("    - protected-resources\n", ""), ("    - avoid-refused-targets", "#"),
                     ("    - policies/config-after-modules.lp\n", ""), ("  files:", "#"),
                     ("inventory: inventory.yaml", "inventory: inventory-deployed.yaml"),
                     ("request: requests/instantiate.yaml", "request: extra.yaml")):
        assert old in text
        text = text.replace(old, new)
    (root / "ordo.yaml").write_text(text, encoding="utf-8")
    (root / "extra.yaml").write_text("name: extra\nresources:\n- {name: svc-x, type: service}\n"
                                     "- {name: vextra, type: vnf, part_of: svc-x, requires: {vcpu: 4, memory_gb: 8}}\n",
                                     encoding="utf-8")
    project = load_project(root)
    program = load_policies(project)
    assert slicing.prune(program, project.model, project.enforcement, project.parameters) is not None
    return make_plan(project).plan


def test_another_target_without_a_plan_is_explained_with_its_real_capacity(tmp_path):
    """The slice holds the capacity left on each region, but a region ruled out
    is explained on the whole model, with the region's own capacity and what
    takes it up."""
    root = tmp_path / "p"
    plan = _extra_on_deployed(root)
    why = explain_placement(load_project(root), plan, "vextra", timeout=20)
    ruled_out = {alt.target: alt for alt in why.alternatives if alt.status == "no_plan"}
    assert list(ruled_out) == ["region-two"]
    (conflict,) = ruled_out["region-two"].conflicts
    assert (conflict.policy, dict(conflict.bindings)) == ("capacity", {"T": "region-two", "K": "vcpu", "C": "10"})
    assert set(conflict.resources) == {"vextra", "vfw"}


def test_a_target_ruled_out_stays_so_when_its_explanation_runs_out_of_time(tmp_path, monkeypatch):
    root = tmp_path / "p"
    plan = _extra_on_deployed(root)
    planned = why_module._alternative

    def whole_model_times_out(program, facts, model, plan, resource, target, limits, timeout, rest, **kwargs):
        if rest is None:
            return why_module.Alternative(target, "timeout", summary="not decided within the time limit")
        return planned(program, facts, model, plan, resource, target, limits, timeout, rest, **kwargs)

    monkeypatch.setattr(why_module, "_alternative", whole_model_times_out)
    why = _here(root, plan, "vextra", timeout=20)
    ruled_out = {alt.target: alt for alt in why.alternatives if alt.status == "no_plan"}
    assert list(ruled_out) == ["region-two"] and not ruled_out["region-two"].conflicts
    assert ruled_out["region-two"].summary == "no plan with it there (not explained within the time limit)"
    assert not ruled_out["region-two"].complete and not why.complete   # said in the JSON too
    shown = {alt["target"]: alt["complete"] for alt in why.to_dict()["alternatives"]}
    assert why.to_dict()["complete"] is False and shown["region-two"] is False


def test_without_an_objective_of_its_own_another_targets_plan_costs_the_least(vfw_copy):
    """No prefer-cheaper-region: every plan costs nothing, so a plan on another
    target is as good as any (keeping the plan's placements is no cost)."""
    text = (vfw_copy / "ordo.yaml").read_text(encoding="utf-8")
    (vfw_copy / "ordo.yaml").write_text(text.replace("    - prefer-cheaper-region\n", ""), encoding="utf-8")
    plan = make_plan(load_project(vfw_copy)).plan
    assert plan.status == "satisfiable"
    why = explain_placement(load_project(vfw_copy), plan, "vsink", timeout=20)
    possible = [alt for alt in why.alternatives if alt.status == "plan"]
    assert possible and all(alt.optimal and alt.cost == () for alt in possible)
    assert why.complete and why.to_dict()["complete"] is True


@pytest.mark.parametrize("sliced", [False, True])
def test_no_other_target_is_planned_once_the_time_limit_is_spent(tmp_path, sliced):
    """A grounding cannot be stopped: none starts after the deadline (a bounded
    child's parent would end it there), not even the resource's part; the
    targets left read "timeout"."""
    root = tmp_path / "p"
    if sliced:
        plan, name = _extra_on_deployed(root), "vextra"
    else:
        shutil.copytree(VFW, root)
        plan, name = make_plan(load_project(root)).plan, "vsink"
    project = load_project(root)
    started: list[str] = []
    why = placement_here(project, load_policies(project), plan, name, timeout=0,
                         on_grounding=lambda: started.append("grounding"))
    assert started == [] and len(why.alternatives) == len(project.model.targets) - 1
    assert {(alt.status, alt.summary) for alt in why.alternatives} == {("timeout", "not decided within the time limit")}
    assert not any(alt.complete for alt in why.alternatives)


def test_targets_decided_before_a_limit_struck_stand(tmp_path, monkeypatch):
    """When a grounding runs past the deadline after some targets were decided
    (the whole model's, after the part had no plan), the explanation keeps
    them and the others read "timeout", instead of failing as a whole."""
    import planner.bounded as bounded

    root = tmp_path / "p"
    plan = _extra_on_deployed(root)
    first, *rest = sorted(t for t in load_project(root).model.targets if t != plan.placements["vextra"])

    def decides_one(project, program, plan, resource, *, timeout, memory_mb, decided):
        decided[first] = (why_module.Alternative(first, "plan", cost=((1, 9),), optimal=True), False)
        raise bounded.PlanningLimitError("time", "the time limit (1 s) struck; raise --timeout")

    monkeypatch.setattr(bounded, "placement_bounded", decides_one)
    why = explain_placement(load_project(root), plan, "vextra", timeout=1)
    assert [(alt.target, alt.status) for alt in why.alternatives] == \
        [(first, "plan"), *((other, "timeout") for other in rest)] and rest
    assert why.alternatives[-1].summary == "not decided within the time limit"

    def explains_one_on_the_whole_model(cut_by):
        def child(project, program, plan, resource, *, timeout, memory_mb, decided):
            decided[first] = (why_module.Alternative(first, "no_plan", summary=why_module.UNEXPLAINED), True)
            if rest:   # decided for good, cut by the time limit of its own search: said so, whatever ends the child
                decided[rest[0]] = (why_module.Alternative(rest[0], "timeout", summary=why_module.UNDECIDED), False)
            raise cut_by
        return child

    for cut_by, cause in ((bounded.PlanningLimitError("memory", "the memory cap (64 MB) struck"),
                           "within the memory cap"),
                          (bounded.ChildEnded("the planning process ended unexpectedly (exit code -9)"),
                           "before the planning process ended unexpectedly")):
        monkeypatch.setattr(bounded, "placement_bounded", explains_one_on_the_whole_model(cut_by))
        why = explain_placement(load_project(root), plan, "vextra", timeout=1)
        assert [alt.summary for alt in why.alternatives] == \
            [f"no plan with it there (not explained {cause})", "not decided within the time limit",
             *(f"not decided {cause}" for _ in rest[1:])]
    monkeypatch.setattr(bounded, "placement_bounded", lambda *args, decided, **kwargs: (_ for _ in ()).throw(
        bounded.PlanningLimitError("time", "nothing decided")))
    with pytest.raises(bounded.PlanningLimitError, match="nothing decided"):
        explain_placement(load_project(root), plan, "vextra", timeout=1)


def test_each_target_searches_in_what_the_groundings_leave():
    """Three targets, 1 s, groundings of 0.2 s: each search has (1 - 3 x 0.2) / 3,
    so the last target is still ground and searched; where the groundings
    would take it all, what this one's leaves is shared."""
    limits = why_module._Limits(time.monotonic() + 1.0)
    assert limits.share(3) == pytest.approx(1.0 / 3, abs=0.02)   # no grounding yet: nothing to leave for
    limits.longest = 0.2
    assert limits.share(3) == pytest.approx((1.0 - 3 * 0.2) / 3, abs=0.02)
    limits.longest = 0.4
    assert limits.share(3) == pytest.approx((1.0 - 0.4) / 3, abs=0.02)
    limits.deadline = time.monotonic() - 1
    assert limits.share(2) == 0.0 and not limits.may_ground()


def test_a_target_ruled_out_because_the_resource_was_placed_since_the_plan_says_so(tmp_path):
    """A plan made before the vFW was deployed, explained once it is (the inventory now has vfw active on
    region-two): the other targets have no plan because vfw is placed and is not replaced, which the
    explanation says, not "a resource to place and no target"."""
    root = tmp_path / "p"
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    plan = make_plan(load_project(root)).plan
    text = (root / "ordo.yaml").read_text(encoding="utf-8")
    assert "inventory: inventory.yaml" in text
    (root / "ordo.yaml").write_text(text.replace("inventory: inventory.yaml", "inventory: inventory-deployed.yaml"),
                                    encoding="utf-8")
    why = explain_placement(load_project(root), plan, "vfw", timeout=30)
    assert why.inputs_changed and why.target == "region-two"
    assert [(alt.target, alt.status, alt.conflicts) for alt in why.alternatives] == \
        [("region-one", "no_plan", ()), ("region-three", "no_plan", ())]
    assert all(alt.summary.startswith("it is on region-two now, observed since the plan was made") and
               "<base>/placement.lp" in alt.summary for alt in why.alternatives), why.alternatives


def test_an_edited_or_stale_plan_is_not_said_to_be_the_least_cost(tmp_path):
    """A placement edited in a saved plan, its digest changed with it, reads as a plan of other inputs:
    it is explained as where that plan put it, never as the planner's choice of least cost, and its
    cost is the one it was made with; the other targets are planned on today's inputs."""
    root = tmp_path / "p"
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    data = json.loads(make_plan(load_project(root)).plan.to_json())
    assert data["placements"]["vfw"] != "region-three"
    data["placements"]["vfw"] = "region-three"
    data["digest"] = "sha256:" + "0" * 64
    # (of other inputs: its digest alone edited, its inputs as they are here, it is refused as apply refuses it)
    next(i for i in data["inputs"] if i["path"] == "catalog.yaml")["sha256"] = "0" * 64
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    run = run_ordo("explain", "-C", root, edited, "vfw")
    assert run.code == 0, run.text
    assert "chosen by the planner" not in run.out, run.out
    assert "vfw is placed on region-three: where this plan put it, made from other inputs" in run.out
    assert "Cost of this plan (from the inputs it was made from): 26@1" in run.out
    why = explain_placement(load_project(root), Plan.from_json(edited.read_text()), "vfw", timeout=30)
    assert why.inputs_changed and why.reason == why_module.CHOSEN_THEN and why.alternatives


def test_a_resource_the_project_no_longer_has_is_said_so_not_planned_on_every_target(tmp_path):
    """A plan of other inputs that places a resource the request no longer names: every other target
    was "no plan exists" (pinning what is not there), exit 0 (the sweep of 6 December)."""
    root = tmp_path / "p"
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    saved = tmp_path / "plan.json"
    saved.write_text(make_plan(load_project(root)).plan.to_json())
    request = root / "requests" / "instantiate.yaml"
    request.write_text(request.read_text().replace("vsink", "vsinc"))
    run = run_ordo("explain", "-C", root, saved, "vsink")
    assert run.code == 1, run.text
    assert "the project has no resource 'vsink' now: the plan was made from other inputs" in run.err, run.text
