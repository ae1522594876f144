"""The run core's messages as plain JSON values: what crosses Temporal's payloads.

Used on both sides (workflow and activities), so it imports nothing that does I/O.
A run is named by a *reference* (``Ref``: where its journal and project are, its
number, its options), never by its plan: the plan lives in the journal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from domain.limits import MOST_SECONDS
from domain.model import RetryPolicy
from executor.core import CallError, Denial, Event, Failure, Found, OpSpec, Outcome, PlanSpec, RunState
from executor.core.options import ON_FAILURE
from planner.plan import Plan

#: A run's reference: journal, project files, run number, options (all JSON values).
Ref = dict[str, Any]


def event_out(ev: Event) -> dict[str, Any]:
    return asdict(ev)


def event_in(data: dict[str, Any]) -> Event:
    return Event(**data)


def outcome_out(outcome: Outcome) -> dict[str, Any]:
    return asdict(outcome)


def outcome_in(data: dict[str, Any]) -> Outcome:
    error = data.get("error")
    return Outcome(**{**data, "error": CallError(**error) if error else None})


def denial_in(data: dict[str, Any]) -> Denial:
    return Denial(**data)


def found_in(data: dict[str, Any]) -> Found:
    return Found(**data)


def queue_for(controller: str, prefix: str) -> str:
    """The task queue of a controller's calls: workers next to that controller listen on it."""
    return f"{prefix}-{controller}"


def planning_queue(prefix: str) -> str:
    """The task queue of a sweep's scenarios: each worker on it plans as many at once as it has plan
    slots (planner/slots.py), and the rest wait in Temporal for any worker with one free, not in a
    worker's slots for the runs' steps. (No controller's queue: those are ``prefix-<name>``.)"""
    return f"{prefix}.planning"


# --- a plan and a run's state, as a workflow gets them ----------------------------------
# The plan's JSON (about 530 bytes per operation) stays in the journal: a workflow gets an
# outline of it (what the run core reads: operations, edges, groups, placements, and each
# operation's spec), in pages far below Temporal's 2 MiB payload limit.

#: Operations, and edges, per page of an outline.
PAGE_OPS = 5000
PAGE_EDGES = 20000
#: Calls a workflow has in flight at most (Temporal allows 2,000 pending activities).
MAX_IN_FLIGHT = 1000


class OutlineOp(NamedTuple):
    id: str
    controller: str
    duration: float
    from_state: str
    to_state: str


class OutlineEdge(NamedTuple):
    before: str
    after: str


class OutlineGroup(NamedTuple):
    name: str
    limit: int
    operations: tuple[str, ...]


@dataclass(frozen=True)
class Outline:
    """A plan as a workflow holds it: what the run core reads of a :class:`~planner.plan.Plan`, in plain
    tuples (a workflow task must not take seconds: pydantic models of 30,000 operations would). Its
    JSON is in the journal, not here."""

    digest: str
    status: str
    placements: dict[str, str]
    operations: tuple[OutlineOp, ...]
    edges: tuple[OutlineEdge, ...]
    groups: tuple[OutlineGroup, ...]

    def to_json(self) -> str:
        return ""


def outline_out(plan: Plan, spec: PlanSpec) -> dict[str, Any]:
    """The outline of ``plan``: its ``head`` (sizes, placements, groups, limits, the distinct operation
    specs), its ``ops`` ``[id, controller, duration, from, to, spec]`` (spec: index in the head's table,
    -1: none) and its ``edges`` ``[before, after]`` (operation indices); a workflow gets the head, then
    pages of the rest."""
    index = {op.id: i for i, op in enumerate(plan.operations)}
    table: dict[Any, int] = {}
    specs = []
    for o in spec.ops.values():
        if o not in table:
            table[o] = len(specs)
            specs.append(asdict(o))
    head = {"digest": plan.digest, "status": plan.status, "placements": dict(plan.placements),
            "operations": len(plan.operations), "edges": len(plan.edges),
            "groups": [[g.name, g.limit, [index[o] for o in g.operations]] for g in plan.groups],
            "specs": specs, "limit": min(spec.limit, MAX_IN_FLIGHT),
            "controller_limits": dict(spec.controller_limits), "guarded": spec.guarded,
            "max_replans": spec.max_replans}
    ops = [[op.id, op.controller, op.duration, op.from_state, op.to_state,
            table[spec.ops[op.id]] if op.id in spec.ops else -1] for op in plan.operations]
    return {"head": head, "ops": ops, "edges": [[index[e.before], index[e.after]] for e in plan.edges]}


def outline_page(outline: dict[str, Any], part: str, start: int) -> list[list[Any]]:
    """A page of an outline's ``ops`` or ``edges``, from ``start``."""
    return outline[part][start:start + (PAGE_EDGES if part == "edges" else PAGE_OPS)]


