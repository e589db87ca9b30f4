"""``$batch`` operations and answers as the clients see them (the multipart wire format is
:mod:`sandbox.odata.batch`, shared with the server)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.clients.errors import ServiceError
from sandbox.clients.keys import parse_entity_id
from sandbox.odata import batch as wire

__all__ = ["BatchOp", "BatchResult", "result_from"]


@dataclass
class BatchOp:
    """One request inside a ``$batch``.

    ``url`` is relative to the service root (``"accounts"``, ``"accounts(<guid>)"``), absolute, or a
    Content-ID reference (``"$1"``, ``"$1/lastname"``). ``content_id`` defaults to the operation's
    1-based position in the flattened operation list; it is sent for change-set members (and for any
    operation that sets it explicitly), so ``"$n"`` in a later URL or ``@odata.bind`` refers to the n-th
    operation passed to :meth:`ODataClient.batch`.
    """

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    content_id: str | None = None
    #: Query options appended to ``url``, encoded like :meth:`ODataClient.request` params.
    params: Mapping[str, Any] | None = None

    @classmethod
    def get(cls, url: str, **kwargs: Any) -> BatchOp:
        return cls("GET", url, **kwargs)

    @classmethod
    def post(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("POST", url, body, **kwargs)

    @classmethod
    def patch(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("PATCH", url, body, **kwargs)

    @classmethod
    def put(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("PUT", url, body, **kwargs)

    @classmethod
    def delete(cls, url: str, **kwargs: Any) -> BatchOp:
        return cls("DELETE", url, **kwargs)


@dataclass
class BatchResult:
    """One response part of a ``$batch`` answer, in the order the service returned them.

    A failed change set comes back as a single error part, and without ``continue_on_error`` the
    service stops at the first failure, so there may be fewer results than operations; correlate by
    ``content_id`` (echoed for change-set members).
    """

    status: int
    headers: httpx.Headers
    json: Any
    content_id: str | None = None
    text: str = ""
    reason: str = ""
    request: httpx.Request | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True for a 1xx-3xx part."""
        return self.status < 400

    @property
    def entity_id(self) -> str | None:
        """The GUID from ``OData-EntityId`` (or ``Location``) when the part created/updated a row by GUID."""
        url = self.headers.get("OData-EntityId") or self.headers.get("Location")
        if not url:
            return None
        try:
            return parse_entity_id(url)
        except ValueError:
            return None

    def error(self) -> ServiceError | None:
        """The part's failure as a :class:`ServiceError` (same parsing as a direct call), or None."""
        if self.ok:
            return None
        response = httpx.Response(
            self.status, headers=self.headers, content=self.text.encode("utf-8"), request=self.request
        )
        return ServiceError.from_response(response)

    def raise_for_status(self) -> BatchResult:
        """Raise the part's :class:`ServiceError` when it failed; return self otherwise."""
        error = self.error()
        if error is not None:
            raise error
        return self


def result_from(response: wire.BatchResponse, request: httpx.Request | None) -> BatchResult:
    text = response.body.decode("utf-8", errors="replace")
    parsed: Any = None
    if text.strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return BatchResult(
        status=response.status,
        headers=httpx.Headers(response.headers),
        json=parsed,
        content_id=response.content_id,
        text=text,
        reason=response.reason,
        request=request,
    )
