"""Lint of policy files: what ASP authors get wrong that clingo lets pass.

* a predicate a rule reads that no rule, fact or interface defines (usually a
  typo: reported with a did-you-mean);
* ``#script`` or an ``@function(...)`` call in any policy file (policies are
  rules, not code: nothing a policy says may run as a script);
* a policy defining a predicate the base library reserves (``op/2``,
  ``place/2``, a fact of the interface ...), in a pool (``op(R,"a";R,"b")``)
  or by classical negation (``-place(R,T)``) too;
* ``#show`` (the planner reads the shown atoms as its answer),
  ``#program NAME`` other than base (never grounded), and before/2 other than
  as a rule's one head (the plan would lack the order the solver kept);
* (warnings) a label key, relationship kind, type ... that a project policy
  reads but no model file uses.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import clingo
from clingo import ast

from domain.errors import Diagnostic
from domain.yamlsrc import ParseCache, code_fingerprint
from planner.facts import FACT_SIGNATURES
from planner.metadata import PolicyMeta
from planner.program import CACHES, GLUE, PolicyFile, Program, before_head

Sig = tuple[str, int]


#: The attributes holding child nodes, by node type (clingo's ``child_keys``, worked out once per type).
_CHILD_KEYS: dict[ast.ASTType, tuple[str, ...]] = {}

T = ast.ASTType
# What a node is to the lint: where the atoms under it count (defined; read in the body; read
# in a condition of the head; nowhere) or, from _STATEMENT on, which part of a statement it is.
_NOWHERE, _DEFINES, _READS, _READS_IN_HEAD, _STATEMENT, _HEAD, _ELEMENT, _AGGREGATE_ELEMENT = range(8)
#: A child's role by its parent's role, the parent's type (for a statement and a head) and the
#: attribute holding it; a child of a part of a statement not named here is nowhere.
_PARTS: dict[tuple[int, ast.ASTType | None, str], int] = {
    (_STATEMENT, T.Rule, "head"): _HEAD, (_STATEMENT, T.Rule, "body"): _READS,
    (_STATEMENT, T.External, "atom"): _DEFINES, (_STATEMENT, T.External, "body"): _READS,
    (_STATEMENT, T.Minimize, "body"): _READS, (_STATEMENT, T.Edge, "body"): _READS,
    (_STATEMENT, T.Heuristic, "body"): _READS,
    (_HEAD, T.Disjunction, "elements"): _ELEMENT, (_HEAD, T.Aggregate, "elements"): _ELEMENT,
    (_HEAD, T.HeadAggregate, "elements"): _AGGREGATE_ELEMENT,
    (_AGGREGATE_ELEMENT, None, "condition"): _ELEMENT,
    (_ELEMENT, None, "literal"): _DEFINES, (_ELEMENT, None, "condition"): _READS_IN_HEAD,
}


def _walk(stm: ast.AST, atoms_only: bool = False) -> Iterator[tuple[ast.AST, ast.ASTType, int]]:
    """Every node of a statement, itself first, depth first in clingo's order
    of attributes, with its type and role (``atoms_only``: none below a
    symbolic atom). One pass: each attribute of clingo's AST is a call into
    the library."""
    stack = [(stm, _STATEMENT)]
    while stack:
        node, role = stack.pop()
        kind = node.ast_type
        if role == _HEAD and kind == T.Literal:
            role = _DEFINES   # a rule's head literal (other heads define through their elements)
        yield node, kind, role
        if atoms_only and kind == T.SymbolicAtom:
            continue
        keys = _CHILD_KEYS.get(kind)
        if keys is None:
            keys = _CHILD_KEYS[kind] = tuple(node.child_keys)
        children: list[tuple[ast.AST, int]] = []
        for key in keys:
            child = getattr(node, key)
            if not child:
                continue
            if kind == T.SymbolicAtom:
                below = _NOWHERE   # its terms hold no atoms
            elif role >= _STATEMENT:
                below = _PARTS.get((role, kind if role in (_STATEMENT, _HEAD) else None, key), _NOWHERE)
            else:
                below = role
            if isinstance(child, ast.AST):
                children.append((child, below))
            else:
                children.extend((item, below) for item in child)
        stack.extend(reversed(children))


def _atoms(symbol: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(predicate name, function term) of each atom a symbolic atom's term stands for: ``p(X,Y)``;
    each of a pool's, ``p(1;2)`` or ``p(R,"a";R,"b")`` (clingo's parser makes it a pool of the
    whole atoms); and ``-p(X)``, classical negation, as the predicate ``-p`` (which clingo keeps
    apart from ``p``, save that both may not hold: a hidden constraint on ``p``)."""
    kind = symbol.ast_type
    if kind == T.Function:
        yield symbol.name, symbol
    elif kind == T.Pool:
        for each in symbol.arguments:
            yield from _atoms(each)
    elif kind == T.UnaryOperation and symbol.operator_type == ast.UnaryOperator.Minus:
        yield from ((f"-{name}", function) for name, function in _atoms(symbol.argument))


