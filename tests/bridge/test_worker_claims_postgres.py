"""Several async drainers on PostgreSQL: claims skip the rows another drainer is locking (``FOR UPDATE SKIP
LOCKED``) and treat them as taken, and a stack whose bridge keeps its state there applies each record's changes
once and in order (bridge.claims)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.claims import WorkQueue, WorkRow
from leadtocash.stack import Stack, StackConfig, start_stack
from sandbox.clients import ControlClient, ScmClient
from sandbox.testing import poll_until
from sandbox.wellknown import INTEGRATION_IDENTITY
from tests.bridge.test_worker_claims import _queue_db, _seqs, _unit, check_claims_keep_records_in_order
from tests.postgres import PostgresForTests

pytestmark = pytest.mark.live

CUSTOMERS = "customers-accounts"


def test_claims_keep_each_records_changes_in_order_between_owners_on_postgresql(pg_urls: dict[str, str]) -> None:
    db = _queue_db(pg_urls["bridge"])
    try:
        check_claims_keep_records_in_order(db)
    finally:
        db.dispose()


def test_a_unit_another_drainer_is_claiming_is_skipped_and_holds_back_its_record(pg_urls: dict[str, str]) -> None:
    """Unit 1 is locked by a claim in progress elsewhere: a claim now skips it instead of waiting, and unit 3 (same
    record) waits for it; once that claim is over, units 1 and 3 are free again."""
    db = _queue_db(pg_urls["bridge"])
    try:
        queue = WorkQueue(db, owner="host-b:1:b")
        queue.add("scm", 0, [_unit(1, "k1"), _unit(2, "k2"), _unit(3, "k1"), _unit(4, "k3")], 4)
        work = WorkRow.__table__  # type: ignore[attr-defined]
        with db.engine.connect() as other:
            with other.begin():
                other.execute(sa.select(work).where(work.c.first_seq == 1).with_for_update())
                assert _seqs(queue.claim("scm", 10)) == [2, 4]
            # the other claim ended without taking unit 1 (rolled back)
        # unit 1 is free again, and unit 3 may now go with it: one claim applies a record's units in order
        assert _seqs(queue.claim("scm", 10)) == [1, 3]
        assert WorkQueue(db, owner="host-c:1:c").claim("scm", 10) == []
    finally:
        db.dispose()


@pytest.fixture
def pg_drainer_stack(pg_golden_urls: dict[str, str]) -> Iterator[Stack]:
    """The golden stack in this process, every service's state on PostgreSQL, three drainers per source."""
    config = StackConfig(memory=True, seed=1, database_urls=pg_golden_urls, drain_workers=3)
    with start_stack(config, start_maps="new") as stack:
        yield stack


def test_several_drainers_on_postgresql_apply_each_change_once_and_in_order_across_a_restart(
    pg_drainer_stack: Stack, postgres_server: PostgresForTests
) -> None:
    stack = pg_drainer_stack
    runtime = stack.bridge_runtime
    assert runtime.worker.drain_workers == 3 and runtime.worker.claims is not None
    runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    scm = ScmClient(stack.url("scm"), transport=stack.transport("scm"))
    sales_control = ControlClient(stack.url("sales"), transport=stack.transport("sales"))
    mark = int(sales_control.changes(after=0, limit=1)["latest"])
    numbers = ("US-001", "US-002", "US-003", "US-004", "US-009")
    expected: dict[str, list[str]] = {number: [] for number in numbers}
    for round_number in range(1, 5):
        if round_number == 3:  # the drainers stop and start again midway: nothing lost, nothing twice
            runtime.worker.stop()
        for number in numbers:
            name = f"{number} pg round {round_number}"
            scm.update("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": number}, {"OrganizationName": name})
            expected[number].append(name)
        if round_number == 3:
            runtime.worker.start(recover=False)

    def written() -> dict[str, list[str]]:
        changes = sales_control.changes(after=mark, limit=5000, tables=["account"])["changes"]
        names: dict[str, list[str]] = {}
        for change in changes:
            if change["identity"] == INTEGRATION_IDENTITY:
                image: dict[str, Any] = change.get("after") or {}
                names.setdefault(image.get("accountnumber") or "", []).append(image.get("name") or "")
        return names

    poll_until(lambda: written() == expected, timeout=90, message="every rename in Sales, once, in order")
    poll_until(lambda: runtime.worker.claims.waiting("scm") == 0, message="no unit waiting")  # type: ignore[union-attr]
    assert runtime.lifecycle.status(CUSTOMERS)["queued"] == 0
