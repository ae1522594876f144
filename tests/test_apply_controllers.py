"""The vFW example applied through the real adapters, end to end: every
controller an HTTP service on 127.0.0.1 (a fake SDN-C/OpenStack/CDS/SO that
keeps its own world), or an executable speaking JSON on stdin and stdout."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, run_ordo

CONTROLLERS = ("sdnc", "openstack", "cds", "so")
LINES = {
    "sdnc": '  sdnc:      { concurrency: 4, description: "SDN controller: assign, activate" }',
    "openstack": '  openstack: { concurrency: 3, description: "cloud: create and delete stacks" }',
    "cds": '  cds:       { concurrency: 2, description: "controller design studio: config" }',
    "so": "  so:        { concurrency: 10, description: the orchestrator's own bookkeeping }",
}


class FakeControllers:
    """A world behind REST: POST /{type}/{resource}/{operation} applies the
    request (the executor's default body), GET /{type}/{resource} observes.
    Idempotency keys are honoured; faults are scripted per (resource, op)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resources: dict[str, dict[str, Any]] = {}
        self.applied: dict[str, dict[str, Any]] = {}   # key -> outputs
        self.calls: list[tuple[str, str, str]] = []     # (method, path, key)
        self.fail_once: set[tuple[str, str]] = set()    # answer 503 once
        self.refuse_target: str | None = None           # answer 507 to creates there

    def handle(self, method: str, path: str, key: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        with self.lock:
            self.calls.append((method, path, key))
            if method == "GET" and len(parts) == 2:
                res = self.resources.get(parts[1])
                if res is None:
                    return 404, {"error": "not found"}
                return 200, {**res, "applied_keys": sorted(self.applied)}
            if method != "POST" or len(parts) != 3 or body is None:
                return 400, {"error": f"unexpected {method} {path}"}
            _, name, operation = parts
            if key in self.applied:
                return 200, self.applied[key]
            if (name, operation) in self.fail_once:
                self.fail_once.discard((name, operation))
                return 503, {"error": "busy, try again"}
            if operation == "create" and self.refuse_target and body.get("target") == self.refuse_target:
                return 507, {"error": f"{self.refuse_target}: quota exceeded"}
            current = self.resources.get(name, {}).get("state", body["from"])
            if current != body["from"]:
                return 409, {"error": f"{name} is {current}, not {body['from']}"}
            outputs = {out: f"{out}-{name}" for out in body.get("outputs", [])}
            record = self.resources.setdefault(name, {"attributes": {}})
            record.update(state=body["to"], target=body.get("target"))
            record["attributes"].update(body.get("inputs") or {}, **outputs)
            self.applied[key] = outputs
            return 200, outputs


@pytest.fixture
def fake() -> Any:
    world = FakeControllers()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            code, answer = world.handle(self.command, self.path, self.headers.get("Idempotency-Key", ""), body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    world.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield world
    server.shutdown()
    server.server_close()
    thread.join(5)


def use_controllers(project: Path, spec: str) -> None:
    catalog = project / "catalog.yaml"
    text = catalog.read_text()
    for name in CONTROLLERS:
        assert text.count(LINES[name]) == 1
        text = text.replace(LINES[name], f"  {name}: {spec}")
    catalog.write_text(text)


def http_spec(url: str) -> str:
    return ("{ kind: http, concurrency: 3, retry: { initial_interval: 0.01, attempts: 3 }, config: { "
            f"base_url: '{url}', refused_status: [507], "
            "operations: { default: { url: '/{type}/{resource}/{operation}' } }, "
            "observe: { url: '/{type}/{resource}' } } }")


def test_vfw_applied_through_http_controllers(vfw_copy: Path, fake: FakeControllers) -> None:
    use_controllers(vfw_copy, http_spec(fake.url))
    fake.fail_once = {("vpg", "assign"), ("unprotected-net", "create")}
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert run.code == 0, run.text
    assert "Apply complete: 10 created, 0 changed, 0 deleted." in run.out
    assert {name: r["state"] for name, r in fake.resources.items()} == {
        "vfw-service": "active", "unprotected-net": "active", "protected-net": "active", "vpg": "active",
        "vpg-base": "active", "vsink": "active", "vsink-base": "active", "vfw": "active", "vfw-logs": "active",
        "vfw-base": "active"}
    # The 503s were retried under the same key; every key was applied once.
    posts = [key for method, _, key in fake.calls if method == "POST"]
    assert len(fake.applied) == 32 and len(posts) == 34
    # Data passing through the REST bodies: the VF module got the network's id.
    attrs = fake.resources["vfw-base"]["attributes"]
    assert attrs["unprotected_net_id"] == "network_id-unprotected-net"
    assert attrs["mgmt_net_id"] == "net-0001"
    assert run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode").code == 0


def test_refusal_over_http_replans_elsewhere(vfw_copy: Path, fake: FakeControllers) -> None:
    use_controllers(vfw_copy, http_spec(fake.url))
    fake.refuse_target = "region-two"
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert run.code == 0, run.text
    assert "1 re-plan" in run.out
    assert fake.resources["vfw"]["target"] == "region-three"
    assert fake.resources["vfw"]["state"] == "active"


def test_controller_that_is_down_fails_over_to_fallout_not_a_crash(vfw_copy: Path) -> None:
    # Nothing listens on this port: every call is a transient error, retries
    # run out, re-plans cannot help, and the run falls out; no traceback.
    use_controllers(vfw_copy, http_spec("http://127.0.0.1:9"))
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--max-replans", "1")
    assert run.code == 3, run.text
    assert "Traceback" not in run.text
    assert "Apply fell out" in run.out


def test_unknown_controller_kind_is_named_before_the_run_starts(vfw_copy: Path) -> None:
    use_controllers(vfw_copy, "{ kind: htpp }")
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert run.code == 1
    assert "controllers.cds: unknown controller kind 'htpp' (did you mean 'http'?)" in run.err
    assert "Traceback" not in run.text
    # the journal was opened, but no run was started
    assert (vfw_copy / ".ordo" / "journal.db").exists()
    assert "No runs yet." in run_ordo("history", "-C", vfw_copy).out


def test_vfw_applied_through_a_command_controller(vfw_copy: Path, tmp_path: Path) -> None:
    script = FIXTURES / "world_controller.py"
    state = tmp_path / "world.json"
    spec = (f"{{ kind: command, config: {{ command: [{json.dumps(sys.executable)}, {json.dumps(str(script))}], "
            f"env: {{ WORLD: {json.dumps(str(state))} }}, timeout: 20 }} }}")
    use_controllers(vfw_copy, spec)
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert run.code == 0, run.text
    assert "Apply complete: 10 created, 0 changed, 0 deleted." in run.out
    world = json.loads(state.read_text())
    assert {r["state"] for r in world["resources"].values()} == {"active"}
    assert world["resources"]["vfw-base"]["attributes"]["protected_net_id"] == "network_id-protected-net"
    assert len(world["applied"]) == 32


def test_controllers_without_a_kind_are_announced_as_simulated(vfw_copy: Path) -> None:
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert run.code == 0, run.text
    assert "Warning: controllers cds, openstack, sdnc, so name no kind, so they are simulated" in run.err
    use_controllers(vfw_copy, "{ kind: simulated }")
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve")
    assert "name no kind" not in run.err


def command_project(root: Path, script: str, retry: str, thing: str, resources: str, *, update: bool = False) -> Path:
    """A project of one type, ``thing`` (absent <-> present; ``update``: and present -> present), whose
    controller c is ``script`` run by this Python (``ctl.py`` in the project folder), with ``retry``, and a
    request of ``resources``."""
    root.mkdir()
    (root / "ctl.py").write_text(script)
    (root / "catalog.yaml").write_text(
        f"controllers:\n  c: {{ kind: command, retry: {retry}, "
        f"config: {{ command: [{json.dumps(sys.executable)}, ctl.py] }} }}\n"
        "lifecycles:\n  simple:\n    states: [absent, present]\n    milestones: {created: present, active: present}\n"
        "    operations:\n"
        "      create: {from: absent, to: present}\n      delete: {from: present, to: absent}\n"
        + ("      update: {from: present, to: present}\n" if update else "")
        + f"types:\n  thing: {thing}\n")
    (root / "request.yaml").write_text(f"resources:\n{resources}")
    (root / "inventory.yaml").write_text("resources: []\n")
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\nrequest: request.yaml\ninventory: inventory.yaml\n")
    return root


DEGRADING = """\
import json, os, sys
req = json.load(sys.stdin)
world = json.load(open("world.json")) if os.path.exists("world.json") else {}
with open("calls.log", "a") as log:
    log.write(json.dumps([req["action"], (req.get("request") or {}).get("key") or req.get("key")]) + "\\n")
if req["action"] == "observe":
    state = world.get(req["resource"])
    print(json.dumps({"exists": req["resource"] in world, "state": state, "applied": None, "outputs": None}))
    sys.exit(0)
if req["resource"] in world:
    print(json.dumps({"error": "already exists: a second create", "applied": False}))
    sys.exit(1)
world[req["resource"]] = STATE
json.dump(world, open("world.json", "w"))
print(json.dumps({"error": "half-way: the stack is degraded", "applied": None}))
sys.exit(1)
"""


@pytest.mark.parametrize(("state", "judged", "observed"), [
    ('"degraded"', "'a' is degraded, neither absent nor present: cannot tell whether create was applied",
     "observed a: it exists in a state its lifecycle does not have, 'degraded' (type thing: absent, present)"),
    ("None", "'a' exists, and its controller does not say in what state: cannot tell whether create was applied",
     None),
])
def test_a_resource_found_in_a_state_its_lifecycle_lacks_is_never_created_twice(
        tmp_path: Path, state: str, judged: str, observed: str | None) -> None:
    """A create whose answer said "maybe applied" leaves the resource in a state the lifecycle does not
    have, or one its controller does not say. The first was read as absent (the initial state), and
    the judge's "cannot tell" as "not applied"; the second, judged, as "resend": create was sent again
    under new keys, without observing first (the executor's review of 6 December). The create stays in
    doubt, is observed before any new attempt, and the run falls out saying why."""
    root = command_project(tmp_path / "p", f"STATE = {state}\n{DEGRADING}", "{attempts: 1}",
                           "{lifecycle: simple, controller: c}", "  - {name: a, type: thing}\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code != 0 and "Apply fell out" in run.out, run.text
    assert judged in run.out, run.text
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert [key for action, key in calls if action == "execute"] == [calls[0][1]], calls   # sent once
    if observed is not None:
        shown = run_ordo("show", "1", "-C", root)
        assert observed in shown.out, shown.text


LOSING = """\
import json, os, sys
req = json.load(sys.stdin)
world = json.load(open("world.json")) if os.path.exists("world.json") else {}
if req["action"] == "observe":
    state = world.get(req["resource"])
    print(json.dumps({"exists": state is not None, "state": state, "applied": None, "outputs": None}))
    sys.exit(0)
world[req["resource"]] = req["to"]
json.dump(world, open("world.json", "w"))
with open("calls.log", "a") as log:
    log.write(json.dumps([req["resource"], req["inputs"]]) + "\\n")
if req["resource"] == "a" and not os.path.exists("lost-once"):
    open("lost-once", "w").close()
    sys.exit(75)   # applied, and the answer lost
print(json.dumps({"outputs": {"addr": "10.0.0.1"} if req["resource"] == "a" else {}}))
"""


def test_a_param_whose_output_was_lost_is_never_sent_without_it(tmp_path: Path) -> None:
    """a's create was applied and its answer lost; observing found it done, with no outputs. b's param
    `peer: ${a.outputs.addr}` was then left out and b created without it, and the run completed (the
    executor's review of 6 December). b is now not sent, saying why, and the re-plan explains it."""
    root = command_project(tmp_path / "p", LOSING, "{attempts: 3, initial_interval: 0.05}",
                           "{lifecycle: simple, controller: c, operations: {create: {outputs: [addr]}}}",
                           '  - {name: a, type: thing}\n'
                           '  - {name: b, type: thing, params: {peer: "${a.outputs.addr}", other: x}}\n')
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code != 0 and "Apply complete" not in run.out, run.text
    assert "b/create: failed: param 'peer' of 'b' reads ${a.outputs.addr}, which has no value" in run.out, run.text
    # the re-plan cannot be made (check_references): the run falls out saying why; it ended as crashed
    assert "No plan after the failure: request.yaml:3:" in run.out and "Apply fell out" in run.out, run.text
    assert "fallout" in run_ordo("history", "-C", root).out
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert [name for name, _ in calls] == ["a"], calls   # b never sent


DOUBTFUL = """\
import json, os, sys
req = json.load(sys.stdin)
with open("calls.log", "a") as log:
    log.write(json.dumps([req["action"], req.get("key")]) + "\\n")
if req["action"] == "observe":
    sys.exit(1)   # the check before a resend fails
sys.exit(75)      # applied, and the answer lost: whether it took effect is not known
"""


def test_an_operation_in_doubt_whose_check_fails_is_not_sent_again(tmp_path: Path) -> None:
    """A create's answer was lost (exit 75) and the observe before resending it failed: the failed
    observe's own "not applied" was taken for the create's, and the next plan sent the create again under
    a new key without observing (a fault sweep's). It stays in doubt: observed first, never sent again."""
    root = command_project(tmp_path / "p", DOUBTFUL, "{attempts: 3, initial_interval: 0.01}",
                           "{lifecycle: simple, controller: c}", "  - {name: a, type: thing}\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code != 0 and "Apply fell out" in run.out, run.text
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert [action for action, _ in calls].count("execute") == 1, calls
    assert [action for action, _ in calls].count("observe") >= 2, calls   # each attempt after it checks first


PLACED_ODDLY = """\
import json, sys
req = json.load(sys.stdin)
if req["action"] == "observe":
    print(json.dumps({"exists": True, "state": "present", "target": TARGET}))
    sys.exit(0)
print(json.dumps({"error": "refused", "applied": False}))
sys.exit(1)
"""


@pytest.mark.parametrize(("target", "said"), [
    ('"no where"', "its answer places it on 'no where', which is not a name"),
    ('"t" * 300', "its answer places it on 'tttt"),
    ('"elsewhere"', "its answer places it on 'elsewhere', a target the inventory does not have"),
])
def test_an_observed_placement_that_is_no_target_is_refused_not_recorded(tmp_path: Path, target: str,
                                                                         said: str) -> None:
    """An observation placing the resource on what is not a name crashed the run ("a bug in ordo"),
    and every resume the same way; on a target the inventory does not have, it was recorded."""
    root = command_project(tmp_path / "p", f"TARGET = {target}\n{PLACED_ODDLY}", "{attempts: 1}",
                           "{lifecycle: simple, controller: c, placement: true}", "  - {name: a, type: thing}\n")
    (root / "inventory.yaml").write_text("targets:\n  r1: {}\nresources: []\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 3 and "Apply fell out" in run.out and "bug in ordo" not in run.text, run.text
    assert f"could not observe a: {said}" in run.out, run.text
    state = run_ordo("state", "-C", root, "--export")
    assert state.code == 0 and "elsewhere" not in state.out and "no where" not in state.out, state.text


def test_what_a_controller_says_of_the_target_of_a_type_without_placement_is_not_kept(tmp_path: Path) -> None:
    # (only placeable types' targets were checked: 180 KB of another's was kept in the observed event and shown)
    root = command_project(tmp_path / "p", f"TARGET = {'no where ' * 20000!r}\n{PLACED_ODDLY}", "{attempts: 1}",
                           "{lifecycle: simple, controller: c}", "  - {name: a, type: thing}\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 0 and "observed a: present\n" in run.out and "no where" not in run.text, run.text[:2000]
    shown = run_ordo("show", "1", "-C", root, "--json")
    assert "no where" not in shown.out and len(shown.out) < 100_000, len(shown.out)


DIES_AFTER_APPLYING = """\
import json, os, signal, sys
req = json.load(sys.stdin)
world = json.load(open("world.json")) if os.path.exists("world.json") else {"state": {}, "applied": {}}
if req["action"] == "observe":   # what it knows of a resource; of a call, only when asked by its key
    key = (req.get("request") or {}).get("key")
    answer = {"exists": req["resource"] in world["state"], "state": world["state"].get(req["resource"])}
    if key:
        answer.update(applied=key in world["applied"], outputs=world["applied"].get(key))
    print(json.dumps(answer))
    sys.exit(0)
outputs = {"url": "https://" + req["resource"] + ".example"} if req["operation"] == "create" else {}
world["state"][req["resource"]] = req["to"]
world["applied"][req["key"]] = outputs
with open("calls.log", "a") as log:
    log.write(json.dumps([req["resource"], req["operation"], req.get("inputs")]) + "\\n")
json.dump(world, open("world.json", "w"))
if req["resource"] == "a" and not os.path.exists("died"):
    open("died", "w").close()
    os.kill(os.getpid(), signal.SIGKILL)   # applied, then killed (the out-of-memory killer, say)
print(json.dumps({"outputs": outputs}))
"""


def dies_after_applying(root: Path, params: str = "") -> Path:
    """A project of a, whose create answers a url, and b, whose param reads it, with a's ``params``; the
    controller (DIES_AFTER_APPLYING) is killed once, after it applied a's create."""
    return command_project(root, DIES_AFTER_APPLYING, "{ attempts: 1 }",
                           "{ lifecycle: simple, controller: c, operations: { create: { outputs: [url] } } }",
                           f"  - {{ name: a, type: thing{', ' + params if params else ''} }}\n"
                           "  - { name: b, type: thing, params: { from: '${a.outputs.url}' } }\n")


def test_the_outputs_of_a_call_whose_controller_died_after_applying_it_are_found(tmp_path: Path) -> None:
    """A call that failed in doubt (its program killed after it applied the operation) was observed with no
    request: the controller could not say what it had answered, the params reading its output had no value,
    and no command led back to a good state (resume and apply fell out, state rm made it again: an
    operator's sweep). The observation asks about the call by its key, and keeps what it answered."""
    root = dies_after_applying(tmp_path / "p")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 0 and "Apply complete" in run.out, run.text
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls == [["a", "create", {}], ["b", "create", {"from": "https://a.example"}]], calls
    # its call created it: not "found there already" (a review's)
    assert "2 created" in run.out and "found there" not in run.out, run.out
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code == 0


def test_outputs_an_observation_says_a_call_answered_are_checked_as_its_answer_is(tmp_path: Path) -> None:
    """An output of no name ('bad name!') that an observation by key said the call had answered ended the
    run as "a bug in ordo" (a review of the observation's first version): the observation fails, naming it."""
    script = DIES_AFTER_APPLYING.replace('outputs=world["applied"].get(key))', 'outputs={"bad name!": 1})')
    assert script != DIES_AFTER_APPLYING
    root = command_project(tmp_path / "p", script, "{ attempts: 1 }",
                           "{ lifecycle: simple, controller: c, operations: { create: { outputs: [url] } } }",
                           "  - { name: a, type: thing }\n"
                           "  - { name: b, type: thing, params: { from: '${a.outputs.url}' } }\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code != 0 and "bug in ordo" not in run.text and "bad name!" in run.text, run.text


def test_the_outputs_of_a_call_in_doubt_are_found_when_a_crashed_run_is_resumed(tmp_path: Path) -> None:
    """ordo killed between the failure in doubt and its observation: the resume observes it, and asked
    about the resource alone (the run's plan not yet taken up), the controller could not say what the call
    answered; the params reading its output had no value, and the resume fell out (a review's)."""
    from tests.conftest import run_ordo_forked

    root = dies_after_applying(tmp_path / "p")
    crashed = run_ordo_forked("apply", "-C", root, "--auto-approve", env={"ORDO_CRASH_POINT": "result-written"})
    assert crashed.code == -9, crashed.text
    run = run_ordo("resume", "1", "-C", root)
    assert run.code == 0 and "2 created" in run.out and "found there" not in run.out, run.text
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls == [["a", "create", {}], ["b", "create", {"from": "https://a.example"}]], calls
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code == 0


def test_the_params_of_a_call_in_doubt_found_applied_are_recorded(tmp_path: Path) -> None:
    """The observation that found a call in doubt applied recorded none of the params it sent: the next plan
    found them changed, and with no update in the type, the run fell out (a review's)."""
    root = dies_after_applying(tmp_path / "p", "params: { size: 1 }")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 0 and "Apply complete" in run.out, run.text
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls == [["a", "create", {"size": 1}], ["b", "create", {"from": "https://a.example"}]], calls
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code == 0


def test_a_resource_found_made_by_someone_else_after_a_call_in_doubt_is_not_counted_created(tmp_path: Path) -> None:
    """The controller, asked by the call's key, says it did not apply it, yet the resource is there (made by
    someone else): the run made nothing, and its summary said "created" (a review's)."""
    script = DIES_AFTER_APPLYING.replace(  # (a made, its key not applied)
        'world["applied"][req["key"]] = outputs',
        'world["applied"].update({} if req["resource"] == "a" else {req["key"]: outputs})')
    root = command_project(tmp_path / "p", script, "{ attempts: 1 }", "{ lifecycle: simple, controller: c }",
                           "  - { name: a, type: thing }\n  - { name: b, type: thing }\n")
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 0 and "1 created" in run.out and "1 found there already" in run.out, run.text


def test_a_call_in_doubt_found_applied_on_a_resume_is_recorded_with_what_it_sent(tmp_path: Path) -> None:
    """Its params edited before the resume, the call in doubt found applied was recorded with the params as
    the files gave them then, not as sent: the change was taken as made, and planned for no more (a
    review's)."""
    from executor.journal import Journal
    from tests.conftest import run_ordo_forked

    root = dies_after_applying(tmp_path / "p", "params: { size: 1 }")
    crashed = run_ordo_forked("apply", "-C", root, "--auto-approve", env={"ORDO_CRASH_POINT": "result-written"})
    assert crashed.code == -9, crashed.text
    (root / "request.yaml").write_text((root / "request.yaml").read_text().replace("size: 1", "size: 2"))
    run_ordo("resume", "1", "-C", root)
    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    assert calls[0] == ["a", "create", {"size": 1}], calls
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        assert jr.state()["a"].attributes["size"] == 1, jr.state()["a"]
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code != 0   # (the change to 2 still to make)


def test_an_update_that_failed_in_doubt_and_was_found_applied_is_counted_changed(tmp_path: Path) -> None:
    """The controller, asked by the update's key, says it applied it: the summary counted it nowhere (an
    update keeps the state, which told nothing; a review's)."""
    script = DIES_AFTER_APPLYING.replace('if req["resource"] == "a" and not os.path.exists("died")',
                                         'if req["operation"] == "update" and not os.path.exists("died")')
    root = command_project(tmp_path / "p", script, "{ attempts: 1 }",
                           "{ lifecycle: simple, controller: c, update: update }",
                           "  - { name: a, type: thing, params: { size: 1 } }\n", update=True)
    assert run_ordo("apply", "-C", root, "--auto-approve").code == 0
    (root / "request.yaml").write_text((root / "request.yaml").read_text().replace("size: 1", "size: 2"))
    run = run_ordo("apply", "-C", root, "--auto-approve")
    assert run.code == 0 and "0 created, 1 changed" in run.out, run.text
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code == 0


def test_a_secret_changed_before_a_resume_is_never_sent_as_its_fingerprint(tmp_path: Path) -> None:
    """A declared secret edited between the crash and the resume: the observation of the call in doubt asked
    the controller with the journal's fingerprint as the password, and recorded it as sent (a review's). It
    asks with the value now, and records the fingerprint of what was sent: the change is still to make."""
    from executor.journal import Journal
    from tests.conftest import run_ordo_forked

    script = DIES_AFTER_APPLYING.replace(   # (what each observation was asked with, logged)
        'if req["action"] == "observe":',
        'if req["action"] == "observe":\n    open("observed.log", "a").write(json.dumps(req.get("request")) + "\\n")')
    root = command_project(tmp_path / "p", script, "{ attempts: 1 }",
                           "{ lifecycle: simple, controller: c, secrets: [pw],"
                           " operations: { create: { outputs: [url] } } }",
                           "  - { name: a, type: thing, params: { pw: old-secret-1, size: 1 } }\n")
    crashed = run_ordo_forked("apply", "-C", root, "--auto-approve", env={"ORDO_CRASH_POINT": "result-written"})
    assert crashed.code == -9, crashed.text
    (root / "request.yaml").write_text((root / "request.yaml").read_text().replace("old-secret-1", "new-secret-2"))
    run_ordo("resume", "1", "-C", root)
    asked = [json.loads(line) for line in (root / "observed.log").read_text().splitlines()]
    assert asked and all(a["inputs"] == {"pw": "new-secret-2", "size": 1} for a in asked), asked
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        kept = jr.state()["a"].attributes["pw"]
    assert kept.startswith("<secret ") and "secret-" not in kept, kept
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code != 0   # (the new password still to send)
