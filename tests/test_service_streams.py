"""Event streams under load: liveness answered while every thread of the pool waits, streams bounded
(503 beyond MOST_STREAMS, a slot given back however a stream ends), and a batch of events sent in
one write (a hostile sweep: 200 clients that never read made /healthz wait 16 s, and each client that
left mid-batch made asyncio log a line per event)."""

from __future__ import annotations

import asyncio
import json
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


def _ended_run(events: list[Event]) -> SimpleNamespace:
    """An engine whose run 1 ended with these events."""
    return SimpleNamespace(
        events=lambda run, seq, limit: [e for e in events if e.seq > seq][:limit],
        event_sizes=lambda run, seq, limit: [(e.seq, len(json.dumps(e.data))) for e in events if e.seq > seq][:limit],
        run=lambda run: SimpleNamespace(effective_status="complete", options={}),
        driving=lambda run: False)


class _Reading:
    async def is_disconnected(self) -> bool:
        return False


def test_a_batch_of_events_is_sent_in_one_write() -> None:
    engine = _ended_run([Event("result", data={"n": i}, seq=i, run=1, at=0.0) for i in range(1, 1201)])

    async def chunks() -> list[bytes | str]:
        return [chunk async for chunk in service.app._stream(engine, _Reading(), 1, 0)]

    sent = b"".join(chunks := asyncio.run(chunks())).decode()
    assert len(chunks) == 3   # 500, 500, 200
    assert re.findall(r"^id: (\d+)$", sent, re.MULTILINE) == [str(i) for i in range(1, 1201)]
    assert sent.startswith('id: 1\nevent: result\ndata: {"at": ')


def test_streams_whose_clients_do_not_read_hold_no_more_than_the_budget(monkeypatch) -> None:
    """A plan event of 10,000 resources is 19 MB: 100 clients that followed such a run and read slowly
    held 6 GB of the server. Ten streams here whose clients take one piece and no more hold their
    batches within the budget; past STALL a waiting stream takes the share of one that stalled (which
    then ends), and a client that reads gets every event."""
    plan = {"operations": [{"id": f"r{i}/create", "after": [f"r{i - 1}/create"]} for i in range(40_000)]}
    events = [Event("run-started", seq=1, run=1, at=0.0), Event("plan", data={"plan": plan}, seq=2, run=1, at=0.0),
              *(Event("result", op=f"r{i}/create", seq=3 + i, run=1, at=0.0) for i in range(600))]
    size = len(json.dumps({"plan": plan}))   # about 1.4 MB
    monkeypatch.setattr(service.app, "STALL", 0.3)
    live: dict[int, int] = {}   # the batches built and not let go: id -> bytes

    class Batch(bytes):
        def __del__(self) -> None:
            live.pop(id(self), None)

    built = service.app._next_events

    def tracked(*args):
        data, seq = built(*args)
        data = Batch(data)
        live[id(data)] = len(data)
        return data, seq

    monkeypatch.setattr(service.app, "_next_events", tracked)
    budget = service.app._Budget(size * service.app.BUILD + 2 * size)
    engine = _ended_run(events)
    most = 0

    async def scenario() -> str:
        nonlocal most
        stalled = [service.app._stream(engine, _Reading(), 1, 1, budget) for _ in range(10)]
        firsts = [asyncio.ensure_future(anext(stream)) for stream in stalled]
        reader = asyncio.ensure_future(_read_all(service.app._stream(engine, _Reading(), 1, 0, budget)))
        while not reader.done():
            most = max(most, sum(live.values()))
            assert budget.held <= budget.most
            await asyncio.sleep(0.01)
        assert all(first.done() for first in firsts) or await asyncio.wait_for(asyncio.gather(*firsts), 10)
        nexts = [await anext(stream, None) for stream in stalled]
        for stream in stalled:
            await stream.aclose()
        # each took its share in turn and stalled; those whose share a waiting stream took end (the last
        # ones, which nobody waited for, carry on)
        assert nexts.count(None) >= 6 and all(piece is None or b"/create" in piece for piece in nexts)
        return reader.result()

    got = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert re.findall(r"^id: (\d+)$", got, re.MULTILINE) == [str(i) for i in range(1, 603)]
    assert most <= budget.most and budget.held == 0


async def _read_all(stream) -> str:
    return "".join([chunk.decode() if isinstance(chunk, bytes) else chunk async for chunk in stream])
