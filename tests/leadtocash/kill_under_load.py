"""`sandbox up` killed with ``kill -9`` while clients write, and started again on the same data folder: every write
it answered must be there. Shared by the tests on SQLite files and on the stack's own PostgreSQL.

Writers create customers in SCM (the customers-accounts map is live in `sandbox up`, so each create also writes
the account in Sales before SCM commits) until the process is gone; an account counts as answered once SCM
answered its create with a success. Writes still in flight when the process dies may be kept or lost.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.clients import SalesClient, ScmClient
from sandbox.testing import poll_until
from tests.leadtocash.up_process import start_up, stop

#: concurrent writers: enough that writes are in flight at the kill, few enough for a 2-core machine
WRITERS = 3
#: answered writes to wait for before the kill
ANSWERED_BEFORE_KILL = 24
#: creates each writer tries at most (the writers stop at the kill long before, this only bounds a stuck run)
MOST_PER_WRITER = 400


@dataclass
class Writes:
    """What the writers were answered: the accounts whose create succeeded, and the first error of each writer."""

    prefix: str
    answered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.answered)


def _write(scm_url: str, writes: Writes, writer: int, stopping: threading.Event) -> None:
    """Create customers one after the other until the service stops answering (or ``stopping``)."""
    with ScmClient(scm_url) as scm:
        for number in range(MOST_PER_WRITER):
            if stopping.is_set():
                return
            account = f"{writes.prefix}{writer}-{number}"
            try:
                scm.create(
                    "CustomersV3",
                    {
                        "dataAreaId": "usmf",
                        "CustomerAccount": account,
                        "OrganizationName": f"Kill test {account}",
                        "CustomerGroupId": "10",
                        "SalesCurrencyCode": "USD",
                    },
                )
            except Exception as exc:  # the process was killed under this request: in flight, not answered
                with writes.lock:
                    writes.errors.append(f"{account}: {exc}")
                return
            with writes.lock:
                writes.answered.append(account)


def _drain(process: subprocess.Popen) -> None:
    """Read what the process prints, so that a full pipe never blocks it."""
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()


@dataclass
class Kept:
    """What the next `sandbox up` on the same data folder has of the writes."""

    scm: set[str]
    sales: set[str]


def kill_while_writing(
    tmp_path: Path,
    *extra: str,
    prefix: str = "KILL-",
    before_kill: Callable[[], None] = lambda: None,
    after_kill: Callable[[], None] = lambda: None,
) -> tuple[Writes, Kept]:
    """Start `sandbox up` (with ``extra`` options) on ``tmp_path``, write from :data:`WRITERS` threads, ``kill -9``
    it once :data:`ANSWERED_BEFORE_KILL` writes were answered (the writers still writing; ``before_kill`` and
    ``after_kill`` are called around the kill), start it again on the same data folder and read back which
    accounts each side has."""
    lines: list[str] = []
    process, urls = start_up(tmp_path, *extra, lines=lines)
    _drain(process)
    writes, stopping = Writes(prefix), threading.Event()
    writers: list[threading.Thread] = []
    try:
        assert "scm" in urls, f"sandbox up did not start: {''.join(lines)[-3000:]}"
        writers += [
            threading.Thread(target=_write, args=(urls["scm"], writes, n, stopping), name=f"kill-writer-{n}")
            for n in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        poll_until(
            lambda: writes.count() >= ANSWERED_BEFORE_KILL or not any(w.is_alive() for w in writers),
            timeout=180,
            interval=0.05,
            message=f"{ANSWERED_BEFORE_KILL} answered writes",
        )
        assert writes.count() >= ANSWERED_BEFORE_KILL, f"the writers stopped early: {writes.errors}"
        before_kill()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        stopping.set()
        for writer in writers:
            writer.join(timeout=120)
    after_kill()

    lines.clear()
    again, urls = start_up(tmp_path, *extra, lines=lines)
    _drain(again)
    try:
        assert "scm" in urls, f"the second sandbox up did not start: {''.join(lines)[-3000:]}"
        like = f"{prefix}*"
        with ScmClient(urls["scm"]) as scm:
            in_scm = scm.query(
                "CustomersV3", filter=f"CustomerAccount eq '{like}'", select="CustomerAccount", cross_company=True
            )
        with SalesClient(urls["sales"]) as sales:
            in_sales = sales.query("accounts", filter=f"startswith(accountnumber,'{prefix}')", select="accountnumber")
    finally:
        assert stop(again) == 0
    return writes, Kept({c["CustomerAccount"] for c in in_scm}, {a["accountnumber"] for a in in_sales})


def assert_every_answered_write_kept(writes: Writes, kept: Kept, log: Path | None = None) -> None:
    """Every answered create is in SCM and (live sync answered it as synced) in Sales; every customer SCM kept,
    answered or in flight, is in Sales too (live sync writes Sales before SCM commits)."""
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    answered = set(writes.answered)
    assert sorted(answered - kept.scm) == [], f"answered but lost in SCM; {tail}"
    assert sorted(answered - kept.sales) == [], f"answered as synced but lost in Sales; {tail}"
    assert sorted(kept.scm - kept.sales) == [], "in SCM without its account in Sales"
