"""What a host tells the run core (inputs) and what the core asks of the host (commands).

Plain values only (the plan aside, a ``planner.plan.Plan``): a host that runs
elsewhere (a Temporal workflow) can pass them through its own serialiser.
Times (``now``, ``until``) are seconds on the host's clock (the local host's
``time.monotonic()``, a workflow's ``workflow.now()``); the core only adds
and compares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.errors import OrdoError
from domain.model import RetryPolicy, WaitRule
from executor.core.event import Event

if TYPE_CHECKING:
    from planner.plan import Plan


class ExecutionError(OrdoError):
    """A run cannot start or continue (names what and why)."""


# --- what the host reads from the project for a plan ------------------------------

@dataclass(frozen=True)
class OpSpec:
    """One planned operation as its catalog says: seconds it may take, its retry policy, and what it
    waits for (``wait``; ``outputs`` it declares and ``secrets`` of its type, for what completes it)."""

    timeout: float
    retry: RetryPolicy = RetryPolicy()
    wait: WaitRule | None = None
    outputs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanSpec:
    """The limits a plan runs under and each operation's :class:`OpSpec` (by operation id)."""

    limit: int                                   # operations in flight at once
    ops: dict[str, OpSpec]
    controller_limits: dict[str, int] = field(default_factory=dict)
    guarded: bool = False                        # the project has runtime guards: ask (Admit) before dispatch
    max_replans: int = 3


# --- inputs ---------------------------------------------------------------------

@dataclass(frozen=True)
class Begin:
    """Start a new run with ``plan``; ``started`` is the data of its ``run-started`` event."""

    plan: Plan
    spec: PlanSpec
    started: dict[str, Any]
    now: float


@dataclass(frozen=True)
class Resumed:
    """A run read back from its journal is taken up again (``previous``: its status then).
    After a fallout the core plans again; otherwise it waits for :class:`Continue`. With
    ``rollback`` it plans, in rollback mode, back to the state before the run."""

    previous: str
    now: float
    rollback: bool = False
    #: Who takes the run up, where it is not the host that started it: "embedded" when this process
    #: carries on a run its Temporal workflow ended (kept in the ``resumed`` event: the run is no
    #: workflow's any more, and a crash of this process leaves it to be resumed here again).
    host: str = ""


@dataclass(frozen=True)
class Continue:
    """After :class:`Resumed`: the project as it is now; ``inputs_changed`` when the plan is stale;
    ``stop``: a stop asked before (a workflow handed on while it stopped): nothing new is dispatched."""

    spec: PlanSpec | None
    inputs_changed: bool
    now: float
    stop: str = ""


@dataclass(frozen=True)
class CallError:
    """A controller call failed (``executor.controllers.ControllerError`` as plain values)."""

    message: str
    transient: bool = False
    scope: str = "resource"
    code: str = ""
    applied: bool | None = None


@dataclass(frozen=True)
class Outcome:
    """What one :class:`Call` came to: outputs, or an error; ``observed``: found applied by observing."""

    token: int
    op: str
    outputs: dict[str, Any] | None = None
    error: CallError | None = None
    observed: bool = False
    seconds: float = 0.0

    @classmethod
    def refused(cls, token: int, op: str, why: str) -> Outcome:
        """A call its host did not send, its intent marked ``refused`` (an input is a secret known only
        by its fingerprint): it fails as a call refused by its controller would, nothing applied."""
        return cls(token, op, error=CallError(why, code="secret-unavailable", applied=False))


@dataclass(frozen=True)
class Completed:
    outcomes: list[Outcome]
    now: float


@dataclass(frozen=True)
class Tick:
    """Time passed (a :class:`Wait` ran out, or the host looked for an abort)."""

    now: float


@dataclass(frozen=True)
class Stop:
    """Dispatch nothing new, let the calls in flight finish, end the run with ``reason``
    (``interrupted``: Ctrl-C, ``aborted``: ``ordo abort``)."""

    reason: str
    now: float


@dataclass(frozen=True)
class Denial:
    """A guard held an operation of an :class:`Admit` back."""

    op: str
    guard: str
    data: dict[str, Any]          # the guard-denied event's data
    reason: str
    on_deny: str                  # wait | fail | replan
    retry_after: float            # wait: seconds before asking again
    on_change: bool = False       # wait: ask again as soon as an operation ends
    about_targets: bool = False
    target: str | None = None


