"""``ordo check``: every problem of a project at once.

Stages, each run even when an earlier one found problems where it can be:
project file; policy files (syntax, lint); models (YAML, schema, references,
relationship cycles); grounding the policies with the model's facts (unsafe
variables and other grounding errors). In a model of SLICE_NOTE_MIN
resources or more, a note, not a problem, names a project rule that keeps
every plan whole (planner/locality.py).

A model file with schema errors would hide what the others get wrong (a
request is not checked against a catalog or inventory that did not load):
the models are loaded a second time with each entry that has a schema error
left out, and what that finds is reported too, but for problems that name
an entry left out or could be about one (an unknown type when a type was
left out). The model of that second look is not used further: the
vocabulary of what was left out would be missing.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import CatalogFile, InventoryFile, ProjectFile, RequestFile, parse
from domain.model import Model
from domain.project import (
    _locate,
    _not_a_policy_file,
    display_path,
    load_project,
    project_folder,
    project_policy_files,
    read_project_file,
)
from domain.yamlsrc import PathKey, Source, format_path, load_yaml
from planner.core import all_policy_files, checked_program
from planner.facts import model_facts
from planner.locality import nonlocal_rule
from planner.slice import SLICE_NOTE_MIN
from planner.solve import ground_only


def check(root: Path | str = ".", request: Path | str | None = None,
          inventory: Path | str | None = None, *,
          controller_problems: Callable[[dict, Path], list[tuple[str, str, str]]] | None = None,
          extra_policies: Sequence[Path] = ()) -> list[Diagnostic]:
    """Every problem of the project, at once. ``controller_problems``: (controller, its field, what is
    wrong) of the catalog's controllers, given the project's folder, as the layer that makes them
    judges them (``executor.controllers.controller_problems``: the planner does not know the adapters).
    ``extra_policies``: policy files added, as ``ordo plan --policy`` adds them."""
    diagnostics: list[Diagnostic] = []
    pruned: set[str] = set()   # what the entries of the project file left out are named (_markers)
    try:
        root, project_file, src = read_project_file(root)
    except DiagnosticsError as exc:
        # the rest checked without the entries that have schema errors (an unknown policy named in
        # policies.enforcement was said only once a level's typo beside it was mended: a sweep's)
        second = _without_bad_entries(root, pruned)
        if second is None:
            return exc.diagnostics
        root, project_file, src = second
        rest = _check(root, project_file, src, request, inventory, controller_problems, [], read=second,
                      extra=extra_policies)
        return sorted(set(exc.diagnostics) | {d for d in rest if not _about(d, pruned)})
    return _check(root, project_file, src, request, inventory, controller_problems, diagnostics, extra=extra_policies)


def _about(diagnostic: Diagnostic, markers: set[str]) -> bool:
    """Whether ``diagnostic`` is said of an entry left out (it quotes one of its ``markers``), not where it
    only suggests one (did you mean 'web'?: an unknown resource 'wbe' was hidden, a review's)."""
    text = _SUGGESTION.sub("", f"{diagnostic.summary} {diagnostic.detail}")
    for marker in markers:
        said, _, within = marker.partition(_WITHIN)
        if said in text and (not within or diagnostic.path == within
                             or diagnostic.path.startswith((f"{within}.", f"{within}["))):
            return True
    return False


#: Parts a marker into what a problem says (before it) and where the problem is (after it: a path, for the
#: problems within it alone).
_WITHIN = "\x00"


#: A suggestion in a problem's text: "(did you mean 'x'?)", "; did you mean 'x' or 'y'?"
_SUGGESTION = re.compile(r"[(;,]?\s*did you mean [^?)]*+\??\)?")


def _without_bad_entries(root: Path | str, pruned: set[str]) -> tuple[Path, ProjectFile, Source] | None:
    """The project file without its entries that have schema errors (their names to ``pruned``); None
    when it cannot be read at all, or nothing is left to check without them."""
    folder, root_file = project_folder(root)
    try:
        src = load_yaml(root_file, display_path(root_file, folder))
    except DiagnosticsError:
        return None
    cut = _without_schema_errors(src, ProjectFile, pruned)
    if cut is None:
        return None
    try:
        return folder, parse(ProjectFile, cut), cut
    except DiagnosticsError:
        return None


def _check(root: Path, project_file: ProjectFile, src: Source, request: Path | str | None,
           inventory: Path | str | None,
           controller_problems: Callable[[dict, Path], list[tuple[str, str, str]]] | None,
           diagnostics: list[Diagnostic], read: tuple[Path, ProjectFile, Source] | None = None,
           extra: Sequence[Path] = ()) -> list[Diagnostic]:
    """``check`` of a project file read (``read``: one that is not the file as it is, for the models to load
    with; ``extra``: policy files added)."""
    paths, problems = project_policy_files(root, project_file, src)
    diagnostics += problems
    diagnostics += [Diagnostic(file=str(p), summary=_not_a_policy_file(p)) for p in extra if not p.is_file()]
    paths = [*paths, *(p for p in extra if p.is_file())]
    files, problems = all_policy_files(project_file.policies.library, paths, root, src)
    diagnostics += problems
    model, problems = _load_model(root, project_file, request, inventory, read)
    diagnostics += problems
    if model is not None:
        catalogs = _catalog_sources([root / rel for rel in project_file.catalog], root)
        diagnostics += lifecycle_problems(model, catalogs)
        if controller_problems is not None:
            diagnostics += _controller_diagnostics(controller_problems(model.controllers, root), catalogs)
    program = checked_program(files, root, dict(project_file.policies.enforcement), src, model,
                              dict(project_file.policies.parameters))
    diagnostics += program.diagnostics
    large = model is not None and len(model.resources) >= SLICE_NOTE_MIN
    if large and program.linted and not program.errors and (note := nonlocal_rule(program.files)):
        diagnostics.append(note)
    # Ground even when the models have errors (with no facts then): unsafe
    # variables do not depend on the facts. Not with #script or @-calls: they
    # are refused, and grounding would run them.
    if program.linted and not any(d.code == "script" for d in program.diagnostics):
        try:
            settings = project_file.settings
            # its warnings too, as ordo plan shows them (an operation undefined: a rule that never applies),
            # but an atom of a predicate no rule defines, which the lint names better there (planner/lint.py:
            # did you mean); one of a predicate defined for other atoms only (foo(2), where a rule gives foo(1))
            # is clingo's alone to name
            named = {m[1] for d in program.diagnostics if d.code == "undefined"
                     and (m := re.match(r"predicate '(-?[a-z_][A-Za-z0-9_']*)/\d+'", d.summary))}
            diagnostics += [d for d in ground_only(program, model_facts(model) if model else [],
                                                   timeout=settings.solve_timeout, memory_mb=settings.memory_limit_mb)
                            if not (d.summary.startswith("atom does not occur in any rule head")
                                    and re.sub(r"^\(|\(.*$|\)$", "", d.detail.strip()) in named)]
        except DiagnosticsError as exc:
            diagnostics += exc.diagnostics
    return sorted(set(diagnostics))


def _load_model(root: Path, project_file: ProjectFile, request, inventory,
                read: tuple[Path, ProjectFile, Source] | None = None) -> tuple[Model | None, list[Diagnostic]]:
    """The model and the models' problems: all of them, also those a schema
    error elsewhere would hide (see the module's docstring)."""
    try:
        return load_project(root, request, inventory, need_request=False, read=read).model, []
    except DiagnosticsError as exc:
        first = exc.diagnostics
    catalogs = [(root / rel, CatalogFile) for rel in project_file.catalog]
    inv = _locate(inventory, root) or (root / project_file.inventory if project_file.inventory else None)
    req = _locate(request, root) or (root / project_file.request if project_file.request else None)
    files = [*catalogs, (inv, InventoryFile), (req, RequestFile)]
    pruned: set[str] = set()  # what a problem of the second look must not mention
    sources: list[Source | None] = []
    changed = False
    for path, model_cls in files:
        if path is None:
            sources.append(None)
            continue
        try:
            src = load_yaml(path, display_path(path, root))
        except DiagnosticsError:
            return None, first  # no YAML to leave anything out of
        cut = _without_schema_errors(src, model_cls, pruned)
        if cut is None:
            return None, first
        changed = changed or cut.data != src.data
        sources.append(cut)
    if not changed:
        return None, first
    *catalog_sources, inv_src, req_src = sources
    try:
        load_project(root, req_src, inv_src, need_request=False, catalog=catalog_sources, read=read)
    except DiagnosticsError as exc:
        return None, first + [d for d in exc.diagnostics if not _about(d, pruned)]
    return None, first


def _without_schema_errors(src: Source, model_cls, pruned: set[str]) -> Source | None:
    """The document without the entries that have schema errors (a field
    that is not allowed or not valid; the item that lacks a required field),
    positions kept; what problems about what was left out say goes to ``pruned``. None
    when the document as a whole is wrong."""
    data, positions, keys = copy.deepcopy(src.data if src.data is not None else {}), src.positions, src.key_positions
    for _ in range(10):
        try:
            model_cls.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
        else:
            return Source(file=src.file, data=data, positions=positions, key_positions=keys, sha256=src.sha256)
        cuts, keyed = set(), set()
        for error in errors:
            loc = tuple(p for p in error["loc"] if p != "[key]")
            # a missing field: leave out the item that lacks it
            loc = _existing(data, loc[:-1] if error["type"] == "missing" else loc)
            if not loc:
                return None
            cuts.add(loc)
            if "[key]" in error["loc"]:   # (its name wrong)
                keyed.add(loc)
        for loc in sorted(cuts, key=lambda path: [(isinstance(p, str), p) for p in path], reverse=True):
            parent = _existing(data, loc[:-1])
            if parent != loc[:-1]:
                continue  # inside something cut already
            container = _at(data, parent)
            pruned.update(_markers(loc, container[loc[-1]], loc in keyed))
            del container[loc[-1]]
            if isinstance(container, list):
                positions, keys = _shift(positions, loc), _shift(keys, loc)
    return None


def _at(data, path: PathKey):
    for part in path:
        data = data[part]
    return data


def _existing(data, loc: tuple) -> PathKey:
    """The longest prefix of loc that is in data (pydantic adds union members' names)."""
    out: list = []
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) \
                and 0 <= part < len(data):
            data = data[part]
            out.append(part)
        else:
            break
    return tuple(out)


