"""Access tokens as Microsoft Entra ID issues them for client credentials: RS256 JWTs (PyJWT) with v1 claims.

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
from sandbox.identity.registry import AppRegistration

#: seconds a token lives (Entra's default for client credentials is about an hour)
TOKEN_LIFETIME = 3599


def issuer_for(tenant_id: str) -> str:
    """The ``iss`` of a v1 access token of ``tenant_id``."""
    return f"https://sts.windows.net/{tenant_id}/"


def access_token_claims(
    app: AppRegistration, tenant_id: str, audience: str, *, now: float | None = None, lifetime: int = TOKEN_LIFETIME
) -> dict[str, Any]:
    """The claims of an app-only (client credentials) access token for ``audience``."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer_for(tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "appid": app.client_id,
        "appidacr": "1",
        "idp": issuer_for(tenant_id),
        "oid": app.object_id,
        "sub": app.object_id,
        "tid": tenant_id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
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
