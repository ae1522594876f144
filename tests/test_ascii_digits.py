"""Text read as a number only when it is ASCII digits: ``str.isdigit`` also says yes to ``²`` and
``١``, which ``int`` refuses (the first) or reads (the second). Once a crash, reported as a bug in
ordo, wherever such text came from a person or a peer."""

from __future__ import annotations

import pytest

from executor.controllers.http import _MISSING, _pick
from planner.machine import _positive
from service.so.status import parse_task_id


def test_a_task_id_ends_with_ascii_digits() -> None:
    assert parse_task_id("req-1-42") == ("req-1", 42)
    assert parse_task_id("req-²") is None
    assert parse_task_id("req-١٢") is None


def test_an_answer_path_indexes_a_list_with_ascii_digits_only() -> None:
    assert _pick({"items": [{"id": "a"}]}, "items.0.id") == "a"
    assert _pick({"items": [{"id": "a"}]}, "items.².id") is _MISSING
    assert _pick({"items": [{"id": "a"}, {"id": "b"}]}, "items.١.id") is _MISSING


@pytest.mark.parametrize(("text", "positive"), [("100000", True), ("0", False), ("²", False), ("١", False)])
def test_a_cgroup_figure_is_ascii_digits(text: str, positive: bool) -> None:
    assert _positive(text) is positive


def test_a_listen_port_is_ascii_digits() -> None:
    from service.server import Listen

    assert Listen.parse("127.0.0.1:8080").port == 8080
    for text in ("127.0.0.1:²", "127.0.0.1:٨٠٨٠"):
        with pytest.raises(Exception, match="expected HOST:PORT") as caught:
            Listen.parse(text)
        assert type(caught.value).__name__ == "ServeError"
