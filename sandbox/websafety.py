"""Edge safety: no cross-site request and no DNS rebinding can change a sandbox from a web page.

A sandbox listens on a developer's machine, where any web page the developer opens can send requests to
``127.0.0.1``. Three checks answer such requests before anything else sees them (the outermost request hook of
every app: mocks and their control planes, the bridge, the identity service):

1. **Host** (DNS rebinding): on a request that arrived over a socket, the ``Host`` header must name the configured
   host, ``localhost`` or a loopback address (any port), or a name added with ``--allowed-host``; anything else
   gets ``421 Misdirected Request``. A page on ``evil.example`` whose name was rebound to ``127.0.0.1`` sends
   ``Host: evil.example``. Requests handed to an app in the same process (``httpx.WSGITransport``, Flask's test
   client) never crossed a network and are not checked; a server marks the requests it accepted with
   :data:`SERVED_ENVIRON_KEY` (:mod:`sandbox.server` does).
2. **Origin and Fetch metadata** (CSRF): a state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``,
   ``MERGE``) whose ``Origin`` is neither the service's own, nor one of the stack's services, nor configured
   (``--allowed-origin``) gets ``403``; so does one with ``Sec-Fetch-Site: cross-site`` and no allowed ``Origin``.
   ``Sec-Fetch-Site`` ``same-origin`` and ``none`` (typed by the user) pass; ``same-site`` (another port of
   ``localhost`` is the same *site*) passes this check and is then judged by its ``Origin``, which browsers send on
   every state-changing request. ``Origin: null`` (sandboxed frames, ``file://``) is foreign. Requests without
   these headers (curl, SDKs, the services calling each other) pass: browsers always send them.
3. **Content type** (defence in depth): a browser can send a cross-site ``POST`` without a CORS preflight only as
   ``text/plain``, ``application/x-www-form-urlencoded`` or ``multipart/form-data``. Where JSON is expected (the
   control plane, the bridge's API, OData writes) a body of another declared type gets ``415``; ``$batch`` also
   takes ``multipart/mixed``, and form posts are taken only on the app's form routes (the bridge console's forms,
   which carry a CSRF token of their own). A body without ``Content-Type`` passes (what some SDKs send).

Every refusal is rendered by the app's own error renderer, so each service answers in its own error shape.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import flask

from sandbox.errors import SandboxError, error_for_status

#: the WSGI environ key a server sets on the requests it accepted over a socket (only those get the Host check)
SERVED_ENVIRON_KEY = "sandbox.served"
#: where an app keeps its :class:`EdgePolicy`
EXTENSION_KEY = "sandbox_websafety"

#: names that always reach this machine: the host check lets them through with any port
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "MERGE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: ``Sec-Fetch-Site`` values that say the request did not come from another site's page
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})

Render = Callable[[SandboxError], flask.Response]
#: a route that takes form posts: a path prefix, or a test of the whole path
FormRoute = str | Callable[[str], object]
#: the OAuth 2.0 token endpoints of an Entra-shaped identity service (v2 and v1), which take form posts by the
#: protocol (RFC 6749 section 4.4.2: ``application/x-www-form-urlencoded``)
TOKEN_ENDPOINT = re.compile(r"^/[^/]+/oauth2/(v2\.0/)?token/?$")


def normalize_host(value: str) -> str:
    """A Host header or a host name without port and brackets, lower case: ``[::1]:5101`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value.rstrip(".")


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the scheme's default port dropped; None if it is no origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    host = normalize_host(host)
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``Application/JSON; charset=utf-8`` (empty when none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(kind: str) -> bool:
    """``application/json``, ``text/json`` and ``*/*+json`` types."""
    return kind in ("application/json", "text/json") or kind.endswith("+json")


@dataclass
class EdgePolicy:
    """What one app lets through: the host names besides loopback, the origins besides its own, and the routes
    that take form posts. Change it in place (:func:`configure_edge`) once the stack knows its URLs."""

    #: host names a ``Host`` header may carry besides ``localhost`` and loopback addresses (normalized)
    allowed_hosts: set[str] = field(default_factory=set)
    #: origins allowed to send state-changing requests besides the service's own (normalized)
    allowed_origins: set[str] = field(default_factory=set)
    #: routes that take form posts (the console's actions): path prefixes or tests of the path
    form_routes: tuple[FormRoute, ...] = ()
    #: the wire code per refusal status, for services whose error shape carries one (Dataverse HRESULTs)
    codes: Mapping[int, str] = field(default_factory=dict)

    def host_allowed(self, host_header: str) -> bool:
        host = normalize_host(host_header)
        return bool(host) and (is_loopback(host) or host in self.allowed_hosts)

    def origin_allowed(self, origin: str, own_origin: str | None) -> bool:
        normalized = normalize_origin(origin)
        if normalized is None:  # "null" and anything that is no origin at all
            return False
        return normalized == own_origin or normalized in self.allowed_origins

    def takes_form(self, path: str) -> bool:
        return any(
            (path == route.rstrip("/") or path.startswith(route)) if isinstance(route, str) else bool(route(path))
            for route in self.form_routes
        )


def configure_edge(
    app: flask.Flask, *, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = ()
) -> EdgePolicy:
    """Add host names and origins to the policy of an app on which :func:`install_edge_safety` ran.

    Origins that are not URLs are ignored (the command line validates them first: :func:`parse_origin`)."""
    policy: EdgePolicy = app.extensions[EXTENSION_KEY]
    policy.allowed_hosts.update(normalize_host(h) for h in allowed_hosts if h.strip())
    for origin in allowed_origins:
        normalized = normalize_origin(origin)
        if normalized is not None:
            policy.allowed_origins.add(normalized)
    return policy


def parse_origin(value: str) -> str:
    """A configured origin, normalized; raises ValueError with a message a user can act on."""
    normalized = normalize_origin(value)
    if normalized is None or urlsplit(value.strip()).path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin; expected scheme://host[:port], e.g. http://localhost:3000")
    return normalized


def stack_origins(urls: Iterable[str]) -> set[str]:
    """The origins of a stack's services, each also under the other loopback names (a browser may open the
    console as ``localhost`` while the stack prints ``127.0.0.1``)."""
    out: set[str] = set()
    for url in urls:
        origin = normalize_origin(url)
        if origin is None:
            continue
        out.add(origin)
        parts = urlsplit(origin)
        if parts.hostname and is_loopback(parts.hostname):
            port = f":{parts.port}" if parts.port else ""
            for name in ("localhost", "127.0.0.1", "[::1]"):
                out.add(f"{parts.scheme}://{name}{port}")
    return out


def install_edge_safety(
    app: flask.Flask,
    render: Render,
    *,
    form_routes: Iterable[FormRoute] = (),
    codes: Mapping[int, str] | None = None,
    policy: EdgePolicy | None = None,
) -> EdgePolicy:
    """Refuse rebinding and cross-site requests on ``app`` before any other request hook runs.

    The check is put first among the app's ``before_request`` hooks however late this is called: it must sit
    outermost (Host and Origin -> authentication -> request log -> journal -> faults -> the view). ``render``
    turns an error into the service's own response; ``codes`` gives the wire code per status (403, 415, 421).
    """
    policy = policy or EdgePolicy()
    policy.form_routes = (*policy.form_routes, *form_routes)
    if codes is not None:
        policy.codes = dict(codes)
    app.extensions[EXTENSION_KEY] = policy

    def refuse(status: int, message: str) -> flask.Response:
        return render(error_for_status(status, message, policy.codes.get(status, "")))

    def check() -> flask.Response | None:
        request = flask.request
        if request.environ.get(SERVED_ENVIRON_KEY) and not policy.host_allowed(request.host):
            return refuse(
                421,
                f"Misdirected request: this service does not answer to the host '{request.host}'. "
                "Use localhost or a loopback address, or start the sandbox with --allowed-host NAME.",
            )
        if request.method not in STATE_CHANGING_METHODS:
            return None
        origin = request.headers.get("Origin")
        site = (request.headers.get("Sec-Fetch-Site") or "").strip().lower()
        own = normalize_origin(request.host_url)
        if origin is not None:
            if not policy.origin_allowed(origin, own):
                return refuse(
                    403,
                    f"Cross-origin request refused: the origin '{origin}' may not change this service. "
                    "Start the sandbox with --allowed-origin ORIGIN to allow it.",
                )
        elif site and site not in SAFE_FETCH_SITES and site != "same-site":
            return refuse(
                403,
                f"Cross-site request refused (Sec-Fetch-Site: {site}). "
                "Start the sandbox with --allowed-origin ORIGIN to allow a page's origin.",
            )
        return _content_type_refusal(request, policy, refuse)

    app.before_request_funcs.setdefault(None, []).insert(0, check)
    return policy


def install_identity_service_edge_safety(app: flask.Flask, render: Render) -> EdgePolicy:
    """:func:`install_edge_safety` for the identity service: its token endpoints take the form posts OAuth 2.0
    prescribes; everything else there is judged like the other services (Host, Origin, JSON bodies)."""
    return install_edge_safety(app, render, form_routes=(TOKEN_ENDPOINT.match,))


def _content_type_refusal(
    request: flask.Request, policy: EdgePolicy, refuse: Callable[[int, str], flask.Response]
) -> flask.Response | None:
    """415 for a body of a declared type the route does not take (see the module docstring)."""
    if not _has_body(request):
        return None
    declared = request.headers.get("Content-Type")
    kind = media_type(declared)
    if not kind or is_json_type(kind):
        return None
    path = request.path
    if kind == "multipart/mixed" and path.rstrip("/").endswith("$batch"):
        return None
    if kind in FORM_TYPES and policy.takes_form(path):
        return None
    return refuse(
        415,
        f"The request entity's media type '{kind}' is not supported for this resource; "
        "send Content-Type: application/json.",
    )


def _has_body(request: flask.Request) -> bool:
    if request.content_length:
        return True
    return "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()


def mark_served(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` with every request marked as accepted over a socket (see :data:`SERVED_ENVIRON_KEY`)."""

    def served(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
        environ[SERVED_ENVIRON_KEY] = True
        return app(environ, start_response)

    return served


__all__ = [
    "EXTENSION_KEY",
    "SERVED_ENVIRON_KEY",
    "EdgePolicy",
    "configure_edge",
    "install_edge_safety",
    "install_identity_service_edge_safety",
    "is_loopback",
    "mark_served",
    "normalize_host",
    "normalize_origin",
    "parse_origin",
    "stack_origins",
]
