"""bench_plan.py's results history: each run is compared with the last record
of the same machine, so a slowdown shows in the next run."""

import json

from benchmarks.bench_plan import Row, change_text, gap_text, previous_records

MACHINE = "Xeon x2, 23.5 GB"


def record(commit: str, machine: str, walls: dict[int, float], **more) -> str:
    return json.dumps({"commit": commit, "date": "2026-12-02", "machine": machine,
                       "rows": {str(n): {"status": "optimal", "ordo_wall": w} for n, w in walls.items()}, **more})


def test_each_size_is_compared_with_the_last_record_of_the_same_machine(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join([
        record("aaaaaaa", MACHINE, {1000: 1.0, 10000: 10.0}),
        record("bbbbbbb", MACHINE, {1000: 1.5}),
        record("ccccccc", "Epyc x64, 256 GB", {1000: 0.1, 10000: 0.5}),  # another machine: not comparable
        "{not json",
    ]) + "\n")
    previous = previous_records(history, MACHINE)
    assert (previous["1000"]["commit"], previous["10000"]["commit"]) == ("bbbbbbb", "aaaaaaa")
    row = Row(n=10000, ordo_wall=12.0, previous=previous["10000"])
    assert change_text(row) == "1.20x (aaaaaaa)"
    assert change_text(Row(n=100, ordo_wall=1.0, previous=previous.get("100"))) == "-"
    assert previous_records(tmp_path / "none.jsonl", MACHINE) == {}


def test_runs_with_a_warm_parse_cache_are_compared_with_their_own_kind(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join([
        record("aaaaaaa", MACHINE, {10000: 4.0}),                          # before the cache: cold
        record("bbbbbbb", MACHINE, {10000: 3.7}, parse_cache="warm"),
        record("ccccccc", MACHINE, {10000: 4.1}, parse_cache="cold"),
        record("ddddddd", MACHINE, {1000: 0.5}, parse_cache="warm"),
    ]) + "\n")
    assert previous_records(history, MACHINE)["10000"]["commit"] == "ccccccc"
    warm = previous_records(history, MACHINE, "warm")
    assert (warm["10000"]["commit"], warm["1000"]["commit"]) == ("bbbbbbb", "ddddddd")
    assert "1000" not in previous_records(history, MACHINE, "cold")


def test_gap_per_cost_level():
    assert gap_text([{"priority": 1, "cost": 13250}]) == "0"
    assert gap_text([{"priority": 2, "cost": 0, "bound": 0},
                     {"priority": 1, "cost": 75852, "bound": 66630}]) == "0@2 (0.0%), 9,222@1 (12.2%)"


def test_a_record_is_dirty_when_any_file_but_the_history_differs(tmp_path, monkeypatch):
    import subprocess

    from benchmarks import bench_plan

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "history.jsonl").write_text("")
    (tmp_path / "planner.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(bench_plan, "HERE", tmp_path / "benchmarks")
    (tmp_path / "benchmarks" / "history.jsonl").write_text("{}\n")   # a run before this one
    assert not bench_plan.commit().endswith("+dirty")
    (tmp_path / "planner.py").write_text("x = 2\n")   # outside benchmarks/: the measured code changed
    assert bench_plan.commit().endswith("+dirty")
