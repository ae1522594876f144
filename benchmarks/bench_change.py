"""Cost proportional to the change: a small request and a no-change plan
against the journal state of an applied 10,000-resource project, and
``ordo explain --conflict`` at 10,000 resources with 1,000 policy instances.

Set-up (once, in a temporary folder): generate.py's project of N resources
(``big``) is applied with ``ordo apply --auto-approve`` against simulated
controllers with no latency, so its journal (``big/.ordo/journal.db``) holds
N active resources; ``empty`` is the same project without a journal; ``tiny``
is generate.py's project of 10 resources; ``conflict`` is bench_explain.py's
project (N resources, a policy file with 1,000 ground rules and one that
contradicts the first of them: no plan exists). The small request is one
service of 4 resources (a network, a VNF placed by the planner, a VF module
using the network and the shared management network).

Each row is ``ordo`` as a whole process (the console script beside this
Python), median of --repeat runs; the runs of all rows are interleaved, so
that the ratios come from the same minutes of the same machine:

* small request vs empty inventory: ``ordo plan -C empty small.yaml``;
* small request vs N state: ``ordo plan -C big small.yaml`` (ratio: to the row above);
* the same two with a rule file of the project's own (``empty-own``, ``big-own``: copies of
  ``empty`` and ``big``, the journal too, with examples/vfw's config-after-modules.lp, a rule
  planner/locality.py finds local, so the plan is still sliced);
* (only with ``--rows``) the whole N-resource request against the empty inventory, without and
  with that rule: ``ordo plan -C empty`` and ``ordo plan -C empty-own`` (every resource new: the
  model cut into parts either way);
* fixed start-up: ``ordo plan -C tiny``;
* no change vs N state: ``ordo plan -C big`` (ratio: to the fixed start-up);
* explain --conflict: ``ordo explain -C conflict --conflict --timeout 300`` (whole process; the
  default 10 s limit would cut a slow search short), and
  its ``minimal_conflict`` call alone, in-process (what bench_explain.py's --conflict column measures);
* resident (``--rows resident``): the small request planned in one long-lived process as ``ordo serve``
  plans it, against the empty inventory, against the N state read whole each time and against the
  state kept current between plans (``executor.journal.StateCopy``): medians of at least 5 runs taken
  in turn after a first of each, the planning child's CPU not counted.

Usage::

    .venv/bin/python benchmarks/bench_change.py [--n 10000] [--repeat 3] [--instances 1000] [--state DIR] [--rows ...]
        [--parse-cache cold|warm]

``--state DIR`` keeps the prepared folders in DIR and reuses them when DIR
already holds them (the apply takes a while): compare versions of ordo
against the same journal. ``--rows`` measures only the rows named (small,
small-state, small-own, small-state-own, tiny, no-change, conflict, resident;
all-new and all-new-own only when named). ``--parse-cache``: ``cold`` (the
default) empties each project's parse cache (``.ordo/cache``) before every
run, as for the first command on a project; ``warm`` fills it with an
untimed run of each row first, as for the commands after it.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_explain import make_project  # noqa: E402
from benchmarks.generate import write_project  # noqa: E402
from benchmarks.tables import fmt, text_table  # noqa: E402

ORDO = str(Path(sys.executable).with_name("ordo"))
ROWS = ("small", "small-state", "small-own", "small-state-own", "tiny", "no-change", "conflict", "resident")
#: Not measured unless asked for (--rows): the whole N-resource request, without and with the rule.
MORE_ROWS = ("all-new", "all-new-own")
#: The project rule of the -own rows: a VNF is configured once its VF modules are up (local: sliced).
OWN_RULE = HERE.parent / "examples" / "vfw" / "policies" / "config-after-modules.lp"

SMALL_REQUEST = """\
name: small
resources:
- { name: new-svc, type: service }
- { name: new-svc-net, type: network, part_of: new-svc }
- name: new-svc-vnf
  type: vnf
  part_of: new-svc
  requires: { vcpu: 4, memory_gb: 8 }
  labels: { anti-affinity: new-svc-path }
