"""The identity service: an Entra-shaped OAuth 2.0 token service (client credentials) for the sandbox's services.

See :mod:`sandbox.identity.app` for its routes and ``docs/auth.md`` for how the services check its tokens.
"""

from sandbox.identity.app import IdentityConfig, IdentityRuntime, create_app, identity_runtime
from sandbox.identity.keys import SigningKey
from sandbox.identity.registry import (
    ADMIN_ROLE,
    DEV_TENANT_DOMAIN,
    INTEGRATION_ROLE,
    AppRegistration,
    Directory,
    RegistryError,
    load_config,
    normalize_resource,
)
from sandbox.identity.tokens import TOKEN_LIFETIME, access_token_claims, issuer_for, mint, sign

__all__ = [
    "ADMIN_ROLE",
    "DEV_TENANT_DOMAIN",
    "INTEGRATION_ROLE",
    "TOKEN_LIFETIME",
    "AppRegistration",
    "Directory",
    "IdentityConfig",
    "IdentityRuntime",
    "RegistryError",
    "SigningKey",
    "access_token_claims",
    "create_app",
    "identity_runtime",
    "issuer_for",
    "load_config",
    "mint",
    "normalize_resource",
    "sign",
]
