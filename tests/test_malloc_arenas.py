"""`ordo serve` and `ordo worker` keep to two glibc memory arenas: with one per thread, each keeping what
it once held, a server that had sent 20 streams of a 19 MB plan event kept 505 MB, with two 109 MB."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARENAS = '''
import ctypes, re, sys, tempfile, threading
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "limit":
    from domain.procs import limit_malloc_arenas
    print(limit_malloc_arenas(2))
libc = ctypes.CDLL("libc.so.6")
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    kept = [bytearray(200_000) for _ in range(50)]   # (beyond Python's own allocator: malloc's, in an arena)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as out:
    handle = ctypes.c_void_p(libc.fopen(out.name.encode(), b"w"))
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(len(re.findall(r'<heap nr="[0-9]+">', out.read())))
'''


def _arenas(*args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run([sys.executable, "-c", ARENAS, str(ROOT), *args], capture_output=True, text=True,
                          timeout=60, env=env, check=True)
    return done.stdout.split()


def test_the_processes_of_many_threads_keep_to_two_arenas_unless_the_operator_says_otherwise() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's arenas only")
    assert int(_arenas("no")[0]) > 2   # (eight threads that allocate at once: an arena each, or near)
    assert _arenas("limit") == ["True", "2"]
    assert _arenas("limit", env={"MALLOC_ARENA_MAX": "3", "PATH": "/usr/bin:/bin"}) == ["False", "3"]


def test_serve_and_worker_set_it_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import domain.procs
    from tests.conftest import run_ordo

    asked: list[int] = []
    monkeypatch.setattr(domain.procs, "limit_malloc_arenas", asked.append)
    assert run_ordo("serve", "--listen", "nowhere:port", "-C", ROOT / "examples" / "vfw").code != 0
    assert run_ordo("worker", "-C", ROOT / "examples" / "vfw", env={"ORDO_TEMPORAL": ""}).code != 0
    assert asked == [2, 2]
