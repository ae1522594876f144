"""`ordo serve`'s credentials: bearer tokens and HTTP basic, two roles, never shown."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from service.auth import Credentials, CredentialsError
from service.server import Listen, Options, ServeError, build
from tests.servicekit import INSTANTIATE, free_port, process_server, thread_server, wait_state

OPERATOR = "op-7f3a9c1e5b2d4a68"
READER = "rd-0c9e8b7a6f5d4c3b"


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# token role name\n{OPERATOR} operator portal\n{READER} reader dashboard\n")
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_401_reader_reads_only_operator_submits(vfw_copy: Path, tokens: Path) -> None:
    with thread_server(vfw_copy, tokens=tokens) as url, httpx.Client(base_url=url, timeout=60) as api:
        missing = api.get("/v1/runs")
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        assert api.get("/v1/runs", headers=bearer("x" * 20)).status_code == 401
        assert api.get("/metrics").status_code == 401
        assert api.get("/healthz").status_code == 200  # probes need no credentials
        assert api.get("/v1/runs", headers=bearer(READER)).status_code == 200
        forbidden = api.post("/v1/runs", json={"request": INSTANTIATE}, headers=bearer(READER))
        assert forbidden.status_code == 403 and "dashboard is a reader" in forbidden.json()["detail"]
        accepted = api.post("/v1/runs", json={"request": INSTANTIATE}, headers=bearer(OPERATOR))
        assert accepted.status_code == 202, accepted.text
        api.headers.update(bearer(READER))
        assert wait_state(api, accepted.json()["id"], ("complete",))["principal"] == "portal"
        basic = base64.b64encode(f"portal:{OPERATOR}".encode()).decode()
        assert api.post("/v1/runs/1/abort", headers={"Authorization": f"Basic {basic}"}).status_code == 409
        wrong_name = base64.b64encode(f"dashboard:{OPERATOR}".encode()).decode()
        assert api.get("/v1/runs", headers={"Authorization": f"Basic {wrong_name}"}).status_code == 401
        # why, never what was sent: no credentials, a header of no scheme ordo reads, credentials not the server's
        # (a first-day operator's: a wrong token was answered "a bearer token ... is needed", as none was)
        not_valid = "the credentials sent are not valid"
        for header, said in ((None, "a bearer token (or HTTP basic) is needed"),
                             ({"Authorization": "Bearer"}, "a bearer token (or HTTP basic) is needed"),
                             ({"Authorization": f"Token {OPERATOR}"}, "is neither 'Bearer TOKEN' nor HTTP basic"),
                             ({"Authorization": OPERATOR}, "is neither 'Bearer TOKEN' nor HTTP basic"),
                             ({"Authorization": "Bearer not-a-real-token-0000"}, not_valid),
                             ({"Authorization": f"Basic {wrong_name}"}, not_valid)):
            for answer in (httpx.get(f"{url}/v1/runs", headers=header),
                           httpx.post(f"{url}/v1/runs", headers=header, json={"request": INSTANTIATE})):
                assert answer.status_code == 401 and said in answer.json()["detail"], (header, answer.text)
                assert OPERATOR not in answer.text and "not-a-real" not in answer.text
        # with credentials, any name a proxy gives this server (without them, loopback names only)
        for host in ({"Host": "ordo.example"}, {"X-Forwarded-Host": "ordo.example:443"}):
            assert api.get("/v1/runs", headers={**host, **bearer(READER)}).status_code == 200
            assert httpx.get(f"{url}/v1/runs", headers=host).status_code == 401
        # a path with a trailing slash is no route: not a redirect to the Host the caller wrote
        for path in ("/v1/runs/", "/v1/runs/1/", "/ui/runs/1/", "/healthz/"):
            other = api.get(path, headers={"Host": "evil.example", **bearer(READER)})
            assert other.status_code == 404 and "location" not in other.headers, (path, other.headers)
    with open(vfw_copy / ".ordo" / "journal.db", "rb") as fh:  # the token is nowhere in the journal
        assert OPERATOR.encode() not in fh.read()


def test_credentials_are_asked_for_before_the_body_or_the_path_is_read(vfw_copy: Path, tokens: Path) -> None:
    """A caller without credentials learns nothing of what the service would make of its input:
    a malformed body, or a run number out of range, is 401 to it (403 to a reader who may not
    POST), and 422 only to an operator."""
    with thread_server(vfw_copy, tokens=tokens) as url, httpx.Client(base_url=url, timeout=60) as api:
        broken = {"content": b'{"request": ', "headers": {"Content-Type": "application/json"}}
        assert api.post("/v1/runs", **broken).status_code == 401
        assert api.get("/v1/runs/0").status_code == 401
        assert api.post("/v1/plans", json={"request": 7}).status_code == 401
        reader = api.post("/v1/runs", content=broken["content"], headers={**broken["headers"], **bearer(READER)})
        assert reader.status_code == 403 and "dashboard is a reader" in reader.json()["detail"]
        assert api.get("/v1/runs/0", headers=bearer(READER)).status_code == 422
        operator = api.post("/v1/runs", content=broken["content"], headers={**broken["headers"], **bearer(OPERATOR)})
        assert operator.status_code == 422 and operator.json()["detail"][0]["type"] == "json_invalid", operator.text
        # a key named twice: 401 too (it was read and answered 422 before credentials: the fourth sweep)
        twice = {"content": b'{"request": {}, "request": {}}', "headers": {"Content-Type": "application/json"}}
        assert api.post("/v1/plans", **twice).status_code == 401
        assert api.post("/v1/plans", content=twice["content"],
                        headers={**twice["headers"], **bearer(OPERATOR)}).status_code == 422
        # and 403 to a reader (it was 422: the body was read for any valid credentials, an HTTP sweep's)
        read = api.post("/v1/plans", content=twice["content"], headers={**twice["headers"], **bearer(READER)})
        assert read.status_code == 403 and "dashboard is a reader" in read.json()["detail"], read.text
        # nested too deep for the route's parser, which read it before credentials: 400 (the sweep of 6 December)
        deep = {"content": b'{"resource": "a", "event": "b", "data": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
                "headers": {"Content-Type": "application/json"}}
        refused = api.post("/v1/runs/1/events", **deep)
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"], refused.text
        assert refused.json() == {"detail": "a bearer token (or HTTP basic) is needed"}


def test_without_credentials_only_loopback(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDO_TOKENS", raising=False)
    with pytest.raises(ServeError, match="loopback only"):
        build(Options(project=vfw_copy, listen=Listen.parse("0.0.0.0:8080")))
    monkeypatch.setenv("ORDO_TOKENS", f"{OPERATOR} operator portal, {READER} reader dashboard")
    _, credentials = build(Options(project=vfw_copy, listen=Listen.parse("0.0.0.0:8080")))
    assert [who.name for _, who in credentials.entries] == ["portal", "dashboard"]
    assert Listen.parse("[::1]:9").loopback and not Listen.parse("10.0.0.1:9").loopback
    with pytest.raises(ServeError, match="HOST:PORT"):
        Listen.parse("8080")


def test_every_route_describes_the_403_it_answers_another_host(vfw_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials, a request addressed to any name but a loopback one is 403 on every route, the
    health routes too, which the OpenAPI description did not list (a docs sweep's)."""
    monkeypatch.delenv("ORDO_TOKENS", raising=False)
    with thread_server(vfw_copy) as url, httpx.Client(base_url=url, timeout=30) as api:
        described = api.get("/openapi.json").json()["paths"]
        for path in ("/healthz", "/readyz", "/metrics"):
            assert api.get(path, headers={"Host": "evil.example"}).status_code == 403, path
            assert "403" in described[path]["get"]["responses"], (path, described[path]["get"]["responses"])


