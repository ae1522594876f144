"""JSON Schemas of the file formats, for editors (``ordo schema``)."""

from __future__ import annotations

import json
from typing import Any

from domain.formats import CatalogFile, InventoryFile, ProjectFile, RequestFile
from domain.guards import GuardsFile

_MODELS = {"project": ProjectFile, "catalog": CatalogFile, "inventory": InventoryFile, "request": RequestFile,
           "guards": GuardsFile}


#: pydantic's names of bounds it leaves in a schema where a bound is set on a field of two types (a
#: number or null): JSON Schema's names for them (editors read these only: the bound went unchecked).
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _json_bounds(node: Any) -> Any:
    """The schema with pydantic's bound keywords renamed to JSON Schema's, in every schema of a number."""
    if isinstance(node, list):
        return [_json_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    numeric = node.get("type") in ("integer", "number")
    return {(_BOUNDS.get(key, key) if numeric else key): _json_bounds(value) for key, value in node.items()}


def json_schema(kind: str) -> str:
    model = _MODELS[kind]
    body = _json_bounds(model.model_json_schema(by_alias=True))
    body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    body["title"] = f"ordo {kind} file"
    return json.dumps(body, indent=2, sort_keys=True) + "\n"