@dataclass(frozen=True)
class Admitted:
    """The guards' answer to an :class:`Admit`: asked in order, up to the first denial that does not wait."""

    allowed: list[str]
    denied: list[Denial]
    now: float


@dataclass(frozen=True)
class Found:
    """What observing one resource of an :class:`Observe` told: its ``state`` (and ``target``), an
    ``error``, or neither (the controller could not tell); ``applied``: what the controller said of the
    call in doubt it was asked about by its key (None: not asked, or it could not tell)."""

    resource: str
    state: str | None = None
    target: str | None = None
    error: str | None = None
    applied: bool | None = None


@dataclass(frozen=True)
class Observed:
    found: list[Found]
    now: float


@dataclass(frozen=True)
class Arrived:
    """``event-received`` events the journal holds for the run (written by `ordo event` or the service),
    not yet applied: the events waiting operations wait for."""

    events: list[Event]
    now: float


@dataclass(frozen=True)
class Look:
    """What observing the resource of a waiting operation (:class:`Probe`) told: its ``state`` and
    ``attributes``, or an ``error``."""

    op: str
    state: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Probed:
    looks: list[Look]
    now: float


@dataclass(frozen=True)
class Planned:
    """The answer to :class:`Replan`: a new plan; ``snapshot``: resources it touches first (for rollback)."""

    plan: Plan
    spec: PlanSpec
    seconds: float
    snapshot: dict[str, dict[str, Any]]
    now: float


@dataclass(frozen=True)
class NoPlan:
    """The answer to :class:`Replan` when no plan exists (``explanation``: the planner's, as data)."""

    status: str
    explanation: dict[str, Any] | None
    seconds: float
    now: float


# --- commands ---------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """Write ``events`` to the journal in one transaction (the core has applied them to its state).
    ``step`` names the moment: planned, guarded, settled, observed, replanned, resumed, no-plan."""

    events: list[Event]
    step: str


@dataclass(frozen=True)
class Call:
    """One operation to carry out under ``key``; ``observe_first``: its effect is in doubt."""

    token: int
    op: str
    attempt: int
    key: str
    observe_first: bool
    timeout: float


@dataclass(frozen=True)
class Dispatch:
    """Write one ``intent`` per call (with its target and inputs, then :meth:`RunState.apply` them),
    then make the calls; each ends in an :class:`Outcome`."""

    calls: list[Call]


@dataclass(frozen=True)
class Abandon:
    """Calls given up on (no answer in time): their answers, if any come, are ignored."""

    tokens: list[int]


@dataclass(frozen=True)
class Admit:
    """Ask the runtime guards about these operations, in order; answer with :class:`Admitted`."""

    ops: list[str]


@dataclass(frozen=True)
class Concern:
    resource: str
    ops: list[str]                 # the failed or in-doubt operations on it
    controller: str | None = None  # None: the controller of its first operation's kind


@dataclass(frozen=True)
class Observe:
    """Ask the controllers what is true of these resources; answer with :class:`Observed`."""

    concerns: list[Concern]


@dataclass(frozen=True)
class Probe:
    """Observe the resources of these waiting operations (their wait polls); answer with :class:`Probed`."""

    ops: list[str]


@dataclass(frozen=True)
class Collect:
    """The waits of these operations for an event are past their deadline: the ``event-received``
    events the journal holds for the run, as :class:`Arrived` (none, if none came), before they fail.
    An event accepted up to the deadline (``ordo event`` and the service refuse one after it) is then
    taken, however long the host was busy (a slow observation) after the deadline passed."""

    ops: list[str]


@dataclass(frozen=True)
class Replan:
    """Plan again from the state now with what was learnt; answer :class:`Planned` or :class:`NoPlan`."""

    reason: str
    mode: str                                        # forward | rollback (toward ``snapshot``)
    failed: list[tuple[str, str]]
    refused: list[str]
    placements: dict[str, str]                       # the current plan's (stability)
    snapshot: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Nothing to do until a call completes or ``until`` (None: no timer is set)."""

    until: float | None


@dataclass(frozen=True)
class End:
    """End the run with ``status`` (complete, rolled_back, interrupted, aborted, failed, fallout)."""

    status: str
    reason: str = ""


Input = Begin | Resumed | Continue | Completed | Tick | Stop | Admitted | Observed | Planned | NoPlan | Arrived | Probed
Command = Record | Dispatch | Abandon | Admit | Observe | Replan | Wait | End | Probe | Collect
