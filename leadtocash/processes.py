"""Mock services in child processes of their own, each with its own interpreter lock, serving on ports.

:class:`ServiceProcesses` starts ``python -m leadtocash.child NAME`` once per mock (see :mod:`leadtocash.child`
for the protocol) and stops them again; :class:`leadtocash.stack.Stack` uses it for ``--wire processes``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from leadtocash.stack import StackConfig

#: what a child (``python -m leadtocash.child``) prints on stdout, followed by JSON, once it accepts connections
READY_PREFIX = "sandbox-service-ready "


class ServiceStartError(RuntimeError):
    """A mock service in a child process did not come up; the message ends with the tail of its output."""


@dataclass
class ChildService:
    """One child process serving one mock service, and what it has said so far."""

    name: str
    process: subprocess.Popen[str]
    ready: threading.Event = field(default_factory=threading.Event)
    url: str | None = None
    #: the last lines of its stderr (and stray stdout): the reason it gave when it dies early
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=30))
    readers: list[threading.Thread] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.tail.append(line.rstrip("\n"))
        if self.ready.is_set():
            # once it is up, what it says is the user's to see (a traceback of a failing request, say)
            try:
                # a JSON log line (--log-format json) names its service itself and must stay one object per line
                prefix = "" if line.startswith("{") else f"[{self.name}] "
                print(f"{prefix}{line.rstrip()}", file=sys.stderr, flush=True)
            except (ValueError, OSError):  # our stderr is closed: we are going away too
                pass


class ServiceProcesses:
    """Mock services, each in a child process of its own (its own interpreter lock), serving on ports.

    Each child runs ``python -m leadtocash.child NAME`` (see :mod:`leadtocash.child`): it builds that one service
    from ``config`` as :func:`leadtocash.stack.build_apps` does, serves it with waitress on ``host:ports[NAME]`` (0: any free
    port) and, when ``bridge_url`` is given, sends its live-sync calls to that bridge's ``/api/live``. This process
    binds each port and hands the child the listening socket, so :meth:`reserve` knows every origin before any
    child starts (and :attr:`config` may still be replaced until :meth:`start`).
    :meth:`start` returns once every child accepts connections; :attr:`urls` are then their origins.
    :meth:`stop` (or leaving the ``with`` block) ends them: SIGTERM, a wait of ``stop_timeout``, then SIGKILL.
    A child also ends by itself when its stdin closes, so none outlives a parent that was killed outright.
    """

    def __init__(
        self,
        config: StackConfig,
        names: list[str],
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        bridge_url: str | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        workers: int = 1,
    ) -> None:
        self.config = config
        #: processes per service, all accepting on one listening socket the parent binds (``--workers``)
        self.workers = workers
        self._sockets: dict[str, socket.socket] = {}
        self.names = list(names)
        self.host = host
        self.ports = dict(ports or {})
        self.bridge_url = bridge_url
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.children: dict[str, ChildService] = {}

    @property
    def urls(self) -> dict[str, str]:
        """Origins (``http://127.0.0.1:5101``) of the children that are ready, by service name (the workers of a
        service share one)."""
        return {name: child.url for name, child in self.children.items() if child.url is not None and "#" not in name}

    @property
    def pids(self) -> dict[str, int]:
        """The process of each child: a service's first worker under its name, the others as ``sales#2``, ..."""
        return {name: child.process.pid for name, child in self.children.items()}

    def start(self) -> ServiceProcesses:
        """Start every child, then wait until each is ready; on failure stop them all and raise
        :class:`ServiceStartError`."""
        try:
            deadline = time.monotonic() + self.start_timeout
            self.reserve()  # every port first: a busy one fails the start before any child runs
            # all at once: they import, build and seed in parallel
            for name in self.names:
                self.children[name] = self._spawn(name)
            if self.workers > 1:
                # The first worker of each service creates its tables and seeds them; the others start once it
                # is ready, so no two of them seed the same empty database.
                for name in self.names:
                    self._wait_ready(self.children[name], deadline)
                for name in self.names:
                    for number in range(2, self.workers + 1):
                        self.children[f"{name}#{number}"] = self._spawn(name, number)
            for child in self.children.values():
                self._wait_ready(child, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def reserve(self) -> dict[str, str]:
        """Bind every service's listening socket now (unless bound already) and return the origins the children
        will serve on: known before they start, so their configuration can name each other (the data browsers'
        links). A port that cannot be bound raises :class:`ServiceStartError`, before any child starts."""
        origins: dict[str, str] = {}
        for name in self.names:
            port = self._listening_socket(name).getsockname()[1]
            origins[name] = f"http://{self.host}:{port}"
        return origins

    def _listening_socket(self, name: str) -> socket.socket:
        """The socket every worker of ``name`` accepts on (bound here, once, so none of them races for the port
        and its origin is known before the child starts)."""
        if name not in self._sockets:
            port = self.ports.get(name, 0)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            try:
                sock = socket.create_server((self.host.strip("[]"), port), family=family, backlog=1024)
            except OSError as exc:  # the port in use, most often; said as a served service says it
                raise ServiceStartError(f"{name}: cannot listen on {self.host}:{port}: {exc}") from exc
            sock.set_inheritable(True)
            self._sockets[name] = sock
        return self._sockets[name]

    def _spawn(self, name: str, number: int = 1) -> ChildService:
        key = name if number == 1 else f"{name}#{number}"
        if key in self.children:
            raise ValueError(f"{key} is started already")
        command = [
            sys.executable,
            "-m",
            "leadtocash.child",
            name,
            "--host",
            self.host,
            "--port",
            str(self.ports.get(name, 0)),
        ]
        if self.bridge_url:
            command += ["--bridge-url", self.bridge_url]
        descriptor = self._listening_socket(name).fileno()
        command += ["--listen-fd", str(descriptor)]
        # a session of its own: Ctrl+C in a terminal reaches only the parent, which stops the bridge first
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=child_environment(),
            start_new_session=True,
            pass_fds=(descriptor,),
        )
        child = ChildService(key, process)
        for stream, is_stdout in ((process.stdout, True), (process.stderr, False)):
            reader = threading.Thread(
                target=_read_child,
                args=(child, stream, is_stdout),
                name=f"child-{name}-{'out' if is_stdout else 'err'}",
                daemon=True,
            )
            reader.start()
            child.readers.append(reader)
        assert process.stdin is not None
        try:
            # the configuration goes on stdin rather than argv: database URLs may carry passwords, and
            # argv is visible to every user in ``ps``. stdin then stays open: its end tells the child to go.
            process.stdin.write(self.config.to_json([name]) + "\n")
            process.stdin.flush()
        except OSError:
            pass  # it died already; _wait_ready reports why
        return child

    def _wait_ready(self, child: ChildService, deadline: float) -> None:
        while not child.ready.wait(0.05):
            code = child.process.poll()
            if code is not None:
                self._fail(child, f"{child.name} (pid {child.process.pid}) exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                self._fail(
                    child, f"{child.name} (pid {child.process.pid}) was not ready after {self.start_timeout:g} s"
                )

    def _fail(self, child: ChildService, message: str) -> None:
        self.stop()  # also lets the readers finish, so the tail is complete
        tail = "\n".join(line for line in child.tail if line.strip())
        raise ServiceStartError(f"{message}: {tail}" if tail else message)

    def stop(self) -> None:
        """End every child (SIGTERM, then SIGKILL after ``stop_timeout``) and reap it; safe to call twice."""
        running = [c for c in self.children.values() if c.process.poll() is None]
        for child in running:  # ask them all first, so they shut down in parallel
            # either may find the child gone already (it can exit between poll() and here)
            with suppress(OSError, ValueError):
                assert child.process.stdin is not None
                child.process.stdin.close()
            with suppress(OSError, ValueError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for child in self.children.values():
            for reader in child.readers:
                reader.join(timeout=2.0)
            for stream in (child.process.stdin, child.process.stdout, child.process.stderr):
                with suppress(OSError, ValueError):
                    if stream is not None:
                        stream.close()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> ServiceProcesses:
        return self.start() if not self.children else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn_services(
    config: StackConfig,
    names: list[str],
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    bridge_url: str | None = None,
    start_timeout: float = 60.0,
) -> ServiceProcesses:
    """Start ``names`` as child processes (see :class:`ServiceProcesses`) and return them once all are ready."""
    return ServiceProcesses(
        config, names, host=host, ports=ports, bridge_url=bridge_url, start_timeout=start_timeout
    ).start()


def child_environment() -> dict[str, str]:
    """This environment, with the project's folder first on ``PYTHONPATH``: a child started from any
    working directory imports the same packages as this process, installed or not."""
    root = str(Path(__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + inherited if inherited else "")}


def _read_child(child: ChildService, stream: IO[str] | None, is_stdout: bool) -> None:
    """Drain one pipe of a child (a full pipe would block it): its ready line, and the rest as its tail."""
    if stream is None:
        return
    with suppress(OSError, ValueError):  # the pipe closed under us: stop() is done with the child
        for line in stream:
            if is_stdout and not child.ready.is_set() and line.startswith(READY_PREFIX):
                child.url = json.loads(line[len(READY_PREFIX) :])["url"]
                child.ready.set()
            else:
                child.note(line)
