"""Helpers for tests of the sandbox and of users' own integrations: polling and error-shape checks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll_until(
    probe: Callable[[], T | None], *, timeout: float = 5.0, interval: float = 0.02, message: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    """No process with this id exists any more (reaped: a zombie or an orphan still counts as there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _json(response: Any) -> Any:
    getter = getattr(response, "get_json", None)
    return getter(silent=True) if getter else response.json()


def _status(response: Any) -> int:
    return response.status_code


def assert_dataverse_error(response: Any, status: int, code: str | None = None, contains: str | None = None) -> dict:
    """The response is a Dataverse error: ``{"error": {"code": "0x...", "message": "..."}}`` with ``status``."""
    assert _status(response) == status, (
        f"expected {status}, got {_status(response)}: {response.data if hasattr(response, 'data') else response.text}"
    )
    body = _json(response)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str) and error["message"], body
    assert "innererror" not in error, body
    if code is not None:
        assert error["code"] == code, body
    if contains is not None:
        assert contains.lower() in error["message"].lower(), body
    return error


def assert_fno_error(response: Any, status: int, contains: str | None = None) -> dict:
    """The response is an F&O error: ``{"error": {"code": "", "message": ..., "innererror": {...}}}``."""
    assert _status(response) == status, (
        f"expected {status}, got {_status(response)}: {response.data if hasattr(response, 'data') else response.text}"
    )
    body = _json(response)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error.get("code") == "" and isinstance(error.get("message"), str), body
    if contains is not None:
        text = error["message"] + " " + str(error.get("innererror", {}).get("message", ""))
        assert contains.lower() in text.lower(), body
    return error
