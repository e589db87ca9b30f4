"""The typed clients speak the services' wire conventions exactly.

Every test scripts a ``httpx.MockTransport`` that asserts the request it receives (method, URL with key
formatting and query string, headers, body) and answers with a response shaped like the references
(Dataverse 204 + OData-EntityId, F&O 201 rows, paged collections, both error bodies, multipart ``$batch``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import flask
import httpx
import pytest

from sandbox.clients import (
    IDENTITY_HEADER,
    BatchOp,
    BatchResult,
    ControlClient,
    ODataClient,
    SalesClient,
    ScmClient,
    ServiceError,
    format_key,
    format_literal,
    parse_entity_id,
)
from sandbox.clients.auth import identity_of
from sandbox.odata import batch as wire
from sandbox.wellknown import DEFAULT_COMPANY, INTEGRATION_IDENTITY

ORIGIN = "http://sales.test"
ROOT = f"{ORIGIN}/api/data/v9.2/"
SCM_ORIGIN = "http://scm.test"
SCM_ROOT = f"{SCM_ORIGIN}/data/"
GUID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
GUID2 = "4624eff7-1a2b-4c3d-8e9f-001122334455"

Step = Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler serving scripted steps in order and keeping every request it saw."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.steps, f"unexpected request {request.method} {request.url}"
        return self.steps.pop(0)(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def assert_done(self) -> None:
        assert not self.steps, f"{len(self.steps)} scripted exchanges never happened"


def expect(
    method: str,
    url: str,
    response: httpx.Response,
    *,
    json_body: Any = ...,
    headers: dict[str, str] | None = None,
    absent: tuple[str, ...] = (),
) -> Step:
    """A step asserting the exact method and URL (raw, as sent), optional JSON body and headers."""

    def step(request: httpx.Request) -> httpx.Response:
        assert request.method == method
        assert str(request.url) == url
        if json_body is not ...:
            if json_body is None:
                assert request.content == b""
            else:
                assert request.headers["Content-Type"] == "application/json; charset=utf-8"
                assert json.loads(request.content) == json_body
        for name, value in (headers or {}).items():
            assert request.headers.get(name) == value, name
        for name in absent:
            assert name not in request.headers, name
        return response

    return step


def dv_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A Dataverse error answer."""
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def entity_created(entity_set: str, guid: str) -> httpx.Response:
    """Dataverse's answer to a create without representation."""
    return httpx.Response(204, headers={"OData-Version": "4.0", "OData-EntityId": f"{ROOT}{entity_set}({guid})"})


@pytest.fixture
def script() -> Script:
    return Script()


def sales(script: Script, **kwargs: Any) -> SalesClient:
    return SalesClient(ORIGIN, transport=script.transport, **kwargs)


def scm(script: Script, **kwargs: Any) -> ScmClient:
    return ScmClient(SCM_ORIGIN, transport=script.transport, **kwargs)


# ------------------------------------------------------------------------------- keys and literals


def test_format_key_guid_string_is_bare_in_dataverse_style() -> None:
    """A GUID-looking string is written bare; any other string is quoted."""
    assert format_key(GUID) == f"({GUID})"
    assert format_key("C-1001") == "('C-1001')"


def test_format_key_with_guid_bare_false_quotes_guid_strings() -> None:
    """F&O style quotes every string, even one that looks like a GUID."""
    assert format_key(GUID, guid_bare=False) == f"('{GUID}')"


def test_format_key_doubles_single_quotes() -> None:
    """A ``'`` inside a string literal is doubled."""
    assert format_key({"accountnumber": "O'Bryan"}) == "(accountnumber='O''Bryan')"


def test_format_key_composite_mapping_keeps_order_and_types() -> None:
    """A mapping becomes ``name=value`` pairs in order: strings quoted, numbers and bools bare, None null."""
    key = {
        "dataAreaId": DEFAULT_COMPANY,
        "LineNumber": 3,
        "Amount": 1.5,
        "Price": Decimal("2.50"),
        "IsActive": True,
        "Deleted": False,
        "Parent": None,
        "_primarycontactid_value": GUID,
    }
    assert format_key(key) == (
        f"(dataAreaId='{DEFAULT_COMPANY}',LineNumber=3,Amount=1.5,Price=2.50,IsActive=true,"
        f"Deleted=false,Parent=null,_primarycontactid_value={GUID})"
    )


def test_format_key_integer_and_uuid_scalars_are_bare() -> None:
    """Integer keys and uuid.UUID values are written bare (a UUID object is bare in both styles)."""
    assert format_key(42) == "(42)"
    assert format_key(uuid.UUID(GUID), guid_bare=False) == f"({GUID})"


def test_format_key_empty_mapping_is_rejected() -> None:
    """An empty key mapping is a programming error."""
    with pytest.raises(ValueError):
        format_key({})


def test_format_literal_datetimes_are_bare_iso_with_z_for_utc() -> None:
    """Dates and datetimes are bare ISO 8601; UTC is written as ``Z``."""
    assert format_literal(dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)) == "2024-01-01T12:00:00Z"
    assert format_literal(dt.date(2024, 1, 31)) == "2024-01-31"


def test_format_literal_unsupported_type_raises_type_error() -> None:
    """Values with no OData literal form are refused."""
    with pytest.raises(TypeError):
        format_literal(object())


def test_parse_entity_id_plain_and_named_key_forms() -> None:
    """The GUID comes out of both ``set(<guid>)`` and ``set(accountid=<guid>)`` URLs."""
    assert parse_entity_id(f"{ROOT}accounts({GUID})") == GUID
    assert parse_entity_id(f"{ROOT}accounts(accountid={GUID})") == GUID


def test_parse_entity_id_alternate_key_url_raises_value_error() -> None:
    """An entity id naming the row by alternate key has no GUID to return."""
    with pytest.raises(ValueError):
        parse_entity_id(f"{ROOT}accounts(accountnumber='C-1001')")


def test_bind_formats_guid_and_alternate_key_references() -> None:
    """``bind`` gives the ``@odata.bind`` value with a leading slash."""
    assert SalesClient.bind("contacts", GUID) == f"/contacts({GUID})"
    assert SalesClient.bind("accounts", {"accountnumber": "C-1001"}) == "/accounts(accountnumber='C-1001')"


# ------------------------------------------------------------------------------- roots and headers


def test_sales_client_root_is_api_data_v92_under_the_origin() -> None:
    """The Sales client's httpx base URL is the Dataverse service root."""
    with SalesClient(ORIGIN + "/", transport=Script().transport) as client:
        assert str(client.http.base_url) == ROOT
        assert client.origin == ORIGIN


def test_base_url_already_at_the_service_root_is_not_doubled() -> None:
    """Passing the service root itself as base_url keeps it as the root."""
    with SalesClient(ROOT, transport=Script().transport) as client:
        assert str(client.http.base_url) == ROOT
    with ScmClient(SCM_ROOT, transport=Script().transport) as client:
        assert str(client.http.base_url) == SCM_ROOT


def test_scm_client_root_is_data_under_the_origin() -> None:
    """The SCM client's root is ``<origin>/data/``."""
    with ScmClient(SCM_ORIGIN, transport=Script().transport) as client:
        assert str(client.http.base_url) == SCM_ROOT


def test_generic_odata_client_uses_base_url_as_root() -> None:
    """The shared base treats base_url as the service root."""
    with ODataClient("http://x.test/odata", transport=Script().transport) as client:
        assert str(client.http.base_url) == "http://x.test/odata/"


