"""Policy metadata and enforcement levels: hard, soft (weight@priority), advisory."""

from __future__ import annotations

from pathlib import Path

from domain.project import load_project
from planner.core import make_plan
from tests.conftest import VFW, run_ordo


def set_enforcement(project: Path, block: str) -> None:
    path = project / "ordo.yaml"
    text = path.read_text()
    path.write_text(text.replace("policies:\n", "policies:\n  enforcement:\n" + block, 1))


def plan(project: Path):
    return make_plan(load_project(project))


def test_hard_by_default_no_violations_reported(vfw_copy):
    result = plan(vfw_copy).plan
    assert result.violations == ()
    assert result.placements == {"vfw": "region-two", "vpg": "region-one", "vsink": "region-one"}


def test_advisory_is_only_reported(vfw_copy):
    # Capacity advisory: vSink goes to the cheaper region-two although it is full.
    set_enforcement(vfw_copy, "    capacity: { level: advisory }\n")
    result = plan(vfw_copy).plan
    assert result.placements["vsink"] == "region-two"
    [violation] = result.violations
    assert (violation.policy, violation.enforcement) == ("capacity", "advisory")
    assert violation.file == "<library>/capacity.lp" and violation.line == 9
    assert violation.bindings == {"T": "region-two", "K": "vcpu", "C": "10"}
    assert violation.resources == ("vfw", "vsink")
    run = run_ordo("plan", "-C", vfw_copy)
    assert "advisory: capacity (<library>/capacity.lp:9): T=region-two, K=vcpu, C=10 (resources: vfw, vsink)" \
        in run.out


def test_soft_costs_its_weight_at_its_priority(vfw_copy):
    # Anti-affinity soft and cheap (priority 0, below cost): vPG joins vFW's zone.
    original = (vfw_copy / "ordo.yaml").read_text()
    set_enforcement(vfw_copy, "    anti-affinity: { level: soft, weight: 1, priority: 0 }\n")
    result = plan(vfw_copy).plan
    assert result.placements["vpg"] == "region-two"
    assert [(v.policy, v.enforcement) for v in result.violations] == [("anti-affinity", "soft")]
    assert {c.priority: c.cost for c in result.cost} == {0: 1, 1: 22}
    # Soft but dear (priority 2, above cost): kept, as if hard.
    (vfw_copy / "ordo.yaml").write_text(original)
    set_enforcement(vfw_copy, "    anti-affinity: { level: soft, weight: 5, priority: 2 }\n")
    result = plan(vfw_copy).plan
    assert result.violations == ()
    assert result.placements["vpg"] == "region-one"


def test_only_hard_policies_are_named_as_the_conflict(vfw_copy):
    # Deleting the management network: protected-resources and the base
    # ordering (VF modules still use it) both forbid it. Made soft,
    # protected-resources is no longer part of the conflict.
    request = "requests/delete-mgmt-net.yaml"
    outcome = make_plan(load_project(vfw_copy, request, "inventory-deployed.yaml"))
    assert {c.policy for c in outcome.explanation.conflicts} == {"protected-resources", "ordering"}
    set_enforcement(vfw_copy, "    protected-resources: { level: soft, weight: 10, priority: 3 }\n")
    outcome = make_plan(load_project(vfw_copy, request, "inventory-deployed.yaml"))
    assert outcome.status == "no_plan"
    assert {(c.policy, c.enforcement) for c in outcome.explanation.conflicts} == {("ordering", "hard")}


