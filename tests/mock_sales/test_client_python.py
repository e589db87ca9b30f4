"""Microsoft's Python Dataverse client (``powerplatform-dataverse-client``) against mock Sales, unmodified.

Mock Sales runs with TLS on a loopback port (the client refuses ``http://``); the client gets the server URL,
a stub credential (any bearer token is accepted) and trusts the sandbox CA through ``REQUESTS_CA_BUNDLE``.
Each test drives one thing integration engineers do and checks both the client's result and, through the
request journal, what the client sent on the wire.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from flask import Flask
from PowerPlatform.Dataverse import col
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem

from sandbox.runtime import Runtime

pytestmark = pytest.mark.live

ROOT = "/api/data/v9.2"


class AnyToken:
    """A stand-in for an azure-identity credential: mock Sales accepts any bearer token."""

    def __init__(self) -> None:
        self.scopes: list[str] = []
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        with self._lock:
            self.scopes.extend(scopes)
        return AccessToken("any-token-works", int(time.time()) + 3600)


class Sandbox:
    """The running mock Sales: its HTTPS URL, CA file and runtime (for the request journal)."""

    def __init__(self, url: str, ca_file: Path, app: Flask) -> None:
        self.url = url
        self.ca_file = ca_file
        self.runtime: Runtime = app.extensions["sandbox"]

    def wire(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Journal entries since the test started, oldest first, optionally one method / a path regex."""
        return list(reversed(self.runtime.journal.entries(None, method, path)))

    def row(self, entity: str, **where: Any) -> dict[str, Any] | None:
        """One row read straight from the store (not through the client under test), None if absent."""
        with self.runtime.db.transaction():
            rows = self.runtime.store.find(entity, where, limit=1)
        return rows[0] if rows else None

    def stored(self, entity: str, **where: Any) -> dict[str, Any]:
        """The row matching ``where``, which must exist."""
        row = self.row(entity, **where)
        assert row is not None, f"no {entity} with {where}"
        return row


@pytest.fixture(scope="module")
def sandbox(https_sales: tuple[str, Path, Flask]) -> Sandbox:
    """Mock Sales (seed 1, in memory) served over HTTPS on a free loopback port for this module."""
    return Sandbox(*https_sales)


@pytest.fixture
def credential() -> AnyToken:
    return AnyToken()


@pytest.fixture
def client(sandbox: Sandbox, credential: AnyToken, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataverseClient]:
    """A DataverseClient on the sandbox URL that trusts the sandbox CA; the journal starts empty."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_file))
    sandbox.runtime.journal.clear()
    with DataverseClient(sandbox.url, credential) as dataverse:
        yield dataverse


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def company_id(sandbox: Sandbox, code: str = "usmf") -> str:
    company = sandbox.row("cdm_company", cdm_companycode=code)
    assert company is not None
    return str(company["cdm_companyid"])


# ---- connection --------------------------------------------------------------------------------------------


def test_client_refuses_plain_http_so_the_sandbox_serves_https(sandbox: Sandbox, credential: AnyToken) -> None:
    """The client rejects an http:// base URL before any request; the sandbox URL is https://."""
    with pytest.raises(ValueError, match="HTTPS"):
        DataverseClient(sandbox.url.replace("https://", "http://"), credential)
    assert sandbox.url.startswith("https://127.0.0.1:")


def test_any_bearer_token_is_accepted_and_the_scope_is_the_server_url(
    client: DataverseClient, sandbox: Sandbox, credential: AnyToken
) -> None:
    """The client asks the credential for ``<url>/.default`` and mock Sales takes whatever token it gets."""
    client.tables.get("account")
    assert credential.scopes and set(credential.scopes) == {f"{sandbox.url}/.default"}


# ---- create ------------------------------------------------------------------------------------------------


