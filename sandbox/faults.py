"""Fault injection: make chosen requests fail, slow down, or lose their connection.

A fault is added over the control plane (``POST /_sandbox/faults``) as JSON::

    {"method": "POST", "path": "/api/data/v9.2/accounts", "status": 429, "retry_after": 2,
     "probability": 0.5, "times": 3, "latency_ms": 100, "drop": false, "when": "before", "message": "..."}

(``method``/``path``/``identity`` may also be given nested as ``{"match": {"method": ..., "path": ...}}``.)

- ``path`` is a regular expression applied with :func:`re.search` to the request path; ``method`` is exact,
  or a list of methods (``["POST", "PATCH", "DELETE"]``: any write); ``identity`` matches the caller named
  in ``X-Sandbox-Identity`` (:data:`sandbox.wellknown.INTEGRATION_IDENTITY`: only the bridge's requests), so
  a test can fail "the other side's next write" without knowing whether it arrives as a single request or
  inside a ``$batch``.
- The first fault (in the order added) whose method and path match and whose probability roll succeeds
  fires; ``times`` counts down and the fault is removed when it reaches zero.
- ``latency_ms`` sleeps before anything else. A fault with ``status < 400`` and no ``drop`` only delays.
- ``status >= 400`` answers with the service's own error body; 429 always carries ``Retry-After``
  (``retry_after``, default 5 seconds); any other status carries it when ``retry_after`` is set.
- ``drop`` emulates a dropped connection. WSGI gives no portable way to close a socket, so the response
  sends its status line and headers (announcing a body) and then the body iterator raises
  :class:`DroppedConnection`. A real server (waitress, werkzeug) then closes the connection mid-response,
  which clients see as a protocol/connection error (httpx: ``RemoteProtocolError``). In process, over
  ``httpx.WSGITransport``, the same :class:`DroppedConnection` (a subclass of ``httpx.RemoteProtocolError``)
  propagates out of the client call, so callers handle both cases with one ``except httpx.TransportError``.
- ``when`` is ``"before"`` (default: the request is never handled) or ``"after"`` (the request is handled
  (its writes stay), then its response is replaced by the error or the drop: the classic "the write happened
  but the caller never heard" case that retries must survive).

Control-plane paths (``/_sandbox/...``) are never faulted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import flask
import httpx

from sandbox.auth.settings import resolved_identity
from sandbox.errors import BadRequest, SandboxError, error_for_status

DEFAULT_STATUS = 503
DEFAULT_RETRY_AFTER_429 = 5
MAX_LATENCY_MS = 60_000
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
WHEN = ("before", "after")

# Where the fault hook leaves the fault that fired for this request (the journal reads it).
G_FAULT = "sandbox_fault"

_FIELDS = {
    "method",
    "path",
    "identity",
    "match",
    "status",
    "probability",
    "latency_ms",
    "retry_after",
    "times",
    "drop",
    "when",
    "message",
}


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised from a response body to make the WSGI server abandon the connection mid-response."""

    def __init__(self, message: str = "Connection dropped by an injected fault.") -> None:
        super().__init__(message)


