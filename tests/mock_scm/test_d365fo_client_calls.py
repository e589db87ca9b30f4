"""The HTTP calls of the third-party F&O client ``d365fo-client`` 0.3.7, replayed with httpx against mock SCM.

``tests/mock_scm/test_client_d365fo.py`` runs the client itself, but it declares Python >= 3.13 and is skipped
here. This module replays, request for request, what its normal operations send with their default settings,
as read in the client's source (``client.py``, ``crud.py``, ``metadata_api.py``, ``labels.py``, ``query.py``,
``metadata_v2/sync_manager_v2.py`` and ``version_detector.py`` of v0.3.7) and recorded from a run of the client
against a served mock SCM: the same methods, paths, query strings (aiohttp writes spaces in ``params`` as
``+``), headers and JSON bodies. Each answer is then checked for what the client parses out of it, so a change
that would break the client fails here on Python 3.11 too.

Every session header the client sets (``session.py``): ``Authorization: Bearer <token>`` (on loopback URLs
``mock-token-for-localhost``), ``Accept: application/json``, ``x-ms-client-session-id``, and per request
``x-ms-client-request-id``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from sandbox.runtime import runtime_of

SESSION_ID = str(uuid.uuid4())


@pytest.fixture
def fo(scm_app: Flask) -> Iterator[httpx.Client]:
    """An httpx client on the seeded mock SCM in-process, with the d365fo client's session headers."""
    headers = {
        "Authorization": "Bearer mock-token-for-localhost",
        "Accept": "application/json",
        "x-ms-client-session-id": SESSION_ID,
        "User-Agent": "Python/3.11 aiohttp/3.14.5",
    }
    transport = httpx.WSGITransport(app=scm_app)
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:5102", headers=headers) as client:
        yield client


def _call(client: httpx.Client, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One request as the client sends it: a fresh request id, JSON bodies as ``aiohttp``'s ``json=``."""
    headers = {"x-ms-client-request-id": str(uuid.uuid4())}
    if body is not None:
        return client.request(method, url, json=body, headers=headers)
    return client.request(method, url, headers=headers)


def _ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200,)), (response.request.url, response.status_code, response.text)
    return response.json() if response.content else None


# ---- connection checks and versions (client.py, metadata_api.py, version_detector.py) ----------------------


def test_connection_checks_answer_200(fo: httpx.Client) -> None:
    """``test_connection`` GETs ``/data`` and ``test_metadata_connection`` ``/Metadata/PublicEntities?$top=1``:
    the client only looks for a 200."""
    _ok(_call(fo, "GET", "/data"))
    body = _ok(_call(fo, "GET", "/Metadata/PublicEntities?%24top=1"))
    assert len(body["value"]) == 1


def test_version_actions_answer_strings_and_module_lines_the_client_parses(fo: httpx.Client) -> None:
    """The version detector POSTs ``{}`` to the unbound-looking actions on ``DataManagementEntities`` and
    ``SystemNotifications`` and reads ``value``: a version string, and module lines of exactly five
    ``" | "``-separated, non-empty parts (``ModuleVersionInfo.parse_from_string``), among them the core
    modules ApplicationPlatform and ApplicationFoundation it requires."""
    prefix = "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities."
    application = _ok(_call(fo, "POST", prefix + "GetApplicationVersion", {}))["value"]
    platform = _ok(_call(fo, "POST", prefix + "GetPlatformBuildVersion", {}))["value"]
    build = _ok(_call(fo, "POST", prefix + "GetApplicationBuildVersion", {}))["value"]
    assert re.fullmatch(r"10\.0\.\d+\.\d+", application) and build == application
    assert re.fullmatch(r"7\.0\.\d+\.\d+", platform)
    modules = _ok(
        _call(fo, "POST", "/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules", {})
    )["value"]
    ids = []
    for line in modules:
        parts = line.split(" | ")
        assert len(parts) == 5 and all(p.split(": ", 1)[1] for p in parts), line
        assert [p.split(": ", 1)[0] for p in parts] == ["Name", "Version", "Module", "Publisher", "DisplayName"]
        ids.append(parts[2].removeprefix("Module: "))
    assert {"ApplicationPlatform", "ApplicationFoundation"} <= set(ids)


# ---- metadata (metadata_api.py, labels.py) -----------------------------------------------------------------


def test_data_entities_list_search_and_key_read_carry_the_fields_the_client_reads(fo: httpx.Client) -> None:
    """``get_data_entities(QueryOptions(top=5))``, ``search_data_entities('customer')`` (a ``contains(tolower(Name),
    'customer')`` filter with ``+`` for the space), and ``get_data_entity_info``: each item has Name,
    PublicEntityName, PublicCollectionName, LabelId, DataServiceEnabled, DataManagementEnabled, EntityCategory and
    IsReadOnly."""
    top = _ok(_call(fo, "GET", "/Metadata/DataEntities?%24top=5"))["value"]
    assert len(top) == 5
    found = _ok(_call(fo, "GET", "/Metadata/DataEntities?%24filter=contains(tolower(Name),+'customer')"))["value"]
    assert "CustCustomerV3Entity" in {item["Name"] for item in found}
    assert all("customer" in item["Name"].lower() for item in found)
    one = _ok(_call(fo, "GET", "/Metadata/DataEntities('CustCustomerV3Entity')"))
    for item in (*top, one):
        assert {
            "Name",
            "PublicEntityName",
            "PublicCollectionName",
            "LabelId",
            "DataServiceEnabled",
            "DataManagementEnabled",
            "EntityCategory",
            "IsReadOnly",
        } <= set(item)
    assert one["PublicCollectionName"] == "CustomersV3" and one["PublicEntityName"] == "CustomerV3"


