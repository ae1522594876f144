"""The command controller against a fake controller script (tests/fixtures/fake_controller.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from executor.controllers import (
    ConfigError,
    ControllerContext,
    OperationRequest,
    PermanentError,
    TransientError,
    load_adapter,
)
from executor.controllers.command import CommandController

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAKE = FIXTURES / "fake_controller.py"


def request(resource: str, **changes: Any) -> OperationRequest:
    fields: dict[str, Any] = dict(run="run-1", key=f"k-{resource}", resource=resource, type="network",
                                  operation="assign", from_state="planned", to_state="assigned", target="r1",
                                  inputs={"cidr": "10.0.0.0/24", "tags": ["a", "b"], "size": 3},
                                  outputs=("id",))
    fields.update(changes)
    return OperationRequest(**fields)


def make(tmp_path: Path, **config: Any) -> CommandController:
    config.setdefault("command", [sys.executable, str(FAKE)])
    return CommandController("cds", config, ControllerContext(workdir=tmp_path, root=FIXTURES))


@pytest.fixture
def ctl(tmp_path: Path) -> CommandController:
    return make(tmp_path, env={"FAKE_VAR": "hello"})


def test_registry_finds_the_adapter() -> None:
    assert load_adapter("command") is CommandController


def test_outputs(ctl: CommandController) -> None:
    assert ctl.execute(request("ok")) == {"id": "x-ok"}


def test_request_arrives_intact_with_env_and_cwd(ctl: CommandController) -> None:
    req = request("echo", attempt=2)
    out = ctl.execute(req)
    assert out["received"] == {"action": "execute", **req.as_dict()}
    assert out["env"] == "hello"
    assert Path(out["cwd"]) == FIXTURES


def test_empty_stdout_means_no_outputs(ctl: CommandController) -> None:
    assert ctl.execute(request("quiet")) == {}


def test_exit_75_is_transient_with_unknown_effect(ctl: CommandController) -> None:
    with pytest.raises(TransientError) as info:
        ctl.execute(request("temp"))
    assert info.value.applied is None and info.value.code == "75"
    assert "exit code 75" in info.value.message and "try later" in info.value.message


def test_other_exit_is_permanent_and_quotes_the_end_of_stderr(ctl: CommandController) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("perm"))
    err = info.value
    assert err.applied is False and err.scope == "resource" and err.code == "1"
    assert "controller 'cds'" in err.message and "fake_controller.py" in err.message
    assert "exit code 1" in err.message and err.message.endswith(" END")
    assert "boom" not in err.message  # only the last 500 characters of stderr


def test_reported_error_decides_scope(ctl: CommandController) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("refuse"))
    assert info.value.scope == "target" and info.value.applied is False and "quota" in info.value.message


def test_reported_error_can_be_transient(ctl: CommandController) -> None:
    with pytest.raises(TransientError) as info:
        ctl.execute(request("busy"))
    assert info.value.applied is None and info.value.code == "LOCKED" and "locked" in info.value.message


def test_killed_by_signal_has_unknown_effect(ctl: CommandController) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("crash"))
    assert info.value.applied is None and "SIGKILL" in info.value.message


@pytest.mark.parametrize("resource, words", [
    ("garbage", ["invalid JSON", "this is not JSON"]),
    ("list", ["expected a JSON object", "list"]),
    ("badoutputs", ["'outputs' must be an object"]),
])
def test_unreadable_answers_are_permanent(ctl: CommandController, resource: str, words: list[str]) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request(resource))
    assert "controller 'cds'" in info.value.message
    for word in words:
        assert word in info.value.message


def test_timeout_kills_the_program(tmp_path: Path) -> None:
    ctl = make(tmp_path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        ctl.execute(request("slow"))
    assert time.monotonic() - started < 3
    assert info.value.applied is None and "no answer within 0.5 s" in info.value.message


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A grandchild holding stdout would keep the call hanging if only the child were killed."""
    ctl = make(tmp_path, timeout=10)
    started = time.monotonic()
    with pytest.raises(TransientError):
        ctl.execute(request("tree", timeout=0.5))  # the request's smaller timeout wins
    assert time.monotonic() - started < 4


def test_observe(ctl: CommandController) -> None:
    seen = ctl.observe("net1", "network")
    assert (seen.exists, seen.state, seen.target, seen.attributes, seen.applied) == (True, "active", "r1",
                                                                                     {"size": 2}, None)
    assert ctl.observe("gone", "network").exists is False
    applied = ctl.observe("net1", "network", request("net1", key="k-applied"))
    assert applied.applied is True and applied.outputs == {"id": "x-net1"}
    assert ctl.observe("net1", "network", request("net1")).applied is False


def test_observe_rejects_a_malformed_answer(ctl: CommandController) -> None:
    with pytest.raises(PermanentError, match="'exists'"):
        ctl.observe("bad", "network")


def test_command_string_and_relative_program(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "ctl"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport runpy, sys\nsys.argv = [{str(FAKE)!r}]\n"
                      f"runpy.run_path({str(FAKE)!r}, run_name='__main__')\n")
    script.chmod(0o755)
    ctl = CommandController("cds", {"command": "bin/ctl --flag"}, ControllerContext(workdir=tmp_path, root=tmp_path))
    assert ctl.argv == [str(script), "--flag"]
    assert ctl.execute(request("ok")) == {"id": "x-ok"}


