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


def test_a_reported_applied_that_is_no_answer_is_not_known(ctl: CommandController) -> None:
    """"applied": "maybe" was read as "not applied" (sent again without a look, a sweep's): not known."""
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("unsure"))
    assert info.value.applied is None and "half done?" in info.value.message


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


def test_an_answer_that_is_not_utf8_is_refused_not_altered(tmp_path: Path) -> None:
    # (it was decoded with replacement characters, and the altered outputs recorded as the call's)
    ctl = make(tmp_path, command=[sys.executable, "-c",
                                  "import sys; sys.stdout.buffer.write(b'{\"outputs\": {\"a\": \"\\xff\\xfe\"}}')"])
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("n1"))
    assert "stdout: invalid JSON" in info.value.message and "utf-8" in info.value.message, info.value.message
    assert info.value.applied is True   # it exited 0: carried out, its answer unreadable
    marked = "import sys; sys.stdout.buffer.write(b'\\xef\\xbb\\xbf{\"outputs\": {\"a\": 1}}')"
    with_mark = make(tmp_path, command=[sys.executable, "-c", marked])
    assert with_mark.execute(request("n1")) == {"a": 1}   # a byte-order mark first is UTF-8


@pytest.mark.parametrize(("code", "kept"), [
    ('"E42"', "E42"), ("7", "7"), ('"\\u001b[31mC" * 50000', "2"), ('"x" * 101', "2"), ("True", "2"),
    ("[1]", "2"), ('""', "2"),
])
def test_the_code_a_failing_program_reports_is_kept_only_when_short_and_printable(
        tmp_path: Path, code: str, kept: str) -> None:
    script = f"import json, sys; print(json.dumps({{'error': 'no', 'code': {code}}})); sys.exit(2)"
    with pytest.raises(PermanentError) as info:
        make(tmp_path, command=[sys.executable, "-c", script]).execute(request("n1"))
    assert info.value.code == kept


SLEEPER = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open("pids", "w").write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status not in ("Z", "X")


def test_closing_ends_the_programs_of_calls_still_running(tmp_path: Path) -> None:
    """A run stopped at once (a second Ctrl-C) closes its controllers: the programs of the calls in
    flight, and what they started, went on running on their own, no timeout bounding them, beside what
    a resume sent again (a fault sweep's)."""
    import threading

    (tmp_path / "sleeper.py").write_text(SLEEPER)
    ctl = CommandController("cds", {"command": [sys.executable, str(tmp_path / "sleeper.py")]},
                            ControllerContext(workdir=tmp_path, root=tmp_path))
    errors: list[BaseException] = []
    call = threading.Thread(target=lambda: errors.append(pytest.raises(PermanentError, ctl.execute,
                                                                       request("n1")).value))
    call.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "pids").exists() or len((tmp_path / "pids").read_text().split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    program, child = map(int, (tmp_path / "pids").read_text().split())
    ctl.close()
    call.join(10)
    assert not call.is_alive() and errors and errors[0].applied is None, errors
    assert "killed by signal SIGKILL" in errors[0].message
    deadline = time.monotonic() + 5
    while _alive(child) or _alive(program):
        assert time.monotonic() < deadline, "a program outlived its controller"
        time.sleep(0.05)
    with pytest.raises(TransientError, match="ended as it started") as late:   # a call after: nothing left running
        ctl.execute(request("n2"))
    assert late.value.applied is None


def test_a_failing_programs_report_that_is_not_utf8_still_says_whether_it_applied(tmp_path: Path) -> None:
    # (read strictly too, its "applied": true was lost and the call taken for not applied: a review's)
    script = ("import sys; sys.stdout.buffer.write(b'{\"error\": \"disk full on /var/caf\\xe9\", \"applied\": true}');"
              " sys.exit(1)")
    with pytest.raises(PermanentError) as info:
        make(tmp_path, command=[sys.executable, "-c", script]).execute(request("n1"))
    assert info.value.applied is True and "disk full on /var/caf\ufffd" in info.value.message, info.value.message
    marked = ("import sys; sys.stdout.buffer.write(b'\\xef\\xbb\\xbf{\"error\": \"quota\", \"applied\": true}');"
              " sys.exit(1)")
    with pytest.raises(PermanentError) as info:
        make(tmp_path, command=[sys.executable, "-c", marked]).execute(request("n1"))
    assert info.value.applied is True and info.value.message.endswith(": quota"), info.value.message
