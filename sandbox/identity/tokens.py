"""Access tokens as Microsoft Entra ID issues them: RS256 JWTs (PyJWT) with v1 claims, app-only (client credentials:
``roles``, no ``scp``) or delegated (a signed-in user: ``scp``, ``upn``, ``name``, the user's ``oid``, no ``roles``);
ID tokens (v2) and refresh tokens for the user flows.

Dataverse and F&O accept v1 access tokens (``ver`` 1.0, ``iss`` ``https://sts.windows.net/<tenant>/``), whichever
endpoint (v1 ``/oauth2/token`` or v2 ``/oauth2/v2.0/token``) issued them, because their service principals do not
ask for v2 tokens; the sandbox issues the same for every resource.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from sandbox.identity.keys import SigningKey
from sandbox.identity.registry import AppRegistration, UserAccount

#: seconds a token lives (Entra's default for client credentials is about an hour)
TOKEN_LIFETIME = 3599


def issuer_for(tenant_id: str) -> str:
    """The ``iss`` of a v1 access token of ``tenant_id``."""
    return f"https://sts.windows.net/{tenant_id}/"


def _v1_access_claims(tenant_id: str, audience: str, now: float | None, lifetime: int) -> dict[str, Any]:
    """What every v1 access token carries, app-only or delegated: audience, issuer, times, tenant, token id."""
    issued = int(time.time() if now is None else now)
    return {
        "aud": audience,
        "iss": issuer_for(tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "tid": tenant_id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }


def access_token_claims(
    app: AppRegistration, tenant_id: str, audience: str, *, now: float | None = None, lifetime: int = TOKEN_LIFETIME
) -> dict[str, Any]:
    """The claims of an app-only (client credentials) access token for ``audience``."""
    claims = _v1_access_claims(tenant_id, audience, now, lifetime) | {
        "appid": app.client_id,
        "appidacr": "1",
        "idp": issuer_for(tenant_id),
        "oid": app.object_id,
        "sub": app.object_id,
    }
    if app.roles:
        claims["roles"] = list(app.roles)
    return claims


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    """``claims`` as a compact RS256 JWS with the key's ``kid`` and ``x5t`` in the header."""
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid})


def mint(
    app: AppRegistration,
    tenant_id: str,
    audience: str,
    key: SigningKey,
    *,
    now: float | None = None,
    lifetime: int = TOKEN_LIFETIME,
) -> str:
    """A signed access token of ``app`` for ``audience`` (tests pass ``now`` in the past for an expired one)."""
    return sign(access_token_claims(app, tenant_id, audience, now=now, lifetime=lifetime), key)


#: seconds a refresh token lives (Entra's default for a single-page app is a day, 90 days for other apps)
REFRESH_LIFETIME = 90 * 24 * 3600
#: the delegated permission Dataverse and F&O publish (``<resource>/user_impersonation``)
USER_IMPERSONATION = "user_impersonation"


def user_token_claims(
    user: UserAccount,
    app: AppRegistration,
    tenant_id: str,
    audience: str,
    *,
    scopes: str = USER_IMPERSONATION,
    now: float | None = None,
    lifetime: int = TOKEN_LIFETIME,
) -> dict[str, Any]:
    """The claims of a delegated (user) access token of ``app`` on behalf of ``user`` for ``audience``."""
    claims = _v1_access_claims(tenant_id, audience, now, lifetime) | {
        "acr": "1",
        "amr": ["pwd"],
        "appid": app.client_id,
        "appidacr": "0" if app.public_client else "1",
        "name": user.display_name,
        "oid": user.object_id,
        "scp": scopes,
        "sub": user.object_id,
        "unique_name": user.user_principal_name,
        "upn": user.user_principal_name,
    }
    if user.given_name:
        claims["given_name"] = user.given_name
    if user.surname:
        claims["family_name"] = user.surname
    return claims


def id_token_claims(
    user: UserAccount, app: AppRegistration, issuer: str, tenant_id: str, *, nonce: str | None = None
) -> dict[str, Any]:
    """The claims of a v2 ID token for ``app`` (``aud`` the client id, ``iss`` the v2 issuer of the authority)."""
    issued = int(time.time())
    claims: dict[str, Any] = {
        "aud": app.client_id,
        "iss": issuer,
        "iat": issued,
        "nbf": issued,
        "exp": issued + TOKEN_LIFETIME,
        "name": user.display_name,
        "oid": user.object_id,
        "preferred_username": user.user_principal_name,
        "sub": user.object_id,
        "tid": tenant_id,
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return claims


def refresh_token_claims(user: UserAccount, app: AppRegistration, tenant_id: str, scope: str) -> dict[str, Any]:
    """What a refresh token carries: who, through which app, for what (Entra's are opaque; clients never read them)."""
    issued = int(time.time())
    return {
        "typ": "refresh",
        "sub": user.object_id,
        "upn": user.user_principal_name,
        "appid": app.client_id,
        "scope": scope,
        "tid": tenant_id,
        "iat": issued,
        "exp": issued + REFRESH_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
