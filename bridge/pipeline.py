"""The sync pipeline: small pure steps that turn a source row into the target payload.

Each step takes and returns a :class:`Record` (plain dicts inside) and may raise :class:`Drop` to leave a
row out (a filter said no). I/O happens elsewhere: the engine supplies what the steps need to know about the
other side (the company's Sales id, the rows a Sales lookup points at) as plain values and callables.

Rows are in wire format: SCM enums as member names, Sales choices as integers, Sales lookups as
``_x_value`` GUIDs. Payloads for Sales write lookups as ``nav@odata.bind`` references by alternate key.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from odata_query import ast as q
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from bridge.mapping import FieldMap, SalesPath, TableMap
from sandbox.odata.model import EntityType, Model
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
    return lambda row: bool(_evaluate(tree, row))


def _check_tree(node: Any) -> None:
    allowed = (q.Compare, q.BoolOp, q.UnaryOp, q.Identifier, q.String, q.Integer, q.Float, q.Boolean, q.Null,
               q.GUID, q.DateTime, q.Date)
    if not isinstance(node, allowed):
        raise ValueError(f"unsupported expression {type(node).__name__} in a map filter")
    for child in ("left", "right", "operand"):
        if hasattr(node, child):
            _check_tree(getattr(node, child))


def _evaluate(node: Any, row: dict[str, Any]) -> Any:
    if isinstance(node, q.BoolOp):
        left = _evaluate(node.left, row)
        if isinstance(node.op, q.And):
            return bool(left) and bool(_evaluate(node.right, row))
        return bool(left) or bool(_evaluate(node.right, row))
    if isinstance(node, q.UnaryOp):
        return not _evaluate(node.operand, row)
    if isinstance(node, q.Compare):
        return _compare(node.comparator, _evaluate(node.left, row), _evaluate(node.right, row))
    if isinstance(node, q.Identifier):
        return row.get(node.name)
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


def map_fields(record: Record) -> Record:
    """Copy plain (non-lookup) fields in the record's direction, through their value maps."""
    for item in record.map.fields:
        if item.is_lookup:
            continue
        column = item.sales[0].column
        if record.direction == "to_sales" and item.to_sales:
            record.target[column] = _to_wire(item.value_to_sales(_scm_value(record.source, item.scm)))
        elif record.direction == "to_scm" and item.to_scm:
            record.target[_canonical_scm_name(record.map, item.scm)] = _to_wire(
                item.value_to_scm(record.source.get(column)))
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

def lookup_bind(sales_model: Model, entity: EntityType, path: SalesPath, value: Any,
                company_id: str | None) -> tuple[str, str]:
    """``("nav@odata.bind", "/targets(column='v'[,_msdyn_company_value=<id>])")`` for a Sales lookup."""
    nav = entity.navigations[path.nav or ""]
    target = sales_model.entities[nav.target]
    key_parts = [f"{path.column}={format_literal(value, guid_bare=False)}"]
    company_scoped = any(path.column in k and "_msdyn_company_value" in k for k in target.alternate_keys) and not any(
        set(k) == {path.column} for k in target.alternate_keys)
    if company_scoped:
        if company_id is None:
            raise MissingParent(f"the company of {target.entity_set} {path.column}={value} is not known in Sales")
        key_parts.append(f"_msdyn_company_value={company_id}")
    return f"{nav.name}@odata.bind", f"/{target.entity_set}({','.join(key_parts)})"


def resolve_lookups(record: Record) -> Record:
    """To Sales: lookup fields become ``@odata.bind`` references by the related table's alternate key.
    To SCM: the related Sales row (supplied by the engine) gives the value of the SCM field."""
    for item in record.map.fields:
        if not item.is_lookup:
            continue
        if record.direction == "to_sales" and item.to_sales:
            _lookup_to_sales(record, item)
        elif record.direction == "to_scm" and item.to_scm:
            _lookup_to_scm(record, item)
    return record


def _lookup_to_sales(record: Record, item: FieldMap) -> None:
    value = item.value_to_sales(_scm_value(record.source, item.scm))
    entity = record.map.sales_type
    assert entity is not None and record.sales_model is not None
    path = item.sales[0]
    if value in (None, ""):
        record.target[f"{path.nav}@odata.bind"] = None
        return
    if len(item.sales) > 1:
        # Polymorphic: the engine tells which alternative exists by pre-filling "@sandbox.lookup.<scm>".
        chosen = record.target.pop(f"@sandbox.lookup.{item.scm}", 0)
        path = item.sales[chosen]
    name, reference = lookup_bind(record.sales_model, entity, path, value, record.company_id)
    record.target[name] = reference


def _lookup_to_scm(record: Record, item: FieldMap) -> None:
    value = None
    for path in item.sales:
        related = record.related(path.nav or "", record.source) if record.related else None
        if related is not None:
            value = related.get(path.column)
            break
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


# ---- the whole pipeline --------------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (source_filter, company_scope, map_fields, resolve_lookups, apply_defaults)


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
