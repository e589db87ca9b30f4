"""Dataverse's metadata endpoints: ``EntityDefinitions`` (with ``Attributes``, ``Keys`` and relationships),
``RelationshipDefinitions`` and the ``RetrieveMetadataChanges`` function, read from the model through
:mod:`sandbox.odata.dataverse.entitydefs`."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox import jsonio
from sandbox.errors import BadRequest, NotFound, NotImplementedYet
from sandbox.odata.dataverse import codes, entitydefs
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.responses import json_response
from sandbox.odata.urls import Segment, split_args

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState


class MetadataEndpoints:
    """The metadata resources of one service (each instance keeps the service's plain definitions)."""

    def __init__(self) -> None:
        self._definitions: list[dict[str, Any]] | None = None

    # ---- RetrieveMetadataChanges ----------------------------------------------------------------------
    def retrieve_metadata_changes(
        self, service: ODataService, segments: list[Segment], state: RequestState
    ) -> Response:
        """``RetrieveMetadataChanges(Query=@p1)`` with an EntityQueryExpression: the entities its criteria
        select (conditions on entity properties such as ``LogicalName``), projected to its
        ``Properties``, with ``Attributes`` filtered and projected by its ``AttributeQuery``."""
        query = _function_json_parameter(segments[0], state, "Query")
        entity_criteria = query.get("Criteria")
        entity_props = _property_names(query.get("Properties"))
        attribute_query = query.get("AttributeQuery") or {}
        attribute_props = _property_names(attribute_query.get("Properties"))
        attribute_criteria = attribute_query.get("Criteria")
        found = []
        for definition in self.definitions(service):
            if not _metadata_matches(definition, entity_criteria):
                continue
            item = entitydefs.project(definition, entity_props, None)
            if entity_props is None or "Attributes" in entity_props:
                attrs = entitydefs.attributes(service.model, definition["LogicalName"])
                item["Attributes"] = [
                    entitydefs.project(a, attribute_props, None)
                    for a in attrs
                    if _metadata_matches(a, attribute_criteria)
                ]
            found.append(item)
        return json_response(
            {
                "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.RetrieveMetadataChangesResponse",
                "EntityMetadata": found,
                "ServerVersionStamp": "1!" + dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S"),
                "DeletedMetadata": None,
            }
        )

    def definitions(
        self, service: ODataService, with_attributes: bool = False, with_relationships: bool = False
    ) -> list[dict[str, Any]]:
        """The EntityDefinitions of the model (the plain ones cached; with attributes or relationships
        built on demand)."""
        if with_attributes or with_relationships:
            return entitydefs.entity_definitions(
                service.model, include_attributes=with_attributes, include_relationships=with_relationships
            )
        if self._definitions is None:
            self._definitions = entitydefs.entity_definitions(service.model)
        return self._definitions

    def entity_definitions(self, service: ODataService, segments: list[Segment], state: RequestState) -> Response:
        """``EntityDefinitions`` as metadata clients read it: the set, one entity, its attributes and keys."""
        select = entitydefs.parse_select(state.args.get("$select"))
        expand = entitydefs.parse_expand(state.args.get("$expand"))
        context = f"{state.base_url}$metadata#EntityDefinitions"
        defs = self.definitions(
            service,
            with_attributes=bool(expand and "Attributes" in expand),
            with_relationships=bool(expand and set(expand) & set(entitydefs.RELATIONSHIP_NAVIGATIONS)),
        )
        head = segments[0]
        if head.args is None:
            if len(segments) > 1:
                raise NotFound(f"Resource not found for the segment '{segments[1].name}'.", codes.SEGMENT_NOT_FOUND)
            items = entitydefs.filter_definitions(defs, state.args.get("$filter"), select, expand)
            return json_response({"@odata.context": context, "value": items})
        match = entitydefs.find_by_key(defs, head.args)
        rest = segments[1:]
        if not rest:
            return json_response({"@odata.context": context + "/$entity", **entitydefs.project(match, select, expand)})
        sub = rest[0]
        logical = match["LogicalName"]
        if sub.name == "Attributes":
            attrs = entitydefs.attributes(service.model, logical)
            cast = next((s.name for s in rest[1:] if s.name.startswith(NAMESPACE)), None)
            attrs = entitydefs.attributes_of_type(attrs, cast)
            if sub.args is not None:
                attribute = entitydefs.find_by_key(attrs, sub.args, kind="AttributeMetadata")
                return json_response(
                    {
                        "@odata.context": f"{context}('{logical}')/Attributes/$entity",
                        **entitydefs.project(attribute, select, expand),
                    }
                )
            attrs = entitydefs.filter_definitions(attrs, state.args.get("$filter"), select, expand)
            return json_response({"@odata.context": f"{context}('{logical}')/Attributes", "value": attrs})
        if sub.name == "Keys":
            return json_response({"@odata.context": f"{context}('{logical}')/Keys", "value": match.get("Keys", [])})
        if sub.name in entitydefs.RELATIONSHIP_NAVIGATIONS:
            items = entitydefs.entity_relationships(service.model, logical, sub.name)
            if sub.args is not None:
                item = entitydefs.find_by_key(items, sub.args, kind="RelationshipMetadata")
                return json_response(
                    {
                        "@odata.context": f"{context}('{logical}')/{sub.name}/$entity",
                        **entitydefs.project(item, select, None),
                    }
                )
            items = entitydefs.filter_definitions(items, state.args.get("$filter"), select)
            return json_response({"@odata.context": f"{context}('{logical}')/{sub.name}", "value": items})
        raise NotFound(f"Resource not found for the segment '{sub.name}'.", codes.SEGMENT_NOT_FOUND)

    def relationship_definitions(self, service: ODataService, segments: list[Segment], state: RequestState) -> Response:
        """``RelationshipDefinitions``: every relationship, one by MetadataId or ``(SchemaName='x')``."""
        select = entitydefs.parse_select(state.args.get("$select"))
        context = f"{state.base_url}$metadata#RelationshipDefinitions"
        items = entitydefs.relationships(service.model)
        head, rest = segments[0], segments[1:]
        cast = next((s.name for s in rest if s.name.startswith(NAMESPACE)), None)
        if cast is not None and cast.rsplit(".", 1)[-1] not in (
            "RelationshipMetadataBase",
            "OneToManyRelationshipMetadata",
        ):
            items = []  # ManyToManyRelationshipMetadata: the sandbox tables have none
        if len(rest) > (1 if cast else 0):
            raise NotFound(f"Resource not found for the segment '{rest[-1].name}'.", codes.SEGMENT_NOT_FOUND)
        if head.args is None:
            items = entitydefs.filter_definitions(items, state.args.get("$filter"), select)
            return json_response({"@odata.context": context, "value": items})
        key = head.args.strip()
        match = re.fullmatch(r"SchemaName\s*=\s*'((?:[^']|'')*)'", key)
        if match:
            wanted = match.group(1).replace("''", "'")
            found = [item for item in items if item["SchemaName"] == wanted]
            if not found:
                raise NotFound(f"Could not find RelationshipMetadata with SchemaName = '{wanted}'.")
            item = found[0]
        else:
            item = entitydefs.find_by_key(items, key, kind="RelationshipMetadata")
        return json_response({"@odata.context": context + "/$entity", **entitydefs.project(item, select, None)})


def _function_json_parameter(segment: Segment, state: RequestState, name: str) -> dict[str, Any]:
    """A complex function parameter: ``Fn(Query=@p1)`` with ``@p1`` a JSON object in the query string."""
    for arg in split_args(segment.args or ""):
        key, _, value = arg.partition("=")
        if key.strip() != name:
            continue
        value = value.strip()
        if value.startswith("@"):
            value = state.args.get(value, "")
        try:
            parsed = jsonio.loads_request(value)
        except ValueError:
            raise BadRequest(f"The parameter '{name}' must be a JSON object.", codes.INVALID_ARGUMENT) from None
        if not isinstance(parsed, dict):
            raise BadRequest(f"The parameter '{name}' must be a JSON object.", codes.INVALID_ARGUMENT)
        return parsed
    raise BadRequest(f"Request message has unresolved parameters: '{name}' is required.", codes.INVALID_ARGUMENT)


def _property_names(properties: Any) -> list[str] | None:
    """``{"AllProperties": false, "PropertyNames": [...]}`` -> the names; all properties -> None."""
    if not isinstance(properties, dict) or properties.get("AllProperties"):
        return None
    names = properties.get("PropertyNames")
    return [str(n) for n in names] if isinstance(names, list) else None


def _metadata_matches(item: dict[str, Any], criteria: Any) -> bool:
    """A MetadataFilterExpression (``Equals``, ``NotEquals``, ``In``, ``NotIn``) over one metadata dict."""
    if not isinstance(criteria, dict):
        return True
    results = []
    for condition in criteria.get("Conditions") or []:
        operator = str(condition.get("ConditionOperator") or "Equals")
        value = condition.get("Value")
        if isinstance(value, dict) and "Value" in value:
            value = value["Value"]
        actual = item.get(str(condition.get("PropertyName") or ""))
        values = value if isinstance(value, list) else [value]
        values = [v.get("Value") if isinstance(v, dict) and "Value" in v else v for v in values]
        if operator in ("Equals", "In"):
            results.append(actual in values)
        elif operator in ("NotEquals", "NotIn"):
            results.append(actual not in values)
        else:
            raise NotImplementedYet(f"The metadata condition operator '{operator}' is not supported by the sandbox.")
    for nested in criteria.get("Filters") or []:
        results.append(_metadata_matches(item, nested))
    if not results:
        return True
    return any(results) if str(criteria.get("FilterOperator") or "And").lower() == "or" else all(results)
