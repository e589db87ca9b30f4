"""The data browsers' links to the other side and to the bridge, the same in one process and in child processes."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest

from bridge.mapping import MapValidationError
from leadtocash.browselinks import browse_options, shipped_and_loaded_maps, with_browse_links
from leadtocash.stack import Serving, StackConfig, link_data_browsers, start_stack
from sandbox.browse import BROWSE_OPTION, BrowseLinks
from tests.golden import Golden

EXAMPLE_MAPS = Path(__file__).resolve().parents[2] / "scenarios" / "examples" / "maps"
BROWSER = {"Accept": "text/html"}


def test_a_child_is_configured_with_the_links_a_mock_in_this_process_gets(golden: Golden, tmp_path: Path) -> None:
    """Computed from the maps loaded here, before any child starts, each mock's option equals what
    ``link_data_browsers`` sets from a running bridge's maps for the same origins."""
    stack = golden.stack(tmp_path / "bridge.sqlite")
    try:
        link_data_browsers(stack)
        in_process = {n: stack.apps[n].extensions["sandbox"].config.options[BROWSE_OPTION] for n in ("sales", "scm")}
        configured = with_browse_links(StackConfig(memory=True, options={"scm": {"x": 1}}), stack.urls, None)
    finally:
        stack.close()

    assert {n: configured.options[n][BROWSE_OPTION] for n in ("sales", "scm")} == in_process
    assert configured.options["scm"]["x"] == 1  # the other options stay
    sales = BrowseLinks.from_option(in_process["sales"])
    assert (sales.peer_name, sales.peer_url, sales.bridge_url) == ("scm", stack.urls["scm"], stack.urls["bridge"])
    assert [(t.map_id, t.peer_set, t.keys) for t in sales.synced["accounts"]] == [
        ("customers-accounts", "CustomersV3", [("accountnumber", "CustomerAccount")])
    ]


def test_the_users_maps_count_and_lookup_keyed_maps_are_left_out() -> None:
    """A map from ``maps_dirs`` adds its set as the bridge would load it; lines keyed by their header (a
    lookup) get no link, since no plain filter finds them on the other side."""
    maps = shipped_and_loaded_maps([EXAMPLE_MAPS])
    options = browse_options(maps, {"sales": "http://s", "scm": "http://c", "bridge": "http://b"})

    assert [m["map"] for m in options["sales"]["synced"]["accounts"]] == ["customers-accounts", "prospects-accounts"]
    assert {"customers-accounts", "prospects-accounts"} <= {m["map"] for m in options["scm"]["synced"]["CustomersV3"]}
    keyed_by_lookup = [m.id for m in maps if any(k.sales[0].nav is not None for k in m.keys)]
    assert keyed_by_lookup  # the shipped lines maps
    listed = {m["map"] for side in options.values() for tables in side["synced"].values() for m in tables}
    assert not listed & set(keyed_by_lookup)


def test_a_bad_map_fails_before_any_child_would_start(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: broken\nscm: {entity: NoSuchEntity}\n", encoding="utf-8")
    with pytest.raises(MapValidationError):
        with_browse_links(StackConfig(memory=True), {}, [tmp_path])


def record_page_links(html: str) -> list[str]:
    section = html[html.index('id="other-side"') : html.index("</ul>", html.index('id="other-side"'))]
    return [unescape(u) for u in re.findall(r'href="([^"]+)"', section)]


@pytest.mark.live
def test_with_mocks_in_child_processes_a_synced_record_links_to_the_other_side_and_the_bridge() -> None:
    """``--wire processes``: a served Sales account's page links to the same customer on SCM's data browser
    and to its traces in the bridge console (for the shipped map and a user's map), and both links work."""
    stack = start_stack(StackConfig(memory=True, seed=1), wire="processes", serve=Serving(), maps_dirs=[EXAMPLE_MAPS])
    try:
        sales, scm, bridge = (stack.urls[n] for n in ("sales", "scm", "bridge"))
        assert stack.children is not None and not stack.apps.keys() & {"sales", "scm"}
        with httpx.Client(headers=BROWSER, timeout=30.0) as client:
            found = client.get(f"{sales}/_browse/accounts", params={"filter": "accountnumber eq 'US-001'", "find": 1})
            assert found.status_code == 303, found.text[:500]
            record = client.get(sales + found.headers["Location"])
            links = record_page_links(record.text)
            assert links == [
                f"{scm}/_browse/CustomersV3?filter=CustomerAccount+eq+%27US-001%27&find=1",
                f"{bridge}/traces?map=customers-accounts&key=US-001",
                f"{scm}/_browse/CustomersV3?filter=CustomerAccount+eq+%27US-001%27&find=1",
                f"{bridge}/traces?map=prospects-accounts&key=US-001",
            ]
            landed = client.get(links[0])
            assert landed.status_code == 303 and "CustomerAccount='US-001'" in landed.headers["Location"]
            customer = client.get(scm + landed.headers["Location"])
            assert f"{sales}/_browse/accounts?filter=accountnumber+eq+%27US-001%27&find=1" in record_page_links(
                customer.text
            )
            traces = client.get(links[1])
            assert traces.status_code == 200 and traces.headers["content-type"].startswith("text/html")
    finally:
        stack.close()
