"""Lifecycle shapes ONAP needs (issue 13): members that outlive their whole,
strict teardown, a requester's order among siblings, and what a replacement
does to the resources related to the replaced one.

Each test plans a small project written here (catalog, inventory, request) and
asserts the plan's order edges, its operations, and what it leaves alone.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import networkx as nx
import pytest

from domain.errors import DiagnosticsError
from domain.project import load_project
from planner.core import make_plan
from planner.plan import Plan
from tests.conftest import run_ordo

CATALOG = """\
controllers:
  so: {}
  sdnc: {}
  cloud: {}
lifecycles:
  # assign -> create -> activate: a real "created" state (a stack, a PNF's config)
  standard:
    states: [absent, assigned, created, active]
    operations:
      assign:     { from: absent,   to: assigned }
      create:     { from: assigned, to: created }
      activate:   { from: created,  to: active }
      deactivate: { from: active,   to: created }
      delete:     { from: created,  to: assigned }
      unassign:   { from: assigned, to: absent }
      update:     { from: active,   to: active }
  # assign -> activate only: "created" is a milestone mapped to "assigned"
  logical:
    states: [absent, assigned, active]
    milestones: { created: assigned }
    operations:
      assign:     { from: absent,   to: assigned }
      activate:   { from: assigned, to: active }
      deactivate: { from: active,   to: assigned }
      unassign:   { from: assigned, to: absent }
types:
  service:   { lifecycle: logical, controller: so }
  vnf:       { lifecycle: logical, controller: sdnc }
  vf-module: { lifecycle: standard, controller: cloud }
  pnf:       { lifecycle: standard, controller: sdnc }
  network:
    lifecycle: standard
    controller: sdnc
    update: update
    operations: { create: { outputs: [network_id] } }
  gateway:   { lifecycle: standard, controller: sdnc }
  router:    { lifecycle: standard, controller: sdnc, update: update }
  host:      { lifecycle: standard, controller: cloud }
  app:       { lifecycle: standard, controller: cloud }
"""

EMPTY_INVENTORY = "targets: {}\nresources: []\n"


def project(tmp_path: Path, request: str, inventory: str = EMPTY_INVENTORY, library: tuple[str, ...] = ()) -> Path:
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(textwrap.dedent(inventory), encoding="utf-8")
    (tmp_path / "request.yaml").write_text(textwrap.dedent(request), encoding="utf-8")
    listed = "".join(f"\n    - {name}" for name in library)
    (tmp_path / "ordo.yaml").write_text(
        f"catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n"
        f"policies:\n  library:{listed or ' []'}\n", encoding="utf-8")
    return tmp_path


def plan_of(root: Path) -> Plan:
    outcome = make_plan(load_project(root))
    assert outcome.plan is not None, outcome.explanation
    return outcome.plan


def ops(plan: Plan) -> set[str]:
    return {op.id for op in plan.operations}


def graph(plan: Plan) -> nx.DiGraph:
    g = nx.DiGraph((e.before, e.after) for e in plan.edges)
    g.add_nodes_from(ops(plan))
    return g


def ordered(plan: Plan, first: str, then: str) -> bool:
    """A chain of edges leads from first to then."""
    return nx.has_path(graph(plan), first, then)


def rules_of(plan: Plan, first: str, then: str) -> tuple[str, ...]:
    [edge] = [e for e in plan.edges if (e.before, e.after) == (first, then)]
    return edge.rules


# --- member_of: a member outlives its whole ----------------------------------

DEPLOYED = """\
targets: {}
resources:
  - { name: svc, type: service, state: active }
  - { name: vnf-1, type: vnf, state: active, part_of: svc }
  - { name: pnf-1, type: pnf, state: active, member_of: [svc] }
