"""Mock SCM with limits (``--limits``): F&O throttling answers 429 with ``Retry-After`` in F&O's own error shape
(``{"error": {"code": "", "message": ...}}``, no ``innererror`` on a 429), and delays from a latency profile.

Sources (docs/reference/limits.md section 2; FO ``service-protection-api-limits``, ``priority-based-throttling``):
429 with ``Retry-After``; the user-based limits' request message as published, with its "exeeded".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from sandbox.limits import LATENCY_OPTION, LIMITS_OPTION
from sandbox.testing import assert_fno_error
from tests.golden import Golden

HEADERS = {"Accept": "application/json", "X-Sandbox-Identity": "ana"}


@pytest.fixture
def limited(golden: Golden) -> Iterator[Flask]:
    app = golden.service_app(
        "scm",
        {
            LIMITS_OPTION: {"window_seconds": 60, "requests": 1},
            LATENCY_OPTION: {"read": {"fixed_ms": 25}, "seed": 1},
        },
    )
    yield app
    app.extensions["sandbox"].db.dispose()


def test_fno_throttling_answers_429_with_retry_after_in_fno_error_shape(limited: Flask) -> None:
    latency = limited.extensions["sandbox_latency"]
    slept: list[float] = []
    latency.sleep = slept.append  # no waiting: the delay is observed, not served
    client = limited.test_client()
    assert client.get("/data/CustomersV3?$top=1", headers=HEADERS).status_code == 200
    response: Any = client.get("/data/CustomersV3?$top=1", headers=HEADERS)
    error = assert_fno_error(
        response, 429, contains="Number of requests exeeded the limit of 1 over the time window of 60 seconds."
    )
    assert "innererror" not in error
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # the admitted read was delayed by the profile's fixed 25 ms; the throttled one answered at once
    assert slept == [0.025]
