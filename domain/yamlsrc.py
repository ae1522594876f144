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
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "syntax error"
        raise DiagnosticsError(
            [Diagnostic(file=shown, line=line, column=column, summary=f"invalid YAML: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise DiagnosticsError([Diagnostic(file=shown, summary=f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    positions: dict[PathKey, tuple[int, int]] = {}
    problems: list[Diagnostic] = []
    if node is not None:
        _walk(node, (), positions, problems, shown)
    if problems:
        raise DiagnosticsError(problems)
    return Source(file=shown, data=data, positions=positions)


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
