"""Column metadata of contact, lead, opportunity, opportunityproduct and productpricelevel, and the status choices
of the lead-to-cash tables, as Microsoft's table reference pages give them (``docs/reference/dataverse-fields.md``
lists per table the page and what was compared). PA = Power Apps' Dataverse table reference
(``powerapps-docs/developer/data-platform/reference/entities/<table>.md``), CE = the Dynamics 365 Customer
Engagement table reference (``ce/developer/reference/entities/<table>.md``)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.testing import assert_dataverse_error

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


def attribute(client: Any, table: str, column: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"{ROOT}/EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}'){query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def options(client: Any, table: str, column: str, cast: str) -> list[tuple[int, str]]:
    """The (value, label) pairs of a choice column's OptionSet."""
    body = attribute(client, table, column, f"/Microsoft.Dynamics.CRM.{cast}?$expand=OptionSet($select=Options)")
    return [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in body["OptionSet"]["Options"]]


@pytest.mark.parametrize(
    ("table", "column", "length"),
    [
        ("lead", "address1_name", 100),  # CE lead: 100, where account and contact have 200
        ("lead", "subject", 300),
        ("lead", "mobilephone", 20),
        ("contact", "address1_name", 200),
        ("contact", "address2_name", 100),  # PA contact: address2 100, address1 and address3 200
        ("contact", "address3_name", 200),
        ("contact", "middlename", 50),
        ("opportunity", "name", 300),
        ("opportunityproduct", "productdescription", 500),
        ("productpricelevel", "productnumber", 100),
    ],
)
def test_max_length_follows_the_table_reference_page(sales: Any, table: str, column: str, length: int) -> None:
    """MaxLength per CE ``lead``, PA ``contact``, CE ``opportunity``, CE ``opportunityproduct`` and CE
    ``productpricelevel``."""
    assert attribute(sales, table, column, "?$select=MaxLength")["MaxLength"] == length


def test_lead_and_contact_address_names_over_their_length_are_refused(sales: Any) -> None:
    """A lead's ``address1_name`` longer than 100 (CE ``lead``) and a contact's ``address2_name`` longer than
    100 (PA ``contact``) are 400 ``0x80044331`` naming the column; exactly 100 is accepted."""
    refused = sales.post(
        f"{ROOT}/leads", headers=JSON, json={"subject": "S", "lastname": "L", "address1_name": "x" * 101}
    )
    assert_dataverse_error(refused, 400, code="0x80044331", contains="'address1_name' attribute of the 'lead' entity")
    accepted = sales.post(
        f"{ROOT}/leads", headers=JSON, json={"subject": "S", "lastname": "L", "address1_name": "x" * 100}
    )
    assert accepted.status_code == 204
    contact = sales.post(f"{ROOT}/contacts", headers=JSON, json={"lastname": "L", "address3_name": "y" * 200})
    assert contact.status_code == 204
    too_long = sales.patch(contact.headers["OData-EntityId"], headers=JSON, json={"address2_name": "y" * 101})
    assert_dataverse_error(too_long, 400, code="0x80044331", contains="'address2_name'")


@pytest.mark.parametrize(
    ("table", "column", "level"),
    [
        ("lead", "subject", "ApplicationRequired"),
        ("lead", "lastname", "ApplicationRequired"),
        ("lead", "companyname", "None"),
        ("contact", "lastname", "ApplicationRequired"),
        ("opportunity", "transactioncurrencyid", "ApplicationRequired"),
        ("opportunity", "pricelevelid", "None"),
        ("opportunityproduct", "opportunityid", "SystemRequired"),
        ("opportunityproduct", "producttypecode", "SystemRequired"),
        ("opportunityproduct", "quantity", "ApplicationRequired"),
        ("opportunityproduct", "uomid", "None"),
        ("productpricelevel", "pricelevelid", "SystemRequired"),
        ("productpricelevel", "productid", "SystemRequired"),
        ("productpricelevel", "uomid", "ApplicationRequired"),
        ("productpricelevel", "amount", "ApplicationRequired"),
        ("productpricelevel", "pricingmethodcode", "ApplicationRequired"),
    ],
)
def test_required_level_follows_the_table_reference_page(sales: Any, table: str, column: str, level: str) -> None:
    """RequiredLevel per CE ``lead``, PA ``contact``, CE ``opportunity``, CE ``opportunityproduct`` and CE
    ``productpricelevel`` (lead ``companyname`` is only Recommended there, reported as None here)."""
    assert attribute(sales, table, column, "?$select=RequiredLevel")["RequiredLevel"]["Value"] == level


def test_line_product_type_is_the_line_choice_not_the_product_table_choice(sales: Any) -> None:
    """Lines' ``producttypecode`` is the global choice ``qooiproduct_producttype`` (CE ``opportunityproduct``);
    the product table keeps its own Sales Inventory / Miscellaneous Charges / Services / Flat Fees."""
    assert options(sales, "opportunityproduct", "producttypecode", "PicklistAttributeMetadata") == [
        (1, "Product"),
        (2, "Bundle"),
        (3, "Required Bundle Product"),
        (4, "Optional Bundle Product"),
        (5, "Project-based Service"),
    ]
    assert options(sales, "product", "producttypecode", "PicklistAttributeMetadata")[0] == (1, "Sales Inventory")


def test_contact_secondary_address_types_offer_only_the_default_value(sales: Any) -> None:
    """PA ``contact``: ``address1_addresstypecode`` is Bill To / Ship To / Primary / Other, ``address2`` and
    ``address3`` offer a single "Default Value" (1)."""
    assert [
        value for value, _ in options(sales, "contact", "address1_addresstypecode", "PicklistAttributeMetadata")
    ] == [
        1,
        2,
        3,
        4,
    ]
    for prefix in ("address2", "address3"):
        assert options(sales, "contact", f"{prefix}_addresstypecode", "PicklistAttributeMetadata") == [
            (1, "Default Value")
        ]


@pytest.mark.parametrize(
    ("table", "statuses"),
    [
        (
            "lead",
            [(1, "New"), (2, "Contacted"), (3, "Qualified"), (4, "Lost"), (5, "Cannot Contact")]
            + [(6, "No Longer Interested"), (7, "Canceled")],
        ),
        ("opportunity", [(1, "In Progress"), (2, "On Hold"), (3, "Won"), (4, "Canceled"), (5, "Out-Sold")]),
        ("pricelevel", [(100001, "Active"), (100002, "Inactive")]),
        ("product", [(0, "Draft"), (1, "Active"), (2, "Retired"), (3, "Under Revision")]),
        ("contact", [(1, "Active"), (2, "Inactive")]),
    ],
)
def test_status_reasons_follow_the_table_reference_page(sales: Any, table: str, statuses: list[Any]) -> None:
    """``statuscode`` values and labels per CE ``lead``, ``opportunity``, ``pricelevel``, ``product`` and PA
    ``contact`` (the quote, order and invoice ones, whose real labels repeat, are in ``STATE_MODELS``)."""
    assert sorted(options(sales, table, "statuscode", "StatusAttributeMetadata")) == sorted(statuses)


def test_lead_states_follow_the_table_reference_page(sales: Any) -> None:
    """CE ``lead`` ``statecode``: 0 Open, 1 Qualified, 2 Disqualified."""
    assert options(sales, "lead", "statecode", "StateAttributeMetadata") == [
        (0, "Open"),
        (1, "Qualified"),
        (2, "Disqualified"),
    ]
