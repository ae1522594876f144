"""What `ordo explain --conflict` reads more cheaply, and that the answers stay
what they were: labelling and lint read fewer of clingo's AST nodes; the
search runs in a child within the time limit and memory cap."""

from __future__ import annotations

import json
from pathlib import Path

import clingo
import pytest
from clingo import ast

from domain.project import load_project
from planner import lint
from planner.explain import conflict_here
from planner.program import _global_variables, load_program
from tests.conftest import run_ordo_process

DELETE_MGMT = ("requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")
HEADER = "%@ name: {name}\n%@ description: t\n%@ owner: t\n%@ enforcement: soft\n"


def _program(folder: Path, files: dict[str, str]):
    paths = []
    for name, text in files.items():
        path = folder / name
        path.write_text(HEADER.format(name=path.stem) + text)
        paths.append((path, name, "project"))
    return load_program(paths, folder)


class _Walked(ast.Transformer):
    """The variables of an atom as a walk of its terms finds them (labelling's reference)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_Variable(self, node):  # noqa: N802 (clingo's naming)
        if node.name != "_" and node.name not in self.names:   # _V is a variable like V (only _ is anonymous)
            self.names.append(node.name)
        return node


@pytest.mark.parametrize("constraint", [
    r':- p("A\"B X", X, "\\", Y), q(f(Z,"Q"),Y'"'"'), not r(W), X != W, -s(Z'"'"', _V, _), t(A..B, (C;D), |E|, F+G*H).',
    ':- place(R,T), label(R,"Tier","Gold"), not target_label(T,"Tier","Gold"), R != T.',
    ":- p(Aa, aB, A_b', \"x\\ny\", B), q(_, B, Aa).",
])
def test_a_constraints_variables_are_those_a_walk_of_its_atoms_finds(constraint):
    statements: list[ast.AST] = []
    ast.parse_string(constraint, statements.append)
    body = list(statements[-1].body)
    walked = _Walked()
    for lit in body:
        if lit.ast_type == ast.ASTType.Literal and lit.sign == ast.Sign.NoSign \
                and lit.atom.ast_type == ast.ASTType.SymbolicAtom:
            walked(lit.atom)
    assert _global_variables(body) == walked.names
    assert walked.names


def test_a_script_call_is_found_however_the_statement_reads(tmp_path):
    program = _program(tmp_path, {"calls.lp": ':- resource(R,_), R = @pick(1).\n'
                                              'tagged("a@b") :- resource(R,_).\n'
                                              ':~ tagged(X). [1@2,X]\n'
                                              ':- label(R,"k",V), V = "@not_a_call".\n'})
    calls = [d for d in lint.lint(program) if d.code == "script"]
    assert [(d.line, d.summary) for d in calls] == [(5, "'@pick(...)' calls a script function: not allowed "
                                                        "in policy files")]


def test_the_labelled_program_is_what_clingo_parses(tmp_path):
    """The rewritten constraint carries the variables in its head, as grounding needs them."""
    program = _program(tmp_path, {"hard.lp": ':- place(R,T), label(R,"k",V), not target_label(T,"k",V).\n'})
    [rule] = program.rules
    assert rule.variables == ("R", "T", "V")
    ctl = clingo.Control(["--parallel-mode=1"])
    program.add_to(ctl)
    ctl.add("base", [], 'place("a","t"). label("a","k","v").')
    ctl.ground([("base", [])])
    assert [str(a.symbol) for a in ctl.symbolic_atoms.by_signature("__violation", 2)] == \
        ['__violation(0,("a","t","v"))']


def test_the_conflict_found_in_the_child_is_the_one_found_here(vfw_copy):
    """`ordo explain --conflict` (a process of its own: no threads, so the search is forked)."""
    run = run_ordo_process("explain", "-C", vfw_copy, *DELETE_MGMT[:1], "--inventory", DELETE_MGMT[1],
                           "--conflict", "--json")
    assert run.code == 3, run.text
    expected = conflict_here(load_project(vfw_copy, *DELETE_MGMT), timeout=30)
    assert json.loads(run.out) == json.loads(json.dumps(expected.to_dict()))


def test_a_policy_that_grounds_without_end_is_stopped_and_named(vfw_copy):
    """Before, `explain --conflict` grounded in the process itself, where nothing can stop clingo."""
    ordo_yaml = vfw_copy / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text(encoding="utf-8").replace(
        "  solve_timeout: 20", "  solve_timeout: 20\n  memory_limit_mb: 1024"), encoding="utf-8")
    bomb = vfw_copy / "bomb.lp"
    bomb.write_text("%@ name: bomb\n%@ description: t\n%@ owner: t\n%@ enforcement: hard\n"
                    "bomb_n(1..100000).\nbomb_pair(A,B) :- bomb_n(A), bomb_n(B).\n"
                    ":- bomb_pair(A,A), A < 0.\n", encoding="utf-8")
    run = run_ordo_process("explain", "-C", vfw_copy, *DELETE_MGMT[:1], "--inventory", DELETE_MGMT[1],
                           "--conflict", "--policy", bomb, "--timeout", "2", timeout=60)
    assert run.code in (1, 4), run.text
    assert "grounding exceeded" in run.text and "the policy that grounds largest is bomb" in run.text, run.text
    # explain's own option, not plan's setting (explain --timeout does not read settings.solve_timeout)
    assert "raise --timeout" in run.text and "solve_timeout" not in run.text, run.text
