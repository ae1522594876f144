"""What-if scenarios: the project as it is, changed in one or more ways, to
plan against a baseline (``planner/diff.py`` tells the difference).

A ``Scenario`` changes a loaded ``Project`` in place (``apply``):

* a target down (``--target-down NAME``): the target takes nothing new. It
  gets the same fact a run records when a target refuses an operation
  (``refused/1``), and the stock policy ``avoid-refused-targets`` is enabled
  for the scenario if the project does not enable it: nothing is newly placed
  there, and a resource placed there that is not yet at its goal is torn down
  and brought up elsewhere (what ordo would plan after the target refused in
  a run). Resources the inventory records there at their goal stay as
  recorded: ordo does not assume they are lost. The target's capacity is
  left alone (a capacity of 0 would make every resource already there a
  capacity violation, and the explanation would blame the wrong policy).
* another capacity (``--capacity TARGET:KEY=N``): the target's capacity for
  KEY is N (a key no target had before is added, if some resource requires
  it).
* a policy switched off (``--without-policy NAME``): a stock or project
  policy, by its metadata name (or a stock policy by its file name); its
  enforcement override in ``ordo.yaml``, if any, goes with it. The base
  library cannot be switched off.
* a policy added (``--with-policy FILE``), another request or inventory
  (``--request``, ``--inventory``): given to ``load_project`` by the caller
  (``files()``), as ``ordo plan`` does.

The scenario's own changes are part of the plan's digest (input
``<whatif>``), so a scenario plan never passes for a plan of the project.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import policies
from domain.errors import OrdoError
from domain.formats import quoted, solver_value
from domain.project import Project
from planner.metadata import read_metadata
from planner.plan import Plan
from planner.program import policy_name

#: The stock policy that gives ``refused/1`` its meaning (nothing new goes there).
DOWN_POLICY = "avoid-refused-targets"

_CAPACITY = re.compile(r"^(?P<where>.+):(?P<key>[^:=]+)=(?P<amount>[0-9]+)$")


class ScenarioError(OrdoError):
    """A scenario option that names nothing, or is malformed: ``option`` (target-down, capacity,
    without-policy), the value ``given`` when the text shows it (``said`` names it otherwise), and what
    is wrong (``said``); its text names the command line's option, which a caller over HTTP renders in
    its own words, at the entry of its list that is wrong: the one that is ``entry`` (default
    ``given``), or at ``index``."""

    def __init__(self, option: str, given: str | None, said: str, *, entry: str | None = None,
                 index: int | None = None) -> None:
        self.option, self.given, self.said, self.index = option, given, said, index
        self.entry = entry if entry is not None else given
        super().__init__(f"--{option} {quoted(given)}: {said}" if given is not None else f"--{option}: {said}")


@dataclass(frozen=True)
class Scenario:
    targets_down: tuple[str, ...] = ()
    capacity: tuple[tuple[str, str, int], ...] = ()  # (target, key, amount)
    without_policies: tuple[str, ...] = ()
    with_policies: tuple[Path, ...] = ()
    request: Path | None = None
    inventory: Path | None = None

    @classmethod
    def from_options(cls, targets_down: tuple[str, ...] = (), capacity: tuple[str, ...] = (),
                     without_policies: tuple[str, ...] = (), with_policies: tuple[Path, ...] = (),
                     request: Path | None = None, inventory: Path | None = None) -> Scenario:
        parsed = []
        for index, text in enumerate(capacity):   # (each error at its entry: the same text twice is the second)
            match = _CAPACITY.match(text.strip())
            if match is None:
                raise ScenarioError("capacity", text, "expected TARGET:KEY=N with N a whole number of 0 or more, "
                                                      "e.g. region-one:vcpu=20", index=index)
            if any((where, key) == (match["where"], match["key"]) for where, key, _ in parsed):
                raise ScenarioError("capacity", text, f"{match['where']}:{match['key']} is given twice "
                                                      "(which one would the scenario mean?)", index=index)
            try:
                parsed.append((match["where"], match["key"], solver_value(int(match["amount"]))))
            except ValueError as exc:
                raise ScenarioError("capacity", text, str(exc), index=index) from None
        return cls(targets_down=tuple(dict.fromkeys(targets_down)), capacity=tuple(parsed),
                   without_policies=tuple(dict.fromkeys(without_policies)), with_policies=tuple(with_policies),
                   request=request, inventory=inventory)

    @property
    def empty(self) -> bool:
        return not (self.targets_down or self.capacity or self.without_policies or self.with_policies
                    or self.request or self.inventory)

    def describe(self) -> list[str]:
        """The changes, one short phrase each, in the order of the options."""
        out = [f"{t} down" for t in self.targets_down]
        out += [f"{t} capacity {k}={n}" for t, k, n in self.capacity]
        out += [f"without policy {name}" for name in self.without_policies]
        out += [f"with policy {path}" for path in self.with_policies]
        if self.request is not None:
            out.append(f"request {self.request}")
        if self.inventory is not None:
            out.append(f"inventory {self.inventory}")
        return out

    def apply(self, project: Project) -> Project:
        """Change a project loaded with this scenario's request, inventory
        and extra policies (``load_project``); raises ScenarioError naming
        what does not exist, with a did-you-mean."""
        model = project.model
        if DOWN_POLICY in self.without_policies and self.targets_down:
            raise ScenarioError("target-down", None, f"works through the stock policy '{DOWN_POLICY}': it cannot "
                                                     "go with that policy switched off")
        for target in self.targets_down:
            _known_target(target, project, "target-down")
        changed_capacity = []
        for index, (where, key, amount) in enumerate(self.capacity):
            target, key = _capacity_target(where, key, project, index)
            changed_capacity.append((target, key, amount))
        if self.without_policies:
            _drop_policies(project, self.without_policies)
        for target in self.targets_down:
            model.refused.add(target)
        if self.targets_down and DOWN_POLICY not in project.library:
            project.library.append(DOWN_POLICY)
        for target, key, amount in changed_capacity:
            spec = model.targets[target]
            model.targets[target] = spec.model_copy(update={"capacity": {**spec.capacity, key: amount}})
        text = "\n".join(self.describe())
        project.inputs = sorted([*project.inputs, ("<whatif>", hashlib.sha256(text.encode()).hexdigest())])
        return project


def _choices(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"{what}: {', '.join(sorted(known))}" if known else f"there are no {what}"


def _known_target(name: str, project: Project, option: str, index: int | None = None) -> str:
    """``index``: where in the option's list the name was given, when it is not the entry itself."""
    targets = sorted(project.model.targets)
    if name not in project.model.targets:
        raise ScenarioError(option, None, f"no target {quoted(name)} in the inventory "
                                          f"({_choices(name, targets, 'targets')})",
                            entry=name if index is None else None, index=index)
    return name


