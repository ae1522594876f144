"""Why no plan exists, in words a policy author reads.

The strict program failed. Solve again with every constraint made soft
(``__violation`` atoms minimised above all user priorities): the optimum is a
smallest set of constraint instances whose removal allows a plan - a minimal
correction set. Each instance names its policy file and line, the comment
above it, and the values of its variables (the resources involved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import clingo

import policies
from domain.model import Model
from planner.decode import Decoded, decode, find_cycle
from planner.program import Program, RuleInfo
from planner.solve import relax, solve


@dataclass(frozen=True)
class Conflict:
    policy: str
    enforcement: str
    file: str
    line: int
    rule: str
    description: str
    bindings: tuple[tuple[str, str], ...]
    resources: tuple[str, ...]

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict:
        return {
            "policy": self.policy, "enforcement": self.enforcement, "file": self.file, "line": self.line,
            "rule": self.rule,
            "description": self.description, "bindings": dict(self.bindings),
            "resources": list(self.resources),
        }


@dataclass
class Explanation:
    kind: str  # "conflict", "cycle" or "unknown"
    summary: str
    conflicts: list[Conflict] = field(default_factory=list)
    cycle: list[str] = field(default_factory=list)
    cycle_rules: list[list[str]] = field(default_factory=list)
    # what the request asks of the resources involved: (resource, state, where)
    goals: list[tuple[str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "summary": self.summary,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "cycle": self.cycle, "cycle_rules": self.cycle_rules,
            "goals": [{"resource": r, "state": s, "where": w} for r, s, w in self.goals],
        }


def _text(sym: clingo.Symbol) -> str:
    if sym.type == clingo.SymbolType.String:
        return sym.string
    if sym.type == clingo.SymbolType.Function and sym.name == "op" and len(sym.arguments) == 2:
        return f"{_text(sym.arguments[0])}/{_text(sym.arguments[1])}"
    return str(sym)


def _resources_in(sym: clingo.Symbol, model: Model, out: list[str]) -> None:
    if sym.type == clingo.SymbolType.String and sym.string in model.resources and sym.string not in out:
        out.append(sym.string)
    elif sym.type == clingo.SymbolType.Function:
        for arg in sym.arguments:
            _resources_in(arg, model, out)


def conflicts_from(symbols: list[clingo.Symbol], program: Program, model: Model,
                   levels: tuple[str, ...] = ("hard",)) -> list[Conflict]:
    """The violated constraint instances in an answer, of policies enforced at ``levels``."""
    rules = program.rules
    # Where the closest plan put things: a conflict about a target (capacity)
    # involves the resources placed on it.
    placed_on: dict[str, list[str]] = {}
    for sym in symbols:
        if sym.name == "place" and len(sym.arguments) == 2:
            placed_on.setdefault(_text(sym.arguments[1]), []).append(_text(sym.arguments[0]))
    out = []
    for sym in symbols:
        if sym.name != "__violation":
            continue
        index, values = sym.arguments
        info = rules[index.number]
        meta = program.meta_of(info.file)
        if meta.enforcement not in levels:
            continue
        bindings = tuple(zip(info.variables, (_text(v) for v in values.arguments), strict=False))
        resources: list[str] = []
        _resources_in(values, model, resources)
        for _, value in bindings:
            if value in model.targets:
                resources += [r for r in sorted(placed_on.get(value, [])) if r not in resources]
        out.append(Conflict(
            policy=meta.name, enforcement=meta.enforcement, file=info.file, line=info.line, rule=info.text,
            description=info.comment, bindings=bindings, resources=tuple(resources)))
    return sorted(out, key=lambda c: (c.file, c.line, c.bindings))


def explain_no_plan(program: Program, facts: list[str], model: Model, *, timeout: float,
                    control: clingo.Control | None = None) -> Explanation:
    """``control``: the strict solve's, grounded already (solve(keep_control=True))."""
    result = relax(control, timeout) if control is not None else solve(
        program, facts, relaxed=True, timeout=timeout)
    if result.status == "unsatisfiable":
        return Explanation(kind="unknown", summary=(
            "no plan exists, and no single policy constraint is to blame: a choice rule or "
            "aggregate cannot be satisfied at all (for instance a resource to place and no target)"))
    if result.status == "timeout":
        return Explanation(kind="unknown", summary="no plan exists; the explanation timed out")
    conflicts = conflicts_from(result.symbols, program, model)
    if conflicts:
        names = sorted({c.policy for c in conflicts})
        return Explanation(kind="conflict", conflicts=conflicts, goals=_goals(conflicts, model), summary=(
            f"no plan satisfies every policy; drop or relax: {', '.join(names)}"))
    decoded = decode(result)
    cycle = find_cycle(decoded.graph)
    if cycle:
        return explain_cycle(cycle, decoded, program.rules)
    return Explanation(kind="unknown", summary="no plan exists, for a reason ordo could not name")


