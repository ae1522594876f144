"""Runtime guards: the file format, the engine's decisions, and the executor end to end.

Guard files are checked like every other file (file:line:col, the field, did-you-mean).
The engine is tested with a controlled clock (``now`` passed to each call); the
executor on copies of the vFW example, whose ``ordo.yaml`` names ``guards.yaml``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import yaml

import executor.guards as guards_module
from domain.errors import DiagnosticsError
from domain.guards import Guard, Selector
from domain.project import load_project
from executor.guards import DEFAULT_RETRY, GuardEngine, OpInfo
from executor.journal import Event, Journal, default_path
from tests.conftest import run_ordo, run_ordo_process

# --- helpers -------------------------------------------------------------------------

SMOOTH = {"seed": 1, "latency": 0}
DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC: a whole number of ms, 8 h into the day


def write_guards(project: Path, text: str) -> None:
    (project / "guards.yaml").write_text(text)


def problems(project: Path) -> list[str]:
    with pytest.raises(DiagnosticsError) as caught:
        load_project(project)
    return [str(d) for d in caught.value.diagnostics]


def op(resource: str = "m1", operation: str = "create", type: str = "vf-module", target: str | None = "r1",
       controller: str = "openstack", parent: str | None = "vnf1", creates: bool = False,
       deletes: bool = False) -> OpInfo:
    return OpInfo(id=f"{resource}/{operation}", resource=resource, type=type, operation=operation,
                  controller=controller, target=target, parent=parent, creates=creates, deletes=deletes)


def scenario(where: Path, data: dict) -> Path:
    path = where / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def journal_events(project: Path, run: int = 1) -> list[Event]:
    with Journal(default_path(project), create=False) as jr:
        return jr.events(run)


def apply(project: Path, tmp_path: Path, *args: str, simulation: dict | None = None):
    sim = scenario(tmp_path, simulation or SMOOTH)
    return run_ordo("apply", "-C", project, "--auto-approve", "--simulation", sim, *args)


# --- the file format ------------------------------------------------------------------


def test_the_example_guards_load(vfw_copy):
    project = load_project(vfw_copy)
    assert [g.name for g in project.guards] == [
        "vf-module-creates-per-region", "new-year-freeze", "protect-mgmt-net", "no-healthcheck-while-modules-change"]
    rate = project.guards[0]
    assert (rate.kind, rate.max, rate.seconds, rate.per, rate.on_deny) == ("rate_limit", 2, 1.0, "target", "wait")
    assert rate.match == Selector(operation=("create",), type=("vf-module",))
    assert rate.where == "guards.yaml:6"
    exclusive = project.guards[3]
    assert exclusive.blocker == Selector(operation=("create", "delete"), type=("vf-module",))
    # the guards are an input of the plan's digest, by their content
    assert dict(project.inputs)["guards.yaml"] == hashlib.sha256((vfw_copy / "guards.yaml").read_bytes()).hexdigest()


def test_bad_kind_says_did_you_mean(vfw_copy):
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: rate_limt\n    max: 2\n    seconds: 1\n")
    assert problems(vfw_copy) == [
        "guards.yaml:3:11: error: guards[0].kind: unknown kind 'rate_limt' (did you mean 'rate_limit'?)"]


def test_bad_daily_window(vfw_copy):
    write_guards(vfw_copy, 'guards:\n  - name: nightly\n    kind: window\n    daily: "25:00-06:00"\n')
    assert problems(vfw_copy) == [
        "guards.yaml:4:12: error: guards[0].daily: invalid daily window '25:00-06:00': hours run 00-23 "
        "(24:00 as an end), minutes 00-59"]
    write_guards(vfw_copy, 'guards:\n  - name: nightly\n    kind: window\n    daily: [22:00-6]\n')
    assert problems(vfw_copy) == [
        "guards.yaml:4:12: error: guards[0].daily: invalid daily window '22:00-6': expected HH:MM-HH:MM in UTC, "
        "e.g. \"22:00-06:00\""]
    write_guards(vfw_copy, 'guards:\n  - name: nightly\n    kind: window\n    daily: "10:00-10:00"\n')
    assert problems(vfw_copy) == [
        "guards.yaml:4:12: error: guards[0].daily: invalid daily window '10:00-10:00': it starts where it ends "
        "(the whole day is 00:00-24:00)"]
    write_guards(vfw_copy, 'guards:\n  - name: all-day\n    kind: window\n    daily: "00:00-24:00"\n')
    # the whole day (the third sweep: refused as starting where it ends)
    assert load_project(vfw_copy).guards[0].daily == ((0, 86400),)


def test_a_block_list_naming_a_target_the_inventory_lacks_is_refused(vfw_copy):
    """A typo in a protective guard protected nothing, silently (the third sweep, 6 December)."""
    write_guards(vfw_copy, "guards:\n  - name: a\n    kind: block_list\n    targets: [region-tow]\n"
                           "    on_deny: fail\n")
    assert problems(vfw_copy) == [
        "guards.yaml:4:15: error: guards[0].targets[0]: unknown target 'region-tow' (did you mean 'region-two'?)"]


def test_bad_time(vfw_copy):
    write_guards(vfw_copy, "guards:\n  - name: f\n    kind: freeze\n    start: tomorrow\n    end: '2027-01-01'\n")
    assert problems(vfw_copy) == [
        "guards.yaml:4:12: error: guards[0].start: invalid time 'tomorrow': expected ISO-8601, "
        "e.g. 2026-12-20T00:00:00Z"]
    write_guards(vfw_copy, "guards:\n  - name: f\n    kind: freeze\n    start: 2027-01-02\n    end: 2027-01-01\n")
    assert problems(vfw_copy) == [
        "guards.yaml:5:10: error: guards[0].end: the window ends before it starts "
        "(start 2027-01-02T00:00:00+00:00, end 2027-01-01T00:00:00+00:00)"]


def test_a_window_or_wait_past_the_longest_time_limit_is_refused(vfw_copy):
    """seconds: 1e308 passed the check and plan, and apply overflowed on it ("a bug in ordo": an
    authoring sweep's)."""
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: rate_limit\n    max: 2\n    seconds: 1.0e+308\n"
                           "    retry_after: 1.0e+9\n")
    assert problems(vfw_copy) == [
        "guards.yaml:5:14: error: guards[0].seconds: input should be less than or equal to 2000000",
        "guards.yaml:6:18: error: guards[0].retry_after: input should be less than or equal to 2000000"]


