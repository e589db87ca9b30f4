"""``$orderby``: terms into SQLAlchemy order-by clauses, through navigation paths where they lead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sandbox.odata.model import STRING, EntityType, Model, NavigationProperty
from sandbox.odata.query.dialect import FilterDialect
from sandbox.odata.query.errors import syntax, unknown_property
from sandbox.odata.query.paths import Aliases, Hop, nav_target, through, visible
from sandbox.odata.query.rewrite import substitute_aliases


def parse_orderby(
    text: str | None,
    entity: EntityType,
    model: Model,
    dialect: FilterDialect,
    aliases: Mapping[str, str] | None = None,
) -> list[sa.ColumnElement[Any]]:
    """Parse `$orderby` (``revenue desc,name``) into SQLAlchemy order-by clauses.

    Paths through single-valued navigations (``primarycontactid/fullname``) sort by a correlated scalar
    subquery; a single-valued navigation itself, or a lookup column (``_x_value`` with ``Property.lookup``),
    sorts by the related row's primary name as Dataverse does. Strings sort case-insensitively in a
    case-insensitive dialect. Unknown names raise BadRequest ``0x0``; malformed terms ``0x80060888``.
    ``aliases`` substitutes parameter aliases (``$orderby=@p1&@p1=name``).
    """
    if text is None or not text.strip():
        return []
    if "@" in text:
        text = substitute_aliases(text, aliases)
    clauses: list[sa.ColumnElement[Any]] = []
    for raw in text.split(","):
        parts = raw.split()
        if not parts or len(parts) > 2:
            raise syntax(f"Syntax error at position {max(text.find(raw), 0)} in '{text}'.")
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise syntax(f"Syntax error at position {text.find(parts[1])} in '{text}'.")
        expr = _orderby_expression(parts[0], entity, model, dialect, Aliases())
        clauses.append(expr.desc() if direction == "desc" else expr.asc())
    return clauses


def _orderby_expression(
    path: str, entity: EntityType, model: Model, dialect: FilterDialect, aliases: Aliases
) -> sa.ColumnElement[Any]:
    segments = path.split("/")
    if any(not s for s in segments):
        raise syntax(f"Syntax error in '$orderby' path '{path}'.")
    current: EntityType = entity
    source: Any = entity.table
    hops: list[Hop] = []
    for index, name in enumerate(segments):
        last = index == len(segments) - 1
        prop = visible(current, name)
        if prop is not None:
            if not last:
                raise syntax(f"Property '{name}' of type '{dialect.label(current)}' has no properties to navigate.")
            if prop.lookup and prop.lookup in current.navigations:
                named = _primary_name_of(current.navigations[prop.lookup], source, hops, model, aliases)
                if named is not None:
                    return _sortable(named, STRING, dialect)
            return _sortable(through(hops, source.c[name]), prop.type, dialect)
        nav = current.navigations.get(name)
        if nav is None:
            raise unknown_property(name, current, dialect)
        if nav.many:
            raise syntax(
                f"The parent value for a property access of a property '{name}' is not a single value. "
                "Property access can only be applied to a single value."
            )
        if last:
            named = _primary_name_of(nav, source, hops, model, aliases)
            if named is None:
                raise syntax(f"Cannot order by the navigation property '{name}'.")
            return _sortable(named, STRING, dialect)
        target = nav_target(model, current, nav)
        alias = aliases.next(target)
        hops.append(Hop(source, nav, alias))
        current, source = target, alias
    raise AssertionError("unreachable")


def _primary_name_of(
    nav: NavigationProperty, source: Any, hops: list[Hop], model: Model, aliases: Aliases
) -> sa.ColumnElement[Any] | None:
    target = model.entities.get(nav.target)
    if nav.many or target is None or not target.primary_name or target.primary_name not in target.properties:
        return None
    alias = aliases.next(target)
    return through([*hops, Hop(source, nav, alias)], alias.c[target.primary_name])


def _sortable(expr: sa.ColumnElement[Any], edm: str, dialect: FilterDialect) -> sa.ColumnElement[Any]:
    return sa.func.lower(expr) if dialect.case_insensitive and edm == STRING else expr
