"""`ordo test`: policy test files, their expectations, errors, exit codes and coverage."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from planner import testing
from tests.conftest import EXAMPLES, VFW, run_ordo

VCPE = EXAMPLES / "vcpe"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run_files(*paths: Path, coverage: bool = False, select: str | None = None,
              project: Path | None = None) -> testing.Report:
    base = paths[0] if paths[0].is_dir() else paths[0].parent
    collection = testing.collect(testing.discover(list(paths)), project=project, base=base, select=select)
    return testing.run(collection, coverage=coverage, base=base)


def only(report: testing.Report) -> testing.CaseResult:
    assert not report.errors, [str(d) for d in report.errors]
    [result] = report.results
    return result


def messages(result: testing.CaseResult) -> list[str]:
    return [str(f) for f in result.failures] + [str(d) for d in result.errors]


# --- the examples ship with passing tests -------------------------------------------


def test_vfw_example_tests_pass_with_full_coverage():
    run = run_ordo("test", "-C", VFW, "--coverage")
    assert run.code == 0, run.text
    assert run.out.startswith("collected 20 tests in 4 files")
    assert "examples/vfw/tests/placement_test.yaml ......\n" in run.out
    assert "<library>/avoid-refused-targets.lp               2/2    100%" in run.out
    assert "TOTAL                                            6/6    100%" in run.out
    assert run.out.rstrip().endswith("=")
    assert " 20 passed in " in run.out.splitlines()[-1]


def test_vcpe_example_tests_pass_with_full_coverage():
    run = run_ordo("test", "-C", VCPE, "--coverage", "--fail-under", "100")
    assert run.code == 0, run.text
    assert "examples/vcpe/policies/vg-follows-vgmux.lp        4/4    100%" in run.out
    assert "<library>/prefer-cheaper-region.lp                 -        (no constraints or ordering rules)" \
        in run.out
    assert "Not exercised" not in run.out


# --- expectations: each kind passes and fails with a clear message ---------------------


PASSING = f"""
project: {VFW}
tests:
  - name: everything holds
    expect:
      status: plan
      operations: [vfw/assign, vfw]
      absent: [onap-mgmt-net, vfw/unassign]
      before: [[vfw-base/activate, vfw/config-deploy]]
      placements: {{ vfw: region-two, vsink: [region-one, region-three] }}
      violations: []
      count: {{ operations: 32, waves: 10, create: 10, change: 0, delete: 0, run: 0 }}
  - name: no plan, with the policies to blame
    inventory: {VFW}/inventory-deployed.yaml
    request: {VFW}/requests/delete-mgmt-net.yaml
    expect:
      status: no_plan
      conflicts: [ordering, {{ policy: protected-resources, resources: [onap-mgmt-net] }}]
"""


def test_every_expectation_kind_can_pass(tmp_path):
    report = run_files(write(tmp_path, "ok_test.yaml", PASSING))
    assert [r.outcome for r in report.results] == ["passed", "passed"], [messages(r) for r in report.results]
    assert report.ok


FAILING = f"""
project: {VFW}
tests:
  - name: wrong about everything
    expect:
      operations: [vfw/unassign, vfw-logs/update]
      absent: [vfw/assign, vpg]
      before:
        - [vfw/activate, vfw-base/activate]
        - [vpg/activate, vsink/activate]
        - [vfw/unassign, vfw/assign]
      placements: {{ vfw: region-three, vpg: [region-two, region-three] }}
      violations: [capacity]
      count: {{ operations: 3 }}