def test_unknown_field_says_did_you_mean(vfw_copy):
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: rate_limit\n    max: 2\n    secnds: 1\n")
    assert problems(vfw_copy) == [
        "guards.yaml:5:13: error: guards[0].secnds: unknown field 'secnds' (did you mean 'seconds'?)"]


def test_fields_of_a_kind(vfw_copy):
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: block_list\n    seconds: 1\n")
    assert problems(vfw_copy) == [
        "guards.yaml:3:5: error: guards[0]: missing required field 'resources' "
        "(a block_list guard names resources, types or targets (at least one))",
        "guards.yaml:4:5: error: guards[0].seconds: 'seconds' does not apply to a block_list guard "
        "(a block_list guard takes: resources, types, targets)"]
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: rate_limit\n    max: 2\n")
    assert problems(vfw_copy) == [
        "guards.yaml:3:5: error: guards[0]: missing required field 'seconds' "
        "(the sliding window of a rate_limit guard, in seconds)"]
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: exclusive\n    operation: heal\n")
    found = problems(vfw_copy)
    assert "guards.yaml:3:5: error: guards[0]: missing required field 'while' (the operations that, while in " \
           "flight, hold back the ones this guard selects)" in found


def test_names_are_checked_against_the_catalog(vfw_copy):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: g\n    kind: rate_limit\n    max: 1\n    seconds: 1\n"
                           "    type: vf-modul\n    operation: [assign, creat]\n    per: vnff\n"
                           "  - name: g\n    kind: exclusive\n    while: { controller: openstak }\n")
    assert problems(vfw_copy) == [
        "guards.yaml:6:11: error: guards[0].type: unknown resource type 'vf-modul' (did you mean 'vf-module'?)",
        "guards.yaml:7:25: error: guards[0].operation[1]: unknown operation 'creat' (did you mean 'create'?)",
        "guards.yaml:8:10: error: guards[0].per: unknown per 'vnff' (did you mean 'vnf'?)",
        "guards.yaml:9:11: error: guards[1].name: guard 'g' is defined twice (first at guards.yaml:2)",
        "guards.yaml:11:26: error: guards[1].while.controller: unknown controller 'openstak' "
        "(did you mean 'openstack'?)"]


