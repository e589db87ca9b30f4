"""The authentication hook of every app (mocks, their control planes, the bridge): bearer tokens checked like the
real services check them, the caller's identity resolved from the token.

Hook order on every app, outermost first: Host/Origin checks -> **authentication** (this) -> request log ->
journal -> faults -> the view. The hook is a ``before_request`` function, so it must be installed after the
Host/Origin check and before the journal and fault hooks.

What needs which token (with auth on):

- open: ``/_sandbox/health``; the browser pages (mocks: ``GET /`` asking for HTML, ``/_browse/...``,
  ``/_static/...``; bridge: ``/``, ``/maps/...``, ``/traces``, ``/console/...``, ``/_static/...``, ``/metrics``);
- the rest of ``/_sandbox/`` and the bridge's admin API (``/api/...``): an app with the ``Sandbox.Admin`` app
  role (the well-known development app has it); the bridge's registration (``Sandbox.Integration``) may also read
  the change feeds (``GET /_sandbox/changes``) and call ``/api/live``;
- the OData APIs: any app the service's :class:`~sandbox.auth.policies.CallerPolicy` accepts.

No token or a bad one: 401 in the service's error shape with ``WWW-Authenticate: Bearer
authorization_uri=<identity>/<tenant>/oauth2/authorize, resource_id=<service origin>/`` (and ``error``,
``error_description`` when a token was sent), from which clients discover the authority.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import flask
from flask import Flask, Response, request

from sandbox.auth.policies import CallerPolicy
from sandbox.auth.settings import CLAIMS_ENVIRON_KEY, IDENTITY_ENVIRON_KEY, AuthSettings
from sandbox.auth.tokens import KeySet, TokenRejected, TokenValidator
from sandbox.errors import SandboxError, Unauthorized, error_for_status
from sandbox.identity.registry import ADMIN_ROLE, INTEGRATION_ROLE
from sandbox.wellknown import DEV_CLIENT_ID

_GUARD_EXTENSION = "sandbox.auth"

RenderError = Callable[[SandboxError], Response]


class AuthGuard:
    """Checks one app's requests; kept in ``app.extensions['sandbox.auth']`` (the stack swaps :attr:`keys`)."""

    def __init__(
        self,
        settings: AuthSettings,
        render_error: RenderError,
        *,
        policy: CallerPolicy | None = None,
        is_open: Callable[[str, str], bool],
        keys: KeySet | None = None,
        api_roles: Callable[[str, str], frozenset[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.render_error = render_error
        self.policy = policy
        self.is_open = is_open
        self.api_roles = api_roles
        self.keys = keys or KeySet(settings.jwks_url, verify=settings.ca_file or True)
        self.validator = TokenValidator(self.keys, settings.tenant_id)

    def use_keys(self, keys: KeySet) -> None:
        """Verify with ``keys`` from now on (a stack in one process hands over its identity service's keys)."""
        self.keys = keys
        self.validator = TokenValidator(keys, self.settings.tenant_id)

    # ---- the hook ---------------------------------------------------------------------------------------------
    def check(self) -> Response | None:
        if not self.settings.enabled or self.is_open(request.method, request.path):
            return None
        try:
            claims = self._claims()
            roles = frozenset(claims.get("roles") or ())
            needed = self._needed_roles(request.method, request.path)
            if needed is not None:
                if not roles & needed:
                    raise error_for_status(
                        403,
                        f"The app '{claims.get('appid')}' needs the app role {' or '.join(sorted(needed))} for "
                        f"{request.path}.",
                        "",
                    )
                identity = str(claims.get("appid"))
            elif self.policy is not None:
                identity = self.policy.identity(claims, request.headers)
            else:
                identity = str(claims.get("appid"))
        except SandboxError as error:
            if error.status == 401:
                error.headers.setdefault("WWW-Authenticate", self.challenge(error))
            return self.render_error(error)
        request.environ[IDENTITY_ENVIRON_KEY] = identity
        request.environ[CLAIMS_ENVIRON_KEY] = claims
        return None

    def _needed_roles(self, method: str, path: str) -> frozenset[str] | None:
        """The app roles a route needs (None: the service's policy decides)."""
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            if method == "GET" and path.rstrip("/") == "/_sandbox/changes":
                return frozenset({ADMIN_ROLE, INTEGRATION_ROLE})
            return frozenset({ADMIN_ROLE})
        if self.api_roles is not None:
            return self.api_roles(method, path)
        return None

    def _claims(self) -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("The request needs a bearer token from the identity service (Authorization: Bearer).")
        if self.policy is not None and token.strip() in self.policy.placeholder_tokens and _from_loopback():
            return {"appid": DEV_CLIENT_ID, "azp": DEV_CLIENT_ID, "tid": self.settings.tenant_id, "roles": []}
        try:
            return self.validator.validate(token.strip(), [request.host_url, *self.settings.audiences])
        except TokenRejected as rejected:
            error = Unauthorized(rejected.message)
            error.headers["WWW-Authenticate"] = self.challenge(error, rejected.message)
            raise error from None

    def challenge(self, error: SandboxError, description: str | None = None) -> str:
        """``WWW-Authenticate`` of a 401: where to get a token, and for which resource."""
        parts = [
            f"Bearer authorization_uri={self.settings.authority}/oauth2/authorize",
            f"resource_id={request.host_url}",
        ]
        if description:
            text = description.replace('"', "'")
            parts.insert(0, 'Bearer error="invalid_token"')
            parts[1] = parts[1].removeprefix("Bearer ")
            parts.append(f'error_description="{text}"')
        return ", ".join(parts)


def _from_loopback() -> bool:
    """Whether the request came over a loopback connection (or in-process, where there is no peer)."""
    peer = request.remote_addr
    if not peer:
        return True
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def install_auth(
    app: Flask,
    settings: AuthSettings,
    render_error: RenderError,
    *,
    policy: CallerPolicy | None = None,
    is_open: Callable[[str, str], bool],
    api_roles: Callable[[str, str], frozenset[str]] | None = None,
) -> AuthGuard:
    """Install the authentication hook on ``app`` (see the module's docstring for where in the hook order)."""
    guard = AuthGuard(settings, render_error, policy=policy, is_open=is_open, api_roles=api_roles)
    app.extensions[_GUARD_EXTENSION] = guard
    app.before_request(guard.check)
    return guard


def auth_guard(app: Flask) -> AuthGuard | None:
    """The guard installed on ``app``, if any."""
    guard = app.extensions.get(_GUARD_EXTENSION)
    return guard if isinstance(guard, AuthGuard) else None


# ---- what each kind of app leaves open -------------------------------------------------------------------------
def mock_is_open(method: str, path: str) -> bool:
    """A mock's open routes: its health, and the browser pages (``GET /`` asking for HTML, data browser, static)."""
    if path == "/_sandbox/health" or path.startswith(("/_browse/", "/_static/")) or path in ("/_browse", "/_static"):
        return True
    if path == "/" and method in ("GET", "HEAD"):
        accept = flask.request.accept_mimetypes
        return accept.quality("text/html") > accept.quality("application/json")
    return False


def bridge_is_open(method: str, path: str) -> bool:
    """The bridge's open routes: health, metrics and the console pages."""
    if path in ("/", "/traces", "/metrics", "/_sandbox/health"):
        return True
    return path.startswith(("/maps/", "/console/", "/_static/", "/traces/"))


def bridge_api_roles(method: str, path: str) -> frozenset[str]:
    """The app roles the bridge's routes need: ``/api/live`` the bridge's own registration (the services call it
    with it) or an admin; everything else an admin."""
    if path.rstrip("/") == "/api/live":
        return frozenset({ADMIN_ROLE, INTEGRATION_ROLE})
    return frozenset({ADMIN_ROLE})
