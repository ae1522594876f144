"""Shared fixtures: the bundled examples and two ways to run the CLI.

``run_ordo`` runs ``ordo.cli.main`` in this process, as the console script
would, with its output captured; ``run_ordo_process`` starts the installed
console script, for the tests where the process boundary is what is tested
(kill -9, signals, Ctrl-C, packaging, the script's own exit code).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.zygote import exit_status

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
VFW = EXAMPLES / "vfw"
FIXTURES = ROOT / "tests" / "fixtures"

#: What a user's terminal would add: no colour, wide lines.
PLAIN_TERMINAL = {"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "500"}
#: Variables that change what a CLI call does; never inherited from the test's environment.
ORDO_ENV = ("ORDO_CRASH_POINT", "ORDO_SIMULATION", "ORDO_JOURNAL")

# The tests' files in memory where the machine has room for them (/dev/shm, tmpfs): they write
# journals, plans and servers' data by the thousand, and on a disk the journals' syncs cost the
# suite a tenth of its time on two cores (5 min 29 s against 4 min 57 s, 7 December). A TMPDIR
# given is kept. Set here, before the workers start: they and every process they start inherit it.
def _tests_in_memory(least: int = 8 << 30) -> None:
    shm = Path("/dev/shm")
    if os.environ.get("TMPDIR") or not shm.is_dir() or not os.access(shm, os.W_OK | os.X_OK):
        return
    found = os.statvfs(shm)
    if found.f_bavail * found.f_frsize < least:
        return
    folder = shm / f"ordo-tests-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
    if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.geteuid():
        return
    folder.chmod(0o711)   # others may pass, not look: PostgreSQL runs as its own user in a folder of its own
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None


_tests_in_memory()


def _compiled() -> None:
    """ordo's own modules compiled once, here, before the workers start: from a fresh clone each worker
    compiled every module it imported, all of them at once (where bytecode may be written)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import compileall

    for package in ("domain", "planner", "executor", "service", "ordo", "policies"):
        if (ROOT / package).is_dir():
            compileall.compile_dir(ROOT / package, quiet=2, workers=1)


_compiled()

# Python keeps its bytecode caches during the tests. A container may set PYTHONDONTWRITEBYTECODE;
# then each test worker compiled and assertion-rewrote its 440 modules again at every run (10 s of
# each worker's start on a slow 2-core machine: collection 11 s instead of 3.6 s), and every `ordo`
# process a test starts compiled ordo's own modules (70 ms each). This file is loaded before the
# workers start, so they and every process they start inherit the change; the caches go where
# Python puts them (__pycache__ folders, which git ignores).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def ordo_executable() -> str:
    found = Path(sys.executable).parent / "ordo"
    return str(found) if found.exists() else (shutil.which("ordo") or "ordo")


def ordo_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI call: this one without ORDO_*, a plain terminal, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ORDO_ENV}
    return {**env, **PLAIN_TERMINAL, **(extra or {})}


#: The line ordo.cli.main prints for an unexpected exception, with the file that holds its traceback.
BUG = re.compile(r"this is a bug in ordo \(\w+\); the details are in (\S+) ")


def _no_bug(run: Run, expect_bug: bool) -> Run:
    """A bug in ordo fails the test with its traceback, even where only the exit code is checked."""
    found = BUG.search(run.err)
    if found and not expect_bug:
        report = Path(found[1])
        raise AssertionError(f"a bug in ordo:\n{report.read_text() if report.exists() else run.err}")
    return run