def test_every_problem_of_every_guard_at_once(vfw_copy):
    # (one guard of an unknown kind hid the others' missing fields, unknown names and duplicates: they
    # showed one stage at a time, as each was fixed)
    write_guards(vfw_copy, "guards:\n"
                           "  - name: g\n    kind: rate_limt\n    max: 1\n"
                           "  - name: h\n    kind: rate_limit\n    max: 1\n"
                           "  - name: i\n    kind: max_instances\n    max: 3\n    type: vf-modul\n"
                           "  - name: h\n    kind: freeze\n    daily: '01:00-02:00'\n")
    assert problems(vfw_copy) == [
        "guards.yaml:3:11: error: guards[0].kind: unknown kind 'rate_limt' (did you mean 'rate_limit'?)",
        "guards.yaml:6:5: error: guards[1]: missing required field 'seconds' (the sliding window of a rate_limit "
        "guard, in seconds)",
        "guards.yaml:11:11: error: guards[2].type: unknown resource type 'vf-modul' (did you mean 'vf-module'?)",
        "guards.yaml:12:11: error: guards[3].name: guard 'h' is defined twice (first at guards.yaml:5)"]


def test_a_name_taken_twice_is_said_when_the_first_does_not_validate(vfw_copy):
    """A guard with an unknown field hid that the next one took its name (a docs sweep's)."""
    write_guards(vfw_copy, "guards:\n  - {name: g, kind: rate_limt, secnds: 1}\n"
                           "  - {name: g, kind: freeze, daily: '22:00-06:00'}\n")
    assert problems(vfw_copy) == [
        "guards.yaml:2:21: error: guards[0].kind: unknown kind 'rate_limt' (did you mean 'rate_limit'?)",
        "guards.yaml:2:40: error: guards[0].secnds: unknown field 'secnds' (did you mean 'seconds'?)",
        "guards.yaml:3:12: error: guards[1].name: guard 'g' is defined twice (first at guards.yaml:2)"]


def test_missing_guard_file_points_into_ordo_yaml(vfw_copy):
    (vfw_copy / "guards.yaml").unlink()
    assert problems(vfw_copy) == ["ordo.yaml:19:5: error: guards[0]: no such guard file 'guards.yaml'"]


def test_ordo_check_reports_guard_errors(vfw_copy):
    write_guards(vfw_copy, "guards:\n  - name: g\n    kind: freze\n    daily: '22:00-06:00'\n")
    result = run_ordo("check", "-C", vfw_copy)
    assert result.code == 1
    assert "guards.yaml:3:11: error: guards[0].kind: unknown kind 'freze' (did you mean 'freeze'?)" in result.err
    assert "Traceback" not in result.text


def test_the_plan_digest_covers_the_guards(vfw_copy):
    first = json.loads(run_ordo("plan", "-C", vfw_copy, "--format", "json").out)
    assert "guards.yaml" in {i["path"] for i in first["inputs"]}
    guards = vfw_copy / "guards.yaml"
    guards.write_text(guards.read_text().replace("max: 2", "max: 3"))
    second = json.loads(run_ordo("plan", "-C", vfw_copy, "--format", "json").out)
    assert first["digest"] != second["digest"]


# --- the engine: each kind with a controlled clock -------------------------------------


def test_rate_limit_per_target_and_its_window():
    engine = GuardEngine([Guard(name="two-per-10s", kind="rate_limit", match=Selector(operation=("create",)),
                                max=2, seconds=10, per="target")])
    assert engine.admit(op("m1"), T0)[0].allowed
    assert engine.admit(op("m2"), T0 + 1)[0].allowed
    denied = engine.check(op("m3"), T0 + 2)
    assert not denied.allowed and denied.guard == "two-per-10s" and denied.on_deny == "wait"
    assert denied.reason == "2 selected operations started in the last 10 s for target 'r1' (at most 2)"
    assert denied.retry_after == pytest.approx(8.0)           # when the first start leaves the window
    assert engine.check(op("m3", target="r2"), T0 + 2).allowed  # another region: its own count
    assert engine.check(op("m3", operation="delete"), T0 + 2).allowed  # not selected
    assert not engine.check(op("m3"), T0 + 9.999).allowed
    assert engine.check(op("m3"), T0 + 10).allowed            # the first is out of the window