#: What a problem says when it names something of a section some entry was left out of.
_UNKNOWN = {"types": "unknown resource type", "controllers": "unknown controller", "lifecycles": "unknown lifecycle",
            "targets": "unknown target", "states": "unknown state", "operations": "unknown operation"}


def _markers(loc: PathKey, value, keyed: bool = False) -> set[str]:
    """What problems about an entry left out say: its names, quoted, and
    'unknown <kind>' when it is (in) a section of named things."""
    if tuple(loc[:2]) in _ONLY_NAMING:
        return set()
    out = {f"'{name}'" for name in _names(value, loc[-1])}
    if isinstance(value, str) and isinstance(loc[-1], int):   # (a list's entry: a policy's name, a file's; not a
        out.add(f"'{value}'")                                # setting's value, solve_timeout: web, a review's)
    # 'unknown <kind>' of any name only where the entry's own name was wrong or is none (what names it
    # elsewhere, as meant, is not known: -vf-module for vf-module; [created] in a list of states); else it hid
    # every unknown type, one of a request's too, a review's
    if keyed:
        out |= {_UNKNOWN[part] for part in loc[-2:] if isinstance(part, str) and part in _UNKNOWN}
    elif isinstance(loc[-1], int) and not isinstance(value, str):   # (within the list's owner alone: the states
        # of one lifecycle; another lifecycle's unknown state was hidden, a review's)
        out |= {f"{_UNKNOWN[part]}{_WITHIN}{format_path(loc[:-2])}" for part in loc[-2:-1]
                if isinstance(part, str) and part in _UNKNOWN}
    return out


