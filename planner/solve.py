"""Ground and solve with clingo under a time limit."""

from __future__ import annotations

import contextlib
import math
import mmap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import clingo
import clingo.backend
from clingo import ast

from domain.errors import Diagnostic, DiagnosticsError, first_of
from planner.facts import KEEP_LEVEL, keeps_placements, orders_siblings
from planner.program import GLUE, RELAXED, RELAXED_PRIORITY, STRICT, Program, parse_message


@dataclass
class SolveResult:
    status: str  # optimal, satisfiable, unsatisfiable, timeout
    # From a child process (planner.bounded) only the atoms read by their
    # arguments (__violation, place) come as symbols; ``shown`` has them all.
    symbols: list[clingo.Symbol] = field(default_factory=list)
    cost: list[int] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    bound: list[int] = field(default_factory=list)   # the solver's proven lower bound of each cost level
    atoms: int = 0
    rules: int = 0
    ground_seconds: float = 0.0
    solve_seconds: float = 0.0
    warnings: list[Diagnostic] = field(default_factory=list)
    control: clingo.Control | None = None   # kept (keep_control) to explain "no plan" without grounding again
    shown: list[str] | None = None          # the shown atoms as text, once asked for (texts())
    #: a timeout called before the limit (solve_parts): the seconds grounding every part was expected
    #: to take at the pace of the parts grounded, more than the limit left
    needs: float = 0.0
    #: the levels of the answer whose cost went past what the solver counts, with the sum that went past
    #: (``_counted``, ``refuse_overflow``)
    overflow: dict[int, int] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """The shown atoms as text (what planner/decode.py reads)."""
        if self.shown is None:
            self.shown = symbol_texts(self.symbols)
        return self.shown


#: Bytes of the buffer ``symbol_texts`` writes each atom's text into.
TEXT_BUFFER = 1 << 16


def symbol_texts(symbols: list[clingo.Symbol]) -> list[str]:
    """``[str(sym) for sym in symbols]``, in a third of its time: clingo's C
    call straight, once per symbol, into one buffer (``str`` asks for the
    size first, allocates twice per symbol and checks errors that this call
    cannot raise). A text longer than the buffer clingo refuses (it never
    cuts one short): that symbol goes through ``str``. A planning child turns
    100,000 shown atoms into text at 10,000 resources while the parent waits."""
    try:
        from clingo._internal import _ffi, _lib
        to_text, string = _lib.clingo_symbol_to_string, _ffi.string
    except (ImportError, AttributeError):  # another clingo than the 5.8 series this was written for
        return [str(sym) for sym in symbols]
    buffer = _ffi.new("char[]", TEXT_BUFFER)
    texts = []
    append = texts.append
    for sym in symbols:
        if to_text(sym._rep, buffer, TEXT_BUFFER):
            append(string(buffer).decode())
        else:
            append(str(sym))   # longer than the buffer; or clingo's error, raised
    return texts


def _ground(program: Program, facts: list[str], extra: str, args: list[str]) -> tuple[clingo.Control, list[str]]:
    keep_search_reserve()   # (a planning child's: a search since gave it back, and what it held may be freed now)
    ctl, messages = _control(args)
    _add_and_ground(ctl, messages, program, extra, facts)
    return ctl, messages


def _control(args: list[str]) -> tuple[clingo.Control, list[str]]:
    """A Control whose messages are kept (the list returned), for diagnostics."""
    messages: list[str] = []
    return clingo.Control(args, logger=lambda _code, msg: messages.append(msg), message_limit=100), messages