@pytest.mark.parametrize("text, message", [
    (f"{OPERATOR} admin portal", "role must be one of reader, operator"),
    ("short operator portal", "at least 16"),
    (f"{OPERATOR} operator", "expected TOKEN ROLE NAME"),
    (f"{OPERATOR} operator a\n{OPERATOR} reader b", "given twice"),
    (f"tokens:\n  - {{token: {OPERATOR}, role: operator, name: portal, extra: 1}}", "tokens\\[0\\]"),
    (f"portal operator {OPERATOR}", "expected TOKEN ROLE NAME"),   # in another order: its token where the name goes
    # NAME ROLE TOKEN with a name as long as a token: the token was taken for the name (a web sweep's)
    ("dcae-closed-loop-ctl operator 3b1f0c0e9d8a4f27b6c5", "its last field, the name, has 20 characters: a name "
                                                           "on a line has fewer than 16, .* written NAME ROLE TOKEN"),
    (f"tokens:\n  - {{token: portal, role: operator, name: {OPERATOR}}}", "at least 16"),
    (f"operator {OPERATOR} portal", "role must be one of"),
])
def test_bad_credentials_are_named_never_shown(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(CredentialsError, match=message) as caught:
        Credentials.load(path)
    assert OPERATOR not in str(caught.value) and "3b1f0c0e9d8a4f27b6c5" not in str(caught.value)


def test_yaml_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(f"tokens:\n  - {{token: {OPERATOR}, role: operator, name: portal}}\n"
                    f"  - {{token: {READER}, role: reader, name: dcae-closed-loop-controller}}\n")
    credentials = Credentials.load(path)
    assert credentials.authenticate(f"Bearer {OPERATOR}").name == "portal"
    assert credentials.authenticate(f"Bearer {READER}").name == "dcae-closed-loop-controller"   # (long: YAML's)
    assert credentials.authenticate(f"bearer {OPERATOR[:-1]}") is None
    assert credentials.authenticate("Basic !!!") is None


def test_a_tokens_file_others_may_read_is_warned_of(vfw_copy: Path, tokens: Path, tmp_path: Path) -> None:
    """As ssh says of a key: a tokens file of mode 0644 was taken without a word (a first-day operator's)."""
    from ordo.cli import _open_to_others

    tokens.chmod(0o644)
    log = tmp_path / "serve.log"
    proc = process_server(vfw_copy, free_port(), log, latency=0.01, args=("--tokens", str(tokens)))
    try:
        said = log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert f"the tokens file {tokens} can be read by other users (mode 0644): `chmod 600` it" in said, said
    assert OPERATOR not in said
    # (the warning's first version made the "no credentials configured" line follow every start: a review's)
    assert "2 credential(s) loaded" in said and "no credentials configured" not in said, said
    tokens.chmod(0o600)
    assert _open_to_others(tokens) is None and _open_to_others(tmp_path / "none") is None
    tokens.chmod(0o640)
    assert _open_to_others(tokens) == 0o640


def test_a_port_in_use_is_refused_before_anything_starts(vfw_copy: Path) -> None:
    """uvicorn bound its address after the app's start-up (which takes up the runs a stop cut short),
    printed the server's URL, then 'address already in use' among its log lines, and exited 3, ordo's
    "no plan" (an operator's first day): refused first now, exit 1, nothing started."""
    import socket

    from tests.conftest import run_ordo

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = run_ordo("serve", "-C", vfw_copy, "--listen", f"127.0.0.1:{port}")
    assert refused.code == 1, refused
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in refused.err, refused.err
    assert "ordo serve: http" not in refused.err + refused.out
    assert not (vfw_copy / ".ordo" / "journal.db").exists()   # the server's start-up never ran
