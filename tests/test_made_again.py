"""A resource made again where the request does not name it (a policy replaces it, a re-plan puts it
back, a rollback re-creates what a run deleted) is sent the params it had: the journal's record says
which of its attributes are params (``params``), and keeps them when it is gone. Those that read other
resources' outputs are not sent again (the value they read may be gone with what returned it): the
operation is refused, nothing sent, and the run falls out saying so. A re-plan keeps the goals the
run's plan gave what the request does not name: a replacement cut short is not left half made and the
run ended complete (an operator's sweep)."""

from __future__ import annotations

import json
from pathlib import Path

from executor.journal import Journal
from tests.conftest import run_ordo
from tests.test_lifecycle_shapes import project

REQUEST = """\
resources:
  - { name: db-net, type: network, params: { cidr: 10.0.0.0/24 } }
  - { name: box, type: host, params: { size: 3, tags: [a, b] } }
  - { name: app, type: app, uses: [db-net], params: { net: "${db-net.outputs.network_id}", mode: fast } }
  - { name: spare, type: host }
"""
OTHER = "resources:\n  - { name: extra, type: host }\n"


def _deployed(tmp_path: Path, request: str, **project_args) -> Path:
    """A project of ``request`` (tests/test_lifecycle_shapes.py's catalog), applied."""
    root = project(tmp_path, request, **project_args)
    done = run_ordo("apply", "-C", root, "--auto-approve")
    assert done.code == 0, done.text
    return root


def _applied(tmp_path: Path) -> Path:
    root = _deployed(tmp_path, REQUEST)
    (root / "other.yaml").write_text(OTHER)
    return root


def _policy(root: Path, rule: str) -> Path:
    path = root / "renew.lp"
    path.write_text(f"%@ name: renew\n%@ description: make it anew\n{rule}\n")
    return path


def _intents(root: Path, run: int, resource: str) -> list[tuple[str, dict]]:
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        return [(ev.data["operation"], ev.data.get("inputs", {})) for ev in jr.events(run)
                if ev.kind == "intent" and ev.data.get("resource") == resource]


def test_a_resource_replaced_without_being_named_is_made_again_with_its_params(tmp_path: Path) -> None:
    root = _applied(tmp_path)
    done = run_ordo("apply", "-C", root, "other.yaml", "--policy", _policy(root, 'replace("box").'), "--auto-approve")
    assert done.code == 0, done.text
    # as planned: box deleted and created (-/+), extra created (the apply said "1 changed", the plan "1 to delete")
    assert "Plan: 2 to create, 0 to change, 1 to delete." in done.out, done.out
    assert "Apply complete: 2 created, 0 changed, 1 deleted." in done.out, done.out
    sent = _intents(root, 2, "box")
    ups = [inputs for op, inputs in sent if op in ("assign", "create", "activate")]
    assert len(ups) == 3 and all(inputs == {"size": 3, "tags": ["a", "b"]} for inputs in ups), sent   # was {}
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        box = jr.state()["box"]
    assert box.state == "active" and box.params == ["size", "tags"] and box.attributes["size"] == 3
    again = run_ordo("plan", "-C", root)
    assert again.code == 0 and "No changes" in again.out, again.text   # (it was: params changed, no plan)


def test_one_whose_params_read_outputs_is_refused_and_the_run_falls_out_not_complete(tmp_path: Path) -> None:
    root = _applied(tmp_path)
    done = run_ordo("apply", "-C", root, "other.yaml", "--policy", _policy(root, 'replace("app").'), "--auto-approve")
    assert done.code == 3 and "Apply fell out" in done.out, done.text
    assert "'app' would be brought up again with the params it had, but its param 'net' read another resource's " \
           "output" in done.out and "give 'app' in the request with its params" in done.out, done.text
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        refused = [ev for ev in jr.events(2) if ev.kind == "intent" and ev.data.get("resource") == "app"
                   and ev.data.get("operation") == "assign"]
        app, run = jr.state()["app"], jr.run(2)
    assert refused and all(ev.data.get("refused") for ev in refused), [ev.data for ev in refused]   # never sent
    # the re-plans kept the goal the run's plan gave it (active): before, the first re-plan took its state
    # then (torn down) for its goal, and the run ended complete with app gone
    assert run.status == "fallout" and app.state == "absent"


def test_a_record_keeps_the_params_of_what_is_gone_and_none_of_its_outputs(tmp_path: Path) -> None:
    root = _applied(tmp_path)
    (root / "gone.yaml").write_text("resources:\n  - { name: app, type: app, state: absent }\n"
                                    "  - { name: db-net, type: network, state: absent }\n")
    assert run_ordo("apply", "-C", root, "gone.yaml", "--auto-approve").code == 0
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        state = jr.state()
        net, app = state["db-net"], state["app"]
        rows = dict(jr._store.execute("SELECT resource, record FROM state").fetchall())
    # the subnet stays, the network's id (an output) went with it; the param that read it is marked so
    assert net.state == "absent" and net.attributes == {"cidr": "10.0.0.0/24"} and net.params == ["cidr"]
    assert app.state == "absent" and set(app.attributes) == {"mode", "net"} and app.reads_outputs == ["net"]
    assert json.loads(rows["box"])["params"] == ["size", "tags"]
    # a record without params is written as before there were any (older journals' texts, kept as they are)
    assert "params" not in json.loads(rows["spare"]) and "reads_outputs" not in json.loads(rows["spare"])


