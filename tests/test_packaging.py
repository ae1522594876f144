"""The base library ships as package data: a wheel install finds it too."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT, VFW


@pytest.mark.slow
def test_wheel_ships_the_policy_library_and_plans_without_the_source_tree(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    [wheel] = list(wheels.glob("ordo-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("policies/base/lifecycle.lp", "policies/base/ordering.lp", "policies/base/placement.lp",
                   "policies/base/interface.lp", "policies/library/capacity.lp", "policies/README.md",
                   # the subpackages: `ordo test` and `ordo apply` need them
                   "planner/testing/running.py", "executor/controllers/base.py"):
        assert needed in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    code = ("import policies, planner.core as c, domain;"
            "from domain.project import load_project;"
            f"o = c.make_plan(load_project({str(VFW)!r}));"
            "print(policies.__file__); print(o.status, len(o.plan.operations))")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=env, cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str(site))  # the installed copy, not the source tree
    assert out[1] == "optimal 32"
