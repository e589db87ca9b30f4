"""Tests of ``sandbox chaos`` (leadtocash/chaos.py), run small: the figures it prints are the data's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from leadtocash import chaos
from leadtocash.chaos import ChaosConfig, ChaosReport, InProcessStack, run_async, run_live
from leadtocash.cli import main
from tests.golden import Golden


@pytest.fixture
def stack(tmp_path: Path, golden: Golden) -> Iterator[InProcessStack]:
    """A private copy of the session's golden stack (maps Running live), as chaos drives it."""
    chosen = InProcessStack(stack=golden.stack(tmp_path / "bridge.sqlite"))
    chosen.stack.bridge_runtime.worker.poll_wait = 0.2
    yield chosen
    chosen.close()


LIVE = ChaosConfig(writes=40, before=0.25, after=0.25, drop=0.2, seed=3, settle_seconds=5.0)


def test_live_chaos_under_faults_before_and_after_loses_nothing_and_counts_every_write(stack: InProcessStack) -> None:
    """40 writes alternating sides, a quarter failing before the write, a quarter after it and a fifth
    dropping: every write is either acknowledged or failed, some of each, and nothing is lost, duplicated
    or divergent on either side."""
    report = run_live(stack, LIVE)
    assert report.attempted == 40 and report.acknowledged + report.failed == 40
    assert report.failed > 0 and report.acknowledged > 0
    assert report.faults.get("after", 0) > 0 and report.faults.get("before", 0) > 0
    assert (report.lost, report.duplicated, report.divergent) == (0, 0, 0), report.examples


def test_live_chaos_finds_the_rows_failed_writes_leave_when_outcomes_are_not_resolved(stack: InProcessStack) -> None:
    """Without the resolution of ambiguous outcomes (the bridge answering the first error it sees), writes
    failed after they landed leave rows behind: chaos reports them as divergent and the run is not ok."""
    stack.stack.bridge_runtime.engine.resolver = None
    report = run_live(stack, ChaosConfig(writes=20, before=0.0, after=1.0, drop=0.0, settle_seconds=0.0))
    assert report.failed == 20 and report.divergent > 0 and not report.ok
    assert report.examples[0]["problem"] == "divergent"


def test_async_chaos_under_5xx_and_429_drains_everything_and_reports_the_drain_time(stack: InProcessStack) -> None:
    """Async mode, 60 records with a third of the bridge's writes answered 5xx and a tenth 429: every
    acknowledged record reaches Sales as written once faults stop, and the drain time is reported; the map
    is back in live mode afterwards."""
    report = run_async(
        stack, ChaosConfig(records=60, errors=0.3, throttle=0.1, retry_after=1, seed=5, drain_timeout=120)
    )
    assert report.attempted == 60 and report.acknowledged == 60
    assert report.ok, report.examples
    assert report.drain_seconds is not None
    assert stack.stack.bridge_runtime.state.map_row(chaos.MAP_ID)["mode"] == "live"


def test_the_command_prints_the_figures_writes_json_and_exits_1_on_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table and the JSON carry every figure; exit 0 when nothing was lost, 1 when something was."""
    found = [ChaosReport("live", attempted=5, acknowledged=4, failed=1)]

    class Fake(chaos.ChaosStack):
        def clients(self) -> Any:
            raise AssertionError("not used")

    monkeypatch.setattr(chaos, "InProcessStack", lambda seed: Fake())
    monkeypatch.setattr(chaos, "run_chaos", lambda stack, modes, config, say: found)
    out = tmp_path / "chaos.json"
    result = CliRunner().invoke(main, ["chaos", "--stack", "in-process", "--mode", "live", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "attempted" in result.output and "ok" in result.output.splitlines()[-1]
    written = json.loads(out.read_text())
    assert written["ok"] is True and written["modes"][0]["acknowledged"] == 4
    found[0].lost = 1
    found[0].examples = [{"account": "X-1", "problem": "lost", "expected": "n", "scm": ["n"], "sales": []}]
    result = CliRunner().invoke(main, ["chaos", "--stack", "in-process", "--mode", "live"])
    assert result.exit_code == 1
    assert "lost: X-1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--restarts", "1"], "--restarts needs --stack process"),
        (["--before", "120"], "a percentage from 0 to 100"),
        (["--before", "60", "--after", "50"], "add up to more than 100"),
    ],
)
def test_the_command_refuses_options_it_cannot_honour(args: list[str], message: str) -> None:
    """Bad options end with a usage error (exit 2) saying what is wrong, before anything runs."""
    result = CliRunner().invoke(main, ["chaos", "--stack", "in-process", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_the_command_says_how_to_start_a_stack_when_none_answers(tmp_path: Path) -> None:
    """No stack at the URLs: one line saying how to get one (exit 1), no traceback."""
    result = CliRunner().invoke(
        main,
        [
            "chaos",
            "--sales-url",
            "http://127.0.0.1:9",
            "--scm-url",
            "http://127.0.0.1:9",
            "--bridge-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert "cannot reach the stack" in result.output and "Traceback" not in result.output


@pytest.mark.live
def test_chaos_on_a_served_stack_loses_nothing_live_and_drains_after_a_kill(tmp_path: Path) -> None:
    """`sandbox up` in a child process: live writes under faults over real sockets (a dropped connection is
    a closed socket there) lose nothing; then async writes, the stack killed with SIGKILL after them and
    started again on the same data: every acknowledged record reaches Sales once, as written, with the
    backlog at the kill, the time the restart took and the drain after it reported."""
    messages: list[str] = []
    stack = chaos.ProcessStack(tmp_path / "data", messages.append)
    try:
        live = run_live(stack, ChaosConfig(writes=16, before=0.2, after=0.3, drop=0.4, seed=7, settle_seconds=5.0))
        assert live.ok and live.failed > 0 and live.acknowledged > 0, live.examples
        report = run_async(
            stack, ChaosConfig(records=80, errors=0.2, throttle=0.05, retry_after=1, restarts=1, drain_timeout=120)
        )
    finally:
        stack.close()
    assert stack.process is not None and stack.process.poll() is not None  # nothing left running
    assert report.restarts == 1 and report.acknowledged == 80
    assert report.ok, report.examples
    assert report.backlog is not None and report.restart_seconds is not None and report.drain_seconds is not None
    assert any("kill -9" in m for m in messages)
