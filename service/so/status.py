"""ordo runs as SO's orchestration requests and manual tasks: pure functions the server calls.

Inputs are plain: what the server kept of the SO request (:class:`SoRecord`),
the run's :class:`executor.journal.RunInfo` (None while it waits to start) and
its journal events. Outputs are SO's JSON bodies (onap/so serviceinstancebeans
GetOrchestrationResponse, GetOrchestrationListResponse, RequestReferences;
tasksbeans TaskList, TaskRequestReference). The state table is in
docs/service-so.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

from domain.errors import Diagnostic, DiagnosticsError, clipped
from domain.formats import quoted
from executor.journal import UNREADABLE, Event, RunInfo, damaged_event
from service.so.models import SO_REQUEST, TasksRequest, validate

#: ordo's run status (RunInfo.effective_status) -> SO's requestState. "pending": accepted, no run yet.
REQUEST_STATES = {
    "pending": "PENDING",
    "running": "IN_PROGRESS",
    "crashed": "IN_PROGRESS",       # its process is gone: the server resumes it (on restart)
    "interrupted": "IN_PROGRESS",   # drained (shutdown): the server resumes it
    "fallout": "PENDING_MANUAL_TASK",
    "complete": "COMPLETE",
    "failed": "FAILED",
    "aborted": "ABORTED",
    "rolled_back": "ROLLED_BACK",
    "superseded": "FAILED",         # another run took over its goal: it never ends otherwise
}
#: Statuses in which the run is over (SO sets finishTime and 100 %); fallout waits for a decision.
FINISHED = ("complete", "failed", "aborted", "rolled_back", "superseded")
#: SO's OrchestrationRequestFormat: with any of them SO answers the raw state; without, it answers
#: ABORTED and ROLLED_BACK as FAILED (OrchestrationRequests.mapRequestStatusToRequest).
FORMATS = ("simple", "simplenotaskinfo", "statusdetail", "detail")
SELF_LINK = "/onap/so/infra/orchestrationRequests/v7/{request_id}"


@dataclass(frozen=True)
class SoRecord:
    """What the server keeps of an SO request, next to the run it started."""

    request_id: str
    action: str                      # createInstance | deleteInstance (SO's requestType)
    instance_id: str                 # the service instance (its ordo name)
    request_details: dict[str, Any] = field(default_factory=dict)   # as received
    received: float = 0.0            # when it was accepted (epoch seconds)
    scope: str = "service"           # SO's requestScope
    original_request_id: str | None = None   # a resume: the request it was asked under (its own id is new)

    def detail(self, *path: str) -> Any:
        """A value of requestDetails (None if absent), e.g. detail("requestInfo", "requestorId")."""
        node: Any = self.request_details
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node


def request_references(request_id: str, instance_id: str, base_url: str = "") -> dict[str, Any]:
    """202's body for a create, a delete or a resume."""
    return {"requestReferences": {"requestId": request_id, "instanceId": instance_id,
                                  "requestSelfLink": base_url + SELF_LINK.format(request_id=request_id)}}


def request_state(status: str, format: str | None = None) -> str:
    """SO's requestState for an ordo run status (``format``: SO's ``format`` query parameter)."""
    state = REQUEST_STATES[status]
    raw = format is not None and format.lower() in FORMATS
    return state if raw or state not in ("ABORTED", "ROLLED_BACK") else "FAILED"


@dataclass(frozen=True)
class Progress:
    done: int = 0          # operations of the current plan completed
    total: int = 0         # operations in the current plan
    plan: int = 0          # the plan's number (1, then one more per re-plan)


#: What the answers here read of a run's events: the last event of each of these groups, and the
#: results after the last plan (:func:`status_events`), not the run's whole history.
LAST_EVENTS = (("plan", "replan"), ("no-plan",), ("failed",), ("run-ended",))


def read_events(engine: Any, run: int) -> list[Event]:
    """What the answers here read of a run's events (:func:`status_events`), in a few indexed reads
    (``engine``: the service's, with ``last_event`` and ``events``)."""
    last = [engine.last_event(run, kinds) for kinds in LAST_EVENTS]
    plan = last[0]
    return status_events(last, engine.events(run, since=plan.seq, kinds=("result",)) if plan else [])


def status_events(last: list[Event | None], results: list[Event]) -> list[Event]:
    """The events the answers here need, in order: the last of each of :data:`LAST_EVENTS` and the
    results after the last plan; each answer reads the same from them as from all of the run's."""
    found = {ev.seq: ev for ev in [*last, *results] if ev is not None}
    return [found[seq] for seq in sorted(found)]


