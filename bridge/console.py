"""The bridge console: server-rendered HTML pages over the same runtime the admin API uses.

Modelled on F&O's Data management > Dual-write page, laid out for daily use on a laptop screen:

* ``GET /``: an overview (maps by state, errors, the largest lag, records synced in the last minute, a
  chart of throughput and lag over the last minutes) above a compact map list, one row per map with its
  actions in a menu, filtered by state and name (``?state=``, ``?q=``);
* ``GET /maps/<id>``: one map: facts, its own charts, table mappings, activity, queued records, catch-up
  errors with Retry / Delete, initial-sync results, alert rules (editable) and its record traces;
* ``GET /traces``: trace search by key (``?key=``, ``?map=``), each trace linked to the records in the two
  services' data browsers.

The pages stay live without reloading: htmx polls the fragments under ``/console/fragments/`` and swaps
them in; the charts (uPlot) read ``/console/series``. Actions are ordinary forms (``POST
/console/maps/<id>/<action>``, answered by a redirect back with a message), so they work without JavaScript
too; with it, htmx's boost submits them in place. Every POST carries the console's CSRF token (a secret of
this process); a POST without it, or with another, is refused with a 403 in the bridge's error shape.
"""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from bridge.series import WINDOW_SECONDS, SyncSeries
from bridge.state import ActivityRow, CatchupErrorRow, TraceRow
from sandbox.browse import wants_html
from sandbox.errors import BadRequest, SandboxError, error_for_status
from sandbox.odata.literals import format_literal
from sandbox.static import static_blueprint

if TYPE_CHECKING:
    from bridge.app import BridgeRuntime
    from bridge.mapping import TableMap

#: the map states the list filters by, in the order the overview counts them
STATES = ("Running", "Paused", "Resuming", "Initializing", "Not running", "Error")
#: the form field every console POST carries
CSRF_FIELD = "csrf_token"
#: how often the pages poll their fragments (seconds)
POLL_SECONDS = 3
TEMPLATES = Path(__file__).parent / "templates"
#: where the bridge app keeps its :class:`Console` in ``app.extensions``
CONSOLE_EXTENSION = "bridge.console"


class Console:
    """What the console keeps per bridge app: its CSRF secret and the sync series its charts draw."""

    def __init__(self, runtime: BridgeRuntime) -> None:
        self.runtime = runtime
        #: the CSRF token of this process: every console form carries it, every console POST must
        self.csrf_token = secrets.token_urlsafe(32)
        self.series = SyncSeries([m.id for m in runtime.maps])
        runtime.engine.listeners.append(self.series.on_engine)
        runtime.worker.listeners.append(self.series.on_worker)

    def check_csrf(self) -> None:
        sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
        if not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise error_for_status(
                403, "The console form's CSRF token is missing or wrong: reload the page and try again.", ""
            )

    def statuses(self) -> list[dict[str, Any]]:
        """Every map's status; each read also feeds the lag series, so the charts show the lag seen."""
        out = []
        for table_map in self.runtime.maps:
            status = self.runtime.lifecycle.status(table_map.id)
            self.series.lag(table_map.id, status.get("lag_seconds"))
            out.append(status)
        return out


# ---- what the templates show ------------------------------------------------------------------------
def key_text(key: Any) -> str:
    """A record key as people write it: ``accountnumber=PW-001`` (``a=1, b=2`` for several fields)."""
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError:
            return str(key)
    if isinstance(key, dict):
        return ", ".join(f"{name}={value}" for name, value in key.items())
    return "" if key is None else str(key)


