"""``sandbox demo``: the lead-to-cash journey on a throwaway stack, its report, and ``--keep``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from leadtocash.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_report() -> tuple[int, list[str]]:
    """One in-process demo run: its exit code and the lines of its report."""
    lines: list[str] = []
    code = run_demo(echo=lines.append)
    return code, lines


def test_demo_runs_the_journey_in_process_and_reports_every_step_passed(demo_report: tuple[int, list[str]]) -> None:
    """Without ports: every step of the journey passes, the report lists them and the documents of both sides,
    and the exit code is 0."""
    code, lines = demo_report

    text = "\n".join(lines)
    assert code == 0, text
    assert "Lead to cash, step by step" in text and "Documents on both sides" in text
    steps = [line for line in lines if line.startswith(("ok  ", "FAIL"))]
    assert steps and all(line.startswith("ok") for line in steps)
    assert f"{len(steps)} of {len(steps)} steps passed." in text


def test_demo_report_columns_line_up_whatever_the_length_of_a_step_name(demo_report: tuple[int, list[str]]) -> None:
    """Every step row ends its time and sync columns at the same place as the header, the longest name too."""
    _code, lines = demo_report
    header = next(line for line in lines if line.split()[:3] == ["step", "time", "sync"])
    steps = [line for line in lines if line.startswith(("ok  ", "FAIL"))]
    longest = max(steps, key=len)
    assert len(longest.split(" ms")[0]) > 60, "the journey has a step name longer than the old fixed column"
    time_end = header.index("time") + len("time")
    for line in steps:
        assert line[time_end - 2 : time_end] == "ms", line
        assert line.endswith(("ms", "--")) and len(line) == len(header), line


def test_demo_report_has_a_tax_column_and_says_scms_amounts_include_tax(demo_report: tuple[int, list[str]]) -> None:
    """The documents table shows the tax included in SCM's totals, which Sales shows too (its quote's amount is
    SCM's, tax included: the totals come back to Sales), a note says so, and no status cell holds a customer
    group."""
    _code, lines = demo_report
    start = lines.index("\nDocuments on both sides")
    header = lines[start + 1]
    assert header.endswith("amount  of which tax"), header
    status_at = header.index("status")
    end = next(index for index, line in enumerate(lines) if line.startswith("Amounts are"))
    rows = lines[start + 3 : end]
    by_document = {(line[:18].strip(), " SCM " in line): line for line in rows}
    quote_scm = by_document[("Quote", True)].split()
    quote_sales = by_document[("Quote", False)].split()
    amount, tax = (float(cell.replace(",", "")) for cell in quote_scm[-2:])
    assert tax > 0 and abs(amount - float(quote_sales[-1].replace(",", ""))) < 0.01
    customer_scm = by_document[("Customer", True)]
    assert customer_scm[status_at:].strip() == "", "the SCM customer row has no status"
    assert any("SCM computes sales tax and its totals include it" in line for line in lines)


@pytest.mark.live
def test_demo_keep_serves_the_demos_stack_on_ports_until_sigterm(tmp_path: Path) -> None:
    """``--keep`` then serves the same stack (what the journey wrote is there) on the ports asked for (0: the
    system picks), prints a line per service as ``sandbox up`` does, and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "leadtocash.cli", "demo", "--keep"]
        + ["--sales-port", "0", "--scm-port", "0", "--bridge-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    urls: dict[str, str] = {}
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "stays up" in line:
                break
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("sales", "scm", "bridge"):
                urls[parts[0]] = parts[1]
        assert set(urls) == {"sales", "scm", "bridge"}, lines
        assert urls["sales"].endswith("/api/data/v9.2/") and urls["scm"].endswith("/data/")
        customer = next(line.split()[3] for line in lines if line.startswith("Customer ") and " Sales " in line)
        found = httpx.get(
            urls["scm"] + "CustomersV3",
            params={"$filter": f"CustomerAccount eq '{customer}'", "cross-company": "true"},
        ).json()["value"]
        assert [row["CustomerAccount"] for row in found] == [customer], "the journey's customer is served"
        maps = httpx.get(urls["bridge"] + "api/maps").json()
        assert {row["state"] for row in maps} == {"Running"}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, "".join(lines)
