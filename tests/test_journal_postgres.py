"""ordo with its journal on PostgreSQL: `ordo apply` and `ordo plan` of the vFW on simulated
controllers, and two `ordo serve` processes sharing one journal (a request on resources that
one of them works on is refused by the other: 409)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from executor.journal import Journal
from tests.conftest import run_ordo
from tests.servicekit import INSTANTIATE, LAB, effects_once, free_port, process_server, wait_state
from tests.stores import eventually
from tests.test_crash import PLAIN, crash_apply, resume_to_end, write_scenario
from tests.test_durability import assert_world_complete


def test_apply_then_plan_with_the_journal_on_postgresql(vfw_copy: Path, postgres_url: str) -> None:
    applied = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--journal", postgres_url)
    assert applied.code == 0, applied.text
    assert "Apply complete" in applied.out
    assert not (vfw_copy / ".ordo" / "journal.db").exists()   # the journal is the database
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")    # the simulated world: in the project's .ordo/
    # the database's state is what the next plan starts from: nothing is left to do (ORDO_JOURNAL too)
    planned = run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode", env={"ORDO_JOURNAL": postgres_url})
    assert planned.code == 0, planned.text
    assert "No changes." in planned.out
    history = run_ordo("history", "-C", vfw_copy, "--journal", postgres_url, "--json")
    assert [(r["run"], r["status"]) for r in json.loads(history.out)] == [(1, "complete")]
    state = run_ordo("state", "-C", vfw_copy, "--journal", postgres_url)
    assert any(line.split()[:3] == ["vfw", "vnf", "active"] for line in state.out.splitlines()), state.out
    from tests.test_cli import assert_show_filters

    assert_show_filters(vfw_copy, postgres_url)   # (the filters in PostgreSQL's SQL)
    # a plan against the project's own (empty) journal file still has everything to do
    assert run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode").code == 2


def test_an_apply_killed_mid_run_is_crashed_and_resumed(vfw_copy: Path, postgres_url: str) -> None:
    """kill -9 of `ordo apply` after an effect and before its result is written: its lock went with its
    connection, so the run is crashed; resumed, each effect is applied once."""
    scenario = write_scenario(vfw_copy, PLAIN)
    crash_apply(vfw_copy, scenario, "applied:5", "--journal", postgres_url)
    with Journal(postgres_url, create=False) as jr:
        assert eventually(lambda: jr.run(1).effective_status == "crashed")
    refused = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", scenario, "--journal", postgres_url)
    assert refused.code == 1 and "run 1 is crashed, and can be resumed" in refused.err, refused.text
    resume_to_end(vfw_copy, "--journal", postgres_url)
    assert_world_complete(vfw_copy)
    with Journal(postgres_url, create=False) as jr:
        assert [(r.id, r.effective_status) for r in jr.runs()] == [(1, "complete")]
    assert run_ordo("plan", "-C", vfw_copy, "--journal", postgres_url, "--detailed-exitcode").code == 0


def test_reading_an_empty_postgresql_journal(vfw_copy: Path, postgres_url: str) -> None:
    history = run_ordo("history", "-C", vfw_copy, "--journal", postgres_url)
    assert history.code == 0 and history.out.strip() == "No runs yet."
    shown = run_ordo("show", "-C", vfw_copy, "--journal", postgres_url)
    assert shown.code == 1 and f"{postgres_url}: no journal here" in shown.err and "Traceback" not in shown.text


def test_a_database_that_cannot_be_reached_is_named_without_its_password(vfw_copy: Path) -> None:
    url = f"postgresql://ordo:s3cret@127.0.0.1:{free_port()}/ordo"
    for command in (["history"], ["plan"], ["apply", "--auto-approve"], ["state"]):
        run = run_ordo(*command, "-C", vfw_copy, "--journal", url)
        assert run.code == 1 and "Traceback" not in run.text, (command, run.text)
        assert f"postgresql://ordo@{url.split('@')[1]}: cannot " in run.err and "s3cret" not in run.text, command


@pytest.mark.parametrize("encoding", ["SQL_ASCII", "LATIN1"])
def test_a_database_not_in_utf8_is_refused_before_anything_is_written(vfw_copy: Path, postgres_server: str,
                                                                      encoding: str) -> None:
    """SQL_ASCII (what initdb makes under LANG=C) gave text back as bytes, and a new journal was said
    to be damaged; LATIN1 took runs until a record of a name outside it, which failed mid-run, the
    run left crashed (a sweep's)."""
    import psycopg

    name = f"e_{encoding.lower()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'")
    for command in (["history"], ["apply", "--auto-approve"]):
        run = run_ordo(*command, "-C", vfw_copy, "--journal", f"{postgres_server}/{name}")
        assert run.code == 1 and "Traceback" not in run.text, run.text
        assert f"the database's encoding is {encoding}, not UTF8" in run.err and "createdb -E UTF8" in run.err
    with psycopg.connect(f"{postgres_server}/{name}", autocommit=True) as db:   # nothing written there
        assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_two_servers_share_a_journal_on_postgresql(vfw_copy: Path, postgres_url: str, tmp_path: Path) -> None:
    gate(vfw_copy)
    env = {"ORDO_JOURNAL": postgres_url}
    ports = free_port(), free_port()
    servers = [process_server(vfw_copy, port, tmp_path / f"serve-{n}.log", latency=0.05, env=env)
               for n, port in enumerate(ports)]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=60) as one, \
                httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", timeout=60) as two:
            first = one.post("/v1/runs", json={"request": INSTANTIATE})
            assert first.status_code == 202, first.text
            run = first.json()["id"]
            locked = two.post("/v1/runs", json={"request": INSTANTIATE})   # the other server: same resources
            assert locked.status_code == 409, locked.text
            assert locked.json()["detail"].startswith(f"Locked instance: run {run} (running) holds")
            beside = two.post("/v1/runs", json={"request": LAB})            # disjoint: side by side
            assert beside.status_code == 202, beside.text
            lab = beside.json()["id"]
            assert two.get(f"/v1/runs/{run}").json()["state"] == "running"  # each server sees the other's runs
            release(two, lab, "lab")
            assert wait_state(one, lab, ("complete",))["claims"] == ["lab", "lab-net"]
            assert one.get(f"/v1/runs/{run}").json()["state"] == "running"  # held by its gate until now
            release(one, run, "vfw-service")
            assert wait_state(two, run, ("complete",))
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(timeout=60)
    assert not (vfw_copy / ".ordo" / "journal.db").exists()
    applied = effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    assert applied[("vfw", "activate")] == 1 and applied[("lab-net", "create")] == 1
    with Journal(postgres_url, create=False) as jr:
        assert sorted(r.status for r in jr.runs()) == ["complete", "complete"]
        assert jr.state()["lab-net"].state == "active" and jr.state()["vfw"].state == "active"


