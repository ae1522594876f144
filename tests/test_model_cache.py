"""The model last built of a project's own files is kept in .ordo/cache/model and read back by the next
load of the very same inputs (domain/modelcache.py): the same model, the same plan byte for byte, and
anything that changes what the model is made of builds it anew."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import domain.project
from domain.errors import DiagnosticsError
from domain.modelcache import MODEL_CACHE, ModelCache
from domain.project import load_project
from executor.journal import Journal
from executor.runs import load_with_journal
from tests.conftest import run_ordo, run_ordo_process


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """Every project kept whatever its size; each build of a model counted."""
    monkeypatch.setattr(domain.project, "CACHE_MIN_BYTES", 0)
    builds: list[int] = []
    real = domain.project.build_model

    def build(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(domain.project, "build_model", build)
    return builds


def _plain(value):
    """A model's values, comparable: positions as (file, line), a document's text by its length."""
    import dataclasses

    from pydantic import BaseModel

    from domain.model import Origin
    from domain.yamlsrc import TextPositions, resolve

    if isinstance(value, Origin):
        return ("origin", value.file, value.line)
    if isinstance(value, TextPositions):
        return ("text", len(value.text))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], TextPositions):
        return ("at", resolve(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, BaseModel):
        return (type(value).__name__, value.model_dump())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(repr(_plain(v)) for v in value)
    return value


def _shape(project) -> tuple:
    return (_plain(project.model), project.inputs, project.request_file, project.request_path, project.inventory_file)


def test_the_second_build_of_the_same_inputs_is_kept_and_the_third_load_reads_it(vfw_copy: Path, counted):
    first = _shape(load_project(vfw_copy))
    entry = vfw_copy / MODEL_CACHE / "model-files.bin"   # (no journal)
    assert counted == [1] and entry.stat().st_size < 200   # the inputs' name only
    assert _shape(load_project(vfw_copy)) == first and counted == [1, 1] and entry.stat().st_size > 1000
    for _ in range(2):
        assert _shape(load_project(vfw_copy)) == first and counted == [1, 1]


def test_a_kept_model_plans_as_a_built_one_byte_for_byte(vfw_copy: Path, tmp_path: Path):
    """Whole processes at the default sizes: generate.py's 700 resources (72 KB of request)."""
    from benchmarks.generate import write_project

    root = tmp_path / "big"
    write_project(700, root)
    plans = [run_ordo("plan", "-C", root, "--format", "json").out for _ in range(3)]
    assert (root / MODEL_CACHE / "model-files.bin").stat().st_size > 100_000 and plans[0] == plans[1] == plans[2]
    shutil.rmtree(root / ".ordo" / "cache")   # always safe to delete
    assert run_ordo("plan", "-C", root, "--format", "json").out == plans[0]


def _record(journal: Path, network_id: str, name: str = "onap-mgmt-net") -> None:
    """The journal's record of the management network, with this output."""
    import sqlite3

    from domain.formats import ObservedResource

    record = ObservedResource(name=name, type="network", state="active",
                              attributes={"network_id": network_id})
    with Journal(journal):
        pass
    with sqlite3.connect(journal) as db:
        db.execute("INSERT INTO state (resource, record, run, seq) VALUES (?, ?, 0, 0) ON CONFLICT (resource) "
                   "DO UPDATE SET record = excluded.record", (record.name, record.model_dump_json()))


@pytest.mark.parametrize("change", ["request", "catalog", "inventory", "project file", "journal", "journal name"])
def test_whatever_the_model_is_made_of_changes_it_is_built_anew(vfw_copy: Path, counted, change: str):
    (vfw_copy / ".ordo").mkdir()
    journal = vfw_copy / ".ordo" / "journal.db"
    _record(journal, "net-1")
    for _ in range(3):
        before = _shape(load_with_journal(vfw_copy, None, None, [], None))
    assert counted == [1, 1]
    given = None
    if change == "request":
        (vfw_copy / "requests" / "instantiate.yaml").write_text(
            (vfw_copy / "requests" / "instantiate.yaml").read_text().replace("192.168.10.0/24", "10.1.0.0/24"))
    elif change == "catalog":
        (vfw_copy / "catalog.yaml").write_text((vfw_copy / "catalog.yaml").read_text() + "\n# edited\n")
    elif change == "inventory":
        (vfw_copy / "inventory.yaml").write_text((vfw_copy / "inventory.yaml").read_text() + "\n# edited\n")
    elif change == "project file":
        (vfw_copy / "ordo.yaml").write_text((vfw_copy / "ordo.yaml").read_text() + "\n# edited\n")
    elif change == "journal":
        _record(journal, "net-2")
    else:   # the same records, in a journal named otherwise (messages name it)
        given = vfw_copy / ".ordo" / "other.db"
        shutil.copy(journal, given)
    after = _shape(load_with_journal(vfw_copy, None, None, [], given))
    assert counted == [1, 1, 1]
    assert after != before or change in ("catalog", "inventory", "project file")   # (a comment: the same model)


