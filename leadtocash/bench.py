"""``sandbox bench``: a fixed suite, each result beside a baseline measured in the same run on the same machine.

Every number comes with the number it is compared against, measured side by side in the same process, so
the ratio says something whatever the machine (absolute numbers on a shared 2-core machine move by tens of
percent from run to run; the ratios move much less):

* ``initial-sync``: rows/s of the initial sync of N customers from SCM to Sales (the ``customers-accounts``
  map, through the mocks' OData APIs and ``CreateMultiple``, as ``sandbox maps run`` does it) against a raw
  bulk copy of the same rows and mapped columns from the SCM database into the Sales database (one
  ``SELECT``, one ``executemany``: the physical limit of SQLite here).
* ``initial-sync-processes``: the same with Sales and SCM each in a process of its own and the bridge in
  this one, as ``sandbox up --wire processes`` runs them (fresh databases, its own raw copy).
* ``live-sync-writes``: customers created per second in SCM with the map running in live mode (every write
  calls the bridge, which writes Sales, before it commits) against the same writes with the map stopped.
* ``async-sync-throughput``: customers per second the bridge brings to Sales in async mode while the writers
  are held back whenever the oldest unsynced change gets 0.5 s old (so lag stays under 1 s), against the raw
  write rate of the same writers with the map stopped (four rounds of each, alternating); a change written
  in the window counts once it reaches Sales, which is within the lag.
* ``sales-*`` / ``scm-*``: requests/s of writes, reads by key and typical filtered, paged queries of each
  mock against a bare WSGI endpoint served by the same server (waitress) at the same moment.

The sync benchmarks run the three services like ``sandbox up`` does (one process, waitress on loopback
ports, SQLite files in a temporary folder; ``initial-sync-processes`` as ``--wire processes``); the request
benchmarks use in-memory databases.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask

from leadtocash.stack import MOCKS, Serving, Stack, StackConfig, build_apps, quiet_waitress, start_stack
from sandbox.runtime import Runtime
from sandbox.server import ServerGroup, settle_heap
from sandbox.wellknown import DEFAULT_COMPANY, SYSTEM_IDENTITY

if TYPE_CHECKING:
    import sqlalchemy as sa

    from bridge.app import BridgeRuntime
    from bridge.mapping import TableMap
    from sandbox.odata.model import EntityType

MAP_ID = "customers-accounts"
ALL = ("initial-sync", "live-sync-writes", "concurrent-live-sync", "async-sync-throughput", "requests")
#: the groups that run on the sync stack (and so on PostgreSQL with ``postgres=True``)
SYNC_GROUPS = ("initial-sync", "live-sync-writes", "concurrent-live-sync", "async-sync-throughput")

Progress = Callable[[str], None]


@dataclass
class BenchResult:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    ratio: float
    #: what else was measured (sizes, seconds, lag), for the JSON report
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchSizes:
    """How much work each benchmark does. ``full()`` and ``quick()`` are the suite; tests pass tiny ones."""

    customers: int = 100_000  # initial sync
    writes: int = 1000  # per timed round of the live-sync benchmark (two rounds each way)
    async_seconds: float = 15.0  # length of the async window (and of its raw-rate baseline)
    requests: int = 2000  # per request benchmark

    @classmethod
    def full(cls) -> BenchSizes:
        return cls()

    @classmethod
    def quick(cls) -> BenchSizes:
        return cls(customers=20_000, writes=250, async_seconds=5.0, requests=300)


def _ratio(value: float, baseline: float) -> float:
    """value / baseline, of the two as reported (one decimal), so that the three numbers of a result agree."""
    value, baseline = round(value, 1), round(baseline, 1)
    return round(value / baseline, 3) if baseline > 0 else 0.0


def run_bench(
    *,
    quick: bool = False,
    threads: int = 4,
    sizes: BenchSizes | None = None,
    only: tuple[str, ...] | list[str] | None = None,
    progress: Progress | None = None,
    time_budget: float = 600.0,
    database_urls: dict[str, str] | None = None,
    postgres: bool = False,
    workers: int = 1,
    drainers: int = 1,
) -> list[BenchResult]:
    """Run the suite (or the groups in ``only``, from :data:`ALL`) and return every result with its baseline.

    ``database_urls`` (service -> SQLAlchemy URL) runs the sync benchmarks on those databases instead of
    SQLite files (empty ones, or ones a run already used: every run writes rows of its own). ``postgres`` runs
    them on a throwaway PostgreSQL cluster the benchmark starts itself (:mod:`leadtocash.postgres`), and
    ``workers`` (PostgreSQL only) serves each mock from that many processes, as ``sandbox up --workers N``.
    ``drainers``: the bridge's async drainers per source (``sandbox up --drainers N``) in async-sync-throughput.
    """
    if (
        workers > 1
        and not postgres
        and not all((database_urls or {}).get(name, "").startswith("postgresql") for name in MOCKS)
    ):
        raise ValueError(f"--workers {workers} needs PostgreSQL: add --postgres")
    if postgres and {*SYNC_GROUPS} & set(only or ALL):
        from leadtocash.postgres import EmbeddedPostgres

        say = progress or (lambda _text: None)
        say("starting a throwaway PostgreSQL cluster for the sync benchmarks")
        with EmbeddedPostgres.temporary() as server:
            fresh = _fresh_databases(server)
            return _run_bench(
                quick,
                threads,
                sizes,
                only,
                progress,
                time_budget,
                {**fresh("sync"), **(database_urls or {})},
                workers,
                fresh,
                drainers,
            )
    return _run_bench(quick, threads, sizes, only, progress, time_budget, database_urls, workers, None, drainers)


#: new databases for one stack on the benchmark's own PostgreSQL cluster, by a tag naming what they are for
NewDatabases = Callable[[str], dict[str, str]]


def _fresh_databases(server: Any) -> NewDatabases:
    def new(tag: str) -> dict[str, str]:
        return {name: server.create_database(f"bench_{tag}_{name}", drop_first=True) for name in (*MOCKS, "bridge")}

    return new


def _run_bench(
    quick: bool,
    threads: int,
    sizes: BenchSizes | None,
    only: tuple[str, ...] | list[str] | None,
    progress: Progress | None,
    time_budget: float,
    database_urls: dict[str, str] | None,
    workers: int,
    new_databases: NewDatabases | None,
    drainers: int = 1,
) -> list[BenchResult]:
    say = progress or (lambda _text: None)
    sizes = sizes or (BenchSizes.quick() if quick else BenchSizes.full())
    wanted = tuple(only or ALL)
    unknown = set(wanted) - set(ALL)
    if unknown:
        raise ValueError(f"unknown benchmark group(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    results: list[BenchResult] = []
    if "initial-sync" in wanted:
        if database_urls and new_databases is None:
            # Those databases are for the stack below: a second initial sync needs others.
            say("initial-sync-processes: skipped (it needs databases of its own; --database-url names one set)")
        else:
            # Sales and SCM in processes of their own (``sandbox up --wire processes``): bulk work is where one
            # interpreter lock for all three services is the ceiling. Then the same in one process, below.
            other = new_databases("processes") if new_databases is not None else {}
            results.append(_initial_sync_in_processes(sizes.customers, say, progress is not None, other))
    if set(SYNC_GROUPS) & set(wanted):
        with _sync_stack(database_urls or {}, workers, drainers) as stack:
            if "initial-sync" in wanted:
                results.append(_initial_sync(stack, sizes.customers, say, ticking=progress is not None))
            else:
                stack.run_map(MAP_ID, initial_sync=True)
                stack.analyze()
            if "live-sync-writes" in wanted:
                results.append(_live_sync_writes(stack, sizes.writes, threads, say))
            if "concurrent-live-sync" in wanted:
                results.extend(_concurrent_live_sync(stack, sizes.writes, say))
            if "async-sync-throughput" in wanted:
                results.append(_async_throughput(stack, sizes.async_seconds, threads, say))
    if "requests" in wanted:
        results.extend(_request_throughput(sizes.requests, threads, time.monotonic() + time_budget, say))
    return results


# ---- the stack the sync benchmarks run on -----------------------------------------------------------------
@dataclass
class _SyncStack:
    """The served stack a sync benchmark runs on, and the mocks' runtimes it reads and writes directly (the
    stack's own, or handles on the same databases when the mocks run in child processes)."""

    stack: Stack
    runtimes: dict[str, Runtime]

    @property
    def urls(self) -> dict[str, str]:
        return self.stack.urls

    @property
    def bridge(self) -> BridgeRuntime:
        return self.stack.bridge_runtime

    def runtime(self, name: str) -> Runtime:
        return self.runtimes[name]

    @property
    def workers(self) -> int:
        return self.stack.children.workers if self.stack.children is not None else 1

    def analyze(self) -> None:
        """Refresh the planner's statistics of every database after a bulk load (see :meth:`Database.analyze`)."""
        for runtime in self.runtimes.values():
            runtime.db.analyze()
        self.bridge.state.db.analyze()

    def run_map(self, map_id: str, *, initial_sync: bool, mode: str = "live") -> dict[str, Any]:
        """Run ``map_id`` after the maps it depends on (reference data: a few rows each)."""
        lifecycle = self.bridge.lifecycle
        for parent in _dependencies(self.bridge.engine, map_id):
            if self.bridge.state.map_row(parent)["state"] == "Not running":
                lifecycle.run(parent, initial_sync=True, master="scm")
        return lifecycle.run(map_id, initial_sync=initial_sync, master="scm", mode=mode)


