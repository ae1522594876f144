"""`ordo serve` killed with -9 while requests arrive from many clients at once, and started again:
every request that got a 202 completes, the clients that lost their answer send it again with its
Idempotency-Key and get the same run, and the simulated world applied each effect once.
(The same at scale, timed: benchmarks/bench_serve.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.loadkit import independent, run_load


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


def resumed(project: Path) -> list[int]:
    """The runs the restarted server resumed (read-only: the journal of a stopped server)."""
    db = sqlite3.connect(f"file:{project / '.ordo' / 'journal.db'}?mode=ro", uri=True)
    try:
        return [run for (run,) in db.execute("SELECT DISTINCT run FROM events WHERE kind='resumed' ORDER BY run")]
    finally:
        db.close()
