"""Fixtures of the browser tests: one served stack and one headless Chromium per test session (per xdist worker).

Chromium is Debian's (``chromium`` on the PATH, or the file named by ``$CHROMIUM``), driven by Playwright for
Python through ``executable_path``: nothing is downloaded (``playwright install`` is never run). Without a
Chromium the tests skip, saying so, except in CI (``$CI`` set, as ``.ci/run`` does), where they fail.

``SCREENSHOTS=1`` makes :func:`shoot` write the pictures the docs show into ``docs/images/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from tests.browser.support import CHROMIUM_ARGS, LAPTOP, chromium_path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def served() -> Iterator[Stack]:
    """The whole stack served on loopback ports (in-process wiring), the maps running live."""
    stack = start_stack(
        StackConfig(memory=True, seed=1),
        wire="in-process",
        serve=Serving(ports={"sales": 0, "scm": 0, "bridge": 0}),
    )
    runtime = stack.bridge_runtime
    runtime.worker.poll_wait = 0.2  # short long-polls: closing stays quick
    yield stack
    stack.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page on a laptop-sized window; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors
