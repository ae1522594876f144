"""ONAP SO's northbound API as a library: SO macro requests -> ordo requests (through the project's
so-mapping.yaml and the normal loader), ordo runs -> SO's request states, request lists, manual tasks.

Fixtures are our own, in SO's shapes (onap/so serviceinstancebeans): examples/vfw/so/*.json."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from domain.errors import DiagnosticsError
from domain.project import load_project
from executor.journal import Event, Journal, RunInfo
from ordo.cli import main
from planner.core import make_plan
from service.so.mapping import load_mapping
from service.so.status import (
    SoRecord,
    locked_instance,
    orchestration_request,
    parse_filters,
    parse_task_id,
    progress,
    request_list,
    request_references,
    request_status,
    task,
    task_decision,
    task_list,
)
from service.so.translate import translate_create, translate_delete
from tests.conftest import VFW

CREATE = json.loads((VFW / "so" / "instantiate.json").read_text())
DELETE = json.loads((VFW / "so" / "delete.json").read_text())
SAME_PLAN = {"digest", "inputs", "request", "request_file"}  # what names the request file; the rest must be equal


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(VFW / "so-mapping.yaml", VFW)


def body(edit=None) -> dict:
    out = copy.deepcopy(CREATE)
    if edit:
        edit(out)
    return out


def service(b: dict) -> dict:
    return b["requestDetails"]["requestParameters"]["userParams"][1]["service"]


def vnfs(b: dict) -> list:
    return service(b)["resources"]["vnfs"]


def problems(exc: pytest.ExceptionInfo) -> list[tuple[str, str]]:
    return [(d.path, d.summary) for d in exc.value.diagnostics]


# --- translation -------------------------------------------------------------------


def test_macro_create_plans_as_the_instantiate_request_file(mapping):
    translation = translate_create(body(), mapping)
    assert translation.service == "vfw-service" and translation.action == "createInstance"
    assert set(translation.resources) == {"vfw-service", "unprotected-net", "protected-net", "vpg", "vpg-base",
                                          "vsink", "vsink-base", "vfw", "vfw-base", "vfw-logs"}
    ours = make_plan(translation.load(VFW))
    theirs = make_plan(load_project(VFW, request="requests/instantiate.yaml"))
    assert ours.plan is not None and len(ours.plan.operations) == 32
    assert ours.plan.model_dump(exclude=SAME_PLAN) == theirs.plan.model_dump(exclude=SAME_PLAN)
    # the request-level cloudConfiguration does not pin (cloud_regions.pin: resource): ordo places
    assert ours.plan.placements == {"vfw": "region-two", "vpg": "region-one", "vsink": "region-one"}


def test_the_request_file_text_loads_as_the_same_request(mapping, tmp_path):
    translation = translate_create(body(), mapping)
    (tmp_path / "so.yaml").write_text(translation.yaml_text())
    from_file = make_plan(load_project(VFW, request=tmp_path / "so.yaml")).plan
    assert from_file.model_dump(exclude=SAME_PLAN) == make_plan(translation.load(VFW)).plan.model_dump(
        exclude=SAME_PLAN)


def test_a_vnf_cloud_configuration_pins_it_to_the_mapped_target(mapping):
    def pin(b):
        vnfs(b)[2]["cloudConfiguration"] = {"lcpCloudRegionId": "RegionThree", "tenantId": "t"}
    translation = translate_create(body(pin), mapping)
    vfw = translation.request["services"]["vfw-service"]["vnfs"][2]
    assert vfw["placement"] == "region-three"
    assert make_plan(translation.load(VFW)).plan.placements["vfw"] == "region-three"


def test_macro_delete_plans_as_the_delete_request_file(mapping):
    translation = translate_delete("vfw-service", DELETE, mapping)
    assert translation.request["services"] == {"vfw-service": {"type": "service", "state": "absent"}}
    ours = make_plan(translation.load(VFW, inventory="inventory-deployed.yaml")).plan
    theirs = make_plan(load_project(VFW, request="requests/delete.yaml", inventory="inventory-deployed.yaml")).plan
    assert ours.operations and ours.model_dump(exclude=SAME_PLAN) == theirs.model_dump(exclude=SAME_PLAN)


def test_macro_delete_refuses_an_instance_id_that_is_no_name(mapping):
    with pytest.raises(DiagnosticsError) as exc:
        translate_delete("vfw service; rm", DELETE, mapping)
    assert problems(exc) == [("serviceInstanceId", "invalid service instance id 'vfw service; rm'")]


USER = "requestDetails.requestParameters.userParams[1].service"


@pytest.mark.parametrize("edit, expected", [
    (lambda b: b.pop("requestDetails"), ("requestDetails", "missing required field 'requestDetails'")),
    (lambda b: service(b)["resources"].update(vnfs={"vfw": 1}), (f"{USER}.resources.vnfs", "expected a list")),
    (lambda b: vnfs(b)[1].update(instanceName="v sink"), (f"{USER}.resources.vnfs[1].instanceName",
                                                         "invalid name 'v sink'")),
    (lambda b: b["requestDetails"]["modelInfo"].update(modelType="vnf"),
     ("requestDetails.modelInfo.modelType", "expected modelType 'service', got 'vnf'")),
    (lambda b: b["requestDetails"]["modelInfo"].update(modelName="vLB_Service"),
     ("requestDetails.modelInfo.modelName", "service model 'vLB_Service' is not one this project orchestrates")),
    (lambda b: b["requestDetails"]["requestParameters"].update(aLaCarte=True),
     ("requestDetails.requestParameters.aLaCarte", "a-la-carte requests are not supported")),
    (lambda b: b["requestDetails"]["requestInfo"].pop("instanceName"),
     ("requestDetails.requestInfo.instanceName", "missing required field 'instanceName'")),
    (lambda b: vnfs(b)[0]["modelInfo"].update(modelCustomizationName="vPG 7"),
     (f"{USER}.resources.vnfs[0].modelInfo.modelCustomizationName", "no mapping for model 'vPG 7'")),
    (lambda b: vnfs(b)[0]["vfModules"][0].pop("instanceName"),
     (f"{USER}.resources.vnfs[0].vfModules[0].instanceName", "missing required field 'instanceName'")),
    (lambda b: service(b)["resources"]["networks"][0]["instanceParams"][0].update(mtu="9000"),
     (f"{USER}.resources.networks[0].instanceParams[0].mtu", "instance param 'mtu' is not one the mapping takes")),
    # a key that holds a secret: masked in the path and the message (quoted whole, a review's)
    (lambda b: service(b)["resources"]["networks"][0]["instanceParams"][0].update({"dsn?token=SOKEY-31": "x"}),
     (f"{USER}.resources.networks[0].instanceParams[0].dsn?token=***",
      "instance param 'dsn?token=***' is not one the mapping takes")),
    (lambda b: service(b)["resources"].update(vnfs=[vnfs(b)[0]] * 501),
     (f"{USER}.resources.vnfs", "list should have at most 500 items after validation, not 501")),
    (lambda b: b["requestDetails"].pop("subscriberInfo"),
     ("requestDetails.subscriberInfo.globalSubscriberId", "missing, and the mapping reads it")),
    (lambda b: vnfs(b)[1].update(cloudConfiguration={"lcpCloudRegionId": "RegionNine"}),
     (f"{USER}.resources.vnfs[1].cloudConfiguration.lcpCloudRegionId", "unknown lcpCloudRegionId 'RegionNine'")),
])
def test_a_bad_so_request_is_refused_at_its_field(mapping, edit, expected):
    with pytest.raises(DiagnosticsError) as exc:
        translate_create(body(edit), mapping)
    assert expected in problems(exc)
    assert all(d.file == "SO request" for d in exc.value.diagnostics)


def test_a_body_that_is_no_object_is_refused(mapping):
    with pytest.raises(DiagnosticsError) as exc:
        translate_create([CREATE], mapping)
    assert problems(exc) == [("", "expected a JSON object, got an array")]   # (JSON's words: it said 'list')


def test_an_ambiguous_model_reference_names_the_mapping_line(mapping):
    def twice(b):
        nets = service(b)["resources"]["networks"]
        nets.append({**copy.deepcopy(nets[0]), "instanceName": "unprotected-net-2"})
    with pytest.raises(DiagnosticsError) as exc:
        translate_create(body(twice), mapping)
    found = exc.value.diagnostics[0]
    assert "the request has 2 (unprotected-net, unprotected-net-2)" in found.summary
    line = next(i for i, text in enumerate((VFW / "so-mapping.yaml").read_text().splitlines(), 1)
                if text.strip().startswith('uses: ["@unprotected-net", onap-mgmt-net]'))
    assert found.path == f"{USER}.resources.vnfs[0].vfModules[0]" and f"so-mapping.yaml:{line}" in found.detail


@pytest.mark.parametrize("edit, path, summary", [
    (lambda b: service(b)["resources"]["networks"][1]["instanceParams"][0].update(cidr="10.0.0.0/24\x00"),
     f"{USER}.resources.networks[1].instanceParams[0].cidr", "text holds the control character"),
    (lambda b: vnfs(b)[1].update(instanceName="onap-mgmt-net"),
     f"{USER}.resources.vnfs[1]", "'onap-mgmt-net' is a network in the inventory, not a vnf"),
    # a param the mapping reads from the request (customer: from subscriberInfo.globalSubscriberId), named there:
    # it was named at requestInfo.instanceName (a service sweep's)
    (lambda b: b["requestDetails"]["subscriberInfo"].update(globalSubscriberId="demo\x07"),
     "requestDetails.subscriberInfo.globalSubscriberId", "text holds the control character"),
])
@pytest.mark.parametrize("length", [11, 100, 183, 200])
def test_what_the_loader_refuses_is_named_at_the_so_field(mapping, edit, path, summary, length):
    """The loader's own checks apply to the translated request; each problem is said at the SO field,
    also under an instance name of SO's 200 characters (one of 81 and more, cut short in the
    loader's paths, was named at them; one of 183 and more was refused as the request's too long a
    name: the sweep of 6 December)."""
    name = ("vfw-service" + "x" * 200)[:length]

    def edited(b: dict) -> None:
        edit(b)
        b["requestDetails"]["requestInfo"]["instanceName"] = name
    translation = translate_create(body(edited), mapping)
    with pytest.raises(DiagnosticsError) as exc:
        translation.load(VFW)
    found = [d for d in exc.value.diagnostics if d.path == path]
    assert found and found[0].summary.startswith(summary), str(exc.value)
    assert "ordo request: services.vfw-service" in found[0].detail and len(exc.value.diagnostics) == 1


@pytest.mark.parametrize("value", [{"a": 1}, [1]])
def test_an_instance_param_of_no_kind_it_may_have_is_one_problem(mapping, value):
    """One problem per kind of the union (text, whole number, number, true/false), named by
    pydantic's inner names (cidr.constrained-str, cidr.int ...): the sweep of 6 December."""
    with pytest.raises(DiagnosticsError) as exc:
        translate_create(body(lambda b: service(b)["resources"]["networks"][0].update(
            instanceParams=[{"cidr": value}])), mapping)
    assert problems(exc) == [(f"{USER}.resources.networks[0].instanceParams[0].cidr",
                              "expected a string, a number or true/false")]


