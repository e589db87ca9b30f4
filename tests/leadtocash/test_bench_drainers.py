"""``sandbox bench --drainers N`` and ``sandbox up --drainers N``: the async benchmark with several drainers per
source, and the option's refusals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leadtocash import bench
from leadtocash.cli import main

pytestmark = pytest.mark.live


def test_the_async_benchmark_runs_with_several_drainers_and_says_how_many() -> None:
    sizes = bench.BenchSizes(customers=30, writes=4, async_seconds=1.0, requests=4)
    results = bench.run_bench(sizes=sizes, threads=2, only=["async-sync-throughput"], drainers=2)
    details = {r.name: r for r in results}["async-sync-throughput"].details
    assert details["drain_workers"] == 2
    assert details["errors"] == [] and details["synced"] > 0


def test_bench_command_passes_the_drainers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(bench, "run_bench", lambda **kwargs: seen.update(kwargs) or [])
    result = CliRunner().invoke(main, ["bench", "--only", "async-sync-throughput", "--drainers", "3"])
    assert result.exit_code == 0, result.output
    assert seen["drainers"] == 3


@pytest.mark.parametrize("command", ["up", "bench"])
def test_fewer_than_one_drainer_is_refused_in_one_line(command: str) -> None:
    refused = CliRunner().invoke(
        main, [command, "--memory", "--drainers", "0"] if command == "up" else [command, "--drainers", "0"]
    )
    assert refused.exit_code == 2 and "--drainers" in refused.output
