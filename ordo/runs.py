"""The CLI's side of runs: live progress, Ctrl-C, and the views of history.
What a run is (loading with the journal, starting, resuming, aborting) is the
library's (executor/runs.py), shared with the service; this module decides
what people see."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from domain.project import Project, display_path
from executor import runs as library
from executor.engine import ApplyOptions, Executor, RunResult
from executor.journal import UNREADABLE, Event, Journal, JournalError, RunInfo, damaged_event, utc_text
from executor.redact import Redactor
from executor.runs import journal_path, left_in_doubt
from ordo.progress import JsonStream, LiveView, guard_text, retry_when, summary_line, wait_text
from ordo.render import columns, print_lines, shown
from planner.plan import Plan


@contextmanager
def _interrupts(executor: Executor, console: Console) -> Iterator[None]:
    """Ctrl-C once: drain and save; twice: stop at once (the journal allows resume).
    SIGTERM (a service manager stopping ordo, ``timeout``, a container's end) counts as
    Ctrl-C for a run this process carries out: the operations in flight finish and the run
    stays resumable; SIGHUP (its terminal gone) as a second one. The client of a Temporal run
    only follows it: SIGTERM ends the client, and the run goes on (docs/deploy.md)."""
    presses = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if signum == signal.SIGHUP:   # the terminal is gone (an ssh session dropped): nobody sees a drain, and
            raise KeyboardInterrupt   # SIGHUP's default left the calls' programs running, orphaned: at once
        if presses == 1:
            executor.request_stop()
            why, again = (" (SIGTERM)", "SIGTERM or Ctrl-C") if signum == signal.SIGTERM else ("", "Ctrl-C")
            console.print(f"\n[yellow]Stopping{why}: letting the operations in flight finish "
                          f"({again} again to stop at once).[/]", highlight=False)
        else:
            raise KeyboardInterrupt

    heard = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if isinstance(executor, Executor) else (signal.SIGINT,)
    previous = {sig: signal.signal(sig, handler) for sig in heard}
    try:
        yield
    finally:
        for sig, was in previous.items():
            signal.signal(sig, was)


def _listener(as_json: bool, console: Console) -> Any:
    if as_json:
        return JsonStream(lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    return LiveView(console)


class _Quiet:
    """The run's view, quiet from the first event it cannot write on (a closed pipe: ``| head``, a
    ``jq`` that ended; a full disk), the run going on: the error ended the run at once, left crashed
    with its operations in flight in doubt, and said nothing (an operator's sweep)."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.quiet = False

    def notice(self, text: str, run: int) -> None:
        if not self.quiet:
            with contextlib.suppress(OSError):   # (the next event says the output is gone)
                self.view.notice(text, run)

    def __call__(self, ev: Event) -> None:
        if self.quiet:
            return
        try:
            self.view(ev)
        except OSError as exc:
            self.quiet = True
            with contextlib.suppress(OSError, ValueError):
                print(f"ordo: the output cannot be written ({exc.strerror or exc}): run {ev.run} goes on without "
                      f"it; `ordo show {ev.run}` shows it", file=sys.stderr, flush=True)


def _shown_live(view: Any, console: Console) -> Any:
    """What wraps a run the CLI drives: Ctrl-C handling, and the live view when there is one."""
    @contextmanager
    def around(executor: Executor) -> Iterator[None]:
        with _interrupts(executor, console), (view if isinstance(view, LiveView) else nullcontext()):
            yield
    return around


def execute(project: Project, plan: Plan, options: ApplyOptions, journal: Path | None, *, as_json: bool,
            console: Console, supersede: bool = False, temporal: Any = None) -> RunResult:
    view = _listener(as_json, console)
    return library.execute(project, plan, options, journal, listener=_Quiet(view), around=_shown_live(view, console),
                           supersede=supersede, temporal=temporal)


def resume(project: Path, inventory: Path | None, journal: Path | None, run_id: int, simulation: Path | None,
           on_failure: str | None, max_replans: int | None, op_timeout: float | None, *, as_json: bool,
           console: Console, rollback: bool = False, given: tuple[str, ...] = ()) -> RunResult:
    view = _listener(as_json, console)
    return library.resume(project, inventory, journal, run_id, simulation, on_failure, max_replans, op_timeout,
                          listener=_Quiet(view), around=_shown_live(view, console), rollback=rollback, given=given)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def history(console: Console, project: Path, journal: Path | None, as_json: bool) -> None:
    path = journal_path(project, journal)
    if not path.exists():
        if as_json:
            console.file.write("[]\n")
        else:
            console.print("No runs yet.")
        return
    with Journal(path, create=False) as jr:
        redactor = Redactor()
        runs = [redactor.run(r) for r in jr.runs()]
    if as_json:
        console.file.write(json.dumps([{
            "run": r.id, "started": utc_text(r.created), "updated": utc_text(r.updated), "request": r.request,
            "status": r.effective_status, "summary": r.summary} for r in runs], indent=2, sort_keys=True) + "\n")
        return
    if not runs:
        console.print("No runs yet.")
        return
    columns(console, ("RUN", "STARTED (UTC)", "REQUEST", "STATUS", "RESULT"), [
        (str(r.id), _when(r.created), r.request, r.effective_status,
         summary_line(r.effective_status, r.summary).split(": ", 1)[-1].rstrip(".")
         if r.summary and r.summary_is_current else "")   # (resumed, then running or crashed: none yet)
        for r in runs])


def show(console: Console, project: Path, journal: Path | None, run_id: int | None, as_json: bool, *,
         tail: int | None = None, resources: tuple[str, ...] | None = None) -> None:
    """A run and its events (``tail``: the last so many; ``resources``: those of operations on them)."""
    with Journal(journal_path(project, journal), create=False) as jr:
        if run_id is None:
            run_id = jr.last_run()
            if run_id is None:
                raise JournalError(f"{jr.path}: no run was recorded yet")
        info = jr.run(run_id)
        events = jr.events(run_id, limit=-1 if tail is None else tail, resources=resources, last=tail is not None)
        if tail is None and resources is None:
            first, final = events[:1], events[-1:]
        else:   # (the times count from the run's first event, as without them)
            first, final = jr.events(run_id, limit=1), [ev for ev in [jr.last_event(run_id)] if ev is not None]
        texts = _event_texts(jr.path, events)  # a damaged event names itself before anything is printed
        journal_id = jr.id
        doubt = _in_doubt(jr, info)
        unfollowed = library.unfollowed(jr, info)
        taken_up = info.options.get("engine") == "temporal" and not library.on_temporal(jr, info)
    # journals written before redaction, and secrets of this environment: masked again on the way out
    redactor = Redactor()
    events = [replace(ev, data=redactor.event(ev.data)) for ev in events]
    info = redactor.run(info)
    texts = [redactor.text(t) for t in texts]
    if as_json:
        stream = JsonStream(console.file.write)
        for ev in events:
            stream(ev)
        return
    console.print(f"[bold]Run {info.id}[/]: {shown(info.request)}, {shown(info.effective_status)}", highlight=False)
    last = max([info.updated, *(ev.at for ev in final)])   # (the run's row changes with its status only)
    console.print(f"  started {_when(info.created)} UTC, last event {_when(last)} UTC", highlight=False)
    if info.options.get("engine") == "temporal":
        from executor.temporal import workflow_id

        # (resumed here once its workflow had ended it: the run is this engine's since, a sweep's)
        console.print(f"  {'started ' if taken_up else ''}on Temporal at {shown(info.options.get('temporal', '?'))}: "
                      f"workflow {workflow_id(journal_id, info.id)}"
                      f"{'; carried on here since its workflow ended it' if taken_up else ''}", highlight=False)
    if info.summary and not info.summary_is_current:   # resumed: what the summary says is of its last stop
        stopped = str(info.summary.get("status", "stopped"))
        console.print(f"  resumed; when it stopped ({shown(stopped)}): "
                      f"{shown(summary_line(stopped, info.summary).split(': ', 1)[-1])}", highlight=False)
        if info.summary.get("reason"):
            console.print(f"  (then: {shown(info.summary['reason'])})", highlight=False)
    elif info.summary:
        console.print(f"  {shown(summary_line(info.effective_status, info.summary))}", highlight=False)
        if info.summary.get("reason"):
            console.print(f"  {shown(info.summary['reason'])}", highlight=False)
    if doubt:   # (matched by hand from intents without results before, an operator's sweep)
        more = f" and {len(doubt) - DOUBT_SHOWN:,} more" if len(doubt) > DOUBT_SHOWN else ""
        # (a run its workflow may still carry on: they may be in flight on its workers, and `ordo resume` refuses
        # to take the run up while the workflow goes on; it said "observes them first", a sweep's)
        then = (f"its workflow on Temporal may still be carrying them out: `ordo resume {info.id}` takes the run up "
                f"only once its workflow waits for a decision or is gone, `ordo abort {info.id}` stops it"
                if unfollowed else f"`ordo resume {info.id}` observes them first" + (
                    # (a run of the service: the server takes it up itself, which `ordo show` did not say)
                    ", as `ordo serve` does when it takes the run up (at its next start, or once the run has been "
                    "quiet for a while)" if info.options.get("principal") is not None else ""))
        console.print(f"  in doubt (sent, no answer recorded): {shown(', '.join(doubt[:DOUBT_SHOWN]))}{more}; "
                      f"{then}", highlight=False)
    console.print()
    start = first[0].at if first else 0.0
    if not events and resources is not None:
        console.print(f"  No event of an operation on {shown(', '.join(resources))}.", highlight=False)
    elif not events and tail == 0:
        console.print("  (--tail 0: no event shown)", highlight=False)
    rows = []
    for ev, text in zip(events, texts, strict=True):
        # a no-plan's summary, the planner's diagnostics one a line, a line each (indented under its event)
        first, *more = text.split("\n") if ev.kind == "no-plan" else (text,)
        rows.append((f"  {ev.seq:>5} {ev.at - start:8.3f}s  {first}", ""))
        rows += [(f"{'':>19}{line}", "") for line in more]
    print_lines(console, rows)


#: How many operations in doubt `ordo show` names.
DOUBT_SHOWN = 10


def _in_doubt(jr: Journal, info: RunInfo) -> list[str]:
    """The operations a run that stopped short (crashed, or stopped at once) left in doubt, sorted."""
    if info.effective_status not in ("crashed", "interrupted"):
        return []
    return sorted(left_in_doubt(jr, info.id).in_doubt)


def _event_texts(path: Path, events: list[Event]) -> list[str]:
    texts = []
    for ev in events:
        try:
            texts.append(_event_text(ev))
        except UNREADABLE as exc:
            raise damaged_event(path, ev, exc) from None
    return texts


def _event_text(ev: Event) -> str:
    d = ev.data
    k = ev.kind
    if k == "run-started":
        return f"run started: {d.get('request', '')}"
    if k in ("plan", "replan"):
        plan = Plan.from_json(d["plan"])
        return f"{k} {d['number']}: {len(plan.operations)} operations ({d.get('reason', '')})"
    if k == "intent":
        doubt = ", observe first" if d.get("observe_first") else ""
        return f"intent   {ev.op} attempt {d['attempt']} on {d['controller']}{doubt} key={ev.key}"
    if k == "result":
        outs = ", ".join(f"{a}={b}" for a, b in sorted((d.get("outputs") or {}).items()))
        return f"result   {ev.op} -> {d['state']}" + (f" [{outs}]" if outs else "")
    if k == "waiting":
        until = dt.datetime.fromtimestamp(d["deadline"], tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"waiting  {ev.op} for {wait_text(d)} until {until} ({d['seconds']:g}s)"
    if k == "sent":
        outs = ", ".join(f"{a}={b}" for a, b in sorted((d.get("outputs") or {}).items()))
        return f"sent     {ev.op} attempt {d['attempt']}, now waiting" + (f" [{outs}]" if outs else "")
    if k == "event-received":
        values = ", ".join(f"{a}={b}" for a, b in sorted((d.get("data") or {}).items()))
        return f"event    {ev.op} '{d.get('event')}' from {d.get('principal')}" + (f" [{values}]" if values else "")
    if k == "retry":
        return f"retry    {ev.op} attempt {d['attempt']}: {d['error']} ({retry_when(d, 'again in {}s')})"
    if k == "failed":
        return f"failed   {ev.op} attempt {d['attempt']}: {d['error']}"
    if k == "guard-denied":
        return f"guarded  {ev.op} {guard_text(d)}"
    if k == "observed":
        return f"observed {d.get('resource')}: {d.get('state', d.get('error'))}"
    if k == "learnt":
        return "learnt   " + ", ".join(f"{f[0]}({', '.join(f[1:])})" for f in d.get("facts", []))
    if k == "interrupted":   # (a second Ctrl-C, SIGTERM or SIGHUP: a drained run ends with run-ended)
        how = str(d.get("how", "stopped at once")).removeprefix("stopped ")
        return f"stopped  {how}: the operations in flight are in doubt, observed on resume"
    if k == "replan-stopped":
        return f"stopped  the {d.get('mode')} re-plan before it was made: {d.get('reason')}"
    if k == "no-plan":
        return f"no plan: {(d.get('explanation') or {}).get('summary', d.get('status'))}"
    if k == "run-ended":
        return f"ended {d.get('status')}: " + summary_line(d.get("status", ""), d).split(": ", 1)[-1]
    return f"{k} {json.dumps(d, sort_keys=True, default=str)}"


def state_list(console: Console, project: Path, journal: Path | None, export: bool) -> None:
    path = journal_path(project, journal)
    records = {}
    runs_of: dict[str, int] = {}
    if path.exists():
        with Journal(path, create=False) as jr:
            records = jr.state()
            runs_of = jr.state_runs()
    if export:
        import yaml

        from domain.formats import InventoryFile, parse
        from domain.project import read_project_file
        from domain.yamlsrc import load_yaml

        root, project_file, _ = read_project_file(project)
        inventory = {"targets": {}, "resources": []}
        if project_file.inventory:
            src = load_yaml(root / project_file.inventory, display_path(root / project_file.inventory, root))
            parse(InventoryFile, src)  # problems as diagnostics with file and line
            data = src.data or {}
            inventory = {"targets": data.get("targets") or {}, "resources": list(data.get("resources") or [])}
        merged = {r["name"]: r for r in inventory["resources"]}
        redactor = Redactor()
        for name, record in records.items():
            merged[name] = redactor.record(record).model_dump(mode="json", exclude_defaults=True)
        inventory["resources"] = [merged[n] for n in sorted(merged)]
        console.file.write("# the inventory file with what the journal recorded over it (ordo state --export)\n")
        console.file.write(yaml.safe_dump(inventory, sort_keys=False, default_flow_style=None))
        return
    if not records:
        console.print("The journal records no resources: plans start from the inventory file alone.")
        return
    columns(console, ("RESOURCE", "TYPE", "STATE", "PLACEMENT", "RUN"), [
        (name, record.type, record.state, record.placement or "-", str(runs_of.get(name, "")))
        for name, record in records.items()])


def state_rm(project: Path, journal: Path | None, names: list[str]) -> str:
    with Journal(journal_path(project, journal), create=False) as jr:
        known = jr.state_runs()  # not the records: a damaged one can be forgotten too
        unknown = [n for n in names if n not in known]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise JournalError(f"the journal has no record of '{unknown[0]}'{hint}")
        gone = jr.forget(names)
    return f"Forgot {len(gone)} record(s): {', '.join(gone)}. The inventory file speaks for them again."
