"""Many service requests at once through ``ordo serve``'s API, and what became of them: for the
kill -9 test under load (tests/test_service_load.py) and the load benchmark (benchmarks/bench_serve.py).

Each request is a small service of its own (disjoint resources), so the runs go side by side
under the per-resource claims; each is submitted with an Idempotency-Key of its own, so a
client that lost its answer (the server was killed) can send it again and gets the same run.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from executor.controllers.simulated import read_ledger, read_world
from tests.servicekit import free_port, process_server

#: The states a run ends in, or stays in waiting for a decision (it is not carried on by itself:
#: "interrupted" once the server is up, as it resumes the runs cut short before it is ready).
SETTLED = ("complete", "failed", "fallout", "aborted", "rolled_back", "superseded", "interrupted")


def independent(n: int) -> list[dict[str, Any]]:
    """``n`` requests on disjoint resources: service ``load-I`` with two networks of its own."""
    return [{"services": {f"load-{i}": {"networks": [
        {"name": f"load-{i}-net-{side}", "params": {"cidr": f"10.{i // 250 + 1 + 100 * k}.{i % 250}.0/24"}}
        for k, side in enumerate("ab")]}}} for i in range(n)]


def resources(request: dict[str, Any]) -> list[str]:
    """The resources a request of :func:`independent` names."""
    return [name for name, svc in request["services"].items() for name in (name, *(n["name"] for n in svc["networks"]))]


@dataclass
class Post:
    """One POST /v1/runs: when it was sent (wall clock), how long it took, and its answer."""

    index: int
    sent: float
    seconds: float
    status: int | None          # None: no answer (the connection failed)
    run: int | None = None
    replayed: bool = False      # the Idempotency-Key named a run accepted earlier


def post_all(url: str, requests: list[dict[str, Any]], clients: int, indices: list[int] | None = None,
             accepted: threading.Semaphore | None = None, timeout: float = 120) -> list[Post]:
    """POST each request (``indices``: these of them) to /v1/runs from ``clients`` threads at once,
    with the Idempotency-Key ``load-I``; ``accepted`` is released once per 202."""
    local = threading.local()
    opened: list[httpx.Client] = []

    def one(i: int) -> Post:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=timeout)
            opened.append(local.client)
        sent, began = time.time(), time.perf_counter()
        try:
            answer = local.client.post("/v1/runs", json={"request": requests[i]},
                                       headers={"Idempotency-Key": f"load-{i}"})
        except httpx.TransportError:
            return Post(i, sent, time.perf_counter() - began, None)
        post = Post(i, sent, time.perf_counter() - began, answer.status_code,
                    answer.json()["id"] if answer.status_code == 202 else None,
                    answer.headers.get("Idempotent-Replayed") == "true")
        if post.run is not None and accepted is not None:
            accepted.release()
        return post

    try:
        with ThreadPoolExecutor(clients, thread_name_prefix="load-client") as pool:
            return list(pool.map(one, range(len(requests)) if indices is None else indices))
    finally:
        for client in opened:
            client.close()


def settled(url: str, runs: set[int], timeout: float) -> dict[int, dict[str, Any]]:
    """The views (GET /v1/runs) of ``runs`` once each is settled (or what they are at ``timeout``)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            views: dict[int, dict[str, Any]] = {}
            offset = 0
            while True:
                page = client.get("/v1/runs", params={"offset": offset, "limit": 500}).json()
                views.update({v["id"]: v for v in page["runs"] if v["id"] in runs})
                offset += len(page["runs"])
                if not page["runs"] or offset >= page["total"]:
                    break
            if all(views.get(r, {}).get("state") in SETTLED for r in runs) or time.monotonic() > deadline:
                return views
            time.sleep(0.25)


def ended_at(view: dict[str, Any]) -> float:
    """When the run's state last changed (its end, for a settled run), as a UNIX time."""
    return dt.datetime.fromisoformat(view["updated"].replace("Z", "+00:00")).timestamp()


