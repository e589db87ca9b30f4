"""`sandbox up` as a user runs it, in a process of its own on ports the system picks: shared by the CLI tests."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.clients import ClientCredentials


def start_up(tmp_path: Path, *extra: str, lines: list[str] | None = None) -> tuple[subprocess.Popen, dict[str, str]]:
    """``sandbox up`` on ports the system picks (0: no other test can take them in between), once it printed its
    ``ready`` line: the process and the URL of each service, the identity service's too (every line it printed up to
    then goes to ``lines``). Authentication is on, as `sandbox up`'s default: reach the services with
    :func:`authenticated` (or our own clients, which get their tokens by themselves)."""
    ports = {"sales": 0, "scm": 0, "bridge": 0, "identity": 0}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadtocash.cli",
            "up",
            "--sales-port",
            str(ports["sales"]),
            "--scm-port",
            str(ports["scm"]),
            "--bridge-port",
            str(ports["bridge"]),
            "--identity-port",
            str(ports["identity"]),
            "--data-dir",
            str(tmp_path / "data"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    urls: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        if lines is not None:
            lines.append(line)
        if line.startswith("ready"):
            break
        parts = line.split()
        if len(parts) == 2 and parts[0] in ports:
            urls[parts[0]] = parts[1]
    return process, urls


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, then the exit code once the process ended."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@dataclass
class Up:
    """A running ``sandbox up``: the process, each service's URL and every line it printed up to ``ready``."""

    process: subprocess.Popen
    urls: dict[str, str]
    lines: list[str]


@pytest.fixture(scope="session")
def served_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One ``sandbox up --memory`` per session (per pytest-xdist worker): a process start costs seconds, so live
    tests that each check something different on a served stack share it. They write only records of their own
    (keys no other test uses) and leave every map as they found it; a test that needs a fresh start, a restart
    or the stop itself starts its own with :func:`start_up`. It must stop cleanly, with exit code 0."""
    lines: list[str] = []
    process, urls = start_up(tmp_path_factory.mktemp("served-up"), "--memory", lines=lines)
    later: list[str] = []
    # read on what it prints: a pipe nobody reads would block the server once full
    threading.Thread(target=later.extend, args=(process.stdout,), name="served-up-output", daemon=True).start()
    try:
        yield Up(process, urls, lines)
    finally:
        assert stop(process) == 0, "the shared `sandbox up` did not stop cleanly"


def authenticated(verify: Any = True, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that authenticates as our own clients do: the well-known development app's token, from
    the identity service a service names in its 401 challenge (``verify``: the local CA with ``--tls``). Each
    connection closes after its answer, as ``httpx.get`` leaves none open: a server stops only once its
    keep-alive connections are closed."""
    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
    return httpx.Client(
        auth=ClientCredentials(verify=verify), verify=verify, timeout=60.0, headers={"Connection": "close"}, **kwargs
    )
