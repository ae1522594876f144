"""Declared waits: an outside event delivered to the operation of a run that waits for it.

An operation whose catalog entry has ``wait: {event: NAME, deadline: SECONDS}`` completes when
event NAME arrives for its resource (policies/README.md, Waiting). The event comes from outside
ordo (a PNF's registration, a controller's callback) through `ordo event` or the service's
``POST /v1/runs/RUN/events``; both call :func:`deliver`, which checks it against the run's journal
and writes it there as an ``event-received`` event. The process that carries the run out (if any)
picks it up from the journal; a run that nobody carries out now (crashed, interrupted) consumes it
when it is resumed.

The event's data is untrusted: a flat mapping of at most :data:`MAX_KEYS` names to short scalars
(:data:`MAX_TEXT` characters, :data:`MAX_BYTES` in all), and what looks secret in it (or is a
declared secret of the resource's type) is masked before it is journaled.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from domain.errors import OrdoError
from domain.formats import is_name, solver_value
from domain.secrets import fingerprint, same_value
from executor.core import ExecutionError, RunState
from executor.engine import rebuild
from executor.journal import Event, Journal
from executor.redact import Redactor

MAX_KEYS = 50
MAX_TEXT = 4096
MAX_BYTES = 16 * 1024
#: Runs that can still take an event: going on, or resumable.
OPEN = ("running", "crashed", "interrupted", "fallout", "failed")


class EventError(OrdoError):
    """The event names a resource or an event that the run does not wait for, or carries bad data."""


@dataclass(frozen=True)
class Delivered:
    run: int
    op: str
    seq: int | None          # the event-received event; None: the same event had arrived already
    message: str


def event_data(data: Any, where: str = "data") -> dict[str, Any]:
    """``data`` if it is a small flat mapping of names to scalars; EventError naming the field if not."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EventError(f"{where}: expected a mapping of names to values")
    if len(data) > MAX_KEYS:
        raise EventError(f"{where}: {len(data)} keys, at most {MAX_KEYS}")
    for key, value in data.items():
        if not is_name(key):
            raise EventError(f"{where}: key {str(key)[:80]!r} is not a name (letters, digits, '_.:-', "
                             "starting with a letter or digit)")
        if value is not None and not isinstance(value, bool | int | float | str):
            raise EventError(f"{where}.{key}: expected text, a number or a boolean")
        if isinstance(value, float) and not math.isfinite(value):
            raise EventError(f"{where}.{key}: not a finite number")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise EventError(f"{where}.{key}: text of {len(value):,} characters, at most {MAX_TEXT:,}")
        try:
            solver_value(value, shown=False)   # (an event may carry a secret)
        except ValueError as exc:
            raise EventError(f"{where}.{key}: {exc}") from None
    if len(json.dumps(data)) > MAX_BYTES:
        raise EventError(f"{where}: more than {MAX_BYTES:,} bytes")
    return dict(data)


def waiting_op(rs: RunState, resource: str, event: str) -> str:
    """The operation of the run's current plan on ``resource`` that waits for ``event``."""
    ops = [op for op in (rs.plan.operations if rs.plan else ()) if op.resource == resource]
    if not ops:
        raise EventError(f"resource: run {rs.run} has no operation on '{resource}'")
    waits = {op.id: rs.waits[op.id] for op in ops if op.id in rs.waits and op.id not in rs.done}
    for oid, wait in sorted(waits.items()):
        if wait.get("event") == event:
            return oid
    names = sorted({w["event"] for w in waits.values() if "event" in w})
    if names:
        raise EventError(f"event: '{resource}' waits for {', '.join(repr(n) for n in names)}, not '{event}'")
    raise ExecutionError(f"no operation on '{resource}' waits for an event now (run {rs.run}: "
                         f"{', '.join(op.id for op in ops)})")


def _taken(rs: RunState, events: list[Event], resource: str, event: str) -> str | None:
    """The operation on ``resource`` that ``event`` arrived for last in the run, nothing waiting for it
    since (its event-received event's data to ``rs.arrived``), or None. (Of any plan: after a re-plan, the
    op done is in none, and a retried callback was refused, "run 1 has no operation on 'pnf-1'", a review's.)"""
    for ev in reversed(events):
        if ev.kind == "event-received" and ev.data.get("resource") == resource and ev.data.get("event") == event:
            rs.arrived[ev.op] = ev.data
            return ev.op
    return None


