"""The view of `ordo test`: progress per test file, failures, coverage, summary (pytest's layout)."""

from __future__ import annotations

from rich.console import Console

from ordo import render
from ordo.safe import shown_lines
from planner.testing import CaseResult, Coverage, Report, Suite

WIDTH = 80
MARK = {"passed": (".", "green"), "failed": ("F", "red"), "error": ("E", "red"), "skipped": ("s", "yellow")}
WORD = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}


def ruler(title: str = "", char: str = "=") -> str:
    if not title:
        return char * WIDTH
    side = max(3, (WIDTH - len(title) - 2) // 2)
    line = f"{char * side} {title} {char * side}"
    return line + char * (WIDTH - len(line)) if len(line) < WIDTH else line


class Progress:
    """One line per test file with a mark per test (or, verbose, a line per test)."""

    def __init__(self, console: Console, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.open = False

    def suite(self, suite: Suite) -> None:
        self.end_line()
        if not self.verbose:
            self.console.print(shown_lines(suite.display) + " ", end="", highlight=False)
            self.open = True

    def result(self, result: CaseResult) -> None:
        mark, colour = MARK[result.outcome]
        if self.verbose:
            extra = f" ({shown_lines(result.reason)})" if result.reason else ""
            self.console.print(f"{shown_lines(result.location)}: {shown_lines(result.name)} "
                               f"[{colour}]{WORD[result.outcome]}[/]{extra}", highlight=False)
        else:
            self.console.print(f"[{colour}]{mark}[/]", end="", highlight=False)

    def end_line(self) -> None:
        if self.open:
            self.console.print()
            self.open = False


def summary_line(report: Report) -> str:
    parts = [f"{report.count(k)} {k}" for k in ("passed", "failed") if report.count(k)]
    errors = report.count("error") + len(report.errors)
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if report.count("skipped"):
        parts.append(f"{report.count('skipped')} skipped")
    if report.deselected:
        parts.append(f"{report.deselected} deselected")
    what = ", ".join(parts) if parts else "no tests ran"
    return f"{what} in {report.seconds:.2f}s"


def details(console: Console, report: Report) -> None:
    """Collection errors, then each failure and error with file:line, expected and got."""
    if report.errors:
        _section(console, "ERRORS")
        render.diagnostics(console, report.errors)
    failed = [r for r in report.results if r.outcome == "failed"]
    if failed:
        _section(console, "FAILURES")
        for result in failed:
            _case_title(console, result)
            for failure in result.failures:
                console.print(f"{shown_lines(failure.location)}: [red]{shown_lines(failure.path)}[/]: "
                              f"{shown_lines(failure.message)}", highlight=False)
            for number, line in enumerate(result.got):
                console.print(("  got: " if number == 0 else "       ") + shown_lines(line), style="dim",
                              highlight=False)
    errored = [r for r in report.results if r.outcome == "error"]
    if errored:
        _section(console, "ERRORS")
        for result in errored:
            _case_title(console, result)
            render.diagnostics(console, result.errors)


def _section(console: Console, title: str, char: str = "=") -> None:
    console.print()
    console.print(ruler(title, char), highlight=False)


def _case_title(console: Console, result: CaseResult) -> None:
    console.print(f"[red]{shown_lines(ruler(f'{result.name} ({result.location})', '_'))}[/]", highlight=False)


def short_summary(console: Console, report: Report) -> None:
    bad = [r for r in report.results if r.outcome in ("failed", "error")]
    if not bad and not report.errors:
        return
    console.print(ruler("short test summary info"), highlight=False)
    for result in bad:
        worst = sorted(result.errors, key=lambda d: d.severity != "error")   # an error before the warnings
        first = result.failures[0].message if result.failures else (worst[0].summary if worst else "")
        console.print(f"[red]{WORD[result.outcome]}[/] {shown_lines(result.location)}: {shown_lines(result.name)}"
                      + (f" - {shown_lines(first)}" if first else ""), highlight=False)
    if report.errors:
        count = len(report.errors)
        console.print(f"[red]Interrupted: {count} error{'s' if count != 1 else ''} in test files[/]",
                      highlight=False)


def coverage(console: Console, cov: Coverage, verbose: bool = False) -> None:
    """Rules exercised per policy file, then the rules no test exercised (verbose: every rule, with its tests)."""
    _section(console, "policy coverage: rules a test showed at work", "-")
    width = max([len(f.file) for f in cov.files] + [5])
    for fc in cov.files:
        if not fc.rules:
            console.print(f"{shown_lines(fc.file.ljust(width))}     -        (no constraints or ordering rules)",
                          highlight=False, style="dim")
            continue
        share = 100.0 * fc.exercised / len(fc.rules)
        colour = "green" if fc.exercised == len(fc.rules) else "yellow"
        console.print(f"{shown_lines(fc.file.ljust(width))}  [{colour}]{fc.exercised:>3}/{len(fc.rules):<3} "
                      f"{share:4.0f}%[/]", highlight=False)
    console.print(f"{'TOTAL'.ljust(width)}  {cov.exercised:>3}/{cov.total:<3} {cov.percent:4.0f}%", highlight=False)
    if verbose:
        console.print("\nRules and the tests that exercised them:", highlight=False)
        for rule in (r for fc in cov.files for r in fc.rules if r.exercised):
            console.print(f"  {shown_lines(rule.file)}:{rule.line}: {rule.kind}: [green]"
                          f"{shown_lines(', '.join(rule.exercised_by))}[/]", highlight=False)
    missing = [r for fc in cov.files for r in fc.rules if not r.exercised]
    if missing:
        console.print("\nNot exercised by any test:", highlight=False)
        for rule in missing:
            text = rule.text if len(rule.text) <= 100 else rule.text[:97] + "..."
            console.print(f"  {shown_lines(rule.file)}:{rule.line}: {rule.kind}: [dim]{shown_lines(text)}[/]",
                          highlight=False)


def final(console: Console, report: Report) -> None:
    colour = "green" if report.ok and report.results and report.count("passed") else (
        "yellow" if report.ok else "red")
    console.print(f"[{colour}]{shown_lines(ruler(summary_line(report)))}[/]", highlight=False)
