"""Logging of a served stack, configured once (``sandbox up --log-level LEVEL --log-format text|json``).

One handler on the root logger writes to stderr (``sandbox up``'s stdout keeps its service and ready lines):

- ``text``: ``18:41:19.123 INFO    sales POST /api/data/v9.2/accounts 204 3.1 ms dualwrite``;
- ``json``: one object per line with ``time``, ``level``, ``logger``, ``message`` and the line's fields
  (``service``, ``method``, ``path``, ``status``, ``duration_ms``, ``identity``; for a synced unit ``map``, ``key``,
  ``direction``, ``operation``, ``outcome``, ``latency_ms``, ``error``).

Levels are those of :mod:`sandbox.logs` (default ``notice``). An exception never shows as a bare traceback: below
``debug`` a record with one is written as one line ending in the exception's class and message and a hint; the
traceback is written only at ``debug``. Libraries that talk a lot (waitress, werkzeug's request lines, httpx)
are held at warning (waitress at error) unless the level is ``debug``; SQLAlchemy and Faker always.

Child processes (``--wire processes``) read the same settings from :data:`ENVIRONMENT_VARIABLE`, which
:func:`configure_logging` sets for them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from sandbox.logs import NOTICE, REQUEST_LOGGER, log_fields

#: the logger of the stack's own lines (startup, shutdown); the bridge's sync lines come from ``bridge.sync``
STACK_LOGGER = "leadtocash"
SYNC_LOGGER = "bridge.sync"

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
DEFAULT_LEVEL = "notice"
FORMATS = ("text", "json")
DEFAULT_FORMAT = "text"
#: ``LEVEL,FORMAT`` for child processes of a stack (inherited through the environment)
ENVIRONMENT_VARIABLE = "SANDBOX_LOG"
#: libraries whose own lines are noise next to ours, and the level they are held at unless debugging
QUIET_LIBRARIES = {
    "waitress": logging.ERROR,
    "werkzeug": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "faker": logging.WARNING,
    "urllib3": logging.WARNING,
}
#: loggers whose lines say where they come from themselves (others get their name in brackets in text lines)
OWN_LOGGERS = frozenset({REQUEST_LOGGER, SYNC_LOGGER, STACK_LOGGER})
#: held back even at debug: every SQL statement and every fake value would bury the sandbox's own lines
ALWAYS_QUIET = frozenset({"sqlalchemy", "faker"})
TRACEBACK_HINT = "run with --log-level debug for the traceback"

_HANDLER_NAME = "lead-to-cash-sandbox"


class LineFormatter(logging.Formatter):
    """One line per record (text or JSON); tracebacks only when ``tracebacks`` is on."""

    def __init__(self, fmt: str = DEFAULT_FORMAT, *, tracebacks: bool = False) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        exception = None
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            exception = f"{type(error).__name__}: {error}".strip().rstrip(":")
        when = dt.datetime.fromtimestamp(record.created, dt.UTC)
        if self.fmt == "json":
            body: dict[str, Any] = {
                "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                **log_fields(record),
            }
            if exception is not None:
                body["exception"] = exception
                if self.tracebacks:
                    body["traceback"] = self.formatException(record.exc_info)  # type: ignore[arg-type]
            return json.dumps(body, default=str, ensure_ascii=False)
        source = "" if record.name in OWN_LOGGERS else f"[{record.name}] "
        line = f"{when.astimezone().strftime('%H:%M:%S.%f')[:-3]} {record.levelname:<7} {source}{message}"
        if exception is not None:
            if self.tracebacks:
                line += "\n" + self.formatException(record.exc_info)  # type: ignore[arg-type]
            else:
                line += f" ({exception}; {TRACEBACK_HINT})"
        return " ".join(line.splitlines()) if not self.tracebacks else line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it and close the old one)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def parse_level(name: str) -> int:
    """The level of a ``--log-level`` name; ValueError names the choices."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; expected one of {', '.join(LEVELS)}") from None


def configure_logging(
    level: str = DEFAULT_LEVEL, fmt: str = DEFAULT_FORMAT, stream: IO[str] | None = None
) -> Callable[[], None]:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as ``fmt`` lines; safe to call again
    (the handler it installed before is replaced). Child processes started later inherit the settings.

    Returns what puts everything back as it was (a command run in-process, by a test say, must not leave its
    handler writing into what later commands print)."""
    numeric = parse_level(level)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    saved_environment = os.environ.get(ENVIRONMENT_VARIABLE)

    def restore() -> None:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, old in saved_levels.items():
            logging.getLogger(name).setLevel(old)
        if saved_environment is None:
            os.environ.pop(ENVIRONMENT_VARIABLE, None)
        else:
            os.environ[ENVIRONMENT_VARIABLE] = saved_environment

    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(LineFormatter(fmt, tracebacks=numeric <= logging.DEBUG))
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, quiet in QUIET_LIBRARIES.items():
        debugging = numeric <= logging.DEBUG and name not in ALWAYS_QUIET
        logging.getLogger(name).setLevel(logging.DEBUG if debugging else quiet)
    os.environ[ENVIRONMENT_VARIABLE] = f"{level.lower()},{fmt}"
    return restore


def configure_from_environment() -> bool:
    """In a child process: the parent's settings from :data:`ENVIRONMENT_VARIABLE`, if it set any."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "")
    level, _, fmt = value.partition(",")
    if level not in LEVELS or fmt not in FORMATS:
        return False
    configure_logging(level, fmt)
    return True
