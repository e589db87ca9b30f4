"""What Dataverse serves beside the entity sets, declared as endpoints of the generic service."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Response

from sandbox import jsonio
from sandbox.errors import BadRequest, NotFound
from sandbox.odata.dataverse import bulk, codes
from sandbox.odata.dataverse.fetchxml import caller_of
from sandbox.odata.dataverse.metadata import MetadataEndpoints
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.endpoints import CollectionAction, Endpoints, Resource
from sandbox.odata.responses import json_response
from sandbox.odata.urls import Segment

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState


def register(endpoints: Endpoints) -> None:
    """Declare Dataverse's metadata resources, ``WhoAmI`` and the bulk actions."""
    metadata = MetadataEndpoints()
    endpoints.add_resource(
        Resource(
            "EntityDefinitions",
            metadata.entity_definitions,
            "GET",
            lambda: BadRequest("EntityDefinitions are read-only here.", codes.QUERY_SYNTAX),
        )
    )
    endpoints.add_resource(
        Resource(
            "RelationshipDefinitions",
            metadata.relationship_definitions,
            "GET",
            lambda: BadRequest("RelationshipDefinitions are read-only here.", codes.QUERY_SYNTAX),
        )
    )
    endpoints.add_resource(
        Resource(
            "WhoAmI",
            who_am_i,
            "GET",
            lambda: NotFound(
                "No HTTP resource was found that matches the request URI for WhoAmI (it is a function: use GET).",
                codes.QUERY_SYNTAX,
            ),
            namespace=NAMESPACE,
        )
    )
    endpoints.add_resource(
        Resource(
            "RetrieveMetadataChanges",
            metadata.retrieve_metadata_changes,
            "GET",
            lambda: NotFound(
                "No HTTP resource was found that matches the request URI for "
                "RetrieveMetadataChanges (it is a function: use GET).",
                codes.QUERY_SYNTAX,
            ),
            namespace=NAMESPACE,
            single_segment=True,
        )
    )
    endpoints.add_resource(
        Resource(
            "BulkDelete",
            bulk.bulk_delete,
            "POST",
            lambda: NotFound(
                "No HTTP resource was found that matches the request URI for BulkDelete (it is an action: use POST).",
                codes.QUERY_SYNTAX,
            ),
            namespace=NAMESPACE,
            single_segment=True,
        )
    )
    endpoints.add_resource(
        Resource(
            "RetrieveTotalRecordCount",
            retrieve_total_record_count,
            "GET",
            lambda: NotFound(
                "No HTTP resource was found that matches the request URI for "
                "RetrieveTotalRecordCount (it is a function: use GET).",
                codes.QUERY_SYNTAX,
            ),
            namespace=NAMESPACE,
            single_segment=True,
        )
    )
    endpoints.add_collection_action(CollectionAction("CreateMultiple", bulk.create_multiple))
    endpoints.add_collection_action(CollectionAction("UpdateMultiple", bulk.update_multiple))
    endpoints.add_collection_action(CollectionAction("UpsertMultiple", bulk.upsert_multiple))


def who_am_i(service: ODataService, segments: list[Segment], state: RequestState) -> Response:
    """``WhoAmI()``: the caller's systemuser and business unit (as Dataverse answers for the token's user or
    application user), and the organization; stable made-up ids where the organization has no such rows."""

    def first_id(entity_name: str, fallback: str) -> str:
        entity = service.model.entities.get(entity_name)
        if entity is not None:
            rows = service.store.find(entity_name, limit=1)
            if rows:
                return str(rows[0][entity.key[0]])
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{fallback}"))

    with service.db.transaction(may_sync=False):  # a read: never takes the live-sync gate
        caller = caller_of(service, state)
        answer = {
            "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.WhoAmIResponse",
            "BusinessUnitId": caller.business_unit_id or first_id("businessunit", "businessunit"),
            "UserId": caller.user_id or first_id("systemuser", "systemuser"),
            "OrganizationId": first_id("organization", "organization"),
        }
    return json_response(answer)


_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _entity_names(segment: Segment, state: RequestState) -> list[str]:
    """The ``EntityNames`` parameter: inline (``['account','contact']`` or JSON) or a parameter alias."""
    args = segment.args or ""
    name, _, value = args.partition("=")
    if name.strip() != "EntityNames" or not value.strip():
        raise BadRequest(
            "RetrieveTotalRecordCount needs its EntityNames parameter: "
            "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=['account'].",
            codes.QUERY_SYNTAX,
        )
    value = value.strip()
    if value.startswith("@"):
        if value not in state.args:
            raise BadRequest(f"The parameter alias '{value}' has no value.", codes.QUERY_SYNTAX)
        value = state.args[value].strip()
    if not (value.startswith("[") and value.endswith("]")):
        raise BadRequest("EntityNames must be a collection of strings: ['account','contact'].", codes.QUERY_SYNTAX)
    inner = value[1:-1].strip()
    if not inner:
        return []
    if '"' in inner:
        try:
            parsed = jsonio.loads_request(value.encode())
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise BadRequest("EntityNames must be a collection of strings.", codes.QUERY_SYNTAX)
        return list(parsed)
    names = [m.group(1).replace("''", "'") for m in _QUOTED.finditer(inner)]
    if _QUOTED.sub("", inner).replace(",", "").strip():
        raise BadRequest("EntityNames must be a collection of strings: ['account','contact'].", codes.QUERY_SYNTAX)
    return names


def retrieve_total_record_count(service: ODataService, segments: list[Segment], state: RequestState) -> Response:
    """``RetrieveTotalRecordCount(EntityNames=[...])``: the number of rows of each named table, beyond the
    5,000 ``$count`` stops at (PA ``webapi/query/count-rows``). Dataverse answers a snapshot up to 24 hours
    old; the sandbox counts now. An unknown logical name is 400 ``0x80041102``."""
    names = _entity_names(segments[0], state)
    counts: list[int] = []
    with service.db.transaction(may_sync=False):  # a read: never takes the live-sync gate
        for name in names:
            entity = service.model.entities.get(name)
            if entity is None or entity.alias_of is not None:
                raise BadRequest(
                    f"The entity with a name = '{name}' with namemapping = 'Logical' was not found in the "
                    "MetadataCache.",
                    codes.METADATA_NOT_FOUND,
                )
            table = entity.table
            assert table is not None
            counts.append(
                int(service.db.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
            )
    return json_response(
        {
            "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.RetrieveTotalRecordCountResponse",
            "EntityRecordCountCollection": {
                "Count": len(names),
                "IsReadOnly": False,
                "Keys": names,
                "Values": counts,
            },
        }
    )
