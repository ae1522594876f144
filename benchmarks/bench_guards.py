"""Guard decisions against a live fact base of 1,000 and 10,000 facts, per guard kind.

    .venv/bin/python benchmarks/bench_guards.py                 # about 30 s on 2 cores
    .venv/bin/python benchmarks/bench_guards.py --facts 1000,10000,50000 --decisions 5000

For each kind, one engine (``executor.guards.GuardEngine``) holds the guard
under test and a "history" rate limit on another operation (healthcheck, one
hour) that keeps started/finished facts from expiring, as a project with a
long rate limit would. The fact base is filled the way a run fills it:
present resources (``set_resources``: counted for instance guards only),
health checks started and finished (``started``/``finished``: started,
finished and hit facts), and the guard's own facts through ``admit`` (rate
limit hits, exclusive blockers in flight), until it holds the target count.
Then ``check`` is timed (``time.perf_counter_ns``) for operations the guard
under test selects, on random resources, targets and parents:

* warm: the steady state; which guards select an operation is memoised per
  operation signature (it reads only the guards' own facts), so this is the
  live part: one Datalog point query per selecting guard;
* cold: that memo cleared before each decision, i.e. the first decision for
  a new signature (the ``matches`` query over every guard's selector);
* update: ``started`` + ``finished`` of one operation (the facts the executor
  adds around each dispatch), timed together.

The table goes to stdout; --out (default benchmarks/out/guards/) keeps
results.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.guards import Guard, Selector  # noqa: E402
from executor.guards import GuardEngine, OpInfo  # noqa: E402

T0 = 1_800_000_000.0
TARGETS = [f"region-{i}" for i in range(20)]
HISTORY = Guard(name="history", kind="rate_limit", match=Selector(operation=("healthcheck",)), max=10**9,
                seconds=3600)

KINDS: dict[str, Guard] = {
    "rate_limit": Guard(name="creates-per-region", kind="rate_limit",
                        match=Selector(operation=("create",), type=("vf-module",)), max=5, seconds=600,
                        per="target"),
    "max_instances": Guard(name="modules-per-vnf", kind="max_instances", match=Selector(type=("vf-module",)),
                           max=4, per="part_of"),
    "min_instances": Guard(name="keep-a-module", kind="min_instances", match=Selector(type=("vf-module",)),
                           min=1, per="part_of"),
    "block_list": Guard(name="hands-off", kind="block_list", match=Selector(operation=("create", "delete")),
                        block_resources=tuple(f"m{i}" for i in range(0, 2000, 20)), block_types=("pnf",),
                        block_targets=("region-19",), on_deny="fail"),
    "freeze": Guard(name="nightly-freeze", kind="freeze", daily=((22 * 3600, 86400), (0, 6 * 3600)),
                    periods=((T0 - 86400 * 30, T0 - 86400 * 29),)),
    "window": Guard(name="maintenance-window", kind="window", daily=((1 * 3600, 3 * 3600),)),
    "exclusive": Guard(name="no-scale-during-heal", kind="exclusive",
                       match=Selector(operation=("create",), type=("vf-module",)),
                       blocker=Selector(operation=("heal",), type=("vnf",)), per="vnf"),
}


def candidate(rng: random.Random, kind: str, modules: int) -> OpInfo:
    m = rng.randrange(modules)
    operation = {"min_instances": "delete", "block_list": rng.choice(["create", "delete"])}.get(kind, "create")
    if kind == "max_instances":
        operation = "assign"
    return OpInfo(id=f"m{m}/{operation}", resource=f"m{m}", type="vf-module", operation=operation,
                  controller="openstack", target=rng.choice(TARGETS), parent=f"vnf{m // 4}",
                  creates=operation == "assign", deletes=operation == "delete")


def fill(engine: GuardEngine, kind: str, facts: int, rng: random.Random) -> float:
    """Bring the engine's fact base to ``facts``; returns the clock after it."""
    modules = max(facts // 4, 100)
    vnfs = modules // 4
    resources = [(f"vnf{v}", "vnf", None, True) for v in range(vnfs)]
    resources += [(f"m{m}", "vf-module", f"vnf{m // 4}", m % 2 == 0) for m in range(modules)]
    engine.set_resources(resources)
    now = T0
    if kind == "rate_limit":   # the guard's own hits: admitted creations, the limit holds them to 5 per region
        for _ in range(400):
            now += 0.5
            decision, ticket = engine.admit(candidate(rng, kind, modules), now)
            if ticket is not None:
                engine.finished(ticket, ok=True, now=now + 0.2)
    if kind == "exclusive":    # heals in flight on 1 VNF in 10
        for v in range(0, vnfs, 10):
            engine.started(OpInfo(id=f"vnf{v}/heal", resource=f"vnf{v}", type="vnf", operation="heal",
                                  controller="appc", target=rng.choice(TARGETS)), now)
    i = 0
    while engine.facts < facts:  # history: health checks started and finished within the hour
        now += 0.05
        v = i % vnfs
        ticket = engine.started(OpInfo(id=f"vnf{v}/healthcheck", resource=f"vnf{v}", type="vnf",
                                       operation="healthcheck", controller="cds", target=rng.choice(TARGETS)), now)
        if engine.facts < facts:
            engine.finished(ticket, ok=True, now=now + 0.01)
        i += 1
    return now


def measure(kind: str, facts: int, decisions: int, seed: int) -> dict:
    rng = random.Random(seed)
    engine = GuardEngine([KINDS[kind], HISTORY])
    now = fill(engine, kind, facts, rng)
    modules = max(facts // 4, 100)
    ops = [candidate(rng, kind, modules) for _ in range(decisions)]
    clock = [now + 1 + i * 0.001 for i in range(decisions)]
    for o, t in zip(ops[:50], clock[:50], strict=True):  # warm up
        engine.check(o, t)
    gc.collect()  # what earlier rows left is not this row's to collect (the collector stays on)
    warm, cold, denied = [], [], 0
    for o, t in zip(ops, clock, strict=True):
        start = time.perf_counter_ns()
        decision = engine.check(o, t)
        warm.append(time.perf_counter_ns() - start)
        denied += not decision.allowed
    for o, t in zip(ops[: decisions // 4], clock[: decisions // 4], strict=True):
        engine._applies.clear()
        start = time.perf_counter_ns()
        engine.check(o, t)
        cold.append(time.perf_counter_ns() - start)
    update = []
    size = engine.facts
    for i in range(decisions // 4):  # started + finished: the facts added around one dispatch
        o = ops[i]
        start = time.perf_counter_ns()
        ticket = engine.started(o, clock[-1] + i * 0.001)
        engine.finished(ticket, ok=False, now=clock[-1] + i * 0.001)
        update.append(time.perf_counter_ns() - start)
    return {"kind": kind, "facts": size, "decisions": decisions, "denied": denied,
            "warm_median_us": statistics.median(warm) / 1000, "warm_p99_us": _pct(warm, 99) / 1000,
            "cold_median_us": statistics.median(cold) / 1000, "cold_p99_us": _pct(cold, 99) / 1000,
            "update_median_us": statistics.median(update) / 1000, "update_p99_us": _pct(update, 99) / 1000}


def _pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def none_selected(facts: int, decisions: int, seed: int) -> dict:
    """An operation none of the seven guards selects (freeze and window limited to creates here):
    what a dispatch the guards do not concern pays in a project with guards."""
    rng = random.Random(seed)
    selective = [g if g.match.constrained() else replace(g, match=Selector(operation=("create",)))
                 for g in KINDS.values()]
    engine = GuardEngine([*selective, HISTORY])
    fill(engine, "none", facts, rng)
    o = OpInfo(id="net/update", resource="net", type="network", operation="update", controller="sdnc")
    engine.check(o, T0)
    times = []
    for i in range(decisions):
        start = time.perf_counter_ns()
        engine.check(o, T0 + i)
        times.append(time.perf_counter_ns() - start)
    return {"kind": "(no guard selects it)", "facts": engine.facts, "decisions": decisions, "denied": 0,
            "warm_median_us": statistics.median(times) / 1000, "warm_p99_us": _pct(times, 99) / 1000,
            "cold_median_us": None, "cold_p99_us": None, "update_median_us": None, "update_p99_us": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", default="1000,10000", help="fact base sizes, comma-separated")
    parser.add_argument("--decisions", type=int, default=2000, help="timed decisions per row")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "guards")
    args = parser.parse_args()
    sizes = [int(s) for s in args.facts.split(",")]
    started = time.time()
    rows = []
    for facts in sizes:
        for kind in KINDS:
            rows.append({"size": facts, **measure(kind, facts, args.decisions, args.seed)})
        rows.append({"size": facts, **none_selected(facts, args.decisions, args.seed)})
    seconds = time.time() - started

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    print("| kind | facts | denied | median µs | p99 µs | cold median µs | cold p99 µs | update median µs | "
          "update p99 µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['facts']:,} | {r['denied'] * 100 / r['decisions']:.0f}% | "
              f"{cell(r['warm_median_us'])} | {cell(r['warm_p99_us'])} | {cell(r['cold_median_us'])} | "
              f"{cell(r['cold_p99_us'])} | {cell(r['update_median_us'])} | {cell(r['update_p99_us'])} |")
    at_10k = [r["warm_median_us"] for r in rows if r["size"] == 10_000]
    if at_10k:
        worst = max(at_10k)
        verdict = "met" if worst < 1000 else "NOT met"
        print(f"\nTarget: median decision < 1 ms at 10,000 facts: {verdict} (worst median {worst:.1f} µs)")
    print(f"{len(rows)} rows in {seconds:.1f} s; python {platform.python_version()}, nproc {os.cpu_count()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "seconds": seconds, "seed": args.seed},
                                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
