"""Controller adapters, found by name and imported only when used.

Adapters register under the ``ordo.controllers`` entry-point group, so a
package can add one without touching ordo::

    [project.entry-points."ordo.controllers"]
    netconf = "my_package.netconf:NetconfController"

The built-in ones (simulated, http, command) are also known without
installation metadata, for running from a source checkout.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from executor.controllers.base import (
    ConfigError,
    Controller,
    ControllerContext,
    ControllerError,
    Factory,
    Observation,
    OperationRequest,
    PermanentError,
    TransientError,
)

__all__ = [
    "ConfigError", "Controller", "ControllerContext", "ControllerError", "Factory", "Observation",
    "OperationRequest", "PermanentError", "TransientError", "adapter_names", "load_adapter", "make_controllers",
]

GROUP = "ordo.controllers"
BUILTIN = {
    "simulated": "executor.controllers.simulated:SimulatedController",
    "http": "executor.controllers.http:HttpController",
    "command": "executor.controllers.command:CommandController",
}


def _registered() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def adapter_names() -> list[str]:
    return sorted(_registered())


def load_adapter(kind: str) -> Factory:
    """The factory registered as ``kind``; ConfigError if there is none or it fails to import."""
    registered = _registered()
    target = registered.get(kind)
    if target is None:
        close = difflib.get_close_matches(kind, list(registered), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(sorted(registered))}"
        raise ConfigError(f"unknown controller kind '{kind}' ({hint})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"controller kind '{kind}': cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError(f"controller kind '{kind}': {module_name} has no '{attr}'")
    return factory


def controller_problems(specs: dict[str, Any], root: Path) -> list[tuple[str, str, str]]:
    """(controller, field under it, what is wrong) for each controller of the catalog that apply
    would refuse to make: a ``kind`` naming no adapter this ordo has (or one that does not import),
    a ``config`` its adapter refuses (``check_config``: what it would read of the machine that runs
    it, its environment variables, a program on its PATH, is not asked). For ``ordo check``: a
    config that apply refused was passed as valid."""
    out = []
    for name, spec in sorted(specs.items()):
        try:
            factory = load_adapter(spec.kind)
        except ConfigError as exc:
            out.append((name, "kind", str(exc)))
            continue
        checker = getattr(factory, "check_config", None)
        if checker is None:
            continue
        try:
            checker(dict(spec.config), root)
        except ConfigError as exc:
            field, sep, why = str(exc).partition(": ")
            at_field = sep and field.startswith("config") and " " not in field
            out.append((name, field if at_field else "config", why if at_field else str(exc)))
    return out


def make_controllers(specs: dict[str, Any], names: set[str], context: ControllerContext) -> dict[str, Controller]:
    """One adapter instance per controller the plan uses. ``specs`` maps names
    to the catalog's ControllerSpec. Errors name ``controllers.NAME``."""
    made: dict[str, Controller] = {}
    try:
        for name in sorted(names):
            spec = specs[name]
            try:
                made[name] = load_adapter(spec.kind)(name, dict(spec.config), context)
            except ConfigError as exc:
                raise ConfigError(f"catalog: controllers.{name}: {exc}") from None
    except BaseException:
        for controller in made.values():
            controller.close()
        raise
    return made
