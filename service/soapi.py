"""ONAP SO's northbound API on the service (/onap/so/infra): routes over ``service/so/`` and the engine.

SO's clients (VID, OSS/BSS, closed loop) get SO's JSON shapes and SO's error body
(``requestError.serviceException``): a bad body or filter is 400 naming the field, an
unknown request or task 404, a request on an instance another one is working on 409
("Locked instance"). An SO request is one ordo run: what SO's status answers need (the
request id, action, instance, requestDetails with secrets masked) is kept in the run's
options in the journal, so it outlives a restart like the run does. docs/service.md.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from domain.errors import DiagnosticsError, OrdoError, clipped
from domain.project import Project
from domain.yamlsrc import MAX_DEPTH, nested_deeper
from executor.engine import ExecutionError
from executor.journal import RESUMABLE, ClaimError, JournalError, RequestIdTaken, RequestRef, RunInfo
from executor.redact import Redactor
from executor.temporal import TemporalError
from planner.bounded import PoliciesChanged
from service.app import Problem, Who, authorize, body_problem, under
from service.auth import Principal
from service.engine import (
    Conflict,
    LocalEngine,
    NoPlan,
    ProjectBroken,
    Submission,
    Unavailable,
    UnknownRun,
    project_or_request,
)
from service.so import status
from service.so.mapping import Mapping, find_mapping, load_mapping
from service.so.models import SO_REQUEST, json_kind
from service.so.status import SoRecord
from service.so.translate import CREATE, DELETE, Translation, translate_create, translate_delete

PREFIX = "/onap/so/infra"
#: Where an SO request is kept in its run's options.
KEY = "so"
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
_OPTIONAL_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}

InstanceId = Annotated[str, Path(min_length=1, max_length=200)]
RequestId = Annotated[str, Path(min_length=1, max_length=300)]
Format = Annotated[str | None, Query(max_length=50, description="SO's format: with it, ABORTED and ROLLED_BACK "
                                                                  "are answered as such, else as FAILED")]


class _ServiceException(BaseModel):
    messageId: str  # noqa: N815 (SO's names)
    text: str
    variables: list[str]


class _RequestError(BaseModel):
    serviceException: _ServiceException  # noqa: N815


class SoErrorBody(BaseModel):
    """SO's error body: ``{"requestError": {"serviceException": {messageId, text, variables}}}``."""

    requestError: _RequestError  # noqa: N815


#: What the SO routes refuse, and why. The body's size refused before a route runs has ordo's own
#: Problem body; every other refusal has SO's (credentials, a path or query parameter out of bounds:
#: service/app.py's handlers).
SO_REFUSALS = {400: "The body, a filter, a path or query parameter or the project's SO mapping has problems "
                    "(each named).",
               401: "Credentials are needed.", 403: "A reader may only GET.",
               404: "No such request or task.",
               409: "Locked instance: a request on it is in progress; or not in a state for this.",
               413: "The body is over the size limit.",
               422: "No plan exists for the request (with the explanation).",
               501: "The project has no SO mapping.",
               503: "Shutting down, the journal is busy, or the project has no SO mapping."}


def _so_refusals() -> dict[int | str, dict[str, Any]]:
    return {code: {"model": SoErrorBody | Problem, "description": text} for code, text in SO_REFUSALS.items()}


