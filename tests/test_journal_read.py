"""Reading the journal's state for a plan: the records validated in one call, damaged ones still
named alone, and the plan's digest of them taken from the rows as stored when they are exactly the
records' JSON (its value unchanged, whatever form the rows were stored in)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from domain.errors import DiagnosticsError
from domain.formats import ObservedResource
from domain.project import load_project, observed_digest
from executor.journal import Journal, JournalError
from executor.runs import load_with_journal


def _records(n: int) -> list[ObservedResource]:
    return [ObservedResource(name=f"net-{i:03}", type="network", state="active", part_of="svc",
                             labels={"tier": i % 3, "zone": "é"}, attributes={"mtu": 1500.5, "ids": [i, None]},
                             requires={"ip": i}) for i in range(n)]


def _filled(url: str, records: list[ObservedResource]) -> Journal:
    jr = Journal(url)
    run = jr.start_run("/p", "r.yaml", {})
    jr.append(run, [], state={r.name: r for r in records}, status="complete")
    return jr


def _set_row(jr: Journal, name: str, text: str) -> None:
    jr._store.execute("UPDATE state SET record=? WHERE resource=?", (text, name))


def _defined_digest(records: list[ObservedResource]) -> str:
    """The digest of the records as a plan counts them (domain/project.py's definition)."""
    text = "\n".join(r.model_dump_json() for r in sorted(records, key=lambda r: r.name))
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_state_is_validated_in_one_call(journal_url: str, monkeypatch) -> None:
    records = _records(40)
    with _filled(journal_url, records) as jr:
        calls = []
        real = ObservedResource.model_validate_json.__func__
        monkeypatch.setattr(ObservedResource, "model_validate_json",
                            classmethod(lambda cls, *a, **k: calls.append(1) or real(cls, *a, **k)))
        state, stored = jr.state_json()
        assert calls == []   # before: one call per record
        assert state == {r.name: r for r in records}
        assert stored == [r.model_dump_json() for r in records]
        assert jr.state() == state


@pytest.mark.parametrize(("text", "said"), [
    ("not json", "Invalid JSON"),
    ("", "Invalid JSON"),
    ("[1]", "Input should be an object"),
    ('{"name": "net-017", "type": "network"}', "state: Field required"),
    ('{"name": "net-017", "type": "network", "state": "active", "extra": 1}', "extra: Extra inputs are not permitted"),
    ('{"name": "net-017", "type": "network", "state": "active"}, {"name": "x", "type": "t", "state": "s"}',
     "Invalid JSON"),
])
def test_a_damaged_record_among_many_is_named_as_when_read_alone(journal_url: str, text: str, said: str) -> None:
    with _filled(journal_url, _records(40)) as jr:
        _set_row(jr, "net-017", text)
        with pytest.raises(JournalError) as caught:
            jr.state()
        message = str(caught.value)
        assert "table state, the record of 'net-017' is damaged (" in message and said in message
        assert "`ordo state rm net-017` forgets it" in message


def test_a_record_named_other_than_its_row_is_damage(journal_url: str) -> None:
    """ordo writes each record under its own name. One under another's (written by hand) was read
    under its row, and the model took it for the resource it names: net-002 was gone from the plan's
    view (to be created again) and net-004 had two records. It is refused as damage, as a bad field is,
    and `ordo state rm` still forgets it."""
    records = _records(5)
    with _filled(journal_url, records) as jr:
        _set_row(jr, "net-002", records[4].model_dump_json())
        with pytest.raises(JournalError, match=r"table state, the record of 'net-002' is damaged \(it is named "
                                               r"'net-004'\); `ordo state rm net-002` forgets it"):
            jr.state()
        assert jr.forget(["net-002"]) == ["net-002"]
        assert list(jr.state()) == ["net-000", "net-001", "net-003", "net-004"]


def test_the_digest_of_canonical_rows_is_taken_from_them_without_writing_each_record(monkeypatch) -> None:
    records = _records(30)
    stored = [r.model_dump_json() for r in records]
    expected = _defined_digest(records)
    dumps = []
    real = ObservedResource.model_dump_json
    monkeypatch.setattr(ObservedResource, "model_dump_json", lambda self, **k: dumps.append(1) or real(self, **k))
    assert observed_digest(records, stored) == expected
    assert dumps == []   # before: one dump per record
    assert observed_digest(records) == expected
    assert len(dumps) == len(records)


@pytest.mark.parametrize("form", ["spaced", "reordered", "escaped", "short", "unsorted", "fewer"])
def test_the_digest_is_the_same_whatever_form_the_rows_were_stored_in(form: str) -> None:
    """Rows an older ordo may have written (spacing, key order, escapes, defaults left out), or not
    in name order: the digest is that of the records, as before."""
    records = _records(12)
    forms = {
        "spaced": lambda r: json.dumps(json.loads(r.model_dump_json()), indent=1),
        "reordered": lambda r: json.dumps(dict(reversed(json.loads(r.model_dump_json()).items()))),
        "escaped": lambda r: json.dumps(json.loads(r.model_dump_json()), ensure_ascii=True, separators=(",", ":")),
        "short": lambda r: r.model_dump_json(exclude_defaults=True),
    }
    ordered = records
    if form == "unsorted":
        ordered = list(reversed(records))
    stored = [forms.get(form, lambda r: r.model_dump_json())(r) for r in ordered]
    if form == "fewer":
        stored = stored[1:]
    assert [ObservedResource.model_validate_json(s) for s in stored] == ordered[1:] if form == "fewer" else ordered
    assert observed_digest(ordered, stored) == _defined_digest(records)


def _project(root: Path, request: str) -> Path:
    root.mkdir()
    (root / "catalog.yaml").write_text(
        "controllers: {c: {}}\n"
        "lifecycles: {l: {states: [absent, active], operations: {create: {from: absent, to: active}}}}\n"
        "types: {network: {lifecycle: l, controller: c}, service: {lifecycle: l, controller: c}}\n")
    (root / "inventory.yaml").write_text("resources: [{name: svc, type: service, state: active}]\n")
    (root / "request.yaml").write_text(request)
    (root / "ordo.yaml").write_text("catalog: [catalog.yaml]\ninventory: inventory.yaml\nrequest: request.yaml\n")
    return root


def test_a_plan_digest_counts_the_journal_as_before(tmp_path: Path) -> None:
    """load_with_journal hands the rows to the digest: the plan's input for the journal has the
    digest the records always had, stored canonically or not."""
    root = _project(tmp_path / "p", "resources: []\n")
    records = _records(20)
    with _filled(str(root / ".ordo" / "journal.db"), records) as jr:
        canonical = dict(load_with_journal(root, None, None, [], None).inputs)
        _set_row(jr, "net-003", json.dumps(json.loads(records[3].model_dump_json()), indent=2))
        spaced = dict(load_with_journal(root, None, None, [], None).inputs)
    direct = dict(load_project(root, observed=records, observed_name=".ordo/journal.db").inputs)
    assert canonical["<journal>"] == spaced["<journal>"] == direct["<journal>"] == _defined_digest(records)


def test_a_row_stored_as_bytes_is_read_and_counted_as_before(tmp_path: Path) -> None:
    """SQLite keeps what it was given: a row written as a BLOB (by hand, or another tool) reads back
    as bytes. It validates as before, and the digest is the records' (no TypeError joining rows)."""
    import sqlite3

    root = _project(tmp_path / "p", "resources: []\n")
    records = _records(5)
    _filled(str(root / ".ordo" / "journal.db"), records).close()
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        db.execute("UPDATE state SET record = CAST(record AS BLOB) WHERE resource = 'net-001'")
    project = load_with_journal(root, None, None, [], None)
    assert dict(project.inputs)["<journal>"] == _defined_digest(records)


def test_a_request_adding_to_a_recorded_resource_leaves_its_record_as_it_was(tmp_path: Path) -> None:
    """The model shares a journal record's requires and labels until a request adds to them."""
    root = _project(tmp_path / "p", "resources: [{name: net-001, type: network, requires: {vlan: 2}, "
                                    "labels: {tier: 1, zone: é}}]\n")
    records = _records(3)
    before = [r.model_copy(deep=True) for r in records]
    project = load_project(root, observed=records)
    assert project.model.resources["net-001"].requires == {"ip": 1, "vlan": 2}
    assert records == before
    assert records[1].requires == {"ip": 1}


@pytest.mark.parametrize("named", ["folder", "file"])
def test_the_project_file_is_read_once_with_the_journal(tmp_path: Path, monkeypatch, named: str) -> None:
    """load_with_journal finds the journal from the folder alone: ordo.yaml is read by load_project only."""
    import domain.project

    root = _project(tmp_path / "p", "resources: []\n")
    _filled(str(root / ".ordo" / "journal.db"), _records(3)).close()
    read, load_yaml = [], domain.project.load_yaml
    monkeypatch.setattr(domain.project, "load_yaml", lambda path, *a, **k: read.append(Path(path).name)
                        or load_yaml(path, *a, **k))
    project = load_with_journal(root if named == "folder" else root / "ordo.yaml", None, None, [], None)
    assert read.count("ordo.yaml") == 1 and {"net-000", "net-001", "net-002"} <= set(project.model.resources)


def test_a_journal_gone_under_a_read_says_how_the_run_is_carried_on(vfw_copy: Path, monkeypatch) -> None:
    """A write the database cut short named the run and `ordo resume`; a read (the look for an abort
    between calls) said only 'cannot read the journal' (the Temporal/PostgreSQL sweep of 6 December)."""
    from domain.project import load_project
    from executor import engine, runs
    from executor.journal import JournalLost
    from planner.core import make_plan

    project = load_project(vfw_copy)
    plan = make_plan(project).plan

    def gone(self, run: int) -> bool:
        raise JournalLost("postgresql://db/ordo: cannot read the journal: terminating connection due to "
                          "administrator command")

    monkeypatch.setattr(engine.Executor, "_aborted", gone)
    with pytest.raises(JournalLost) as caught:
        runs.execute(project, plan, engine.ApplyOptions(poll=0.0), vfw_copy / ".ordo" / "journal.db")
    assert str(caught.value).endswith("administrator command; run 1 stopped at its last recorded event: once the "
                                      "journal answers, `ordo resume 1`")


RUNS = (["history"], ["show", "1"], ["resume", "1"])


@pytest.mark.parametrize(("damage", "said", "refusing"), [
    ("UPDATE runs SET created = 1e300", "table runs, run 1 is damaged: its created is 1e+300", RUNS),
    ("UPDATE events SET at = -1e300 WHERE seq = 2", "table events, event 2 is damaged: its at is -1e+300",
     (["show", "1"],)),
    ("""UPDATE runs SET options = json_set(options, '$.concurrency', 'lots')""",
     "table runs, run 1 is damaged: its options hold concurrency 'lots'", RUNS),
    ("""UPDATE runs SET options = json_set(options, '$.engine', 'temporal')""",
     "table runs, run 1 is damaged: its options hold temporal None", RUNS),
    ("DELETE FROM meta", "the journal is damaged: table meta holds no id of the journal", RUNS + (["plan"],)),
    ("UPDATE state SET resource = NULL WHERE resource = 'vpg'", "table state is damaged: a row names no resource",
     (["plan"], ["state", "rm", "vpg"])),
])
def test_damage_a_command_could_not_show_is_named(vfw_copy: Path, damage: str, said: str,
                                                   refusing: tuple[list[str], ...]) -> None:
    """Rows edited by hand (a hostile sweep's): a time no date can show made `ordo history` and the
    service's list of runs fail with an internal error, options a resume or a stop takes as they are
    (a concurrency of 'lots', a Temporal run without its address), a journal without its id and a state
    row without its resource's name too."""
    import sqlite3

    from tests.conftest import run_ordo

    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy)).code == 0
    with sqlite3.connect(vfw_copy / ".ordo" / "journal.db") as db:
        db.execute(damage)
    for command in refusing:
        run = run_ordo(*command, "-C", str(vfw_copy))
        text = run.out + run.err
        assert run.code == 1 and said in text and "Traceback" not in text and "a bug in ordo" not in text, \
            (command, text)


