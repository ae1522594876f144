"""A file ordo writes on request (``--out``, ``--out-dir``) is written whole or not at all: a
plan saved earlier is never left cut short or empty by a full disk, Ctrl-C or a kill while the new
one is written (the sweep of 6 December: a SIGTERM while a 34 MB plan was written left a file
of 0 bytes where the old plan had been)."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from domain.errors import OrdoError
from ordo import cli
from tests.conftest import VFW, run_ordo, run_ordo_process


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".ordo-part"))


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_write_cut_short_leaves_the_file_that_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          failure: BaseException) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text('{"old": true}\n')
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def fileno(self) -> int:
            return self.handle.fileno()

        def write(self, text: str) -> None:
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise failure

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Half(real_fdopen(fd, *a, **k)))
    with pytest.raises((OrdoError, KeyboardInterrupt)) as raised:
        cli._write(saved, '{"new": "' + "x" * 10_000 + '"}\n')
    if isinstance(failure, OSError):
        assert str(raised.value) == f"cannot write {saved}: No space left on device"
    assert saved.read_text() == '{"old": true}\n'
    assert _parts(tmp_path) == []


def test_a_file_replaced_keeps_its_permissions_and_a_link_keeps_pointing_at_it(tmp_path: Path) -> None:
    real = tmp_path / "plans" / "plan.json"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    run = run_ordo("plan", "-C", VFW, "--out", link)
    assert run.code == 0, run.text
    assert link.is_symlink() and json.loads(real.read_text())["operations"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert _parts(real.parent) == [] and _parts(tmp_path) == []


def test_a_new_file_gets_the_permissions_any_new_file_gets(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    cli._write(tmp_path / "plan.json", "{}\n")
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o666 & ~mask


def test_a_device_is_written_to_not_replaced() -> None:
    run = run_ordo("plan", "-C", VFW, "--out", "/dev/null")
    assert run.code == 0, run.text
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_standard_output_is_written_to_whatever_it_is() -> None:
    """`--out /dev/stdout` names the pipe it is through /proc: a file beside it cannot be made there
    (the review of 6 December: "cannot write /dev/stdout: No such file or directory")."""
    run = run_ordo_process("plan", "-C", VFW, "--out", "/dev/stdout")   # (its output: a pipe)
    assert run.code == 0, run.text
    assert run.out.startswith('{"concurrency":') and "Saved the plan to: /dev/stdout" in run.out


def test_a_file_with_other_names_or_in_a_folder_closed_to_new_files_is_written_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a file would cut its other hard links off (and give it this user as owner); a folder
    where no new file may be made, around a file that may be written, was written before."""
    saved, other = tmp_path / "plan.json", tmp_path / "also.json"
    saved.write_text("old")
    os.link(saved, other)
    cli._write(saved, "new")
    assert other.read_text() == "new" and saved.stat().st_nlink == 2
    other.unlink()
    real_open = os.open

    def closed(file, flags, *args, **kwargs):
        if str(file).endswith(".ordo-part"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", closed)
    cli._write(saved, "newer")
    assert saved.read_text() == "newer"
    with pytest.raises(OrdoError, match=r"cannot write .*/none\.json: Permission denied"):
        cli._write(tmp_path / "none.json", "{}")   # no file there to write in place
    assert _parts(tmp_path) == []
