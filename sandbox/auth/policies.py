"""Who a valid token makes the caller in each service, as the real services decide it.

- Dataverse (:class:`DataverseAccess`): the token's app must be an application user (a ``systemusers`` row whose
  ``applicationid`` is the app) with at least one security role, else 403 ``0x80072560`` ("The user is not a
  member of the organization.") or ``0x80040220`` (a missing privilege). The caller's identity is the user's
  ``domainname``. ``CallerObjectId`` (an Entra object id) and ``MSCRM.CallerID`` (a ``systemuserid``) impersonate
  another user, which needs the ``prvActOnBehalfOfAnotherUser`` privilege (System Administrator has it).
  See ``docs/reference/dataverse-web-api.md`` (section 1).
- F&O (:class:`FnoAccess`): the app must be registered on the Microsoft Entra applications page
  (``SysAADClientTable``: client id -> user id), else 401; the caller is that user.
- A user's token (delegated: ``scp``, no ``roles``) names the user by its Entra object id (``oid``): Dataverse
  finds the ``systemusers`` row whose ``azureactivedirectoryobjectid`` it is (none, or disabled: 403
  ``0x80072560``; no security role: 403 ``0x80040220``) and the caller is its ``domainname``; F&O maps the
  object id (or the ``upn``) to an F&O user id (none: 401).

The well-known apps (the development app and the bridge's registration) are application users of Sales from the
start, and the identity service's well-known user is a Sales user (Salesperson) and the F&O user ``developer``:
their ``systemusers`` rows are provisioned on first use, as Dataverse provisions the dual-write app user when an
environment is linked. What the control planes register is kept in the service's database
(:mod:`sandbox.auth.registrations`).
"""

from __future__ import annotations

