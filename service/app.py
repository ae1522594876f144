"""ordo's own HTTP API (/v1), health, readiness and metrics, on FastAPI.

The layer only translates: bodies are validated (pydantic, every problem naming its
field), handed to the engine (``service/engine.py``), and its answers and errors
become JSON and status codes. What arrives here is untrusted: a request document
goes through the same loaders and checks as a request file, a saved plan through
the same verification as ``ordo apply plan.json``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import Diagnostic, DiagnosticsError, OrdoError, clipped
from domain.formats import NOT_BOOL, DuplicateKey, unique_keys
from domain.limits import LEAST_OP_SECONDS, MOST_AT_ONCE, MOST_REPLANS, MOST_SECONDS
from domain.yamlsrc import MAX_DEPTH
from executor.core.options import ON_FAILURE
from executor.engine import ExecutionError
from executor.journal import STATUSES, ClaimError, JournalError, RunInfo, claim_target, utc_text
from executor.redact import Redactor
from executor.runs import unfollowed
from executor.temporal import TemporalError
from planner.bounded import PoliciesChanged
from planner.whatif import ScenarioError
from service.auth import LOCAL, Credentials, Principal
from service.engine import Conflict, LocalEngine, NoPlan, ProjectBroken, Submission, Unavailable, UnknownRun
from service.metrics import CONTENT_TYPE, Metrics
from service.so.status import request_error

MAX_BODY = 1 << 20          # bytes a request body may have (413 beyond)
MAX_RUN_ID = 1 << 62
STATES = (*STATUSES, "crashed")
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,200}$"   # printable ASCII, no spaces
POLL = 0.2                  # seconds between looks at the journal for a stream of events
BATCH = 500                 # events read, written out and sent at once by a stream
BATCH_BYTES = 1 << 20       # ... and, past a batch's first event, stored characters of their data
#: Bytes of events all streams hold at once. A stream takes its share before it reads a batch (BUILD
#: times the batch's stored size: its events as objects and written out), then keeps the batch in
#: pieces of PIECE bytes (a write each), each let go and given back once its client took it. A plan
#: event of 10,000 resources is 19 MB of JSON: 100 clients following such a run and reading slowly
#: held 6 GB.
STREAM_BYTES = 256 << 20
BUILD = 8
PIECE = 64 << 10
#: Seconds a stream keeps its batch without its client taking a piece while another stream waits for a
#: share: past them the batch is let go (clients that never read held everyone's share), and made again,
#: in its turn, once the client takes the piece it was sent; the stream goes on where it was.
STALL = 10.0
#: Event streams open at once; more are refused (503, Retry-After), not queued: each holds a batch of
#: events and takes turns of the thread pool, and 200 clients that never read made /healthz wait 16 s.
MOST_STREAMS = 100
WAIT_SHARE = 0.05           # seconds between a waiting stream's asks for its share
KEEPALIVE = 15.0            # seconds of silence before a comment keeps a stream open
#: A 422 names this many problems of the input at most, each text in at most MOST_CHARACTERS.
MOST_DIAGNOSTICS, MOST_CHARACTERS = 100, 2000


# --- bodies -------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        """JSON has no NaN or Infinity (Python's parser reads them, and 1e999 as infinite): refused
        wherever they are, rather than saved into a request file where they would change meaning."""
        where = not_finite(data)
        if where is not None:
            raise ValueError(f"{where}: not a number JSON allows (NaN, Infinity, or too large)")
        return data


def not_finite(tree: Any) -> str | None:
    """The path of the first number in ``tree`` that is not finite, if any (iterative: any depth)."""
    stack: list[tuple[str, Any]] = [("", tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path or "the body"
        if isinstance(node, dict):
            stack.extend((f"{path}.{key}" if path else str(key), value) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", value) for i, value in enumerate(node))
    return None


class WhatIf(_Body):
    """A scenario, as `ordo whatif` takes it."""

    target_down: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list,
                                                                                   max_length=100)
    capacity: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100, description="TARGET:KEY=N, e.g. region-one:vcpu=20")
    without_policy: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list,
                                                                                      max_length=100)


class PlanBody(_Body):
    request: dict[str, Any] | None = Field(
        None, description="A request as in a request file (JSON); none: the project's own request.")
    whatif: WhatIf | None = Field(None, description="Plan this scenario and answer the difference it makes.")


class RunBody(_Body):
    request: dict[str, Any] | None = Field(
        None, description="A request as in a request file (JSON); none: the project's own request.")
    plan: dict[str, Any] | None = Field(
        None, description="A plan saved earlier (`ordo plan --format json`, POST /v1/plans), made from "
                          "`request`; refused unless it is the plan ordo makes from the inputs as they are now.")
    on_failure: Literal[ON_FAILURE] | None = None  # type: ignore[valid-type]
    max_replans: Annotated[int, NOT_BOOL, Strict()] | None = Field(None, ge=0, le=MOST_REPLANS)
    concurrency: Annotated[int, NOT_BOOL, Strict()] | None = Field(None, ge=1, le=MOST_AT_ONCE)
    op_timeout: Annotated[float, NOT_BOOL, Strict()] | None = Field(
        None, ge=LEAST_OP_SECONDS, le=MOST_SECONDS,
        description="Seconds an operation may take when the catalog sets no timeout.")


class EventBody(_Body):
    """An outside event for the operation of a run that waits for it (`wait: {event: NAME}`)."""

    resource: Annotated[str, Field(min_length=1, max_length=200, description="the resource it concerns")]
    event: Annotated[str, Field(min_length=1, max_length=200, description="the event's name")]
    data: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=50, description="values it carries (the operation's declared outputs "
                                                         "take theirs from it); text up to 4096 characters")


class Problem(BaseModel):
    """Why a call was refused: a message, or for a body that does not match, one entry per field
    (its ``loc``); a request document with problems adds its ``diagnostics``."""

    model_config = ConfigDict(extra="allow")
    detail: str | list[dict[str, Any]]


#: What each refusal means; every route documents those it can answer (the OpenAPI description).
REFUSALS = {400: "The request cannot be read (e.g. a bad Content-Length, a body that is not UTF-8).",
            401: "Credentials are needed.",
            403: "A reader may only GET; a request that changes something may not come from another site's "
                 "page; without credentials configured, a request must be addressed to a loopback name.",
            404: "No such run.", 409: "Not in this state, a resource is locked by another run, or the "
                                      "Idempotency-Key was used for another request.",
            413: "The body is over the size limit.",
            415: "The body is compressed (Content-Encoding), or not sent as JSON where a body is read.",
            422: "The input does not match (`detail` names each field) or has problems (`diagnostics`, the "
                 "first 100; `omitted`: how many more).",
            503: "Shutting down, or the journal is busy: try again (Retry-After)."}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": REFUSALS[code]} for code in codes}


# --- the size limit -------------------------------------------------------------------

class _TooLarge(BaseException):  # noqa: N818 - not an Exception: FastAPI would make it "400 cannot parse"
    """The body went over the limit while it was read."""


class BodyLimit:
    """413 for a body over ``limit`` bytes, whether it says its length or not."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _plain(send, 413 if length.isdigit() else 400,
                         f"the body is larger than {self.limit} bytes" if length.isdigit() else "bad Content-Length")
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except _TooLarge:
            if not started:
                await _plain(send, 413, f"the body is larger than {self.limit} bytes")


