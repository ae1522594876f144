"""Where ordo's time goes, and the ground program size measured directly.

Not the timed run (that is ``ordo plan`` as a separate process, see
bench_plan.py): this loads a project in-process, runs ``make_plan`` and
prints one JSON line with the phase timings ordo records, plus the ground
program size read from clingo's statistics *after* a solve call.

Why the extra measurement: clingo fills ``statistics["problem"]["lp"]`` only
once solving has started, and reading ``ctl.statistics`` before ``solve()``
leaves later reads stuck at zero. ordo's ``planner/solve.py`` reads it right
after grounding, so ``ground_atoms``/``ground_rules`` in plan.json come out as
0 (as of this writing). The probe grounds the same program (base + library +
project policies + facts + ordo's glue) and solves it once to read the
numbers.

Usage::

    python benchmarks/ordo_probe.py PROJECT_DIR
"""

from __future__ import annotations

import json
import sys
import time


def ground_size(project) -> dict:
    import clingo

    from planner.core import load_policies
    from planner.facts import model_facts
    from planner.program import GLUE, STRICT

    program = load_policies(project)
    facts = model_facts(project.model)
    ctl = clingo.Control(["--models=1", "--opt-mode=ignore"], logger=lambda *_: None)
    started = time.perf_counter()
    program.add_to(ctl)
    ctl.add("base", [], GLUE + STRICT)
    ctl.add("base", [], "\n".join(facts))
    ctl.ground([("base", [])])
    symbolic = len(ctl.symbolic_atoms)
    grounded = time.perf_counter() - started
    ctl.solve()
    lp = ctl.statistics["problem"]["lp"]
    return {"facts": len(facts), "symbolic_atoms": symbolic, "atoms": int(lp["atoms"]),
            "rules": int(lp["rules"]), "ground_s": grounded}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0]
    started = time.perf_counter()
    from domain import load_project
    from planner.core import make_plan

    imported = time.perf_counter()
    project = load_project(folder)
    loaded = time.perf_counter()
    outcome = make_plan(project)
    planned = time.perf_counter()
    out = {"import_s": imported - started, "load_project_s": loaded - imported,
           "make_plan_s": planned - loaded, "status": outcome.status,
           "timings": {k: round(v, 4) for k, v in outcome.timings.items()}}
    if outcome.plan is not None:
        out["plan_ground_atoms"] = outcome.plan.ground_atoms
        out["plan_ground_rules"] = outcome.plan.ground_rules
        out["operations"] = len(outcome.plan.operations)
        out["waves"] = len(outcome.plan.waves)
    out["ground"] = ground_size(project)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
