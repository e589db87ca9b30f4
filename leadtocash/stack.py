"""The one served stack: mock Sales, mock SCM and the bridge, started, wired, reached and closed in one place.

The wiring is configuration. :func:`start_stack` builds the three services and

- wires the bridge and the mocks to each other ``in-process`` (the same HTTP requests through
  ``httpx.WSGITransport``, no socket), over ``http`` on their loopback ports as separate servers would, or with
  the mocks in child ``processes`` of their own (:class:`~leadtocash.processes.ServiceProcesses`);
- serves them on ports when given a :class:`Serving` (``sandbox up``, ``sandbox load``, bench, the pytest
  plugin's ``sandbox_servers``), or leaves them in this process for clients on WSGI transports (tests,
  ``sandbox demo``, the scenario runner: :func:`build_stack`);
- starts the bridge's maps (all, only the ones that never ran, or none).

The :class:`Stack` it returns knows every service's URL (and transport, in one process), hands out one bundle of
clients (:class:`Clients`), and :meth:`Stack.close` stops everything in the order that loses nothing and
leaves no connection open: the bridge's drainers, the live-sync senders and the bridge's own clients, then the
servers and child processes, then the databases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from flask import Flask

from leadtocash.browselinks import link_data_browsers, with_browse_links
from leadtocash.clients import IN_PROCESS_URLS, MOCKS, SERVICE_ROOTS, Clients
from leadtocash.processes import ServiceProcesses, ServiceStartError
from sandbox.auth import AuthSettings
from sandbox.clients.auth import ClientCredentials
from sandbox.db import sqlite_url_for
from sandbox.locks import SYNC_GATE_OPTION, SyncGate
from sandbox.runtime import ServiceConfig
from sandbox.shared import SHARED_STATE_OPTION

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from bridge.app import BridgeConfig, BridgeRuntime
    from leadtocash.postgres import EmbeddedPostgres
    from sandbox.identity import AppRegistration, UserAccount
    from sandbox.runtime import Runtime
    from sandbox.server import ServerGroup, TlsFiles

#: the services of a stack: the two mocks (:data:`MOCKS`), then the bridge
SERVICE_NAMES: tuple[str, ...] = (*MOCKS, "bridge")
DEFAULT_PORTS = {"sales": 5101, "scm": 5102, "bridge": 5103}

#: how the bridge and the mocks call each other (``sandbox up --wire``)
Wire = Literal["in-process", "http", "processes"]
WIRES: tuple[Wire, ...] = ("in-process", "http", "processes")
#: which maps the bridge runs once it is up: every map (with initial sync, SCM the master), only maps that never
#: ran (after a restart, what the user paused or stopped stays so), or none (the caller runs them)
MapStart = Literal["all", "new", "none"]

__all__ = [
    "DEFAULT_PORTS",
    "MOCKS",
    "SERVICE_NAMES",
    "SERVICE_ROOTS",
    "WIRES",
    "Clients",
    "MapStart",
    "ServiceProcesses",
    "ServiceStartError",
    "Serving",
    "Stack",
    "StackConfig",
    "StackNotReady",
    "Wire",
    "bridge_config",
    "build_apps",
    "build_bridge",
    "build_stack",
    "factory",
    "live_sync_link",
    "quiet_waitress",
    "ready_line",
    "service_line",
    "start_stack",
    "interrupts",
    "wait_for_interrupt",
    "wire_bridge",
    "link_data_browsers",
]


@dataclass
class StackConfig:
    """Where each service keeps its data and how it is seeded."""

    data_dir: Path | None = Path(".sandbox")
    memory: bool = False
    seed: int | None = 1
    database_urls: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # ---- PostgreSQL and workers (sandbox up --postgres --workers N; leadtocash.postgres) ----
    #: run every service on a PostgreSQL cluster the stack starts and stops itself: under the data folder's
    #: ``postgres/``, or a throwaway one with ``memory`` (services named in ``database_urls`` keep theirs)
    postgres: bool = False
    #: processes per mock service, all serving one port (PostgreSQL only: they share its databases)
    workers: int = 1
    #: the services check bearer tokens from the identity service (``sandbox up --auth on``; see docs/auth.md)
    auth: bool = False
    #: app registrations of the identity service besides the well-known ones (``sandbox up --identity-config``)
    identity_apps: list[AppRegistration] = field(default_factory=list)
    #: the bridge's async drainer threads per source service (``sandbox up --drainers N``; bridge.claims)
    drain_workers: int = 1
    #: users of the identity service besides the well-known one, and what the services know of them from the start
    #: (their Sales roles and F&O user: :func:`sandbox.identity.registry.service_user`), from the same file
    identity_users: list[UserAccount] = field(default_factory=list)
    identity_service_users: list[dict[str, Any]] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        """The service's own URL if one was given, else its SQLite file in the data folder (or memory)."""
        return self.database_urls.get(name) or sqlite_url_for(None if self.memory else self.data_dir, name)

    def service_config(self, name: str) -> ServiceConfig:
        return ServiceConfig(
            database_url=self.database_url(name), seed=self.seed, options=dict(self.options.get(name, {}))
        )

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


