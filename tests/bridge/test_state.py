"""The bridge's own tables (bridge/state.py): what is kept in memory and what is written in bulk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.state import BridgeMetadata, BridgeState, TraceRow
from sandbox.db import Database


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


def test_traces_go_in_together_and_the_log_is_trimmed_to_its_cap(state: BridgeState,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.state as module

    monkeypatch.setattr(module, "TRACE_CAP", 150)
    state.traces([("m", "to_sales", {"k": i}, "upsert", {}, {}, {}, True) for i in range(120)])
    state.traces([("m", "to_sales", {"k": i}, "upsert", {}, {}, {}, True) for i in range(120, 260)])
    rows = state.rows(TraceRow, "m", limit=1000)
    assert len(rows) == 150 and rows[0]["id"] == 260 and rows[-1]["id"] == 111
