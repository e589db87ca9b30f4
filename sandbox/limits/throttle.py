"""Service protection as the real services apply it: sliding windows of requests and execution time per caller,
concurrent requests per caller (and across callers), each refusal a 429 with ``Retry-After``.

:class:`Throttle` is the bookkeeping, with an injectable clock so tests need no waiting; :func:`install_limits`
puts it on a service app as a request hook. The hook sits right after authentication (it needs the caller) and
before the journal, so a throttled request is journaled and logged like any other answer.

The counters live in the process. That is what the real services do too: Dataverse evaluates its limits "per
user, per web server" (``docs/reference/limits.md`` section 1), so each worker process of ``--workers N`` is one
web server with counters of its own, and N workers allow N times the requests of one, as N web servers do.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask

from sandbox.errors import SandboxError, TooManyRequests
from sandbox.limits.profile import ServiceLimits
from sandbox.odata.dataverse import codes

Clock = Callable[[], float]

#: paths never throttled: the control plane, the data browser and its static files (the real services have none)
EXEMPT_PREFIXES = ("/_sandbox", "/_browse", "/_static")
#: where the hook leaves the admitted request's ticket (the teardown releases it)
_G_TICKET = "sandbox_limits_ticket"

#: what each kind of refusal says, per dialect (docs/reference/limits.md sections 1 and 2)
DATAVERSE = "dataverse"
FNO = "fno"


@dataclass
class _Caller:
    """One caller's recent requests (start times) and finished requests' (end time, milliseconds)."""

    starts: collections.deque[float] = field(default_factory=collections.deque)
    executions: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    execution_total: float = 0.0
    in_flight: int = 0


@dataclass(frozen=True)
class Ticket:
    """An admitted request: who, and when it started (``release`` it when it ends)."""

    caller: str
    started: float


class Throttle:
    """The service-protection state of one service in one process (thread-safe)."""

    def __init__(self, limits: ServiceLimits, flavour: str = DATAVERSE, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.flavour = flavour
        self.clock = clock
        self._lock = threading.Lock()
        self._callers: dict[str, _Caller] = {}
        self._in_flight = 0
        #: refusals so far, by error code (what a test or the journal can tell them apart by)
        self.refused: collections.Counter[str] = collections.Counter()

    def admit(self, caller: str) -> Ticket | None:
        """Count a request of ``caller`` that starts now, or raise :class:`TooManyRequests` saying which limit
        it would exceed and when to retry. A refused request counts toward nothing; an exempt caller is not
        counted at all (None)."""
        limits = self.limits
        if caller in limits.exempt:
            return None
        with self._lock:
            now = self.clock()
            state = self._callers.setdefault(caller, _Caller())
            self._expire(state, now)
            if limits.total_concurrent is not None and self._in_flight >= limits.total_concurrent:
                raise self._refuse("resource", limits.concurrent_retry_after)
            if limits.concurrent is not None and state.in_flight >= limits.concurrent:
                raise self._refuse("concurrent", limits.concurrent_retry_after)
            if limits.requests is not None and len(state.starts) >= limits.requests:
                # the oldest request leaves the window first; then one more fits
                wait = state.starts[len(state.starts) - limits.requests] + limits.window_seconds - now
                raise self._refuse("requests", wait)
            if limits.execution_ms is not None and state.execution_total >= limits.execution_ms:
                raise self._refuse("execution", self._execution_wait(state, now))
            state.starts.append(now)
            state.in_flight += 1
            self._in_flight += 1
            return Ticket(caller, now)

    def release(self, ticket: Ticket) -> None:
        """The request of ``ticket`` ended: it is no longer concurrent, and its time counts toward the budget."""
        with self._lock:
            now = self.clock()
            state = self._callers.setdefault(ticket.caller, _Caller())
            state.in_flight = max(0, state.in_flight - 1)
            self._in_flight = max(0, self._in_flight - 1)
            if self.limits.execution_ms is not None:
                elapsed = max(0.0, (now - ticket.started) * 1000.0)
                state.executions.append((now, elapsed))
                state.execution_total += elapsed

    def in_flight(self, caller: str | None = None) -> int:
        """Requests admitted and not yet released (of ``caller``, or of everyone)."""
        with self._lock:
            if caller is None:
                return self._in_flight
            state = self._callers.get(caller)
            return 0 if state is None else state.in_flight

    # ---- internals -------------------------------------------------------------------------------------
    def _expire(self, state: _Caller, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while state.starts and state.starts[0] <= horizon:
            state.starts.popleft()
        while state.executions and state.executions[0][0] <= horizon:
            _, elapsed = state.executions.popleft()
            state.execution_total -= elapsed
        if not state.executions:
            state.execution_total = 0.0  # no float drift left behind

    def _execution_wait(self, state: _Caller, now: float) -> float:
        """Seconds until enough finished requests leave the window to bring the total under the budget."""
        assert self.limits.execution_ms is not None
        total = state.execution_total
        for ended, elapsed in state.executions:
            total -= elapsed
            if total < self.limits.execution_ms:
                return ended + self.limits.window_seconds - now
        return self.limits.window_seconds

    def _refuse(self, kind: str, wait: float) -> TooManyRequests:
        code, message = refusal(self.flavour, kind, self.limits)
        self.refused[code or kind] += 1
        retry_after = max(1, math.ceil(wait))
        return TooManyRequests(message, code, headers={"Retry-After": str(retry_after)})


def refusal(flavour: str, kind: str, limits: ServiceLimits) -> tuple[str, str]:
    """The error code and message the real service answers a refusal of ``kind`` with (requests, execution,
    concurrent, resource); the limits' own figures in the text, as the services print theirs."""
    window = f"{limits.window_seconds:g}"
    if flavour == DATAVERSE:
        # Dataverse (docs/reference/limits.md section 1): the three codes and messages of the api-limits page
        if kind == "requests":
            return codes.RATE_LIMIT_EXCEEDED, (
                f"Number of requests exceeded the limit of {limits.requests} over time window of {window} seconds."
            )
        if kind == "execution":
            return codes.EXECUTION_TIME_EXCEEDED, (
                f"Combined execution time of incoming requests exceeded limit of {limits.execution_ms:,} "
                f"milliseconds over time window of {window} seconds. Decrease number of concurrent requests or "
                "reduce the duration of requests and try again later."
            )
        if kind == "concurrent":
            return codes.CONCURRENT_REQUESTS_EXCEEDED, (
                f"Number of concurrent requests exceeded the limit of {limits.concurrent}."
            )
        return codes.UNEXPECTED, "This request could not be processed at this time due to high resource utilization."
    # F&O (section 2): its error body has no code; the user-based messages as published (the request message keeps
    # the page's "exeeded"), the resource-based one for the service-wide ceiling
    if kind == "requests":
        return (
            "",
            f"Number of requests exeeded the limit of {limits.requests} over the time window of {window} seconds.",
        )
    if kind == "execution":
        return "", (
            f"Combined execution time of incoming requests exceeded the limit of {limits.execution_ms:,} "
            f"milliseconds over the time window of {window} seconds."
        )
    if kind == "concurrent":
        return "", f"Number of concurrent requests exceeded the limit of {limits.concurrent}."
    return "", "This request could not be processed at this time due to system experiencing high resource utilization."


