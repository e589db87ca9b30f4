"""Dataverse's other query languages, translated to the OData text the shared query layer already runs.

Dataverse clients do not only send OData ``$filter``: ``GET <set>?fetchXml=<fetch .../>`` is how the
JavaScript client's ``fetch``/``fetchAll`` and the Python client's ``query.fetchxml`` query, and the
Python client's ``records.delete(table, [ids])`` sends ``POST BulkDelete`` whose ``QuerySet`` holds
``QueryExpression`` objects. Both are turned into a ``$filter`` / ``$orderby`` string here, so they get
exactly the semantics (case-insensitive strings, LIKE wildcards, query functions) of the OData path.

Supported FetchXML: ``<fetch top count page paging-cookie returntotalrecordcount distinct>`` with one
``<entity>`` holding ``<attribute>`` / ``<all-attributes/>``, ``<order attribute descending>`` and nested
``<filter type="and|or">`` of ``<condition attribute operator value>`` (``<value>`` children for ``in``,
``between``...). The comparison operators, ``like`` / ``begins-with`` / ``ends-with`` (and their
``not-`` forms), ``null`` / ``not-null``, ``in`` / ``not-in``, ``between`` and the date operators
(``today``, ``last-x-days``, ``on-or-after``...) are understood. Aggregate queries (``aggregate="true"``
with ``groupby``/``aggregate`` attributes, ``dategrouping`` by year, quarter, month, week or day,
``<order alias>``, ``aggregatelimit``) run as the same SQL aggregation as ``$apply``. ``eq-userid`` and
``eq-businessid`` (and their ``ne-`` forms) compare with the caller (:class:`Caller`). ``<link-entity>``
joins and ``entityname`` conditions are parsed into :mod:`.fetchlinks` trees; the hierarchy operators
(``under``...) and the fiscal ones become the query functions of :mod:`.hierarchy` and :mod:`.fiscal`. Fiscal
date groupings, grouping or aggregating linked columns and the documented operators the sandbox lacks are refused with 501,
never silently ignored; anything Dataverse itself would refuse is a 400 ``0x80041130``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import BadRequest, NotImplementedYet, SandboxError
from sandbox.odata import model as m
from sandbox.odata.dataverse import codes
from sandbox.odata.dataverse.fetchlinks import (
    EXISTS_TYPES,
    JOIN_TYPES,
    FilterLeaf,
    FilterNode,
    LinkEntity,
    logical_name,
    walk,
)
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.model import EntityType, Model, Property
from sandbox.odata.query.apply import AggregateTerm, ApplyPlan, GroupTerm

_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
_COMPARISONS = {"eq": "eq", "ne": "ne", "neq": "ne", "gt": "gt", "ge": "ge", "lt": "lt", "le": "le"}
#: FetchXML operators that are Dataverse query functions taking no value (PropertyName only)
_NO_VALUE_FUNCTIONS = {
    "today",
    "yesterday",
    "tomorrow",
    "last-seven-days",
    "next-seven-days",
    "this-week",
    "last-week",
    "next-week",
    "this-month",
    "last-month",
    "next-month",
    "this-year",
    "last-year",
    "next-year",
}
_FUNCTION_ALIASES = {
    "last-seven-days": "Last7Days",
    "next-seven-days": "Next7Days",
    # the hierarchy operators (PA ``query-hierarchical-data``): sandbox/odata/dataverse/hierarchy.py
    "under": "Under",
    "eq-or-under": "UnderOrEqual",
    "not-under": "NotUnder",
    "above": "Above",
    "eq-or-above": "AboveOrEqual",
}
#: fiscal operators without a value, with one (a count, a year or a period) and with two (period, year):
#: sandbox/odata/dataverse/fiscal.py
_FISCAL_NO_VALUE = {
    "this-fiscal-year",
    "this-fiscal-period",
    "next-fiscal-year",
    "next-fiscal-period",
    "last-fiscal-year",
    "last-fiscal-period",
}
_FISCAL_ONE_VALUE = {
    "last-x-fiscal-years",
    "last-x-fiscal-periods",
    "next-x-fiscal-years",
    "next-x-fiscal-periods",
    "in-fiscal-year",
    "in-fiscal-period",
}
_FISCAL_TWO_VALUES = {
    "in-fiscal-period-and-year",
    "in-or-before-fiscal-period-and-year",
    "in-or-after-fiscal-period-and-year",
}
_HIERARCHY_OPERATORS = {"under", "eq-or-under", "not-under", "above", "eq-or-above"}


# ---- attribute names and literals -------------------------------------------------------------------------


def property_for(entity: EntityType, logical_name: str) -> Property:
    """The property a logical attribute name means: ``name`` itself, or ``_x_value`` for lookup ``x``."""
    prop = entity.properties.get(logical_name)
    if prop is None or prop.hidden:
        prop = entity.properties.get(f"_{logical_name}_value")
    if prop is None or prop.hidden:
        raise BadRequest(
            f"'{entity.name}' entity doesn't contain attribute with Name = '{logical_name}'.", codes.ATTRIBUTE_NOT_FOUND
        )
    return prop


def literal(prop: Property, value: Any) -> str:
    """``value`` (text in FetchXML, JSON in a QueryExpression) as an OData literal for ``prop``."""
    if value is None:
        return "null"
    text = value if isinstance(value, str) else json.dumps(value)
    kind = prop.type
    if prop.enum is not None or kind in (m.INT32, m.INT64):
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", text.strip()):
            raise BadRequest(
                f"The value '{text}' is not a valid integer for attribute '{prop.name}'.", codes.INVALID_ARGUMENT
            )
        return text.strip()
    if kind in (m.DECIMAL, m.DOUBLE):
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+(\.\d+)?", text.strip()):
            raise BadRequest(
                f"The value '{text}' is not a valid number for attribute '{prop.name}'.", codes.INVALID_ARGUMENT
            )
        return text.strip()
    if kind == m.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return "true"
        if lowered in ("0", "false"):
            return "false"
        raise BadRequest(
            f"The value '{text}' is not a valid boolean for attribute '{prop.name}'.", codes.INVALID_ARGUMENT
        )
    if kind == m.GUID:
        match = _GUID.match(text.strip())
        if match is None:
            raise BadRequest(
                f"The value '{text}' is not a valid GUID for attribute '{prop.name}'.", codes.INVALID_ARGUMENT
            )
        return match.group(1).lower()
    if kind in (m.DATETIME, m.DATE):
        stripped = text.strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", stripped):
            raise BadRequest(
                f"The value '{text}' is not a valid date for attribute '{prop.name}'.", codes.INVALID_ARGUMENT
            )
        if kind == m.DATE:
            return stripped[:10]
        stripped = stripped.replace(" ", "T")
        if len(stripped) == 10:
            stripped += "T00:00:00Z"
        elif not re.search(r"(Z|[+-]\d{2}:?\d{2})$", stripped):
            stripped += "Z"
        return stripped
    return "'" + text.replace("'", "''") + "'"


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _function(
    name: str,
    prop: Property,
    values: list[str] | None = None,
    value: str | None = None,
    pair: tuple[str, str] | None = None,
) -> str:
    args = f"PropertyName='{prop.name}'"
    if value is not None:
        args += f",PropertyValue={_string(value)}"
    if pair is not None:
        args += f",PropertyValue1={_string(pair[0])},PropertyValue2={_string(pair[1])}"
    if values is not None:
        args += ",PropertyValues=[" + ",".join(json.dumps(v) for v in values) + "]"
    return f"{NAMESPACE}.{name}({args})"


def _like(prop: Property, pattern: str, negate: bool) -> str:
    """A SQL LIKE pattern as Dataverse's string functions (which keep ``%``/``_`` as wildcards)."""
    if prop.type != m.STRING:
        raise BadRequest(f"The like operator needs a string attribute, not '{prop.name}'.", codes.INVALID_ARGUMENT)
    if len(pattern) > 1 and pattern.startswith("%") and pattern.endswith("%"):
        text = f"contains({prop.name},{_string(pattern[1:-1])})"
    elif pattern.endswith("%"):
        text = f"startswith({prop.name},{_string(pattern[:-1])})"
    elif pattern.startswith("%"):
        text = f"endswith({prop.name},{_string(pattern[1:])})"
    else:
        text = f"{prop.name} eq {_string(pattern)}"
    return f"not ({text})" if negate else text


