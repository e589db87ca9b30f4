"""Who a valid token makes the caller in each service, as the real services decide it.

- Dataverse (:class:`DataverseAccess`): the token's app must be an application user (a ``systemusers`` row whose
  ``applicationid`` is the app) with at least one security role, else 403 ``0x80072560`` ("The user is not a
  member of the organization.") or ``0x80040220`` (a missing privilege). The caller's identity is the user's
  ``domainname``. ``CallerObjectId`` (an Entra object id) and ``MSCRM.CallerID`` (a ``systemuserid``) impersonate
  another user, which needs the ``prvActOnBehalfOfAnotherUser`` privilege (System Administrator has it).
  See ``docs/reference/dataverse-web-api.md`` (section 1).
- F&O (:class:`FnoAccess`): the app must be registered on the Microsoft Entra applications page
  (``SysAADClientTable``: client id -> user id), else 401; the caller is that user.

The well-known apps (the development app and the bridge's registration) are application users of Sales from the
start: their ``systemusers`` rows are provisioned on first use, as Dataverse provisions the dual-write app user when
an environment is linked.
"""

from __future__ import annotations

import abc
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import NotFound, SandboxError, Unauthorized, error_for_status
from sandbox.odata.store import Store
from sandbox.wellknown import (
    BRIDGE_CLIENT_ID,
    DEV_CLIENT_ID,
    DEV_IDENTITY,
    INTEGRATION_IDENTITY,
    SYSTEM_IDENTITY,
)

#: Dataverse: the caller is not a (enabled) user of the organization
NOT_A_MEMBER = "0x80072560"
#: Dataverse: SecLib::AccessCheckEx failed, a privilege is missing
PRIVILEGE_MISSING = "0x80040220"
#: Dataverse: a record that does not exist (the impersonated user)
RECORD_NOT_FOUND = "0x80040217"
#: the security role whose privileges include acting on behalf of another user
SYSTEM_ADMINISTRATOR = "System Administrator"
ACT_ON_BEHALF_ROLES = frozenset({SYSTEM_ADMINISTRATOR})
#: how long an application user's lookup is reused (a user disabled meanwhile is refused after this long)
USER_CACHE_SECONDS = 5.0
_PRV_ACT_ON_BEHALF = "e4a8a4a8-8f3e-4d36-a5a7-2a6f0d5fdc76"


#: What the third-party ``d365fo-client`` sends as its bearer token whenever its base URL is localhost or a
#: loopback address: it never asks an authority for a token there, and it has no setting to name one (see
#: docs/auth.md). So that the client works against ``sandbox up`` with auth on, the SCM mock takes this value
#: from loopback callers as the well-known development app; any other value still needs a signed token.
D365FO_LOCAL_TOKEN = "mock-token-for-localhost"


def forbidden(message: str, code: str) -> SandboxError:
    return error_for_status(403, message, code)