"""


def test_each_failing_expectation_names_its_line_with_expected_and_got(tmp_path):
    result = only(run_files(write(tmp_path, "bad_test.yaml", FAILING)))
    assert result.outcome == "failed"
    assert (result.file, result.line) == ("bad_test.yaml", 3)
    assert messages(result) == [
        "bad_test.yaml:5:20: expect.operations[0]: vfw/unassign is not in the plan "
        "(operations on vfw: vfw/activate, vfw/assign, vfw/config-assign, vfw/config-deploy)",
        "bad_test.yaml:5:34: expect.operations[1]: vfw-logs/update is not in the plan (operations on vfw-logs: "
        "vfw-logs/activate, vfw-logs/assign, vfw-logs/create)",
        "bad_test.yaml:6:16: expect.absent[0]: vfw/assign is in the plan (wave 2: requested: active (now absent))",
        "bad_test.yaml:6:28: expect.absent[1]: the plan has operations on vpg: "
        "vpg/activate, vpg/assign, vpg/config-assign, vpg/config-deploy",
        "bad_test.yaml:8:11: expect.before[0]: vfw/activate comes after vfw-base/activate: "
        "vfw-base/activate -> vfw/activate",
        "bad_test.yaml:9:11: expect.before[1]: no chain of precedences leads from vpg/activate to vsink/activate "
        "(waves 8 and 8: they are not ordered)",
        "bad_test.yaml:10:11: expect.before[2]: vfw/unassign is not in the plan",
        "bad_test.yaml:11:26: expect.placements.vfw: expected vfw on region-three, got region-two",
        "bad_test.yaml:11:45: expect.placements.vpg: expected vpg on region-two or region-three, got region-one",
        "bad_test.yaml:12:19: expect.violations: expected the plan to violate capacity; it violates none",
        "bad_test.yaml:13:28: expect.count.operations: expected 3, got 32",
    ]
    assert result.got[0] == ("a plan (optimal): 32 operations in 10 waves; 10 to create, 0 to change, "
                             "0 to delete")


def test_status_and_conflict_failures(tmp_path):
    path = write(tmp_path, "status_test.yaml", f"""
        project: {VFW}
        inventory: {VFW}/inventory-deployed.yaml
        tests:
          - name: expects no plan
            request: {VFW}/requests/delete.yaml
            expect: {{ conflicts: [capacity] }}
          - name: expects a plan
            request: {VFW}/requests/delete-mgmt-net.yaml
            expect: {{ absent: [vfw] }}
          - name: blames the wrong policy
            request: {VFW}/requests/delete-mgmt-net.yaml
            expect:
              conflicts: [capacity, {{ policy: protected-resources, resources: [vfw] }}]
    """)
    report = run_files(path)
    assert [r.outcome for r in report.results] == ["failed"] * 3
    assert [messages(r) for r in report.results] == [
        ["status_test.yaml:6:26: expect.conflicts: expected no plan; got one with 26 operation(s)"],
        ["status_test.yaml:9:23: expect.absent: expected a plan; got none: no plan satisfies every policy; "
         "drop or relax: ordering, protected-resources"],
        ["status_test.yaml:13:18: expect.conflicts: expected the explanation to name capacity, protected-resources; "
         "it names ordering, protected-resources",
         "status_test.yaml:13:71: expect.conflicts[1].resources: protected-resources is not named for vfw "
         "(it is for: onap-mgmt-net)"],
    ]
    assert report.results[2].got[-1] == "  protected-resources (<library>/protected-resources.lp:8): R=onap-mgmt-net"


def test_soft_violations_with_resources(tmp_path):
    path = write(tmp_path, "soft_test.yaml", f"""
        project: {VFW}
        tests:
          - name: advisory capacity is reported
            policies: {{ enforcement: {{ capacity: {{ level: advisory }} }} }}
            expect:
              violations: [{{ policy: capacity, resources: [vfw, vsink] }}]
          - name: but not for vpg
            policies: {{ enforcement: {{ capacity: {{ level: advisory }} }} }}
            expect:
              violations: [{{ policy: capacity, resources: [vpg] }}]
    """)
    first, second = run_files(path).results
    assert first.outcome == "passed"
    assert messages(second) == [
        "soft_test.yaml:10:51: expect.violations[0].resources: capacity is not violated for vpg "
        "(it is for: vfw, vsink)"]


def test_a_violation_names_the_resources_its_rule_binds_not_all_placed_on_its_target(tmp_path):
    """private-db binds R=db, T=site-a: "resources: web" passed too, since web was placed on site-a (a policy
    author's sweep). A rule of targets alone (capacity, above) still names what is placed there."""
    project = tmp_path / "p"
    assert run_ordo("init", project).code == 0
    path = write(project / "tests", "viol_test.yaml", """
        tests:
          - name: db only
            policies: { enforcement: { private-db: { level: soft } } }
            expect:
              violations: [{ policy: private-db, resources: [db] }]
          - name: not web
            policies: { enforcement: { private-db: { level: soft } } }
            expect:
              violations: [{ policy: private-db, resources: [web] }]
    """)
    first, second = run_files(path).results
    assert first.outcome == "passed", messages(first)
    assert second.outcome == "failed" and "private-db is not violated for web (it is for: db)" in messages(second)[0]


# --- models inline or by path, learnt facts, policy changes -----------------------------


def test_inline_models_learnt_facts_and_policy_changes(tmp_path):
    path = write(tmp_path, "replan_test.yaml", f"""
        project: {VFW}
        tests:
          - name: refused region
            learnt: {{ refused: [region-two] }}
            expect: {{ placements: {{ vfw: region-one }} }}
          - name: stock policy dropped
            policies: {{ without: [avoid-refused-targets] }}
            learnt: {{ refused: [region-two] }}
            expect: {{ placements: {{ vfw: region-two }} }}
          - name: only the project's ordering rule
            policies: {{ only: [config-after-modules, prefer-cheaper-region] }}
            expect: {{ placements: {{ vfw: region-two, vpg: region-two, vsink: region-two }} }}
          - name: an extra policy file
            policies: {{ files: [no-region-two.lp] }}
            expect: {{ placements: {{ vfw: region-one }} }}
          - name: inline inventory and request
            inventory:
              targets: {{ only-one: {{ zone: z, capacity: {{ vcpu: 4 }} }} }}
            request:
              resources:
                - {{ name: box, type: vnf, requires: {{ vcpu: 3 }} }}
            expect:
              placements: {{ box: only-one }}
              operations: [box/assign, box/activate]
              count: {{ create: 1 }}
    """)
    write(tmp_path, "no-region-two.lp", """
        %@ name: no-region-two
        %@ enforcement: hard
        % nothing new on region-two
        :- place(R,"region-two").
    """)
    report = run_files(path)
    assert [(r.name, r.outcome) for r in report.results] == [
        ("refused region", "passed"), ("stock policy dropped", "passed"),
        ("only the project's ordering rule", "passed"), ("an extra policy file", "passed"),
        ("inline inventory and request", "passed")], [messages(r) for r in report.results]


def test_problems_found_once_the_models_load_make_the_test_an_error(tmp_path):
    path = write(tmp_path, "names_test.yaml", f"""
        project: {VFW}
        tests:
          - name: misspelt
            learnt: {{ refused: [region-2], failed: [vfw-bse/create] }}
            policies: {{ without: [capcity], library: [replace-faild], enforcement: {{ nope: {{ level: soft }} }} }}
            expect:
              operations: [vfww/assign, vfw/asign]
              before: [[vfw, vfw/assign]]
              placements: {{ vfw-base: region-one, vfw: region-9 }}
              violations: [capacty]
          - name: inline model with a typo
            request:
              resources: [{{ name: net, type: netwrk, state: active }}]
            expect: {{ status: plan }}
    """)
    first, second = run_files(path).results
    assert first.outcome == second.outcome == "error"
    assert messages(first) == [
        "names_test.yaml:4:25: error: tests[0].learnt.refused[0]: unknown target 'region-2' "
        "(did you mean 'region-two'?)",
        "names_test.yaml:4:45: error: tests[0].learnt.failed[0]: unknown resource 'vfw-bse' "
        "(did you mean 'vfw-base'?)",
        "names_test.yaml:5:27: error: tests[0].policies.without[0]: the project has no policy 'capcity' "
        "(did you mean 'capacity'?)",
        "names_test.yaml:5:47: error: tests[0].policies.library[0]: unknown library policy 'replace-faild' "
        "(did you mean 'replace-failed'?)",
        "names_test.yaml:5:84: error: tests[0].policies.enforcement.nope: no policy 'nope' is loaded in this "
        "test (expected one of: anti-affinity, avoid-refused-targets, capacity, config-after-modules, "
        "prefer-cheaper-region, protected-resources)",
        "names_test.yaml:7:20: error: tests[0].expect.operations[0]: unknown resource 'vfww' "
        "(did you mean 'vfw'?)",
        "names_test.yaml:7:33: error: tests[0].expect.operations[1]: 'vfw' (a vnf) has no operation 'asign' "
        "(did you mean 'assign'?)",
        "names_test.yaml:8:17: error: tests[0].expect.before[0][0]: expected RESOURCE/OPERATION, got 'vfw' "
        "(e.g. vfw/assign)",
        "names_test.yaml:9:31: error: tests[0].expect.placements.vfw-base: 'vfw-base' is not placed on targets "
        "(its type 'vf-module' has no 'placement: true')",
        "names_test.yaml:9:48: error: tests[0].expect.placements.vfw: unknown target 'region-9' "
        "(did you mean 'region-two'?)",
        "names_test.yaml:10:20: error: tests[0].expect.violations[0]: no policy 'capacty' is loaded in this test "
        "(did you mean 'capacity'?)",
    ]
    assert messages(second) == [
        "names_test.yaml:13:38: error: tests[1].request.resources[0].type: unknown resource type 'netwrk' "
        "(did you mean 'network'?)"]


# --- problems in test files: every one, with file:line:col --------------------------------


def test_file_problems_are_all_reported_and_nothing_runs(tmp_path):
    path = write(tmp_path, "broken_test.yaml", f"""
        project: {VFW}
        tests:
          - name: typo
            expect:
              placement: {{ vfw: region-two }}
          - name: half a pair
            expect: {{ before: [[a/b]] }}
          - name: typo
            request: nope.yaml
            expect: {{}}
          - name: both ways
            expect: {{ conflicts: [capacity], operations: [vfw/assign] }}
          - expect: {{ status: maybe }}
    """)
    report = run_files(path)
    assert report.results == []
    assert [str(d) for d in report.errors] == [
        "broken_test.yaml:5:18: error: tests[0].expect.placement: unknown field 'placement' "
        "(did you mean 'placements'?)",
        "broken_test.yaml:7:24: error: tests[1].expect.before[0]: expected a pair [A, B] of operations "
        "(A comes before B), got ['a/b']",
        "broken_test.yaml:8:11: error: tests[2].name: test 'typo' is named twice (first at line 3)",
        "broken_test.yaml:9:14: error: tests[2].request: no such file 'nope.yaml' "
        "(the path is relative to this test file)",
        "broken_test.yaml:10:13: error: tests[2].expect: the test expects nothing (give status, operations, "
        "absent, before, placements, violations, conflicts or count)",
        "broken_test.yaml:12:50: error: tests[3].expect.operations: 'operations' expects a plan, but "
        "'conflicts' expects none (a test has either a plan or no plan: make these two tests)",
        "broken_test.yaml:13:5: error: tests[4].name: missing required field 'name'",
        "broken_test.yaml:13:23: error: tests[4].expect.status: input should be 'plan' or 'no_plan'",
    ]


def test_a_boolean_count_and_an_empty_list_of_targets_are_refused(tmp_path):
    """`waves: true` was taken as 1 and passed; `placements: {vfw: []}` failed at run time as
    "expected vfw on , got region-two" (the hostile sweep of 6 December)."""
    path = write(tmp_path, "lax_test.yaml", f"""
        project: {VFW}
        tests:
          - name: lax
            expect:
              count: {{ waves: true, delete: 0 }}
              placements: {{ vfw: [] }}
    """)
    report = run_files(path)
    assert report.results == []
    assert [str(d) for d in report.errors] == [
        "lax_test.yaml:5:23: error: tests[0].expect.count.waves: expected a number, not true",
        "lax_test.yaml:6:26: error: tests[0].expect.placements.vfw: value should have at least 1 item after "
        "validation, not 0",
    ]


def test_bad_yaml_and_missing_project(tmp_path):
    write(tmp_path, "syntax_test.yaml", "tests:\n  - name: [unclosed\n")
    write(tmp_path, "noproject_test.yaml", "project: nowhere\ntests:\n  - name: x\n    expect: { status: plan }\n")
    report = run_files(tmp_path)
    located = [d.location for d in report.errors]
    assert located[0] == "noproject_test.yaml:1:10"
    assert "no ordo.yaml at 'nowhere'" in str(report.errors[0])
    assert located[1].startswith("syntax_test.yaml:3:")
    assert "invalid YAML" in str(report.errors[1])


# --- the command: output and exit codes ---------------------------------------------------


def test_cli_failure_report_and_exit_code_1(tmp_path):
    write(tmp_path, "bad_test.yaml", FAILING)
    write(tmp_path, "ok_test.yaml", PASSING)
    run = run_ordo("test", tmp_path, cwd=tmp_path)
    assert run.code == 1, run.text
    lines = run.out.splitlines()
    assert lines[:3] == ["collected 3 tests in 2 files", "bad_test.yaml F", "ok_test.yaml .."]
    assert "= FAILURES =" in run.out
    assert "_ wrong about everything (bad_test.yaml:3) _" in run.out
    assert "bad_test.yaml:11:26: expect.placements.vfw: expected vfw on region-three, got region-two" in run.out
    assert "  got: a plan (optimal): 32 operations in 10 waves" in run.out
    assert "FAILED bad_test.yaml:3: wrong about everything - vfw/unassign is not in the plan" in run.out
    assert lines[-1].startswith("=") and " 2 passed, 1 failed in " in lines[-1]


@pytest.mark.parametrize("args,code,text", [
    (["broken_test.yaml"], 2, "Interrupted: 1 error in test files"),
    (["missing.yaml"], 4, "file or folder not found: missing.yaml"),
    (["--no-such-option"], 4, "No such option"),
    (["ok_test.yaml", "-k", "nothing matches"], 5, "2 deselected in"),
    (["ok_test.yaml", "-k", "HOLDS", "-v"], 0, "ok_test.yaml:3: everything holds PASSED"),
])
def test_cli_exit_codes(tmp_path, args, code, text):
    write(tmp_path, "ok_test.yaml", PASSING)
    write(tmp_path, "broken_test.yaml", f"project: {VFW}\ntests: [{{ name: x, expect: {{ statuss: plan }} }}]\n")
    run = run_ordo("test", *args, cwd=tmp_path)
    assert run.code == code, run.text
    assert text in run.text


def test_no_tests_folder_is_exit_5(tmp_path):
    run = run_ordo("test", "-C", tmp_path)
    assert run.code == 5
    assert "no tests ran" in run.out


# --- coverage ---------------------------------------------------------------------------


def test_coverage_lists_what_no_test_exercised():
    run = run_ordo("test", "-C", VCPE, "tests/goals_test.yaml", "--coverage", "--fail-under", "50")
    assert run.code == 1, run.text
    assert "examples/vcpe/policies/vg-follows-vgmux.lp        1/4     25%" in run.out
    assert "TOTAL                                             3/11    27%" in run.out
    assert ("  examples/vcpe/policies/vg-follows-vgmux.lp:23: before: before(X,Y) :- "
            'relation("connects_to",G,M), raises(M,"active",X), raises(G,"created",Y).') in run.out
    assert "Coverage 27% is under 50%." in run.err


def test_a_constraint_is_exercised_when_it_holds_a_plan_back():
    # The bring-up plan satisfies vg-follows-vgmux's placement rule; the probe
    # shows that without it the vGs would go to cheaper regions. The rule about
    # goals (line 31) no plan can show: only a test without a plan does.
    report = run_files(VCPE / "tests" / "ordering_test.yaml", coverage=True)
    assert report.ok
    by_rule = {(r.file.rsplit("/", 1)[-1], r.line): r.exercised_by for f in report.coverage.files for r in f.rules}
    assert by_rule[("vg-follows-vgmux.lp", 18)] == ["ordering_test.yaml:4"]
    assert by_rule[("vg-follows-vgmux.lp", 23)] == ["ordering_test.yaml:4"]
    assert by_rule[("vg-follows-vgmux.lp", 27)] == ["ordering_test.yaml:11"]
    assert by_rule[("vg-follows-vgmux.lp", 31)] == []
    assert by_rule[("protected-resources.lp", 8)] == []


def test_a_policy_that_grounds_without_end_errs_its_test_and_the_rest_are_not_run(vfw_copy):
    """The first case waits for the time limit and errs, naming the policy and the setting to raise (not
    a --timeout `ordo test` does not have); the cases after it would each wait as long, and are errors
    that say why they did not run. Exit 1, as for any error in a case, not 4 (a usage error)."""
    write(vfw_copy / "policies", "endless.lp", "%@ name: endless\nn(0).\nn(X+1) :- n(X).\n")
    text = (vfw_copy / "ordo.yaml").read_text()
    listed = "    - policies/config-after-modules.lp"
    text = text.replace(listed, listed + "\n    - policies/endless.lp")
    (vfw_copy / "ordo.yaml").write_text(re.sub(r"solve_timeout: \d+", "solve_timeout: 1", text))
    assert "solve_timeout: 1 " in (vfw_copy / "ordo.yaml").read_text()
    # a case without that policy runs, and so do the cases of another project (one run: each limit costs 2 s)
    write(vfw_copy / "tests", "without_test.yaml", """
        project: ..
        tests:
        - name: without the endless policy
          policies: {without: [endless]}
          expect: {status: plan}
        """)
    shutil.copytree(VCPE, vfw_copy.parent / "vcpe", ignore=shutil.ignore_patterns(".ordo"))
    run = run_ordo("test", "tests/ordering_test.yaml", "tests/without_test.yaml",
                   str(vfw_copy.parent / "vcpe" / "tests" / "goals_test.yaml"), cwd=vfw_copy)
    assert run.code == 1 and "Traceback" not in run.text, run.text
    lines = run.out.splitlines()
    assert "tests/ordering_test.yaml EEEEE" in lines and "tests/without_test.yaml ." in lines, run.out
    assert any(line.endswith("/vcpe/tests/goals_test.yaml ...") for line in lines), run.out
    assert ("tests/ordering_test.yaml:4:5: error: tests[0]: policies/endless.lp: grounding exceeded the time limit "
            "(1 s); the policy that grounds largest is endless (policies/endless.lp). Fix that policy, or raise "
            "settings.solve_timeout in ordo.yaml\n") in run.out
    assert run.out.count("not run: planning struck the time limit in tests/ordering_test.yaml:4 "
                         "(policies/endless.lp)") == 2 * 4   # the report and the summary, for each of the 4 after it
    assert "--timeout" not in run.text


def test_what_the_planner_answered_is_shown_in_a_few_lines_however_large_the_model():
    """A failure in a test of 5,000 resources showed its 1,196 placements on one line of 38 KB (the
    sweep of 6 December): the first 20 of each list, and how many more."""
    from types import SimpleNamespace

    from planner.testing.checking import brief

    placements = {f"vnf-{i:04d}": "region-a" for i in range(1196)}
    plan = SimpleNamespace(status="optimal", operations=(), waves=(), placements=placements, violations=(),
                           counts=lambda: {"create": 0, "change": 0, "delete": 0, "run": 0})
    lines = brief(SimpleNamespace(plan=plan))
    assert lines[1] == ("placements: " + ", ".join(f"vnf-{i:04d} -> region-a" for i in range(20))
                        + " and 1,176 more")


def test_the_summary_line_of_a_test_in_error_names_its_error_not_a_warning(vfw_copy):
    """A test loading a policy file with no header and a syntax error: the summary named the warning."""
    (vfw_copy / "policies" / "broken.lp").write_text("foo(1) :- \n")
    (vfw_copy / "tests" / "odd_test.yaml").write_text(
        "tests:\n  - name: broken\n    policies: { files: [../policies/broken.lp] }\n    expect: {status: plan}\n")
    run = run_ordo("test", "-C", vfw_copy, vfw_copy / "tests" / "odd_test.yaml")
    assert run.code != 0 and "odd_test.yaml:2: broken - syntax error, unexpected EOF" in run.out, run.text


def test_a_case_that_leaves_out_a_policy_check_refuses_is_an_error_not_a_pass(tmp_path):
    """Two files named alike are refused by ordo check; a case that leaves that name out (`without`)
    dropped both and passed: what check refuses never runs, in a test either."""
    project = tmp_path / "p"
    assert run_ordo("init", project).code == 0
    write(project, "policies/dup.lp", '%@ name: private-db\n:- place(R,"site-a"), resource(R,"database").\n')
    text = (project / "ordo.yaml").read_text()
    (project / "ordo.yaml").write_text(text.replace("    - policies/private-db.lp\n",
                                                    "    - policies/private-db.lp\n    - policies/dup.lp\n"))
    assert run_ordo("check", "-C", project).code == 1
    done = run_ordo("test", "-C", project)
    assert done.code == 1 and "PASSED" not in done.out, done.text
    assert "without private-db" in done.out and "policy name 'private-db' is taken" in done.out, done.text
    assert "passed" not in done.out.splitlines()[-1], done.text


def test_a_project_whose_policies_do_not_load_is_said_once_not_under_every_test(vfw_copy: Path) -> None:
    """A syntax error in a project's policy was said again under each of its twenty tests (an authoring
    sweep's): said under the first, the others are not run, and say where it was said."""
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    policy.write_text(policy.read_text() + "\n:- place(R,\"region-three\") resource(R,\"vnf\").\n")
    run = run_ordo("test", "-C", vfw_copy)
    assert run.code == 1 and run.out.count("error: syntax error") == 1, run.out
    assert "not run: the project's policies have errors, said under" in run.out, run.out


def test_a_tests_own_data_that_a_policy_cannot_count_stops_no_other_test(vfw_copy: Path) -> None:
    """A test's own inventory whose numbers a policy cannot count is that test's error, reported against the
    policy's file: it made every other test of the project "not run" (a review of the change above)."""
    (vfw_copy / "tests" / "aaa_test.yaml").write_text(textwrap.dedent("""\
        tests:
          - name: a region priced in millicents
            inventory:
              targets:
                region-one: { zone: az1, capacity: { vcpu: 64 }, attributes: { cost: 900000000 } }
                region-two: { zone: az2, capacity: { vcpu: 64 }, attributes: { cost: 1 } }
              resources:
                - { name: onap-mgmt-net, type: network, state: active, attributes: { network_id: net-0001 } }
            expect:
              violations: []
        """))
    run = run_ordo("test", "-C", vfw_copy)
    assert run.code == 1 and "20 passed, 1 error" in run.out and "not run" not in run.out, run.out
