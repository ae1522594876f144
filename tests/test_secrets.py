"""Secrets never reach the journal or the screen; the journal is private to its owner.

A project whose HTTP controller reads a bearer token from the environment
(``{env[...]}``) and carries an ``api_key`` in its URL's query string, whose
type declares a secret param and a secret output (catalog ``secrets:``), and
whose command controller gets a ``--password`` on its command line and prints
it with another environment secret to stderr. The controllers get the real
values; the journal's bytes, ``ordo show`` (text and JSON), ``ordo apply
--json``, ``ordo history --json`` and ``ordo state --export`` show none of them.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from executor.controllers.simulated import World
from executor.journal import Journal
from executor.redact import Redactor, redact_argv, scrub
from tests.conftest import run_ordo, run_ordo_process

BEARER = "bearer-from-env-7f3a9c"          # read by the http controller as {env[ORDO_TEST_BEARER]}
ENV_TOKEN = "env-token-2b8d41e0"           # in the environment under a secret-looking name
QUERY_KEY = "query-key-5e1f0a"             # api_key=... in the URL
DECLARED = "declared-pin-93c7"             # a param the catalog declares secret
OUTPUT = "output-psk-4d2e88"               # an output the catalog declares secret
ARGV = "argv-password-61b0"                # --password on the command's line
SECRETS = (BEARER, ENV_TOKEN, QUERY_KEY, DECLARED, OUTPUT, ARGV)

CATALOG = """\
controllers:
  api:
    kind: http
    retry: {{attempts: 1}}
    config:
      base_url: "{url}"
      headers: {{Authorization: "Bearer {{env[ORDO_TEST_BEARER]}}"}}
      operations:
        default: {{url: "/things/{{resource}}/{{operation}}?api_key={query}"}}
  cmd:
    kind: command
    retry: {{attempts: 1}}
    config:
      command: ["./tool.py", "--password", "{argv}"]
lifecycles:
  simple:
    states: [absent, present]
    operations:
      create: {{from: absent, to: present}}
      delete: {{from: present, to: absent}}
      update: {{from: present, to: present}}
types:
  thing:
    lifecycle: simple
    controller: api
    update: update
    secrets: [pin, psk]
    operations:
      create: {{outputs: [psk, seen]}}
  gadget: {{lifecycle: simple, controller: cmd}}
"""

TOOL = """\
import json, os, sys
request = json.load(sys.stdin)
print("login refused: argv " + " ".join(sys.argv[1:]) + " token " + os.environ["ORDO_TEST_TOKEN"], file=sys.stderr)
sys.exit(1)
"""


class Api(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Api

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        auth = self.headers.get("Authorization", "")
        self.server.seen.append({"path": self.path, "auth": auth, "body": body})
        pin = (body or {}).get("inputs", {}).get("pin")
        if "/bad/" in self.path:  # an error that quotes everything it received
            code, answer = 400, {"error": f"denied {auth} {self.path} pin {pin}"}
        else:
            code, answer = 200, {"psk": OUTPUT, "seen": f"{auth} {self.path} pin {pin}"}
        self.answer(code, answer)

    def answer(self, code: int, answer: Any) -> None:
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = Api()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def project(root: Path, url: str, resources: str) -> Path:
    root.mkdir()
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\ninventory: inventory.yaml\nrequest: request.yaml\n")
    (root / "catalog.yaml").write_text(CATALOG.format(url=url, query=QUERY_KEY, argv=ARGV))
    (root / "inventory.yaml").write_text("targets: {}\nresources: []\n")
    (root / "request.yaml").write_text(resources)
    tool = root / "tool.py"
    tool.write_text(f"#!{sys.executable}\n{TOOL}")
    tool.chmod(0o755)
    return root


def ordo(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run the CLI in-process (conftest's run_ordo): (exit code, stdout and stderr)."""
    run = run_ordo(*args)
    return run.code, run.out + run.err


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_TEST_BEARER", BEARER)
    monkeypatch.setenv("ORDO_TEST_TOKEN", ENV_TOKEN)


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


REQUEST = f"""\
resources:
  - {{name: good, type: thing, params: {{pin: "{DECLARED}", size: 2}}}}
  - {{name: bad, type: thing, params: {{pin: "{DECLARED}"}}}}
  - {{name: tool, type: gadget}}
"""


def test_no_secret_reaches_the_journal_or_any_view(tmp_path: Path, api: Api, secret_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "p", api.url, REQUEST)
    code, applied = ordo(capsys, "apply", "-C", root, "--auto-approve", "--json")
    assert code == 3, applied  # bad and tool fail, and no plan reaches them
    # the controllers got the real values
    good = next(s for s in api.seen if "/good/" in s["path"])
    assert good["auth"] == f"Bearer {BEARER}"
    assert good["path"].endswith(f"?api_key={QUERY_KEY}")
    assert good["body"]["inputs"]["pin"] == DECLARED
    events = [json.loads(line) for line in applied.splitlines() if line.startswith("{")]
    errors = " ".join(e.get("error", "") for e in events if e["kind"] == "failed")
    assert "denied *** /things/bad/create?api_key=*** pin ***" in errors and "--password ***" in errors
    assert "token ***" in errors
    assert leaks(applied) == []

    _, shown = ordo(capsys, "show", "-C", root)
    _, shown_json = ordo(capsys, "show", "-C", root, "--json")
    _, history = ordo(capsys, "history", "-C", root, "--json")
    _, export = ordo(capsys, "state", "-C", root, "--export")
    assert "psk=<secret " in shown and '"pin": "<secret ' in shown_json  # fingerprinted, visibly
    assert "good" in export and "<secret " in export
    for view in (shown, shown_json, history, export):
        assert leaks(view) == []
    journal = b"".join(p.read_bytes() for p in (root / ".ordo").rglob("*") if p.is_file())
    assert b"good" in journal and leaks(journal) == []


