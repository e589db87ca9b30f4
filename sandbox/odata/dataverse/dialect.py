"""The Dataverse Web API dialect (Dynamics 365 Sales): ``/api/data/v9.2/``.

GUID keys and alternate keys, ``@odata.bind`` / ``_x_value``, 204 + ``OData-EntityId`` on create,
PATCH as upsert, ``Prefer: odata.maxpagesize`` with ``$skiptoken`` paging (no ``$skip``), formatted-value
and lookup annotations, the ``{"error": {"code", "message"}}`` shape with HRESULT codes. What Dataverse
serves beside the entity sets is in :mod:`.endpoints`; FetchXML reads and change tracking in their modules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import BadRequest, NotFound, NotImplementedYet, SandboxError
from sandbox.odata import model as m
from sandbox.odata.batch import BatchDialect
from sandbox.odata.dataverse import codes
from sandbox.odata.dataverse import endpoints as dataverse_endpoints
from sandbox.odata.dataverse.aggregate import AGGREGATE_LIMIT, aggregate_query
from sandbox.odata.dataverse.changetracking import change_tracking, wants_change_tracking
from sandbox.odata.dataverse.fetchxml import fetch_xml
from sandbox.odata.dataverse.queryfunctions import QUERY_FUNCTIONS
from sandbox.odata.dataverse.wire import (
    ASSOCIATED_NAV,
    COUNT_LIMIT,
    FORMATTED,
    LOOKUP_LOGICAL,
    NAMESPACE,
    ROOTS,
    TOTAL_COUNT,
    TOTAL_COUNT_EXCEEDED,
    annotation_wanted,
    formatted_value,
    skiptoken,
    skiptoken_offset,
)
from sandbox.odata.dialect import Dialect
from sandbox.odata.endpoints import Endpoints
from sandbox.odata.model import ROWVERSION, EntityType, Property
from sandbox.odata.query import ExpandItem, FilterDialect, QueryOptions
from sandbox.odata.responses import json_response, no_content, query_string
from sandbox.odata.urls import is_guid

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState


class DataverseDialect(Dialect):
    """The hooks of the generic service, answered as the Dataverse Web API answers."""

    name = "dataverse"
    csdl_name = "dataverse"
    root = ROOTS[0]
    namespace = NAMESPACE
    allow_skip = False
    patch_upserts = True
    deep_insert = True
    enums_as_names = False
    filter_dialect = FilterDialect(
        case_insensitive=True,
        string_functions=True,
        wildcard_eq=False,
        enum_literals=False,
        query_functions=QUERY_FUNCTIONS,
        lambdas=True,
        entity_label=lambda e: f"{NAMESPACE}.{e.name}",
    )
    batch_dialect = BatchDialect(
        fail_outer_status=True,
        stop_on_error=True,
        changeset_failure_status=None,
        require_crlf=True,
        max_requests=1000,
        service_root=ROOTS[0],
    )

    def __init__(self, *, max_page_size: int = 5000, aggregate_limit: int = AGGREGATE_LIMIT) -> None:
        self.max_page_size = max_page_size
        #: the most rows a ``$apply`` or aggregate FetchXML query may read
        self.aggregate_limit = aggregate_limit

    def roots(self) -> list[str]:
        return list(ROOTS)

    def register_endpoints(self, endpoints: Endpoints) -> None:
        dataverse_endpoints.register(endpoints)

    # ---- keys -------------------------------------------------------------------------------------
    def invalid_key(self, entity: EntityType) -> SandboxError:
        label = self.type_label(entity)
        return BadRequest(
            f"The key in the request URI is not valid for resource '{label}'. Ensure that the "
            f"names and number of key properties match the declared or alternate key properties "
            f"for the resource '{label}'.",
            codes.QUERY_SYNTAX,
        )

    def key_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        if prop.type == m.GUID:
            if not isinstance(value, str) or not is_guid(value):
                raise BadRequest(
                    f"Bad Request - Error in query syntax: '{value}' is not a valid GUID for '{prop.name}'.",
                    codes.QUERY_SYNTAX,
                )
            return value.lower()
        return self.in_value(entity, prop, value)

    def format_key(self, entity: EntityType, row: dict[str, Any]) -> str:
        if len(entity.key) == 1:
            return str(row.get(entity.key[0]))
        return super().format_key(entity, row)

    # ---- values -----------------------------------------------------------------------------------
    def in_value(self, entity: EntityType, prop: Property, value: Any) -> Any:
        """As the shared conversion, with Dataverse's message for text over the column's MaxLength (400
        ``0x80044331``, PA ``org-service/web-service-error-codes``: StringLengthTooLong)."""
        if (
            type(value) is str
            and prop.max_length
            and prop.type == m.STRING
            and prop.enum is None
            and len(value) > prop.max_length
        ):
            raise BadRequest(
                f"A validation error occurred.  The length of the '{prop.name}' attribute of the '{entity.name}' "
                f"entity exceeded the maximum allowed length of '{prop.max_length}'.",
                codes.VALUE_OUT_OF_RANGE,
            )
        return super().in_value(entity, prop, value)

    # ---- options and paging -----------------------------------------------------------------------
    def check_options(self, args: dict[str, str]) -> None:
        # An option the service does not carry out is refused, never ignored (an ignored $apply answered
        # every raw row as if it were the aggregate): [MS-ODATA] 2.2.3.6.1 requires it. $search needs
        # Dataverse search, which the sandbox has not. $apply on an entity set is answered by
        # collection_query before the options get here: what reaches here is $apply on a single row or on a
        # related collection, which the sandbox does not aggregate.
        if "$search" in args:
            raise BadRequest("The query parameter $search is not supported.", codes.QUERY_SYNTAX)
        if "$apply" in args:
            raise BadRequest(
                "The query parameter $apply is supported on an entity set only (accounts?$apply=...).",
                codes.QUERY_SYNTAX,
            )

    def check_expand(self, item: ExpandItem) -> None:
        if item.skip is not None:
            raise BadRequest("The query parameter $skip is not supported inside $expand.", codes.QUERY_SYNTAX)

    def cap_count(self, total: int) -> int:
        return min(total, COUNT_LIMIT)

    def page_size(self, state: RequestState) -> int:
        requested = state.prefer.get("odata.maxpagesize")
        if requested is None:
            return self.max_page_size
        try:
            size = int(requested)
        except ValueError:
            raise BadRequest(
                f"The odata.maxpagesize preference '{requested}' is not a number.", codes.QUERY_SYNTAX
            ) from None
        size = max(1, min(size, self.max_page_size))
        state.applied.append(f"odata.maxpagesize={size}")
        return size

    def top_ignored_with_paging(self, state: RequestState) -> bool:
        # Observed on a tenant: `$top=3` with `odata.maxpagesize=2` gives 2 rows and no nextLink; the docs
        # disagree with each other (docs/reference/dataverse-web-api.md, "Paging").
        return False

    def top_ends_paging(self, state: RequestState) -> bool:
        return True

    def page_offset(self, state: RequestState, options: QueryOptions) -> int:
        token = state.args.get("$skiptoken")
        if not token:
            return 0
        return skiptoken_offset(token)

    def next_link(self, state: RequestState, offset: int, page_size: int) -> str:
        args = {k: v for k, v in state.args.items() if k != "$skiptoken"}
        args["$skiptoken"] = skiptoken(offset, page_size)
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
                formatted = formatted_value(prop, row.get(name))
                if formatted is not None:
                    out[name + FORMATTED] = formatted
        return out

    def honour_preferences(self, state: RequestState) -> None:
        # Echoed as sent, as Dataverse does: Preference-Applied: odata.include-annotations="*"
        requested = state.prefer.get("odata.include-annotations")
        if requested is not None:
            state.applied.append(f'odata.include-annotations="{requested}"')

    def collection_annotations(self, state: RequestState, total: int | None) -> dict[str, Any]:
        """``totalrecordcount`` / ``totalrecordcountlimitexceeded`` when the request asks for them: the count up
        to 5,000 with ``$count=true``, else -1 (PA ``webapi/query/count-rows``)."""
        out: dict[str, Any] = {}
        if annotation_wanted(state, TOTAL_COUNT[1:]):
            out[TOTAL_COUNT] = -1 if total is None else min(total, COUNT_LIMIT)
        if annotation_wanted(state, TOTAL_COUNT_EXCEEDED[1:]):
            out[TOTAL_COUNT_EXCEEDED] = total is not None and total > COUNT_LIMIT
        return out

    def annotate(
        self,
        service: ODataService,
        entity: EntityType,
        rows: list[dict[str, Any]],
        rendered: list[dict[str, Any]],
        select: list[str] | None,
        state: RequestState | None = None,
    ) -> None:
        """Lookup annotations (the target's logical name, the navigation property and its primary name), each
        only when ``Prefer: odata.include-annotations`` names it (``*`` and ``Namespace.*`` match); formatted
        values that :meth:`serialize` wrote are taken back out when they were not asked for."""
        wanted: Callable[[str], bool] = (
            functools.partial(annotation_wanted, state) if state is not None else (lambda _name: True)
        )
        formatted, logical, associated = wanted(FORMATTED[1:]), wanted(LOOKUP_LOGICAL[1:]), wanted(ASSOCIATED_NAV[1:])
        if not formatted:
            for out in rendered:
                for name in [n for n in out if n.endswith(FORMATTED)]:
                    del out[name]
        if not (formatted or logical or associated):
            return
        for name, prop in entity.properties.items():
            if prop.lookup is None or (select is not None and name not in select):
                continue
            navs = [n for n in entity.navigations.values() if n.owns_fk and n.pairs[0][0] == name]
            if not navs:
                continue
            for row, out in zip(rows, rendered, strict=True):
                value = row.get(name)
                if value is None:
                    continue
                nav = navs[0]
                for candidate in navs:
                    if all(row.get(k) == v for k, v in candidate.local_condition.items()):
                        nav = candidate
                        break
                target = service.model.entities[nav.target]
                if logical:
                    out[name + LOOKUP_LOGICAL] = target.name
                if associated:
                    out[name + ASSOCIATED_NAV] = nav.name
                if formatted and target.primary_name:
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
                    codes.PAYLOAD_INVALID,
                )

    def lookup_write(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(
            f"Invalid property '{name}' was found in entity '{self.type_label(entity)}'. "
            "Lookup columns are read-only: write them through their navigation property with "
            "@odata.bind.",
            codes.PAYLOAD_INVALID,
        )

    def unknown_property(self, entity: EntityType, name: str) -> SandboxError:
        return BadRequest(
            f"Invalid property '{name}' was found in entity '{self.type_label(entity)}'.", codes.UNSPECIFIED
        )

    def malformed_json(self, detail: str) -> SandboxError:
        return BadRequest(f"Error in the request payload: {detail}", codes.PAYLOAD_INVALID)

    def created_response(
        self, service: ODataService, entity: EntityType, row: dict[str, Any], state: RequestState
    ) -> Response:
        url = self.entity_url(state.base_url, entity, row)
        if state.prefer.get("return") == "representation":
            state.applied.append("return=representation")
            options = service.parse_options(entity, state)
            body = {"@odata.context": service.context_url(state, entity, options.select, "/$entity")}
            body.update(service.render_rows(entity, [row], options, state)[0])
            response = json_response(body, status=201)
        else:
            response = no_content()
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
            body.update(service.render_rows(entity, [row], QueryOptions(select=options.select), state)[0])
            response = json_response(body, status=201 if created else 200)
        else:
            response = no_content()
        response.headers["OData-EntityId"] = url
        response.headers["ETag"] = self.etag(row)
        return response

    # ---- reads in other query languages -------------------------------------------------------------
    def collection_query(
        self, service: ODataService, entity: EntityType, state: RequestState, nested: bool
    ) -> Response | None:
        """``?fetchXml=`` runs FetchXML and ``Prefer: odata.track-changes`` (or ``$deltatoken``) reads
        changes. ``?savedQuery=<id>`` and ``?userQuery=<id>`` run a view, and the sandbox holds none: the
        id names no row (404, as a deleted view would), and one that is no GUID is a 400. ``?sql=`` is
        refused (501). None is ignored, since that would answer with every row of the table."""
        if "sql" in state.args:
            raise NotImplementedYet(
                "The Dataverse SQL endpoint (?sql=) is not supported by the sandbox; query with "
                "$filter/$select or fetchXml instead."
            )
        for name, table in (("savedQuery", "savedquery"), ("userQuery", "userquery")):
            if name in state.args:
                view_id = state.args[name].strip().strip("{}")
                if not is_guid(view_id):
                    raise BadRequest(
                        "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
                        codes.INVALID_ARGUMENT,
                    )
                raise NotFound(
                    f"Entity '{table}' With Id = {view_id.lower()} Does Not Exist", codes.OBJECT_DOES_NOT_EXIST
                )
        if "fetchXml" in state.args:
            if nested:
                raise BadRequest("fetchXml can only be sent to an entity set.", codes.QUERY_SYNTAX)
            return fetch_xml(service, entity, state)
        if wants_change_tracking(state):
            return change_tracking(service, entity, state)
        if "$apply" in state.args and not nested:
            return aggregate_query(service, entity, state, self.aggregate_limit)
        return None

    # ---- errors -----------------------------------------------------------------------------------
    def error_body(self, error: SandboxError) -> dict[str, Any]:
        return {"error": {"code": error.code, "message": error.message}}

    def type_error(self, entity: EntityType, prop: Property, value: Any) -> SandboxError:
        return BadRequest(
            f"Cannot convert the literal '{value}' to the expected type '{prop.type}' "
            f"of property '{prop.name}' on type '{self.type_label(entity)}'.",
            codes.PAYLOAD_INVALID,
        )

    def not_found(self, entity: EntityType, key_text: str) -> SandboxError:
        return NotFound(f"Entity '{entity.name}' With Id = {key_text} Does Not Exist")

    def unknown_set(self, name: str) -> SandboxError:
        return NotFound(f"Resource not found for the segment '{name}'.", codes.SEGMENT_NOT_FOUND)
