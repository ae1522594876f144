"""SO macro requests -> ordo requests, as the project's mapping file says.

The result is an ordo request (the nested ``services:`` format) that goes
through the normal loader (``domain.project.load_project``), so every check a
request file gets applies; a problem the loader finds is said again at the SO
field it came from.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from domain.errors import Diagnostic, DiagnosticsError, clipped
from domain.formats import Name, quoted
from domain.project import Project, load_project
from domain.secrets import scrub, scrub_sentence
from domain.yamlsrc import PathKey, Source, format_path, path_part
from service.so.mapping import KINDS, REFERENCE, FromRequest, Mapping, ModelSpec, strings_in
from service.so.models import SO_REQUEST, CloudConfiguration, ModelInfo, ServiceInstancesRequest, validate

CREATE, DELETE = "createInstance", "deleteInstance"
_DETAILS: PathKey = ("requestDetails",)
_NAME = TypeAdapter(Name)


@dataclass
class Translation:
    """An SO request as an ordo request, with where each part came from."""

    request: dict[str, Any]
    service: str                 # the service instance's ordo name: SO's instanceId
    action: str                  # createInstance | deleteInstance
    resources: list[str]         # every resource the request names, the service first
    origins: dict[str, str] = field(default_factory=dict)  # ordo request path -> SO field path
    name: str = SO_REQUEST       # how messages name the request

    def yaml_text(self) -> str:
        """The request as a request file (for the server to keep: a resumed run loads it again)."""
        return f"# {self.name}: {self.action} {self.service}, translated by the project's SO mapping\n" + \
            yaml.safe_dump(self.request, sort_keys=False, allow_unicode=True)

    def source(self) -> Source:
        """The request as a loaded document, for ``load_project(request=...)``."""
        text = json.dumps(self.request, sort_keys=True)
        return Source(file=self.name, data=self.request, positions={},
                      sha256=hashlib.sha256(text.encode()).hexdigest())

    def load(self, root: Path | str, **options: Any) -> Project:
        """The project with this request, through the normal loader (every check applies);
        a problem in the request is named at its SO field."""
        try:
            return load_project(root, request=self.source(), **options)
        except DiagnosticsError as exc:
            raise self.relabel(exc) from None

    def relabel(self, exc: DiagnosticsError) -> DiagnosticsError:
        """The loader's problems with this request, at the SO fields they came from."""
        origins = self._as_written()   # (once: a body may have thousands of problems)
        return DiagnosticsError([self._relabel(d, origins) for d in exc.diagnostics])

    def _relabel(self, diag: Diagnostic, origins: dict[str, str]) -> Diagnostic:
        if diag.file != self.name:
            return diag
        best = max((p for p in origins if _within(diag.path, p)), key=len, default=None)
        if best is None:
            return diag
        detail = "; ".join(x for x in (diag.detail, f"ordo request: {diag.path}") if x)
        return Diagnostic(file=diag.file, summary=diag.summary, path=scrub(origins[best]), detail=detail,
                          severity=diag.severity, code=diag.code)

    def _as_written(self) -> dict[str, str]:
        """``origins`` with their ordo paths as a problem's path is written: a name of more than
        PATH_PART_MAX characters cut short there (an instance name of SO's 200, say)."""
        long = sorted({n for n in (self.service, *self.resources) if path_part(n) != n}, key=len, reverse=True)
        if not long:
            return self.origins
        out = {}
        for path, origin in self.origins.items():
            for name in long:
                path = path.replace(name, path_part(name))
            out[path] = origin
        return out


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def translate_create(body: Any, mapping: Mapping, *, name: str = SO_REQUEST) -> Translation:
    """POST .../serviceInstantiation/v7/serviceInstances (a macro create) as an ordo request.
    DiagnosticsError naming each bad SO field (and the mapping file's line where it matters)."""
    sir: ServiceInstancesRequest = validate(ServiceInstancesRequest, body, name)
    return _Builder(mapping, body, name).create(sir)


