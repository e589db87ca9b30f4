"""Initial sync: copy the rows that exist before a map runs, both ways, in bulk.

Both sides are read page by page, transformed through the same pipeline as live sync and matched on the
integration key (with the company). Rows on one side only are created on the other; rows on both sides
that differ are settled by the master side. Sales is read first, so that the SCM rows it lacks can be
created while SCM is still being read (``CreateMultiple`` chunks, see :class:`_Creates`). The other writes go
out in ``$batch`` requests without change sets, as does a chunk ``CreateMultiple`` refused, so one bad row
fails alone; every failure is kept with the execution number and shown.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

from bridge import writeback
from bridge.engine import KEY_JSON, SyncEngine, wire_row
from bridge.mapping import TableMap
from bridge.pipeline import Drop, MissingParent, Record, key_values, polymorphic_fields, scm_read_columns, transform
from bridge.state import BridgeState, InitialSyncErrorRow
from sandbox.clients import BatchOp, ServiceError
from sandbox.wellknown import INTEGRATION_IDENTITY

BATCH_SIZE = 500
#: rows per ``CreateMultiple`` call: Dataverse's limit of Targets per call. The more rows per transaction, the
#: less a large initial sync writes to disk (a commit writes every index page its rows touched).
CREATE_CHUNK = 1000
PAGE_SIZE = 5000


@dataclass
class InitialSyncReport:
    map_id: str
    execution: int
    to_sales: int = 0
    to_scm: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"Initial sync execution {self.execution}: {self.to_sales} written to Sales, {self.to_scm} written "
            f"to SCM, {self.unchanged} already equal, {len(self.errors)} errors"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "map": self.map_id,
            "execution": self.execution,
            "to_sales": self.to_sales,
            "to_scm": self.to_scm,
            "unchanged": self.unchanged,
            "errors": self.errors[:5],
            "error_count": len(self.errors),
        }


@dataclass
class _Side:
    """Rows of one side by integration key: the transformed payload for the other side and the row itself."""

    payloads: dict[str, Record] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)


class InitialSync:
    def __init__(self, engine: SyncEngine, state: BridgeState) -> None:
        self.engine = engine
        self.state = state
        self.last_reports: dict[str, InitialSyncReport] = {}
        #: send creates from a thread of their own while reading on (see _Creates)
        self.overlap_writes = True
        #: what a running initial sync has done so far, by map id (shown in the map's status)
        self.progress: dict[str, dict[str, Any]] = {}

    def run(self, table_map: TableMap, *, master: str = "sales", skip_errors: bool = False) -> InitialSyncReport:
        previous = self.last_reports.get(table_map.id)
        execution = (previous.execution + 1) if previous else 1
        skipped_keys = (
            {json.dumps(e["key"], sort_keys=True, default=str) for e in previous.errors}
            if (previous and skip_errors)
            else set()
        )
        report = InitialSyncReport(table_map.id, execution)
        self.progress[table_map.id] = {"phase": "reading", "read_scm": 0, "read_sales": 0, "to_write": 0, "sent": 0}
        try:
            return self._run(table_map, master, skipped_keys, report)
        finally:
            self.progress.pop(table_map.id, None)

    def _run(
        self, table_map: TableMap, master: str, skipped_keys: set[str], report: InitialSyncReport
    ) -> InitialSyncReport:
        self.engine.load_companies()
        sales_side = self._read_sales(table_map)
        # Both are worked out from the map's fields on every call: once here, not once per row.
        syncs_to_sales, syncs_to_scm = table_map.syncs_to_sales, table_map.syncs_to_scm
        to_sales: list[tuple[str, Record]] = []
        to_scm: list[tuple[str, Record]] = []
        sales_entity = table_map.sales_type
        assert sales_entity is not None
        creates = _Creates(self, table_map, sales_entity.entity_set, report, background=self.overlap_writes)
        # The only "@sandbox" keys a payload toward Sales can carry are the engine's picks among polymorphic
        # alternatives (engine._choose_polymorphic) that a lookup left unused: a map without polymorphic
        # lookups sends its payloads as they are, without a copy per row.
        hinted = bool(polymorphic_fields(table_map))

        def take(key: str, record: Record) -> None:
            """Settle one SCM row as it is read: a row Sales lacks is created at once, in chunks."""
            if key in skipped_keys:
                return
            if key not in sales_side.rows:
                if syncs_to_sales:
                    creates.add(key, _without_hints(record.target) if hinted else record.target)
            elif (master == "scm" or not syncs_to_scm) and syncs_to_sales:
                if _differs(record.target, sales_side.rows[key]):
                    to_sales.append((key, record))
                else:
                    report.unchanged += 1

        try:
            scm_side = self._read_scm(table_map, take, report)
        except BaseException:
            creates.abort()
            raise
        created = creates.finish()
        self.progress[table_map.id].update(phase="writing")
        for key, record in sales_side.payloads.items():
            if key in skipped_keys:
                continue
            if key not in scm_side.rows:
                if syncs_to_scm:
                    to_scm.append((key, record))
            elif (master == "sales" or not syncs_to_sales) and syncs_to_scm:
                if _differs(record.target, scm_side.rows[key]):
                    to_scm.append((key, record))
                else:
                    report.unchanged += 1
        self._advance(table_map, "to_write", len(to_sales) + len(to_scm))
        report.to_sales = created + self._write_sales(table_map, to_sales, sales_side, report)
        report.to_scm = self._write_scm(table_map, to_scm, scm_side, report)
        if report.to_scm and syncs_to_sales:
            self._write_back(table_map, [key for key, _ in to_scm], sales_side, report)
        self.state.clear_initial_sync_errors(table_map.id)
        self.state.add_initial_sync_errors(table_map.id, report.execution, report.errors)
        self.last_reports[table_map.id] = report
        return report

    def _advance(self, table_map: TableMap, counter: str, count: int) -> None:
        progress = self.progress.get(table_map.id)
        if progress is not None:
            progress[counter] = progress.get(counter, 0) + count

    def errors(self, map_id: str) -> list[dict[str, Any]]:
        return self.state.rows(InitialSyncErrorRow, map_id, limit=1000)

    # ---- reading -----------------------------------------------------------------------------------------
    def _read_scm(
        self,
        table_map: TableMap,
        take: Callable[[str, Record], None] | None = None,
        report: InitialSyncReport | None = None,
    ) -> _Side:
        """Every SCM row of the map, transformed toward Sales, by integration key; ``take`` sees each one as
        it is read. A second row with a key already read is left out (and reported): the first one may have
        been written already."""
        side = _Side()
        entity = table_map.scm_type
        assert entity is not None
        engine = self.engine
        getter = engine.related_getter(None, allow_fetch=True)
        sales, sales_model, key_columns = engine.sales, engine.sales_model, entity.key
        compiled = engine.compiled(table_map)
        company_specific = bool(table_map.company or table_map.company_from)
        payloads, rows, ids = side.payloads, side.rows, side.ids
        # Only the columns the map reads (a customer has 51, the customers map reads 16): rendering, sending and
        # parsing the rest would be work for nothing, on every row.
        for page in engine.scm.iter_pages(
            entity.entity_set, select=scm_read_columns(table_map), extra={"cross-company": "true"}, page_size=PAGE_SIZE
        ):
            for row in page:
                record = Record(
                    table_map, "to_sales", row, related=getter, sales_model=sales_model, compiled_map=compiled
                )
                record.company = str(row.get("dataAreaId") or "").lower() or None
                if company_specific:
                    record.company_id = engine.company_id(record.company)
                record.sales = sales  # pipeline.assign_price_list reads Sales
                engine._choose_polymorphic(record)
                try:
                    record = transform(record)
                except (Drop, MissingParent):
                    continue
                key = _key(table_map, record, "to_sales")
                if key in payloads:
                    if report is not None:
                        report.errors.append(
                            {
                                "direction": "to_sales",
                                "key": json.loads(key),
                                "message": "Another SCM row has the same integration key; only the "
                                "first one read is synced.",
                            }
                        )
                    continue
                payloads[key] = record
                rows[key] = row
                ids[key] = {k: row[k] for k in key_columns}
                if take is not None:
                    take(key, record)
            self._advance(table_map, "read_scm", len(page))
        return side

    def _sales_expand(self, table_map: TableMap) -> list[str]:
        expands: dict[str, set[str]] = {}
        for item in table_map.fields:
            for path in item.sales:
                if path.nav:
                    expands.setdefault(path.nav, set()).add(path.column)
        if table_map.company_from:
            expands.setdefault(table_map.company_from, set()).add("_msdyn_company_value")
        return [f"{nav}($select={','.join(sorted(cols))})" for nav, cols in expands.items()]

    def _read_sales(self, table_map: TableMap) -> _Side:
        side = _Side()
        entity = table_map.sales_type
        assert entity is not None
        getter = self.engine.related_getter(None, allow_fetch=True)
        sales_model, compiled = self.engine.sales_model, self.engine.compiled(table_map)
        expand = self._sales_expand(table_map)
        for page in self.engine.sales.iter_pages(entity.entity_set, expand=expand or None, page_size=PAGE_SIZE):
            for row in page:
                row = {**row, "@sandbox.table": entity.name}
                record = Record(
                    table_map, "to_scm", row, related=getter, sales_model=sales_model, compiled_map=compiled
                )
                try:
                    record = transform(record)
                except (Drop, MissingParent):
                    # Not synced to SCM, but still matched as "present in Sales" when its key can be read.
                    key = self._sales_key(table_map, row)
                    if key is not None:
                        side.rows[key] = row
                        side.ids[key] = row[entity.key[0]]
                    continue
                key = _key(table_map, record, "to_scm")
                side.payloads[key] = record
                side.rows[key] = row
                side.ids[key] = row[entity.key[0]]
            self._advance(table_map, "read_sales", len(page))
        return side

    def _sales_key(self, table_map: TableMap, row: dict[str, Any]) -> str | None:
        values: dict[str, Any] = {}
        for key in table_map.keys:
            path = key.sales[0]
            if path.nav:
                related = row.get(path.nav)
                if not isinstance(related, dict):
                    return None
                values[key.scm] = key.value_to_scm(related.get(path.column))
            else:
                values[key.scm] = key.value_to_scm(row.get(path.column))
        company = None
        if table_map.company:
            company = self.engine.company_code(row.get("_msdyn_company_value"))
        elif table_map.company_from:
            parent = row.get(table_map.company_from)
            company = self.engine.company_code(parent.get("_msdyn_company_value")) if isinstance(parent, dict) else None
        return _key_text(company, {k.lower(): v for k, v in values.items()})

    # ---- writing -----------------------------------------------------------------------------------------
    def _write_sales(
        self, table_map: TableMap, items: list[tuple[str, Record]], sales_side: _Side, report: InitialSyncReport
    ) -> int:
        entity = table_map.sales_type
        assert entity is not None
        ops = []
        creates = _Creates(self, table_map, entity.entity_set, report, background=False)
        ids = sales_side.ids
        hinted = bool(polymorphic_fields(table_map))  # see _run
        for key, record in items:
            existing = ids.get(key)
            payload = _without_hints(record.target) if hinted else record.target
            if existing:
                ops.append((key, BatchOp.patch(f"{entity.entity_set}({existing})", payload, headers={"If-Match": "*"})))
            else:
                creates.add(key, payload)
        written = creates.finish()
        return written + self._send(self.engine.sales, table_map, ops, "to_sales", report)

    def _write_back(self, table_map: TableMap, keys: list[str], sales_side: _Side, report: InitialSyncReport) -> None:
        """The rows Sales gave SCM come back with what SCM filled in (numbers, defaults: see
        :mod:`bridge.writeback`), read once more from SCM and written to Sales as the integration identity."""
        entity = table_map.sales_type
        assert entity is not None
        scm_side = self._read_scm(table_map)
        getter = self.engine.related_getter(None, allow_fetch=True)
        ops = []
        for key in keys:
            scm_row, sales_row, existing = scm_side.rows.get(key), sales_side.rows.get(key), sales_side.ids.get(key)
            if scm_row is None or sales_row is None or not existing:
                continue
            image = {**sales_row, "@sandbox.table": entity.name}
            values = writeback.values_for_sales(self.engine, table_map, scm_row, image, getter)
            if values:
                ops.append((key, BatchOp.patch(f"{entity.entity_set}({existing})", values, headers={"If-Match": "*"})))
        self._send(self.engine.sales, table_map, ops, "to_sales", report, count=False)

    def _create_multiple(self, table_map: TableMap, entity_set: str, chunk: list[tuple[str, dict[str, Any]]]) -> bool:
        """One ``CreateMultiple`` call for a chunk of new rows: one transaction and no request per row (a
        ``$batch`` part is a whole request with its own commit, which costs more per row).
        False when Sales refused the chunk (it is all or nothing)."""
        try:
            self.engine.sales.action(
                "CreateMultiple", {"Targets": [payload for _, payload in chunk]}, entity_set=entity_set
            )
        except ServiceError:
            return False
        self._advance(table_map, "sent", len(chunk))
        return True

    def _write_scm(
        self, table_map: TableMap, items: list[tuple[str, Record]], scm_side: _Side, report: InitialSyncReport
    ) -> int:
        entity = table_map.scm_type
        assert entity is not None
        ops = []
        for key, record in items:
            existing = scm_side.ids.get(key)
            if existing:
                payload = {k: v for k, v in record.target.items() if k not in entity.key}
                ops.append((key, BatchOp.patch(self.engine.scm.entity_path(entity.entity_set, existing), payload)))
            else:
                ops.append((key, BatchOp.post(entity.entity_set, record.target)))
        return self._send(self.engine.scm, table_map, ops, "to_scm", report)

    def _send(
        self,
        client: Any,
        table_map: TableMap,
        ops: list[tuple[str, BatchOp]],
        direction: str,
        report: InitialSyncReport,
        *,
        count: bool = True,
    ) -> int:
        written = 0
        for chunk in _chunks(ops, BATCH_SIZE):
            for index, (_, op) in enumerate(chunk, 1):
                op.content_id = str(index)
            try:
                results = client.batch(
                    [op for _, op in chunk],
                    continue_on_error=True,
                    headers={"X-Sandbox-Identity": INTEGRATION_IDENTITY},
                )
            except ServiceError as exc:
                for key, _ in chunk:
                    report.errors.append({"direction": direction, "key": json.loads(key), "message": exc.message})
                continue
            self._advance(table_map, "sent", len(chunk))
            by_id = {r.content_id: r for r in results}
            for index, (key, _) in enumerate(chunk, 1):
                result = by_id.get(str(index))
                if result is not None and result.ok:
                    written += 1
                else:
                    error = result.error() if result is not None else None
                    report.errors.append(
                        {
                            "direction": direction,
                            "key": json.loads(key),
                            "message": error.message if error else "no answer for this row",
                        }
                    )
        if written and count:
            self.state.count(table_map.id, synced=written)
        return written


class _Creates:
    """Rows to create in Sales, sent in ``CreateMultiple`` chunks of :data:`CREATE_CHUNK` as they come.

    A chunk Sales refuses is sent again at :meth:`finish` as a ``$batch`` without change sets, where each bad
    row fails alone with its own error. With ``background``, the chunks go out from a thread of their own
    while the caller reads and transforms the next rows. When Sales is another process, its write of a
    chunk and our reading overlap. In this process too, part of the work (SQLite inserting and committing a
    chunk, SQLite stepping through a page of SCM rows) runs without the interpreter lock, so the two overlap
    there as well.
    """

    #: chunks waiting to be sent when the caller reads faster than Sales writes (bounds the memory they take)
    QUEUE_CHUNKS = 4

    def __init__(
        self, sync: InitialSync, table_map: TableMap, entity_set: str, report: InitialSyncReport, *, background: bool
    ) -> None:
        self.sync, self.table_map, self.entity_set, self.report = sync, table_map, entity_set, report
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self.written = 0
        self.failure: BaseException | None = None
        self.queue: queue.Queue[list[tuple[str, dict[str, Any]]] | None] | None = None
        self.thread: threading.Thread | None = None
        if background:
            self.queue = queue.Queue(maxsize=self.QUEUE_CHUNKS)
            self.thread = threading.Thread(target=self._send_queued, name=f"initial-sync-{table_map.id}", daemon=True)
            self.thread.start()

    def add(self, key: str, payload: dict[str, Any]) -> None:
        self.pending.append((key, payload))
        if len(self.pending) >= CREATE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        chunk, self.pending = self.pending, []
        if not chunk:
            return
        self.sync._advance(self.table_map, "to_write", len(chunk))
        if self.queue is None:
            self._send(chunk)
            return
        if self.failure is not None:  # the sender stopped: surface its error here, in the caller's thread
            raise self.failure
        self.queue.put(chunk)

    def _send(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        if self.sync._create_multiple(self.table_map, self.entity_set, chunk):
            self.written += len(chunk)
        else:
            self.refused.extend(chunk)

    def _send_queued(self) -> None:
        assert self.queue is not None
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            if self.failure is None:
                try:
                    self._send(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by _flush/finish
                    self.failure = exc

    def abort(self) -> None:
        """Stop without sending what has not gone out yet (reading failed)."""
        self.pending = []
        if self.queue is not None and self.thread is not None:
            self.failure = self.failure or RuntimeError("initial sync aborted")  # the sender skips the rest
            self.queue.put(None)
            self.thread.join()

    def finish(self) -> int:
        """Send what is left, wait for the sender, retry refused chunks row by row; rows written to Sales."""
        try:
            self._flush()
        finally:
            if self.queue is not None and self.thread is not None:
                self.queue.put(None)
                self.thread.join()
        if self.failure is not None:
            raise self.failure
        if self.written:
            self.sync.state.count(self.table_map.id, synced=self.written)
        retried = self.sync._send(
            self.sync.engine.sales,
            self.table_map,
            [(key, BatchOp.post(self.entity_set, payload)) for key, payload in self.refused],
            "to_sales",
            self.report,
        )
        return self.written + retried


def _without_hints(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without the bridge's own ``@sandbox...`` annotations."""
    return {k: v for k, v in payload.items() if not k.startswith("@sandbox")}


