"""The bridge console: server-rendered HTML pages over the same runtime the admin API uses.

Modelled on F&O's Data management > Dual-write page: a map list (state, mode, counters, lag, last error,
Run / Pause / Resume / Stop), and per map the table mappings, activity log, queued records, catch-up
errors with Retry, initial-sync errors and record traces with a key search. Plain HTML forms and CSS:
every action is a POST that redirects back (no JavaScript), so it works with curl and any browser.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request
from jinja2 import DictLoader, Environment, select_autoescape
from werkzeug.wrappers import Response as BaseResponse

from bridge.state import ActivityRow, CatchupErrorRow, TraceRow
from sandbox.errors import BadRequest, SandboxError

if TYPE_CHECKING:
    from bridge.app import BridgeRuntime

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}
<title>{% block title %}Dual-write bridge{% endblock %}</title>
<style>
  :root { --ink: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --accent: #0b5cad;
          --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
  header { background: #102a43; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
  header a { color: #fff; text-decoration: none; }
  header .brand { font-weight: 600; font-size: 16px; }
  header nav a { margin-right: 16px; opacity: .85; }
  main { padding: 16px 24px 48px; max-width: 1500px; }
  h1 { font-size: 20px; margin: 8px 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
  .sub { color: var(--muted); margin: 0 0 12px; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
  th { background: var(--bg); font-weight: 600; white-space: nowrap; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
           border: 1px solid currentColor; white-space: nowrap; }
  .s-running { color: var(--ok); } .s-paused, .s-resuming, .s-initializing { color: var(--warn); }
  .s-not-running { color: var(--muted); } .s-error { color: var(--bad); }
  .err { color: var(--bad); } .muted { color: var(--muted); }
  .msg { padding: 8px 12px; border-radius: 6px; margin: 8px 0 12px; border: 1px solid; }
  .msg.ok { background: #dafbe1; border-color: #4ac26b; } .msg.bad { background: #ffebe9; border-color: #ff8182; }
  form.inline { display: inline-flex; gap: 4px; align-items: center; margin: 0 6px 4px 0; }
  button { font: inherit; padding: 2px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff;
           cursor: pointer; } button:hover { border-color: var(--accent); color: var(--accent); }
  button.danger:hover { border-color: var(--bad); color: var(--bad); }
  select, input[type=text] { font: inherit; padding: 1px 4px; border: 1px solid var(--line); border-radius: 4px; }
  code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  pre { background: var(--bg); padding: 8px; border-radius: 6px; overflow: auto; max-height: 320px; margin: 4px 0; }
  details summary { cursor: pointer; color: var(--accent); }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
  dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
  .toc a { margin-right: 14px; }
  .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
  .truncate { max-width: 420px; overflow-wrap: anywhere; }
</style>
</head>
<body>
<header><a class="brand" href="{{ root }}">Dual-write bridge</a>
<nav><a href="{{ root }}">Table maps</a><a href="{{ root }}traces">Traces</a>
<a href="{{ root }}metrics">Metrics</a><a href="{{ root }}api/maps">API</a></nav></header>
<main>
{% if msg %}<div class="msg ok">{{ msg }}</div>{% endif %}
{% if error %}<div class="msg bad">{{ error }}</div>{% endif %}
{% block body %}{% endblock %}
</main>
</body>
</html>
"""

