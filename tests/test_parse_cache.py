"""The parse cache (domain.yamlsrc.ParseCache): a large model file read again
gives the very data, model, plan and messages a fresh parse gives, without
parsing it; a changed file, another parser or a damaged entry is parsed
again; a folder that cannot be written leaves the cache off."""

from __future__ import annotations

import json
import pickle
import shutil
import stat

import pytest

from domain import yamlsrc
from domain.errors import DiagnosticsError
from domain.project import PARSE_CACHE, load_project
from planner.core import make_plan
from tests.conftest import EXAMPLES


@pytest.fixture
def vfw(tmp_path, monkeypatch):
    """A copy of examples/vfw, its files cached whatever their size."""
    monkeypatch.setattr(yamlsrc, "CACHE_MIN_BYTES", 0)
    root = tmp_path / "vfw"
    shutil.copytree(EXAMPLES / "vfw", root, ignore=shutil.ignore_patterns(".ordo"))
    return root


ARGS = ("requests/instantiate.yaml", "inventory.yaml")


def entries(root):
    """The cache's entries (a hash of the file's path, .json)."""
    return sorted(p for p in (root / PARSE_CACHE).glob("*.json") if len(p.stem) == 32 and p.stem.isalnum())


def composes(monkeypatch, root) -> list[str]:
    """The model files (catalog, inventory, request) parsed from here on."""
    files = {(root / name).read_text(): name for name in ("catalog.yaml", "inventory.yaml", ARGS[0])}
    calls: list[str] = []
    real = yamlsrc._compose
    monkeypatch.setattr(yamlsrc, "_compose", lambda text, *a: calls.extend(
        [files[text]] if text in files else []) or real(text, *a))
    return calls


def test_a_cached_file_gives_the_same_data_model_and_plan_unparsed(vfw, monkeypatch):
    fresh = load_project(vfw, *ARGS)
    assert len(entries(vfw)) == 3   # catalog, inventory, request (ordo.yaml is read before, uncached)
    fresh_plan = make_plan(fresh).plan.to_json()
    parsed = composes(monkeypatch, vfw)
    cached = load_project(vfw, *ARGS)
    cached_plan = make_plan(cached).plan.to_json()
    assert parsed == []   # loading and planning read no position of the cached files
    assert cached_plan == fresh_plan
    assert cached.inputs == fresh.inputs
    assert sorted(cached.model.resources) == sorted(fresh.model.resources)
    refs = 0
    for name, res in fresh.model.resources.items():   # a resource's line, found when first read
        assert cached.model.resources[name].origin == res.origin
        assert [(r.file, r.line, r.column) for r in cached.model.resources[name].refs] == \
            [(r.file, r.line, r.column) for r in res.refs]   # and a reference's (${vfw.outputs...})
        refs += len(res.refs)
    assert refs and all(line > 1 for r in fresh.model.resources.values() for line in [r.origin.line])
    assert sorted(parsed) == ["inventory.yaml", ARGS[0]]   # parsed for those lines


def test_the_cache_folder_is_private_and_kept_out_of_git(vfw):
    load_project(vfw, *ARGS)
    for folder in (vfw / ".ordo", vfw / ".ordo" / "cache", vfw / PARSE_CACHE):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (vfw / PARSE_CACHE / ".gitignore").read_text().endswith("*\n")


def test_a_changed_file_is_parsed_again_and_its_entry_replaced(vfw, monkeypatch):
    load_project(vfw, *ARGS)
    before = {p.name: p.read_bytes() for p in entries(vfw)}
    request = vfw / ARGS[0]
    request.write_text(request.read_text().replace("cidr: 192.168.20.0/24", "cidr: 192.168.30.0/24"))
    parsed = composes(monkeypatch, vfw)
    project = load_project(vfw, *ARGS)
    assert project.model.resources["protected-net"].params["cidr"] == "192.168.30.0/24"
    assert parsed == [ARGS[0]]
    after = {p.name: p.read_bytes() for p in entries(vfw)}
    assert after.keys() == before.keys()   # one entry per file: replaced, not added
    assert len([name for name in after if after[name] != before[name]]) == 1


@pytest.mark.parametrize("damage", [
    b"", b"{not json", b"[1, 2]", b'{"sha256": "x"}', b"\xff\xfe",
    "another parser", "another file's bytes"])
def test_a_damaged_or_foreign_entry_is_ignored_and_replaced(vfw, damage):
    fresh = load_project(vfw, *ARGS)
    for entry in entries(vfw):
        if isinstance(damage, bytes):
            entry.write_bytes(damage)
        else:
            body = json.loads(entry.read_text())
            body["parser" if damage == "another parser" else "sha256"] = "0" * 16
            body["data"] = {"resources": "not what the file says"}
            entry.write_text(json.dumps(body))
    again = load_project(vfw, *ARGS)
    assert make_plan(again).plan.to_json() == make_plan(fresh).plan.to_json()
    assert all(json.loads(e.read_text())["data"] != {"resources": "not what the file says"} for e in entries(vfw))


