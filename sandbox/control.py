"""The control plane every service mounts under ``/_sandbox`` (LocalStack's ``/_localstack``, WireMock's ``/__admin``).

=======  =========================  ================================================================
Method   Path                       Behaviour
=======  =========================  ================================================================
GET      /_sandbox/health           200 ``{"status": "ok", "service": name}`` once ready; until then 503
                                    ``{"status": "starting", "service", "waiting_for": [...]}``
GET      /_sandbox/info             name, version, start time, masked DB URL, row counts, outbox, faults
POST     /_sandbox/reset            204; every table emptied and re-created (``runtime.reset()``)
POST     /_sandbox/seed             ``{"seed": 1, ...options}`` -> 200 ``{"seed", "counts"}``
GET      /_sandbox/snapshot         ``{"service", "format": 1, "tables": {name: [row, ...]}}``
POST     /_sandbox/snapshot         the same JSON -> 204; replaces all data in one transaction
GET      /_sandbox/changes          the outbox change feed (see :mod:`sandbox.outbox`)
GET      /_sandbox/journal          ``?limit=&method=&path=`` -> ``{"entries": [...]}`` newest first
DELETE   /_sandbox/journal          204
GET      /_sandbox/faults           ``{"faults": [...]}``
POST     /_sandbox/faults           fault spec (see :mod:`sandbox.faults`) -> 201 fault with ``id``
DELETE   /_sandbox/faults           204, all faults removed
GET      /_sandbox/faults/<id>      200 fault, 404 unknown
DELETE   /_sandbox/faults/<id>      204, 404 unknown
=======  =========================  ================================================================

Health is readiness, not liveness: it answers 503 (with ``Retry-After: 1``) while the service cannot serve its
promise, naming what it waits for: a reset, seed or snapshot import in progress, and whatever the runtime's
optional ``waiting_for()`` hook returns. A mock is seeded before it serves, so it is ready from its first request.

Every error, including unknown control paths and wrong methods, answers in the service's own error body
via ``runtime.render_error``. Control routes open their own short transactions; the service must not wrap
``/_sandbox`` requests in a request-wide transaction (a long-poll would hold SQLite's writer lock).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import enum
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from importlib import metadata as importlib_metadata
from typing import Any, Protocol

import flask
import sqlalchemy as sa
from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.routing import RequestRedirect

from sandbox import jsonio
from sandbox.db import Database
from sandbox.errors import BadRequest, InternalError, MethodNotAllowed, NotFound, SandboxError, error_for_status
from sandbox.faults import FaultRegistry
from sandbox.journal import Journal
from sandbox.outbox import Outbox, add_changes_route, int_arg, json_response

SNAPSHOT_FORMAT = 1
DEFAULT_JOURNAL_LIMIT = 100
_DISTRIBUTION = "lead-to-cash-sandbox"


class ServiceRuntime(Protocol):
    """What the control plane needs from a service (each app factory builds one)."""

    name: str
    db: Database
    outbox: Outbox
    faults: FaultRegistry
    journal: Journal
    started_at: dt.datetime

    def render_error(self, err: SandboxError) -> flask.Response:
        """The service's wire-format error response for ``err`` (status from ``err.status``)."""

    def reset(self) -> None:
        """Empty every table and re-create the schema (and in-memory counters that derive from data)."""

    def seed(self, seed: int, options: dict[str, Any]) -> dict[str, Any]:
        """Load deterministic demo data; returns row counts (e.g. ``{"accounts": 20}``)."""

    def info(self) -> dict[str, Any]:
        """Service-specific extras merged into ``GET /_sandbox/info``."""

    # Optional: ``waiting_for() -> list[str]``, what the service still waits for before it is ready (empty:
    # ready); health answers 503 naming them. A runtime without it is ready once it serves.


