"""The resolved model: catalog, targets and one record per resource.

Built from the three files by :func:`build_model`, which checks every
cross-reference (types, lifecycles, controllers, states, targets, related
resources, relationship cycles) and reports all problems at once.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import (
    CHILD_LISTS,
    MAX_INT,
    CatalogFile,
    DesiredResource,
    InventoryFile,
    ObservedResource,
    RequestFile,
    TargetSpec,
    TypeSpec,
)
from domain.secrets import redacted, same_value, scrub, secret_name
from domain.yamlsrc import PathKey, Source, format_path, resolve


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures (Temporal's retry policy)."""

    initial_interval: float = 1.0
    coefficient: float = 2.0
    max_interval: float = 60.0
    attempts: int = 5

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): at most ``max_interval``,
        however many attempts (the growth is not worked out past it: a float power overflowed at
        attempt 1,025 of the default coefficient, at the third of 1e200, and crashed every resume)."""
        if self.initial_interval >= self.max_interval:
            return self.max_interval
        if self.initial_interval <= 0 or self.coefficient == 1:
            return self.initial_interval
        # in logarithms: the quotient of the two may be past a float (an initial interval of 1e-320, a review's)
        grown = math.log(self.initial_interval) + (attempt - 1) * math.log(self.coefficient)
        if grown >= math.log(self.max_interval):
            return self.max_interval
        try:
            return min(self.max_interval, self.initial_interval * self.coefficient ** (attempt - 1))
        except OverflowError:   # (the power alone past a float, the product not)
            return min(self.max_interval, math.exp(grown))


@dataclass(frozen=True)
class WaitRule:
    """An operation that completes on an outside event (``event``) or when a polled observation shows
    ``state`` (or ``output`` equal to ``equals``), every ``every`` seconds; it fails ``deadline``
    seconds after its first dispatch. ``send``: the controller is called first."""

    deadline: float
    event: str | None = None
    state: str | None = None
    output: str | None = None
    equals: Any = None
    every: float = 10.0
    send: bool = True

    def describe(self) -> str:
        if self.event is not None:
            return f"event '{self.event}'"
        if self.state is not None:
            return f"state {self.state}"
        return f"{self.output} = {self.equals!r}"


@dataclass(frozen=True)
class Operation:
    name: str
    from_state: str
    to_state: str
    controller: str
    duration: float
    outputs: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    wait: WaitRule | None = None


@dataclass(frozen=True)
class Reference:
    """A param that reads another resource's output: ``${producer.outputs.output}``."""

    param: str        # the param's key (top level) in the consumer's params
    producer: str
    output: str
    operation: str | None  # the producer's operation that returns it (None: only observed)
    file: str = ""
    #: where it is written: (line, column), or what ``Source.deferred`` gives for a file from the
    #: parse cache, found when a message first needs it (``Origin.at``'s reason)
    at: tuple = field(default=(0, 0), compare=False, repr=False)

    @property
    def line(self) -> int:
        return self._position()[0]

    @property
    def column(self) -> int:
        return self._position()[1]

    def _position(self) -> tuple[int, int]:
        at = self.at
        if not isinstance(at[0], int):
            at = resolve(at)
            object.__setattr__(self, "at", at)
        return at

    @property
    def text(self) -> str:
        return f"${{{self.producer}.outputs.{self.output}}}"


@dataclass(frozen=True)
class ResourceKind:
    """A resource type with its lifecycle resolved."""

    name: str
    states: tuple[str, ...]
    milestones: tuple[tuple[str, str], ...]
    operations: tuple[Operation, ...]
    final: str
    placement: bool
    update: str | None
    secrets: tuple[str, ...] = ()  # params and outputs whose values are secret (catalog: secrets)

    @property
    def initial(self) -> str:
        return self.states[0]

    def operation(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)

    def tears_down(self, name: str) -> bool:
        """Whether operation ``name`` takes a resource to the initial state: gone (a replacement's way down)."""
        return any(op.name == name and op.to_state == self.initial for op in self.operations)


class Origin:
    """Where a resource was declared, for messages: the file and the line.
    ``Origin.at`` a source from the parse cache keeps where to find the line
    (``Source.deferred``) and finds it when it is first read: only messages
    read it, and loading would otherwise parse the file it skipped."""

    __slots__ = ("file", "_at")

    def __init__(self, file: str, line: int = 0):
        self.file, self._at = file, (line, 0)

    @classmethod
    def at(cls, src: Source, path: tuple) -> Origin:
        origin = cls(src.file)
        origin._at = src.deferred(path)
        return origin

    @property
    def line(self) -> int:
        at = self._at
        if not isinstance(at[0], int):
            at = self._at = resolve(at)
        return at[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Origin) and (self.file, self.line) == (other.file, other.line)

    def __hash__(self) -> int:
        return hash((self.file, self.line))

    def __repr__(self) -> str:
        return f"Origin(file={self.file!r}, line={self.line!r})"

    def __reduce__(self) -> tuple:   # unresolved, with the file's text (pickled once per file), not its line
        return _origin, (self.file, self._at)


def _origin(file: str, at: tuple) -> Origin:
    origin = Origin(file)
    origin._at = at
    return origin


