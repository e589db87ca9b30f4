"""Write-back: what SCM computed during a synced write goes back to the Sales row it came from.

A customer created in Sales gets a party number, an on-hold status, payment-terms base days and more from
SCM; an order line written to SCM gets SCM's price, tax and amounts, and its order header SCM's totals. The
bridge's own write is not sent back (echo prevention), so without this step Sales would keep its nulls and
its own untaxed totals while SCM holds the real figures. Dual-write takes the target's answer and applies the
values the target filled in to the source row in the same unit; so does the bridge:

1. after a unit of Sales -> SCM writes succeeded, the SCM row of each write is taken from SCM's answer (a
   one-row create answers with the row) or read back by integration key (updates answer 204; in a unit of
   several writes a later write may change an earlier row, so every row is read after the change set);
2. so is the header of every written line (SCM recomputes a quotation's or an order's totals from its lines);
3. each SCM row goes through the map toward Sales (the same pipeline a change from SCM takes), and the
   fields the map syncs SCM -> Sales whose value differs from the Sales row's become the write-back, with
   the map's Sales constants for columns the Sales row leaves empty (an account's address type);
4. live sync answers the source service with them (``/api/live``'s ``writeback``), and the source applies
   them inside its still open transaction as the integration identity (:class:`sandbox.livesync.LiveSyncHook`):
   both in one commit, and never sent again. Replays (async, catch-up) find the source committed and
   ``PATCH`` it as the integration identity instead: recorded, never sent back.

Nothing here may fail the unit: the other side has committed, so a failed read-back is logged and the unit
stands (reconcile then shows what is left to converge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.compiled import canonical_scm_name
from bridge.mapping import TableMap
from bridge.pipeline import (
    Drop,
    MissingParent,
    Record,
    apply_defaults,
    coerce_values,
    company_scope,
    map_fields,
    resolve_lookups,
    source_filter,
    transform,
)
from sandbox.clients import ServiceError
from sandbox.odata.literals import format_literal
from sandbox.wellknown import INTEGRATION_IDENTITY

if TYPE_CHECKING:
    from bridge.engine import SyncEngine, Write

log = logging.getLogger(__name__)

#: the pipeline toward Sales without its last steps: the key is known, and a write-back never creates a
#: product, so neither the key check nor the price-list rule (which reads Sales, the source) applies
STEPS = (source_filter, company_scope, map_fields, resolve_lookups, apply_defaults, coerce_values)

Getter = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class WriteBack:
    """Values to apply to one source row: its table (entity name), primary key and a ``PATCH`` body."""

    map_id: str
    table: str
    key: dict[str, Any]
    values: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The shape ``/api/live`` answers with (see :meth:`sandbox.livesync.LiveSyncHook.apply_writeback`)."""
        return {"map": self.map_id, "table": self.table, "key": self.key, "values": self.values}


def compute(
    engine: SyncEngine,
    source: str,
    writes: list[Write],
    getter: Getter,
    maps: Callable[[TableMap], bool],
) -> list[WriteBack]:
    """The write-back of one unit the engine wrote (see the module docstring); lines before headers."""
    if source != "sales":
        return []  # SCM computes; Sales keeps what SCM sends (its own totals are SCM's too)
    upserts = [w for w in writes if w.target == "scm" and w.operation == "upsert" and w.map.syncs_to_sales]
    if not upserts:
        return []
    found: dict[tuple[str, str], WriteBack] = {}
    images = []
    for write in upserts:
        image = engine.wire_image("sales", write.change["table"], write.change.get("after") or {})
        image["@sandbox.table"] = write.change["table"]
        images.append(image)
    # One create answers with its row; in a unit of several, a later write may change an earlier row.
    answered = _answered_row(upserts[0]) if len(writes) == 1 else None
    rows = {_ident(upserts[0].map, upserts[0].key, upserts[0].company): answered} if answered else {}
    if not answered:
        rows = _read_many(engine, [(w.map, w.key, w.company) for w in upserts])
    written = set()
    parents: dict[tuple[str, str], tuple[TableMap, dict[str, Any], str | None, dict[str, Any]]] = {}
    for write, image in zip(upserts, images, strict=True):
        ident = _ident(write.map, write.key, write.company)
        written.add(ident)
        scm_row = rows.get(ident)
        if scm_row is not None:
            _add(found, engine, write.map, scm_row, image, dict(write.change["key"]), getter)
        parent = _parent(engine, write, image, getter, maps)
        if parent is not None:
            header_type = parent[0].sales_type
            assert header_type is not None
            parents.setdefault((parent[0].id, str(parent[3].get(header_type.key[0]))), parent)
    for write in upserts:
        for child_map, children in _children(engine, write, maps):
            entity = child_map.sales_type
            assert entity is not None
            for scm_row, sales_key in children:
                scm_key = {canonical_scm_name(child_map, k.scm): _field(scm_row, k.scm) for k in child_map.keys}
                if _ident(child_map, scm_key, write.company) in written:
                    continue  # written in this unit: its own item has it
                values = values_for_sales(
                    engine, child_map, scm_row, {"@sandbox.table": entity.name}, getter, known=False
                )
                if values:
                    found[(entity.name, str(sales_key))] = WriteBack(child_map.id, entity.name, sales_key, values)
    header_rows = _read_many(engine, [(m, key, company) for m, key, company, _ in parents.values()])
    for table_map, key, company, image in parents.values():
        entity = table_map.sales_type
        assert entity is not None
        scm_row = header_rows.get(_ident(table_map, key, company))
        if scm_row is not None:
            found.pop((entity.name, str(image.get(entity.key[0]))), None)  # read after the lines: newer
            _add(found, engine, table_map, scm_row, image, {entity.key[0]: image.get(entity.key[0])}, getter)
    return list(found.values())