def test_create_one_record_reads_table_metadata_then_takes_the_id_from_odata_entityid(
    client: DataverseClient, sandbox: Sandbox
) -> None:
    """records.create(table, dict) resolves the entity set through EntityDefinitions, POSTs and gets 204."""
    name = unique("Py create")
    account_id = client.records.create("account", {"name": name, "telephone1": "555-0100"})
    stored = sandbox.row("account", accountid=account_id)
    assert stored is not None and stored["name"] == name and stored["telephone1"] == "555-0100"
    calls = [(e["method"], e["path"], e["status"]) for e in sandbox.wire()]
    assert calls[0] == ("GET", f"{ROOT}/EntityDefinitions", 200)
    assert ("POST", f"{ROOT}/accounts", 204) in calls
    metadata_query = urllib.parse.parse_qs(sandbox.wire("GET", "EntityDefinitions$")[0]["query"])
    assert metadata_query["$filter"] == ["LogicalName eq 'account'"]
    assert metadata_query["$select"] == ["LogicalName,EntitySetName,PrimaryIdAttribute"]


def test_create_many_records_uses_the_createmultiple_action(client: DataverseClient, sandbox: Sandbox) -> None:
    """records.create(table, list) POSTs accounts/Microsoft.Dynamics.CRM.CreateMultiple and returns the Ids."""
    names = [unique("Py bulk") for _ in range(3)]
    ids = client.records.create("account", [{"name": name} for name in names])
    assert len(ids) == 3 and len(set(ids)) == 3
    assert [sandbox.stored("account", accountid=i)["name"] for i in ids] == names
    (call,) = sandbox.wire("POST", "CreateMultiple")
    assert call["path"] == f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple" and call["status"] == 200
    assert '"@odata.type": "Microsoft.Dynamics.CRM.account"' in call["request_body"]