def _dependencies(engine: Any, map_id: str) -> list[str]:
    ordered: list[str] = []

    def visit(current: str) -> None:
        for parent in engine.by_id[current].depends_on:
            visit(parent)
            if parent not in ordered:
                ordered.append(parent)

    visit(map_id)
    return ordered


@contextlib.contextmanager
def _sync_stack(database_urls: dict[str, str], workers: int = 1, drainers: int = 1) -> Iterator[_SyncStack]:
    """Sales, SCM and the bridge as ``sandbox up`` runs them (one process, wired in-process, served on loopback
    ports), on SQLite files in a temporary folder (or on the databases ``database_urls`` names); no map runs.

    With several ``workers`` the mocks run as ``sandbox up --workers N`` runs them (each as N child processes on
    one port); the benchmark reads and writes their databases through handles built here first (which seed them).
    """
    folder = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    handles: dict[str, Runtime] = {}
    try:
        config = StackConfig(
            data_dir=folder, seed=1, database_urls=dict(database_urls), workers=workers, drain_workers=drainers
        )
        if workers > 1:
            handles = {name: app.extensions["sandbox"] for name, app in build_apps(config).items()}
        with start_stack(config, serve=Serving(), start_maps="none") as stack:
            settle_heap()  # as `sandbox up` does once it is ready
            yield _SyncStack(stack, handles or {name: stack.runtime(name) for name in MOCKS})
    finally:
        for runtime in handles.values():
            runtime.db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


