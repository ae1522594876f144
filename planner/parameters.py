"""Parameters of stock policies: the keys they read come from the project.

A stock policy (``policies/library/``) declares each word it reads from the
models as a constant with its default, ``#const weight_key = "vcpu".``, and
``ordo.yaml`` sets them per policy::

    policies:
      parameters:
        prefer-cheaper-region: { weight_key: cpu, cost_key: price }

ordo writes each value into the policy's rules in place of the constant and
drops the ``#const``, so the constant stays the file's own (a project file
may use the same name). With a model at hand, each interface atom of a stock
policy that can never bind in this project (a label, capacity or attribute no
model file names) is a warning that names the parameter to set.
"""

from __future__ import annotations

import dataclasses
import difflib

import clingo
from clingo import ast

import policies
from domain.errors import Diagnostic
from domain.formats import MAX_INT
from domain.yamlsrc import Source
from planner.lint import unknown_words, vocabulary
from planner.program import CACHES, PolicyFile, Program

#: Who would declare the word an interface atom reads, by predicate.
_HOLDER = {"label": "no resource declares", "requires": "no resource declares", "param": "no resource declares",
           "relation": "no resource declares", "capacity": "no target declares", "attr": "no target declares",
           "target_label": "no target declares", "resource": "the catalog names no such type"}

#: ... or by the kind of word, where it is the same for every predicate that reads one.
_KIND_HOLDER = {"target": "is no target of the inventory", "operation": "is no operation of any type in the catalog"}


class _Substitute(ast.Transformer):
    """Puts each parameter's value where its constant is, and remembers where."""

    def __init__(self, values: dict[str, clingo.Symbol]) -> None:
        self.values = values
        self.placed: dict[tuple[int, int], str] = {}  # (line, column) -> parameter

    def visit_SymbolicTerm(self, node: ast.AST) -> ast.AST:  # noqa: N802 (clingo's naming)
        sym = node.symbol
        if sym.type == clingo.SymbolType.Function and not sym.arguments and sym.name in self.values:
            begin = node.location.begin
            self.placed[(begin.line, begin.column)] = sym.name
            return node.update(symbol=self.values[sym.name])
        return node


def _substitute(pfile: PolicyFile, values: dict[str, clingo.Symbol]) -> dict[tuple[int, int], str]:
    """Each parameter's value in place of its constant in ``pfile``'s statements, its ``#const``
    lines dropped; (line, column) -> the parameter placed there."""
    def made() -> tuple[tuple[ast.AST, ...], dict[tuple[int, int], str]]:
        substitute = _Substitute(values)
        return (tuple(substitute(stm) for stm in pfile.statements if stm.ast_type != ast.ASTType.Definition),
                substitute.placed)

    # by what the statements were made from, and the values
    key = (pfile.made_of, tuple(sorted(values.items(), key=lambda item: item[0]))) if pfile.made_of else ()
    statements, placed = CACHES.kept(CACHES.substituted, key, made)
    pfile.statements, pfile.made_of = list(statements), key
    return dict(placed)


#: What a parameter whose default is text or a number must be: (said as, test).
_WANTED = {clingo.SymbolType.String: ("text", lambda v: isinstance(v, str)),
           clingo.SymbolType.Number: ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))}


def _shown(value: bool | int | str) -> str:
    """A parameter's value as ordo.yaml (YAML) writes it."""
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _symbol(value: bool | int | str) -> clingo.Symbol:
    """A value of ordo.yaml as the facts write it: strings, integers, true/false."""
    if isinstance(value, bool):
        return clingo.Function("true" if value else "false")
    return clingo.Number(value) if isinstance(value, int) else clingo.String(value)


def _at_key(src: Source, path: tuple, summary: str, detail: str) -> Diagnostic:
    """An error about a key of ordo.yaml, pointing at the key."""
    line, column = src.where_key(path)
    return dataclasses.replace(src.diagnostic(path, summary, detail, code="parameter"), line=line, column=column)


def declared(pfile: PolicyFile) -> dict[str, clingo.Symbol]:
    """A stock policy's parameters and their defaults (its ``#const`` lines)."""
    return {stm.name: stm.value.symbol for stm in pfile.statements
            if stm.ast_type == ast.ASTType.Definition and stm.value.ast_type == ast.ASTType.SymbolicTerm}