def _ledger(root: Path, resource: str, run: int | None = None) -> list[tuple[str, dict]]:
    """What the simulated controllers were sent for ``resource`` (in ``run``)."""
    from executor.controllers.simulated import read_ledger

    return [(row["operation"], json.loads(row["inputs"]) if isinstance(row["inputs"], str) else row["inputs"])
            for row in read_ledger(root / ".ordo" / "simulated-world.db")
            if row["resource"] == resource and (run is None or str(row["run"]) == str(run))]


def test_one_brought_up_from_half_way_down_is_not_sent_a_secrets_fingerprint(tmp_path: Path) -> None:
    """A replacement cut short half way down (another operation failed), then put back by the re-plan: its
    create and activate were sent the journal's fingerprint as its password (a review's). Refused, nothing
    sent: the request gives it no value to send."""
    root = _deployed(tmp_path, "resources:\n  - { name: box, type: host, params: { size: 3, password: s3cret } }\n",
                    library=("replace-failed",))
    (root / "other.yaml").write_text(OTHER)
    (root / "sim.yaml").write_text("seed: 1\nlatency: { default: 0.01, delete: 0.5 }\n"
                                   "faults:\n  - { resource: extra, operation: create, error: permanent, times: 1 }\n")
    renew = _policy(root, 'replace("box") :- current("box","active").')
    done = run_ordo("apply", "-C", root, "other.yaml", "--policy", renew, "--simulation", root / "sim.yaml",
                    "--auto-approve")
    sent = [inputs for op, inputs in _ledger(root, "box")]
    assert not any("<secret" in json.dumps(inputs) for inputs in sent), sent
    # (brought up from where the failure found it: created, its deactivate done, or assigned, its delete done too;
    # which comes first is a race of the simulated calls)
    refused = "failed: 'box' would be brought up again with the params it had, but its param 'password' holds a " \
              "secret the journal keeps only the fingerprint of"
    assert f"box/create: {refused}" in done.out or f"box/activate: {refused}" in done.out, done.text
    # (replace-failed then replaced it: observed at its controller, its password came back from there)


def test_a_resource_made_anew_by_the_request_keeps_none_of_its_earlier_params(tmp_path: Path) -> None:
    """Created with {size: 3, tags}, deleted, made again with {size: 5}: its record kept tags from its
    earlier life, and a later move sent them (a review's)."""
    root = _applied(tmp_path)
    (root / "gone.yaml").write_text("resources:\n  - { name: box, type: host, state: absent }\n")
    (root / "again.yaml").write_text("resources:\n  - { name: box, type: host, params: { size: 5 } }\n")
    assert run_ordo("apply", "-C", root, "gone.yaml", "--auto-approve").code == 0
    assert run_ordo("apply", "-C", root, "again.yaml", "--auto-approve").code == 0
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        box = jr.state()["box"]
    assert box.attributes == {"size": 5} and box.params == ["size"], box
    moved = run_ordo("apply", "-C", root, "other.yaml", "--policy", _policy(root, 'replace("box").'), "--auto-approve")
    assert moved.code == 0, moved.text
    ups = [inputs for op, inputs in _ledger(root, "box")[-3:]]
    assert ups == [{"size": 5}] * 3, _ledger(root, "box")


def _rolled_back(root: Path, request: str, simulation: str, name: str = "del.yaml"):
    """``request`` applied with ``--on-failure rollback`` under the faults of ``simulation``."""
    (root / name).write_text(request)
    (root / "sim.yaml").write_text(simulation)
    return run_ordo("apply", "-C", root, name, "--on-failure", "rollback", "--simulation", root / "sim.yaml",
                    "--auto-approve")


def test_a_rollback_that_brings_a_part_back_from_half_way_sends_its_params_or_refuses(tmp_path: Path) -> None:
    """The request deleted a service and its part; another operation failed, and the rollback brought the
    part back up from where its teardown stopped: sent {} (its params left out where no update was needed),
    and a secret the journal keeps only the fingerprint of left out without a word (a review's)."""
    root = _deployed(tmp_path, "resources:\n  - { name: w, type: service }\n"
                              "  - { name: p, type: host, part_of: w, params: { size: 3 } }\n"
                              "  - { name: q, type: host, part_of: w, params: { size: 4, password: s3cret } }\n")
    done = _rolled_back(root, "resources:\n  - { name: w, type: service, state: absent }\n"
                              "  - { name: extra, type: host }\n",
                              "seed: 1\nlatency: { default: 0.01, create: 0.8 }\n"
                              "faults:\n  - { resource: extra, operation: create, error: permanent }\n")
    p_up = [inputs for op, inputs in _ledger(root, "p", 2) if op in ("assign", "create", "activate")]
    assert p_up and all(inputs == {"size": 3} for inputs in p_up), _ledger(root, "p", 2)
    q_up = [inputs for op, inputs in _ledger(root, "q", 2) if op in ("assign", "create", "activate")]
    assert q_up == [], _ledger(root, "q", 2)   # refused: the password cannot be put back
    assert "its param 'password' holds a secret" in done.out, done.text


