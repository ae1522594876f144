"""The run loop's decisions, with no clock, thread, file, database or random of its own.

A host (``executor/engine.py``: worker threads and the SQLite journal; later a
Temporal workflow) feeds :class:`RunCore` inputs (``messages``: a plan to
begin with, calls that completed, the time now, guard answers, what was
observed, a new plan) and carries out the commands it returns (record these
journal events, dispatch these calls, observe these resources, plan again,
wait until T, end the run). The run's state (``state.RunState``) changes only
by :meth:`RunState.apply` of journal events: the same code builds it live and
when a run is resumed from its journal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # what __getattr__ imports on first use, for type checkers and editors
    from executor.core.event import Event
    from executor.core.loop import RunCore
    from executor.core.messages import (
        Abandon,
        Admit,
        Admitted,
        Arrived,
        Begin,
        Call,
        CallError,
        Collect,
        Completed,
        Concern,
        Continue,
        Denial,
        Dispatch,
        End,
        ExecutionError,
        Found,
        Look,
        NoPlan,
        Observe,
        Observed,
        OpSpec,
        Outcome,
        Planned,
        PlanSpec,
        Probe,
        Probed,
        Record,
        Replan,
        Resumed,
        Stop,
        Tick,
        Wait,
    )
    from executor.core.state import Failure, RunState

__all__ = ["Abandon", "Admit", "Admitted", "Arrived", "Begin", "Call", "CallError", "Collect", "Completed", "Concern",
           "Continue", "Denial", "Dispatch", "End", "Event", "ExecutionError", "Failure", "Found", "Look", "NoPlan",
           "Observe", "Observed", "OpSpec", "Outcome", "PlanSpec", "Planned", "Probe", "Probed", "Record", "Replan",
           "Resumed", "RunCore", "RunState", "Stop", "Tick", "Wait"]

#: The module of each name that is not in ``messages``.
_HOMES = {"RunCore": "loop", "Failure": "state", "RunState": "state"}


def __getattr__(name: str) -> Any:
    """The names above, imported when first asked for: reading a journal
    (``ordo plan``) needs only ``executor.core.event``, not the run loop."""
    if name not in __all__:
        raise AttributeError(f"module 'executor.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"executor.core.{_HOMES.get(name, 'messages')}"), name)
    globals()[name] = value
    return value
