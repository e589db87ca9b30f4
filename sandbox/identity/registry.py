"""The directory of the identity service: its tenant, the app registrations, the users and the resources it issues
tokens for.

An app registration is what Microsoft Entra ID keeps for a confidential client: a client id, a secret, a service
principal (whose object id becomes the token's ``oid``) and the app roles granted to it (the token's ``roles``).
The sandbox grants two roles of its own: :data:`ADMIN_ROLE` (control planes and the bridge's admin API) and
:data:`INTEGRATION_ROLE` (the bridge: the dual-write integration identity).

A user account is what Entra keeps for a member of the tenant: a user principal name (the sign-in name), a display
name, an object id (the token's ``oid``; the services map it to their users) and a password. Users sign in
through an app: a *public client* (``public_client``, Entra's "Allow public client flows") without a secret, or a
confidential one with its secret; the well-known public client and the well-known user work from the start.

Resources are the service origins a token may be asked for (``scope=<origin>/.default`` or ``resource=<origin>``);
loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) are one host, so a token asked for ``localhost`` works on
``127.0.0.1``.
"""

from __future__ import annotations

import json
import os
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
#: The tenant segment ``adfs`` names the sandbox's tenant too. MSAL Python's username/password call first asks
#: ``https://<authority host>/common/userrealm/...`` on port 443 whatever the authority's port (it keeps the host
#: name only), which a sandbox on :5100 cannot answer; for an AD FS authority (``.../adfs``) MSAL skips that call.
#: So ``https://127.0.0.1:5100/adfs`` is the authority MSAL Python's ROPC works with (see docs/auth.md).
ADFS_ALIAS = "adfs"
_NAMESPACE = uuid.UUID("5a4db0c0-0000-4000-8000-000000000000")
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}


#: the well-known public client (Entra's "Allow public client flows": no secret) for user sign-in from scripts,
#: MSAL's PublicClientApplication and browsers; loopback redirect URIs on any port, as Entra allows native apps
DEV_PUBLIC_CLIENT_ID = "5a4db0c0-9c11-4000-8000-00000000c0de"
#: the well-known development user: public on purpose, like the development app's secret
DEV_USER_UPN = "developer@sandbox.onmicrosoft.com"
DEV_USER_PASSWORD = "sandbox-dev-password~not-for-production"
DEV_USER_OBJECT_ID = "5a4db0c0-05e4-4000-8000-0000000005e4"


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
    #: Entra's "Allow public client flows": the app signs users in without a secret (and must not send one)
    public_client: bool = False
    #: where the authorization endpoint may send the user back with a code (public clients: any loopback URI too)
    redirect_uris: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.client_id = str(uuid.UUID(str(self.client_id)))
        except ValueError:
            raise RegistryError(f"client id {self.client_id!r} is not a GUID") from None
        if self.public_client:
            self.client_secret = self.client_secret or ""
        elif not self.client_secret or not isinstance(self.client_secret, str):
            raise RegistryError(f"app {self.client_id} needs a client secret (or public_client: true)")
        if not isinstance(self.redirect_uris, list) or not all(isinstance(u, str) for u in self.redirect_uris):
            raise RegistryError(f"app {self.client_id}: redirect_uris must be a list of URIs")
        if not isinstance(self.roles, list) or not all(isinstance(role, str) for role in self.roles):
            raise RegistryError(f"app {self.client_id}: roles must be a list of names")
        self.object_id = self.object_id or str(uuid.uuid5(_NAMESPACE, f"sp:{self.client_id}"))

    def public(self) -> dict[str, Any]:
        """What the control plane shows: everything but the secret."""
        return {k: v for k, v in asdict(self).items() if k != "client_secret"}

    def allows_redirect(self, uri: str) -> bool:
        """Whether the authorization endpoint may send a code to ``uri``: a registered URI, or for a public client
        any ``http`` loopback URI (Entra ignores the port of loopback redirect URIs of native apps)."""
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        return self.public_client and parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK


