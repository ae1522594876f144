"""ONAP SO's northbound JSON shapes, as pydantic models (onap/so serviceinstancebeans, tasksbeans).

These bodies arrive over HTTP and are not trusted: every field ordo reads is
validated and bounded (lengths, list sizes), and a problem names its field
(``requestDetails.requestParameters.userParams[0].service.resources.vnfs[1].instanceName``).
Fields ordo does not read are tolerated and dropped (``extra="ignore"``), as
SO's own Jackson beans ignore what they do not know. The whole body's size is
bounded by the server (413) before it is parsed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.errors import DiagnosticsError
from domain.formats import Name, parse
from domain.yamlsrc import Source

#: Where SO request problems are said to be (there is no file: the body came over HTTP).
SO_REQUEST = "SO request"

Id = Annotated[str, StringConstraints(max_length=200)]
Text = Annotated[str, StringConstraints(max_length=1000)]
ParamKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# SO's instanceParams are Map<String, String>; clients send numbers and booleans too.
ParamValue = Annotated[str, StringConstraints(max_length=1 << 20)] | int | float | bool | None
InstanceParams = Annotated[list[Annotated[dict[ParamKey, ParamValue], Field(max_length=500)]], Field(max_length=100)]

MAX_LIST = 500  # VNFs, networks, PNFs in one request; VF modules in one VNF


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False)


class ModelInfo(_Tolerant):
    modelType: Text | None = None
    modelName: Text | None = None
    modelVersion: Id | None = None
    modelVersionId: Id | None = None
    modelInvariantId: Id | None = None
    modelCustomizationName: Text | None = None
    modelCustomizationId: Id | None = None
    modelInstanceName: Text | None = None

    @property
    def key(self) -> str | None:
        """What the mapping file knows a model by: its customization name, else its name."""
        return self.modelCustomizationName or self.modelInstanceName or self.modelName


class CloudConfiguration(_Tolerant):
    lcpCloudRegionId: Id | None = None
    tenantId: Id | None = None
    cloudOwner: Id | None = None


class VfModule(_Tolerant):
    modelInfo: ModelInfo
    cloudConfiguration: CloudConfiguration | None = None
    instanceName: Name | None = None
    volumeGroupInstanceName: Name | None = None
    instanceParams: InstanceParams = Field(default_factory=list)


class Vnf(_Tolerant):
    modelInfo: ModelInfo
    cloudConfiguration: CloudConfiguration | None = None
    instanceName: Name | None = None
    productFamilyId: Id | None = None
    instanceParams: InstanceParams = Field(default_factory=list)
    vfModules: Annotated[list[VfModule], Field(max_length=MAX_LIST)] = Field(default_factory=list)


class Network(_Tolerant):
    modelInfo: ModelInfo
    cloudConfiguration: CloudConfiguration | None = None
    instanceName: Name | None = None
    productFamilyId: Id | None = None
    instanceParams: InstanceParams = Field(default_factory=list)


class Pnf(_Tolerant):
    modelInfo: ModelInfo
    instanceName: Name | None = None
    instanceParams: InstanceParams = Field(default_factory=list)


class Resources(_Tolerant):
    vnfs: Annotated[list[Vnf], Field(max_length=MAX_LIST)] = Field(default_factory=list)
    networks: Annotated[list[Network], Field(max_length=MAX_LIST)] = Field(default_factory=list)
    pnfs: Annotated[list[Pnf], Field(max_length=MAX_LIST)] = Field(default_factory=list)


class Service(_Tolerant):
    modelInfo: ModelInfo | None = None
    instanceName: Name | None = None
    instanceParams: InstanceParams = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)


class UserParam(_Tolerant):
    """One entry of userParams: the macro request's service, or a name/value pair (ignored)."""

    service: Service | None = None


class RequestParameters(_Tolerant):
    subscriptionServiceType: Text | None = None
    aLaCarte: bool | None = None
    userParams: Annotated[list[UserParam], Field(max_length=100)] = Field(default_factory=list)


class RequestInfo(_Tolerant):
    source: Text | None = None
    requestorId: Text | None = None
    instanceName: Name | None = None
    productFamilyId: Id | None = None
    suppressRollback: bool | None = None
    callbackUrl: Text | None = None
    correlator: Text | None = None


class SubscriberInfo(_Tolerant):
    globalSubscriberId: Id | None = None
    subscriberName: Text | None = None


class RequestDetails(_Tolerant):
    modelInfo: ModelInfo | None = None
    requestInfo: RequestInfo | None = None
    cloudConfiguration: CloudConfiguration | None = None
    subscriberInfo: SubscriberInfo | None = None
    requestParameters: RequestParameters | None = None


class ServiceInstancesRequest(_Tolerant):
    """The body of POST/DELETE .../serviceInstantiation/v7/serviceInstances[/{id}]."""

    requestDetails: RequestDetails


# --- manual tasks (TasksHandler, ManualTasks) ----------------------------------

#: SO's ValidResponses, and "resume" (issue 10): what a manual task may be completed with.
TaskResponse = Literal["rollback", "abort", "skip", "retry", "manual", "resume"]


class TaskRequestInfo(_Tolerant):
    source: Text | None = None
    responseValue: TaskResponse
    requestorId: Text | None = None


class TaskRequestDetails(_Tolerant):
    requestInfo: TaskRequestInfo


class TasksRequest(_Tolerant):
    """The body of POST /onap/so/infra/tasks/v1/{taskId}/complete."""

    requestDetails: TaskRequestDetails


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words (not Python's: 'got NoneType', 'got list')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {list: "an array", str: "a string", int: "a number", float: "a number", dict: "an object"}.get(
        type(value), type(value).__name__)


def validate(model: type[BaseModel], body: Any, name: str = SO_REQUEST) -> Any:
    """``body`` (parsed JSON) as ``model``; DiagnosticsError naming each bad field by its path."""
    if not isinstance(body, dict):
        raise DiagnosticsError([Source(file=name, data=body, positions={}).diagnostic(
            (), f"expected a JSON object, got {json_kind(body)}")])
    return parse(model, Source(file=name, data=body, positions={}))
