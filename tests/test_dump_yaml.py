"""dump_yaml: text that load_yaml reads back as the very values written (the service keeps each
request it is sent so, and plans from the file). JSON's own text read as YAML turned 1e20 into
text, could not hold a key of more than 1,024 characters, and escaped an emoji as a pair of
surrogates, which YAML does not read; NEL and U+2028 inside a string are line breaks to YAML."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from domain.yamlsrc import dump_yaml, load_yaml


def back(value: Any, tmp_path: Path) -> Any:
    path = tmp_path / "r.yaml"
    path.write_text(dump_yaml(value), encoding="utf-8")
    return load_yaml(path).data


@pytest.mark.parametrize("value", [
    {"a": 1e20, "b": 1e-05, "c": -0.0, "d": 10**30, "e": 5e-324, "f": -1.5e300, "g": 1.5, "h": 7},
    {"x😀y": "😀", "del\x7f": "c1\x80\x9f", "nel": "a\x85b", "ls": "a\u2028b\u2029", "ff": "\ufffe\uffff",
     "nul": "\x00", "esc": "\x1b[31m", "bom": "\ufeff"},
    {"k" * 1100: "v", "n": [1e20]},
    {"": "", "yes": "no", "~": "null", "<<": "=", "---": "...", "? a": "- b", "#": "&a *b !t", "1e+20": "1e+20"},
    {"q": 'he said "1e+20": ok', "r": '\\"1e+5":', "list": [[], {}, [{"a": None}]], "t": True},
    {"lone": "\ud800x"},
    {"inf": float("inf"), "-inf": float("-inf")},   # (JSON's Infinity reads as text)
])
def test_values_read_back_as_written(value: Any, tmp_path: Path) -> None:
    assert repr(back(value, tmp_path)) == repr(value)


def test_nan_reads_back_as_nan(tmp_path: Path) -> None:
    import math

    assert math.isnan(back({"nan": float("nan")}, tmp_path)["nan"])


def test_random_documents_read_back_as_written(tmp_path: Path) -> None:
    rnd = random.Random(2026)
    alphabet = [chr(c) for c in range(0x250)] + [chr(c) for c in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF, 0xE000,
                                                                      0x10FFFF, 0x1F600, 0xD7FF)]

    def text() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 10)))

    def value(depth: int) -> Any:
        kind = rnd.randint(0, 6 if depth < 4 else 3)
        if kind == 0:
            return text()
        if kind == 1:
            return rnd.choice([rnd.randint(-10**20, 10**20), True, False, None])
        if kind == 2:
            return rnd.randint(-99, 99) * 10.0 ** rnd.randint(-30, 30)
        if kind == 3:
            return text()
        if kind in (4, 5):
            return {text(): value(depth + 1) for _ in range(rnd.randint(0, 4))}
        return [value(depth + 1) for _ in range(rnd.randint(0, 4))]

    for _ in range(400):
        document = {"r": value(0)}
        assert repr(back(document, tmp_path)) == repr(document)
