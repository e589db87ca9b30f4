"""JSON for the hot paths: change capture, OData bodies and answers, the typed clients.

orjson encodes and decodes several times faster than the standard library, which shows in bulk work (an
initial sync moves every row through JSON five times). Where the two differ, the standard library's
behaviour is kept: what orjson refuses (integers beyond 64 bits, ``NaN`` literals in a body) falls back
to :mod:`json`, so the same values are accepted and a malformed body gets the same error message as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# Temporal values go through ``default`` (each service formats them its own way); dicts keyed by ints work
# as with json.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
# orjson's own rendering of datetime, date and time is their ``isoformat()`` (a time zone offset with seconds
# aside, whose seconds it drops); a time with a time zone it refuses, and then the fallback's ``default``
# renders it.
_ISO_TEMPORAL_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_bytes(value: Any, default: Callable[[Any], Any] | None = None, *, iso_temporal: bool = False) -> bytes:
    """Compact UTF-8 JSON (no spaces, non-ASCII kept), ``default`` for what JSON cannot hold.

    With ``iso_temporal``, datetimes, dates and times are written as their ``isoformat()`` without a call to
    ``default`` each (``default`` must then render them that way too, for the values orjson leaves to it).
    """
    try:
        return orjson.dumps(value, default=default, option=_ISO_TEMPORAL_OPTIONS if iso_temporal else _OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(value: Any, default: Callable[[Any], Any] | None = None, *, iso_temporal: bool = False) -> str:
    """:func:`dumps_bytes` as text."""
    return dumps_bytes(value, default, iso_temporal=iso_temporal).decode("utf-8")


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON; on anything orjson refuses, :func:`json.loads` decides (and raises its usual errors)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
