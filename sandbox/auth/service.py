"""Authentication on a mock service: the hook, the service's caller policy, and its control-plane routes.

``GET /_sandbox/auth/applications`` lists the apps the service accepts as callers; ``POST`` adds one: in a
Dataverse-shaped service ``{"applicationid", "name", "roles": [...]}`` makes an application user with those
security roles (``systemusers`` row included), in an F&O-shaped one ``{"applicationid", "name", "user_id"}`` is
a row of the Microsoft Entra applications page. ``GET``/``POST /_sandbox/auth/users`` do the same for users of the
identity service: Dataverse ``{"azureactivedirectoryobjectid", "domainname", "firstname"?, "lastname"?, "roles"}``
(a ``systemusers`` row with those roles), F&O ``{"object_id"?, "user_principal_name"?, "user_id"}``. All need an
admin token, as all of ``/_sandbox/`` does; registrations are kept in the service's database.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Blueprint, Flask, Response, request

from sandbox import jsonio
from sandbox.auth.guard import AuthGuard, install_auth, mock_is_open
from sandbox.auth.policies import CallerPolicy, DataverseAccess, FnoAccess
from sandbox.auth.settings import AUTH_OPTION, AuthSettings
from sandbox.errors import SandboxError, error_for_status
from sandbox.odata.store import Store


class _Service(Protocol):
    """What the hook needs of a service's runtime (:class:`sandbox.runtime.Runtime`)."""

    name: str
    store: Store

    @property
    def config(self) -> Any: ...

    @property
    def dialect(self) -> Any: ...

    def render_error(self, err: SandboxError) -> Response: ...


def install_service_auth(app: Flask, runtime: _Service) -> AuthGuard:
    """The authentication hook of a mock, from its ``auth`` service option (absent: auth off)."""
    settings = AuthSettings.from_options(runtime.config.options.get(AUTH_OPTION))
    policy: CallerPolicy = (
        DataverseAccess(runtime.store, settings.users)
        if runtime.dialect.name == "dataverse"
        else FnoAccess(runtime.store, settings.users)
    )
    guard = install_auth(app, settings, runtime.render_error, policy=policy, is_open=mock_is_open)
    app.register_blueprint(_control_blueprint(runtime.name, policy, runtime.render_error))
    return guard


def _control_blueprint(name: str, policy: CallerPolicy, render_error: Any) -> Blueprint:
    blueprint = Blueprint(f"{name}_auth_control", __name__, url_prefix="/_sandbox/auth")

    @blueprint.get("/applications")
    def applications() -> Response:
        return _json({"applications": policy.describe()})

    @blueprint.post("/applications")
    def register() -> Response:
        return _register(policy.register)

    @blueprint.get("/users")
    def users() -> Response:
        return _json({"users": policy.describe_users()})

    @blueprint.post("/users")
    def register_user() -> Response:
        return _register(policy.register_user)

    def _register(add: Any) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return render_error(error_for_status(400, "The body must be a JSON object.", ""))
        try:
            return _json(add(body), 201)
        except SandboxError as error:
            return render_error(error)

    return blueprint


def _json(body: Any, status: int = 200) -> Response:
    return Response(jsonio.dumps_bytes(body), status=status, content_type="application/json")
