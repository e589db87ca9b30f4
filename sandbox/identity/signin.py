"""User sign-in on the identity service, as Microsoft Entra ID does it for real clients.

=======  ==============================================  ================================================================
Method   Path                                            Behaviour
=======  ==============================================  ================================================================
POST     /{tenant}/oauth2/v2.0/token                     ``grant_type=password`` (resource owner password credentials),
                                                         ``authorization_code`` (with PKCE's ``code_verifier``),
                                                         ``refresh_token``, ``urn:ietf:params:oauth:grant-type:device_code``
POST     /{tenant}/oauth2/token                          v1: ``password`` and ``refresh_token`` with ``resource=<origin>``
GET      /{tenant}/oauth2/v2.0/authorize                 the sign-in page of an authorization request (``response_type=code``)
POST     /{tenant}/oauth2/v2.0/authorize                 the page's form: the user's name and password -> a redirect to
                                                         ``redirect_uri`` with ``code`` and ``state``
POST     /{tenant}/oauth2/v2.0/devicecode                a device code and a user code (public clients)
GET/POST /devicelogin                                    the page where the user enters the user code and signs in
GET      /common/userrealm/{username}                    MSAL's user realm discovery: every user here is ``Managed``
=======  ==============================================  ================================================================

Clients: a public client (the well-known one, or an app registered with ``public_client``) sends no secret (one
that does gets AADSTS700025); a confidential client sends its secret (none: AADSTS7000218). Users: an unknown
name is AADSTS50034, a wrong password AADSTS50126, a disabled account AADSTS50057 (all ``invalid_grant``). Scopes:
``<service origin>/user_impersonation`` or ``<service origin>/.default`` with any of ``openid profile email
offline_access``; another permission name is AADSTS65005, no resource AADSTS70011.

Tokens for users are delegated: ``scp`` (``user_impersonation``), ``upn``, ``unique_name``, ``name``, the user's
``oid``, ``tid``, the app's ``appid``, no ``roles``. ``openid`` adds a v2 ID token (``nonce`` echoed),
``offline_access`` a refresh token, ``client_info=1`` MSAL's ``client_info``. Authorization codes live ten minutes
and are redeemed once; device codes fifteen minutes (poll every five seconds: ``authorization_pending`` meanwhile).
Codes are kept in memory: a restart of the identity service forgets pending sign-ins, not users or apps.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import jwt
from flask import Flask, Response, request

from sandbox.identity import errors
from sandbox.identity.errors import AadstsError
from sandbox.identity.registry import AppRegistration, UserAccount
from sandbox.identity.tokens import (
    TOKEN_LIFETIME,
    USER_IMPERSONATION,
    id_token_claims,
    refresh_token_claims,
    sign,
    user_token_claims,
)

if TYPE_CHECKING:
    from sandbox.identity.app import IdentityRuntime

#: the grant of the device authorization flow (RFC 8628)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: grants the token endpoints take for users
USER_GRANTS = frozenset({"password", "authorization_code", "refresh_token", DEVICE_CODE_GRANT})
#: OpenID Connect scopes: they shape the answer, not the access token
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME = 600
DEVICE_CODE_LIFETIME = 900
DEVICE_POLL_INTERVAL = 5
_USER_CODE_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class PendingCode:
    """An authorization code handed to a redirect URI, waiting to be redeemed once."""

    client_id: str
    redirect_uri: str
    scope: str
    upn: str
    challenge: str
    challenge_method: str
    nonce: str
    expires: float
    redeemed: bool = False


@dataclass
class DeviceCode:
    """A device authorization: pending until the user signs in on the device login page."""

    client_id: str
    scope: str
    user_code: str
    expires: float
    upn: str | None = None


@dataclass
class SignIns:
    """The pending authorization and device codes of one identity service (in memory; thread-safe)."""

    codes: dict[str, PendingCode] = field(default_factory=dict)
    devices: dict[str, DeviceCode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, pending: PendingCode) -> str:
        code = "0.A" + secrets.token_urlsafe(48)
        with self.lock:
            now = time.time()
            for stale in [c for c, p in self.codes.items() if p.expires < now - CODE_LIFETIME]:
                del self.codes[stale]
            self.codes[code] = pending
        return code


# ---- the pieces every user grant shares ------------------------------------------------------------------------
def authenticate_client(runtime: IdentityRuntime, tenant: str, form: dict[str, str]) -> AppRegistration:
    """The app a user grant comes through: a public client without a secret, a confidential one with its own."""
    client_id = form.get("client_id", "").strip()
    if not client_id:
        raise errors.missing_parameter("client_id")
    app = runtime.directory.app(client_id)
    if app is None:
        raise errors.unknown_app(client_id, tenant)
    secret = form.get("client_secret") or ""
    if app.public_client:
        if secret:
            raise errors.public_client_with_secret()
        return app
    if not secret:
        raise errors.missing_secret()
    if not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
        raise errors.bad_secret(app.client_id)
    return app


def check_user(runtime: IdentityRuntime, tenant: str, username: str, password: str) -> UserAccount:
    """The user whose name and password these are, or Entra's error (unknown, disabled, wrong password)."""
    user = runtime.directory.user(username)
    if user is None:
        raise errors.unknown_user(username, tenant)
    if not user.account_enabled:
        raise errors.user_disabled()
    if not secrets.compare_digest(password.encode(), user.password.encode()):
        raise errors.invalid_credentials()
    return user