def test_a_message_about_a_cached_file_names_the_same_line(vfw):
    request = vfw / ARGS[0]
    request.write_text(request.read_text().replace("name: vsink\n", "name: vsink\n        kind: oops\n", 1))
    messages = []
    for _ in range(2):   # parsed, then from the cache
        with pytest.raises(DiagnosticsError) as caught:
            load_project(vfw, *ARGS)
        messages.append(str(caught.value))
    assert len(entries(vfw)) == 3
    assert messages[0] == messages[1]
    assert "requests/instantiate.yaml:" in messages[0] and "kind" in messages[0]


def test_a_folder_that_cannot_be_written_leaves_the_cache_off(vfw):
    (vfw / ".ordo").write_text("not a folder")
    project = load_project(vfw, *ARGS)
    assert make_plan(project).status == "optimal"
    assert (vfw / ".ordo").read_text() == "not a folder"


def test_a_model_loaded_from_the_cache_pickles_with_its_lines(vfw):
    load_project(vfw, *ARGS)
    cached = load_project(vfw, *ARGS)
    copy = pickle.loads(pickle.dumps(cached.model))   # as a fork server receives it
    assert {n: (r.origin.file, r.origin.line) for n, r in copy.resources.items()} == \
        {n: (r.origin.file, r.origin.line) for n, r in cached.model.resources.items()}
    assert copy.resources["vfw"].origin.line > 1


def test_small_files_are_not_cached(tmp_path):
    root = tmp_path / "vfw"
    shutil.copytree(EXAMPLES / "vfw", root, ignore=shutil.ignore_patterns(".ordo"))
    load_project(root, *ARGS)
    assert not (root / ".ordo").exists()


def test_text_only_pure_python_yaml_takes_gives_its_lines_from_the_cache(vfw, monkeypatch):
    """libyaml refuses a tab opening a block scalar's line, PyYAML takes it: finding a line in such a
    file from the cache parses it as the first load did."""
    request = vfw / ARGS[0]
    text = request.read_text().replace("name: vsink\n", "name: vsink\n        kind: oops\n", 1)
    request.write_text(text + "notes: |\n \ta tab first\n")
    messages = []
    for _ in range(2):
        with pytest.raises(DiagnosticsError) as caught:
            load_project(vfw, *ARGS)
        messages.append(str(caught.value))
    assert len(entries(vfw)) == 3 and messages[0] == messages[1] and "kind" in messages[0]


@pytest.mark.parametrize("blocked", [".ordo/cache/yaml", ".ordo/cache"])
def test_a_file_where_the_cache_folder_goes_leaves_the_cache_off(vfw, blocked):
    (vfw / blocked).parent.mkdir(parents=True, exist_ok=True)
    (vfw / blocked).write_text("in the way")
    assert make_plan(load_project(vfw, *ARGS)).status == "optimal"
    assert (vfw / blocked).read_text() == "in the way"


def test_a_model_from_the_cache_pickles_unparsed(vfw, monkeypatch):
    """As a fork server receives it: the lines are not looked up (the text goes along, once per file)."""
    load_project(vfw, *ARGS)
    cached = load_project(vfw, *ARGS)
    parsed = composes(monkeypatch, vfw)
    data = pickle.dumps(cached.model)
    copy = pickle.loads(data)
    assert parsed == []
    assert data.count((vfw / ARGS[0]).read_text()[:200].encode()) == 1
    assert [r.origin.line for r in copy.resources.values()] == [r.origin.line for r in cached.model.resources.values()]


def test_a_request_from_outside_the_project_or_in_its_ordo_folder_is_not_kept(vfw, tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((vfw / ARGS[0]).read_text())
    load_project(vfw, outside, ARGS[1])
    assert len(entries(vfw)) == 2   # the catalog and the inventory only
    kept = vfw / ".ordo" / "requests" / "r.yaml"   # where the service keeps the requests it accepted
    kept.parent.mkdir(parents=True)
    kept.write_text(outside.read_text())
    load_project(vfw, kept, ARGS[1])
    assert len(entries(vfw)) == 2


def test_old_entries_and_leftovers_are_removed_when_an_entry_is_written(vfw):
    import os
    import time

    load_project(vfw, *ARGS)
    leftover = vfw / PARSE_CACHE / ".tmp-killed_1.json"   # a writer killed between writing and renaming
    leftover.write_text("{")
    others = [vfw / PARSE_CACHE / name for name in ("notes.json", ".tmp-mine.json", "b" * 32 + ".json.bak")]
    for other in others:   # not named as the cache names its files: never removed (a folder shared by mistake)
        other.write_text("kept")
    month = time.time() - 31 * 86400
    for path in [*entries(vfw), leftover, *others]:
        os.utime(path, (month, month))
    request = vfw / ARGS[0]
    request.write_text(request.read_text() + "\n# changed\n")
    load_project(vfw, *ARGS)   # the request's entry written again: the month-old ones go
    assert not leftover.exists() and all(other.read_text() == "kept" for other in others)
    assert len(entries(vfw)) == 1 and entries(vfw)[0].stat().st_mtime > month + 86400
    load_project(vfw, *ARGS)
    assert len(entries(vfw)) == 3


def test_asking_a_cached_source_for_another_attribute_parses_nothing(vfw, monkeypatch):
    load_project(vfw, *ARGS)
    src = yamlsrc.load_yaml(vfw / ARGS[0], ARGS[0], cache=vfw / PARSE_CACHE)
    parsed = composes(monkeypatch, vfw)
    assert not hasattr(src, "something_else") and parsed == []
