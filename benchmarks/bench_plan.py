"""Benchmark `ordo plan` against Fast Downward on generated service models.

For each N (default 100, 1000, 10000):

1. generate a project of N resources into benchmarks/out/nN/ (generate.py);
2. run ``ordo plan -C DIR --out plan.json`` as a separate process, --repeat
   times, the sizes in turn (round k runs every N once, so all medians come
   from the same minutes and time(2N) / time(N), printed where both sizes
   are measured, is not skewed by a change of load between sizes); wall
   time around the process, peak RSS of that one child from ``os.wait4``
   (its own rusage, not the harness's); report the median wall time and the
   largest peak; ground size, status and #operations come from plan.json
   (ordo's packages are byte-compiled first, as an installed ordo is:
   ``compile_ordo``); each ordo run is followed by one of "clingo alone"
   (``ordo_probe.py --clingo-alone``, a fresh process): the very same program
   grounded and solved by clingo, with ordo's solver options and time limit
   but no child process, no decoding and no plan building; the ratio of the
   medians, ordo wall / clingo alone, is ordo's overhead;
3. run ordo once more in-process (ordo_probe.py, in its own process) for the
   phase timings ordo records;
4. build the same instance as a classical planning problem with
   unified-planning and solve it with ``OneshotPlanner(name="fast-downward")``
   (fd_encoding.py) in a separate process: its wall time covers interpreter
   start, imports, reading the YAML, building the problem, writing PDDL and
   FD's translator and search. Past --fd-timeout seconds it is killed and
   reported as "timeout".

Results go to stdout (a table), benchmarks/out/results.json and
benchmarks/out/results.md; each run appends one record (commit, date,
machine, figures per N) to benchmarks/history.jsonl, and the table shows
each N's ordo wall time against the last record of the same machine.

Usage::

    .venv/bin/python benchmarks/bench_plan.py [--sizes 100,1000,10000,50000,100000] [--repeat 3]
        [--fd-timeout 120] [--fd-max 10000] [--no-fd] [--seed 1] [--no-history]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from tables import fmt, md_table, text_table  # noqa: E402

PYTHON = sys.executable
ORDO = str(Path(PYTHON).with_name("ordo"))


@dataclass
class Run:
    wall: float
    peak_mb: float
    returncode: int | None  # None: killed at the time limit
    stdout: str = ""
    stderr: str = ""


def descendants(root: int) -> list[int]:
    """Every process below root, parents before children (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop(0)
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def run_child(cmd: list[str], timeout: float | None = None, capture: bool = False, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Run:
    """Run one process: its wall time, and its peak RSS from ``os.wait4``.

    wait4 returns the rusage of that child alone (ru_maxrss: the largest RSS
    of the child or of any descendant it waited for). But Linux counts in a
    process's peak the peak of the memory it had before its exec: a child
    forked from this harness, which holds every generated instance, would
    report the harness's peak when its own is smaller (104 MB for `ordo plan`
    at 100 resources, against 47 MB). So the command is started by a small
    launcher (``LAUNCHER``, an interpreter that imports only ``os`` and
    ``time``), which forks and execs it, times it and reaps it, and writes
    its wall time and peak to a file. Past the timeout the launcher and every
    process below it are killed.
    """
    fd, report = tempfile.mkstemp(prefix="ordo-bench-", suffix=".run")
    os.close(fd)
    try:
        return _launched(cmd, Path(report), timeout, capture, cwd, env)
    finally:
        Path(report).unlink(missing_ok=True)


def _launched(cmd: list[str], report: Path, timeout: float | None, capture: bool, cwd: Path | None,
              env: dict[str, str] | None) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-S", "-c", LAUNCHER, str(report), *cmd],
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=cwd, start_new_session=True, text=True,
                            env=None if env is None else {**os.environ, **env})
    chunks: dict[str, str] = {"stdout": "", "stderr": ""}

    def drain(name: str, stream) -> None:
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True)]
    if capture:
        readers.append(threading.Thread(target=drain, args=("stdout", proc.stdout), daemon=True))
    for reader in readers:
        reader.start()
    killed = threading.Event()

    def kill(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def time_out() -> None:
        killed.set()
        # unified-planning starts Fast Downward in a session of its own, so
        # killing the command's process group is not enough: kill its whole
        # process tree, pid by pid, leaves first. The launcher is left to reap
        # the command and write its peak, and killed only if it does not end.
        kill(list(reversed(descendants(proc.pid))))

    timer = threading.Timer(timeout, time_out) if timeout else None
    if timer:
        timer.start()
    try:
        proc.wait(timeout=None if timeout is None else timeout + 60)
    except BaseException:   # the launcher did not end after the kill, or Ctrl-C here
        kill([*reversed(descendants(proc.pid)), proc.pid])
        proc.wait()
        if not killed.is_set():
            raise
    wall = time.perf_counter() - started
    if timer:
        timer.cancel()
    for reader in readers:
        reader.join(timeout=30)
    measured = report.read_text().split()
    returncode = proc.returncode
    if len(measured) == 3:   # the launcher's own: the command alone, not the launcher's start
        wall, peak_kib, returncode = float(measured[0]), int(measured[1]), int(measured[2])
    else:                    # killed before it wrote them
        peak_kib = 0
    return Run(wall=wall, peak_mb=peak_kib / 1024,  # KiB on Linux
               returncode=None if killed.is_set() else returncode,
               stdout=chunks["stdout"], stderr=chunks["stderr"])


#: Starts ``argv[2:]`` and reports its wall time, peak RSS (KiB) and exit code (-N: signal N)
#: into the file ``argv[1]``. See run_child.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        os.write(2, f"{sys.argv[2]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)   # -N: ended by signal N
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_maxrss} {code}")
sys.exit(code % 256)
"""


@dataclass
class Row:
    n: int
    counts: dict = field(default_factory=dict)
    ordo_status: str = ""
    gap: str = ""                 # per cost level, cost - lower bound, when not proved optimal
    ordo_walls: list[float] = field(default_factory=list)
    clingo_runs: list[float] = field(default_factory=list)   # clingo alone, ground + solve, one per round
    clingo: dict = field(default_factory=dict)   # the last of those runs, whole (ground size too)
    ordo_wall: float = float("nan")
    ordo_peak_mb: float = float("nan")
    ground_atoms: int | None = None
    ground_rules: int | None = None
    operations: int | None = None
    waves: int | None = None
    probe: dict = field(default_factory=dict)
    fd_status: str = "not run"
    fd_wall: float | None = None
    fd_peak_mb: float | None = None
    fd_plan_length: int | None = None
    fd_detail: dict = field(default_factory=dict)
    ordo_plan_in_fd_model: str = "not checked"
    errors: list[str] = field(default_factory=list)
    previous: dict | None = None  # this N in the last history record of the same machine

    @property
    def clingo_s(self) -> float | None:
        """clingo alone: ground + solve of the same program (ordo_probe.py --clingo-alone), the
        median of one run per round, taken in turn with ordo's (else the probe's one run)."""
        if self.clingo_runs:
            return statistics.median(self.clingo_runs)
        clingo = self.probe.get("ground", {})
        return clingo["ground_s"] + clingo["solve_s"] if "solve_s" in clingo else None

    @property
    def overhead(self) -> float | None:
        return self.ordo_wall / self.clingo_s if self.clingo_s else None

    @property
    def ratio(self) -> float | None:
        if self.fd_status != "solved" or not self.fd_wall or not self.ordo_wall:
            return None
        return self.fd_wall / self.ordo_wall


#: ordo's packages, byte-compiled before the timed runs (compile_ordo).
PACKAGES = ("domain", "planner", "executor", "ordo", "policies", "service")


def compile_ordo() -> None:
    """Byte-compile ordo's packages (``__pycache__``, as pip does when it
    installs a package and as any run does when it may write one), so that the
    timed processes read bytecode instead of compiling ordo's sources each
    time: an environment with PYTHONDONTWRITEBYTECODE set (a container, CI)
    never writes it for an editable install, and each ``ordo`` process would
    then spend about 0.1 s compiling, which no installed ordo does."""
    import importlib.util

    folders = [loc for name in PACKAGES if (spec := importlib.util.find_spec(name)) is not None
               for loc in spec.submodule_search_locations or ()]
    subprocess.run([PYTHON, "-m", "compileall", "-q", *folders], check=True, stdout=subprocess.DEVNULL)


def bench_ordo(rows: list[Row], folders: dict[int, Path], repeat: int, clingo: bool, warm: bool = False) -> None:
    """Time ``ordo plan`` on every N, round-robin: round k runs each N once, so
    that every N's median comes from the same minutes of the machine and the
    ratios between sizes (time(20k) / time(10k)) are not skewed by a change of
    load between one size's runs and the next's. With ``clingo``, each ordo run
    is followed by one of clingo alone on the same N, so that ordo/clingo is a
    ratio of medians taken in turn too (one run of each swung it from 1.9 to
    2.6 at 10,000 on this host). ``warm``: the parse cache (.ordo/cache) is
    filled by an untimed run of each N first; else each timed run starts
    without it, as the first command on a project does."""
    peaks: dict[int, list[float]] = {row.n: [] for row in rows}
    for row in rows:
        shutil.rmtree(folders[row.n] / ".ordo" / "cache", ignore_errors=True)
        if warm:
            run_child([ORDO, "plan", "-C", str(folders[row.n]), "--out", str(folders[row.n] / "plan.json")],
                      cwd=folders[row.n])
    for _ in range(repeat):
        for row in rows:
            if row.ordo_status != "error":
                if not warm:
                    shutil.rmtree(folders[row.n] / ".ordo" / "cache", ignore_errors=True)
                peaks[row.n].append(run_ordo_once(row, folders[row.n]))
            if clingo and row.ordo_status != "error":
                run_clingo_once(row, folders[row.n])
    for row in rows:
        if row.ordo_status == "error":
            continue
        row.ordo_wall = statistics.median(row.ordo_walls)
        row.ordo_peak_mb = max(peaks[row.n])
        plan = json.loads((folders[row.n] / "plan.json").read_text())
        row.ordo_status = plan.get("status", "?")
        row.gap = gap_text(plan.get("cost", []))
        row.ground_atoms = plan.get("ground_atoms")
        row.ground_rules = plan.get("ground_rules")
        row.operations = len(plan.get("operations", []))
        row.waves = len(plan.get("waves", []))


def run_clingo_once(row: Row, folder: Path) -> None:
    """One run of clingo alone on ``folder`` (ordo_probe.py --clingo-alone): its ground + solve joins the row's."""
    run = run_child([PYTHON, str(HERE / "ordo_probe.py"), "--clingo-alone", str(folder.resolve())],
                    capture=True, cwd=folder)
    if run.returncode != 0:
        row.errors.append(f"clingo alone exited {run.returncode}: {run.stderr.strip()[-500:]}")
        return
    row.clingo = json.loads(run.stdout.strip().splitlines()[-1])
    row.clingo_runs.append(row.clingo["ground_s"] + row.clingo["solve_s"])