"""


def test_a_member_is_ordered_like_a_part_on_the_way_up(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc, type: service }
          - { name: pnf-1, type: pnf, member_of: [svc] }
        """))
    assert ordered(plan, "svc/assign", "pnf-1/assign")
    assert ordered(plan, "pnf-1/activate", "svc/activate")
    assert rules_of(plan, "svc/assign", "pnf-1/assign")== ("<base>/ordering.lp:43",)
    # and nothing orders the member's own create against the whole
    assert not ordered(plan, "pnf-1/create", "svc/assign")


def test_deleting_the_whole_keeps_its_members_and_deletes_its_parts(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc, type: service, state: absent }
        """, DEPLOYED))
    assert {"svc/deactivate", "svc/unassign", "vnf-1/deactivate", "vnf-1/unassign"} <= ops(plan)
    assert not [op for op in ops(plan) if op.startswith("pnf-1/")]
    assert {c.resource for c in plan.resource_changes} == {"svc", "vnf-1"}


def test_a_member_going_with_its_whole_goes_first(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc, type: service, state: absent }
          - { name: pnf-1, type: pnf, state: absent }
        """, DEPLOYED))
    assert ordered(plan, "pnf-1/deactivate", "svc/deactivate")
    assert ordered(plan, "pnf-1/unassign", "svc/unassign")


def test_a_member_may_exist_without_its_whole(tmp_path: Path) -> None:
    # a part may not (ordering.lp: "A part cannot exist without its whole")
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc, type: service, state: absent }
          - { name: pnf-1, type: pnf, member_of: [svc] }
        """))
    assert {op for op in ops(plan) if op.startswith("pnf-1/")} == {"pnf-1/assign", "pnf-1/create", "pnf-1/activate"}
    assert not [op for op in ops(plan) if op.startswith("svc/")]


def test_a_member_of_several_wholes(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc-a, type: service }
          - { name: svc-b, type: service }
          - { name: shared-gw, type: gateway, member_of: [svc-a, svc-b] }
        """))
    for whole in ("svc-a", "svc-b"):
        assert ordered(plan, f"{whole}/assign", "shared-gw/assign")
        assert ordered(plan, "shared-gw/activate", f"{whole}/activate")


def test_part_of_and_member_of_one_whole_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path, """\
        services:
          svc:
            pnfs:
              - { name: pnf-1, member_of: [svc] }
        """)
    with pytest.raises(DiagnosticsError) as info:
        load_project(root)
    [problem] = info.value.diagnostics
    assert (problem.file, problem.line) == ("request.yaml", 4)
    assert problem.summary == "'pnf-1' is both part of 'svc' and a member of it"
    assert "list it outside 'svc' with member_of" in problem.detail


def test_a_request_cannot_make_an_existing_resource_a_member(tmp_path: Path) -> None:
    inventory = DEPLOYED.replace("member_of: [svc] ", "")
    root = project(tmp_path, """\
        resources:
          - { name: pnf-1, type: pnf, member_of: [svc] }
        """, inventory)
    with pytest.raises(DiagnosticsError) as info:
        load_project(root)
    [problem] = info.value.diagnostics
    assert problem.path.endswith("member_of[0]")
    assert "it has no relationship 'member_of' to 'svc'" in problem.summary


def test_member_of_is_in_the_schema_the_vocabulary_and_what_a_run_records(tmp_path: Path) -> None:
    from domain.model import observed_record
    from planner.lint import vocabulary

    for kind in ("request", "inventory"):
        result = run_ordo("schema", kind)
        assert result.code == 0
        assert "member_of" in json.loads(result.out)["$defs"]["ObservedResource" if kind == "inventory"
                                                          else "DesiredResource"]["properties"]
    model = load_project(project(tmp_path, "resources: [{ name: svc, type: service }]\n")).model
    assert "member_of" in vocabulary(model)["relationship kind"]
    model = load_project(project(tmp_path, "resources: []\n", DEPLOYED), need_request=False).model
    record = observed_record(model.resources["pnf-1"], "active", None, {})
    assert record.member_of == ["svc"] and record.relations == {}


# --- strict-teardown: every part's stack is deleted before the whole is deactivated

