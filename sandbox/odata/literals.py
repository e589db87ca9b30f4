"""OData URL literals: the one formatter of Python and wire values as key segments and filter operands.

A leaf module (nothing of the rest of the sandbox is imported), so the typed clients, the server-side
dialects, the bridge and the scenarios can all share it without pulling in a layer they must not see.
Wire conventions: ``docs/reference/dataverse-web-api.md`` and ``docs/reference/fno-odata.md``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from typing import Any

__all__ = ["format_literal", "iso_datetime", "looks_like_guid"]

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def looks_like_guid(value: str) -> bool:
    """Whether ``value`` is a GUID in its 8-4-4-4-12 hexadecimal form (either case, no braces)."""
    return bool(_GUID_RE.match(value))


def iso_datetime(value: dt.datetime) -> str:
    """ISO 8601 as OData writes it: ``isoformat()``, with UTC as ``Z`` (a naive value keeps no offset)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_literal(value: Any, *, guid_bare: bool = True) -> str:
    """An OData URL literal for ``value`` (not yet percent-encoded).

    - ``None`` is ``null``; bools are ``true``/``false``;
    - ints and decimals are bare, exactly as written (``Decimal("2.50")`` stays ``2.50``); floats bare by
      ``repr`` (the shortest text that reads back as the same float);
    - a :class:`uuid.UUID` is always bare: it is an ``Edm.Guid``, whose OData v4 literal has no quotes;
    - a string that looks like a GUID is bare when ``guid_bare`` (Dataverse writes GUID keys and lookups
      so) and quoted otherwise (F&O keys are strings, and ``eq`` against a string column needs quotes);
    - other strings are single-quoted with ``'`` doubled;
    - datetimes and dates are bare ISO 8601 (UTC as ``Z``), as ``Edm.DateTimeOffset``/``Edm.Date`` literals.

    Values already in their JSON wire form (strings, numbers, bools, null) come out as the same literal
    whatever produced them. Any other type is a programming error: :class:`TypeError`, never ``str()``
    quoted by accident.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if guid_bare and looks_like_guid(value):
            return value
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot format {type(value).__name__} as an OData literal: {value!r}")
