"""F&O wire conventions that are data or pure functions: the namespace, the error body with the Infolog
text in ``innererror``, opaque base64 etags (``docs/reference/fno-odata.md``)."""

from __future__ import annotations

import base64
from typing import Any

from sandbox.errors import SandboxError
from sandbox.odata.fno.codes import NO_CODE, SYSTEM_EXCEPTION, WRITE_EXCEPTION
from sandbox.odata.model import ROWID, ROWVERSION

#: the namespace of every data entity, enum and action
NAMESPACE = "Microsoft.Dynamics.DataEntities"
#: the service root
ROOT = "/data/"


def error_body(error: SandboxError) -> dict[str, Any]:
    """``{"error": {"code": "", "message", "innererror": {"message", "type", "stacktrace"}}}``; 404 and
    429 carry no ``innererror``."""
    inner = error.detail or error.message
    body: dict[str, Any] = {"code": NO_CODE, "message": error.message}
    if error.status >= 400 and error.status != 404 and error.status != 429:
        body["innererror"] = {
            "message": inner,
            "type": error.extra.get("type", WRITE_EXCEPTION if error.status == 400 else SYSTEM_EXCEPTION),
            "stacktrace": "",
        }
    return {"error": body}


def etag(row: dict[str, Any]) -> str:
    """An opaque weak etag: the row version and id, base64-encoded."""
    raw = f"'{row[ROWVERSION]},{row[ROWID]}'".encode()
    return f'W/"{base64.b64encode(raw).decode()}"'