# --- the mapping file ----------------------------------------------------------------


@pytest.mark.parametrize("text, line, summary", [
    ("models:\n  a:\n    kind: vnf\n    uses: ['@nowhere']\n", 4, "unknown alias '@nowhere'"),
    ("models:\n  a:\n    kind: vnf\n    instance_param: [x]\n", 4, "unknown field 'instance_param'"),
    ("models:\n  a:\n    kind: vserver\n", 3, "input should be 'vnf', 'vfModule', 'network' or 'pnf'"),
    ("models:\n  a: {kind: vnf, alias: x}\n  b: {kind: pnf, alias: x}\n", 3,
     "alias 'x' is already the alias of model 'a'"),
    ("models:\n  a: {kind: vnf, alias: service}\n", 2, "alias 'service' is reserved"),
    ("models:\n  a:\n    kind: vnf\n    volume_group: {params: {size_gb: 1}}\n", 4,
     "only a vfModule model names a volume group"),
    ("service:\n  params:\n    customer: {from: 'a b'}\n", 3,
     "params.customer: {from: ...} from: 'a b' is not a path"),
    ("models:\n  a: {kind: vnf}\n  a: {kind: pnf}\n", 3, "duplicate key 'a'"),
])
def test_a_mapping_file_problem_names_file_and_line(tmp_path, text, line, summary):
    path = tmp_path / "so-mapping.yaml"
    path.write_text(text)
    with pytest.raises(DiagnosticsError) as exc:
        load_mapping(path, tmp_path)
    first = exc.value.diagnostics[0]
    assert (first.file, first.line) == ("so-mapping.yaml", line) and first.summary.startswith(summary), str(first)


