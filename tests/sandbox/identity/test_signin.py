"""User sign-in on the identity service: the password grant (v1 and v2), authorization code with PKCE through the
sign-in page, refresh tokens, device code, users by config and control plane, with Entra's error shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from flask.testing import FlaskClient

from sandbox.identity import (
    DEV_PUBLIC_CLIENT_ID,
    DEV_USER_OBJECT_ID,
    DEV_USER_PASSWORD,
    DEV_USER_UPN,
    AppRegistration,
    IdentityConfig,
    RegistryError,
    UserAccount,
    create_app,
    issuer_for,
    load_config,
)
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID
from tests.sandbox.test_identity import assert_aadsts

SALES = "http://127.0.0.1:5101"
V2 = f"/{DEV_TENANT_ID}/oauth2/v2.0/token"
V1 = f"/{DEV_TENANT_ID}/oauth2/token"
AUTHORIZE = f"/{DEV_TENANT_ID}/oauth2/v2.0/authorize"
REDIRECT = "http://localhost:8400/callback"
SCOPE = f"{SALES}/user_impersonation openid profile offline_access"
#: a confidential web app with a registered redirect URI
WEB_APP = AppRegistration(
    "7d1e2a40-1111-4c3a-9f00-00000000a11b", "web-secret", "Web app", redirect_uris=["https://app.example/signin"]
)


@pytest.fixture
def identity() -> FlaskClient:
    return create_app(IdentityConfig(apps=[WEB_APP], resources=[SALES], require_admin=False)).test_client()


def password_form(**values: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "client_id": DEV_PUBLIC_CLIENT_ID,
        "username": DEV_USER_UPN,
        "password": DEV_USER_PASSWORD,
        "scope": SCOPE,
        **values,
    }


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# ---- resource owner password credentials -----------------------------------------------------------------------
def test_the_password_grant_gives_a_delegated_token_with_id_and_refresh_tokens(identity: FlaskClient) -> None:
    answer = identity.post(V2, data={**password_form(), "client_info": "1"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["token_type"] == "Bearer" and body["scope"].startswith(f"{SALES}/user_impersonation")
    access = claims_of(body["access_token"])
    assert access["scp"] == "user_impersonation" and "roles" not in access
    assert (access["upn"], access["oid"], access["tid"], access["aud"]) == (
        DEV_USER_UPN,
        DEV_USER_OBJECT_ID,
        DEV_TENANT_ID,
        SALES,
    )
    assert access["appid"] == DEV_PUBLIC_CLIENT_ID and access["appidacr"] == "0" and access["name"]
    assert access["iss"] == issuer_for(DEV_TENANT_ID)
    id_token = claims_of(body["id_token"])
    assert id_token["aud"] == DEV_PUBLIC_CLIENT_ID and id_token["preferred_username"] == DEV_USER_UPN
    assert id_token["iss"] == f"http://localhost/{DEV_TENANT_ID}/v2.0"
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": DEV_USER_OBJECT_ID, "utid": DEV_TENANT_ID}
    assert body["refresh_token"]


def test_the_v1_password_grant_takes_a_resource(identity: FlaskClient) -> None:
    form = password_form(resource=SALES)
    del form["scope"]
    body = identity.post(V1, data=form).get_json()
    assert body["resource"] == SALES and body["expires_in"] == "3599"
    assert claims_of(body["access_token"])["upn"] == DEV_USER_UPN


@pytest.mark.parametrize(
    ("values", "status", "error", "code"),
    [
        ({"password": "wrong"}, 400, "invalid_grant", 50126),
        ({"username": "nobody@sandbox.onmicrosoft.com"}, 400, "invalid_grant", 50034),
        ({"client_id": "0e0c1b3a-7d7e-4f45-9a8c-3d0f2b9b1a11"}, 400, "unauthorized_client", 700016),
        ({"client_secret": "a secret"}, 401, "invalid_client", 700025),
        ({"client_id": DEV_CLIENT_ID}, 401, "invalid_client", 7000218),
        ({"client_id": DEV_CLIENT_ID, "client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"scope": "openid profile"}, 400, "invalid_scope", 70011),
        ({"scope": f"{SALES}/Files.Read"}, 400, "invalid_client", 65005),
        ({"scope": "http://127.0.0.1:9999/user_impersonation"}, 400, "invalid_resource", 500011),
        ({"password": ""}, 400, "invalid_request", 900144),
    ],
)
def test_password_grant_errors_have_entra_s_codes(
    identity: FlaskClient, values: dict[str, str], status: int, error: str, code: int
) -> None:
    assert_aadsts(identity.post(V2, data=password_form(**values)), status, error, code)


def test_a_confidential_client_signs_users_in_with_its_secret(identity: FlaskClient) -> None:
    body = identity.post(V2, data=password_form(client_id=DEV_CLIENT_ID, client_secret=DEV_CLIENT_SECRET)).get_json()
    assert claims_of(body["access_token"])["appidacr"] == "1"


def test_a_disabled_user_cannot_sign_in(identity: FlaskClient) -> None:
    added = identity.post("/_sandbox/users", json={"user_principal_name": "off@sandbox.onmicrosoft.com"})
    password = added.get_json()["password"]
    identity.post(
        "/_sandbox/users",
        json={"user_principal_name": "off@sandbox.onmicrosoft.com", "password": password, "account_enabled": False},
    )
    answer = identity.post(V2, data=password_form(username="off@sandbox.onmicrosoft.com", password=password))
    assert_aadsts(answer, 400, "invalid_grant", 50057)


def test_msal_s_user_realm_discovery_says_managed(identity: FlaskClient) -> None:
    known = identity.get(f"/common/userrealm/{DEV_USER_UPN}?api-version=1.0").get_json()
    assert known["account_type"] == "Managed" and known["domain_name"] == "sandbox.onmicrosoft.com"
    assert identity.get("/common/userrealm/x@y.example?api-version=1.0").get_json()["account_type"] == "Unknown"


# ---- refresh tokens --------------------------------------------------------------------------------------------
def test_a_refresh_token_gives_new_tokens_to_its_own_app_only(identity: FlaskClient) -> None:
    refresh = identity.post(V2, data=password_form()).get_json()["refresh_token"]
    form = {"grant_type": "refresh_token", "client_id": DEV_PUBLIC_CLIENT_ID, "refresh_token": refresh, "scope": SCOPE}
    renewed = identity.post(V2, data=form)
    assert renewed.status_code == 200 and claims_of(renewed.get_json()["access_token"])["upn"] == DEV_USER_UPN
    other = {**form, "client_id": DEV_CLIENT_ID, "client_secret": DEV_CLIENT_SECRET}
    assert_aadsts(identity.post(V2, data=other), 400, "invalid_grant", 70000)
    assert_aadsts(identity.post(V2, data={**form, "refresh_token": "garbage"}), 400, "invalid_grant", 9002313)


# ---- authorization code with PKCE ------------------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str, **values: str) -> dict[str, str]:
    return {
        "client_id": DEV_PUBLIC_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "state-42",
        "nonce": "nonce-7",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **values,
    }


def sign_in(identity: FlaskClient, params: dict[str, str], password: str = DEV_USER_PASSWORD) -> Any:
    page = identity.get(AUTHORIZE, query_string=params)
    assert page.status_code == 200 and "<form" in page.get_data(as_text=True)
    return identity.post(AUTHORIZE, data={**params, "username": DEV_USER_UPN, "password": password})


def test_the_sign_in_page_redirects_with_a_code_that_redeems_once_with_its_verifier(identity: FlaskClient) -> None:
    verifier, challenge = pkce()
    answer = sign_in(identity, authorize_params(challenge))
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == "state-42"
    redeem = {
        "grant_type": "authorization_code",
        "client_id": DEV_PUBLIC_CLIENT_ID,
        "code": query["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert_aadsts(identity.post(V2, data={**redeem, "code_verifier": "x" * 50}), 400, "invalid_grant", 501481)
    assert_aadsts(identity.post(V2, data={**redeem, "redirect_uri": REDIRECT + "2"}), 400, "invalid_grant", 70000)
    body = identity.post(V2, data=redeem).get_json()
    assert claims_of(body["access_token"])["scp"] == "user_impersonation"
    assert claims_of(body["id_token"])["nonce"] == "nonce-7"
    assert_aadsts(identity.post(V2, data=redeem), 400, "invalid_grant", 54005)
    assert_aadsts(identity.post(V2, data={**redeem, "code": "0.Anothing"}), 400, "invalid_grant", 9002313)


def test_a_wrong_password_on_the_page_shows_the_error_and_issues_no_code(identity: FlaskClient) -> None:
    answer = sign_in(identity, authorize_params(pkce()[1]), password="wrong")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Your account or password is incorrect." in text and "AADSTS50126" in text
    assert "Location" not in answer.headers


def test_form_post_and_fragment_response_modes(identity: FlaskClient) -> None:
    posted = sign_in(identity, authorize_params(pkce()[1], response_mode="form_post")).get_data(as_text=True)
    assert f"action='{REDIRECT}'" in posted and "name='code'" in posted and "value='state-42'" in posted
    fragment = sign_in(identity, authorize_params(pkce()[1], response_mode="fragment"))
    assert fragment.headers["Location"].startswith(f"{REDIRECT}#code=")


def test_an_unknown_app_or_redirect_uri_is_shown_on_the_page_never_redirected(identity: FlaskClient) -> None:
    unknown = identity.get(AUTHORIZE, query_string=authorize_params("c", client_id=WEB_APP.client_id[:-1] + "0"))
    assert unknown.status_code == 400 and "AADSTS700016" in unknown.get_data(as_text=True)
    elsewhere = identity.get(AUTHORIZE, query_string=authorize_params("c", redirect_uri="https://evil.example/cb"))
    assert elsewhere.status_code == 400 and "AADSTS50011" in elsewhere.get_data(as_text=True)
    registered = identity.get(
        AUTHORIZE,
        query_string=authorize_params("c", client_id=WEB_APP.client_id, redirect_uri=WEB_APP.redirect_uris[0]),
    )
    assert registered.status_code == 200
    assert identity.get(AUTHORIZE, query_string=authorize_params("c", client_id=WEB_APP.client_id)).status_code == 400


def test_an_unsupported_response_type_goes_back_as_an_error(identity: FlaskClient) -> None:
    answer = identity.get(AUTHORIZE, query_string=authorize_params("c", response_type="token"))
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["unsupported_response_type"] and query["state"] == ["state-42"]


def test_a_sign_in_post_from_another_site_is_refused(identity: FlaskClient) -> None:
    params = {**authorize_params(pkce()[1]), "username": DEV_USER_UPN, "password": DEV_USER_PASSWORD}
    answer = identity.post(AUTHORIZE, data=params, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "Location" not in answer.headers


# ---- device code -----------------------------------------------------------------------------------------------
def test_device_code_polls_pending_until_the_user_signs_in_on_the_device_page(identity: FlaskClient) -> None:
    flow = identity.post(
        f"/{DEV_TENANT_ID}/oauth2/v2.0/devicecode", data={"client_id": DEV_PUBLIC_CLIENT_ID, "scope": SCOPE}
    ).get_json()
    assert flow["verification_uri"] == "http://localhost/devicelogin" and flow["user_code"] in flow["message"]
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": DEV_PUBLIC_CLIENT_ID,
        "device_code": flow["device_code"],
    }
    assert_aadsts(identity.post(V2, data=poll), 400, "authorization_pending", 70016)
    assert identity.get("/devicelogin").status_code == 200
    wrong = identity.post("/devicelogin", data={"user_code": "NOPE", "username": DEV_USER_UPN, "password": "x"})
    assert "That code didn" in wrong.get_data(as_text=True)
    done = identity.post(
        "/devicelogin",
        data={"user_code": flow["user_code"], "username": DEV_USER_UPN, "password": DEV_USER_PASSWORD},
    )
    assert "You have signed in" in done.get_data(as_text=True)
    tokens = identity.post(V2, data=poll)
    assert tokens.status_code == 200 and claims_of(tokens.get_json()["access_token"])["upn"] == DEV_USER_UPN
    assert_aadsts(identity.post(V2, data=poll), 400, "invalid_grant", 9002313)


# ---- users by config and control plane -------------------------------------------------------------------------
def test_users_come_from_the_config_file_and_sign_in(tmp_path: Path) -> None:
    config = tmp_path / "identity.yaml"
    config.write_text(
        "users:\n  - user_principal_name: ana@contoso.example\n    password: pw-1\n    display_name: Ana\n"
        "apps:\n  - client_id: 11111111-2222-4333-8444-555555555555\n    display_name: Native\n"
        "    public_client: true\n",
        encoding="utf-8",
    )
    loaded = load_config(config)
    client = create_app(IdentityConfig(apps=loaded["apps"], users=loaded["users"], resources=[SALES])).test_client()
    answer = client.post(
        V2,
        data=password_form(
            client_id="11111111-2222-4333-8444-555555555555", username="ANA@contoso.example", password="pw-1"
        ),
    )
    assert answer.status_code == 200 and claims_of(answer.get_json()["access_token"])["name"] == "Ana"


@pytest.mark.parametrize(
    "user",
    [
        {"user_principal_name": "no-at-sign", "password": "p"},
        {"user_principal_name": "a@b.example", "password": ""},
        {"user_principal_name": "a@b.example", "password": "p", "object_id": "not-a-guid"},
    ],
)
def test_bad_users_in_the_config_are_refused_with_the_reason(tmp_path: Path, user: dict[str, str]) -> None:
    config = tmp_path / "identity.json"
    config.write_text(json.dumps({"users": [user]}), encoding="utf-8")
    with pytest.raises(RegistryError):
        load_config(config)


def test_users_added_over_the_control_plane_are_kept_in_the_data_folder(tmp_path: Path) -> None:
    first = create_app(IdentityConfig(data_dir=tmp_path, resources=[SALES], require_admin=False)).test_client()
    added = first.post(
        "/_sandbox/users", json={"user_principal_name": "bo@sandbox.onmicrosoft.com", "display_name": "Bo"}
    )
    assert added.status_code == 201
    body = added.get_json()
    assert body["password"] and body["object_id"]
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0
    listed = first.get("/_sandbox/users").get_json()["users"]
    assert {u["user_principal_name"] for u in listed} == {DEV_USER_UPN, "bo@sandbox.onmicrosoft.com"}
    assert all("password" not in u for u in listed)
    again = create_app(IdentityConfig(data_dir=tmp_path, resources=[SALES], require_admin=False)).test_client()
    signed_in = again.post(V2, data=password_form(username="bo@sandbox.onmicrosoft.com", password=body["password"]))
    assert claims_of(signed_in.get_json()["access_token"])["oid"] == body["object_id"]
    bad = again.post("/_sandbox/users", json={"user_principal_name": "nobody"})
    assert_aadsts(bad, 400, "invalid_request", 900144)


def test_the_users_control_plane_needs_an_admin_token() -> None:
    client = create_app(IdentityConfig(resources=[SALES])).test_client()
    assert client.get("/_sandbox/users").status_code == 401


def test_a_public_client_registered_over_the_control_plane_needs_no_secret(identity: FlaskClient) -> None:
    app = identity.post("/_sandbox/apps", json={"display_name": "CLI", "public_client": True}).get_json()
    assert app["public_client"] is True and app["client_secret"] == ""
    answer = identity.post(V2, data=password_form(client_id=app["client_id"]))
    assert answer.status_code == 200


def test_an_object_id_belongs_to_one_user() -> None:
    with pytest.raises(RegistryError):
        create_app(
            IdentityConfig(users=[UserAccount("twin@sandbox.onmicrosoft.com", "p", object_id=DEV_USER_OBJECT_ID)])
        )
