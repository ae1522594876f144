"""A journal's database gone for longer than a minute and a half (a restart, a failover, a network
cut): a run on Temporal waits for it. Its steps failed 20 times in some 85 s, the workflow with them,
and the run was left crashed; a step failing for any other reason still fails the workflow at its
20th attempt (an error that never passes held the run, and an abort with it)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("temporalio")

from temporalio.exceptions import ApplicationError  # noqa: E402

import executor.temporal.activities as activities  # noqa: E402
from executor.journal import Event, Journal, JournalError, JournalLost  # noqa: E402
from executor.temporal import workflow, workflow_id  # noqa: E402
from tests.conftest import VFW  # noqa: E402
from tests.stores import free_port  # noqa: E402
from tests.test_temporal_inputs import _ref  # noqa: E402


def _attempt(monkeypatch: pytest.MonkeyPatch, number: int, workflow: str = "w") -> None:
    monkeypatch.setattr(activities.activity, "info", lambda: SimpleNamespace(attempt=number, workflow_id=workflow))
    monkeypatch.setattr(activities.activity, "heartbeat", lambda *args: None)
    monkeypatch.setattr(activities.activity, "is_cancelled", lambda: False)


def test_a_step_waits_for_a_database_gone_and_fails_at_its_20th_attempt_otherwise(monkeypatch, tmp_path: Path):
    gone = f"postgresql://ordo@127.0.0.1:{free_port()}/ordo"   # (nothing listens there: refused)
    with pytest.raises(JournalLost, match="cannot open the journal"):
        Journal(gone)
    for attempt in (1, 20, 700):   # the database gone: retried at every attempt, within the step's time
        _attempt(monkeypatch, attempt)
        with pytest.raises(JournalLost):
            activities.Activities(journal=gone).begin(_ref(journal=gone))
    damaged = tmp_path / "journal.db"   # (a run's event that does not read back: an error that never passes)
    with Journal(damaged) as jr:
        run = jr.start_run(str(VFW), "requests/instantiate.yaml", {"engine": "temporal"})
        jr.append(run, [Event("run-started", data={})])
        jr._store.execute("UPDATE events SET data = '{' WHERE run = ?", (run,))
        ref = _ref(journal=str(damaged), journal_id=jr.id, run=run, root=str(VFW))
    for attempt, retried in ((1, True), (19, True), (20, False)):
        _attempt(monkeypatch, attempt, workflow_id(ref["journal_id"], run))
        with pytest.raises(Exception) as raised:
            activities.Activities().state(ref)
        assert isinstance(raised.value, ApplicationError) is not retried, raised.value
        if not retried:
            assert raised.value.non_retryable and "attempt 20, the last" in str(raised.value)
    options = workflow._step_options(_ref())
    assert options["retry_policy"].maximum_attempts == 0 and options["schedule_to_close_timeout"] == timedelta(hours=1)


def test_a_database_that_answers_no_is_not_waited_for_one_that_is_full_is(postgres_url: str) -> None:
    """A database that does not exist (or a password refused) is an error, not an outage; one at its
    most connections may take one later (a role that is not a superuser is told so in other words than
    "too many clients", and its steps failed at their 20th attempt: a review's)."""
    import uuid

    import psycopg

    server = postgres_url.rsplit("/", 1)[0]
    with pytest.raises(JournalError) as raised:
        Journal(f"{server}/no_such_database")
    assert not isinstance(raised.value, JournalLost), raised.value
    # two hosts, one that answers no and one down: the answer was left out (the first line of the driver's
    # message is the last host tried's), and the refusal waited for as an outage (a review's)
    down = free_port()
    with pytest.raises(JournalError) as raised:
        Journal(f"{server},127.0.0.1:{down}/no_such_database")
    assert not isinstance(raised.value, JournalLost), raised.value
    assert 'database "no_such_database" does not exist' in str(raised.value), raised.value
    role = f"r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
    try:
        as_role = postgres_url.replace("postgres@", f"{role}@", 1)
        with psycopg.connect(as_role), pytest.raises(JournalLost, match=f'too many connections for role "{role}"'):
            Journal(as_role)   # (past its one connection)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP ROLE {role}")


def test_the_journals_connection_gives_up_on_a_silent_network_cut_in_about_a_minute(postgres_url: str) -> None:
    """A network cut without a word (a firewall, a host gone) left a step's statement waiting on a dead
    connection for as long as the step's time limit, ten minutes, the database long back (an end-to-end
    check's note). TCP keepalives and a limit on unacknowledged data are set, unless the URL sets them."""
    import socket

    for url, idle in ((postgres_url, 30), (f"{postgres_url}?keepalives_idle=7", 7)):
        with Journal(url) as jr:
            sock = socket.socket(fileno=os.dup(jr._store._db.pgconn.socket))
            try:
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == idle
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
            finally:
                sock.close()


@pytest.mark.parametrize("said", [
    'connection failed: connection to server at "db", port 5432 failed: fe_sendauth: no password supplied',
    'connection failed: connection to server at "db", port 5432 failed: SSL error: certificate verify failed',
    'connection failed: connection to server at "db", port 5432 failed: server certificate for "localhost" '
    'does not match host name "db"',
    'connection failed: connection to server at "db", port 5432 failed: root certificate file "/no.crt" does '
    'not exist',
    'connection failed: connection to server at "db", port 5432 failed: authentication method requirement '
    '"password" failed: server requested SASL authentication',
    # two hosts, one down: the refusal is the reason, and said (it was left out of the message: a review's)
    'connection failed: connection to server at "db2", port 5432 failed: Connection refused\n'
    'Multiple connection attempts failed. All failures were:\n'
    '- host: \'db\', port: \'5432\', hostaddr: \'10.0.0.1\': connection failed: connection to server at '
    '"db", port 5432 failed: fe_sendauth: no password supplied\n'
    '- host: \'db2\', port: \'5432\', hostaddr: \'10.0.0.2\': connection failed: connection to server at '
    '"db2", port 5432 failed: Connection refused'])
def test_a_connection_refused_for_its_settings_is_not_an_outage(monkeypatch, said: str) -> None:
    """No password to send (a worker's host without its .pgpass) or a certificate that does not verify:
    libpq says so without the server's FATAL, and it was taken for an outage (a run's steps waited an
    hour: a review's)."""
    import psycopg

    def refused(*args, **kwargs):
        raise psycopg.OperationalError(said)

    monkeypatch.setattr(psycopg, "connect", refused)
    with pytest.raises(JournalError) as raised:
        Journal("postgresql://ordo@db:5432/ordo")
    reason = next(line for line in said.splitlines()[::-1] if "refused" not in line).split("failed: ")[-1]
    assert not isinstance(raised.value, JournalLost) and reason in str(raised.value), raised.value


def test_a_standby_met_in_a_failover_is_waited_for_until_it_is_promoted() -> None:
    """A failover's old primary come back as a standby, before the URL's name moves on or it is promoted:
    with hot_standby off it answers "not accepting connections", with it on it takes no write. Both were
    errors, so a run on Temporal failed at its steps' 20th attempt instead of waiting; with real servers."""
    import shutil
    import subprocess
    import tempfile

    import psycopg

    from tests.stores import _as_server_user, _bindir

    bindir = _bindir()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL's programs (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="ordo-pg-"))   # (the server's user reaches it; not a test's tmp_path)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    primary, standby = free_port(), free_port()

    def ctl(data: str, *args: str) -> None:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(folder / data), "-l",
                                        str(folder / f"{data}.log"), "-w", "-t", "60", *args]), **run)

    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(folder / "p"), "-A", "trust", "-U", "postgres",
                                    "--no-sync", "-E", "UTF8"]), **run)
    ctl("p", "-o", f"-h 127.0.0.1 -p {primary} -k {folder} -c fsync=off", "start")
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{primary}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE ordo")
        url = f"postgresql://postgres@127.0.0.1:{standby}/ordo"
        with Journal(url.replace(str(standby), str(primary))) as jr:
            run_id = jr.start_run(str(VFW), "requests/instantiate.yaml", {})
        subprocess.run(_as_server_user([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary),
                                        "-U", "postgres", "-D", str(folder / "s"), "-R", "--checkpoint=fast"]), **run)
        options = f"-h 127.0.0.1 -p {standby} -k {folder} -c fsync=off -c hot_standby="
        ctl("s", "-o", options + "off", "start")
        with pytest.raises(JournalLost, match="not accepting connections"):
            Journal(url)
        ctl("s", "-m", "fast", "stop")
        ctl("s", "-o", options + "on", "start")
        with Journal(url) as jr:   # (read: a hot standby takes that)
            assert jr.run(run_id).status == "running"
            with pytest.raises(JournalLost, match="read-only"):
                jr.append(run_id, [Event("run-started", data={})])
        ctl("p", "-m", "fast", "stop")
        ctl("s", "promote")
        with Journal(url) as jr:   # (the next attempt, on a connection of its own)
            jr.append(run_id, [Event("run-started", data={})])
            assert [e.kind for e in jr.events(run_id)] == ["run-started"]
    finally:
        for data in ("s", "p"):
            if (folder / data / "postmaster.pid").exists():
                subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(folder / data), "-m", "immediate",
                                                "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