@dataclass(frozen=True)
class Caller:
    """Who runs a query, for the operators relative to the caller (``eq-userid``, ``eq-businessid``): the ids
    of the caller's systemuser and business unit (None when the organization has none)."""

    user_id: str | None
    business_unit_id: str | None


def condition(
    entity: EntityType, attribute: str, operator: str, values: list[Any], caller: Caller | None = None
) -> str:
    """One condition (FetchXML operator names; QueryExpression names are mapped to them first)."""
    prop = property_for(entity, attribute)
    op = operator.strip().lower()
    name = prop.name
    if op in ("eq-userid", "ne-userid", "eq-businessid", "ne-businessid") and caller is not None:
        return _caller_condition(entity, prop, op, caller)
    if op in ("eq-userteams", "eq-useroruserteams") and caller is not None:
        # The sandbox's records are owned by users only (no team owns a row), so "a team of the caller owns it"
        # holds for none, and "the caller or a team of theirs" is the caller.
        owned_by_caller = _caller_condition(entity, prop, "eq-userid", caller)
        return owned_by_caller if op == "eq-useroruserteams" else f"({owned_by_caller}) and {name} eq null"
    if op == "eq-userlanguage":
        # every user of the sandbox works in English (United States), language code 1033
        if prop.type != m.INT32:
            raise BadRequest(
                f"The condition operator '{operator}' needs a language code column, not '{attribute}'.",
                codes.INVALID_FETCHXML,
            )
        return f"{name} eq 1033"

    def single() -> Any:
        if len(values) != 1:
            raise BadRequest(
                f"The operator '{operator}' needs exactly one value for attribute '{attribute}'.",
                codes.INVALID_ARGUMENT,
            )
        return values[0]

    if op in _COMPARISONS:
        return f"{name} {_COMPARISONS[op]} {literal(prop, single())}"
    if op == "null":
        return f"{name} eq null"
    if op == "not-null":
        return f"{name} ne null"
    if op in ("like", "not-like"):
        return _like(prop, str(single()), op == "not-like")
    if op in ("begins-with", "not-begin-with"):
        return _like(prop, f"{single()}%", op == "not-begin-with")
    if op in ("ends-with", "not-end-with"):
        return _like(prop, f"%{single()}", op == "not-end-with")
    if op in ("in", "not-in"):
        if not values:
            raise BadRequest(
                f"The operator '{operator}' needs at least one value for attribute '{attribute}'.",
                codes.INVALID_ARGUMENT,
            )
        texts = [literal(prop, v) for v in values]
        joiner, compare = (" or ", "eq") if op == "in" else (" and ", "ne")
        return "(" + joiner.join(f"{name} {compare} {t}" for t in texts) + ")"
    if op in ("between", "not-between"):
        if len(values) != 2:
            raise BadRequest(
                f"The operator '{operator}' needs two values for attribute '{attribute}'.", codes.INVALID_ARGUMENT
            )
        low, high = (literal(prop, v) for v in values)
        text = f"({name} ge {low} and {name} le {high})"
        return f"not {text}" if op == "not-between" else text
    if op in ("contain-values", "not-contain-values"):
        # Only multi-select choice columns take these, and no table of the sandbox has one: Dataverse refuses
        # them on any other column too.
        raise BadRequest(
            f"The condition operator '{operator}' is valid only for a multi-select choice column; "
            f"'{attribute}' of '{entity.name}' is not one.",
            codes.INVALID_FETCHXML,
        )
    function = _FUNCTION_ALIASES.get(op) or "".join(part[:1].upper() + part[1:] for part in op.split("-"))
    if op in _NO_VALUE_FUNCTIONS or op in _FISCAL_NO_VALUE:
        return _function(function, prop)
    if op in _HIERARCHY_OPERATORS or op in _FISCAL_ONE_VALUE:
        return _function(function, prop, value=str(single()))
    if op in _FISCAL_TWO_VALUES:
        if len(values) != 2:
            raise BadRequest(
                f"The operator '{operator}' needs two values (a period and a year) for attribute '{attribute}'.",
                codes.INVALID_ARGUMENT,
            )
        return _function(function, prop, pair=(str(values[0]), str(values[1])))
    if re.fullmatch(r"(last|next|olderthan)-x-(hours|days|weeks|months|years|minutes)", op) or op in (
        "on",
        "on-or-after",
        "on-or-before",
    ):
        return _function(function, prop, value=str(single()))
    raise _unsupported_operator(operator)


