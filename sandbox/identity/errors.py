"""The token endpoint's errors in Microsoft Entra ID's shape.

``{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}``; the
description starts with ``AADSTS<code>: `` and ends with the trace id, correlation id and timestamp lines, as
Entra answers (bad secret: 401 ``invalid_client`` AADSTS7000215; unknown app: 400 ``unauthorized_client``
AADSTS700016; unknown resource: 400 ``invalid_resource`` AADSTS500011; unknown tenant: 400 ``invalid_request``
AADSTS90002).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from flask import Response, request


class AadstsError(Exception):
    """One AADSTS error: the OAuth ``error``, the AADSTS number, the message and the HTTP status."""

    def __init__(self, error: str, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
            ),
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{request.host_url.rstrip('/')}/error?code={self.code}",
        }

    def response(self) -> Response:
        return Response(json.dumps(self.body()), status=self.status, content_type="application/json; charset=utf-8")


def unknown_tenant(tenant: str) -> AadstsError:
    return AadstsError(
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def unknown_app(client_id: str, tenant: str) -> AadstsError:
    return AadstsError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if "
        "the application has not been installed by the administrator of the tenant or consented to by any user in "
        "the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def bad_secret(client_id: str) -> AadstsError:
    return AadstsError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def missing_secret() -> AadstsError:
    return AadstsError(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        status=401,
    )


def missing_parameter(name: str) -> AadstsError:
    return AadstsError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def unknown_resource(resource: str, tenant: str) -> AadstsError:
    return AadstsError(
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if "
        "the application has not been installed by the administrator of the tenant or consented to by any user in "
        "the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def scope_without_default(scope: str) -> AadstsError:
    return AadstsError(
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
        "/.default suffixed to the resource identifier (application ID URI).",
    )


def unsupported_grant(grant: str) -> AadstsError:
    return AadstsError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")


def unsupported_media() -> AadstsError:
    return AadstsError(
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'. The body must be "
        "application/x-www-form-urlencoded.",
    )


# ---- the user flows (password, authorization code, refresh token, device code) ----------------------------------
def invalid_credentials() -> AadstsError:
    return AadstsError("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")


def unknown_user(username: str, tenant: str) -> AadstsError:
    return AadstsError(
        "invalid_grant",
        50034,
        f"The user account {username} does not exist in the {tenant} directory. To sign into this application, the "
        "account must be added to the directory.",
    )


def user_disabled() -> AadstsError:
    return AadstsError(
        "invalid_grant", 50057, "The user account is disabled. The account has been disabled by an administrator."
    )


def public_client_with_secret() -> AadstsError:
    return AadstsError(
        "invalid_client",
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        status=401,
    )


def redirect_mismatch(uri: str, client_id: str) -> AadstsError:
    return AadstsError(
        "invalid_request",
        50011,
        f"The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the "
        f"application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your "
        "application in the Azure portal.",
    )


def invalid_scope(scope: str) -> AadstsError:
    return AadstsError(
        "invalid_scope",
        70011,
        f"The provided request must include a 'scope' input parameter. The provided value for the input parameter "
        f"'scope' is not valid. The scope {scope} is not valid.",
    )


def unknown_permission(app_name: str, scope: str, resource: str) -> AadstsError:
    return AadstsError(
        "invalid_client",
        65005,
        f"The application '{app_name}' asked for scope '{scope}' that doesn't exist on the resource '{resource}'. "
        "Contact the app vendor.",
    )


def malformed_grant(parameter: str) -> AadstsError:
    return AadstsError(
        "invalid_grant", 9002313, f"Invalid request. Request is malformed or invalid. (The '{parameter}' is not valid.)"
    )


def code_expired() -> AadstsError:
    return AadstsError(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive "
        "authorization request for this user and resource.",
    )


def code_redeemed() -> AadstsError:
    return AadstsError(
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing "
        "refresh token.",
    )


def code_for_another_client() -> AadstsError:
    return AadstsError(
        "invalid_grant",
        70000,
        "The provided value for the 'code' parameter is not valid. The code was issued to a different client.",
    )


def redirect_differs() -> AadstsError:
    return AadstsError(
        "invalid_grant",
        70000,
        "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used "
        "to obtain the authorization code.",
    )


def verifier_mismatch() -> AadstsError:
    return AadstsError(
        "invalid_grant",
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )


def authorization_pending() -> AadstsError:
    return AadstsError(
        "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
    )


def device_code_expired() -> AadstsError:
    return AadstsError("expired_token", 70020, "The provided value for the input parameter 'device_code' has expired.")
