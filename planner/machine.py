"""What this process may use of the machine: CPUs and memory, within its container's limits.

A container's CPU and memory limits are cgroup settings, not what the machine
has: in a pod limited to 1 CPU and 2 GB on a node of 64 cores and 256 GB,
``os.sched_getaffinity`` counts 64 CPUs and the physical memory is 256 GB.
Planning children (planner/bounded.py) and sweep workers (executor/sweeps.py)
are counted from what is read here, so that they do not oversubscribe the CPUs
the container is throttled to, and a child's memory cap stays within the
container's: past it the kernel's OOM killer ends the child (or ordo) with no
message, where the cap ends a runaway grounding naming the policy.

Read from ``/proc/self/cgroup`` and the cgroup file system: the version 2
hierarchy (``cpu.max``, ``memory.max``) and version 1 controllers
(``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, ``memory.limit_in_bytes``),
the process's own cgroup and every one above it, the tightest limit counting.
Where none can be read (another system, no cgroup file system), there is no
limit but the machine's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
#: A version 1 memory limit at or above this is "none" (the kernel writes 2^63 rounded to a page).
NO_LIMIT = 2**60


def cpus() -> int:
    """The CPUs this process may run on, no more than its cgroups' CPU quota allows (rounded up)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cpu_limit()
    return max(1, min(count, quota) if quota is not None else count)


def memory_mb() -> int | None:
    """The machine's memory in MB, no more than its cgroups' memory limit; None if unknown."""
    try:
        physical: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):
        physical = None
    limit = memory_limit_mb()
    known = [m for m in (physical, limit) if m is not None]
    return min(known) if known else None


def cpu_limit(root: Path | None = None, proc: Path | None = None) -> int | None:
    """The tightest CPU quota of this process's cgroups, in CPUs rounded up; None without one."""
    quotas = [q for folder in _folders("cpu", root, proc) if (q := _cpu_quota(folder)) is not None]
    return min(quotas) if quotas else None


def memory_limit_mb(root: Path | None = None, proc: Path | None = None) -> int | None:
    """The tightest memory limit of this process's cgroups, in MB; None without one."""
    limits = [m for folder in _folders("memory", root, proc) if (m := _memory_limit(folder)) is not None]
    return min(limits) if limits else None


def _cpu_quota(folder: Path) -> int | None:
    text = _read(folder / "cpu.max")   # version 2: "max 100000", or "150000 100000" (quota, period)
    if text is not None:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max" and _positive(parts[0]) and _positive(parts[1]):
            return max(1, math.ceil(int(parts[0]) / int(parts[1])))
        return None
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")   # version 1; -1: none
    if quota is not None and period is not None and _positive(quota) and _positive(period):
        return max(1, math.ceil(int(quota) / int(period)))
    return None


def _memory_limit(folder: Path) -> int | None:
    text = _read(folder / "memory.max")   # version 2: "max", or bytes
    if text is None:
        text = _read(folder / "memory.limit_in_bytes")   # version 1: bytes, a huge number for none
    if text is None or not _positive(text) or int(text) >= NO_LIMIT:
        return None
    return max(1, int(text) // 2**20)


def _folders(controller: str, root: Path | None, proc: Path | None) -> list[Path]:
    """This process's cgroup folders that may hold ``controller``'s limits, each
    with those above it up to its hierarchy's mount: the version 2 hierarchy's,
    and the version 1 controller's. A folder that is not there (a container's
    own cgroup namespace shows its root as /) stands for the mount itself."""
    root = CGROUP if root is None else root
    try:
        lines = (PROC_CGROUP if proc is None else proc).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found: list[Path] = []
    for line in lines:
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers:   # version 2
            mount = root if (root / "cgroup.controllers").exists() else root / "unified"
        elif controller in controllers.split(","):   # version 1: mounted by its controllers' names
            mount = root / controllers if (root / controllers).is_dir() else root / controller
        else:
            continue
        folder = Path(os.path.normpath(mount / path.strip().lstrip("/")))
        if not folder.is_dir() or not folder.is_relative_to(mount):
            folder = mount
        while True:
            found.append(folder)
            if folder == mount or folder.parent == folder:
                break
            folder = folder.parent
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _positive(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) > 0
