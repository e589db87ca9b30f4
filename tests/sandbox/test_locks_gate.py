"""The live-sync gate: fair hand-over in arrival order, sides that share it, in one process and through the file
that processes share. Order is checked with events and the gate's own queue, never with timing."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.db import Database
from sandbox.locks import EXCLUSIVE, FileSyncGate, SyncGate, Ticket, admit, holds, side_code
from sandbox.testing import poll_until

WAIT = 30.0  # seconds a waiter in these tests may wait: only ever reached when the gate is broken


class Holder:
    """A thread that takes ``gate`` for ``side``, says whether it got it, and holds it until :meth:`let_go`."""

    def __init__(self, gate: SyncGate, side: str | None, log: list[str] | None = None, name: str = "") -> None:
        self.gate, self.side, self.log, self.name = gate, side, log, name
        self.result: bool | None = None
        self.taken = threading.Event()
        self._go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.gate.acquire(WAIT, self.side)
        if self.result and self.log is not None:
            self.log.append(self.name)
        self.taken.set()
        if self.result:
            self._go.wait(WAIT)
            self.gate.release()

    def let_go(self) -> None:
        self._go.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def _try_in_thread(gate: SyncGate, side: str | None) -> bool:
    """Whether another thread gets ``gate`` for ``side`` at once (it lets go straight away)."""
    result: list[bool] = []

    def attempt() -> None:
        got = gate.acquire(0, side)
        result.append(got)
        if got:
            gate.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(WAIT)
    return result[0]


def _queue_behind(gate: SyncGate, count: int, log: list[str], sides: list[str | None]) -> list[threading.Thread]:
    """``count`` threads lining up one after another (each once the one before is seen waiting); each logs its
    name when it gets the gate and lets go at once."""
    threads = []
    for index in range(count):
        name = f"w{index}"

        def run(name: str = name, side: str | None = sides[index]) -> None:
            assert gate.acquire(WAIT, side)
            log.append(name)
            gate.release()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        poll_until(lambda index=index: gate.waiting() == index + 1, timeout=WAIT, message=f"{name} did not queue")
        threads.append(thread)
    return threads


def _gates(kind: str, tmp_path: Path) -> tuple[SyncGate, SyncGate, Callable[[], None]]:
    """Two handles on one gate: the same object in one process, or two file gates on one file (as two
    processes have: each its own open file)."""
    if kind == "memory":
        gate = SyncGate()
        return gate, gate, lambda: None
    first, second = FileSyncGate(tmp_path / "gate.lock"), FileSyncGate(tmp_path / "gate.lock")

    def close() -> None:
        first.close()
        second.close()

    return first, second, close


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_the_gate_is_handed_over_in_arrival_order_and_a_releasing_holder_queues_behind(
    kind: str, tmp_path: Path
) -> None:
    """Three waiters line up while the gate is held; the holder lets go and asks again at once: the waiters get
    it in the order they came, the old holder last (a plain lock lets the releasing thread take it back)."""
    one, other, close = _gates(kind, tmp_path)
    log: list[str] = []
    try:
        assert one.acquire(WAIT)
        threads = _queue_behind(other, 3, log, [None, None, None])
        one.release()
        assert one.acquire(WAIT)
        log.append("holder again")
        one.release()
        for thread in threads:
            thread.join(WAIT)
        assert log == ["w0", "w1", "w2", "holder again"]
    finally:
        close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_one_side_shares_the_gate_and_the_other_side_waits_its_turn(kind: str, tmp_path: Path) -> None:
    """Writes from one side (a row-locking store) hold the gate together; a write from the other side waits
    until they are out, and a later write from the first side waits behind it (no overtaking)."""
    one, other, close = _gates(kind, tmp_path)
    log: list[str] = []
    try:
        sales = Holder(one, "sales", log, "sales-1")
        assert sales.taken.wait(WAIT) and sales.result
        assert _try_in_thread(other, "sales")  # the same side goes in beside it
        assert not _try_in_thread(other, "scm")  # the other side does not
        scm = Holder(other, "scm", log, "scm-1")
        poll_until(lambda: other.waiting() == 1, timeout=WAIT, message="scm did not queue")
        assert not _try_in_thread(one, "sales")  # behind the waiting scm write, not beside the holder
        late_sales = Holder(one, "sales", log, "sales-2")
        poll_until(lambda: other.waiting() == 2, timeout=WAIT, message="sales-2 did not queue")
        sales.let_go()
        assert scm.taken.wait(WAIT) and scm.result
        assert not late_sales.taken.is_set()
        scm.let_go()
        assert late_sales.taken.wait(WAIT) and late_sales.result
        late_sales.let_go()
        assert log == ["sales-1", "scm-1", "sales-2"]
    finally:
        close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_request_without_a_side_shares_with_nobody(kind: str, tmp_path: Path) -> None:
    one, other, close = _gates(kind, tmp_path)
    try:
        alone = Holder(one, None)
        assert alone.taken.wait(WAIT) and alone.result
        assert not _try_in_thread(other, None) and not _try_in_thread(other, "sales")
        alone.let_go()
        sales = Holder(one, "sales")
        assert sales.taken.wait(WAIT) and sales.result
        assert not _try_in_thread(other, None)
        sales.let_go()
        assert _try_in_thread(other, None)
    finally:
        close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_waiter_that_gives_up_leaves_the_line(kind: str, tmp_path: Path) -> None:
    """A request that times out is no longer in line: it does not keep a later request of the holder's side
    out, and the holder's side goes in as before."""
    one, other, close = _gates(kind, tmp_path)
    try:
        sales = Holder(one, "sales")
        assert sales.taken.wait(WAIT) and sales.result
        assert not _try_in_thread(other, "scm")
        assert other.waiting() == 0
        assert _try_in_thread(other, "sales")
        sales.let_go()
    finally:
        close()


