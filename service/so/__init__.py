"""ONAP SO's northbound API, for SO's existing clients: a library the server wires.

``models``: SO's request and response JSON shapes; ``mapping``: the project's
``so-mapping.yaml``; ``translate``: SO macro create/delete -> ordo request;
``status``: ordo runs -> SO's orchestration request, request list, manual
tasks. No HTTP here (docs/service-so.md).
"""
