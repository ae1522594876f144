"""Runs of `ordo serve` that crash while the server goes on (the journal's database restarted under
them, or a server sharing the journal died) are taken over, as a server's start takes over what it
finds cut short: before, they waited for some server's restart. A look every TAKEOVER_EVERY seconds
takes a run once it has been quiet for longer than its operations may take (a driver that lost the
journal may still have a call under way) and TAKEOVER_MARGIN."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest

import service.engine
from executor.journal import Journal
from service.engine import TAKEOVER, LocalEngine, Submission
from tests.servicekit import LAB


def _terminate_connections(url: str) -> None:
    """What a PostgreSQL restart does to ordo: every connection to its database closed."""
    import psycopg

    base, database = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                   "AND pid <> pg_backend_pid()", (database,))


@pytest.fixture
def slow_world(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Operations of 0.4 s in a simulated world, and servers that look for runs to take over every 0.2 s,
    once a run has been quiet for its operations' timeout (OP_TIMEOUT) and half a second."""
    monkeypatch.setattr(service.engine, "TAKEOVER_EVERY", 0.2)
    monkeypatch.setattr(service.engine, "TAKEOVER_MARGIN", 0.5)
    world = vfw_copy / "simulations" / "slow.yaml"
    world.write_text("latency: 0.4\n")
    return world


#: The timeout of the runs' operations (the catalog gives none).
OP_TIMEOUT = 2.0


def _first_intent(engine: LocalEngine) -> tuple[int, float]:
    """A run of the lab network submitted, once its first operation is sent; and a deadline."""
    run = engine.submit(Submission(request=LAB, op_timeout=OP_TIMEOUT), "test").run
    deadline = time.monotonic() + 60
    while not [ev for ev in engine.events(run) if ev.kind == "intent"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run, deadline


def test_a_run_whose_connection_died_is_taken_over_while_the_server_goes_on(
        vfw_copy: Path, postgres_url: str, slow_world: Path) -> None:
    engine = LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world)
    engine.start()
    try:
        run, deadline = _first_intent(engine)
        _terminate_connections(postgres_url)   # the run's driver cannot write on: it stops, the run crashed
        while True:   # taken over, then cut short again: taken over again
            try:
                events = engine.events(run)
            except Exception:  # noqa: BLE001 - the reader's connection was closed too (opened anew on errors)
                engine.reopen()
                continue
            taken = [ev.seq for ev in events if ev.kind == "resume-requested"]
            if taken and [ev for ev in events if ev.kind == "intent" and ev.seq > taken[0]]:
                break
            assert time.monotonic() < deadline and events[-1].kind != "run-ended", events[-1]
            time.sleep(0.05)
        _terminate_connections(postgres_url)
        while True:
            assert time.monotonic() < deadline, "the run was not taken over"
            try:
                info = engine.run(run)
            except Exception:  # noqa: BLE001 - the reader's connection was closed too (opened anew on errors)
                engine.reopen()
                continue
            if info.status == "complete":
                break
            time.sleep(0.1)
        with Journal(postgres_url, create=False) as jr:
            resumed = [ev.data.get("principal") for ev in jr.events(run) if ev.kind == "resume-requested"]
            assert resumed == [TAKEOVER, TAKEOVER]
            assert jr.state()["lab-net"].state == "active"
    finally:
        engine.shutdown(30)


def test_a_run_of_a_stopped_server_is_taken_over_by_one_sharing_its_journal(
        vfw_copy: Path, postgres_url: str, slow_world: Path) -> None:
    """A rolling restart: the first server stops (its run ends interrupted once its operation in flight
    is done) and is not back yet; the second carries the run on, once."""
    first = LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world)
    second = LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world)
    first.start()
    try:
        run, deadline = _first_intent(first)
        second.start()
        first.shutdown(30)
        while second.run(run).status != "complete":
            assert time.monotonic() < deadline, second.run(run)
            time.sleep(0.1)
        resumed = [ev.data.get("principal") for ev in second.events(run) if ev.kind == "resume-requested"]
        assert resumed == [TAKEOVER]
    finally:
        first.shutdown(30)
        second.shutdown(30)


def test_two_servers_looking_at_once_carry_a_run_on_once(
        vfw_copy: Path, postgres_url: str, slow_world: Path) -> None:
    first, *others = (LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world) for _ in range(3))
    first.start()
    try:
        run, deadline = _first_intent(first)
        for other in others:
            other.start()
        first.shutdown(30)
        while others[0].run(run).status != "complete":
            assert time.monotonic() < deadline, others[0].run(run)
            time.sleep(0.1)
        kinds = [ev.kind for ev in others[0].events(run)]
        assert kinds.count("resumed") == 1 and kinds.count("run-ended") == 2   # interrupted, then complete
        with Journal(postgres_url, create=False) as jr:
            assert {name: r.state for name, r in jr.state().items()} == {"lab": "active", "lab-net": "active"}
        with sqlite3.connect(vfw_copy / ".ordo" / "simulated-world.db") as world_db:   # each operation sent once
            sent = world_db.execute("SELECT resource, operation FROM ledger").fetchall()
        assert sent and len(sent) == len(set(sent)), sent
    finally:
        for engine in (first, *others):
            engine.shutdown(30)