@dataclass
class UserScope:
    """A user flow's ``scope`` read: the resource (the audience, as named), the OIDC scopes asked for."""

    audience: str
    oidc: frozenset[str]

    @property
    def granted(self) -> str:
        """The ``scope`` of the answer: the resource's delegated permission and the OIDC scopes asked for."""
        return " ".join([f"{self.audience}/{USER_IMPERSONATION}", *sorted(self.oidc - {"offline_access"})])


def read_scope(app: AppRegistration, scope: str, resolve: Callable[[str], str]) -> UserScope:
    """``scope`` of a v2 user grant: one resource's ``/user_impersonation`` or ``/.default``, OIDC scopes beside."""
    names = scope.split()
    if not names:
        raise errors.missing_parameter("scope")
    oidc = frozenset(n for n in names if n in OIDC_SCOPES)
    resources = [n for n in names if n not in OIDC_SCOPES]
    if not resources:
        raise errors.invalid_scope(scope)
    origin, _, permission = resources[0].rstrip("/").rpartition("/")
    if not origin or "://" not in origin:
        raise errors.invalid_scope(scope)
    audience = resolve(origin)
    if permission not in (".default", USER_IMPERSONATION):
        raise errors.unknown_permission(app.display_name, permission, origin)
    return UserScope(audience, oidc)


