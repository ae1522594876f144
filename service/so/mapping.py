"""The project's SO mapping file: how SO's models and instances become ordo resources.

``so-mapping.yaml`` next to ``ordo.yaml`` (docs/service-so.md). It is a
project file: trusted, but checked, every problem with file:line. What it
knows of the vFW (or of any service) lives there, not in code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator

from domain.errors import Diagnostic, DiagnosticsError
from domain.formats import Amount, Name, Param, Scalar, _Strict, parse
from domain.project import display_path
from domain.yamlsrc import Source, load_yaml

MAPPING_FILE = "so-mapping.yaml"

#: SO's lists a model's instances come from, and the ordo type each becomes unless the mapping says.
KINDS = {"vnf": "vnf", "vfModule": "vf-module", "network": "network", "pnf": "pnf"}

Alias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", max_length=100)]
#: ``@alias`` in a string of the mapping: the name of the one instance of that model in the request.
#: ``@service`` is the service instance, ``@vnf`` the VNF a VF module belongs to; ``@@`` is a literal @.
REFERENCE = re.compile(r"@@|@([A-Za-z][A-Za-z0-9_-]*)")
BUILT_IN = ("service", "vnf")
#: A dotted path into the SO request, with list indexes: ``platform.platformName``, ``userParams[0].x``.
_STEP = r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*"
SoPath = Annotated[str, StringConstraints(pattern=rf"^{_STEP}(\.{_STEP})*$", max_length=300)]
#: Where an instance param goes: params.X, requires.X or labels.X (X an ordo name).
Target = Annotated[str, StringConstraints(pattern=r"^(params|requires|labels)\.[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class FromRequest(_Strict):
    """A value read from the SO request: relative to the instance's own object (the VNF's
    entry, the VF module's ...; requestDetails for the service), or from
    ``requestDetails.`` on."""

    from_: SoPath = Field(alias="from")
    default: Param | None = Field(None, description="when the request does not have it (else it is required)")


def _param_spec(key: str, value: Any) -> Any:
    """A param's value in the mapping: {from: PATH[, default: V]} reads the request; anything else is a constant."""
    if not (isinstance(value, dict) and "from" in value):
        return value
    try:
        return FromRequest.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        what = (f"{first['input']!r} is not a path such as subscriberInfo.globalSubscriberId"
                if first["type"] == "string_pattern_mismatch" else first["msg"][:1].lower() + first["msg"][1:])
        raise ValueError(f"params.{key}: {{from: ...}} {where}: {what} "
                         "(expected from: PATH and optionally default: VALUE)") from None


class _Shape(_Strict):
    """What every mapped resource may say."""

    type: Name | None = Field(None, description="ordo resource type (default: service, vnf, vf-module, network, pnf)")
    params: dict[Name, Param] = Field(default_factory=dict,
                                      description="constants (strings may name instances: @alias) or {from: PATH}")
    instance_params: list[Name] | dict[Annotated[str, StringConstraints(max_length=200)], Target] = Field(
        default_factory=list,
        description="SO instanceParams taken: a list of names (each becomes a param of that name), or "
                    "SO name -> params.X | requires.X | labels.X; any other instance param is refused")
    requires: dict[Name, Amount] = Field(default_factory=dict)
    labels: dict[Name, Scalar] = Field(default_factory=dict)
    uses: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, description="resources it uses: names of existing ones, or @alias")

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {key: _param_spec(key, v) for key, v in value.items()}


class VolumeGroupSpec(_Shape):
    """The volume group a VF module names (volumeGroupInstanceName): part of the VNF, used by the module."""


class ModelSpec(_Shape):
    """One SO model (by modelCustomizationName, else modelName)."""

    kind: Literal["vnf", "vfModule", "network", "pnf"]
    alias: Alias | None = Field(None, description="name to refer to its (one) instance in a request: @alias")
    placement: bool | None = Field(None, description="a cloudConfiguration pins it (default: true for vnf and pnf)")
    volume_group: VolumeGroupSpec = Field(default_factory=VolumeGroupSpec,
                                          description="vfModule only: the volume group it names")