def outline_in(head: dict[str, Any], ops: list[list[Any]], edges: list[list[int]]) -> tuple[Outline, PlanSpec]:
    """The outline and the plan's spec, from the head and every page (in order)."""
    specs = [OpSpec(timeout=d["timeout"], retry=RetryPolicy(**d["retry"])) for d in head["specs"]]
    operations = tuple(OutlineOp(*row[:5]) for row in ops)
    plan = Outline(digest=head["digest"], status=head["status"], placements=dict(head["placements"]),
                   operations=operations,
                   edges=tuple(OutlineEdge(operations[a].id, operations[b].id) for a, b in edges),
                   groups=tuple(OutlineGroup(name, limit, tuple(operations[i].id for i in idx))
                                for name, limit, idx in head["groups"]))
    spec = PlanSpec(limit=head["limit"], ops={row[0]: specs[row[5]] for row in ops if row[5] >= 0},
                    controller_limits=dict(head["controller_limits"]), guarded=head["guarded"],
                    max_replans=head["max_replans"])
    return plan, spec


def state_out(rs: RunState) -> dict[str, Any]:
    """What a workflow continued as new needs of the run's state (read from the journal by a worker):
    done operations as indices into the plan, the rest of :class:`RunState` for operations not done.
    Outputs, resources touched, the operations the run carried out (``ran``) and the snapshot stay in the
    journal (activities read them there)."""
    ops = [op.id for op in rs.plan.operations] if rs.plan else []
    open_ = [oid for oid in ops if oid not in rs.done]
    return {"seq": rs.seq, "plan_no": rs.plan_no, "done": [i for i, oid in enumerate(ops) if oid in rs.done],
            "attempts": {o: rs.attempts[o] for o in open_ if o in rs.attempts},
            "in_doubt": sorted(rs.in_doubt), "keys": {o: rs.keys[o] for o in sorted(rs.in_doubt) if o in rs.keys},
            "targets": {o: rs.targets[o] for o in open_ if o in rs.targets}, "pending_replan": rs.pending_replan,
            "pending_mode": rs.pending_mode, "failed": sorted(rs.failed), "refused": sorted(rs.refused),
            "failures": [asdict(f) for f in rs.failures],
            "replans": rs.replans, "replanned": rs.replanned, "mode": rs.mode, "denied": sorted(rs.denied),
            "ended": rs.ended, "abort_seq": rs.abort_seq}


def state_in(run: int, data: dict[str, Any], plan: Outline | None) -> RunState:
    ops = plan.operations if plan is not None else ()
    return RunState(run=run, seq=data["seq"], plan=plan, plan_no=data["plan_no"],
                    done={ops[i].id for i in data["done"]}, attempts=dict(data["attempts"]),
                    in_doubt=set(data["in_doubt"]), keys=dict(data["keys"]), targets=dict(data["targets"]),
                    pending_replan=data["pending_replan"], pending_mode=data.get("pending_mode"),
                    failed={tuple(f) for f in data["failed"]},
                    refused=set(data["refused"]), failures=[Failure(**f) for f in data["failures"]],
                    replans=data["replans"], replanned=data.get("replanned", data["replans"]), mode=data["mode"],
                    denied={tuple(d) for d in data["denied"]},
                    ended=data["ended"], abort_seq=data["abort_seq"])  # an outline serves as the plan


# --- what a workflow is started with -------------------------------------------------------
# Anyone who may start workflows in the namespace chooses a workflow's input: one that is not what
# ordo's client sends fails the workflow at once, saying why (raised in the workflow, a Python error
# failed its first task again and again, and the workflow stayed running).

#: The type of the failure of a workflow, or an activity, whose inputs are refused: not retried.
INPUTS = "ordo-inputs"
#: A run's number, at most: the largest the journal's databases store (a 64-bit integer).
MAX_RUN = 2**63 - 1
#: Characters in a path, digest or id of a reference, at most; in a task queue's name (as the CLI's).
MAX_REF_TEXT, MAX_QUEUE_NAME = 4096, 200
#: Policy files a run names beside the project's, at most.
MAX_REF_POLICIES = 1000
#: The most scenarios in one sweep, baseline included (on Temporal, each is a pending activity; it allows
#: 2,000): ``executor.sweeps`` makes no more jobs, a sweep workflow takes no more.
MAX_SWEEP_JOBS = 1000


def _text(value: Any, most: int = MAX_REF_TEXT) -> bool:
    """A text of 1 to ``most`` characters, no NUL (no path has one)."""
    return isinstance(value, str) and 0 < len(value) <= most and "\0" not in value


