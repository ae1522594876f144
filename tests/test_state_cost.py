"""The work a plan does for the resources a request leaves alone stays small and
does not grow with what it need not look at (issue 12, "proportional to the
change"; speed itself: benchmarks/bench_change.py): the cycle check, the
slice's checks of what is left out, the journal's records read with the
collector paused."""

from __future__ import annotations

import gc
import json
import random
import shutil
import sqlite3
from pathlib import Path

import networkx as nx
import pytest
import yaml

from benchmarks.bench_change import SMALL_REQUEST
from benchmarks.generate import write_project
from domain.errors import DiagnosticsError
from domain.formats import ObservedResource
from domain.model import _acyclic, observed_record
from domain.project import load_project, texts_digest
from executor.journal import Journal, JournalError
from executor.runs import load_with_journal
from planner.core import load_policies
from planner.slice import prune


@pytest.mark.parametrize("seed", range(40))
def test_the_cycle_check_agrees_with_networkx(seed: int) -> None:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(rng.randint(1, 30))]
    graph: dict[str, list[str]] = {}
    for _ in range(rng.randint(0, 45)):
        graph.setdefault(rng.choice(nodes), []).append(rng.choice(nodes))
    expected = nx.is_directed_acyclic_graph(nx.DiGraph([(a, b) for a, bs in graph.items() for b in bs]))
    assert _acyclic(graph) is expected


def test_the_cycle_check_walks_a_deep_chain_without_recursion() -> None:
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(20_000)}
    assert _acyclic(chain)
    chain["n20000"] = ["n0"]
    assert not _acyclic(chain)


def _applied(tmp_path: Path, n: int, extra: int) -> tuple[Path, list[ObservedResource]]:
    """generate.py's project of n resources, every one recorded as its final
    state (VNFs placed, each anti-affinity group in distinct zones), plus
    ``extra`` active networks of the first service that take no capacity and
    carry no label; its request is the small one."""
    root = tmp_path / "project"
    write_project(n, root)
    model = load_project(root).model
    zones: dict[str, int] = {}
    records = []
    for name, res in model.resources.items():
        kind = model.kinds[res.type]
        placement = None
        if kind.placement:
            group = str(res.labels.get("anti-affinity", name))
            placement = ("region-east", "region-west", "region-north", "region-south")[zones.get(group, 0)]
            zones[group] = zones.get(group, 0) + 1
        records.append(observed_record(res, kind.final, placement, {}))
    whole = next(r for r in model.resources.values() if r.type == "service").name
    records += [ObservedResource(name=f"extra-net-{i:05}", type="network", state="active", part_of=whole)
                for i in range(extra)]
    (root / "request.yaml").write_text(SMALL_REQUEST)
    return root, records


class _Counted(dict):
    """A model's resources that count the lookups of one resource by name."""

    lookups = 0

    def __getitem__(self, key: str):
        type(self).lookups += 1
        return super().__getitem__(key)


def _lookups(root: Path, records: list[ObservedResource]) -> tuple[int, int]:
    project = load_project(root, observed=records)
    program = load_policies(project)
    project.model.resources = _Counted(project.model.resources)
    _Counted.lookups = 0
    sliced = prune(program, project.model, project.enforcement, project.parameters)
    assert sliced is not None
    return _Counted.lookups, sliced.kept


def test_the_slice_looks_up_no_resource_it_leaves_alone_that_takes_nothing(tmp_path: Path) -> None:
    """Resources outside the slice that take no capacity, carry no anti-affinity
    label and have reached every milestone cost the slice one pass, no lookup:
    2,000 more of them change no count (before, each was looked up to locate it)."""
    root, records = _applied(tmp_path, 200, 2000)
    with_extra = _lookups(root, records)
    without = _lookups(root, [r for r in records if not r.name.startswith("extra-net-")])
    assert with_extra == without
    assert with_extra[1] == 5   # the 4 new resources and mgmt-net


def test_an_ordering_goal_broken_outside_the_slice_still_plans_the_whole_model(tmp_path: Path) -> None:
    """An active module that uses a network only assigned (both left alone): the
    slice cannot see it, so nothing is pruned and the full program explains it."""
    root, records = _applied(tmp_path, 60, 0)
    module = next(r for r in records if r.type == "vf-module" and r.uses and r.uses[0] != "mgmt-net")
    broken = [r.model_copy(update={"state": "assigned"}) if r.name == module.uses[0] else r for r in records]
    for state, pruned in ((records, True), (broken, False)):
        project = load_project(root, observed=state)
        sliced = prune(load_policies(project), project.model, project.enforcement, project.parameters)
        assert (sliced is not None) is pruned


