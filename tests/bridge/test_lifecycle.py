"""Map lifecycle: pause queues, resume catches up in order or skips, catch-up errors retry, alerts, restarts."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.state import ActivityRow, CatchupErrorRow, TraceRow
from sandbox.clients import ServiceError
from sandbox.testing import poll_until

CUSTOMERS = "customers-accounts"


def names_written_to_sales(sandbox: Any, account: str) -> list[str]:
    """The names the bridge wrote to Sales for one account, oldest first (from the record's traces)."""
    rows = sandbox.runtime.state.rows(TraceRow, CUSTOMERS, limit=1000)
    return [
        r["payload"].get("name")
        for r in reversed(rows)
        if r["direction"] == "to_sales" and r["ok"] and account in str(r["key"])
    ]


def test_pause_queues_changes_and_catchup_replays_every_write_in_order(sandbox: Any) -> None:
    """While paused, SCM writes commit and queue; resume (catch-up) replays A -> B -> C in order, then live."""
    life = sandbox.runtime.lifecycle
    assert life.pause(CUSTOMERS)["state"] == "Paused"
    for name in ("Alpha", "Bravo", "Charlie"):
        sandbox.rename_customer("US-001", name)
    assert sandbox.account_name("US-001") not in ("Alpha", "Bravo", "Charlie")
    status = life.status(CUSTOMERS)
    assert status["queued"] == 3
    assert [c["key"]["CustomerAccount"] for c in life.queued(CUSTOMERS)] == ["US-001"] * 3

    resumed = life.resume(CUSTOMERS, "catchup")

    assert resumed["state"] == "Running" and resumed["queued"] == 0
    assert sandbox.account_name("US-001") == "Charlie"
    assert names_written_to_sales(sandbox, "US-001")[-3:] == ["Alpha", "Bravo", "Charlie"]
    sandbox.rename_customer("US-001", "Delta")  # live again
    assert sandbox.account_name("US-001") == "Delta"


def test_resume_skip_keep_moves_the_queue_to_catchup_errors_and_retry_completes_them(sandbox: Any) -> None:
    """Skip to live keeping the queue: nothing is applied, every queued change becomes a catch-up error;
    Retry all applies them in their original order."""
    life = sandbox.runtime.lifecycle
    before = sandbox.account_name("US-002")
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-002", "Kept one")
    sandbox.rename_customer("US-002", "Kept two")

    status = life.resume(CUSTOMERS, "skip_keep")

    assert status["state"] == "Running" and status["catchup_errors"] == 2
    assert sandbox.account_name("US-002") == before
    errors = sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS)
    assert {e["message"] for e in errors} == {"Skipped to live sync"}

    result = life.retry_catchup(CUSTOMERS)

    assert result == {"retried": 2, "completed": 2, "failed": 0}
    assert sandbox.account_name("US-002") == "Kept two"
    assert life.status(CUSTOMERS)["catchup_errors"] == 0


def test_resume_skip_discard_drops_the_queue(sandbox: Any) -> None:
    """Skip to live discarding the queue: the queued change is never applied and leaves no error."""
    life = sandbox.runtime.lifecycle
    before = sandbox.account_name("US-003")
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-003", "Discarded")

    status = life.resume(CUSTOMERS, "skip_discard")

    assert status["state"] == "Running" and status["catchup_errors"] == 0 and status["queued"] == 0
    assert sandbox.account_name("US-003") == before
    sandbox.rename_customer("US-003", "After discard")
    assert sandbox.account_name("US-003") == "After discard"


def test_catchup_against_a_failing_target_keeps_catchup_errors_that_retry_completes(sandbox: Any) -> None:
    """Catch-up writes the target refuses (503 on Sales' $batch) become catch-up errors with the reason;
    once the target is healthy again, Retry completes them."""
    life = sandbox.runtime.lifecycle
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-001", "Retry me 1")
    sandbox.rename_customer("US-002", "Retry me 2")
    sandbox.sales_control.fail_bridge_writes(503, times=2)

    status = life.resume(CUSTOMERS, "catchup")

    assert status["state"] == "Running" and status["catchup_errors"] == 2
    errors = sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS)
    assert all("Sales" in e["message"] for e in errors), errors
    assert sandbox.account_name("US-001") != "Retry me 1"

    result = life.retry_catchup(CUSTOMERS)

    assert result["completed"] == 2 and result["failed"] == 0
    assert sandbox.account_name("US-001") == "Retry me 1"
    assert sandbox.account_name("US-002") == "Retry me 2"
    completed = sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS, status="Completed")
    assert len(completed) == 2


