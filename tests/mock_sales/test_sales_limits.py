"""Mock Sales with real limits (``--limits``): Dataverse service protection answers 429 with ``Retry-After`` and the
real code and message; ``$batch`` and the bulk messages keep their sizes; no limit applies unless asked for.

Sources (docs/reference/limits.md): service protection, section 1 (PA ``api-limits``: 6,000 requests, 1,200 s of
execution time and 52 concurrent requests per user over a 300-second sliding window; codes ``0x80072322``,
``0x80072321``, ``0x80072326``); ``$batch`` at most 1,000 requests, section 4 (PA
``webapi/execute-batch-operations-using-web-api``); CreateMultiple/UpdateMultiple, section 4.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from sandbox.limits import LIMITS_OPTION, Latency, install_latency, throttle_of
from sandbox.limits.latency import Distribution
from sandbox.odata.dataverse import codes
from sandbox.testing import assert_dataverse_error
from tests.golden import Golden

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


@pytest.fixture
def limited(golden: Golden, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """Mock Sales with tiny limits: two requests per window, or what the test parametrizes it with."""
    limits: dict[str, Any] = getattr(request, "param", {"window_seconds": 300, "requests": 2})
    app = golden.service_app("sales", {LIMITS_OPTION: limits})
    yield app
    app.extensions["sandbox"].db.dispose()


def get(client: Any, path: str = f"{ROOT}/accounts?$top=1", caller: str = "ana") -> Any:
    return client.get(path, headers={**JSON, "X-Sandbox-Identity": caller})


def test_requests_over_the_window_answer_429_with_retry_after_and_the_real_code(limited: Flask) -> None:
    """The third request of a two-request window is refused: 429, ``Retry-After`` in seconds, and Dataverse's
    error JSON with ``0x80072322`` and its message."""
    client = limited.test_client()
    assert get(client).status_code == 200
    assert get(client).status_code == 200
    response = get(client)
    assert_dataverse_error(
        response,
        429,
        codes.RATE_LIMIT_EXCEEDED,
        contains="Number of requests exceeded the limit of 2 over time window of 300 seconds.",
    )
    assert 1 <= int(response.headers["Retry-After"]) <= 300


def test_other_callers_and_the_control_plane_are_not_throttled(limited: Flask) -> None:
    """Limits are per user: another identity still gets through; the sandbox's own control plane never counts."""
    client = limited.test_client()
    for _ in range(3):
        get(client)
    assert get(client, caller="ben").status_code == 200
    assert client.get("/_sandbox/health").status_code == 200
    journal = client.get("/_sandbox/journal").get_json()
    statuses = [entry["status"] for entry in (journal["entries"] if isinstance(journal, dict) else journal)]
    assert 429 in statuses  # the refusal is journaled like any answer (the hook sits before the journal)


@pytest.mark.parametrize("limited", [{"concurrent": 1}], indirect=True)
def test_a_second_concurrent_request_of_one_user_is_refused_while_the_first_runs(limited: Flask) -> None:
    """With one concurrent request allowed, a request arriving while another of the same user is still being
    handled gets 429 ``0x80072326``; once the first ends, the next one passes. The first request is held inside
    the service by the latency hook's sleeper, which waits on an event: no timing involved."""
    entered, leave = threading.Event(), threading.Event()

    def hold(_seconds: float) -> None:
        entered.set()
        assert leave.wait(30), "the test never let the held request go"

    install_latency(limited, Latency({"default": Distribution(1.0, 1.0, 1.0)}, sleep=hold))
    throttle = throttle_of(limited)
    assert throttle is not None
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(get(limited.test_client()).status_code))
    worker.start()
    try:
        assert entered.wait(30), "the first request never reached the service"
        assert throttle.in_flight("ana") == 1
        response = get(limited.test_client())
        assert_dataverse_error(
            response, 429, codes.CONCURRENT_REQUESTS_EXCEEDED, "Number of concurrent requests exceeded the limit of 1."
        )
        assert response.headers["Retry-After"] == "1"
    finally:
        leave.set()
        worker.join(30)
    assert results == [200]
    assert throttle.in_flight() == 0
    assert get(limited.test_client()).status_code == 200


def test_no_limits_unless_asked_for(sales_app: Flask) -> None:
    """A service built without the limits option installs no throttle: the default stays unlimited."""
    assert throttle_of(sales_app) is None
    assert "sandbox_latency" not in sales_app.extensions


# ---- $batch and bulk sizes (always on: they are the wire's own limits) -------------------------------------
def batch_of(parts: int, first: str = "accounts?$top=0") -> tuple[bytes, str]:
    """A ``$batch`` body of ``parts`` GETs, built as one string (cheap at 1,000 parts)."""
    part = (
        "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET {} HTTP/1.1\r\n\r\n\r\n"
    )
    body = part.format(f"{ROOT}/{first}") + part.format(f"{ROOT}/accounts?$top=0") * (parts - 1) + "--b--\r\n"
    return body.encode(), "multipart/mixed;boundary=b"


def test_batch_of_1001_requests_is_refused_and_1000_are_accepted(sales: Any) -> None:
    """At most 1,000 requests per ``$batch``: 1,001 get the 400 before anything runs. A batch of 1,000 is read
    and run; its first part names an unknown set, so Dataverse stops there (no continue-on-error) and the batch
    answers that part's 404, not the size refusal (cheap: one part runs)."""
    body, content_type = batch_of(1001)
    too_many = sales.post(f"{ROOT}/$batch", data=body, headers={**JSON, "Content-Type": content_type})
    assert_dataverse_error(
        too_many, 400, codes.PAYLOAD_INVALID, contains="the maximum number of requests in a batch is 1000"
    )
    body, content_type = batch_of(1000, first="nosuchset")
    accepted = sales.post(f"{ROOT}/$batch", data=body, headers={**JSON, "Content-Type": content_type})
    assert accepted.status_code == 404
    assert accepted.content_type.startswith("multipart/mixed")
    assert b"maximum number of requests" not in accepted.data and b"nosuchset" in accepted.data


def test_create_multiple_over_1000_targets_is_refused_before_anything_is_written(sales: Any) -> None:
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"Bulk {i}"} for i in range(1001)]
    before = sales.get(f"{ROOT}/accounts?$count=true&$top=0", headers=JSON).get_json()["@odata.count"]
    response = sales.post(
        f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        data=json.dumps({"Targets": targets}),
        headers={**JSON, "Content-Type": "application/json"},
    )
    assert_dataverse_error(response, 400, codes.PAYLOAD_INVALID, contains="exceeds the limit of 1000")
    after = sales.get(f"{ROOT}/accounts?$count=true&$top=0", headers=JSON).get_json()["@odata.count"]
    assert after == before
