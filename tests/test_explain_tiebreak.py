"""Which of several equally small correction sets "no plan" names, and which of
several minimal conflicting sets `--conflict` names: the least in a documented
order (planner.explain.least_correction, conflict_order), not the solver's
first, so the same problem gives the same explanation however its policies are
written or listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from domain.project import load_project
from planner.core import load_policies
from planner.explain import explain_no_plan, minimal_conflict
from planner.facts import model_facts
from planner.solve import solve
from tests.conftest import VFW

# vFW and vPG in one region, as in examples/vfw/policies/conflicting/colocate-vfw-vpg.lp:
# it contradicts the library's anti-affinity (they share an anti-affinity label).
COLOCATE = {
    "pairs": ':- located("vfw",T1), located("vpg",T2), T1 != T2.',
    # the same constraint (each has one location), read in another order by the solver
    "negated": ':- located("vfw",T), not located("vpg",T).',
    # the same again, with a preference that the relaxed solve ignores
    "preference": ':- located("vfw",T1), located("vpg",T2), T1 != T2.\n'
                  '#minimize { 1@5,R : located(R,"region-one") }.',
}


def _with_policies(project: Path, files: dict[str, str]) -> Path:
    listed = "".join(f"    - policies/{name}.lp\n" for name in files)
    for name, rule in files.items():
        (project / "policies" / f"{name}.lp").write_text(f"%@ name: {name}\n%@ enforcement: hard\n\n{rule}\n")
    text = (project / "ordo.yaml").read_text()
    (project / "ordo.yaml").write_text(text.replace("    - policies/config-after-modules.lp\n",
                                                    "    - policies/config-after-modules.lp\n" + listed))
    return project


def _explained(project: Path) -> list[str]:
    loaded = load_project(project)
    program, facts = load_policies(loaded), model_facts(loaded.model)
    strict = solve(program, facts, timeout=10, keep_control=True)
    assert strict.status == "unsatisfiable"
    explanation = explain_no_plan(program, facts, loaded.model, timeout=10, control=strict.control)
    assert explanation.kind == "conflict", explanation.summary
    return [c.policy for c in explanation.conflicts]


@pytest.mark.parametrize("encoding", sorted(COLOCATE))
def test_the_projects_own_policy_is_named_before_the_library_one_it_contradicts(vfw_copy, encoding):
    # Dropping colocate-vfw-vpg (the project's) or anti-affinity (the library's):
    # one instance each. The project's is named, whatever the encoding (before,
    # "negated" named anti-affinity).
    assert _explained(_with_policies(vfw_copy, {"colocate-vfw-vpg": COLOCATE[encoding]})) == ["colocate-vfw-vpg"]


def test_the_instance_named_does_not_depend_on_the_encoding(tmp_path):
    # The same hard problem three ways: the solver's path differs, and with it
    # (before) which regions of the vFW and vPG the explanation showed.
    named = set()
    for encoding in ("pairs", "preference"):
        project = tmp_path / encoding
        shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
        loaded = load_project(_with_policies(project, {"colocate-vfw-vpg": COLOCATE[encoding]}))
        program, facts = load_policies(loaded), model_facts(loaded.model)
        strict = solve(program, facts, timeout=10, keep_control=True)
        explanation = explain_no_plan(program, facts, loaded.model, timeout=10, control=strict.control)
        named.add(tuple((c.policy, c.bindings) for c in explanation.conflicts))
    # the least values: the vFW in region-one (names in order), the vPG in the first other region
    assert named == {(("colocate-vfw-vpg", (("T1", "region-one"), ("T2", "region-three"))),)}


@pytest.mark.parametrize("order", [("zeta-east", "alpha-west"), ("alpha-west", "zeta-east")])
def test_between_two_project_policies_the_first_by_name_is_named(vfw_copy, order):
    rules = {"alpha-west": ':- located("vsink",T), T != "region-one".',
             "zeta-east": ':- located("vsink",T), T != "region-two".'}
    assert _explained(_with_policies(vfw_copy, {name: rules[name] for name in order})) == ["alpha-west"]


@pytest.mark.parametrize("order", [("alpha", "zeta"), ("zeta", "alpha")])
def test_of_two_minimal_conflicts_the_preferred_one_is_named(tmp_path, order):
    # alpha and zeta both put the vFW and vPG in one region: each conflicts
    # with anti-affinity (and the two goals). Before, the file listed first won.
    project = tmp_path / "vfw"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    loaded = load_project(_with_policies(project, {name: COLOCATE["pairs"] for name in order}))
    found = minimal_conflict(load_policies(loaded), model_facts(loaded.model), loaded.model, timeout=10)
    assert found is not None and found.minimal
    assert sorted(found.policies[r.file] for r in found.rules) == ["alpha", "anti-affinity"]
    assert [goal for goal, _, _ in found.goals] == ["vfw", "vpg"]
