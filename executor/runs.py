"""Runs as a library: the project with the journal's records, a saved plan checked, the
options of a run, and starting, resuming and aborting runs.

Both front ends sit on this, side by side: the command line (``ordo/runs.py``, which
renders progress and catches Ctrl-C) and the service (``service/``, which runs each
accepted request on a thread of its own). Nothing here prints: progress goes to a
listener, and ``around`` wraps the call that drives a run (the CLI's live view and
Ctrl-C handler, the service's register of what it drives).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import Diagnostic, DiagnosticsError, OrdoError
from domain.formats import quoted
from domain.gcpause import paused_gc
from domain.limits import MOST_SECONDS
from domain.project import Project, display_path, load_project, project_folder, read_project_file
from executor.journal import (
    EMPTY_MARK,
    STATE_CACHE,
    Event,
    Journal,
    JournalError,
    JournalUrl,
    NoJournal,
    RunInfo,
    StateCopy,
    default_path,
    read_state,
)
from executor.store import is_url, location
from planner.plan import Plan

if TYPE_CHECKING:  # the engine is imported where a run starts: `ordo plan` loads the project only
    from executor.core.state import RunState
    from executor.engine import ApplyOptions, Executor, Listener, RunResult
    from executor.shared import Shared
    from executor.temporal import Temporal

#: Wraps the driving of a run, given its executor (e.g. a live view, a signal handler).
Around = Callable[["Executor"], AbstractContextManager[Any]]


def project_root(project: Path) -> Path:
    return read_project_file(project)[0]


#: A journal as given: a file, or a database URL (``postgresql://...``); None: the project's own file.
JournalArg = Path | str | JournalUrl | None


def journal_path(project: Path, journal: JournalArg) -> Path | JournalUrl:
    """The journal given (a file needs no project: a database's files need its .ordo/), else the project's."""
    if journal is not None and not is_url(journal):
        return location(journal)
    return _journal_at(project_root(project), journal)


def _journal_at(root: Path, journal: JournalArg) -> Path | JournalUrl:
    """The journal of a project: the one given (a database's files kept in the project's .ordo/), else its file."""
    return location(journal, root / ".ordo") if journal is not None else default_path(root)


@paused_gc()
def load_with_journal(project: Path, request: Path | None, inventory: Path | None, extra: list[Path],
                      journal: JournalArg, state: StateCopy | None = None) -> Project:
    """The project, with what earlier runs recorded counting as observed (the collector paused
    while the records are read, as while the model is built: domain/gcpause.py). The project
    file is read once, by load_project. ``state``: a long-lived process's copy of the records,
    brought up to date instead of read whole."""
    root = project_folder(project)[0]
    path = _journal_at(root, journal)
    observed, stored, sha256 = [], None, None
    mark = EMPTY_MARK if state is None else None   # (the service's runs claim what they change instead)
    if path.exists():
        with contextlib.suppress(NoJournal), Journal(path, create=False) as jr:   # (one being made: nothing yet)
            if state is not None:
                observed, stored = state.observed(jr)
                sha256 = state.digest(observed, stored)
            else:
                mark = jr.state_mark()   # (before the records: a write between makes a start refused, safely)
                observed, sha256 = read_state(jr, root / STATE_CACHE)
    loaded = load_project(project, request, inventory, extra, observed=observed, observed_json=stored,
                          observed_sha256=sha256, observed_name=display_path(path, root),
                          observed_in_flight=lambda: _written_under_way(path))
    loaded.observed_mark = mark
    return loaded


def _written_under_way(path: Path | JournalUrl) -> set[str]:
    """The resources whose records runs that may go on wrote last (asked only when a record names a
    resource the journal does not hold: ``domain.model.build_model``'s ``in_flight``)."""
    with Journal(path, create=False) as jr:
        return jr.written_by_runs_under_way()


def saved_plan_files(plan: Plan, source: Path, project: Path, inventory: Path | None, *,
                     strict: bool = True) -> tuple[Path | None, Path | None]:
    """The request and the inventory file a saved plan was made from, to load the project as it was
    planned (the digest then checks them); ``inventory``, given, replaces the plan's. None: the
    project's own (the files ordo.yaml names, wherever they are, and those of a plan of format 1.1 or
    before, which names none). The names are untrusted: other files are read only from inside the
    project folder; ``strict``: one from elsewhere is refused, else the project's own is taken (what
    then differs, the digest names)."""
    root, project_file, _ = read_project_file(project)
    own = {"request_file": project_file.request, "inventory_file": project_file.inventory}

    def made_from(field: str, what: str, instead: str) -> Path | None:
        name = getattr(plan, field)
        if not name:
            return None
        readable = name.isprintable() and len(name) <= 1000   # (a NUL is no path)
        path = resolved_path(root / name) if readable else None
        if path is not None and own[field] and path == resolved_path(root / own[field]):
            return None   # (an inventory or request outside the project, as ordo.yaml names it: its own)
        if not readable:
            why = "which is no file name ordo reads (a control character, or more than 1,000 characters)"
        elif path is None:
            why = "which is a symbolic link loop, or too long a name for the system to resolve"
        elif Path(name).is_absolute() or ".." in Path(name).parts:
            why = "which is named by an absolute path or through '..': a saved plan names its files from " \
                  "inside the project folder"
        elif not path.is_relative_to(root.resolve()):
            why = f"which is not a file inside the project folder (symlinks followed): a saved plan's {what} " \
                  "file is read only from inside it"
        elif path.exists() and not path.is_file():   # (a FIFO would hang the read; stat opens nothing)
            why = "which is not a regular file"
        else:
            return path   # (resolved, as checked: a symlink swapped in since is not followed)
        if not strict:
            return None
        raise DiagnosticsError([Diagnostic(
            file=str(source), path=field, summary=f"the plan was made from the {what} file {quoted(name)}, {why}",
            detail=f"plan again from a {what} file inside the project folder, or {instead}")])

    return made_from("request_file", "request", "apply the request itself (ordo apply REQUEST)"), \
        inventory or made_from("inventory_file", "inventory", "name it: ordo apply plan.json --inventory FILE")


def load_saved_plan_inputs(plan: Plan, source: Path, project: Path, inventory: Path | None, extra: list[Path],
                           journal: JournalArg, *, strict: bool = True) -> tuple[Project, Path | None, Path | None]:
    """The project loaded from the files a saved plan was made from (``saved_plan_files``), and those
    files. Their names are the plan's, untrusted: where one of them does not load as what the plan says
    it is, the refusal names the plan's field first (a plan naming ordo.yaml as its request had every
    key of ordo.yaml refused, and nothing said the plan had named it)."""
    request, inventory_file = saved_plan_files(plan, source, project, inventory, strict=strict)
    try:
        return load_with_journal(project, request, inventory_file, extra, journal), request, inventory_file
    except DiagnosticsError as exc:
        root = project_folder(project)[0]
        blamed = {resolved_path(root / d.file) for d in exc.diagnostics if d.file}
        # (said as what the plan names, not as its fault: the file may only have been edited since)
        notes = [Diagnostic(file=str(source), path=field, summary=f"the plan names {quoted(getattr(plan, field))} as "
                            f"its {what} file, which does not load as one now (below)",
                            detail=f"mend that file, or plan again from a {what} file, or {instead}")
                 for field, what, path, instead in (
                     ("request_file", "request", request, "apply the request itself (ordo apply REQUEST)"),
                     ("inventory_file", "inventory", inventory_file if inventory is None else None,
                      "name one: --inventory FILE"))
                 if path is not None and path in blamed]
        if notes:
            raise DiagnosticsError(notes + list(exc.diagnostics)) from None
        raise


def resolved_path(path: Path) -> Path | None:
    """``path`` with symlinks followed; None for a name too long or a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def unfinished_runs(project: Path, journal: JournalArg) -> list[RunInfo]:
    """The runs that can still be resumed (crashed, interrupted, failed, fallen out): a new apply is
    refused until each is resumed, aborted or superseded, and what a crashed one did last may not be
    in the journal's state yet. None (an empty list) without a journal."""
    path = journal_path(project, journal)
    if not path.exists():
        return []
    with contextlib.suppress(NoJournal), Journal(path, create=False) as jr:
        return jr.resumable()
    return []


def check_startable(project: Path, journal: JournalArg, supersede: bool) -> None:
    """Refuse a new apply while an earlier run can be resumed (unless superseding it), before planning.
    A run whose Temporal workflow still carries it on (its client gone) is refused either way, with
    what stops it: the journal counts it crashed, so a supersede would end it there while the workflow
    went on acting on the same resources as the new run, and `ordo resume` would not take it over."""
    path = journal_path(project, journal)
    if not path.exists():
        return
    with contextlib.suppress(NoJournal), Journal(path, create=False) as jr:
        for info in jr.check_startable(True):   # refuses a run in progress; the runs that could be resumed
            if info.options.get("engine") == "temporal" and unfollowed(jr, info):
                _refuse_carried_on(jr, info, supersede)
        if not supersede:
            jr.check_startable(False)


def on_temporal(jr: Journal | Any, info: RunInfo) -> bool:
    """Whether a run is its Temporal workflow's: started on Temporal, and not taken up since by the
    embedded engine (``ordo resume`` of a run its workflow ended, failed: the ``resumed`` event says
    so). A run taken up so that crashed was refused a resume, as if its workflow had left it unended."""
    if info.options.get("engine") != "temporal":
        return False
    resumed = jr.last_event(info.id, kinds=("resumed",))
    return resumed is None or resumed.data.get("host") != "embedded"


def unfollowed(jr: Journal | Any, info: RunInfo) -> bool:
    """Whether a run on Temporal may be its workflow's while no process follows it: crashed (its follower
    died), or interrupted by its follower's failure (its last word an ``interrupted`` event), not by its
    workflow's end (a Ctrl-C of the apply that followed it: the workflow ended the run, and is over), or
    ended failed by its follower, not its workflow (Temporal did not say how the workflow ended: the
    workflow went on once Temporal was back, and a resume here carried the run out beside it, an abort
    closed it in the journal alone, a sweep's). ``jr``: what reads the run's last event (a journal, or the
    service's engine)."""
    status = info.effective_status
    if status not in ("crashed", "interrupted", "failed") or not on_temporal(jr, info):
        return False   # (taken up by the embedded engine since its workflow ended it: a crash of that is its own)
    if status == "crashed":
        return True
    last = jr.last_event(info.id, kinds=("interrupted", "run-ended"))
    if status == "failed":
        return last is not None and last.kind == "run-ended" and last.data.get("follower") is True
    return last is not None and last.kind == "interrupted"


def carried_on(run: int, status: str, workflow: str, wid: str, *, follower: bool, rollback: bool = False,
               request: bool = False, address: str | None = None) -> str:
    """How a run on Temporal that no process follows (``unfollowed``: ``status`` crashed or interrupted) is
    carried on, given what its workflow ``wid`` does (``workflow_state``): "decide" (it waits for a
    decision: the one asked for is sent), "here" (it is gone and the run was interrupted by its follower's
    failure: this engine resumes the run), "follow" (a ``follower``, ``ordo serve``, follows it again to its
    end, as it takes runs over; where the workflow is gone that ends the run failed). ExecutionError where
    neither: a command follows no run it did not start, and a rollback or a resume of a ``request`` of its
    own has nothing to act on. The command line and the service ask this one decision. ``address``: the
    run's Temporal, which the commands its messages name need."""
    from executor.core.messages import ExecutionError
    from executor.temporal import workflow_command

    if workflow == "waits":
        return "decide"
    if workflow == "gone" and status in ("interrupted", "failed"):
        return "here"
    if follower and not (rollback or request):
        return "follow"
    describe = workflow_command("describe", wid, address)
    if workflow == "gone":
        raise ExecutionError(f"run {run} ran on Temporal, and its workflow is over or gone without having ended "
                             f"it (terminated, failed): nothing carries it on; `ordo abort {run}` closes it "
                             f"({describe} says how the workflow ended)")
    if rollback or request:
        raise ExecutionError(f"run {run} goes on in its workflow on Temporal (no process follows it now): there is "
                             f"nothing to {'roll back' if rollback else 'resume'}; see {describe}, or `ordo abort "
                             f"{run}`")
    whose = "started" if status == "crashed" else "followed"
    raise ExecutionError(f"run {run} runs on Temporal and its workflow is still going on without the process that "
                         f"{whose} it: see {describe}, or `ordo abort {run}`")


def _refuse_carried_on(jr: Journal, info: RunInfo, supersede: bool) -> None:
    """ExecutionError if ``info``'s Temporal workflow still runs. Without a supersede, a Temporal
    server that does not answer (or no Temporal client here) leaves the journal's own refusal to
    speak (it follows)."""
    from executor.engine import ExecutionError
    from executor.temporal import load_client

    try:
        gone = load_client().workflow_gone(info.options["temporal"], jr.id, info.id)
    except OrdoError:   # Temporal does not answer, or its extra is not installed here
        if supersede:
            raise
        return
    if not gone:
        raise ExecutionError(
            f"run {info.id} is carried on by its Temporal workflow (the process that started it is gone): "
            f"`ordo abort {info.id}` stops it, then apply again"
            + ("; a supersede now would leave the workflow acting beside the new run" if supersede else
               f" (`ordo resume {info.id}` cannot take it over while the workflow runs)"))


def check_saved_plan(project: Project, plan: Plan, source: str, *, timeout: float | None = None) -> Plan:
    """A plan saved earlier, read as untrusted input and refused unless it is
    the plan ordo makes from the inputs as they are now (planner/verify.py)."""
    from planner.verify import verify_saved_plan

    verify_saved_plan(project, plan, source, timeout=timeout)
    return plan


def apply_options(simulation: Path | None, on_failure: str | None, max_replans: int | None,
                  concurrency: int | None, op_timeout: float | None,
                  stored: dict[str, Any] | None = None) -> ApplyOptions:
    """The options of a run: those given, else those the run was started with (``stored``)."""
    from executor.controllers.simulated import load_simulation
    from executor.engine import ApplyOptions

    stored = stored or {}
    scenario = load_simulation(simulation) if simulation is not None else stored.get("simulation")
    return ApplyOptions(
        concurrency=concurrency if concurrency is not None else stored.get("concurrency"),
        max_replans=max_replans if max_replans is not None else stored.get("max_replans"),
        on_failure=on_failure or stored.get("on_failure") or "replan",
        # (an older ordo took --op-timeout inf: no call would end, no slot lease expire)
        default_timeout=min(op_timeout or stored.get("default_timeout") or 600.0, MOST_SECONDS),
        simulation=scenario,
        crash=os.environ.get("ORDO_CRASH_POINT"),
    )


class _ClaimingJournal(Journal):
    """A journal handle for one run that, when the run starts, claims the resources it works
    on (so runs on disjoint resources may run side by side) and records who asked for it."""

    def __init__(self, path: Path | JournalUrl, claims: Iterable[str] | None, record: dict[str, Any]) -> None:
        super().__init__(path)
        self._claims = None if claims is None else sorted(set(claims))
        self._record = record

    def begin_run(self, project: str, request: str, options: dict[str, Any], events: list[Event], *,
                  supersede: bool = False, claims: Iterable[str] | None = None,
                  unchanged: tuple | None = None) -> tuple[int, list[Event]]:
        return super().begin_run(project, request, {**options, **self._record}, events, supersede=supersede,
                                 claims=self._claims if claims is None else claims, unchanged=unchanged)

    def start_claims(self) -> list[str] | None:
        return self._claims


def _nothing(executor: Executor) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def _drive(jr: Journal, executor: Executor, around: Around | None, start: Callable[[], RunResult]) -> RunResult:
    try:
        try:
            with (around or _nothing)(executor):
                return start()
        finally:
            executor.close()
    except KeyboardInterrupt as exc:
        exc.runs = mark_interrupted(jr)   # (what the CLI names: how the run is carried on)
        raise
    finally:
        jr.close()


def execute(project: Project, plan: Plan, options: ApplyOptions, journal: JournalArg, *,
            listener: Listener | None = None, around: Around | None = None, supersede: bool = False,
            claims: Iterable[str] | None = None, record: dict[str, Any] | None = None,
            temporal: Temporal | None = None, shared: Shared | None = None) -> RunResult:
    """Start a run of ``plan`` and carry it to an end. With ``claims``, the run holds only these
    resources (JournalError while another run holds one of them) instead of the whole journal;
    ``record`` is kept with the run's options (who asked for it, the idempotency key).
    With ``temporal``, the run is a Temporal workflow carried out by ``ordo worker`` processes.
    ``shared``: the controllers' concurrency and the guards of the runs going on beside it."""
    path = _journal_at(project.root, journal)
    if supersede:
        with Journal(path) as jr:
            last = jr.last_run() or 0
    try:
        return _execute(project, plan, options, path, listener=listener, around=around, supersede=supersede,
                        claims=claims, record=record, temporal=temporal, shared=shared)
    finally:
        if supersede:
            _end_superseded(path, last)


def _end_superseded(path: Path | JournalUrl, last: int) -> None:
    """The workflows of the runs on Temporal that a run after ``last`` superseded told to end, as far as
    Temporal can be reached: one that fell out waits for a decision, which can change nothing now. Where
    this is not done (Temporal out of reach, this process stopped first), `ordo abort N` tells it."""
    from executor.temporal import load_client

    with contextlib.suppress(OrdoError), Journal(path, create=False) as jr:
        for info in jr.runs(status="superseded"):
            if info.options.get("engine") == "temporal" and info.summary.get("superseded_by", 0) > last:
                with contextlib.suppress(OrdoError):
                    load_client().end_superseded(info.options["temporal"], jr.id, info.id)


def _execute(project: Project, plan: Plan, options: ApplyOptions, path: Path | JournalUrl, *,
             listener: Listener | None, around: Around | None, supersede: bool, claims: Iterable[str] | None,
             record: dict[str, Any] | None, temporal: Temporal | None, shared: Shared | None) -> RunResult:
    from executor.engine import ExecutionError, Executor

    if temporal is not None:
        from executor.temporal import load_client, waits_refused

        refused = waits_refused([op.id for op in plan.operations if _waits(project, op.resource, op.operation)])
        if refused is not None:
            raise ExecutionError(refused)

        return load_client().apply(project, plan, options, path, temporal, listener=listener or (lambda ev: None),
                                   around=around or _nothing, supersede=supersede, claims=claims, record=record)
    jr = _ClaimingJournal(path, claims, record or {}) if claims is not None or record else Journal(path)

    def loader(observed: list) -> Project:
        return load_project(project.root, project.request_path, project.inventory_file, project.extra_policy_files,
                            observed=observed, observed_name=display_path(path, project.root))

    executor = Executor(jr, loader, options=options, listener=listener, shared=shared)
    return _drive(jr, executor, around, lambda: executor.apply(project, plan, supersede=supersede))


def _waits(project: Project, resource: str, operation: str) -> bool:
    res = project.model.resources.get(resource)
    return res is not None and project.model.kinds[res.type].operation(operation).wait is not None


def deliver_event(project: Path, journal: JournalArg, run_id: int, resource: str, event: str,
                  data: dict[str, Any] | None, principal: str) -> str:
    """Deliver an outside event to the operation of run ``run_id`` that waits for it (executor/waits.py)."""
    from executor.waits import deliver

    with Journal(journal_path(project, journal), create=False) as jr:
        return deliver(jr, run_id, resource, event, data, principal).message


def run_files(jr: Journal, run_id: int) -> dict[str, Any]:
    """The files a run was planned from (its run-started event): request, inventory, policies."""
    for ev in jr.events(run_id, limit=1):
        return ev.data.get("files") or {}
    return {}


def resume(project: Path, inventory: Path | None, journal: JournalArg, run_id: int, simulation: Path | None,
           on_failure: str | None, max_replans: int | None, op_timeout: float | None, *,
           listener: Listener | None = None, around: Around | None = None, shared: Shared | None = None,
           rollback: bool = False, record: dict[str, Any] | None = None, given: Iterable[str] = ()) -> RunResult:
    """Carry on a run that crashed, was interrupted, or fell out, from the files it was planned from.
    With ``rollback``, a run that fell out, failed or was interrupted is rolled back instead: planned from
    what is observed to the state before the run, within its resources (created ones removed, changed
    ones put back), and carried out; it ends rolled_back. A run that fell out on Temporal, whose workflow
    still waits for a decision, is carried on by that workflow (``record``: who asked, for its journal).
    ``simulation`` and the options then stay those of the run: ``given``, the options a user named (as
    ``--max-replans``), are refused then, not dropped in silence."""
    from executor.engine import ExecutionError, Executor

    root = project_root(project)
    path = _journal_at(root, journal)
    jr = Journal(path, create=False)
    try:
        info = jr.run(run_id)
        # fallen out on Temporal, or crashed there (a resume that took the run died before its decision
        # reached the workflow), or interrupted (its follower failed): the workflow that still waits for a
        # decision carries the run on
        if on_temporal(jr, info) and (info.effective_status == "fallout" or unfollowed(jr, info)):
            from executor.temporal import load_client, workflow_id

            # (a workflow over or gone leaves the run to this engine below, where they apply)
            if (given := sorted(given)) and not load_client().workflow_gone(info.options["temporal"], jr.id, run_id):
                raise ExecutionError(
                    f"run {run_id} is carried on by its Temporal workflow, which keeps the options the run "
                    f"started with: {', '.join(given)} would change nothing; resume without "
                    f"{'it' if len(given) == 1 else 'them'}, or `ordo abort {run_id}` and apply anew")
            jr.close()  # the decision follows the run on a journal of its own
            decided = load_client().decide(path, run_id, info.options["temporal"],
                                           "rollback" if rollback else "resume", record or {},
                                           listener=listener or (lambda ev: None), around=around or _nothing)
            if decided is not None:
                return decided
            jr = Journal(path, create=False)
            if info.effective_status != "fallout":
                # (an interrupted one whose follower stopped, not its workflow: carried out here too, its
                # operations would be sent twice; a command follows no run it did not start)
                workflow = load_client().workflow_state(info.options["temporal"], jr.id, run_id)
                # (it fell out since decide asked)
                if carried_on(run_id, info.effective_status, workflow, workflow_id(jr.id, run_id), follower=False,
                              rollback=rollback, address=info.options["temporal"]) == "decide":
                    raise ExecutionError(f"run {run_id}'s workflow waits for a decision now: resume it again")
        options = apply_options(simulation, on_failure, max_replans, None, op_timeout, stored=info.options)
        files = run_files(jr, run_id)
        if not any(ev.kind == "run-started" for ev in jr.events(run_id, limit=1)):
            raise ExecutionError(f"run {run_id} has no run-started event (it was cut short before it began): "
                                 "there is nothing to say what it was planned from, so it cannot be resumed; "
                                 f"`ordo abort {run_id}` closes it")
    except BaseException:
        jr.close()
        raise
    request = files.get("request")
    inv = inventory or (Path(files["inventory"]) if files.get("inventory") else None)
    extra = [Path(p) for p in files.get("policies") or []]

    def loader(observed: list) -> Project:
        return load_project(root, Path(request) if request else None, inv, extra, observed=observed,
                            observed_name=display_path(path, root))

    if inventory is not None:   # a file given now: refused before the run is taken (each try journaled `resumed`)
        try:
            loader(list(jr.state().values()))
        except BaseException:
            jr.close()
            raise
    executor = Executor(jr, loader, options=options, listener=listener, shared=shared)
    return _drive(jr, executor, around, lambda: executor.resume(run_id, rollback=rollback))


def mark_interrupted(jr: Journal) -> list[int]:
    """Best effort after a second Ctrl-C: the run is resumable either way. The runs of this process
    it found running (marked interrupted, unless the journal could not be written)."""
    found = []
    try:
        for run in jr.runs(status="running"):
            if run.pid == os.getpid():
                found.append(run.id)
                jr.append(run.id, [Event("interrupted", data={"how": "stopped at once"})], status="interrupted")
    except (JournalError, OSError, Exception):  # noqa: BLE001 - nothing may hide the interrupt
        pass
    return found


def abort(project: Path, journal: JournalArg, run_id: int, *, record: dict[str, Any] | None = None) -> str:
    """Stop a run: a running one is asked to (it stops once its operations in flight finish), one that
    crashed or waits for a decision is closed. Nothing is undone. ``record``: who asked, kept in the event."""
    from executor.engine import ExecutionError

    record = record or {}
    with Journal(journal_path(project, journal), create=False) as jr:
        info = jr.run(run_id)
        status = info.effective_status
        if on_temporal(jr, info) and (status == "running" or unfollowed(jr, info)):
            from executor.temporal import TemporalError, load_client

            # crashed (or interrupted: its follower failed) while its workflow waits for a decision (the process
            # that took it to resume it died)
            decided = None
            # (no worker answers what it waits for: it is asked to stop below, as a signal waits for a worker;
            # refused, the abort could not be asked: a review's)
            with contextlib.suppress(TemporalError):
                if status != "running":
                    decided = load_client().decide(jr.path, run_id, info.options["temporal"], "abort", record,
                                                   listener=lambda ev: None, around=_nothing)
            if decided is not None:
                return _aborted(decided, f"Run {run_id} aborted (its workflow waited for a decision); "
                                         "nothing was undone.")
            # crashed, and its workflow is over or gone (terminated, its history removed): nothing carries it
            # on, nothing would hear a stop; it is closed here, as a local run that crashed is
            if status != "running" and load_client().workflow_gone(info.options["temporal"], jr.id, run_id):
                _close_aborted(jr, info, status, f"aborted while {status} (its workflow gone)", record)
                return f"Run {run_id} aborted (it was {status}, its workflow gone); nothing was undone."
            _ask_abort(jr, info, record)
            try:
                load_client().stop_workflow(info.options["temporal"], jr.id, run_id, "aborted")
            except TemporalError as exc:
                # the workflow may have read the abort from the journal and ended before the signal came
                return _ended_first(jr, run_id, exc)
            return (f"Abort requested: run {run_id} (a Temporal workflow) will stop once its operations "
                    "in flight finish.")
        if status == "running":
            asked = "Abort requested" if _ask_abort(jr, info, record) else "Abort already requested"
            return f"{asked}: run {run_id} (pid {info.pid}) will stop once its operations in flight finish."
        if on_temporal(jr, info) and status in ("fallout", "superseded"):
            from executor.temporal import load_client

            # superseded: its workflow may still wait (the apply that superseded it stopped before telling it)
            decided = load_client().decide(jr.path, run_id, info.options["temporal"], "abort", record,
                                           listener=lambda ev: None, around=_nothing)
            if decided is not None and status == "superseded":
                return f"Run {run_id} was superseded; its workflow, which still waited for a decision, has ended."
            if decided is not None:
                return _aborted(decided, f"Run {run_id} aborted (it was fallout, its workflow waiting); "
                                         "nothing was undone.")
        if status in ("crashed", "fallout", "interrupted", "failed"):
            _close_aborted(jr, info, status, f"aborted while {status}", record)
            ended = _end_left_running(jr, run_id) if status == "crashed" else 0
            return f"Run {run_id} aborted (it was {status}); nothing was undone." + _left_ended(ended)
        raise ExecutionError(f"run {run_id} is {status}: there is nothing to abort")


def _ask_abort(jr: Journal, info: RunInfo, record: dict[str, Any]) -> bool:
    """Journal that a running run is asked to stop, unless it was asked since it last started or
    resumed, of the process that holds it now (each abort asked was an event: a client retrying wrote
    one per try; a run taken over to be resumed, before it says it resumed, is asked anew: the abort
    asked of the process before is not one it reads, a review's). Whether it wrote."""
    holder = [info.host, info.pid]
    last = jr.last_event(info.id, kinds=("abort-requested", "run-started", "resumed", "run-ended"))
    if last is not None and last.kind == "abort-requested" and last.data.get("held_by") == holder:
        return False
    jr.append(info.id, [Event("abort-requested", data={"pid": os.getpid(), "held_by": holder, **record})])
    return True


def left_in_doubt(jr: Journal, run_id: int) -> RunState:
    """The run's state as far as what it left in doubt goes (its ``in_doubt`` and their keys), read from the
    events that decide it, not every event."""
    from executor.engine import rebuild

    return rebuild(jr, run_id, jr.doubt_events(run_id)[0])


def _end_left_running(jr: Journal, run_id: int) -> int:
    """The command controllers' programs a crashed run left running for its operations in doubt (an
    ordo killed with -9, or by the out-of-memory killer, mid-call): ended, as a resume ends them before
    it observes. Aborted, the run was said to be stopped while they ran on and made their effect
    (the fourth review of 7 December). How many ran."""
    from executor.controllers.command import end_left_running

    prior = left_in_doubt(jr, run_id)
    keys = sorted(key for oid in prior.in_doubt if (key := prior.keys.get(oid)))
    return end_left_running(jr.path.parent, keys) if keys else 0


def _left_ended(count: int) -> str:
    """What abort says of the programs it ended (none: nothing)."""
    if not count:
        return ""
    one = count == 1
    return (f" {'The program' if one else f'The {count} programs'} it left running (its ordo was killed at once) "
            f"{'was' if one else 'were'} ended; the next run observes what {'it' if one else 'they'} did.")


def _ended_first(jr: Journal, run_id: int, error: Exception) -> str:
    """A run whose workflow could not be signalled to stop: aborted if it ended so meanwhile (its
    workflow heard the abort-requested event first), else the signal's error stands."""
    from executor.engine import ExecutionError

    ended = jr.run(run_id).status
    if ended == "running":
        raise error   # nothing ended the run: the signal's own error stands
    if ended != "aborted":
        raise ExecutionError(f"run {run_id} ended {ended} before the abort reached it; see `ordo history`") from None
    return f"Run {run_id} aborted; nothing was undone."


def _aborted(decided: RunResult, done: str) -> str:
    """``done``, when the abort a run's workflow was sent ended it; else why not (another decision came first)."""
    from executor.engine import ExecutionError

    if decided.status != "aborted":
        raise ExecutionError(f"run {decided.run} was not aborted: it is {decided.status} "
                             f"({decided.reason or 'it changed meanwhile'}); see `ordo history`")
    return done


def _close_aborted(jr: Journal, info: RunInfo, status: str, reason: str, record: dict[str, Any]) -> None:
    """The run ended aborted in the journal, written only if it is still ``status`` (effective) then:
    nothing moved it on meanwhile (a resume took it over, a supersede ended it)."""
    from executor.engine import ExecutionError

    summary = {**info.summary, "status": "aborted", "reason": reason}
    if not jr.append_once(info.id, [Event("run-ended", data={**summary, **record})], since=None, status="aborted",
                          summary=summary, only_if=lambda r: r.effective_status == status)[1]:
        raise ExecutionError(f"run {info.id} changed while it was aborted: it is "
                             f"{jr.run(info.id).effective_status} now; see `ordo history`")