_MACROS = """
{% macro badge(state) -%}
<span class="badge s-{{ state|lower|replace(' ', '-') }}">{{ state }}</span>
{%- endmacro %}

{% macro actions(m, back) -%}
{% set base = root ~ 'console/maps/' ~ m.id ~ '/' %}
{% if m.state == 'Not running' %}
<form class="inline" method="post" action="{{ base }}run">
  <input type="hidden" name="next" value="{{ back }}">
  <label><input type="checkbox" name="initial_sync" value="1" checked> initial sync</label>
  <select name="master" title="Master for initial sync"><option value="scm">SCM master</option>
    <option value="sales">Sales master</option></select>
  <select name="mode" title="Sync mode"><option value="live">live</option><option value="async">async</option></select>
  <button type="submit">Run</button></form>
{% elif m.state == 'Running' %}
<form class="inline" method="post" action="{{ base }}pause"><input type="hidden" name="next" value="{{ back }}">
  <button type="submit">Pause</button></form>
<form class="inline" method="post" action="{{ base }}run"><input type="hidden" name="next" value="{{ back }}">
  <input type="hidden" name="mode" value="{{ 'live' if m.mode == 'async' else 'async' }}">
  <button type="submit" title="Switch mode without initial sync">Switch to {{ 'live' if m.mode == 'async' else 'async' }}</button></form>
<form class="inline" method="post" action="{{ base }}stop"><input type="hidden" name="next" value="{{ back }}">
  <button class="danger" type="submit">Stop</button></form>
{% elif m.state in ('Paused', 'Resuming') %}
<form class="inline" method="post" action="{{ base }}resume"><input type="hidden" name="next" value="{{ back }}">
  <select name="mode" title="Catch up replays the queue in order; skipping goes live at once"><option value="catchup">catch up</option>
    <option value="skip_keep">skip, keep as errors</option><option value="skip_discard">skip, discard queue</option></select>
  <button type="submit">Resume</button></form>
<form class="inline" method="post" action="{{ base }}stop"><input type="hidden" name="next" value="{{ back }}">
  <button class="danger" type="submit">Stop</button></form>
{% endif %}
{%- endmacro %}

{% macro lag(value) -%}
{% if value is none %}<span class="muted">-</span>{% else %}{{ '%.1f'|format(value) }} s{% endif %}
{%- endmacro %}

{% macro traces_table(rows, show_map=False) -%}
{% if rows %}
<table>
<tr><th>When (UTC)</th>{% if show_map %}<th>Map</th>{% endif %}<th>Direction</th><th>Record key</th><th>Op</th>
<th>Result</th><th>Source change / transformed payload / target response</th></tr>
{% for t in rows %}
<tr><td><code>{{ t.created_at }}</code></td>
{% if show_map %}<td><a href="{{ root }}maps/{{ t.map_id }}">{{ t.map_id }}</a></td>{% endif %}
<td>{{ t.direction }}</td><td><code>{{ t.key|tojson }}</code></td><td>{{ t.operation }}</td>
<td>{% if t.ok %}<span class="badge s-running">ok</span>{% else %}<span class="badge s-error">failed</span>{% endif %}</td>
<td><details><summary>show</summary>
<b>Source change</b><pre>{{ pretty(t.source) }}</pre>
<b>Transformed payload</b><pre>{{ pretty(t.payload) }}</pre>
<b>Target response</b><pre>{{ pretty(t.response) }}</pre></details></td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No traces{% if key %} for “{{ key }}”{% endif %}.</p>{% endif %}
{%- endmacro %}
"""

_INDEX = """{% extends "base.html" %}{% from "macros.html" import badge, actions, lag with context %}
{% block body %}
<h1>Table maps</h1>
<p class="sub">Async drainer {% if worker.running %}<b>running</b>{% else %}<b>stopped</b>{% endif %}
 &middot; feed cursors: Sales {{ worker.cursors.sales if worker.cursors.sales is not none else '-' }},
 SCM {{ worker.cursors.scm if worker.cursors.scm is not none else '-' }}
 &middot; <a href="?refresh=5">auto-refresh</a></p>
<table>
<tr><th>Table map</th><th>Direction</th><th>State</th><th>Mode</th><th class="num">Synced</th>
<th class="num">Failed</th><th class="num">Queued</th><th class="num">Lag</th><th class="num">Catch-up errors</th>
<th>Last error</th><th>Actions</th></tr>
{% for m in maps %}
<tr><td><a href="{{ root }}maps/{{ m.id }}">{{ m.name }}</a><br><code class="muted">{{ m.id }}</code></td>
<td>{{ m.direction|replace('_', ' ') }}</td><td>{{ badge(m.state) }}</td><td>{{ m.mode }}</td>
<td class="num">{{ m.synced }}</td><td class="num">{{ m.failed }}</td><td class="num">{{ m.queued if m.queued is not none else '-' }}</td>
<td class="num">{{ lag(m.lag_seconds) }}</td><td class="num">{{ m.catchup_errors }}</td>
<td class="truncate err">{{ (m.last_error or '')[:240] }}</td>
<td>{{ actions(m, root) }}</td></tr>
{% endfor %}
</table>
<h2>Find a record</h2>
<form method="get" action="{{ root }}traces" class="inline"><input type="text" name="key" size="40"
 placeholder="a key value, e.g. DE-001"><button type="submit">Search traces</button></form>
{% endblock %}
"""

