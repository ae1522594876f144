"""Where ordo's time goes, phase by phase, and the ground program size.

Runs ``ordo plan -C PROJECT_DIR --out PLAN`` in-process (``ordo.cli.main``,
the text output to a file, as when piped) with a timer around each phase of
the pipeline, and prints one JSON line:

- ``phases``: seconds of the whole process, split into import, load (YAML,
  validation, model; ``journal`` is the part of load_with_journal around
  load_project), policies (parse, lint: planner.core.load_policies), facts,
  child (the bounded child process: its clingo ``ground`` and ``solve``, and
  ``child_other`` = start-up, answer transfer and what else it does; where
  several children solve a plan's parts at once, ``ground`` and ``solve``
  are the seconds of all of them added up, and ``child_other`` is what the
  child phase took less those: negative by the time they ran side by side), decode,
  check (references), schedule, build (the rest of build_plan), write
  (plan JSON), render (the text) and ``other`` (what none of these covers);
  ``whole`` is their total, from before the first import; ``clingo`` is
  ground + solve and ``ratio`` whole / clingo;
- ``import_s``, ``load_project_s``, ``make_plan_s``, ``timings`` (what
  ``make_plan`` records), as before, for benchmarks/bench_plan.py;
- ``ground``: clingo alone, after the timed run (not part of the phases): the
  same programs (base + library + project policies + facts + ordo's glue;
  the slice's, in the parts planner/slice.py cuts it into, as ``ordo plan``
  solves them) grounded and solved with ordo's solver options in a fresh
  process of its own (``--clingo-alone``), with the collector off as in
  ordo's planning child: the baseline that ordo's whole process is compared
  with (bench_plan.py's "clingo alone" column), and a cross-check of the
  ground size in plan.json. Left out with ``--no-clingo-alone``
  (bench_plan.py, which measures it in its rounds already). With
  ``--one-program`` too: the whole model as one program, as ordo solved it
  before it cut large slices into parts.

Usage::

    python benchmarks/ordo_probe.py [--no-clingo-alone] PROJECT_DIR [PLAN_OUT]
    python benchmarks/ordo_probe.py --clingo-alone [--one-program] PROJECT_DIR   # clingo alone only
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def ground_size(folder: str) -> dict:
    """clingo alone: the very same program grounded and solved by
    ``planner.solve.solve`` (ordo's solver options and time limit; no child
    process, no decoding, no plan) in a process of its own, started for it,
    with the collector off as in ordo's planning child, and its ground size.
    Measured in the probe's own process after the timed run, the collector
    walked the timed run's whole heap while the solver's models became Python
    objects: at 20,000 resources that tripled the solve, and flattered ordo."""
    run = subprocess.run([sys.executable, __file__, "--clingo-alone", folder], capture_output=True, text=True,
                         check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def clingo_alone(folder: str, one_program: bool = False) -> dict:
    """``ground_size``'s measurement, in this (fresh) process: the programs
    ``ordo plan`` solves (its slice, in parts where planner/slice.py cuts it),
    or with ``one_program`` the whole model as one program."""
    from executor.runs import load_with_journal
    from planner.core import load_policies
    from planner.facts import model_facts
    from planner.slice import prune
    from planner.solve import solve, solve_parts

    project = load_with_journal(Path(folder), None, None, [], None)
    program = load_policies(project)
    cut = None if one_program else prune(program, project.model, project.enforcement, project.parameters)
    parts = cut.parts if cut is not None else [model_facts(project.model)]
    gc.disable()
    if len(parts) > 1:
        result = solve_parts(program, parts, timeout=project.settings.solve_timeout)
    else:
        result = solve(program, parts[0], timeout=project.settings.solve_timeout)
    return {"facts": sum(len(p) for p in parts), "programs": len(parts), "atoms": result.atoms,
            "rules": result.rules, "status": result.status,
            "ground_s": result.ground_seconds, "solve_s": result.solve_seconds}


class Timer:
    """Wraps functions where the pipeline looks them up, adding up their seconds per phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.results: dict[str, object] = {}

    def wrap(self, owner, name: str, phase: str) -> None:
        inner = getattr(owner, name, None)
        if inner is None:  # not in this version of ordo
            return

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                out = inner(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started
            self.results[phase] = out
            return out

        setattr(owner, name, timed)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--clingo-alone"]:
        print(json.dumps(clingo_alone(os.path.abspath(argv[-1]), one_program="--one-program" in argv)))
        return
    skip_clingo = "--no-clingo-alone" in argv
    argv = [arg for arg in argv if arg != "--no-clingo-alone"]
    folder = os.path.abspath(argv[0])
    plan_out = argv[1] if len(argv) > 1 else os.path.join(tempfile.mkdtemp(prefix="ordo-probe-"), "plan.json")
    import executor.runs
    import ordo.cli
    import ordo.render
    import planner.core
    import planner.decode
    import planner.plan

    imported = time.perf_counter()
    timer = Timer()
    timer.wrap(executor.runs, "load_with_journal", "load_with_journal")
    timer.wrap(executor.runs, "load_project", "load")
    timer.wrap(planner.core, "make_plan", "make_plan")
    for name, phase in (("load_policies", "policies"), ("model_facts", "facts"), ("prune_model", "facts"),
                        ("solve_bounded", "child"),
                        ("decode", "decode"), ("find_cycle", "decode"), ("check_references", "check"),
                        ("build_plan", "build_plan"), ("schedule", "schedule")):
        timer.wrap(planner.core, name, phase)
    timer.wrap(planner.decode.Decoded, "cycle", "decode")
    timer.wrap(planner.plan.Plan, "to_json", "write")
    timer.wrap(ordo.render, "plan_text", "render")
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        saved, sys.stdout = sys.stdout, devnull
        try:
            ordo.cli.main(["plan", "-C", folder, "--out", plan_out])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        finally:
            sys.stdout = saved
    ended = time.perf_counter()
    s = timer.seconds
    result = timer.results["child"][0]
    outcome = timer.results["make_plan"]
    phases = {"import": imported - STARTED, "journal": s["load_with_journal"] - s["load"], "load": s["load"],
              "policies": s["policies"], "facts": s["facts"], "ground": result.ground_seconds,
              "solve": result.solve_seconds,
              "child_other": s["child"] - result.ground_seconds - result.solve_seconds,
              "decode": s.get("decode", 0.0), "check": s.get("check", 0.0), "schedule": s.get("schedule", 0.0),
              "build": s.get("build_plan", 0.0) - s.get("schedule", 0.0), "write": s.get("write", 0.0),
              "render": s.get("render", 0.0)}
    phases["other"] = ended - STARTED - sum(phases.values())
    phases = {k: round(v, 3) for k, v in phases.items()}
    whole, clingo_s = ended - STARTED, result.ground_seconds + result.solve_seconds
    out = {"phases": phases, "whole": round(whole, 3), "clingo": round(clingo_s, 3),
           "ratio": round(whole / clingo_s, 2) if clingo_s else None,
           "import_s": imported - STARTED, "load_project_s": s["load_with_journal"], "make_plan_s": s["make_plan"],
           "status": outcome.status, "timings": {k: round(v, 4) for k, v in outcome.timings.items()}}
    if outcome.plan is not None:
        out["plan_ground_atoms"] = outcome.plan.ground_atoms
        out["plan_ground_rules"] = outcome.plan.ground_rules
        out["operations"] = len(outcome.plan.operations)
        out["waves"] = len(outcome.plan.waves)
    if not skip_clingo:
        out["ground"] = ground_size(folder)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