def _caller_condition(entity: EntityType, prop: Property, op: str, caller: Caller) -> str:
    """``eq-userid``/``ne-userid`` on a lookup to a user (``ownerid``), ``eq-businessid``/``ne-businessid`` on a
    lookup to a business unit, compared with the caller's (PA ``fetchxml/reference/operators``)."""
    user = op.endswith("userid")
    wanted = "systemuser" if user else "businessunit"
    nav = entity.navigations.get(prop.lookup or "")
    if nav is None or nav.target != wanted:
        raise BadRequest(
            f"The condition operator '{op}' needs a lookup to a {wanted}; '{prop.name}' of '{entity.name}' is not one.",
            codes.INVALID_FETCHXML,
        )
    value = caller.user_id if user else caller.business_unit_id
    return f"{prop.name} {'eq' if op.startswith('eq-') else 'ne'} {value if value is not None else 'null'}"


#: every condition operator FetchXML documents (Microsoft's "condition element" reference); one the sandbox
#: does not carry out is a 501, any other text an invalid query (400), as Dataverse answers it
_DOCUMENTED_OPERATORS = frozenset(
    """eq ne gt ge lt le like not-like in not-in between not-between null not-null yesterday today tomorrow
    last-seven-days next-seven-days last-week this-week next-week last-month this-month next-month on
    on-or-before on-or-after last-year this-year next-year last-x-hours next-x-hours last-x-days next-x-days
    last-x-weeks next-x-weeks last-x-months next-x-months last-x-years next-x-years olderthan-x-minutes
    olderthan-x-hours olderthan-x-days olderthan-x-weeks olderthan-x-months olderthan-x-years eq-userid
    ne-userid eq-userteams eq-useroruserteams eq-useroruserhierarchy eq-useroruserhierarchyandteams
    eq-businessid ne-businessid eq-userlanguage this-fiscal-year this-fiscal-period next-fiscal-year
    next-fiscal-period last-fiscal-year last-fiscal-period last-x-fiscal-years last-x-fiscal-periods
    next-x-fiscal-years next-x-fiscal-periods in-fiscal-year in-fiscal-period in-fiscal-period-and-year
    in-or-before-fiscal-period-and-year in-or-after-fiscal-period-and-year begins-with not-begin-with ends-with
    not-end-with under eq-or-under not-under above eq-or-above contain-values not-contain-values""".split()
)