def user_token_answer(
    runtime: IdentityRuntime,
    app: AppRegistration,
    user: UserAccount,
    scope: UserScope,
    *,
    nonce: str | None = None,
    client_info: bool = False,
) -> dict[str, Any]:
    """The v2 token endpoint's answer to a user grant."""
    access = sign(user_token_claims(user, app, runtime.tenant_id, scope.audience), runtime.key)
    answer: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": scope.granted,
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": access,
    }
    if "offline_access" in scope.oidc:
        raw_scope = " ".join([f"{scope.audience}/{USER_IMPERSONATION}", *sorted(scope.oidc)])
        answer["refresh_token"] = sign(refresh_token_claims(user, app, runtime.tenant_id, raw_scope), runtime.key)
    if "openid" in scope.oidc:
        issuer = f"{request.host_url.rstrip('/')}/{runtime.tenant_id}/v2.0"
        answer["id_token"] = sign(id_token_claims(user, app, issuer, runtime.tenant_id, nonce=nonce), runtime.key)
    if client_info:
        info = json.dumps({"uid": user.object_id, "utid": runtime.tenant_id}).encode()
        answer["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode("ascii")
    return answer


# ---- the grants ------------------------------------------------------------------------------------------------
def user_grant(
    runtime: IdentityRuntime, tenant: str, form: dict[str, str], resolve: Callable[[str], str]
) -> dict[str, Any]:
    """The v2 token endpoint's answer to ``password``, ``authorization_code``, ``refresh_token`` or device code."""
    grant = form["grant_type"]
    app = authenticate_client(runtime, tenant, form)
    client_info = form.get("client_info") == "1"
    if grant == "password":
        user = check_user(runtime, tenant, _required(form, "username"), _required(form, "password"))
        scope = read_scope(app, form.get("scope", ""), resolve)
        return user_token_answer(runtime, app, user, scope, client_info=client_info)
    if grant == "authorization_code":
        pending = _redeem_code(runtime, app, form)
        user = _still_enabled(runtime, tenant, pending.upn)
        scope = read_scope(app, pending.scope, resolve)
        return user_token_answer(runtime, app, user, scope, nonce=pending.nonce or None, client_info=client_info)
    if grant == "refresh_token":
        claims = _refresh_claims(runtime, app, _required(form, "refresh_token"))
        user = _still_enabled(runtime, tenant, str(claims.get("upn")))
        scope = read_scope(app, form.get("scope") or str(claims.get("scope")), resolve)
        return user_token_answer(runtime, app, user, scope, client_info=client_info)
    device = _device_approved(runtime, app, _required(form, "device_code"))
    user = _still_enabled(runtime, tenant, str(device.upn))
    scope = read_scope(app, device.scope, resolve)
    return user_token_answer(runtime, app, user, scope, client_info=client_info)


def v1_user_grant(runtime: IdentityRuntime, tenant: str, form: dict[str, str], audience: str) -> dict[str, Any]:
    """The v1 token endpoint's answer to ``password`` or ``refresh_token`` (``resource=<origin>``), ADAL's shape."""
    app = authenticate_client(runtime, tenant, form)
    if form["grant_type"] == "password":
        user = check_user(runtime, tenant, _required(form, "username"), _required(form, "password"))
    elif form["grant_type"] == "refresh_token":
        claims = _refresh_claims(runtime, app, _required(form, "refresh_token"))
        user = _still_enabled(runtime, tenant, str(claims.get("upn")))
    else:
        raise errors.unsupported_grant(form["grant_type"])
    now = int(time.time())
    scope = UserScope(audience, frozenset({"openid", "offline_access"}))
    access = sign(user_token_claims(user, app, runtime.tenant_id, audience, now=now), runtime.key)
    refresh = sign(refresh_token_claims(user, app, runtime.tenant_id, scope.granted), runtime.key)
    # v1 answers carry its numbers as strings
    return {
        "token_type": "Bearer",
        "scope": USER_IMPERSONATION,
        "expires_in": str(TOKEN_LIFETIME),
        "ext_expires_in": str(TOKEN_LIFETIME),
        "expires_on": str(now + TOKEN_LIFETIME),
        "not_before": str(now),
        "resource": form.get("resource", ""),
        "access_token": access,
        "refresh_token": refresh,
    }


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise errors.missing_parameter(name)
    return value


def _still_enabled(runtime: IdentityRuntime, tenant: str, upn: str) -> UserAccount:
    user = runtime.directory.user(upn)
    if user is None:
        raise errors.unknown_user(upn, tenant)
    if not user.account_enabled:
        raise errors.user_disabled()
    return user


def _redeem_code(runtime: IdentityRuntime, app: AppRegistration, form: dict[str, str]) -> PendingCode:
    code = _required(form, "code")
    signins = runtime.signins
    with signins.lock:
        pending = signins.codes.get(code)
        if pending is None:
            raise errors.malformed_grant("code")
        if pending.redeemed:
            raise errors.code_redeemed()
        if pending.expires < time.time():
            raise errors.code_expired()
        if pending.client_id != app.client_id:
            raise errors.code_for_another_client()
        if form.get("redirect_uri", "") != pending.redirect_uri:
            raise errors.redirect_differs()
        if pending.challenge and not _verifier_matches(pending, form.get("code_verifier", "")):
            raise errors.verifier_mismatch()
        pending.redeemed = True
    return pending


def _verifier_matches(pending: PendingCode, verifier: str) -> bool:
    if not verifier:
        return False
    if pending.challenge_method == "plain":
        return secrets.compare_digest(verifier, pending.challenge)
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=")
    return secrets.compare_digest(digest.decode("ascii"), pending.challenge)


def _refresh_claims(runtime: IdentityRuntime, app: AppRegistration, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, runtime.key.private_key.public_key(), algorithms=["RS256"])
    except jwt.ExpiredSignatureError:
        raise errors.code_expired() from None
    except jwt.PyJWTError:
        raise errors.malformed_grant("refresh_token") from None
    if claims.get("typ") != "refresh" or claims.get("tid") != runtime.tenant_id:
        raise errors.malformed_grant("refresh_token")
    if claims.get("appid") != app.client_id:
        raise errors.code_for_another_client()
    return claims


def _device_approved(runtime: IdentityRuntime, app: AppRegistration, device_code: str) -> DeviceCode:
    signins = runtime.signins
    with signins.lock:
        device = signins.devices.get(device_code)
        if device is None or device.client_id != app.client_id:
            raise errors.malformed_grant("device_code")
        if device.expires < time.time():
            del signins.devices[device_code]
            raise errors.device_code_expired()
        if device.upn is None:
            raise errors.authorization_pending()
        del signins.devices[device_code]
    return device


# ---- the pages -------------------------------------------------------------------------------------------------
AUTHORIZE_PARAMETERS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "login_hint",
    "prompt",
    "client_info",
)


