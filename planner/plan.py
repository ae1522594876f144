"""The plan: an immutable, versioned value.

A plan records what it was made from (a digest of every input), the
operations with the reason each is there, the precedence edges with the rule
that made each, placements, the objective's cost and a schedule into waves.
Fields such as ``reason`` are for people; execution uses operations, edges and
inputs only. Serialised with sorted keys and sorted lists: the same inputs
give the same bytes.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict

FORMAT_VERSION = "1.1"

Status = Literal["optimal", "satisfiable", "no_plan", "timeout"]
Action = Literal["create", "delete", "update", "change", "run"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputFile(_Frozen):
    path: str
    sha256: str


class PlannedOperation(_Frozen):
    id: str
    resource: str
    type: str
    operation: str
    from_state: str
    to_state: str
    controller: str
    duration: float
    wave: int
    reason: str


class Edge(_Frozen):
    before: str
    after: str
    rules: tuple[str, ...]


class ResourceChange(_Frozen):
    resource: str
    type: str
    actions: tuple[Action, ...]
    before: str
    after: str
    placement: str | None = None
    operations: tuple[str, ...]
    reason: str


class Group(_Frozen):
    """A concurrency group named in policies: at most ``limit`` of its operations at once."""

    name: str
    limit: int
    operations: tuple[str, ...]


class Violation(_Frozen):
    """A soft or advisory policy's constraint that the plan does not satisfy."""

    policy: str
    enforcement: str
    file: str
    line: int
    description: str
    rule: str
    bindings: dict[str, str]
    resources: tuple[str, ...]


class CostLevel(_Frozen):
    priority: int
    cost: int


class Plan(_Frozen):
    format_version: str = FORMAT_VERSION
    status: Status
    request: str
    digest: str
    inputs: tuple[InputFile, ...]
    resource_changes: tuple[ResourceChange, ...]
    operations: tuple[PlannedOperation, ...]
    edges: tuple[Edge, ...]
    waves: tuple[tuple[str, ...], ...]
    placements: dict[str, str]
    cost: tuple[CostLevel, ...]
    makespan: float
    critical_path: float
    concurrency: int
    groups: tuple[Group, ...] = ()
    violations: tuple[Violation, ...] = ()
    ground_atoms: int
    ground_rules: int

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[str, int]:
        """Resources to create, change (update in place or another state), delete,
        and run an operation on without changing them (Terraform's summary, plus runs)."""
        counts = {"create": 0, "change": 0, "delete": 0, "run": 0}
        for change in self.resource_changes:
            action = change.actions[0]
            counts[action if action in counts else "change"] += 1
        return counts

    @cached_property
    def _by_id(self) -> dict[str, PlannedOperation]:
        return {op.id: op for op in self.operations}

    def operation(self, op_id: str) -> PlannedOperation:
        return self._by_id[op_id]

    def to_json(self) -> str:
        # Compact: json's C encoder only runs without indent (ten times faster
        # on large plans). Pipe through `python -m json.tool` to read it.
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.model_validate_json(text)