def test_retrying_only_selected_catchup_errors_leaves_the_others(sandbox: Any) -> None:
    """Retry selected: only the given ids are retried."""
    life = sandbox.runtime.lifecycle
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-001", "Selected")
    sandbox.rename_customer("US-002", "Not selected")
    life.resume(CUSTOMERS, "skip_keep")
    errors = sandbox.runtime.state.rows(CatchupErrorRow, CUSTOMERS)
    chosen = next(e["id"] for e in errors if e["change"]["key"]["CustomerAccount"] == "US-001")

    result = life.retry_catchup(CUSTOMERS, [chosen])

    assert result == {"retried": 1, "completed": 1, "failed": 0}
    assert sandbox.account_name("US-001") == "Selected"
    assert sandbox.account_name("US-002") != "Not selected"


def test_alert_rule_pauses_the_map_after_n_errors_and_later_writes_queue(sandbox: Any) -> None:
    """Two failed syncs within the window trigger the rule: the map pauses; later writes queue, none lost."""
    life = sandbox.runtime.lifecycle
    life.set_alerts(CUSTOMERS, [{"count": 2, "window_seconds": 60, "action": "pause"}])
    sandbox.sales_control.fail_bridge_writes(503, times=2)
    for attempt in range(2):
        with pytest.raises(ServiceError):  # live sync: both or neither, the SCM write fails too
            sandbox.rename_customer("US-004", f"Refused {attempt}")

    poll_until(lambda: life.status(CUSTOMERS)["state"] == "Paused", message="the alert to pause the map")
    sandbox.rename_customer("US-004", "Queued while paused")
    assert life.status(CUSTOMERS)["queued"] == 1
    life.resume(CUSTOMERS)
    assert sandbox.account_name("US-004") == "Queued while paused"


def test_alert_rule_can_stop_the_map(sandbox: Any) -> None:
    """An alert rule with action stop sets the map to Not running."""
    life = sandbox.runtime.lifecycle
    life.set_alerts(CUSTOMERS, [{"count": 1, "window_seconds": 60, "action": "stop"}])
    sandbox.sales_control.fail_bridge_writes(400, times=1)
    with pytest.raises(ServiceError):
        sandbox.rename_customer("US-004", "Refused")
    poll_until(lambda: life.status(CUSTOMERS)["state"] == "Not running", message="the alert to stop the map")


class Killed(BaseException):
    """Stands in for the process dying (a BaseException, so no handler in the bridge catches it)."""


def test_a_bridge_killed_mid_catchup_resumes_on_restart_without_losing_or_duplicating(sandbox: Any) -> None:
    """A bridge that dies during catch-up (after applying a change, before moving its queue position) is
    restarted on the same database: it finishes the catch-up by itself, applying each queued change
    exactly once, and the map ends Running."""
    runtime = sandbox.runtime
    runtime.lifecycle.pause(CUSTOMERS)
    names = ["One", "Two", "Three", "Four"]
    for index, name in enumerate(names):
        sandbox.rename_customer(f"US-00{index + 1}", name)
    mark = sandbox.sales_seq()
    original = runtime.state.mark_applied
    calls = {"n": 0}

    def dies_on_the_third(source: str, entries: list[tuple[str, str, int]]) -> None:
        original(source, entries)
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed()

    runtime.state.mark_applied = dies_on_the_third  # type: ignore[method-assign]
    with pytest.raises(Killed):
        runtime.lifecycle.resume(CUSTOMERS, "catchup")
    assert runtime.lifecycle.status(CUSTOMERS)["state"] == "Resuming"
    assert len(sandbox.bridge_writes_to_sales(mark)) == 3

    restarted = sandbox.restart_bridge()

    poll_until(
        lambda: restarted.lifecycle.status(CUSTOMERS)["state"] == "Running",
        timeout=10,
        message="the restarted bridge to finish the catch-up",
    )
    writes = sandbox.bridge_writes_to_sales(mark)
    assert len(writes) == 4, writes  # the third was applied before the kill and is not applied again
    assert [sandbox.account_name(f"US-00{i + 1}") for i in range(4)] == names
    assert restarted.lifecycle.status(CUSTOMERS)["queued"] == 0