def test_a_secret_param_is_compared_by_fingerprint(tmp_path: Path, api: Api, secret_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    request = f'resources:\n  - {{name: good, type: thing, params: {{pin: "{DECLARED}"}}}}\n'
    root = project(tmp_path / "p", api.url, request)
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 0, out
    assert ordo(capsys, "plan", "-C", root, "--detailed-exitcode")[0] == 0  # the same pin: nothing to do
    (root / "request.yaml").write_text(request.replace(DECLARED, "another-pin-1234"))
    code, out = ordo(capsys, "plan", "-C", root, "--detailed-exitcode")
    assert code == 2 and "thing.good  update" in out
    _, shown = ordo(capsys, "plan", "-C", root, "--format", "json")
    assert [c["reason"].rpartition("; ")[2] for c in json.loads(shown)["resource_changes"]] == [
        "params changed: pin"]
    (root / "request.yaml").write_text(request.replace("}}", ", size: 3}}"))   # the same pin, another size
    _, shown = ordo(capsys, "plan", "-C", root, "--format", "json")
    assert [c["reason"].rpartition("; ")[2] for c in json.loads(shown)["resource_changes"]] == [
        "params changed: size"]   # not the secret pin, whose record is a fingerprint


def test_a_secret_nested_in_a_param_is_kept_out_and_compared_by_fingerprint(
        tmp_path: Path, api: Api, secret_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    """A secret under a mapping's key, or as the value of a name/value pair (SO's userParams), is
    fingerprinted in the journal, and the same value asked again is no change."""
    request = ('resources:\n  - {name: good, type: thing, params: {db: {password: "nested-pass-5678"}, '
               'userParams: [{name: sdnc_password, value: "paired-pass-9012"}, {name: site, value: s1}]}}\n')
    root = project(tmp_path / "p", api.url, request)
    code, out = ordo(capsys, "apply", "-C", root, "--auto-approve")
    assert code == 0, out
    journal = b"".join(f.read_bytes() for f in (root / ".ordo").glob("journal.db*"))
    assert b"nested-pass-5678" not in journal and b"paired-pass-9012" not in journal
    assert b"s1" in journal   # what is not secret is kept
    assert ordo(capsys, "plan", "-C", root, "--detailed-exitcode")[0] == 0   # the same values: nothing to do
    (root / "request.yaml").write_text(request.replace("paired-pass-9012", "paired-pass-other"))
    code, out = ordo(capsys, "plan", "-C", root, "--detailed-exitcode")
    assert code == 2 and "thing.good  update" in out, out


def simple_project(root: Path, request: str, secrets: str = "[]") -> Path:
    """A project of one simulated controller and one type, ``thing``, with the catalog's ``secrets``."""
    root.mkdir()
    (root / "catalog.yaml").write_text(
        "controllers:\n  c: { description: simulated }\nlifecycles:\n  simple:\n    states: [absent, present]\n"
        "    operations:\n      create: {from: absent, to: present}\n      delete: {from: present, to: absent}\n"
        f"types:\n  thing: {{lifecycle: simple, controller: c, secrets: {secrets}}}\n")
    (root / "request.yaml").write_text(request)
    (root / "inventory.yaml").write_text("resources: []\n")
    (root / "ordo.yaml").write_text("catalog: catalog.yaml\nrequest: request.yaml\ninventory: inventory.yaml\n")
    return root


def test_a_resumed_run_writes_no_declared_secret(tmp_path: Path) -> None:
    """A run killed once its first intents were written, then resumed: the resume wrote its intents
    before it made a controller (which taught the journal the catalog's secret names), and so wrote
    the declared secret param in clear (the executor's review of 6 December)."""
    root = simple_project(tmp_path / "p", f'resources:\n  - {{name: a, type: thing, params: {{pin: "{DECLARED}"}}}}\n',
                          secrets="[pin]")
    crashed = run_ordo_process("apply", "-C", root, "--auto-approve", env={"ORDO_CRASH_POINT": "intent-written"})
    assert crashed.code != 0 and (root / ".ordo" / "journal.db").exists(), crashed.text
    resumed = run_ordo("resume", "1", "-C", root)
    assert resumed.code == 0 and leaks(resumed.text) == [], resumed.text
    journal = b"".join(p.read_bytes() for p in (root / ".ordo").glob("journal.db*"))   # (not the world's)
    assert b"<secret " in journal and leaks(journal) == []


def test_labels_are_kept_as_given_for_the_policies_that_read_them(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels are what policies read: fingerprinted in the journal's records (a key such as cpu-pin looks
    secret) or masked where an environment secret's value was part of one, the next plan deleted a
    protected resource, and refused an unchanged request (a review's). They are kept as given; a label that
    a request restates with another value is refused without showing either value."""
    monkeypatch.setenv("ORDO_TEST_API_TOKEN", "prod")   # a value inside a label's ("production")
    request = ('resources:\n  - {name: a, type: thing, labels: {cpu-pin: true, tier: production, '
               'api_token: "label-token-7c1e"}}\n')
    root = simple_project(tmp_path / "p", request)
    (root / "ordo.yaml").write_text((root / "ordo.yaml").read_text() + "policies:\n  library: [protected-resources]\n"
                                    "  parameters: {protected-resources: {label_key: cpu-pin}}\n")
    assert run_ordo("apply", "-C", root, "--auto-approve").code == 0
    exported = run_ordo("state", "-C", root, "--export")
    assert "cpu-pin: true" in exported.out and "tier: production" in exported.out, exported.text
    assert run_ordo("plan", "-C", root, "--detailed-exitcode").code == 0   # unchanged: nothing to do
    (root / "delete.yaml").write_text("resources:\n  - {name: a, type: thing, state: absent}\n")
    refused = run_ordo("plan", "-C", root, "delete.yaml")
    assert refused.code != 0 and "protected-resources" in refused.text, refused.text
    (root / "request.yaml").write_text(request.replace("label-token-7c1e", "label-token-other"))
    changed = run_ordo("plan", "-C", root)
    assert changed.code != 0 and "label 'api_token' has another value" in changed.text, changed.text
    assert "label-token" not in changed.text, changed.text


def test_a_value_refused_under_a_secret_looking_name_is_not_quoted(tmp_path: Path) -> None:
    # (params' values were not shown; a secret-looking label's or requirement's were: "got str '...'")
    root = simple_project(tmp_path / "p", "resources:\n  - {name: a, type: thing, requires: {api_key: req-key-9d2f},\n"
                                            "     labels: {db_password: 998877665544, tier: 99999999999, "
                                            "sim-pin: 4711.25}}\n")
    checked = run_ordo("check", "-C", root)
    assert checked.code != 0 and "requires.api_key: expected a whole number, got str" in checked.text
    assert "labels.db_password: *** is out of range" in checked.text, checked.text
    assert "req-key-9d2f" not in checked.text and "998877665544" not in checked.text, checked.text
    assert "4711" not in checked.text and "labels.sim-pin: decimal number *** is not supported" in checked.text, \
        checked.text
    assert "labels.tier: 99999999999 is out of range" in checked.text   # what is not secret-looking is shown


def test_journal_and_world_are_private(tmp_path: Path) -> None:
    path = tmp_path / "project" / ".ordo" / "journal.db"
    with Journal(path) as jr:
        jr.append(jr.start_run("p", "r", {}), [])
        files = [path, path.with_name("journal.db-wal")]
        assert all(f.exists() for f in files)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o600, 0o600]
    world = World(tmp_path / "w" / "world.db")
    try:
        assert stat.S_IMODE((tmp_path / "w").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "w" / "world.db").stat().st_mode) == 0o600
    finally:
        world.close()


def test_an_existing_journal_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    path.chmod(0o644)
    Journal(path, create=False).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_redactor_masks_text_and_trees() -> None:
    redactor = Redactor(names=["pin"], values=["a-known-secret"], environ={"MY_API_TOKEN": "tok-123456",
                                                                           "HOME": "/home/someone"})
    text = redactor.text("GET https://u:pw@h/x?api_key=abc&page=2 answered, Authorization: Bearer xyz a-known-secret "
                         "tok-123456 --password hunter2 /home/someone")
    assert text == ("GET https://u:***@h/x?api_key=***&page=*** answered, Authorization: *** *** *** --password *** "
                    "/home/someone")
    data = redactor.tree({"inputs": {"pin": 1234, "name": "n", "X-Auth-Token": "t"}, "error": "pin 1234 wrong"})
    assert data["inputs"]["pin"].startswith("<secret ") and data["inputs"]["X-Auth-Token"].startswith("<secret ")
    assert data["inputs"]["name"] == "n"
    assert redactor.text("pin 1234 wrong") == "pin *** wrong"  # a declared secret's value is masked from then on
    pairs = redactor.tree({"userParams": [{"name": "password", "value": "pv-1"}, {"name": "site", "value": "s"},
                                          {"Key": "pin", "Value": [1, 2]}]})["userParams"]
    assert pairs[0]["value"].startswith("<secret ") and pairs[1]["value"] == "s"
    assert pairs[2]["Value"].startswith("<secret ")
    # SDNC's attribute pairs and param pairs (sdnc_directives: an SO sweep's of 7 December, echoed in clear)
    pairs = redactor.tree([{"attribute_name": "admin_password", "attribute_value": "NestedPw77"},
                           {"paramName": "api_token", "paramValue": "pv-2"},
                           {"attribute_name": "vnf", "attribute_value": "v"}])
    assert pairs[0]["attribute_value"].startswith("<secret ") and pairs[1]["paramValue"].startswith("<secret ")
    assert pairs[2] == {"attribute_name": "vnf", "attribute_value": "v"}
    # any spelling of the keys (the SO sweep of 6 December: "NAME"/"VALUE" was shown as sent)
    pairs = redactor.tree([{"NAME": "PASSWORD", "VALUE": "HUNTERCSECRET"}, {"kEy": "api_key", "vALUE": 7},
                           {"NAME": "site", "VALUE": "s"}])
    assert pairs[0]["VALUE"].startswith("<secret ") and pairs[1]["vALUE"].startswith("<secret ")
    assert pairs[2] == {"NAME": "site", "VALUE": "s"} and redactor.text("HUNTERCSECRET!") == "***!"
    # however many keys the mapping has, and every spelling of its value's key (a review's)
    pair = redactor.tree({"NAME": "password", "VALUE": "hunter4hunter4", "value": "also-this",
                          **{f"k{i}": i for i in range(8)}})
    assert pair["VALUE"].startswith("<secret ") and pair["value"].startswith("<secret ") and pair["k7"] == 7
    assert redact_argv(["ctl", "--password", "p1", "--api-key=k1", "-v", "x"]) == (
        ["ctl", "--password", "***", "--api-key=***", "-v", "x"], ["p1", "k1"])


def test_a_policy_sees_that_a_secret_param_is_set_never_its_value(tmp_path: Path, api: Api, secret_env: None,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "p", api.url, REQUEST)
    policy = root / "pin.lp"
    policy.write_text('% a pin other than x\n:- param(R,"pin",V), requested(R), V != "x".\n')
    for command in (("explain", "--policy"), ("plan", "--policy"), ("whatif", "--with-policy")):
        code, out = ordo(capsys, *command, policy, "-C", root)
        assert "violated for: R=good, V=<secret>" in out and leaks(out) == [], (command, out)
    code, out = ordo(capsys, "explain", "-C", root, "--policy", policy, "--conflict")
    assert code == 3 and leaks(out) == [], out


@pytest.mark.parametrize("name", ["pwd", "db_pwd", "psk", "wpa-psk", "auth_key", "pre_shared_key",
                                  "encryption_key", "admin_pass", "DB_PASS", "vnf-pass",   # (the fourth sweep)
                                  "adminPass", "dbPass",   # (OpenStack's; the review of 6 December)
                                  "community", "snmp_community", "pin", "PIN", "sim_pin", "pin-code",
                                  "passcode",   # (a CLI sweep's)
                                  "adminPin", "simPin", "userPIN", "otp", "userOtp", "totp_seed", "mfa_seed", "jwt",
                                  "tls_key", "ssl-key", "client_key", "signingKey"])   # (a sweep of the web page)
def test_more_names_that_hold_secrets_are_known(name: str) -> None:
    """Names the hostile-input sweep found stored in plain text (6 December)."""
    from executor.redact import scrub, secret_name

    assert secret_name(name) and scrub(f"{name}=hunter2 other=1") == f"{name}=*** other=1"
    assert scrub(f"{name}=<secret 0a1b:2c3d>") == f"{name}=<secret 0a1b:2c3d>"   # a fingerprint stays visible


@pytest.mark.parametrize("name", ["label_key", "idempotency_key", "keyboard", "customer", "cwd", "PWD", "OLDPWD",
                                  "ssh_key",   # (often a public key, read by other resources' params)
                                  "pass", "passport", "bypass", "pass_through", "compass", "Passenger", "surPassing",
                                  "spinner", "pinned", "opinion", "auth_method", "bearer", "sshKey", "cert_key",
                                  "Pinned", "pinterest", "hotplug", "footprint", "options", "OTPs", "monkey",
                                  "jwt_issuer", "signing_key_id", "tls_key_path", "tlsKeyPath", "otp_enabled",
                                  "OTP_LENGTH", "totp_period", "mfa_seed_length", "laptop"])   # (a review's)
def test_names_that_hold_no_secret_are_left(name: str) -> None:
    from executor.redact import secret_name

    assert not secret_name(name)


@pytest.mark.parametrize(("text", "shown"), [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----\n",
     "-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----\n"),
    ("key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA (cut short)",
     "key: -----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----"),
    ("a -----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY----- stays",
     "a -----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY----- stays"),
    ("session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0 ended", "session *** ended"),
    ("glued: xeyJhbGciOiJI.eyJzdWIi.x", "glued: xeyJhbGciOiJI.eyJzdWIi.x")])
def test_private_keys_and_web_tokens_are_masked_whatever_holds_them(text: str, shown: str) -> None:
    """A private key pasted into a param named sshKey, a JWT in a message: found by their values (a sweep's)."""
    from executor.redact import Redactor, scrub

    assert scrub(text) == shown
    assert Redactor().tree({"sshKey": text, "items": [text]}) == {"sshKey": shown, "items": [shown]}


def test_scrub_tries_only_the_patterns_that_could_match() -> None:
    """scrub skips a pattern where the text cannot hold a match of it: the same text out as trying
    all four, on pieces put together at random (a seed of its own: the same pieces each run)."""
    import random

    from domain import secrets as redact  # (the patterns: the model masks a request name with them)

    def every_pattern(text: str) -> str:
        text = redact._USERINFO.sub(rf"\1:{redact.MASK}@", text)
        text = redact._QUERY.sub(rf"\1={redact.MASK}", text)
        text = redact._PAIR.sub(rf"\1\2{redact.MASK}", text)
        return redact._FLAG.sub(rf"\1\2{redact.MASK}", text)

    pieces = ["https://", "http://", "user", ":", "@", "s3cr3t", "/path", "?", "&", "=", "token", "Password",
              "adminPass", "db_pass", "pass", "passport", " ", "--", "-", "api-key", "Bearer ", "x", "'", '"',
              "svc-00001/assign", "<secret 0a1b:2c3d>", "***", "\n", "AUTHORIZATION", "psk", ",", "}",
              "pa\u017f\u017fword", "credent\u0131al", "api_\u212aey", "\u00e9"]   # (an 's', an 'i', a 'k' to re)
    rng = random.Random(20261206)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    for pattern in (redact._USERINFO, redact._QUERY, redact._PAIR, redact._FLAG):   # each masks some of them
        assert sum(pattern.sub(redact.MASK, t) != t for t in texts) > 10, pattern
    assert [redact.scrub(t) for t in texts] == [every_pattern(t) for t in texts]


def test_the_patterns_start_once_per_run_and_mask_what_they_masked() -> None:
    """Started at every word boundary, a pattern scanned the rest of a run each time: a text of 16 KB
    took 20 s to mask, on every read of it (an HTTP sweep's, 6 December). Against the patterns as they
    were, on pieces put together at random: pairs and flags are masked alike; a URL's password and a
    query's value wherever they were, and a few more (``masked more`` leaves the text as it was
    masked then unchanged). Then the sweep's texts, each masked as it should be."""
    import random
    import re

    from domain import secrets as redact  # (the patterns: the model masks a request name with them)

    names = redact.NAMES
    before = {
        "_USERINFO": (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@", re.IGNORECASE), r"\1:***@"),
        "_QUERY": (re.compile(r"(?<=[?&])([^=&#\s\"'<>]+)=([^&#\s\"'<>]+)"), r"\1=***"),
        "_PAIR": (re.compile(rf"(?i)\b([\w.-]*(?:{names})[\w.-]*)([\"']?\s*[:=]\s*[\"']?)"
                             r"(?!<secret )((?:(?:bearer|basic|token|digest)\s+)?[^\s\"',;&}\]]+)"), r"\1\2***"),
        "_FLAG": (re.compile(rf"(?i)((?:^|\s)--?[\w-]*(?:{names})[\w-]*)(\s+)(?!-)([^\s'\")\]}}]+)"), r"\1\2***"),
    }
    pieces = ["-", ".", "a", "_", "?", "&", "=", ":", "@", "/", "://", " ", "token", "pass", "Pass", "password",
              "api_key", "http", "1", '"', "'", "bearer ", "--", "<secret ", "\u00e9", "\n", "#", "+"]
    rng = random.Random(20261206)
    more = dict.fromkeys(before, 0)
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        for name, (old, mask) in before.items():
            new = getattr(redact, name)
            was, now = old.sub(mask, text), new.sub(mask, text)
            if name in ("_PAIR", "_FLAG"):
                assert now == was, (name, text)
            elif now != was:
                more[name] += 1
                assert new.sub(mask, was) == now, (name, text, was, now)
    assert more["_USERINFO"] and more["_QUERY"], more
    for text, masked in (("-a" * 8_000 + " token: abc", "-a" * 8_000 + " token: ***"),
                         ("?a" * 50_000 + "=x", "?a" * 50_000 + "=***"),
                         ("a." * 50_000 + " ://x@", "a." * 50_000 + " ://x@"),
                         ("a." * 5 + "http://u:pw@h", "a." * 5 + "http://u:***@h"),
                         ("token" * 4_000, "token" * 4_000), (" --" + "token" * 4_000, " --" + "token" * 4_000),
                         ("token" * 4_000 + "=x", "token" * 4_000 + "=***")):   # (a review's: a name per 5 characters)
        assert redact.scrub(text) == masked


def test_a_redactor_that_knows_thousands_of_values_masks_as_one_that_knows_a_few() -> None:
    """Each value learnt sorted every known value again, and each text was searched for every one: a
    tree of 16,000 secrets (an SO request's, under 1 MiB) took 90 s to mask (a review's, 6 December).
    Past a few dozen, a text is searched only for the values whose first characters it holds: the
    same text out as searching for all of them, longest first (values without the mask's '*')."""
    import random

    def every_value(values: list[str], text: str) -> str:
        for value in sorted({v for v in values if len(v) >= 4}, key=lambda v: (-len(v), v)):
            text = text.replace(value, "***")
        return scrub(text)

    from executor.redact import scrub

    rng = random.Random(20261206)
    alphabet = 'abcd_ -x%"'
    for size in (3, 20, 40, 80):
        for _ in range(100):
            values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 8))) for _ in range(size)]
            redactor = Redactor(environ={}, values=values)
            for _ in range(10):
                text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
                assert redactor.text(text) == every_value(values, text), (values, text)
    tree = {k: v for i in range(16_000) for k, v in ((f"token{i}", f"v{i:05d}"), (f"note{i}", f"says v{i:05d}"))}
    masked = Redactor(environ={}).tree(tree)
    assert all(masked[f"note{i}"] == "says ***" for i in range(16_000))


def test_an_excerpt_is_masked_before_it_is_cut_wherever_the_cut_falls() -> None:
    import random

    secrets = ["S3CRETabcdefgh", "Q7pass-word-0123456789", "tok%"]   # (the last: shorter than MIN_VALUE + 1)
    redactor = Redactor(values=secrets, environ={})
    rng = random.Random(7)
    for _ in range(300):
        parts = [rng.choice([*secrets[:2], "x" * rng.randint(1, 40), "token=", "&=", " "])
                 for _ in range(rng.randint(1, 60))]
        text = "".join(parts)
        most, end = rng.randint(1, 120), rng.random() < 0.5
        shown = redactor.excerpt(text, most, end=end)
        assert len(shown) <= most
        for secret in secrets[:2]:
            for i in range(len(secret) - 3):
                assert secret[i:i + 4] not in shown, (text, most, end, shown)
        if secrets[0] not in text and secrets[1] not in text and "=" not in text:
            assert shown == (text[-most:] if end else text[:most])


def test_an_excerpt_hides_what_the_patterns_find_wherever_it_starts() -> None:
    # (only a window around the cut was masked: a private key or a bearer token that began before it was shown,
    # and a token whose payload ran past it: a review's)
    key = "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEF\n" * 60 + "-----END PRIVATE KEY-----"
    bearer = "Authorization: Bearer " + "A" * 1500
    jwt = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0" * 40 + ".c2lnbmF0dXJl"
    redactor = Redactor(environ={})
    for text in (f"error\n{key}\n", f"error: {bearer}"):
        shown = redactor.excerpt(text, 500, end=True)
        assert "MIIEvQ" not in shown and "AAAA" not in shown, shown
    assert "eyJzdWIi" not in redactor.excerpt(f"{jwt} and more", 200)
    # a text that starts inside a key (stderr's last 64 KiB): masked to its END line
    headless = key[key.index("\n", 300):] + "\ntrailing words"
    assert scrub(headless) == "***-----END PRIVATE KEY-----\ntrailing words"
    # indented (YAML), escaped (JSON), a space before CRLF: shown where only base64 was taken (a review's)
    for shape in ("    " + headless.replace("\n", "\n    "), headless.replace("\n", "\\n"),
                  headless.replace("\n", " \r\n")):
        assert "MIIEvQ" not in scrub(shape) and "BAQEF" not in scrub(shape), shape[:80]
    for said in ("step 3 failed: key.pem: unexpected trailer -----END RSA PRIVATE KEY----- (line 28); retrying",
                 "unexpected trailer -----END RSA PRIVATE KEY----- (line 28)",
                 "The file ends with -----END OPENSSH PRIVATE KEY-----",
                 "Error loading key\n  could not parse the key file\n  -----END EC PRIVATE KEY-----"):
        assert scrub(said) == said, said   # a text that only names the line is left as it is (reviews')


def test_a_secret_in_a_requests_name_reaches_no_plan_and_no_journal(vfw_copy: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A request's name is free text: a URL's password or a token in it was masked in the run's row, but
    kept in the plan (its ``request``), so in the journal's plan event, in the event stream any reader
    token could follow, in `ordo plan --out` and in the plans answered over HTTP (a service sweep's)."""
    request = vfw_copy / "requests" / "instantiate.yaml"
    request.write_text('name: "from https://bob:HUNTER2URLPW@git.example/x?token=HUNTER2QTOK"\n'
                       + request.read_text())
    code, out = ordo(capsys, "plan", "-C", vfw_copy, "--out", vfw_copy / "plan.json")
    assert code == 0, out
    plan = (vfw_copy / "plan.json").read_text()
    assert json.loads(plan)["request"] == "from https://bob:***@git.example/x?token=***", plan[:300]
    code, out = ordo(capsys, "apply", "-C", vfw_copy, "--auto-approve")
    assert code == 0, out
    journal = b"".join(p.read_bytes() for p in (vfw_copy / ".ordo").rglob("*") if p.is_file())
    assert b"git.example" in journal and b"HUNTER2" not in journal and "HUNTER2" not in out


@pytest.mark.parametrize("value", [
    "https://u:HUNTER2PW@h/x?sig=HUNTER2Q", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJIVU5URVIyIn0.sig",
    "-----BEGIN PRIVATE KEY-----\nHUNTER2" + "A" * 2000 + "\n-----END PRIVATE KEY-----\n"])
def test_a_secret_given_where_another_kind_was_expected_is_not_quoted(vfw_copy: Path, value: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """"expected a whole number, got str '...'" quoted a URL's password, a token or a key's first 60
    characters: over HTTP, to the gateways and logs that keep the answer (a service sweep's)."""
    request = vfw_copy / "requests" / "instantiate.yaml"
    text = request.read_text()
    assert "requires: { vcpu: 4" in text
    request.write_text(text.replace("requires: { vcpu: 4", f"requires: {{ vcpu: {json.dumps(value)}", 1))
    code, out = ordo(capsys, "plan", "-C", vfw_copy)
    assert code == 1 and "expected a whole number, got str '" in out, out
    assert "HUNTER2" not in out and "eyJzdWIi" not in out, out


def test_a_secret_in_a_fields_name_or_a_reference_is_not_quoted(vfw_copy: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """"unknown field 'https://u:PW@h/'" and "reference to unknown resource 'https://u:PW@h'" quoted them, in
    the message and in its path (a review's: these did not go through quoted())."""
    request = vfw_copy / "requests" / "instantiate.yaml"
    text = request.read_text()
    assert "params: { customer: demo" in text
    request.write_text(text.replace("    params: { customer: demo", '    "https://u:HUNTER2@h/": 1\n    params: { '
                                    'customer: "${https://u:HUNTER3@h.outputs.x}", other: demo', 1))
    code, out = ordo(capsys, "plan", "-C", vfw_copy, "--format", "json")
    assert code == 1 and "unknown field" in out and "HUNTER" not in out, out
    # a key that is no name: its path was quoted whole, the message masked (a secrets sweep's)
    (vfw_copy / "r8.yaml").write_text('services:\n  "s1?token=NAME-SECRET-9":\n    params: {a: 1}\n')
    code, out = ordo(capsys, "plan", "-C", vfw_copy, vfw_copy / "r8.yaml")
    assert code == 1 and "services.s1?token=***: invalid name" in out and "NAME-SECRET" not in out, out


def test_a_problems_own_words_after_a_secret_looking_name_are_kept() -> None:
    """Masking a problem's summary as a value's took the word after a name such as a resource's
    'mgmt-token-net' for a secret: "'mgmt-token-net': *** is placed on nothing" (a review's)."""
    from domain.yamlsrc import Source

    source = Source(file="request.yaml", data={}, positions={})
    said = "cannot change what is observed of existing 'mgmt-token-net': it is placed on nothing"
    assert source.diagnostic(("services", "mgmt-token-net"), said).summary == said
    masked = source.diagnostic(("https://u:HUNTER2@h/",), "unknown field 'https://u:HUNTER2@h/'")
    assert "HUNTER2" not in masked.summary + masked.path, masked
    # what it quotes is masked whole: a key "api_token:x" (a flow mapping's missing space) or "x --token y"
    for key in ("api_token:HUNTER16", "x --token HUNTER11", "api_key: HUNTER12"):
        masked = source.diagnostic(("requires", key), f"unknown field '{key}'")
        assert "HUNTER" not in masked.summary + masked.path, masked


def test_a_key_s_end_line_is_found_in_a_time_linear_in_the_text() -> None:
    """Spaces and quotes before and after a line's base64 were one run either part of the pattern of a
    key's lines could take: a text of them with no line break, then "-----END ", tried every split at
    every line. 8 KB took 2 s to mask, and a controller's answer of 1 MB held `ordo apply` past its
    timeout and Ctrl-C (a secrets sweep's). The pattern as it was and as it is match alike (on pieces
    put together at random), and 1 MB of that text is masked in a process of its own before a minute
    is out (the old pattern: days)."""
    import random
    import re
    import subprocess
    import sys

    from domain import secrets

    before = re.compile(r"(?:[ \t\"']*[A-Za-z0-9+/=]*[ \t\"',]*(?:\r?\n|\\r\\n|\\n))+[ \t\"']*"
                        r"-----END ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
    pieces = [" ", "\t", '"', "'", ",", "MIIE", "ab=", "/", "\n", "\r\n", "\\n", "\\r\\n", "x",
              "-----END RSA PRIVATE KEY-----", "-----END EC PRIVATE KEY BLOCK-----", "-----END "]
    rng = random.Random(20261207)
    matched = 0
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        was, now = before.match(text), secrets._PEM_HEADLESS.match(text)
        assert (was and (was.group(0), was.group(1))) == (now and (now.group(0), now.group(1))), text
        matched += was is not None
    assert matched > 100, matched
    hostile = "import sys; from domain.secrets import scrub; print(len(scrub('\" ' * 500_000 + '-----END X')))"
    done = subprocess.run([sys.executable, "-c", hostile], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and done.stdout.strip() == "1000010", done.stderr


def test_a_value_with_a_query_or_a_password_in_it_is_recorded_so_the_next_plan_matches_it(vfw_copy: Path) -> None:
    """Every string the journal kept was masked in part: a param's URL with a query (?region=r1) was
    recorded as ?region=***, and every plan after updated it again, for ever; a connection string with a
    password on a type with no update had no plan at all after its apply ("params changed, but the type
    has no operation to apply them in place"), and an output's URL went masked to the params that read it
    (a secrets sweep's). A value is kept whole unless it holds a secret; one that does is fingerprinted
    whole, and compared so."""
    request = vfw_copy / "requests" / "instantiate.yaml"
    text = request.read_text()
    text = text.replace("params: { cidr: 192.168.10.0/24 }",
                        'params: { cidr: 192.168.10.0/24, dhcp_url: "http://dhcp.example/api?region=r1" }')
    text = text.replace("              unprotected_net_id: ${unprotected-net.outputs.network_id}\n",
                        "              unprotected_net_id: ${unprotected-net.outputs.network_id}\n"
                        '              conn: "postgres://svc:db-pass-5150@db.example/app?sslmode=require"\n')
    request.write_text(text)
    applied = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation",
                       vfw_copy / "simulations" / "smooth.yaml")
    assert applied.code == 0, applied.text
    again = run_ordo("plan", "-C", vfw_copy, "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.text
    exported = run_ordo("state", "-C", vfw_copy, "--export")
    assert "dhcp_url: 'http://dhcp.example/api?region=r1'" in exported.out, exported.out
    assert "db-pass-5150" not in exported.out and "conn: '<secret " in exported.out, exported.out
    journal = b"".join(f.read_bytes() for f in (vfw_copy / ".ordo").glob("journal.db*"))
    assert b"db-pass-5150" not in journal and b"region=r1" in journal
    # the state a run starts from is kept whole too (a rollback rebuilt from the journal sends it back)
    request.write_text(text.replace("region=r1", "region=r2"))
    moved = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation",
                     vfw_copy / "simulations" / "smooth.yaml")
    assert moved.code == 0 and "1 changed" in moved.out, moved.text
    from executor.journal import Journal

    with Journal(vfw_copy / ".ordo" / "journal.db", create=False) as jr:
        started = next(e for e in jr.events(2) if e.kind == "run-started")
    assert started.data["snapshot"]["unprotected-net"]["attributes"]["dhcp_url"] == \
        "http://dhcp.example/api?region=r1", started.data["snapshot"]["unprotected-net"]
    # the password changed is a change (masked in part, both would read the same)
    request.write_text(text.replace("db-pass-5150", "db-pass-6160"))
    changed = run_ordo("plan", "-C", vfw_copy, "--format", "json")
    assert changed.code == 3 and "no operation to apply them in place" in changed.text, changed.text


def test_what_an_event_keeps_of_values_sent_and_answered() -> None:
    """An output's URL with a query is kept whole (it was masked, and the masked text sent to the params
    that read it); one with a password is a fingerprint (never sent again: refused, naming the param);
    an error's text is masked as before, its queries too."""
    from domain.secrets import is_fingerprint
    from executor.redact import Redactor

    kept = Redactor(environ={}).event({
        "outputs": {"network_id": "https://net.example/v2/networks?id=n-42", "dsn": "mysql://u:pw-4471@h/db",
                    "sas": "https://blob.example/c?sv=1&sig=abc123",
                    # (words that name a secret in a query alone: stored and shown whole, a review's)
                    "maps": "https://maps.example/api?key=AIzaLEAK9999&x=1", "fb": "https://fb.example/db?auth=FB8",
                    "old": "http://h/x?pw=hunter2", "page": "https://h/docs?keyword=pass&passport=1"},
        "inputs": {"url": "http://h/x?token=t-9981&page=2"},
        "error": "GET https://net.example/v2/networks?id=n-42 failed"})
    assert kept["outputs"]["network_id"] == "https://net.example/v2/networks?id=n-42"
    assert all(is_fingerprint(kept["outputs"][k]) for k in ("dsn", "sas", "maps", "fb", "old")), kept
    assert kept["outputs"]["page"] == "https://h/docs?keyword=pass&passport=1"
    assert is_fingerprint(kept["inputs"]["url"])
    assert kept["error"] == "GET https://net.example/v2/networks?id=*** failed"


def test_a_declared_secret_s_value_quoted_in_an_answer_is_masked_before_it_was_ever_seen() -> None:
    """A controller's answer that ordo could not read (wrong types, not JSON, a 500's body) is quoted in
    the error: a declared secret in it, whose name does not look secret (kubeconfig), was shown whole on
    the screen, in the journal, `ordo show` and the event stream, its value never seen before (a secrets
    sweep's). A known secret escaped as other JSON writers escape (PHP's \\/, Go's \\u0026) was shown too."""

    from executor.redact import Redactor

    redactor = Redactor(names=["kubeconfig", "admin_pw"], environ={})
    said = redactor.text('\'exists\' has the wrong type: {"exists": "yes", "attributes": {"kubeconfig": '
                         '"OBS-KUBE-\\"9911", "admin_pw": "OBS-8822", "zone": "az1"}} trailing; admin_pw=raw-7'
                         " kubeconfig: plain-5\nmy_kubeconfig: kept")
    assert said == ('\'exists\' has the wrong type: {"exists": "yes", "attributes": {"kubeconfig": "***", '
                    '"admin_pw": "***", "zone": "az1"}} trailing; admin_pw=***\nmy_kubeconfig: kept')
    redactor.add_values(["Slash/Pw-4242", "a&b<c>d-secret", "pa/ss&word-42"])
    assert redactor.text('{"x":"Slash\\/Pw-4242","y":"a\\u0026b\\u003cc\\u003ed-secret"}') == '{"x":"***","y":"***"}'
    # one that holds both: as Go writes it ('/' as it is), as PHP does ('&' as it is), as both would
    assert redactor.text('"pa/ss\\u0026word-42" "pa\\/ss&word-42" "pa\\/ss\\u0026word-42"') == '"***" "***" "***"'
    # the value whole, however it is written (only its first word was masked, or none: a review's)
    for given, masked in (
            ('{"message": "{\\"kubeconfig\\": \\"KS1\\", \\"admin_pw\\": \\"PS2\\"}"}',
             '{"message": "{\\"kubeconfig\\": ***, \\"admin_pw\\": ***}"}'),
            ('{"kubeconfig": ["KS12", {"k": "v"}], "x": 1}', '{"kubeconfig": ***, "x": 1}'),
            ('kubeconfig: {"client-key-data": "KS77", "server": "https://k8s"}', "kubeconfig: ***"),
            ("kubeconfig: |\n  line KS3\n  line KS4\nnext: 1", "kubeconfig: ***\nnext: 1"),
            ("kubeconfig:\n  apiVersion: v1\n  users: [KS5]\nother: ok", "kubeconfig:***\nother: ok"),
            ("{'kubeconfig': b'KS13'}", "{'kubeconfig': ***}"),
            ("<admin_pw>PS5</admin_pw>!", "<admin_pw>***</admin_pw>!"), ("KUBECONFIG=KS6 x", "KUBECONFIG=***"),
            ("--admin_pw PS10 -admin_pw=PS11", "--admin_pw *** -admin_pw=***"),
            ("spec.admin_pw=PS9", "spec.admin_pw=***"), ("admin_pw: two words PS8\nnext", "admin_pw: ***\nnext"),
            ("admin_pw: 'it''s PS16' x", "admin_pw: '***' x"), ('kubeconfig: "not closed PS17', "kubeconfig: ***")):
        assert redactor.text(given) == masked, given
    # where a value ends is looked for once: a megabyte of values never closed is masked in a process of its
    # own before a minute is out
    _masked_within_a_minute("kubeconfig", "('kubeconfig: {\\n' * 70_000, 'kubeconfig: |\\n x\\n' * 60_000, "
                                          "'\"kubeconfig\": \"\\\\' * 60_000)")
    assert Redactor(environ={}).text('{"kubeconfig": "shown: not declared here"}') == \
        '{"kubeconfig": "shown: not declared here"}'


def test_a_declared_secret_s_value_is_masked_whole_however_it_is_written() -> None:
    """A value under a declared name was shown in part (after a comma in a YAML line, after an escaped quote
    in JSON in JSON or a Python repr, under an XML tag with attributes or a namespace, after a Perl '=>', in a
    YAML block with CRLF line ends or a comment after its key, in a tuple, a TOML triple-quoted string;
    a review's, and a review of that). Prose around a name in brackets keeps its reason. Where each value
    ends is looked for once per line: a megabyte of names on one line is masked in a process of its own
    within seconds."""
    from executor.redact import Redactor

    redactor = Redactor(names=["kubeconfig", "admin_pw"], environ={})
    for given, masked in (
            ("admin_pw: PS1,PS2 more\nnext", "admin_pw: ***\nnext"),
            ("{admin_pw: PS3, zone: z}", "{admin_pw: ***, zone: z}"),
            ('<admin_pw type="s">PS4</admin_pw> ok', '<admin_pw type="s">***</admin_pw> ok'),
            ("<ADMIN_PW >PS5 PS6</admin_pw> and </b>", "<ADMIN_PW >***</admin_pw> and </b>"),
            ('admin_pw => "PS7", x', 'admin_pw => "***", x'), ("admin_pw => PS8 x", "admin_pw => *** x"),
            ('{"message": "{\\"admin_pw\\": \\"PS\\\\\\"9-PS10\\"}"}', '{"message": "{\\"admin_pw\\": ***}"}'),
            ("{'admin_pw': 'it\\'s PS11'}", "{'admin_pw': '***'}"),
            ('{"admin_pw": 1234, "x": 2}', '{"admin_pw": ***, "x": 2}'),
            ("<kubeconfig>PS12 more", "<kubeconfig>***"),
            ("<admin_pw>PS13 PS14</admin-pw>", "<admin_pw>***</admin-pw>"),
            ("admin_pw= PS15", "admin_pw= ***"), ('ADMIN_PW= "PS16"', 'ADMIN_PW= "***"'),
            ('"kubeconfig": PS17 PS18\nnext: 1', '"kubeconfig": ***\nnext: 1'),
            ("İ" * 25 + "<admin_pw>x</admin_pw><admin_pw>PS19</admin_pw>!",
             "İ" * 25 + "<admin_pw>***</admin_pw><admin_pw>***</admin_pw>!"),
            ("kubeconfig: |\r\n  a\r\n  PS20\r\nnext: 1", "kubeconfig: ***\r\nnext: 1"),
            ("kubeconfig: # c\n  PS21\nnext: 1", "kubeconfig: ***\nnext: 1"),
            ("kubeconfig:\n- PS22\nnext: 1", "kubeconfig:***\nnext: 1"),
            ("{'admin_pw': ['a]', 'PS23']}", "{'admin_pw': ***}"),
            ("{'admin_pw': ('PS24', 'PS25')}", "{'admin_pw': ***}"),
            ('kubeconfig = """\nPS26\n"""\nx = 1', "kubeconfig = \"***\"\nx = 1"),
            ("x<admin_pw>PS27</admin_pw>", "x<admin_pw>***</admin_pw>"),
            ("<ns:admin_pw>PS28</ns:admin_pw>", "<ns:admin_pw>***</ns:admin_pw>"),
            # (a review of that: words after '=', a YAML value or header over lines, a block with a tag)
            ("admin_pw = PS29 PS30 PS31\nnext", "admin_pw = ***\nnext"), ("ADMIN_PW=PS32 PS33", "ADMIN_PW=***"),
            ("[db]\nadmin_pw = PS41;PS42;PS43\nport = 5432", "[db]\nadmin_pw = ***\nport = 5432"),
            ("Server=x;Admin_pw=PS34 PS35;Db=y", "Server=x;Admin_pw=***;Db=y"),
            ("admin_pw: PS36\n  PS37\nnext: 1", "admin_pw: ***\nnext: 1"),
            ("kubeconfig: !!binary |\n  PS38\nnext: 1", "kubeconfig: ***\nnext: 1"),
            ("Admin_pw: PS39\r\n  PS40\r\nHost: h", "Admin_pw: ***\r\nHost: h"),
            # prose
            ("open <kubeconfig>: no such file", "open <kubeconfig>: no such file")):
        assert redactor.text(given) == masked, given
        assert "PS" not in redactor.text(given), given
    _masked_within_a_minute("admin_pw", "('admin_pw: x, ' * 640_000, '<admin_pw>x ' * 80_000, "
                                        "'{admin_pw: a, ' * 80_000, \"'admin_pw': x \" * 80_000, "
                                        "'admin_pw: |x, ' * 80_000, '<ns:admin_pw>x ' * 80_000, "
                                        "'<admin_pw>x <' * 80_000, "
                                        "''.join(f'<p{i}:admin_pw>x\\n' for i in range(60_000)))")


def _masked_within_a_minute(name: str, texts: str) -> None:
    """The Python expression ``texts`` (a tuple of strings) masked with ``name`` declared, in a process of
    its own that is given a minute."""
    hostile = (f"from executor.redact import Redactor; r = Redactor(names=[{name!r}], environ={{}}); "
               f"print(sum(len(r.text(t)) for t in {texts}))")
    done = subprocess.run([sys.executable, "-c", hostile], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and int(done.stdout) > 0, done.stderr


def test_an_output_that_holds_stars_is_sent_to_the_params_that_read_it(vfw_copy: Path) -> None:
    """An output is refused to the params that read it only when it is a secret's fingerprint: one that
    held "***" anywhere ("card ****1234") was taken for a value masked, and every resource reading it
    failed, said to read "a secret output from an earlier run" (a review's)."""
    import sqlite3

    inventory = vfw_copy / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("network_id: net-0001", 'network_id: "net-***-0001"'))
    applied = run_ordo("apply", "-C", vfw_copy, "--auto-approve", "--simulation",
                       vfw_copy / "simulations" / "smooth.yaml")
    assert applied.code == 0 and "Apply complete: 10 created" in applied.out, applied.text
    with sqlite3.connect(vfw_copy / ".ordo" / "simulated-world.db") as db:
        sent = [json.loads(row[0]) for row in db.execute("SELECT inputs FROM ledger WHERE resource = 'vfw-base'")]
    assert sent and all(inputs["mgmt_net_id"] == "net-***-0001" for inputs in sent), sent


def test_a_value_an_older_ordo_recorded_masked_in_part_matches_the_request_it_was() -> None:
    """An ordo before values were kept whole recorded 'postgres://svc:***@db/app': every plan after found
    the param changed (no plan at all for a type with no update, a review's). It matches the request that
    masks to it; another does not."""
    from domain.secrets import same_value

    recorded = "postgres://svc:***@db/app?sslmode=***"
    assert same_value(recorded, "postgres://svc:pw-1234@db/app?sslmode=require")
    assert not same_value(recorded, "postgres://svc:pw-1234@db2/app?sslmode=require")
    assert not same_value("card ****1234", "card 5555")
