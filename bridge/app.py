"""The bridge service: admin API, live-sync endpoint, and the wiring of engine, lifecycle and state."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from bridge import synclog
from bridge.console import console_blueprint
from bridge.engine import Source, SyncEngine, SyncError
from bridge.lifecycle import Lifecycle
from bridge.mapping import BUILTIN_MAPS, MapValidationError, TableMap, load_maps
from bridge.metrics import BridgeMetrics, metrics_blueprint
from bridge.readiness import Readiness, Startup, StartupError, readiness
from bridge.resolution import OutcomeResolver
from bridge.state import NOT_RUNNING, RUNNING, ActivityRow, BridgeMetadata, BridgeState, CatchupErrorRow, TraceRow
from bridge.worker import LINGER, AsyncWorker
from sandbox import jsonio
from sandbox.auth import AuthSettings, bridge_api_roles, bridge_is_open, install_auth
from sandbox.clients import ClientCredentials, ControlClient, SalesClient, ScmClient
from sandbox.db import Database
from sandbox.errors import BadRequest, NotFound, SandboxError, error_for_status
from sandbox.logs import install_request_log
from sandbox.odata.model import Model
from sandbox.odata.service import identity_of
from sandbox.websafety import install_edge_safety
from sandbox.wellknown import BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET, INTEGRATION_IDENTITY

log = logging.getLogger(__name__)


@dataclass
class BridgeConfig:
    """Where the two services are, what their tables look like, and how the bridge keeps its state.

    ``sales_model``/``scm_model`` are the two services' models (the tables the maps name and the bridge
    reads and writes); whoever composes the stack passes them, the bridge never imports the services.
    ``sales_url``/``scm_url`` are server origins (``http://127.0.0.1:5101``); the transports, when given,
    carry the traffic instead (``httpx.WSGITransport`` in one process).
    """

    sales_model: Model
    scm_model: Model
    sales_url: str = "http://127.0.0.1:5101"
    scm_url: str = "http://127.0.0.1:5102"
    database_url: str = "sqlite://"
    maps_dirs: list[Path] = field(default_factory=list)
    sales_transport: httpx.BaseTransport | None = None
    scm_transport: httpx.BaseTransport | None = None
    #: run the async drainers with the app (off: tests drive ``runtime.worker`` step by step)
    start_worker: bool = True
    #: how long one long poll of a change feed waits for news (also bounds how long stopping takes)
    async_poll_wait: float = 1.0
    #: how long an async drainer lets changes gather after a short page (more lag, larger pages)
    async_linger: float = LINGER
    #: async drainer threads per source service; above one they share the feeds through claims (bridge.claims)
    async_drain_workers: int = 1
    #: whether (and against which identity service) the bridge checks the tokens of its callers
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: how the bridge gets its tokens for the two services (default: its own well-known app registration, the
    #: identity service found from the services' 401 challenge)
    credentials: httpx.Auth | None = None


#: the routes of the console's HTML forms: the only ones that take form posts (sandbox.websafety)
CONSOLE_FORM_ROUTES = ("/console/",)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, content_type="application/json")


def error_response(error: SandboxError) -> Response:
    response = _json({"error": {"code": error.code, "message": error.message}}, error.status)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


class BridgeRuntime:
    """Everything the bridge app holds, in ``app.extensions['bridge']``."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.sales_model = config.sales_model
        self.scm_model = config.scm_model
        self.maps: list[TableMap] = load_maps([BUILTIN_MAPS, *config.maps_dirs], self.scm_model, self.sales_model)
        self.db = Database(config.database_url, [BridgeMetadata.metadata])
        self.db.create_all()
        self.state = BridgeState(self.db)
        identity = INTEGRATION_IDENTITY
        # the bridge's own app registration: its tokens make it the integration identity in both services
        auth = config.credentials or ClientCredentials(BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET)
        self.sales = SalesClient(config.sales_url, transport=config.sales_transport, identity=identity, auth=auth)
        self.scm = ScmClient(config.scm_url, transport=config.scm_transport, identity=identity, auth=auth)
        self.controls: dict[Source, ControlClient] = {
            "sales": ControlClient(config.sales_url, transport=config.sales_transport, identity=identity, auth=auth),
            "scm": ControlClient(config.scm_url, transport=config.scm_transport, identity=identity, auth=auth),
        }
        self.engine = SyncEngine(self.maps, self.sales, self.scm, self.sales_model, self.scm_model, self.state)
        self.lifecycle = Lifecycle(self.engine, self.state, self.controls)
        # live units whose outcome on the other side is unknown are resolved before they are answered
        self.resolver = self.engine.resolver = OutcomeResolver(self.engine, self.state)
        self.worker = AsyncWorker(
            self.engine,
            self.state,
            self.lifecycle,
            self.controls,
            poll_wait=config.async_poll_wait,
            linger=config.async_linger,
            drain_workers=config.async_drain_workers,
        )
        self.lifecycle.attach_drainer(self.worker)
        #: what ``/_sandbox/health`` waits for (see :mod:`bridge.readiness`); the worker's recovery reports to it
        self.startup = Startup()
        self.worker.startup = self.startup
        synclog.attach(self.state, self.startup)  # a log line per synced unit and map state change
        self.metrics = BridgeMetrics(self)
        self.started_at = dt.datetime.now(dt.UTC)
        for table_map in self.maps:
            self.state.map_row(table_map.id)

    def live_maps(self) -> Callable[[TableMap], bool]:
        states = self.state.run_states()  # from memory: a live call must not read the bridge database
        return lambda m: states.get(m.id) == (RUNNING, "live")

    def live(self, payload: dict[str, Any], writeback: list[dict[str, Any]] | None = None) -> int:
        """Apply one source transaction synchronously (called by a service before it commits); what the
        target computed for the source's rows is added to ``writeback`` (see :mod:`bridge.writeback`)."""
        source = payload.get("source")
        if source not in ("sales", "scm"):
            raise BadRequest("'source' must be 'sales' or 'scm'.")
        changes = payload.get("changes")
        if not isinstance(changes, list):
            raise BadRequest("'changes' must be a list.")
        model = self.sales_model if source == "sales" else self.scm_model
        for change in changes:
            if (
                not isinstance(change, dict)
                or change.get("table") not in model.entities
                or change.get("operation") not in ("create", "update", "delete")
                or not isinstance(change.get("after"), (dict, type(None)))
            ):
                raise BadRequest(
                    "Each change needs a known 'table', an 'operation' (create, update or delete) and an 'after' image."
                )
        related = payload.get("related", {})
        if not isinstance(related, dict):
            raise BadRequest("'related' must be an object.")
        return self.engine.apply(
            source,
            changes,
            maps=self.live_maps(),
            related=related,
            allow_fetch=False,
            via="live",
            writeback=writeback if writeback is not None else [],
        )

    def run_all(
        self, *, initial_sync: bool = True, master: str = "scm", only_new: bool = False
    ) -> list[dict[str, Any]]:
        """Start every map in dependency order (``POST /api/maps/run-all``).

        ``only_new`` starts only maps that never finished an initial sync and are not running, so a
        restart keeps what the user paused or stopped (and the worker's recovery finishes the rest).
        """
        out = []
        for table_map in self.maps:
            if only_new and not self._never_ran(table_map.id):
                out.append(self.lifecycle.status(table_map.id))
                continue
            out.append(self.lifecycle.run(table_map.id, initial_sync=initial_sync, master=master))
        return out

    def _never_ran(self, map_id: str) -> bool:
        row = self.state.map_row(map_id)
        return not row["initial_sync_done"] and row["state"] == NOT_RUNNING

    def start_maps(self, *, only_new: bool = False, master: str = "scm") -> list[dict[str, Any]]:
        """The bridge's startup (what ``sandbox up`` runs once the bridge serves): every map, or with
        ``only_new`` the maps that never ran, in dependency order, initial sync first.

        Health answers 503 until it is done (see :mod:`bridge.readiness`). A map that cannot start ends the
        startup: the maps after it stay as they are, health reports the failure (503, ``"failed"``) and
        :class:`~bridge.readiness.StartupError` names the map and why.
        """
        chosen = [m.id for m in self.maps if not only_new or self._never_ran(m.id)]
        self.startup.begin(chosen)
        out = []
        for table_map in self.maps:
            if table_map.id not in chosen:
                out.append(self.lifecycle.status(table_map.id))
                continue
            try:
                out.append(self.lifecycle.run(table_map.id, initial_sync=True, master=master))
            except Exception as exc:  # noqa: BLE001 - any failure ends the startup, said per map
                message = f"initial sync failed: {getattr(exc, 'message', None) or exc}"
                self.startup.finish({table_map.id: message})
                raise StartupError({table_map.id: message}) from exc
        self.startup.finish()
        return out

    def readiness(self) -> Readiness:
        """What ``/_sandbox/health`` answers: ready once the maps it started run (see :mod:`bridge.readiness`)."""
        rows = self.state.map_rows()
        statuses: dict[str, dict[str, Any]] = {}
        for table_map in self.maps:
            status: dict[str, Any] = {"state": rows.get(table_map.id, {}).get("state", NOT_RUNNING)}
            progress = self.lifecycle.initial.progress.get(table_map.id)
            if progress is not None:
                status["initial_sync_progress"] = dict(progress)
            statuses[table_map.id] = status
        return readiness(self.startup, [m.id for m in self.maps], statuses)

    def close(self) -> None:
        self.worker.stop()
        self.resolver.stop()
        self.sales.close()
        self.scm.close()
        for control in self.controls.values():
            control.close()
        self.state.close()
        self.db.dispose()


def create_app(config: BridgeConfig) -> Flask:
    """The bridge Flask app: ``/api/maps`` admin API, ``/api/live`` for services, ``/_sandbox/health``,
    ``/metrics`` (Prometheus) and the console at ``/``; the async drainers start with it."""
    runtime = BridgeRuntime(config)
    app = Flask("bridge")
    app.extensions["bridge"] = runtime
    # Host and Origin checks sit outermost, before authentication (inserted first whenever installed);
    # form posts are taken only by the console's actions.
    install_edge_safety(app, error_response, form_routes=CONSOLE_FORM_ROUTES)
    install_request_log(
        app, "bridge", identity_of
    )  # a line per request at info (its clock starts first, its line is last)
    # Authentication (sandbox.auth.guard): after the Host/Origin checks, before any other request hook.
    install_auth(app, config.auth, error_response, is_open=bridge_is_open, api_roles=bridge_api_roles)
    app.register_blueprint(api_blueprint(runtime))
    app.register_blueprint(metrics_blueprint(runtime))
    app.register_blueprint(console_blueprint(runtime))
    if runtime.config.start_worker:
        runtime.worker.start()

    @app.errorhandler(SandboxError)
    def sandbox_error(err: SandboxError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        # a 405 names the methods the URL takes (werkzeug knows them from the routes)
        allowed = err.valid_methods if isinstance(err, WerkzeugMethodNotAllowed) else None
        headers = {"Allow": ", ".join(allowed or ())} if err.code == 405 else None
        return error_response(error_for_status(err.code or 500, err.description or err.name, "", headers=headers))

    @app.errorhandler(httpx.TransportError)
    def unreachable(err: httpx.TransportError) -> Response:
        # Sales or SCM did not answer at all (down, a port not listening): theirs to fix, not ours, and
        # worth trying again; a map whose initial sync it interrupted is left Not running.
        return error_response(
            error_for_status(
                503,
                f"A service the bridge calls did not answer: {type(err).__name__}: {err}",
                "",
                headers={"Retry-After": "5"},
            )
        )

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:
        log.exception("unexpected bridge error")
        return error_response(error_for_status(500, f"An unexpected error occurred: {type(err).__name__}: {err}", ""))

    return app


def runtime_of(app: Flask) -> BridgeRuntime:
    """The runtime of a bridge app made by :func:`create_app`."""
    runtime = app.extensions["bridge"]
    if not isinstance(runtime, BridgeRuntime):
        raise TypeError("not a bridge app")
    return runtime


#: what an alert rule counts: every failure, or only application (data) or network (transient) ones
ALERT_KINDS = ("any", "application", "network")


def _body() -> dict[str, Any]:
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        body = jsonio.loads_request(raw)
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}", "") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", "")
    return body