def run_ordo_once(row: Row, folder: Path) -> float:
    """One timed ``ordo plan`` of ``folder``: its wall time joins the row's, its peak RSS is returned."""
    plan_file = folder / "plan.json"
    if plan_file.exists():
        plan_file.unlink()
    run = run_child([ORDO, "plan", "-C", str(folder), "--out", str(plan_file)], cwd=folder)
    if run.returncode != 0 or not plan_file.exists():
        row.errors.append(f"ordo plan exited {run.returncode}: {run.stderr.strip()[-500:]}")
        row.ordo_status = "error"
        return 0.0
    row.ordo_walls.append(run.wall)
    return run.peak_mb


def gap_text(levels: list[dict]) -> str:
    """The optimality gap of a plan.json's cost levels: cost - bound (and in
    percent of the cost) at each level with a bound; "0" when proved optimal."""
    gaps = [f"{c['cost'] - c['bound']:,}@{c['priority']} ({(c['cost'] - c['bound']) / max(c['cost'], 1):.1%})"
            for c in levels if c.get("bound") is not None]
    return ", ".join(gaps) or "0"


def bench_probe(row: Row, folder: Path) -> None:
    """The in-process phases; clingo alone is the rounds' (the probe measures it only when they did not)."""
    skip = ["--no-clingo-alone"] if row.clingo else []
    run = run_child([PYTHON, str(HERE / "ordo_probe.py"), *skip, str(folder.resolve())], capture=True, cwd=folder)
    if run.returncode != 0:
        row.errors.append(f"probe exited {run.returncode}: {run.stderr.strip()[-500:]}")
        return
    row.probe = json.loads(run.stdout.strip().splitlines()[-1])
    row.probe["peak_mb"] = run.peak_mb
    if row.clingo:
        row.probe["ground"] = row.clingo
    ground = row.probe.get("ground", {})
    if not row.ground_atoms and ground.get("atoms"):
        row.errors.append(f"plan.json reports ground_atoms={row.ground_atoms}, ground_rules={row.ground_rules}; "
                          f"the table shows clingo's statistics read after solve (ordo_probe.py)")
        row.ground_atoms, row.ground_rules = ground["atoms"], ground["rules"]


