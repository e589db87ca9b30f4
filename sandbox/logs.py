"""The services' log lines: one per request (``sandbox.requests``), and the level between info and warning.

Levels, from quiet to chatty (``sandbox up --log-level``):

- ``warning``/``error``: what went wrong only;
- ``notice`` (the default, :data:`NOTICE`): startup, errors, the bridge's map state changes;
- ``info``: also one line per request and one per synced unit;
- ``debug``: also health probes and full tracebacks.

Each line carries its facts as ``extra`` fields (``service``, ``method``, ``path``, ``status``, ``duration_ms``,
``identity``), so a JSON formatter writes them as keys and a text formatter as a readable line. Configuring
handlers and formats is the composition root's job (:mod:`leadtocash.logs`); a library only logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import flask

#: between INFO and WARNING: what a user running ``sandbox up`` wants to see without asking (startup, map states)
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

#: the logger of the per-request lines
REQUEST_LOGGER = "sandbox.requests"
#: requests logged at debug rather than info: probes a stack or a load balancer repeats many times a second
QUIET_PATHS = frozenset({"/_sandbox/health", "/metrics"})
_G_START = "sandbox_log_start"


def header_identity(request: flask.Request) -> str | None:
    """The caller as the sandbox identity header names it (None when it does not)."""
    value = request.headers.get("X-Sandbox-Identity")
    return value.strip() if value else None


def install_request_log(
    app: flask.Flask, service: str, identity_of: Callable[[flask.Request], str | None] = header_identity
) -> None:
    """Log one line per request of ``app`` on :data:`REQUEST_LOGGER` at info: method, path, status, duration and
    the caller's identity (``identity_of``, the same resolution the service's journal uses).

    The clock starts in a hook put first, so refused requests (by the edge checks or authentication, which
    answer before later hooks run) are timed and logged too; the line is written after every other hook.
    Nothing is computed when info is off: the bench's hot path pays one level check.
    """
    logger = logging.getLogger(REQUEST_LOGGER)

    def start() -> None:
        setattr(flask.g, _G_START, time.perf_counter())

    def finish(response: flask.Response) -> flask.Response:
        request = flask.request
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        started = flask.g.get(_G_START)
        if started is None or not logger.isEnabledFor(level):
            return response
        duration = round((time.perf_counter() - started) * 1000, 1)
        try:
            identity = identity_of(request)
        except Exception:  # noqa: BLE001 - a log line must never break a response
            identity = None
        logger.log(
            level,
            "%s %s %s %d %.1f ms%s",
            service,
            request.method,
            request.full_path if request.query_string else request.path,
            response.status_code,
            duration,
            f" {identity}" if identity else "",
            extra={
                "service": service,
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("utf-8", errors="replace"),
                "status": response.status_code,
                "duration_ms": duration,
                "identity": identity,
            },
        )
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    # after_request hooks run last-registered first: put first, it runs after every other one (the final status)
    app.after_request_funcs.setdefault(None, []).insert(0, finish)


def request_elapsed() -> float | None:
    """Seconds since the current request of an app with :func:`install_request_log` arrived (None outside one)."""
    if not flask.has_request_context():
        return None
    started = flask.g.get(_G_START)
    return None if started is None else time.perf_counter() - started


def log_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields a record carries (what is not a standard LogRecord attribute)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES and not k.startswith("_")}


_STANDARD_ATTRIBUTES = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "taskName",
    }
)
