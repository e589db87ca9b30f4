"""Platform operations of ``/data/`` that belong to no business entity: the environment's versions.

F&O answers these collection-bound actions on two platform entity sets (``docs/reference/fno-odata.md``
section 1); clients such as ``d365fo-client`` call them to tell environments apart before they cache
metadata::

    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion
        -> 200 {"@odata.context": ".../$metadata#Edm.String", "value": "10.0.2095.13"}
    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetPlatformBuildVersion
    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationBuildVersion
    POST /data/DataManagementEntities/Microsoft.Dynamics.DataEntities.query
        {"categoryFilters": [0], "isSharedFilters": [], "moduleFilters": [], ...}
        -> 200 {"value": [{"EntityName": "Customers V3", "TargetName": "CustCustomerV3Entity", "Category": "Master", ...}]}
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

from sandbox.errors import BadRequest, MethodNotAllowed, NotFound, SandboxError
from sandbox.odata.endpoints import Endpoints, Resource
from sandbox.odata.fno.codes import NO_CODE, ODATA_EXCEPTION
from sandbox.odata.fno.metadata import ENTITY_CATEGORIES, MetadataCatalog, SystemEntity
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


#: an action's answer: (the service, the JSON body) -> the value
ActionAnswer = Callable[["ODataService", dict[str, Any]], Any]

#: the DataManagementEntity type (what the ``query`` action answers a collection of)
DATA_MANAGEMENT_ENTITY = f"{NAMESPACE}.DataManagementEntity"
#: ``query``'s category filters are the EntityCategory enum's integers
_CATEGORY_NUMBERS = {name: number for number, name in enumerate(ENTITY_CATEGORIES)}
_QUERY_FILTERS = (
    "categoryFilters",
    "isSharedFilters",
    "configKeyFilters",
    "countryRegionCodeFilters",
    "moduleFilters",
    "tagFilters",
)


def query_data_management_entities(service: ODataService, body: dict[str, Any]) -> list[dict[str, Any]]:
    """``DataManagementEntities/Microsoft.Dynamics.DataEntities.query``: the data management entities, one per
    data entity of the metadata service, narrowed by each non-empty filter list (category numbers, IsShared 0/1,
    modules, configuration keys, countries, tags)."""
    filters: dict[str, list[Any]] = {}
    for name, value in body.items():
        if name not in _QUERY_FILTERS:
            raise BadRequest(
                "An error has occurred.",
                NO_CODE,
                detail=f"The parameter '{name}' is not a parameter of action 'query'.",
                extra={"type": ODATA_EXCEPTION},
            )
        wanted_type = int if name in ("categoryFilters", "isSharedFilters") else str
        if not isinstance(value, list) or not all(
            isinstance(item, wanted_type) and not isinstance(item, bool) for item in value
        ):
            raise BadRequest(
                "An error has occurred.",
                NO_CODE,
                detail=f"The parameter '{name}' takes a collection of {'Edm.Int32' if wanted_type is int else 'Edm.String'}.",
                extra={"type": ODATA_EXCEPTION},
            )
        if value:
            filters[name] = value
    catalog = catalog_of(service)
    shared = {entity.name: entity.company_property is None for entity in service.model.entities.values()}
    rows = []
    for entity in catalog.data_entities:
        if not entity["DataManagementEnabled"]:
            continue
        row = {
            "EntityName": catalog.labels.text(entity["LabelId"]) or entity["PublicCollectionName"],
            "TargetName": entity["Name"],
            "Category": entity["EntityCategory"],
            "IsShared": "Yes" if shared.get(entity["PublicEntityName"]) else "No",
            "Modules": "ApplicationSuite",
            "ConfigurationKeyName": "",
            "CountryRegionCodes": "",
            "Tags": "",
        }
        if _matches(row, filters):
            rows.append(row)
    return rows


def _matches(row: dict[str, Any], filters: dict[str, list[Any]]) -> bool:
    checks = {
        "categoryFilters": _CATEGORY_NUMBERS.get(row["Category"]),
        "isSharedFilters": 1 if row["IsShared"] == "Yes" else 0,
        "configKeyFilters": row["ConfigurationKeyName"],
        "countryRegionCodeFilters": row["CountryRegionCodes"],
        "moduleFilters": row["Modules"],
        "tagFilters": row["Tags"],
    }
    return all(checks[name] in values for name, values in filters.items())


#: action name -> (EDM return type, answer)
_DATA_MANAGEMENT_ACTIONS: dict[str, tuple[str, ActionAnswer]] = {
    "GetApplicationVersion": ("Edm.String", lambda _service, _body: APPLICATION_VERSION),
    "GetPlatformBuildVersion": ("Edm.String", lambda _service, _body: PLATFORM_BUILD_VERSION),
    "GetApplicationBuildVersion": ("Edm.String", lambda _service, _body: APPLICATION_VERSION),
    "query": (f"Collection({DATA_MANAGEMENT_ENTITY})", query_data_management_entities),
}
_SYSTEM_NOTIFICATION_ACTIONS: dict[str, tuple[str, ActionAnswer]] = {
    "GetInstalledModules": ("Collection(Edm.String)", lambda _service, _body: installed_modules()),
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


def catalog_of(service: ODataService) -> MetadataCatalog:
    """The metadata catalog of the service's model, which an F&O dialect builds once and keeps."""
    from sandbox.odata.fno.dialect import FnoDialect

    assert isinstance(service.dialect, FnoDialect)
    return service.dialect.catalog(service.model, service.actions.all())


def _action_handler(
    entity_set: str, actions: Mapping[str, tuple[str, ActionAnswer]]
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
        returns, answer = actions[short]
        value = answer(service, service.request_body())
        return json_response({"@odata.context": f"{state.base_url}$metadata#{returns}", "value": value})

    return handle
