"""Hostile input that once answered 500 on the mocks and their control planes: each now gets a 4xx in the
service's own error shape (docs/reference/dataverse-web-api.md, docs/reference/fno-odata.md: error bodies)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.odata.batch import BatchRequest, ChangeSet, build_batch_request, parse_batch_response
from sandbox.testing import assert_dataverse_error, assert_fno_error

SALES = "/api/data/v9.2"
SCM = "/data"


def nested_object(depth: int) -> bytes:
    """A JSON object nested ``depth`` levels deep: ``{"a":{"a":...1...}}``."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def nested_value(name: str, depth: int) -> bytes:
    """An object whose property ``name`` holds arrays nested ``depth - 1`` levels deep."""
    return b'{"' + name.encode() + b'":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def assert_error(service: str, response: Any, status: int, contains: str | None = None) -> None:
    if service == "sales":
        assert_dataverse_error(response, status, contains=contains)
    else:
        assert_fno_error(response, status, contains=contains)


# ---- JSON nested too deep ---------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [101, 1000, 1025, 5000])
def test_deeply_nested_entity_bodies_are_400_in_each_services_shape(
    sales: FlaskClient, scm: FlaskClient, depth: int
) -> None:
    """A create whose body nests deeper than 100 levels (the real services' ODataLib quota) is malformed
    JSON: 400 in the service's shape, never the RecursionError it once was (beyond 1,024 levels) nor one
    from code that walks or prints the value (below it)."""
    for service, client, path, name in (
        ("sales", sales, f"{SALES}/accounts", "name"),
        ("scm", scm, f"{SCM}/CustomersV3", "OrganizationName"),
    ):
        for body in (nested_object(depth), nested_value(name, depth)):
            response = client.post(path, data=body, content_type="application/json")
            assert_error(service, response, 400, contains="nested deeper")


def test_a_body_nested_exactly_100_levels_is_read_and_refused_for_its_content(sales: FlaskClient) -> None:
    """At the limit a body is parsed: what it holds is then judged as any value is (here: not text)."""
    response = sales.post(f"{SALES}/accounts", data=nested_value("name", 100), content_type="application/json")
    error = assert_dataverse_error(response, 400)
    assert "nested deeper" not in error["message"]


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deeply_nested_batch_parts_answer_400_parts(sales: FlaskClient, depth: int) -> None:
    """Inside $batch, a part whose body nests too deep answers its own 400 in the Dataverse shape, also where
    the batch resolves ``$n`` references in the bodies of a change set."""
    json_headers = {"Content-Type": "application/json"}
    deep = b'{"name":"x","description":' + b"[" * depth + b'"$1"' + b"]" * depth + b"}"
    change_set = ChangeSet(
        [
            BatchRequest("POST", f"{SALES}/accounts", json_headers, b'{"name":"a"}', "1"),
            BatchRequest("POST", f"{SALES}/accounts", json_headers, deep, "2"),
        ]
    )
    alone = BatchRequest("POST", f"{SALES}/accounts", json_headers, nested_object(depth), None)
    for item in (change_set, alone):
        body, content_type = build_batch_request([item])
        response = sales.post(f"{SALES}/$batch", data=body, content_type=content_type)
        assert response.status_code < 500, response.data
        [part] = parse_batch_response(response.data, response.headers["Content-Type"])
        failed = part[-1] if isinstance(part, list) else part
        assert failed.status == 400 and b"nested deeper" in failed.body, failed


@pytest.mark.parametrize("service", ["sales", "scm"])
@pytest.mark.parametrize("path", ["/_sandbox/seed", "/_sandbox/faults", "/_sandbox/snapshot"])
def test_deeply_nested_control_plane_bodies_are_400(
    sales: FlaskClient, scm: FlaskClient, service: str, path: str
) -> None:
    """The control plane reads its bodies with the same limit, and answers in its service's error shape."""
    client = sales if service == "sales" else scm
    for body in (nested_object(5000), nested_value("seed", 1000), nested_value("format", 101)):
        assert_error(service, client.post(path, data=body, content_type="application/json"), 400, "nested deeper")


def test_deeply_nested_function_parameter_is_400(sales: FlaskClient) -> None:
    """A JSON function parameter in the query string (``@p1``) is read with the same limit."""
    deep = "[" * 2000 + "]" * 2000
    response = sales.get(f"{SALES}/EntityDefinitions(LogicalName='account')/Attributes", query_string={"@p1": deep})
    assert response.status_code < 500
    query = f"{SALES}/RetrieveMetadataChanges(Query=@p1)"
    assert_dataverse_error(sales.get(query, query_string={"@p1": deep}), 400)


# ---- integers beyond 64 bits in query parameters -------------------------------------------------------------
@pytest.mark.parametrize("value", ["9223372036854775808", "9" * 400])
@pytest.mark.parametrize("name", ["after", "limit"])
def test_change_feed_integers_beyond_64_bits_are_400(sales: FlaskClient, name: str, value: str) -> None:
    """``/_sandbox/changes?after=2**63`` named no row SQLite could compare with and failed in the driver: a
    400 naming the parameter now, as for any integer the feed cannot take."""
    response = sales.get("/_sandbox/changes", query_string={name: value})
    assert_dataverse_error(response, 400, contains=f"'{name}' must be at most 9223372036854775807")


