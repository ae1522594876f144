"""What `ordo explain --conflict` leaves out or reads more cheaply, and that the
answers stay what they were: files that only feed a preference are not
grounded in conflict mode; labelling and lint read fewer of clingo's AST nodes;
the search runs in a child within the time limit and memory cap."""

from __future__ import annotations

import json
from pathlib import Path

import clingo
import pytest
from clingo import ast

from domain.project import load_project
from planner import lint
from planner.core import load_policies
from planner.explain import CONFLICT_ARGS, POLICY_SWITCHES, conflict_here, minimal_conflict, satisfiability
from planner.facts import model_facts
from planner.program import _global_variables, load_program
from planner.solve import ground_alongside
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


def test_the_stock_preference_is_not_grounded_in_conflict_mode(vfw_copy):
    project = load_project(vfw_copy, *DELETE_MGMT)
    program = load_policies(project)
    assert "<library>/prefer-cheaper-region.lp" in lint.optimisation_only(program)
    kept = satisfiability(program)
    assert [f.display for f in kept.files] == [f.display for f in program.files
                                               if f.display != "<library>/prefer-cheaper-region.lp"]
    assert kept.rules == program.rules
    facts = model_facts(project.model)
    _, full = ground_alongside(lambda: program, facts, POLICY_SWITCHES, CONFLICT_ARGS)
    _, left = ground_alongside(lambda: kept, facts, POLICY_SWITCHES, CONFLICT_ARGS)
    assert any(True for _ in full.symbolic_atoms.by_signature("cheaper_region_homed", 1))
    assert not any(True for _ in left.symbolic_atoms.by_signature("cheaper_region_homed", 1))


def test_leaving_the_preference_out_names_the_same_conflict(vfw_copy, monkeypatch):
    project = load_project(vfw_copy, *DELETE_MGMT)
    facts = model_facts(project.model)
    found = minimal_conflict(load_policies(project), facts, project.model, timeout=30)
    monkeypatch.setattr(lint, "optimisation_only", lambda _program: set())
    everything = minimal_conflict(load_policies(project), facts, project.model, timeout=30)
    assert found is not None and found.rules
    assert found.to_dict() == everything.to_dict()


@pytest.mark.parametrize(("text", "left_out"), [
    ("cheap(R) :- resource(R,_), not dear(R).\ndear(R) :- label(R,\"tier\",\"gold\").\n"
     ":~ cheap(R). [1@1,R]\n#minimize { 2,R : dear(R) }.\n", True),
    # a rule that reads itself through 'not' may have no model: kept
    ("odd(R) :- resource(R,_), not odd(R).\n:~ odd(R). [1,R]\n", False),
    ("loop(R) :- resource(R,_), again(R).\nagain(R) :- loop(R).\n:~ loop(R). [1,R]\n", False),
    # a choice, a constant (global to the program), a constraint, a placement rule: kept
    ("{ pick(R) } :- resource(R,_).\n:~ pick(R). [1,R]\n", False),
    ("#const w = 2.\nheavy(R) :- resource(R,_).\n:~ heavy(R). [w,R]\n", False),
    ("heavy(R) :- resource(R,_).\n:- heavy(R), label(R,\"x\",\"y\").\n", False),
    ("before(op(R,\"create\"),op(R,\"activate\")) :- resource(R,_).\n", False),
    ("-heavy(R) :- resource(R,_).\n:~ -heavy(R). [1,R]\n", False),
])
def test_only_files_that_feed_a_preference_alone_are_left_out(tmp_path, text, left_out):
    program = _program(tmp_path, {"pref.lp": text})
    assert (lint.optimisation_only(program) == {"pref.lp"}) is left_out


def test_a_preference_another_file_reads_is_kept(tmp_path):
    program = _program(tmp_path, {"pref.lp": "dear(R) :- label(R,\"tier\",\"gold\").\n:~ dear(R). [1,R]\n",
                                  "hard.lp": ":- dear(R), place(R,\"region-one\").\n"})
    assert lint.optimisation_only(program) == set()


class _Walked(ast.Transformer):
    """The variables of an atom as a walk of its terms finds them (labelling's reference)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_Variable(self, node):  # noqa: N802 (clingo's naming)
        if not node.name.startswith("_") and node.name not in self.names:
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
                    ":- bomb_pair(A,A), A < 0.\n", encoding="utf-8")   # read by a constraint: not left out
    run = run_ordo_process("explain", "-C", vfw_copy, *DELETE_MGMT[:1], "--inventory", DELETE_MGMT[1],
                           "--conflict", "--policy", bomb, "--timeout", "2", timeout=60)
    assert run.code in (1, 4), run.text
    assert "grounding exceeded" in run.text and "the policy that grounds largest is bomb" in run.text, run.text


def test_rules_that_feed_nothing_are_left_out_too(tmp_path):
    """No constraint reads what they derive: they cannot make a plan impossible (nor grow the grounding)."""
    program = _program(tmp_path, {"idle.lp": "pair(A,B) :- resource(A,_), resource(B,_).\n"})
    assert lint.optimisation_only(program) == {"idle.lp"}
