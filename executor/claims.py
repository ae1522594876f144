"""What a run holds while it goes on: the resources it works on and the targets it adds load to.

Decided here once, for a run's start (the service: executor/runs.py's callers) and for each re-plan
of a run that holds claims (executor/engine.py, on either host): runs on disjoint claims go side by
side on one journal (executor.journal: the claims table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from domain.project import Project
from executor.journal import claim_target, target_claim
from planner.core import Outcome
from planner.plan import Plan


def run_claims(project: Project, plan: Plan) -> list[str]:
    """What a run of ``plan`` claims: the resources its request names and those its operations touch,
    and the targets it adds load to (``executor.journal.target_claim``): where it places a resource it
    creates, changes or moves, or the whole that resource is part of is placed. Two runs placing on one
    target at once would each plan with the capacity the other takes, and could break an
    anti-affinity between their resources; a policy that couples resources on different targets
    (a zone's) is not covered."""
    model = project.model
    names = {name for name, res in model.resources.items() if res.requested}
    names.update(op.resource for op in plan.operations)
    targets = set()
    for change in plan.resource_changes:
        if set(change.actions) <= {"delete", "run"}:   # takes nothing more anywhere
            continue
        node: str | None = change.resource
        for _ in range(len(model.resources) + 1):   # up the part_of chain to the placed whole
            res = model.resources.get(node) if node is not None else None
            where = plan.placements.get(node) if node is not None else None
            where = where or (res.placement if res is not None else None)
            if where is not None or res is None:
                break
            node = res.part_of
        if where is not None:
            targets.add(target_claim(where))
    return sorted(names | targets)


def plan_beside(project: Project, make: Callable[[], Outcome], held: Mapping[str, int],
                ) -> tuple[Outcome, Outcome | None]:
    """``make()``, the plan of ``project``, placing nothing new on the targets other runs add load to
    now (``held``: target -> run; the planner's ``claimed_elsewhere``): a target free of them is taken
    rather than one a run holds, which its claims would refuse. When there is no plan so (status
    no_plan: a timeout proves nothing), the plan is made again as if they were free, and returned
    with the one that kept off them: a plan then works on targets the runs hold (their claims tell
    which); none, that there is no plan at all. The one decision of where a plan beside other runs
    may go: a service's submission and a re-plan of a run that holds claims (executor/engine.py)
    make it here."""
    project.model.claimed_elsewhere = set(held)
    outcome = make()
    if outcome.status != "no_plan" or not held:
        return outcome, None
    project.model.claimed_elsewhere = set()
    return make(), outcome


def targets_only(refused: Mapping[str, int]) -> dict[str, int] | None:
    """The targets of the claims another run holds (claim -> that run, as the journal refuses them),
    when every one is a target's: a plan may go beside them; None when one is a resource's, or none is
    named (a run holds the whole journal)."""
    targets = {target: run for claim, run in refused.items() if (target := claim_target(claim)) is not None}
    return targets if refused and len(targets) == len(refused) else None
