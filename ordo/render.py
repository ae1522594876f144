"""Views: turn results into text for people. Only the CLI calls these."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console

from domain.errors import Diagnostic, first_of
from domain.gcpause import paused_gc
from ordo.safe import shown, terminal_safe, terminal_safe_lines
from planner.explain import Explanation
from planner.plan import CostLevel, Plan, cost_text
from planner.slice import SLICE_NOTE_MIN, Scope

SYMBOL = {"create": ("+", "green"), "delete": ("-", "red"), "update": ("~", "yellow"),
          "change": ("~", "yellow"), "run": ("*", "cyan"), "replace": ("-/+", "magenta")}


def diagnostics(console: Console, items: list[Diagnostic]) -> None:
    for item in items:
        colour = {"error": "red", "note": "cyan"}.get(item.severity, "yellow")
        where = shown(item.location)
        path = f"{shown(item.path)}: " if item.path else ""
        line = f"{where}: [{colour}]{item.severity}[/]: {path}{shown(item.summary)}"
        if item.detail:
            line += f" [dim]({shown(item.detail)})[/]"
        console.print(line, highlight=False, soft_wrap=True)


def plan_lines(plan: Plan) -> list[tuple[str, str]]:
    """The plan as (text, rich style) lines, Terraform-like."""
    if not plan.operations:
        return [("No changes. The inventory already matches the request.", "green")]
    action_of = {op: SYMBOL[change.shape]
                 for change in plan.resource_changes for op in change.operations}
    lines = [("ordo will perform the following operations, in waves that run in parallel:", ""), ("", "")]
    width = max(len(op.resource) + len(op.type) + 1 for op in plan.operations)
    line_of = {}
    wide = max(len(symbol) for symbol, _ in action_of.values())   # (-/+ beside + lines up)
    for op in plan.operations:
        symbol, colour = action_of[op.id]
        symbol = symbol.rjust(wide)
        address = f"{op.type}.{op.resource}".ljust(width)
        line_of[op.id] = (f"  {symbol} {address}  {op.operation:<14} {op.from_state} -> {op.to_state}"
                          f"  [{op.controller}]", colour)
    for number, wave in enumerate(plan.waves, start=1):
        lines.append((f"Wave {number}", "bold"))
        lines += [line_of[op_id] for op_id in wave]
    placed = [(c.resource, c.placement) for c in plan.resource_changes if c.placement]
    if placed:
        lines += [("", ""), ("Placements (new)", "bold")]
        lines += [(f"  {resource} -> {target}", "") for resource, target in placed]
    if plan.violations:
        lines += [("", ""), ("Policies this plan does not satisfy (not hard)", "bold")]
        for v in plan.violations:
            lines.append((f"  {v.enforcement}: {v.policy} ({v.file}:{v.line}){_about(v.bindings.items(), v.resources)}",
                          "yellow"))
            if v.description:
                lines.append((f"    {v.description}", "dim"))
    counts = plan.counts()
    runs = f", {counts['run']} to run" if counts["run"] else ""
    lines += [("", ""), (
        f"Plan: {counts['create']} to create, {counts['change']} to change, "
        f"{counts['delete']} to delete{runs}. {_count(len(plan.operations), 'operation')} in "
        f"{_count(len(plan.waves), 'wave')} (at most {plan.concurrency} at once); estimated "
        f"{plan.makespan:g}s, critical path {plan.critical_path:g}s.", "bold")]
    status = plan.status if not plan.cost else (
        f"{plan.status}, cost " + ", ".join(_cost_level(c) for c in plan.cost))
    lines.append((f"Solver: {status}; digest {plan.digest[:19]}...", "dim"))
    return lines


def _cost_level(level: CostLevel) -> str:
    """cost@priority; with the lower bound and the gap when the time limit
    struck before the cost was proved optimal."""
    text = f"{level.cost}@{level.priority}"
    return text if level.bound is None else f"{text} (lower bound {level.bound}, gap {level.cost - level.bound})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@paused_gc()
def plan_text(console: Console, plan: Plan, scope: Scope | None = None) -> None:
    """The plan; with ``scope``, the line that says what the solver was given where that tells something."""
    line = scope_line(scope) if scope is not None and plan.operations else None
    print_lines(console, plan_lines(plan) + ([(line, "dim")] if line else []))


def scope_line(scope: Scope) -> str | None:
    """What the plan was solved on: the slice the request changes, or the whole model and why
    (only from SLICE_NOTE_MIN resources on, where that costs time)."""
    if scope.whole is None:
        parts = f", in {scope.parts} parts solved each on its own" if scope.parts > 1 else ""
        if scope.planned == scope.resources:
            return f"Scope: all {scope.resources:,} resources{parts}."
        return (f"Scope: {scope.planned:,} of {scope.resources:,} resources{parts} (what the request may change, "
                "and what relates to it); the rest keep their state.")
    if scope.resources < SLICE_NOTE_MIN:
        return None
    return f"Scope: the whole model, {scope.resources:,} resources: {scope.whole}."


def columns(console: Console, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Rows under bold headers, each column as wide as its widest cell, two spaces between (rich's
    Table measured each of 10,000 rows' cells: 3.5 s of `ordo state` at 10,000 resources). Cells
    are untrusted plain text, made safe here; a line longer than a terminal wraps there."""
    safe = [tuple(terminal_safe(cell) for cell in row) for row in rows]
    widths = [max([cell_len(header), *(cell_len(row[i]) for row in safe)]) for i, header in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell + " " * (width - cell_len(cell)) for cell, width in zip(cells, widths, strict=True)
                         ).rstrip()

    print_lines(console, [(line(headers), "bold"), *((line(row), "") for row in safe)])


