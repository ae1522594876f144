"""`ordo plan` imports only what planning needs: not the executor's engine (a run's
machinery) nor networkx (only to name a cycle). Both cost start-up time in every
`ordo plan` (issue 12, docs/architecture.md "Where the time goes in `ordo plan`")."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import EXAMPLES

PROBE = """
import json, sys
import ordo.cli
try:
    ordo.cli.main(["plan", "-C", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("networkx", "executor"))))
"""


def test_plan_imports_neither_the_engine_nor_networkx(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLES / "vfw"), str(tmp_path / "plan.json")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert (tmp_path / "plan.json").exists()
    assert "executor.runs" in loaded   # the journal's records were read
    assert not [m for m in loaded if m.startswith(("networkx", "executor.engine", "executor.temporal",
                                                   "executor.controllers"))], loaded
