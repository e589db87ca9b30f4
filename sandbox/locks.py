"""The locks that keep the services of one stack from waiting on each other, and one stack per data folder.

**Live-sync gate.** A live-sync write holds its own service's locks while the bridge writes the other service.
Two such writes crossing each other, one from each side, would each hold what the other one needs. So every
transaction that may call the bridge takes the stack's :class:`SyncGate` *before* its own database: one lock
order (gate, then database) for every write that can sync, so no two of them ever hold what the other waits
for. The bridge's own writes (the integration identity) and plain reads never take the gate: they call nobody
while they hold a database.

How much the gate serializes depends on the store:

- **SQLite** has one writer per database, held for the whole transaction, so every write that may sync takes
  the gate alone (``side=None``): one at a time, stack-wide.
- **Row-locking stores** (PostgreSQL): a lock cycle needs writes from *both* sides, since a write from Sales
  holds Sales rows and waits for SCM rows, and only a write from SCM can hold SCM rows while it waits for Sales
  rows. Writes that sync from the same side never wait for each other in a cycle (each waits at most for rows
  the other holds, or for the bridge's short write on the other side, which waits for nobody). So a
  transaction names its side (the service whose rows it holds) and the gate lets any number of one side in
  together; the other side waits until they are all out. Crossing writes on *different* records of opposite
  sides still take turns: a per-record gate would need the record's key before the first write, which a create
  with a number sequence, a ``$batch`` or a business action touching several records does not have.

The gate is **phase-fair**: the sides take turns in phases, and no waiter is ever overtaken for more than one
phase. While a side holds the gate, a new request of that side joins the holders only if no request of the
other side is waiting (so a stream of one side cannot starve the other); otherwise it waits. When the last
holder leaves, the oldest waiter's side gets the gate, and *every* request of that side then waiting goes in
together, also those that came after a waiter of the other side (they would otherwise trickle in one per phase
behind it, and crossing writers on a row-locking store would take turns one by one). A request without a side
(``EXCLUSIVE``) always goes alone, in arrival order: on SQLite the gate is a fair first-come-first-served lock.
A plain ``threading.RLock`` or ``flock`` polling is neither: a releasing thread can take the lock again before
a woken waiter runs.

**Data folder lock.** :class:`DirectoryLock` is an OS file lock (``flock``) on a file in a data folder: the
second stack on a folder in use is refused at once, naming the process that holds it. The OS releases it
when that process ends, however it ends (``kill -9`` too).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

#: the file in a data folder that :class:`DirectoryLock` locks (it holds the pid of the holder)
LOCK_FILE_NAME = "sandbox.lock"

#: the side of a request that shares the gate with nobody
EXCLUSIVE = 0


def side_code(side: str | None) -> int:
    """The number a side is known by in the gate's queue (the same in every process); 0 for exclusive."""
    if side is None:
        return EXCLUSIVE
    return (zlib.crc32(side.encode("utf-8")) & 0x7FFFFFFF) | 1


@dataclass(frozen=True)
class Ticket:
    """One request in the gate's queue: its place (``number``, increasing), its side and its process."""

    number: int
    side: int
    pid: int
    #: the process's start time (Linux ``/proc``): tells a live process from a new one that reuses a dead pid
    started: int = 0
    #: whether the request holds the gate (it was let in; it leaves the queue when it lets go)
    holding: bool = False


def admit(queue: list[Ticket]) -> list[Ticket]:
    """``queue`` (in arrival order) with every request let in that may hold the gate now (see the module
    docstring): beside holders of a side, the waiters of that side no waiter of the other side came before;
    with no holder, the oldest waiter, and with it every waiter of its side unless it goes alone."""
    holders = [ticket for ticket in queue if ticket.holding]
    waiting = [ticket for ticket in queue if not ticket.holding]
    if not waiting:
        return queue
    let_in: set[int] = set()
    if holders:
        side = holders[0].side
        if side != EXCLUSIVE:
            for ticket in waiting:  # the leading run of the holders' side
                if ticket.side != side:
                    break
                let_in.add(ticket.number)
    elif waiting[0].side == EXCLUSIVE:
        let_in.add(waiting[0].number)
    else:
        let_in = {ticket.number for ticket in waiting if ticket.side == waiting[0].side}
    if not let_in:
        return queue
    return [replace(ticket, holding=True) if ticket.number in let_in else ticket for ticket in queue]


