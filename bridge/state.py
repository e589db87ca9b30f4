"""The bridge's durable state: map lifecycle, cursors, catch-up errors, initial-sync errors, activity, traces.

Everything a restart (even a kill) must not lose lives in the bridge's own database. Queued changes are
not copied here: while a map is paused they wait in the source service's outbox, and the map remembers the
cursor from which catch-up replays them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sandbox.db import Database, insert_returning_ids
from sandbox.outbox import dumps

log = logging.getLogger(__name__)

NOT_RUNNING = "Not running"
INITIALIZING = "Initializing"
RUNNING = "Running"
PAUSED = "Paused"
RESUMING = "Resuming"
STATES = (NOT_RUNNING, INITIALIZING, RUNNING, PAUSED, RESUMING)

ACTIVITY_CAP = 2000
TRACE_CAP = 2000
#: how long the traces and counts of successful writes may wait in memory before they are written
LEDGER_DELAY_SECONDS = 0.2


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BridgeMetadata:
    """The bridge's tables live in their own MetaData (not SQLModel's shared one used by the mocks)."""

    metadata = sa.MetaData()


class _Base(SQLModel):
    metadata = BridgeMetadata.metadata


class MapRow(_Base, table=True):
    __tablename__ = "bridge_map"
    id: str = Field(primary_key=True)
    state: str = NOT_RUNNING
    mode: str = "live"  # live | async
    master: str = "sales"
    paused_sales_seq: int | None = None
    paused_scm_seq: int | None = None
    initial_sync_done: bool = False
    synced: int = 0
    failed: int = 0
    last_error: str | None = None
    last_synced_at: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)


class CursorRow(_Base, table=True):
    """A named position in a service's change feed.

    ``sales``/``scm``: how far the async worker has drained that feed. ``async:<map>:<source>``: the seq
    a map switched to async mode at (the worker applies only later changes to it: initial sync covered
    the rest).
    """

    __tablename__ = "bridge_cursor"
    source: str = Field(primary_key=True)
    seq: int = 0


class AppliedRow(_Base, table=True):
    """The newest source change applied per map and record: the guard that keeps per-record order.

    A redelivered (at-least-once) or reordered change whose seq is not newer than this is skipped, so an
    older image never overwrites a newer one. ``key`` is ``<table>|<source key as sorted JSON>``.
    """

    __tablename__ = "bridge_applied"
    map_id: str = Field(primary_key=True)
    source: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    seq: int = 0


class CatchupErrorRow(_Base, table=True):
    __tablename__ = "bridge_catchup_error"
    id: int | None = Field(default=None, primary_key=True)
    map_id: str = Field(index=True)
    source: str
    seq: int
    transaction_id: str = ""
    change: str  # JSON of the outbox change
    message: str = ""
    status: str = "Error"  # Error | Completed
    #: how many times the change was tried before it was kept (async: the retries of a transient failure)
    attempts: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow)


#: columns added to the bridge's tables since their first release: (table, column, SQL type and default). A
#: bridge database written by an older version gains them on start (``create_all`` adds tables, not columns).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("bridge_catchup_error", "attempts", "INTEGER NOT NULL DEFAULT 1"),)


def upgrade_schema(db: Database) -> None:
    """Add the :data:`ADDED_COLUMNS` an older bridge database lacks (idempotent)."""
    with db.transaction() as connection:
        inspector = sa.inspect(connection)
        for table, column, definition in ADDED_COLUMNS:
            if column not in {c["name"] for c in inspector.get_columns(table)}:
                preparer = connection.dialect.identifier_preparer
                connection.execute(
                    sa.text(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column)} {definition}")
                )


class InitialSyncErrorRow(_Base, table=True):
    __tablename__ = "bridge_initial_sync_error"
    id: int | None = Field(default=None, primary_key=True)
    map_id: str = Field(index=True)
    execution: int
    direction: str
    key: str
    message: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class ActivityRow(_Base, table=True):
    __tablename__ = "bridge_activity"
    id: int | None = Field(default=None, primary_key=True)
    map_id: str = Field(index=True)
    kind: str
    message: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class TraceRow(_Base, table=True):
    __tablename__ = "bridge_trace"
    id: int | None = Field(default=None, primary_key=True)
    map_id: str = Field(index=True)
    direction: str
    key: str = Field(index=True)
    operation: str
    source: str  # JSON: the source change
    payload: str  # JSON: the transformed payload
    response: str  # JSON: status and body of the target write
    ok: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow)


def row_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping) if hasattr(row, "_mapping") else row.model_dump()
    for name in ("change", "source", "payload", "response"):
        if isinstance(data.get(name), str):
            try:
                data[name] = json.loads(data[name])
            except ValueError:
                pass
    for name, value in list(data.items()):
        if isinstance(value, dt.datetime):
            data[name] = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return data


class BridgeState:
    """Reads and writes of the bridge tables (each call its own short transaction).

    The traces and synced counts of successful writes (:meth:`record_synced`) are the exception: they wait
    in memory for up to :data:`LEDGER_DELAY_SECONDS` and are written together, because a commit of their
    own would weigh on every live-sync write. Every read of traces or map rows writes them
    first, so readers never miss one; a kill can lose the last fraction of a second of them (they are
    diagnostics and statistics; cursors, the ordering guard and errors are written at once).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        upgrade_schema(db)
        # (state, mode) of every map, read on every live-sync call: kept between changes of a map's state.
        self._run_states: dict[str, tuple[str, str]] | None = None
        self._run_states_generation = 0
        self._run_states_lock = threading.Lock()
        self._ledger_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._ledger_traces: list[dict[str, Any]] = []
        self._ledger_counts: dict[str, tuple[int, dt.datetime]] = {}
        self._ledger_timer: threading.Timer | None = None
        #: set by close(): no flush may touch the database after it
        self._closed = False
        #: told of each recorded outcome and activity entry (bridge.synclog logs them): ``listener(event, items)``
        #: with event ``"synced"``/``"failed"`` (trace tuples) or ``"activity"`` ([(map_id, kind, message)])
        self.listeners: list[Callable[[str, list[tuple[Any, ...]]], None]] = []

    def table(self, model: type[SQLModel]) -> sa.Table:
        # SQLModel sets __table__ on table=True classes only, which every bridge table is
        table = model.__table__  # type: ignore[attr-defined]
        assert isinstance(table, sa.Table)
        return table

    # ---- maps ----------------------------------------------------------------------------------------
    def map_row(self, map_id: str) -> dict[str, Any]:
        self.flush()
        table = self.table(MapRow)
        with self.db.transaction() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == map_id)).first()
            if row is None:
                connection.execute(
                    sa.insert(table).values(
                        id=map_id,
                        state=NOT_RUNNING,
                        mode="live",
                        master="sales",
                        initial_sync_done=False,
                        synced=0,
                        failed=0,
                        updated_at=utcnow(),
                    )
                )
                row = connection.execute(sa.select(table).where(table.c.id == map_id)).first()
                assert row is not None  # inserted just above, in the same transaction
                self._forget_run_states()
        return dict(row._mapping)

    def run_states(self) -> dict[str, tuple[str, str]]:
        """(state, mode) of every map, from memory between changes (:meth:`update_map` forgets them)."""
        with self._run_states_lock:
            cached, generation = self._run_states, self._run_states_generation
        if cached is not None:
            return cached
        states = {map_id: (row["state"], row["mode"]) for map_id, row in self.map_rows().items()}
        with self._run_states_lock:
            # Kept only when no change landed meanwhile (else the next call reads again), and never from
            # inside a transaction, whose own uncommitted changes may still roll back.
            if generation == self._run_states_generation and not self.db.in_transaction:
                self._run_states = states
        return states

    def _forget_run_states(self) -> None:
        self._clear_run_states()
        if self.db.in_transaction:  # forget again once the change is visible to every reader (or undone)
            self.db.after_commit(self._clear_run_states)
            self.db.after_rollback(self._clear_run_states)

    def _clear_run_states(self) -> None:
        with self._run_states_lock:
            self._run_states = None
            self._run_states_generation += 1

    def map_rows(self) -> dict[str, dict[str, Any]]:
        """Every map row by id, in one read (the async drainers look at all maps on every pass)."""
        self.flush()
        table = self.table(MapRow)
        with self.db.transaction() as connection:
            return {row.id: dict(row._mapping) for row in connection.execute(sa.select(table))}

    def update_map(self, map_id: str, **values: Any) -> None:
        self.map_row(map_id)
        table = self.table(MapRow)
        with self.db.transaction() as connection:
            connection.execute(sa.update(table).where(table.c.id == map_id).values(**values, updated_at=utcnow()))
            self._forget_run_states()

    def count(self, map_id: str, *, synced: int = 0, failed: int = 0, error: str | None = None) -> None:
        table = self.table(MapRow)
        values: dict[str, Any] = {"synced": table.c.synced + synced, "failed": table.c.failed + failed}
        if synced:
            values["last_synced_at"] = utcnow()
        if error is not None:
            values["last_error"] = error[:2000]
        with self.db.transaction() as connection:
            if not connection.execute(sa.update(table).where(table.c.id == map_id).values(**values)).rowcount:
                self.map_row(map_id)  # a map counted before its row exists: create it, then count
                connection.execute(sa.update(table).where(table.c.id == map_id).values(**values))

    # ---- cursors -------------------------------------------------------------------------------------
    def cursor(self, source: str) -> int | None:
        table = self.table(CursorRow)
        with self.db.transaction() as connection:
            value = connection.execute(sa.select(table.c.seq).where(table.c.source == source)).scalar()
        return None if value is None else int(value)

    def set_cursor(self, source: str, seq: int) -> None:
        table = self.table(CursorRow)
        with self.db.transaction() as connection:
            updated = connection.execute(sa.update(table).where(table.c.source == source).values(seq=seq)).rowcount
            if not updated:
                connection.execute(sa.insert(table).values(source=source, seq=seq))

    # ---- per-record ordering guard ---------------------------------------------------------------------
    def applied_seqs(self, source: str, map_ids: Any, keys: Any) -> dict[tuple[str, str], int]:
        """The newest applied seq per (map id, record key) among ``map_ids`` x ``keys`` (absent: never)."""
        map_ids, keys = list(map_ids), list(keys)
        if not map_ids or not keys:
            return {}
        table = self.table(AppliedRow)
        query = sa.select(table.c.map_id, table.c.key, table.c.seq).where(
            table.c.source == source, table.c.map_id.in_(map_ids), table.c.key.in_(keys)
        )
        with self.db.transaction() as connection:
            return {(r.map_id, r.key): int(r.seq) for r in connection.execute(query)}

    def mark_applied(self, source: str, entries: list[tuple[str, str, int]]) -> None:
        """Remember (map id, record key, seq) as applied; a guard only ever moves forward."""
        if not entries:
            return
        newest: dict[tuple[str, str], int] = {}
        for map_id, key, seq in entries:
            newest[(map_id, key)] = max(seq, newest.get((map_id, key), seq))
        table = self.table(AppliedRow)
        # A page of the async drainer marks hundreds at once: one read and two bulk statements, not a
        # read and a write per entry.
        with self.db.transaction() as connection:
            current = self.applied_seqs(source, {m for m, _ in newest}, {k for _, k in newest})
            inserts = [
                {"map_id": m, "source": source, "key": k, "seq": seq}
                for (m, k), seq in newest.items()
                if (m, k) not in current
            ]
            updates = [
                {"b_map_id": m, "b_key": k, "b_seq": seq}
                for (m, k), seq in newest.items()
                if (m, k) in current and current[(m, k)] < seq
            ]
            if inserts:
                connection.execute(sa.insert(table), inserts)
            if updates:
                connection.execute(
                    sa.update(table)
                    .where(
                        table.c.map_id == sa.bindparam("b_map_id"),
                        table.c.source == source,
                        table.c.key == sa.bindparam("b_key"),
                    )
                    .values(seq=sa.bindparam("b_seq")),
                    updates,
                )

    def clear_applied(self, source: str) -> None:
        """Forget the guard of one source (its feed was reset, so its seqs start over)."""
        table = self.table(AppliedRow)
        with self.db.transaction() as connection:
            connection.execute(sa.delete(table).where(table.c.source == source))

    # ---- logs ----------------------------------------------------------------------------------------
    def activity(self, map_id: str, kind: str, message: str) -> None:
        self._tell("activity", [(map_id, kind, message)])
        self._append(ActivityRow, ACTIVITY_CAP, map_id=map_id, kind=kind, message=message[:4000], created_at=utcnow())

    def trace(
        self, map_id: str, direction: str, key: Any, operation: str, source: Any, payload: Any, response: Any, ok: bool
    ) -> None:
        self.traces([(map_id, direction, key, operation, source, payload, response, ok)])

    def traces(self, items: list[tuple[str, str, Any, str, Any, Any, Any, bool]]) -> None:
        """Several :meth:`trace` entries (map, direction, key, operation, source, payload, response, ok)."""
        self.flush()  # after the successful writes' traces that came first
        self._append_many(TraceRow, TRACE_CAP, self._trace_rows(items))
        self._tell("failed", [item for item in items if not item[7]])
        self._tell("synced", [item for item in items if item[7]])

    def _tell(self, event: str, items: list[tuple[Any, ...]]) -> None:
        for listener in self.listeners if items else ():
            try:
                listener(event, items)
            except Exception:  # noqa: BLE001 - observers must not break sync
                log.warning("a bridge state listener failed", exc_info=True)

    @staticmethod
    def _trace_rows(items: list[tuple[str, str, Any, str, Any, Any, Any, bool]]) -> list[dict[str, Any]]:
        now = utcnow()
        return [
            {
                "map_id": map_id,
                "direction": direction,
                "key": dumps(key),
                "operation": operation,
                "source": dumps(source),
                "payload": dumps(payload),
                "response": dumps(response),
                "ok": ok,
                "created_at": now,
            }
            for map_id, direction, key, operation, source, payload, response, ok in items
        ]

    def record_synced(
        self, items: list[tuple[str, str, Any, str, Any, Any, Any, bool]], counts: dict[str, int]
    ) -> None:
        """The traces (as :meth:`traces`) and synced counts per map of successful writes, written within
        :data:`LEDGER_DELAY_SECONDS` together with others (or at the next read of traces or map rows)."""
        rows = self._trace_rows(items)  # encoded now: the caller's payloads are not ours to keep
        self._tell("synced", items)
        now = utcnow()
        with self._ledger_lock:
            self._ledger_traces.extend(rows)
            for map_id, count in counts.items():
                previous = self._ledger_counts.get(map_id, (0, now))[0]
                self._ledger_counts[map_id] = (previous + count, now)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Flush within the delay unless a flush is already due (the caller holds the ledger lock)."""
        if self._ledger_timer is None and not self._closed:
            self._ledger_timer = threading.Timer(LEDGER_DELAY_SECONDS, self._flush_quietly)
            self._ledger_timer.daemon = True
            self._ledger_timer.name = "bridge-ledger"
            self._ledger_timer.start()

    def flush(self) -> None:
        """Write the waiting traces and counts of :meth:`record_synced` now (one transaction).

        Not from inside a transaction of the bridge database: one that rolls back would take them along
        (the timer writes them shortly instead)."""
        if (not self._ledger_traces and not self._ledger_counts) or self.db.in_transaction:
            return
        with self._flush_lock:  # one writer at a time keeps the traces in the order they were recorded
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        """:meth:`flush`'s work; the caller holds the flush lock."""
        with self._ledger_lock:
            traces, counts = self._ledger_traces, self._ledger_counts
            self._ledger_traces, self._ledger_counts = [], {}
            timer, self._ledger_timer = self._ledger_timer, None
        if timer is not None:
            timer.cancel()
        if not traces and not counts:
            return
        table = self.table(MapRow)
        try:
            with self.db.transaction() as connection:
                self._append_many(TraceRow, TRACE_CAP, traces)
                for map_id, (count, last) in counts.items():
                    update = (
                        sa.update(table)
                        .where(table.c.id == map_id)
                        .values(synced=table.c.synced + count, last_synced_at=last)
                    )
                    if not connection.execute(update).rowcount:
                        self.map_row(map_id)  # counted before its row existed: create it, then count
                        connection.execute(update)
        except Exception:
            with self._ledger_lock:  # not written: keep them for the next flush, in front
                self._ledger_traces[:0] = traces
                for map_id, (count, last) in counts.items():
                    newer_count, newer_last = self._ledger_counts.get(map_id, (0, last))
                    self._ledger_counts[map_id] = (count + newer_count, newer_last)
            raise

    def close(self) -> None:
        """Write what waits in memory and stop the timer's flushes, before the database is closed.

        Taking the flush lock waits for a flush the timer has begun: disposing of the database under a statement
        still running in another thread can crash SQLite."""
        with self._flush_lock:
            if not self.db.in_transaction:
                self._flush_locked()
            self._closed = True
        with self._ledger_lock:
            timer, self._ledger_timer = self._ledger_timer, None
        if timer is not None:
            timer.cancel()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - kept for the next read or record, which write them again
            log.warning("could not write the bridge's traces and counts yet", exc_info=True)

    def _append(self, model: type[SQLModel], cap: int, **values: Any) -> None:
        self._append_many(model, cap, [values])

    def _append_many(self, model: type[SQLModel], cap: int, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = self.table(model)
        with self.db.transaction() as connection:
            ids = insert_returning_ids(connection, table, "id", rows)
            # Trim now and then (when the ids pass a multiple of 100), not on every write.
            if ids[-1] // 100 != (ids[0] - 1) // 100:
                connection.execute(sa.delete(table).where(table.c.id <= ids[-1] - cap))

    def rows(
        self, model: type[SQLModel], map_id: str | None = None, limit: int = 100, **where: Any
    ) -> list[dict[str, Any]]:
        if model is TraceRow:
            self.flush()
        table = self.table(model)
        query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
        if map_id is not None:
            query = query.where(table.c.map_id == map_id)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.db.transaction() as connection:
            return [row_dict(r) for r in connection.execute(query)]

    # ---- catch-up and initial sync errors --------------------------------------------------------------
    def add_catchup_error(
        self, map_id: str, change: dict[str, Any], source: str, message: str, *, attempts: int = 1
    ) -> None:
        table = self.table(CatchupErrorRow)
        with self.db.transaction() as connection:
            connection.execute(
                sa.insert(table).values(
                    map_id=map_id,
                    source=source,
                    seq=int(change.get("seq", 0)),
                    transaction_id=str(change.get("transaction_id", "")),
                    change=dumps(change),
                    message=message[:4000],
                    status="Error",
                    attempts=attempts,
                    created_at=utcnow(),
                )
            )

    def set_catchup_status(
        self, error_id: int, status: str, message: str | None = None, *, tried: bool = False
    ) -> None:
        """Set a catch-up error's status (and message); ``tried``: it was just tried once more."""
        table = self.table(CatchupErrorRow)
        values: dict[str, Any] = {"status": status}
        if tried:
            values["attempts"] = table.c.attempts + 1
        if message is not None:
            values["message"] = message[:4000]
        with self.db.transaction() as connection:
            connection.execute(sa.update(table).where(table.c.id == error_id).values(**values))

    def delete_catchup_errors(self, map_id: str, ids: list[int] | None = None) -> int:
        table = self.table(CatchupErrorRow)
        query = sa.delete(table).where(table.c.map_id == map_id)
        if ids is not None:
            query = query.where(table.c.id.in_(ids))
        with self.db.transaction() as connection:
            return int(connection.execute(query).rowcount or 0)

    def add_initial_sync_errors(self, map_id: str, execution: int, errors: list[dict[str, Any]]) -> None:
        if not errors:
            return
        table = self.table(InitialSyncErrorRow)
        with self.db.transaction() as connection:
            connection.execute(
                sa.insert(table),
                [
                    {
                        "map_id": map_id,
                        "execution": execution,
                        "direction": e["direction"],
                        "key": dumps(e["key"]),
                        "message": str(e["message"])[:4000],
                        "created_at": utcnow(),
                    }
                    for e in errors
                ],
            )

    def clear_initial_sync_errors(self, map_id: str) -> None:
        table = self.table(InitialSyncErrorRow)
        with self.db.transaction() as connection:
            connection.execute(sa.delete(table).where(table.c.map_id == map_id))
