"""File names ordo cannot take are refused naming the file, as any unreadable file is: once a
crash, reported as a bug in ordo (a stale-cache hunt's findings)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ordo_env, ordo_executable


def run(args: list[str | bytes], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ordo_executable(), *args], cwd=cwd, env=ordo_env(), capture_output=True, text=True,
                          errors="replace", timeout=120)


def test_a_name_too_long_for_the_system_is_a_file_ordo_cannot_read(vfw_copy: Path) -> None:
    """The model cache's key looked for the file before anything said why it could not be read."""
    name = "a" * 300 + ".yaml"
    for args in (["plan", name], ["check", name], ["plan", "--inventory", name]):
        done = run(args, vfw_copy)
        assert done.returncode == 1 and "File name too long" in done.stderr + done.stdout, done.stderr
        assert "bug in ordo" not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS file names are UTF-8 always")
def test_a_name_that_is_not_utf8_text_is_refused_naming_it(vfw_copy: Path, tmp_path: Path) -> None:
    """A plan names its files, as text: a request or policy file whose name holds a byte that is no
    UTF-8 made the plan's digest fail (UnicodeEncodeError)."""
    request = os.fsencode(vfw_copy) + b"/r\xff.yaml"
    shutil.copyfile(vfw_copy / "requests" / "instantiate.yaml", request)
    policy = os.fsencode(tmp_path) + b"/p\xff.lp"
    shutil.copyfile(vfw_copy / "policies" / "config-after-modules.lp", policy)
    for args in ([b"plan", b"r\xff.yaml"], [b"check", b"r\xff.yaml"], [b"plan", b"--policy", policy]):
        done = run(args, vfw_copy)
        out = done.stderr + done.stdout
        assert done.returncode == 1 and "\\xff" in out and "the file's name is not UTF-8 text" in out, out
        assert "bug in ordo" not in out


def test_a_name_with_a_lone_surrogate_is_named_escaped() -> None:
    """One kept for a byte the file system holds (U+DC80-DCFF) shows as that byte; any other, written
    as such in ordo.yaml, as its code point (the message itself failed: a review's)."""
    from domain.yamlsrc import name_problem

    assert name_problem("ok.yaml", "ok.yaml") is None
    assert name_problem("r\udcff.yaml", "r\udcff.yaml").file == "r\\xff.yaml"
    assert name_problem("\ud800.yaml", "\ud800.yaml").file == "\\ud800.yaml"