def test_rate_limit_after_the_clock_is_set_back_holds_for_its_window_not_for_the_step():
    """Starts counted at their own time after the wall clock went back an hour held the operations
    for that hour ("checked again in 3600 s"), and a resume after the step, reading them from the
    journal, would too: a start later than now counts as one now (a sweep of clocks and time's)."""
    engine = GuardEngine([Guard(name="one-per-2s", kind="rate_limit", match=Selector(operation=("create",)),
                                max=1, seconds=2)])
    assert engine.admit(op("m1"), T0)[0].allowed
    back = T0 - 3600 + 0.5                                 # the clock set back an hour
    denied = engine.check(op("m2"), back)
    assert not denied.allowed and denied.retry_after == pytest.approx(2.0)
    assert not engine.check(op("m2"), back + 1.9).allowed
    assert engine.admit(op("m2"), back + 2)[0].allowed
    assert engine.check(op("m3"), back + 2.5).retry_after == pytest.approx(1.5)


def test_a_start_replayed_at_its_own_time_moves_no_other_start():
    """A resume replays its run's journal into the engine the runs of a server share, at the times
    written: that moved the live runs' starts back to the replayed time, and the limit let more through
    than its max (a review of 7 December)."""
    engine = GuardEngine([Guard(name="two-per-hour", kind="rate_limit", match=Selector(operation=("create",)),
                                max=2, seconds=3600)])
    assert engine.admit(op("a1"), T0)[0].allowed and engine.admit(op("a2"), T0)[0].allowed
    engine.finished(engine.started(op("b1"), now=T0 - 3000), ok=False, now=T0 - 3000)
    denied = engine.check(op("a3"), T0 + 660)
    assert not denied.allowed and denied.retry_after == pytest.approx(2940.0)   # (when a1 and a2 leave the window)