def apply_parameters(program: Program, given: dict[str, dict], src: Source | None, model=None, *,
                     warn: bool = True) -> list[Diagnostic]:
    """Set the stock policies' parameters (``policies.parameters``) in their
    rules; the problems with them, and with a model, the products of
    prefer-cheaper-region past the solver's range (``_costs_in_range``) and,
    unless ``warn`` is False, a warning for each atom of a stock policy that no
    model file can make true."""
    out: list[Diagnostic] = []
    stock = policies.library()
    for name in given:
        if name not in stock and src is not None:
            close = difflib.get_close_matches(name, list(stock), n=1)
            out.append(_at_key(src, ("policies", "parameters", name), f"unknown library policy '{name}'",
                               f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(stock)}"))
    known = vocabulary(model) if model is not None and warn else None
    loaded = {pfile.path.stem for pfile in program.files if pfile.origin == "library"}
    for name in sorted(set(given) & set(stock) - loaded) if src is not None else ():
        out.append(dataclasses.replace(_at_key(
            src, ("policies", "parameters", name), f"parameters for '{name}', which policies.library does not "
            "enable", "they have no effect: add it to policies.library, or drop them"), severity="warning"))
    for pfile in program.files:
        if pfile.origin != "library":
            continue
        entry = pfile.path.stem  # as ordo.yaml names it
        defaults = declared(pfile)
        values = given.get(entry, {})
        pfile.parameters = dict(values)
        for key, value in values.items():
            if src is None:
                continue
            where = ("policies", "parameters", entry, key)
            if key not in defaults:
                out.append(_at_key(src, where, f"'{entry}' has no parameter '{key}'",
                                   f"its parameters: {', '.join(sorted(defaults))}" if defaults else
                                   "it takes no parameters"))
            elif (wanted := _WANTED.get(defaults[key].type)) and not wanted[1](value):   # (label_key: 5 never bound)
                out.append(_at_key(src, where, f"{entry}.{key} is {wanted[0]}, not {_shown(value)}",
                                   f"its default: {defaults[key]}"))
        placed = _substitute(pfile, {k: _symbol(values[k]) if k in values else v for k, v in defaults.items()})
        if known is not None:
            out += _never_binds(pfile, entry, placed, values, known, src)
        if model is not None and entry == CHEAPER_REGION:
            chosen = {k: values.get(k, v.string) for k, v in defaults.items()}   # (both are text)
            out += _costs_in_range(pfile, model, chosen["cost_key"], chosen["weight_key"])
    return out


#: The stock policy that multiplies: a target's cost times a resource's size.
CHEAPER_REGION = "prefer-cheaper-region"


def _costs_in_range(pfile: PolicyFile, model, cost_key: str, weight_key: str) -> list[Diagnostic]:
    """prefer-cheaper-region multiplies a target's cost by a resource's size and adds the products up,
    in clingo's 32-bit integers, which wrap without a word: a cost of 3e8 times 8 vcpu came out smaller
    than a cost of 2e8 times 8, and the dearer region was the "optimal" one. Each number is within
    MAX_INT (domain.formats), and so is the total of each ``requires`` key (domain.model); the largest
    cost times that total bounds every product and every sum the policy makes."""
    costs = [(abs(cost), name) for name, target in model.targets.items()
             if isinstance(cost := target.attributes.get(cost_key), int) and not isinstance(cost, bool)]
    total = sum(res.requires.get(weight_key, 0) for res in model.resources.values())
    if not costs or max(costs)[0] * total <= MAX_INT:
        return []
    cost, name = max(costs)
    return [Diagnostic(
        file=pfile.display, code="range",
        summary=f"{pfile.meta.name} would count past the solver's range: target '{name}' has {cost_key} "
                f"{cost:,} and the resources require {total:,} {weight_key} in all; their product, "
                f"{cost * total:,}, is more than {MAX_INT:,}",
        detail="the solver multiplies and adds in 32-bit integers and wraps beyond, silently: state the "
               f"targets' {cost_key} in a larger unit (so that the largest times {total:,} stays within "
               f"{MAX_INT:,}), or leave {pfile.meta.name} out")]


def _never_binds(pfile: PolicyFile, entry: str, placed: dict[tuple[int, int], str], values: dict,
                 known: dict[str, set[str]], src: Source | None) -> list[Diagnostic]:
    out = []
    seen = set()
    for sym, position, kind, word in unknown_words(pfile, known):
        if kind not in _KIND_HOLDER and sym.name not in _HOLDER:
            # (the states and milestones of lifecycles a stock policy names: it holds rules for lifecycles
            # without them, protected-resources for one without "created")
            continue
        arg = sym.arguments[position]
        shown = ", ".join(f'"{word}"' if i == position else "_" for i in range(len(sym.arguments)))
        summary = f"{pfile.meta.name} reads {sym.name}({shown}), which {_KIND_HOLDER.get(kind) or _HOLDER[sym.name]}"
        if summary in seen:
            continue
        seen.add(summary)
        parameter = placed.get((arg.location.begin.line, arg.location.begin.column))
        names = sorted(known[kind])
        close = difflib.get_close_matches(word, names, n=1)
        choice = (f"did you mean '{close[0]}'?" if close else f"the models name: {', '.join(names)}" if names
                  else f"no model file names any {kind}")
        detail = "the policy has no effect in this project"
        if parameter is not None:
            detail += f"; set policies.parameters.{entry}.{parameter} in ordo.yaml"
        detail += f": {choice}"
        diag = Diagnostic(file=pfile.display, line=sym.location.begin.line, column=sym.location.begin.column,
                          summary=summary, detail=detail)
        where = _where_in_project_file(src, entry, parameter if parameter in values else None)
        if where is not None:
            diag = src.diagnostic(where, summary, detail)
        out.append(dataclasses.replace(diag, severity="warning", code="vocabulary"))
    return out


def _where_in_project_file(src: Source | None, entry: str, parameter: str | None) -> tuple | None:
    """Where ordo.yaml sets the parameter, or enables the policy (None: it does not)."""
    if src is None:
        return None
    if parameter is not None:
        return ("policies", "parameters", entry, parameter)
    listed = ((src.data or {}).get("policies") or {}).get("library") if isinstance(src.data, dict) else None
    if isinstance(listed, list) and entry in listed:
        return ("policies", "library", listed.index(entry))
    return None
