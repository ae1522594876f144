"""`ordo explain --conflict` asks the solver few questions: policies that
conflict whatever is requested are found with every goal held, on a program
the strict one's size, and shown to conflict whatever the goals on their own
ground instances (one more question); the goal-switchable program is not
ground at all. No set of switches is asked about twice."""

from __future__ import annotations

import clingo

from benchmarks.bench_explain import make_project
from domain.project import load_project
from planner.core import load_policies
from planner.explain import minimal_conflict
from planner.facts import model_facts


def test_a_conflict_of_policies_among_many_goals_takes_few_solver_calls(tmp_path, monkeypatch):
    root = tmp_path / "p"
    vnfs = make_project(root, 300, 50, "rules")   # 300 goals; 50 rules keep VNFs off region-east, 1 wants one there
    project = load_project(root)
    calls = []
    solve = clingo.Control.solve

    def counted(self, *args, **kwargs):
        # by program: the check on the rules' own instances is another Control
        calls.append((id(self), frozenset(str(sym) for sym, _ in kwargs.get("assumptions") or [])))
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(clingo.Control, "solve", counted)
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=60)
    assert found is not None and found.minimal
    assert [(r.file, r.line, r.text) for r in found.rules] == [
        ("policies/must-east.lp", 7, f':- not place("{vnfs[0]}","region-east").'),
        ("policies/off-east.lp", 7, f':- place("{vnfs[0]}","region-east").')]
    assert found.goals == []
    assert found.checks == len(calls) == len(set(calls))   # each set once, and counted as asked
    # 17 when every goal was assumed first and halved away, and sets were asked twice; 9 with the goals
    # free; 9 with the goals held + 1 on the rules' own instances, whatever the goals; now 4 + 1 (the
    # preferred set, by bisection of prefixes of the order, cut short by the solver's cores)
    assert len(calls) <= 5


def test_policies_that_conflict_whatever_is_requested_never_ground_the_goal_switches(tmp_path, monkeypatch):
    """The goal-switchable program is about twice the strict one (a goal's
    resource may end in its current state or the asked one); rules that
    contradict each other whatever the goals are found without it."""
    import planner.solve
    from planner.explain import SWITCHES

    root = tmp_path / "p"
    vnfs = make_project(root, 100, 20, "instances")   # one rule x 20 instances, and one ground rule
    project = load_project(root)
    extras = []
    ground = planner.solve._ground

    def recorded(program, facts, extra, args):
        extras.append(extra)
        return ground(program, facts, extra, args)

    monkeypatch.setattr(planner.solve, "_ground", recorded)
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=60)
    assert found is not None and found.minimal and found.goals == []
    assert [(r.file, r.text) for r in found.rules] == [
        ("policies/must-east.lp", f':- not place("{vnfs[0]}","region-east").'),
        ("policies/off-east.lp", ':- place(R,"region-east"), east_forbidden(R).')]
    assert extras and SWITCHES not in extras
