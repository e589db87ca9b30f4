"""Service protection bookkeeping (:class:`sandbox.limits.Throttle`) on a clock the test moves: no waiting.

Dataverse evaluates its limits per user over a 300-second sliding window: the number of requests
(``0x80072322``), their combined execution time (``0x80072321``) and concurrent requests (``0x80072326``), each
refusal a 429 with ``Retry-After`` (docs/reference/limits.md section 1; PA ``api-limits``).
"""

from __future__ import annotations

import pytest

from sandbox.errors import TooManyRequests
from sandbox.limits import ServiceLimits, Throttle, refusal
from sandbox.odata.dataverse import codes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, flavour: str = "dataverse", **limits: object) -> Throttle:
    return Throttle(ServiceLimits(**limits), flavour, clock)  # type: ignore[arg-type]


def refused(call: object) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_requests_over_the_window_are_refused_until_the_oldest_leaves_it() -> None:
    clock = Clock()
    t = throttle(clock, window_seconds=10, requests=3)
    for step in range(3):
        t.release(t.admit("ana"))
        clock.now += 1 + step  # admitted at 1000, 1001, 1003
    clock.now = 1004.2
    error = refused(lambda: t.admit("ana"))
    assert error.status == 429 and error.code == codes.RATE_LIMIT_EXCEEDED
    assert error.message == "Number of requests exceeded the limit of 3 over time window of 10 seconds."
    assert error.headers["Retry-After"] == "6"  # the request of 1000 leaves the window at 1010
    clock.now = 1010.0
    t.admit("ana")  # one slot again


def test_a_refused_request_does_not_count_and_callers_are_counted_apart() -> None:
    clock = Clock()
    t = throttle(clock, window_seconds=10, requests=1)
    t.admit("ana")
    for _ in range(5):
        refused(lambda: t.admit("ana"))
    t.admit("ben")  # another user has a window of his own
    clock.now += 10
    t.admit("ana")  # the refusals did not extend ana's window
    assert t.refused[codes.RATE_LIMIT_EXCEEDED] == 5


def test_combined_execution_time_over_the_budget_is_refused_until_enough_leaves_the_window() -> None:
    clock = Clock()
    t = throttle(clock, window_seconds=60, execution_ms=1000)
    first = t.admit("ana")
    clock.now += 0.6
    t.release(first)  # 600 ms, ended at 1000.6
    second = t.admit("ana")
    clock.now += 0.5
    t.release(second)  # 500 ms more, ended at 1001.1: 1,100 ms in the window
    error = refused(lambda: t.admit("ana"))
    assert error.code == codes.EXECUTION_TIME_EXCEEDED
    assert "Combined execution time of incoming requests exceeded limit of 1,000 milliseconds" in error.message
    assert error.headers["Retry-After"] == "60"  # the first leaves at 1060.6: 59.5 s from now, rounded up
    clock.now = 1060.7
    t.admit("ana")


def test_concurrent_requests_over_the_limit_are_refused_until_one_ends() -> None:
    clock = Clock()
    t = throttle(clock, concurrent=2)
    first, _second = t.admit("ana"), t.admit("ana")
    error = refused(lambda: t.admit("ana"))
    assert error.code == codes.CONCURRENT_REQUESTS_EXCEEDED
    assert error.message == "Number of concurrent requests exceeded the limit of 2."
    assert error.headers["Retry-After"] == "1"
    t.admit("ben")
    t.release(first)
    t.admit("ana")
    assert t.in_flight("ana") == 2 and t.in_flight() == 3


def test_an_exempt_caller_is_never_counted_or_refused() -> None:
    clock = Clock()
    t = throttle(clock, requests=1, concurrent=1, exempt=("dualwrite",))
    assert [t.admit("dualwrite") for _ in range(5)] == [None] * 5
    assert t.in_flight() == 0
    t.admit("ana")
    refused(lambda: t.admit("ana"))


def test_fno_refusals_carry_no_code_and_the_published_texts() -> None:
    """F&O's error body has no code; its request message is the page's own, with its typo (limits.md section 2);
    the service-wide ceiling answers with resource-based throttling's message."""
    limits = ServiceLimits(requests=6000, total_concurrent=1)
    assert refusal("fno", "requests", limits) == (
        "",
        "Number of requests exeeded the limit of 6000 over the time window of 300 seconds.",
    )
    clock = Clock()
    t = throttle(clock, "fno", total_concurrent=1)
    t.admit("ana")
    error = refused(lambda: t.admit("ben"))
    assert error.code == "" and "high resource utilization" in error.message
