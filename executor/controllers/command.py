"""Command controller: runs a program per call, JSON on stdin and stdout.

Configuration (``controllers.NAME.config`` in the catalog)::

    command: ["python3", "ctl.py"]    # required; a list, or a string split like a shell (shlex)
    timeout: 300                      # seconds per call (default 300); a smaller request.timeout wins
    env: {CTL_TOKEN: "..."}           # optional: extra environment variables

Secrets: the value after a secret-looking flag (``--password X``, ``--token=X``)
is masked in every message (which name the program by its command line), and it
and the values of ``env`` entries with secret-looking names (``CTL_TOKEN``) are
masked wherever they appear, the program's stderr included (:mod:`executor.redact`).

The program runs in the project folder (``context.root``); a relative program
path (one containing "/", or a file in the project folder) resolves against it,
any other name is looked up on PATH. A program that cannot be found is a
ConfigError when the controller is made.

Protocol. ``execute`` writes ``{"action": "execute", **request.as_dict()}``
and reads a JSON object; its ``outputs`` (an object, default {}) are the
operation's outputs (empty stdout counts as ``{}``). ``observe`` writes
``{"action": "observe", "resource", "type", "request": request.as_dict() or null}``
and reads ``{"exists": bool, "state", "target", "attributes": {...},
"applied": bool|null, "outputs": {...}|null}``.

Exit codes: 0 is success; 75 (EX_TEMPFAIL) a TransientError whose effect is
unknown; any other a PermanentError that was not applied, unless stdout is
``{"error": "...", "transient": true, "scope": "target", "applied": null,
"code": "..."}`` (all but ``error`` optional), which then decides (an ``applied``
that is neither a boolean nor null: not known, as null). A program
killed by a signal gives a PermanentError whose effect is unknown. A call
that outlasts the timeout is killed with its whole process group and is a
TransientError whose effect is unknown.

An ``execute``'s program is noted, while it runs, by its operation's key
beside the journal (``calls/``). Before an operation in doubt is observed,
the process group of the program a note names is killed while any of it
runs: what an ordo killed at once (-9, the out-of-memory killer) left behind,
which would otherwise make the operation beside its resend. What it started
and detached from its group (a daemon that is the operation's effect) is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from domain.errors import clipped
from domain.procs import boot_id, booted_at, started, stat_fields
from executor.controllers.base import (
    MAX_ANSWER_BYTES,
    ConfigError,
    ControllerContext,
    ControllerError,
    Observation,
    OperationRequest,
    PermanentError,
    TransientError,
    answer_json,
    seconds,
    settings,
)
from executor.redact import Redactor, redact_argv, scrub, secret_name

DEFAULT_TIMEOUT = 300.0
EX_TEMPFAIL = 75
STDERR_TAIL = 500  # characters of stderr quoted in error messages
STDERR_KEEP = 64 * 1024  # bytes of stderr kept (its end), of which the last STDERR_TAIL characters are quoted
STDOUT_HEAD = 200  # characters of unreadable stdout quoted in error messages
ERROR_MOST = 2000  # characters of the error a failing program reports quoted in error messages
_KEYS = ("command", "timeout", "env")
_NONE = type(None)
_OBSERVED = {"exists": (bool,), "state": (str, _NONE), "target": (str, _NONE), "attributes": (dict, _NONE),
             "applied": (bool, _NONE), "outputs": (dict, _NONE)}  # what observe's answer may hold


class CommandController:
    """Carries out operations by running a program that speaks JSON."""

    def __init__(self, name: str, config: dict[str, Any], context: ControllerContext) -> None:
        self.name = name
        self.context = context
        config, self.env, argv = _read(config)
        self.cwd = Path(context.root).absolute()
        shown, hidden = redact_argv(argv)
        context.redactor.add_values([*hidden, *(v for k, v in self.env.items() if secret_name(k))])
        self.label = shlex.join(shown)
        self.argv = [_program(argv[0], self.cwd, self.env.get("PATH", os.environ.get("PATH"))), *argv[1:]]
        self.timeout = seconds(config.get("timeout", DEFAULT_TIMEOUT), "config.timeout")
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()   # the calls' programs, while they run
        self._calls = _Calls(Path(context.workdir) / "calls")
        self._closed = False

    @staticmethod
    def check_config(config: dict[str, Any], root: Path) -> None:
        """ConfigError for what making the controller of ``config`` would refuse (``ordo check``), but
        a program named without a path (found on the PATH of the machine that runs it)."""
        config, env, argv = _read(config)
        try:
            local = "/" in argv[0] or _in_project(argv[0], root)
        except OSError:
            local = True   # (_program names what is wrong with it)
        if local:
            _program(argv[0], root.absolute(), env.get("PATH", os.environ.get("PATH")))
        seconds(config.get("timeout", DEFAULT_TIMEOUT), "config.timeout")

    def execute(self, request: OperationRequest) -> dict[str, Any]:
        """Run the program for one operation; return the outputs it prints."""
        timeout = self.timeout if request.timeout is None else min(self.timeout, request.timeout)
        what = f"operation '{request.operation}' of '{request.resource}'"
        reply = self._run({"action": "execute", **request.as_dict()}, timeout, what, executing=True,
                          key=request.key)
        outputs = reply.get("outputs")
        if outputs is None:
            return {}
        if not isinstance(outputs, dict):
            raise PermanentError(f"{self._who()}: {what}: 'outputs' must be an object, got "
                                 f"{type(outputs).__name__}", applied=True)
        return outputs

    def observe(self, resource: str, type: str, request: OperationRequest | None = None) -> Observation:
        """Ask the program what it knows of ``resource`` (and whether ``request`` was applied)."""
        payload = {"action": "observe", "resource": resource, "type": type,
                   "request": None if request is None else request.as_dict()}
        what = f"observe of '{resource}'"
        if request is not None and request.key:
            # an operation in doubt: a program still running for it (left by an ordo killed with -9, or by
            # the out-of-memory killer) would make it as this observe says it is not, beside the resend
            self._calls.end(request.key)
        reply = self._run(payload, self.timeout, what, executing=False)
        for key, kinds in _OBSERVED.items():
            if not isinstance(reply.get(key), kinds):
                raise PermanentError(f"{self._who()}: {what}: '{key}' has the wrong type or is missing: "
                                     f"{self.context.redactor.excerpt(json.dumps(reply), STDOUT_HEAD)}", applied=None)
        return Observation(exists=reply["exists"], state=reply.get("state"), target=reply.get("target"),
                           attributes=reply.get("attributes") or {}, applied=reply.get("applied"),
                           outputs=reply.get("outputs"))

    def close(self) -> None:
        """End the programs still running, with everything they started: each call's process is gone
        when the call returns, so these are the calls of a run stopped at once (a second Ctrl-C or
        SIGTERM), which left them running on their own, unbounded by any timeout, beside what a resume
        sends (a sweep's). Their operations stay in doubt: a resume observes them first."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    # -- one run -------------------------------------------------------------------------------

    def _who(self) -> str:
        return f"controller '{self.name}' ({self.label})"

    def _run(self, payload: dict[str, Any], timeout: float, what: str, *, executing: bool,
             key: str | None = None) -> dict[str, Any]:
        """Run the program once with ``payload``; its stdout as an object, or a ControllerError. ``key``:
        the operation's idempotency key, under which the program is noted while it runs (``_Calls``), for
        a later process to end it if it outlives this one."""
        wait = max(timeout, 0.001)
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=self.cwd, env={**os.environ, **self.env},
                                    start_new_session=True)
        except OSError as exc:
            raise PermanentError(f"{self._who()}: cannot run: {exc}", applied=False, code="exec") from None
        with self._lock:
            self._running.add(proc)
            closed = self._closed
        if closed:   # (closed while it started)
            with proc:
                _kill_group(proc)
            with self._lock:
                self._running.discard(proc)
            raise TransientError(f"{self._who()}: {what}: ended as it started (ordo is stopping)", applied=None,
                                 code="stopped")
        noted = self._calls.note(key, proc.pid) if key else None
        try:
            return self._answer(proc, payload, wait, what, executing=executing)
        finally:
            with self._lock:
                self._running.discard(proc)
            if noted is not None:
                self._calls.forget(noted, proc.pid)

    def _answer(self, proc: subprocess.Popen[bytes], payload: dict[str, Any], wait: float, what: str, *,
                executing: bool) -> dict[str, Any]:
        """What the program started for one call answered: its stdout as an object, or a ControllerError."""
        with proc:
            try:
                raw, written, raw_err = _communicate(proc, json.dumps(payload).encode(), wait)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise TransientError(f"{self._who()}: {what}: no answer within {wait:g} s (killed)",
                                     applied=None, code="timeout") from None
            except BaseException:
                _kill_group(proc)
                raise
        code = proc.returncode
        if written > MAX_ANSWER_BYTES:
            raise PermanentError(f"{self._who()}: {what}: stdout: {written:,} bytes, more than an answer may "
                                 f"have ({MAX_ANSWER_BYTES:,})", applied=(True if executing else None) if code == 0
                                 else None, code="output")
        err = raw_err.decode("utf-8", "replace")
        if code == 0:
            return self._parse(raw, what, executing=executing)
        detail = f"{self._who()}: {what}: "
        detail += f"killed by signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        tail = self.context.redactor.excerpt(err.strip(), STDERR_TAIL, end=True)   # (masked, then cut)
        stderr = f"; stderr: {tail}" if tail else ""
        if code == EX_TEMPFAIL:
            raise TransientError(f"{detail} (temporary failure){stderr}", applied=None, code=str(code))
        if code < 0:
            raise PermanentError(f"{detail}{stderr}", applied=None, code=f"signal {-code}")
        reported = _reported(raw, self.context.redactor)
        if reported is None:
            raise PermanentError(f"{detail}{stderr}", applied=False, code=str(code))
        applied = reported.get("applied", False)
        error: ControllerError = (TransientError if reported.get("transient") is True else PermanentError)(
            f"{detail}: {reported['error']}{stderr}",
            scope="target" if reported.get("scope") == "target" else "resource",
            applied=applied if applied is None or isinstance(applied, bool) else None,   # (garbled: not known)
            code=_reported_code(reported.get("code"), code),
        )
        raise error

    def _parse(self, out: bytes, what: str, *, executing: bool) -> dict[str, Any]:
        """The object a successful run printed. After ``execute`` empty output means no outputs, and
        unreadable output still means the operation was carried out (the program said so by exiting 0)."""
        text = out.strip()
        if not text and executing:
            return {}
        try:
            reply = answer_json(text)
        except ValueError as exc:
            reply, problem = None, f"invalid JSON ({exc})"
        else:
            problem = f"expected a JSON object, got {type(reply).__name__}"
        if not isinstance(reply, dict):
            shown = self.context.redactor.excerpt(text.decode("utf-8", "replace"), STDOUT_HEAD)
            raise PermanentError(f"{self._who()}: {what}: stdout: {problem}: {shown!r}",
                                 applied=True if executing else None, code="output")
        return reply