def test_public_entity_search_and_schema_have_keys_types_and_labels(fo: httpx.Client) -> None:
    """``search_public_entities`` sends ``$select=Name,EntitySetName,LabelId,IsReadOnly,ConfigurationEnabled`` with
    a ``contains`` filter; ``get_public_entity_info('CustomerV3')`` reads Properties (Name, TypeName, DataType,
    IsKey, IsMandatory, AllowEdit...), NavigationProperties, PropertyGroups and Actions."""
    select = "%24select=Name,EntitySetName,LabelId,IsReadOnly,ConfigurationEnabled"
    found = _ok(_call(fo, "GET", f"/Metadata/PublicEntities?{select}&%24filter=contains(tolower(Name),+'customer')"))[
        "value"
    ]
    assert "CustomerV3" in {item["Name"] for item in found}
    assert all(
        set(item) == {"Name", "EntitySetName", "LabelId", "IsReadOnly", "ConfigurationEnabled"} for item in found
    )
    schema = _ok(_call(fo, "GET", "/Metadata/PublicEntities('CustomerV3')"))
    assert schema["EntitySetName"] == "CustomersV3" and schema["LabelId"]
    assert [p["Name"] for p in schema["Properties"] if p["IsKey"]] == ["dataAreaId", "CustomerAccount"]
    for prop in schema["Properties"]:
        assert {"Name", "TypeName", "DataType", "IsKey", "IsMandatory", "AllowEdit", "AllowEditOnCreate"} <= set(prop)
    for key in ("NavigationProperties", "PropertyGroups", "Actions"):
        assert isinstance(schema[key], list)


def test_entity_set_name_lookup_then_fallback_finds_the_schema(fo: httpx.Client) -> None:
    """Before each CRUD call the client asks ``PublicEntities('<entity set name>')`` (F&O keys it by entity name
    and answers 404, then the client searches DataEntities by collection name); either way it gets a schema with
    the keys it builds the record URL from."""
    response = _call(fo, "GET", "/Metadata/PublicEntities('CustomerGroups')")
    if response.status_code == 404:
        assert response.json()["error"]["message"]
    else:
        schema = _ok(response)
        assert [p["Name"] for p in schema["Properties"] if p["IsKey"]] == ["dataAreaId", "CustomerGroupId"]


def test_enumeration_search_and_members_with_labels(fo: httpx.Client) -> None:
    """``get_public_enumerations(top=3)``, ``search_public_enumerations('Sales')`` (``$select=Name,LabelId``) and
    ``get_public_enumeration_info('SalesStatus')``: Members carry Name, Value, LabelId, ConfigurationEnabled, and
    each member's label resolves through ``Labels(Id=...,Language='en-US')``."""
    assert len(_ok(_call(fo, "GET", "/Metadata/PublicEnumerations?%24top=3"))["value"]) == 3
    found = _ok(
        _call(
            fo, "GET", "/Metadata/PublicEnumerations?%24select=Name,LabelId&%24filter=contains(tolower(Name),+'sales')"
        )
    )["value"]
    assert "SalesStatus" in {item["Name"] for item in found}
    status = _ok(_call(fo, "GET", "/Metadata/PublicEnumerations('SalesStatus')"))
    members = status["Members"]
    assert [(m["Name"], m["Value"]) for m in members] == [
        ("None", 0),
        ("Backorder", 1),
        ("Delivered", 2),
        ("Invoiced", 3),
        ("Canceled", 4),
    ]
    backorder = members[1]
    assert {"Name", "Value", "LabelId", "ConfigurationEnabled"} <= set(backorder)
    label = _ok(_call(fo, "GET", f"/Metadata/Labels(Id='{backorder['LabelId']}',Language='en-US')"))
    assert label["Value"] == "Open order"


def test_labels_resolve_and_unknown_ids_resolve_to_themselves(fo: httpx.Client) -> None:
    """``get_label_text``/``get_labels_batch`` read ``Value``; a label F&O does not know answers its own id."""
    assert _ok(_call(fo, "GET", "/Metadata/Labels(Id='@SCM:CustomerGroup',Language='en-US')"))["Value"] == (
        "Customer group"
    )
    assert _ok(_call(fo, "GET", "/Metadata/Labels(Id='@SYS13342',Language='en-US')"))["Value"] == "@SYS13342"


