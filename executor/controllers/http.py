"""HTTP (REST) controller: one configured request per operation.

Like ONAP SO's SDN-C and APP-C adapters, each lifecycle operation maps to a
templated HTTP request, and the JSON answer to the operation's outputs. Only
the standard library is used (urllib); proxies from the environment
(``HTTP_PROXY``, ``NO_PROXY``) apply; redirects are not followed.

Configuration (``controllers.NAME.config`` in the catalog)::

    base_url: http://127.0.0.1:8181/restconf          # required
    headers: {Authorization: "Bearer {env[SDNC_TOKEN]}"}  # optional, sent on every call; values are templates
    timeout: 10                                        # seconds per call (default 30); a smaller request.timeout wins
    transient_status: [408, 429, 500, 502, 503, 504]   # the default; these raise TransientError
    refused_status: [507]                              # default []; PermanentError(scope="target")
    ca_bundle: certs/ca.pem                            # optional: the CAs to trust for https (default: the system's)
    client_cert: certs/ordo.pem                        # optional: a client certificate (PEM; with its key unless
    client_key: certs/ordo.key                         #   the file holds both); paths relative to the project
    operations:
      assign:                                          # an operation of the type's lifecycle
        method: POST                                   # GET, POST, PUT, PATCH, DELETE (default POST)
        url: "/networks/{resource}"                    # required; appended to base_url (or an absolute URL)
        body: {name: "{resource}", subnet: {cidr: "{inputs[cidr]}"}}  # optional (default: the whole request)
        outputs: {network_id: "network.id"}            # optional: output name -> dotted path in the answer
      default: {method: POST, url: "/{type}/{resource}/{operation}"}  # for operations not listed
    observe:                                           # optional; without it observe() knows nothing
      method: GET                                      # (default GET)
      url: "/{type}/{resource}"
      state: state                                     # dotted paths in the answer (these are the defaults)
      target: target
      attributes: attributes

Templates (url, header values, body strings) are ``str.format`` strings over
``resource, type, operation, key, run, target, attempt, from, to`` and
``inputs`` (a dict: ``{inputs[cidr]}``) and ``env`` (environment variables,
``{env[SDNC_TOKEN]}``: read when the controller is made, an unset one is a
ConfigError). Values put into a URL are percent-quoted ("/", "?" and "#"
included), and a value "." or ".." there is refused (PermanentError, not
sent): it would change the path; None renders as "". A body string that is exactly one field
(``"{inputs}"``, ``"{attempt}"``) whose value is not a string is replaced by
the value itself, keeping its JSON type. A body of ``null`` sends no body; with
no ``body`` the whole request (:meth:`OperationRequest.as_dict`) is sent,
except for GET. Every call carries ``Idempotency-Key: <request.key>``.

Answers: 2xx gives the outputs (the ``outputs`` paths if configured, else the
JSON object as a whole); a status in ``transient_status`` raises
TransientError (``applied`` unknown, except 429: not applied); one in
``refused_status`` raises PermanentError with scope "target"; any other
raises PermanentError (not applied, except an answer below 400 to a call that
changes something, unless listed: a redirect, not followed, may say it was
done; its effect is unknown). Interim answers (1xx but 101) are read past to the final one.
A refused connection is a TransientError that was not
applied; no answer in time is a TransientError whose effect is unknown. A
server certificate that does not verify (or another TLS handshake failure) is
a PermanentError that was not applied, saying what failed.

Secrets: the values read from ``{env[...]}`` and those of secret-looking
headers (Authorization, Cookie, X-Auth-Token, X-API-Key ...) are masked
wherever they appear (:mod:`executor.redact`); URLs in messages have their
query values and passwords masked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import string
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from executor.controllers.base import (
    MAX_ANSWER_BYTES,
    ConfigError,
    ControllerContext,
    ControllerError,
    Observation,
    OperationRequest,
    PermanentError,
    TransientError,
    answer_json,
    check_keys,
    seconds,
    settings,
)
from executor.redact import scrub, secret_name

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FIELDS = ("resource", "type", "operation", "key", "run", "target", "attempt", "from", "to", "inputs", "env")
DEFAULT_TIMEOUT = 30.0
DEFAULT_TRANSIENT = (408, 429, 500, 502, 503, 504)
SNIPPET = 200  # characters of an answer's body quoted in error messages
DRAINED = 64 * 1024  # bytes of an error answer read, at most (a message quotes its start)

_TOP_KEYS = ("base_url", "headers", "timeout", "transient_status", "refused_status", "operations", "observe",
             "ca_bundle", "client_cert", "client_key")
_OPERATION_KEYS = ("method", "url", "body", "outputs")
_OBSERVE_KEYS = ("method", "url", "body", "state", "target", "attributes")
_FORMATTER = string.Formatter()
_MISSING = object()


class _UnknownField(Exception):
    """A template names a field the call's values lack."""

    def __init__(self, field: str, template: str) -> None:
        super().__init__(field)
        self.field = field
        self.template = template