@dataclass
class Fault:
    """One injected fault. ``times=None`` fires without limit; ``fired`` counts how often it has fired."""

    id: str
    method: str | tuple[str, ...] | None = None
    path: str | None = None
    identity: str | None = None
    status: int = DEFAULT_STATUS
    probability: float = 1.0
    latency_ms: int = 0
    retry_after: int | None = None
    times: int | None = None
    drop: bool = False
    when: str = "before"
    message: str | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path) if self.path is not None else None

    def applies_to(self, method: str, path: str, identity: str | None = None) -> bool:
        """Whether method, path and caller match (the probability roll is separate)."""
        if self.method is not None:
            wanted = (self.method,) if isinstance(self.method, str) else self.method
            if method.upper() not in wanted:
                return False
        if self.identity is not None and self.identity != identity:
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    @property
    def is_error(self) -> bool:
        """Whether the fault replaces the response (error status or drop), not just delays it."""
        return self.drop or self.status >= 400

    def default_message(self) -> str:
        if self.status == 429:
            return f"Rate limit is exceeded. Try again in {self.effective_retry_after()} seconds."
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        return f"Injected fault: {self.status} {phrase}."

    def effective_retry_after(self) -> int | None:
        """``retry_after``, or the 429 default when unset."""
        if self.retry_after is None and self.status == 429:
            return DEFAULT_RETRY_AFTER_429
        return self.retry_after

    def error(self) -> SandboxError:
        """The error this fault answers with."""
        headers = {}
        retry_after = self.effective_retry_after()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return error_for_status(self.status, self.message or self.default_message(), headers=headers)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shown by ``GET /_sandbox/faults``."""
        return {
            "id": self.id,
            "match": {
                "method": list(self.method) if isinstance(self.method, tuple) else self.method,
                "path": self.path,
                "identity": self.identity,
            },
            "status": self.status,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "retry_after": self.retry_after,
            "times": self.times,
            "drop": self.drop,
            "when": self.when,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "fired": self.fired,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_fault(spec: Any) -> Fault:
    """Validate a fault spec (see the module docstring); raises :class:`BadRequest` saying what is wrong."""
    if not isinstance(spec, dict):
        raise BadRequest("A fault must be a JSON object.")
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise BadRequest(f"Unknown fault field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(_FIELDS))}.")
    values = dict(spec)
    match = values.pop("match", None)
    if match is not None:
        if not isinstance(match, dict) or set(match) - {"method", "path", "identity"}:
            raise BadRequest("Fault 'match' must be an object with optional 'method', 'path' and 'identity'.")
        for name in ("method", "path", "identity"):
            if name in match:
                if values.get(name) is not None:
                    raise BadRequest(f"Fault '{name}' is given both at top level and in 'match'.")
                values[name] = match[name]

    method = values.get("method")
    if method is not None:
        methods = [method] if isinstance(method, str) else method
        if (
            not isinstance(methods, list)
            or not methods
            or not all(isinstance(m, str) and m.upper() in METHODS for m in methods)
        ):
            raise BadRequest(
                f"Fault 'method' must be one of {', '.join(sorted(METHODS))} or a non-empty list "
                f"of them, got {method!r}."
            )
        method = method.upper() if isinstance(method, str) else tuple(m.upper() for m in methods)
    identity = values.get("identity")
    if identity is not None and (not isinstance(identity, str) or not identity):
        raise BadRequest(f"Fault 'identity' must be a non-empty string, got {identity!r}.")
    path = values.get("path")
    if path is not None:
        if not isinstance(path, str):
            raise BadRequest("Fault 'path' must be a regular expression string.")
        try:
            re.compile(path)
        except re.error as exc:
            raise BadRequest(f"Fault 'path' is not a valid regular expression: {exc}.") from None
    status = values.get("status", DEFAULT_STATUS)
    if not _is_int(status) or not 100 <= status <= 599:
        raise BadRequest(f"Fault 'status' must be an integer from 100 to 599, got {status!r}.")
    probability = values.get("probability", 1.0)
    if not isinstance(probability, (int, float)) or isinstance(probability, bool) or not 0.0 <= probability <= 1.0:
        raise BadRequest(f"Fault 'probability' must be a number from 0 to 1, got {probability!r}.")
    latency_ms = values.get("latency_ms", 0)
    if not _is_int(latency_ms) or not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise BadRequest(f"Fault 'latency_ms' must be an integer from 0 to {MAX_LATENCY_MS}, got {latency_ms!r}.")
    retry_after = values.get("retry_after")
    if retry_after is not None and (not _is_int(retry_after) or retry_after < 0):
        raise BadRequest(f"Fault 'retry_after' must be a non-negative integer (seconds), got {retry_after!r}.")
    times = values.get("times")
    if times is not None and (not _is_int(times) or times < 1):
        raise BadRequest(f"Fault 'times' must be a positive integer or null (unlimited), got {times!r}.")
    drop = values.get("drop", False)
    if not isinstance(drop, bool):
        raise BadRequest(f"Fault 'drop' must be true or false, got {drop!r}.")
    when = values.get("when", "before")
    if when not in WHEN:
        raise BadRequest(f"Fault 'when' must be 'before' or 'after', got {when!r}.")
    message = values.get("message")
    if message is not None and not isinstance(message, str):
        raise BadRequest("Fault 'message' must be a string.")
    return Fault(
        id=uuid.uuid4().hex[:8],
        method=method,
        path=path,
        identity=identity,
        status=status,
        probability=float(probability),
        latency_ms=latency_ms,
        retry_after=retry_after,
        times=times,
        drop=drop,
        when=when,
        message=message,
    )


class FaultRegistry:
    """The active faults of one service. Thread-safe; probability rolls use an owned, seedable RNG."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._random = random.Random(seed)

    def seed(self, seed: int | None) -> None:
        """Re-seed the probability RNG (deterministic fault sequences in tests and scenarios)."""
        with self._lock:
            self._random.seed(seed)

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate ``spec`` and activate it; returns a copy of the new fault (with its ``id``)."""
        fault = parse_fault(spec)
        with self._lock:
            self._faults.append(fault)
            return dataclasses.replace(fault)

    def list(self) -> list[Fault]:
        """Copies of the active faults, in the order they are tried."""
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def get(self, fault_id: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    return dataclasses.replace(fault)
        return None

    def remove(self, fault_id: str) -> bool:
        """Deactivate one fault; False when no fault has that id."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.id == fault_id:
                    del self._faults[index]
                    return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def match(self, method: str, path: str, identity: str | None = None) -> Fault | None:
        """The fault that fires for this request, or None. Counts it as fired and consumes one of ``times``."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if not fault.applies_to(method, path, identity):
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[index]
                return dataclasses.replace(fault)
        return None


def _dropping_body(first: bytes) -> Iterator[bytes]:
    # A first chunk makes the server commit the status line and headers; raising afterwards leaves it no
    # choice but to abort the connection (before any output, servers would answer a tidy 500 instead).
    yield first
    raise DroppedConnection()


def drop_response(status: int = 200) -> flask.Response:
    """A response that dies after its headers: the WSGI approximation of a dropped connection."""
    response = flask.Response(_dropping_body(b"{"), status=status, mimetype="application/json")
    response.headers["Content-Length"] = "1024"
    return response


def _fault_response(fault: Fault, render_error: Callable[[SandboxError], flask.Response]) -> flask.Response:
    if fault.drop:
        return drop_response(200 if fault.status < 400 else fault.status)
    error = fault.error()
    if error.status == 405:
        # an injected 405 is still a 405: it names what the route answers to (RFC 9110, section 15.5.6)
        adapter = flask.current_app.url_map.bind_to_environ(flask.request.environ)
        error.headers.setdefault("Allow", ", ".join(adapter.allowed_methods()))
    response = render_error(error)
    for name, value in error.headers.items():
        response.headers.setdefault(name, value)
    return response


def install_fault_hook(
    app: flask.Flask,
    registry: FaultRegistry,
    render_error: Callable[[SandboxError], flask.Response],
    exclude_prefix: str = "/_sandbox",
) -> None:
    """Fire matching faults on every request outside ``exclude_prefix``.

    Install the request journal first if faulted requests should be journaled (a ``before_request``
    that answers stops the later ones). The fired fault is left in ``flask.g.sandbox_fault``.
    """

    def fire_faults() -> flask.Response | None:
        path = flask.request.path
        if exclude_prefix and (path == exclude_prefix or path.startswith(exclude_prefix.rstrip("/") + "/")):
            return None
        # the caller as authentication resolved it; the header only counts with auth off
        caller = resolved_identity(flask.request) or flask.request.headers.get("X-Sandbox-Identity")
        fault = registry.match(flask.request.method, path, caller)
        if fault is None:
            return None
        setattr(flask.g, G_FAULT, fault)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if not fault.is_error:
            return None
        if fault.when == "after":
            return None  # replace_response() answers once the handler has run
        return _fault_response(fault, render_error)

    def replace_response(response: flask.Response) -> flask.Response:
        fault: Fault | None = flask.g.get(G_FAULT)
        if fault is None or fault.when != "after" or not fault.is_error:
            return response
        # The handler ran (its transaction is committed or will commit regardless of the response).
        response.close()
        return _fault_response(fault, render_error)

    app.before_request(fire_faults)
    app.after_request(replace_response)
