"""Compiled maps: what the pipeline steps need from a table map, worked out once instead of once per row.

A :class:`CompiledMap` holds a validated :class:`~bridge.mapping.TableMap`'s filters as predicates, its
fields sorted per direction with their value-map translators, the Sales bind target of every lookup
toward Sales, and which Sales columns :func:`bridge.pipeline.coerce_values` may change. The engine compiles
its maps when it is built (or given new maps) and hands the compiled form to each
:class:`~bridge.pipeline.Record`; nothing is kept anywhere else, so a compiled map lives exactly as long as
the engine that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from bridge.filters import Predicate, compile_predicate
from bridge.mapping import FieldMap, SalesPath, TableMap
from sandbox.odata import model as m
from sandbox.odata.model import EntityType, Model, Property

Direction = Literal["to_sales", "to_scm"]


class PlainField(NamedTuple):
    """A plain (non-lookup) field as the steps use it."""

    scm: str  # the SCM name as the map spells it
    column: str  # the Sales column
    scm_name: str  # the SCM name as the entity spells it
    item: FieldMap
    #: FieldMap.value_to_sales, or None where it is the identity (no default, no value map)
    to_sales: Callable[[Any], Any] | None


class LookupField(NamedTuple):
    """A lookup field as the steps use it."""

    item: FieldMap
    to_sales: Callable[[Any], Any] | None  # as in PlainField
    unset: str  # "nav@odata.bind" of the first alternative: what an empty value clears
    hint: str  # "@sandbox.lookup.<scm>": where the engine says which polymorphic alternative exists


@dataclass(frozen=True)
class FieldPlan:
    """A map's fields that move in one direction, sorted by what the steps do with them."""

    plain: tuple[PlainField, ...]
    lookups: tuple[LookupField, ...]
    #: fields with several Sales alternatives (``a.x|b.y``), in map order
    polymorphic: tuple[FieldMap, ...]


class BindTarget(NamedTuple):
    """What a lookup's ``@odata.bind`` needs from the Sales model."""

    name: str  # "nav@odata.bind"
    entity_set: str  # the lookup target's entity set
    #: the target's alternate key includes the company (the bind names ``_msdyn_company_value`` too)
    company_scoped: bool


@dataclass(frozen=True)
class CompiledMap:
    """One table map, ready for the pipeline (see the module docstring)."""

    map: TableMap
    to_sales: FieldPlan
    to_scm: FieldPlan
    scm_filter: Predicate | None
    sales_filter: Predicate | None
    #: Sales columns where "" means null (plain strings)
    sales_strings: frozenset[str]
    #: Sales date and whole-number columns, by name (the other columns :func:`to_sales_value` may change)
    sales_conversions: Mapping[str, Property]
    #: the bind target of each lookup path toward Sales
    binds: Mapping[SalesPath, BindTarget]

    def fields(self, direction: Direction) -> FieldPlan:
        return self.to_sales if direction == "to_sales" else self.to_scm

    def source_filter(self, direction: Direction) -> Predicate | None:
        """The filter of the side a row of ``direction`` comes from (SCM toward Sales, Sales toward SCM)."""
        return self.scm_filter if direction == "to_sales" else self.sales_filter


def compile_map(table_map: TableMap, sales_model: Model | None) -> CompiledMap:
    """``table_map`` compiled against ``sales_model`` (the model its Sales lookups bind into; without one,
    no bind targets: the map cannot then write lookups to Sales)."""
    sales_type = table_map.sales_type
    strings: frozenset[str] = frozenset()
    conversions: dict[str, Property] = {}
    if sales_type is not None:
        strings, conversions = sales_conversions(sales_type)
    binds: dict[SalesPath, BindTarget] = {}
    if sales_model is not None and sales_type is not None:
        for item in table_map.fields:
            if item.to_sales and item.is_lookup:
                for path in item.sales:
                    target = _known_bind_target(sales_model, sales_type, path)
                    if target is not None:
                        binds[path] = target
    return CompiledMap(
        map=table_map,
        to_sales=_field_plan(table_map, "to_sales"),
        to_scm=_field_plan(table_map, "to_scm"),
        scm_filter=compile_predicate(table_map.scm_filter) if table_map.scm_filter else None,
        sales_filter=compile_predicate(table_map.sales_filter) if table_map.sales_filter else None,
        sales_strings=strings,
        sales_conversions=conversions,
        binds=binds,
    )


