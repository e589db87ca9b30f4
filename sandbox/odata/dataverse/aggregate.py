"""``GET <set>?$apply=...``: OData aggregation answered as Dataverse answers it
(``docs/reference/dataverse-web-api.md`` section 6a, from PA ``webapi/query/aggregate-data``).

- One JSON object per group under ``value``, in ``@odata.context`` ``$metadata#<set>``, without etags;
  a value that is null is left out of its object (as in the documented ``groupby`` answers).
- A property reached through a lookup is answered as ``<target>_<property>`` (``contact_fullname``).
- Formatted values (counts ``"8"``, money ``"$440,000.00"``, dates) only when the request asks for them.
- At most 50,000 rows may be aggregated: more is 400 ``0x8004e023`` "AggregateQueryRecordLimit exceeded.
  Cannot perform this operation." (PA ``fetchxml/aggregate-data``, "Limitations").
- ``groupby`` by a date and time column is not supported, nor ``$orderby`` by an aggregate ("The query node
  SingleValueOpenPropertyAccess is not supported."); ``$select`` and ``$expand`` do not combine with
  ``$apply``. ``$filter``, ``$orderby`` by a group property, ``$top`` and ``$count`` do.

The aggregation runs in SQL (:mod:`sandbox.odata.query.apply`): rows are counted and grouped by the
database, never loaded.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import BadRequest
from sandbox.odata import model as m
from sandbox.odata.dataverse import codes
from sandbox.odata.dataverse.wire import FORMATTED, annotation_wanted, formatted_value
from sandbox.odata.model import EntityType, Property
from sandbox.odata.query import QueryOptions, parse_int_option
from sandbox.odata.query.apply import ApplyPlan, apply_statement, input_count, parse_apply
from sandbox.odata.query.rewrite import substitute_aliases
from sandbox.odata.responses import json_response

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

#: the most rows one aggregate query may read (PA fetchxml/aggregate-data, "Limitations")
AGGREGATE_LIMIT = 50_000
#: the options that do not combine with ``$apply``
_REFUSED_WITH_APPLY = ("$select", "$expand", "$skiptoken")


def aggregate_query(service: ODataService, entity: EntityType, state: RequestState, limit: int) -> Response:
    """Answer ``?$apply=`` on ``entity``'s set with at most ``limit`` rows aggregated."""
    dialect = service.dialect
    filters = dialect.filter_dialect
    args = state.args
    for option in _REFUSED_WITH_APPLY:
        if option in args:
            raise BadRequest(f"The query option {option} is not supported with $apply.", codes.QUERY_SYNTAX)
    aliases = {name: value for name, value in args.items() if name.startswith("@")}
    text = substitute_aliases(args["$apply"], aliases) if "@" in args["$apply"] else args["$apply"]
    plan = parse_apply(text, entity, service.model, filters)
    if not plan.groups and not plan.aggregates:
        raise BadRequest("$apply with filter alone is not supported: use $filter.", codes.QUERY_SYNTAX)
    for group in plan.groups:
        if group.prop.type in (m.DATETIME, m.DATE):
            raise BadRequest(
                f"groupby with the date and time column '{group.prop.name}' is not supported.", codes.QUERY_SYNTAX
            )
    order = _order(args.get("$orderby"), plan)
    top = parse_int_option("$top", args.get("$top"))
    options = QueryOptions(filter=substitute_aliases(args["$filter"], aliases) if args.get("$filter") else None)
    rows = service.base_query(entity, options, state)
    connection = service.db.connection
    read = connection.execute(input_count(plan, entity, service.model, filters, rows)).scalar() or 0
    if read > limit:
        raise BadRequest(
            "AggregateQueryRecordLimit exceeded. Cannot perform this operation.", codes.AGGREGATE_RECORD_LIMIT
        )
    statement = apply_statement(plan, entity, service.model, filters, rows, order)
    cap = min(top, dialect.max_page_size) if top is not None else dialect.max_page_size
    results = connection.execute(statement.limit(cap)).all()
    body: dict[str, Any] = {"@odata.context": f"{state.base_url}$metadata#{entity.entity_set}"}
    if args.get("$count", "").lower() == "true":
        body["@odata.count"] = dialect.cap_count(len(results))
    body["value"] = render_groups(plan, results, dialect, annotation_wanted(state, FORMATTED[1:]))
    return json_response(body)


def render_groups(plan: ApplyPlan, results: Any, dialect: Any, formatted: bool) -> list[dict[str, Any]]:
    """The result rows as Dataverse answers them: values as JSON, nulls left out, formatted values on ask."""
    props: list[Property] = [
        g.prop if g.date_part is None else Property(g.name, m.INT32, label=g.date_part) for g in plan.groups
    ]
    for term in plan.aggregates:
        source = term.prop
        scale = source.scale if source is not None and term.method != "average" else None
        if term.method == "average" and source is not None and source.type == m.DECIMAL:
            scale = source.scale
        props.append(Property(term.alias, term.result_type, scale=scale, precision=None))
    names = plan.names
    out: list[dict[str, Any]] = []
    for result in results:
        item: dict[str, Any] = {}
        for name, prop, value in zip(names, props, result, strict=True):
            if value is None:
                continue
            value = _stored(prop, value)
            if formatted:
                text = formatted_value(prop, value)
                if text is not None:
                    item[name + FORMATTED] = text
            item[name] = dialect.out_value(prop, value)
        out.append(item)
    return out


def _stored(prop: Property, value: Any) -> Any:
    """A database aggregate as the Python value of its type (SQLite answers sums of decimals as floats and
    dates as text)."""
    if prop.type == m.DECIMAL and not isinstance(value, decimal.Decimal):
        return decimal.Decimal(str(value))
    if prop.type == m.DATETIME and isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if prop.type == m.DATE and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if prop.type in (m.INT32, m.INT64) and isinstance(value, float):
        return int(value)
    return value


def _order(text: str | None, plan: ApplyPlan) -> list[tuple[str, bool]]:
    """``$orderby`` over the grouped properties (by name as answered or as written in ``groupby``)."""
    if not text or not text.strip():
        return []
    by_path = {"/".join(g.path): g.name for g in plan.groups}
    by_path.update({g.name: g.name for g in plan.groups})
    aliases = {a.alias for a in plan.aggregates}
    order: list[tuple[str, bool]] = []
    for term in text.split(","):
        parts = term.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise BadRequest(f"Syntax error at position {max(text.find(term), 0)} in '{text}'.", codes.QUERY_SYNTAX)
        if parts[0] in aliases:
            raise BadRequest("The query node SingleValueOpenPropertyAccess is not supported.", codes.QUERY_SYNTAX)
        name = by_path.get(parts[0])
        if name is None:
            raise BadRequest(
                f"$orderby with $apply can only order by a grouped property; '{parts[0]}' is not one.",
                codes.QUERY_SYNTAX,
            )
        order.append((name, len(parts) == 2 and parts[1].lower() == "desc"))
    return order