def run_ordo_process(*args: str | Path, cwd: Path | None = None, env: dict | None = None,
                     timeout: float = 120) -> Run:
    """Run the installed ``ordo`` console script in a new process, as a user would."""
    proc = subprocess.run([ordo_executable(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=ordo_env(env), stdin=subprocess.DEVNULL, timeout=timeout)
    return _no_bug(Run(proc.returncode, proc.stdout, proc.stderr), expect_bug=False)


def run_ordo_forked(*args: str | Path, cwd: Path | None = None, env: dict | None = None,
                    timeout: float = 120) -> Run:
    """``run_ordo_process`` without the interpreter's start: a process forked from one that has
    imported ordo (tests/zygote.py) runs the console script's entry point."""
    from tests.zygote import shared

    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "out", Path(folder) / "err"
        code, _, _ = shared().run(ordo_executable(), [str(a) for a in args], cwd or Path.cwd(), ordo_env(env), out,
                                  timeout, error=err)
        if code is None:
            raise subprocess.TimeoutExpired(["ordo", *map(str, args)], timeout)
        run = Run(code, out.read_text(), err.read_text())
    return _no_bug(run, expect_bug=False)


def run_ordo(*args: str | Path, cwd: Path | None = None, env: dict | None = None, expect_bug: bool = False) -> Run:
    """Run ``ordo`` in this process, as the console script would (``ordo.cli.main``).

    stdin is not a terminal, stdout and stderr are captured, the environment
    is that of ``run_ordo_process`` for the call only, and ``cwd`` is the
    working folder for the call only. The call may leave no thread running
    and no SIGINT or SIGTERM handler installed, and a bug in ordo fails the test unless
    ``expect_bug``.
    """
    from ordo.cli import main

    if env and "ORDO_CRASH_POINT" in env:
        raise AssertionError("a crash point kills the process: use run_ordo_process")
    overrides: dict[str, str | None] = dict.fromkeys(ORDO_ENV)
    overrides.update({**PLAIN_TERMINAL, **(env or {})})
    threads = set(threading.enumerate())
    handler = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    runner = CliRunner()
    with runner.isolation(env=overrides, color=False) as (out, err, _), \
            contextlib.chdir(cwd if cwd is not None else Path.cwd()):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exit_status(exc.code)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    _check_left_behind(threads, handler)
    return _no_bug(Run(code, out.getvalue().decode(), err.getvalue().decode("utf-8", "backslashreplace")),
                   expect_bug)


def _check_left_behind(before: set[threading.Thread], handler: tuple[object, object]) -> None:
    assert signal.getsignal(signal.SIGINT) is handler[0], "ordo left its SIGINT handler installed"
    assert signal.getsignal(signal.SIGTERM) is handler[1], "ordo left its SIGTERM handler installed"
    deadline = time.monotonic() + 10
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, f"ordo left threads running: {left}"


@pytest.fixture(scope="session")
def zygote():
    """A process that has imported ordo and forks ``ordo`` commands (tests/zygote.py), one per test worker."""
    from tests.zygote import shared

    return shared()


@pytest.fixture
def vfw_copy(tmp_path: Path) -> Path:
    """A private copy of the vFW example to change."""
    dest = tmp_path / "vfw"
    shutil.copytree(VFW, dest, ignore=shutil.ignore_patterns(".ordo"))
    return dest


def require_server(name: str, found: bool, how: str) -> None:
    """Skip a test whose server is not on this machine (README's second command
    needs only Python and the package index), unless ORDO_REQUIRE_SERVERS is
    set, as CI sets it after installing them: then a missing one fails."""
    if found:
        return
    if os.environ.get("ORDO_REQUIRE_SERVERS"):
        pytest.fail(f"{name} is required here (ORDO_REQUIRE_SERVERS) but missing: {how}")
    pytest.skip(f"{name} is not installed ({how})")


# journal backends (a PostgreSQL cluster for the session, `journal_url` on SQLite and PostgreSQL)
from tests.stores import journal_url, postgres_server, postgres_url  # noqa: E402, F401


def pytest_configure(config: pytest.Config) -> None:
    """Once, before the workers start: ordo's modules compiled, as pip compiles an installed package.
    An editable install under PYTHONDONTWRITEBYTECODE (containers, CI) writes no bytecode, and each
    process the suite starts (the console script, servers, workers: hundreds) compiled the ~40 modules
    it imports from source again: a fresh clone's suite ran half a minute longer than a working tree's
    (7 December). Reading bytecode is allowed under that variable; writing it here is explicit."""
    if hasattr(config, "workerinput"):   # (an xdist worker: the controller did it)
        return
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("domain", "planner", "executor", "service", "ordo", "policies"):
        if (root / package).is_dir():
            compileall.compile_dir(str(root / package), quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers more than the cores. A good part of the suite waits (on servers it
    started, on `ordo` processes, on timeouts it tests): with a worker per core, a core then has
    nothing to do. On two cores, three workers took 4 min 7 s where two took 4 min 55 s (6 December);
    on a slower machine of two cores, four took 4 min 54 s where three took 5 min 35 s; five took 4 min
    47 s where four took 4 min 58 s in a working tree, but 5 min 42 s where four took 5 min 10 s from a
    fresh clone (each worker compiles what it imports there first) (7 December)."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold slow tests (servers, `ordo` processes) run first, each file's tests
    together and in order: on two workers, a 20-second test left for the end keeps one worker
    busy while the other has nothing left to do."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)   # a stable sort: the order within stays
