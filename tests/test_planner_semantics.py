"""What a plan must mean, where a planner sweep found it did not: a deleted part's zone, a protected
resource of a lifecycle without milestones, params whose update does not run in the state asked
for, an inventory entry that does not exist yet but names a target."""

from __future__ import annotations

from pathlib import Path

from domain.project import load_project
from planner.core import Outcome, make_plan
from tests.conftest import run_ordo
from tests.test_lifecycle_shapes import CATALOG as SHAPES

# the lifecycle tests' catalog (a "standard" lifecycle with an update at active), with a lifecycle that
# maps no milestone of the base ordering's, and placeable types
CATALOG = SHAPES.replace("types:\n", """\
  simple:
    states: [absent, up]
    operations:
      make: { from: absent, to: up }
      destroy: { from: up, to: absent }
types:
  vm: { lifecycle: standard, controller: cloud, placement: true, update: update }
  box: { lifecycle: standard, controller: cloud, placement: true, update: update }
  mod: { lifecycle: standard, controller: cloud, update: update }
  thing: { lifecycle: simple, controller: cloud }
""", 1)

TARGETS = """\
targets:
  s1: { zone: z1, capacity: { vcpu: 4 }, attributes: { cost: 1 } }
  s2: { zone: z2, capacity: { vcpu: 16 }, attributes: { cost: 5 } }
"""


def project(root: Path, inventory: str, request: str) -> Path:
    root.mkdir()
    (root / "catalog.yaml").write_text(CATALOG)
    (root / "inventory.yaml").write_text(TARGETS + inventory)
    (root / "request.yaml").write_text(request)
    (root / "ordo.yaml").write_text(
        "catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n"
        "policies:\n  library: [capacity, anti-affinity, prefer-cheaper-region, protected-resources]\n")
    return root


def plan(root: Path) -> Outcome:
    return make_plan(load_project(root))


def test_a_labelled_part_deleted_or_gone_holds_no_zone_for_its_group(tmp_path: Path) -> None:
    """A part's anti-affinity zone was counted while the plan deleted it, and once it was gone: its zone
    stayed closed to its group for good (located/2 follows the whole, present or not)."""
    whole = "  - { name: w, type: box, state: active, placement: s1, requires: { vcpu: 1 } }\n"
    new = "  - { name: y, type: vm, requires: { vcpu: 2 }, labels: { anti-affinity: g } }\n"
    for state, request in (("active", f"resources:\n  - {{ name: x, type: mod, state: absent }}\n{new}"),
                           ("absent", f"resources:\n{new}")):
        root = project(tmp_path / state, "resources:\n" + whole +
                       f"  - {{ name: x, type: mod, state: {state}, part_of: w, labels: {{ anti-affinity: g }} }}\n",
                       request)
        outcome = plan(root)
        assert outcome.plan is not None and outcome.plan.placements["y"] == "s1", (state, outcome)
    kept = project(tmp_path / "kept", "resources:\n" + whole +
                   "  - { name: x, type: mod, state: active, part_of: w, labels: { anti-affinity: g } }\n",
                   f"resources:\n{new}")
    assert plan(kept).plan.placements["y"] == "s2"   # one that stays still holds its zone


def test_a_protected_resource_of_a_lifecycle_without_milestones_is_not_deleted(tmp_path: Path) -> None:
    """protected-resources read only the "created" milestone, which a lifecycle [absent, up] does not
    map: a protected resource was destroyed, and while another still used it (the base ordering names
    those milestones too, which check now warns of)."""
    root = project(tmp_path / "p", "resources:\n"
                   "  - { name: t1, type: thing, state: up, labels: { protected: true } }\n"
                   "  - { name: v, type: vm, state: active, placement: s2, uses: [t1] }\n",
                   "resources:\n  - { name: t1, type: thing, state: absent }\n"
                   "  - { name: v, type: vm, state: absent }\n")
    outcome = plan(root)
    assert outcome.status == "no_plan", outcome
    assert [(c.policy, c.resources) for c in outcome.explanation.conflicts] == [("protected-resources", ("t1",))]
    checked = run_ordo("check", "-C", root)
    assert checked.code == 0 and "warning: types.thing.lifecycle: type 'thing' has no milestone 'assigned', " \
                                 "'created' or 'active'" in checked.err, checked.text
    mapped = root / "catalog.yaml"
    mapped.write_text(mapped.read_text().replace("    states: [absent, up]\n",
                                                 "    states: [absent, up]\n    milestones: { created: up }\n"))
    assert "has no milestone" not in run_ordo("check", "-C", root).err


def test_params_changed_where_the_update_does_not_run_have_no_plan_not_no_change(tmp_path: Path) -> None:
    """The type's update runs at 'active'; params changed of a resource asked to be 'created' were
    dropped, and the plan said the inventory already matched the request."""
    root = project(tmp_path / "p", "resources:\n"
                   "  - { name: w, type: vm, state: created, placement: s2, attributes: { flavor: small } }\n",
                   "resources:\n  - { name: w, type: vm, state: created, params: { flavor: large } }\n")
    outcome = plan(root)
    assert outcome.status == "no_plan", outcome
    [conflict] = outcome.explanation.conflicts
    assert conflict.policy == "lifecycle" and conflict.resources == ("w",), conflict
    assert "does not run in the state asked for" in conflict.description
    (root / "request.yaml").write_text(
        "resources:\n  - { name: w, type: vm, state: active, params: { flavor: large } }\n")
    assert [op.id for op in plan(root).plan.operations] == ["w/activate", "w/update"]


def test_an_inventory_entry_in_its_initial_state_is_placed_nowhere(tmp_path: Path) -> None:
    """It does not exist: its placement pinned its creation to a target without room, and a pin in the
    request could not move it."""
    root = project(tmp_path / "p", "resources:\n"
                   "  - { name: x, type: vm, state: absent, placement: s1, requires: { vcpu: 2 } }\n"
                   "  - { name: f, type: vm, state: active, placement: s1, requires: { vcpu: 4 } }\n",
                   "resources:\n  - { name: x, type: vm }\n")
    outcome = plan(root)
    assert outcome.plan is not None and outcome.plan.placements["x"] == "s2", outcome


def test_after_a_refusal_a_part_of_a_whole_that_stays_may_be_re_activated(vfw_copy: Path) -> None:
    """A part that exists under a whole that stays on a target that refused (a create) is re-activated
    there (a rollback, a re-plan): counting every part brought up there blocked it (a review's)."""
    deployed = vfw_copy / "inventory-deployed.yaml"
    text = deployed.read_text()
    base = "  - name: vfw-base\n    type: vf-module\n    state: active\n"
    assert base in text
    deployed.write_text(text.replace(base, base.replace("active", "created")))   # vfw-base deactivated
    project = load_project(vfw_copy, vfw_copy / "requests" / "instantiate.yaml", deployed)
    project.model.refused = {"region-two"}
    outcome = make_plan(project)
    assert outcome.plan is not None and [op.id for op in outcome.plan.operations] == ["vfw-base/activate"], outcome
