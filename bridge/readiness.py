"""Ready means ready: what the bridge's ``/_sandbox/health`` waits for before it answers 200.

A bridge serves its promise (a write on either side reaches the other) only once the maps it was asked to
start run: their initial syncs done, live sync on. Until then its health answers 503 and names what it
waits for, so a script that waits for health and then writes never writes past a map that is still
initializing (that write would not be synced live).

Whoever starts the maps (the stack, for ``sandbox up``) says so before the bridge is served
(:meth:`Startup.expect`), then runs them through :meth:`bridge.app.BridgeRuntime.start_maps`, which moves
the startup to ready, or to failed with each map's error: a startup that cannot finish says so instead of
leaving its callers waiting. Maps a restarted bridge must finish by itself (an initial sync or a catch-up
that a kill interrupted, see :meth:`bridge.worker.AsyncWorker.recover`) are waited for too. A bridge whose
maps nobody starts (bench, tests that run maps themselves) is ready as soon as it serves: there is nothing
it promised to run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

Phase = Literal["ready", "pending", "starting", "failed"]


class StartupError(RuntimeError):
    """The bridge's maps could not all be started; the message names each map that failed and why."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        super().__init__(
            "the bridge could not start its maps: "
            + "; ".join(f"map '{map_id}': {message}" for map_id, message in self.failures.items())
        )


@dataclass
class Startup:
    """The phase of the bridge's startup and the maps it waits for; thread-safe (health reads it while
    the startup thread and the recovery thread move it)."""

    phase: Phase = "ready"
    #: maps the startup runs (empty while pending: which ones is known once it starts)
    maps: list[str] = field(default_factory=list)
    #: maps a restarted bridge finishes by itself (interrupted initial syncs and catch-ups)
    recovering: set[str] = field(default_factory=set)
    #: map id -> why it could not start (initial sync or recovery failed)
    failures: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expect(self) -> None:
        """Maps will be started (by :meth:`begin`): not ready until then. Called before the bridge serves."""
        with self._lock:
            if self.phase == "ready":
                self.phase = "pending"

    def begin(self, map_ids: list[str]) -> None:
        with self._lock:
            self.phase = "starting"
            self.maps = list(map_ids)
            self.failures.clear()

    def finish(self, failures: dict[str, str] | None = None) -> None:
        with self._lock:
            self.failures.update(failures or {})
            self.phase = "failed" if self.failures else "ready"

    def recover(self, map_ids: set[str]) -> None:
        """A restarted bridge finishes these maps by itself (wait for them)."""
        with self._lock:
            self.recovering |= map_ids

    def recovered(self, map_id: str, error: str | None = None) -> None:
        """The recovery of ``map_id`` ended (``error``: it failed, and the bridge reports so)."""
        with self._lock:
            self.recovering.discard(map_id)
            if error is not None:
                self.failures[map_id] = error
                if self.phase == "ready":
                    self.phase = "failed"

    def snapshot(self) -> tuple[Phase, list[str], set[str], dict[str, str]]:
        with self._lock:
            return self.phase, list(self.maps), set(self.recovering), dict(self.failures)


@dataclass
class Readiness:
    """What ``/_sandbox/health`` answers: 200 when ``ready``, else 503 with the reasons."""

    ready: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503


def readiness(startup: Startup, map_ids: list[str], statuses: dict[str, dict[str, Any]]) -> Readiness:
    """The bridge's readiness from its startup and the status of each map (``statuses``: by map id, the
    lifecycle's status of each map, with ``state`` and, while initializing, ``initial_sync_progress``).

    Waiting for: every map the startup runs that is not Running yet (all maps while the startup is pending),
    and every map the recovery has not finished. Failed: the maps whose start or recovery failed, with
    their errors and states.
    """
    phase, started, recovering, failures = startup.snapshot()
    body: dict[str, Any] = {"status": "ok", "service": "bridge"}
    waited = set(recovering)
    if phase == "pending":
        waited |= set(map_ids)
    elif phase == "starting":
        waited |= set(started)
    waiting = []
    for map_id in map_ids:
        status = statuses.get(map_id, {})
        if map_id in waited and map_id not in failures and (status.get("state") != "Running" or map_id in recovering):
            entry: dict[str, Any] = {"map": map_id, "state": status.get("state")}
            if "initial_sync_progress" in status:
                entry["initial_sync_progress"] = status["initial_sync_progress"]
            waiting.append(entry)
    if failures:
        body["status"] = "failed"
        body["errors"] = [
            {"map": map_id, "state": statuses.get(map_id, {}).get("state"), "error": message}
            for map_id, message in failures.items()
        ]
    elif phase in ("pending", "starting") or waiting:
        body["status"] = "starting"
    if waiting or body["status"] == "starting":
        body["waiting_for"] = waiting
    return Readiness(body["status"] == "ok", body)


__all__ = ["Readiness", "Startup", "StartupError", "readiness"]
