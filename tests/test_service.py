"""`ordo serve`: the v1 API against a real uvicorn server on loopback, with the vFW on
simulated controllers (the server runs in this process, on a thread)."""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from executor.journal import Journal
from tests.conftest import VFW, run_ordo
from tests.servicekit import INSTANTIATE, LAB, effects_once, follow, thread_server, wait_state


@pytest.fixture
def api(vfw_copy: Path):
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_the_vfw_submitted_followed_to_the_end_and_its_state(api: httpx.Client, vfw_copy: Path) -> None:
    accepted = api.post("/v1/runs", json={"request": INSTANTIATE})
    assert accepted.status_code == 202, accepted.text
    run = accepted.json()["id"]
    assert accepted.json()["url"] == f"/v1/runs/{run}" and accepted.headers["location"] == f"/v1/runs/{run}"
    events = follow(api, run)
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["run-started", "plan"] and kinds[-1] == "run-ended", kinds
    assert events[-1]["status"] == "complete"
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})  # in order, none twice
    view = api.get(f"/v1/runs/{run}").json()
    assert view["state"] == "complete" and view["summary"]["operations"] == kinds.count("result")
    assert "vfw" in view["claims"] and view["principal"].startswith("local")
    assert view["targets"] == ["region-one", "region-two"]   # where it placed its VNFs
    state = api.get("/v1/state").json()["resources"]
    assert state["vfw"]["state"] == "active" and state["vfw-base"]["state"] == "active"
    applied = effects_once(vfw_copy / ".ordo" / "simulated-world.db")
    assert applied[("vfw", "activate")] == 1 and applied[("vfw-base", "create")] == 1
    listed = api.get("/v1/runs", params={"state": "complete"}).json()
    assert [r["id"] for r in listed["runs"]] == [run] and listed["total"] == 1
    assert api.get("/v1/runs", params={"state": "fallout"}).json()["runs"] == []


def test_a_run_submitted_with_its_concurrency_journals_the_plan_made_for_it(api: httpx.Client, vfw_copy: Path) -> None:
    """The plan was made for the project's concurrency (10: 10 waves, 22 s) while the run kept 2 (17 waves),
    and the events, the web view and SO's progress showed a schedule the run did not follow (a layering
    review's): made for the run's own, as `ordo apply --concurrency 2` makes it."""
    from planner.plan import Plan

    run = api.post("/v1/runs", json={"request": INSTANTIATE, "concurrency": 2}).json()["id"]
    events = follow(api, run)
    assert events[-1]["status"] == "complete", events[-1]
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        plan = Plan.from_json(next(ev.data["plan"] for ev in jr.events(run) if ev.kind == "plan"))
    assert plan.concurrency == 2 and all(len(wave) <= 2 for wave in plan.waves), plan.waves


def test_events_carry_on_after_last_event_id(api: httpx.Client) -> None:
    run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
    everything = follow(api, run)
    middle = everything[len(everything) // 2]["seq"]
    rest = follow(api, run, last=middle)
    assert rest == [e for e in everything if e["seq"] > middle]
    assert api.get(f"/v1/runs/{run}/events", headers={"Last-Event-ID": "x"}).status_code == 422


def test_the_same_idempotency_key_answers_with_the_same_run(api: httpx.Client, vfw_copy: Path) -> None:
    first = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "order-42"})
    again = api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    other = api.post("/v1/runs", json={"request": LAB}, headers={"Idempotency-Key": "order-42"})
    assert other.status_code == 409 and "order-42" in other.json()["detail"]
    wait_state(api, first.json()["id"], ("complete",))
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert len(jr.runs()) == 1


def test_a_request_on_resources_in_progress_is_locked_a_disjoint_one_runs_beside(vfw_copy: Path) -> None:
    with thread_server(vfw_copy, latency=0.3) as url, httpx.Client(base_url=url, timeout=60) as api:
        first = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        locked = api.post("/v1/runs", json={"request": INSTANTIATE})
        assert locked.status_code == 409, locked.text
        assert locked.json()["detail"].startswith("Locked instance: run 1 (running) holds")
        beside = api.post("/v1/runs", json={"request": LAB})
        assert beside.status_code == 202, beside.text
        assert api.get(f"/v1/runs/{first}").json()["state"] == "running"  # side by side
        assert wait_state(api, beside.json()["id"], ("complete",))["claims"] == ["lab", "lab-net"]
        assert wait_state(api, first, ("complete",))
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")


