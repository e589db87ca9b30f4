"""FetchXML joins: ``<link-entity>`` and conditions on linked tables, as SQL over the shared query layer.

A parsed ``<fetch>`` (:mod:`.querylanguages`) holds its links as :class:`LinkEntity` trees and, when a condition
names a link (``<condition entityname="alias" ...>``) or a filter holds an ``any``/``not any`` link, its filter
as a :class:`FilterNode` tree whose leaves are OData ``$filter`` text on one table. This module turns both into
SQL (PA ``fetchxml/reference/link-entity``, ``fetchxml/join-tables``, ``fetchxml/filter-rows``):

- ``inner`` (the default) and ``outer`` links join the linked table's rows that pass the link's own filter
  (an outer link's filter decides which rows join, never which parent rows come back); each returned column
  is named ``<alias>.<attribute>``, the alias given or ``<table name><n>`` with ``n`` the link's position in
  the document, counted from 1.
- ``exists`` and ``in`` links keep the parent rows that have a matching linked row, without joining (no
  duplicates, no columns); ``any`` and ``not any`` links inside a ``<filter>`` are the same test as a condition
  of that filter. ``all``, ``not all`` and ``matchfirstrowusingcrossapply`` are documented and refused (501).
- Links nest; a nested link joins to its parent link's table.
- Orders of links come after the entity's own, in document order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType, Model, Property
from sandbox.odata.query import QueryOptions, compile_filter, parse_orderby
from sandbox.odata.query.dialect import FilterDialect

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

#: link types that join rows (and may return columns), and those that only test for a matching row
JOIN_TYPES = ("inner", "outer")
EXISTS_TYPES = ("exists", "in", "any", "not any")


@dataclass
class LinkEntity:
    """One ``<link-entity>``: the linked table, how it joins its parent, what it returns, filters and orders."""

    entity: EntityType
    alias: str
    #: the linked table's column (``from``) and the parent's column (``to``)
    from_prop: Property
    to_prop: Property
    link_type: str
    #: the columns returned: (JSON name, ``alias.attribute`` or the attribute's own alias, property); None for
    #: ``<all-attributes/>``
    attributes: list[tuple[str, Property]] | None = field(default_factory=list)
    #: the link's own ``<filter>``s
    filter: FilterNode | None = None
    #: ``<order attribute descending>`` of the link: (property name, descending)
    orders: list[tuple[str, bool]] = field(default_factory=list)
    links: list[LinkEntity] = field(default_factory=list)


@dataclass
class FilterLeaf:
    """A condition: OData ``$filter`` text on one table (``alias`` None: the table the filter belongs to), or an
    ``any``/``not any`` link (``link`` set, ``text`` empty)."""

    alias: str | None
    text: str
    link: LinkEntity | None = None


@dataclass
class FilterNode:
    """``<filter type="and|or">`` of conditions and nested filters."""

    kind: str
    parts: list[FilterNode | FilterLeaf] = field(default_factory=list)

    def links_others(self) -> bool:
        """Whether a part names a link alias or holds a link (so the filter is no plain ``$filter`` text)."""
        return any(
            part.links_others() if isinstance(part, FilterNode) else (part.alias is not None or part.link is not None)
            for part in self.parts
        )

    def text(self) -> str:
        """The filter as ``$filter`` text (only when :meth:`links_others` is false)."""
        texts = [part.text() if isinstance(part, FilterNode) else part.text for part in self.parts]
        return f" {self.kind} ".join(f"({t})" for t in texts if t)


def logical_name(prop: Property) -> str:
    """A column's logical name: ``parentcustomerid`` for the lookup property ``_parentcustomerid_value``."""
    if prop.lookup is not None and prop.name.startswith("_") and prop.name.endswith("_value"):
        return prop.name[1:-6]
    return prop.name


def walk(links: list[LinkEntity]) -> list[LinkEntity]:
    """Every link of the trees, depth first in document order."""
    found: list[LinkEntity] = []
    for link in links:
        found.append(link)
        found.extend(walk(link.links))
    return found


@dataclass
class Output:
    """A returned column of a link: its JSON name (``alias.attribute``), SQL label and property."""

    name: str
    label: str
    prop: Property
    entity: EntityType
    #: the column of the link's subquery it reads
    column: Any


@dataclass
class JoinPlan:
    """The FROM clause, extra conditions, returned columns and orders the links of one fetch add."""

    from_clause: Any
    conditions: list[Any] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    orders: list[Any] = field(default_factory=list)
    #: the keys of the joined tables, after the root's key: a stable order of 1:N joins from page to page
    tiebreak: list[Any] = field(default_factory=list)
    #: alias -> (entity, the SQL subquery of its rows) for conditions that name a link
    sources: dict[str, tuple[EntityType, Any]] = field(default_factory=dict)


