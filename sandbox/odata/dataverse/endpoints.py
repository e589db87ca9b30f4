"""What Dataverse serves beside the entity sets, declared as endpoints of the generic service."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import Response

from sandbox.errors import BadRequest, NotFound
from sandbox.odata.dataverse import bulk, codes
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
    endpoints.add_collection_action(CollectionAction("CreateMultiple", bulk.create_multiple))
    endpoints.add_collection_action(CollectionAction("UpdateMultiple", bulk.update_multiple))
    endpoints.add_collection_action(CollectionAction("UpsertMultiple", bulk.upsert_multiple))


def who_am_i(service: ODataService, segments: list[Segment], state: RequestState) -> Response:
    """``WhoAmI()``: the first business unit, user and organization rows (stable made-up ids without)."""

    def first_id(entity_name: str, fallback: str) -> str:
        entity = service.model.entities.get(entity_name)
        if entity is not None:
            with service.db.transaction(may_sync=False):  # a read: never takes the live-sync gate
                rows = service.store.find(entity_name, limit=1)
            if rows:
                return str(rows[0][entity.key[0]])
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{fallback}"))

    return json_response(
        {
            "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.WhoAmIResponse",
            "BusinessUnitId": first_id("businessunit", "businessunit"),
            "UserId": first_id("systemuser", "systemuser"),
            "OrganizationId": first_id("organization", "organization"),
        }
    )
