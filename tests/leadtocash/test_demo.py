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


def test_demo_runs_the_journey_in_process_and_reports_every_step_passed() -> None:
    """Without ports: every step of the journey passes, the report lists them and the documents of both sides,
    and the exit code is 0."""
    lines: list[str] = []

    code = run_demo(echo=lines.append)

    text = "\n".join(lines)
    assert code == 0, text
    assert "Lead to cash, step by step" in text and "Documents on both sides" in text
    steps = [line for line in lines if line.startswith(("ok  ", "FAIL"))]
    assert steps and all(line.startswith("ok") for line in steps)
    assert f"{len(steps)} of {len(steps)} steps passed." in text


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
        customer = next(line.split()[3] for line in lines if line.startswith("Customer ") and " SCM " in line)
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
