"""The sync pipeline: small pure steps that turn a source row into the target payload.

Each step takes and returns a :class:`Record` (plain dicts inside) and may raise :class:`Drop` to leave a
row out (a filter said no) or :class:`MissingParent` to refuse it (a lookup or the integration key cannot be
resolved; the engine turns that into a sync error, so both sides roll back). I/O happens elsewhere: the
engine supplies what the steps need to know about the other side (the company's Sales id, the rows a Sales
lookup points at, a reader of Sales for the price-list rule) as plain values and callables, and the map's
compiled form (:class:`bridge.compiled.CompiledMap`: filters, field plans, bind targets), which the engine
makes once per map.

The steps, in order (:data:`STEPS`):

1. :func:`source_filter` - the map's filter of the source side (SCM filter / Dataverse reversed filter);
2. :func:`company_scope` - ``dataAreaId`` <-> the ``msdyn_company`` lookup, or the document's company for
   line maps (``company_from``);
3. :func:`map_fields` - plain fields through their default and value map (``KEEP`` leaves a column out;
   an empty Sales value of an ``scm_default`` field is not sent to SCM);
4. :func:`resolve_lookups` - ``nav@odata.bind`` by alternate key to Sales; the related row's key to SCM;
5. :func:`apply_defaults` - the map's constants for the target side;
6. :func:`coerce_values` - each value in the target's conventions (F&O: no null strings, "no date" is
   1900-01-01T12:00:00Z, dates at 12:00:00Z; Dataverse: null for empty, ``Edm.Date`` as ``YYYY-MM-DD``,
   whole numbers for integer columns);
7. :func:`check_key` - the integration key must have a value;
8. :func:`assign_price_list` - new Sales products land on a price list (maps with ``sales.price_list``).

Rows are in wire format: SCM enums as member names, Sales choices as integers, Sales lookups as
``_x_value`` GUIDs. Payloads for Sales write lookups as ``nav@odata.bind`` references by alternate key.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, Protocol

from bridge.compiled import (
    BindTarget,
    CompiledMap,
    Direction,
    LookupField,
    bind_target,
    canonical_scm_name,
    compile_map,
)
from bridge.filters import filter_columns
from bridge.mapping import KEEP, FieldMap, SalesPath, TableMap
from sandbox.odata import model as m
from sandbox.odata.literals import format_literal
from sandbox.odata.model import EntityType, Model, Property

Related = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


class Drop(Exception):
    """The row is not synced (filtered out); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingParent(Exception):
    """A lookup points at a row the other side cannot resolve (dual-write: "Unable to look up ...")."""


class MissingKey(MissingParent):
    """The row has no integration key value, so the other side could never match it again."""


class SalesReader(Protocol):
    """What :func:`assign_price_list` needs from Sales (the engine passes its ``SalesClient``)."""

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
    ) -> list[dict[str, Any]]: ...

    def upsert(self, entity_set: str, key: Any, body: Mapping[str, Any]) -> None: ...


@dataclass
class Record:
    """A row on its way through the pipeline."""

    map: TableMap
    direction: Direction
    source: dict[str, Any]
    target: dict[str, Any] = field(default_factory=dict)
    #: dataAreaId of the row (company-specific maps)
    company: str | None = None
    #: Sales id of the row's company (cdm_company) when writing to Sales
    company_id: str | None = None
    #: for Sales sources: the row a lookup of the source row points at
    related: Related | None = None
    #: the Sales model (entity sets and alternate keys of lookup targets)
    sales_model: Model | None = None
    #: reads (and, for a missing price list, writes) Sales; only the price-list rule uses it
    sales: SalesReader | None = None
    #: ``map`` compiled (the engine passes the one it owns); when not given, ``map`` is compiled here, against
    #: ``sales_model``, for this record alone
    compiled_map: InitVar[CompiledMap | None] = None
    #: what the steps read of the map: ``compiled_map``, or ``map`` compiled for this record
    compiled: CompiledMap = field(init=False, repr=False)

    def __post_init__(self, compiled_map: CompiledMap | None) -> None:
        if compiled_map is None:
            compiled_map = compile_map(self.map, self.sales_model)
        elif compiled_map.map is not self.map:
            raise ValueError(f"the compiled map given is not that of map {self.map.id!r}")
        self.compiled = compiled_map


Step = Callable[[Record], Record]


# ---- filters ------------------------------------------------------------------------------------------------


