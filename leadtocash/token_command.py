"""``sandbox token``: a bearer token from the identity service, for scripts and curl (the JWT alone on its last line).

Defaults: the identity service of ``sandbox up`` (``http://127.0.0.1:5100``), the well-known development app, and
mock Sales as the resource. ``--scope http://127.0.0.1:5102/.default`` asks for SCM, ``.../5103/.default`` for the
bridge's admin API. With ``--tls`` trust the local CA (``SSL_CERT_FILE=.sandbox/tls/ca.pem``).
"""

from __future__ import annotations

import click

from sandbox.clients.auth import DEFAULT_IDENTITY_URL, TokenError, fetch_token
from sandbox.wellknown import DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TENANT_ID

DEFAULT_SCOPE = "http://127.0.0.1:5101/.default"


@click.command()
@click.option(
    "--scope",
    default=DEFAULT_SCOPE,
    show_default=True,
    help="What the token is for: a service origin with /.default (5101 Sales, 5102 SCM, 5103 the bridge).",
)
@click.option(
    "--identity-url",
    default=DEFAULT_IDENTITY_URL,
    show_default=True,
    envvar="SANDBOX_IDENTITY_URL",
    help="The identity service's origin.",
)
@click.option("--tenant", default=DEV_TENANT_ID, show_default=True, help="The tenant id (or sandbox.onmicrosoft.com).")
@click.option("--client-id", default=DEV_CLIENT_ID, show_default=True, help="The app registration's client id.")
@click.option(
    "--client-secret",
    default=DEV_CLIENT_SECRET,
    envvar="SANDBOX_CLIENT_SECRET",
    help="Its secret (default: the well-known development app's).",
)
def token(scope: str, identity_url: str, tenant: str, client_id: str, client_secret: str) -> None:
    """Print a bearer token (client credentials) for curl: TOKEN=$(sandbox token)."""
    if not scope.endswith("/.default"):
        scope = scope.rstrip("/") + "/.default"
    try:
        access_token, _expires = fetch_token(f"{identity_url.rstrip('/')}/{tenant}", client_id, client_secret, scope)
    except TokenError as exc:
        hint = " (start the stack with `sandbox up`, or pass --identity-url)" if exc.status == 0 else ""
        raise click.ClickException(f"{exc}{hint}") from None
    click.echo(access_token)
