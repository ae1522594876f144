"""The policy test file format (``ordo test``), as pydantic v2 models.

A test file (``*_test.yaml`` or ``test_*.yaml``) names the project whose
catalog and policies it tests and lists cases. Each case may replace the
catalog, inventory or request (a path relative to the test file, or the model
written inline), tell what a run learnt (``failed``, ``refused``,
``planned``), change the policies (add, keep only, drop, re-enforce), and
states what it expects of the outcome::

    tests:
      - name: vFW goes to the cheapest region with room
        request: ../requests/instantiate.yaml
        expect:
          placements: { vfw: region-two }
          before: [[vfw-base/activate, vfw/config-deploy]]

Here each file is checked on its own; planner.testing collects, runs and
measures the coverage of the tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, NonNegativeInt

from domain.errors import Diagnostic
from domain.formats import NOT_BOOL, EnforcementSpec, Name, _Strict
from domain.yamlsrc import PathKey, Source

#: File names collected from folders (a file named on the command line is run whatever its name).
PATTERNS = ("*_test.yaml", "test_*.yaml", "*_test.yml", "test_*.yml")


def _path_or_mapping(value: Any) -> Any:
    if value is None or isinstance(value, (str, dict)):
        return value
    raise ValueError(f"expected a file path (relative to this file) or the model written inline as a mapping, "
                     f"got {type(value).__name__} {value!r}")


def _pair(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"expected a pair [A, B] of operations (A comes before B), got {value!r}")


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _policy_item(value: Any) -> Any:
    return {"policy": value} if isinstance(value, str) else value


#: A model file: its path relative to the test file, or the model inline.
ModelRef = Annotated[Any, BeforeValidator(_path_or_mapping)]


class PolicyExpect(_Strict):
    """A policy expected among the violations (or conflicts), optionally about some resources."""

    policy: Name
    resources: list[Name] = Field(default_factory=list,
                                  description="resources the policy must be violated for (at least these)")


PolicyItem = Annotated[PolicyExpect, BeforeValidator(_policy_item)]


#: A count a test expects (``true`` is no count: pydantic would take it as 1).
Count = Annotated[NonNegativeInt, NOT_BOOL]


class CountExpect(_Strict):
    operations: Count | None = None
    waves: Count | None = None
    create: Count | None = Field(None, description="resources to create")
    change: Count | None = Field(None, description="resources to change")
    delete: Count | None = Field(None, description="resources to delete")
    run: Count | None = Field(None, description="resources to run an operation on")


class Expect(_Strict):
    status: Literal["plan", "no_plan"] | None = Field(
        None, description="plan (a plan exists) or no_plan; implied by the other expectations")
    operations: list[str] | None = Field(
        None, description="operations in the plan: RESOURCE/OPERATION, or RESOURCE for any operation on it")
    absent: list[str] | None = Field(
        None, description="operations not in the plan: RESOURCE/OPERATION, or RESOURCE for none on it")
    before: list[Annotated[list[str], BeforeValidator(_pair)]] | None = Field(
        None, description="[A, B]: a chain of precedences leads from operation A to operation B")
    placements: dict[Name, Annotated[list[Name], BeforeValidator(_one_or_more), Field(min_length=1)]] | None = Field(
        None, description="resource -> the target the plan puts it on (or a list: one of them)")
    violations: list[PolicyItem] | None = Field(
        None, description="exactly the soft or advisory policies the plan violates ([] for none)")
    conflicts: list[PolicyItem] | None = Field(
        None, description="no plan, and exactly these policies are named by the explanation")
    count: CountExpect | None = None


class Learnt(_Strict):
    """What a run learnt before it re-plans, as the executor gives it to the planner."""

    failed: list[str] = Field(default_factory=list, description="RESOURCE/OPERATION that failed for good")
    refused: list[Name] = Field(default_factory=list, description="targets that refused an operation")
    claimed_elsewhere: list[Name] = Field(
        default_factory=list, description="targets another run on the journal adds load to now")
    planned: dict[Name, Name] = Field(default_factory=dict, description="resource -> target the last plan chose")


class CasePolicies(_Strict):
    library: list[Name] = Field(default_factory=list, description="stock policies to add, by name")
    files: list[str] = Field(default_factory=list, description="policy files to add, relative to the test file")
    only: list[Name] | None = Field(None, description="keep only these of the project's policies, by name")
    without: list[Name] = Field(default_factory=list, description="drop these of the project's policies")
    enforcement: dict[Name, EnforcementSpec] = Field(
        default_factory=dict, description="policy name -> enforcement level for this test")


class CaseSpec(_Strict):
    name: Annotated[str, Field(min_length=1)]
    skip: str | None = Field(None, description="skip this test, for this reason")
    catalog: ModelRef = None
    inventory: ModelRef = None
    request: ModelRef = None
    learnt: Learnt | None = None
    policies: CasePolicies | None = None
    expect: Expect


class TestFileSpec(_Strict):
    project: str | None = Field(None, description="the project folder, relative to this file "
                                                  "(default: the nearest folder above with ordo.yaml)")
    catalog: ModelRef = None
    inventory: ModelRef = None
    request: ModelRef = None
    tests: list[Any] = Field(min_length=1, description="the test cases (each checked on its own)")


#: The expectations that only a plan can meet.
PLAN_KEYS = ("operations", "absent", "before", "placements", "violations", "count")


def expect_problems(src: Source, where: PathKey, expect: Expect) -> list[Diagnostic]:
    """Problems with what a case expects, taken together (a plan and no plan at once ...)."""
    given = [k for k in (*PLAN_KEYS, "conflicts") if getattr(expect, k) is not None]
    if expect.status is None and not given:
        return [src.diagnostic(where, "the test expects nothing",
                               "give status, operations, absent, before, placements, violations, conflicts "
                               "or count")]
    plan_keys = [k for k in given if k != "conflicts"]
    if expect.status == "plan" and "conflicts" in given:
        return [src.diagnostic(where + ("conflicts",), "'conflicts' expects no plan, but status is plan")]
    if plan_keys and (expect.status == "no_plan" or "conflicts" in given):
        other = "status is no_plan" if expect.status == "no_plan" else "'conflicts' expects none"
        return [src.diagnostic(where + (plan_keys[0],), f"'{plan_keys[0]}' expects a plan, but {other}",
                               "a test has either a plan or no plan: make these two tests")]
    return []