@pytest.mark.parametrize(
    "url",
    [
        "accounts",
        "/accounts",
        "accounts(7eb682f1-ca75-e511-80d4-00155d2a68d1)?$select=name",
        "CustomersV3(dataAreaId='usmf',CustomerAccount='a b:c')?cross-company=true",
        "CustomersV3?$filter=CustomerAccount%20eq%20'x'%20and%20dataAreaId%20eq%20'usmf'&$top=1",
        "$batch",
        "",
        "http://other.test/data/CustomersV3?$skiptoken=2",
    ],
)
def test_absolute_url_is_what_httpx_would_merge_with_the_root(url: str) -> None:
    """The client hands httpx whole URLs (parsed once): exactly what httpx makes of the relative one."""
    for client in (
        SalesClient(ORIGIN, transport=Script().transport),
        ScmClient(SCM_ORIGIN, transport=Script().transport),
    ):
        with client:
            assert (
                client.http.build_request("GET", client.absolute_url(url)).url
                == client.http.build_request("GET", url).url
            )


def test_every_request_carries_odata_auth_and_identity_headers(script: Script) -> None:
    """Accept, OData versions, bearer token and the sandbox identity go with every request."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}WhoAmI()",
            httpx.Response(200, json={"UserId": GUID}),
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "Authorization": "Bearer tok",
                IDENTITY_HEADER: INTEGRATION_IDENTITY,
            },
            absent=("Content-Type",),
        )
    )
    client = sales(script, identity=INTEGRATION_IDENTITY, token="tok")
    assert client.who_am_i() == {"UserId": GUID}
    script.assert_done()


def test_no_identity_means_no_identity_header(script: Script) -> None:
    """Without an identity the X-Sandbox-Identity header is not sent."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}WhoAmI()",
            httpx.Response(200, json={}),
            absent=(IDENTITY_HEADER,),
            headers={"Authorization": "Bearer sandbox"},
        )
    )
    sales(script).who_am_i()
    script.assert_done()


def test_extra_constructor_headers_are_sent(script: Script) -> None:
    """Headers given to the constructor ride on every request."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}WhoAmI()",
            httpx.Response(200, json={}),
            headers={"MSCRM.SuppressDuplicateDetection": "false"},
        )
    )
    sales(script, headers={"MSCRM.SuppressDuplicateDetection": "false"}).who_am_i()
    script.assert_done()


def test_context_manager_closes_the_http_client() -> None:
    """Leaving the ``with`` block closes the underlying httpx client."""
    with SalesClient(ORIGIN, transport=Script().transport) as client:
        pass
    assert client.http.is_closed


# ------------------------------------------------------------------------------------ Sales CRUD


def test_sales_create_without_representation_returns_guid_from_odata_entity_id(script: Script) -> None:
    """POST answered 204 + OData-EntityId returns the new row's GUID."""
    body = {
        "name": "Contoso Retail",
        "accountnumber": "C-1001",
        "customertypecode": 3,
        "primarycontactid@odata.bind": f"/contacts({GUID2})",
    }
    script.steps.append(
        expect("POST", f"{ROOT}accounts", entity_created("accounts", GUID), json_body=body, absent=("Prefer",))
    )
    assert sales(script).create("accounts", body) == GUID
    script.assert_done()


def test_sales_create_with_representation_returns_the_201_row(script: Script) -> None:
    """``return_representation`` sends Prefer: return=representation (and $select) and returns the row."""
    row = {
        "@odata.context": f"{ROOT}$metadata#accounts(name,accountnumber)/$entity",
        "@odata.etag": 'W/"81052965"',
        "accountid": GUID,
        "name": "Contoso",
        "accountnumber": "C-1",
    }
    script.steps.append(
        expect(
            "POST",
            f"{ROOT}accounts?$select=name,accountnumber",
            httpx.Response(
                201,
                json=row,
                headers={"Preference-Applied": "return=representation", "OData-EntityId": f"{ROOT}accounts({GUID})"},
            ),
            json_body={"name": "Contoso", "accountnumber": "C-1"},
            headers={"Prefer": "return=representation"},
        )
    )
    created = sales(script).create(
        "accounts",
        {"name": "Contoso", "accountnumber": "C-1"},
        return_representation=True,
        select=["name", "accountnumber"],
    )
    assert created == row
    script.assert_done()


def test_sales_create_with_representation_not_honoured_fetches_the_row(script: Script) -> None:
    """A 204 despite the preference falls back to a GET of the OData-EntityId URL."""
    script.steps += [
        expect("POST", f"{ROOT}accounts", entity_created("accounts", GUID)),
        expect("GET", f"{ROOT}accounts({GUID})", httpx.Response(200, json={"accountid": GUID})),
    ]
    assert sales(script).create("accounts", {"name": "x"}, return_representation=True) == {"accountid": GUID}
    script.assert_done()


def test_sales_create_serializes_decimals_dates_and_uuids(script: Script) -> None:
    """Decimal, datetime and UUID values in a body are sent as JSON number, ISO string and GUID string."""
    script.steps.append(
        expect(
            "POST",
            f"{ROOT}opportunities",
            entity_created("opportunities", GUID),
            json_body={
                "estimatedvalue": 5000.25,
                "estimatedclosedate": "2024-03-01",
                "createdon": "2024-03-01T10:00:00Z",
                "x": GUID,
            },
        )
    )
    sales(script).create(
        "opportunities",
        {
            "estimatedvalue": Decimal("5000.25"),
            "estimatedclosedate": dt.date(2024, 3, 1),
            "createdon": dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC),
            "x": uuid.UUID(GUID),
        },
    )
    script.assert_done()


def test_sales_create_answer_without_entity_id_raises_service_error(script: Script) -> None:
    """A 204 without OData-EntityId cannot yield a GUID and is reported, not guessed."""
    script.steps.append(expect("POST", f"{ROOT}accounts", httpx.Response(204)))
    with pytest.raises(ServiceError, match="OData-EntityId"):
        sales(script).create("accounts", {"name": "x"})


def test_sales_retrieve_by_guid_with_select_and_expand(script: Script) -> None:
    """GUID keys are bare; $select/$expand lists are comma-joined, nested options kept readable."""
    row = {
        "@odata.etag": 'W/"1"',
        "accountid": GUID,
        "name": "Contoso",
        "primarycontactid": {"fullname": "Jo", "contactid": GUID2},
    }
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}accounts({GUID})?$select=name,accountnumber&$expand=primarycontactid($select=fullname)",
            httpx.Response(200, json=row),
            json_body=None,
        )
    )
    got = sales(script).retrieve(
        "accounts", GUID, select=["name", "accountnumber"], expand="primarycontactid($select=fullname)"
    )
    assert got == row
    script.assert_done()


