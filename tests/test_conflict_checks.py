"""`ordo explain --conflict` asks the solver few questions: policies that
conflict whatever is requested are found with every goal left free (one
question instead of halving through a goal per resource), and no set of
switches is asked about twice."""

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
        calls.append(frozenset(str(sym) for sym, _ in kwargs.get("assumptions") or []))
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(clingo.Control, "solve", counted)
    found = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=60)
    assert found is not None and found.minimal
    assert [(r.file, r.line, r.text) for r in found.rules] == [
        ("policies/must-east.lp", 7, f':- not place("{vnfs[0]}","region-east").'),
        ("policies/off-east.lp", 7, f':- place("{vnfs[0]}","region-east").')]
    assert found.goals == []
    assert found.checks == len(calls) == len(set(calls))   # each set once, and counted as asked
    assert len(calls) <= 10   # 17 when every goal was assumed first and halved away, and sets were asked twice
