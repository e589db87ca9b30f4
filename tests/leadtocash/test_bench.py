"""``sandbox bench``: the suite runs end to end and reports every result beside its baseline.

Smoke tests only: the sizes are tiny and nothing here asserts how fast anything is (timings on a shared
machine are not a test); the numbers worth reading come from ``sandbox bench`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadtocash import bench
from leadtocash.cli import main

pytestmark = pytest.mark.live

EXPECTED = {
    "initial-sync",
    "initial-sync-processes",
    "live-sync-writes",
    "concurrent-live-sync",
    "concurrent-live-sync-p95",
    "async-sync-throughput",
    "sales-writes",
    "sales-reads",
    "sales-queries",
    "scm-writes",
    "scm-reads",
    "scm-queries",
}


def test_suite_at_tiny_sizes_reports_every_benchmark_with_a_baseline_measured_in_the_same_run() -> None:
    """Each result names its baseline; value, baseline and ratio are consistent and nothing failed."""
    sizes = bench.BenchSizes(customers=60, writes=8, async_seconds=1.0, requests=8)
    results = bench.run_bench(sizes=sizes, threads=2)
    by_name = {r.name: r for r in results}
    assert set(by_name) == EXPECTED
    for result in results:
        assert result.value > 0 and result.baseline > 0, result
        assert result.baseline_name
        assert result.ratio == pytest.approx(result.value / result.baseline, abs=0.002)
    for name, wire in (("initial-sync", "in-process"), ("initial-sync-processes", "processes")):
        initial = by_name[name].details
        assert initial["errors"] == 0 and initial["rows"] >= 60 and initial["raw_rows"] >= 60
        assert initial["wire"] == wire
    assert by_name["live-sync-writes"].details["errors"] == []
    assert by_name["async-sync-throughput"].details["errors"] == []
    assert by_name["async-sync-throughput"].details["synced"] > 0
    crossing = by_name["concurrent-live-sync"].details
    assert crossing["failed"] == 0 and crossing["errors"] == [] and crossing["writes_live"] > 0
    assert by_name["concurrent-live-sync-p95"].baseline == crossing["single_writer_p50_ms"]
    assert [set(r) for r in crossing["rounds"]] == [
        {"stopped_writes_per_s", "live_writes_per_s", "p95_ms", "single_writer_p50_ms"}
    ] * 2
    assert all(r["single_writer_p50_ms"] > 0 for r in crossing["rounds"])  # the one writer alone wrote every round


def test_sync_benchmarks_on_the_benchmarks_own_postgresql() -> None:
    """``--postgres``: the sync benchmarks run on a PostgreSQL cluster the benchmark starts itself, say so, and
    nothing fails."""
    sizes = bench.BenchSizes(customers=40, writes=8, async_seconds=0.5, requests=4)
    results = bench.run_bench(sizes=sizes, threads=2, only=["initial-sync", "concurrent-live-sync"], postgres=True)
    by_name = {r.name: r for r in results}
    assert "(postgresql)" in by_name["initial-sync"].baseline_name
    assert by_name["initial-sync"].details["errors"] == 0
    assert by_name["initial-sync-processes"].details["rows"] >= 40
    crossing = by_name["concurrent-live-sync"].details
    assert crossing["store"] == "postgresql" and crossing["workers"] == 1
    assert crossing["failed"] == 0 and crossing["errors"] == []


def test_sync_benchmarks_with_two_workers_per_mock_on_postgresql(pg_urls: dict[str, str]) -> None:
    """``--workers 2`` on PostgreSQL databases named by URL (the session's cluster: starting one more costs
    seconds, and the benchmark's own cluster is covered above): each mock served from two processes, the
    sync benchmarks say so, and nothing fails."""
    sizes = bench.BenchSizes(customers=40, writes=8, async_seconds=0.5, requests=4)
    results = bench.run_bench(
        sizes=sizes, threads=2, only=["live-sync-writes", "concurrent-live-sync"], database_urls=pg_urls, workers=2
    )
    by_name = {r.name: r for r in results}
    assert by_name["live-sync-writes"].details["errors"] == []
    crossing = by_name["concurrent-live-sync"].details
    assert crossing["store"] == "postgresql" and crossing["workers"] == 2
    assert crossing["failed"] == 0 and crossing["errors"] == []


def test_workers_without_postgresql_are_refused() -> None:
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        bench.run_bench(only=["live-sync-writes"], workers=2)
    refused = CliRunner().invoke(main, ["bench", "--workers", "2"])
    assert refused.exit_code == 2 and "needs PostgreSQL" in refused.output


def test_unknown_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown benchmark group"):
        bench.run_bench(only=["nope"])


def test_bench_command_prints_the_table_writes_json_and_stays_quiet_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command's wiring (the suite itself is covered above): JSON shape, table, no progress when piped."""
    seen: dict[str, object] = {}

    def fake_run_bench(**kwargs: object) -> list[bench.BenchResult]:
        seen.update(kwargs)
        return [bench.BenchResult("initial-sync", 500.0, "rows/s", 50000.0, "raw bulk copy", 0.01, {"rows": 10})]

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert seen["quick"] is True and seen["progress"] is None  # CliRunner's stderr is not a terminal
    assert "initial-sync" in result.output and "raw bulk copy" in result.output
    document = json.loads(out.read_text())
    assert set(document["results"][0]) >= {"name", "value", "unit", "baseline", "baseline_name", "ratio"}
    assert document["machine"]["cpus"] and "seconds" in document


def test_sync_benchmarks_run_on_the_databases_named_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``database_urls`` puts the sync benchmarks on other databases (SQLite URLs here; PostgreSQL alike):
    the rows land there, and the baseline says which database it copied into; a second run on the same
    databases works too."""
    import sqlalchemy as sa

    urls = {name: f"sqlite:///{(tmp_path / f'{name}-elsewhere.sqlite').as_posix()}" for name in ("sales", "scm")}
    sizes = bench.BenchSizes(customers=30, writes=4, async_seconds=0.5, requests=4)
    results = bench.run_bench(sizes=sizes, threads=1, only=["initial-sync"], database_urls=urls)
    assert [r.name for r in results] == ["initial-sync"] and "(sqlite)" in results[0].baseline_name
    # a second run on the same databases, which now hold the first run's rows (once a unique-key failure)
    monkeypatch.setattr(bench, "RUN", "R2")
    again = bench.run_bench(sizes=sizes, threads=1, only=["initial-sync"], database_urls=urls)
    assert again[0].details["errors"] == 0 and again[0].details["rows"] >= 30
    engine = sa.create_engine(urls["sales"])
    try:
        with engine.connect() as connection:
            count = connection.execute(sa.text("select count(*) from accounts where accountnumber like 'BI-%'"))
            assert count.scalar() >= 30
    finally:
        engine.dispose()


def test_bench_command_passes_only_and_database_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(bench, "run_bench", lambda **kwargs: seen.update(kwargs) or [])
    result = CliRunner().invoke(main, ["bench", "--only", "live-sync-writes", "--database-url", "sales=sqlite://"])
    assert result.exit_code == 0, result.output
    assert seen["only"] == ("live-sync-writes",) and seen["database_urls"] == {"sales": "sqlite://"}
    refused = CliRunner().invoke(main, ["bench", "--database-url", "nowhere"])
    assert refused.exit_code != 0 and "SERVICE=URL" in refused.output
