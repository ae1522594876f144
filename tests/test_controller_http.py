"""The HTTP controller against a fake SDN-C served by http.server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from executor.controllers import (
    ConfigError,
    ControllerContext,
    ControllerError,
    OperationRequest,
    PermanentError,
    TransientError,
    load_adapter,
)
from executor.controllers.http import HttpController


class FakeSdnc(ThreadingHTTPServer):
    """Records every request; answers by the last part of the path.

    POST /networks/NAME: {"network": {"id": "net-NAME"}} and remembers NAME, except
    flaky (503 ``flaky`` times, then as usual), busy (429), broken (500), bad (400), full (507),
    slow (no answer until the test ends), junk (invalid JSON), nan (NaN in it), huge (over 1 MB),
    drip (a few bytes at a time until the test ends), header-drip (its headers so), empty (204),
    list (a JSON list).
    GET /networks/NAME: the remembered network (with the keys applied to it), else 404.
    Anything under /echo answers 200 with what it received.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.networks: dict[str, list[str]] = {}   # name -> idempotency keys applied
        self.flaky = 0
        self.stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeSdnc

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                "body": json.loads(raw) if raw else None}
        self.server.requests.append(seen)
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/echo"):
            return self.reply(200, seen)
        if self.command == "GET":
            if name in self.server.networks:
                return self.reply(200, {"network": {"state": "active", "region": "r1"}, "state": "active",
                                        "attributes": {"mtu": 1500}, "applied_keys": self.server.networks[name]})
            return self.reply(404, {"error": "not found"})
        if name == "flaky" and self.server.flaky > 0:
            self.server.flaky -= 1
            return self.reply(503, {"error": "overloaded"})
        scripted = {"busy": 429, "broken": 500, "bad": 400, "full": 507}
        if name in scripted:
            return self.reply(scripted[name], {"error": f"{name} " + "x" * 300})
        if name == "slow":
            self.server.stop.wait(5)
            return None
        if name == "junk":
            return self.reply(200, raw=b"{not json")
        if name == "nan":
            return self.reply(200, raw=b'{"network": {"id": NaN}}')
        if name == "twice":   # one key twice: json keeps the last
            return self.reply(200, raw=b'{"network": {"id": "a", "id": "b"}}')
        if name == "cut":   # says 100 bytes, sends 12 and closes
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"network": ')
            return None
        if name == "surrogate":   # half of a UTF-16 pair, as UTF-8 bytes would encode it (no text)
            return self.reply(200, raw=b'{"network": {"id": "\xed\xa0\x80"}}')
        if name == "huge":   # an answer past MAX_ANSWER_BYTES
            return self.reply(200, raw=b'{"network": {"id": "' + b"y" * (1 << 20) + b'"}}')
        if name in ("drip", "drip-503"):   # says its length, then sends a few bytes at a time: each read gets some
            self.send_response(200 if name == "drip" else 503)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            while not self.server.stop.wait(0.05):
                self.wfile.write(b" " * 10)
                self.wfile.flush()
            return None
        if name == "header-drip":   # the status line, then a header a byte at a time: each read gets one
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.server.stop.wait(0.05):
                self.wfile.write(b"a")
                self.wfile.flush()
            return None
        if name == "inf":   # a number too large for a float: Python reads it as infinity
            return self.reply(200, raw=b'{"network": {"id": 1e400}}')
        if name in ("hints", "endless-hints"):   # interim answers (102, 103) before the final one
            for status in (102, 103) if name == "hints" else [103] * 50:
                self.wfile.write(b"HTTP/1.1 %d Interim\r\nLink: </x.css>; rel=preload\r\n\r\n" % status)
            if name == "endless-hints":
                return None
        if name == "moved":   # done, and "see there"
            self.send_response(303)
            self.send_header("Location", "/networks/moved-1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if name == "empty":
            return self.reply(204)
        if name == "leak":   # an error that quotes a secret header past its 188th character
            return self.reply(400, raw=b"E" * 188 + self.headers.get("X-Sig", "").encode())
        if name == "list":
            return self.reply(200, [1, 2])
        self.server.networks.setdefault(name, []).append(self.headers.get("Idempotency-Key", ""))
        return self.reply(200, {"network": {"id": f"net-{name}", "vlans": [{"id": 7}]}, "status": "ok"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


@pytest.fixture
def sdnc(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSdnc]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = FakeSdnc()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(resource: str, **changes: Any) -> OperationRequest:
    fields: dict[str, Any] = dict(run="run-1", key=f"k-{resource}", resource=resource, type="network",
                                  operation="assign", from_state="planned", to_state="assigned", target="r1",
                                  inputs={"cidr": "10.0.0.0/24", "vlan": {"id": 7}})
    fields.update(changes)
    return OperationRequest(**fields)


def make(base_url: str, tmp_path: Path, **config: Any) -> HttpController:
    config = {"base_url": base_url, **config}
    config.setdefault("operations", {
        "assign": {"method": "POST", "url": "/networks/{resource}", "outputs": {"network_id": "network.id"}},
        "default": {"method": "POST", "url": "/{type}/{resource}"},
    })
    return HttpController("sdnc", config, ControllerContext(workdir=tmp_path))


@pytest.fixture
def ctl(sdnc: FakeSdnc, tmp_path: Path) -> HttpController:
    return make(sdnc.url, tmp_path, observe={"url": "/networks/{resource}", "target": "network.region"},
                refused_status=[507], timeout=0.3)


def test_registry_finds_the_adapter() -> None:
    assert load_adapter("http") is HttpController


def test_outputs_are_picked_by_path(ctl: HttpController, sdnc: FakeSdnc) -> None:
    assert ctl.execute(request("net1")) == {"network_id": "net-net1"}
    seen = sdnc.requests[-1]
    assert (seen["method"], seen["path"]) == ("POST", "/networks/net1")
    assert seen["headers"]["Idempotency-Key"] == "k-net1"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["body"] == request("net1").as_dict()  # no body template: the whole request


def test_without_outputs_the_whole_object_is_returned(ctl: HttpController) -> None:
    out = ctl.execute(request("net2", operation="create"))  # the default entry
    assert out == {"network": {"id": "net-net2", "vlans": [{"id": 7}]}, "status": "ok"}


def test_empty_and_non_object_answers_give_no_outputs(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"default": {"url": "/networks/{resource}"}})
    assert ctl.execute(request("empty")) == {}
    assert ctl.execute(request("list")) == {}


def test_missing_output_path_is_permanent(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"assign": {"url": "/networks/{resource}",
                                                          "outputs": {"vlan": "network.vlans.0.id",
                                                                      "gw": "network.gateway"}}})
    with pytest.raises(PermanentError, match="without 'network.gateway'") as info:
        ctl.execute(request("net3"))
    assert "output 'gw'" in info.value.message and info.value.applied is True


def test_templates(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url + "/", tmp_path, headers={"X-Run": "{run}/{attempt}", "Authorization": "Basic abc"},
               operations={"assign": {
                   "method": "PUT", "url": "/echo/{type}/{resource}?cidr={inputs[cidr]}",
                   "body": {"name": "{resource}", "subnet": "{inputs[cidr]}", "all": "{inputs}",
                            "vlan": "{inputs[vlan]}", "attempt": "{attempt}", "label": "{resource}-{attempt}",
                            "list": ["{to}", 1, None]}}})
    out = ctl.execute(request("a b/c", attempt=3))
    assert out["method"] == "PUT"
    assert out["path"] == "/echo/network/a%20b%2Fc?cidr=10.0.0.0%2F24"
    assert out["headers"]["X-Run"] == "run-1/3" and out["headers"]["Authorization"] == "Basic abc"
    assert out["headers"]["Idempotency-Key"] == "k-a b/c"
    assert out["body"] == {"name": "a b/c", "subnet": "10.0.0.0/24", "all": {"cidr": "10.0.0.0/24", "vlan": {"id": 7}},
                           "vlan": {"id": 7}, "attempt": 3, "label": "a b/c-3", "list": ["assigned", 1, None]}


def test_get_sends_no_body_and_null_body_sends_none(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"check": {"method": "GET", "url": "/echo/{resource}"},
                                               "remove": {"method": "DELETE", "url": "/echo/{resource}", "body": None}})
    assert ctl.execute(request("n", operation="check"))["body"] is None
    out = ctl.execute(request("n", operation="remove"))
    assert out["method"] == "DELETE" and out["body"] is None and "Content-Type" not in out["headers"]


