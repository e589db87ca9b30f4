"""Response and URL helpers every part of the OData layer (the service, dialects, their endpoints) shares."""

from __future__ import annotations

import urllib.parse
from typing import Any

from flask import Response

from sandbox import jsonio

#: the Content-Type both services answer JSON with
JSON_CONTENT_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as an OData JSON response."""
    return Response(jsonio.dumps_bytes(body), status=status, content_type=JSON_CONTENT_TYPE)


def no_content() -> Response:
    """204 No Content."""
    return Response(status=204)


def query_string(args: dict[str, str]) -> str:
    """Encode query options the way OData services print them (``$skip=2``, not ``%24skip=2``)."""
    value_safe = "$'(),:*/@-"
    return "&".join(
        urllib.parse.quote(k, safe="$@-") + "=" + urllib.parse.quote(v, safe=value_safe) for k, v in args.items()
    )