# --- status ----------------------------------------------------------------------------


def run_info(status: str, *, alive: bool = False, summary: dict | None = None) -> RunInfo:
    return RunInfo(id=1, created=1_704_363_072.0, updated=1_704_363_132.0, project="p", request="r", status=status,
                   pid=os.getpid() if alive else None, host=os.uname().nodename if alive else None, options={},
                   summary=summary or {})


def plan_event(seq: int, ops: list[str], number: int = 1) -> Event:
    kind = "plan" if number == 1 else "replan"
    return Event(kind, data={"number": number, "plan": json.dumps({"operations": [{"id": o} for o in ops]})},
                 seq=seq, run=1)


RECORD = SoRecord(request_id="0b7c5a1e-2f1d-4c3b-9a8e-7d6c5b4a3f21", action="createInstance",
                  instance_id="vfw-service", request_details=CREATE["requestDetails"], received=1_704_363_000.0)


@pytest.mark.parametrize("status, alive, state, detailed", [
    ("running", True, "IN_PROGRESS", "IN_PROGRESS"),
    ("running", False, "IN_PROGRESS", "IN_PROGRESS"),     # crashed: the server resumes it
    ("interrupted", False, "IN_PROGRESS", "IN_PROGRESS"),
    ("complete", False, "COMPLETE", "COMPLETE"),
    ("fallout", False, "PENDING_MANUAL_TASK", "PENDING_MANUAL_TASK"),
    ("failed", False, "FAILED", "FAILED"),
    ("aborted", False, "FAILED", "ABORTED"),             # as SO: ABORTED and ROLLED_BACK only with a format
    ("rolled_back", False, "FAILED", "ROLLED_BACK"),
    ("superseded", False, "FAILED", "FAILED"),
])
def test_each_run_status_has_its_so_request_state(status, alive, state, detailed):
    run = run_info(status, alive=alive)
    assert run.effective_status == ("crashed" if status == "running" and not alive else status)
    assert request_status(run, [])["requestState"] == state
    assert request_status(run, [], format="statusDetail")["requestState"] == detailed