def test_metadata_sync_reads_every_collection_whole(fo: httpx.Client) -> None:
    """``download_metadata`` (sync_manager_v2) reads DataEntities, PublicEntities and PublicEnumerations without
    options and parses every item; the public entities include their properties."""
    entities = _ok(_call(fo, "GET", "/Metadata/DataEntities"))["value"]
    public = _ok(_call(fo, "GET", "/Metadata/PublicEntities"))["value"]
    enums = _ok(_call(fo, "GET", "/Metadata/PublicEnumerations"))["value"]
    assert len(entities) >= len(public) > 10 and enums
    assert all(item["Properties"] and item["EntitySetName"] for item in public)
    assert all(item["Members"] for item in enums)


# ---- data (crud.py, query.py) ------------------------------------------------------------------------------


def test_query_with_select_filter_top_and_count(fo: httpx.Client) -> None:
    """``get_entities('CustomersV3', QueryOptions(select, filter, top=3, count=True))``: the client reads
    ``value`` and ``@odata.count``; rows carry exactly the selected fields and their etag."""
    body = _ok(
        _call(
            fo,
            "GET",
            "/data/CustomersV3?%24select=CustomerAccount,Name&%24filter=CustomerGroupId%20eq%20'30'&%24top=3"
            "&%24count=true",
        )
    )
    assert body["@odata.count"] >= len(body["value"]) > 0
    assert all(set(row) == {"@odata.etag", "CustomerAccount", "Name"} for row in body["value"])


def test_paging_with_orderby_and_skip(fo: httpx.Client) -> None:
    """``QueryOptions(orderby=['CustomerAccount desc'], skip=2, top=2)``: F&O pages with ``$skip``."""
    first = _ok(_call(fo, "GET", "/data/CustomersV3?%24select=CustomerAccount&%24orderby=CustomerAccount%20desc"))
    page = _ok(
        _call(
            fo,
            "GET",
            "/data/CustomersV3?%24select=CustomerAccount&%24orderby=CustomerAccount%20desc&%24top=2&%24skip=2",
        )
    )
    accounts = [row["CustomerAccount"] for row in first["value"]]
    assert [row["CustomerAccount"] for row in page["value"]] == accounts[2:4]


def test_record_read_by_key_is_cross_company_and_selects(fo: httpx.Client) -> None:
    """``get_entity`` builds ``Set(dataAreaId='usmf',Key='...')`` and adds ``cross-company=true`` because the key
    holds dataAreaId; with ``QueryOptions(select=['Name'])`` only Name (and the etag) comes back."""
    row = _ok(_call(fo, "GET", "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')?cross-company=true"))
    assert row["CustomerAccount"] == "US-001" and row["dataAreaId"] == "usmf"
    named = _ok(
        _call(
            fo,
            "GET",
            "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')?cross-company=true&%24select=Name",
        )
    )
    assert set(named) == {"@odata.context", "@odata.etag", "Name"}


def test_create_update_read_delete_round_trip(fo: httpx.Client, scm_app: Flask) -> None:
    """``create_entity`` POSTs the JSON record (without dataAreaId: the default company) and returns the 201
    body; ``update_entity`` PATCHes with ``cross-company=true`` and accepts 204; ``delete_entity`` accepts 204;
    afterwards the key reads 404."""
    created = _ok(_call(fo, "POST", "/data/CustomerGroups", {"CustomerGroupId": "D3", "Description": "New"}), 201)
    assert created["CustomerGroupId"] == "D3" and created["dataAreaId"] == "usmf" and created["@odata.etag"]
    url = "/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='D3')?cross-company=true"
    assert _ok(_call(fo, "PATCH", url, {"Description": "Changed"}), 200, 204) is None
    assert _ok(_call(fo, "GET", url))["Description"] == "Changed"
    assert _ok(_call(fo, "DELETE", url), 200, 204) is None
    missing = _call(fo, "GET", url)
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    refused = [e for e in runtime_of(scm_app).journal.entries(None, None, None) if e.get("status", 200) >= 400]
    assert [(e["method"], e["status"]) for e in refused] == [("GET", 404)]


def test_bound_action_call_on_an_entity_set(fo: httpx.Client) -> None:
    """``call_action('GetApplicationVersion', entity_name='DataManagementEntities')`` POSTs ``{}`` to
    ``/data/<set>/Microsoft.Dynamics.DataEntities.<action>`` and reads a JSON answer (``value``)."""
    body = _ok(
        _call(fo, "POST", "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion", {})
    )
    assert body["value"].startswith("10.0.")


def test_an_unknown_entity_and_a_bad_filter_answer_the_fo_error_shape(fo: httpx.Client) -> None:
    """The client raises with the response text on any other status; the text is F&O's ``{"error": {...}}``."""
    for url in ("/data/NoSuchEntities", "/data/CustomersV3?%24filter=NoSuchField%20eq%201"):
        response = _call(fo, "GET", url)
        assert 400 <= response.status_code < 500
        error = response.json()["error"]
        assert error["code"] is not None and error["message"]
