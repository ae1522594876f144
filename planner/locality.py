"""Whether a project's own rules read only what a slice keeps.

planner/slice.py plans only the resources a request may change and what
relates to them, and cuts a large slice into parts solved each on its own.
That gives the whole model's plan only if no rule reads a resource the slice
or the part leaves out. The stock policies' reads are known; a project's rule
files are read here, statement by statement, and the project is sliced only
if every statement is *local*, which this module checks without grounding:

* Every rule that mentions a resource is **anchored**: its body has a
  positive atom that holds only for a resource the plan changes (``op/2``,
  ``op_from/3``, ``op_to/3``, ``raises/3``, ``lowers/3``, ``changed/1``,
  ``run/2``, ``pinned/2``), named by a variable (not ``_``, which a
  constraint's tuple of values leaves out: each part would count the
  instance once), and every other resource it mentions (a variable,
  a constant or ``_`` in a resource's place of a known predicate) is related
  to that anchor *directly*, by a positive ``part_of/2``, ``relation/3`` or
  ``ref/3`` atom between the two, either way (or, for ``_``, a negated one:
  ``not part_of(_,S)``, S has no part). A slice holds every resource
  that may change and everything directly related to it, and a part holds
  its moving resources with the same neighbours, so every instance of such a
  rule is in the slice, and in exactly one part, with every atom it reads
  about those resources as the whole program has it. An instance whose anchor
  does not change has no anchor atom, in the whole program as in the slice.
* A rule that mentions no resource (it reads the targets, or lifecycles) is
  the same in every program (a slice and each part have every target and
  the lifecycles of every type the model has).
* Heads: a constraint, ``before/2`` (each end ``op(R,O)`` with R one of the
  rule's resources, or the operation of a ``raises``/``lowers`` atom of its
  body), ``group/2`` (of one of its resources), ``group_limit/2``, or a
  helper predicate of the project's own that mentions no resource (a rule
  using it reads it like a target's fact). A weak constraint or
  ``#minimize`` element names its anchor among its terms, so that the costs
  of the parts add up to the whole's (a tuple is counted once).
* Bodies: atoms of the predicates ordo writes and the base library derives
  (policies/README.md), with their resources in known places; comparisons.
  Not local: ``capacity/3`` (a slice's targets have what is outside it taken
  off), ``before/2`` read back, aggregates, conditional literals, double
  negation, pools and intervals in a resource's place, any other directive
  than ``#const``, ``#defined`` and ``#program base``, and defining a
  predicate the base library or a stock policy defines or reads (``replace/1``
  changes what the plan does to a resource, wherever it is).

Anything else keeps the program whole: the check only ever costs speed. Two
forms it refuses on purpose, for they read what a slice leaves out: a
constraint over resources that need not change (``:- relation("k",A,B),
located(A,T1), located(B,T2), T1 != T2.``), which the whole program checks
for every pair in the inventory; and a resource two relations away from the
anchor.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from clingo import ast

from domain.errors import Diagnostic
from planner.lint import _facts_of, _split  # what a file or statement defines and reads, as lint finds it

#: Known predicates: (name, arity) -> the argument places that hold a resource.
RESOURCE_PLACES: dict[tuple[str, int], tuple[int, ...]] = {
    # ordo's facts (policies/base/interface.lp)
    ("resource", 2): (0,), ("current", 2): (0,), ("desired", 2): (0,), ("requested", 1): (0,),
    ("priority", 2): (0,), ("changed", 1): (0,), ("run", 2): (0,), ("placeable", 1): (0,),
    ("placed", 2): (0,), ("pinned", 2): (0,), ("requires", 3): (0,), ("label", 3): (0,),
    ("param", 3): (0,), ("failed", 2): (0,), ("planned", 2): (0,),
    ("part_of", 2): (0, 1), ("relation", 3): (1, 2), ("ref", 3): (0, 1),
    ("state", 3): (), ("transition", 4): (), ("milestone", 3): (), ("final", 2): (), ("update", 2): (),
    ("controller", 3): (), ("duration", 3): (), ("target", 1): (), ("zone", 2): (), ("attr", 3): (),
    ("target_label", 3): (), ("refused", 1): (), ("claimed_elsewhere", 1): (),
    # derived by the base library (lifecycle.lp, placement.lp)
    ("initial", 2): (), ("goal", 2): (0,), ("present", 1): (0,), ("op", 2): (0,), ("op_from", 3): (0,),
    ("op_to", 3): (0,), ("raises", 3): (0,), ("lowers", 3): (0,), ("reaches", 2): (0,),
    ("has_milestone", 2): (0,), ("place", 2): (0,), ("located", 2): (0,), ("relocate", 1): (0,),
}
#: Atoms that hold only for a resource the plan may change.
ANCHORS = frozenset({("op", 2), ("op_from", 3), ("op_to", 3), ("raises", 3), ("lowers", 3), ("changed", 1),
                     ("run", 2), ("pinned", 2)})
#: Atoms that relate two resources as a slice does (both ways).
LINKS = frozenset({("part_of", 2), ("relation", 3), ("ref", 3)})
#: Operations named by the third argument of these.
OPERATIONS = frozenset({("raises", 3), ("lowers", 3)})
#: What a project's rule may define besides helpers of its own (``before`` is
#: ``__before`` once labelled, a constraint ``__violation``; planner/program.py).
HEADS = {("__violation", 2): "constraint", ("__before", 3): "before", ("group", 2): "group",
         ("group_limit", 2): "group_limit"}
#: Where statements of other kinds are allowed.
HARMLESS = frozenset({ast.ASTType.Definition, ast.ASTType.Defined, ast.ASTType.Comment})


GUIDE = 'policies/README.md, "Rules that keep a plan proportional to the change"'
GLOBAL_COST = "a constraint or weak constraint that mentions no resource (each part would count it)"


#: How the note of a rule that is not local begins (the rest says why).
NOT_LOCAL = "plans solve the whole model, not the slice a request changes: "


class _NotLocal(Exception):
    """Why one statement is not local (a phrase)."""


def nonlocal_rule(files: Iterable) -> Diagnostic | None:
    """A note naming the first statement of the project's files (origin
    "project") that is not local and why (the module's docstring), or None
    when all are. What the other files (the base library, stock policies)
    define or read, ``replace/1`` too, is no helper of the project's."""
    files = list(files)
    project = [f for f in files if f.origin == "project"]
    helpers: dict[tuple[str, int], list] = {}
    for pfile in project:
        for stm in pfile.statements:
            for sig, _ in _split(stm)[0]:
                if sig not in HEADS:
                    helpers.setdefault(sig, []).append(stm)
    taken = {sig for f in files if f.origin != "project"
             for sig, _ in chain(_facts_of(f).defined, _facts_of(f).reads)} if helpers else set()
    # A helper is global while every rule defining it mentions no resource (a fixpoint: helpers read helpers).
    known = set(helpers)
    changed = True
    while changed:
        changed = False
        for sig in sorted(known):
            try:
                if any(_rule_nodes(stm, known) for stm in helpers[sig]):
                    raise _NotLocal("")
            except _NotLocal:
                known.discard(sig)
                changed = True
    for pfile in project:
        for stm in pfile.statements:
            try:
                _check(stm, known, taken)
            except _NotLocal as why:
                return Diagnostic(file=pfile.display, line=stm.location.begin.line,
                                  summary=f"{NOT_LOCAL}{why}",
                                  detail=GUIDE, severity="note", code="slice")
    return None


def _check(stm: ast.AST, helpers: set, taken: set) -> None:
    kind = stm.ast_type
    if kind in HARMLESS:
        return
    if kind == ast.ASTType.Program:
        if stm.name != "base" or stm.parameters:
            raise _NotLocal(f"#program {stm.name}: only the base program is read")
        return
    if kind == ast.ASTType.Minimize:
        nodes = _body_nodes(stm.body, helpers)
        if not nodes:
            raise _NotLocal(GLOBAL_COST)
        named = {t.name for t in stm.terms if t.ast_type == ast.ASTType.Variable}
        if not _anchored(nodes) & named:
            raise _NotLocal("a weak constraint whose terms do not name the resource the plan changes (its anchor)")
        return
    if kind != ast.ASTType.Rule:
        raise _NotLocal(f"a statement of kind {kind.name}")
    head = stm.head
    if head.ast_type != ast.ASTType.Literal or head.sign != ast.Sign.NoSign \
            or head.atom.ast_type != ast.ASTType.SymbolicAtom or head.atom.symbol.ast_type != ast.ASTType.Function:
        raise _NotLocal("a choice, disjunction, pool or other head than one atom")
    sym = head.atom.symbol
    sig = (sym.name, len(sym.arguments))
    role = HEADS.get(sig)
    if role is None:
        if sig in taken or sig in RESOURCE_PLACES or sym.name.startswith("__"):
            raise _NotLocal(f"defines {sym.name}/{sig[1]}, which ordo's own rules define or read")
        if sig not in helpers:
            raise _NotLocal(f"defines {sym.name}/{sig[1]} from what resources say")
        return
    nodes = _body_nodes(stm.body, helpers)
    heads: list[str] = []
    if role == "before":
        for end in sym.arguments[:2]:
            heads.append(_operation_end(end, nodes))
    elif role == "group":
        heads.append(_node(sym.arguments[0], [0]))
    if not nodes:
        if heads:
            raise _NotLocal("names a resource its body does not read")
        if role == "constraint":
            raise _NotLocal(GLOBAL_COST)
        return
    _anchored(nodes)
    if heads and not all(h in nodes.nodes for h in heads):
        raise _NotLocal("names a resource its body does not read")


class _Nodes:
    """The resources a body mentions, its anchors and its direct links."""

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.anchors: set[str] = set()
        self.links: set[tuple[str, str]] = set()
        self.operations: dict[str, str] = {}   # a variable naming raises/lowers' operation -> its resource

    def __bool__(self) -> bool:
        return bool(self.nodes)


def _anchored(nodes: _Nodes) -> set[str]:
    """The anchors every other resource of the body is directly linked to; none: not local."""
    found = {a for a in nodes.anchors
             if all(n == a or (a, n) in nodes.links or (n, a) in nodes.links for n in nodes.nodes)}
    if not found:
        if not nodes.anchors:
            raise _NotLocal("reads resources without an atom that holds only for one the plan changes "
                            "(op, raises, lowers, changed, run, pinned)")
        raise _NotLocal("reads a resource not directly related (part_of, relation, ref) to the one the plan "
                        "changes")
    return found


def _body_nodes(body: list[ast.AST], helpers: set) -> _Nodes:
    out = _Nodes()
    fresh = [0]
    for lit in body:
        if lit.ast_type != ast.ASTType.Literal:
            raise _NotLocal("an aggregate or a conditional literal")
        atom = lit.atom
        if atom.ast_type in (ast.ASTType.Comparison, ast.ASTType.BooleanConstant):
            continue
        if atom.ast_type != ast.ASTType.SymbolicAtom or atom.symbol.ast_type != ast.ASTType.Function:
            raise _NotLocal("an aggregate or a theory atom")
        if lit.sign == ast.Sign.DoubleNegation:
            raise _NotLocal("a double negation")
        sym = atom.symbol
        if sym.external:
            raise _NotLocal("an @-term")
        sig = (sym.name, len(sym.arguments))
        if sig == ("__strict", 0) or sig in helpers:
            continue
        places = RESOURCE_PLACES.get(sig)
        if places is None:
            raise _NotLocal(f"reads {sym.name}/{sig[1]}" + (
                ", which a slice changes (its targets have what lies outside taken off)" if sig == ("capacity", 3)
                else ", which is not among the facts ordo writes or the base library derives"))
        positive = lit.sign == ast.Sign.NoSign
        found = [_node(sym.arguments[i], fresh) for i in places]
        out.nodes.update(found)
        if positive and sig in ANCHORS and found[0][0] not in "?=":
            out.anchors.add(found[0])   # a named variable: it is in the constraint's tuple (planner/program.py)
        if sig in LINKS and (positive or found[0][0] == "?" or found[1][0] == "?"):
            out.links.add((found[0], found[1]))   # negated, only ``_`` is linked: "S has no part"
        if positive and sig in OPERATIONS and sym.arguments[2].ast_type == ast.ASTType.Variable:
            out.operations[sym.arguments[2].name] = found[0]
    return out


def _node(term: ast.AST, fresh: list[int]) -> str:
    """A resource's place in an atom: a variable, ``_`` (a variable of its own) or a constant."""
    if term.ast_type == ast.ASTType.Variable:
        if term.name == "_":
            fresh[0] += 1
            return f"?{fresh[0]}"   # no variable's name
        return term.name
    if term.ast_type == ast.ASTType.SymbolicTerm:
        return f"={term.symbol}"
    raise _NotLocal(f"{term} in a resource's place (a variable or a constant is expected)")


def _operation_end(term: ast.AST, nodes: _Nodes) -> str:
    """The resource of one end of a before/2 head."""
    if term.ast_type == ast.ASTType.Function and term.name == "op" and len(term.arguments) == 2:
        if term.arguments[0].ast_type == ast.ASTType.Variable and term.arguments[0].name.startswith("_"):
            raise _NotLocal("before/2 of an operation of no named resource")
        return _node(term.arguments[0], [0])
    if term.ast_type == ast.ASTType.Variable and term.name in nodes.operations:
        return nodes.operations[term.name]
    raise _NotLocal(f"before/2 of {term}: an end is op(R,O) or the operation of a raises or lowers atom")


def _rule_nodes(stm: ast.AST, helpers: set) -> bool:
    """Whether a helper's defining rule mentions a resource (raises _NotLocal when it reads something else)."""
    if stm.ast_type != ast.ASTType.Rule or stm.head.ast_type != ast.ASTType.Literal:
        raise _NotLocal("")
    return bool(_body_nodes(stm.body, helpers))
