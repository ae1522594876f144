"""What keeps a small change against a large state cheap keeps doing what it did
(issue 12, "proportional to the change"; speed itself: benchmarks/bench_change.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain import yamlsrc
from domain.errors import DiagnosticsError

DOC = "name: x\nresources:\n- name: a\n  type: vnf\n  requires: {vcpu: 2}\n- name: b\n  uses: [a, c]\n"


def test_a_valid_document_is_loaded_without_walking_its_positions(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(DOC, encoding="utf-8")
    expected = yamlsrc.load_yaml(path, "doc.yaml")
    expected = (expected.data, expected.positions, expected.key_positions)
    real_walk = yamlsrc._Walker.walk
    monkeypatch.setattr(yamlsrc._Walker, "walk", lambda *_: pytest.fail("walked while loading"))
    src = yamlsrc.load_yaml(path, "doc.yaml")
    assert src.data == expected[0]
    # a place is found from the composed document, without walking all of it
    assert src.where(("resources", 1, "uses", 1)) == (7, 13)
    assert src.where(("resources", 1, "uses", 5)) == src.where(("resources", 1, "uses")) == (7, 9)
    assert src.where_key(("resources", 0, "requires")) == (5, 3)
    assert src.where_key(("resources", 0, "requires", "vcpu")) == (5, 14)
    assert src.where(("nothing", "here")) == (1, 1)
    assert src.diagnostic(("resources", 0, "type"), "bad").line == 4
    monkeypatch.setattr(yamlsrc._Walker, "walk", real_walk)
    assert (src.positions, src.key_positions) == expected[1:]
    assert src.where(("resources", 1, "uses", 1)) == (7, 13)


@pytest.mark.parametrize("text, summary", [
    ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'"),
    ("1: x\n'1': y\n", "duplicate key '1'"),
    ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 110)) + "  " * 110 + "x: 1\n", yamlsrc.TOO_DEEP),
])
def test_what_the_one_pass_load_leaves_to_the_walk_is_still_named(tmp_path: Path, text: str, summary: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DiagnosticsError) as caught:
        yamlsrc.load_yaml(path, "doc.yaml")
    assert caught.value.diagnostics[0].summary == summary
    assert caught.value.diagnostics[0].line > 1