# ---- helpers ------------------------------------------------------------------------------------------
def service_version() -> str:
    """The installed distribution's version (``0+unknown`` when running from an uninstalled checkout)."""
    try:
        return importlib_metadata.version(_DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def mask_url(url: str) -> str:
    """The database URL with any password replaced by ``***``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its credentials part
        return re.sub(r"//[^@/]*@", "//***@", url)


def json_body(*, required: bool = True) -> Any:
    """The request body parsed as JSON; malformed JSON -> 400. An empty body is ``None`` unless required."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequest("A JSON request body is required.")
        return None
    try:
        return jsonio.loads_request(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


def _error_response(runtime: ServiceRuntime, err: SandboxError) -> Response:
    response = runtime.render_error(err)
    for name, value in err.headers.items():
        response.headers.setdefault(name, value)
    return response


def install_error_handlers(blueprint: Blueprint, runtime: ServiceRuntime) -> None:
    """Make every failure inside ``blueprint`` answer in the service's error shape, never HTML."""

    def sandbox_error(err: SandboxError) -> Response:
        return _error_response(runtime, err)

    def http_error(err: HTTPException) -> Response | HTTPException:
        if isinstance(err, RequestRedirect):
            return err
        allowed = err.valid_methods if isinstance(err, WerkzeugMethodNotAllowed) else None
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return _error_response(runtime, error_for_status(err.code or 500, err.description or err.name, headers=headers))

    def unexpected(err: Exception) -> Response:
        return _error_response(runtime, InternalError(f"Unexpected error in the control plane: {err}"))

    blueprint.register_error_handler(SandboxError, sandbox_error)
    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.register_error_handler(Exception, unexpected)


def _empty(status: int = 204) -> Response:
    return Response(status=status)


# ---- snapshot -----------------------------------------------------------------------------------------
def _python_type(column: sa.Column[Any]) -> type | None:
    column_type = column.type
    # TypeDecorators (SQLModel's UTCDateTime, AutoString) report ``object``; their storage type knows better.
    while isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return None
    return None if python_type is object else python_type


def encode_value(value: Any) -> Any:
    """A column value as JSON, as :func:`sandbox.jsonio.json_default` writes it (Decimal -> exact string,
    temporal -> ISO 8601, bytes -> base64, UUID -> text), except where :func:`decode_value` must read it back
    by the column's type: an enum by its name (``Enum[name]``), a timedelta as seconds, anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        return jsonio.json_default(value)
    except TypeError:
        return str(value)


def decode_value(column: sa.Column[Any], value: Any) -> Any:
    """The inverse of :func:`encode_value`, driven by the column's type; raises ValueError when it can't."""
    if value is None:
        return None
    python_type = _python_type(column)
    if python_type is None or python_type in (dict, list) or isinstance(column.type, sa.JSON):
        return value
    if python_type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true/false, got {value!r}")
        return value
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if python_type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if python_type is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected a decimal string, got {value!r}")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"expected a decimal string, got {value!r}") from None
    if python_type is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    if python_type is dt.timedelta:
        return dt.timedelta(seconds=float(value))
    if isinstance(value, str):
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(value)
        if python_type is dt.date:
            return dt.date.fromisoformat(value)
        if python_type is dt.time:
            return dt.time.fromisoformat(value)
        if python_type is uuid.UUID:
            return uuid.UUID(value)
        if python_type is bytes:
            return base64.b64decode(value, validate=True)
        if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
            try:
                return python_type[value]
            except KeyError:
                raise ValueError(f"expected one of {[m.name for m in python_type]}, got {value!r}") from None
    if isinstance(value, python_type):
        return value
    raise ValueError(f"expected {python_type.__name__}, got {value!r}")


def export_snapshot(db: Database, service: str) -> dict[str, Any]:
    """Every row of every table of ``db`` as JSON-safe dicts, in primary-key order."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with db.transaction(may_sync=False) as connection:
        for table in db.tables():
            query = sa.select(table)
            if table.primary_key.columns:
                query = query.order_by(*table.primary_key.columns)
            tables[table.name] = [
                {name: encode_value(value) for name, value in row._mapping.items()} for row in connection.execute(query)
            ]
    return {"service": service, "format": SNAPSHOT_FORMAT, "tables": tables}


def _decode_snapshot(db: Database, service: str, data: Any) -> dict[sa.Table, list[dict[str, Any]]]:
    if not isinstance(data, dict):
        raise BadRequest("A snapshot must be a JSON object with 'service', 'format' and 'tables'.")
    if data.get("format") != SNAPSHOT_FORMAT:
        raise BadRequest(f"Unsupported snapshot format {data.get('format')!r}; expected {SNAPSHOT_FORMAT}.")
    if data.get("service") not in (None, service):
        raise BadRequest(f"This snapshot belongs to service '{data.get('service')}', not '{service}'.")
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict):
        raise BadRequest("Snapshot 'tables' must be an object of table name -> list of rows.")
    known = {table.name: table for table in db.tables()}
    unknown = sorted(set(raw_tables) - set(known))
    if unknown:
        raise BadRequest(f"Snapshot names unknown table(s): {', '.join(unknown)}.")
    decoded: dict[sa.Table, list[dict[str, Any]]] = {}
    for name, rows in raw_tables.items():
        table = known[name]
        if not isinstance(rows, list):
            raise BadRequest(f"Snapshot table '{name}' must be a list of rows.")
        out: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise BadRequest(f"Snapshot table '{name}' row {index} must be an object.")
            bad = sorted(set(row) - set(table.c.keys()))
            if bad:
                raise BadRequest(f"Snapshot table '{name}' row {index} has unknown column(s): {', '.join(bad)}.")
            values: dict[str, Any] = {}
            for column_name, value in row.items():
                try:
                    values[column_name] = decode_value(table.c[column_name], value)
                except (ValueError, TypeError) as exc:
                    raise BadRequest(f"Snapshot table '{name}' row {index} column '{column_name}': {exc}.") from None
            out.append(values)
        decoded[table] = out
    return decoded


def import_snapshot(db: Database, service: str, data: Any) -> None:
    """Replace every table's rows with the snapshot's, atomically; tables it omits end up empty.

    The whole snapshot is validated before anything is touched; a database error rolls everything back.
    """
    decoded = _decode_snapshot(db, service, data)
    tables = db.tables()
    with db.transaction() as connection:
        for table in reversed(tables):
            connection.execute(sa.delete(table))
        for table in tables:
            rows = decoded.get(table, [])
            # executemany needs one column set per statement; exported rows always share one.
            start = 0
            while start < len(rows):
                end = start + 1
                while end < len(rows) and rows[end].keys() == rows[start].keys():
                    end += 1
                connection.execute(sa.insert(table), rows[start:end])
                start = end
        if connection.dialect.name == "postgresql":
            _realign_sequences(connection, tables)
        db.forget_memo()  # the store's memoized reads cannot have seen these writes


def _realign_sequences(connection: sa.Connection, tables: list[sa.Table]) -> None:
    # Explicit ids bypass PostgreSQL sequences; move each one past the highest imported id.
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        connection.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"COALESCE((SELECT MAX({connection.dialect.identifier_preparer.quote(column.name)}) "
                f"FROM {connection.dialect.identifier_preparer.format_table(table)}), 0) + 1, false)"
            ),
            {"table": table.fullname, "column": column.name},
        )


