"""SO's request ids in the journal's index (version 4), on SQLite and PostgreSQL; and SO's list and task
answers reading the runs' rows and a bounded tail of each listed run's events, not every event."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.journal import Event, Journal
from service.app import create_app
from service.auth import Credentials
from service.engine import LocalEngine
from service.so.status import SoRecord

SO = "/onap/so/infra"


def test_request_ids_are_indexed_with_the_run_and_each_resume(journal_url: str) -> None:
    with Journal(journal_url) as jr:
        run = jr.start_run("/p", "r.yaml", {"request_id": "req-a"}, claims=["svc"])
        other = jr.start_run("/p", "r.yaml", {}, claims=["other"])  # a run no client id names
        jr.append(run, [Event("run-ended", data={"status": "fallout"})], status="fallout")
        jr.append(run, [Event("resume-requested", data={"request_id": "req-b", "original_request_id": "req-a",
                                                        "principal": "ops"})])
        jr.append(run, [Event("resume-requested", data={"principal": "ops"})])  # a resume without an id
        a, b = jr.request("req-a"), jr.request("req-b")
        assert a is not None and b is not None and jr.request("req-c") is None
        assert (a[0].run, a[0].original, a[1].id) == (run, None, run)
        assert (b[0].run, b[0].original, b[1].status) == (run, "req-a", "fallout")
        assert b[0].at >= a[0].at
        assert [(ref.id, info.id) for ref, info in jr.requests()] == [("req-a", run), ("req-b", run)]
        assert [ref.id for ref, _ in jr.requests(("fallout",))] == ["req-a", "req-b"]
        assert jr.requests(("complete",)) == [] and other not in {info.id for _, info in jr.requests()}


# --- the list and the tasks: what they read ---------------------------------------------

def _so_run(jr: Journal, n: int, *, fallout: bool, filler: int) -> None:
    """An SO request's run, as the service leaves it: a plan of two operations, one result, ``filler``
    observations in between, and its end."""
    request_id = f"req-{n}"
    record = SoRecord(request_id=request_id, action="createInstance", instance_id=f"svc-{n}", received=1.0)
    run = jr.start_run("/p", "r.yaml", {"so": record.__dict__, "request_id": request_id}, claims=[f"svc-{n}"])
    plan = {"operations": [{"id": f"svc-{n}/create"}, {"id": f"vnf-{n}/create"}]}
    jr.append(run, [Event("plan", data={"plan": json.dumps(plan), "number": 1}),
                    Event("result", op=f"svc-{n}/create", data={"outputs": {}})])
    for _ in range(filler):
        jr.append(run, [Event("observed", data={"settled": []})])
    if fallout:
        jr.append(run, [Event("no-plan", data={"explanation": {"summary": "no target left"}}),
                        Event("run-ended", data={"status": "fallout", "reason": "no plan"})],
                  status="fallout", summary={"status": "fallout", "reason": "no plan"})
    else:
        jr.append(run, [Event("result", op=f"vnf-{n}/create", data={"outputs": {}}),
                        Event("run-ended", data={"status": "complete"})], status="complete",
                  summary={"status": "complete", "created": 2})


def _answers(project: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """How many events the SO list and the task list read, and what they answered."""
    read = [0]
    events, last_event = Journal.events, Journal.last_event

    def counted_events(self: Journal, *args: Any, **kwargs: Any) -> list[Event]:
        got = events(self, *args, **kwargs)
        read[0] += len(got)
        return got

    def counted_last(self: Journal, *args: Any, **kwargs: Any) -> Event | None:
        got = last_event(self, *args, **kwargs)
        read[0] += got is not None
        return got

    engine = LocalEngine(project=project)
    app = create_app(engine, Credentials())

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1") as client:
            listed = await client.get(f"{SO}/orchestrationRequests/v7",
                                      params={"filter": "requestScope:EQUALS:service", "format": "detail"})
            return listed, await client.get(f"{SO}/tasks/v1")

    engine.start()
    try:
        monkeypatch.setattr(Journal, "events", counted_events)
        monkeypatch.setattr(Journal, "last_event", counted_last)
        listed, tasks = asyncio.run(ask())
        monkeypatch.undo()
    finally:
        engine.shutdown()
    assert listed.status_code == 200 and tasks.status_code == 200, (listed.text, tasks.text)
    return read[0], listed.json(), tasks.json()


def test_the_list_and_the_tasks_read_a_bounded_part_of_each_run(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def build(folder: str, filler: int) -> Path:
        project = tmp_path / folder
        (project / ".ordo").mkdir(parents=True)
        (project / "ordo.yaml").write_text("{}\n")
        with Journal(project / ".ordo" / "journal.db") as jr:
            for n in range(1, 5):
                _so_run(jr, n, fallout=n % 2 == 0, filler=filler)
        return project

    small, large = build("small", 0), build("large", 200)
    read_small, listed_small, tasks_small = _answers(small, monkeypatch)
    read_large, listed_large, tasks_large = _answers(large, monkeypatch)
    # the answers are the same, and so is what was read for them: no run's history is read whole
    for listed in (listed_small, listed_large):
        states = [(r["request"]["requestId"], r["request"]["requestStatus"]["requestState"],
                   r["request"]["requestStatus"]["percentProgress"]) for r in listed["requestList"]]
        assert states == [("req-1", "COMPLETE", 100), ("req-2", "PENDING_MANUAL_TASK", 50),
                          ("req-3", "COMPLETE", 100), ("req-4", "PENDING_MANUAL_TASK", 50)]
        assert "no target left" in listed["requestList"][1]["request"]["requestStatus"]["statusMessage"]
    assert [t["originalRequestId"] for t in tasks_large["taskList"]] == ["req-2", "req-4"]
    assert [t["errorCode"] for t in tasks_large["taskList"]] == ["no-plan", "no-plan"]
    strip = [{k: v for k, v in t.items() if k != "taskId"} for t in tasks_small["taskList"]]
    assert strip == [{k: v for k, v in t.items() if k != "taskId"} for t in tasks_large["taskList"]]
    assert read_large == read_small
    # the list: each of 4 runs its plan, a result or two, its end (and a fallout's no-plan); the tasks:
    # the 2 fallen out only
    assert read_small <= 4 * 5 + 2 * 5
