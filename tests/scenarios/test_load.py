"""``sandbox load``: Locust runs headless in its own process against a stack and the summary adds up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from leadtocash.loadtest import (
    counted_errors,
    load,
    map_errors,
    parse_run_time,
    print_summary,
    read_failures,
    read_stats,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,Sales: list accounts,90,1,5,6.1,2,40,300,9.0,0.1,5,6,7,8,10,12,20,30,40,40,40
POST,SCM: create order,10,0,30,31.0,20,80,200,1.0,0.0,30,31,32,33,40,60,70,80,80,80,80
SYNC,customers-accounts scm->sales,8,0,25,30.0,10,90,0,0.8,0.0,25,26,27,28,60,80,90,90,90,90,90
,Aggregated,108,1,6,9.0,2,90,250,10.8,0.1,6,7,8,9,20,40,60,80,90,90,90
"""


def test_run_time_reads_like_locust_and_is_bounded() -> None:
    assert [parse_run_time(t) for t in ("45", "30s", "2m", "1h30m")] == [45, 30, 120, 5400]
    for bad in ("0", "soon", "13h"):
        with pytest.raises(click.BadParameter):
            parse_run_time(bad)


def test_summary_splits_requests_from_sync_samples_and_applies_the_failure_threshold(tmp_path: Path) -> None:
    """Per-endpoint rows, SYNC percentiles, synced records per map per second, and the pass/fail verdict."""
    path = tmp_path / "run_stats.csv"
    path.write_text(STATS)
    stats = read_stats(path)
    config = {"users": 2, "mode": "live", "workers": 0, "stack": "test", "bridge": True}
    bridge = {"samples": 3, "lag_max_seconds": 0.2, "lag_mean_seconds": 0.1, "queue_max": 4, "queue_mean": 1.0}
    summary = summarize(
        stats,
        run_seconds=10.0,
        synced_before={"customers-accounts": 5, "order-headers": 0},
        synced_after={"customers-accounts": 25, "order-headers": 0},
        bridge=bridge,
        config=config,
        max_failure_ratio=0.01,
    )
    assert [r["name"] for r in summary["requests"]] == ["Sales: list accounts", "SCM: create order"]
    assert summary["sync"][0]["p95_ms"] == 80 and summary["sync"][0]["p99_ms"] == 90
    assert summary["synced_per_map"] == [{"map": "customers-accounts", "records": 20, "per_second": 2.0}]
    assert summary["totals"]["requests"] == 100 and summary["totals"]["failures"] == 1
    assert summary["passed"] is True  # 1 failure in 108 samples: under 1%
    strict = summarize(
        stats,
        run_seconds=10.0,
        synced_before={},
        synced_after={},
        bridge=bridge,
        config=config,
        max_failure_ratio=0.001,
    )
    assert strict["passed"] is False
    lines: list[str] = []
    print_summary(summary, lines.append)
    text = "\n".join(lines)
    assert "customers-accounts scm->sales" in text and "lag max 0.20 s" in text and "PASS" in text


def test_urls_off_loopback_are_refused_without_allow_remote() -> None:
    result = CliRunner().invoke(load, ["--sales-url", "http://192.0.2.10:5101", "--scm-url", "http://192.0.2.10:5102"])
    assert result.exit_code == 2 and "loopback" in result.output


