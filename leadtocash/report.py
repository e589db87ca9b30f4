"""Self-contained HTML reports with charts: ``sandbox bench --html F`` and ``sandbox load --report F``.

One file that opens anywhere, offline: the data as JSON, uPlot's script and stylesheet inlined (the copies
vendored in ``sandbox/static/vendor/``), a few lines of glue that draw each chart, and the tables the terminal
summary prints. Nothing is fetched when the file is opened.

* bench: each result against its baseline (bars per unit), the ratios, and every result's details;
* load: requests per second and latency percentiles (p50, p95, p99) per endpoint, sync latency per map and
  direction, records synced per map, and the bridge's lag and queue over the run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from sandbox.static import STATIC_DIR

VENDOR = STATIC_DIR / "vendor"

#: draws every ``<div class="chart" data-chart="N">`` from ``CHARTS[N]``: bars by category or lines over time
_GLUE = """
(function () {
  var MAX_LABEL = 32;
  var COLORS = ["#0b5cad", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#bf3989"];
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var c = CHARTS[Number(el.dataset.chart)];
    var bars = c.kind === "bars";
    var x = bars ? c.labels.map(function (_, i) { return i; }) : c.x;
    var width = Math.max(el.clientWidth, 320);
    // many or long category names: turned on their side and cut short (the table below has them whole),
    // so they never run into each other
    var longest = bars ? Math.max.apply(null, c.labels.map(function (l) { return l.length; })) : 0;
    var crowded = bars && longest * 7 > (width - 80) / Math.max(c.labels.length, 1);
    var names = !bars ? [] : c.labels.map(function (l) {
      return crowded && l.length > MAX_LABEL ? l.slice(0, MAX_LABEL - 1) + "\u2026" : l; });
    var labelSize = crowded ? 16 + 7.5 * Math.min(longest, MAX_LABEL) : 50;
    var series = [{ label: bars ? "" : c.xLabel }].concat(c.series.map(function (s, i) {
      var size = bars ? [Math.max(0.25, 0.8 - 0.2 * i), 80] : null;
      return { label: s.label, stroke: COLORS[i % COLORS.length], width: bars ? 0 : 2,
               fill: bars ? COLORS[i % COLORS.length] + (i ? "cc" : "66") : undefined,
               scale: s.scale || "y", spanGaps: true,
               paths: bars ? uPlot.paths.bars({ size: size, align: 0 }) : undefined,
               points: { show: !bars && x.length < 60 } };
    }));
    var axes = [bars ? { values: function (u, ticks) { return ticks.map(function (t) {
        return Number.isInteger(t) && names[t] !== undefined ? names[t] : ""; }); },
        splits: function () { return x; }, rotate: crowded ? -90 : 0, size: labelSize, gap: 4 } : { label: c.xLabel }, { label: c.yLabel, size: 60 }];
    if (c.y2Label) axes.push({ label: c.y2Label, scale: "y2", side: 1, grid: { show: false }, size: 60 });
    var scales = { x: bars ? { time: false, range: [-0.6, x.length - 0.4] } : { time: false } };
    var height = 260 + (crowded ? labelSize - 50 : 0);
    new uPlot({ title: c.title, width: width, height: height, series: series, axes: axes, scales: scales },
              [x].concat(c.series.map(function (s) { return s.values; })), el);
  });
})();
"""

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1f2328; margin: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.sub { color: #656d76; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 10px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart { margin: 8px 0 24px; min-height: 280px; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
"""


def _page(title: str, subtitle: str, charts: list[dict[str, Any]], body: str) -> str:
    script = (VENDOR / "uPlot.iife.min.js").read_text(encoding="utf-8")
    style = (VENDOR / "uPlot.min.css").read_text(encoding="utf-8")
    # </script> inside the JSON would end the script element early
    data = json.dumps(charts).replace("</", "<\\/")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n<style>{_CSS}</style>\n"
        f"<script>{script}</script>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f'<p class="sub">{html.escape(subtitle)}</p>\n{body}\n'
        f"<script>var CHARTS = {data};</script>\n<script>{_GLUE}</script>\n</body>\n</html>\n"
    )