# ---- the services' apps ----------------------------------------------------------------------------------
def _sales_app(config: ServiceConfig) -> Flask:
    from mock_sales import create_app

    return create_app(config)


def _scm_app(config: ServiceConfig) -> Flask:
    from mock_scm import create_app

    return create_app(config)


# The mocks are imported when a service is built, not with this module: `sandbox maps list` and a child serving
# one mock do not pay for importing the others.
_FACTORIES: dict[str, Callable[[ServiceConfig], Flask]] = {"sales": _sales_app, "scm": _scm_app}


def factory(name: str) -> Callable[[ServiceConfig], Flask]:
    """The app factory of a mock service (``"sales"`` or ``"scm"``)."""
    try:
        return _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown mock service {name!r}; expected one of {', '.join(MOCKS)}") from None


def build_apps(config: StackConfig, names: list[str] | tuple[str, ...] | None = None) -> dict[str, Flask]:
    """The apps of the mock services ``names`` (default: both), built and seeded from ``config``; unwired."""
    return {name: factory(name)(config.service_config(name)) for name in names or MOCKS}


# ---- the bridge and its wiring -----------------------------------------------------------------------------
def bridge_config(
    urls: Mapping[str, str],
    *,
    transports: Mapping[str, httpx.BaseTransport] | None = None,
    database_url: str = "sqlite://",
    maps_dirs: list[Path] | None = None,
    start_worker: bool = True,
    auth: AuthSettings | None = None,
    credentials: httpx.Auth | None = None,
    drain_workers: int = 1,
) -> BridgeConfig:
    """The bridge's configuration: the mocks at the origins ``urls["sales"]`` and ``urls["scm"]`` (through
    ``transports[name]`` when given), its state in ``database_url``, the shipped maps and ``maps_dirs``.

    The only place the composition root configures a bridge (served or not, ``sandbox reconcile`` too). The
    bridge never imports the mocks: it gets their models from here.
    """
    from bridge.app import BridgeConfig
    from mock_sales.schema import build_model as build_sales_model
    from mock_scm.schema import build_model as build_scm_model

    transports = transports or {}
    return BridgeConfig(
        sales_model=build_sales_model(),
        scm_model=build_scm_model(),
        sales_url=urls["sales"],
        scm_url=urls["scm"],
        sales_transport=transports.get("sales"),
        scm_transport=transports.get("scm"),
        database_url=database_url,
        maps_dirs=list(maps_dirs or []),
        start_worker=start_worker,
        auth=auth or AuthSettings(),
        credentials=credentials,
        async_drain_workers=drain_workers,
    )


def build_bridge(
    urls: Mapping[str, str],
    *,
    bridge_database_url: str = "sqlite://",
    maps_dirs: list[Path] | None = None,
    transports: Mapping[str, httpx.BaseTransport] | None = None,
    auth: AuthSettings | None = None,
    credentials: httpx.Auth | None = None,
    drain_workers: int = 1,
) -> Flask:
    """The bridge app, calling mock Sales and SCM at the origins ``urls["sales"]`` and ``urls["scm"]``
    (through ``transports[name]`` when given).

    It leaves the mocks alone: pointing their live sync at the bridge is the job of whoever runs them
    (:func:`wire_bridge` for apps in this process, :class:`ServiceProcesses` for mocks in child processes).
    """
    from bridge.app import create_app

    return create_app(
        bridge_config(
            urls,
            transports=transports,
            database_url=bridge_database_url,
            maps_dirs=maps_dirs,
            auth=auth,
            credentials=credentials,
            drain_workers=drain_workers,
        )
    )


