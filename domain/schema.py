"""JSON Schemas of the file formats, for editors (``ordo schema``)."""

from __future__ import annotations

import json

from domain.formats import CatalogFile, InventoryFile, ProjectFile, RequestFile
from domain.guards import GuardsFile

_MODELS = {"project": ProjectFile, "catalog": CatalogFile, "inventory": InventoryFile, "request": RequestFile,
           "guards": GuardsFile}


def json_schema(kind: str) -> str:
    model = _MODELS[kind]
    body = model.model_json_schema(by_alias=True)
    body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    body["title"] = f"ordo {kind} file"
    return json.dumps(body, indent=2, sort_keys=True) + "\n"