def test_sales_retrieve_by_alternate_key_quotes_and_percent_encodes(script: Script) -> None:
    """Alternate-key strings are quoted with '' doubling; URL-breaking characters are percent-encoded."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}accounts(accountnumber='O''Neil%20%26%20Sons%2F1%23',msdyn_company=7)",
            httpx.Response(200, json={"accountid": GUID}),
        )
    )
    sales(script).retrieve("accounts", {"accountnumber": "O'Neil & Sons/1#", "msdyn_company": 7})
    script.assert_done()


def test_sales_update_without_etag_sends_if_match_star(script: Script) -> None:
    """update() is never an accidental upsert: it sends If-Match: * unless given an etag."""
    script.steps.append(
        expect(
            "PATCH",
            f"{ROOT}accounts({GUID})",
            httpx.Response(204),
            json_body={"name": "New"},
            headers={"If-Match": "*"},
        )
    )
    assert sales(script).update("accounts", GUID, {"name": "New"}) is None
    script.assert_done()


def test_sales_update_with_etag_sends_that_etag(script: Script) -> None:
    """An explicit etag goes out as If-Match; a 412 mismatch raises with the Dataverse code."""
    script.steps.append(
        expect(
            "PATCH",
            f"{ROOT}accounts({GUID})",
            dv_error(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            ),
            headers={"If-Match": 'W/"5"'},
        )
    )
    with pytest.raises(ServiceError) as caught:
        sales(script).update("accounts", GUID, {"name": "New"}, if_match='W/"5"')
    assert (caught.value.status, caught.value.code) == (412, "0x80060882")


def test_sales_upsert_sends_unconditional_patch_on_alternate_key(script: Script) -> None:
    """upsert() PATCHes the key URL with no If-Match / If-None-Match."""
    script.steps.append(
        expect(
            "PATCH",
            f"{ROOT}accounts(accountnumber='C-1001')",
            httpx.Response(204, headers={"OData-EntityId": f"{ROOT}accounts(accountnumber='C-1001')"}),
            json_body={"name": "Contoso"},
            absent=("If-Match", "If-None-Match"),
        )
    )
    assert sales(script).upsert("accounts", {"accountnumber": "C-1001"}, {"name": "Contoso"}) is None
    script.assert_done()


def test_sales_delete_with_and_without_etag(script: Script) -> None:
    """DELETE goes to the key URL; If-Match only when an etag is given."""
    script.steps += [
        expect("DELETE", f"{ROOT}accounts({GUID})", httpx.Response(204), absent=("If-Match",)),
        expect("DELETE", f"{ROOT}accounts({GUID})", httpx.Response(204), headers={"If-Match": 'W/"9"'}),
    ]
    client = sales(script)
    client.delete("accounts", GUID)
    client.delete("accounts", GUID, if_match='W/"9"')
    script.assert_done()


# --------------------------------------------------------------------------- Sales actions/functions


def test_sales_unbound_action_posts_to_the_root_and_returns_none_on_204(script: Script) -> None:
    """An unbound action is ``POST /Name``; a 204 answer gives None."""
    body = {"Status": 4, "QuoteClose": {"subject": "Won", "quoteid@odata.bind": f"/quotes({GUID})"}}
    script.steps.append(expect("POST", f"{ROOT}WinQuote", httpx.Response(204), json_body=body))
    assert sales(script).action("WinQuote", body) is None
    script.assert_done()


def test_sales_unbound_action_returns_the_200_body(script: Script) -> None:
    """An action answering 200 returns its JSON."""
    order = {"@odata.context": f"{ROOT}$metadata#salesorders/$entity", "salesorderid": GUID2}
    body = {"QuoteId": GUID, "ColumnSet": {"AllColumns": True}}
    script.steps.append(
        expect("POST", f"{ROOT}ConvertQuoteToSalesOrder", httpx.Response(200, json=order), json_body=body)
    )
    assert sales(script).action("ConvertQuoteToSalesOrder", body) == order


def test_sales_bound_action_uses_the_crm_namespace(script: Script) -> None:
    """A row-bound action is ``POST set(key)/Microsoft.Dynamics.CRM.Name``."""
    result = {"value": [{"@odata.type": "#Microsoft.Dynamics.CRM.account", "accountid": GUID2}]}
    script.steps.append(
        expect(
            "POST",
            f"{ROOT}leads({GUID})/Microsoft.Dynamics.CRM.QualifyLead",
            httpx.Response(200, json=result),
            json_body={"CreateAccount": True, "CreateContact": False, "CreateOpportunity": False, "Status": 3},
        )
    )
    got = sales(script).action(
        "QualifyLead",
        {"CreateAccount": True, "CreateContact": False, "CreateOpportunity": False, "Status": 3},
        entity_set="leads",
        key=GUID,
    )
    assert got == result


def test_sales_collection_bound_action_has_no_key(script: Script) -> None:
    """entity_set without key binds the action to the collection; no body sends ``{}``."""
    script.steps.append(
        expect("POST", f"{ROOT}salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder", httpx.Response(204), json_body={})
    )
    sales(script).action("FulfillSalesOrder", entity_set="salesorders")
    script.assert_done()


def test_sales_action_with_key_but_no_entity_set_is_rejected() -> None:
    """A key alone cannot address a bound action."""
    with pytest.raises(ValueError):
        SalesClient(ORIGIN, transport=Script().transport).action("X", key=GUID)


def test_sales_function_with_parameters_uses_aliases(script: Script) -> None:
    """Function parameters go through ``@p`` aliases with OData literals (strings quoted, lists JSON)."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}Fn(Name=@Name,Count=@Count,Values=@Values)"
            "?@Name='O''Brien%20%26%20co'&@Count=3&@Values=%5B%220%22,%221%22%5D",
            httpx.Response(200, json={"ok": True}),
        )
    )
    assert sales(script).function("Fn", Name="O'Brien & co", Count=3, Values=["0", "1"]) == {"ok": True}
    script.assert_done()


def test_sales_function_parameters_keep_decimals_exact_and_datetimes_iso(script: Script) -> None:
    """A Decimal inside a JSON parameter is an exact JSON number; a datetime is a bare ISO literal (UTC as Z)."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}Fn(Amounts=@Amounts,Since=@Since)?@Amounts=%5B2.50,0.1000000000000000000001%5D"
            "&@Since=2024-03-01T10:00:00Z",
            httpx.Response(200, json={"ok": True}),
        )
    )
    since = dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)
    amounts = [Decimal("2.50"), Decimal("0.1000000000000000000001")]
    assert sales(script).function("Fn", Amounts=amounts, Since=since) == {"ok": True}
    script.assert_done()


# ------------------------------------------------------------------------------- queries and paging


def test_query_follows_next_link_verbatim_with_the_same_page_size(script: Script) -> None:
    """Every page is fetched; the nextLink is replayed as given with Prefer: odata.maxpagesize each time."""
    next_link = (
        f"{ROOT}accounts?$select=name&$filter=name%20eq%20'A%26B'&$skiptoken="
        "%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2f%253e%22"
        "%20istracking=%22False%22%20/%3E"
    )
    page1 = {
        "@odata.context": f"{ROOT}$metadata#accounts(name)",
        "value": [{"@odata.etag": 'W/"1"', "name": "A&B", "accountid": GUID}],
        "@odata.nextLink": next_link,
    }
    page2 = {
        "@odata.context": f"{ROOT}$metadata#accounts(name)",
        "value": [{"@odata.etag": 'W/"2"', "name": "A&B", "accountid": GUID2}],
    }
    prefer = {"Prefer": "odata.maxpagesize=1"}
    script.steps += [
        expect(
            "GET",
            f"{ROOT}accounts?$select=name&$filter=name%20eq%20'A%26B'",
            httpx.Response(200, json=page1, headers={"Preference-Applied": "odata.maxpagesize=1"}),
            headers=prefer,
        ),
        expect("GET", next_link, httpx.Response(200, json=page2), headers=prefer),
    ]
    rows = sales(script).query("accounts", select="name", filter="name eq 'A&B'", page_size=1)
    assert [row["accountid"] for row in rows] == [GUID, GUID2]
    script.assert_done()


def test_query_options_are_encoded_in_a_fixed_order_with_extra_last(script: Script) -> None:
    """$select, $filter, $orderby, $top, $expand come first, then ``extra`` as given."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}opportunities?$select=name,estimatedvalue&$filter=statecode%20eq%200"
            "&$orderby=estimatedvalue%20desc,name&$top=5&$expand=customerid_account($select=name)&$count=true",
            httpx.Response(200, json={"@odata.count": 1, "value": [{"name": "x"}]}),
            absent=("Prefer",),
        )
    )
    rows = sales(script).query(
        "opportunities",
        select=["name", "estimatedvalue"],
        filter="statecode eq 0",
        orderby=["estimatedvalue desc", "name"],
        top=5,
        expand="customerid_account($select=name)",
        extra={"$count": True},
    )
    assert rows == [{"name": "x"}]
    script.assert_done()


