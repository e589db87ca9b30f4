"""The services of the sandbox and how to build them for one run (in-process or on ports).

The wiring is configuration: the same apps are served on ports by ``sandbox up`` or driven in-process
through ``httpx.WSGITransport`` by tests and ``sandbox demo``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import httpx

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


@dataclass
class Stack:
    """The running services of one sandbox: apps by name, and how to talk to each."""

    apps: dict[str, Flask]
    transports: dict[str, "httpx.BaseTransport"] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def transport(self, name: str) -> "httpx.BaseTransport | None":
        return self.transports.get(name)

    def url(self, name: str) -> str:
        return self.urls.get(name, f"http://{name}.sandbox")

    def close(self) -> None:
        bridge = self.apps.get("bridge")
        if bridge is not None:
            bridge.extensions["bridge"].close()
        for name in ("sales", "scm"):
            if name in self.apps:
                self.apps[name].extensions["sandbox"].set_live_sync(None)
                self.apps[name].extensions["sandbox"].db.dispose()


def wire_bridge(apps: dict[str, Flask], *, bridge_database_url: str = "sqlite://", maps_dirs: list[Path] | None = None,
                urls: dict[str, str] | None = None, in_process: bool | None = None) -> Flask | None:
    """Build the bridge for ``apps`` and point both mocks' live sync at it.

    ``in_process`` (the default when there are no ``urls``) sends the traffic between the bridge and the
    mocks through ``httpx.WSGITransport``: the same HTTP requests and answers, handled in the calling
    thread instead of crossing a loopback socket and a server's worker pool. ``sandbox up`` runs all three
    services in one process, so it wires them this way even though each also listens on its port; with
    ``in_process=False`` they call each other on ``urls`` as separate servers would.
    """
    import httpx

    make = factory("bridge")
    if make is None or "sales" not in apps or "scm" not in apps:
        return None
    from bridge.app import BridgeConfig
    from sandbox.livesync import http_sender

    in_process = urls is None if in_process is None else in_process
    origins = urls or {"sales": "http://sales.sandbox", "scm": "http://scm.sandbox", "bridge": "http://bridge.sandbox"}
    if in_process:
        config = BridgeConfig(sales_url=origins["sales"], scm_url=origins["scm"],
                              sales_transport=httpx.WSGITransport(app=apps["sales"]),
                              scm_transport=httpx.WSGITransport(app=apps["scm"]),
                              database_url=bridge_database_url, maps_dirs=list(maps_dirs or []))
    else:
        config = BridgeConfig(sales_url=origins["sales"], scm_url=origins["scm"], database_url=bridge_database_url,
                              maps_dirs=list(maps_dirs or []))
    bridge_app = make(config)
    if in_process:
        client = httpx.Client(transport=httpx.WSGITransport(app=bridge_app), base_url=origins["bridge"],
                              timeout=120.0)
    else:
        client = httpx.Client(base_url=origins["bridge"], timeout=120.0)
    for name in ("sales", "scm"):
        apps[name].extensions["sandbox"].set_live_sync(http_sender(client))
    return bridge_app


def build_stack(config: StackConfig, *, bridge: bool = True, start_maps: bool = True,
                maps_dirs: list[Path] | None = None) -> Stack:
    """All services in this process, wired through WSGI transports (tests, ``sandbox demo``)."""
    import httpx

    apps = build_apps(config)
    if bridge:
        bridge_url = config.database_urls.get("bridge") or sqlite_url_for(
            None if config.memory else config.data_dir, "bridge")
        bridge_app = wire_bridge(apps, bridge_database_url=bridge_url, maps_dirs=maps_dirs)
        if bridge_app is not None:
            apps["bridge"] = bridge_app
            if start_maps:
                bridge_app.extensions["bridge"].run_all(initial_sync=True, master="scm")
    transports = {name: httpx.WSGITransport(app=app) for name, app in apps.items()}
    return Stack(apps, transports, {name: f"http://{name}.sandbox" for name in apps})