class _DotSegment(Exception):
    """A value put into a URL is "." or "..", which would change the path."""

    def __init__(self, field: str, value: str, template: str) -> None:
        super().__init__(field)
        self.field = field
        self.value = value
        self.template = template


@dataclass(frozen=True)
class _Call:
    """One configured request: an operation's, or observe's."""

    where: str                 # the config path, for messages: "operations.assign"
    method: str
    url: str
    body: Any = _MISSING       # a template tree; _MISSING: the default body
    outputs: dict[str, str] | None = None
    state: str = "state"
    target: str = "target"
    attributes: str = "attributes"


class _Watch:
    """Shuts a call's connection down at the call's deadline, so that its timeout bounds the whole
    answer, the status line and headers too: the socket's own timeout bounds each read, and a server
    sending a header's byte now and then held a call of 5 s for a minute (a sweep's). The body's
    reads check the deadline themselves (``_pieces``); this ends a read that waits past it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._over = False

    def start(self, conn: http.client.HTTPConnection) -> None:
        """Watch ``conn`` from before it connects (a proxy's answer to CONNECT is read in ``connect``)."""
        with self._lock:
            if self._over or self._timer is not None:
                return
            self._conn = conn
            self._fire_in(max(self.deadline - time.monotonic(), 0.0))

    def _fire_in(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def hold(self, sock: socket.socket) -> None:
        """The connected socket (urllib drops the connection's reference to it once the answer began)."""
        with self._lock:
            if not self._over:
                self._sock = sock

    def _fire(self) -> None:
        with self._lock:
            sock = self._sock or (self._conn.sock if self._conn is not None else None)
            if self._over:
                return
            if sock is None:   # (still connecting: bounded by the socket's timeout; looked at again soon)
                self._fire_in(0.05)
                return
            self.fired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def end(self) -> None:
        with self._lock:
            self._over = True
            if self._timer is not None:
                self._timer.cancel()
            self._conn = self._sock = None


def _watched(base: type[http.client.HTTPConnection], req: urllib.request.Request) -> Any:
    """A connection class of ``base`` whose socket the request's ``_Watch`` (``req.watch``) watches."""
    watch = getattr(req, "watch", None)

    def connection(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        conn = base(*args, **kwargs)
        conn.response_class = _FinalAnswer
        connect = conn.connect

        def connected() -> None:
            if watch is not None:
                watch.start(conn)
            connect()
            if watch is not None and conn.sock is not None:
                watch.hold(conn.sock)

        conn.connect = connected  # type: ignore[method-assign]
        return conn

    return connection


class _FinalAnswer(http.client.HTTPResponse):
    """An answer read past the interim ones (1xx but 101: 102 Processing, 103 Early Hints, which
    proxies send) to the final one, as HTTP says: http.client skips 100 only, and took a 103 for the
    answer, the operation failed as not applied where the controller went on to carry it out. At most
    MAX_INTERIM of them; each one's headers are bounded as any answer's are."""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INTERIM):
            version, status, reason = super()._read_status()
            if not 101 < status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)   # (the interim answer's headers, read and left)
        raise http.client.HTTPException(f"more than {MAX_INTERIM} interim (1xx) answers")


#: The interim answers (1xx) read before a final one, at most.
MAX_INTERIM = 20


class _HTTP(urllib.request.HTTPHandler):
    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_watched(http.client.HTTPConnection, req), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_watched(http.client.HTTPSConnection, req), req, context=self._context,
                            check_hostname=self._check_hostname)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report 3xx answers as they are instead of following them."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class HttpController:
    """Carries out operations as HTTP requests configured per operation."""

    def __init__(self, name: str, config: dict[str, Any], context: ControllerContext) -> None:
        self.name = name
        self.context = context
        tls = self._configure(config, Path(context.root))
        self.env = _environment(config)
        context.redactor.add_values(self.env.values())
        self._opener = urllib.request.build_opener(_NoRedirect(), _HTTP(), _HTTPS(context=tls))

    @classmethod
    def check_config(cls, config: dict[str, Any], root: Path) -> None:
        """ConfigError for what making the controller of ``config`` would refuse (``ordo check``), but
        the environment variables it reads (``{env[NAME]}``: the machine's that runs it)."""
        cls.__new__(cls)._configure(config, root)

    def _configure(self, config: dict[str, Any], root: Path) -> ssl.SSLContext:
        """The settings of ``config`` (ConfigError naming the field that is wrong); its TLS context."""
        config = settings(config, _TOP_KEYS)
        base_url = config.get("base_url")
        if base_url is None or base_url == "":
            raise ConfigError("config.base_url: required")
        if not isinstance(base_url, str) or not re.match(r"https?://[^/]", base_url):
            raise ConfigError(f"config.base_url: expected an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.headers = _headers(config.get("headers"), "config.headers")
        self.timeout = seconds(config.get("timeout", DEFAULT_TIMEOUT), "config.timeout")
        self.transient_status = _statuses(config.get("transient_status", DEFAULT_TRANSIENT), "config.transient_status")
        self.refused_status = _statuses(config.get("refused_status", []), "config.refused_status")
        both = self.transient_status & self.refused_status
        if both:
            raise ConfigError(f"config.refused_status: {sorted(both)} also in transient_status (a status is one or "
                              "the other)")
        operations = config.get("operations", {})
        if not isinstance(operations, dict):
            raise ConfigError("config.operations: expected a mapping of operation name -> request")
        self.operations = {str(op): _call(spec, f"operations.{op}", observe=False) for op, spec in operations.items()}
        observe = config.get("observe")
        self.observe_call = None if observe is None else _call(observe, "observe", observe=True)
        return _tls(config, root)

    # -- the controller interface ------------------------------------------------------------

    def execute(self, request: OperationRequest) -> dict[str, Any]:
        """Send the operation's request; return the outputs picked from the answer."""
        call = self.operations.get(request.operation) or self.operations.get("default")
        if call is None:
            raise ConfigError(f"controller '{self.name}': config.operations: no entry for operation "
                              f"'{request.operation}' and no 'default'")
        timeout = self.timeout if request.timeout is None else min(self.timeout, request.timeout)
        default_body = None if call.method == "GET" else request.as_dict()
        values = {**_values(request), "env": self.env}
        status, body, method, url = self._send(call, values, request.operation, timeout, default_body)
        if not 200 <= status < 300:
            raise self._status_error(status, method, url, body)
        answer = self._json(body, method, url, status)
        if call.outputs is None:
            return answer if isinstance(answer, dict) else {}
        outputs = {}
        for out, path in call.outputs.items():
            value = _pick(answer, path)
            if value is _MISSING:
                raise PermanentError(
                    f"controller '{self.name}': {method} {url} answered {status} without '{path}' "
                    f"(output '{out}' of operation '{request.operation}'): {self._snippet(body)}", applied=True)
            outputs[out] = value
        return outputs

    def observe(self, resource: str, type: str, request: OperationRequest | None = None) -> Observation:
        """The resource as the controller reports it; 404 means it does not exist."""
        call = self.observe_call
        if call is None:
            return Observation(exists=True, state=None, applied=None)
        values = _values(request) if request is not None else {}
        values.update(resource=resource, type=type, env=self.env)
        status, body, method, url = self._send(call, values, "observe", self.timeout, None)
        if status == 404:
            return Observation(exists=False)
        if not 200 <= status < 300:
            raise self._status_error(status, method, url, body)
        answer = self._json(body, method, url, status)
        state, target, attributes = (_pick(answer, p) for p in (call.state, call.target, call.attributes))
        if attributes is _MISSING or attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise PermanentError(f"controller '{self.name}': {method} {url}: '{call.attributes}' is not an "
                                 f"object: {self._snippet(body)}", applied=None)
        applied = None
        keys = answer.get("applied_keys") if isinstance(answer, dict) else None
        if request is not None and isinstance(keys, list):
            applied = request.key in keys
        return Observation(exists=True, state=_text(state), target=_text(target), attributes=attributes,
                           applied=applied)

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""

    # -- one request ---------------------------------------------------------------------------

    def _send(self, call: _Call, values: dict[str, Any], what: str, timeout: float,
              default_body: dict[str, Any] | None) -> tuple[int, bytes, str, str]:
        """Send ``call``; return (status, body, method, url). Statuses are returned, not raised;
        a failed exchange raises TransientError."""
        try:
            path = _render(call.url, values, quoted=True, whole=False)
            headers = {k: _render(v, values, quoted=False, whole=False) for k, v in self.headers.items()}
            body = default_body if call.body is _MISSING else _render_tree(call.body, values)
        except _UnknownField as exc:
            raise PermanentError(
                f"controller '{self.name}', operation '{what}': template {exc.template!r} "
                f"(config.{call.where}) names '{{{exc.field}}}', which this call has no value for",
                applied=False) from None
        except _DotSegment as exc:
            raise PermanentError(
                f"controller '{self.name}', operation '{what}': '{{{exc.field}}}' is {exc.value!r}, which in the "
                f"URL {exc.template!r} (config.{call.where}) would be a dot segment and change the path; "
                "refused", applied=False) from None
        self.context.redactor.add_values(
            part for k, v in headers.items() if secret_name(k) for part in (v, v.rpartition(" ")[2]))
        url = path if re.match(r"https?://", path) else f"{self.base_url}/{path.lstrip('/')}"
        shown = scrub(url)
        lower = {k.lower() for k in headers}
        if "accept" not in lower:
            headers["Accept"] = "application/json"
        data = None
        if body is not None:
            try:
                data = json.dumps(body).encode()
            except (TypeError, ValueError) as exc:
                raise PermanentError(f"controller '{self.name}', operation '{what}': body is not JSON: {exc}",
                                     applied=False) from None
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
        if values.get("key") is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
            headers["Idempotency-Key"] = str(values["key"])
        method = call.method
        where = f"controller '{self.name}': {method} {shown}"
        wait = max(timeout, 0.001)
        deadline = time.monotonic() + wait
        watch = _Watch(deadline)
        try:
            answer = self._transport(url, data, headers, method, watch, where, wait)
        except ControllerError as exc:
            if watch.fired and exc.code != "timeout":   # (shut down at the deadline: whatever broke, that is why)
                what = "no whole answer" if exc.code == "truncated" else "no answer"
                raise TransientError(f"{where}: {what} within {wait:g} s", applied=None, code="timeout") from None
            raise
        finally:
            watch.end()
        if watch.fired and 200 <= answer[0] < 300:   # (a body cut short there ends as if whole: not taken)
            raise TransientError(f"{where}: no whole answer within {wait:g} s", applied=None, code="timeout")
        return answer[0], answer[1], method, shown

    def _transport(self, url: str, data: bytes | None, headers: dict[str, str], method: str, watch: _Watch,
                   where: str, wait: float) -> tuple[int, bytes]:
        """The status and body of the answer; the transport's failures as ControllerErrors."""
        deadline = watch.deadline
        try:
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            req.watch = watch  # type: ignore[attr-defined]
            with self._opener.open(req, timeout=wait) as response:
                return response.status, _body(response, deadline, where, wait)
        except urllib.error.HTTPError as exc:
            return exc.code, _drain(exc, deadline)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise PermanentError(f"{where}: TLS: the server's certificate was not accepted: "
                                     f"{reason.verify_message or reason.reason} (the request was not sent; "
                                     "config.ca_bundle names the CA file to trust)", applied=False,
                                     code="tls") from None
            if isinstance(reason, ssl.SSLError):
                raise PermanentError(f"{where}: TLS handshake failed: {reason.reason or reason} (the request was "
                                     "not sent)", applied=False, code="tls") from None
            if isinstance(reason, ConnectionRefusedError):
                raise TransientError(f"{where}: connection refused", applied=False, code="refused") from None
            if isinstance(reason, socket.gaierror):
                raise TransientError(f"{where}: cannot resolve host: {reason}", applied=False,
                                     code="dns") from None
            if isinstance(reason, TimeoutError):
                raise TransientError(f"{where}: no answer within {wait:g} s", applied=None,
                                     code="timeout") from None
            raise TransientError(f"{where}: {reason}", applied=None) from None
        except TimeoutError:
            raise TransientError(f"{where}: no answer within {wait:g} s", applied=None, code="timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{where}: {type(exc).__name__}: {exc}", applied=None) from None
        except ValueError as exc:  # a header value or URL http.client will not send
            raise PermanentError(f"{where}: cannot send: {exc}", applied=False) from None

    def _snippet(self, body: bytes) -> str:
        """The start of an answer's body for a message, masked before it is cut (a secret cut in
        two would not be masked)."""
        return self.context.redactor.excerpt(body.decode("utf-8", "replace"), SNIPPET).strip()

    def _status_error(self, status: int, method: str, url: str, body: bytes) -> ControllerError:
        message = f"controller '{self.name}': {method} {url} answered {status}"
        if body:
            message += f": {self._snippet(body)}"
        if status in self.refused_status:
            return PermanentError(message, scope="target", applied=False, code=str(status))
        if status in self.transient_status:
            return TransientError(message, applied=False if status == 429 else None, code=str(status))
        # a redirect, 101, 304 (none of them listed) is no refusal: the controller may have done it (a 303
        # "done, see there" says it did), so it is observed before it is sent again
        return PermanentError(message, applied=None if status < 400 and method not in ("GET", "HEAD") else False,
                              code=str(status))

    def _json(self, body: bytes, method: str, url: str, status: int) -> Any:
        if not body.strip():
            return {}
        try:
            return answer_json(body)
        except ValueError as exc:
            raise PermanentError(f"controller '{self.name}': {method} {url} answered {status} with invalid JSON "
                                 f"({exc}): {self._snippet(body)}", applied=True) from None


# -- templates --------------------------------------------------------------------------------

def _values(request: OperationRequest) -> dict[str, Any]:
    """The template fields of one request."""
    return {"resource": request.resource, "type": request.type, "operation": request.operation,
            "key": request.key, "run": request.run, "target": request.target, "attempt": request.attempt,
            "from": request.from_state, "to": request.to_state, "inputs": request.inputs}


def _check_template(text: Any, where: str) -> str:
    """ConfigError unless ``text`` is a template naming only known fields."""
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected a string, got {type(text).__name__}")
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ConfigError(f"{where}: bad template {text!r}: {exc}") from None
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if root not in FIELDS:
            raise ConfigError(f"{where}: unknown field '{{{field}}}' in {text!r} "
                              f"(expected one of: {', '.join(FIELDS)})")
        if spec and "{" in spec:
            raise ConfigError(f"{where}: nested fields in a format spec are not supported: {text!r}")
    return text


def _lookup(field: str, values: dict[str, Any], template: str) -> Any:
    try:
        value, _ = _FORMATTER.get_field(field, (), values)
    except (KeyError, IndexError, AttributeError, TypeError):
        raise _UnknownField(field, template) from None
    return value


def _render(template: str, values: dict[str, Any], *, quoted: bool, whole: bool) -> Any:
    """Fill ``template``; ``quoted`` percent-quotes each value, ``whole`` returns a lone field's value as is."""
    parts = list(_FORMATTER.parse(template))
    if whole and len(parts) == 1 and not parts[0][0] and parts[0][1] is not None and not parts[0][2] \
            and not parts[0][3]:
        value = _lookup(parts[0][1], values, template)
        if not isinstance(value, str):
            return value
    out = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        value = _lookup(field, values, template)
        if conversion:
            value = _FORMATTER.convert_field(value, conversion)
        text = "" if value is None else format(value, spec or "")
        if quoted and text in (".", ".."):
            raise _DotSegment(field, text, template)
        out.append(quote(text, safe="") if quoted else text)
    return "".join(out)


def _render_tree(body: Any, values: dict[str, Any]) -> Any:
    if isinstance(body, str):
        return _render(body, values, quoted=False, whole=True)
    if isinstance(body, dict):
        return {k: _render_tree(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_render_tree(v, values) for v in body]
    return body


def _check_tree(body: Any, where: str) -> None:
    if isinstance(body, str):
        _check_template(body, where)
    elif isinstance(body, dict):
        for k, v in body.items():
            _check_tree(v, f"{where}.{k}")
    elif isinstance(body, list):
        for i, v in enumerate(body):
            _check_tree(v, f"{where}[{i}]")


# -- answers ----------------------------------------------------------------------------------

def _pick(data: Any, path: str) -> Any:
    """The value at a dotted path (``network.id``, ``items.0.id``), or _MISSING."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _text(value: Any) -> str | None:
    return None if value is _MISSING or value is None else str(value)


def _body(response: Any, deadline: float, where: str, wait: float) -> bytes:
    """The answer's body: the call's timeout bounds the whole answer (a server sending a byte now
    and then held an operation until the run's own timeout), and at most MAX_ANSWER_BYTES are read."""
    body, whole = _pieces(response, deadline, MAX_ANSWER_BYTES + 1)
    if len(body) > MAX_ANSWER_BYTES:
        raise PermanentError(f"{where}: the answer is larger than {MAX_ANSWER_BYTES:,} bytes", applied=True,
                             code="output")
    if not whole:
        raise TransientError(f"{where}: no whole answer within {wait:g} s", applied=None, code="timeout")
    if getattr(response, "length", None):   # (http.client's read of a body cut short ends as at its end)
        raise TransientError(f"{where}: the answer ended {response.length:,} bytes before its Content-Length",
                             applied=None, code="truncated")
    return body


def _pieces(stream: Any, deadline: float, most: int) -> tuple[bytes, bool]:
    """What ``stream`` gives, read by pieces until its end, ``most`` bytes or ``deadline``; and
    whether its end was reached."""
    pieces: list[bytes] = []
    total = 0
    while total < most and time.monotonic() <= deadline:
        piece = stream.read1(min(64 * 1024, most - total))
        if not piece:
            return b"".join(pieces), True
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces), False




def _drain(exc: urllib.error.HTTPError, deadline: float) -> bytes:
    """The start of an error answer's body (b"" if it cannot be read), what a message quotes: read
    until the call's deadline, at most DRAINED bytes; the connection is closed."""
    try:
        return _pieces(exc, deadline, DRAINED)[0] if exc.fp is not None else b""
    except (OSError, http.client.HTTPException):
        return b""
    finally:
        exc.close()


# -- configuration ----------------------------------------------------------------------------

def _statuses(value: Any, where: str) -> frozenset[int]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list of HTTP status codes")
    for code in value:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigError(f"{where}: {code!r} is not an HTTP status code (100-599)")
    return frozenset(value)


def _headers(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of header name -> value")
    headers = {}
    for name, text in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise ConfigError(f"{where}: {name!r} is not a header name")
        if isinstance(text, int | float) and not isinstance(text, bool):
            text = str(text)
        headers[name] = _check_template(text, f"{where}.{name}")
    return headers


def _call(spec: Any, where: str, *, observe: bool) -> _Call:
    """Validate one request's settings (``operations.NAME`` or ``observe``)."""
    path = f"config.{where}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping with method and url")
    check_keys(spec, _OBSERVE_KEYS if observe else _OPERATION_KEYS, path)
    method = spec.get("method", "GET" if observe else "POST")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ConfigError(f"{path}.method: expected one of {', '.join(METHODS)}, got {method!r}")
    if "url" not in spec:
        raise ConfigError(f"{path}.url: required")
    url = _check_template(spec["url"], f"{path}.url")
    body = spec.get("body", _MISSING)
    if body is not _MISSING:
        _check_tree(body, f"{path}.body")
    outputs = spec.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, dict) or not all(isinstance(v, str) and v for v in outputs.values()):
            raise ConfigError(f"{path}.outputs: expected a mapping of output name -> dotted path in the answer")
        outputs = {str(k): v for k, v in outputs.items()}
    picks = {}
    for key in ("state", "target", "attributes"):
        value = spec.get(key, key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}.{key}: expected a dotted path in the answer")
        picks[key] = value
    return _Call(where=where, method=method.upper(), url=url, body=body, outputs=outputs, **picks)


def _environment(config: dict[str, Any]) -> dict[str, str]:
    """The environment variables the templates read (``{env[NAME]}``), read once; ConfigError if one is unset."""
    names = sorted(set(re.findall(r"\{env\[([^\]{}]+)\]", json.dumps(config))))
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise ConfigError(f"config: environment variable {missing[0]} (read as {{env[{missing[0]}]}}) is not set")
    return {n: os.environ[n] for n in names}


def _no_passphrase() -> str:
    """An encrypted client key's passphrase: none is taken. OpenSSL asked for one on the terminal, from
    `ordo check` and from a run alike (a review's); the load fails instead, saying the key is encrypted."""
    raise ConfigError("config.client_key: the key is encrypted with a passphrase, which ordo does not take: "
                      "give it the key unencrypted (a file only its user may read)")


def _tls(config: dict[str, Any], root: Path) -> ssl.SSLContext:
    """The TLS settings: the system's CAs, or ``ca_bundle``; a client certificate if one is set.
    Relative paths are taken from the project folder."""
    paths = {}
    for key in ("ca_bundle", "client_cert", "client_key"):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ConfigError(f"config.{key}: expected the path of a PEM file")
        path = root / value
        try:
            found = path.is_file()
        except OSError as exc:   # (a name longer than the system takes)
            raise ConfigError(f"config.{key}: cannot be looked up: {exc.strerror or exc}") from None
        if not found:
            raise ConfigError(f"config.{key}: no such file: {path}")
        paths[key] = str(path)
    if "client_key" in paths and "client_cert" not in paths:
        raise ConfigError("config.client_key: set client_cert too (the certificate the key belongs to)")
    try:
        context = ssl.create_default_context(cafile=paths.get("ca_bundle"))
    except ssl.SSLError as exc:
        raise ConfigError(f"config.ca_bundle: cannot read CA certificates from {paths['ca_bundle']}: "
                          f"{exc.reason or exc}") from None
    if "client_cert" in paths:
        try:
            context.load_cert_chain(paths["client_cert"], paths.get("client_key"), password=_no_passphrase)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"config.client_cert: cannot load the client certificate and key: "
                              f"{getattr(exc, 'reason', None) or exc}") from None
    return context