STACKS = """\
targets: {}
resources:
  - { name: svc, type: service, state: active }
  - { name: vnf-1, type: vnf, state: active, part_of: svc }
  - { name: vnf-1-base, type: vf-module, state: active, part_of: vnf-1 }
  - { name: vnf-1-extra, type: vf-module, state: active, part_of: vnf-1 }
  - { name: pnf-1, type: pnf, state: active, member_of: [vnf-1] }
"""

DELETE_SERVICE = """\
resources:
  - { name: svc, type: service, state: absent }
  - { name: pnf-1, type: pnf, state: absent }
"""


def test_by_default_a_whole_waits_only_for_its_parts_deactivation(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, DELETE_SERVICE, STACKS))
    assert ordered(plan, "vnf-1-base/deactivate", "vnf-1/deactivate")
    assert not ordered(plan, "vnf-1-base/delete", "vnf-1/deactivate")


def test_strict_teardown_deletes_every_stack_before_the_whole_is_deactivated(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, DELETE_SERVICE, STACKS, library=("strict-teardown",)))
    for part, line in (("vnf-1-base", 19), ("vnf-1-extra", 19), ("pnf-1", 21)):
        assert rules_of(plan, f"{part}/delete", "vnf-1/deactivate") == (f"<library>/strict-teardown.lp:{line}",)
    # the VNF's lifecycle only assigns and activates: the service waits for its
    # deactivation (base order), not for its unassignment
    assert ordered(plan, "vnf-1/deactivate", "svc/deactivate")
    assert not ordered(plan, "vnf-1/unassign", "svc/deactivate")
    # parts still go in parallel with each other
    assert not ordered(plan, "vnf-1-base/delete", "vnf-1-extra/deactivate")
    assert not ordered(plan, "vnf-1-extra/delete", "vnf-1-base/deactivate")


def test_strict_teardown_in_the_vfw_example(vfw_copy: Path) -> None:
    text = (vfw_copy / "ordo.yaml").read_text(encoding="utf-8")
    (vfw_copy / "ordo.yaml").write_text(text.replace("    - capacity\n", "    - capacity\n    - strict-teardown\n"),
                                        encoding="utf-8")
    outcome = make_plan(load_project(vfw_copy, request=vfw_copy / "requests/delete.yaml",
                                     inventory=vfw_copy / "inventory-deployed.yaml"))
    assert outcome.plan is not None
    assert ordered(outcome.plan, "vfw-base/delete", "vfw/deactivate")
    result = run_ordo("check", "-C", vfw_copy)
    assert result.code == 0, result.text
    assert "Success! The project is valid.\n" in result.out  # no warning: every word it reads is known


# --- priority: the request's order among siblings ---------------------------

SIBLING_RULE = "<base>/ordering.lp:73"
GATEWAYS = """\
resources:
  - { name: gw-a, type: gateway, priority: 3 }
  - { name: gw-b, type: gateway, priority: 1 }
  - { name: gw-c, type: gateway, priority: 2 }
"""


def test_siblings_come_up_in_the_requested_order(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, GATEWAYS))
    assert plan.status == "optimal"
    for op in ("assign", "create", "activate"):
        assert rules_of(plan, f"gw-b/{op}", f"gw-c/{op}") == (SIBLING_RULE,)
        assert rules_of(plan, f"gw-c/{op}", f"gw-a/{op}") == (SIBLING_RULE,)
    assert [c.priority for c in plan.cost] == [-1] and plan.cost[0].cost == 0
    # consecutive priorities only: gw-b reaches gw-a through gw-c
    assert not [e for e in plan.edges if (e.before, e.after) == ("gw-b/assign", "gw-a/assign")]
    # gw-b is not held until gw-c is done: a milestone at a time
    assert not ordered(plan, "gw-c/activate", "gw-b/activate") and ordered(plan, "gw-b/assign", "gw-c/create")
    assert plan.waves[0] == ("gw-b/assign",)


