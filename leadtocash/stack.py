"""The services of the sandbox and how to build them for one run (in-process, on ports, or in processes).

The wiring is configuration: the same apps are served on ports by ``sandbox up``, driven in-process
through ``httpx.WSGITransport`` by tests and ``sandbox demo``, or run one per child process
(:class:`ServiceProcesses`, ``sandbox up --wire processes``) so that each has an interpreter lock of its own.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from sandbox.livesync import Sender

from flask import Flask

from sandbox.db import sqlite_url_for
from sandbox.runtime import ServiceConfig

#: service name -> "module:factory"; a service whose module is not there yet is simply not started
SERVICES: dict[str, str] = {
    "sales": "mock_sales:create_app",
    "scm": "mock_scm:create_app",
    "bridge": "bridge:create_app",
}

DEFAULT_PORTS = {"sales": 5101, "scm": 5102, "bridge": 5103}


@dataclass
class StackConfig:
    """Where each service keeps its data and how it is seeded."""

    data_dir: Path | None = Path(".sandbox")
    memory: bool = False
    seed: int | None = 1
    database_urls: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict] = field(default_factory=dict)

    def service_config(self, name: str) -> ServiceConfig:
        url = self.database_urls.get(name) or sqlite_url_for(None if self.memory else self.data_dir, name)
        return ServiceConfig(database_url=url, seed=self.seed, options=dict(self.options.get(name, {})))

    def to_json(self, names: list[str] | None = None) -> str:
        """One line of JSON for :meth:`from_json` (in a child process), with only ``names``' URLs and options.

        The data folder goes as an absolute path, so a child started elsewhere finds the same files.
        """

        def only(values: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in values.items() if names is None or k in names}

        return json.dumps(
            {
                "data_dir": None if self.data_dir is None else str(self.data_dir.resolve()),
                "memory": self.memory,
                "seed": self.seed,
                "database_urls": only(self.database_urls),
                "options": only(self.options),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StackConfig:
        values = json.loads(text)
        data_dir = values.get("data_dir")
        return cls(
            data_dir=None if data_dir is None else Path(data_dir),
            memory=bool(values.get("memory")),
            seed=values.get("seed"),
            database_urls=dict(values.get("database_urls") or {}),
            options=dict(values.get("options") or {}),
        )


def factory(name: str) -> Callable[[ServiceConfig], Flask] | None:
    """The app factory of a service, or None when that service is not built yet."""
    module_name, _, attribute = SERVICES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, attribute, None)


def build_apps(config: StackConfig, names: list[str] | None = None) -> dict[str, Flask]:
    """The apps of every available service (mock services only: the bridge is wired by its own issue)."""
    apps: dict[str, Flask] = {}
    for name in names or ["sales", "scm"]:
        make = factory(name)
        if make is not None:
            apps[name] = make(config.service_config(name))
    return apps


@dataclass
class Stack:
    """The running services of one sandbox: apps by name, and how to talk to each."""

    apps: dict[str, Flask]
    transports: dict[str, httpx.BaseTransport] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def transport(self, name: str) -> httpx.BaseTransport | None:
        return self.transports.get(name)

    def url(self, name: str) -> str:
        return self.urls.get(name, f"http://{name}.sandbox")

    def close(self) -> None:
        bridge = self.apps.get("bridge")
        if bridge is not None:
            bridge.extensions["bridge"].close()
        for name in ("sales", "scm"):
            if name in self.apps:
                self.apps[name].extensions["sandbox"].set_live_sync(None)
                self.apps[name].extensions["sandbox"].db.dispose()


def live_sync_sender(bridge_url: str, transport: httpx.BaseTransport | None = None) -> Sender:
    """A mock's live-sync sender: each transaction goes to the bridge's ``/api/live`` at ``bridge_url``
    (through ``transport`` when given, e.g. ``httpx.WSGITransport`` in one process)."""
    import httpx

    from sandbox.livesync import http_sender

    # generous: the writing caller waits while the bridge writes the other side, and one transaction can be big
    return http_sender(httpx.Client(transport=transport, base_url=bridge_url, timeout=120.0))


def build_bridge(
    urls: dict[str, str],
    *,
    bridge_database_url: str = "sqlite://",
    maps_dirs: list[Path] | None = None,
    transports: dict[str, httpx.BaseTransport] | None = None,
) -> Flask | None:
    """The bridge app, calling mock Sales and SCM at the origins ``urls["sales"]`` and ``urls["scm"]``
    (through ``transports[name]`` when given); None when the bridge is not built yet.

    It leaves the mocks alone: pointing their live sync at the bridge is the job of whoever runs them
    (:func:`wire_bridge` for apps in this process, :class:`ServiceProcesses` for mocks in child processes).
    """
    make = factory("bridge")
    if make is None:
        return None
    from bridge.app import BridgeConfig
    from mock_sales.schema import build_model as build_sales_model
    from mock_scm.schema import build_model as build_scm_model

    transports = transports or {}
    return make(
        BridgeConfig(
            sales_model=build_sales_model(),
            scm_model=build_scm_model(),
            sales_url=urls["sales"],
            scm_url=urls["scm"],
            sales_transport=transports.get("sales"),
            scm_transport=transports.get("scm"),
            database_url=bridge_database_url,
            maps_dirs=list(maps_dirs or []),
        )
    )


def wire_bridge(
    apps: dict[str, Flask],
    *,
    bridge_database_url: str = "sqlite://",
    maps_dirs: list[Path] | None = None,
    urls: dict[str, str] | None = None,
    in_process: bool | None = None,
) -> Flask | None:
    """Build the bridge for ``apps`` and point both mocks' live sync at it.

    ``in_process`` (the default when there are no ``urls``) sends the traffic between the bridge and the
    mocks through ``httpx.WSGITransport``: the same HTTP requests and answers, handled in the calling
    thread instead of crossing a loopback socket and a server's worker pool. ``sandbox up`` runs all three
    services in one process, so it wires them this way even though each also listens on its port; with
    ``in_process=False`` they call each other on ``urls`` as separate servers would. For mocks in other
    processes, see :func:`build_bridge` and :class:`ServiceProcesses`.
    """
    import httpx

    if "sales" not in apps or "scm" not in apps:
        return None
    in_process = urls is None if in_process is None else in_process
    origins = urls or {"sales": "http://sales.sandbox", "scm": "http://scm.sandbox", "bridge": "http://bridge.sandbox"}
    transports: dict[str, httpx.BaseTransport] | None = None
    if in_process:
        transports = {name: httpx.WSGITransport(app=apps[name]) for name in ("sales", "scm")}
    bridge_app = build_bridge(
        origins, bridge_database_url=bridge_database_url, maps_dirs=maps_dirs, transports=transports
    )
    if bridge_app is None:
        return None
    sender = live_sync_sender(origins["bridge"], httpx.WSGITransport(app=bridge_app) if in_process else None)
    for name in ("sales", "scm"):
        apps[name].extensions["sandbox"].set_live_sync(sender)
    return bridge_app


def build_stack(
    config: StackConfig, *, bridge: bool = True, start_maps: bool = True, maps_dirs: list[Path] | None = None
) -> Stack:
    """All services in this process, wired through WSGI transports (tests, ``sandbox demo``)."""
    import httpx

    apps = build_apps(config)
    if bridge:
        bridge_url = config.database_urls.get("bridge") or sqlite_url_for(
            None if config.memory else config.data_dir, "bridge"
        )
        bridge_app = wire_bridge(apps, bridge_database_url=bridge_url, maps_dirs=maps_dirs)
        if bridge_app is not None:
            apps["bridge"] = bridge_app
            if start_maps:
                bridge_app.extensions["bridge"].run_all(initial_sync=True, master="scm")
    transports = {name: httpx.WSGITransport(app=app) for name, app in apps.items()}
    return Stack(apps, transports, {name: f"http://{name}.sandbox" for name in apps})


# ---- mock services in child processes ----------------------------------------------------------------------
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
                print(f"[{self.name}] {line.rstrip()}", file=sys.stderr, flush=True)
            except (ValueError, OSError):  # our stderr is closed: we are going away too
                pass


class ServiceProcesses:
    """Mock services, each in a child process of its own (its own interpreter lock), serving on ports.

    Each child runs ``python -m leadtocash.child NAME`` (see :mod:`leadtocash.child`): it builds that one service
    from ``config`` as :func:`build_apps` does, serves it with waitress on ``host:ports[NAME]`` (0: any free
    port) and, when ``bridge_url`` is given, sends its live-sync calls to that bridge's ``/api/live``.
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
    ) -> None:
        self.config = config
        self.names = list(names)
        self.host = host
        self.ports = dict(ports or {})
        self.bridge_url = bridge_url
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.children: dict[str, ChildService] = {}

    @property
    def urls(self) -> dict[str, str]:
        """Origins (``http://127.0.0.1:5101``) of the children that are ready, by service name."""
        return {name: child.url for name, child in self.children.items() if child.url is not None}

    @property
    def pids(self) -> dict[str, int]:
        return {name: child.process.pid for name, child in self.children.items()}

    def start(self) -> ServiceProcesses:
        """Start every child, then wait until each is ready; on failure stop them all and raise
        :class:`ServiceStartError`."""
        try:
            # all at once: they import, build and seed in parallel
            for name in self.names:
                self.children[name] = self._spawn(name)
            deadline = time.monotonic() + self.start_timeout
            for child in self.children.values():
                self._wait_ready(child, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str) -> ChildService:
        if name in self.children:
            raise ValueError(f"{name} is started already")
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
        )
        child = ChildService(name, process)
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
