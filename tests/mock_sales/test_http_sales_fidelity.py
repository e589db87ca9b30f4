"""Documented Dataverse wire behaviours that real clients rely on (``docs/reference/dataverse-web-api.md``):
counts and their annotations, ``RetrieveTotalRecordCount``, counts and references of related collections,
collection-valued ``@odata.bind``, which annotations and preferences are answered, column lengths, composite
addresses."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import assert_dataverse_error

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
FORMATTED = "OData.Community.Display.V1.FormattedValue"
TOTAL = "@Microsoft.Dynamics.CRM.totalrecordcount"
EXCEEDED = "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"


def prefer(value: str) -> dict[str, str]:
    return {**JSON, "Prefer": value}


def values(client: Any, query: str) -> list[dict[str, Any]]:
    response = client.get(f"{ROOT}/{query}", headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["value"])


def contact_ids(client: Any, count: int) -> list[str]:
    return [row["contactid"] for row in values(client, f"contacts?$select=contactid&$top={count}")]


# ---- counts ---------------------------------------------------------------------------------------------


def test_count_true_with_the_total_annotations_gives_the_count_and_whether_it_stopped_at_5000(sales: Any) -> None:
    """PA ``webapi/query/count-rows``: with ``$count=true`` and the annotations asked for, ``totalrecordcount`` is
    the count (up to 5,000) and ``totalrecordcountlimitexceeded`` false below it; the preference is echoed."""
    total = len(values(sales, "accounts?$select=accountid"))
    response = sales.get(
        f"{ROOT}/accounts?$select=name&$count=true",
        headers=prefer('odata.include-annotations="Microsoft.Dynamics.CRM.*",odata.maxpagesize=2'),
    )
    body = response.get_json()
    assert (body["@odata.count"], body[TOTAL], body[EXCEEDED]) == (total, total, False)
    assert list(body)[:4] == ["@odata.context", "@odata.count", TOTAL, EXCEEDED]
    applied = response.headers["Preference-Applied"]
    assert 'odata.include-annotations="Microsoft.Dynamics.CRM.*"' in applied and "odata.maxpagesize=2" in applied


def test_total_record_count_without_count_true_is_minus_one(sales: Any) -> None:
    """ "If you don't include the $count=true query option, the total totalrecordcount value is -1"."""
    body = sales.get(
        f"{ROOT}/accounts?$select=name",
        headers=prefer('odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount"'),
    ).get_json()
    assert body[TOTAL] == -1 and "@odata.count" not in body and EXCEEDED not in body


def test_total_record_count_stops_at_5000_and_says_the_limit_was_exceeded(sales_app: Any) -> None:
    """Beyond 5,000 matching rows: ``@odata.count`` and ``totalrecordcount`` 5000, ``limitexceeded`` true."""
    sales = sales_app.test_client()
    for chunk in range(6):  # CreateMultiple takes 1,000 Targets at most
        response = sales.post(
            f"{ROOT}/uoms/Microsoft.Dynamics.CRM.CreateMultiple",
            headers=JSON,
            json={
                "Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.uom", "name": f"u{chunk}-{i}"} for i in range(1000)]
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    body = sales.get(
        f"{ROOT}/uoms?$select=name&$count=true", headers=prefer('odata.include-annotations="*",odata.maxpagesize=1')
    ).get_json()
    assert (body["@odata.count"], body[TOTAL], body[EXCEEDED]) == (5000, 5000, True)
    counted = sales.get(f"{ROOT}/RetrieveTotalRecordCount(EntityNames=['uom'])", headers=JSON).get_json()
    assert counted["EntityRecordCountCollection"]["Values"][0] > 5000


def test_retrieve_total_record_count_counts_each_table_named(sales: Any) -> None:
    """``RetrieveTotalRecordCount(EntityNames=@p1)`` answers ``EntityRecordCountCollection`` with the names as
    ``Keys`` and the counts as ``Values``, inline or through a parameter alias."""
    expected = [len(values(sales, "accounts?$select=accountid")), len(values(sales, "contacts?$select=contactid"))]
    for url in (
        f'{ROOT}/RetrieveTotalRecordCount(EntityNames=@p1)?@p1=["account","contact"]',
        f"{ROOT}/RetrieveTotalRecordCount(EntityNames=['account','contact'])",
    ):
        body = sales.get(url, headers=JSON).get_json()
        assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse")
        assert body["EntityRecordCountCollection"] == {
            "Count": 2,
            "IsReadOnly": False,
            "Keys": ["account", "contact"],
            "Values": expected,
        }


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("RetrieveTotalRecordCount(EntityNames=['nosuchtable'])", 400, "0x80041102"),
        ("RetrieveTotalRecordCount()", 400, "0x80060888"),
        ("RetrieveTotalRecordCount(EntityNames='account')", 400, "0x80060888"),
        ("RetrieveTotalRecordCount(EntityNames=@p9)", 400, "0x80060888"),
    ],
)
def test_retrieve_total_record_count_with_a_bad_parameter_is_a_400(
    sales: Any, path: str, status: int, code: str
) -> None:
    """An unknown table is Dataverse's metadata error; a missing or malformed parameter a query error."""
    assert_dataverse_error(sales.get(f"{ROOT}/{path}", headers=JSON), status, code=code)