def test_an_abort_counts_a_health_check_not_run_as_unfinished(vfw_copy: Path) -> None:
    """A change that keeps the state (a health check, an update) left undone by an abort is unfinished too:
    its resource is at its goal state already, so only its operations not done tell (it was counted nowhere)."""
    import yaml

    text = (vfw_copy / "ordo.yaml").read_text()
    (vfw_copy / "ordo.yaml").write_text(text.replace("inventory: inventory.yaml", "inventory: inventory-deployed.yaml")
                                        .replace("concurrency: 10 ", "concurrency: 1 "))
    request = yaml.safe_load((vfw_copy / "requests" / "healthcheck.yaml").read_text())
    with thread_server(vfw_copy, latency=0.5) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": request}).json()["id"]
        assert api.post(f"/v1/runs/{run}/abort").status_code == 202
        summary = wait_state(api, run, ("aborted",))["summary"]
    assert summary["operations"] <= 1 and summary["unfinished"] == 2 - summary["operations"], summary


def test_abort_and_resume(vfw_copy: Path) -> None:
    with thread_server(vfw_copy, latency=0.2) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        assert api.post(f"/v1/runs/{run}/resume").status_code == 409  # it runs
        aborted = api.post(f"/v1/runs/{run}/abort")
        assert aborted.status_code == 202 and "Abort requested" in aborted.json()["message"]
        summary = wait_state(api, run, ("aborted",))["summary"]
        # each of the 10 resources the plan creates is created or unfinished, started or not
        assert summary["unfinished"] > 0 and summary["created"] + summary["unfinished"] == 10, summary
        assert api.post(f"/v1/runs/{run}/resume").status_code == 409  # aborted is for good
        assert api.post(f"/v1/runs/{run}/abort").status_code == 409
        requested = [e for e in follow(api, run) if e["kind"] == "abort-requested"]
        assert requested and requested[0]["principal"].startswith("local")


def test_plans_the_plan_or_the_explanation(api: httpx.Client) -> None:
    plan = api.post("/v1/plans", json={"request": INSTANTIATE})
    assert plan.status_code == 200 and plan.json()["status"] == "optimal"
    assert any(op["resource"] == "vfw" for op in plan.json()["operations"])
    whatif = api.post("/v1/plans", json={"whatif": {"target_down": ["region-two"]}})
    assert whatif.status_code == 200 and whatif.json()["scenario"] == ["region-two down"]
    none = api.post("/v1/plans", json={"whatif": {"capacity": ["region-one:vcpu=0", "region-two:vcpu=0",
                                                               "region-three:vcpu=0"]}})
    assert none.status_code == 422 and none.json()["other"]["has_plan"] is False
    assert none.json()["other"]["explanation"]
    unknown = api.post("/v1/plans", json={"whatif": {"target_down": ["region-two", "region-nine"]}})
    # named at the body's field, not the command line's option (--target-down: a service sweep's)
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith(
        "whatif.target_down[1]: no target 'region-nine' in the inventory"), unknown.text
    for whatif, said in (({"capacity": ["nonsense"]}, "whatif.capacity[0]: expected TARGET:KEY=N"),
                         ({"without_policy": ["capicity"]}, "whatif.without_policy[0]: the project loads no policy "
                                                            "named 'capicity' (did you mean 'capacity'?)"),
                         # (an unknown target or key of a capacity was named at the field, without its index)
                         ({"capacity": ["region-one:vcpu=3", "region-nine:vcpu=3"]},
                          "whatif.capacity[1]: no target 'region-nine' in the inventory"),
                         ({"capacity": ["region-one:vpcu=3"]}, "whatif.capacity[0]: no target has or resource "
                                                               "requires 'vpcu' (did you mean 'vcpu'?)"),
                         # the same entry twice: the second is the one too many (the first was named, a review's)
                         ({"capacity": ["region-one:vcpu=3", "region-one:vcpu=3"]},
                          "whatif.capacity[1]: region-one:vcpu is given twice")):
        refused = api.post("/v1/plans", json={"whatif": whatif})
        assert refused.status_code == 422 and refused.json()["detail"].startswith(said), refused.text
        assert "--" not in refused.json()["detail"], refused.text
    # a request that no target can take: no plan, with its explanation (it was a 500)
    huge = copy.deepcopy(INSTANTIATE)
    huge["services"]["vfw-service"]["vnfs"][2]["requires"]["vcpu"] = 100000
    for call in ("/v1/plans", "/v1/runs"):
        refused = api.post(call, json={"request": huge})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"] == "no plan exists" and refused.json()["status"] == "no_plan"
        assert refused.json()["explanation"]
    # a saved plan is carried out as it is, and refused once stale
    accepted = api.post("/v1/runs", json={"request": INSTANTIATE, "plan": plan.json()})
    assert accepted.status_code == 202, accepted.text
    wait_state(api, accepted.json()["id"], ("complete",))
    stale = api.post("/v1/runs", json={"request": INSTANTIATE, "plan": plan.json()})
    assert stale.status_code == 422 and "stale" in stale.json()["diagnostics"][0]["summary"]


