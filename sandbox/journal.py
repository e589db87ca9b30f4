"""A capped, in-memory journal of the requests a service answered (WireMock's request journal).

Entries are plain dicts, newest last in the ring buffer and newest first when listed::

    {"id": 17, "time": "2024-05-01T10:00:00.123456+00:00", "method": "POST", "path": "/data/Customers",
     "query": "cross-company=true", "status": 201, "duration_ms": 3.2, "identity": "bridge",
     "request_body": "...", "response_body": "...", "fault": "a1b2c3d4" | null}

Bodies are decoded as UTF-8 (invalid bytes replaced) and cut to the first 2 KB; a streamed response
(file download, a dropped-connection fault) is not read and shows as ``null``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import flask

from sandbox.faults import G_FAULT

BODY_LIMIT = 2048
_G_START = "sandbox_journal_start"


def truncate_body(data: bytes | None, limit: int = BODY_LIMIT) -> str | None:
    """The first ``limit`` bytes of ``data`` as text (None for no body); a cut body ends with ``…``."""
    if not data:
        return None
    text = data[:limit].decode("utf-8", errors="replace")
    return text + "…" if len(data) > limit else text


class Journal:
    """A thread-safe ring buffer of the last ``capacity`` request entries."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append ``entry`` (given an ``id``); the oldest entry falls out when full."""
        with self._lock:
            stored = {"id": next(self._ids), **entry}
            self._entries.append(stored)
            return stored

    def entries(
        self, limit: int | None = None, method: str | None = None, path_regex: str | None = None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` entries, newest first, optionally only one method and paths matching a regex.

        Raises :class:`re.error` for an invalid ``path_regex``.
        """
        pattern = re.compile(path_regex) if path_regex else None
        wanted = method.upper() if method else None
        with self._lock:
            snapshot = list(self._entries)
        result: list[dict[str, Any]] = []
        for entry in reversed(snapshot):
            if wanted is not None and entry["method"] != wanted:
                continue
            if pattern is not None and pattern.search(entry["path"]) is None:
                continue
            result.append(dict(entry))
            if limit is not None and len(result) >= limit:
                break
        return result

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def install_journal_hook(
    app: flask.Flask, journal: Journal, identity_of: Callable[[flask.Request], str], exclude_prefix: str = "/_sandbox"
) -> None:
    """Journal every request outside ``exclude_prefix``.

    Install this before :func:`sandbox.faults.install_fault_hook` so faulted requests are journaled too
    (an earlier ``before_request`` that answers skips the later ones; after-request hooks still all run).
    """

    def excluded(path: str) -> bool:
        return bool(exclude_prefix) and (path == exclude_prefix or path.startswith(exclude_prefix.rstrip("/") + "/"))

    def start() -> None:
        setattr(flask.g, _G_START, time.perf_counter())

    def finish(response: flask.Response) -> flask.Response:
        request = flask.request
        if excluded(request.path):
            return response
        started = flask.g.get(_G_START)
        duration = 0.0 if started is None else (time.perf_counter() - started) * 1000
        try:
            identity = identity_of(request)
        except Exception:  # noqa: BLE001 - the journal must never break a response
            identity = None
        try:
            request_body = truncate_body(request.get_data(cache=True))
        except Exception:  # noqa: BLE001 - e.g. a client that disconnected mid-body
            request_body = None
        response_body = None
        if not response.is_streamed and not response.direct_passthrough:
            response_body = truncate_body(response.get_data())
        fault = flask.g.get(G_FAULT)
        journal.add(
            {
                "time": dt.datetime.now(dt.UTC).isoformat(),
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("utf-8", errors="replace"),
                "status": response.status_code,
                "duration_ms": round(duration, 3),
                "identity": identity,
                "request_body": request_body,
                "response_body": response_body,
                "fault": fault.id if fault is not None else None,
            }
        )
        return response

    app.before_request(start)
    app.after_request(finish)