# ---- initial sync ----------------------------------------------------------------------------------------
#: this run's mark in every key the benchmark writes, so that a run on databases an earlier run used (``--database-url``)
#: never collides with that run's rows
RUN = uuid.uuid4().hex[:4].upper()


def _customer(index: int, prefix: str = "BI") -> dict[str, Any]:
    return {
        "dataAreaId": DEFAULT_COMPANY,
        "CustomerAccount": f"{prefix}-{RUN}-{index:06d}",
        "OrganizationName": f"Bench {index}",
        "CustomerGroupId": "10",
        "SalesCurrencyCode": "USD",
        "AddressCity": "Seattle",
        "AddressStreet": f"{index} Main Street",
        "AddressZipCode": "98101",
        "CreditLimit": 1000 + index % 500,
        "PrimaryContactEmail": f"bench{index}@example.com",
    }


def _bulk_customers(scm: Any, count: int, progress: Progress) -> None:
    """Put ``count`` customers into the SCM database (setup, not timed).

    The first goes through the store, so every default and rule applies; the rest are copies of it with
    their own account, party number, name and address, inserted in bulk (the store would take minutes).
    """
    import sqlalchemy as sa

    from sandbox.odata.model import ROWID

    if count <= 0:
        return
    entity = scm.model.entities["CustomerV3"]
    table = entity.table
    with scm.db.transaction():
        template = scm.store.insert("CustomerV3", _customer(0), identity=SYSTEM_IDENTITY)
    template.pop(ROWID, None)
    base_party = int("".join(ch for ch in str(template.get("PartyNumber") or "0") if ch.isdigit()) or 0)
    rows: list[dict[str, Any]] = []
    with scm.db.transaction() as connection:
        for index in range(1, count):
            row = dict(template)
            row.update(_customer(index))
            row["Name"] = row["OrganizationName"]
            row["PartyNumber"] = f"B{RUN}{base_party + index:09d}"
            rows.append(row)
            if len(rows) == 5000:
                connection.execute(sa.insert(table), rows)
                rows = []
                progress(f"initial-sync: setting up {index + 1:,} of {count:,} SCM customers")
        if rows:
            connection.execute(sa.insert(table), rows)
    # PostgreSQL plans the sync's reads of a table it last saw nearly empty as scans: statistics first.
    scm.db.analyze()


def _raw_copy(runtimes: dict[str, Runtime], table_map: TableMap) -> tuple[int, float]:
    """Copy the map's rows SCM -> Sales as plain SQL: one SELECT, lookups from in-memory dicts, one executemany.

    The target is a scratch copy of the Sales table in the Sales database, dropped afterwards.
    Returns (rows, seconds).
    """
    import sqlalchemy as sa

    scm, sales = runtimes["scm"], runtimes["sales"]
    source = _table(table_map.scm_type)
    target_entity = _resolved(table_map.sales_type)
    scratch = _table(target_entity).to_metadata(sa.MetaData(), name="bench_raw_copy")
    for index in list(scratch.indexes):
        scratch.indexes.discard(index)
    scratch.create(sales.db.engine)
    try:
        # Lookups (currency, customer group, ...) resolve like the bridge's: related row by its key columns.
        lookups: dict[str, dict[Any, Any]] = {}
        direct: list[tuple[str, str, dict[str, Any]]] = []
        bound: list[tuple[str, str, str]] = []
        with sales.db.transaction() as connection:
            for item in table_map.fields:
                if not item.to_sales or len(item.sales) != 1:
                    continue
                path = item.sales[0]
                if path.nav is None:
                    direct.append((item.scm, path.column, item.values or {}))
                    continue
                nav = target_entity.navigations[path.nav]
                remote = sales.model.entities[nav.target]
                local_column, remote_key = nav.pairs[0]
                rows = connection.execute(sa.select(_table(remote).c[path.column], _table(remote).c[remote_key]))
                lookups[item.scm] = {value: key for value, key in rows}
                bound.append((item.scm, local_column, item.scm))
            company_nav = target_entity.navigations.get("msdyn_company") if table_map.company else None
            if company_nav is not None:
                companies = sales.model.entities[company_nav.target]
                local_column, remote_key = company_nav.pairs[0]
                company_table = _table(companies)
                rows = connection.execute(sa.select(company_table.c.cdm_companycode, company_table.c[remote_key]))
                lookups["dataAreaId"] = {str(code).lower(): key for code, key in rows}
                bound.append(("dataAreaId", local_column, "dataAreaId"))
        started = time.perf_counter()
        copied = 0
        with scm.db.engine.connect() as reader, sales.db.engine.begin() as writer:
            batch: list[dict[str, Any]] = []
            for row in reader.execute(sa.select(source)).mappings():
                out: dict[str, Any] = {target_entity.key[0]: str(uuid.uuid4()), "_rowversion": 1}
                for scm_name, sales_name, values in direct:
                    value = row[scm_name]
                    out[sales_name] = values.get(value, value) if values else value
                for scm_name, local_column, _ in bound:
                    out[local_column] = lookups[scm_name].get(row[scm_name])
                batch.append(out)
                if len(batch) == 5000:
                    writer.execute(sa.insert(scratch), batch)
                    copied += len(batch)
                    batch = []
            if batch:
                writer.execute(sa.insert(scratch), batch)
                copied += len(batch)
        seconds = time.perf_counter() - started
    finally:
        scratch.drop(sales.db.engine)
    return copied, seconds


