"""`ordo serve` killed with -9 while requests arrive from many clients at once, and started again:
every request that got a 202 completes, the clients that lost their answer send it again with its
Idempotency-Key and get the same run, and the simulated world applied each effect once.
(The same at scale, timed: benchmarks/bench_serve.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from executor.controllers.simulated import read_ledger
from tests.loadkit import independent, resumed, run_load
from tests.servicekit import LAB, thread_server, wait_state


@pytest.mark.slow
def test_killed_under_concurrent_load_every_accepted_request_completes_once(vfw_copy: Path, tmp_path: Path) -> None:
    requests = independent(10)
    load = run_load(vfw_copy, requests, tmp_path / "serve.log", clients=4, latency=0.1, kill_after=4, timeout=180)
    assert not load.problems(), (load.problems(), (tmp_path / "serve.log").read_text()[-3000:])
    lost = [p for p in load.posts[:len(requests)] if p.status != 202]
    assert lost, "the kill came after every request was answered: nothing was tested"
    assert all(p.status is None for p in lost), [p.status for p in lost]  # no answer, not a refusal
    runs = load.runs_of()
    assert len({run for named in runs.values() for run in named}) == len(requests)
    assert load.effects.applied == 8 * len(requests)  # each request: a service and two networks, once
    assert resumed(vfw_copy), "no run was in progress at the kill: nothing was resumed"


#: What a server killed between a run's row and its first event leaves: the run, its claims, its key.
UNBEGUN = """
import sys
from executor.journal import Journal
with Journal(sys.argv[1]) as jr:
    jr.start_run(sys.argv[2], ".ordo/requests/lost.yaml", {"principal": "portal", "idempotency_key": "order-7",
                 "submission": "0" * 64}, claims=["lab", "lab-net"])
"""


def test_a_run_killed_before_its_first_event_is_closed_not_resumed_and_its_key_starts_afresh(vfw_copy: Path) -> None:
    """Resumed, it was re-planned from the project's own request (the vFW), not the one accepted, and
    the client sending its request again was answered with it (the load benchmark found this)."""
    (vfw_copy / ".ordo").mkdir()
    subprocess.run([sys.executable, "-c", UNBEGUN, str(vfw_copy / ".ordo" / "journal.db"), str(vfw_copy)],
                   check=True, timeout=60)
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        lost = api.get("/v1/runs/1").json()
        assert lost["state"] == "aborted" and lost["summary"]["never_began"], lost  # its claims lapsed: lab runs
        again = api.post("/v1/runs", json={"request": LAB}, headers={"Idempotency-Key": "order-7"})
        assert again.status_code == 202 and again.json()["id"] == 2 and "idempotent-replayed" not in again.headers
        assert wait_state(api, 2, ("complete",))["claims"] == ["lab", "lab-net"]
    assert {row["resource"] for row in read_ledger(vfw_copy / ".ordo" / "simulated-world.db")} == {"lab", "lab-net"}
