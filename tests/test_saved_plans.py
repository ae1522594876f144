"""A saved plan is untrusted input: `ordo apply plan.json` carries out only
the plan ordo makes from the inputs (planner/verify.py), and every command
that reads a plan file refuses a malformed one, naming the file and the
field, without a traceback and without starting a run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import planner.core
import planner.plan
import planner.verify
from domain.errors import DiagnosticsError
from domain.project import load_project
from domain.yamlsrc import format_path
from executor.journal import Journal, default_path
from planner.core import Outcome
from planner.plan import CostLevel, Plan
from planner.verify import PlanRefused, verify_saved_plan
from tests.conftest import VFW, Run, run_ordo

Edit = Callable[[dict[str, Any]], None]


def ordo(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Run:
    """The CLI in this process, as `ordo ARGS` (conftest's run_ordo)."""
    return run_ordo(*args)


@pytest.fixture
def project(vfw_copy: Path, tmp_path: Path) -> Path:
    (tmp_path / "smooth.yaml").write_text(yaml.safe_dump({"seed": 1, "latency": 0}))
    return vfw_copy


def save(capsys: pytest.CaptureFixture[str], project: Path, name: str = "plan.json") -> Path:
    path = project.parent / name
    run = ordo(capsys, "plan", "-C", project, "--out", path)
    assert run.code == 0, run.text
    return path


def apply(capsys: pytest.CaptureFixture[str], project: Path, plan: Path) -> Run:
    return ordo(capsys, "apply", "-C", project, plan, "--auto-approve",
                "--simulation", project.parent / "smooth.yaml")


def edited(path: Path, edit: Edit, name: str = "edited.json") -> Path:
    data = json.loads(path.read_text())
    edit(data)
    out = path.parent / name
    out.write_text(json.dumps(data))
    return out


def op_of(data: dict[str, Any], op_id: str) -> dict[str, Any]:
    return next(op for op in data["operations"] if op["id"] == op_id)


def add_operation(data: dict[str, Any], resource: str, type_: str, operation: str, from_state: str,
                  to_state: str, controller: str, action: str = "delete") -> None:
    """Add an operation in the first wave, with its resource change, as a careful forger would."""
    op_id = f"{resource}/{operation}"
    data["operations"] = sorted([*data["operations"], {
        "id": op_id, "resource": resource, "type": type_, "operation": operation, "from_state": from_state,
        "to_state": to_state, "controller": controller, "duration": 1.0, "wave": 1,
        "reason": "requested: absent"}], key=lambda o: o["id"])
    if not data["waves"]:
        data["waves"] = [[]]
    data["waves"][0] = sorted([*data["waves"][0], op_id])
    data["resource_changes"] = sorted([*data["resource_changes"], {
        "resource": resource, "type": type_, "actions": [action], "before": from_state, "after": to_state,
        "placement": None, "operations": [op_id], "reason": "requested: absent"}], key=lambda c: c["resource"])


def delete_protected(data: dict[str, Any]) -> None:
    add_operation(data, "onap-mgmt-net", "network", "delete", "active", "absent", "openstack")


def remove_edge(data: dict[str, Any]) -> None:
    gone = ("vfw-base/activate", "vfw/config-deploy")  # config-after-modules.lp
    data["edges"] = [e for e in data["edges"] if (e["before"], e["after"]) != gone]


def move_vfw(data: dict[str, Any]) -> None:
    """vfw to region-three (allowed by every hard policy, but not the plan ordo makes)."""
    data["placements"]["vfw"] = "region-three"
    next(c for c in data["resource_changes"] if c["resource"] == "vfw")["placement"] = "region-three"


def unknown_operation(data: dict[str, Any]) -> None:
    add_operation(data, "onap-mgmt-net", "network", "reboot", "active", "active", "openstack", action="run")


def cycle(data: dict[str, Any]) -> None:
    first = data["edges"][0]
    data["edges"].append({"before": first["after"], "after": first["before"], "rules": []})


def wave_as_text(data: dict[str, Any]) -> None:
    data["operations"][0]["wave"] = str(data["operations"][0]["wave"])


def missing_edge_end(data: dict[str, Any]) -> None:
    data["edges"].append({"before": "vfw/create", "after": "ghost/create", "rules": []})


def future_version(data: dict[str, Any]) -> None:
    data["format_version"] = "9.0"


REFUSED_AT_VERIFY = {
    "delete-protected": (delete_protected, "operations: operation onap-mgmt-net/delete is not in the plan ordo "
                                           "makes from these inputs"),
    "removed-edge": (remove_edge, "precedence vfw-base/activate -> vfw/config-deploy is missing: the plan ordo "
                                  "makes from these inputs has it"),
    "moved-placement": (move_vfw, "the placement of vfw is 'region-three', the plan ordo makes from these "
                                  "inputs has 'region-two'"),
    "unknown-operation": (unknown_operation, "operations[0].operation: 'onap-mgmt-net' (type network) has no "
                                             "operation 'reboot'"),
}
REFUSED_AT_LOAD = {
    "cycle": (cycle, "edges: the edges form a cycle through"),
    "wrong-type": (wave_as_text, "operations[0].wave: Input should be a valid integer"),
    "unknown-edge-end": (missing_edge_end, "operation 'ghost/create' is not in the plan's operations"),
    "format-version": (future_version, "format_version '9.0' is not one ordo reads (expected 1.0 or 1.1 or 1.2)"),
}


@pytest.mark.parametrize("edit, message", [*REFUSED_AT_VERIFY.values(), *REFUSED_AT_LOAD.values()],
                         ids=[*REFUSED_AT_VERIFY, *REFUSED_AT_LOAD])
def test_an_edited_plan_is_refused_and_starts_no_run(project, capsys, edit, message):
    bad = edited(save(capsys, project), edit)
    run = apply(capsys, project, bad)
    assert run.code == 1, run.text
    assert f"{bad}: error: " in run.err and message in run.err, run.err
    assert "Traceback" not in run.text
    assert not default_path(project).exists()  # no run was started, no journal written


def test_a_placement_of_an_edited_plan_is_refused_not_explained_as_the_planners(project, capsys):
    """`ordo explain plan.json vfw` read an edited placement as the planner's choice ("of least
    cost"); a plan of the inputs as they are must be ordo's, as for `ordo apply`. One made from other
    inputs is still explained, with its inputs named as changed."""
    path = save(capsys, project)
    assert ordo(capsys, "explain", "-C", project, path, "vfw").code == 0
    bad = edited(path, move_vfw)
    run = ordo(capsys, "explain", "-C", project, bad, "vfw")
    assert run.code == 1, run.text
    assert f"{bad}: error: " in run.err and REFUSED_AT_VERIFY["moved-placement"][1] in run.err, run.err
    assert "chosen by the planner" not in run.out and "Traceback" not in run.text
    policy = project / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text() + "\n% changed since the plan was made\n")
    stale = ordo(capsys, "explain", "-C", project, bad, "vfw")
    assert stale.code == 0, stale.text


