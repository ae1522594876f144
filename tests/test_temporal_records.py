"""A worker's copy of the journal's records: brought up to date with what was written since its last
read (Journal.state_since), and read again in full when some were removed meanwhile."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from domain.formats import ObservedResource
from executor.journal import Event, Journal


def _rec(name: str, state: str = "active") -> ObservedResource:
    return ObservedResource(name=name, type="network", state=state)


def test_only_the_records_written_since_are_read_and_a_removal_is_noticed(tmp_path: Path):
    pytest.importorskip("temporalio")
    from executor.temporal.activities import _refresh

    with Journal(tmp_path / "journal.db") as jr, Journal(tmp_path / "journal.db") as other:
        run = jr.start_run(str(tmp_path), "r", {})
        jr.append(run, [Event("result", op="a/create")], state={"a": _rec("a"), "b": _rec("b")})
        worker = SimpleNamespace(executor=SimpleNamespace(journal=jr, _records={}), seen=-1)
        _refresh(worker)
        assert sorted(worker.executor._records) == ["a", "b"]
        changed, count, last = jr.state_since(worker.seen)
        assert changed == {} and count == 2 and last == worker.seen
        other.append(run, [Event("result", op="c/create")], state={"c": _rec("c"), "a": _rec("a", "assigned")})
        assert set(jr.state_since(worker.seen)[0]) == {"a", "c"}   # another writer's, and only those
        _refresh(worker)
        assert worker.executor._records["a"].state == "assigned" and "c" in worker.executor._records
        other.append(run, [Event("result", op="b/delete")], state={"b": None})
        _refresh(worker)
        assert sorted(worker.executor._records) == ["a", "c"]       # removed elsewhere: read again in full
        assert worker.executor._records == jr.state()
