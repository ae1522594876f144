"""ONAP SO's northbound API on `ordo serve`: SO-shaped requests (examples/vfw/so/*.json) against a
real uvicorn server on loopback, the vFW on simulated controllers."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from executor.journal import Journal
from tests.conftest import VFW
from tests.servicekit import INSTANTIATE as INSTANTIATE_V1
from tests.servicekit import effects_once, thread_server

SO = "/onap/so/infra"
CREATE = f"{SO}/serviceInstantiation/v7/serviceInstances"
REQUESTS = f"{SO}/orchestrationRequests/v7"
INSTANTIATE = json.loads((VFW / "so" / "instantiate.json").read_text())
DELETE = json.loads((VFW / "so" / "delete.json").read_text())


def poll(api: httpx.Client, request_id: str, states: tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = api.get(f"{REQUESTS}/{request_id}", params={"format": "detail"})
        assert got.status_code == 200, got.text
        request = got.json()["request"]
        if request["requestStatus"]["requestState"] in states:
            return request
        assert time.monotonic() < deadline, request
        time.sleep(0.1)


def delete(api: httpx.Client, instance: str) -> httpx.Response:
    """SO's clients send requestDetails with a DELETE."""
    return api.request("DELETE", f"{CREATE}/{instance}", json=DELETE)


def so_error(response: httpx.Response) -> str:
    return response.json()["requestError"]["serviceException"]["text"]


def test_create_poll_complete_lock_delete_and_the_record_survives_a_restart(vfw_copy: Path) -> None:
    # the service's first step takes 3 s: the run still holds the instance when the second create
    # and the delete arrive, however slow the machine is at planning them
    slow_start = vfw_copy / "slow-start.yaml"
    slow_start.write_text(yaml.safe_dump({"seed": 1, "idempotent": False,
                                          "latency": {"default": 0.05, "service/assign": 3}}))
    with thread_server(vfw_copy, simulation=slow_start) as url, httpx.Client(base_url=url, timeout=60) as api:
        accepted = api.post(CREATE, json=INSTANTIATE)
        assert accepted.status_code == 202, accepted.text
        refs = accepted.json()["requestReferences"]
        request_id = refs["requestId"]
        assert uuid.UUID(request_id) and refs["instanceId"] == "vfw-service"
        assert refs["requestSelfLink"] == f"{REQUESTS}/{request_id}"

        # the same instance again while the first is in progress: SO's "Locked instance"
        again = api.post(CREATE, json=INSTANTIATE)
        assert again.status_code == 409, again.text
        assert "Locked instance" in so_error(again) and request_id in so_error(again)
        assert delete(api, "vfw-service").status_code == 409

        done = poll(api, request_id, ("COMPLETE", "FAILED", "PENDING_MANUAL_TASK"))
        status = done["requestStatus"]
        assert status["requestState"] == "COMPLETE" and status["percentProgress"] == 100, status
        assert done["requestType"] == "createInstance" and done["requestScope"] == "service"
        assert done["instanceReferences"]["serviceInstanceId"] == "vfw-service" and done["finishTime"]
        assert done["requestDetails"]["requestInfo"]["requestorId"] == "demo"
        listed = api.get(REQUESTS, params=[("filter", "serviceInstanceName:EQUALS:vfw-service"),
                                           ("filter", "requestStatus:EQ:COMPLETE")]).json()["requestList"]
        assert [r["request"]["requestId"] for r in listed] == [request_id]
        state = api.get("/v1/state").json()["resources"]
        assert state["vfw"]["state"] == "active"
        # the same instance again once it exists, other values in it: refused, as SO refuses a name that exists
        # (it changed the live instance in place: a sweep of SO's API)
        changed = copy.deepcopy(INSTANTIATE)
        changed["requestDetails"]["requestParameters"]["userParams"].append({"name": "customer", "value": "other"})
        exists = api.post(CREATE, json=changed)
        assert exists.status_code == 409 and "exists already" in so_error(exists), exists.text
        assert api.get("/v1/state").json()["resources"] == state
        assert len(api.get("/v1/runs").json()["runs"]) == 1

        deleted = delete(api, "vfw-service")
        assert deleted.status_code == 202, deleted.text
        delete_id = deleted.json()["requestReferences"]["requestId"]
        assert poll(api, delete_id, ("COMPLETE", "FAILED"))["requestStatus"]["requestState"] == "COMPLETE"
        assert poll(api, delete_id, ("COMPLETE",))["requestType"] == "deleteInstance"
        state = api.get("/v1/state").json()["resources"]
        assert state["vfw"]["state"] == "absent" and state["vfw-service"]["state"] == "absent"
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    # the SO record is kept with the run in the journal: a new server answers for the same requests
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        listed = api.get(REQUESTS, params={"filter": "serviceInstanceId:EQUALS:vfw-service"}).json()["requestList"]
        assert [(r["request"]["requestId"], r["request"]["requestType"]) for r in listed] == [
            (request_id, "createInstance"), (delete_id, "deleteInstance")]
        assert api.get(f"{REQUESTS}/{request_id}").json()["request"]["requestStatus"]["requestState"] == "COMPLETE"


