"""The Dataverse Web API dialect (Dynamics 365 Sales): ``/api/data/v9.2/``.

GUID keys and alternate keys, ``@odata.bind`` / ``_x_value``, 204 + ``OData-EntityId`` on create,
PATCH as upsert, ``Prefer: odata.maxpagesize`` with ``$skiptoken`` paging (no ``$skip``), formatted-value
and lookup annotations, change tracking with delta links, ``EntityDefinitions``, ``WhoAmI`` and the bulk
actions ``CreateMultiple`` / ``UpdateMultiple`` / ``UpsertMultiple``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import html
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response

from sandbox.errors import BadRequest, NotFound, NotImplementedYet, SandboxError
from sandbox.odata import dvquery, entitydefs
from sandbox.odata import model as m
from sandbox.odata.batch import BatchDialect
from sandbox.odata.dialect import Dialect, query_string
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Property
from sandbox.odata.options import ExpandItem, FilterDialect
from sandbox.odata.urls import Segment, is_guid

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, QueryOptions, RequestState

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAV = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
NAMESPACE = "Microsoft.Dynamics.CRM"


class DataverseDialect(Dialect):
    name = "dataverse"
    csdl_name = "dataverse"
    root = "/api/data/v9.2/"
    namespace = NAMESPACE
    max_page_size = 5000
    allow_skip = False
    patch_upserts = True
    deep_insert = True
    enums_as_names = False
    filter_dialect = FilterDialect(
        case_insensitive=True,
        string_functions=True,
        wildcard_eq=False,
        enum_literals=False,
        query_functions_namespace=NAMESPACE,
        lambdas=True,
        entity_label=lambda e: f"{NAMESPACE}.{e.name}",
    )
    batch_dialect = BatchDialect(
        fail_outer_status=True,
        stop_on_error=True,
        changeset_failure_status=None,
        require_crlf=True,
        max_requests=1000,
        service_root="/api/data/v9.2/",
    )

    def __init__(self, *, max_page_size: int = 5000) -> None:
        self.max_page_size = max_page_size
        self.service: ODataService | None = None
        self._definitions: list[dict[str, Any]] | None = None

    def bind(self, service: ODataService) -> None:
        self.service = service

    def roots(self) -> list[str]:
        return ["/api/data/v9.2/", "/api/data/v9.1/", "/api/data/v9.0/"]

    def root_for(self, path: str) -> str:
        for root in self.roots():
            if path.startswith(root) or path + "/" == root:
                return root
        return self.root

    # ---- keys -------------------------------------------------------------------------------------
    def invalid_key(self, entity: EntityType) -> SandboxError:
        label = self.type_label(entity)
        return BadRequest(
            f"The key in the request URI is not valid for resource '{label}'. Ensure that the "
            f"names and number of key properties match the declared or alternate key properties "
            f"for the resource '{label}'.",
            "0x80060888",
        )

    def key_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        if prop.type == m.GUID:
            if not isinstance(value, str) or not is_guid(value):
                raise BadRequest(
                    f"Bad Request - Error in query syntax: '{value}' is not a valid GUID for '{prop.name}'.",
                    "0x80060888",
                )
            return value.lower()
        return self.in_value(entity, prop, value)

    def key_condition(self, entity: EntityType, column: Any, value: Any) -> Any:
        return column == value

    def scope(self, entity: EntityType, state: RequestState) -> list[Any]:
        return []

    def entity_conditions(self, entity: EntityType) -> list[Any]:
        return []

    def format_key(self, entity: EntityType, row: dict[str, Any]) -> str:
        if len(entity.key) == 1:
            return str(row.get(entity.key[0]))
        return super().format_key(entity, row)

    # ---- options and paging -----------------------------------------------------------------------
    def check_options(self, args: dict[str, str]) -> None:
        if "$search" in args:
            raise BadRequest("The query parameter $search is not supported.", "0x80060888")

    def check_expand(self, item: ExpandItem) -> None:
        if item.skip is not None:
            raise BadRequest("The query parameter $skip is not supported inside $expand.", "0x80060888")

    def cap_count(self, total: int) -> int:
        return min(total, 5000)

    def page_size(self, state: RequestState) -> int:
        requested = state.prefer.get("odata.maxpagesize")
        if requested is None:
            return self.max_page_size
        try:
            size = int(requested)
        except ValueError:
            raise BadRequest(f"The odata.maxpagesize preference '{requested}' is not a number.", "0x80060888") from None
        size = max(1, min(size, self.max_page_size))
        state.applied.append(f"odata.maxpagesize={size}")
        return size

    def top_ignored_with_paging(self, state: RequestState) -> bool:
        return "odata.maxpagesize" in state.prefer

    def page_offset(self, state: RequestState, options: QueryOptions) -> int:
        token = state.args.get("$skiptoken")
        if not token:
            return 0
        match = re.search(r'pagingcookie="(\d+)"', html.unescape(token)) or re.search(
            r"pagingcookie=%22(\d+)%22", token
        )
        if not match:
            raise BadRequest("The $skiptoken is not valid.", "0x80060888")
        return int(match.group(1))

    def next_link(self, state: RequestState, offset: int, page_size: int) -> str:
        page = offset // max(page_size, 1) + 1
        cookie = f'<cookie pagenumber="{page}" pagingcookie="{offset}" istracking="False" />'
        args = {k: v for k, v in state.args.items() if k != "$skiptoken"}
        args["$skiptoken"] = cookie
        return f"{state.base_url}{state.path}?{query_string(args)}"

    def effective_select(self, entity: EntityType, select: list[str] | None) -> list[str] | None:
        if select is None:
            return None
        out = list(select)
        for key in entity.key:
            if key not in out:
                out.append(key)
        if (
            "_transactioncurrencyid_value" in entity.properties
            and "_transactioncurrencyid_value" not in out
            and any(entity.properties[n].type == m.DECIMAL and (entity.properties[n].scale or 0) == 4 for n in select)
        ):
            out.append("_transactioncurrencyid_value")
        return out

    # ---- rows -------------------------------------------------------------------------------------
    def serialize(
        self,
        entity: EntityType,
        row: dict[str, Any],
        select: list[str] | None,
        annotations: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        out = super().serialize(entity, row, select, annotations)
        if select is None:
            out["versionnumber"] = row.get(ROWVERSION)
        if annotations:
            for name in list(out):
                prop = entity.properties.get(name)
                if prop is None:
                    continue
                formatted = self.formatted(prop, row.get(name))
                if formatted is not None:
                    out[name + FORMATTED] = formatted
        return out

    def formatted(self, prop: Property, value: Any) -> str | None:
        if value is None or prop.lookup is not None:
            return None
        if prop.enum is not None:
            return prop.enum.name_of(value)
        if prop.type == m.BOOLEAN:
            return "Yes" if value else "No"
        if prop.type == m.DECIMAL and (prop.scale or 0) == 4:
            return f"${decimal.Decimal(value):,.2f}"
        if prop.type in (m.DECIMAL, m.DOUBLE, m.INT32, m.INT64) and prop.name not in ("statecode", "statuscode"):
            return f"{value:,}" if not isinstance(value, decimal.Decimal) else f"{value:,.2f}"
        if isinstance(value, dt.datetime):
            return f"{value.month}/{value.day}/{value.year} {value.strftime('%I:%M %p').lstrip('0')}"
        return None

    def annotate(
        self,
        service: ODataService,
        entity: EntityType,
        rows: list[dict[str, Any]],
        rendered: list[dict[str, Any]],
        select: list[str] | None,
    ) -> None:
        """Lookup annotations: the target's logical name, the navigation property and its primary name."""
        for name, prop in entity.properties.items():
            if prop.lookup is None or (select is not None and name not in select):
                continue
            navs = [n for n in entity.navigations.values() if n.owns_fk and n.pairs[0][0] == name]
            if not navs:
                continue
            for row, out in zip(rows, rendered):
                value = row.get(name)
                if value is None:
                    continue
                nav = navs[0]
                for candidate in navs:
                    if all(row.get(k) == v for k, v in candidate.local_condition.items()):
                        nav = candidate
                        break
                target = service.model.entities[nav.target]
                out[name + LOOKUP_LOGICAL] = target.name
                out[name + ASSOCIATED_NAV] = nav.name
                if target.primary_name:
                    related = service.store.find(target.name, {nav.pairs[0][1]: value}, limit=1)
                    if related:
                        out[name + FORMATTED] = related[0].get(target.primary_name)

    # ---- writes -----------------------------------------------------------------------------------
    def check_odata_annotation(self, entity: EntityType, name: str, value: Any) -> None:
        if name == "@odata.type" and isinstance(value, str):
            if value.lstrip("#") != self.type_label(entity):
                raise BadRequest(
                    f"The type '{value}' in the payload does not match the entity set's type "
                    f"'{self.type_label(entity)}'.",
                    "0x80048d19",
                )

    def complete_values(
        self, entity: EntityType, values: dict[str, Any], state: RequestState, *, creating: bool
    ) -> None:
        return None

    def lookup_write(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(
            f"Invalid property '{name}' was found in entity '{self.type_label(entity)}'. "
            "Lookup columns are read-only: write them through their navigation property with "
            "@odata.bind.",
            "0x80048d19",
        )

    def unknown_property(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(f"Invalid property '{name}' was found in entity '{self.type_label(entity)}'.", "0x0")

    def malformed_json(self, detail: str) -> SandboxError:
        return BadRequest(f"Error in the request payload: {detail}", "0x80048d19")

    def created_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState
    ) -> Response:
        url = self.entity_url(state.base_url, entity, row)
        if state.prefer.get("return") == "representation":
            state.applied.append("return=representation")
            options = service.parse_options(entity, state)
            body = {"@odata.context": service.context_url(state, entity, options.select, "/$entity")}
            body.update(service.render_rows(entity, [row], options, state)[0])
            response = service._json(body, status=201)
        else:
            response = Response(status=204)
        response.headers["OData-EntityId"] = url
        response.headers["Location"] = url
        response.headers["ETag"] = self.etag(row)
        return response

    def created_response_renders_row(self, state: RequestState) -> bool:
        # Only ``Prefer: return=representation`` shows the row; otherwise its URL and etag alone.
        return state.prefer.get("return") == "representation"

    def upserted_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState, *, created: bool
    ) -> Response:
        url = self.entity_url(state.base_url, entity, row)
        if state.prefer.get("return") == "representation":
            state.applied.append("return=representation")
            options = service.parse_options(entity, state)
            body = {"@odata.context": service.context_url(state, entity, options.select, "/$entity")}
            body.update(service.render_rows(entity, [row], options.__class__(select=options.select), state)[0])
            response = service._json(body, status=201 if created else 200)
        else:
            response = Response(status=204)
        response.headers["OData-EntityId"] = url
        response.headers["ETag"] = self.etag(row)
        return response

    # ---- special resources --------------------------------------------------------------------------
    def special(
        self, service: ODataService, method: str, segments: list[Segment], state: RequestState
    ) -> Response | None:
        head = segments[0]
        if head.name == "EntityDefinitions":
            if method != "GET":
                raise BadRequest("EntityDefinitions are read-only here.", "0x80060888")
            return self._entity_definitions(service, segments, state)
        if head.name in ("WhoAmI", f"{NAMESPACE}.WhoAmI"):
            if method != "GET":
                raise NotFound(
                    "No HTTP resource was found that matches the request URI for WhoAmI (it is a function: use GET).",
                    "0x80060888",
                )
            return service._json(self.who_am_i(service, state))
        if head.name == "RelationshipDefinitions":
            if method != "GET":
                raise BadRequest("RelationshipDefinitions are read-only here.", "0x80060888")
            return self._relationship_definitions(service, segments, state)
        if head.name in ("RetrieveMetadataChanges", f"{NAMESPACE}.RetrieveMetadataChanges") and len(segments) == 1:
            if method != "GET":
                raise NotFound(
                    "No HTTP resource was found that matches the request URI for "
                    "RetrieveMetadataChanges (it is a function: use GET).",
                    "0x80060888",
                )
            return self._retrieve_metadata_changes(service, head, state)
        if head.name in ("BulkDelete", f"{NAMESPACE}.BulkDelete") and len(segments) == 1:
            if method != "POST":
                raise NotFound(
                    "No HTTP resource was found that matches the request URI for BulkDelete "
                    "(it is an action: use POST).",
                    "0x80060888",
                )
            return self._bulk_delete(service, state)
        return None

    # ---- FetchXML and other query parameters --------------------------------------------------------
    def collection_query(
        self, service: ODataService, entity: EntityType, state: RequestState, nested: bool
    ) -> Response | None:
        """``?fetchXml=`` runs FetchXML; ``?sql=``, ``?savedQuery=``, ``?userQuery=`` are refused (501)
        rather than ignored, since ignoring them would answer with every row of the table."""
        for name, what in (
            ("sql", "The Dataverse SQL endpoint (?sql=)"),
            ("savedQuery", "Saved views (?savedQuery=)"),
            ("userQuery", "Personal views (?userQuery=)"),
        ):
            if name in state.args:
                raise NotImplementedYet(
                    f"{what} is not supported by the sandbox; query with $filter/$select or fetchXml instead."
                )
        if "fetchXml" not in state.args:
            return None
        if nested:
            raise BadRequest("fetchXml can only be sent to an entity set.", "0x80060888")
        return self._fetch_xml(service, entity, state)

    def _fetch_xml(self, service: ODataService, entity: EntityType, state: RequestState) -> Response:
        from sandbox.odata.options import parse_orderby
        from sandbox.odata.service import QueryOptions

        fetch = dvquery.parse_fetchxml(state.args["fetchXml"], service.model, entity)
        query = service.base_query(entity, QueryOptions(filter=fetch.filter), state)
        body: dict[str, Any] = {"@odata.context": service.context_url(state, entity, fetch.select)}
        if fetch.total_count and _annotation_wanted(state, f"{NAMESPACE}.totalrecordcount"):
            total = (
                service.db.connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0
            )
            body[f"@{NAMESPACE}.totalrecordcount"] = min(total, 5000)
            body[f"@{NAMESPACE}.totalrecordcountlimitexceeded"] = total > 5000
        table = entity.table
        assert table is not None
        orders = parse_orderby(fetch.orderby, entity, service.model, self.filter_dialect)
        query = query.order_by(*orders, *[table.c[k] for k in entity.key], table.c[ROWID])
        if fetch.top is not None:
            limit, offset = fetch.top, 0
        else:
            limit = max(1, min(fetch.count or self.max_page_size, self.max_page_size))
            offset = (fetch.page - 1) * limit
        rows = [dict(r._mapping) for r in service.db.connection.execute(query.offset(offset).limit(limit + 1))]
        more = fetch.top is None and len(rows) > limit
        rows = rows[:limit]
        if more and _annotation_wanted(state, f"{NAMESPACE}.fetchxmlpagingcookie"):
            key = entity.key[0]
            body[f"@{NAMESPACE}.fetchxmlpagingcookie"] = dvquery.paging_cookie(
                fetch.page, str(rows[0][key]), str(rows[-1][key]), key
            )
        if _annotation_wanted(state, f"{NAMESPACE}.morerecords"):
            body[f"@{NAMESPACE}.morerecords"] = more
        select = self.effective_select(entity, fetch.select)
        formatted = _annotation_wanted(state, FORMATTED[1:])
        rendered = [self.serialize(entity, row, select, formatted) for row in rows]
        if formatted or _annotation_wanted(state, LOOKUP_LOGICAL[1:]):
            self.annotate(service, entity, rows, rendered, select)
        # FetchXML, unlike OData, leaves out the columns whose value is null.
        body["value"] = [{k: v for k, v in item.items() if v is not None} for item in rendered]
        return service._json(body)

    # ---- BulkDelete ---------------------------------------------------------------------------------
    def _bulk_delete(self, service: ODataService, state: RequestState) -> Response:
        """Delete the rows the ``QuerySet`` QueryExpressions select and answer with a ``JobId``.

        Dataverse runs the job in the background; the sandbox deletes at once, in one transaction, through
        the store (so rules and change tracking see every delete). A row a rule refuses to delete fails the
        whole call with that rule's error instead of being reported in a job log.
        """
        body = service._body()
        query_set = body.get("QuerySet")
        if not isinstance(query_set, list) or not query_set:
            raise BadRequest("The parameter 'QuerySet' must be a non-empty array of QueryExpression.", "0x80040203")
        for required in (
            "JobName",
            "SendEmailNotification",
            "ToRecipients",
            "CCRecipients",
            "RecurrencePattern",
            "StartDateTime",
        ):
            if required not in body:
                raise BadRequest(
                    f"Request message has unresolved parameters: '{required}' is required by BulkDelete.", "0x80040203"
                )
        from sandbox.odata.service import QueryOptions

        with service.db.transaction():
            for query in query_set:
                entity, filter_text = dvquery.query_expression(query, service.model)
                if entity.read_only:
                    raise BadRequest(f"The entity '{entity.name}' is read-only.", "0x80040203")
                select = service.base_query(entity, QueryOptions(filter=filter_text), state)
                for row in [dict(r._mapping) for r in service.db.connection.execute(select)]:
                    service.store.delete(entity.alias_of or entity.name, row, identity=state.identity, via_api=True)
        return service._json(
            {"@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.BulkDeleteResponse", "JobId": str(uuid.uuid4())}
        )

    # ---- RetrieveMetadataChanges ----------------------------------------------------------------------
    def _retrieve_metadata_changes(self, service: ODataService, head: Segment, state: RequestState) -> Response:
        """``RetrieveMetadataChanges(Query=@p1)`` with an EntityQueryExpression: the entities its criteria
        select (conditions on entity properties such as ``LogicalName``), projected to its
        ``Properties``, with ``Attributes`` filtered and projected by its ``AttributeQuery``."""
        query = _function_json_parameter(head, state, "Query")
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
        return service._json(
            {
                "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.RetrieveMetadataChangesResponse",
                "EntityMetadata": found,
                "ServerVersionStamp": "1!" + dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S"),
                "DeletedMetadata": None,
            }
        )

    def who_am_i(self, service: ODataService, state: RequestState) -> dict[str, Any]:
        def first_id(entity_name: str, fallback: str) -> str:
            entity = service.model.entities.get(entity_name)
            if entity is not None:
                with service.db.transaction():
                    rows = service.store.find(entity_name, limit=1)
                if rows:
                    return str(rows[0][entity.key[0]])
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{fallback}"))

        return {
            "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.WhoAmIResponse",
            "BusinessUnitId": first_id("businessunit", "businessunit"),
            "UserId": first_id("systemuser", "systemuser"),
            "OrganizationId": first_id("organization", "organization"),
        }

    def definitions(
        self, service: ODataService, with_attributes: bool = False, with_relationships: bool = False
    ) -> list[dict[str, Any]]:
        if with_attributes or with_relationships:
            return entitydefs.entity_definitions(
                service.model, include_attributes=with_attributes, include_relationships=with_relationships
            )
        if self._definitions is None:
            self._definitions = entitydefs.entity_definitions(service.model)
        return self._definitions

    def _entity_definitions(self, service: ODataService, segments: list[Segment], state: RequestState) -> Response:
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
                raise NotFound(f"Resource not found for the segment '{segments[1].name}'.", "0x8006088a")
            items = entitydefs.filter_definitions(defs, state.args.get("$filter"), select, expand)
            return service._json({"@odata.context": context, "value": items})
        match = entitydefs.find_by_key(defs, head.args)
        rest = segments[1:]
        if not rest:
            return service._json({"@odata.context": context + "/$entity", **entitydefs.project(match, select, expand)})
        sub = rest[0]
        logical = match["LogicalName"]
        if sub.name == "Attributes":
            attrs = entitydefs.attributes(service.model, logical)
            cast = next((s.name for s in rest[1:] if s.name.startswith(NAMESPACE)), None)
            attrs = entitydefs.attributes_of_type(attrs, cast)
            if sub.args is not None:
                attribute = entitydefs.find_by_key(attrs, sub.args, kind="AttributeMetadata")
                return service._json(
                    {
                        "@odata.context": f"{context}('{logical}')/Attributes/$entity",
                        **entitydefs.project(attribute, select, expand),
                    }
                )
            attrs = entitydefs.filter_definitions(attrs, state.args.get("$filter"), select, expand)
            return service._json({"@odata.context": f"{context}('{logical}')/Attributes", "value": attrs})
        if sub.name == "Keys":
            return service._json({"@odata.context": f"{context}('{logical}')/Keys", "value": match.get("Keys", [])})
        if sub.name in entitydefs.RELATIONSHIP_NAVIGATIONS:
            items = entitydefs.entity_relationships(service.model, logical, sub.name)
            if sub.args is not None:
                item = entitydefs.find_by_key(items, sub.args, kind="RelationshipMetadata")
                return service._json(
                    {
                        "@odata.context": f"{context}('{logical}')/{sub.name}/$entity",
                        **entitydefs.project(item, select, None),
                    }
                )
            items = entitydefs.filter_definitions(items, state.args.get("$filter"), select)
            return service._json({"@odata.context": f"{context}('{logical}')/{sub.name}", "value": items})
        raise NotFound(f"Resource not found for the segment '{sub.name}'.", "0x8006088a")

    def _relationship_definitions(
        self, service: ODataService, segments: list[Segment], state: RequestState
    ) -> Response:
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
            raise NotFound(f"Resource not found for the segment '{rest[-1].name}'.", "0x8006088a")
        if head.args is None:
            items = entitydefs.filter_definitions(items, state.args.get("$filter"), select)
            return service._json({"@odata.context": context, "value": items})
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
        return service._json({"@odata.context": context + "/$entity", **entitydefs.project(item, select, None)})

    # ---- bulk actions -------------------------------------------------------------------------------
    def generic_bound_action(
        self, service: ODataService, entity: EntityType, name: str, collection: bool
    ) -> Callable[[dict[str, Any], RequestState], Response] | None:
        if not collection or name not in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple"):
            return None

        def run(body: dict[str, Any], state: RequestState) -> Response:
            targets = body.get("Targets")
            if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
                raise BadRequest("The parameter 'Targets' must be an array of entity objects.", "0x80048d19")
            if len(targets) > 1000:
                raise BadRequest("The number of records in 'Targets' exceeds the limit of 1000.", "0x80048d19")
            pk = entity.key[0]
            if name == "CreateMultiple":
                rows = self._create_multiple(service, entity, targets, state)
                return service._json(
                    {
                        "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.CreateMultipleResponse",
                        "Ids": [row[pk] for row in rows],
                    }
                )
            if name == "UpsertMultiple":
                results = [
                    {"RecordCreated": created, "Target": self._typed_ref(entity, row)}
                    for row, created in self._upsert_multiple(service, entity, targets, state)
                ]
                return service._json(
                    {
                        "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.UpsertMultipleResponse",
                        "Results": results,
                    }
                )
            for target in targets:
                self._write_target(service, entity, name, target, state)
            return Response(status=204)

        return run

    def _write_target(
        self, service: ODataService, entity: EntityType, name: str, target: dict[str, Any], state: RequestState
    ) -> tuple[dict[str, Any], bool]:
        """One Target of CreateMultiple, UpdateMultiple or UpsertMultiple written on its own: (row, created)."""
        target, key = self._body_and_key(service, entity, name, target, state)
        if key is None:
            if name == "UpdateMultiple":
                raise BadRequest(f"Each target of UpdateMultiple needs '{entity.key[0]}' or '@odata.id'.", "0x80048d19")
            return service.create_row(entity, target, state), True
        existing_row = service.find_row(entity, key, state)
        if existing_row is None:
            if name == "UpdateMultiple":
                raise service.dialect.not_found(entity, service.key_text(entity, key))
            return service.create_row(entity, target, state, url_key=key), True
        values, _ = service.values_from_body(entity, target, state, creating=False)
        return service.store.update(entity.name, existing_row, values, identity=state.identity, via_api=True), False

    def _body_and_key(
        self, service: ODataService, entity: EntityType, name: str, target: dict[str, Any], state: RequestState
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A Target's body (a copy, without ``@odata.type``, which must match, ``@odata.id`` and the key) and
        the key it names (None for a CreateMultiple, or a Target naming none)."""
        pk = entity.key[0]
        body = dict(target)
        self.check_odata_annotation(entity, "@odata.type", body.pop("@odata.type", self.type_label(entity)))
        reference = body.pop("@odata.id", None)
        if name == "CreateMultiple":
            return body, None
        if reference:
            if name == "UpsertMultiple":
                return body, self._key_from_reference(service, entity, reference, state)
            _, existing = service.resolve_reference(reference, state)  # UpdateMultiple: the row must exist
            return body, {pk: existing[pk]}
        if body.get(pk):
            return body, {pk: service.dialect.key_value(entity, entity.properties[pk], body.pop(pk))}
        return body, None

    def _create_multiple(
        self, service: ODataService, entity: EntityType, targets: list[dict[str, Any]], state: RequestState
    ) -> list[dict[str, Any]]:
        """The rows of a CreateMultiple: made in bulk when that gives exactly what Target after Target gives
        (else, e.g. to meet the first error, Target after Target)."""
        bodies: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] | None = None
        try:
            for target in targets:
                bodies.append(self._body_and_key(service, entity, "CreateMultiple", target, state)[0])
        except SandboxError:
            pass  # the loop below meets this error in its turn
        else:
            rows = service.create_rows_in_bulk(entity, bodies, state)
        if rows is None:
            rows = [self._write_target(service, entity, "CreateMultiple", target, state)[0] for target in targets]
        return rows

    def _upsert_multiple(
        self, service: ODataService, entity: EntityType, targets: list[dict[str, Any]], state: RequestState
    ) -> list[tuple[dict[str, Any], bool]]:
        """(row, created) for each Target of an UpsertMultiple, in order.

        Targets are taken in order as the row-by-row loop takes them, except that a run of Targets that
        create rows is held back and created in bulk just before the next update (or at the end); a run
        that cannot be created in bulk with exactly the same outcome is written Target after Target. An
        update, or a Target that cannot even be read, first lets the run before it be written, so writes
        and errors come in the loop's order.
        """
        done: list[tuple[dict[str, Any], bool]] = []
        run_targets: list[dict[str, Any]] = []
        run_bodies: list[dict[str, Any]] = []
        run_keys: list[dict[str, Any] | None] = []

        def flush() -> None:
            rows = service.create_rows_in_bulk(entity, run_bodies, state, url_keys=run_keys) if run_bodies else None
            if rows is None:
                done.extend(self._write_target(service, entity, "UpsertMultiple", t, state) for t in run_targets)
            else:
                done.extend((row, True) for row in rows)
            run_targets.clear()
            run_bodies.clear()
            run_keys.clear()

        # Reading a Target's body and key writes and reads nothing, so all are read first, and whether their
        # rows exist is asked in one go. An answer made stale by a write of this call (a row created just
        # before, a key changed) changes nothing: a Target wrongly held for a create fails the run's bulk
        # check and the run goes Target after Target; one wrongly sent alone is written as the upsert it is.
        parsed: list[tuple[dict[str, Any], dict[str, Any] | None] | None] = []
        for target in targets:
            try:
                parsed.append(self._body_and_key(service, entity, "UpsertMultiple", target, state))
            except SandboxError:
                parsed.append(None)  # the loop meets this error in its turn, after the run before it
        exists = service.row_exists_many(entity, (item[1] for item in parsed if item is not None), state)
        for target, item in zip(targets, parsed):
            if item is None:
                creates = False
            else:
                body, key = item
                creates = key is None or not exists(key)
            if creates:
                run_targets.append(target)
                run_bodies.append(body)
                run_keys.append(key)
                continue
            flush()
            done.append(self._write_target(service, entity, "UpsertMultiple", target, state))
        flush()
        return done

    def _key_from_reference(
        self, service: ODataService, entity: EntityType, reference: str, state: RequestState
    ) -> dict[str, Any]:
        text = reference.rsplit("/", 1)[-1]
        if "(" not in text:
            raise BadRequest(f"'{reference}' is not an entity reference.", "0x80048d19")
        return service.resolve_key(entity, text[text.index("(") + 1 : -1], state)

    def _typed_ref(self, entity: EntityType, row: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.type": f"#{self.type_label(entity)}", entity.key[0]: row[entity.key[0]]}

    # ---- change tracking ----------------------------------------------------------------------------
    def wants_change_tracking(self, state: RequestState) -> bool:
        return "odata.track-changes" in state.prefer or "$deltatoken" in state.args

    def change_tracking(self, service: ODataService, entity: EntityType, state: RequestState) -> Response:
        for option in ("$filter", "$orderby", "$expand", "$top"):
            if option in state.args:
                raise BadRequest(
                    f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.', "0x80060888"
                )
        if not entity.tracked:
            raise BadRequest(f"Change tracking is not enabled for entity '{entity.name}'.", "0x80060888")
        outbox = service.store.outbox
        if outbox is None:
            raise BadRequest("Change tracking is not available on this service.", "0x80060888")
        if "odata.track-changes" in state.prefer:
            state.applied.append("odata.track-changes")
        options = service.parse_options(entity, state)
        select = self.effective_select(entity, options.select)
        token = state.args.get("$deltatoken")
        latest = outbox.latest_seq(service.db)
        body: dict[str, Any]
        if token is None:
            rows = service.store.find(entity.name)
            body = {
                "@odata.context": service.context_url(state, entity, options.select),
                "value": [self.serialize(entity, r, select) for r in rows],
            }
        else:
            try:
                since = int(urllib.parse.unquote(token).split("!", 1)[0])
            except ValueError:
                raise BadRequest(f"The delta token '{token}' is not valid.", "0x80060888") from None
            changes = outbox.read(service.db, since, 1_000_000, {entity.name}, None)
            last_op: dict[str, str] = {}
            for change in changes:
                key = change["key"]
                last_op[str(key.get(entity.key[0]))] = change["operation"]
            values: list[dict[str, Any]] = []
            for key_value, operation in last_op.items():
                row = service.store.get(entity.name, {entity.key[0]: key_value})
                if row is not None:
                    values.append(self.serialize(entity, row, select))
                elif operation == "delete":
                    values.append(
                        {
                            "@odata.context": f"{state.base_url}$metadata#{entity.entity_set}/$deletedEntity",
                            "id": key_value,
                            "reason": "deleted",
                        }
                    )
            body = {"@odata.context": service.context_url(state, entity, options.select, "/$delta"), "value": values}
        stamp = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
        args = {k: v for k, v in state.args.items() if k not in ("$deltatoken", "$skiptoken")}
        args["$deltatoken"] = f"{latest}!{stamp}"
        body["@odata.deltaLink"] = f"{state.base_url}{entity.entity_set}?{query_string(args)}"
        return service._json(body)


def _annotation_wanted(state: RequestState, name: str) -> bool:
    """Whether ``Prefer: odata.include-annotations`` names ``name`` (``*`` and ``Namespace.*`` match)."""
    requested = state.prefer.get("odata.include-annotations")
    if not requested:
        return False
    for pattern in (part.strip().strip('"') for part in requested.split(",")):
        if pattern == "*" or pattern == name or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
            return True
    return False


def _function_json_parameter(segment: Segment, state: RequestState, name: str) -> dict[str, Any]:
    """A complex function parameter: ``Fn(Query=@p1)`` with ``@p1`` a JSON object in the query string."""
    import json

    from sandbox.odata.urls import split_args

    for arg in split_args(segment.args or ""):
        key, _, value = arg.partition("=")
        if key.strip() != name:
            continue
        value = value.strip()
        if value.startswith("@"):
            value = state.args.get(value, "")
        try:
            parsed = json.loads(value)
        except ValueError:
            raise BadRequest(f"The parameter '{name}' must be a JSON object.", "0x80040203") from None
        if not isinstance(parsed, dict):
            raise BadRequest(f"The parameter '{name}' must be a JSON object.", "0x80040203")
        return parsed
    raise BadRequest(f"Request message has unresolved parameters: '{name}' is required.", "0x80040203")


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


__all__ = ["DataverseDialect", "NAMESPACE"]