def print_lines(console: Console, lines: list[tuple[str, str]]) -> None:
    """(text, style) lines, made safe for a terminal."""
    if not console.is_terminal:
        # Plain text in one write: rich per line costs seconds on 30,000 lines;
        # made safe as a whole when no line holds a line break of its own.
        text = "\n".join([text for text, _ in lines])
        if text.count("\n") != len(lines) - 1:
            text = "\n".join([terminal_safe(text) for text, _ in lines])
        console.file.write(terminal_safe_lines(text) + "\n")
        return
    for text, style in lines:
        console.print(terminal_safe(text), style=style or None, markup=False, highlight=False)


def warnings(console: Console, items: list[Diagnostic]) -> None:
    """Each warning once (the solver's came once for each instance of a rule: 21 of one), as `ordo check`
    prints it where it has a place (it was "Warning: FILE:LINE: warning: ..."), else as "Warning: ..."."""
    for item in dict.fromkeys(items):
        text = str(item) if item.file else f"Warning: {str(item).removeprefix(f'{item.location}: warning: ')}"
        console.print(f"[yellow]{shown(text)}[/]", highlight=False, soft_wrap=True)


def explanation(console: Console, expl: Explanation) -> None:
    console.print(f"[red bold]No plan exists:[/] {shown(expl.summary)}", highlight=False)
    # One entry per rule, with every set of values it is violated for.
    by_rule: dict[str, list] = {}
    for conflict in expl.conflicts:
        by_rule.setdefault(conflict.location, []).append(conflict)
    for location, group in by_rule.items():
        first = group[0]
        console.print(f"\n  [bold]{shown(first.policy)}[/] ({shown(location)})", highlight=False)
        if first.description:
            console.print(f"    {shown(first.description)}", highlight=False)
        console.print(f"    [dim]rule: {shown(first.rule)}[/]", highlight=False)
        for conflict in group:
            if conflict.bindings:
                values = ", ".join(f"{k}={v}" for k, v in conflict.bindings)
                named = set(v for _, v in conflict.bindings)
                others = [r for r in conflict.resources if r not in named]
                if others:
                    values += f" (resources: {_names(others)})"
                console.print(f"    violated for: {shown(values)}", highlight=False)
    goals(console, "The request asks for:", expl.goals)
    if expl.cycle:
        console.print("\n  Cycle:", highlight=False)
        for node, rules in zip(expl.cycle, expl.cycle_rules, strict=True):
            console.print(f"    {shown(node)}  [dim]must come before the next, by {shown(', '.join(rules))}[/]",
                          highlight=False)
        console.print(f"    {shown(expl.cycle[0])}", highlight=False)


