"""Shared fixtures: the bundled examples and a way to run the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
VFW = EXAMPLES / "vfw"
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def ordo_executable() -> str:
    found = Path(sys.executable).parent / "ordo"
    return str(found) if found.exists() else (shutil.which("ordo") or "ordo")


def run_ordo(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> Run:
    """Run the installed ``ordo`` console script as a user would (no colour, wide lines)."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "500", **(env or {})}
    proc = subprocess.run([ordo_executable(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def vfw_copy(tmp_path: Path) -> Path:
    """A private copy of the vFW example to change."""
    dest = tmp_path / "vfw"
    shutil.copytree(VFW, dest, ignore=shutil.ignore_patterns(".ordo"))
    return dest