def test_unknown_input_in_a_template_is_permanent_and_not_applied(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"assign": {"url": "/networks/{inputs[vni]}"}})
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("net1"))
    err = info.value
    assert err.applied is False and not sdnc.requests
    assert "controller 'sdnc'" in err.message and "operation 'assign'" in err.message and "{inputs[vni]}" in err.message


def test_operation_without_entry_is_a_config_error(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"assign": {"url": "/networks/{resource}"}})
    with pytest.raises(ConfigError, match="operation 'delete'"):
        ctl.execute(request("net1", operation="delete"))


def test_503_is_transient_then_succeeds_with_the_same_key(ctl: HttpController, sdnc: FakeSdnc) -> None:
    sdnc.flaky = 2
    for attempt in (1, 2):
        with pytest.raises(TransientError) as info:
            ctl.execute(request("flaky", attempt=attempt))
        assert info.value.applied is None and info.value.code == "503"
        assert "POST" in info.value.message and "/networks/flaky" in info.value.message
        assert "503" in info.value.message and "overloaded" in info.value.message
    assert ctl.execute(request("flaky", attempt=3)) == {"network_id": "net-flaky"}
    assert {r["headers"]["Idempotency-Key"] for r in sdnc.requests} == {"k-flaky"}


def test_429_is_transient_and_not_applied(ctl: HttpController) -> None:
    with pytest.raises(TransientError) as info:
        ctl.execute(request("busy"))
    assert info.value.applied is False and info.value.code == "429"


