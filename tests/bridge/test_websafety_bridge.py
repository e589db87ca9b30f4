"""Edge safety on the bridge: its admin API and console forms refuse cross-site changes, its API takes JSON only,
and a foreign Host is misdirected (:mod:`sandbox.websafety`)."""

from __future__ import annotations

from typing import Any

from bridge.console import CONSOLE_EXTENSION, CSRF_FIELD
from sandbox.websafety import SERVED_ENVIRON_KEY, configure_edge

CUSTOMERS = "customers-accounts"
EVIL = "http://evil.example"


def state_of(sandbox: Any, map_id: str = CUSTOMERS) -> str:
    return str(sandbox.bridge.get(f"/api/maps/{map_id}").get_json()["state"])


def assert_bridge_error(response: Any, status: int, contains: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == ""
    assert contains in error["message"]


def test_cross_origin_text_plain_map_stop_is_refused_and_the_map_keeps_running(sandbox: Any) -> None:
    assert state_of(sandbox) == "Running"
    answer = sandbox.bridge.post(
        f"/api/maps/{CUSTOMERS}/stop", data="{}", headers={"Origin": EVIL, "Content-Type": "text/plain"}
    )
    assert_bridge_error(answer, 403, "Cross-origin request refused")
    assert state_of(sandbox) == "Running"


def test_cross_site_console_form_post_is_refused_and_changes_nothing(sandbox: Any) -> None:
    """A form on another site posting to the console (a form post needs no preflight) is refused."""
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}):
        answer = sandbox.bridge.post(f"/console/maps/{CUSTOMERS}/stop", data={"next": "/"}, headers=headers)
        assert_bridge_error(answer, 403, "refused")
    assert state_of(sandbox) == "Running"


def test_same_origin_console_form_post_works(sandbox: Any) -> None:
    answer = sandbox.bridge.post(
        f"/console/maps/{CUSTOMERS}/pause",
        data={"next": "/", CSRF_FIELD: sandbox.stack.apps["bridge"].extensions[CONSOLE_EXTENSION].csrf_token},
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 303
    assert state_of(sandbox) == "Paused"


def test_the_api_refuses_form_and_text_bodies_with_415(sandbox: Any) -> None:
    """Form posts are for the console's routes only; the API wants JSON."""
    for data, kind in (("x", "text/plain"), ("initial_sync=1", "application/x-www-form-urlencoded")):
        answer = sandbox.bridge.post(f"/api/maps/{CUSTOMERS}/stop", data=data, headers={"Content-Type": kind})
        assert_bridge_error(answer, 415, "not supported")
    assert state_of(sandbox) == "Running"
    ok = sandbox.bridge.post(f"/api/maps/{CUSTOMERS}/pause", json={})
    assert ok.status_code == 200 and ok.get_json()["state"] == "Paused"


def test_the_bridge_answers_a_foreign_host_with_421_and_an_allowed_one(sandbox: Any) -> None:
    served = {SERVED_ENVIRON_KEY: True, "HTTP_HOST": "bridge.evil.example:5103"}
    assert_bridge_error(sandbox.bridge.get("/api/maps", environ_overrides=served), 421, "bridge.evil.example")
    assert_bridge_error(sandbox.bridge.post(f"/api/maps/{CUSTOMERS}/stop", environ_overrides=served), 421, "host")
    assert state_of(sandbox) == "Running"
    configure_edge(sandbox.stack.apps["bridge"], allowed_hosts=["bridge.evil.example"])
    assert sandbox.bridge.get("/api/maps", environ_overrides=served).status_code == 200


def test_an_allowed_origin_may_stop_a_map(sandbox: Any) -> None:
    configure_edge(sandbox.stack.apps["bridge"], allowed_origins=["http://localhost:3000"])
    answer = sandbox.bridge.post(
        f"/api/maps/{CUSTOMERS}/stop",
        json={},
        headers={"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
    )
    assert answer.status_code == 200
    assert state_of(sandbox) == "Not running"
