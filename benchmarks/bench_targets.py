"""Planning against many targets: `ordo plan` as the inventory grows from a few regions to thousands.

The resources are benchmarks/generate.py's (N of them, 1,000 by default: services, networks,
VNFs with capacity needs and anti-affinity groups, VF modules); the inventory's targets are
replaced by T regions spread over Z zones (7 by default), each with room for every VNF and a
cost of 1-5. What grows with T is what the policies read per resource and target: placement
(place/located), capacity's sums, prefer-cheaper-region's least cost, and anti-affinity's
pairs of resources within one zone. Each row is one `ordo plan --out` process: its wall time,
its peak RSS (that of its largest planning child too: ``os.wait4`` counts the descendants it
waited for), the ground program's size from plan.json, and the status.

Usage::

    python benchmarks/bench_targets.py                       # T = 4, 250, 500, 1000, 2000
    python benchmarks/bench_targets.py --targets 250,500 --n 1000 --zones 7 --memory-limit 12000

``--memory-limit`` (MB, default 12,000) is given to `ordo plan`, so that a quadratic grounding
shows as seconds and megabytes rather than as the default cap striking; ``--timeout`` (s,
default 300) the same for its time limit. Folders go to ``--out`` (default
benchmarks/out/targets, gitignored). Prints a table; writes nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from bench_plan import ORDO, run_child  # noqa: E402
from tables import fmt, text_table  # noqa: E402


def write(folder: Path, n: int, targets: int, zones: int) -> None:
    """generate.py's project of ``n`` resources with ``targets`` regions in ``zones`` zones."""
    inst = generate.write_project(n, folder)
    inventory = generate.inventory_doc(inst)
    inventory["targets"] = {
        f"region-{i:05d}": {"zone": f"az-{i % zones}", "capacity": dict(inst.capacity),
                            "attributes": {"cost": 1 + i % 5}}
        for i in range(targets)}
    (folder / "inventory.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="4,250,500,1000,2000", help="comma-separated numbers of targets")
    parser.add_argument("--n", type=int, default=1000, help="resources (benchmarks/generate.py)")
    parser.add_argument("--zones", type=int, default=7)
    parser.add_argument("--memory-limit", type=int, default=12000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "targets")
    args = parser.parse_args(argv)
    rows = []
    for targets in [int(t) for t in args.targets.split(",")]:
        folder = args.out / f"n{args.n}-t{targets}"
        write(folder, args.n, targets, args.zones)
        plan = folder / "plan.json"
        plan.unlink(missing_ok=True)
        run = run_child([ORDO, "plan", "-C", str(folder), "--out", str(plan), "--memory-limit",
                         str(args.memory_limit), "--timeout", str(args.timeout)], timeout=args.timeout + 120)
        data = json.loads(plan.read_text()) if run.returncode == 0 and plan.exists() else {}
        status = data.get("status") or (f"exit {run.returncode}" if run.returncode is not None else "killed")
        rows.append([f"{targets:,}", f"{args.zones}", status, fmt(run.wall, ".2f"), fmt(run.peak_mb, ",.0f"),
                     fmt(data.get("ground_atoms"), ","), fmt(data.get("ground_rules"), ",")])
        print(f"  {targets} targets: {status}, {run.wall:.2f} s, {run.peak_mb:,.0f} MB", file=sys.stderr)
    print(f"`ordo plan`, {args.n:,} resources (benchmarks/generate.py), --memory-limit {args.memory_limit}")
    print(text_table(("targets", "zones", "status", "wall s", "peak MB", "ground atoms", "ground rules"), rows))


if __name__ == "__main__":
    main()
