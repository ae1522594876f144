"""Authoring (issue 13): stock policies that fit any project, a hint for a
missing period, placement explanations, every problem of ``ordo check`` at
once, ``ordo init``, and ``ordo --help`` that cuts nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.errors import OrdoError
from domain.project import load_project
from ordo.cli import cli, main
from ordo.init import FILES, init_project
from planner.check import check
from planner.core import make_plan
from planner.plan import Plan
from planner.program import load_program
from planner.why import UnknownOperation, explain_operation, explain_placement
from tests.conftest import VFW, run_ordo


def invoke(*args: str | Path):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


# --- ordo --help ---------------------------------------------------------------


def test_help_cuts_no_description() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands, commands
    for name in ("abort", "resume", "state"):
        assert f"\n  {name} " in commands


# --- a missing period ----------------------------------------------------------


@pytest.mark.parametrize(("text", "where", "clingo_at"), [
    # the period is missing on line 3; clingo stops where the next rule starts, on line 6
    ("% a policy\np(1).\nq(X) :- p(X)\n% the next rule\n\n:- q(2).\n", (3, 13), "6:1"),
    ("p(1).\nq(X) :- p(X)   % a comment with a . in it\nr(X) :- q(X).\n", (2, 13), "3:1"),
    ("p(1).\nq(X) :- p(X)\n", (2, 13), "3:1"),                      # at the end of the file
    ("p(1).\nq(X) :- p(X)", (2, 13), "3:1"),                        # with no line break at the end (a sweep's)
    ('p(1).\nq("a") :- p(1)\n#minimize { 1 : p(1) }.\n', (2, 15), "3:1"),
    ("p(1)\nq(1).\n", (1, 5), "2:1"),
])
def test_missing_period_points_at_the_end_of_the_rule(tmp_path: Path, text: str, where: tuple[int, int],
                                                      clingo_at: str) -> None:
    path = tmp_path / "p.lp"
    path.write_text(text, encoding="utf-8")
    [diag] = load_program([(path, "p.lp", "project")], tmp_path).diagnostics
    assert (diag.line, diag.column) == where
    assert diag.summary == "syntax error: missing '.'?"
    assert f"clingo, at {clingo_at}: syntax error, unexpected" in diag.detail


@pytest.mark.parametrize(("text", "where"), [
    (":- place(R,T\nq(1).\n", (1, 13)),
    ("bad(X) :- foo(X", (1, 16)),   # (at the end of the file)
])
def test_a_parenthesis_left_open_is_named_not_a_period(tmp_path: Path, text: str, where: tuple[int, int]) -> None:
    """clingo expects a ')' there: "missing '.'?" sent the author to add one, which mends nothing (an
    authoring sweep's)."""
    path = tmp_path / "p.lp"
    path.write_text(text, encoding="utf-8")
    [diag] = load_program([(path, "p.lp", "project")], tmp_path).diagnostics
    assert (diag.line, diag.column, diag.summary) == (*where, "syntax error: missing ')'?"), diag
    assert diag.detail.startswith("a '(' is not closed before the next statement; clingo, at"), diag.detail


@pytest.mark.parametrize(("text", "where"), [
    ("p(1).\n%* a comment\nleft open\n\nq(1).\n", (2, 1)),
    ("p(1).  %* one %* nested *% but the outer\nnot closed\n", (1, 8)),   # (they nest)
    ('p("%*").\n% %* in a line comment\nq(1). %* x\n', (3, 7)),          # (not in a string or a line comment)
])
def test_a_comment_never_closed_is_shown_where_it_opens(tmp_path: Path, text: str, where: tuple[int, int]) -> None:
    """clingo reports it at the end of the file (a sweep's, 6 December)."""
    path = tmp_path / "p.lp"
    path.write_text(text, encoding="utf-8")
    [diag] = load_program([(path, "p.lp", "project")], tmp_path).diagnostics
    assert (diag.line, diag.column, diag.summary) == (*where, "a '%*' comment that is never closed"), diag
    assert "lexer error, unexpected <EOF>" in diag.detail


@pytest.mark.parametrize("text", [
    "a(1..).\n",                   # not a missing period: the message stays clingo's
    "p(X) :- q(X) r(X).\n",        # a missing comma in the middle of a line
    "p(X) :- q(X),\n:- r.\n",      # a body left open after ','
])
def test_other_syntax_errors_keep_clingos_message(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.lp"
    path.write_text(text, encoding="utf-8")
    [diag] = load_program([(path, "p.lp", "project")], tmp_path).diagnostics
    assert diag.summary.startswith("syntax error, unexpected")


# --- stock policies take their keys from the project ------------------------------


def _cpu_project(root: Path, parameters: str = "") -> Path:
    """The vFW with the capacity key `cpu` instead of `vcpu`."""
    for name in ("inventory.yaml", "requests/instantiate.yaml"):
        path = root / name
        path.write_text(path.read_text(encoding="utf-8").replace("vcpu", "cpu"), encoding="utf-8")
    if parameters:
        path = root / "ordo.yaml"
        text = path.read_text(encoding="utf-8").replace("  files:", f"  parameters:\n{parameters}  files:", 1)
        path.write_text(text, encoding="utf-8")
    return root


def _placements(root: Path) -> dict[str, str]:
    outcome = make_plan(load_project(root))
    assert outcome.plan is not None
    return dict(outcome.plan.placements)


def test_stock_policy_reading_a_key_no_model_names_is_a_warning(vfw_copy: Path) -> None:
    _cpu_project(vfw_copy)
    found = check(vfw_copy)
    [warning] = [d for d in found if d.code == "vocabulary"]
    assert str(warning) == (
        'ordo.yaml:10:7: warning: policies.library[2]: prefer-cheaper-region reads requires(_, "vcpu", _), '
        "which no resource declares (the policy has no effect in this project; set "
        "policies.parameters.prefer-cheaper-region.weight_key in ordo.yaml: did you mean 'cpu'?)")
    assert not [d for d in found if d.severity == "error"]
    # every command that plans says it too (the shared pipeline)
    assert warning in make_plan(load_project(vfw_copy)).warnings
    result = invoke("check", "-C", vfw_copy)
    assert result.exit_code == 0
    assert "Success! The project is valid, with 1 warning." in result.output


def test_a_parameter_gives_a_stock_policy_the_projects_key(vfw_copy: Path, tmp_path: Path) -> None:
    before = _placements(VFW)
    unset = tmp_path / "unset"
    shutil.copytree(vfw_copy, unset)
    # without the parameter the cost preference is silently off: vpg goes elsewhere
    assert _placements(_cpu_project(unset)) != before
    _cpu_project(vfw_copy, "    prefer-cheaper-region: { weight_key: cpu, cost_key: cost }\n")
    assert not check(vfw_copy)
    assert _placements(vfw_copy) == before


def test_parameter_mistakes_are_errors_in_ordo_yaml(vfw_copy: Path) -> None:
    _cpu_project(vfw_copy, "    prefer-cheaper-region: { weight: cpu }\n    prefer-cheaper: { weight_key: cpu }\n")
    found = [str(d) for d in check(vfw_copy) if d.severity == "error"]
    assert found == [
        "ordo.yaml:14:30: error: policies.parameters.prefer-cheaper-region.weight: 'prefer-cheaper-region' has "
        "no parameter 'weight' (its parameters: cost_key, weight_key)",
        "ordo.yaml:15:5: error: policies.parameters.prefer-cheaper: unknown library policy 'prefer-cheaper' "
        "(did you mean 'prefer-cheaper-region'?)",
    ]


def test_a_parameter_of_the_wrong_kind_or_of_a_policy_left_out_is_named(vfw_copy: Path) -> None:
    """label_key: 5 never bound, and parameters of a stock policy not enabled had no effect, without a
    word (the sweep of 6 December)."""
    _cpu_project(vfw_copy, "    anti-affinity: { label_key: 5 }\n    strict-teardown: { x: 1 }\n"
                           "    prefer-cheaper-region: { weight_key: cpu, cost_key: true }\n")
    found = [str(d) for d in check(vfw_copy) if d.code != "vocabulary"]
    assert found == [
        "ordo.yaml:14:22: error: policies.parameters.anti-affinity.label_key: anti-affinity.label_key is text, "
        "not 5 (its default: \"anti-affinity\")",
        "ordo.yaml:15:5: warning: policies.parameters.strict-teardown: parameters for 'strict-teardown', which "
        "policies.library does not enable (they have no effect: add it to policies.library, or drop them)",
        "ordo.yaml:16:47: error: policies.parameters.prefer-cheaper-region.cost_key: prefer-cheaper-region.cost_key "
        "is text, not true (its default: \"cost\")",
    ], found


def test_a_stock_policys_parameter_is_its_own_constant(vfw_copy: Path) -> None:
    """A project file may use the name of a stock policy's parameter: no clash."""
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text(encoding="utf-8") + '\n#const weight_key = 3.\n', encoding="utf-8")
    assert not [d for d in check(vfw_copy) if d.severity == "error"]
    assert _placements(vfw_copy) == _placements(VFW)


# --- ordo check: every problem at once ------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _errors(root: Path) -> list[str]:
    return [str(d) for d in check(root) if d.severity == "error"]


@pytest.mark.parametrize(("file", "old", "new", "schema_error"), [
    ("inventory.yaml", "zone: az1", "zone: az1\n    zonee: x",
     "inventory.yaml:5:12: error: targets.region-one.zonee: unknown field 'zonee' (did you mean 'zone'?)"),
    ("catalog.yaml", "    placement: true", "    placement: true\n    placment: true",
     "catalog.yaml:63:15: error: types.vnf.placment: unknown field 'placment' (did you mean 'placement'?)"),
])
def test_a_schema_error_does_not_hide_reference_errors_in_other_files(
        vfw_copy: Path, file: str, old: str, new: str, schema_error: str) -> None:
    _edit(vfw_copy / file, old, new)
    _edit(vfw_copy / "requests/instantiate.yaml", "uses: [unprotected-net", "uses: [onap-mgmt-nett")
    assert _errors(vfw_copy) == [
        schema_error,
        "requests/instantiate.yaml:19:20: error: services.vfw-service.vnfs[0].vf_modules[0].uses[0]: "
        "unknown resource 'onap-mgmt-nett' (did you mean 'onap-mgmt-net'?)",
    ]


def test_an_item_left_out_for_its_schema_error_makes_up_no_problems(vfw_copy: Path) -> None:
    """The vPG lacks its name: it is left out of the second look, and what
    names it (or its parts) is not reported as unknown; the rest is."""
    request = vfw_copy / "requests/instantiate.yaml"
    _edit(request, "      - name: vpg ", "      - nme: vpg ")
    _edit(request, "- name: vfw\n", "- name: vfw\n        placement: region-nine\n")
    schema_errors = [
        "requests/instantiate.yaml:14:9: error: services.vfw-service.vnfs[0].name: missing required field 'name'",
        "requests/instantiate.yaml:14:14: error: services.vfw-service.vnfs[0].nme: unknown field 'nme' "
        "(did you mean 'name'?)",
    ]
    assert [str(d) for d in check(vfw_copy)] == [
        *schema_errors,
        "requests/instantiate.yaml:26:20: error: services.vfw-service.vnfs[1].placement: unknown target "
        "'region-nine' (did you mean 'region-one'?)",
    ]
    # the second look's model is not used further: the vocabulary of what was
    # left out is missing (the vPG's label), so anti-affinity would seem idle
    _edit(request, "        placement: region-nine\n", "")
    assert [str(d) for d in check(vfw_copy)] == schema_errors


def test_an_entry_left_out_of_a_section_makes_up_no_unknown_names(vfw_copy: Path) -> None:
    """A type whose key is not a valid name is left out; that its resources
    then have an unknown type follows from the same mistake and is not
    reported again, but a reference error elsewhere still is."""
    _edit(vfw_copy / "catalog.yaml", "  vf-module:", "  -vf-module:")
    _edit(vfw_copy / "requests/instantiate.yaml", "uses: [unprotected-net", "uses: [onap-mgmt-nett")
    assert _errors(vfw_copy) == [
        "catalog.yaml:67:3: error: types.-vf-module: invalid name '-vf-module' (expected letters, digits and "
        "_ . : - (starting with a letter or digit))",
        "requests/instantiate.yaml:19:20: error: services.vfw-service.vnfs[0].vf_modules[0].uses[0]: "
        "unknown resource 'onap-mgmt-nett' (did you mean 'onap-mgmt-net'?)",
    ]


def test_a_syntax_error_does_not_hide_lint_errors_in_other_policy_files(vfw_copy: Path) -> None:
    (vfw_copy / "policies" / "a.lp").write_text("foo(X) :- op(X,_)\nbar(1).\n", encoding="utf-8")
    (vfw_copy / "policies" / "b.lp").write_text(":- reachs(X,_).\n:- foo(X), op(X,_).\n", encoding="utf-8")
    _edit(vfw_copy / "ordo.yaml", "    - policies/config-after-modules.lp",
          "    - policies/config-after-modules.lp\n    - policies/a.lp\n    - policies/b.lp")
    assert _errors(vfw_copy) == [
        "policies/a.lp:1:18: error: syntax error: missing '.'? (no '.' ends the statement here; clingo, at 2:1: "
        "syntax error, unexpected <IDENTIFIER>)",
        # foo/1 is not reported: the file that does not parse names it
        "policies/b.lp:1:4: error: predicate 'reachs/2' is read but never defined (did you mean 'reaches/2'?)",
    ]


def test_a_lifecycle_with_no_way_down_names_the_type_and_the_missing_transition(vfw_copy: Path) -> None:
    _edit(vfw_copy / "catalog.yaml", "      deactivate:    { from: active,          to: assigned }\n", "")
    [warning] = check(vfw_copy)
    assert str(warning) == (
        "catalog.yaml:59:16: warning: types.vnf.lifecycle: type 'vnf' has no way down from 'active' to 'absent': "
        "once there, it can never be deleted or replaced (add to its lifecycle an operation from 'active' to "
        "'configured')")
    # a request that needs the way down: an error at the resource, instead of
    # the planner's "drop or relax: lifecycle"
    found = [str(d) for d in check(vfw_copy, "requests/delete.yaml", "inventory-deployed.yaml")]
    assert found == [
        f"inventory-deployed.yaml:{line}: error: '{vnf}' cannot go from 'active' to 'absent' with 'vfw-service', "
        "which is to go: type 'vnf' has no operations that lead there (add to its lifecycle an operation from "
        "'active' to 'configured')" for line, vnf in ((37, "vpg"), (49, "vsink"), (60, "vfw"))
    ]


# --- explaining a placement ------------------------------------------------------------


def test_explain_a_placement_names_what_rules_out_each_other_target_and_what_the_rest_cost(
        vfw_copy: Path) -> None:
    _edit(vfw_copy / "inventory.yaml", "capacity: { vcpu: 10,", "capacity: { vcpu: 6,")  # region-one
    saved = vfw_copy / "plan.json"
    assert invoke("plan", "-C", vfw_copy, "--out", saved).exit_code == 0
    plan = Plan.read(saved)
    why = explain_placement(load_project(vfw_copy), plan, "vfw", timeout=20)
    assert (why.target, why.cost, why.inputs_changed) == ("region-two", ((1, 26),), False)
    one, three = why.alternatives
    assert (one.target, one.status, [(c.policy, c.location) for c in one.conflicts]) == (
        "region-one", "no_plan", [("capacity", "<library>/capacity.lp:9")])
    assert dict(one.conflicts[0].bindings) == {"T": "region-one", "K": "vcpu", "C": "6"}
    assert (three.target, three.status, three.cost, three.optimal, three.moves) == (
        "region-three", "plan", ((1, 46),), True, (("vpg", "region-two"), ("vsink", "region-two")))
    result = invoke("explain", saved, "vfw", "-C", vfw_copy)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:6] == [
        "vfw is placed on region-two: chosen by the planner: of the targets every hard policy allows, the one of "
        "least cost",
        "  Cost of this plan: 26@1  (cost@priority)",
        "",
        "  region-one: ruled out by",
        "    capacity (<library>/capacity.lp:9): T=region-one, K=vcpu, C=6",
        "      capacity: what is located on a target fits in its capacity. Counts every resource that will be "
        "present, new or existing, by its `requires` (vcpu, memory_gb ...) against the target's `capacity`.",
    ]
    assert "  region-three: possible, at cost 46@1" in result.output