@dataclass
class UserAccount:
    """One member of the tenant: sign-in name, display name, object id (the token's ``oid``) and password."""

    user_principal_name: str
    password: str
    display_name: str = ""
    object_id: str = ""
    given_name: str = ""
    surname: str = ""
    #: Entra's "Account enabled": a disabled user cannot sign in (AADSTS50057)
    account_enabled: bool = True

    def __post_init__(self) -> None:
        upn = str(self.user_principal_name or "").strip()
        if upn.count("@") != 1 or upn.startswith("@") or upn.endswith("@") or " " in upn:
            raise RegistryError(f"user principal name {upn!r} is not of the form name@domain")
        self.user_principal_name = upn
        if not isinstance(self.password, str) or not self.password:
            raise RegistryError(f"user {upn} needs a password")
        try:
            self.object_id = str(uuid.UUID(str(self.object_id))) if self.object_id else ""
        except ValueError:
            raise RegistryError(f"user {upn}: object id {self.object_id!r} is not a GUID") from None
        self.object_id = self.object_id or str(uuid.uuid5(_NAMESPACE, f"user:{upn.lower()}"))
        self.display_name = str(self.display_name or upn.split("@", 1)[0])
        self.account_enabled = bool(self.account_enabled)

    def public(self) -> dict[str, Any]:
        """What the control plane shows: everything but the password."""
        return {k: v for k, v in asdict(self).items() if k != "password"}


def builtin_apps() -> list[AppRegistration]:
    """The well-known development app (an admin), the bridge's registration (the integration identity) and the
    well-known public client (user sign-in)."""
    return [
        AppRegistration(DEV_CLIENT_ID, DEV_CLIENT_SECRET, "Sandbox developer", [ADMIN_ROLE]),
        AppRegistration(BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET, "Dual-write bridge", [INTEGRATION_ROLE]),
        AppRegistration(DEV_PUBLIC_CLIENT_ID, "", "Sandbox public client", public_client=True),
    ]


