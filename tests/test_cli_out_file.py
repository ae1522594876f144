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
from tests.conftest import VFW, run_ordo


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
