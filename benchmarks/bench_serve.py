"""Load on ``ordo serve``: N service requests submitted at once through the API.

The server runs as a process of its own (``ordo serve``, the installed console script) on a
copy of the vFW example in a new temporary folder, with simulated controllers of a fixed
latency per call (``--latency``) and a real journal and simulated world (SQLite) in that
folder's ``.ordo/``. Each request is a small service of its own (a service and two networks,
8 operations; tests/loadkit.py), so the runs touch disjoint resources and go side by side
under the per-resource claims. ``--clients`` threads POST them to /v1/runs (httpx, one
connection each, an Idempotency-Key per request), then the runs are followed (GET /v1/runs)
until every accepted one has settled.

Two scenarios, each on a fresh copy:

1. **steady**: every request submitted, every run carried out.
2. **kill -9**: the same, but the server is killed with SIGKILL once ``--kill-at`` of the
   requests (a fraction) were accepted, and started again; the clients whose POST got no
   answer send it again with the same Idempotency-Key (a key the server had accepted before
   it died answers with the same run). The restarted server resumes the runs cut short.

Both check that every request was accepted once (one run each), every accepted run is
complete, and the simulated world's ledger applied each effect exactly once (no key twice,
no resource and operation twice) with every requested resource active.

Figures: requests/s accepted (202s over the span from the first POST sent to the last
answered), p50/p99 of the POST (to its answer) and of submit-to-complete (the first POST of
a request sent, to its run's end as the journal recorded it), the wall time to the last
run's end, and the server's peak resident memory (VmHWM from /proc, read just before it is
killed or stopped; the larger of the two servers in the kill scenario).

Usage::

    .venv/bin/python benchmarks/bench_serve.py                 # N=200, 16 clients: about 3 minutes on 2 cores
    .venv/bin/python benchmarks/bench_serve.py --n 50 --clients 8 --only steady

Results go to stdout and to ``--out`` (default benchmarks/out/serve/: results.json, results.md).
Traffic goes to 127.0.0.1 only; every wait is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_apply import machine  # noqa: E402
from tables import fmt, md_table, text_table  # noqa: E402

from tests.loadkit import Load, ended_at, independent, resumed, run_load  # noqa: E402

VFW = ROOT / "examples" / "vfw"
COLUMNS = ("scenario", "N", "accepted", "req/s accepted", "POST p50 s", "POST p99 s", "to complete p50 s",
           "p99 s", "wall s", "peak MB", "effects", "once")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def figures(load: Load, began: float, project: Path) -> dict[str, Any]:
    """The measured figures of one scenario."""
    accepted = [p for p in load.posts if p.run is not None]
    answered = [p for p in load.posts if p.status is not None]
    span = max(p.sent + p.seconds for p in answered) - min(p.sent for p in load.posts) if answered else None
    first_sent: dict[int, float] = {}
    for post in load.posts:
        first_sent[post.index] = min(first_sent.get(post.index, post.sent), post.sent)
    to_complete = [ended_at(load.views[run]) - first_sent[i] for i, runs in load.runs_of().items() for run in runs
                   if load.views.get(run, {}).get("state") == "complete"]
    ends = [ended_at(v) for v in load.views.values()]
    first_round = load.posts[:len(load.requests)]
    return {
        "n": len(load.requests), "accepted": len({p.index for p in accepted}),
        "per_second": len(accepted) / span if span else None,
        "post_p50": percentile([p.seconds for p in accepted], 50),
        "post_p99": percentile([p.seconds for p in accepted], 99),
        "complete_p50": percentile(to_complete, 50), "complete_p99": percentile(to_complete, 99),
        "wall": (max(ends) - began) if ends else None,
        "peak_mb": max((kb for kb in load.peaks_kb if kb), default=0) / 1024 or None,
        "peaks_kb": load.peaks_kb,
        "effects": load.effects.applied, "problems": load.problems(),
        "answers": dict(collections.Counter(str(p.status) for p in load.posts)),
        "states": dict(collections.Counter(v["state"] for v in load.views.values())),
        "before_kill": sum(1 for p in first_round if p.status == 202),
        "no_answer": sum(1 for p in first_round if p.status is None),
        "replayed": sum(1 for p in load.posts if p.replayed),
        "resumed": len(resumed(project)),
    }


def row(name: str, f: dict[str, Any]) -> list[str]:
    return [name, fmt(f["n"], ","), fmt(f["accepted"], ","), fmt(f["per_second"], ".1f"), fmt(f["post_p50"], ".2f"),
            fmt(f["post_p99"], ".2f"), fmt(f["complete_p50"], ".2f"), fmt(f["complete_p99"], ".2f"),
            fmt(f["wall"], ".1f"), fmt(f["peak_mb"], ".0f"), fmt(f["effects"], ","),
            "yes" if not f["problems"] else f"NO ({len(f['problems'])})"]


def scenario(name: str, args: argparse.Namespace, kill_after: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"ordo-bench-serve-{name}-", dir=args.tmp) as tmp:
        project = Path(tmp) / "vfw"
        shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
        log = args.out / f"serve-{name}.log"
        log.unlink(missing_ok=True)
        began = time.time()
        load = run_load(project, independent(args.n), log, clients=args.clients, latency=args.latency,
                        kill_after=kill_after, timeout=args.timeout)
        return figures(load, began, project)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load on ordo serve: N requests at once through the API.")
    parser.add_argument("--n", type=int, default=200, help="service requests (each on resources of its own)")
    parser.add_argument("--clients", type=int, default=16, help="HTTP clients posting at once")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per simulated controller call")
    parser.add_argument("--kill-at", type=float, default=0.5,
                        help="kill -9 scenario: the fraction of requests accepted before the server is killed")
    parser.add_argument("--only", default="steady,kill", help="scenarios, comma-separated")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the runs to settle")
    parser.add_argument("--tmp", default=None, help="folder for the temporary projects (default: the system's)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "serve")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    info = machine(args.tmp)
    print(f"# {info['date']}: {info['nproc']} CPUs ({info.get('cpu', '?')}), {info.get('mem_gb', '?')} GB RAM, "
          f"Python {info['python']}, ordo {info.get('commit', '?')}, load average {info['loadavg'][0]:.2f}; "
          f"N={args.n}, {args.clients} clients, latency {args.latency} s", flush=True)
    results: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    body = []
    for name, kill_after in (("steady", None), ("kill", max(1, round(args.kill_at * args.n)))):
        if name not in only:
            continue
        print(f"{name}: ...", flush=True)
        f = scenario(name, args, kill_after)
        results[name] = f
        label = "steady" if kill_after is None else f"kill -9 after {f['before_kill']} accepted"
        body.append(row(label, f))
        if kill_after is not None:
            print(f"  killed after {f['before_kill']} accepted; {f['no_answer']} POSTs got no answer and were sent "
                  f"again, {f['replayed']} of them named a run the killed server had accepted; the restarted server "
                  f"resumed {f['resumed']} runs cut short", flush=True)
        print(f"  POST answers {f['answers']}; runs {f['states']}", flush=True)
        for problem in f["problems"][:20]:
            print(f"  PROBLEM: {problem}", flush=True)

    table = text_table(COLUMNS, body)
    print(table)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "results.md").write_text(md_table(COLUMNS, body) + "\n")
    return 0 if all(not results[n]["problems"] for n in ("steady", "kill") if n in results) else 1


if __name__ == "__main__":
    sys.exit(main())
