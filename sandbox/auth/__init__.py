"""Authentication of the services: tokens from the identity service checked as Dataverse and F&O check them.

:mod:`~sandbox.auth.settings` (what the stack hands each app), :mod:`~sandbox.auth.tokens` (signature, issuer,
audience, lifetime), :mod:`~sandbox.auth.policies` (who the token's app is in each service) and
:mod:`~sandbox.auth.guard` (the request hook). See ``docs/auth.md``.
"""

from sandbox.auth.guard import (
    AuthGuard,
    auth_guard,
    bridge_api_roles,
    bridge_is_open,
    install_auth,
    mock_is_open,
)
from sandbox.auth.policies import CallerPolicy, DataverseAccess, FnoAccess
from sandbox.auth.service import install_service_auth
from sandbox.auth.settings import AUTH_OPTION, CLAIMS_ENVIRON_KEY, IDENTITY_ENVIRON_KEY, AuthSettings, resolved_identity
from sandbox.auth.tokens import KeySet, TokenRejected, TokenValidator

__all__ = [
    "AUTH_OPTION",
    "CLAIMS_ENVIRON_KEY",
    "IDENTITY_ENVIRON_KEY",
    "AuthGuard",
    "AuthSettings",
    "CallerPolicy",
    "DataverseAccess",
    "FnoAccess",
    "KeySet",
    "TokenRejected",
    "TokenValidator",
    "auth_guard",
    "bridge_api_roles",
    "bridge_is_open",
    "install_auth",
    "install_service_auth",
    "mock_is_open",
    "resolved_identity",
]
