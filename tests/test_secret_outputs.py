"""A secret output of an earlier run is kept only as a fingerprint: an operation whose param refers to
it (``${R.outputs.X}``) is refused before its controller is called, with an error naming the resource
and the output, rather than sent the fingerprint as the value. Within the run that produced it, the
value is in memory and is passed on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.journal import Journal
from tests.test_secrets import OUTPUT, Api, api, leaks, ordo, project, secret_env

FIXTURES = (api, secret_env)  # test_secrets' fixtures, used here by name

PRODUCER = '  - {name: good, type: thing, params: {pin: "p-1"}}\n'
USER = '  - {name: user, type: thing, uses: [good], params: {pin: "p-2", key: "${good.outputs.psk}"}}\n'


def ordered(root: Path) -> Path:
    """test_secrets' catalog, its lifecycle naming its milestone, so that user is created after good."""
    catalog = root / "catalog.yaml"
    text = catalog.read_text()
    states = "    states: [absent, present]\n"
    catalog.write_text(text.replace(states, states + "    milestones: {created: present, active: present}\n"))
    assert catalog.read_text() != text
    return root


def user_calls(api: Api) -> list[dict]:
    return [s for s in api.seen if "/things/user/" in s["path"]]


def test_a_secret_output_of_an_earlier_run_is_refused_naming_it(tmp_path: Path, api: Api, secret_env: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = ordered(project(tmp_path / "p", api.url, "resources:\n" + PRODUCER))
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 0, out
    (root / "request.yaml").write_text("resources:\n" + PRODUCER + USER)
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve", "--json")
    assert code != 0, out
    assert user_calls(api) == []  # never sent, neither the fingerprint nor anything else
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        failed = [e for e in jr.events(2) if e.kind == "failed" and e.op == "user/create"]
    assert failed, out
    error = failed[0].data["error"]
    assert "good" in error and "psk" in error and "secret" in error and "fingerprint" in error, error
    assert failed[0].data.get("transient") is not True
    assert "<secret " not in error and leaks(out) == [] and leaks(json.dumps(failed[0].data)) == []


def test_a_secret_output_of_the_same_run_is_passed_on(tmp_path: Path, api: Api, secret_env: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = ordered(project(tmp_path / "p", api.url, "resources:\n" + PRODUCER + USER))
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 0, out
    assert [c["body"]["inputs"]["key"] for c in user_calls(api)] == [OUTPUT]