def test_picklist_labels_are_turned_into_option_values_from_the_attribute_metadata(
    client: DataverseClient, sandbox: Sandbox
) -> None:
    """A choice column given as a label is resolved by the client from PicklistAttributeMetadata/OptionSet."""
    account_id = client.records.create("account", {"name": unique("Py picklist"), "customertypecode": "Prospect"})
    assert sandbox.stored("account", accountid=account_id)["customertypecode"] == 8
    (metadata,) = sandbox.wire("GET", "PicklistAttributeMetadata")
    assert metadata["path"] == (
        f"{ROOT}/EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    )
    assert metadata["status"] == 200
    (create,) = sandbox.wire("POST", "accounts$")
    assert '"customertypecode": 8' in create["request_body"]


# ---- read ----------------------------------------------------------------------------------------------------


def test_retrieve_by_id_with_select_returns_the_selected_columns_and_the_key(
    client: DataverseClient, sandbox: Sandbox
) -> None:
    """records.retrieve(table, id, select=...) GETs accounts(<id>)?$select=...; a missing id gives None."""
    name = unique("Py retrieve")
    account_id = client.records.create("account", {"name": name, "customertypecode": 3})
    record = client.records.retrieve("account", account_id, select=["name", "customertypecode"])
    assert record is not None
    assert record.id == account_id and record["name"] == name and record["customertypecode"] == 3
    assert set(record.data) == {"name", "customertypecode", "accountid"}
    assert client.records.retrieve("account", str(uuid.uuid4())) is None
    formatted = client.records.retrieve(
        "account",
        account_id,
        select=["customertypecode"],
        include_annotations="OData.Community.Display.V1.FormattedValue",
    )
    assert formatted is not None
    assert formatted["customertypecode@OData.Community.Display.V1.FormattedValue"] == "Customer"


def test_list_with_filter_select_orderby_and_top(client: DataverseClient) -> None:
    """records.list sends $filter/$select/$orderby/$top and returns the matching rows in order."""
    result = client.records.list(
        "account",
        filter="startswith(accountnumber,'US-')",
        select=["accountnumber"],
        orderby=["accountnumber desc"],
        top=3,
    )
    numbers = [record["accountnumber"] for record in result]
    assert len(numbers) == 3 and numbers == sorted(numbers, reverse=True)
    assert all(number.startswith("US-") for number in numbers)


def test_paging_follows_the_next_link_until_the_last_page(client: DataverseClient, sandbox: Sandbox) -> None:
    """page_size=N sends Prefer: odata.maxpagesize=N and the client replays @odata.nextLink ($skiptoken)."""
    pages = list(
        client.records.list_pages(
            "account",
            filter="startswith(accountnumber,'US-')",
            select=["accountnumber"],
            orderby=["accountnumber"],
            page_size=3,
        )
    )
    sizes = [len(page) for page in pages]
    numbers = [record["accountnumber"] for page in pages for record in page]
    assert len(pages) > 1 and all(size == 3 for size in sizes[:-1]) and 1 <= sizes[-1] <= 3
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    follow_ups = [e for e in sandbox.wire("GET", "accounts$") if "skiptoken" in e["query"]]
    assert len(follow_ups) == len(pages) - 1


def test_query_builder_filters_with_in_and_expands_a_lookup(client: DataverseClient) -> None:
    """The fluent builder's ``in_`` becomes Microsoft.Dynamics.CRM.In; expand returns the related row."""
    result = (
        client.query.builder("account")
        .select("accountnumber", "statecode")
        .where(col("accountnumber").in_(["US-001", "US-002"]))
        .order_by("accountnumber")
        .execute()
    )
    assert [record["accountnumber"] for record in result] == ["US-001", "US-002"]
    contacts = client.records.list(
        "contact",
        select=["fullname"],
        filter="_parentcustomerid_value ne null",
        expand=["parentcustomerid_account($select=name)"],
        top=1,
    )
    related = contacts[0]["parentcustomerid_account"]
    assert isinstance(related, dict) and related["name"] and related["accountid"]


def test_fetchxml_query_pages_with_the_paging_cookie(client: DataverseClient, sandbox: Sandbox) -> None:
    """query.fetchxml(...).execute() sends ?fetchXml= and follows morerecords / fetchxmlpagingcookie."""
    xml = (
        "<fetch count='2'><entity name='account'><attribute name='accountnumber'/>"
        "<filter><condition attribute='accountnumber' operator='like' value='US-%'/></filter>"
        "<order attribute='accountnumber' descending='true'/></entity></fetch>"
    )
    result = client.query.fetchxml(xml).execute()
    numbers = [record["accountnumber"] for record in result]
    expected = [
        r["accountnumber"]
        for r in client.records.list(
            "account",
            filter="startswith(accountnumber,'US-')",
            select=["accountnumber"],
            orderby=["accountnumber desc"],
        )
    ]
    assert numbers == expected and len(numbers) > 2
    requests = sandbox.wire("GET", "accounts$")
    fetches = [e for e in requests if "fetchXml" in e["query"]]
    assert len(fetches) == (len(numbers) + 1) // 2
    assert "fetchxmlpagingcookie" in fetches[0]["response_body"]


def test_sql_queries_are_refused_with_501_instead_of_returning_every_row(client: DataverseClient) -> None:
    """The ?sql= endpoint is not emulated: the client gets a clear 501 rather than an unfiltered table."""
    with pytest.raises(HttpError) as caught:
        client.query.sql("SELECT name FROM account WHERE accountnumber = 'US-001'")
    assert caught.value.status_code == 501 and "sql" in str(caught.value).lower()


# ---- update, upsert, delete ----------------------------------------------------------------------------------


def test_update_one_and_many_records(client: DataverseClient, sandbox: Sandbox) -> None:
    """records.update PATCHes accounts(<id>) (If-Match: *); a list of ids goes through UpdateMultiple."""
    first, second = client.records.create("account", [{"name": unique("Py upd")}, {"name": unique("Py upd")}])
    client.records.update("account", first, {"telephone1": "555-0111"})
    assert sandbox.stored("account", accountid=first)["telephone1"] == "555-0111"
    client.records.update("account", [first, second], {"description": "broadcast"})
    client.records.update("account", [first, second], [{"telephone2": "1"}, {"telephone2": "2"}])
    rows = [sandbox.stored("account", accountid=i) for i in (first, second)]
    assert [(r["description"], r["telephone2"]) for r in rows] == [("broadcast", "1"), ("broadcast", "2")]
    assert [e["status"] for e in sandbox.wire("PATCH")] == [204]
    assert [e["status"] for e in sandbox.wire("POST", "UpdateMultiple")] == [204, 204]
    with pytest.raises(HttpError) as caught:
        client.records.update("account", str(uuid.uuid4()), {"name": "nobody"})
    assert caught.value.status_code == 404  # If-Match: * stops the PATCH from upserting


def test_upsert_by_alternate_key_creates_then_updates(client: DataverseClient, sandbox: Sandbox) -> None:
    """records.upsert with one item PATCHes products(productnumber='...'): 204 create, then 204 update."""
    number = f"PY-{uuid.uuid4().hex[:6]}"
    client.records.upsert(
        "product", [UpsertItem(alternate_key={"productnumber": number}, record={"name": "Python upsert"})]
    )
    created = sandbox.row("product", productnumber=number)
    assert created is not None and created["name"] == "Python upsert"
    client.records.upsert("product", [{"alternate_key": {"productnumber": number}, "record": {"name": "renamed"}}])
    updated = sandbox.row("product", productnumber=number)
    assert updated is not None and updated["productid"] == created["productid"] and updated["name"] == "renamed"
    assert [e["path"] for e in sandbox.wire("PATCH")] == [f"{ROOT}/products(productnumber='{number}')"] * 2


def test_upsert_by_composite_alternate_key_with_a_lookup_column(client: DataverseClient, sandbox: Sandbox) -> None:
    """The dual-write key of account is (accountnumber, _msdyn_company_value); both go into the URL."""
    number = f"PY-{uuid.uuid4().hex[:6]}"
    key = {"accountnumber": number, "_msdyn_company_value": company_id(sandbox)}
    client.records.upsert("account", [{"alternate_key": key, "record": {"name": "Composite"}}])
    client.records.upsert("account", [{"alternate_key": key, "record": {"telephone1": "555-0123"}}])
    row = sandbox.row("account", accountnumber=number)
    assert row is not None and (row["name"], row["telephone1"]) == ("Composite", "555-0123")
    assert row["_msdyn_company_value"] == key["_msdyn_company_value"]


def test_upsert_many_uses_the_upsertmultiple_action(client: DataverseClient, sandbox: Sandbox) -> None:
    """Several items go to products/Microsoft.Dynamics.CRM.UpsertMultiple with @odata.id alternate keys."""
    numbers = [f"PY-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    client.records.upsert(
        "product", [UpsertItem(alternate_key={"productnumber": numbers[0]}, record={"name": "first"})]
    )
    client.records.upsert(
        "product", [UpsertItem(alternate_key={"productnumber": n}, record={"name": f"bulk {n}"}) for n in numbers]
    )
    rows = [sandbox.stored("product", productnumber=n) for n in numbers]
    assert [r["name"] for r in rows] == [f"bulk {n}" for n in numbers]
    (call,) = sandbox.wire("POST", "UpsertMultiple")
    assert call["status"] == 200 and f"products(productnumber='{numbers[0]}')" in call["request_body"]


def test_delete_one_record_and_many_through_bulkdelete(client: DataverseClient, sandbox: Sandbox) -> None:
    """records.delete(table, id) DELETEs; a list goes to the BulkDelete action, which answers a JobId."""
    single, *many = client.records.create("account", [{"name": unique("Py del")} for _ in range(4)])
    client.records.delete("account", single)
    assert client.records.retrieve("account", single) is None
    job_id = client.records.delete("account", many)
    assert isinstance(job_id, str) and uuid.UUID(job_id)
    assert all(sandbox.row("account", accountid=i) is None for i in many)
    (bulk,) = sandbox.wire("POST", "BulkDelete")
    assert bulk["path"] == f"{ROOT}/BulkDelete" and bulk["status"] == 200
    with pytest.raises(HttpError) as caught:
        client.records.delete("account", single)
    assert caught.value.status_code == 404


# ---- batch -----------------------------------------------------------------------------------------------------


def test_batch_with_a_changeset_and_content_id_references(client: DataverseClient, sandbox: Sandbox) -> None:
    """client.batch: a change set creates and updates through $1, then a GET in the same $batch sees it."""
    name = unique("Py batch")
    batch = client.batch.new()
    with batch.changeset() as changeset:
        reference = changeset.records.create("account", {"name": name})
        changeset.records.update("account", reference, {"telephone1": "555-0199"})
    batch.records.list("account", filter=f"name eq '{name}'", select=["name", "telephone1"])
    result = batch.execute()
    statuses = [item.status_code for item in result.responses]
    assert statuses == [204, 204, 200] and not result.has_errors
    created_id = result.responses[0].entity_id
    assert created_id and sandbox.stored("account", accountid=created_id)["telephone1"] == "555-0199"
    listed = result.responses[2].data
    assert listed is not None and [row["telephone1"] for row in listed["value"]] == ["555-0199"]
    (call,) = sandbox.wire("POST", r"\$batch")
    assert call["status"] == 200


def test_batch_reports_a_failing_part_with_the_service_error(client: DataverseClient) -> None:
    """A bad part answers with its own 400 and error message; continue_on_error runs the rest (outer 200)."""
    batch = client.batch.new()
    batch.records.create("account", {"nosuchcolumn": 1})
    batch.records.create("account", {"name": unique("Py after error")})
    result = batch.execute(continue_on_error=True)
    assert [item.status_code for item in result.responses] == [400, 204]
    assert result.has_errors and "nosuchcolumn" in (result.responses[0].error_message or "")


# ---- metadata ----------------------------------------------------------------------------------------------------


def test_table_metadata_get_and_list(client: DataverseClient) -> None:
    """tables.get / tables.list read EntityDefinitions: logical and set names, primary id and name."""
    info = client.tables.get("salesorder")
    assert info is not None
    assert (info.logical_name, info.entity_set_name, info.primary_id_attribute, info.primary_name_attribute) == (
        "salesorder",
        "salesorders",
        "salesorderid",
        "name",
    )
    assert client.tables.get("nosuchtable") is None
    tables = {t["LogicalName"]: t["EntitySetName"] for t in client.tables.list(select=["LogicalName", "EntitySetName"])}
    assert tables["account"] == "accounts" and tables["opportunity"] == "opportunities" and len(tables) > 20


def test_column_metadata_typed_columns_and_alternate_keys(client: DataverseClient) -> None:
    """list_columns/get_column read Attributes; typed=True uses RetrieveMetadataChanges; keys come from Keys."""
    columns = {c["LogicalName"]: c["AttributeType"] for c in client.tables.list_columns("account")}
    assert columns["name"] == "String" and columns["customertypecode"] == "Picklist"
    assert columns["primarycontactid"] == "Lookup" and columns["revenue"] == "Money"
    column = client.tables.get_column("account", "accountnumber")
    assert column is not None and column["LogicalName"] == "accountnumber"
    assert client.tables.get_column("account", "nosuchcolumn") is None
    typed = client.tables.list_columns("account", typed=True)
    by_name = {c["LogicalName"]: c for c in typed}
    assert by_name["name"]["MaxLength"] and by_name["accountid"]["AttributeType"] == "Uniqueidentifier"
    keys = {tuple(k.key_attributes) for k in client.tables.get_alternate_keys("product")}
    assert ("productnumber",) in keys and ("msdyn_productnumber", "msdyn_company") in keys


def test_relationship_metadata_names_the_navigation_properties(client: DataverseClient) -> None:
    """odata_expands / odata_bind read ManyToOneRelationships and give the nav names mock Sales accepts."""
    expands = {(e["nav_property"], e["target_table"]) for e in client.query.odata_expands("contact")}
    assert ("parentcustomerid_account", "account") in expands
    assert ("parentcustomerid_contact", "contact") in expands
    price_list_id = client.records.list("pricelevel", select=["name"], top=1)[0]["pricelevelid"]
    with pytest.warns(DeprecationWarning):
        bind = client.query.odata_bind("opportunity", "pricelevel", price_list_id)
    assert bind == {"pricelevelid@odata.bind": f"/pricelevels({price_list_id})"}
    opportunity_id = client.records.create("opportunity", {"name": unique("Py bind"), **bind})
    opportunity = client.records.retrieve("opportunity", opportunity_id, select=["_pricelevelid_value"])
    assert opportunity is not None and opportunity["_pricelevelid_value"] == price_list_id
    relationships = client.tables.list_table_relationships("account")
    assert any(
        r["SchemaName"] == "account_primary_contact" and r["ReferencingEntity"] == "account" for r in relationships
    )