def _chart(charts: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    charts.append(spec)
    return f'<div class="chart" data-chart="{len(charts) - 1}"></div>'


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{html.escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{html.escape('' if v is None else str(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---- bench --------------------------------------------------------------------------------------------------
def bench_html(report: dict[str, Any]) -> str:
    """The bench report (:func:`leadtocash.bench.report`'s dict) as one HTML page with charts."""
    results: list[dict[str, Any]] = report.get("results", [])
    machine = report.get("machine", {})
    charts: list[dict[str, Any]] = []
    parts = []
    units: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        units.setdefault(str(result["unit"]), []).append(result)
    for unit, group in units.items():
        parts.append(f"<h2>Results in {html.escape(unit)}</h2>")
        parts.append(
            _chart(
                charts,
                {
                    "kind": "bars",
                    "title": f"Each benchmark against its baseline ({unit})",
                    "labels": [r["name"] for r in group],
                    "yLabel": unit,
                    "series": [
                        {"label": "baseline", "values": [r["baseline"] for r in group]},
                        {"label": "sandbox", "values": [r["value"] for r in group]},
                    ],
                },
            )
        )
    if results:
        parts.append("<h2>Ratios (sandbox / baseline)</h2>")
        parts.append(
            _chart(
                charts,
                {
                    "kind": "bars",
                    "title": "Share of the baseline reached",
                    "labels": [r["name"] for r in results],
                    "yLabel": "ratio",
                    "series": [{"label": "ratio", "values": [r["ratio"] for r in results]}],
                },
            )
        )
    parts.append("<h2>Every result</h2>")
    parts.append(
        _table(
            ["benchmark", "value", "unit", "baseline", "ratio", "baseline is"],
            [
                [
                    r["name"],
                    f"{r['value']:.1f}",
                    r["unit"],
                    f"{r['baseline']:.1f}",
                    f"{r['ratio']:.3f}",
                    r["baseline_name"],
                ]
                for r in results
            ],
            {1, 3, 4},
        )
    )
    for result in results:
        if result.get("details"):
            parts.append(f"<h2>{html.escape(result['name'])}: details</h2>")
            parts.append(_table(["measure", "value"], [[k, _text(v)] for k, v in result["details"].items()], {1}))
    parts.append("<h2>Machine</h2>")
    parts.append(_table(["", ""], [[k, v] for k, v in machine.items()]))
    seconds = report.get("seconds")
    subtitle = (
        f"{_now()}" + (f", {seconds:.0f} s" if seconds is not None else "") + f", {machine.get('cpus', '?')} CPUs"
    )
    return _page("sandbox bench", subtitle, charts, "\n".join(parts))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


# ---- load ---------------------------------------------------------------------------------------------------
def load_html(summary: dict[str, Any]) -> str:
    """The load-test summary (:func:`leadtocash.loadtest.summarize`'s dict) as one HTML page with charts."""
    charts: list[dict[str, Any]] = []
    parts = []
    totals = summary.get("totals", {})
    requests = summary.get("requests", [])
    sync = summary.get("sync", [])
    verdict = "pass" if summary.get("passed") else "fail"
    parts.append(
        f'<p>Result: <span class="{verdict}">{verdict.upper()}</span>, failure ratio {summary.get("failure_ratio")} '
        f"(at most {summary.get('max_failure_ratio')}); {totals.get('requests', 0)} requests, "
        f"{totals.get('failures', 0)} failed, {totals.get('throttled', 0)} throttled (429: a service's limit, "
        f"not a failure), {totals.get('rps', 0)} requests/s; p50 {totals.get('p50_ms')} ms, "
        f"p95 {totals.get('p95_ms')} ms.</p>"
    )

    def percentiles(rows: list[dict[str, Any]], title: str) -> str:
        return _chart(
            charts,
            {
                "kind": "bars",
                "title": title,
                "labels": [f"{r['type']} {r['name']}".strip() for r in rows],
                "yLabel": "ms",
                "series": [{"label": p, "values": [r.get(f"{p}_ms") for r in rows]} for p in ("p99", "p95", "p50")],
            },
        )

    if requests:
        parts.append("<h2>Requests</h2>")
        parts.append(
            _chart(
                charts,
                {
                    "kind": "bars",
                    "title": "Throughput per endpoint (requests/s)",
                    "labels": [f"{r['type']} {r['name']}" for r in requests],
                    "yLabel": "requests/s",
                    "series": [{"label": "requests/s", "values": [r["rps"] for r in requests]}],
                },
            )
        )
        parts.append(percentiles(requests, "Latency percentiles per endpoint (ms)"))
        parts.append(_requests_table(requests))
    if sync:
        parts.append("<h2>Sync latency per map and direction</h2>")
        parts.append(percentiles(sync, "From the write to the other side (ms)"))
        parts.append(_requests_table(sync))
    per_map = summary.get("synced_per_map", [])
    if per_map:
        parts.append("<h2>Records synced per map</h2>")
        parts.append(
            _chart(
                charts,
                {
                    "kind": "bars",
                    "title": "Records the bridge synced per second of the run",
                    "labels": [m["map"] for m in per_map],
                    "yLabel": "records/s",
                    "series": [{"label": "records/s", "values": [m["per_second"] for m in per_map]}],
                },
            )
        )
        parts.append(
            _table(
                ["map", "records", "per second"],
                [[m["map"], m["records"], _number(m["per_second"], 2)] for m in per_map],
                {1, 2},
            )
        )
    bridge = summary.get("bridge", {})
    series = bridge.get("series") or []
    parts.append("<h2>Bridge lag and queue over the run</h2>")
    if series:
        parts.append(
            _chart(
                charts,
                {
                    "kind": "lines",
                    "title": "Largest lag of any map, and changes queued",
                    "x": [s["t"] for s in series],
                    "xLabel": "seconds into the run",
                    "yLabel": "lag (s)",
                    "y2Label": "queued",
                    "series": [
                        {"label": "lag (s)", "values": [s["lag_max"] for s in series]},
                        {"label": "queued", "values": [s["queued"] for s in series], "scale": "y2"},
                    ],
                },
            )
        )
    else:
        parts.append('<p class="sub">No samples of the bridge (no bridge URL, or the run was too short).</p>')
    failures = summary.get("failures", [])
    if failures:
        parts.append("<h2>Failures</h2>")
        parts.append(_table(list(failures[0].keys()), [list(f.values()) for f in failures]))
    config = summary.get("config", {})
    subtitle = f"{_now()}, {summary.get('seconds', '?')} s" + "".join(
        f", {k} {v}" for k, v in config.items() if isinstance(v, (str, int, float))
    )
    return _page("sandbox load", subtitle, charts, "\n".join(parts))


def _requests_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        ["type", "name", "requests", "failures", "throttled", "requests/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [
                r["type"],
                r["name"],
                r["requests"],
                r["failures"],
                r.get("throttled", 0),
                _number(r["rps"], 2),
                _number(r["p50_ms"], 0),
                _number(r["p95_ms"], 0),
                _number(r["p99_ms"], 0),
                _number(r["max_ms"], 0),
            ]
            for r in rows
        ],
        {2, 3, 4, 5, 6, 7, 8, 9},
    )


def _number(value: Any, digits: int) -> str:
    """A figure as the terminal summary prints it (``0.23``, ``358``), not as float arithmetic left it."""
    return "" if value is None else f"{float(value):,.{digits}f}"


def write(path: str | Path, page: str) -> None:
    """Write a report page to ``path``."""
    Path(path).write_text(page, encoding="utf-8")


__all__ = ["bench_html", "load_html", "write"]
