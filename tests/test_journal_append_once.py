"""Journal.append_once: a step's events written once when two attempts of it race (a retried
Temporal activity whose first attempt still runs), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from executor.journal import Event, Journal


def test_of_two_racing_attempts_one_writes_and_the_other_finds(journal_url):
    with Journal(journal_url) as first, Journal(journal_url) as second:
        run = first.start_run("/p", "r", {})
        for round_ in range(12):
            since = first.last_event(run).seq if first.last_event(run) else 0
            events = [Event("intent", op=f"x{round_}/create", key=f"k{round_}", data={"n": round_}),
                      Event("result", op=f"x{round_}/create", data={"ok": True})]
            start, answers = threading.Barrier(2), {}

            def attempt(jr: Journal, name: str, since=since, events=events, start=start, answers=answers) -> None:
                start.wait()
                answers[name] = jr.append_once(run, events, since=since)

            threads = [threading.Thread(target=attempt, args=(jr, name)) for jr, name in ((first, "a"), (second, "b"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(written for _, written in answers.values()) == [False, True]
            stored = first.events(run, since=since)
            assert [(e.kind, e.op) for e in stored] == [(e.kind, e.op) for e in events]
            assert [e.seq for e in answers["a"][0]] == [e.seq for e in answers["b"][0]] == [e.seq for e in stored]


def test_other_events_are_written_and_same_decides_what_is_one_write(journal_url):
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "r", {})
        (one,), wrote = jr.append_once(run, [Event("replan", data={"number": 2, "plan": "A"})], since=0)
        assert wrote
        # different data: another write by default
        (two,), wrote = jr.append_once(run, [Event("replan", data={"number": 2, "plan": "B"})], since=0)
        assert wrote and two.seq > one.seq
        # one plan per number: found, not written
        by_number = lambda new, old: old.kind == "replan" and old.data["number"] == new.data["number"]  # noqa: E731
        (found,), wrote = jr.append_once(run, [Event("replan", data={"number": 2, "plan": "C"})], since=0,
                                         same=by_number)
        assert not wrote and found.seq == one.seq and found.data["plan"] == "A"
        # only what stands after `since` counts
        (three,), wrote = jr.append_once(run, [Event("replan", data={"number": 2, "plan": "C"})], since=two.seq,
                                         same=by_number)
        assert wrote and three.seq > two.seq
        assert len(jr.events(run, kinds=("replan",))) == 3


def test_a_journal_write_retried_after_its_commit_is_not_written_twice(journal_url):
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "r", {})
        first = jr.append(run, [Event("run-started", data={"snapshot": {}})])
        batch = [Event("result", op="a/create", key="k1", data={"attempt": 1, "outputs": {"id": 1}}),
                 Event("result", op="b/create", key="k2", data={"attempt": 1, "outputs": {}})]
        written, wrote = jr.append_once(run, batch, since=first[-1].seq)
        again, wrote_again = jr.append_once(run, batch, since=first[-1].seq)   # the answer was lost: the same write
        assert wrote and not wrote_again and [e.seq for e in again] == [e.seq for e in written]
        later, _ = jr.append_once(run, batch[:1], since=written[-1].seq)    # after what the workflow saw: a new event
        assert later[0].seq > written[-1].seq
        assert [e.kind for e in jr.events(run)] == ["run-started", "result", "result", "result"]


def test_the_look_sees_the_other_writer_whatever_the_servers_default_isolation(postgres_url):
    """On PostgreSQL a write transaction is READ COMMITTED even where the database's default is
    REPEATABLE READ: its look, after the run's lock, sees what the writer before it committed."""
    import psycopg

    from executor.store.postgres import WRITE

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {postgres_url.rsplit('/', 1)[1]} "
                      "SET default_transaction_isolation = 'repeatable read'")
    with Journal(postgres_url) as first, Journal(postgres_url) as second:
        run = first.start_run("/p", "r", {})
        since = first.events(run)[-1].seq if first.events(run) else 0
        events = [Event("intent", op="x/create", key="k", data={"n": 1})]
        with psycopg.connect(postgres_url, autocommit=True) as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (WRITE, run))   # both attempts queue behind it
            answers = []
            threads = [threading.Thread(target=lambda jr=jr: answers.append(
                jr.append_once(run, events, since=since)[1])) for jr in (first, second)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            holder.execute("COMMIT")
            for t in threads:
                t.join()
        assert sorted(answers) == [False, True]
        assert len(first.events(run, since=since)) == 1


def _fallen_out(jr: Journal) -> int:
    """A run that fell out: resumable, carried on by no process (a supersede may end it)."""
    run = jr.start_run("/p", "r", {})
    jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout", summary={"status": "fallout"})
    return run


def test_only_if_writes_nothing_once_the_run_moved_on(journal_url):
    with Journal(journal_url) as jr:
        run = _fallen_out(jr)
        aborted = [Event("run-ended", data={"status": "aborted"})]
        jr.start_run("/p", "new", {}, supersede=True)
        fallen = lambda r: r.status == "fallout"  # noqa: E731
        assert jr.append_once(run, aborted, since=None, status="aborted", only_if=fallen) == ([], False)
        assert jr.run(run).status == "superseded"
        assert [e.data["status"] for e in jr.events(run, kinds=("run-ended",))] == ["fallout", "superseded"]


def test_a_run_that_ended_is_not_claimed(journal_url):
    """A claim reads the run's status under its lock: a supersede that came first is seen (a resume that
    read "fallout" just before would otherwise carry a superseded run on, and mark it running)."""
    from executor.journal import RunEnded

    with Journal(journal_url) as jr:
        run = _fallen_out(jr)
        jr.start_run("/p", "new", {}, supersede=True)
        with pytest.raises(RunEnded, match=rf"run {run} cannot be carried on: it is superseded \(superseded by run"):
            jr.claim(run)
        assert jr.run(run).status == "superseded"


def test_a_supersede_waits_for_an_abort_that_looked_at_the_status(journal_url):
    """An abort (append_once, only_if fallout) has read the status and is writing its run-ended when a
    supersede starts: the supersede waits for it, sees the run aborted and leaves it. One end per run."""
    with Journal(journal_url) as aborting, Journal(journal_url) as superseding:
        run = _fallen_out(aborting)
        inside, superseded = threading.Event(), threading.Event()
        insert = aborting._insert

        def slow_insert(*args, **kwargs):   # after the status was read, before the commit
            inside.set()
            superseded.wait(1.0)   # the supersede, if it does not wait for this transaction, is done by then
            return insert(*args, **kwargs)

        aborting._insert = slow_insert

        def supersede() -> None:
            inside.wait(5)
            superseding.start_run("/p", "new", {}, supersede=True)
            superseded.set()

        other = threading.Thread(target=supersede)
        other.start()
        written = aborting.append_once(run, [Event("run-ended", data={"status": "aborted"})], since=None,
                                       status="aborted", summary={"status": "aborted"},
                                       only_if=lambda r: r.status == "fallout")[1]
        other.join()
        assert written
        assert [e.data["status"] for e in aborting.events(run, kinds=("run-ended",))] == ["fallout", "aborted"]
        assert aborting.run(run).status == "aborted"


def test_a_claim_waits_for_an_abort_that_looked_at_the_status(journal_url):
    """An abort (append_once, only_if fallout) is writing when a resume claims the run: the claim
    waits for it and refuses the run aborted, rather than mark it running."""
    from executor.journal import RunEnded

    with Journal(journal_url) as aborting, Journal(journal_url) as claiming:
        run = _fallen_out(aborting)
        inside, claimed = threading.Event(), threading.Event()
        insert, refused = aborting._insert, []

        def slow_insert(*args, **kwargs):
            inside.set()
            claimed.wait(1.0)   # a claim that does not wait for this transaction is done by then
            return insert(*args, **kwargs)

        aborting._insert = slow_insert

        def claim() -> None:
            inside.wait(5)
            try:
                claiming.claim(run)
            except RunEnded as exc:
                refused.append(exc)
            claimed.set()

        other = threading.Thread(target=claim)
        other.start()
        assert aborting.append_once(run, [Event("run-ended", data={"status": "aborted"})], since=None,
                                    status="aborted", summary={"status": "aborted"},
                                    only_if=lambda r: r.status == "fallout")[1]
        other.join()
        assert aborting.run(run).status == "aborted" and len(refused) == 1


def test_ordo_abort_leaves_a_crashed_run_that_a_resume_took_over(journal_url, tmp_path):
    """`ordo abort` read the run crashed (status running, its owner gone); a resume claims it before
    the abort writes: the abort writes nothing and says the run changed, the resume's end is the one."""
    import subprocess
    import sys
    from pathlib import Path

    from executor import runs
    from executor.engine import ExecutionError

    root = str(Path(__file__).resolve().parent.parent)
    started = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                              "from executor.journal import Journal; "
                              "print(Journal(sys.argv[2]).start_run('/p', 'r', {}))",
                              root, journal_url], capture_output=True, text=True, check=True)
    run = int(started.stdout)
    (tmp_path / "ordo.yaml").write_text("{}\n")
    with Journal(journal_url) as resumer:
        assert resumer.run(run).effective_status == "crashed"
        appended = Journal.append_once

        def resumed_first(self, *args, **kwargs):
            if kwargs.get("only_if") is not None:
                resumer.claim(run)
            return appended(self, *args, **kwargs)

        Journal.append_once = resumed_first
        try:
            with pytest.raises(ExecutionError, match=f"run {run} changed while it was aborted: it is running now"):
                runs.abort(tmp_path, journal_url, run)
        finally:
            Journal.append_once = appended
        resumer.append(run, [Event("run-ended", data={"status": "complete"})], status="complete")
        assert [e.data["status"] for e in resumer.events(run, kinds=("run-ended",))] == ["complete"]
