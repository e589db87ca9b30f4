"""The identity service: a Microsoft Entra ID look-alike issuing client-credentials tokens for the services.

=======  ==================================================  ==========================================================
Method   Path                                                Behaviour
=======  ==================================================  ==========================================================
POST     /{tenant}/oauth2/v2.0/token                         client credentials, ``scope=<origin>/.default`` -> token
POST     /{tenant}/oauth2/token                              v1: client credentials, ``resource=<origin>`` -> token
GET      /{tenant}/v2.0/.well-known/openid-configuration     OpenID discovery (v2); ``/{tenant}/.well-known/...`` v1
GET      /{tenant}/discovery/v2.0/keys                       the signing keys (JWKS); also ``/{tenant}/discovery/keys``
GET      /common/discovery/instance                          MSAL's instance discovery, answered for this host
GET      /_sandbox/health                                    200 ``{"status": "ok", "service": "identity"}``
GET      /_sandbox/apps                                      the app registrations (no secrets); admin token
POST     /_sandbox/apps                                      register an app ``{display_name, roles?, client_id?,
                                                             client_secret?, public_client?, redirect_uris?}`` -> 201
                                                             with its secret; admin token
GET      /_sandbox/users                                     the users (no passwords); admin token
POST     /_sandbox/users                                     add a user ``{user_principal_name, password?,
                                                             display_name?, object_id?, account_enabled?}`` -> 201 with
                                                             its password; admin token
=======  ==================================================  ==========================================================

User sign-in (password, authorization code with PKCE, refresh token, device code) is :mod:`sandbox.identity.signin`.

The tenant is named by its id or its domain (``sandbox.onmicrosoft.com``). Clients authenticate with
``client_id``/``client_secret`` in the form body or HTTP Basic (``client_secret_basic``), as Entra accepts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from sandbox.errors import SandboxError
from sandbox.identity import errors
from sandbox.identity.errors import AadstsError
from sandbox.identity.keys import SigningKey
from sandbox.identity.registry import (
    ADFS_ALIAS,
    ADMIN_ROLE,
    DEV_PUBLIC_CLIENT_ID,
    AppRegistration,
    Directory,
    RegistryError,
    UserAccount,
    user_from,
)
from sandbox.identity.signin import USER_GRANTS, SignIns, install_signin, user_grant, v1_user_grant
from sandbox.identity.tokens import TOKEN_LIFETIME, issuer_for, mint, sign, user_token_claims
from sandbox.websafety import TOKEN_ENDPOINT, install_edge_safety

SERVICE_NAME = "identity"
#: the sign-in pages' own form posts (authorization endpoint, device code endpoint and page)
_SIGNIN_FORMS = re.compile(r"^(/[^/]+/oauth2/v2\.0/(authorize|devicecode)|/devicelogin)/?$")


@dataclass
class IdentityConfig:
    """How to run the identity service.

    ``data_dir``: where the signing key (``signing-key.pem``), apps and users registered at run time (``apps.json``,
    ``users.json``) are kept; None keeps them in memory for this run. ``resources``: the service origins tokens may be asked for.
    ``require_admin``: the control plane needs a token with the admin role (``sandbox up --auth on``).
    """

    tenant_id: str | None = None
    data_dir: Path | None = None
    apps: list[AppRegistration] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    #: users besides the well-known one (``--identity-config``'s ``users``)
    users: list[UserAccount] = field(default_factory=list)
    require_admin: bool = True


class IdentityRuntime:
    """The directory and the signing key, in ``app.extensions['identity']``."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        folder = config.data_dir
        kwargs = {"tenant_id": config.tenant_id} if config.tenant_id else {}
        self.directory = Directory(
            apps=config.apps,
            resources=config.resources,
            path=None if folder is None else folder / "apps.json",
            users=config.users,
            **kwargs,
        )
        self.key = SigningKey.load_or_create(None if folder is None else folder / "signing-key.pem")
        #: pending authorization and device codes (minutes long; in memory)
        self.signins = SignIns()

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    def token(self, client_id: str, resource: str, *, lifetime: int = TOKEN_LIFETIME, now: float | None = None) -> str:
        """A token of the registered app ``client_id`` for ``resource`` (no secret asked: for the stack itself)."""
        app = self.directory.app(client_id)
        if app is None:
            raise KeyError(client_id)
        return mint(app, self.tenant_id, resource.rstrip("/"), self.key, now=now, lifetime=lifetime)

    def user_token(
        self,
        user_principal_name: str,
        resource: str,
        *,
        client_id: str = DEV_PUBLIC_CLIENT_ID,
        now: float | None = None,
    ) -> str:
        """A delegated token of the user through the app ``client_id`` for ``resource`` (no password asked: tests)."""
        user = self.directory.user(user_principal_name)
        app = self.directory.app(client_id)
        if user is None or app is None:
            raise KeyError(user_principal_name if user is None else client_id)
        return sign(user_token_claims(user, app, self.tenant_id, resource.rstrip("/"), now=now), self.key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.jwk(), "issuer": issuer_for(self.tenant_id)}]}