def test_retrieve_total_record_count_is_a_function(sales: Any) -> None:
    """It is a function: a POST is refused."""
    response = sales.post(f"{ROOT}/RetrieveTotalRecordCount(EntityNames=['account'])", headers=JSON, json={})
    assert response.status_code in (404, 405)


def test_count_of_a_collection_valued_navigation_is_a_bare_number(sales: Any) -> None:
    """``accounts(<id>)/contact_customer_accounts/$count`` is the number of related rows as text, with its
    ``$filter`` applied, like ``<set>/$count``."""
    account = values(sales, "accounts?$select=accountid&$filter=accountnumber eq 'US-001'")[0]["accountid"]
    related = values(sales, f"accounts({account})/contact_customer_accounts?$select=contactid")
    response = sales.get(f"{ROOT}/accounts({account})/contact_customer_accounts/$count", headers=JSON)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert int(response.get_data(as_text=True)) == len(related)
    none = sales.get(
        f"{ROOT}/accounts({account})/contact_customer_accounts/$count?$filter=fullname eq 'nobody at all'",
        headers=JSON,
    )
    assert none.get_data(as_text=True) == "0"
    refused = sales.delete(f"{ROOT}/accounts({account})/contact_customer_accounts/$count", headers=JSON)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET"


# ---- associations -----------------------------------------------------------------------------------------


