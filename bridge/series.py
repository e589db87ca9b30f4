"""The last minutes of each map's sync, per second, in memory: what the console's charts draw.

A ring of one-second buckets per map (:data:`WINDOW_SECONDS` of them): records written and failed, fed by
the engine's events as they happen (no thread, no polling), and the largest sync latency seen in that
second (live: the bridge's time for one source transaction; async: from the source commit to the target
write) together with the map's lag whenever its status is read. Prometheus' ``/metrics`` stays the place for
long-term history; this is only the view of the last minutes a console shows without one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: how far back the series go
WINDOW_SECONDS = 600


@dataclass
class _Bucket:
    second: int
    synced: int = 0
    failed: int = 0
    #: the largest latency or lag seen in this second (None: nothing seen)
    lag: float | None = None


class SyncSeries:
    """Per-map rings of one-second buckets (``clock`` is injectable for tests)."""

    def __init__(self, map_ids: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._rings: dict[str, list[_Bucket | None]] = {m: [None] * WINDOW_SECONDS for m in map_ids}

    # ---- feeding ----------------------------------------------------------------------------------------
    def _bucket(self, map_id: str) -> _Bucket | None:
        ring = self._rings.get(map_id)
        if ring is None:
            return None
        second = int(self.clock())
        slot = second % WINDOW_SECONDS
        bucket = ring[slot]
        if bucket is None or bucket.second != second:
            bucket = ring[slot] = _Bucket(second)
        return bucket

    def add(self, map_id: str, *, synced: int = 0, failed: int = 0) -> None:
        with self._lock:
            bucket = self._bucket(map_id)
            if bucket is not None:
                bucket.synced += synced
                bucket.failed += failed

    def lag(self, map_id: str, seconds: float | None) -> None:
        """A lag (or latency) reading of ``map_id`` now; the bucket keeps the largest of its second."""
        if seconds is None:
            return
        with self._lock:
            bucket = self._bucket(map_id)
            if bucket is not None:
                bucket.lag = seconds if bucket.lag is None else max(bucket.lag, seconds)

    def on_engine(self, event: str, map_id: str, detail: Any) -> None:
        """A listener of :class:`bridge.engine.SyncEngine` (``written`` and ``write_failed`` events)."""
        if event == "written":
            self.add(map_id, synced=int(detail.get("count", 1)) if isinstance(detail, dict) else 1)
        elif event == "write_failed":
            self.add(map_id, failed=1)

    def on_worker(self, event: str, detail: dict[str, Any]) -> None:
        """A listener of the async drainers: the commit-to-write latency of an applied slice, per map."""
        if event == "applied" and detail.get("latency") is not None:
            for map_id in detail.get("maps") or []:
                self.lag(str(map_id), float(detail["latency"]))

    # ---- reading ----------------------------------------------------------------------------------------
    def window(self, map_ids: Iterable[str] | None = None, seconds: int = 300) -> dict[str, list[Any]]:
        """The last ``seconds`` (at most :data:`WINDOW_SECONDS`) summed over ``map_ids`` (default: all),
        as uPlot's columns: ``t`` (epoch seconds), ``synced``, ``failed`` and ``lag`` (the largest, or None)."""
        seconds = max(1, min(seconds, WINDOW_SECONDS))
        now = int(self.clock())
        first = now - seconds + 1
        chosen = list(self._rings) if map_ids is None else [m for m in map_ids if m in self._rings]
        synced = [0] * seconds
        failed = [0] * seconds
        lag: list[float | None] = [None] * seconds
        with self._lock:
            for map_id in chosen:
                ring = self._rings[map_id]
                for index in range(seconds):
                    bucket = ring[(first + index) % WINDOW_SECONDS]
                    if bucket is None or bucket.second != first + index:
                        continue
                    synced[index] += bucket.synced
                    failed[index] += bucket.failed
                    if bucket.lag is not None:
                        current = lag[index]
                        lag[index] = bucket.lag if current is None else max(current, bucket.lag)
        return {"t": list(range(first, now + 1)), "synced": synced, "failed": failed, "lag": lag}

    def per_minute(self, map_ids: Iterable[str] | None = None) -> int:
        """Records written in the last 60 seconds."""
        return sum(self.window(map_ids, 60)["synced"])


__all__ = ["SyncSeries", "WINDOW_SECONDS"]
