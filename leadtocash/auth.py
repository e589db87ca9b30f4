"""Authentication in a stack: the identity service, the settings every service checks tokens with, and the
credentials the stack's own callers (the bridge, the live-sync senders, :class:`~leadtocash.clients.Clients`) use.

:func:`leadtocash.stack.start_stack` calls these; the identity service always runs (``sandbox token`` and real
clients need it), the services check tokens only when ``StackConfig.auth`` is on (``sandbox up`` by default;
in-process stacks of tests and ``sandbox demo`` leave it off).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import httpx
from flask import Flask

from leadtocash.clients import MOCKS
from sandbox.auth import AUTH_OPTION, AuthSettings, KeySet, auth_guard
from sandbox.clients.auth import ClientCredentials
from sandbox.identity import (
    DEV_PUBLIC_CLIENT_ID,
    DEV_USER_PASSWORD,
    DEV_USER_UPN,
    IdentityConfig,
    create_app,
    identity_runtime,
)
from sandbox.wellknown import (
    BRIDGE_CLIENT_ID,
    BRIDGE_CLIENT_SECRET,
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    DEV_TENANT_ID,
)

if TYPE_CHECKING:
    from leadtocash.stack import Stack, StackConfig

#: where `sandbox up` serves the identity service
IDENTITY_PORT = 5100
#: the identity service's origin in a stack without ports
IN_PROCESS_IDENTITY_URL = "http://identity.sandbox"


def build_identity(config: StackConfig) -> Flask:
    """The identity app of a stack: its signing key and run-time app registrations and users in
    ``<data dir>/identity`` (in memory with ``memory``), the apps and users of the config file registered too."""
    folder = None if config.memory or config.data_dir is None else config.data_dir / "identity"
    return create_app(
        IdentityConfig(
            data_dir=folder,
            apps=list(config.identity_apps),
            users=list(config.identity_users),
            require_admin=config.auth,
        )
    )


def settings_for(stack: Stack, config: StackConfig) -> AuthSettings:
    """What every service of the stack checks tokens with."""
    return AuthSettings(
        enabled=config.auth,
        identity_url=stack.urls["identity"],
        tenant_id=identity_runtime(stack.identity).tenant_id if stack.identity is not None else DEV_TENANT_ID,
        ca_file=None if stack.ca_file is None else str(stack.ca_file),
        users=list(config.identity_service_users),
    )


def with_auth_options(config: StackConfig, settings: AuthSettings) -> StackConfig:
    """``config`` with the mocks' ``auth`` service option set (child processes get it through their config)."""
    options = {name: {**config.options.get(name, {}), AUTH_OPTION: settings.to_options()} for name in MOCKS}
    return dataclasses.replace(config, options={**config.options, **options})


def hand_keys(stack: Stack, app: Flask) -> None:
    """Let an app of this process verify with the identity service's keys directly (no HTTP round trip)."""
    guard = auth_guard(app)
    if guard is not None and stack.identity is not None:
        guard.use_keys(KeySet(fetch=identity_runtime(stack.identity).jwks))


def register_resources(stack: Stack) -> None:
    """Make every service origin of the stack a resource tokens may be asked for."""
    if stack.identity is not None:
        identity_runtime(stack.identity).directory.add_resources(
            url for name, url in stack.urls.items() if name != "identity"
        )


def credentials(
    stack: Stack, client_id: str = DEV_CLIENT_ID, client_secret: str = DEV_CLIENT_SECRET
) -> ClientCredentials:
    """Client credentials on the stack's identity service (through its WSGI transport when it is not served)."""
    tenant = identity_runtime(stack.identity).tenant_id if stack.identity is not None else DEV_TENANT_ID
    return ClientCredentials(
        client_id,
        client_secret,
        authority=f"{stack.urls['identity']}/{tenant}",
        discover=False,
        transport=stack.transports.get("identity"),
        verify=str(stack.ca_file) if stack.ca_file is not None else True,
    )


def bridge_credentials(stack: Stack) -> ClientCredentials:
    """The bridge's own registration (the integration identity), for its clients and the live-sync senders."""
    return credentials(stack, BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET)


def identity_transport(app: Flask) -> httpx.BaseTransport:
    return httpx.WSGITransport(app=app)


def identity_lines(stack: Stack) -> list[str]:
    """What ``sandbox up`` prints about authentication: the identity service and the well-known credentials (public
    on purpose, as Azurite prints its account key)."""
    tenant = identity_runtime(stack.identity).tenant_id if stack.identity is not None else DEV_TENANT_ID
    lines = [f"identity {stack.urls['identity']}"]
    if stack.auth:
        lines.append(
            f"auth   on  tenant {tenant}  client id {DEV_CLIENT_ID}  secret {DEV_CLIENT_SECRET}  "
            "(TOKEN=$(sandbox token))"
        )
        lines.append(f"user   {DEV_USER_UPN}  password {DEV_USER_PASSWORD}  (public client {DEV_PUBLIC_CLIENT_ID})")
    else:
        lines.append("auth   off  any caller, no token needed (X-Sandbox-Identity names the caller)")
    return lines