JUNK = {
    "invalid-json": (b'{"format_version": "1.1", ', "not valid JSON: Expecting property name enclosed in double"),
    "not-utf8": (b'{"format_version": "1.1", "request": "\xff\xfe"}',
                  "1:39: error: not UTF-8 text (byte 0xff) (a saved plan is UTF-8 text"),
    "not-an-object": (b"[1, 2, 3]", "not an ordo plan: expected a JSON object"),
    "duplicate-key": (b'{"format_version": "1.1", "format_version": "1.1"}',
                      "the key 'format_version' appears twice in one object"),
    "nan": (b'{"format_version": "1.1", "makespan": NaN}', "NaN is not a number JSON allows"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "long-integer": (b'{"format_version": "1.1", "concurrency": ' + b"9" * 5000 + b"}",
                     "not an ordo plan: Exceeds the limit (4300 digits) for integer string conversion"),
    "empty": (b"", "not valid JSON: Expecting value"),
}


@pytest.mark.parametrize("content, message", JUNK.values(), ids=list(JUNK))
@pytest.mark.parametrize("command", ["apply", "explain", "compare", "whatif"])
def test_junk_plan_files_are_refused_by_every_command(project, capsys, tmp_path, command, content, message):
    bad = tmp_path / "junk.json"
    bad.write_bytes(content)
    args: dict[str, list[str | Path]] = {
        "apply": ["apply", "-C", project, bad, "--auto-approve"],
        "explain": ["explain", "-C", project, bad, "vfw/create"],
        "compare": ["plan", "-C", project, "--compare", bad],
        "whatif": ["whatif", "-C", project, "--baseline", bad],
    }
    run = ordo(capsys, *args[command])
    assert run.code == 1, run.text
    assert f"{bad}" in run.err and message in run.err, run.err
    assert "Traceback" not in run.text
    assert not default_path(project).exists()


def test_plan_files_over_the_projects_size_limit_are_refused(project, capsys):
    settings = yaml.safe_load((project / "ordo.yaml").read_text())
    settings.setdefault("settings", {})["max_plan_mb"] = 0.001   # 1,048 bytes
    (project / "ordo.yaml").write_text(yaml.safe_dump(settings))
    path = project.parent / "plan.json"
    run = ordo(capsys, "plan", "-C", project, "--out", path)
    assert run.code == 0, run.text   # written, with a warning that it will not be read back
    assert "Warning: the plan is 0.0 MB, more than settings.max_plan_mb (0.001 MB)" in run.err, run.err
    assert path.stat().st_size > 1048
    for args in (["apply", "-C", project, path, "--auto-approve"], ["explain", "-C", project, path, "vfw/create"],
                 ["plan", "-C", project, "--compare", path], ["whatif", "-C", project, "--baseline", path]):
        run = ordo(capsys, *args)
        assert run.code == 1, run.text
        assert f"{path}: error: the plan file is larger than 1,048 bytes (settings.max_plan_mb in ordo.yaml " \
               "raises the limit)" in run.err, run.err
    assert not default_path(project).exists()


@pytest.mark.parametrize("value, words", [(1e300, "less than or equal to 16384"), (0, "greater than 0"),
                                          (".nan", "a finite number")])
def test_a_plan_size_limit_out_of_range_is_refused_by_check_and_every_reader(project, capsys, value, words):
    """It crashed reading the plan (1e300), or took its size in memory first (100000); explain
    read the plan with the default limit. Now what ordo check refuses, every reader refuses."""
    path = save(capsys, project)
    text = (project / "ordo.yaml").read_text()
    (project / "ordo.yaml").write_text(text.replace("settings:\n", f"settings:\n  max_plan_mb: {value}\n", 1))
    for args in (["check", "-C", project], ["apply", "-C", project, path, "--auto-approve"],
                 ["explain", "-C", project, path, "vfw/create"], ["plan", "-C", project, "--compare", path]):
        run = ordo(capsys, *args)
        assert run.code == 1, run.text
        assert "ordo.yaml:16:16: error: settings.max_plan_mb: input should be " + words in run.err, run.err
        assert "Traceback" not in run.text


def test_explain_refuses_a_project_that_does_not_load_and_reads_a_plan_without_one(project, capsys):
    path = save(capsys, project)
    alone = ordo(capsys, "explain", "-C", project.parent / "nowhere", path, "vfw/activate")
    assert alone.code == 0 and "vfw/activate" in alone.out, alone.text
    with (project / "policies" / "config-after-modules.lp").open("a") as policy:
        policy.write("this is not a rule\n")
    run = ordo(capsys, "explain", "-C", project, path, "vfw/activate")
    assert run.code == 1 and "config-after-modules.lp" in run.err, run.text   # as ordo check refuses it


def test_a_plan_read_from_a_pipe_is_bounded_too(project, capsys, tmp_path):
    """Read by the size the file says it has: a pipe says none, and is read a piece at a time."""
    text = save(capsys, project).read_bytes()
    fifo = tmp_path / "plan.fifo"

    def write() -> None:
        with contextlib.suppress(BrokenPipeError):   # the reader stops at the limit
            fifo.write_bytes(text)

    for limit, readable in ((len(text), True), (len(text) - 1, False)):
        os.mkfifo(fifo)
        writer = threading.Thread(target=write)
        writer.start()
        try:
            if readable:
                assert Plan.read(fifo, limit).to_json().encode() == text
            else:
                with pytest.raises(DiagnosticsError, match=f"larger than {limit:,} bytes"):
                    Plan.read(fifo, limit)
        finally:
            writer.join(timeout=30)
            fifo.unlink()


def test_the_largest_limit_takes_no_memory_until_a_file_needs_it(project, capsys):
    """16384 MB (the most settings.max_plan_mb allows) read a 100 KB plan in a process that may
    take 1 GB: nothing of the limit's size is made ready before the file's size is known."""
    path = save(capsys, project)
    code = ("import resource, sys; from pathlib import Path; from planner.plan import Plan\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "print(len(Plan.read(Path(sys.argv[1]), 16384 << 20).operations))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(len(Plan.read(path).operations)), done.stderr


def test_parts_with_unknown_or_missing_fields_are_refused_before_validation(project, capsys):
    """Found in the parsed file, at the first part that has them: each field named once, with
    the fields beside them whose value is of another JSON kind."""
    path = save(capsys, project)

    def extra(data: dict[str, Any]) -> None:
        op_of(data, "vfw/assign")["note"] = "x" * 1000

    def missing(data: dict[str, Any]) -> None:
        data["resource_changes"][1].pop("reason")
        op_of(data, "vfw/assign")["note"] = "x"   # (a later part: not reached)

    def top(data: dict[str, Any]) -> None:
        del data["edges"], data["digest"]
        data["operations"], data["makespan"], data["concurrency"] = {}, "1", True

    plan = json.loads(path.read_text())
    index = plan["operations"].index(op_of(plan, "vfw/assign"))
    for edit, expected in ((extra, [(f"operations[{index}].note", "Extra inputs are not permitted")]),
                           (missing, [("resource_changes[1].reason", "Field required")]),
                           (top, [("concurrency", "Input should be a valid integer"),
                                  ("digest", "Field required"), ("edges", "Field required"),
                                  ("makespan", "Input should be a valid number"),
                                  ("operations", "Input should be a valid array")])):
        with pytest.raises(DiagnosticsError) as err:
            Plan.read(edited(path, edit))
        assert sorted((d.path, d.summary) for d in err.value.diagnostics) == expected


def _second_op(data: dict[str, Any]) -> dict[str, Any]:
    return next(op for op in data["operations"] if op["resource"] != data["operations"][0]["resource"])


#: One edit for each problem ``Plan._inconsistencies`` names before the order, and a words of its message.
INCONSISTENT: dict[str, tuple[Edit, str]] = {
    "id-not-resource-operation": (lambda d: d["operations"][0].update(id="vfw/elsewhere"), "is not"),
    "operation-twice": (lambda d: d["operations"].append(dict(d["operations"][0])), "is listed 2 times"),
    "edge-to-nothing": (missing_edge_end, "is not in the plan's operations"),
    "edge-twice": (lambda d: d["edges"].append(dict(d["edges"][0])), "is listed 2 times"),
    "wave-holds-nothing": (lambda d: d["waves"][0].append("ghost/create"), "is not in the plan's operations"),
    "empty-wave": (lambda d: d["waves"].append([]), "an empty wave"),
    "operation-in-two-waves": (lambda d: d["waves"][-1].append(d["waves"][0][0]), "more than one place"),
    "operation-in-another-wave": (lambda d: d["operations"][0].update(wave=d["operations"][0]["wave"] + 1),
                                  "is in wave"),
    "operation-in-no-wave": (lambda d: d["waves"][-1].append("ghost/x") or d["waves"].__setitem__(
        0, [o for o in d["waves"][0] if o != d["waves"][0][0]]), "is in no wave"),
    "group-of-nothing": (lambda d: d.__setitem__("groups", [{"name": "g", "limit": 1, "operations": ["ghost/x"]}]),
                         "is not in the plan's operations"),
    "change-of-nothing": (lambda d: d["resource_changes"][0]["operations"].append("ghost/x"),
                          "is not in the plan's operations"),
    "change-of-another-resource": (lambda d: next(c for c in d["resource_changes"] if c["resource"] == d[
        "operations"][0]["resource"])["operations"].append(_second_op(d)["id"]), "is not an operation of"),
    "operation-in-no-change": (lambda d: [c["operations"].remove(d["operations"][0]["id"]) for c in d[
        "resource_changes"] if d["operations"][0]["id"] in c["operations"]], "is in no resource change"),
}


@pytest.mark.parametrize("edit, words", INCONSISTENT.values(), ids=list(INCONSISTENT))
def test_the_quick_consistency_check_misses_no_problem(project, capsys, edit, words):
    """``Plan._consistent`` (a set at a time) passes a plan only when the loops that name the
    problems would find none: each edit makes both see one."""
    path = save(capsys, project)
    assert Plan.model_validate_json(path.read_text(), strict=True)._consistent()
    plan = Plan.model_validate_json(edited(path, edit).read_text(), strict=True)
    assert not plan._consistent()
    assert any(words in problem for _, problem in plan._inconsistencies()), plan._inconsistencies()


def tiny_plan(names: str = "ab") -> dict[str, Any]:
    """A plan of ordo's shape, as parsed JSON: one create of each of ``names``, all in wave 1."""
    def op(name: str) -> dict[str, Any]:
        return {"id": f"{name}/create", "resource": name, "type": "t", "operation": "create", "from_state": "absent",
                "to_state": "present", "controller": "c", "duration": 1.0, "wave": 1, "reason": "requested"}

    return {"format_version": "1.1", "status": "optimal", "request": "r", "digest": "sha256:0", "inputs": [],
            "operations": [op(name) for name in names], "edges": [], "waves": [[f"{n}/create" for n in names]],
            "placements": {}, "cost": [], "makespan": 1.0, "critical_path": 1.0, "concurrency": 1,
            "ground_atoms": 0, "ground_rules": 0,
            "resource_changes": [{"resource": r, "type": "t", "actions": ["create"], "before": "absent",
                                  "after": "present", "operations": [f"{r}/create"], "reason": "requested"}
                                 for r in names]}


def test_an_edge_within_one_wave_is_refused():
    """Its only problem: the waves do not order the edge (a cycle has none either)."""
    plan = tiny_plan()
    plan["edges"] = [{"before": "a/create", "after": "b/create", "rules": []}]
    with pytest.raises(DiagnosticsError) as err:
        Plan.from_json(json.dumps(plan), "p.json")
    assert [(d.path, d.summary) for d in err.value.diagnostics] == [
        ("edges[0]", "a/create (wave 1) must come before b/create (wave 1)")]
    plan["waves"], plan["operations"][1]["wave"] = [["a/create"], ["b/create"]], 2
    assert Plan.from_json(json.dumps(plan), "p.json").waves == (("a/create",), ("b/create",))


VIOLATION = {"policy": "p", "enforcement": "soft", "file": "p.lp", "line": 1, "description": "d", "rule": "r",
             "resources": ["a"]}
#: A list or an object where a plan has none, or none where it has one, and what is said of it.
WRONG_KINDS: dict[str, tuple[Edit, str, str]] = {
    "top-level-text-holds-a-list": (lambda d: d.update(request=[0, 0, 0]), "request", "a valid string"),
    "number-holds-an-object": (lambda d: d.update(makespan={"a": 1}), "makespan", "a valid number"),
    "operation-field-holds-a-list": (lambda d: d["operations"][1].update(wave=[1]), "operations[1].wave",
                                     "a valid integer"),
    "edge-rules-hold-an-object": (lambda d: d.update(edges=[{"before": "a/create", "after": "b/create",
                                                              "rules": {"r": "x"}}]),
                                  "edges[0].rules", "a valid array"),
    "rule-holds-a-list": (lambda d: d.update(edges=[{"before": "a/create", "after": "b/create", "rules": ["r", []]}]),
                          "edges[0].rules[1]", "a valid string"),
    "wave-entry-holds-a-list": (lambda d: d["waves"][0].append(["x"]), "waves[0][2]", "a valid string"),
    "wave-is-an-object": (lambda d: d["waves"].append({}), "waves[1]", "a valid array"),
    "placement-holds-a-list": (lambda d: d.update(placements={"a": ["x"]}), "placements.a", "a valid string"),
    "change-placement-holds-an-object": (lambda d: d["resource_changes"][1].update(placement={"x": 1}),
                                         "resource_changes[1].placement", "a valid string"),
    "change-operations-hold-an-object": (lambda d: d["resource_changes"][0].update(operations={}),
                                         "resource_changes[0].operations", "a valid array"),
    "bound-holds-a-list": (lambda d: d.update(cost=[{"priority": 1, "cost": 2, "bound": [1]}]), "cost[0].bound",
                           "a valid integer"),
    "binding-holds-a-list": (lambda d: d.update(violations=[{**VIOLATION, "bindings": {"X": ["y"]}}]),
                             "violations[0].bindings.X", "a valid string"),
    "group-operations-hold-a-list": (lambda d: d.update(groups=[{"name": "g", "limit": 1,
                                                                  "operations": ["a/create", ["b/create"]]}]),
                                     "groups[0].operations[1]", "a valid string"),
}


@pytest.mark.parametrize("edit, path, words", WRONG_KINDS.values(), ids=list(WRONG_KINDS))
def test_lists_and_objects_out_of_place_are_refused_before_validation(edit, path, words):
    """Pydantic's error for a value of another kind holds all the value holds, converted from
    the JSON: a field holding a list of 60 MB took 2 GB to refuse. The parsed file is checked
    first, wherever the list or object is."""
    plan = tiny_plan()
    assert Plan.from_json(json.dumps(plan), "p.json")   # as it is, the plan reads
    edit(plan)
    assert [(format_path(at), problem) for at, problem in planner.plan._unknown_or_missing(plan, Plan, ())] == [
        (path, f"Input should be {words}")]
    with pytest.raises(DiagnosticsError) as err:
        Plan.from_json(json.dumps(plan), "p.json")
    assert [(d.path, d.summary) for d in err.value.diagnostics] == [(path, f"Input should be {words}")]


def test_at_most_twenty_problems_are_named_however_many_there_are():
    """Named one by one as found, not all named and then cut: a file of millions of references
    to operations the plan lacks took gigabytes to refuse."""
    plan = tiny_plan()
    plan["waves"][0] += ["ghost/create"] * 1000
    found = Plan.model_validate_json(json.dumps(plan), strict=True)
    assert len(found._inconsistencies()) == planner.plan.MAX_PROBLEMS
    naming = found._naming_problems()
    assert next(naming) == ("waves[0][2]", "operation 'ghost/create' is not in the plan's operations")
    letters = "abcdefghijklmnopqrstuvwxyz"
    plan = tiny_plan(letters)   # only the order is wrong: a chain of 25 edges within one wave
    plan["edges"] = [{"before": f"{a}/create", "after": f"{b}/create", "rules": []}
                     for a, b in zip(letters, letters[1:], strict=False)]
    ordered = Plan.model_validate_json(json.dumps(plan), strict=True)
    assert ordered._inconsistencies() == [(f"edges[{i}]", f"{a}/create (wave 1) must come before {b}/create (wave 1)")
                                          for i, (a, b) in enumerate(zip(letters[:20], letters[1:], strict=False))]


def test_a_long_key_an_empty_wave_and_a_huge_count_are_refused_briefly():
    """What ordo never writes, each named in a message of a line: a key of a
    megabyte, an empty wave, a count of 4,000 digits."""
    plan = tiny_plan()
    plan["k" * 1_000_000] = 1
    with pytest.raises(DiagnosticsError) as err:
        Plan.from_json(json.dumps(plan), "p.json")
    assert [(d.path, d.summary) for d in err.value.diagnostics] == [
        ("k" * 60 + "...(1,000,000 characters)", "Extra inputs are not permitted")]
    plan = tiny_plan()
    plan["waves"].insert(0, [])
    for op in plan["operations"]:
        op["wave"] = 2
    with pytest.raises(DiagnosticsError) as err:
        Plan.from_json(json.dumps(plan), "p.json")
    assert [(d.path, d.summary) for d in err.value.diagnostics] == [("waves[0]", "an empty wave (ordo writes none)")]
    plan = tiny_plan()
    plan["ground_atoms"] = int("9" * 4000)
    with pytest.raises(DiagnosticsError) as err:
        Plan.from_json(json.dumps(plan), "p.json")
    [problem] = err.value.diagnostics
    assert problem.path == "ground_atoms" and "less than or equal to" in problem.summary
    assert len(str(problem)) < 300


def test_an_untouched_saved_plan_applies(project, capsys):
    path = save(capsys, project)
    run = apply(capsys, project, path)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created" in run.out


def test_a_saved_plan_is_verified_with_the_policies_checked_once(project, capsys, monkeypatch):
    path = save(capsys, project)
    loaded = load_project(project)
    calls = []
    real = planner.core.checked_program
    monkeypatch.setattr(planner.core, "checked_program", lambda *a, **k: calls.append(1) or real(*a, **k))
    verify_saved_plan(loaded, Plan.read(path), str(path))  # the digest and the plan made again
    assert len(calls) == 1


def test_a_journal_is_left_as_it_was_when_a_plan_is_refused(project, capsys):
    """After a deploy, a plan with nothing to do, made to delete the protected network."""
    assert apply(capsys, project, save(capsys, project)).code == 0
    nothing = save(capsys, project, "nothing.json")
    assert json.loads(nothing.read_text())["operations"] == []
    journal = default_path(project)
    before = journal.read_bytes()
    run = apply(capsys, project, edited(nothing, delete_protected))
    assert run.code == 1, run.text
    assert "operation onap-mgmt-net/delete is not in the plan ordo makes from these inputs" in run.err
    assert journal.read_bytes() == before
    with Journal(journal, create=False) as jr:
        assert [r.id for r in jr.runs()] == [1]


# --- when the optimisation was cut short: the saved placements are checked ----------


def satisfiable(data: dict[str, Any]) -> None:
    data["status"] = "satisfiable"


def test_a_plan_cut_short_is_checked_with_its_placements(project, capsys):
    """Status `satisfiable` (the time limit stopped the optimisation): another
    placement may be legitimate, but it must obey every hard policy, and the rest
    must be what ordo plans from it."""
    path = save(capsys, project)

    def crowded(data: dict[str, Any]) -> None:
        satisfiable(data)
        for change in data["resource_changes"]:
            if change["placement"]:
                change["placement"] = data["placements"][change["resource"]] = "region-one"

    for edit, message in ((crowded, "placements: the saved placements break the hard policy anti-affinity "
                                    "(<library>/anti-affinity.lp:8) for vfw, vpg"),
                          (lambda d: (satisfiable(d), delete_protected(d)),
                           "operation onap-mgmt-net/delete is not in the plan ordo makes from these inputs "
                           "with the saved placements"),
                          (lambda d: (satisfiable(d), remove_edge(d)),
                           "precedence vfw-base/activate -> vfw/config-deploy is missing")):
        run = apply(capsys, project, edited(path, edit, "cut-short.json"))
        assert run.code == 1, run.text
        assert message in run.err, run.err
        assert "Traceback" not in run.text
    assert not default_path(project).exists()
    # a cheaper placement given up, said to be the best the search found in time: refused while the cost
    # it shows is not what its placements cost (it was shown, and carried out, with the optimum's)
    run = apply(capsys, project, edited(path, lambda d: (satisfiable(d), move_vfw(d)), "cut-short.json"))
    assert run.code == 1 and "cost: the plan's cost is 26@1, what its placements cost is 58@1" in run.err, run.text
    # ... and with the cost written in to match them: it was carried out (on placements of the editor's
    # choosing: an operator's sweep); refused while the optimum is proved here, and costs less
    dearer = apply(capsys, project, edited(path, lambda d: (satisfiable(d), move_vfw(d), d["cost"][0].update(
        cost=58)), "dearer.json"))
    assert dearer.code == 1, dearer.text
    assert ("status: the plan says the time limit cut its search short (satisfiable, cost 58@1), but here the "
            "optimum is proved, at 26@1: plan again") in dearer.err, dearer.text
    # one really cut short has the solver's bound beside its cost, which a plan of its placements has not
    bound = apply(capsys, project, edited(path, lambda d: (satisfiable(d), d["cost"][0].update(bound=20))))
    assert bound.code == 0, bound.text


def test_a_replan_that_times_out_falls_back_to_the_saved_placements(project, capsys, monkeypatch):
    path = save(capsys, project)
    monkeypatch.setattr(planner.verify, "make_plan", lambda *a, **k: Outcome(status="timeout"))
    loaded = load_project(project)
    verify_saved_plan(loaded, Plan.read(path), str(path))  # the saved plan is valid: no error
    moved = Plan.read(edited(path, move_vfw))
    with pytest.raises(PlanRefused, match=r"cost: the plan.s cost is 26@1, what its placements cost is 58@1"):
        verify_saved_plan(loaded, moved, "moved.json")   # region-three costs more than the plan says
    verify_saved_plan(loaded, moved.model_copy(update={"cost": (CostLevel(priority=1, cost=58),)}), "moved.json")
    with pytest.raises(PlanRefused) as refused:
        verify_saved_plan(loaded, Plan.read(edited(path, delete_protected)), "forged.json")
    assert "operation onap-mgmt-net/delete is not in" in str(refused.value)


# --- the plan format itself ------------------------------------------------------


def test_plans_ordo_writes_read_back_unchanged(project, capsys):
    path = save(capsys, project)
    assert Plan.read(path).to_json() == path.read_text()


def test_each_field_of_a_plan_is_reported_with_its_problems(project, capsys):
    """Every field's problems at once; of a list, those of its first bad item (the others
    would each cost an error object: millions in a hostile file)."""
    path = save(capsys, project)

    def several(data: dict[str, Any]) -> None:
        data["operations"][0]["duration"] = -1
        data["operations"][0]["controller"] = "bad name\x1b[31m"
        data["operations"][1]["controller"] = "bad name\x1b[31m"
        data["concurrency"] = 0

    with pytest.raises(DiagnosticsError) as err:
        Plan.read(edited(path, several))
    paths = {d.path for d in err.value.diagnostics}
    assert paths == {"operations[0].duration", "operations[0].controller", "concurrency"}


def test_a_plans_concurrency_is_bounded_as_the_projects_is(project, capsys):
    """A plan said 2147483647 at once, past what settings and --concurrency take (a sweep's): its
    confirmation showed it and its run used it. Refused as a saved plan; a run journaled before the
    bound, which may hold more, is still read."""
    path = save(capsys, project)
    many = Plan.read(edited(path, lambda d: d.update(concurrency=2**31 - 1)))
    with pytest.raises(PlanRefused) as refused:
        verify_saved_plan(load_project(project), many, "many.json")
    assert [(d.path, d.summary) for d in refused.value.diagnostics] == [
        ("concurrency", "the saved plan runs 2,147,483,647 operations at once; ordo plans at most 10,000")]
    run = apply(capsys, project, edited(path, lambda d: d.update(concurrency=20_000)))
    assert run.code == 1 and "ordo plans at most 10,000" in run.err, run.text


def test_a_forged_reason_is_refused_and_shown_harmlessly(project, capsys):
    """What people read when they confirm is part of the plan too."""
    def forge(data: dict[str, Any]) -> None:
        op_of(data, "vfw/assign")["reason"] = "routine\x1b[2K\rApply complete: 0 created"

    run = apply(capsys, project, edited(save(capsys, project), forge))
    assert run.code == 1, run.text
    assert "operations[vfw/assign].reason: operation vfw/assign: reason is 'routine\\x1b[2K\\rApply" in run.err
    assert "\x1b" not in run.text and "\r" not in run.text
    assert not default_path(project).exists()


def test_a_resource_change_listed_twice_is_refused(project, capsys):
    def twice(data: dict[str, Any]) -> None:
        change = next(c for c in data["resource_changes"] if c["resource"] == "vfw")
        data["resource_changes"] = sorted([{**change, "operations": []}, *data["resource_changes"]],
                                          key=lambda c: c["resource"])

    run = apply(capsys, project, edited(save(capsys, project), twice))
    assert run.code == 1, run.text
    assert "resource_changes: the change of vfw is listed more than once" in run.err, run.err
    assert not default_path(project).exists()


def test_a_plan_of_a_project_whose_inventory_is_outside_it_is_applied(tmp_path: Path) -> None:
    """ordo.yaml may name an inventory outside the project folder: a saved plan of it names that file,
    which is the project's own, however the folder is spelled (a review's, 6 December)."""
    shutil.copytree(VFW, tmp_path / "p", ignore=shutil.ignore_patterns(".ordo"))
    (tmp_path / "p" / "inventory.yaml").rename(tmp_path / "inventory.yaml")
    ordo_yaml = tmp_path / "p" / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().replace("inventory: inventory.yaml", "inventory: ../inventory.yaml"))
    assert run_ordo("plan", "-C", "p", "--out", "p/plan.json", cwd=tmp_path).code == 0
    shutil.copytree(tmp_path, tmp_path / "copy" / "of")   # (the project moved with its inventory: a review's)
    applied = run_ordo("apply", "plan.json", "--auto-approve", "--simulation", "simulations/smooth.yaml",
                       cwd=tmp_path / "copy" / "of" / "p")
    assert applied.code == 0 and "Apply complete: 10 created" in applied.out, applied.text
    applied = run_ordo("apply", "plan.json", "--auto-approve", "--simulation", "simulations/smooth.yaml",
                       cwd=tmp_path / "p")
    assert applied.code == 0 and "Apply complete: 10 created" in applied.out, applied.text


def test_a_journal_named_another_way_is_the_same_input(vfw_copy: Path) -> None:
    """A plan's inputs name the journal's records the same however its path is spelled: a plan
    made with --journal j/journal.db was stale when applied from the project folder as
    ../j/journal.db (and a run resumed so re-planned: "inputs changed"; the crash sweep of 6 December)."""
    smooth = vfw_copy / "simulations" / "smooth.yaml"
    outside = vfw_copy.parent
    assert run_ordo("apply", "-C", "vfw", "--journal", "j/journal.db", "--auto-approve", "--simulation", smooth,
                    cwd=outside).code == 0
    made = run_ordo("plan", "-C", "vfw", "--journal", "j/journal.db", "--out", "plan.json", cwd=outside)
    assert made.code == 0, made.text
    applied = run_ordo("apply", "../plan.json", "--journal", "../j/journal.db", "--auto-approve",
                       "--simulation", smooth, cwd=vfw_copy)
    assert applied.code == 0 and "No changes" in applied.out, applied.text


def test_a_plan_of_another_request_and_inventory_is_applied_as_it_was_made(vfw_copy: Path) -> None:
    """`ordo plan requests/delete.yaml --inventory inventory-deployed.yaml --out plan.json`, then `ordo
    apply plan.json`: the apply loaded the project's own request and inventory, and refused the plan
    as stale. A plan names the files it was made from (format 1.2); a name outside the project
    folder is refused (the plan is untrusted); a plan of 1.1 is applied with the project's own."""
    smooth = vfw_copy / "simulations" / "smooth.yaml"
    made = run_ordo("plan", "-C", vfw_copy, "requests/delete.yaml", "--inventory", "inventory-deployed.yaml",
                    "--out", vfw_copy / "delete.json")
    assert made.code == 0, made.text
    data = json.loads((vfw_copy / "delete.json").read_text())
    assert (data["request_file"], data["inventory_file"]) == ("requests/delete.yaml", "inventory-deployed.yaml")
    (vfw_copy.parent / "outside").mkdir()
    (vfw_copy.parent / "outside" / "x.yaml").write_text("password: hunter2\n")
    (vfw_copy / "requests" / "link").symlink_to(vfw_copy.parent / "outside")   # (a sweep's: read, and quoted)
    os.mkfifo(vfw_copy / "requests" / "fifo.yaml")   # (a read of it would wait for a writer: a sweep's)
    (vfw_copy / "requests" / "loop.yaml").symlink_to("loop.yaml")
    for name, why in (("../outside.yaml", "named by an absolute path or through '..'"),
                      ("/etc/passwd", "named by an absolute path or through '..'"),
                      ("requests/../../x.yaml", "named by an absolute path or through '..'"),
                      ("requests/../requests/x.yaml", "named by an absolute path or through '..'"),
                      ("a\u0000b", "no file name ordo reads"), ("x" * 5000, "no file name ordo reads"),
                      ("requests/link/x.yaml", "not a file inside the project folder (symlinks followed)"),
                      ("requests/fifo.yaml", "not a regular file"), ("requests", "not a regular file"),
                      ("requests/loop.yaml", "a symbolic link loop")):
        (vfw_copy / "edited.json").write_text(json.dumps({**data, "request_file": name}))
        refused = run_ordo("apply", "-C", vfw_copy, vfw_copy / "edited.json", "--auto-approve")
        assert refused.code == 1 and "request_file: the plan was made from the request file" in refused.err \
            and f"which is {why}" in refused.err and "password" not in refused.err, refused.text
    applied = run_ordo("apply", "-C", vfw_copy, vfw_copy / "delete.json", "--auto-approve", "--simulation", smooth)
    assert applied.code == 0 and "Apply complete: 0 created, 0 changed, 10 deleted." in applied.out, applied.text

    made = run_ordo("plan", "-C", vfw_copy, "--out", vfw_copy / "plan.json")
    placed = json.loads((vfw_copy / "plan.json").read_text())
    (vfw_copy / "edited.json").write_text(json.dumps({**placed, "request_file": "../outside.yaml"}))
    explained = run_ordo("explain", "-C", vfw_copy, vfw_copy / "edited.json", "vfw")   # (the project's own, then)
    assert explained.code == 0 and "vfw" in explained.out, explained.text
    older = {k: v for k, v in json.loads((vfw_copy / "plan.json").read_text()).items()
             if k not in ("request_file", "inventory_file")}
    (vfw_copy / "older.json").write_text(json.dumps({**older, "format_version": "1.1"}))
    applied = run_ordo("apply", "-C", vfw_copy, vfw_copy / "older.json", "--auto-approve", "--simulation", smooth)
    assert applied.code == 0 and "Apply complete: 10 created" in applied.out, applied.text
    # one of 1.1 made from other files: those were not read, and did not change (an upgrade sweep's)
    other = {k: v for k, v in data.items() if k not in ("request_file", "inventory_file")}
    (vfw_copy / "other.json").write_text(json.dumps({**other, "format_version": "1.1"}))
    stale = run_ordo("apply", "-C", vfw_copy, vfw_copy / "other.json", "--auto-approve")
    assert stale.code == 1 and "requests/delete.yaml" in stale.err and "changed since" not in stale.err, stale.text
    assert "a plan of format 1.1 names no request or inventory file, so the project's own were read" in stale.err


def test_a_plan_naming_a_project_file_as_its_request_is_refused_naming_the_plan(vfw_copy: Path) -> None:
    """A plan whose request_file was ordo.yaml (or whose inventory_file a policy test) had that file
    refused key by key as a request, blaming a valid project file, and nothing said the plan had named
    it (an authoring sweep's). The plan's field comes first now, in every command that reads one."""
    made = run_ordo("plan", "-C", vfw_copy, "--out", vfw_copy / "plan.json")
    assert made.code == 0, made.text
    data = json.loads((vfw_copy / "plan.json").read_text())
    for field, name in (("request_file", "ordo.yaml"), ("request_file", "catalog.yaml"),
                        ("inventory_file", "tests/placement_test.yaml")):
        (vfw_copy / "edited.json").write_text(json.dumps({**data, field: name}))
        for command in (["apply", vfw_copy / "edited.json", "--auto-approve"],
                        ["whatif", "--baseline", vfw_copy / "edited.json", "--target-down", "region-two"],
                        ["explain", vfw_copy / "edited.json", "vfw"]):
            refused = run_ordo(command[0], "-C", vfw_copy, *command[1:])
            said = refused.err.splitlines()
            assert refused.code == 1 and said, (command, refused.text)
            assert said[0].startswith(f"{vfw_copy / 'edited.json'}: error: {field}: the plan names '{name}' as its ") \
                and "file, which does not load as one now (below)" in said[0], (command, refused.text)


def test_a_plan_saved_of_a_request_linked_from_outside_warns_that_apply_will_refuse_it(vfw_copy: Path) -> None:
    """A request given through a symlink in the project to a file outside it: the plan names the file the
    link leads to (../outside.yaml), which `ordo apply plan.json` refuses, and planning again made the
    same plan (an upgrade sweep's). The plan says so when it is saved, in apply's own words."""
    (vfw_copy.parent / "outside.yaml").write_text((vfw_copy / "requests" / "scale-out.yaml").read_text())
    (vfw_copy / "requests" / "linked.yaml").symlink_to(vfw_copy.parent / "outside.yaml")
    made = run_ordo("plan", "-C", vfw_copy, "requests/linked.yaml", "--inventory", "inventory-deployed.yaml",
                    "--out", vfw_copy / "linked.json")
    assert made.code == 0 and "will refuse this plan: the plan was made from the request file " \
                              "'../outside.yaml'" in made.err, made.text
    refused = run_ordo("apply", "-C", vfw_copy, vfw_copy / "linked.json", "--auto-approve")
    assert refused.code == 1 and "'../outside.yaml'" in refused.err, refused.text
    plain = run_ordo("plan", "-C", vfw_copy, "requests/scale-out.yaml", "--inventory", "inventory-deployed.yaml",
                     "--out", vfw_copy / "plain.json")
    assert plain.code == 0 and "Warning" not in plain.err, plain.text


def test_an_edited_or_foreign_plan_is_not_said_to_be_stale(project, capsys, tmp_path):
    """A digest edited, a request_file edited, another project's plan: each was refused as "stale: ...
    changed since it was made; plan again", naming files that had not changed or that this project does
    not have (an operator's sweep)."""
    path = save(capsys, project)
    vcpe = shutil.copytree(VFW.parent / "vcpe", tmp_path / "vcpe", ignore=shutil.ignore_patterns(".ordo"))

    def rooted(data: dict[str, Any]) -> None:   # an input more, the digest made again as ordo makes it
        data["inputs"] = sorted([*data["inputs"], {"path": "/etc/passwd", "sha256": "0" * 64}], key=lambda i: i["path"])
        whole = "".join(f"{i['path']}\0{i['sha256']}\n" for i in data["inputs"])
        data["digest"] = "sha256:" + hashlib.sha256(whole.encode()).hexdigest()

    assert ordo(capsys, "plan", "-C", vcpe, "--out", tmp_path / "vcpe.json").code == 0
    for plan, said in (
            (edited(path, lambda d: d.update(digest="sha256:" + "0" * 64), "digest.json"),
             "digest: the plan's digest is not the one of the inputs it names (an edited plan); plan again"),
            (edited(path, lambda d: d.update(request_file="requests/delete.yaml"), "request.json"),
             "request_file: the plan names requests/delete.yaml as its request, but was not made from it (an "
             "edited plan); plan again"),
            (tmp_path / "vcpe.json", "inputs: the plan was made from files this project does not have (policies/"
                                     "brg-after-vg.lp, policies/vg-follows-vgmux.lp): another project's plan"),
            # a path from / is none ordo writes: /etc/passwd was said to have "changed since it was made"
            (edited(path, rooted, "rooted.json"),
             "inputs: the plan names inputs by paths ordo does not write ('/etc/passwd'): an edited plan; plan again")):
        run = apply(capsys, project, plan)
        assert run.code == 1 and said in run.err and "changed since" not in run.err, run.text
    # explained, the plan whose digest was edited was said to be made from inputs that changed since (a review's)
    run = ordo(capsys, "explain", "-C", project, path.parent / "digest.json", "vfw")
    assert run.code == 1 and "the plan's digest is not the one of the inputs it names" in run.err, run.text


def test_a_saved_plan_that_runs_more_at_once_than_the_project_says_is_said_to(project, capsys):
    """A plan's concurrency is its own (`ordo plan --concurrency`): one edited to 10,000 re-plans the same
    and ran 10,000 at once where the project's settings say 10, saying nothing (a docs sweep's)."""
    path = edited(save(capsys, project), lambda d: d.update(concurrency=10000), "wide.json")
    run = apply(capsys, project, path)
    assert run.code == 0 and ("Warning: the saved plan runs at most 10000 operations at once, more than the "
                              "project's settings.concurrency (10)") in run.err, run.text
    kept = ordo(capsys, "apply", "-C", project, save(capsys, project, "narrow.json"), "--auto-approve",
                "--simulation", project.parent / "smooth.yaml")
    assert kept.code == 0 and "Warning: the saved plan" not in kept.err, kept.text
