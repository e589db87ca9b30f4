"""Wire conventions shared by every client: the identity header, URL percent-encoding, JSON bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from sandbox import jsonio

__all__ = [
    "IDENTITY_HEADER",
    "PATH_SAFE",
    "QUERY_SAFE",
    "dump_json",
    "encode_query",
    "join_csv",
    "json_or_none",
    "with_query",
]

#: Header naming the caller to the sandbox services: echo prevention keys on it, and the bridge sends
#: :data:`~sandbox.wellknown.INTEGRATION_IDENTITY` in it.
IDENTITY_HEADER = "X-Sandbox-Identity"

# Characters left readable in URL paths and query values: OData's own syntax (quotes, parentheses,
# commas, '$' options, '@' aliases, '=' in nested options, '/' traversal, '*' F&O wildcards).
# Everything else, notably space, '&', '#', '+', '%', ';' and '?', is percent-encoded so a literal
# can never cut the URL ('/' stays encoded inside key segments, where it would split the path).
PATH_SAFE = "()'=,:@!$*-._~"
QUERY_SAFE = "()',:@!$*/=-._~"


def encode_query(params: Mapping[str, Any]) -> str:
    """``name=value&...`` with OData-friendly percent-encoding (spaces as %20, never '+')."""
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        parts.append(f"{quote(name, safe='$@-._~')}={quote(_param_text(value), safe=QUERY_SAFE)}")
    return "&".join(parts)


def with_query(url: str, params: Mapping[str, Any] | None) -> str:
    """``url`` with ``params`` (encoded by :func:`encode_query`) appended to any query it already has."""
    query = encode_query(params or {})
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + query


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def join_csv(value: str | Sequence[str] | None) -> str | None:
    """A list option (``$select``, ``$orderby``, ...) as OData's comma-separated text; a string as given."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def dump_json(body: Any) -> bytes:
    """A request body as OData JSON: decimals as exact numbers, datetimes as ISO 8601 with UTC as ``Z``."""
    return jsonio.dumps_bytes(body, jsonio.json_default, decimal_numbers=True)


def json_or_none(response: httpx.Response) -> Any:
    """The parsed JSON answer, or None for a 204 or an empty body."""
    if response.status_code == 204 or not response.content.strip():
        return None
    return jsonio.loads(response.content)
