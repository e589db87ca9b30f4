"""The directory of the identity service: its tenant, the app registrations and the resources it issues tokens for.

An app registration is what Microsoft Entra ID keeps for a confidential client: a client id, a secret, a service
principal (whose object id becomes the token's ``oid``) and the app roles granted to it (the token's ``roles``).
The sandbox grants two roles of its own: :data:`ADMIN_ROLE` (control planes and the bridge's admin API) and
:data:`INTEGRATION_ROLE` (the bridge: the dual-write integration identity).

Resources are the service origins a token may be asked for (``scope=<origin>/.default`` or ``resource=<origin>``);
loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) are one host, so a token asked for ``localhost`` works on
``127.0.0.1``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from sandbox.wellknown import (
    BRIDGE_CLIENT_ID,
    BRIDGE_CLIENT_SECRET,
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    DEV_TENANT_ID,
)

#: app role of the apps that may use the control planes (``/_sandbox/...``) and the bridge's admin API
ADMIN_ROLE = "Sandbox.Admin"
#: app role of the bridge's registration: the services treat its tokens as the integration identity
INTEGRATION_ROLE = "Sandbox.Integration"
#: the name of the sandbox's tenant (a tenant may be named by id or by this domain)
DEV_TENANT_DOMAIN = "sandbox.onmicrosoft.com"
_NAMESPACE = uuid.UUID("5a4db0c0-0000-4000-8000-000000000000")
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}


class RegistryError(ValueError):
    """An app registration that cannot be accepted (said in one line for a user)."""


@dataclass
class AppRegistration:
    """One confidential client: who it is, its secret, and the app roles the tenant granted it."""

    client_id: str
    client_secret: str
    display_name: str
    roles: list[str] = field(default_factory=list)
    #: the object id of the app's service principal in the tenant (the token's ``oid``)
    object_id: str = ""

    def __post_init__(self) -> None:
        try:
            self.client_id = str(uuid.UUID(str(self.client_id)))
        except ValueError:
            raise RegistryError(f"client id {self.client_id!r} is not a GUID") from None
        if not self.client_secret or not isinstance(self.client_secret, str):
            raise RegistryError(f"app {self.client_id} needs a client secret")
        if not isinstance(self.roles, list) or not all(isinstance(role, str) for role in self.roles):
            raise RegistryError(f"app {self.client_id}: roles must be a list of names")
        self.object_id = self.object_id or str(uuid.uuid5(_NAMESPACE, f"sp:{self.client_id}"))

    def public(self) -> dict[str, Any]:
        """What the control plane shows: everything but the secret."""
        return {k: v for k, v in asdict(self).items() if k != "client_secret"}


def builtin_apps() -> list[AppRegistration]:
    """The well-known development app (an admin) and the bridge's registration (the integration identity)."""
    return [
        AppRegistration(DEV_CLIENT_ID, DEV_CLIENT_SECRET, "Sandbox developer", [ADMIN_ROLE]),
        AppRegistration(BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET, "Dual-write bridge", [INTEGRATION_ROLE]),
    ]


def normalize_resource(value: str) -> str:
    """A resource or scope as the origin it names: ``https://HOST:5101/.default`` -> ``https://host:5101``,
    loopback names folded to ``127.0.0.1``."""
    text = value.strip()
    if text.endswith("/.default"):
        text = text[: -len("/.default")]
    parts = urlsplit(text.rstrip("/"))
    host = (parts.hostname or "").lower()
    if not parts.scheme or not host:
        return text.rstrip("/").lower()
    if host in _LOOPBACK:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


class Directory:
    """The tenant, its app registrations and the resources it knows; thread-safe; saved to ``path`` when given."""

    def __init__(
        self,
        tenant_id: str = DEV_TENANT_ID,
        apps: Iterable[AppRegistration] = (),
        resources: Iterable[str] = (),
        path: Path | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.domains = {tenant_id.lower(), DEV_TENANT_DOMAIN}
        self.path = path
        self._lock = threading.Lock()
        self._apps: dict[str, AppRegistration] = {}
        self._added: dict[str, AppRegistration] = {}
        for app in [*builtin_apps(), *apps]:
            self._apps[app.client_id] = app
        self._resources = {normalize_resource(r) for r in resources}
        if path is not None and path.exists():
            for item in json.loads(path.read_text(encoding="utf-8")).get("apps", []):
                app = AppRegistration(**item)
                self._apps[app.client_id] = self._added[app.client_id] = app

    # ---- tenants ---------------------------------------------------------------------------------------------
    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in self.domains

    # ---- apps ------------------------------------------------------------------------------------------------
    def app(self, client_id: str) -> AppRegistration | None:
        with self._lock:
            return self._apps.get(client_id.strip().lower())

    def apps(self) -> list[AppRegistration]:
        with self._lock:
            return list(self._apps.values())

    def register(self, app: AppRegistration) -> AppRegistration:
        """Add (or replace) an app registration; kept in the data folder when the directory has one."""
        with self._lock:
            self._apps[app.client_id] = self._added[app.client_id] = app
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                data = {"apps": [asdict(a) for a in self._added.values()]}
                self.path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return app

    # ---- resources -------------------------------------------------------------------------------------------
    def add_resources(self, resources: Iterable[str]) -> None:
        with self._lock:
            self._resources.update(normalize_resource(r) for r in resources)

    def resource(self, requested: str) -> str | None:
        """The known resource ``requested`` names (scope or resource form), or None."""
        wanted = normalize_resource(requested)
        with self._lock:
            return wanted if wanted in self._resources else None

    def resources(self) -> list[str]:
        with self._lock:
            return sorted(self._resources)


def load_config(path: Path) -> dict[str, Any]:
    """An identity config file (YAML or JSON): ``apps: [{client_id, client_secret, display_name, roles}]`` and
    ``resources: [origin, ...]``. Raises :class:`RegistryError` with the reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read identity config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"identity config {path}: expected a mapping with 'apps' and 'resources'")
    apps = data.get("apps") or []
    resources = data.get("resources") or []
    if not isinstance(apps, list) or not isinstance(resources, list):
        raise RegistryError(f"identity config {path}: 'apps' and 'resources' must be lists")
    parsed = []
    for item in apps:
        if not isinstance(item, dict):
            raise RegistryError(f"identity config {path}: each app is a mapping")
        try:
            parsed.append(
                AppRegistration(
                    client_id=item.get("client_id", ""),
                    client_secret=item.get("client_secret", ""),
                    display_name=str(item.get("display_name") or item.get("name") or "app"),
                    roles=list(item.get("roles") or []),
                )
            )
        except TypeError as exc:
            raise RegistryError(f"identity config {path}: {exc}") from exc
    return {"apps": parsed, "resources": [str(r) for r in resources]}
