"""JSON for the hot paths: change capture, OData bodies and answers, the typed clients.

orjson encodes and decodes several times faster than the standard library, which shows in bulk work (an
initial sync moves every row through JSON five times). Where the two differ, the standard library's
behaviour is kept: what orjson refuses (integers beyond 64 bits, ``NaN`` literals in a body) falls back
to :mod:`json`, so the same values are accepted and a malformed body gets the same error message as before.
Nesting has a limit: a document nested deeper than :data:`MAX_DEPTH` levels (orjson's own limit) is
malformed, a ``ValueError`` like any malformed JSON, where :func:`json.loads` would recurse until
``RecursionError``. Request bodies have a lower one (:func:`loads_request`).

:func:`json_default` is the sandbox's one answer to "how is a value JSON has no type for written"; the two
ways the callers differ (temporal values as plain ``isoformat()``, decimals as exact JSON numbers) are
options of :func:`dumps_bytes`, not further ``default`` functions.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from sandbox.odata.literals import iso_datetime

__all__ = [
    "MAX_DEPTH",
    "REQUEST_MAX_DEPTH",
    "TooDeep",
    "dumps",
    "dumps_bytes",
    "json_default",
    "loads",
    "loads_request",
]

#: the deepest nesting of arrays and objects :func:`loads` accepts (orjson's limit)
MAX_DEPTH = 1024
#: the deepest nesting a request body may have (:func:`loads_request`). The real services read bodies with
#: ODataLib, whose default ``MessageQuotas.MaxNestingDepth`` is 100; no body the sandbox serves nests half as
#: deep. Far below Python's recursion limit, so nothing that later walks or prints a body can overflow.
REQUEST_MAX_DEPTH = 100

Default = Callable[[Any], Any]

# Temporal values go through ``default``; dicts keyed by ints work as with json.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
# orjson's own rendering of datetime, date and time is their ``isoformat()`` (a time zone offset with seconds
# aside, whose seconds it drops); a time with a time zone it refuses, and then ``default`` renders it.
_ISO_TEMPORAL_OPTIONS = orjson.OPT_NON_STR_KEYS


def json_default(value: Any) -> Any:
    """The JSON form of what JSON has no type for (a ``default`` for :func:`dumps` and :func:`json.dumps`).

    Decimal -> its exact text (a string: no float rounding); datetime -> ISO 8601 with UTC as ``Z`` (the
    OData form); date and time -> ``isoformat()``; UUID -> its text; an enum -> its value; bytes -> base64;
    sets and tuples -> lists. Anything else raises :class:`TypeError`, as :mod:`json` does.
    """
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return iso_datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_bytes(
    value: Any,
    default: Default | None = None,
    *,
    iso_temporal: bool = False,
    decimal_numbers: bool = False,
) -> bytes:
    """Compact UTF-8 JSON (no spaces, non-ASCII kept), ``default`` for what JSON cannot hold.

    With ``iso_temporal``, datetimes, dates and times are written as their ``isoformat()`` (UTC as
    ``+00:00``) without a call to ``default`` each. With ``decimal_numbers``, a finite Decimal is written as
    a JSON number of exactly its digits (a NaN or infinity as null) (what an OData ``Edm.Decimal`` is on the wire) instead of going to
    ``default``; should orjson refuse the document, the fallback writes it as the nearest float.
    """
    fast_default = _decimals_as_numbers(default) if decimal_numbers else default
    try:
        return orjson.dumps(value, default=fast_default, option=_ISO_TEMPORAL_OPTIONS if iso_temporal else _OPTIONS)
    except orjson.JSONEncodeError:
        fallback = default
        if iso_temporal:
            fallback = _temporal_as_iso(fallback)
        if decimal_numbers:
            fallback = _decimals_as_floats(fallback)
        return json.dumps(value, default=fallback, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(
    value: Any, default: Default | None = None, *, iso_temporal: bool = False, decimal_numbers: bool = False
) -> str:
    """:func:`dumps_bytes` as text."""
    return dumps_bytes(value, default, iso_temporal=iso_temporal, decimal_numbers=decimal_numbers).decode("utf-8")


class TooDeep(json.JSONDecodeError):
    """JSON nested deeper than :data:`MAX_DEPTH` levels: a ``ValueError`` as any malformed JSON is."""


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON; on anything orjson refuses, :func:`json.loads` decides (and raises its usual errors).

    Every failure is a ``ValueError`` (a :class:`json.JSONDecodeError`), so callers that catch that catch
    every malformed document, the too deeply nested one (:class:`TooDeep`) included.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(exc.doc, exc.pos) from None
        try:
            return json.loads(data)
        except RecursionError:
            # What orjson refused for another reason (a NaN literal) may still nest deeper than the stack.
            raise _too_deep(exc.doc, exc.pos) from None


def loads_request(data: bytes | bytearray | str) -> Any:
    """:func:`loads` for a request body: also :class:`TooDeep` beyond :data:`REQUEST_MAX_DEPTH` levels.

    Every JSON body a service, the bridge or a control plane reads goes through here, so one limit keeps
    any nesting from reaching code that recurses over a body (``repr`` in an error message, a walk).
    """
    value = loads(data)
    # A document cannot nest deeper than it has openings: most bodies are settled without a walk.
    if (
        isinstance(value, (dict, list))
        and _openings(data) > REQUEST_MAX_DEPTH
        and _deeper_than(value, REQUEST_MAX_DEPTH)
    ):
        text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
        raise TooDeep(f"JSON nested deeper than {REQUEST_MAX_DEPTH} levels", text, 0)
    return value


def _openings(data: bytes | bytearray | str) -> int:
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    # Iterative, so the check itself cannot overflow the stack it protects.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                pending.append((child, depth + 1))
    return False


def _too_deep(document: str, position: int) -> TooDeep:
    return TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels", document, position)


def _unsupported(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decimals_as_numbers(default: Default | None) -> Default:
    then = default or _unsupported

    def render(value: Any) -> Any:
        if isinstance(value, Decimal):
            # NaN and infinities have no JSON number: as floats, which orjson writes as null
            return orjson.Fragment(str(value)) if value.is_finite() else float(value)
        return then(value)

    return render


def _decimals_as_floats(default: Default | None) -> Default:
    then = default or _unsupported

    def render(value: Any) -> Any:
        return float(value) if isinstance(value, Decimal) else then(value)

    return render


def _temporal_as_iso(default: Default | None) -> Default:
    # What orjson does natively under ``iso_temporal``, so the fallback writes the same text.
    then = default or _unsupported

    def render(value: Any) -> Any:
        if isinstance(value, (dt.datetime, dt.date, dt.time)):
            return value.isoformat()
        return then(value)

    return render
