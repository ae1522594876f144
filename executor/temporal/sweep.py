"""A what-if sweep as a Temporal workflow: one planning activity per scenario (``executor.sweeps``
jobs), spread over the workers of the planning queue (``wire.planning_queue``), the summaries in
order. Planning (clingo) runs in the activities only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from executor.temporal.wire import planning_queue

SWEEP = "ordo-sweep"
_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                     maximum_attempts=5)


@workflow.defn(name=SWEEP)
class SweepWorkflow:
    @workflow.run
    async def run(self, queue: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(workflow.execute_activity(
            "ordo.whatif", job, task_queue=planning_queue(queue), start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=3), retry_policy=_RETRY) for job in jobs)))