def progress(events: list[Event]) -> Progress:
    """How far the run's current plan is, from its events."""
    last = max((i for i, ev in enumerate(events) if ev.kind in ("plan", "replan")), default=None)
    if last is None:
        return Progress()
    ev = events[last]
    try:
        plan = ev.data["plan"]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        ops = {op["id"] for op in plan["operations"]}
        number = int(ev.data.get("number") or 1)
    except UNREADABLE as exc:
        raise damaged_event(Path("<journal>"), ev, exc) from None
    done = {e.op for e in events[last + 1:] if e.kind == "result" and e.op in ops}
    return Progress(done=len(done), total=len(ops), plan=number)


def request_status(run: RunInfo | None, events: list[Event], format: str | None = None) -> dict[str, Any]:
    """SO's requestStatus of a run (None: accepted, not started)."""
    status = run.effective_status if run else "pending"
    prog = progress(events)
    running = min(99, prog.done * 100 // prog.total) if prog.total else 0
    out: dict[str, Any] = {"requestState": request_state(status, format),
                           "statusMessage": _message(run, status, events),
                           "percentProgress": 100 if status in FINISHED else running, "flowStatus": _flow(status, prog)}
    if run is not None:   # the last thing that happened: the run's row changes only with its status
        out["timestamp"] = _time(max([run.updated, *(e.at for e in events)]))
    return out


def _flow(status: str, prog: Progress) -> str:
    if status == "complete":
        return "Successfully completed all Building Blocks"
    if status == "rolled_back":
        return "All Rollback flows have completed successfully"
    if not prog.total:
        return "Waiting to start" if status == "pending" else "No building blocks to run"
    replans = f" (plan {prog.plan}: a re-plan or a resume planned again)" if prog.plan > 1 else ""
    return f"Building blocks {prog.done} of {prog.total} completed.{replans}"


def _message(run: RunInfo | None, status: str, events: list[Event]) -> str:
    if run is None:
        return "Accepted, waiting to start"
    summary = run.summary or {}
    reason = summary.get("reason")
    if status == "complete":
        counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("created", "changed", "deleted"))
        return f"Completed: {counts}"
    if status in ("crashed", "interrupted"):
        return f"Interrupted ({status}); it is resumed where it stopped"
    text = reason or {"running": "In progress"}.get(status, status.replace("_", " ").capitalize())
    explanation = _explanation(events)
    return f"{text}: {explanation}" if explanation and status == "fallout" else text


def _explanation(events: list[Event]) -> str:
    """The planner's explanation of the last fallout: its summary and each conflict at file:line."""
    ev = next((e for e in reversed(events) if e.kind == "no-plan"), None)
    return explanation_text((ev.data.get("explanation") if ev else None) or {})


def explanation_text(data: Any) -> str:
    """An explanation (``Explanation.to_dict()``) in a line: its summary and each conflict at file:line."""
    if not isinstance(data, dict):
        return ""
    parts = [str(data.get("summary") or "")]
    for c in data.get("conflicts") or []:
        if isinstance(c, dict):
            on = ", ".join(c.get("resources") or [])
            parts.append(f"{c.get('policy')} ({c.get('file')}:{c.get('line')}) on {on}")
    return "; ".join(p for p in parts if p)


def orchestration_request(record: SoRecord, run: RunInfo | None, events: list[Event],
                          format: str | None = None) -> dict[str, Any]:
    """GET /onap/so/infra/orchestrationRequests/v7/{requestId}: ``{"request": {...}}``."""
    return {"request": _request(record, run, events, format)}


def _request(record: SoRecord, run: RunInfo | None, events: list[Event], format: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requestId": record.request_id,
        "startTime": _time(run.created if run and not record.original_request_id else record.received),
        "requestScope": record.scope,
        "requestType": record.action,
        "requestDetails": record.request_details,
        "instanceReferences": {"serviceInstanceId": record.instance_id, "serviceInstanceName": record.instance_id},
        "requestStatus": request_status(run, events, format),
    }
    if record.original_request_id:
        out["originalRequestId"] = record.original_request_id
    if run is not None and run.effective_status in FINISHED:
        out["finishTime"] = _time(run.updated)
    return out


def _time(epoch: float) -> str:
    """SO's timestamps: ``Thu, 04 Jan 2024 10:11:12 GMT``."""
    return formatdate(epoch, usegmt=True)


