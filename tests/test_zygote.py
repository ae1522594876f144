"""The zygote of the tests (tests/zygote.py): its children are ``ordo`` processes as the installed
script's are, and a child past its time is killed with what it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import VFW, ordo_env, ordo_executable, run_ordo_forked, run_ordo_process
from tests.servicekit import free_port
from tests.zygote import Zygote


def test_a_forked_command_answers_as_the_installed_script(tmp_path: Path):
    for args in (["check", "-C", str(VFW)], ["plan", "-C", str(VFW), "no-such-request.yaml"]):
        forked, script = run_ordo_forked(*args, cwd=tmp_path), run_ordo_process(*args, cwd=tmp_path)
        assert (forked.code, forked.out, forked.err) == (script.code, script.out, script.err), args


def test_the_working_folder_is_not_on_the_import_path(tmp_path: Path):
    """As for the installed script: a module in the working folder does not shadow one that ordo
    imports after the zygote's own imports (`ordo serve` imports fastapi before it reads its tokens)."""
    (tmp_path / "fastapi.py").write_text("raise SystemExit(99)\n")
    args = ("serve", "-C", str(VFW), "--tokens", str(tmp_path / "none"))
    forked, script = run_ordo_forked(*args, cwd=tmp_path), run_ordo_process(*args, cwd=tmp_path)
    assert forked.code == script.code == 1 and "cannot read the tokens file" in forked.err, forked


def test_a_command_past_its_time_is_killed_with_its_process_group(zygote: Zygote, tmp_path: Path):
    port = free_port()
    started = time.monotonic()
    code, _, seconds = zygote.run(ordo_executable(), ["serve", "-C", str(VFW), "--listen", f"127.0.0.1:{port}",
                                                      "--journal", str(tmp_path / "j.db")],
                                  tmp_path, ordo_env(), tmp_path / "out", timeout=2)
    assert code is None and 2 <= seconds < 30 and time.monotonic() - started < 30
    log = (tmp_path / "out").read_text()
    assert "Traceback" not in log
    # the zygote goes on serving
    code, _, _ = zygote.run(ordo_executable(), ["--version"], tmp_path, ordo_env(), tmp_path / "out2", timeout=30)
    assert code == 0 and "ordo" in (tmp_path / "out2").read_text()


def test_a_spawned_command_is_waited_for_signalled_and_killed_when_the_zygote_ends(tmp_path: Path):
    """What the Temporal tests use of a worker's handle; and no child outlives its zygote."""
    zygote = Zygote()
    try:
        args = ["serve", "-C", str(VFW), "--listen", f"127.0.0.1:{free_port()}", "--journal", str(tmp_path / "j.db")]
        first = zygote.spawn(ordo_executable(), args, tmp_path, ordo_env(), tmp_path / "first.log")
        assert first.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            first.wait(0.2)
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL and first.poll() == -signal.SIGKILL
        args[4] = f"127.0.0.1:{free_port()}"
        second = zygote.spawn(ordo_executable(), args, tmp_path, ordo_env(), tmp_path / "second.log")
        assert second.poll() is None
    finally:
        zygote.close()
    with pytest.raises(ProcessLookupError):   # killed and reaped by the zygote as it ended
        os.kill(second.pid, 0)


#: Entry points that end in ways the console script could; each is run forked and in a fresh interpreter.
ENDINGS = '''
import concurrent.futures, os, sys, threading, time

def pool_then_exit():
    """An idle thread pool still alive at sys.exit: the interpreter stops it; so must the harness."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(print, "worked").result()
    sys.exit(3)

def unflushable():
    sys.stdout = open("/dev/full", "w")
    print("x" * 10)
    sys.exit(0)

def uncaught():
    raise LookupError("nobody caught this")

def interrupted():
    raise KeyboardInterrupt

def message():
    sys.exit("a message, status 1")

def thread_then_exit():
    """A non-daemon thread still running at sys.exit: waited for, then the exit handlers."""
    import atexit
    atexit.register(print, "exit handler ran")
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
    sys.exit(4)

def slow_thread_then_exit():
    threading.Thread(target=time.sleep, args=(30,)).start()
    print("waiting", flush=True)
    sys.exit(0)
'''


@pytest.mark.parametrize("name", ["pool_then_exit", "unflushable", "uncaught", "interrupted", "message",
                                  "thread_then_exit"])
def test_a_child_ends_as_a_fresh_interpreter_would(zygote: Zygote, tmp_path: Path, name: str):
    (tmp_path / "endings.py").write_text(ENDINGS)
    fresh = subprocess.run([os.sys.executable, "-c", f"import endings; endings.{name}()"], cwd=tmp_path,
                           capture_output=True, text=True, env=ordo_env({"PYTHONPATH": str(tmp_path)}),
                           timeout=30)
    child = zygote.spawn("ordo", [], tmp_path, ordo_env(), tmp_path / "out", tmp_path / "err",
                         entry=(str(tmp_path), "endings", name))
    code = child.wait(30)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert code == fresh.returncode, (name, err)
    assert out == fresh.stdout, name
    assert err.splitlines()[-1:] == fresh.stderr.splitlines()[-1:], (name, err, fresh.stderr)


def test_ctrl_c_while_a_child_waits_for_its_threads_ends_it_alone(zygote: Zygote, tmp_path: Path):
    """The harness's own code raising in a child (Ctrl-C as it waits for a thread) ends that child,
    never the zygote's loop in it, which would kill the child's siblings."""
    (tmp_path / "endings.py").write_text(ENDINGS)
    sibling = zygote.spawn("ordo", [], tmp_path, ordo_env(), tmp_path / "sibling",
                           entry=(str(tmp_path), "endings", "slow_thread_then_exit"))
    child = zygote.spawn("ordo", [], tmp_path, ordo_env(), tmp_path / "out",
                         entry=(str(tmp_path), "endings", "slow_thread_then_exit"))
    deadline = time.monotonic() + 20
    out = tmp_path / "out"
    while not (out.exists() and "waiting" in out.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)   # in the wait for its thread
    # On a loaded machine the child may still be on its way to that wait: one that took Ctrl-C in its
    # own code waits for its thread, and the next Ctrl-C reaches it there.
    for _ in range(10):
        child.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(2)
            break
    assert child.poll() == -signal.SIGINT
    assert sibling.poll() is None
    sibling.kill()
    assert sibling.wait(20) == -signal.SIGKILL


def test_an_environment_the_interpreter_reads_at_start_is_refused(zygote: Zygote, tmp_path: Path):
    for name, value in (("PYTHONHASHSEED", "5"), ("PYTHONIOENCODING", "latin-1"), ("LC_ALL", "C")):
        with pytest.raises(ValueError, match=name):
            zygote.spawn(ordo_executable(), ["--version"], tmp_path, ordo_env({name: value}), tmp_path / "out")


def test_a_dead_zygote_says_why_and_is_replaced(monkeypatch, tmp_path: Path):
    from tests import zygote as harness

    dead = Zygote()
    monkeypatch.setattr(harness, "_shared", dead)
    dead._proc.kill()
    dead._proc.wait()
    with pytest.raises(RuntimeError, match="the zygote ended"):
        dead.spawn(ordo_executable(), ["--version"], tmp_path, ordo_env(), tmp_path / "out")
    with pytest.warns(UserWarning, match="starting another"):
        fresh = harness.shared()
    try:
        assert fresh is not dead and fresh.alive()
        code, _, _ = fresh.run(ordo_executable(), ["--version"], tmp_path, ordo_env(), tmp_path / "out", 30)
        assert code == 0
    finally:
        fresh.close()