def translate_delete(instance_id: str, body: Any, mapping: Mapping, *, name: str = SO_REQUEST) -> Translation:
    """DELETE .../serviceInstances/{instance_id} (a macro delete): the service wanted absent,
    its parts with it. ``body`` may be None (SO's clients send requestDetails; ordo reads
    only its modelInfo, checked against the mapping)."""
    b = _Builder(mapping, body or {}, name)
    if body is not None:
        sir = validate(ServiceInstancesRequest, body, name)
        b.check_service_model(sir.requestDetails.modelInfo, macro=sir.requestDetails.requestParameters)
    if not _valid_name(instance_id):
        b.problem(("serviceInstanceId",), f"invalid service instance id {instance_id!r}",
                  "expected the instanceId a create answered (letters, digits and _ . : -)")
    b.raise_problems()
    svc = mapping.spec.service
    request = {"name": _request_name(DELETE, instance_id),
               "services": {instance_id: {"type": svc.type or "service", "state": svc.absent_state}}}
    return Translation(request=request, service=instance_id, action=DELETE, resources=[instance_id],
                       origins={f"services.{instance_id}": "serviceInstanceId"}, name=name)


def _request_name(action: str, instance: str) -> str:
    """The ordo request's name (200 characters at most, as a request file's): an instance id of the
    200 characters SO allows, and the action before it, made one too long to be loaded."""
    return clipped(f"SO {action} {instance}", 200)


def _valid_name(text: str) -> bool:
    try:
        _NAME.validate_python(text)
    except ValueError:
        return False
    return True


@dataclass
class _Instance:
    """One SO instance to become a resource."""

    kind: str                  # vnf | vfModule | network | pnf
    key: str                   # its model's key in the mapping
    spec: ModelSpec
    path: PathKey              # in the SO request
    raw: dict[str, Any]        # its JSON object as sent (fields ordo's models drop included)
    model: Any                 # its pydantic model (Vnf, VfModule, Network, Pnf)
    name: str
    vnf: str | None = None     # a VF module's VNF


