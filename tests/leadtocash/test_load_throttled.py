"""``sandbox load`` counts 429 answers as throttled, apart from failures: a request that met a service's limit
(``sandbox up --limits real``) shows where production would throttle, and does not fail the run.

Dataverse and F&O answer throttled requests with 429 and ``Retry-After`` (docs/reference/limits.md sections 1-2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadtocash.loadtest import print_summary, read_failures, read_stats, summarize
from leadtocash.report import load_html

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,Sales: list accounts,90,31,5,6.1,2,40,300,9.0,3.1,5,6,7,8,10,12,20,30,40,40,40
POST,SCM: create order,10,0,30,31.0,20,80,200,1.0,0.0,30,31,32,33,40,60,70,80,80,80,80
,Aggregated,100,31,6,9.0,2,90,250,10.0,3.1,6,7,8,9,20,40,60,80,90,90,90
"""
FAILURES = """Method,Name,Error,Occurrences
GET,Sales: list accounts,"CatchResponseError('429 [0x80072322] Number of requests exceeded the limit of 6000 over time \
window of 300 seconds.')",30
GET,Sales: list accounts,"CatchResponseError('503 [0x80040216] The database is busy; try again.')",1
"""


def summary_of(tmp_path: Path, max_failure_ratio: float, *, with_failures: bool = True) -> dict[str, Any]:
    """The load summary of ``STATS`` (and of ``FAILURES``, the run's failed requests, unless told not to)."""
    (tmp_path / "run_stats.csv").write_text(STATS)
    if with_failures:
        (tmp_path / "run_failures.csv").write_text(FAILURES)
    return summarize(
        read_stats(tmp_path / "run_stats.csv"),
        run_seconds=10.0,
        synced_before={},
        synced_after={},
        bridge={},
        config={"users": 2, "mode": "live", "workers": 0, "stack": "test", "bridge": False},
        max_failure_ratio=max_failure_ratio,
        failures=read_failures(tmp_path / "run_failures.csv") if with_failures else None,
    )


def test_429s_are_throttled_not_failed_and_do_not_fail_the_run(tmp_path: Path) -> None:
    """Of 31 failed list requests 30 were 429s: the row and the totals say 1 failure and 30 throttled, and the
    failure ratio (1 in 100) passes a 2% threshold that 31 failures would not."""
    summary = summary_of(tmp_path, 0.02)
    row = next(r for r in summary["requests"] if r["name"] == "Sales: list accounts")
    assert (row["failures"], row["throttled"]) == (1, 30)
    assert summary["totals"]["failures"] == 1 and summary["totals"]["throttled"] == 30
    assert summary["failure_ratio"] == 0.01 and summary["passed"] is True
    lines: list[str] = []
    print_summary(summary, lines.append)
    text = "\n".join(lines)
    assert "(1.00% failed, 30 throttled (429))" in text and "30 throttled" in text and "PASS" in text
    page = load_html(summary)
    assert "30 throttled" in page and "<th class=num>throttled</th>" in page


def test_without_throttling_nothing_changes(tmp_path: Path) -> None:
    """A run without 429s counts every failure as before and says nothing about throttling."""
    summary = summary_of(tmp_path, 0.02, with_failures=False)
    assert summary["totals"]["failures"] == 31 and summary["totals"]["throttled"] == 0
    assert summary["passed"] is False
    lines: list[str] = []
    print_summary(summary, lines.append)
    assert "throttled" not in "\n".join(lines)
