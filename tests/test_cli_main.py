"""The CLI's entry point: a bug is one line and a file, never a traceback;
-C and --journal are taken after every command that uses them."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import pytest

import planner.core
from domain.formats import ObservedResource
from executor.journal import Event, Journal
from ordo.cli import cli
from tests.conftest import VFW, run_ordo, run_ordo_process

# --- an unexpected exception ------------------------------------------------------------

BUG_LINE = re.compile(r"error: this is a bug in ordo \((\w+)\); the details are in (\S+) \(please report it\)")


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom: planning went wrong")


def test_an_unexpected_exception_is_one_line_and_a_file(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(planner.core, "make_plan", _boom)
    run = run_ordo("plan", "-C", VFW, expect_bug=True)
    assert run.code == 1, run.text
    assert "Traceback" not in run.text and run.out == ""
    [line] = run.err.splitlines()
    found = BUG_LINE.fullmatch(line)
    assert found, line
    assert found[1] == "RuntimeError"
    report = Path(found[2])
    assert report.parent == tmp_path and report.name.startswith("ordo-bug-")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    details = report.read_text()
    assert f"command: ordo plan -C {VFW}\n" in details
    assert "Traceback (most recent call last):" in details
    assert "in _boom" in details and details.rstrip().endswith("RuntimeError: boom: planning went wrong")


def test_a_bug_report_holds_no_secret(monkeypatch, tmp_path):
    """The report is meant to be shared: a secret from the environment, or in the
    arguments, is masked there as in the journal."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("ORDO_TEST_API_TOKEN", "s3cr3t-from-env")

    def leak(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the controller said: bad token s3cr3t-from-env")

    monkeypatch.setattr(planner.core, "make_plan", leak)
    run = run_ordo("plan", "-C", VFW, expect_bug=True)
    details = Path(BUG_LINE.fullmatch(run.err.strip())[2]).read_text()
    assert "s3cr3t-from-env" not in details and "bad token ***" in details


def test_a_bug_whose_details_cannot_be_written_is_still_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr(planner.core, "make_plan", _boom)
    run = run_ordo("plan", "-C", VFW, expect_bug=True)
    assert run.code == 1, run.text
    assert run.err.splitlines() == [
        "error: this is a bug in ordo (RuntimeError); its details could not be written (No such file or directory)"]


def test_errors_in_inputs_are_not_reported_as_bugs(tmp_path):
    run = run_ordo("plan", "-C", tmp_path / "nowhere")
    assert run.code == 1
    assert "bug" not in run.err and "Traceback" not in run.text


# --- -C and --journal after every command -------------------------------------------------

#: Commands that read no project, or no journal, and why.
NO_PROJECT = {("schema",): "prints the JSON Schemas of the file kinds",
              ("init",): "writes a new project into the folder it names (DIR)"}
NO_JOURNAL = {("check",): "validates the files alone", ("test",): "policy tests plan from their own models",
              **NO_PROJECT}


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command and subcommand, by the words that invoke it."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*path, name)))
    return found


def test_every_command_takes_project_and_journal_after_its_name():
    listed = commands(cli)
    assert ("state", "rm") in {path for path, _ in listed}
    for path, command in listed:
        opts = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
        if path not in NO_PROJECT:
            assert {"-C", "--project"} <= opts, f"ordo {' '.join(path)} takes no -C/--project after its name"
        if path not in NO_JOURNAL:
            assert "--journal" in opts, f"ordo {' '.join(path)} takes no --journal after its name"


def journal_with(path: Path, *names: str) -> Path:
    """A journal with one complete run that recorded these resources."""
    with Journal(path) as jr:
        run = jr.start_run("/p", "r", {})
        jr.append(run, [Event("result", op=f"{name}/create") for name in names],
                  state={name: ObservedResource(name=name, type="network", state="active") for name in names})
        jr.append(run, [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"})
    return path


def recorded(path: Path) -> list[str]:
    with Journal(path, create=False) as jr:
        return sorted(jr.state())


@pytest.mark.parametrize("where", ["after", "before"])
def test_state_rm_takes_project_and_journal_before_or_after_rm(vfw_copy, tmp_path, where):
    default = journal_with(vfw_copy / ".ordo" / "journal.db", "a", "b")
    other = journal_with(tmp_path / "other.db", "a", "b")

    def rm(name: str, *options: str | Path) -> None:
        args = ["state", "rm", name, *options] if where == "after" else ["state", *options, "rm", name]
        run = run_ordo(*args, cwd=tmp_path)
        assert run.code == 0, run.text
        assert f"Forgot 1 record(s): {name}." in run.out

    rm("a", "-C", vfw_copy)
    assert recorded(default) == ["b"] and recorded(other) == ["a", "b"]
    rm("b", "--journal", other)
    assert recorded(default) == ["b"] and recorded(other) == ["a"]


def test_state_rm_options_after_rm_win_over_the_groups(vfw_copy, tmp_path):
    default = journal_with(vfw_copy / ".ordo" / "journal.db", "a")
    first = journal_with(tmp_path / "first.db", "a")
    second = journal_with(tmp_path / "second.db", "a")
    run = run_ordo("state", "-C", tmp_path / "nowhere", "--journal", first, "rm", "a", "--journal", second)
    assert run.code == 0, run.text
    assert recorded(first) == ["a"] and recorded(second) == []
    run = run_ordo("state", "-C", tmp_path / "nowhere", "rm", "a", "-C", vfw_copy)
    assert run.code == 0, run.text
    assert recorded(default) == [] and recorded(first) == ["a"]


# --- the console script itself ------------------------------------------------------------


def test_the_console_script_exits_with_mains_codes(vfw_copy):
    """What run_ordo checks in-process holds for the installed script too."""
    changes = run_ordo_process("plan", "-C", vfw_copy, "--detailed-exitcode")
    assert changes.code == 2, changes.text
    assert "Plan: 10 to create" in changes.out
    broken = run_ordo_process("plan", "-C", vfw_copy / "nowhere")
    assert broken.code == 1 and broken.out == "" and "error:" in broken.err and "Traceback" not in broken.err


END = """
import atexit, sys, threading, time
from pathlib import Path
import ordo.cli

out = Path(sys.argv[1])

class Freed:
    def __del__(self):   # runs only in the interpreter's teardown
        (out / "freed").write_text("yes")

kept = Freed()
atexit.register(lambda: (out / "handler").write_text("ran"))
print("buffered", end="")   # not flushed yet: a pipe is block-buffered
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
if sys.argv[2] == "full":
    sys.stdout = open("/dev/full", "w")
    print("more")
ordo.cli._end({"int": 3, "none": None, "text": "a message", "thread": 5, "full": 0}[sys.argv[2]])
"""


@pytest.mark.parametrize(("code", "status"), [("int", 3), ("none", 0), ("text", 1), ("thread", 5), ("full", 120)])
def test_the_console_script_ends_without_the_interpreters_teardown(tmp_path, code, status):
    """_end runs the exit handlers, flushes the streams and ends the process at
    once, with the status sys.exit would give: the objects still alive are not
    freed one by one. With another thread still running it ends the usual way."""
    done = subprocess.run([sys.executable, "-c", END, str(tmp_path), code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == status, done.stderr
    assert (tmp_path / "handler").read_text() == "ran"
    if code != "full":
        assert done.stdout == "buffered"
    assert done.stderr == ("a message\n" if code == "text" else "")
    waited = code == "thread"
    assert (tmp_path / "thread").exists() == waited and (tmp_path / "freed").exists() == waited


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_said_so_not_a_bug_in_ordo() -> None:
    """`ordo plan --format json > /dev/full` was "this is a bug in ordo (OSError)" (the CLI sweep of
    6 December): a full disk is no bug; status 120, as Python's own exit gives."""
    import subprocess

    from tests.conftest import VFW, ordo_env, ordo_executable

    with open("/dev/full", "w") as full:
        done = subprocess.run([ordo_executable(), "plan", "-C", str(VFW), "--format", "json"], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=ordo_env(), timeout=60)
    assert done.returncode == 120, done.stderr
    assert "cannot write the output: No space left on device" in done.stderr and "bug" not in done.stderr