def test_a_running_stack_s_identity_service_is_found_from_its_challenge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a stack whose identity service is not on 5100, the Locust users still get tokens: the run is
    handed the identity service Sales names in its 401 challenge (``SANDBOX_IDENTITY_URL`` for the users)."""
    import flask

    import leadtocash.loadtest as loadtest
    from sandbox.server import ServerGroup

    stub = flask.Flask("sales-stub")
    challenge = "Bearer authorization_uri=http://127.0.0.1:5310/some-tenant/oauth2/authorize, resource_id=x"
    stub.add_url_rule("/api/data/v9.2/", "root", lambda: ({"error": {}}, 401, {"WWW-Authenticate": challenge}))
    seen: list[Any] = []
    monkeypatch.setattr(loadtest, "_run", lambda target, *args, **kwargs: seen.append(target) or 0)
    group = ServerGroup()
    try:
        sales = group.start("sales", stub, 0).url
        result = CliRunner().invoke(load, ["--sales-url", sales, "--scm-url", sales])
    finally:
        group.stop_all()

    assert result.exit_code == 0, result.output
    (target,) = seen
    assert target.urls["identity"] == "http://127.0.0.1:5310"
    assert "identity" not in target.description  # the summary names the services under test


@pytest.mark.live
def test_load_with_two_users_runs_locust_in_its_own_process_and_passes(tmp_path: Path) -> None:
    """No URLs: a stack starts on loopback; Locust runs a few seconds; the summary has requests and sync."""
    out = tmp_path / "load.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "leadtocash.cli",
            "load",
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--run-time",
            "6s",
            "--json",
            str(out),
            "--csv",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    assert "propagation latency" in completed.stdout and "PASS" in completed.stdout
    assert completed.stderr.strip() == ""  # not a terminal: no progress lines
    summary = json.loads(out.read_text())
    assert summary["passed"] and summary["totals"]["requests"] > 0
    assert {row["name"] for row in summary["sync"]} >= {"customers-accounts scm->sales"}
    assert summary["synced_per_map"] and summary["bridge"]["samples"] >= 1
    assert (tmp_path / "run_stats.csv").exists()


FAILURES = """Method,Name,Error,Occurrences
POST,SCM: create order,"CatchResponseError('503 [0x80040216] The database is busy; try again.')",3
POST,SCM: create order,"CatchResponseError('400 [0x80040265] Dual-write: Customers V3 (accounts): writing failed')",1
GET,Sales: list accounts,"ConnectionError(MaxRetryError('connection refused'))",2
"""


def test_failures_say_per_request_type_why_with_status_code_and_message(tmp_path: Path) -> None:
    """Locust's failures file becomes, per request type, each reason (status, error code, message) and how often;
    a failure without an answer keeps Locust's text; the summary and its printout carry them."""
    path = tmp_path / "run_failures.csv"
    path.write_text(FAILURES)
    failures = read_failures(path)
    assert [(row["type"], row["name"]) for row in failures] == [
        ("GET", "Sales: list accounts"),
        ("POST", "SCM: create order"),
    ]
    order = failures[1]["reasons"]
    assert order[0] == {
        "status": 503,
        "code": "0x80040216",
        "message": "The database is busy; try again.",
        "occurrences": 3,
    }
    assert order[1]["status"] == 400 and order[1]["message"].startswith("Dual-write")
    assert failures[0]["reasons"][0]["status"] is None and "connection refused" in failures[0]["reasons"][0]["message"]
    assert read_failures(tmp_path / "missing.csv") == []

    summary = summarize(
        read_stats(_stats(tmp_path)),
        run_seconds=10.0,
        synced_before={},
        synced_after={},
        bridge={},
        config={"users": 2, "mode": "live", "workers": 0, "stack": "test", "bridge": True},
        max_failure_ratio=0.5,
        failures=failures,
        bridge_errors={
            "count": 2,
            "kinds": [{"error": "unexpected bridge error: KeyError: 'x'", "count": 2}],
            "maps": [],
        },
    )
    assert summary["failures"] == failures and summary["bridge_errors"]["count"] == 2
    lines: list[str] = []
    print_summary(summary, lines.append)
    text = "\n".join(lines)
    assert "503 [0x80040216] The database is busy; try again.: 3" in text
    assert "errors inside the stack: 2 logged" in text and "KeyError" in text


def _stats(tmp_path: Path) -> Path:
    path = tmp_path / "run_stats.csv"
    path.write_text(STATS)
    return path


def test_errors_logged_inside_the_stack_are_counted_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """While counting, an error the bridge logs (with its traceback) is counted by its first line and printed
    nowhere; afterwards logging is as it was."""
    import logging

    logger = logging.getLogger("bridge.app")
    with counted_errors() as errors:
        for _ in range(2):
            try:
                raise KeyError("x")
            except KeyError:
                logger.exception("unexpected bridge error")
    assert errors.summary() == {"count": 2, "kinds": [{"error": "unexpected bridge error: KeyError: 'x'", "count": 2}]}
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert logging.getLogger("bridge").propagate is True


def test_map_errors_are_the_sync_failures_of_the_run() -> None:
    before = {"a": {"failed": 1}, "b": {"failed": 0}}
    after = {"a": {"failed": 4, "last_error": "boom"}, "b": {"failed": 0}, "c": {"failed": 2, "last_error": "x"}}
    assert map_errors(before, after) == [
        {"map": "a", "failed": 3, "last_error": "boom"},
        {"map": "c", "failed": 2, "last_error": "x"},
    ]
