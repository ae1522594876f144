"""What Linux's /proc says of a process, read alike wherever ordo asks (whether a run's owner
lives, whether a planning child's parent does, what a command controller's program left)."""

from __future__ import annotations


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the process's name (which may hold spaces and
    parentheses): the state first ("Z" a zombie), the process group third, the start time (clock
    ticks since boot) twentieth; None where /proc does not say (the process is gone, or another
    system)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].decode("ascii", "replace").split()
    except (OSError, IndexError):
        return None


def started(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, which no step of the wall clock moves), or None
    when it does not run (a zombie, ended but not reaped by its parent, does not) or /proc cannot say."""
    fields = stat_fields(pid)
    if fields is None or fields[0] == "Z" or len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


def boot_id() -> str | None:
    """This boot's id (Linux gives each boot a new one), or None where the system does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def booted_at() -> float | None:
    """When this boot began, on the wall clock (seconds since the epoch: /proc/stat's btime), or None
    where the system does not say."""
    try:
        with open("/proc/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


#: glibc's mallopt parameter for the most memory arenas (M_ARENA_MAX).
_M_ARENA_MAX = -8


def limit_malloc_arenas(most: int) -> bool:
    """At most ``most`` glibc memory arenas in this process from now on, unless MALLOC_ARENA_MAX says
    otherwise (the operator's word stands); whether it was set. A long-running process of many threads
    (``ordo serve``: the thread pool, a run per thread) got an arena per thread, each keeping what it
    once held: after 20 event streams of a 19 MB plan event the server kept 505 MB, with two 109 MB."""
    import ctypes
    import ctypes.util
    import os

    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # (not glibc: musl, macOS)
        return False
    return bool(mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(most)))