def test_iter_pages_yields_one_list_per_page(script: Script) -> None:
    """iter_pages exposes page boundaries; a relative nextLink resolves against the service root."""
    script.steps += [
        expect(
            "GET",
            f"{ROOT}contacts",
            httpx.Response(
                200,
                json={"value": [{"contactid": "1"}, {"contactid": "2"}], "@odata.nextLink": "contacts?$skiptoken=2"},
            ),
        ),
        expect("GET", f"{ROOT}contacts?$skiptoken=2", httpx.Response(200, json={"value": [{"contactid": "3"}]})),
    ]
    pages = list(sales(script).iter_pages("contacts"))
    assert pages == [[{"contactid": "1"}, {"contactid": "2"}], [{"contactid": "3"}]]


def test_iter_pages_repeating_next_link_raises_instead_of_looping(script: Script) -> None:
    """A server handing back the same nextLink twice is stopped rather than followed forever."""
    loop = {"value": [], "@odata.nextLink": f"{ROOT}contacts?$skiptoken=x"}
    script.steps += [lambda request: httpx.Response(200, json=loop)] * 3
    with pytest.raises(RuntimeError, match="repeats"):
        sales(script).query("contacts")


def test_get_maps_keyword_options_to_dollar_names(script: Script) -> None:
    """get() turns select/filter/top keywords into $options and returns the JSON body."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}accounts({GUID})/name?$select=name&$top=1&other=x",
            httpx.Response(200, json={"value": "Contoso"}),
        )
    )
    got = sales(script).get(f"accounts({GUID})/name", select="name", top=1, other="x")
    assert got == {"value": "Contoso"}


def test_count_reads_the_plain_text_number(script: Script) -> None:
    """count() GETs ``set/$count`` (with $filter) and parses the text/plain answer."""
    script.steps.append(
        expect(
            "GET",
            f"{ROOT}accounts/$count?$filter=customertypecode%20eq%203",
            httpx.Response(200, text="\ufeff42", headers={"Content-Type": "text/plain"}),
            headers={"Accept": "text/plain"},
        )
    )
    assert sales(script).count("accounts", "customertypecode eq 3") == 42


def test_track_changes_first_round_then_delta_link(script: Script) -> None:
    """Change tracking sends Prefer: odata.track-changes, splits deletions out and returns the deltaLink."""
    delta1 = f"{ROOT}accounts?$select=name&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
    delta2 = f"{ROOT}accounts?$select=name&$deltatoken=919050%2108%2f22%2f2017%2008%3a11%3a00"
    prefer = {"Prefer": "odata.track-changes"}
    script.steps += [
        expect(
            "GET",
            f"{ROOT}accounts?$select=name",
            httpx.Response(200, json={"value": [{"name": "A", "accountid": GUID}], "@odata.deltaLink": delta1}),
            headers=prefer,
        ),
        expect(
            "GET",
            delta1,
            httpx.Response(
                200,
                json={
                    "@odata.context": f"{ROOT}$metadata#accounts(name)/$delta",
                    "value": [
                        {"name": "B", "accountid": GUID2},
                        {"@odata.context": f"{ROOT}$metadata#accounts/$deletedEntity", "id": GUID, "reason": "deleted"},
                    ],
                    "@odata.deltaLink": delta2,
                },
            ),
            headers=prefer,
        ),
    ]
    client = sales(script)
    first = client.track_changes("accounts", select="name")
    assert (first.changed, first.deleted, first.delta_link) == ([{"name": "A", "accountid": GUID}], [], delta1)
    second = client.track_changes(delta_link=first.delta_link)
    assert second.changed == [{"name": "B", "accountid": GUID2}]
    assert second.deleted == [GUID]
    assert second.delta_link == delta2
    script.assert_done()


# ------------------------------------------------------------------------------------------- errors


def test_dataverse_error_body_maps_to_service_error(script: Script) -> None:
    """A Dataverse 404 gives status, HRESULT code, message, parsed body and the response."""
    message = f"Entity 'account' With Id = {GUID} Does Not Exist"
    script.steps.append(lambda request: dv_error(404, "0x80040217", message))
    with pytest.raises(ServiceError) as caught:
        sales(script).retrieve("accounts", GUID)
    error = caught.value
    assert (error.status, error.code, error.message) == (404, "0x80040217", message)
    assert error.body == {"error": {"code": "0x80040217", "message": message}}
    assert error.response.status_code == 404
    assert error.retry_after is None and not error.transient
    assert "404" in str(error) and f"accounts({GUID})" in str(error)


def test_fno_error_prefers_innererror_message(script: Script) -> None:
    """The F&O Infolog text in innererror.message becomes the message; the code stays ''."""
    infolog = (
        "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' "
        "in field 'Customer group' is not found in the related table 'Customer groups'."
    )
    body = {
        "error": {
            "code": "",
            "message": "An error has occurred.",
            "innererror": {
                "message": infolog,
                "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
                "stacktrace": "   at ...",
            },
        }
    }
    script.steps.append(lambda request: httpx.Response(400, json=body))
    with pytest.raises(ServiceError) as caught:
        scm(script).create("CustomersV3", {"dataAreaId": DEFAULT_COMPANY, "CustomerGroupId": "Local"})
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "", infolog)
    assert caught.value.body == body


def test_fno_error_without_innererror_uses_error_message(script: Script) -> None:
    """Without innererror the outer message is used (e.g. an unknown collection)."""
    not_found = {"error": {"code": "", "message": "Entity set not found."}}
    script.steps.append(lambda request: httpx.Response(404, json=not_found))
    with pytest.raises(ServiceError) as caught:
        scm(script).query("NoSuchEntities")
    assert caught.value.message == "Entity set not found."


def test_429_exposes_retry_after_seconds_and_is_transient(script: Script) -> None:
    """Service protection 429 carries Retry-After; the client surfaces it and does not retry."""
    script.steps.append(
        lambda request: dv_error(
            429,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            headers={"Retry-After": "7"},
        )
    )
    with pytest.raises(ServiceError) as caught:
        sales(script).create("accounts", {"name": "x"})
    assert caught.value.retry_after == 7.0
    assert caught.value.transient
    assert caught.value.code == "0x80072322"
    assert len(script.requests) == 1


def test_retry_after_as_http_date_becomes_seconds_from_now(script: Script) -> None:
    """An HTTP-date Retry-After is converted to a non-negative number of seconds."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    script.steps.append(lambda request: httpx.Response(503, text="busy", headers={"Retry-After": when}))
    with pytest.raises(ServiceError) as caught:
        sales(script).who_am_i()
    assert 25 <= (caught.value.retry_after or 0) <= 31
    assert caught.value.message == "busy"


def test_non_json_error_body_uses_text_or_reason(script: Script) -> None:
    """A proxy-style plain-text error keeps its text; an empty one falls back to the reason phrase."""
    script.steps += [
        lambda request: httpx.Response(502, text="Bad gateway from proxy"),
        lambda request: httpx.Response(500),
    ]
    client = sales(script)
    with pytest.raises(ServiceError, match="Bad gateway from proxy"):
        client.who_am_i()
    with pytest.raises(ServiceError) as caught:
        client.who_am_i()
    assert caught.value.message == "Internal Server Error"


