"""Navigation paths (``primarycontactid/fullname``), shared by ``$filter`` and ``$orderby``: each
single-valued hop joins an alias of the target table inside a correlated scalar subquery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sandbox.odata.model import EntityType, Model, NavigationProperty, Property
from sandbox.odata.query.errors import syntax


def visible(entity: EntityType, name: str) -> Property | None:
    """The property ``name`` of ``entity`` unless it is hidden from clients."""
    prop = entity.properties.get(name)
    return None if prop is None or prop.hidden else prop


@dataclass(frozen=True)
class Hop:
    """One single-valued navigation step: from ``source`` (an outer table or alias) into ``alias``."""

    source: Any
    nav: NavigationProperty
    alias: Any


def join_conditions(source: Any, nav: NavigationProperty, alias: Any) -> list[sa.ColumnElement[bool]]:
    """The conditions joining ``alias`` (the target of ``nav``) to ``source``."""
    conditions: list[sa.ColumnElement[bool]] = [alias.c[remote] == source.c[local] for local, remote in nav.pairs]
    conditions.extend(source.c[local] == value for local, value in nav.local_condition.items())
    return conditions


def through(hops: list[Hop], column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` (of the last hop's alias) as a scalar subquery correlated to the first hop's source."""
    if not hops:
        return column
    conditions: list[sa.ColumnElement[bool]] = []
    for hop in hops:
        conditions.extend(join_conditions(hop.source, hop.nav, hop.alias))
    aliases = [hop.alias for hop in hops]
    # correlate_except: every outer table (the root and any enclosing lambda alias) stays correlated.
    query = sa.select(column).select_from(*aliases).where(*conditions).correlate_except(*aliases).limit(1)
    return query.scalar_subquery()


_ALIAS_CACHE_DEPTH = 8
_ALIAS_INFO_KEY = "sandbox.odata.query.aliases"


class Aliases:
    """Hands out a distinct alias per use of a table within one compiled expression.

    Building an alias proxies every column of the table, which dominated compile time; the n-th alias of
    a table is therefore shared between compilations (sibling or separate statements may reuse it; within
    one expression every hop still gets its own). The cache lives in ``table.info`` so it goes away with
    the model.
    """

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}

    def next(self, entity: EntityType) -> Any:
        """A fresh alias of ``entity``'s table within this expression."""
        table = entity.table
        assert table is not None
        index = self._counts.get(table, 0)
        self._counts[table] = index + 1
        if index >= _ALIAS_CACHE_DEPTH:
            return table.alias()
        cache: dict[int, Any] = table.info.setdefault(_ALIAS_INFO_KEY, {})
        alias = cache.get(index)
        if alias is None:
            alias = cache.setdefault(index, table.alias())
        return alias


def nav_target(model: Model, entity: EntityType, nav: NavigationProperty) -> EntityType:
    """The entity type ``nav`` leads to (400 when the model lacks it)."""
    target = model.entities.get(nav.target)
    if target is None:
        raise syntax(f"The navigation property '{nav.name}' of '{entity.name}' targets an unknown type.")
    return target