# --- GET orchestrationRequests/v7?filter=KEY:OP:VALUE ----------------------------

#: The filter keys ordo answers, and what each reads of a request.
FILTER_KEYS = ("requestId", "serviceInstanceId", "serviceInstanceName", "requestorId", "source", "requestType",
               "modelType", "requestScope", "requestStatus", "lcpCloudRegionId", "tenantId", "startTime")
#: SO's operators (requestdb's InfraActiveRequests filter), and EQ / NEQ for short.
OPERATORS = {"EQUALS": "EQUALS", "EQ": "EQUALS", "DOES_NOT_EQUAL": "DOES_NOT_EQUAL", "NEQ": "DOES_NOT_EQUAL",
             "LIKE": "LIKE", "BETWEEN_DATES": "BETWEEN_DATES"}
MAX_FILTERS = 20
DATE_FORMAT = "%d-%m-%Y"


@dataclass(frozen=True)
class Filter:
    key: str
    op: str                          # EQUALS | DOES_NOT_EQUAL | LIKE | BETWEEN_DATES
    values: tuple[str, ...]

    def matches(self, fields: dict[str, Any]) -> bool:
        value = fields.get(self.key)
        if self.op == "BETWEEN_DATES":
            start, end = (datetime.strptime(v, DATE_FORMAT).date() for v in self.values)
            return value is not None and start <= value.date() <= end
        text = "" if value is None else str(value)
        if self.op == "EQUALS":
            return text == self.values[0]
        if self.op == "DOES_NOT_EQUAL":
            return text != self.values[0]
        return self.values[0].lower() in text.lower()  # LIKE: SO matches %value%


def parse_filters(values: list[str]) -> list[Filter]:
    """``filter`` query values (``KEY:OP:VALUE``, ``startTime:BETWEEN_DATES:dd-MM-yyyy:dd-MM-yyyy``).
    DiagnosticsError naming each bad one (SO answers 400); at least one is required, as in SO."""
    problems: list[Diagnostic] = []
    out: list[Filter] = []
    if not values:
        problems.append(_query_problem("filter", "at least one filter is required",
                                       "filter=KEY:OP:VALUE, e.g. filter=serviceInstanceName:EQUALS:vfw-service"))
    if len(values) > MAX_FILTERS:
        problems.append(_query_problem("filter", f"{len(values)} filters: at most {MAX_FILTERS}"))
        values = values[:MAX_FILTERS]
    for i, text in enumerate(values):
        where = f"filter[{i}]"
        key, _, rest = text.partition(":")
        op, _, value = rest.partition(":")
        if len(text) > 1000:
            problems.append(_query_problem(where, "too long: at most 1000 characters"))
        elif key not in FILTER_KEYS:
            problems.append(_query_problem(where, f"unknown filter key {key!r}",
                                           f"expected one of: {', '.join(FILTER_KEYS)}"))
        elif not op:
            problems.append(_query_problem(where, f"no operator after {key!r}",
                                           "KEY:OP:VALUE, OP one of EQUALS, DOES_NOT_EQUAL, LIKE or BETWEEN_DATES"))
        elif op.upper() not in OPERATORS:
            problems.append(_query_problem(where, f"unknown operator {op!r}",
                                           "expected EQUALS, DOES_NOT_EQUAL, LIKE or BETWEEN_DATES"))
        elif (OPERATORS[op.upper()] == "BETWEEN_DATES") != (key == "startTime"):
            problems.append(_query_problem(where, "BETWEEN_DATES is the operator of startTime, and its only one",
                                           "startTime:BETWEEN_DATES:01-01-2024:31-12-2024"))
        elif OPERATORS[op.upper()] == "BETWEEN_DATES":
            dates = tuple(value.split(":"))
            if len(dates) != 2 or not all(_date(d) for d in dates):
                problems.append(_query_problem(where, "expected two dates dd-MM-yyyy after BETWEEN_DATES",
                                               f"got {value!r}"))
            else:
                out.append(Filter(key, "BETWEEN_DATES", dates))
        elif not value:
            problems.append(_query_problem(where, "missing value", "KEY:OP:VALUE"))
        else:
            out.append(Filter(key, OPERATORS[op.upper()], (value,)))
    if problems:
        raise DiagnosticsError(problems)
    return out


def _date(text: str) -> bool:
    try:
        datetime.strptime(text, DATE_FORMAT)
    except ValueError:
        return False
    return True