def goals(console: Console, title: str, items: list[tuple[str, str, str]]) -> None:
    """Requested goals (resource, state, where requested) under a title; nothing when there are none."""
    if not items:
        return
    console.print(f"\n  {title}", highlight=False)
    for resource, state, where in items:
        console.print(f"    {shown(resource)}: {shown(state)}  [dim]({shown(where)})[/]", highlight=False)


def minimal_conflict(console: Console, found, timeout: float) -> None:
    """`ordo explain --conflict`: policies and goals that cannot hold together (or the cycle of
    ordering rules that no policy takes part in; or nothing found within ``timeout`` seconds)."""
    if found.cycle is not None:
        explanation(console, found.cycle)
        return
    if not found.found:
        console.print(f"[red]Timeout:[/] no conflicting set was found within {timeout:g}s (nor whether a plan "
                      "exists); raise --timeout.", highlight=False)
        return
    console.print(f"[red bold]No plan exists:[/] {shown(found.summary())}", highlight=False)
    if found.rules:
        console.print("\n  Policies:", highlight=False)
        for rule in found.rules:
            name = found.policies.get(rule.file, rule.file)
            console.print(f"    [bold]{shown(name)}[/] ({shown(rule.location)})", highlight=False)
            if rule.comment:
                console.print(f"      {shown(rule.comment)}", highlight=False)
            console.print(f"      [dim]rule: {shown(rule.text)}[/]", highlight=False)
    goals(console, "Requested goals:", found.goals)
    if found.minimal:
        # (of this set: another may conflict too, and a plan need not exist once one of these is dropped; it read
        # as a promise, an authoring sweep's)
        console.print("\n  Drop or relax any one of these and the rest of them can hold together; another set may "
                      "conflict too: `ordo explain --conflict` again after the change says.", highlight=False)


def operation_why(console: Console, why) -> None:
    """`ordo explain plan.json OPERATION`: why it is there and what it waits for."""
    op = why.operation
    console.print(f"[bold]{shown(op.id)}[/]: {shown(op.type)} {shown(op.resource)}, "
                  f"{shown(op.from_state)} -> {shown(op.to_state)} on {shown(op.controller)}, wave {op.wave}",
                  highlight=False)
    console.print(f"  In the plan because: {shown(why.reason)}", highlight=False)
    console.print(f"  {shown(op.resource)}'s operations in this plan: {shown(' -> '.join(why.path))}",
                  highlight=False)
    console.print("  [dim](the shortest way through its lifecycle to its goal: <base>/lifecycle.lp)[/]",
                  highlight=False)

    def hops(title: str, items, other) -> None:
        if not items:
            return
        console.print(f"\n  {title}", highlight=False)
        for hop in items:
            console.print(f"    {shown(other(hop))}  [dim]by {shown(', '.join(hop.rules))}[/]", highlight=False)
            for text in sorted(set(hop.descriptions) - {""}):
                console.print(f"      {shown(text)}", highlight=False)

    if why.after is not None:
        if why.chain is None and why.reverse:
            hops(f"{op.id} does not wait for {why.after}: it comes first, and {why.after} waits for it:",
                 why.reverse, lambda h: f"{h.before} -> {h.after}")
        elif why.chain is None:
            console.print(f"\n  {shown(op.id)} does not wait for {shown(why.after)}: no chain of precedences "
                          "joins them, so they may run in parallel (waves only reflect the limits).",
                          highlight=False)
        elif not why.chain:
            console.print("\n  That is the same operation.", highlight=False)
        else:
            hops(f"Why it comes after {why.after}:", why.chain, lambda h: f"{h.before} -> {h.after}")
        return
    hops("Waits for:", why.waits_for, lambda h: h.before)
    hops("Needed before:", why.needed_by, lambda h: h.after)


