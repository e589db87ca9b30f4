"""The HTML reports of ``sandbox bench --html`` and ``sandbox load --report`` draw their charts in Chromium,
offline, from the file alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from leadtocash import bench, report
from tests.browser.support import NARROW, no_horizontal_overflow
from tests.leadtocash.test_report import bench_results, load_summary

pytestmark = pytest.mark.live


def open_report(page: Any, path: Path) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path.as_uri())
    assert requested == [path.as_uri()], f"the report fetched more than itself: {requested}"


def test_the_bench_report_draws_its_charts(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "bench.html"
    report.write(path, report.bench_html(bench.report(bench_results(), {"cpus": 2}, 1.0)))

    open_report(page, path)

    expect(page.locator(".chart canvas")).to_have_count(4)
    expect(page.locator(".chart .u-title").first).to_have_text("Each benchmark against its baseline (rows/s)")


def test_the_load_report_draws_its_charts(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "load.html"
    report.write(path, report.load_html(load_summary(tmp_path)))

    open_report(page, path)

    expect(page.locator(".chart canvas")).to_have_count(5)
    expect(page.locator(".chart .u-legend").last).to_contain_text("queued")


def test_many_endpoints_get_their_names_turned_on_their_side(page: Any, tmp_path: Path) -> None:
    """Thirty endpoints do not fit side by side at 1024 px: the bar chart grows taller for names set vertically
    (cut short with an ellipsis); two endpoints keep theirs level, and the page never scrolls sideways."""
    summary = load_summary(tmp_path)
    few = tmp_path / "few.html"
    report.write(few, report.load_html(summary))
    template = summary["requests"][0]
    summary["requests"] = [{**template, "name": f"Sales: a rather long endpoint name number {n}"} for n in range(30)]
    many = tmp_path / "many.html"
    report.write(many, report.load_html(summary))
    page.set_viewport_size(NARROW)

    heights = {}
    for name, path in (("few", few), ("many", many)):
        page.goto(path.as_uri())
        expect(page.locator(".chart canvas")).to_have_count(5)
        heights[name] = page.locator(".chart").first.locator("canvas").bounding_box()["height"]
        no_horizontal_overflow(page)

    assert heights["many"] > heights["few"] + 150