def test_header_sets_the_level_and_the_project_overrides_it(vfw_copy):
    policy = vfw_copy / "policies" / "no-region-two.lp"
    policy.write_text("%@ name: no-region-two\n%@ description: keep VNFs off region-two\n%@ owner: ops\n"
                      "%@ enforcement: advisory\n\n% nothing on region-two\n:- place(R,\"region-two\").\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    listed = "    - policies/config-after-modules.lp"
    (vfw_copy / "ordo.yaml").write_text(text.replace(listed, listed + "\n    - policies/no-region-two.lp"))
    result = plan(vfw_copy).plan
    assert result.placements["vfw"] == "region-two"
    assert [(v.policy, v.enforcement, v.description) for v in result.violations] == [
        ("no-region-two", "advisory", "nothing on region-two")]
    set_enforcement(vfw_copy, "    no-region-two: { level: hard }\n")
    assert "region-two" not in plan(vfw_copy).plan.placements.values()


def test_metadata_errors_name_file_and_line(vfw_copy):
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text("%@ name: cam\n%@ enforcment: hard\n%@ enforcement: strict\n%@ weight: 0\n"
                      + policy.read_text())
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 1
    assert "policies/config-after-modules.lp:2:4: error: unknown metadata key 'enforcment' " \
           "(did you mean 'enforcement'?)" in run.err
    assert "policies/config-after-modules.lp:3:1: error: unknown enforcement level 'strict' " \
           "(expected one of: hard, soft, advisory)" in run.err
    assert "policies/config-after-modules.lp:4:1: error: weight: expected a whole number of at least 1, got '0'" \
        in run.err


def test_unknown_policy_in_enforcement_is_named_in_ordo_yaml(vfw_copy):
    set_enforcement(vfw_copy, "    anti-afinity: { level: soft }\n    lifecycle: { level: advisory }\n")
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 1
    assert "ordo.yaml:8:19: error: policies.enforcement.anti-afinity: no loaded policy is named 'anti-afinity' " \
           "(did you mean 'anti-affinity'?)" in run.err
    assert "policies.enforcement.lifecycle: 'lifecycle' is part of the base library (the base library is " \
           "always hard)" in run.err
    run = run_ordo("plan", "-C", vfw_copy)
    assert run.code == 1 and "Traceback" not in run.err


def test_lint_flags_missing_metadata_and_reserved_predicates(vfw_copy):
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text("% a policy without a header\ngoal(\"vfw\",\"absent\").\nplace(R,\"region-one\") :- "
                      "placeable(R).\nbefore(X,Y) :- op(R,\"assign\"), X = op(R,\"assign\"), Y = op(R,\"create\").\n")
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 1
    assert "policies/config-after-modules.lp:1:1: warning: policy has no metadata" in run.err
    assert "policies/config-after-modules.lp:2:1: error: defines 'goal/2', which the base library reserves" in run.err
    assert "policies/config-after-modules.lp:3:1: error: defines 'place/2', which the base library reserves" in run.err
    assert "before/2" not in run.err.split("reserves")[0]  # before/2 is open to policies


def test_a_project_policy_that_defines_a_stock_policys_helper_is_warned(vfw_copy):
    """A project rule that reused anti-affinity's helper (anti_affinity_zone/2) passed check; its rules
    acted with anti-affinity's, and "no plan" blamed anti-affinity, never the file that caused it (a policy
    author's sweep): check names the clash, at the rule. A stock policy the project does not load is no
    clash; a predicate of the file's own name is none either."""
    (vfw_copy / "policies" / "zones.lp").write_text(
        "%@ name: vnf-zones\n%@ description: every VNF's zone\n\n"
        "anti_affinity_zone(R,\"az9\") :- resource(R,\"vnf\").\nmy_zone(R,\"az9\") :- resource(R,\"vnf\").\n"
        "refused_target_kept(R,T) :- place(R,T), resource(R,\"vnf\").\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace("    - policies/config-after-modules.lp",
                                                     "    - policies/config-after-modules.lp\n    - policies/zones.lp")
                                        .replace("    - avoid-refused-targets", ""))
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 0, run.text
    assert ("policies/zones.lp:4:1: warning: defines 'anti_affinity_zone/2', which the stock policy anti-affinity "
            "(<library>/anti-affinity.lp) defines too") in run.err, run.err
    assert "my_zone" not in run.err and "refused_target_kept" not in run.err, run.err