def _resolved(entity: EntityType | None) -> EntityType:
    """A map's entity type, resolved against the model when the maps were loaded."""
    if entity is None:
        raise RuntimeError("the map's entity types are resolved when the maps load")
    return entity


def _table(entity: EntityType | None) -> sa.Table:
    """The SQL table of an entity (every entity of a built model has one)."""
    table = _resolved(entity).table
    if table is None:
        raise RuntimeError(f"entity {_resolved(entity).name} has no table")
    return table


def _count_rows(runtime: Any, entity_name: str) -> int:
    import sqlalchemy as sa

    table = runtime.model.entities[entity_name].table
    with runtime.db.transaction() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _customers_and_raw_copy(
    runtimes: dict[str, Runtime], table_map: TableMap, customers: int, name: str, say: Progress
) -> tuple[int, float]:
    """Put ``customers`` into SCM and time the raw copy of them into Sales: (rows copied, seconds)."""
    say(f"{name}: setting up {customers:,} SCM customers")
    _bulk_customers(runtimes["scm"], customers, say)
    say(f"{name}: baseline, raw bulk copy SCM -> Sales database")
    copied, raw_seconds = _raw_copy(runtimes, table_map)
    say(f"{name}: {copied:,} rows copied raw in {raw_seconds:.2f} s; now the bridge's initial sync")
    return copied, raw_seconds


def _initial_sync(stack: _SyncStack, customers: int, say: Progress, ticking: bool) -> BenchResult:
    """The initial sync with the three services in this process (``sandbox up``'s default wiring)."""
    table_map = stack.bridge.engine.by_id[MAP_ID]
    copied, raw_seconds = _customers_and_raw_copy(stack.runtimes, table_map, customers, "initial-sync", say)
    return _timed_initial_sync(stack, "initial-sync", "in-process", copied, raw_seconds, say, ticking)


def _initial_sync_in_processes(
    customers: int, say: Progress, ticking: bool, database_urls: dict[str, str] | None = None
) -> BenchResult:
    """The initial sync with Sales and SCM each in a child process and the bridge in this one, as
    ``sandbox up --wire processes`` runs them.

    The apps built here first are only handles on the same databases: they create and seed them, take the
    benchmark's customers and the raw copy before the children start (so no child has read anything the
    handles change), and count rows; they serve nothing.
    """
    from bridge.mapping import BUILTIN_MAPS, load_maps

    name = "initial-sync-processes"
    folder = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    config = StackConfig(data_dir=folder, seed=1, database_urls=dict(database_urls or {}))
    runtimes: dict[str, Runtime] = {service: app.extensions["sandbox"] for service, app in build_apps(config).items()}
    try:
        models = (runtimes["scm"].model, runtimes["sales"].model)
        table_map = next(m for m in load_maps([BUILTIN_MAPS], *models) if m.id == MAP_ID)
        copied, raw_seconds = _customers_and_raw_copy(runtimes, table_map, customers, name, say)
        say(f"{name}: starting Sales and SCM in processes of their own")
        with start_stack(config, wire="processes", serve=Serving(), start_maps="none") as stack:
            return _timed_initial_sync(
                _SyncStack(stack, runtimes), name, "processes", copied, raw_seconds, say, ticking
            )
    finally:
        for runtime in runtimes.values():
            runtime.db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _timed_initial_sync(
    stack: _SyncStack, name: str, wire: str, copied: int, raw_seconds: float, say: Progress, ticking: bool
) -> BenchResult:
    """Run the map's initial sync (its reference-data maps first, untimed) and weigh it against the raw copy."""
    raw_rate = copied / raw_seconds if raw_seconds > 0 else 0.0
    for parent in _dependencies(stack.bridge.engine, MAP_ID):
        stack.bridge.lifecycle.run(parent, initial_sync=True, master="scm")
    sales = stack.runtime("sales")
    before = _count_rows(sales, "account")
    stop = threading.Event()

    def ticker() -> None:
        started = time.monotonic()
        while not stop.wait(2.0):
            done = _count_rows(sales, "account") - before
            say(f"{name}: {done:,} of {copied:,} rows in Sales after {time.monotonic() - started:.0f} s")

    watcher = threading.Thread(target=ticker, name="bench-progress", daemon=True)
    if ticking:
        watcher.start()
    started = time.perf_counter()
    try:
        stack.run_map(MAP_ID, initial_sync=True)
    finally:
        seconds = time.perf_counter() - started
        stop.set()
    # Right after a bulk load PostgreSQL's statistics still describe the empty tables, and the live-sync and
    # async benchmarks that follow ran at half their rate until autovacuum looked again.
    stack.analyze()
    report = stack.bridge.lifecycle.initial.last_reports[MAP_ID]
    written = report.to_sales
    value = written / seconds if seconds > 0 else 0.0
    return BenchResult(
        name,
        round(value, 1),
        "rows/s",
        round(raw_rate, 1),
        "raw bulk copy of the same rows and columns, SCM -> Sales database "
        f"({stack.runtime('sales').db.engine.dialect.name})",
        _ratio(value, raw_rate),
        {
            "rows": written,
            "seconds": round(seconds, 2),
            "errors": len(report.errors),
            "raw_rows": copied,
            "raw_seconds": round(raw_seconds, 3),
            "wire": wire,
        },
    )