def live_sync_link(
    bridge_url: str, transport: httpx.BaseTransport | None = None, auth: httpx.Auth | None = None
) -> tuple[Callable[[dict[str, Any]], None], httpx.Client]:
    """A mock's live-sync sender, each transaction to the bridge's ``/api/live`` at ``bridge_url`` (through
    ``transport`` when given, e.g. ``httpx.WSGITransport`` in one process), and the client it posts with: the
    owner of the sender closes that client once the mock no longer sends."""
    from sandbox.clients.auth import ClientCredentials
    from sandbox.livesync import http_sender
    from sandbox.wellknown import BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET

    # the services call the bridge with its registration (the integration identity); without `auth` the identity
    # service is found from the bridge's 401 challenge, as a child process does
    auth = auth or ClientCredentials(BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET)
    # generous: the writing caller waits while the bridge writes the other side, and one transaction can be big
    client = httpx.Client(transport=transport, base_url=bridge_url, timeout=120.0, auth=auth)
    return http_sender(client), client


def wire_bridge(
    apps: dict[str, Flask],
    *,
    bridge_database_url: str = "sqlite://",
    maps_dirs: list[Path] | None = None,
    urls: Mapping[str, str] | None = None,
    in_process: bool | None = None,
    auth: AuthSettings | None = None,
    credentials: httpx.Auth | None = None,
) -> Flask:
    """Build the bridge for the mock ``apps`` of this process and point both mocks' live sync at it.

    ``in_process`` (the default when there are no ``urls``) sends the traffic between the bridge and the
    mocks through ``httpx.WSGITransport``: the same HTTP requests and answers, handled in the calling thread
    instead of crossing a loopback socket and a server's worker pool. With ``in_process=False`` they call each
    other on ``urls`` (``sales``, ``scm`` and ``bridge`` origins) as separate servers would. ``auth``: how the
    bridge checks its callers' tokens; ``credentials``: how it (and the live-sync senders) get theirs.
    """
    bridge_app, _client = _wire_bridge(
        apps,
        urls=urls or IN_PROCESS_URLS,
        in_process=urls is None if in_process is None else in_process,
        bridge_database_url=bridge_database_url,
        maps_dirs=maps_dirs,
        auth=auth,
        credentials=credentials,
    )
    return bridge_app


def _wire_bridge(
    apps: Mapping[str, Flask],
    *,
    urls: Mapping[str, str],
    in_process: bool,
    bridge_database_url: str,
    maps_dirs: list[Path] | None,
    auth: AuthSettings | None = None,
    credentials: httpx.Auth | None = None,
    drain_workers: int = 1,
) -> tuple[Flask, httpx.Client]:
    """:func:`wire_bridge`, also returning the client both mocks' live-sync sender posts with."""
    transports: dict[str, httpx.BaseTransport] | None = None
    if in_process:
        transports = {name: httpx.WSGITransport(app=apps[name]) for name in MOCKS}
    bridge_app = build_bridge(
        urls,
        bridge_database_url=bridge_database_url,
        maps_dirs=maps_dirs,
        transports=transports,
        auth=auth,
        credentials=credentials,
        drain_workers=drain_workers,
    )
    sender, client = live_sync_link(
        urls["bridge"], httpx.WSGITransport(app=bridge_app) if in_process else None, auth=credentials
    )
    gate = SyncGate()  # one for both mocks: writes that can sync take it before their database (sandbox.locks)
    for name in MOCKS:
        apps[name].extensions["sandbox"].set_live_sync(sender, gate)
    return bridge_app, client


# ---- the stack ---------------------------------------------------------------------------------------------
@dataclass
class Serving:
    """Serve the stack on ports: ``host``, a port per service (missing or 0: any free port), HTTPS with ``tls``."""

    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    tls: TlsFiles | None = None
    # ---- edge safety (sandbox.websafety): names a Host header may carry besides the host and loopback, and
    # origins of pages allowed to change the services besides the stack's own (``--allowed-host/-origin``)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    def edge_hosts(self) -> list[str]:
        """The host names the served apps answer to besides loopback: the host they listen on (unless a
        wildcard address, which no client puts in a Host header) and the allowed ones."""
        wildcard = self.host.strip("[]") in ("0.0.0.0", "::", "")
        return [*([] if wildcard else [self.host]), *self.allowed_hosts]

    def edge_origins(self, urls: Iterable[str]) -> set[str]:
        """The origins allowed to change the services: the stack's (``urls``, under each loopback name) and the
        allowed ones."""
        from sandbox.websafety import normalize_origin, stack_origins

        origins = stack_origins(urls)
        origins.update(o for o in map(normalize_origin, self.allowed_origins) if o is not None)
        return origins

    def port(self, name: str) -> int:
        return self.ports.get(name, 0)


def service_line(name: str, url: str) -> str:
    """The line ``sandbox up`` (and ``sandbox demo --keep``) prints for a service once it serves."""
    return f"{name:<6} {url}{SERVICE_ROOTS[name]}"