def test_progress_and_flow_status_follow_the_current_plan():
    events = [plan_event(1, ["a/x", "b/x", "c/x", "d/x"]), Event("result", op="a/x", seq=2),
              Event("result", op="b/x", seq=3), Event("retry", op="c/x", seq=4)]
    status = request_status(run_info("running", alive=True), events)
    assert (status["percentProgress"], status["flowStatus"]) == (50, "Building blocks 2 of 4 completed.")
    events += [plan_event(5, ["c/x", "d/x", "e/x"], number=2), Event("result", op="c/x", seq=6)]
    assert progress(events).done == 1
    status = request_status(run_info("running", alive=True), events)
    assert (status["percentProgress"], status["flowStatus"]) == (
        33, "Building blocks 1 of 3 completed. (plan 2: a re-plan or a resume planned again)")
    done = request_status(run_info("complete", summary={"created": 10}), events)
    assert (done["percentProgress"], done["flowStatus"]) == (100, "Successfully completed all Building Blocks")
    assert done["statusMessage"] == "Completed: 10 created, 0 changed, 0 deleted"
    assert request_status(None, [])["requestState"] == "PENDING"


def test_orchestration_request_has_sos_shape():
    got = orchestration_request(RECORD, run_info("complete"), [plan_event(1, ["a/x"])])["request"]
    assert set(got) == {"requestId", "startTime", "finishTime", "requestScope", "requestType", "requestDetails",
                        "instanceReferences", "requestStatus"}
    assert got["startTime"] == "Thu, 04 Jan 2024 10:11:12 GMT" and got["requestType"] == "createInstance"
    assert got["instanceReferences"]["serviceInstanceId"] == "vfw-service"
    assert set(got["requestStatus"]) == {"requestState", "statusMessage", "percentProgress", "flowStatus", "timestamp"}
    running = orchestration_request(RECORD, run_info("running", alive=True), [])["request"]
    assert "finishTime" not in running
    refs = request_references(RECORD.request_id, "vfw-service", "http://h:8080")["requestReferences"]
    assert refs["requestSelfLink"] == f"http://h:8080/onap/so/infra/orchestrationRequests/v7/{RECORD.request_id}"