def _query_problem(where: str, summary: str, detail: str = "") -> Diagnostic:
    return Diagnostic(file="query", path=where, summary=summary, detail=detail, code="so")


def filter_fields(record: SoRecord, run: RunInfo | None) -> dict[str, Any]:
    """What the filters read of one request."""
    return {
        "requestId": record.request_id, "serviceInstanceId": record.instance_id,
        "serviceInstanceName": record.instance_id, "requestorId": record.detail("requestInfo", "requestorId"),
        "source": record.detail("requestInfo", "source"), "requestType": record.action,
        "modelType": record.scope, "requestScope": record.scope,
        "requestStatus": request_state(run.effective_status if run else "pending", "detail"),
        "lcpCloudRegionId": record.detail("cloudConfiguration", "lcpCloudRegionId"),
        "tenantId": record.detail("cloudConfiguration", "tenantId"),
        "startTime": datetime.fromtimestamp(run.created if run else record.received, UTC),
    }


def request_list(requests: list[tuple[SoRecord, RunInfo | None, list[Event]]], filters: list[Filter],
                 format: str | None = None) -> dict[str, Any]:
    """GET /onap/so/infra/orchestrationRequests/v7?filter=...: ``{"requestList": [{"request": ...}]}``,
    the requests every filter matches, in the order given."""
    return {"requestList": [{"request": _request(rec, run, evs, format)} for rec, run, evs in requests
                            if matches(rec, run, filters)]}


def matches(record: SoRecord, run: RunInfo | None, filters: list[Filter]) -> bool:
    """Whether every filter matches the request (from its record and run alone, no events)."""
    return all(f.matches(filter_fields(record, run)) for f in filters)


# --- manual tasks: runs fallen out, waiting for a decision -----------------------

#: What completing a task with each responseValue does to the run ("skip" has no meaning in ordo:
#: the plan is computed, not a list of steps to step over).
TASK_ACTIONS = {"retry": "resume", "resume": "resume", "manual": "resume", "rollback": "rollback", "abort": "abort"}
VALID_RESPONSES = ["abort", "resume", "retry", "rollback"]
TASK_QUERY = ("taskId", "originalRequestId", "subscriptionServiceType", "nfRole", "buildingBlockName",
              "originalRequestorId")


def task_id(record: SoRecord, events: list[Event]) -> str | None:
    """The id of the run's open task: the request id and the journal seq of its fallout (a later
    fallout of the same request is another task)."""
    ended = next((e for e in reversed(events) if e.kind == "run-ended"), None)
    if ended is None or ended.data.get("status") != "fallout":
        return None
    return f"{record.request_id}-{ended.seq}"


def parse_task_id(text: str) -> tuple[str, int] | None:
    """(request id, seq) of a task id; None if it is not one ordo made."""
    request_id, _, seq = text.rpartition("-")
    return (request_id, int(seq)) if request_id and seq.isascii() and seq.isdigit() and len(text) <= 300 else None


def task(record: SoRecord, run: RunInfo, events: list[Event]) -> dict[str, Any] | None:
    """The manual task of a run that fell out (None for any other run): SO's TaskList entry."""
    if run.effective_status != "fallout":
        return None
    ident = task_id(record, events)
    if ident is None:
        return None
    failed = next((e for e in reversed(events) if e.kind == "failed"), None)
    out = {
        "taskId": ident, "type": "fallout",
        "subscriptionServiceType": record.detail("requestParameters", "subscriptionServiceType"),
        "originalRequestId": record.request_id,
        "originalRequestorId": record.detail("requestInfo", "requestorId"),
        "errorSource": "ordo",
        "errorCode": "no-plan" if any(e.kind == "no-plan" for e in events) else "gave-up",
        "errorMessage": _message(run, "fallout", events),
        "buildingBlockName": failed.op if failed else None,
        "buildingBlockStep": (failed.data.get("code") or "failed") if failed else None,
        "validResponses": list(VALID_RESPONSES),
    }
    return {k: v for k, v in out.items() if v is not None}


def check_task_query(query: dict[str, str], given: Iterable[str] = ()) -> None:
    """DiagnosticsError for a query parameter SO's TasksHandler does not know (each named once,
    cut short: a key may be 60 KB long; diagnostics_error shows the first few), or one ``given``
    (every key sent, in order) more than once: each is one value to match, and only the last one
    was matched."""
    unknown = sorted(set(query) - set(TASK_QUERY))
    if unknown:
        raise DiagnosticsError([_query_problem(k if k.isprintable() and len(k) <= 60 else "",
                                               f"unknown query parameter {quoted(k)}",
                                               f"expected: {', '.join(TASK_QUERY)}") for k in unknown])
    counts = Counter(given)
    repeated = [k for k in TASK_QUERY if counts[k] > 1]
    if repeated:
        raise DiagnosticsError([_query_problem(k, f"{k} given {counts[k]} times",
                                               "one value each: the tasks that match it") for k in repeated])