def test_explain_a_resource_the_plan_does_not_place_names_its_operations(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert invoke("plan", "-C", VFW, "--out", saved).exit_code == 0
    with pytest.raises(UnknownOperation, match="'vfw-service' is a resource the plan does not place; its "
                                               "operations: vfw-service/activate, vfw-service/assign"):
        explain_operation(Plan.read(saved), "vfw-service")


# --- ordo init -------------------------------------------------------------------------


def test_init_writes_a_project_that_checks_plans_and_tests(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    result = invoke("init", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(FILES)
    checked = invoke("check", "-C", folder)
    assert (checked.exit_code, checked.output) == (0, "Success! The project is valid.\n")
    planned = invoke("plan", "-C", folder, "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output   # a plan, with changes
    assert "db -> site-a" in planned.output and "web -> site-b" in planned.output
    tested = invoke("test", "-C", folder, "--fail-under", "100")
    assert tested.exit_code == 0, tested.output
    assert "4 passed" in tested.output


def test_init_says_why_it_cannot_look_at_its_folder(tmp_path: Path) -> None:
    """A name too long for the system to look at was a bug in ordo (OSError; the CLI sweep of 6 December)."""
    run = run_ordo("init", tmp_path / ("a" * 300))
    assert run.code == 1 and "cannot write the project in" in run.err and "File name too long" in run.err, run.text
    assert not list(tmp_path.iterdir())


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "private-db.lp").write_text("% mine\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["init", str(tmp_path)])
    assert exited.value.code == 1
    assert f"error: not overwriting existing files: {tmp_path / 'policies' / 'private-db.lp'}" in " ".join(
        capsys.readouterr().err.split())
    assert (tmp_path / "policies" / "private-db.lp").read_text(encoding="utf-8") == "% mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["policies", "private-db.lp"]
    with pytest.raises(OrdoError, match="not overwriting"):
        init_project(tmp_path)