def holds(queue: list[Ticket], number: int) -> bool:
    """Whether request ``number`` of ``queue`` holds the gate."""
    for ticket in queue:
        if ticket.number == number:
            return ticket.holding
    raise KeyError(number)


class _Held(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.number = -1


class SyncGate:
    """The live-sync gate of one stack (see the module docstring), shared by the services of one process.

    Phase-fair (see :func:`admit`) and re-entrant per thread: in one process the bridge's write to
    the other service runs in the writing thread, and a write that may sync there must not wait for itself (a
    nested acquisition joins the one the thread holds, whatever its side).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._queue: list[Ticket] = []
        self._next = 0
        self._held = _Held()

    # ---- the queue: kept in memory here, in a file shared by processes in FileSyncGate -------------------
    def _enqueue(self, side: int) -> Ticket:
        """Append a request (under ``self._changed``)."""
        ticket = Ticket(self._next, side, os.getpid())
        self._next += 1
        self._queue.append(ticket)
        return ticket

    def _remove(self, number: int) -> None:
        """Drop a request that leaves or gives up (under ``self._changed``)."""
        self._queue = [t for t in self._queue if t.number != number]

    def _admitted(self, number: int) -> bool:
        """Whether ``number`` holds the gate now, letting in whoever may (under ``self._changed``)."""
        self._queue = admit(self._queue)
        return holds(self._queue, number)

    def _snapshot(self) -> list[Ticket]:
        """The queue as it is (under ``self._changed``)."""
        return list(self._queue)

    def _wait_seconds(self, remaining: float) -> float:
        """How long to sleep before looking again: until a release in this process wakes us."""
        return remaining

    # ---- the interface ----------------------------------------------------------------------------------
    def acquire(self, timeout: float, side: str | None = None) -> bool:
        """Take the gate for ``side`` (None: alone), waiting at most ``timeout`` seconds in arrival order;
        whether it was taken. A thread that holds the gate already takes it again at once."""
        held = self._held
        if held.depth > 0:
            held.depth += 1
            return True
        deadline = time.monotonic() + timeout
        with self._changed:
            ticket = self._enqueue(side_code(side))
            while not self._admitted(ticket.number):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._remove(ticket.number)
                    self._changed.notify_all()  # one behind us may be admitted now
                    return False
                self._changed.wait(self._wait_seconds(remaining))
        held.depth, held.number = 1, ticket.number
        return True

    def release(self) -> None:
        """Let go of one acquisition of this thread; the last one hands the gate to the next in line."""
        held = self._held
        if held.depth <= 0:
            raise RuntimeError("release of a live-sync gate this thread does not hold")
        held.depth -= 1
        if held.depth == 0:
            with self._changed:
                self._remove(held.number)
                self._changed.notify_all()
            held.number = -1

    @property
    def held_by_this_thread(self) -> bool:
        return self._held.depth > 0

    def waiting(self) -> int:
        """How many requests are in line and not let in (for tests and diagnostics)."""
        with self._changed:
            queue = admit(self._snapshot())
        return sum(1 for ticket in queue if not ticket.holding)


class FileSyncGate(SyncGate):
    """The live-sync gate shared by services in different processes (``sandbox up --wire processes`` and
    ``--workers``): the queue of :class:`SyncGate` kept in the file ``path``, read and rewritten under a short
    ``flock``. Fair across processes (one queue in arrival order); a waiter looks again every
    :attr:`POLL_SECONDS` (or at once when a thread of its own process releases). Requests of a process that
    died (``kill -9`` too) are dropped by the next waiter that finds them, so a crash never blocks the gate.
    Re-entrant per thread."""

    #: seconds between two looks at the queue for a request of the side next in line (it is let in as soon as
    #: the holders leave), and for the others (they cannot be let in before that side): polling costs each waiter a lock
    #: and a read of the file, and the processes share few cores
    POLL_SECONDS = 0.0005
    POLL_BEHIND_SECONDS = 0.005
    #: seconds between two checks that the processes ahead in line are still alive
    LIVENESS_SECONDS = 0.1
    #: the file's format, first in the file: a file of another format (an older sandbox's, after a crash) is
    #: taken for an empty queue rather than misread
    _MAGIC = b"SGQ2"
    _HEADER = struct.Struct("<4sQI")  # format, next number, how many requests
    _ENTRY = struct.Struct("<QIIQB")  # number, side, pid, process start time, holding

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None
        self._started = _process_start(os.getpid())
        self._pid = os.getpid()
        self._checked = 0.0
        self._side_of: dict[int, int] = {}  # this process's requests in line: their sides
        self._next_up = True  # whether the request _admitted last looked at is of the side next in line

    @contextlib.contextmanager
    def _file(self) -> Iterator[int]:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid, self._started = os.getpid(), _process_start(os.getpid())
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield self._fd
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _snapshot(self) -> list[Ticket]:
        with self._file() as fd:
            return self._read(fd)[1]

    def _read(self, fd: int) -> tuple[int, list[Ticket]]:
        data = os.pread(fd, 1 << 20, 0)
        if len(data) < self._HEADER.size:
            return 0, []
        magic, following, count = self._HEADER.unpack_from(data)
        if magic != self._MAGIC:
            return 0, []
        queue = []
        for index in range(count):
            offset = self._HEADER.size + index * self._ENTRY.size
            if offset + self._ENTRY.size > len(data):
                break
            number, side, pid, started, holding = self._ENTRY.unpack_from(data, offset)
            queue.append(Ticket(number, side, pid, started, bool(holding)))
        return following, queue

    def _write(self, fd: int, following: int, queue: list[Ticket]) -> None:
        blob = self._HEADER.pack(self._MAGIC, following, len(queue)) + b"".join(
            self._ENTRY.pack(t.number, t.side, t.pid, t.started, t.holding) for t in queue
        )
        os.pwrite(fd, blob, 0)
        os.ftruncate(fd, len(blob))

    def _enqueue(self, side: int) -> Ticket:
        with self._file() as fd:
            following, queue = self._read(fd)
            ticket = Ticket(following, side, self._pid, self._started)
            self._write(fd, following + 1, [*queue, ticket])
        self._side_of[ticket.number] = side
        return ticket

    def _remove(self, number: int) -> None:
        with self._file() as fd:
            following, queue = self._read(fd)
            self._write(fd, following, [t for t in queue if t.number != number])
        self._side_of.pop(number, None)

    def _admitted(self, number: int) -> bool:
        with self._file() as fd:
            following, queue = self._read(fd)
            if not any(t.number == number for t in queue):
                # the file was emptied under us (removed and made again): line up again, at the end
                queue.append(Ticket(number, self._side_of.get(number, EXCLUSIVE), self._pid, self._started))
                following = max(following, number + 1)
                changed = True
            else:
                changed = False
            now = time.monotonic()
            if now - self._checked >= self.LIVENESS_SECONDS:
                self._checked = now
                alive = [t for t in queue if t.pid == self._pid or _alive(t)]
                changed, queue = changed or len(alive) != len(queue), alive
            updated = admit(queue)
            if changed or updated != queue:
                self._write(fd, following, updated)
            if holds(updated, number):
                return True
            waiting = [t for t in updated if not t.holding]
            mine = next(t for t in waiting if t.number == number)
            # of the side the gate goes to once the holders leave (the oldest waiter's): let in at that moment
            self._next_up = mine is waiting[0] or (mine.side != EXCLUSIVE and mine.side == waiting[0].side)
            return False

    def _wait_seconds(self, remaining: float) -> float:
        # set by the _admitted just before, under the same hold of self._changed
        return min(remaining, self.POLL_SECONDS if self._next_up else self.POLL_BEHIND_SECONDS)

    def close(self) -> None:
        """Close the queue file (no thread of this process may be in line)."""
        with self._changed:
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


def _process_start(pid: int) -> int:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``), 0 where that is not known."""
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else 0


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """The state letter and start time of process ``pid`` from Linux ``/proc``; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
        # the command name (field 2) may hold spaces and parentheses: count from the last ')'
        fields = text[text.rindex(b")") + 2 :].split()
        return fields[0].decode("ascii", errors="replace"), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(ticket: Ticket) -> bool:
    """Whether the process that put ``ticket`` in line still runs: not gone, not a zombie its parent has yet to
    reap, and the same process (not a new one that was given its pid)."""
    try:
        os.kill(ticket.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by someone else
    stat = _proc_stat(ticket.pid)
    if stat is None:
        return True  # no /proc to ask: the signal said it exists
    state, started = stat
    return state not in ("Z", "X") and (ticket.started == 0 or started == ticket.started)