#: Sections whose entries only name what is defined elsewhere: one left out makes nothing else wrong (an
#: enforcement entry's level mistyped hid "'capacity' has no parameter 'bogus'" of policies.parameters, a
#: review's).
_ONLY_NAMING = {("policies", "enforcement")}


def _names(value, key) -> set[str]:
    """The names in an entry left out: its key when it is a mapping's entry, every 'name' in it."""
    out = {key} if isinstance(key, str) and isinstance(value, dict) else set()
    if isinstance(value, dict):
        if isinstance(value.get("name"), str):
            out.add(value["name"])
        for item in value.values():
            out |= _names(item, None)
    elif isinstance(value, list):
        for item in value:
            out |= _names(item, None)
    return out


def _shift(positions: dict, removed: PathKey) -> dict:
    """Positions after the list item at ``removed`` is deleted: the later items move up by one."""
    head, index, size = removed[:-1], removed[-1], len(removed)
    out = {}
    for path, where in positions.items():
        if len(path) >= size and path[:size - 1] == head and isinstance(path[size - 1], int):
            if path[size - 1] == index:
                continue
            if path[size - 1] > index:
                path = (*head, path[size - 1] - 1, *path[size:])
        out[path] = where
    return out


def lifecycle_problems(model: Model, sources: list[Source]) -> list[Diagnostic]:
    """A lifecycle with no way down, named by type and missing transition:
    an error where a resource needs it (its goal cannot be reached from its
    state; the planner would only blame its base rule), else a warning where
    a type cannot return to its initial state from a state it can reach."""
    out, blamed = [], set()
    for res in sorted(model.resources.values(), key=lambda r: r.name):
        kind = model.kinds.get(res.type)
        goal, whole = _goal(res, model)
        if kind is None or goal is None or goal == res.current or goal in _reachable(kind, res.current):
            continue
        blamed.add(kind.name)
        origin = res.origin
        why = f" with '{whole}', which is to go" if whole else ""
        out.append(Diagnostic(
            file=origin.file if origin else "", line=origin.line if origin else 0,
            summary=f"'{res.name}' cannot go from '{res.current}' to '{goal}'{why}: type '{kind.name}' has no "
                    f"operations that lead there", detail=_missing(kind, res.current, goal), code="lifecycle"))
    for kind in sorted(model.kinds.values(), key=lambda k: k.name):
        up = _reachable(kind, kind.initial)
        stuck = [s for s in kind.states if s in up and kind.initial not in _reachable(kind, s)]
        if not stuck or kind.name in blamed:
            continue
        summary = (f"type '{kind.name}' has no way down from '{stuck[0]}' to '{kind.initial}': once there, "
                   "it can never be deleted or replaced")
        out.append(_in_catalog(sources, ("types", kind.name, "lifecycle"), summary,
                               _missing(kind, stuck[0], kind.initial), code="lifecycle", severity="warning"))
    return out + _unordered(model, sources)


