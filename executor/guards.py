"""The guard engine: runtime guards decided with pyDatalog just before each dispatch.

One :class:`GuardEngine` per run. It keeps a live fact base that the
executor updates as the run goes (operations started and finished, resources
present, per-guard counters) and answers :meth:`GuardEngine.check` for an
operation about to be dispatched with a :class:`Decision`. The clock is an
argument (``now``, epoch seconds; ``time.time()`` by default), so tests and
benchmarks control time.

The rules (:data:`RULES`) are fixed Datalog; a guard file only adds facts
(``guard/1``, ``sel/4``, ``bound/2``, ``blocked/3``, ``period/3``, ``daily/3``).
pyDatalog evaluates top-down and tables nothing across queries, so what the
hot path reads is kept small and indexed: when an operation starts, one
Datalog query (``matches/7``, memoised per distinct operation signature: it
reads only the guards' own facts) says which guards select it, and the engine
asserts the facts those guards count (``hit/4`` for rate limits,
``blocking/4`` for exclusions, ``instances/3`` counters for instance
counts). A decision is then one point query per guard that applies, bound on
the guard's name and key, over at most a few facts. Times are whole
milliseconds: pyDatalog rounds floats to 8 significant digits.

Isolation: pyDatalog keeps its knowledge base in ``Logic.tl.logic``, one per
thread, and ``Logic(logic)`` installs a shallow *copy* that shares predicate
tables with the original. Each engine therefore builds its own fresh
``Logic()`` once and, around each of its calls, puts that object itself in
the current thread's slot and then restores whatever was there (or nothing).
Two engines, in one thread or several, never see each other's facts, and
code elsewhere using pyDatalog's default logic is left alone.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyDatalog import pyEngine, pyParser
from pyDatalog.Logic import Logic

from domain.guards import SELECTOR_FIELDS, Guard

#: The rules, loaded into each engine's own Logic. Facts (asserted by the engine):
#:   guard(G)                      a guard, by name
#:   sel(G, S, F, V) / anyval(G, S, F)   selector S ('a': what it holds back, 'b': exclusive's `while`)
#:                                 of G lists value V for field F / does not constrain F
#:   bound(G, M)                   max of a max_instances guard, min of a min_instances one
#:   blocked(G, F, V)              block_list: F in resource|type|target, V listed
#:   period(G, Start, End)         freeze/window: absolute, epoch ms, [Start, End)
#:   daily(G, Start, End)          freeze/window: ms after midnight UTC, [Start, End)
#:   started(Ticket, Op, Res, Type, Operation, Target, Controller, T)   each dispatch (T epoch ms)
#:   finished(Ticket, T)           its end (success or failure)
#:   present(Res, Type, Parent)    resources of a counted type that exist (not in their initial state)
#:   hit(G, Key, Ticket, T)        a start that rate limit G counts, under its `per` key
#:   blocking(G, Key, Ticket, Op)  an operation in flight that exclusive guard G's `while` selects
#:   instances(G, Key, N)          resources of G's types present or being created (not being deleted)
RULES = """
ok(G, S, F, V) <= sel(G, S, F, V)
ok(G, S, F, V) <= anyval(G, S, F)
matches(G, S, Opn, Ty, Res, Tg, Ctl) <= (guard(G) & ok(G, S, 'operation', Opn) & ok(G, S, 'type', Ty)
                                         & ok(G, S, 'resource', Res) & ok(G, S, 'target', Tg)
                                         & ok(G, S, 'controller', Ctl))
