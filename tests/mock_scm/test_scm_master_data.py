"""Rules of the reference data, products and customers: defaults, references that must exist, deletes."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from mock_scm.schema import DirPartyType, EcoResProductType, NoYes
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm

CUSTOMER = {"CustomerGroupId": "10", "SalesCurrencyCode": "USD", "OrganizationName": "Heron Wholesales"}


def test_customer_with_unknown_group_is_refused_with_the_infolog(scm_env: Scm) -> None:
    """The refusal quotes the real Infolog: value not found in the related table, then validateField."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "CustomerGroupId": "Local"})
    assert scm_env.refused(excinfo) == (
        "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' in field "
        "'Customer group' is not found in the related table 'Customer groups'.; Warning: validateField failed on "
        "field 'CustCustomerV3Entity.CustomerGroupId'."
    )
    assert excinfo.value.message == "An error has occurred."


def test_customer_without_group_is_refused(scm_env: Scm) -> None:
    """A customer group is mandatory."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "CustomerGroupId": ""})
    assert "Field 'Customer group' must be filled in." in scm_env.refused(excinfo)


@pytest.mark.parametrize(
    "currency,message",
    [
        ("", "Field 'Currency' must be filled in."),
        ("XYZ", "The value 'XYZ' in field 'Currency' is not found in the related table 'Currencies'."),
    ],
)
def test_customer_needs_a_known_currency(scm_env: Scm, currency: str, message: str) -> None:
    """The sales currency is mandatory and must exist."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "SalesCurrencyCode": currency})
    assert message in scm_env.refused(excinfo)


def test_customer_group_of_another_company_does_not_count(scm_env: Scm) -> None:
    """References are looked up in the customer's own company."""
    scm_env.insert("CustomerGroup", {"CustomerGroupId": "90", "Description": "usmf only", "PaymentTermId": "Net30"})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "usrt", "CustomerGroupId": "90"})
    assert "'90' in field 'Customer group'" in scm_env.refused(excinfo)


def test_customer_defaults_come_from_group_and_names_are_kept_in_step(scm_env: Scm) -> None:
    """Terms of payment default from the group; Name follows OrganizationName; party number assigned."""
    row = scm_env.insert("CustomerV3", {**CUSTOMER, "CustomerGroupId": "30"})
    assert row["PaymentTerms"] == "Net10"
    assert row["Name"] == "Heron Wholesales" and row["NameAlias"] == "Heron Wholesales"
    assert row["PartyNumber"].isdigit() and len(row["PartyNumber"]) == 9
    assert row["LanguageId"] == "en-us" and row["OnHoldStatus"] == 0
    updated = scm_env.update("CustomerV3", {"CustomerAccount": row["CustomerAccount"]}, {"Name": "Heron Ltd"})
    assert updated["OrganizationName"] == "Heron Ltd"


def test_person_customer_gets_name_from_its_parts(scm_env: Scm) -> None:
    """Persons (PartyType Person) have first/last names; Name is made from them, or split from Name."""
    row = scm_env.insert(
        "CustomerV3",
        {
            **CUSTOMER,
            "PartyType": DirPartyType.members["Person"],
            "PersonFirstName": "Ana",
            "PersonLastName": "Lopez",
            "OrganizationName": "",
        },
    )
    assert row["Name"] == "Ana Lopez"
    split = scm_env.insert(
        "CustomerV3",
        {**CUSTOMER, "PartyType": DirPartyType.members["Person"], "Name": "Mary Ann Smith", "OrganizationName": ""},
    )
    assert (split["PersonFirstName"], split["PersonLastName"]) == ("Mary Ann", "Smith")


def test_customer_with_unknown_terms_or_delivery_mode_is_refused(scm_env: Scm) -> None:
    """Optional references must exist when given."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "PaymentTerms": "Net99"})
    assert "'Net99' in field 'Terms of payment'" in scm_env.refused(excinfo)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("CustomerV3", {"CustomerAccount": "US-001"}, {"DeliveryMode": "99"})
    assert "'99' in field 'Mode of delivery'" in scm_env.refused(excinfo)


def test_customer_in_unknown_company_is_refused(scm_env: Scm) -> None:
    """dataAreaId must name a legal entity."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "zzzz"})
    assert "Legal entities" in scm_env.refused(excinfo)


def test_customer_account_cannot_be_renamed_over_the_api(scm_env: Scm) -> None:
    """Key columns are fixed once the record exists."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("CustomerV3", {"CustomerAccount": "US-001"}, {"CustomerAccount": "US-999"})
    assert "CustomerAccount" in scm_env.refused(excinfo)


def test_customer_with_orders_cannot_be_deleted(scm_env: Scm) -> None:
    """A customer used on documents stays; an unused one can go."""
    scm_env.order("US-002")
    with pytest.raises(SandboxError) as excinfo:
        scm_env.delete("CustomerV3", {"CustomerAccount": "US-002"})
    assert "Delete failed" in scm_env.refused(excinfo)
    scm_env.delete("CustomerV3", {"CustomerAccount": "US-009"})
    assert scm_env.get("CustomerV3", {"CustomerAccount": "US-009"}) is None


def test_customer_group_in_use_cannot_be_deleted(scm_env: Scm) -> None:
    """Deleting reference data that customers use is refused over the API."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.delete("CustomerGroup", {"CustomerGroupId": "10"})
    assert "Cannot delete a record in Customer groups" in scm_env.refused(excinfo)


