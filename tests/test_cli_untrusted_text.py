"""What the command line shows of text it does not control (paths given to it, a journal's
contents, folder names) is shown as it is: never read as markup (a tag that closes nothing
crashed ordo), never sent to the terminal raw (escape sequences, bidi overrides). And a
file it cannot write is the user's error, not a bug."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import VFW, run_ordo

HOSTILE = "[/x][red]\x1b[31m\u202e"
SHOWN = "[/x][red]\\x1b[31m\\u202e"


def test_the_path_a_plan_is_saved_to(tmp_path: Path) -> None:
    folder = tmp_path / HOSTILE
    folder.mkdir(parents=True)
    run = run_ordo("plan", "-C", VFW, "--out", folder / "plan.json")
    assert run.code == 0, run.text
    assert f"Saved the plan to: {tmp_path}/{SHOWN}/plan.json" in run.out and "\x1b" not in run.out
    assert json.loads((folder / "plan.json").read_text())["operations"]


def test_a_plan_saved_where_no_folder_is_a_clear_error(tmp_path: Path) -> None:
    run = run_ordo("plan", "-C", VFW, "--out", tmp_path / "none" / "plan.json")
    assert run.code == 1 and f"cannot write {tmp_path}/none/plan.json: No such file or directory" in run.err


def test_schemas_written_where_no_folder_can_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = run_ordo("schema", "--out-dir", tmp_path / "file" / "schemas")
    assert run.code == 1 and f"cannot make the folder {tmp_path}/file/schemas" in run.err, run.text


def test_policy_tests_named_by_a_path_that_is_not_there(tmp_path: Path) -> None:
    run = run_ordo("test", "-C", VFW, f"nope{HOSTILE}")
    assert run.code == 4 and f"file or folder not found: nope{SHOWN}" in run.err, run.text
    assert "\x1b" not in run.err


def test_a_runs_status_from_the_journal(tmp_path: Path) -> None:
    """A journal is not trusted to hold only what ordo wrote: a status edited by hand is shown as text."""
    journal = tmp_path / "journal.db"
    done = run_ordo("apply", "-C", VFW, "--auto-approve", "--journal", journal, "--simulation",
                    VFW / "simulations" / "smooth.yaml")
    assert done.code == 0, done.text
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE runs SET status=?", (f"evil{HOSTILE}",))
    for args in (("history",), ("show", "1")):
        run = run_ordo(*args, "-C", VFW, "--journal", journal)
        assert run.code == 0 and f"evil{SHOWN}" in run.out, run.text
        assert "\x1b" not in run.out and "\u202e" not in run.out


def test_a_new_projects_folder(tmp_path: Path) -> None:
    run = run_ordo("init", tmp_path / f"p{HOSTILE}")
    assert run.code == 0, run.text
    assert f"p{SHOWN}" in run.out and "\x1b" not in run.out and "\u202e" not in run.out


def test_a_path_cannot_fake_a_line_of_an_error(tmp_path: Path) -> None:
    run = run_ordo("plan", "-C", VFW, "--out", tmp_path / "none" / "x\nerror: fake line.json")
    assert run.code == 1 and run.err.count("\n") == 1 and "x\\x0aerror: fake line.json" in run.err, run.text


def test_characters_that_show_nothing_are_shown_escaped() -> None:
    """An event's data with a zero-width space was shown as it is (a hostile sweep's): "vfw" and
    "v<U+200B>fw" look alike on screen. Letters of any script, and emoji, are shown as they are."""
    from ordo.safe import terminal_safe

    assert terminal_safe("v\u200bfw") == "v\\u200bfw"
    assert terminal_safe("\u00ad\u200c\u200d\u2060\ufeff\u180e") == "\\xad\\u200c\\u200d\\u2060\\ufeff\\u180e"
    assert terminal_safe("é ü ж 中 😀") == "é ü ж 中 😀"
