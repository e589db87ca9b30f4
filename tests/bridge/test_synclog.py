"""The bridge's log lines: one per synced unit, map state changes at notice (:mod:`bridge.synclog`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bridge.readiness import Startup
from bridge.synclog import SYNC_LOGGER, SyncLog, key_text
from sandbox.logs import NOTICE

CUSTOMERS = "customers-accounts"


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SYNC_LOGGER and getattr(r, "event", None) == event]


def test_key_text_is_column_equals_value() -> None:
    assert key_text({"accountnumber": "PW-001"}) == "accountnumber=PW-001"
    assert key_text({"CustomerAccount": "C1", "dataAreaId": "usmf", "n": 2}) == "CustomerAccount=C1,dataAreaId=usmf,n=2"
    assert key_text({}) == "-"


def test_a_live_write_logs_one_sync_line_with_map_key_direction_outcome_and_latency(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SYNC_LOGGER)
    sandbox.scm.create(
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "LOG-1",
            "OrganizationName": "Log Test",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    lines = [r for r in records(caplog, "sync") if r.map == CUSTOMERS]  # type: ignore[attr-defined]
    assert len(lines) == 1
    line: Any = lines[0]
    assert (line.direction, line.key, line.operation, line.outcome) == (
        "to_sales",
        "accountnumber=LOG-1",
        "upsert",
        "synced",
    )
    assert line.latency_ms is not None and line.latency_ms >= 0
    assert line.getMessage().startswith(f"sync {CUSTOMERS} to_sales accountnumber=LOG-1 upsert synced")


def test_a_failed_write_logs_failed_with_the_error_and_a_warning(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SYNC_LOGGER)
    answer = (
        sandbox.stack.apps["sales"]
        .test_client()
        .post("/api/data/v9.2/accounts", json={"name": "No group", "accountnumber": "LOG-2", "customertypecode": 3})
    )
    assert answer.status_code == 400
    failed: Any = [r for r in records(caplog, "sync") if getattr(r, "outcome", None) == "failed"]
    assert failed and failed[0].map == CUSTOMERS and failed[0].direction == "to_scm"
    assert "Customer group" in failed[0].error
    warnings = [r for r in records(caplog, "activity") if r.levelno == logging.WARNING]
    assert warnings and "Customer group" in warnings[0].getMessage()


def test_map_state_changes_are_notices_except_during_the_startup(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SYNC_LOGGER)
    assert sandbox.bridge.post(f"/api/maps/{CUSTOMERS}/pause", json={}).status_code == 200
    paused = [r for r in records(caplog, "activity") if r.map == CUSTOMERS]  # type: ignore[attr-defined]
    assert paused and paused[-1].levelno == NOTICE and "Paused" in paused[-1].getMessage()

    startup = Startup()
    startup.expect()
    sync_log = SyncLog(startup)
    caplog.clear()
    sync_log.activity("x", "state", "Running")
    startup.begin(["x"])
    startup.finish()
    sync_log.activity("x", "state", "Paused")
    assert [r.levelno for r in records(caplog, "activity")] == [logging.INFO, NOTICE]


def test_nothing_is_formatted_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(NOTICE, logger=SYNC_LOGGER)
    SyncLog()("synced", [("m", "to_sales", object(), "upsert", None, None, None, True)])
    assert records(caplog, "sync") == []