_MAP = """{% extends "base.html" %}{% from "macros.html" import badge, actions, lag, traces_table with context %}
{% block title %}{{ m.name }} - Dual-write bridge{% endblock %}
{% block body %}
<p><a href="{{ root }}">&larr; Table maps</a></p>
<h1>{{ m.name }} {{ badge(m.state) }}</h1>
<p class="sub">{{ m.scm_entity }} &harr; {{ m.sales_table }} &middot; <code>{{ m.id }}</code>
 &middot; <a href="?refresh=5">auto-refresh</a></p>
<div>{{ actions(m, here) }}</div>
<p class="toc"><a href="#mappings">Table mappings</a><a href="#activity">Activity log</a><a href="#queued">Queued records</a>
<a href="#catchup">Catch-up errors ({{ m.catchup_errors }})</a><a href="#initial">Initial sync</a><a href="#traces">Traces</a></p>
<dl class="facts">
<dt>Mode</dt><dd>{{ m.mode }}</dd><dt>Direction</dt><dd>{{ m.direction|replace('_', ' ') }}</dd>
<dt>Master (initial sync)</dt><dd>{{ m.master }}</dd><dt>Depends on</dt><dd>{{ m.depends_on|join(', ') or '-' }}</dd>
<dt>Synced / failed</dt><dd>{{ m.synced }} / {{ m.failed }}</dd>
<dt>Queued</dt><dd>{{ m.queued if m.queued is not none else '-' }}</dd><dt>Lag</dt><dd>{{ lag(m.lag_seconds) }}</dd>
<dt>Last synced</dt><dd>{{ m.last_synced_at or '-' }}</dd>
<dt>Last error</dt><dd class="err">{{ m.last_error or '' }}</dd>
{% if m.retrying %}<dt>Retrying</dt><dd class="err">attempt {{ m.retrying.attempt }} of {{ m.retrying.of }} failed,
 next at <code>{{ m.retrying.next_at }}</code>: {{ m.retrying.error }}</dd>{% endif %}
</dl>

<h2 id="mappings">Table mappings</h2>
<p class="sub">Integration key: {% for k in m['keys'] %}<code>{{ k.scm }}</code> = <code>{{ k.sales }}</code>{% if not loop.last %}, {% endif %}{% endfor %}
 &middot; SCM filter: <code>{{ m.filters.scm or '-' }}</code> &middot; Sales filter: <code>{{ m.filters.sales or '-' }}</code></p>
<table><tr><th>SCM field</th><th>Direction</th><th>Sales column</th><th>Value map</th></tr>
{% for f in m.fields %}<tr><td><code>{{ f.scm }}</code></td><td><code>{{ f.dir }}</code></td><td><code>{{ f.sales }}</code></td>
<td>{% if f['values'] %}<code>{{ f['values']|tojson }}</code>{% endif %}</td></tr>{% endfor %}
</table>

<h2 id="activity">Activity log</h2>
{% if activity %}<table><tr><th>When (UTC)</th><th>Kind</th><th>Message</th></tr>
{% for a in activity %}<tr><td><code>{{ a.created_at }}</code></td><td>{{ a.kind }}</td>
<td class="{{ 'err' if a.kind in ('error', 'alert') else '' }}">{{ a.message }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Nothing yet.</p>{% endif %}

<h2 id="queued">Queued records</h2>
{% if queued %}<table><tr><th class="num">Seq</th><th>Source</th><th>Table</th><th>Key</th><th>Operation</th><th>When (UTC)</th></tr>
{% for q in queued %}<tr><td class="num">{{ q.seq }}</td><td>{{ q.source }}</td><td>{{ q.table }}</td>
<td><code>{{ q.key|tojson }}</code></td><td>{{ q.operation }}</td><td><code>{{ q.created_at }}</code></td></tr>{% endfor %}</table>
{% else %}<p class="muted">{% if m.state in ('Paused', 'Resuming') %}The queue is empty.{% else %}Records queue while the map is paused.{% endif %}</p>{% endif %}

<h2 id="catchup">Catch-up errors</h2>
{% if catchup %}
<form method="post" action="{{ root }}console/maps/{{ m.id }}/retry">
<input type="hidden" name="next" value="{{ here }}#catchup">
<table><tr><th></th><th class="num">Id</th><th>Source</th><th>Record key</th><th>Operation</th><th>Status</th><th class="num">Attempts</th><th>Message</th><th>When (UTC)</th></tr>
{% for e in catchup %}<tr><td>{% if e.status == 'Error' %}<input type="checkbox" name="ids" value="{{ e.id }}">{% endif %}</td>
<td class="num">{{ e.id }}</td><td>{{ e.source }}</td><td><code>{{ e.change.key|tojson }}</code></td><td>{{ e.change.operation }}</td>
<td>{% if e.status == 'Error' %}<span class="badge s-error">Error</span>{% else %}<span class="badge s-running">{{ e.status }}</span>{% endif %}</td>
<td class="num">{{ e.attempts }}</td><td class="truncate">{{ e.message }}</td><td><code>{{ e.created_at }}</code></td></tr>{% endfor %}
</table>
<p class="inline"><button type="submit">Retry selected</button>
<button type="submit" name="all" value="1">Retry all</button>
<button class="danger" type="submit" formaction="{{ root }}console/maps/{{ m.id }}/delete-errors">Delete all</button></p>
</form>
{% else %}<p class="muted">No catch-up errors.</p>{% endif %}

<h2 id="initial">Initial sync</h2>
{% if initial.last %}<p>Execution {{ initial.last.execution }}: {{ initial.last.to_sales }} written to Sales,
 {{ initial.last.to_scm }} written to SCM, {{ initial.last.unchanged }} already equal, {{ initial.last.error_count }} errors.</p>{% endif %}
{% if initial.errors %}<table><tr><th>Execution</th><th>Direction</th><th>Record key</th><th>Message</th></tr>
{% for e in initial.errors %}<tr><td class="num">{{ e.execution }}</td><td>{{ e.direction }}</td><td><code>{{ e.key }}</code></td>
<td class="err">{{ e.message }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">No initial-sync errors{% if m.initial_sync_done %} (initial sync done){% endif %}.</p>{% endif %}

<h2 id="traces">Traces</h2>
<form method="get" action="{{ here }}#traces" class="inline"><input type="text" name="key" value="{{ key or '' }}" size="40"
 placeholder="a key value, e.g. DE-001"><button type="submit">Search</button>
{% if key %}<a href="{{ here }}#traces">clear</a>{% endif %}</form>
{{ traces_table(traces) }}
{% endblock %}
"""

