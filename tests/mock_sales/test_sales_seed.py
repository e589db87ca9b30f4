"""The mock Sales seed: deterministic, idempotent demo data shaped like the SCM Contoso demo."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mock_sales.rules import behaviors
from mock_sales.schema import build_model
from mock_sales.seed import CUSTOMERS, PRODUCTS, seed
from sandbox.db import Database, platform_metadata
from sandbox.odata.store import Store

_VOLATILE = {"createdon", "modifiedon", "_rowid", "_rowversion"}


def _snapshot(seed_value: int, options: dict[str, Any] | None = None) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """Seed a fresh database and return the counts and every row minus timestamps."""
    model = build_model()
    db = Database("sqlite://", [model.metadata, platform_metadata()])
    db.create_all()
    store = Store(model, db, None, behaviors())
    try:
        with db.transaction():
            counts = seed(store, seed_value, options)
            rows = {
                name: sorted(
                    ({k: v for k, v in row.items() if k not in _VOLATILE} for row in store.find(name)),
                    key=lambda r: str(r[model.entities[name].key[0]]),
                )
                for name in model.entities
            }
        return counts, rows
    finally:
        db.dispose()


def test_same_seed_gives_the_same_rows_and_guids() -> None:
    """Two fresh databases seeded with 1 hold identical rows (numbers, names, GUIDs)."""
    assert _snapshot(1) == _snapshot(1)


def test_another_seed_gives_other_guids_and_names() -> None:
    """Seed 2 draws other identities and Faker values."""
    _, first = _snapshot(1)
    _, second = _snapshot(2)
    assert {r["accountid"] for r in first["account"]}.isdisjoint({r["accountid"] for r in second["account"]})
    assert [r["fullname"] for r in first["lead"]] != [r["fullname"] for r in second["lead"]]


def test_seeding_twice_adds_nothing(env) -> None:
    """Rows whose GUID already exists are skipped, so the counts and the table sizes stay the same."""
    before = {name: len(env.store.find(name)) for name in env.model.entities}
    counts = seed(env.store, 1)
    assert {name: len(env.store.find(name)) for name in env.model.entities} == before
    assert counts["account"] == before["account"]


def test_companies_currencies_and_whoami_rows_exist(env) -> None:
    """usmf and usrt as cdm_companies, USD base currency and EUR, one organization, business units, users."""
    assert {c["cdm_companycode"]: c["cdm_name"] for c in env.store.find("cdm_company")} == {
        "usmf": "Contoso Entertainment System USA",
        "usrt": "Contoso Retail USA",
    }
    usd = env.one("transactioncurrency", isocurrencycode="USD")
    assert env.one("organization")["_basecurrencyid_value"] == usd["transactioncurrencyid"]
    assert env.one("transactioncurrency", isocurrencycode="EUR")["exchangerate"] == Decimal("0.92")
    root = env.store.find("businessunit", limit=1)[0]
    assert root["_cdm_companyid_value"] == env.company()["cdm_companyid"]
    admin = env.store.find("systemuser", limit=1)[0]
    assert admin["_businessunitid_value"] == root["businessunitid"] and admin["fullname"]


def test_demo_customers_are_usmf_customers_with_contacts(env) -> None:
    """US-001... are customertypecode 3 accounts of usmf with group, terms and a primary contact."""
    usmf = env.company()["cdm_companyid"]
    for number, name, *_ in CUSTOMERS:
        account = env.account(number)
        assert (account["name"], account["customertypecode"], account["_msdyn_company_value"]) == (name, 3, usmf)
        assert account["_msdyn_customergroupid_value"] and account["_msdyn_paymentterm_value"]
        contact = env.get("contact", {"contactid": account["_primarycontactid_value"]})
        assert contact["_parentcustomerid_value"] == account["accountid"]
    prospects = env.store.find("account", {"customertypecode": 8})
    assert len(prospects) == 3 and all(p["_primarycontactid_value"] for p in prospects)
    assert len(env.store.find("lead", {"statecode": 0})) == 3


def test_demo_products_are_active_and_on_the_price_list(env) -> None:
    """D0001, D0003, D0004, L0001, P0001 and a service are Active usmf products with a price list item each."""
    for number, name, unit, price, _cost, product_type in PRODUCTS:
        product = env.product(number)
        assert (product["name"], product["statecode"], product["producttypecode"]) == (name, 0, product_type)
        assert product["_defaultuomid_value"] == env.one("uom", msdyn_symbol=unit)["uomid"]
        item = env.one("productpricelevel", _productid_value=product["productid"])
        assert item["amount"] == price and item["_pricelevelid_value"] == env.price_list["pricelevelid"]


def test_reference_data_exists_per_company(env) -> None:
    """Customer groups, payment terms, delivery terms and modes, sites and warehouses in both companies."""
    for code in ("usmf", "usrt"):
        company = env.company(code)["cdm_companyid"]

        def values(entity: str, column: str, company: str = company) -> set[str]:
            return {row[column] for row in env.store.find(entity, {"_msdyn_company_value": company})}

        assert values("msdyn_customergroup", "msdyn_groupid") == {"10", "20", "30"}
        assert values("msdyn_paymentterm", "msdyn_name") == {"Net10", "Net30", "Net45", "COD"}
        assert values("msdyn_operationalsite", "msdyn_siteid") == {"1", "2"}
        assert values("msdyn_warehouse", "msdyn_warehouseidentifier") == {"11", "12", "21"}
        assert values("msdyn_termsofdelivery", "msdyn_termscode") and values("msdyn_shipvia", "msdyn_name")
    assert {u["msdyn_symbol"] for u in env.store.find("uom")} == {"ea", "pcs", "hr", "kg"}


def test_options_scale_accounts_and_products() -> None:
    """options accounts/products/leads/prospects change the counts; the demo rows keep their GUIDs."""
    counts, rows = _snapshot(1, {"accounts": 12, "products": 9, "leads": 0, "prospects": 1})
    assert len([r for r in rows["account"] if r["customertypecode"] == 3]) == 12
    assert counts["product"] == len(rows["product"]) == 9
    assert rows["lead"] == [] and counts["account"] == 13
    _, default_rows = _snapshot(1)
    us001 = [r["accountid"] for r in rows["account"] if r["accountnumber"] == "US-001"]
    assert us001 == [r["accountid"] for r in default_rows["account"] if r["accountnumber"] == "US-001"]