def _key_dict(key: Any) -> dict[str, Any]:
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError:
            return {}
    return key if isinstance(key, dict) else {}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _lag(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def record_links(runtime: BridgeRuntime, map_id: str, direction: str, key: Any) -> list[tuple[str, str]]:
    """Links from a trace to its record in the two services' data browsers: (label, URL) pairs.

    The trace's key names the target record (``direction`` ``to_sales`` or ``to_scm``); the map's integration
    key pairs name the same record on the source side. Key fields reached through a lookup are left out of
    the filter; the data browser opens the record when exactly one row matches, else the matching rows.
    """
    table_map = runtime.engine.by_id.get(map_id)
    values = _key_dict(key)
    if table_map is None or not values:
        return []
    to_sales = direction == "to_sales"
    pairs = [(k.sales[0].text, k.scm) for k in table_map.keys]  # (Sales name, SCM name)
    sales_values = values if to_sales else {s: values.get(f) for s, f in pairs}
    scm_values = {f: values.get(s) for s, f in pairs} if to_sales else values
    out = []
    for label, origin, entity_set, fields in (
        ("Sales", runtime.config.sales_url, table_map.sales_table, sales_values),
        ("SCM", runtime.config.scm_url, table_map.scm_entity, scm_values),
    ):
        plain = {k: v for k, v in fields.items() if v not in (None, "") and "." not in k and "/" not in k}
        if not plain:
            continue
        condition = " and ".join(f"{name} eq {format_literal(value)}" for name, value in plain.items())
        query = urlencode({"filter": condition, "find": "1"})
        out.append((f"{label} {entity_set}", f"{origin.rstrip('/')}/_browse/{quote(entity_set)}?{query}"))
    return out


def _overview(statuses: list[dict[str, Any]], series: SyncSeries) -> dict[str, Any]:
    by_state = {state: 0 for state in STATES}
    for status in statuses:
        by_state[status["state"]] = by_state.get(status["state"], 0) + 1
    lags = [s["lag_seconds"] for s in statuses if s.get("lag_seconds") is not None]
    return {
        "maps": len(statuses),
        "by_state": by_state,
        "catchup_errors": sum(int(s.get("catchup_errors") or 0) for s in statuses),
        "with_errors": sum(1 for s in statuses if s.get("last_error")),
        "failed": sum(int(s.get("failed") or 0) for s in statuses),
        "max_lag": max(lags) if lags else None,
        "queued": sum(int(s.get("queued") or 0) for s in statuses),
        "per_minute": series.per_minute(),
    }


def _filtered(statuses: list[dict[str, Any]], state: str, text: str) -> list[dict[str, Any]]:
    text = text.lower()
    out = []
    for status in statuses:
        if state == "errors":
            if not (status.get("last_error") or status.get("catchup_errors")):
                continue
        elif state and status["state"] != state:
            continue
        haystack = f"{status['id']} {status['name']} {status['scm_entity']} {status['sales_table']}".lower()
        if text and text not in haystack:
            continue
        out.append(status)
    return out


def _back(default: str, **params: str) -> BaseResponse:
    """Redirect to the form's ``next`` (only a local path) with a message."""
    from flask import redirect

    target = request.form.get("next") or default
    if not target.startswith("/") or target.startswith("//"):
        target = default
    path, _, fragment = target.partition("#")
    # an earlier message in the URL would stay next to the new one
    base, _, query = path.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("msg=", "error="))]
    path = base + ("?" + "&".join(kept) if kept else "")
    separator = "&" if "?" in path else "?"
    return redirect(f"{path}{separator}{urlencode(params)}" + (f"#{fragment}" if fragment else ""), code=303)


