"""The policy files parsed, labelled and given their parameters once per thread (planner/program.py's
``CACHES``): a plan made again is the plan made afresh, byte for byte, without parsing; a changed
file, another place among the rules or other parameter values make it anew; a file clingo read
otherwise than the bytes hashed is not kept; no thread is handed another's statements."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from clingo import ast

from domain.errors import DiagnosticsError
from domain.project import POLICY_CACHE, load_project
from planner import lint, program
from planner.core import load_policies, make_plan
from tests.conftest import EXAMPLES


def _forget() -> None:
    for cache in (program.CACHES.parsed, program.CACHES.substituted, program.CACHES.words, lint._FACTS):
        cache.clear()


@pytest.fixture
def vfw(tmp_path):
    root = tmp_path / "vfw"
    shutil.copytree(EXAMPLES / "vfw", root, ignore=shutil.ignore_patterns(".ordo"))
    return root


def _labels_agree(prog: program.Program) -> None:
    """Each rule's index is its place in the list, and the number a labelled statement carries
    names a rule of its own file and line."""
    assert [rule.index for rule in prog.rules] == list(range(len(prog.rules)))
    found = 0
    for pfile in prog.files:
        for stm in pfile.statements:
            if stm.ast_type != ast.ASTType.Rule or stm.head.ast_type != ast.ASTType.Literal:
                continue
            atom = stm.head.atom
            if atom.ast_type != ast.ASTType.SymbolicAtom or atom.symbol.ast_type != ast.ASTType.Function:
                continue
            name, args = atom.symbol.name, atom.symbol.arguments
            if name in ("__violation", "__before"):
                rule = prog.rules[(args[0] if name == "__violation" else args[2]).symbol.number]
                assert (rule.file, rule.line) == (pfile.display, stm.location.begin.line), (rule, str(stm))
                found += 1
    assert found == len(prog.rules)


@pytest.mark.parametrize(("example", "request_file", "inventory"), [
    ("vfw", None, None), ("vfw", "requests/scale-out.yaml", "inventory-deployed.yaml"),
    ("vcpe", None, None)])
def test_a_plan_made_again_is_the_plan_made_afresh_without_parsing(example, request_file, inventory, monkeypatch):
    root = EXAMPLES / example
    _forget()
    fresh = make_plan(load_project(root, request_file and root / request_file, inventory and root / inventory))

    def parsed(*_args):
        raise AssertionError("a file was parsed again")

    monkeypatch.setattr(program, "_parse_new", parsed)
    again = make_plan(load_project(root, request_file and root / request_file, inventory and root / inventory))
    assert again.plan.to_json() == fresh.plan.to_json()
    assert [str(d) for d in again.warnings] == [str(d) for d in fresh.warnings]


def test_a_changed_file_is_parsed_again(vfw):
    _forget()
    before = make_plan(load_project(vfw))
    assert before.plan is not None
    (vfw / "policies" / "config-after-modules.lp").write_text(
        (vfw / "policies" / "config-after-modules.lp").read_text() + '\n:- place(R, "region-two").\n')
    after = make_plan(load_project(vfw))
    assert "region-two" in before.plan.placements.values()
    assert "region-two" not in after.plan.placements.values(), after.plan.placements


def test_a_file_among_other_rules_is_labelled_for_its_place(vfw):
    """The stock policies after fewer of them: each labelled rule carries its own index, cached or not."""
    _forget()
    for library in (["capacity", "anti-affinity", "protected-resources"], ["anti-affinity", "protected-resources"],
                    ["protected-resources"], ["capacity", "anti-affinity", "protected-resources"]):
        doc = yaml.safe_load((vfw / "ordo.yaml").read_text())
        doc["policies"]["library"] = library
        (vfw / "ordo.yaml").write_text(yaml.safe_dump(doc))
        _labels_agree(load_policies(load_project(vfw)))


def test_other_parameter_values_are_put_in_anew(vfw):
    """prefer-cheaper-region reads a price where the project says so, in the same process that read
    the default (cost) before: region-three is the cheapest by price."""
    _forget()
    for name in ("inventory.yaml", "inventory-deployed.yaml"):
        text = (vfw / name).read_text()
        for region, price in (("{ cost: 3 }", 7), ("{ cost: 1 }", 9), ("{ cost: 5 }", 2)):
            text = text.replace(region, region.replace(" }", f", price: {price} }}"))
        (vfw / name).write_text(text)
    by_cost = make_plan(load_project(vfw)).plan.placements
    doc = yaml.safe_load((vfw / "ordo.yaml").read_text())
    doc["policies"]["parameters"] = {"prefer-cheaper-region": {"cost_key": "price"}}
    (vfw / "ordo.yaml").write_text(yaml.safe_dump(doc))
    by_price = make_plan(load_project(vfw)).plan.placements
    assert by_cost["vfw"] == "region-two" and by_price["vfw"] == "region-three", (by_cost, by_price)
    doc["policies"]["parameters"] = {"prefer-cheaper-region": {"cost_key": "cost"}}
    (vfw / "ordo.yaml").write_text(yaml.safe_dump(doc))
    assert make_plan(load_project(vfw)).plan.placements == by_cost


def test_a_file_included_without_a_header_stays_part_of_its_includer_when_that_is_edited(vfw):
    """The included file is the includer's policy: its metadata is the includer's, parsed again or not
    (not a policy of the same name, which would be refused as taking it)."""
    _forget()
    doc = yaml.safe_load((vfw / "ordo.yaml").read_text())
    doc["policies"]["files"].append("policies/zones.lp")
    (vfw / "ordo.yaml").write_text(yaml.safe_dump(doc))
    (vfw / "policies" / "zones-extra.lp").write_text(':- place(R, "region-nowhere").\n')
    for region in ("region-four", "region-five", "region-five"):
        (vfw / "policies" / "zones.lp").write_text(
            f'%@ name: zones\n#include "zones-extra.lp".\n:- place(R, "{region}").\n')
        outcome = make_plan(load_project(vfw))
        assert outcome.plan is not None, outcome.explanation
        files = {f.display: f for f in load_policies(load_project(vfw)).files}
        assert files["policies/zones-extra.lp"].meta is files["policies/zones.lp"].meta


def test_a_file_clingo_read_otherwise_than_hashed_is_not_kept(vfw, monkeypatch):
    _forget()
    monkeypatch.setattr(program, "_unchanged", lambda path, raw: False)   # as if it changed while clingo read it
    prog = load_policies(load_project(vfw))
    assert prog.files and all(f.made_of == () for f in prog.files)
    assert not program.CACHES.parsed and not program.CACHES.substituted and not program.CACHES.words
    assert not lint._FACTS
    assert not list((vfw / POLICY_CACHE).glob("*.json"))


def _kept(root):
    return sorted((root / POLICY_CACHE).glob("*.json"))


def _not_walked(*_args):
    raise AssertionError("a policy file was walked again")


def test_the_next_command_reads_what_the_files_define_from_the_project_folder(vfw, monkeypatch):
    """What each file defines and reads is kept in .ordo/cache/policies: the next process (here: the
    caches of this one forgotten) reports the same, byte for byte, without walking a statement."""
    _forget()
    fresh = checked(vfw)
    assert len(_kept(vfw)) == len(load_policies(load_project(vfw)).files)
    _forget()
    monkeypatch.setattr(lint, "_file_facts", _not_walked)
    assert checked(vfw) == fresh
    assert make_plan(load_project(vfw)).plan is not None


def checked(root):
    return [str(d) for d in load_policies(load_project(root)).diagnostics]


def test_an_edited_file_is_walked_again_and_its_refusal_stands(vfw):
    """An entry kept for a file's old bytes never stands for its new ones: what the lint refuses in
    the edited file is refused, by every command that checks the policies."""
    _forget()
    checked(vfw)
    policy = vfw / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text() + "\nbefore(A, B) :- nowhere_defined(A, B).\n#script (python)\n"
                      "def f(): pass\n#end.\n")
    _forget()
    with pytest.raises(DiagnosticsError) as refused:
        load_policies(load_project(vfw))
    found = " ".join(str(d) for d in refused.value.diagnostics)
    assert "#script is not allowed" in found and "nowhere_defined/2" in found, found


@pytest.mark.parametrize("damage", [b"", b"{", b'{"parser": 1}', None, [1, 2], [[["x"]], [], [], [], [], []],
                                    [[[["x", "1"], [1, 1]]], [], [], [], [], []]])
def test_a_damaged_entry_is_walked_again_and_written_anew(vfw, damage, monkeypatch):
    _forget()
    fresh = checked(vfw)
    for entry in _kept(vfw):
        if isinstance(damage, bytes):
            entry.write_bytes(damage)
        else:   # the right parser and key, data of the wrong shape
            doc = json.loads(entry.read_text())
            entry.write_text(json.dumps({**doc, "data": damage}))
    walked = []
    monkeypatch.setattr(lint, "_file_facts", lambda statements: walked.append(1) or real_facts(statements))
    _forget()
    assert checked(vfw) == fresh
    assert len(walked) == len(_kept(vfw))
    _forget()
    walked.clear()
    assert checked(vfw) == fresh and not walked


real_facts = lint._file_facts


def test_another_planner_walks_again(vfw, monkeypatch):
    """An entry written by other planner code (another ordo, an edited lint) is not read."""
    _forget()
    fresh = checked(vfw)
    monkeypatch.setattr(lint, "_WALK_FINGERPRINT", "facts/another")
    walked = []
    monkeypatch.setattr(lint, "_file_facts", lambda statements: walked.append(1) or real_facts(statements))
    _forget()
    assert checked(vfw) == fresh and walked


def _deep(vfw) -> Path:
    """A project policy whose parse is cut short in one process (as a deeply nested term's is, at a
    depth that depends on the thread's stack), after which it reads what nothing defines and defines
    what the base library reserves."""
    doc = yaml.safe_load((vfw / "ordo.yaml").read_text())
    doc["policies"]["files"].append("policies/deep.lp")
    (vfw / "ordo.yaml").write_text(yaml.safe_dump(doc))
    policy = vfw / "policies" / "deep.lp"
    policy.write_text("%@ name: deep\nbefore(A, B) :- x(A, B, f(a)).\nrelocate(R) :- resource(R, _).\n")
    return policy


def test_a_file_whose_parse_was_cut_short_is_kept_nowhere(vfw, monkeypatch):
    """A parse that stopped part-way (an error) left fewer statements: their facts, kept, hid the
    refusals of the rest from the next command that parsed the file whole (a review's)."""
    policy = _deep(vfw)
    real = ast.parse_files

    def cut_short(files, callback, **kwargs):
        if files != [str(policy)]:
            return real(files, callback, **kwargs)
        seen = []

        def first_only(stm):
            seen.append(stm)
            if len(seen) > 2:
                raise RecursionError("maximum recursion depth exceeded")
            callback(stm)
        return real(files, first_only, **kwargs)

    monkeypatch.setattr(ast, "parse_files", cut_short)
    _forget()
    with pytest.raises(DiagnosticsError) as first:
        load_policies(load_project(vfw))
    assert "could not parse the file" in " ".join(str(d) for d in first.value.diagnostics)
    monkeypatch.setattr(ast, "parse_files", real)
    program.CACHES.parsed.clear()   # another thread (its own parses), the same process (the facts shared)
    with pytest.raises(DiagnosticsError) as again:
        load_policies(load_project(vfw))
    _forget()
    with pytest.raises(DiagnosticsError) as next_command:
        load_policies(load_project(vfw))
    for refused in (again, next_command):
        found = " ".join(str(d) for d in refused.value.diagnostics)
        assert "x/3" in found and "relocate/1" in found, found


def test_an_entry_of_another_count_of_statements_or_for_a_script_is_not_read(vfw):
    policy = _deep(vfw)
    _forget()
    with pytest.raises(DiagnosticsError):
        load_policies(load_project(vfw))
    policy.write_text(policy.read_text() + "#script (python)\ndef f(): pass\n#end.\n")
    _forget()
    with pytest.raises(DiagnosticsError):
        load_policies(load_project(vfw))
    for entry in _kept(vfw):   # every entry says: nothing defined, read or called
        doc = json.loads(entry.read_text())
        doc["data"]["facts"] = [[], [], [], [], [], []]
        entry.write_text(json.dumps(doc))
    _forget()
    with pytest.raises(DiagnosticsError) as refused:
        load_policies(load_project(vfw))
    assert "#script is not allowed" in " ".join(str(d) for d in refused.value.diagnostics)
    policy.write_text(policy.read_text().split("#script")[0] + "% again\n")   # (another key: new entries)
    _forget()
    with pytest.raises(DiagnosticsError):
        load_policies(load_project(vfw))
    for entry in _kept(vfw):   # nothing defined, read or called, in as many statements and one more
        doc = json.loads(entry.read_text())
        doc["data"] = {"statements": doc["data"]["statements"] + 1, "facts": [[], [], [], [], [], []]}
        entry.write_text(json.dumps(doc))
    _forget()
    with pytest.raises(DiagnosticsError) as refused:
        load_policies(load_project(vfw))
    assert "relocate/1" in " ".join(str(d) for d in refused.value.diagnostics)


def test_a_folder_that_cannot_be_written_leaves_the_cache_off(vfw):
    (vfw / ".ordo").mkdir()
    (vfw / ".ordo" / "cache").write_text("not a folder")
    _forget()
    fresh = checked(vfw)
    _forget()
    assert checked(vfw) == fresh
    assert (vfw / ".ordo" / "cache").read_text() == "not a folder"


def test_no_thread_is_handed_the_statements_another_parsed(vfw):
    _forget()
    mine = load_policies(load_project(vfw))
    theirs = {}

    def other() -> None:
        theirs["before"] = len(program.CACHES.parsed)
        theirs["program"] = load_policies(load_project(vfw))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert theirs["before"] == 0 and program.CACHES.parsed
    shared = {id(stm) for f in mine.files for stm in f.statements} & \
        {id(stm) for f in theirs["program"].files for stm in f.statements}
    assert not shared