def install_signin(app: Flask, runtime: IdentityRuntime, known_tenant: Callable[[str], None]) -> None:
    """The authorization endpoint, the device code endpoints and user realm discovery on the identity app."""

    @app.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
    def authorize(tenant: str) -> Response:
        known_tenant(tenant)
        source = request.form if request.method == "POST" else request.args
        params = {name: source.get(name, "") for name in AUTHORIZE_PARAMETERS}
        try:
            client = _authorize_client(runtime, tenant, params)
        except AadstsError as error:
            # a request that names no valid app or redirect URI is answered on the page, never redirected
            return _page("Sign in", _error_block(error), status=400)
        redirect_uri = params["redirect_uri"]
        if params["response_type"] != "code":
            description = f"AADSTS700054: response_type '{params['response_type']}' is not enabled for the application."
            return _back(params, {"error": "unsupported_response_type", "error_description": description})
        if params["code_challenge_method"] not in ("", "S256", "plain"):
            return _back(
                params,
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS50149: Invalid Code_Challenge_method parameter.",
                },
            )
        if request.method == "GET":
            return _signin_form(tenant, client, params)
        username = request.form.get("username", "").strip()
        try:
            user = check_user(runtime, tenant, username, request.form.get("password", ""))
        except AadstsError as error:
            return _signin_form(tenant, client, {**params, "login_hint": username}, error, status=200)
        code = runtime.signins.issue_code(
            PendingCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                scope=params["scope"],
                upn=user.user_principal_name,
                challenge=params["code_challenge"],
                challenge_method=params["code_challenge_method"] or ("S256" if params["code_challenge"] else ""),
                nonce=params["nonce"],
                expires=time.time() + CODE_LIFETIME,
            )
        )
        answer = {"code": code, "state": params["state"]} if params["state"] else {"code": code}
        if params["client_info"] == "1":
            info = json.dumps({"uid": user.object_id, "utid": runtime.tenant_id}).encode()
            answer["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode("ascii")
        return _back(params, answer)

    @app.post("/<tenant>/oauth2/v2.0/devicecode")
    def devicecode(tenant: str) -> Response:
        known_tenant(tenant)
        if request.mimetype != "application/x-www-form-urlencoded":
            raise errors.unsupported_media()
        form = {name: value for name, value in request.form.items()}
        client = authenticate_client(runtime, tenant, form)
        scope = _required(form, "scope")
        device_code = secrets.token_urlsafe(48)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        with runtime.signins.lock:
            runtime.signins.devices[device_code] = DeviceCode(
                client.client_id, scope, user_code, time.time() + DEVICE_CODE_LIFETIME
            )
        uri = f"{request.host_url.rstrip('/')}/devicelogin"
        return _json(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": DEVICE_CODE_LIFETIME,
                "interval": DEVICE_POLL_INTERVAL,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to "
                "authenticate.",
            }
        )

    @app.route("/devicelogin", methods=["GET", "POST"])
    def devicelogin() -> Response:
        if request.method == "GET":
            return _device_form()
        user_code = request.form.get("user_code", "").strip().upper()
        with runtime.signins.lock:
            device = next(
                (d for d in runtime.signins.devices.values() if d.user_code == user_code and d.upn is None), None
            )
        if device is None or device.expires < time.time():
            return _device_form("That code didn't work. Check the code and try again.", status=200)
        try:
            user = check_user(
                runtime, runtime.tenant_id, request.form.get("username", "").strip(), request.form.get("password", "")
            )
        except AadstsError as error:
            return _device_form(_user_message(error), user_code=user_code, status=200)
        with runtime.signins.lock:
            device.upn = user.user_principal_name
        client = runtime.directory.app(device.client_id)
        name = html.escape(client.display_name if client else device.client_id)
        return _page(
            "Signed in",
            f"<p id='done'>You have signed in to the {name} application on your device. You may now close this "
            "window.</p>",
        )

    @app.get("/common/userrealm/<path:username>")
    def userrealm(username: str) -> Response:
        # MSAL asks before a password grant; a Federated answer would send it to an ADFS the sandbox does not have
        known = runtime.directory.user(username) is not None
        return _json(
            {
                "ver": "1.0",
                "account_type": "Managed" if known else "Unknown",
                "domain_name": username.rpartition("@")[2],
                "cloud_instance_name": request.host,
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
            }
        )


def _authorize_client(runtime: IdentityRuntime, tenant: str, params: dict[str, str]) -> AppRegistration:
    if not params["client_id"]:
        raise errors.missing_parameter("client_id")
    client = runtime.directory.app(params["client_id"])
    if client is None:
        raise errors.unknown_app(params["client_id"], tenant)
    if not params["redirect_uri"]:
        raise errors.missing_parameter("redirect_uri")
    if not client.allows_redirect(params["redirect_uri"]):
        raise errors.redirect_mismatch(params["redirect_uri"], client.client_id)
    return client


