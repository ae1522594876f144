"""The Temporal host's activities: everything that does I/O for a run driven by a workflow.

Planning and re-planning (clingo), observing, the guards, journal writes and
each operation's controller call run here, never in workflow code. The work
itself is the local host's (``executor.engine.Executor``: the same target and
input resolution, the same records, the same observe-before-resend verdict),
on a journal shared by every worker. A worker keeps one ``Executor`` per run
(its controllers, the project of each plan) and reads the journal afresh for
each activity: any worker can take any activity of any run.

At-least-once made exactly-once: a call activity's second attempt (its worker
was lost, or it timed out) observes the resource under the key of the intent
before it sends anything again, and journal writes that are retried after
their commit, or while the first attempt still runs, are recognised and not
written twice (``Journal.append_once``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from domain.errors import OrdoError, clipped
from domain.formats import ObservedResource, is_name
from domain.limits import MOST_SECONDS
from domain.project import Project, display_path, load_project, project_folder
from domain.secrets import MASK, fingerprint, redacted, same_value
from executor.controllers import OperationRequest
from executor.core import (
    Admit,
    Call,
    CallError,
    Concern,
    End,
    Event,
    NoPlan,
    Observe,
    Outcome,
    Planned,
    PlanSpec,
    Record,
    Replan,
    RunState,
)
from executor.core.loop import replanned
from executor.engine import ApplyOptions, Executor, SecretUnavailable
from executor.journal import (
    RESUMABLE,
    Journal,
    JournalError,
    JournalLost,
    JournalUrl,
    NoJournal,
    NoRun,
    NotAJournal,
    RunEnded,
    refreshed,
)
from executor.runs import resolved_path
from executor.store import location
from executor.sweeps import plan_job
from executor.temporal import waits_refused, workflow_id
from executor.temporal.wire import (
    INPUTS,
    Ref,
    event_in,
    event_out,
    job_problem,
    outcome_out,
    outline_out,
    outline_page,
    state_out,
)
from planner.plan import Plan
from planner.slots import PlanCancelled, PlanSlots

T = TypeVar("T")

#: Seconds between heartbeats of a running activity (a lost worker is noticed after HEARTBEAT_TIMEOUT).
HEARTBEAT_EVERY = 0.5
#: Seconds at most between the heartbeats a worker sends on (it sends fewer than are made).
HEARTBEAT_THROTTLE = 1.0
HEARTBEAT_TIMEOUT = 3.0
#: Seconds after which a run no activity of this worker used is let go (its journal connection closed).
RUN_IDLE = 300.0
#: Error types a workflow does not retry: a controller's permanent failure, a problem in the inputs.
PERMANENT = "permanent"


@dataclass
class _Run:
    executor: Executor
    lock: threading.Lock = field(default_factory=threading.Lock)
    projects: dict[int, Project] = field(default_factory=dict)   # plan number -> the project it was made from
    plans: dict[int, Plan] = field(default_factory=dict)
    seen: int = -1                                                 # the journal's records are read up to here
    outlines: dict[int, dict[str, Any]] = field(default_factory=dict)
    busy: int = 0          # activities using it now
    used: float = 0.0      # when the last one ended (time.monotonic())
    forgotten: bool = False   # let go while in use: closed when the last activity using it ends


class Activities:
    """One worker's activities. ``journal``: where this worker finds the journal, when its path
    differs from the client's (another machine's mount)."""

    def __init__(self, *, journal: Path | str | None = None, project: Path | None = None) -> None:
        self._journal = journal
        #: The project folder this worker serves (``ordo worker -C``): a run of another is refused.
        self._serves = resolved_path(project) if project is not None else None
        self._runs: dict[tuple[str, str, int], _Run] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ordo-activity")
        self.plans = PlanSlots.for_machine()   # re-plans and sweeps' scenarios, made a few at a time

    def step_activities(self) -> list[Callable[..., Any]]:
        """The activities of the main queue (next to the journal and the planner)."""
        return [self.begin, self.state, self.outline, self.intents, self.admit, self.observe, self.replan,
                self.replanned, self.record, self.end, self.decide, self.whatif]

    def close(self) -> None:
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            run.executor.close()
            run.executor.journal.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the activities ---------------------------------------------------------------

    @activity.defn(name="ordo.begin")
    def begin(self, ref: Ref) -> dict[str, Any]:
        """The run's first plan, as the client journaled it with ``run-started`` (the plan the user
        confirmed: nothing is planned again), refused unless its digest is the one in the reference;
        its outline's head and the ``run-started`` data without the snapshot (kept in the journal)."""
        def work(run: _Run) -> dict[str, Any]:
            # (a workflow started by hand with a finished run's input, copied from its history, carried
            # the run's plan out again and wrote a second end: a sweep's)
            _going_on(run, ref, ("running",))
            started, planned = (run.executor.journal.events(ref["run"], limit=2) + [None, None])[:2]
            if planned is None or planned.kind != "plan" or planned.data.get("digest") != ref["digest"]:
                raise ApplicationError(f"run {ref['run']}: the journal does not hold the plan confirmed "
                                       f"({str(ref['digest'])[:12]}...)", type=INPUTS, non_retryable=True)
            run.executor._project = self._project(ref, run, 1)
            return {"seq": planned.seq, "head": self._outline(ref, run, 1)["head"],
                    "started": {**started.data, "snapshot": {}}}
        return self._locked(ref, work)

    @activity.defn(name="ordo.state")
    def state(self, ref: Ref) -> dict[str, Any]:
        """The run's state read back from its journal (a workflow continued as new takes it up), and the
        head of its plan's outline."""
        def work(run: _Run) -> dict[str, Any]:
            _going_on(run, ref, RESUMABLE)   # (as begin: an ended run is not taken up again)
            rs = RunState(run=ref["run"])
            for ev in run.executor.journal.events(ref["run"]):
                rs.apply(ev, self._plan(ref, run, ev.data["number"]) if ev.kind in ("plan", "replan") else None)
            head = self._outline(ref, run, rs.plan_no)["head"] if rs.plan is not None else None
            return {"state": state_out(rs), "head": head}
        return self._locked(ref, work)

    @activity.defn(name="ordo.outline")
    def outline(self, ref: Ref, plan_no: int, part: str, start: int) -> list[list[Any]]:
        """A page of plan ``plan_no``'s outline (``part``: ops or edges), read from the journal."""
        return self._locked(ref, lambda run: outline_page(self._outline(ref, run, plan_no), part, start))

    @activity.defn(name="ordo.intents")
    def intents(self, ref: Ref, plan_no: int, since: int, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One intent per call (target and inputs resolved from the journal), written in one transaction."""
        def work(run: _Run) -> list[dict[str, Any]]:
            ex = run.executor
            ex._project = self._project(ref, run, plan_no)
            plan = self._plan(ref, run, plan_no)
            rs = RunState(run=ref["run"], plan=plan, plan_no=plan_no)
            ops = {op.id: op for op in plan.operations}
            made = []
            for data in calls:
                call = Call(**data)
                request, intent, initial = ex._intent(rs, ops[call.op], call)
                made.append((intent, {"request": asdict(request), "initial": initial,
                                      "controller": ops[call.op].controller}))
            stored = ex.journal.append_once(ref["run"], [m[0] for m in made], since=since)[0]
            # the request crosses the workflow's history with its inputs as the intent was journaled (its
            # secrets fingerprinted): the call takes their values again where it runs (_sent), checked
            # against a digest of them (made only where redaction changed something)
            return [{"event": event_out(ev), **m[1], "request": {**m[1]["request"], "inputs": ev.data["inputs"]},
                     "inputs_digest": _digest(raw) if (raw := m[1]["request"]["inputs"]) != ev.data["inputs"] else None}
                    for ev, m in zip(stored, made, strict=True)]
        return self._locked(ref, work)

    @activity.defn(name="ordo.call")
    def call(self, ref: Ref, payload: dict[str, Any]) -> dict[str, Any]:
        """One operation at its controller, under the intent's key. Observed first when in doubt, and on
        any attempt after the first (the one before may have been applied). A permanent failure is a
        non-retryable error carrying the outcome; a transient one is an outcome (the run core retries it,
        journaled, with the catalog's backoff)."""
        with self._use(ref) as run:
            try:
                with run.lock:
                    ex = run.executor
                    ex._project = self._project(ref, run, payload["plan_no"])   # the plan's (a re-plan may load anew)
                    ctl = ex._controller(payload["controller"])
                    request = _sent(run, ref, payload)
            except JournalError:   # as _locked: retried on a connection of its own
                self._forget(ref)
                raise
            in_doubt = payload["observe_first"] or activity.info().attempt > 1
            outcome = self._beating(lambda: ex._outcome(ctl, payload["token"], payload["op"], request, in_doubt,
                                                        payload["initial"]))
        # what the workflow's history keeps is redacted as the journal is: outputs, the error's text
        redactor = ex.journal.redactor
        outcome = replace(outcome,
                          outputs=redactor.tree(outcome.outputs, values=True) if outcome.outputs else outcome.outputs,
                          error=replace(outcome.error, message=redactor.text(outcome.error.message))
                          if outcome.error is not None else None)
        if outcome.error is not None and not outcome.error.transient:
            raise ApplicationError(outcome.error.message, outcome_out(outcome), type=PERMANENT, non_retryable=True)
        return outcome_out(outcome)

    @activity.defn(name="ordo.admit")
    def admit(self, ref: Ref, plan_no: int, ops: list[str]) -> dict[str, Any]:
        """The guards' answer, from a guard engine that replays the run's journal (what is in flight,
        what ran when) before it is asked."""
        def work(run: _Run) -> dict[str, Any]:
            ex = run.executor
            ex._project, ex._guards = self._project(ref, run, plan_no), None
            plan = self._plan(ref, run, plan_no)
            rs = RunState(run=ref["run"], plan=plan, plan_no=plan_no)
            ex._replay_guards(rs, live=True)
            admitted = ex._admit(_core(rs), Admit(ops))
            return {"allowed": admitted.allowed, "denied": [asdict(d) for d in admitted.denied]}
        return self._locked(ref, work)

    @activity.defn(name="ordo.observe")
    def observe(self, ref: Ref, plan_no: int, concerns: list[dict[str, Any]]) -> dict[str, Any]:
        """What the controllers say of the resources concerned, and the records to journal with it."""
        def work(run: _Run) -> dict[str, Any]:
            ex = run.executor
            ex._project = project = self._project(ref, run, plan_no)
            # the run's state as journaled (the workflow records a failure before it observes it): the keys
            # of the calls in doubt, which the controllers are asked about
            plan = self._plan(ref, run, plan_no)
            rs = replace(ex._rebuild(ref["run"]), plan=plan, plan_no=plan_no)
            observed = ex._observe(_core(rs, ex._spec(project, plan)), Observe([Concern(**c) for c in concerns]))
            redactor = ex.journal.redactor   # as the journal will have them: the history keeps them too
            return {"found": [asdict(replace(f, error=redactor.text(f.error) if f.error else f.error))
                              for f in observed.found],
                    "records": {name: redactor.record(rec).model_dump(mode="json") for name, rec in ex._found.items()}}
        return self._locked(ref, work)

    @activity.defn(name="ordo.replan", no_thread_cancel_exception=True)
    def replan(self, ref: Ref, plan_no: int, since: int, cmd: dict[str, Any]) -> dict[str, Any]:
        """A new plan (clingo), from the project loaded again with the journal's records and what was learnt,
        journaled (the event the run core makes of it); the head of its outline. The snapshot a rollback
        needs is read from the journal. Cancelled (the workflow heard a stop), it ends the planning and
        journals nothing, unless it journaled the plan first (that answer stands)."""
        def work(run: _Run) -> dict[str, Any]:
            ex = run.executor
            number = plan_no + 1
            if (done := self._written(ref, run, since, number)) is not None:
                return done
            rs = ex._rebuild(ref["run"])
            replan = Replan(**{**cmd, "failed": [tuple(f) for f in cmd["failed"]],
                               "snapshot": rs.snapshot if cmd["mode"] == "rollback" else {}})
            # the workflow hears stops, not this; it cancels this activity, which ends the planning
            answer = ex._replan(_core(rs), replan, stoppable=False, cancelled=cancel.is_set)
            # another attempt (this one timed out while it waited for a plan slot or planned) may have
            # written it meanwhile: that one stands
            if (done := self._written(ref, run, since, number)) is not None:
                return done
            if cancel.is_set():   # nothing written: the workflow ends the run as its stop asks
                raise PlanCancelled("the run was stopped while it was re-planned")
            refused = waits_refused([oid for oid, spec in answer.spec.ops.items() if spec.wait is not None]) \
                if isinstance(answer, Planned) else None
            if refused is not None:   # the run falls out saying so (the first plan is refused before it starts)
                answer = NoPlan("error", {"summary": refused}, answer.seconds, answer.now)
            if isinstance(answer, NoPlan):   # into the workflow's history: a binding may be a secret param's
                return {"status": answer.status, "explanation": ex.journal.redactor.tree(answer.explanation),
                        "seconds": answer.seconds}
            event = replanned(number, cmd["reason"], cmd["mode"], answer.seconds, answer.plan, answer.snapshot)
            # plan N once: another attempt's, written between the look above and here, stands
            (stored,), mine = ex.journal.append_once(
                ref["run"], [event], since=since,
                same=lambda new, old: old.kind == "replan" and old.data.get("number") == number)
            if not mine:
                return self._written(ref, run, since, number)
            seq = stored.seq
            # kept once journaled: a plan whose append failed is not this worker's plan N (the retry's is)
            run.projects[number], run.plans[number] = ex._project, answer.plan
            run.outlines[number] = outline_out(answer.plan, answer.spec)
            return {"seq": seq, "seconds": answer.seconds, "head": run.outlines[number]["head"]}
        cancel = threading.Event()
        return self._locked(ref, work, cancel)

    @activity.defn(name="ordo.replanned")
    def replanned(self, ref: Ref, plan_no: int, since: int) -> dict[str, Any] | None:
        """Plan ``plan_no + 1`` as an attempt of ``ordo.replan`` journaled it (``ordo.replan``'s answer), or
        None: asked once a stop cancelled the re-plan, since an attempt may have journaled it before its
        answer was lost."""
        return self._locked(ref, lambda run: self._written(ref, run, since, plan_no + 1))

    def _written(self, ref: Ref, run: _Run, since: int, number: int) -> dict[str, Any] | None:
        """``ordo.replan``'s answer for plan ``number`` when an attempt journaled it (after ``since``)."""
        for ev in run.executor.journal.events(ref["run"], since=since, kinds=("replan",)):
            if ev.data["number"] == number:  # written by an attempt whose answer was lost
                for cache in (run.projects, run.plans, run.outlines):   # the journal's stands
                    cache.pop(number, None)
                return {"seq": ev.seq, "seconds": ev.data["seconds"],
                        "head": self._outline(ref, run, number)["head"]}
        return None

    @activity.defn(name="ordo.record")
    def record(self, ref: Ref, plan_no: int, since: int, step: str, events: list[dict[str, Any]],
               requests: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]) -> int:
        """The core's events of one step, in one transaction with the resources' records
        (a result's, from the request its intent made; an observation's). Returns the last sequence number."""
        def work(run: _Run) -> int:
            ex = run.executor
            cmd = Record([event_in(e) for e in events], step)
            ops: dict[str, Any] = {}
            if step == "settled":
                ex._project = self._project(ref, run, plan_no)
                ops = {op.id: op for op in self._plan(ref, run, plan_no).operations}
            ex._requests = {oid: OperationRequest(**{**r, "outputs": tuple(r["outputs"])})
                            for oid, r in requests.items()}
            ex._found = {name: ObservedResource.model_validate(r) for name, r in found.items()}
            rs = RunState(run=ref["run"])
            with _once(ex, since):   # written already by an attempt whose answer was lost: found, not written again
                ex._record_events(SimpleNamespace(state=rs, plan=SimpleNamespace(ops=ops)), cmd)
            return rs.seq
        return self._locked(ref, work)

    @activity.defn(name="ordo.end")
    def end(self, ref: Ref, status: str, reason: str, since: int) -> dict[str, Any]:
        """``run-ended`` with the summary (the run's state read back from the journal); ``since``: the last
        sequence number the workflow knew (a run resumed after a fallout has an earlier ``run-ended``)."""
        def work(run: _Run) -> dict[str, Any]:
            ex = run.executor
            rs = ex._rebuild(ref["run"])
            # (an end its follower wrote, Temporal not having said how the workflow went, is not the workflow's:
            # its own was dropped, and the run read failed though it went on to its end, a review's)
            if not any(map(_workflows_end, ex.journal.events(ref["run"], since=since, kinds=("run-ended",)))):
                ex._project = (self._project(ref, run, rs.plan_no) if rs.plan_no
                               else ex.loader(list(ex._records.values())))
                # one end per run after since: two attempts' summaries, made from each worker's copy, may differ
                with _once(ex, since, same=lambda new, old: _workflows_end(old)):
                    ex._end(_core(rs), End(status, reason))
            # the end the journal holds, this attempt's or another's (whose answer was lost, or which wrote first);
            # its seq: a decision names the fallout it is for
            last = ex.journal.last_event(ref["run"], kinds=("run-ended",))
            return {**_as_ended(ex.journal, ref["run"]), "seq": last.seq if last is not None else 0}
        try:
            return self._locked(ref, work)
        finally:
            self._forget(ref)

    @activity.defn(name="ordo.decide")
    def decide(self, ref: Ref, since: int, decision: dict[str, Any]) -> dict[str, Any]:
        """A decision on a run that fell out (the workflow's ``decide`` signal), journaled as ``ordo resume``,
        ``ordo rollback`` and ``ordo abort`` journal it: ``resume-requested`` (who asked) and the run held
        again (unless the process that asked holds it already): ``{"seq": ...}``; or ``run-ended`` aborted.
        Otherwise the answer is the run's status: an end (superseded by ``ordo apply --supersede``,
        aborted) that the workflow ends with; or "running", for an abort that came after a resume took
        the run (the resume's own decision follows), and the workflow waits for the next decision."""
        def work(run: _Run) -> dict[str, Any]:
            jr, number = run.executor.journal, ref["run"]
            asked = _asked(decision)

            if decision["action"] == "abort":
                info = jr.run(number)
                # "crashed": a resume that took the run died before its decision reached the workflow
                # ("interrupted": the same resume stopped at once, a second Ctrl-C, which journals it so)
                waiting = ("fallout", "crashed", "interrupted")
                if info.effective_status in waiting:  # else: written by an attempt whose answer was lost, or ended
                    summary = {**info.summary, "status": "aborted",
                               "reason": f"aborted while {info.effective_status}"}   # (as runs.abort says it)
                    jr.append_once(number, [Event("run-ended", data={**asked, **summary})], since=since,
                                   status="aborted", summary=summary, only_if=lambda r: r.effective_status in waiting)
                # "running": not ended, a resume took the run first (its decision comes next); else its end
                return _as_ended(jr, number)
            rollback = {"rollback": True} if decision["action"] == "rollback" else {}
            asking = [Event("resume-requested", data={**asked, **rollback})]
            # "running": the process that asked holds the run (it follows the workflow)
            written = jr.append_once(number, asking, since=since, only_if=lambda r: r.status in _DECIDABLE)[0]
            if not written:
                return _as_ended(jr, number)
            seq = written[-1].seq
            # the decision is for the fallout before it: not for one after it (this attempt came late,
            # its retry's resume ran and fell out again), which waits for a decision of its own
            status = jr.run(number).status
            if status in ("fallout", "interrupted") and not jr.has_event(number, "run-ended", since=seq):
                try:
                    jr.claim(number)
                except RunEnded:  # superseded since
                    return _as_ended(jr, number)
            elif status not in _DECIDABLE:  # superseded after the event was written
                return _as_ended(jr, number)
            return {"seq": seq}
        try:
            return self._locked(ref, work)
        finally:
            self._forget(ref)

    @activity.defn(name="ordo.whatif")
    def whatif(self, job: dict[str, Any]) -> dict[str, Any]:
        """One scenario of a what-if sweep planned (``executor.sweeps.plan_job``), heartbeating meanwhile;
        on this worker's own journal when it was given one (the job's names a database without its password
        or query)."""
        problem = job_problem(job)
        if problem is None and self._serves is not None \
                and resolved_path(project_folder(Path(job["project"]))[0]) != self._serves:
            problem = f"it is of the project at {clipped(job['project'], 200)!r}; this worker serves " \
                      f"{str(self._serves)!r} (ordo worker -C)"
        if problem is not None:   # (a job naming another folder was planned there, its cache written: a sweep's)
            raise ApplicationError(f"not a sweep's job: {problem}", type=INPUTS, non_retryable=True)
        job = {**job, "journal": self._journal} if self._journal and job.get("journal") else job
        return self._beating(lambda: plan_job(job, self.plans))

    # --- helpers ----------------------------------------------------------------------

    def _where(self, ref: Ref) -> Path | JournalUrl:
        """The run's journal from this worker: its own ``--journal`` (a database's URL with what the
        workflow input leaves out, the password and the query), else the client's; a database's files
        are kept in the project's ``.ordo/``, as the client keeps them."""
        return location(self._journal or ref["journal"], Path(ref["root"]) / ".ordo")

    @contextlib.contextmanager
    def _use(self, ref: Ref) -> Iterator[_Run]:
        """The run's executor, kept while activities use it; one no activity used for RUN_IDLE seconds is
        closed when another run's is taken (a worker that serves only controller queues never runs
        ``ordo.end``, which closes it: each run ever called kept a journal connection open)."""
        run = self._run(ref)
        try:
            yield run
        finally:
            with self._lock:
                run.busy -= 1
                run.used = time.monotonic()
                closing = run.forgotten and not run.busy
            if closing:
                _close(run)

    def _run(self, ref: Ref) -> _Run:
        """The run's executor, counted busy (``_use`` ends that)."""
        path = self._where(ref)
        key = (str(path), ref["journal_id"], ref["run"])
        with self._lock:
            now = time.monotonic()
            idle = [k for k, r in self._runs.items() if k != key and not r.busy and now - r.used > RUN_IDLE]
            closing = [self._runs.pop(k) for k in idle]
        try:
            return self._taken(ref, path, key)
        finally:
            for old in closing:
                _close(old)

    def _taken(self, ref: Ref, path: Path | JournalUrl, key: tuple[str, str, int]) -> _Run:
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                try:
                    jr = Journal(path, create=False)
                except (NoJournal, NotAJournal) as exc:   # (retried 20 times, each a minute: a sweep's)
                    raise ApplicationError(str(exc), type=INPUTS, non_retryable=True) from None
                if jr.id != ref["journal_id"]:
                    jr.close()
                    raise ApplicationError(f"{path}: not the journal of this run (its id is not {ref['journal_id']})",
                                           type=INPUTS, non_retryable=True)
                try:
                    self._ours(jr, ref)
                except BaseException:
                    jr.close()
                    raise
                opts = ref["options"]
                options = ApplyOptions(concurrency=opts["concurrency"], max_replans=opts["max_replans"],
                                       on_failure=opts["on_failure"],
                                       default_timeout=min(opts["default_timeout"], MOST_SECONDS),
                                       simulation=opts["simulation"], crash=os.environ.get("ORDO_CRASH_POINT"))
                run = self._runs[key] = _Run(Executor(jr, _loader(ref, path), options=options, plans=self.plans))
            run.busy += 1
        return run

    def _ours(self, jr: Journal, ref: Ref) -> None:
        """Refuse (for good) a reference to a run that is not one of this worker's to carry out: a run
        the journal does not hold (retried 20 times: a sweep's), one not started on Temporal (its
        owner carries it out: a workflow started by hand with such a run's reference dispatched calls
        beside it), or one whose project is not the folder the journal recorded for it, or not the
        one this worker serves (a reference naming another folder had its catalog's controllers run)."""
        try:
            info = jr.run(ref["run"])
        except NoRun as exc:
            raise ApplicationError(str(exc), type=INPUTS, non_retryable=True) from None
        if info.options.get("engine") != "temporal":
            raise ApplicationError(f"run {ref['run']} was not started on Temporal: the process that started it "
                                   "carries it out", type=INPUTS, non_retryable=True)
        root = resolved_path(Path(ref["root"]))
        # (a run recorded before its folder was recorded resolved has '.' or the like: compared to the worker's)
        if root is None or (Path(info.project).is_absolute() and root != resolved_path(Path(info.project))):
            raise ApplicationError(f"run {ref['run']}'s project is {clipped(info.project, 200)!r} (as its journal "
                                   f"recorded it), not the reference's {clipped(ref['root'], 200)!r}",
                                   type=INPUTS, non_retryable=True)
        if self._serves is not None and root != self._serves:
            raise ApplicationError(f"run {ref['run']} is of the project at {clipped(ref['root'], 200)!r}; this worker "
                                   f"serves {str(self._serves)!r} (ordo worker -C)", type=INPUTS, non_retryable=True)

    def _forget(self, ref: Ref) -> None:
        """Let the run go: the next activity opens it anew. Closed now, or, while other activities use it
        (one of them hit a journal error), once the last of them ends: closed under them, their calls
        failed on it and let the next go in turn."""
        with self._lock:
            run = self._runs.pop((str(self._where(ref)), ref["journal_id"], ref["run"]), None)
            if run is not None:
                run.forgotten = True
                closing = not run.busy
        if run is not None and closing:
            _close(run)

    def _locked(self, ref: Ref, work: Callable[[_Run], T], cancel: threading.Event | None = None) -> T:
        """``work`` on the run, one activity of a run at a time in this worker, heartbeating;
        a problem in the inputs is not retried. ``cancel``: see ``_beating``."""
        asking = _asking()   # (here: the work runs on a thread of its own, outside the activity's context)
        try:
            with self._use(ref) as run:
                def locked() -> T:
                    with run.lock:
                        _own_workflow(ref, run, asking)
                        _refresh(run)  # what other workers wrote counts
                        return work(run)
                try:
                    return self._beating(locked, cancel)
                except JournalError:
                    # the journal may be busy or back soon: retried, on a connection of its own (a database
                    # restarted closed this one for good), with the run's state read again from the journal
                    # as another worker would
                    self._forget(ref)
                    raise
                except OrdoError as exc:   # its text goes into the workflow's history: redacted
                    raise ApplicationError(run.executor.journal.redactor.text(str(exc)), type=INPUTS,
                                           non_retryable=True) from None
        except (ApplicationError, CancelledError):
            raise
        except Exception as exc:
            _retried_or_not(exc)
            raise

    def _beating(self, fn: Callable[[], T], cancel: threading.Event | None = None) -> T:
        """``fn`` on another thread, heartbeating meanwhile, so that a lost worker is noticed in seconds.
        ``cancel``, for an activity declared with ``no_thread_cancel_exception`` (Temporal then raises
        nothing in this thread): set once the workflow has cancelled the activity (heard in a
        heartbeat's answer), for ``fn`` to stop where nothing is half done; ``fn``'s answer then stands
        if it has one (it finished first), else (PlanCancelled) the cancellation is acknowledged.
        Heartbeats go on meanwhile."""
        future = self._pool.submit(fn)
        while True:
            try:
                return future.result(timeout=HEARTBEAT_EVERY)
            except FutureTimeout:
                activity.heartbeat()
                if cancel is not None and not cancel.is_set() and activity.is_cancelled():
                    cancel.set()
            except PlanCancelled:
                if cancel is None or not cancel.is_set():
                    raise
                raise CancelledError("cancelled while it was re-planned") from None

    def _project(self, ref: Ref, run: _Run, plan_no: int) -> Project:
        if plan_no not in run.projects:
            project = run.executor.loader(list(run.executor.journal.state().values()))
            # the catalog's secret outputs are redacted from every write of this worker, not only once it
            # has made a controller (a record written here may hold another worker's call's outputs)
            run.executor.learn_secrets(project)
            run.projects[plan_no] = project
        return run.projects[plan_no]

    def _outline(self, ref: Ref, run: _Run, plan_no: int) -> dict[str, Any]:
        if plan_no not in run.outlines:
            plan = self._plan(ref, run, plan_no)
            run.outlines[plan_no] = outline_out(plan, run.executor._spec(self._project(ref, run, plan_no), plan))
        return run.outlines[plan_no]

    def _plan(self, ref: Ref, run: _Run, plan_no: int) -> Plan:
        if plan_no not in run.plans:
            for ev in run.executor.journal.events(ref["run"], kinds=("plan", "replan")):
                if ev.data.get("number") == plan_no:   # the first, as written() answers
                    run.plans[plan_no] = Plan.from_json(ev.data["plan"])
                    break
        if plan_no not in run.plans:
            raise JournalError(f"run {ref['run']}: plan {plan_no} is not in the journal (yet)")
        return run.plans[plan_no]


def _going_on(run: _Run, ref: Ref, statuses: tuple[str, ...]) -> None:
    """Refuse, for good, a run whose status is none of ``statuses``: it ended, and its plan is not
    carried out again."""
    status = run.executor.journal.run(ref["run"]).status
    if status not in statuses:
        raise ApplicationError(f"run {ref['run']} is {status}: its plan is not carried out again",
                               type=INPUTS, non_retryable=True)


def _close(run: _Run) -> None:
    run.executor.close()
    run.executor.journal.close()


#: The statuses a run takes a resume or rollback decision in ("running": the process that asked holds it).
_DECIDABLE = ("fallout", "running", "interrupted")


#: Attempts a step's activity has when it fails for another reason than the journal's database gone
#: (JournalLost: retried for as long as the workflow lets a step take, ``workflow.STEP_FOR``).
STEP_ATTEMPTS = 20


def _retried_or_not(exc: Exception) -> None:
    """A step's failure: retried (it returns; the caller raises it), unless it is its STEP_ATTEMPTS'th
    attempt and the journal's database was not lost (an error that never passes, a damaged row, held
    the run and an abort with it): then the workflow fails. A database down (restarting, failing over,
    a network cut) is waited for: 20 attempts were 85 s, after which the run was left crashed."""
    if isinstance(exc, JournalLost):
        return
    try:
        attempt = activity.info().attempt
    except RuntimeError:   # (called directly, not as an activity)
        return
    if attempt >= STEP_ATTEMPTS:
        raise ApplicationError(f"{exc} (attempt {attempt}, the last)", type=type(exc).__name__,
                               non_retryable=True) from exc


def _asking() -> str | None:
    """The id of the workflow whose activity this is; None outside an activity (called directly)."""
    try:
        return activity.info().workflow_id
    except RuntimeError:
        return None


def _own_workflow(ref: Ref, run: _Run, asking: str | None) -> None:
    """Refuse an activity of a workflow that is not the run's own (``workflow_id``): one started by hand
    with the run's input, copied from its history, carried the run out beside its own (a sweep's)."""
    if asking is None:
        return
    own = workflow_id(run.executor.journal.id, ref["run"])
    if asking != own:
        raise ApplicationError(f"workflow {clipped(asking, 80)!r} is not run {ref['run']}'s ({own}): refused",
                               type=INPUTS, non_retryable=True)


#: What a decision (the workflow's ``decide`` signal: anyone who may signal the workflow sends it) may
#: add to its journal event: entries named as names, of text, whole numbers, booleans or null, at most these many
#: and this long; the principal at most MOST_PRINCIPAL characters. Nothing it adds stands for the run's
#: summary (its status, reason, counts): a forged record made an aborted run's end say "complete".
MOST_ASKED, MOST_ASKED_TEXT, MOST_PRINCIPAL = 20, 1000, 200


def _asked(decision: dict[str, Any]) -> dict[str, Any]:
    """The record and the principal of a decision, as its journal event keeps them (``MOST_ASKED``)."""
    record = decision.get("record") if isinstance(decision.get("record"), dict) else {}
    kept = {key: clipped(value, MOST_ASKED_TEXT) if isinstance(value, str) else value
            for key, value in list(record.items())[:MOST_ASKED]
            if is_name(key) and key != "principal" and (value is None or type(value) in (str, bool, int))}
    principal = decision.get("principal")
    return {**kept, "principal": clipped(principal, MOST_PRINCIPAL) if isinstance(principal, str) else ""}


def _as_ended(jr: Journal, run: int) -> dict[str, Any]:
    """The run as the journal holds it, as an activity answers with a run's end."""
    info = jr.run(run)
    return {"status": info.status, "summary": info.summary, "reason": info.summary.get("reason", "")}


def _sent(run: _Run, ref: Ref, payload: dict[str, Any]) -> OperationRequest:
    """The request to send, from the one the workflow carries, whose secret inputs are fingerprinted or
    masked (as its intent is journaled): the inputs resolved again here, from the project and the
    journal's records, and sent only if they are the ones the intent was made of (``inputs_digest``, a
    salted digest of those); else a permanent error, nothing sent (never a fingerprint in place of a
    value). The values are taught to this worker's redactor, which redacts what the call answers: those
    under secret keys, and those the intent masked inside a text (a secret this worker may not know)."""
    ex, data = run.executor, payload["request"]
    carried = inputs = data["inputs"]

    def refused(why: str) -> ApplicationError:
        outcome = Outcome(payload["token"], payload["op"], error=CallError(why, code="inputs-changed", applied=False))
        return ApplicationError(why, outcome_out(outcome), type=PERMANENT, non_retryable=True)

    if redacted(carried):
        if not payload.get("inputs_digest"):   # an intent made before digests were sent (an older worker)
            raise refused(f"the intent of {data['resource']} carries no digest of its secret inputs: not sent")
        _refresh(run)
        res = ex._project.model.resources[data["resource"]]
        try:
            inputs = ex._inputs(RunState(run=ref["run"]), ex._project.model, res)
        except (SecretUnavailable, KeyError) as exc:
            raise refused(f"the inputs of {data['resource']} cannot be resolved as its intent was ({exc!r}): "
                          "not sent") from None
        if not same_value(payload["inputs_digest"], inputs):
            raise refused(f"the inputs of {data['resource']} changed after its intent was journaled (a record "
                          "they read was written meanwhile): not sent")
        ex.journal.redactor.add_values(_masked(carried, inputs))
    ex.journal.redactor.tree(inputs)   # learnt: a secret input's value is masked in what the call answers
    return OperationRequest(**{**data, "inputs": inputs, "outputs": tuple(data["outputs"])})


def _masked(carried: Any, fresh: Any) -> list[str]:
    """The values a redaction masked in ``carried`` (``***`` in a text) where ``fresh`` has them."""
    if isinstance(carried, dict) and isinstance(fresh, dict):
        return [v for k in carried.keys() & fresh.keys() for v in _masked(carried[k], fresh[k])]
    if isinstance(carried, list) and isinstance(fresh, list):
        return [v for c, f in zip(carried, fresh, strict=False) for v in _masked(c, f)]
    if not (isinstance(carried, str) and isinstance(fresh, str) and MASK in carried and carried != fresh):
        return []
    pattern = "(.+?)".join(re.escape(part) for part in carried.split(MASK))
    found = re.fullmatch(pattern, fresh, re.DOTALL)
    return list(found.groups()) if found is not None else [fresh]


def _digest(inputs: dict[str, Any]) -> str | None:
    """A salted digest of a call's inputs (None for values JSON cannot order: then they are not checked)."""
    try:
        return fingerprint(inputs)
    except TypeError:
        return None


def _refresh(run: _Run) -> None:
    """The executor's copy of the journal's records brought up to date (executor.journal.refreshed)."""
    ex = run.executor
    ex._records, run.seen = refreshed(ex.journal, ex._records, run.seen)


def _core(rs: RunState, spec: PlanSpec | None = None) -> SimpleNamespace:
    """What the local host's methods read of a core: its state, and the operations of its plan (and
    their specs, where ``spec`` is given)."""
    return SimpleNamespace(state=rs, spec=spec, plan=SimpleNamespace(
        ops={op.id: op for op in rs.plan.operations} if rs.plan else {}, spec=spec))


def _workflows_end(ev: Event) -> bool:
    """Whether ``ev`` is a run's end its workflow wrote (not one its follower wrote, Temporal not having said
    how the workflow went)."""
    return ev.kind == "run-ended" and not ev.data.get("follower")


def _loader(ref: Ref, journal: Path | JournalUrl) -> Callable[[list[ObservedResource]], Project]:
    root = Path(ref["root"])

    def load(observed: list[ObservedResource]) -> Project:
        return load_project(root, Path(ref["request"]) if ref["request"] else None,
                            Path(ref["inventory"]) if ref["inventory"] else None,
                            [Path(p) for p in ref["policies"]], observed=observed,
                            observed_name=display_path(journal, root))
    return load


@contextlib.contextmanager
def _once(ex: Executor, since: int, same: Callable[[Event, Event], bool] | None = None) -> Iterator[None]:
    """The executor's journal writes within: not written again when they stand after ``since``
    (``same``: what one write is, as ``Journal.append_once`` takes it)."""
    ex.once_since, ex.once_same = since, same
    try:
        yield
    finally:
        ex.once_since, ex.once_same = None, None