def test_runs_side_by_side_admitted_at_once_stay_within_the_limit():
    """A server's runs share one engine: two of them both passing the check before either was counted
    went past the limit together (303 of 300 in a review's trials). Here each check takes a while."""
    engine = GuardEngine([Guard(name="one", kind="rate_limit", match=Selector(operation=("create",)), max=1,
                                seconds=3600)])
    check = engine.check

    def slow_check(operation, now=None):
        decision = check(operation, now)
        time.sleep(0.2)   # (the other run's thread asks meanwhile)
        return decision

    engine.check = slow_check
    admitted = []
    threads = [threading.Thread(target=lambda i=i: admitted.append(engine.admit(op(f"m{i}"), T0)[0].allowed))
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(admitted) == [False, True]


def test_rate_limit_facts_expire():
    engine = GuardEngine([Guard(name="rl", kind="rate_limit", max=1000, seconds=5)])
    base = engine.facts
    for i in range(200):
        ticket = engine.started(op(f"m{i}"), T0 + i)
        engine.finished(ticket, ok=True, now=T0 + i + 0.5)
    # started/finished/hit facts older than the window are gone: at most ~5 s of them are left
    assert engine.facts - base <= 3 * 6
    assert engine.check(op("x"), T0 + 199.6).allowed


def test_max_instances_counts_what_is_present_and_being_created():
    engine = GuardEngine([Guard(name="two-modules-per-vnf", kind="max_instances",
                                match=Selector(type=("vf-module",)), max=2, per="part_of")])
    engine.set_resources([("vnf1", "vnf", None, True), ("vnf2", "vnf", None, True),
                          ("m1", "vf-module", "vnf1", True), ("m2", "vf-module", "vnf1", False),
                          ("m3", "vf-module", "vnf1", False), ("m4", "vf-module", "vnf2", False)])
    create = {"operation": "assign", "creates": True}
    decision, ticket = engine.admit(op("m2", **create), T0)
    assert decision.allowed
    denied = engine.check(op("m3", **create), T0)
    assert not denied.allowed
    assert denied.reason == ("2 vf-module for part of 'vnf1' present or being created: creating m3 would make 3, "
                             "above max 2")
    assert engine.check(op("m4", parent="vnf2", **create), T0).allowed   # another VNF
    assert engine.check(op("m1", operation="update"), T0).allowed        # not a creation
    engine.finished(ticket, ok=False, now=T0)                           # m2 was not created after all
    assert engine.check(op("m3", **create), T0).allowed


def test_max_zero_denies_the_first():
    engine = GuardEngine([Guard(name="none", kind="max_instances", match=Selector(type=("vnf",)), max=0)])
    assert not engine.check(op("v", type="vnf", operation="assign", creates=True), T0).allowed


def test_min_instances_denies_deletion_below_min():
    engine = GuardEngine([Guard(name="keep-one", kind="min_instances", match=Selector(type=("vnf",)), min=1,
                                per="service")])
    engine.set_resources([("svc", "service", None, True), ("v1", "vnf", "svc", True), ("v2", "vnf", "svc", True),
                          ("m", "vf-module", "v1", True)])
    delete = {"type": "vnf", "operation": "unassign", "parent": "svc", "deletes": True}
    decision, ticket = engine.admit(op("v1", **delete), T0)
    assert decision.allowed
    denied = engine.check(op("v2", **delete), T0)
    assert not denied.allowed and "would leave 0, below min 1" in denied.reason
    assert "service 'svc'" in denied.reason
    engine.finished(ticket, ok=True, now=T0)
    assert not engine.check(op("v2", **delete), T0 + 60).allowed
    # a module's deletion is not counted (another type), nor is a vnf's update
    assert engine.check(op("m", operation="unassign", deletes=True), T0).allowed
    assert engine.check(op("v2", type="vnf", operation="update"), T0).allowed


def test_block_list():
    engine = GuardEngine([Guard(name="hands-off", kind="block_list", on_deny="fail",
                                match=Selector(operation=("delete", "update")),
                                block_resources=("mgmt-net",), block_types=("pnf",), block_targets=("r9",))])
    denied = engine.check(op("mgmt-net", operation="delete", type="network"), T0)
    assert (denied.allowed, denied.on_deny, denied.retry_after) == (False, "fail", None)
    assert denied.reason == "resource 'mgmt-net' is on the block list"
    assert engine.check(op("mgmt-net", operation="create", type="network"), T0).allowed   # not selected
    assert "type 'pnf'" in engine.check(op("p1", operation="update", type="pnf"), T0).reason
    assert "target 'r9'" in engine.check(op("m1", operation="delete", target="r9"), T0).reason
    assert engine.check(op("m1", operation="delete", target="r1"), T0).allowed
    assert engine.check(op("m1", operation="delete", target=None), T0).allowed


def test_freeze_absolute_and_daily():
    engine = GuardEngine([
        Guard(name="launch", kind="freeze", periods=((T0 + 100, T0 + 200),)),
        Guard(name="nightly", kind="freeze", daily=((22 * 3600, 86400), (0, 6 * 3600)))])  # 22:00-06:00
    assert engine.check(op(), T0).allowed                                    # 08:00, before the launch freeze
    denied = engine.check(op(), T0 + 150)
    assert (denied.guard, denied.retry_after) == ("launch", pytest.approx(50))
    assert denied.reason == "frozen until 2027-01-15 08:03:20 UTC"
    assert engine.check(op(), T0 + 200).allowed
    night = T0 + 15 * 3600                                                   # 23:00
    denied = engine.check(op(), night)
    assert denied.guard == "nightly" and denied.retry_after == pytest.approx(7 * 3600)  # until 06:00, joined
    assert not engine.check(op(), night + 2 * 3600).allowed                  # 01:00
    assert engine.check(op(), night + 7 * 3600).allowed                      # 06:00


def test_window_allows_only_inside():
    engine = GuardEngine([Guard(name="maintenance", kind="window", daily=((1 * 3600, 3 * 3600),))])
    denied = engine.check(op(), T0)                                          # 08:00
    assert denied.on_deny == "wait" and denied.retry_after == pytest.approx(17 * 3600)  # 01:00 tomorrow
    assert denied.reason == "outside the window (it opens at 2027-01-16 01:00:00 UTC)"
    assert engine.check(op(), T0 + 18 * 3600).allowed                        # 02:00
    closed = GuardEngine([Guard(name="once", kind="window", periods=((T0 - 100, T0 - 50),))])
    denied = closed.check(op(), T0)
    assert denied.on_deny == "fail" and "does not open again" in denied.reason   # waiting cannot help


def test_exclusive_blocks_on_the_same_vnf():
    engine = GuardEngine([Guard(name="no-scale-during-heal", kind="exclusive",
                                match=Selector(operation=("assign",), type=("vf-module",)),
                                blocker=Selector(operation=("heal",), type=("vnf",)), per="vnf")])
    engine.set_resources([("vnf1", "vnf", None, True), ("vnf2", "vnf", None, True)])
    heal = engine.started(op("vnf1", operation="heal", type="vnf", parent=None), T0)
    scale = op("m9", operation="assign", parent="vnf1", creates=True)
    denied = engine.check(scale, T0 + 1)
    assert not denied.allowed and denied.reason == "vnf1/heal is in flight on the same vnf 'vnf1'"
    assert denied.retry_after == DEFAULT_RETRY
    assert engine.check(op("m8", operation="assign", parent="vnf2"), T0 + 1).allowed   # another VNF
    assert engine.check(op("vnf1", operation="heal", type="vnf", parent=None), T0 + 1).allowed  # not selected
    engine.finished(heal, ok=True, now=T0 + 2)
    assert engine.check(scale, T0 + 3).allowed


def test_the_first_guard_that_denies_decides():
    engine = GuardEngine([Guard(name="a", kind="block_list", block_types=("vf-module",), on_deny="replan",
                                retry_after=3),
                          Guard(name="b", kind="block_list", block_types=("vf-module",), on_deny="fail")])
    decision = engine.check(op(), T0)
    assert (decision.guard, decision.on_deny, decision.retry_after) == ("a", "replan", None)


# --- isolation of pyDatalog's state ------------------------------------------------------


def test_two_engines_do_not_see_each_others_facts():
    rule = Guard(name="one", kind="rate_limit", max=1, seconds=60)
    first, second = GuardEngine([rule]), GuardEngine([rule])
    assert first.admit(op("m1"), T0)[0].allowed
    assert not first.check(op("m2"), T0 + 1).allowed
    assert second.check(op("m2"), T0 + 1).allowed        # the same guard name, its own facts
    assert second.admit(op("m2"), T0 + 1)[0].allowed
    assert not second.check(op("m3"), T0 + 2).allowed
    blocked = GuardEngine([Guard(name="one", kind="block_list", block_resources=("m1",))])
    assert not blocked.check(op("m1"), T0).allowed
    assert first.check(op("m1"), T0 + 61).allowed and second.check(op("m1"), T0 + 62).allowed


def test_engines_leave_the_default_logic_alone():
    from pyDatalog import pyDatalog
    from pyDatalog.Logic import Logic

    pyDatalog.assert_fact("colour", "sky", "blue")
    default = Logic.tl.logic
    engine = GuardEngine([Guard(name="rl", kind="rate_limit", max=1, seconds=60)])
    engine.admit(op(), T0)
    engine.check(op(), T0)
    assert Logic.tl.logic is default                       # put back after each call
    assert pyDatalog.ask("colour(X, Y)").answers == [("sky", "blue")]
    assert "hit/4" not in default.Db and "started/8" not in default.Db
    pyDatalog.retract_fact("colour", "sky", "blue")


def test_engines_in_threads():
    rule = Guard(name="one", kind="rate_limit", max=1, seconds=60)
    main = GuardEngine([rule])
    main.admit(op("m0"), T0)
    results: dict[str, bool] = {}

    def work(name: str) -> None:
        engine = GuardEngine([rule])        # built and used in a thread that never used pyDatalog
        results[name + "-first"] = engine.admit(op(name), T0)[0].allowed
        results[name + "-second"] = engine.check(op(name + "x"), T0 + 1).allowed
        results[name + "-main"] = main.check(op("m9"), T0 + 1).allowed   # another engine, from this thread

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert results[f"t{i}-first"] is True and results[f"t{i}-second"] is False
        assert results[f"t{i}-main"] is False
    assert not main.check(op("m9"), T0 + 1).allowed


# --- the executor, end to end ------------------------------------------------------------


def test_no_guards_no_guard_engine(vfw_copy, tmp_path, monkeypatch):
    ordo_yaml = vfw_copy / "ordo.yaml"
    ordo_yaml.write_text(ordo_yaml.read_text().split("\nguards:")[0] + "\n")
    assert load_project(vfw_copy).guards == []

    def refuse(*args, **kwargs):
        raise AssertionError("a guard engine was built for a project without guards")

    monkeypatch.setattr(guards_module, "GuardEngine", refuse)
    from tests.test_apply import api_apply

    result, evs = api_apply(vfw_copy, SMOOTH)
    assert result.status == "complete"
    assert not [ev for ev in evs if ev.kind == "guard-denied"]


def test_rate_limit_makes_operations_wait(vfw_copy, tmp_path):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: slow-assigns\n    kind: rate_limit\n    operation: assign\n"
                           "    max: 2\n    seconds: 0.3\n")
    run = apply(vfw_copy, tmp_path)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created" in run.out
    assert "held by guard slow-assigns: 2 selected operations started in the last 0.3 s (at most 2)" in run.out
    evs = journal_events(vfw_copy)
    denied = [ev for ev in evs if ev.kind == "guard-denied"]
    assert denied and {ev.data["guard"] for ev in denied} == {"slow-assigns"}
    assert all(ev.data["on_deny"] == "wait" and 0 < ev.data["retry_after"] <= 0.3 for ev in denied)
    assert len({ev.op for ev in denied}) == len(denied)          # once per (operation, guard)
    starts = sorted(ev.at for ev in evs if ev.kind == "intent" and ev.op.endswith("/assign"))
    assert len(starts) == 10
    # never 3 in 0.3 s, by journal times: after the guard's clock, by a few ms, or by 0.21 s against 0.3 on a
    # loaded machine (an intent written late, the one after it not: a suite run beside other work)
    for i in range(2, len(starts)):
        assert starts[i] - starts[i - 2] >= 0.3 - 0.15, starts
    assert starts[-1] - starts[0] >= 4 * 0.3 - 0.05                # 10 assigns, 2 per 0.3 s
    shown = run_ordo("show", "-C", vfw_copy)
    assert "guarded  " in shown.out and "held by guard slow-assigns" in shown.out