def test_a_policy_may_not_take_another_policys_name(vfw_copy):
    """A project policy named as a stock one, or two project files of one name, would both be picked by
    that name: ordo.yaml's enforcement levels (here `capacity: advisory` turned the author's hard rule
    advisory too), --without-policy and tests. The second of a name is refused at its header, by every
    command; a file included without a header of its own stays part of its includer's policy."""
    listed = "    - policies/config-after-modules.lp"
    (vfw_copy / "policies" / "mine.lp").write_text(
        "%@ name: capacity\n%@ enforcement: hard\n\n% mine: vsink never on region-two\n"
        ":- place(\"vsink\",\"region-two\").\n")
    (vfw_copy / "policies" / "config-after-modules.lp").write_text(
        "%@ name: mine\n#include \"helper.lp\".\n" + (vfw_copy / "policies" / "config-after-modules.lp").read_text())
    (vfw_copy / "policies" / "helper.lp").write_text("% no header: part of the policy mine\nspare(1).\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace(listed, listed + "\n    - policies/mine.lp"))
    set_enforcement(vfw_copy, "    capacity: { level: advisory }\n")
    for command in (["check"], ["plan"], ["whatif", "--without-policy", "capacity"], ["test"]):
        run = run_ordo(*command, "-C", vfw_copy)
        assert run.code != 0 and "Traceback" not in run.text, (command, run.text)
        assert "policies/mine.lp:1:1: error: policy name 'capacity' is taken by <library>/capacity.lp" in run.text, \
            (command, run.text)
    assert "helper.lp" not in run_ordo("check", "-C", vfw_copy).err   # included: the same policy, no clash
    (vfw_copy / "policies" / "mine.lp").write_text(":- place(\"vsink\",\"region-two\").\n")
    run = run_ordo("check", "-C", vfw_copy)
    assert "policies/mine.lp:1:1: error: policy name 'mine' is taken by policies/config-after-modules.lp" in run.err
    assert "(a policy without one is named after its file)" in run.err
    # a stock policy's name is taken even when it is not loaded now: <replan>/recovery.lp comes in at a
    # re-plan (and whatif --target-down), where the clash would first show
    (vfw_copy / "policies" / "mine.lp").write_text("%@ name: recovery\n:- place(\"vsink\",\"region-two\").\n")
    run = run_ordo("check", "-C", vfw_copy)
    assert "policies/mine.lp:1:1: error: policy name 'recovery' is taken by <replan>/recovery.lp" in run.err, run.err


def test_a_policy_file_given_twice_is_loaded_once_not_a_clash(vfw_copy):
    """`--policy` naming a file ordo.yaml lists already loads it once (the name check took it for two)."""
    run = run_ordo("plan", "-C", vfw_copy, "--policy", vfw_copy / "policies" / "config-after-modules.lp")
    assert run.code == 0, run.text


def test_metadata_below_the_first_statement_is_an_error_not_ignored(vfw_copy):
    """`%@ enforcement: advisory` written under the rules was not read: the policy stayed hard, named after
    its file, with only "policy has no metadata" at 1:1 to show for it. Each such line is an error at its line."""
    listed = "    - policies/config-after-modules.lp"
    (vfw_copy / "policies" / "late.lp").write_text(
        "% my policy\n:- place(\"vsink\",\"region-one\").\n%@ name: late\n  %@ enforcement: advisory\n"
        "% %@ is fine in prose, and an unknown %@ word too:\n%@ colour: blue\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace(listed, listed + "\n    - policies/late.lp"))
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 1, run.text
    errors = [line for line in run.err.splitlines() if ": error: " in line]
    assert errors == [
        "policies/late.lp:3:1: error: metadata 'name' below the first statement (line 2) is not read (the %@ "
        "header is the comment block at the top of the file: move the line there)",
        "policies/late.lp:4:3: error: metadata 'enforcement' below the first statement (line 2) is not read (the "
        "%@ header is the comment block at the top of the file: move the line there)"], run.err


def test_a_violated_rule_names_the_resources_it_names_as_written(vfw_copy):
    """`:- place("vsink","region-one").` has no variable: its violation listed no resource, and a policy
    test expecting it for vsink failed ("it is for: none"). The resources a constraint names in quotes
    count as its resources; the text shows no empty values."""
    (vfw_copy / "policies" / "not-one.lp").write_text(
        '%@ name: not-one\n%@ enforcement: advisory\n\n% vsink not on region-one\n:- place("vsink","region-one").\n')
    text = (vfw_copy / "ordo.yaml").read_text()
    listed = "    - policies/config-after-modules.lp"
    (vfw_copy / "ordo.yaml").write_text(text.replace(listed, listed + "\n    - policies/not-one.lp"))
    result = plan(vfw_copy).plan
    assert [(v.policy, v.bindings, v.resources) for v in result.violations] == [("not-one", {}, ("vsink",))]
    run = run_ordo("plan", "-C", vfw_copy)
    assert "  advisory: not-one (policies/not-one.lp:5): resources: vsink\n" in run.out, run.out
    (vfw_copy / "tests" / "not_one_test.yaml").write_text(
        "project: ..\ntests:\n- name: vsink is reported\n  expect:\n"
        "    violations: [{policy: not-one, resources: [vsink]}]\n")
    tested = run_ordo("test", "-C", vfw_copy, str(vfw_copy / "tests" / "not_one_test.yaml"))
    assert tested.code == 0, tested.text
    # a name the rule compares with, or needs false, is not what the rule is about
    (vfw_copy / "policies" / "not-one.lp").write_text(
        '%@ name: not-one\n%@ enforcement: advisory\n\n% VNFs but vfw not on region-one\n'
        ':- resource(R,"vnf"), place(R,"region-one"), R != "vfw", not label("vpg","x","y").\n')
    assert [(v.bindings, v.resources) for v in plan(vfw_copy).plan.violations] == [
        ({"R": "vpg"}, ("vpg",)), ({"R": "vsink"}, ("vsink",))]


def test_a_level_with_no_integrity_constraint_to_act_on_is_warned(vfw_copy):
    """config-after-modules holds only orderings: made advisory (in ordo.yaml, or in its header) it bound all
    the same and nothing said so (an authoring sweep's). prefer-cheaper-region, soft by its header, has a
    #minimize for that to act on: no warning."""
    set_enforcement(vfw_copy, "    config-after-modules: { level: advisory }\n")
    run = run_ordo("check", "-C", vfw_copy)
    said = ("policy 'config-after-modules' is advisory, but it has no integrity constraint (':- ...') for that to "
            "act on: its other rules (orderings) hold all the same")
    assert run.code == 0 and f"ordo.yaml:8:27: warning: policies.enforcement.config-after-modules: {said}" in run.err
    assert "prefer-cheaper-region" not in run.err, run.err
    path = vfw_copy / "ordo.yaml"
    path.write_text(path.read_text().replace("  enforcement:\n    config-after-modules: { level: advisory }\n", ""))
    rules = vfw_copy / "policies" / "config-after-modules.lp"
    rules.write_text(rules.read_text().replace("%@ enforcement: hard", "%@ enforcement: soft", 1))
    run = run_ordo("check", "-C", vfw_copy)
    assert run.code == 0 and "policies/config-after-modules.lp: warning: policy 'config-after-modules' is soft" \
        in run.err, run.err
    assert "no integrity constraint" not in run_ordo("check", "-C", VFW).err
