"""The identity service: client credentials on both token endpoints, discovery, keys, Entra's error shapes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from sandbox.identity import (
    ADMIN_ROLE,
    DEV_TENANT_DOMAIN,
    INTEGRATION_ROLE,
    IdentityConfig,
    RegistryError,
    SigningKey,
    create_app,
    identity_runtime,
    issuer_for,
    load_config,
)
from sandbox.wellknown import BRIDGE_CLIENT_ID, DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID

SALES = "http://127.0.0.1:5101"
V2 = f"/{DEV_TENANT_ID}/oauth2/v2.0/token"
V1 = f"/{DEV_TENANT_ID}/oauth2/token"


@pytest.fixture
def identity() -> FlaskClient:
    return create_app(IdentityConfig(resources=[SALES])).test_client()


def form(**values: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
        **values,
    }


def assert_aadsts(response: Any, status: int, error: str, code: int) -> dict[str, Any]:
    """Entra's error body: error, AADSTS description with trace/correlation/timestamp lines, codes, ids."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == error and body["error_codes"] == [code]
    description = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ") and "\r\nTrace ID: " in description
    assert f"Correlation ID: {body['correlation_id']}" in description and body["timestamp"] in description
    return body


def decode(identity: FlaskClient, token: str, audience: str) -> dict[str, Any]:
    keys = identity.get(f"/{DEV_TENANT_ID}/discovery/v2.0/keys").get_json()["keys"]
    header = jwt.get_unverified_header(token)
    key = next(k for k in keys if k["kid"] == header["kid"])
    return jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience, issuer=issuer_for(DEV_TENANT_ID)
    )