def _null_or_text(data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """What is wrong with the first of ``keys`` whose value is neither null nor a text (``_text``)."""
    for key in keys:
        if data.get(key) is not None and not _text(data[key]):
            return f"'{key}' must be null or a text of 1-{MAX_REF_TEXT:,} characters"
    return None


def _count(value: Any, least: int) -> bool:
    return type(value) is int and least <= value <= MAX_RUN


def queue_problem(queue: Any) -> str | None:
    """What is wrong with a task queue's name as a workflow's input names it (None: nothing)."""
    if not _text(queue, MAX_QUEUE_NAME) or not queue.isprintable() or not queue.strip():
        return f"the task queue must be a name of 1-{MAX_QUEUE_NAME} printable characters, not only spaces"
    return None


def ref_problem(ref: Any) -> str | None:
    """What is wrong with a run workflow's input as the reference ordo's client makes (``reference``)."""
    if not isinstance(ref, dict):
        return f"a run's reference is a JSON object, not {type(ref).__name__}"
    for key in ("journal", "journal_id", "root", "digest"):
        if not _text(ref.get(key)):
            return f"'{key}' must be a text of 1-{MAX_REF_TEXT:,} characters"
    if (problem := _null_or_text(ref, ("request", "inventory"))) is not None:
        return problem
    policies = ref.get("policies")
    if not isinstance(policies, list) or len(policies) > MAX_REF_POLICIES or not all(_text(p) for p in policies):
        return f"'policies' must be a list of at most {MAX_REF_POLICIES:,} paths"
    if not _count(ref.get("run"), 1):
        return f"'run' must be a run's number, 1 to {MAX_RUN}"
    if not _count(ref.get("continue_every"), 1):
        return "'continue_every' must be a whole number of operations, at least 1"
    problem = queue_problem(ref.get("queue"))
    if problem is not None:
        return problem
    if ref.get("stop") not in (None, "", "aborted", "interrupted") or ref.get("carried") not in (None, False, True):
        return "'stop' must be aborted or interrupted, 'carried' true or false"
    return _options_problem(ref.get("options"))


#: The bound of a time limit before 7 December (domain.limits.MOST_SECONDS since): a workflow an older
#: client started, replayed or continued as new, is taken, its limit cut to MOST_SECONDS where it is used.
EARLIER_MOST_SECONDS = 1e7


def _options_problem(options: Any) -> str | None:
    """What is wrong with a reference's ``options`` (``ApplyOptions.as_dict``)."""
    if not isinstance(options, dict):
        return "'options' must be a JSON object"
    if options.get("on_failure") not in ON_FAILURE:
        return f"'options.on_failure' must be one of {', '.join(ON_FAILURE)}"
    if options.get("concurrency") is not None and not _count(options["concurrency"], 1):
        return "'options.concurrency' must be null or a whole number, at least 1"
    if options.get("max_replans") is not None and not _count(options["max_replans"], 0):
        return "'options.max_replans' must be null or a whole number, at least 0"
    timeout = options.get("default_timeout")
    if type(timeout) not in (int, float) or not 0 < timeout <= EARLIER_MOST_SECONDS:
        return f"'options.default_timeout' must be a number of seconds, more than 0 and at most {MOST_SECONDS:,}"
    if options.get("simulation") is not None and not isinstance(options["simulation"], dict):
        return "'options.simulation' must be null or a JSON object"
    return None


#: The fields of a sweep's job (``executor.sweeps.jobs``), all of them.
JOB_FIELDS = frozenset({"project", "request", "inventory", "journal", "timeout", "concurrency", "targets_down",
                        "without_policies"})


def job_problem(job: Any) -> str | None:
    """What is wrong with one job of a sweep's input as ordo's client makes it (``executor.sweeps.jobs``)."""
    if not isinstance(job, dict) or set(job) != JOB_FIELDS:
        return f"a job is a JSON object of exactly {', '.join(sorted(JOB_FIELDS))}"
    if not _text(job["project"]):
        return f"'project' must be a text of 1-{MAX_REF_TEXT:,} characters"
    if (problem := _null_or_text(job, ("request", "inventory", "journal"))) is not None:
        return problem
    timeout = job["timeout"]
    if timeout is not None and (type(timeout) not in (int, float) or not 0 < timeout <= MOST_SECONDS):
        return f"'timeout' must be null or a number of seconds, more than 0 and at most {MOST_SECONDS:,}"
    if job["concurrency"] is not None and not _count(job["concurrency"], 1):
        return "'concurrency' must be null or a whole number, at least 1"
    for key in ("targets_down", "without_policies"):
        names = job[key]
        if not isinstance(names, list) or len(names) > MAX_REF_POLICIES or not all(_text(n, 200) for n in names):
            return f"'{key}' must be a list of at most {MAX_REF_POLICIES:,} names"
    return None