def _field_plan(table_map: TableMap, direction: Direction) -> FieldPlan:
    moving = [item for item in table_map.fields if (item.to_sales if direction == "to_sales" else item.to_scm)]
    return FieldPlan(
        tuple(
            PlainField(
                item.scm, item.sales[0].column, canonical_scm_name(table_map, item.scm), item, sales_translator(item)
            )
            for item in moving
            if not item.is_lookup
        ),
        tuple(
            LookupField(item, sales_translator(item), f"{item.sales[0].nav}@odata.bind", f"@sandbox.lookup.{item.scm}")
            for item in moving
            if item.is_lookup
        ),
        tuple(item for item in moving if len(item.sales) > 1),
    )


def canonical_scm_name(table_map: TableMap, name: str) -> str:
    """``name`` spelled as the map's SCM entity spells it (maps may write F&O field names in any case)."""
    entity = table_map.scm_type
    if entity is None or name in entity.properties:
        return name
    for prop_name in entity.properties:
        if prop_name.lower() == name.lower():
            return prop_name
    return name


_UNKNOWN: Any = object()


def sales_translator(item: FieldMap) -> Callable[[Any], Any] | None:
    """``item.value_to_sales``, or None where it returns its argument as it is (no default, no value map).

    With a value map, the answers for the map's own string entries are worked out once: a string can only
    match a string entry, without case, and the first such entry decides, so ``value_to_sales(entry)`` is
    the answer for every string that lowers to ``entry.lower()``. Anything else still goes through
    ``value_to_sales``."""
    if not item.values:
        return item.value_to_sales if item.default is not None else None
    by_text: dict[str, Any] = {}
    for entry in item.values:
        if isinstance(entry, str):
            by_text.setdefault(entry.lower(), item.value_to_sales(entry))
    value_to_sales = item.value_to_sales

    def translate(value: Any) -> Any:
        if type(value) is str:
            found = by_text.get(value.lower(), _UNKNOWN)
            if found is not _UNKNOWN:
                return found
        return value_to_sales(value)

    return translate


def bind_target(sales_model: Model, entity: EntityType, path: SalesPath) -> BindTarget:
    """What the bind of ``entity``'s lookup ``path`` needs from ``sales_model``: the bind's name, the target's
    entity set and whether the target's alternate key includes the company."""
    nav = entity.navigations[path.nav or ""]
    target = sales_model.entities[nav.target]
    company_scoped = any(path.column in k and "_msdyn_company_value" in k for k in target.alternate_keys) and not any(
        set(k) == {path.column} for k in target.alternate_keys
    )
    return BindTarget(f"{nav.name}@odata.bind", target.entity_set, company_scoped)


def _known_bind_target(sales_model: Model, entity: EntityType, path: SalesPath) -> BindTarget | None:
    """:func:`bind_target`, or None for a path the model does not know (a map compiled without validation:
    the step that needs it then says what is missing)."""
    nav = entity.navigations.get(path.nav or "")
    if nav is None or nav.target not in sales_model.entities:
        return None
    return bind_target(sales_model, entity, path)


def sales_conversions(entity: EntityType) -> tuple[frozenset[str], dict[str, Property]]:
    """The columns of a Sales entity :func:`bridge.pipeline.to_sales_value` may change: plain strings ("" is
    null) and the date and whole-number columns (by property); on any other column it returns the value as
    it is."""
    strings = frozenset(name for name, prop in entity.properties.items() if prop.type == m.STRING and prop.enum is None)
    others = {
        name: prop for name, prop in entity.properties.items() if prop.type in (m.DATE, m.DATETIME, m.INT32, m.INT64)
    }
    return strings, others


__all__ = [
    "BindTarget",
    "CompiledMap",
    "FieldPlan",
    "LookupField",
    "PlainField",
    "bind_target",
    "canonical_scm_name",
    "compile_map",
    "sales_conversions",
    "sales_translator",
]
