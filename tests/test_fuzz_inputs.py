"""Mangled inputs never crash ordo: every outcome is diagnostics or a result.

Seeded random edits of the vFW example's files (lines dropped, doubled,
re-indented, values replaced, characters flipped), each checked and planned
in-process. Any exception other than DiagnosticsError is a bug.
ORDO_FUZZ=N runs N seeds instead of 120 (1,500 passed when this was written).
"""

from __future__ import annotations

import os
import random
import shutil

import pytest

from domain.errors import DiagnosticsError
from domain.project import load_project
from planner.check import check
from planner.core import make_plan
from tests.conftest import VFW

FILES = ["ordo.yaml", "catalog.yaml", "inventory.yaml", "requests/instantiate.yaml",
         "policies/config-after-modules.lp"]
TOKENS = ["", "-", "[", "]", "{", "}", ":", "null", "true", "0", "-1", "1.5", "'x'", "&a", "*a", "!!binary x",
          "absent", "vfw", "uses", "part_of", "%", ":-", "before(X,Y)", ".", "#script", "~", "\t"]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        kind = rng.randrange(6)
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[i])
        elif kind == 2:
            lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        elif kind == 3 and ":" in lines[i]:
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {rng.choice(TOKENS)}"
        elif kind == 4 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice(TOKENS) + lines[i][j + 1:]
        else:
            lines[i] = rng.choice(TOKENS)
        if not lines:
            lines = [""]
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(int(os.environ.get("ORDO_FUZZ", "120"))))
def test_mangled_project_gives_diagnostics_not_a_crash(tmp_path, seed):
    rng = random.Random(seed)
    root = tmp_path / "vfw"
    shutil.copytree(VFW, root)
    target = root / FILES[seed % len(FILES)]
    target.write_text(mutate(target.read_text(), rng))
    found = check(root)  # must not raise
    assert all(d.summary for d in found)
    errors = [d for d in found if d.severity == "error"]
    try:
        outcome = make_plan(load_project(root), timeout=5)
    except DiagnosticsError as exc:
        assert exc.diagnostics and all(d.summary for d in exc.diagnostics), "an error must say what is wrong"
        assert errors, f"`ordo check` found nothing wrong, planning refused: {exc.diagnostics[0].summary}"
        return
    # `ordo check` and planning agree, and a result is a plan, or an explanation of why there is none
    assert not errors, f"`ordo check` found errors, planning went ahead: {errors[0].summary}"
    if outcome.plan is not None:
        assert outcome.status in ("optimal", "satisfiable")
        wave = {op.id: op.wave for op in outcome.plan.operations}
        assert all(wave[edge.before] < wave[edge.after] for edge in outcome.plan.edges)
    else:
        assert outcome.status == "timeout" or (outcome.status == "no_plan" and outcome.explanation is not None)
