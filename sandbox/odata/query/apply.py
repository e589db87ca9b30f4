"""``$apply`` (OData's data aggregation extension): ``filter``, ``groupby`` and ``aggregate`` into one SQL
``GROUP BY`` statement.

The subset both Dataverse and this layer take (``docs/reference/dataverse-web-api.md`` section 6a)::

    $apply=filter(<$filter text>)/groupby((prop,nav/prop,...),aggregate(<agg>,...))
    $apply=aggregate(<agg>,...)
    <agg> := <property> with sum|average|min|max|countdistinct as <alias>  |  $count as <alias>

Transformations chain with ``/`` and run left to right; ``filter`` narrows the rows and must come before
the grouping (a filter of the groups themselves is refused). Everything is computed by the database: the
rows are never loaded. What a dialect refuses beyond this grammar (Dataverse: grouping by a date and time)
it checks on the :class:`ApplyPlan`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from sandbox.odata.model import DECIMAL, DOUBLE, INT32, INT64, EntityType, Model, NavigationProperty, Property
from sandbox.odata.query.dialect import FilterDialect
from sandbox.odata.query.errors import syntax, unknown_property
from sandbox.odata.query.filtering import compile_filter
from sandbox.odata.query.paths import Aliases, Hop, nav_target, through, visible
from sandbox.odata.query.scanning import UnbalancedBrackets, UnterminatedLiteral, split_outside

#: the aggregation methods taken, by their OData name
METHODS = ("sum", "average", "min", "max", "countdistinct")
_NUMERIC = {INT32, INT64, DECIMAL, DOUBLE}
_AGGREGATE = re.compile(r"^\s*(\$count|[A-Za-z_][\w/]*)\s+(?:with\s+([A-Za-z]+)\s+)?as\s+([A-Za-z_]\w*)\s*$")
_TRANSFORMATION = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class GroupTerm:
    """One ``groupby`` property: ``path`` from the entity (``["primarycontactid", "fullname"]``), the
    property it ends in, and the name its value is answered under."""

    path: tuple[str, ...]
    prop: Property
    entity: EntityType
    name: str
    #: group by this part of a date (``year``, ``quarter``, ``month``, ``week``, ``day``: FetchXML's
    #: ``dategrouping``), in UTC
    date_part: str | None = None

    @property
    def value_type(self) -> str:
        """The EDM type of the grouped value (a part of a date is a number)."""
        return INT32 if self.date_part else self.prop.type


@dataclass(frozen=True)
class AggregateTerm:
    """One aggregate: ``method`` (``count`` for ``$count``) of ``prop`` (None for ``$count``) as ``alias``.
    ``countcolumn`` (FetchXML's count of a column's values, not rows) is not an OData method."""

    method: str
    prop: Property | None
    alias: str

    @property
    def result_type(self) -> str:
        """The EDM type of the value: counts are Int32, an average a decimal, sums/min/max their column's."""
        if self.method in ("count", "countdistinct", "countcolumn"):
            return INT32
        assert self.prop is not None
        if self.method == "average":
            return DOUBLE if self.prop.type == DOUBLE else DECIMAL
        return self.prop.type


