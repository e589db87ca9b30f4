"""Edge safety on the mocks and their control planes: no cross-site change, no DNS rebinding, JSON where JSON is
expected (:mod:`sandbox.websafety`)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.odata.dataverse import codes
from sandbox.testing import assert_dataverse_error, assert_fno_error
from sandbox.websafety import (
    SERVED_ENVIRON_KEY,
    EdgePolicy,
    configure_edge,
    is_loopback,
    normalize_host,
    normalize_origin,
    parse_origin,
    stack_origins,
)

SALES_ROOT = "/api/data/v9.2"
EVIL = "http://evil.example"


def served(host: str) -> dict[str, Any]:
    """The environ of a request that arrived over a socket with ``Host: host``."""
    return {SERVED_ENVIRON_KEY: True, "HTTP_HOST": host}


def count(client: FlaskClient, path: str) -> int:
    return len(client.get(path).get_json()["value"])


# ---- the pieces -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("LOCALHOST:5101", "localhost"),
        ("[::1]:5101", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("Evil.Example.", "evil.example"),
    ],
)
def test_normalize_host_drops_port_brackets_and_case(header: str, host: str) -> None:
    assert normalize_host(header) == host


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("http://LocalHost:3000", "http://localhost:3000"),
        ("https://a.example:443", "https://a.example"),
        ("http://[::1]:5101", "http://[::1]:5101"),
        ("null", None),
        ("file:///tmp/x.html", None),
        ("http://x:notaport", None),
    ],
)
def test_normalize_origin_is_scheme_host_and_non_default_port(value: str, origin: str | None) -> None:
    assert normalize_origin(value) == origin


def test_loopback_names_and_addresses_are_loopback_and_others_not() -> None:
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "127.8.9.1:80", "[::1]:5101"))
    assert not any(is_loopback(h) for h in ("evil.example", "10.0.0.1", "localhost.evil.example", ""))


def test_parse_origin_refuses_what_is_no_origin() -> None:
    assert parse_origin("http://localhost:3000/") == "http://localhost:3000"
    for bad in ("localhost:3000", "http://localhost:3000/app", "null"):
        with pytest.raises(ValueError, match="is not an origin"):
            parse_origin(bad)


def test_stack_origins_name_each_service_under_every_loopback_name() -> None:
    origins = stack_origins(["http://127.0.0.1:5101", "https://sandbox.internal:5103"])
    assert {"http://127.0.0.1:5101", "http://localhost:5101", "http://[::1]:5101"} <= origins
    assert "https://sandbox.internal:5103" in origins
    assert "https://localhost:5103" not in origins


def test_form_routes_match_their_prefix_only() -> None:
    policy = EdgePolicy(form_routes=("/console/",))
    assert policy.takes_form("/console/maps/x/stop") and policy.takes_form("/console")
    assert not policy.takes_form("/consoles") and not policy.takes_form("/api/maps/x/stop")


# ---- cross-site requests change nothing -------------------------------------------------------------------
def test_cross_origin_text_plain_reset_is_refused_and_changes_nothing(sales: FlaskClient, scm: FlaskClient) -> None:
    """The attack of the issue: a page's ``fetch`` with a text/plain body emptied both services."""
    accounts = count(sales, f"{SALES_ROOT}/accounts?$select=name")
    customers = count(scm, "/data/CustomersV3?$select=CustomerAccount&cross-company=true")
    for client in (sales, scm):
        answer = client.post(
            "/_sandbox/reset", data="{}", headers={"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"}
        )
        assert answer.status_code == 403
        assert "Cross-origin request refused" in answer.get_json()["error"]["message"]
    assert count(sales, f"{SALES_ROOT}/accounts?$select=name") == accounts > 0
    assert count(scm, "/data/CustomersV3?$select=CustomerAccount&cross-company=true") == customers > 0


def test_refusals_come_in_each_services_error_shape(sales: FlaskClient, scm: FlaskClient) -> None:
    headers = {"Origin": EVIL, "Content-Type": "application/json"}
    assert_dataverse_error(
        sales.post(f"{SALES_ROOT}/accounts", json={"name": "x"}, headers=headers), 403, codes.PRIVILEGE_DENIED
    )
    assert_fno_error(scm.post("/data/CustomersV3", json={"CustomerAccount": "x"}, headers=headers), 403)


