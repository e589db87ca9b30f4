"""The bridge's own tables (bridge/state.py): what is kept in memory and what is written in bulk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.state import BridgeMetadata, BridgeState, CatchupErrorRow, TraceRow
from sandbox.db import Database
from sandbox.testing import poll_until


@pytest.fixture
def state() -> Iterator[BridgeState]:
    db = Database("sqlite://", [BridgeMetadata.metadata])
    db.create_all()
    yield BridgeState(db)
    db.dispose()


def test_run_states_come_from_memory_until_a_map_changes_state(state: BridgeState) -> None:
    state.map_row("a")
    first = state.run_states()
    assert first == {"a": ("Not running", "live")} and state.run_states() is first
    state.count("a", synced=3)  # counting is not a change of state
    assert state.run_states() is first
    state.update_map("a", state="Running", mode="async")
    assert state.run_states() == {"a": ("Running", "async")}


def test_a_state_change_rolled_back_is_not_remembered(state: BridgeState) -> None:
    state.map_row("a")
    with pytest.raises(RuntimeError), state.db.transaction():
        state.update_map("a", state="Running")
        assert state.run_states()["a"][0] == "Running"  # the transaction sees its own change
        raise RuntimeError("undo")
    assert state.run_states() == {"a": ("Not running", "live")}


def test_mark_applied_only_moves_the_guard_forward_in_bulk(state: BridgeState) -> None:
    state.mark_applied("scm", [("m", "k1", 5), ("m", "k2", 7), ("m", "k1", 6)])
    state.mark_applied("scm", [("m", "k1", 4), ("m", "k2", 9), ("m", "k3", 1)])
    assert state.applied_seqs("scm", ["m"], ["k1", "k2", "k3"]) == {("m", "k1"): 6, ("m", "k2"): 9, ("m", "k3"): 1}
    assert state.applied_seqs("sales", ["m"], ["k1"]) == {}


def test_traces_go_in_together_and_the_log_is_trimmed_to_its_cap(
    state: BridgeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bridge.state as module

    monkeypatch.setattr(module, "TRACE_CAP", 150)
    state.traces([("m", "to_sales", {"k": i}, "upsert", {}, {}, {}, True) for i in range(120)])
    state.traces([("m", "to_sales", {"k": i}, "upsert", {}, {}, {}, True) for i in range(120, 260)])
    rows = state.rows(TraceRow, "m", limit=1000)
    assert len(rows) == 150 and rows[0]["id"] == 260 and rows[-1]["id"] == 111


def _trace_count(state: BridgeState) -> int:
    import sqlalchemy as sa

    with state.db.transaction() as connection:  # straight from the table: no flush first
        return int(connection.execute(sa.select(sa.func.count()).select_from(state.table(TraceRow))).scalar() or 0)


def _item(i: int) -> tuple:
    return ("m", "to_sales", {"k": i}, "create", {"seq": i}, {"name": f"n{i}"}, {"status": 204}, True)


def test_synced_writes_wait_in_memory_and_every_read_sees_them(
    state: BridgeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_synced costs no commit: the traces and counts are written by the next read of traces or maps,
    in the order recorded, and the counts add up."""
    import bridge.state as module

    monkeypatch.setattr(module, "LEDGER_DELAY_SECONDS", 60.0)  # the timer must not be what writes them here
    state.map_row("m")
    payload = {"name": "n0"}
    state.record_synced([(*_item(0)[:5], payload, *_item(0)[6:])], {"m": 1})
    payload["name"] = "changed later"  # the caller's objects are not kept: the trace shows what was sent
    state.record_synced([_item(1), _item(2)], {"m": 2})
    assert _trace_count(state) == 0
    assert state.map_row("m")["synced"] == 3 and state.map_row("m")["last_synced_at"] is not None
    assert _trace_count(state) == 3
    state.record_synced([_item(3)], {"m": 1, "other": 1})
    rows = state.rows(TraceRow, "m", limit=10)
    assert [json.loads(row["key"])["k"] for row in rows] == [3, 2, 1, 0]
    assert rows[-1]["payload"] == {"name": "n0"}
    assert state.map_rows()["other"]["synced"] == 1  # a map counted before its row existed gets one
    state.close()