def _add_and_ground(ctl: clingo.Control, messages: list[str], program: Program, extra: str,
                    facts: list[str] | None = None, added: Callable[[], object] | None = None) -> None:
    """The program, ordo's glue and ``extra`` (and ``facts``, unless added already) grounded;
    ``added()`` called once they are added, before grounding. The priority levels whose weights could
    add up past what the solver counts (``WEIGHT_SUM_MAX``) are kept for the search (``_AT_RISK``)."""
    weights = _Weights()
    try:
        ctl.register_observer(weights)
        program.add_to(ctl)
        ctl.add("base", [], GLUE + extra + program.enforcement_facts())
        if facts is not None:
            ctl.add("base", [], "\n".join(facts))
        if added is not None:
            added()
        ctl.ground([("base", [])])
    except RuntimeError:
        _grounding_failed(program, messages)
    at_risk = weights.at_risk()
    if at_risk:
        _AT_RISK[ctl] = at_risk


#: The most a priority level's cost may reach: the solver adds a level's weights up in 32 bits, and a
#: model past that wrapped to a negative cost, which it then took for the least: a plan that cost
#: 3,000,000,000 came back "optimal, cost -1294967296", one that cost 3 there for the taking (a review's).
WEIGHT_SUM_MAX = 2**31 - 1


class _Weights(clingo.backend.Observer):
    """The ground program's weighted literals of each priority level (its #minimize and weak constraints)."""

    def __init__(self) -> None:
        self.levels: dict[int, list[tuple[int, int]]] = {}

    def minimize(self, priority: int, literals: list[tuple[int, int]]) -> None:
        self.levels.setdefault(priority, []).extend(literals)

    def at_risk(self) -> dict[int, list[tuple[int, int]]]:
        """The levels whose weights could add up past WEIGHT_SUM_MAX, as the solver counts them (a
        negative weight as its absolute value on the literal's negation). Most programs have none,
        and their models are not looked at again; a level can add up past it in all and still fit
        in every model (weights of choices that exclude each other)."""
        return {level: literals for level, literals in self.levels.items()
                if sum(abs(weight) for _, weight in literals) > WEIGHT_SUM_MAX}


#: The levels at risk of each grounded Control that has any (``_Weights.at_risk``).
_AT_RISK: weakref.WeakKeyDictionary[clingo.Control, dict[int, list[tuple[int, int]]]] = weakref.WeakKeyDictionary()


def _counted(model: clingo.Model, at_risk: dict[int, list[tuple[int, int]]]) -> dict[int, int]:
    """The levels of ``model`` whose cost the solver cannot have counted right, each with the sum that went
    past its range: its own sum (a negative weight counted as its absolute value on the literal's
    negation) past WEIGHT_SUM_MAX, or the cost itself outside 32 bits, or not the cost it reports (the
    constant a negative weight adds wrapped: a #maximize of 3,600,000,000 reported "optimal, cost
    694967296": a review's)."""
    reported = dict(zip(model.priority, model.cost, strict=False))
    over = {}
    for level, literals in at_risk.items():
        true = [(literal, weight) for literal, weight in literals if model.is_true(literal)]
        cost = sum(weight for _, weight in true)
        own = sum(weight for _, weight in true if weight > 0) + sum(
            -weight for _, weight in literals if weight < 0) + sum(weight for _, weight in true if weight < 0)
        if own > WEIGHT_SUM_MAX:
            over[level] = own
        elif not -WEIGHT_SUM_MAX - 1 <= cost <= WEIGHT_SUM_MAX or reported.get(level, 0) != cost:
            over[level] = cost
    return over


def refuse_overflow(result: SolveResult, program: Program) -> None:
    """DiagnosticsError when the solver's answer had a level's cost past WEIGHT_SUM_MAX: it cannot be trusted."""
    if not result.overflow:
        return
    stated, soft = _weighed(program, set(result.overflow))
    file, line = stated[0] if stated else (soft[0][3], 0) if soft else ("", 0)
    levels = [f"{total:,} at priority {level}" for level, total in sorted(result.overflow.items(), reverse=True)]
    raise DiagnosticsError([Diagnostic(
        file=file, line=line, code="weights",
        summary=f"the weights of a #minimize or of weak constraints add up to {first_of(levels, 3)} in the solver's "
                f"answer, past {WEIGHT_SUM_MAX:,} either way, the most it counts at one priority level: lower them "
                "(or give the largest a priority of its own)",
        detail=_weighing(program, set(result.overflow)).lstrip(". "))])


