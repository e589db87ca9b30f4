"""Several async drainers per source (``drain_workers`` > 1): the claims that share a feed between them keep each
record's changes in feed order, transactions whole, parents before children, and nothing lost or applied twice
across a stop, a restart or a drainer that died holding claims (bridge.claims)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.claims import Unit, WorkQueue, WorkRow, read_cursor_name
from bridge.state import BridgeMetadata, CatchupErrorRow
from bridge.worker import AsyncWorker
from sandbox.db import Database
from sandbox.testing import poll_until

CUSTOMERS = "customers-accounts"
GROUPS = "customer-groups"


# ---- the claim rules, on the queue itself -----------------------------------------------------------------------
def _unit(seq: int, key: str, table: str = "CustomerV3", parents: tuple[str, ...] = ()) -> Unit:
    change = {"seq": seq, "table": table, "key": {"k": key}, "transaction_id": f"t{seq}"}
    return Unit("scm", seq, seq, [change], frozenset({f"{table}|{key}"}), frozenset({table}), frozenset(parents))


def _seqs(units: list[Unit]) -> list[int]:
    return [unit.first_seq for unit in units]


def _dead_owner() -> str:
    """A claim owner on this host whose process has ended (a drainer killed while holding claims)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}:gone"


def _queue_db(url: str = "sqlite://") -> Database:
    db = Database(url, [BridgeMetadata.metadata])
    db.create_all()
    return db


def check_claims_keep_records_in_order(db: Database) -> None:
    """Two owners share interleaved keys: a unit never goes to one owner while an earlier unit of its record is the
    other's; one owner's own claim may hold two units of one record (it applies them in order)."""
    first, second = WorkQueue(db, owner="host-a:1:a"), WorkQueue(db, owner="host-b:1:b")
    assert first.add("scm", 0, [_unit(1, "k1"), _unit(2, "k2"), _unit(3, "k1"), _unit(4, "k2"), _unit(5, "k3")], 9)

    assert _seqs(first.claim("scm", 1)) == [1]
    assert _seqs(second.claim("scm", 10)) == [2, 4, 5]  # 3 waits: its record's unit 1 is the first owner's
    assert first.claim("scm", 10) == [] and second.claim("scm", 10) == []
    assert first.done("scm", [_unit(1, "k1")]) == 1  # handled through seq 1: unit 2 still waits
    assert _seqs(first.claim("scm", 10)) == [3]
    second.done("scm", [_unit(2, "k2"), _unit(4, "k2"), _unit(5, "k3")])
    assert first.done("scm", [_unit(3, "k1")]) == 9  # nothing waits: handled through the read cursor
    assert first.waiting("scm") == 0


def test_claims_keep_each_records_changes_in_order_between_owners() -> None:
    check_claims_keep_records_in_order(_queue_db())


def test_a_child_waits_while_an_earlier_unit_of_its_parent_table_is_unfinished() -> None:
    db = _queue_db()
    first, second = WorkQueue(db, owner="host-a:1:a"), WorkQueue(db, owner="host-b:1:b")
    group, customer = _unit(1, "g1", "CustomerGroup"), _unit(2, "c1", "CustomerV3", parents=("CustomerGroup",))
    first.add("scm", 0, [group, customer, _unit(3, "c2", "Other")], 3)

    assert _seqs(first.claim("scm", 1)) == [1]
    assert _seqs(second.claim("scm", 10)) == [3]  # the customer may refer to the group still being applied
    first.done("scm", [group])
    assert _seqs(second.claim("scm", 10)) == [2]


def test_claims_of_a_dead_or_lapsed_owner_are_taken_over_and_released_ones_go_back() -> None:
    db = _queue_db()
    dead, elsewhere, alive = WorkQueue(db, owner=_dead_owner()), WorkQueue(db, owner="other-host:1:x"), WorkQueue(db)
    dead.add("scm", 0, [_unit(1, "k1"), _unit(2, "k2"), _unit(3, "k3")], 3)
    assert _seqs(elsewhere.claim("scm", 1)) == [1]
    assert _seqs(dead.claim("scm", 1)) == [2]

    assert _seqs(alive.claim("scm", 10)) == [2, 3]  # the dead process's claim at once; the other host's lease holds
    work = WorkRow.__table__  # type: ignore[attr-defined]
    with db.transaction() as connection:
        connection.execute(
            sa.update(work)
            .where(work.c.first_seq == 1)
            .values(claimed_until=dt.datetime.now(dt.UTC).replace(year=2000))
        )
    assert _seqs(alive.claim("scm", 10)) == [1]  # its lease ran out
    alive.release("scm")
    assert _seqs(WorkQueue(db).claim("scm", 10)) == [1, 2, 3]


