"""Rolling back a run that fell out: planned from what is observed back to the state before the
run (what it created removed, what it changed put back), carried out, ended rolled_back; from the
command line (`ordo resume N --rollback`) and from SO's manual task (responseValue rollback)."""

from __future__ import annotations

from pathlib import Path

import httpx

from executor.controllers.simulated import read_world
from executor.journal import Event, Journal
from tests.conftest import VFW, run_ordo
from tests.servicekit import thread_server
from tests.test_service_so import CREATE, INSTANTIATE, REQUESTS, SO, next_task, poll

REFUSING = VFW / "simulations" / "region-two-and-three-refuse.yaml"


def _touched(journal: Path, run: int) -> tuple[dict[str, dict], dict[str, str]]:
    """The run's snapshot (the state before it of what it changed) and the journal's state now."""
    with Journal(journal, create=False) as jr:
        snapshot: dict[str, dict] = {}
        for ev in jr.events(run):
            snapshot = {**ev.data.get("snapshot", {}), **snapshot}
        return snapshot, {name: rec.state for name, rec in jr.state().items()}


def _as_before(project: Path, run: int) -> None:
    snapshot, now = _touched(project / ".ordo" / "journal.db", run)
    assert snapshot and {name: now.get(name, before["state"]) for name, before in snapshot.items()} == {
        name: before["state"] for name, before in snapshot.items()}
    world = read_world(project / ".ordo" / "simulated-world.db")
    created = [name for name, before in snapshot.items() if before["state"] == "absent"]
    assert created and all(world.get(name, {}).get("state") in (None, "absent") for name in created), world


def test_ordo_resume_rollback_puts_back_what_a_fallen_out_run_did(vfw_copy: Path) -> None:
    fallen = run_ordo("apply", "--auto-approve", "--simulation", REFUSING, cwd=vfw_copy)
    assert fallen.code == 3, fallen.text
    _, during = _touched(vfw_copy / ".ordo" / "journal.db", 1)
    assert during["unprotected-net"] == "active"  # it did build part of the vFW before it fell out
    rolled = run_ordo("resume", "1", "--rollback", "--json", cwd=vfw_copy)
    assert rolled.code == 0, rolled.text
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        info = jr.run(1)
        kinds = [ev.kind for ev in jr.events(1)]
        replans = [ev.data for ev in jr.events(1) if ev.kind == "replan"]
    assert info.status == "rolled_back" and kinds[-1] == "run-ended"
    assert replans[-1]["mode"] == "rollback" and replans[-1]["reason"].startswith("rolling back on request")
    _as_before(vfw_copy, 1)
    # nothing left to roll back or resume
    again = run_ordo("resume", "1", "--rollback", cwd=vfw_copy)
    assert again.code == 1 and "cannot be resumed: it was rolled back" in again.text


def test_a_crashed_run_is_not_rolled_back_before_it_is_resumed(vfw_copy: Path) -> None:
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(vfw_copy), "requests/instantiate.yaml", {})
        jr.append(run, [Event("run-started", data={"files": {"request": str(vfw_copy / "requests/instantiate.yaml")}})])
        jr._store.execute("UPDATE runs SET pid=1, host='elsewhere' WHERE id=?", (run,))  # its owner is gone
    crashed = run_ordo("resume", str(run), "--rollback", cwd=vfw_copy)
    assert crashed.code == 1 and "crashed: its operations in doubt are observed when it is resumed" in crashed.text


def test_ordo_resume_refuses_a_run_that_never_began(vfw_copy: Path) -> None:
    """A run with no run-started event says nothing of what it was planned from: it is not
    re-planned from the project's own request."""
    with Journal(vfw_copy / ".ordo" / "journal.db") as jr:
        run = jr.start_run(str(vfw_copy), "requests/delete.yaml", {})
        jr.append(run, [], status="interrupted")
    refused = run_ordo("resume", str(run), cwd=vfw_copy)
    assert refused.code == 1, refused.text
    assert f"run {run} has no run-started event" in refused.text and f"ordo abort {run}" in refused.text
    assert not (vfw_copy / ".ordo" / "simulated-world.db").exists()  # nothing was sent


def test_so_task_completed_with_rollback_ends_rolled_back(vfw_copy: Path) -> None:
    with thread_server(vfw_copy, simulation=REFUSING) as url, httpx.Client(base_url=url, timeout=60) as api:
        request_id = api.post(CREATE, json=INSTANTIATE).json()["requestReferences"]["requestId"]
        assert poll(api, request_id, ("PENDING_MANUAL_TASK", "COMPLETE"))["requestStatus"]["requestState"] \
            == "PENDING_MANUAL_TASK"
        task = next_task(api, None)
        done = api.post(f"{SO}/tasks/v1/{task}/complete",
                        json={"requestDetails": {"requestInfo": {"source": "VID", "responseValue": "rollback",
                                                                 "requestorId": "ops"}}})
        assert done.status_code == 202, done.text
        assert done.json() == {"taskRequestReference": {"taskId": task}}
        status = poll(api, request_id, ("ROLLED_BACK", "FAILED", "PENDING_MANUAL_TASK"))["requestStatus"]
        assert status["requestState"] == "ROLLED_BACK" and status["percentProgress"] == 100, status
        plain = api.get(f"{REQUESTS}/{request_id}").json()["request"]["requestStatus"]["requestState"]
        assert plain == "FAILED"  # as SO answers without format=detail
        assert api.get(f"{SO}/tasks/v1").json()["taskList"] == []
        run = int(api.get("/v1/runs").json()["runs"][0]["id"])
    _as_before(vfw_copy, run)
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        asked = [ev.data for ev in jr.events(run) if ev.kind == "resume-requested"]
    assert asked and asked[-1]["rollback"] is True and asked[-1]["principal"].endswith("(SO requestor ops)")