# --- GET orchestrationRequests/v7?filter= -------------------------------------------------


def test_filters_are_parsed_and_applied():
    other = SoRecord(request_id="1", action="deleteInstance", instance_id="vlb", request_details={},
                     received=1_704_363_000.0)
    rows = [(RECORD, run_info("complete"), []), (other, None, [])]

    def ids(*filters):
        return [r["request"]["requestId"] for r in request_list(rows, parse_filters(list(filters)))["requestList"]]

    assert ids("serviceInstanceName:EQUALS:vfw-service") == [RECORD.request_id]
    assert ids("serviceInstanceName:DOES_NOT_EQUAL:vfw-service") == ["1"]
    assert ids("requestType:LIKE:delete") == ["1"]
    assert ids("requestStatus:EQ:COMPLETE", "requestorId:EQUALS:demo") == [RECORD.request_id]
    assert ids("startTime:BETWEEN_DATES:01-01-2024:04-01-2024") == [RECORD.request_id, "1"]
    assert ids("startTime:BETWEEN_DATES:05-01-2024:31-12-2024") == []


@pytest.mark.parametrize("values, path, summary", [
    ([], "filter", "at least one filter is required"),
    (["colour:EQUALS:red"], "filter[0]", "unknown filter key 'colour'"),
    (["requestId:GREATER:3"], "filter[0]", "unknown operator 'GREATER'"),
    (["requestId:EQUALS:"], "filter[0]", "missing value"),
    (["startTime:BETWEEN_DATES:2024-01-01:2024-02-01"], "filter[0]", "expected two dates dd-MM-yyyy"),
    (["requestId:BETWEEN_DATES:01-01-2024:02-01-2024"], "filter[0]", "BETWEEN_DATES is the operator of startTime"),
    (["requestId:EQUALS:1"] * 21, "filter", "21 filters: at most 20"),
])
def test_a_bad_filter_is_refused(values, path, summary):
    with pytest.raises(DiagnosticsError) as exc:
        parse_filters(values)
    assert any(d.path == path and d.summary.startswith(summary) for d in exc.value.diagnostics)


# --- manual tasks -----------------------------------------------------------------------


def test_a_real_fallout_is_a_manual_task(mapping, tmp_path):
    """Apply the SO-translated vFW where region-two and -three refuse: the run falls out, and its
    journal makes a PENDING_MANUAL_TASK request with a task naming the failed operation and why."""
    request = tmp_path / "so.yaml"
    request.write_text(translate_create(body(), mapping).yaml_text())
    journal = tmp_path / "j" / "journal.db"
    with pytest.raises(SystemExit) as ended:
        main(["apply", "-C", str(VFW), str(request), "--auto-approve", "--journal", str(journal),
              "--simulation", str(VFW / "simulations" / "region-two-and-three-refuse.yaml")])
    assert ended.value.code == 3  # fallout
    with Journal(journal, create=False) as j:
        run, events = j.run(1), j.events(1)
    status = request_status(run, events)
    assert status["requestState"] == "PENDING_MANUAL_TASK" and 0 < status["percentProgress"] < 100
    library = Path(__file__).parents[1] / "policies" / "library" / "avoid-refused-targets.lp"
    line = library.read_text().splitlines().index(":- place(R,T), refused(T), replace(R).") + 1
    assert f"avoid-refused-targets (<library>/avoid-refused-targets.lp:{line}) on vfw" in status["statusMessage"]
    got = task(RECORD, run, events)
    assert parse_task_id(got["taskId"]) == (RECORD.request_id, events[-1].seq)
    # the last stack creation a refusing region failed (the VF module's or its volume group's)
    assert got["buildingBlockName"] in ("vfw-base/create", "vfw-logs/create") and got["errorCode"] == "no-plan"
    assert got["originalRequestorId"] == "demo" and got["subscriptionServiceType"] == "vFW"
    rows = [(RECORD, run, events), (RECORD, run_info("complete"), [])]
    assert task_list(rows, {})["taskList"] == [got]
    assert task_list(rows, {"originalRequestId": "other"})["taskList"] == []
    assert task_list(rows, {"buildingBlockName": got["buildingBlockName"]})["taskList"] == [got]