def test_anti_affinity_broken_outside_the_slice_still_plans_the_whole_model(tmp_path: Path) -> None:
    root, records = _applied(tmp_path, 60, 0)
    group = next(r.labels["anti-affinity"] for r in records if "anti-affinity" in r.labels)
    broken = [r.model_copy(update={"placement": "region-west"}) if r.labels.get("anti-affinity") == group else r
              for r in records]
    project = load_project(root, observed=broken)
    assert prune(load_policies(project), project.model, project.enforcement, project.parameters) is None


def _journal_with(tmp_path: Path, records: list[ObservedResource]) -> Path:
    root = tmp_path / "journalled"
    write_project(10, root)
    (root / ".ordo").mkdir()
    with Journal(root / ".ordo" / "journal.db"):
        pass
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        db.executemany("INSERT INTO state (resource, record, run, seq) VALUES (?, ?, 0, 0)",
                       [(r.name, r.model_dump_json()) for r in records])
    return root


def test_the_journal_state_is_read_with_the_collector_paused(tmp_path: Path, monkeypatch) -> None:
    """Reading 10,000 records makes as many objects and frees none: with the
    collector running, its passes over them cost as much as the read."""
    record = ObservedResource(name="mgmt-net", type="network", state="active")
    root = _journal_with(tmp_path, [record])
    seen = []
    real = Journal.state_rows

    def state_rows(self: Journal) -> list[tuple[str, str]]:
        seen.append(gc.isenabled())
        return real(self)

    monkeypatch.setattr(Journal, "state_rows", state_rows)
    assert gc.isenabled()
    project = load_with_journal(root, None, None, [], None)
    assert seen == [False] and gc.isenabled()
    assert project.model.resources["mgmt-net"].observed


def test_a_damaged_record_is_still_named(tmp_path: Path) -> None:
    root = _journal_with(tmp_path, [ObservedResource(name="mgmt-net", type="network", state="active")])
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        db.execute("UPDATE state SET record = ? WHERE resource = 'mgmt-net'", ('{"name": "mgmt-net", "state": 3}',))
    with pytest.raises(JournalError, match="the record of 'mgmt-net' is damaged"):
        load_with_journal(root, None, None, [], None)
    assert gc.isenabled()


def test_too_much_capacity_in_the_state_is_still_reported(tmp_path: Path) -> None:
    """The totals are added up unsorted and walked in order only past the limit:
    the message still names the resource where the total first passes it."""
    root, records = _applied(tmp_path, 60, 0)
    vnfs = sorted(r.name for r in records if r.requires)
    big = {vnfs[1]: 600_000_000, vnfs[2]: 600_000_000}
    state = [r.model_copy(update={"requires": {"vcpu": big[r.name]}}) if r.name in big else r for r in records]
    with pytest.raises(DiagnosticsError) as caught:
        load_project(root, observed=state)
    [problem] = [d for d in caught.value.diagnostics if d.code == "range"]
    assert "more than 1,000,000,000 vcpu" in problem.summary


def test_the_slice_locates_a_deep_chain_of_parts_without_recursion(tmp_path: Path) -> None:
    """3,000 modules, each part of the next, under a placed VNF, all left alone:
    the slice finds where each is by walking up the chain, not by recursing
    (before: RecursionError when the deepest part came first)."""
    root = tmp_path / "deep"
    write_project(10, root)
    (root / "request.yaml").write_text(SMALL_REQUEST)
    inventory = yaml.safe_load((root / "inventory.yaml").read_text())
    inventory["targets"]["region-west"]["capacity"]["vcpu"] = 10_000
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    records = [ObservedResource(name="old-svc", type="service", state="active"),
               ObservedResource(name="old-vnf", type="vnf", state="active", part_of="old-svc",
                                placement="region-west", requires={"vcpu": 2})]
    parents = ["old-vnf", *(f"m{i:04}" for i in range(2999, 0, -1))]
    records += [ObservedResource(name=f"m{i:04}", type="vf-module", state="active", part_of=parent,
                                 requires={"vcpu": 1})
                for i, parent in zip(range(2999, -1, -1), parents, strict=True)]
    project = load_project(root, observed=records)
    sliced = prune(load_policies(project), project.model, project.enforcement, project.parameters)
    assert sliced is not None and sliced.kept == 5
    west = next(f for f in sliced.parts[0] if f.startswith('capacity("region-west","vcpu",'))
    assert west == f'capacity("region-west","vcpu",{10_000 - 2 - 3000}).'   # the chain's vcpu, located