def test_500_is_transient_and_the_message_is_short(ctl: HttpController) -> None:
    with pytest.raises(TransientError) as info:
        ctl.execute(request("broken"))
    assert info.value.applied is None and "500" in info.value.message
    assert "x" * 200 not in info.value.message and "x" * 150 in info.value.message


def test_400_is_permanent(ctl: HttpController) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("bad"))
    assert info.value.applied is False and info.value.scope == "resource" and info.value.code == "400"


def test_refused_status_blames_the_target(ctl: HttpController) -> None:
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("full"))
    assert info.value.scope == "target" and info.value.applied is False and info.value.code == "507"


def test_interim_answers_are_read_past_to_the_final_one(ctl: HttpController, sdnc: FakeSdnc) -> None:
    """http.client skips 100 only: a 103 Early Hints (proxies send them) was taken for the answer, and
    the operation failed as not applied while the controller carried it out (a controller sweep's)."""
    assert ctl.execute(request("hints")) == {"network_id": "net-hints"}
    with pytest.raises(ControllerError, match="interim") as info:
        ctl.execute(request("endless-hints"))
    assert info.value.applied is None


def test_a_redirect_of_a_change_may_have_been_carried_out(ctl: HttpController) -> None:
    """A 303 to a POST says "done, see there": not followed, and not known not to be applied (it was
    said so: the operation was then sent again without a look)."""
    with pytest.raises(PermanentError, match="answered 303") as info:
        ctl.execute(request("moved"))
    assert info.value.applied is None and info.value.code == "303"


def test_a_status_the_config_lists_is_taken_as_listed(sdnc: FakeSdnc, tmp_path: Path) -> None:
    with pytest.raises(TransientError, match="answered 303"):
        make(sdnc.url, tmp_path, transient_status=[303]).execute(request("moved"))
    with pytest.raises(PermanentError, match="answered 303") as info:
        make(sdnc.url, tmp_path, refused_status=[303]).execute(request("moved"))
    assert info.value.scope == "target" and info.value.applied is False