def test_the_gate_is_reentrant_per_thread_whatever_the_side() -> None:
    """A thread that holds the gate takes it again at once (the bridge's write in the writing thread), and the
    gate is free only after the last release."""
    gate = SyncGate()
    assert gate.acquire(WAIT, "sales") and gate.acquire(0, "scm") and gate.held_by_this_thread
    gate.release()
    assert not _try_in_thread(gate, "scm")
    gate.release()
    assert not gate.held_by_this_thread and _try_in_thread(gate, "scm")


def test_releasing_a_gate_not_held_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        SyncGate().release()


def test_the_admission_rule() -> None:
    """With no holder the oldest waiter goes in, with every waiter of its side; beside holders, only the waiters
    of their side that no waiter of the other side came before; a request without a side goes alone."""
    sales, scm = side_code("sales"), side_code("scm")

    def let_in(queue: list[Ticket]) -> list[bool]:
        return [ticket.holding for ticket in admit(queue)]

    assert let_in([Ticket(1, sales, 1), Ticket(2, scm, 1), Ticket(3, sales, 1)]) == [True, False, True]
    holding = Ticket(1, sales, 1, holding=True)
    assert let_in([holding, Ticket(2, sales, 1), Ticket(3, scm, 1), Ticket(4, sales, 1)]) == [True, True, False, False]
    assert let_in([Ticket(1, scm, 1, holding=True), Ticket(2, sales, 1)]) == [True, False]
    alone = [Ticket(1, EXCLUSIVE, 1), Ticket(2, EXCLUSIVE, 1), Ticket(3, sales, 1)]
    assert let_in(alone) == [True, False, False]
    assert let_in([Ticket(1, EXCLUSIVE, 1, holding=True), Ticket(2, EXCLUSIVE, 1)]) == [True, False]
    assert side_code(None) == EXCLUSIVE and sales != EXCLUSIVE and sales != scm
    assert holds(admit(alone), 1) and not holds(admit(alone), 2)
    with pytest.raises(KeyError):
        holds(alone, 99)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_when_a_side_gets_the_gate_all_its_waiters_go_in_together(kind: str, tmp_path: Path) -> None:
    """sales-1 holds; scm-1, sales-2 and scm-2 line up in that order. When sales-1 lets go, both scm writes go in
    together (scm-2 too, although sales-2 came before it); sales-2 goes in once both are out."""
    one, other, close = _gates(kind, tmp_path)
    log: list[str] = []
    try:
        sales = Holder(one, "sales", log, "sales-1")
        assert sales.taken.wait(WAIT) and sales.result
        waiters = []
        for count, (side, name) in enumerate([("scm", "scm-1"), ("sales", "sales-2"), ("scm", "scm-2")], start=1):
            waiters.append(Holder(other if side == "scm" else one, side, log, name))
            poll_until(lambda count=count: other.waiting() == count, timeout=WAIT, message=f"{name} did not queue")
        scm_1, sales_2, scm_2 = waiters
        sales.let_go()
        assert scm_1.taken.wait(WAIT) and scm_2.taken.wait(WAIT) and scm_1.result and scm_2.result
        assert not sales_2.taken.is_set() and other.waiting() == 1
        scm_1.let_go()
        assert not sales_2.taken.is_set()  # scm-2 still holds
        scm_2.let_go()
        assert sales_2.taken.wait(WAIT) and sales_2.result
        sales_2.let_go()
        assert log[0] == "sales-1" and sorted(log[1:3]) == ["scm-1", "scm-2"] and log[3] == "sales-2"
    finally:
        close()