- { name: new-svc-vnf-mod, type: vf-module, part_of: new-svc-vnf, uses: [mgmt-net, new-svc-net] }
"""

NO_LATENCY = "seed: 1\nlatency: 0\n"


def run(args: list[str], expect: tuple[int, ...]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, its children's included) of one
    ``ordo`` process; its exit code must be one of ``expect``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([ORDO, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in expect:
        raise SystemExit(f"ordo {' '.join(args)}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def drop_parse_cache(cmd: list[str]) -> None:
    """Empty the parse cache (domain.project.PARSE_CACHE, under .ordo/cache) of the project ``cmd`` runs on."""
    shutil.rmtree(Path(cmd[cmd.index("-C") + 1], ".ordo", "cache"), ignore_errors=True)


def set_up(root: Path, n: int, instances: int) -> None:
    write_project(n, root / "big")
    (root / "empty").mkdir()
    for name in ("ordo.yaml", "catalog.yaml", "inventory.yaml", "request.yaml"):
        shutil.copy(root / "big" / name, root / "empty" / name)
    write_project(10, root / "tiny")
    (root / "small.yaml").write_text(SMALL_REQUEST)
    (root / "no-latency.yaml").write_text(NO_LATENCY)
    print(f"applying the {n:,}-resource project into its journal ...", file=sys.stderr)
    wall, _ = run(["apply", "-C", str(root / "big"), "--auto-approve", "--simulation", str(root / "no-latency.yaml"),
                   "--concurrency", "64"], (0,))
    print(f"  applied in {wall:.1f} s", file=sys.stderr)
    make_project(root / "conflict", n, instances, "rules")


def conflict_in_process(folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``minimal_conflict`` alone, in a process of its own (loading not counted)."""
    code = ("import sys, time; from domain.project import load_project; from planner.core import load_policies; "
            "from planner.facts import model_facts; from planner.explain import minimal_conflict; "
            "p = load_project(sys.argv[1]); prog = load_policies(p); facts = model_facts(p.model); "
            "t, c = time.perf_counter(), time.process_time(); "
            "found = minimal_conflict(prog, facts, p.model, timeout=120); "
            "assert found is not None and found.minimal; print(time.perf_counter() - t, time.process_time() - c)")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          cwd=HERE.parent, check=True)
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


RESIDENT = """
import gc, statistics, sys, time
from pathlib import Path
from executor.journal import StateCopy
from executor.runs import load_with_journal
from planner.core import make_plan
root = Path(sys.argv[1])
small, big, empty = root / "small.yaml", root / "big", root / "empty"
copy = StateCopy()
cases = {"resident-small": lambda: load_with_journal(empty, small, None, [], None),
         "resident-whole": lambda: load_with_journal(big, small, None, [], None),
         "resident-kept": lambda: load_with_journal(big, small, None, [], None, copy)}
for load in cases.values():
    make_plan(load())   # the first of each: imports, validators, the copy's first read
times = {key: [] for key in cases}
for _ in range(int(sys.argv[2])):
    for key, load in cases.items():
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        make_plan(load())
        times[key].append((time.perf_counter() - started, time.process_time() - cpu))
for key, values in times.items():
    print(key, statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
"""


