"""Real token clients against the sandbox's identity service, unmodified but for configuration.

A stack with authentication on (as ``sandbox up``) is served over TLS (MSAL insists on an https authority); each
client gets its token from the identity service with the well-known development app's credentials and calls mock
Sales with it: MSAL Python's confidential client, azure-identity's ``ClientSecretCredential`` driving Microsoft's
Dataverse client, and ``@azure/msal-node`` feeding ``dynamics-web-api``'s token callback.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from sandbox.server import ensure_tls_files
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]
CLIENT_HOME = REPO / ".cache" / "npm-clients"
PACKAGES = ("dynamics-web-api@2", "@azure/msal-node@2")
SCRIPT = Path(__file__).resolve().parent / "js" / "msal_check.mjs"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """Both mocks and the identity service over HTTPS, tokens checked (no bridge: these tests talk to Sales)."""
    tls = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    config = StackConfig(memory=True, seed=1, auth=True)
    with start_stack(config, serve=Serving("127.0.0.1", {}, tls), bridge=False) as stack:
        yield stack, tls.ca_cert


@pytest.fixture
def trusted(tls_stack: tuple[Stack, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Stack, Path]:
    """requests (under MSAL, azure-core and the Dataverse client) trusts the local CA, as the README says."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_stack[1]))
    return tls_stack


def authority(stack: Stack) -> str:
    return f"{stack.urls['identity']}/{DEV_TENANT_ID}"


def test_msal_python_confidential_client_gets_a_token_sales_accepts(trusted: tuple[Stack, Path]) -> None:
    import msal

    stack, ca = trusted
    app = msal.ConfidentialClientApplication(
        DEV_CLIENT_ID,
        client_credential=DEV_CLIENT_SECRET,
        authority=authority(stack),
        validate_authority=False,  # not a Microsoft cloud
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[f"{stack.urls['sales']}/.default"])
    assert "access_token" in result, result
    headers = {"Authorization": f"Bearer {result['access_token']}"}
    answer = httpx.get(
        f"{stack.urls['sales']}/api/data/v9.2/WhoAmI()", headers=headers, verify=ssl.create_default_context(cafile=ca)
    )
    assert answer.status_code == 200 and answer.json()["UserId"]
    refused = msal.ConfidentialClientApplication(
        DEV_CLIENT_ID,
        client_credential="wrong",
        authority=authority(stack),
        validate_authority=False,
        instance_discovery=False,
    ).acquire_token_for_client(scopes=[f"{stack.urls['sales']}/.default"])
    assert refused.get("error") == "invalid_client" and 7000215 in refused.get("error_codes", [])


def test_azure_identity_credential_drives_microsofts_dataverse_client(trusted: tuple[Stack, Path]) -> None:
    from azure.identity import ClientSecretCredential
    from PowerPlatform.Dataverse.client import DataverseClient

    stack, _ca = trusted
    credential = ClientSecretCredential(
        DEV_TENANT_ID,
        DEV_CLIENT_ID,
        DEV_CLIENT_SECRET,
        authority=stack.urls["identity"],
        disable_instance_discovery=True,
    )
    with DataverseClient(stack.urls["sales"], credential) as client:
        account_id = client.records.create("account", {"name": "Made with a real token"})
        assert client.records.retrieve("account", account_id, select=["name"])["name"] == "Made with a real token"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is not on PATH: the JavaScript client test needs Node.js 18+ and npm.", pytrace=False)
    return path


@pytest.fixture(scope="module")
def client_home() -> Path:
    """The folder whose node_modules holds dynamics-web-api and @azure/msal-node (npm runs when one is missing)."""
    node_modules = CLIENT_HOME / "node_modules"
    if not all((node_modules / name.rsplit("@", 1)[0] / "package.json").exists() for name in PACKAGES):
        CLIENT_HOME.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [_tool("npm"), "install", "--no-audit", "--no-fund", *PACKAGES],
            cwd=CLIENT_HOME,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm install failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return CLIENT_HOME


def test_msal_node_feeds_dynamics_web_api_token_callback(tls_stack: tuple[Stack, Path], client_home: Path) -> None:
    stack, ca = tls_stack
    env = {
        **os.environ,
        "SANDBOX_URL": stack.urls["sales"],
        "AUTHORITY": authority(stack),
        "CLIENT_ID": DEV_CLIENT_ID,
        "CLIENT_SECRET": DEV_CLIENT_SECRET,
        "DWA_HOME": str(client_home),
        "NODE_EXTRA_CA_CERTS": str(ca),
    }
    done = subprocess.run(
        [_tool("node"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, cwd=client_home
    )
    assert done.returncode == 0, done.stderr
    steps: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])["steps"]
    for name in ("token", "whoAmI", "create", "retrieveMultiple"):
        assert steps[name]["ok"], (name, steps[name])
    assert steps["token"]["result"] == 3
    assert steps["withoutToken"]["ok"] is False, steps["withoutToken"]
