"""Users sign in as real clients do: MSAL Python's public client with a username and password (ROPC) and with the
authorization code flow (PKCE), over TLS as MSAL insists; and what the control planes registered survives a restart
of ``sandbox up``."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from sandbox.identity import DEV_PUBLIC_CLIENT_ID, DEV_USER_PASSWORD, DEV_USER_UPN
from sandbox.server import ensure_tls_files
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID
from tests.leadtocash.up_process import authenticated, start_up, stop

pytestmark = [
    pytest.mark.live,
    # MSAL warns that ROPC is deprecated for public clients and that form_post is safer: what these tests exercise
    pytest.mark.filterwarnings("ignore:This API has been deprecated for public client flows"),
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended"),
]


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """Both mocks and the identity service over HTTPS, tokens checked (no bridge)."""
    tls = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    with start_stack(
        StackConfig(memory=True, seed=1, auth=True), serve=Serving("127.0.0.1", {}, tls), bridge=False
    ) as stack:
        yield stack, tls.ca_cert


@pytest.fixture
def trusted(tls_stack: tuple[Stack, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Stack, Path]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_stack[1]))
    return tls_stack


def public_client(stack: Stack, tenant: str = DEV_TENANT_ID) -> Any:
    import msal

    return msal.PublicClientApplication(
        DEV_PUBLIC_CLIENT_ID,
        authority=f"{stack.urls['identity']}/{tenant}",
        validate_authority=False,  # not a Microsoft cloud
        instance_discovery=False,
    )


def call(stack: Stack, ca: Path, service: str, path: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{stack.urls[service]}{path}",
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=ca),
    )


def test_msal_username_password_signs_the_well_known_user_in(trusted: tuple[Stack, Path]) -> None:
    stack, ca = trusted
    # MSAL Python's username/password call asks https://<host>/common/userrealm on port 443 first, unless the
    # authority is AD FS's: the sandbox answers its tenant under "adfs" too (docs/auth.md)
    app = public_client(stack, "adfs")
    result = app.acquire_token_by_username_password(
        DEV_USER_UPN, DEV_USER_PASSWORD, scopes=[f"{stack.urls['sales']}/user_impersonation"]
    )
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == DEV_USER_UPN
    assert call(stack, ca, "sales", "/api/data/v9.2/accounts?$top=1", result["access_token"]).status_code == 200
    # the account is in MSAL's cache: a silent call for SCM redeems the refresh token
    account = app.get_accounts(username=DEV_USER_UPN)[0]
    silent = app.acquire_token_silent([f"{stack.urls['scm']}/user_impersonation"], account=account)
    assert silent is not None and "access_token" in silent, silent
    assert call(stack, ca, "scm", "/data/CustomersV3?$top=1", silent["access_token"]).status_code == 200
    refused = app.acquire_token_by_username_password(
        DEV_USER_UPN, "wrong", scopes=[f"{stack.urls['sales']}/user_impersonation"]
    )
    assert refused["error"] == "invalid_grant" and 50126 in refused["error_codes"]


def test_msal_authorization_code_flow_with_pkce(trusted: tuple[Stack, Path]) -> None:
    """MSAL builds the authorization URL (PKCE, state, nonce); the sign-in page's form is posted as a browser would;
    MSAL redeems the code from the redirect."""
    stack, ca = trusted
    app = public_client(stack)
    flow = app.initiate_auth_code_flow(
        [f"{stack.urls['sales']}/user_impersonation"], redirect_uri="http://localhost:8765/callback"
    )
    verify = ssl.create_default_context(cafile=ca)
    with httpx.Client(verify=verify) as browser:
        page = browser.get(flow["auth_uri"])
        assert page.status_code == 200
        action = re.search(r"<form method='post' action='([^']+)'", page.text)
        hidden = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text))
        assert action is not None and hidden["code_challenge"]
        signed_in = browser.post(
            f"{stack.urls['identity']}{action.group(1)}",
            data={**hidden, "username": DEV_USER_UPN, "password": DEV_USER_PASSWORD},
            headers={"Origin": stack.urls["identity"]},
        )
    assert signed_in.status_code == 302, signed_in.text
    answer = {k: v[0] for k, v in parse_qs(urlsplit(signed_in.headers["Location"]).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert "access_token" in result, result
    assert call(stack, ca, "sales", "/api/data/v9.2/accounts?$top=1", result["access_token"]).status_code == 200


def dev_token(urls: dict[str, str]) -> str:
    answer = httpx.post(
        f"{urls['identity']}/{DEV_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEV_CLIENT_ID,
            "client_secret": DEV_CLIENT_SECRET,
            "scope": f"{urls['sales'].split('/api/')[0]}/.default",
        },
    )
    return str(answer.json()["access_token"])


def test_registrations_survive_a_restart_of_sandbox_up(tmp_path: Path) -> None:
    """An app and a user registered over the control planes (identity, Sales, SCM) work again after `sandbox up`
    restarts on the same data folder."""
    app_id = "3f0c1b3a-7d7e-4f45-9a8c-3d0f2b9b1a22"
    process, urls = start_up(tmp_path, "--seed", "1")
    try:
        with authenticated() as admin:
            # the identity's control plane takes an admin app's token (it names no challenge to follow)
            admin.headers["Authorization"] = f"Bearer {dev_token(urls)}"
            app = admin.post(
                f"{urls['identity']}/_sandbox/apps",
                json={"display_name": "Connector", "client_id": app_id, "client_secret": "connector-secret"},
            )
            assert app.status_code == 201, app.text
            user = admin.post(
                f"{urls['identity']}/_sandbox/users", json={"user_principal_name": "ana@sandbox.onmicrosoft.com"}
            ).json()
            sales_origin = urls["sales"].split("/api/")[0]
            scm_origin = urls["scm"].split("/data")[0]
            for origin, path, body in (
                (
                    sales_origin,
                    "applications",
                    {"applicationid": app_id, "name": "Connector", "roles": ["Salesperson"]},
                ),
                (scm_origin, "applications", {"applicationid": app_id, "name": "Connector", "user_id": "connector"}),
                (
                    sales_origin,
                    "users",
                    {
                        "azureactivedirectoryobjectid": user["object_id"],
                        "domainname": user["user_principal_name"],
                        "roles": ["Salesperson"],
                    },
                ),
                (scm_origin, "users", {"object_id": user["object_id"], "user_id": "ana"}),
            ):
                assert admin.post(f"{origin}/_sandbox/auth/{path}", json=body).status_code == 201
    finally:
        assert stop(process) == 0

    process, urls = start_up(tmp_path, "--seed", "1")
    try:
        sales_origin = urls["sales"].split("/api/")[0]
        scm_origin = urls["scm"].split("/data")[0]
        token_url = f"{urls['identity']}/{DEV_TENANT_ID}/oauth2/v2.0/token"
        for origin, path in (
            (sales_origin, "/api/data/v9.2/accounts?$top=1"),
            (scm_origin, "/data/CustomersV3?$top=1"),
        ):
            app_token = httpx.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": app_id,
                    "client_secret": "connector-secret",
                    "scope": f"{origin}/.default",
                },
            ).json()["access_token"]
            user_token = httpx.post(
                token_url,
                data={
                    "grant_type": "password",
                    "client_id": DEV_PUBLIC_CLIENT_ID,
                    "username": user["user_principal_name"],
                    "password": user["password"],
                    "scope": f"{origin}/user_impersonation",
                },
            ).json()["access_token"]
            for token in (app_token, user_token):
                answer = httpx.get(
                    f"{origin}{path}", headers={"Authorization": f"Bearer {token}", "Connection": "close"}
                )
                assert answer.status_code == 200, (origin, answer.text)
    finally:
        assert stop(process) == 0
