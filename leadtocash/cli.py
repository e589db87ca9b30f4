"""The ``sandbox`` command: ``up``, ``demo`` and friends."""

from __future__ import annotations

import atexit
import gc
import json
import sys
from pathlib import Path
from typing import Any, cast

import click

from leadtocash.auth import IDENTITY_PORT, identity_lines
from leadtocash.chaos import chaos_command
from leadtocash.edgecli import edge_options, log_options, log_ready, start_logging, warn_if_exposed
from leadtocash.limitscli import limits_line, limits_options, with_limits
from leadtocash.preflight import (
    SetupError,
    check_data_dir,
    check_data_files,
    check_database_url,
    check_ports_free,
    one_line,
    unreachable,
)
from leadtocash.stack import (
    DEFAULT_PORTS,
    SERVICE_NAMES,
    WIRES,
    ServiceStartError,
    Serving,
    Stack,
    StackConfig,
    StackNotReady,
    Wire,
    interrupts,
    ready_line,
    service_line,
    start_stack,
    wait_for_interrupt,
)
from sandbox.limits import LatencyProfile, LimitsProfile
from sandbox.locks import DirectoryInUse, DirectoryLock
from sandbox.server import settle_heap


def did_you_mean(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """``"; did you mean 'x'?"`` for the known names closest to a misspelled ``name`` (empty when none is close)."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(item) for item in close) + "?"


def _version() -> str:
    """The installed distribution's version and the Python running it."""
    import platform
    from importlib import metadata

    try:
        version = metadata.version("lead-to-cash-sandbox")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "0+unknown"
    return f"{version} (Python {platform.python_version()})"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", "-V", prog_name="sandbox", message="%(prog)s %(version)s")
def main() -> None:
    """The lead-to-cash sandbox: mock Dynamics 365 Sales and SCM on your laptop."""
    freeze_at_exit()


def freeze_at_exit() -> None:
    """Have the process skip, when it exits, the full garbage collections of interpreter shutdown: they walk
    every object a stack built (each one seconds on a busy machine), and what they would free, the exit frees
    anyway. Our resources (servers, databases, child processes, the data folder's lock) are closed explicitly
    before; atexit handlers still run. Registered once however often it is called (tests invoke commands
    in-process)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--sales-port", default=DEFAULT_PORTS["sales"], show_default=True, type=int)
@click.option("--scm-port", default=DEFAULT_PORTS["scm"], show_default=True, type=int)
@click.option("--bridge-port", default=DEFAULT_PORTS["bridge"], show_default=True, type=int)
@click.option(
    "--data-dir",
    default=".sandbox",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder of the SQLite files that survive restarts.",
)
@click.option("--memory", is_flag=True, help="Throwaway in-memory state instead of files.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the deterministic demo data.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated localhost certificate.")
@click.option(
    "--database-url",
    "database_urls",
    multiple=True,
    metavar="SERVICE=URL",
    help="A SQLAlchemy URL for one service instead of its SQLite file, e.g. "
    "sales=postgresql+psycopg://user:pw@127.0.0.1/sales; repeatable.",
)
@click.option(
    "--maps-dir",
    "maps_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of your own table maps (*.yaml) for the bridge; repeatable.",
)
@click.option(
    "--wire",
    type=click.Choice(WIRES),
    default="in-process",
    show_default=True,
    help="How the bridge and the mocks call each other: in-process (the same HTTP requests through "
    "WSGI, no socket; fastest per write), over their loopback ports as separate servers would "
    "(http), or with Sales and SCM each in a child process of its own (processes: every service "
    "gets its own interpreter lock, for bulk work on several cores; calls cross loopback).",
)
@edge_options
@log_options
@click.option(
    "--postgres",
    is_flag=True,
    help="Run every service on a PostgreSQL the sandbox starts and stops itself, its data in --data-dir's "
    "postgres/ (with --memory a throwaway one); needs the postgres extra.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Processes per mock service, all serving its port (needs --postgres or PostgreSQL --database-url).",
)
# ---- the bridge's async drainers (docs/bridge.md) ----
@click.option(
    "--drainers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Async drainer threads per source service in the bridge; above 1 they share each change feed by "
    "record, keeping each record's changes in order.",
)
# ---- authentication (docs/auth.md) ----
@click.option(
    "--auth",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Whether the services check bearer tokens from the identity service (off: any caller, no token).",
)
@click.option(
    "--identity-port", default=IDENTITY_PORT, show_default=True, type=int, help="Port of the identity service."
)
@click.option(
    "--identity-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML/JSON file of app registrations and users for the identity service (apps: [{client_id, "
    "client_secret, display_name, roles, public_client, redirect_uris}], users: [{user_principal_name, password, "
    "display_name, sales_roles, scm_user_id}]; see docs/auth.md).",
)
@limits_options  # --limits, --latency-profile, --latency-seed (leadtocash/limitscli.py, docs/limits.md)
def up(
    host: str,
    sales_port: int,
    scm_port: int,
    bridge_port: int,
    data_dir: Path,
    memory: bool,
    seed: int,
    tls: bool,
    database_urls: tuple[str, ...],
    maps_dirs: tuple[Path, ...],
    wire: str,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    log_level: str,
    log_format: str,
    postgres: bool,
    workers: int,
    drainers: int,
    auth: str,
    identity_port: int,
    identity_config: Path | None,
    limits: LimitsProfile,
    latency: LatencyProfile,
    latency_seed: int | None,
) -> None:
    """Start the services and serve until interrupted (Ctrl+C or SIGTERM).

    The bridge comes up last, on --bridge-port, with the shipped maps running (reference data first,
    initial sync done), so a customer created on either side appears on the other at once.
    """
    from sandbox.server import ensure_tls_files

    start_logging(log_level, log_format)
    warn_if_exposed(host)
    if wire == "processes" and tls:
        # the bridge's clients and the children's live-sync clients would have to trust the local CA
        raise click.UsageError("--tls cannot be combined with --wire processes; use --wire in-process or http")
    check_postgres_options(postgres, workers, parse_database_urls(database_urls), tls)
    ports = {"sales": sales_port, "scm": scm_port, "bridge": bridge_port, "identity": identity_port}
    identity = _identity_config(identity_config)
    if tls or not memory:  # with --memory the folder matters only for --tls's certificate
        check_data_dir(data_dir)
    # One stack per data folder: a second `up` on it is refused at once, naming the process that holds it
    # (before the ports are checked: a second `up` with the same folder most often has the same ports too).
    data_lock = None if memory else DirectoryLock(data_dir)
    try:
        if data_lock is not None:
            data_lock.acquire()
    except DirectoryInUse as exc:
        raise click.ClickException(str(exc)) from None
    try:
        check_ports_free(host, ports)
        urls = parse_database_urls(database_urls)
        if not memory and not postgres:  # the services' own files in the data folder must be databases
            check_data_files(data_dir, [name for name in SERVICE_NAMES if name not in urls])
        config = StackConfig(
            data_dir=data_dir,
            memory=memory,
            seed=seed,
            database_urls=urls,
            postgres=postgres,
            workers=workers,
            drain_workers=drainers,
            auth=auth == "on",
            identity_apps=identity["apps"],
            identity_users=identity["users"],
            identity_service_users=identity["service_users"],
        )
        config = with_limits(config, limits, latency, latency_seed)
        tls_files = ensure_tls_files(data_dir / "tls") if tls else None
        try:
            # In one process the services call each other through WSGI by default: a loopback socket and a server
            # thread per hop cost more than the work a live-sync write does (see `sandbox bench`).
            stack = start_stack(
                config,
                wire=cast(Wire, wire),
                serve=Serving(host, ports, tls_files, allowed_hosts, allowed_origins),
                maps_dirs=list(maps_dirs),
                # only maps that never ran: after a restart, what the user paused or stopped stays so
                start_maps="new",
                announce=lambda name, url: click.echo(service_line(name, url)),
            )
        except Exception as exc:  # a port taken since the check, a database server that refuses, ...
            raise _start_failure(exc) from None
    except BaseException:
        if data_lock is not None:
            data_lock.release()
        raise
    try:
        try:
            stack.wait_ready()  # every health 200 (the bridge's maps run, recoveries done); else say why, exit 1
        except StackNotReady as exc:
            raise click.ClickException(str(exc)) from exc
        with interrupts() as stopped:  # before the line that says how to stop
            if tls_files is not None:
                click.echo(
                    f"TLS: trust {tls_files.ca_cert} (e.g. export SSL_CERT_FILE={tls_files.ca_cert} "
                    f"REQUESTS_CA_BUNDLE={tls_files.ca_cert} NODE_EXTRA_CA_CERTS={tls_files.ca_cert})"
                )
            for line in identity_lines(stack):
                click.echo(line)
            if stack.children is not None:
                click.echo("processes: " + ", ".join(f"{name} {pid}" for name, pid in stack.pids.items()))
            if (applied := limits_line(limits, latency)) is not None:
                click.echo(applied)
            click.echo("storage: " + storage_line(stack, memory, data_dir) + "   Ctrl+C stops.")
            click.echo(ready_line(stack))
            sys.stdout.flush()
            settle_heap()
            log_ready(log_level)
            wait_for_interrupt(stopped)
    finally:
        stack.close()
        if data_lock is not None:
            data_lock.release()
    click.echo("stopped.")


# ---- PostgreSQL and workers (sandbox up/bench --postgres --workers N) --------------------------------------
def check_postgres_options(postgres: bool, workers: int, database_urls: dict[str, str], tls: bool = False) -> None:
    """Refuse, in one line, ``--workers`` without PostgreSQL (or with TLS), and ``--postgres`` without the extra."""
    if postgres:
        from leadtocash.postgres import PostgresUnavailable, binaries_folder, check_driver

        try:
            check_driver()
            binaries_folder()
        except PostgresUnavailable as exc:
            raise SetupError(str(exc)) from None
    if workers > 1:
        on_sqlite = [name for name in ("sales", "scm") if not database_urls.get(name, "").startswith("postgresql")]
        if on_sqlite and not postgres:
            raise click.UsageError(
                f"--workers {workers} needs PostgreSQL: several processes cannot share a SQLite database; "
                "add --postgres (or --database-url sales=postgresql+psycopg://... and scm=...)"
            )
        if tls:
            raise click.UsageError("--workers cannot be combined with --tls")


def storage_line(stack: Stack, memory: bool, data_dir: Path) -> str:
    """Where the stack keeps its data, for ``sandbox up``'s storage line."""
    if stack.postgres is not None:
        where = "throwaway" if memory else str(data_dir / "postgres")
        return f"PostgreSQL on 127.0.0.1:{stack.postgres.port} ({where})"
    return "in memory (throwaway)" if memory else str(data_dir)


def _identity_config(path: Path | None) -> dict[str, list[Any]]:
    """The app registrations and users of ``--identity-config`` (a bad file is one line and exit 1, before any
    start)."""
    from sandbox.identity import RegistryError, load_config

    if path is None:
        return {"apps": [], "users": [], "service_users": []}
    try:
        return load_config(path)
    except RegistryError as exc:
        raise SetupError(str(exc)) from None


def _start_failure(exc: BaseException) -> click.ClickException:
    """A stack that failed to start, as one line with what to do."""
    text = one_line(exc)
    if isinstance(exc, ServiceStartError) and "in use" in text:
        return SetupError(
            f"{text}; stop what holds the port or choose another with --sales-port/--scm-port/--bridge-port"
        )
    if type(exc).__module__.startswith("sqlalchemy"):
        return SetupError(f"a database could not be opened: {text}; check --data-dir and --database-url")
    return SetupError(text)


def parse_database_urls(values: tuple[str, ...]) -> dict[str, str]:
    """``("sales=postgresql://...",)`` -> ``{"sales": "postgresql://..."}``; unknown services are refused, and
    so is a URL whose driver is missing or whose SQLite folder does not exist (one line each, before any start)."""
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or name not in DEFAULT_PORTS or not url:
            raise click.BadParameter(
                f"expected SERVICE=URL with SERVICE one of {', '.join(DEFAULT_PORTS)}: {value!r}",
                param_hint="--database-url",
            )
        check_database_url(name, url)
        urls[name] = url
    return urls


@main.command()
@log_options
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the demo data.")
@click.option("--keep", is_flag=True, help="Leave the stack up on its ports afterwards to explore it.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--sales-port", default=DEFAULT_PORTS["sales"], show_default=True, type=int)
@click.option("--scm-port", default=DEFAULT_PORTS["scm"], show_default=True, type=int)
@click.option("--bridge-port", default=DEFAULT_PORTS["bridge"], show_default=True, type=int)
def demo(
    seed: int, keep: bool, host: str, sales_port: int, scm_port: int, bridge_port: int, log_level: str, log_format: str
) -> None:
    """Run the lead-to-cash journey in-process on fresh throwaway state and print its report."""
    from leadtocash.demo import run_demo

    start_logging(log_level, log_format)
    if keep:
        warn_if_exposed(host)

    sys.exit(
        run_demo(
            seed=seed,
            keep=keep,
            host=host,
            ports={"sales": sales_port, "scm": scm_port, "bridge": bridge_port},
            echo=click.echo,
        )
    )


@main.command()
@click.option(
    "--scm-url",
    default=f"http://127.0.0.1:{DEFAULT_PORTS['scm']}",
    show_default=True,
    help="The running mock SCM (customers, products and orders reach Sales through the bridge).",
)
@click.option("--accounts", default=100, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--products", default=20, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--orders", default=50, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same data.")
@click.option(
    "--reset", is_flag=True, help="First delete what an earlier run with this --seed made (through SCM), then seed."
)
def seed(scm_url: str, accounts: int, products: int, orders: int, seed: int, reset: bool) -> None:
    """Fill a running stack with a deterministic volume of realistic data.

    Rerunnable: records an earlier run with the same --seed made are skipped (exit 0).
    """
    import httpx

    from leadtocash.volume import seed_volume
    from sandbox.clients import ScmClient, ServiceError

    _require_service("scm", scm_url, "--scm-url")
    total = accounts + products + orders
    with ScmClient(scm_url, timeout=300.0) as scm:
        try:
            if sys.stderr.isatty():
                with click.progressbar(length=total, label="seeding", file=sys.stderr) as bar:
                    report = seed_volume(
                        scm,
                        accounts=accounts,
                        products=products,
                        orders=orders,
                        seed=seed,
                        progress=bar.update,
                        reset=reset,
                    )
            else:
                report = seed_volume(scm, accounts=accounts, products=products, orders=orders, seed=seed, reset=reset)
        except httpx.TransportError as exc:  # the stack went away meanwhile
            raise unreachable("scm", scm_url, exc, "--scm-url") from None
        except (ServiceError, OSError) as exc:
            raise SetupError(f"could not seed {scm_url}: {one_line(exc)}") from None
    if reset:
        click.echo(f"deleted {report.deleted} records of seed {seed}")
    click.echo(
        f"customers {report.customers}, products {report.products}, orders {report.orders}, "
        f"already there {report.skipped}, failed {report.failed}"
    )
    if report.first_error:
        click.echo(f"first error: {report.first_error}")
    sys.exit(1 if report.failed else 0)


def _require_service(service: str, url: str, option: str) -> None:
    """Ask the service's control plane whether it is up; one line saying how to start it when not."""
    import httpx

    from sandbox.clients import ControlClient, ServiceError

    try:
        with ControlClient(url, timeout=10.0) as control:
            control.health()
    except httpx.HTTPError as exc:
        raise unreachable(service, url, exc, option) from None
    except ServiceError as exc:
        raise SetupError(
            f"{url} answers, but not as the sandbox's {service} ({one_line(exc)}); pass {option} with its origin"
        ) from None


@main.group()
def scenario() -> None:
    """List and run scripted scenarios."""


@scenario.command("list")
def scenario_list() -> None:
    """One scenario per line with its description."""
    from scenarios.registry import load_builtin

    for item in sorted(load_builtin().values(), key=lambda s: s.name):
        click.echo(f"{item.name:<40} {item.description}")


@scenario.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every built-in scenario.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write JUnit XML.")
@click.option("--sales-url", help="Run against a running mock Sales (origin, e.g. http://127.0.0.1:5101).")
@click.option("--scm-url", help="Run against a running mock SCM.")
@click.option("--bridge-url", help="Run against a running bridge.")
@click.option("--seed", default=1, show_default=True, type=int)
def scenario_run(
    names: tuple[str, ...],
    run_all: bool,
    json_path: str | None,
    junit_path: str | None,
    sales_url: str | None,
    scm_url: str | None,
    bridge_url: str | None,
    seed: int,
) -> None:
    """Run scenarios by name, --all, or a PATH.py of your own; exits 1 when a step fails."""
    from leadtocash.runner import Endpoints, print_results, run_scenario, write_json, write_junit
    from scenarios.registry import load_builtin, load_file

    registry = load_builtin()
    chosen = []
    if run_all:
        chosen = sorted(registry.values(), key=lambda s: s.name)
    for name in names:
        if name.endswith(".py"):
            path = Path(name)
            if not path.exists():
                raise click.BadParameter(f"no such file: {name}")
            try:
                chosen.extend(load_file(path))
            except Exception as exc:  # noqa: BLE001 - the user's file: say where it broke, not a traceback
                raise SetupError(f"cannot load scenarios from {name}: {type(exc).__name__}: {one_line(exc)}") from None
        elif name in registry:
            chosen.append(registry[name])
        else:
            raise click.BadParameter(
                f"unknown scenario {name!r}{did_you_mean(name, set(registry))} (`sandbox scenario list` lists them)"
            )
    if not chosen:
        raise click.UsageError("name scenarios, a PATH.py, or --all")
    if (sales_url is None) != (scm_url is None):
        raise click.UsageError("--sales-url and --scm-url go together")
    endpoints = Endpoints(sales_url, scm_url, bridge_url)
    results = []
    for item in chosen:
        if sys.stderr.isatty():
            click.echo(f"running {item.name} ...", err=True)
        results.append(run_scenario(item, endpoints, seed))
    print_results(results, sys.stdout)
    if json_path:
        write_json(results, json_path)
    if junit_path:
        write_junit(results, junit_path)
    sys.exit(0 if all(r.passed for r in results) else 1)


@main.command()
@click.option("--quick", is_flag=True, help="A short run (seconds rather than minutes).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Also write one HTML file with charts of the results."
)
@click.option("--threads", default=4, show_default=True, type=int, help="Concurrent client threads.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(
        ["initial-sync", "live-sync-writes", "concurrent-live-sync", "async-sync-throughput", "requests"]
    ),
    help="Run only this group of the suite; repeatable.",
)
@click.option(
    "--database-url",
    "database_urls",
    multiple=True,
    metavar="SERVICE=URL",
    help="Run the sync benchmarks on this (empty) database for sales, scm or bridge instead of a "
    "SQLite file, e.g. sales=postgresql+psycopg://user@127.0.0.1/sales; repeatable.",
)
@click.option(
    "--postgres",
    is_flag=True,
    help="Run the sync benchmarks on a throwaway PostgreSQL the benchmark starts itself (the postgres extra).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="With --postgres: each mock as this many processes on one port, as sandbox up --workers runs them.",
)
@click.option(
    "--drainers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="The bridge's async drainers per source in async-sync-throughput, as sandbox up --drainers runs them.",
)
def bench(
    quick: bool,
    json_path: str | None,
    threads: int,
    only: tuple[str, ...],
    database_urls: tuple[str, ...],
    postgres: bool,
    workers: int,
    drainers: int = 1,
    html_path: str | None = None,
) -> None:
    """Run the benchmark suite; each result beside its baseline, measured side by side in this run.

    initial-sync (100,000 customers SCM -> Sales, --quick 20,000) against a raw bulk copy between the two
    databases, in one process and (initial-sync-processes) as --wire processes runs the services;
    live-sync-writes against the same writes with the map stopped; concurrent-live-sync (2 writers per side in
    opposite directions, maps live, against the same with maps stopped; their p95 latency against one writer's
    p50); async-sync-throughput (lag held under 1 s) against the raw write rate; request throughput of both mocks
    against a bare endpoint. --postgres runs the sync benchmarks on PostgreSQL, --workers N with N processes per
    mock.
    """
    import time

    from leadtocash import bench as benchmarks

    on_terminal = sys.stderr.isatty()
    started = time.monotonic()

    def progress(text: str) -> None:
        click.echo(f"  [{time.monotonic() - started:6.0f}s] {text}", err=True)

    urls = parse_database_urls(database_urls)
    check_postgres_options(postgres, workers, urls)
    results = benchmarks.run_bench(
        quick=quick,
        threads=threads,
        only=only or None,
        progress=progress if on_terminal else None,
        database_urls=urls,
        postgres=postgres,
        workers=workers,
        drainers=drainers,
    )
    seconds = time.monotonic() - started
    benchmarks.print_table(results)
    click.echo(f"({seconds:.0f} s on {benchmarks.machine_info().get('cpus')} CPUs)")
    if json_path:
        benchmarks.dump(results, json_path, seconds)
    if html_path:
        from leadtocash import report

        report.write(html_path, report.bench_html(benchmarks.report(results, benchmarks.machine_info(), seconds)))


# `sandbox chaos` lives in its own module (fault mixes against a stack; see leadtocash/chaos.py)
main.add_command(chaos_command)


# ---- maps: the bridge's map lifecycle over its admin API -------------------------------------------------
BRIDGE_URL = f"http://127.0.0.1:{DEFAULT_PORTS['bridge']}"
bridge_url_option = click.option(
    "--bridge-url",
    default=BRIDGE_URL,
    show_default=True,
    envvar="SANDBOX_BRIDGE_URL",
    help="Where the bridge serves (its origin).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")


def _bridge_call(bridge_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One admin API call; a refusal or an unreachable bridge becomes a clear error (exit 1)."""
    import httpx

    try:
        response = httpx.request(method, bridge_url.rstrip("/") + path, json=body, timeout=600.0, auth=_credentials())
    except httpx.TransportError as exc:
        raise click.ClickException(
            f"cannot reach the bridge at {bridge_url} ({one_line(exc)}); start the stack with `sandbox up`, "
            "or pass --bridge-url where it runs"
        ) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text or response.reason_phrase
        map_id = path.removeprefix("/api/maps/").split("/")[0] if path.startswith("/api/maps/") else None
        if response.status_code == 404 and map_id:
            message = message.rstrip(". ") + _map_suggestion(bridge_url, map_id)
        raise click.ClickException(f"{response.status_code}: {message}")
    return response.json()


def _credentials() -> Any:
    """The well-known development app's tokens, asked of the identity service a service names in its 401."""
    from sandbox.clients import ClientCredentials

    return ClientCredentials()


def _map_suggestion(bridge_url: str, map_id: str) -> str:
    """ "did you mean" from the bridge's own list of maps, and where to see them all."""
    try:
        known = [row["id"] for row in _bridge_call(bridge_url, "GET", "/api/maps")]
    except (click.ClickException, KeyError, TypeError):
        return ""
    return f"{did_you_mean(map_id, known)} (`sandbox maps list` lists them)"


def _lag(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def _print_maps(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    headers = ["MAP", "STATE", "MODE", "SYNCED", "FAILED", "QUEUED", "LAG", "ERRORS", "LAST ERROR"]
    table = [
        [
            r["id"],
            r["state"],
            r["mode"],
            str(r["synced"]),
            str(r["failed"]),
            "-" if r.get("queued") is None else str(r["queued"]),
            _lag(r.get("lag_seconds")),
            str(r.get("catchup_errors", 0)),
            (r.get("last_error") or "")[:60],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    for row in [headers, *table]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@main.group()
def maps() -> None:
    """List the bridge's table maps and run, pause, resume or stop them."""


@maps.command("list")
@bridge_url_option
@json_option
def maps_list(bridge_url: str, as_json: bool) -> None:
    """Every map with its state, mode, counters, queue, lag and last error."""
    _print_maps(_bridge_call(bridge_url, "GET", "/api/maps"), as_json)


@maps.command("run")
@click.argument("map_ids", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(["live", "async"]), default="live", show_default=True)
@click.option(
    "--initial-sync/--no-initial-sync", default=True, show_default=True, help="Copy the rows that exist first."
)
@click.option(
    "--master",
    type=click.Choice(["scm", "sales"]),
    default="scm",
    show_default=True,
    help="The side that wins when initial sync finds a row on both sides that differs.",
)
@click.option("--with-dependencies", is_flag=True, help="Run the maps these depend on first.")
@bridge_url_option
@json_option
def maps_run(
    map_ids: tuple[str, ...],
    mode: str,
    initial_sync: bool,
    master: str,
    with_dependencies: bool,
    bridge_url: str,
    as_json: bool,
) -> None:
    """Run maps (a running map given another --mode without initial sync switches mode)."""
    body = {"mode": mode, "initial_sync": initial_sync, "master": master, "with_dependencies": with_dependencies}
    show_progress = initial_sync and sys.stderr.isatty()
    _print_maps([_run_map(bridge_url, m, body, show_progress) for m in map_ids], as_json)


def _run_map(bridge_url: str, map_id: str, body: dict[str, Any], show_progress: bool) -> Any:
    """``POST .../run``; on a terminal, the initial sync's progress (from the map's status) meanwhile."""
    if not show_progress:
        return _bridge_call(bridge_url, "POST", f"/api/maps/{map_id}/run", body)
    import threading
    import time

    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["answer"] = _bridge_call(bridge_url, "POST", f"/api/maps/{map_id}/run", body)
        except click.ClickException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call, name="maps-run", daemon=True)
    started = time.monotonic()
    worker.start()
    shown = False
    while True:
        worker.join(timeout=1.0)
        if not worker.is_alive():
            break
        try:
            progress = _bridge_call(bridge_url, "GET", f"/api/maps/{map_id}").get("initial_sync_progress")
        except click.ClickException:
            continue
        if progress:
            click.echo(
                f"\r{map_id}: initial sync {_progress_text(progress)} after {time.monotonic() - started:.0f} s   ",
                nl=False,
                err=True,
            )
            shown = True
    if shown:
        click.echo("", err=True)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


def _progress_text(progress: dict[str, Any]) -> str:
    read = f"read {progress.get('read_scm', 0):,} SCM / {progress.get('read_sales', 0):,} Sales rows"
    if progress.get("phase") != "writing":
        return read
    return f"{read}, sent {progress.get('sent', 0):,} of {progress.get('to_write', 0):,}"


def _simple_action(action: str, help_text: str) -> None:
    @maps.command(action, help=help_text)
    @click.argument("map_ids", nargs=-1, required=True)
    @bridge_url_option
    @json_option
    def command(map_ids: tuple[str, ...], bridge_url: str, as_json: bool) -> None:
        _print_maps([_bridge_call(bridge_url, "POST", f"/api/maps/{m}/{action}") for m in map_ids], as_json)


_simple_action("pause", "Pause maps: their changes queue in the source until resumed.")
_simple_action("stop", "Stop maps (Not running); nothing queues.")


@maps.command("resume")
@click.argument("map_ids", nargs=-1, required=True)
@click.option(
    "--mode",
    type=click.Choice(["catchup", "skip-keep", "skip-discard", "skip_keep", "skip_discard"]),
    default="catchup",
    show_default=True,
    help="Replay the queue in order, or skip to live keeping it as catch-up errors or discarding it.",
)
@bridge_url_option
@json_option
def maps_resume(map_ids: tuple[str, ...], mode: str, bridge_url: str, as_json: bool) -> None:
    """Resume paused maps."""
    body = {"mode": mode.replace("-", "_")}
    _print_maps([_bridge_call(bridge_url, "POST", f"/api/maps/{m}/resume", body) for m in map_ids], as_json)


# ---- reconcile ----------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--sales-url",
    default=f"http://127.0.0.1:{DEFAULT_PORTS['sales']}",
    show_default=True,
    envvar="SANDBOX_SALES_URL",
    help="Mock (or real) Sales origin.",
)
@click.option(
    "--scm-url",
    default=f"http://127.0.0.1:{DEFAULT_PORTS['scm']}",
    show_default=True,
    envvar="SANDBOX_SCM_URL",
    help="Mock (or real) SCM origin.",
)
@bridge_url_option
@click.option(
    "--map", "map_ids", multiple=True, help="Compare this map (repeatable) instead of asking the bridge which maps run."
)
@click.option(
    "--maps-dir",
    "maps_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of your own map files (as the bridge was given).",
)
@json_option
def reconcile(
    sales_url: str, scm_url: str, bridge_url: str, map_ids: tuple[str, ...], maps_dirs: tuple[Path, ...], as_json: bool
) -> None:
    """Compare both sides for every running map; exit 1 when anything is missing or differs, 0 when equal
    (2 when the comparison could not be made)."""
    import httpx

    from bridge.app import BridgeRuntime
    from bridge.reconcile import Reconciler, describe_difference, describe_key
    from leadtocash.clients import service_origin
    from leadtocash.stack import bridge_config

    if map_ids:
        wanted = list(map_ids)
    else:
        try:
            wanted = [m["id"] for m in _bridge_call(bridge_url, "GET", "/api/maps") if m["state"] == "Running"]
        except click.ClickException as exc:
            raise _CannotCompare(f"{exc.message} (or name the maps with --map)") from None
    runtime = BridgeRuntime(
        bridge_config(
            {"sales": service_origin(sales_url, "sales"), "scm": service_origin(scm_url, "scm")},
            maps_dirs=list(maps_dirs),
            start_worker=False,
        )
    )
    try:
        unknown = [m for m in wanted if m not in runtime.engine.by_id]
        if unknown:
            raise click.ClickException(
                "unknown map(s): "
                + ", ".join(f"{m}{did_you_mean(m, list(runtime.engine.by_id))}" for m in unknown)
                + " (`sandbox maps list` lists them)"
            )
        reconciler = Reconciler(runtime.lifecycle.initial)
        results = [reconciler.compare(runtime.engine.by_id[m]) for m in wanted]
    except click.ClickException as exc:
        raise _CannotCompare(exc.message) from None
    except httpx.TransportError as exc:
        raise _CannotCompare(
            f"cannot reach {_origin_of(exc)} ({one_line(exc)}); start the stack with `sandbox up`, "
            "or pass --sales-url and --scm-url where the services run"
        ) from None
    except Exception as exc:  # a service down or answering errors: not "different", but no answer either
        raise _CannotCompare(f"comparing failed: {exc}") from None
    finally:
        runtime.close()
    equal = all(r.equal for r in results)
    if as_json:
        click.echo(json.dumps({"equal": equal, "maps": [r.as_dict() for r in results]}, indent=2, default=str))
    else:
        for r in results:
            c = r.counts
            click.echo(
                f"{r.id}: {r.compared} on both sides, {c['missing_in_sales']} missing in Sales, "
                f"{c['missing_in_scm']} missing in SCM, {c['differing']} differing"
            )
            for item in r.missing_in_sales:
                click.echo(f"  missing in Sales: {describe_key(item)} ({item['why']})")
            for item in r.missing_in_scm:
                click.echo(f"  missing in SCM:   {describe_key(item)} ({item['why']})")
            for item in r.differing:
                for field_item in item["fields"]:
                    click.echo(f"  {describe_difference(item, field_item)}")
        if not results:
            click.echo("no running maps to compare")
        click.echo("equal" if equal else "DIFFERENT")
    sys.exit(0 if equal else 1)


def _origin_of(exc: Exception) -> str:
    """The origin an httpx error was on its way to (for "cannot reach ...")."""
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return "a service"
    return f"{url.scheme}://{url.netloc.decode()}"


class _CannotCompare(click.ClickException):
    """Reconcile could not compare (exit 2, so scripts can tell it from "the sides differ", exit 1)."""

    exit_code = 2


# ---- snapshot: the mocks' data to a file and back ------------------------------------------------------
#: what a snapshot file holds: each mock's own control-plane export under its name
SNAPSHOT_FILE_FORMAT = 1


def _snapshot_urls(sales_url: str, scm_url: str, only: tuple[str, ...]) -> dict[str, str]:
    urls = {"sales": sales_url, "scm": scm_url}
    return {name: url for name, url in urls.items() if not only or name in only}


def snapshot_options(command: Any) -> Any:
    """The options ``snapshot save`` and ``snapshot load`` share: where the mocks run, which of them."""
    for option in reversed(
        [
            click.option(
                "--sales-url",
                default=f"http://127.0.0.1:{DEFAULT_PORTS['sales']}",
                show_default=True,
                envvar="SANDBOX_SALES_URL",
                help="The running mock Sales (origin).",
            ),
            click.option(
                "--scm-url",
                default=f"http://127.0.0.1:{DEFAULT_PORTS['scm']}",
                show_default=True,
                envvar="SANDBOX_SCM_URL",
                help="The running mock SCM (origin).",
            ),
            click.option(
                "--only",
                type=click.Choice(["sales", "scm"]),
                multiple=True,
                help="Only this service (default: both); repeatable.",
            ),
        ]
    ):
        command = option(command)
    return command


@main.group()
def snapshot() -> None:
    """Save the data of both mocks to a file, and load it back (their /_sandbox/snapshot export and import).

    The bridge's own state (cursors, traces, map states) is not part of it: after a load, `sandbox reconcile`
    says whether both sides agree.
    """


@snapshot.command("save")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@snapshot_options
def snapshot_save(file: Path, sales_url: str, scm_url: str, only: tuple[str, ...]) -> None:
    """Write every row of the running mocks to FILE (JSON)."""
    from sandbox.clients import ControlClient

    services: dict[str, Any] = {}
    for name, url in _snapshot_urls(sales_url, scm_url, only).items():
        _require_service(name, url, f"--{name}-url")
        with ControlClient(url, timeout=600.0) as control:
            services[name] = control.snapshot()
    try:
        with file.open("w", encoding="utf-8") as handle:
            json.dump({"format": SNAPSHOT_FILE_FORMAT, "services": services}, handle)
    except OSError as exc:
        raise SetupError(
            f"cannot write {file} ({exc.strerror or exc}); choose a file in a folder you can write"
        ) from None
    rows = {name: sum(len(t) for t in data.get("tables", {}).values()) for name, data in services.items()}
    click.echo(f"saved {', '.join(f'{name} ({count} rows)' for name, count in rows.items())} to {file}")


@snapshot.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@snapshot_options
def snapshot_load(file: Path, sales_url: str, scm_url: str, only: tuple[str, ...]) -> None:
    """Replace the running mocks' data with FILE's (each service atomically)."""
    from sandbox.clients import ControlClient, ServiceError

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"no such file: {file}; write one with `sandbox snapshot save {file}`") from None
    except OSError as exc:
        raise SetupError(f"cannot read {file} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SetupError(f"{file} is not JSON ({one_line(exc)}); give a file `sandbox snapshot save` wrote") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != SNAPSHOT_FILE_FORMAT
        or not isinstance(data.get("services"), dict)
    ):
        raise SetupError(
            f"{file} is not a sandbox snapshot (format {SNAPSHOT_FILE_FORMAT}); give a file `sandbox snapshot save` wrote"
        )
    targets = _snapshot_urls(sales_url, scm_url, only)
    missing = [name for name in targets if name not in data["services"]]
    if only and missing:
        raise SetupError(
            f"{file} holds no snapshot of {', '.join(missing)}; it has {', '.join(data['services']) or 'none'}"
        )
    loaded = []
    for name, url in targets.items():
        if name not in data["services"]:
            continue
        _require_service(name, url, f"--{name}-url")
        with ControlClient(url, timeout=600.0) as control:
            try:
                control.restore(data["services"][name])
            except ServiceError as exc:
                raise SetupError(f"{name} at {url} refused the snapshot: {one_line(exc)}") from None
        loaded.append(name)
    click.echo(f"loaded {', '.join(loaded)} from {file}")


from leadtocash.loadtest import load as _load_command  # noqa: E402
from leadtocash.token_command import token as _token_command  # noqa: E402

main.add_command(_load_command)
main.add_command(_token_command)


if __name__ == "__main__":  # pragma: no cover
    main()