# ---- the blueprint ----------------------------------------------------------------------------------
def console_blueprint(runtime: BridgeRuntime) -> Blueprint:
    """The console's pages, fragments, chart data and actions (see the module docstring)."""
    console = Blueprint("bridge_console", __name__, template_folder=str(TEMPLATES))
    state = Console(runtime)
    life = runtime.lifecycle

    @console.record_once
    def _setup(setup: Any) -> None:
        app: Flask = setup.app
        app.extensions[CONSOLE_EXTENSION] = state
        if "sandbox_static" not in app.blueprints:
            app.register_blueprint(static_blueprint())

    def page(template: str, status: int = 200, **context: Any) -> Response:
        root = request.script_root.rstrip("/") + "/"
        html = render_template(
            f"console/{template}",
            root=root,
            csrf_token=state.csrf_token,
            csrf_field=CSRF_FIELD,
            pretty=_pretty,
            key_text=key_text,
            lag=_lag,
            record_links=lambda t: record_links(runtime, t["map_id"], t["direction"], t["key"]),
            msg=request.args.get("msg"),
            error=request.args.get("error"),
            poll=POLL_SECONDS,
            states=STATES,
            window=WINDOW_SECONDS,
            **context,
        )
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def not_found(message: str) -> Response:
        return page("404.html", 404, message=message)

    def list_context() -> dict[str, Any]:
        statuses = state.statuses()
        chosen_state = request.args.get("state", "")
        text = (request.args.get("q") or "").strip()
        shown = _filtered(statuses, chosen_state, text)
        query = urlencode({k: v for k, v in (("state", chosen_state), ("q", text)) if v})
        return {
            "overview": _overview(statuses, state.series),
            "maps": shown,
            "all_count": len(statuses),
            "chosen_state": chosen_state,
            "q": text,
            "query": query,
            "back": request.script_root + "/" + (f"?{query}" if query else ""),
            "worker": runtime.worker.info(),
        }

    @console.get("/")
    def index() -> Response:
        return page("index.html", **list_context())

    @console.get("/console/fragments/overview")
    def overview_fragment() -> Response:
        return page("_overview.html", **list_context())

    def map_context(map_id: str) -> dict[str, Any]:
        status = life.detail(map_id)
        state.series.lag(map_id, status.get("lag_seconds"))
        return {"m": status, "here": f"{request.script_root}/maps/{map_id}"}

    @console.get("/maps/<map_id>")
    def one_map(map_id: str) -> Response:
        if map_id not in runtime.engine.by_id:
            return not_found(f"There is no table map '{map_id}'.")
        key = (request.args.get("key") or "").strip()
        traces = runtime.state.rows(TraceRow, map_id, limit=1000 if key else 50)
        if key:
            traces = [t for t in traces if _matches(t, key)][:100]
        try:
            queued = life.queued(map_id, limit=100)
        except Exception:  # noqa: BLE001 - the page must render while a service is down
            queued = []
        report = life.initial.last_reports.get(map_id)
        return page(
            "map.html",
            **map_context(map_id),
            key=key,
            activity=runtime.state.rows(ActivityRow, map_id, limit=100),
            queued=queued,
            catchup=runtime.state.rows(CatchupErrorRow, map_id, limit=200),
            initial={"last": report.as_dict() if report else None, "errors": life.initial.errors(map_id)},
            traces=traces,
            alert_kinds=("any", "application", "network"),
        )

    @console.get("/console/fragments/maps/<map_id>")
    def map_fragment(map_id: str) -> Response:
        if map_id not in runtime.engine.by_id:
            return not_found(f"There is no table map '{map_id}'.")
        return page("_map_facts.html", **map_context(map_id))

    @console.get("/console/series")
    def series() -> Response:
        map_id = request.args.get("map") or None
        if map_id is not None and map_id not in runtime.engine.by_id:
            raise error_for_status(404, f"There is no table map '{map_id}'.", "")
        try:
            seconds = int(request.args.get("seconds", 300))
        except ValueError:
            raise BadRequest("'seconds' must be a number.", "") from None
        if map_id is not None:
            state.series.lag(map_id, life.status(map_id).get("lag_seconds"))
        data = state.series.window([map_id] if map_id else None, seconds)
        return Response(json.dumps(data), content_type="application/json")

    @console.get("/traces")
    def traces() -> Response:
        key = (request.args.get("key") or "").strip()
        map_id = (request.args.get("map") or "").strip() or None
        if map_id is not None and map_id not in runtime.engine.by_id:
            return not_found(f"There is no table map '{map_id}'.")
        rows = runtime.state.rows(TraceRow, map_id, limit=2000 if key else 100)
        if key:
            rows = [t for t in rows if _matches(t, key)][:200]
        return page("traces.html", traces=rows, key=key, map_id=map_id, maps=runtime.maps)

    @console.get("/maps/<map_id>/<path:rest>")
    @console.get("/console/<path:rest>")
    def unknown_page(rest: str, map_id: str | None = None) -> Response:
        return not_found(f"The console has no page at {request.path}.")

    @console.post("/console/maps/<map_id>/<action>")
    def act(map_id: str, action: str) -> BaseResponse:
        state.check_csrf()
        back = f"{request.script_root}/maps/{map_id}"
        try:
            message = _action(runtime, map_id, action)
        except SandboxError as exc:
            return _back(back, error=exc.message)
        except Exception as exc:  # noqa: BLE001 - show a failed action on the page rather than a bare 500
            return _back(back, error=f"{action} failed: {exc}")
        return _back(back, msg=message)

    @console.app_errorhandler(404)
    def friendly_404(err: HTTPException) -> Response:
        # A browser gets a page with the way back; every other client the bridge's JSON error as before.
        if wants_html():
            return not_found(f"Nothing is served at {request.path}.")
        from bridge.app import error_response

        return error_response(error_for_status(404, err.description or err.name, ""))

    return console