def resident(root: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """The small request planned in one long-lived process, as `ordo serve` plans (load_with_journal
    and make_plan, after a first run of each): against the empty inventory, against the state read
    whole each time, and against the state kept current between plans (executor.journal.StateCopy);
    medians of ``repeat`` runs taken in turn, wall and CPU seconds (the planning child's not counted)."""
    done = subprocess.run([sys.executable, "-c", RESIDENT, str(root), str(repeat)], capture_output=True, text=True,
                          cwd=HERE.parent, check=True)
    out = {}
    for line in done.stdout.strip().splitlines():
        key, wall, cpu = line.split()
        out[key] = (float(wall), float(cpu))
    return out


def with_own_rule(src: Path, dest: Path) -> None:
    """A copy of the project ``src`` (its journal too) with OWN_RULE as a rule file of its own."""
    if dest.exists():
        return
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("cache"))
    shutil.copy(OWN_RULE, dest / OWN_RULE.name)
    text = (dest / "ordo.yaml").read_text()
    (dest / "ordo.yaml").write_text(text.replace("settings:", f"  files:\n  - {OWN_RULE.name}\nsettings:", 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--instances", type=int, default=1000, help="policy instances of the conflict project")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--state", type=Path, help="keep the prepared folders here; reuse them if there")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"rows to measure, of {','.join(ROWS + MORE_ROWS)}")
    parser.add_argument("--parse-cache", choices=("cold", "warm"), default="cold",
                        help="cold: every run without the parse cache (.ordo/cache emptied first); "
                             "warm: filled by an untimed run of each row first")
    args = parser.parse_args(argv)
    wanted = args.rows.split(",")
    with contextlib.ExitStack() as stack:
        root = args.state or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if not (root / "big" / ".ordo" / "journal.db").exists():
            root.mkdir(parents=True, exist_ok=True)
            set_up(root, args.n, args.instances)
        with_own_rule(root / "empty", root / "empty-own")
        with_own_rule(root / "big", root / "big-own")
        small, big, tiny = str(root / "small.yaml"), str(root / "big"), str(root / "tiny")
        rows = {
            "small": ["plan", "-C", str(root / "empty"), small],
            "small-state": ["plan", "-C", big, small],
            "small-own": ["plan", "-C", str(root / "empty-own"), small],
            "small-state-own": ["plan", "-C", str(root / "big-own"), small],
            "tiny": ["plan", "-C", tiny],
            "all-new": ["plan", "-C", str(root / "empty")],
            "all-new-own": ["plan", "-C", str(root / "empty-own")],
            "no-change": ["plan", "-C", big],
            "conflict": ["explain", "-C", str(root / "conflict"), "--conflict", "--timeout", "300"],
        }
        rows = {key: cmd for key, cmd in rows.items() if key in wanted}
        resident_times = resident(root, max(args.repeat, 5)) if "resident" in wanted else {}
        times: dict[str, list[tuple[float, float]]] = {key: [] for key in rows}
        if "conflict" in rows:
            times["conflict-call"] = []
        for key, cmd in rows.items():
            drop_parse_cache(cmd)
            if args.parse_cache == "warm":
                run(cmd, (3,) if key == "conflict" else (0,))
        for i in range(args.repeat):
            for key, cmd in rows.items():
                if args.parse_cache == "cold":
                    drop_parse_cache(cmd)
                times[key].append(run(cmd, (3,) if key == "conflict" else (0,)))
            if "conflict" in rows:
                times["conflict-call"].append(conflict_in_process(root / "conflict"))
            print(f"  round {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}/{v[-1][1]:.2f}" for k, v in times.items()),
                  file=sys.stderr)
    wall = {key: statistics.median(w for w, _ in values) for key, values in times.items()}
    cpu = {key: statistics.median(c for _, c in values) for key, values in times.items()}
    for key, (w, c) in resident_times.items():
        wall[key], cpu[key] = w, c

    def row(what: str, key: str, base: str | None = None, target: str = "") -> list[str] | None:
        if key not in wall:
            return None
        ratios = [fmt(m[key] / m[base], ".2f") + "x" if base in m else "" for m in (wall, cpu)]
        return [what, fmt(wall[key], ".2f"), ratios[0], fmt(cpu[key], ".2f"), ratios[1], target]

    n = f"{args.n:,}"
    body = [
        row("small request (4 resources) vs empty inventory", "small"),
        row(f"small request vs {n} state", "small-state", "small", "<= 1.3x"),
        row("small request vs empty inventory, a rule of the project's own", "small-own"),
        row(f"small request vs {n} state, a rule of the project's own", "small-state-own", "small-own", "<= 1.3x"),
        row(f"all {n} resources new", "all-new"),
        row(f"all {n} resources new, a rule of the project's own", "all-new-own", "all-new"),
        row("fixed start-up (ordo plan, 10 resources)", "tiny"),
        row(f"no change vs {n} state", "no-change", "tiny", "<= 1.5x"),
        row(f"explain --conflict, {n} / {args.instances:,} policies (process)", "conflict", None, "< 2 s"),
        row("  of which minimal_conflict", "conflict-call"),
        row("resident (as ordo serve plans): small request vs empty inventory", "resident-small"),
        row(f"  vs {n} state read whole each time", "resident-whole", "resident-small"),
        row(f"  vs {n} state kept current (StateCopy)", "resident-kept", "resident-small"),
    ]
    body = [line for line in body if line is not None]
    print(f"\nparse cache {args.parse_cache}; median of {args.repeat}; wall and CPU (user + system, children "
          "included) seconds, whole process "
          "unless said; ratios to the row the target names")
    print(text_table(("row", "wall s", "ratio", "CPU s", "ratio", "target"), body))


if __name__ == "__main__":
    main()
