"""Map lifecycle: run (with or without initial sync), pause, resume (catch-up or skip), stop, retries, alerts.

States follow dual-write: Not running -> Initializing -> Running <-> Paused -> Resuming -> Running. While a
map is paused its changes wait in the source outbox; the map remembers the cursor to replay them from.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.drainer import AsyncDrainer
from bridge.engine import (
    Source,
    SyncEngine,
    SyncError,
    drop_scm_fields,
    record_identity,
    scm_field_names,
)
from bridge.initial import InitialSync
from bridge.mapping import TableMap
from bridge.state import INITIALIZING, NOT_RUNNING, PAUSED, RESUMING, RUNNING, BridgeState, CatchupErrorRow
from bridge.worker import apply_in_order, by_transaction
from sandbox.clients import ControlClient
from sandbox.errors import BadRequest, Conflict, NotFound
from sandbox.wellknown import INTEGRATION_IDENTITY

ResumeMode = Literal["catchup", "skip_keep", "skip_discard"]
CATCHUP_PAGE = 500


@dataclass
class AlertRule:
    """N errors of a kind within a window pause or stop the map (dual-write alert settings)."""

    count: int
    window_seconds: float
    action: Literal["pause", "stop"] = "pause"
    kind: str = "any"  # any | application | network

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "window_seconds": self.window_seconds, "action": self.action, "kind": self.kind}


@dataclass
class MapRuntime:
    alerts: list[AlertRule] = field(default_factory=list)
    errors: collections.deque[tuple[float, str]] = field(default_factory=lambda: collections.deque(maxlen=1000))


class Lifecycle:
    """Drives map states; every transition is persisted and written to the map's activity log."""

    def __init__(self, engine: SyncEngine, state: BridgeState, controls: dict[Source, ControlClient]) -> None:
        self.engine = engine
        self.state = state
        self.controls = controls
        self.runtime: dict[str, MapRuntime] = {m.id: MapRuntime() for m in engine.maps}
        self.lock = threading.RLock()
        self.initial = InitialSync(engine, state)
        #: the async drainers, once the runtime attaches them (see :meth:`attach_drainer`)
        self.drainer: AsyncDrainer | None = None
        engine.listeners.append(self._on_event)

    def attach_drainer(self, drainer: AsyncDrainer) -> None:
        """Hand maps in async mode to ``drainer`` (the bridge runtime does, once both exist: each needs the
        other). Without one, only live maps sync."""
        self.drainer = drainer

    # ---- queries -----------------------------------------------------------------------------------------
    def table_map(self, map_id: str) -> TableMap:
        table_map = self.engine.by_id.get(map_id)
        if table_map is None:
            raise NotFound(f"No table map with id '{map_id}'.")
        return table_map

    def status(self, map_id: str) -> dict[str, Any]:
        table_map = self.table_map(map_id)
        row = self.state.map_row(map_id)
        queued = self.queued_count(table_map, row) if row["state"] in (PAUSED, RESUMING) else 0
        errors = len(self.state.rows(CatchupErrorRow, map_id, limit=10_000, status="Error"))
        status = {
            "id": table_map.id,
            "name": table_map.name,
            "scm_entity": table_map.scm_entity,
            "sales_table": table_map.sales_table,
            "state": row["state"],
            "mode": row["mode"],
            "master": row["master"],
            "direction": "both"
            if table_map.syncs_to_scm and table_map.syncs_to_sales
            else ("scm_to_sales" if table_map.syncs_to_sales else "sales_to_scm"),
            "depends_on": table_map.depends_on,
            "synced": row["synced"],
            "failed": row["failed"],
            "queued": queued,
            "catchup_errors": errors,
            "last_error": row["last_error"],
            "last_synced_at": row["last_synced_at"].isoformat() if row["last_synced_at"] else None,
            "initial_sync_done": bool(row["initial_sync_done"]),
            "alerts": [rule.as_dict() for rule in self.runtime[map_id].alerts],
        }
        progress = self.initial.progress.get(map_id)
        if progress is not None:
            status["initial_sync_progress"] = dict(progress)
        if self.drainer is not None:  # lag (and, in async mode, the backlog) come from the change feeds
            status.update(self.drainer.status_fields(table_map, row))
        return status

    def detail(self, map_id: str) -> dict[str, Any]:
        """The status of a map plus its definition: fields, keys, filters and defaults."""
        table_map = self.table_map(map_id)
        status = self.status(map_id)
        status["fields"] = [
            {"scm": f.scm, "dir": f.direction, "sales": "|".join(p.text for p in f.sales), "values": f.values}
            for f in table_map.fields
        ]
        status["keys"] = [{"scm": k.scm, "sales": k.sales[0].text} for k in table_map.keys]
        status["filters"] = {"scm": table_map.scm_filter, "sales": table_map.sales_filter}
        status["defaults"] = {"scm": table_map.defaults_scm, "sales": table_map.defaults_sales}
        return status

    def sources(self, table_map: TableMap) -> list[Source]:
        out: list[Source] = []
        if table_map.syncs_to_sales:
            out.append("scm")
        if table_map.syncs_to_scm:
            out.append("sales")
        return out

    def source_table(self, table_map: TableMap, source: Source) -> str:
        entity = table_map.scm_type if source == "scm" else table_map.sales_type
        assert entity is not None
        return entity.alias_of or entity.name

    def queued_changes(
        self, table_map: TableMap, row: dict[str, Any], source: Source, limit: int = CATCHUP_PAGE
    ) -> tuple[list[dict[str, Any]], int]:
        cursor = row[f"paused_{source}_seq"] or 0
        page = self.controls[source].changes(
            after=cursor,
            limit=limit,
            tables=[self.source_table(table_map, source)],
            exclude_identity=INTEGRATION_IDENTITY,
        )
        return page["changes"], int(page["next"])

    def queued_count(self, table_map: TableMap, row: dict[str, Any]) -> int:
        total = 0
        for source in self.sources(table_map):
            cursor = row[f"paused_{source}_seq"] or 0
            while True:
                page = self.controls[source].changes(
                    after=cursor,
                    limit=5000,
                    tables=[self.source_table(table_map, source)],
                    exclude_identity=INTEGRATION_IDENTITY,
                )
                total += len(page["changes"])
                if len(page["changes"]) < 5000:
                    break
                cursor = int(page["next"])
        return total

    def queued(self, map_id: str, limit: int = 100) -> list[dict[str, Any]]:
        table_map = self.table_map(map_id)
        row = self.state.map_row(map_id)
        if row["state"] not in (PAUSED, RESUMING):
            return []
        out: list[dict[str, Any]] = []
        for source in self.sources(table_map):
            changes, _ = self.queued_changes(table_map, row, source, limit)
            out.extend({**c, "source": source} for c in changes)
        return out[:limit]

    # ---- transitions -------------------------------------------------------------------------------------
    def run(
        self,
        map_id: str,
        *,
        initial_sync: bool = True,
        master: str = "sales",
        mode: str = "live",
        with_dependencies: bool = False,
        skip_errors: bool = False,
    ) -> dict[str, Any]:
        """Start a map (and, if asked, the maps it depends on first)."""
        if master not in ("sales", "scm"):
            raise BadRequest("master must be 'sales' or 'scm'.")
        if mode not in ("live", "async"):
            raise BadRequest("mode must be 'live' or 'async'.")
        table_map = self.table_map(map_id)
        with self.lock:
            if with_dependencies:
                for parent in table_map.depends_on:
                    if self.state.map_row(parent)["state"] == NOT_RUNNING:
                        self.run(parent, initial_sync=initial_sync, master=master, mode=mode, with_dependencies=True)
            row = self.state.map_row(map_id)
            if initial_sync and map_id in self.initial.progress:
                raise Conflict(f"An initial sync of map '{map_id}' is running already.")
            if row["state"] in (PAUSED, RESUMING):
                raise Conflict(f"Map '{map_id}' is {row['state']}: resume it instead.")
            if row["state"] == RUNNING and not initial_sync:
                if row["mode"] != mode:
                    self._switch_mode(table_map, row["mode"], mode)
                return self.status(map_id)
            if mode == "async" and self.drainer is not None:
                self.drainer.begin(table_map)  # before the state changes, so the drainer knows its floor
            self.state.update_map(map_id, state=INITIALIZING if initial_sync else RUNNING, mode=mode, master=master)
            self.state.activity(
                map_id,
                "state",
                f"Run requested (initial sync {'on' if initial_sync else 'off'}, master {master}, mode {mode})",
            )
            if initial_sync:
                # taken under the lock: a second run of the map's initial sync is refused above until this
                # one ends (it would have shared, and dropped, this one's progress)
                self.initial.progress[map_id] = {"phase": "starting"}
        if initial_sync:
            try:
                report = self.initial.run(table_map, master=master, skip_errors=skip_errors)
            except Exception as exc:  # noqa: BLE001 - a failed initial sync leaves the map Not running
                self.state.update_map(map_id, state=NOT_RUNNING)
                self.state.activity(map_id, "error", f"Initial sync failed: {exc}")
                raise
            finally:
                self.initial.progress.pop(map_id, None)
            self.state.activity(map_id, "initial-sync", report.summary())
            self.state.update_map(map_id, state=RUNNING, initial_sync_done=True)
        self.state.activity(map_id, "state", "Running")
        if self.drainer is not None:
            self.drainer.wake()  # an async map has work for the drainers from now on
        return self.status(map_id)

    def _switch_mode(self, table_map: TableMap, old: str, new: str) -> None:
        """A running map changes between live and async without an initial sync."""
        if new == "async" and self.drainer is not None:
            self.drainer.begin(table_map)
        self.state.update_map(table_map.id, mode=new)
        if self.drainer is not None:
            self.drainer.wake()
        if old == "async" and self.drainer is not None:
            # What the drainer had not applied yet is applied now, so leaving async mode loses nothing.
            self.drainer.flush(table_map)
        self.state.activity(table_map.id, "state", f"Mode switched from {old} to {new}")

    def stop(self, map_id: str) -> dict[str, Any]:
        self.table_map(map_id)
        with self.lock:
            self.state.update_map(map_id, state=NOT_RUNNING, paused_sales_seq=None, paused_scm_seq=None)
            self.state.activity(map_id, "state", "Stopped (Not running)")
        return self.status(map_id)

    def pause(self, map_id: str) -> dict[str, Any]:
        table_map = self.table_map(map_id)
        with self.lock:
            row = self.state.map_row(map_id)
            if row["state"] != RUNNING:
                raise Conflict(f"Only a running map can be paused; '{map_id}' is {row['state']}.")
            cursors: dict[str, int] = {}
            for source in self.sources(table_map):
                seq = int(self.controls[source].changes(after=0, limit=1)["latest"])
                if row["mode"] == "async" and self.drainer is not None:
                    # The drainer's backlog is part of the queue: catch-up starts where the drainer was.
                    seq = min(seq, self.drainer.position(table_map, source))
                cursors[f"paused_{source}_seq"] = seq
            self.state.update_map(map_id, state=PAUSED, **cursors)
            self.state.activity(map_id, "state", "Paused: changes queue in the source until resumed")
        return self.status(map_id)

    def resume(self, map_id: str, mode: ResumeMode = "catchup") -> dict[str, Any]:
        """Catch up (replay the queue in order, then live), or skip to live keeping or discarding the queue."""
        if mode not in ("catchup", "skip_keep", "skip_discard"):
            raise BadRequest("mode must be 'catchup', 'skip_keep' or 'skip_discard'.")
        table_map = self.table_map(map_id)
        with self.lock:
            row = self.state.map_row(map_id)
            if row["state"] not in (PAUSED, RESUMING):
                raise Conflict(f"Only a paused map can be resumed; '{map_id}' is {row['state']}.")
            self.state.update_map(map_id, state=RESUMING)
            self.state.activity(map_id, "state", f"Resuming ({mode})")
        replayed = failed = 0
        # The master side replays first; fields it changed are then left out of the other side's replay of
        # the same records, so edits made on both sides while paused converge on the master's value.
        sources = sorted(self.sources(table_map), key=lambda s: s != row["master"])
        protected = self._master_fields(table_map, sources[0], row) if len(sources) > 1 and mode == "catchup" else {}
        for index, source in enumerate(sources):
            if index > 0 and protected:
                self.engine.field_guard = lambda write: drop_scm_fields(
                    write, protected.get(record_identity(write), set())
                )
            try:
                replayed_here, failed_here = self._drain(table_map, source, mode)
            finally:
                self.engine.field_guard = None
            replayed += replayed_here
            failed += failed_here
        with self.lock:
            self.state.update_map(map_id, state=RUNNING)
        # Changes committed while the state switched are still after the cursor: one more pass takes them.
        for source in self.sources(table_map):
            replayed_here, failed_here = self._drain(table_map, source, mode)
            replayed += replayed_here
            failed += failed_here
        self.state.update_map(map_id, paused_sales_seq=None, paused_scm_seq=None)
        self.state.activity(map_id, "state", f"Running: {replayed} queued changes replayed, {failed} catch-up errors")
        return self.status(map_id)

    def _master_fields(
        self, table_map: TableMap, source: Source, row: dict[str, Any]
    ) -> dict[tuple[str, str, tuple[str, ...]], set[str]]:
        """Per record, the SCM fields the master side's queue changes (planned, not written)."""
        protected: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
        cursor_row = dict(row)
        while True:
            changes, next_seq = self.queued_changes(table_map, cursor_row, source, limit=5000)
            if not changes:
                return protected
            try:
                writes = self.engine.plan(source, changes, maps=lambda m: m.id == table_map.id, partial=True)
            except SyncError:
                return protected
            for write in writes:
                protected.setdefault(record_identity(write), set()).update(scm_field_names(write))
            if len(changes) < 5000:
                return protected
            cursor_row[f"paused_{source}_seq"] = next_seq

    def _drain(self, table_map: TableMap, source: Source, mode: ResumeMode) -> tuple[int, int]:
        replayed = failed = 0
        while True:
            row = self.state.map_row(table_map.id)
            if row[f"paused_{source}_seq"] is None:
                return replayed, failed
            changes, next_seq = self.queued_changes(table_map, row, source)
            if not changes:
                self.state.update_map(table_map.id, **{f"paused_{source}_seq": next_seq})
                return replayed, failed
            for group in by_transaction(changes):
                if mode == "skip_keep":
                    for change in group:
                        self.state.add_catchup_error(table_map.id, change, source, "Skipped to live sync")
                    failed += len(group)
                elif mode == "catchup":
                    # In order, through the per-record guard: a change already applied (a replay after a
                    # restart, or the drainer of an async map) is not applied again.
                    result = apply_in_order(self.engine, self.state, source, group, {table_map.id}, via="catch-up")
                    replayed += result.written
                    for outcome in result.failures:
                        assert outcome.error is not None
                        for change in outcome.changes:
                            self.state.add_catchup_error(table_map.id, change, source, outcome.error.message)
                        failed += len(outcome.changes)
                # The queue position moves per source transaction: a bridge killed mid-catch-up replays at
                # most the transaction it was in.
                self._advance_queue(table_map.id, source, int(group[-1]["seq"]))
            self._advance_queue(table_map.id, source, next_seq)

    def _advance_queue(self, map_id: str, source: Source, seq: int) -> None:
        if self.state.map_row(map_id)[f"paused_{source}_seq"] is not None:  # None: stopped meanwhile
            self.state.update_map(map_id, **{f"paused_{source}_seq": seq})

    def retry_catchup(self, map_id: str, ids: list[int] | None = None) -> dict[str, Any]:
        """Retry catch-up errors (all, or the given ids) in their original order."""
        self.table_map(map_id)
        rows = [
            r
            for r in reversed(self.state.rows(CatchupErrorRow, map_id, limit=100_000, status="Error"))
            if ids is None or r["id"] in ids
        ]
        done = failed = 0
        for row in rows:
            result = apply_in_order(
                self.engine, self.state, row["source"], [row["change"]], {map_id}, via="catch-up retry"
            )
            if result.failures:
                error = result.failures[0].error
                self.state.set_catchup_status(row["id"], "Error", error.message if error else None, tried=True)
                failed += 1
            elif not result.outcomes and result.skipped:
                # A newer change of the same record was applied since: replaying this one would undo it.
                self.state.set_catchup_status(
                    row["id"], "Completed", "Superseded by a newer change of the same record; not applied again"
                )
                done += 1
            else:
                self.state.set_catchup_status(row["id"], "Completed", tried=True)
                done += 1
        return {"retried": len(rows), "completed": done, "failed": failed}

    # ---- alerts ------------------------------------------------------------------------------------------
    def set_alerts(self, map_id: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.table_map(map_id)
        parsed: list[AlertRule] = []
        for rule in rules:
            try:
                parsed.append(
                    AlertRule(
                        count=int(rule["count"]),
                        window_seconds=float(rule["window_seconds"]),
                        action=rule.get("action", "pause"),
                        kind=rule.get("kind", "any"),
                    )
                )
            except (KeyError, TypeError, ValueError):
                raise BadRequest(
                    "An alert rule needs count, window_seconds and optionally action "
                    "(pause|stop) and kind (any|application|network)."
                ) from None
            if parsed[-1].action not in ("pause", "stop") or parsed[-1].count < 1:
                raise BadRequest("An alert rule's action is pause or stop and its count at least 1.")
        self.runtime[map_id].alerts = parsed
        self.state.activity(map_id, "alerts", f"{len(parsed)} alert rule(s) set")
        return [rule.as_dict() for rule in parsed]

    def _on_event(self, event: str, map_id: str, detail: Any) -> None:
        if event != "failed" or map_id not in self.runtime:
            return
        runtime = self.runtime[map_id]
        kind = "network" if isinstance(detail, SyncError) and detail.transient else "application"
        now = time.monotonic()
        runtime.errors.append((now, kind))
        for rule in runtime.alerts:
            recent = [t for t, k in runtime.errors if now - t <= rule.window_seconds and rule.kind in ("any", k)]
            if len(recent) >= rule.count:
                runtime.errors.clear()
                threading.Thread(target=self._alert, args=(map_id, rule), daemon=True).start()
                return

    def _alert(self, map_id: str, rule: AlertRule) -> None:
        self.state.activity(
            map_id, "alert", f"{rule.count} {rule.kind} errors within {rule.window_seconds}s: {rule.action}"
        )
        try:
            if rule.action == "pause" and self.state.map_row(map_id)["state"] == RUNNING:
                self.pause(map_id)
            elif rule.action == "stop":
                self.stop(map_id)
        except Exception:  # noqa: BLE001 - an alert that cannot act is logged, not raised
            self.state.activity(map_id, "alert", "the alert action could not be applied")


__all__ = ["Lifecycle", "AlertRule"]
