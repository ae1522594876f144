"""A project: the folder with ``ordo.yaml`` and everything it names."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import (
    CatalogFile,
    EnforcementSpec,
    InventoryFile,
    ObservedResource,
    ProjectFile,
    RequestFile,
    SettingsSpec,
    parse,
)
from domain.gcpause import paused_gc
from domain.guards import Guard, check_guards, load_guards
from domain.model import Model, build_model
from domain.modelcache import MODEL_CACHE, ModelCache, inputs_key
from domain.yamlsrc import CACHE_MIN_BYTES, MAX_YAML_BYTES, Source, load_yaml, read_at_most

PROJECT_FILE = "ordo.yaml"
#: Where large model files' parses are kept (domain.yamlsrc.ParseCache), beside the journal.
PARSE_CACHE = Path(".ordo", "cache", "yaml")
#: Where what each policy file defines and reads is kept (planner/lint.py), beside them.
POLICY_CACHE = Path(".ordo", "cache", "policies")


@dataclass
class Project:
    """Everything loaded for one planning run."""

    root: Path
    model: Model
    settings: SettingsSpec
    library: list[str]
    policy_files: list[Path]
    # (display name, sha256) of every model file, for the plan's digest
    # (policy files are hashed where they are read: planner.program)
    inputs: list[tuple[str, str]] = field(default_factory=list)
    request_file: str | None = None
    source: Source | None = None  # ordo.yaml, for messages that point into it
    request_path: Path | None = None    # the files as loaded, to load the project again (re-planning)
    inventory_file: Path | None = None
    extra_policy_files: list[Path] = field(default_factory=list)
    enforcement: dict[str, EnforcementSpec] = field(default_factory=dict)  # policy name -> level (ordo.yaml)
    parameters: dict[str, dict] = field(default_factory=dict)  # stock policy -> parameter -> value (ordo.yaml)
    guards: list[Guard] = field(default_factory=list)  # runtime guards (ordo.yaml `guards:`), in order
    #: what the store of the observed records said of itself before they were read (a journal's
    #: ``state_mark``): a run of a plan made from them starts only while it says the same
    observed_mark: tuple | None = None

    def display(self, path: Path) -> str:
        return display_path(path, self.root)


#: The journal's records among a plan's inputs: one name for every journal and every spelling of its
#: path (named as given, a plan made with ``--journal j/journal.db`` was stale when resumed from another
#: folder as ``../j/journal.db``: "inputs changed"). Their digest tells whether they changed.
JOURNAL_INPUT = "<journal>"


def input_name(path: Path, root: Path) -> str:
    """A file as a plan's inputs name it: its path resolved, relative to the project folder resolved
    (``../inventory.yaml`` for one beside it): the same however it was spelled (from the project
    folder, or as ``p/../inventory.yaml`` from its parent), and after the project was moved or copied
    with it."""
    if not isinstance(path, Path):   # (a journal's URL: executor.store.JournalUrl)
        return str(path)
    try:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except (OSError, RuntimeError, ValueError):  # a symlink loop (RuntimeError before 3.13); another drive
        return str(path)


def _outside(name: str) -> bool:
    return name.startswith("../") or name == ".." or Path(name).is_absolute()


def display_path(path: Path, root: Path) -> str:
    """A path as messages show it: relative to the project when inside it, else as it was given."""
    name = input_name(path, root)
    return str(path) if _outside(name) else name


def project_folder(root: Path | str = ".") -> tuple[Path, Path]:
    """The project folder and its project file, not read: ``root`` names either."""
    root = Path(root)
    return (root.parent, root) if root.is_file() else (root, root / PROJECT_FILE)


def read_project_file(root: Path | str = ".") -> tuple[Path, ProjectFile, Source]:
    """The project folder, its parsed ``ordo.yaml`` and the file's source."""
    root, root_file = project_folder(root)
    if not root_file.exists():
        raise DiagnosticsError([Diagnostic(
            file=str(root_file), summary="no project file here",
            detail=f"expected {PROJECT_FILE} naming the catalog, inventory and policies")])
    src = load_yaml(root_file, display_path(root_file, root))
    return root, parse(ProjectFile, src), src


