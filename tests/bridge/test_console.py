"""The console's pages, fragments, chart data and actions, through Flask's test client (the browser tests in
tests/browser/ drive the same pages in Chromium)."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bridge.console import CONSOLE_EXTENSION, CSRF_FIELD, key_text
from bridge.series import SyncSeries

CUSTOMERS = "customers-accounts"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def page(sandbox: Any, path: str, status: int = 200) -> str:
    response = sandbox.bridge.get(path, headers=BROWSER)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.content_type.startswith("text/html")
    return response.get_data(as_text=True)


def token(sandbox: Any) -> str:
    return str(sandbox.stack.apps["bridge"].extensions[CONSOLE_EXTENSION].csrf_token)


def post(sandbox: Any, path: str, **form: Any) -> str:
    """Submit a console form with its CSRF token; return where it redirects (303, like a browser after POST)."""
    response = sandbox.bridge.post(path, data={CSRF_FIELD: token(sandbox), **form})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return str(response.headers["Location"])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def message_of(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    return (query.get("msg") or query.get("error") or [""])[0]


def test_the_map_list_shows_every_map_in_one_row_with_its_actions_in_a_menu(sandbox: Any) -> None:
    """GET / lists each map's name, state, mode and counters, one row each, with Pause/Stop in its menu."""
    html = page(sandbox, "/")

    rows = re.findall(r'<tr id="map-([^"]+)"', html)
    assert rows == [m.id for m in sandbox.runtime.maps]
    for table_map in sandbox.runtime.maps:
        assert f'href="/maps/{table_map.id}"' in html
    assert 'action="/console/maps/customers-accounts/pause"' in html
    assert 'action="/console/maps/customers-accounts/stop"' in html
    assert html.count('<details class="menu">') == len(rows)
    assert "Running" in text_of(html) and "live" in text_of(html)
    # the overview: maps by state, and the polling fragment htmx swaps in
    assert f'id="count-running">{len(rows)}<' in html
    assert 'hx-get="/console/fragments/overview"' in html


def test_the_list_filters_by_state_and_name(sandbox: Any) -> None:
    sandbox.runtime.lifecycle.pause(CUSTOMERS)

    paused = page(sandbox, "/?state=Paused")
    by_name = page(sandbox, "/?q=contact")
    nothing = page(sandbox, "/?q=no-such-map")

    assert re.findall(r'<tr id="map-([^"]+)"', paused) == [CUSTOMERS]
    assert re.findall(r'<tr id="map-([^"]+)"', by_name) == ["customers-contacts"]
    assert "No map matches" in text_of(nothing)
    # the polling fragment keeps the filter
    fragment = sandbox.bridge.get("/console/fragments/overview?state=Paused").get_data(as_text=True)
    assert re.findall(r'<tr id="map-([^"]+)"', fragment) == [CUSTOMERS]
    assert 'hx-get="/console/fragments/overview?state=Paused"' in fragment


def test_pause_and_resume_through_the_console_forms(sandbox: Any) -> None:
    """The Pause form pauses the map and redirects back with a message; Resume then catches up."""
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/pause", next="/")
    assert location.startswith("/?msg=")
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Paused"
    html = page(sandbox, location)
    assert "paused" in text_of(html)
    assert 'action="/console/maps/customers-accounts/resume"' in html

    sandbox.rename_customer("US-001", "Through the console")
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/resume", mode="catchup", next=location)

    assert location.count("msg=") == 1  # the earlier message is replaced, not kept beside the new one
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Running"
    assert sandbox.account_name("US-001") == "Through the console"


def test_stop_and_run_again_with_the_run_form(sandbox: Any) -> None:
    post(sandbox, f"/console/maps/{CUSTOMERS}/stop", next="/")
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Not running"
    assert 'action="/console/maps/customers-accounts/run"' in page(sandbox, "/")

    location = post(sandbox, f"/console/maps/{CUSTOMERS}/run", mode="async", master="scm", next="/")

    status = sandbox.runtime.lifecycle.status(CUSTOMERS)
    assert (status["state"], status["mode"]) == ("Running", "async")
    assert "Running (async)" in message_of(location)


def test_a_refused_action_is_shown_as_an_error_message(sandbox: Any) -> None:
    """Resuming a running map is refused (409); the page says why instead of failing."""
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/resume", mode="catchup")
    html = page(sandbox, location)
    assert 'class="msg bad"' in html and "Only a paused map can be resumed" in text_of(html)


@pytest.mark.parametrize("sent", [None, "", "not-the-token"])
def test_a_post_without_the_csrf_token_is_refused_in_the_bridge_error_shape(sandbox: Any, sent: str | None) -> None:
    form = {"next": "/"} if sent is None else {"next": "/", CSRF_FIELD: sent}

    response = sandbox.bridge.post(f"/console/maps/{CUSTOMERS}/stop", data=form)

    assert response.status_code == 403
    body = response.get_json()
    assert set(body) == {"error"} and "CSRF token" in body["error"]["message"]
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["state"] == "Running"


