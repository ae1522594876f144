"""Schemathesis against the OpenAPI that a running ``ordo serve`` publishes (/openapi.json).

Every operation the server describes is called with generated inputs, valid and invalid
(a bounded number per operation, from a fixed seed, so a failure replays): no answer is a
5xx, every answer's status code is one the operation documents, its content type and
body match what it documents, and invalid input is refused with a 4xx. The operations
come from the server's own description, so routes added later are fuzzed with no change here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from service.server import Listen, Options, build
from tests.conftest import VFW
from tests.servicekit import thread_server

#: Examples per operation and mode (valid, invalid), and the seed they are drawn from.
EXAMPLES = 25
SEED = 20260
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
CONFIG = {"seed": SEED, "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True},
          "phases": {"stateful": {"enabled": False}}, "request-timeout": 30}


def description() -> dict:
    """The OpenAPI description ``ordo serve`` publishes, from the app it builds (no server started):
    one test per operation at collection. (Loading it from the running server with
    ``schemathesis.pytest.from_fixture`` fails on pytest 9: "'Function' object has no attribute
    '_nodeid'"; the ``served`` fixture checks that the server publishes this very description.)"""
    server, _ = build(Options(project=VFW, listen=Listen("127.0.0.1", 0)))
    return server.config.app.openapi()


schema = schemathesis.openapi.from_dict(description(), config=SchemathesisConfig.from_dict(CONFIG))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on a copy of the vFW, with simulated controllers; it publishes the description fuzzed here."""
    project = tmp_path_factory.mktemp("fuzz") / "vfw"
    shutil.copytree(VFW, project, ignore=shutil.ignore_patterns(".ordo"))
    with thread_server(project) as url:
        assert httpx.get(f"{url}/openapi.json").json() == schema.raw_schema
        yield url


@schema.parametrize()
def test_no_input_makes_the_api_fail_or_break_its_description(case, served: str) -> None:
    case.call_and_validate(base_url=served, checks=CHECKS)


@pytest.mark.parametrize("path", ["/v1/plans", "/v1/runs"])
@pytest.mark.parametrize(("body", "field"), [
    ('{"op_timeout": NaN}', "op_timeout"),
    ('{"op_timeout": Infinity}', "op_timeout"),
    ('{"request": {"services": {"s": {"params": {"x": 1e999}}}}}', "request.services.s.params.x"),
    ('{"request": {"services": {"s": {"params": {"x": [1, -Infinity]}}}}}', "request.services.s.params.x[1]"),
    ('{"plan": {"makespan": NaN}}', "plan.makespan"),
    ('{"whatif": {"capacity": [NaN]}}', "whatif.capacity[0]"),
])
def test_numbers_json_has_not_are_refused_with_their_field(served: str, path: str, body: str, field: str) -> None:
    """Python's JSON parser reads NaN, Infinity (and 1e999 as infinite): echoing them back in the
    validation error was a 500 (or a reset connection), and inside a request they were saved."""
    answer = httpx.post(f"{served}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 422, answer.text
    message = answer.json()["detail"][0]["msg"]
    assert message.endswith(f"{field}: not a number JSON allows (NaN, Infinity, or too large)"), message