def test_the_largest_64_bit_cursor_is_accepted(scm: FlaskClient) -> None:
    """The feed's cursor may be any 64-bit sequence number; past the newest it reads nothing."""
    response = scm.get("/_sandbox/changes", query_string={"after": str(2**63 - 1)})
    assert response.status_code == 200 and response.get_json()["changes"] == []


@pytest.mark.parametrize("value", ["9223372036854775808", "9" * 400, "-9223372036854775809"])
def test_journal_limit_beyond_64_bits_is_400(scm: FlaskClient, value: str) -> None:
    assert_fno_error(scm.get("/_sandbox/journal", query_string={"limit": value}), 400, contains="'limit'")


@pytest.mark.parametrize("value", ["9223372036854775808", "9" * 400])
def test_top_and_skip_beyond_64_bits_are_400(sales: FlaskClient, scm: FlaskClient, value: str) -> None:
    """$top and $skip beyond Int64 (what ODataLib reads them into) are refused, never passed to SQLite."""
    response = sales.get(f"{SALES}/accounts", query_string={"$top": value})
    assert_dataverse_error(response, 400, contains="requires a non-negative integer")
    for option in ("$top", "$skip"):
        response = scm.get(f"{SCM}/CustomersV3", query_string={option: value})
        assert_fno_error(response, 400, contains="requires a non-negative integer")


def test_body_integers_and_decimals_beyond_the_real_types_are_400(sales: FlaskClient, scm: FlaskClient) -> None:
    """A whole number past Int64, a decimal past .NET's Decimal, or past the column's precision is refused
    as the real services refuse it (a value they cannot read, or one outside the column's range)."""
    too_big = "9" * 400
    response = sales.post(
        f"{SALES}/accounts", data=f'{{"name":"x","revenue":{too_big}}}', content_type="application/json"
    )
    assert_dataverse_error(response, 400)
    response = sales.post(
        f"{SALES}/accounts", data='{"name":"x","revenue":1e25}', content_type="application/json"
    )  # money: precision 23, scale 4
    assert_dataverse_error(response, 400, code="0x80044331", contains="outside the valid range")
    response = scm.post(
        f"{SCM}/CustomersV3",
        data=f'{{"dataAreaId":"usmf","CustomerAccount":"BIG-1","CreditLimit":{too_big}}}',
        content_type="application/json",
    )
    assert_fno_error(response, 400)


# ---- methods a resource does not take -----------------------------------------------------------------------
def _allowed(response: Any) -> set[str]:
    assert "Allow" in response.headers, f"a 405 without Allow: {response.data!r}"
    return {m.strip() for m in response.headers["Allow"].split(",") if m.strip()}


@pytest.mark.parametrize(
    ("service", "method", "path", "allow"),
    [
        ("scm", "PATCH", f"{SCM}/", {"GET"}),
        ("sales", "POST", f"{SALES}/", {"GET"}),
        ("scm", "PUT", f"{SCM}/$metadata", {"GET"}),
        ("sales", "DELETE", f"{SALES}/$metadata", {"GET"}),
        ("sales", "GET", f"{SALES}/$batch", {"POST"}),
        ("sales", "PATCH", f"{SALES}/accounts", {"GET", "POST"}),
        ("scm", "DELETE", f"{SCM}/CustomersV3", {"GET", "POST"}),
        ("sales", "POST", f"{SALES}/accounts/$count", {"GET"}),
        ("scm", "PUT", f"{SCM}/CustomersV3/$count", {"GET"}),
        ("sales", "POST", f"{SALES}/accounts(00000000-0000-0000-0000-000000000001)", {"GET", "PATCH", "PUT", "DELETE"}),
        (
            "scm",
            "POST",
            f"{SCM}/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')",
            {"GET", "PATCH", "PUT", "DELETE"},
        ),
        ("sales", "POST", "/_sandbox/health", {"GET"}),
        ("scm", "PATCH", "/_sandbox/faults", {"GET", "POST", "DELETE"}),
    ],
)
def test_a_method_the_resource_does_not_take_is_405_with_allow(
    sales: FlaskClient, scm: FlaskClient, service: str, method: str, path: str, allow: set[str]
) -> None:
    """The service root and $metadata answered PATCH, PUT and DELETE with 200 as if they were GETs; every 405
    now comes in the service's error shape with the Allow header RFC 9110 (section 15.5.6) requires."""
    client = sales if service == "sales" else scm
    response = client.open(path, method=method, json={} if method in ("POST", "PATCH", "PUT") else None)
    if service == "sales":
        assert_dataverse_error(response, 405)
    else:
        assert_fno_error(response, 405)
    assert _allowed(response) == allow


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_an_unknown_http_method_is_405_with_allow(sales: FlaskClient, scm: FlaskClient, method: str) -> None:
    assert "GET" in _allowed(sales.open(f"{SALES}/accounts", method=method))
    assert_fno_error(response := scm.open(f"{SCM}/CustomersV3", method=method), 405)
    assert "GET" in _allowed(response)


def test_an_injected_405_names_the_methods_of_the_route(sales: FlaskClient) -> None:
    """A fault that answers 405 is still a 405: it carries Allow like any other."""
    assert sales.post("/_sandbox/faults", json={"path": f"{SALES}/accounts", "status": 405}).status_code == 201
    response = sales.get(f"{SALES}/accounts")
    assert_dataverse_error(response, 405)
    assert {"GET", "POST"} <= _allowed(response)
