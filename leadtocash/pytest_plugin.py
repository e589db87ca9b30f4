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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from leadtocash.clients import Clients

if TYPE_CHECKING:
    from leadtocash.stack import Stack
    from scenarios.context import ScenarioContext


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "lead-to-cash sandbox")
    group.addoption("--sandbox-sales-url", default=None, help="use a running mock Sales at this origin")
    group.addoption("--sandbox-scm-url", default=None, help="use a running mock SCM at this origin")
    group.addoption("--sandbox-bridge-url", default=None, help="use a running bridge at this origin")
    group.addoption("--sandbox-reset", action="store_true", help="reset and reseed running mocks before each test")
    group.addoption("--sandbox-seed", type=int, default=1, help="seed of the demo data (default 1)")


@dataclass
class SandboxHandle(Clients):
    """Clients for one stack (``sales``, ``scm``, ``bridge``, ``control``, ``urls``); ``stack`` is set when the
    stack runs in this process."""

    stack: Stack | None = None


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    """A fresh in-process sandbox per test, or the running one named by --sandbox-*-url."""
    options = request.config.option
    seed = options.sandbox_seed
    if options.sandbox_sales_url:
        if not options.sandbox_scm_url:
            raise pytest.UsageError("--sandbox-sales-url and --sandbox-scm-url go together")
        urls = {
            "sales": options.sandbox_sales_url,
            "scm": options.sandbox_scm_url,
            "bridge": options.sandbox_bridge_url or "",
        }
        with SandboxHandle.connect(urls) as handle:
            if options.sandbox_reset:
                for control in handle.control.values():
                    control.reset()
                    control.seed(seed)
            yield handle
        return
    from leadtocash.stack import StackConfig, build_stack

    with build_stack(StackConfig(memory=True, seed=seed)) as stack:
        with SandboxHandle.connect(stack.urls, stack.transports, stack=stack) as handle:
            yield handle


@pytest.fixture(scope="session")
def sandbox_servers(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    """The stack served on free loopback ports for the whole session; the bridge and the mocks call each other
    on those ports, as separate servers do."""
    from leadtocash.stack import Serving, StackConfig, start_stack

    config = StackConfig(memory=True, seed=request.config.option.sandbox_seed)
    with start_stack(config, wire="http", serve=Serving()) as stack:
        with SandboxHandle.connect(stack.urls, stack=stack) as handle:
            yield handle


@pytest.fixture
def sandbox_context(sandbox: SandboxHandle) -> ScenarioContext:
    """A scenario context (named steps, ``synced`` checks) on the ``sandbox`` fixture's stack."""
    from leadtocash.runner import scenario_context

    return scenario_context(sandbox, seed=1)
