"""Mock SCM answers the documentation's own examples and creates rows with F&O's defaults.

Follows ``docs/reference/fno-odata.md`` section 4 (enum literals in ``$filter``: the docs' examples
``CustomersV3?$filter=PersonGender eq Microsoft.Dynamics.DataEntities.Gender'Unknown'`` and
``Currencies?$filter=ReferenceCurrencyForTriangulation eq Microsoft.Dynamics.DataEntities.NoYes'No'``), section 7
and 15 (a new order is an open order), section 8 (the error's ``innererror.type``) and
``docs/reference/fno-fields.md`` (the customer fields of the 2020 customer map).
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.odata.fno.codes import ODATA_EXCEPTION, WRITE_EXCEPTION
from sandbox.testing import assert_fno_error

NS = "Microsoft.Dynamics.DataEntities"


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        (f"CustomersV3?$filter=PersonGender eq {NS}.Gender'Unknown'", "PersonGender", "Unknown"),
        (
            f"Currencies?$filter=ReferenceCurrencyForTriangulation eq {NS}.NoYes'No'",
            "ReferenceCurrencyForTriangulation",
            "No",
        ),
    ],
)
def test_documented_enum_filters_answer_rows(scm: Any, path: str, field: str, value: str) -> None:
    """The documentation's enum-literal examples find rows, and every row found has the member asked for."""
    response = scm.get(f"/data/{path}")
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()["value"]
    assert rows and all(row[field] == value for row in rows)


def test_enum_literal_of_another_type_or_unknown_member_is_refused(scm: Any) -> None:
    """A literal of the wrong enum type, or a member the enum lacks, is OData's 400 naming the types."""
    wrong_type = scm.get(f"/data/Currencies?$filter=ReferenceCurrencyForTriangulation eq {NS}.Gender'Unknown'")
    error = assert_fno_error(wrong_type, 400, f"is not of type '{NS}.NoYes'")
    assert error["innererror"]["type"] == ODATA_EXCEPTION
    unknown = scm.get(f"/data/CustomersV3?$filter=PersonGender eq {NS}.Gender'Robot'")
    assert_fno_error(unknown, 400, f"not a valid enumeration type constant of '{NS}.Gender'")


def test_new_order_without_lines_is_an_open_order(scm: Any) -> None:
    """``SalesOrderStatus`` of a new header is Backorder, labelled "Open order", on the V2 and the CDS entity: the
    SalesStatus enum (AX ``gg850643``: None 0 without a label, Backorder 1 "Open order") and the application,
    where a newly created order is an open order (docs/reference/fno-fields.md, "Status of a new order")."""
    for collection in ("SalesOrderHeadersV2", "CDSSalesOrderHeaders"):
        created = scm.post(f"/data/{collection}", json={"OrderingCustomerAccountNumber": "US-001"})
        assert created.status_code == 201, created.get_json()
        body = created.get_json()
        assert (body["SalesOrderStatus"], body["SalesOrderProcessingStatus"]) == ("Backorder", "Active")
        read = scm.get(f"/data/{collection}(dataAreaId='usmf',SalesOrderNumber='{body['SalesOrderNumber']}')")
        assert read.get_json()["SalesOrderStatus"] == "Backorder"


def test_new_customer_defaults_delivery_and_invoice_address_from_its_address(scm: Any) -> None:
    """Given only the primary address, a new customer's delivery and invoice addresses are that address;
    addresses given explicitly are kept."""
    body = {
        "CustomerGroupId": "30",
        "SalesCurrencyCode": "USD",
        "OrganizationName": "Fidelity Test",
        "AddressStreet": "1 Main St",
        "AddressCity": "Springfield",
        "AddressCountryRegionId": "USA",
        "AddressCountryRegionISOCode": "US",
        "InvoiceAddressStreet": "PO Box 9",
        "InvoiceAddressCity": "Shelbyville",
    }
    created = scm.post("/data/CustomersV3", json=body)
    assert created.status_code == 201, created.get_json()
    row = created.get_json()
    assert (row["DeliveryAddressStreet"], row["DeliveryAddressCity"], row["DeliveryAddressCountryRegionISOCode"]) == (
        "1 Main St",
        "Springfield",
        "US",
    )
    assert (row["InvoiceAddressStreet"], row["InvoiceAddressCity"], row["InvoiceAddressCountryRegionId"]) == (
        "PO Box 9",
        "Shelbyville",
        "",
    )
    assert row["PersonGender"] == "Unknown" and row["PrimaryContactFax"] == ""


def test_error_type_tells_unreadable_requests_from_refused_writes(scm: Any) -> None:
    """A query or payload OData cannot read is ``Microsoft.OData.ODataException``; a write the entity refuses is
    ``AxODataWriteException`` with the Infolog."""
    unknown = assert_fno_error(scm.get("/data/CustomersV3?$filter=NoSuchField eq 1"), 400, "NoSuchField")
    assert unknown["innererror"]["type"] == ODATA_EXCEPTION
    bad_type = assert_fno_error(scm.post("/data/CustomersV3", json={"CreditLimit": "abc"}), 400, "Edm.Decimal")
    assert bad_type["innererror"]["type"] == ODATA_EXCEPTION
    refused = scm.post("/data/CustomersV3", json={"CustomerGroupId": "nope", "SalesCurrencyCode": "USD"})
    assert assert_fno_error(refused, 400, "Infolog")["innererror"]["type"] == WRITE_EXCEPTION
