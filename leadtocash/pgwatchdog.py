"""Stopping an embedded PostgreSQL server in order, and the watchdog that does it when the server's owner dies.

``python -m leadtocash.pgwatchdog PID FOLDER FAST IMMEDIATE`` blocks reading its stdin, the read end of a pipe
only the server's owner can write to, so end-of-file means the owner is gone (or closed it after stopping the
server itself). Then it stops server ``PID`` as :func:`stop_in_order` does (a fast shutdown, an immediate one
after ``FAST`` seconds, waiting ``IMMEDIATE`` seconds more) and removes ``FOLDER`` unless it is "". It imports
only the standard library, so it starts in a moment and outlives whatever the owner had loaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie has stopped, only its parent has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def wait_stopped(pid: int, patience: float) -> bool:
    """Wait up to ``patience`` seconds for process ``pid`` to stop; whether it did."""
    deadline = time.monotonic() + patience
    while running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_in_order(pid: int, fast: float, immediate: float) -> bool | None:
    """Stop PostgreSQL server ``pid``: a fast shutdown (``SIGINT``: sessions ended, a shutdown checkpoint), then,
    after ``fast`` seconds, an immediate one (``SIGQUIT``: no checkpoint, the next start replays the WAL), waiting
    ``immediate`` seconds more. Whether it stopped; None when it is not ours to signal (another user's)."""
    for sig, patience in ((signal.SIGINT, fast), (signal.SIGQUIT, immediate)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return None
        if wait_stopped(pid, patience):
            return True
    return False


def main(argv: list[str]) -> None:
    """The watchdog (see the module docstring)."""
    pid, folder, fast, immediate = int(argv[0]), argv[1], float(argv[2]), float(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the owner, which stops the server in order
    while sys.stdin.buffer.read(4096):
        pass
    if running(pid):
        stop_in_order(pid, fast, immediate)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