@dataclass
class Resource:
    name: str
    type: str
    current: str
    desired: str | None = None
    part_of: str | None = None
    relations: set[tuple[str, str]] = field(default_factory=set)
    placement: str | None = None
    pinned: str | None = None
    requires: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    run: tuple[str, ...] = ()
    priority: int | None = None  # the request's order among siblings (a goal: never observed)
    refs: tuple[Reference, ...] = ()
    #: the params that read outputs (``refs``) and, with those outputs as known now, hold another value
    #: than this resource, at its goal already, was last sent (build_model: ``_rewired``)
    rewired: tuple[str, ...] = ()
    observed: bool = False
    requested: bool = False
    origin: Origin | None = None
    #: which of its observed attributes are params ordo sent it (its record's ``params``): what making it
    #: again sends, where the request gives it none (a resource moved, or put back, that it does not name)
    sent: tuple[str, ...] = ()
    sent_reading: tuple[str, ...] = ()   # those of them that read other resources' outputs (not sent again)
    restored: tuple[str, ...] = ()   # a rollback's: the params put back from the journal (its values then)

    @property
    def changed(self) -> bool:
        """Requested params that differ from what was observed (a param that reads another
        resource's output: once resolved with that output as known now, ``rewired``)."""
        return self.observed and next(self._changed(), None) is not None

    def changed_params(self) -> list[str]:
        """The requested params, sorted, that differ from what was observed (a secret one by its
        fingerprint; one that reads another resource's output, as ``rewired`` says)."""
        return sorted(self._changed())

    def _changed(self) -> Iterator[str]:
        if not self.refs:
            return (k for k, v in self.params.items() if not same_value(self.attributes.get(k), v))
        wired = {ref.param for ref in self.refs}
        return itertools.chain(self.rewired, (k for k, v in self.params.items()
                                              if k not in wired and not same_value(self.attributes.get(k), v)))


@dataclass
class Model:
    kinds: dict[str, ResourceKind]
    controllers: dict[str, Any]
    targets: dict[str, TargetSpec]
    resources: dict[str, Resource]
    request_name: str = ""
    # What a run learnt before it re-plans (executor): failed operations,
    # targets that refused, and where the previous plan placed resources.
    failed: set[tuple[str, str]] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    planned: dict[str, str] = field(default_factory=dict)
    #: a re-plan's: the state the run's previous plan took each resource the request does not name to
    planned_goals: dict[str, str] = field(default_factory=dict)
    # Targets another run on the journal holds now (executor/claims.py): nothing new goes there.
    claimed_elsewhere: set[str] = field(default_factory=set)
    # The words the resources use, found as the model is built (build_model's
    # survey): label keys, relationship kinds, requires keys and param names
    # (planner/lint.py's vocabulary).
    words: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)
    # Made while a run under way had written part of what it makes: a relation of one of its records to a
    # resource it has not recorded yet is left out (build_model's ``in_flight``). Not to be kept.
    transient: bool = field(default=False, repr=False, compare=False)


def _resolve_catalog(catalog: CatalogFile, src: Source, problems: list[Diagnostic]) -> dict[str, ResourceKind]:
    for lname, life in catalog.lifecycles.items():
        states = set(life.states)
        twice = sorted({x for x in life.states if life.states.count(x) > 1})
        if twice:
            problems.append(src.diagnostic(("lifecycles", lname, "states"),
                                           f"state listed twice: {', '.join(twice)}"))
        for oname, op in life.operations.items():
            for attr, key in (("from_", "from"), ("to", "to")):
                value = getattr(op, attr)
                if value not in states:
                    problems.append(src.diagnostic(
                        ("lifecycles", lname, "operations", oname, key),
                        f"unknown state '{value}'", _choices(value, life.states, ordered=True)))
        for mname, state in life.milestones.items():
            if state not in states:
                problems.append(src.diagnostic(
                    ("lifecycles", lname, "milestones", mname),
                    f"unknown state '{state}'", _choices(state, life.states, ordered=True)))
    kinds: dict[str, ResourceKind] = {}
    for tname, spec in catalog.types.items():
        kind = _resolve_type(tname, spec, catalog, src, problems)
        if kind is not None:
            kinds[tname] = kind
    return kinds