def _grounding_failed(program: Program, messages: list[str]) -> None:
    diags = [parse_message(m, program.displays) for m in messages]
    errors = [d for d in diags if d.severity == "error"] or [
        Diagnostic(summary="grounding failed", detail="; ".join(messages))]
    raise DiagnosticsError(errors) from None


def ground_alongside(build: Callable[[], Program], facts: list[str], extra: str, args: list[str],
                     meanwhile: Callable[[Program], object] | None = None) -> tuple[Program, clingo.Control]:
    """``build()`` grounded as ``_ground`` grounds it, with clingo parsing
    the facts in a thread (it lets go of the GIL) while ``build`` makes and
    checks the program in this one (0.2-0.5 s each at 10,000 resources).
    Nothing of the program reaches clingo before ``build`` returns: a policy
    it refuses never runs. ``meanwhile(program)`` runs in a thread while the
    program grounds (clingo lets go of the GIL there too), started once the
    program's statements are added (the builder reads them: their reference
    counts are no two threads' at once); what it raises is dropped: it is to
    prepare what the caller would otherwise work out after."""
    ctl, messages = _control(args)
    failed: list[RuntimeError] = []

    def add_facts() -> None:
        try:
            ctl.add("base", [], "\n".join(facts))
        except RuntimeError as exc:
            failed.append(exc)

    adding = _started(add_facts, "ordo-facts")
    try:
        program = build()
    finally:
        adding.join()
    if failed:   # the facts did not parse: clingo's messages say why
        _grounding_failed(program, messages)
    beside: list[threading.Thread] = []

    def quietly() -> None:
        with contextlib.suppress(Exception):
            meanwhile(program)

    def added() -> None:
        if meanwhile is not None:
            beside.append(_started(quietly, "ordo-meanwhile"))

    try:
        _add_and_ground(ctl, messages, program, extra, added=added)
    finally:
        for thread in beside:
            thread.join()
    return program, ctl


