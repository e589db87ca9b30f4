"""Entity keys in URLs: the parenthesised key segment, and the GUID back out of an ``OData-EntityId``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sandbox.odata.literals import format_literal, looks_like_guid

__all__ = ["format_key", "format_literal", "parse_entity_id"]

_ENTITY_ID_RE = re.compile(r"\(([^()]*)\)\s*$")


def format_key(key: str | int | uuid.UUID | Mapping[str, Any], *, guid_bare: bool = True) -> str:
    """The parenthesised key segment of an entity URL.

    E.g. ``(7eb682f1-...)``, ``(accountnumber='C-1')`` or, an F&O compound key,
    ``(dataAreaId='<company>',CustomerAccount='US-001')``.

    A scalar is a single (primary) key; a mapping is a named or composite key, written in its order.
    Values are formatted by :func:`format_literal`; the result is not percent-encoded.
    """
    if isinstance(key, Mapping):
        if not key:
            raise ValueError("an entity key needs at least one property")
        inner = ",".join(f"{name}={format_literal(value, guid_bare=guid_bare)}" for name, value in key.items())
    else:
        inner = format_literal(key, guid_bare=guid_bare)
    return f"({inner})"


def parse_entity_id(url: str) -> str:
    """The GUID in an ``OData-EntityId`` (``.../accounts(<guid>)`` or ``.../accounts(accountid=<guid>)``).

    Raises ValueError when the URL names the row by an alternate key instead of a GUID.
    """
    match = _ENTITY_ID_RE.search(url.strip())
    if match:
        inner = match.group(1)
        candidate = inner.split("=", 1)[1] if "=" in inner and "," not in inner else inner
        candidate = candidate.strip().strip("'")
        if looks_like_guid(candidate):
            return candidate
    raise ValueError(f"no GUID key in entity id {url!r}")
