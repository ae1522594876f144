"""Live views of a run: a line per operation as it starts and ends, a
progress bar, re-plans as they happen (rich); or a JSON event stream.

The executor calls ``__call__`` with each journal event as it is written.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from executor.journal import Event
from ordo.render import shown
from ordo.safe import shown_lines
from planner.plan import Plan

DONE_WORD = {"create": "created", "delete": "deleted", "update": "updated", "change": "changed", "run": "ran"}


class LiveView:
    """Terraform-like lines, with a progress bar on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.op_started: dict[str, float] = {}
        self.progress: Progress | None = None
        self.task: Any = None
        self.total = 0
        self.done = 0
        self.placements: dict[str, str] = {}

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]Applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("apply", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        line = f"[dim]{elapsed:7.2f}s[/] {text}"
        (self.progress.console if self.progress else self.console).print(line, highlight=False, soft_wrap=True)

    def _plan(self, plan_json: str) -> Plan:
        plan = Plan.from_json(plan_json)
        self.placements, previous = dict(plan.placements), self.placements
        self.moved = [f"{r}: {previous[r]} -> {t}" for r, t in sorted(plan.placements.items())
                      if r in previous and previous[r] != t]
        self.total = len(plan.operations)
        self.done = 0
        if self.progress is not None:
            self.progress.update(self.task, total=self.total, completed=0)
        return plan

    def notice(self, text: str, run: int) -> None:
        """What a run on Temporal waits for, while it journals nothing (executor.temporal.client.Quiet)."""
        self._print(f"[yellow]Waiting: {shown(text)}[/]")

    def __call__(self, ev: Event) -> None:
        data = ev.data
        kind = ev.kind
        if kind == "plan":
            self._plan(data["plan"])
            self._print(f"Run {ev.run}: executing plan {data['number']} ({self.total} operations)")
        elif kind == "resumed":
            self._print(f"Run {ev.run}: resuming (it was {shown(data['from'])})")
        elif kind == "intent":
            self.op_started[ev.op] = time.monotonic()
            extra = f" (attempt {data['attempt']})" if data["attempt"] > 1 else ""
            check = ", observing first" if data.get("observe_first") else ""
            self._print(f"{shown(ev.op)}: starting on {shown(data['controller'])}{extra}{check}")
        elif kind == "result":
            began = self.op_started.pop(ev.op, None)   # (None: sent before this process, which resumed the run)
            took = f" after {time.monotonic() - began:.2f}s" if began is not None else ""
            outs = data.get("outputs") or {}
            listed = " " + shown(f"[{', '.join(f'{k}={_short(v)}' for k, v in sorted(outs.items()))}]") if outs else ""
            how = " (found applied)" if data.get("observed") else ""
            self._print(f"[green]{shown(ev.op)}: done{took}{how}[/]{listed}")
            self.done += 1
            if self.progress is not None:
                self.progress.update(self.task, completed=self.done)
        elif kind == "waiting":
            self.op_started.setdefault(ev.op, time.monotonic())
            self._print(f"{shown(ev.op)}: waits for {shown(wait_text(data))} (deadline in {data['seconds']:g}s)")
        elif kind == "event-received":
            self._print(f"{shown(ev.op)}: event {shown(repr(data.get('event')))} from {shown(data.get('principal'))}")
        elif kind == "retry":
            self._print(f"[yellow]{shown(ev.op)}: attempt {data['attempt']} failed: {shown(data['error'])}; "
                        f"{retry_when(data)}[/]")
        elif kind == "failed":
            self._print(f"[red]{shown(ev.op)}: failed: {shown(data['error'])}[/]")
        elif kind == "guard-denied":
            self._print(f"[yellow]{shown(ev.op)}: {shown(guard_text(data))}[/]")
        elif kind == "observed":
            if "error" in data:
                self._print(f"could not observe {shown(data['resource'])}: {shown(data['error'])}")
            else:
                where = f" on {data['target']}" if data.get("target") else ""
                self._print(f"observed {shown(data['resource'])}: {shown(data['state'])}{shown(where)}")
        elif kind == "learnt":
            facts = ", ".join(f"{f[0]}({', '.join(f[1:])})" for f in data.get("facts", []))
            self._print(f"learnt: {shown(facts)}")
        elif kind == "replan":
            self._print(f"[bold magenta]Re-planned (plan {data['number']}, {data['seconds']:g}s):[/] "
                        f"{shown(data['reason'])}")
            self._plan(data["plan"])
            moved = f"; moves {', '.join(self.moved)}" if self.moved else ""
            self._print(f"  plan {data['number']}: {self.total} operations{shown(moved)}")
        elif kind == "no-plan":
            summary = (data.get("explanation") or {}).get("summary", data["status"])
            self._print(f"[red bold]No plan after the failure:[/] {shown_lines(summary)}")
        elif kind == "abort-requested":
            who = f" by {shown(data['principal'])}" if isinstance(data.get("principal"), str) else ""
            pid = f" (pid {data['pid']})" if isinstance(data.get("pid"), int) and not who else ""
            self._print(f"[yellow]Abort requested{who}{pid}: finishing operations in flight[/]")
        elif kind == "replan-stopped":
            self._print(f"[yellow]Re-plan ({shown(data.get('mode', ''))}) stopped before it was made:[/] "
                        f"{shown(data.get('reason', ''))}; a resume makes it")


class JsonStream:
    """One JSON object per line per event; plans are summarised, not repeated."""

    def __init__(self, write: Any) -> None:
        self.write = write

    def notice(self, text: str, run: int) -> None:
        """A line of its own kind, with no journal seq (it is no event of the journal's): what a quiet run
        waits for, with the run and the time (``at``) as an event has them."""
        self.write(json.dumps({"kind": "notice", "run": run, "at": round(time.time(), 6), "text": text},
                              sort_keys=True) + "\n")

    def __call__(self, ev: Event) -> None:
        body = ev.as_dict()
        if "plan" in body and isinstance(body["plan"], str):
            plan = Plan.from_json(body.pop("plan"))
            body["operations"] = len(plan.operations)
            body["placements"] = plan.placements
        self.write(json.dumps(body, sort_keys=True, default=str) + "\n")


def retry_when(data: dict[str, Any], later: str = "retrying in {:g}s") -> str:
    """When a retried call is sent again: after ``retry_in`` seconds; else it failed while the run was
    stopping, which sends nothing more: by the run's resume (``on_resume``), or never (an abort)."""
    if "retry_in" in data:
        return later.format(data["retry_in"])
    return "sent again when the run is resumed" if data.get("on_resume") else "not sent again: the run was stopping"


def wait_text(data: dict[str, Any]) -> str:
    """What a ``waiting`` event waits for, in words."""
    if "event" in data:
        return f"event '{data['event']}'"
    observe = data.get("observe") or {}
    what = f"state {observe['state']}" if "state" in observe else f"{observe.get('output')} = {observe.get('equals')!r}"
    return f"{what} (observed every {data.get('every', 0):g}s)"


def guard_text(data: dict[str, Any]) -> str:
    """A `guard-denied` event in words: which guard, why, and what happens now."""
    changes = ("exclusive", "max_instances", "min_instances")
    again = " or when an operation ends" if data.get("guard_kind") in changes else ""
    then = {"wait": f"waiting, checked again in {data.get('retry_after') or 0:g}s{again}",
            "replan": "re-planning", "fail": "the operation fails"}.get(data.get("on_deny", ""), "")
    verb = "held by" if data.get("on_deny") == "wait" else "denied by"
    return f"{verb} guard {data.get('guard')}: {data.get('reason')}" + (f"; {then}" if then else "")


def summary_line(status: str, summary: dict[str, Any]) -> str:
    counts = (f"{summary.get('created', 0)} created, {summary.get('changed', 0)} changed, "
              f"{summary.get('deleted', 0)} deleted")
    replans = summary.get("replans", 0)
    tail = f"; {replans} re-plan" + ("s" if replans != 1 else "") if replans else ""
    unfinished = summary.get("unfinished", 0)
    left = f"; {unfinished} left unfinished" if unfinished else ""
    found = summary.get("found", 0)
    left += f"; {found} found there already" if found else ""
    head = {"complete": "Apply complete", "fallout": "Apply fell out", "interrupted": "Apply interrupted",
            "aborted": "Apply aborted", "rolled_back": "Apply rolled back", "failed": "Apply failed"}.get(
        status, f"Apply {status}")
    return f"{head}: {counts}{left}{tail}."


#: The most of one output's value a progress line shows (the journal and `ordo show --json` keep it whole).
SHOWN_VALUE = 80


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= SHOWN_VALUE else f"{text[:SHOWN_VALUE]}... ({len(text):,} characters)"