def test_bad_input_is_refused_naming_the_field_never_500(api: httpx.Client, vfw_copy: Path) -> None:
    assert api.get("/v1/runs/999").status_code == 404
    assert api.post("/v1/runs/999/abort").status_code == 404
    assert api.get("/v1/runs/999/events").status_code == 404
    for bad in ("abc", "0", str(1 << 70)):
        assert api.get(f"/v1/runs/{bad}").status_code == 422
    unknown = api.post("/v1/runs", json={"request": INSTANTIATE, "priority": 1})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "priority"]
    assert api.post("/v1/runs", json={"request": INSTANTIATE, "concurrency": 0}).status_code == 422
    # op_timeout bounded as --op-timeout is (domain.limits): 0.001 s was taken, 100,000 s refused (a review's)
    small = api.post("/v1/runs", json={"request": INSTANTIATE, "op_timeout": 0.001})
    assert small.status_code == 422 and small.json()["detail"][0]["loc"] == ["body", "op_timeout"], small.text
    assert run_ordo("apply", "-C", vfw_copy, "--op-timeout", "0.001", "--auto-approve").code == 1
    for field in ("max_replans", "concurrency", "op_timeout"):   # true was read as 1 (an HTTP sweep's)
        boolean = api.post("/v1/runs", json={"request": INSTANTIATE, field: True})
        assert boolean.status_code == 422 and boolean.json()["detail"][0]["loc"] == ["body", field], boolean.text
        assert "expected a number, not true" in boolean.json()["detail"][0]["msg"], boolean.text
    boolean = api.post("/v1/plans", json={"request": {"resources": [
        {"name": "zz", "type": "vnf", "priority": True, "requires": {"vcpu": False}}]}})
    assert boolean.status_code == 422 and sorted(d["path"] for d in boolean.json()["diagnostics"]) == \
        ["resources[0].priority", "resources[0].requires.vcpu"], boolean.text
    assert api.post("/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
                    ).status_code == 422
    assert api.post("/v1/runs", json={"request": "services"}).status_code == 422
    wrong = api.post("/v1/runs", json={"request": {"services": {"vfw-service": {"vnfs": [{"name": "x",
                                                                                           "colour": 1}]}}}})
    assert wrong.status_code == 422, wrong.text
    assert any("colour" in d["path"] for d in wrong.json()["diagnostics"]) and wrong.json()["omitted"] == 0
    many = api.post("/v1/plans", json={"request": {"resources": [   # (3,000 problems: the first 100 named)
        {"name": f"r{i}", "type": "vnf", "colour" + "x" * 200: 1} for i in range(3000)]}})
    assert many.status_code == 422 and many.json()["omitted"] == 2900 and len(many.json()["diagnostics"]) == 100
    assert len(many.content) < 600_000, len(many.content)
    big = api.post("/v1/runs", content=b" " * (2 << 20), headers={"content-type": "application/json"})
    assert big.status_code == 413
    chunked = api.post("/v1/plans", content=iter([b" " * (1 << 19)] * 4), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert api.post("/v1/runs", json={"request": INSTANTIATE}, headers={"Idempotency-Key": "a b"}).status_code == 422
    assert api.get("/v1/runs", params={"state": "sleeping"}).status_code == 422
    assert api.get("/v1/runs", params={"limit": 0}).status_code == 422


def test_a_body_nested_too_deeply_or_with_a_number_too_long_is_refused_saying_so(api: httpx.Client) -> None:
    """Both were "400 There was an error parsing the body" (the sweep of 6 December)."""
    deep = b'{"request": ' + b'{"a": ' * 3000 + b'1' + b'}' * 3001
    long = b'{"request": {"resources": [{"name": "n", "type": "network", "params": {"p": ' + b'9' * 5000 + b'}}]}}'
    for body, said in ((deep, "the body: it is nested more than 100 levels deep"),
                       (long, f"the body: a number has more than {sys.get_int_max_str_digits():,} digits")):
        answer = api.post("/v1/runs", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and answer.json() == {"detail": said}, answer.text


def test_a_body_not_read_as_json_at_all_is_refused_saying_why(api: httpx.Client) -> None:
    """A body not UTF-8, compressed, or JSON sent as text/plain: "There was an error parsing the body", or
    "Input should be a valid dictionary" (a service sweep's). SO's clients send what they send: its
    prefix still reads JSON whatever its content type says."""
    import gzip

    body = json.dumps({"request": LAB}).encode()
    for content, headers, code, said in (
            (b'{"request": "\xff"}', {"content-type": "application/json"}, 400,
             "the body is not UTF-8 text (byte 0xff at offset 13): send JSON in UTF-8"),
            (gzip.compress(body), {"content-type": "application/json", "content-encoding": "gzip"}, 415,
             "the body's Content-Encoding 'gzip' is not taken: send the JSON as it is"),
            (body, {"content-type": "text/plain"}, 415,
             "the body is sent as 'text/plain': send it as application/json"),
            (body, {"content-type": "application/x-www-form-urlencoded"}, 415,
             "the body is sent as 'application/x-www-form-urlencoded': send it as application/json")):
        answer = api.post("/v1/plans", content=content, headers=headers)
        assert answer.status_code == code and answer.json() == {"detail": said}, answer.text
    typed = {"content-type": "application/json; charset=utf-8"}
    assert api.post("/v1/plans", content=body, headers=typed).status_code == 200
    missing = api.post("/v1/plans", content=b"", headers={"content-type": ""})   # (missing, said so: a review's)
    assert missing.status_code == 422 and missing.json()["detail"][0]["type"] == "missing", missing.text
    untyped = api.post("/v1/plans", content=body, headers={"content-type": ""})
    assert untyped.status_code == 415 and untyped.json() == {
        "detail": "the body is sent without a Content-Type: send it as application/json"}, untyped.text
    # a route that reads no body ignores one, whatever its type (curl -d sends a form's: a review's)
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {"content-encoding": "gzip"}):
        ignored = api.post("/v1/runs/999/abort", content=b"{}" if "content-type" in headers else b"",
                           headers=headers)
        assert ignored.status_code == 404, ignored.text


def test_a_body_naming_a_key_twice_is_refused(api: httpx.Client) -> None:
    """json keeps the last of a key named twice; a proxy or gateway that read the body first may
    have taken the first (the first hostile-input sweep). Refused on /v1 and, in SO's shape, under SO."""
    body = b'{"request": {"services": {"lab": {}}}, "request": {"services": {"vfw-service": {}}}}'
    for path in ("/v1/plans", "/v1/runs"):
        twice = api.post(path, content=body, headers={"content-type": "application/json"})
        assert twice.status_code == 422 and twice.json() == {
            "detail": "the body: the key 'request' appears twice in one object"}, twice.text
    nested = api.post("/v1/plans", content=b'{"request": {"services": {"a": {}, "a": {}}}}',
                      headers={"content-type": "application/json"})
    assert nested.status_code == 422 and "'a' appears twice" in nested.json()["detail"]
    so = api.post("/onap/so/infra/serviceInstantiation/v7/serviceInstances",
                  content=b'{"requestDetails": {}, "requestDetails": {}}', headers={"content-type": "application/json"})
    assert so.status_code == 400 and "the key 'requestDetails' appears twice in one object" in \
        so.json()["requestError"]["serviceException"]["text"], so.text
    plain = api.post("/v1/plans", json={"request": INSTANTIATE})   # the body reaches the route whole
    assert plain.status_code == 200 and plain.json()["operations"], plain.text


@pytest.mark.parametrize(("text", "says"), [
    ("NaN", "NaN is not a JSON number"), ("-Infinity", "-Infinity is not a JSON number"),
    ("1e400", "1e400 is too large a number (it reads as infinity)"),   # (the review of 6 December)
    ('"\\ud800x"', "a text holds a lone surrogate ('\\ud800'), which is not Unicode text"),
])
def test_a_body_json_cannot_hold_is_refused_wherever_it_is(api: httpx.Client, text: str, says: str) -> None:
    """Python's json reads NaN, Infinity and lone surrogates; nothing writes them out again. In a field
    SO's translation does not read (kept with the run), SO's status answers about the request were a 500
    for good, after a restart too; a request's name with a surrogate made POST /v1/runs a 500 (the
    fourth hostile-input sweep). Refused: as the body arrives in SO's shape (400), by the field on /v1 (422)."""
    so_body = json.loads((VFW / "so" / "instantiate.json").read_text())
    so_body["requestDetails"]["extraThing"] = "PLACEHOLDER"
    so = api.post("/onap/so/infra/serviceInstantiation/v7/serviceInstances",
                  content=json.dumps(so_body).replace('"PLACEHOLDER"', text).encode(),
                  headers={"content-type": "application/json"})
    assert so.status_code == 400 and says in so.json()["requestError"]["serviceException"]["text"], so.text
    named = api.post("/v1/runs", headers={"content-type": "application/json"},
                     content=b'{"request": {"name": NAME, "resources": [{"name": "s1", "type": "network"}]}}'
                     .replace(b"NAME", text.encode()))
    assert named.status_code == 422 and ("request.name" in named.text or '"path":"name"' in named.text), named.text
    assert api.get("/v1/runs").json()["runs"] == []


def test_a_lone_surrogate_inside_a_param_is_refused_by_its_field(api: httpx.Client) -> None:
    """POST /v1/runs took a lone surrogate inside a param's list (202); the run sent it and fell out once
    the journal could not store what the controller did, keeping its claim (the encodings sweep)."""
    sent = api.post("/v1/runs", headers={"content-type": "application/json"},
                    content=b'{"request": {"resources": [{"name": "n5", "type": "network", '
                            b'"params": {"x": {"a": ["\\ud83d"]}}}]}}')
    assert sent.status_code == 422 and "a[0]: its text holds an unpaired surrogate" in sent.text, sent.text
    assert api.get("/v1/runs").json()["runs"] == []


def test_a_request_cannot_rewrite_what_is_observed(api: httpx.Client) -> None:
    """The management network exists (inventory): a request over HTTP may not move it."""
    request = {"services": {"vfw-service": {"networks": [{"name": "onap-mgmt-net", "placement": "region-three"}]}}}
    refused = api.post("/v1/plans", json={"request": request})
    assert refused.status_code == 422, refused.text
    assert any("onap-mgmt-net" in d["path"] or "onap-mgmt-net" in d["summary"]
               for d in refused.json()["diagnostics"])


def test_health_readiness_metrics_openapi(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    for probe in ("/healthz", "/readyz"):   # (a load balancer's HEAD was answered 405)
        asked = api.head(probe)
        assert asked.status_code == 200 and asked.content == b"", (probe, asked.status_code)
    run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
    wait_state(api, run, ("complete",))
    deadline = time.monotonic() + 5
    while 'ordo_runs{state="complete"} 1.0' not in (text := api.get("/metrics").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    assert "ordo_operations_dispatched_total 32.0" in text and "ordo_plan_seconds_count 1.0" in text
    assert "ordo_dispatch_seconds_count 32.0" in text
    schema = api.get("/openapi.json").json()
    assert {"/v1/runs", "/v1/plans", "/v1/runs/{run_id}/events", "/v1/state"} <= set(schema["paths"])
    # no page that runs another site's scripts here (FastAPI's /docs loads Swagger UI from a CDN), where a
    # browser may have credentials for this server
    assert api.get("/docs").status_code == api.get("/redoc").status_code == 404


def test_the_pages_serve_names_in_its_help_are_served(api: httpx.Client, monkeypatch) -> None:
    # (its help and start-up line named /docs after that page was taken away)
    from types import SimpleNamespace

    from click.testing import CliRunner

    import service.server
    from ordo.cli import cli

    idle = SimpleNamespace(run=lambda: None, bind=lambda: None)
    monkeypatch.setattr(service.server, "build", lambda options: (idle, SimpleNamespace(configured=False)))
    started = CliRunner().invoke(cli, ["serve", "-C", str(VFW)])
    assert started.exit_code == 0 and "/v1" in started.output, started.output
    shown = started.output + CliRunner().invoke(cli, ["serve", "--help"]).output + \
        CliRunner().invoke(cli, ["--help"]).output
    named = set(re.findall(r"(?<![\w.@~:/])(/[a-z][\w./-]*[\w])", shown))
    assert named >= {"/openapi.json"}, shown
    for path in named - {"/v1"}:
        assert api.get(path).status_code == 200, path


def test_a_shutdown_leaves_runs_resumable_and_the_next_start_resumes_them(vfw_copy: Path) -> None:
    with thread_server(vfw_copy, latency=0.3) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
    # the server stopped (as on SIGTERM): the run stopped where it can resume
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert jr.run(run).status == "interrupted"
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        assert wait_state(api, run, ("complete",))["principal"].startswith("local")
        kinds = [e["kind"] for e in follow(api, run)]
        assert kinds.count("resume-requested") == 1 and kinds[-1] == "run-ended"
    effects_once(vfw_copy / ".ordo" / "simulated-world.db")


def test_a_run_temporal_cannot_take_now_is_503_to_try_later(api: httpx.Client, monkeypatch) -> None:
    """No worker serves a queue of the run (service on Temporal): the server's condition, not the request's,
    so 503 with Retry-After, not 422; nothing was started."""
    from executor import runs
    from executor.temporal import TemporalError

    def unserved(*args, **kwargs):
        raise TemporalError("no worker serves the task queue ordo-so (the calls to so) on 127.0.0.1:7233: ...")

    monkeypatch.setattr(runs, "execute", unserved)
    refused = api.post("/v1/runs", json={"request": INSTANTIATE})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "30", refused.text
    assert "no worker serves the task queue ordo-so" in refused.json()["detail"]
    assert api.get("/v1/runs").json()["total"] == 0


def test_an_abort_starts_nothing_new_in_the_run_driven_here(vfw_copy: Path) -> None:
    """The engine tells the executor that drives the run, which reads the abort at once: it used to
    find it at its next look at the journal (every 0.5 s), dispatching meanwhile."""
    with thread_server(vfw_copy, latency=0.15) as url, httpx.Client(base_url=url, timeout=60) as api:
        run = api.post("/v1/runs", json={"request": INSTANTIATE}).json()["id"]
        deadline = time.monotonic() + 30
        while not _results(vfw_copy, run, 3):   # mid-run
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert api.post(f"/v1/runs/{run}/abort").status_code == 202
        wait_state(api, run, ("aborted",))
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        events = jr.events(run)
    asked = next(e for e in events if e.kind == "abort-requested")
    # (a dispatch under way as the abort came may still be journaled; the old poll found it up to 0.5 s later)
    late = [(e.op, round(e.at - asked.at, 3)) for e in events if e.kind == "intent" and e.at > asked.at + 0.25]
    assert not late, late


def _results(project: Path, run: int, count: int) -> bool:
    with Journal(project / ".ordo" / "journal.db", create=False) as jr:
        return sum(e.kind == "result" for e in jr.events(run)) >= count


def test_a_run_whose_re_plan_is_refused_falls_out_instead_of_waiting_for_a_restart(vfw_copy: Path) -> None:
    """A policy edited into an error while a run goes on: the re-plan after region-two's refusal is
    refused. The server goes on, so nothing would resume the run before its next start: it falls out
    (no plan after the failure, the policy's error as the reason), and is resumed once the policy is
    mended."""
    scenario = VFW / "simulations" / "region-two-refuses.yaml"   # (its first refusal comes a second in)
    policy = vfw_copy / "policies" / "config-after-modules.lp"
    good = policy.read_text()
    with thread_server(vfw_copy, simulation=scenario) as url, httpx.Client(base_url=url, timeout=60) as api:
        accepted = api.post("/v1/runs", json={"request": INSTANTIATE})
        assert accepted.status_code == 202, accepted.text
        run = accepted.json()["id"]
        policy.write_text(good + "\nbroken(X :- .\n")
        fallen = wait_state(api, run, ("fallout", "complete", "failed", "interrupted"))
        assert fallen["state"] == "fallout", fallen
        assert fallen["summary"]["reason"].startswith("no plan after failure: vfw-logs/create failed"), fallen
        [no_plan] = [ev for ev in follow(api, run) if ev["kind"] == "no-plan"]
        assert "config-after-modules.lp" in json.dumps(no_plan), no_plan
        policy.write_text(good)
        assert api.post(f"/v1/runs/{run}/resume").status_code == 202
        assert wait_state(api, run, ("complete", "fallout", "failed"))["state"] == "complete"


def test_a_422_does_not_echo_what_was_sent(api: httpx.Client) -> None:
    """FastAPI's 422 quotes each wrong value: one under a secret's name came back in clear (four times,
    once per type it might have been), a 100,000-character name whole (the fourth sweep)."""
    secret = api.post("/v1/runs/1/events", json={"resource": "vsink", "event": "registered",
                                                 "data": {"password": {"x": "NESTEDSECRET6"}}})
    assert secret.status_code == 422 and "NESTEDSECRET6" not in secret.text, secret.text
    assert secret.json()["detail"][0]["loc"] == ["body", "data", "password", "str"]
    long = api.post("/v1/runs/1/events", json={"resource": "v" * 100_000, "event": "registered", "data": {}})
    assert long.status_code == 422 and len(long.text) < 500 and "at most 200 characters" in long.text, long.text[:600]


def test_a_request_reads_as_sent_floats_with_exponents_and_long_keys_too(api: httpx.Client) -> None:
    """The request is kept as a file and read back from it: a float JSON writes without a point (1e20)
    read back as text, and slipped past the range check, a key of more than 1,024 characters as
    invalid YAML in the server's own file (an HTTP sweep's)."""
    def network(params: dict) -> dict:
        return {"request": {"services": {"lab": {"networks": [{"name": "n9", "params": params}]}}}}

    big = api.post("/v1/plans", json=network({"cidr": "10.9.0.0/24", "mtu": 1e20}))
    assert big.status_code == 422 and big.json()["diagnostics"][0]["path"] == "services.lab.networks[0].params.mtu"
    assert "out of range" in big.json()["diagnostics"][0]["summary"], big.text
    assert api.post("/v1/plans", json=network({"cidr": "10.9.0.0/24", "ratio": 1e-05})).status_code == 200
    # a character beyond U+FFFF: JSON's escape of it (a pair of surrogates) is no YAML escape
    emoji = api.post("/v1/plans", json=network({"cidr": "10.9.0.0/24", "note": "ok \U0001F600"}))
    assert emoji.status_code == 200, emoji.text
    long = api.post("/v1/plans", json=network({"cidr": "10.9.0.0/24", "k" * 1100: "v"}))
    assert long.status_code == 422 and long.json()["diagnostics"][0]["summary"] == \
        "string should have at most 200 characters", long.text


def test_a_browser_post_from_another_sites_page_is_refused(api: httpx.Client) -> None:
    """The web view asks browsers for Basic credentials, which they send again with a form another
    site's page posts here (an HTTP sweep aborted a run so, and started one through SO's route with a
    text/plain form): what a browser says of a request's origin is checked before anything is read."""
    host = api.base_url.netloc.decode()
    submitted = api.post("/v1/runs", json={"request": INSTANTIATE})
    assert submitted.status_code == 202, submitted.text
    run = submitted.json()["id"]
    so = "/onap/so/infra/serviceInstantiation/v7/serviceInstances"
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Origin": f"http://{host}.evil"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": f"http://{host}"}):
        for url, body in ((f"/v1/runs/{run}/abort", b"x=1"), ("/v1/runs", json.dumps({"request": INSTANTIATE})),
                          (so, b'{"requestDetails": {}}')):
            refused = api.post(url, content=body, headers={**headers, "content-type": "text/plain"})
            said = refused.json()["requestError"]["serviceException"]["text"] if url == so \
                else refused.json()["detail"]   # (SO's shape under its prefix)
            assert refused.status_code == 403 and "another site" in said, (url, headers)
            assert "evil" not in refused.text
    assert api.get(f"/v1/runs/{run}").json()["state"] != "aborted"
    # the page's own origin, a request the user typed, a proxy's name for this server, and programs
    for headers in ({"Origin": f"http://{host}"}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                    {"Origin": "https://ordo.localhost", "X-Forwarded-Host": "ordo.localhost"},
                    {"Origin": "https://ordo.localhost", "X-Forwarded-Host": "ordo.localhost:443"}, {}):
        assert api.post("/v1/runs/999/abort", headers=headers).status_code == 404, headers
    assert api.get(f"/v1/runs/{run}", headers={"Origin": "https://evil.example"}).status_code == 200


def test_numbers_are_json_numbers_and_ascii_digits(api: httpx.Client) -> None:
    """A run option sent as text ("1_0", " 3 ", "1e2") was read as the number it spells, and a
    what-if capacity's amount in other digits ("٥٠", "５０") as 50 (an HTTP sweep's)."""
    for field, text in (("max_replans", "1_0"), ("concurrency", " 3 "), ("op_timeout", "1e2"), ("concurrency", "3")):
        refused = api.post("/v1/runs", json={"request": INSTANTIATE, field: text})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", field], refused.text
    for amount in ("٥٠", "５０"):
        refused = api.post("/v1/plans", json={"whatif": {"capacity": [f"region-one:vcpu={amount}"]}})
        assert refused.status_code == 422 and "expected TARGET:KEY=N" in refused.json()["detail"], refused.text


def test_a_requests_problems_do_not_name_the_servers_folders(vfw_copy: Path, tmp_path: Path) -> None:
    """A request is kept as a file beside the journal; its problems named that file by the server's
    absolute path (a web sweep's): now by its name in the journal's folder."""
    journal = tmp_path / "elsewhere" / "journal.db"
    with thread_server(vfw_copy, journal=journal) as url, httpx.Client(base_url=url, timeout=60) as api:
        broken = api.post("/v1/plans", json={"request": {"services": 5}})
    assert broken.status_code == 422, broken.text
    # nor by the file the server keeps it in (the caller never saw it, and it is not kept when refused: a
    # first-day operator's): the request, its problem at its path, without the lines of the YAML kept
    first = broken.json()["diagnostics"][0]
    assert (first["file"], first["line"], first["column"], first["path"]) == ("request", None, None, "services"), first
    assert str(tmp_path) not in broken.text and str(vfw_copy) not in broken.text and "requests/" not in broken.text
    # the same with the journal in the project (.ordo/requests/...: it said ".ordo/request", line 2, a review's),
    # and a name of the caller's own of that shape is left as written
    name = "requests/0123456789abcdef0123456789abcdef.yaml"
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        broken = api.post("/v1/plans", json={"request": {"services": 5}})
        own = api.post("/v1/plans", json={"request": {"services": {name: 1}}})
    first = broken.json()["diagnostics"][0]
    assert (first["file"], first["line"], first["column"], first["path"]) == ("request", None, None, "services"), first
    assert own.status_code == 422 and name in own.text, own.text



def test_a_relative_journal_leaves_the_callers_words_as_they_are(vfw_copy: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The folders taken out of a request's problems were './' for a journal given by a relative path:
    a name 'x../y' came back as 'x.y' (a review's)."""
    monkeypatch.chdir(tmp_path)
    with thread_server(vfw_copy, journal=Path("j.db")) as url, httpx.Client(base_url=url, timeout=60) as api:
        broken = api.post("/v1/plans", json={"request": {"resources": [{"name": "x../y", "type": "vnf"}]}})
    assert broken.status_code == 422 and "'x../y'" in broken.text, broken.text


def test_the_projects_own_broken_files_are_the_servers_problem_not_the_callers(vfw_copy: Path, caplog) -> None:
    """A truncated catalog or a policy that does not parse answered 422 ("the input has problems"; SO's 400):
    a caller reads that as "fix your request, do not retry", and no request can mend them (a service
    sweep's). 503 now, with the same problems; a bad request is still the caller's (422, 400)."""
    so = json.loads((vfw_copy / "so" / "instantiate.json").read_text())
    create = "/onap/so/infra/serviceInstantiation/v7/serviceInstances"
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=60) as api:
        bad = api.post("/v1/plans", json={"request": {"services": {"x": {"bogus": 1}}}})
        assert bad.status_code == 422 and bad.json()["detail"] == "the input has problems", bad.text
        catalog = vfw_copy / "catalog.yaml"
        kept = catalog.read_text()
        catalog.write_text(kept[:2000])
        for path, body in (("/v1/plans", {}), ("/v1/plans", {"request": LAB}), ("/v1/runs", {"request": LAB})):
            broken = api.post(path, json=body)
            assert broken.status_code == 503, (path, broken.text)
            assert broken.json()["detail"].startswith("the project's own files have problems"), broken.text
            assert broken.json()["diagnostics"][0]["file"] == "catalog.yaml", broken.text
        answered = api.post(create, json=so)
        text = answered.json()["requestError"]["serviceException"]["text"]
        assert answered.status_code == 503, answered.text
        assert text.startswith("the project's own files have problems: catalog.yaml:"), text
        # and the server's log says so, once for all those answers (only the callers heard: an operator's),
        # that they load again, and once more when the same problem is back (said once per process: a review's)
        catalog.write_text(kept)
        assert api.post("/v1/plans", json={}).status_code == 200
        catalog.write_text(kept[:2000])
        assert api.post("/v1/plans", json={}).status_code == 503
        said = [r.getMessage() for r in caplog.records if r.name == "ordo.service" and "own files" in r.getMessage()]
        assert len(said) == 3 and said[0].startswith("the project's own files have problems, and plans are "
                                                      "refused until they are mended: catalog.yaml:"), said
        assert said[1] == "the project's own files load again: plans are made" and said[2] == said[0], said
        catalog.write_text(kept)
        rules = vfw_copy / "policies" / "config-after-modules.lp"
        rules.write_text(rules.read_text() + "\nbroken(X :- .\n")
        broken = api.post("/v1/plans", json={"request": LAB})
        assert broken.status_code == 503 and "config-after-modules.lp" in broken.text, broken.text
        # the solver's refusal of the policies' weights, past what it counts (a review's)
        rules.write_text("%@ name: wrap\n%@ description: d\n%@ owner: o\n"
                         '#minimize { 1000000000@2,R : located(R,T), placeable(R), T != "region-three" ; '
                         '1@2,R : located(R,"region-three"), placeable(R) }.\n')
        for path, body in (("/v1/plans", {}), ("/v1/runs", {})):
            broken = api.post(path, json=body)
            assert broken.status_code == 503 and "policies/config-after-modules.lp" in broken.text, broken.text
        assert api.get("/v1/runs").json()["runs"] == []