def test_every_form_on_the_pages_carries_the_token(sandbox: Any) -> None:
    sandbox.runtime.state.count(CUSTOMERS, failed=1, error="boom")
    for path in ("/", f"/maps/{CUSTOMERS}"):
        html = page(sandbox, path)
        posts = re.findall(r'<form[^>]*method="post".*?</form>', html, flags=re.S)
        assert posts
        assert all(f'name="{CSRF_FIELD}" value="{token(sandbox)}"' in form for form in posts)


def test_the_last_error_can_be_cleared(sandbox: Any) -> None:
    sandbox.runtime.state.count(CUSTOMERS, failed=1, error="A stale failure")
    assert "A stale failure" in page(sandbox, "/")

    location = post(sandbox, f"/console/maps/{CUSTOMERS}/clear-error", next="/")

    assert "last error cleared" in message_of(location)
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["last_error"] is None
    assert "A stale failure" not in page(sandbox, "/")
    assert "Last error cleared in the console" in text_of(page(sandbox, f"/maps/{CUSTOMERS}"))


def test_alert_rules_are_edited_on_the_map_page(sandbox: Any) -> None:
    form = {
        "count": ["3", ""],
        "window_seconds": ["60", ""],
        "alert_action": ["stop", "pause"],
        "kind": ["network", "any"],
    }
    location = post(sandbox, f"/console/maps/{CUSTOMERS}/alerts", next=f"/maps/{CUSTOMERS}#alerts", **form)

    assert "1 alert rule(s) set" in message_of(location)
    rules = sandbox.runtime.lifecycle.status(CUSTOMERS)["alerts"]
    assert rules == [{"count": 3, "window_seconds": 60.0, "action": "stop", "kind": "network"}]
    html = page(sandbox, f"/maps/{CUSTOMERS}")
    assert 'name="count" value="3"' in html and "<option selected>stop</option>" in html

    # removing the rule again: tick it
    post(sandbox, f"/console/maps/{CUSTOMERS}/alerts", remove="0", **form)
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["alerts"] == []


@pytest.mark.parametrize(
    ("count", "window", "kind", "says"),
    [("x", "60", "any", "whole number"), ("3", "60", "sometimes", "is not one of"), ("0", "60", "any", "at least 1")],
)
def test_a_bad_alert_rule_is_refused_with_a_message(
    sandbox: Any, count: str, window: str, kind: str, says: str
) -> None:
    form = {"count": count, "window_seconds": window, "alert_action": "pause", "kind": kind}

    location = post(sandbox, f"/console/maps/{CUSTOMERS}/alerts", **form)

    assert says in message_of(location) and "error=" in location
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["alerts"] == []


def test_the_map_page_shows_mappings_activity_queue_and_catchup_errors_with_retry(sandbox: Any) -> None:
    """One map's page: field mappings, activity, queued records while paused (keys as ``name=value``),
    catch-up errors whose Retry all form completes them."""
    sandbox.runtime.lifecycle.pause(CUSTOMERS)
    sandbox.rename_customer("US-002", "Queued on the page")

    html = text_of(page(sandbox, f"/maps/{CUSTOMERS}"))
    assert "OrganizationName" in html and "name" in html  # table mappings
    assert "Paused: changes queue in the source until resumed" in html  # activity log
    assert "CustomerAccount=US-002" in html  # queued records, the key as people write it

    sandbox.runtime.lifecycle.resume(CUSTOMERS, "skip_keep")
    raw = page(sandbox, f"/maps/{CUSTOMERS}")
    assert 'name="ids"' in raw and "Skipped to live sync" in raw

    post(sandbox, f"/console/maps/{CUSTOMERS}/retry", all="1", next=f"/maps/{CUSTOMERS}#catchup")

    assert sandbox.account_name("US-002") == "Queued on the page"
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["catchup_errors"] == 0


def test_catchup_errors_can_be_deleted_and_retry_needs_a_selection(sandbox: Any) -> None:
    sandbox.runtime.lifecycle.pause(CUSTOMERS)
    sandbox.rename_customer("US-004", "Deleted from the queue")
    sandbox.runtime.lifecycle.resume(CUSTOMERS, "skip_keep")
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["catchup_errors"] >= 1

    nothing = post(sandbox, f"/console/maps/{CUSTOMERS}/retry")
    deleted = post(sandbox, f"/console/maps/{CUSTOMERS}/delete-errors")

    assert "Select the catch-up errors to retry" in message_of(nothing)
    assert message_of(deleted).startswith("Deleted ")
    assert sandbox.runtime.lifecycle.status(CUSTOMERS)["catchup_errors"] == 0


