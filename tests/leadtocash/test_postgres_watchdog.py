"""The stack's own PostgreSQL does not outlive its owner: killed with ``kill -9``, the owner's watchdog stops it;
and what it answered survives that, however the server ends.

See :mod:`leadtocash.pgwatchdog`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadtocash import postgres as embedded
from sandbox.testing import poll_until
from tests.leadtocash.kill_under_load import assert_every_answered_write_kept, kill_while_writing

pytestmark = pytest.mark.live

#: a process that starts a throwaway cluster, prints the server's pid and its folder, and waits to be killed
_OWNER = """
import sys, time
from leadtocash.postgres import EmbeddedPostgres
server = EmbeddedPostgres.temporary().start()
print(server.process.pid, server.folder, flush=True)
time.sleep(600)
"""


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder for a cluster, outside pytest's temporary root: as root the server runs as ``nobody``, which must
    pass through every parent folder, and any pytest run starting on the machine takes the search bit off
    ``pytest-of-<user>`` again."""
    folder = Path(tempfile.mkdtemp(prefix="sandbox-postgres-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


def test_a_stopped_server_ends_its_watchdog(home: Path) -> None:
    """Stopped in order, the server takes its watchdog with it (no process is left behind)."""
    server = embedded.EmbeddedPostgres(home / "cluster").start()
    watchdog = server.watchdog
    assert watchdog is not None and watchdog.poll() is None
    server.stop()
    assert watchdog.poll() is not None and server.watchdog is None


def test_up_with_postgres_killed_hard_leaves_no_server_and_the_next_up_keeps_the_data(home: Path) -> None:
    """``sandbox up --postgres`` killed with -9 while clients write: its PostgreSQL stops by itself; a new ``sandbox
    up --postgres`` on the same data folder starts and has every write the first one answered, on both sides."""
    server_pids: list[int] = []

    def orphan_stops() -> None:
        assert server_pids, "the server's pid was not read"
        poll_until(lambda: _stopped(server_pids[0]), timeout=90, message="the orphaned server to stop")

    writes, kept = kill_while_writing(
        home,
        "--postgres",
        before_kill=lambda: server_pids.append(_postmaster_pid(home / "data" / "postgres")),
        after_kill=orphan_stops,
    )
    assert _stopped(server_pids[0])
    assert_every_answered_write_kept(writes, kept, home / "data" / "postgres.log")


def test_an_answered_commit_survives_an_immediate_shutdown(home: Path) -> None:
    """What the watchdog escalates to when a fast shutdown takes too long (``SIGQUIT``: no shutdown checkpoint)
    loses no commit the server answered: on a cluster in a data folder commits reach the disk before they are
    answered, and the next start replays them."""
    import psycopg

    server = embedded.EmbeddedPostgres(home / "cluster").start()
    try:
        with psycopg.connect(server.url("postgres", driver="postgresql"), autocommit=True) as connection:
            connection.execute("CREATE TABLE answered (n integer)")
            for n in range(50):  # each its own commit, answered before the next
                connection.execute("INSERT INTO answered VALUES (%s)", (n,))
        assert server.process is not None
        server.process.send_signal(signal.SIGQUIT)
        assert server.process.wait(timeout=60) is not None
    finally:
        server.stop()  # the server is gone: this ends its watchdog

    with embedded.running_postgres(home / "cluster") as again:
        with psycopg.connect(again.url("postgres", driver="postgresql")) as connection:
            row = connection.execute("SELECT count(*) FROM answered").fetchone()
    assert row is not None and row[0] == 50


def test_the_next_start_stops_a_server_left_running_on_its_folder(home: Path) -> None:
    """Owner and watchdog both killed: the server runs on, and the next start on the folder stops it (in order)
    before it starts its own, which has the data."""
    import psycopg

    first = embedded.EmbeddedPostgres(home / "cluster").start()
    assert first.process is not None and first.watchdog is not None
    leftover = first.process.pid
    with psycopg.connect(first.url("postgres", driver="postgresql"), autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (n integer)")
        connection.execute("INSERT INTO kept VALUES (7)")
    first.watchdog.kill()  # as if killed with its owner: nobody stops the server now
    first.watchdog.wait()
    first.watchdog = None
    first.process = None  # forget it, as a killed owner would

    with embedded.running_postgres(home / "cluster") as second:
        assert _stopped(leftover)
        with psycopg.connect(second.url("postgres", driver="postgresql")) as connection:
            row = connection.execute("SELECT n FROM kept").fetchone()
    assert row == (7,)


def test_a_stale_pid_file_naming_another_process_is_left_alone(tmp_path: Path) -> None:
    """A ``postmaster.pid`` that outlived its server (its pid reused since) names a process that is no PostgreSQL of
    this folder: the next start never signals it."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (folder / "postmaster.pid").write_text(f"{bystander.pid}\n{folder}\n")
        server = embedded.EmbeddedPostgres(folder)
        assert server._leftover_pid() is None
        server._stop_leftover(embedded.binaries_folder())
        assert bystander.poll() is None, "a process that is not the folder's server was signalled"
    finally:
        bystander.kill()
        bystander.wait()
