"""The mocks' data browser in headless Chromium: entity sets, paging, columns, filters, records, cross-links."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from leadtocash.stack import Stack
from tests.browser.support import NARROW, WIDE, no_horizontal_overflow, shoot

pytestmark = pytest.mark.live

WAIT_MS = 15_000


def test_the_origin_lists_the_entity_sets_with_row_counts(page: Any, served: Stack) -> None:
    for name, entity_set in (("sales", "accounts"), ("scm", "CustomersV3")):
        response = page.goto(served.url(name) + "/")
        assert response is not None and response.status == 200
        link = page.get_by_role("link", name=entity_set, exact=True)
        expect(link).to_be_visible()
        count = page.locator("#sets tr", has=link).locator("td.num")
        assert int(count.inner_text()) > 0
        if name == "sales":
            shoot(page, "browse-index")


def test_page_through_a_table(page: Any, served: Stack) -> None:
    page.goto(served.url("scm") + "/_browse/CustomersV3?size=5")
    first = page.locator("#rows tr td:first-child a").all_inner_texts()

    page.get_by_role("link", name="Next →").click()
    expect(page.locator(".pager")).to_contain_text("Page 2", timeout=WAIT_MS)
    second = page.locator("#rows tr td:first-child a").all_inner_texts()
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator(".pager")).to_contain_text("Page 1", timeout=WAIT_MS)

    assert len(first) == len(second) == 5
    assert page.locator("#rows tr td:first-child a").all_inner_texts() == first
    page.get_by_label("Rows").select_option("10")  # a new page size applies with the filter form
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#rows tr td:first-child a")).to_have_count(10, timeout=WAIT_MS)


def test_choose_columns(page: Any, served: Stack) -> None:
    page.goto(served.url("sales") + "/_browse/accounts")
    page.locator("#columns summary").click()
    boxes = page.locator("#columns")
    for name in ("accountid", "statecode", "statuscode"):
        checkbox = boxes.get_by_label(name, exact=True)
        if checkbox.is_checked():
            checkbox.uncheck()
    boxes.get_by_label("creditlimit", exact=True).check()
    boxes.get_by_role("button", name="Show these columns").click()

    headers = page.locator("#rows tr").first.locator("th")
    expect(headers).to_contain_text(["name"], timeout=WAIT_MS)
    texts = headers.all_inner_texts()
    assert "creditlimit" in texts and "accountid" not in texts
    # formatted values: the credit limit in currency next to the raw number
    expect(page.locator("#rows")).to_contain_text("$")


def test_filter_with_the_services_own_syntax_and_see_a_refusal_inline(page: Any, served: Stack) -> None:
    page.goto(served.url("sales") + "/_browse/accounts")
    page.get_by_label("$filter").fill("accountnumber eq 'US-001'")
    page.get_by_label("$filter").press("Enter")
    expect(page.locator("#total")).to_have_text("1", timeout=WAIT_MS)
    shoot(page, "browse-list")

    page.get_by_label("$filter").fill("accountnumber eq")
    page.get_by_label("$filter").press("Enter")

    expect(page.locator("#filter-error")).to_contain_text("The service refused this query", timeout=WAIT_MS)
    expect(page.get_by_label("$filter")).to_have_value("accountnumber eq")


def test_a_record_with_formatted_values_lookups_and_the_other_side(page: Any, served: Stack) -> None:
    page.goto(served.url("sales") + "/_browse/accounts?filter=accountnumber eq 'US-001'&find=1")
    expect(page.locator("#fields")).to_contain_text("accountnumber", timeout=WAIT_MS)
    assert "/_browse/accounts/" in page.url
    statecode = page.locator("#fields tr", has=page.locator("code", has_text="statecode"))
    expect(statecode.locator("td").nth(2)).to_have_text("Active")
    shoot(page, "browse-record")

    # a lookup opens the related record
    page.locator("#lookups a").first.click()
    expect(page.locator("#fields")).to_be_visible(timeout=WAIT_MS)
    page.go_back()

    # the same record on the other side
    page.locator("#other-side a", has_text="on the other side").click()
    expect(page.locator("h1")).to_be_visible(timeout=WAIT_MS)
    assert page.url.startswith(served.url("scm") + "/_browse/CustomersV3/")
    expect(page.locator("#fields")).to_contain_text("US-001")
    # and back: SCM's record links to Sales
    page.locator("#other-side a", has_text="accounts").first.click()
    expect(page.locator("#fields")).to_contain_text("US-001", timeout=WAIT_MS)
    assert page.url.startswith(served.url("sales") + "/_browse/accounts/")

    # its traces in the bridge console
    page.locator("#other-side a", has_text="traces in the bridge").first.click()
    expect(page.locator("h1")).to_have_text("Record traces", timeout=WAIT_MS)
    assert page.url.startswith(served.url("bridge") + "/traces?")


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["1024px", "1920px"])
def test_no_browser_page_overflows(page: Any, served: Stack, size: dict[str, int]) -> None:
    page.set_viewport_size(size)
    for url in (
        served.url("sales") + "/",
        served.url("sales") + "/_browse/accounts",
        served.url("sales") + "/_browse/accounts?filter=accountnumber eq 'US-001'&find=1",
        served.url("scm") + "/_browse/CustomersV3",
        served.url("scm") + "/_browse/CustomersV3?filter=CustomerAccount eq 'US-001'&find=1",
        served.url("scm") + "/_browse/nosuchset",
    ):
        page.goto(url)
        no_horizontal_overflow(page)
