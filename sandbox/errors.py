"""The error hierarchy every service raises. Each class carries its HTTP status; a dialect renders the body.

Raise sites state the problem once (message, and the Dataverse HRESULT ``code`` where one exists);
the service's dialect turns it into the real wire shape (Dataverse ``{"error":{"code","message"}}``,
F&O ``{"error":{"code":"","message":...,"innererror":{...}}}``).
"""

from __future__ import annotations

from typing import Any

from sandbox.odata.dataverse import codes


class SandboxError(Exception):
    """Base of every error a service answers with. Never escapes as a 500 traceback."""

    status: int = 500
    default_code: str = codes.UNEXPECTED  # Dataverse "unexpected error"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(SandboxError):
    status = 400
    default_code = codes.INVALID_ARGUMENT


class Unauthorized(SandboxError):
    status = 401
    default_code = codes.PRIVILEGE_DENIED


class NotFound(SandboxError):
    status = 404
    default_code = codes.OBJECT_DOES_NOT_EXIST


class MethodNotAllowed(SandboxError):
    status = 405
    default_code = codes.QUERY_SYNTAX


class Conflict(SandboxError):
    status = 409
    default_code = codes.DUPLICATE_RECORD


class PreconditionFailed(SandboxError):
    status = 412
    default_code = codes.CONCURRENCY_VERSION_MISMATCH


class PayloadTooLarge(SandboxError):
    status = 413
    default_code = codes.REQUEST_TOO_LARGE


class TooManyRequests(SandboxError):
    status = 429
    default_code = codes.RATE_LIMIT_EXCEEDED


class InternalError(SandboxError):
    status = 500


class NotImplementedYet(SandboxError):
    status = 501
    default_code = codes.NOT_SUPPORTED


class ServiceUnavailable(SandboxError):
    status = 503
    default_code = codes.UNEXPECTED


def error_for_status(status: int, message: str, code: str | None = None, **kwargs: Any) -> SandboxError:
    """The error class for an arbitrary status (used by fault injection)."""
    for cls in (
        BadRequest,
        Unauthorized,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        TooManyRequests,
        InternalError,
        NotImplementedYet,
        ServiceUnavailable,
    ):
        if cls.status == status:
            return cls(message, code, **kwargs)
    error = SandboxError(message, code, **kwargs)
    error.status = status
    return error