def _key_text(company: Any, key: dict[str, Any]) -> str:
    """``json.dumps({"company": company, "key": key}, sort_keys=True, default=str)``: how both sides' rows are
    matched, and what an error's key reads back from. Keys of strings (nearly all of them) are written out
    here the way the encoder writes them (sorted names, ``", "`` and ``": "`` between parts, strings
    ASCII-escaped by the encoder's own function), quicker than the general encoder; anything else goes to
    the encoder."""
    if (company is None or type(company) is str) and all(type(v) is str and type(k) is str for k, v in key.items()):
        parts = ", ".join([f"{_json_text(name)}: {_json_text(value)}" for name, value in sorted(key.items())])
        return f'{{"company": {"null" if company is None else _json_text(company)}, "key": {{{parts}}}}}'
    return KEY_JSON.encode({"company": company, "key": key})


def _key(table_map: TableMap, record: Record, direction: str) -> str:
    values = key_values(table_map, record)
    normalized: dict[str, Any] = {}
    for key in table_map.keys:
        if direction == "to_sales":
            normalized[key.scm.lower()] = key.value_to_scm(values[key.sales[0].text])
        else:
            normalized[key.scm.lower()] = next((v for k, v in values.items() if k.lower() == key.scm.lower()), None)
    return _key_text(record.company, normalized)


