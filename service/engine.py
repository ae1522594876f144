"""What the service asks of the engine that carries runs out, and the embedded one.

:class:`Engine` is the interface the HTTP layer talks to: submit a request (or a
saved plan), abort, resume, and read runs, events and state back from the journal.
:class:`LocalEngine` is the default, needing nothing but ``pip install``: each
accepted run is driven on a thread of the server's own process, by the same
executor and journal as ``ordo apply`` (``executor/runs.py``). Another engine (a
workflow service, issue 11) can take its place behind the same interface.

Runs go side by side when they work on disjoint resources: a run claims the
resources its request names and its plan touches, in the transaction that starts
it (``Journal.start_run(claims=...)``); a request touching a resource a run still
holds is refused (:class:`~executor.journal.ClaimError`, 409 over HTTP). An
accepted run is in the journal before ``submit`` returns; when the server starts,
it resumes every run it had accepted that was cut short (crashed, or interrupted
by a shutdown), as ``ordo resume`` would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from domain.errors import Diagnostic, DiagnosticsError, OrdoError, clipped
from domain.formats import ObservedResource
from domain.project import load_project
from domain.yamlsrc import dump_yaml
from executor import runs
from executor.claims import plan_beside, run_claims, targets_only
from executor.engine import ExecutionError, Executor, RunResult
from executor.journal import (
    RESUMABLE,
    ClaimError,
    Event,
    Journal,
    JournalError,
    JournalLost,
    KeyTaken,
    RequestRef,
    RunInfo,
    StateCopy,
    private_file,
)
from executor.redact import Redactor
from executor.shared import Shared
from planner.core import Outcome, load_policies, make_plan
from planner.plan import Plan
from planner.slots import PlanSlots, SlotsBusy
from planner.solve import SOLVER_REFUSED

log = logging.getLogger("ordo.service")

#: The (effective) states a run is resumed from, as `ordo resume` does.
RESUMED_FROM = ("crashed", "fallout", "interrupted", "failed")
#: The states a run is rolled back from (a crashed one is resumed first: what is in doubt is observed).
ROLLED_BACK_FROM = ("fallout", "interrupted", "failed")
#: How long a resume waits for the driver of a run whose end is written to finish.
DRIVER_FINISHING = 10.0
#: Plans made for one submission when other runs keep changing its resources while it is planned.
PLAN_ATTEMPTS = 3
#: Seconds a request file that no run which can go on names is kept after its last use (the
#: request of a plan, or of a refused submission), and how often the folder is swept at most.
REQUEST_GRACE = 3600.0
SWEEP_EVERY = 60.0
#: Who resumes the runs a restart finds cut short (recorded as their principal).
RESTART = "ordo serve (restart)"
#: Seconds between looks for runs cut short that no process carries on (their server, or its connection
#: to the journal, died): a server takes them over, as it does at its start.
TAKEOVER_EVERY = 30.0
#: Seconds, beyond twice the longest a call of the run may take, that a run is left quiet (no event
#: written) before it is taken over: a driver that lost its connection to the journal cannot write, but
#: the call it had sent may still be under way; after its timeout it is over, whatever its answer.
TAKEOVER_MARGIN = 60.0
TAKEOVER = "ordo serve (takeover)"
#: The statuses of runs a start or a look takes over (the others wait for a decision, or have ended).
CUT_SHORT = ("crashed", "interrupted")
#: Why a run cut short before its first event is closed rather than resumed.
NEVER_BEGAN = ("cut short before it began (no event recorded, so no 202 was answered and nothing was sent "
               "to a controller): closed; the same request may be sent again")


class UnknownRun(OrdoError):
    """No such run in the journal."""


class Conflict(OrdoError):
    """The run is not in a state that allows this (or an idempotency key is reused for another request)."""


class Unavailable(OrdoError):
    """The engine is shutting down and takes nothing new."""


class ProjectBroken(DiagnosticsError):
    """The project's own files (ordo.yaml, its catalog, inventory, policies) have problems: the server's
    configuration, which no caller can mend (they were answered as the request's, 422, "fix your
    request, do not retry": a service sweep's)."""

    #: The problems the log was told of last (one server to a process).
    _said: ClassVar[list[str]] = []

    def logged(self) -> None:
        """Said in the server's log, once for each new set of problems: only the callers heard of them,
        each with a 503 (an operator's first day)."""
        problems = [str(d) for d in self.diagnostics if d.severity == "error"] or [str(d) for d in self.diagnostics]
        if problems != ProjectBroken._said:
            ProjectBroken._said[:] = problems
            log.error("the project's own files have problems, and plans are refused until they are mended: %s%s",
                      clipped(problems[0] if problems else "", 500),
                      f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")

    @staticmethod
    def mended() -> None:
        """A plan was made: the project's files load again (the same problems, back later, are said again)."""
        if ProjectBroken._said:
            ProjectBroken._said.clear()
            log.warning("the project's own files load again: plans are made")


def project_or_request(exc: DiagnosticsError, request: str | None) -> DiagnosticsError:
    """``exc`` as the project's problem (ProjectBroken) when one of its errors names another file than the
    request's (``request``: that file's name; None: there is none), else as it is."""
    if any(d.severity == "error" and Path(d.file).name != request for d in exc.diagnostics):
        return ProjectBroken(exc.diagnostics)
    return exc


class NoPlan(OrdoError):
    """The planner found no plan: the outcome carries the explanation."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(f"no plan: {outcome.status}")


@dataclass(frozen=True)
class Submission:
    """A request to carry out: a request document (as in a request file), a saved plan
    (made from that request, else from the project's own), or both; and run options."""

    request: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    on_failure: str | None = None
    max_replans: int | None = None
    concurrency: int | None = None
    op_timeout: float | None = None

    @property
    def digest(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    run: int
    replayed: bool = False      # the idempotency key named a run accepted earlier


class Engine(Protocol):
    """What the service needs of whatever carries runs out."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def shutdown(self, timeout: float) -> None: ...
    @property
    def ready(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...
    def halt(self, wait: bool = False) -> bool: ...
    def stops_with_server(self, run_id: int) -> bool: ...
    def plan(self, request: dict[str, Any] | None) -> Outcome: ...
    def submit(self, submission: Submission, principal: str, idempotency_key: str | None = None, *,
               record: dict[str, Any] | None = None, check: Callable[[Any], None] | None = None) -> Accepted: ...
    def abort(self, run_id: int, principal: str) -> str: ...
    def resume(self, run_id: int, principal: str, record: dict[str, Any] | None = None) -> int: ...
    def rollback(self, run_id: int, principal: str) -> int: ...
    def runs(self) -> list[RunInfo]: ...
    def runs_page(self, state: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[RunInfo], int]: ...
    def run_counts(self) -> dict[str, int]: ...
    def run(self, run_id: int) -> RunInfo: ...
    def claims(self, run_id: int) -> list[str]: ...
    def events(self, run_id: int, since: int = 0, limit: int = -1,
               kinds: tuple[str, ...] | None = None) -> list[Event]: ...
    def event_sizes(self, run_id: int, since: int = 0, limit: int = -1) -> list[tuple[int, int]]: ...
    def last_event(self, run_id: int, kinds: tuple[str, ...]) -> Event | None: ...
    def request(self, request_id: str) -> tuple[RequestRef, RunInfo] | None: ...
    def requests(self, statuses: tuple[str, ...] | None = None) -> list[tuple[RequestRef, RunInfo]]: ...
    def state(self) -> dict[str, ObservedResource]: ...
    def driving(self, run_id: int) -> bool: ...


#: Seconds the runs have, once halted (``LocalEngine.shutdown``), to journal that they stopped.
HALT_SECONDS = 5.0


@dataclass
class Hooks:
    """Where the engine reports progress: every journaled event, and how long each planning took."""

    event: Callable[[Event], None] = lambda ev: None
    planned: Callable[[float], None] = lambda seconds: None


@dataclass
class LocalEngine:
    """Runs on threads of this process, on the executor and journal ``ordo apply`` uses."""

    project: Path
    journal: Path | None = None
    simulation: Path | None = None
    plan_timeout: float | None = None
    hooks: Hooks = field(default_factory=Hooks)
    plan_slots: int | None = None   # plans made at once (None: as many as fit the machine: planner/slots.py)

    def __post_init__(self) -> None:
        self.root = runs.project_root(self.project)
        self.path = runs.journal_path(self.project, self.journal)
        self._reader: Journal | None = None
        self._lock = threading.Lock()
        self._driving: set[int] = set()
        self._ending: set[int] = set()   # driven here, their end written
        self._let_go = threading.Condition(self._lock)  # a driver let go of its run
        self._executors: set[Executor] = set()
        self._threads: set[threading.Thread] = set()
        self._halted: weakref.WeakSet[Executor] = weakref.WeakSet()   # those ``halt`` stopped, for its log line
        self._keys: dict[str, tuple[threading.Lock, int]] = {}   # per idempotency key in use: lock, users
        # the controllers' concurrency, the guards and the plan slots, across the runs side by side
        self._shared = Shared(PlanSlots(self.plan_slots, None) if self.plan_slots else None)
        self._state = StateCopy()   # the journal's records, kept current between plans
        self._swept = -SWEEP_EVERY   # when the request files were last swept (time.monotonic)
        # request files being read now: by how many readers, and whether one took it (a run may start from it)
        self._reading: dict[Path, list] = {}
        self._accepting = False
        self._ready = False
        self._stopping = threading.Event()   # set when the server stops: the takeover's watch ends
        self._stop_asked: float | None = None   # when the first stop was asked (time.monotonic): the drain's start
        self._longest = 0.0   # the longest a call of the catalog may take (_longest_timeout)

    # --- life -------------------------------------------------------------------

    def start(self) -> None:
        """Open the journal and resume what a restart finds cut short; then, while the server goes on,
        take over the runs that crash (``TAKEOVER_EVERY``)."""
        self._reader = Journal(self.path)
        self._accepting = True
        self._longest = _longest_timeout(self.project)
        self._take_over(RESTART)
        self._ready = True
        watch = threading.Thread(target=self._watch, name="ordo-takeover", daemon=True)
        with self._lock:
            self._threads.add(watch)
        watch.start()

    def _take_over(self, principal: str) -> None:
        """Resume the service's runs that crashed or were interrupted (CUT_SHORT; those of `ordo apply`,
        those that wait for a decision, and those a Temporal workflow may carry on are left as they are);
        close those cut short before their first event (nothing was sent for them). At a start, at once,
        as before there were looks. A look (TAKEOVER) takes at once only a run stopped once its calls were
        done (its last event run-ended, interrupted); any other once it has been quiet for longer than its
        calls may take (``_quiet``): its driver may live on without the journal (another server whose
        connection dropped), and a call it sent, or a controller's program, may outlive even a driver that
        died. A try that fails wrote its resume-requested event: the run is quiet for a while again before
        the next (no event every look)."""
        jr = self._journal()
        for info in jr.resumable():
            status = info.effective_status
            if info.options.get("principal") is None or status not in CUT_SHORT or self.driving(info.id):
                continue   # (one driven here whose connection died: its driver stops at its next write)
            last = jr.last_event(info.id)
            if last is None:
                self._close_unbegun(info)
                continue
            if principal == TAKEOVER and last.kind != "run-ended" and time.time() - last.at < self._quiet(info):
                continue
            if principal == TAKEOVER and runs.on_temporal(jr, info) and not self._no_workflow_goes_on(info):
                continue   # its workflow goes on, and writes its end
            try:   # warnings, as the server's log shows by default: an operator wants to know
                self.resume(info.id, principal)
                log.warning("run %d was %s: carried on here (%s)", info.id, status, principal)
            except OrdoError as exc:
                log.warning("run %d was %s, and is not carried on here: %s", info.id, status, exc)

    def _no_workflow_goes_on(self, info: RunInfo) -> bool:
        """Whether a look may take over a run on Temporal: no workflow of it goes on (it is gone, or waits
        for a decision; service/temporal_engine.py asks Temporal; a server of the embedded engine leaves
        such runs to the servers that follow them)."""
        return False

    def _quiet(self, info: RunInfo) -> float:
        """Seconds a run must have written nothing before a look takes it over: twice its operations'
        longest timeout (the catalog's, or the run's default; a call in doubt is observed, then sent, each
        within it) and TAKEOVER_MARGIN. A driver that lives on without the journal has had every call it
        sent come back by then, and stops at its next write."""
        default = info.options.get("default_timeout")
        default = float(default) if isinstance(default, (int, float)) and default > 0 else 600.0
        return 2 * max(default, self._longest) + TAKEOVER_MARGIN

    def _watch(self) -> None:
        """Every TAKEOVER_EVERY seconds, until the server stops: the runs cut short since, taken over (a server
        sharing the journal died or was stopped, or the journal failed under a run driven here)."""
        while not self._stopping.wait(TAKEOVER_EVERY):
            try:
                self._take_over(TAKEOVER)
            except OrdoError as exc:   # the journal does not answer: opened anew, looked at again next time
                log.warning("looking for runs to take over: %s", exc)
                self.reopen()
            except Exception:  # noqa: BLE001 - the watch goes on; the server's answers are not its business
                log.exception("looking for runs to take over")

    def _close_unbegun(self, info: RunInfo) -> None:
        """A run killed between its row and its first event (run-started, naming the request it
        carries out) cannot be resumed: without that event it would be re-planned from the project's
        own request. Nobody was told of it (the 202 comes after that event), so it is closed, its
        claims lapse, and its Idempotency-Key no longer names it."""
        summary = {"status": "aborted", "never_began": True, "reason": NEVER_BEGAN}
        self._journal().append(info.id, [Event("run-ended", data={**summary, "principal": RESTART})],
                               status="aborted", summary=summary)
        log.warning("run %d %s", info.id, NEVER_BEGAN)

    @property
    def ready(self) -> bool:
        return self._ready and self._accepting

    @property
    def stopping(self) -> bool:
        """Whether the server was told to stop (its runs drain, it takes nothing new)."""
        return self._stopping.is_set()

    def reachable(self) -> bool:
        """Whether the journal answers now (``/readyz``); if not, its reader is opened anew for the
        next request, as after any journal error (``reopen``)."""
        try:
            self._journal().last_run()
            return True
        except JournalError:
            self.reopen()
            return False

    def reopen(self) -> None:
        """The journal's reader opened anew, after a journal error: a database restarted closed its
        connection for good, and every request would fail on it. Kept as it is while the journal
        cannot be opened (the next error tries again)."""
        with self._lock:
            if self._reader is None:
                return
            try:
                fresh = Journal(self.path, create=False)
            except JournalError:
                return
            old, self._reader = self._reader, fresh
        with contextlib.suppress(Exception):   # (closing a connection the server closed may complain)
            old.close()

    def stop(self, drain: float | None = None) -> None:
        """Take nothing new; ask every run driven here to stop once its operations in flight
        finish (it ends "interrupted", and is resumed at the next start). Does not wait. ``drain``:
        seconds from the first stop after which the runs still going are stopped at once (``halt``):
        the server's, asked at its signal, while it waits for its open connections (an event stream
        followed ends with its run, so only once its run is halted)."""
        with self._lock:
            self._accepting = False
            executors = list(self._executors)
            first = self._stop_asked is None
            if first:
                self._stop_asked = time.monotonic()
        self._stopping.set()
        for executor in executors:
            executor.request_stop()
        if executors and first:   # (the log said nothing of the runs a stop cut short: an operator's first day)
            later = f"; those still going after {drain:g}s are stopped at once" if drain is not None else ""
            log.warning("stopping: %d run(s) driven here finish their operations in flight, then end (interrupted, "
                        "to be resumed at the next start, but for an abort asked for)%s", len(executors), later)
        if drain is not None and first:
            timer = threading.Timer(drain, self.halt)
            timer.daemon = True
            timer.start()

    def halt(self, wait: bool = False) -> bool:
        """Stop the runs driven here at once, as a second Ctrl-C stops ``ordo apply``: the programs of the
        calls still in flight are ended (they ran on, orphaned, and a restart's resume, told "not applied",
        sent the operation again beside them), their operations left in doubt, and the runs end
        interrupted, to be resumed; with ``wait``, given HALT_SECONDS to journal it (a process that
        exits at once ended them before: crashed). Whether there were runs to stop."""
        with self._lock:
            executors = list(self._executors)
            threads = list(self._threads)
        for executor in executors:
            executor.halt()
        with self._lock:   # (halted by the drain's timer, then again by the shutdown: said once)
            fresh = [e for e in executors if e not in self._halted]
            self._halted.update(fresh)
        if fresh:
            log.warning("%d run(s) stopped at once: the calls they had in flight were cut short, and what they did "
                        "is observed before anything is sent again when the runs are resumed", len(fresh))
        if wait and executors:
            deadline = time.monotonic() + HALT_SECONDS
            for thread in threads:
                if thread.name.startswith("ordo-run-"):
                    thread.join(max(0.0, deadline - time.monotonic()))
        return bool(executors)

    def shutdown(self, timeout: float = 30.0) -> None:
        """``stop``, then wait for the runs to end until ``timeout`` seconds after the first stop was
        asked; then ``halt`` them, and give them HALT_SECONDS to journal it."""
        self.stop()
        with self._lock:
            threads = list(self._threads)
            since = self._stop_asked if self._stop_asked is not None else time.monotonic()
        for thread in threads:
            thread.join(max(0.0, since + timeout - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            self.halt(wait=True)
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # --- planning and submitting ------------------------------------------------------

    def _load(self, request: dict[str, Any] | None) -> Any:
        """The project with ``request`` (kept as a file, :meth:`_save_request`). A request refused
        (it has problems) is not kept when this call wrote its file: any caller could fill the disk
        with them, 25 MB a second (a file that was there is another's, and is left to the sweep)."""
        if request is None:
            try:
                return runs.load_with_journal(self.project, None, None, [], self.journal, self._state)
            except DiagnosticsError as exc:
                raise project_or_request(exc, None) from None
        text, path = self._request_file(request)
        with self._lock:   # counted before it is written: another thread's refusal does not remove it
            self._reading.setdefault(path, [0, False])[0] += 1
        made, refused = False, True
        try:
            made = self._save_request(text, path)
            try:
                project = runs.load_with_journal(self.project, path, None, [], self.journal, self._state)
            except DiagnosticsError as exc:   # the request's problems, unless a file of the project's has some
                raise project_or_request(exc, path.name) from None
            refused = False
            return project
        finally:
            with self._lock:
                reading = self._reading[path]
                reading[0] -= 1
                reading[1] = reading[1] or not refused
                if not reading[0]:   # the last reader: removes the file it wrote if no reader took it
                    del self._reading[path]
                    if made and refused and not reading[1]:
                        path.unlink(missing_ok=True)

    def _request_file(self, request: dict[str, Any]) -> tuple[str, Path]:
        """The text of a request as it is kept, and its file (named by its digest)."""
        text = dump_yaml(request)
        return text, self.path.parent / "requests" / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.yaml"

    def _save_request(self, text: str, path: Path) -> bool:
        """The request, kept as a file beside the journal, so that the run it starts is planned again
        and resumed from it as from any request file. It is read back through the
        same loader as a request file: untrusted, every problem with its path. Whether it was written
        now (else it was there, and is in use again)."""
        made = False
        try:
            os.utime(path)   # in use again: not swept for another REQUEST_GRACE
        except FileNotFoundError:
            part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            private_file(part)
            part.write_text(text, encoding="utf-8")
            part.replace(path)
            made = True
        except OSError:   # there, but its time cannot be renewed (another owner's): read as it is
            pass
        self._sweep_requests(path.parent)
        return made

    def _sweep_requests(self, folder: Path) -> None:
        """Remove the request files that no run which can still go on names (a plan's request, a
        refused submission's, a finished run's) once REQUEST_GRACE has passed since they were last
        used; at most once every SWEEP_EVERY seconds. They may hold secrets, and any caller could
        otherwise fill the disk with them."""
        now = time.monotonic()
        with self._lock:
            if now - self._swept < SWEEP_EVERY or self._reader is None:
                return
            self._swept = now
        jr = self._reader
        wanted = set()
        for info in jr.runs(RESUMABLE):
            for event in jr.events(info.id, limit=1, kinds=("run-started",)):
                named = (event.data.get("files") or {}).get("request")
                if named:
                    wanted.add(Path(named).name)
        before = time.time() - REQUEST_GRACE
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if (entry.name not in wanted and entry.is_file(follow_symlinks=False)
                            and entry.stat(follow_symlinks=False).st_mtime < before):
                        os.unlink(entry.path)

    def _make_plan(self, project: Any, keep: dict[str, str] | None = None, concurrency: int | None = None) -> Outcome:
        """``concurrency``: a run's own (its plan's waves as the run keeps them), else the project's."""
        try:
            program = load_policies(project)
        except DiagnosticsError as exc:   # (the project's policies: no request changes them)
            raise ProjectBroken(exc.diagnostics) from None
        with self._planning(project):
            began = time.perf_counter()
            try:
                outcome = make_plan(project, timeout=self.plan_timeout, keep=keep, concurrency=concurrency,
                                    program=program)
            except DiagnosticsError as exc:   # (the solver's refusal of the policies' weights: their files')
                raise project_or_request(exc, project.request_path.name if project.request_path else None) from None
            except OrdoError as exc:
                if str(exc).startswith(SOLVER_REFUSED):   # (clasp's own refusal of them)
                    raise ProjectBroken([Diagnostic(summary=str(exc), code="weights")]) from None
                raise
            self.hooks.planned(time.perf_counter() - began)
        ProjectBroken.mended()
        return outcome

    @contextmanager
    def _planning(self, project: Any) -> Iterator[None]:
        """One of the plan slots while a plan is made (POST /v1/plans and /v1/runs, SO's requests;
        the runs' re-plans take them too: planner/slots.py). A plan past the slots waits for one,
        at most a plan's time limit (the plans ahead take about that long at most), and is then
        refused as Unavailable (503, Retry-After)."""
        wait = self.plan_timeout or project.settings.solve_timeout
        with ExitStack() as stack:
            try:
                stack.enter_context(self._shared.plans.slot(project, wait))
            except SlotsBusy as exc:
                raise Unavailable(f"the server is busy ({exc}); try again") from None
            yield

    def plan(self, request: dict[str, Any] | None) -> Outcome:
        return self._make_plan(self._load(request))

    def whatif(self, request: dict[str, Any] | None, targets_down: tuple[str, ...], capacity: tuple[str, ...],
               without_policies: tuple[str, ...]) -> tuple[Any, list[str]]:
        """The difference a scenario makes to the plan of ``request`` (planner/whatif.py)."""
        from planner.diff import diff_plans
        from planner.whatif import Scenario

        scenario = Scenario.from_options(targets_down, capacity, without_policies)
        base = self._make_plan(self._load(request))
        outcome = self._make_plan(scenario.apply(self._load(request)),   # keeps what costs nothing to keep
                                  keep=base.plan.placements if base.plan is not None else None)
        return diff_plans(base, outcome), scenario.describe()

    @contextmanager
    def _key(self, key: str | None) -> Iterator[None]:
        """One submission at a time per idempotency key (its lock kept while a submission holds or
        waits for it: a lock kept for every key ever sent grew the server's memory without bound)."""
        if key is None:
            yield
            return
        with self._lock:
            lock, users = self._keys.get(key) or (threading.Lock(), 0)
            self._keys[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._keys[key]
                if users == 1:
                    del self._keys[key]
                else:
                    self._keys[key] = (lock, users - 1)

    def submit(self, submission: Submission, principal: str, idempotency_key: str | None = None, *,
               record: dict[str, Any] | None = None, check: Callable[[Any], None] | None = None) -> Accepted:
        """``record``: more to keep with the run's options (e.g. the SO request it answers). ``check``:
        asked of the project as the journal said when the request was planned, each time it is planned
        (it raises to refuse); the run starts only if the journal's state is still the one it was
        asked of (e.g. SO's "exists already": asked before, a create sent while another held the
        instance went through once that one ended, and changed the live instance in place)."""
        with self._key(idempotency_key):
            replayed = self._replayed(idempotency_key, submission)
            if replayed is not None:
                return replayed
            try:
                return self._accept(submission, principal, idempotency_key, record, check)
            except (ClaimError, KeyTaken):
                # another server took the same key meanwhile (the key's lock is this process's): the key,
                # indexed in the transaction that started its run, answers the same
                replayed = self._replayed(idempotency_key, submission)
                if replayed is not None:
                    return replayed
                raise

    def _replayed(self, key: str | None, submission: Submission) -> Accepted | None:
        """The run an Idempotency-Key started with this submission; Conflict if it started another."""
        earlier = self._journal().run_of_key(key) if key is not None else None
        if earlier is None:
            return None
        info = self._journal().run(earlier)
        if info.summary.get("never_began"):
            return None
        if info.options.get("submission") != submission.digest:
            raise Conflict(f"the Idempotency-Key '{key}' was used for another request (run {info.id}); use a new "
                           "key for a new request")
        return Accepted(info.id, replayed=True)

    def _accept(self, submission: Submission, principal: str, idempotency_key: str | None,
                record: dict[str, Any] | None, check: Callable[[Any], None] | None = None) -> Accepted:
        """Plan a submission, and start its run (the caller holds its key's lock)."""
        if not self._accepting:
            raise Unavailable("the server is shutting down and takes no new runs")
        options = runs.apply_options(self.simulation, submission.on_failure, submission.max_replans,
                                     submission.concurrency, submission.op_timeout)
        for attempt in range(PLAN_ATTEMPTS):
            runs_then = self._journal().runs_now()
            project, plan, claims, held = self._planned(submission)
            if check is not None:
                check(project)
            try:
                self._journal().check_claims(claims)  # before a thread is started; start_run checks again
            except ClaimError as exc:
                # only targets a run claimed while this one was planned (a burst of requests plans
                # them all on the cheapest region at once): planned again, beside that run too
                targets = targets_only(exc.held)
                if attempt + 1 < PLAN_ATTEMPTS and targets is not None and not targets.keys() <= held.keys():
                    continue
                raise
            # A run on these resources that went on while the state was read and planned (and
            # ended since, or the check above would refuse) made that state stale: plan again.
            if not self._journal().changed_since(runs_then, claims):
                break
        else:
            # (they claim its resources, or add load to the targets it places on: it said they "changed the
            # resources of this request", of requests that named none of theirs, a service sweep's)
            raise Conflict(f"other runs went on with the resources of this request or the targets it places on "
                           f"while it was planned, {PLAN_ATTEMPTS} times: try again once they end")
        record = {**(record or {}), "principal": principal, "idempotency_key": idempotency_key,
                  "submission": submission.digest}

        def go(listener: Any, around: Any) -> RunResult:
            return self._execute(project, plan, options, listener, around, claims, record)

        return Accepted(self._launch(go, None))

    def _planned(self, submission: Submission) -> tuple[Any, Plan, list[str], dict[str, int]]:
        """The project of a submission as the journal says now, its plan (the one given, checked by
        planning again, or one made), the resources the run will claim, and the targets other runs
        held as it was planned (none for a plan given)."""
        project = self._load(submission.request)
        held: dict[str, int] = {}
        if submission.plan is not None:
            plan = Plan.from_json(json.dumps(submission.plan), source="plan")
            with self._planning(project):   # the saved plan is checked by planning again
                runs.check_saved_plan(project, plan, "plan", timeout=self.plan_timeout)
        else:
            # a plan only on targets other runs hold is refused (409) once the run claims them, naming them
            held = self._journal().held_targets()
            outcome, _ = plan_beside(project, lambda: self._make_plan(project, concurrency=submission.concurrency),
                                     held)
            if outcome.plan is None:
                raise NoPlan(outcome)
            plan = outcome.plan
        claims = run_claims(project, plan)
        if not claims:
            raise Conflict("the request names no resource: there is nothing to run")
        return project, plan, claims, held

    def _execute(self, project: Any, plan: Plan, options: Any, listener: Any, around: Any, claims: list[str],
                 record: dict[str, Any]) -> RunResult:
        """Carry an accepted run out (here: on this thread; another engine hands it on)."""
        return runs.execute(project, plan, options, self.path, listener=listener, around=around, claims=claims,
                            record=record, shared=self._shared)

    # --- abort, resume ---------------------------------------------------------------

    def abort(self, run_id: int, principal: str) -> str:
        self.run(run_id)
        message = runs.abort(self.project, self.path, run_id, record={"principal": principal})
        with self._lock:
            executors = list(self._executors)
        for executor in executors:   # the one driving the run reads the abort now, not at its next poll
            executor.notice_abort()
        return message

    def resume(self, run_id: int, principal: str, record: dict[str, Any] | None = None) -> int:
        """``record``: more to keep in its resume-requested event (a ``request_id`` the resume is known by,
        and the ``original_request_id`` it was asked under: the journal indexes them)."""
        return self._resume(run_id, principal, rollback=False, record=record)

    def rollback(self, run_id: int, principal: str) -> int:
        """Roll a run that fell out, failed or was interrupted back to the state before it
        (``runs.resume(rollback=True)``): it ends rolled_back."""
        return self._resume(run_id, principal, rollback=True)

    def _resume(self, run_id: int, principal: str, *, rollback: bool, record: dict[str, Any] | None = None,
                lost: bool = False) -> int:
        """``lost``: the decision of a resume that died before it reached the run's workflow, asked for
        again (a crashed run is then rolled back too)."""
        info = self.run(run_id)
        if not self._accepting:
            raise Unavailable("the server is shutting down and resumes nothing")
        status = info.effective_status
        if status not in (ROLLED_BACK_FROM if rollback else RESUMED_FROM) + (RESUMED_FROM if lost else ()):
            raise Conflict(f"run {run_id} is {status}: it cannot be {'rolled back' if rollback else 'resumed'}")
        with self._lock:
            if run_id in self._ending:  # its end is written (a client saw it), its driver is finishing
                self._let_go.wait_for(lambda: run_id not in self._driving, timeout=DRIVER_FINISHING)
            if run_id in self._driving:
                raise Conflict(f"run {run_id} is being carried out now")
            self._driving.add(run_id)
        try:
            data = {**(record or {}), "principal": principal, **({"rollback": True} if rollback else {})}
            self._journal().append(run_id, [Event("resume-requested", data=data)])
        except BaseException:
            with self._lock:
                self._driving.discard(run_id)
            raise

        def go(listener: Any, around: Any) -> RunResult:
            return runs.resume(self.project, None, self.path, run_id, None, None, None, None,
                               listener=listener, around=around, shared=self._shared, rollback=rollback,
                               record=data)  # on Temporal, the decision's (the same event is not written twice)

        try:
            return self._launch(go, run_id)
        except JournalError:
            # another server took it first (two resumes at once, through two servers): theirs goes on,
            # as a resume of a run driven here is refused (it was a 503, to be tried again later)
            if self.run(run_id).effective_status == "running":
                raise Conflict(f"run {run_id} is being carried out now (resumed by another server)") from None
            raise

    def _launch(self, go: Callable[[Any, Any], RunResult], run_id: int | None, counted: int = 0) -> int:
        """Drive a run on a thread of its own; return once it is in the journal (its first event
        written), or raise what stopped it before that. ``counted``: the events up to this one are
        the journal's read again (a run on Temporal followed again), not reported to the hooks (the
        server that followed them counted them: a takeover counted every operation twice)."""
        ready = threading.Event()
        box: dict[str, Any] = {"run": run_id}

        def listener(ev: Event) -> None:
            if not ready.is_set():
                box["run"] = ev.run
                with self._lock:
                    self._driving.add(ev.run)
                ready.set()
            if ev.kind == "run-ended":
                with self._lock:
                    self._ending.add(ev.run)
            if 0 < ev.seq <= counted:
                return
            try:
                self.hooks.event(ev)
            except Exception:  # noqa: BLE001 - metrics never stop a run
                log.exception("progress hook failed")

        @contextmanager
        def around(executor: Executor) -> Iterator[None]:
            with self._lock:
                self._executors.add(executor)
                stopping = not self._accepting
            if stopping:
                executor.request_stop()
            try:
                yield
            finally:
                with self._lock:
                    self._executors.discard(executor)

        def work() -> None:
            try:
                go(listener, around)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, or recorded in the journal
                if not ready.is_set():
                    box["error"] = exc
                else:
                    self._cut_short(box["run"], exc)
            finally:
                with self._lock:
                    self._driving.discard(box["run"])
                    self._ending.discard(box["run"])
                    self._threads.discard(threading.current_thread())
                    self._let_go.notify_all()
                ready.set()

        thread = threading.Thread(target=work, name=f"ordo-run-{run_id or 'new'}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        ready.wait()
        if "error" in box:
            raise box["error"]
        return int(box["run"])

    def _cut_short(self, run_id: int, exc: BaseException) -> None:
        """A run whose driver failed after it started (a re-plan refused: a policy changed under it, or
        no longer checks) is left resumable, saying why. While the server goes on, it falls out: it
        waits for a decision (resume, rollback or abort; SO's manual task). Where the journal's database
        went away under it (JournalLost: a PostgreSQL restart), while the server stops, and for a run a
        Temporal workflow carries on, it is interrupted: taken over by a later look (``_watch``) or the
        next start. Where nothing can be written, it stays as the journal has it: on PostgreSQL crashed
        (its connection, which owned it, is gone) and taken over the same."""
        log.error("run %d stopped: %s", run_id, exc)
        try:
            jr = self._journal()
            info = jr.run(run_id)
            if info.status != "running":
                return
            with self._lock:
                going_on = self._accepting
                if going_on:   # its end being written: a resume asked now waits for the driver to let go
                    self._ending.add(run_id)
            how = f"its driver stopped: {exc}"
            if going_on and info.options.get("engine") != "temporal" and not isinstance(exc, JournalLost):
                summary = {**info.summary, "status": "fallout", "reason": how}
                jr.append(run_id, [Event("run-ended", data=summary)], status="fallout", summary=summary)
            else:
                jr.append(run_id, [Event("interrupted", data={"how": how})], status="interrupted")
        except OrdoError as again:
            log.error("run %d: cannot record that it stopped: %s", run_id, again)

    # --- reading -----------------------------------------------------------------

    def _journal(self) -> Journal:
        if self._reader is None:
            raise Unavailable("the engine is not started")
        return self._reader

    # What the engine reads of runs is masked again on its way out, as events are (journals written before
    # redaction, secrets of this server's environment): REST, the web view and SO's status read it here.

    def runs(self) -> list[RunInfo]:
        redactor = Redactor()
        return [redactor.run(info) for info in self._journal().runs()]

    def runs_page(self, state: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[RunInfo], int]:
        """A page of the runs, newest first (in ``state`` when given), and how many there are in all."""
        redactor = Redactor()
        found, total = self._journal().runs_newest(state, offset, limit)
        return [redactor.run(info) for info in found], total

    def run_counts(self) -> dict[str, int]:
        return self._journal().run_counts()

    def run(self, run_id: int) -> RunInfo:
        jr = self._journal()
        last = jr.last_run()
        if last is None or not 1 <= run_id <= last:  # runs are numbered from 1, none is ever deleted
            raise UnknownRun(f"no run {run_id}")
        return Redactor().run(jr.run(run_id))

    def claims(self, run_id: int) -> list[str]:
        return self._journal().claims(run_id)

    def check_claims(self, resources: list[str]) -> None:
        """ClaimError if a run that may go on holds any of ``resources`` (``Journal.check_claims``)."""
        self._journal().check_claims(resources)

    def events(self, run_id: int, since: int = 0, limit: int = -1,
               kinds: tuple[str, ...] | None = None) -> list[Event]:
        redactor = Redactor()
        return [_redacted(ev, redactor) for ev in self._journal().events(run_id, since=since, limit=limit, kinds=kinds)]

    def event_sizes(self, run_id: int, since: int = 0, limit: int = -1) -> list[tuple[int, int]]:
        return self._journal().event_sizes(run_id, since, limit)

    def last_event(self, run_id: int, kinds: tuple[str, ...]) -> Event | None:
        ev = self._journal().last_event(run_id, kinds)
        return None if ev is None else _redacted(ev, Redactor())

    def request(self, request_id: str) -> tuple[RequestRef, RunInfo] | None:
        found = self._journal().request(request_id)
        return None if found is None else (found[0], Redactor().run(found[1]))

    def requests(self, statuses: tuple[str, ...] | None = None) -> list[tuple[RequestRef, RunInfo]]:
        redactor = Redactor()
        return [(ref, redactor.run(info)) for ref, info in self._journal().requests(statuses)]

    def state(self) -> dict[str, ObservedResource]:
        redactor = Redactor()
        return {name: redactor.record(record) for name, record in self._journal().state().items()}

    def driving(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._driving

    def stops_with_server(self, run_id: int) -> bool:
        """Whether the run ends when this server stops (drained, or halted): one it drives."""
        return self.driving(run_id)


def _redacted(ev: Event, redactor: Redactor) -> Event:
    return Event(kind=ev.kind, op=ev.op, key=ev.key, data=redactor.event(ev.data), seq=ev.seq, run=ev.run, at=ev.at)


def _longest_timeout(project: Path) -> float:
    """The longest a call of the project's catalog may take: the timeouts it gives operations and
    controllers, and each http or command controller's own call timeout (its config's, else the
    adapter's default), within which a call in doubt is observed (0 where the project does not load
    now: its runs' own default then counts)."""
    from executor.controllers import command, http

    try:
        model = load_project(project, need_request=False).model
    except OrdoError:
        return 0.0
    adapters = {"command": command.DEFAULT_TIMEOUT, "http": http.DEFAULT_TIMEOUT}
    found = [op.timeout or 0.0 for kind in model.kinds.values() for op in kind.operations]
    for spec in model.controllers.values():
        found.append(spec.timeout or 0.0)
        own = spec.config.get("timeout", adapters.get(spec.kind, 0.0))
        found.append(float(own) if isinstance(own, (int, float)) and not isinstance(own, bool) else 0.0)
    return max(found, default=0.0)


__all__ = ["Accepted", "Conflict", "Engine", "ExecutionError", "Hooks", "LocalEngine", "NoPlan", "Submission",
           "Unavailable", "UnknownRun"]

