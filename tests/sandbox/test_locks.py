"""The data folder lock: one holder at a time, named when refused, released however the holder ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.locks import LOCK_FILE_NAME, DirectoryInUse, DirectoryLock, FileSyncGate, SyncGate
from sandbox.testing import poll_until

HOLD = """
import sys, time
from pathlib import Path
from sandbox.locks import DirectoryLock
DirectoryLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_holder_is_refused_with_the_folder_and_the_pid_until_the_first_lets_go(tmp_path: Path) -> None:
    first = DirectoryLock(tmp_path / "data").acquire()
    with pytest.raises(DirectoryInUse) as refused:
        DirectoryLock(tmp_path / "data").acquire()
    assert refused.value.pid == os.getpid() and refused.value.directory == (tmp_path / "data").resolve()
    assert str(tmp_path / "data") in str(refused.value) and f"process {os.getpid()}" in str(refused.value)
    first.release()
    first.release()  # twice is harmless
    with DirectoryLock(tmp_path / "data") as again:
        assert again.held and (tmp_path / "data" / LOCK_FILE_NAME).exists()
    assert not again.held


def test_the_lock_goes_with_a_holder_killed_outright(tmp_path: Path) -> None:
    """kill -9 leaves no stale lock: the OS drops it with the process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUse) as refused:
            DirectoryLock(tmp_path).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    lock = poll_until(lambda: _try(tmp_path), timeout=10, message="the lock was not released by the kill")
    lock.release()


def _try(directory: Path) -> DirectoryLock | None:
    try:
        return DirectoryLock(directory).acquire()
    except DirectoryInUse:
        return None


def test_the_sync_gate_is_reentrant_for_its_holder() -> None:
    gate = SyncGate()
    assert gate.acquire(1) and gate.acquire(1)
    gate.release()
    gate.release()


def test_file_gates_on_one_file_exclude_each_other_and_are_reentrant(tmp_path: Path) -> None:
    """Two file gates on one file (as in two processes: each its own open file) never hold it together; the
    holder may take it again; once released the other gets it."""
    first, second = FileSyncGate(tmp_path / "gate.lock"), FileSyncGate(tmp_path / "gate.lock")
    try:
        assert first.acquire(1) and first.acquire(1)
        assert not second.acquire(0.05)
        first.release()
        assert not second.acquire(0.05)
        first.release()
        assert second.acquire(1)
        second.release()
    finally:
        first.close()
        second.close()