class CallerPolicy(abc.ABC):
    """Turns a valid token (and the request's headers) into the caller's identity, or refuses it."""

    #: fixed bearer values that a known local client sends instead of a token when its base URL is on loopback,
    #: taken (from loopback callers only) as the well-known development app: see :data:`D365FO_LOCAL_TOKEN`
    placeholder_tokens: frozenset[str] = frozenset()

    @abc.abstractmethod
    def identity(self, claims: dict[str, Any], headers: Any) -> str:
        """The caller's identity; raises a :class:`SandboxError` (401/403) when the app may not call."""

    @abc.abstractmethod
    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make an app a caller of this service (control plane: ``POST /_sandbox/auth/applications``)."""

    @abc.abstractmethod
    def describe(self) -> list[dict[str, Any]]:
        """The apps this service knows as callers."""


@dataclass
class _BuiltinUser:
    identity: str
    first: str
    last: str
    roles: list[str] = field(default_factory=list)


BUILTIN_APP_USERS = {
    DEV_CLIENT_ID: _BuiltinUser(DEV_IDENTITY, "#", "Sandbox developer", [SYSTEM_ADMINISTRATOR]),
    BRIDGE_CLIENT_ID: _BuiltinUser(INTEGRATION_IDENTITY, "#", "Dual-write", ["Dual-write app user"]),
}


class DataverseAccess(CallerPolicy):
    """Application users of a Dataverse-shaped service (``systemusers`` with ``applicationid``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: security roles of application users, by application id (Dataverse keeps them in systemuserroles)
        self.roles: dict[str, list[str]] = {app: list(user.roles) for app, user in BUILTIN_APP_USERS.items()}
        self._lock = threading.Lock()
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def _find(self, where: dict[str, Any]) -> dict[str, Any] | None:
        with self.store.db.transaction(may_sync=False):
            rows = self.store.find("systemuser", where, limit=1)
        return rows[0] if rows else None

    def app_user(self, app_id: str) -> dict[str, Any] | None:
        """The enabled application user of ``app_id`` (a built-in app's is provisioned when missing), looked up
        at most once every few seconds per app: every request of a client asks."""
        now = time.monotonic()
        with self._lock:
            cached = self._users.get(app_id)
        if cached is not None and now - cached[0] < USER_CACHE_SECONDS:
            return cached[1]
        row = self._find({"applicationid": app_id})
        if row is None and app_id in BUILTIN_APP_USERS:
            row = self._provision(app_id)
        user = None if row is None or row.get("isdisabled") else row
        with self._lock:
            self._users[app_id] = (now, user)
        return user

    def _provision(self, app_id: str) -> dict[str, Any]:
        user = BUILTIN_APP_USERS[app_id]
        with self._lock, self.store.db.transaction(may_sync=False):
            existing = self.store.find("systemuser", {"applicationid": app_id}, limit=1) or self.store.find(
                "systemuser", {"domainname": user.identity}, limit=1
            )
            if existing:
                return self.store.update(
                    "systemuser", existing[0], {"applicationid": app_id}, identity=SYSTEM_IDENTITY, via_api=False
                )
            values = {
                "firstname": user.first,
                "lastname": user.last,
                "domainname": user.identity,
                "applicationid": app_id,
            }
            return self.store.insert("systemuser", values, identity=SYSTEM_IDENTITY, via_api=False)

    def identity(self, claims: dict[str, Any], headers: Any) -> str:
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        user = self.app_user(app_id)
        if user is None:
            raise forbidden("The user is not a member of the organization.", NOT_A_MEMBER)
        roles = self.roles.get(app_id, [])
        user_id = user.get("systemuserid")
        if not roles:
            raise forbidden(
                f"Principal user (Id={user_id}, type=8, roleCount=0, privilegeCount=0, accessMode=4), is missing "
                "prvReadOrganization privilege. Assign the application user a security role.",
                PRIVILEGE_MISSING,
            )
        identity = str(user.get("domainname") or app_id)
        by_object = headers.get("CallerObjectId")
        by_user = headers.get("MSCRM.CallerID")
        if not (by_object or by_user):
            return identity
        if not ACT_ON_BEHALF_ROLES.intersection(roles):
            raise forbidden(
                f"Principal user (Id={user_id}, type=8, roleCount={len(roles)}, privilegeCount={len(roles) * 100}, "
                f"accessMode=4), is missing prvActOnBehalfOfAnotherUser privilege (Id={_PRV_ACT_ON_BEHALF}) on "
                "OTC=8 for entity 'systemuser'.",
                PRIVILEGE_MISSING,
            )
        column, value = ("azureactivedirectoryobjectid", by_object) if by_object else ("systemuserid", by_user)
        target = self._find({column: _guid(value)}) if _guid(value) else None
        if target is None:
            raise NotFound(f"systemuser With Id = {str(value).strip()} Does Not Exist", RECORD_NOT_FOUND)
        return str(target.get("domainname") or target.get("systemuserid"))

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        app_id = _guid(body.get("applicationid"))
        roles = body.get("roles", [SYSTEM_ADMINISTRATOR])
        if app_id is None or not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise error_for_status(
                400, "Give 'applicationid' (a GUID) and 'roles' (a list of security role names).", "0x80040203"
            )
        name = str(body.get("name") or f"app {app_id}")
        with self._lock, self.store.db.transaction(may_sync=False):
            existing = self.store.find("systemuser", {"applicationid": app_id}, limit=1)
            values = {"firstname": "#", "lastname": name, "domainname": str(body.get("identity") or name)}
            if existing:
                row = self.store.update("systemuser", existing[0], values, identity=SYSTEM_IDENTITY, via_api=False)
            else:
                row = self.store.insert(
                    "systemuser", {**values, "applicationid": app_id}, identity=SYSTEM_IDENTITY, via_api=False
                )
        self.roles[app_id] = list(roles)
        with self._lock:
            self._users.pop(app_id, None)
        return {
            "applicationid": app_id,
            "systemuserid": row.get("systemuserid"),
            "roles": list(roles),
            "identity": values["domainname"],
        }

    def describe(self) -> list[dict[str, Any]]:
        return [{"applicationid": app, "roles": roles} for app, roles in sorted(self.roles.items())]


class FnoAccess(CallerPolicy):
    """The Microsoft Entra applications page of an F&O-shaped service: client id -> F&O user id."""

    placeholder_tokens = frozenset({D365FO_LOCAL_TOKEN})

    def __init__(self) -> None:
        self.applications: dict[str, dict[str, str]] = {
            DEV_CLIENT_ID: {"name": "Sandbox developer", "user_id": DEV_IDENTITY},
            BRIDGE_CLIENT_ID: {"name": "Dual-write", "user_id": INTEGRATION_IDENTITY},
        }

    def identity(self, claims: dict[str, Any], headers: Any) -> str:
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        application = self.applications.get(app_id)
        if application is None:
            # F&O answers an app missing from the Microsoft Entra applications page with a bare 401
            raise Unauthorized(
                f"The application '{app_id}' is not registered on the Microsoft Entra applications page "
                "(System administration > Setup > Microsoft Entra applications)."
            )
        return application["user_id"]

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        app_id = _guid(body.get("applicationid") or body.get("client_id"))
        user_id = body.get("user_id") or body.get("identity")
        if app_id is None or not isinstance(user_id, str) or not user_id.strip():
            raise error_for_status(400, "Give 'applicationid' (a GUID) and 'user_id' (the F&O user it acts as).", "")
        self.applications[app_id] = {"name": str(body.get("name") or app_id), "user_id": user_id.strip()}
        return {"applicationid": app_id, **self.applications[app_id]}

    def describe(self) -> list[dict[str, Any]]:
        return [{"applicationid": app, **entry} for app, entry in sorted(self.applications.items())]


def _guid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value).strip().strip("{}")))
    except (ValueError, AttributeError):
        return None
