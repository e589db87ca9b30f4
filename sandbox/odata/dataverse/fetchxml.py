"""``?fetchXml=``: FetchXML reads of an entity set, answered as Dataverse answers them.

The FetchXML becomes OData ``$filter``/``$orderby`` text (:mod:`sandbox.odata.dataverse.querylanguages`),
so it runs through the same query layer as any OData read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response
from sqlalchemy.sql.util import ClauseAdapter

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.dataverse.aggregate import AGGREGATE_LIMIT, render_groups
from sandbox.odata.dataverse.fetchlinks import LinkBuilder
from sandbox.odata.dataverse.querylanguages import Caller, FetchQuery, paging_cookie, parse_fetchxml
from sandbox.odata.dataverse.wire import FORMATTED, LOOKUP_LOGICAL, NAMESPACE, annotation_wanted, formatted_value
from sandbox.odata.model import ROWID, EntityType
from sandbox.odata.query import QueryOptions, parse_orderby
from sandbox.odata.query.apply import apply_statement, input_count
from sandbox.odata.responses import json_response

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

#: the most rows ``totalrecordcount`` counts
TOTAL_COUNT_LIMIT = 5000


def fetch_xml(service: ODataService, entity: EntityType, state: RequestState) -> Response:
    """``GET <set>?fetchXml=<fetch .../>``: the rows the FetchXML selects, one page of them, with the
    paging cookie, more-records and total-count annotations the request asks for."""
    dialect = service.dialect
    fetch = parse_fetchxml(state.args["fetchXml"], service.model, entity, caller_of(service, state))
    query = service.base_query(entity, QueryOptions(filter=fetch.filter), state)
    if fetch.aggregate is not None:
        if fetch.links or fetch.where is not None:
            query = _joined_rows(service, entity, state, fetch, query)
        return _aggregate(service, entity, state, fetch, query)
    if fetch.links or fetch.where is not None:
        return _linked(service, entity, state, fetch, query)
    body = _body(service, entity, state, fetch, query)
    table = entity.table
    assert table is not None
    orders = parse_orderby(fetch.orderby, entity, service.model, dialect.filter_dialect)
    query = query.order_by(*orders, *[table.c[k] for k in entity.key], table.c[ROWID])
    _, rendered = _page(service, entity, state, fetch, query, body)
    # FetchXML, unlike OData, leaves out the columns whose value is null.
    body["value"] = [{k: v for k, v in item.items() if v is not None} for item in rendered]
    return json_response(body)


def _body(
    service: ODataService, entity: EntityType, state: RequestState, fetch: FetchQuery, query: sa.Select[Any]
) -> dict[str, Any]:
    """The answer's context, and the total-count annotations when the fetch and the request ask for them."""
    body: dict[str, Any] = {"@odata.context": service.context_url(state, entity, fetch.select)}
    if fetch.total_count and annotation_wanted(state, f"{NAMESPACE}.totalrecordcount"):
        total = service.db.connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0
        body[f"@{NAMESPACE}.totalrecordcount"] = min(total, TOTAL_COUNT_LIMIT)
        body[f"@{NAMESPACE}.totalrecordcountlimitexceeded"] = total > TOTAL_COUNT_LIMIT
    return body