@pytest.mark.parametrize("response, action", [("retry", "resume"), ("resume", "resume"), ("manual", "resume"),
                                              ("rollback", "rollback"), ("abort", "abort")])
def test_a_task_completion_says_what_to_do_with_the_run(response, action):
    decision = task_decision({"requestDetails": {"requestInfo": {"source": "VID", "responseValue": response,
                                                                 "requestorId": "ops1"}}})
    assert (decision.action, decision.requestor) == (action, "ops1")


@pytest.mark.parametrize("bad, path, summary", [
    ({"requestDetails": {"requestInfo": {"responseValue": "skip"}}}, "requestDetails.requestInfo.responseValue",
     "'skip' cannot be done"),
    ({"requestDetails": {"requestInfo": {"responseValue": "later"}}}, "requestDetails.requestInfo.responseValue",
     "input should be"),
    ({"requestDetails": {}}, "requestDetails.requestInfo", "missing required field 'requestInfo'"),
])
def test_a_bad_task_completion_is_refused_at_its_field(bad, path, summary):
    with pytest.raises(DiagnosticsError) as exc:
        task_decision(bad)
    assert any(d.path == path and d.summary.startswith(summary) for d in exc.value.diagnostics), problems(exc)


def test_an_unknown_task_query_parameter_is_refused():
    with pytest.raises(DiagnosticsError) as exc:
        task_list([], {"colour": "red"})
    assert problems(exc) == [("colour", "unknown query parameter 'colour'")]


def test_task_ids_are_parsed_back():
    assert parse_task_id("0b7c5a1e-2f1d-4c3b-9a8e-7d6c5b4a3f21-42") == ("0b7c5a1e-2f1d-4c3b-9a8e-7d6c5b4a3f21", 42)
    assert parse_task_id("nothing") is None and parse_task_id("x-y") is None


def test_timestamps_are_in_sos_format():
    status = request_status(run_info("complete"), [])
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", status["timestamp"])


def test_the_timestamp_of_a_request_in_progress_is_its_last_event():
    """The run's row changes only with its status; a client watching for a stalled request reads the
    timestamp move with each operation done."""
    events = [plan_event(1, ["a/x", "b/x"]), Event("result", op="a/x", seq=2, at=1_704_363_500.0)]
    assert request_status(run_info("running", alive=True), events)["timestamp"] == "Thu, 04 Jan 2024 10:18:20 GMT"
    assert request_status(run_info("running", alive=True), [])["timestamp"] == "Thu, 04 Jan 2024 10:12:12 GMT"


def test_example_files_are_valid_json():
    for path in Path(VFW / "so").glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict)


def test_a_lock_held_for_another_service_names_it():
    """Claims are per resource: a create whose resources another service's request holds is told which
    service that is, not that its own instance has a request (whose RequestId is the other's)."""
    other = SoRecord(request_id="9d0c6a2b-1e3f-4a5b-8c7d-6e5f4a3b2c1d", action="createInstance",
                     instance_id="other-svc", request_details={}, received=0.0)
    text = locked_instance("vfw-service-d", other, "IN_PROGRESS")["requestError"]["serviceException"]["text"]
    assert text.startswith("Error: Locked instance - This service (vfw-service-d) shares resources with other-svc, "
                           "which has a request being worked with a status of IN_PROGRESS (RequestId - 9d0c6a2b"), text
    own = locked_instance("other-svc", other, "IN_PROGRESS")["requestError"]["serviceException"]["text"]
    assert own.startswith("Error: Locked instance - This service (other-svc) already has a request being worked"), own
