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

Protocol, one JSON line each way over two pipes: the test sends a command;
the zygote forks, answers ``{"pid": P}``, waits for the child and answers
``{"status": S, "maxrss": KB}`` (``S`` as ``os.waitstatus_to_exitcode``
gives it). The test may kill the child's process group meanwhile: the child
is the leader of a session of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


def _serve(requests: IO[str], answers: IO[str], root: str) -> None:
    """The zygote's loop (in the zygote process): one command at a time."""
    import resource

    import ordo.cli  # noqa: F401  everything a command may import, imported once here
    import ordo.render  # noqa: F401
    import ordo.runs  # noqa: F401
    import planner.core  # noqa: F401

    # the import path of the console script: its own folder first (never the working folder), and
    # not this repository's root unless the installation put it there
    sys.path.remove(root)
    sys.path.insert(0, str(Path(sys.executable).parent))

    for line in requests:
        cmd = {**json.loads(line), "close": [requests.fileno(), answers.fileno()]}
        pid = os.fork()
        if pid == 0:
            _child(cmd, resource)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status, usage = os.wait4(pid, 0)
        answers.write(json.dumps({"status": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss}) + "\n")
        answers.flush()


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
    """A zygote process for this test process (start once, then ``run`` commands one at a time)."""

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

    def run(self, argv0: str, args: list[str], cwd: Path, env: dict[str, str], output: Path, timeout: float,
            address_space: int | None = None, error: Path | None = None) -> tuple[int | None, int, float]:
        """Run one command, its standard output and error into ``output`` (or its error into ``error``);
        (exit code or None when ``timeout`` struck and it was killed, peak KB, seconds)."""
        started = time.monotonic()
        cmd = {"argv0": argv0, "args": args, "cwd": str(cwd), "env": env, "output": str(output),
               "error": error and str(error), "address_space": address_space}
        os.write(self._requests, (json.dumps(cmd) + "\n").encode())
        pid = self._answer(None)["pid"]
        left = timeout - (time.monotonic() - started)
        answer = self._answer(max(left, 0.0))
        if answer is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            answer = self._answer(None)
            return None, answer["maxrss"], time.monotonic() - started
        return answer["status"], answer["maxrss"], time.monotonic() - started

    def _answer(self, timeout: float | None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready, _, _ = select.select([self._answers], [], [], wait)
            if not ready:
                return None
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