# ---- writes with live sync on and off -------------------------------------------------------------------
class _Writer:
    """Creates SCM customers over HTTP from ``threads`` threads, one client each."""

    def __init__(self, stack: _SyncStack, threads: int, prefix: str) -> None:
        self.url = stack.urls["scm"] + "/data/CustomersV3"
        self.threads = max(1, threads)
        self.prefix = prefix
        self.next_index = 0
        self.lock = threading.Lock()
        self.local = threading.local()
        self.errors: list[str] = []
        self.clients: list[httpx.Client] = []

    def client(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=60.0, headers={"Accept": "application/json"})
            with self.lock:
                self.clients.append(client)
        return client

    def write(self) -> bool:
        with self.lock:
            index = self.next_index
            self.next_index += 1
        response = self.client().post(self.url, json=_customer(index, self.prefix))
        if response.status_code >= 400:
            if len(self.errors) < 5:
                self.errors.append(f"{response.status_code}: {response.text[:200]}")
            return False
        return True

    def run(
        self,
        *,
        count: int | None = None,
        seconds: float | None = None,
        gate: Callable[[], None] | None = None,
        on_write: Callable[[float], None] | None = None,
    ) -> tuple[int, float]:
        """Write ``count`` rows or for ``seconds``; returns (successful writes, elapsed seconds)."""
        done = 0
        lock = threading.Lock()
        remaining = [count if count is not None else 1 << 62]
        deadline = time.monotonic() + seconds if seconds is not None else None

        def work(_worker: int) -> None:
            nonlocal done
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if gate is not None:
                    gate()
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                if self.write():
                    with lock:
                        done += 1
                    if on_write is not None:
                        on_write(time.monotonic())

        started = time.perf_counter()
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(work, range(self.threads)))
        return done, time.perf_counter() - started

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _live_sync_writes(stack: _SyncStack, writes: int, threads: int, say: Progress) -> BenchResult:
    lifecycle = stack.bridge.lifecycle
    if stack.bridge.state.map_row(MAP_ID)["state"] != "Running":
        stack.run_map(MAP_ID, initial_sync=True)
    writer = _Writer(stack, threads, "BL")
    sales = stack.runtime("sales")
    totals = {"live": [0, 0.0], "stopped": [0, 0.0]}
    try:
        writer.run(count=min(50, writes))  # warm up connections and caches
        for round_number in (1, 2):  # alternate, so drift (table growth, a busy neighbour) hits both alike
            for mode in ("stopped", "live"):
                if mode == "stopped":
                    lifecycle.stop(MAP_ID)
                else:
                    lifecycle.run(MAP_ID, initial_sync=False, master="scm")
                say(f"live-sync-writes: round {round_number}, {writes:,} writes with the map {mode}")
                done, seconds = writer.run(count=writes)
                totals[mode][0] += done
                totals[mode][1] += seconds
        synced = _count_rows(sales, "account")
    finally:
        writer.close()
        if stack.bridge.state.map_row(MAP_ID)["state"] != "Running":
            lifecycle.run(MAP_ID, initial_sync=False, master="scm")
    live = totals["live"][0] / totals["live"][1] if totals["live"][1] else 0.0
    stopped = totals["stopped"][0] / totals["stopped"][1] if totals["stopped"][1] else 0.0
    return BenchResult(
        "live-sync-writes",
        round(live, 1),
        "writes/s",
        round(stopped, 1),
        "the same writes with the map stopped",
        _ratio(live, stopped),
        {
            "writes_live": totals["live"][0],
            "writes_stopped": totals["stopped"][0],
            "threads": threads,
            "sales_accounts_after": synced,
            "errors": writer.errors,
        },
    )