class StackNotReady(RuntimeError):
    """A service of the stack did not become ready: it failed (a map could not start) or timed out."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        reasons = []
        for name, (status, body) in answers.items():
            if status == 200:
                continue
            errors = body.get("errors") or []
            waiting = body.get("waiting_for") or []
            detail = "; ".join(f"map '{e.get('map')}' ({e.get('state')}): {e.get('error')}" for e in errors) or (
                "waiting for " + ", ".join(f"{w.get('map')} ({w.get('state')})" for w in waiting)
                if waiting
                else body.get("error") or body.get("status") or f"status {status}"
            )
            reasons.append(f"{name} {body.get('status', status)}: {detail}")
        super().__init__("not ready: " + " | ".join(reasons))


def ready_line(stack: Stack) -> str:
    """The one line ``sandbox up`` prints once every service's health answers 200: ``ready`` and the maps'
    states (``ready  7 maps Running``; maps the user paused or stopped are counted as such)."""
    states: dict[str, int] = {}
    if "bridge" in stack.apps:
        runtime = stack.bridge_runtime
        rows = runtime.state.map_rows()
        for table_map in runtime.maps:
            state = rows[table_map.id]["state"] if table_map.id in rows else "Not running"
            states[state] = states.get(state, 0) + 1
    counts = ", ".join(f"{count} {'map' if count == 1 else 'maps'} {state}" for state, count in sorted(states.items()))
    return "ready" + (f"  {counts}" if counts else "")


@dataclass
class Stack:
    """The running services of one sandbox: the apps in this process, how to reach every service, and what
    :meth:`close` must stop.

    ``apps`` holds the services built in this process (the mocks are elsewhere with ``--wire processes``);
    ``transports`` reach them without a socket (only when not served); ``urls`` are every service's origin.
    """

    apps: dict[str, Flask]
    transports: dict[str, httpx.BaseTransport] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    #: the servers of the apps in this process, once served
    servers: ServerGroup | None = None
    #: the mocks' child processes (``--wire processes``)
    children: ServiceProcesses | None = None
    #: the clients the mocks' live-sync senders post with
    senders: list[httpx.Client] = field(default_factory=list)
    #: files the stack made for itself (removed when it closes)
    temporary_files: list[Path] = field(default_factory=list)
    #: the PostgreSQL server the stack started for itself (``StackConfig.postgres``), stopped last
    postgres: EmbeddedPostgres | None = None
    closed: bool = False
    #: the identity service (in this process; served on its own port with the others)
    identity: Flask | None = None
    #: whether the services check tokens (``StackConfig.auth``)
    auth: bool = False
    #: the local CA clients trust when the stack serves TLS
    ca_file: Path | None = None

    def transport(self, name: str) -> httpx.BaseTransport | None:
        return self.transports.get(name)

    def url(self, name: str) -> str:
        return self.urls.get(name, IN_PROCESS_URLS[name])

    @property
    def bridge_runtime(self) -> BridgeRuntime:
        """The bridge's runtime (engine, lifecycle, state, worker), when it runs in this process."""
        return self.apps["bridge"].extensions["bridge"]

    def runtime(self, name: str) -> Runtime:
        """A mock's runtime (model, store, database, outbox), when it runs in this process."""
        return self.apps[name].extensions["sandbox"]

    @property
    def pids(self) -> dict[str, int]:
        """The process of each service: its child's, or this one's."""
        pids = {name: os.getpid() for name in self.apps}
        if self.children is not None:
            pids.update(self.children.pids)
        return {name: pids[name] for name in SERVICE_NAMES if name in pids}

    def clients(self) -> Clients:
        """A new bundle of clients on this stack (the caller closes it), with tokens of the well-known development
        app when the stack checks tokens."""
        return Clients.connect(self.urls, self.transports, auth=self.credentials() if self.auth else None)

    def credentials(self, client_id: str | None = None, client_secret: str | None = None) -> httpx.Auth:
        """Client credentials (default: the well-known development app) on this stack's identity service."""
        from leadtocash import auth

        if client_id is None:
            return auth.credentials(self)
        return auth.credentials(self, client_id, client_secret or "")

    def token(self, resource: str, client_id: str | None = None, client_secret: str | None = None) -> str:
        """A bearer token for ``resource`` (a service origin, e.g. ``stack.urls["sales"]``)."""
        credentials = self.credentials(client_id, client_secret)
        assert isinstance(credentials, ClientCredentials)
        return credentials.token(resource.rstrip("/"))

    def serve(self, serving: Serving, announce: Callable[[str, str], None] | None = None) -> None:
        """Serve the apps of this process that are not served yet on ``serving``'s ports (sales, scm, bridge in
        that order); ``announce(name, url)`` is told of each once it accepts connections.

        Their wiring stays as it was: ``sandbox demo --keep`` serves an in-process stack for a user to explore.
        """
        self.configure_edge(serving)
        for name in SERVICE_NAMES:
            if name in self.apps and not self._served(name):
                self._serve_one(name, serving, serving.port(name))
                if announce is not None:
                    announce(name, self.urls[name])
        self.configure_edge(serving)  # the ports the system picked are known now

    def configure_edge(self, serving: Serving) -> None:
        """Let the apps of this process answer to the served host names and take changes from the stack's
        origins (and the allowed ones): see :mod:`sandbox.websafety`."""
        from sandbox.websafety import configure_edge

        origins = serving.edge_origins([*self.urls.values(), *_port_origins(serving)])
        for app in [*self.apps.values(), *([self.identity] if self.identity is not None else [])]:
            configure_edge(app, allowed_hosts=serving.edge_hosts(), allowed_origins=origins)

    def _served(self, name: str) -> bool:
        return self.servers is not None and any(server.name == name for server in self.servers.servers)

    def _serve_one(self, name: str, serving: Serving, port: int, app: WSGIApplication | None = None) -> None:
        from sandbox.server import ServerGroup

        if self.servers is None:
            self.servers = ServerGroup(host=serving.host, tls=serving.tls)
        try:
            server = self.servers.start(name, self.apps[name] if app is None else app, port)
        except OSError as exc:  # the port in use, most often; said as a child process says it
            raise ServiceStartError(f"{name}: cannot listen on {serving.host}:{port}: {exc}") from exc
        self.urls[name] = server.url
        # a served service is reached on its port; clients no longer go around it through WSGI
        self.transports.pop(name, None)

    def start_maps(self, which: MapStart) -> None:
        """Run the bridge's maps in dependency order, SCM the master of their initial syncs (the bridge's
        startup: its health answers 503 until they run; a map that cannot start raises
        :class:`bridge.readiness.StartupError`)."""
        if which != "none" and "bridge" in self.apps:
            self.bridge_runtime.start_maps(only_new=which == "new", master="scm")

    def health(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each service's ``/_sandbox/health`` answer (status, body): through the app for the services in this
        process, over HTTP for child processes; a child that does not answer is a 503 saying so."""
        answers: dict[str, tuple[int, dict[str, Any]]] = {}
        for name in SERVICE_NAMES:
            if name in self.apps:
                response = self.apps[name].test_client().get("/_sandbox/health")
                answers[name] = (response.status_code, response.get_json(silent=True) or {})
            elif name in self.urls:
                try:
                    answer = httpx.get(self.urls[name] + "/_sandbox/health", timeout=10.0)
                    answers[name] = (answer.status_code, answer.json())
                except (httpx.HTTPError, ValueError) as exc:
                    answers[name] = (503, {"status": "unreachable", "service": name, "error": str(exc)})
        return answers

    def wait_ready(self, timeout: float = 600.0, interval: float = 0.1) -> dict[str, tuple[int, dict[str, Any]]]:
        """Wait until every service's health answers 200 and return the answers. Raises
        :class:`StackNotReady` at once when a service reports that it failed (a map whose start or recovery
        failed), and after ``timeout`` seconds otherwise, with what each service still waits for."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self.health()
            if all(status == 200 for status, _ in answers.values()):
                return answers
            failed = {name: body for name, (status, body) in answers.items() if body.get("status") == "failed"}
            if failed or time.monotonic() > deadline:
                raise StackNotReady(answers)
            time.sleep(interval)

    def close(self) -> None:
        """Stop everything, in the order that loses nothing and leaves no connection open; safe to call twice.

        1. the bridge's async drainers (no new sync work);
        2. the mocks' live-sync senders, then the bridge's own clients and state (a waitress server stops only
           once the keep-alive connections it serves are closed);
        3. the mocks' child processes, then the servers in this process;
        4. the databases of the mocks in this process.
        """
        if self.closed:
            return
        self.closed = True
        bridge = self.apps.get("bridge")
        if bridge is not None:
            bridge.extensions["bridge"].worker.stop()
        for name in MOCKS:
            if name in self.apps:
                self.apps[name].extensions["sandbox"].set_live_sync(None)
        for client in self.senders:
            client.close()
        if bridge is not None:
            bridge.extensions["bridge"].close()
        if self.children is not None:
            # before the servers here: a child's live-sync client keeps its connection to the bridge open until
            # the child stops, and a write the child is finishing still reaches the bridge
            self.children.stop()
        if self.servers is not None:
            with quiet_waitress():
                self.servers.stop_all()
        for name in MOCKS:
            if name in self.apps:
                self.apps[name].extensions["sandbox"].db.dispose()
        for path in self.temporary_files:
            path.unlink(missing_ok=True)
        if self.postgres is not None:
            self.postgres.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _StartingBridge:
    """The WSGI app on the bridge's port while the bridge is being built: 503 in the bridge's error shape (421 to a
    Host it does not answer to, as the bridge would: see :mod:`sandbox.websafety`), then every request goes to
    :attr:`app` once it is set."""

    def __init__(self, serving: Serving | None = None) -> None:
        self.app: WSGIApplication | None = None
        self.serving = serving or Serving()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.app is not None:
            return self.app(environ, start_response)
        from sandbox.websafety import SERVED_ENVIRON_KEY

        host = str(environ.get("HTTP_HOST") or "")
        if environ.get(SERVED_ENVIRON_KEY) and not _answers_to(host, self.serving):
            body = json.dumps(
                {"error": {"code": "", "message": f"Misdirected request: this service does not answer to '{host}'."}}
            ).encode()
            start_response(
                "421 MISDIRECTED REQUEST", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        body = b'{"error":{"code":"","message":"The bridge is starting; try again shortly."}}'
        start_response(
            "503 SERVICE UNAVAILABLE",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Retry-After", "1")],
        )
        return [body]


def start_stack(
    config: StackConfig,
    *,
    wire: Wire = "in-process",
    serve: Serving | None = None,
    bridge: bool = True,
    maps_dirs: list[Path] | None = None,
    start_maps: MapStart = "all",
    announce: Callable[[str, str], None] | None = None,
) -> Stack:
    """Start the stack: the mocks, then the bridge wired to them (``wire``), served on ports when ``serve`` is
    given, its maps started as ``start_maps`` says; ``announce(name, url)`` hears of each served service as it
    comes up (the bridge once its maps run). On any failure what was started is stopped again.

    ``wire="processes"`` runs the mocks in child processes and needs ``serve`` (they are reached on ports) without
    TLS. With TLS, ``wire="http"`` is wired in-process all the same: the services' clients would not trust the
    local CA.
    """
    if wire not in WIRES:
        raise ValueError(f"unknown wiring {wire!r}; expected one of {', '.join(WIRES)}")
    if wire == "processes" and (serve is None or serve.tls is not None):
        raise ValueError("mocks in child processes are served on ports, without TLS")
    from leadtocash import auth as stack_auth

    stack = Stack(apps={}, auth=config.auth, ca_file=None if serve is None or serve.tls is None else serve.tls.ca_cert)
    try:
        # PostgreSQL and workers (leadtocash.postgres): the cluster first, every service's URL on it
        config, wire = _with_postgres(config, stack, wire, serve)
        # the identity service first: the services name it in their 401 challenges and fetch its keys
        stack.identity = stack_auth.build_identity(config)
        if serve is not None:
            stack._serve_one("identity", serve, serve.port("identity"), app=stack.identity)
        else:
            stack.urls["identity"] = stack_auth.IN_PROCESS_IDENTITY_URL
            stack.transports["identity"] = httpx.WSGITransport(app=stack.identity)
        settings = stack_auth.settings_for(stack, config)
        config = stack_auth.with_auth_options(config, settings)
        bridge_url = IN_PROCESS_URLS["bridge"]
        starting_bridge: _StartingBridge | None = None
        if serve is not None and bridge:
            # The bridge listens first: the mocks point their live sync at its URL from their first request on.
            # Binding its port now (rather than picking a free one to bind later) leaves no moment for another
            # process to take it; until the bridge is built it answers 503, as dual-write refuses a write while
            # the bridge is down.
            starting_bridge = _StartingBridge(serve)
            stack._serve_one("bridge", serve, serve.port("bridge"), app=starting_bridge)
            bridge_url = stack.urls["bridge"]
            serve = dataclasses.replace(serve, ports={**serve.ports, "bridge": int(bridge_url.rsplit(":", 1)[1])})
            stack_auth.register_resources(stack)
        if serve is not None:  # the mocks answer to the served host names, also in child processes
            config = _with_edge_options(config, serve, bridge_url if starting_bridge is not None else None)
        if wire == "processes":
            assert serve is not None
            # the mocks' live-sync gate across their processes: a lock file (sandbox.locks.FileSyncGate)
            config = _with_sync_gate_file(config, stack)
            stack.children = ServiceProcesses(
                config,
                list(MOCKS),
                host=serve.host,
                ports=serve.ports,
                bridge_url=bridge_url if bridge else None,
                workers=config.workers,
            )
            if bridge:
                # the data browsers' links, as link_data_browsers sets them in one process: a child learns them
                # from its configuration, so the mocks' ports are bound here first (reserve) to know their origins
                origins = {**stack.children.reserve(), "bridge": bridge_url}
                stack.children.config = with_browse_links(config, origins, maps_dirs)
            stack.children.start()
            stack.urls.update(stack.children.urls)
            if announce is not None:
                for name in MOCKS:
                    announce(name, stack.urls[name])
        else:
            stack.apps.update(build_apps(config))
            for app in stack.apps.values():
                stack_auth.hand_keys(stack, app)
            stack.urls.update({name: IN_PROCESS_URLS[name] for name in MOCKS})
            stack.transports.update({name: httpx.WSGITransport(app=app) for name, app in stack.apps.items()})
            # tokens for the in-process names work too (the bridge may reach a served mock through WSGI)
            stack_auth.register_resources(stack)
            if serve is not None:
                stack.serve(serve, announce)
        stack_auth.register_resources(stack)
        if bridge:
            bridge_settings = dataclasses.replace(settings)
            credentials = stack_auth.bridge_credentials(stack) if config.auth else None
            database_url = config.database_url("bridge")
            if wire == "processes":
                bridge_app = build_bridge(
                    stack.urls,
                    bridge_database_url=database_url,
                    maps_dirs=maps_dirs,
                    auth=bridge_settings,
                    credentials=credentials,
                    drain_workers=config.drain_workers,
                )
            else:
                bridge_app, sender = _wire_bridge(
                    stack.apps,
                    urls={**stack.urls, "bridge": bridge_url},
                    in_process=wire == "in-process" or serve is None or serve.tls is not None,
                    bridge_database_url=database_url,
                    maps_dirs=maps_dirs,
                    auth=bridge_settings,
                    credentials=credentials,
                    drain_workers=config.drain_workers,
                )
                stack.senders.append(sender)
            stack.apps["bridge"] = bridge_app
            # dual-write's live-sync limits when the stack runs with them (--limits; bridge/livelimits.py)
            from bridge.livelimits import install_live_limits

            install_live_limits(bridge_app, config.options.get("bridge", {}))
            stack_auth.hand_keys(stack, bridge_app)
            stack.urls["bridge"] = bridge_url
            if serve is not None:
                stack.configure_edge(serve)  # before the bridge answers on its port
            link_data_browsers(stack)  # the data browsers' links to the other side and to the bridge console
            stack_auth.register_resources(stack)
            if start_maps != "none":  # health answers 503 from the first request until the maps run
                bridge_app.extensions["bridge"].startup.expect()
            if starting_bridge is None:
                stack.transports["bridge"] = httpx.WSGITransport(app=bridge_app)
            else:
                starting_bridge.app = bridge_app
            stack.start_maps(start_maps)
            if announce is not None and serve is not None:
                announce("bridge", stack.urls["bridge"])
    except BaseException:
        stack.close()
        raise
    return stack


def _port_origins(serving: Serving) -> list[str]:
    """The origins of the services on the fixed ports ``serving`` names (a port of 0 is known only once bound)."""
    scheme = "https" if serving.tls else "http"
    host = "127.0.0.1" if serving.host.strip("[]") in ("0.0.0.0", "::", "") else serving.host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return [f"{scheme}://{host}:{port}" for port in serving.ports.values() if port]


def _answers_to(host_header: str, serving: Serving) -> bool:
    """Whether a served app answers to ``host_header`` (:class:`sandbox.websafety.EdgePolicy`'s rule)."""
    from sandbox.websafety import EdgePolicy, normalize_host

    return EdgePolicy(allowed_hosts={normalize_host(h) for h in serving.edge_hosts()}).host_allowed(host_header)


def _with_edge_options(config: StackConfig, serving: Serving, bridge_url: str | None) -> StackConfig:
    """``config`` with both mocks' edge options: the host names they answer to and the origins that may change
    them (:data:`~sandbox.runtime.ALLOWED_HOSTS_OPTION`), also for mocks in child processes."""
    from sandbox.runtime import ALLOWED_HOSTS_OPTION, ALLOWED_ORIGINS_OPTION

    origins = sorted(serving.edge_origins([*_port_origins(serving), *([bridge_url] if bridge_url else [])]))
    edge = {ALLOWED_HOSTS_OPTION: serving.edge_hosts(), ALLOWED_ORIGINS_OPTION: origins}
    options = {name: {**config.options.get(name, {}), **edge} for name in MOCKS}
    return dataclasses.replace(config, options={**config.options, **options})


def _with_postgres(config: StackConfig, stack: Stack, wire: Wire, serve: Serving | None) -> tuple[StackConfig, Wire]:
    """``config`` and ``wire`` for ``config.postgres`` and ``config.workers``: with ``postgres``, the stack's own
    cluster started (``stack.postgres``) and every service not named in ``database_urls`` given a database on
    it; with several workers, the mocks in child processes (they must all be on PostgreSQL)."""
    import dataclasses

    from leadtocash.postgres import EmbeddedPostgres

    if config.workers < 1:
        raise ValueError(f"workers must be at least 1, got {config.workers}")
    urls = dict(config.database_urls)
    if config.postgres:
        throwaway = config.memory or config.data_dir is None
        server = EmbeddedPostgres.temporary() if throwaway else EmbeddedPostgres(_postgres_folder(config))
        stack.postgres = server.start()
        for name in SERVICE_NAMES:
            if name not in urls:
                urls[name] = server.create_database(name)
        config = dataclasses.replace(config, database_urls=urls)
    if config.workers > 1:
        not_postgres = [name for name in MOCKS if not config.database_url(name).startswith("postgresql")]
        if not_postgres:
            raise ValueError(
                f"--workers {config.workers} needs PostgreSQL (several processes share each service's database); "
                f"{', '.join(not_postgres)} would be on SQLite: add --postgres"
            )
        if serve is None or serve.tls is not None:
            raise ValueError("several workers per service are served on ports, without TLS")
        wire = "processes"
        # faults and the request journal in the database, so that every worker sees the same (sandbox.shared)
        shared = {name: {**config.options.get(name, {}), SHARED_STATE_OPTION: True} for name in MOCKS}
        config = dataclasses.replace(config, options={**config.options, **shared})
    return config, wire


def _postgres_folder(config: StackConfig) -> Path:
    """Where the stack's own PostgreSQL cluster lives: ``postgres/`` in the data folder."""
    assert config.data_dir is not None
    return config.data_dir.resolve() / "postgres"


def _with_sync_gate_file(config: StackConfig, stack: Stack) -> StackConfig:
    """``config`` with both mocks' option :data:`~sandbox.locks.SYNC_GATE_OPTION` naming one lock file: in the data
    folder, or (in memory) a temporary one the stack removes when it closes."""
    import tempfile

    if config.memory or config.data_dir is None:
        handle, name = tempfile.mkstemp(prefix="sandbox-sync-gate-", suffix=".lock")
        os.close(handle)
        stack.temporary_files.append(Path(name))
        path = Path(name)
    else:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        path = config.data_dir.resolve() / "sync-gate.lock"
    options = {name: {**config.options.get(name, {}), SYNC_GATE_OPTION: str(path)} for name in MOCKS}
    return dataclasses.replace(config, options={**config.options, **options})


def build_stack(
    config: StackConfig, *, bridge: bool = True, start_maps: bool = True, maps_dirs: list[Path] | None = None
) -> Stack:
    """All services in this process, wired and reached through WSGI transports, no ports (tests, ``sandbox
    demo``, the scenario runner); the maps running (initial sync done) unless ``start_maps`` is false."""
    return start_stack(config, bridge=bridge, maps_dirs=maps_dirs, start_maps="all" if start_maps else "none")


# ---- serving until told to stop ----------------------------------------------------------------------------
@contextlib.contextmanager
def interrupts() -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM set the event they yield instead of ending the process.

    Take it before telling the user how to stop: a signal sent the moment that line appears then ends the
    stack cleanly instead of killing the process."""
    stopped = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def wait_for_interrupt(stopped: threading.Event | None = None) -> None:
    """Block until SIGINT or SIGTERM (the caller then closes its stack, in its order); ``stopped`` is the event
    of an :func:`interrupts` block already open."""
    if stopped is None:
        with interrupts() as own:
            wait_for_interrupt(own)
        return
    # a timed wait: the handler runs in this thread, between waits
    while not stopped.wait(0.5):
        pass


@contextlib.contextmanager
def quiet_waitress() -> Iterator[None]:
    """Silence waitress while servers stop: a request finishing just then logs a harmless traceback
    ("Bad file descriptor" from its closed trigger) that would look like a failure at the end of a run."""
    logger = logging.getLogger("waitress")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield  # ServerGroup.stop_all returns once the handler threads are done: no late one logs after this
    finally:
        logger.setLevel(level)
