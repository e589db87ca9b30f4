"""F&O wire conventions that are data or pure functions: the namespace, the error body with the Infolog
text in ``innererror``, opaque base64 etags (``docs/reference/fno-odata.md``)."""

from __future__ import annotations

import base64
from typing import Any

from sandbox.errors import SandboxError
from sandbox.odata.fno.codes import NO_CODE, ODATA_EXCEPTION, SYSTEM_EXCEPTION, WRITE_EXCEPTION
from sandbox.odata.model import ROWID, ROWVERSION

#: the namespace of every data entity, enum and action
NAMESPACE = "Microsoft.Dynamics.DataEntities"
#: the service root
ROOT = "/data/"


def error_body(error: SandboxError) -> dict[str, Any]:
    """``{"error": {"code": "", "message", "innererror": {"message", "type", "stacktrace"}}}``; 404 and
    429 carry no ``innererror``.

    The ``type`` is the one the error names, else: a 400 the shared OData layer raised (it carries a Dataverse
    code, which F&O never shows: a query, key or payload OData could not read) is OData's own exception, any
    other 400 a refused write, anything else a system exception.
    """
    inner = error.detail or error.message
    body: dict[str, Any] = {"code": NO_CODE, "message": error.message}
    if error.status >= 400 and error.status != 404 and error.status != 429:
        if error.status != 400:
            default_type = SYSTEM_EXCEPTION
        else:
            default_type = ODATA_EXCEPTION if error.code not in (NO_CODE, None) else WRITE_EXCEPTION
        body["innererror"] = {"message": inner, "type": error.extra.get("type", default_type), "stacktrace": ""}
    return {"error": body}


def etag(row: dict[str, Any]) -> str:
    """An opaque weak etag: the row version and id, base64-encoded."""
    raw = f"'{row[ROWVERSION]},{row[ROWID]}'".encode()
    return f'W/"{base64.b64encode(raw).decode()}"'
