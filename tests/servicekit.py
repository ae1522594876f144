"""Helpers for the service's tests: a real uvicorn server on a free loopback port, in this
process (on a thread) or as an `ordo serve` process, and a client that follows events."""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from executor.controllers.simulated import read_ledger
from service.server import Listen, Options, build
from tests.conftest import VFW, ordo_executable

INSTANTIATE = yaml.safe_load((VFW / "requests" / "instantiate.yaml").read_text())
#: A request disjoint from the vFW's: one network of another service.
LAB = {"services": {"lab": {"networks": [{"name": "lab-net", "params": {"cidr": "10.9.0.0/24"}}]}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scenario(project: Path, latency: float = 0.01, name: str = "sim.yaml") -> Path:
    path = project / name
    path.write_text(yaml.safe_dump({"seed": 1, "idempotent": False, "latency": latency}))
    return path


@contextmanager
def thread_server(project: Path, *, latency: float = 0.01, tokens: Path | None = None,
                  max_body: int | None = None, simulation: Path | None = None,
                  journal: Path | None = None) -> Iterator[str]:
    """``ordo serve`` in this process, on a thread: its base URL (``simulation``: a scenario
    file instead of one with this ``latency``; ``journal``: another than the project's)."""
    port = free_port()
    options = Options(project=project, listen=Listen("127.0.0.1", port), tokens=tokens, journal=journal,
                      simulation=simulation or scenario(project, latency), drain=10.0)
    if max_body is not None:
        options.max_body = max_body
    server, _ = build(options)
    server.config.log_level = "warning"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def process_server(project: Path, port: int, log: Path, *, latency: float, env: dict[str, str] | None = None,
                   args: tuple[str, ...] = ()) -> subprocess.Popen:
    """``ordo serve`` as a process of its own (to be killed); ``args``: more options."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDO_")}
    with log.open("ab") as out:
        proc = subprocess.Popen([ordo_executable(), "serve", "-C", str(project), "--listen", f"127.0.0.1:{port}",
                                 "--simulation", str(scenario(project, latency)), *args],
                                stdout=out, stderr=subprocess.STDOUT, env={**environ, **(env or {})})
    ready(port, lambda: proc.poll() is None, log)
    return proc


def ready(port: int, running: Callable[[], bool], log: Path, timeout: float = 60) -> None:
    """Once the server on ``port`` says it is ready (while ``running``; else its log fails the test).
    One client for the whole wait: each new one loads the system's certificates (a client a tenth of
    a second made some 2% of the suite's time)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as probe:
        while True:
            try:
                if probe.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert running(), log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def follow(client: httpx.Client, run: int, last: int | None = None, timeout: float = 60) -> list[dict[str, Any]]:
    """The run's events over Server-Sent Events, until the stream ends."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/v1/runs/{run}/events", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if fields:
                    data = json.loads(fields["data"])
                    assert int(fields["id"]) == data["seq"] and fields["event"] == data["kind"]
                    events.append(data)
                fields = {}
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
    return events


def wait_state(client: httpx.Client, run: int, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/v1/runs/{run}").json()
        if view["state"] in states:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def effects_once(world: Path) -> collections.Counter:
    """Each effect in the simulated ledger applied once: (resource, operation) -> count."""
    ledger = read_ledger(world)
    twice = [k for k, n in collections.Counter(row["key"] for row in ledger).items() if n > 1]
    assert not twice, twice
    applied = collections.Counter((row["resource"], row["operation"]) for row in ledger)
    assert applied and max(applied.values()) == 1, applied
    return applied
