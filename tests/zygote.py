"""Real ``ordo`` processes without the interpreter's start: forked from one that has imported ordo.

Each ``ordo`` process a test starts spends most of its life starting: the
interpreter, then ordo's imports (about half a second on a slow machine,
more than most commands take after it). The hostile corpus runs some
hundred of them. A *zygote* is a helper process that imports ordo once and
then forks a child per command, which runs the console script's own entry
point (``ordo.cli:main``, the same exit path, ``os._exit`` included) with the
command's arguments, working folder, environment, limits and output file.
Each child is a process of its own: its exit code, its peak memory, a crash
or a kill are its own, as with the installed script, and it ends as the
interpreter ends it (threads and idle pools stopped and waited for, exit
handlers, streams flushed: 120 when they cannot be; an uncaught exception
1, Ctrl-C by SIGINT), whatever it raises: tests/test_zygote.py compares
each ending with a fresh interpreter's. What differs is only what was
imported before the arguments were known, and what the interpreter reads
from the environment when it starts (encoding, locale, hash seed, warnings:
``STARTUP_VARIABLES``): a command whose environment sets those otherwise
than the zygote's is refused (ValueError), to be run as a process of its
own. The hash seed is thus the zygote's (each test worker starts its own
zygote, so the seeds still differ between workers and between runs).
``tests/test_hostile_corpus.py`` checks that a sample of its cases give the
same output through both. A zygote that dies is named with what it wrote
to its standard error, the children it left are killed when it is closed,
and ``shared()`` starts another.

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
import tempfile
import threading
import time
import traceback
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
    zygote = os.getpid()
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
    finally:   # the test process is gone: so are the children it did not stop (never run in a child)
        if os.getpid() == zygote:
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
    """In the forked child: become the command, run the console script's entry point and end as
    the interpreter would end the installed script; never return, whatever is raised (an
    exception that reached ``_serve`` here would kill this child's siblings)."""
    status = 70   # the harness could not start the command: its traceback is on the command's stderr
    try:
        main = _become(cmd, resource)
        status = 1
        try:
            main()   # ends the process itself (os._exit), or raises SystemExit while threads still run
            status = 71   # main() returned: it never should
        except SystemExit as exc:
            status = exit_status(exc.code)
        except KeyboardInterrupt:
            traceback.print_exc()
            status = -signal.SIGINT   # the interpreter ends itself with SIGINT then
        except BaseException:
            traceback.print_exc()   # as an uncaught exception is reported
        status = _shut_down(status)
    except KeyboardInterrupt:   # Ctrl-C while the threads were waited for
        status = -signal.SIGINT
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        if status < 0:   # killed by a signal, as the interpreter does it: the default action, then that signal
            with contextlib.suppress(BaseException):
                signal.signal(-status, signal.SIG_DFL)
                os.kill(os.getpid(), -status)
        os._exit(status if status >= 0 else 70)


def _become(cmd: dict, resource):
    """The command's session, limits, files, folder, environment and arguments; its entry point."""
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
    if cmd.get("entry"):   # this harness's own tests: (folder, module, function) instead of the console script
        import importlib

        folder, module, function = cmd["entry"]
        sys.path.insert(0, folder)
        return getattr(importlib.import_module(module), function)
    from ordo.cli import main

    return main


def exit_status(code: object) -> int:
    """The status a process exits with after ``sys.exit(code)`` (a message is printed, and gives 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _shut_down(status: int) -> int:
    """What the interpreter does at exit, in its order: stop idle thread pools and wait for the other
    threads (``threading._shutdown``), run the exit handlers, flush the standard streams (a stream
    that cannot be flushed makes the status 120)."""
    import atexit

    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception as exc:
            status = 120
            with contextlib.suppress(Exception):   # the interpreter's words for it
                os.write(2, f"Exception ignored in: {stream!r}\n{traceback.format_exception_only(exc)[-1]}".encode())
    return status


_shared: Zygote | None = None


def shared() -> Zygote:
    """This process's zygote, started at the first call and stopped at exit."""
    global _shared
    if _shared is not None and not _shared.alive():   # it died: say why once, and start another
        import warnings

        warnings.warn(f"the zygote ended; starting another. {_shared.last_words()}", stacklevel=2)
        _shared.close()
        _shared = None
    if _shared is None:
        import atexit

        _shared = Zygote()
        atexit.register(_shared.close)
    return _shared


#: What the interpreter reads from the environment when it starts, not later: a child forked from
#: the zygote has the zygote's (encoding, locale, hash seed, warnings, dev mode), whatever its own says.
STARTUP_VARIABLES = ("PYTHON", "LANG", "LC_")


class Zygote:
    """A zygote process for this test process: start once, then ``spawn`` or ``run`` commands."""

    def __init__(self) -> None:
        requests_r, self._requests = os.pipe()
        self._answers, answers_w = os.pipe()
        code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from tests.zygote import _serve; "
                "_serve(os.fdopen(int(sys.argv[2]), 'r'), os.fdopen(int(sys.argv[3]), 'w'), sys.argv[1])")
        root = str(Path(__file__).resolve().parent.parent)
        self._startup = {k: v for k, v in os.environ.items() if k.startswith(STARTUP_VARIABLES)}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  the zygote's own errors, quoted if it dies; closed by close()
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-c", code, root, str(requests_r), str(answers_w)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            pass_fds=(requests_r, answers_w))
        os.close(requests_r)
        os.close(answers_w)
        self._buffer = b""
        self._lock = threading.Lock()
        self._live: set[int] = set()   # children spawned and not yet seen to end
        self._closed = False

    def alive(self) -> bool:
        return not self._closed and self._proc.poll() is None

    def last_words(self) -> str:
        """The end of what the zygote wrote to its standard error, and how it ended."""
        self._stderr.seek(0)
        said = self._stderr.read().decode(errors="replace").strip()[-2000:]
        return f"exit {self._proc.poll()}" + (f"; it said:\n{said}" if said else ", silently")

    def spawn(self, argv0: str, args: list[str], cwd: Path, env: dict[str, str], output: Path,
              error: Path | None = None, address_space: int | None = None,
              entry: tuple[str, str, str] | None = None) -> Forked:
        """Start one command, its standard output and error into ``output`` (or its error into
        ``error``), its address space limited to ``address_space`` bytes; its handle. ``entry``
        (folder, module, function): another entry point than ordo's console script (this harness's
        own tests). ValueError for an environment the child would not start with."""
        differ = sorted(k for k in {*env, *self._startup} if k.startswith(STARTUP_VARIABLES)
                        and env.get(k) != self._startup.get(k))
        if differ:
            raise ValueError(f"a forked command would not see {', '.join(differ)} as the environment given "
                             "says (the interpreter reads them when it starts): run it as a process of its own "
                             "(tests.conftest.run_ordo_process)")
        request = {"op": "spawn", "argv0": argv0, "args": args, "cwd": str(cwd), "env": env,
                   "output": str(output), "error": error and str(error), "address_space": address_space,
                   "entry": entry}
        pid = self._ask(request)["pid"]
        self._live.add(pid)
        return Forked(self, pid, [argv0, *args])

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
            try:
                os.write(self._requests, (json.dumps(request) + "\n").encode())
                while b"\n" not in self._buffer:
                    chunk = os.read(self._answers, 65536)
                    if not chunk:
                        raise BrokenPipeError
                    self._buffer += chunk
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
                raise RuntimeError(f"the zygote ended ({self.last_words()})") from None
            line, self._buffer = self._buffer.split(b"\n", 1)
            answer = json.loads(line)
            if answer.get("status") is not None:
                self._live.discard(request["pid"])
            return answer

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        died = self._proc.poll() is not None
        os.close(self._requests)   # the zygote's loop ends at the end of its input, killing what still runs
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            died = True
        if died:   # nothing killed its children: they lead process groups of their own
            for pid in self._live:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        os.close(self._answers)
        self._stderr.close()


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