def test_a_run_an_older_ordo_started_with_no_time_limit_is_listed(vfw_copy: Path) -> None:
    """`--op-timeout inf` was taken before its range was bounded: such a run's options are no damage."""
    import sqlite3

    from tests.conftest import run_ordo

    assert run_ordo("apply", "--auto-approve", "-C", str(vfw_copy)).code == 0
    with sqlite3.connect(vfw_copy / ".ordo" / "journal.db") as db:   # as Python's json wrote it: Infinity
        (options,) = db.execute("SELECT options FROM runs WHERE id = 1").fetchone()
        db.execute("UPDATE runs SET options = ?", (json.dumps({**json.loads(options), "default_timeout": 1e999}),))
    for command in (["history"], ["show", "1"]):
        run = run_ordo(*command, "-C", str(vfw_copy))
        assert run.code == 0, run.out + run.err
    from domain.limits import MOST_SECONDS
    from executor.runs import apply_options  # a resume takes it as the longest there is

    assert apply_options(None, None, None, None, None, stored={"default_timeout": 1e999}).default_timeout \
        == MOST_SECONDS



def test_a_name_a_delete_freed_is_taken_anew_under_another_whole_or_type(tmp_path: Path) -> None:
    """A resource deleted by a run (its record at its lifecycle's first state) kept its whole and type:
    re-created under another service, it was refused ("is part of 'old' in the inventory, not of
    'svc2'"), and its record's relations, labels and requirements stayed (the SO sweep of 6 December)."""
    root = _project(tmp_path / "p", "resources:\n- {name: svc2, type: service}\n"
                                    "- {name: net-1, type: network, part_of: svc2}\n"
                                    "- {name: old, type: network}\n")
    gone = [ObservedResource(name="net-1", type="network", state="absent", part_of="old", uses=["svc"],
                             requires={"ip": 4}, labels={"protected": True}, attributes={"id": "n-1"}),
            ObservedResource(name="old", type="service", state="absent")]
    model = load_project(root, observed=gone).model
    net, old = model.resources["net-1"], model.resources["old"]
    assert (net.part_of, net.relations, net.requires, net.labels, net.attributes) == ("svc2", set(), {}, {}, {})
    assert (old.type, old.current, old.desired) == ("network", "absent", "active")
    # asked for as it was (a rollback's request re-creates what the run deleted): its record's, as before
    again = _project(tmp_path / "again", "resources:\n- {name: old, type: service}\n"
                                         "- {name: net-1, type: network, part_of: old}\n")
    net = load_project(again, observed=gone).model.resources["net-1"]
    assert (net.part_of, net.relations, net.requires, net.labels) == ("old", {("uses", "svc")}, {"ip": 4},
                                                                      {"protected": True})
    # one that is there is still its record's: its whole and type are not the request's to change
    there = [gone[0].model_copy(update={"state": "active"}), gone[1]]
    with pytest.raises(DiagnosticsError, match="'net-1' is part of 'old' in the inventory, not of 'svc2'"):
        load_project(root, observed=there)