class SameOrigin:
    """403 for a request that changes something (any method but GET, HEAD and OPTIONS) which a browser
    sent on another site's behalf: its ``Sec-Fetch-Site`` is neither ``same-origin`` nor ``none`` (typed
    by the user), or, from a browser that does not send that, its ``Origin`` names another host than
    the one it was sent to (``Host``, or ``X-Forwarded-Host`` behind a proxy: a page cannot set either
    without the server's leave). The web view asks browsers for Basic credentials, which they send again
    with any form another site posts here; programs send neither header, and are not affected."""

    def __init__(self, app: ASGIApp, so: str) -> None:
        """``so``: the prefix of SO's routes, under which a refusal is in SO's shape, as their others."""
        self.app = app
        self.so = so

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS") \
                and (why := cross_site(Headers(scope=scope))) is not None:
            await _forbidden(send, scope, self.so, why)
            return
        await self.app(scope, receive, send)


async def _forbidden(send: Send, scope: Scope, so: str, why: str) -> None:
    """403 saying ``why``, in SO's shape under its prefix ``so`` (as its routes answer), else ordo's."""
    await (_json(send, 403, request_error(why)) if under(scope.get("path", ""), so) else _plain(send, 403, why))


def cross_site(headers: Headers) -> str | None:
    """Why a request that changes something is refused as sent from another site (:class:`SameOrigin`),
    or None."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        if site in ("same-origin", "none"):
            return None
        return CROSS_SITE + " (its Sec-Fetch-Site header says so)"
    origin = headers.get("origin")
    if origin is None:
        return None
    ours = {_no_default_port(name) for value in [headers.get("host") or "", *headers.getlist("x-forwarded-host")]
            for name in value.split(",")} - {""}
    scheme, sep, host = origin.partition("://")
    if sep and scheme.lower() in ("http", "https") and _no_default_port(host) in ours:
        return None
    return CROSS_SITE + " (its Origin header names another host than this one)"


CROSS_SITE = "a request a browser sent from another site's page may not change anything here"


def under(path: str, prefix: str) -> bool:
    """Whether a request's ``path`` is ``prefix`` or below it (SO's routes: ``service.soapi.PREFIX``)."""
    return path == prefix or path.startswith(prefix + "/")


def _no_default_port(host: str) -> str:
    """``host`` as compared: lower case, without a port of 80 or 443 (a browser's Origin leaves out
    its scheme's own; a proxy may write it)."""
    host = host.strip().lower()
    return host.removesuffix(":80").removesuffix(":443")


class LoopbackHost:
    """403 for a request addressed to any host name but a loopback one (``localhost``, a name under
    ``.localhost``, 127.0.0.0/8, ``::1``), on a server without credentials, where every caller is an
    operator and which listens on loopback only. A page of another site can still reach it: its name,
    resolved again to 127.0.0.1 once the page has loaded (DNS rebinding), makes the browser take this
    server for the page's own origin, so that SameOrigin lets its requests through; they are
    addressed to that name. Programs on this machine use a loopback name, and send no other."""

    def __init__(self, app: ASGIApp, so: str) -> None:
        self.app = app
        self.so = so

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            hosts = [value for key, value in scope.get("headers", ()) if key in (b"host", b"x-forwarded-host")]
            if not all(loopback_host(value) for value in hosts):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _forbidden(send, scope, self.so, NOT_LOOPBACK)
                return
        await self.app(scope, receive, send)


NOT_LOOPBACK = ("this server has no credentials configured, and answers only requests addressed to a loopback "
                "name (localhost, 127.0.0.1, [::1]); to serve another name, configure credentials "
                "(--tokens FILE or ORDO_TOKENS)")


def loopback_host(value: bytes) -> bool:
    """Whether a Host (or X-Forwarded-Host) header names this machine's loopback only, with or without
    a port: ``localhost``, ``*.localhost``, 127.0.0.0/8 or ``[::1]`` (``a, b`` from a chain of
    proxies: each of them)."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return False
    for item in text.split(","):
        host = item.strip().lower()
        if host.startswith("["):
            name, sep, rest = host[1:].partition("]")
            if not sep or (rest and not _port(rest)):
                return False
        else:
            name, colon, port = host.partition(":")
            if colon and not _port(":" + port):
                return False
        name = name.removesuffix(".")
        if name == "localhost" or name.endswith(".localhost"):
            continue
        try:
            if not ipaddress.ip_address(name).is_loopback:
                return False
        except ValueError:
            return False
    return True


def _port(text: str) -> bool:
    """``:PORT``, digits only."""
    return text.startswith(":") and 1 <= len(text) <= 6 and text[1:].isascii() and text[1:].isdigit()


class UniqueKeys:
    """422 for a JSON body in which one object names a key twice (:func:`body_problem`), and 401 for a
    caller without valid credentials under /v1 before its body is read. The body is bounded by
    BodyLimit, around this. SO's routes read their bodies themselves, and refuse it in SO's shape
    (service/soapi.py)."""

    def __init__(self, app: ASGIApp, skip: str) -> None:
        self.app = app
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or under(path, self.skip):
            await self.app(scope, receive, send)
            return
        who = self._caller(scope)
        if who is None or not who.operator:
            if path.startswith("/v1/"):   # every route there asks for credentials: 401 (403 to a reader) before
                # the body is read (the route parsed it first: a 400 for junk, a 422 for a key named twice)
                await (_plain(send, 401, unauthorized(Headers(scope=scope).get("authorization")), CHALLENGE)
                       if who is None
                       else _plain(send, 403, only_operators(who, scope["method"])))
            else:
                await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        unread = _unread(body, Headers(scope=scope))
        if unread is not None:
            await _plain(send, *unread)
            return
        problem = body_problem(body)
        if problem is not None:
            await _plain(send, 422, f"the body: {problem}")
            return

        async def replayed() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replayed, send)

    @staticmethod
    def _caller(scope: Scope) -> Principal | None:
        """Who calls, for whether the body is to be read (a megabyte parsed for anyone, and a 422 where the
        route answers 401 or 403): None without valid credentials; LOCAL when none are configured."""
        app = scope.get("app")
        credentials = getattr(getattr(app, "state", None), "credentials", None)
        if credentials is None or not credentials.configured:
            return LOCAL
        return credentials.authenticate(Headers(scope=scope).get("authorization"))


def body_problem(body: bytes, *, unreadable: bool = False) -> str | None:
    """What makes a JSON body one that ordo does not take: a key named twice in one object (json keeps
    the last; what read the body before ordo may take the first); with ``unreadable``, also a number
    JSON has no form for (NaN, Infinity: Python's json reads them) or a lone surrogate (not Unicode
    text) anywhere, for a body kept whole (SO's: a field nobody reads, kept with a run, made every later
    answer about that run a 500; /v1's fields refuse them with their names). None when there is none,
    or when the body is not JSON at all (what reads it says so)."""
    def constant(name: str) -> Any:
        raise _NotJson(f"{name} is not a JSON number")

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):   # (1e400: read as infinity)
            raise _NotJson(f"{text[:40]} is too large a number (it reads as infinity)")
        return value

    checks = {"parse_constant": constant, "parse_float": number} if unreadable else {}
    try:
        value = json.loads(body, object_pairs_hook=unique_keys, **checks)
        if unreadable:
            json.dumps(value, ensure_ascii=False).encode()
    except (DuplicateKey, _NotJson) as exc:
        return str(exc)
    except UnicodeEncodeError as exc:
        return f"a text holds a lone surrogate ({exc.object[exc.start:exc.end]!r}), which is not Unicode text"
    except RecursionError:   # (what reads it next said only "There was an error parsing the body")
        return f"it is nested more than {MAX_DEPTH} levels deep"
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None   # not JSON: what reads it says where
    except ValueError:   # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        return f"a number has more than {sys.get_int_max_str_digits():,} digits"
    return None


class _NotJson(ValueError):
    pass


def _unread(body: bytes, headers: Headers) -> tuple[int, str] | None:
    """Why a body is not read as JSON at all, with the status to answer: compressed, or not UTF-8. Each
    was "There was an error parsing the body" (a service sweep's). (A body not sent as JSON to a route
    that reads one is said so by the refusal of its validation: a route that reads none ignores it.)"""
    if not body:
        return None
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding != "identity":
        return 415, f"the body's Content-Encoding {clipped(encoding, 40)!r} is not taken: send the JSON as it is"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 400, (f"the body is not UTF-8 text (byte 0x{body[exc.start]:02x} at offset {exc.start:,}): send JSON "
                     "in UTF-8")
    return None


async def _plain(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    await _json(send, status, {"detail": detail}, headers)


async def _json(send: Send, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())]})
    await send({"type": "http.response.body", "body": body})


# --- views -------------------------------------------------------------------------

def run_view(engine: LocalEngine, info: RunInfo) -> dict[str, Any]:
    return {"id": info.id, "url": f"/v1/runs/{info.id}", "events": f"/v1/runs/{info.id}/events",
            "request": info.request, "state": info.effective_status, "created": utc_text(info.created),
            "updated": utc_text(info.updated), "summary": Redactor().tree(info.summary),
            "principal": info.options.get("principal"), **_claims(engine.claims(info.id))}


def _claims(names: list[str]) -> dict[str, list[str]]:
    """A run's claims: the resources, and the targets it adds load to."""
    return {"claims": [n for n in names if claim_target(n) is None],
            "targets": [t for n in names if (t := claim_target(n)) is not None]}


# --- the app ------------------------------------------------------------------------

NO_CREDENTIALS = "a bearer token (or HTTP basic) is needed"

#: Basic first: a browser reads the first scheme of a challenge only, and asks for a name and
#: password only when that is Basic (chromium never did on "Bearer ..., Basic ..."); API clients
#: send their bearer token without waiting to be asked.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="ordo", Bearer realm="ordo"'}


def unauthorized(authorization: str | None) -> str:
    """Why credentials were refused (401), never what was sent: none; a header of another scheme (its first
    word may be the token itself: not shown); or a token, or a name with it, that is not the server's."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if not scheme or (scheme.lower() in ("bearer", "basic") and not value.strip()):
        return NO_CREDENTIALS
    if scheme.lower() not in ("bearer", "basic"):
        return "the Authorization header is neither 'Bearer TOKEN' nor HTTP basic (NAME:TOKEN)"
    return ("the credentials sent are not valid: no token the server was given (--tokens, ORDO_TOKENS), or a "
            "name given with it (HTTP basic) that is not that token's")


def authorize(request: Request) -> Principal:
    """Who calls: 401 without valid credentials, 403 for a reader asking for more than GET."""
    credentials: Credentials = request.app.state.credentials
    if not credentials.configured:
        return LOCAL
    who = credentials.authenticate(request.headers.get("authorization"))
    if who is None:
        raise HTTPException(401, unauthorized(request.headers.get("authorization")), headers=CHALLENGE)
    if request.method not in ("GET", "HEAD") and not who.operator:
        raise HTTPException(403, only_operators(who, request.method))
    return who


def only_operators(who: Principal, method: str) -> str:
    """Why a reader is refused a ``method`` that changes something (403)."""
    return f"{who.name} is a reader: only an operator may {method}"


Who = Annotated[Principal, Depends(authorize)]
RunId = Annotated[int, Path(ge=1, le=MAX_RUN_ID)]


def _guarded(request: Request) -> bool:
    """Whether the path asked for (as routed) depends on ``authorize``."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return dependant is not None and any(dep.call is authorize for dep in dependant.dependencies)


def create_app(engine: LocalEngine, credentials: Credentials, *, max_body: int = MAX_BODY,
               drain: float = 30.0) -> FastAPI:
    metrics = Metrics(engine.run_counts)
    engine.hooks.event = metrics.event
    engine.hooks.planned = metrics.planned

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(engine.start)
        yield
        await run_in_threadpool(engine.shutdown, drain)

    # (no /docs or /redoc: FastAPI's pages load their scripts from a CDN, into this server's origin, where a
    # browser may hold credentials; /openapi.json describes the API to any viewer)
    # (redirect_slashes off: the redirect of `/v1/runs/` to `/v1/runs` was an absolute URL made of the request's
    # Host, whatever a caller wrote there; each route has one name, and another is 404)
    app = FastAPI(title="ordo", version="1", lifespan=lifespan, responses=refusals(400, 403, 413, 415),
                  docs_url=None, redoc_url=None, redirect_slashes=False,
                  description="Orchestration requests planned from models and policies, then carried out. "
                              "See docs/service.md.")
    app.state.credentials = credentials
    streams = app.state.streams = _Streams()
    budget = app.state.stream_budget = _Budget()
    from service.soapi import PREFIX

    app.add_middleware(UniqueKeys, skip=PREFIX)   # inside BodyLimit (added after it: around it)
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(SameOrigin, so=PREFIX)   # (nothing of a cross-site request is read)
    if not credentials.configured:   # (outermost: every caller there is an operator)
        app.add_middleware(LoopbackHost, so=PREFIX)
    _errors(app, engine, PREFIX)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        # (on the event loop, not the thread pool: a liveness probe is answered while reads queue there)
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Not ready (yet, or any more)."}})
    def readyz() -> JSONResponse:
        ready = engine.ready and engine.reachable()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    # Probes that ask with HEAD (some load balancers do) get the same status, without the body.
    @app.head("/healthz", include_in_schema=False)
    async def healthz_head() -> Response:
        return Response(status_code=200)

    @app.head("/readyz", include_in_schema=False)
    def readyz_head() -> Response:
        return Response(status_code=readyz().status_code)

    @app.get("/metrics", tags=["health"], dependencies=[Depends(authorize)], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}}}, **refusals(401)})
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], responses=refusals(401, 403, 422, 503))

    @v1.post("/plans", tags=["plans"], responses={422: {
        "description": "No plan exists (`explanation`), or the input has problems (`detail`, `diagnostics`); "
                       "for a what-if, the difference to a scenario without a plan.",
        "content": {"application/json": {"schema": {"type": "object"}}}}})
    def plan(body: PlanBody) -> Response:
        """The plan (as `ordo plan --format json`), or with `whatif` the difference the scenario makes
        (as `ordo whatif --format json`); 422 with the explanation when no plan exists."""
        if body.whatif is not None:
            w = body.whatif
            try:
                diff, described = engine.whatif(body.request, tuple(w.target_down), tuple(w.capacity),
                                                tuple(w.without_policy))
            except ScenarioError as exc:   # named at the body's field, not the command line's option
                field = exc.option.replace("-", "_")
                given = getattr(w, field)
                at = f"[{exc.index}]" if exc.index is not None else \
                    f"[{given.index(exc.entry)}]" if exc.entry in given else ""
                raise OrdoError(f"whatif.{field}{at}: {exc.said}") from None
            answer = {**diff.to_dict(), "scenario": described}
            return JSONResponse(answer, status_code=200 if diff.other.has_plan else 422)
        outcome = engine.plan(body.request)
        if outcome.plan is None:
            raise NoPlan(outcome)
        return Response(outcome.plan.to_json(), media_type="application/json")

    @v1.post("/runs", status_code=202, tags=["runs"], responses={**refusals(409), 422: {
        "description": "No plan exists (`explanation`), or the input has problems (`detail`, `diagnostics`).",
        "content": {"application/json": {"schema": {"type": "object"}}}}})
    def submit(body: RunBody, who: Who,
               idempotency_key: Annotated[str | None, Header(pattern=IDEMPOTENCY_KEY)] = None) -> JSONResponse:
        """Plan a request (or take a saved plan) and carry it out; 202 once the run is in the journal.
        The same Idempotency-Key answers with the same run."""
        accepted = engine.submit(Submission(**body.model_dump()), who.name, idempotency_key)
        headers = {"Location": f"/v1/runs/{accepted.run}"}
        if accepted.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse({"id": accepted.run, "url": f"/v1/runs/{accepted.run}",
                             "events": f"/v1/runs/{accepted.run}/events"}, status_code=202, headers=headers)

    @v1.get("/runs", tags=["runs"])
    def list_runs(state: Annotated[Literal[STATES] | None, Query()] = None,  # type: ignore[valid-type]
                  offset: Annotated[int, Query(ge=0, le=MAX_RUN_ID)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        """Runs, newest first, optionally in one state."""
        found, total = engine.runs_page(state, offset, limit)
        return {"runs": [run_view(engine, r) for r in found], "total": total, "offset": offset, "limit": limit}

    @v1.get("/runs/{run_id}", tags=["runs"], responses=refusals(404))
    def get_run(run_id: RunId) -> dict[str, Any]:
        return run_view(engine, engine.run(run_id))

    @v1.post("/runs/{run_id}/abort", status_code=202, tags=["runs"], responses=refusals(404, 409))
    def abort(run_id: RunId, who: Who) -> dict[str, Any]:
        """Stop a run once its operations in flight finish, or close one that waits; nothing is undone."""
        return {"id": run_id, "url": f"/v1/runs/{run_id}", "message": engine.abort(run_id, who.name)}

    @v1.post("/runs/{run_id}/resume", status_code=202, tags=["runs"], responses=refusals(404, 409))
    def resume(run_id: RunId, who: Who) -> dict[str, Any]:
        """Carry on a run that crashed, was interrupted, or fell out (once its cause is fixed)."""
        engine.resume(run_id, who.name)
        return {"id": run_id, "url": f"/v1/runs/{run_id}", "events": f"/v1/runs/{run_id}/events"}

    @v1.post("/runs/{run_id}/events", status_code=202, tags=["runs"], responses=refusals(404, 409))
    def deliver(run_id: RunId, body: EventBody, who: Who) -> dict[str, Any]:
        """Deliver an outside event (a PNF's registration, a controller's callback) to the run's operation
        that waits for it; 409 when nothing waits for it now, the run has ended or the deadline passed,
        422 for a resource or event the run does not wait for. The same event again writes nothing."""
        from executor.runs import deliver_event

        engine.run(run_id)  # 404
        message = deliver_event(engine.project, engine.path, run_id, body.resource, body.event, body.data, who.name)
        return {"id": run_id, "url": f"/v1/runs/{run_id}", "message": message}

    @v1.get("/runs/{run_id}/events", tags=["runs"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, **refusals(404)})
    async def events(request: Request, run_id: RunId,
                     last_event_id: Annotated[int | None, Header(ge=0, le=MAX_RUN_ID)] = None,
                     since: Annotated[int, Query(ge=0, le=MAX_RUN_ID)] = 0) -> StreamingResponse:
        """The run's journal events as Server-Sent Events (id: the journal's seq). Reconnecting with
        Last-Event-ID (or ?since=SEQ) carries on after that event. The stream ends with the run."""
        await run_in_threadpool(engine.run, run_id)  # 404 before the stream starts
        start = last_event_id if last_event_id is not None else since
        slot = streams.take()
        if slot is None:
            raise HTTPException(503, f"{MOST_STREAMS} event streams are open, the most this server serves at once: "
                                     "try again later", headers={"Retry-After": "5"})
        return StreamingResponse(_held(slot, _stream(engine, request, run_id, start, budget)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @v1.get("/state", tags=["state"])
    def state() -> dict[str, Any]:
        """What the journal recorded of each resource (the observed inventory plans start from)."""
        return {"resources": {name: record.model_dump(mode="json", exclude_defaults=True)
                              for name, record in engine.state().items()}}

    app.include_router(v1)
    from service.soapi import so_http_errors, so_router  # they depend on authorize, here
    from service.web import web_router

    app.include_router(so_router(engine))
    so_http_errors(app)
    app.include_router(web_router(engine))
    return app


class _Streams:
    """The event streams open (``MOST_STREAMS`` at most): a slot is taken before a stream's response,
    and given back when the stream ends, or when it never started (the client gone first: the slot
    goes with the stream that held it)."""

    def __init__(self) -> None:
        self.open = 0
        self._lock = threading.RLock()   # (a slot collected inside take() gives itself back on the same thread)

    def take(self) -> _Slot | None:
        with self._lock:
            if self.open >= MOST_STREAMS:
                return None
            self.open += 1
            return _Slot(self)

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


class _Slot:
    def __init__(self, streams: _Streams) -> None:
        self._streams: _Streams | None = streams

    def free(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams.give_back()

    def __del__(self) -> None:
        self.free()


async def _held(slot: _Slot, stream: AsyncIterator[str]) -> AsyncIterator[str]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        slot.free()


async def _goes_on(engine: LocalEngine, info: RunInfo) -> bool:
    """A run on Temporal whose server stopped following it (``executor.runs.unfollowed``): its workflow
    goes on, and writes its end (a stream ended early, at the server's death or restart). One whose
    workflow is gone is ended by a look."""
    return info.options.get("engine") == "temporal" and await run_in_threadpool(unfollowed, engine, info)


class _Share:
    """A stream's share of the budget: the bytes it holds, the pieces of its batch still to send (None
    while it holds none, or once they were let go), and when its client last took a piece
    (``time.monotonic``)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.pieces: deque[bytes] | None = None
        self.moved = 0.0


class _Budget:
    """The bytes of events all streams hold at once (``STREAM_BYTES``). Shares of large events (more
    than a batch of small ones takes) are granted in the order they were asked for, the others whenever
    they fit; one larger than the whole waits until it is alone and is held as the whole."""

    def __init__(self, most: int | None = None) -> None:
        self.most = STREAM_BYTES if most is None else most
        self.held = 0
        self._shares: set[_Share] = set()
        self._waiting: list[_Share] = []
        self._lock = threading.Lock()

    def hold(self, share: _Share, n: int, now: float) -> bool:
        """``share`` to hold ``n`` bytes now: less is always granted; more if it fits and no stream
        asked before it (else it waits in line: False)."""
        n = min(n, self.most)
        with self._lock:
            if n > share.bytes:
                first = not self._waiting or self._waiting[0] is share or n <= BATCH_BYTES * BUILD
                if not first or self.held - share.bytes + n > self.most:
                    if share not in self._waiting:
                        self._waiting.append(share)
                    return False
                if share in self._waiting:
                    self._waiting.remove(share)
            self.held += n - share.bytes
            share.bytes, share.moved = n, now
            if n:
                self._shares.add(share)
            else:
                self._shares.discard(share)
            return True

    def leave(self, share: _Share) -> None:
        """The stream ended: its share given back, its place in line left."""
        with self._lock:
            self._let_go(share)
            if share in self._waiting:
                self._waiting.remove(share)

    def drop_stalled(self, now: float) -> None:
        """Let go of the batches of streams whose clients took nothing for ``STALL`` seconds (asked by a
        stream that waits): their shares are given back, and each makes its batch again, in its turn,
        once its client takes the piece it was sent."""
        with self._lock:
            for share in [s for s in self._shares if s.pieces is not None and now - s.moved >= STALL]:
                self._let_go(share)

    def _let_go(self, share: _Share) -> None:
        """(under the lock) ``share``'s bytes given back, its batch let go."""
        self.held -= share.bytes
        share.bytes, share.pieces = 0, None
        self._shares.discard(share)


def _batch(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """How many of these events (seq, stored size) a batch reads, and their stored size: BATCH at
    most, and past the first no more than BATCH_BYTES."""
    count = total = 0
    for _, size in sizes[:BATCH]:
        if count and total + size > BATCH_BYTES:
            break
        count, total = count + 1, total + size
    return count, total


def _next_events(engine: LocalEngine, run_id: int, seq: int, count: int) -> tuple[list[bytes], int]:
    """The run's next ``count`` events after ``seq`` as Server-Sent Events, in pieces of PIECE bytes,
    and the last one's seq (``seq`` when there are none): read and written out in a thread."""
    batch = engine.events(run_id, seq, count)
    last = batch[-1].seq if batch else seq
    text = "".join(f"id: {ev.seq}\nevent: {ev.kind}\ndata: {json.dumps(ev.as_dict(), sort_keys=True)}\n\n"
                   for ev in batch)
    del batch
    data = text.encode()
    del text
    return [data[at:at + PIECE] for at in range(0, len(data), PIECE)], last


def _same_start(again: list[bytes], sent: int, made: Any, total: int) -> bool:
    """Whether a batch made again (``again``, in pieces) is the one whose first ``sent`` bytes were sent
    (``made``: their sha256) and that had ``total`` bytes. (Whole pieces were sent: ``sent`` is a
    multiple of PIECE.)"""
    start = hashlib.sha256()
    for piece in again[:sent // PIECE]:
        start.update(piece)
    return start.digest() == made.digest() and sum(len(piece) for piece in again) == total


async def _turn(budget: _Budget, share: _Share, n: int, request: Request) -> bool | None:
    """One ask for ``n`` bytes of the budget: True, granted; None, the client is gone; False, not yet
    (the batches of streams that stalled let go, and WAIT_SHARE waited)."""
    if budget.hold(share, n, time.monotonic()):
        return True
    if await request.is_disconnected():
        return None
    budget.drop_stalled(time.monotonic())
    await asyncio.sleep(WAIT_SHARE)
    return False


async def _stream(engine: LocalEngine, request: Request, run_id: int, seq: int,
                  budget: _Budget | None = None) -> AsyncIterator[bytes | str]:
    """A run's events, a batch at a time, written in pieces of PIECE bytes (a batch of small events in
    one: a client gone mid-batch failed each of its writes, and asyncio logged a line for each), within
    the server's budget of bytes held by streams; no piece after the client is gone."""
    budget = budget if budget is not None else _Budget()
    share = _Share()
    try:
        async for chunk in _batches(engine, request, run_id, seq, budget, share):
            yield chunk
    finally:
        budget.leave(share)


async def _batches(engine: LocalEngine, request: Request, run_id: int, seq: int, budget: _Budget,
                   share: _Share) -> AsyncIterator[bytes | str]:
    quiet = 0.0
    while True:
        sizes = await run_in_threadpool(engine.event_sizes, run_id, seq, BATCH)
        if sizes:
            count, size = _batch(sizes)
            # (between two events: a keep-alive comment while it waits; a proxy cut a stream silent for a minute)
            waited = 0.0
            while not (granted := await _turn(budget, share, size * BUILD, request)):
                if granted is None:
                    return
                waited += WAIT_SHARE
                if waited >= KEEPALIVE:
                    waited = 0.0
                    yield ": keep-alive\n\n"
            pieces, last = await run_in_threadpool(_next_events, engine, run_id, seq, count)
            sent, made = 0, hashlib.sha256()
            left = total = sum(len(piece) for piece in pieces)
            share.pieces = deque(pieces)
            del pieces
            while left:
                if share.pieces is None:
                    # let go while its client took nothing (others waited): its share taken again in turn, the
                    # batch made again, and sent on from where it was, if it is made as it was. (At most once
                    # for each piece its client took: a client slower than a piece in STALL seconds has its
                    # batch made again for every piece while others wait, one at a time for a large event.
                    # Ending such a stream after a few left its client without the event for good: each
                    # connection started it again and was ended again, a review's.)
                    while not (granted := await _turn(budget, share, size * BUILD, request)):
                        if granted is None:
                            return
                    again, _ = await run_in_threadpool(_next_events, engine, run_id, seq, count)
                    if not _same_start(again, sent, made, total):
                        return   # (the client carries on with Last-Event-ID)
                    share.pieces = deque(again[sent // PIECE:])
                    del again
                budget.hold(share, min(share.bytes, left), time.monotonic())
                piece = share.pieces.popleft()
                yield piece
                sent, left = sent + len(piece), left - len(piece)
                made.update(piece)
                share.moved = time.monotonic()
                if await request.is_disconnected():
                    return
            seq = last
            share.pieces = None
            budget.hold(share, 0, time.monotonic())
            quiet = 0.0
            continue
        info = await run_in_threadpool(engine.run, run_id)
        if info.effective_status != "running" and not engine.driving(run_id) and not await _goes_on(engine, info):
            if not await run_in_threadpool(engine.events, run_id, seq, 1):
                return  # the run is over (or waits for a decision) and everything was sent
            continue
        if engine.stopping and not engine.stops_with_server(run_id):
            return   # the server stops, the run goes on elsewhere (another process's, a Temporal workflow): a
            # client carries on with Last-Event-ID (it held the server's exit until uvicorn cut it, a traceback)
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL)
        quiet += POLL
        if quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"


def _errors(app: FastAPI, engine: LocalEngine, so: str) -> None:
    """Library errors as answers: the input's problems 422, unknown ids 404, conflicts 409 (``so``: the
    prefix of SO's routes, whose refused parameters are answered in SO's shape)."""

    def public(exc: Exception) -> str:
        return str(exc).replace(f"{engine.path}: ", "")  # the server's own paths are not the caller's business

    # (a request is kept as a file beside the journal: its problems name that file relative to the folder)
    # (absolute, and never the root: '/' or './' taken out of a text changed the caller's own words)
    folders = sorted({f"{where}{os.sep}" for folder in (engine.path.parent, engine.root)
                      if (where := os.path.abspath(folder)) != os.sep}, key=len, reverse=True)

    # The file the server keeps a request in (service.engine's _request_file) is no file of the caller's, nor
    # is it kept when refused: its problems are the request's, at their paths (its lines are those of the YAML
    # the server wrote). Named by the folder's own forms: absolute, or from the project's folder (the default
    # journal's, ".ordo/requests/..."), not by any text of that shape (the caller's words are theirs).
    kept_in = os.path.abspath(engine.path.parent / "requests")
    forms = {kept_in, os.path.relpath(kept_in, os.path.abspath(engine.root))}
    kept = re.compile("(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) +
                      rf"){re.escape(os.sep)}[0-9a-f]{{32}}\.yaml")

    def shown(text: str) -> str:
        if text:
            text = kept.sub("request", text)
            for folder in folders:
                text = text.replace(folder, "")
        return text

    def located(d: Diagnostic) -> dict[str, Any]:
        ours = kept.fullmatch(d.file or "") is not None
        return {"file": shown(d.file), "line": None if ours else d.line, "column": None if ours else d.column}

    def answer(code: int, detail: str, /, **extra: Any) -> JSONResponse:
        return JSONResponse({"detail": detail, **extra}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        """As FastAPI answers, each problem with its field, without the input it echoes (the caller
        sent it: a value under a secret's name came back in clear, a 100,000-character name whole,
        and NaN or Infinity made the answer a 500). On a path that asks
        for credentials, only to a caller who has them: FastAPI reads a body (a malformed one fails
        there) before it runs the path's dependencies, ``authorize`` among them."""
        if _guarded(request):
            try:
                authorize(request)
            except HTTPException as refused:
                return await request.app.exception_handlers[StarletteHTTPException](request, refused)
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        if under(request.url.path, so):   # SO's shape, as its routes'
            named = [f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors[:20]]
            return JSONResponse(request_error("; ".join(named)[:2000]), status_code=400)
        kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if any(tuple(e["loc"]) == ("body",) and e["type"] != "missing" for e in errors) \
                and kind != "application/json" and not kind.endswith("+json"):   # (a body missing is said so)
            # a body the route reads, not sent as JSON, so not read as JSON: "Input should be a valid dictionary"
            # said nothing of why (JSON sent as text/plain, a form's type, none: a service sweep's)
            sent = f"as {clipped(kind, 60)!r}" if kind else "without a Content-Type"
            return JSONResponse({"detail": f"the body is sent {sent}: send it as application/json"}, status_code=415)
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(DiagnosticsError)
    def diagnostics(request: Request, exc: DiagnosticsError) -> JSONResponse:
        """The first MOST_DIAGNOSTICS problems, each text cut at MOST_CHARACTERS, and how many
        more (``omitted``): a body of a few hundred KB can have problems enough for 10 MB."""
        found, most = exc.diagnostics, MOST_CHARACTERS
        return answer(422, "the input has problems", omitted=max(0, len(found) - MOST_DIAGNOSTICS), diagnostics=[
            {**located(d), "path": clipped(d.path, most),
             "summary": clipped(shown(d.summary), most), "detail": clipped(shown(d.detail), most)}
            for d in found[:MOST_DIAGNOSTICS]])

    @app.exception_handler(ProjectBroken)
    def broken(request: Request, exc: ProjectBroken) -> JSONResponse:
        """The project's own files have problems: 503, the server's to mend, not the caller's (the same
        problems as a 422 lists); said in the server's log (``ProjectBroken.logged``)."""
        exc.logged()
        answered = diagnostics(request, exc)
        body = json.loads(answered.body)
        body["detail"] = ("the project's own files have problems: the server's configuration, which its operator "
                          "must mend")
        return JSONResponse(body, status_code=503)

    @app.exception_handler(NoPlan)
    def no_plan(request: Request, exc: NoPlan) -> JSONResponse:
        explanation = exc.outcome.explanation
        return answer(422, "no plan exists" if exc.outcome.status != "timeout" else "the solver found no plan in time",
                      status=exc.outcome.status, explanation=explanation.to_dict() if explanation else None)

    @app.exception_handler(UnknownRun)
    def unknown(request: Request, exc: UnknownRun) -> JSONResponse:
        return answer(404, public(exc))

    @app.exception_handler(ClaimError)
    def locked(request: Request, exc: ClaimError) -> JSONResponse:
        return answer(409, f"Locked instance: {public(exc)}")

    @app.exception_handler(Unavailable)
    def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": public(exc)}, status_code=503, headers={"Retry-After": "5"})

    for kind in (Conflict, ExecutionError):
        app.add_exception_handler(kind, lambda request, exc: answer(409, public(exc)))

    @app.exception_handler(JournalError)
    def journal(request: Request, exc: JournalError) -> JSONResponse:
        engine.reopen()   # (a database restarted: the next request reads on a connection of its own)
        return JSONResponse({"detail": public(exc)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(PoliciesChanged)
    def changed(request: Request, exc: PoliciesChanged) -> JSONResponse:   # a policy file being written: again
        return JSONResponse({"detail": public(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(TemporalError)
    def temporal(request: Request, exc: TemporalError) -> JSONResponse:   # not the request's fault: later
        return JSONResponse({"detail": public(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(OrdoError)
    def other(request: Request, exc: OrdoError) -> JSONResponse:
        return answer(422, public(exc))
