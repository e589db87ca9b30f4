"""The bridge console in headless Chromium: every action, live updates, charts, filters, screen sizes.

The stack is shared by the session's browser tests: each test leaves the maps as it found them (Running, live).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from leadtocash.stack import Stack
from sandbox.clients import ScmClient
from tests.browser.support import NARROW, WIDE, no_horizontal_overflow, shoot

pytestmark = pytest.mark.live

CUSTOMERS = "customers-accounts"
#: what Playwright waits at most for the page to show a change (it polls; nothing sleeps)
WAIT_MS = 15_000


@pytest.fixture
def console(served: Stack, page: Any) -> Iterator[Any]:
    """The console's map list open; afterwards every map runs live again, errors and alert rules cleared."""
    page.goto(served.url("bridge") + "/")
    yield page
    runtime = served.bridge_runtime
    for table_map in runtime.maps:
        status = runtime.lifecycle.status(table_map.id)
        if status["state"] in ("Paused", "Resuming"):
            runtime.lifecycle.resume(table_map.id, "catchup")
        elif status["state"] == "Not running":
            runtime.lifecycle.run(table_map.id, initial_sync=False, mode="live")
        elif status["mode"] != "live":
            runtime.lifecycle.run(table_map.id, initial_sync=False, mode="live")
        runtime.state.delete_catchup_errors(table_map.id)
        runtime.state.update_map(table_map.id, last_error=None)
        runtime.lifecycle.set_alerts(table_map.id, [])


def scm(served: Stack) -> ScmClient:
    return ScmClient(served.url("scm"))


def rename(served: Stack, account: str, name: str) -> None:
    with scm(served) as client:
        client.update("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": account}, {"OrganizationName": name})


def row(page: Any, map_id: str = CUSTOMERS) -> Any:
    return page.locator(f"#map-{map_id}")


def act(page: Any, map_id: str, button: str, **selects: str) -> None:
    """Open a map's action menu in the list, choose options, press ``button``."""
    menu = row(page, map_id).locator("details.menu")
    menu.locator("summary").click()
    form = menu.locator("form", has=page.get_by_role("button", name=button, exact=True))
    for label, value in selects.items():
        form.get_by_label(label).select_option(value)
    form.get_by_role("button", name=button, exact=True).click()


def test_the_map_list_fits_one_laptop_screen(console: Any, served: Stack) -> None:
    maps = len(served.bridge_runtime.maps)
    rows = console.locator("#maps tbody tr")
    expect(rows).to_have_count(maps)

    bottom = console.evaluate("document.querySelector('#maps').getBoundingClientRect().bottom")
    assert bottom <= 768, f"the map list ends at {bottom} px, below a 1366x768 laptop screen"
    no_horizontal_overflow(console)
    shoot(console, "console-overview")


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["1024px", "1920px"])
def test_no_page_overflows_narrow_or_wide_windows(console: Any, served: Stack, size: dict[str, int]) -> None:
    console.set_viewport_size(size)
    bridge = served.url("bridge")
    rename(served, "US-001", "Overflow check")  # a trace to show
    for path in ("/", f"/maps/{CUSTOMERS}", "/traces?key=US-001", "/maps/no-such-map"):
        console.goto(bridge + path)
        no_horizontal_overflow(console)
    # the actions menu opens inside the window at 1024 px too
    console.goto(bridge + "/")
    row(console, "invoice-lines").locator("summary").click()
    box = row(console, "invoice-lines").locator(".menu-body").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


def test_pause_resume_stop_run_and_switch_mode_from_the_menu(console: Any, served: Stack) -> None:
    life = served.bridge_runtime.lifecycle

    act(console, CUSTOMERS, "Pause")
    expect(console.locator("#flash")).to_contain_text("paused", timeout=WAIT_MS)
    expect(row(console).locator(".badge")).to_have_text("Paused")
    assert life.status(CUSTOMERS)["state"] == "Paused"

    rename(served, "US-002", "Resumed in the browser")
    act(console, CUSTOMERS, "Resume", **{"resume mode": "catchup"})
    expect(row(console).locator(".badge")).to_have_text("Running", timeout=WAIT_MS)
    assert life.status(CUSTOMERS)["state"] == "Running"

    act(console, CUSTOMERS, "Switch to async")
    expect(row(console).locator("td").nth(3)).to_have_text("async", timeout=WAIT_MS)
    act(console, CUSTOMERS, "Switch to live")
    expect(row(console).locator("td").nth(3)).to_have_text("live", timeout=WAIT_MS)

    act(console, CUSTOMERS, "Stop")
    expect(row(console).locator(".badge")).to_have_text("Not running", timeout=WAIT_MS)
    act(console, CUSTOMERS, "Run", mode="live", master="scm")
    expect(row(console).locator(".badge")).to_have_text("Running", timeout=WAIT_MS)
    assert (life.status(CUSTOMERS)["state"], life.status(CUSTOMERS)["mode"]) == ("Running", "live")


def test_a_refused_action_shows_its_reason(console: Any, served: Stack) -> None:
    """The map is paused behind the page's back while its menu is open: the open menu is not swapped by the
    live update, so it still offers Pause, which the bridge refuses with a reason."""
    menu = row(console).locator("details.menu")
    menu.locator("summary").click()
    served.bridge_runtime.lifecycle.pause(CUSTOMERS)

    menu.get_by_role("button", name="Pause", exact=True).click()

    expect(console.locator("#flash .msg.bad")).to_contain_text("Only a running map", timeout=WAIT_MS)
    expect(row(console).locator(".badge")).to_have_text("Paused")