def test_a_page_copied_twice_adds_its_units_once() -> None:
    """Two readers of the same page: the one that finds the read cursor moved adds nothing."""
    db = _queue_db()
    queue = WorkQueue(db)
    assert queue.add("scm", 0, [_unit(1, "k1")], 5)
    assert not queue.add("scm", 0, [_unit(1, "k1")], 5)
    assert queue.waiting("scm") == 1 and queue.read_cursor("scm") == 5


# ---- drainers in the sandbox ------------------------------------------------------------------------------------
def with_drainers(sandbox: Any, count: int) -> AsyncWorker:
    """Replace the sandbox bridge's drainers with ``count`` per source (stopped: the test starts them)."""
    runtime = sandbox.runtime
    runtime.worker.stop()
    worker = AsyncWorker(
        runtime.engine, runtime.state, runtime.lifecycle, runtime.controls, poll_wait=0.2, drain_workers=count
    )
    runtime.lifecycle.attach_drainer(worker)
    runtime.worker = worker
    return worker


def sales_names_written(sandbox: Any, after: int) -> dict[str, list[str]]:
    """The account names the bridge wrote in Sales after seq ``after``, per account number, in write order."""
    written: dict[str, list[str]] = {}
    for change in sandbox.bridge_writes_to_sales(after):
        image = change.get("after") or {}
        written.setdefault(image.get("accountnumber"), []).append(image.get("name"))
    return written


NUMBERS = ("US-001", "US-002", "US-003", "US-004", "US-009")


def rename_interleaved(sandbox: Any, rounds: int) -> dict[str, list[str]]:
    """Rename every customer of :data:`NUMBERS` once per round, round after round; the names per customer."""
    names: dict[str, list[str]] = {number: [] for number in NUMBERS}
    for round_number in range(1, rounds + 1):
        for number in NUMBERS:
            name = f"{number} round {round_number}"
            sandbox.rename_customer(number, name)
            names[number].append(name)
    return names


def test_several_drainers_apply_each_records_changes_once_and_in_feed_order(quiet_sandbox: Any) -> None:
    sandbox = quiet_sandbox
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    worker = with_drainers(sandbox, 3)
    mark = sandbox.sales_seq()
    names = rename_interleaved(sandbox, 4)

    worker.start(recover=False)
    poll_until(lambda: sales_names_written(sandbox, mark) == names, timeout=60, message="every rename, once, in order")
    poll_until(lambda: sandbox.runtime.lifecycle.status(CUSTOMERS)["queued"] == 0, message="an empty queue")
    assert worker.claims is not None and worker.claims.waiting("scm") == 0
    latest = sandbox.scm_control.changes(after=0, limit=1)["latest"]
    assert worker.state.cursor("scm") == worker.claims.read_cursor("scm") and worker.state.cursor("scm") <= latest
    assert sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS) == []
    assert sandbox.bridge.get("/api/async").json["drain_workers"] == 3


def test_the_queue_and_lag_count_what_the_drainers_have_not_handled(quiet_sandbox: Any) -> None:
    """Copied into units but not yet applied still counts as queued; applied, the queue is empty."""
    sandbox = quiet_sandbox
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    worker = with_drainers(sandbox, 2)
    sandbox.rename_customer("US-001", "Queued 1")
    sandbox.rename_customer("US-002", "Queued 2")
    assert worker.claims is not None
    maps = worker.async_maps("scm")
    worker._copy("scm", maps, {m.id: worker.floor(m, "scm") for m in maps}, wait=0.0, eager=True)
    assert worker.claims.waiting("scm") == 2

    status = sandbox.runtime.lifecycle.status(CUSTOMERS)
    assert status["queued"] == 2 and status["lag_seconds"] is not None and status["lag_seconds"] >= 0.0

    worker.drain("scm")
    status = sandbox.runtime.lifecycle.status(CUSTOMERS)
    assert status["queued"] == 0 and status["lag_seconds"] == 0.0
    assert sandbox.account_name("US-002") == "Queued 2"


