"""`ordo plan` imports only what planning needs: not the executor's engine (a run's
machinery) nor networkx (only to name a cycle). Both cost start-up time in every
`ordo plan` (issue 12, docs/architecture.md "Where the time goes in `ordo plan`")."""

from __future__ import annotations

import json
import subprocess
import sys

import clingo

from planner.solve import symbol_texts
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


def test_symbol_texts_are_clingos_own():
    """The child's fast text of the shown atoms is byte for byte ``str`` of each symbol."""
    long = "x" * 1000   # past the first buffer
    terms = ['op("db-1","start")', '__before("a","b","c","d",12)', "f(-3,#inf,#sup)", "(1,(a,b),())",
             r'-g("with \"quote\" and \\ backslash","\n")', f'place("{long}","t")', "a", '"s"',
             f'h("{long}{long}",{long[:5]})']
    symbols = [clingo.parse_term(t) for t in terms] + [clingo.Number(-7), clingo.Tuple_([])]
    assert symbol_texts(symbols) == [str(sym) for sym in symbols]
    assert symbol_texts([]) == []