def create_app(config: IdentityConfig | None = None) -> Flask:
    """The identity service's Flask app."""
    runtime = IdentityRuntime(config or IdentityConfig())
    app = Flask(SERVICE_NAME)
    app.extensions["identity"] = runtime
    # Host and Origin checks outermost (sandbox.websafety); the token endpoints take OAuth's form posts, the sign-in
    # pages their own forms (same origin: a foreign Origin is still refused)
    install_edge_safety(app, _edge_refusal, form_routes=(TOKEN_ENDPOINT.match, _SIGNIN_FORMS.match))

    @app.errorhandler(AadstsError)
    def aadsts(err: AadstsError) -> Response:
        return err.response()

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        body = {"error": "invalid_request", "error_description": f"{err.code} {err.name}: {err.description}"}
        response = _json(body, err.code or 500)
        if err.code == 405:
            response.headers["Allow"] = ", ".join(getattr(err, "valid_methods", None) or ())
        return response

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token_v2(tenant: str) -> Response:
        form = _token_request(runtime, tenant)
        if form["grant_type"] in USER_GRANTS:
            return _json(user_grant(runtime, tenant, form, lambda origin: _resource(runtime, tenant, origin)))
        scope = form.get("scope", "").strip()
        if not scope:
            raise errors.missing_parameter("scope")
        resources = scope.split()
        resource = next((r for r in resources if r.endswith("/.default")), None)
        if resource is None:
            raise errors.scope_without_default(scope)
        app_reg = _client(runtime, tenant, form)
        audience = _resource(runtime, tenant, resource)
        token = mint(app_reg, runtime.tenant_id, audience, runtime.key)
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            }
        )

    @app.post("/<tenant>/oauth2/token")
    def token_v1(tenant: str) -> Response:
        form = _token_request(runtime, tenant)
        resource = form.get("resource", "").strip()
        if not resource:
            raise errors.missing_parameter("resource")
        if form["grant_type"] in ("password", "refresh_token"):
            return _json(v1_user_grant(runtime, tenant, form, _resource(runtime, tenant, resource)))
        if form["grant_type"] != "client_credentials":
            raise errors.unsupported_grant(form["grant_type"])
        app_reg = _client(runtime, tenant, form)
        audience = _resource(runtime, tenant, resource)
        now = int(time.time())
        token = mint(app_reg, runtime.tenant_id, audience, runtime.key, now=now)
        # v1 answers carry its numbers as strings
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": str(TOKEN_LIFETIME),
                "ext_expires_in": str(TOKEN_LIFETIME),
                "expires_on": str(now + TOKEN_LIFETIME),
                "not_before": str(now),
                "resource": resource,
                "access_token": token,
            }
        )

    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def discovery_v2(tenant: str) -> Response:
        _known_tenant(runtime, tenant)
        base = f"{_origin()}/{tenant}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{_origin()}/{runtime.tenant_id}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    *("sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "roles", "appid", "ver"),
                    *("scp", "upn", "name", "preferred_username", "nonce"),
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "sandbox",
                "grant_types_supported": [
                    "client_credentials",
                    "password",
                    "authorization_code",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    @app.get("/<tenant>/.well-known/openid-configuration")
    def discovery_v1(tenant: str) -> Response:
        _known_tenant(runtime, tenant)
        if tenant.lower() == ADFS_ALIAS:
            # MSAL reads an AD FS authority's document here (no /v2.0): the v2 endpoints, as AD FS 2019 serves them
            return discovery_v2(tenant)
        base = f"{_origin()}/{tenant}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/keys",
                "issuer": issuer_for(runtime.tenant_id),
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["client_credentials", "password", "refresh_token"],
            }
        )

    @app.get("/<tenant>/discovery/v2.0/keys")
    @app.get("/<tenant>/discovery/keys")
    def keys(tenant: str) -> Response:
        if tenant != "common":
            _known_tenant(runtime, tenant)
        return _json(runtime.jwks())

    @app.get("/common/discovery/instance")
    def instance_discovery() -> Response:
        # MSAL asks this before it trusts an authority it does not know; the answer names this host alone
        authorization = request.args.get("authorization_endpoint", "")
        tenant = unquote(authorization).rstrip("/").split("/")[-3] if authorization.count("/") >= 5 else "common"
        host = request.host
        return _json(
            {
                "tenant_discovery_endpoint": f"{_origin()}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )

    @app.get("/_sandbox/health")
    def health() -> Response:
        return _json({"status": "ok", "service": SERVICE_NAME})

    @app.get("/_sandbox/apps")
    def list_apps() -> Response:
        _require_admin(runtime)
        return _json({"tenant_id": runtime.tenant_id, "apps": [a.public() for a in runtime.directory.apps()]})

    @app.post("/_sandbox/apps")
    def register_app() -> Response:
        _require_admin(runtime)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise AadstsError("invalid_request", 900144, "The body must be a JSON object naming 'display_name'.")
        public_client = bool(body.get("public_client", False))
        try:
            app_reg = AppRegistration(
                client_id=str(body.get("client_id") or uuid.uuid4()),
                client_secret=str(body.get("client_secret") or ("" if public_client else secrets.token_urlsafe(30))),
                display_name=str(body.get("display_name") or "app"),
                roles=body.get("roles") or [],
                public_client=public_client,
                redirect_uris=body.get("redirect_uris") or [],
            )
        except RegistryError as exc:
            raise AadstsError("invalid_request", 900144, str(exc)) from exc
        runtime.directory.register(app_reg)
        return _json({**app_reg.public(), "client_secret": app_reg.client_secret, "tenant_id": runtime.tenant_id}, 201)

    @app.get("/_sandbox/users")
    def list_users() -> Response:
        _require_admin(runtime)
        return _json({"tenant_id": runtime.tenant_id, "users": [u.public() for u in runtime.directory.users()]})

    @app.post("/_sandbox/users")
    def add_user() -> Response:
        _require_admin(runtime)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise AadstsError("invalid_request", 900144, "The body must be a JSON object naming 'user_principal_name'.")
        try:
            user = user_from({**body, "password": body.get("password") or secrets.token_urlsafe(18)})
            runtime.directory.add_user(user)
        except RegistryError as exc:
            raise AadstsError("invalid_request", 900144, str(exc)) from exc
        return _json({**user.public(), "password": user.password, "tenant_id": runtime.tenant_id}, 201)

    install_signin(app, runtime, lambda tenant: _known_tenant(runtime, tenant))
    return app


def identity_runtime(app: Flask) -> IdentityRuntime:
    """The runtime of an identity app made by :func:`create_app`."""
    runtime = app.extensions["identity"]
    if not isinstance(runtime, IdentityRuntime):
        raise TypeError("not an identity app")
    return runtime


# ---- the token request ----------------------------------------------------------------------------------------
def _edge_refusal(err: SandboxError) -> Response:
    """A refusal of the edge checks in the shape of Entra's OAuth errors."""
    return _json({"error": "invalid_request", "error_description": err.message}, err.status)


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    response.headers["Cache-Control"] = "no-store, no-cache"
    return response


def _origin() -> str:
    return request.host_url.rstrip("/")


def _known_tenant(runtime: IdentityRuntime, tenant: str) -> None:
    if not runtime.directory.knows_tenant(tenant):
        raise errors.unknown_tenant(tenant)


def _token_request(runtime: IdentityRuntime, tenant: str) -> dict[str, str]:
    """The form of a client-credentials request, its tenant and grant checked."""
    if not request.mimetype == "application/x-www-form-urlencoded":
        raise errors.unsupported_media()
    form = {name: value for name, value in request.form.items()}
    _known_tenant(runtime, tenant)
    grant = form.get("grant_type", "").strip()
    if not grant:
        raise errors.missing_parameter("grant_type")
    if grant != "client_credentials" and grant not in USER_GRANTS:
        raise errors.unsupported_grant(grant)
    form["grant_type"] = grant
    basic = request.headers.get("Authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.missing_secret() from None
        form.setdefault("client_id", unquote(user))
        form.setdefault("client_secret", unquote(password))
    if not form.get("client_id"):
        raise errors.missing_parameter("client_id")
    return form


def _client(runtime: IdentityRuntime, tenant: str, form: dict[str, str]) -> AppRegistration:
    client_id = form["client_id"].strip()
    app_reg = runtime.directory.app(client_id)
    if app_reg is None:
        raise errors.unknown_app(client_id, tenant)
    secret = form.get("client_secret")
    if not secret:
        raise errors.missing_secret()
    if not secrets.compare_digest(secret.encode(), app_reg.client_secret.encode()):
        raise errors.bad_secret(app_reg.client_id)
    return app_reg


def _resource(runtime: IdentityRuntime, tenant: str, requested: str) -> str:
    resource = runtime.directory.resource(requested)
    if resource is None:
        shown = requested[: -len("/.default")] if requested.endswith("/.default") else requested
        raise errors.unknown_resource(shown, tenant)
    # the audience is the resource as the caller named it (loopback names as given), without /.default
    return requested[: -len("/.default")] if requested.endswith("/.default") else requested.rstrip("/")


def _require_admin(runtime: IdentityRuntime) -> None:
    """The control plane answers admin apps only (unless the stack runs without auth)."""
    if not runtime.config.require_admin:
        return
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        claims = jwt.decode(
            token,
            runtime.key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=issuer_for(runtime.tenant_id),
            options={"verify_aud": False},
        )
    except jwt.PyJWTError:
        raise AadstsError(
            "invalid_token", 50000, "The control plane needs a bearer token of an admin app.", status=401
        ) from None
    if ADMIN_ROLE not in (claims.get("roles") or []):
        raise AadstsError("access_denied", 50105, f"The app needs the app role '{ADMIN_ROLE}'.", status=403)
