"""Where ordo's time goes, and the ground program size measured directly.

Not the timed run (that is ``ordo plan`` as a separate process, see
bench_plan.py): this loads a project in-process, runs ``make_plan`` and
prints one JSON line with the phase timings ordo records, plus the ground
program size read from clingo's statistics *after* a solve call.

It also grounds and solves the same program (base + library + project
policies + facts + ordo's glue) with clingo alone, in this process: the
baseline that ordo's whole process is compared with (bench_plan.py's
"clingo alone" column), and a cross-check of the ground size in plan.json.

Usage::

    python benchmarks/ordo_probe.py PROJECT_DIR
"""

from __future__ import annotations

import json
import sys
import time


def ground_size(project) -> dict:
    """clingo alone: the very same program grounded and solved in this
    process by ``planner.solve.solve`` (ordo's solver options and time limit;
    no child process, no decoding, no plan), and its ground size."""
    from planner.core import load_policies
    from planner.facts import model_facts
    from planner.solve import solve

    program = load_policies(project)
    facts = model_facts(project.model)
    result = solve(program, facts, timeout=project.settings.solve_timeout)
    return {"facts": len(facts), "atoms": result.atoms, "rules": result.rules, "status": result.status,
            "ground_s": result.ground_seconds, "solve_s": result.solve_seconds}


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