def test_a_run_whose_driver_lost_the_journal_mid_call_is_not_taken_over_before_the_call_is_over(
        vfw_copy: Path, postgres_url: str, slow_world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the connection that owns the run is closed (a network drop): its driver lives on in the first
    server, its call of 2 s under way. The second server took the run over at its next look and sent the
    same operation again while the first call went on (the review of 6 December). It now waits until the
    run has been quiet for the operation's timeout: the call is over (done, or given up when the first
    driver stopped), and what it did is observed before anything is sent again."""
    import psycopg

    slow_world.write_text("latency: 2\n")
    monkeypatch.setattr(sys.modules[__name__], "OP_TIMEOUT", 3.0)
    first = LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world)
    second = LocalEngine(vfw_copy, journal=postgres_url, simulation=slow_world)
    first.start()
    second.start()
    try:
        run, deadline = _first_intent(first)
        base, database = postgres_url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as db:   # the owner's connection only
            closed = db.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND classid = %s AND objid = %s AND objsubid = 2", (0x6F72, run)).fetchall()
        assert closed
        while second.run(run).status != "complete":
            assert time.monotonic() < deadline + 30, second.run(run)
            time.sleep(0.1)
        events = second.events(run)
        taken = next(ev for ev in events if ev.kind == "resume-requested")
        quiet = taken.at - max(ev.at for ev in events if ev.seq < taken.seq)
        assert taken.data["principal"] == TAKEOVER and quiet >= 6.0, quiet   # twice the timeout: observe, then send
        with sqlite3.connect(vfw_copy / ".ordo" / "simulated-world.db") as world_db:   # each applied once
            applied = world_db.execute("SELECT resource, operation FROM ledger").fetchall()
        assert len(applied) == len(set(applied)) == 5, applied
    finally:
        first.shutdown(30)
        second.shutdown(30)


def test_a_failed_takeover_is_not_tried_again_at_every_look(vfw_copy: Path, slow_world: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Each try writes its resume-requested event. The run is then not drained (its last event is that
    one): the next look waits until it has been quiet again, and does not write an event every look."""
    from executor.journal import Event

    engine = LocalEngine(vfw_copy, simulation=slow_world)
    with Journal(engine.path) as jr:   # a service run stopped once its calls were done: taken at once
        run = jr.start_run(str(vfw_copy), "r.yaml", {"principal": "test"}, claims=["lab"])
        jr.append(run, [Event("run-started", data={}), Event("run-ended", data={"status": "interrupted"})],
                  status="interrupted")
    tries: list[int] = []

    def failing(run_id: int, principal: str, record: object = None) -> int:
        tries.append(run_id)
        with Journal(engine.path) as jr:
            jr.append(run_id, [Event("resume-requested", data={"principal": principal})])
        raise service.engine.Conflict("not now")

    monkeypatch.setattr(engine, "resume", failing)
    engine.start()
    try:
        time.sleep(1.5)   # seven looks
        assert tries == [run]   # at the start; no look tries it again
        with Journal(engine.path) as jr:   # something else written (it was drained again): tried again
            jr.append(run, [Event("run-ended", data={"status": "interrupted"})], status="interrupted")
        time.sleep(0.6)
        assert tries == [run, run]
    finally:
        engine.shutdown(30)


@pytest.mark.parametrize(("controllers", "longest"), [
    ({}, 0.0),   # simulated controllers, no timeout given: the runs' own default counts
    ({"cds": "{ concurrency: 2, timeout: 700 }"}, 700.0),
    ({"openstack": '{ kind: command, config: { command: ["true"] } }'}, 300.0),   # the adapter's default
    ({"openstack": '{ kind: command, config: { command: ["true"], timeout: 900 } }',
      "sdnc": "{ kind: http, config: { base_url: 'http://127.0.0.1:1' } }"}, 900.0),
])
def test_the_quiet_time_covers_the_longest_call_the_catalog_allows(vfw_copy: Path, controllers: dict[str, str],
                                                                   longest: float) -> None:
    """A call in doubt is observed within the controller's own call timeout, which may be longer than
    any operation's (the third review of 6 December): the quiet time counts it."""
    catalog = vfw_copy / "catalog.yaml"
    text = catalog.read_text()
    for name, spec in controllers.items():
        start = text.index(f"  {name}:")
        text = text[:start] + f"  {name}: {spec}\n" + text[text.index("\n", start) + 1:]
    catalog.write_text(text)
    assert service.engine._longest_timeout(vfw_copy) == longest


def test_a_resume_that_another_server_took_first_is_a_conflict(vfw_copy: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Two resumes of a run that fell out, through two servers at once: the one that lost found the run
    in progress when it claimed it, and answered 503 (try again later: a client that obeys would resume
    once more, perhaps a later fallout) where a resume of a run driven here is a 409 (the review of
    6 December)."""
    import subprocess

    from executor.journal import Event, JournalError

    engine = LocalEngine(vfw_copy)
    engine.start()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])   # the other server
    try:
        with Journal(engine.path) as jr:
            run = jr.start_run(str(vfw_copy), "r.yaml", {"principal": "test"})
            jr.append(run, [Event("run-started", data={}), Event("run-ended", data={"status": "fallout"})],
                      status="fallout")

        def taken_first(*args: object, **kwargs: object) -> None:   # the other server's claim came first
            with sqlite3.connect(engine.path) as db:
                db.execute("UPDATE runs SET status='running', pid=? WHERE id=?", (sleeper.pid, run))
            db.close()
            raise JournalError(f"{engine.path}: run {run} is in progress (pid {sleeper.pid})")

        monkeypatch.setattr(service.engine.runs, "resume", taken_first)
        with pytest.raises(service.engine.Conflict, match=f"run {run} is being carried out now"):
            engine.resume(run, "test")
    finally:
        engine.shutdown(5)
        sleeper.kill()
        sleeper.wait()