def project_policy_files(root: Path, project: ProjectFile, src: Source) -> tuple[list[Path], list[Diagnostic]]:
    """The project's own rule files, folders expanded (their ``*.lp`` files, hidden ones left out, as a
    shell leaves them: an editor's lock or backup), in a stable order. What is not a regular file is a
    problem, named, and not read: every command that reads policies (check too) lists them here, and a
    pipe in a folder hung ``ordo check`` while ``ordo plan`` refused it."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for index, rel in enumerate(project.policies.files):
        path = root / rel
        if path.is_dir():
            for found in sorted(p for p in path.glob("*.lp") if not p.name.startswith(".")):
                if found.is_file():
                    files.append(found)
                else:   # (named by the link's own name: display_path follows links, to a name never written)
                    problems.append(Diagnostic(file=str(Path(display_path(path, root)) / found.name),
                                               summary=_not_a_policy_file(found)))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(src.diagnostic(("policies", "files", index), f"'{rel}' is not a file (a policy file is "
                                           "clingo text)" if path.exists() else f"no such policy file '{rel}'"))
    return files, problems


def _not_a_policy_file(path: Path) -> str:
    if path.exists():
        return "not a file (a policy file is clingo text)"
    return "a symbolic link to no file" if path.is_symlink() else "no such policy file"


def _locate(path: Path | str | None, root: Path) -> Path | None:
    """A command-line path: relative to the current folder, or else to the project."""
    if path is None:
        return None
    path = Path(path)
    try:
        if not path.is_absolute() and not path.exists() and (root / path).exists():
            return root / path
    except OSError:   # a name too long for the file system: not there (Python 3.11 raises for it)
        pass
    return path


def _ours(path: Path, root: Path) -> bool:
    """Whether ``path`` is one of the project's own files (in its folder, symlinks resolved, and not
    under ``.ordo``): only such files are kept in the parse cache. One from elsewhere (a request on a
    temporary file system) may hold secrets that its owner keeps out of the project; the requests
    the service keeps in ``.ordo/requests`` are each read a few times, and would only double there."""
    try:
        where = path.resolve().relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False
    return where.parts[:1] != (PARSE_CACHE.parts[0],)


#: Records in the journal from which a model is kept (domain.modelcache) whatever the size of its files.
MEMO_MIN_RECORDS = 1000


@dataclass
class _Memo:
    """Where the model of a load's inputs is kept, and its name there."""

    cache: ModelCache
    key: str
    inputs: list[tuple[str, str]]   # the files' and the journal's, as a plan's inputs name them


def _memo(root: Path, proj_src: Source, catalog_paths: list[Path | Source], inv_path: Path | Source | None,
          req_path: Path | Source | None, observed: int, observed_sha256: str | None,
          observed_name: str) -> _Memo | None:
    """The name of the model made of these files and this journal state in the project's model cache
    (domain.modelcache); None when none is kept: a file that is not the project's own (``_ours``) or
    not read here (loading says why), or a small model (files of less than CACHE_MIN_BYTES in all, and
    fewer than MEMO_MIN_RECORDS records: built in less time than a kept one is read)."""
    paths = [*catalog_paths, inv_path, req_path]
    try:   # (a name too long, a folder not to be searched: OSError; loading says why. A small model is not
        # read twice: its files' sizes say so)
        if not all(path is None or isinstance(path, Path) and _ours(path, root) and path.is_file() for path in paths):
            return None
        if sum(path.stat().st_size for path in paths if path is not None) < CACHE_MIN_BYTES \
                and observed < MEMO_MIN_RECORDS:
            return None
    except OSError:
        return None
    files: list[tuple[str, str, str] | None] = []
    for path in paths:
        if path is None:
            files.append(None)
            continue
        try:
            with path.open("rb") as handle:
                raw = read_at_most(handle, MAX_YAML_BYTES)
        except OSError:
            return None
        if raw is None:
            return None
        files.append((display_path(path, root), input_name(path, root), hashlib.sha256(raw).hexdigest()))
    # (the journal's name is in the model only through its records: a command without a journal, or
    # naming it otherwise, reads the model of a project that has none)
    key = inputs_key([proj_src.file, proj_src.sha256, files, observed_sha256,
                      observed_name if observed_sha256 is not None else None])
    if key is None:
        return None
    inputs = [(name, sha) for _, name, sha in filter(None, files)]
    if observed_sha256 is not None:
        inputs.append((JOURNAL_INPUT, observed_sha256))
    return _Memo(ModelCache(root / MODEL_CACHE, recorded=observed_sha256 is not None), key, inputs)


def observed_digest(observed: list[ObservedResource], stored: list[str] | None = None) -> str:
    """The sha256 of the records' JSON, one a line, in name order: what the plan's digest counts of them.

    ``stored``: the same records as JSON text, in the same order (the journal's rows). When they
    are exactly the records' JSON (:func:`written_as_stored`), they are hashed as they are."""
    if stored is not None and written_as_stored(observed, stored):
        return texts_digest(stored)
    return texts_digest([r.model_dump_json() for r in sorted(observed, key=lambda r: r.name)])