def test_a_rollback_sends_a_secret_the_request_gives_now(tmp_path: Path) -> None:
    """A part whose only param is a secret, named with it by the request that deleted it: the rollback
    refused it (as if it read an output) and fell out, where docs/service.md says the request's value is
    sent (a review's)."""
    root = _deployed(tmp_path, "resources:\n  - { name: w, type: service }\n"
                              "  - { name: q, type: host, part_of: w, params: { password: s3cret } }\n")
    done = _rolled_back(root, "resources:\n  - { name: w, type: service, state: absent }\n"
                              "  - { name: q, type: host, part_of: w, state: absent,"
                              " params: { password: s3cret } }\n"
                              "  - { name: extra, type: host }\n",
                              "seed: 1\nlatency: { default: 0.01, create: 0.8 }\n"
                              "faults:\n  - { resource: extra, operation: create, error: permanent }\n")
    assert "Apply rolled back" in done.out, done.text
    ups = [inputs for op, inputs in _ledger(root, "q", 2) if op in ("create", "activate")]
    assert ups and all(inputs == {"password": "s3cret"} for inputs in ups), _ledger(root, "q", 2)


def test_a_rollback_brings_back_what_was_only_deactivated_with_the_values_its_params_read(tmp_path: Path) -> None:
    """The vFW's delete, a teardown failing half way: the rollback's vfw-base/activate (created -> active,
    never deleted) was refused for its params that read the networks' ids, and the rollback fell out for
    good (a review's). What still exists is sent them as they were; only one made again is refused."""
    import shutil

    from tests.conftest import VFW

    root = tmp_path / "vfw"
    shutil.copytree(VFW, root, ignore=shutil.ignore_patterns(".ordo"))
    smooth = root / "simulations" / "smooth.yaml"
    assert run_ordo("apply", "-C", root, "--auto-approve", "--simulation", smooth).code == 0
    (root / "rb.yaml").write_text("seed: 3\nlatency: { default: 0.05 }\n"
                                  "faults:\n  - { resource: vsink-base, operation: deactivate, error: permanent }\n")
    done = run_ordo("apply", "-C", root, "requests/delete.yaml", "--on-failure", "rollback", "--simulation",
                    root / "rb.yaml", "--auto-approve")
    assert "Apply rolled back" in done.out, done.text
    ups = [inputs for op, inputs in _ledger(root, "vfw-base", 2) if op == "activate"]
    assert ups and all(set(inputs) == {"mgmt_net_id", "protected_net_id", "unprotected_net_id"} for inputs in ups), ups


def test_a_rollback_never_sends_a_fingerprint_in_an_update_or_a_teardown(tmp_path: Path) -> None:
    """A router's size changed in place, then another operation failed: the rollback's update put its
    password back as the journal keeps it, its fingerprint, and sent that (a review's). Sent without it."""
    root = _deployed(tmp_path, "resources:\n  - { name: q, type: router, params: { password: s3cret, size: 1 } }\n")
    done = _rolled_back(root, "resources:\n  - { name: q, type: router, params: { size: 2 } }\n"
                              "  - { name: extra, type: host }\n",
                              "seed: 1\nlatency: { default: 0.01, assign: 0.5 }\n"
                              "faults:\n  - { resource: extra, operation: create, error: permanent }\n",
                              name="upd.yaml")
    assert "Apply rolled back" in done.out, done.text
    sent = _ledger(root, "q", 2)
    assert ("update", {"size": 1}) in sent and "<secret" not in json.dumps(sent), sent


def test_a_rollback_refuses_to_make_again_what_read_an_output_the_request_names_without_it(tmp_path: Path) -> None:
    """The delete request named app without its params: the snapshot lost that its `net` read the network's
    id, and the rollback made app again with the old id while the network was being made again (a review's)."""
    root = _deployed(tmp_path, "resources:\n  - { name: n, type: network, params: { cidr: 10.0.0.0/24 } }\n"
                              "  - { name: app, type: app, uses: [n], params: { net: \"${n.outputs.network_id}\" } }\n")
    done = _rolled_back(root, "resources:\n  - { name: n, type: network, state: absent }\n"
                              "  - { name: app, type: app, state: absent }\n",
                              "seed: 1\nlatency: { default: 0.01 }\n"
                              "faults:\n  - { resource: n, operation: unassign, error: permanent }\n")
    assert [op for op, _ in _ledger(root, "app", 2) if op == "assign"] == [], _ledger(root, "app", 2)
    assert "its param 'net' read another resource's output" in done.out, done.text