HOLD_GATE = """
import sys
from sandbox.locks import FileSyncGate
gate = FileSyncGate(sys.argv[1])
assert gate.acquire(30, sys.argv[2] or None)
print("held", flush=True)
sys.stdin.read()
"""


def _holder_process(path: Path, side: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_GATE, str(path), side],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("reaped", [True, False])
def test_a_process_killed_while_it_holds_the_file_gate_does_not_block_it(tmp_path: Path, reaped: bool) -> None:
    """kill -9 of a holder leaves its request in the file; the next waiter finds the process gone (or a zombie
    its parent has not reaped yet) and drops it."""
    holder = _holder_process(tmp_path / "gate.lock", "")
    gate = FileSyncGate(tmp_path / "gate.lock")
    try:
        assert not gate.acquire(0)
        holder.send_signal(signal.SIGKILL)
        if reaped:
            holder.wait(WAIT)
        else:
            stat = Path(f"/proc/{holder.pid}/stat")
            poll_until(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", timeout=WAIT)
        assert gate.acquire(WAIT)
        gate.release()
        assert gate.waiting() == 0
    finally:
        gate.close()
        holder.wait(WAIT)


def test_processes_on_one_side_share_the_file_gate_and_the_other_side_waits(tmp_path: Path) -> None:
    """Another process holds the gate for sales: this one joins it for sales, not for scm, until it lets go."""
    holder = _holder_process(tmp_path / "gate.lock", "sales")
    gate = FileSyncGate(tmp_path / "gate.lock")
    try:
        assert gate.acquire(0, "sales")
        gate.release()
        assert not gate.acquire(0, "scm")
        assert holder.stdin is not None
        holder.stdin.close()  # the holder reads to the end of its input, then exits (and lets go)
        holder.wait(WAIT)
        assert gate.acquire(WAIT, "scm")
        gate.release()
    finally:
        gate.close()
        if holder.poll() is None:
            holder.kill()
            holder.wait(WAIT)


# ---- how a database takes the gate ---------------------------------------------------------------------------
class RecordingGate(SyncGate):
    """A gate that notes the sides it is asked for and when it is let go."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def acquire(self, timeout: float, side: str | None = None) -> bool:
        self.events.append(f"acquire {side}")
        return super().acquire(timeout, side)

    def release(self) -> None:
        self.events.append("release")
        super().release()


def _write_through(database: Database, events: list[str]) -> None:
    with database.transaction():
        database.before_commit(lambda: events.append("live sync"))
        database.after_commit(lambda: events.append("committed"))


def test_on_sqlite_a_write_takes_the_gate_alone_and_lets_go_after_the_live_sync_before_the_commit() -> None:
    events: list[str] = []
    database = Database("sqlite://", [])
    database.sync_gate, database.sync_side = RecordingGate(events), "sales"
    try:
        _write_through(database, events)
        with database.transaction(may_sync=False):
            pass
    finally:
        database.dispose()
    assert events == ["acquire None", "live sync", "release", "committed"]


def test_on_postgresql_a_write_takes_the_gate_for_its_service(pg_urls: dict[str, str]) -> None:
    events: list[str] = []
    database = Database(pg_urls["sales"], [])
    database.sync_gate, database.sync_side = RecordingGate(events), "sales"
    try:
        _write_through(database, events)
    finally:
        database.dispose()
    assert events == ["acquire sales", "live sync", "release", "committed"]


def test_a_failed_live_sync_lets_go_of_the_gate_once() -> None:
    events: list[str] = []
    database = Database("sqlite://", [])
    gate = RecordingGate(events)
    database.sync_gate = gate

    def refuse() -> None:
        raise ValueError("the bridge refused")

    try:
        with pytest.raises(ValueError), database.transaction():
            database.before_commit(refuse)
    finally:
        database.dispose()
    assert events == ["acquire None", "release"] and not gate.held_by_this_thread


def test_a_queue_file_of_another_format_is_taken_for_an_empty_queue(tmp_path: Path) -> None:
    """A file an older sandbox left (its format had no header mark), naming a process that is alive: read as
    that format it would be garbage, and a request of a live process is never dropped; the gate starts over."""
    path = tmp_path / "gate.lock"
    alive = os.getppid()  # a live process that never lets go
    old_entries = [struct.pack("<QIIQ", number, EXCLUSIVE, alive, 0) for number in (6, 9)]
    path.write_bytes(struct.pack("<QI", 10, len(old_entries)) + b"".join(old_entries))
    gate = FileSyncGate(path)
    try:
        assert gate.acquire(0)
        assert gate.waiting() == 0
        gate.release()
    finally:
        gate.close()