def test_trace_search_finds_one_records_change_payload_and_response_with_record_links(sandbox: Any) -> None:
    """Searching traces by a key value shows that record's source change, transformed payload and the
    target's answer, not other records, its key as ``accountnumber=US-003`` and links to both records."""
    sandbox.rename_customer("US-003", "Traced")

    raw = page(sandbox, "/traces?key=US-003")
    html = text_of(raw)

    assert "Source change" in html and "Transformed payload" in html and "Target response" in html
    assert '"name": "Traced"' in html and '"status": 204' in html
    assert "US-004" not in html
    assert "accountnumber=US-003" in html and '\\"' not in html
    links = [unescape(u) for u in re.findall(r'class="record-link" href="([^"]+)"', raw)]
    assert f"{sandbox.stack.url('sales')}/_browse/accounts?filter=accountnumber+eq+%27US-003%27&find=1" in links
    assert f"{sandbox.stack.url('scm')}/_browse/CustomersV3?filter=CustomerAccount+eq+%27US-003%27&find=1" in links
    per_map = text_of(page(sandbox, f"/maps/{CUSTOMERS}?key=US-003"))
    assert '"name": "Traced"' in per_map
    only_other_map = text_of(page(sandbox, "/traces?key=US-003&map=customers-contacts"))
    assert '"name": "Traced"' not in only_other_map


def test_friendly_404s_for_browsers_and_the_json_error_for_api_clients(sandbox: Any) -> None:
    for path in (
        "/maps/no-such-map",
        "/maps/customers-accounts/nothing",
        "/console/nothing",
        "/nothing",
        "/traces?map=nope",
    ):
        html = page(sandbox, path, status=404)
        assert "Not found" in html and 'href="/"' in html
        assert '<link rel="icon" href="/_static/app/icon.svg"' in html  # no request for /favicon.ico (401 with auth)
    api = sandbox.bridge.get("/nothing")
    assert api.status_code == 404 and api.is_json and set(api.get_json()) == {"error"}
    assert sandbox.bridge.get("/api/maps/no-such-map").is_json


def test_fragments_and_series_feed_the_live_page(sandbox: Any) -> None:
    series: SyncSeries = sandbox.stack.apps["bridge"].extensions[CONSOLE_EXTENSION].series
    before = sum(series.window(None, 60)["synced"])
    sandbox.rename_customer("US-001", "Counted per second")

    data = sandbox.bridge.get(f"/console/series?map={CUSTOMERS}&seconds=60").get_json()
    everything = sandbox.bridge.get("/console/series?seconds=60").get_json()

    assert len(data["t"]) == len(data["synced"]) == len(data["lag"]) == 60
    assert sum(data["synced"]) >= 1 and sum(everything["synced"]) > before
    facts = sandbox.bridge.get(f"/console/fragments/maps/{CUSTOMERS}").get_data(as_text=True)
    assert 'id="map-facts"' in facts and "<html" not in facts
    assert sandbox.bridge.get("/console/series?map=nope").status_code == 404
    assert sandbox.bridge.get("/console/series?seconds=x").status_code == 400


def test_text_from_the_services_is_escaped(sandbox: Any) -> None:
    """An error message with markup is shown as text, never interpreted as HTML."""
    sandbox.runtime.state.count(CUSTOMERS, failed=1, error="<script>alert(1)</script>")

    html = page(sandbox, "/")

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_initial_sync_results_are_on_the_map_page(sandbox: Any) -> None:
    """The last initial-sync execution (counts) is shown on the map page."""
    html = text_of(page(sandbox, f"/maps/{CUSTOMERS}"))
    assert "Execution 1:" in html and "No initial-sync errors" in html


def test_keys_read_as_people_write_them() -> None:
    assert key_text('{"accountnumber": "PW-001"}') == "accountnumber=PW-001"
    assert key_text({"dataAreaId": "usmf", "CustomerAccount": "US-001"}) == "dataAreaId=usmf, CustomerAccount=US-001"
    assert key_text("not json") == "not json" and key_text(None) == ""
    assert json.loads('"x"') == "x"


def test_the_series_keep_the_last_minutes_per_second() -> None:
    now = [1000.0]
    series = SyncSeries(["a", "b"], clock=lambda: now[0])
    series.add("a", synced=2)
    series.add("b", synced=1, failed=1)
    series.lag("a", 1.5)
    series.lag("a", 0.5)
    now[0] += 1
    series.add("a", synced=3)
    series.on_engine("written", "b", {"count": 4})
    series.add("unknown", synced=9)

    both = series.window(None, 3)
    only_a = series.window(["a"], 3)

    assert both["t"] == [999, 1000, 1001]
    assert both["synced"] == [0, 3, 7] and both["failed"] == [0, 1, 0]
    assert only_a["synced"] == [0, 2, 3] and only_a["lag"] == [None, 1.5, None]
    assert series.per_minute() == 10
    now[0] += 700  # past the window: old buckets are not read as new
    assert sum(series.window(None, 600)["synced"]) == 0
