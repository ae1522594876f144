"""Runs that claim resources share a journal; a run without claims holds all of it."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from executor.journal import ClaimError, Event, Journal, JournalError


def test_disjoint_claims_go_side_by_side_overlapping_ones_are_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as jr:
        first = jr.start_run("p", "a", {}, claims=["vfw", "vfw-base"])
        second = jr.start_run("p", "b", {}, claims=["lab-net"])
        assert (first, second) == (1, 2) and jr.claims(first) == ["vfw", "vfw-base"]
        with pytest.raises(ClaimError, match=r"run 1 \(running\) holds vfw-base"):
            jr.start_run("p", "c", {}, claims=["vfw-base", "other"])
        with pytest.raises(JournalError, match="in progress"):  # `ordo apply` needs the whole journal
            jr.start_run("p", "d", {})
        jr.append(first, [Event("run-ended", data={"status": "complete"})], status="complete")
        jr.check_claims(["vfw-base"])  # the claim lapsed with the run's end
        assert jr.start_run("p", "e", {}, claims=["vfw-base"]) == 3


def test_a_crashed_owners_claims_stay_held_until_it_is_aborted(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as jr:
        run = jr.start_run("p", "a", {}, claims=["vfw"])
    db = sqlite3.connect(tmp_path / "j.db")
    with db:
        db.execute("UPDATE runs SET pid=? WHERE id=?", (_dead_pid(), run))  # its process is gone
    db.close()
    with Journal(tmp_path / "j.db") as jr:
        assert jr.run(run).effective_status == "crashed"
        with pytest.raises(ClaimError, match=r"run 1 \(crashed\) holds vfw"):
            jr.check_claims(["vfw"])
        jr.append(run, [Event("run-ended", data={"status": "aborted"})], status="aborted")
        jr.check_claims(["vfw"])


def test_a_run_without_claims_holds_everything(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as jr:
        jr.start_run("p", "apply", {})
        with pytest.raises(ClaimError, match="holds the whole journal"):
            jr.start_run("p", "b", {}, claims=["anything"])
        with pytest.raises(JournalError, match="at least one"):
            jr.start_run("p", "c", {}, claims=[])


def test_an_older_journal_gets_the_claims_table(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as jr:
        jr.start_run("p", "a", {})
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("DROP TABLE claims")
    db.close()
    with Journal(tmp_path / "j.db") as jr:
        assert jr.claims(1) == []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
