"""When the time limit strikes before the optimum is proved, `ordo plan`
gives the best plan found so far (status satisfiable) and the optimality gap,
per priority level: never "no plan" when a plan exists (planner/solve.py)."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from domain.project import load_project
from planner.core import make_plan
from planner.plan import Plan
from tests.conftest import VFW, run_ordo


@pytest.fixture
def packing(tmp_path):
    """40 VNFs of uneven sizes on four regions, the cheaper ones a third of
    the demand each: filling them best is subset sum. A first plan is found
    at once; proving a cost optimal takes minutes (well past 2 s)."""
    rng = random.Random(7)
    sizes = [rng.randrange(5, 60) for _ in range(40)]
    third = sum(sizes) // 3 + 1
    shutil.copy(VFW / "catalog.yaml", tmp_path / "catalog.yaml")
    targets = [f"  r-{i}: {{zone: z-{i}, capacity: {{vcpu: {cap}}}, attributes: {{cost: {i}}}}}"
               for i, cap in ((1, third), (2, third), (3, third), (4, sum(sizes)))]
    (tmp_path / "inventory.yaml").write_text("targets:\n" + "\n".join(targets) + "\n")
    vnfs = [f"- {{name: vnf-{i:02d}, type: vnf, part_of: svc, requires: {{vcpu: {size}}}}}"
            for i, size in enumerate(sizes)]
    (tmp_path / "request.yaml").write_text("resources:\n- {name: svc, type: service}\n" + "\n".join(vnfs) + "\n")
    (tmp_path / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n"
                                        "policies:\n  library: [capacity, prefer-cheaper-region]\n")
    return tmp_path


def test_time_limit_before_the_proof_gives_the_best_plan_and_its_gap(packing):
    outcome = make_plan(load_project(packing), timeout=2)
    assert outcome.status == "satisfiable"
    assert [level.priority for level in outcome.plan.cost] == [1]
    level = outcome.plan.cost[0]
    assert level.bound is not None and 0 < level.bound < level.cost
    assert len(outcome.plan.placements) == 40


def test_the_gap_is_in_plan_json_and_in_the_cli_output(packing):
    out = packing / "plan.json"
    run = run_ordo("plan", "-C", packing, "--timeout", "2", "--out", out)
    assert run.code == 0, run.err
    saved = json.loads(out.read_text())
    assert saved["status"] == "satisfiable"
    [level] = saved["cost"]
    assert set(level) == {"priority", "cost", "bound"} and level["bound"] < level["cost"]
    assert (f"Solver: satisfiable, cost {level['cost']}@1 (lower bound {level['bound']}, "
            f"gap {level['cost'] - level['bound']})") in run.out
    assert Plan.from_json(out.read_text()).cost[0].bound == level["bound"]   # a saved plan reads back


def test_an_optimal_plan_has_no_bound_in_plan_json(tmp_path):
    out = tmp_path / "plan.json"
    assert run_ordo("plan", "-C", VFW, "--out", out).code == 0
    saved = json.loads(out.read_text())
    assert saved["status"] == "optimal"
    assert all("bound" not in level for level in saved["cost"])