def _same_data(arrived: dict[str, Any], sent: dict[str, Any], redactor: Redactor) -> bool:
    """Whether the data of an event that arrived (its event-received event's, as the journal holds it) is
    what was sent again: by the salted fingerprint of all of it that the event keeps (``sent``); an
    event written before it was kept, by its data as masked when written (text the masking hid counts
    as the same)."""
    if "sent" in arrived:
        return same_value(arrived["sent"], sent)
    recorded = arrived.get("data") or {}
    return recorded.keys() == sent.keys() and all(
        same_value(recorded[k], v) or recorded[k] == redactor.tree(v) for k, v in sent.items())


def deliver(jr: Journal, run_id: int, resource: str, event: str, data: Any, principal: str, *,
            now: float | None = None) -> Delivered:
    """Write event ``event`` for ``resource`` to run ``run_id``, for the operation that waits for it.
    EventError: no such resource or event, bad data; ExecutionError: the run has ended, nothing waits,
    the deadline passed. The same event again is not written twice (a controller's retried callback)."""
    for value, field in ((resource, "resource"), (event, "event")):
        if not is_name(value):
            raise EventError(f"{field}: {str(value)[:80]!r} is not a name")
    data = event_data(data)
    for _ in range(_TRIES):
        done = _deliver(jr, run_id, resource, event, data, principal, now)
        if done is not None:
            return done
    raise ExecutionError(f"run {run_id} moved on while event '{event}' for {resource} was delivered, "
                         f"{_TRIES} times: nothing was written; send it again")


#: How many times a delivery reads the run again when something was written for its operation meanwhile.
_TRIES = 5


def _deliver(jr: Journal, run_id: int, resource: str, event: str, data: dict[str, Any], principal: str,
             now: float | None) -> Delivered | None:
    """One try of ``deliver``: the run read, the event written in one transaction with a look at what
    was written since that read. None: the run ended, or something was written for the operation
    (another delivery of the event, its deadline's failure), between the read and the write; nothing
    was written, and the next try decides on the run as it is then. Two deliveries at once, with
    other data each, were both written and both answered "delivered", and the second one's data was
    dropped (the run takes the first)."""
    info = jr.run(run_id)
    status = info.effective_status
    if status not in OPEN:
        raise ExecutionError(f"run {run_id} is {status}: it waits for nothing")
    events = jr.events(run_id)
    rs = rebuild(jr, run_id, events)
    try:
        oid = waiting_op(rs, resource, event)
    except OrdoError:
        # taken already, and its operation done: a retried callback is answered as while it still waited
        # (it was refused, "no operation waits for an event now", once the run had gone on)
        oid = _taken(rs, events, resource, event)
        if oid is None:
            raise
    else:
        jr.redactor.add_names(rs.waits[oid].get("hidden", ()))
    wait = rs.waits.get(oid)
    if oid in rs.arrived or wait is None:
        # the same again (a retried callback) is no news; other data for an event that arrived is refused,
        # not dropped in silence: the first stands
        if not _same_data(rs.arrived[oid], data, jr.redactor):
            raise ExecutionError(f"event '{event}' for {resource} arrived already with other data (run {run_id}, "
                                 f"{oid}): the first stands, and nothing was written")
        return Delivered(run_id, oid, None, f"Event '{event}' for {resource} had arrived already (run {run_id}, "
                                            f"{oid}); nothing written.")
    # the deadline on the run's clock, and the wait's length from when its start was journaled (on the wall
    # clock): the run's clock is monotonic, and after the wall clock was set forward the deadline it journaled
    # for a wait just begun was past for every other process (a sweep of clocks and time's)
    began = next((ev.at for ev in reversed(events) if ev.kind == "waiting" and ev.op == oid
                  and ev.data.get("deadline") == wait["deadline"]), None)
    deadline = wait["deadline"] if began is None else max(wait["deadline"], began + wait["seconds"])
    if (time.time() if now is None else now) > deadline:
        raise ExecutionError(f"{oid} waited for '{event}' until its deadline ({wait['seconds']:g} s), which has "
                             f"passed: it fails when run {run_id} goes on")
    stored, written = jr.append_once(run_id, [Event("event-received", op=oid, data={
        "resource": resource, "event": event, "data": data, "principal": principal, "sent": fingerprint(data)})],
        since=events[-1].seq if events else 0, same=lambda new, old: old.op == new.op,
        only_if=lambda now_info: now_info.effective_status in OPEN)
    if not written:
        return None
    then = "it goes on at once" if status == "running" else f"`ordo resume {run_id}` goes on with it"
    return Delivered(run_id, oid, stored[-1].seq, f"Event '{event}' for {resource} delivered to run {run_id} "
                                                  f"({oid}); {then}.")
