"""``sandbox demo``: the lead-to-cash scenario on fresh throwaway state, told as a readable report."""

from __future__ import annotations

from collections.abc import Callable

from leadtocash.preflight import SetupError, check_ports_free, one_line
from leadtocash.runner import scenario_context
from leadtocash.stack import (
    ServiceStartError,
    Serving,
    StackConfig,
    build_stack,
    service_line,
    wait_for_interrupt,
)
from scenarios.context import ScenarioContext
from scenarios.registry import load_builtin


def run_demo(
    *,
    seed: int = 1,
    keep: bool = False,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the journey and print it; returns the process exit code (0 when every step passed).

    With ``keep`` the demo's stack is then served on ``host`` and ``ports`` (wired as it was) until Ctrl+C; the
    ports are checked first, so a busy one is a :class:`SetupError` before the journey runs, not after.
    """
    service_ports = dict(ports or {})
    if keep:
        check_ports_free(host, service_ports)
    echo("Starting mock Sales, mock SCM and the dual-write bridge in this process (throwaway state) ...")
    scenario = load_builtin()["lead-to-cash"]
    passed = False
    with build_stack(StackConfig(memory=True, seed=seed)) as stack:
        with stack.clients() as clients:
            ctx = scenario_context(clients, seed)
            try:
                scenario(ctx)
                passed = all(step.passed for step in ctx.steps)
            except Exception as exc:  # noqa: BLE001 - the report shows where the journey stopped
                echo(f"\nThe journey stopped: {type(exc).__name__}: {exc}")
            print_report(ctx, echo)
        if keep:
            try:
                stack.serve(Serving(host, service_ports), lambda name, url: echo(service_line(name, url)))
            except ServiceStartError as exc:  # taken while the journey ran
                raise SetupError(f"{one_line(exc)}; stop what holds the port or choose another port") from None
            echo("The demo's stack stays up; Ctrl+C stops it.")
            wait_for_interrupt()
    return 0 if passed else 1


def print_report(ctx: ScenarioContext, echo: Callable[[str], None]) -> None:
    """The steps with their timings, then the documents the journey made on both sides."""
    echo("\nLead to cash, step by step")
    echo("=" * 100)
    for step in ctx.steps:
        sync = f"{step.sync_seconds * 1000:7.0f} ms" if step.sync_seconds is not None else "      --  "
        echo(f"{'ok  ' if step.passed else 'FAIL'} {step.name:<58} {step.seconds * 1000:7.0f} ms   sync {sync}")
        if not step.passed and step.error:
            echo(f"     {step.error}")
    if ctx.journey:
        echo("\nDocuments on both sides")
        echo("-" * 100)
        echo(f"{'step':<34} {'system':<6} {'document':<22} {'number':<20} {'status':<14} {'amount':>10}")
        for entry in ctx.journey:
            amount = f"{entry.amount:10.2f}" if entry.amount is not None else ""
            echo(
                f"{entry.step[:34]:<34} {entry.side:<6} {entry.document[:22]:<22} {entry.number[:20]:<20} "
                f"{entry.status[:14]:<14} {amount:>10}"
            )
    passed = sum(1 for s in ctx.steps if s.passed)
    echo(f"\n{passed} of {len(ctx.steps)} steps passed.")


__all__ = ["run_demo"]