recent(G, K, Cut, Ticket, T) <= hit(G, K, Ticket, T) & (T > Cut)
busy(G, K, Ticket, Op) <= blocking(G, K, Ticket, Op)
over_max(G, K, N) <= instances(G, K, N) & bound(G, M) & (N >= M)
under_min(G, K, N) <= instances(G, K, N) & bound(G, M) & (N <= M)
listed(G, Res, Ty, Tg, 'resource') <= blocked(G, 'resource', Res)
listed(G, Res, Ty, Tg, 'type') <= blocked(G, 'type', Ty)
listed(G, Res, Ty, Tg, 'target') <= blocked(G, 'target', Tg)
inside(G, Now, Tod) <= period(G, Start, End) & (Start <= Now) & (Now < End)
inside(G, Now, Tod) <= daily(G, Start, End) & (Start <= Tod) & (Tod < End)
"""

DAY_MS = 86_400_000
#: Seconds before a held operation is checked again when nothing finishes and the guard does not say.
DEFAULT_RETRY = 5.0
_ABSENT = object()
_FRESH = pyEngine.Fresh_var.tl  # pyDatalog's per-thread counter of fresh variables


@dataclass(frozen=True)
class OpInfo:
    """What a guard may look at: an operation about to run."""

    id: str                       # the plan's operation id (vfw-base/create)
    resource: str
    type: str
    operation: str
    controller: str
    target: str | None = None
    parent: str | None = None     # the resource it is part of
    creates: bool = False         # it leaves the lifecycle's initial state
    deletes: bool = False         # it returns to it


@dataclass(frozen=True)
class Decision:
    allowed: bool
    guard: str = ""
    kind: str = ""
    reason: str = ""
    on_deny: str = "wait"
    retry_after: float | None = None   # wait: seconds before checking again
    about_targets: bool = False        # the guard is about where it goes (a re-plan may place it elsewhere)
    where: str = ""                    # file:line of the guard

    def as_data(self) -> dict[str, Any]:
        """The journal's `guard-denied` data."""
        return {"guard": self.guard, "guard_kind": self.kind, "reason": self.reason, "on_deny": self.on_deny,
                "retry_after": None if self.retry_after is None else round(self.retry_after, 3),
                "where": self.where}


ALLOW = Decision(allowed=True)


