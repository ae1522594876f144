"""What runs carried out side by side share: the controllers' concurrency and the runtime guards.

One :class:`Shared` per server (the service's ``LocalEngine``), handed to every
:class:`~executor.engine.Executor` it starts. With it:

* a controller's ``concurrency`` bounds the calls in flight across every run on the
  journal, not per run: each call holds a slot, a lease in the journal (``slots``), taken
  before the call and given back once it answers (or is given up on). A lease expires with
  its call's timeout and a grace, so the slots of a process that died come free. Leases are
  in the journal, so servers sharing a PostgreSQL journal share them too.
* the runtime guards are one :class:`~executor.guards.GuardEngine` for the runs of this
  process (per set of guards): rate limits, instance counts and exclusions count every
  run's operations. Servers sharing a journal do not share guard budgets.
* the plan slots (planner/slots.py): the runs' re-plans take them as the server's
  own plans do, so that runs failing together do not plan all at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from planner.slots import PlanSlots

#: Seconds a slot's lease outlives its call's timeout (its holder may be slow to give it back).
GRACE = 60.0
#: Seconds before an operation held back for want of a slot asks again (sooner when one of its run's ends).
RETRY = 0.1


class Shared:
    """The limits and guards shared by the runs of one server; ``plans``: its plan slots
    (default: as many as fit the machine)."""

    def __init__(self, plans: PlanSlots | None = None) -> None:
        self._lock = threading.Lock()
        self._guards: dict[str, Any] = {}
        self.plans = plans or PlanSlots.for_machine()

    def guard_engine(self, guards: Sequence[Any]) -> Any:
        """The one guard engine of these guards (a project's guards edited make another)."""
        from executor.guards import GuardEngine

        key = repr(tuple(guards))
        with self._lock:
            engine = self._guards.get(key)
            if engine is None:
                engine = self._guards[key] = GuardEngine(guards)
            return engine


__all__ = ["GRACE", "RETRY", "Shared"]