def _unsupported_operator(operator: str) -> SandboxError:
    """501 for a documented operator the sandbox does not emulate; 400 for text that is no operator."""
    if operator.strip().lower() in _DOCUMENTED_OPERATORS:
        return NotImplementedYet(f"The condition operator '{operator}' is not supported by the sandbox.")
    return BadRequest(f"The condition operator '{operator}' is not valid.", codes.INVALID_FETCHXML)


# ---- FetchXML ---------------------------------------------------------------------------------------------


@dataclass
class FetchQuery:
    """A parsed ``<fetch>``: what to select, filter and order, and how to page."""

    entity: EntityType
    select: list[str] | None
    filter: str | None
    orderby: str | None
    top: int | None
    count: int | None
    page: int
    total_count: bool
    #: an aggregate query (``<fetch aggregate="true">``): its groups and aggregates, else None
    aggregate: ApplyPlan | None = None
    #: the aggregate query's ``<order alias=...>``: (alias, descending)
    aggregate_order: list[tuple[str, bool]] = field(default_factory=list)
    #: ``aggregatelimit``: a lower limit of rows to aggregate than the service's
    aggregate_limit: int | None = None
    #: the ``<link-entity>`` trees under the entity (:mod:`.fetchlinks`)
    links: list[LinkEntity] = field(default_factory=list)
    #: the entity's filters when a condition names a link or a filter holds one (``filter`` is None then)
    where: FilterNode | None = None
    #: every order in document order: (link alias or None for the entity, property name, descending)
    order_terms: list[tuple[str | None, str, bool]] = field(default_factory=list)


def _int_attribute(element: ET.Element, name: str) -> int | None:
    text = element.get(name)
    if text is None or text == "":
        return None
    if not re.fullmatch(r"\d+", text.strip()):
        raise BadRequest(f"The fetch attribute '{name}' must be a whole number, not '{text}'.", codes.INVALID_ARGUMENT)
    return int(text)


