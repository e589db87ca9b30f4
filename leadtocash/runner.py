"""Runs scenarios in-process (a fresh throwaway stack each) or against running servers, and reports them:
a step table on the terminal, JSON, and JUnit XML."""

from __future__ import annotations

import contextlib
import json
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from faker import Faker

from leadtocash.clients import Clients
from leadtocash.stack import StackConfig, build_stack
from scenarios.context import IsolatedStack, JourneyEntry, Mismatch, ScenarioContext, StepResult
from scenarios.registry import Scenario


@dataclass
class ScenarioResult:
    name: str
    description: str
    passed: bool
    seconds: float
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    journey: list[JourneyEntry] = field(default_factory=list)


@dataclass
class Endpoints:
    """Where the services are: None = a fresh in-process stack per scenario."""

    sales_url: str | None = None
    scm_url: str | None = None
    bridge_url: str | None = None

    @property
    def in_process(self) -> bool:
        return self.sales_url is None


@contextlib.contextmanager
def open_context(endpoints: Endpoints, seed: int = 1) -> Iterator[ScenarioContext]:
    """A :class:`ScenarioContext` on the endpoints (building and tearing down a stack when in-process)."""
    if endpoints.in_process:
        with build_stack(StackConfig(memory=True, seed=seed)) as stack, stack.clients() as clients:
            yield scenario_context(clients, seed)
        return
    urls = {"sales": endpoints.sales_url or "", "scm": endpoints.scm_url or "", "bridge": endpoints.bridge_url or ""}
    with Clients.connect(urls) as clients:
        yield scenario_context(clients, seed)


def scenario_context(clients: Clients, seed: int = 1) -> ScenarioContext:
    """A context on ``clients`` (the caller closes them), ``fake`` and ``rng`` seeded with ``seed``; a scenario
    that needs a stack of its own gets a throwaway in-process one (:meth:`ScenarioContext.isolated`)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return ScenarioContext(
        sales=clients.sales,
        scm=clients.scm,
        bridge=clients.bridge,
        control=clients.control,
        fake=fake,
        rng=random.Random(seed),
        isolated_stack=isolated_stacks(seed),
    )


def isolated_stacks(seed: int = 1) -> IsolatedStack:
    """What :attr:`ScenarioContext.isolated_stack` opens: a fresh in-memory stack in this process, whose bridge
    also loads the maps in the folders it is given, with a context on it; closed when the block ends."""

    @contextlib.contextmanager
    def open_isolated(maps_dirs: list[Path]) -> Iterator[ScenarioContext]:
        config = StackConfig(memory=True, seed=seed)
        with build_stack(config, maps_dirs=maps_dirs) as stack, stack.clients() as clients:
            yield scenario_context(clients, seed)

    return open_isolated


def run_scenario(item: Scenario, endpoints: Endpoints, seed: int = 1) -> ScenarioResult:
    """Run one scenario on a fresh in-process stack (or the running ``endpoints``) and collect its steps."""
    started = time.perf_counter()
    result = ScenarioResult(item.name, item.description, False, 0.0)
    try:
        with open_context(endpoints, seed) as ctx:
            try:
                item(ctx)
                result.passed = all(step.passed for step in ctx.steps)
            except Mismatch as exc:
                result.error = exc.message
            except Exception as exc:  # noqa: BLE001 - a broken scenario is a failed scenario, not a crash
                result.error = f"{type(exc).__name__}: {exc}"
            result.steps = list(ctx.steps)
            result.journey = list(ctx.journey)
    except Exception as exc:  # noqa: BLE001 - the stack itself failed to start
        result.error = f"could not start the stack: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result


# ---- reports ----------------------------------------------------------------------------------------------


def print_results(results: list[ScenarioResult], out: IO[str]) -> None:
    """A step table per scenario; failures show what differed, with the record on both sides."""
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        out.write(f"\n{mark}  {result.name}  ({result.seconds:.2f}s)  {result.description}\n")
        width = max([len(step.name) for step in result.steps] + [20])
        for step in result.steps:
            sync = f"  sync {step.sync_seconds * 1000:.0f} ms" if step.sync_seconds is not None else ""
            out.write(
                f"  {'ok  ' if step.passed else 'FAIL'}  {step.name:<{width}}  {step.seconds * 1000:8.0f} ms{sync}\n"
            )
            if not step.passed:
                out.write(f"        {step.error}\n")
                if step.sales is not None or step.scm is not None:
                    out.write(f"        Sales: {json.dumps(step.sales, default=str)[:600]}\n")
                    out.write(f"        SCM:   {json.dumps(step.scm, default=str)[:600]}\n")
        if result.error and (not result.steps or result.steps[-1].passed):
            out.write(f"        {result.error}\n")
    passed = sum(1 for r in results if r.passed)
    out.write(f"\n{passed} passed, {len(results) - passed} failed\n")


def write_json(results: list[ScenarioResult], path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "scenarios": [asdict(r) for r in results],
                "passed": sum(1 for r in results if r.passed),
                "failed": sum(1 for r in results if not r.passed),
            },
            handle,
            indent=2,
            default=str,
        )


def write_junit(results: list[ScenarioResult], path: str) -> None:
    """JUnit XML: one testsuite per scenario, one testcase per step."""
    suites = ET.Element("testsuites", name="lead-to-cash-sandbox")
    for result in results:
        failures = sum(1 for step in result.steps if not step.passed) + (1 if result.error and not result.steps else 0)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=result.name,
            tests=str(max(len(result.steps), 1)),
            failures=str(failures),
            time=f"{result.seconds:.3f}",
        )
        if not result.steps:
            case = ET.SubElement(
                suite, "testcase", classname=result.name, name="(scenario)", time=f"{result.seconds:.3f}"
            )
            if result.error:
                ET.SubElement(case, "failure", message=result.error[:500]).text = result.error
        for step in result.steps:
            case = ET.SubElement(suite, "testcase", classname=result.name, name=step.name, time=f"{step.seconds:.3f}")
            if not step.passed:
                failure = ET.SubElement(case, "failure", message=(step.error or "")[:500])
                failure.text = json.dumps(
                    {"error": step.error, "sales": step.sales, "scm": step.scm}, default=str, indent=2
                )
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def as_dict(result: ScenarioResult) -> dict[str, Any]:
    return asdict(result)