def _symbols(stm: ast.AST) -> Iterator[ast.AST]:
    """The function terms of the symbolic atoms (p(X,Y) in a literal) of a statement."""
    for node, kind, _ in _walk(stm, atoms_only=True):
        if kind == T.SymbolicAtom:
            for _, function in _atoms(node.symbol):
                yield function


def _parts(stm: ast.AST) -> tuple[list[tuple[Sig, ast.Location]], list[tuple[Sig, ast.Location]],
                                  list[tuple[str, ast.Location]]]:
    """The atoms one statement defines and those it reads ((name, arity),
    location: the body's, then those of the head's conditions), and the script
    functions it calls ("@name", location)."""
    found: dict[int, list[tuple[Sig, ast.Location]]] = {_DEFINES: [], _READS: [], _READS_IN_HEAD: []}
    calls = []
    # A script call is a term written '@name(...)': with no '@' in the statement's text
    # there is none, and the terms below its atoms need no walk (half of the nodes).
    for node, kind, role in _walk(stm, atoms_only="@" not in str(stm)):
        if kind == T.Function and node.external:
            calls.append((f"@{node.name}", node.location))
        elif kind == T.SymbolicAtom and role in found:
            found[role].extend(((name, len(function.arguments)), function.location)
                               for name, function in _atoms(node.symbol))
    return found[_DEFINES], found[_READS] + found[_READS_IN_HEAD], calls


def _split(stm: ast.AST) -> tuple[list[tuple[Sig, ast.Location]], list[tuple[Sig, ast.Location]]]:
    """(defined, read) atoms of one statement."""
    defined, read, _ = _parts(stm)
    return defined, read


#: Why a policy may not ``#show``, nor define before/2 but as a rule's one head: (summary, detail).
REFUSED = {"#show": ("'#show' is not allowed in policy files",
                "the planner reads the shown atoms as its answer (op/2, place/2 ...): a shown term or an atom of "
                "another arity would put in the plan what no rule derived, past every policy; derive atoms in "
                "rules instead"),
           "before": ("before/2 is defined here other than as the one head of a rule",
                      "ordo keeps the order of a rule 'before(A,B) :- ...' in the plan, each edge with its rule; in "
                      "a pool, a choice, a disjunction or an #external it would bind the solver but be missing from "
                      "the plan: write one rule per edge")}

#: Statements clingo reads that do nothing in ordo's plans: said as warnings, where they are.
NO_EFFECT = {"#heuristic": ("'#heuristic' has no effect here: ordo's solver uses no domain heuristics",
                            "clingo follows #heuristic only with --heuristic=Domain, which ordo does not set; say "
                            "what is preferred with a weak constraint (:~ ... [W@P]) instead"),
             "#external": ("'#external' atoms no rule derives are false in every plan: nothing assigns them",
                           "ordo assigns no external atom of a policy's; derive the atom in a rule, or declare it "
                           "with '#defined name/arity.' to read a predicate that may have no atoms"),
             "#external [true]": ("'#external ... [true]' atoms are true in every plan: nothing assigns them",
                                  "ordo assigns no external atom of a policy's: write them as facts")}

#: Heads that planner/program.py writes when it labels constraints and before/2 rules.
LABELS: frozenset[Sig] = frozenset({("__violation", 2), ("__before", 3)})

#: What policies may define for the base library to read (policies/README.md).
OPEN_SIGNATURES: frozenset[Sig] = frozenset({("before", 2), ("replace", 1), ("group", 2), ("group_limit", 2)})

At = tuple[int, int]  # line, column