import abc
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.auth.registrations import APPLICATION, USER, Registrations
from sandbox.errors import NotFound, SandboxError, Unauthorized, error_for_status
from sandbox.identity.registry import DEV_USER_OBJECT_ID, DEV_USER_UPN
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT
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
#: the role the well-known development user (and users registered without roles) get
SALESPERSON = "Salesperson"
#: the F&O user id of the identity service's well-known development user
DEV_FNO_USER_ID = "developer"
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

    @abc.abstractmethod
    def register_user(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a user of the identity service a caller of this service (``POST /_sandbox/auth/users``)."""

    @abc.abstractmethod
    def describe_users(self) -> list[dict[str, Any]]:
        """The users this service knows as callers."""


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
#: the well-known development user of the identity service, a Sales user (by Entra object id) from the start
BUILTIN_USERS = {DEV_USER_OBJECT_ID: _BuiltinUser(DEV_USER_UPN, "Sandbox", "Developer", [SALESPERSON])}


def is_delegated(claims: dict[str, Any]) -> bool:
    """Whether a token was issued to a signed-in user (``scp``) rather than to an app alone (``roles`` or none)."""
    return bool(claims.get("scp"))


class DataverseAccess(CallerPolicy):
    """Application users (``systemusers`` with ``applicationid``) and users (``systemusers`` with
    ``azureactivedirectoryobjectid``) of a Dataverse-shaped service, with their security roles.

    The roles and what the control plane registered are kept in the service's database
    (:class:`~sandbox.auth.registrations.Registrations`): they survive a restart, and a registered caller's
    ``systemusers`` row is provisioned again when a reset removed it.
    """

    def __init__(self, store: Store, configured_users: list[dict[str, Any]] | None = None) -> None:
        self.store = store
        self.registrations = Registrations(store)
        #: users of the identity service's config file (:attr:`sandbox.auth.settings.AuthSettings.users`)
        self.configured: dict[str, dict[str, Any]] = {
            str(u["object_id"]): {
                "firstname": u.get("given_name") or u["user_principal_name"].split("@", 1)[0],
                "lastname": u.get("surname") or "-",
                "domainname": u["user_principal_name"],
                "roles": list(u.get("sales_roles") or []),
            }
            for u in configured_users or ()
        }
        self._lock = threading.Lock()
        self._principals: dict[tuple[str, str], tuple[float, dict[str, Any] | None, list[str]]] = {}

    def _find(self, where: dict[str, Any]) -> dict[str, Any] | None:
        with self.store.db.transaction(may_sync=False):
            rows = self.store.find("systemuser", where, limit=1)
        return rows[0] if rows else None

    def principal(self, kind: str, key: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The enabled ``systemusers`` row of an app (``kind`` :data:`APPLICATION`, by application id) or a user
        (:data:`USER`, by Entra object id) and its security roles; a built-in or registered caller's row is
        provisioned when missing. Looked up at most once every few seconds per caller: every request asks."""
        now = time.monotonic()
        with self._lock:
            cached = self._principals.get((kind, key))
        if cached is not None and now - cached[0] < USER_CACHE_SECONDS:
            return cached[1], cached[2]
        spec = self.registrations.get(kind, key) or self._builtin(kind, key)
        if spec is None and kind == USER:
            spec = self.configured.get(key)
        column = "applicationid" if kind == APPLICATION else "azureactivedirectoryobjectid"
        row = self._find({column: key})
        if row is None and spec is not None:
            row = self._provision(kind, key, spec)
        user = None if row is None or row.get("isdisabled") else row
        roles = list(spec.get("roles") or []) if spec is not None else []
        with self._lock:
            self._principals[(kind, key)] = (now, user, roles)
        return user, roles

    def app_user(self, app_id: str) -> dict[str, Any] | None:
        """The enabled application user of ``app_id`` (see :meth:`principal`)."""
        return self.principal(APPLICATION, app_id)[0]

    @staticmethod
    def _builtin(kind: str, key: str) -> dict[str, Any] | None:
        builtin = (BUILTIN_APP_USERS if kind == APPLICATION else BUILTIN_USERS).get(key)
        if builtin is None:
            return None
        return {
            "firstname": builtin.first,
            "lastname": builtin.last,
            "domainname": builtin.identity,
            "roles": builtin.roles,
        }

    def _provision(self, kind: str, key: str, spec: dict[str, Any]) -> dict[str, Any]:
        column = "applicationid" if kind == APPLICATION else "azureactivedirectoryobjectid"
        values = {name: spec[name] for name in ("firstname", "lastname", "domainname") if spec.get(name)}
        if kind == USER:
            values["internalemailaddress"] = spec.get("domainname")
        with self._lock, self.store.db.transaction(may_sync=False):
            existing = self.store.find("systemuser", {column: key}, limit=1) or self.store.find(
                "systemuser", {"domainname": values["domainname"]}, limit=1
            )
            if existing:
                return self.store.update(
                    "systemuser", existing[0], {**values, column: key}, identity=SYSTEM_IDENTITY, via_api=False
                )
            return self.store.insert("systemuser", {**values, column: key}, identity=SYSTEM_IDENTITY, via_api=False)

    def identity(self, claims: dict[str, Any], headers: Any) -> str:
        if is_delegated(claims):
            user, roles = self.principal(USER, str(claims.get("oid") or ""))
        else:
            user, roles = self.principal(APPLICATION, str(claims.get("appid") or claims.get("azp") or ""))
        if user is None:
            raise forbidden("The user is not a member of the organization.", NOT_A_MEMBER)
        user_id = user.get("systemuserid")
        if not roles:
            raise forbidden(
                f"Principal user (Id={user_id}, type=8, roleCount=0, privilegeCount=0, accessMode="
                f"{0 if is_delegated(claims) else 4}), is missing prvReadOrganization privilege. Assign the "
                f"{'user' if is_delegated(claims) else 'application user'} a security role.",
                PRIVILEGE_MISSING,
            )
        identity = str(user.get("domainname") or user_id)
        by_object = headers.get("CallerObjectId")
        by_user = headers.get("MSCRM.CallerID")
        if not (by_object or by_user):
            return identity
        if not ACT_ON_BEHALF_ROLES.intersection(roles):
            raise forbidden(
                f"Principal user (Id={user_id}, type=8, roleCount={len(roles)}, privilegeCount={len(roles) * 100}, "
                f"accessMode={0 if is_delegated(claims) else 4}), is missing prvActOnBehalfOfAnotherUser privilege "
                f"(Id={_PRV_ACT_ON_BEHALF}) on OTC=8 for entity 'systemuser'.",
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
        if app_id is None or not _names(roles):
            raise error_for_status(
                400, "Give 'applicationid' (a GUID) and 'roles' (a list of security role names).", INVALID_ARGUMENT
            )
        name = str(body.get("name") or f"app {app_id}")
        spec = {"firstname": "#", "lastname": name, "domainname": str(body.get("identity") or name), "roles": roles}
        return {"applicationid": app_id, **self._save(APPLICATION, app_id, spec)}

    def register_user(self, body: dict[str, Any]) -> dict[str, Any]:
        object_id = _guid(body.get("azureactivedirectoryobjectid") or body.get("object_id"))
        upn = body.get("domainname") or body.get("user_principal_name") or body.get("upn")
        roles = body.get("roles", [SALESPERSON])
        if object_id is None or not isinstance(upn, str) or "@" not in upn or not _names(roles):
            raise error_for_status(
                400,
                "Give 'azureactivedirectoryobjectid' (the user's Entra object id), 'domainname' (the user principal "
                "name) and 'roles' (a list of security role names).",
                INVALID_ARGUMENT,
            )
        first = str(body.get("firstname") or upn.split("@", 1)[0])
        spec = {"firstname": first, "lastname": str(body.get("lastname") or "-"), "domainname": upn, "roles": roles}
        return {"azureactivedirectoryobjectid": object_id, **self._save(USER, object_id, spec)}

    def _save(self, kind: str, key: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Keep the registration, write its ``systemusers`` row and forget the cached look-up."""
        self.registrations.put(kind, key, spec)
        row = self._provision(kind, key, spec)
        with self._lock:
            self._principals.pop((kind, key), None)
        return {"systemuserid": row.get("systemuserid"), "roles": list(spec["roles"]), "identity": spec["domainname"]}

    def describe(self) -> list[dict[str, Any]]:
        apps = {app: {"roles": list(user.roles)} for app, user in BUILTIN_APP_USERS.items()}
        apps.update({app: {"roles": spec["roles"]} for app, spec in self.registrations.all(APPLICATION).items()})
        return [{"applicationid": app, **entry} for app, entry in sorted(apps.items())]

    def describe_users(self) -> list[dict[str, Any]]:
        users = {oid: self._builtin(USER, oid) or {} for oid in BUILTIN_USERS}
        users.update(self.configured)
        users.update(self.registrations.all(USER))
        return [
            {"azureactivedirectoryobjectid": oid, "domainname": spec.get("domainname"), "roles": spec.get("roles")}
            for oid, spec in sorted(users.items())
        ]


class FnoAccess(CallerPolicy):
    """Who may call an F&O-shaped service: apps on its Microsoft Entra applications page (client id -> F&O user id)
    and users mapped by their Entra object id or user principal name to an F&O user id (the mock has no user
    entity, so this mapping stands for *System administration > Users*). Kept in the service's database."""

    placeholder_tokens = frozenset({D365FO_LOCAL_TOKEN})

    def __init__(self, store: Store | None = None, configured_users: list[dict[str, Any]] | None = None) -> None:
        self.registrations = None if store is None else Registrations(store)
        #: users of the identity service's config file, by object id (:attr:`AuthSettings.users`)
        self.configured: dict[str, dict[str, Any]] = {
            str(u["object_id"]): {"user_id": u["scm_user_id"], "user_principal_name": u["user_principal_name"]}
            for u in configured_users or ()
            if u.get("scm_user_id")
        }
        self._memory: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}

    @property
    def applications(self) -> dict[str, dict[str, str]]:
        """Application id -> ``{"name", "user_id"}``: the built-in rows and the registered ones."""
        registered = self._all(APPLICATION)
        return {
            **BUILTIN_FNO_APPLICATIONS,
            **{k: {"name": v["name"], "user_id": v["user_id"]} for k, v in registered.items()},
        }

    def _all(self, kind: str) -> dict[str, dict[str, Any]]:
        if self.registrations is not None:
            return self.registrations.all(kind)
        with self._lock:
            return {key: spec for (k, key), spec in self._memory.items() if k == kind}

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get((kind, key))
        if cached is not None and now - cached[0] < USER_CACHE_SECONDS:
            return cached[1]
        if self.registrations is not None:
            spec = self.registrations.get(kind, key)
        else:
            with self._lock:
                spec = self._memory.get((kind, key))
        with self._lock:
            self._cache[(kind, key)] = (now, spec)
        return spec

    def _put(self, kind: str, key: str, spec: dict[str, Any]) -> None:
        if self.registrations is not None:
            self.registrations.put(kind, key, spec)
        with self._lock:
            if self.registrations is None:
                self._memory[(kind, key)] = spec
            self._cache.pop((kind, key), None)

    def identity(self, claims: dict[str, Any], headers: Any) -> str:
        if is_delegated(claims):
            return self._user_identity(claims)
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        application = BUILTIN_FNO_APPLICATIONS.get(app_id) or self._get(APPLICATION, app_id)
        if application is None:
            # F&O answers an app missing from the Microsoft Entra applications page with a bare 401
            raise Unauthorized(
                f"The application '{app_id}' is not registered on the Microsoft Entra applications page "
                "(System administration > Setup > Microsoft Entra applications)."
            )
        return str(application["user_id"])

    def _user_identity(self, claims: dict[str, Any]) -> str:
        oid = str(claims.get("oid") or "")
        upn = str(claims.get("upn") or claims.get("unique_name") or "").lower()
        mapped = (
            BUILTIN_FNO_USERS.get(oid)
            or self.configured.get(oid)
            or self._get(USER, oid)
            or (self._get(USER, f"upn:{upn}") if upn else None)
        )
        if mapped is None:
            # F&O refuses a signed-in user it has no user for (System administration > Users) with a bare 401
            raise Unauthorized(
                f"The user '{upn or oid}' is not a user of this environment: add the user with its Microsoft Entra "
                "identity (System administration > Users), or POST /_sandbox/auth/users."
            )
        return str(mapped["user_id"])

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        app_id = _guid(body.get("applicationid") or body.get("client_id"))
        user_id = body.get("user_id") or body.get("identity")
        if app_id is None or not isinstance(user_id, str) or not user_id.strip():
            raise error_for_status(400, "Give 'applicationid' (a GUID) and 'user_id' (the F&O user it acts as).", "")
        entry = {"name": str(body.get("name") or app_id), "user_id": user_id.strip()}
        self._put(APPLICATION, app_id, entry)
        return {"applicationid": app_id, **entry}

    def register_user(self, body: dict[str, Any]) -> dict[str, Any]:
        object_id = _guid(body.get("object_id") or body.get("azureactivedirectoryobjectid"))
        upn = body.get("user_principal_name") or body.get("upn")
        user_id = body.get("user_id")
        if (object_id is None and not isinstance(upn, str)) or not isinstance(user_id, str) or not user_id.strip():
            raise error_for_status(
                400,
                "Give 'user_id' (the F&O user) and the user's 'object_id' (Entra object id) or 'user_principal_name'.",
                "",
            )
        entry = {"user_id": user_id.strip(), "object_id": object_id, "user_principal_name": upn}
        if object_id is not None:
            self._put(USER, object_id, entry)
        if isinstance(upn, str) and upn.strip():
            self._put(USER, f"upn:{upn.strip().lower()}", entry)
        return entry

    def describe(self) -> list[dict[str, Any]]:
        return [{"applicationid": app, **entry} for app, entry in sorted(self.applications.items())]

    def describe_users(self) -> list[dict[str, Any]]:
        entries = [{"object_id": oid, **entry} for oid, entry in {**BUILTIN_FNO_USERS, **self.configured}.items()]
        seen: set[str] = set()
        for spec in self._all(USER).values():
            marker = json.dumps(spec, sort_keys=True)
            if marker not in seen:
                seen.add(marker)
                entries.append(dict(spec))
        return entries


#: the F&O users of the built-in apps (the Microsoft Entra applications page's rows the sandbox starts with)
BUILTIN_FNO_APPLICATIONS: dict[str, dict[str, str]] = {
    DEV_CLIENT_ID: {"name": "Sandbox developer", "user_id": DEV_IDENTITY},
    BRIDGE_CLIENT_ID: {"name": "Dual-write", "user_id": INTEGRATION_IDENTITY},
}
#: the F&O user of the identity service's well-known development user
BUILTIN_FNO_USERS: dict[str, dict[str, Any]] = {
    DEV_USER_OBJECT_ID: {"user_id": DEV_FNO_USER_ID, "user_principal_name": DEV_USER_UPN}
}


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _guid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value).strip().strip("{}")))
    except (ValueError, AttributeError):
        return None