def test_customer_group_needs_known_terms_of_payment(scm_env: Scm) -> None:
    """A group's PaymentTermId refers to PaymentTerms."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("CustomerGroup", {"CustomerGroupId": "40", "PaymentTermId": "Net1000"})
    assert "Terms of payment" in scm_env.refused(excinfo)


def test_warehouse_needs_a_known_site(scm_env: Scm) -> None:
    """Warehouses belong to an operational site of the company."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("Warehouse", {"WarehouseId": "31", "OperationalSiteId": "3"})
    assert "'3' in field 'Site' is not found in the related table 'Sites'" in scm_env.refused(excinfo)
    assert scm_env.insert("Warehouse", {"WarehouseId": "22", "OperationalSiteId": "2"})["WarehouseId"] == "22"


def test_released_product_defaults_units_names_and_currency(scm_env: Scm) -> None:
    """Product number, search name, units and currency default; services are never stocked."""
    item = scm_env.insert(
        "ReleasedProductV2", {"ItemNumber": "T0001", "ProductName": "Tuner", "SalesPrice": Decimal("50")}
    )
    assert (item["ProductNumber"], item["SearchName"], item["SalesUnitSymbol"], item["CurrencyCode"]) == (
        "T0001",
        "Tuner",
        "ea",
        "USD",
    )
    assert item["IsStockedProduct"] == NoYes.members["Yes"]
    service = scm_env.insert(
        "ReleasedProductV2",
        {"ItemNumber": "S0002", "ProductType": EcoResProductType.members["Service"], "InventoryUnitSymbol": "hr"},
    )
    assert service["IsStockedProduct"] == NoYes.members["No"] and service["SalesUnitSymbol"] == "hr"


def test_released_product_with_unknown_unit_is_refused(scm_env: Scm) -> None:
    """Units are shared reference data and must exist."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("ReleasedProductV2", {"ItemNumber": "T0002", "SalesUnitSymbol": "box"})
    assert "'box' in field 'Sales unit' is not found in the related table 'Units'" in scm_env.refused(excinfo)


def test_released_product_on_order_lines_cannot_be_deleted(scm_env: Scm) -> None:
    """Products used on orders stay; deleting an unused one removes its on-hand too."""
    scm_env.order("US-001", [("D0003", 1)])
    with pytest.raises(SandboxError):
        scm_env.delete("ReleasedProductV2", {"ItemNumber": "D0003"})
    scm_env.delete("ReleasedProductV2", {"ItemNumber": "P0001"})
    assert scm_env.find("WarehouseOnHandV2", {"dataAreaId": "usmf", "ItemNumber": "P0001"}) == []


def test_contact_person_is_numbered_and_linked_to_its_customer(scm_env: Scm) -> None:
    """ContactPersonId from the company sequence; the customer's party becomes the associated party."""
    contact = scm_env.insert(
        "ContactPersonV2", {"CustomerAccount": "US-009", "FirstName": "Ola", "LastName": "Nordmann"}
    )
    assert contact["ContactPersonId"] == "000005"
    assert contact["ContactPersonName"] == "Ola Nordmann"
    assert (
        contact["AssociatedPartyNumber"] == scm_env.require("CustomerV3", {"CustomerAccount": "US-009"})["PartyNumber"]
    )


def test_unit_in_use_cannot_be_deleted(scm_env: Scm) -> None:
    """Shared reference data (no company) is checked across companies."""
    with pytest.raises(SandboxError):
        scm_env.delete("UnitOfMeasure", {"UnitSymbol": "ea"})
    scm_env.delete("UnitOfMeasure", {"UnitSymbol": "kg"})


# ---- reference data read once per transaction (Store.get_cached) ------------------------------------------
def test_reference_data_written_earlier_in_the_transaction_is_seen(scm_env: Scm) -> None:
    """Within one transaction: a customer refused for an unknown group, then the group is created, then
    the same customer is accepted; a group's changed terms are the next customer's default."""
    store = scm_env.store
    with scm_env.db.transaction():
        with pytest.raises(SandboxError):
            store.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "usmf", "CustomerGroupId": "77"})
        store.insert("CustomerGroup", {"dataAreaId": "usmf", "CustomerGroupId": "77", "PaymentTermId": "Net30"})
        first = store.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "usmf", "CustomerGroupId": "77"})
        group = store.get("CustomerGroup", {"dataAreaId": "usmf", "CustomerGroupId": "77"})
        assert group is not None
        store.update("CustomerGroup", group, {"PaymentTermId": "Net10"})
        second = store.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "usmf", "CustomerGroupId": "77"})
        currency = store.get("Currency", {"CurrencyCode": "USD"})
        assert currency is not None
        store.delete("Currency", currency, via_api=False)
        with pytest.raises(SandboxError) as excinfo:
            store.insert("CustomerV3", {**CUSTOMER, "dataAreaId": "usmf"})
    assert (first["PaymentTerms"], second["PaymentTerms"]) == ("Net30", "Net10")
    assert "'USD' in field 'Currency' is not found" in scm_env.refused(excinfo)


def test_legal_entity_created_in_the_transaction_takes_rows(scm_env: Scm) -> None:
    """A company unknown at first is refused; once created in the same transaction its rows are accepted."""
    store = scm_env.store
    with scm_env.db.transaction():
        with pytest.raises(SandboxError) as excinfo:
            store.insert("CustomerGroup", {"dataAreaId": "newco", "CustomerGroupId": "10"})
        store.insert("LegalEntity", {"LegalEntityId": "newco", "AccountingCurrencyCode": "USD"})
        row = store.insert("CustomerGroup", {"dataAreaId": "newco", "CustomerGroupId": "10"})
    assert "'newco' in field 'Company'" in scm_env.refused(excinfo)
    assert row["dataAreaId"] == "newco"