def gate(project: Path) -> None:
    """Services' activation (each run's last operation) waits for a `released` event: a run holds its
    resources until the test releases it, however long the machine takes to get there."""
    catalog = project / "catalog.yaml"
    text = catalog.read_text()
    service = "    lifecycle: logical\n    controller: so\n"
    catalog.write_text(text.replace(service, service + "    operations:\n"
                                    "      activate: { wait: { event: released, deadline: 600 } }\n"))
    assert catalog.read_text() != text


def release(client: httpx.Client, run: int, resource: str, timeout: float = 60) -> None:
    """The `released` event to ``resource``'s activation in ``run``, once it waits for it (409 before)."""
    deadline = time.monotonic() + timeout
    while True:
        sent = client.post(f"/v1/runs/{run}/events", json={"resource": resource, "event": "released"})
        if sent.status_code == 202:
            return
        assert sent.status_code == 409 and time.monotonic() < deadline, sent.text
        time.sleep(0.1)


def test_the_server_reads_on_after_postgresql_closed_its_connections(vfw_copy: Path, postgres_url: str,
                                                                     tmp_path: Path) -> None:
    """A PostgreSQL restart closes every connection for good: the server answered 503 ("the connection
    is closed") to every request until it was restarted itself, while /readyz said ready. Now a journal
    error opens the reader anew: a 503 at most once, then answers; /readyz says what it finds."""
    import psycopg

    port = free_port()
    server = process_server(vfw_copy, port, tmp_path / "serve.log", latency=0.05, env={"ORDO_JOURNAL": postgres_url})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            run = api.post("/v1/runs", json={"request": LAB}).json()["id"]
            assert wait_state(api, run, ("complete",))
            database = postgres_url.rsplit("/", 1)[1]
            with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
                db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
            answers = [api.get("/v1/runs").status_code for _ in range(3)]
            assert answers[-1] == 200 and answers.count(503) <= 1, answers
            assert api.get(f"/v1/runs/{run}").json()["state"] == "complete"
            assert api.get("/readyz").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_database_with_another_programs_tables_of_ordos_names_is_refused(vfw_copy: Path, postgres_url: str) -> None:
    """A shared database whose 'runs' and 'events' are another program's: ordo took it for an empty
    journal, `history` said "No runs yet" and `apply` failed on a raw SQL message after planning. Now
    every command refuses it, naming those tables, and writes nothing there."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, owner TEXT)")
        db.execute("CREATE TABLE events (at TIMESTAMPTZ, what TEXT)")
        db.execute("CREATE TABLE invoices (id INTEGER)")   # other names are none of ordo's business
    said = f"{postgres_url}: not an ordo journal: it holds another program's tables (events, runs); " \
           "give the journal a database of its own"
    for args in (("history",), ("apply", "--auto-approve")):
        result = run_ordo(*args, "-C", vfw_copy, "--journal", postgres_url)
        assert result.code != 0 and said in result.err and "Traceback" not in result.text, result.text
    with psycopg.connect(postgres_url, autocommit=True) as db:
        tables = {name for (name,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert tables == {"runs", "events", "invoices"}