def task_list(requests: list[tuple[SoRecord, RunInfo | None, list[Event]]], query: dict[str, str]) -> dict[str, Any]:
    """GET /onap/so/infra/tasks/v1[?taskId=..&originalRequestId=..]: ``{"taskList": [...]}``.
    DiagnosticsError for a query parameter SO's TasksHandler does not know."""
    check_task_query(query)
    tasks = [t for rec, run, evs in requests if run is not None and (t := task(rec, run, evs)) is not None]
    # (a field the task does not have matches nothing: it compared as "None", and ?nfRole=None matched every task)
    return {"taskList": [t for t in tasks if all(t.get(k) is not None and str(t[k]) == v for k, v in query.items())]}


@dataclass(frozen=True)
class TaskDecision:
    action: str                   # resume | rollback | abort: what the server does to the run
    response: str                 # SO's responseValue as sent
    requestor: str | None = None  # who decided (for the journal)
    source: str | None = None


def task_decision(body: Any, name: str = SO_REQUEST) -> TaskDecision:
    """POST /onap/so/infra/tasks/v1/{taskId}/complete: what to do with the run.
    DiagnosticsError naming the field for a bad body or a response ordo cannot carry out."""
    info = validate(TasksRequest, body, name).requestDetails.requestInfo
    action = TASK_ACTIONS.get(info.responseValue)
    if action is None:
        raise DiagnosticsError([Diagnostic(
            file=name, path="requestDetails.requestInfo.responseValue", code="so",
            summary=f"'{info.responseValue}' cannot be done: ordo computes its plan, there is no step to skip",
            detail="retry (or resume) plans again from what is observed; rollback returns to the state before "
                   "the run; abort ends it")])
    return TaskDecision(action=action, response=info.responseValue, requestor=info.requestorId, source=info.source)


def task_completed(task_id: str) -> dict[str, Any]:
    """The answer to a task completion."""
    return {"taskRequestReference": {"taskId": task_id}}


# --- errors, in SO's shape ---------------------------------------------------------

BAD_PARAMETER, DETAILED_ERROR = "SVC0002", "SVC2000"   # SO's ErrorNumbers


def request_error(text: str, variables: list[str] | None = None, message_id: str = BAD_PARAMETER) -> dict[str, Any]:
    """SO's error body: ``{"requestError": {"serviceException": {messageId, text, variables}}}``."""
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text,
                                                  "variables": list(variables or [])}}}


#: An error body names this many problems at most, each in at most MOST_CHARACTERS: a body of 700 KB
#: with 15,000 bad fields was answered with 10 MB (a sweep's, 6 December).
MOST_SHOWN, MOST_CHARACTERS = 20, 2000


def diagnostics_error(exc: DiagnosticsError) -> dict[str, Any]:
    """A DiagnosticsError (a bad SO body, filter or mapping problem) as SO's error body (400): the
    first MOST_SHOWN problems, and how many more. A problem in the body or the query has no line
    (they came over HTTP, not from a file)."""
    found = [replace(d, line=0, column=0) if d.file in (SO_REQUEST, "query") else d for d in exc.diagnostics]
    lines = [clipped(str(d), MOST_CHARACTERS) for d in found[:MOST_SHOWN]]
    if len(found) > MOST_SHOWN:
        lines.append(f"and {len(found) - MOST_SHOWN:,} more problems")
    return request_error(lines[0] if len(found) == 1 else f"{len(found):,} problems: " + "; ".join(lines), lines)


def locked_instance(instance_id: str, other: SoRecord, state: str) -> dict[str, Any]:
    """409's body when the instance has a request in progress, in SO's words."""
    whose = "already has" if other.instance_id == instance_id else \
        f"shares resources with {other.instance_id}, which has"
    return request_error(
        f"Error: Locked instance - This service ({instance_id}) {whose} a request being worked with a status of "
        f"{state} (RequestId - {other.request_id}). The existing request must finish or be cleaned up before "
        "proceeding.", message_id=DETAILED_ERROR)