# ------------------------------------------------------------------------------------------ SCM


def test_scm_create_returns_the_201_row(script: Script) -> None:
    """F&O create answers 201 with the full row; the client returns it."""
    row = {
        "@odata.context": f"{SCM_ROOT}$metadata#SalesOrderHeadersV2/$entity",
        "@odata.etag": 'W/"JzEsNTYzNyc="',
        "dataAreaId": DEFAULT_COMPANY,
        "SalesOrderNumber": "001261",
        "OrderingCustomerAccountNumber": "US-001",
        "SalesOrderStatus": "None",
    }
    body = {"dataAreaId": DEFAULT_COMPANY, "OrderingCustomerAccountNumber": "US-001", "CurrencyCode": "USD"}
    script.steps.append(expect("POST", f"{SCM_ROOT}SalesOrderHeadersV2", httpx.Response(201, json=row), json_body=body))
    assert scm(script).create("SalesOrderHeadersV2", body) == row


def test_scm_retrieve_composite_key_cross_company_and_select(script: Script) -> None:
    """Compound keys are quoted in order; cross_company adds ``cross-company=true``."""
    script.steps.append(
        expect(
            "GET",
            f"{SCM_ROOT}CustomersV3(dataAreaId='{DEFAULT_COMPANY}',CustomerAccount='US-001')"
            "?$select=CustomerAccount,OrganizationName&cross-company=true",
            httpx.Response(200, json={"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": "US-001"}),
        )
    )
    scm(script).retrieve(
        "CustomersV3",
        {"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": "US-001"},
        cross_company=True,
        select=["CustomerAccount", "OrganizationName"],
    )
    script.assert_done()


def test_scm_keys_quote_guid_looking_strings(script: Script) -> None:
    """F&O keys never leave a string bare, even a GUID-shaped one; a scalar key is positional."""
    script.steps += [
        expect("GET", f"{SCM_ROOT}Things(dataAreaId='{DEFAULT_COMPANY}',Id='{GUID}')", httpx.Response(200, json={})),
        expect("GET", f"{SCM_ROOT}UnitsOfMeasure('ea')", httpx.Response(200, json={"UnitSymbol": "ea"})),
    ]
    client = scm(script)
    client.retrieve("Things", {"dataAreaId": DEFAULT_COMPANY, "Id": GUID})
    client.retrieve("UnitsOfMeasure", "ea")
    script.assert_done()


def test_scm_update_and_delete_hit_the_key_url_without_if_match(script: Script) -> None:
    """PATCH and DELETE on the key URL answer 204; F&O needs no If-Match."""
    key = {"dataAreaId": DEFAULT_COMPANY, "SalesOrderNumber": "000002"}
    url = f"{SCM_ROOT}SalesOrderHeadersV2(dataAreaId='{DEFAULT_COMPANY}',SalesOrderNumber='000002')"
    script.steps += [
        expect("PATCH", url, httpx.Response(204), json_body={"CustomersOrderReference": "PO-1"}, absent=("If-Match",)),
        expect("DELETE", url, httpx.Response(204), json_body=None),
    ]
    client = scm(script)
    assert client.update("SalesOrderHeadersV2", key, {"CustomersOrderReference": "PO-1"}) is None
    assert client.delete("SalesOrderHeadersV2", key) is None
    script.assert_done()


def test_scm_bound_action_uses_the_data_entities_namespace(script: Script) -> None:
    """An entity action is ``POST set(key)/Microsoft.Dynamics.DataEntities.Name``."""
    script.steps += [
        expect(
            "POST",
            f"{SCM_ROOT}SalesOrderHeadersV2(dataAreaId='{DEFAULT_COMPANY}',SalesOrderNumber='001261')"
            "/Microsoft.Dynamics.DataEntities.Confirm",
            httpx.Response(204),
            json_body={},
        ),
        expect(
            "POST",
            f"{SCM_ROOT}SalesOrderHeadersV2/Microsoft.Dynamics.DataEntities.Recalc",
            httpx.Response(200, json={"value": 2}),
            json_body={"All": True},
        ),
    ]
    client = scm(script)
    assert (
        client.action("SalesOrderHeadersV2", {"dataAreaId": DEFAULT_COMPANY, "SalesOrderNumber": "001261"}, "Confirm")
        is None
    )
    assert client.action("SalesOrderHeadersV2", None, "Recalc", {"All": True}) == {"value": 2}


def test_scm_query_cross_company_follows_skip_next_links(script: Script) -> None:
    """F&O pages with ``$skip`` nextLinks; cross-company and enum literals are kept readable."""
    flt = f"dataAreaId eq '{DEFAULT_COMPANY}' and SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'"
    first = (
        f"{SCM_ROOT}SalesOrderHeadersV2?$select=SalesOrderNumber&$filter=dataAreaId%20eq%20'{DEFAULT_COMPANY}'%20and%20"
        "SalesOrderStatus%20eq%20Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'&cross-company=true"
    )
    next_link = first + "&$skip=2"
    script.steps += [
        expect(
            "GET",
            first,
            httpx.Response(
                200,
                json={
                    "value": [{"SalesOrderNumber": "000001"}, {"SalesOrderNumber": "000002"}],
                    "@odata.nextLink": next_link,
                },
            ),
        ),
        expect("GET", next_link, httpx.Response(200, json={"value": [{"SalesOrderNumber": "000003"}]})),
    ]
    rows = scm(script).query("SalesOrderHeadersV2", select="SalesOrderNumber", filter=flt, cross_company=True)
    assert [row["SalesOrderNumber"] for row in rows] == ["000001", "000002", "000003"]
    script.assert_done()


def test_scm_count_with_cross_company(script: Script) -> None:
    """count() on SCM can widen to every company."""
    script.steps.append(
        expect("GET", f"{SCM_ROOT}CustomerGroups/$count?cross-company=true", httpx.Response(200, text="9"))
    )
    assert scm(script).count("CustomerGroups", cross_company=True) == 9


def test_scm_iter_pages_with_cross_company(script: Script) -> None:
    """iter_pages on SCM takes cross_company too."""
    script.steps.append(
        expect(
            "GET",
            f"{SCM_ROOT}Warehouses?$top=1&cross-company=true",
            httpx.Response(200, json={"value": [{"WarehouseId": "11"}]}),
        )
    )
    assert list(scm(script).iter_pages("Warehouses", top=1, cross_company=True)) == [[{"WarehouseId": "11"}]]


def test_the_read_methods_are_declared_once_with_the_company_option_on_the_base() -> None:
    """SCM adds only its query option's name: query, iter_pages and count come from the base client."""
    for name in ("query", "iter_pages", "count"):
        assert name not in vars(ScmClient) and name not in vars(SalesClient), name
    assert (ScmClient.cross_company_option, SalesClient.cross_company_option) == ("cross-company", None)


def test_sales_refuses_cross_company_before_sending_anything(script: Script) -> None:
    """Dataverse has no companies: the option is a TypeError, as an unknown keyword was, and no request goes out."""
    client = sales(script)
    with pytest.raises(TypeError, match="SalesClient reads no companies"):
        client.query("accounts", cross_company=True)
    with pytest.raises(TypeError, match="SalesClient reads no companies"):
        client.count("accounts", cross_company=True)
    with pytest.raises(TypeError, match="SalesClient reads no companies"):
        next(client.iter_pages("accounts", cross_company=True))
    script.assert_done()