def test_status_not_listed_is_permanent(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, transient_status=[503])
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("broken"))
    assert info.value.code == "500"


def test_invalid_json_is_permanent(ctl: HttpController) -> None:
    with pytest.raises(PermanentError, match="invalid JSON"):
        ctl.execute(request("junk"))


@pytest.mark.parametrize(("name", "says"), [
    ("slow", "no answer within 0.3 s"),
    # A server sending a few bytes every 50 ms never lets one read wait 0.3 s: the call held the
    # operation for as long as the server went on (the second sweep, 6 December).
    ("drip", "no whole answer within 0.3 s"),
    ("drip-503", "answered 503"),   # an error answer is read until the deadline, then quoted as it is
    ("header-drip", "answer within 0.3 s"),   # (a minute for a call of 5 s: a sweep's)
])
def test_timeout_is_transient_with_unknown_effect_and_bounds_the_whole_answer(ctl: HttpController, name: str,
                                                                              says: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        ctl.execute(request(name))
    assert time.monotonic() - started < 2
    assert info.value.applied in (None, False) and says in info.value.message


def test_an_answer_too_large_or_not_json_fails_the_call(ctl: HttpController) -> None:
    with pytest.raises(PermanentError, match="the answer is larger than 1,048,576 bytes"):
        ctl.execute(request("huge"))
    with pytest.raises(PermanentError, match=r"invalid JSON \(NaN is not a JSON number\)"):
        ctl.execute(request("nan"))
    with pytest.raises(PermanentError, match=r"invalid JSON \('utf-8' codec can't decode byte 0xed"):
        ctl.execute(request("surrogate"))   # (it went through, and the run's record of it failed: a review's)
    with pytest.raises(PermanentError, match=r"invalid JSON \(the key 'id' appears twice in one object\)"):
        ctl.execute(request("twice"))   # (a sweep's: the last was taken)
    with pytest.raises(PermanentError, match=r"invalid JSON \(1e400 is too large a number"):
        ctl.execute(request("inf"))   # (a sweep's: the journal held Infinity, which is no JSON)
    with pytest.raises(TransientError, match="the answer ended 88 bytes before its Content-Length") as cut:
        ctl.execute(request("cut"))   # (a sweep's: what came was taken as the whole answer)
    assert cut.value.applied is None


def test_request_timeout_wins_when_smaller(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, timeout=30)
    started = time.monotonic()
    with pytest.raises(TransientError, match="no answer within 0.2 s"):
        ctl.execute(request("slow", timeout=0.2))
    assert time.monotonic() - started < 2


def test_connection_refused_is_transient_and_not_applied(tmp_path: Path) -> None:
    with socket.socket() as sock:  # bound, not listening: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        ctl = make(f"http://127.0.0.1:{sock.getsockname()[1]}", tmp_path, timeout=2)
        with pytest.raises(TransientError, match="connection refused") as info:
            ctl.execute(request("net1"))
    assert info.value.applied is False


def test_observe(ctl: HttpController) -> None:
    assert ctl.observe("net1", "network").exists is False  # 404
    ctl.execute(request("net1"))
    seen = ctl.observe("net1", "network")
    assert (seen.exists, seen.state, seen.target, seen.attributes, seen.applied) == (
        True, "active", "r1", {"mtu": 1500}, None)
    assert ctl.observe("net1", "network", request("net1")).applied is True
    assert ctl.observe("net1", "network", request("net1", key="other")).applied is False


def test_observe_without_config_knows_nothing(sdnc: FakeSdnc, tmp_path: Path) -> None:
    seen = make(sdnc.url, tmp_path).observe("net1", "network")
    assert (seen.exists, seen.state, seen.applied) == (True, None, None) and not sdnc.requests


def test_observe_errors_as_for_execute(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, observe={"method": "POST", "url": "/networks/{resource}", "body": None})
    with pytest.raises(TransientError):
        ctl.observe("broken", "network")


@pytest.mark.parametrize("config, message", [
    ({}, "config.base_url: required"),
    ({"base_url": "ftp://x"}, "config.base_url: expected an http:// or https:// URL"),
    ({"base_url": "http://x", "timeout": -1}, "config.timeout: expected a positive number"),
    ({"base_url": "http://x", "transient_status": [503, 1000]}, "config.transient_status: 1000 is not"),
    ({"base_url": "http://x", "refused_status": [503]}, "config.refused_status: [503] also in transient_status"),
    ({"base_url": "http://x", "headers": ["a"]}, "config.headers: expected a mapping"),
    ({"base_url": "http://x", "headers": {"X": "{secret}"}}, "config.headers.X: unknown field '{secret}'"),
    ({"base_url": "http://x", "operations": []}, "config.operations: expected a mapping"),
    ({"base_url": "http://x", "operations": {"create": {"method": "FETCH", "url": "/"}}},
     "config.operations.create.method: expected one of GET, POST, PUT, PATCH, DELETE"),
    ({"base_url": "http://x", "operations": {"create": {"method": "POST"}}}, "config.operations.create.url: required"),
    ({"base_url": "http://x", "operations": {"create": {"url": "/{nope}"}}},
     "config.operations.create.url: unknown field '{nope}'"),
    ({"base_url": "http://x", "operations": {"create": {"url": "/{resource"}}}, "config.operations.create.url: bad"),
    ({"base_url": "http://x", "operations": {"create": {"url": "/", "body": {"a": ["{0}"]}}}},
     "config.operations.create.body.a[0]: unknown field '{0}'"),
    ({"base_url": "http://x", "operations": {"create": {"url": "/", "outputs": {"id": 3}}}},
     "config.operations.create.outputs: expected a mapping"),
    ({"base_url": "http://x", "operations": {"create": {"url": "/", "state": "s"}}},
     "config.operations.create.state: unknown field"),
    ({"base_url": "http://x", "observe": {"url": "/", "state": ""}}, "config.observe.state: expected a dotted path"),
    ({"base_url": "http://x", "retries": 3}, "config.retries: unknown field"),
])
def test_config_errors(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        HttpController("sdnc", config, ControllerContext(workdir=tmp_path))
    assert message in str(info.value)


# -- path segments, environment templates, TLS ----------------------------------------------------

@pytest.mark.parametrize("value", ["..", "."])
def test_a_dot_segment_is_refused_before_sending(sdnc: FakeSdnc, tmp_path: Path, value: str) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"assign": {"url": "/tenants/{inputs[tenant]}/things/x"}})
    with pytest.raises(PermanentError) as err:
        ctl.execute(request("n1", inputs={"tenant": value}))
    assert err.value.applied is False and "dot segment" in err.value.message
    assert sdnc.requests == []