def bench_fd(row: Row, folder: Path, timeout: float) -> None:
    # The worker gets the limit too (so unified-planning stops FD), and the
    # harness kills it a little later if it has not stopped by then.
    # FD's translator writes output.sas into the working directory (and a killed
    # run leaves it there): give the worker a scratch folder of its own.
    scratch = folder / "fd"
    scratch.mkdir(exist_ok=True)
    # unified-planning writes the PDDL into a temporary folder that a killed
    # run leaves behind: keep those in the scratch folder too.
    run = run_child([PYTHON, str(HERE / "fd_encoding.py"), str(folder.resolve()), "--timeout", str(timeout)],
                    timeout=timeout + 15, capture=True, cwd=scratch, env={"TMPDIR": str(scratch.resolve())})
    row.fd_wall = run.wall
    row.fd_peak_mb = run.peak_mb
    if run.returncode is None:
        row.fd_status = "timeout"
        return
    if run.returncode != 0:
        row.fd_status = "error"
        row.errors.append(f"fd_encoding exited {run.returncode}: {run.stderr.strip()[-500:]}")
        return
    detail = json.loads(run.stdout.strip().splitlines()[-1])
    row.fd_detail = detail
    if detail["status"] in ("SOLVED_SATISFICING", "SOLVED_OPTIMALLY") and run.wall <= timeout:
        row.fd_status = "solved"
        row.fd_plan_length = detail["plan_length"]
    elif detail["status"] == "TIMEOUT" or run.wall > timeout:
        row.fd_status = "timeout"
    else:
        row.fd_status = detail["status"].lower()


