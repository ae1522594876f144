"""Facts are formatted as text for speed; the text must be clingo's own."""

from __future__ import annotations

import pytest

from planner.facts import _render, term


@pytest.mark.parametrize("value", ["a", 'x"y', "back\\slash", "new\nline", "ü", "", 3, -2, 0, True, False])
def test_render_matches_clingo_printing(value):
    assert _render(value) == str(term(value))