@dataclass(frozen=True)
class _FileFacts:
    """What one policy file defines and reads, and the code it would run."""

    defined: tuple[tuple[Sig, At], ...]
    declared: tuple[Sig, ...]  # #defined
    constants: tuple[tuple[str, At], ...]  # #const
    reads: tuple[tuple[Sig, At], ...]
    code: tuple[tuple[str, At], ...]  # "#script" or "@name", where
    # "#show", "#program NAME" (not base), "before" (other form); "#heuristic", "#external" (NO_EFFECT: warned of)
    refused: tuple[tuple[str, At], ...] = ()


def _at(loc: ast.Location) -> At:
    return loc.begin.line, loc.begin.column


def _file_facts(statements: list[ast.AST]) -> _FileFacts:
    defined: list[tuple[Sig, At]] = []
    declared: list[Sig] = []
    constants: list[tuple[str, At]] = []
    reads: list[tuple[Sig, At]] = []
    code: list[tuple[str, At]] = []
    refused: list[tuple[str, At]] = []
    for stm in statements:
        kind = stm.ast_type   # read once: each read is a call into clingo
        if kind == ast.ASTType.Script:
            code.append(("#script", _at(stm.location)))
            continue
        if kind in (ast.ASTType.ShowTerm, ast.ASTType.ShowSignature) or (
                kind == ast.ASTType.Program and (stm.name != "base" or len(stm.parameters))):
            # (base with parameters is another program: '#program base(k).' turned the rules after it off)
            refused.append(("#program " + stm.name + (f"({','.join(p.name for p in stm.parameters)})"
                                                      if len(stm.parameters) else "")
                            if kind == ast.ASTType.Program else "#show", _at(stm.location)))
        got, read, calls = _parts(stm)
        code += [(name, _at(loc)) for name, loc in calls]
        if any(sig == ("before", 2) for sig, _ in got) and before_head(stm) is None:
            refused.append(("before", _at(stm.location)))
        if kind == ast.ASTType.Heuristic:
            refused.append(("#heuristic", _at(stm.location)))
        elif kind == ast.ASTType.External and (value := str(stm.external_type)) != "free":   # (free: a choice)
            # "#external NAME/ARITY" at its atom (a false one no rule derives is warned of: lint)
            refused += [(f"#external{' [true]' if value == 'true' else ''} {sig[0]}/{sig[1]}", _at(loc))
                        for sig, loc in _parts(stm)[0]]
        if kind == ast.ASTType.Defined:
            declared.append((stm.name, stm.arity))
            continue
        if kind == ast.ASTType.Definition:
            constants.append((stm.name, _at(stm.location)))
            continue
        defined += [(sig, _at(loc)) for sig, loc in got]
        reads += [(sig, _at(loc)) for sig, loc in read]
    return _FileFacts(tuple(defined), tuple(declared), tuple(constants), tuple(reads), tuple(code), tuple(refused))


#: Facts of the policy files linted so far, by what their statements are made of (PolicyFile.made_of):
#: ``ordo test`` plans many cases with the same files, walking them once.
_FACTS: dict[tuple, _FileFacts] = {}


def _facts_of(pfile: PolicyFile, kept: Path | None = None, whole: bool = True) -> _FileFacts:
    """``kept``: the project's folder of them (``domain.project.POLICY_CACHE``), read and filled when
    this process has not walked the file yet. ``whole``: False for a file whose parse reported an
    error: its statements may be fewer than its text holds (clingo stopped part-way; the depth at
    which a deeply nested term fails depends on the thread's stack), so they are walked and kept
    nowhere, neither for the next command nor for another thread, which may parse them whole."""
    if not whole:
        return _file_facts(pfile.statements)
    # (plain data, no AST node: shared by the threads; a stock policy's parameters may be in place)
    return CACHES.kept(_FACTS, pfile.made_of, lambda: _kept_facts(pfile, kept))