# ---- live syncs crossing each other ---------------------------------------------------------------------
#: writers per side in ``concurrent-live-sync``: SCM creates customers (to Sales), Sales updates accounts (to SCM)
CROSSING_WRITERS = 2
#: the goals the issue sets: the crossing writers' rate with maps live at least half the rate with maps stopped,
#: and their p95 latency at most five times one writer's median
CROSSING_GOALS = {"ratio": 0.5, "p95_over_single_p50": 5.0}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class _CrossingWriters:
    """``CROSSING_WRITERS`` threads creating SCM customers and as many updating Sales accounts (the map's
    customers), each with a client of its own; every write's latency and every failure is kept."""

    def __init__(self, stack: _SyncStack, accounts: list[str]) -> None:
        self.stack = stack
        self.accounts = accounts
        self.errors: list[str] = []
        self.failed = 0
        self.index = 0
        self.lock = threading.Lock()

    def _next(self) -> int:
        with self.lock:
            self.index += 1
            return self.index

    def _scm(self, client: httpx.Client) -> httpx.Response:
        return client.post(self.stack.urls["scm"] + "/data/CustomersV3", json=_customer(self._next(), "BC"))

    def _sales(self, client: httpx.Client, writer: int) -> httpx.Response:
        index = self._next()
        mine = self.accounts[writer::CROSSING_WRITERS] or self.accounts
        account = mine[index % len(mine)]
        url = f"{self.stack.urls['sales']}/api/data/v9.2/accounts({account})"
        return client.patch(url, json={"telephone1": f"555-{RUN}-{index:06d}"})

    def run(
        self, writes_each: int, *, sales_writers: int, scm_writers: int, mixed_writers: int = 0
    ) -> tuple[int, float, list[float]]:
        """Every writer does ``writes_each`` writes at once; returns (successful writes, seconds, latencies).

        A mixed writer does the crossing writers' mix alone: an SCM create, then a Sales update, in turn, and
        counts each pair as two writes of half the pair's time (the two kinds cost different amounts, so the
        median of single writes of both kinds would be either kind's edge rather than the mix's typical time)."""
        latencies: list[float] = []
        done = [0]
        start = threading.Barrier(sales_writers + scm_writers + mixed_writers)

        def record(side: str, responses: list[httpx.Response], took: float) -> None:
            with self.lock:
                failed = [r for r in responses if r.status_code >= 400]
                for response in failed:
                    self.failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(f"{side} {response.status_code}: {response.text[:200]}")
                if not failed:
                    done[0] += len(responses)
                    latencies.extend([took / len(responses)] * len(responses))

        def work(side: str, writer: int) -> None:
            with httpx.Client(timeout=120.0, headers={"Accept": "application/json"}) as client:
                start.wait(60)
                for _ in range(writes_each // 2 if side == "mixed" else writes_each):
                    began = time.perf_counter()
                    if side == "mixed":
                        responses = [self._scm(client), self._sales(client, writer)]
                    else:
                        responses = [self._sales(client, writer) if side == "sales" else self._scm(client)]
                    record(side, responses, time.perf_counter() - began)

        threads = [threading.Thread(target=work, args=("scm", w)) for w in range(scm_writers)]
        threads += [threading.Thread(target=work, args=("sales", w)) for w in range(sales_writers)]
        threads += [threading.Thread(target=work, args=("mixed", w)) for w in range(mixed_writers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return done[0], time.perf_counter() - started, latencies


def _synced_accounts(stack: _SyncStack, count: int = 16) -> list[str]:
    """Ids of Sales accounts the customers map keeps in sync (customers, with an account number)."""
    url = stack.urls["sales"] + "/api/data/v9.2/accounts"
    params = {
        "$select": "accountid",
        "$filter": "customertypecode eq 3 and accountnumber ne null",
        "$top": str(count),
    }
    answer = httpx.get(url, params=params, headers={"Accept": "application/json"}, timeout=60.0)
    answer.raise_for_status()
    return [row["accountid"] for row in answer.json()["value"]]


def _concurrent_live_sync(stack: _SyncStack, writes: int, say: Progress) -> list[BenchResult]:
    """2 writers per side in opposite directions with the map live, against the same writers with it stopped
    (alternating rounds); and their p95 latency against the median of one writer alone doing the same mix of
    writes with the map live, measured in the same rounds (on a shared machine one writer's median alone moves
    by several times between minutes)."""
    lifecycle = stack.bridge.lifecycle
    if stack.bridge.state.map_row(MAP_ID)["state"] != "Running":
        stack.run_map(MAP_ID, initial_sync=True)
    accounts = _synced_accounts(stack)
    if len(accounts) < CROSSING_WRITERS:
        raise RuntimeError("concurrent-live-sync: no Sales accounts to update (the customers map synced none)")
    writers = _CrossingWriters(stack, accounts)
    each = max(2, writes // (2 * CROSSING_WRITERS))
    writers.run(min(10, each), sales_writers=CROSSING_WRITERS, scm_writers=CROSSING_WRITERS)  # warm up
    totals = {"live": [0, 0.0], "stopped": [0, 0.0]}
    live_latencies: list[float] = []
    single: list[float] = []  # one writer alone, same mix, map live: measured in every round, as the crossing writers
    rounds: list[dict[str, float]] = []  # each round's own figures: how far the machine drifted between them
    failed_before = writers.failed
    try:
        for round_number in (1, 2):  # alternate, so drift hits both alike
            this_round: dict[str, float] = {}
            for mode in ("stopped", "live"):
                if mode == "stopped":
                    lifecycle.stop(MAP_ID)
                else:
                    lifecycle.run(MAP_ID, initial_sync=False, master="scm")
                say(
                    f"concurrent-live-sync: round {round_number}, {CROSSING_WRITERS}+{CROSSING_WRITERS} writers, "
                    f"{each:,} writes each, the map {mode}"
                )
                done, seconds, latencies = writers.run(
                    each, sales_writers=CROSSING_WRITERS, scm_writers=CROSSING_WRITERS
                )
                totals[mode][0] += done
                totals[mode][1] += seconds
                this_round[f"{mode}_writes_per_s"] = round(done / seconds, 1) if seconds else 0.0
                if mode == "live":
                    live_latencies += latencies
                    say(
                        f"concurrent-live-sync: round {round_number}, one writer alone doing the same writes "
                        f"(SCM creates and Sales updates in turn), {each:,} writes, map live"
                    )
                    alone = writers.run(each, sales_writers=0, scm_writers=0, mixed_writers=1)[2]
                    single += alone
                    this_round["p95_ms"] = round(_percentile(latencies, 0.95) * 1000, 1)
                    this_round["single_writer_p50_ms"] = round(_percentile(alone, 0.5) * 1000, 1)
            rounds.append(this_round)
    finally:
        if stack.bridge.state.map_row(MAP_ID)["state"] != "Running":
            lifecycle.run(MAP_ID, initial_sync=False, master="scm")
    live = totals["live"][0] / totals["live"][1] if totals["live"][1] else 0.0
    stopped = totals["stopped"][0] / totals["stopped"][1] if totals["stopped"][1] else 0.0
    p95 = _percentile(live_latencies, 0.95) * 1000
    single_p50 = _percentile(single, 0.5) * 1000
    store = stack.runtime("sales").db.engine.dialect.name
    details = {
        "writers": f"{CROSSING_WRITERS} SCM creates + {CROSSING_WRITERS} Sales updates",
        "writes_live": totals["live"][0],
        "writes_stopped": totals["stopped"][0],
        "failed": writers.failed - failed_before,
        "errors": writers.errors,
        "p95_ms": round(p95, 1),
        "single_writer_p50_ms": round(single_p50, 1),
        "rounds": rounds,
        "store": store,
        "workers": stack.workers,
        # how the live-sync gate admits these writes (sandbox.locks): SQLite has one writer per database
        "gate": "one write at a time" if store == "sqlite" else "writes of one service together, services in phases",
        "goals": CROSSING_GOALS,
    }
    return [
        BenchResult(
            "concurrent-live-sync",
            round(live, 1),
            "writes/s",
            round(stopped, 1),
            "the same crossing writers with the map stopped",
            _ratio(live, stopped),
            details,
        ),
        BenchResult(
            "concurrent-live-sync-p95",
            round(p95, 1),
            "ms p95",
            round(single_p50, 1),
            "p50 of one writer alone, same writes, map live (ms)",
            _ratio(p95, single_p50),
            details,
        ),
    ]


# ---- async mode: throughput with lag held under a second --------------------------------------------------
LAG_HOLD = 0.5  # writers wait while the oldest unsynced change is older than this (so lag stays < 1 s)


def _async_throughput(stack: _SyncStack, seconds: float, threads: int, say: Progress, rounds: int = 4) -> BenchResult:
    """Async throughput against the raw write rate, in ``rounds`` alternating pairs of windows (map stopped,
    then async) that add up to ``seconds`` each, so drift (the tables growing, a busy neighbour) weighs on
    both alike, as in the live-sync benchmark."""
    lifecycle = stack.bridge.lifecycle
    worker = stack.bridge.worker
    if stack.bridge.state.map_row(MAP_ID)["state"] != "Running":
        stack.run_map(MAP_ID, initial_sync=True)
    writer = _Writer(stack, threads, "BA")
    written: deque[float] = deque()  # write times of changes not yet applied, oldest first
    applied = [0]
    latencies: list[float] = []
    lock = threading.Lock()

    def on_write(at: float) -> None:
        with lock:
            written.append(at)

    def on_event(event: str, detail: dict[str, Any]) -> None:
        if event != "applied" or MAP_ID not in detail.get("maps", ()):
            return
        with lock:
            for _ in range(int(detail.get("changes") or 0)):
                if written:
                    written.popleft()
            applied[0] += int(detail.get("changes") or 0)
            if detail.get("latency") is not None:
                latencies.append(float(detail["latency"]))

    def oldest_age() -> float:
        with lock:
            age = time.monotonic() - written[0] if written else 0.0
        return age

    def gate() -> None:
        while oldest_age() > LAG_HOLD:
            time.sleep(0.005)

    raw_done, raw_seconds, done, synced, by_window_end, window = 0, 0.0, 0, 0, 0, 0.0
    part = seconds / rounds
    worker.listeners.append(on_event)
    try:
        for round_number in range(1, rounds + 1):
            say(
                f"async-sync-throughput: round {round_number} of {rounds}, raw write rate for {part:.1f} s "
                "with the map stopped"
            )
            lifecycle.stop(MAP_ID)
            round_done, round_seconds = writer.run(seconds=part)
            raw_done, raw_seconds = raw_done + round_done, raw_seconds + round_seconds

            say(
                f"async-sync-throughput: round {round_number} of {rounds}, writing for {part:.1f} s in async "
                "mode, lag held under 1 s"
            )
            lifecycle.run(MAP_ID, initial_sync=False, master="scm", mode="async")
            with lock:
                applied_before = applied[0]
            started = time.perf_counter()
            round_done, _ = writer.run(seconds=part, gate=gate, on_write=on_write)
            window += time.perf_counter() - started
            done += round_done
            with lock:
                by_window_end += applied[0] - applied_before
            # The changes written in the window count once synced: the drainer keeps pace with the writers
            # (they are held whenever the oldest unsynced change is LAG_HOLD old), so those still on their way
            # when the window closes (its last few tenths of a second) are its throughput too. Counting only
            # what arrived before the close would count each round's first tenths, when nothing is yet due,
            # and not its last; with a few short rounds that is several percent.
            deadline = time.monotonic() + 30.0
            while oldest_age() > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            with lock:
                synced += min(applied[0] - applied_before, round_done)
    finally:
        worker.listeners.remove(on_event)
        writer.close()
        lifecycle.run(MAP_ID, initial_sync=False, master="scm", mode="live")
    raw_rate = raw_done / raw_seconds if raw_seconds else 0.0
    rate = synced / window if window else 0.0
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else None
    return BenchResult(
        "async-sync-throughput",
        round(rate, 1),
        "records/s",
        round(raw_rate, 1),
        "raw write rate of the same writers with the map stopped",
        _ratio(rate, raw_rate),
        {
            "window_seconds": round(window, 2),
            "rounds": rounds,
            "written": done,
            "synced": synced,
            "synced_by_window_end": by_window_end,
            "raw_writes": raw_done,
            "lag_p95_seconds": round(p95, 3) if p95 is not None else None,
            "lag_max_seconds": round(max(ordered), 3) if ordered else None,
            "lag_hold_seconds": LAG_HOLD,
            "drain_workers": worker.drain_workers,
            "errors": writer.errors,
        },
    )


def _bare_app() -> Flask:
    app = Flask("baseline")

    @app.get("/ping")
    def ping() -> tuple[str, int]:
        return '{"value":[]}', 200

    return app


def _rate(count: int, work: Callable[[int], object], threads: int, deadline: float) -> float:
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


def _request_throughput(count: int, threads: int, deadline: float, say: Progress) -> list[BenchResult]:
    """Serve Sales, SCM and a bare baseline app on loopback and measure writes, reads and queries per second."""
    with start_stack(StackConfig(memory=True, seed=1), bridge=False, serve=Serving()) as stack:
        return _request_rates(stack.urls, count, threads, deadline, say)


def _request_rates(urls: dict[str, str], count: int, threads: int, deadline: float, say: Progress) -> list[BenchResult]:
    """The request benchmarks against the mocks at ``urls``, beside a bare app served here meanwhile."""
    baseline_server = ServerGroup()
    results: list[BenchResult] = []
    local = threading.local()
    clients: list[httpx.Client] = []
    try:
        base = baseline_server.start("baseline", _bare_app(), 0)

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=30.0, headers={"Accept": "application/json"})
                clients.append(local.client)
            return local.client

        say("requests: baseline, bare WSGI endpoint")
        _rate(min(count, 100), lambda i: client().get(f"{base.url}/ping").raise_for_status(), threads, deadline)
        baseline = _rate(count, lambda i: client().get(f"{base.url}/ping").raise_for_status(), threads, deadline)

        def measure(name: str, work: Callable[[int], object]) -> None:
            say(f"requests: {name}")
            value = _rate(count, work, threads, deadline)
            results.append(
                BenchResult(
                    name,
                    round(value, 1),
                    "requests/s",
                    round(baseline, 1),
                    "bare WSGI endpoint, same server",
                    _ratio(value, baseline),
                    {"requests": count, "threads": threads},
                )
            )

        sales_root = urls["sales"] + "/api/data/v9.2"
        ids: list[str] = []

        def sales_write(i: int) -> None:
            response = client().post(
                f"{sales_root}/accounts",
                json={"name": f"Bench {i}", "accountnumber": f"B-{i}", "creditlimit": i % 1000},
            )
            response.raise_for_status()
            ids.append(response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))

        measure("sales-writes", sales_write)
        measure("sales-reads", lambda i: client().get(f"{sales_root}/accounts({ids[i % len(ids)]})").raise_for_status())
        # A typical list view: filtered, sorted, a few columns, 50 rows a page (server-driven paging).
        measure(
            "sales-queries",
            lambda i: (
                client()
                .get(
                    f"{sales_root}/accounts",
                    headers={"Prefer": "odata.maxpagesize=50"},
                    params={
                        "$select": "name,accountnumber,creditlimit",
                        "$orderby": "name",
                        "$filter": f"statecode eq 0 and startswith(name,'Bench {i % 10}')",
                    },
                )
                .raise_for_status()
            ),
        )

        scm_root = urls["scm"] + "/data"

        def scm_write(i: int) -> None:
            client().post(
                f"{scm_root}/CustomersV3",
                json={
                    "CustomerAccount": f"BENCH-{i:05d}",
                    "OrganizationName": f"Bench {i}",
                    "CustomerGroupId": "10",
                    "SalesCurrencyCode": "USD",
                },
            ).raise_for_status()

        measure("scm-writes", scm_write)
        measure(
            "scm-reads",
            lambda i: (
                client()
                .get(f"{scm_root}/CustomersV3(dataAreaId='{DEFAULT_COMPANY}',CustomerAccount='BENCH-{i % count:05d}')")
                .raise_for_status()
            ),
        )
        # The same list view in F&O style: $top/$skip pages of a filtered, sorted entity.
        measure(
            "scm-queries",
            lambda i: (
                client()
                .get(
                    f"{scm_root}/CustomersV3",
                    params={
                        "$select": "CustomerAccount,OrganizationName,CreditLimit",
                        "$filter": "CustomerGroupId eq '10'",
                        "$orderby": "OrganizationName",
                        "$top": "50",
                        "$skip": str((i % 5) * 50),
                    },
                )
                .raise_for_status()
            ),
        )
    finally:
        # the keep-alive connections first: a waitress server stops once the connections it serves are closed
        for item in clients:
            item.close()
        with quiet_waitress():
            baseline_server.stop_all()
    return results


# ---- reporting --------------------------------------------------------------------------------------------
def report(results: list[BenchResult], machine: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"results": [asdict(r) for r in results], "machine": machine}
    if seconds is not None:
        out["seconds"] = round(seconds, 1)
    return out


def machine_info() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    except ImportError:  # pragma: no cover
        pass
    return info


def print_table(results: list[BenchResult], out: Any = None) -> None:
    out = out or sys.stdout
    out.write(f"{'benchmark':<22} {'value':>10} {'unit':<11} {'baseline':>10}  {'ratio':>6}  baseline is\n")
    for r in results:
        out.write(
            f"{r.name:<22} {r.value:>10.1f} {r.unit:<11} {r.baseline:>10.1f}  {r.ratio:>6.3f}  {r.baseline_name}\n"
        )


def dump(results: list[BenchResult], path: str, seconds: float | None = None) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report(results, machine_info(), seconds), handle, indent=2)
