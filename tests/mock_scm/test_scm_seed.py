"""The default seed: Contoso-style data, deterministic, per company, scalable through options."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from mock_scm import numbering
from mock_scm.schema import CustVendorBlocked, DirPartyType, EcoResProductType, NoYes

if TYPE_CHECKING:
    from conftest import Scm


def snapshot(scm: Scm) -> dict[str, list[dict]]:
    """Every stored row of every base entity."""
    return {name: scm.find(name) for name, entity in scm.model.entities.items() if entity.alias_of is None}


def test_same_seed_gives_identical_data(make_scm_env: type[Scm]) -> None:
    """Seeding twice with the same seed produces the same rows, numbers included."""
    assert snapshot(make_scm_env(seed_value=7)) == snapshot(make_scm_env(seed_value=7))


def test_other_seed_changes_only_generated_rows(make_scm_env: type[Scm]) -> None:
    """The demo rows stay; Faker-made customers differ."""
    one, two = make_scm_env(seed_value=1), make_scm_env(seed_value=2)
    assert (
        one.require("CustomerV3", {"CustomerAccount": "US-001"})["Name"]
        == two.require("CustomerV3", {"CustomerAccount": "US-001"})["Name"]
    )
    names = [[c["Name"] for c in scm.find("CustomerV3", {"dataAreaId": "usrt"})] for scm in (one, two)]
    assert names[0] != names[1]


def test_seed_counts_match_the_rows(scm_env: Scm) -> None:
    """The counts seed() reports are the rows per entity set."""
    for entity_set, count in scm_env.seed_counts.items():
        entity = scm_env.model.by_set[entity_set]
        assert len(scm_env.find(entity.name)) == count, entity_set
    assert scm_env.seed_counts["LegalEntities"] == 3 and scm_env.seed_counts["CustomerGroups"] == 9


def test_reference_data_is_seeded(scm_env: Scm) -> None:
    """Companies, currencies, units, groups, terms, delivery terms/modes, sites and warehouses."""
    usmf = scm_env.require("LegalEntity", {"LegalEntityId": "usmf"})
    assert usmf["Name"] == "Contoso Entertainment System USA"
    assert scm_env.require("LegalEntity", {"LegalEntityId": "usrt"})["Name"] == "Contoso Retail USA"
    assert {c["CurrencyCode"] for c in scm_env.find("Currency")} == {"USD", "EUR", "GBP"}
    assert {u["UnitSymbol"] for u in scm_env.find("UnitOfMeasure")} == {"ea", "pcs", "hr", "kg"}
    groups = {g["CustomerGroupId"]: g for g in scm_env.find("CustomerGroup", {"dataAreaId": "usmf"})}
    assert groups["10"]["Description"] == "Wholesales customers" and groups["20"]["PaymentTermId"] == "Net30"
    assert {t["Name"] for t in scm_env.find("PaymentTerm", {"dataAreaId": "usmf"})} == {
        "Net10",
        "Net30",
        "Net45",
        "COD",
    }
    assert {t["TermsCode"] for t in scm_env.find("DeliveryTerm", {"dataAreaId": "usmf"})} == {"FOB", "CIF"}
    assert {m["ModeCode"]: m["ModeDescription"] for m in scm_env.find("DeliveryMode", {"dataAreaId": "usmf"})} == {
        "10": "Truck",
        "20": "Air",
    }
    assert {w["WarehouseId"]: w["OperationalSiteId"] for w in scm_env.find("Warehouse", {"dataAreaId": "usrt"})} == {
        "11": "1",
        "12": "1",
        "21": "2",
    }


def test_products_have_prices_units_and_on_hand(scm_env: Scm) -> None:
    """The speaker items and a service item, priced, in 'ea', stocked in warehouses 11 and 12."""
    items = {p["ItemNumber"]: p for p in scm_env.find("ReleasedProductV2", {"dataAreaId": "usmf"})}
    assert {"D0001", "D0003", "D0004", "L0001", "P0001", "S0001"} <= set(items)
    assert items["D0001"]["ProductName"] == "Mid-Range Speaker" and items["D0001"]["SalesPrice"] == Decimal("219")
    assert items["D0001"]["SalesUnitSymbol"] == "ea"
    assert items["S0001"]["ProductType"] == EcoResProductType.members["Service"]
    assert items["S0001"]["IsStockedProduct"] == NoYes.members["No"]
    onhand = scm_env.onhand("D0001", warehouse="12")
    assert onhand["OnHandQuantity"] == 40 and onhand["AvailableOnHandQuantity"] == 40


def test_usmf_customers_include_scenario_customers(scm_env: Scm) -> None:
    """US-001 ... US-040 and DE-001, with one on hold, one with a mandatory low credit limit, one person."""
    customers = {c["CustomerAccount"]: c for c in scm_env.find("CustomerV3", {"dataAreaId": "usmf"})}
    assert customers["US-001"]["Name"] == "Contoso Retail San Diego"
    assert customers["US-003"]["Name"] == "Forest Wholesales" and customers["US-009"]["Name"] == "Owl Wholesales"
    assert customers["US-013"]["OnHoldStatus"] == CustVendorBlocked.members["All"]
    assert customers["US-004"]["CreditLimitIsMandatory"] == NoYes.members["Yes"]
    assert customers["US-004"]["CreditLimit"] == Decimal("1000")
    assert customers["US-027"]["PartyType"] == DirPartyType.members["Person"]
    assert customers["DE-001"]["SalesCurrencyCode"] == "EUR"
    assert customers["US-001"]["ContactPersonId"] != ""


def test_second_company_has_its_own_customers_and_data(scm_env: Scm) -> None:
    """usrt has its own customers (RT-...), products and on-hand; demf sells in EUR."""
    usrt = scm_env.find("CustomerV3", {"dataAreaId": "usrt"})
    assert [c["CustomerAccount"] for c in usrt] == ["RT-001", "RT-002", "RT-003", "RT-004", "RT-005"]
    assert scm_env.onhand("D0001", company="usrt")["OnHandQuantity"] == 100
    demf = scm_env.find("CustomerV3", {"dataAreaId": "demf"})
    assert demf and {c["SalesCurrencyCode"] for c in demf} == {"EUR"}
    assert scm_env.find("ReleasedProductV2", {"dataAreaId": "demf", "ItemNumber": "D0001"})[0]["CurrencyCode"] == "EUR"


def test_sequences_continue_after_the_seeded_numbers(scm_env: Scm) -> None:
    """The next usmf customer is US-041; nothing is numbered twice."""
    with scm_env.db.transaction():
        assert numbering.peek(scm_env.store, numbering.CUSTOMER_ACCOUNT, "usmf") == "US-041"
        assert numbering.peek(scm_env.store, numbering.CUSTOMER_ACCOUNT, "usrt") == "RT-006"
        assert numbering.peek(scm_env.store, numbering.SALES_ORDER, "usmf") == "000001"


def test_options_scale_customers_and_products(make_scm_env: type[Scm]) -> None:
    """customers/products add generated rows per company; companies limits the legal entities."""
    scm = make_scm_env(options={"customers": 4, "products": 3, "companies": ["usmf"]})
    assert len(scm.find("CustomerV3")) == 9 + 4
    assert len(scm.find("ReleasedProductV2")) == 6 + 3
    assert [c["LegalEntityId"] for c in scm.find("LegalEntity")] == ["usmf"]
    assert scm.require("ReleasedProductV2", {"ItemNumber": "G0001"})["SalesPrice"] > 0


def test_documents_option_runs_orders_to_invoice(make_scm_env: type[Scm]) -> None:
    """documents=N makes N invoiced orders per company (history for demos), numbered from the sequences."""
    scm = make_scm_env(options={"documents": 2, "companies": ["usmf"]})
    orders = scm.find("SalesOrderHeaderV2")
    assert [o["SalesOrderNumber"] for o in orders] == ["000001", "000002"]
    assert {o["SalesOrderProcessingStatus"] for o in orders} == {7}  # Invoiced
    assert len(scm.find("SalesInvoiceHeaderV2")) == 2
    assert scm.seed_counts["SalesInvoiceHeadersV2"] == 2


def test_empty_database_has_no_rows(empty_scm_env: Scm) -> None:
    """Without seed nothing is there (the control plane seeds explicitly)."""
    assert empty_scm_env.find("CustomerV3") == []
