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
import json
import multiprocessing
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import OrdoError
from domain.project import _locate, project_folder
from executor.temporal.wire import MAX_SWEEP_JOBS as MAX_JOBS
from planner.bounded import PlanningLimitError
from planner.core import Outcome, digest, load_policies, make_plan
from planner.slots import PlanSlots
from planner.whatif import Scenario

if TYPE_CHECKING:
    from domain.project import Project


def jobs(project: Path, request: Path | None, inventory: Path | None, journal: Path | str | None,
         scenarios: list[Scenario], timeout: float | None, concurrency: int | None) -> list[dict[str, Any]]:
    """The baseline's job, then one per scenario."""
    if len(scenarios) + 1 > MAX_JOBS:
        raise OrdoError(f"a sweep of {len(scenarios)} scenarios: at most {MAX_JOBS - 1}")
    folder = project_folder(project)[0]
    request, inventory = _locate(request, folder), _locate(inventory, folder)   # (as every command finds them)
    common = {"project": str(folder.resolve()),   # (the folder, as a worker serves it)
              "request": str(request.resolve()) if request else None,
              "inventory": str(inventory.resolve()) if inventory else None,
              "journal": str(Path(journal).resolve()) if isinstance(journal, Path) else journal,
              "timeout": timeout, "concurrency": concurrency}
    return [{**common, "targets_down": [], "without_policies": []},
            *({**common, "targets_down": list(s.targets_down), "without_policies": list(s.without_policies)}
              for s in scenarios)]


def plan_job(job: dict[str, Any], plans: PlanSlots | None = None) -> dict[str, Any]:
    """One job planned: its summary (a scenario that names nothing known is an ``error`` row).
    A scenario keeps the baseline's placements wherever that costs nothing, as ``ordo whatif`` does
    (otherwise a scenario that leaves a choice open, with no policy that prefers one target, shows
    resources "placed elsewhere" that nothing moves): the job's ``keep`` when it has one (a local
    sweep plans its baseline first), else those of the baseline this process planned for the same
    inputs (``_baseline``; a Temporal worker), planned here first if it has not. A baseline without
    a plan, or that failed, keeps nothing. ``plans``: the slots of a process that plans jobs side by
    side with others (a Temporal worker)."""
    scenario = Scenario(targets_down=tuple(job["targets_down"]), without_policies=tuple(job["without_policies"]))
    described = "; ".join(scenario.describe()) or "baseline"
    project = _load(job)
    if scenario.empty:
        return _baseline(project, job, plans)
    # planning reads the project, the scenario changes it: the baseline's comes first, from the same load
    keep = job["keep"] if "keep" in job else _baseline(project, job, plans).get("placements")
    try:
        outcome = _plan(scenario.apply(project), job, plans, keep=keep)
    except OrdoError as exc:
        return failed(described, exc)
    return summary(described, outcome)


def _load(job: dict[str, Any]) -> Project:
    from executor.runs import load_with_journal

    return load_with_journal(Path(job["project"]), Path(job["request"]) if job["request"] else None,
                             Path(job["inventory"]) if job["inventory"] else None, [], job["journal"])


def _plan(project: Project, job: dict[str, Any], plans: PlanSlots | None, **options: Any) -> Outcome:
    with plans.slot(project) if plans is not None else contextlib.nullcontext():
        return make_plan(project, timeout=job["timeout"], concurrency=job["concurrency"], **options)


#: The baselines' summaries this process planned (an error row too), newest last, by their inputs
#: (the plan's digest) and limits.
_BASELINES: OrderedDict[str, dict[str, Any]] = OrderedDict()
_BASELINES_KEPT = 4
_GUARD = threading.Lock()                       # _BASELINES and _PLANNING
_PLANNING: dict[str, threading.Lock] = {}       # held while a baseline is planned: once, not by every job


def _baseline(project: Project, job: dict[str, Any], plans: PlanSlots | None) -> dict[str, Any]:
    """The baseline's summary for ``project`` as it is now: planned once per process and inputs, and
    kept, failed or not. A plan is the same for the same inputs, so the jobs of one sweep keep the
    placements its baseline row shows, on any worker (unless a time limit cut the baseline's search
    short on one of them)."""
    try:
        program = load_policies(project)
    except OrdoError as exc:   # a policy that does not load: not kept (no digest), and quick to find again
        return {"scenario": "baseline", "status": "error", "error": str(exc)}
    key = json.dumps([digest(project, program)[0], job["timeout"], job["concurrency"]])
    with _GUARD:
        if key in _BASELINES:
            _BASELINES.move_to_end(key)
            return dict(_BASELINES[key])
        planning = _PLANNING.setdefault(key, threading.Lock())
    with planning:
        with _GUARD:
            if key in _BASELINES:   # planned by the job this one waited for
                return dict(_BASELINES[key])
        try:
            row = summary("baseline", _plan(project, job, plans, program=program))
        except OrdoError as exc:
            row = failed("baseline", exc)
        with _GUARD:
            _BASELINES[key] = row
            while len(_BASELINES) > _BASELINES_KEPT:
                _BASELINES.popitem(last=False)
            _PLANNING.pop(key, None)
        return dict(row)


def failed(described: str, exc: OrdoError) -> dict[str, Any]:
    """The row of a plan that failed: ``timeout`` when the time limit struck while it was grounded (as
    when it struck in the search, and as ``ordo plan`` exits for both), else ``error``."""
    limit = isinstance(exc, PlanningLimitError) and exc.kind == "time"
    return {"scenario": described, "status": "timeout" if limit else "error", "error": str(exc)}


def summary(described: str, outcome: Outcome) -> dict[str, Any]:
    plan = outcome.plan
    if plan is None:
        return {"scenario": described, "status": outcome.status}
    return {"scenario": described, "status": outcome.status, "operations": len(plan.operations),
            "cost": [c.model_dump(mode="json") for c in plan.cost], "placements": dict(plan.placements),  # as plan.json
            "digest": plan.digest}


def run_local(batch: list[dict[str, Any]], workers: int | None = None) -> list[dict[str, Any]]:
    """The jobs planned in a pool of ``workers`` processes (default: one per CPU this process may
    use, its container's CPU quota counted: planner.machine; at most two per CPU, since planning
    keeps a CPU busy: --jobs 100000 started a process per scenario, 67 on 2 CPUs), in order."""
    from planner import machine

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no thread or lock of ours forked
    cpus = machine.cpus()
    with ProcessPoolExecutor(max_workers=min(workers or cpus, 2 * cpus, len(batch)),
                             mp_context=context) as pool:
        # the baseline first: each scenario keeps its placements (plan_job), not each process its own
        base = pool.submit(plan_job, batch[0]).result()
        return [base, *pool.map(plan_job, [{**job, "keep": base.get("placements")} for job in batch[1:]])]


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