def test_a_resume_given_an_inventory_it_cannot_read_journals_nothing(vfw_copy: Path) -> None:
    """`ordo resume N --inventory BAD` journaled `resumed` each time before it refused the file (the CLI
    sweep of 6 December): the file is read first."""
    run = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation",
                   vfw_copy / "simulations" / "region-two-refuses.yaml", "--on-failure", "stop")
    assert run.code == 1, run.text
    (vfw_copy / "bad.yaml").write_text("resources: [1, 2\n")
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        before = len(jr.events(1))
    for _ in range(2):
        refused = run_ordo("resume", "1", "-C", vfw_copy, "--inventory", vfw_copy / "bad.yaml")
        assert refused.code == 1 and "bad.yaml:2:1: error: invalid YAML" in refused.err, refused.text
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        assert len(jr.events(1)) == before and jr.run(1).status == "failed"


def test_a_rollback_puts_back_params_an_update_changed(vfw_copy: Path) -> None:
    """The run widened a network's subnet in place, then a health check failed: the rollback sends
    the update again with the subnet as it was, not only the state (it left the new one before)."""
    done = run_ordo("apply", "--auto-approve", "--simulation", VFW / "simulations" / "smooth.yaml",
                    "requests/instantiate.yaml", cwd=vfw_copy)
    assert done.code == 0, done.text
    (vfw_copy / "requests" / "widen.yaml").write_text(
        "services:\n  vfw-service:\n    networks:\n      - {name: protected-net, params: {cidr: 192.168.16.0/20}}\n"
        "    vnfs:\n      - {name: vfw, run: [healthcheck]}\n")
    (vfw_copy / "failing-check.yaml").write_text(
        "seed: 1\nfaults:\n  - {resource: vfw, operation: healthcheck, error: permanent}\n")
    rolled = run_ordo("apply", "--auto-approve", "--on-failure", "rollback", "--simulation", "failing-check.yaml",
                      "requests/widen.yaml", cwd=vfw_copy)
    assert rolled.code == 1 and "Apply rolled back" in rolled.out, rolled.text   # (the request was not met)
    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        updates = [ev.data.get("operation") for ev in jr.events(2) if ev.kind == "intent"]
        assert jr.state()["protected-net"].attributes["cidr"] == "192.168.20.0/24"
    assert updates.count("update") == 2, updates   # the change, then its undoing
    world = read_world(vfw_copy / ".ordo" / "simulated-world.db")
    assert world["protected-net"]["attributes"]["cidr"] == "192.168.20.0/24", world["protected-net"]
    again = run_ordo("plan", "requests/instantiate.yaml", cwd=vfw_copy)
    assert again.code == 0 and "No changes" in again.text, again.text


def test_what_a_rollback_cannot_put_back_is_left_as_the_request_gives_it(vfw_copy: Path) -> None:
    from domain.project import load_project
    from domain.secrets import fingerprint
    from executor.engine import _params_before

    model = load_project(vfw_copy, request="requests/instantiate.yaml").model
    net = model.resources["protected-net"]
    net.current, net.params = "active", {"cidr": "b", "password": "now", "added": 1}
    before = {"state": "active", "attributes": {"cidr": "a", "password": fingerprint("then"), "network_id": "n-1"},
              "params": ["cidr", "password", "added"]}
    # the subnet as it was; the secret (its fingerprint only) and the param the run added as they are now
    assert _params_before(model, net, before) == ({"cidr": "a", "password": "now", "added": 1}, ("cidr",))
    # before the run it was "created", where the network's update does not run: put back in state only
    assert _params_before(model, net, {**before, "state": "created"}) == ({}, ())
    # gone now: re-created with the params it had
    net.current = "absent"
    assert _params_before(model, net, {**before, "state": "created"}) == (
        {"cidr": "a", "password": "now", "added": 1}, ("cidr",))
    # a secret the request does not give now: its fingerprint, put back from the journal (never sent)
    net.params = {"cidr": "b"}
    assert _params_before(model, net, before) == ({"cidr": "a", "password": before["attributes"]["password"]},
                                                  ("cidr", "password"))
    # a snapshot journalled before the params were kept: as before, the state only
    assert _params_before(model, net, {"state": "active", "attributes": {"cidr": "a"}}) == ({}, ())
