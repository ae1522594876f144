"""`ordo serve` killed with -9 in the middle of a run, and started again: the run resumes
and completes, and the simulated world applied each effect once."""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from executor.journal import Journal
from tests.servicekit import INSTANTIATE, effects_once, follow, free_port, process_server, wait_state


def kinds(project: Path, run: int) -> list[str]:
    """The run's events, read-only (a journal opened and closed for writing over and over, from
    another process, holds a running server's writes back)."""
    db = sqlite3.connect(f"file:{project / '.ordo' / 'journal.db'}?mode=ro", uri=True)
    try:
        return [kind for (kind,) in db.execute("SELECT kind FROM events WHERE run=? ORDER BY seq", (run,))]
    finally:
        db.close()


def wait_results(project: Path, run: int, count: int, log: Path | None = None, timeout: float = 60) -> None:
    """Until the run has ``count`` results in the journal (the server's log in the failure)."""
    deadline = time.monotonic() + timeout
    while kinds(project, run).count("result") < count:
        assert time.monotonic() < deadline, log.read_text() if log else f"fewer than {count} results"
        time.sleep(0.02)


def test_killed_mid_run_the_restarted_server_resumes_it(vfw_copy: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    server = process_server(vfw_copy, port, log, latency=0.15)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            run = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"}).json()["id"]
            wait_results(vfw_copy, run, 5, log, timeout=30)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
        assert "run-ended" not in kinds(vfw_copy, run)  # killed mid-run
        server = process_server(vfw_copy, port, log, latency=0.15)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            assert wait_state(api, run, ("complete",), timeout=90)["summary"]["status"] == "complete"
            again = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"})
            assert again.json()["id"] == run  # the key still names the run accepted before the crash
            # a secret in a query string stays out of the access log (it printed the whole target: a sweep's)
            query = ("limit=1&token=query-token-4b1d&api%5Fkey=query-key-9c2e&auth=query-auth-5a&sig=query-sig-6b"
                     "&query-bare-7c&token%3Dquery-eq-8d")   # (an item without '=': whole; a web sweep's)
            assert api.get(f"/v1/runs?{query}").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    logged = log.read_text()
    assert '"GET /v1/runs?limit=1&token=***&api%5Fkey=***&auth=***&sig=***&***&*** HTTP/1.1" 200' \
        in logged, logged[-2000:]
    assert not re.search("query-(token|key|auth|sig|bare|eq)", logged)
    after = kinds(vfw_copy, run)
    assert after.index("resume-requested") < after.index("resumed") < after.index("run-ended")
    applied = effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    assert applied[("vfw-base", "create")] == 1 and len(applied) == after.count("result")


def test_sigterm_stops_the_runs_at_once_while_someone_follows_their_events(vfw_copy: Path, tmp_path: Path) -> None:
    """uvicorn waits for open connections before it shuts the app down; an event stream followed
    (the web page) kept the run dispatching until it ended, or for 5 s. The runs are asked to stop
    at the signal: the run ends interrupted once its calls in flight finish, its stream ends with
    it, and the server exits in about a call's time."""
    port = free_port()
    log = tmp_path / "serve.log"
    server = process_server(vfw_copy, port, log, latency=0.4)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
            streamed: list[list] = []
            reader = threading.Thread(target=lambda: streamed.append(follow(api, run)), daemon=True)
            reader.start()
            wait_results(vfw_copy, run, 2, log, timeout=30)
            server.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            server.wait(30)
            took = time.monotonic() - asked
            reader.join(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    after = kinds(vfw_copy, run)
    assert after[-1] == "run-ended" and "result" in after and took < 3.5, (took, after[-8:], log.read_text()[-2000:])
    assert streamed and streamed[0][-1]["kind"] == "run-ended"
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert jr.run(run).status == "interrupted"
