"""``leadtocash.report``: the HTML reports of ``sandbox bench --html`` and ``sandbox load --report`` (the browser
test in tests/browser/test_reports.py opens them in Chromium and checks that the charts draw)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from leadtocash import bench, report
from leadtocash.cli import main
from leadtocash.loadtest import load, read_stats, summarize
from sandbox.static import STATIC_DIR

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,Sales: list accounts,90,1,5,6.1,2,40,300,9.0,0.1,5,6,7,8,10,12,20,30,40,40,40
POST,SCM: create order,10,0,30,31.0,20,80,200,1.0,0.0,30,31,32,33,40,60,70,80,80,80,80
SYNC,customers-accounts scm->sales,8,0,25,30.0,10,90,0,0.8,0.0,25,26,27,28,60,80,90,90,90,90,90
,Aggregated,108,1,6,9.0,2,90,250,10.8,0.1,6,7,8,9,20,40,60,80,90,90,90
"""


def charts_of(page: str) -> list[dict[str, Any]]:
    match = re.search(r"<script>var CHARTS = (.*?);</script>", page, re.S)
    assert match, "the page carries its charts' data"
    charts: list[dict[str, Any]] = json.loads(match.group(1).replace("<\\/", "</"))
    return charts


def self_contained(page: str) -> None:
    """Nothing is fetched when the file opens: no external script, stylesheet or image; uPlot is inlined."""
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert (STATIC_DIR / "vendor" / "uPlot.iife.min.js").read_text(encoding="utf-8") in page


def bench_results() -> list[bench.BenchResult]:
    return [
        bench.BenchResult("initial-sync", 500.0, "rows/s", 50000.0, "raw bulk copy", 0.01, {"rows": 10}),
        bench.BenchResult("live-sync-writes", 40.0, "writes/s", 80.0, "map stopped", 0.5, {"lag": [1, 2]}),
        bench.BenchResult("sales-reads", 300.0, "requests/s", 900.0, "bare endpoint", 0.333),
    ]


def load_summary(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "run_stats.csv"
    path.write_text(STATS)
    return summarize(
        read_stats(path),
        run_seconds=10.0,
        synced_before={"customers-accounts": 5},
        synced_after={"customers-accounts": 25},
        bridge={
            "samples": 2,
            "series": [{"t": 2.0, "lag_max": 0.1, "queued": 0}, {"t": 4.0, "lag_max": 0.4, "queued": 3}],
        },
        config={"users": 2, "mode": "live", "workers": 0, "stack": "test", "bridge": True},
        max_failure_ratio=0.01,
    )


def test_the_bench_report_charts_each_result_beside_its_baseline() -> None:
    page = report.bench_html(bench.report(bench_results(), {"cpus": 2, "python": "3.11"}, 12.0))

    self_contained(page)
    charts = charts_of(page)
    by_title = {c["title"]: c for c in charts}
    rows = by_title["Each benchmark against its baseline (rows/s)"]
    assert rows["labels"] == ["initial-sync"]
    assert [s["values"] for s in rows["series"]] == [[50000.0], [500.0]]
    assert by_title["Share of the baseline reached"]["series"][0]["values"] == [0.01, 0.5, 0.333]
    assert len(charts) == 4  # three units and the ratios
    assert "raw bulk copy" in page and "&quot;" not in page.split("<script>var CHARTS")[0].split("<h1>")[0]


def test_the_load_report_charts_requests_sync_latency_records_and_the_bridge_over_time(tmp_path: Path) -> None:
    page = report.load_html(load_summary(tmp_path))

    self_contained(page)
    by_title = {c["title"]: c for c in charts_of(page)}
    throughput = by_title["Throughput per endpoint (requests/s)"]
    assert throughput["labels"] == ["GET Sales: list accounts", "POST SCM: create order"]
    assert throughput["series"][0]["values"] == [9.0, 1.0]
    latency = by_title["Latency percentiles per endpoint (ms)"]
    assert [s["label"] for s in latency["series"]] == ["p99", "p95", "p50"]
    assert latency["series"][0]["values"] == [30.0, 80.0]
    sync = by_title["From the write to the other side (ms)"]
    assert sync["labels"] == ["SYNC customers-accounts scm->sales"] and sync["series"][1]["values"] == [80.0]
    assert by_title["Records the bridge synced per second of the run"]["series"][0]["values"] == [2.0]
    over_time = by_title["Largest lag of any map, and changes queued"]
    assert over_time["x"] == [2.0, 4.0] and over_time["series"][1]["values"] == [0, 3]
    assert "PASS" in page


def test_the_tables_round_the_figures_as_the_terminal_summary_does(tmp_path: Path) -> None:
    """Requests per second to two places and milliseconds whole: no float arithmetic's tail in a cell."""
    summary = load_summary(tmp_path)
    summary["requests"][0].update(rps=0.23088969782707292, max_ms=358.16482992924246, p95_ms=1234.0)

    page = report.load_html(summary)

    row = re.search(r"<td>Sales: list accounts</td>(.*?)</tr>", page)
    assert row is not None
    cells = re.findall(r"<td class=num>([^<]*)</td>", row.group(1))
    assert cells == ["90", "1", "0", "0.23", "5", "1,234", "30", "358"]  # requests, failures, throttled, ...
    assert "0.2308896978" not in page.split("<script>var CHARTS")[0]  # the charts keep the exact values


def test_a_load_report_without_bridge_samples_says_so(tmp_path: Path) -> None:
    summary = load_summary(tmp_path)
    summary["bridge"] = {"samples": 0}

    page = report.load_html(summary)

    assert "No samples of the bridge" in page
    assert "Largest lag of any map, and changes queued" not in json.dumps(charts_of(page))


def test_text_in_a_report_cannot_end_its_script_or_inject_markup(tmp_path: Path) -> None:
    hostile = bench.BenchResult("</script><b>x</b>", 1.0, "u", 1.0, "<i>b</i>", 1.0)

    page = report.bench_html(bench.report([hostile], {}, None))

    assert "</script><b>x</b>" not in page and "&lt;i&gt;b&lt;/i&gt;" in page
    assert charts_of(page)[0]["labels"] == ["</script><b>x</b>"]


@pytest.mark.live
def test_bench_html_writes_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench, "run_bench", lambda **_kwargs: bench_results())
    out = tmp_path / "bench.html"

    result = CliRunner().invoke(main, ["bench", "--quick", "--html", str(out)])

    assert result.exit_code == 0, result.output
    assert "initial-sync" in result.output  # the terminal summary stays
    assert charts_of(out.read_text(encoding="utf-8"))


def test_load_takes_a_report_path() -> None:
    result = CliRunner().invoke(load, ["--help"])
    assert "--report" in result.output and "self-contained HTML" in result.output