def texts_digest(texts: list[str]) -> str:
    """The sha256 of records' JSON texts, one a line: :func:`observed_digest` of the records they are."""
    return hashlib.sha256("\n".join(texts).encode("utf-8", "surrogatepass")).hexdigest()


def written_as_stored(observed: list[ObservedResource], stored: list[str]) -> bool:
    """Whether ``stored`` is, text for text, what the records (in name order) write out as JSON:
    checked in one call that writes them out as an inventory's, half the cost of writing each."""
    if len(stored) != len(observed) or not all(type(text) is str for text in stored):
        return False
    names = [r.name for r in observed]
    # each stored text is one JSON value, so the texts are the records' one by one
    return all(a < b for a, b in zip(names, names[1:], strict=False)) and (
        InventoryFile.model_construct(resources=observed).model_dump_json()
        == '{"targets":{},"resources":[' + ",".join(stored) + "]}")


@paused_gc()
def load_project(
    root: Path | str = ".",
    request: Path | str | Source | None = None,
    inventory: Path | str | Source | None = None,
    extra_policy_files: list[Path] | None = None,
    *,
    need_request: bool = True,
    observed: list[ObservedResource] | None = None,
    observed_name: str = "<journal>",
    observed_json: list[str] | None = None,
    observed_sha256: str | None = None,
    observed_in_flight: Callable[[], Collection[str]] | None = None,
    catalog: list[Path | Source] | None = None,
    read: tuple[Path, ProjectFile, Source] | None = None,
) -> Project:
    """Load and validate a project. Raises DiagnosticsError listing every problem.

    ``request`` and ``inventory`` override the project file's choices; a
    relative path is taken from the current folder if it is there, else from
    the project folder (so ``ordo plan -C examples/vfw requests/delete.yaml`` works).
    ``observed`` are the journal's records of what runs did, newer than the
    inventory file (``observed_name``: the journal, as messages name it); they are part of the
    plan's digest as JOURNAL_INPUT, whatever the journal's path and however it was spelled
    (``observed_json``: each one's JSON as the journal stores it, which spares
    writing them out again when it is theirs: :func:`observed_digest`; ``observed_sha256``: that
    digest, when the caller has it already: executor.journal.StateCopy).
    ``request``, ``inventory`` and ``catalog`` (which replaces the project's
    catalog files) may also be sources already loaded, such as a model
    written inline in a policy test file; ``read``, the project file read already
    (``read_project_file``: ``ordo check``'s, without its entries that have schema errors).

    The model of a large project's own files is kept (``.ordo/cache/model``, domain.modelcache) and
    read back by the next load of the very same inputs instead of being built again.
    """
    root, project, proj_src = read if read is not None else read_project_file(root)
    cache = root / PARSE_CACHE
    problems: list[Diagnostic] = []
    inputs = [(proj_src.file, proj_src.sha256)]

    def load(path: Path | Source, model_cls: type, named: tuple[str | int, ...] | None = None):
        """``named``: where the project file names ``path``, which a file not found is reported at."""
        try:
            src = path if isinstance(path, Source) else load_yaml(path, display_path(path, root),
                                                                  cache=cache if _ours(path, root) else None)
            parsed = parse(model_cls, src)
        except DiagnosticsError as exc:
            found = exc.diagnostics
            if named is not None and [d.summary for d in found] == ["file not found"]:
                found = [proj_src.diagnostic(named, f"{found[0].file}: file not found",
                                             "expected a file, relative to the project folder")]
            problems.extend(found)
            return None, None
        inputs.append((input_name(path, root) if isinstance(path, Path) else src.file, src.sha256))
        return parsed, src

    own_catalog = catalog is None   # the project file's catalog files, not ones given
    catalog_paths = list(catalog) if catalog is not None else [root / rel for rel in project.catalog]
    inv_path = (inventory if isinstance(inventory, Source) else _locate(inventory, root)) or (
        root / project.inventory if project.inventory else None)
    req_path = (request if isinstance(request, Source) else _locate(request, root)) or (
        root / project.request if project.request else None)
    observed_sha256 = (observed_sha256 or observed_digest(observed, observed_json)) if observed else None
    memo = _memo(root, proj_src, catalog_paths, inv_path, req_path, len(observed or ()), observed_sha256,
                 observed_name) \
        if own_catalog and not isinstance(inventory, Source) and not isinstance(request, Source) \
        and (req_path is not None or not need_request) else None   # (no request, asked for one: said below)
    kept = memo.cache.get(memo.key) if memo is not None else None
    if kept is not None:
        return _project(root, project, proj_src, kept, [*inputs, *memo.inputs], req_path, inv_path,
                        extra_policy_files, [])
    catalog = CatalogFile()
    catalog_src = None
    for i, item in enumerate(catalog_paths):
        part, src = load(item, CatalogFile, ("catalog", i) if own_catalog else None)
        if part is None:
            continue
        for section in ("controllers", "lifecycles", "types"):
            for name in sorted(set(getattr(catalog, section)) & set(getattr(part, section))):
                line, column = src.where_key((section, name))
                problems.append(Diagnostic(file=src.file, line=line, column=column, path=f"{section}.{name}",
                                           summary=f"'{name}' is defined in more than one catalog file"))
        catalog = CatalogFile(
            controllers={**catalog.controllers, **part.controllers},
            lifecycles={**catalog.lifecycles, **part.lifecycles},
            types={**catalog.types, **part.types},
        )
        catalog_src = catalog_src or src

    inv, inv_src = (InventoryFile(), None)
    if inv_path is not None:
        inv, inv_src = load(inv_path, InventoryFile, ("inventory",) if inventory is None else None)
        inv = inv or InventoryFile()

    req, req_src = (None, None)
    if req_path is not None:
        req, req_src = load(req_path, RequestFile, ("request",) if request is None else None)
    elif need_request:
        problems.append(proj_src.diagnostic(("request",), "no request given",
                                            "name one on the command line or as 'request:' here"))

    if observed:
        inputs.append((JOURNAL_INPUT, observed_sha256))
    loaded = not problems   # (what the model is made of read without a problem: it may be kept)
    model = None
    if catalog_src is not None:
        # Cross-check what did load, so one bad file does not hide the others'
        # problems; but a request is not checked against an inventory that failed.
        inventory_failed = inv_path is not None and inv_src is None
        try:
            model = build_model(catalog, catalog_src, inv, inv_src, req, req_src,
                                check_references=not inventory_failed,
                                observed=observed or (), observed_file=observed_name,
                                in_flight=observed_in_flight)
        except DiagnosticsError as exc:
            problems.extend(exc.diagnostics)
    if model is not None and not model.transient and loaded and memo is not None and inputs[1:] == memo.inputs:
        memo.cache.put(memo.key, model)   # (unless a file changed between its name and its load)
    return _project(root, project, proj_src, model, inputs, req_path, inv_path, extra_policy_files, problems)