class GuardEngine:
    """Runtime guards over a live fact base: for one run, or shared by the runs a server carries
    out side by side (``executor/shared.py``), which then count against the same budgets."""

    def __init__(self, guards: Sequence[Guard], clock: Callable[[], float] = time.time) -> None:
        self.guards = list(guards)
        self.clock = clock
        self._lock = threading.RLock()
        self._tickets = itertools.count(1)
        self._facts = 0
        self._applies: dict[tuple[str, ...], tuple[tuple[Guard, ...], tuple[Guard, ...]]] = {}
        constrained = {f for g in self.guards for s in (g.match, g.blocker) if s for f in s.constrained()}
        self._free = tuple(f not in constrained for f in SELECTOR_FIELDS)
        self._windows = {g.name: int(round(g.seconds * 1000)) for g in self.guards if g.kind == "rate_limit"}
        self._retention = max(self._windows.values(), default=0)
        self._counted = [g for g in self.guards if g.kind in ("max_instances", "min_instances")]
        self._counted_types = {t for g in self._counted for t in g.match.type}
        self._hits: dict[str, collections.deque] = {name: collections.deque() for name in self._windows}
        self._latest = 0   # the latest time (ms) a hit was counted at: now is later, unless the clock went back
        self._running: dict[int, tuple[Any, list[Any], list[tuple[str, str, int]], OpInfo]] = {}
        self._done: collections.deque = collections.deque()   # (finished ms, ticket), oldest first
        self._logged: dict[int, tuple[Any, Any]] = {}          # ticket -> started and finished facts
        self._counts: dict[tuple[str, str], int] = {}
        self._present: dict[str, Any] = {}                    # resource -> its present fact
        self._parents: dict[str, tuple[str, str | None]] = {}  # resource -> (type, part_of)
        previous = getattr(Logic.tl, "logic", _ABSENT)
        try:
            self._logic = Logic()  # a fresh knowledge base, installed in this thread for now
            pyParser.load(RULES)
            for g in self.guards:
                self._assert("guard", g.name)
                self._selector(g.name, "a", g.match)
                if g.blocker is not None:
                    self._selector(g.name, "b", g.blocker)
                if g.kind == "max_instances":
                    self._assert("bound", g.name, g.max)
                elif g.kind == "min_instances":
                    self._assert("bound", g.name, g.min)
                elif g.kind == "block_list":
                    for field, values in (("resource", g.block_resources), ("type", g.block_types),
                                          ("target", g.block_targets)):
                        for value in values:
                            self._assert("blocked", g.name, field, value)
                elif g.kind in ("freeze", "window"):
                    for start, end in g.periods:
                        self._assert("period", g.name, _ms(start), _ms(end))
                    for start, end in g.daily:
                        self._assert("daily", g.name, start * 1000, end * 1000)
        finally:
            _restore(previous)

    # --- what the executor tells it ----------------------------------------------------

    def set_resources(self, resources: Iterable[tuple[str, str, str | None, bool]]) -> None:
        """Every resource as (name, type, part_of, present); counters start again from these.

        Called when a plan starts (nothing in flight): the resources as they are now.
        """
        with self._lock:
            previous = self._enter()
            try:
                self._parents = {name: (tname, parent) for name, tname, parent, _ in resources}
                present = {name for name, _, _, here in resources if here} if self._counted else set()
                for fact in self._present.values():
                    self._retract(fact)
                self._present = {}
                for (gname, key), n in self._counts.items():
                    self._retract(_fact("instances", gname, key, n))
                self._counts = {}
                for name in sorted(present):
                    tname, parent = self._parents[name]
                    self._count_present(name, tname, parent)
            finally:
                _restore(previous)

    def add_resources(self, resources: Iterable[tuple[str, str, str | None, bool]]) -> None:
        """Like :meth:`set_resources` for the resources not known yet, leaving the others as counted:
        for an engine shared by runs side by side, whose operations in flight it keeps counting."""
        with self._lock:
            new = [r for r in resources if r[0] not in self._parents]
            previous = self._enter()
            try:
                for name, tname, parent, here in sorted(new, key=lambda r: r[0]):
                    self._parents[name] = (tname, parent)
                    if here and self._counted:
                        self._count_present(name, tname, parent)
            finally:
                _restore(previous)

    def _count_present(self, name: str, tname: str, parent: str | None) -> None:
        """A resource that exists: asserted present and counted by each instance-count guard of its type."""
        if tname in self._counted_types:
            self._present[name] = self._assert("present", name, tname, parent or "")
            for g in self._counted:
                if tname in g.match.type:
                    self._count(g.name, self._key(g, name, tname, parent, None, None), +1)

    def check(self, op: OpInfo, now: float | None = None) -> Decision:
        """May ``op`` be dispatched now? The first guard (in file order) that denies decides."""
        a_side = self._selected(op)[0]
        if not a_side:
            return ALLOW
        now = self.clock() if now is None else now
        now_ms = _ms(now)
        with self._lock:
            previous = self._enter()
            try:
                self._set_back(now_ms)
                for g in a_side:
                    decision = self._decide(g, op, now, now_ms)
                    if decision is not None:
                        return decision
            finally:
                _restore(previous)
        return ALLOW

    def started(self, op: OpInfo, now: float | None = None) -> int:
        """``op`` was dispatched: record it. Returns the ticket to pass to :meth:`finished`."""
        now_ms = _ms(self.clock() if now is None else now)
        a_side, b_side = self._selected(op)
        ticket = next(self._tickets)
        with self._lock:
            previous = self._enter()
            try:
                self._expire(now_ms)
                started = self._assert("started", ticket, op.id, op.resource, op.type, op.operation,
                                       op.target or "", op.controller, now_ms)
                for g in a_side:
                    if g.kind == "rate_limit":
                        key = self._key_of(g, op)
                        self._hits[g.name].append((now_ms, self._assert("hit", g.name, key, ticket, now_ms),
                                                   key, ticket))
                        self._latest = max(self._latest, now_ms)
                blocking = [self._assert("blocking", g.name, self._key_of(g, op), ticket, op.id) for g in b_side]
                reserved = []
                if (op.creates or op.deletes) and op.type in self._counted_types:
                    delta = 1 if op.creates else -1
                    for g in self._counted:
                        if op.type in g.match.type:
                            key = self._key(g, op.resource, op.type, op.parent, op.target, op.controller)
                            self._count(g.name, key, delta)
                            reserved.append((g.name, key, delta))
                self._running[ticket] = (started, blocking, reserved, op)
            finally:
                _restore(previous)
        return ticket

    def admit(self, op: OpInfo, now: float | None = None) -> tuple[Decision, int | None]:
        """check() and, when allowed, started(): (decision, ticket or None), as one step under the
        engine's lock: the runs of a server share it, and two of them both passing the check before
        either was counted went past the limit together (a review's)."""
        now = self.clock() if now is None else now
        with self._lock:
            decision = self.check(op, now)
            return decision, (self.started(op, now) if decision.allowed else None)

    def finished(self, ticket: int, ok: bool, now: float | None = None) -> None:
        """The dispatch ``ticket`` ended: ``ok`` if the operation was applied."""
        now_ms = _ms(self.clock() if now is None else now)
        with self._lock:
            entry = self._running.pop(ticket, None)
            if entry is None:
                return
            started, blocking, reserved, op = entry
            previous = self._enter()
            try:
                for fact in blocking:
                    self._retract(fact)
                if not ok:
                    for gname, key, delta in reserved:
                        self._count(gname, key, -delta)
                elif op.type in self._counted_types:
                    if op.creates and op.resource not in self._present:
                        self._present[op.resource] = self._assert("present", op.resource, op.type, op.parent or "")
                    elif op.deletes and op.resource in self._present:
                        self._retract(self._present.pop(op.resource))
                done = self._assert("finished", ticket, now_ms)
                self._logged[ticket] = (started, done)
                self._done.append((now_ms, ticket))
                self._expire(now_ms)
            finally:
                _restore(previous)

    @property
    def facts(self) -> int:
        """Facts in the live base now (the guards' own included)."""
        return self._facts

    def in_flight(self) -> int:
        return len(self._running)

    # --- deciding ------------------------------------------------------------------

    def _decide(self, g: Guard, op: OpInfo, now: float, now_ms: int) -> Decision | None:
        kind = g.kind
        name = pyEngine.Const(g.name)
        if kind == "rate_limit":
            key = self._key_of(g, op)
            window = self._windows[g.name]
            found = _ask("recent", name, key, now_ms - window, _V1, _V2)
            if len(found) < (g.max or 0):
                return None
            oldest = min(row[4] for row in found)
            scope = _scope(g, key)
            return self._deny(g, f"{len(found)} selected operations started in the last {g.seconds:g} s{scope} "
                                 f"(at most {g.max})", (oldest + window - now_ms) / 1000)
        if kind == "max_instances":
            if not op.creates:
                return None
            key = self._key(g, op.resource, op.type, op.parent, op.target, op.controller)
            if (g.name, key) not in self._counts:
                self._count(g.name, key, 0)  # none yet: a fact too (max 0 denies the first)
            found = _ask("over_max", name, key, _V1)
            if not found:
                return None
            n = found[0][2]
            return self._deny(g, f"{n} {_types(g)}{_scope(g, key)} present or being created: creating "
                                 f"{op.resource} would make {n + 1}, above max {g.max}", None)
        if kind == "min_instances":
            if not op.deletes:
                return None
            key = self._key(g, op.resource, op.type, op.parent, op.target, op.controller)
            found = _ask("under_min", name, key, _V1)
            if not found:
                return None
            n = found[0][2]
            return self._deny(g, f"{n} {_types(g)}{_scope(g, key)} left: deleting {op.resource} would leave "
                                 f"{max(n - 1, 0)}, below min {g.min}", None)
        if kind == "block_list":
            found = _ask("listed", name, op.resource, op.type, op.target or "", _V1)
            if not found:
                return None
            why = sorted(row[4] for row in found)[0]
            value = {"resource": op.resource, "type": op.type, "target": op.target}[why]
            return self._deny(g, f"{why} '{value}' is on the block list", None)
        if kind in ("freeze", "window"):
            inside = bool(_ask("inside", name, now_ms, now_ms % DAY_MS))
            if kind == "freeze" and inside:
                until = _until_outside(g, now)
                return self._deny(g, f"frozen until {_when(now + until)}", until)
            if kind == "window" and not inside:
                opens = _until_inside(g, now)
                if opens is None:
                    return self._deny(g, "outside the window, which does not open again", None, closed=True)
                return self._deny(g, f"outside the window (it opens at {_when(now + opens)})", opens)
            return None
        if kind == "exclusive":
            key = self._key_of(g, op)
            found = _ask("busy", name, key, _V1, _V2)
            if not found:
                return None
            blocker = sorted(row[3] for row in found)[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            return self._deny(g, f"{blocker} is in flight{more}{_scope(g, key, same=True)}", None)
        return None

    def _deny(self, g: Guard, reason: str, computed: float | None, closed: bool = False) -> Decision:
        on_deny = g.on_deny
        if on_deny == "wait" and closed:
            on_deny = "fail"  # waiting can never succeed
        retry = None
        if on_deny == "wait":
            retry = g.retry_after if g.retry_after is not None else computed
            retry = DEFAULT_RETRY if retry is None else max(retry, 0.001)
        return Decision(allowed=False, guard=g.name, kind=g.kind, reason=reason, on_deny=on_deny,
                        retry_after=retry, about_targets=g.about_targets, where=g.where)

    # --- selectors and keys -----------------------------------------------------------

    def _selected(self, op: OpInfo) -> tuple[tuple[Guard, ...], tuple[Guard, ...]]:
        """Guards whose selector picks ``op``: (those that may hold it back, exclusives it blocks)."""
        values = (op.operation, op.type, op.resource, op.target or "", op.controller)
        key = tuple("*" if free else v for free, v in zip(self._free, values, strict=True))
        found = self._applies.get(key)
        if found is None:
            with self._lock:
                previous = self._enter()
                try:
                    rows = _ask("matches", _V1, _V2, *key)
                finally:
                    _restore(previous)
            picked = {(row[0], row[1]) for row in rows}
            found = (tuple(g for g in self.guards if (g.name, "a") in picked),
                     tuple(g for g in self.guards if (g.name, "b") in picked))
            self._applies[key] = found
        return found

    def _key_of(self, g: Guard, op: OpInfo) -> str:
        return self._key(g, op.resource, op.type, op.parent, op.target, op.controller)

    def _key(self, g: Guard, resource: str, tname: str, parent: str | None, target: str | None,
             controller: str | None) -> str:
        """The value of the guard's `per` for this resource ("*" without `per`, "" when it has none)."""
        per = g.per
        if per is None:
            return "*"
        if per == "resource":
            return resource
        if per == "part_of":
            return parent or ""
        if per == "type":
            return tname
        if per == "target":
            return target or ""
        if per == "controller":
            return controller or ""
        name, seen = resource, set()
        this_type, up = tname, parent
        while name and name not in seen:  # the resource or its nearest ancestor of type `per`
            if this_type == per:
                return name
            seen.add(name)
            name = up or ""
            this_type, up = self._parents.get(name, ("", None))
        return ""

    # --- the fact base --------------------------------------------------------------

    def _selector(self, gname: str, side: str, selector: Any) -> None:
        for field in SELECTOR_FIELDS:
            values = getattr(selector, field)
            if not values:
                self._assert("anyval", gname, side, field)
            for value in values:
                self._assert("sel", gname, side, field, value)

    def _assert(self, pred: str, *args: Any) -> Any:
        clause = _fact(pred, *args)
        pyEngine.assert_(clause)
        self._facts += 1
        return clause

    def _retract(self, clause: Any) -> None:
        pyEngine.retract(clause)
        self._facts -= 1

    def _count(self, gname: str, key: str, delta: int) -> None:
        n = self._counts.get((gname, key))
        if n is not None:
            self._retract(_fact("instances", gname, key, n))
        n = (n or 0) + delta
        self._counts[(gname, key)] = n
        self._assert("instances", gname, key, n)

    def _set_back(self, now_ms: int) -> None:
        """Starts counted later than ``now_ms`` (the wall clock was set back since, or a resume read
        them from the journal before the step) counted as starts now: they end a window from now.
        Counted at their own time, an hour's step back held the operations a rate limit selects for
        that hour, every check saying to wait that long (a sweep of clocks and time's). Asked by a
        check only, at the time now: a start recorded at an earlier time (a resume replays its run's
        journal into the engine the runs of a server share) is no step back, and moved the other
        runs' starts back to it (a review's)."""
        if now_ms >= self._latest:
            return
        for gname, hits in self._hits.items():
            if any(hit[0] > now_ms for hit in hits):
                kept = []
                for at, fact, key, ticket in hits:
                    if at > now_ms:
                        self._retract(fact)
                        at, fact = now_ms, self._assert("hit", gname, key, ticket, now_ms)
                    kept.append((at, fact, key, ticket))
                self._hits[gname] = collections.deque(sorted(kept, key=lambda hit: hit[0]))
        self._latest = now_ms

    def _expire(self, now_ms: int) -> None:
        """Forget what no guard can count any more: rate-limit hits older than their window,
        started/finished facts older than the largest window (once finished)."""
        for gname, hits in self._hits.items():
            cut = now_ms - self._windows[gname]
            while hits and hits[0][0] <= cut:
                self._retract(hits.popleft()[1])
        cut = now_ms - self._retention
        while self._done and self._done[0][0] <= cut:
            _, ticket = self._done.popleft()
            for fact in self._logged.pop(ticket, ()):
                self._retract(fact)

    def _enter(self) -> Any:
        previous = getattr(Logic.tl, "logic", _ABSENT)
        Logic.tl.logic = self._logic
        if not hasattr(_FRESH, "counter"):
            _FRESH.counter = 0
        return previous


# --- helpers ------------------------------------------------------------------------

_V1, _V2 = pyEngine.Var("X"), pyEngine.Var("Y")


def _restore(previous: Any) -> None:
    if previous is _ABSENT:
        if hasattr(Logic.tl, "logic"):
            del Logic.tl.logic
    else:
        Logic.tl.logic = previous


def _term(value: Any) -> Any:
    return value if isinstance(value, pyEngine.Term) else pyEngine.Const(value)


def _fact(pred: str, *args: Any) -> Any:
    return pyEngine.Clause(pyEngine.Literal(pred, [pyEngine.Const(a) for a in args]), [])


def _ask(pred: str, *args: Any) -> list[tuple]:
    """One query on the installed logic: rows of constants (sorted: pyDatalog answers from sets)."""
    rows = pyEngine.Literal(pred, [_term(a) for a in args]).ask()
    if rows is True:  # a query of constants only, and it holds
        return [()]
    return sorted(rows) if rows else []


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _scope(g: Guard, key: str, same: bool = False) -> str:
    if g.per is None:
        return ""
    word = {"part_of": "part of"}.get(g.per, g.per)
    if not key:
        return f" (no {word})"
    return f" on the same {word} '{key}'" if same else f" for {word} '{key}'"


def _types(g: Guard) -> str:
    return "/".join(g.match.type)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _intervals(g: Guard, around: float) -> list[tuple[float, float]]:
    """The guard's windows as absolute [start, end) seconds near ``around`` (daily ones for 3 days)."""
    out = list(g.periods)
    midnight = around - around % 86400
    for day in (-1, 0, 1, 2):
        base = midnight + day * 86400
        out.extend((base + s, base + e) for s, e in g.daily)
    return sorted(out)


def _until_outside(g: Guard, now: float) -> float:
    """Seconds until ``now`` is in none of the guard's windows (adjacent windows joined)."""
    t = now
    for _ in range(16):
        covering = [end for start, end in _intervals(g, t) if start <= t < end]
        if not covering:
            break
        t = max(covering)
    return max(t - now, 0.001)


def _until_inside(g: Guard, now: float) -> float | None:
    """Seconds until the next window opens; None if none ever does."""
    starts = [start for start, _ in _intervals(g, now) if start > now]
    return min(starts) - now if starts else None


def operation_info(model: Any, op: Any, target: str | None) -> OpInfo:
    """The OpInfo of a planned operation (``planner.plan.PlannedOperation``) in ``model``."""
    res = model.resources[op.resource]
    initial = model.kinds[res.type].initial
    return OpInfo(id=op.id, resource=op.resource, type=op.type, operation=op.operation,
                  controller=op.controller, target=target, parent=res.part_of,
                  creates=op.from_state == initial and op.to_state != initial,
                  deletes=op.to_state == initial and op.from_state != initial)


def model_resources(model: Any) -> list[tuple[str, str, str | None, bool]]:
    """Every resource of ``model`` as (name, type, part_of, present) for :meth:`GuardEngine.set_resources`."""
    return [(r.name, r.type, r.part_of, r.current != model.kinds[r.type].initial)
            for r in model.resources.values()]


__all__ = ["ALLOW", "DEFAULT_RETRY", "Decision", "GuardEngine", "OpInfo", "RULES", "model_resources",
           "operation_info"]