def _true(element: ET.Element, name: str) -> bool:
    return (element.get(name) or "").strip().lower() in ("true", "1")


def parse_fetchxml(
    text: str, model: Model, expected: EntityType | None = None, caller: Caller | None = None
) -> FetchQuery:
    """Parse FetchXML for ``expected`` (the entity set it was sent to). Unsupported parts raise 501."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise BadRequest(f"Invalid XML in the fetchXml parameter: {exc}.", codes.INVALID_FETCHXML) from None
    if root.tag != "fetch":
        raise BadRequest("The fetchXml parameter must hold a <fetch> element.", codes.INVALID_FETCHXML)
    aggregate = ApplyPlan() if _true(root, "aggregate") else None
    aggregate_order: list[tuple[str, bool]] = []
    entities = root.findall("entity")
    if len(entities) != 1:
        raise BadRequest("A <fetch> element must hold exactly one <entity>.", codes.INVALID_FETCHXML)
    element = entities[0]
    entity = model.entities.get(element.get("name") or "")
    if entity is None:
        raise BadRequest(
            f"The entity with a name = '{element.get('name')}' was not found in the MetadataCache.",
            codes.METADATA_NOT_FOUND,
        )
    if expected is not None and entity.name != expected.name:
        raise BadRequest(
            f"The FetchXML entity '{entity.name}' does not match the entity set "
            f"'{expected.entity_set}' it was sent to.",
            codes.INVALID_ARGUMENT,
        )
    select: list[str] | None = []
    orders: list[str] = []
    order_terms: list[tuple[str | None, str, bool]] = []
    where = FilterNode("and")
    counter = [0]
    links = [
        _parse_link(child, entity, model, caller, counter, in_aggregate=aggregate is not None)
        for child in element
        if child.tag == "link-entity"
    ]
    aliases = {link.alias: link.entity for link in walk(links)}
    for child in element:
        tag = child.tag
        if tag == "all-attributes":
            select = None
        elif tag == "attribute" and aggregate is not None:
            _aggregate_attribute(entity, child, aggregate)
        elif tag == "attribute":
            if child.get("aggregate") or child.get("groupby"):
                raise BadRequest(
                    "An attribute with 'aggregate' or 'groupby' needs <fetch aggregate=\"true\">.",
                    codes.INVALID_FETCHXML,
                )
            name = property_for(entity, child.get("name") or "").name
            if select is not None and name not in select:
                select.append(name)
        elif tag == "order" and aggregate is not None:
            alias = child.get("alias")
            if not alias:
                raise BadRequest(
                    "An aggregate query orders by the alias of a grouped or aggregated attribute: <order alias=...>.",
                    codes.INVALID_FETCHXML,
                )
            aggregate_order.append((alias, _true(child, "descending")))
        elif tag == "order":
            if child.get("alias"):
                raise BadRequest("<order alias=...> is for aggregate queries only.", codes.INVALID_FETCHXML)
            link_alias = child.get("entityname")
            owner = entity if link_alias is None else aliases.get(link_alias)
            if owner is None:
                raise BadRequest(
                    f"No link-entity has the alias '{link_alias}' that an order names with entityname.",
                    codes.INVALID_FETCHXML,
                )
            name = property_for(owner, child.get("attribute") or "").name
            order_terms.append((link_alias, name, _true(child, "descending")))
            if link_alias is None:
                orders.append(f"{name} desc" if _true(child, "descending") else name)
        elif tag == "filter":
            where.parts.append(_filter_node(entity, child, model, caller, counter, aliases))
        elif tag == "link-entity":
            pass  # parsed above, before the filters that may name its alias
        else:
            raise BadRequest(f"The element '{tag}' is not valid inside <entity>.", codes.INVALID_FETCHXML)
    if select == []:
        select = [entity.key[0]]
    if aggregate is not None:
        if not aggregate.groups and not aggregate.aggregates:
            raise BadRequest(
                "An aggregate query needs at least one aggregate or groupby attribute.", codes.INVALID_FETCHXML
            )
        names = aggregate.names
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise BadRequest(f"The alias '{duplicate}' is used more than once.", codes.INVALID_FETCHXML)
        unknown = next((alias for alias, _ in aggregate_order if alias not in names), None)
        if unknown is not None:
            raise BadRequest(f"The order alias '{unknown}' names no attribute of the query.", codes.INVALID_FETCHXML)
    if aggregate is not None and any(link.attributes != [] for link in walk(links)):
        # links that only filter the aggregated rows are answered; grouping or aggregating a linked column is not
        raise NotImplementedYet(
            "Grouping or aggregating columns of a <link-entity> is not supported by the sandbox; aggregate the "
            "linked table with its own query."
        )
    linked = where.links_others()
    filter_text = None if linked else where.text() or None
    page = _int_attribute(root, "page") or 1
    return FetchQuery(
        entity=entity,
        select=select,
        filter=filter_text,
        orderby=",".join(orders) if orders else None,
        top=_int_attribute(root, "top"),
        count=_int_attribute(root, "count"),
        page=max(page, 1),
        total_count=_true(root, "returntotalrecordcount"),
        aggregate=aggregate,
        aggregate_order=aggregate_order,
        aggregate_limit=_int_attribute(root, "aggregatelimit"),
        links=links,
        where=where if linked else None,
        order_terms=order_terms,
    )


#: link types FetchXML documents that the sandbox does not carry out
_UNSUPPORTED_LINK_TYPES = {"all", "not all", "matchfirstrowusingcrossapply"}
_FILTER_LINK_TYPES = {"any", "not any", "all", "not all"}


def _parse_link(
    element: ET.Element,
    parent: EntityType,
    model: Model,
    caller: Caller | None,
    counter: list[int],
    in_filter: bool = False,
    in_aggregate: bool = False,
) -> LinkEntity:
    """One ``<link-entity name from to link-type alias>`` with its attributes, orders, filters and nested links
    (PA ``fetchxml/reference/link-entity``). ``counter`` numbers the links for their generated aliases."""
    counter[0] += 1
    name = element.get("name") or ""
    entity = model.entities.get(name)
    if entity is None:
        raise BadRequest(
            f"The entity with a name = '{name}' was not found in the MetadataCache.", codes.METADATA_NOT_FOUND
        )
    link_type = " ".join((element.get("link-type") or "inner").lower().split())
    if link_type in _UNSUPPORTED_LINK_TYPES:
        raise NotImplementedYet(f"The link-type '{link_type}' is not supported by the sandbox.")
    if link_type not in JOIN_TYPES + EXISTS_TYPES:
        raise BadRequest(f"The link-type '{link_type}' is not valid.", codes.INVALID_FETCHXML)
    if (link_type in _FILTER_LINK_TYPES) != in_filter:
        where = "inside a <filter>" if not in_filter else "directly under an <entity> or <link-entity>"
        raise BadRequest(f"A link-entity of link-type '{link_type}' is not valid {where}.", codes.INVALID_FETCHXML)
    from_name = element.get("from") or entity.key[0]
    from_prop = property_for(entity, from_name)
    to_prop = property_for(parent, element.get("to") or from_name)
    alias = element.get("alias") or f"{name}{counter[0]}"
    link = LinkEntity(entity, alias, from_prop, to_prop, link_type)
    for child in element:
        tag = child.tag
        if tag == "attribute":
            if (child.get("aggregate") or child.get("groupby")) and not in_aggregate:
                raise BadRequest(
                    "An attribute with 'aggregate' or 'groupby' needs <fetch aggregate=\"true\">.",
                    codes.INVALID_FETCHXML,
                )
            prop = property_for(entity, child.get("name") or "")
            if link.attributes is not None:
                link.attributes.append((child.get("alias") or f"{alias}.{logical_name(prop)}", prop))
        elif tag == "all-attributes":
            link.attributes = None
        elif tag == "order":
            prop = property_for(entity, child.get("attribute") or "")
            link.orders.append((prop.name, _true(child, "descending")))
        elif tag == "filter":
            node = _filter_node(entity, child, model, caller, counter, {})
            link.filter = node if link.filter is None else FilterNode("and", [link.filter, node])
        elif tag == "link-entity":
            link.links.append(_parse_link(child, entity, model, caller, counter, in_aggregate=in_aggregate))
        else:
            raise BadRequest(f"The element '{tag}' is not valid inside <link-entity>.", codes.INVALID_FETCHXML)
    return link


#: FetchXML's aggregate functions and what they are in the aggregation of :mod:`sandbox.odata.query.apply`
_FETCH_AGGREGATES = {
    "count": "count",
    "countcolumn": "countcolumn",
    "sum": "sum",
    "avg": "average",
    "min": "min",
    "max": "max",
}
#: ``dategrouping`` values the sandbox groups by (UTC); the fiscal ones are not emulated
_DATE_GROUPINGS = {"year", "quarter", "month", "week", "day"}


def _aggregate_attribute(entity: EntityType, element: ET.Element, plan: ApplyPlan) -> None:
    """One ``<attribute>`` of an aggregate query: a group (``groupby="true"``, optionally ``dategrouping``) or an
    aggregate (``aggregate="count|countcolumn|sum|avg|min|max"``, ``distinct`` for ``countcolumn``), each with
    its ``alias`` (PA ``fetchxml/aggregate-data``)."""
    prop = property_for(entity, element.get("name") or "")
    alias = element.get("alias")
    if not alias:
        raise BadRequest(
            f"The attribute '{element.get('name')}' of an aggregate query needs an alias.", codes.INVALID_FETCHXML
        )
    function = (element.get("aggregate") or "").strip().lower()
    if _true(element, "groupby"):
        if function:
            raise BadRequest(f"The attribute '{alias}' cannot both group and aggregate.", codes.INVALID_FETCHXML)
        grouping = (element.get("dategrouping") or "").strip().lower() or None
        if grouping is not None:
            if prop.type not in (m.DATETIME, m.DATE):
                raise BadRequest(f"dategrouping needs a date column, not '{prop.name}'.", codes.INVALID_FETCHXML)
            if grouping in ("fiscal-period", "fiscal-year"):
                raise NotImplementedYet(f"The fiscal dategrouping '{grouping}' is not supported by the sandbox.")
            if grouping not in _DATE_GROUPINGS:
                raise BadRequest(f"The dategrouping '{grouping}' is not valid.", codes.INVALID_FETCHXML)
        plan.groups.append(GroupTerm((prop.name,), prop, entity, alias, grouping))
        return
    method = _FETCH_AGGREGATES.get(function)
    if method is None:
        raise BadRequest(
            "An attribute can not be requested when an aggregate operation has been specified and it is neither "
            f"groupby nor aggregate: '{element.get('name')}'."
            if not function
            else f"The aggregate '{function}' is not valid.",
            codes.INVALID_FETCHXML,
        )
    if method in ("sum", "average") and (
        prop.type not in (m.INT32, m.INT64, m.DECIMAL, m.DOUBLE) or prop.enum is not None
    ):
        raise BadRequest(
            f"The aggregate '{function}' needs a number column, not '{prop.name}'.", codes.INVALID_FETCHXML
        )
    if method == "countcolumn" and _true(element, "distinct"):
        method = "countdistinct"
    plan.aggregates.append(AggregateTerm(method, None if method == "count" else prop, alias))


def _filter_node(
    entity: EntityType,
    element: ET.Element,
    model: Model,
    caller: Caller | None,
    counter: list[int],
    aliases: dict[str, EntityType],
) -> FilterNode:
    """A ``<filter type="and|or">`` of ``entity``: conditions (on a link's table with ``entityname``, one of
    ``aliases``), nested filters and ``any``/``not any`` links."""
    kind = (element.get("type") or "and").lower()
    if kind not in ("and", "or"):
        raise BadRequest(f"The filter type '{kind}' is not valid: use 'and' or 'or'.", codes.INVALID_FETCHXML)
    node = FilterNode(kind)
    for child in element:
        if child.tag == "condition":
            link_alias = child.get("entityname")
            owner = entity if link_alias is None else aliases.get(link_alias)
            if owner is None:
                raise BadRequest(
                    f"No link-entity has the alias '{link_alias}' that a condition names with entityname.",
                    codes.INVALID_FETCHXML,
                )
            values: list[Any] = [v.text or "" for v in child.findall("value")]
            if child.get("value") is not None:
                values.insert(0, child.get("value"))
            text = condition(owner, child.get("attribute") or "", child.get("operator") or "", values, caller)
            node.parts.append(FilterLeaf(link_alias, text))
        elif child.tag == "filter":
            node.parts.append(_filter_node(entity, child, model, caller, counter, aliases))
        elif child.tag == "link-entity":
            link = _parse_link(child, entity, model, caller, counter, in_filter=True)
            node.parts.append(FilterLeaf(None, "", link))
        else:
            raise BadRequest(f"The element '{child.tag}' is not valid inside <filter>.", codes.INVALID_FETCHXML)
    return node


def paging_cookie(page: int, first: str | None, last: str | None, key: str) -> str:
    """The ``@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`` value for the page after ``page``.

    Dataverse sends ``<cookie pagenumber="n+1" pagingcookie="<double URL-encoded inner cookie>" ... />``;
    the inner cookie names the first and last primary key of the page just returned.
    """
    inner = (
        f'<cookie page="{page}"><{key} last="{{{(last or "").upper()}}}" first="{{{(first or "").upper()}}}" />'
        f"</cookie>"
    )
    once = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(inner, safe=""))
    encoded = urllib.parse.quote(once, safe="")  # lower-case hex as Dataverse writes it: %253c, not %253C
    return f'<cookie pagenumber="{page + 1}" pagingcookie="{encoded}" istracking="False" />'


# ---- QueryExpression (BulkDelete) -------------------------------------------------------------------------

_QE_OPERATORS = {
    "equal": "eq",
    "notequal": "ne",
    "greaterthan": "gt",
    "greaterequal": "ge",
    "lessthan": "lt",
    "lessequal": "le",
    "null": "null",
    "notnull": "not-null",
    "in": "in",
    "notin": "not-in",
    "like": "like",
    "notlike": "not-like",
    "beginswith": "begins-with",
    "doesnotbeginwith": "not-begin-with",
    "endswith": "ends-with",
    "doesnotendwith": "not-end-with",
    "between": "between",
    "notbetween": "not-between",
}


def query_expression(query: Any, model: Model) -> tuple[EntityType, str | None]:
    """(entity, ``$filter`` text) of a ``Microsoft.Dynamics.CRM.QueryExpression`` JSON object."""
    if not isinstance(query, dict):
        raise BadRequest("Each QuerySet item must be a QueryExpression object.", codes.INVALID_ARGUMENT)
    entity = model.entities.get(str(query.get("EntityName") or ""))
    if entity is None:
        raise BadRequest(
            f"The entity with a name = '{query.get('EntityName')}' was not found in the MetadataCache.",
            codes.METADATA_NOT_FOUND,
        )
    if query.get("LinkEntities"):
        raise NotImplementedYet("LinkEntities in a QueryExpression are not supported by the sandbox.")
    criteria = query.get("Criteria")
    return entity, _qe_filter(entity, criteria) if criteria else None


def _qe_filter(entity: EntityType, criteria: Any) -> str:
    if not isinstance(criteria, dict):
        raise BadRequest("Criteria must be a FilterExpression object.", codes.INVALID_ARGUMENT)
    kind = str(criteria.get("FilterOperator") or "And").lower()
    if kind not in ("and", "or"):
        raise BadRequest(f"The FilterOperator '{criteria.get('FilterOperator')}' is not valid.", codes.INVALID_ARGUMENT)
    parts: list[str] = []
    for item in criteria.get("Conditions") or []:
        if not isinstance(item, dict):
            raise BadRequest("Each condition must be a ConditionExpression object.", codes.INVALID_ARGUMENT)
        operator = str(item.get("Operator") or "")
        mapped = _QE_OPERATORS.get(operator.lower())
        if mapped is None:
            # ConditionOperator names more operators than FetchXML spells: any unknown one may be real
            raise NotImplementedYet(f"The condition operator '{operator}' is not supported by the sandbox.")
        values = [v.get("Value") if isinstance(v, dict) else v for v in item.get("Values") or []]
        parts.append(condition(entity, str(item.get("AttributeName") or ""), mapped, values))
    for nested in criteria.get("Filters") or []:
        text = _qe_filter(entity, nested)
        if text:
            parts.append(text)
    return f" {kind} ".join(f"({p})" for p in parts)


__all__ = [
    "Caller",
    "FetchQuery",
    "condition",
    "literal",
    "paging_cookie",
    "parse_fetchxml",
    "property_for",
    "query_expression",
]