def _started(work: Callable[[], object], name: str) -> threading.Thread:
    """``work`` started in a daemon thread."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def ground_only(program: Program, facts: list[str], *, timeout: float = 30.0,
                memory_mb: int | None = None) -> list[Diagnostic]:
    """Ground without solving, in a child within the limits (the defaults of
    the settings): grounding errors raise, and a limit that strikes, naming
    the policy that grounds largest; warnings are returned."""
    from planner.bounded import PlanningLimitError, default_memory_mb, ground_bounded  # built on this module

    try:
        messages = ground_bounded(program, facts, timeout=timeout, memory_mb=memory_mb or default_memory_mb())
    except PlanningLimitError as exc:
        raise DiagnosticsError([Diagnostic(file=exc.file, summary=str(exc), code="limit")]) from None
    return [parse_message(m, program.displays) for m in messages]


#: The search strategies (docs/architecture.md, "Planning"). Core-guided
#: optimisation with disjoint cores proves the optimum fastest on placement
#: instances, but finds no model before it is close to the optimum, and the
#: time to it grows faster than the instance (83 s at 50,000 resources).
#: Stratified, the first model comes in a second at any size, then better ones.
PRIMARY = "usc,oll,disjoint"
ANYTIME = "usc,oll,disjoint,stratify"
#: The share of the search time the primary strategy has before the anytime one takes over.
PRIMARY_SHARE = 0.5


def _search(ctl: clingo.Control, result: SolveResult, timeout: float, optimise: bool) -> None:
    """Solve on a grounded Control under a time limit, filling ``result``.
    Optimising, the primary strategy has PRIMARY_SHARE of the time; if it has
    not finished by then, the anytime strategy the rest, and the best model of
    either stands (with the lower bound proven so far)."""
    result.symbols, result.cost, result.priorities, result.bound, result.overflow = [], [], [], [], {}
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    finished, outcome = _run(ctl, result, timeout * PRIMARY_SHARE if optimise else timeout)
    if optimise and not finished:
        bound = result.bound
        ctl.configuration.solver.opt_strategy = ANYTIME
        finished, outcome = _run(ctl, result, max(0.0, deadline - time.monotonic()))
        # each phase's bound holds in the order the levels are compared in: keep the larger
        result.bound = max(result.bound, bound) if len(result.bound) == len(bound) else result.bound or bound
        ctl.configuration.solver.opt_strategy = PRIMARY   # as it was, for a later solve on this Control
    result.solve_seconds = time.perf_counter() - started
    stats = ctl.statistics.get("problem", {}).get("lp", {})
    result.atoms = int(stats.get("atoms", 0))
    result.rules = int(stats.get("rules", 0))
    result.status = "timeout"
    if outcome.unsatisfiable and finished and not result.symbols:
        result.status = "unsatisfiable"
    elif result.symbols or outcome.satisfiable:
        # With an objective, an exhausted search proved the last model optimal
        # (also when nothing was left to optimise: every cost is then 0).
        result.status = "optimal" if finished and optimise and outcome.exhausted else "satisfiable"
    if result.status == "optimal" or len(result.bound) != len(result.cost):
        result.bound = list(result.cost) if result.status == "optimal" else []


def solver_refused(exc: RuntimeError, program: Program | None = None) -> str:
    """What clingo's RuntimeError says, for the user: its last words, not its C++ function's
    signature; for the weights of a #minimize or a weak constraint that clasp cannot add up,
    what to do, and (``program``) where the weights come from."""
    said = str(exc).rsplit(": ", 1)[-1].strip() or type(exc).__name__
    hint = ""
    if "weight too large" in said:
        hint = (": the weights of a #minimize or of weak constraints add up past 2,147,483,647 at one "
                "priority level; lower them (or give the largest a priority of its own)")
        if program is not None:
            hint += _weighing(program)
    return f"{SOLVER_REFUSED} ({said}){hint}"


#: How a refusal of the solver's starts (``solver_refused``).
SOLVER_REFUSED = "the solver refused the policies' program"


def _weighing(program: Program, levels: set[int] | None = None) -> str:
    """Where a program's weights come from: the first weak constraint or #minimize of each file of the
    project's or library's that has one (the project's first), then its soft policies, heaviest first;
    at these priority ``levels`` where given (a #minimize whose priority is a variable counts at all)."""
    stated, soft = _weighed(program, levels)
    out = ""
    if stated:
        out += ". Weak constraints or #minimize: " + first_of([f"{display}:{line}" for display, line in stated], 3)
    if soft:
        out += ". Soft policies, heaviest first: " + first_of(
            [f"{name} ({display}) weight {-weight:,} at priority {priority}"
             for weight, priority, name, display in soft], 3)
    return out


def _weighed(program: Program, levels: set[int] | None = None,
             ) -> tuple[list[tuple[str, int]], list[tuple[int, int, str, str]]]:
    """The first weak constraint or #minimize of each file that has one (at one of ``levels``, where
    given), as (file, line), the project's files first; the soft policies (at one of ``levels``) as
    (-weight, priority, name, file), heaviest first, the project's first."""
    def at_level(stm: ast.AST) -> bool:
        priority = stm.priority
        if levels is None or priority.ast_type != ast.ASTType.SymbolicTerm:   # (a variable's: any level)
            return True
        return priority.symbol.type != clingo.SymbolType.Number or priority.symbol.number in levels

    stated = [(f.display, line) for f in sorted(program.files, key=lambda f: f.origin != "project")
              if f.origin != "base"
              for line in [next((s.location.begin.line for s in f.statements
                                 if s.ast_type == ast.ASTType.Minimize and at_level(s)), 0)] if line]
    soft = sorted({(f.origin != "project", -f.meta.weight, f.meta.priority, f.meta.name, f.display)
                   for f in program.files if f.meta.enforcement == "soft" and (levels is None or f.meta.priority in
                                                                                 levels)})
    return stated, [item[1:] for item in soft]


#: Address space (MB) a planning child under a memory cap keeps aside for the thread each search runs
#: on (planner.bounded): given back while the search runs, taken again before the next grounding.
#: Without it a grounding that came close to the cap left no room for that thread's stack and
#: thread-local data, and the C library ended the child ("cannot allocate memory for thread-local
#: data", exit 127) instead of the cap's message naming what to raise (the sweep of 6 December).
SEARCH_RESERVE_MB = 12
_reserve: list[mmap.mmap] = []   # the mapping kept aside now, if any
_reserve_mb = 0   # what this process keeps aside (set once in a planning child; 0: none)


def keep_search_reserve(megabytes: int | None = None) -> None:
    """Set ``megabytes`` of address space aside for the next search's thread, from a planning
    child's start on (its stack, 8 MB, and thread-local data); without ``megabytes``, what was set
    once, again if a search took it; none when it does not fit now (a grounding will not either,
    and says so)."""
    global _reserve_mb
    if megabytes is not None:
        _reserve_mb = megabytes
    if not _reserve and _reserve_mb > 0:
        with contextlib.suppress(OSError, ValueError):
            _reserve.append(mmap.mmap(-1, _reserve_mb << 20))


@contextlib.contextmanager
def searching() -> Iterator[None]:
    """Around a search on a thread of clingo's: the reserve (in a planning child) given back for it.
    In a planning child, a search that ran out of memory is a MemoryError, as a grounding's is, which
    the child reports as the cap striking (clingo says RuntimeError "bad_alloc" there; and nothing
    more when the search's thread could not start for want of memory)."""
    kept = bool(_reserve)
    if kept:
        _reserve.pop().close()
    try:
        yield
    except RuntimeError as exc:
        if _reserve_mb and str(exc) in ("bad_alloc", ""):
            raise MemoryError("the search ran out of memory") from None
        raise


def _run(ctl: clingo.Control, result: SolveResult, timeout: float) -> tuple[bool, clingo.SolveResult]:
    """One solve call of at most ``timeout`` seconds: whether it finished, and
    how. A model replaces the one in ``result`` only when it costs less."""

    at_risk = _AT_RISK.get(ctl)

    def on_model(model: clingo.Model) -> None:
        cost = list(model.cost)
        if result.symbols and cost >= result.cost:
            return
        result.symbols = model.symbols(shown=True)
        result.cost = cost
        result.priorities = list(model.priority)
        result.overflow = _counted(model, at_risk) if at_risk else {}

    deadline = time.monotonic() + timeout
    with searching(), ctl.solve(on_model=on_model, async_=True) as handle:
        finished = handle.wait(timeout)
        while not finished and time.monotonic() < deadline:  # a wait may return early
            finished = handle.wait(max(0.0, deadline - time.monotonic()))
        if not finished:
            handle.cancel()
        outcome = handle.get()
    result.bound = [int(b) for b in ctl.statistics.get("summary", {}).get("lower", []) if math.isfinite(b)]
    return finished, outcome


def relax(ctl: clingo.Control, timeout: float) -> SolveResult:
    """Solve a STRICT Control again with its hard constraints made soft
    (violations minimised above every user priority): no new grounding."""
    ctl.assign_external(clingo.Function("__strict"), False)
    ctl.configuration.solve.models = "0"
    result = SolveResult(status="timeout")
    _search(ctl, result, timeout, True)
    return result


def _args(optimise: bool) -> list[str]:
    # usc with disjoint cores: half the time of plain usc on large placement
    # instances (benchmarks/README.md); one thread, so results are deterministic.
    return [f"--opt-strategy={PRIMARY}", "--opt-mode=opt", f"--models={0 if optimise else 1}", "--parallel-mode=1"]


def own_objective(program: Program, facts: list[str]) -> bool:
    """Whether the program has something of its own to optimise with these
    facts: a policy's objective, or the request's order among siblings (not
    the placements the facts may keep: planner.facts.keep_placements)."""
    return program.has_objective or orders_siblings(facts)


def _strict_cost(result: SolveResult, own: bool = True, keeping: bool = False) -> None:
    """STRICT carries the relaxed objective switched off, and facts that keep
    another plan's placements (``keeping``: planner.facts.keep_placements) a
    level of their own: not costs of the plan. Without an objective of the
    program's own (``own``), an answer is satisfiable, however well it keeps
    the placements."""
    if keeping and not own and result.status == "optimal":
        result.status = "satisfiable"
    keep = [i for i, p in enumerate(result.priorities) if p != RELAXED_PRIORITY and not (keeping and p == KEEP_LEVEL)]
    result.cost = [result.cost[i] for i in keep]
    result.bound = [result.bound[i] for i in keep if i < len(result.bound)]
    result.priorities = [result.priorities[i] for i in keep]


def solve_parts(program: Program, parts: list[list[str]], *, timeout: float = 30.0,
                on_grounded: Callable[[float], float] | None = None,
                on_grounding: Callable[[], None] | None = None) -> SolveResult:
    """Solve the STRICT program of each part's facts on its own, one after the
    other (planner/slice.py: the parts share no choice), and join the answers
    (``join``). Each part is grounded, searched and freed before the next:
    one ground program at a time in memory. The search of a part has the
    share of the time left that its facts are of those left, less what
    grounding the rest is expected to take (at the pace of the parts so
    far); a part left no time at all is not grounded (a grounding cannot be
    stopped), and the answer is then ``timeout``.
    ``on_grounded`` as for ``solve``, told as each part is grounded;
    ``on_grounding`` told before each part after the first is."""
    own = any(own_objective(program, facts) for facts in parts)
    keeping = any(keeps_placements(facts) for facts in parts)
    optimise = own or keeping
    args = _args(optimise)
    done: list[SolveResult] = []
    left = sum(len(facts) for facts in parts)
    deadline = time.monotonic() + timeout
    grounded = grounding = 0.0   # facts grounded so far, and the seconds that took
    for number, facts in enumerate(parts):
        if number and time.monotonic() >= deadline:
            done.append(SolveResult(status="timeout"))   # no time to ground it: a grounding cannot be stopped
            break
        if number and on_grounding is not None:
            on_grounding()
        started = time.perf_counter()
        ctl, messages = _ground(program, facts, STRICT, args)
        part = SolveResult(status="timeout", ground_seconds=time.perf_counter() - started)
        left -= len(facts)
        grounded, grounding = grounded + len(facts), grounding + part.ground_seconds
        if on_grounded is not None:
            deadline = time.monotonic() + on_grounded(part.ground_seconds)
        part.warnings = list(dict.fromkeys(parse_message(m, program.displays) for m in messages))   # (once each)
        budget = max(0.0, deadline - time.monotonic() - grounding / max(1, grounded) * left)
        if not budget and left:   # the parts left would not be grounded in time, let alone searched
            part.needs = grounding / max(1, grounded) * (grounded + left)
        _search(ctl, part, budget * len(facts) / (len(facts) + left), optimise)
        refuse_overflow(part, program)
        _strict_cost(part, own, keeping)
        part.shown = symbol_texts(part.symbols) if part.status in ("optimal", "satisfiable") else []
        part.symbols = []
        done.append(part)
        del ctl
        if part.status in ("unsatisfiable", "timeout"):
            break
    return join(done, optimise)


def join(parts: list[SolveResult], optimise: bool) -> SolveResult:
    """The answers of parts that share no choice, as one: the shown atoms of all
    (each once, in the parts' order), the costs added level by level, the
    ground programs' sizes and seconds added up, each warning once. Optimal
    when every part is; satisfiable (with the bounds added up, when every part
    has one) when the time limit cut one short; unsatisfiable or timeout as
    the first part that is (in the parts' order, as ``solve_parts`` stops there)."""
    joined = SolveResult(status="optimal" if optimise else "satisfiable")
    shown: dict[str, None] = {}
    cost: dict[int, int] = {}
    bound: dict[int, int] | None = {}
    warnings: dict[tuple, Diagnostic] = {}
    for part in parts:
        joined.needs = max(joined.needs, part.needs)
        joined.ground_seconds += part.ground_seconds
        joined.solve_seconds += part.solve_seconds
        joined.atoms += part.atoms
        joined.rules += part.rules
        for warning in part.warnings:
            warnings.setdefault((warning.file, warning.line, warning.column, warning.summary, warning.detail), warning)
        if joined.status in ("unsatisfiable", "timeout"):
            pass   # the first part that failed decides, as solve_parts stops there
        elif part.status in ("unsatisfiable", "timeout"):
            joined.status = part.status
        elif part.status == "satisfiable" and joined.status == "optimal":
            joined.status = "satisfiable"
        shown.update(dict.fromkeys(part.texts()))
        for priority, value in zip(part.priorities, part.cost, strict=True):
            cost[priority] = cost.get(priority, 0) + value
        if bound is not None and len(part.bound) == len(part.cost):
            for priority, value in zip(part.priorities, part.bound, strict=True):
                bound[priority] = bound.get(priority, 0) + value
        else:
            bound = None
    joined.warnings = list(warnings.values())
    if joined.status in ("unsatisfiable", "timeout"):
        return joined
    joined.priorities = sorted(cost, reverse=True)
    joined.cost = [cost[p] for p in joined.priorities]
    joined.bound = [bound[p] for p in joined.priorities] if bound is not None else []
    if joined.status == "optimal":
        joined.bound = list(joined.cost)
    joined.shown = list(shown)
    return joined


def with_symbols(result: SolveResult) -> SolveResult:
    """A result whose atoms are text only (``shown``: a child's, or joined parts')
    given back as symbols the atoms read by their arguments (__violation, place),
    when it has violations: what conflicts_from reads."""
    texts = result.texts()
    if any(text.startswith("__violation(") for text in texts):
        result.symbols = [clingo.parse_term(t) for t in texts if t.startswith(("__violation(", "place("))]
    return result


def solve(program: Program, facts: list[str], *, relaxed: bool = False, timeout: float = 30.0,
          mode: str | None = None, keep_control: bool = False,
          on_grounded: Callable[[float], float] | None = None) -> SolveResult:
    """Solve once. Errors in the policies (unsafe variables ...) raise DiagnosticsError.

    ``mode`` replaces the STRICT (or RELAXED) program text with another that
    optimises (planner.testing's probe of which constraints bite).
    ``on_grounded`` is told the seconds grounding took and returns the seconds
    the search may take (instead of ``timeout``)."""
    own = own_objective(program, facts)
    keeping = keeps_placements(facts)
    optimise = relaxed or mode is not None or own or keeping
    args = _args(optimise)
    started = time.perf_counter()
    ctl, messages = _ground(program, facts, mode if mode is not None else RELAXED if relaxed else STRICT, args)
    result = SolveResult(status="timeout")
    result.ground_seconds = time.perf_counter() - started
    result.warnings = list(dict.fromkeys(parse_message(m, program.displays) for m in messages))   # (once each)
    if on_grounded is not None:
        timeout = on_grounded(result.ground_seconds)

    _search(ctl, result, timeout, optimise)
    refuse_overflow(result, program)
    if not relaxed and mode is None:
        _strict_cost(result, own, keeping)
    if keep_control:
        result.control = ctl
    return result