def test_cross_site_fault_install_is_refused_and_installs_nothing(sales: FlaskClient) -> None:
    answer = sales.post(
        "/_sandbox/faults",
        data='{"status": 500}',
        headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 403
    assert sales.get("/_sandbox/faults").get_json() in ([], {"faults": []})


def test_cross_origin_odata_create_is_refused_and_creates_nothing(sales: FlaskClient) -> None:
    path = f"{SALES_ROOT}/leads?$filter=subject eq 'csrf'&$select=subject"
    answer = sales.post(
        f"{SALES_ROOT}/leads", data='{"subject": "csrf"}', headers={"Origin": "null", "Content-Type": "text/plain"}
    )
    assert answer.status_code == 403
    assert count(sales, path) == 0


@pytest.mark.parametrize("site", ["same-origin", "same-site", "none"])
def test_fetch_metadata_from_this_site_passes(sales: FlaskClient, site: str) -> None:
    answer = sales.post(f"{SALES_ROOT}/leads", json={"subject": f"from {site}"}, headers={"Sec-Fetch-Site": site})
    assert answer.status_code == 204


def test_same_site_page_of_another_port_is_judged_by_its_origin(sales: FlaskClient) -> None:
    """Another port of localhost is the same *site*: its Origin decides."""
    headers = {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"}
    assert sales.post(f"{SALES_ROOT}/leads", json={"subject": "x"}, headers=headers).status_code == 403


def test_own_origin_and_configured_origin_pass(sales_app: Flask) -> None:
    client = sales_app.test_client()
    own = client.post(f"{SALES_ROOT}/leads", json={"subject": "own"}, headers={"Origin": "http://localhost"})
    assert own.status_code == 204
    other = {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "cross-site"}
    assert client.post(f"{SALES_ROOT}/leads", json={"subject": "x"}, headers=other).status_code == 403
    configure_edge(sales_app, allowed_origins=["http://LOCALHOST:3000/"])
    assert client.post(f"{SALES_ROOT}/leads", json={"subject": "x"}, headers=other).status_code == 204


def test_reads_from_a_foreign_origin_pass(sales: FlaskClient) -> None:
    """Only changes are refused; what a page may read is CORS's business (no CORS headers are sent)."""
    answer = sales.get(f"{SALES_ROOT}/accounts?$top=1", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_curl_like_requests_without_browser_headers_pass(sales: FlaskClient, scm: FlaskClient) -> None:
    assert sales.post(f"{SALES_ROOT}/leads", json={"subject": "curl"}).status_code == 204
    assert scm.post("/_sandbox/faults", json={"status": 503, "path": "/nothing-here"}).status_code in (200, 201)


# ---- JSON where JSON is expected --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_a_simple_request_body_where_json_is_expected_gets_415(sales: FlaskClient, scm: FlaskClient, kind: str) -> None:
    before = count(sales, f"{SALES_ROOT}/leads?$select=subject")
    answer = sales.post(f"{SALES_ROOT}/leads", data='{"subject": "x"}', headers={"Content-Type": kind})
    assert_dataverse_error(answer, 415, codes.UNSPECIFIED)
    assert "not supported for this resource" in answer.get_json()["error"]["message"]
    assert count(sales, f"{SALES_ROOT}/leads?$select=subject") == before
    assert_fno_error(scm.post("/_sandbox/reset", data="x", headers={"Content-Type": kind}), 415)


def test_json_flavours_and_bodies_without_a_type_pass(sales: FlaskClient) -> None:
    for kind in ("application/json; charset=utf-8", "application/json;odata.metadata=minimal", "text/json"):
        assert (
            sales.post(f"{SALES_ROOT}/leads", data='{"subject": "j"}', headers={"Content-Type": kind}).status_code
            == 204
        )
    assert sales.post(f"{SALES_ROOT}/leads", data=b'{"subject": "raw"}').status_code == 204


def test_batch_takes_multipart_mixed(sales: FlaskClient) -> None:
    body = (
        "--batch_A\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET {SALES_ROOT}/accounts?$top=1&$select=name HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_A--\r\n"
    )
    answer = sales.post(f"{SALES_ROOT}/$batch", data=body, headers={"Content-Type": "multipart/mixed;boundary=batch_A"})
    assert answer.status_code == 200
    assert b"HTTP/1.1 200" in answer.data


# ---- DNS rebinding ------------------------------------------------------------------------------------------
def test_a_foreign_host_over_a_socket_gets_421_in_the_services_shape(sales: FlaskClient, scm: FlaskClient) -> None:
    answer = sales.get(f"{SALES_ROOT}/accounts", environ_overrides=served("evil.example:5101"))
    assert_dataverse_error(answer, 421, codes.UNSPECIFIED)
    assert "evil.example" in answer.get_json()["error"]["message"]
    assert_fno_error(scm.get("/data/CustomersV3", environ_overrides=served("rebind.evil.example")), 421)


def test_rebinding_cannot_reset(scm: FlaskClient) -> None:
    before = count(scm, "/data/CustomersV3?$select=CustomerAccount&cross-company=true")
    answer = scm.post("/_sandbox/reset", environ_overrides=served("evil.example:5102"))
    assert answer.status_code == 421
    assert count(scm, "/data/CustomersV3?$select=CustomerAccount&cross-company=true") == before


@pytest.mark.parametrize("host", ["localhost:5101", "127.0.0.1:5101", "[::1]:5101", "127.0.0.2", "LOCALHOST"])
def test_loopback_hosts_pass(sales: FlaskClient, host: str) -> None:
    assert sales.get(f"{SALES_ROOT}/accounts?$top=1", environ_overrides=served(host)).status_code == 200


def test_an_allowed_host_passes(sales_app: Flask) -> None:
    client = sales_app.test_client()
    assert (
        client.get(f"{SALES_ROOT}/accounts?$top=1", environ_overrides=served("sandbox.internal:5101")).status_code
        == 421
    )
    configure_edge(sales_app, allowed_hosts=["Sandbox.Internal"])
    assert (
        client.get(f"{SALES_ROOT}/accounts?$top=1", environ_overrides=served("sandbox.internal:5101")).status_code
        == 200
    )


def test_requests_in_the_same_process_are_not_host_checked(sales: FlaskClient) -> None:
    """httpx's WSGI transport and Flask's test client name made-up hosts; they never crossed a network."""
    assert sales.get(f"{SALES_ROOT}/accounts?$top=1", headers={"Host": "sales.sandbox"}).status_code == 200


def test_health_answers_a_foreign_host_with_421_too(sales: FlaskClient) -> None:
    assert sales.get("/_sandbox/health", environ_overrides=served("evil.example")).status_code == 421


# ---- the identity service's install ------------------------------------------------------------------------
def test_the_identity_service_takes_form_posts_on_its_token_endpoints_only() -> None:
    """OAuth 2.0 token requests are form posts by the protocol; a cross-site page still may not send them."""
    from sandbox.errors import SandboxError
    from sandbox.websafety import install_identity_service_edge_safety

    app = Flask("identity")

    def render(error: SandboxError) -> Any:
        return {"error": error.code, "error_description": error.message}, error.status

    install_identity_service_edge_safety(app, render)
    app.add_url_rule("/<tenant>/oauth2/v2.0/token", "v2", lambda tenant: {"access_token": "t"}, methods=["POST"])
    app.add_url_rule("/<tenant>/oauth2/token", "v1", lambda tenant: {"access_token": "t"}, methods=["POST"])
    app.add_url_rule("/<tenant>/admin/apps", "apps", lambda tenant: {}, methods=["POST"])
    client = app.test_client()
    form = {"grant_type": "client_credentials", "client_id": "x"}
    assert client.post("/tenant/oauth2/v2.0/token", data=form).status_code == 200
    assert client.post("/tenant/oauth2/token", data=form).status_code == 200
    assert client.post("/tenant/admin/apps", data=form).status_code == 415
    assert client.post("/tenant/oauth2/v2.0/token", data=form, headers={"Origin": EVIL}).status_code == 403
    assert client.get("/tenant/oauth2/v2.0/token", environ_overrides=served("evil.example")).status_code == 421
