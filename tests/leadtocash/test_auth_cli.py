"""``sandbox token`` and the authentication options of ``sandbox up``, as a user runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from click.testing import CliRunner

from leadtocash.cli import main
from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID, INTEGRATION_IDENTITY
from tests.leadtocash.up_process import start_up, stop

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def served() -> Iterator[Stack]:
    """Both mocks and the identity service on free ports, tokens checked (no bridge: these tests need none)."""
    with start_stack(StackConfig(memory=True, seed=1, auth=True), serve=Serving("127.0.0.1"), bridge=False) as stack:
        yield stack


def token(stack: Stack, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["token", "--identity-url", stack.urls["identity"], *args])
    return result.exit_code, result.output


def test_sandbox_token_prints_a_jwt_on_its_last_line_that_the_service_accepts(served: Stack) -> None:
    code, output = token(served, "--scope", f"{served.urls['scm']}/.default")
    assert code == 0, output
    printed = output.strip().splitlines()[-1]
    claims = jwt.decode(printed, options={"verify_signature": False})
    assert claims["aud"] == served.urls["scm"] and claims["appid"] == DEV_CLIENT_ID and claims["tid"] == DEV_TENANT_ID
    headers = {"Authorization": f"Bearer {printed}"}
    assert httpx.get(f"{served.urls['scm']}/data/CustomersV3?$top=1", headers=headers).status_code == 200
    refused = httpx.get(f"{served.urls['sales']}/api/data/v9.2/accounts?$top=1", headers=headers)
    assert refused.status_code == 401 and "IDX10214" in refused.headers["WWW-Authenticate"]


def test_sandbox_token_says_what_the_identity_service_refused(served: Stack) -> None:
    code, output = token(served, "--scope", f"{served.urls['sales']}/.default", "--client-secret", "wrong")
    assert code == 1 and "AADSTS7000215" in output and "Traceback" not in output
    code, output = token(served, "--scope", "https://contoso.crm.dynamics.com/.default")
    assert code == 1 and "AADSTS500011" in output


def test_sandbox_token_without_an_identity_service_says_how_to_start_one() -> None:
    from sandbox.server import free_port

    result = CliRunner().invoke(main, ["token", "--identity-url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and "sandbox up" in result.output


def test_up_prints_the_well_known_credentials_and_serves_the_identity_service(tmp_path: Path) -> None:
    lines: list[str] = []
    process, urls = start_up(tmp_path, "--memory", lines=lines)
    try:
        auth_line = next(line for line in lines if line.startswith("auth"))
        assert DEV_TENANT_ID in auth_line and DEV_CLIENT_ID in auth_line and DEV_CLIENT_SECRET in auth_line
        identity = urls["identity"].rstrip("/")
        keys = httpx.get(f"{identity}/{DEV_TENANT_ID}/discovery/v2.0/keys").json()["keys"]
        assert keys and keys[0]["kty"] == "RSA"
        sales = urls["sales"]
        unauthenticated = httpx.get(sales + "accounts?$top=1", headers={"X-Sandbox-Identity": INTEGRATION_IDENTITY})
        assert unauthenticated.status_code == 401
        assert (
            f"authorization_uri={identity}/{DEV_TENANT_ID}/oauth2/authorize"
            in unauthenticated.headers["WWW-Authenticate"]
        )
    finally:
        assert stop(process) == 0


def test_up_with_auth_off_takes_any_caller_and_the_identity_header(tmp_path: Path) -> None:
    lines: list[str] = []
    process, urls = start_up(tmp_path, "--memory", "--auth", "off", lines=lines)
    try:
        assert any(line.startswith("auth   off") for line in lines), lines
        headers = {"Connection": "close", "X-Sandbox-Identity": INTEGRATION_IDENTITY}
        assert httpx.get(urls["sales"] + "accounts?$top=1", headers=headers).status_code == 200
        journal = httpx.get(urls["sales"].replace("/api/data/v9.2/", "/_sandbox/journal?limit=1"), headers=headers)
        assert journal.json()["entries"][0]["identity"] == INTEGRATION_IDENTITY
    finally:
        assert stop(process) == 0


def test_up_refuses_an_identity_config_it_cannot_read(tmp_path: Path) -> None:
    config = tmp_path / "apps.yaml"
    config.write_text("apps:\n  - client_id: not-a-guid\n    client_secret: x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["up", "--memory", "--identity-config", str(config), "--identity-port", "0"])
    assert result.exit_code == 1 and "not a GUID" in result.output


def test_up_refuses_a_user_of_the_identity_config_it_cannot_take(tmp_path: Path) -> None:
    config = tmp_path / "users.yaml"
    config.write_text("users:\n  - user_principal_name: ana\n    password: x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["up", "--memory", "--identity-config", str(config), "--identity-port", "0"])
    assert result.exit_code == 1 and "name@domain" in result.output and "Traceback" not in result.output
    config.write_text(
        "users:\n  - user_principal_name: ana@contoso.example\n    password: x\n    sales_roles: Salesperson\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["up", "--memory", "--identity-config", str(config), "--identity-port", "0"])
    assert result.exit_code == 1 and "sales_roles" in result.output
