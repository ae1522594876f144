"""A what-if sweep as a Temporal workflow: one planning activity per scenario (``executor.sweeps``
jobs), spread over the workers of the planning queue (``wire.planning_queue``), the summaries in
order. Planning (clingo) runs in the activities only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from executor.temporal.wire import INPUTS, MAX_SWEEP_JOBS, job_problem, planning_queue, queue_problem

SWEEP = "ordo-sweep"
_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                     maximum_attempts=5)


@workflow.defn(name=SWEEP)
class SweepWorkflow:
    @workflow.run
    async def run(self, queue: Any, jobs: Any) -> list[dict[str, Any]]:   # (Any: checked here, not decoded)
        problem = queue_problem(queue)
        if problem is None and (not isinstance(jobs, list) or not 0 < len(jobs) <= MAX_SWEEP_JOBS):
            problem = f"the jobs must be a list of 1-{MAX_SWEEP_JOBS:,} JSON objects"
        if problem is None:   # (a job of {} printed a KeyError's traceback in the worker's log, five times)
            problem = next((f"job {i}: {why}" for i, job in enumerate(jobs) if (why := job_problem(job))), None)
        if problem is not None:   # ordo's client sends none such: someone else started this workflow
            raise ApplicationError(f"not a sweep's input: {problem}", type=INPUTS, non_retryable=True)
        return list(await asyncio.gather(*(workflow.execute_activity(
            "ordo.whatif", job, task_queue=planning_queue(queue), start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=3), retry_policy=_RETRY) for job in jobs)))