def test_slash_question_mark_and_hash_stay_inside_one_segment(sdnc: FakeSdnc, tmp_path: Path) -> None:
    ctl = make(sdnc.url, tmp_path, operations={"assign": {"url": "/echo/{inputs[tenant]}/x"}})
    ctl.execute(request("n1", inputs={"tenant": "../a/b?c#d"}))
    assert sdnc.requests[-1]["path"] == "/echo/..%2Fa%2Fb%3Fc%23d/x"


def test_env_templates_are_read_once_and_required(sdnc: FakeSdnc, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDO_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match="environment variable ORDO_TEST_UNSET"):
        make(sdnc.url, tmp_path, headers={"Authorization": "Bearer {env[ORDO_TEST_UNSET]}"})
    monkeypatch.setenv("ORDO_TEST_SET", "tok-abcdef")
    context = ControllerContext(workdir=tmp_path)
    ctl = HttpController("sdnc", {"base_url": sdnc.url, "headers": {"Authorization": "Bearer {env[ORDO_TEST_SET]}"},
                                  "operations": {"default": {"url": "/echo/x"}}}, context)
    ctl.execute(request("n1"))
    assert sdnc.requests[-1]["headers"]["Authorization"] == "Bearer tok-abcdef"
    assert context.redactor.text("got tok-abcdef") == "got ***"