def test_parts_find_the_wholes_of_a_deep_chain_without_recursion(tmp_path: Path, monkeypatch) -> None:
    """The same chain, its deepest module used by a new service: cut into
    parts (PART_MIN lowered), the part of that service holds the module and
    every whole above it (their location is the module's), the other part none."""
    import planner.slice as slicing
    from planner.core import make_plan

    root = tmp_path / "deep"
    write_project(10, root)
    request = yaml.safe_load(SMALL_REQUEST)
    request["resources"] += [{"name": "far-svc", "type": "service"},
                             {"name": "far-vnf", "type": "vnf", "part_of": "far-svc"},
                             {"name": "far-mod", "type": "vf-module", "part_of": "far-vnf", "uses": ["m0000"]}]
    (root / "request.yaml").write_text(yaml.safe_dump(request))
    records = [ObservedResource(name="old-svc", type="service", state="active"),
               ObservedResource(name="old-vnf", type="vnf", state="active", part_of="old-svc",
                                placement="region-west")]
    parents = ["old-vnf", *(f"m{i:04}" for i in range(2999, 0, -1))]
    records += [ObservedResource(name=f"m{i:04}", type="vf-module", state="active", part_of=parent)
                for i, parent in zip(range(2999, -1, -1), parents, strict=True)]
    monkeypatch.setattr(slicing, "PART_MIN", 1)
    monkeypatch.setattr(slicing, "PART_SIZE", 2)
    project = load_project(root, observed=records)
    sliced = prune(load_policies(project), project.model, project.enforcement, project.parameters)
    assert sliced is not None and len(sliced.parts) == 2
    far, new = sorted(sliced.parts, key=lambda facts: 'resource("far-mod","vf-module").' not in facts)
    assert {'resource("m0000","vf-module").', 'resource("m2999","vf-module").', 'resource("old-svc","service").',
            'placed("old-vnf","region-west").'} <= set(far)
    assert not any(f.startswith(('resource("m0', 'resource("m1', 'resource("m2', 'resource("old-')) for f in new)
    plan = make_plan(load_project(root, observed=records)).plan
    assert plan.status == "optimal" and plan.placements["far-vnf"]


def _records_of(tmp_path: Path) -> list[ObservedResource]:
    """generate.py's 10 resources, as a run records them at their goal, with outputs."""
    root, records = _applied(tmp_path, 10, 0)
    return [r.model_copy(update={"attributes": {"id": f"{r.name}-id", "mtu": 1500, "ok": True, "x": None}})
            for r in records]


def _planned(root: Path) -> tuple[dict, str]:
    """What the model makes of the journal's records (each resource's fields), and the plan's digest input."""
    from domain.project import JOURNAL_INPUT

    project = load_with_journal(root, None, None, [], None)
    return ({name: vars(res) | {"origin": str(res.origin)} for name, res in project.model.resources.items()},
            dict(project.inputs)[JOURNAL_INPUT])


def test_a_state_read_before_is_not_validated_again_and_makes_the_same_model(tmp_path: Path, monkeypatch) -> None:
    """The second command reading the same records parses them as JSON only (the entry the first left in
    .ordo/cache/state says this ordo validated these very texts): the same model and the same digest."""
    from executor import journal

    root = _journal_with(tmp_path, _records_of(tmp_path))
    validated = []
    real = Journal._records
    monkeypatch.setattr(Journal, "_records", lambda self, rows: validated.append(len(rows)) or real(self, rows))
    first = _planned(root)
    assert validated == [10] and len(list((root / journal.STATE_CACHE).glob("*.json"))) == 1
    assert _planned(root) == first and validated == [10]
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:   # a run writes a record: the state is read anew
        db.execute("UPDATE state SET record = replace(record, '\"mtu\":1500', '\"mtu\":9000') "
                   "WHERE resource = 'mgmt-net'")
    changed = _planned(root)
    assert validated == [10, 10] and changed[1] != first[1]
    assert changed[0]["mgmt-net"]["attributes"]["mtu"] == 9000
    assert _planned(root) == changed and validated == [10, 10]
    shutil.rmtree(root / ".ordo" / "cache")   # (always safe to delete)
    assert _planned(root) == changed and validated == [10, 10, 10]