def table_counts(db: Database) -> dict[str, int]:
    """Row count of every table."""
    with db.transaction(may_sync=False) as connection:
        return {
            table.name: int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
            for table in db.tables()
        }


# ---- the blueprint ------------------------------------------------------------------------------------
class _Busy:
    """The data operations in progress (reset, seed, snapshot import): while one runs, the service's data is
    half there, so health names it and answers 503. Counted per name: requests may overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        with self._lock:
            self._running[name] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[name] -= 1

    def reasons(self) -> list[str]:
        with self._lock:
            return [name for name, count in self._running.items() if count > 0]


def control_blueprint(runtime: ServiceRuntime) -> Blueprint:
    """The ``/_sandbox`` control plane of one service, change feed included."""
    bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")
    install_error_handlers(bp, runtime)

    def route(rule: str, methods: list[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return bp.route(rule, methods=methods)

    busy = _Busy()

    @route("/health", ["GET"])
    def health() -> Response:
        waiting = busy.reasons()
        hook = getattr(runtime, "waiting_for", None)
        if callable(hook):
            waiting.extend(str(reason) for reason in hook())
        if waiting:
            response = json_response({"status": "starting", "service": runtime.name, "waiting_for": waiting}, 503)
            response.headers["Retry-After"] = "1"
            return response
        return json_response({"status": "ok", "service": runtime.name})

    @route("/info", ["GET"])
    def info() -> Response:
        started = runtime.started_at
        payload: dict[str, Any] = {
            "name": runtime.name,
            "version": service_version(),
            "started_at": started.isoformat() if isinstance(started, (dt.datetime, dt.date)) else started,
            "database": mask_url(runtime.db.url),
            "tables": table_counts(runtime.db),
            "outbox": {"latest_seq": runtime.outbox.latest_seq(runtime.db)},
            "faults": len(runtime.faults),
            "journal": {"entries": len(runtime.journal), "capacity": runtime.journal.capacity},
        }
        payload.update(runtime.info())
        return json_response(payload)

    @route("/reset", ["POST"])
    def reset() -> Response:
        with busy("reset"):
            runtime.reset()
        runtime.outbox.latest_seq(runtime.db)  # the feed may have rewound
        runtime.outbox.notify()
        return _empty()

    @route("/seed", ["POST"])
    def seed() -> Response:
        body = json_body(required=False)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise BadRequest('The seed request body must be a JSON object like {"seed": 1}.')
        options = dict(body)
        seed_value = options.pop("seed", 1)
        if isinstance(seed_value, bool) or not isinstance(seed_value, int):
            raise BadRequest(f"'seed' must be an integer, got {seed_value!r}.")
        with busy("seed"):
            counts = runtime.seed(seed_value, options)
        return json_response({"seed": seed_value, "counts": counts})

    @route("/snapshot", ["GET"])
    def snapshot_export() -> Response:
        return json_response(export_snapshot(runtime.db, runtime.name))

    @route("/snapshot", ["POST"])
    def snapshot_import() -> Response:
        body = json_body()
        with busy("snapshot import"):
            import_snapshot(runtime.db, runtime.name, body)
            after_import = getattr(runtime, "after_import", None)
            if callable(after_import):
                after_import()  # e.g. reload the store's row-version floor
        runtime.outbox.latest_seq(runtime.db)
        runtime.outbox.notify()
        return _empty()

    @route("/journal", ["GET"])
    def journal_list() -> Response:
        limit = int_arg("limit", DEFAULT_JOURNAL_LIMIT, 1)
        method = request.args.get("method") or None
        path = request.args.get("path") or None
        try:
            entries = runtime.journal.entries(limit, method, path)
        except re.error as exc:
            raise BadRequest(f"Query parameter 'path' is not a valid regular expression: {exc}.") from None
        return json_response({"entries": entries})

    @route("/journal", ["DELETE"])
    def journal_clear() -> Response:
        runtime.journal.clear()
        return _empty()

    @route("/faults", ["GET"])
    def faults_list() -> Response:
        return json_response({"faults": [fault.to_dict() for fault in runtime.faults.list()]})

    @route("/faults", ["POST"])
    def faults_add() -> Response:
        fault = runtime.faults.add(json_body())
        response = json_response(fault.to_dict(), 201)
        response.headers["Location"] = flask.url_for(".faults_get", fault_id=fault.id)
        return response

    @route("/faults", ["DELETE"])
    def faults_clear() -> Response:
        runtime.faults.clear()
        return _empty()

    @route("/faults/<fault_id>", ["GET"])
    def faults_get(fault_id: str) -> Response:
        fault = runtime.faults.get(fault_id)
        if fault is None:
            raise NotFound(f"No fault with id '{fault_id}'.")
        return json_response(fault.to_dict())

    @route("/faults/<fault_id>", ["DELETE"])
    def faults_remove(fault_id: str) -> Response:
        if not runtime.faults.remove(fault_id):
            raise NotFound(f"No fault with id '{fault_id}'.")
        return _empty()

    add_changes_route(bp, runtime)

    @route("/<path:rest>", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def unknown(rest: str) -> Response:
        # Routing errors never reach blueprint handlers; this catch-all keeps them in the service's shape.
        adapter = flask.current_app.url_map.bind_to_environ(request.environ)
        allowed = []
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            try:
                endpoint, _ = adapter.match(request.path, method=method)
            except HTTPException:
                continue
            if endpoint != f"{bp.name}.unknown":
                allowed.append(method)
        if allowed:
            raise MethodNotAllowed(
                f"Method {request.method} is not allowed on {request.path}; use {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise NotFound(f"No control-plane resource at {request.path}.")

    return bp