def test_without_priorities_siblings_run_side_by_side(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, GATEWAYS.replace(", priority: 3", "").replace(", priority: 1", "")
                           .replace(", priority: 2", "")))
    assert plan.status == "satisfiable"  # nothing to optimise: the base preference is idle
    assert plan.waves[0] == ("gw-a/assign", "gw-b/assign", "gw-c/assign")
    assert plan.cost == ()


def test_siblings_leave_in_the_reverse_order(tmp_path: Path) -> None:
    # priorities order the parts of one whole; an existing resource may be given one
    plan = plan_of(project(tmp_path, """\
        services:
          svc:
            state: absent
            vnfs:
              - name: vnf-1
                state: absent
                vf_modules:
                  - { name: vnf-1-base, state: absent, priority: 1 }
                  - { name: vnf-1-extra, state: absent, priority: 2 }
        """, STACKS.replace("member_of: [vnf-1]", "member_of: [svc]")))
    for op in ("deactivate", "delete", "unassign"):
        assert rules_of(plan, f"vnf-1-extra/{op}", f"vnf-1-base/{op}") == (SIBLING_RULE,)


def test_siblings_with_nothing_to_do_do_not_break_the_order(tmp_path: Path) -> None:
    # gw-c (priority 2) exists already: gw-b (1) still comes before gw-a (3)
    plan = plan_of(project(tmp_path, GATEWAYS, "targets: {}\nresources:\n"
                                               "  - { name: gw-c, type: gateway, state: active }\n"))
    for op in ("assign", "create", "activate"):
        assert rules_of(plan, f"gw-b/{op}", f"gw-a/{op}") == (SIBLING_RULE,)


def test_only_siblings_are_ordered(tmp_path: Path) -> None:
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: svc-a, type: service, priority: 2 }
          - { name: svc-b, type: service, priority: 1 }
          - { name: gw-a, type: gateway, part_of: svc-a, priority: 1 }
          - { name: gw-b, type: gateway, part_of: svc-b, priority: 2 }
        """))
    assert ordered(plan, "svc-b/assign", "svc-a/assign")
    # parts of different wholes: their priorities do not compare
    assert not ordered(plan, "gw-a/create", "gw-b/create") and not ordered(plan, "gw-b/create", "gw-a/create")


def test_a_dependency_overrides_the_requested_order(tmp_path: Path) -> None:
    # gw-a comes first by priority, but it uses gw-b: it is created only once gw-b is active
    plan = plan_of(project(tmp_path, """\
        resources:
          - { name: gw-a, type: gateway, priority: 1, uses: [gw-b] }
          - { name: gw-b, type: gateway, priority: 2 }
        """))
    assert rules_of(plan, "gw-b/activate", "gw-a/create") == ("<base>/ordering.lp:12",)
    assert rules_of(plan, "gw-a/assign", "gw-b/assign") == (SIBLING_RULE,)  # what can be kept is kept
    assert not ordered(plan, "gw-a/create", "gw-b/create")
    assert [(c.priority, c.cost) for c in plan.cost] == [(-1, 2)]  # create and activate given up


def test_priority_is_a_goal_the_inventory_does_not_record(tmp_path: Path) -> None:
    root = project(tmp_path, "resources: []\n", """\
        targets: {}
        resources:
          - { name: gw-a, type: gateway, state: active, priority: 1 }
        """)
    with pytest.raises(DiagnosticsError) as info:
        load_project(root)
    [problem] = info.value.diagnostics
    assert (problem.file, problem.line, problem.path) == ("inventory.yaml", 3, "resources[0].priority")
    result = run_ordo("schema", "request")
    assert "priority" in json.loads(result.out)["$defs"]["DesiredResource"]["properties"]


def test_check_knows_the_new_words(tmp_path: Path) -> None:
    root = project(tmp_path, GATEWAYS)
    (root / "mine.lp").write_text(textwrap.dedent("""\
        %@ name: first-gateway
        %@ description: The first gateway is never a member of anything.
        %@ owner: test
        %@ enforcement: hard
        % first-gateway: the first gateway is never a member of anything.
        :- priority(R,1), relation("member_of",R,_).
        """), encoding="utf-8")
    (root / "ordo.yaml").write_text((root / "ordo.yaml").read_text(encoding="utf-8") + "  files: [mine.lp]\n",
                                    encoding="utf-8")
    result = run_ordo("check", "-C", root)
    assert (result.code, result.out) == (0, "Success! The project is valid.\n"), result.text
    (root / "mine.lp").write_text('priority("gw-a",0).\n', encoding="utf-8")
    result = run_ordo("check", "-C", root)
    assert result.code == 1 and "priority/2" in result.text


# --- replace/1: what happens to what relates to the replaced resource --------

REPLACING = """\
targets: {}
resources:
  - { name: net-1, type: network, state: active, attributes: { network_id: n-1 } }
  - { name: svc, type: service, state: active }
  - { name: net-1-port, type: gateway, state: active, part_of: net-1 }
  - { name: router-1, type: router, state: active, uses: [net-1] }
  - { name: gw-1, type: gateway, state: active, uses: [net-1] }
  - { name: app-1, type: app, state: active, hosted_on: gw-1 }
  - { name: pnf-1, type: pnf, state: active, member_of: [net-1] }
  - { name: router-2, type: router, state: active }
  - { name: gw-2, type: gateway, state: active }
