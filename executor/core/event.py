"""A journal entry: what the run core records and a run is rebuilt from.

Its own module so that reading a journal (``ordo plan`` reads what runs
recorded) does not build the run core's other messages
(executor/core/messages.py, which re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One journal entry. ``data`` is JSON-compatible."""

    kind: str
    op: str | None = None
    key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    run: int = 0
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "run": self.run, "at": round(self.at, 6), "kind": self.kind}
        if self.op is not None:
            out["op"] = self.op
        if self.key is not None:
            out["key"] = self.key
        # (the data's own keys never stand for the envelope's: an event whose data says "kind" or "seq",
        # a forged decision's, was shown as another kind of event)
        out.update((k, v) for k, v in self.data.items() if k not in out)
        return out
