"""Serving on loopback ports: the thread pool's size, and waitress's task-queue warning at the sandbox's levels."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sandbox.logs import NOTICE
from sandbox.server import QUEUE_NOTICE_PER_THREAD, WAITRESS_THREADS, ServerGroup, quiet_waitress_queue, settle_heap


def _queue_lines(caplog: pytest.LogCaptureFixture, depth: int) -> list[logging.LogRecord]:
    quiet_waitress_queue()
    quiet_waitress_queue()  # twice: still one filter, one line
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("waitress.queue").warning("Task queue depth is %d", depth)
    return [r for r in caplog.records if r.name in ("waitress.queue", "sandbox.server")]


def test_a_full_task_queue_is_an_info_line_of_the_sandbox_not_a_waitress_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    [line] = _queue_lines(caplog, 3)
    assert line.name == "sandbox.server" and line.levelno == logging.INFO
    assert line.getMessage() == f"all {WAITRESS_THREADS} server threads are busy; 3 requests wait for one"


def test_a_queue_several_times_the_pool_is_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    [line] = _queue_lines(caplog, QUEUE_NOTICE_PER_THREAD * WAITRESS_THREADS + 1)
    assert line.name == "sandbox.server" and line.levelno == NOTICE


def test_waitress_other_queue_lines_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    quiet_waitress_queue()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("waitress.queue").warning("something else: %s", "x")
    assert [(r.name, r.levelno) for r in caplog.records] == [("waitress.queue", logging.WARNING)]


@pytest.mark.live
def test_more_requests_than_the_old_pool_of_eight_are_served_at_once() -> None:
    """Twelve requests that each wait for all twelve to arrive: they all get a thread at once (with a pool of 8
    the twelfth would wait for a thread none frees, and the barrier would break)."""
    parties = 12
    assert WAITRESS_THREADS >= parties
    barrier = threading.Barrier(parties, timeout=60)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            barrier.wait()
            status = "200 OK"
        except threading.BrokenBarrierError:
            status = "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    group = ServerGroup()
    try:
        url = group.start("barrier", app, 0).url
        with ThreadPoolExecutor(parties) as pool:
            statuses = list(pool.map(lambda _: httpx.get(url, timeout=120).status_code, range(parties)))
        assert statuses == [200] * parties
    finally:
        group.stop_all()


def test_a_ready_service_takes_its_start_up_objects_out_of_the_collectors_sight() -> None:
    """What exists when the service is ready is frozen (no full collection walks it again); garbage of that
    moment is freed first, not frozen."""

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    kept = [object() for _ in range(100)]
    gc.disable()  # no collection between here and the freeze but the one settle_heap makes
    try:
        garbage = Cycle()
        collected_before = gc.get_stats()[2]["collected"]
        del garbage
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        assert gc.get_stats()[2]["collected"] > collected_before  # the cycle went before the freeze
    finally:
        gc.unfreeze()
        gc.enable()
