"""Journal backends for the tests: a throwaway PostgreSQL cluster and the ``journal_url`` fixture
that runs a test once on SQLite and once on PostgreSQL.

The cluster is made with the machine's ``initdb`` and ``pg_ctl`` (the ``postgresql`` package)
in a temporary folder, as the ``postgres`` user when the tests run as root (PostgreSQL refuses
to run as root), listening on 127.0.0.1 at a free port with its socket in that folder, and
stopped at the end of the session. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_server


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run it as ``postgres`` then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A cluster of this session: its URL without a database name."""
    bindir = _bindir()
    require_server("PostgreSQL", bindir is not None and (os.geteuid() != 0 or shutil.which("runuser") is not None),
                   "apt-get install postgresql")
    assert bindir is not None
    folder = Path(tempfile.mkdtemp(prefix="ordo-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                    "--no-sync", "-E", "UTF8"]), **run)
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60"]
    try:
        subprocess.run(_as_server_user([*ctl, "-o", options, "start"]), **run)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_server_user([*ctl, "-m", "fast", "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database in the session's cluster."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's journal is: a file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / ".ordo" / "journal.db")
    return request.getfixturevalue("postgres_url")


_OWNER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from executor.journal import Journal
jr = Journal(sys.argv[2])
args = json.loads(sys.argv[3])
run = jr.claim(args["resume"]).id if args.get("resume") else jr.start_run("/p", "owner", {}, claims=args.get("claims"))
print(run, flush=True)
time.sleep(120)
"""


class Owner:
    """Another process that starts a run in a journal (or takes one over to resume it) and
    carries it on until it is killed."""

    def __init__(self, where: str, *, claims: list[str] | None = None, resume: int | None = None) -> None:
        import json
        import sys

        root = str(Path(__file__).resolve().parent.parent)
        self.proc = subprocess.Popen([sys.executable, "-c", _OWNER, root, where,
                                      json.dumps({"claims": claims, "resume": resume})],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"the owner process did not start its run: {self.proc.stderr.read()}")
        self.run = int(line)

    def kill(self) -> None:
        """kill -9, and wait until it is gone."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether ``check`` comes true within ``timeout`` (a killed client's locks go once the server
    sees its connection closed, a moment after the kill)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
