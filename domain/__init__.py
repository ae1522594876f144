"""ordo's models: resource types and lifecycles, inventory, requests, projects.

This package depends on nothing else of ordo's. It loads and validates the
YAML files people write and turns them into one resolved :class:`Model`.
"""

from domain.errors import Diagnostic, DiagnosticsError, OrdoError
from domain.model import Model, Resource
from domain.project import Project, load_project

__all__ = [
    "Diagnostic",
    "DiagnosticsError",
    "Model",
    "OrdoError",
    "Project",
    "Resource",
    "load_project",
]