def test_block_list_with_fail_falls_out(vfw_copy, tmp_path):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: hands-off-vsink\n    kind: block_list\n    resources: [vsink-base]\n"
                           "    operation: activate\n    on_deny: fail\n")
    run = apply(vfw_copy, tmp_path, "--max-replans", "1")
    assert run.code != 0, run.text
    assert "denied by guard hands-off-vsink: resource 'vsink-base' is on the block list; the operation fails" \
        in run.out
    evs = journal_events(vfw_copy)
    failed = [ev for ev in evs if ev.kind == "failed"]
    assert failed and all(ev.op == "vsink-base/activate" and ev.data["guard"] == "hands-off-vsink"
                          and ev.data["code"] == "guard-denied" for ev in failed)
    assert [ev.data["guard"] for ev in evs if ev.kind == "guard-denied"] == ["hands-off-vsink"]
    assert ["failed", "vsink-base", "activate"] in next(ev for ev in evs if ev.kind == "learnt").data["facts"]
    assert not [ev for ev in evs if ev.kind == "intent" and ev.op == "vsink-base/activate"]
    assert evs[-1].kind == "run-ended" and evs[-1].data["status"] == "fallout"
    assert "hands-off-vsink" in evs[-1].data["reason"]


def test_block_list_with_replan_moves_elsewhere(vfw_copy, tmp_path):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: region-two-closed\n    kind: block_list\n    targets: [region-two]\n"
                           "    on_deny: replan\n")
    run = apply(vfw_copy, tmp_path)
    assert run.code == 0, run.text
    assert "Apply complete: 10 created" in run.out
    evs = journal_events(vfw_copy)
    learnt = next(ev for ev in evs if ev.kind == "learnt").data["facts"]
    assert ["refused", "region-two"] in learnt
    assert any(ev.kind == "replan" and "region-two-closed" in ev.data["reason"] for ev in evs)
    assert not [ev for ev in evs if ev.kind == "intent" and ev.data.get("target") == "region-two"]


