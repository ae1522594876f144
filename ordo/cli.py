"""``ordo``: parse arguments, call the core, render the result.

Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error,
2 changes present (--detailed-exitcode only), 3 no plan exists (for apply:
the run fell out), 4 solver timeout, 130 interrupted (the run can be resumed).
`ordo test` follows pytest instead: 0 passed, 1 failed, 2 interrupted, 4 usage
error, 5 no tests collected.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import json
import math
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from domain.errors import DiagnosticsError, OrdoError, clipped, first_of
from domain.gcpause import paused_gc
from domain.limits import LEAST_MEMORY_MB, LEAST_OP_SECONDS, MOST_AT_ONCE, MOST_MEMORY_MB, MOST_REPLANS, MOST_SECONDS
from executor.core.options import ON_FAILURE
from ordo.safe import shown, shown_lines, terminal_safe

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_NO_PLAN, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

project_option = click.option(
    "-C", "--project", "project", default=".", show_default=True,
    type=click.Path(file_okay=True, dir_okay=True, path_type=Path),
    help="Project folder (with ordo.yaml) or the project file itself.")
inventory_option = click.option(
    "--inventory", type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory file to plan from, instead of the project's.")
request_argument = click.argument("request", required=False, type=click.Path(dir_okay=False, path_type=Path))
#: Operations at once a run may be given (settings.concurrency's bound, the service's too).
AT_ONCE = click.IntRange(min=1, max=MOST_AT_ONCE)
memory_option = click.option(
    "--memory-limit", type=click.IntRange(min=LEAST_MEMORY_MB, max=MOST_MEMORY_MB), metavar="MB",
    help="Memory grounding and solving may take (default settings.memory_limit_mb, else 4096 or half the memory).")


class JournalParam(click.ParamType):
    """A journal file, or a PostgreSQL database's URL (kept as text)."""

    name = "path|url"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        from executor.store import JournalError, is_url, location

        if not isinstance(value, Path):
            try:
                location(str(value))   # a URL that does not parse, or of a scheme other than PostgreSQL's
            except JournalError as exc:
                self.fail(str(exc), param, ctx)
        if isinstance(value, Path) or not is_url(value):
            return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)
        return str(value)


class FiniteRange(click.FloatRange):
    """click's FloatRange without NaN (it passes the range's checks: ``--fail-under nan`` was never
    enforced) or infinity (``--timeout inf`` ended in an OverflowError)."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class QueueName(click.ParamType):
    """A Temporal task queue's name: 1-200 printable characters. Temporal refuses a longer one only
    when it is used (a 3,000-character --task-queue ended apply in "this is a bug in ordo", after the
    plan; a worker said "Serving" and served nothing); the controllers' queues add to it."""

    name = "queue"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not 0 < len(text) <= 200 or not text.isprintable():
            self.fail(f"a task queue's name is 1-200 printable characters (got {len(text):,} characters)", param, ctx)
        return text


#: The solver's time limit in seconds.
SOLVER_SECONDS = FiniteRange(min=0.1, max=MOST_SECONDS)
#: --timeout's help: what the limit bounds, and the probe that may follow it (planner/bounded.py).
TIMEOUT_HELP = ("Time limit in seconds for grounding and solving together (default settings.solve_timeout); when "
                "it strikes, up to 10 s more find the policy that grounds largest.")
TIMEOUT_HELP_EACH = TIMEOUT_HELP.replace("for grounding and solving together", "for each plan's grounding and solving")

#: A run's number: from 1 up to the largest the journal's databases store (a 64-bit integer).
RUN_ID = click.IntRange(min=1, max=2**63 - 1)


class ResourceName(click.ParamType):
    """A resource's name, as the models spell one."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from domain.formats import is_name

        if not is_name(value):
            self.fail(f"{shown(str(value))} is not a resource name (letters, digits and _.:-, at most 200 "
                      "characters, starting with a letter or digit)", param, ctx)
        return value


journal_option = click.option(
    "--journal", type=JournalParam(), envvar="ORDO_JOURNAL",
    help="Journal: an SQLite file (default: .ordo/journal.db in the project folder), or a PostgreSQL "
         "database shared by several ordo processes, postgresql://user@host:port/db (the password from "
         "PGPASSWORD or ~/.pgpass); env ORDO_JOURNAL.")


def _write(path: Path, text: str) -> None:
    """A file ordo was asked to write (--out, --out-dir): a path it cannot write is the user's error.
    A regular file of this user's (or none yet) is written whole into a new file beside it, then put
    in its place, so that a full disk, Ctrl-C or a kill while it is written leaves the file that was
    there (a plan saved earlier) as it was, never cut short (a power cut may: it is not synced).
    Through a symbolic link, the file it names is the one replaced, with its permissions. Anything
    else is written to as it is: a pipe or a device (/dev/stdout, whatever it is), another user's
    file or one with other names (hard links), whose owner and links a new file would not keep, and
    a file in a folder where no new file can be made."""
    try:
        try:
            found = os.stat(path)   # (through links: /dev/stdout is the pipe, not its /proc name)
        except FileNotFoundError:
            found = None
        target = Path(os.path.realpath(path))
        in_place = found is not None and (not stat.S_ISREG(found.st_mode) or found.st_nlink != 1
                                          or found.st_uid != os.geteuid() or _special(target))
        if not in_place:
            part = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.ordo-part")
            try:   # the umask applies, as to any new file; a name taken (left by a kill) is never reused
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except PermissionError:
                if found is None:
                    raise
                in_place = True
        if in_place:
            with Path(path).open("w", encoding="utf-8") as out:
                out.write(text)
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                if found is not None:
                    os.fchmod(out.fileno(), stat.S_IMODE(found.st_mode))
                out.write(text)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OrdoError(f"cannot write {terminal_safe(path)}: {exc.strerror or exc}") from None


def _special(path: Path) -> bool:
    """Whether ``path`` (real) is one of the system's special names, written to as it is: /proc, and
    /dev but for /dev/shm, a file system of files in memory (a plan there was written in place, left
    cut short by a kill as on no other file system)."""
    return path.is_relative_to("/proc") or (path.is_relative_to("/dev") and not path.is_relative_to("/dev/shm"))


def _exit_without_plan(status: str) -> NoReturn:
    """The exit of a command that found no plan: 4 when the time limit struck first, else 3."""
    sys.exit(EXIT_TIMEOUT if status == "timeout" else EXIT_NO_PLAN)


def _save_plan(path: Path, plan, settings) -> None:
    """``--out``: the plan as JSON, and a warning when it is larger than ordo reads back."""
    from planner.plan import MB

    text = plan.to_json()
    _write(path, text)
    if len(text) > settings.max_plan_bytes:   # (ASCII: characters are bytes)
        _console(stderr=True).print(
            f"[yellow]Warning:[/] the plan is {len(text) / MB:,.1f} MB, more than settings.max_plan_mb "
            f"({settings.max_plan_mb:g} MB): ordo apply, ordo explain, --compare and --baseline refuse to read "
            f"it back until that is raised in ordo.yaml", highlight=False)


def _note_unfinished(project: Path, journal: Path | str | None) -> None:
    """A note (on stderr) of the runs that can still be resumed: the state a plan starts from may lack
    what a crashed one did last, and ordo apply refuses until they are resumed, aborted or superseded."""
    from executor.journal import resume_or_abort
    from executor.runs import unfinished_runs

    runs = unfinished_runs(project, journal)
    if runs:
        crashed = " (what a crashed run did last may not be in the state yet)" if any(
            r.effective_status == "crashed" for r in runs) else ""
        first = runs[0]
        named = first_of([f"run {r.id} is {r.effective_status}" for r in runs], 3)
        what = resume_or_abort(first.id)
        if first.options.get("engine") == "temporal" and first.effective_status == "crashed":
            # (asking Temporal here would cost every plan a call): resume refuses while its workflow runs
            what = (f"if its Temporal workflow still runs, `ordo abort {first.id}` stops it; if not, "
                    f"`ordo resume {first.id}` carries it on")
        _console(stderr=True).print(
            f"[yellow]Note:[/] {shown(named)}{crashed}: {what}; ordo apply refuses until then "
            "(or `--supersede`).", highlight=False)


def _plan_limit(project: Path, *, required: bool = True) -> int:
    """The largest plan file to read, in bytes: the project's settings.max_plan_mb; the default
    where there is no project file, unless ``required``. A project file that does not load is
    refused either way."""
    from domain.project import project_folder, read_project_file
    from planner.plan import MAX_PLAN_BYTES

    if not required and not project_folder(project)[1].exists():
        return MAX_PLAN_BYTES
    return read_project_file(project)[1].settings.max_plan_bytes


def _print_scope(scope) -> None:
    """After a timeout, on stderr: what the solver was given (ordo.render.scope_line), where that tells something."""
    from ordo import render

    if scope is not None and (line := render.scope_line(scope)):
        _console(stderr=True).print(line, highlight=False, markup=False)


def _console(stderr: bool = False) -> Console:
    return _Console(stderr=stderr, highlight=False, soft_wrap=True)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Its reader gone (a closed pipe: ``| head``): the rest of its output goes nowhere, and
        BrokenPipeError is raised. rich's own raised SystemExit from the thread that printed: a run's
        view ended the run, left crashed without a word (an operator's sweep)."""
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ordo")
def cli() -> None:
    """ordo: plans computed from models and policies, then carried out."""