def builtin_users() -> list[UserAccount]:
    """The well-known development user."""
    return [
        UserAccount(
            DEV_USER_UPN,
            DEV_USER_PASSWORD,
            "Sandbox Developer",
            DEV_USER_OBJECT_ID,
            given_name="Sandbox",
            surname="Developer",
        )
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
    """The tenant, its app registrations, users and the resources it knows; thread-safe. Apps and users added at
    run time are saved to ``path`` (``apps.json``) and ``users.json`` beside it when a path is given."""

    def __init__(
        self,
        tenant_id: str = DEV_TENANT_ID,
        apps: Iterable[AppRegistration] = (),
        resources: Iterable[str] = (),
        path: Path | None = None,
        users: Iterable[UserAccount] = (),
    ) -> None:
        self.tenant_id = tenant_id
        self.domains = {tenant_id.lower(), DEV_TENANT_DOMAIN}
        self.path = path
        self.users_path = None if path is None else path.with_name("users.json")
        self._lock = threading.Lock()
        self._apps: dict[str, AppRegistration] = {}
        self._added: dict[str, AppRegistration] = {}
        self._users: dict[str, UserAccount] = {}
        self._added_users: dict[str, UserAccount] = {}
        for app in [*builtin_apps(), *apps]:
            self._apps[app.client_id] = app
        for user in [*builtin_users(), *users]:
            self._check_object_id(user)
            self._users[user.user_principal_name.lower()] = user
        self._resources = {normalize_resource(r) for r in resources}
        if path is not None and path.exists():
            for item in json.loads(path.read_text(encoding="utf-8")).get("apps", []):
                app = AppRegistration(**item)
                self._apps[app.client_id] = self._added[app.client_id] = app
        if self.users_path is not None and self.users_path.exists():
            for item in json.loads(self.users_path.read_text(encoding="utf-8")).get("users", []):
                user = UserAccount(**item)
                key = user.user_principal_name.lower()
                self._users[key] = self._added_users[key] = user

    # ---- tenants ---------------------------------------------------------------------------------------------
    def knows_tenant(self, tenant: str) -> bool:
        """Whether ``tenant`` names this tenant: its id, its domain, or :data:`ADFS_ALIAS`."""
        return tenant.lower() in self.domains or tenant.lower() == ADFS_ALIAS

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

    # ---- users -----------------------------------------------------------------------------------------------
    def user(self, user_principal_name: str) -> UserAccount | None:
        with self._lock:
            return self._users.get(user_principal_name.strip().lower())

    def users(self) -> list[UserAccount]:
        with self._lock:
            return list(self._users.values())

    def add_user(self, user: UserAccount) -> UserAccount:
        """Add (or replace) a user; kept in the data folder (``users.json``) when the directory has one."""
        with self._lock:
            self._check_object_id(user)
            key = user.user_principal_name.lower()
            self._users[key] = self._added_users[key] = user
            if self.users_path is not None:
                self.users_path.parent.mkdir(parents=True, exist_ok=True)
                data = {"users": [asdict(u) for u in self._added_users.values()]}
                _write_private(self.users_path, json.dumps(data, indent=2))
        return user

    def _check_object_id(self, user: UserAccount) -> None:
        """An object id names one user: another user's is refused (the services map users by it)."""
        for other in self._users.values():
            same_user = other.user_principal_name.lower() == user.user_principal_name.lower()
            if other.object_id == user.object_id and not same_user:
                raise RegistryError(f"object id {user.object_id} belongs to {other.user_principal_name}")

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


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (it holds passwords)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def load_config(path: Path) -> dict[str, Any]:
    """An identity config file (YAML or JSON): ``apps: [{client_id, client_secret, display_name, roles,
    public_client, redirect_uris}]``, ``users: [{user_principal_name, password, display_name, object_id}]`` and
    ``resources: [origin, ...]``. Raises :class:`RegistryError` with the reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read identity config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"identity config {path}: expected a mapping with 'apps' and 'resources'")
    apps = data.get("apps") or []
    resources = data.get("resources") or []
    users = data.get("users") or []
    if not isinstance(apps, list) or not isinstance(resources, list) or not isinstance(users, list):
        raise RegistryError(f"identity config {path}: 'apps', 'users' and 'resources' must be lists")
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
                    public_client=bool(item.get("public_client", False)),
                    redirect_uris=list(item.get("redirect_uris") or []),
                )
            )
        except TypeError as exc:
            raise RegistryError(f"identity config {path}: {exc}") from exc
    parsed_users = []
    service_users = []
    for item in users:
        if not isinstance(item, dict):
            raise RegistryError(f"identity config {path}: each user is a mapping")
        try:
            user = user_from(item)
            service_users.append(service_user(user, item))
        except RegistryError as exc:
            raise RegistryError(f"identity config {path}: {exc}") from None
        parsed_users.append(user)
    return {
        "apps": parsed,
        "users": parsed_users,
        "service_users": service_users,
        "resources": [str(r) for r in resources],
    }


def service_user(user: UserAccount, item: dict[str, Any]) -> dict[str, Any]:
    """What the services know of a configured user from the start: its Sales security roles (``sales_roles``,
    default Salesperson; ``[]`` for none) and its F&O user id (``scm_user_id``, default the name before the @)."""
    roles = item.get("sales_roles", ["Salesperson"])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise RegistryError(f"user {user.user_principal_name}: sales_roles must be a list of security role names")
    scm_user = item.get("scm_user_id") or user.user_principal_name.split("@", 1)[0]
    if not isinstance(scm_user, str):
        raise RegistryError(f"user {user.user_principal_name}: scm_user_id must be a text")
    return {
        "object_id": user.object_id,
        "user_principal_name": user.user_principal_name,
        "given_name": user.given_name or user.display_name,
        "surname": user.surname,
        "sales_roles": list(roles),
        "scm_user_id": scm_user,
    }


def user_from(item: dict[str, Any]) -> UserAccount:
    """A user account from a config entry or a control-plane body (``upn`` short for ``user_principal_name``)."""
    try:
        return UserAccount(
            user_principal_name=str(item.get("user_principal_name") or item.get("upn") or ""),
            password=item.get("password") or "",
            display_name=str(item.get("display_name") or ""),
            object_id=str(item.get("object_id") or ""),
            given_name=str(item.get("given_name") or ""),
            surname=str(item.get("surname") or ""),
            account_enabled=bool(item.get("account_enabled", True)),
        )
    except TypeError as exc:
        raise RegistryError(str(exc)) from None