def exempt(path: str) -> bool:
    """Whether ``path`` is outside the service's API (never throttled)."""
    return path == "/" or any(path == p or path.startswith(p + "/") for p in EXEMPT_PREFIXES)


def install_limits(
    app: flask.Flask,
    throttle: Throttle,
    identity_of: Callable[[Any], str],
    render_error: Callable[[SandboxError], flask.Response],
) -> None:
    """Admit or refuse every API request of ``app`` through ``throttle`` (the caller from ``identity_of``).

    Install it right after authentication and before the journal: a refusal answers from ``before_request``,
    so the hooks installed after it do not run for that request (the journal's ``after_request`` still does).
    """
    app.extensions["sandbox_limits"] = throttle

    def admit() -> flask.Response | None:
        if exempt(flask.request.path):
            return None
        try:
            ticket = throttle.admit(identity_of(flask.request))
        except SandboxError as error:
            return render_error(error)
        if ticket is not None:
            setattr(flask.g, _G_TICKET, ticket)
        return None

    def release(_error: BaseException | None) -> None:
        ticket = flask.g.pop(_G_TICKET, None)
        if ticket is not None:
            throttle.release(ticket)

    app.before_request(admit)
    app.teardown_request(release)


def throttle_of(app: flask.Flask) -> Throttle | None:
    """The throttle :func:`install_limits` put on ``app`` (None: no limits)."""
    throttle = app.extensions.get("sandbox_limits")
    return throttle if isinstance(throttle, Throttle) else None