def test_a_secret_an_error_quotes_past_the_cut_is_not_shown_in_part(sdnc: FakeSdnc, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # (the body was cut to 200 characters, then masked: twelve of the secret's sixteen were shown)
    monkeypatch.setenv("ORDO_TEST_SIG", "HP1S3CRETMARK42a")
    ctl = HttpController("sdnc", {"base_url": sdnc.url, "headers": {"X-Sig": "{env[ORDO_TEST_SIG]}"},
                                  "operations": {"default": {"url": "/networks/{resource}"}}},
                         ControllerContext(workdir=tmp_path))
    with pytest.raises(PermanentError) as info:
        ctl.execute(request("leak"))
    assert sdnc.requests[-1]["headers"]["X-Sig"] == "HP1S3CRETMARK42a"
    assert "answered 400: " + "E" * 188 in info.value.message and "HP1S" not in info.value.message


def openssl(*args: str | Path) -> None:
    import subprocess

    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1 it signed, and a self-signed one of another name."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ordo test CA",
            "-keyout", d / "ca.key", "-out", d / "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", d / "server.key",
            "-out", d / "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", d / "ext.cnf", "-out", d / "server.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=elsewhere",
            "-keyout", d / "other.key", "-out", d / "other.pem")
    return d


@pytest.fixture
def tls_sdnc(sdnc: FakeSdnc, certs: Path) -> FakeSdnc:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    sdnc.socket = context.wrap_socket(sdnc.socket, server_side=True)
    return sdnc


def test_tls_with_the_ca_bundle_succeeds(tls_sdnc: FakeSdnc, certs: Path, tmp_path: Path) -> None:
    url = tls_sdnc.url.replace("http://", "https://")
    ctl = HttpController("sdnc", {"base_url": url, "ca_bundle": str(certs / "ca.pem"),
                                  "operations": {"default": {"url": "/networks/{resource}"}}},
                         ControllerContext(workdir=tmp_path, root=tmp_path))
    assert ctl.execute(request("n1"))["network"]["id"] == "net-n1"


@pytest.mark.parametrize("bundle", [None, "other.pem"])
def test_an_untrusted_certificate_is_permanent_and_not_applied(tls_sdnc: FakeSdnc, certs: Path, tmp_path: Path,
                                                               bundle: str | None) -> None:
    url = tls_sdnc.url.replace("http://", "https://")
    config: dict[str, Any] = {"base_url": url, "operations": {"default": {"url": "/networks/{resource}"}}}
    if bundle:
        config["ca_bundle"] = str(certs / bundle)
    ctl = HttpController("sdnc", config, ControllerContext(workdir=tmp_path, root=tmp_path))
    with pytest.raises(PermanentError) as err:
        ctl.execute(request("n1"))
    assert err.value.applied is False and err.value.code == "tls"
    assert "certificate" in err.value.message and "ca_bundle" in err.value.message
    assert tls_sdnc.requests == []


def test_tls_settings_are_checked(certs: Path, tmp_path: Path) -> None:
    context = ControllerContext(workdir=tmp_path, root=tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    cases = [({"ca_bundle": "missing.pem"}, "config.ca_bundle: no such file"),
             ({"ca_bundle": "junk.pem"}, "config.ca_bundle: cannot read CA certificates"),
             ({"client_key": str(certs / "server.key")}, "config.client_key: set client_cert too"),
             ({"client_cert": "junk.pem"}, "config.client_cert: cannot load")]
    for extra, message in cases:
        with pytest.raises(ConfigError, match=message):
            HttpController("sdnc", {"base_url": "https://127.0.0.1:1", **extra}, context)
