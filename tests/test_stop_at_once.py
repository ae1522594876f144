"""A run stopped at once where nobody can wait for its calls in flight (a server whose drain ran out,
an `ordo apply` whose terminal hung up): the programs of those calls are ended with it, their
operations left in doubt, and the run ends interrupted. They ran on, orphaned, and a resume, told
"not applied" while they still ran, sent the operation again beside them (the signals sweep)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from executor.journal import Journal
from service.engine import LocalEngine, Submission
from tests.conftest import VFW, ordo_executable, run_ordo
from tests.servicekit import follow, free_port, ready
from tests.test_apply_controllers import command_project

pytestmark = pytest.mark.slow   # (servers and ordo processes: run first, as the other slow files are)

SLOW = """\
import json, os, sys, time
req = json.load(sys.stdin)
if req["action"] == "observe":
    print(json.dumps({"exists": os.path.exists("made"), "state": "present" if os.path.exists("made") else None,
                      "applied": None, "outputs": None}))
    sys.exit(0)
open("pid", "w").write(str(os.getpid()))
time.sleep(60)
open("made", "w").write("1")
print("{}")
"""


def _started(root: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (root / "pid").exists() or not (root / "pid").read_text():
        assert time.monotonic() < deadline, "the program never started"
        time.sleep(0.02)
    return int((root / "pid").read_text())


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:   # (a zombie: ended, not reaped by its parent yet)
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.05)
    return False


def _status(root: Path, run: int) -> str:
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        return jr.run(run).status


def test_a_server_whose_drain_runs_out_ends_the_programs_of_its_calls(tmp_path: Path, caplog) -> None:
    root = command_project(tmp_path / "p", SLOW, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    engine = LocalEngine(root)
    engine.start()
    try:
        run = engine.submit(Submission(), "test").run
        pid = _started(root)
        asked = time.monotonic()
        engine.stop(drain=0.5)   # as the server's signal does: its timer halts the runs, and so does the shutdown
        engine.shutdown(0.5)
        took = time.monotonic() - asked
    finally:
        engine.shutdown(0)
    assert _gone(pid), "the program outlived the server"
    assert took < 10 and _status(root, run) == "interrupted", took
    # and the server's log says so (it said nothing of the runs a stop cut short: an operator's first day)
    said = [r.getMessage() for r in caplog.records if r.name == "ordo.service"]
    assert "stopping: 1 run(s) driven here finish their operations in flight, then end (interrupted, to be " \
           "resumed at the next start, but for an abort asked for); those still going after 0.5s are stopped at " \
           "once" in said, said
    stopped = [line for line in said if " run(s) stopped at once:" in line]   # (once, not by each halt: a review's)
    assert stopped == ["1 run(s) stopped at once: the calls they had in flight were cut short, and what they did is "
                       "observed before anything is sent again when the runs are resumed"], said
    shown = run_ordo("show", str(run), "-C", root)   # a run of the service: the server takes it up itself too
    assert shown.code == 0 and "in doubt (sent, no answer recorded): a/create; `ordo resume 1` observes them " \
        "first, as `ordo serve` does when it takes the run up (at its next start" in shown.out, shown.out


def test_an_apply_whose_terminal_hangs_up_stops_at_once(tmp_path: Path) -> None:
    root = command_project(tmp_path / "p", SLOW, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    proc = subprocess.Popen([ordo_executable(), "apply", "-C", str(root), "--auto-approve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        pid = _started(root)
        proc.send_signal(signal.SIGHUP)
        out = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and "Traceback" not in out, out
    # (it said "Interrupted." alone, and show printed the event's raw JSON: the signals sweep)
    assert "Interrupted. Run 1 stopped at once: `ordo resume 1` carries it on" in out, out
    assert _gone(pid), "the program outlived ordo apply"
    assert _status(root, 1) == "interrupted"
    shown = run_ordo("show", "1", "-C", root)
    assert "stopped  at once: the operations in flight are in doubt, observed on resume" in shown.out, \
        shown.out


def _serve(root: Path, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, int, Path]:
    """``ordo serve`` of ``root`` as a process of its own, ready: the process, its port and its log."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        server = subprocess.Popen([ordo_executable(), "serve", "-C", str(root), "--listen", f"127.0.0.1:{port}",
                                   *args], stdout=out, stderr=subprocess.STDOUT)
    ready(port, lambda: server.poll() is None, log)
    return server, port, log