def _goals(conflicts: list[Conflict], model: Model) -> list[tuple[str, str, str]]:
    """The request's goals for the resources a conflict names: the other side of it."""
    out = []
    for name in sorted({r for c in conflicts for r in c.resources}):
        res = model.resources[name]
        if res.requested and res.desired is not None and res.origin is not None:
            out.append((name, res.desired, f"{res.origin.file}:{res.origin.line}"))
    return out


def explain_cycle(cycle: list[str], decoded: Decoded, rules: list[RuleInfo]) -> Explanation:
    # Start the cycle at its smallest operation so the message is stable.
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    hops = []
    for i, node in enumerate(cycle):
        nxt = cycle[(i + 1) % len(cycle)]
        hops.append(sorted({rules[r].location for r in decoded.edges.get((node, nxt), set())}))
    resources = sorted({n.rsplit("/", 1)[0] for n in cycle})
    return Explanation(
        kind="cycle", cycle=cycle, cycle_rules=hops,
        summary=(f"the ordering rules form a cycle: {' -> '.join(cycle + [cycle[0]])} "
                 f"(resources: {', '.join(resources)})"))


#: Conflict mode: every hard constraint and every requested goal can be
#: switched on and off by an assumption (policies/internal/switches.lp).
SWITCHES = policies.internal("switches")


@dataclass
class MinimalConflict:
    """Policies (rules) and goals that cannot hold together; dropping any one
    of them allows a plan (when ``minimal``; else the time limit cut the
    shrinking short and the set may hold more than it needs)."""

    rules: list[RuleInfo]
    goals: list[tuple[str, str, str]]   # resource, state, where requested
    minimal: bool
    checks: int                         # solver calls made
    policies: dict[str, str] = field(default_factory=dict)  # rule file -> policy name

    def summary(self) -> str:
        names = sorted({self.policies.get(r.file, r.file) for r in self.rules})
        parts = [f"policies {', '.join(names)}" if names else "", f"{len(self.goals)} requested goal(s)"
                 if self.goals else ""]
        what = " and ".join(p for p in parts if p)
        return (f"{'a minimal' if self.minimal else 'a'} conflicting set: {what} cannot hold together"
                + ("" if self.minimal else " (not shrunk to minimal within the time limit)"))

    def to_dict(self) -> dict:
        return {
            "minimal": self.minimal, "checks": self.checks, "summary": self.summary(),
            "policies": [{"policy": self.policies.get(r.file, r.file), "file": r.file, "line": r.line,
                          "rule": r.text, "description": r.comment} for r in self.rules],
            "goals": [{"resource": res, "state": s, "where": w} for res, s, w in self.goals],
        }


