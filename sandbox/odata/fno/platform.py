"""Platform operations of ``/data/`` that belong to no business entity: the environment's versions.

F&O answers these collection-bound actions on two platform entity sets (``docs/reference/fno-odata.md``
section 15); clients such as ``d365fo-client`` call them to tell environments apart before they cache
metadata::

    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion
        -> 200 {"@odata.context": ".../$metadata#Edm.String", "value": "10.0.2095.13"}
    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetPlatformBuildVersion
    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationBuildVersion
    POST /data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules
        -> 200 {"value": ["Name: ApplicationSuite | Version: ... | Module: ... | Publisher: ... | DisplayName: ..."]}

The versions are fixed values shaped like a 10.0.4x release; nothing in the sandbox depends on them. Reading
the two sets themselves (``GET /data/DataManagementEntities``) is not emulated: they answer 405 with
``Allow: POST``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import MethodNotAllowed, NotFound, SandboxError
from sandbox.odata.endpoints import Endpoints, Resource
from sandbox.odata.fno.codes import NO_CODE
from sandbox.odata.fno.metadata import SystemEntity
from sandbox.odata.fno.wire import NAMESPACE
from sandbox.odata.responses import json_response
from sandbox.odata.urls import Segment

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

APPLICATION_VERSION = "10.0.2095.13"
PLATFORM_BUILD_VERSION = "7.0.7521.60"
PUBLISHER = "Microsoft Corporation"
#: (module id, display name) of the modules the sandbox's entities come from
MODULES = (
    ("ApplicationPlatform", "Application Platform"),
    ("ApplicationFoundation", "Application Foundation"),
    ("ApplicationSuite", "Application Suite"),
    ("Directory", "Directory"),
    ("Currency", "Currency"),
    ("UnitOfMeasure", "Unit Of Measure"),
    ("ContactPerson", "Contact Person"),
    ("Dimensions", "Dimensions"),
    ("Ledger", "Ledger"),
)


def installed_modules() -> list[str]:
    """``GetInstalledModules``: one ``Name: ... | Version: ... | Module: ... | Publisher: ... | DisplayName: ...``
    line per module."""
    return [
        f"Name: {module} | Version: {APPLICATION_VERSION} | Module: {module} | Publisher: {PUBLISHER} | "
        f"DisplayName: {display}"
        for module, display in MODULES
    ]


#: action name -> (EDM return type, value)
_DATA_MANAGEMENT_ACTIONS: dict[str, tuple[str, Callable[[], Any]]] = {
    "GetApplicationVersion": ("Edm.String", lambda: APPLICATION_VERSION),
    "GetPlatformBuildVersion": ("Edm.String", lambda: PLATFORM_BUILD_VERSION),
    "GetApplicationBuildVersion": ("Edm.String", lambda: APPLICATION_VERSION),
}
_SYSTEM_NOTIFICATION_ACTIONS: dict[str, tuple[str, Callable[[], Any]]] = {
    "GetInstalledModules": ("Collection(Edm.String)", installed_modules),
}

#: the platform entities, as the metadata service lists them
SYSTEM_ENTITIES = (
    SystemEntity(
        "DataManagementEntity",
        "DataManagementEntities",
        "DataManagementEntity",
        ("EntityName", "TargetEntity"),
        {name: returns for name, (returns, _value) in _DATA_MANAGEMENT_ACTIONS.items()},
    ),
    SystemEntity(
        "SystemNotification",
        "SystemNotifications",
        "SystemNotificationEntity",
        ("Id", "Message"),
        {name: returns for name, (returns, _value) in _SYSTEM_NOTIFICATION_ACTIONS.items()},
    ),
)


def register(endpoints: Endpoints) -> None:
    """Serve the platform entity sets' actions beside the model's entity sets."""
    for entity_set, actions in (
        ("DataManagementEntities", _DATA_MANAGEMENT_ACTIONS),
        ("SystemNotifications", _SYSTEM_NOTIFICATION_ACTIONS),
    ):
        endpoints.add_resource(Resource(entity_set, _action_handler(entity_set, actions), "POST", _refuse_read))


def _refuse_read() -> SandboxError:
    return MethodNotAllowed("The requested resource does not support http method 'GET'.", NO_CODE)


def _action_handler(
    entity_set: str, actions: Mapping[str, tuple[str, Callable[[], Any]]]
) -> Callable[[ODataService, list[Segment], RequestState], Response]:
    def handle(service: ODataService, segments: list[Segment], state: RequestState) -> Response:
        name = segments[1].name if len(segments) == 2 and segments[0].args is None else ""
        short = name[len(NAMESPACE) + 1 :] if name.startswith(f"{NAMESPACE}.") else ""
        if short not in actions:
            raise NotFound(
                "Resource not found for the segment.",
                NO_CODE,
                detail=f"No action named '{name or '/'.join(s.name for s in segments)}' is bound to {entity_set}.",
            )
        returns, value = actions[short]
        return json_response({"@odata.context": f"{state.base_url}$metadata#{returns}", "value": value()})

    return handle
