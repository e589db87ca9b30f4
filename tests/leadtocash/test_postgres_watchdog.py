"""The stack's own PostgreSQL does not outlive its owner: killed with ``kill -9``, the owner's watchdog stops it.

See :data:`leadtocash.postgres.WATCHDOG`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from leadtocash import postgres as embedded
from sandbox.clients import ScmClient
from sandbox.testing import poll_until
from tests.leadtocash.up_process import start_up, stop

pytestmark = pytest.mark.live

#: a process that starts a throwaway cluster, prints the server's pid and its folder, and waits to be killed
_OWNER = """
import sys, time
from leadtocash.postgres import EmbeddedPostgres
server = EmbeddedPostgres.temporary().start()
print(server.process.pid, server.folder, flush=True)
time.sleep(600)
"""


def _stopped(pid: int) -> bool:
    """The process is gone, or only a zombie its new parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _postmaster_pid(folder: Path) -> int:
    return int((folder / "postmaster.pid").read_text().splitlines()[0])


def test_a_throwaway_cluster_stops_and_is_removed_when_its_owner_is_killed() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert owner.stdout is not None
        pid_text, folder_text = owner.stdout.readline().split()
        server_pid, folder = int(pid_text), Path(folder_text)
        assert not _stopped(server_pid) and (folder / "PG_VERSION").exists()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    poll_until(lambda: _stopped(server_pid), timeout=60, message="the orphaned server to stop")
    poll_until(lambda: not folder.parent.exists(), timeout=30, message="the throwaway cluster's folder to go")


def test_a_stopped_server_ends_its_watchdog(tmp_path: Path) -> None:
    """Stopped in order, the server takes its watchdog with it (no process is left behind)."""
    server = embedded.EmbeddedPostgres(tmp_path / "cluster").start()
    watchdog = server.watchdog
    assert watchdog is not None and watchdog.poll() is None
    server.stop()
    assert watchdog.poll() is not None and server.watchdog is None


def test_up_with_postgres_killed_hard_leaves_no_server_and_the_next_up_keeps_the_data(tmp_path: Path) -> None:
    """``sandbox up --postgres`` killed with -9: its PostgreSQL stops by itself; a new ``sandbox up --postgres`` on
    the same data folder starts and finds what the first one wrote."""
    process, urls = start_up(tmp_path, "--postgres")
    try:
        with ScmClient(urls["scm"]) as scm:
            scm.create(
                "CustomersV3",
                {
                    "dataAreaId": "usmf",
                    "CustomerAccount": "PG-KILLED",
                    "OrganizationName": "Survives a kill",
                    "CustomerGroupId": "10",
                    "SalesCurrencyCode": "USD",
                },
            )
        server_pid = _postmaster_pid(tmp_path / "data" / "postgres")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    poll_until(lambda: _stopped(server_pid), timeout=60, message="the orphaned server to stop")

    again, urls = start_up(tmp_path, "--postgres")
    try:
        assert urls, "the second sandbox up did not start"
        with ScmClient(urls["scm"]) as scm:
            kept = scm.query("CustomersV3", filter="CustomerAccount eq 'PG-KILLED'", cross_company=True)
        # seen once on a loaded machine: the customer missing after the restart; the server's log says why
        log = tmp_path / "data" / "postgres.log"
        log_tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        assert [c["OrganizationName"] for c in kept] == ["Survives a kill"], log_tail
    finally:
        assert stop(again) == 0
