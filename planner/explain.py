"""Why no plan exists, in words a policy author reads.

The strict program failed. Solve again with every constraint made soft
(``__violation`` atoms minimised above all user priorities): the optimum is a
smallest set of constraint instances whose removal allows a plan - a minimal
correction set. Each instance names its policy file and line, the comment
above it, and the values of its variables (the resources involved).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import clingo
from clingo import ast

import policies
from domain.errors import first_of
from domain.model import Model
from domain.project import Project
from planner.decode import Decoded, decode, every_edge, find_cycle
from planner.lint import _split  # what a statement defines, as the lint finds it
from planner.program import GLUE, Program, RuleInfo
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
    finished: bool = True   # False: the time limit cut the explaining short

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


def _parts_located(model: Model, placements: dict[str, str]) -> dict[str, str]:
    """Where each part that requires capacity is: with its whole, up its part_of chain, where the whole is
    placed (parts have no place/2 of their own)."""
    out = {}
    resources = model.resources
    for name, res in resources.items():
        if not res.requires or name in placements or res.part_of is None \
                or (res.desired is not None and res.desired == model.kinds[res.type].initial):
            continue   # (one the plan deletes frees its capacity)
        whole, hops = res.part_of, 0
        while whole is not None and whole not in placements and hops <= len(resources):
            whole, hops = (resources[whole].part_of if whole in resources else None), hops + 1
        if whole is not None and whole in placements:
            out[name] = placements[whole]
    return out


def conflicts_from(symbols: list[clingo.Symbol], program: Program, model: Model,
                   levels: tuple[str, ...] = ("hard",), placements: dict[str, str] | None = None) -> list[Conflict]:
    """The violated constraint instances in an answer, of policies enforced at ``levels``.
    ``placements``: where the plan puts every resource, when the answer's place/2 atoms
    hold only some (a plan solved on a slice of the model: planner/slice.py)."""
    rules = program.rules
    # Where the closest plan put things: a conflict about a target alone (capacity)
    # involves the resources placed on it.
    if placements is None:
        placements = {_text(sym.arguments[0]): _text(sym.arguments[1]) for sym in symbols
                      if sym.name == "place" and len(sym.arguments) == 2}
    placed_on: dict[str, list[str]] = {}
    for name, target in placements.items():
        placed_on.setdefault(target, []).append(name)
    for name, target in _parts_located(model, placements).items():   # (a part that takes capacity there was
        placed_on.setdefault(target, []).append(name)                 # left out of a capacity conflict: a sweep's)
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
        resources += [name for name in info.strings if name in model.resources and name not in resources]
        if not resources:   # a rule of targets alone (capacity): what is placed there; not where it names
            for _, value in bindings:   # resources (R=db, T=site-a was "resources: web", placed there too)
                if value in model.targets:
                    resources += [r for r in sorted(placed_on.get(value, [])) if r not in resources]
        out.append(Conflict(
            policy=meta.name, enforcement=meta.enforcement, file=info.file, line=info.line, rule=info.text,
            description=info.comment, bindings=bindings, resources=tuple(resources)))
    return sorted(out, key=lambda c: (c.file, c.line, c.bindings))


def explain_no_plan(program: Program, facts: list[str], model: Model, *, timeout: float,
                    control: clingo.Control | None = None) -> Explanation:
    """``control``: the strict solve's, grounded already (solve(keep_control=True)).

    Of the smallest correction sets, the one named is the least in the order
    of ``least_correction`` (not the solver's first): the same problem gives
    the same explanation however its policies are written."""
    deadline = time.monotonic() + timeout
    if control is not None:
        result = relax(control, timeout)
    else:
        result = solve(program, facts, relaxed=True, timeout=timeout, keep_control=True)
        control, result.control = result.control, None
    least = result.status == "optimal"
    if least:
        result.symbols, least = least_correction(control, program, result.symbols, deadline)
    if result.status == "unsatisfiable":
        hidden = hidden_constraints(program)
        where = f"; rules of the policies that constrain so: {first_of(hidden, 5)}" if hidden else \
            " (for instance a resource to place and no target)"
        return Explanation(kind="unknown", summary=(
            "no plan exists, and no single policy constraint is to blame: a choice rule, an aggregate, an #edge, "
            f"a disjunction or a classical negation cannot be satisfied at all{where}"))
    if result.status == "timeout":
        return Explanation(kind="unknown", summary="no plan exists; explaining why did not finish within the time "
                                                   "limit (a longer one gives it time)", finished=False)
    conflicts = conflicts_from(result.symbols, program, model)
    if conflicts:
        names = sorted({c.policy for c in conflicts})
        cut = "" if least else (" (the time limit cut the search for the least set of violations short: a "
                                "longer one may name other instances)")
        return Explanation(kind="conflict", conflicts=conflicts, goals=_goals(conflicts, model), summary=(
            f"no plan satisfies every policy; drop or relax: {', '.join(names)}{cut}"))
    decoded = decode(result)
    cycle = find_cycle(decoded.graph)
    if cycle:
        return explain_cycle(cycle, decoded, program.rules)
    edges = every_edge(result)   # the order of operations the plan does not take, or of what is none
    if len(edges) > len(decoded.edges):
        import networkx as nx

        cycle = find_cycle(nx.DiGraph(sorted(edges)))
        if cycle:
            return explain_cycle(cycle, replace(decoded, edges=edges), program.rules)
    return Explanation(kind="unknown", summary="no plan exists, for a reason ordo could not name")


def hidden_constraints(program: Program) -> list[str]:
    """Where the project's and the library's policies constrain without a constraint ordo labels
    (and can name when it does not hold): a choice rule with bounds, a head aggregate, an #edge, a
    disjunction (a conditional head whose condition holds for none is a constraint), a classical
    negation in a head (``file:line (what)``, in the files' order)."""
    found = []
    for pfile in program.files:
        if pfile.origin == "base":
            continue
        for stm in pfile.statements:
            kind, what = stm.ast_type, None
            if kind == ast.ASTType.Edge:
                what = "#edge"
            elif kind == ast.ASTType.Rule:
                head = stm.head
                if head.ast_type == ast.ASTType.HeadAggregate or (
                        head.ast_type == ast.ASTType.Aggregate and (head.left_guard or head.right_guard)):
                    what = "a choice or an aggregate with bounds"
                elif head.ast_type == ast.ASTType.Disjunction:   # (one of them must hold: none may, a constraint)
                    what = "a disjunction or a conditional head"
                elif "-" in str(head) and any(sig[0].startswith("-") for sig, _ in _split(stm)[0]):
                    what = "a classical negation"
            if what is not None:
                found.append(f"{pfile.display}:{stm.location.begin.line} ({what})")
    return list(dict.fromkeys(found))


def least_correction(ctl: clingo.Control, program: Program, symbols: list[clingo.Symbol],
                     deadline: float) -> tuple[list[clingo.Symbol], bool]:
    """The answer (shown atoms) of the least of the smallest correction sets,
    starting from ``symbols``, an optimal answer of the relaxed solve on ``ctl``,
    and whether it is that (False: the time limit came first).

    The order, among sets of violated hard constraint instances of one size:
    fewer instances of stock policies (the base and the library) first, so a
    project's own policy is blamed before a stock one it contradicts; then the
    set whose sorted list of instances is lexicographically least, an instance
    sorting by its policy's name, file, line and the values of its variables
    as written. Descent: ask the solver for a set of the same size that is
    less than the current one (a plain satisfiability check), until there is
    none. Each step is strictly less, so it ends; when the time is up first,
    the least found so far stands."""
    origin = {f.display: f.origin for f in program.files}
    rule_key, stock = {}, set()
    for rule in program.rules:
        meta = program.meta_of(rule.file)
        if rule.kind == "constraint" and meta.enforcement == "hard":
            rule_key[rule.index] = (meta.name, rule.file, rule.line)
            if origin.get(rule.file) != "project":
                stock.add(rule.index)

    def key(sym: clingo.Symbol) -> tuple:
        return rule_key[sym.arguments[0].number], str(sym.arguments[1])

    atoms = [(atom.symbol, atom.literal) for atom in ctl.symbolic_atoms.by_signature("__violation", 2)
             if atom.symbol.arguments[0].number in rule_key]
    atoms.sort(key=lambda atom: key(atom[0]))
    ordered = [(lit, sym.arguments[0].number in stock) for sym, lit in atoms]
    position = {sym: i for i, (sym, _) in enumerate(atoms)}
    chosen = {position[sym] for sym in symbols if sym in position}
    solve_conf = ctl.configuration.solve
    saved = solve_conf.opt_mode, solve_conf.models
    solve_conf.opt_mode, solve_conf.models = "ignore", "1"   # the size is bounded: only satisfiability is asked
    found: list[clingo.Symbol] = []

    def on_model(model: clingo.Model) -> None:
        found.extend(model.symbols(shown=True))
        chosen.clear()
        chosen.update(i for i, (lit, _) in enumerate(ordered) if model.is_true(lit))

    try:
        while chosen:
            guard = _less_than(ctl, chosen, ordered)
            found.clear()
            try:
                _solve_until(ctl, [guard], deadline, on_model)
            finally:
                ctl.assign_external(guard, False)   # this step's question is not asked again
            if not found:
                break
            symbols = list(found)
    except TimeoutError:
        return symbols, False
    finally:   # the control goes on to other questions with its own settings, whatever happened here
        solve_conf.opt_mode, solve_conf.models = saved
    return symbols, True


def _less_than(ctl: clingo.Control, chosen: set[int], ordered: list[tuple[int, bool]]) -> int:
    """A new assumption literal that, assumed, asks for a correction set of
    ``chosen``'s size that is less in least_correction's order. ``ordered``:
    each instance's literal, and whether a stock policy's, in the order;
    ``chosen``: positions in it. Added through the backend: no grounding."""
    stock_lits = [(lit, 1) for lit, stock in ordered if stock]
    stock_chosen = sum(1 for i in chosen if ordered[i][1])
    with ctl.backend() as backend:
        guard, too_many, less = backend.add_atom(), backend.add_atom(), backend.add_atom()
        backend.add_external(guard, clingo.TruthValue.Free)
        backend.add_weight_rule([too_many], len(chosen) + 1, [(lit, 1) for lit, _ in ordered])
        backend.add_rule([], [guard, too_many])
        backend.add_rule([], [guard, -less])
        at_least, more = backend.add_atom(), backend.add_atom()
        backend.add_weight_rule([at_least], stock_chosen, stock_lits)
        backend.add_weight_rule([more], stock_chosen + 1, stock_lits)
        if stock_chosen:
            backend.add_rule([less], [-at_least])        # fewer instances of stock policies
        # as many: the least instance where the two sets differ is in the new
        # one (so it comes before the last of the current set)
        before: list[int] = []
        for i, (lit, stock) in enumerate(ordered[:max(chosen)]):
            if i in chosen:
                before.append(lit)
            elif stock_chosen or not stock:
                backend.add_rule([less], [at_least, -more, lit, *before])
    return guard


def _solve_until(ctl: clingo.Control, assumptions: list, deadline: float,
                 on_model: Callable[[clingo.Model], None] | None = None) -> tuple[clingo.SolveResult, list[int]]:
    """One solve under ``assumptions``: how it ended, and the core (the
    assumption literals in conflict) when unsatisfiable. TimeoutError when
    ``deadline`` comes first."""
    from planner.solve import searching

    with searching(), ctl.solve(assumptions=assumptions, on_model=on_model, async_=True) as handle:
        finished = handle.wait(max(0.01, deadline - time.monotonic()))
        while not finished and time.monotonic() < deadline:
            finished = handle.wait(max(0.01, deadline - time.monotonic()))
        if not finished:
            handle.cancel()
            raise TimeoutError
        outcome = handle.get()
        return outcome, (handle.core() if outcome.unsatisfiable else [])


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
    shrinking short and the set may hold more than it needs). Cut short
    before any set was found: not ``found``. Cut short once the policies
    were found that conflict with every requested goal held, but not which
    of the goals take part: ``every_goal``, and no goals listed."""

    rules: list[RuleInfo]
    goals: list[tuple[str, str, str]]   # resource, state, where requested
    minimal: bool
    checks: int                         # solver calls made
    policies: dict[str, str] = field(default_factory=dict)  # rule file -> policy name
    #: no constraint takes part: the ordering rules form a cycle, or a choice, aggregate, #edge or
    #: classical negation of a policy cannot hold; explained as ``ordo explain`` does
    cycle: Explanation | None = None
    found: bool = True
    every_goal: bool = False

    def summary(self) -> str:
        if self.cycle is not None:
            return self.cycle.summary
        if not self.found:
            return "no conflicting set was found within the time limit (nor whether a plan exists)"
        names = sorted({self.policies.get(r.file, r.file) for r in self.rules})
        parts = [f"policies {', '.join(names)}" if names else "",
                 "the requested goals" if self.every_goal else
                 f"{len(self.goals)} requested goal(s)" if self.goals else ""]
        what = " and ".join(p for p in parts if p)
        cut = (" (not shrunk within the time limit: which of the requested goals take part was not found)"
               if self.every_goal else "" if self.minimal else " (not shrunk to minimal within the time limit)")
        return f"{'a minimal' if self.minimal else 'a'} conflicting set: {what} cannot hold together{cut}"

    def to_dict(self) -> dict:
        return {
            "found": self.found, "every_goal": self.every_goal,
            "minimal": self.minimal, "checks": self.checks, "summary": self.summary(),
            "policies": [{"policy": self.policies.get(r.file, r.file), "file": r.file, "line": r.line,
                          "rule": r.text, "description": r.comment} for r in self.rules],
            "goals": [{"resource": res, "state": s, "where": w} for res, s, w in self.goals],
            "cycle": None if self.cycle is None or self.cycle.kind != "cycle" else
            {"operations": self.cycle.cycle, "rules": self.cycle.cycle_rules},
        }


#: Conflict mode, first stage: every goal holds, every hard constraint can be
#: switched (policies/internal/policy-switches.lp); the strict program's size.
POLICY_SWITCHES = policies.internal("policy-switches")

#: clasp's options for the conflict checks: one thread (deterministic), and
#: no equivalence preprocessing, with which a satisfiable check after an
#: unsatisfiable one took 0.3-0.6 s instead of 0.02-0.04 s at 10,000
#: resources (benchmarks/README.md, "Explanations"). The conflict found does
#: not depend on the solver's search (``_Switches.preferred``).
CONFLICT_ARGS = ["--parallel-mode=1", "--eq=0"]


class _Switches:
    """The assumption literals of a grounded conflict-mode program, asked
    about under a deadline. A switch left out of the assumptions is free,
    not off: the solver may take the goal or not, and may violate the rule.
    So a smaller set asks less (monotone), and no set is asked twice."""

    def __init__(self, ctl: clingo.Control, deadline: float, names: tuple[str, ...]) -> None:
        self.ctl, self.deadline, self.checks = ctl, deadline, 0
        atoms = ctl.symbolic_atoms
        self.symbols = {atom.literal: atom.symbol for name in names for atom in atoms.by_signature(name, 1)}
        self.known: dict[frozenset[int], list[int] | None] = {}

    def conflicting(self, enabled: list[int]) -> list[int] | None:
        """The core when the enabled switches cannot hold together, else None."""
        key = frozenset(enabled)
        if key not in self.known:
            self.known[key] = self._solve(enabled)
        return self.known[key]

    def _solve(self, enabled: list[int]) -> list[int] | None:
        self.checks += 1
        outcome, core = _solve_until(self.ctl, [(self.symbols[lit], True) for lit in enabled], self.deadline)
        return sorted(set(core) & set(enabled)) if outcome.unsatisfiable else None

    def preferred(self, ordered: list[int], core: list[int]) -> tuple[list[int], bool]:
        """The minimal conflicting set that ``conflict_order`` prefers, out
        of the switches ``ordered`` (in that order), all of which conflict
        (``core``: the solver's core of them). It is the set whose last
        switch comes earliest in the order; of those, the one whose
        next-to-last does, and so on: found as the shortest prefix of the
        order that still conflicts with what is kept already (its last switch
        is kept), by bisection, until what is kept conflicts on its own. A
        core only shortens the bisection (the prefix up to its last switch
        conflicts too): the set does not depend on the solver's search.
        About k·log(n) checks for k of n. (The set, and whether the time
        limit left it minimal.)"""
        position = {lit: i for i, lit in enumerate(ordered)}
        kept: list[int] = []

        def end(found: list[int]) -> int:
            return 1 + max((position[lit] for lit in found if lit not in kept), default=-1)

        shortest = end(core)   # kept plus ordered[:shortest] conflict
        try:
            while shortest > 0:
                fits = -1          # kept plus ordered[:fits] has a plan (none: -1)
                while shortest - fits > 1:
                    middle = (fits + shortest + 1) // 2   # upper: a plan there shows one below
                    found = self.conflicting(kept + ordered[:middle])
                    if found is None:
                        fits = middle
                    else:
                        shortest = min(middle, end(found))
                if shortest == 0:
                    break          # what is kept conflicts on its own
                kept.append(ordered[shortest - 1])
                shortest -= 1
            return kept, True
        except TimeoutError:
            return kept + ordered[:shortest], False


def conflict_order(program: Program, symbols: dict[int, clingo.Symbol]) -> list[int]:
    """The switches in the order minimal_conflict prefers a conflicting set
    by: policy rules before requested goals; the project's own policies
    before stock ones (the base and the library), each by policy name, file
    and line; goals by resource name."""
    origin = {f.display: f.origin for f in program.files}

    def key(lit: int) -> tuple:
        sym = symbols[lit]
        if sym.name != "__on":
            return (1, _text(sym.arguments[0]))
        rule = program.rules[sym.arguments[0].number]
        return (0, origin.get(rule.file) != "project", program.meta_of(rule.file).name, rule.file, rule.line)

    return sorted(symbols, key=key)


def project_conflict(project: Project, *, timeout: float, memory_mb: int | None = None) -> MinimalConflict | None:
    """``minimal_conflict`` of a project's policies (refused as
    ``load_policies`` refuses them) and model, in a child process within
    ``timeout`` seconds and ``memory_mb`` (default the project's
    settings.memory_limit_mb, else planner.bounded's): a policy can ground
    without end, and clingo cannot stop a grounding. Past a limit,
    PlanningLimitError naming the policy that grounds largest, as for a plan.
    From a process that runs threads the child comes from the fork server."""
    from planner.bounded import conflict_bounded, memory_for

    return conflict_bounded(project, timeout=timeout, memory_mb=memory_for(project, memory_mb))


def conflict_here(project: Project, *, timeout: float, facts: list[str] | None = None,
                  on_grounded: Callable[[clingo.Control], None] | None = None) -> MinimalConflict | None:
    """``project_conflict`` in this process, the facts (the model's, unless
    given) parsed while the policies are checked (``ground_alongside``).
    Their warnings are not looked for: a conflict has none to show.
    ``timeout`` counts from the start; ``on_grounded`` is given the grounded
    Control (a child keeps it: freeing it takes time the answer waits for)."""
    from planner.core import load_policies
    from planner.facts import model_facts
    from planner.solve import ground_alongside

    started = time.monotonic()
    facts = model_facts(project.model) if facts is None else facts
    shapes: list[_Shape] = []
    program, ctl = ground_alongside(lambda: load_policies(project, warnings=False), facts,
                                    POLICY_SWITCHES, CONFLICT_ARGS, meanwhile=lambda p: shapes.append(_Shape(p)))
    if on_grounded is not None:
        on_grounded(ctl)
    return minimal_conflict(program, facts, project.model, timeout=timeout - (time.monotonic() - started),
                            control=ctl, shape=shapes[0] if shapes else None)


def minimal_conflict(program: Program, facts: list[str], model: Model, *, timeout: float,
                     control: clingo.Control | None = None, shape: _Shape | None = None) -> MinimalConflict | None:
    """A minimal set of hard policy rules and requested goals that conflict:
    an unsatisfiable core of switch assumptions, shrunk by deletion. None
    when the request has a plan.

    First with every goal held, on a program the strict one's size: its
    minimal set of rules M is minimal with the goals free too (a set that
    has a plan with every goal held has one with them free). When M's
    constraints contradict each other whatever the goal-dependent atoms they
    read (``_conflict_whatever_goals``), no goal takes part and M is the
    answer. Otherwise the goals are switched too, on a program about twice
    the size (a goal's resource may end in its current state or the asked
    one), and the core is shrunk there. ``control``: the first program,
    grounded already (``conflict_here``); ``shape``: its ``_Shape``, if
    made already (while it grounded)."""
    from planner.solve import _ground

    deadline = time.monotonic() + timeout
    names = {f.display: f.meta.name for f in program.files}
    ctl = control if control is not None else _ground(program, facts, POLICY_SWITCHES, CONFLICT_ARGS)[0]
    held = _Switches(ctl, deadline, ("__on",))
    try:
        core = held.conflicting(sorted(held.symbols))
    except TimeoutError:
        return MinimalConflict(rules=[], goals=[], minimal=False, checks=held.checks, policies=names, found=False)
    if core is None:
        return None   # a plan with every goal: with any
    if not core:   # no plan with every constraint off: the order (a cycle of before/2 rules) or a choice rule
        why = explain_no_plan(program, facts, model, timeout=max(0.0, deadline - time.monotonic()))
        if not why.finished:
            return MinimalConflict(rules=[], goals=[], minimal=False, checks=held.checks + 1, policies=names,
                                   found=False)
        if why.kind in ("cycle", "unknown"):   # (the goals switched, giving up a goal would break it: not the cause)
            return MinimalConflict(rules=[], goals=[], minimal=True, checks=held.checks + 1, policies=names, cycle=why)
    kept, minimal = held.preferred(conflict_order(program, held.symbols), core)
    rules = [program.rules[held.symbols[lit].arguments[0].number] for lit in kept]
    checks = held.checks
    if minimal:
        checks += 1
        if _conflict_whatever_goals(shape or _Shape(program), ctl, rules):
            rules.sort(key=lambda r: (r.file, r.line))
            return MinimalConflict(rules=rules, goals=[], minimal=True, checks=checks, policies=names)
    del ctl, held

    switched = ["__" + f if f.startswith("desired(") else f for f in facts]
    ctl, _ = _ground(program, switched, SWITCHES, CONFLICT_ARGS)
    free = _Switches(ctl, deadline, ("__on", "__goal"))
    free.checks = checks
    try:
        # The policies alone first, every goal left free: a request has a goal
        # per resource (10,000 at 10,000 resources); when the policies conflict
        # whatever is requested, the core of this one check is small, and the
        # deletion below need not halve its way through the goals. Only when
        # they do not does the core of everything on decide.
        rules_only = sorted(lit for lit, sym in free.symbols.items() if sym.name == "__on")
        core = free.conflicting(rules_only) if 0 < len(rules_only) < len(free.symbols) else None
        if core is None:
            core = free.conflicting(sorted(free.symbols))
    except TimeoutError:
        return _with_every_goal(rules, free.checks, names)
    if core is None:
        return None
    kept, minimal = free.preferred(conflict_order(program, free.symbols), core)
    if not minimal:   # cut short while shrinking: what it kept holds every rule before the cut in the order
        return _with_every_goal(rules, free.checks, names)
    rules, goals = [], []
    for lit in kept:
        sym = free.symbols[lit]
        if sym.name == "__on":
            rules.append(program.rules[sym.arguments[0].number])
        else:
            name = _text(sym.arguments[0])
            res = model.resources.get(name)
            where = f"{res.origin.file}:{res.origin.line}" if res is not None and res.origin else ""
            goals.append((name, res.desired if res is not None else "", where))
    rules.sort(key=lambda r: (r.file, r.line))
    goals.sort()
    return MinimalConflict(rules=rules, goals=goals, minimal=minimal, checks=free.checks, policies=names)


def _with_every_goal(rules: list[RuleInfo], checks: int, names: dict[str, str]) -> MinimalConflict:
    """The first stage's answer when the time limit cut the second short: its rules conflict with every
    requested goal held (a set cut short in the second stage held every rule before the cut in the
    order, the base library's too: 12 rules and 116 goals where the first stage had one policy)."""
    return MinimalConflict(rules=sorted(rules, key=lambda r: (r.file, r.line)), goals=[], minimal=False,
                           checks=checks, policies=names, every_goal=True)


def _goal_dependent(unlabelled: list[ast.AST]) -> set[tuple[str, int]]:
    """The predicates whose atoms may change with the requested goals: desired/2
    and whatever the program derives from it. ``unlabelled``: the program's
    statements but its labelled constraints, which define __violation/2
    only, from which nothing derives."""
    statements = list(unlabelled)
    ast.parse_string(GLUE, statements.append)
    readers: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for stm in statements:
        defined, read = _split(stm)
        for sig, _ in read:
            readers.setdefault(sig, set()).update(d for d, _ in defined)
    out, stack = {("desired", 2)}, [("desired", 2)]
    while stack:
        for sig in readers.get(stack.pop(), ()):
            if sig not in out:
                out.add(sig)
                stack.append(sig)
    return out


def _labelled_constraint(stm: ast.AST, kind: ast.ASTType) -> bool:
    if kind != ast.ASTType.Rule or (head := stm.head).ast_type != ast.ASTType.Literal:
        return False
    atom = head.atom
    return (atom.ast_type == ast.ASTType.SymbolicAtom and (sym := atom.symbol).ast_type == ast.ASTType.Function
            and sym.name == "__violation")


class _Unbound(ast.Transformer):
    """Counts the variables outside ``names`` and the #const words of the program."""

    def __init__(self, names: tuple[str, ...], constants: set[str]) -> None:
        self.names, self.constants, self.count = names, constants, 0

    def visit_Variable(self, node: ast.AST) -> ast.AST:  # noqa: N802 (clingo's naming)
        self.count += node.name not in self.names
        return node

    def visit_SymbolicTerm(self, node: ast.AST) -> ast.AST:  # noqa: N802
        sym = node.symbol
        self.count += sym.type == clingo.SymbolType.Function and not sym.arguments and sym.name in self.constants
        return node


class _Shape:
    """What ``_conflict_whatever_goals`` reads of a program's statements, whatever
    its rules: the labelled constraints, the predicates that may depend on the
    goals and the #const words (0.05 s at 1,000 policy instances: worked out
    while the program grounds, ``conflict_here``)."""

    def __init__(self, program: Program) -> None:
        self.labelled: list[ast.AST] = []
        unlabelled: list[ast.AST] = []
        self.constants: set[str] = set()
        for stm in (stm for f in program.files for stm in f.statements):   # one pass: each AST read is a C call
            kind = stm.ast_type
            # a labelled constraint's text names __violation (its head): one call tells most statements apart
            (self.labelled if "__violation" in str(stm) and _labelled_constraint(stm, kind)
             else unlabelled).append(stm)
            if kind == ast.ASTType.Definition:
                self.constants.add(stm.name)
        self.dependent = _goal_dependent(unlabelled)


def _conflict_whatever_goals(shape: _Shape, held: clingo.Control, rules: list[RuleInfo]) -> bool:
    """Whether the ground instances of ``rules`` (those of the goal-held
    program ``held``, whose ``_Shape`` is ``shape``) cannot all hold whatever
    truth value every atom that may depend on the goals takes: a relaxation
    of the goal-free program (every model of it gives one of this), so no
    plan exists with these rules on, whatever is requested. An atom that does
    not depend on the goals and is a fact stays one; every other atom is
    free. Only bodies of plain literals, every variable bound by the instance
    and no #const word are tried (a comparison or a constant would need the
    rest of the program)."""
    labelled, constants, dependent = shape.labelled, shape.constants, shape.dependent
    wanted = {rule.index: rule for rule in rules}
    text: list[str] = []
    read: set[tuple[str, int]] = set()
    for stm in labelled:
        index = stm.head.atom.symbol.arguments[0]
        if index.ast_type != ast.ASTType.SymbolicTerm or index.symbol.number not in wanted:
            continue
        names = wanted.pop(index.symbol.number).variables
        check = _Unbound(names, constants)
        for lit in stm.body:
            if lit.ast_type != ast.ASTType.Literal or lit.atom.ast_type != ast.ASTType.SymbolicAtom:
                return False
            check(lit)
        if check.count or not stm.body:
            return False
        instance = f"__instance({index.symbol.number},({','.join(names)}{',' if len(names) == 1 else ''}))"
        for lit in stm.body:
            atom = lit.atom.symbol
            sig = (atom.name, len(atom.arguments)) if atom.ast_type == ast.ASTType.Function else None
            if sig is None or sig in dependent:
                text.append(f"{{ {atom} }} :- {instance}.")
            else:
                read.add(sig)
                text.append(f"{atom} :- {instance}, __fact({atom}).\n{{ {atom} }} :- {instance}, not __fact({atom}).")
        text.append(f":- {instance}, {', '.join(str(lit) for lit in stm.body)}.")
    if wanted:
        return False
    atoms = held.symbolic_atoms
    indexes = {rule.index for rule in rules}
    text += [f"__instance({index},{values})." for index, values in
             (atom.symbol.arguments for atom in atoms.by_signature("__violation", 2)) if index.number in indexes]
    text += [f"__fact({atom.symbol})." for name, arity in sorted(read)
             for atom in atoms.by_signature(name, arity) if atom.is_fact]
    ctl = clingo.Control(["--parallel-mode=1"], logger=lambda _code, _msg: None)
    try:
        ctl.add("base", [], "#defined __fact/1.\n" + "\n".join(text))
        ctl.ground([("base", [])])
    except RuntimeError:
        return False
    return bool(ctl.solve().unsatisfiable)


#: Goal mode: every hard policy holds; as few requested goals as possible are
#: given up (policies/internal/goal-switches.lp).
GOAL_SWITCHES = policies.internal("goal-switches")


def goals_to_drop(program: Program, facts: list[str], model: Model, *, timeout: float,
                  on_grounded: Callable[[clingo.Control], None] | None = None) -> list[tuple[str, str, str]] | None:
    """The fewest requested goals whose removal allows a plan with every hard
    policy kept: (resource, state, where requested). None when even giving
    up every goal leaves no plan, or in the time limit. ``timeout`` counts
    from the start (grounding too); ``on_grounded`` is given the grounded
    Control (planner.bounded's child: the parent then waits for the search)."""
    from planner.solve import SolveResult, _ground, _search

    started = time.monotonic()
    switched = ["__" + f if f.startswith("desired(") else f for f in facts]
    ctl, _ = _ground(program, switched, GOAL_SWITCHES,
                     ["--opt-strategy=usc,oll,disjoint", "--opt-mode=opt", "--models=0", "--parallel-mode=1"])
    if on_grounded is not None:
        on_grounded(ctl)
    result = SolveResult(status="timeout")
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