def test_collection_valued_bind_on_create_associates_existing_rows(sales: Any) -> None:
    """PA ``webapi/associate-disassociate-entities-using-web-api``: ``"contact_customer_accounts@odata.bind":
    ["/contacts(<id>)", ...]`` on create points each contact at the new account."""
    chosen = contact_ids(sales, 2)
    response = sales.post(
        f"{ROOT}/accounts",
        headers=JSON,
        json={"name": "Bound on create", "contact_customer_accounts@odata.bind": [f"/contacts({c})" for c in chosen]},
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    account = response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    related = values(sales, f"accounts({account})/contact_customer_accounts?$select=contactid")
    assert sorted(row["contactid"] for row in related) == sorted(chosen)


@pytest.mark.parametrize(
    ("bind", "code"),
    [
        (["/contacts(00000000-0000-0000-0000-000000000001)"], "0x80040217"),
        (["/accounts(00000000-0000-0000-0000-000000000001)"], None),
        ("/contacts(00000000-0000-0000-0000-000000000001)", "0x80048d19"),
        ([42], "0x80048d19"),
    ],
)
def test_a_bad_collection_valued_bind_creates_nothing(sales: Any, bind: Any, code: str | None) -> None:
    """A reference to no row, of another table, or not an array of URLs: an error, and no account is left."""
    before = len(values(sales, "accounts?$select=accountid"))
    response = sales.post(
        f"{ROOT}/accounts", headers=JSON, json={"name": "Not bound", "contact_customer_accounts@odata.bind": bind}
    )
    assert response.status_code in (400, 404)
    assert_dataverse_error(response, response.status_code, code=code)
    assert len(values(sales, "accounts?$select=accountid")) == before


def test_collection_valued_bind_on_update_is_refused(sales: Any) -> None:
    """On update, related rows are associated with ``POST .../$ref``; a collection bind in a PATCH is a 400."""
    account = values(sales, "accounts?$select=accountid&$top=1")[0]["accountid"]
    response = sales.patch(
        f"{ROOT}/accounts({account})",
        headers=JSON,
        json={"contact_customer_accounts@odata.bind": [f"/contacts({contact_ids(sales, 1)[0]})"]},
    )
    assert_dataverse_error(response, 400, code="0x80048d19", contains="on create only")


def test_delete_ref_with_id_disassociates_the_named_row(sales: Any) -> None:
    """``DELETE accounts(<id>)/contact_customer_accounts/$ref?$id=<contact URL>`` removes that contact from the
    collection (OData 4.0 "Remove a Reference to an Entity"), as ``.../contact_customer_accounts(<id>)/$ref``."""
    first, second = contact_ids(sales, 2)
    created = sales.post(
        f"{ROOT}/accounts",
        headers=JSON,
        json={"name": "Refs", "contact_customer_accounts@odata.bind": [f"/contacts({first})", f"/contacts({second})"]},
    )
    account = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    url = f"{ROOT}/accounts({account})/contact_customer_accounts"
    response = sales.delete(f"{url}/$ref", headers=JSON, query_string={"$id": f"{ROOT}/contacts({first})"})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert [row["contactid"] for row in values(sales, f"accounts({account})/contact_customer_accounts")] == [second]
    assert sales.delete(f"{url}({second})/$ref", headers=JSON).status_code == 204
    assert values(sales, f"accounts({account})/contact_customer_accounts") == []
    # a contact that is not related any more, no $id, an $id of another table
    assert_dataverse_error(
        sales.delete(f"{url}/$ref", headers=JSON, query_string={"$id": f"contacts({first})"}), 404, code="0x80040217"
    )
    assert_dataverse_error(sales.delete(f"{url}/$ref", headers=JSON), 400, code="0x80048d19")
    assert_dataverse_error(
        sales.delete(f"{url}/$ref", headers=JSON, query_string={"$id": f"accounts({account})"}), 400, code="0x80048d19"
    )


# ---- annotations and preferences ----------------------------------------------------------------------------


def test_only_the_requested_annotations_are_answered(sales: Any) -> None:
    """Asking for ``FormattedValue`` gives formatted values and no lookup annotations; asking for
    ``Microsoft.Dynamics.CRM.*`` gives the lookup annotations and no formatted values; ``*`` gives both."""
    query = f"{ROOT}/accounts?$select=name,statuscode,_primarycontactid_value&$filter=_primarycontactid_value ne null"

    def first(value: str) -> dict[str, Any]:
        response = sales.get(query, headers=prefer(f'odata.include-annotations="{value}"'))
        assert response.headers["Preference-Applied"] == f'odata.include-annotations="{value}"'
        return dict(response.get_json()["value"][0])

    formatted = first(FORMATTED)
    assert f"statuscode@{FORMATTED}" in formatted and f"_primarycontactid_value@{FORMATTED}" in formatted
    assert not any("Microsoft.Dynamics.CRM" in name for name in formatted)
    crm = first("Microsoft.Dynamics.CRM.*")
    assert "_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname" in crm
    assert "_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty" in crm
    assert not any(FORMATTED in name for name in crm)
    everything = first("*")
    assert set(formatted) | set(crm) <= set(everything)
    plain = sales.get(query, headers=JSON)
    assert "Preference-Applied" not in plain.headers
    assert not any("@" in name[1:] for name in plain.get_json()["value"][0] if not name.startswith("@odata"))


def test_return_representation_is_echoed_in_preference_applied(sales: Any) -> None:
    """``Prefer: return=representation`` on create is honoured and echoed."""
    response = sales.post(f"{ROOT}/accounts", headers=prefer("return=representation"), json={"name": "Echo"})
    assert response.status_code == 201 and response.headers["Preference-Applied"] == "return=representation"


# ---- column metadata ------------------------------------------------------------------------------------------

#: MaxLength of columns as Microsoft's table reference pages give them (ENT/PA ``reference/entities/<table>``)
REFERENCE_LENGTHS = [
    ("account", "name", 160),
    ("account", "accountnumber", 20),
    ("account", "telephone1", 50),
    ("account", "websiteurl", 200),
    ("account", "address1_line1", 250),
    ("account", "address1_city", 80),
    ("account", "address1_country", 80),
    ("account", "address1_county", 50),
    ("account", "address1_postalcode", 20),
    ("account", "address1_fax", 50),
    ("contact", "fullname", 160),
    ("contact", "firstname", 50),
    ("contact", "jobtitle", 100),
    ("lead", "subject", 300),
    ("lead", "companyname", 100),
    ("opportunity", "name", 300),
    ("quote", "name", 300),
    ("salesorder", "name", 300),
    ("invoice", "name", 300),
    ("quote", "shipto_city", 80),
    ("product", "name", 100),
    ("pricelevel", "name", 100),
    ("uom", "name", 100),
    ("transactioncurrency", "isocurrencycode", 5),
    ("contact", "mobilephone", 50),
    ("lead", "mobilephone", 20),
    ("quote", "quotenumber", 100),
    ("quote", "billto_contactname", 150),
    ("quote", "emailaddress", 100),
    ("salesorder", "ordernumber", 100),
    ("invoice", "invoicenumber", 100),
    ("product", "productnumber", 100),
    ("quotedetail", "productdescription", 500),
    ("salesorderdetail", "productdescription", 500),
    ("invoicedetail", "productdescription", 850),
]


@pytest.mark.parametrize(("table", "column", "length"), REFERENCE_LENGTHS)
def test_entity_definitions_report_the_reference_max_length(sales: Any, table: str, column: str, length: int) -> None:
    """``EntityDefinitions`` reports the MaxLength of the table reference pages (account ``name`` 160)."""
    response = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')?$select=MaxLength",
        headers=JSON,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["MaxLength"] == length


def test_text_over_max_length_is_refused_with_the_real_error_and_at_max_length_accepted(sales: Any) -> None:
    """A value longer than MaxLength is 400 ``0x80044331`` "A validation error occurred.  The length of the 'name'
    attribute of the 'account' entity exceeded the maximum allowed length of '160'." (on create and update,
    nothing written); exactly 160 characters are accepted."""
    before = len(values(sales, "accounts?$select=accountid"))
    response = sales.post(f"{ROOT}/accounts", headers=JSON, json={"name": "x" * 161})
    error = assert_dataverse_error(response, 400, code="0x80044331")
    assert error["message"] == (
        "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded the "
        "maximum allowed length of '160'."
    )
    assert len(values(sales, "accounts?$select=accountid")) == before
    created = sales.post(f"{ROOT}/accounts", headers=JSON, json={"name": "y" * 160})
    assert created.status_code == 204
    url = created.headers["OData-EntityId"]
    refused = sales.patch(url, headers=JSON, json={"address1_postalcode": "9" * 21})
    assert_dataverse_error(refused, 400, code="0x80044331", contains="'address1_postalcode'")
    too_long_first_name = sales.post(f"{ROOT}/contacts", headers=JSON, json={"firstname": "z" * 51, "lastname": "L"})
    assert_dataverse_error(too_long_first_name, 400, code="0x80044331", contains="'contact' entity")


def test_application_required_is_reported_but_not_enforced_by_the_web_api(sales: Any) -> None:
    """Account ``name`` is ApplicationRequired (Business Required): EntityDefinitions says so, and, as in
    Dataverse, only forms enforce it: the Web API creates an account without a name."""
    response = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')?$select=RequiredLevel",
        headers=JSON,
    )
    assert response.get_json()["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert sales.post(f"{ROOT}/accounts", headers=JSON, json={"telephone1": "555"}).status_code == 204


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("quote", "quotenumber"),
        ("salesorder", "ordernumber"),
        ("invoice", "invoicenumber"),
        ("product", "productnumber"),
    ],
)
def test_document_and_product_numbers_are_system_required(sales: Any, table: str, column: str) -> None:
    """The reference pages mark the document numbers and the product number SystemRequired."""
    response = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')?$select=RequiredLevel",
        headers=JSON,
    )
    assert response.get_json()["RequiredLevel"]["Value"] == "SystemRequired"


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("quote", "shipto_county"),
        ("quote", "billto_county"),
        ("salesorder", "shipto_county"),
        ("invoice", "billto_county"),
        ("quotedetail", "shipto_county"),
        ("quotedetail", "shipto_composite"),
        ("salesorderdetail", "shipto_composite"),
    ],
)
def test_columns_the_reference_pages_do_not_list_do_not_exist(sales: Any, table: str, column: str) -> None:
    """Documents' ship-to and bill-to addresses have no county, and document lines no composite ship-to address
    (the quote, order, invoice and line reference pages list none): EntityDefinitions has no such attribute."""
    response = sales.get(f"{ROOT}/EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')")
    assert response.status_code == 404


