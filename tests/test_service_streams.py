"""Event streams under load: liveness answered while every thread of the pool waits, streams bounded
(503 beyond MOST_STREAMS, a slot given back however a stream ends), and a batch of events sent in
one write (a hostile sweep: 200 clients that never read made /healthz wait 16 s, and each client that
left mid-batch made asyncio log a line per event)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

import service.app
from executor.journal import Event
from service.engine import LocalEngine
from tests.servicekit import INSTANTIATE, thread_server, wait_state


def _open_stream(url: str, run: int) -> socket.socket:
    """A client that asks for the run's events and reads nothing but the status line."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=30)
    client.sendall(f"GET /v1/runs/{run}/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return client


def _status(client: socket.socket) -> bytes:
    return client.recv(64).split(b"\r\n")[0]


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch):
    """Reading a run's events waits until released (a slow journal, a thread of the pool per stream)."""
    release = threading.Event()
    real = LocalEngine.events

    def events(self, *args, **kwargs):
        release.wait(60)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LocalEngine, "events", events)
    yield release
    release.set()


def _a_run(url: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        wait_state(api, run, ("complete",))
        return run


def test_liveness_is_answered_while_every_thread_of_the_pool_waits(vfw_copy: Path, monkeypatch, request) -> None:
    with thread_server(vfw_copy) as url:
        run = _a_run(url)
        release = request.getfixturevalue("stuck")
        clients = [_open_stream(url, run) for _ in range(45)]   # (the pool has 40 threads)
        try:
            time.sleep(1.0)
            started = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 2.0
        finally:
            release.set()
            for client in clients:
                client.close()


def test_streams_beyond_the_most_are_refused_and_their_slots_given_back(vfw_copy: Path, monkeypatch,
                                                                      request) -> None:
    monkeypatch.setattr(service.app, "MOST_STREAMS", 3)
    with thread_server(vfw_copy) as url:
        run = _a_run(url)
        release = request.getfixturevalue("stuck")
        clients = [_open_stream(url, run) for _ in range(3)]
        assert [_status(c) for c in clients] == [b"HTTP/1.1 200 OK"] * 3
        refused = httpx.get(f"{url}/v1/runs/{run}/events", timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "3 event streams are open" in refused.json()["detail"]
        release.set()
        for client in clients:
            client.close()
        deadline = time.monotonic() + 30
        while (answer := httpx.get(f"{url}/v1/runs/{run}/events", timeout=30)).status_code == 503:
            assert time.monotonic() < deadline, "the slots were not given back"
            time.sleep(0.2)
        assert answer.status_code == 200 and "event: run-ended" in answer.text


def test_a_slot_goes_with_a_stream_that_never_started() -> None:
    streams = service.app._Streams()
    slot = streams.take()
    held = service.app._held(slot, service.app._stream(None, None, 1, 0))
    assert streams.open == 1
    del slot, held
    assert streams.open == 0


def test_a_batch_of_events_is_sent_in_one_write() -> None:
    events = [Event("result", data={"n": i}, seq=i, run=1, at=0.0) for i in range(1, 1201)]
    engine = SimpleNamespace(
        events=lambda run, seq, limit: [e for e in events if e.seq > seq][:limit],
        run=lambda run: SimpleNamespace(effective_status="complete", options={}),
        driving=lambda run: False)

    class Request:
        async def is_disconnected(self) -> bool:
            return False

    async def chunks() -> list[str]:
        return [chunk async for chunk in service.app._stream(engine, Request(), 1, 0)]

    sent = asyncio.run(chunks())
    assert len(sent) == 3   # 500, 500, 200
    assert re.findall(r"^id: (\d+)$", "".join(sent), re.MULTILINE) == [str(i) for i in range(1, 1201)]
    assert sent[0].startswith('id: 1\nevent: result\ndata: {"at": ')