@dataclass
class ApplyPlan:
    """A parsed ``$apply``: the row filters, then the grouping and the aggregates (either may be empty)."""

    filters: list[str] = field(default_factory=list)
    groups: list[GroupTerm] = field(default_factory=list)
    aggregates: list[AggregateTerm] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The names of the values each result row carries, in order."""
        return [g.name for g in self.groups] + [a.alias for a in self.aggregates]


def _split(text: str, separator: str) -> list[str]:
    try:
        return split_outside(text, separator, "(", ")")
    except UnterminatedLiteral:
        raise syntax(f"There is an unterminated literal at position {len(text)} in '{text}'.") from None
    except UnbalancedBrackets as exc:
        raise syntax(f"Syntax error at position {exc.position} in '{text}'.") from None


def parse_apply(text: str, entity: EntityType, model: Model, dialect: FilterDialect) -> ApplyPlan:
    """Parse ``$apply`` for ``entity``: unknown names are 400 ``0x0``, anything else malformed or outside the
    subset 400 ``0x80060888``."""
    plan = ApplyPlan()
    grouped = False
    if not text.strip():
        raise syntax("The $apply query option must not be empty.")
    for step in _split(text, "/"):
        match = _TRANSFORMATION.match(step)
        if match is None:
            raise syntax(f"'{step.strip()}' is not a valid $apply transformation.")
        name, args = match.group(1), match.group(2)
        if grouped:
            raise syntax(f"The transformation '{name}' after groupby or aggregate is not supported.")
        if name == "filter":
            if not args.strip():
                raise syntax("filter() needs a condition.")
            compile_filter(args, entity, model, dialect)  # checked now, so every error names the filter
            plan.filters.append(args)
        elif name == "groupby":
            _groupby(args, entity, model, dialect, plan)
            grouped = True
        elif name == "aggregate":
            plan.aggregates.extend(_aggregates(args, entity, dialect))
            grouped = True
        else:
            raise syntax(f"The transformation '{name}' is not supported in $apply.")
    names = plan.names
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise syntax(f"The name '{duplicate}' is used twice in $apply.")
    return plan


def _groupby(args: str, entity: EntityType, model: Model, dialect: FilterDialect, plan: ApplyPlan) -> None:
    parts = [p.strip() for p in _split(args, ",")]
    if not parts or not (parts[0].startswith("(") and parts[0].endswith(")")):
        raise syntax("groupby needs a parenthesized list of properties: groupby((name),...).")
    properties = [p.strip() for p in _split(parts[0][1:-1], ",")]
    if not any(properties):
        raise syntax("groupby needs at least one property.")
    for path in properties:
        plan.groups.append(_group_term(path, entity, model, dialect))
    for extra in parts[1:]:
        match = _TRANSFORMATION.match(extra)
        if match is None or match.group(1) != "aggregate":
            raise syntax(f"'{extra}' is not valid inside groupby: only aggregate(...) may follow the properties.")
        plan.aggregates.extend(_aggregates(match.group(2), entity, dialect))
    if len(parts) > 2:
        raise syntax("groupby takes one aggregate(...) transformation.")


def _group_term(path: str, entity: EntityType, model: Model, dialect: FilterDialect) -> GroupTerm:
    segments = path.split("/")
    if not path or any(not s for s in segments):
        raise syntax(f"'{path}' is not a valid property path in groupby.")
    current = entity
    for index, name in enumerate(segments):
        last = index == len(segments) - 1
        prop = visible(current, name)
        if prop is not None:
            if not last:
                raise syntax(f"Property '{name}' of type '{dialect.label(current)}' has no properties to navigate.")
            # A property reached through a navigation is answered as <target logical name>_<property>
            # (Dataverse: groupby((primarycontactid/fullname)) gives "contact_fullname").
            answered = name if index == 0 else f"{current.name}_{name}"
            return GroupTerm(tuple(segments), prop, current, answered)
        nav = current.navigations.get(name)
        if nav is None:
            raise unknown_property(name, current, dialect)
        if nav.many or last:
            raise syntax(f"groupby by the navigation property '{name}' is not supported: name a property of it.")
        current = nav_target(model, current, nav)
    raise AssertionError("unreachable")


def _aggregates(args: str, entity: EntityType, dialect: FilterDialect) -> list[AggregateTerm]:
    terms: list[AggregateTerm] = []
    for raw in _split(args, ","):
        match = _AGGREGATE.match(raw)
        if match is None:
            raise syntax(
                f"'{raw.strip()}' is not a valid aggregate expression: use '<property> with <method> as <alias>'."
            )
        target, method, alias = match.groups()
        if target == "$count":
            if method is not None:
                raise syntax("$count takes no aggregation method: '$count as <alias>'.")
            terms.append(AggregateTerm("count", None, alias))
            continue
        if method is None:
            raise syntax(f"The aggregate of '{target}' needs 'with <method>'.")
        if method not in METHODS:
            raise syntax(f"The aggregation method '{method}' is not supported: use one of {', '.join(METHODS)}.")
        prop = visible(entity, target)
        if prop is None:
            if "/" in target:
                raise syntax(f"Aggregating the path '{target}' is not supported: aggregate a property of the table.")
            raise unknown_property(target, entity, dialect)
        if method in ("sum", "average") and (prop.type not in _NUMERIC or prop.enum is not None):
            raise syntax(
                f"The aggregation method '{method}' cannot be applied to the property '{target}' of type '{prop.type}'."
            )
        terms.append(AggregateTerm(method, prop, alias))
    return terms


def group_expression(term: GroupTerm, entity: EntityType, model: Model, aliases: Aliases) -> sa.ColumnElement[Any]:
    """The SQL value of one ``groupby`` property (a correlated scalar subquery through navigations)."""
    source: Any = entity.table
    current = entity
    hops: list[Hop] = []
    for name in term.path[:-1]:
        nav: NavigationProperty = current.navigations[name]
        target = nav_target(model, current, nav)
        alias = aliases.next(target)
        hops.append(Hop(source, nav, alias))
        current, source = target, alias
    value = through(hops, source.c[term.path[-1]])
    if term.date_part == "quarter":
        return sa.cast((sa.extract("month", value) + 2) / 3, sa.Integer)
    if term.date_part is not None:
        return sa.cast(sa.extract(term.date_part, value), sa.Integer)
    return value


def aggregate_expression(term: AggregateTerm, entity: EntityType) -> sa.ColumnElement[Any]:
    """The SQL aggregate of one term (nulls are left out, as the aggregation extension says)."""
    if term.prop is None:
        return sa.func.count()
    column = entity.column(term.prop.name)
    if term.method == "sum":
        return sa.func.sum(column)
    if term.method == "average":
        return sa.func.avg(column)
    if term.method == "min":
        return sa.func.min(column)
    if term.method == "max":
        return sa.func.max(column)
    if term.method == "countcolumn":
        return sa.func.count(column)
    return sa.func.count(sa.distinct(column))


def apply_statement(
    plan: ApplyPlan,
    entity: EntityType,
    model: Model,
    dialect: FilterDialect,
    rows: sa.Select[Any],
    order: Iterable[tuple[str, bool]] = (),
) -> sa.Select[Any]:
    """The ``GROUP BY`` statement of ``plan`` over ``rows`` (a SELECT of the entity's table with the request's
    conditions), its columns labelled with :attr:`ApplyPlan.names`. Groups sort by ``order`` (name,
    descending; a group or an aggregate) first, then by every group value, so the answer is stable."""
    for text in plan.filters:
        rows = rows.where(compile_filter(text, entity, model, dialect))
    aliases = Aliases()
    groups = [group_expression(g, entity, model, aliases) for g in plan.groups]
    aggregates = [aggregate_expression(a, entity) for a in plan.aggregates]
    labelled = [expr.label(name) for expr, name in zip([*groups, *aggregates], plan.names, strict=True)]
    statement = rows.with_only_columns(*labelled).select_from(entity.table)  # type: ignore[arg-type]
    by_name = dict(zip(plan.names, [*groups, *aggregates], strict=True))
    clauses = [by_name[name].desc() if descending else by_name[name].asc() for name, descending in order]
    if groups:
        statement = statement.group_by(*groups)
    if clauses or groups:
        statement = statement.order_by(*clauses, *groups)
    return statement


def input_count(plan: ApplyPlan, entity: EntityType, model: Model, dialect: FilterDialect, rows: sa.Select[Any]) -> Any:
    """A statement counting the rows the aggregation reads (after the ``filter`` transformations)."""
    for text in plan.filters:
        rows = rows.where(compile_filter(text, entity, model, dialect))
    return sa.select(sa.func.count()).select_from(rows.subquery())


__all__ = [
    "METHODS",
    "AggregateTerm",
    "ApplyPlan",
    "GroupTerm",
    "aggregate_expression",
    "apply_statement",
    "group_expression",
    "input_count",
    "parse_apply",
]
