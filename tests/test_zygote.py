"""The zygote of the tests (tests/zygote.py): its children are ``ordo`` processes as the installed
script's are, and a child past its time is killed with what it started."""

from __future__ import annotations

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