def _action(runtime: BridgeRuntime, map_id: str, action: str) -> str:
    """Run one console action on a map; the message the page shows."""
    life = runtime.lifecycle
    form = request.form
    table_map: TableMap = life.table_map(map_id)
    if action == "run":
        status = life.run(
            map_id,
            initial_sync=form.get("initial_sync") == "1",
            master=form.get("master", "scm"),
            mode=form.get("mode", "live"),
        )
        return f"{table_map.name}: {status['state']} ({status['mode']})"
    if action == "pause":
        life.pause(map_id)
        return f"{table_map.name}: paused; changes queue until resumed"
    if action == "resume":
        status = life.resume(map_id, form.get("mode", "catchup"))  # type: ignore[arg-type]
        return f"{table_map.name}: {status['state']}"
    if action == "stop":
        life.stop(map_id)
        return f"{table_map.name}: stopped"
    if action == "retry":
        ids = None if form.get("all") else [int(i) for i in form.getlist("ids") if i.isdigit()]
        if ids == []:
            raise BadRequest("Select the catch-up errors to retry (or use Retry all).")
        result = life.retry_catchup(map_id, ids)
        return f"Retried {result['retried']}: {result['completed']} completed, {result['failed']} failed"
    if action == "delete-errors":
        return f"Deleted {runtime.state.delete_catchup_errors(map_id)} catch-up errors"
    if action == "clear-error":
        runtime.state.update_map(map_id, last_error=None)
        runtime.state.activity(map_id, "info", "Last error cleared in the console")
        return f"{table_map.name}: last error cleared"
    if action == "alerts":
        rules = _alert_rules(form)
        life.set_alerts(map_id, rules)
        return f"{table_map.name}: {len(rules)} alert rule(s) set"
    raise BadRequest(f"Unknown action '{action}'.")


def _alert_rules(form: Any) -> list[dict[str, Any]]:
    """The alert rules of the map page's form: one row per rule (``count``, ``window_seconds``, ``action``,
    ``kind``), rows marked ``remove`` and rows left empty dropped."""
    counts, windows = form.getlist("count"), form.getlist("window_seconds")
    actions, kinds = form.getlist("alert_action"), form.getlist("kind")
    removed = set(form.getlist("remove"))
    if not len(counts) == len(windows) == len(actions) == len(kinds):
        raise BadRequest("Each alert rule needs a count, a window, an action and a kind.")
    rules = []
    for index, (count, window, action, kind) in enumerate(zip(counts, windows, actions, kinds, strict=True)):
        if str(index) in removed or (not count.strip() and not window.strip()):
            continue
        try:
            rule = {"count": int(count), "window_seconds": float(window), "action": action, "kind": kind}
        except ValueError:
            raise BadRequest(
                f"Alert rule {index + 1}: the count must be a whole number and the window a number of seconds."
            ) from None
        if kind not in ("any", "application", "network"):
            raise BadRequest(f"Alert rule {index + 1}: the kind {kind!r} is not one of any, application, network.")
        rules.append(rule)
    return rules


def _matches(row: dict[str, Any], key: str) -> bool:
    return key.lower() in key_text(row.get("key")).lower() or key.lower() in json.dumps(
        row.get("key"), default=str, ensure_ascii=False
    ).lower().replace('\\"', '"')


__all__ = ["CONSOLE_EXTENSION", "CSRF_FIELD", "Console", "console_blueprint", "key_text", "record_links"]
