"""What the browser tests share besides fixtures: window sizes, Chromium's arguments, screenshots, overflow checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

#: the machine's network is closed: nothing in the browser may try to reach out
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
NARROW = {"width": 1024, "height": 768}
WIDE = {"width": 1920, "height": 1080}
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def chromium_path() -> str:
    """Debian's Chromium, or a skip (a failure in CI) saying how to get one."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "no Chromium found (install Debian's: apt-get install chromium, or set CHROMIUM=/path/to/chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"browser tests in CI: {reason}")
    pytest.skip(reason)


def shoot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Write ``docs/images/<name>.png`` when ``SCREENSHOTS=1``."""
    if os.environ.get("SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=full_page)


def no_horizontal_overflow(page: Any) -> None:
    """The page fits its window's width: nothing to scroll sideways, nothing cut off."""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"
