"""The run core's messages as plain JSON values: what crosses Temporal's payloads.

Used on both sides (workflow and activities), so it imports nothing that does I/O.
A run is named by a *reference* (``Ref``: where its journal and project are, its
number, its options), never by its plan: the plan lives in the journal.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from domain.model import RetryPolicy
from executor.core import CallError, Denial, Event, Found, OpSpec, Outcome, PlanSpec

#: A run's reference: journal, project files, run number, options (all JSON values).
Ref = dict[str, Any]


def event_out(ev: Event) -> dict[str, Any]:
    return asdict(ev)


def event_in(data: dict[str, Any]) -> Event:
    return Event(**data)


def spec_out(spec: PlanSpec) -> dict[str, Any]:
    return asdict(spec)


def spec_in(data: dict[str, Any]) -> PlanSpec:
    ops = {oid: OpSpec(timeout=o["timeout"], retry=RetryPolicy(**o["retry"])) for oid, o in data["ops"].items()}
    return PlanSpec(limit=data["limit"], ops=ops, controller_limits=dict(data["controller_limits"]),
                    guarded=data["guarded"], max_replans=data["max_replans"])


def outcome_out(outcome: Outcome) -> dict[str, Any]:
    return asdict(outcome)


def outcome_in(data: dict[str, Any]) -> Outcome:
    error = data.get("error")
    return Outcome(**{**data, "error": CallError(**error) if error else None})


def denial_in(data: dict[str, Any]) -> Denial:
    return Denial(**data)


def found_in(data: dict[str, Any]) -> Found:
    return Found(**data)


def queue_for(controller: str, prefix: str) -> str:
    """The task queue of a controller's calls: workers next to that controller listen on it."""
    return f"{prefix}-{controller}"