def _back(params: dict[str, str], answer: dict[str, str]) -> Response:
    """Send the browser back to the redirect URI with ``answer``, as ``response_mode`` asks (query by default)."""
    if "error" in answer and params["state"]:
        answer = {**answer, "state": params["state"]}
    uri = params["redirect_uri"]
    mode = params["response_mode"] or "query"
    if mode == "form_post":
        fields = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in answer.items()
        )
        body = (
            f"<form method='post' action='{html.escape(uri)}'>{fields}<noscript><button>Continue</button></noscript>"
            "</form><script>document.forms[0].submit()</script>"
        )
        return _page("Working...", body)
    separator = "#" if mode == "fragment" else ("&" if urlsplit(uri).query else "?")
    response = Response("", status=302)
    response.headers["Location"] = f"{uri}{separator}{urlencode(answer)}"
    response.headers["Cache-Control"] = "no-store, no-cache"
    return response


def _user_message(error: AadstsError) -> str:
    """What Entra's sign-in page says for a user error (the AADSTS code stays visible for the developer)."""
    if error.code == 50126:
        text = "Your account or password is incorrect."
    elif error.code == 50034:
        text = "We couldn't find an account with that username."
    elif error.code == 50057:
        text = "Your account has been locked. Contact your support person to unlock it, then try again."
    else:
        text = error.message
    return f"{text} (AADSTS{error.code})"


def _signin_form(
    tenant: str,
    client: AppRegistration,
    params: dict[str, str],
    error: AadstsError | None = None,
    status: int = 200,
) -> Response:
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(params[name])}'>"
        for name in AUTHORIZE_PARAMETERS
        if params[name] and name != "login_hint"
    )
    message = f"<p id='error' role='alert'>{html.escape(_user_message(error))}</p>" if error else ""
    body = (
        f"<p>to continue to <b>{html.escape(client.display_name)}</b></p>{message}"
        f"<form method='post' action='/{html.escape(tenant)}/oauth2/v2.0/authorize'>{hidden}"
        "<label>Email, phone, or Skype<br><input id='username' name='username' type='email' autocomplete='username' "
        f"value='{html.escape(params['login_hint'])}' required></label><br>"
        "<label>Password<br><input id='password' name='password' type='password' autocomplete='current-password' "
        "required></label><br><button id='signin' type='submit'>Sign in</button></form>"
    )
    return _page("Sign in to your account", body, status=status)


def _device_form(error: str = "", *, user_code: str = "", status: int = 200) -> Response:
    message = f"<p id='error' role='alert'>{html.escape(error)}</p>" if error else ""
    body = (
        f"<p>Enter the code displayed on your app or device, and sign in.</p>{message}"
        "<form method='post' action='/devicelogin'>"
        f"<label>Code<br><input id='user_code' name='user_code' value='{html.escape(user_code)}' required></label><br>"
        "<label>Email, phone, or Skype<br><input id='username' name='username' type='email' required></label><br>"
        "<label>Password<br><input id='password' name='password' type='password' required></label><br>"
        "<button id='signin' type='submit'>Sign in</button></form>"
    )
    return _page("Enter code", body, status=status)


#: the sandbox's icon, inline: the identity service serves no static files, and without an icon declared a browser
#: asks for /favicon.ico and gets a 404 on every sign-in page
_ICON = "data:image/svg+xml," + quote(
    (Path(__file__).resolve().parents[1] / "static" / "app" / "icon.svg").read_text(encoding="utf-8").strip()
)


def _page(title: str, body: str, *, status: int = 200) -> Response:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><meta name='viewport' content='width=device-width'>"
        f"<link rel='icon' href='{_ICON}' type='image/svg+xml'>"
        "<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}"
        "input{width:100%;padding:.4rem;margin:.2rem 0 .8rem}#error{color:#a80000}"
        "button{padding:.5rem 1.5rem;background:#0067b8;color:#fff;border:0}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p><small>Sandbox identity service (not Microsoft Entra ID)</small></p>"
        f"{body}</body></html>"
    )
    response = Response(document, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store, no-cache"
    # the page must not be framed by another site (clickjacking a sign-in form)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def _error_block(error: AadstsError) -> str:
    return (
        f"<p id='error' role='alert'>Sorry, but we're having trouble signing you in.</p>"
        f"<p><code>AADSTS{error.code}: {html.escape(error.message)}</code></p>"
    )


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    response.headers["Cache-Control"] = "no-store, no-cache"
    return response
