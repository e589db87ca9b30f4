"""A pytest plugin for teams' own integration tests against the sandbox (installed with the package).

Fixtures:

- ``sandbox`` (per test): a fresh in-process stack (mock Sales, mock SCM, the bridge with the shipped maps
  running) and clients for it: ``sandbox.sales``, ``sandbox.scm``, ``sandbox.bridge``, ``sandbox.control``.
  With ``--sandbox-sales-url/--sandbox-scm-url[/--sandbox-bridge-url]`` the same fixture talks to running
  servers instead, and ``--sandbox-reset`` resets and reseeds both mocks before each test.
- ``sandbox_servers`` (per session): the stack served on free 127.0.0.1 ports, for code that needs real URLs
  (``sandbox_servers.urls["sales"]``).
- ``sandbox_context``: a :class:`scenarios.context.ScenarioContext` (steps, ``synced`` comparisons) on ``sandbox``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sandbox.clients import ControlClient, SalesClient, ScmClient


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "lead-to-cash sandbox")
    group.addoption("--sandbox-sales-url", default=None, help="use a running mock Sales at this origin")
    group.addoption("--sandbox-scm-url", default=None, help="use a running mock SCM at this origin")
    group.addoption("--sandbox-bridge-url", default=None, help="use a running bridge at this origin")
    group.addoption("--sandbox-reset", action="store_true", help="reset and reseed running mocks before each test")
    group.addoption("--sandbox-seed", type=int, default=1, help="seed of the demo data (default 1)")


@dataclass
class SandboxHandle:
    """Clients for one stack; ``stack`` is set when the stack runs in this process."""

    sales: SalesClient
    scm: ScmClient
    bridge: httpx.Client | None
    control: dict[str, ControlClient]
    urls: dict[str, str] = field(default_factory=dict)
    stack: Any = None

    def close(self) -> None:
        for client in (self.sales, self.scm, *self.control.values()):
            client.close()
        if self.bridge is not None:
            self.bridge.close()


def _handle(urls: dict[str, str], transports: dict[str, Any]) -> SandboxHandle:
    bridge = None
    if urls.get("bridge"):
        bridge = httpx.Client(base_url=urls["bridge"], transport=transports.get("bridge"), timeout=120.0)
    return SandboxHandle(
        sales=SalesClient(urls["sales"], transport=transports.get("sales")),
        scm=ScmClient(urls["scm"], transport=transports.get("scm")),
        bridge=bridge,
        control={name: ControlClient(urls[name], transport=transports.get(name)) for name in ("sales", "scm")},
        urls=dict(urls),
    )


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    """A fresh in-process sandbox per test, or the running one named by --sandbox-*-url."""
    options = request.config.option
    seed = options.sandbox_seed
    if options.sandbox_sales_url:
        if not options.sandbox_scm_url:
            raise pytest.UsageError("--sandbox-sales-url and --sandbox-scm-url go together")
        handle = _handle(
            {
                "sales": options.sandbox_sales_url,
                "scm": options.sandbox_scm_url,
                "bridge": options.sandbox_bridge_url or "",
            },
            {},
        )
        if options.sandbox_reset:
            for control in handle.control.values():
                control.reset()
                control.seed(seed)
        try:
            yield handle
        finally:
            handle.close()
        return
    from leadtocash.stack import StackConfig, build_stack

    stack = build_stack(StackConfig(memory=True, seed=seed))
    handle = _handle({name: f"http://{name}.sandbox" for name in stack.apps}, stack.transports)
    handle.stack = stack
    try:
        yield handle
    finally:
        handle.close()
        stack.close()


@pytest.fixture(scope="session")
def sandbox_servers(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    """The stack served on free loopback ports for the whole session."""
    from leadtocash.stack import StackConfig, build_apps, wire_bridge
    from sandbox.server import ServerGroup, free_port

    seed = request.config.option.sandbox_seed
    apps = build_apps(StackConfig(memory=True, seed=seed))
    group = ServerGroup()
    urls = {name: group.start(name, app, free_port()).url for name, app in apps.items()}
    bridge_port = free_port()
    urls["bridge"] = f"http://127.0.0.1:{bridge_port}"
    bridge_app = wire_bridge(apps, urls=urls)
    if bridge_app is not None:
        group.start("bridge", bridge_app, bridge_port)
        bridge_app.extensions["bridge"].run_all(initial_sync=True, master="scm")
    else:
        urls.pop("bridge")
    handle = _handle(urls, {})
    try:
        yield handle
    finally:
        handle.close()
        group.stop_all()
        if bridge_app is not None:
            bridge_app.extensions["bridge"].close()


@pytest.fixture
def sandbox_context(sandbox: SandboxHandle) -> Any:
    """A scenario context (named steps, ``synced`` checks) on the ``sandbox`` fixture's stack."""
    import random

    from faker import Faker

    from scenarios.context import ScenarioContext

    fake = Faker("en_US")
    fake.seed_instance(1)
    return ScenarioContext(
        sales=sandbox.sales,
        scm=sandbox.scm,
        bridge=sandbox.bridge,
        control=sandbox.control,
        fake=fake,
        rng=random.Random(1),
    )
