"""How many plans a long-lived process makes at once (``ordo serve``, ``ordo worker``).

A plan's children take CPUs, and up to its project's memory cap between them
(planner/bounded.py), so a server answering a burst of requests, or a worker
taking a sweep's scenarios, must not make them all at once. Each plan takes a
slot: one CPU of those the process may use, and its project's memory cap out of
the memory the process may use (planner/machine.py: the container's limits
count). One plan is always let in, however large its cap. Plans past the slots
wait their turn, first come first served: a plan with a large cap is not passed
over again and again by small ones. Urgent plans (a run's re-plan: the run
waits on it) go ahead of the others waiting, behind the urgent ones before them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from domain.errors import OrdoError

if TYPE_CHECKING:
    from domain.project import Project


#: Seconds between two questions whether a plan waiting for a slot, or being made, is still wanted.
CANCEL_POLL = 0.25


class PlanCancelled(OrdoError):
    """The caller no longer wanted the plan (``cancelled`` said so), waiting for a slot or being made
    (planner/bounded.py: its children were ended)."""


class SlotsBusy(OrdoError):
    """No plan slot came free within the time a caller would wait."""


class PlanSlots:
    """The plan slots of one process: ``cpus`` plans at once, whose memory caps add up to at most
    ``memory_mb`` (None: no limit known, the CPUs alone count). Thread-safe."""

    def __init__(self, cpus: int, memory_mb: int | None) -> None:
        self.cpus = max(1, cpus)
        self.memory_mb = memory_mb
        self._cond = threading.Condition()
        self._busy = 0
        self._used = 0
        self._queue: list[tuple[bool, object]] = []   # the waiters in turn: (urgent, ticket)

    @classmethod
    def for_machine(cls) -> PlanSlots:
        """The slots of this process: its CPUs and its memory, the container's limits counted."""
        from planner import machine

        return cls(machine.cpus(), machine.memory_mb())

    @property
    def busy(self) -> int:
        """Plans being made now."""
        with self._cond:
            return self._busy

    def need(self, project: Project) -> int:
        """The memory a plan of ``project`` takes of the slots: its cap, at most all there is."""
        from planner.bounded import memory_for

        return self._need(memory_for(project))

    def _need(self, cap: int) -> int:
        return cap if self.memory_mb is None else min(cap, self.memory_mb)

    def at_once(self, cap_mb: int) -> int:
        """How many plans with a memory cap of ``cap_mb`` the slots let in at once."""
        return self.cpus if self.memory_mb is None else max(1, min(self.cpus, self.memory_mb // self._need(cap_mb)))

    @contextmanager
    def slot(self, project: Project, timeout: float | None = None, *, urgent: bool = False,
             cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        """A slot while a plan of ``project`` is made; SlotsBusy when none comes free within
        ``timeout`` seconds (None: wait for one). ``urgent``: ahead of the plans waiting that are not.
        ``cancelled``: asked every ``CANCEL_POLL`` seconds while waiting (not under the slots' lock);
        once it says so, PlanCancelled."""
        need = self.need(project)
        taken = False
        try:
            outcome = self._acquire(need, timeout, urgent, cancelled)
            taken = outcome == "taken"
            if outcome == "cancelled":
                raise PlanCancelled("stopped while the plan waited for a plan slot")
            if not taken:
                busy = self.busy
                raise SlotsBusy(f"{busy} plan{'' if busy == 1 else 's'} in progress, as many as this process "
                                "makes at once")
            yield
        finally:
            if taken:
                with self._cond:
                    self._busy -= 1
                    self._used -= need
                    self._cond.notify_all()

    def _fits(self, need: int) -> bool:
        if self._busy == 0:
            return True
        return self._busy < self.cpus and (self.memory_mb is None or self._used + need <= self.memory_mb)

    def _acquire(self, need: int, timeout: float | None, urgent: bool,
                 cancelled: Callable[[], bool] | None = None) -> str:
        """Whether the slot was taken ("taken"), or why not ("timeout", "cancelled")."""
        deadline = None if timeout is None else time.monotonic() + timeout
        entry = (urgent, object())
        with self._cond:
            # behind every waiter of its kind, ahead of the others (urgent ones are all at the front)
            at = sum(1 for first, _ in self._queue if first) if urgent else len(self._queue)
            self._queue.insert(at, entry)
        try:
            while True:
                with self._cond:
                    if self._queue[0] is entry and self._fits(need):
                        self._busy += 1
                        self._used += need
                        return "taken"
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return "timeout"
                    if cancelled is not None:
                        left = CANCEL_POLL if left is None else min(left, CANCEL_POLL)
                    self._cond.wait(left)
                if cancelled is not None and cancelled():   # (asked outside the lock: it may read a journal)
                    return "cancelled"
        finally:
            with self._cond:
                self._queue.remove(entry)
                self._cond.notify_all()   # the next in line may fit now, or be first
