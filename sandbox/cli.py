"""The ``sandbox`` command: ``up``, ``demo`` and friends."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sandbox.stack import DEFAULT_PORTS, StackConfig, build_apps


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The lead-to-cash sandbox: mock Dynamics 365 Sales and SCM on your laptop."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--sales-port", default=DEFAULT_PORTS["sales"], show_default=True, type=int)
@click.option("--scm-port", default=DEFAULT_PORTS["scm"], show_default=True, type=int)
@click.option("--bridge-port", default=DEFAULT_PORTS["bridge"], show_default=True, type=int)
@click.option("--data-dir", default=".sandbox", show_default=True, type=click.Path(path_type=Path),
              help="Folder of the SQLite files that survive restarts.")
@click.option("--memory", is_flag=True, help="Throwaway in-memory state instead of files.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the deterministic demo data.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated localhost certificate.")
def up(host: str, sales_port: int, scm_port: int, bridge_port: int, data_dir: Path, memory: bool, seed: int,
       tls: bool) -> None:
    """Start the services and serve until interrupted (Ctrl+C or SIGTERM)."""
    from sandbox.server import ServerGroup, ensure_tls_files

    config = StackConfig(data_dir=data_dir, memory=memory, seed=seed)
    apps = build_apps(config)
    tls_files = ensure_tls_files(data_dir / "tls") if tls else None
    group = ServerGroup(host=host, tls=tls_files)
    ports = {"sales": sales_port, "scm": scm_port, "bridge": bridge_port}
    roots = {"sales": "/api/data/v9.2/", "scm": "/data/", "bridge": "/"}
    try:
        for name, app in apps.items():
            server = group.start(name, app, ports[name])
            click.echo(f"{name:<6} {server.url}{roots[name]}")
    except Exception as exc:  # a port in use, most often
        group.stop_all()
        raise click.ClickException(str(exc)) from exc
    if tls_files is not None:
        click.echo(f"TLS: trust {tls_files.ca_cert} (e.g. export SSL_CERT_FILE={tls_files.ca_cert} "
                   f"REQUESTS_CA_BUNDLE={tls_files.ca_cert} NODE_EXTRA_CA_CERTS={tls_files.ca_cert})")
    click.echo("storage: " + ("in memory (throwaway)" if memory else str(data_dir)) + "   Ctrl+C stops.")
    sys.stdout.flush()
    group.wait_for_signal()
    click.echo("stopped.")


@main.command()
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the demo data.")
@click.option("--keep", is_flag=True, help="Leave the stack up on its ports afterwards to explore it.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--sales-port", default=DEFAULT_PORTS["sales"], show_default=True, type=int)
@click.option("--scm-port", default=DEFAULT_PORTS["scm"], show_default=True, type=int)
@click.option("--bridge-port", default=DEFAULT_PORTS["bridge"], show_default=True, type=int)
def demo(seed: int, keep: bool, host: str, sales_port: int, scm_port: int, bridge_port: int) -> None:
    """Run the lead-to-cash journey in-process on fresh throwaway state and print its report."""
    from scenarios.demo import run_demo

    sys.exit(run_demo(seed=seed, keep=keep, host=host,
                      ports={"sales": sales_port, "scm": scm_port, "bridge": bridge_port}, echo=click.echo))


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
def scenario_run(names: tuple[str, ...], run_all: bool, json_path: str | None, junit_path: str | None,
                 sales_url: str | None, scm_url: str | None, bridge_url: str | None, seed: int) -> None:
    """Run scenarios by name, --all, or a PATH.py of your own; exits 1 when a step fails."""
    from scenarios.registry import load_builtin, load_file
    from scenarios.runner import Endpoints, print_results, run_scenario, write_json, write_junit

    registry = load_builtin()
    chosen = []
    if run_all:
        chosen = sorted(registry.values(), key=lambda s: s.name)
    for name in names:
        if name.endswith(".py"):
            path = Path(name)
            if not path.exists():
                raise click.BadParameter(f"no such file: {name}")
            chosen.extend(load_file(path))
        elif name in registry:
            chosen.append(registry[name])
        else:
            raise click.BadParameter(f"unknown scenario {name!r}; see `sandbox scenario list`")
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
@click.option("--threads", default=4, show_default=True, type=int, help="Concurrent client threads.")
def bench(quick: bool, json_path: str | None, threads: int) -> None:
    """Measure the mocks' request throughput beside a bare-server baseline, in one run."""
    from sandbox import bench as benchmarks

    on_terminal = sys.stderr.isatty()
    results = benchmarks.run_bench(quick=quick, threads=threads,
                                   progress=(lambda text: click.echo(f"  running {text} ...", err=True))
                                   if on_terminal else None)
    benchmarks.print_table(results)
    if json_path:
        benchmarks.dump(results, json_path)


if __name__ == "__main__":  # pragma: no cover
    main()