def test_a_record_related_to_a_resource_not_recorded_yet_does_not_stop_other_plans(vfw_copy: Path) -> None:
    """A run under way assigns a VF module before the network it uses (their milestones allow it):
    the module's record names a network the journal does not hold yet. Every other plan made meanwhile
    was refused 'unknown resource', naming that run's resources (a sweep of the service's, 1 in 300
    requests). The relation is left out of a plan that does not name the network."""
    from domain.formats import ObservedResource
    from executor.journal import Event, Journal
    from tests.conftest import run_ordo

    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(vfw_copy), "other.yaml", {}, claims=["other-mod"])
        module = ObservedResource(name="other-mod", type="vf-module", state="assigned", uses=["other-net"])
        jr.append(run, [Event("result", op="other-mod/assign")], state={"other-mod": module})
    planned = run_ordo("plan", "-C", vfw_copy)
    assert planned.code == 0 and "unknown resource" not in planned.text, planned.text
    assert run_ordo("plan", "-C", vfw_copy).code == 0   # (again: such a model is not kept, and read back)
    # once no run that may go on wrote it, the record's relation to a resource no one has is refused, as it was
    # (a resource removed with `ordo state rm` that a record still uses: a review's)
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        jr.append(run, [Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete"})
    refused = run_ordo("plan", "-C", vfw_copy)
    assert refused.code == 1 and "unknown resource 'other-net'" in refused.err, refused.text
