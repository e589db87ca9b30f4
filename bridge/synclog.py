"""The bridge's log lines: one per synced unit, and the maps' state changes and errors (logger ``bridge.sync``).

Fed by :class:`bridge.state.BridgeState`, where every outcome is recorded anyway (traces, activity), so the
engine, the worker and the lifecycle need not know about logging:

- each target write, at info: ``sync customers-accounts to_sales accountnumber=PW-001 upsert synced 8.2 ms``
  (the latency runs from the source change's commit to the record of the write; live writes are timed from the
  moment the source handed its change over); a failed write the same with ``failed`` and the error (its
  activity entry says so at warning);
- the activity log: state changes (and initial-sync summaries) at notice, so ``sandbox up`` shows them by
  default, except during the bridge's own startup, which its ready line sums up (info then); errors and alerts
  at warning; the rest at info.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bridge.readiness import Startup
from bridge.worker import age_seconds
from sandbox.logs import NOTICE, request_elapsed

SYNC_LOGGER = "bridge.sync"
#: activity kinds and the level they are logged at (others at info)
ACTIVITY_LEVELS = {"state": NOTICE, "initial-sync": NOTICE, "error": logging.WARNING, "alert": logging.WARNING}
#: how much of an error message a sync line carries
ERROR_LIMIT = 300


def key_text(key: Any) -> str:
    """``accountnumber=PW-001`` (several columns joined by ``,``) for a key as the bridge keeps it."""
    if isinstance(key, dict):
        return ",".join(f"{name}={_scalar(value)}" for name, value in key.items()) or "-"
    return _scalar(key)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _error_of(response: Any) -> str | None:
    """The error message of a failed write's response (``{"status", "body": {"error": ...}}``, or
    ``{"error": message}`` when the target never answered)."""
    if isinstance(response, dict) and isinstance(response.get("body"), dict):
        response = response["body"]
    if isinstance(response, dict):
        error = response.get("error")
        if isinstance(error, dict):  # F&O says what failed in its innererror, Dataverse in its message
            inner = error.get("innererror")
            error = (inner.get("message") if isinstance(inner, dict) else None) or error.get("message") or error
        if error is not None:
            return " ".join(str(error).split())[:ERROR_LIMIT]
    return None


class SyncLog:
    """A :class:`~bridge.state.BridgeState` listener writing the lines above; attach with :func:`attach`."""

    def __init__(self, startup: Startup | None = None, logger: logging.Logger | None = None) -> None:
        self.startup = startup
        self.logger = logger or logging.getLogger(SYNC_LOGGER)

    def __call__(self, event: str, items: list[tuple[Any, ...]]) -> None:
        if event == "activity":
            for map_id, kind, message in items:
                self.activity(map_id, kind, message)
        elif event in ("synced", "failed") and self.logger.isEnabledFor(logging.INFO):
            for item in items:
                self.unit(*item[:8])

    def activity(self, map_id: str, kind: str, message: str) -> None:
        level = ACTIVITY_LEVELS.get(kind, logging.INFO)
        if level == NOTICE and self.startup is not None and self.startup.phase in ("pending", "starting"):
            level = logging.INFO
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level, "map %s %s: %s", map_id, kind, message, extra={"map": map_id, "kind": kind, "event": "activity"}
            )

    def unit(
        self, map_id: str, direction: str, key: Any, operation: str, source: Any, payload: Any, response: Any, ok: bool
    ) -> None:
        latency = age_seconds(source.get("created_at")) if isinstance(source, dict) else None
        if latency is None:  # a live unit: the source's call to the bridge is the request being answered
            latency = request_elapsed()
        latency_ms = None if latency is None else round(latency * 1000, 1)
        outcome = "synced" if ok else "failed"
        error = None if ok else _error_of(response)
        text = key_text(key)
        self.logger.log(
            logging.INFO,  # a failure is also an activity error, logged at warning
            "sync %s %s %s %s %s%s%s",
            map_id,
            direction,
            text,
            operation,
            outcome,
            "" if latency_ms is None else f" {latency_ms:.1f} ms",
            f": {error}" if error else "",
            extra={
                "map": map_id,
                "direction": direction,
                "key": text,
                "operation": operation,
                "outcome": outcome,
                "latency_ms": latency_ms,
                "error": error,
                "event": "sync",
            },
        )


def attach(state: Any, startup: Startup | None = None) -> SyncLog:
    """Log the outcomes and activity ``state`` (a :class:`~bridge.state.BridgeState`) records."""
    sync_log = SyncLog(startup)
    state.listeners.append(sync_log)
    return sync_log
