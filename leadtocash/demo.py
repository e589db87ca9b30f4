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
    interrupts,
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
            with interrupts() as stopped:  # before the line that says how to stop
                echo("The demo's stack stays up; Ctrl+C stops it.")
                wait_for_interrupt(stopped)
    return 0 if passed else 1


def print_report(ctx: ScenarioContext, echo: Callable[[str], None]) -> None:
    """The steps with their timings, then the documents the journey made on both sides, with the tax included
    in each amount; every column as wide as its longest cell, so a long step name shifts nothing."""
    echo("\nLead to cash, step by step")
    steps = [
        [
            "ok" if step.passed else "FAIL",
            step.name,
            f"{step.seconds * 1000:.0f} ms",
            f"{step.sync_seconds * 1000:.0f} ms" if step.sync_seconds is not None else "--",
        ]
        for step in ctx.steps
    ]
    lines = table(["", "step", "time", "sync"], steps, right={2, 3})
    for line in lines[:2]:
        echo(line)
    for step, line in zip(ctx.steps, lines[2:], strict=True):
        echo(line)
        if not step.passed and step.error:
            echo(f"    {step.error}")
    if ctx.journey:
        echo("\nDocuments on both sides")
        rows = [
            [
                entry.step,
                entry.side,
                entry.document,
                entry.number,
                entry.status,
                _money(entry.amount),
                _money(entry.tax),
            ]
            for entry in ctx.journey
        ]
        for line in table(["step", "system", "document", "number", "status", "amount", "of which tax"], rows, {5, 6}):
            echo(line)
        echo("Amounts are the totals each system stores. SCM computes sales tax and its totals include it (the")
        echo("last column); Sales computes none and shows SCM's totals, tax included, once SCM has them.")
    passed = sum(1 for s in ctx.steps if s.passed)
    echo(f"\n{passed} of {len(ctx.steps)} steps passed.")


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    """Lines of a plain text table: a header, a rule, the rows; columns ``right`` aligned right."""
    right = right or set()
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * width for width in widths), *(line(row) for row in rows)]


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


__all__ = ["run_demo"]
