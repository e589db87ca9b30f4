"""Prometheus metrics of the bridge, served at ``GET /metrics`` in the text exposition format.

* ``bridge_records_synced_total{map,direction}`` / ``bridge_records_failed_total{map,direction}``: target
  writes that succeeded / failed (live, catch-up and async; one failed unit counts once per map). Counters
  start at 0 for every map and direction it syncs, and restart with the process as Prometheus expects.
* ``bridge_async_retries_total{source}``: transient failures the async drainer backed off and retried.
* ``bridge_sync_latency_seconds{mode}``: histogram; ``live`` = how long the bridge took to apply one source
  transaction synchronously, ``async`` = from the source commit to the target write.
* Read at scrape time from the map status: ``bridge_map_queued{map}``, ``bridge_map_lag_seconds{map}``,
  ``bridge_map_catchup_errors{map}``, ``bridge_map_records{map,outcome}`` (the durable synced/failed totals
  the console shows, initial sync included), ``bridge_map_state{map,state}`` (1 for the current state, else 0),
  ``bridge_async_cursor{source}`` and ``bridge_async_worker_running``.

Each bridge app has its own registry (several bridges can live in one test process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.state import STATES

if TYPE_CHECKING:
    from bridge.app import BridgeRuntime

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class BridgeMetrics:
    """The bridge's registry: event counters fed by the engine and the worker, gauges read on scrape."""

    def __init__(self, runtime: BridgeRuntime) -> None:
        self.runtime = runtime
        self.registry = CollectorRegistry()
        self.synced = Counter(
            "bridge_records_synced", "Records written to the other side.", ["map", "direction"], registry=self.registry
        )
        self.failed = Counter(
            "bridge_records_failed",
            "Sync units that failed to write to the other side.",
            ["map", "direction"],
            registry=self.registry,
        )
        self.retries = Counter(
            "bridge_async_retries",
            "Transient async failures retried after a backoff.",
            ["source"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bridge_sync_latency_seconds",
            "Sync latency: live = bridge time per source transaction; async = source commit to target write.",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for table_map in runtime.maps:
            # Present from the start, so a dashboard shows 0 rather than nothing.
            for direction in _directions(table_map):
                self.synced.labels(table_map.id, direction)
                self.failed.labels(table_map.id, direction)
        for mode in ("live", "async"):
            self.latency.labels(mode)
        self.registry.register(_StatusCollector(runtime))
        runtime.engine.listeners.append(self._on_engine)
        runtime.worker.listeners.append(self._on_worker)

    def observe_live(self, seconds: float) -> None:
        self.latency.labels("live").observe(seconds)

    def _on_engine(self, event: str, map_id: str, detail: Any) -> None:
        if event == "written":
            self.synced.labels(map_id, detail["direction"]).inc(detail.get("count", 1))
        elif event == "write_failed":
            self.failed.labels(map_id, detail["direction"]).inc()

    def _on_worker(self, event: str, detail: dict[str, Any]) -> None:
        if event == "applied" and detail.get("latency") is not None:
            self.latency.labels("async").observe(detail["latency"])
        elif event == "retry":
            self.retries.labels(detail.get("source", "unknown")).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)


def _directions(table_map: Any) -> list[str]:
    out = []
    if table_map.syncs_to_sales:
        out.append("to_sales")
    if table_map.syncs_to_scm:
        out.append("to_scm")
    return out


class _StatusCollector(Collector):
    """Gauges computed from the maps' status when Prometheus scrapes."""

    def __init__(self, runtime: BridgeRuntime) -> None:
        self.runtime = runtime

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: names are stable, values only exist at scrape time

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "bridge_map_queued", "Changes waiting for the map (paused queue or async backlog).", labels=["map"]
        )
        lag = GaugeMetricFamily("bridge_map_lag_seconds", "Age of the oldest change not yet applied.", labels=["map"])
        errors = GaugeMetricFamily("bridge_map_catchup_errors", "Catch-up errors waiting for a retry.", labels=["map"])
        totals = GaugeMetricFamily(
            "bridge_map_records",
            "The map's durable totals (incl. initial sync) since it was created.",
            labels=["map", "outcome"],
        )
        state = GaugeMetricFamily(
            "bridge_map_state", "1 for the map's current lifecycle state.", labels=["map", "state"]
        )
        for table_map in self.runtime.maps:
            try:
                status = self.runtime.lifecycle.status(table_map.id)
            except Exception as exc:  # noqa: BLE001 - one map's status must not break the scrape
                log.warning("metrics: status of %s failed: %s", table_map.id, exc)
                continue
            queued.add_metric([table_map.id], float(status.get("queued") or 0))
            if status.get("lag_seconds") is not None:
                lag.add_metric([table_map.id], float(status["lag_seconds"]))
            errors.add_metric([table_map.id], float(status.get("catchup_errors") or 0))
            totals.add_metric([table_map.id, "synced"], float(status.get("synced") or 0))
            totals.add_metric([table_map.id, "failed"], float(status.get("failed") or 0))
            for name in STATES:
                state.add_metric([table_map.id, name], 1.0 if status["state"] == name else 0.0)
        yield from (queued, lag, errors, totals, state)
        worker = self.runtime.worker
        cursor = GaugeMetricFamily(
            "bridge_async_cursor", "Last change-feed seq the async drainer has passed.", labels=["source"]
        )
        for source in ("sales", "scm"):
            value = self.runtime.state.cursor(source)
            if value is not None:
                cursor.add_metric([source], float(value))
        yield cursor
        yield GaugeMetricFamily(
            "bridge_async_worker_running", "1 while the async drainers run.", value=1.0 if worker.running else 0.0
        )


def metrics_blueprint(runtime: BridgeRuntime) -> Blueprint:
    blueprint = Blueprint("bridge_metrics", __name__)

    @blueprint.get("/metrics")
    def metrics() -> Response:
        return Response(runtime.metrics.text(), content_type=CONTENT_TYPE_LATEST)

    return blueprint


__all__ = ["BridgeMetrics", "metrics_blueprint"]
