"""How fast "no plan" is explained, at 10,000 resources and 1,000 policy instances.

A project from generate.py gets a policy file with one ground constraint per
VNF for 1,000 VNFs ("not on region-east": 1,000 policy rules, or, in the
second shape, one rule with 1,000 instances), and one more policy that
insists the first of those VNFs is on region-east: no plan exists. Measured:

* the strict solve that finds there is no plan;
* the first explanation (a minimal correction set: the relaxed solve,
  ``planner.explain.explain_no_plan``), which is what ``ordo plan`` prints;
* ``ordo explain --conflict`` (``minimal_conflict``): an unsatisfiable core
  of switch assumptions shrunk by deletion (wall and CPU seconds: the
  machine may be shared).

Usage::

    python benchmarks/bench_explain.py [--sizes 1000,10000] [--instances 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.generate import write_project  # noqa: E402
from domain.project import load_project  # noqa: E402
from planner.core import load_policies  # noqa: E402
from planner.explain import explain_no_plan, minimal_conflict  # noqa: E402
from planner.facts import model_facts  # noqa: E402
from planner.solve import solve  # noqa: E402

HEADER = "%@ name: {name}\n%@ description: benchmark policy\n%@ owner: bench\n%@ enforcement: hard\n\n"


def make_project(root: Path, n: int, instances: int, shape: str) -> list[str]:
    write_project(n, root)
    vnfs = [line.split(":", 1)[1].strip() for line in (root / "request.yaml").read_text().splitlines()
            if line.startswith("- name: ") and "-vnf-" in line and "-mod-" not in line][:instances]
    policies = root / "policies"
    policies.mkdir()
    if shape == "rules":
        body = "".join(f'% {vnf} stays off region-east\n:- place("{vnf}","region-east").\n' for vnf in vnfs)
    else:
        body = "".join(f'east_forbidden("{vnf}").\n' for vnf in vnfs)
        body += "% a VNF marked east_forbidden stays off region-east\n" \
                ':- place(R,"region-east"), east_forbidden(R).\n'
    (policies / "off-east.lp").write_text(HEADER.format(name="off-east") + body)
    must = f'% {vnfs[0]} must be on region-east\n:- not place("{vnfs[0]}","region-east").\n'
    (policies / "must-east.lp").write_text(HEADER.format(name="must-east") + must)
    text = (root / "ordo.yaml").read_text()
    (root / "ordo.yaml").write_text(text.replace("settings:", "  files:\n  - policies\nsettings:", 1))
    return vnfs


def measure(root: Path, args_timeout: float) -> dict[str, float]:
    started = time.perf_counter()
    project = load_project(root)
    program = load_policies(project)
    facts = model_facts(project.model)
    loaded = time.perf_counter()
    strict = solve(program, facts, timeout=60, keep_control=True)
    solved = time.perf_counter()
    assert strict.status == "unsatisfiable", strict.status
    explanation = explain_no_plan(program, facts, project.model, timeout=60, control=strict.control)
    strict.control = None
    explained = time.perf_counter()
    names = {c.policy for c in explanation.conflicts}
    assert names & {"off-east", "must-east"}, explanation.summary
    cpu = time.process_time()
    found = minimal_conflict(program, facts, project.model, timeout=args_timeout)
    conflicted, cpu = time.perf_counter(), time.process_time() - cpu
    assert found is not None
    return {"load": loaded - started, "strict": solved - loaded, "first": explained - solved,
            "total_first": explained - started, "conflict": conflicted - explained, "conflict_cpu": cpu,
            "conflict_checks": found.checks, "conflict_minimal": float(found.minimal),
            "conflict_rules": len(found.rules), "atoms": strict.atoms}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--conflict-timeout", type=float, default=30.0, help="time limit of --conflict")
    args = parser.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for shape in ("rules", "instances"):
            runs = []
            with tempfile.TemporaryDirectory() as tmp:
                make_project(Path(tmp) / "p", n, args.instances, shape)
                for _ in range(args.repeat):
                    runs.append(measure(Path(tmp) / "p", args.conflict_timeout))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((n, shape, med))
            print(f"  N={n} {shape}: {med}", file=sys.stderr)
    print(f"\n{'resources':>9}  {'policy instances':<22}  {'ground atoms':>12}  {'load s':>6}  {'no plan s':>9}  "
          f"{'first explanation s':>19}  {'load to explanation s':>21}  {'--conflict s':>12}  {'CPU s':>5}  "
          f"{'checks':>6}  {'rules in conflict':>17}")
    for n, shape, med in rows:
        what = f"{args.instances} rules" if shape == "rules" else f"1 rule x {args.instances}"
        print(f"{n:>9,}  {what:<22}  {int(med['atoms']):>12,}  {med['load']:>6.2f}  {med['strict']:>9.2f}  "
              f"{med['first']:>19.2f}  {med['total_first']:>21.2f}  {med['conflict']:>12.2f}  "
              f"{med['conflict_cpu']:>5.2f}  {int(med['conflict_checks']):>6}  {int(med['conflict_rules']):>17}")


if __name__ == "__main__":
    main()