#: The milestones the base ordering (ordering.lp) speaks of.
ORDERING_MILESTONES = ("assigned", "created", "active")


def _unordered(model: Model, sources: list[Source]) -> list[Diagnostic]:
    """A warning for each type whose lifecycle has none of the milestones the base ordering speaks of,
    and whose resources are related to others: the ordering of those relationships says nothing of
    them (a planner sweep's: a resource destroyed while another still used it)."""
    related: dict[str, str] = {}
    resources = model.resources
    for res in sorted(resources.values(), key=lambda r: r.name):
        others = [target for _, target in sorted(res.relations)] + ([res.part_of] if res.part_of else [])
        for name in [res.name, *others] if others else ():
            if name in resources:
                related.setdefault(resources[name].type, name)
    out = []
    for tname, example in sorted(related.items()):
        kind = model.kinds.get(tname)
        if kind is None or any(m in ORDERING_MILESTONES for m, _ in kind.milestones):
            continue
        summary = (f"type '{tname}' has no milestone 'assigned', 'created' or 'active' (a state of that name, or "
                   f"milestones: {{created: STATE}} on its lifecycle): the base ordering of part_of, uses, hosted_on "
                   f"and member_of says nothing of when its resources ('{example}' ...) come and go")
        out.append(_in_catalog(sources, ("types", tname, "lifecycle"), summary, f"its states: {', '.join(kind.states)}",
                               code="lifecycle", severity="warning"))
    return out