@dataclass
class Effects:
    """What the simulated world applied for the requests: effects applied more than once (by
    their key, and by resource and operation), and requested resources not active."""

    applied: int
    twice: list[str]
    missing: list[str]


def effects(world: Path, requests: list[dict[str, Any]]) -> Effects:
    ledger = read_ledger(world)
    keys = collections.Counter(row["key"] for row in ledger)
    ops = collections.Counter((row["resource"], row["operation"]) for row in ledger)
    twice = sorted({k for k, n in keys.items() if n > 1} | {f"{r} {o}" for (r, o), n in ops.items() if n > 1})
    state = read_world(world)
    missing = [name for request in requests for name in resources(request)
               if state.get(name, {}).get("state") != "active"]
    return Effects(len(ledger), twice, missing)


def resumed(project: Path) -> list[int]:
    """The runs a restarted server resumed (read-only: the journal of a stopped server)."""
    db = sqlite3.connect(f"file:{project / '.ordo' / 'journal.db'}?mode=ro", uri=True)
    try:
        return [run for (run,) in db.execute("SELECT DISTINCT run FROM events WHERE kind='resumed' ORDER BY run")]
    finally:
        db.close()


def peak_kb(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM), in KiB, while it runs."""
    try:
        found = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


@dataclass
class Load:
    """What became of the requests: every POST (retries after a restart included), the views of
    the runs accepted once they settled, the world's effects, and each server's peak memory."""

    requests: list[dict[str, Any]]
    posts: list[Post]
    views: dict[int, dict[str, Any]]
    effects: Effects
    peaks_kb: list[int | None] = field(default_factory=list)

    def runs_of(self) -> dict[int, set[int]]:
        """Request index -> the runs its 202s named."""
        named: dict[int, set[int]] = collections.defaultdict(set)
        for post in self.posts:
            if post.run is not None:
                named[post.index].add(post.run)
        return named

    def problems(self) -> list[str]:
        """Why this is not "every request accepted once, every accepted run complete, every effect
        applied once" (empty when it is)."""
        named = self.runs_of()
        found = [f"request {i} was never accepted" for i in range(len(self.requests)) if i not in named]
        found += [f"request {i} started runs {sorted(runs)}" for i, runs in named.items() if len(runs) > 1]
        found += [f"run {run} is {self.views.get(run, {}).get('state')}" for runs in named.values() for run in runs
                  if self.views.get(run, {}).get("state") != "complete"]
        found += [f"applied more than once: {', '.join(self.effects.twice[:10])}"] if self.effects.twice else []
        found += [f"not active: {', '.join(self.effects.missing[:10])}"] if self.effects.missing else []
        return found


def run_load(project: Path, requests: list[dict[str, Any]], log: Path, *, clients: int, latency: float,
             kill_after: int | None = None, timeout: float = 600) -> Load:
    """``ordo serve`` on ``project`` as a process; every request POSTed from ``clients`` threads at
    once. With ``kill_after``, the server is killed with SIGKILL once that many were accepted, and
    started again; the requests that got no 202 are sent again with their Idempotency-Key.
    Returns once every accepted run settled (or ``timeout`` passed)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = process_server(project, port, log, latency=latency)
    peaks: list[int | None] = []
    try:
        if kill_after is None:
            posts = post_all(url, requests, clients)
        else:
            accepted = threading.Semaphore(0)
            with ThreadPoolExecutor(1) as background:
                first = background.submit(post_all, url, requests, clients, None, accepted)
                deadline = time.monotonic() + timeout
                for _ in range(kill_after):
                    if not accepted.acquire(timeout=max(0.0, deadline - time.monotonic())):
                        break
                peaks.append(peak_kb(server.pid))
                server.send_signal(signal.SIGKILL)
                server.wait(30)
                posts = first.result()
            server = process_server(project, port, log, latency=latency)
            posts += post_all(url, requests, clients, [p.index for p in posts if p.status != 202])
        views = settled(url, {p.run for p in posts if p.run is not None}, timeout)
        peaks.append(peak_kb(server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return Load(requests, posts, views, effects(project / ".ordo" / "simulated-world.db", requests), peaks)
