"""What a process may use of the machine within its container's cgroup limits
(planner/machine.py), read from fake cgroup trees of both versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import bounded, machine


def tree(root: Path, files: dict[str, str], proc: str) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "proc").write_text(proc)
    return root / "proc"


def test_version_2_in_a_container_namespace(tmp_path):
    proc = tree(tmp_path, {"cgroup.controllers": "cpu memory\n", "cpu.max": "150000 100000\n",
                           "memory.max": "2147483648\n"}, "0::/\n")
    assert machine.cpu_limit(tmp_path, proc) == 2   # 1.5 CPUs: two children may run, throttled
    assert machine.memory_limit_mb(tmp_path, proc) == 2048


def test_version_2_the_tightest_limit_above_the_process_counts(tmp_path):
    proc = tree(tmp_path, {"cgroup.controllers": "cpu memory\n",
                           "kubepods/pod1/cpu.max": "100000 100000\n", "kubepods/pod1/memory.max": "max\n",
                           "kubepods/pod1/c1/cpu.max": "max 100000\n", "kubepods/pod1/c1/memory.max": "536870912\n",
                           "kubepods/memory.max": "1073741824\n"},
                "0::/kubepods/pod1/c1\n")
    assert machine.cpu_limit(tmp_path, proc) == 1
    assert machine.memory_limit_mb(tmp_path, proc) == 512


def test_version_1_controllers_and_no_limit(tmp_path):
    proc = tree(tmp_path, {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
                           "memory/docker/abc/memory.limit_in_bytes": "9223372036854771712\n"},
                "12:memory:/docker/abc\n4:cpu,cpuacct:/\n")
    assert machine.cpu_limit(tmp_path, proc) is None
    assert machine.memory_limit_mb(tmp_path, proc) is None
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "memory" / "docker" / "memory.limit_in_bytes").write_text("3221225472\n")
    assert machine.cpu_limit(tmp_path, proc) == 3
    assert machine.memory_limit_mb(tmp_path, proc) == 3072


@pytest.mark.parametrize("files, proc", [
    ({}, "0::/\n"),                                                   # no cgroup files at all
    ({"cgroup.controllers": "", "cpu.max": "garbage\n", "memory.max": "-5\n"}, "0::/\n"),
    ({"cgroup.controllers": "", "cpu.max": "0 100000\n"}, "0::/../../etc\n"),   # a path out of the mount
])
def test_what_cannot_be_read_is_no_limit(tmp_path, files, proc):
    proc_file = tree(tmp_path, files, proc)
    assert machine.cpu_limit(tmp_path, proc_file) is None
    assert machine.memory_limit_mb(tmp_path, proc_file) is None
    assert machine.cpu_limit(tmp_path, tmp_path / "no-such-file") is None


def test_planning_children_and_their_memory_follow_the_container(tmp_path, monkeypatch):
    proc = tree(tmp_path, {"cgroup.controllers": "", "cpu.max": "50000 100000\n", "memory.max": "1073741824\n"},
                "0::/\n")
    monkeypatch.setattr(machine, "CGROUP", tmp_path)
    monkeypatch.setattr(machine, "PROC_CGROUP", proc)
    assert machine.cpus() == 1
    assert machine.memory_mb() == 1024
    assert bounded.default_memory_mb() == 512   # half of what the container may use, not of the machine