_TRACES = """{% extends "base.html" %}{% from "macros.html" import traces_table with context %}
{% block title %}Traces - Dual-write bridge{% endblock %}
{% block body %}
<h1>Record traces</h1>
<p class="sub">A trace is one record through one map: the source change, the payload the pipeline made, and what
 the other side answered.</p>
<form method="get" class="inline"><input type="text" name="key" value="{{ key or '' }}" size="40"
 placeholder="a key value, e.g. DE-001"><button type="submit">Search</button></form>
{{ traces_table(traces, show_map=True) }}
{% endblock %}
"""

_ENV = Environment(
    loader=DictLoader(
        {"base.html": _BASE, "macros.html": _MACROS, "index.html": _INDEX, "map.html": _MAP, "traces.html": _TRACES}
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _html(template: str, status: int = 200, **context: Any) -> Response:
    root = request.script_root.rstrip("/") + "/"
    refresh = request.args.get("refresh")
    page = _ENV.get_template(template).render(
        root=root,
        pretty=_pretty,
        msg=request.args.get("msg"),
        error=request.args.get("error"),
        refresh=int(refresh) if refresh and refresh.isdigit() and int(refresh) > 0 else None,
        **context,
    )
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def _matches(row: dict[str, Any], key: str) -> bool:
    return key.lower() in json.dumps(row.get("key"), default=str, ensure_ascii=False).lower()


def _back(default: str, **params: str) -> BaseResponse:
    """Redirect to the form's ``next`` (only a local path) with a message."""
    target = request.form.get("next") or default
    if not target.startswith("/") or target.startswith("//"):
        target = default
    path, _, fragment = target.partition("#")
    separator = "&" if "?" in path else "?"
    return redirect(f"{path}{separator}{urlencode(params)}" + (f"#{fragment}" if fragment else ""), code=303)


def console_blueprint(runtime: BridgeRuntime) -> Blueprint:
    """``GET /`` map list, ``GET /maps/<id>`` one map, ``GET /traces`` search, ``POST /console/...`` actions."""
    console = Blueprint("bridge_console", __name__)
    life = runtime.lifecycle

    @console.get("/")
    def index() -> Response:
        return _html("index.html", maps=[life.status(m.id) for m in runtime.maps], worker=runtime.worker.info())

    @console.get("/maps/<map_id>")
    def one_map(map_id: str) -> Response:
        status = life.detail(map_id)
        key = (request.args.get("key") or "").strip()
        traces = runtime.state.rows(TraceRow, map_id, limit=1000 if key else 50)
        if key:
            traces = [t for t in traces if _matches(t, key)][:100]
        try:
            queued = life.queued(map_id, limit=100)
        except Exception:  # noqa: BLE001 - the page must render while a service is down
            queued = []
        report = life.initial.last_reports.get(map_id)
        return _html(
            "map.html",
            m=status,
            here=f"{request.script_root}/maps/{map_id}",
            key=key,
            activity=runtime.state.rows(ActivityRow, map_id, limit=100),
            queued=queued,
            catchup=runtime.state.rows(CatchupErrorRow, map_id, limit=200),
            initial={"last": report.as_dict() if report else None, "errors": life.initial.errors(map_id)},
            traces=traces,
        )

    @console.get("/traces")
    def traces() -> Response:
        key = (request.args.get("key") or "").strip()
        rows = runtime.state.rows(TraceRow, None, limit=2000 if key else 100)
        if key:
            rows = [t for t in rows if _matches(t, key)][:200]
        return _html("traces.html", traces=rows, key=key)

    @console.post("/console/maps/<map_id>/<action>")
    def act(map_id: str, action: str) -> BaseResponse:
        back = f"{request.script_root}/maps/{map_id}"
        form = request.form
        try:
            life.table_map(map_id)
            if action == "run":
                status = life.run(
                    map_id,
                    initial_sync=form.get("initial_sync") == "1",
                    master=form.get("master", "scm"),
                    mode=form.get("mode", "live"),
                )
                message = f"{map_id}: {status['state']} ({status['mode']})"
            elif action == "pause":
                life.pause(map_id)
                message = f"{map_id}: paused; changes queue until resumed"
            elif action == "resume":
                status = life.resume(map_id, form.get("mode", "catchup"))  # type: ignore[arg-type]
                message = f"{map_id}: {status['state']}"
            elif action == "stop":
                life.stop(map_id)
                message = f"{map_id}: stopped"
            elif action == "retry":
                ids = None if form.get("all") else [int(i) for i in form.getlist("ids") if i.isdigit()]
                if ids == []:
                    raise BadRequest("Select the catch-up errors to retry (or use Retry all).")
                result = life.retry_catchup(map_id, ids)
                message = f"Retried {result['retried']}: {result['completed']} completed, {result['failed']} failed"
            elif action == "delete-errors":
                message = f"Deleted {runtime.state.delete_catchup_errors(map_id)} catch-up errors"
            else:
                raise BadRequest(f"Unknown action '{action}'.")
        except SandboxError as exc:
            return _back(back, error=exc.message)
        except Exception as exc:  # noqa: BLE001 - show a failed action on the page rather than a bare 500
            return _back(back, error=f"{action} failed: {exc}")
        return _back(back, msg=message)

    return console


__all__ = ["console_blueprint"]