def test_scm_reads_without_cross_company_stay_in_the_default_company(script: Script) -> None:
    """No ``cross-company`` in the query unless asked for; ``extra`` options pass as they are."""
    script.steps += [
        expect("GET", f"{SCM_ROOT}Warehouses?$top=1&x=1", httpx.Response(200, json={"value": []})),
        expect("GET", f"{SCM_ROOT}Warehouses/$count", httpx.Response(200, text="4")),
    ]
    client = scm(script)
    assert client.query("Warehouses", top=1, extra={"x": 1}) == []
    assert client.count("Warehouses") == 4
    script.assert_done()


@pytest.mark.parametrize(
    ("status", "challenge", "found"),
    [
        (
            401,
            "Bearer authorization_uri=http://127.0.0.1:5310/tenant-1/oauth2/authorize, resource_id=x",
            "http://127.0.0.1:5310",
        ),
        (401, 'Bearer authorization_uri="https://id.example:8443/t/oauth2/authorize"', "https://id.example:8443"),
        (200, "", None),  # no token asked for
        (401, "Basic realm=x", None),
        (401, "Bearer authorization_uri=http://elsewhere/authorize", None),
        (401, "Bearer authorization_uri=/t/oauth2/authorize", None),
    ],
)
def test_identity_of_reads_the_identity_service_from_the_401_challenge(
    status: int, challenge: str, found: str | None
) -> None:
    """The origin before ``/<tenant>/oauth2/authorize``; anything else names no identity service."""
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, json={}))
    assert identity_of("http://127.0.0.1:5311/api/data/v9.2/", transport=transport) == found


def test_identity_of_a_service_that_cannot_be_reached_is_none() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert identity_of("http://127.0.0.1:1/", transport=httpx.MockTransport(refuse)) is None


# ------------------------------------------------------------------------------------------- $batch


def _mime_parts(body: str, boundary: str) -> list[str]:
    """Parts between ``--boundary`` lines of a CRLF multipart body."""
    chunks = body.split(f"--{boundary}")
    assert chunks[-1].startswith("--"), "close delimiter missing"
    return [chunk[2:] if chunk.startswith("\r\n") else chunk for chunk in chunks[1:-1]]


def batch_response(*parts: str, boundary: str = "batchresponse_1") -> str:
    return "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"


def http_part(
    status_line: str, headers: dict[str, str] | None = None, body: str = "", content_id: str | None = None
) -> str:
    mime = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        mime += f"Content-ID: {content_id}\r\n"
    head = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return f"{mime}\r\nHTTP/1.1 {status_line}\r\n{head}\r\n{body}"


def changeset(*parts: str, boundary: str = "changesetresponse_1") -> str:
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


def test_batch_request_is_crlf_multipart_with_change_sets_and_content_ids(script: Script) -> None:
    """Nested lists become change sets; members get Content-IDs by position; URLs are absolute; CRLF only."""
    seen: dict[str, Any] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        body = batch_response(
            changeset(
                http_part(
                    "204 No Content",
                    {"OData-EntityId": f"{ROOT}quotes({GUID})", "Location": f"{ROOT}quotes({GUID})"},
                    content_id="2",
                ),
                http_part("204 No Content", {"OData-EntityId": f"{ROOT}quotedetails({GUID2})"}, content_id="3"),
            ),
            http_part(
                "200 OK",
                {"Content-Type": "application/json; odata.metadata=minimal"},
                json.dumps({"value": [{"name": "Q-100"}]}),
            ),
        )
        return httpx.Response(
            200, content=body.encode(), headers={"Content-Type": "multipart/mixed; boundary=batchresponse_1"}
        )

    script.steps.append(answer)
    ops = [
        BatchOp.get("quotes", params={"$select": "name", "$filter": "name eq 'Q 1'"}),
        [
            BatchOp.post("quotes", {"name": "Q-100", "customerid_account@odata.bind": f"/accounts({GUID})"}),
            BatchOp.post("quotedetails", {"quoteid@odata.bind": "$2", "quantity": 2}),
        ],
        BatchOp.get("/api/data/v9.2/quotes?$top=1"),
    ]
    results = sales(script).batch(ops, continue_on_error=True)

    request: httpx.Request = seen["request"]
    assert str(request.url) == f"{ROOT}$batch"
    assert request.method == "POST"
    assert request.headers["Prefer"] == "odata.continue-on-error"
    boundary = re.fullmatch(r"multipart/mixed; boundary=(batch_[0-9a-f-]+)", request.headers["Content-Type"]).group(1)
    text = request.content.decode()
    assert "\n" not in text.replace("\r\n", ""), "bare LF in $batch body"
    parts = _mime_parts(text, boundary)
    assert len(parts) == 3
    assert parts[0] == (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET {ROOT}quotes?$select=name&$filter=name%20eq%20'Q%201' HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n"
    )
    cs_boundary = re.match(r"Content-Type: multipart/mixed; boundary=(changeset_[0-9a-f-]+)\r\n\r\n", parts[1]).group(1)
    members = _mime_parts(parts[1].split("\r\n\r\n", 1)[1], cs_boundary)
    assert members[0] == (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        f"POST {ROOT}quotes HTTP/1.1\r\nAccept: application/json\r\n"
        "Content-Type: application/json; charset=utf-8\r\n\r\n"
        f'{{"name":"Q-100","customerid_account@odata.bind":"/accounts({GUID})"}}\r\n'
    )
    assert "Content-ID: 3\r\n" in members[1] and '"quoteid@odata.bind":"$2"' in members[1]
    assert f"GET {ROOT}quotes?$top=1 HTTP/1.1" in parts[2]

    assert [(r.status, r.content_id) for r in results] == [(204, "2"), (204, "3"), (200, None)]
    assert results[0].entity_id == GUID and results[1].entity_id == GUID2
    assert results[2].json == {"value": [{"name": "Q-100"}]}
    assert all(r.ok for r in results) and results[0].raise_for_status() is results[0]


def test_batch_failure_keeps_multipart_parts_and_reports_the_failed_one(script: Script) -> None:
    """A 4xx outer status with a multipart body is parsed, not raised; the failed part converts to ServiceError."""
    error_body = json.dumps(
        {"error": {"code": "0x80040217", "message": f"Entity 'account' With Id = {GUID} Does Not Exist"}}
    )
    body = batch_response(
        http_part("204 No Content", {"OData-EntityId": f"{ROOT}accounts({GUID2})"}),
        http_part(
            "404 Not Found", {"Content-Type": "application/json; odata.metadata=minimal", "REQ_ID": "abc"}, error_body
        ),
        boundary="batchresponse_9f",
    )
    script.steps.append(
        lambda request: httpx.Response(
            404, content=body.encode(), headers={"Content-Type": "multipart/mixed; boundary=batchresponse_9f"}
        )
    )
    results = sales(script).batch(
        [BatchOp.post("accounts", {"name": "a"}), BatchOp.patch(f"accounts({GUID})", {"name": "b"})]
    )
    assert [r.status for r in results] == [204, 404]
    assert script.requests[0].headers.get("Prefer") is None
    failed = results[1]
    assert not failed.ok and failed.reason == "Not Found" and failed.headers["REQ_ID"] == "abc"
    error = failed.error()
    assert isinstance(error, ServiceError)
    assert (error.status, error.code) == (404, "0x80040217")
    with pytest.raises(ServiceError, match="Does Not Exist"):
        failed.raise_for_status()
    assert results[0].error() is None