def send(engine: SyncEngine, items: list[WriteBack]) -> None:
    """Apply write-backs to Sales rows that are already committed (replays), as the integration identity."""
    headers = {"X-Sandbox-Identity": INTEGRATION_IDENTITY}
    for item in items:
        entity = engine.sales_model.entities[item.table]
        try:
            engine.sales.request(
                "PATCH",
                engine.sales.entity_path(entity.entity_set, next(iter(item.key.values()))),
                json_body=item.values,
                headers={**headers, "If-Match": "*"},
            )
        except (ServiceError, OSError) as exc:
            log.warning("write-back to %s %s failed: %s", item.table, item.key, exc)
            engine.state.activity(item.map_id, "error", f"write-back to Sales failed: {exc}")


# ---- reading the SCM row -----------------------------------------------------------------------------------


def _answered_row(write: Write) -> dict[str, Any] | None:
    """The row SCM answered a create with (an update answers 204, without one)."""
    body = write.response.get("body") if write.response else None
    if write.response.get("status") == 201 and isinstance(body, dict):
        return body
    return None


#: rows read back per query (an ``or`` of keys): a unit of a thousand rows is not a thousand reads
READ_CHUNK = 40


def _field(row: dict[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    lowered = name.lower()
    return next((v for k, v in row.items() if k.lower() == lowered), None)


def _ident(table_map: TableMap, key: dict[str, Any], company: str | None) -> tuple[str, str, tuple[str, ...]]:
    """A record of ``table_map`` by its SCM key and company, however its names and values are cased."""
    values = tuple(sorted(f"{name.lower()}={str(value).lower()}" for name, value in key.items()))
    scoped = table_map.scm_type is not None and table_map.scm_type.company_property
    return table_map.id, (company or "").lower() if scoped else "", values


def _read_many(
    engine: SyncEngine, wanted: list[tuple[TableMap, dict[str, Any], str | None]]
) -> dict[tuple[str, str, tuple[str, ...]], dict[str, Any]]:
    """The SCM rows of ``(map, key, company)`` records, by :func:`_ident` (absent ones left out)."""
    by_map: dict[str, list[tuple[TableMap, dict[str, Any], str | None]]] = {}
    for item in wanted:
        by_map.setdefault(item[0].id, []).append(item)
    found: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for items in by_map.values():
        table_map = items[0][0]
        entity = table_map.scm_type
        assert entity is not None
        for start in range(0, len(items), READ_CHUNK):
            clauses = []
            for _, key, company in items[start : start + READ_CHUNK]:
                parts = [f"{name} eq {format_literal(value, guid_bare=False)}" for name, value in key.items()]
                if entity.company_property and company:
                    parts.append(f"dataAreaId eq {format_literal(company, guid_bare=False)}")
                clauses.append("(" + " and ".join(parts) + ")")
            try:
                rows = engine.scm.query(entity.entity_set, filter=" or ".join(clauses), cross_company=True)
            except (ServiceError, OSError) as exc:
                log.warning("%s: reading rows back from SCM failed: %s", table_map.id, exc)
                engine.state.activity(table_map.id, "error", f"write-back: reading rows back from SCM failed: {exc}")
                continue
            for row in rows:
                key = {name: _field(row, name) for name in items[0][1]}
                company = str(row.get("dataAreaId") or "") if entity.company_property else None
                found[_ident(table_map, key, company)] = row
    return found


def _parent(
    engine: SyncEngine, write: Write, image: dict[str, Any], getter: Getter, maps: Callable[[TableMap], bool]
) -> tuple[TableMap, dict[str, Any], str | None, dict[str, Any]] | None:
    """The header a written line belongs to: its map, SCM key, company and Sales image (None for a row
    that is not a line, or a header that no running map syncs back)."""
    nav_name = write.map.company_from
    sales_type = write.map.sales_type
    if nav_name is None or sales_type is None or nav_name not in sales_type.navigations:
        return None
    header_table = sales_type.navigations[nav_name].target
    header_maps = [
        m
        for m in engine.maps
        if m.sales_type is not None and m.sales_type.name == header_table and m.syncs_to_sales and maps(m)
    ]
    if not header_maps:
        return None
    header = getter(nav_name, image)
    if header is None:
        return None
    table_map = header_maps[0]
    by_lower = {name.lower(): value for name, value in write.key.items()}
    key: dict[str, Any] = {}
    for item in table_map.keys:
        value = by_lower.get(item.scm.lower())
        if value is None:
            return None
        key[canonical_scm_name(table_map, item.scm)] = value
    header = {**header, "@sandbox.table": header_table}
    return table_map, key, write.company, header


def _children(
    engine: SyncEngine, write: Write, maps: Callable[[TableMap], bool]
) -> list[tuple[TableMap, list[tuple[dict[str, Any], dict[str, Any]]]]]:
    """For a written header: the lines of every running line map, read from SCM (SCM changes its lines
    with its header: a confirmed quotation's lines are confirmed too), each with the Sales key that finds
    its Sales line (the header's id and the line's own key columns)."""
    header_type = write.map.sales_type
    header_id = (write.change.get("after") or {}).get(header_type.key[0]) if header_type is not None else None
    if header_type is None or header_id is None:
        return []
    by_lower = {name.lower(): value for name, value in write.key.items()}
    out: list[tuple[TableMap, list[tuple[dict[str, Any], dict[str, Any]]]]] = []
    for child in engine.maps:
        line_type, scm_type, nav_name = child.sales_type, child.scm_type, child.company_from
        if line_type is None or scm_type is None or nav_name is None or not (child.syncs_to_sales and maps(child)):
            continue
        nav = line_type.navigations.get(nav_name)
        if nav is None or nav.target != header_type.name or len(nav.pairs) != 1:
            continue
        conditions: dict[str, Any] = {}
        line_key: list[tuple[str, str]] = []  # (SCM field, Sales column) of the line's own key columns
        for item in child.keys:
            path = item.sales[0]
            if path.nav == nav_name:
                value = by_lower.get(item.scm.lower())
                if value is None:
                    break
                conditions[canonical_scm_name(child, item.scm)] = value
            elif path.nav is None:
                line_key.append((canonical_scm_name(child, item.scm), path.column))
            else:
                break
        else:
            if not conditions:
                continue
            parts = [f"{name} eq {format_literal(value, guid_bare=False)}" for name, value in conditions.items()]
            if scm_type.company_property and write.company:
                parts.append(f"dataAreaId eq {format_literal(write.company, guid_bare=False)}")
            try:
                rows = engine.scm.query(scm_type.entity_set, filter=" and ".join(parts), cross_company=True)
            except (ServiceError, OSError) as exc:
                log.warning("%s: reading the lines of %s from SCM failed: %s", child.id, conditions, exc)
                continue
            fk = nav.pairs[0][0]
            found = [(row, {fk: header_id, **{column: row.get(scm) for scm, column in line_key}}) for row in rows]
            out.append((child, found))
    return out


# ---- SCM row -> values for the Sales row --------------------------------------------------------------------


def _add(
    found: dict[tuple[str, str], WriteBack],
    engine: SyncEngine,
    table_map: TableMap,
    scm_row: dict[str, Any],
    image: dict[str, Any],
    sales_key: dict[str, Any],
    getter: Getter,
) -> None:
    values = values_for_sales(engine, table_map, scm_row, image, getter)
    if not values:
        return
    table = str(image.get("@sandbox.table"))
    ident = (table, str(next(iter(sales_key.values()))))
    existing = found.get(ident)
    if existing is not None:
        existing.values.update(values)
    else:
        found[ident] = WriteBack(table_map.id, table, sales_key, values)


def values_for_sales(
    engine: SyncEngine,
    table_map: TableMap,
    scm_row: dict[str, Any],
    sales_row: dict[str, Any],
    getter: Getter,
    *,
    known: bool = True,
) -> dict[str, Any]:
    """What to write to ``sales_row`` (a Sales image in wire format) so that every field ``table_map`` syncs
    SCM -> Sales agrees with ``scm_row``: the transformed values that differ, lookups as binds. When any
    does, the one-way fields (SCM's amounts) come along whole, so Sales takes them as given instead of
    working out the ones left out from the ones sent. Without a ``known`` image, every mapped value is
    given (the source leaves out what it already holds) and the map's constants none."""
    entity = table_map.sales_type
    assert entity is not None
    record = Record(
        table_map,
        "to_sales",
        dict(scm_row),
        related=getter,
        sales_model=engine.sales_model,
        compiled_map=engine.compiled(table_map),
    )
    code = str(scm_row.get("dataAreaId") or "").lower() or None
    record.company = code
    if table_map.company or table_map.company_from:
        record.company_id = engine.known_company_id(code)
    for item in record.compiled.to_sales.polymorphic:
        # the alternative the Sales row uses (the engine would ask Sales, the source, which is mid-transaction)
        for index, path in enumerate(item.sales):
            nav = entity.navigations.get(path.nav or "")
            if nav is not None and _points(sales_row, nav.pairs, nav.local_condition):
                record.target[f"@sandbox.lookup.{item.scm}"] = index
                break
    try:
        record = transform(record, STEPS)
    except (Drop, MissingParent):
        return {}
    mapped: set[str] = set()
    for item in table_map.fields:
        if item.to_sales:
            mapped.update(p.column if p.nav is None else f"{p.nav}@odata.bind" for p in item.sales)
    keys = {p.column if p.nav is None else f"{p.nav}@odata.bind" for item in table_map.keys for p in item.sales}
    one_way = {
        p.column for item in table_map.fields if item.direction == ">" and not item.is_lookup for p in item.sales
    }
    out: dict[str, Any] = {}
    for name, value in record.target.items():
        if name.startswith("@") or name in keys or name == "msdyn_company@odata.bind":
            continue
        if name not in mapped:
            if known and name in table_map.defaults_sales and sales_row.get(name) is None and value is not None:
                out[name] = value  # a constant of the map fills what the Sales row left empty
            continue
        if not known:
            out[name] = value
            continue
        if name.endswith("@odata.bind"):
            if _lookup_differs(entity.navigations[name[: -len("@odata.bind")]], value, sales_row, getter):
                out[name] = value
        elif _value_differs(value, sales_row.get(name)):
            out[name] = value
    if out:
        out.update({name: value for name, value in record.target.items() if name in one_way})
    return out


def _points(row: dict[str, Any], pairs: Any, condition: dict[str, Any]) -> bool:
    return all(row.get(local) for local, _ in pairs) and all(row.get(k) == v for k, v in condition.items())


def _value_differs(value: Any, current: Any) -> bool:
    """As initial sync and reconcile compare: numbers within a small tolerance, null equal to ""."""
    if value in (None, "") and current in (None, ""):
        return False
    if isinstance(value, float) or isinstance(current, float):
        try:
            return abs(float(value or 0) - float(current or 0)) > 1e-6
        except (TypeError, ValueError):
            return True
    return bool(value != current)


def _lookup_differs(nav: Any, bind: Any, sales_row: dict[str, Any], getter: Getter) -> bool:
    """Whether the bind (by alternate key, or None) points elsewhere than the Sales row's lookup does."""
    points = _points(sales_row, nav.pairs, nav.local_condition)
    if bind is None:
        return points
    if not points:
        return True
    related = getter(nav.name, sales_row)
    if related is None:
        return False  # the row it points at is not known here: leave the lookup alone
    from bridge.initial import _bind_differs

    return _bind_differs(nav.name, bind, {nav.name: related})