class SoError(Exception):
    """An answer in SO's error shape."""

    def __init__(self, code: int, text: str, message_id: str = status.BAD_PARAMETER,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.body = body or status.request_error(text, message_id=message_id)


def record_of(info: RunInfo) -> SoRecord | None:
    """The SO request a run answers (None for a run not started through SO)."""
    data = info.options.get(KEY)
    return SoRecord(**data) if isinstance(data, dict) else None


def so_http_errors(app: FastAPI) -> None:
    """Refusals made before an SO handler runs (401 and 403 of ``authorize``, 404 and 405 of a path or
    method SO does not have) in SO's shape under its prefix, as the handlers' own errors are; others
    as FastAPI answers them."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if under(request.url.path, PREFIX):
            detail = str(exc.detail)
            if exc.status_code == 404 and request.scope.get("route") is None:   # no route: say which there are
                detail = (f"{PREFIX}{request.url.path.removeprefix(PREFIX)[:200]} is no route of this server: it "
                          f"serves {PREFIX}/serviceInstantiation/v7/serviceInstances, "
                          f"{PREFIX}/orchestrationRequests/v7 and {PREFIX}/tasks/v1 (SO's versions)")
            return JSONResponse(status.request_error(detail), status_code=exc.status_code, headers=exc.headers)
        return await http_exception_handler(request, exc)


def so_router(engine: LocalEngine) -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authorize)], tags=["ONAP SO"],
                       responses=_so_refusals())

    @router.post("/serviceInstantiation/v7/serviceInstances", status_code=202, openapi_extra=_BODY)
    async def create(request: Request, who: Who) -> JSONResponse:
        """Macro create (SO's ServiceInstancesRequest): 202 ``{"requestReferences": ...}``."""
        raw = await request.body()
        given = request.headers.get(REQUEST_ID_HEADER)
        return await _call(lambda: _submit(engine, who, translate_create, _json(raw, request.headers, required=True),
                                           given))

    @router.delete("/serviceInstantiation/v7/serviceInstances/{serviceInstanceId}", status_code=202,
                   openapi_extra=_OPTIONAL_BODY)
    async def delete(request: Request, serviceInstanceId: InstanceId, who: Who) -> JSONResponse:  # noqa: N803
        """Macro delete of a service instance (its parts with it): 202 ``{"requestReferences": ...}``."""
        raw = await request.body()
        given = request.headers.get(REQUEST_ID_HEADER)
        return await _call(lambda: _submit(engine, who, lambda body, m: translate_delete(serviceInstanceId, body, m),
                                           _json(raw, request.headers, required=False), given))

    @router.get("/orchestrationRequests/v7/{requestId}")
    async def orchestration_request(requestId: RequestId, format: Format = None) -> JSONResponse:  # noqa: N803
        """SO's GetOrchestrationResponse: the request and its requestStatus."""
        def get() -> JSONResponse:
            record, info = _find(engine, requestId)
            return JSONResponse(status.orchestration_request(record, info, status.read_events(engine, info.id), format))
        return await _call(get)

    @router.get("/orchestrationRequests/v7")
    async def request_list(request: Request, format: Format = None) -> JSONResponse:
        """``?filter=KEY:OP:VALUE`` (repeatable, at least one): SO's GetOrchestrationListResponse."""
        def get() -> JSONResponse:
            filters = [replace(f, values=(_canonical(f.values[0]),)) if f.key == "requestId" and f.op != "LIKE"
                       else f for f in status.parse_filters(request.query_params.getlist("filter"))]
            # (a request id as it is kept, as a path's: an upper-case one matched nothing) filtered on the runs'
            # rows; only the requests listed have their events read
            found = [(rec, info) for rec, info in _records(engine) if status.matches(rec, info, filters)]
            return JSONResponse(status.request_list(
                [(rec, info, status.read_events(engine, info.id)) for rec, info in found], [], format))
        return await _call(get)

    @router.post("/orchestrationRequests/v7/{requestId}/resume", status_code=202)
    async def resume(requestId: RequestId, who: Who) -> JSONResponse:  # noqa: N803
        """Carry on the request's run (it fell out, or was cut short): 202 with the references of a new
        request (as SO: a new requestId, whose originalRequestId is the one resumed); both answer GET."""
        def go() -> JSONResponse:
            record, info = _find(engine, requestId)
            new = str(uuid.uuid4())
            engine.resume(info.id, who.name, record={"request_id": new, "original_request_id": record.request_id})
            return JSONResponse(status.request_references(new, record.instance_id), 202)
        return await _call(go)

    @router.get("/tasks/v1")
    async def tasks(request: Request) -> JSONResponse:
        """Manual tasks: the requests whose run fell out and waits for a decision (SO's TaskList)."""
        def get() -> JSONResponse:
            query = {k: v[:300] for k, v in request.query_params.items()}
            # (before the runs' events are read)
            status.check_task_query(query, [k for k, _ in request.query_params.multi_items()])
            if "taskId" in query:   # (request ids in the form they are kept in, as a path's)
                query["taskId"] = _canonical_task(query["taskId"])
            if "originalRequestId" in query:
                query["originalRequestId"] = _canonical(query["originalRequestId"])
            # the runs that fell out only (one task each, under its latest request id)
            latest = {info.id: (rec, info) for rec, info in _records(engine, ("fallout",))}
            return JSONResponse(status.task_list([(rec, info, status.read_events(engine, info.id))
                                                  for rec, info in latest.values()], query))
        return await _call(get)

    @router.post("/tasks/v1/{taskId}/complete", status_code=202, openapi_extra=_BODY)
    async def complete(request: Request, taskId: RequestId, who: Who) -> JSONResponse:  # noqa: N803
        """Complete a manual task: responseValue retry | resume | manual (plan again from what is
        observed), abort (end the run, nothing undone), rollback (back to the state before the run)."""
        raw = await request.body()
        return await _call(lambda: _complete(engine, who, taskId, _json(raw, request.headers, required=True)))

    return router


# --- what the routes do ---------------------------------------------------------------

#: The header an SO client names its request by: SO takes it as the request's id.
REQUEST_ID_HEADER = "X-ONAP-RequestID"


def _uuid(text: str) -> str | None:
    """``text`` as a UUID in its canonical form (lower case), the form request ids are kept in; None
    if it is not one."""
    try:
        return str(uuid.UUID(text)) if len(text) <= 100 else None
    except ValueError:
        return None


def _canonical(request_id: str) -> str:
    """A request id to look up: a UUID's canonical form, anything else as it is."""
    return _uuid(request_id) or request_id


def _client_request_id(header: str | None) -> str | None:
    """The request id the client chose (``X-ONAP-RequestID``), as SO takes it: a UUID, in its
    canonical form; None when the header is absent or empty (ordo makes one)."""
    value = (header or "").strip()
    if not value:
        return None
    if (found := _uuid(value)) is None:
        raise SoError(400, f"{REQUEST_ID_HEADER}: {value[:100]!r} is not a UUID")
    return found


def _submit(engine: LocalEngine, who: Principal, translate: Callable[[Any, Mapping], Translation],
            body: Any, header: str | None = None) -> JSONResponse:
    request_id = _client_request_id(header)
    if request_id is not None and engine.request(request_id) is not None:   # (before planning; the journal
        raise SoError(400, f"RequestId: {request_id} already exists")        # checks again, with the run)
    path = find_mapping(engine.root)
    if path is None:
        raise SoError(501, "this project has no so-mapping.yaml next to its ordo.yaml: it does not answer SO "
                           "requests (docs/service-so.md)")
    try:
        mapping = load_mapping(path, engine.root)
    except DiagnosticsError as exc:
        raise SoError(503, f"the project's SO mapping has problems: {exc}") from None
    translation = translate(body, mapping)
    # Checked once more here, so that a problem is named at the SO field it came from
    # (the engine loads the same request again, as a request file, to plan and run it).
    try:
        project = translation.load(engine.root, observed=list(engine.state().values()))
    except DiagnosticsError as exc:   # the request's problems, unless a file of the project's has some
        raise project_or_request(exc, translation.name) from None

    def check(project: Project) -> None:
        """Asked here (before planning), then by the engine of the state each plan of the request is made
        from, and the run started only from that state: asked here alone, a create sent while another run
        held the instance went through once that run ended, and changed the live instance in place (as
        did deletes, done again)."""
        exists = _exists(project, translation.service)
        refused = translation.action == DELETE and not exists or translation.action == CREATE and exists
        if not refused or _held(engine, translation):   # (held: SO's "Locked instance", from the submission)
            return
        if translation.action == DELETE:
            raise SoError(404, f"no service instance {translation.service!r}: nothing ordo knows of (inventory or "
                               "journal) has that serviceInstanceId, or it is deleted already")
        # (as SO refuses a service instance name that exists: a create sent again with other values changed
        # the live instance in place, '1 changed': a sweep of SO's API)
        raise SoError(409, f"service instance {translation.service!r} exists already: a createInstance makes a "
                           "new one (delete it first; a run of it that fell out is resumed: "
                           "orchestrationRequests/v7/{requestId}/resume)")

    check(project)
    record = SoRecord(request_id=request_id or str(uuid.uuid4()), action=translation.action,
                      instance_id=translation.service,
                      request_details=Redactor().tree((body or {}).get("requestDetails") or {}, compared=False),
                      received=time.time())
    try:
        engine.submit(Submission(request=translation.request), who.name,
                      record={KEY: record.__dict__, "request_id": record.request_id}, check=check)
    except ClaimError as exc:
        raise _locked(engine, translation, exc) from None
    except RequestIdTaken as exc:
        raise SoError(400, str(exc)) from None
    return JSONResponse(status.request_references(record.request_id, record.instance_id), 202)


def _exists(project: Project, instance_id: str) -> bool:
    """Whether a macro delete's service instance exists (observed, past its initial state), as SO looks
    it up first: a mistyped id is a 404, not a request that completes having done nothing."""
    res = project.model.resources.get(instance_id)
    return res is not None and res.observed and res.current != project.model.kinds[res.type].initial


def _held(engine: LocalEngine, translation: Translation) -> bool:
    """Whether a run that may go on holds what the request touches (a create still under way, its
    instance not observed yet): the answer is SO's "Locked instance", from the submission."""
    try:
        engine.check_claims(translation.resources)
    except ClaimError:
        return True
    return False


def _locked(engine: LocalEngine, translation: Translation, exc: ClaimError) -> SoError:
    """SO's "Locked instance", naming the SO request in the way when there is one."""
    wanted = set(translation.resources)
    for record, info in reversed(_records(engine, RESUMABLE)):
        if wanted & set(engine.claims(info.id)):
            state = status.request_state(info.effective_status, "detail")
            return SoError(409, "", body=status.locked_instance(translation.service, record, state))
    return SoError(409, f"Error: Locked instance - {str(exc).replace(f'{engine.path}: ', '')}",
                   message_id=status.DETAILED_ERROR)


def _canonical_task(task_id: str) -> str:
    """A task id with its request id in the canonical form request ids are kept in (an upper-case id
    named a request in a path, but no task: a sweep's)."""
    parsed = status.parse_task_id(task_id)
    return f"{_canonical(parsed[0])}-{parsed[1]}" if parsed else task_id


def _complete(engine: LocalEngine, who: Principal, task_id: str, body: Any) -> JSONResponse:
    task_id = _canonical_task(task_id)
    parsed = status.parse_task_id(task_id)
    try:
        found = _find(engine, parsed[0]) if parsed else None
    except SoError:   # (the task is what was asked for: "no orchestration request 'nope'" for nope-1)
        found = None
    # open while its run waits for a decision: not once a completion set it going again (and it was
    # cut short, say, before a run-ended), nor when a later fallout is another task
    if (found is None or found[1].effective_status != "fallout"
            or status.task_id(found[0], status.read_events(engine, found[1].id)) != task_id):
        raise SoError(404, f"no open task {task_id!r}")
    decision = status.task_decision(body)
    run = found[1].id
    principal = who.name if decision.requestor is None else f"{who.name} (SO requestor {decision.requestor[:100]})"
    if decision.action == "resume":
        engine.resume(run, principal)
    elif decision.action == "abort":
        engine.abort(run, principal)
    else:
        engine.rollback(run, principal)
    return JSONResponse(status.task_completed(task_id), 202)


def _record(ref: RequestRef, info: RunInfo) -> SoRecord | None:
    """The SO request an id names: the run's own, or a resume of it (a request of its own, as in SO)."""
    record = record_of(info)
    if record is None or ref.original is None:
        return record
    return replace(record, request_id=ref.id, original_request_id=ref.original, received=ref.at)


def _records(engine: LocalEngine, statuses: tuple[str, ...] | None = None) -> list[tuple[SoRecord, RunInfo]]:
    """Every SO request (of runs of these statuses), in the order they were made, from the journal's
    index of request ids and the runs' rows: no events read."""
    return [(rec, info) for ref, info in engine.requests(statuses) if (rec := _record(ref, info)) is not None]


def _find(engine: LocalEngine, request_id: str) -> tuple[SoRecord, RunInfo]:
    found = engine.request(_canonical(request_id))
    record = _record(*found) if found else None
    if found is None or record is None:
        raise SoError(404, f"no orchestration request {request_id!r}")
    return record, found[1]


def _json(raw: bytes, headers: Headers, *, required: bool) -> Any:
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if raw and encoding != "identity":   # (a gzip body was "not JSON ('utf-8' codec can't decode byte 0x8b ...)")
        raise SoError(415, f"{SO_REQUEST}: the body's Content-Encoding {clipped(encoding, 40)!r} is not taken: "
                           "send the JSON as it is")
    if not raw.strip() and not required:
        return None
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:   # (Python's codec message, as /v1 said before)
        raise SoError(400, f"{SO_REQUEST}: the body is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                           f"{exc.start:,}): send JSON in UTF-8") from None
    except ValueError as exc:
        raise SoError(400, f"{SO_REQUEST}: the body is not JSON ({exc})") from None
    except RecursionError:   # (a body of 1 MiB may open half a million brackets)
        raise SoError(400, f"{SO_REQUEST}: the body is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(value, dict):  # SO's bodies are objects; `null` is not "no body"
        raise SoError(400, f"{SO_REQUEST}: expected a JSON object, got {json_kind(value)}")
    if (problem := body_problem(raw, unreadable=True)) is not None:   # kept whole with the run
        raise SoError(400, f"{SO_REQUEST}: {problem}")
    if nested_deeper(value):
        raise SoError(400, f"{SO_REQUEST}: the body is nested more than {MAX_DEPTH} levels deep")
    return value


async def _call(work: Callable[[], JSONResponse]) -> JSONResponse:
    """The answer, or the library's errors in SO's shape."""
    try:
        return await run_in_threadpool(work)
    except SoError as exc:
        return JSONResponse(exc.body, status_code=exc.code)
    except ProjectBroken as exc:   # the server's configuration, not the request's (as a broken mapping is)
        exc.logged()
        said = status.diagnostics_error(exc)["requestError"]["serviceException"]["text"]
        return JSONResponse(status.request_error(f"the project's own files have problems: {said}",
                                                 message_id=status.DETAILED_ERROR), status_code=503)
    except DiagnosticsError as exc:
        return JSONResponse(status.diagnostics_error(exc), status_code=400)
    except NoPlan as exc:
        why = exc.outcome.explanation
        text = status.explanation_text(why.to_dict() if why else {}) or exc.outcome.status
        return JSONResponse(status.request_error(f"No plan exists for this request: {text}",
                                                 message_id=status.DETAILED_ERROR), status_code=422)
    except UnknownRun as exc:
        return JSONResponse(status.request_error(str(exc)), status_code=404)
    except (Conflict, ExecutionError) as exc:
        return JSONResponse(status.request_error(str(exc), message_id=status.DETAILED_ERROR), status_code=409)
    except Unavailable as exc:
        return JSONResponse(status.request_error(str(exc), message_id=status.DETAILED_ERROR), status_code=503,
                            headers={"Retry-After": "5"})
    except PoliciesChanged as exc:   # a policy file being written while the request was planned: send it again
        return JSONResponse(status.request_error(str(exc), message_id=status.DETAILED_ERROR), status_code=503,
                            headers={"Retry-After": "1"})
    except (JournalError, TemporalError):
        raise   # the app's own answer: 503, and the journal's reader opened anew (service/app.py)
    except OrdoError as exc:   # as /v1 answers it (service/app.py), in SO's shape
        return JSONResponse(status.request_error(str(exc), message_id=status.DETAILED_ERROR), status_code=422)


__all__ = ["KEY", "PREFIX", "SoError", "record_of", "so_router"]
