"""The sync pipeline: small pure steps that turn a source row into the target payload.

Each step takes and returns a :class:`Record` (plain dicts inside) and may raise :class:`Drop` to leave a
row out (a filter said no) or :class:`MissingParent` to refuse it (a lookup or the integration key cannot be
resolved; the engine turns that into a sync error, so both sides roll back). I/O happens elsewhere: the
engine supplies what the steps need to know about the other side (the company's Sales id, the rows a Sales
lookup points at, a reader of Sales for the price-list rule) as plain values and callables.

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
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from odata_query import ast as q
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from bridge.mapping import KEEP, FieldMap, SalesPath, TableMap
from sandbox.odata import model as m
from sandbox.odata.model import EntityType, Model, Property
from sandbox.odata.urls import format_literal

Direction = Literal["to_sales", "to_scm"]
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


Step = Callable[[Record], Record]


# ---- filters ------------------------------------------------------------------------------------------------

_parser_state = threading.local()


def compile_predicate(text: str) -> Callable[[dict[str, Any]], bool]:
    """An in-memory predicate for a map filter (OData ``$filter`` syntax on the row's own columns)."""
    if not hasattr(_parser_state, "parser"):
        _parser_state.lexer, _parser_state.parser = ODataLexer(), ODataParser()
    try:
        tree = _parser_state.parser.parse(_parser_state.lexer.tokenize(text))
    except ODataException as exc:
        raise ValueError(str(exc)) from None
    if tree is None:
        raise ValueError("empty filter")
    _check_tree(tree)
    evaluate = _compile(tree)
    return lambda row: bool(evaluate(row))


def _check_tree(node: Any) -> None:
    allowed = (
        q.Compare,
        q.BoolOp,
        q.UnaryOp,
        q.Identifier,
        q.String,
        q.Integer,
        q.Float,
        q.Boolean,
        q.Null,
        q.GUID,
        q.DateTime,
        q.Date,
    )
    if not isinstance(node, allowed):
        raise ValueError(f"unsupported expression {type(node).__name__} in a map filter")
    for child in ("left", "right", "operand"):
        if hasattr(node, child):
            _check_tree(getattr(node, child))


def _compile(node: Any) -> Callable[[dict[str, Any]], Any]:
    """The expression as nested closures: the tree is walked once, not for every row a filter sees (an
    initial sync runs the filter on every row of the table)."""
    if isinstance(node, q.BoolOp):
        left, right = _compile(node.left), _compile(node.right)
        if isinstance(node.op, q.And):
            return lambda row: bool(left(row)) and bool(right(row))
        return lambda row: bool(left(row)) or bool(right(row))
    if isinstance(node, q.UnaryOp):
        operand = _compile(node.operand)
        return lambda row: not operand(row)
    if isinstance(node, q.Compare):
        op, left, right = node.comparator, _compile(node.left), _compile(node.right)
        return lambda row: _compare(op, left(row), right(row))
    if isinstance(node, q.Identifier):
        name = node.name
        return lambda row: row.get(name)
    constant = _literal(node)
    return lambda row: constant


def _literal(node: Any) -> Any:
    """The value of a literal node (literals are immutable values, computed once per filter)."""
    if isinstance(node, q.Null):
        return None
    if isinstance(node, q.Boolean):
        return node.val.lower() == "true" if isinstance(node.val, str) else bool(node.val)
    if isinstance(node, q.Integer):
        return int(node.val)
    if isinstance(node, q.Float):
        return decimal.Decimal(str(node.val))
    return node.val


def _compare(op: Any, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()  # both services compare strings without case
    if isinstance(op, q.Eq):
        return left == right
    if isinstance(op, q.NotEq):
        return left != right
    if left is None or right is None:
        return False
    try:
        if isinstance(op, q.Lt):
            return left < right
        if isinstance(op, q.LtE):
            return left <= right
        if isinstance(op, q.Gt):
            return left > right
        if isinstance(op, q.GtE):
            return left >= right
    except TypeError:
        return False
    raise ValueError(f"unsupported comparison {type(op).__name__}")


_predicates: dict[str, Callable[[dict[str, Any]], bool]] = {}


def predicate(text: str) -> Callable[[dict[str, Any]], bool]:
    if text not in _predicates:
        _predicates[text] = compile_predicate(text)
    return _predicates[text]


def filter_columns(text: str) -> set[str]:
    """The column names a map filter reads."""
    if not hasattr(_parser_state, "parser"):
        _parser_state.lexer, _parser_state.parser = ODataLexer(), ODataParser()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, q.Identifier):
            names.add(node.name)
        for child in ("left", "right", "operand"):
            if hasattr(node, child):
                walk(getattr(node, child))

    walk(_parser_state.parser.parse(_parser_state.lexer.tokenize(text)))
    return names


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
    text = record.map.scm_filter if record.direction == "to_sales" else record.map.sales_filter
    if text and not predicate(text)(record.source):
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


class _Plain(NamedTuple):
    """A plain (non-lookup) field as the steps use it."""

    scm: str  # the SCM name as the map spells it
    column: str  # the Sales column
    scm_name: str  # the SCM name as the entity spells it
    item: FieldMap
    #: FieldMap.value_to_sales, or None where it is the identity (no default, no value map)
    to_sales: Callable[[Any], Any] | None


class _Lookup(NamedTuple):
    """A lookup field as the steps use it."""

    item: FieldMap
    to_sales: Callable[[Any], Any] | None  # as in _Plain
    unset: str  # "nav@odata.bind" of the first alternative: what an empty value clears
    hint: str  # "@sandbox.lookup.<scm>": where the engine says which polymorphic alternative exists


@dataclass(frozen=True)
class _FieldPlan:
    """A map's fields sorted once per direction (the steps below run for every row of an initial sync)."""

    plain: tuple[_Plain, ...]
    lookups: tuple[_Lookup, ...]
    #: fields with several Sales alternatives (``a.x|b.y``), in map order
    polymorphic: tuple[FieldMap, ...]


_field_plans: dict[tuple[int, str], tuple[TableMap, _FieldPlan]] = {}


def _fields_of(table_map: TableMap, direction: str) -> _FieldPlan:
    """The plan of ``table_map``'s fields in ``direction``. Keyed by the map object: a loaded map is not edited
    in place (changing a map loads a new :class:`TableMap`), so a plan never outlives what it was made from."""
    found = _field_plans.get((id(table_map), direction))
    if found is not None and found[0] is table_map:
        return found[1]
    moving = [item for item in table_map.fields if (item.to_sales if direction == "to_sales" else item.to_scm)]
    plan = _FieldPlan(
        tuple(
            _Plain(
                item.scm, item.sales[0].column, _canonical_scm_name(table_map, item.scm), item, _sales_translator(item)
            )
            for item in moving
            if not item.is_lookup
        ),
        tuple(
            _Lookup(item, _sales_translator(item), f"{item.sales[0].nav}@odata.bind", f"@sandbox.lookup.{item.scm}")
            for item in moving
            if item.is_lookup
        ),
        tuple(item for item in moving if len(item.sales) > 1),
    )
    _field_plans[(id(table_map), direction)] = (table_map, plan)  # the map is kept, so its id stays its own
    return plan


_UNKNOWN: Any = object()


def _sales_translator(item: FieldMap) -> Callable[[Any], Any] | None:
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


def polymorphic_fields(table_map: TableMap) -> tuple[FieldMap, ...]:
    """The fields of ``table_map`` toward Sales with several lookup alternatives (``a.x|b.y``), in map order:
    the ones whose alternative the engine picks before the pipeline runs."""
    return _fields_of(table_map, "to_sales").polymorphic


#: the value types that are already in wire format (see :func:`_to_wire`)
_WIRE_TYPES = (str, int, float, bool)


def map_fields(record: Record) -> Record:
    """Copy plain (non-lookup) fields in the record's direction, through their defaults and value maps.
    A value mapped to ``KEEP`` leaves the target column out of the payload (it keeps its value)."""
    source, target = record.source, record.target
    if record.direction == "to_sales":
        for scm, column, _, _, translate in _fields_of(record.map, "to_sales").plain:
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
        for _, column, scm_name, item, _ in _fields_of(record.map, "to_scm").plain:
            value = source.get(column)
            if item.scm_default and value in (None, ""):
                continue  # SCM keeps (or makes) its own value
            target[scm_name] = _to_wire(item.value_to_scm(value))
    return record


def _canonical_scm_name(table_map: TableMap, name: str) -> str:
    entity = table_map.scm_type
    if entity is None or name in entity.properties:
        return name
    for prop_name in entity.properties:
        if prop_name.lower() == name.lower():
            return prop_name
    return name


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
    name, entity_set, company_scoped = _bind_target(sales_model, entity, path)
    literal = format_literal(value, guid_bare=False)
    if company_scoped:
        if company_id is None:
            raise MissingParent(f"the company of {entity_set} {path.column}={value} is not known in Sales")
        return name, f"/{entity_set}({path.column}={literal},_msdyn_company_value={company_id})"
    return name, f"/{entity_set}({path.column}={literal})"


_bind_targets: dict[tuple[int, int, str | None, str], tuple[Model, EntityType, tuple[str, str, bool]]] = {}


def _bind_target(sales_model: Model, entity: EntityType, path: SalesPath) -> tuple[str, str, bool]:
    """What a lookup's bind needs from the Sales model: the bind's name, the target's entity set and whether
    the target's alternate key includes the company. Every lookup of every row needs it, so it is worked out
    once per model, entity and path; it depends on nothing else (no map), and a service's model does not
    change while the bridge runs."""
    cache_key = (id(sales_model), id(entity), path.nav, path.column)
    found = _bind_targets.get(cache_key)
    if found is not None and found[0] is sales_model and found[1] is entity:
        return found[2]
    nav = entity.navigations[path.nav or ""]
    target = sales_model.entities[nav.target]
    company_scoped = any(path.column in k and "_msdyn_company_value" in k for k in target.alternate_keys) and not any(
        set(k) == {path.column} for k in target.alternate_keys
    )
    answer = (f"{nav.name}@odata.bind", target.entity_set, company_scoped)
    _bind_targets[cache_key] = (sales_model, entity, answer)  # both kept, so their ids stay their own
    return answer


def resolve_lookups(record: Record) -> Record:
    """To Sales: lookup fields become ``@odata.bind`` references by the related table's alternate key.
    To SCM: the related Sales row (supplied by the engine) gives the value of the SCM field."""
    lookups = _fields_of(record.map, record.direction).lookups
    if record.direction == "to_sales":
        for lookup in lookups:
            _lookup_to_sales(record, lookup)
    else:
        for lookup in lookups:
            _lookup_to_scm(record, lookup.item)
    return record


def _lookup_to_sales(record: Record, lookup: _Lookup) -> None:
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
    name, reference = lookup_bind(record.sales_model, entity, path, value, record.company_id)
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
        record.target[_canonical_scm_name(record.map, item.scm)] = item.default
        return
    record.target[_canonical_scm_name(record.map, item.scm)] = item.value_to_scm(value) if value is not None else ""


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
        company = str(record.source.get("dataAreaId") or "").lower()
        if not company:
            raise Drop("the SCM row has no dataAreaId")
        record.company = company
        record.target["msdyn_company@odata.bind"] = f"/cdm_companies(cdm_companycode='{company}')"
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
        strings, others = _sales_conversions(entity)
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


_sales_conversions_by_entity: dict[int, tuple[EntityType, tuple[frozenset[str], dict[str, Property]]]] = {}


def _sales_conversions(entity: EntityType) -> tuple[frozenset[str], dict[str, Property]]:
    """The columns of a Sales entity :func:`to_sales_value` may change: plain strings ("" is null) and the
    date and whole-number columns (by property); on any other column it returns the value as it is. Worked
    out once per entity (a service's model does not change while the bridge runs)."""
    found = _sales_conversions_by_entity.get(id(entity))
    if found is not None and found[0] is entity:
        return found[1]
    strings = frozenset(name for name, prop in entity.properties.items() if prop.type == m.STRING and prop.enum is None)
    others = {
        name: prop for name, prop in entity.properties.items() if prop.type in (m.DATE, m.DATETIME, m.INT32, m.INT64)
    }
    _sales_conversions_by_entity[id(entity)] = (entity, (strings, others))  # kept, so its id stays its own
    return strings, others


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
            name = _canonical_scm_name(record.map, key.scm)
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
    their currency; when the currency has none, one is created first (dual-write.md 4.2). Rows that exist in
    Sales keep whatever price list they have. Needs ``record.sales``; without it the step does nothing."""
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
            out[_canonical_scm_name(table_map, key.scm)] = record.target.get(_canonical_scm_name(table_map, key.scm))
    return out
