"""The console page: map list with actions, one map's tabs, trace search; plain HTML forms."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

CUSTOMERS = "customers-accounts"


def page(sandbox: Any, path: str) -> str:
    response = sandbox.bridge.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.content_type.startswith("text/html")
    return response.get_data(as_text=True)


def post(sandbox: Any, path: str, **form: Any) -> str:
    """Submit a console form; return where it redirects (303, like a browser after POST)."""
    response = sandbox.bridge.post(path, data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_the_map_list_shows_every_map_with_state_counters_and_actions(sandbox: Any) -> None:
    """GET / lists each map's name, state, mode and counters, with Pause/Stop forms for running maps."""
    html = page(sandbox, "/")

    for table_map in sandbox.runtime.maps:
        assert table_map.name in unescape(html)
        assert f'href="/maps/{table_map.id}"' in html
    assert 'action="/console/maps/customers-accounts/pause"' in html
    assert 'action="/console/maps/customers-accounts/stop"' in html
    assert "Running" in text_of(html) and "live" in text_of(html)


def test_pause_and_resume_through_the_console_forms(sandbox: Any) -> None:
    """The Pause form pauses the map and redirects back with a message; Resume then catches up."""
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/pause", next="/")
    assert location.startswith("/?msg=")
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Paused"
    html = page(sandbox, location)
    assert "paused" in text_of(html)
    assert 'action="/console/maps/customers-accounts/resume"' in html

    sandbox.rename_customer("US-001", "Through the console")
    post(sandbox, f"/console/maps/{CUSTOMERS}/resume", mode="catchup", next="/")

    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Running"
    assert sandbox.account_name("US-001") == "Through the console"


def test_a_refused_action_is_shown_as_an_error_message(sandbox: Any) -> None:
    """Resuming a running map is refused (409); the page says why instead of failing."""
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/resume", mode="catchup")
    html = page(sandbox, location)
    assert 'class="msg bad"' in html and "Only a paused map can be resumed" in text_of(html)


def test_the_map_page_shows_mappings_activity_queue_and_catchup_errors_with_retry(sandbox: Any) -> None:
    """One map's page: field mappings, activity, queued records while paused, catch-up errors whose
    Retry all form completes them."""
    sandbox.runtime.lifecycle.pause(CUSTOMERS)
    sandbox.rename_customer("US-002", "Queued on the page")

    html = text_of(page(sandbox, f"/maps/{CUSTOMERS}"))
    assert "OrganizationName" in html and "name" in html  # table mappings
    assert "Paused: changes queue in the source until resumed" in html  # activity log
    assert '"CustomerAccount": "US-002"' in html  # queued records

    sandbox.runtime.lifecycle.resume(CUSTOMERS, "skip_keep")
    raw = page(sandbox, f"/maps/{CUSTOMERS}")
    assert 'name="ids"' in raw and "Skipped to live sync" in raw

    post(sandbox, f"/console/maps/{CUSTOMERS}/retry", all="1", next=f"/maps/{CUSTOMERS}#catchup")

    assert sandbox.account_name("US-002") == "Queued on the page"
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["catchup_errors"] == 0


def test_trace_search_finds_one_records_change_payload_and_response(sandbox: Any) -> None:
    """Searching traces by a key value shows that record's source change, transformed payload and the
    target's answer, and not other records."""
    sandbox.rename_customer("US-003", "Traced")

    html = text_of(page(sandbox, "/traces?key=US-003"))

    assert "Source change" in html and "Transformed payload" in html and "Target response" in html
    assert '"name": "Traced"' in html and '"status": 204' in html
    assert "US-004" not in html
    per_map = text_of(page(sandbox, f"/maps/{CUSTOMERS}?key=US-003"))
    assert '"name": "Traced"' in per_map


def test_text_from_the_services_is_escaped(sandbox: Any) -> None:
    """An error message with markup is shown as text, never interpreted as HTML."""
    sandbox.runtime.state.count(CUSTOMERS, failed=1, error="<script>alert(1)</script>")

    html = page(sandbox, "/")

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_initial_sync_results_are_on_the_map_page(sandbox: Any) -> None:
    """The last initial-sync execution (counts) is shown on the map page."""
    html = text_of(page(sandbox, f"/maps/{CUSTOMERS}"))
    assert "Execution 1:" in html and "No initial-sync errors" in html
