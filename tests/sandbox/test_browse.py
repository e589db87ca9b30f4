"""The data browser of both mocks, through Flask's test client (tests/browser/ drives it in Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient

from leadtocash.stack import Stack, link_data_browsers
from sandbox.browse import BROWSE_OPTION, BrowseLinks
from sandbox.static import STATIC_DIR
from tests.golden import Golden

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert response.content_type.startswith("text/html")
    return response.get_data(as_text=True)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def header_row(html: str) -> list[str]:
    table = html[html.index('<table id="rows">') :]
    return re.findall(r"<th>([^<]+)</th>", table[: table.index("</tr>")])


def record_links(html: str) -> list[str]:
    return [unescape(u) for u in re.findall(r'href="(/_browse/[^"?]+/[^"?]+)"', html)]


def api_count(client: FlaskClient, url: str) -> int:
    return int(client.get(url).get_data(as_text=True))


@pytest.fixture
def stack(golden: Golden, tmp_path: Path) -> Iterator[Stack]:
    """The bridged golden stack, its data browsers linked to each other and to the bridge console."""
    stack = golden.stack(tmp_path / "bridge.sqlite")
    link_data_browsers(stack)
    yield stack
    stack.close()


# ---- the origin ---------------------------------------------------------------------------------------
def test_a_browser_at_the_origin_gets_the_entity_sets_with_row_counts(sales: FlaskClient, scm: FlaskClient) -> None:
    sales_html = page(sales, "/")
    scm_html = page(scm, "/")

    accounts = api_count(sales, "/api/data/v9.2/accounts/$count")
    customers = api_count(scm, "/data/CustomersV3/$count?cross-company=true")
    assert re.search(rf'href="/_browse/accounts">accounts</a>.*?<td class="num">{accounts}</td>', sales_html, re.S)
    assert re.search(rf'href="/_browse/CustomersV3">CustomersV3</a>.*?<td class="num">{customers}</td>', scm_html, re.S)
    assert page(sales, "/_browse/") == sales_html


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/json, text/html;q=0.5"])
def test_other_clients_at_the_origin_get_the_404_they_always_got(
    sales: FlaskClient, scm: FlaskClient, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    for client, body in (
        (sales, {"error": {"code": "0x8006088a", "message": "Resource not found for the segment '/'."}}),
        (scm, {"error": {"code": "", "message": "Entity set not found."}}),
    ):
        response = client.get("/", headers=headers)
        assert (response.status_code, response.get_json()) == (404, body)
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"):
            assert client.open("/", method=method, headers=headers).status_code == 404, method
        assert client.post("/", headers=BROWSER).status_code == 404  # a write is never a page


# ---- lists --------------------------------------------------------------------------------------------
def test_a_list_pages_through_the_rows(sales: FlaskClient) -> None:
    first = page(sales, "/_browse/accounts?size=4")
    second = page(sales, "/_browse/accounts?size=4&page=1")

    total = api_count(sales, "/api/data/v9.2/accounts/$count")
    assert total > 8
    assert f'<span id="total">{total}</span>' in first
    assert len(record_links(first)) == len(record_links(second)) == 4
    assert not set(record_links(first)) & set(record_links(second))
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert 'rel="prev"' in second and f"Page 2 of {-(-total // 4)}" in text_of(second)


def test_the_last_page_has_no_next_link_on_scm(scm: FlaskClient) -> None:
    total = api_count(scm, "/data/CustomersV3/$count?cross-company=true")
    last = (total - 1) // 5

    html = page(scm, f"/_browse/CustomersV3?size=5&page={last}")

    assert len(record_links(html)) == total - last * 5
    assert 'rel="next"' not in html and 'rel="prev"' in html


def test_columns_are_chosen(sales: FlaskClient) -> None:
    default = header_row(page(sales, "/_browse/accounts"))
    chosen = header_row(page(sales, "/_browse/accounts?cols=name&cols=accountnumber,creditlimit"))
    unknown = header_row(page(sales, "/_browse/accounts?cols=nosuchcolumn"))

    assert default[:2] == ["accountid", "name"] and len(default) == 8
    assert chosen == ["name", "accountnumber", "creditlimit"]
    assert unknown == default


def test_the_filter_box_takes_the_services_own_filter(sales: FlaskClient, scm: FlaskClient) -> None:
    sales_html = page(sales, "/_browse/accounts?filter=accountnumber eq 'US-001'&cols=accountnumber,name")
    scm_html = page(scm, "/_browse/CustomersV3?filter=CustomerAccount eq 'US-00*'")

    assert '<span id="total">1</span>' in sales_html and len(record_links(sales_html)) == 1
    rows = record_links(scm_html)
    assert rows and all("CustomerAccount='US-00" in unquote(u) for u in rows)  # F&O's wildcard eq


@pytest.mark.parametrize("bad", ["name eq", "nosuchfield eq 1", "name eq 'unterminated", "contains(name,'x')"])
def test_a_refused_filter_is_shown_in_the_page(scm: FlaskClient, bad: str) -> None:
    html = page(scm, "/_browse/CustomersV3?" + "filter=" + bad.replace(" ", "+"))

    assert 'id="filter-error"' in html and "The service refused this query" in html
    assert "No rows: the query was refused." in text_of(html)
    assert f'value="{bad}"'.replace("'", "&#39;") in html  # the filter stays in the box to be fixed


def test_a_refused_filter_on_sales_says_what_dataverse_says(sales: FlaskClient) -> None:
    html = text_of(page(sales, "/_browse/accounts?filter=nosuchfield eq 1"))

    assert "nosuchfield" in html and "The service refused this query" in html


def test_odd_paging_arguments_fall_back_to_defaults(scm: FlaskClient) -> None:
    html = page(scm, "/_browse/ReleasedProductsV2?size=100000&page=-3")
    assert len(record_links(html)) == 18 and "Page 1 of 1" in text_of(html)  # the default 25 a page
    assert "Page 1 of 1" in text_of(page(scm, "/_browse/ReleasedProductsV2?size=abc&page=x"))
    assert len(record_links(page(scm, "/_browse/ReleasedProductsV2?size=0&cols=ProductNumber"))) == 18


def test_an_unknown_set_is_a_404_page(sales: FlaskClient) -> None:
    html = page(sales, "/_browse/nosuchset", status=404)
    assert "There is no entity set &#39;nosuchset&#39;." in html and 'href="/_browse/"' in html


# ---- records ------------------------------------------------------------------------------------------
def test_a_record_shows_fields_formatted_values_and_lookups(sales: FlaskClient) -> None:
    listed = page(sales, "/_browse/accounts?filter=accountnumber eq 'US-001'")
    (url,) = record_links(listed)

    html = page(sales, url)

    text = text_of(html)
    assert "accountnumber US-001" in text
    assert re.search(r"customertypecode</code></td><td[^>]*>3</td>\s*<td[^>]*>Customer</td>", html)
    lookups = html[html.index('<table id="lookups">') :]
    contact = next(u for u in record_links(lookups) if u.startswith("/_browse/contacts/"))
    assert "primarycontactid" in lookups
    page(sales, contact)  # the related record opens


def test_a_record_on_scm_has_its_compound_key_and_lookups(scm: FlaskClient) -> None:
    html = page(scm, "/_browse/CustomersV3/dataAreaId='usmf',CustomerAccount='US-001'")

    assert "CustomersV3(dataAreaId=&#39;usmf&#39;,CustomerAccount=&#39;US-001&#39;)" in html
    lookups = html[html.index('<table id="lookups">') :]
    group = next(u for u in record_links(lookups) if u.startswith("/_browse/CustomerGroups/"))
    assert "CustomerGroupId" in text_of(page(scm, group))


@pytest.mark.parametrize(
    "path", ["/_browse/accounts/00000000-0000-0000-0000-000000000000", "/_browse/accounts/((", "/_browse/accounts/x=1"]
)
def test_a_missing_or_malformed_key_is_a_page_not_a_500(sales: FlaskClient, path: str) -> None:
    response = sales.get(path, headers=BROWSER)
    heading = {404: "Nothing here", 400: "This address cannot be read"}[response.status_code]
    assert heading in response.get_data(as_text=True)


def test_find_opens_the_record_when_exactly_one_row_matches(scm: FlaskClient) -> None:
    one = scm.get("/_browse/CustomersV3?filter=CustomerAccount eq 'US-001'&find=1", headers=BROWSER)
    several = scm.get("/_browse/CustomersV3?filter=CustomerAccount eq 'US-00*'&find=1", headers=BROWSER)

    assert one.status_code == 303
    assert unquote(one.headers["Location"]) == "/_browse/CustomersV3/dataAreaId='usmf',CustomerAccount='US-001'"
    assert several.status_code == 200


# ---- the other side -----------------------------------------------------------------------------------
def test_a_synced_record_links_to_the_other_side_and_its_traces(stack: Stack) -> None:
    sales = stack.apps["sales"].test_client()
    scm = stack.apps["scm"].test_client()
    (url,) = record_links(page(sales, "/_browse/accounts?filter=accountnumber eq 'US-001'"))

    sales_record = page(sales, url)
    scm_record = page(scm, "/_browse/CustomersV3/dataAreaId='usmf',CustomerAccount='US-001'")

    other = sales_record[sales_record.index('id="other-side"') :]
    assert 'href="http://scm.sandbox/_browse/CustomersV3?filter=CustomerAccount+eq+%27US-001%27&amp;find=1"' in other
    assert 'href="http://bridge.sandbox/traces?map=customers-accounts&amp;key=US-001"' in other
    assert 'href="http://sales.sandbox/_browse/accounts?filter=accountnumber+eq+%27US-001%27&amp;find=1"' in scm_record
    # the link lands on the record itself
    landed = scm.get("/_browse/CustomersV3?filter=CustomerAccount+eq+%27US-001%27&find=1", headers=BROWSER)
    assert landed.status_code == 303
    # an unsynced table has no such links
    assert 'id="other-side"' not in page(sales, "/_browse/systemusers")


def test_links_options_are_plain_json_and_optional() -> None:
    assert BrowseLinks.from_option(None) == BrowseLinks()
    links = BrowseLinks.from_option(
        {
            "peer": {"name": "scm", "url": "http://127.0.0.1:5102/"},
            "synced": {"accounts": [{"map": "m", "peer_set": "CustomersV3", "keys": [["a", "b"]]}]},
        }
    )
    assert links.peer_url == "http://127.0.0.1:5102" and links.bridge_url is None
    assert links.synced["accounts"][0].keys == [("a", "b")]
    assert BROWSE_OPTION == "browse"


# ---- static files -------------------------------------------------------------------------------------
def test_the_vendored_libraries_are_served_and_nothing_else(sales: FlaskClient, scm: FlaskClient) -> None:
    for client in (sales, scm):
        for name in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"):
            response = client.get(f"/_static/vendor/{name}")
            assert response.status_code == 200 and response.data == (STATIC_DIR / "vendor" / name).read_bytes()
        assert client.get("/_static/app/sandbox.css").status_code == 200
        icon = client.get("/_static/app/icon.svg")
        assert icon.status_code == 200 and icon.content_type.startswith("image/svg+xml")
        for path in ("/_static/__init__.py", "/_static/vendor/../__init__.py", "/_static/app/nothing.css"):
            assert client.get(path).status_code == 404


def test_browsing_never_answers_500(sales: FlaskClient, scm: FlaskClient) -> None:
    hostile: list[tuple[FlaskClient, str]] = [
        (sales, "/_browse/accounts?filter=" + "(" * 300),
        (sales, "/_browse/accounts?filter=%00&cols=%00"),
        (scm, "/_browse/CustomersV3/dataAreaId=%27usmf%27,CustomerAccount=%27%00%27"),
        (scm, "/_browse/CustomersV3?filter=" + "x" * 5000),
        (sales, "/_browse/accounts/" + "%2F" * 20),
    ]
    for client, path in hostile:
        response: Any = client.get(path, headers=BROWSER)
        assert response.status_code < 500, (path, response.get_data(as_text=True)[:300])


def test_every_page_declares_its_icon_so_no_browser_asks_favicon_ico(sales: FlaskClient, scm: FlaskClient) -> None:
    """Behind a token check ``/favicon.ico`` answers 401, an error in the browser's console on every page: the
    pages name the icon the services serve to everyone instead."""
    icon = '<link rel="icon" href="/_static/app/icon.svg" type="image/svg+xml">'
    for client, paths in ((sales, ["/", "/_browse/accounts", "/_browse/nosuchset"]), (scm, ["/_browse/CustomersV3"])):
        for path in paths:
            response = client.get(path, headers=BROWSER)
            assert icon in response.get_data(as_text=True), path