def _resolve_type(tname: str, spec: TypeSpec, catalog: CatalogFile, src: Source,
                  problems: list[Diagnostic]) -> ResourceKind | None:
    here = ("types", tname)
    life = catalog.lifecycles.get(spec.lifecycle)
    if life is None:
        problems.append(src.diagnostic(here + ("lifecycle",), f"unknown lifecycle '{spec.lifecycle}'",
                                       _choices(spec.lifecycle, catalog.lifecycles)))
        return None
    for oname in spec.operations:
        if oname not in life.operations:
            problems.append(src.diagnostic(here + ("operations", oname),
                                           f"lifecycle '{spec.lifecycle}' has no operation '{oname}'",
                                           _choices(oname, life.operations)))
    ops = []
    for oname, transition in sorted(life.operations.items()):
        settings = spec.operations.get(oname)
        controller = (settings.controller if settings and settings.controller else None) or spec.controller
        where = here + (("operations", oname, "controller") if settings and settings.controller else ("controller",))
        if controller is None:
            problems.append(src.diagnostic(here, f"no controller for operation '{oname}'",
                                           "set 'controller' on the type or on the operation"))
            controller = ""
        elif controller not in catalog.controllers:
            problems.append(src.diagnostic(where, f"unknown controller '{controller}'",
                                           _choices(controller, catalog.controllers)))
        duration = settings.duration if settings and settings.duration else 1.0
        ctrl_spec = catalog.controllers.get(controller or "")
        retry = ((settings.retry if settings else None) or spec.retry
                 or (ctrl_spec.retry if ctrl_spec else None))
        timeout = (settings.timeout if settings else None) or (ctrl_spec.timeout if ctrl_spec else None)
        ops.append(Operation(oname, transition.from_, transition.to, controller, duration,
                             outputs=tuple(settings.outputs) if settings else (),
                             retry=RetryPolicy(**retry.model_dump()) if retry else RetryPolicy(),
                             timeout=timeout, wait=_wait(settings, life.states, src, here + ("operations", oname),
                                                         problems)))
    final = spec.final or life.states[-1]
    if final not in life.states:
        problems.append(src.diagnostic(here + ("final",), f"unknown state '{final}'",
                                       _choices(final, life.states, ordered=True)))
    if spec.update is not None:
        op = life.operations.get(spec.update)
        if op is None:
            problems.append(src.diagnostic(here + ("update",), f"unknown operation '{spec.update}'",
                                           _choices(spec.update, life.operations)))
        elif op.from_ != op.to:
            problems.append(src.diagnostic(here + ("update",),
                                           f"update operation '{spec.update}' must keep the state",
                                           f"it goes from '{op.from_}' to '{op.to}'"))
    milestones = {s: s for s in life.states}
    milestones.update(life.milestones)
    return ResourceKind(
        name=tname, states=tuple(life.states), milestones=tuple(sorted(milestones.items())),
        operations=tuple(ops), final=final, placement=spec.placement, update=spec.update,
        secrets=tuple(spec.secrets),
    )


def _wait(settings: Any, states: list[str], src: Source, here: PathKey, problems: list[Diagnostic]) -> WaitRule | None:
    spec = settings.wait if settings is not None else None
    if spec is None:
        return None
    observe = spec.observe
    if observe is not None and observe.state is not None and observe.state not in states:
        problems.append(src.diagnostic(here + ("wait", "observe", "state"), f"unknown state '{observe.state}'",
                                       _choices(observe.state, states, ordered=True)))
    return WaitRule(deadline=spec.deadline, event=spec.event, state=observe.state if observe else None,
                output=observe.output if observe else None, equals=observe.equals if observe else None,
                every=spec.every or 10.0, send=spec.send)