def test_argument_relative_to_root(tmp_path: Path) -> None:
    ctl = CommandController("cds", {"command": [sys.executable, "fake_controller.py"]},
                            ControllerContext(workdir=tmp_path, root=FIXTURES))
    assert ctl.execute(request("ok")) == {"id": "x-ok"}


def test_program_vanished_after_construction(tmp_path: Path) -> None:
    script = tmp_path / "ctl"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    ctl = CommandController("cds", {"command": str(script)}, ControllerContext(workdir=tmp_path, root=tmp_path))
    script.unlink()
    with pytest.raises(PermanentError, match="cannot run") as info:
        ctl.execute(request("ok"))
    assert info.value.applied is False


@pytest.mark.parametrize("config, message", [
    ({}, "config.command: required"),
    ({"command": []}, "config.command: empty"),
    ({"command": {"a": 1}}, "config.command: expected a list"),
    ({"command": "'unclosed"}, "config.command: cannot split"),
    ({"command": "no-such-program-ordo-test"}, "program 'no-such-program-ordo-test' not found on PATH"),
    ({"command": "./missing.py"}, "program './missing.py' not found"),
    ({"command": "true", "timeout": 0}, "config.timeout: expected a positive number"),
    # (past the longest one wait of the system's: apply ended in "a bug in ordo", OverflowError; a review's)
    ({"command": "true", "timeout": 1e7}, "config.timeout: expected a positive number of seconds, at most 2,000,000"),
    ({"command": "true", "timeout": float("inf")}, "config.timeout: expected a positive number of seconds, at most"),
    ({"command": "true", "timeout": float("nan")}, "config.timeout: expected a positive number of seconds, at most"),
    ({"command": "true", "env": ["A"]}, "config.env: expected a mapping"),
    ({"command": "true", "env": {"A": {"b": 1}}}, "config.env.A: expected a string or number"),
    ({"command": "true", "comand": "x"}, "config.comand: unknown field"),
])
def test_config_errors(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        CommandController("cds", config, ControllerContext(workdir=tmp_path, root=tmp_path))
    assert message in str(info.value)


def test_not_executable_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ctl.sh").write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="not executable"):
        CommandController("cds", {"command": "ctl.sh"}, ControllerContext(workdir=tmp_path, root=tmp_path))


def test_env_path_is_used_to_find_the_program(tmp_path: Path) -> None:
    ctl = CommandController("cds", {"command": "python3", "env": {"PATH": os.path.dirname(sys.executable)}},
                            ControllerContext(workdir=tmp_path, root=tmp_path))
    assert Path(ctl.argv[0]).parent == Path(sys.executable).parent


def test_a_program_printing_gigabytes_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """Its stdout past an answer's limit is read and dropped, not kept: 256 MB printed, the call fails in
    words and the process that made it grew by far less (it held all of it, twice: bytes and text)."""
    program = tmp_path / "loud.py"
    program.write_text("import sys\nchunk = b' ' * (1 << 20)\nfor _ in range(256):\n"
                       "    sys.stdout.buffer.write(chunk)\nsys.stderr.write('e' * 300_000 + 'the end')\n")
    code = f"""
import resource, sys
from pathlib import Path
sys.path[:0] = {[str(Path(__file__).resolve().parents[1])]!r}
from tests.test_controller_command import make, request
from executor.controllers import PermanentError
ctl = make(Path({str(tmp_path)!r}), command=[sys.executable, {str(program)!r}])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    ctl.execute(request("ok"))
except PermanentError as exc:
    print(exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    said, grew = done.stdout.strip().splitlines()[-2:]
    assert "stdout: 268,435,456 bytes, more than an answer may have (1,048,576)" in said, done.stdout + done.stderr
    assert int(grew) < 64, f"grew by {grew} MB"


LEAKS = {   # a program quoting a secret where its message is cut: the end of stderr, the start of the rest
    "stderr": "import os, sys; sys.stderr.write(os.environ['CTL_TOKEN'] + 'z' * 492); sys.exit(1)",
    "error": "import json, os, sys; print(json.dumps({'error': 'E' * 1992 + os.environ['CTL_TOKEN']})); sys.exit(2)",
    "stdout": "import os; print('E' * 190 + os.environ['CTL_TOKEN'])",
}


@pytest.mark.parametrize("where", sorted(LEAKS))
def test_a_secret_cut_in_two_by_a_message_is_not_shown_in_part(tmp_path: Path, where: str) -> None:
    # (stderr's last 500 characters, the first 2,000 of a reported error and 200 of unreadable stdout were
    # cut, then masked: the part of the secret left in them was shown and journaled)
    ctl = make(tmp_path, command=[sys.executable, "-c", LEAKS[where]], env={"CTL_TOKEN": "DECL2S3CRETMARK42"})
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("n1"))
    message = info.value.message
    assert ("z" * 400 if where == "stderr" else "E" * 180) in message, message
    for part in ("DECL", "MARK42", "S3C"):
        assert part not in message, (part, message[-300:])