def test_a_parent_created_before_its_child_reaches_sales_first_under_several_drainers(quiet_sandbox: Any) -> None:
    """New customer groups, each followed by a customer in it, both maps async: every customer arrives with its
    group, with no failure, retry or catch-up error (the customer never overtakes its group)."""
    sandbox = quiet_sandbox
    lifecycle = sandbox.runtime.lifecycle
    lifecycle.run(GROUPS, initial_sync=False, mode="async")
    lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    worker = with_drainers(sandbox, 4)
    events: list[str] = []
    worker.listeners.append(lambda event, _detail: events.append(event))
    numbers = [f"PC-{index:02d}" for index in range(1, 9)]
    for index, number in enumerate(numbers, start=1):
        sandbox.scm.create(
            "CustomerGroups",
            {"dataAreaId": "usmf", "CustomerGroupId": f"G{index:02d}", "Description": f"Group {index}"},
        )
        sandbox.create_customer(number, f"Child {index}", group=f"G{index:02d}")

    assert worker.claims is not None
    maps = worker.async_maps("scm")
    worker._copy("scm", maps, {m.id: worker.floor(m, "scm") for m in maps}, wait=0.0, eager=True)
    # another drainer (of another bridge process) holds the first group: none of the customers may go ahead of it
    other = WorkQueue(worker.state.db, owner="other-host:1:other")
    held = other.claim("scm", 1)
    assert [change["table"] for change in held[0].changes] == ["CustomerGroup"]
    claimed = worker.claims.claim("scm", 100)
    assert claimed and not any(change["table"] == "CustomerV3" for unit in claimed for change in unit.changes)
    worker.claims.release("scm")
    other.release("scm")

    worker.start(recover=False)
    poll_until(lambda: all(sandbox.account(number) for number in numbers), timeout=60, message="every customer")
    assert sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS) == []
    assert "retry" not in events and "kept" not in events
    assert lifecycle.status(CUSTOMERS)["failed"] == 0 and lifecycle.status(GROUPS)["failed"] == 0


def test_nothing_is_lost_or_applied_twice_across_a_stop_a_dead_drainer_and_a_restart(quiet_sandbox: Any) -> None:
    """Drainers apply part of the feed and stop; a drainer of another (killed) process left claims behind, one of
    them already applied; a new set of drainers on the same database applies everything else, each change once."""
    sandbox = quiet_sandbox
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    mark = sandbox.sales_seq()
    names = rename_interleaved(sandbox, 3)
    first = with_drainers(sandbox, 3)
    assert first.claims is not None

    copied, applied = first.drain_claimed("scm")  # one drainer's step: copies the page, applies its share
    assert copied == 15 and applied == 5
    first.start(recover=False)
    first.stop()  # whatever the threads got to, they hand back what they held
    assert all(row["owner"] is None for row in _work_rows(first))
    dead = WorkQueue(first.state.db, owner=_dead_owner())
    left = dead.claim("scm", 3)
    if left:  # the killed drainer had applied its first unit but not yet marked it done
        first.deliver("scm", left[0].changes)

    second = with_drainers(sandbox, 3)
    second.start(recover=False)
    poll_until(lambda: sales_names_written(sandbox, mark) == names, timeout=60, message="every rename, once")
    poll_until(lambda: second.claims is not None and second.claims.waiting("scm") == 0, message="no unit waiting")
    assert second.state.cursor("scm") == second.claims.read_cursor("scm")  # type: ignore[union-attr]


def _work_rows(worker: AsyncWorker) -> list[dict[str, Any]]:
    work = WorkRow.__table__  # type: ignore[attr-defined]
    with worker.state.db.transaction() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(work))]


def test_a_reset_feed_empties_the_queue_and_restarts_the_copy_at_its_latest_change(quiet_sandbox: Any) -> None:
    sandbox = quiet_sandbox
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    worker = with_drainers(sandbox, 2)
    assert worker.claims is not None
    sandbox.rename_customer("US-001", "Before reset")
    worker.drain("scm")
    assert sandbox.account_name("US-001") == "Before reset"
    worker.state.set_cursor(read_cursor_name("scm"), 10**9)  # as a long-running copier's would be after a reset
    latest = sandbox.scm_control.changes(after=0, limit=1)["latest"]

    worker.drain("scm")

    assert worker.claims.read_cursor("scm") == latest and worker.claims.waiting("scm") == 0
    sandbox.rename_customer("US-001", "After reset")
    worker.drain("scm")
    assert sandbox.account_name("US-001") == "After reset"


def test_drain_workers_below_one_are_refused() -> None:
    nothing: Any = None
    with pytest.raises(ValueError, match="at least 1"):
        AsyncWorker(nothing, nothing, nothing, {}, drain_workers=0)
