"""One bundle of clients on a stack: typed clients on both mocks, their control planes, the bridge's admin API.

The scenario runner, ``sandbox demo`` and the pytest plugin hand these to scenarios and tests; a stack makes
them with :meth:`leadtocash.stack.Stack.clients`, a run against servers elsewhere with :meth:`Clients.connect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from sandbox.clients import ClientCredentials, ControlClient, SalesClient, ScmClient

MOCKS: tuple[str, ...] = ("sales", "scm")
#: what follows each service's origin: the root a client starts from (``sandbox up`` prints origin and root)
SERVICE_ROOTS = {"sales": "/api/data/v9.2/", "scm": "/data/", "bridge": "/"}
#: the origins of the services of a stack in this process without ports: clients reach them through WSGI transports
IN_PROCESS_URLS = {name: f"http://{name}.sandbox" for name in (*MOCKS, "bridge")}


@dataclass
class Clients:
    """Clients for one stack: typed clients on both mocks, their control planes, and the bridge's admin API.

    ``bridge`` is an ``httpx.Client`` on the bridge's origin (``/api/maps`` ...), None when there is no bridge.
    Close them with :meth:`close` (or a ``with`` block).
    """

    sales: SalesClient
    scm: ScmClient
    bridge: httpx.Client | None
    control: dict[str, ControlClient]
    urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def connect(
        cls,
        urls: Mapping[str, str],
        transports: Mapping[str, httpx.BaseTransport] | None = None,
        *,
        auth: httpx.Auth | None = None,
        **extra: Any,
    ) -> Self:
        """Clients on the services at ``urls`` (through ``transports[name]`` when given); a subclass's own fields
        come as ``extra``. No bridge client without a bridge URL or transport.

        ``auth`` gets their bearer tokens; by default the well-known development app's, from the identity service
        each service names when it answers 401 (:class:`sandbox.clients.ClientCredentials`)."""
        transports = transports or {}
        auth = auth or ClientCredentials()
        bridge = None
        if urls.get("bridge") or transports.get("bridge") is not None:
            bridge = httpx.Client(
                base_url=urls.get("bridge") or IN_PROCESS_URLS["bridge"],
                transport=transports.get("bridge"),
                timeout=120.0,
                auth=auth,
            )
        return cls(
            sales=SalesClient(urls["sales"], transport=transports.get("sales"), auth=auth),
            scm=ScmClient(urls["scm"], transport=transports.get("scm"), auth=auth),
            bridge=bridge,
            control={name: ControlClient(urls[name], transport=transports.get(name), auth=auth) for name in MOCKS},
            urls=dict(urls),
            **extra,
        )

    def close(self) -> None:
        self.sales.close()
        self.scm.close()
        for control in self.control.values():
            control.close()
        if self.bridge is not None:
            self.bridge.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def service_origin(url: str, service: str) -> str:
    """A service's origin from what a user pastes: the origin itself, or the service root ``sandbox up`` prints
    (``http://127.0.0.1:5101/api/data/v9.2/`` -> ``http://127.0.0.1:5101``)."""
    base = url.rstrip("/")
    root = SERVICE_ROOTS[service].strip("/")
    return base[: -len(root) - 1] if root and base.endswith("/" + root) else base