def _controller_diagnostics(found: list[tuple[str, str, str]], sources: list[Source]) -> list[Diagnostic]:
    """Each controller's problem at its field (``kind``, ``config.timeout`` ...) in the catalog that
    names it (a ``kind: htpp``, a ``config: {timeout: "5"}`` passed check, and apply refused them)."""
    return [_in_catalog(sources, ("controllers", name, *_field_path(field)), why, code="controller")
            for name, field, why in found]


def _in_catalog(sources: list[Source], path: PathKey, summary: str, detail: str = "", *, code: str,
                severity: str = "error") -> Diagnostic:
    """A problem at ``path`` (section, name, ...) in the catalog file that defines that name; at no line where
    none does."""
    section, name = path[0], path[1]
    where = next((src for src in sources if isinstance(src.data, dict) and name in (src.data.get(section) or {})),
                 None)
    diag = (where.diagnostic(path, summary, detail, code=code) if where is not None
            else Diagnostic(path=format_path(path), summary=summary, detail=detail, code=code))
    return diag if severity == "error" else dataclasses.replace(diag, severity=severity)


def _field_path(text: str) -> PathKey:
    """``config.operations.create.body.a[0]`` as a path (``format_path``'s inverse, for names without dots)."""
    return tuple(int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text))


def _catalog_sources(catalogs: list[Path], root: Path) -> list[Source]:
    """The catalog files that load, to name a line in (one that does not was reported already)."""
    sources = []
    for path in catalogs:
        try:
            sources.append(load_yaml(path, display_path(path, root)))
        except DiagnosticsError:
            continue
    return sources


def _goal(res, model: Model) -> tuple[str | None, str | None]:
    """The state the request asks of a resource, or the initial state when
    what it is part of is to go (the base library's goal, in part), and that whole."""
    if res.requested and res.desired is not None:
        return res.desired, None
    whole, seen = res.part_of, set()
    while whole is not None and whole in model.resources and whole not in seen:
        seen.add(whole)
        parent = model.resources[whole]
        kind = model.kinds.get(parent.type)
        if parent.requested and kind is not None and parent.desired == kind.initial:
            return (model.kinds[res.type].initial if res.type in model.kinds else None), whole
        whole = parent.part_of
    return None, None


def _reachable(kind, start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for op in kind.operations:
            if op.from_state == state and op.to_state not in seen:
                seen.add(op.to_state)
                todo.append(op.to_state)
    return seen


def _missing(kind, start: str, goal: str) -> str:
    """The transition that would help most: from the state reachable from
    ``start`` nearest to ``goal`` (in the lifecycle's order), one step toward it."""
    rank = {s: i for i, s in enumerate(kind.states)}
    near = min(sorted(_reachable(kind, start)), key=lambda s: abs(rank[s] - rank[goal]))
    step = kind.states[rank[near] + (1 if rank[goal] > rank[near] else -1)]
    return f"add to its lifecycle an operation from '{near}' to '{step}'"