# ---- composite columns ---------------------------------------------------------------------------------------


def test_address_composite_is_computed_read_only_and_follows_its_parts(sales: Any) -> None:
    """``address1_composite`` is the whole address as Dataverse writes it for en-US (street lines, "city, state
    postal code", country; CRLF between lines, empty parts left out); a value sent for it is ignored; it is
    recomputed when a part changes."""
    response = sales.post(
        f"{ROOT}/accounts?$select=address1_composite",
        headers=prefer("return=representation"),
        json={
            "name": "Composite",
            "address1_line1": "1 Microsoft Way",
            "address1_city": "Redmond",
            "address1_stateorprovince": "WA",
            "address1_postalcode": "98052",
            "address1_country": "USA",
            "address1_composite": "ignored",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["address1_composite"] == "1 Microsoft Way\r\nRedmond, WA 98052\r\nUSA"
    url = response.headers["OData-EntityId"]
    assert (
        sales.patch(url, headers=JSON, json={"address1_stateorprovince": None, "address1_line2": "Bldg 7"}).status_code
        == 204
    )
    assert sales.get(f"{url}?$select=address1_composite", headers=JSON).get_json()["address1_composite"] == (
        "1 Microsoft Way\r\nBldg 7\r\nRedmond 98052\r\nUSA"
    )
    shipped = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='quote')/Attributes(LogicalName='shipto_composite')?$select=IsValidForCreate",
        headers=JSON,
    )
    assert shipped.get_json()["IsValidForCreate"] is False


# ---- $top with paging ------------------------------------------------------------------------------------------


def test_top_ends_paging_even_with_maxpagesize(sales: Any) -> None:
    """``$top`` with ``Prefer: odata.maxpagesize``: at most the smaller of the two rows and no nextLink, as a
    tenant answered (``$top=3`` with ``maxpagesize=2``: 2 rows, no nextLink); a client that always sends a page
    size (``dynamics-client``) gets ``$top`` rows (docs/reference/dataverse-web-api.md, "Paging")."""
    small_page = sales.get(f"{ROOT}/contacts?$select=contactid&$top=3", headers=prefer("odata.maxpagesize=2"))
    body = small_page.get_json()
    assert len(body["value"]) == 2 and "@odata.nextLink" not in body
    big_page = sales.get(f"{ROOT}/contacts?$select=contactid&$top=3", headers=prefer("odata.maxpagesize=5000"))
    body = big_page.get_json()
    assert len(body["value"]) == 3 and "@odata.nextLink" not in body
    paged = sales.get(f"{ROOT}/contacts?$select=contactid", headers=prefer("odata.maxpagesize=2")).get_json()
    assert len(paged["value"]) == 2 and "@odata.nextLink" in paged