def test_a_request_from_outside_the_project_is_never_kept(vfw_copy: Path, tmp_path: Path, counted):
    """It may hold secrets its owner keeps out of the project folder (as the parse cache)."""
    outside = tmp_path / "request.yaml"
    shutil.copy(vfw_copy / "requests" / "instantiate.yaml", outside)
    for _ in range(3):
        load_project(vfw_copy, outside)
    assert counted == [1, 1, 1] and not (vfw_copy / MODEL_CACHE).exists()


def test_a_load_with_problems_keeps_nothing_and_reports_every_one(vfw_copy: Path, counted):
    (vfw_copy / "requests" / "instantiate.yaml").write_text(
        (vfw_copy / "requests" / "instantiate.yaml").read_text().replace("uses: [unprotected-net,", "uses: [nowhere,"))
    (vfw_copy / "guards.yaml").write_text("guards: 3\n")
    for _ in range(2):
        with pytest.raises(DiagnosticsError) as failed:
            load_project(vfw_copy)
        files = {d.file for d in failed.value.diagnostics}
        assert any("instantiate.yaml" in f for f in files) and any("guards.yaml" in f for f in files)
    assert not (vfw_copy / MODEL_CACHE / "model-files.bin").exists() or \
        b"sha256" not in (vfw_copy / MODEL_CACHE / "model-files.bin").read_bytes()[:200]


def test_guards_and_policy_files_are_checked_on_every_load(vfw_copy: Path, counted):
    """They are no part of a kept model: a guard file broken after the model was kept is reported."""
    for _ in range(3):
        load_project(vfw_copy)
    (vfw_copy / "guards.yaml").write_text("guards: 3\n")
    with pytest.raises(DiagnosticsError, match="guards"):
        load_project(vfw_copy)
    assert counted == [1, 1]   # the model itself was read back


