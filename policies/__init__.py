"""ordo's policy library: the base rules and stock business policies (ASP).

The files are package data, found the same way whether ordo is installed
from a wheel or in editable mode.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _folder(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def base_files() -> list[Path]:
    """The base library, always loaded: lifecycle, ordering, placement."""
    return sorted(_folder("base").glob("*.lp"))


def library() -> dict[str, Path]:
    """Stock policies a project enables by name under ``policies.library``."""
    return {p.stem: p for p in sorted(_folder("library").glob("*.lp"))}


def replan_files() -> list[Path]:
    """Loaded only when the executor re-plans after a failure (stability)."""
    return sorted(_folder("replan").glob("*.lp"))


def internal(name: str) -> str:
    """The text of one of the planner's own programs (``internal/NAME.lp``):
    the glue and the solving modes, added to every Control with the policies."""
    return (_folder("internal") / f"{name}.lp").read_text(encoding="utf-8")
