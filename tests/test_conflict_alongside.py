"""`ordo explain --conflict` checks the policies while clingo parses the model's
facts (planner.solve.ground_alongside): the same answer as checking first,
and nothing of a refused policy reaches clingo."""

from __future__ import annotations

import threading

import pytest

from domain.errors import DiagnosticsError
from domain.project import load_project
from planner.core import load_policies
from planner.explain import CONFLICT_ARGS, POLICY_SWITCHES, minimal_conflict, project_conflict
from planner.facts import model_facts
from planner.solve import ground_alongside
from tests.conftest import run_ordo

DELETE_MGMT = ("requests/delete-mgmt-net.yaml", "inventory-deployed.yaml")


@pytest.mark.parametrize("request_and_inventory", [DELETE_MGMT, (None, None)], ids=["no-plan", "plan"])
def test_project_conflict_is_the_minimal_conflict_of_the_checked_policies(vfw_copy, request_and_inventory):
    project = load_project(vfw_copy, *request_and_inventory)
    expected = minimal_conflict(load_policies(project), model_facts(project.model), project.model, timeout=30)
    found = project_conflict(project, timeout=30)
    assert (found and found.to_dict()) == (expected and expected.to_dict())
    assert request_and_inventory == (None, None) or found.rules


def test_a_refused_policy_never_reaches_clingo(vfw_copy, tmp_path):
    marker = tmp_path / "ran"
    policy = tmp_path / "script.lp"
    policy.write_text("%@ name: script\n%@ description: runs code\n%@ owner: t\n%@ enforcement: hard\n"
                      f'#script (python)\nimport pathlib\npathlib.Path("{marker}").write_text("ran")\n#end.\n')
    run = run_ordo("explain", "-C", vfw_copy, "requests/delete-mgmt-net.yaml", "--inventory",
                   "inventory-deployed.yaml", "--conflict", "--policy", policy)
    assert run.code == 1, run.text
    assert "#script is not allowed in policy files" in run.text
    assert not marker.exists()


def test_what_the_build_raises_is_raised_with_the_facts_thread_ended(vfw_copy):
    project = load_project(vfw_copy)
    threads = threading.active_count()

    def refuse():
        raise DiagnosticsError([])

    with pytest.raises(DiagnosticsError):
        ground_alongside(refuse, model_facts(project.model), POLICY_SWITCHES, CONFLICT_ARGS)
    assert threading.active_count() == threads


def test_meanwhile_sees_the_program_and_what_it_raises_is_dropped(vfw_copy):
    project = load_project(vfw_copy)
    program = load_policies(project)
    seen = []

    def meanwhile(built):
        seen.append((built, threading.current_thread() is not threading.main_thread()))
        raise ValueError("dropped")

    threads = threading.active_count()
    got, ctl = ground_alongside(lambda: program, model_facts(project.model), POLICY_SWITCHES, CONFLICT_ARGS,
                                meanwhile=meanwhile)
    assert got is program and seen == [(program, True)] and threading.active_count() == threads
    assert len(ctl.symbolic_atoms) > 0


def test_facts_clingo_cannot_parse_are_a_diagnostic(vfw_copy):
    program = load_policies(load_project(vfw_copy))
    with pytest.raises(DiagnosticsError) as raised:
        ground_alongside(lambda: program, ["p(."], POLICY_SWITCHES, CONFLICT_ARGS)
    assert "syntax error" in str(raised.value.diagnostics[0].summary) + raised.value.diagnostics[0].detail


HEADER = "%@ name: {}\n%@ description: test\n%@ owner: t\n%@ enforcement: hard\n"
TYPO = ':- label(R,"no-such-key",_), place(R,_).\n'   # no model file uses the label key: a warning


def _with_policies(root, **policies: str):
    listed = "    - policies/config-after-modules.lp\n"
    text = (root / "ordo.yaml").read_text()
    assert listed in text
    for name, body in policies.items():
        (root / "policies" / f"{name}.lp").write_text(HEADER.format(name) + body)
        text = text.replace(listed, f"{listed}    - policies/{name}.lp\n")
    (root / "ordo.yaml").write_text(text)
    return load_project(root)


def test_without_warnings_the_vocabulary_is_not_checked(vfw_copy):
    project = _with_policies(vfw_copy, typo=TYPO)
    assert any(d.code == "vocabulary" for d in load_policies(project).warnings)
    assert not any(d.code == "vocabulary" for d in load_policies(project, warnings=False).warnings)


def test_refused_without_warnings_as_with_them(vfw_copy):
    project = _with_policies(vfw_copy, typo=TYPO, script="p(@f(1)).\n")
    with pytest.raises(DiagnosticsError) as checked:
        load_policies(project)
    with pytest.raises(DiagnosticsError) as unwarned:
        load_policies(project, warnings=False)
    assert unwarned.value.diagnostics == checked.value.diagnostics
    assert {d.code for d in checked.value.diagnostics} >= {"vocabulary", "script"}
