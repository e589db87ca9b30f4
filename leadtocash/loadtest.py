"""``sandbox load``: Locust, headless, in its own process(es), against a running stack or one started here.

Locust monkey-patches the standard library with gevent when it is imported, so this module never imports it:
it runs ``python -m locust -f scenarios/load/locustfile.py --headless ...`` as a subprocess (a master and
``--workers N`` worker processes in distributed mode), samples the bridge while the test runs, then reads
Locust's CSV stats and prints a summary a user can read at a glance:

* requests/s, failures and latency percentiles per endpoint;
* propagation latency p50/p95/p99 per map and direction (the ``SYNC`` entries the sync probe reports);
* records the bridge synced per map during the run, per second;
* bridge lag and queue depth over the run (max and mean of samples taken every two seconds).

It exits 1 when the failure ratio of all requests and sync samples is above ``--max-failure-ratio`` (or
nothing ran), 2 when Locust itself could not run.

Distributed mode across machines: ``--workers N`` starts N worker processes on this machine. To add workers
on other machines, run the master yourself and point workers at it, each with the service URLs::

    # machine A (master; the stack's URLs must be reachable from every worker)
    python -m locust -f scenarios/load/locustfile.py --headless --master --expect-workers 4 \\
        -u 200 -r 20 -t 5m --csv run --sales-url http://A:5101 --scm-url http://A:5102 --bridge-url http://A:5103
    # machines B, C, ... (as many worker processes as cores)
    SANDBOX_SALES_URL=http://A:5101 SANDBOX_SCM_URL=http://A:5102 SANDBOX_BRIDGE_URL=http://A:5103 \\
        python -m locust -f scenarios/load/locustfile.py --worker --master-host A

(``sandbox up --host 0.0.0.0`` serves the stack beyond loopback; this command itself only targets loopback
addresses unless given ``--allow-remote``.)
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from leadtocash.clients import service_origin
from leadtocash.limitscli import limits_options, with_limits
from leadtocash.stack import StackConfig
from sandbox.clients.auth import identity_of
from sandbox.limits import LatencyProfile, LimitsProfile

MAX_RUN_SECONDS = 12 * 3600
#: how much longer than --run-time Locust may take (spawning, stopping users, writing reports) before it is killed
GRACE_SECONDS = 60.0
SAMPLE_INTERVAL = 2.0
SYNC_TYPE = "SYNC"


# ---- small parsers ---------------------------------------------------------------------------------------
def parse_run_time(text: str) -> int:
    """``30``, ``30s``, ``2m``, ``1h30m`` -> seconds (as Locust reads ``--run-time``)."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    else:
        match = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", value)
        if not match or not any(match.groups()):
            raise click.BadParameter(f"'{text}' is not a run time like 30s, 2m or 1h30m")
        hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not 1 <= seconds <= MAX_RUN_SECONDS:
        raise click.BadParameter(f"the run time must be between 1 s and {MAX_RUN_SECONDS // 3600} h")
    return seconds


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_locustfile() -> Path:
    spec = importlib.util.find_spec("scenarios.load")
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException("the load scenarios (scenarios/load) are not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "locustfile.py"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---- the stack under test ----------------------------------------------------------------------------------
@dataclass
class Target:
    """The stack a load test runs against: its origins, whether this command started it, and how to say which."""

    urls: dict[str, str]
    started_here: bool
    description: str


@contextlib.contextmanager
def started_stack(seed: int, options: dict[str, dict[str, Any]] | None = None) -> Iterator[Target]:
    """Sales, SCM and the bridge on free 127.0.0.1 ports in this process, in memory, maps running, wired
    in-process as ``sandbox up`` wires them by default; ``options`` per service (limits, latency)."""
    from leadtocash.stack import Serving, StackConfig, start_stack

    config = StackConfig(memory=True, seed=seed, options=dict(options or {}))
    with start_stack(config, serve=Serving("127.0.0.1")) as stack:
        yield Target(dict(stack.urls), True, f"started here on 127.0.0.1, in memory, seed {seed}")


class Bridge:
    """The bridge's admin API, as far as the load command needs it."""

    def __init__(self, url: str) -> None:
        from sandbox.clients import ClientCredentials

        # the well-known development app's token when the bridge asks for one (its 401 names the identity service)
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=30.0, auth=ClientCredentials())

    def maps(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/maps")
        response.raise_for_status()
        return list(response.json())

    def set_mode(self, map_id: str, mode: str) -> None:
        response = self.client.post(f"/api/maps/{map_id}/run", json={"mode": mode, "initial_sync": False})
        if response.status_code >= 400:
            raise click.ClickException(f"could not switch {map_id} to {mode} mode: {response.text[:300]}")

    def close(self) -> None:
        self.client.close()


@dataclass
class Sampler:
    """Samples the bridge's lag and queue depth every :data:`SAMPLE_INTERVAL` seconds while the test runs."""

    bridge: Bridge | None
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-bridge-sampler", daemon=True)

    def start(self) -> None:
        if self.bridge is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(SAMPLE_INTERVAL):
            try:
                rows = self.bridge.maps()  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - a busy bridge misses a sample, the run goes on
                self.errors += 1
                continue
            lags = [float(r["lag_seconds"]) for r in rows if r.get("lag_seconds") is not None]
            queued = sum(int(r.get("queued") or 0) for r in rows)
            self.samples.append(
                {"t": round(time.monotonic() - started, 1), "lag_max": max(lags) if lags else 0.0, "queued": queued}
            )

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {
                "samples": 0,
                "lag_max_seconds": None,
                "lag_mean_seconds": None,
                "queue_max": None,
                "queue_mean": None,
                "sample_errors": self.errors,
            }
        lags = [s["lag_max"] for s in self.samples]
        queues = [s["queued"] for s in self.samples]
        return {
            "samples": len(self.samples),
            "lag_max_seconds": round(max(lags), 3),
            "lag_mean_seconds": round(sum(lags) / len(lags), 3),
            "queue_max": max(queues),
            "queue_mean": round(sum(queues) / len(queues), 1),
            "sample_errors": self.errors,
            "series": self.samples,
        }


# ---- running Locust ------------------------------------------------------------------------------------------
@dataclass
class LocustRun:
    returncode: int
    seconds: float
    log: Path
    timed_out: bool = False


def locust_command(
    locustfile: Path,
    *,
    users: int,
    spawn_rate: float,
    run_seconds: int,
    csv_prefix: Path,
    html: str | None,
    urls: dict[str, str],
    workers: int,
    master_port: int | None,
    user_classes: tuple[str, ...],
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{run_seconds}s",
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--sales-url",
        urls["sales"],
        "--scm-url",
        urls["scm"],
        "--bridge-url",
        urls.get("bridge", ""),
        "--host",
        urls["sales"],
    ]
    if html:
        command += ["--html", html]
    if workers > 0:
        command += [
            "--master",
            "--expect-workers",
            str(workers),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers-max-wait",
            "60",
        ]
    return command + list(user_classes)


def worker_command(locustfile: Path, master_port: int, user_classes: tuple[str, ...]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
        *user_classes,
    ]


def run_locust(
    command: list[str], workers: list[list[str]], env: dict[str, str], log: Path, limit: float, progress: Any = None
) -> LocustRun:
    """Start the master (and workers), wait at most ``limit`` seconds, then stop them; output goes to ``log``."""
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    timed_out = False
    with log.open("wb") as out:
        try:
            master = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            processes.append(master)
            for index, worker in enumerate(workers):
                worker_log = log.with_name(f"{log.stem}-worker{index + 1}.log").open("wb")
                processes.append(subprocess.Popen(worker, stdout=worker_log, stderr=subprocess.STDOUT, env=env))
                worker_log.close()
            while master.poll() is None:
                elapsed = time.monotonic() - started
                if elapsed > limit:
                    timed_out = True
                    break
                if progress is not None:
                    progress(elapsed)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    master.wait(timeout=1.0)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
    return LocustRun(processes[0].returncode if processes else 2, time.monotonic() - started, log, timed_out)


# ---- reading the results -------------------------------------------------------------------------------------
def read_stats(path: Path) -> list[dict[str, Any]]:
    """Locust's ``<prefix>_stats.csv`` as dicts with numbers (percentiles in ms; None when not measured)."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            rows.append(
                {
                    "type": raw.get("Type") or "",
                    "name": raw.get("Name") or "",
                    "requests": int(_number(raw.get("Request Count", "0")) or 0),
                    "failures": int(_number(raw.get("Failure Count", "0")) or 0),
                    "rps": _number(raw.get("Requests/s", "0")) or 0.0,
                    "fails_per_s": _number(raw.get("Failures/s", "0")) or 0.0,
                    "avg_ms": _number(raw.get("Average Response Time", "")),
                    "p50_ms": _number(raw.get("50%", "")),
                    "p95_ms": _number(raw.get("95%", "")),
                    "p99_ms": _number(raw.get("99%", "")),
                    "max_ms": _number(raw.get("Max Response Time", "")),
                }
            )
    return rows


_WRAPPED_ERROR = re.compile(r"^(?:CatchResponseError|HTTPError|\w+Error)\((['\"])(.*)\1\)$", re.DOTALL)
_DETAIL = re.compile(r"^(\d{3})(?: \[([^\]]*)\])?(?: (.*))?$", re.DOTALL)


def read_failures(path: Path) -> list[dict[str, Any]]:
    """Locust's ``<prefix>_failures.csv``, per request type: why it failed (status, error code, message) and
    how often. The load users report a failed answer as ``503 [code] message`` (``DetailedSession``); anything
    else (a connection refused, a timeout) keeps Locust's own text as the message, without a status."""
    if not path.exists():
        return []
    by_request: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            text = (raw.get("Error") or "").strip()
            wrapped = _WRAPPED_ERROR.match(text)
            if wrapped and wrapped.group(0).startswith("CatchResponseError"):
                text = wrapped.group(2)
            detail = _DETAIL.match(text)
            reason: dict[str, Any] = (
                {
                    "status": int(detail.group(1)),
                    "code": detail.group(2) or "",
                    "message": (detail.group(3) or "").strip(),
                }
                if detail
                else {"status": None, "code": "", "message": text}
            )
            reason["occurrences"] = int(_number(raw.get("Occurrences", "0")) or 0)
            key = (raw.get("Method") or "", raw.get("Name") or "")
            by_request.setdefault(key, []).append(reason)
    return [
        {"type": kind, "name": name, "reasons": sorted(reasons, key=lambda r: -r["occurrences"])}
        for (kind, name), reasons in sorted(by_request.items())
    ]


class BridgeErrors(logging.Handler):
    """Counts the errors the services of a stack started here log (an unexpected bridge error, a 500 in a mock)
    during the run, by their first line, instead of letting their tracebacks scroll past the summary."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        first = record.getMessage().splitlines()[0] if record.getMessage() else record.name
        if record.exc_info and record.exc_info[1] is not None:
            first += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self.counts[first[:300]] = self.counts.get(first[:300], 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "count": sum(self.counts.values()),
            "kinds": [{"error": text, "count": n} for text, n in sorted(self.counts.items(), key=lambda kv: -kv[1])],
        }


#: the loggers whose errors :class:`BridgeErrors` counts: the bridge's and the services' error handlers
ERROR_LOGGERS = ("bridge", "sandbox")


@contextlib.contextmanager
def counted_errors() -> Iterator[BridgeErrors]:
    """Count the errors of the services in this process (see :class:`BridgeErrors`) without printing them."""
    handler = BridgeErrors()
    loggers = [logging.getLogger(name) for name in ERROR_LOGGERS]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.ERROR:
            logger.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        for logger, (propagate, level) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


def map_errors(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per map, the sync failures the bridge counted during the run and its last error (from ``/api/maps``)."""
    out = []
    for map_id in sorted(after):
        failed = int(after[map_id].get("failed") or 0) - int((before.get(map_id) or {}).get("failed") or 0)
        if failed > 0:
            out.append({"map": map_id, "failed": failed, "last_error": after[map_id].get("last_error")})
    return out


def with_throttled(row: dict[str, Any], failures: list[dict[str, Any]]) -> dict[str, Any]:
    """A request row of the stats with its 429 answers (from :func:`read_failures`) counted apart: ``throttled``,
    and ``failures`` without them. A throttled request met a service's limit (``sandbox up --limits``), which
    says where production would throttle; it is no failure of the stack and does not count toward the ratio."""
    throttled = sum(
        reason["occurrences"]
        for entry in failures
        if (entry["type"], entry["name"]) == (row["type"], row["name"])
        for reason in entry["reasons"]
        if reason["status"] == 429
    )
    throttled = min(throttled, row["failures"])
    return {**row, "failures": row["failures"] - throttled, "throttled": throttled}


def summarize(
    stats: list[dict[str, Any]],
    *,
    run_seconds: float,
    synced_before: dict[str, int],
    synced_after: dict[str, int],
    bridge: dict[str, Any],
    config: dict[str, Any],
    max_failure_ratio: float,
    failures: list[dict[str, Any]] | None = None,
    bridge_errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run in numbers; ``failures`` (:func:`read_failures`) say why requests failed, ``bridge_errors`` what
    went wrong inside the stack (errors logged by its services, sync failures per map)."""
    entries = [row for row in stats if row["name"] != "Aggregated"]
    aggregated = next((row for row in stats if row["name"] == "Aggregated"), None)
    requests = [with_throttled(row, failures or []) for row in entries if row["type"] != SYNC_TYPE]
    sync = [row for row in entries if row["type"] == SYNC_TYPE]
    total_requests = sum(r["requests"] for r in requests)
    total_failures = sum(r["failures"] for r in requests)
    total_throttled = sum(r["throttled"] for r in requests)
    sync_samples = sum(r["requests"] for r in sync)
    sync_failures = sum(r["failures"] for r in sync)
    counted = total_requests + sync_samples
    ratio = (total_failures + sync_failures) / counted if counted else 1.0
    seconds = max(run_seconds, 1e-9)
    per_map = []
    for map_id in sorted(set(synced_before) | set(synced_after)):
        delta = synced_after.get(map_id, 0) - synced_before.get(map_id, 0)
        if delta:
            per_map.append({"map": map_id, "records": delta, "per_second": round(delta / seconds, 2)})
    passed = counted > 0 and ratio <= max_failure_ratio
    return {
        "config": config,
        "seconds": round(run_seconds, 1),
        "requests": requests,
        "totals": {
            "requests": total_requests,
            "failures": total_failures,
            # 429s (the services' limits, --limits): where production would throttle, not failures
            "throttled": total_throttled,
            "rps": round(sum(r["rps"] for r in requests), 2),
            "sync_samples": sync_samples,
            "sync_failures": sync_failures,
            # Locust's own percentiles over every request and sync sample of the run
            "p50_ms": aggregated["p50_ms"] if aggregated else None,
            "p95_ms": aggregated["p95_ms"] if aggregated else None,
        },
        "sync": sync,
        "synced_per_map": per_map,
        "bridge": bridge,
        "failures": failures or [],
        "bridge_errors": bridge_errors or {"count": 0, "kinds": [], "maps": []},
        "failure_ratio": round(ratio, 5),
        "max_failure_ratio": max_failure_ratio,
        "passed": passed,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_summary(summary: dict[str, Any], echo: Any = click.echo) -> None:
    config = summary["config"]
    echo(
        f"Load test: {config['users']} users, {summary['seconds']:.0f} s, {config['mode']} mode, "
        f"{config['workers'] or 1} Locust process(es){'' if not config['workers'] else ' + master'}; "
        f"stack {config['stack']}"
    )
    echo("")
    echo(f"{'requests':<58} {'reqs':>7} {'fails':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for row in sorted(summary["requests"], key=lambda r: (-r["requests"], r["name"])):
        label = f"{row['type']} {row['name']}"[:58]
        echo(
            f"{label:<58} {row['requests']:>7} {row['failures']:>6} {row['rps']:>7.2f} {_ms(row['p50_ms']):>7} "
            f"{_ms(row['p95_ms']):>7} {_ms(row['p99_ms']):>7}"
            + (f"  {row['throttled']} throttled" if row.get("throttled") else "")
        )
    totals = summary["totals"]
    share = f"{100.0 * totals['failures'] / totals['requests']:.2f}%" if totals["requests"] else "-"
    throttled = totals.get("throttled") or 0
    echo(
        f"{'all requests':<58} {totals['requests']:>7} {totals['failures']:>6} {totals['rps']:>7.2f}   ({share} failed"
        + (f", {throttled} throttled (429)" if throttled else "")
        + ")"
        + (
            f"; p50 {_ms(totals['p50_ms'])} ms, p95 {_ms(totals['p95_ms'])} ms"
            if totals.get("p95_ms") is not None
            else ""
        )
    )
    echo("")
    echo(
        f"{'sync: propagation latency (written -> visible)':<58} {'samples':>7} {'fails':>6} {'':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    if not summary["sync"]:
        echo("  (no sync samples: the SyncProbe user did not run)")
    for row in summary["sync"]:
        echo(
            f"{row['name'][:58]:<58} {row['requests']:>7} {row['failures']:>6} {'':>7} {_ms(row['p50_ms']):>7} "
            f"{_ms(row['p95_ms']):>7} {_ms(row['p99_ms']):>7}"
        )
    echo("")
    echo(f"{'synced by the bridge during the run, per map':<58} {'records':>7} {'':>6} {'rec/s':>7}")
    if not summary["synced_per_map"]:
        echo("  (nothing synced" + ("" if config.get("bridge") else ": no bridge URL") + ")")
    for row in summary["synced_per_map"]:
        echo(f"{row['map']:<58} {row['records']:>7} {'':>6} {row['per_second']:>7.2f}")
    bridge = summary["bridge"]
    echo("")
    if bridge.get("samples"):
        echo(
            f"bridge over the run ({bridge['samples']} samples): lag max {bridge['lag_max_seconds']:.2f} s, "
            f"mean {bridge['lag_mean_seconds']:.2f} s; queue max {bridge['queue_max']}, "
            f"mean {bridge['queue_mean']}"
        )
    else:
        echo("bridge over the run: no samples")
    if summary.get("failures"):
        echo("")
        echo("why requests failed (status [error code] message: times)")
        for row in summary["failures"]:
            echo(f"  {row['type']} {row['name']}")
            for reason in row["reasons"]:
                status = "" if reason["status"] is None else f"{reason['status']} "
                code = f"[{reason['code']}] " if reason["code"] else ""
                echo(f"    {status}{code}{reason['message'][:200]}: {reason['occurrences']}")
    errors = summary.get("bridge_errors") or {}
    if errors.get("count") or errors.get("maps"):
        echo("")
        echo(f"errors inside the stack: {errors.get('count', 0)} logged")
        for kind in errors.get("kinds", [])[:10]:
            echo(f"  {kind['count']:>6} x {kind['error'][:200]}")
        for row in errors.get("maps", []):
            echo(f"  map {row['map']}: {row['failed']} sync failures, last: {str(row['last_error'] or '')[:200]}")
    verdict = "PASS" if summary["passed"] else "FAIL"
    echo(
        f"{verdict}: failure ratio {100 * summary['failure_ratio']:.2f}% "
        f"({'<=' if summary['passed'] else '>'} {100 * summary['max_failure_ratio']:.2f}% allowed)"
    )


# ---- the command -------------------------------------------------------------------------------------------
LOAD_EPILOG = """\b
Workers on several machines: serve the stack beyond loopback (sandbox up --host 0.0.0.0 on machine A),
run the Locust master yourself, then one worker per core on each other machine:
  python -m locust -f scenarios/load/locustfile.py --headless --master --expect-workers 4 \\
      -u 200 -r 20 -t 5m --csv run --sales-url http://A:5101 --scm-url http://A:5102 --bridge-url http://A:5103
  SANDBOX_SALES_URL=http://A:5101 SANDBOX_SCM_URL=http://A:5102 SANDBOX_BRIDGE_URL=http://A:5103 \\
      python -m locust -f scenarios/load/locustfile.py --worker --master-host A
"""


@click.command("load", epilog=LOAD_EPILOG)
@click.argument("user_classes", nargs=-1)
@click.option("--sales-url", help="A running mock Sales (origin). Without URLs a stack is started here.")
@click.option("--scm-url", help="A running mock SCM (origin).")
@click.option("--bridge-url", help="A running bridge (origin): mode switching, synced records, lag and queue.")
@click.option("--users", "-u", default=10, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--spawn-rate",
    "-r",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 10_000),
    help="Users started per second.",
)
@click.option("--run-time", "-t", default="30s", show_default=True, help="How long: 30s, 2m, 1h30m (at most 12h).")
@click.option(
    "--mode",
    type=click.Choice(["live", "async"]),
    default="live",
    show_default=True,
    help="Switch the running maps to this mode for the run (restored afterwards on a running stack).",
)
@click.option("--csv", "csv_prefix", help="Keep Locust's CSV stats under this prefix (PREFIX_stats.csv, ...).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write Locust's HTML report here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary as JSON here.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write one self-contained HTML file with charts of the run here (leadtocash.report).",
)
@click.option(
    "--workers",
    default=0,
    show_default=True,
    type=click.IntRange(0, 256),
    help="Locust distributed mode: a master plus N worker processes on this machine.",
)
@click.option(
    "--max-failure-ratio",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Exit 1 when failed requests and sync samples exceed this share of all.",
)
@click.option(
    "--locustfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another locustfile (default: scenarios/load/locustfile.py).",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of a stack started here.")
@click.option("--allow-remote", is_flag=True, help="Allow service URLs that are not on this machine's loopback.")
@limits_options  # --limits, --latency-profile, --latency-seed for a stack started here (docs/limits.md)
def load(
    user_classes: tuple[str, ...],
    sales_url: str | None,
    scm_url: str | None,
    bridge_url: str | None,
    users: int,
    spawn_rate: float,
    run_time: str,
    mode: str,
    csv_prefix: str | None,
    html_path: str | None,
    json_path: str | None,
    report_path: str | None,
    workers: int,
    max_failure_ratio: float,
    locustfile: Path | None,
    seed: int,
    allow_remote: bool,
    limits: LimitsProfile,
    latency: LatencyProfile,
    latency_seed: int | None,
) -> None:
    """Load-test the stack with Locust (headless, its own process) and summarize requests, sync and lag.

    USER_CLASSES picks some of Salesperson, OrderProcessor, Reader, SyncProbe (default: all).
    """
    seconds = parse_run_time(run_time)
    if (sales_url is None) != (scm_url is None):
        raise click.UsageError("--sales-url and --scm-url go together")
    given = [u for u in (sales_url, scm_url, bridge_url) if u]
    if not allow_remote and any(not is_loopback(u) for u in given):
        raise click.UsageError(
            "service URLs must be on loopback (127.0.0.1, localhost, ::1); "
            "pass --allow-remote to load a stack elsewhere"
        )
    if sales_url is not None and (limits.active or latency.services):
        raise click.UsageError(
            "--limits and --latency-profile apply to a stack started here; start yours with them instead "
            "(sandbox up --limits ... --latency-profile ...)"
        )
    if importlib.util.find_spec("locust") is None:
        raise click.ClickException("Locust is not installed: pip install -e '.[load]' (or '.[dev]')")
    locustfile = locustfile or default_locustfile()
    on_terminal = sys.stderr.isatty()
    errors: BridgeErrors | None = None
    with contextlib.ExitStack() as stack:
        if sales_url is None:
            if on_terminal:
                click.echo("starting mock Sales, mock SCM and the bridge on 127.0.0.1 (initial sync) ...", err=True)
            errors = stack.enter_context(counted_errors())  # their tracebacks would scroll past the summary
            options = with_limits(StackConfig(), limits, latency, latency_seed).options
            target = stack.enter_context(started_stack(seed, options))
        else:
            urls = {"sales": service_origin(sales_url, "sales"), "scm": service_origin(scm_url or "", "scm")}
            if bridge_url:
                urls["bridge"] = bridge_url.rstrip("/")
            description = "at " + ", ".join(f"{k} {v}" for k, v in urls.items())
            # the Locust users' tokens come from the identity service Sales names in its 401 (any port)
            identity = identity_of(urls["sales"] + "/api/data/v9.2/")
            target = Target({**urls, **({"identity": identity} if identity else {})}, False, description)
        code = _run(
            target,
            stack,
            user_classes=user_classes,
            users=users,
            spawn_rate=spawn_rate,
            seconds=seconds,
            mode=mode,
            csv_prefix=csv_prefix,
            html_path=html_path,
            json_path=json_path,
            report_path=report_path,
            workers=workers,
            max_failure_ratio=max_failure_ratio,
            locustfile=locustfile,
            on_terminal=on_terminal,
            errors=errors,
        )
    sys.exit(code)


def _run(
    target: Target,
    stack: contextlib.ExitStack,
    *,
    user_classes: tuple[str, ...],
    users: int,
    spawn_rate: float,
    seconds: int,
    mode: str,
    csv_prefix: str | None,
    html_path: str | None,
    json_path: str | None,
    workers: int,
    max_failure_ratio: float,
    locustfile: Path,
    report_path: str | None = None,
    on_terminal: bool,
    errors: BridgeErrors | None = None,
) -> int:
    from sandbox.server import free_port

    bridge = Bridge(target.urls["bridge"]) if target.urls.get("bridge") else None
    if bridge is not None:
        stack.callback(bridge.close)
    restore: dict[str, str] = {}
    if bridge is not None:
        try:
            running = [m for m in bridge.maps() if m.get("state") == "Running"]
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the bridge at {target.urls['bridge']}: {exc}") from None
        for item in running:
            if item.get("mode") != mode:
                bridge.set_mode(item["id"], mode)
                restore[item["id"]] = item["mode"]
        if restore and not target.started_here:
            # Leave the user's stack as we found it.
            stack.callback(_restore_modes, bridge, restore)
    folder = Path(tempfile.mkdtemp(prefix="sandbox-load-"))
    stack.callback(shutil.rmtree, folder, True)
    prefix = Path(csv_prefix) if csv_prefix else folder / "locust"
    if csv_prefix and prefix.parent != Path(""):
        prefix.parent.mkdir(parents=True, exist_ok=True)
    master_port = free_port() if workers > 0 else None
    command = locust_command(
        locustfile,
        users=users,
        spawn_rate=spawn_rate,
        run_seconds=seconds,
        csv_prefix=prefix,
        html=html_path,
        urls=target.urls,
        workers=workers,
        master_port=master_port,
        user_classes=user_classes,
    )
    worker_commands = (
        [worker_command(locustfile, master_port, user_classes) for _ in range(workers)] if master_port else []
    )
    project_root = str(locustfile.resolve().parents[2])
    env = {
        **os.environ,
        "SANDBOX_SALES_URL": target.urls["sales"],
        "SANDBOX_SCM_URL": target.urls["scm"],
        "SANDBOX_BRIDGE_URL": target.urls.get("bridge", ""),
        # where the Locust users get their tokens (scenarios/load/common.py); a stack started here has its own
        **({"SANDBOX_IDENTITY_URL": target.urls["identity"]} if target.urls.get("identity") else {}),
        "PYTHONPATH": os.pathsep.join(p for p in (project_root, os.environ.get("PYTHONPATH", "")) if p),
    }
    maps_before = _map_rows(bridge)
    synced_before = _synced(maps_before)
    sampler = Sampler(bridge)
    sampler.start()

    def progress(elapsed: float) -> None:
        if int(elapsed) % 5 or int(elapsed) == 0 or not on_terminal:
            return
        latest = sampler.samples[-1] if sampler.samples else None
        done = _aggregated(Path(f"{prefix}_stats.csv"))
        text = f"  {min(elapsed, seconds):4.0f}/{seconds} s"
        if done:
            text += f"  requests {done['requests']}, failures {done['failures']}"
        if latest:
            text += f"  bridge lag {latest['lag_max']:.1f} s, queue {latest['queued']}"
        click.echo(text, err=True)

    if on_terminal:
        click.echo(
            f"running Locust: {users} users, spawn rate {spawn_rate}/s, {seconds} s, {mode} mode"
            + (f", {workers} workers" if workers else "")
            + " ...",
            err=True,
        )
    try:
        result = run_locust(
            command,
            worker_commands,
            env,
            folder / "locust.log",
            seconds + GRACE_SECONDS,
            progress=_every_second(progress),
        )
    finally:
        sampler.stop()
    maps_after = _map_rows(bridge)
    synced_after = _synced(maps_after)
    stats = read_stats(Path(f"{prefix}_stats.csv"))
    if result.returncode not in (0, 1) or not stats:
        tail = result.log.read_text(encoding="utf-8", errors="replace")[-3000:] if result.log.exists() else ""
        click.echo(
            f"Locust did not run (exit {result.returncode}{', timed out' if result.timed_out else ''}):\n{tail}",
            err=True,
        )
        return 2
    config = {
        "users": users,
        "spawn_rate": spawn_rate,
        "run_time_seconds": seconds,
        "mode": mode,
        "workers": workers,
        "user_classes": list(user_classes) or ["Salesperson", "OrderProcessor", "Reader", "SyncProbe"],
        "stack": target.description,
        "bridge": bool(bridge),
        "urls": target.urls,
    }
    summary = summarize(
        stats,
        run_seconds=min(result.seconds, float(seconds)),
        synced_before=synced_before,
        synced_after=synced_after,
        bridge=sampler.summary(),
        config=config,
        max_failure_ratio=max_failure_ratio,
        failures=read_failures(Path(f"{prefix}_failures.csv")),
        bridge_errors={
            **(errors.summary() if errors is not None else {"count": 0, "kinds": []}),
            "maps": map_errors(maps_before, maps_after),
        },
    )
    print_summary(summary)
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if report_path:
        from leadtocash import report

        report.write(report_path, report.load_html(summary))
    if result.timed_out:
        click.echo("Locust overran its run time and was stopped.", err=True)
    return 0 if summary["passed"] else 1


def _restore_modes(bridge: Bridge, modes: dict[str, str]) -> None:
    for map_id, mode in modes.items():
        bridge.set_mode(map_id, mode)


def _every_second(callback: Any) -> Any:
    last = [-1]

    def tick(elapsed: float) -> None:
        if int(elapsed) != last[0]:
            last[0] = int(elapsed)
            callback(elapsed)

    return tick


def _aggregated(path: Path) -> dict[str, Any] | None:
    try:
        rows = read_stats(path)
    except (OSError, csv.Error, ValueError):
        return None
    return next((r for r in rows if r["name"] == "Aggregated"), None)


def _map_rows(bridge: Bridge | None) -> dict[str, dict[str, Any]]:
    """The bridge's maps by id (``/api/maps``), or nothing without a bridge or when it does not answer."""
    if bridge is None:
        return {}
    try:
        return {m["id"]: m for m in bridge.maps()}
    except (httpx.HTTPError, ValueError, KeyError):
        return {}


def _synced(rows: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {map_id: int(row.get("synced") or 0) for map_id, row in rows.items()}


__all__ = [
    "load",
    "parse_run_time",
    "read_stats",
    "read_failures",
    "summarize",
    "print_summary",
    "locust_command",
    "counted_errors",
    "map_errors",
]
