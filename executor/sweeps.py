"""What-if sweeps: the baseline and many scenarios (planner/whatif.py ``sweep``), planned side by side.

Each scenario is a *job* of plain values (the project's files, the journal, the scenario, the
solver's limits), planned by :func:`plan_job` wherever it runs: in a local process pool
(:func:`run_local`), or as planning activities across Temporal workers
(``executor.temporal.client.sweep``). A job answers with a summary, not a plan (plans stay
where they are made): status, operation count, cost and placements, which :func:`compare`
sets against the baseline's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from domain.errors import OrdoError
from planner.core import Outcome, make_plan
from planner.slots import PlanSlots
from planner.whatif import Scenario

#: The most scenarios in one sweep (on Temporal, each is a pending activity; it allows 2,000).
MAX_JOBS = 1000


def jobs(project: Path, request: Path | None, inventory: Path | None, journal: Path | str | None,
         scenarios: list[Scenario], timeout: float | None, concurrency: int | None) -> list[dict[str, Any]]:
    """The baseline's job, then one per scenario."""
    if len(scenarios) + 1 > MAX_JOBS:
        raise OrdoError(f"a sweep of {len(scenarios)} scenarios: at most {MAX_JOBS - 1}")
    common = {"project": str(Path(project).resolve()), "request": str(request.resolve()) if request else None,
              "inventory": str(inventory.resolve()) if inventory else None,
              "journal": str(Path(journal).resolve()) if isinstance(journal, Path) else journal,
              "timeout": timeout, "concurrency": concurrency}
    return [{**common, "targets_down": [], "without_policies": []},
            *({**common, "targets_down": list(s.targets_down), "without_policies": list(s.without_policies)}
              for s in scenarios)]


def plan_job(job: dict[str, Any], plans: PlanSlots | None = None) -> dict[str, Any]:
    """One job planned: its summary (a scenario that names nothing known is an ``error`` row).
    ``plans``: the slots of a process that plans jobs side by side with others (a Temporal worker)."""
    from executor.runs import load_with_journal

    scenario = Scenario(targets_down=tuple(job["targets_down"]), without_policies=tuple(job["without_policies"]))
    described = "; ".join(scenario.describe()) or "baseline"
    project = load_with_journal(Path(job["project"]), Path(job["request"]) if job["request"] else None,
                                Path(job["inventory"]) if job["inventory"] else None, [], job["journal"])
    try:
        with plans.slot(project) if plans is not None else contextlib.nullcontext():
            outcome = make_plan(scenario.apply(project), timeout=job["timeout"], concurrency=job["concurrency"])
    except OrdoError as exc:
        return {"scenario": described, "status": "error", "error": str(exc)}
    return summary(described, outcome)


def summary(described: str, outcome: Outcome) -> dict[str, Any]:
    plan = outcome.plan
    if plan is None:
        return {"scenario": described, "status": outcome.status}
    return {"scenario": described, "status": outcome.status, "operations": len(plan.operations),
            "cost": [[c.priority, c.cost] for c in plan.cost], "placements": dict(plan.placements),
            "digest": plan.digest}


def run_local(batch: list[dict[str, Any]], workers: int | None = None) -> list[dict[str, Any]]:
    """The jobs planned in a pool of ``workers`` processes (default: one per CPU this process may
    use, its container's CPU quota counted: planner.machine), in order."""
    from planner import machine

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no thread or lock of ours forked
    with ProcessPoolExecutor(max_workers=min(workers or machine.cpus(), len(batch)),
                             mp_context=context) as pool:
        return list(pool.map(plan_job, batch))


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scenario's summary with what differs from the baseline (the first row): operations
    more or fewer, resources placed elsewhere."""
    base, out = rows[0], []
    for row in rows[1:]:
        row = dict(row)
        if "operations" in row and "operations" in base:
            row["operations_delta"] = row["operations"] - base["operations"]
            row["moved"] = sorted(r for r, t in row["placements"].items() if base["placements"].get(r) != t)
        out.append(row)
    return out