@pytest.mark.parametrize("signals", [[signal.SIGHUP], [signal.SIGTERM, signal.SIGTERM], [signal.SIGINT, signal.SIGINT]])
def test_a_server_hung_up_or_told_twice_halts_its_runs_at_once(tmp_path: Path, signals: list[int]) -> None:
    """SIGHUP (an ssh session dropped) killed `ordo serve` at once, its call's program left running on its
    own and its run crashed; a second SIGTERM did nothing, and a second Ctrl-C skipped the halt (a review):
    the runs are halted, their programs ended, whatever the drain (60 s here)."""
    root = command_project(tmp_path / "p", SLOW, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    server, port, log = _serve(root, tmp_path, "--drain", "60")
    try:
        run = httpx.post(f"http://127.0.0.1:{port}/v1/runs", json={}, timeout=60).json()["id"]
        pid = _started(root)
        for sent in signals:   # (apart: two sent at once may reach the process as one, which drains)
            server.send_signal(sent)
            time.sleep(0.3)
        assert _gone(pid), ("the program outlived the server's stop", log.read_text()[-2000:])
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert _status(root, run) == "interrupted", log.read_text()[-2000:]


def test_a_followed_server_halts_its_runs_when_the_drain_runs_out(tmp_path: Path) -> None:
    """The drain counted from the app's shutdown, which uvicorn holds back while a stream is open: with a
    run's events followed, the program was ended at twice the drain and more, the stream cut first with a
    traceback in the log (a review). The drain counts from the signal; the stream ends with its run."""
    root = command_project(tmp_path / "p", SLOW, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    server, port, log = _serve(root, tmp_path, "--drain", "1")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            run = api.post("/v1/runs", json={}).json()["id"]
            pid = _started(root)
            streamed: list[list] = []
            reader = threading.Thread(target=lambda: streamed.append(follow(api, run)), daemon=True)
            reader.start()
            time.sleep(0.3)
            server.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            assert _gone(pid), "the program outlived the drain"
            halted = time.monotonic() - asked
            server.wait(30)
            reader.join(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert halted < 4, (halted, log.read_text()[-2000:])
    assert streamed and streamed[0][-1]["kind"] == "run-ended", log.read_text()[-2000:]
    assert "Traceback" not in log.read_text() and _status(root, run) == "interrupted"


def test_a_server_on_temporal_does_not_wait_for_a_drain(tmp_path: Path) -> None:
    """A Temporal run goes on without the server, and its event stream with it: the server waited the
    drain's length and more for such a stream (40 s where it took 5: a review), and the halt's time for
    runs it does not drive."""
    from dataclasses import replace

    from executor.temporal import Temporal
    from service.engine import HALT_SECONDS
    from service.server import Listen, Options, _open_for
    from service.temporal_engine import TemporalEngine

    options = Options(project=tmp_path, listen=Listen.parse("127.0.0.1:8080"), drain=30.0,
                      temporal=Temporal("127.0.0.1:7233"))
    assert _open_for(options) == 5.0 and _open_for(replace(options, temporal=None)) == 30.0 + HALT_SECONDS + 1
    engine = TemporalEngine(VFW, tmp_path / "j.db", temporal=Temporal("127.0.0.1:7233"))
    follower = threading.Thread(target=time.sleep, args=(3,), daemon=True)   # (a run followed, on Temporal)
    follower.start()
    engine._threads.add(follower)
    asked = time.monotonic()
    engine.shutdown(30.0)
    assert time.monotonic() - asked < 1.0


LEFT_RUNNING = """\
import json, os, sys, time
req = json.load(sys.stdin)
if req["action"] == "observe":
    made = os.path.exists("made")
    print(json.dumps({"exists": made, "state": "present" if made else None, "applied": None, "outputs": None}))
    sys.exit(0)
open("pid", "w").write(str(os.getpid()))
if os.path.exists("slow"):
    time.sleep(60)
with open("applied.log", "a") as log:
    log.write(req["key"] + "\\n")
open("made", "w").write("1")
print("{}")
"""


def _left_by_an_ordo_killed_at_once(tmp_path: Path) -> tuple[Path, int]:
    """A project whose `ordo apply` was killed with -9 mid-call: the program it ran (its pid) runs on."""
    root = command_project(tmp_path / "p", LEFT_RUNNING, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    (root / "slow").write_text("")
    proc = subprocess.Popen([ordo_executable(), "apply", "-C", str(root), "--auto-approve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        left = _started(root)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return root, left


def test_a_program_left_running_by_an_ordo_killed_at_once_is_ended_before_its_operation_is_observed(
        tmp_path: Path) -> None:
    """`ordo apply` killed with -9 (or by the out-of-memory killer) mid-call left the command's program
    running; `ordo resume` observed the operation "not applied" and sent it again beside it: the effect
    landed twice, under one idempotency key (the signals sweep). The resume ends it first."""
    root, left = _left_by_an_ordo_killed_at_once(tmp_path)
    assert not _gone(left, timeout=0.5)   # (nothing ended it: it runs on, orphaned)
    (root / "slow").unlink()
    resumed = run_ordo("resume", "1", "-C", root)
    assert resumed.code == 0, resumed.text
    assert _gone(left, timeout=1)
    assert len((root / "applied.log").read_text().splitlines()) == 1   # (the resend's alone)


def test_an_abort_of_a_run_whose_ordo_was_killed_at_once_ends_the_program_it_left_running(tmp_path: Path) -> None:
    """`ordo abort` of such a run said it was stopped while the program ran on and made its effect
    after the abort (the fourth review of 7 December): the abort ends it, as a resume does."""
    root, left = _left_by_an_ordo_killed_at_once(tmp_path)
    assert not _gone(left, timeout=0.5)
    (root / "slow").unlink()   # (left running, it would make its effect at once)
    aborted = run_ordo("abort", "1", "-C", root)
    assert aborted.code == 0, aborted.text
    assert "Run 1 aborted (it was crashed); nothing was undone. The program it left running (its ordo was killed " \
           "at once) was ended; the next run observes what it did." in aborted.out, aborted.text
    assert _gone(left, timeout=1)
    assert not (root / "applied.log").exists()
    assert not list((root / ".ordo" / "calls").iterdir())
    again = run_ordo("abort", "1", "-C", root)   # (ended: nothing more to abort)
    assert again.code != 0


def test_a_stream_of_a_run_another_process_drives_ends_when_the_server_stops(tmp_path: Path) -> None:
    """A server following a run another process drives (an `ordo apply` on the same journal) held its
    exit the drain's length and more for that stream, then cut it with a traceback (a review): the stream
    ends at the stop, and the client carries on elsewhere with Last-Event-ID."""
    root = command_project(tmp_path / "p", SLOW, "{ attempts: 1 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    apply = subprocess.Popen([ordo_executable(), "apply", "-C", str(root), "--auto-approve"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        _started(root)
        server, port, log = _serve(root, tmp_path, "--drain", "30")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            streamed: list[list] = []
            reader = threading.Thread(target=lambda: streamed.append(follow(api, 1)), daemon=True)
            reader.start()
            time.sleep(0.5)
            asked = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(60)
            took = time.monotonic() - asked
            reader.join(10)
    finally:
        for proc in (server, apply):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert took < 5 and streamed, (took, log.read_text()[-2000:])
    assert "Traceback" not in log.read_text()


DAEMON = """\
import json, os, subprocess, sys, time
req = json.load(sys.stdin)
if req["action"] == "observe":
    alive = os.path.exists("daemon.pid") and os.path.exists(f"/proc/{open('daemon.pid').read()}")
    print(json.dumps({"exists": alive, "state": "present" if alive else None, "applied": True if alive else None,
                      "outputs": {} if alive else None}))
    sys.exit(0)
daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
open("daemon.pid", "w").write(str(daemon.pid))
with open("creates.log", "a") as log:
    log.write(req["key"] + "\\n")
if not os.path.exists("hung"):
    open("hung", "w").write("1")
    time.sleep(60)   # (the first call hangs once it made its effect: in doubt after its timeout)
print("{}")
"""


def test_what_an_operation_started_and_detached_is_not_taken_for_a_program_left_running(tmp_path: Path) -> None:
    """An operation whose effect is a process it starts detached (a local service): its call hung, was
    killed at its timeout and was in doubt; the observe before the retry killed the service, found it
    absent, and the retry made it again (a review of the first way leftovers were found, by a variable in
    their environment, which the service inherited). Only the noted program and its group are ended."""
    root = command_project(tmp_path / "p", DAEMON, "{ attempts: 3, initial_interval: 0 }", "{ lifecycle: simple, "
                           "operations: { create: { controller: c }, delete: { controller: c } } }",
                           "  - { name: a, type: thing }\n")
    catalog = root / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("config: {", "config: { timeout: 2,"))
    daemon = None
    try:
        run = run_ordo("apply", "-C", root, "--auto-approve")
        daemon = int((root / "daemon.pid").read_text())
        assert run.code == 0, run.text
        assert len((root / "creates.log").read_text().splitlines()) == 1   # (not made again)
        assert not _gone(daemon, timeout=0.5), "the operation's effect was killed"
    finally:
        if daemon is not None:
            with contextlib.suppress(OSError):
                os.kill(daemon, signal.SIGKILL)


@pytest.mark.parametrize("two_fields", [False, True], ids=["note", "note-before-boot-ids"])
def test_a_group_whose_program_is_gone_is_ended_and_a_note_is_its_own_programs(tmp_path: Path,
                                                                               two_fields: bool) -> None:
    """A wrapper killed (SIGPIPE once ordo was gone) whose child did the work went on: only a note whose
    program still ran had its group ended, and the resend ran beside the child; and a call that returned
    removed the note another attempt of its operation had written since (a fourth review)."""
    from domain.procs import booted_at
    from executor.controllers.command import _Calls

    calls = _Calls(tmp_path / "calls")
    wrapper = subprocess.Popen(["sh", "-c", "sleep 60 & echo $! > child; sleep 0.5; exit 0"], cwd=tmp_path,
                               start_new_session=True)
    note = calls.note("key-1", wrapper.pid)
    assert note is not None
    wrapper.wait(10)   # (gone: its child, in its group, goes on)
    deadline = time.monotonic() + 10
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int((tmp_path / "child").read_text())
    try:
        assert not _gone(child, timeout=0.2)
        # a note of another boot (written before a reboot, or by another host sharing the folder): the group of
        # that id is another's, left as it is (an abort killed it: a review of 7 December)
        written = note.read_text()
        note.write_text(" ".join(written.split()[:2] + ["another-boot"]) + "\n")
        assert calls.end("key-1") is False and not _gone(child, timeout=0.2) and not note.exists()
        # one of an ordo before boot ids (two fields) written before this boot began: another boot's too
        note.write_text(" ".join(written.split()[:2]) + "\n")
        os.utime(note, (booted_at() - 60, booted_at() - 60))
        assert calls.end("key-1") is False and not _gone(child, timeout=0.2) and not note.exists()
        # and one written since this boot began is this boot's, as before
        note.write_text(" ".join(written.split()[:2]) + "\n") if two_fields else note.write_text(written)
        assert calls.end("key-1") is True
        assert _gone(child, timeout=1) and not note.exists()
    finally:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    other = calls.note("key-2", os.getpid())
    calls.forget(other, os.getpid() + 1)   # (a call of another attempt returning)
    assert other.exists()
    calls.forget(other, os.getpid())
    assert not other.exists()