class ServiceMapping(_Shape):
    models: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, description="service modelName or modelVersionId accepted (empty: any)")
    absent_state: Name = Field("absent", description="the state a macro delete asks for (the service "
                                                     "lifecycle's first state)")


class CloudRegions(_Strict):
    pin: Literal["resource", "request", "never"] = Field(
        "resource", description="resource: a cloudConfiguration on the instance itself pins it; request: the "
                                "request's applies to every placed instance without its own; never: ordo places")
    targets: dict[Annotated[str, StringConstraints(max_length=200)], Name] = Field(
        default_factory=dict, description="lcpCloudRegionId -> ordo target (empty: the id is the target's name)")


class MappingFile(_Strict):
    service: ServiceMapping = Field(default_factory=ServiceMapping)
    cloud_regions: CloudRegions = Field(default_factory=CloudRegions)
    models: dict[Annotated[str, StringConstraints(min_length=1, max_length=300)], ModelSpec] = Field(
        default_factory=dict)


class Mapping:
    """A loaded mapping file: the parsed content, its source (for file:line), model lookups."""

    def __init__(self, spec: MappingFile, source: Source) -> None:
        self.spec = spec
        self.source = source
        self.aliases = {m.alias: key for key, m in spec.models.items() if m.alias}

    def where(self, *path: str | int) -> str:
        """``file:line`` of a value in the mapping file, for messages about the request."""
        line, _ = self.source.where(path)
        return f"{self.source.file}:{line}"


def find_mapping(root: Path | str) -> Path | None:
    """The project's mapping file, found by convention next to ordo.yaml."""
    path = Path(root) / MAPPING_FILE
    return path if path.is_file() else None


def load_mapping(path: Path, root: Path | None = None) -> Mapping:
    """Load and check a mapping file. DiagnosticsError with every problem, at file:line."""
    src = load_yaml(path, display_path(path, root) if root else str(path))
    spec = parse(MappingFile, src)
    problems = _check(spec, src)
    if problems:
        raise DiagnosticsError(problems)
    return Mapping(spec, src)


def _check(spec: MappingFile, src: Source) -> list[Diagnostic]:
    """What the schema cannot say: aliases unique and known, kind-specific fields."""
    problems: list[Diagnostic] = []
    seen: dict[str, str] = {}
    for key, model in spec.models.items():
        if model.alias in BUILT_IN:
            problems.append(src.diagnostic(("models", key, "alias"), f"alias '{model.alias}' is reserved",
                                           "@service and @vnf always mean the service and the VF module's VNF"))
        elif model.alias and model.alias in seen:
            problems.append(src.diagnostic(("models", key, "alias"), f"alias '{model.alias}' is already "
                                           f"the alias of model '{seen[model.alias]}'"))
        if model.alias:
            seen.setdefault(model.alias, key)
        if model.kind != "vfModule" and "volume_group" in model.model_fields_set:
            problems.append(src.diagnostic(("models", key, "volume_group"),
                                           "only a vfModule model names a volume group"))
    known = set(seen) | set(BUILT_IN)
    shapes: list[tuple[tuple, _Shape]] = [(("service",), spec.service)]
    for key, model in spec.models.items():
        shapes += [(("models", key), model), (("models", key, "volume_group"), model.volume_group)]
    for where, shape in shapes:
        for path, text in _strings(shape):
            for match in REFERENCE.finditer(text):
                name = match.group(1)
                if name is not None and name not in known:
                    problems.append(src.diagnostic(where + path, f"unknown alias '@{name}'",
                                                   f"aliases: {', '.join('@' + a for a in sorted(known))}"
                                                   " (write @@ for a literal @)"))
    return problems


def _strings(shape: _Shape) -> list[tuple[tuple, str]]:
    """Every string of a shape that may hold @alias references, with its path."""
    out: list[tuple[tuple, str]] = [(("uses", i), u) for i, u in enumerate(shape.uses)]
    for key, value in shape.params.items():
        if not isinstance(value, FromRequest):
            out += [(("params", key) + sub, text) for sub, text in strings_in(value)]
    return out


def strings_in(value: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Every string inside a value (nested in mappings and lists), with its path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in strings_in(v, path + (k,))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in strings_in(v, path + (i,))]
    return []