def _kept_facts(pfile: PolicyFile, folder: Path | None) -> _FileFacts:
    """The file's facts as an earlier command on the project found them, else walked now and kept
    for the next (``ParseCache``: an entry named by a hash of all that the statements are made
    from, holding their count and their facts, and the fingerprint of ordo's planner and of
    clingo's version). Walking the statements is half of a command's policy check (0.02-0.03 s
    of 0.05-0.06 at 1,000 resources); reading the entry, a millisecond. An entry is not read for
    statements of another count, nor for a file holding a ``#script`` (whatever it says: the
    check that keeps scripts from running does not rest on it); a damaged one is walked again
    and written anew."""
    key = repr(pfile.made_of) if folder is not None and pfile.made_of and _plain(pfile.made_of) else None
    if key is None or _WALK_FINGERPRINT is None:
        return _file_facts(pfile.statements)
    store = ParseCache(folder, key, _WALK_FINGERPRINT)
    sha = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    hit = store.get(sha, _MOST_KEPT)
    facts = _facts_from(hit[0], len(pfile.statements)) if hit is not None else None
    if facts is None or any(stm.ast_type == ast.ASTType.Script for stm in pfile.statements):
        facts = _file_facts(pfile.statements)
        store.put(sha, {"statements": len(pfile.statements), "facts": astuple(facts)})
    return facts


#: The largest entry of facts read, a quarter of it (``ParseCache.get``): 16 MB.
_MOST_KEPT = 4 * 1024 * 1024


def _plain(key: Any) -> bool:
    """Whether ``key``'s repr stands for it in any process: made of text, numbers, None, tuples,
    clingo symbols and policy metadata (no object shown by its address)."""
    if isinstance(key, tuple):
        return all(_plain(part) for part in key)
    if isinstance(key, PolicyMeta):
        return _plain(astuple(key))
    return key is None or type(key) in (str, int, bool, clingo.Symbol)


def _walk_fingerprint() -> str | None:
    """What a file's facts depend on besides its statements' sources: the planner's code (that
    parses, labels, substitutes and walks them) and clingo's version; taken when this module is
    imported, of the code this process runs (not of files upgraded under a long-lived server).
    None, and nothing kept, where the planner's source files are not there to be read."""
    sources = sorted(Path(__file__).parent.glob("*.py"))
    return code_fingerprint("facts", sources, clingo.__version__) if sources else None


_WALK_FINGERPRINT = _walk_fingerprint()


def _facts_from(entry: Any, statements: int) -> _FileFacts | None:
    """The facts of a kept entry (the count of statements walked, and ``astuple(_FileFacts)`` as
    JSON); None for one not of that shape, or of another count of statements."""
    def pairs(items: Any, first: Any) -> tuple:
        if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
            raise ValueError
        return tuple((first(a), _numbers(b, 2)) for a, b in items)

    def sig(value: Any) -> Sig:
        if not (isinstance(value, list) and len(value) == 2 and type(value[0]) is str):
            raise ValueError
        return value[0], _numbers([value[1]], 1)[0]

    def text(value: Any) -> str:
        if type(value) is not str:
            raise ValueError
        return value

    if not isinstance(entry, dict) or entry.get("statements") != statements or type(statements) is not int:
        return None
    data = entry.get("facts")
    try:
        if not isinstance(data, list) or len(data) != 6 or not isinstance(data[1], list):
            return None
        defined, declared, constants, reads, code, refused = data
        return _FileFacts(pairs(defined, sig), tuple(sig(s) for s in declared), pairs(constants, text),
                          pairs(reads, sig), pairs(code, text), pairs(refused, text))
    except ValueError:
        return None


def _numbers(value: Any, count: int) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != count or not all(type(n) is int for n in value):
        raise ValueError
    return tuple(value)


def _signatures(text: str) -> frozenset[Sig]:
    statements: list[ast.AST] = []
    ast.parse_string(text, statements.append)
    facts = _file_facts(statements)
    return frozenset(sig for sig, _ in facts.defined) | frozenset(facts.declared)


#: Defined by the planner's glue program (policies/internal/glue.lp) in every mode.
GLUE_SIGNATURES = _signatures(GLUE)


