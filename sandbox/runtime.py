"""Builds one emulated service as a Flask app: the piece every mock's ``create_app`` delegates to.

A :class:`ServiceSpec` says what a mock consists of (model, dialect, rules, actions, seed); :func:`build_app`
wires those to a database, the outbox, the OData service, the control plane, fault injection, the request
journal and error handlers that always answer in the service's own error shape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from sandbox.auth import install_service_auth
from sandbox.browse import install_browser
from sandbox.control import control_blueprint
from sandbox.db import Database, platform_metadata
from sandbox.errors import MethodNotAllowed, SandboxError, error_for_status
from sandbox.faults import FaultRegistry, install_fault_hook
from sandbox.journal import Journal, install_journal_hook
from sandbox.limits import install_service_limits
from sandbox.livesync import LiveSyncHook, Sender
from sandbox.locks import SYNC_GATE_OPTION, FileSyncGate, SyncGate
from sandbox.logs import install_request_log
from sandbox.odata.actions import ActionRegistry
from sandbox.odata.dataverse import codes
from sandbox.odata.dialect import Dialect
from sandbox.odata.model import Model
from sandbox.odata.service import ODataService, identity_of
from sandbox.odata.store import EntityBehavior, Store
from sandbox.outbox import Outbox
from sandbox.shared import SHARED_STATE_OPTION, shared_state
from sandbox.websafety import EdgePolicy, configure_edge, install_edge_safety

log = logging.getLogger(__name__)

#: service options (``ServiceConfig.options``) naming the host names and origins the edge checks let through
ALLOWED_HOSTS_OPTION = "allowed_hosts"
ALLOWED_ORIGINS_OPTION = "allowed_origins"
#: the Dataverse codes of the edge refusals (F&O's error shape has no code): a privilege, then OData's own layer
EDGE_CODES = {403: codes.PRIVILEGE_DENIED, 415: codes.UNSPECIFIED, 421: codes.UNSPECIFIED}

SeedFunction = Callable[[Store, int, dict[str, Any]], dict[str, int]]


@dataclass
class ServiceSpec:
    """What one emulated service is made of."""

    name: str
    build_model: Callable[[], Model]
    build_dialect: Callable[[ServiceConfig], Dialect]
    behaviors: Callable[[], dict[str, EntityBehavior]]
    register_actions: Callable[[ActionRegistry], None]
    seed: SeedFunction


@dataclass
class ServiceConfig:
    """How to run a service: storage, seed data, and dialect settings."""

    database_url: str = "sqlite://"
    seed: int | None = 1
    seed_options: dict[str, Any] = field(default_factory=dict)
    journal_capacity: int = 1000
    options: dict[str, Any] = field(default_factory=dict)


class Runtime:
    """The live parts of one service, kept in ``app.extensions['sandbox']``."""

    def __init__(self, spec: ServiceSpec, config: ServiceConfig) -> None:
        self.spec = spec
        self.config = config
        self.name = spec.name
        self.model = spec.build_model()
        self.model.check()
        self.dialect = spec.build_dialect(config)
        self.db = Database(config.database_url, [self.model.metadata, platform_metadata()])
        self.db.create_all()
        self.outbox = Outbox()
        self.faults = FaultRegistry()
        self.journal = Journal(config.journal_capacity)
        if config.options.get(SHARED_STATE_OPTION):  # several processes serve this service (sandbox.shared)
            self.faults, self.journal = shared_state(self.db.engine, config.journal_capacity)
        self.actions = ActionRegistry()
        spec.register_actions(self.actions)
        self.store = Store(self.model, self.db, self.outbox, spec.behaviors())
        self.service = ODataService(
            name=spec.name, model=self.model, dialect=self.dialect, db=self.db, store=self.store, actions=self.actions
        )
        self.started_at = dt.datetime.now(dt.UTC)

    # ---- ServiceRuntime protocol (control plane) ------------------------------------------------------
    def render_error(self, err: SandboxError) -> Response:
        return self.dialect.render_error(err)

    def reset(self) -> None:
        self.db.drop_all()
        self.db.create_all()
        self.store.reset_versions()
        self.outbox.latest_seq(self.db)

    def set_live_sync(self, sender: Sender | None, gate: SyncGate | None = None) -> None:
        """Call ``sender`` with each transaction's changes before it commits (None turns live sync off).

        ``gate`` is the stack's live-sync gate, shared with the other service the bridge writes to (see
        :mod:`sandbox.locks`): the services of one process must share one, or two live syncs crossing each
        other wait for each other. Without one, the file gate named by the service option
        :data:`~sandbox.locks.SYNC_GATE_OPTION` (services in several processes), else a gate of its own.
        """
        if sender is None:
            self.store.commit_hooks = []
            self.db.sync_gate = None
            return
        if gate is None:
            path = self.config.options.get(SYNC_GATE_OPTION)
            gate = FileSyncGate(path) if path else SyncGate()
        self.db.sync_gate = gate
        self.db.sync_side = self.name  # on a row-locking store, writes from one service share the gate
        self.store.commit_hooks = [LiveSyncHook(self.name, self.model, self.store, sender, self.service)]

    def after_import(self) -> None:
        """A snapshot import bypassed the store: row versions must be re-read from the data."""
        self.store.reset_versions()
        self.outbox.latest_seq(self.db)

    def seed(self, seed: int, options: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction():
            return self.spec.seed(self.store, seed, options)

    def is_empty(self) -> bool:
        with self.db.transaction(may_sync=False):
            for entity in self.model.entities.values():
                if entity.alias_of is None and self.store.find(entity.name, limit=1):
                    return False
        return True

    def info(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect.name,
            "root": self.dialect.root,
            "entity_sets": sorted(e.entity_set for e in self.model.entities.values()),
            "actions": sorted(self.actions.names()),
        }


def build_app(spec: ServiceSpec, config: ServiceConfig | None = None) -> Flask:
    """The Flask app of one service. Seeds an empty database when ``config.seed`` is set."""
    config = config or ServiceConfig()
    runtime = Runtime(spec, config)
    app = Flask(spec.name)
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["sandbox"] = runtime
    # Host and Origin checks sit outermost, before authentication (inserted first whenever installed).
    install_edge_safety(app, runtime.render_error, codes=EDGE_CODES, policy=EdgePolicy())
    configure_edge(
        app,
        allowed_hosts=config.options.get(ALLOWED_HOSTS_OPTION, ()),
        allowed_origins=config.options.get(ALLOWED_ORIGINS_OPTION, ()),
    )
    # A line per request at info, with the journal's identity (its clock starts first, its line is written last).
    install_request_log(app, spec.name, identity_of)
    # Authentication (sandbox.auth.guard): after the Host/Origin checks, before the journal and faults.
    install_service_auth(app, runtime)
    # Limits (--limits) and latency (--latency-profile), sandbox.limits: after authentication (they need the
    # caller), before the journal (a 429 is journaled like any answer); nothing is installed when both are off.
    install_service_limits(app, config.options, runtime.dialect.name, identity_of, runtime.render_error)
    # The journal goes first: a fault answers from before_request and would skip later hooks.
    install_journal_hook(app, runtime.journal, identity_of)
    install_fault_hook(app, runtime.faults, runtime.render_error)
    app.register_blueprint(control_blueprint(runtime))
    runtime.service.register(app)
    install_browser(app, runtime)  # the data browser's pages: GET / for browsers, /_browse/..., /_static/...
    _install_error_handlers(app, runtime)
    if config.seed is not None and runtime.is_empty():
        runtime.seed(config.seed, dict(config.seed_options))
    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["sandbox"]


def _install_error_handlers(app: Flask, runtime: Runtime) -> None:
    @app.errorhandler(SandboxError)
    def sandbox_error(err: SandboxError) -> Response:
        return runtime.render_error(err)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        if status == 404:
            return runtime.render_error(runtime.dialect.unknown_set(request.path))
        if status == 405:
            allowed = err.valid_methods if isinstance(err, WerkzeugMethodNotAllowed) else None
            return runtime.render_error(
                MethodNotAllowed(
                    f"The requested resource does not support http method '{request.method}'.",
                    headers={"Allow": ", ".join(allowed or ())},
                )
            )
        return runtime.render_error(error_for_status(status, err.description or err.name))

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.path, exc_info=err)
        return runtime.render_error(error_for_status(500, f"An unexpected error occurred: {type(err).__name__}: {err}"))