class LinkBuilder:
    """Builds the SQL of a fetch's links against the service's model, scoped to the request's caller."""

    def __init__(self, service: ODataService, state: RequestState) -> None:
        self.service = service
        self.state = state
        self.model: Model = service.model
        self.filters: FilterDialect = service.dialect.filter_dialect
        self._count = 0

    # -- filters -------------------------------------------------------------------------------------------
    def condition(self, node: FilterNode, entity: EntityType, source: Any, plan: JoinPlan) -> Any:
        """``node`` as SQL over ``source`` (the table or subquery of ``entity``); leaves naming an alias go to
        that link's subquery."""
        clauses = []
        for part in node.parts:
            if isinstance(part, FilterNode):
                clause = self.condition(part, entity, source, plan)
            elif part.link is not None:
                clause = self._exists(part.link, entity, source)
            elif part.alias is not None:
                found = plan.sources.get(part.alias)
                if found is None:
                    raise BadRequest(
                        f"No link-entity has the alias '{part.alias}' that a condition names with entityname.",
                        codes.INVALID_FETCHXML,
                    )
                clause = self._on(part.text, *found)
            else:
                clause = self._on(part.text, entity, source)
            if clause is not None:
                clauses.append(clause)
        if not clauses:
            return None
        return sa.and_(*clauses) if node.kind == "and" else sa.or_(*clauses)

    def _on(self, text: str, entity: EntityType, source: Any) -> Any:
        if not text:
            return None
        compiled = compile_filter(text, entity, self.model, self.filters)
        return compiled if source is entity.table else ClauseAdapter(source).traverse(compiled)

    # -- links ---------------------------------------------------------------------------------------------
    def _rows(self, link: LinkEntity) -> Any:
        """The SELECT of the linked table's rows in the caller's scope that pass the link's own filter."""
        table = link.entity.table
        assert table is not None
        query = self.service.base_query(link.entity, QueryOptions(), self.state)
        if link.filter is not None:
            clause = self.condition(link.filter, link.entity, table, JoinPlan(table))
            if clause is not None:
                query = query.where(clause)
        return query

    def _exists(self, link: LinkEntity, parent: EntityType, source: Any) -> Any:
        """``exists``/``in``/``any``/``not any``: the parent row has (or, for ``not any``, has not) a linked row."""
        self._count += 1
        rows = self._rows(link).subquery(f"sbx_exists_{self._count}")
        inner = JoinPlan(rows)
        for child in link.links:
            self.attach(child, link.entity, rows, inner, returning=False)
        test = sa.select(sa.literal(1)).select_from(inner.from_clause)
        test = test.where(rows.c[link.from_prop.name] == source.c[link.to_prop.name], *inner.conditions)
        found = sa.exists(test)
        return sa.not_(found) if link.link_type == "not any" else found

    def attach(self, link: LinkEntity, parent: EntityType, source: Any, plan: JoinPlan, returning: bool = True) -> None:
        """Add ``link`` (and its nested links) to ``plan``, joined to ``source`` (the parent's table or subquery)."""
        if link.link_type not in JOIN_TYPES:
            plan.conditions.append(self._exists(link, parent, source))
            return
        self._count += 1
        rows = self._rows(link).subquery(f"sbx_link_{self._count}")
        on = rows.c[link.from_prop.name] == source.c[link.to_prop.name]
        plan.from_clause = plan.from_clause.join(rows, on, isouter=link.link_type == "outer")
        plan.sources[link.alias] = (link.entity, rows)
        if returning:
            attributes = link.attributes
            if attributes is None:
                attributes = [
                    (f"{link.alias}.{logical_name(p)}", p) for p in link.entity.properties.values() if not p.hidden
                ]
            for json_name, prop in attributes:
                label = f"sbx_col_{self._count}_{len(plan.outputs)}"
                plan.outputs.append(Output(json_name, label, prop, link.entity, rows.c[prop.name]))
        for name, descending in link.orders:
            for order in parse_orderby(f"{name} desc" if descending else name, link.entity, self.model, self.filters):
                plan.orders.append(ClauseAdapter(rows).traverse(order))
        for child in link.links:
            self.attach(child, link.entity, rows, plan, returning)

    def plan(self, root: EntityType, links: list[LinkEntity], returning: bool = True) -> JoinPlan:
        """The joins of ``links`` under the root entity's table."""
        table = root.table
        assert table is not None
        plan = JoinPlan(table)
        for link in links:
            self.attach(link, root, table, plan, returning)
        for entity, rows in plan.sources.values():
            plan.tiebreak.extend(rows.c[k] for k in entity.key)
        return plan
