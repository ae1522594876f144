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
    # the same N (and seed) gives the same files, byte for byte
    again = tmp_path / "b"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "300", str(again)], check=True,
                   capture_output=True)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for path in files:
        assert (out / path).read_bytes() == (again / path).read_bytes(), path