def _choices(value: str, options: Any, ordered: bool = False) -> str:
    names = list(options) if ordered else sorted(options)
    close = difflib.get_close_matches(value, names, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"expected one of: {', '.join(names)}" if names else "none are defined"


def _flatten_request(request: RequestFile) -> list[tuple[DesiredResource, str, str | None, PathKey]]:
    """(resource, type, parent name, path) for every requested resource, parents first."""
    out: list[tuple[DesiredResource, str, str | None, PathKey]] = []

    def visit(res: DesiredResource, default_type: str | None, parent: str | None, path: PathKey) -> None:
        out.append((res, res.type or default_type or "", parent, path))
        for list_name, child_type in CHILD_LISTS.items():
            children = getattr(res, list_name)
            if children:
                for index, child in enumerate(children):
                    visit(child, child_type, res.name, path + (list_name, index))

    for sname, spec in request.services.items():
        visit(spec.model_copy(update={"name": spec.name or sname}), "service", None, ("services", sname))
    for index, res in enumerate(request.resources):
        visit(res, None, None, ("resources", index))
    return out


def build_model(
    catalog: CatalogFile, catalog_src: Source,
    inventory: InventoryFile, inventory_src: Source | None,
    request: RequestFile | None, request_src: Source | None,
    *, check_references: bool = True,
    observed: list[ObservedResource] | tuple[ObservedResource, ...] = (),
    observed_file: str = "",
    in_flight: Callable[[], Collection[str]] | None = None,
) -> Model:
    """Resolve and cross-check the three files. Raises DiagnosticsError.

    With check_references False (the inventory failed to load), names that
    would be found in it are not reported as unknown. ``observed`` are records
    of what earlier runs did (the journal's state); they replace the
    inventory's entries of the same name.
    """
    problems: list[Diagnostic] = []
    kinds = _resolve_catalog(catalog, catalog_src, problems)
    resources: dict[str, Resource] = {}
    paths: dict[str, tuple[Source, PathKey]] = {}
    nested_part_of: list[tuple[str, str, Source, PathKey]] = []
    wired: list[tuple[Resource, Source, PathKey]] = []

    def check_type(tname: str, src: Source, path: PathKey) -> ResourceKind | None:
        if tname in kinds:
            return kinds[tname]
        if tname in catalog.types:
            return None  # already reported as a catalog problem
        if not tname:
            problems.append(src.diagnostic(path + ("type",), "missing required field 'type'",
                                           "resources in 'resources' lists must name their type"))
        else:
            problems.append(src.diagnostic(path + ("type",), f"unknown resource type '{tname}'",
                                           _choices(tname, kinds)))
        return None

    def check_state(kind: ResourceKind, state: str, src: Source, path: PathKey) -> None:
        if state not in kind.states:
            problems.append(src.diagnostic(path, f"unknown state '{state}' for type '{kind.name}'",
                                           _choices(state, kind.states, ordered=True)))

    def check_target(target: str | None, src: Source, path: PathKey) -> None:
        if target is not None and target not in inventory.targets and check_references:
            problems.append(src.diagnostic(path, f"unknown target '{target}'",
                                           _choices(target, inventory.targets)))

    if inventory_src is not None:
        for index, obs in enumerate(inventory.resources):
            path: PathKey = ("resources", index)
            if obs.name in resources:
                problems.append(inventory_src.diagnostic(path + ("name",),
                                                         f"resource '{obs.name}' is listed twice"))
                continue
            kind = check_type(obs.type, inventory_src, path)
            if kind is not None:
                check_state(kind, obs.state, inventory_src, path + ("state",))
            check_target(obs.placement, inventory_src, path + ("placement",))
            res = Resource(
                name=obs.name, type=obs.type, current=obs.state, part_of=obs.part_of,
                # (in its initial state it exists nowhere, as a journal's record of it: a placement kept pinned
                # its creation to a target that had no room, and a pin in the request could not move it)
                placement=obs.placement if kind is None or obs.state != kind.initial else None,
                requires=obs.requires, labels=obs.labels,
                attributes=obs.attributes, observed=True, **_sent(obs),
                origin=Origin.at(inventory_src, path),
            )
            res.relations = _relations(obs)
            resources[obs.name] = res
            paths[obs.name] = (inventory_src, path)

    where = Origin(observed_file or "<journal>")
    in_journal = (_journal_source(where.file), ())
    recorded = {record.name for record in observed}
    for record in observed:
        # The journal's record of what runs did: newer than the inventory file.
        kind = kinds.get(record.type)
        if kind is None or record.state not in kind.states:
            problems.append(Diagnostic(
                file=where.file, path=f"state.{record.name}",
                summary=f"recorded resource '{record.name}' is a {record.type} in state '{record.state}', "
                        "which the catalog no longer has",
                detail="fix the catalog, or forget the record: ordo state rm " + record.name))  # ordo/cli.py
            continue
        res = Resource(
            name=record.name, type=record.type, current=record.state, part_of=record.part_of,
            placement=record.placement if record.state != kind.initial else None,
            requires=record.requires, labels=record.labels,  # the record's own: copied before a change
            attributes=record.attributes, observed=True, origin=where, **_sent(record),
            relations=_relations(record))
        previous = resources.get(record.name)
        if previous is not None:
            res.origin = previous.origin
        else:
            paths[record.name] = in_journal
        resources[record.name] = res

    if request is not None and request_src is not None:
        requested: dict[str, PathKey] = {}
        for desired, tname, parent, path in _flatten_request(request):
            if desired.name in requested:
                first = requested[desired.name]
                problems.append(request_src.diagnostic(
                    path + ("name",), f"resource '{desired.name}' is requested twice",
                    f"first at line {request_src.where(first)[0]}, {format_path(first)}"))
                continue
            requested[desired.name] = path
            kind = check_type(tname, request_src, path)
            existing = resources.get(desired.name)
            part_of = parent or desired.part_of
            if existing is not None and (gone := kinds.get(existing.type)) is not None \
                    and existing.current == gone.initial \
                    and ((tname and existing.type != tname) or (existing.part_of and part_of
                                                                 and existing.part_of != part_of)):
                # not there (deleted by a run, or not made yet), and asked for as another type or under
                # another whole (a name a delete freed, taken under another service): said anew, none of
                # the record's relations, labels, requirements or outputs kept. Asked for as it was (a
                # rollback's request, an inventory's entry of what is to be made), it keeps them.
                existing = None
            if existing is not None and tname and existing.type != tname:
                problems.append(request_src.diagnostic(
                    path + ("type",), f"'{desired.name}' is a {existing.type} in the inventory, not a {tname}"))
                continue
            if parent and desired.part_of and desired.part_of != parent:
                nested_part_of.append((desired.part_of, parent, request_src, path + ("part_of",)))
            if existing is not None and existing.part_of and part_of and existing.part_of != part_of:
                problems.append(request_src.diagnostic(
                    path, f"'{desired.name}' is part of '{existing.part_of}' in the inventory, not of '{part_of}'"))
                continue
            relations = _relations(desired)
            if existing is not None and kind is not None and existing.current != kind.initial:
                problems.extend(_overrides(existing, desired, part_of, relations, request_src, path))
            if kind is not None and desired.state is not None:
                check_state(kind, desired.state, request_src, path + ("state",))
            if kind is not None:
                for index, opname in enumerate(desired.run):
                    if opname not in {o.name for o in kind.operations}:
                        problems.append(request_src.diagnostic(
                            path + ("run", index), f"type '{kind.name}' has no operation '{opname}'",
                            _choices(opname, [o.name for o in kind.operations])))
            check_target(desired.placement, request_src, path + ("placement",))
            res = existing or Resource(name=desired.name, type=tname, current=kind.initial if kind else "")
            res.requested = True
            res.desired = desired.state or (kind.final if kind else None)
            res.part_of = part_of or res.part_of
            res.relations |= relations
            res.pinned = desired.placement
            res.requires = {**res.requires, **desired.requires}   # a new dict: an observed one is the record's
            res.labels = {**res.labels, **desired.labels}
            res.params = dict(desired.params)   # (which read outputs: its refs; the record's stay for a rollback)
            res.run = tuple(desired.run)
            res.priority = desired.priority
            res.origin = Origin.at(request_src, path)
            resources[desired.name] = res
            paths[desired.name] = (request_src, path)
            wired.append((res, request_src, path + ("params",)))

    # Every related resource must exist somewhere.
    for own, parent, src, path in nested_part_of:
        if own not in resources:
            if check_references:
                problems.append(src.diagnostic(path, f"unknown resource '{own}'", _choices(own, resources)))
        else:
            problems.append(src.diagnostic(path, f"says part_of '{own}' but is listed under '{parent}'",
                                           "drop part_of here, or move the resource under its parent"))
    survey = _Survey(resources)
    transient = False
    if survey.dangling and observed and in_flight is not None:
        # A record's relation to a resource that has none yet: another run, under way, assigned a VF
        # module before the network it uses (the order of their milestones allows it). That run's own
        # request names the network; any other plan made meanwhile was refused "unknown resource",
        # naming another run's resources (a sweep of the service's). A relation of a record that a run
        # under way wrote (``in_flight``: their names, asked only now), to what no file names and the
        # journal does not hold, is left out of this plan; any other (a resource removed with
        # `ordo state rm` that a record still uses) is refused, as it was.
        writing = set(in_flight())
        for name, res in resources.items():
            if name in writing and paths[name] is in_journal and res.relations \
                    and any(t not in resources for _, t in res.relations):
                res.relations = {(kind_name, t) for kind_name, t in res.relations if t in resources}
                transient = True
        survey = _Survey(resources)
    for name, res in sorted(resources.items()) if check_references and survey.dangling else ():
        src, path = paths[name]
        if res.part_of is not None and res.part_of not in resources:
            problems.append(src.diagnostic(path + ("part_of",), f"unknown resource '{res.part_of}'",
                                           _choices(res.part_of, resources)))
        for kind_name, target in sorted(res.relations):
            if target not in resources:
                problems.append(src.diagnostic(_relation_path(src, path, kind_name, target),
                                               f"unknown resource '{target}'", _choices(target, resources)))
    problems.extend(_totals(resources, paths, survey.totals))
    problems.extend(_part_and_member(resources, paths, survey.both))
    for res, src, path in wired:
        res.refs = tuple(_references(res, resources, kinds, src, path, problems, check_references))
        if res.refs and res.observed and res.current == res.desired:
            res.rewired = _rewired(res, resources, res.name in recorded)
    problems.extend(_cycles(paths, survey.graphs))
    if problems:
        raise DiagnosticsError(problems)
    return Model(transient=transient, kinds=kinds, controllers=dict(catalog.controllers),
                 targets=dict(inventory.targets),
                 resources=dict(sorted(resources.items())),
                 # (shown, journaled and answered over HTTP in plans: a URL's password or a token in it masked)
                 request_name=scrub(request.name or "") if request else "", words=survey.words)


#: What a request may set for a resource that exists (observed, past its
#: lifecycle's initial state); everything else about it is observed and
#: comes from the inventory or the journal (docs: policies/README.md).
REQUEST_MAY_SET = ("state", "params", "run", "priority")


def _overrides(existing: Resource, desired: DesiredResource, part_of: str | None, relations: set[tuple[str, str]],
               src: Source, path: PathKey) -> list[Diagnostic]:
    """A request may restate what is observed of an existing resource, never
    change it: a label `protected: false` would lift a protection, `requires:
    {vcpu: 0}` would free capacity that is in use. ``relations``: the
    request's relationships of it (``_relations(desired)``)."""
    seen = f"in {existing.origin.file}" if existing.origin else "observed"
    found: list[tuple[PathKey, str]] = []
    for key, value in desired.requires.items():
        # a key not observed may be added: it only adds to what capacity counts
        if key in existing.requires and existing.requires[key] != value:
            found.append((("requires", key), f"requires '{key}' is {existing.requires[key]} {seen}, not {value}"))
    for key, value in desired.labels.items():
        # policies read labels with any meaning (protected: true): none is added or changed
        now = existing.labels.get(key)
        if key not in existing.labels or now != value or type(now) is not type(value):  # true is not 1
            if secret_name(key):   # (its values not shown)
                was = "has another value" if key in existing.labels else "is not set"
                found.append((("labels", key), f"label '{key}' {was} {seen}"))
                continue
            was = f"is {_shown(now)}" if key in existing.labels else "is not set"
            found.append((("labels", key), f"label '{key}' {was} {seen}, not {_shown(value)}"))
    if part_of is not None and existing.part_of is None:  # a different part_of is refused before
        found.append((("part_of",) if desired.part_of else (),
                      f"it is not part of another resource {seen}; the request puts it under '{part_of}'"))
    for kind, target in sorted(relations - existing.relations):
        found.append((_relation_path(src, path, kind, target)[len(path):],
                      f"it has no relationship '{kind}' to '{target}' {seen}"))
    if desired.placement is not None and desired.placement != existing.placement:
        found.append((("placement",), f"it is placed on {_shown(existing.placement)} {seen}, "
                                      f"not on '{desired.placement}'"))
    if not found:
        return []
    detail = (f"a request may set an existing resource's {', '.join(REQUEST_MAY_SET)} (and requires not recorded); "
              f"the rest is observed: change it in the inventory file (after ordo state rm {existing.name} "
              "if a run recorded it)")
    return [src.diagnostic(path + sub, f"cannot change what is observed of existing '{existing.name}': {text}",
                           detail, code="observed") for sub, text in found]


def _part_and_member(resources: dict[str, Resource], paths: dict[str, tuple[Source, PathKey]],
                     both: list[str]) -> list[Diagnostic]:
    """A part goes with its whole, a member outlives it: a resource is not both of one whole
    (``both``: those that are, from the survey)."""
    problems = []
    for name in sorted(both):
        whole = resources[name].part_of
        src, path = paths[name]
        problems.append(src.diagnostic(
            _relation_path(src, path, "member_of", whole),
            f"'{name}' is both part of '{whole}' and a member of it",
            f"a part is deleted with its whole, a member outlives it: keep one (to keep '{name}' when "
            f"'{whole}' goes, list it outside '{whole}' with member_of)"))
    return problems


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _totals(resources: dict[str, Resource], paths: dict[str, tuple[Source, PathKey]],
            totals: dict[str, int]) -> list[Diagnostic]:
    """The capacity policy adds up `requires` in the solver's 32-bit integers:
    the total of each key over every resource (``totals``, from the survey) stays within MAX_INT."""
    if all(total <= MAX_INT for total in totals.values()):
        return []   # amounts are not negative: no running total crossed it either
    totals = {}
    problems = []
    for name, res in sorted(resources.items()):
        for key, amount in sorted(res.requires.items()):
            before = totals.get(key, 0)
            totals[key] = before + amount
            if before <= MAX_INT < totals[key]:
                src, path = paths[name]
                problems.append(src.diagnostic(
                    path + ("requires", key), f"the resources together require more than {MAX_INT:,} {key}",
                    "the planner adds these up in 32-bit integers", code="range"))
    return problems


REFERENCE = re.compile(r"\$\{([^}]*)\}")


def _searched(text: str) -> int:
    """Where a search for REFERENCE in ``text`` may end: after its last '}'. Each '${' with no '}'
    after it starts no match, but was scanned to the end of the text: quadratic, a minute for a
    param of '${' 100,000 times (an HTTP sweep's). Before that end, every '${' tried matches."""
    return text.rfind("}") + 1


def replace_references(text: str, value_of: Callable[[re.Match[str]], str]) -> str:
    """``REFERENCE.sub(value_of, text)``, in time linear in the text's length."""
    end = _searched(text)
    return REFERENCE.sub(value_of, text[:end]) + text[end:]


#: What :func:`resolve_value` gives for a param that reads an output not known.
MISSING: Any = object()


def resolve_value(value: Any, value_of: Callable[[str, str], Any]) -> Any:
    """A param with each ``${R.outputs.X}`` replaced by ``value_of(R, X)`` (a param that is one
    reference whole takes the value as it is; one inside a text, as text); MISSING when
    ``value_of`` raises KeyError for one (not known yet)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        try:
            if whole:
                producer, _, output = whole.group(1).rpartition(".outputs.")
                return value_of(producer, output)
            if not references_in(value):
                return value

            def sub(m: Any) -> str:
                producer, _, output = m.group(1).rpartition(".outputs.")
                return str(value_of(producer, output))

            return replace_references(value, sub)
        except KeyError:
            return MISSING
    if isinstance(value, dict):
        out = {k: resolve_value(v, value_of) for k, v in value.items()}
        return MISSING if any(v is MISSING for v in out.values()) else out
    if isinstance(value, list):
        items = [resolve_value(v, value_of) for v in value]
        return MISSING if any(v is MISSING for v in items) else items
    return value


def references_in(value: Any, path: PathKey = ()) -> list[tuple[PathKey, str]]:
    """Every ``${...}`` in a param value (nested in mappings and lists), with its path."""
    if isinstance(value, str):
        return [(path, m.group(1)) for m in REFERENCE.finditer(value, 0, _searched(value))]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in references_in(v, path + (k,))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in references_in(v, path + (i,))]
    return []


def _references(res: Resource, resources: dict[str, Resource], kinds: dict[str, ResourceKind], src: Source,
                base: PathKey, problems: list[Diagnostic], check_references: bool) -> list[Reference]:
    """The outputs of other resources that res's params read, each checked:
    the producer exists, and its type declares the output or it was observed."""
    found = []
    for key, value in sorted(res.params.items()):
        for sub, inner in references_in(value, (key,)):
            where = base + sub
            producer, sep, output = inner.rpartition(".outputs.")
            if not sep or not producer or not output:
                problems.append(src.diagnostic(where, f"bad reference '${{{inner}}}'",
                                               "expected ${RESOURCE.outputs.NAME}"))
                continue
            other = resources.get(producer)
            if other is None:
                if check_references:
                    problems.append(src.diagnostic(where, f"reference to unknown resource '{producer}'",
                                                   _choices(producer, resources)))
                continue
            if producer == res.name:
                problems.append(src.diagnostic(where, f"'{res.name}' reads its own output '{output}'",
                                               "a resource's params cannot wait for its own operations"))
                continue
            kind = kinds.get(other.type)
            if kind is None:
                continue
            ops = [op.name for op in kind.operations if output in op.outputs]
            if not ops and output not in other.attributes:
                declared = sorted({o for op in kind.operations for o in op.outputs} | set(other.attributes))
                problems.append(src.diagnostic(
                    where, f"'{producer}' ({other.type}) has no output '{output}'",
                    _choices(output, declared) if declared else
                    f"declare it under the operation that returns it: types.{other.type}.operations.<op>.outputs"))
                continue
            found.append(Reference(param=key, producer=producer, output=output, operation=ops[0] if ops else None,
                                   file=src.file, at=src.deferred(where)))
    return found


class _Unknowable(Exception):
    """An output whose value cannot be known here: redacted (a fingerprint, a masked text), or not
    observed and not to come from an operation of this plan."""


def _rewired(res: Resource, resources: dict[str, Resource], recorded: bool) -> tuple[str, ...]:
    """The params of ``res`` (observed, at its goal) that read other resources' outputs and, resolved
    with those outputs as observed now, differ from what ``res`` was last sent, or read an output that
    comes only in this plan (the producer is new, or on its way to its goal): an update sends them,
    after the operation that returns the output (policies/base/ordering.lp). Without this, a param
    edited to read a new resource's output was never sent, and the plan said there was nothing to change.

    What was sent is known from a record of the journal (``recorded``), which holds every param a run
    sent: one it lacks was never sent (a change, whatever it reads). An inventory file's entry may leave
    out the params: one it lacks counts only when its value comes in this plan. A value redaction hid
    (an output known by its fingerprint, or masked in a text; a param recorded masked, where the
    journal's masking of a secret's value hit it) cannot be compared: taken as unchanged. An output
    neither observed nor to come cannot be sent: not a change either (the plan's reference check names
    it if something else updates the resource)."""
    def value_of(producer: str, output: str) -> Any:
        other = resources.get(producer)
        if other is None:
            raise _Unknowable   # (reported as an unknown resource)
        if output in other.attributes:
            value = other.attributes[output]
            if redacted(value):
                raise _Unknowable
            return value
        if not other.observed or (other.desired is not None and other.current != other.desired):
            raise KeyError(output)   # comes in this plan: MISSING
        raise _Unknowable

    out = []
    for param in sorted({ref.param for ref in res.refs}):
        if param not in res.attributes:
            if recorded:
                out.append(param)
                continue
        elif redacted(res.attributes[param], fingerprints=False):   # (a fingerprint is compared)
            continue
        try:
            value = resolve_value(res.params[param], value_of)
        except _Unknowable:
            continue
        if value is MISSING or (param in res.attributes and not same_value(res.attributes[param], value)):
            out.append(param)
    return tuple(out)


def _journal_source(name: str) -> Source:
    return Source(file=name, data={}, positions={}, key_positions={}, sha256="")


def _sent(record: Any) -> dict[str, tuple[str, ...]]:
    """A record's ``params`` and ``reads_outputs`` (those of its params alone) as a resource keeps them."""
    return {"sent": tuple(record.params),
            "sent_reading": tuple(k for k in record.reads_outputs if k in record.params)}


def observed_record(res: Resource, state: str, placement: str | None, attributes: dict[str, Any],
                    params: Iterable[str] = (), reading: Iterable[str] = ()) -> ObservedResource:
    """res as the inventory would list it, in ``state``: what a run records (``params``: which of the
    ``attributes`` are params; ``reading``: which of those read other resources' outputs)."""
    uses = sorted(t for k, t in res.relations if k == "uses")
    hosted = sorted(t for k, t in res.relations if k == "hosted_on")
    members = sorted(t for k, t in res.relations if k == "member_of")
    others: dict[str, list[str]] = {}
    for k, t in sorted(res.relations):
        if k not in ("uses", "hosted_on", "member_of"):
            others.setdefault(k, []).append(t)
    return ObservedResource(
        name=res.name, type=res.type, state=state, placement=placement, part_of=res.part_of,
        uses=uses, hosted_on=hosted[0] if hosted else None, member_of=members, relations=others,
        requires=dict(res.requires), labels=dict(res.labels), attributes=attributes, params=sorted(params),
        reads_outputs=sorted(reading))


def _relation_path(src: Source, path: PathKey, kind: str, target: str) -> PathKey:
    """Where a relation's target is written: uses[1], hosted_on, member_of[0], relations.peers[0]."""
    node = src.data
    for part in path:
        node = node[part] if isinstance(node, (dict, list)) else None
    if not isinstance(node, dict):
        return path
    if kind == "hosted_on" and node.get("hosted_on") == target:
        return path + ("hosted_on",)
    if kind in ("uses", "member_of") and target in (node.get(kind) or []):
        return path + (kind, node[kind].index(target))
    targets = (node.get("relations") or {}).get(kind) or []
    if target in targets:
        return path + ("relations", kind, targets.index(target))
    return path


def _relations(res: Any) -> set[tuple[str, str]]:
    rels = {("uses", t) for t in res.uses} if res.uses else set()
    if res.member_of:
        rels.update(("member_of", t) for t in res.member_of)
    if res.hosted_on:
        rels.add(("hosted_on", res.hosted_on))
    if res.relations:
        for kind, targets in res.relations.items():
            rels.update((kind, t) for t in targets)
    return rels


def _acyclic(graph: dict[str, list[str]]) -> bool:
    """Whether the graph has no cycle: one iterative depth-first pass, each node
    entered at most once. A target with no edges of its own (most of them: the
    networks a module uses, the service a VNF is part of) ends no cycle and is
    not entered; a root whose edges all end at such targets or at nodes cleared
    already is cleared without being entered."""
    done: set[str] = set()
    path: set[str] = set()   # the nodes on the stack
    for root, edges in graph.items():
        if root in done:
            continue
        for target in edges:
            if target in graph and target not in done:
                break
        else:   # every edge goes to a node with no edges or one cleared already: no cycle passes here
            done.add(root)
            continue
        path.add(root)
        stack = [(root, iter(edges))]
        while stack:
            node, targets = stack[-1]
            for target in targets:
                if target in path:
                    return False
                if target not in done and target in graph:
                    path.add(target)
                    stack.append((target, iter(graph[target])))
                    break
            else:
                stack.pop()
                path.discard(node)
                done.add(node)
    return True


class _Survey:
    """What the whole-model checks need, found in one pass over the resources:
    whether a resource is part of, or related to, one the model does not have
    (``dangling``), the total of each ``requires`` key, the resources both part
    and member of one whole, and each relation kind's edges between resources of
    the model (``graphs``, part_of included) for the cycle check; and the
    words the resources use (``words``: label keys, relationship kinds,
    requires keys, param names) for the policies' vocabulary check."""

    def __init__(self, resources: dict[str, Resource]) -> None:
        self.dangling = False
        self.totals: dict[str, int] = {}
        self.both: list[str] = []
        part_of: dict[str, list[str]] = {}
        self.graphs: dict[str, dict[str, list[str]]] = {"part_of": part_of}
        totals, graphs = self.totals, self.graphs
        labels: set[str] = set()
        kinds: set[str] = set()
        params: set[str] = set()
        for name, res in resources.items():
            whole = res.part_of
            if whole is not None:
                if whole in resources:
                    part_of[name] = [whole]
                else:
                    self.dangling = True
            if res.requires:
                for key, amount in res.requires.items():
                    totals[key] = totals.get(key, 0) + amount
            if res.relations:
                if whole is not None and ("member_of", whole) in res.relations:
                    self.both.append(name)
                for kind, target in res.relations:
                    kinds.add(kind)
                    if target in resources:
                        graphs.setdefault(kind, {}).setdefault(name, []).append(target)
                    else:
                        self.dangling = True
            if res.labels:
                labels.update(res.labels)
            if res.params:
                params.update(res.params)
        self.words = {"label key": labels, "relationship kind": kinds, "capacity kind": set(totals), "param": params}


#: The resources of a cycle a message names, at most: the first ones, and how many more.
CYCLE_SHOWN = 12


def _cycle_text(cycle: list[str]) -> str:
    """``a -> b -> c -> a``; a long cycle by its first CYCLE_SHOWN resources and how many more (one of
    2,000 resources was a message of 17 KB)."""
    if len(cycle) <= CYCLE_SHOWN:
        return " -> ".join([*cycle, cycle[0]])
    return f"{' -> '.join(cycle[:CYCLE_SHOWN])} -> ... ({len(cycle) - CYCLE_SHOWN:,} more) -> {cycle[0]}"


def _cycles(paths: dict[str, tuple[Source, PathKey]], graphs: dict[str, dict[str, list[str]]]) -> list[Diagnostic]:
    """A resource that is (transitively) part of itself, uses itself, ... is an error.

    Every elementary cycle is named (at most 20 per kind), each starting at its
    smallest name, in a stable order.
    """
    problems = []
    cyclic = [kind for kind, graph in sorted(graphs.items()) if graph and not _acyclic(graph)]
    if not cyclic:
        return problems
    for kind in cyclic:   # in a stable order, the nodes and edges sorted, for the first 20 cycles
        graph = {name: sorted(graphs[kind][name]) for name in sorted(graphs[kind])}
        import networkx as nx  # only to name a cycle: a tenth of a second at start-up

        found = []
        for cycle in nx.simple_cycles(nx.DiGraph([(a, b) for a, bs in graph.items() for b in bs])):
            start = cycle.index(min(cycle))
            found.append(cycle[start:] + cycle[:start])
            if len(found) >= 20:
                break
        for cycle in sorted(found, key=lambda c: (c[0], len(c), c)):
            src, path = paths[cycle[0]]
            problems.append(src.diagnostic(
                path, f"relationship cycle in '{kind}': {_cycle_text(cycle)}",
                "a resource cannot depend on itself", code="cycle"))
    return problems
