"""A user signs in through the identity service's sign-in page in headless Chromium: authorization code with PKCE,
the browser sent back to a loopback redirect URI (as MSAL's public clients listen for it) with the code and state."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from playwright.sync_api import expect

from leadtocash.stack import Stack
from sandbox.identity import DEV_PUBLIC_CLIENT_ID, DEV_USER_PASSWORD, DEV_USER_UPN
from sandbox.wellknown import DEV_TENANT_ID

pytestmark = pytest.mark.live

WAIT_MS = 15_000


class _Callback(BaseHTTPRequestHandler):
    """The redirect URI: keeps the query it was called with and says so on a page."""

    received: list[dict[str, str]]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        if parts.path == "/callback":  # not the browser's /favicon.ico
            self.received.append({k: v[0] for k, v in parse_qs(parts.query).items()})
        body = b"<!doctype html><title>Signed in</title><p id='back'>Back in the app</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback redirect URI on a free port, and what it received."""
    received: list[dict[str, str]] = []
    handler = type("Callback", (_Callback,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback", received
    server.shutdown()
    server.server_close()


def authorize_url(stack: Stack, redirect_uri: str, challenge: str) -> str:
    params = {
        "client_id": DEV_PUBLIC_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": f"{stack.urls['sales']}/user_impersonation openid offline_access",
        "state": "browser-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{stack.urls['identity']}/{DEV_TENANT_ID}/oauth2/v2.0/authorize?{urlencode(params)}"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_a_user_signs_in_on_the_page_and_the_app_redeems_the_code(
    served: Stack, page: Any, callback: tuple[str, list[dict[str, str]]]
) -> None:
    redirect_uri, received = callback
    verifier, challenge = pkce()
    page.goto(authorize_url(served, redirect_uri, challenge))
    expect(page.locator("h1")).to_have_text("Sign in to your account")
    page.fill("#username", DEV_USER_UPN)
    page.fill("#password", DEV_USER_PASSWORD)
    page.click("#signin")
    expect(page.locator("#back")).to_have_text("Back in the app", timeout=WAIT_MS)
    assert page.url.startswith(redirect_uri) and received[-1]["state"] == "browser-state"
    answer = httpx.post(
        f"{served.urls['identity']}/{DEV_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEV_PUBLIC_CLIENT_ID,
            "code": received[-1]["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["upn"] == DEV_USER_UPN and claims["scp"] == "user_impersonation" and "roles" not in claims


def test_a_wrong_password_keeps_the_user_on_the_page_with_the_error(
    served: Stack, page: Any, callback: tuple[str, list[dict[str, str]]]
) -> None:
    redirect_uri, received = callback
    page.goto(authorize_url(served, redirect_uri, pkce()[1]))
    page.fill("#username", DEV_USER_UPN)
    page.fill("#password", "not the password")
    page.click("#signin")
    expect(page.locator("#error")).to_contain_text("Your account or password is incorrect.", timeout=WAIT_MS)
    expect(page.locator("#username")).to_have_value(DEV_USER_UPN)
    assert received == []
