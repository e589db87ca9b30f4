"""Prometheus metrics at /metrics: per-map counters by direction, map gauges, sync latency."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox.clients import ServiceError

CUSTOMERS = "customers-accounts"


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text (labels in any order), None when absent."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None


def scrape(sandbox: Any) -> str:
    response = sandbox.bridge.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def test_metrics_list_every_map_counter_from_zero_and_the_map_gauges(sandbox: Any) -> None:
    """Each map has synced/failed counters per direction it syncs (0 to start) and state/queued/lag gauges."""
    text = scrape(sandbox)

    assert sample(text, "bridge_records_synced_total", map=CUSTOMERS, direction="to_sales") == 0
    assert sample(text, "bridge_records_synced_total", map=CUSTOMERS, direction="to_scm") == 0
    assert sample(text, "bridge_records_failed_total", map="legal-entities", direction="to_sales") == 0
    assert sample(text, "bridge_records_synced_total", map="legal-entities", direction="to_scm") is None
    assert sample(text, "bridge_map_state", map=CUSTOMERS, state="Running") == 1
    assert sample(text, "bridge_map_state", map=CUSTOMERS, state="Paused") == 0
    assert sample(text, "bridge_map_queued", map=CUSTOMERS) == 0
    assert sample(text, "bridge_map_lag_seconds", map=CUSTOMERS) == 0
    assert sample(text, "bridge_map_records", map=CUSTOMERS, outcome="synced") > 0  # initial sync counted


def test_a_live_write_counts_as_synced_in_its_direction_and_is_timed(sandbox: Any) -> None:
    """One SCM rename synced live: to_sales +1 and one live latency observation."""
    sandbox.rename_customer("US-001", "Metered")

    text = scrape(sandbox)

    assert sample(text, "bridge_records_synced_total", map=CUSTOMERS, direction="to_sales") == 1
    assert sample(text, "bridge_records_synced_total", map=CUSTOMERS, direction="to_scm") == 0
    assert sample(text, "bridge_sync_latency_seconds_count", mode="live") == 1


def test_a_refused_write_counts_as_failed_in_its_direction(sandbox: Any) -> None:
    """A live sync the target refuses counts once under failed for that map and direction."""
    sandbox.sales_control.fail_bridge_writes(400, times=1)
    with pytest.raises(ServiceError):
        sandbox.rename_customer("US-001", "Refused")

    text = scrape(sandbox)

    assert sample(text, "bridge_records_failed_total", map=CUSTOMERS, direction="to_sales") == 1


def test_paused_maps_show_their_queue_and_async_writes_their_latency(quiet_sandbox: Any) -> None:
    """Queued changes of a paused map appear as a gauge; async applies observe source-to-target latency."""
    sandbox = quiet_sandbox
    life = sandbox.runtime.lifecycle
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-002", "Queued")
    text = scrape(sandbox)
    assert sample(text, "bridge_map_queued", map=CUSTOMERS) == 1
    assert sample(text, "bridge_map_state", map=CUSTOMERS, state="Paused") == 1

    life.resume(CUSTOMERS)
    life.run(CUSTOMERS, initial_sync=False, mode="async")
    sandbox.rename_customer("US-002", "Async")
    sandbox.runtime.worker.drain("scm")

    text = scrape(sandbox)
    assert sample(text, "bridge_sync_latency_seconds_count", mode="async") == 1
    assert sample(text, "bridge_async_cursor", source="scm") > 0