def check_ordo_plan(row: Row, folder: Path) -> None:
    """Replay ordo's plan in the classical encoding (not timed)."""
    run = run_child([PYTHON, str(HERE / "fd_encoding.py"), str(folder.resolve()), "--check-ordo-plan",
                     str((folder / "plan.json").resolve())], capture=True, cwd=folder)
    if run.returncode != 0:
        row.errors.append(f"plan check exited {run.returncode}: {run.stderr.strip()[-500:]}")
        return
    row.ordo_plan_in_fd_model = json.loads(run.stdout.strip().splitlines()[-1])["ordo_plan_valid"]


def machine_key(info: dict) -> str:
    """What makes two history records comparable: the same CPU model, count and memory."""
    return f"{info.get('cpu', '?')} x{info.get('nproc', '?')}, {info.get('mem_gb', '?')} GB"


def commit() -> str:
    """The measured commit (short hash), "+dirty" when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=HERE, check=True).stdout.strip()
        # the history itself is not the measured code: a second run right after a first is clean
        # (pathspecs from the repository's top: this runs in benchmarks/, and the whole tree counts)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                ":(top,exclude)benchmarks/history.jsonl"], capture_output=True,
                               text=True, cwd=HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


def history_record(info: dict, rows: list[Row], args: argparse.Namespace) -> dict:
    """One run's figures per N, for benchmarks/history.jsonl."""
    return {"commit": commit(), "date": info.get("date"), "machine": machine_key(info),
            "clingo": info.get("clingo"), "python": info.get("python"), "repeat": args.repeat, "seed": args.seed,
            "parse_cache": args.parse_cache,
            "rows": {str(r.n): {"status": r.ordo_status, "gap": r.gap, "ordo_wall": _round(r.ordo_wall),
                                "peak_mb": _round(r.ordo_peak_mb, 0), "clingo_s": _round(r.clingo_s),
                                "fd_status": r.fd_status, "fd_wall": _round(r.fd_wall)} for r in rows}}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or value != value else round(value, digits)


def previous_records(path: Path, key: str, parse_cache: str = "cold") -> dict[str, dict]:
    """Per N, the figures of the last record of machine ``key`` that measured
    that N with the parse cache ``parse_cache`` (a record without one was
    cold: it predates the cache), with its commit and date: what this run is
    compared against."""
    found: dict[str, dict] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or record.get("machine") != key \
                or record.get("parse_cache", "cold") != parse_cache:
            continue
        for n, figures in (record.get("rows") or {}).items():
            if isinstance(figures, dict) and figures.get("ordo_wall"):
                found[n] = {**figures, "commit": record.get("commit"), "date": record.get("date")}
    return found


