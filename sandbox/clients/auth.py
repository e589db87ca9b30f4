"""Bearer tokens for our clients: OAuth 2.0 client credentials from the sandbox's identity service, as an
:class:`httpx.Auth`.

Like Microsoft's clients, :class:`ClientCredentials` finds the authority from the service itself when it is not
told: a request without a token gets 401 with ``WWW-Authenticate: Bearer authorization_uri=<identity>/<tenant>/
oauth2/authorize, resource_id=<origin>/``, and the flow asks that authority for a token for that resource and sends
the request again. A stack without authentication never answers 401, so no token is ever asked for. Each instance
caches its tokens per authority and resource and the authority it discovered per service origin (not the process:
in-process stacks reuse names such as ``http://sales.sandbox`` with identity services of their own), and renews a
token five minutes before it expires.

The default credentials are the well-known development app's (:data:`sandbox.wellknown.DEV_CLIENT_ID`): public on
purpose, like Azurite's account key. Pass ``discover=False`` with a fixed ``authority`` for secrets of your own, so
they never go to an authority a server names.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.clients.tls import verify_option
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID

__all__ = ["DEFAULT_IDENTITY_URL", "ClientCredentials", "TokenError", "challenge_of", "fetch_token", "identity_of"]

#: where `sandbox up` serves the identity service
DEFAULT_IDENTITY_URL = "http://127.0.0.1:5100"
_RENEW_BEFORE = 300.0
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*("([^"]*)"|[^,\s]+)')


class TokenError(RuntimeError):
    """The identity service refused a token (its AADSTS error), or could not be reached."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class _Cached:
    token: str
    expires_at: float


def origin_of(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def challenge_of(response: httpx.Response) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer ...`` challenge (``authorization_uri``, ``resource_id``...)."""
    header = response.headers.get("WWW-Authenticate", "")
    if not header.lower().startswith("bearer"):
        return {}
    return {
        m.group(1).lower(): (m.group(3) if m.group(3) is not None else m.group(2))
        for m in _CHALLENGE_PARAM.finditer(header)
    }


def identity_of(
    url: str, *, timeout: float = 10.0, verify: Any = True, transport: httpx.BaseTransport | None = None
) -> str | None:
    """The origin of the identity service that the service at ``url`` names in its 401 challenge
    (``authorization_uri=<identity>/<tenant>/oauth2/authorize``), as ``http://127.0.0.1:5100``; None when it
    asks for no token, names no such authority, or cannot be reached."""
    try:
        with httpx.Client(timeout=timeout, verify=verify, transport=transport) as client:
            response = client.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != 401:
        return None
    named = challenge_of(response).get("authorization_uri", "")
    if not named.endswith("/oauth2/authorize"):
        return None
    authority = named[: -len("/oauth2/authorize")].rstrip("/")
    identity, _, tenant = authority.rpartition("/")
    return identity if tenant and "://" in identity else None


def fetch_token(
    authority: str,
    client_id: str,
    client_secret: str,
    scope: str,
    *,
    transport: httpx.BaseTransport | None = None,
    verify: Any = True,
    timeout: float = 30.0,
) -> tuple[str, float]:
    """One client-credentials token from ``authority`` (``<identity>/<tenant>``) for ``scope``: (token, expires_at)."""
    url = f"{authority.rstrip('/')}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret, "scope": scope}
    try:
        with httpx.Client(transport=transport, verify=verify_option(verify), timeout=timeout) as http:
            response = http.post(url, data=form)
    except httpx.HTTPError as exc:
        raise TokenError(f"cannot reach the identity service at {authority}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        description = body.get("error_description", "").split("\r\n")[0] if isinstance(body, dict) else response.text
        raise TokenError(
            f"the identity service refused a token ({response.status_code}): {description}", response.status_code, body
        )
    return str(body["access_token"]), time.time() + float(body.get("expires_in", 3599))


class ClientCredentials(httpx.Auth):
    """Client-credentials bearer tokens for every request, asked of ``authority`` or of the authority the service
    names in its 401 challenge (``discover``); ``transport`` and ``verify`` are for the calls to the identity service
    (``transport`` reaches an identity app in this process)."""

    def __init__(
        self,
        client_id: str = DEV_CLIENT_ID,
        client_secret: str = DEV_CLIENT_SECRET,
        *,
        authority: str | None = None,
        discover: bool = True,
        transport: httpx.BaseTransport | None = None,
        verify: Any = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.authority = authority.rstrip("/") if authority else None
        self.discover = discover
        self.transport = transport
        self.verify = verify
        self._tokens: dict[tuple[str, str], _Cached] = {}
        self._authorities: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_identity(
        cls,
        identity_url: str = DEFAULT_IDENTITY_URL,
        client_id: str = DEV_CLIENT_ID,
        client_secret: str = DEV_CLIENT_SECRET,
        *,
        tenant_id: str = DEV_TENANT_ID,
        **kwargs: Any,
    ) -> ClientCredentials:
        """Credentials with the authority ``<identity_url>/<tenant_id>`` fixed."""
        return cls(client_id, client_secret, authority=f"{identity_url.rstrip('/')}/{tenant_id}", **kwargs)

    def token(self, resource: str, authority: str | None = None, *, fresh: bool = False) -> str:
        """A token for ``resource`` (an origin), from the cache unless ``fresh`` or about to expire."""
        authority = authority or self.authority
        if authority is None:
            raise TokenError(f"no identity service known for {resource}")
        key = (authority, resource)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and not fresh and cached.expires_at - _RENEW_BEFORE > time.time():
            return cached.token
        token, expires_at = fetch_token(
            authority,
            self.client_id,
            self.client_secret,
            f"{resource}/.default",
            transport=self.transport,
            verify=self.verify,
        )
        with self._lock:
            self._tokens[key] = _Cached(token, expires_at)
        return token

    def _authority_for(self, origin: str) -> str | None:
        if self.authority is not None:
            return self.authority
        with self._lock:
            return self._authorities.get(origin)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        origin = origin_of(request.url)
        authority = self._authority_for(origin)
        if authority is not None:
            try:
                request.headers["Authorization"] = f"Bearer {self.token(origin, authority)}"
            except TokenError:
                pass  # the service says whether it needs a token, and where to get it
        response = yield request
        if response.status_code != 401:
            return
        challenge = challenge_of(response)
        named = challenge.get("authorization_uri", "")
        if not named.endswith("/oauth2/authorize"):
            return
        named_authority = named[: -len("/oauth2/authorize")].rstrip("/")
        if authority is not None and named_authority != authority and not self.discover:
            return
        if self.authority is None and not self.discover:
            return
        authority = named_authority if self.authority is None else self.authority
        with self._lock:
            self._authorities[origin] = authority
        resource = challenge.get("resource_id", origin).rstrip("/") or origin
        request.headers["Authorization"] = f"Bearer {self.token(resource, authority, fresh=True)}"
        yield request
