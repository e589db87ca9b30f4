"""Validating bearer tokens as the Microsoft services do: signature by the tenant's published keys (JWKS), issuer,
audience, lifetime. Failures carry the message Microsoft.IdentityModel gives (``IDX10223: Lifetime validation
failed. The token is expired. ...``), which the real services put in their 401 challenge.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import jwt
from jwt.algorithms import RSAAlgorithm

from sandbox.identity.registry import normalize_resource
from sandbox.identity.tokens import issuer_for

Claims = dict[str, Any]


class TokenRejected(Exception):
    """A token the service refuses: the IdentityModel message, and whether it was absent altogether."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


class KeySet:
    """The identity service's signing keys by key id, fetched from its JWKS (again when an unknown ``kid`` shows
    up: the identity service made a new key), or from ``fetch`` (a stack in one process hands the keys over)."""

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        fetch: Callable[[], dict[str, Any]] | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: str | bool = True,
    ) -> None:
        self.jwks_url = jwks_url
        self._fetch = fetch
        self.transport = transport
        self.verify = verify
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        if self._fetch is not None:
            return self._fetch()
        if not self.jwks_url:
            return {"keys": []}
        verify = ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else self.verify
        with httpx.Client(transport=self.transport, verify=verify, timeout=10.0) as client:
            response = client.get(self.jwks_url)
            response.raise_for_status()
            return dict(response.json())

    def key(self, kid: str) -> Any:
        """The public key of ``kid``, or None when the identity service does not publish it."""
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            # an unknown kid refetches, but not more than once a second (a flood of forged kids costs nothing)
            if time.monotonic() - self._fetched_at < 1.0 and self._keys:
                return None
            try:
                document = self._load()
            except (httpx.HTTPError, ValueError):
                return None
            self._fetched_at = time.monotonic()
            self._keys = {
                str(item.get("kid")): RSAAlgorithm.from_jwk(item)
                for item in document.get("keys", [])
                if isinstance(item, dict) and item.get("kty") == "RSA"
            }
            return self._keys.get(kid)


def _utc(seconds: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(seconds), dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return str(seconds)


class TokenValidator:
    """Checks a compact JWS: RS256 by a published key, ``iss`` of the tenant, ``aud`` one of the service's origins,
    ``nbf``/``exp`` (five minutes of clock skew, as IdentityModel allows). Valid tokens are cached until they
    expire, so a client's thousand requests verify one signature."""

    CLOCK_SKEW = 300

    def __init__(self, keys: KeySet, tenant_id: str) -> None:
        self.keys = keys
        self.tenant_id = tenant_id
        self.issuer = issuer_for(tenant_id)
        self._valid: OrderedDict[str, Claims] = OrderedDict()
        self._lock = threading.Lock()

    def validate(self, token: str, audiences: Iterable[str]) -> Claims:
        """The token's claims; raises :class:`TokenRejected` with IdentityModel's message."""
        accepted = {normalize_resource(a) for a in audiences if a}
        now = time.time()
        with self._lock:
            cached = self._valid.get(token)
        claims = cached if cached is not None else self._verify(token)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp + self.CLOCK_SKEW < now:
            raise TokenRejected(
                f"IDX10223: Lifetime validation failed. The token is expired. ValidTo (UTC): '{_utc(exp)}', "
                f"Current time (UTC): '{_utc(now)}'."
            )
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf - self.CLOCK_SKEW > now:
            raise TokenRejected(
                f"IDX10222: Lifetime validation failed. The token is not yet valid. ValidFrom (UTC): '{_utc(nbf)}', "
                f"Current time (UTC): '{_utc(now)}'."
            )
        audience = claims.get("aud")
        named = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and normalize_resource(a) in accepted for a in named):
            raise TokenRejected(
                f"IDX10214: Audience validation failed. Audiences: '{', '.join(str(a) for a in named)}'. Did not "
                f"match: validationParameters.ValidAudience: '{', '.join(sorted(accepted))}' or "
                "validationParameters.ValidAudiences: 'null'."
            )
        if cached is None:
            with self._lock:
                self._valid[token] = claims
                while len(self._valid) > 1024:
                    self._valid.popitem(last=False)
        return claims

    def _verify(self, token: str) -> Claims:
        if token.count(".") != 2:
            raise TokenRejected(
                "IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in JWS or JWE Compact "
                "Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload.EncodedSignature'."
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("IDX14102: Unable to decode the header as Base64Url encoded string.") from None
        kid = str(header.get("kid") or "")
        key = self.keys.key(kid)
        if key is None or header.get("alg") != "RS256":
            raise TokenRejected(
                f"IDX10503: Signature validation failed. Token does not have a kid. Keys tried: '[PII is hidden]'. "
                f"Number of keys in TokenValidationParameters: '0'. kid: '{kid}'."
                if not kid
                else f"IDX10511: Signature validation failed. Keys tried: '[PII is hidden]'. kid: '{kid}'. "
                "Exceptions caught: '[PII is hidden]'."
            )
        try:
            claims: Claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise TokenRejected(
                f"IDX10511: Signature validation failed. Keys tried: '[PII is hidden]'. kid: '{kid}'. "
                "Exceptions caught: '[PII is hidden]'."
            ) from None
        if claims.get("iss") != self.issuer or claims.get("tid") != self.tenant_id:
            raise TokenRejected(
                f"IDX10205: Issuer validation failed. Issuer: '{claims.get('iss')}'. Did not match: "
                f"validationParameters.ValidIssuer: '{self.issuer}' or validationParameters.ValidIssuers: 'null'."
            )
        return claims