def scm_read_columns(table_map: TableMap) -> list[str]:
    """The SCM columns the pipeline reads to sync ``table_map`` to Sales (keys, fields, company, filter,
    price-list currency), spelled as the entity spells them: what a bulk read needs to ``$select``."""
    entity = table_map.scm_type
    assert entity is not None
    wanted = {item.scm for item in [*table_map.keys, *table_map.fields]}
    if table_map.scm_filter:
        wanted |= filter_columns(table_map.scm_filter)
    if table_map.price_list is not None:
        wanted.add(table_map.price_list.currency)
    if entity.company_property:
        wanted.add(entity.company_property)
    by_lower = {name.lower(): name for name in entity.properties}
    return sorted({by_lower[name.lower()] for name in wanted if name.lower() in by_lower} | set(entity.key))


def source_filter(record: Record) -> Record:
    """Drop rows the map's filter of the source side does not admit."""
    admits = record.compiled.source_filter(record.direction)
    if admits is not None and not admits(record.source):
        text = record.map.scm_filter if record.direction == "to_sales" else record.map.sales_filter
        raise Drop(f"filtered out by {text!r}")
    return record


# ---- fields ---------------------------------------------------------------------------------------------------


def _scm_value(row: dict[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    lowered = name.lower()
    for key, value in row.items():
        if key.lower() == lowered:
            return value
    return None


#: "not in the row" (None is a value)
_UNKNOWN: Any = object()


def polymorphic_fields(table_map: TableMap) -> tuple[FieldMap, ...]:
    """The fields of ``table_map`` toward Sales with several lookup alternatives (``a.x|b.y``), in map order:
    the ones whose alternative the engine picks before the pipeline runs."""
    return tuple(item for item in table_map.fields if item.to_sales and len(item.sales) > 1)


#: the value types that are already in wire format (see :func:`_to_wire`)
_WIRE_TYPES = (str, int, float, bool)


def map_fields(record: Record) -> Record:
    """Copy plain (non-lookup) fields in the record's direction, through their defaults and value maps.
    A value mapped to ``KEEP`` leaves the target column out of the payload (it keeps its value)."""
    source, target = record.source, record.target
    if record.direction == "to_sales":
        for scm, column, _, _, translate in record.compiled.to_sales.plain:
            value = source.get(scm, _UNKNOWN)
            if value is _UNKNOWN:
                value = _scm_value(source, scm)
            if translate is not None:
                value = translate(value)
                if value is KEEP:
                    continue
            # _to_wire inlined for the common types: this runs for every field of every row
            target[column] = value if value is None or type(value) in _WIRE_TYPES else _to_wire(value)
    elif record.direction == "to_scm":
        for _, column, scm_name, item, _ in record.compiled.to_scm.plain:
            value = source.get(column)
            if item.scm_default and value in (None, ""):
                continue  # SCM keeps (or makes) its own value
            target[scm_name] = _to_wire(item.value_to_scm(value))
    return record


def _to_wire(value: Any) -> Any:
    if value is None or type(value) in _WIRE_TYPES:
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def apply_defaults(record: Record) -> Record:
    """Constants the map writes on the target side (e.g. ``customertypecode := 3``)."""
    defaults = record.map.defaults_sales if record.direction == "to_sales" else record.map.defaults_scm
    for name, value in defaults.items():
        record.target.setdefault(name, value)
    return record


# ---- lookups -------------------------------------------------------------------------------------------------


def lookup_bind(
    sales_model: Model, entity: EntityType, path: SalesPath, value: Any, company_id: str | None
) -> tuple[str, str]:
    """``("nav@odata.bind", "/targets(column='v'[,_msdyn_company_value=<id>])")`` for a Sales lookup."""
    return _bind(bind_target(sales_model, entity, path), path, value, company_id)


def _bind(target: BindTarget, path: SalesPath, value: Any, company_id: str | None) -> tuple[str, str]:
    literal = format_literal(value, guid_bare=False)
    if target.company_scoped:
        if company_id is None:
            raise MissingParent(f"the company of {target.entity_set} {path.column}={value} is not known in Sales")
        return target.name, f"/{target.entity_set}({path.column}={literal},_msdyn_company_value={company_id})"
    return target.name, f"/{target.entity_set}({path.column}={literal})"


def resolve_lookups(record: Record) -> Record:
    """To Sales: lookup fields become ``@odata.bind`` references by the related table's alternate key.
    To SCM: the related Sales row (supplied by the engine) gives the value of the SCM field."""
    lookups = record.compiled.fields(record.direction).lookups
    if record.direction == "to_sales":
        for lookup in lookups:
            _lookup_to_sales(record, lookup)
    else:
        for lookup in lookups:
            _lookup_to_scm(record, lookup.item)
    return record


def _lookup_to_sales(record: Record, lookup: LookupField) -> None:
    item, source = lookup.item, record.source
    value = source.get(item.scm, _UNKNOWN)
    if value is _UNKNOWN:
        value = _scm_value(source, item.scm)
    if lookup.to_sales is not None:
        value = lookup.to_sales(value)
        if value is KEEP:
            return
    entity = record.map.sales_type
    assert entity is not None and record.sales_model is not None
    if value in (None, ""):
        record.target[lookup.unset] = None
        return
    path = item.sales[0]
    if len(item.sales) > 1:
        # Polymorphic: the engine tells which alternative exists by pre-filling "@sandbox.lookup.<scm>".
        chosen = record.target.pop(lookup.hint, 0)
        path = item.sales[chosen]
    target = record.compiled.binds.get(path) or bind_target(record.sales_model, entity, path)
    name, reference = _bind(target, path, value, record.company_id)
    record.target[name] = reference


def _lookup_to_scm(record: Record, item: FieldMap) -> None:
    value = None
    for path in item.sales:
        related = record.related(path.nav or "", record.source) if record.related else None
        if related is not None:
            value = related.get(path.column)
            if value in (None, ""):
                # The lookup is set but its row has no integration key (a prospect without an account
                # number, a product that did not come from SCM): SCM could never find it.
                table = str(related.get("@sandbox.table") or path.nav)
                raise MissingParent(
                    f"Unable to look up {item.scm}: the {table} that {path.nav} points at has no {path.column}"
                )
            break
    if value is None and item.scm_default:
        return  # an unset Sales lookup leaves SCM's own default alone
    if value is None and item.default is not None:
        record.target[canonical_scm_name(record.map, item.scm)] = item.default
        return
    record.target[canonical_scm_name(record.map, item.scm)] = item.value_to_scm(value) if value is not None else ""


# ---- company -------------------------------------------------------------------------------------------------


def company_scope(record: Record) -> Record:
    """Company-specific maps: ``dataAreaId`` on SCM, the ``msdyn_company`` lookup on Sales. Line maps take
    the company of their document (``company_from``)."""
    if record.map.company_from is not None:
        if record.direction == "to_sales":
            record.company = str(record.source.get("dataAreaId") or "").lower() or None
            return record
        parent = record.related(record.map.company_from, record.source) if record.related else None
        company = record.related("msdyn_company", parent) if (record.related and parent) else None
        if company is None or not company.get("cdm_companycode"):
            raise Drop(f"the row behind {record.map.company_from} has no company")
        record.company = str(company["cdm_companycode"]).lower()
        record.target["dataAreaId"] = record.company
        return record
    if not record.map.company:
        return record
    if record.direction == "to_sales":
        code = str(record.source.get("dataAreaId") or "").lower()
        if not code:
            raise Drop("the SCM row has no dataAreaId")
        record.company = code
        record.target["msdyn_company@odata.bind"] = f"/cdm_companies(cdm_companycode='{code}')"
    else:
        related = record.related("msdyn_company", record.source) if record.related else None
        if related is None or not related.get("cdm_companycode"):
            raise Drop("rows without a company are not synced")
        record.company = str(related["cdm_companycode"]).lower()
        record.target["dataAreaId"] = record.company
    return record


# ---- target conventions -------------------------------------------------------------------------------------

#: F&O's "no date" (date-only fields are stored at 12:00:00Z)
SCM_EMPTY_DATE = "1900-01-01T12:00:00Z"


def coerce_values(record: Record) -> Record:
    """Each target value in the target's conventions (see the module docstring); lookups are left alone."""
    entity = record.map.sales_type if record.direction == "to_sales" else record.map.scm_type
    if entity is None:
        return record
    target = record.target
    if record.direction == "to_sales":
        strings, others = record.compiled.sales_strings, record.compiled.sales_conversions
        # Only values change, never keys, so the dict can be updated while it is walked.
        for name, value in target.items():
            if value is None:
                continue  # null stays null in every Dataverse type
            if name in strings:
                if value == "":
                    target[name] = None
            elif name in others:
                target[name] = to_sales_value(others[name], value)
        return record
    for name in list(target):
        if "@" in name:
            continue
        prop = entity.properties.get(name)
        if prop is None:
            continue
        value = to_scm_value(prop, target[name])
        if value is _OMIT:
            del target[name]
        else:
            target[name] = value
    return record


_OMIT: Any = object()


def _is_empty_date(value: Any) -> bool:
    return isinstance(value, str) and value[:4].isdigit() and int(value[:4]) <= 1900


def to_sales_value(prop: Property, value: Any) -> Any:
    """A value for a Dataverse column: "" and F&O's "no date" become null, dates lose their time."""
    if value is None:
        return None
    if prop.type == m.STRING and prop.enum is None:
        return None if value == "" else value
    if prop.type in (m.DATE, m.DATETIME) and isinstance(value, str):
        if value == "" or _is_empty_date(value):
            return None
        return value[:10] if prop.type == m.DATE else value
    if prop.type in (m.INT32, m.INT64) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_scm_value(prop: Property, value: Any) -> Any:
    """A value for an F&O field: null strings are "", a missing date is "no date", a date gets 12:00:00Z;
    a null number or enum is left out (F&O has no nulls: the field keeps or takes its default)."""
    if prop.type == m.STRING and prop.enum is None:
        return "" if value is None else value
    if prop.type == m.DATETIME:
        if value in (None, ""):
            return SCM_EMPTY_DATE
        if isinstance(value, str) and len(value) == 10:
            return f"{value}T12:00:00Z"
        return value
    if value is None:
        return _OMIT
    if prop.type in (m.INT32, m.INT64) and prop.enum is None and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ---- integration key -----------------------------------------------------------------------------------------


def check_key(record: Record) -> Record:
    """Refuse a row whose integration key is empty: it could never be matched on the other side again."""
    for key in record.map.keys:
        if record.direction == "to_sales":
            name, value = key.scm, _scm_value(record.source, key.scm)
        else:
            name = canonical_scm_name(record.map, key.scm)
            value = record.target.get(name)
        if value in (None, ""):
            column = key.sales[0].text if record.direction == "to_scm" else key.scm
            raise MissingKey(f"the integration key {column} has no value")
    return record


# ---- price list of new products ---------------------------------------------------------------------------------

#: namespace of the ids of the price lists the bridge creates (the same currency always gets the same id)
PRICE_LIST_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4b8a-9a51-0d3c2f5e8b17")


def assign_price_list(record: Record) -> Record:
    """New Sales rows of a map with ``sales.price_list`` get the alphabetically first active price list in
    their currency; when the currency has none, one is created first (docs/reference/dual-write.md 4.2). Rows
    that exist in Sales keep whatever price list they have. Needs ``record.sales``; without it the step does
    nothing."""
    rule = record.map.price_list
    if rule is None or record.direction != "to_sales" or record.sales is None:
        return record
    if "pricelevelid@odata.bind" in record.target:
        return record  # the map writes the price list itself
    currency = _scm_value(record.source, rule.currency)
    if not currency or _exists_in_sales(record):
        return record
    literal = format_literal(str(currency), guid_bare=False)
    found = record.sales.query(
        "pricelevels",
        filter=f"statecode eq 0 and transactioncurrencyid/isocurrencycode eq {literal}",
        select=["pricelevelid", "name"],
        orderby="name",
    )
    if found:
        price_list_id = str(found[0]["pricelevelid"])
    else:
        price_list_id = str(uuid.uuid5(PRICE_LIST_NAMESPACE, str(currency).upper()))
        # Created at once (outside the row's change set) so that every later product finds it; an empty
        # price list left behind by a failed write is harmless and is reused next time.
        record.sales.upsert(
            "pricelevels",
            price_list_id,
            {
                "name": rule.name.format(currency=str(currency).upper()),
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies(isocurrencycode={literal})",
            },
        )
    record.target["pricelevelid@odata.bind"] = f"/pricelevels({price_list_id})"
    return record


def _exists_in_sales(record: Record) -> bool:
    entity = record.map.sales_type
    assert entity is not None and record.sales is not None
    parts = []
    for key in record.map.keys:
        value = key.value_to_sales(_scm_value(record.source, key.scm))
        parts.append(f"{key.sales[0].text.replace('.', '/')} eq {format_literal(value, guid_bare=False)}")
    if record.map.company:
        if record.company_id is None:
            return False
        parts.append(f"_msdyn_company_value eq {record.company_id}")
    return bool(record.sales.query(entity.entity_set, filter=" and ".join(parts), select=[entity.key[0]], top=1))


# ---- the whole pipeline --------------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (
    source_filter,
    company_scope,
    map_fields,
    resolve_lookups,
    apply_defaults,
    coerce_values,
    check_key,
    assign_price_list,
)


def transform(record: Record, steps: tuple[Step, ...] = STEPS) -> Record:
    """Run the steps in order; raises :class:`Drop` when the row is not synced."""
    for step in steps:
        record = step(record)
    return record


def key_values(table_map: TableMap, record: Record) -> dict[str, Any]:
    """The integration key of a transformed row, in target-side names."""
    out: dict[str, Any] = {}
    for key in table_map.keys:
        if record.direction == "to_sales":
            path = key.sales[0]
            out[path.text] = key.value_to_sales(_scm_value(record.source, key.scm))
        else:
            out[canonical_scm_name(table_map, key.scm)] = record.target.get(canonical_scm_name(table_map, key.scm))
    return out
