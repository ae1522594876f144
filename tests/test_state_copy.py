"""A long-lived process's copy of the journal's state (executor.journal.StateCopy, `ordo serve`):
each time the same as reading the journal whole, while reading only what was written since; all
again after a removal, or from another journal. On SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from domain.formats import ObservedResource
from executor.journal import Event, Journal, StateCopy
from executor.runs import load_with_journal
from planner.core import make_plan
from tests.conftest import run_ordo
from tests.test_slice import library_only


def _record(name: str, state: str = "active") -> ObservedResource:
    return ObservedResource(name=name, type="network", state=state)


def whole(jr: Journal) -> tuple[list[ObservedResource], list[str]]:
    records, texts = jr.state_json()
    return list(records.values()), texts


def counted(jr: Journal) -> list[tuple[int, int]]:
    """(seq asked from, records read) of each state_since call from here on."""
    calls: list[tuple[int, int]] = []
    real = jr.state_since

    def state_since(seq, texts=None):
        out = real(seq, texts)
        calls.append((seq, len(out[0])))
        return out

    jr.state_since = state_since
    return calls


def test_a_copy_is_the_state_read_whole_and_reads_only_what_changed(journal_url: str) -> None:
    copy = StateCopy()
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "a.yaml", {}, claims=["a"])
        jr.append(run, [Event("result", op="a/create")], state={n: _record(n) for n in ("a", "b", "c")})
        calls = counted(jr)
        assert copy.observed(jr) == whole(jr)
        assert calls == [(-1, 3)]
        assert copy.observed(jr) == whole(jr)   # nothing written since: nothing read
        assert calls[-1][1] == 0
        jr.append(run, [Event("result", op="b/update")], state={"b": _record("b", "assigned"),
                                                                 "d": _record("d")})
        assert copy.observed(jr) == whole(jr)
        assert calls[-1][1] == 2   # b and d, not a and c
        jr.append(run, [Event("result", op="a/delete")], state={"a": None})   # a removal: read whole again
        assert copy.observed(jr) == whole(jr)
        assert calls[-1] == (-1, 3) and [r.name for r in copy.observed(jr)[0]] == ["b", "c", "d"]


def test_a_copy_of_another_journal_is_read_whole(tmp_path: Path) -> None:
    copy = StateCopy()
    first, second = tmp_path / "one" / "journal.db", tmp_path / "two" / "journal.db"
    for path, names in ((first, ("a", "b")), (second, ("z",))):
        with Journal(path) as jr:
            run = jr.start_run("/p", "a.yaml", {}, claims=["a"])
            jr.append(run, [Event("result", op="x/create")], state={n: _record(n) for n in names})
    for path in (first, second, first):
        with Journal(path, create=False) as jr:
            assert copy.observed(jr) == whole(jr)


def test_a_plan_on_a_copy_is_the_plan_on_the_journal_read_whole(tmp_path: Path) -> None:
    """What `ordo serve` plans on: the same plan, also after a run changed the state."""
    root = tmp_path / "vfw"
    library_only(Path(__file__).resolve().parent.parent / "examples" / "vfw", root)
    copy = StateCopy()
    request = root / "requests" / "instantiate.yaml"

    def plans() -> tuple[str, str]:
        read = make_plan(load_with_journal(root, request, None, [], None)).plan.to_json()
        kept = make_plan(load_with_journal(root, request, None, [], None, copy)).plan.to_json()
        return read, kept

    read, kept = plans()   # no journal yet
    assert read == kept
    run = run_ordo("apply", "-C", root, request, "--auto-approve", "--simulation",
                   root / "simulations" / "smooth.yaml")
    assert run.code == 0, run.text
    read, kept = plans()
    assert read == kept and '"operations":[]' in read   # applied: nothing left to do, seen by both
    # the records a copy hands to every plan are never changed by one (what-if scenarios included)
    from executor.journal import Journal
    from planner.whatif import Scenario

    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        before = [r.model_dump_json() for r in copy.observed(jr)[0]]
    down = Scenario(targets_down=("region-one",))
    make_plan(down.apply(load_with_journal(root, root / "requests" / "delete.yaml", None, [], None, copy)))
    make_plan(load_with_journal(root, root / "requests" / "scale-out.yaml", None, [], None, copy))
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        assert [r.model_dump_json() for r in copy.observed(jr)[0]] == before


def test_a_record_written_while_the_copy_reads_is_read_then_or_next_time(journal_url: str) -> None:
    """A writer that commits between the copy's two statements (the records since, then the count and
    the last event) must not leave its record unread for good: both read one snapshot."""
    copy = StateCopy()
    with Journal(journal_url) as writer, Journal(journal_url, create=False) as reader:
        run = writer.start_run("/p", "a.yaml", {}, claims=["a"])
        writer.append(run, [Event("result", op="a/create")], state={n: _record(n) for n in "abc"})
        copy.observed(reader)
        real, fired = reader._store.execute, []

        def execute(sql, params=()):
            out = real(sql, params)
            if sql.startswith("SELECT resource, record FROM state WHERE seq>") and not fired:
                fired.append(1)   # between the two statements
                writer.append(run, [Event("result", op="b/update")], state={"b": _record("b", "assigned")})
            return out

        reader._store.execute = execute
        copy.observed(reader)
        reader._store.execute = real
        assert fired
        assert copy.observed(reader) == whole(reader)
        assert {r.name: r.state for r in copy.observed(reader)[0]}["b"] == "assigned"


def test_a_journal_put_back_from_a_backup_is_read_whole(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / ".ordo" / "journal.db"
    copy = StateCopy()
    with Journal(path) as jr:
        run = jr.start_run("/p", "a.yaml", {}, claims=["a"])
        jr.append(run, [Event("result", op="a/create")], state={n: _record(n) for n in "ab"})
    backup = tmp_path / "backup"
    shutil.copytree(path.parent, backup)
    with Journal(path, create=False) as jr:
        jr.append(run, [Event("result", op="b/update")], state={"b": _record("b", "assigned")})
        jr.append(run, [Event("result", op="a/update")], state={"a": _record("a", "assigned")})
        assert copy.observed(jr) == whole(jr)
    shutil.rmtree(path.parent)
    shutil.copytree(backup, path.parent)   # the same journal (its id), back in time
    with Journal(path, create=False) as jr:
        assert copy.observed(jr) == whole(jr)
        assert {r.state for r in copy.observed(jr)[0]} == {"active"}


def test_a_copys_digest_is_the_records_digest_worked_out_again_only_for_other_records(
        journal_url: str, monkeypatch) -> None:
    """``StateCopy.digest`` is observed_digest of what ``observed`` handed out: the same records
    (the same objects) reuse the last one, any record written since makes it anew."""
    import domain.project

    made: list[int] = []
    real = domain.project.observed_digest
    monkeypatch.setattr(domain.project, "observed_digest",
                        lambda records, texts: made.append(1) or real(records, texts))
    copy = StateCopy()
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "a.yaml", {}, claims=["a"])
        jr.append(run, [Event("result", op="a/create")], state={n: _record(n) for n in ("a", "b")})
        first = copy.digest(*copy.observed(jr))
        assert first == real(*whole(jr)) and len(made) == 1
        assert copy.digest(*copy.observed(jr)) == first and len(made) == 1   # nothing written since
        records, texts = whole(jr)   # equal records, but other objects: worked out again
        assert copy.digest(records, texts) == first and len(made) == 2
        jr.append(run, [Event("result", op="b/update")], state={"b": _record("b", "assigned")})
        second = copy.digest(*copy.observed(jr))
        assert second == real(*whole(jr)) != first and len(made) == 3
        jr.append(run, [Event("result", op="c/create")], state={"c": _record("c")})   # one more record
        assert copy.digest(*copy.observed(jr)) == real(*whole(jr)) and len(made) == 4