def _page(
    service: ODataService,
    entity: EntityType,
    state: RequestState,
    fetch: FetchQuery,
    query: sa.Select[Any],
    body: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One page of ``query`` (``top``, or ``count`` and ``page``), the paging annotations added to ``body``: the
    rows as read and as rendered (the entity's columns, annotated as the request asks)."""
    dialect = service.dialect
    if fetch.top is not None:
        limit, offset = fetch.top, 0
    else:
        limit = max(1, min(fetch.count or dialect.max_page_size, dialect.max_page_size))
        offset = (fetch.page - 1) * limit
    rows = [dict(r._mapping) for r in service.db.connection.execute(query.offset(offset).limit(limit + 1))]
    more = fetch.top is None and len(rows) > limit
    rows = rows[:limit]
    if more and annotation_wanted(state, f"{NAMESPACE}.fetchxmlpagingcookie"):
        key = entity.key[0]
        body[f"@{NAMESPACE}.fetchxmlpagingcookie"] = paging_cookie(
            fetch.page, str(rows[0][key]), str(rows[-1][key]), key
        )
    if annotation_wanted(state, f"{NAMESPACE}.morerecords"):
        body[f"@{NAMESPACE}.morerecords"] = more
    select = dialect.effective_select(entity, fetch.select)
    formatted = annotation_wanted(state, FORMATTED[1:])
    rendered = [dialect.serialize(entity, row, select, formatted) for row in rows]
    if formatted or annotation_wanted(state, LOOKUP_LOGICAL[1:]):
        dialect.annotate(service, entity, rows, rendered, select, state)
    return rows, rendered


def _joined_rows(
    service: ODataService, entity: EntityType, state: RequestState, fetch: FetchQuery, query: sa.Select[Any]
) -> sa.Select[Any]:
    """The entity's rows joined to the fetch's links (one per joined combination, as Dataverse aggregates them)
    and filtered by conditions on linked tables, for an aggregate query whose links only filter."""
    query, _ = _join(LinkBuilder(service, state), entity, fetch, query, returning=False)
    return query


def _join(
    builder: LinkBuilder, entity: EntityType, fetch: FetchQuery, query: sa.Select[Any], *, returning: bool
) -> tuple[sa.Select[Any], Any]:
    """``query`` joined to the fetch's links and filtered by its conditions on them; and the links' plan."""
    plan = builder.plan(entity, fetch.links, returning=returning)
    table = entity.table
    assert table is not None
    query = query.select_from(plan.from_clause).where(*plan.conditions)
    if fetch.where is not None:
        clause = builder.condition(fetch.where, entity, table, plan)
        if clause is not None:
            query = query.where(clause)
    return query, plan


def _linked(
    service: ODataService, entity: EntityType, state: RequestState, fetch: FetchQuery, query: sa.Select[Any]
) -> Response:
    """A FetchXML read with ``<link-entity>`` joins or conditions on linked tables (:mod:`.fetchlinks`): the
    entity's columns, then each link's as ``alias.attribute``, one row per joined combination."""
    dialect = service.dialect
    builder = LinkBuilder(service, state)
    query, plan = _join(builder, entity, fetch, query, returning=True)
    table = entity.table
    assert table is not None
    query = query.add_columns(*[out.column.label(out.label) for out in plan.outputs])
    body = _body(service, entity, state, fetch, query)
    orders: list[Any] = []
    for alias, name, descending in fetch.order_terms:
        if alias is None:
            orders.extend(
                parse_orderby(f"{name} desc" if descending else name, entity, service.model, dialect.filter_dialect)
            )
        else:
            linked, rows = plan.sources[alias]
            text = f"{name} desc" if descending else name
            orders.extend(
                ClauseAdapter(rows).traverse(order)
                for order in parse_orderby(text, linked, service.model, dialect.filter_dialect)
            )
    query = query.order_by(*orders, *plan.orders, *[table.c[k] for k in entity.key], *plan.tiebreak, table.c[ROWID])
    rows, rendered = _page(service, entity, state, fetch, query, body)
    formatted = annotation_wanted(state, FORMATTED[1:])
    logical = annotation_wanted(state, LOOKUP_LOGICAL[1:])
    for row, item in zip(rows, rendered, strict=True):
        for out in plan.outputs:
            value = row.get(out.label)
            if value is None:
                continue
            item[out.name] = dialect.out_value(out.prop, value)
            shown = formatted_value(out.prop, value) if formatted else None
            if shown is not None:
                item[out.name + FORMATTED] = shown
            if logical and out.prop.lookup is not None:
                nav = out.entity.navigations.get(out.prop.lookup)
                if nav is not None:
                    item[out.name + LOOKUP_LOGICAL] = nav.target
    # FetchXML, unlike OData, leaves out the columns whose value is null.
    body["value"] = [{k: v for k, v in item.items() if v is not None} for item in rendered]
    return json_response(body)


def _aggregate(
    service: ODataService, entity: EntityType, state: RequestState, fetch: FetchQuery, rows: Any
) -> Response:
    """An aggregate FetchXML query: the groups and aggregates by alias, computed in SQL like ``$apply``, with at
    most the service's aggregate limit of rows (or a lower ``aggregatelimit``) read."""
    plan = fetch.aggregate
    assert plan is not None
    dialect = service.dialect
    filters = dialect.filter_dialect
    limit = getattr(dialect, "aggregate_limit", AGGREGATE_LIMIT)
    if fetch.aggregate_limit is not None:
        limit = min(limit, fetch.aggregate_limit)
    connection = service.db.connection
    read = connection.execute(input_count(plan, entity, service.model, filters, rows)).scalar() or 0
    if read > limit:
        raise BadRequest(
            "AggregateQueryRecordLimit exceeded. Cannot perform this operation.", codes.AGGREGATE_RECORD_LIMIT
        )
    statement = apply_statement(plan, entity, service.model, filters, rows, fetch.aggregate_order)
    cap = fetch.top if fetch.top is not None else dialect.max_page_size
    results = connection.execute(statement.limit(cap)).all()
    body = {
        "@odata.context": f"{state.base_url}$metadata#{entity.entity_set}",
        "value": render_groups(plan, results, dialect, annotation_wanted(state, FORMATTED[1:])),
    }
    return json_response(body)


def caller_of(service: ODataService, state: RequestState) -> Caller:
    """The caller's systemuser (the one whose ``domainname`` is the caller's identity, else the first, as rows
    the caller creates are owned) and its business unit."""
    users = service.model.entities.get("systemuser")
    if users is None or "domainname" not in users.properties:
        return Caller(None, None)
    found = service.store.find("systemuser", {"domainname": state.identity}, limit=1) or service.store.find(
        "systemuser", limit=1
    )
    if not found:
        return Caller(None, None)
    user = found[0]
    return Caller(str(user["systemuserid"]), user.get("_businessunitid_value"))
