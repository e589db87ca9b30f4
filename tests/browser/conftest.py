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
    """The whole stack served on loopback ports (in-process wiring), the maps running live, tokens checked as
    ``sandbox up`` checks them by default: a browser carries none, and every page must work all the same."""
    stack = start_stack(
        StackConfig(memory=True, seed=1, auth=True),
        wire="in-process",
        serve=Serving(ports={"sales": 0, "scm": 0, "bridge": 0}),
    )
    runtime = stack.bridge_runtime
    runtime.worker.poll_wait = 0.2  # short long-polls: closing stays quick
    yield stack
    stack.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page on a laptop-sized window; JavaScript errors on it fail the test, and so does anything the
    page itself loads that fails (a script, a stylesheet, the icon): what a developer would see in the browser's
    console. The pages a test opens and the requests the page's own code sends (htmx) may fail: the page shows
    their answer."""
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    errors: list[str] = []
    shown: set[str] = set()  # URLs whose failure the page handles: opened documents and its own requests
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("request", lambda request: shown.add(request.url) if request.resource_type in SHOWN_REQUESTS else None)
    tab.on(
        "console",
        lambda message: (
            errors.append(f"{message.text} ({message.location.get('url')})") if message.type == "error" else None
        ),
    )
    yield tab
    context.close()
    failed = [e for e in errors if not any(e.endswith(f"({url})") for url in shown)]
    assert not failed, failed


#: requests whose failure a page shows itself: the document the test opened, htmx's requests
SHOWN_REQUESTS = {"document", "xhr", "fetch"}