class _Builder:
    def __init__(self, mapping: Mapping, body: Any, name: str) -> None:
        self.mapping = mapping
        self.body = body if isinstance(body, dict) else {}
        self.name = name
        self.problems: list[Diagnostic] = []
        self.origins: dict[str, str] = {}
        self.service = ""
        self.by_alias: dict[str, list[_Instance]] = {}

    # --- problems ----------------------------------------------------------------

    def problem(self, path: PathKey, summary: str, detail: str = "") -> None:
        # (masked as a file's problems are: a key 'dsn?token=...' was quoted whole in the path and the
        # message, a review's)
        self.problems.append(Diagnostic(file=self.name, path=scrub(format_path(path)), summary=scrub_sentence(summary),
                                        detail=detail, code="so"))

    def raise_problems(self) -> None:
        if self.problems:
            raise DiagnosticsError(self.problems)

    # --- the request ---------------------------------------------------------------

    def check_service_model(self, info: ModelInfo | None, macro: Any) -> None:
        where = _DETAILS + ("modelInfo",)
        if info is None:
            self.problem(where, "missing required field 'modelInfo'")
            return
        if info.modelType != "service":
            self.problem(where + ("modelType",), f"expected modelType 'service', got {info.modelType!r}",
                         "ordo takes macro requests on a service instance")
        accepted = self.mapping.spec.service.models
        if accepted and info.modelName not in accepted and info.modelVersionId not in accepted:
            self.problem(where + ("modelName",),
                         f"service model {info.modelName!r} is not one this project orchestrates",
                         f"{self.mapping.where('service', 'models')} accepts: {', '.join(accepted)}")
        if macro is not None and macro.aLaCarte:
            self.problem(_DETAILS + ("requestParameters", "aLaCarte"), "a-la-carte requests are not supported",
                         "ordo plans the whole service: send a macro request (aLaCarte: false)")

    def create(self, sir: ServiceInstancesRequest) -> Translation:
        details = sir.requestDetails
        params = details.requestParameters
        self.check_service_model(details.modelInfo, params)
        info = details.requestInfo
        if info is None or not info.instanceName:
            self.problem(_DETAILS + ("requestInfo", "instanceName"), "missing required field 'instanceName'",
                         "the service instance's name: ordo names the service by it, and answers it as instanceId")
        self.raise_problems()
        self.service = info.instanceName
        user = [(i, u.service) for i, u in enumerate(params.userParams if params else []) if u.service is not None]
        if len(user) > 1:
            self.problem(_DETAILS + ("requestParameters", "userParams", user[1][0], "service"),
                         "more than one userParams entry holds a service", "a macro request creates one service")
        svc_path: PathKey = _DETAILS + ("requestParameters", "userParams", user[0][0], "service") if user else ()
        service = user[0][1] if user else None
        instances = self._instances(service, svc_path) if service else []
        self.raise_problems()
        for inst in instances:
            if inst.spec.alias:
                self.by_alias.setdefault(inst.spec.alias, []).append(inst)

        top = f"services.{self.service}"
        spec = self.mapping.spec.service
        self.origins[top] = format_path(_DETAILS + ("requestInfo", "instanceName"))
        resource = self._shape(spec, ("service",), self.body.get("requestDetails") or {}, _DETAILS,
                               service.instanceParams if service else [], svc_path, top, None, spec.type or "service")
        resource.pop("name")
        names = [self.service]
        by_vnf: dict[str, dict[str, Any]] = {}
        vnfs: list[dict[str, Any]] = []   # every VNF's entry: two of one name are one too many, said later
        for inst in instances:
            lists = {"vnf": "vnfs", "network": "networks", "pnf": "pnfs"}
            if inst.kind == "vfModule":
                owner = by_vnf[inst.vnf]
                here = f"{owner['__path']}.vf_modules[{len(owner.setdefault('vf_modules', []))}]"
                owner["vf_modules"].append(self._resource(inst, here, details.cloudConfiguration))
                self._volume_group(inst, owner, names)
            else:
                entries = resource.setdefault(lists[inst.kind], [])
                here = f"{top}.{lists[inst.kind]}[{len(entries)}]"
                entry = self._resource(inst, here, details.cloudConfiguration)
                entries.append(entry)
                if inst.kind == "vnf":
                    by_vnf[inst.name] = entry
                    vnfs.append(entry)
                    entry["__path"] = here
            names.append(inst.name)
        for entry in vnfs:
            entry.pop("__path")
        self.raise_problems()
        request = {"name": _request_name(CREATE, self.service), "services": {self.service: resource}}
        return Translation(request=request, service=self.service, action=CREATE, resources=names,
                           origins=self.origins, name=self.name)

    def _instances(self, service: Any, base: PathKey) -> list[_Instance]:
        """Every VNF, VF module, network and PNF of the request, with its model's mapping."""
        out: list[_Instance] = []
        for list_name, kind in (("networks", "network"), ("vnfs", "vnf"), ("pnfs", "pnf")):
            for i, item in enumerate(getattr(service.resources, list_name)):
                path = base + ("resources", list_name, i)
                inst = self._instance(kind, item, path)
                if inst is None:
                    continue
                out.append(inst)
                for j, module in enumerate(getattr(item, "vfModules", [])):
                    sub = self._instance("vfModule", module, path + ("vfModules", j))
                    if sub is not None:
                        sub.vnf = inst.name
                        out.append(sub)
        return out

    def _instance(self, kind: str, item: Any, path: PathKey) -> _Instance | None:
        models = self.mapping.spec.models
        info: ModelInfo = item.modelInfo
        key = next((k for k in (info.modelCustomizationName, info.modelInstanceName, info.modelName)
                    if k and k in models), None)
        if key is None:
            close = difflib.get_close_matches(info.key or "", list(models), n=1)
            hint = f"did you mean '{close[0]}'?" if close else \
                f"{self.mapping.source.file} maps: {', '.join(sorted(models)) or 'no models'}"
            self.problem(path + ("modelInfo", "modelCustomizationName"),
                         f"no mapping for model {info.key!r}", hint)
            return None
        spec = models[key]
        if spec.kind != kind:
            self.problem(path + ("modelInfo",), f"model {key!r} is mapped as a {spec.kind}, not a {kind}",
                         self.mapping.where("models", key, "kind"))
            return None
        if not item.instanceName:
            self.problem(path + ("instanceName",), "missing required field 'instanceName'",
                         "ordo names each resource by its instance name")
            return None
        return _Instance(kind=kind, key=key, spec=spec, path=path, raw=_at(self.body, path), model=item,
                         name=item.instanceName)

    # --- one resource --------------------------------------------------------------

    def _resource(self, inst: _Instance, here: str, request_cloud: CloudConfiguration | None) -> dict[str, Any]:
        self.origins[here] = format_path(inst.path)
        out = self._shape(inst.spec, ("models", inst.key), inst.raw, inst.path, inst.model.instanceParams,
                          inst.path, here, inst, inst.spec.type or KINDS[inst.kind])
        target = self._pin(inst, request_cloud, here)
        if target is not None:
            out["placement"] = target
        return out

    def _volume_group(self, inst: _Instance, owner: dict[str, Any], names: list[str]) -> None:
        vg_name = inst.model.volumeGroupInstanceName
        if not vg_name:
            return
        module = owner["vf_modules"][-1]
        module.setdefault("uses", []).append(vg_name)
        groups = owner.setdefault("volume_groups", [])
        if any(g["name"] == vg_name for g in groups):
            return  # two modules of one VNF share it
        here = f"{owner['__path']}.volume_groups[{len(groups)}]"
        self.origins[here] = format_path(inst.path + ("volumeGroupInstanceName",))
        spec = inst.spec.volume_group
        entry = self._shape(spec, ("models", inst.key, "volume_group"), inst.raw, inst.path, [], inst.path, here,
                            inst, spec.type or "volume-group", name=vg_name)
        groups.append(entry)
        names.append(vg_name)

    def _shape(self, spec: Any, spec_path: tuple, raw: dict[str, Any], path: PathKey, instance_params: list,
               params_path: PathKey, here: str, inst: _Instance | None, type_: str,
               name: str | None = None) -> dict[str, Any]:
        """name, type, params, requires, labels and uses of one resource, from its mapping and its SO object."""
        out: dict[str, Any] = {"name": name or (inst.name if inst else self.service), "type": type_}
        params: dict[str, Any] = {}
        for key, value in spec.params.items():
            where = spec_path + ("params", key)
            if isinstance(value, FromRequest):
                found = self._read(value, raw, path, where)
                if found is not _MISSING:
                    params[key] = found
                    # (a problem with it is named there: it was named at the instance's name, a sweep's)
                    self.origins[f"{here}.params.{key}"] = format_path(_source(value, path))
            else:
                params[key] = self._resolve(value, where, path, inst)
        requires, labels = dict(spec.requires), dict(spec.labels)
        section = {"params": params, "requires": requires, "labels": labels}
        allowed = spec.instance_params
        targets = {k: f"params.{k}" for k in allowed} if isinstance(allowed, list) else dict(allowed)
        seen: set[str] = set()
        for i, entry in enumerate(instance_params):
            for key, value in entry.items():
                at = params_path + ("instanceParams", i, key)
                if key in seen:
                    self.problem(at, f"instance param {quoted(key)} is given twice")
                    continue
                seen.add(key)
                if key not in targets:
                    self.problem(at, f"instance param {quoted(key)} is not one the mapping takes",
                                 f"{self.mapping.where(*spec_path)} takes: {', '.join(sorted(targets)) or 'none'}")
                    continue
                part, _, ordo_key = targets[key].partition(".")
                section[part][ordo_key] = value
                self.origins[f"{here}.{part}.{ordo_key}"] = format_path(at)
        for part in ("params", "requires", "labels"):
            if section[part]:
                out[part] = section[part]
        uses = [self._resolve(u, spec_path + ("uses", i), path, inst) for i, u in enumerate(spec.uses)]
        if uses:
            out["uses"] = uses
        return out

    def _read(self, spec: FromRequest, raw: dict[str, Any], path: PathKey, where: tuple) -> Any:
        """A value the mapping reads from the request (relative to the instance, or from requestDetails. on)."""
        steps = _steps(spec.from_)
        value = _at(self.body if steps[0] == "requestDetails" else raw, steps)
        if value is _MISSING or value is None:
            if spec.default is not None:
                return spec.default
            self.problem(_source(spec, path), "missing, and the mapping reads it",
                         f"{self.mapping.where(*where)}: from {spec.from_}")
            return _MISSING
        if isinstance(value, (dict, list)):
            self.problem(_source(spec, path), "expected a single value (text, number or true/false)",
                         f"{self.mapping.where(*where)}: from {spec.from_}")
            return _MISSING
        return value

    def _resolve(self, value: Any, where: tuple, path: PathKey, inst: _Instance | None) -> Any:
        """A mapping constant with its @alias references replaced by instance names."""
        if not strings_in(value):
            return value
        if isinstance(value, dict):
            return {k: self._resolve(v, where + (k,), path, inst) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, where + (i,), path, inst) for i, v in enumerate(value)]

        def name_of(match: Any) -> str:
            alias = match.group(1)
            if alias is None:
                return "@"
            if alias == "service":
                return self.service
            if alias == "vnf":
                if inst is None or inst.vnf is None:
                    self.problem(path, "@vnf is used where there is no VNF", self.mapping.where(*where))
                    return "@vnf"
                return inst.vnf
            found = self.by_alias.get(alias, [])
            if len(found) != 1:
                model = self.mapping.aliases[alias]
                have = ", ".join(f.name for f in found) or "none"
                self.problem(path, f"the mapping refers to the one instance of model '{model}' (@{alias}), "
                                   f"and the request has {len(found)} ({have})", self.mapping.where(*where))
                return "@" + alias
            return found[0].name

        return REFERENCE.sub(name_of, value)

    def _pin(self, inst: _Instance, request_cloud: CloudConfiguration | None, here: str) -> str | None:
        """The target a cloudConfiguration pins the instance to, as cloud_regions says."""
        regions = self.mapping.spec.cloud_regions
        placed = inst.spec.placement if inst.spec.placement is not None else inst.kind in ("vnf", "pnf")
        if not placed or regions.pin == "never":
            return None
        own = inst.model.cloudConfiguration
        cloud, at = (own, inst.path + ("cloudConfiguration",))
        if (cloud is None or not cloud.lcpCloudRegionId) and regions.pin == "request":
            cloud, at = request_cloud, _DETAILS + ("cloudConfiguration",)
        if cloud is None or not cloud.lcpCloudRegionId:
            return None
        at += ("lcpCloudRegionId",)
        region = cloud.lcpCloudRegionId
        target = regions.targets.get(region, region if not regions.targets else None)
        if target is None:
            self.problem(at, f"unknown lcpCloudRegionId {region!r}",
                         f"{self.mapping.where('cloud_regions', 'targets')} maps: {', '.join(sorted(regions.targets))}")
            return None
        self.origins[f"{here}.placement"] = format_path(at)
        return target


class _Missing:
    pass


_MISSING: Any = _Missing()


def _source(spec: FromRequest, path: PathKey) -> PathKey:
    """Where in the SO request a value the mapping reads is: from requestDetails. on, else under ``path``
    (the instance's own object)."""
    steps = _steps(spec.from_)
    return steps if steps[0] == "requestDetails" else path + steps


def _steps(dotted: str) -> PathKey:
    """``a.b[0].c`` as a path: ("a", "b", 0, "c")."""
    out: list[str | int] = []
    for part in dotted.split("."):
        name, *indexes = part.replace("]", "").split("[")
        out.append(name)
        out.extend(int(i) for i in indexes)
    return tuple(out)


def _at(data: Any, path: PathKey) -> Any:
    for step in path:
        listed = isinstance(step, int) and isinstance(data, list) and 0 <= step < len(data)
        if listed or (isinstance(step, str) and isinstance(data, dict) and step in data):
            data = data[step]
        else:
            return _MISSING
    return data