def _differs(payload: dict[str, Any], row: dict[str, Any]) -> bool:
    for name, value in payload.items():
        if name.endswith("@odata.bind") and not name.startswith("@"):
            if _bind_differs(name[: -len("@odata.bind")], value, row):
                return True
            continue
        if "@" in name or name.startswith("_"):
            continue
        current = row.get(name)
        if isinstance(value, float) or isinstance(current, float):
            try:
                if abs(float(value or 0) - float(current or 0)) > 1e-6:
                    return True
            except (TypeError, ValueError):
                return True
            continue
        if value != current and not (value in (None, "") and current in (None, "")):
            return True
    return False


def _bind_differs(nav: str, bind: Any, row: dict[str, Any]) -> bool:
    """Whether a lookup bind (``/set(col='v',...)`` by alternate key) points elsewhere than the row's expanded
    lookup ``row[nav]`` does. Only key columns the read expanded are compared; unknown shapes never differ."""
    related = row.get(nav)
    if not isinstance(related, dict) or not isinstance(bind, str) or not bind.endswith(")") or "(" not in bind:
        return False
    values: dict[str, str] = {}
    for part in _split_key(bind[bind.index("(") + 1 : -1]):
        column, equals, literal = part.partition("=")
        if not equals:
            return False  # a bare id: the expanded row is not read by id here
        literal = literal.strip()
        if literal.startswith("'") and literal.endswith("'"):
            literal = literal[1:-1].replace("''", "'")
        values[column.strip()] = literal
    return any(
        column in related
        and str(related[column]) != literal
        and not (related[column] in (None, "") and literal in ("", "null"))
        for column, literal in values.items()
    )


def _split_key(text: str) -> list[str]:
    """``a='x,y',b=1`` -> ``["a='x,y'", "b=1"]`` (commas inside quotes stay)."""
    parts: list[str] = []
    current = ""
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["InitialSync", "InitialSyncReport", "wire_row"]
