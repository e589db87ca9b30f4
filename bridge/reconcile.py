"""Reconcile: compare both sides of table maps and say what differs (``sandbox reconcile``).

Both sides are read and transformed exactly as initial sync reads them (:class:`bridge.initial.InitialSync`,
same pipeline, same integration-key matching with the company), then compared instead of written:

* **missing in Sales / missing in SCM**: a row that passes the map's filter on one side and has no row
  with its integration key on the side it syncs to;
* **differing**: a row on both sides whose mapped fields disagree (value maps, lookups and defaults
  applied, numbers compared with a small tolerance, ``null`` equal to ``""`` as initial sync does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bridge.initial import InitialSync, _differs
from bridge.mapping import TableMap
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
            for key in scm.payloads:
                if key not in sales.rows:
                    result._add("missing_in_sales", json.loads(key))
        if table_map.syncs_to_scm:
            for key in sales.payloads:
                if key not in scm.rows:
                    result._add("missing_in_scm", json.loads(key))
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
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        if to_sales is not None and table_map.syncs_to_sales:
            for name, value in to_sales.target.items():
                if not _differs({name: value}, sales_row):
                    continue
                nav = name[: -len("@odata.bind")] if name.endswith("@odata.bind") else None
                item = next(
                    (
                        f
                        for f in table_map.fields
                        if (f.sales[0].nav == nav if nav else not f.is_lookup and f.sales[0].column == name)
                    ),
                    None,
                )
                scm_field = item.scm if item else None
                sales_field = item.sales[0].text if item else name
                seen.add(scm_field or name)
                out.append(
                    {
                        "scm_field": scm_field,
                        "sales_field": sales_field,
                        "scm_value": scm_row.get(scm_field) if scm_field else value,
                        "sales_value": _sales_value(sales_row, sales_field),
                    }
                )
        if to_scm is not None and table_map.syncs_to_scm:
            for name, value in to_scm.target.items():
                if name in seen or not _differs({name: value}, scm_row):
                    continue
                item = next((f for f in table_map.fields if f.scm == name), None)
                out.append(
                    {
                        "scm_field": name,
                        "sales_field": "|".join(p.text for p in item.sales) if item else None,
                        "scm_value": scm_row.get(name),
                        "sales_value": _sales_value(sales_row, item.sales[0].text) if item else value,
                    }
                )
        return out


def describe_key(item: dict[str, Any]) -> str:
    """``demf CustomerAccount=DE-001`` for a reconcile key."""
    key = ", ".join(f"{k}={v}" for k, v in (item.get("key") or {}).items())
    return f"{item['company']} {key}" if item.get("company") else key


__all__ = ["Reconciler", "MapComparison", "describe_key"]
