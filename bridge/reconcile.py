"""Reconcile: compare both sides of table maps and say what differs (``sandbox reconcile``).

Both sides are read and transformed exactly as initial sync reads them (:class:`bridge.initial.InitialSync`,
same pipeline, same integration-key matching with the company), then compared instead of written:

* **missing in Sales / missing in SCM**: a row that passes the map's filter on one side and has no row
  with its integration key on the side it syncs to;
* **differing**: a row on both sides whose mapped fields disagree, direction by direction: what the map syncs
  SCM -> Sales (two-way and ``>`` fields, so SCM's amounts, tax and totals on documents) compared in Sales
  terms, what it syncs only Sales -> SCM (``<``) in SCM terms (value maps and lookups applied, numbers
  compared with a small tolerance, ``null`` equal to ``""`` as initial sync does). The map's constants are
  not compared. Each difference says why it is one: map, field, direction, key, the value the map gives
  and the value the other side holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bridge.compiled import canonical_scm_name
from bridge.initial import InitialSync, _differs
from bridge.mapping import FieldMap, TableMap
from bridge.pipeline import Record

#: a sample of each kind of difference is enough to act on; the counts are always complete
SAMPLE = 50


@dataclass
class MapComparison:
    """The differences of one map between the two sides."""

    id: str
    name: str
    compared: int = 0
    missing_in_sales: list[dict[str, Any]] = field(default_factory=list)
    missing_in_scm: list[dict[str, Any]] = field(default_factory=list)
    differing: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"missing_in_sales": 0, "missing_in_scm": 0, "differing": 0})

    @property
    def equal(self) -> bool:
        return not any(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "equal": self.equal,
            "compared": self.compared,
            "counts": dict(self.counts),
            "missing_in_sales": self.missing_in_sales,
            "missing_in_scm": self.missing_in_scm,
            "differing": self.differing,
        }

    def _add(self, kind: str, item: dict[str, Any]) -> None:
        self.counts[kind] += 1
        bucket: list[dict[str, Any]] = getattr(self, kind)
        if len(bucket) < SAMPLE:
            bucket.append(item)


def _sales_value(row: dict[str, Any], text: str) -> Any:
    nav, _, column = text.rpartition(".")
    if nav:
        related = row.get(nav)
        return related.get(column) if isinstance(related, dict) else None
    return row.get(column)


class Reconciler:
    """Compares the two sides of maps through a bridge engine (only reads; writes nothing)."""

    def __init__(self, initial: InitialSync) -> None:
        self.initial = initial

    def compare(self, table_map: TableMap) -> MapComparison:
        # Reading is initial sync's own (private) reading: one implementation of "what each side holds".
        self.initial.engine.load_companies()
        scm = self.initial._read_scm(table_map)
        sales = self.initial._read_sales(table_map)
        result = MapComparison(table_map.id, table_map.name)
        if table_map.syncs_to_sales:
            why = f"{table_map.id} syncs SCM -> Sales, the SCM row passes the map's filter and no Sales row has its key"
            for key in scm.payloads:
                if key not in sales.rows:
                    result._add("missing_in_sales", {**json.loads(key), "map": table_map.id, "why": why})
        if table_map.syncs_to_scm:
            why = f"{table_map.id} syncs Sales -> SCM, the Sales row passes the map's filter and no SCM row has its key"
            for key in sales.payloads:
                if key not in scm.rows:
                    result._add("missing_in_scm", {**json.loads(key), "map": table_map.id, "why": why})
        for key in sorted(set(scm.rows) & set(sales.rows)):
            if key not in scm.payloads and key not in sales.payloads:
                continue  # filtered out on both sides: not the map's row
            result.compared += 1
            fields = self._differences(
                table_map, scm.payloads.get(key), sales.payloads.get(key), scm.rows[key], sales.rows[key]
            )
            if fields:
                result._add("differing", {**json.loads(key), "fields": fields})
        return result

    def _differences(
        self,
        table_map: TableMap,
        to_sales: Record | None,
        to_scm: Record | None,
        scm_row: dict[str, Any],
        sales_row: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """The fields of one record that break the map's promise, direction by direction: a field synced
        SCM -> Sales (``>`` and ``=``) is compared as SCM's row transformed toward Sales against the Sales row;
        a field synced only Sales -> SCM (``<``) the other way round; a two-way field once, toward Sales (or
        toward SCM when the SCM row is not the map's). The map's constants (``defaults``) are not compared:
        they are written, not kept equal."""
        out: list[dict[str, Any]] = []
        if to_sales is not None and table_map.syncs_to_sales:
            for item in table_map.fields:
                if not item.to_sales:
                    continue
                for path in item.sales:
                    name = path.column if path.nav is None else f"{path.nav}@odata.bind"
                    if name not in to_sales.target:
                        continue  # a value mapped to "keep", or another polymorphic alternative
                    value = to_sales.target[name]
                    if _differs({name: value}, sales_row):
                        out.append(
                            _difference(table_map, item, path.text, "to_sales", scm_row, sales_row, expected=value)
                        )
        if to_scm is not None and table_map.syncs_to_scm:
            for item in table_map.fields:
                two_way_seen = item.direction == "=" and to_sales is not None and table_map.syncs_to_sales
                if not item.to_scm or two_way_seen:
                    continue
                name = canonical_scm_name(table_map, item.scm)
                if name not in to_scm.target:
                    continue  # an empty value SCM defaults itself (scm_default)
                value = to_scm.target[name]
                if _differs({name: value}, scm_row):
                    text = "|".join(p.text for p in item.sales)
                    out.append(_difference(table_map, item, text, "to_scm", scm_row, sales_row, expected=value))
        return out


#: how a direction reads in a difference
DIRECTIONS = {"to_sales": "SCM -> Sales", "to_scm": "Sales -> SCM"}
#: how a field's map direction reads
SYNCED = {"=": "both ways", ">": "SCM -> Sales only", "<": "Sales -> SCM only"}


def _difference(
    table_map: TableMap,
    item: FieldMap,
    sales_field: str,
    direction: str,
    scm_row: dict[str, Any],
    sales_row: dict[str, Any],
    *,
    expected: Any,
) -> dict[str, Any]:
    """One field that differs, with what makes it a difference (the map, the field, the direction, the
    value the map's transform gives for the other side, and what that side holds)."""
    scm_value = scm_row.get(canonical_scm_name(table_map, item.scm))
    sales_value = _sales_value(sales_row, sales_field.split("|")[0])
    if direction == "to_sales":
        why = (
            f"{table_map.id} syncs {item.scm} -> {sales_field} ({SYNCED[item.direction]}): SCM's {scm_value!r} "
            f"maps to {_shown(expected)} in Sales, Sales has {sales_value!r}"
        )
    else:
        why = (
            f"{table_map.id} syncs {sales_field} -> {item.scm} ({SYNCED[item.direction]}): Sales' {sales_value!r} "
            f"maps to {expected!r} in SCM, SCM has {scm_value!r}"
        )
    return {
        "map": table_map.id,
        "direction": direction,
        "scm_field": item.scm,
        "sales_field": sales_field,
        "scm_value": scm_value,
        "sales_value": sales_value,
        "expected": expected,
        "why": why,
    }


def _shown(value: Any) -> str:
    """A value as a difference shows it: a lookup bind by the key it names."""
    if isinstance(value, str) and value.startswith("/") and value.endswith(")") and "(" in value:
        return value[1:]
    return repr(value)


def describe_difference(item: dict[str, Any], field_item: dict[str, Any]) -> str:
    """One line per differing field for ``sandbox reconcile``: the record, the direction and why."""
    direction = DIRECTIONS.get(str(field_item.get("direction")), "?")
    return f"differs ({direction}): {describe_key(item)}: {field_item.get('why')}"


def describe_key(item: dict[str, Any]) -> str:
    """``demf CustomerAccount=DE-001`` for a reconcile key."""
    key = ", ".join(f"{k}={v}" for k, v in (item.get("key") or {}).items())
    return f"{item['company']} {key}" if item.get("company") else key


__all__ = ["Reconciler", "MapComparison", "describe_key", "describe_difference"]
