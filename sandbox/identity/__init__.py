"""The identity service: an Entra-shaped OAuth 2.0 token service for the sandbox's services (client credentials for
apps; password, authorization code with PKCE, refresh token and device code for users).

See :mod:`sandbox.identity.app` for its routes and ``docs/auth.md`` for how the services check its tokens.
"""

from sandbox.identity.app import IdentityConfig, IdentityRuntime, create_app, identity_runtime
from sandbox.identity.keys import SigningKey
from sandbox.identity.registry import (
    ADMIN_ROLE,
    DEV_PUBLIC_CLIENT_ID,
    DEV_TENANT_DOMAIN,
    DEV_USER_OBJECT_ID,
    DEV_USER_PASSWORD,
    DEV_USER_UPN,
    INTEGRATION_ROLE,
    AppRegistration,
    Directory,
    RegistryError,
    UserAccount,
    load_config,
    normalize_resource,
)
from sandbox.identity.tokens import (
    TOKEN_LIFETIME,
    USER_IMPERSONATION,
    access_token_claims,
    issuer_for,
    mint,
    sign,
    user_token_claims,
)

__all__ = [
    "ADMIN_ROLE",
    "DEV_PUBLIC_CLIENT_ID",
    "DEV_TENANT_DOMAIN",
    "DEV_USER_OBJECT_ID",
    "DEV_USER_PASSWORD",
    "DEV_USER_UPN",
    "INTEGRATION_ROLE",
    "TOKEN_LIFETIME",
    "USER_IMPERSONATION",
    "AppRegistration",
    "Directory",
    "IdentityConfig",
    "IdentityRuntime",
    "RegistryError",
    "SigningKey",
    "UserAccount",
    "access_token_claims",
    "create_app",
    "identity_runtime",
    "issuer_for",
    "load_config",
    "mint",
    "normalize_resource",
    "sign",
    "user_token_claims",
]