def minimal_conflict(program: Program, facts: list[str], model: Model, *, timeout: float) -> MinimalConflict | None:
    """A minimal set of hard policy rules and requested goals that conflict:
    an unsatisfiable core of switch assumptions, shrunk by deletion. None
    when the request has a plan."""
    import time

    from planner.solve import _ground

    deadline = time.monotonic() + timeout
    switched = ["__" + f if f.startswith("desired(") else f for f in facts]
    ctl, _ = _ground(program, switched, SWITCHES, ["--parallel-mode=1"])
    atoms = ctl.symbolic_atoms
    switches: dict[int, clingo.Symbol] = {}
    for name in ("__on", "__goal"):
        for atom in atoms.by_signature(name, 1):
            switches[atom.literal] = atom.symbol

    # A switch left out of the assumptions is free, not off: the solver may
    # take the goal or not, and may violate the rule. So a smaller set asks
    # less (monotone), and a set is never solved twice (known answers).
    known: dict[frozenset[int], list[int] | None] = {}

    def conflicting(enabled: list[int]) -> list[int] | None:
        """The core when the enabled switches cannot hold together, else None."""
        key = frozenset(enabled)
        if key not in known:
            known[key] = solve_under(enabled)
        return known[key]

    def solve_under(enabled: list[int]) -> list[int] | None:
        nonlocal checks
        checks += 1
        assumptions = [(switches[lit], True) for lit in enabled]
        with ctl.solve(assumptions=assumptions, async_=True) as handle:
            finished = handle.wait(max(0.01, deadline - time.monotonic()))
            while not finished and time.monotonic() < deadline:
                finished = handle.wait(max(0.01, deadline - time.monotonic()))
            if not finished:
                handle.cancel()
                raise TimeoutError
            result = handle.get()
            if not result.unsatisfiable:
                return None
            core = handle.core()
        return sorted(set(core) & set(enabled))

    checks = 0
    try:
        # The policies alone first, every goal left free: a request has a goal
        # per resource (10,000 at 10,000 resources); when the policies conflict
        # whatever is requested, the core of this one check is small, and the
        # deletion below need not halve its way through the goals. Only when
        # they do not does the core of everything on decide.
        rules_only = sorted(lit for lit, sym in switches.items() if sym.name == "__on")
        core = conflicting(rules_only) if 0 < len(rules_only) < len(switches) else None
        if core is None:
            core = conflicting(sorted(switches))
    except TimeoutError:
        return MinimalConflict(rules=[], goals=[], minimal=False, checks=checks)
    if core is None:
        return None
    # Deletion in halving chunks: try dropping a whole chunk at once, keep
    # what the solver's new core still needs; then smaller chunks, down to
    # single switches. About 2k·log(n) checks for a set of k out of n.
    minimal = True
    kept = list(core)
    chunk = max(1, len(kept) // 2)
    try:
        while True:
            index = 0
            while index < len(kept):
                trial = kept[:index] + kept[index + chunk:]
                smaller = conflicting(trial)
                if smaller is None:
                    index += chunk    # something in this chunk is needed
                else:
                    needed = set(smaller)
                    kept = [lit for lit in trial if lit in needed] or trial
            if chunk == 1:
                break
            chunk = max(1, chunk // 2)
    except TimeoutError:
        minimal = False
    rules, goals = [], []
    for lit in kept:
        sym = switches[lit]
        if sym.name == "__on":
            rules.append(program.rules[sym.arguments[0].number])
        else:
            name = _text(sym.arguments[0])
            res = model.resources.get(name)
            where = f"{res.origin.file}:{res.origin.line}" if res is not None and res.origin else ""
            goals.append((name, res.desired if res is not None else "", where))
    rules.sort(key=lambda r: (r.file, r.line))
    goals.sort()
    names = {f.display: f.meta.name for f in program.files}
    return MinimalConflict(rules=rules, goals=goals, minimal=minimal, checks=checks, policies=names)


#: Goal mode: every hard policy holds; as few requested goals as possible are
#: given up (policies/internal/goal-switches.lp).
GOAL_SWITCHES = policies.internal("goal-switches")


def goals_to_drop(program: Program, facts: list[str], model: Model, *,
                  timeout: float) -> list[tuple[str, str, str]] | None:
    """The fewest requested goals whose removal allows a plan with every hard
    policy kept: (resource, state, where requested). None when even giving
    up every goal leaves no plan, or in the time limit."""
    import time

    from planner.solve import SolveResult, _ground, _search

    switched = ["__" + f if f.startswith("desired(") else f for f in facts]
    ctl, _ = _ground(program, switched, GOAL_SWITCHES,
                     ["--opt-strategy=usc,oll,disjoint", "--opt-mode=opt", "--models=0", "--parallel-mode=1"])
    result = SolveResult(status="timeout")
    started = time.monotonic()
    _search(ctl, result, max(0.1, timeout - (time.monotonic() - started)), True)
    if result.status not in ("optimal", "satisfiable"):
        return None
    kept = {_text(s.arguments[0]) for s in result.symbols if s.name == "__keep"}
    dropped = []
    for sym in result.symbols:
        if sym.name == "__desired" and _text(sym.arguments[0]) not in kept:
            name = _text(sym.arguments[0])
            res = model.resources.get(name)
            where = f"{res.origin.file}:{res.origin.line}" if res is not None and res.origin else ""
            dropped.append((name, _text(sym.arguments[1]), where))
    return sorted(dropped)
