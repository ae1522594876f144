"""Views: turn results into text for people. Only the CLI calls these."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from domain.errors import Diagnostic
from planner.explain import Explanation
from planner.plan import Plan

SYMBOL = {"create": ("+", "green"), "delete": ("-", "red"), "update": ("~", "yellow"),
          "change": ("~", "yellow"), "run": ("*", "cyan")}


def diagnostics(console: Console, items: list[Diagnostic]) -> None:
    for item in items:
        colour = "red" if item.severity == "error" else "yellow"
        where = escape(item.location)
        path = f"{escape(item.path)}: " if item.path else ""
        line = f"{where}: [{colour}]{item.severity}[/]: {path}{escape(item.summary)}"
        if item.detail:
            line += f" [dim]({escape(item.detail)})[/]"
        console.print(line, highlight=False, soft_wrap=True)


def plan_text(console: Console, plan: Plan) -> None:
    if not plan.operations:
        console.print("[green]No changes.[/] The inventory already matches the request.", highlight=False)
        return
    action_of = {}
    for change in plan.resource_changes:
        for op in change.operations:
            action_of[op] = change.actions[0]
    console.print("ordo will perform the following operations, in waves that run in parallel:\n",
                  highlight=False)
    width = max(len(op.resource) + len(op.type) + 1 for op in plan.operations)
    for number, wave in enumerate(plan.waves, start=1):
        console.print(f"[bold]Wave {number}[/]", highlight=False)
        for op_id in wave:
            op = plan.operation(op_id)
            symbol, colour = SYMBOL[action_of[op_id]]
            address = f"{op.type}.{op.resource}".ljust(width)
            console.print(f"  [{colour}]{symbol}[/] {escape(address)}  {escape(op.operation):<14} "
                          f"[dim]{escape(op.from_state)} -> {escape(op.to_state)}  {escape('[' + op.controller + ']')}[/]",
                          highlight=False)
    if plan.placements:
        console.print("\n[bold]Placements[/]", highlight=False)
        for resource, target in plan.placements.items():
            console.print(f"  {escape(resource)} -> {escape(target)}", highlight=False)
    counts = plan.counts()
    console.print(
        f"\n[bold]Plan:[/] {counts['create']} to create, {counts['change']} to change, "
        f"{counts['delete']} to delete. {len(plan.operations)} operations in {len(plan.waves)} waves "
        f"(at most {plan.concurrency} at once); estimated {plan.makespan:g}s, critical path "
        f"{plan.critical_path:g}s.", highlight=False)
    status = plan.status if not plan.cost else (
        f"{plan.status}, cost " + ", ".join(f"{c.cost}@{c.priority}" for c in plan.cost))
    console.print(f"[dim]Solver: {status}; digest {plan.digest[:19]}...[/]", highlight=False)


def explanation(console: Console, expl: Explanation) -> None:
    console.print(f"[red bold]No plan exists:[/] {escape(expl.summary)}", highlight=False)
    for conflict in expl.conflicts:
        console.print(f"\n  [bold]{escape(conflict.policy)}[/] ({escape(conflict.location)})", highlight=False)
        if conflict.description:
            console.print(f"    {escape(conflict.description)}", highlight=False)
        console.print(f"    [dim]rule: {escape(conflict.rule)}[/]", highlight=False)
        if conflict.bindings:
            values = ", ".join(f"{k}={v}" for k, v in conflict.bindings)
            console.print(f"    violated for: {escape(values)}", highlight=False)
    if expl.cycle:
        console.print("\n  Cycle:", highlight=False)
        for node, rules in zip(expl.cycle, expl.cycle_rules, strict=True):
            console.print(f"    {escape(node)}  [dim]must come before the next, by {escape(', '.join(rules))}[/]",
                          highlight=False)
        console.print(f"    {escape(expl.cycle[0])}", highlight=False)