def test_exclusive_keeps_network_creates_apart(vfw_copy, tmp_path):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: one-network-at-a-time\n    kind: exclusive\n"
                           "    operation: create\n    type: network\n"
                           "    while: { operation: create, type: network }\n    retry_after: 30\n")
    run = apply(vfw_copy, tmp_path, simulation={"seed": 1, "latency": {"default": 0, "create": 0.2}})
    assert run.code == 0, run.text
    evs = journal_events(vfw_copy)
    denied = [ev for ev in evs if ev.kind == "guard-denied"]
    assert denied and denied[0].data["guard"] == "one-network-at-a-time"
    assert "/create is in flight" in denied[0].data["reason"]
    spans: dict[str, list[float]] = {}
    for ev in evs:
        if ev.op in ("unprotected-net/create", "protected-net/create") and ev.kind in ("intent", "result"):
            spans.setdefault(ev.op, []).append(ev.at)
    (a_start, a_end), (b_start, b_end) = sorted(spans.values())
    assert b_start >= a_end          # the second began after the first ended (not after retry_after: 30 s)
    assert b_start - a_end < 5


def test_live_view_and_json_show_the_denial(vfw_copy, tmp_path):
    write_guards(vfw_copy, "guards:\n"
                           "  - name: one-at-a-time\n    kind: rate_limit\n    type: network\n"
                           "    operation: assign\n    max: 1\n    seconds: 0.2\n")
    sim = scenario(tmp_path, SMOOTH)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim, "--json")
    assert run.code == 0, run.text
    lines = [json.loads(line) for line in run.out.splitlines() if line.startswith("{")]
    denied = [e for e in lines if e["kind"] == "guard-denied"]
    assert denied and denied[0]["guard"] == "one-at-a-time" and denied[0]["on_deny"] == "wait"
    assert denied[0]["where"] == "guards.yaml:2" and denied[0]["guard_kind"] == "rate_limit"


