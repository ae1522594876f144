"""Real ``ordo`` processes without the interpreter's start: forked from one that has imported ordo.

Each ``ordo`` process a test starts spends most of its life starting: the
interpreter, then ordo's imports (about half a second on a slow machine,
more than most commands take after it). The hostile corpus runs some
hundred of them. A *zygote* is a helper process that imports ordo once and
then forks a child per command, which runs the console script's own entry
point (``ordo.cli:main``, the same exit path, ``os._exit`` included) with the
command's arguments, working folder, environment, limits and output file.
Each child is a process of its own: its exit code, its peak memory, a crash
or a kill are its own, as with the installed script. What differs is only
what was imported before the arguments were known, and that the hash seed is
the zygote's (each test worker starts its own zygote, so the seeds still
differ between workers and between runs). ``tests/test_hostile_corpus.py``
checks that a sample of its cases give the same output through both.

Protocol, one JSON line each way over two pipes: ``spawn`` (a command) is
answered ``{"pid": P}`` once the zygote has forked it; ``wait`` (a pid, a
timeout or none) is answered ``{"status": S, "maxrss": KB}`` once the child
has ended (``S`` as ``os.waitstatus_to_exitcode`` gives it), or
``{"status": null}`` when the timeout struck first. Signals go straight to
the child from the test: each child leads a session (and process group) of
its own. When the test process ends, the zygote reads the end of its input,
kills the children still running and ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO


def _serve(requests: IO[str], answers: IO[str], root: str) -> None:
    """The zygote's loop (in the zygote process): one request at a time."""
    import resource

    import ordo.cli  # noqa: F401  everything a command may import, imported once here
    import ordo.render  # noqa: F401
    import ordo.runs  # noqa: F401
    import planner.core  # noqa: F401
    with contextlib.suppress(ImportError):   # `ordo worker` and `--engine temporal` (the extra `temporal`)
        import temporalio.worker  # noqa: F401

        import executor.temporal.activities  # noqa: F401
        import executor.temporal.client  # noqa: F401

    # the import path of the console script: its own folder first (never the working folder), and
    # not this repository's root unless the installation put it there
    sys.path.remove(root)
    sys.path.insert(0, str(Path(sys.executable).parent))

    ended: dict[int, dict] = {}   # children reaped, by pid, until asked for
    running: set[int] = set()
    try:
        for line in requests:
            request = json.loads(line)
            if request["op"] == "spawn":
                pid = os.fork()
                if pid == 0:
                    _child({**request, "close": [requests.fileno(), answers.fileno()]}, resource)
                running.add(pid)
                answer = {"pid": pid}
            else:
                pid = request["pid"]
                if pid not in ended:
                    found = _wait(pid, request["timeout"])
                    if found is not None:
                        ended[pid] = found
                        running.discard(pid)
                answer = ended.pop(pid, {"status": None})
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
    finally:   # the test process is gone: so are the children it did not stop
        for pid in running:
            kill(pid)
            os.waitpid(pid, 0)


def kill(pid: int) -> None:
    """SIGKILL child ``pid`` and its process group (which it leads once it has called setsid: not yet,
    if it has only just been forked)."""
    for send in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError):
            send(pid, signal.SIGKILL)


def _wait(pid: int, timeout: float | None) -> dict | None:
    """The status of child ``pid`` once it ends within ``timeout`` seconds (None: no limit), else None."""
    if timeout is not None:
        deadline = time.monotonic() + timeout
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done or time.monotonic() >= deadline:
                break
            time.sleep(min(0.005, max(deadline - time.monotonic(), 0)))
        if not done:
            return None
    else:
        _, status, usage = os.wait4(pid, 0)
    return {"status": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss}


def _child(cmd: dict, resource) -> None:
    """In the forked child: become the command, run the console script's entry point, never return."""
    try:
        os.setsid()
        if cmd.get("address_space"):
            limit = int(cmd["address_space"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for fd in cmd["close"]:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(cmd["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(cmd["error"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if cmd.get("error") else out
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in {null, out, err}:
            os.close(fd)
        os.chdir(cmd["cwd"])
        os.environ.clear()
        os.environ.update(cmd["env"])
        sys.argv = [cmd["argv0"], *cmd["args"]]
        from ordo.cli import main

        main()   # ends the process itself (os._exit), or raises SystemExit while threads still run
    except SystemExit as exc:   # what the interpreter's exit does: wait for the threads, run the exit handlers
        import atexit
        import threading

        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
        code = exc.code
        if not (code is None or isinstance(code, int)):
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
    os._exit(71)   # main() returned: it never should


_shared: Zygote | None = None


def shared() -> Zygote:
    """This process's zygote, started at the first call and stopped at exit."""
    global _shared
    if _shared is None:
        import atexit

        _shared = Zygote()
        atexit.register(_shared.close)
    return _shared


class Zygote:
    """A zygote process for this test process: start once, then ``spawn`` or ``run`` commands."""

    def __init__(self) -> None:
        requests_r, self._requests = os.pipe()
        self._answers, answers_w = os.pipe()
        code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from tests.zygote import _serve; "
                "_serve(os.fdopen(int(sys.argv[2]), 'r'), os.fdopen(int(sys.argv[3]), 'w'), sys.argv[1])")
        root = str(Path(__file__).resolve().parent.parent)
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-c", code, root, str(requests_r), str(answers_w)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(requests_r, answers_w))
        os.close(requests_r)
        os.close(answers_w)
        self._buffer = b""
        self._lock = threading.Lock()

    def spawn(self, argv0: str, args: list[str], cwd: Path, env: dict[str, str], output: Path,
              error: Path | None = None, address_space: int | None = None) -> Forked:
        """Start one command, its standard output and error into ``output`` (or its error into
        ``error``), its address space limited to ``address_space`` bytes; its handle."""
        request = {"op": "spawn", "argv0": argv0, "args": args, "cwd": str(cwd), "env": env,
                   "output": str(output), "error": error and str(error), "address_space": address_space}
        return Forked(self, self._ask(request)["pid"], [argv0, *args])

    def run(self, argv0: str, args: list[str], cwd: Path, env: dict[str, str], output: Path, timeout: float,
            address_space: int | None = None, error: Path | None = None) -> tuple[int | None, int, float]:
        """``spawn`` and wait: (exit code, or None when ``timeout`` struck and it was killed with its
        process group; peak resident KB; seconds)."""
        started = time.monotonic()
        child = self.spawn(argv0, args, cwd, env, output, error, address_space)
        try:
            code = child.wait(max(timeout - (time.monotonic() - started), 0.0))
        except subprocess.TimeoutExpired:
            kill(child.pid)
            child.wait()
            code = None
        return code, child.maxrss, time.monotonic() - started

    def _ask(self, request: dict) -> dict:
        with self._lock:
            os.write(self._requests, (json.dumps(request) + "\n").encode())
            while b"\n" not in self._buffer:
                chunk = os.read(self._answers, 65536)
                if not chunk:
                    raise RuntimeError(f"the zygote ended (exit {self._proc.wait()})")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            return json.loads(line)

    def close(self) -> None:
        os.close(self._requests)   # the zygote's loop ends at the end of its input
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._answers)


class Forked:
    """A command the zygote started: what tests use of ``subprocess.Popen`` (pid, poll, wait, signals)."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.maxrss = 0

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.wait(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            answer = self._zygote._ask({"op": "wait", "pid": self.pid, "timeout": timeout})
            if answer["status"] is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode, self.maxrss = answer["status"], answer["maxrss"]
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
