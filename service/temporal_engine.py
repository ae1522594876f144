"""``ordo serve --engine temporal``: the service's runs as Temporal workflows (issue 11).

:class:`TemporalEngine` is the embedded engine (``service/engine.py``: loading,
planning, claims, idempotency keys, reading runs, events and state from the journal)
with one difference: an accepted run is started as a workflow on ``ordo worker``
processes (one per run, its id named after the journal and the run, so a duplicate
cannot start twice) and followed on a thread of the server, which carries nothing
out itself. Abort is the workflow's ``stop`` signal (``executor/runs.abort``). A
server that stops or dies leaves its runs' workflows going on: at its next start it
follows again those it was following (the journal shows them running, and held by
this server, again). A run that fell out waits in its workflow for a decision: resume,
rollback and abort send it the ``decide`` signal (``executor/runs``); a run whose workflow
ended (interrupted, failed) is resumed as with the embedded engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from domain.errors import OrdoError
from executor import runs
from executor.engine import ExecutionError, RunResult
from executor.journal import RunInfo
from executor.temporal import Temporal, load_client, workflow_id
from planner.plan import Plan
from service.engine import RESTART, TAKEOVER, Conflict, LocalEngine, Unavailable


@dataclass
class TemporalEngine(LocalEngine):
    temporal: Temporal | None = None

    def _where(self) -> Temporal:
        assert self.temporal is not None, "TemporalEngine needs temporal="
        return self.temporal

    def _execute(self, project: Any, plan: Plan, options: Any, listener: Any, around: Any, claims: list[str],
                 record: dict[str, Any]) -> RunResult:
        return runs.execute(project, plan, options, self.path, listener=listener, around=around, claims=claims,
                            record=record, temporal=self._where())

    def resume(self, run_id: int, principal: str, record: dict[str, Any] | None = None) -> int:
        return self._carried_on(run_id, principal, record, rollback=False)

    def rollback(self, run_id: int, principal: str) -> int:
        return self._carried_on(run_id, principal, None, rollback=True)

    def _carried_on(self, run_id: int, principal: str, record: dict[str, Any] | None, *, rollback: bool) -> int:
        """A run on Temporal that no server follows (crashed; interrupted by its follower's failure:
        ``runs.unfollowed``) is what its workflow does, as ``runs.carried_on`` decides for a follower: one
        that waits for a decision (the resume that took the run died before its decision reached it) gets
        the one asked for, as ``ordo resume`` sends it (a look's or a start's: the one the dead resume asked
        for); one that goes on is followed again here (a resume that names a request of its own, an SO one,
        or a rollback is refused before anything is journaled: there is nothing to resume); one that is
        gone is resumed here if its follower stopped, else followed again, which ends it failed. Any other
        run: as the embedded engine."""
        info = self.run(run_id)
        status = info.effective_status
        if info.options.get("engine") != "temporal" or not runs.unfollowed(self._journal(), info):
            return self._embedded(run_id, principal, record, rollback=rollback)
        state = self._workflow_state(info)   # (TemporalError: Temporal does not answer, nothing is known)
        try:
            way = runs.carried_on(run_id, status, state, workflow_id(self._journal().id, run_id), follower=True,
                                  rollback=rollback, request=record is not None,
                                  address=info.options.get("temporal"))
        except ExecutionError as exc:
            raise Conflict(str(exc)) from None
        if way == "decide":
            if principal in (TAKEOVER, RESTART):   # the decision the resume that died asked for
                asked = self._journal().last_event(run_id, ("resume-requested",))
                rollback = asked is not None and bool(asked.data.get("rollback"))
            return self._resume(run_id, principal, rollback=rollback, record=record, lost=True)
        if way == "here":
            return self._embedded(run_id, principal, record, rollback=rollback)
        # Its workflow went on without the server that followed it (or is gone: following ends it): follow it.
        if not self._accepting:
            raise Unavailable("the server is shutting down and resumes nothing")
        with self._lock:
            if run_id in self._driving:
                raise Conflict(f"run {run_id} is being carried out now")
            self._driving.add(run_id)

        def go(listener: Any, around: Any) -> RunResult:
            return load_client().follow_again(self.path, run_id, self._where(), listener=listener, around=around)

        try:
            last = self._journal().last_event(run_id)
        except BaseException:
            with self._lock:
                self._driving.discard(run_id)
            raise
        return self._launch(go, run_id, counted=last.seq if last is not None else 0)

    def _embedded(self, run_id: int, principal: str, record: dict[str, Any] | None, *, rollback: bool) -> int:
        """The run resumed or rolled back as the embedded engine does it."""
        if rollback:
            return super().rollback(run_id, principal)
        return super().resume(run_id, principal, record=record)

    def _workflow_state(self, info: RunInfo) -> str:
        """``executor.temporal.client.workflow_state`` of the run's workflow (TemporalError if Temporal
        does not answer; a run that names no Temporal: gone)."""
        address = info.options.get("temporal")
        if not isinstance(address, str):
            return "gone"
        return load_client().workflow_state(address, self._journal().id, info.id)

    def _no_workflow_goes_on(self, info: RunInfo) -> bool:
        """Whether a look takes the run over: Temporal knows no workflow of it going on (a look then
        follows it again here, which ends it failed: a workflow never started because its server died
        between journaling the run and starting it held the run's resources for good), or its workflow
        waits for the decision a resume that died did not send (sent then)."""
        try:
            return self._workflow_state(info) != "goes on"
        except OrdoError:   # (Temporal cannot be reached: nothing is known; asked again at the next look)
            return False

    def stop(self, drain: float | None = None) -> None:
        """Take nothing new, look for runs to take over no more; the workflows go on (followed again at
        the next start): there is nothing to drain."""
        with self._lock:
            self._accepting = False
            self._executors.clear()  # a stop would end the workflows "interrupted": nothing is asked of them
        self._stopping.set()   # (the takeover's watch ends: it outlived the server in a process that went on)

    def stops_with_server(self, run_id: int) -> bool:
        """None does: a workflow goes on without the server that follows it."""
        return False

    def shutdown(self, timeout: float = 30.0) -> None:
        """Take nothing new and stop following (the watch for runs to take over waited for, up to
        ``timeout`` seconds: it may be asking Temporal; the followers not: their workflows go on)."""
        self.stop()
        with self._lock:
            watches = [t for t in self._threads if t.name == "ordo-takeover"]
        deadline = time.monotonic() + timeout
        for watch in watches:
            watch.join(max(0.0, deadline - time.monotonic()))
        super().shutdown(timeout=0.0)