def placement_why(console: Console, why) -> None:
    """`ordo explain plan.json RESOURCE`: why it is placed where it is, and the other targets."""
    console.print(f"[bold]{shown(why.resource)}[/] is placed on [bold]{shown(why.target)}[/]: {shown(why.reason)}",
                  highlight=False)
    if why.inputs_changed:
        console.print("  [yellow]The project's inputs changed since the plan was made: this is what they give "
                      "now.[/]", highlight=False)
    if why.alternatives:
        made = " (from the inputs it was made from)" if why.inputs_changed else ""
        console.print(f"  Cost of this plan{made}: {cost_text(why.cost)}  [dim](cost@priority)[/]", highlight=False)
    for alt in why.alternatives:
        if alt.status == "plan":
            proven = "" if alt.optimal else " (the best found in the time limit)"
            console.print(f"\n  {shown(alt.target)}: possible, at cost {cost_text(alt.cost)}{proven}",
                          highlight=False)
            if alt.moves:
                moved = ", ".join(f"{r} -> {t}" for r, t in alt.moves)
                console.print(f"    [dim]with {shown(moved)}[/]", highlight=False)
            continue
        if alt.status == "timeout" or not alt.conflicts:
            console.print(f"\n  {shown(alt.target)}: {shown(alt.summary)}", highlight=False)
            continue
        console.print(f"\n  {shown(alt.target)}: ruled out by", highlight=False)
        for conflict in alt.conflicts:
            values = ", ".join(f"{k}={v}" for k, v in conflict.bindings)
            console.print(f"    [bold]{shown(conflict.policy)}[/] ({shown(conflict.location)})"
                          + (f": {shown(values)}" if values else ""), highlight=False)
            if conflict.description:
                console.print(f"      {shown(conflict.description)}", highlight=False)
    if not why.complete:
        console.print("\n  [yellow]Not every other target was decided: raise --timeout (or "
                      "settings.memory_limit_mb in ordo.yaml, where the memory cap struck).[/]", highlight=False)


def diff_side_line(label: str, side) -> str:
    """One side of a comparison in a line (planner.diff.Side)."""
    if not side.has_plan:
        if side.status == "timeout":
            return f"{label}: no plan (the solver timed out)"
        summary = side.explanation.summary if side.explanation is not None else "no plan exists"
        return f"{label}: no plan: {summary}"
    counts = side.counts
    runs = f", {counts.get('run', 0)} to run" if counts.get("run") else ""
    return (f"{label}: {counts.get('create', 0)} to create, {counts.get('change', 0)} to change, "
            f"{counts.get('delete', 0)} to delete{runs}; {_count(side.operations, 'operation')} in "
            f"{_count(side.waves, 'wave')}, estimated {side.makespan:g}s, critical path {side.critical_path:g}s; "
            f"cost {cost_text(side.cost)} ({side.status})")


def _signed(value: float) -> str:
    return f"+{value:g}" if value > 0 else f"{value:g}"


#: Resources a line names at most (a capacity conflict at 10,000 resources named the 700 on a target);
#: `--json` has them all.
NAMES_SHOWN = 20


def _names(names) -> str:
    return first_of(list(names), NAMES_SHOWN)


def _about(bindings, resources) -> str:
    """": values (resources: ...)" of a violation, as much of it as there is (a rule of no variable
    names no values; one about no resource, none)."""
    values = ", ".join(f"{k}={val}" for k, val in bindings)
    named = f"resources: {_names(resources)}" if resources else ""
    about = f"{values} ({named})" if values and named else values or named
    return f": {about}" if about else ""


