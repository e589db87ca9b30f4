"""Dual-write's live-sync limits (``--limits``; ``bridge/livelimits.py``): a source transaction of more records
than allowed, or one that took too long, is refused and rolled back on both sides.

Source: docs/reference/limits.md section 3 (DW ``sync-limits``: at most 1,000 records and 2 minutes per
transaction in live sync, rolled back on both sides when exceeded).
"""

from __future__ import annotations

from typing import Any

from bridge.livelimits import LiveUnitLimits, install_live_limits
from sandbox.clients import BatchOp
from sandbox.limits import LIMITS_OPTION, LiveSyncLimits, load_profile
from tests.bridge.conftest import Sandbox


def customer(account: str) -> BatchOp:
    body = {
        "dataAreaId": "usmf",
        "CustomerAccount": account,
        "OrganizationName": f"Limits {account}",
        "CustomerGroupId": "10",
        "SalesCurrencyCode": "USD",
    }
    return BatchOp("POST", "CustomersV3", body=body)


def test_a_transaction_over_the_record_limit_is_refused_on_both_sides(sandbox: Sandbox) -> None:
    """With one record per transaction allowed, a change set creating two customers is refused with dual-write's
    reason; neither customer exists in SCM or Sales. A one-record transaction still syncs."""
    install_live_limits(sandbox.stack.apps["bridge"], {LIMITS_OPTION: {"records": 1}})
    results: list[Any] = sandbox.scm.batch([[customer("LIM-1"), customer("LIM-2")]])
    assert [r.status for r in results] and results[0].status >= 400
    text = str(results[0].json or results[0].text)
    assert "at most 1 record per transaction" in text and "has 2 records" in text
    assert sandbox.scm.query("CustomersV3", filter="CustomerAccount eq 'LIM-*'") == []
    assert sandbox.account("LIM-1") is None and sandbox.account("LIM-2") is None
    sandbox.create_customer("LIM-3", "Limits LIM-3")
    assert sandbox.account_name("LIM-3") == "Limits LIM-3"


def test_a_unit_over_its_time_is_refused_before_the_other_side_is_written(sandbox: Sandbox) -> None:
    """The time limit is checked before the target's writes: a unit that has already spent more than its
    seconds (the test's clock jumps while the unit is planned) is refused and nothing is written anywhere."""
    readings = [0.0]  # the unit starts at 0; every later reading is 121 s on

    def clock() -> float:
        now = readings[-1]
        readings.append(121.0)
        return now

    guard = LiveUnitLimits(LiveSyncLimits(seconds=120.0), clock=clock)
    sandbox.runtime.engine.live_limits = guard
    seq = sandbox.sales_seq()
    results: list[Any] = sandbox.scm.batch([[customer("LIM-9")]])
    assert results[0].status >= 400
    assert "allows at most 120 seconds per transaction" in str(results[0].json or results[0].text)
    assert sandbox.bridge_writes_to_sales(seq) == []
    assert sandbox.scm.query("CustomersV3", filter="CustomerAccount eq 'LIM-9'") == []


def test_the_live_sync_limits_are_off_unless_the_profile_sets_them(sandbox: Sandbox) -> None:
    assert sandbox.runtime.engine.live_limits is None
    install_live_limits(sandbox.stack.apps["bridge"], load_profile("real").stack_options()["bridge"])
    assert sandbox.runtime.engine.live_limits.limits == LiveSyncLimits(records=1000, seconds=120.0)
    install_live_limits(sandbox.stack.apps["bridge"], {})
    assert sandbox.runtime.engine.live_limits is None