def test_batch_fno_change_set_error_part_uses_innererror(script: Script) -> None:
    """An F&O change set failing inside a 200 batch yields one 500 part whose message is the Infolog."""
    inner = json.dumps(
        {
            "error": {
                "code": "",
                "message": "An error has occurred.",
                "innererror": {"message": "Customer group X not found.", "type": "X"},
            }
        }
    )
    body = batch_response(
        changeset(http_part("500 Internal Server Error", {"Content-Type": "application/json"}, inner, content_id="1"))
    )
    script.steps.append(
        lambda request: httpx.Response(
            200, content=body.encode(), headers={"Content-Type": 'multipart/mixed; boundary="batchresponse_1"'}
        )
    )
    results = scm(script).batch(
        [
            [
                BatchOp.post("CustomerGroups", {"dataAreaId": DEFAULT_COMPANY, "CustomerGroupId": "X"}),
                BatchOp.post("CustomersV3", {"dataAreaId": DEFAULT_COMPANY, "CustomerGroupId": "X"}),
            ]
        ]
    )
    assert len(results) == 1
    assert results[0].content_id == "1"
    assert results[0].error().message == "Customer group X not found."
    assert str(script.requests[0].url) == f"{SCM_ROOT}$batch"
    assert f"POST {SCM_ROOT}CustomersV3 HTTP/1.1" in script.requests[0].content.decode()


def test_batch_response_with_lf_only_line_endings_is_parsed(script: Script) -> None:
    """Lenient parsing: a response using bare LF still yields its parts."""
    body = (
        "--b\nContent-Type: application/http\n\nHTTP/1.1 200 OK\nContent-Type: application/json\n\n"
        '{"a":1}\n--b\nContent-Type: application/http\n\nHTTP/1.1 204 No Content\nContent-ID: 5\n\n\n--b--\n'
    )
    script.steps.append(
        lambda request: httpx.Response(
            200, content=body.encode(), headers={"Content-Type": "multipart/mixed;boundary=b"}
        )
    )
    results = sales(script).batch([BatchOp.get("a"), BatchOp.delete("b(1)")])
    assert [(r.status, r.json, r.content_id) for r in results] == [(200, {"a": 1}, None), (204, None, "5")]


def test_batch_non_multipart_error_raises_service_error(script: Script) -> None:
    """When the whole batch is refused with a JSON error (e.g. malformed body) the client raises."""
    script.steps.append(lambda request: dv_error(400, "0x80048d19", "Stream was not readable"))
    with pytest.raises(ServiceError) as caught:
        sales(script).batch([BatchOp.get("accounts")])
    assert caught.value.code == "0x80048d19"


def test_batch_non_multipart_success_is_reported_as_error(script: Script) -> None:
    """A 200 that is not multipart cannot be parsed into parts and is reported."""
    script.steps.append(lambda request: httpx.Response(200, json={}))
    with pytest.raises(ServiceError, match="not multipart"):
        sales(script).batch([BatchOp.get("accounts")])


def test_batch_get_inside_change_set_is_rejected() -> None:
    """Change sets hold writes only."""
    client = SalesClient(ORIGIN, transport=Script().transport)
    with pytest.raises(ValueError, match="writes only"):
        client.build_batch([[BatchOp.get("accounts")]])


def test_batch_duplicate_explicit_content_id_is_rejected() -> None:
    """Content-IDs must be unique within a batch."""
    client = SalesClient(ORIGIN, transport=Script().transport)
    with pytest.raises(ValueError, match="duplicate Content-ID"):
        client.build_batch([[BatchOp.post("a", {}, content_id="x"), BatchOp.post("b", {}, content_id="x")]])


def test_batch_content_id_reference_url_is_sent_unchanged() -> None:
    """A ``$n`` URL refers to an earlier part and is not made absolute; explicit ids override positions."""
    client = SalesClient(ORIGIN, transport=Script().transport)
    body, _ = client.build_batch(
        [[BatchOp.post("contacts", {"lastname": "A"}, content_id="c1"), BatchOp.put("$c1/lastname", {"value": "B"})]]
    )
    text = body.decode()
    assert "Content-ID: c1\r\n" in text and "Content-ID: 2\r\n" in text
    assert "PUT $c1/lastname HTTP/1.1\r\n" in text


def test_batch_result_entity_id_is_none_without_guid() -> None:
    """entity_id is None for parts that name no GUID."""
    result = BatchResult(204, httpx.Headers({"OData-EntityId": f"{ROOT}accounts(accountnumber='C-1')"}), None)
    assert result.entity_id is None
    assert BatchResult(200, httpx.Headers(), {}).entity_id is None


def test_batch_body_is_accepted_by_the_services_strict_dataverse_parser() -> None:
    """The server's own $batch parser (Dataverse dialect: CRLF required) reads back what the client built."""
    client = SalesClient(ORIGIN, transport=Script().transport)
    body, content_type = client.build_batch(
        [
            BatchOp.get("accounts", params={"$select": "name", "$filter": "name eq 'A&B'"}),
            [
                BatchOp.post("contacts", {"lastname": "Ng"}),
                BatchOp.patch("$2", {"firstname": "Jo"}, headers={"If-Match": "*"}),
            ],
        ]
    )
    items = wire.parse_batch(body, content_type, wire.DATAVERSE_BATCH)
    get, change_set = items
    assert isinstance(get, wire.BatchRequest) and isinstance(change_set, wire.ChangeSet)
    assert (get.method, get.content_id) == ("GET", None)
    assert get.url == f"{ROOT}accounts?$select=name&$filter=name%20eq%20'A%26B'"
    post, patch = change_set.requests
    assert (post.method, post.url, post.content_id, json.loads(post.body)) == (
        "POST",
        f"{ROOT}contacts",
        "2",
        {"lastname": "Ng"},
    )
    assert (patch.method, patch.url, patch.content_id, wire.header(patch.headers, "If-Match")) == (
        "PATCH",
        "$2",
        "3",
        "*",
    )


def test_batch_answer_rendered_by_the_service_is_parsed(script: Script) -> None:
    """A multipart answer rendered by the services' own $batch renderer comes back as BatchResults."""
    error = json.dumps(
        {"error": {"code": "0x80040237", "message": "A record with matching key values already exists."}}
    )
    body, content_type = wire.render_batch(
        [
            wire.BatchResponse(
                200,
                "",
                {"Content-Type": "application/json; odata.metadata=minimal"},
                b'{"value":[{"name":"A&B"}]}',
                None,
            ),
            [
                wire.BatchResponse(204, "", {"OData-EntityId": f"{ROOT}contacts({GUID})"}, b"", "2"),
                wire.BatchResponse(412, "", {"Content-Type": "application/json"}, error.encode(), "3"),
            ],
        ]
    )
    script.steps.append(lambda request: httpx.Response(412, content=body, headers={"Content-Type": content_type}))
    results = sales(script).batch([BatchOp.get("accounts"), [BatchOp.post("contacts", {}), BatchOp.patch("$2", {})]])
    assert [(r.status, r.reason, r.content_id) for r in results] == [
        (200, "OK", None),
        (204, "No Content", "2"),
        (412, "Precondition Failed", "3"),
    ]
    assert results[0].json == {"value": [{"name": "A&B"}]}
    assert results[1].entity_id == GUID
    assert results[2].error().code == "0x80040237"


def test_batch_malformed_multipart_answer_raises_service_error(script: Script) -> None:
    """A multipart answer that cannot be read (no closing delimiter) is reported as a ServiceError."""
    script.steps.append(
        lambda request: httpx.Response(
            200,
            content=b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            headers={"Content-Type": "multipart/mixed; boundary=b"},
        )
    )
    with pytest.raises(ServiceError, match="unreadable"):
        sales(script).batch([BatchOp.get("accounts")])


