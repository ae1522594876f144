"""Secrets and a Temporal workflow's history, beyond tests/test_temporal_secrets.py: workers split by
queue (the controller's worker learns the secret values from the inputs it resolves itself), inputs
that JSON does not carry as they are (integer keys), a secret quoted inside another param, and a
conflict's explanation whose binding is a secret param. A call's inputs are sent when they are those
its intent was made of (a salted digest of them crosses the history), whatever each worker's redactor
knows."""
from __future__ import annotations

import json
import threading

import pytest

from executor.journal import Journal
from tests.conftest import run_ordo_forked
from tests.temporalkit import workers
from tests.test_secrets import DECLARED, REQUEST, SECRETS, Api, Handler, api, project, secret_env
from tests.test_temporal import temporal_server
from tests.test_temporal_secrets import WORKER_ENV

FIXTURES = (api, secret_env, temporal_server)
NESTED = "nested-pass-9a8b7c"
LISTED = "list-token-7c6d5e"
URLTOK = "url-token-5e4f3a"
UNDECL = "undeclared-tok-1a2b3c"
MORE = (NESTED, LISTED, URLTOK, UNDECL)


class Echo(Handler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        self.server.seen.append({"path": self.path, "body": body})
        text = json.dumps(body)
        self.answer(*((400, {"error": f"denied {text}"}) if "/bad/" in self.path else (200, {"seen": text})))


@pytest.fixture
def echo():
    server = Api()
    server.RequestHandlerClass = Echo
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def found(text) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in (*SECRETS, *MORE) if s.encode() in data]


def history_all(address, root, run=1):
    from executor.temporal import workflow_id
    from tests.temporalkit import with_client
    with Journal(root / ".ordo" / "journal.db", create=False) as jr:
        wid = workflow_id(jr.id, run)

    async def history(client) -> str:
        return "\n".join(str(e) for e in (await client.get_workflow_handle(wid).fetch_history()).events)
    return with_client(address, history)


def apply(address, queue, root, split=False, env=None):
    env = {**WORKER_ENV, **(env or {})}
    if split:   # a worker on the main queues, another next to the api controller (as deploy.md suggests)
        main = ("--task-queue", queue, "--task-queue", f"{queue}.planning", "--task-queue", f"{queue}-cmd")
        (root.parent / "m").mkdir(exist_ok=True)
        (root.parent / "c").mkdir(exist_ok=True)
        beside = ("--task-queue", f"{queue}-api")
        with workers(address, queue, root.parent / "m", root, count=1, envs=[env], extra=main), \
             workers(address, queue, root.parent / "c", root, count=1, envs=[env], extra=beside):
            run = run_ordo_forked("apply", "-C", root, "--auto-approve", "--json", "--engine", "temporal",
                                   "--temporal", address, "--task-queue", queue, timeout=180)
        logs = "".join(p.read_text() for p in root.parent.glob("*/worker-*.log"))
    else:
        with workers(address, queue, root.parent, root, count=1, envs=[env]):
            run = run_ordo_forked("apply", "-C", root, "--auto-approve", "--json", "--engine", "temporal",
                                   "--temporal", address, "--task-queue", queue, timeout=180)
        logs = "".join(p.read_text() for p in root.parent.glob(f"worker-{queue}-*.log"))
    return run.code, run.out + run.err, logs


@pytest.mark.slow
def test_workers_split_by_queue_keep_the_secrets_out_of_the_history(tmp_path, echo, secret_env, temporal_server):
    """The controller's worker has written no intent: it learns the secret values from the inputs it
    resolves, and redacts the outputs and errors that echo them."""
    root = project(tmp_path / "p", echo.url, REQUEST)
    code, out, logs = apply(temporal_server, "h2", root, split=True)
    assert [s["body"]["inputs"]["pin"] for s in echo.seen if "/good/" in s["path"]] == [DECLARED], out
    assert found(history_all(temporal_server, root)) == [] and found(out) == [] and found(logs) == []


INTKEYS = f"""\
resources:
  - {{name: good, type: thing, params: {{pin: "{DECLARED}", ports: {{80: 8080}}}}}}
"""


@pytest.mark.slow
def test_inputs_json_does_not_carry_as_they_are_are_sent(tmp_path, echo, secret_env, temporal_server):
    """Integer keys come back from the history as strings: the inputs resolved again still match the digest."""
    root = project(tmp_path / "p", echo.url, INTKEYS)
    code, out, logs = apply(temporal_server, "h3", root)
    assert code == 0 and [s["body"]["inputs"]["ports"] for s in echo.seen] == [{"80": 8080}], out
    assert [s["body"]["inputs"]["pin"] for s in echo.seen] == [DECLARED]   # the value, not its fingerprint


QUOTED = f"""\
resources:
  - {{name: good, type: thing, params: {{pin: "{DECLARED}", init: "ALTER USER app PASSWORD '{DECLARED}'"}}}}
"""


@pytest.mark.slow
def test_a_secret_quoted_in_another_param_is_sent_by_a_worker_that_never_saw_it(tmp_path, echo, secret_env,
                                                                               temporal_server):
    """The intent masks the pin inside `init`; the controller's worker, which has not learnt it, sends the
    real text, and the history keeps neither."""
    root = project(tmp_path / "p", echo.url, QUOTED)
    code, out, logs = apply(temporal_server, "h4", root, split=True)
    assert code == 0 and [s["body"]["inputs"]["init"] for s in echo.seen] == [
        f"ALTER USER app PASSWORD '{DECLARED}'"], out
    assert found(history_all(temporal_server, root)) == []


@pytest.mark.slow
def test_a_conflict_that_binds_a_secret_param_is_explained_without_it(tmp_path, echo, secret_env, temporal_server):
    """A policy reads a declared secret param; the re-plan after a failure finds no plan and explains it,
    and the explanation crosses the history redacted."""
    one = f'resources:\n  - {{name: bad, type: thing, params: {{pin: "{DECLARED}"}}}}\n'
    root = project(tmp_path / "p", echo.url, one)
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n"
                                    "policies:\n  files: [pins.lp]\n")
    (root / "pins.lp").write_text('% a resource with a pin that failed is not tried again\n'
                                  ':- failed(R,O), param(R,"pin",P).\n')
    code, out, logs = apply(temporal_server, "h5", root)
    hist = history_all(temporal_server, root)
    assert code != 0 and "ordo.replan" in hist and "explanation" in hist, out   # it did explain
    assert found(hist) == []