#: Seconds a program left running for an operation (and its process group) may take to end once killed.
LEFTOVER_SECONDS = 10.0


class _Calls:
    """The programs running for operations, noted by their operation's idempotency key in files of
    ``folder`` (beside the journal): the program's pid, its start (the kernel's, so that a pid used
    again is not taken for it) and the boot's id (a note of another boot is not acted on), written
    when it starts and removed when its call returns. A note an ordo killed at once (-9, the
    out-of-memory killer) left names a program that may still run: it ran on, orphaned, a resume was
    told "not applied" by the observe and sent the operation again beside it, the effect landing
    twice. ``end`` kills its process group (it, and what it started in it, as the timeout does) while
    any of it runs, before the operation is observed (and when the run is aborted); what it started
    and detached (a daemon that is the operation's effect) is left."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pid"

    def note(self, key: str, pid: int) -> Path | None:
        """The note of ``pid`` run for ``key``; None where it cannot be written (then nothing is found)."""
        began = started(pid)
        if began is None:
            return None
        path = self._file(key)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(f"{pid} {began} {boot_id() or '-'}\n")
        except OSError:
            return None
        return path

    @staticmethod
    def forget(path: Path, pid: int | None = None) -> None:
        """Remove the note, unless it names another program than ``pid`` (another attempt of the same
        operation, which noted its own since)."""
        with contextlib.suppress(OSError, ValueError):
            if pid is None or int(path.read_text().split()[0]) == pid:
                path.unlink()

    def end(self, key: str) -> bool:
        """Kill the process group of the program a note for ``key`` names, while any of it runs (the
        program may be gone and what it started in its group not: a wrapper's child doing the work);
        wait until it is gone (at most LEFTOVER_SECONDS). Whether any of it ran."""
        path = self._file(key)
        this_boot = boot_id() or "-"
        try:
            pid_text, began_text, *boot = path.read_text().split()
            pid, began = int(pid_text), int(began_text)
            if not boot:   # (a note of an ordo before boot ids: of this boot if written since it began)
                booted = booted_at()
                boot = [this_boot] if booted is None or path.stat().st_mtime >= booted else ["before"]
        except (OSError, ValueError):
            return False
        now = started(pid)
        ran = False
        # its group is its pid's (as _run starts it); a pid is not given again while a group of that id
        # has members: the group is the program's unless another process runs under its pid now, or the
        # note is of another boot (a reboot since, or another host sharing the folder), where a group of
        # that id is another's (the abort of a run crashed before a reboot killed it: a review's)
        if (now is None or now == began) and boot[:1] == [this_boot]:
            ran = _group_runs(pid)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + LEFTOVER_SECONDS
            while time.monotonic() < deadline and _group_runs(pid):
                time.sleep(0.02)
        self.forget(path)
        return ran


def end_left_running(workdir: Path, keys: Iterable[str]) -> int:
    """The programs noted for ``keys`` (the operations in doubt of a run whose ordo was killed at
    once) that still run, ended as a resume's observe ends them first: how many ran."""
    calls = _Calls(Path(workdir) / "calls")
    return sum(calls.end(key) for key in keys)


def _group_runs(group: int) -> bool:
    """Whether a process of ``group`` runs still (a zombie does not: ended, waiting to be reaped)."""
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            fields = stat_fields(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None and fields[2] == str(group) and fields[0] != "Z":
                return True
        return False
    return True


def _reported(out: bytes, redactor: Redactor) -> dict[str, Any] | None:
    """The error a failing program printed (an object with "error"), if any; a long one masked, then cut.
    Read as UTF-8 with a replacement character for what is not: what it says of itself ("applied": true)
    stands, as it did before its outputs were read strictly (only a successful answer's are recorded)."""
    try:
        reply = answer_json(out.decode("utf-8-sig", "replace"))   # (a byte-order mark first is UTF-8's)
    except ValueError:
        return None
    if not isinstance(reply, dict) or "error" not in reply:
        return None
    error = str(reply["error"])
    if len(error) > ERROR_MOST:
        error = f"{redactor.excerpt(error, ERROR_MOST)}... ({len(error):,} characters)"
    return {**reply, "error": error}


#: The most characters of the code a failing program reports (longer, or not printable: its exit code stands).
CODE_MOST = 100


def _reported_code(value: Any, exit_code: int) -> str:
    """The code a failing program reported ("code": text or a whole number), as each failure event
    keeps it; its exit code where it reported none it could keep (one 300,000 characters long, of
    terminal escapes, was kept in every failure event of a run: a sweep's)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if 0 < len(text) <= CODE_MOST and text.isprintable():
            return text
    return str(exit_code)


def _communicate(proc: subprocess.Popen[bytes], data: bytes, timeout: float) -> tuple[bytes, int, bytes]:
    """``proc.communicate(data, timeout)`` with what is kept bounded: the first ``MAX_ANSWER_BYTES`` + 1
    bytes of stdout, how many it wrote in all, and the last ``STDERR_KEEP`` bytes of stderr. The rest
    is read and dropped, so the program is not blocked on a full pipe and its exit code still counts
    (a program writing gigabytes within its timeout held them all in memory, then was refused)."""
    deadline = time.monotonic() + timeout
    out, err, written, sent = bytearray(), bytearray(), 0, 0
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        if data:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            for key, _ in sel.select(left):
                if key.fileobj is proc.stdin:
                    try:
                        sent += os.write(key.fd, data[sent:sent + select.PIPE_BUF])
                    except BrokenPipeError:   # it stopped reading: what it printed says the rest
                        sent = len(data)
                    if sent >= len(data):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    written += len(chunk)
                    out += chunk[:max(MAX_ANSWER_BYTES + 1 - len(out), 0)]
                else:
                    err += chunk
                    del err[:-STDERR_KEEP]
    proc.wait(max(deadline - time.monotonic(), 0.001))
    return bytes(out), written, bytes(err)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the program and everything it started, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the pid is not reaped yet, so it still names this group
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()
    # a descendant that left the group may keep the pipes open; Popen.__exit__ then closes our ends
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _argv(command: Any) -> list[str]:
    if command is None:
        raise ConfigError("config.command: required (a list of arguments or a command line)")
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"config.command: cannot split {scrub(command)!r}: {exc}") from None
    elif isinstance(command, list) and all(isinstance(a, str | int | float) and not isinstance(a, bool)
                                           for a in command):
        argv = [str(a) for a in command]
    else:
        raise ConfigError("config.command: expected a list of strings or a command line")
    if not argv or not argv[0]:
        raise ConfigError("config.command: empty")
    return argv


def _read(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``config``'s settings, the environment it gives the program, and its command (ConfigError naming
    the field that is wrong): what making the controller and ``check_config`` read alike."""
    config = settings(config, _KEYS)
    return config, _env(config.get("env")), _argv(config.get("command"))


def _program(program: str, root: Path, path: str | None) -> str:
    """The program to run: a path (relative ones against ``root``) or a name on PATH."""
    try:
        candidate = Path(program)
        if not candidate.is_absolute() and ("/" in program or _in_project(program, root)):
            candidate = root / program
        if candidate.is_absolute():
            if not candidate.is_file():
                raise ConfigError(f"config.command: program '{program}' not found ({candidate})")
            if not os.access(candidate, os.X_OK):
                raise ConfigError(f"config.command: program '{program}' is not executable ({candidate})")
            return str(candidate)
        found = shutil.which(program, path=path)
    except OSError as exc:   # (a name longer than the system takes: "this is a bug in ordo (OSError)", a review's)
        raise ConfigError(f"config.command: program '{clipped(program, 80)}' cannot be looked up: "
                          f"{exc.strerror or exc}") from None
    if found is None:
        raise ConfigError(f"config.command: program '{program}' not found on PATH")
    return found


def _in_project(program: str, root: Path) -> bool:
    """Whether ``program`` names a file in the project folder (a name without a path: else one on PATH)."""
    return (root / program).is_file()


def _env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise ConfigError("config.env: expected a mapping of variable name -> value")
    result = {}
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ConfigError(f"config.env: {key!r} is not a variable name")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"config.env.{key}: expected a string or number")
        result[key] = str(value)
    return result
