"""Memory of ``ordo serve`` while clients follow a run with a large plan event (GET /v1/runs/N/events).

A journal is written with one ended run whose plan event is ``--ops`` operations (about 190 bytes of
JSON each: 100,000 make 19 MB, the plan event of a run of some 30,000 operations) and 2,000 small
events after it, in a copy of the vFW example in a new temporary folder; ``ordo serve`` (the
installed console script) runs on it as a process of its own. Three scenarios, each on a fresh
server:

1. **never read**: ``--clients`` connections ask for the run's events and read nothing (a small
   receive buffer); after ``--hold`` seconds one more client reads the whole stream.
2. **read slowly**: each client reads at full speed until ``--tail`` bytes of the plan event are
   left, then 64 KiB every 3 s (never 10 s without taking a piece).
3. **read all**: one client alone reads the whole stream (the time it takes, for comparison).

Figures: the server's resident memory (VmRSS) before, while the clients are connected (the most
seen, sampled every 0.5 s), after they are gone, and its peak (VmHWM); the time the reading client
took; the clients whose stream ended before the run's last event (cut). Traffic to 127.0.0.1 only.

Usage::

    .venv/bin/python benchmarks/bench_streams.py                       # 100,000 operations, 20 clients: about 2 minutes
    .venv/bin/python benchmarks/bench_streams.py --clients 60 --only never
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_apply import machine  # noqa: E402
from tables import fmt, text_table  # noqa: E402

from executor.journal import Event, Journal  # noqa: E402
from tests.servicekit import free_port  # noqa: E402

PIECE = 64 << 10


def write_journal(project: Path, ops: int) -> int:
    """A run that ended, with a plan event of ``ops`` operations and 2,000 results: its plan event's size."""
    (project / ".ordo").mkdir(exist_ok=True)
    with Journal(project / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(project), "requests/instantiate.yaml", {})
        plan = {"digest": "x" * 64, "operations": [
            {"id": f"res-{i}/create", "resource": f"res-{i}", "operation": "create", "type": "vnf",
             "controller": "c", "after": [f"res-{i - 1}/create"] if i else [], "params": {"name": f"res-{i}"}}
            for i in range(ops)]}
        jr.append(run, [Event("plan", data={"plan": plan})])
        jr.append(run, [Event("result", op=f"res-{i}/create", data={"status": "ok", "n": i}) for i in range(2000)])
        jr.append(run, [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"})
        size = len(jr._store.execute("SELECT data FROM events WHERE kind = 'plan'").fetchone()[0])
    return size


class Server:
    def __init__(self, project: Path, log: Path) -> None:
        self.port = free_port()
        ordo = Path(sys.executable).parent / "ordo"
        self.proc = subprocess.Popen([str(ordo), "serve", "-C", str(project), "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"ordo serve did not start: see {log}") from None
                time.sleep(0.1)
        self.seen = 0

    def memory(self) -> tuple[int, int]:
        """VmRSS and VmHWM, in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
                      if ":" in line)
        rss, hwm = (int(fields[name].split()[0]) // 1024 for name in ("VmRSS", "VmHWM"))
        self.seen = max(self.seen, rss)
        return rss, hwm

    def ask(self, rcvbuf: int | None = None) -> socket.socket:
        client = socket.socket()
        if rcvbuf is not None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        client.connect(("127.0.0.1", self.port))
        client.settimeout(600)
        client.sendall(f"GET /v1/runs/1/events HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        return client

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def read_all(client: socket.socket) -> tuple[int, bool]:
    """Bytes read until the stream ended, and whether it ended with the run's end."""
    got, tail = 0, b""
    while chunk := client.recv(1 << 20):
        got += len(chunk)
        tail = (tail + chunk)[-4096:]
        if tail.endswith(b"0\r\n\r\n"):   # (the chunked response's end)
            break
    return got, b"event: run-ended" in tail


def sample(server: Server, until: threading.Event) -> None:
    while not until.wait(0.5):
        server.memory()


def scenario(name: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    project = base / name
    shutil.copytree(ROOT / "examples" / "vfw", project, ignore=shutil.ignore_patterns(".ordo"))
    plan_bytes = write_journal(project, args.ops)
    server = Server(project, base / f"{name}.log")
    done = threading.Event()
    sampler = threading.Thread(target=sample, args=(server, done), daemon=True)
    try:
        before = server.memory()[0]
        sampler.start()
        cut = 0
        clients: list[socket.socket] = []
        threads: list[threading.Thread] = []
        if name == "never":
            clients = [server.ask(rcvbuf=4096) for _ in range(args.clients)]
            time.sleep(args.hold)
        elif name == "slowly":
            ended: list[bool] = []

            def slow() -> None:
                client = server.ask(rcvbuf=16384)
                got, tail = 0, b""
                while not done.is_set():   # (the scenario over: it leaves, not cut)
                    chunk = client.recv(PIECE if got > plan_bytes - args.tail else 1 << 20)
                    got += len(chunk)
                    tail = (tail + chunk)[-4096:]
                    if not chunk or tail.endswith(b"0\r\n\r\n"):   # the server ended the stream
                        ended.append(b"event: run-ended" in tail)
                        break
                    if got > plan_bytes - args.tail:
                        time.sleep(3)
                else:
                    ended.append(True)
                client.close()

            threads = [threading.Thread(target=slow, daemon=True) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            time.sleep(args.hold)
        began = time.monotonic()
        reader = server.ask()
        got, whole = read_all(reader)
        reading = time.monotonic() - began
        reader.close()
        during = server.seen
        for client in clients:
            client.close()
        done.set()
        for thread in threads:
            thread.join(10)
        if name == "slowly":
            cut = sum(not whole for whole in ended)
        time.sleep(3)
        after, peak = server.memory()
        return {"scenario": name, "clients": 0 if name == "all" else args.clients, "plan MB": plan_bytes / 2**20,
                "before MB": before, "during MB": during, "after MB": after, "peak MB": peak,
                "reader s": reading, "reader MB": got / 2**20, "reader whole": whole, "cut": cut}
    finally:
        done.set()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Memory of ordo serve while clients follow a large run.")
    parser.add_argument("--ops", type=int, default=100_000, help="operations in the plan event")
    parser.add_argument("--clients", type=int, default=20, help="clients following the run at once")
    parser.add_argument("--hold", type=float, default=30, help="seconds the clients hold their streams")
    parser.add_argument("--tail", type=int, default=8_000_000, help="bytes of the plan event read slowly")
    parser.add_argument("--only", default="never,slowly,all", help="scenarios, comma-separated")
    args = parser.parse_args(argv)
    print(machine(None))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ordo-bench-streams-") as base:
        for name in args.only.split(","):
            result = scenario(name, args, Path(base))
            rows.append([result["scenario"], str(result["clients"]), fmt(result["plan MB"], ".1f"),
                         str(result["before MB"]), str(result["during MB"]), str(result["after MB"]),
                         str(result["peak MB"]), fmt(result["reader s"], ".2f"),
                         "yes" if result["reader whole"] else "NO", str(result["cut"])])
    print(text_table(("scenario", "clients", "plan MB", "RSS before", "RSS during (most)", "RSS after", "peak",
                      "reader s", "reader whole", "cut"), rows))
    return 0 if all(row[8] == "yes" and row[9] == "0" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
