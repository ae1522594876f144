"""``ordo``: parse arguments, call the core, render the result.

Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error,
2 changes present (--detailed-exitcode only), 3 no plan exists, 4 solver timeout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from domain.errors import DiagnosticsError, OrdoError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_NO_PLAN, EXIT_TIMEOUT = 0, 1, 2, 3, 4

project_option = click.option(
    "-C", "--project", "project", default=".", show_default=True,
    type=click.Path(file_okay=True, dir_okay=True, path_type=Path),
    help="Project folder (with ordo.yaml) or the project file itself.")
inventory_option = click.option(
    "--inventory", type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory file to plan from, instead of the project's.")
request_argument = click.argument("request", required=False, type=click.Path(dir_okay=False, path_type=Path))


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ordo")
def cli() -> None:
    """ordo: plans computed from models and policies, then carried out."""


@cli.command()
@request_argument
@project_option
@inventory_option
def check(request: Path | None, project: Path, inventory: Path | None) -> None:
    """Validate models and policies; report every problem at once."""
    from ordo import render
    from planner.check import check as run_check

    found = run_check(project, request, inventory)
    errors = [d for d in found if d.severity == "error"]
    render.diagnostics(_console(stderr=True), found)
    if errors:
        warnings = len(found) - len(errors)
        _console(stderr=True).print(f"[red]{len(errors)} error(s)[/], {warnings} warning(s).")
        sys.exit(EXIT_ERROR)
    _console().print("[green]Success![/] The project is valid.")


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
              help="Exit 0 when there are no changes, 2 when there are (3: no plan, 1: error).")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Solver time limit in seconds.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Operations at once (default from the project).")
def plan(request: Path | None, project: Path, inventory: Path | None, extra_policies: tuple[Path, ...],
         out: Path | None, fmt: str, detailed_exitcode: bool, timeout: float | None,
         concurrency: int | None) -> None:
    """Compute the plan that takes the inventory to the request."""
    from domain.project import load_project
    from ordo import render
    from planner.core import make_plan

    loaded = load_project(project, request, inventory, list(extra_policies))
    outcome = make_plan(loaded, timeout=timeout, concurrency=concurrency)
    console = _console()
    render.warnings(_console(stderr=True), outcome.warnings)
    if outcome.plan is None:
        if fmt == "json":
            body = {"status": outcome.status,
                    "explanation": outcome.explanation.to_dict() if outcome.explanation else None}
            click.echo(json.dumps(body, indent=2, sort_keys=True))
        elif outcome.status == "timeout":
            _console(stderr=True).print(
                f"[red]Timeout:[/] the solver found no plan within {timeout or loaded.settings.solve_timeout:g}s; "
                "raise --timeout or settings.solve_timeout.")
        elif outcome.explanation is not None:
            render.explanation(_console(stderr=True), outcome.explanation)
        sys.exit(EXIT_TIMEOUT if outcome.status == "timeout" else EXIT_NO_PLAN)
    result = outcome.plan
    if out is not None:
        out.write_text(result.to_json(), encoding="utf-8")
    if fmt == "json":
        click.echo(result.to_json(), nl=False)
    elif fmt == "dot":
        from planner.export import to_dot

        click.echo(to_dot(result), nl=False)
    elif fmt == "mermaid":
        from planner.export import to_mermaid

        click.echo(to_mermaid(result), nl=False)
    else:
        render.plan_text(console, result)
        if out is not None:
            console.print(f"\nSaved the plan to: {out}")
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES)


SCHEMAS = ("project", "catalog", "inventory", "request")


@cli.command()
@click.argument("kind", type=click.Choice(SCHEMAS), required=False)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write every schema as <kind>.schema.json into this folder.")
def schema(kind: str | None, out_dir: Path | None) -> None:
    """Print the JSON Schema of a file kind, for editors."""
    from domain.schema import json_schema

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            (out_dir / f"{name}.schema.json").write_text(json_schema(name), encoding="utf-8")
        click.echo(f"Wrote {len(SCHEMAS)} schemas to {out_dir}")
        return
    if kind is None:
        raise click.UsageError(f"name a kind ({', '.join(SCHEMAS)}) or give --out-dir")
    click.echo(json_schema(kind), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: only here do errors become exit codes."""
    try:
        cli.main(args=argv, prog_name="ordo", standalone_mode=False)
    except DiagnosticsError as exc:
        from ordo import render

        render.diagnostics(_console(stderr=True), exc.diagnostics)
        sys.exit(EXIT_ERROR)
    except OrdoError as exc:
        _console(stderr=True).print(f"[red]error:[/] {exc}")
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        _console(stderr=True).print("Aborted.")
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
