"""Authoring (issue 13): stock policies that fit any project, a hint for a
missing period, placement explanations, every problem of ``ordo check`` at
once, ``ordo init``, and ``ordo --help`` that cuts nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.project import load_project
from ordo.cli import cli
from planner.check import check
from planner.core import make_plan
from planner.program import load_program
from tests.conftest import VFW


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


def test_a_stock_policys_parameter_is_its_own_constant(vfw_copy: Path) -> None:
    """A project file may use the name of a stock policy's parameter: no clash."""
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text(encoding="utf-8") + '\n#const weight_key = 3.\n', encoding="utf-8")
    assert not [d for d in check(vfw_copy) if d.severity == "error"]
    assert _placements(vfw_copy) == _placements(VFW)