@pytest.mark.parametrize("damage", ["truncated", "flipped", "header", "another global", "a class changed"])
def test_a_damaged_or_forged_entry_is_ignored_and_written_again(vfw_copy: Path, counted, damage: str,
                                                                 tmp_path: Path):
    import hashlib

    from domain.model import Resource

    for _ in range(2):
        expected = _shape(load_project(vfw_copy))
    entry = vfw_copy / MODEL_CACHE / "model-files.bin"
    head, blob = entry.read_bytes().split(b"\n", 1)
    header = json.loads(head)
    marker = tmp_path / "ran"
    forged = {   # pickles that call a function, or set an attribute of a class (BUILD on the class)
        "another global": b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        "a class changed": b"cdomain.model\nResource\n(N}S'forged'\nI1\nstb.",
    }
    if damage == "truncated":
        entry.write_bytes(head + b"\n" + blob[:-10])
    elif damage == "flipped":
        entry.write_bytes(head + b"\n" + blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    elif damage == "header":
        entry.write_bytes(b"{not json\n" + blob)
    else:   # refused by the unpickler, even with a sha256 that matches
        header.update(sha256=hashlib.sha256(forged[damage]).hexdigest(), size=len(forged[damage]))
        entry.write_bytes(json.dumps(header).encode() + b"\n" + forged[damage])
        assert ModelCache(vfw_copy / MODEL_CACHE, recorded=False).get(header["key"]) is None
        assert not marker.exists() and "forged" not in vars(Resource)
    assert _shape(load_project(vfw_copy)) == expected and counted == [1, 1, 1]   # built, and written again
    again = [1] if damage == "header" else []   # (no header: the entry is noted anew, as at first)
    assert _shape(load_project(vfw_copy)) == expected and counted == [1, 1, 1, *again]
    assert _shape(load_project(vfw_copy)) == expected and counted == [1, 1, 1, *again]


def test_an_entry_that_sets_attributes_of_its_makers_changes_nothing(vfw_copy: Path, counted):
    """BUILD on the only things an entry can name (the makers): they read none of their attributes."""
    import hashlib

    from domain import modelcache

    for _ in range(2):
        expected = _shape(load_project(vfw_copy))
    entry = vfw_copy / MODEL_CACHE / "model-files.bin"
    head, _ = entry.read_bytes().split(b"\n", 1)
    header = json.loads(head)
    forged = b"cdomain.modelcache\n_make_model_Resource\n(N}S'__defaults__'\n(I1\ntstb."
    header.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    entry.write_bytes(json.dumps(header).encode() + b"\n" + forged)
    assert ModelCache(vfw_copy / MODEL_CACHE, recorded=False).get(header["key"]) is None   # (not a model)
    assert modelcache._make_model_Resource.__defaults__ == (1,)
    try:
        assert _shape(load_project(vfw_copy)) == expected
        assert _shape(load_project(vfw_copy)) == expected and counted == [1, 1, 1]
    finally:
        modelcache._make_model_Resource.__defaults__ = None


def test_a_file_changed_while_it_is_loaded_is_not_kept_under_its_old_bytes(vfw_copy: Path, counted, monkeypatch):
    """The model is kept only when the files it was built of are the bytes its name was made of."""
    request = vfw_copy / "requests" / "instantiate.yaml"
    original = request.read_text()
    real = domain.project._memo

    def memo(*args, **kwargs):
        found = real(*args, **kwargs)
        request.write_text(original.replace("192.168.10.0/24", "10.1.0.0/24"))   # after its name was made
        return found

    monkeypatch.setattr(domain.project, "_memo", memo)
    for _ in range(3):
        request.write_text(original)
        load_project(vfw_copy)
    monkeypatch.setattr(domain.project, "_memo", real)
    request.write_text(original)
    cidr = load_project(vfw_copy).model.resources["unprotected-net"].params["cidr"]
    assert cidr == "192.168.10.0/24"


def test_a_project_loaded_without_its_request_is_not_read_back_when_one_is_needed(vfw_copy: Path, counted):
    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text("\n".join(line for line in text.splitlines()
                                                  if not line.startswith("request:")) + "\n")
    for _ in range(3):
        load_project(vfw_copy, need_request=False)
    with pytest.raises(DiagnosticsError, match="no request given"):
        load_project(vfw_copy)


def test_commands_that_name_no_journal_or_a_missing_one_read_the_same_model(vfw_copy: Path, counted):
    """`ordo plan` names the project's journal (which does not exist), `ordo check` none: one model."""
    for _ in range(2):
        load_with_journal(vfw_copy, None, None, [], None)
    for _ in range(2):
        load_project(vfw_copy)
        load_with_journal(vfw_copy, None, None, [], None)
    assert counted == [1, 1]


@pytest.mark.parametrize("where", ["model", "state", "yaml"])
def test_a_fifo_in_place_of_an_entry_is_not_waited_on(tmp_path: Path, where: str):
    """A named pipe where an entry stands hung `ordo plan` for ever (an entry is opened without
    blocking, and only a regular file is read)."""
    import os

    from benchmarks.generate import write_project

    root = tmp_path / "big"
    write_project(700, root)
    if where == "state":   # a journal with a record: its state is read
        (root / ".ordo").mkdir()
        _record(root / ".ordo" / "journal.db", "net-1", "mgmt-net")
    expected = run_ordo("plan", "-C", root, "--format", "json").out
    run_ordo("plan", "-C", root, "--format", "json")
    folder = root / ".ordo" / "cache" / where
    for entry in [p for p in folder.iterdir() if p.name != ".gitignore"]:
        entry.unlink()
        os.mkfifo(entry)
    done = run_ordo_process("plan", "-C", root, "--format", "json", timeout=60)   # (a process: a hang ends)
    assert done.code == 0 and done.out == expected, done.err


def test_a_cache_folder_that_is_a_symbolic_link_is_not_followed(vfw_copy: Path, counted, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (vfw_copy / ".ordo").mkdir()
    (vfw_copy / ".ordo" / "cache").symlink_to(elsewhere)
    for _ in range(3):
        load_project(vfw_copy)
    assert counted == [1, 1, 1] and not list(elsewhere.iterdir())


def test_a_command_that_reads_no_journal_and_one_that_does_each_find_their_own(vfw_copy: Path, counted):
    """ordo check reads no journal, ordo plan does: taking turns, each reads back the model it kept."""
    (vfw_copy / ".ordo").mkdir()
    _record(vfw_copy / ".ordo" / "journal.db", "net-1")
    for _ in range(2):
        load_project(vfw_copy)
        load_with_journal(vfw_copy, None, None, [], None)
    for _ in range(3):
        load_project(vfw_copy)
        load_with_journal(vfw_copy, None, None, [], None)
    assert counted == [1, 1, 1, 1]


def test_a_model_too_large_to_keep_is_written_out_once(vfw_copy: Path, counted, monkeypatch):
    """Not again at every load of the same inputs (a pickle of 170,000 resources takes a second)."""
    from domain import modelcache

    monkeypatch.setattr(modelcache, "MOST_BYTES", 100)
    dumps = []
    real = modelcache._Pickler.dump
    monkeypatch.setattr(modelcache._Pickler, "dump", lambda self, obj: dumps.append(1) or real(self, obj))
    for _ in range(4):
        load_project(vfw_copy)
    assert counted == [1, 1, 1, 1] and dumps == [1]
