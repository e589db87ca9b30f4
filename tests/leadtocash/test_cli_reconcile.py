"""`sandbox reconcile` as a CI gate: it exits 0 against a `sandbox up` stack after every scenario and a seed."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from leadtocash.cli import main
from tests.leadtocash.up_process import Up

pytestmark = [pytest.mark.live]


def _origin(url: str) -> str:
    """``http://127.0.0.1:port`` of a service URL `sandbox up` printed (which may name the service root)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


def test_reconcile_exits_zero_after_every_scenario_and_a_seed_against_a_running_stack(served_up: Up) -> None:
    """`sandbox scenario run --all` against a served stack (the session's `sandbox up --memory`), then `sandbox
    reconcile`: every running map equal (exit 0); the same after `sandbox seed` added customers, products and
    orders."""
    urls = served_up.urls
    origins = {name: _origin(url) for name, url in urls.items()}
    where = ["--sales-url", origins["sales"], "--scm-url", origins["scm"], "--bridge-url", origins["bridge"]]
    runner = CliRunner()
    scenarios = runner.invoke(main, ["scenario", "run", "--all", *where])
    assert scenarios.exit_code == 0, scenarios.output

    reconciled = runner.invoke(main, ["reconcile", "--json", *where])
    assert reconciled.exit_code == 0, reconciled.output
    report = json.loads(reconciled.output)
    assert report["equal"] is True and len(report["maps"]) >= 20
    compared = {m["id"]: m["compared"] for m in report["maps"]}
    assert compared["quotation-headers"] > 0 and compared["order-lines"] > 0, "the scenarios' documents compared"

    seeded = runner.invoke(
        main, ["seed", "--scm-url", origins["scm"], "--accounts", "5", "--products", "3", "--orders", "4"]
    )
    assert seeded.exit_code == 0, seeded.output
    again = runner.invoke(main, ["reconcile", *where])
    assert again.exit_code == 0, again.output
    assert again.output.strip().endswith("equal")