def _maybe_defined(program: Program, unparsed: list[Diagnostic]) -> set[str] | None:
    """The names a file that did not parse (all of it) may define: every word
    in it. None when a file could not be read at all (it may define anything)."""
    broken = {d.file for d in unparsed}
    files = {pfile.display: pfile for pfile in program.files}
    if any(d.code != "asp" or d.file not in files for d in unparsed):
        return None  # an #include or a file that could not be read
    words: set[str] = set()
    for display in broken:
        try:
            words.update(re.findall(r"[a-z_][A-Za-z0-9_']*", files[display].path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            return None
    return words


def lint(program: Program, unparsed: list[Diagnostic] | None = None, kept: Path | None = None) -> list[Diagnostic]:
    """The problems of the parsed policy files. With ``unparsed`` (syntax
    errors), a predicate read but never defined is reported only when no file
    that failed to parse names it. ``kept``: the project's folder of what
    each file defines and reads (``_kept_facts``)."""
    unsure = _maybe_defined(program, unparsed) if unparsed else set()
    broken = {d.file for d in unparsed or ()}
    defined: set[Sig] = set(FACT_SIGNATURES) | set(GLUE_SIGNATURES)
    reads: list[tuple[Sig, At, str]] = []
    out: list[Diagnostic] = []
    reserved: set[Sig] = set(FACT_SIGNATURES)
    for pfile in program.files:
        if pfile.origin == "base":
            reserved.update(sig for sig, _ in _facts_of(pfile, kept, pfile.display not in broken).defined)
    reserved -= OPEN_SIGNATURES
    externals: list[tuple[str, At, str, str]] = []   # (file, where, "#external" or "#external [true]", "p/1")
    ruled: set[str] = {f"{n}/{a}" for n, a in defined}   # "p/1" some statement but an #external defines
    stock: dict[Sig, PolicyFile] = {}   # what the stock policies loaded define, but the open predicates
    for pfile in program.files:
        if pfile.origin == "library":
            for sig, _ in _facts_of(pfile, kept, pfile.display not in broken).defined:
                if (sig[0].lstrip("-"), sig[1]) not in OPEN_SIGNATURES | reserved:
                    stock.setdefault(sig, pfile)
    for pfile in program.files:
        facts = _facts_of(pfile, kept, pfile.display not in broken)
        declared_here = {(what.rpartition(" ")[2], at) for what, at in facts.refused if what.startswith("#external")}
        ruled.update(text for sig, at in facts.defined if ((text := f"{sig[0]}/{sig[1]}"), at) not in declared_here)
        if pfile.origin != "base" and not pfile.meta.declared:
            out.append(Diagnostic(
                file=pfile.display, line=1, column=1, summary="policy has no metadata",
                detail="start the file with '%@ name:', '%@ description:', '%@ owner:' and '%@ enforcement:' lines",
                severity="warning", code="metadata"))
        for what, at in facts.code:
            summary = ("#script is not allowed in policy files" if what == "#script" else
                       f"'{what}(...)' calls a script function: not allowed in policy files")
            out.append(_diag(pfile.display, at, summary,
                             "policies are rules, not code; ask for a new interface predicate instead", "script"))
        defined.update(sig for sig, _ in facts.defined)
        defined.update(facts.declared)
        if pfile.origin == "base":
            continue
        for what, at in facts.refused:
            if what.startswith("#external"):
                kind, _, sig = what.rpartition(" ")
                externals.append((pfile.display, at, kind, sig))
                continue
            if what in NO_EFFECT:
                out.append(Diagnostic(file=pfile.display, line=at[0], column=at[1], summary=NO_EFFECT[what][0],
                                      detail=NO_EFFECT[what][1], severity="warning", code="statement"))
                continue
            out.append(_diag(pfile.display, at, *REFUSED.get(what, (
                f"'{what}.' is never grounded: the rules after it would not apply",
                "ordo grounds the base program only: drop the line, or write '#program base.'")), "statement"))
        for sig, at in dict.fromkeys(facts.defined):   # (a pool defines its atoms at one place)
            if sig in LABELS:
                continue  # the labelling rewrite's own heads (planner/program.py)
            positive = (sig[0].lstrip("-"), sig[1])
            if positive in reserved or positive[0].startswith("__") or (
                    positive != sig and positive in OPEN_SIGNATURES):   # (-before: a hidden constraint on the order)
                negated = "" if positive == sig else \
                    f", the classical negation of '{positive[0]}/{positive[1]}' (a constraint on it: both may not hold)"
                owned = (", which the base library reserves" if positive not in OPEN_SIGNATURES else
                         ": policies may define it, not its negation (a constraint says what may not hold)")
                out.append(_diag(
                    pfile.display, at, f"defines '{sig[0]}/{sig[1]}'{negated}{owned}",
                    "policies read it; they may define only before/2, replace/1, group/2, group_limit/2 "
                    "and predicates of their own", "reserved"))
            elif pfile.origin == "project" and (owner := stock.get(sig)) is not None:
                out.append(Diagnostic(
                    file=pfile.display, line=at[0], column=at[1], severity="warning", code="stock-helper",
                    summary=f"defines '{sig[0]}/{sig[1]}', which the stock policy {owner.meta.name} "
                            f"({owner.display}) defines too",
                    detail=f"their rules then act together: what this file makes happen is {owner.meta.name}'s "
                           f"in explanations and --without-policy; give the predicate a name of this policy's own"))
        for name, at in facts.constants:
            if name.startswith("__"):
                out.append(_diag(pfile.display, at, f"defines the constant '{name}', which ordo reserves",
                                 "names that start with '__' are ordo's own", "reserved"))
        reads.extend((sig, at, pfile.display) for sig, at in facts.reads)
    for display, at, kind, sig in externals:   # (one a rule derives may hold: not false in every plan, a review's)
        if kind == "#external [true]" or sig not in ruled:
            out.append(Diagnostic(file=display, line=at[0], column=at[1], summary=NO_EFFECT[kind][0],
                                  detail=NO_EFFECT[kind][1], severity="warning", code="statement"))
    names = sorted(f"{n}/{a}" for n, a in defined if not n.startswith("__"))
    for sig, at, display in sorted(reads, key=lambda r: (r[2], r[1])):
        if sig in defined or unsure is None or sig[0].lstrip("-") in unsure:   # (-p: the word is p)
            continue
        text = f"{sig[0]}/{sig[1]}"
        close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
        same_name = [n for n in names if n.split("/")[0] == sig[0]]
        if same_name:
            detail = f"did you mean '{same_name[0]}'? (same name, other arity)"
        elif close:
            detail = f"did you mean '{close[0]}'?"
        else:
            detail = "no rule, fact or interface predicate defines it"
        out.append(_diag(display, at, f"predicate '{text}' is read but never defined", detail, "undefined"))
        defined.add(sig)  # report each once
    return out


def _diag(display: str, at: At, summary: str, detail: str, code: str) -> Diagnostic:
    return Diagnostic(file=display, line=at[0], column=at[1], summary=summary,
                      detail=detail, severity="error", code=code)


#: Interface predicates whose argument (by position) names something the
#: models must contain: a label key, a relationship kind, a resource type ...
_VOCABULARY: dict[Sig, tuple[tuple[int, str], ...]] = {
    ("label", 3): ((1, "label key"),),
    ("relation", 3): ((0, "relationship kind"),),
    ("resource", 2): ((1, "resource type"),),
    ("requires", 3): ((1, "capacity kind"),),
    ("capacity", 3): ((1, "capacity kind"), (0, "target")),
    ("attr", 3): ((1, "target attribute"), (0, "target")),
    ("target_label", 3): ((1, "target label"), (0, "target")),
    ("param", 3): ((1, "param"),),
    ("target", 1): ((0, "target"),),
    ("place", 2): ((1, "target"),),
    ("located", 2): ((1, "target"),),
    ("refused", 1): ((0, "target"),),
    ("claimed_elsewhere", 1): ((0, "target"),),
    ("op", 2): ((1, "operation"),),
    # states and milestones of the lifecycles, and zones: a typo there ("craeted", "actve") switched a hard
    # policy off without a word (an authoring sweep's)
    ("current", 2): ((1, "state"),),
    ("desired", 2): ((1, "state"),),
    ("goal", 2): ((1, "state"),),
    ("final", 2): ((1, "state"),),
    ("state", 3): ((1, "state"),),
    ("op_from", 3): ((1, "operation"), (2, "state")),
    ("op_to", 3): ((1, "operation"), (2, "state")),
    ("transition", 4): ((1, "operation"), (2, "state"), (3, "state")),
    ("milestone", 3): ((1, "milestone"), (2, "state")),
    ("raises", 3): ((1, "milestone"),),
    ("lowers", 3): ((1, "milestone"),),
    ("reaches", 2): ((1, "milestone"),),
    ("has_milestone", 2): ((1, "milestone"),),
    ("zone", 2): ((0, "target"), (1, "zone")),
}


def vocabulary(model) -> dict[str, set[str]]:
    """What the models name, by kind, for vocabulary_lint. The resources'
    words come from build_model's one pass over them (``model.words``)."""
    seen: dict[str, set[str]] = {kind: set() for specs in _VOCABULARY.values() for _, kind in specs}
    seen["resource type"] |= set(model.kinds)
    seen["target"] |= set(model.targets)
    seen["operation"] |= {op.name for kind in model.kinds.values() for op in kind.operations}
    seen["state"] |= {state for kind in model.kinds.values() for state in kind.states}
    seen["milestone"] |= {name for kind in model.kinds.values() for name, _ in kind.milestones}   # (each state too)
    seen["zone"] |= {target.zone for target in model.targets.values() if target.zone}
    for target in model.targets.values():
        seen["capacity kind"] |= set(target.capacity)
        seen["target attribute"] |= set(target.attributes)
        seen["target label"] |= set(target.labels)
    for kind, words in model.words.items():
        seen[kind] |= words
    seen["relationship kind"] |= {"uses", "hosted_on", "member_of"}
    return seen


def unknown_words(pfile: PolicyFile, known: dict[str, set[str]]) -> Iterator[tuple[ast.AST, int, str, str]]:
    """(atom, argument's position, kind, word) of each interface atom in a
    policy file whose label key, relationship kind, type ... (a string) no
    model names."""
    return ((sym, position, kind, word) for sym, position, kind, word in _words_of(pfile) if word not in known[kind])


def _at_word_places(pfile: PolicyFile) -> Iterator[tuple[ast.AST, int, str, clingo.Symbol]]:
    """(atom, argument's position, kind, symbol) of each interface atom whose argument at a word's place
    (``_VOCABULARY``) is a symbol written out (not a variable or a term)."""
    return ((sym, position, kind, arg.symbol)
            for stm in pfile.statements for sym in _symbols(stm)
            for position, kind in _VOCABULARY.get((sym.name, len(sym.arguments)), ())
            if (arg := sym.arguments[position]).ast_type == ast.ASTType.SymbolicTerm)


def _words_of(pfile: PolicyFile) -> tuple[tuple[ast.AST, int, str, str], ...]:
    """(atom, argument's position, kind, word) of each interface atom whose argument there is a string."""
    return CACHES.kept(CACHES.words, pfile.made_of, lambda: tuple(
        (sym, position, kind, symbol.string) for sym, position, kind, symbol in _at_word_places(pfile)
        if symbol.type.name == "String"))


def _constants_of(pfile: PolicyFile) -> tuple[tuple[ast.AST, str, str], ...]:
    """(atom, kind, name) of each interface atom whose argument at a word's place is a constant
    (``region_two``, not ``"region-two"``)."""
    return tuple((sym, kind, symbol.name) for sym, _, kind, symbol in _at_word_places(pfile)
                 if symbol.type.name == "Function" and symbol.name and not symbol.arguments)


def vocabulary_lint(program: Program, model) -> list[Diagnostic]:
    """Warn when a project policy reads a label, relationship kind, ... that no
    model file uses: usually a typo that silently switches the policy off; and
    when it writes one as a constant (``place(R, region_two)``), which no word of
    the models, all strings, ever matches, unless a ``#const`` gives it a value.
    (Stock policies: planner/parameters.py.)"""
    known = vocabulary(model)
    out = []
    defined = {stm.name for pfile in program.files for stm in pfile.statements
               if stm.ast_type == ast.ASTType.Definition}
    for pfile in program.files:
        if pfile.origin != "project":
            continue
        for sym, kind, name in _constants_of(pfile):
            if name in defined:
                continue
            close = difflib.get_close_matches(name, sorted(known[kind]), n=1) or \
                difflib.get_close_matches(name.replace("_", "-"), sorted(known[kind]), n=1)
            out.append(Diagnostic(
                file=pfile.display, line=sym.location.begin.line, column=sym.location.begin.column,
                summary=f"{kind} written as the constant {name}, which no model's {kind} (a string) ever matches",
                detail=f'did you mean "{close[0]}"?' if close else "write it as a string, in double quotes",
                severity="warning", code="vocabulary"))
        for sym, _, kind, word in unknown_words(pfile, known):
            close = difflib.get_close_matches(word, sorted(known[kind]), n=1)
            # (the model of the request read: another request of the project may name it)
            detail = f"did you mean '{close[0]}'?" if close else \
                "the catalog, the inventory and the request read: the rule applies to nothing here"
            out.append(Diagnostic(
                file=pfile.display, line=sym.location.begin.line, column=sym.location.begin.column,
                summary=f"{kind} '{word}' is in no model file read", detail=detail,
                severity="warning", code="vocabulary"))
    return out
