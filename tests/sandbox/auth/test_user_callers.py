"""Users' (delegated) tokens on the mocks: Dataverse maps the token's object id to a ``systemusers`` row with security
roles, F&O maps it (or the UPN) to an F&O user; both know callers registered over their control planes, kept in the
service's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from leadtocash.stack import factory
from sandbox.auth import AUTH_OPTION, AuthSettings, KeySet, auth_guard
from sandbox.identity import (
    DEV_USER_OBJECT_ID,
    DEV_USER_UPN,
    AppRegistration,
    IdentityConfig,
    IdentityRuntime,
    UserAccount,
    create_app,
    identity_runtime,
)
from sandbox.identity.registry import service_user
from sandbox.runtime import ServiceConfig
from sandbox.testing import assert_dataverse_error, assert_fno_error
from sandbox.wellknown import DEV_CLIENT_ID
from tests.golden import Golden, copy_database

IDENTITY = "http://identity.sandbox"
SALES = "http://sales.sandbox"
SCM = "http://scm.sandbox"
ANA = UserAccount("ana@contoso.example", "pw", "Ana Lopez", given_name="Ana", surname="Lopez")
STRANGER_APP = AppRegistration("0e0c1b3a-7d7e-4f45-9a8c-3d0f2b9b1a11", "stranger-secret", "Stranger")
BO = UserAccount("bo@contoso.example", "pw", "Bo")
CY = UserAccount("cy@contoso.example", "pw", "Cy")
#: Cy comes from the identity config file with Sales roles and an F&O user: the services know Cy from the start
SETTINGS = AuthSettings(
    enabled=True, identity_url=IDENTITY, users=[service_user(CY, {"sales_roles": ["Salesperson"], "scm_user_id": "cy"})]
)


@pytest.fixture
def identity() -> IdentityRuntime:
    return identity_runtime(
        create_app(IdentityConfig(apps=[STRANGER_APP], users=[ANA, BO, CY], resources=[SALES, SCM]))
    )


def guarded(app: Flask, identity: IdentityRuntime) -> Flask:
    guard = auth_guard(app)
    assert guard is not None
    guard.use_keys(KeySet(fetch=identity.jwks))
    return app


@pytest.fixture
def sales(golden: Golden, identity: IdentityRuntime) -> Iterator[FlaskClient]:
    app = guarded(golden.service_app("sales", {AUTH_OPTION: SETTINGS.to_options()}), identity)
    yield app.test_client()
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def scm(golden: Golden, identity: IdentityRuntime) -> Iterator[FlaskClient]:
    app = guarded(golden.service_app("scm", {AUTH_OPTION: SETTINGS.to_options()}), identity)
    yield app.test_client()
    app.extensions["sandbox"].db.dispose()


def user(identity: IdentityRuntime, upn: str, audience: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.user_token(upn, audience)}"}


def admin(identity: IdentityRuntime, audience: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.token(DEV_CLIENT_ID, audience)}"}


def who_am_i(sales: FlaskClient, headers: dict[str, str]) -> Any:
    return sales.get("/api/data/v9.2/WhoAmI()", base_url=SALES, headers=headers)


def owner_of_new_account(sales: FlaskClient, headers: dict[str, str], identity: IdentityRuntime) -> dict[str, Any]:
    """The ``systemusers`` row that owns an account the caller creates (Dataverse: the caller)."""
    created = sales.post(
        "/api/data/v9.2/accounts",
        base_url=SALES,
        headers={**headers, "Prefer": "return=representation"},
        json={"name": "Made by a user"},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    owner = created.get_json()["_ownerid_value"]
    return sales.get(f"/api/data/v9.2/systemusers({owner})", base_url=SALES, headers=admin(identity, SALES)).get_json()


def test_the_well_known_user_is_a_sales_user_and_writes_as_itself(
    sales: FlaskClient, identity: IdentityRuntime
) -> None:
    headers = user(identity, DEV_USER_UPN, SALES)
    assert who_am_i(sales, headers).status_code == 200
    row = owner_of_new_account(sales, headers, identity)
    assert (row["azureactivedirectoryobjectid"], row["domainname"]) == (DEV_USER_OBJECT_ID, DEV_USER_UPN)
    journal = sales.get("/_sandbox/journal?limit=1&method=POST", base_url=SALES, headers=admin(identity, SALES))
    assert journal.get_json()["entries"][0]["identity"] == DEV_USER_UPN


def test_who_am_i_names_the_caller_s_own_systemuser(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """WhoAmI answers the calling user's (or application user's) systemuserid, the one that owns what it creates
    (docs/reference/dataverse-web-api.md: WhoAmI returns the caller's UserId and BusinessUnitId)."""
    as_user = user(identity, DEV_USER_UPN, SALES)
    as_app = admin(identity, SALES)
    user_answer, app_answer = who_am_i(sales, as_user).get_json(), who_am_i(sales, as_app).get_json()
    assert user_answer["UserId"] == owner_of_new_account(sales, as_user, identity)["systemuserid"]
    assert app_answer["UserId"] == owner_of_new_account(sales, as_app, identity)["systemuserid"]
    assert user_answer["UserId"] != app_answer["UserId"]
    assert user_answer["OrganizationId"] == app_answer["OrganizationId"]
    assert user_answer["BusinessUnitId"]


def test_a_user_without_a_systemuser_is_403_not_a_member(sales: FlaskClient, identity: IdentityRuntime) -> None:
    response = who_am_i(sales, user(identity, ANA.user_principal_name, SALES))
    assert_dataverse_error(response, 403, code="0x80072560", contains="not a member of the organization")


def test_a_user_token_does_not_reach_the_control_plane(sales: FlaskClient, identity: IdentityRuntime) -> None:
    response = sales.get("/_sandbox/journal", base_url=SALES, headers=user(identity, DEV_USER_UPN, SALES))
    assert_dataverse_error(response, 403)


def test_registered_users_become_sales_users_with_their_roles(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """No role: 403 missing privilege; a role: 200, the caller's ``domainname`` the UPN; a bad body: 400."""
    body = {"azureactivedirectoryobjectid": ANA.object_id, "domainname": ANA.user_principal_name, "roles": []}
    added = sales.post("/_sandbox/auth/users", base_url=SALES, headers=admin(identity, SALES), json=body)
    assert added.status_code == 201 and added.get_json()["systemuserid"]
    ana = user(identity, ANA.user_principal_name, SALES)
    assert_dataverse_error(who_am_i(sales, ana), 403, code="0x80040220", contains="security role")
    body["roles"] = ["Salesperson"]
    sales.post("/_sandbox/auth/users", base_url=SALES, headers=admin(identity, SALES), json=body)
    assert owner_of_new_account(sales, ana, identity)["systemuserid"] == added.get_json()["systemuserid"]
    listed = sales.get("/_sandbox/auth/users", base_url=SALES, headers=admin(identity, SALES)).get_json()["users"]
    assert {"azureactivedirectoryobjectid": ANA.object_id, "domainname": ANA.user_principal_name} in [
        {k: u[k] for k in ("azureactivedirectoryobjectid", "domainname")} for u in listed
    ]
    bad = sales.post("/_sandbox/auth/users", base_url=SALES, headers=admin(identity, SALES), json={"roles": []})
    assert_dataverse_error(bad, 400, code="0x80040203")


def test_a_disabled_systemuser_is_refused(sales: FlaskClient, identity: IdentityRuntime) -> None:
    body = {
        "azureactivedirectoryobjectid": BO.object_id,
        "domainname": BO.user_principal_name,
        "roles": ["Salesperson"],
    }
    row = sales.post("/_sandbox/auth/users", base_url=SALES, headers=admin(identity, SALES), json=body).get_json()
    sales.patch(
        f"/api/data/v9.2/systemusers({row['systemuserid']})",
        base_url=SALES,
        headers=admin(identity, SALES),
        json={"isdisabled": True},
    )
    # a new app on the same data: no cached look-up
    assert_dataverse_error(who_am_i(sales, user(identity, BO.user_principal_name, SALES)), 403, code="0x80072560")


def test_users_of_the_identity_config_are_callers_of_both_services_from_the_start(
    sales: FlaskClient, scm: FlaskClient, identity: IdentityRuntime
) -> None:
    assert who_am_i(sales, user(identity, CY.user_principal_name, SALES)).status_code == 200
    response = scm.get("/data/CustomersV3?$top=1", base_url=SCM, headers=user(identity, CY.user_principal_name, SCM))
    assert response.status_code == 200


def test_scm_maps_users_by_object_id_or_upn(scm: FlaskClient, identity: IdentityRuntime) -> None:
    ana = user(identity, ANA.user_principal_name, SCM)
    assert_fno_error(scm.get("/data/CustomersV3?$top=1", base_url=SCM, headers=ana), 401, contains="not a user")
    assert (
        scm.get("/data/CustomersV3?$top=1", base_url=SCM, headers=user(identity, DEV_USER_UPN, SCM)).status_code == 200
    )
    body = {"user_principal_name": ANA.user_principal_name.upper(), "user_id": "ana"}
    assert scm.post("/_sandbox/auth/users", base_url=SCM, headers=admin(identity, SCM), json=body).status_code == 201
    assert scm.get("/data/CustomersV3?$top=1", base_url=SCM, headers=ana).status_code == 200
    journal = scm.get("/_sandbox/journal?limit=1", base_url=SCM, headers=admin(identity, SCM)).get_json()
    assert journal["entries"][0]["identity"] == "ana"
    bad = scm.post("/_sandbox/auth/users", base_url=SCM, headers=admin(identity, SCM), json={"user_id": "x"})
    assert_fno_error(bad, 400)


def file_app(name: str, file: Path, identity: IdentityRuntime) -> Flask:
    """Mock ``name`` on the SQLite file ``file``, as ``sandbox up`` runs it on its data folder."""
    app = factory(name)(
        ServiceConfig(database_url=f"sqlite:///{file}", seed=None, options={AUTH_OPTION: SETTINGS.to_options()})
    )
    return guarded(app, identity)


STRANGER = STRANGER_APP.client_id
REGISTRATIONS = {
    "sales": (
        SALES,
        {"applicationid": STRANGER, "name": "Stranger", "roles": ["Salesperson"]},
        {"azureactivedirectoryobjectid": ANA.object_id, "domainname": ANA.user_principal_name, "roles": ["Delegate"]},
        "/api/data/v9.2/WhoAmI()",
    ),
    "scm": (
        SCM,
        {"applicationid": STRANGER, "name": "Stranger", "user_id": "stranger"},
        {"object_id": ANA.object_id, "user_id": "ana"},
        "/data/CustomersV3?$top=1",
    ),
}


@pytest.mark.parametrize("name", sorted(REGISTRATIONS))
def test_registrations_live_in_the_service_s_database_across_a_restart_and_a_reset(
    golden: Golden, identity: IdentityRuntime, tmp_path: Path, name: str
) -> None:
    """Apps and users registered over the control plane are rows of the service's own database: a new app on the
    same file (a restart) knows them, and so it does after a reset of the data (Sales provisions the systemuser
    rows again)."""
    base, app_body, user_body, probe = REGISTRATIONS[name]
    file = tmp_path / f"{name}.sqlite"
    copy_database(golden.service(name), file)
    stranger = {"Authorization": f"Bearer {identity.token(STRANGER, base)}"}
    first = file_app(name, file, identity)
    client = first.test_client()
    for path, body in (("applications", app_body), ("users", user_body)):
        assert (
            client.post(f"/_sandbox/auth/{path}", base_url=base, headers=admin(identity, base), json=body).status_code
            == 201
        )
    first.extensions["sandbox"].db.dispose()

    again = file_app(name, file, identity)
    client = again.test_client()
    for headers in (stranger, user(identity, ANA.user_principal_name, base)):
        assert client.get(probe, base_url=base, headers=headers).status_code == 200
    assert client.post("/_sandbox/reset", base_url=base, headers=admin(identity, base)).status_code in (200, 204)
    again.extensions["sandbox"].db.dispose()

    after_reset = file_app(name, file, identity)
    client = after_reset.test_client()
    for headers in (stranger, user(identity, ANA.user_principal_name, base)):
        assert client.get(probe, base_url=base, headers=headers).status_code == 200
    after_reset.extensions["sandbox"].db.dispose()
