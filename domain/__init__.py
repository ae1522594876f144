"""ordo's models: resource types and lifecycles, inventory, requests, projects.

This package depends on nothing else of ordo's. It loads and validates the
YAML files people write and turns them into one resolved :class:`Model`.

The models (pydantic) are imported when first asked for: importing
``domain.errors`` or ``domain.gcpause`` (as ``ordo --help`` does) does not
build them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from domain.errors import Diagnostic, DiagnosticsError, OrdoError

if TYPE_CHECKING:   # what __getattr__ imports on first use, for type checkers and editors
    from domain.model import Model, Resource
    from domain.project import Project, load_project

_LAZY = {"Model": "domain.model", "Resource": "domain.model", "Project": "domain.project",
         "load_project": "domain.project"}

__all__ = [
    "Diagnostic",
    "DiagnosticsError",
    "Model",
    "OrdoError",
    "Project",
    "Resource",
    "load_project",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'domain' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
