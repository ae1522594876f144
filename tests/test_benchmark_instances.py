"""The benchmark's generated instances stay valid and plannable (the timed
runs themselves live in benchmarks/, not in the test suite)."""

from __future__ import annotations

import subprocess
import sys

from domain.project import load_project
from planner.core import make_plan
from tests.conftest import ROOT


def test_generated_instance_plans(tmp_path):
    out = tmp_path / "n300"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "300", str(out)], check=True,
                   capture_output=True)
    project = load_project(out)
    assert len(project.model.resources) == 300
    outcome = make_plan(project)
    assert outcome.status == "optimal"
    assert outcome.plan.ground_atoms > 0
    assert len(outcome.plan.operations) > 300
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "300", str(tmp_path / "b")],
                           check=True, capture_output=True)
    assert again.returncode == 0
    for path in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        assert (out / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path
