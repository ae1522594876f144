"""Authoring (issue 13): stock policies that fit any project, a hint for a
missing period, placement explanations, every problem of ``ordo check`` at
once, ``ordo init``, and ``ordo --help`` that cuts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ordo.cli import cli
from planner.program import load_program


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