def test_v2_client_credentials_issue_an_rs256_v1_token_for_the_scope_s_resource(identity: FlaskClient) -> None:
    """scope=<origin>/.default -> a Bearer token verifiable with the published keys, aud the origin, v1 issuer, app
    id, object id, tenant, roles, an hour of lifetime."""
    response = identity.post(V2, data=form(scope=f"{SALES}/.default"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    claims = decode(identity, body["access_token"], SALES)
    assert claims["appid"] == DEV_CLIENT_ID and claims["tid"] == DEV_TENANT_ID and claims["ver"] == "1.0"
    assert claims["oid"] and claims["sub"] == claims["oid"] and claims["roles"] == [ADMIN_ROLE]
    assert claims["exp"] - claims["iat"] == 3599 and claims["nbf"] == claims["iat"]


def test_v1_endpoint_takes_resource_and_answers_numbers_as_strings(identity: FlaskClient) -> None:
    response = identity.post(V1, data=form(resource=SALES))
    body = response.get_json()
    assert response.status_code == 200 and body["expires_in"] == "3599" and body["resource"] == SALES
    assert decode(identity, body["access_token"], SALES)["appid"] == DEV_CLIENT_ID


def test_loopback_names_are_one_host_and_the_tenant_answers_to_its_domain(identity: FlaskClient) -> None:
    """A token asked for localhost works (its aud says localhost), by the tenant's domain name too."""
    response = identity.post(
        f"/{DEV_TENANT_DOMAIN}/oauth2/v2.0/token", data=form(scope="http://localhost:5101/.default")
    )
    assert response.status_code == 200
    assert jwt.decode(response.get_json()["access_token"], options={"verify_signature": False})["aud"] == (
        "http://localhost:5101"
    )


def test_client_secret_basic_is_accepted(identity: FlaskClient) -> None:
    basic = base64.b64encode(f"{DEV_CLIENT_ID}:{DEV_CLIENT_SECRET}".encode()).decode()
    response = identity.post(
        V2,
        data={"grant_type": "client_credentials", "scope": f"{SALES}/.default"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200


def test_a_wrong_secret_is_invalid_client_aadsts7000215(identity: FlaskClient) -> None:
    body = assert_aadsts(
        identity.post(V2, data=form(client_secret="nope", scope=f"{SALES}/.default")), 401, "invalid_client", 7000215
    )
    assert DEV_CLIENT_ID in body["error_description"]


def test_an_unknown_app_is_aadsts700016(identity: FlaskClient) -> None:
    unknown = "11111111-2222-3333-4444-555555555555"
    body = assert_aadsts(
        identity.post(V2, data=form(client_id=unknown, scope=f"{SALES}/.default")), 400, "unauthorized_client", 700016
    )
    assert unknown in body["error_description"]


def test_an_unknown_resource_is_aadsts500011(identity: FlaskClient) -> None:
    assert_aadsts(
        identity.post(V2, data=form(scope="https://contoso.crm.dynamics.com/.default")), 400, "invalid_resource", 500011
    )
    assert_aadsts(identity.post(V1, data=form(resource="http://127.0.0.1:9999")), 400, "invalid_resource", 500011)


def test_a_scope_without_default_is_invalid_scope(identity: FlaskClient) -> None:
    assert_aadsts(identity.post(V2, data=form(scope=f"{SALES}/user_impersonation")), 400, "invalid_scope", 1002012)


def test_an_unknown_tenant_is_aadsts90002(identity: FlaskClient) -> None:
    assert_aadsts(
        identity.post("/contoso.onmicrosoft.com/oauth2/v2.0/token", data=form(scope=f"{SALES}/.default")),
        400,
        "invalid_request",
        90002,
    )
    assert_aadsts(identity.get("/contoso/v2.0/.well-known/openid-configuration"), 400, "invalid_request", 90002)


def test_other_grants_and_missing_parameters_are_refused(identity: FlaskClient) -> None:
    assert_aadsts(identity.post(V2, data=form(grant_type="implicit")), 400, "unsupported_grant_type", 70003)
    assert_aadsts(identity.post(V2, data={"client_id": DEV_CLIENT_ID}), 400, "invalid_request", 900144)
    assert_aadsts(identity.post(V2, data=form()), 400, "invalid_request", 900144)  # no scope
    assert_aadsts(
        identity.post(V2, data=form(client_secret="", scope=f"{SALES}/.default")), 401, "invalid_client", 7000218
    )
    assert_aadsts(identity.post(V2, json={"grant_type": "client_credentials"}), 400, "invalid_request", 900144)


def test_discovery_names_this_host_s_endpoints_and_keys(identity: FlaskClient) -> None:
    doc = identity.get(f"/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration").get_json()
    assert doc["token_endpoint"] == f"http://localhost/{DEV_TENANT_ID}/oauth2/v2.0/token"
    assert doc["jwks_uri"].endswith(f"/{DEV_TENANT_ID}/discovery/v2.0/keys")
    assert doc["issuer"] == f"http://localhost/{DEV_TENANT_ID}/v2.0"
    v1 = identity.get(f"/{DEV_TENANT_ID}/.well-known/openid-configuration").get_json()
    assert v1["token_endpoint"].endswith("/oauth2/token") and v1["issuer"] == issuer_for(DEV_TENANT_ID)
    keys = identity.get(f"/{DEV_TENANT_ID}/discovery/v2.0/keys").get_json()["keys"]
    assert [(k["kty"], k["use"]) for k in keys] == [("RSA", "sig")] and keys[0]["kid"] == keys[0]["x5t"]


def test_the_signing_key_is_kept_in_the_data_folder(tmp_path: Path) -> None:
    """One key across restarts with a data folder (tokens stay valid), owner-only; a fresh one in memory."""
    first = identity_runtime(create_app(IdentityConfig(data_dir=tmp_path)))
    again = identity_runtime(create_app(IdentityConfig(data_dir=tmp_path)))
    assert first.key.kid == again.key.kid and (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0
    assert identity_runtime(create_app(IdentityConfig())).key.kid != first.key.kid
    assert SigningKey.load_or_create(tmp_path / "signing-key.pem").kid == first.key.kid


def test_control_plane_registers_apps_for_admins_only(tmp_path: Path) -> None:
    """POST /_sandbox/apps needs an admin app's token; the new app gets tokens; it is kept in the data folder."""
    app = create_app(IdentityConfig(data_dir=tmp_path, resources=[SALES]))
    client = app.test_client()
    runtime = identity_runtime(app)
    assert client.post("/_sandbox/apps", json={"display_name": "x"}).status_code == 401
    bridge_token = runtime.token(BRIDGE_CLIENT_ID, SALES)
    denied = client.post(
        "/_sandbox/apps", json={"display_name": "x"}, headers={"Authorization": f"Bearer {bridge_token}"}
    )
    assert denied.status_code == 403
    admin = {"Authorization": f"Bearer {runtime.token(DEV_CLIENT_ID, SALES)}"}
    created = client.post("/_sandbox/apps", json={"display_name": "Reports", "roles": ["Reader"]}, headers=admin)
    assert created.status_code == 201
    app_reg = created.get_json()
    token = client.post(
        V2,
        data=form(client_id=app_reg["client_id"], client_secret=app_reg["client_secret"], scope=f"{SALES}/.default"),
    )
    assert token.status_code == 200
    listed = client.get("/_sandbox/apps", headers=admin).get_json()["apps"]
    assert {a["display_name"] for a in listed} >= {"Reports", "Dual-write bridge"}
    assert all("client_secret" not in a for a in listed)
    assert identity_runtime(create_app(IdentityConfig(data_dir=tmp_path))).directory.app(app_reg["client_id"])
    bad = client.post("/_sandbox/apps", json={"client_id": "not-a-guid"}, headers=admin)
    assert bad.status_code == 400
    assert client.get("/_sandbox/health").get_json() == {"status": "ok", "service": "identity"}


def test_config_file_adds_apps_and_refuses_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "identity.yaml"
    path.write_text(
        "apps:\n  - client_id: 0e0c1b3a-7d7e-4f45-9a8c-3d0f2b9b1a11\n    client_secret: s3cret\n"
        f"    display_name: ERP connector\n    roles: [{INTEGRATION_ROLE}]\n",
        encoding="utf-8",
    )
    apps = load_config(path)["apps"]
    assert [(a.display_name, a.roles) for a in apps] == [("ERP connector", [INTEGRATION_ROLE])]
    path.write_text("apps:\n  - client_id: nope\n    client_secret: x\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="not a GUID"):
        load_config(path)