@pytest.mark.slow
def test_a_resumed_run_counts_what_it_did_before_the_crash(vfw_copy, tmp_path):
    from executor.engine import Executor
    from executor.guards import operation_info

    write_guards(vfw_copy, "guards:\n"
                           "  - name: three-vnf-assigns\n    kind: rate_limit\n    operation: assign\n    type: vnf\n"
                           "    max: 3\n    seconds: 600\n    on_deny: fail\n")
    sim = scenario(tmp_path, SMOOTH)
    # Killed at the 10th batch of results, which always comes (the longest chain is 10
    # operations) and always follows the three VNF assigns: only 7 operations of the
    # plan need none of them, so at most 9 batches can be written before the last one.
    crashed = run_ordo_process("apply", "-C", vfw_copy, "--auto-approve", "--simulation", sim,
                               env={"ORDO_CRASH_POINT": "result-written:10"})
    assert crashed.code == -9, crashed.text
    assigns = [ev for ev in journal_events(vfw_copy) if ev.kind == "result" and ev.op in
               ("vfw/assign", "vpg/assign", "vsink/assign")]
    assert len(assigns) == 3
    with Journal(default_path(vfw_copy), create=False) as jr:
        executor = Executor(jr, lambda observed: load_project(vfw_copy, observed=observed))
        rs = executor._rebuild(1)
        project = executor._project = load_project(vfw_copy, observed=list(jr.state().values()))
        executor._replay_guards(rs)
        another = next(op for op in rs.plan.operations if op.id == "vfw/assign")
        decision = executor._guards.check(operation_info(project.model, another, "region-one"))
        assert not decision.allowed and decision.guard == "three-vnf-assigns"
        fresh = GuardEngine(project.guards)
        fresh.set_resources([])
        assert fresh.check(operation_info(project.model, another, "region-one")).allowed
        executor.close()
    resumed = run_ordo("resume", "1", "-C", vfw_copy)
    assert resumed.code == 0, resumed.text