def test_map_state_and_counters_survive_a_restart(sandbox: Any) -> None:
    """Lifecycle state, counters and catch-up errors live in the bridge database, not in memory."""
    life = sandbox.runtime.lifecycle
    synced = life.status(CUSTOMERS)["synced"]
    life.pause(CUSTOMERS)
    sandbox.rename_customer("US-001", "Queued before restart")

    restarted = sandbox.restart_bridge()

    status = restarted.lifecycle.status(CUSTOMERS)
    assert status["state"] == "Paused" and status["queued"] == 1 and status["synced"] == synced
    restarted.lifecycle.resume(CUSTOMERS)
    assert sandbox.account_name("US-001") == "Queued before restart"


def test_a_running_initial_sync_shows_its_progress_in_the_map_status(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it writes, the status carries what it read and sent; once done the progress is gone."""
    lifecycle = sandbox.runtime.lifecycle
    lifecycle.stop(CUSTOMERS)
    for index in range(3):
        sandbox.create_customer(f"PG-00{index}", f"Progress {index}")
    seen: list[dict[str, Any]] = []
    initial = lifecycle.initial
    write_sales = initial._write_sales

    def watching(*args: Any, **kwargs: Any) -> int:
        seen.append(lifecycle.status(CUSTOMERS).get("initial_sync_progress") or {})
        return write_sales(*args, **kwargs)

    monkeypatch.setattr(initial, "_write_sales", watching)
    lifecycle.run(CUSTOMERS, initial_sync=True, master="scm")
    assert seen and seen[0]["phase"] == "writing" and seen[0]["read_scm"] >= 3 and seen[0]["to_write"] >= 3
    assert "initial_sync_progress" not in lifecycle.status(CUSTOMERS)


def test_a_second_initial_sync_of_a_map_is_refused_while_the_first_runs(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one map's initial sync would share (and drop) one progress: the second gets a 409 and the
    first ends Running."""
    from sandbox.errors import Conflict

    lifecycle = sandbox.runtime.lifecycle
    lifecycle.stop(CUSTOMERS)
    initial = lifecycle.initial
    original = initial._run
    refused: list[Exception] = []

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        try:
            lifecycle.run(CUSTOMERS, initial_sync=True, master="scm")
        except Conflict as exc:
            refused.append(exc)
        return original(*args, **kwargs)

    monkeypatch.setattr(initial, "_run", meanwhile)
    lifecycle.run(CUSTOMERS, initial_sync=True, master="scm")
    assert len(refused) == 1 and "running already" in str(refused[0])
    assert lifecycle.status(CUSTOMERS)["state"] == "Running" and CUSTOMERS not in initial.progress


def test_recovery_reruns_only_what_the_previous_run_left_initializing(sandbox: Any) -> None:
    """A map Initializing because this run just started it is not the previous run's: recovery leaves it."""
    runtime = sandbox.runtime
    runtime.state.update_map(CUSTOMERS, state="Initializing")
    runtime.worker.recover({CUSTOMERS: "Not running"})
    assert runtime.lifecycle.status(CUSTOMERS)["state"] == "Initializing"
    runtime.worker.recover({CUSTOMERS: "Initializing"})
    assert runtime.lifecycle.status(CUSTOMERS)["state"] == "Running"
    assert any(
        "Restarted during initial sync" in a["message"] for a in runtime.state.rows(ActivityRow, CUSTOMERS, limit=20)
    )