def plan_diff_lines(diff, base_label: str = "Baseline", other_label: str = "Scenario") -> list[tuple[str, str]]:
    """A planner.diff.PlanDiff as (text, rich style) lines: both sides' summary
    lines, then each section that differs, Terraform-like (+ added, - removed,
    ~ changed)."""
    lines = [(diff_side_line(base_label, diff.base), ""), (diff_side_line(other_label, diff.other), ""), ("", "")]
    if diff.empty:
        lines.append(("No differences.", "green"))
        return lines
    if not diff.comparable:
        return lines[:-1]  # a side without a plan: the summary lines say it all

    def section(title: str, body: list[tuple[str, str]]) -> None:
        if body:
            lines.extend([(title, "bold"), *body, ("", "")])

    width = max((len(op.type) + len(op.resource) + 1 for op in diff.operations_added + diff.operations_removed),
                default=0)

    def op_lines(marker: str, ops, colour: str) -> list[tuple[str, str]]:
        # each resource's operations together, in the order they run
        return [(f"  {marker} {(op.type + '.' + op.resource).ljust(width)}  {op.operation:<14} "
                 f"{op.from_state} -> {op.to_state}  (wave {op.wave})", colour)
                for op in sorted(ops, key=lambda o: (o.resource, o.wave, o.id))]

    section("Operations added", op_lines("+", diff.operations_added, "green"))
    section("Operations removed", op_lines("-", diff.operations_removed, "red"))
    placements = []
    for p in diff.placements:
        if p.before is None:
            placements.append((f"  + {p.resource}: {p.after} (newly placed)", "green"))
        elif p.after is None:
            placements.append((f"  - {p.resource}: {p.before} (no longer placed)", "red"))
        else:
            placements.append((f"  ~ {p.resource}: {p.before} -> {p.after}", "yellow"))
    section("Placements changed", placements)
    order = [(f"  + {e.before} before {e.after}  ({', '.join(e.rules)})", "green") for e in diff.edges_added]
    order += [(f"  - {e.before} before {e.after}  ({', '.join(e.rules)})", "red") for e in diff.edges_removed]
    order += [(f"  ~ {w.operation}: wave {w.before} -> {w.after}", "yellow") for w in diff.waves]
    section("Order changed", order)
    changes = []
    for c in diff.resource_changes:
        before = f"{'/'.join(c.actions_before)} ({c.goal_before})" if c.actions_before else "nothing"
        after = f"{'/'.join(c.actions_after)} ({c.goal_after})" if c.actions_after else "nothing"
        changes.append((f"  ~ {c.resource}: {before} -> {after}", "yellow"))
    section("Resources changed", changes)

    def violation(marker: str, v, colour: str) -> tuple[str, str]:
        return (f"  {marker} {v.enforcement}: {v.policy} ({v.location}){_about(v.bindings, v.resources)}", colour)

    section("Policy violations", [violation("+", v, "yellow") for v in diff.violations_added]
            + [violation("-", v, "green") for v in diff.violations_removed])
    cost = []
    for priority, before, after in diff.cost:
        delta = f" ({_signed(after - before)})" if before is not None and after is not None else ""
        marker = "~" if before != after else " "
        cost.append((f"  {marker} priority {priority}: {before if before is not None else 'none'} -> "
                     f"{after if after is not None else 'none'}{delta}", "yellow" if before != after else ""))
    section("Cost", cost or [("    no objective on either side", "")])
    base, other = diff.base, diff.other
    if (base.makespan, base.critical_path) == (other.makespan, other.critical_path):
        section("Makespan", [(f"    estimated {base.makespan:g}s, critical path {base.critical_path:g}s "
                              "(unchanged)", "")])
    else:
        section("Makespan", [(
            f"  ~ estimated {base.makespan:g}s -> {other.makespan:g}s ({_signed(other.makespan - base.makespan)}s)"
            f"; critical path {base.critical_path:g}s -> {other.critical_path:g}s "
            f"({_signed(other.critical_path - base.critical_path)}s)", "yellow")])
    while lines and lines[-1] == ("", ""):
        lines.pop()
    return lines


def plan_diff(console: Console, diff, base_label: str = "Baseline", other_label: str = "Scenario") -> None:
    print_lines(console, plan_diff_lines(diff, base_label, other_label))
