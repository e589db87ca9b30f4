"""The services of the sandbox and how to build them for one run (in-process or on ports).

The wiring is configuration: the same apps are served on ports by ``sandbox up`` or driven in-process
through ``httpx.WSGITransport`` by tests and ``sandbox demo``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flask import Flask

from sandbox.db import sqlite_url_for
from sandbox.runtime import ServiceConfig

#: service name -> "module:factory"; a service whose module is not there yet is simply not started
SERVICES: dict[str, str] = {
    "sales": "mock_sales:create_app",
    "scm": "mock_scm:create_app",
    "bridge": "bridge:create_app",
}

DEFAULT_PORTS = {"sales": 5101, "scm": 5102, "bridge": 5103}


@dataclass
class StackConfig:
    """Where each service keeps its data and how it is seeded."""

    data_dir: Path | None = Path(".sandbox")
    memory: bool = False
    seed: int | None = 1
    database_urls: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict] = field(default_factory=dict)

    def service_config(self, name: str) -> ServiceConfig:
        url = self.database_urls.get(name) or sqlite_url_for(None if self.memory else self.data_dir, name)
        return ServiceConfig(database_url=url, seed=self.seed, options=dict(self.options.get(name, {})))


def factory(name: str) -> Callable[[ServiceConfig], Flask] | None:
    """The app factory of a service, or None when that service is not built yet."""
    module_name, _, attribute = SERVICES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, attribute, None)


def build_apps(config: StackConfig, names: list[str] | None = None) -> dict[str, Flask]:
    """The apps of every available service (mock services only: the bridge is wired by its own issue)."""
    apps: dict[str, Flask] = {}
    for name in names or ["sales", "scm"]:
        make = factory(name)
        if make is not None:
            apps[name] = make(config.service_config(name))
    return apps
