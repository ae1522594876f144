"""YAML loading that remembers where every value came from.

Error messages name the file, the line and the path inside the document
(``services.vfw.vnfs[1].type``), so we keep a map from paths to positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from domain.errors import Diagnostic, DiagnosticsError

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Source:
    """A loaded YAML document with the position of each value."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]]

    def where(self, path: PathKey) -> tuple[int, int]:
        """Line and column of the value at path, or of its nearest parent."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def diagnostic(self, path: PathKey, summary: str, detail: str = "", code: str = "") -> Diagnostic:
        line, column = self.where(path)
        return Diagnostic(
            file=self.file, line=line, column=column, path=format_path(path),
            summary=summary, detail=detail, code=code,
        )


def load_yaml(path: Path, display: str | None = None) -> Source:
    """Read one YAML file. Raises DiagnosticsError naming file and line."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DiagnosticsError([Diagnostic(file=shown, summary="file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DiagnosticsError([Diagnostic(file=shown, summary=f"cannot read file: {exc}")]) from None
    # libyaml's parser when present: ten times faster on large inventories.
    # On a syntax error, the pure-Python parser's message says more.
    try:
        node, data = _compose(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        try:
            node, data = _compose(text, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = exc.problem or exc.context or "syntax error"
            raise DiagnosticsError(
                [Diagnostic(file=shown, line=line, column=column, summary=f"invalid YAML: {problem}")]
            ) from None
        except yaml.YAMLError as exc:
            raise DiagnosticsError([Diagnostic(file=shown, summary=f"invalid YAML: {exc}")]) from None
    positions: dict[PathKey, tuple[int, int]] = {}
    problems: list[Diagnostic] = []
    if node is not None:
        _walk(node, (), positions, problems, shown)
    if problems:
        raise DiagnosticsError(problems)
    return Source(file=shown, data=data, positions=positions)


_SIMPLE = "tag:yaml.org,2002:"


def _compose(text: str, loader_class: type) -> tuple[Any, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        try:
            return node, _build(node)
        except _Unusual:
            return node, loader.construct_document(node)
    finally:
        loader.dispose()


class _Unusual(Exception):
    """A node the fast builder leaves to PyYAML's constructor (anchors' merge keys, timestamps ...)."""


def _build(node: yaml.Node, depth: int = 0) -> Any:
    """Plain data from a composed node: PyYAML's constructor does the same,
    three times slower; anything beyond str/int/float/bool/null/map/seq falls back to it."""
    if depth > 200:
        raise _Unusual
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        value = node.value
        if tag == _SIMPLE + "str":
            return value
        if tag == _SIMPLE + "int" and value.lstrip("+-").isdigit():
            return int(value)
        if tag == _SIMPLE + "bool":
            return value.lower() in ("true", "yes", "on")
        if tag == _SIMPLE + "null":
            return None
        if tag == _SIMPLE + "float" and value.lstrip("+-").replace(".", "", 1).replace("e", "", 1).isdigit():
            return float(value)
        raise _Unusual
    if isinstance(node, yaml.SequenceNode) and tag == _SIMPLE + "seq":
        return [_build(item, depth + 1) for item in node.value]
    if isinstance(node, yaml.MappingNode) and tag == _SIMPLE + "map":
        out = {}
        for key, value in node.value:
            if key.tag == _SIMPLE + "merge":
                raise _Unusual
            built = _build(key, depth + 1)
            if isinstance(built, (list, dict)):
                raise _Unusual
            out[built] = _build(value, depth + 1)
        return out
    raise _Unusual


def _walk(node: yaml.Node, path: PathKey, positions: dict, problems: list, file: str) -> None:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(Diagnostic(
                    file=file, line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                    path=format_path(path + (key,)),
                    summary=f"duplicate key '{key}'",
                ))
            seen.add(key)
            _walk(value_node, path + (key,), positions, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), positions, problems, file)