def test_a_create_sent_while_another_run_holds_the_instance_is_refused_once_that_run_ended(
        vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SO's "exists already" was asked before the request was planned, and skipped while another run held
    the instance (its answer: "Locked instance"): a create sent then, planned as that run ended, went
    through and changed the live instance in place ("1 changed"; 20 creates sent together, a service
    sweep's). It is asked of the state each plan is made from now. Here the create's planning waits
    for the run that holds the instance to end, as the sweep's did by chance."""
    import threading

    from service.engine import LocalEngine

    ended = threading.Event()
    make_plan = LocalEngine._make_plan

    def planned_once_that_run_ended(self, *args, **kwargs):
        ended.wait(60)
        return make_plan(self, *args, **kwargs)

    with thread_server(vfw_copy, latency=0.2) as url, httpx.Client(base_url=url, timeout=60) as api:
        created = api.post(CREATE, json=INSTANTIATE)
        assert created.status_code == 202, created.text
        assert poll(api, created.json()["requestReferences"]["requestId"], ("COMPLETE",))
        state = api.get("/v1/state").json()["resources"]
        changing = copy.deepcopy(INSTANTIATE_V1)   # a run of /v1 that holds the instance for a while
        changing["services"]["vfw-service"]["networks"][0]["params"]["cidr"] = "10.1.0.0/24"
        holder = api.post("/v1/runs", json={"request": changing})
        assert holder.status_code == 202, holder.text
        monkeypatch.setattr(LocalEngine, "_make_plan", planned_once_that_run_ended)
        again = copy.deepcopy(INSTANTIATE)
        again["requestDetails"]["requestParameters"]["userParams"][1]["service"]["resources"]["networks"][0][
            "instanceParams"] = [{"cidr": "10.2.0.0/24"}]
        answers: list[httpx.Response] = []
        sending = threading.Thread(target=lambda: answers.append(api.post(CREATE, json=again)))
        sending.start()
        deadline = time.monotonic() + 60
        while api.get(f"/v1/runs/{holder.json()['id']}").json()["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        ended.set()
        sending.join(60)
        assert answers[0].status_code == 409 and "exists already" in so_error(answers[0]), answers[0].text
        cidr = api.get("/v1/state").json()["resources"]["unprotected-net"]["attributes"]["cidr"]
        assert cidr == "10.1.0.0/24" != state["unprotected-net"]["attributes"]["cidr"]   # (the /v1 run's)
        assert len(api.get("/v1/runs").json()["runs"]) == 2


def test_the_clients_x_onap_requestid_is_the_request_id_and_names_one_request(vfw_copy: Path) -> None:
    """SO takes the client's X-ONAP-RequestID as the request's id: the client polls by it, and the same id
    again is refused (400, "already exists"), as SO's filter refuses it; one that is not a UUID is 400."""
    mine = "5f0a7c3e-9b1d-4e2f-8a6b-1c2d3e4f5a6b"
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        accepted = api.post(CREATE, json=INSTANTIATE, headers={"X-ONAP-RequestID": mine.upper()})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["requestReferences"]["requestId"] == mine
        assert api.get(f"{REQUESTS}/{mine}").json()["request"]["requestId"] == mine
        assert api.get(f"{REQUESTS}/{mine.upper()}").json()["request"]["requestId"] == mine   # as the client wrote it
        again = api.post(CREATE, json=INSTANTIATE, headers={"X-ONAP-RequestID": mine})
        assert again.status_code == 400 and so_error(again) == f"RequestId: {mine} already exists", again.text
        bad = api.post(CREATE, json=INSTANTIATE, headers={"X-ONAP-RequestID": "not-a-uuid"})
        assert bad.status_code == 400 and "X-ONAP-RequestID: 'not-a-uuid' is not a UUID" in so_error(bad), bad.text
        poll(api, mine, ("COMPLETE",))


def test_a_secret_in_user_params_name_value_pairs_is_kept_out_of_the_record(vfw_copy: Path) -> None:
    """SO's clients send userParams as name/value pairs: one named like a secret is masked in the
    request kept (journal and GET alike), as a secret under its own key is. Masked whole, not
    fingerprinted: nothing compares the record's values, and a salted SHA-256 of a weak password,
    shown to a reader, was guessed in a hundred tries (an SO sweep's)."""
    body = copy.deepcopy(INSTANTIATE)
    body["requestDetails"]["requestParameters"]["userParams"].append({"name": "password", "value": "so-pass-4321"})
    with thread_server(vfw_copy, latency=0.01) as url, httpx.Client(base_url=url, timeout=60) as api:
        accepted = api.post(CREATE, json=body)
        assert accepted.status_code == 202, accepted.text
        request = poll(api, accepted.json()["requestReferences"]["requestId"], ("COMPLETE",))
    shown = json.dumps(request)
    assert "so-pass-4321" not in shown and '"name": "password", "value": "***"' in shown, shown
    assert "<secret " not in shown
    journal = b"".join(f.read_bytes() for f in (vfw_copy / ".ordo").glob("journal.db*"))
    assert b"so-pass-4321" not in journal


def test_a_fallout_is_a_task_retried_then_aborted(vfw_copy: Path) -> None:
    refusing = VFW / "simulations" / "region-two-and-three-refuse.yaml"
    with thread_server(vfw_copy, simulation=refusing) as url, httpx.Client(base_url=url, timeout=60) as api:
        request_id = api.post(CREATE, json=INSTANTIATE).json()["requestReferences"]["requestId"]
        fallen = poll(api, request_id, ("PENDING_MANUAL_TASK", "COMPLETE", "FAILED"))
        assert fallen["requestStatus"]["requestState"] == "PENDING_MANUAL_TASK", fallen
        assert "avoid-refused-targets" in fallen["requestStatus"]["statusMessage"]
        tasks = api.get(f"{SO}/tasks/v1").json()["taskList"]
        assert [t["originalRequestId"] for t in tasks] == [request_id]
        first = tasks[0]["taskId"]
        assert api.get(f"{SO}/tasks/v1", params={"originalRequestId": "nobody"}).json()["taskList"] == []
        # a field the task does not have matches nothing ("None" matched every task); a request id in upper
        # case names the task as it names the request in a path (it matched nothing: an SO sweep's)
        assert api.get(f"{SO}/tasks/v1", params={"nfRole": "None"}).json()["taskList"] == []
        upper = {"originalRequestId": request_id.upper()}
        assert [t["taskId"] for t in api.get(f"{SO}/tasks/v1", params=upper).json()["taskList"]] == [first]
        assert [t["taskId"] for t in api.get(f"{SO}/tasks/v1", params={"taskId": first.upper()}).json()["taskList"]] \
            == [first]
        listed = api.get(REQUESTS, params={"filter": f"requestId:EQUALS:{request_id.upper()}"}).json()
        assert [r["request"]["requestId"] for r in listed["requestList"]] == [request_id], listed

        def complete(task: str, value: str) -> httpx.Response:
            return api.post(f"{SO}/tasks/v1/{task}/complete",
                            json={"requestDetails": {"requestInfo": {"source": "VID", "responseValue": value,
                                                                     "requestorId": "ops"}}})

        assert complete(first, "skip").status_code == 400
        assert complete(first.upper(), "skip").status_code == 400   # (the task found: its answer refused)
        retried = complete(first, "retry")
        assert retried.status_code == 202 and retried.json() == {"taskRequestReference": {"taskId": first}}
        again = complete(first, "rollback")   # a client's retry after a timeout: the task is no longer open
        assert again.status_code == 404 and "no open task" in so_error(again), again.text
        # the cause is still there (both regions refuse): it falls out again, as a new task
        second = next_task(api, first)
        assert complete(first, "abort").status_code == 404  # a task once completed is gone
        assert complete(second, "abort").status_code == 202
        assert poll(api, request_id, ("ABORTED",))["requestStatus"]["percentProgress"] == 100
        assert api.get(f"{REQUESTS}/{request_id}").json()["request"]["requestStatus"]["requestState"] == "FAILED"
        assert api.get(f"{SO}/tasks/v1").json()["taskList"] == []
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        kinds = [(e.kind, e.data.get("principal")) for e in jr.events(1)]
    assert any(k == "resume-requested" and str(p).endswith("(SO requestor ops)") for k, p in kinds), kinds
    assert any(k == "run-ended" and str(p).endswith("(SO requestor ops)") for k, p in kinds), kinds


def test_resume_an_orchestration_request(vfw_copy: Path) -> None:
    refusing = VFW / "simulations" / "region-two-and-three-refuse.yaml"
    with thread_server(vfw_copy, simulation=refusing) as url, httpx.Client(base_url=url, timeout=60) as api:
        request_id = api.post(CREATE, json=INSTANTIATE).json()["requestReferences"]["requestId"]
        poll(api, request_id, ("PENDING_MANUAL_TASK",))
        first = next_task(api, None)
        resumed = api.post(f"{REQUESTS}/{request_id}/resume")
        # as SO's ResumeOrchestrationRequest: a new request, whose originalRequestId is the one resumed
        assert resumed.status_code == 202, resumed.text
        new_id = resumed.json()["requestReferences"]["requestId"]
        assert new_id != request_id and uuid.UUID(new_id)
        assert resumed.json()["requestReferences"]["requestSelfLink"] == f"{REQUESTS}/{new_id}"
        second = next_task(api, first)  # it fell out again (the regions still refuse)
        assert second.startswith(new_id)
        again = api.get(f"{REQUESTS}/{new_id}").json()["request"]
        assert again["originalRequestId"] == request_id and again["requestType"] == "createInstance"
        assert again["requestStatus"]["requestState"] == "PENDING_MANUAL_TASK"
        old = api.get(f"{REQUESTS}/{request_id}").json()["request"]  # the old id keeps answering
        assert old["requestId"] == request_id and "originalRequestId" not in old
        with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
            assert "resumed" in [e.kind for e in jr.events(1)]
        assert api.post(f"{REQUESTS}/{uuid.uuid4()}/resume").status_code == 404


def next_task(api: httpx.Client, previous: str | None, timeout: float = 60) -> str:
    """The id of the one open task, once it is not ``previous``."""
    deadline = time.monotonic() + timeout
    while not (tasks := api.get(f"{SO}/tasks/v1").json()["taskList"]) or tasks[0]["taskId"] == previous:
        assert time.monotonic() < deadline, tasks
        time.sleep(0.1)
    assert len(tasks) == 1, tasks
    return tasks[0]["taskId"]


def edited(path: tuple, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(INSTANTIATE)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


VNFS = ("requestDetails", "requestParameters", "userParams", 1, "service", "resources", "vnfs")


@pytest.fixture(scope="module")
def so_api(tmp_path_factory: pytest.TempPathFactory):
    import shutil
    project = tmp_path_factory.mktemp("so") / "vfw"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    with thread_server(project) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.mark.parametrize("body, where", [
    ({"requestDetails": "x"}, "requestDetails"),
    ([1, 2], "expected a JSON object, got an array"),   # (JSON's words, not Python's: 'list', 'NoneType')
    (b"null", "expected a JSON object, got null"),
    ("text", "expected a JSON object, got a string"),
    (edited((*VNFS, 0, "instanceName"), "not a name!"), "userParams[1].service.resources.vnfs[0].instanceName"),
    (edited(("requestDetails", "modelInfo", "modelName"), "vLB_Service"), "requestDetails.modelInfo"),
    # two VNFs of one name: said so, at the second (not an internal field of the translation)
    (edited((*VNFS, 0, "instanceName"), "vsink"), "resource 'vsink' is requested twice"),
])
def test_a_bad_body_is_400_naming_the_field(so_api: httpx.Client, body: Any, where: str) -> None:
    got = so_api.post(CREATE, content=body, headers={"Content-Type": "application/json"}) \
        if isinstance(body, bytes) else so_api.post(CREATE, json=body)
    assert got.status_code == 400, got.text
    assert where in so_error(got)
    assert so_api.get("/v1/runs").json()["total"] == 0


def test_no_json_unknown_ids_and_bad_filters(so_api: httpx.Client) -> None:
    assert so_api.post(CREATE, content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    unknown = so_api.get(f"{REQUESTS}/{uuid.uuid4()}")
    assert unknown.status_code == 404 and "no orchestration request" in so_error(unknown)
    no_task = so_api.post(f"{SO}/tasks/v1/nope-12/complete",
                          json={"requestDetails": {"requestInfo": {"responseValue": "abort"}}})
    # the task asked for is named (it said "no orchestration request 'nope'", of a request never asked for)
    assert no_task.status_code == 404 and so_error(no_task).endswith("no open task 'nope-12'"), no_task.text
    # a path of another version of SO's API: which ones this server serves (it said "Not Found")
    other = so_api.post(f"{SO}/serviceInstantiation/v8/serviceInstances", json=INSTANTIATE)
    assert other.status_code == 404 and "/serviceInstantiation/v8/serviceInstances is no route of this server: " \
        f"it serves {SO}/serviceInstantiation/v7/serviceInstances" in so_error(other), other.text
    bad = so_api.get(REQUESTS, params={"filter": "colour:EQUALS:red"})
    assert bad.status_code == 400 and "filter[0]" in so_error(bad)
    assert so_api.get(REQUESTS).status_code == 400  # at least one filter, as SO
    assert so_api.get(f"{SO}/tasks/v1", params={"colour": "red"}).status_code == 400
    # a key with no operator is said to have none (it was "unknown operator ''")
    bare = so_api.get(REQUESTS, params={"filter": "requestId"})
    assert bare.status_code == 400 and "no operator after 'requestId'" in so_error(bare), bare.text
    # a task query parameter given twice matched the last value only (an empty list, said nothing)
    twice = so_api.get(f"{SO}/tasks/v1", params=[("taskId", "a-1"), ("taskId", "b-2")])
    assert twice.status_code == 400 and "taskId given 2 times" in so_error(twice), twice.text
    assert so_api.delete(f"{CREATE}/bad%20name!").status_code == 400
    # a macro delete of an instance nothing has (a typo) is SO's 404, not a request that completes doing nothing
    gone = so_api.delete(f"{CREATE}/vfw-servce")
    assert gone.status_code == 404 and "no service instance 'vfw-servce'" in so_error(gone), gone.text
    assert so_api.get("/v1/runs").json()["total"] == 0


def test_a_compressed_body_is_415_saying_so(so_api: httpx.Client) -> None:
    """A gzip body was "not JSON ('utf-8' codec can't decode byte 0x8b in position 1 ...)" (a sweep's), a body
    not UTF-8 alike: each is said for what it is, as /v1 says it."""
    import gzip

    body = gzip.compress(json.dumps(INSTANTIATE).encode())
    got = so_api.post(CREATE, content=body, headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert got.status_code == 415 and "Content-Encoding 'gzip' is not taken" in so_error(got), got.text
    assert "codec" not in got.text and so_api.get("/v1/runs").json()["total"] == 0
    latin = so_api.post(CREATE, content=json.dumps({"x": "caf\u00e9"}).encode().replace(b"\\u00e9", b"\xe9"),
                        headers={"content-type": "application/json"})
    assert latin.status_code == 400 and "not UTF-8 text (byte 0xe9 at offset 10)" in so_error(latin), latin.text


def test_a_path_or_query_parameter_out_of_bounds_is_400_in_sos_shape(so_api: httpx.Client) -> None:
    """A path or query parameter FastAPI refuses was answered as /v1's 422 (an HTTP sweep's): SO's
    clients read requestError.serviceException."""
    for url, params, where in ((f"{REQUESTS}/{'x' * 301}", None, "requestId"),
                               (f"{CREATE}/{'x' * 201}", None, "serviceInstanceId"),
                               (f"{REQUESTS}/{uuid.uuid4()}", {"format": "x" * 51}, "format")):
        got = so_api.get(url, params=params) if where != "serviceInstanceId" else so_api.delete(url)
        assert got.status_code == 400 and where in so_error(got), got.text
        assert "x" * 51 not in got.text


def test_an_error_answer_is_bounded_and_names_no_line_of_a_body(so_api: httpx.Client) -> None:
    """A 50 KB query of 8,000 unknown keys was answered with 2.6 MB naming each, a 700 KB body of 15,000
    bad fields with 10 MB; a body's problems were placed at a made-up "SO request:1:1" (the sweep of
    6 December)."""
    keys = "&".join(f"k{i}" for i in range(7000)) + "&" + "x" * 20_000
    got = so_api.get(f"{SO}/tasks/v1?{keys}")
    error = got.json()["requestError"]["serviceException"]
    assert got.status_code == 400 and len(got.content) < 50_000, len(got.content)
    assert error["text"].startswith("7,001 problems: query: error: k0: unknown query parameter 'k0'")
    assert error["variables"][-1] == "and 6,981 more problems" and len(error["variables"]) == 21
    body = edited((*VNFS, 0, "vfModules"), [{"modelInfo": {"modelCustomizationName": "q"}}] * 500)
    got = so_api.post(CREATE, json=body)
    assert got.status_code == 400 and len(got.content) < 100_000, len(got.content)
    assert so_error(got).startswith("500 problems: SO request: error: requestDetails."), so_error(got)[:200]


def test_a_body_nested_without_end_is_400_not_500(so_api: httpx.Client) -> None:
    """A body far under the 1 MiB cap can nest deeper than the JSON parser recurses (a RecursionError
    was a 500), or deep enough that what reads an accepted body does (the redaction of the details
    kept): on each SO path that reads a body, a 400 in SO's shape, and nothing recorded."""
    bottomless = b'{"requestDetails": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    deep = edited(("requestDetails", "requestParameters", "userParams", 0, "value"), None)
    node = deep["requestDetails"]["requestParameters"]["userParams"][0]
    for _ in range(800):
        node["value"] = {"deeper": None}
        node = node["value"]
    tasks = f"{SO}/tasks/v1/nope-12/complete"
    for method, url, body in (("POST", CREATE, bottomless), ("POST", CREATE, json.dumps(deep).encode()),
                              ("DELETE", f"{CREATE}/vfw-service", bottomless), ("POST", tasks, bottomless)):
        got = so_api.request(method, url, content=body, headers={"content-type": "application/json"})
        assert got.status_code == 400, (method, url, got.status_code, got.text[:300])
        assert "nested more than 100 levels deep" in so_error(got)
    assert so_api.get("/v1/runs").json()["total"] == 0


def test_so_clients_use_http_basic(vfw_copy: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("so-operator-token-0123456789 operator vid\nso-reader-token-0123456789 reader dash\n")
    with thread_server(vfw_copy, tokens=tokens) as url, httpx.Client(base_url=url, timeout=60) as api:
        anonymous = api.get(f"{SO}/tasks/v1")
        assert anonymous.status_code == 401 and "a bearer token" in so_error(anonymous)   # in SO's shape
        assert anonymous.headers["www-authenticate"]
        reader = api.post(CREATE, json=INSTANTIATE, auth=("dash", "so-reader-token-0123456789"))
        assert reader.status_code == 403 and "dash is a reader" in so_error(reader)
        assert api.get("/v1/runs").json() == {"detail": "a bearer token (or HTTP basic) is needed"}   # /v1's own
        ok = api.post(CREATE, json=INSTANTIATE, auth=("vid", "so-operator-token-0123456789"))
        assert ok.status_code == 202, ok.text
        request_id = ok.json()["requestReferences"]["requestId"]
        assert api.get(f"{REQUESTS}/{request_id}", auth=("dash", "so-reader-token-0123456789")).status_code == 200
        assert api.get("/v1/runs/1", auth=("dash", "so-reader-token-0123456789")).json()["principal"] == "vid"
        with httpx.Client(base_url=url, timeout=60, auth=("vid", "so-operator-token-0123456789")) as vid:
            poll(vid, request_id, ("COMPLETE",))


@pytest.mark.parametrize("error, code", [
    ("changed", 503),   # a policy file written while the request was planned: send it again
    ("other", 422),     # any other refusal of the library's, as /v1 answers it
])
def test_a_planning_error_is_answered_in_sos_shape(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                    error: str, code: int) -> None:
    import planner.core
    from domain.errors import OrdoError
    from planner.bounded import PoliciesChanged

    def refused(*args, **kwargs):
        if error == "changed":
            raise PoliciesChanged("a policy file changed while planning; plan again")
        raise OrdoError("something the planner refuses")

    monkeypatch.setattr(planner.core, "solve_bounded", refused)
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        so = api.post(CREATE, json=INSTANTIATE)
        assert so.status_code == code and so_error(so), so.text
        v1 = api.post("/v1/runs", json={"request": INSTANTIATE_V1})
        assert v1.status_code == code and "detail" in v1.json(), v1.text
        if code == 503:
            assert so.headers["retry-after"] == v1.headers["retry-after"] == "1"