def test_the_timer_writes_them_shortly_and_a_failed_write_keeps_them(
    state: BridgeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a read, the timer writes them within the delay; a flush whose transaction fails keeps them
    for the next one; a flush inside a transaction of the bridge database waits (it could roll back)."""
    import bridge.state as module

    state.map_row("m")
    state.record_synced([_item(0)], {"m": 1})
    poll_until(lambda: _trace_count(state) == 1, message="the timer's flush")

    monkeypatch.setattr(module, "LEDGER_DELAY_SECONDS", 60.0)
    state.record_synced([_item(1)], {"m": 1})
    with state.db.transaction():
        state.flush()
        assert _trace_count(state) == 1
    original = state._append_many

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(state, "_append_many", failing)
    with pytest.raises(RuntimeError):
        state.flush()
    monkeypatch.setattr(state, "_append_many", original)
    state.record_synced([_item(2)], {"m": 1})
    state.close()
    assert _trace_count(state) == 3
    assert [json.loads(row["key"])["k"] for row in state.rows(TraceRow, "m")] == [2, 1, 0]
    assert state.map_row("m")["synced"] == 3


def test_close_waits_for_a_flush_the_timer_began_and_no_flush_runs_after_it(
    state: BridgeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing while the ledger timer is writing waits for that write (disposing of the database under a
    running statement can crash SQLite); traces recorded after close stay in memory."""
    import threading

    writing, release = threading.Event(), threading.Event()
    original = state._append_many

    def slow_append(*args: object, **kwargs: object) -> None:
        writing.set()
        assert release.wait(10)
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "_append_many", slow_append)
    state.map_row("m")
    state.record_synced([("m", "to_sales", {"k": 1}, "upsert", {}, {}, {}, True)], {"m": 1})
    timer_flush = threading.Thread(target=state.flush)
    timer_flush.start()
    assert writing.wait(10)
    closer = threading.Thread(target=state.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close returned while a flush was still writing"
    release.set()
    closer.join(10)
    timer_flush.join(10)
    assert not closer.is_alive() and not timer_flush.is_alive()
    monkeypatch.setattr(state, "_append_many", original)
    assert [json.loads(row["key"]) for row in state.rows(TraceRow, "m", limit=10)] == [{"k": 1}]
    state.record_synced([("m", "to_sales", {"k": 2}, "upsert", {}, {}, {}, True)], {"m": 1})
    state.flush()
    assert state._ledger_timer is None and len(state._ledger_traces) == 1


def test_a_bridge_database_from_before_the_attempts_column_gains_it_on_start(tmp_path: Any) -> None:
    """An older bridge database whose catch-up errors have no ``attempts`` column is upgraded in place: old
    rows count one attempt, new rows keep theirs."""
    url = f"sqlite:///{(tmp_path / 'old-bridge.sqlite').as_posix()}"
    db = Database(url, [BridgeMetadata.metadata])
    try:
        db.create_all()
        with db.transaction() as connection:
            connection.execute(sa.text("DROP TABLE bridge_catchup_error"))
            connection.execute(
                sa.text(
                    "CREATE TABLE bridge_catchup_error (id INTEGER PRIMARY KEY, map_id VARCHAR NOT NULL, "
                    "source VARCHAR NOT NULL, seq INTEGER NOT NULL, transaction_id VARCHAR NOT NULL, "
                    "change VARCHAR NOT NULL, message VARCHAR NOT NULL, status VARCHAR NOT NULL, created_at DATETIME)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO bridge_catchup_error (map_id, source, seq, transaction_id, change, message, status) "
                    "VALUES ('m', 'scm', 1, 't', '{}', 'old', 'Error')"
                )
            )

        state = BridgeState(db)
        state.add_catchup_error("m", {"seq": 2}, "scm", "new", attempts=7)
        BridgeState(db)  # a second start finds the column there already

        rows = state.rows(CatchupErrorRow, "m")
        assert {row["message"]: row["attempts"] for row in rows} == {"old": 1, "new": 7}
    finally:
        db.dispose()