#: Warnings past which `ordo check` lists its errors again at the end, where they are seen.
ERRORS_REPEATED_PAST = 20


@cli.command()
@request_argument
@project_option
@inventory_option
@click.option("--policy", "extra_policies", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Add a policy file, as ordo plan --policy adds it (repeatable).")
def check(request: Path | None, project: Path, inventory: Path | None, extra_policies: tuple[Path, ...]) -> None:
    """Validate models and policies; report every problem at once."""
    from executor.controllers import controller_problems
    from ordo import render
    from planner.check import check as run_check

    found = run_check(project, request, inventory, controller_problems=controller_problems,
                      extra_policies=list(extra_policies))
    errors = [d for d in found if d.severity == "error"]
    warnings = sum(d.severity == "warning" for d in found)
    render.diagnostics(_console(stderr=True), found)
    if errors:
        if warnings > ERRORS_REPEATED_PAST:   # (one error among thousands of warnings: lost)
            _console(stderr=True).print(f"\n[red]The {len(errors)} error(s) again[/], without the warnings:")
            render.diagnostics(_console(stderr=True), errors)
        _console(stderr=True).print(f"[red]{len(errors)} error(s)[/], {warnings} warning(s).")
        sys.exit(EXIT_ERROR)
    if warnings:
        _console().print(f"[green]Success![/] The project is valid, with {warnings} "
                         f"warning{'s' if warnings != 1 else ''}.")
        return
    _console().print("[green]Success![/] The project is valid.")


def _unappliable(plan: Any, out: Path, project: Path) -> None:
    """Warn where `ordo apply` of the plan just saved would refuse the files it names (a request given
    through a symlink to outside the project folder: it names the file the link leads to)."""
    from executor.runs import saved_plan_files

    try:
        saved_plan_files(plan, out, project, None)
    except DiagnosticsError as exc:
        _console(stderr=True).print(f"[yellow]Warning:[/] `ordo apply {shown(out)}` will refuse this plan: "
                                    f"{shown(exc.diagnostics[0].summary)}; apply the request itself instead",
                                    highlight=False)


@cli.command()
@request_argument
@project_option
@inventory_option
@click.option("--policy", "extra_policies", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Add a policy file for this run (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan as JSON to this file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
              show_default=True, help="How to print the plan.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are (3: no plan, 1: error); with --compare, "
                   "changes from the saved plan.")
@click.option("--timeout", type=SOLVER_SECONDS, help=TIMEOUT_HELP)
@memory_option
@click.option("--concurrency", type=AT_ONCE, help="Operations at once (default from the project).")
@click.option("--compare", type=click.Path(dir_okay=False, path_type=Path), metavar="PLAN.json",
              help="Print the difference from this saved plan to the new one instead of the plan "
                   "(with --format json: the difference as JSON).")
@journal_option
def plan(request: Path | None, project: Path, inventory: Path | None, extra_policies: tuple[Path, ...],
         out: Path | None, fmt: str, detailed_exitcode: bool, timeout: float | None, memory_limit: int | None,
         concurrency: int | None, compare: Path | None, journal: Path | str | None) -> None:
    """Compute the plan that takes the inventory to the request.

    What earlier `ordo apply` runs recorded in the journal counts as observed,
    on top of the inventory file."""
    with paused_gc():   # importing the planner makes many lasting objects and no garbage (domain/gcpause.py)
        from executor.runs import load_with_journal
        from ordo import render
        from planner.core import make_plan

    if compare is not None and fmt not in ("text", "json"):
        raise click.UsageError("--compare prints a difference: use --format text or json")
    if out is not None and str(out) == "-":   # (it wrote a file named '-')
        raise click.BadParameter("'-' is not a file here: `--format json` prints the plan as JSON",
                                 param_hint="'--out'")
    saved = None
    if compare is not None:
        from planner.whatif import read_plan

        compare = _located(compare, project)
        saved = read_plan(compare, _plan_limit(project))
    loaded = load_with_journal(project, request, inventory, list(extra_policies), journal)
    outcome = make_plan(loaded, timeout=timeout, concurrency=concurrency, memory_mb=memory_limit)
    console = _console()
    render.warnings(_console(stderr=True), outcome.warnings)
    _note_unfinished(project, journal)
    if saved is not None:
        diff = _print_diff(saved, outcome, fmt, f"Saved plan ({compare})", "New plan", out=out,
                           settings=loaded.settings)
        if detailed_exitcode and not diff.empty:   # what is printed: the difference, drift from the saved plan
            sys.exit(EXIT_CHANGES)
        return
    if outcome.plan is None:
        if fmt == "json":
            body = {"status": outcome.status,
                    "explanation": outcome.explanation.to_dict() if outcome.explanation else None}
            click.echo(json.dumps(body, indent=2, sort_keys=True))
        elif outcome.status == "timeout":
            limit = timeout or loaded.settings.solve_timeout
            why = (f" (grounding the model's parts alone would take about {outcome.needs:.1f}s at the pace so "
                   "far: it stopped there)" if outcome.needs else "")
            _console(stderr=True).print(
                f"[red]Timeout:[/] the solver found no plan within {limit:g}s{why}; raise --timeout or "
                "settings.solve_timeout.", highlight=False)
            _print_scope(outcome.scope)
        elif outcome.explanation is not None:
            render.explanation(_console(stderr=True), outcome.explanation)
        _exit_without_plan(outcome.status)
    result = outcome.plan
    if out is not None:
        _save_plan(out, result, loaded.settings)
        _unappliable(result, out, project)
    if fmt == "json":
        click.echo(result.to_json(), nl=False)
    elif fmt == "dot":
        from planner.export import to_dot

        click.echo(to_dot(result), nl=False)
    elif fmt == "mermaid":
        from planner.export import mermaid_too_large, to_mermaid

        text = to_mermaid(result)
        click.echo(text, nl=False)
        if (large := mermaid_too_large(result, text)) is not None:
            _console(stderr=True).print(f"[yellow]Warning:[/] the diagram has {large} unless the page that draws "
                                        "it raises that limit; `--format dot` draws a plan of any size.",
                                        highlight=False)
    else:
        render.plan_text(console, result, outcome.scope)
        if out is not None:
            console.print(f"\nSaved the plan to: {shown(out)}")
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES)


def _print_diff(base, outcome, fmt: str, base_label: str, other_label: str, *, out: Path | None = None,
                settings=None, extra: dict | None = None):
    """The difference from ``base`` (a Plan or an Outcome) to ``outcome``, which it returns;
    exits 3 (4 on timeout) when ``outcome`` has no plan, and 4 when ``base`` is an Outcome that timed out."""
    from ordo import render
    from planner.diff import diff_plans

    diff = diff_plans(base, outcome)
    if outcome.plan is not None and out is not None:
        _save_plan(out, outcome.plan, settings)
    console = _console()
    if fmt == "json":
        click.echo(json.dumps({**diff.to_dict(), **(extra or {})}, indent=2, sort_keys=True))
    else:
        render.plan_diff(console, diff, base_label, other_label)
        if outcome.plan is None and outcome.explanation is not None:
            console.print()
            render.explanation(console, outcome.explanation)
        if outcome.plan is not None and out is not None:
            console.print(f"\nSaved the plan to: {shown(out)}")
    if outcome.plan is None:
        _exit_without_plan(outcome.status)
    if getattr(base, "status", None) == "timeout":   # a baseline with no plan in time: nothing was compared
        sys.exit(EXIT_TIMEOUT)
    return diff


@cli.command()
@project_option
@click.option("--target-down", "targets_down", multiple=True, metavar="TARGET",
              help="The target takes nothing new, as after it refused in a run (repeatable).")
@click.option("--capacity", "capacities", multiple=True, metavar="TARGET:KEY=N",
              help="The target's capacity for KEY is N (repeatable).")
@click.option("--without-policy", "without_policies", multiple=True, metavar="NAME",
              help="Switch off a stock or project policy by name (repeatable).")
@click.option("--with-policy", "with_policies", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path), help="Add a policy file (repeatable).")
@click.option("--request", "scenario_request", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Another request for the scenario.")
@click.option("--inventory", "scenario_inventory", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Another inventory for the scenario.")
@click.option("--baseline", metavar="PLAN.json", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare against this saved plan instead of planning the project as it is.")
@click.option("--base-request", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The request of the baseline (and of the scenario, unless --request); default the project's.")
@click.option("--base-inventory", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The inventory of the baseline (and of the scenario, unless --inventory).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How to print the difference.")
@click.option("--timeout", type=SOLVER_SECONDS, help=TIMEOUT_HELP_EACH)
@click.option("--concurrency", type=AT_ONCE, help="Operations at once (default from the project).")
@journal_option
def whatif(project: Path, targets_down: tuple[str, ...], capacities: tuple[str, ...],
           without_policies: tuple[str, ...], with_policies: tuple[Path, ...], scenario_request: Path | None,
           scenario_inventory: Path | None, baseline: Path | None, base_request: Path | None,
           base_inventory: Path | None, fmt: str, timeout: float | None, concurrency: int | None,
           journal: Path | str | None) -> None:
    """Plan a scenario against the baseline and print the difference.

    \b
    ordo whatif --target-down region-two          a region or host takes nothing new
    ordo whatif --capacity region-one:vcpu=20     another capacity
    ordo whatif --without-policy anti-affinity    a policy switched off (--with-policy FILE: added)
    ordo whatif --request requests/delete.yaml --inventory inventory-deployed.yaml

    The baseline is the project as it is (with the journal's state), or a
    saved plan (--baseline plan.json). Exit 0 when the scenario has a plan,
    3 when it has none (with the explanation), 4 on timeout (the baseline's
    or the scenario's), 1 on bad input."""
    from executor.runs import load_saved_plan_inputs, load_with_journal
    from planner.core import make_plan
    from planner.verify import verify_explained_plan
    from planner.whatif import Scenario, read_plan

    scenario = Scenario.from_options(targets_down, capacities, without_policies, with_policies,
                                     scenario_request, scenario_inventory)
    if baseline is not None and (base_request is not None or base_inventory is not None):
        raise click.UsageError("--baseline is the saved plan to compare against: it takes no "
                               "--base-request or --base-inventory")
    if scenario.empty and baseline is None:
        raise click.UsageError("name a change: --target-down, --capacity, --without-policy, --with-policy, "
                               "--request or --inventory (or compare with --baseline plan.json)")
    if baseline is not None:
        baseline = _located(baseline, project)
        base = read_plan(baseline, _plan_limit(project))
        # the request and inventory it was made from (one it may not read: the project's) are the scenario's too
        now, base_request, base_inventory = load_saved_plan_inputs(base, baseline, project, None, [], journal,
                                                                   strict=False)
        # made from the inputs as they are now: refused if edited, as ordo explain and ordo apply refuse it
        verify_explained_plan(now, base, str(baseline), timeout=timeout)
    else:
        with _limit_of("the baseline"):
            base = make_plan(load_with_journal(project, base_request, base_inventory, [], journal),
                             timeout=timeout, concurrency=concurrency)
    loaded = load_with_journal(project, scenario.request or base_request, scenario.inventory or base_inventory,
                               list(scenario.with_policies), journal)
    # the scenario keeps the baseline's placements where that costs nothing: what differs is what it calls for
    placed = base.placements if baseline is not None else base.plan.placements if base.plan is not None else None
    with _limit_of("the scenario"):
        outcome = make_plan(scenario.apply(loaded), timeout=timeout, concurrency=concurrency, keep=placed)
    # the policies' warnings, as ordo plan prints them: the baseline's (when planned here), then the scenario's
    # own (a policy it adds); each once
    from ordo import render

    said = [*(base.warnings if baseline is None else []), *outcome.warnings]
    render.warnings(_console(stderr=True), list({str(item): item for item in said}.values()))
    described = scenario.describe()
    extra: dict = {"scenario": described}
    if baseline is not None:
        # made from the inputs the project has now? Otherwise the difference is partly theirs, not the scenario's
        extra["baseline_inputs_changed"] = changed = _made_from_other_inputs(base, now)
        if changed and fmt == "text":
            _console().print(f"[yellow]Note:[/] {shown(baseline)} was made from other inputs than the project's "
                             "now: the difference below is also theirs, not only the scenario's.\n", highlight=False)
    _print_diff(base, outcome, fmt, f"Baseline ({baseline})" if baseline is not None else "Baseline",
                f"Scenario ({'; '.join(described)})" if described else "Scenario", extra=extra)


@contextlib.contextmanager
def _limit_of(side: str) -> Iterator[None]:
    """A limit that strikes while ``side`` ("the baseline", "the scenario") is planned says so
    (--timeout bounds each)."""
    from planner.bounded import PlanningLimitError

    try:
        yield
    except PlanningLimitError as exc:
        raise PlanningLimitError(exc.kind, f"planning {side}: {exc}", exc.file) from None


def _made_from_other_inputs(plan, now) -> bool:
    """Whether a saved plan's digest is not that of its inputs as they are now (``now``: the project
    loaded with the request and inventory it names)."""
    from planner.core import digest, load_policies

    return digest(now, load_policies(now, warnings=False))[0] != plan.digest


apply_options = [
    click.option("--simulation", type=click.Path(dir_okay=False, path_type=Path), envvar="ORDO_SIMULATION",
                 help="Scenario for simulated controllers: latencies and faults (YAML; env ORDO_SIMULATION)."),
    click.option("--on-failure", type=click.Choice(ON_FAILURE), default=None,
                 help="When an operation fails for good: plan again toward the goal (default), plan back "
                      "to the state before the run, or stop (resume later)."),
    click.option("--max-replans", type=click.IntRange(min=0, max=MOST_REPLANS),
                 help="Re-plans allowed (default settings.max_replans)."),
    click.option("--json", "as_json", is_flag=True,
                 help="Write the run's events as JSON lines, no live display (and, while a run on Temporal "
                      "journals nothing, 'notice' lines of what it waits for, with no seq)."),
    click.option("--op-timeout", type=FiniteRange(min=LEAST_OP_SECONDS, max=MOST_SECONDS),
                 help="Seconds an operation may take when the catalog sets no timeout (default 600)."),
]


temporal_option = click.option("--temporal", metavar="HOST:PORT", envvar="ORDO_TEMPORAL",
                               help="The Temporal frontend (env ORDO_TEMPORAL).")
task_queue_option = click.option("--task-queue", type=QueueName(), default="ordo", show_default=True,
                                 help="With --engine temporal: the main queue.")
engine_options = [
    click.option("--engine", type=click.Choice(["local", "temporal"]), default="local", show_default=True,
                 help="Carry the run out in this process, or as a Temporal workflow on `ordo worker`s."),
    temporal_option,
    task_queue_option,
    click.option("--continue-every", type=click.IntRange(min=1), envvar="ORDO_TEMPORAL_CONTINUE_EVERY",
                 help="With --engine temporal: operations after which the workflow continues as new (default 1000)."),
]


def _with(options: list) -> callable:
    def wrap(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return wrap


@cli.command()
@click.argument("target", required=False, type=click.Path(dir_okay=False, path_type=Path))
@project_option
@inventory_option
@click.option("--policy", "extra_policies", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Add a policy file for this run (repeatable).")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=SOLVER_SECONDS, help=TIMEOUT_HELP)
@memory_option
@click.option("--concurrency", type=AT_ONCE, help="Operations at once (default from the plan).")
@click.option("--supersede", is_flag=True,
              help="Start anew although an earlier run can be resumed; that run ends for good (superseded).")
@journal_option
@_with(apply_options)
@_with(engine_options)
def apply(target: Path | None, project: Path, inventory: Path | None, extra_policies: tuple[Path, ...],
          auto_approve: bool, timeout: float | None, memory_limit: int | None, concurrency: int | None,
          supersede: bool, journal: Path | str | None,
          simulation: Path | None, on_failure: str | None, max_replans: int | None, as_json: bool,
          op_timeout: float | None, engine: str, temporal: str | None, task_queue: str,
          continue_every: int | None) -> None:
    """Plan, confirm, and carry the plan out against the controllers.

    TARGET is a request file, or a plan saved with `ordo plan --out`, which is
    refused if any input changed since it was made."""
    from executor import runs as library
    from ordo import render, runs
    from planner.plan import Plan

    console = _console(stderr=as_json)
    engine_to = _engine(engine, temporal, task_queue, continue_every)
    if engine_to is not None:
        from executor.temporal import load_client

        load_client().reachable(engine_to.address)
    if target is not None and target.suffix == ".json":
        target = _located(target, project)
    saved = Plan.read(target, _plan_limit(project)) if target is not None and target.suffix == ".json" else None
    library.check_startable(project, journal, supersede)
    loaded = library.load_saved_plan_inputs(saved, target, project, inventory, list(extra_policies), journal)[0] \
        if saved is not None else library.load_with_journal(project, target, inventory, list(extra_policies), journal)
    options = library.apply_options(simulation, on_failure, max_replans, concurrency, op_timeout)  # a bad
    # simulation file is refused before anything is planned or shown
    scope = None   # what the plan was solved on: said of a plan made here, not of a saved one
    if saved is not None:
        chosen = library.check_saved_plan(loaded, saved, str(target), timeout=timeout)
        most = loaded.settings.concurrency
        if concurrency is None and chosen.concurrency > most:
            # (the plan's own, as `ordo plan --concurrency` made it, or as someone wrote it in: a plan from
            # elsewhere ran 10,000 at once where the project says 10, and nothing said so, a docs sweep's)
            _console(stderr=True).print(
                f"[yellow]Warning:[/] the saved plan runs at most {chosen.concurrency} operations at once, more "
                f"than the project's settings.concurrency ({most}): it was made with --concurrency, or edited; "
                f"--concurrency {most} keeps the run to the project's.", highlight=False)
    else:
        from planner.core import make_plan

        outcome = make_plan(loaded, timeout=timeout, concurrency=concurrency, memory_mb=memory_limit)
        render.warnings(_console(stderr=True), outcome.warnings)
        if outcome.plan is None:
            if outcome.status == "timeout":
                _console(stderr=True).print("[red]Timeout:[/] the solver found no plan in time; raise --timeout.")
                _print_scope(outcome.scope)
                sys.exit(EXIT_TIMEOUT)
            render.explanation(_console(stderr=True), outcome.explanation)
            sys.exit(EXIT_NO_PLAN)
        chosen, scope = outcome.plan, outcome.scope
    if not chosen.has_changes:
        console.print("[green]No changes.[/] The inventory already matches the request.")
        return
    if not as_json or not auto_approve:   # (with --json, on stderr: whoever confirms sees what)
        render.plan_text(console, chosen, scope)
        if concurrency is not None and concurrency != chosen.concurrency:
            # (a saved plan keeps its waves: the run keeps to --concurrency all the same, and the confirmation
            # showed the plan's "at most 10 at once" alone, an operator's sweep)
            console.print(f"The run keeps to at most {concurrency} operations at once (--concurrency); the waves and "
                          f"the estimate above are the saved plan's, for {chosen.concurrency}.", highlight=False)
    used = sorted({op.controller for op in chosen.operations})
    implicit = [c for c in used if "kind" not in loaded.model.controllers[c].model_fields_set]
    if implicit:
        _console(stderr=True).print(
            f"[yellow]Warning:[/] controllers {', '.join(implicit)} name no kind, so they are simulated: "
            "this run changes nothing outside ordo's simulated world (set kind: http, command ... in the catalog).",
            highlight=False)
    if not auto_approve:
        if not sys.stdin.isatty():
            raise click.UsageError("not a terminal, so there is no one to confirm: pass --auto-approve")
        # (with --json, stdout carries only the events)
        if not click.confirm("\nDo you want to perform these operations?", default=False, err=as_json):
            console.print("Apply cancelled.")
            sys.exit(EXIT_ERROR)
    result = runs.execute(loaded, chosen, options, journal, as_json=as_json, console=console, supersede=supersede,
                          temporal=engine_to)
    sys.exit(_finish(console, result, as_json))


def _located(path: Path, project: Path) -> Path:
    """A saved plan's path found as every command-line path is: relative to the current folder, or
    else to the project's (``-C``)."""
    from domain.project import _locate, project_folder

    try:
        return _locate(path, project_folder(project)[0]) or path
    except OrdoError:   # (no project there: what reads the plan says what is missing)
        return path


def _engine(engine: str, address: str | None, queue: str, continue_every: int | None):
    """None for the embedded engine, else where the Temporal runs go."""
    if engine == "local":
        return None
    if not address:
        raise click.UsageError("--engine temporal needs --temporal HOST:PORT (or ORDO_TEMPORAL)")
    from executor.temporal import DEFAULT_CONTINUE_EVERY, Temporal

    return Temporal(address, queue, continue_every or DEFAULT_CONTINUE_EVERY)


@cli.command(short_help="Plan one scenario per target down and per policy off, side by side.")
@project_option
@click.option("--request", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The request to plan (default the project's).")
@click.option("--inventory", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The inventory to plan from, instead of the project's.")
@journal_option
@click.option("--timeout", type=SOLVER_SECONDS, help=TIMEOUT_HELP_EACH)
@click.option("--concurrency", type=AT_ONCE, help="Operations at once (default from the project).")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Plans at once in this machine's pool (default: one per CPU; at most two per CPU).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--engine", type=click.Choice(["local", "temporal"]), default="local", show_default=True,
              help="Plan in a local process pool, or as planning activities across `ordo worker`s.")
@temporal_option
@task_queue_option
def sweep(project: Path, request: Path | None, inventory: Path | None, journal: Path | str | None,
          timeout: float | None, concurrency: int | None, jobs: int | None, fmt: str, engine: str,
          temporal: str | None, task_queue: str) -> None:
    """Plan the baseline and one what-if scenario per target down and per policy
    switched off (as `ordo whatif --target-down T` / `--without-policy P`), side by
    side, and print what each changes: operations, resources placed elsewhere.
    Exit 0 when the baseline has a plan, 3 when it has none (the scenarios are
    still planned: which policy off lets one exist?), 4 when the time limit
    struck before it had one, 1 when it fails."""
    from executor import sweeps
    from executor.runs import load_with_journal
    from planner.core import load_policies
    from planner.whatif import sweep as scenarios

    where = _engine(engine, temporal, task_queue, None)
    loaded = load_with_journal(project, request, inventory, [], journal)
    # what ordo check refuses is not swept: a scenario that leaves the offending policy out would plan
    load_policies(loaded, warnings=False)
    batch = sweeps.jobs(project, request, inventory, journal, scenarios(loaded), timeout, concurrency)
    if where is None:
        rows = sweeps.run_local(batch, jobs)
    else:
        from executor.temporal import load_client

        rows = load_client().sweep(where, batch)
    base, compared = rows[0], sweeps.compare(rows)
    # nothing to compare with: exit 1, as whatif; the project as it is has no plan: 3, as ordo plan; no
    # plan within the time limit: 4, as ordo plan
    code = {"error": EXIT_ERROR, "no_plan": EXIT_NO_PLAN, "timeout": EXIT_TIMEOUT}.get(base["status"], EXIT_OK)
    if fmt == "json":
        click.echo(json.dumps({"baseline": base, "scenarios": compared}, indent=2, sort_keys=True))
        sys.exit(code)
    console = _console()
    # an error once, on stderr, as every command says one; a scenario's that is the baseline's is not said
    # again (it was, on each line, after "Baseline: error, - operations": an authoring sweep's)
    said = base.get("error")
    if said:
        _console(stderr=True).print(("" if "error:" in said else "error: ") + shown_lines(said), highlight=False)
    planned = f", {base['operations']} operations" if "operations" in base else ""
    console.print(f"Baseline: {base['status'].replace('_', ' ')}{planned}" + (" (its error on stderr)" if said else ""),
                  highlight=False)   # (no_plan in words; JSON keeps the word)
    for row in compared:
        if "moved" not in row:   # no plan (an error), or none to compare with: the baseline has none
            planned = f", {row['operations']} operations" if "operations" in row else ""
            error = (" (the baseline's error)" if row.get("error") == said else f" {shown_lines(row['error'])}") \
                if row.get("error") else ""
            console.print(f"  {shown(row['scenario'])}: {row['status'].replace('_', ' ')}{planned}{error}",
                          highlight=False)
            continue
        moved = ", ".join(row["moved"][:5]) + (" ..." if len(row["moved"]) > 5 else "")
        console.print(f"  {shown(row['scenario'])}: {row['status']}, {row['operations_delta']:+d} operations, "
                      f"{len(row['moved'])} placed elsewhere" + (f" ({shown(moved)})" if moved else ""),
                      highlight=False)
    sys.exit(code)


@cli.command(short_help="Run Temporal workers: runs' workflows, planning and controller calls.")
@temporal_option
@click.option("--task-queue", "queues", type=QueueName(), multiple=True, metavar="QUEUE",
              help="A task queue to serve (repeatable; default: the main queue, its planning queue "
                   "<main>.planning, and one per controller of the project's catalog, <main>-<controller>).")
@click.option("--main-queue", type=QueueName(), default="ordo", show_default=True,
              help="The main queue: workflows, re-planning, journal writes; the planning and controller queues "
                   "are named after it.")
@project_option
@journal_option
def worker(temporal: str | None, queues: tuple[str, ...], main_queue: str, project: Path,
           journal: Path | None) -> None:
    """Serve ordo's runs on Temporal until SIGTERM, Ctrl-C or SIGHUP. Run one next to the journal and the
    planner (the main queue and its planning queue), and one next to each controller (its queue);
    any number of each. A worker makes as many plans at once as fit its CPUs and memory."""
    from domain.procs import limit_malloc_arenas

    limit_malloc_arenas(2)   # (before anything starts a thread: as ordo serve)
    from executor.temporal import load_client

    if not temporal:
        raise click.UsageError("--temporal HOST:PORT is required (or ORDO_TEMPORAL)")
    chosen = list(queues)
    if not chosen:
        from domain.project import load_project

        chosen = load_client().worker_queues(main_queue, load_project(project).model.controllers)
    console = _console(stderr=True)
    _worker_log()
    planning = load_client().planning_queue(main_queue)
    if main_queue in chosen and planning not in chosen:
        console.print(f"Note: this worker does not serve {terminal_safe(planning)}, the queue of sweeps' scenarios: "
                      "`ordo sweep --engine temporal` is refused until one does.", highlight=False, markup=False)
    from domain.project import project_folder

    # (the project it serves: its runs only; a worker of controllers' queues started where there is no
    # project file serves any project's calls)
    root, project_file = project_folder(project)
    load_client().run_workers(
        temporal, chosen, main_queue, journal=journal, project=root if project_file.is_file() else None,
        on_ready=lambda: console.print(f"Serving {shown(', '.join(chosen))} on {shown(temporal)}.", highlight=False),
        on_stop=lambda: console.print("Stopping: polling no more; the activities under way have 5 s to finish "
                                      "(those cut short are retried on another worker).", highlight=False))
    console.print("Stopped.", highlight=False)


def _worker_log() -> None:
    """The Temporal SDK's records on stderr: an activity that failed as ordo expects (a controller's
    permanent error, a refusal, a busy journal: retried) in one line, anything else (a bug) in full."""
    import logging

    from temporalio.exceptions import ApplicationError

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            exc = record.exc_info[1] if record.exc_info else None
            if not isinstance(exc, ApplicationError | OrdoError):
                return super().format(record)
            info = getattr(record, "temporal_activity", None) or {}
            then = "" if getattr(exc, "non_retryable", False) else "; Temporal retries it"
            return (f"{info.get('activity_type', 'an activity')} (attempt {info.get('attempt', '?')}, "
                    f"{info.get('workflow_id', '?')}) failed: {terminal_safe(str(exc))}{then}")

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("temporalio")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def _finish(console: Console, result, as_json: bool) -> int:
    from ordo import progress, render

    line = progress.summary_line(result.status, result.summary)
    if not as_json:
        style = {"complete": "green", "rolled_back": "yellow"}.get(result.status, "red")
        console.print(f"\n[bold {style}]{line}[/]", highlight=False)
        if result.reason:
            console.print(f"  {render.terminal_safe(result.reason)}", highlight=False, markup=False)
        if result.explanation is not None:
            render.explanation(console, result.explanation)
        if result.status == "interrupted":   # stopped as asked: nothing to fix
            console.print(f"  `ordo resume {result.run}` carries it on; or `ordo abort {result.run}`.",
                          highlight=False, markup=False)
        elif result.status in ("fallout", "failed"):
            console.print(f"  Fix the cause, then `ordo resume {result.run}`; or `ordo abort {result.run}`.",
                          highlight=False, markup=False)
    return {"complete": EXIT_OK, "fallout": EXIT_NO_PLAN, "interrupted": EXIT_INTERRUPTED}.get(
        result.status, EXIT_ERROR)


@cli.command(short_help="Continue a run that crashed, was interrupted, or fell out.")
@click.argument("run_id", metavar="RUN", type=RUN_ID)
@project_option
@inventory_option
@journal_option
@_with(apply_options)
@click.option("--rollback", is_flag=True,
              help="Roll the run back instead (it fell out, failed or was interrupted): what it created is "
                   "removed, what it changed put back, within its resources; it ends rolled_back.")
def resume(run_id: int, project: Path, inventory: Path | None, journal: Path | str | None, simulation: Path | None,
           on_failure: str | None, max_replans: int | None, as_json: bool, op_timeout: float | None,
           rollback: bool) -> None:
    """Continue a run that crashed, was interrupted, or fell out (once its cause is fixed).

    Operations whose outcome is in doubt are observed at their controller
    before anything is sent again."""
    from ordo import runs

    console = _console(stderr=as_json)
    ctx = click.get_current_context()
    given = tuple(f"--{name.replace('_', '-')}" for name in ("inventory", "simulation", "on_failure", "max_replans",
                                                             "op_timeout")
                  if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE)
    result = runs.resume(project, inventory, journal, run_id, simulation, on_failure, max_replans, op_timeout,
                         as_json=as_json, console=console, rollback=rollback, given=given)
    code = _finish(console, result, as_json)
    sys.exit(EXIT_OK if rollback and result.status == "rolled_back" else code)


@cli.command(short_help="Stop a run; nothing is undone.")
@click.argument("run_id", metavar="RUN", type=RUN_ID)
@project_option
@journal_option
def abort(run_id: int, project: Path, journal: Path | str | None) -> None:
    """Stop a run: a running one finishes the operations in flight and stops;
    a crashed or fallen-out one is closed. Nothing is undone."""
    from executor.runs import abort as abort_run

    click.echo(abort_run(project, journal, run_id))


@cli.command(short_help="Deliver an outside event to a run's waiting operation.")
@click.argument("run_id", metavar="RUN", type=RUN_ID)
@click.argument("resource")
@click.argument("name")
@click.option("--data", "data", multiple=True, metavar="KEY=VALUE",
              help="A value the event carries (repeatable); the operation's declared outputs take theirs from it.")
@project_option
@journal_option
def event(run_id: int, resource: str, name: str, data: tuple[str, ...], project: Path,
          journal: Path | str | None) -> None:
    """Deliver event NAME for RESOURCE to run RUN: the operation on RESOURCE that waits for NAME
    (`wait: {event: NAME}` in the catalog) completes. A run that is going on takes it at once; one
    that crashed or was interrupted takes it when it is resumed. Refused (exit 1) when nothing waits
    for it, the run has ended or the wait's deadline has passed."""
    import getpass

    from executor.runs import deliver_event

    values: dict[str, str] = {}
    for number, item in enumerate(data, 1):
        key, sep, value = item.partition("=")
        if not sep or not key:   # (not shown: what was meant as KEY=VALUE may hold a secret, and be long)
            raise click.BadParameter(f"the {_ordinal(number)} one has {'no =' if not sep else 'no KEY before ='}: "
                                     "expected KEY=VALUE", param_hint="--data")
        if key in values:   # (the last was kept, silently)
            raise click.BadParameter(f"{clipped(repr(key), 80)} is given twice", param_hint="--data")
        values[key] = value
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    click.echo(deliver_event(project, journal, run_id, resource, name, values, f"cli:{user}"))


@cli.command()
@project_option
@journal_option
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def history(project: Path, journal: Path | str | None, as_json: bool) -> None:
    """List the runs recorded in the journal."""
    from ordo import runs

    runs.history(_console(), project, journal, as_json)
    if not as_json:   # (a crashed run's RESULT is empty: what to do with it, as state and plan say)
        _note_unfinished(project, journal)


@cli.command()
@click.argument("run_id", metavar="[RUN]", type=RUN_ID, required=False)
@project_option
@journal_option
@click.option("--json", "as_json", is_flag=True, help="Events as JSON lines.")
@click.option("--tail", type=click.IntRange(min=0, max=2**31), metavar="N", help="Only the last N events.")
@click.option("--resource", "resources", multiple=True, type=ResourceName(), metavar="NAME",
              help="Only the events of operations on this resource (repeatable).")
def show(run_id: int | None, project: Path, journal: Path | str | None, as_json: bool, tail: int | None,
         resources: tuple[str, ...]) -> None:
    """Show one run (the last if none is named) with its events."""
    from ordo import runs

    runs.show(_console(), project, journal, run_id, as_json, tail=tail, resources=tuple(sorted(set(resources))) or None)


@cli.command()
@click.argument("target", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("operation", required=False)
@project_option
@inventory_option
@click.option("--after", "after", metavar="OPERATION", help="With a plan: why OPERATION comes after this one.")
@click.option("--conflict", is_flag=True, help="No plan: a minimal set of policies and goals that conflict.")
@click.option("--policy", "extra_policies", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Add a policy file (repeatable), as for ordo plan.")
@click.option("--timeout", type=SOLVER_SECONDS, default=10.0, show_default=True,
              help="Seconds each search may take: the plan, then the goals to give up (or the conflict); "
                   "with plan.json RESOURCE, the whole explanation.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@journal_option
def explain(target: Path | None, operation: str | None, project: Path, inventory: Path | None, after: str | None,
            conflict: bool, extra_policies: tuple[Path, ...], timeout: float, as_json: bool,
            journal: Path | str | None) -> None:
    """Why no plan exists, or why a plan does what it does.

    \b
    ordo explain [REQUEST]                 which policies to drop or relax for a plan to exist
    ordo explain [REQUEST] --conflict      a minimal set of policies and goals that conflict
    ordo explain plan.json OPERATION       why OPERATION is in the plan, what it waits for
    ordo explain plan.json OP --after OP2  the chain of precedences that puts OP after OP2
    ordo explain plan.json RESOURCE        why the plan places RESOURCE where it does: what rules
                                           out each other target, what each would cost
    """
    from ordo import render

    console = _console()
    # a saved plan: named *.json (any case), or followed by what to explain in it
    if target is not None and (target.suffix.lower() == ".json" or operation is not None):
        from planner.plan import Plan

        target = _located(target, project)
        from planner.why import explain_operation

        if conflict:
            raise click.UsageError("--conflict explains why no plan exists for a request, not a saved plan: "
                                   "ordo explain [REQUEST] --conflict")
        if operation is None:
            Plan.read(target, _plan_limit(project, required=False))   # (a request in JSON: named as no plan)
            raise click.UsageError("name the OPERATION to explain (RESOURCE/OPERATION, e.g. vfw/create)")
        if after is not None and "/" not in operation:
            raise click.UsageError(f"--after orders operations: name one (RESOURCE/OPERATION, e.g. "
                                   f"{operation}/create), not the resource '{operation}'")
        saved = Plan.read(target, _plan_limit(project, required=False))
        if "/" not in operation and operation in saved.placements and after is None:
            from executor.runs import load_saved_plan_inputs
            from planner.verify import verify_explained_plan
            from planner.why import explain_placement

            loaded = load_saved_plan_inputs(saved, target, project, inventory, list(extra_policies), journal,
                                            strict=False)[0]
            verify_explained_plan(loaded, saved, str(target), timeout=timeout)
            placed = explain_placement(loaded, saved, operation, timeout=timeout)
            if as_json:
                click.echo(json.dumps(placed.to_dict(), indent=2, sort_keys=True))
            else:
                render.placement_why(console, placed)
            return
        if extra_policies:
            raise click.UsageError("--policy is for a request or a placement: an operation is explained from "
                                   "the saved plan as it was made")
        why = explain_operation(saved, operation, after, _project_rules(project, inventory))
        if as_json:
            click.echo(json.dumps(why.to_dict(), indent=2, sort_keys=True))
        else:
            render.operation_why(console, why)
        return
    if operation is not None:
        raise click.UsageError("an OPERATION is explained within a saved plan: ordo explain plan.json OPERATION")
    if after is not None:   # (it was taken, and nothing said of it)
        raise click.UsageError("--after orders the operations of a saved plan: ordo explain plan.json OPERATION "
                               "--after OPERATION")
    if target is not None and not target.suffix and not target.exists():   # `ordo explain vgmux`
        raise click.UsageError(f"'{target}' is no request file: a resource or an operation is explained within a "
                               f"saved plan: ordo plan --out plan.json, then ordo explain plan.json {target}")
    from executor.runs import load_with_journal
    from planner.core import load_policies, make_plan

    loaded = load_with_journal(project, target, inventory, list(extra_policies), journal)
    program = load_policies(loaded)
    # the policies' warnings, as plan and check print them (none were: a did-you-mean gone just when the
    # author looks for why there is no plan, an authoring sweep's)
    render.warnings(_console(stderr=True), program.warnings)
    if conflict:
        from planner.explain import project_conflict

        found = project_conflict(loaded, timeout=timeout)
        if found is None:
            # the plan made, as `ordo plan` makes it, before it is said to exist: what plan refuses of the
            # answer (weights past the solver's range) it refuses here too (it said "A plan exists" where
            # plan refused, an authoring sweep's)
            outcome = make_plan(loaded, timeout=timeout, program=program)
            if outcome.plan is None:   # (nothing conflicts, yet no plan: the time ran out, say; as plan exits)
                if as_json:   # (JSON callers had nothing to parse, a review's)
                    click.echo(json.dumps({"found": False, "plan_exists": False, "status": outcome.status},
                                          indent=2, sort_keys=True))
                else:
                    within = (f" within the time limit ({timeout or loaded.settings.solve_timeout:g} s)"
                              if outcome.status == "timeout" else "")
                    _console(stderr=True).print(f"Nothing conflicts, but no plan was found{within}: `ordo plan` "
                                                "says more.", highlight=False)
                _exit_without_plan(outcome.status)
            if as_json:   # (what a conflict found says, none found: a plan exists)
                click.echo(json.dumps({"found": False, "plan_exists": True}, indent=2, sort_keys=True))
            else:
                console.print("[green]A plan exists:[/] nothing conflicts. `ordo plan` shows it.")
            return
        if as_json:
            click.echo(json.dumps(found.to_dict(), indent=2, sort_keys=True))
        else:
            render.minimal_conflict(console, found, timeout)
        sys.exit(EXIT_NO_PLAN if found.found else EXIT_TIMEOUT)
    outcome = make_plan(loaded, timeout=timeout, program=program)
    said = set(program.warnings)
    render.warnings(_console(stderr=True), [w for w in outcome.warnings if w not in said])   # (the solver's)
    if outcome.plan is not None:
        if as_json:   # (as for no plan, with nothing to explain)
            click.echo(json.dumps({"status": outcome.status, "explanation": None, "goals_to_drop": None},
                                  indent=2, sort_keys=True))
        else:
            console.print("[green]A plan exists:[/] nothing to explain; `ordo plan` shows it, and "
                          "`ordo explain plan.json OPERATION` explains one of its operations.")
        return
    if not as_json and outcome.explanation is not None:
        render.explanation(console, outcome.explanation)   # shown while the goals are searched for
    elif not as_json and outcome.status == "timeout":
        _console(stderr=True).print(
            f"[red]Timeout:[/] within {timeout:g}s the solver neither found a plan nor showed that none "
            "exists; raise --timeout.", highlight=False)
    goals = None
    if outcome.status == "no_plan":
        from planner.bounded import goals_bounded, memory_for
        from planner.facts import model_facts

        facts = outcome.facts if outcome.facts is not None else model_facts(loaded.model)
        goals = goals_bounded(program, facts, loaded.model, timeout=timeout, memory_mb=memory_for(loaded))
    if as_json:
        click.echo(json.dumps({"status": outcome.status, "explanation": outcome.explanation.to_dict()
                               if outcome.explanation else None,
                               "goals_to_drop": None if goals is None else [
                                   {"resource": r, "state": st, "where": w} for r, st, w in goals]},
                              indent=2, sort_keys=True))
    elif outcome.explanation is not None:
        render.goals(console, "Or, keeping every policy, give up these requested goals:", goals or [])
        console.print("\n  `ordo explain --conflict` finds a minimal set of policies and goals that conflict.",
                      highlight=False)
    _exit_without_plan(outcome.status)


def _ordinal(number: int) -> str:
    return f"{number}{'th' if 10 <= number % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th')}"


def _project_rules(project: Path, inventory: Path | None) -> list:
    """The policy rules, for the descriptions of precedences; none where there is no project
    file (a plan explained on its own). A project that does not load is refused, as by check."""
    from domain.project import load_project, project_folder
    from planner.core import load_policies

    if not project_folder(project)[1].exists():
        return []
    return load_policies(load_project(project, None, inventory, need_request=False)).rules


EXIT_TESTS_FAILED, EXIT_TESTS_INTERRUPTED, EXIT_TESTS_USAGE, EXIT_NO_TESTS = 1, 2, 4, 5  # `ordo test`, as pytest


@cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@project_option
@click.option("--coverage", is_flag=True,
              help="Report the policy rules (constraints, ordering rules) no test exercised.")
@click.option("--fail-under", type=FiniteRange(0, 100), metavar="PCT",
              help="Exit 1 when fewer than PCT percent of the rules are exercised (implies --coverage).")
@click.option("-k", "select", metavar="TEXT", help="Run only the tests whose name contains TEXT (any case).")
@click.option("-v", "--verbose", is_flag=True, help="One line per test.")
def policy_tests(paths: tuple[Path, ...], project: Path, coverage: bool, fail_under: float | None,
                 select: str | None, verbose: bool) -> None:
    """Run policy tests: small models with expectations about the plan.

    PATHS are test files, or folders searched for *_test.yaml and
    test_*.yaml (default: the project's tests/ folder). See "Testing
    policies" in policies/README.md for the file format.

    \b
    Exit codes, as pytest's:
      0  every test passed
      1  some test failed or could not run (or coverage is under --fail-under)
      2  interrupted: a test file has errors (nothing ran), or Ctrl-C
      4  usage error (no such path, bad option)
      5  no tests were collected
    """
    from ordo import testreport
    from planner import testing

    console = _console()
    coverage = coverage or fail_under is not None
    root = project.parent if project.is_file() else project
    if paths:
        located = []
        for path in paths:
            found = path if path.exists() or path.is_absolute() else root / path
            if not found.exists():
                _console(stderr=True).print(f"[red]error:[/] file or folder not found: {shown(path)}")
                sys.exit(EXIT_TESTS_USAGE)
            located.append(found)
    else:
        if not root.exists():   # (a usage error, as a path given that is not there: not "no tests")
            _console(stderr=True).print(f"[red]error:[/] no such project folder: {shown(project)}")
            sys.exit(EXIT_TESTS_USAGE)
        located = [root / "tests"]
        if not located[0].is_dir():
            console.print(f"no tests ran: no tests/ folder in {shown(root)} (name test files or folders)")
            sys.exit(EXIT_NO_TESTS)
    fallback = root if (project.is_file() or (root / "ordo.yaml").is_file()) else None
    started = time.perf_counter()
    collection = testing.collect(testing.discover(located), project=fallback, base=Path.cwd(), select=select)
    count = len(collection.cases)
    files = sum(1 for s in collection.suites if s.cases)
    console.print(f"collected {count} test{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}"
                  + (f" ({collection.deselected} deselected)" if collection.deselected else ""), highlight=False)
    progress = testreport.Progress(console, verbose)
    try:
        report = testing.run(collection, coverage=coverage, base=Path.cwd(), on_suite=progress.suite,
                             on_result=progress.result)
    except KeyboardInterrupt:
        progress.end_line()
        console.print("[red]Interrupted[/]")
        sys.exit(EXIT_TESTS_INTERRUPTED)
    progress.end_line()
    report.seconds = time.perf_counter() - started
    testreport.details(console, report)
    if report.coverage is not None:
        testreport.coverage(console, report.coverage, verbose)
    testreport.short_summary(console, report)
    testreport.final(console, report)
    if report.errors:
        sys.exit(EXIT_TESTS_INTERRUPTED)
    if not report.results:
        sys.exit(EXIT_NO_TESTS)
    if not report.ok:
        sys.exit(EXIT_TESTS_FAILED)
    if fail_under is not None and report.coverage is not None and report.coverage.percent < fail_under:
        _console(stderr=True).print(f"[red]Coverage {report.coverage.percent:.0f}% is under {fail_under:g}%.[/]")
        sys.exit(EXIT_TESTS_FAILED)


@cli.group(invoke_without_command=True, short_help="What the journal knows of each resource.")
@project_option
@journal_option
@click.option("--export", is_flag=True, help="Print the inventory as ordo sees it now (file and journal), as YAML.")
@click.pass_context
def state(ctx: click.Context, project: Path, journal: Path | str | None, export: bool) -> None:
    """What the journal knows of each resource (it counts as observed, over the inventory file)."""
    ctx.obj = (project, journal)
    if ctx.invoked_subcommand is not None:
        if export:   # (it was done, and nothing exported)
            raise click.UsageError(f"--export prints the state; `ordo state {ctx.invoked_subcommand}` takes none")
        return
    from ordo import runs

    runs.state_list(_console(), project, journal, export)
    _note_unfinished(project, journal)


@state.command("rm")
@click.argument("names", nargs=-1, required=True)
@project_option
@journal_option
@click.pass_context
def state_rm(ctx: click.Context, names: tuple[str, ...], project: Path, journal: Path | str | None) -> None:
    """Forget the journal's records of these resources: the inventory file speaks for them again."""
    from ordo import runs

    # -C and --journal may come before `rm` (the group's) or after it (these win)
    given = {name: ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
             for name in ("project", "journal")}
    group_project, group_journal = ctx.obj
    click.echo(runs.state_rm(project if given["project"] else group_project,
                             journal if given["journal"] else group_journal, list(names)))


@cli.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
def init(folder: Path) -> None:
    """Write a small, commented project to start from (never overwrites).

    FOLDER (default: the current one) gets ordo.yaml, a catalog, an
    inventory, a request, a policy and a policy test."""
    from ordo.init import init_project

    written = init_project(folder)
    console = _console()
    console.print(f"Wrote a new ordo project in {terminal_safe(folder)}:", highlight=False, markup=False)
    for path in written:
        console.print(f"  {terminal_safe(path.relative_to(folder).as_posix())}", highlight=False, markup=False)
    where = "" if folder == Path(".") else f" -C {terminal_safe(folder)}"
    console.print(f"\nNext: ordo check{where}; ordo plan{where}; ordo test{where}", highlight=False, markup=False)


@cli.command(short_help="Serve orchestration requests over HTTP (API under /v1, described at /openapi.json).")
@project_option
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Address to listen on; anything but loopback needs credentials.")
@journal_option
@click.option("--tokens", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Credentials: lines 'TOKEN ROLE NAME' or YAML (tokens: [{token, role, name}]); "
                   "also env ORDO_TOKENS. Roles: reader, operator.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="TLS certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="TLS private key.")
@click.option("--simulation", type=click.Path(dir_okay=False, path_type=Path), envvar="ORDO_SIMULATION",
              help="Scenario for simulated controllers, for every run (YAML; env ORDO_SIMULATION).")
@click.option("--timeout", type=SOLVER_SECONDS, help=TIMEOUT_HELP_EACH)
@click.option("--drain", type=FiniteRange(min=0, max=3600), default=30.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM or Ctrl-C, how long the runs' calls in flight may take to finish; then the "
                   "programs still running are ended and their operations left in doubt.")
@_with(engine_options)
def serve(project: Path, listen: str, journal: Path | str | None, tokens: Path | None, tls_cert: Path | None,
          tls_key: Path | None, simulation: Path | None, timeout: float | None, drain: float, engine: str,
          temporal: str | None, task_queue: str, continue_every: int | None) -> None:
    """Serve orchestration requests over HTTP (API under /v1, described at /openapi.json).

    Runs are carried out in this process (or, with --engine temporal, by `ordo worker`
    processes, this one following them), recorded in the journal as `ordo apply`
    records them; on start, the runs it accepted and that were cut short are resumed.
    SIGTERM or Ctrl-C: stop taking requests, let the runs stop where they can resume
    (within --drain seconds; a second signal, or SIGHUP: at once)."""
    from domain.procs import limit_malloc_arenas

    limit_malloc_arenas(2)   # (before anything starts a thread)
    try:
        from service.server import Listen, Options, build
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("fastapi", "starlette", "uvicorn", "prometheus_client"):
            raise
        raise OrdoError(f"ordo serve needs the serve extra (pip install 'ordo[serve]'): {exc}") from None

    if simulation is not None:
        from executor.controllers.simulated import load_simulation

        load_simulation(simulation)  # a bad scenario is refused before the server starts

    def absolute(path: Path | str | None) -> Path | str | None:
        return path.resolve() if isinstance(path, Path) else path  # a journal's URL stays as it is

    options = Options(project=project.resolve(), listen=Listen.parse(listen), journal=absolute(journal),
                      tokens=absolute(tokens), tls_cert=absolute(tls_cert), tls_key=absolute(tls_key),
                      simulation=absolute(simulation), plan_timeout=timeout, drain=drain,
                      temporal=_engine(engine, temporal, task_queue, continue_every))
    server, credentials = build(options)
    server.bind()   # (before anything is said or started: a port in use is refused here)
    err = _console(stderr=True)
    scheme = "https" if tls_cert else "http"
    if credentials.configured:
        err.print(f"ordo serve: {len(credentials.entries)} credential(s) loaded.", highlight=False)
    else:
        err.print("[yellow]ordo serve: no credentials configured (--tokens FILE or ORDO_TOKENS): listening on "
                  "loopback only, and every caller there is an operator.[/]", highlight=False)
    for secret, what in ((options.tokens, "tokens file"), (options.tls_key, "TLS key")):
        if isinstance(secret, Path) and (mode := _open_to_others(secret)) is not None:   # (as ssh says of a key)
            err.print(f"[yellow]ordo serve: the {what} {shown(secret)} can be read by other users (mode "
                      f"{mode:04o}): `chmod 600` it.[/]", highlight=False)
    err.print(f"ordo serve: {scheme}://{shown(listen)}/v1 (the API described at /openapi.json)", highlight=False)
    server.run()


def _open_to_others(path: Path) -> int | None:
    """The permission bits of a file that others than its owner (group, anyone) may read; else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o044 else None


SCHEMAS = ("project", "catalog", "inventory", "request", "guards")


@cli.command()
@click.argument("kind", type=click.Choice(SCHEMAS), required=False)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the schema as <kind>.schema.json into this folder (every one, when no kind is named).")
def schema(kind: str | None, out_dir: Path | None) -> None:
    """Print the JSON Schema of a file kind, for editors."""
    from domain.schema import json_schema

    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OrdoError(f"cannot make the folder {terminal_safe(out_dir)}: {exc.strerror or exc}") from None
        names = [kind] if kind is not None else list(SCHEMAS)
        for name in names:
            _write(out_dir / f"{name}.schema.json", json_schema(name))
        click.echo(f"Wrote {len(names)} schema{'s' if len(names) > 1 else ''} to {terminal_safe(out_dir)}")
        return
    if kind is None:
        raise click.UsageError(f"name a kind ({', '.join(SCHEMAS)}) or give --out-dir")
    click.echo(json_schema(kind), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: only here do errors become exit codes. Called without
    ``argv`` (the console script), the process ends with it (``_end``)."""
    if argv is not None:
        _main(argv)
        return
    # The console script: the process ends with main. If it must end the usual
    # way (``_end``), its last collections would walk every object still alive
    # (a 10,000-resource plan: millions, a third of a second) only to free
    # memory the process returns anyway.
    atexit.register(gc.freeze)
    try:
        _main(None)
    except SystemExit as exc:
        _end(exc.code)
    _end(None)


def _end(code: object) -> NoReturn:
    """End the process with ``code`` (as ``sys.exit`` takes it) without the
    interpreter's teardown, which frees every object still alive one by one:
    0.1 s after planning ten resources, 0.2-0.3 s after `explain --conflict`
    at 10,000, for memory the process gives back anyway. What the teardown
    does that matters is done first: the exit handlers run (multiprocessing's,
    logging's, temporary folders') and the standard streams are flushed; a
    stream that cannot be (a closed pipe, a full disk) makes the status 120,
    as Python's own exit does. While a thread other than this one may still
    run (a server's, an executor's), the process ends the usual way, which
    waits for it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    if code is None or isinstance(code, int):
        status = code or 0
    else:   # sys.exit("message"): the message, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()   # what the interpreter's exit runs first, here without what follows it
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = 120
    os._exit(status)


def _main(argv: list[str] | None) -> None:
    """The command line, its errors turned into exit codes (``sys.exit``)."""
    try:
        cli.main(args=argv, prog_name="ordo", standalone_mode=False)
    except DiagnosticsError as exc:
        from ordo import render

        render.diagnostics(_console(stderr=True), exc.diagnostics)
        sys.exit(EXIT_ERROR)
    except OrdoError as exc:
        from planner.bounded import PlanningLimitError

        # its text may carry untrusted text (a path, a controller's answer): neither markup nor control characters
        _console(stderr=True).print(f"[red]error:[/] {shown_lines(exc)}", highlight=False)
        sys.exit(EXIT_TIMEOUT if isinstance(exc, PlanningLimitError) and exc.kind == "time" else EXIT_ERROR)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):   # click turns Ctrl-C into Abort
            # a run stopped at once (a second Ctrl-C or SIGTERM) is interrupted and resumable: 130, as one drained
            runs = getattr(exc.__context__, "runs", None) or []
            _console(stderr=True).print("Interrupted." + "".join(
                f" Run {run} stopped at once: `ordo resume {run}` carries it on (the operations it had in flight "
                f"are observed first); or `ordo abort {run}`." for run in runs), highlight=False)
            sys.exit(EXIT_INTERRUPTED)
        _console(stderr=True).print("Aborted.")
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        usage_of_test = isinstance(exc, click.UsageError) and exc.ctx is not None and exc.ctx.info_name == "test"
        sys.exit(EXIT_TESTS_USAGE if usage_of_test else EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - anything else is a bug in ordo: one line, the traceback in a file
        if isinstance(exc, BrokenPipeError):   # the output's reader went away (`| head`): nothing to say, to no one
            sys.exit(EXIT_ERROR)
        if isinstance(exc, OSError) and exc.errno in _CANNOT_WRITE:
            # the output cannot be written (a full disk or file): said, if it can be (a closed pipe is click's:
            # status 1)
            with contextlib.suppress(OSError, ValueError):
                print(f"error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
            sys.exit(120)
        _console(stderr=True).print(f"[red]error:[/] {shown(_bug_report(argv))}", highlight=False)
        sys.exit(EXIT_ERROR)


#: The errors of writing the output that are no bug of ordo's: a full disk, file or quota, the device's.
_CANNOT_WRITE = (errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT)


def _bug_report(argv: list[str] | None) -> str:
    """Write the exception being handled to a new file (mode 0600) in the
    system's temporary folder; the line that says so."""
    import tempfile
    import traceback

    from executor.redact import Redactor, redact_argv
    from ordo import __version__

    kind = type(sys.exc_info()[1]).__name__
    command, _ = redact_argv(sys.argv[1:] if argv is None else argv)
    # secrets never reach a file: the environment's and the arguments' (a report is meant to be shared)
    details = Redactor().text(f"ordo {__version__}, Python {sys.version.split()[0]}\n"
                              f"command: ordo {' '.join(command)}\n\n{traceback.format_exc()}")
    try:
        fd, path = tempfile.mkstemp(prefix="ordo-bug-", suffix=".txt")  # created 0600
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(details)
    except OSError as exc:
        return f"this is a bug in ordo ({kind}); its details could not be written ({exc.strerror or exc})"
    return f"this is a bug in ordo ({kind}); the details are in {path} (please report it)"