def change_text(row: Row) -> str:
    """This run's ordo wall against the previous record's, e.g. "1.20x (abc1234)"."""
    before = row.previous
    if not before or not row.ordo_wall or row.ordo_wall != row.ordo_wall:
        return "-"
    return f"{row.ordo_wall / before['ordo_wall']:.2f}x ({before['commit']})"


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(),
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
        with open("/proc/meminfo") as handle:
            info["mem_gb"] = round(int(handle.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    try:
        import clingo
        info["clingo"] = clingo.__version__
        from importlib.metadata import version
        info["unified-planning"] = version("unified-planning")
        info["up-fast-downward"] = version("up-fast-downward")
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


COLUMNS = ("N", "status", "gap", "ordo wall s", "vs previous", "ordo peak MB", "clingo alone s", "ordo/clingo",
           "ground atoms", "ground rules", "#operations", "FD wall s", "FD plan length", "ratio FD/ordo")


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        fd_wall = fmt(r.fd_wall, ".2f")
        if r.fd_status == "timeout":
            fd_wall = f"timeout (>{ARGS_TIMEOUT:g})"
        elif r.fd_status not in ("solved", "not run"):
            fd_wall = r.fd_status
        ratio = r.ratio
        if ratio is None and r.fd_status == "timeout":
            ratio_text = f">{ARGS_TIMEOUT / r.ordo_wall:.0f}"
        else:
            ratio_text = fmt(ratio, ".1f")
        out.append([f"{r.n:,}", r.ordo_status, r.gap, fmt(r.ordo_wall, ".2f"), change_text(r),
                    fmt(r.ordo_peak_mb, ".0f"), fmt(r.clingo_s, ".2f"), fmt(r.overhead, ".2f"),
                    fmt(r.ground_atoms, ","), fmt(r.ground_rules, ","), fmt(r.operations, ","), fd_wall,
                    fmt(r.fd_plan_length, ","), ratio_text])
    return out


ARGS_TIMEOUT = 120.0


def detail_table(rows: list[Row]) -> tuple[tuple[str, ...], list[list[str]]]:
    header = ("N", "status", "ordo runs s", "clingo alone runs s", "load_project s", "make_plan s", "ground s",
              "solve s", "decode+schedule s", "waves", "FD status", "FD peak MB", "FD build s", "UP write+FD s",
              "FD own s", "FD actions")
    body = []
    for r in rows:
        p, t, d = r.probe, r.probe.get("timings", {}), r.fd_detail
        body.append([
            f"{r.n:,}", r.ordo_status, "/".join(f"{w:.2f}" for w in r.ordo_walls),
            "/".join(f"{w:.2f}" for w in r.clingo_runs) or "-",
            fmt(p.get("load_project_s"), ".2f"), fmt(p.get("make_plan_s"), ".2f"),
            fmt(t.get("ground"), ".2f"), fmt(t.get("solve"), ".2f"), fmt(t.get("decode"), ".2f"),
            fmt(r.waves, ","), r.fd_status,
            # a killed run's FD processes are not waited for: their memory is not in the figure
            "n/a (killed)" if r.fd_status == "timeout" else fmt(r.fd_peak_mb, ".0f"), fmt(d.get("build_s"), ".2f"),
            fmt(d.get("solve_s"), ".2f"), fmt(d.get("fd_planner_s"), ".2f"), fmt(d.get("actions"), ","),
        ])
    return header, body


def main(argv: list[str] | None = None) -> int:
    global ARGS_TIMEOUT
    parser = argparse.ArgumentParser(description="Benchmark ordo plan against Fast Downward.")
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated N values")
    parser.add_argument("--repeat", type=int, default=3, help="timed ordo runs per N (median reported)")
    parser.add_argument("--fd-timeout", type=float, default=120.0, help="seconds for the whole FD run")
    parser.add_argument("--no-fd", action="store_true", help="skip Fast Downward")
    parser.add_argument("--fd-max", type=int, default=10000,
                        help="run Fast Downward for N up to this (it needs 3.6 GB and 14 minutes at 10,000)")
    parser.add_argument("--history", type=Path, default=HERE / "history.jsonl",
                        help="the results history this run is compared with and appended to")
    parser.add_argument("--no-history", action="store_true", help="compare with the history, but do not append")
    parser.add_argument("--no-probe", action="store_true", help="skip the in-process phase timings")
    parser.add_argument("--check-max", type=int, default=1000,
                        help="replay ordo's plan in the FD encoding (validator) for N up to this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parse-cache", choices=("cold", "warm"), default="cold",
                        help="cold: every timed run without the parse cache (.ordo/cache emptied first), as a "
                             "project's first command; warm: filled by an untimed run first, as the next ones")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args(argv)
    ARGS_TIMEOUT = args.fd_timeout
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not Path(ORDO).exists():
        print(f"no ordo console script at {ORDO}", file=sys.stderr)
        return 1
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    compile_ordo()
    info = machine()
    print(f"# {info.get('date')}: {info.get('nproc')} CPUs ({info.get('cpu', '?')}), "
          f"{info.get('mem_gb', '?')} GB RAM, Python {info['python']}, clingo {info.get('clingo', '?')}, "
          f"unified-planning {info.get('unified-planning', '?')}, "
          f"up-fast-downward {info.get('up-fast-downward', '?')}; parse cache {args.parse_cache}", flush=True)
    previous = previous_records(args.history, machine_key(info), args.parse_cache)
    rows: list[Row] = []
    folders: dict[int, Path] = {}
    for n in sizes:
        folders[n] = folder = args.out / f"n{n}"
        if folder.exists():
            shutil.rmtree(folder)
        inst = generate.write_project(n, folder, args.seed)
        row = Row(n=n, counts={"services": len(inst.services), "networks": len(inst.networks),
                               "existing": len(inst.shared), "vnfs": len(inst.vnfs),
                               "vf_modules": len(inst.modules),
                               "anti_affinity_vnfs": len(inst.anti_affinity)})
        row.previous = previous.get(str(n))
        print(f"N={n:,}: {row.counts}", flush=True)
        rows.append(row)
    bench_ordo(rows, folders, args.repeat, clingo=not args.no_probe, warm=args.parse_cache == "warm")
    for row in rows:
        n, folder = row.n, folders[row.n]
        if row.ordo_status == "error":
            print(f"N={n:,}: ordo plan failed", flush=True)
        else:
            print(f"N={n:,}: ordo plan: {row.ordo_status} (gap {row.gap}), median {row.ordo_wall:.2f} s of "
                  f"{len(row.ordo_walls)}, peak {row.ordo_peak_mb:.0f} MB, {row.operations} operations", flush=True)
        if not args.no_probe and row.ordo_status != "error":
            bench_probe(row, folder)
            print(f"  in-process phases: {row.probe.get('timings')}, "
                  f"load_project {row.probe.get('load_project_s', 0):.2f} s; clingo alone {row.probe.get('ground')}",
                  flush=True)
        if n <= args.check_max and row.ordo_status != "error":
            check_ordo_plan(row, folder)
            print(f"  ordo's plan replayed in the FD encoding: {row.ordo_plan_in_fd_model}", flush=True)
        if not args.no_fd and n <= args.fd_max:
            bench_fd(row, folder, args.fd_timeout)
            print(f"  fast-downward: {row.fd_status} in {row.fd_wall:.2f} s, plan length {row.fd_plan_length}, "
                  f"{row.fd_detail}", flush=True)
        for error in row.errors:
            print(f"  note: {error}", flush=True)
    for row in rows:
        double = next((r for r in rows if r.n == 2 * row.n and math.isfinite(r.ordo_wall)), None)
        if double and math.isfinite(row.ordo_wall):
            solver = (f"; clingo alone on the same programs: {double.clingo_s / row.clingo_s:.2f}"
                      if double.clingo_s and row.clingo_s else "")
            print(f"time({double.n:,}) / time({row.n:,}): {double.ordo_wall / row.ordo_wall:.2f} "
                  f"(medians of runs taken in turn{solver})", flush=True)

    body = table_rows(rows)
    print()
    print(text_table(COLUMNS, body))
    dh, db = detail_table(rows)
    print()
    print(text_table(dh, db))
    print()
    print("FD encoding: capacities dropped (no numeric fluents; they never bind in these instances), "
          "prefer-cheaper-region objective dropped (lama-first is satisficing), anti-affinity kept. "
          "ordo solves to optimality with all three policies.")
    (args.out / "results.json").write_text(json.dumps(
        {"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
         "rows": [asdict(r) | {"ratio": r.ratio, "clingo_s": r.clingo_s, "overhead": r.overhead} for r in rows]},
        indent=2) + "\n")
    (args.out / "results.md").write_text(md_table(COLUMNS, body) + "\n\n" + md_table(dh, db) + "\n")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    if not args.no_history:
        with args.history.open("a") as history:
            history.write(json.dumps(history_record(info, rows, args), sort_keys=True) + "\n")
        print(f"appended this run to {args.history}")
    failed = [r for r in rows if r.ordo_status not in ("optimal", "satisfiable")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
