"""The fixed start-up of `ordo plan`: what it imports and builds (issue 12,
docs/architecture.md "Where the time goes in `ordo plan`"). A fresh
interpreter plans the vFW and reports its modules and which pydantic
validators of the project's file formats and of the plan's parts it built."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

PROBE = """
import json, sys
import ordo.cli
try:
    ordo.cli.main(["plan", "-C", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
from domain.formats import _Strict
from planner.plan import _Frozen

def below(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from below(sub)

built = sorted({c.__name__ for c in below(_Strict) if c.__pydantic_complete__})
parts = sorted({c.__name__ for c in below(_Frozen) if c.__pydantic_complete__})
print(json.dumps({"modules": sorted(sys.modules), "built": built, "plan_parts": parts}))
"""


def test_plan_imports_and_builds_only_what_planning_reads(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLES / "vfw"), str(tmp_path / "plan.json")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert (tmp_path / "plan.json").exists()
    # a file model validates its nested specs itself: theirs are never built on their own
    assert seen["built"] == ["CatalogFile", "GuardsFile", "InventoryFile", "ProjectFile", "RequestFile"]
    # the plan is made of trusted parts and written by to_json: only what is made with validation is built
    assert seen["plan_parts"] == ["CostLevel", "InputFile"]
    unused = ("service", "fastapi", "uvicorn", "temporalio", "pyDatalog", "networkx", "domain.policytests",
              "executor.engine", "executor.temporal", "executor.controllers", "executor.core.messages",
              "executor.core.loop", "executor.core.state", "planner.whatif", "planner.why",
              "planner.verify", "planner.check", "ordo.runs", "ordo.progress", "ordo.testreport")
    assert not [m for m in seen["modules"] if m.startswith(unused)]


@pytest.mark.parametrize("package", ["domain", "executor.core"])
def test_every_lazy_name_is_also_imported_for_type_checkers(package):
    """A package that imports its names on first use (``__getattr__``) imports
    the same names under TYPE_CHECKING, so editors and type checkers see them."""
    module = importlib.import_module(package)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    checked = {alias.asname or alias.name
               for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
               for stmt in node.body if isinstance(stmt, ast.ImportFrom) for alias in stmt.names}
    eager = {alias.asname or alias.name for stmt in tree.body if isinstance(stmt, ast.ImportFrom)
             for alias in stmt.names}
    assert checked == set(module.__all__) - eager
    for name in checked:   # and __getattr__ finds each where the type checker does
        assert getattr(module, name) is not None
