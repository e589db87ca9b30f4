"""How a service checks tokens: the settings the stack hands every app (plain JSON, so child processes get them too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.wellknown import DEV_TENANT_ID

#: where the authentication hook leaves the caller's identity and the token's claims for the rest of the request
IDENTITY_ENVIRON_KEY = "sandbox.auth.identity"
CLAIMS_ENVIRON_KEY = "sandbox.auth.claims"


def resolved_identity(req: Any) -> str | None:
    """The caller's identity as authentication resolved it from the token (None: auth off, or an open route)."""
    environ = getattr(req, "environ", None)
    value = environ.get(IDENTITY_ENVIRON_KEY) if isinstance(environ, dict) else None
    return str(value) if value is not None else None


#: the key of a mock's :class:`~sandbox.runtime.ServiceConfig` options that holds its :class:`AuthSettings`
AUTH_OPTION = "auth"


@dataclass
class AuthSettings:
    """Whether a service checks bearer tokens, and against which identity service.

    ``identity_url`` is the identity service's origin as clients reach it (``http://127.0.0.1:5100``): the
    ``authorization_uri`` of the 401 challenge and where the signing keys are fetched. ``audiences``: origins a
    token may name besides the one the request came to (the service's public URLs). ``ca_file``: the local CA to
    trust when the identity service serves TLS. ``users``: the users of the identity service's config file, as the
    services know them from the start (:func:`sandbox.identity.registry.service_user`: object id, user principal
    name, Sales security roles, F&O user id).
    """

    enabled: bool = False
    identity_url: str = "http://127.0.0.1:5100"
    tenant_id: str = DEV_TENANT_ID
    audiences: list[str] = field(default_factory=list)
    ca_file: str | None = None
    users: list[dict[str, Any]] = field(default_factory=list)

    @property
    def authority(self) -> str:
        """``<identity>/<tenant>``: what MSAL and azure-identity call the authority."""
        return f"{self.identity_url.rstrip('/')}/{self.tenant_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    def to_options(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_options(cls, value: Any) -> AuthSettings:
        """The settings in a service's options (absent or not a mapping: auth off)."""
        if isinstance(value, AuthSettings):
            return value
        if not isinstance(value, dict):
            return cls()
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        return cls(**known)