def _project(root: Path, project: ProjectFile, proj_src: Source, model: Model | None,
             inputs: list[tuple[str, str]], req_path: Path | Source | None, inv_path: Path | Source | None,
             extra_policy_files: list[Path] | None, problems: list[Diagnostic]) -> Project:
    """The project of its model (None: not built), with the guards and policy files the project file
    names, checked (each command reads them anew: they are no part of a kept model); raises
    DiagnosticsError with ``problems`` and theirs, every one found."""
    guards, guard_sources, guard_problems = load_guards(root, list(project.guards), proj_src, display_path)
    problems.extend(guard_problems)
    named = {display_path(root / rel, root): input_name(root / rel, root) for rel in project.guards}
    inputs.extend((named.get(src.file, src.file), src.sha256) for src in guard_sources.values())

    policy_files, policy_problems = project_policy_files(root, project, proj_src)
    problems.extend(policy_problems)
    policy_files.extend(extra_policy_files or [])
    problems += [Diagnostic(file=str(p), summary=_not_a_policy_file(p)) for p in policy_files if not p.is_file()]

    if model is not None and guards:
        problems.extend(check_guards(guards, guard_sources, model))
    if problems or model is None:
        raise DiagnosticsError(problems)
    return Project(
        root=root, model=model, settings=project.settings, library=list(project.policies.library),
        enforcement=dict(project.policies.enforcement), parameters=dict(project.policies.parameters), guards=guards,
        policy_files=policy_files, inputs=sorted(inputs),
        request_file=(req_path.file if isinstance(req_path, Source) else display_path(req_path, root))
        if req_path is not None else None,
        source=proj_src, request_path=req_path.resolve() if isinstance(req_path, Path) else None,
        inventory_file=inv_path.resolve() if isinstance(inv_path, Path) else None,
        extra_policy_files=list(extra_policy_files or []),
    )