# ------------------------------------------------------------------------------------ control plane


def control(script: Script, **kwargs: Any) -> ControlClient:
    return ControlClient(ORIGIN, transport=script.transport, **kwargs)


def test_control_plane_routes_methods_and_bodies(script: Script) -> None:
    """Each control call maps to its /_sandbox route, method and JSON body."""
    base = f"{ORIGIN}/_sandbox/"
    snap = {"tables": {"account": []}}
    script.steps += [
        expect("GET", base + "health", httpx.Response(200, json={"status": "ok"}), json_body=None),
        expect("GET", base + "info", httpx.Response(200, json={"service": "sales"})),
        expect("POST", base + "reset", httpx.Response(204)),
        expect(
            "POST",
            base + "seed",
            httpx.Response(200, json={"seed": 7, "counts": {"account": 5}}),
            json_body={"seed": 7, "accounts": 5},
        ),
        expect("GET", base + "snapshot", httpx.Response(200, json=snap)),
        expect("POST", base + "snapshot", httpx.Response(204), json_body=snap),
        expect("GET", base + "journal?limit=5", httpx.Response(200, json={"entries": [{"method": "GET"}]})),
        expect("DELETE", base + "journal", httpx.Response(204)),
    ]
    client = control(script, identity="tester")
    assert client.health() == {"status": "ok"}
    assert client.info() == {"service": "sales"}
    assert client.reset() is None
    assert client.seed(7, accounts=5) == {"seed": 7, "counts": {"account": 5}}
    assert client.snapshot() == snap
    client.restore(snap)
    assert client.journal(limit=5) == [{"method": "GET"}]
    client.clear_journal()
    assert script.requests[0].headers[IDENTITY_HEADER] == "tester"
    script.assert_done()


def test_fail_bridge_writes_matches_the_integration_identity_on_write_methods(script: Script) -> None:
    """The helper is a fault on every write method for the bridge's identity, once by default."""
    rule = {
        "method": ["POST", "PATCH", "PUT", "DELETE"],
        "identity": INTEGRATION_IDENTITY,
        "status": 503,
        "probability": 1.0,
        "latency_ms": 0,
        "times": 1,
    }
    script.steps.append(
        expect("POST", f"{ORIGIN}/_sandbox/faults", httpx.Response(201, json={"id": "f1"}), json_body=rule)
    )
    assert control(script).fail_bridge_writes() == {"id": "f1"}
    script.assert_done()


def test_control_plane_faults_lifecycle(script: Script) -> None:
    """Fault rules go out in the control plane's field names (None fields left out, Retry-After rounded up
    to whole seconds), are listed (wrapped or bare), fetched and removed by id, and cleared."""
    base = f"{ORIGIN}/_sandbox/"
    rule = {
        "method": "POST",
        "path": "/api/data/v9.2/accounts",
        "status": 429,
        "probability": 0.5,
        "latency_ms": 0,
        "retry_after": 3,
        "times": 2,
        "drop": False,
    }
    script.steps += [
        expect("POST", base + "faults", httpx.Response(201, json={"id": "f1", **rule}), json_body=rule),
        expect(
            "POST",
            base + "faults",
            httpx.Response(201, json={"id": "f2"}),
            json_body={"status": 503, "probability": 1.0, "latency_ms": 250, "when": "after"},
        ),
        expect("GET", base + "faults", httpx.Response(200, json={"faults": [{"id": "f1"}]})),
        expect("GET", base + "faults", httpx.Response(200, json=[{"id": "f1"}])),
        expect("GET", base + "faults/f1", httpx.Response(200, json={"id": "f1"})),
        expect("DELETE", base + "faults/f1", httpx.Response(204)),
        expect("DELETE", base + "faults", httpx.Response(204)),
    ]
    client = control(script)
    assert (
        client.add_fault(
            "POST", "/api/data/v9.2/accounts", status=429, probability=0.5, retry_after=2.2, times=2, drop=False
        )["id"]
        == "f1"
    )
    assert client.add_fault(latency_ms=250, when="after") == {"id": "f2"}
    assert client.faults() == [{"id": "f1"}]
    assert client.faults() == [{"id": "f1"}]
    assert client.fault("f1") == {"id": "f1"}
    client.remove_fault("f1")
    client.clear_faults()
    script.assert_done()


def test_control_plane_journal_filters_and_entries_wrapper(script: Script) -> None:
    """journal() passes method/path filters and unwraps ``{"entries": [...]}``."""
    script.steps.append(
        expect(
            "GET",
            f"{ORIGIN}/_sandbox/journal?limit=10&method=POST&path=%5Eaccounts",
            httpx.Response(200, json={"entries": [{"method": "POST"}]}),
        )
    )
    assert control(script).journal(10, method="POST", path="^accounts") == [{"method": "POST"}]


def test_control_plane_changes_long_poll_stretches_the_timeout(script: Script) -> None:
    """changes() sends after/limit/tables/exclude_identity/wait and waits longer than ``wait``."""
    feed = {"changes": [{"seq": 4, "table": "account"}], "next": 4, "latest": 4}
    script.steps += [
        expect(
            "GET",
            f"{ORIGIN}/_sandbox/changes?after=3&limit=50&tables=account,contact&exclude_identity={INTEGRATION_IDENTITY}&wait=25",
            httpx.Response(200, json=feed),
        ),
        expect("GET", f"{ORIGIN}/_sandbox/changes?after=0&limit=500", httpx.Response(200, json=feed)),
    ]
    client = control(script, timeout=5.0)
    assert (
        client.changes(after=3, limit=50, tables=["account", "contact"], exclude_identity=INTEGRATION_IDENTITY, wait=25)
        == feed
    )
    assert script.requests[0].extensions["timeout"]["read"] >= 35
    client.changes()
    assert script.requests[1].extensions["timeout"]["read"] == 5.0
    script.assert_done()


def test_control_plane_error_raises_service_error(script: Script) -> None:
    """Control-plane failures raise ServiceError with the body's message."""
    script.steps.append(lambda request: httpx.Response(400, json={"error": {"code": "", "message": "bad seed"}}))
    with pytest.raises(ServiceError, match="bad seed"):
        control(script).seed(-1)


# ------------------------------------------------------------------------- through a real WSGI app


def test_wsgi_transport_round_trip_decodes_keys_and_options_as_sent() -> None:
    """Through httpx.WSGITransport a Flask app sees the key literal and $filter exactly as formatted."""
    app = flask.Flask("echo")

    @app.route("/api/data/v9.2/<path:rest>", methods=["GET"])
    def echo(rest: str) -> Any:
        return {
            "path": flask.request.path,
            "args": flask.request.args.to_dict(),
            "identity": flask.request.headers.get(IDENTITY_HEADER),
        }

    with SalesClient("http://sandbox", transport=httpx.WSGITransport(app=app), identity=INTEGRATION_IDENTITY) as client:
        got = client.get(
            client.entity_path("accounts", {"accountnumber": "A&B 1+2/3"}),
            filter="name eq 'x+y & z;'",
            expand="a($select=b;$top=1)",
        )
    assert got == {
        "path": "/api/data/v9.2/accounts(accountnumber='A&B 1+2/3')",
        "args": {"$filter": "name eq 'x+y & z;'", "$expand": "a($select=b;$top=1)"},
        "identity": INTEGRATION_IDENTITY,
    }
