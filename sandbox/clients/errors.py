"""The one error the clients raise: a service answered with a status >= 400 (either service's error body)."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["ServiceError", "raise_for_status"]


class ServiceError(Exception):
    """A service answered with a status >= 400.

    ``message`` is the useful text of the service's error body: Dataverse ``error.message``; F&O
    ``error.innererror.message`` (the Infolog) when present, else ``error.message``. ``code`` is the
    Dataverse HRESULT-style code (``"0x80040217"``), often ``""`` for F&O. ``retry_after`` is the
    ``Retry-After`` header in seconds (429/503), ``None`` when absent.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: Any,
        response: httpx.Response,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.response = response
        self.retry_after = retry_after
        super().__init__(self._describe())

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServiceError:
        """Build the error from a failed response, understanding both services' error bodies."""
        body: Any
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = response.text
        code, message = _error_code_and_message(body)
        if not message:
            message = (body.strip()[:500] if isinstance(body, str) else "") or response.reason_phrase
        return cls(
            response.status_code, code, message, body, response, _parse_retry_after(response.headers.get("Retry-After"))
        )

    @property
    def transient(self) -> bool:
        """True for answers worth retrying later (throttling, unavailable, gateway trouble)."""
        return self.status in (408, 429, 502, 503, 504)

    def _describe(self) -> str:
        where = ""
        try:
            request = self.response.request
            where = f" ({request.method} {request.url})"
        except RuntimeError:  # a synthesized response (batch part) may have no request
            pass
        code = f" [{self.code}]" if self.code else ""
        return f"{self.status}{code}: {self.message}{where}"


def _error_code_and_message(body: Any) -> tuple[str, str]:
    if not isinstance(body, Mapping):
        return "", ""
    error = body.get("error")
    if not isinstance(error, Mapping):
        # Non-OData shapes (control plane, proxies): {"message": ...} or {"error": "text"}.
        text = error if isinstance(error, str) else body.get("message")
        return str(body.get("code") or ""), str(text or "")
    code = error.get("code")
    message = str(error.get("message") or "")
    inner = error.get("innererror")
    if isinstance(inner, Mapping) and inner.get("message"):
        message = str(inner["message"])  # F&O: the Infolog is in here, the outer text is generic
    return ("" if code is None else str(code)), message


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 allows both)."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - time.time())


def raise_for_status(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        response.read()
        raise ServiceError.from_response(response)
    return response
