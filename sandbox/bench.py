"""``sandbox bench``: throughput of the mock services, each result beside a baseline measured in the same run.

The baseline of request throughput is a bare WSGI endpoint served by the same server, on the same machine,
at the same moment, so the ratio says how much of the server's capacity our OData stack uses, whatever
the machine. Numbers are for orientation: a shared 2-core machine moves them by tens of percent.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable

import httpx
from flask import Flask

from sandbox.server import ServerGroup, free_port
from sandbox.stack import StackConfig, build_apps


@dataclass
class BenchResult:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    ratio: float


def _bare_app() -> Flask:
    app = Flask("baseline")

    @app.get("/ping")
    def ping() -> tuple[str, int]:
        return '{"value":[]}', 200

    return app


def _rate(count: int, work: Callable[[int], None], threads: int, deadline: float) -> float:
    """Requests per second of ``count`` calls of ``work`` over ``threads`` threads, stopped at ``deadline``."""
    done = 0
    lock = threading.Lock()
    started = time.perf_counter()

    def run(worker: int) -> None:
        nonlocal done
        for index in range(worker, count, threads):
            if time.monotonic() > deadline:
                return
            work(index)
            with lock:
                done += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    elapsed = time.perf_counter() - started
    return done / elapsed if elapsed > 0 else 0.0


def run_bench(*, quick: bool = False, threads: int = 4, time_budget: float = 120.0,
              progress: Callable[[str], None] | None = None) -> list[BenchResult]:
    """Serve Sales, SCM and a bare baseline app on loopback and measure reads, writes and queries per second."""
    say = progress or (lambda _text: None)
    count = 300 if quick else 2000
    deadline = time.monotonic() + time_budget
    apps = build_apps(StackConfig(memory=True, seed=1))
    group = ServerGroup()
    results: list[BenchResult] = []
    try:
        base = group.start("baseline", _bare_app(), free_port())
        urls = {name: group.start(name, app, free_port()).url for name, app in apps.items()}
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=30.0, headers={"Accept": "application/json"})
            return local.client

        say("baseline: bare WSGI endpoint")
        baseline = _rate(count, lambda i: client().get(f"{base.url}/ping").raise_for_status(), threads, deadline)

        def measure(name: str, work: Callable[[int], None]) -> None:
            say(name)
            value = _rate(count, work, threads, deadline)
            results.append(BenchResult(name, round(value, 1), "requests/s", round(baseline, 1),
                                       "bare WSGI endpoint, same server", round(value / baseline, 3)))

        if "sales" in urls:
            root = urls["sales"] + "/api/data/v9.2"
            ids: list[str] = []

            def sales_write(i: int) -> None:
                response = client().post(f"{root}/accounts", json={"name": f"Bench {i}", "accountnumber": f"B-{i}"})
                response.raise_for_status()
                ids.append(response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))

            measure("sales-writes", sales_write)
            measure("sales-reads", lambda i: client().get(f"{root}/accounts({ids[i % len(ids)]})").raise_for_status())
            measure("sales-queries", lambda i: client().get(
                f"{root}/accounts", params={"$select": "name,accountnumber", "$filter": "startswith(name,'Bench 1')",
                                            "$top": "50"}).raise_for_status())
        if "scm" in urls:
            root = urls["scm"] + "/data"

            def scm_write(i: int) -> None:
                client().post(f"{root}/CustomersV3", json={
                    "CustomerAccount": f"BENCH-{i:05d}", "OrganizationName": f"Bench {i}", "CustomerGroupId": "10",
                    "SalesCurrencyCode": "USD"}).raise_for_status()

            measure("scm-writes", scm_write)
            measure("scm-reads", lambda i: client().get(
                f"{root}/CustomersV3(dataAreaId='usmf',CustomerAccount='BENCH-{i % count:05d}')").raise_for_status())
            measure("scm-queries", lambda i: client().get(
                f"{root}/CustomersV3", params={"$select": "CustomerAccount,OrganizationName",
                                               "$filter": "CustomerAccount eq 'BENCH-001*'", "$top": "50"}
            ).raise_for_status())
    finally:
        group.stop_all()
        for app in apps.values():
            app.extensions["sandbox"].db.dispose()
    return results


def report(results: list[BenchResult], machine: dict[str, Any]) -> dict[str, Any]:
    return {"results": [asdict(r) for r in results], "machine": machine}


def machine_info() -> dict[str, Any]:
    import os
    import platform

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def print_table(results: list[BenchResult], out: Any = sys.stdout) -> None:
    out.write(f"{'benchmark':<16} {'value':>10} {'unit':<11} {'baseline':>10}  {'ratio':>6}  baseline is\n")
    for r in results:
        out.write(f"{r.name:<16} {r.value:>10.1f} {r.unit:<11} {r.baseline:>10.1f}  {r.ratio:>6.3f}  {r.baseline_name}\n")


def dump(results: list[BenchResult], path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report(results, machine_info()), handle, indent=2)