@pytest.mark.parametrize("damage", ["text", "row name", "fingerprint", "journal"])
def test_a_state_damaged_since_it_was_read_is_validated_and_named(tmp_path: Path, damage: str) -> None:
    """The entry vouches for the texts it was made of and nothing else: a record damaged since, a row renamed
    under its text, an entry of another ordo or of another journal, and the records are read and checked."""
    from executor import journal

    root = _journal_with(tmp_path, _records_of(tmp_path))
    _planned(root)
    entry = next((root / journal.STATE_CACHE).glob("*.json"))
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        if damage == "text":
            db.execute("""UPDATE state SET record = replace(record, '"state":"active"', '"state":3')
                          WHERE resource = 'mgmt-net'""")
        elif damage == "row name":   # the same texts, in the same order: the row's name is checked
            db.execute("UPDATE state SET resource = 'mgmt-net2' WHERE resource = 'mgmt-net'")
    if damage in ("fingerprint", "journal"):
        kept = json.loads(entry.read_text())
        if damage == "fingerprint":
            kept["parser"] = "state/another"
        else:
            kept["data"]["journal"] = "another"
        for record in ("mgmt-net",):   # damaged in the journal, but the entry would vouch for it
            with sqlite3.connect(root / ".ordo" / "journal.db") as db:
                db.execute("UPDATE state SET record = ? WHERE resource = ?", ('{"name": "mgmt-net", "state": 3}',
                                                                             record))
        kept["sha256"] = texts_digest([t for _, t in Journal(root / ".ordo" / "journal.db").state_rows()])
        entry.write_text(json.dumps(kept))
    message = "is named 'mgmt-net'" if damage == "row name" else "the record of 'mgmt-net' is damaged"
    with pytest.raises(JournalError, match=message):
        load_with_journal(root, None, None, [], None)


def test_records_not_written_as_this_ordo_writes_them_are_read_whole_every_time(tmp_path: Path) -> None:
    """Texts another writer spaced otherwise: valid, and digested as the records write out (the digest is
    the same as theirs), but no entry is kept (the values of the JSON would not be the records')."""
    from executor import journal

    records = _records_of(tmp_path)
    root = _journal_with(tmp_path, records)
    expected = _planned(root)
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        db.executemany("UPDATE state SET record = ? WHERE resource = ?",
                       [(json.dumps(r.model_dump(mode="json"), indent=1), r.name) for r in records])
    shutil.rmtree(root / ".ordo" / "cache")
    assert _planned(root) == expected and _planned(root) == expected
    assert not (root / journal.STATE_CACHE).exists() or not list((root / journal.STATE_CACHE).glob("*.json"))


def test_a_damaged_row_that_hashes_as_the_empty_state_read_before_is_named(tmp_path: Path) -> None:
    """No text at all and one empty text join to the same text: the empty state's entry does not vouch
    for a row whose record is empty (it crashed: "this is a bug in ordo")."""
    root = _journal_with(tmp_path, [])
    load_with_journal(root, None, None, [], None)
    with sqlite3.connect(root / ".ordo" / "journal.db") as db:
        db.execute("INSERT INTO state (resource, record, run, seq) VALUES ('mgmt-net', '', 0, 0)")
    with pytest.raises(JournalError, match="the record of 'mgmt-net' is damaged"):
        load_with_journal(root, None, None, [], None)


def test_without_the_source_of_the_code_that_validates_records_nothing_is_kept(tmp_path: Path, monkeypatch) -> None:
    from executor import journal

    journal._state_fingerprint.cache_clear()
    monkeypatch.setattr("domain.formats.__file__", str(tmp_path / "gone.py"))
    try:
        root = _journal_with(tmp_path, _records_of(tmp_path))
        assert _planned(root) == _planned(root)
        assert not (root / journal.STATE_CACHE).exists()
    finally:
        journal._state_fingerprint.cache_clear()


@pytest.mark.parametrize("text", ['{"type": "network", "state": "active"}',
                                  ObservedResource(name="a", type="network", state="active").model_dump_json()[:-1]
                                  + ',"__class__":1}'])
def test_records_read_later_that_are_not_as_their_entry_said_are_read_and_named(tmp_path: Path, text: str) -> None:
    """A text without a name, or with a field no record has, vouched for by a (forged) entry: read as
    any state is, and named (the first crashed; the second was planned)."""
    from executor.journal import RecordsLater

    root = _journal_with(tmp_path, [])
    with Journal(root / ".ordo" / "journal.db") as jr:
        later = RecordsLater(jr, [("a", text)])
        assert len(later) == 1
        with pytest.raises(JournalError, match="the record of 'a' is damaged"):
            list(later)
