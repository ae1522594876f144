"""Event streams under load: liveness answered while every thread of the pool waits, streams bounded
(503 beyond MOST_STREAMS, a slot given back however a stream ends), a batch of small events sent in
one write (a hostile sweep: 200 clients that never read made /healthz wait 16 s, and each client that
left mid-batch made asyncio log a line per event), and the bytes all streams hold bounded by the
server's budget (a plan event of 10,000 resources is 19 MB: 100 clients reading slowly held 6 GB)."""

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
    held 6 GB of the server. Ten streams here whose clients take one piece, then stop, hold their
    batches within the budget (counted by the pieces alive: a review found the whole batch kept until
    its last piece was sent, while the budget counted what was left); past STALL a waiting stream takes
    the share of one that stalled; a client that reads gets every event, and a stalled one whose
    client reads again gets the rest of them, its batch made again, nothing twice and nothing left
    out (the stream was ended mid-event, and its client made to read that event again from its start)."""
    plan = {"operations": [{"id": f"r{i}/create", "after": [f"r{i - 1}/create"]} for i in range(40_000)]}
    events = [Event("run-started", seq=1, run=1, at=0.0), Event("plan", data={"plan": plan}, seq=2, run=1, at=0.0),
              *(Event("result", op=f"r{i}/create", seq=3 + i, run=1, at=0.0) for i in range(600))]
    size = len(json.dumps({"plan": plan}))   # about 1.4 MB
    monkeypatch.setattr(service.app, "STALL", 0.3)
    live: dict[int, int] = {}   # the pieces made and not let go: id -> bytes

    class Piece(bytes):
        def __del__(self) -> None:
            live.pop(id(self), None)

    made = service.app._next_events

    plans_made = []

    def tracked(*args):
        pieces, seq = made(*args)
        plans_made.extend([1] if args[2] == 1 else [])   # (a batch after run-started: the plan's)
        pieces = [Piece(piece) for piece in pieces]
        live.update((id(piece), len(piece)) for piece in pieces)
        return pieces, seq

    monkeypatch.setattr(service.app, "_next_events", tracked)
    budget = service.app._Budget(size * service.app.BUILD + 2 * size)
    engine = _ended_run(events)
    most = 0

    async def scenario() -> tuple[str, list[str]]:
        nonlocal most
        stalled = [service.app._stream(engine, _Reading(), 1, 1, budget) for _ in range(10)]   # (in the plan)
        firsts = [asyncio.ensure_future(anext(stream)) for stream in stalled]
        reader = asyncio.ensure_future(_read_all(service.app._stream(engine, _Reading(), 1, 0, budget)))
        while not reader.done():
            most = max(most, sum(live.values()))
            assert budget.held <= budget.most
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*firsts), 30)
        rests = [asyncio.ensure_future(_read_all(stream)) for stream in stalled]   # (their clients read again)
        while not all(rest.done() for rest in rests):
            most = max(most, sum(live.values()))
            await asyncio.sleep(0.01)
        return reader.result(), [_text(first.result()) + rest.result()
                                 for first, rest in zip(firsts, rests, strict=True)]

    got, others = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert re.findall(r"^id: (\d+)$", got, re.MULTILINE) == [str(i) for i in range(1, 603)]
    after_first = got[got.index("id: 2\n"):]
    assert others == [after_first] * 10 and len(plans_made) > 11   # (some of the stalled made it again)
    assert most <= budget.most and budget.held == 0


def _text(chunk: bytes | str) -> str:
    return chunk.decode() if isinstance(chunk, bytes) else chunk


async def _read_all(stream) -> str:
    return "".join([_text(chunk) async for chunk in stream])


def test_a_stream_that_waits_for_its_share_keeps_its_connection_alive(monkeypatch) -> None:
    """It waited in silence for as long as the streams before it held the budget (122 s in a review's
    trial), where a proxy cuts a connection silent for a minute."""
    monkeypatch.setattr(service.app, "KEEPALIVE", 0.2)
    engine = _ended_run([Event("run-started", seq=1, run=1, at=0.0)])
    budget = service.app._Budget(1000)
    blocker = service.app._Share()
    assert budget.hold(blocker, 1000, 0.0)   # (another stream's batch, whose client reads on)

    async def scenario() -> list[bytes | str]:
        stream = service.app._stream(engine, _Reading(), 1, 0, budget)
        first = await asyncio.wait_for(anext(stream), 5)
        budget.hold(blocker, 0, 0.0)
        return [first, *[chunk async for chunk in stream]]

    chunks = asyncio.run(scenario())
    assert chunks[0] == ": keep-alive\n\n" and _text(chunks[1]).startswith("id: 1\nevent: run-started\n"), chunks


def test_a_client_slower_than_a_piece_a_stall_gets_every_event_on_one_connection() -> None:
    """Its batch let go before each piece (others waiting), it is made again each time and sent on from
    where it was: a cap on the times (13b7e99) ended the stream mid-event, and the client, reconnecting
    from the event before, was ended again at the same place, for good (a review's)."""
    plan = {"operations": [{"id": f"r{i}/create"} for i in range(20_000)]}   # (several pieces)
    events = [Event("plan", data={"plan": plan}, seq=1, run=1, at=0.0), Event("run-ended", seq=2, run=1, at=0.0)]
    engine = _ended_run(events)
    budget = service.app._Budget()

    async def scenario() -> str:
        stream = service.app._stream(engine, _Reading(), 1, 0, budget)
        chunks = [await anext(stream)]
        while True:
            budget.drop_stalled(time.monotonic() + service.app.STALL)   # (others wait, this client stalled)
            chunk = await anext(stream, None)
            if chunk is None:
                return "".join(_text(c) for c in chunks)
            chunks.append(chunk)

    got = asyncio.run(scenario())
    whole = asyncio.run(_read_all(service.app._stream(engine, _Reading(), 1, 0, service.app._Budget())))
    assert got == whole and re.findall(r"^id: (\d+)$", got, re.MULTILINE) == ["1", "2"] and budget.held == 0
