"""The locks that keep the services of one stack from waiting on each other, and one stack per data folder.

**Live-sync gate.** A live-sync write holds its own service's database (SQLite has one writer) while the bridge
writes the other service. Two such writes crossing each other, one from each side, would each hold the
database the other one needs. So every transaction that may call the bridge takes the stack's
:class:`SyncGate` *before* its own database lock: one lock order (gate, then database) for every write that
can sync, so no two of them ever hold what the other waits for. The bridge's own writes (the integration
identity) and plain reads never take the gate: they call nobody while they hold a database.

**Data folder lock.** :class:`DirectoryLock` is an OS file lock (``flock``) on a file in a data folder: the
second stack on a folder in use is refused at once, naming the process that holds it. The OS releases it
when that process ends, however it ends (``kill -9`` too).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path

#: the file in a data folder that :class:`DirectoryLock` locks (it holds the pid of the holder)
LOCK_FILE_NAME = "sandbox.lock"


class SyncGate:
    """The live-sync gate of one stack (see the module docstring), shared by the services of that stack.

    Re-entrant per thread: in one process the bridge's write to the other service runs in the writing
    thread, and a write that may sync there must not wait for itself.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, timeout: float) -> bool:
        """Take the gate, waiting at most ``timeout`` seconds; whether it was taken."""
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


class FileSyncGate(SyncGate):
    """The live-sync gate shared by services in different processes (``sandbox up --wire processes``): an OS
    file lock (``flock``) on ``path``, taken after a lock of this process's threads. Re-entrant per thread."""

    #: seconds between two tries of the file lock while another process holds it
    POLL_SECONDS = 0.001

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None
        self._depth = 0  # guarded by self._lock

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            return False
        if self._depth == 0:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self._lock.release()
                        return False
                    time.sleep(self.POLL_SECONDS)
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        """Close the lock file (the gate must not be held)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


#: the service option (``ServiceConfig.options``) naming the file of a :class:`FileSyncGate` that services in
#: several processes share
SYNC_GATE_OPTION = "sync_gate_file"


class DirectoryInUse(RuntimeError):
    """Another process holds the data folder's lock."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"The data directory {directory} is in use by {holder} (another 'sandbox up'?). "
            "Stop that one first, or pass another --data-dir (or --memory)."
        )
        self.directory = directory
        self.pid = pid


class DirectoryLock:
    """An exclusive lock on a data folder for as long as this object holds it (:meth:`acquire`, :meth:`release`).

    The lock is ``flock`` on :data:`LOCK_FILE_NAME` in the folder: released by the OS when the holding process
    exits or is killed, so a crashed stack never leaves a stale lock behind. The file keeps the holder's pid,
    which the refusal names.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock or raise :class:`DirectoryInUse` at once (never waits)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DirectoryInUse(self.directory.resolve(), pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock (safe to call twice). The file stays: removing it could race with a new holder."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
