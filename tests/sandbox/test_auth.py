"""Token checks on the mocks, their control planes and the bridge: the real services' 401s and 403s, the caller's
identity from the token, impersonation only with the privilege."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.auth import AUTH_OPTION, AuthSettings, KeySet, auth_guard
from sandbox.identity import AppRegistration, IdentityConfig, IdentityRuntime, create_app, identity_runtime, mint
from sandbox.testing import assert_dataverse_error, assert_fno_error
from sandbox.wellknown import (
    BRIDGE_CLIENT_ID,
    DEV_CLIENT_ID,
    DEV_IDENTITY,
    DEV_TENANT_ID,
    INTEGRATION_IDENTITY,
)
from tests.golden import Golden

IDENTITY = "http://identity.sandbox"
SALES = "http://sales.sandbox"
SCM = "http://scm.sandbox"
BRIDGE = "http://bridge.sandbox"
#: an app registered in the tenant but neither an application user in Sales nor on SCM's Entra applications page
STRANGER = AppRegistration("0e0c1b3a-7d7e-4f45-9a8c-3d0f2b9b1a11", "stranger-secret", "Stranger")
SETTINGS = AuthSettings(enabled=True, identity_url=IDENTITY)


@pytest.fixture
def identity() -> IdentityRuntime:
    return identity_runtime(create_app(IdentityConfig(apps=[STRANGER], resources=[SALES, SCM, BRIDGE])))


def guarded(golden: Golden, name: str, identity: IdentityRuntime) -> Flask:
    app = golden.service_app(name, {AUTH_OPTION: SETTINGS.to_options()})
    guard = auth_guard(app)
    assert guard is not None
    guard.use_keys(KeySet(fetch=identity.jwks))
    return app


@pytest.fixture
def sales(golden: Golden, identity: IdentityRuntime) -> Iterator[FlaskClient]:
    app = guarded(golden, "sales", identity)
    yield app.test_client()
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def scm(golden: Golden, identity: IdentityRuntime) -> Iterator[FlaskClient]:
    app = guarded(golden, "scm", identity)
    yield app.test_client()
    app.extensions["sandbox"].db.dispose()


def bearer(identity: IdentityRuntime, app_id: str, audience: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.token(app_id, audience, **kwargs)}"}


def get(client: FlaskClient, path: str, base: str, headers: dict[str, str] | None = None) -> Any:
    return client.get(path, base_url=base, headers=headers or {})


# ---- 401: no token, a bad one, the wrong audience, an expired one ---------------------------------------------
def test_sales_without_a_token_is_401_with_the_challenge_clients_discover_the_authority_from(
    sales: FlaskClient,
) -> None:
    response = get(sales, "/api/data/v9.2/accounts", SALES)
    assert_dataverse_error(response, 401)
    assert response.headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri={IDENTITY}/{DEV_TENANT_ID}/oauth2/authorize, resource_id={SALES}/"
    )


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0."])
def test_sales_with_a_garbage_token_is_401_invalid_token(sales: FlaskClient, token: str) -> None:
    response = get(sales, "/api/data/v9.2/accounts", SALES, {"Authorization": f"Bearer {token}"})
    body = assert_dataverse_error(response, 401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", authorization_uri=') and "resource_id=" in challenge
    assert body["message"].startswith("IDX1")


def test_a_token_for_another_service_is_401_audience_validation_failed(
    sales: FlaskClient, identity: IdentityRuntime
) -> None:
    response = get(sales, "/api/data/v9.2/accounts", SALES, bearer(identity, DEV_CLIENT_ID, SCM))
    assert_dataverse_error(response, 401, contains="IDX10214: Audience validation failed")


def test_an_expired_token_is_401_lifetime_validation_failed(sales: FlaskClient, identity: IdentityRuntime) -> None:
    two_hours_ago = time.time() - 7200
    response = get(sales, "/api/data/v9.2/accounts", SALES, bearer(identity, DEV_CLIENT_ID, SALES, now=two_hours_ago))
    assert_dataverse_error(response, 401, contains="IDX10223: Lifetime validation failed. The token is expired")
    assert "error_description=" in response.headers["WWW-Authenticate"]


def test_a_token_signed_by_another_key_is_401(sales: FlaskClient) -> None:
    forger = identity_runtime(create_app(IdentityConfig(resources=[SALES])))
    response = get(sales, "/api/data/v9.2/accounts", SALES, bearer(forger, DEV_CLIENT_ID, SALES))
    assert_dataverse_error(response, 401, contains="Signature validation failed")


def test_a_token_of_another_tenant_is_401_issuer_validation_failed(
    sales: FlaskClient, identity: IdentityRuntime
) -> None:
    app = identity.directory.app(DEV_CLIENT_ID)
    assert app is not None
    token = mint(app, "72f988bf-86f1-41af-91ab-2d7cd011db47", SALES, identity.key)
    response = get(sales, "/api/data/v9.2/accounts", SALES, {"Authorization": f"Bearer {token}"})
    assert_dataverse_error(response, 401, contains="IDX10205: Issuer validation failed")


def test_scm_without_or_with_a_bad_token_is_401_in_its_own_shape(scm: FlaskClient, identity: IdentityRuntime) -> None:
    assert_fno_error(get(scm, "/data/CustomersV3", SCM), 401)
    assert "authorization_uri=" in get(scm, "/data/CustomersV3", SCM).headers["WWW-Authenticate"]
    expired = bearer(identity, DEV_CLIENT_ID, SCM, now=time.time() - 7200)
    assert_fno_error(get(scm, "/data/CustomersV3", SCM, expired), 401, contains="expired")


# ---- a valid token: 200, the caller from the token ------------------------------------------------------------
def test_a_token_of_the_well_known_app_reads_and_writes(
    sales: FlaskClient, scm: FlaskClient, identity: IdentityRuntime
) -> None:
    headers = bearer(identity, DEV_CLIENT_ID, SALES)
    assert get(sales, "/api/data/v9.2/accounts?$top=1", SALES, headers).status_code == 200
    created = sales.post("/api/data/v9.2/accounts", base_url=SALES, headers=headers, json={"name": "Tokened"})
    assert created.status_code == 204
    assert get(scm, "/data/CustomersV3?$top=1", SCM, bearer(identity, DEV_CLIENT_ID, SCM)).status_code == 200


def test_the_identity_header_changes_nothing_with_auth_on(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """``X-Sandbox-Identity: dualwrite`` with the development app's token: the write is still the developer's (the
    processing status SCM owns is not taken from it, the journal records the token's identity)."""
    headers = {**bearer(identity, DEV_CLIENT_ID, SALES), "X-Sandbox-Identity": INTEGRATION_IDENTITY}
    created = sales.post(
        "/api/data/v9.2/salesorders",
        base_url=SALES,
        headers={**headers, "Prefer": "return=representation"},
        json={"name": "Sneaky", "msdyn_processingstatus": 192350004},
    )
    assert created.status_code in (201, 400), created.get_data(as_text=True)
    if created.status_code == 201:
        assert created.get_json()["msdyn_processingstatus"] != 192350004
    journal = sales.get(
        "/_sandbox/journal?limit=1", base_url=SALES, headers=headers | bearer(identity, DEV_CLIENT_ID, SALES)
    )
    assert journal.get_json()["entries"][0]["identity"] == DEV_IDENTITY
    assert get(sales, "/api/data/v9.2/accounts", SALES, {"X-Sandbox-Identity": INTEGRATION_IDENTITY}).status_code == 401


def test_only_the_bridge_s_token_writes_scm_owned_columns(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """The bridge's registration is the integration identity: it may set the processing status SCM owns."""
    headers = bearer(identity, BRIDGE_CLIENT_ID, SALES)
    created = sales.post(
        "/api/data/v9.2/salesorders",
        base_url=SALES,
        headers={**headers, "Prefer": "return=representation"},
        json={"name": "Synced", "msdyn_processingstatus": 192350004},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["msdyn_processingstatus"] == 192350004


# ---- 403: apps that are not callers of the service -------------------------------------------------------------
def test_an_app_that_is_not_an_application_user_is_403_not_a_member(
    sales: FlaskClient, identity: IdentityRuntime
) -> None:
    response = get(sales, "/api/data/v9.2/accounts", SALES, bearer(identity, STRANGER.client_id, SALES))
    assert_dataverse_error(response, 403, code="0x80072560", contains="not a member of the organization")


def test_scm_refuses_an_app_missing_from_its_entra_applications_page_with_401(
    scm: FlaskClient, identity: IdentityRuntime
) -> None:
    response = get(scm, "/data/CustomersV3", SCM, bearer(identity, STRANGER.client_id, SCM))
    assert_fno_error(response, 401, contains="Microsoft Entra applications")


def test_registered_apps_become_callers_with_their_roles(
    sales: FlaskClient, scm: FlaskClient, identity: IdentityRuntime
) -> None:
    """An admin makes the app an application user (no role: 403 missing privilege; a role: 200) and registers it
    in SCM as a user id."""
    admin = bearer(identity, DEV_CLIENT_ID, SALES)
    stranger = bearer(identity, STRANGER.client_id, SALES)
    body = {"applicationid": STRANGER.client_id, "name": "Stranger", "roles": []}
    assert sales.post("/_sandbox/auth/applications", base_url=SALES, headers=admin, json=body).status_code == 201
    assert_dataverse_error(get(sales, "/api/data/v9.2/accounts", SALES, stranger), 403, code="0x80040220")
    body["roles"] = ["Salesperson"]
    assert sales.post("/_sandbox/auth/applications", base_url=SALES, headers=admin, json=body).status_code == 201
    assert get(sales, "/api/data/v9.2/accounts", SALES, stranger).status_code == 200
    listed = sales.get("/_sandbox/auth/applications", base_url=SALES, headers=admin).get_json()["applications"]
    assert {"applicationid": STRANGER.client_id, "roles": ["Salesperson"]} in listed
    bad = sales.post("/_sandbox/auth/applications", base_url=SALES, headers=admin, json={"applicationid": "x"})
    assert_dataverse_error(bad, 400)

    scm_admin = bearer(identity, DEV_CLIENT_ID, SCM)
    registered = scm.post(
        "/_sandbox/auth/applications",
        base_url=SCM,
        headers=scm_admin,
        json={"applicationid": STRANGER.client_id, "user_id": "erpuser"},
    )
    assert registered.status_code == 201
    assert get(scm, "/data/CustomersV3?$top=1", SCM, bearer(identity, STRANGER.client_id, SCM)).status_code == 200


def test_impersonation_needs_the_act_on_behalf_privilege(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """MSCRM.CallerID from an app without prvActOnBehalfOfAnotherUser: 403, nothing changes; the System Administrator
    app acts as the user (an unknown user: 404)."""
    admin = bearer(identity, DEV_CLIENT_ID, SALES)
    users = get(sales, "/api/data/v9.2/systemusers?$select=systemuserid,domainname", SALES, admin).get_json()["value"]
    person = next(u for u in users if "@" in (u["domainname"] or ""))
    bridge_app = {**bearer(identity, BRIDGE_CLIENT_ID, SALES), "MSCRM.CallerID": person["systemuserid"]}
    refused = sales.post("/api/data/v9.2/accounts", base_url=SALES, headers=bridge_app, json={"name": "Impostor"})
    assert_dataverse_error(refused, 403, code="0x80040220", contains="prvActOnBehalfOfAnotherUser")
    found = get(sales, "/api/data/v9.2/accounts?$filter=name eq 'Impostor'", SALES, admin).get_json()["value"]
    assert found == []
    acting = {**admin, "MSCRM.CallerID": person["systemuserid"]}
    assert (
        sales.post("/api/data/v9.2/accounts", base_url=SALES, headers=acting, json={"name": "On behalf"}).status_code
        == 204
    )
    journal = sales.get("/_sandbox/journal?limit=1&method=POST", base_url=SALES, headers=admin).get_json()["entries"]
    assert journal[0]["identity"] == person["domainname"]
    missing = {**admin, "CallerObjectId": "00000000-0000-0000-0000-0000000000aa"}
    assert_dataverse_error(get(sales, "/api/data/v9.2/accounts", SALES, missing), 404, code="0x80040217")


# ---- the control plane and what stays open ---------------------------------------------------------------------
def test_control_plane_needs_an_admin_app_and_health_stays_open(sales: FlaskClient, identity: IdentityRuntime) -> None:
    assert sales.get("/_sandbox/health", base_url=SALES).status_code == 200
    assert_dataverse_error(sales.post("/_sandbox/reset", base_url=SALES), 401)
    bridge_token = bearer(identity, BRIDGE_CLIENT_ID, SALES)
    assert_dataverse_error(sales.post("/_sandbox/faults", base_url=SALES, headers=bridge_token, json={}), 403)
    assert sales.get("/_sandbox/changes?after=0&limit=1", base_url=SALES, headers=bridge_token).status_code == 200
    admin = bearer(identity, DEV_CLIENT_ID, SALES)
    assert sales.get("/_sandbox/info", base_url=SALES, headers=admin).status_code == 200


def test_browser_pages_need_no_token(sales: FlaskClient) -> None:
    """The data browser's paths and GET / asking for HTML pass authentication (whatever they answer)."""
    for path, accept in (("/", "text/html"), ("/_browse/accounts", "text/html"), ("/_static/x.css", "*/*")):
        assert sales.get(path, base_url=SALES, headers={"Accept": accept}).status_code != 401
    assert sales.get("/", base_url=SALES, headers={"Accept": "application/json"}).status_code == 401


def test_faults_match_the_caller_the_token_names(sales: FlaskClient, identity: IdentityRuntime) -> None:
    """A fault for the integration identity fires on the bridge's token, not on a header claiming to be it."""
    admin = bearer(identity, DEV_CLIENT_ID, SALES)
    fault = {"status": 503, "path": "/api/data/v9.2/accounts", "identity": INTEGRATION_IDENTITY}
    assert sales.post("/_sandbox/faults", base_url=SALES, headers=admin, json=fault).status_code == 201
    posing = {**admin, "X-Sandbox-Identity": INTEGRATION_IDENTITY}
    assert get(sales, "/api/data/v9.2/accounts", SALES, posing).status_code == 200
    assert get(sales, "/api/data/v9.2/accounts", SALES, bearer(identity, BRIDGE_CLIENT_ID, SALES)).status_code == 503


# ---- the bridge ------------------------------------------------------------------------------------------------
@pytest.fixture
def bridge(golden: Golden, identity: IdentityRuntime) -> Iterator[FlaskClient]:
    from bridge.app import create_app as create_bridge
    from leadtocash.stack import bridge_config

    config = bridge_config(
        {"sales": SALES, "scm": SCM},
        transports={
            "sales": httpx.MockTransport(lambda r: httpx.Response(503)),
            "scm": httpx.MockTransport(lambda r: httpx.Response(503)),
        },
        start_worker=False,
        auth=SETTINGS,
    )
    app = create_bridge(config)
    guard = auth_guard(app)
    assert guard is not None
    guard.use_keys(KeySet(fetch=identity.jwks))
    yield app.test_client()
    app.extensions["bridge"].close()


def test_bridge_admin_api_needs_an_admin_app(bridge: FlaskClient, identity: IdentityRuntime) -> None:
    response = bridge.get("/api/maps", base_url=BRIDGE)
    assert response.status_code == 401 and "authorization_uri=" in response.headers["WWW-Authenticate"]
    assert response.get_json()["error"]["message"]
    assert bridge.get("/api/maps", base_url=BRIDGE, headers=bearer(identity, DEV_CLIENT_ID, BRIDGE)).status_code == 200
    as_bridge = bearer(identity, BRIDGE_CLIENT_ID, BRIDGE)
    assert bridge.post("/api/maps/customers-accounts/stop", base_url=BRIDGE, headers=as_bridge).status_code == 403
    wrong_audience = bearer(identity, DEV_CLIENT_ID, SALES)
    assert bridge.get("/api/maps", base_url=BRIDGE, headers=wrong_audience).status_code == 401


def test_bridge_live_endpoint_takes_the_integration_registration(
    bridge: FlaskClient, identity: IdentityRuntime
) -> None:
    payload = {"source": "scm", "changes": []}
    assert bridge.post("/api/live", base_url=BRIDGE, json=payload).status_code == 401
    answered = bridge.post(
        "/api/live", base_url=BRIDGE, json=payload, headers=bearer(identity, BRIDGE_CLIENT_ID, BRIDGE)
    )
    assert answered.status_code == 200, answered.get_data(as_text=True)


def test_bridge_console_health_and_metrics_stay_open(bridge: FlaskClient) -> None:
    for path in ("/", "/_sandbox/health", "/metrics"):
        assert bridge.get(path, base_url=BRIDGE).status_code != 401, path


def test_scm_takes_d365fo_client_s_localhost_placeholder_only_from_loopback_and_only_on_scm(
    sales: FlaskClient, scm: FlaskClient
) -> None:
    """d365fo-client never fetches a token for a loopback base URL; it sends a fixed value instead
    (docs/auth.md). SCM takes exactly that value from a loopback peer as the development app; from another
    address it is a bad token, and Sales (whose clients can all be given a token) never takes it."""
    placeholder = {"Authorization": "Bearer mock-token-for-localhost"}
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    ok = scm.get("/data/CustomersV3?$top=1", base_url=SCM, headers=placeholder, environ_base=loopback)
    assert ok.status_code == 200, ok.get_data(as_text=True)
    remote = scm.get(
        "/data/CustomersV3?$top=1", base_url=SCM, headers=placeholder, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert_fno_error(remote, 401)
    assert_fno_error(scm.get("/_sandbox/faults", base_url=SCM, headers=placeholder, environ_base=loopback), 403)
    assert_dataverse_error(
        sales.get("/api/data/v9.2/accounts", base_url=SALES, headers=placeholder, environ_base=loopback), 401
    )
