"""The live-sync sender posts each transaction to the bridge's ``/api/live`` below the client's base URL."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.errors import BadRequest, ServiceUnavailable
from sandbox.livesync import http_sender


def _client(base_url: str, answer: httpx.Response, seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return httpx.Client(transport=httpx.MockTransport(handle), base_url=base_url)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://bridge.test", "http://bridge.test/api/live"),
        ("http://bridge.test/", "http://bridge.test/api/live"),
        ("http://bridge.test/under/a/prefix", "http://bridge.test/under/a/prefix/api/live"),
    ],
)
def test_the_sender_posts_the_payload_to_api_live_below_the_base_url(base_url: str, expected: str) -> None:
    seen: list[httpx.Request] = []
    with _client(base_url, httpx.Response(200, json={"written": 1, "writeback": []}), seen) as client:
        send = http_sender(client)
        assert send({"source": "sales", "changes": []}) == {"written": 1, "writeback": []}
        send({"source": "scm", "changes": []})
    assert [str(r.url) for r in seen] == [expected, expected]
    assert [json.loads(r.content)["source"] for r in seen] == ["sales", "scm"]
    assert seen[0].headers["Content-Type"] == "application/json"


def test_a_refusal_and_an_unavailable_bridge_become_the_writers_errors() -> None:
    refused = httpx.Response(400, json={"error": {"code": "", "message": "no company"}})
    with (
        _client("http://bridge.test", refused, []) as client,
        pytest.raises(BadRequest, match="Dual-write: no company"),
    ):
        http_sender(client)({"source": "sales", "changes": []})
    down = httpx.Response(503, text="busy", headers={"Retry-After": "7"})
    with _client("http://bridge.test", down, []) as client, pytest.raises(ServiceUnavailable) as caught:
        http_sender(client)({"source": "sales", "changes": []})
    assert caught.value.headers["Retry-After"] == "7"
    assert "busy" in caught.value.message