def api_blueprint(runtime: BridgeRuntime) -> Blueprint:
    api = Blueprint("bridge_api", __name__)
    life = runtime.lifecycle

    @api.get("/_sandbox/health")
    def health() -> Response:
        # 503 until the maps it was asked to start run (initial syncs done), naming what it waits for
        ready = runtime.readiness()
        response = _json(ready.body, ready.status_code)
        if not ready.ready and ready.body["status"] == "starting":
            response.headers["Retry-After"] = "1"
        return response

    @api.get("/api/maps")
    def maps() -> Response:
        return _json([life.status(m.id) for m in runtime.maps])

    @api.get("/api/maps/<map_id>")
    def one_map(map_id: str) -> Response:
        return _json(life.detail(map_id))

    @api.post("/api/maps/<map_id>/run")
    def run(map_id: str) -> Response:
        body = _body()
        return _json(
            life.run(
                map_id,
                initial_sync=bool(body.get("initial_sync", True)),
                master=str(body.get("master", "sales")),
                mode=str(body.get("mode", "live")),
                with_dependencies=bool(body.get("with_dependencies", False)),
                skip_errors=bool(body.get("skip_errors", False)),
            )
        )

    @api.post("/api/maps/<map_id>/pause")
    def pause(map_id: str) -> Response:
        return _json(life.pause(map_id))

    @api.post("/api/maps/<map_id>/resume")
    def resume(map_id: str) -> Response:
        return _json(life.resume(map_id, str(_body().get("mode", "catchup"))))  # type: ignore[arg-type]

    @api.post("/api/maps/<map_id>/stop")
    def stop(map_id: str) -> Response:
        return _json(life.stop(map_id))

    @api.post("/api/maps/run-all")
    def run_all() -> Response:
        body = _body()
        return _json(
            runtime.run_all(initial_sync=bool(body.get("initial_sync", True)), master=str(body.get("master", "scm")))
        )

    @api.get("/api/maps/<map_id>/activity")
    def activity(map_id: str) -> Response:
        life.table_map(map_id)
        return _json(runtime.state.rows(ActivityRow, map_id, limit=_limit()))

    @api.get("/api/maps/<map_id>/queued")
    def queued(map_id: str) -> Response:
        return _json(life.queued(map_id, limit=_limit()))

    @api.get("/api/maps/<map_id>/catchup-errors")
    def catchup_errors(map_id: str) -> Response:
        life.table_map(map_id)
        return _json(runtime.state.rows(CatchupErrorRow, map_id, limit=_limit()))

    @api.post("/api/maps/<map_id>/catchup-errors/retry")
    def retry(map_id: str) -> Response:
        ids = _body().get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) for i in ids)):
            raise BadRequest("'ids' must be a list of catch-up error ids.", "")
        return _json(life.retry_catchup(map_id, ids))

    @api.delete("/api/maps/<map_id>/catchup-errors")
    def delete_catchup(map_id: str) -> Response:
        life.table_map(map_id)
        return _json({"deleted": runtime.state.delete_catchup_errors(map_id)})

    @api.get("/api/maps/<map_id>/initial-sync")
    def initial_sync(map_id: str) -> Response:
        life.table_map(map_id)
        report = life.initial.last_reports.get(map_id)
        return _json({"last": report.as_dict() if report else None, "errors": life.initial.errors(map_id)})

    @api.put("/api/maps/<map_id>/alerts")
    def alerts(map_id: str) -> Response:
        try:
            rules = jsonio.loads_request(request.get_data() or b"[]")
        except ValueError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}", "") from None
        if not isinstance(rules, list):
            raise BadRequest("Send a list of alert rules.", "")
        for index, rule in enumerate(rules):
            # A rule of another kind would be stored and never fire: the errors the lifecycle counts are
            # of these kinds only (AlertRule.kind).
            kind = rule.get("kind", "any") if isinstance(rule, dict) else "any"
            if not isinstance(kind, str) or kind not in ALERT_KINDS:
                raise BadRequest(f"Alert rule {index}: the kind {kind!r} is not one of {', '.join(ALERT_KINDS)}.", "")
        return _json(life.set_alerts(map_id, rules))

    @api.get("/api/maps/<map_id>/traces")
    def traces(map_id: str) -> Response:
        life.table_map(map_id)
        rows = runtime.state.rows(TraceRow, map_id, limit=_limit())
        key = request.args.get("key")
        if key:
            rows = [r for r in rows if key.lower() in json.dumps(r.get("key"), default=str).lower()]
        return _json(rows)

    @api.get("/api/async")
    def async_info() -> Response:
        return _json(runtime.worker.info())

    @api.post("/api/live")
    def live() -> Response:
        started = time.perf_counter()
        writeback: list[dict[str, Any]] = []  # the source applies these before it commits (bridge/writeback.py)
        try:
            written = runtime.live(_body(), writeback)
        except SyncError as error:
            status = 503 if error.transient else 400
            return error_response(error_for_status(status, error.message, ""))
        if written:
            runtime.metrics.observe_live(time.perf_counter() - started)
        return _json({"written": written, "writeback": writeback})

    return api


def _limit() -> int:
    try:
        return max(1, min(int(request.args.get("limit", 100)), 10_000))
    except ValueError:
        raise BadRequest("'limit' must be a number.", "") from None


__all__ = [
    "create_app",
    "BridgeConfig",
    "BridgeRuntime",
    "runtime_of",
    "MapValidationError",
    "NotFound",
    "StartupError",
]