def _capacity_target(where: str, key: str, project: Project, index: int) -> tuple[str, str]:
    """The target and key of TARGET:KEY (names may hold ':'; the target is
    the longest known prefix), the ``index``-th of the capacities given."""
    targets = project.model.targets
    if where not in targets:
        # region:a:vcpu parses as where='region:a', key='vcpu'; try shorter targets
        parts = f"{where}:{key}".split(":")
        for cut in range(len(parts) - 1, 0, -1):
            if ":".join(parts[:cut]) in targets:
                where, key = ":".join(parts[:cut]), ":".join(parts[cut:])
                break
    _known_target(where, project, "capacity", index)
    known = sorted({k for spec in targets.values() for k in spec.capacity}
                   | {k for res in project.model.resources.values() for k in res.requires})
    if key not in known:
        raise ScenarioError("capacity", None, f"no target has or resource requires {quoted(key)} "
                                              f"({_choices(key, known, 'capacity keys')})", index=index)
    return where, key


def _stock_name(path: Path) -> str:
    meta, _ = read_metadata(path.read_text(encoding="utf-8"), path.name, policy_name(path.name))
    return meta.name


def sweep(project: Project) -> list[Scenario]:
    """One scenario per target down and one per policy switched off (the stock policies the project
    enables and its own files), in name order: what a what-if sweep plans against the baseline."""
    library, files = _loaded_policies(project)
    names = sorted(set(library) | set(files.values()))
    return ([Scenario(targets_down=(t,)) for t in sorted(project.model.targets)]
            + [Scenario(without_policies=(name,)) for name in names])


def _loaded_policies(project: Project) -> tuple[dict[str, set[str]], dict[Path, str]]:
    """The project's stock policies (entry -> the names it answers to) and its own files (-> metadata name)."""
    stock = policies.library()
    library = {entry: {entry, _stock_name(stock[entry])} if entry in stock else {entry}
               for entry in project.library}
    files = {}
    for path in project.policy_files:
        if path in project.extra_policy_files:
            continue
        try:
            meta, _ = read_metadata(path.read_text(encoding="utf-8"), project.display(path),
                                    policy_name(project.display(path)))
        except (OSError, UnicodeDecodeError):
            continue
        files[path] = meta.name
    return library, files


def _drop_policies(project: Project, names: tuple[str, ...]) -> None:
    base = {_stock_name(p) for p in policies.base_files()} | {p.stem for p in policies.base_files()}
    library, files = _loaded_policies(project)
    for name in names:
        in_library = [entry for entry, known in library.items() if name in known]
        in_files = [path for path, meta_name in files.items() if meta_name == name]
        if not in_library and not in_files:
            if name in base:
                raise ScenarioError("without-policy", None, f"{quoted(name)} is part of the base library, which "
                                                            "is always loaded", entry=name)
            loaded = sorted({n for known in library.values() for n in known} | set(files.values()))
            raise ScenarioError("without-policy", None, f"the project loads no policy named {quoted(name)} "
                                                        f"({_choices(name, loaded, 'loaded policies')})", entry=name)
        project.library = [entry for entry in project.library if entry not in in_library]
        project.policy_files = [p for p in project.policy_files if p not in in_files]
        for dropped in {name, *in_library}:
            project.enforcement.pop(dropped, None)


def read_plan(path: Path, limit: int | None = None) -> Plan:
    """A plan saved with ``ordo plan --out``, for comparison (not checked against the inputs,
    only that it is well formed: ``Plan.read``, up to ``limit`` bytes)."""
    return Plan.read(path, limit)