"""

REPLACE_NET = """\
%@ name: renew-net
%@ description: The network is rebuilt.
%@ owner: test
%@ enforcement: hard
replace("net-1").
"""


def replacing(tmp_path: Path, request: str = "resources: []\n") -> Plan:
    root = project(tmp_path, request, REPLACING)
    (root / "renew.lp").write_text(REPLACE_NET, encoding="utf-8")
    (root / "ordo.yaml").write_text((root / "ordo.yaml").read_text(encoding="utf-8") + "  files: [renew.lp]\n",
                                    encoding="utf-8")
    return plan_of(root)


def test_a_user_that_can_update_is_re_pointed_after_the_replacement_is_active(tmp_path: Path) -> None:
    plan = replacing(tmp_path)
    assert {op for op in ops(plan) if op.startswith("router-1/")} == {"router-1/update"}
    assert ordered(plan, "net-1/activate", "router-1/update")
    assert [c.actions for c in plan.resource_changes if c.resource == "router-1"] == [("update",)]


def test_a_user_that_cannot_update_and_what_it_hosts_are_rebuilt(tmp_path: Path) -> None:
    plan = replacing(tmp_path)
    down, up = ("deactivate", "delete", "unassign"), ("assign", "create", "activate")
    for name in ("gw-1", "app-1", "net-1", "net-1-port"):
        assert {f"{name}/{op}" for op in down + up} <= ops(plan), name
    # gw-1 uses net-1: deleted before net-1 is deactivated, created once it is active again
    assert ordered(plan, "gw-1/delete", "net-1/deactivate")
    assert ordered(plan, "net-1/activate", "gw-1/create")
    # app-1 is hosted on gw-1: unassigned before gw-1 goes down, assigned once it is up
    assert ordered(plan, "app-1/unassign", "gw-1/deactivate")
    assert ordered(plan, "gw-1/activate", "app-1/assign")


def test_members_and_unrelated_resources_are_left_alone(tmp_path: Path) -> None:
    plan = replacing(tmp_path)
    touched = {op.split("/")[0] for op in ops(plan)}
    assert touched == {"net-1", "net-1-port", "router-1", "gw-1", "app-1"}


def test_a_resource_reading_an_output_of_the_replaced_one_is_re_pointed(tmp_path: Path) -> None:
    plan = replacing(tmp_path, """\
        resources:
          - { name: router-2, type: router, params: { network: "${net-1.outputs.network_id}" } }
          - { name: gw-2, type: gateway, params: { network: "${net-1.outputs.network_id}" } }
        """)
    assert {op for op in ops(plan) if op.startswith("router-2/")} == {"router-2/update"}
    assert ordered(plan, "net-1/create", "router-2/update")
    # a type without an update is rebuilt, and created once the new output exists
    assert {"gw-2/deactivate", "gw-2/delete", "gw-2/unassign", "gw-2/assign", "gw-2/create"} <= ops(plan)
    assert ordered(plan, "net-1/create", "gw-2/create")


def test_strict_teardown_in_policy_tests(tmp_path: Path) -> None:
    root = project(tmp_path, DELETE_SERVICE, STACKS, library=("strict-teardown",))
    (root / "tests").mkdir()
    (root / "tests" / "teardown_test.yaml").write_text(textwrap.dedent("""\
        tests:
          - name: stacks go before the VNF is deactivated
            expect:
              before: [[vnf-1-base/delete, vnf-1/deactivate], [pnf-1/delete, vnf-1/deactivate]]
          - name: without it the VNF waits only for deactivation
            policies: { without: [strict-teardown] }
            expect:
              before: [[vnf-1-base/deactivate, vnf-1/deactivate]]
        """), encoding="utf-8")
    result = run_ordo("test", "-C", root, "--coverage")
    assert result.code == 0, result.text
    [line] = [x for x in result.out.splitlines() if x.startswith("<library>/strict-teardown.lp")]
    assert line.split()[1:] == ["2/2", "100%"]  # both its rules make edges of a test's plan


def test_a_reader_whose_lifecycle_has_no_created_milestone_waits_for_the_value(tmp_path: Path) -> None:
    """The rule of data orders the operation that raises the reader to "created"; a lifecycle with no
    such milestone (absent -> present) had none, so its create ran beside the producer's and went
    without the param (the engine leaves out a value not known yet). Every operation of the reader
    now comes after the producer's."""
    (tmp_path / "catalog.yaml").write_text(
        "controllers:\n  c: {}\nlifecycles:\n  plain:\n    states: [absent, present]\n    operations:\n"
        "      create: {from: absent, to: present}\n      delete: {from: present, to: absent}\n"
        "types:\n  thing: {lifecycle: plain, controller: c, operations: {create: {outputs: [addr]}}}\n")
    (tmp_path / "inventory.yaml").write_text(EMPTY_INVENTORY)
    (tmp_path / "request.yaml").write_text('resources:\n  - {name: a, type: thing}\n'
                                           '  - {name: b, type: thing, params: {peer: "${a.outputs.addr}"}}\n'
                                           '  - {name: c, type: thing}\n')
    (tmp_path / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n")
    plan = plan_of(tmp_path)
    assert rules_of(plan, "a/create", "b/create") == ("<base>/ordering.lp:79",)
    assert [sorted(wave) for wave in plan.waves] == [["a/create", "c/create"], ["b/create"]]


def test_a_replaced_producer_holds_only_the_readers_way_up(tmp_path: Path) -> None:
    """The rule above first held every operation of the reader, its teardown too: a part that reads its
    whole's output, the whole replaced, had no plan (a cycle through the part's unassign; a review's).
    Only the operation that takes the reader to its goal waits for the value."""
    (tmp_path / "catalog.yaml").write_text(
        "controllers: {c: {}}\nlifecycles:\n  twostep:\n    states: [absent, assigned, active]\n"
        "    operations:\n      assign: {from: absent, to: assigned}\n      activate: {from: assigned, to: active}\n"
        "      deactivate: {from: active, to: assigned}\n      unassign: {from: assigned, to: absent}\n"
        "types:\n  whole: {lifecycle: twostep, controller: c, operations: {assign: {outputs: [id]}}}\n"
        "  part: {lifecycle: twostep, controller: c}\n")
    (tmp_path / "inventory.yaml").write_text("targets: {}\nresources:\n"
                                             "  - {name: w, type: whole, state: active, attributes: {id: w1}}\n"
                                             "  - {name: p, type: part, state: active, part_of: w}\n")
    (tmp_path / "request.yaml").write_text('resources:\n  - {name: w, type: whole}\n'
                                           '  - {name: p, type: part, part_of: w, params: {wid: "${w.outputs.id}"}}\n')
    (tmp_path / "renew.lp").write_text("%@ name: renew\n%@ description: the whole is replaced\n%@ owner: t\n"
                                       '%@ enforcement: hard\nreplace("w").\n')
    (tmp_path / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n"
                                        "policies:\n  files: [renew.lp]\n")
    plan = plan_of(tmp_path)
    assert ordered(plan, "p/unassign", "w/unassign") and ordered(plan, "w/assign", "p/activate")
    assert rules_of(plan, "w/assign", "p/activate") == ("<base>/ordering.lp:79",)


def test_a_replacement_plans_without_the_base_librarys_own_warnings(tmp_path: Path) -> None:
    """Replacing a volume group of the deployed vFW printed clingo's "operation undefined: ((D+-1))" six times,
    at <base>/lifecycle.lp (the grounder's #min of a distance it does not know yet: #sup, less 1): words of
    ordo's own library, no author's to act on."""
    from tests.conftest import VFW

    renew = tmp_path / "renew.lp"
    renew.write_text('%@ name: renew-logs\n%@ description: the logs volume anew\nreplace("vfw-logs").\n')
    done = run_ordo("plan", "-C", VFW, "--inventory", VFW / "inventory-deployed.yaml", "--policy", renew)
    assert done.code == 0 and "vfw-logs" in done.out and "delete" in done.out, done.text
    assert "warning" not in done.err.lower(), done.err


def test_a_resource_moved_shows_as_replaced_and_where_it_goes(tmp_path: Path) -> None:
    """vfw, torn down on region-two and made again on region-three, showed as "*" (3 to run) with no new
    placement: what an operator approves hid the move (an operator's sweep). Replaced now: -/+, counted as
    deleted and created (Terraform's), its new target listed; and a run of it claims that target."""
    from domain.project import load_project
    from executor.claims import run_claims, target_claim
    from ordo.render import plan_lines
    from tests.conftest import VFW

    move = tmp_path / "move.lp"
    move.write_text('%@ name: move-vfw\n%@ description: off region-two\n'
                    'replace("vfw").\n:- place("vfw","region-two").\n')
    project = load_project(VFW, VFW / "requests" / "scale-out.yaml", VFW / "inventory-deployed.yaml", [move])
    plan = make_plan(project).plan
    changes = {c.resource: c for c in plan.resource_changes}
    assert changes["vfw"].actions == ("delete", "create") and changes["vfw"].placement == "region-three"
    assert changes["vfw-base"].actions == ("delete", "create") and changes["vfw-base"].placement is None
    assert plan.counts() == {"create": 4, "change": 0, "delete": 3, "run": 0}
    lines = [text for text, _ in plan_lines(plan)]
    assert any(t.startswith("  -/+ vnf.vfw ") for t in lines) and "  vfw -> region-three" in lines, lines
    assert target_claim("region-three") in run_claims(project, plan)   # (not claimed: actions were "run")
    assert Plan.from_json(plan.to_json()) == plan   # read back as written


def test_a_move_a_stock_policy_makes_on_a_re_plan_shows_as_replaced(vfw_copy: Path) -> None:
    """region-two refused vfw's stack: the re-plan moved vfw, half built there, to region-three, but showed
    it and its parts as changed (~), since their goal was not their state then (a review's)."""
    from executor.journal import Journal

    done = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation",
                    vfw_copy / "simulations" / "region-two-refuses.yaml")
    assert done.code == 0 and "moves vfw: region-two -> region-three" in done.out, done.text
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        replanned = Plan.from_json([ev.data["plan"] for ev in jr.events(1) if ev.kind == "replan"][0])
    vfw = next(c for c in replanned.resource_changes if c.resource == "vfw")
    assert vfw.actions == ("delete", "create") and vfw.placement == "region-three", vfw