def test_the_list_updates_itself_without_reloading(console: Any, served: Stack) -> None:
    console.evaluate("window.__notReloaded = true")
    served.bridge_runtime.lifecycle.pause(CUSTOMERS)

    expect(row(console).locator(".badge")).to_have_text("Paused", timeout=WAIT_MS)
    assert console.evaluate("window.__notReloaded === true")  # swapped in by htmx, not a reload


def test_filter_by_state_and_name(console: Any, served: Stack) -> None:
    served.bridge_runtime.lifecycle.pause("products")
    console.reload()

    console.get_by_label("state filter").select_option("Paused")
    expect(console.locator("#maps tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(row(console, "products")).to_be_visible()

    console.get_by_label("state filter").select_option("")
    expect(console.locator("#maps tbody tr")).to_have_count(len(served.bridge_runtime.maps), timeout=WAIT_MS)
    console.get_by_label("name filter").fill("contact")
    console.get_by_label("name filter").press("Enter")
    expect(console.locator("#maps tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(row(console, "customers-contacts")).to_be_visible()
    assert "q=contact" in console.url


def test_charts_draw_throughput_and_lag(console: Any, served: Stack) -> None:
    rename(served, "US-003", "Charted")

    expect(console.locator(".chart canvas")).to_have_count(2, timeout=WAIT_MS)
    expect(console.locator("#per-minute")).not_to_have_text("0", timeout=WAIT_MS)
    console.goto(served.url("bridge") + f"/maps/{CUSTOMERS}")
    expect(console.locator(".chart canvas")).to_have_count(2, timeout=WAIT_MS)
    expect(console.locator(".chart .u-legend").first).to_contain_text("synced")
    shoot(console, "console-map", full_page=False)


def test_clear_the_last_error(console: Any, served: Stack) -> None:
    served.bridge_runtime.state.count(CUSTOMERS, failed=1, error="A failure from yesterday")
    console.reload()
    expect(row(console).locator(".last-error")).to_have_text("A failure from yesterday")

    act(console, CUSTOMERS, "Clear last error")

    expect(row(console).locator(".last-error")).to_have_text("", timeout=WAIT_MS)
    assert served.bridge_runtime.lifecycle.status(CUSTOMERS)["last_error"] is None


def test_edit_alert_rules(console: Any, served: Stack) -> None:
    console.goto(served.url("bridge") + f"/maps/{CUSTOMERS}")
    form = console.locator("#alert-rules")
    form.get_by_label("errors").last.fill("5")
    form.get_by_label("window").last.fill("120")
    form.get_by_label("action").last.select_option("stop")
    form.get_by_label("kind").last.select_option("application")
    form.get_by_role("button", name="Save alert rules").click()

    expect(console.locator("#flash")).to_contain_text("1 alert rule(s) set", timeout=WAIT_MS)
    rules = served.bridge_runtime.lifecycle.status(CUSTOMERS)["alerts"]
    assert rules == [{"count": 5, "window_seconds": 120.0, "action": "stop", "kind": "application"}]

    form = console.locator("#alert-rules")
    expect(form.get_by_label("errors").first).to_have_value("5")
    form.get_by_label("remove rule 1").check()
    form.get_by_role("button", name="Save alert rules").click()
    expect(console.locator("#flash")).to_contain_text("0 alert rule(s) set", timeout=WAIT_MS)


def test_retry_and_delete_catchup_errors(console: Any, served: Stack) -> None:
    life = served.bridge_runtime.lifecycle
    life.pause(CUSTOMERS)
    rename(served, "US-004", "Kept as a catch-up error")
    rename(served, "US-001", "Another catch-up error")
    life.resume(CUSTOMERS, "skip_keep")
    console.goto(served.url("bridge") + f"/maps/{CUSTOMERS}#catchup")

    console.get_by_label("select error", exact=False).first.check()
    console.get_by_role("button", name="Retry selected").click()
    expect(console.locator("#flash")).to_contain_text("Retried 1: 1 completed", timeout=WAIT_MS)
    assert life.status(CUSTOMERS)["catchup_errors"] == 1

    console.get_by_role("button", name="Delete all").click()
    expect(console.locator("#flash")).to_contain_text("Deleted", timeout=WAIT_MS)
    expect(console.locator("#catchup + p")).to_have_text("No catch-up errors.")


def test_traces_link_to_the_records_in_both_data_browsers(console: Any, served: Stack) -> None:
    rename(served, "US-001", "Followed from a trace")
    console.goto(served.url("bridge") + "/traces?key=US-001&map=customers-accounts")
    expect(console.locator("code.key").first).to_have_text("accountnumber=US-001")
    shoot(console, "console-traces")

    console.locator("a.record-link", has_text="Sales accounts").first.click()

    expect(console.locator("h1")).to_have_text("Followed from a trace", timeout=WAIT_MS)
    assert console.url.startswith(served.url("sales") + "/_browse/accounts/")
    console.go_back()
    console.locator("a.record-link", has_text="SCM CustomersV3").first.click()
    expect(console.locator("h1")).to_have_text("Followed from a trace", timeout=WAIT_MS)
    assert console.url.startswith(served.url("scm") + "/_browse/CustomersV3/")


def test_unknown_pages_are_friendly(console: Any, served: Stack) -> None:
    response = console.goto(served.url("bridge") + "/maps/no-such-map")

    assert response is not None and response.status == 404
    expect(console.locator("h1")).to_have_text("Not found")
    console.get_by_role("link", name="← Table maps").click()
    expect(console.locator("#maps")).to_be_visible()


def test_a_post_without_the_csrf_token_is_refused(console: Any, served: Stack) -> None:
    response = console.request.post(served.url("bridge") + f"/console/maps/{CUSTOMERS}/stop", form={"next": "/"})

    assert response.status == 403 and "CSRF token" in response.json()["error"]["message"]
    assert served.bridge_runtime.lifecycle.status(CUSTOMERS)["state"] == "Running"
