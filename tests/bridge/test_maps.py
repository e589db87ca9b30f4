"""Every shipped map syncs in each of its directions, through the whole in-process stack.

One stack serves the module (building one takes seconds): every test writes rows with its own unique keys,
so the tests do not see each other's data. Live sync is synchronous, so a write that returned has already
been copied (or refused on both sides).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from leadtocash.stack import Stack, StackConfig, build_stack
from sandbox.clients import ControlClient, SalesClient, ScmClient, ServiceError
from sandbox.wellknown import DEFAULT_COMPANY, INTEGRATION_IDENTITY

USMF = DEFAULT_COMPANY


@dataclass
class World:
    """The stack with clients on both services and a few ids the tests need."""

    stack: Stack
    sales: SalesClient
    scm: ScmClient
    scm_control: ControlClient
    companies: dict[str, str] = field(default_factory=dict)  # dataAreaId -> cdm_companyid

    @property
    def runtime(self) -> Any:
        return self.stack.apps["bridge"].extensions["bridge"]

    def company_bind(self, code: str = USMF) -> str:
        return f"/cdm_companies({self.companies[code]})"

    def ref(self, entity_set: str, column: str, value: str, code: str = USMF) -> str:
        """An @odata.bind to a company-specific row by its dual-write key."""
        return f"/{entity_set}({column}='{value}',_msdyn_company_value={self.companies[code]})"

    def one(self, entity_set: str, filter: str, **options: Any) -> dict[str, Any] | None:
        rows = self.sales.query(entity_set, filter=filter, **options)
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def scm_row(self, entity_set: str, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.scm.retrieve(entity_set, key, cross_company=True)
        except ServiceError as error:
            if error.status == 404:
                return None
            raise


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    stack = build_stack(StackConfig(memory=True, seed=1))
    sales = SalesClient("http://sales.sandbox", transport=stack.transport("sales"))
    scm = ScmClient("http://scm.sandbox", transport=stack.transport("scm"))
    control = ControlClient("http://scm.sandbox", transport=stack.transport("scm"))
    companies = {row["cdm_companycode"]: row["cdm_companyid"] for row in sales.query("cdm_companies")}
    try:
        yield World(stack, sales, scm, control, companies)
    finally:
        for client in (sales, scm, control):
            client.close()
        stack.close()


_counter = itertools.count(1)


def uid(prefix: str = "T", width: int = 3) -> str:
    """A key no other test uses (short: F&O codes are 10 characters or less)."""
    return f"{prefix}{next(_counter):0{width}d}"


def letters() -> str:
    """A unique three-letter code (currencies)."""
    n = next(_counter)
    return "Q" + chr(65 + n // 26 % 26) + chr(65 + n % 26)


def assert_has(row: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    """``row`` exists and has the ``expected`` values (compared as one dict, for a readable diff)."""
    assert row is not None, "the row did not arrive"
    assert {name: row.get(name) for name in expected} == expected


# ---- the maps are running ---------------------------------------------------------------------------------------


def test_every_shipped_map_runs_after_an_initial_sync_without_errors(world: World) -> None:
    """build_stack starts all 22 maps with initial sync; none is left with an initial-sync error."""
    runtime = world.runtime
    assert len(runtime.maps) == 22
    for table_map in runtime.maps:
        status = runtime.lifecycle.status(table_map.id)
        assert status["state"] == "Running", status
        report = runtime.lifecycle.initial.last_reports[table_map.id]
        assert report.errors == [], (table_map.id, report.errors[:3])


def test_initial_sync_brought_scm_master_data_to_sales(world: World) -> None:
    """demf (not seeded in Sales) arrives as a company; usrt and demf products and customers follow."""
    assert set(world.companies) >= {"usmf", "usrt", "demf"}
    assert world.one("accounts", f"accountnumber eq 'DE-001' and _msdyn_company_value eq {world.companies[USMF]}")
    assert world.sales.count("products", f"_msdyn_company_value eq {world.companies['demf']}") >= 6


# ---- reference maps: create and update, in each direction --------------------------------------------------------


@dataclass
class RefSpec:
    """How to make and change one reference row on each side, and what the other side must show."""

    map_id: str
    scm_set: str
    sales_set: str
    scm_key: Callable[[str], dict[str, Any]]
    sales_key: str  # the Sales key column (company-scoped when company)
    scm_create: Callable[[str], dict[str, Any]]
    sales_expected: dict[str, Any]  # after the SCM create
    scm_change: dict[str, Any]
    sales_expected_after_change: dict[str, Any]
    sales_create: Callable[[str, World], dict[str, Any]] | None = None  # None: one-way map
    scm_expected: dict[str, Any] = field(default_factory=dict)
    sales_change: dict[str, Any] = field(default_factory=dict)
    scm_expected_after_change: dict[str, Any] = field(default_factory=dict)
    company: bool = True
    make_code: Callable[[], str] = uid


def company_row(key: str) -> Callable[[str], dict[str, Any]]:
    return lambda code: {"dataAreaId": USMF, key: code}


REFERENCE = [
    RefSpec(
        "legal-entities",
        "LegalEntities",
        "cdm_companies",
        lambda c: {"LegalEntityId": c},
        "cdm_companycode",
        lambda c: {"LegalEntityId": c, "Name": "Test company"},
        {"cdm_name": "Test company"},
        {"Name": "Renamed company"},
        {"cdm_name": "Renamed company"},
        sales_change={"cdm_name": "Changed in Sales"},
        scm_expected_after_change={"Name": "Renamed company"},
        company=False,
        make_code=lambda: uid("t", 3),
    ),
    RefSpec(
        "currencies",
        "Currencies",
        "transactioncurrencies",
        lambda c: {"CurrencyCode": c},
        "isocurrencycode",
        lambda c: {"CurrencyCode": c, "Name": "Test money", "Symbol": "T$"},
        {"currencyname": "Test money", "currencysymbol": "T$", "exchangerate": 1.0},
        {"Name": "Test money II"},
        {"currencyname": "Test money II"},
        sales_create=lambda c, w: {
            "isocurrencycode": c,
            "currencyname": "Sales money",
            "currencysymbol": "S$",
            "exchangerate": 1.5,
        },
        scm_expected={"Name": "Sales money", "Symbol": "S$"},
        sales_change={"currencyname": "Sales money II"},
        scm_expected_after_change={"Name": "Sales money II"},
        company=False,
        make_code=letters,
    ),
    RefSpec(
        "units",
        "UnitsOfMeasure",
        "uoms",
        lambda c: {"UnitSymbol": c},
        "msdyn_symbol",
        lambda c: {
            "UnitSymbol": c,
            "UnitDescription": "Test unit",
            "UnitClass": "Length",
            "DecimalPrecision": 2,
            "IsBaseUnit": "Yes",
            "SystemOfUnits": "Metric",
        },
        {
            "msdyn_externalunitclassname": "Length",
            "msdyn_decimalprecision": 2,
            "msdyn_isbaseunit": True,
            "msdyn_systemofunits": 192350001,
        },
        {"DecimalPrecision": 3, "SystemOfUnits": "US"},
        {"msdyn_decimalprecision": 3, "msdyn_systemofunits": 192350002},
        sales_change={"msdyn_decimalprecision": 5},
        scm_expected_after_change={"DecimalPrecision": 3},
        company=False,
    ),
    RefSpec(
        "payment-terms",
        "PaymentTerms",
        "msdyn_paymentterms",
        company_row("Name"),
        "msdyn_name",
        lambda c: {"dataAreaId": USMF, "Name": c, "Description": "Net 14", "NumberOfDays": 14},
        {"msdyn_description": "Net 14", "msdyn_numberofdays": 14},
        {"NumberOfDays": 21},
        {"msdyn_numberofdays": 21},
        sales_create=lambda c, w: {
            "msdyn_name": c,
            "msdyn_description": "Net 7",
            "msdyn_numberofdays": 7,
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"Description": "Net 7", "NumberOfDays": 7},
        sales_change={"msdyn_description": "Net 8"},
        scm_expected_after_change={"Description": "Net 8"},
    ),
    RefSpec(
        "customer-groups",
        "CustomerGroups",
        "msdyn_customergroups",
        company_row("CustomerGroupId"),
        "msdyn_groupid",
        lambda c: {"dataAreaId": USMF, "CustomerGroupId": c, "Description": "Test group", "PaymentTermId": "Net30"},
        {"msdyn_description": "Test group"},
        {"Description": "Test group II"},
        {"msdyn_description": "Test group II"},
        sales_create=lambda c, w: {
            "msdyn_groupid": c,
            "msdyn_description": "Sales group",
            "msdyn_company@odata.bind": w.company_bind(),
            "msdyn_paymentterm@odata.bind": w.ref("msdyn_paymentterms", "msdyn_name", "Net10"),
        },
        scm_expected={"Description": "Sales group", "PaymentTermId": "Net10"},
        sales_change={"msdyn_description": "Sales group II"},
        scm_expected_after_change={"Description": "Sales group II", "PaymentTermId": "Net10"},
    ),
    RefSpec(
        "delivery-terms",
        "DeliveryTerms",
        "msdyn_termsofdeliveries",
        company_row("TermsCode"),
        "msdyn_termscode",
        lambda c: {"dataAreaId": USMF, "TermsCode": c, "TermsDescription": "Test terms"},
        {"msdyn_description": "Test terms"},
        {"TermsDescription": "Other terms"},
        {"msdyn_description": "Other terms"},
        sales_create=lambda c, w: {
            "msdyn_termscode": c,
            "msdyn_name": c,
            "msdyn_description": "Sales terms",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"TermsDescription": "Sales terms"},
        sales_change={"msdyn_description": "Sales terms II"},
        scm_expected_after_change={"TermsDescription": "Sales terms II"},
    ),
    RefSpec(
        "delivery-modes",
        "DeliveryModes",
        "msdyn_shipvias",
        company_row("ModeCode"),
        "msdyn_name",
        lambda c: {"dataAreaId": USMF, "ModeCode": c, "ModeDescription": "Boat"},
        {"msdyn_description": "Boat"},
        {"ModeDescription": "Barge"},
        {"msdyn_description": "Barge"},
        sales_create=lambda c, w: {
            "msdyn_name": c,
            "msdyn_description": "Bike",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"ModeDescription": "Bike"},
        sales_change={"msdyn_description": "Cargo bike"},
        scm_expected_after_change={"ModeDescription": "Cargo bike"},
    ),
    RefSpec(
        "sites",
        "OperationalSites",
        "msdyn_operationalsites",
        company_row("SiteId"),
        "msdyn_siteid",
        lambda c: {"dataAreaId": USMF, "SiteId": c, "SiteName": "North"},
        {"msdyn_sitename": "North"},
        {"SiteName": "North II"},
        {"msdyn_sitename": "North II"},
        sales_create=lambda c, w: {
            "msdyn_siteid": c,
            "msdyn_sitename": "South",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"SiteName": "South"},
        sales_change={"msdyn_sitename": "South II"},
        scm_expected_after_change={"SiteName": "South II"},
    ),
    RefSpec(
        "warehouses",
        "Warehouses",
        "msdyn_warehouses",
        company_row("WarehouseId"),
        "msdyn_warehouseidentifier",
        lambda c: {"dataAreaId": USMF, "WarehouseId": c, "WarehouseName": "Depot", "OperationalSiteId": "1"},
        {"msdyn_name": "Depot"},
        {"WarehouseName": "Depot II"},
        {"msdyn_name": "Depot II"},
        sales_create=lambda c, w: {
            "msdyn_warehouseidentifier": c,
            "msdyn_name": "Annex",
            "msdyn_company@odata.bind": w.company_bind(),
            "msdyn_operationalsite@odata.bind": w.ref("msdyn_operationalsites", "msdyn_siteid", "2"),
        },
        scm_expected={"WarehouseName": "Annex", "OperationalSiteId": "2"},
        sales_change={"msdyn_name": "Annex II"},
        scm_expected_after_change={"WarehouseName": "Annex II"},
    ),
    RefSpec(
        "price-customer-groups",
        "PriceCustomerGroups",
        "msdyn_pricecustomergroups",
        company_row("GroupCode"),
        "msdyn_groupcode",
        lambda c: {"dataAreaId": USMF, "GroupCode": c, "Name": "Gold"},
        {"msdyn_name": "Gold"},
        {"Name": "Platinum"},
        {"msdyn_name": "Platinum"},
        sales_create=lambda c, w: {
            "msdyn_groupcode": c,
            "msdyn_name": "Silver",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"Name": "Silver"},
        sales_change={"msdyn_name": "Bronze"},
        scm_expected_after_change={"Name": "Bronze"},
    ),
    RefSpec(
        "sales-order-origins",
        "SalesOrderOrigins",
        "msdyn_salesorderorigins",
        company_row("OriginCode"),
        "msdyn_origincode",
        lambda c: {"dataAreaId": USMF, "OriginCode": c, "Description": "Trade fair"},
        {"msdyn_description": "Trade fair"},
        {"Description": "Trade show"},
        {"msdyn_description": "Trade show"},
        sales_create=lambda c, w: {
            "msdyn_origincode": c,
            "msdyn_name": c,
            "msdyn_description": "Web shop",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"Description": "Web shop"},
        sales_change={"msdyn_description": "Web store"},
        scm_expected_after_change={"Description": "Web store"},
    ),
    RefSpec(
        "sales-tax-groups",
        "SalesTaxGroups",
        "msdyn_salestaxgroups",
        company_row("TaxGroupCode"),
        "msdyn_name",
        lambda c: {"dataAreaId": USMF, "TaxGroupCode": c, "Description": "Oregon"},
        {"msdyn_description": "Oregon"},
        {"Description": "Oregon (no tax)"},
        {"msdyn_description": "Oregon (no tax)"},
        sales_create=lambda c, w: {
            "msdyn_name": c,
            "msdyn_description": "Texas",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"Description": "Texas"},
        sales_change={"msdyn_description": "Texas II"},
        scm_expected_after_change={"Description": "Texas II"},
    ),
    RefSpec(
        "customer-payment-methods",
        "CustomerPaymentMethods",
        "msdyn_customerpaymentmethods",
        company_row("Name"),
        "msdyn_name",
        lambda c: {"dataAreaId": USMF, "Name": c, "Description": "Cash"},
        {"msdyn_description": "Cash"},
        {"Description": "Cash only"},
        {"msdyn_description": "Cash only"},
        sales_create=lambda c, w: {
            "msdyn_name": c,
            "msdyn_description": "Card",
            "msdyn_company@odata.bind": w.company_bind(),
        },
        scm_expected={"Description": "Card"},
        sales_change={"msdyn_description": "Credit card"},
        scm_expected_after_change={"Description": "Credit card"},
    ),
]


def _sales_filter(world: World, spec: RefSpec, code: str) -> str:
    text = f"{spec.sales_key} eq '{code}'"
    return text + (f" and _msdyn_company_value eq {world.companies[USMF]}" if spec.company else "")


@pytest.mark.parametrize("spec", REFERENCE, ids=lambda s: s.map_id)
def test_reference_row_created_and_changed_in_scm_appears_in_sales(world: World, spec: RefSpec) -> None:
    """An SCM create, then an SCM update, each show in Sales at once (in the row's company)."""
    code = spec.make_code()
    world.scm.create(spec.scm_set, spec.scm_create(code))
    row = world.one(spec.sales_set, _sales_filter(world, spec, code))
    assert_has(row, spec.sales_expected)
    world.scm.update(spec.scm_set, spec.scm_key(code), spec.scm_change)
    row = world.one(spec.sales_set, _sales_filter(world, spec, code))
    assert_has(row, spec.sales_expected_after_change)


@pytest.mark.parametrize("spec", [s for s in REFERENCE if s.sales_create], ids=lambda s: s.map_id)
def test_reference_row_created_and_changed_in_sales_appears_in_scm(world: World, spec: RefSpec) -> None:
    """A Sales create, then a Sales update, each show in SCM at once (two-way maps)."""
    assert spec.sales_create is not None
    code = spec.make_code()
    row_id = world.sales.create(spec.sales_set, spec.sales_create(code, world))
    assert_has(world.scm_row(spec.scm_set, spec.scm_key(code)), spec.scm_expected)
    world.sales.update(spec.sales_set, row_id, spec.sales_change)
    assert_has(world.scm_row(spec.scm_set, spec.scm_key(code)), spec.scm_expected_after_change)


@pytest.mark.parametrize("spec", [s for s in REFERENCE if not s.sales_create], ids=lambda s: s.map_id)
def test_one_way_reference_map_does_not_sync_back(world: World, spec: RefSpec) -> None:
    """A Sales change to a row of an SCM -> Sales map succeeds in Sales and leaves SCM as it was."""
    code = spec.make_code()
    world.scm.create(spec.scm_set, spec.scm_create(code))
    world.scm.update(spec.scm_set, spec.scm_key(code), spec.scm_change)
    row = world.one(spec.sales_set, _sales_filter(world, spec, code))
    assert row is not None
    primary_key = world.runtime.sales_model.by_set[spec.sales_set].key[0]
    world.sales.update(spec.sales_set, row[primary_key], spec.sales_change)
    assert_has(world.scm_row(spec.scm_set, spec.scm_key(code)), spec.scm_expected_after_change)


def test_currency_999_never_syncs(world: World) -> None:
    """The Currencies map's SCM filter leaves F&O's placeholder currency out."""
    world.scm.create("Currencies", {"CurrencyCode": "999", "Name": "Placeholder"})
    assert world.one("transactioncurrencies", "isocurrencycode eq '999'") is None


# ---- customers ---------------------------------------------------------------------------------------------------


def test_organization_customer_created_and_changed_in_scm_is_an_account(world: World) -> None:
    """A Customers V3 organization becomes a Customer-type account in its company, lookups resolved."""
    account = uid("TA-")
    world.scm.create(
        "CustomersV3",
        {
            "dataAreaId": USMF,
            "CustomerAccount": account,
            "OrganizationName": "Tailspin Toys",
            "CustomerGroupId": "20",
            "SalesCurrencyCode": "USD",
            "OnHoldStatus": "Invoice",
            "CreditLimit": 2500,
            "IsOneTimeCustomer": "Yes",
            "AddressCity": "Redmond",
            "SalesTaxGroup": "WA",
            "PaymentMethod": "CHECK",
        },
    )
    row = world.one(
        "accounts",
        f"accountnumber eq '{account}'",
        expand=[
            "msdyn_customergroupid($select=msdyn_groupid)",
            "msdyn_paymentterm($select=msdyn_name)",
            "msdyn_salestaxgroup($select=msdyn_name)",
            "msdyn_company($select=cdm_companycode)",
            "transactioncurrencyid($select=isocurrencycode)",
        ],
    )
    assert row is not None
    assert_has(
        row,
        {
            "name": "Tailspin Toys",
            "customertypecode": 3,
            "msdyn_onholdstatus": 806380001,
            "creditlimit": 2500.0,
            "msdyn_onetimecustomer": True,
            "address1_city": "Redmond",
        },
    )
    assert row["msdyn_customergroupid"]["msdyn_groupid"] == "20"
    assert row["msdyn_paymentterm"]["msdyn_name"] == "Net30"  # SCM defaulted it from the customer group
    assert row["msdyn_salestaxgroup"]["msdyn_name"] == "WA"
    assert row["msdyn_company"]["cdm_companycode"] == USMF
    assert row["transactioncurrencyid"]["isocurrencycode"] == "USD"
    world.scm.update(
        "CustomersV3",
        {"dataAreaId": USMF, "CustomerAccount": account},
        {"OrganizationName": "Tailspin Toys Ltd", "OnHoldStatus": "No"},
    )
    row = world.one("accounts", f"accountnumber eq '{account}'")
    assert_has(row, {"name": "Tailspin Toys Ltd", "msdyn_onholdstatus": 806380000})


def test_customer_account_created_and_changed_in_sales_is_an_scm_organization(world: World) -> None:
    """A Customer-type account with a number becomes an SCM organization customer (currency from Sales)."""
    account = uid("SA-")
    account_id = world.sales.create(
        "accounts",
        {
            "name": "Alpine Ski House",
            "accountnumber": account,
            "customertypecode": 3,
            "creditlimit": 900,
            "msdyn_customergroupid@odata.bind": world.ref("msdyn_customergroups", "msdyn_groupid", "10"),
            "msdyn_creditlimitismandatory": True,
        },
    )
    customer = world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account})
    expected = {
        "PartyType": "Organization",
        "OrganizationName": "Alpine Ski House",
        "CustomerGroupId": "10",
        "SalesCurrencyCode": "USD",
        "CreditLimit": 900.0,
        "CreditLimitIsMandatory": "Yes",
        "PaymentTerms": "Net30",
    }
    assert_has(customer, expected)
    world.sales.update("accounts", account_id, {"name": "Alpine Ski House Inc", "msdyn_onholdstatus": 806380002})
    customer = world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account})
    assert_has(customer, {"OrganizationName": "Alpine Ski House Inc", "OnHoldStatus": "All"})


def test_customer_of_a_second_legal_entity_syncs_in_that_company_only(world: World) -> None:
    """The same account number in usrt and usmf is two customers; a change in one company, from either side,
    touches only that company's row on the other side."""
    account = uid("LE-")
    ids = {}
    for code, name in (("usrt", "Retail branch"), (USMF, "Main branch")):
        ids[code] = world.sales.create(
            "accounts",
            {
                "name": name,
                "accountnumber": account,
                "customertypecode": 3,
                "msdyn_company@odata.bind": world.company_bind(code),
                "msdyn_customergroupid@odata.bind": world.ref("msdyn_customergroups", "msdyn_groupid", "10", code),
            },
        )
    world.sales.update("accounts", ids["usrt"], {"name": "Retail branch II"})
    usrt_key = {"dataAreaId": "usrt", "CustomerAccount": account}
    assert world.scm_row("CustomersV3", usrt_key)["OrganizationName"] == "Retail branch II"
    assert (
        world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account})["OrganizationName"]
        == "Main branch"
    )
    # another legal entity than the caller's default is addressed with cross-company (ScmClient.update has no flag)
    world.scm.request(
        "PATCH",
        world.scm.entity_path("CustomersV3", usrt_key),
        params={"cross-company": "true"},
        json_body={"OrganizationName": "Retail branch III"},
    )
    assert world.sales.retrieve("accounts", ids["usrt"], select=["name"])["name"] == "Retail branch III"
    assert world.sales.retrieve("accounts", ids[USMF], select=["name"])["name"] == "Main branch"


def test_prospect_account_stays_in_sales(world: World) -> None:
    """customertypecode 8 (Prospect) is outside the reversed filter: nothing is written to SCM, no error."""
    account = uid("PR-")
    account_id = world.sales.create("accounts", {"name": "Maybe Corp", "accountnumber": account, "customertypecode": 8})
    world.sales.update("accounts", account_id, {"name": "Maybe Corp II"})
    assert world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account}) is None


def test_customer_account_without_number_is_refused_on_both_sides(world: World) -> None:
    """A Customer-type account needs its integration key: the save fails and nothing is created."""
    with pytest.raises(ServiceError) as caught:
        world.sales.create(
            "accounts",
            {
                "name": "Nameless Ltd",
                "customertypecode": 3,
                "msdyn_customergroupid@odata.bind": world.ref("msdyn_customergroups", "msdyn_groupid", "10"),
            },
        )
    assert caught.value.status == 400
    assert "accountnumber has no value" in caught.value.message
    assert world.one("accounts", "name eq 'Nameless Ltd'") is None


def test_person_customer_created_and_changed_in_scm_is_a_sellable_contact(world: World) -> None:
    """Persons go to contacts (msdyn_contactpersonid = account number, sellable), never to accounts."""
    account = uid("TP-")
    world.scm.create(
        "CustomersV3",
        {
            "dataAreaId": USMF,
            "CustomerAccount": account,
            "PartyType": "Person",
            "PersonFirstName": "Dana",
            "PersonLastName": "Birkby",
            "CustomerGroupId": "30",
            "SalesCurrencyCode": "USD",
        },
    )
    contact = world.one("contacts", f"msdyn_contactpersonid eq '{account}'")
    assert_has(contact, {"firstname": "Dana", "lastname": "Birkby", "fullname": "Dana Birkby", "msdyn_sellable": True})
    assert world.one("accounts", f"accountnumber eq '{account}'") is None
    world.scm.update("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account}, {"PersonLastName": "Birk"})
    assert world.one("contacts", f"msdyn_contactpersonid eq '{account}'")["fullname"] == "Dana Birk"


def test_sellable_contact_created_and_changed_in_sales_is_an_scm_person(world: World) -> None:
    """A sellable contact with a customer number becomes an SCM person customer."""
    account = uid("SP-")
    contact_id = world.sales.create(
        "contacts",
        {
            "firstname": "Rob",
            "lastname": "Young",
            "msdyn_contactpersonid": account,
            "msdyn_sellable": True,
            "msdyn_customergroupid@odata.bind": world.ref("msdyn_customergroups", "msdyn_groupid", "30"),
        },
    )
    customer = world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account})
    expected = {
        "PartyType": "Person",
        "PersonFirstName": "Rob",
        "PersonLastName": "Young",
        "Name": "Rob Young",
        "CustomerGroupId": "30",
    }
    assert_has(customer, expected)
    world.sales.update("contacts", contact_id, {"firstname": "Robert"})
    assert world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account})["Name"] == "Robert Young"


def test_contact_person_that_is_not_sellable_stays_in_sales(world: World) -> None:
    """Contact persons (msdyn_sellable false) are not customers: no SCM row."""
    account = uid("CP-")
    world.sales.create("contacts", {"firstname": "Kim", "lastname": "Akers", "msdyn_contactpersonid": account})
    assert world.scm_row("CustomersV3", {"dataAreaId": USMF, "CustomerAccount": account}) is None


# ---- products -----------------------------------------------------------------------------------------------------


def test_released_product_lands_in_sales_as_a_draft_on_the_first_price_list(world: World) -> None:
    """A new SCM product is a Draft Sales product on the alphabetically first USD list ("Contoso USD")."""
    item = uid("TI-")
    world.scm.create(
        "ReleasedProductsV2",
        {
            "dataAreaId": USMF,
            "ItemNumber": item,
            "ProductName": "Test speaker",
            "SalesPrice": 75,
            "UnitCost": 30,
            "SalesUnitSymbol": "ea",
            "CurrencyCode": "USD",
            "ProductType": "Item",
        },
    )
    product = world.one(
        "products",
        f"msdyn_productnumber eq '{item}'",
        expand=["pricelevelid($select=name)", "defaultuomid($select=msdyn_symbol)"],
    )
    assert_has(
        product,
        {
            "name": "Test speaker",
            "statecode": 2,
            "price": 75.0,
            "currentcost": 30.0,
            "producttypecode": 1,
            "productnumber": f"usmf{item}",
            "msdyn_fieldserviceproducttype": 690970000,
        },
    )
    assert product["pricelevelid"]["name"] == "Contoso USD"
    assert product["defaultuomid"]["msdyn_symbol"] == "ea"


def test_product_update_in_scm_changes_sales_but_keeps_its_price_list(world: World) -> None:
    """Later SCM changes update the product; a price list chosen in Sales is left alone."""
    item = uid("TI-")
    world.scm.create(
        "ReleasedProductsV2",
        {
            "dataAreaId": USMF,
            "ItemNumber": item,
            "ProductName": "Sub",
            "SalesPrice": 10,
            "SalesUnitSymbol": "ea",
            "CurrencyCode": "USD",
        },
    )
    product = world.one("products", f"msdyn_productnumber eq '{item}'")
    other_list = world.sales.create(
        "pricelevels",
        {"name": f"Zulu {item}", "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')"},
    )
    world.sales.update("products", product["productid"], {"pricelevelid@odata.bind": f"/pricelevels({other_list})"})
    world.scm.update(
        "ReleasedProductsV2", {"dataAreaId": USMF, "ItemNumber": item}, {"SalesPrice": 12.5, "ProductType": "Service"}
    )
    product = world.one("products", f"msdyn_productnumber eq '{item}'")
    assert_has(
        product,
        {
            "price": 12.5,
            "producttypecode": 3,
            "msdyn_fieldserviceproducttype": 690970002,
            "_pricelevelid_value": other_list,
        },
    )


def test_product_in_a_currency_without_price_list_gets_one_created(world: World) -> None:
    """No active price list in the currency: "<ISO> price list" is created and the product lands on it;
    the next product in that currency reuses it."""
    currency = letters()
    world.scm.create("Currencies", {"CurrencyCode": currency, "Name": "Test money"})
    items = [uid("TC-"), uid("TC-")]
    for item in items:
        world.scm.create(
            "ReleasedProductsV2",
            {
                "dataAreaId": USMF,
                "ItemNumber": item,
                "SalesUnitSymbol": "ea",
                "CurrencyCode": currency,
                "SalesPrice": 1,
            },
        )
    lists = world.sales.query("pricelevels", filter=f"transactioncurrencyid/isocurrencycode eq '{currency}'")
    assert [row["name"] for row in lists] == [f"{currency} price list"]
    for item in items:
        assert (
            world.one("products", f"msdyn_productnumber eq '{item}'")["_pricelevelid_value"] == lists[0]["pricelevelid"]
        )


def test_product_lands_on_the_alphabetically_first_active_list_of_its_currency(world: World) -> None:
    """Among several active lists in the currency the first by name wins; inactive lists do not count."""
    currency = letters()
    world.scm.create("Currencies", {"CurrencyCode": currency, "Name": "Test money"})
    bind = f"/transactioncurrencies(isocurrencycode='{currency}')"
    world.sales.create("pricelevels", {"name": "Beta", "transactioncurrencyid@odata.bind": bind})
    alpha = world.sales.create("pricelevels", {"name": "Alpha", "transactioncurrencyid@odata.bind": bind})
    aardvark = world.sales.create("pricelevels", {"name": "Aardvark", "transactioncurrencyid@odata.bind": bind})
    world.sales.update("pricelevels", aardvark, {"statecode": 1})
    item = uid("TC-")
    world.scm.create(
        "ReleasedProductsV2",
        {"dataAreaId": USMF, "ItemNumber": item, "SalesUnitSymbol": "ea", "CurrencyCode": currency},
    )
    assert world.one("products", f"msdyn_productnumber eq '{item}'")["_pricelevelid_value"] == alpha


def test_products_do_not_sync_from_sales_to_scm(world: World) -> None:
    """The products map is one-way: a product made in Sales never reaches SCM."""
    number = uid("SO-")
    world.sales.create(
        "products",
        {
            "name": "Sales-only",
            "productnumber": number,
            "msdyn_productnumber": number,
            "msdyn_company@odata.bind": world.company_bind(),
        },
    )
    assert world.scm_row("ReleasedProductsV2", {"dataAreaId": USMF, "ItemNumber": number}) is None


# ---- quotations ----------------------------------------------------------------------------------------------------


def _account_bind(world: World, number: str) -> str:
    return world.ref("accounts", "accountnumber", number)


def _product_bind(world: World, number: str) -> str:
    return world.ref("products", "msdyn_productnumber", number)


def test_quote_with_lines_created_in_sales_arrives_in_scm_in_one_transaction(world: World) -> None:
    """A quote and its lines saved together in Sales reach SCM as one transaction: header first, then lines,
    keeping the Sales number (CRM-Q...) and the line sequence numbers."""
    before = int(world.scm_control.changes(after=0, limit=1)["latest"])
    quote_id = world.sales.create(
        "quotes",
        {
            "name": "Speakers for the lobby",
            "customerid_account@odata.bind": _account_bind(world, "US-001"),
            "quote_details": [
                {"productid@odata.bind": _product_bind(world, "D0001"), "quantity": 2},
                {"productid@odata.bind": _product_bind(world, "D0003"), "quantity": 1},
            ],
        },
    )
    number = world.sales.retrieve("quotes", quote_id, select=["msdyn_quotenumber"])["msdyn_quotenumber"]
    assert number.startswith("CRM-Q")
    header = world.scm_row("CDSSalesQuotationHeaders", {"dataAreaId": USMF, "SalesQuotationNumber": number})
    assert_has(
        header,
        {
            "RequestingCustomerAccountNumber": "US-001",
            "SalesQuotationName": "Speakers for the lobby",
            "SalesQuotationHeaderCreationMethod": "Dynamics365Sales",
        },
    )
    lines = world.scm.query(
        "CDSSalesQuotationLines",
        filter=f"SalesQuotationNumber eq '{number}'",
        orderby="LineCreationSequenceNumber",
        extra={"cross-company": "true"},
    )
    assert [
        (line["LineCreationSequenceNumber"], line["ItemNumber"], line["RequestedSalesQuantity"]) for line in lines
    ] == [(1, "D0001", 2.0), (2, "D0003", 1.0)]
    # The bridge's writes to SCM: one transaction, the header before its lines.
    written = [
        c
        for c in world.scm_control.changes(after=before, limit=500)["changes"]
        if c["identity"] == INTEGRATION_IDENTITY
        and c["operation"] == "create"
        and c["table"] in ("SalesQuotationHeaderV2", "SalesQuotationLine")
    ]
    assert [c["table"] for c in written] == ["SalesQuotationHeaderV2", "SalesQuotationLine", "SalesQuotationLine"]
    assert len({c["transaction_id"] for c in written}) == 1


def test_quote_and_line_changed_in_sales_change_scm(world: World) -> None:
    """Draft quote updates and line updates in Sales reach SCM; a line added later does too."""
    quote_id = world.sales.create(
        "quotes", {"name": "Draft", "customerid_account@odata.bind": _account_bind(world, "US-002")}
    )
    number = world.sales.retrieve("quotes", quote_id, select=["msdyn_quotenumber"])["msdyn_quotenumber"]
    line_id = world.sales.create(
        "quotedetails",
        {
            "quoteid@odata.bind": f"/quotes({quote_id})",
            "productid@odata.bind": _product_bind(world, "L0001"),
            "quantity": 1,
        },
    )
    world.sales.update("quotes", quote_id, {"name": "Draft II", "msdyn_totaldiscountpercentage": 5})
    world.sales.update("quotedetails", line_id, {"quantity": 6})
    header = world.scm_row("CDSSalesQuotationHeaders", {"dataAreaId": USMF, "SalesQuotationNumber": number})
    assert_has(header, {"SalesQuotationName": "Draft II", "TotalDiscountPercentage": 5.0})
    line = world.scm_row(
        "CDSSalesQuotationLines", {"dataAreaId": USMF, "SalesQuotationNumber": number, "LineCreationSequenceNumber": 1}
    )
    assert_has(line, {"ItemNumber": "L0001", "RequestedSalesQuantity": 6.0})


def _sales_quote(world: World, customer: str, *lines: tuple[str, int]) -> tuple[str, str]:
    """A Draft quote with lines made in Sales: (quoteid, msdyn_quotenumber)."""
    quote_id = world.sales.create(
        "quotes",
        {
            "name": "Lifecycle",
            "customerid_account@odata.bind": _account_bind(world, customer),
            "quote_details": [
                {"productid@odata.bind": _product_bind(world, item), "quantity": quantity} for item, quantity in lines
            ],
        },
    )
    return quote_id, world.sales.retrieve("quotes", quote_id, select=["msdyn_quotenumber"])["msdyn_quotenumber"]


def _quotation_status(world: World, number: str) -> str:
    row = world.scm_row("CDSSalesQuotationHeaders", {"dataAreaId": USMF, "SalesQuotationNumber": number})
    assert row is not None
    return str(row["SalesQuotationStatus"])


def test_quote_activated_in_sales_is_sent_in_scm(world: World) -> None:
    """Activating a Sales quote (Active / In progress) sends the SCM quotation (10.0.34+ lifecycle)."""
    quote_id, number = _sales_quote(world, "US-003", ("D0001", 1))
    assert _quotation_status(world, number) == "Created"
    world.sales.update("quotes", quote_id, {"statecode": 1, "statuscode": 2})
    assert _quotation_status(world, number) == "Sent"


def test_quote_closed_as_lost_in_sales_is_lost_in_scm(world: World) -> None:
    quote_id, number = _sales_quote(world, "US-003", ("D0003", 1))
    world.sales.update("quotes", quote_id, {"statecode": 1, "statuscode": 2})
    world.sales.action(
        "CloseQuote",
        {
            "QuoteClose": {
                "@odata.type": "Microsoft.Dynamics.CRM.quoteclose",
                "quoteid@odata.bind": f"/quotes({quote_id})",
                "subject": "Lost to a competitor",
            },
            "Status": 5,
        },
    )
    assert _quotation_status(world, number) == "Lost"


def test_quote_converted_to_an_order_in_sales_is_confirmed_in_scm(world: World) -> None:
    """ConvertQuoteToSalesOrder wins the quote (SCM: Confirmed) and the new order reaches SCM naming the
    quotation, in the same transaction (the order is created before the quotation is confirmed)."""
    quote_id, number = _sales_quote(world, "US-002", ("D0001", 2), ("L0001", 1))
    world.sales.update("quotes", quote_id, {"statecode": 1, "statuscode": 2})
    order = world.sales.action("ConvertQuoteToSalesOrder", {"QuoteId": quote_id, "ColumnSet": {"AllColumns": True}})
    assert _quotation_status(world, number) == "Confirmed"
    order_number = world.sales.retrieve("salesorders", order["salesorderid"], select=["msdyn_salesordernumber"])[
        "msdyn_salesordernumber"
    ]
    scm_order = world.scm_row("CDSSalesOrderHeaders", {"dataAreaId": USMF, "SalesOrderNumber": order_number})
    assert_has(scm_order, {"QuotationNumber": number, "OrderingCustomerAccountNumber": "US-002"})
    assert (
        len(
            world.scm.query(
                "CDSSalesOrderLinesV2", filter=f"SalesOrderNumber eq '{order_number}'", extra={"cross-company": "true"}
            )
        )
        == 2
    )


def test_quote_revised_in_sales_is_revised_in_scm_and_the_revision_is_a_new_quotation(world: World) -> None:
    """ReviseQuote closes the original as Revised (SCM: Revised) and its Draft copy, with a new number and the
    same lines, is a new Created quotation in SCM."""
    quote_id, number = _sales_quote(world, "US-001", ("D0004", 1))
    world.sales.update("quotes", quote_id, {"statecode": 1, "statuscode": 2})
    revision = world.sales.action("ReviseQuote", {"QuoteId": quote_id, "ColumnSet": {"AllColumns": True}})
    assert _quotation_status(world, number) == "Revised"
    revised_number = world.sales.retrieve("quotes", revision["quoteid"], select=["msdyn_quotenumber"])[
        "msdyn_quotenumber"
    ]
    assert revised_number != number
    assert _quotation_status(world, revised_number) == "Created"
    lines = world.scm.query(
        "CDSSalesQuotationLines", filter=f"SalesQuotationNumber eq '{revised_number}'", extra={"cross-company": "true"}
    )
    assert [line["ItemNumber"] for line in lines] == ["D0004"]


def test_quotation_created_and_changed_in_scm_appears_in_sales(world: World) -> None:
    """SCM quotations and lines arrive with SCM's number, prices and status; SCM changes follow."""
    header = world.scm.create(
        "CDSSalesQuotationHeaders",
        {"dataAreaId": USMF, "RequestingCustomerAccountNumber": "US-009", "SalesQuotationName": "From SCM"},
    )
    number = header["SalesQuotationNumber"]
    world.scm.create(
        "CDSSalesQuotationLines",
        {"dataAreaId": USMF, "SalesQuotationNumber": number, "ItemNumber": "D0004", "RequestedSalesQuantity": 2},
    )
    quote = world.one(
        "quotes", f"msdyn_quotenumber eq '{number}'", expand=["customerid_account($select=accountnumber)"]
    )
    assert quote is not None and quote["customerid_account"]["accountnumber"] == "US-009"
    assert (quote["name"], quote["msdyn_salesquotationstatus"]) == ("From SCM", 192350000)
    line = world.one("quotedetails", f"quoteid/msdyn_quotenumber eq '{number}'")
    assert_has(
        line,
        {
            "sequencenumber": 1,
            "quantity": 2.0,
            "priceperunit": 1630.0,
            "ispriceoverridden": True,
            "extendedamount": 3260.0,
        },
    )
    world.scm.update(
        "CDSSalesQuotationLines",
        {"dataAreaId": USMF, "SalesQuotationNumber": number, "LineCreationSequenceNumber": 1},
        {"RequestedSalesQuantity": 3},
    )
    world.scm.update(
        "CDSSalesQuotationHeaders",
        {"dataAreaId": USMF, "SalesQuotationNumber": number},
        {"SalesQuotationName": "From SCM II"},
    )
    assert world.one("quotes", f"msdyn_quotenumber eq '{number}'")["name"] == "From SCM II"
    assert world.one("quotedetails", f"quoteid/msdyn_quotenumber eq '{number}'")["quantity"] == 3.0


def test_quotation_confirmed_in_scm_links_the_generated_order_in_sales(world: World) -> None:
    """Confirming makes the SCM order: Sales gets the order and a Confirmed quote pointing at it."""
    header = world.scm.create(
        "CDSSalesQuotationHeaders", {"dataAreaId": USMF, "RequestingCustomerAccountNumber": "US-003"}
    )
    number = header["SalesQuotationNumber"]
    world.scm.create(
        "CDSSalesQuotationLines",
        {"dataAreaId": USMF, "SalesQuotationNumber": number, "ItemNumber": "L0001", "RequestedSalesQuantity": 4},
    )
    order = world.scm.action(
        "CDSSalesQuotationHeaders", {"dataAreaId": USMF, "SalesQuotationNumber": number}, "Confirm"
    )
    quote = world.one(
        "quotes",
        f"msdyn_quotenumber eq '{number}'",
        expand=["msdyn_generatedsalesordernumber($select=msdyn_salesordernumber)"],
    )
    assert quote["msdyn_salesquotationstatus"] == 192350002
    assert quote["msdyn_generatedsalesordernumber"]["msdyn_salesordernumber"] == order["SalesOrderNumber"]
    sales_order = world.one("salesorders", f"msdyn_salesordernumber eq '{order['SalesOrderNumber']}'")
    assert sales_order["msdyn_quotationnumber"] == number
    assert world.sales.count("salesorderdetails", f"_salesorderid_value eq {sales_order['salesorderid']}") == 1


def test_quote_for_a_person_customer_points_at_the_contact(world: World) -> None:
    """A quotation for a person customer binds Sales' polymorphic customer to the contact."""
    header = world.scm.create(
        "CDSSalesQuotationHeaders", {"dataAreaId": USMF, "RequestingCustomerAccountNumber": "US-027"}
    )
    quote = world.one(
        "quotes",
        f"msdyn_quotenumber eq '{header['SalesQuotationNumber']}'",
        expand=["customerid_contact($select=msdyn_contactpersonid)"],
    )
    assert quote["customerid_contact"]["msdyn_contactpersonid"] == "US-027"


# ---- orders and invoices ---------------------------------------------------------------------------------------


def _sales_order(world: World, number: str) -> dict[str, Any]:
    order = world.one("salesorders", f"msdyn_salesordernumber eq '{number}'")
    assert order is not None
    return order


def _sales_order_lines(world: World, order_id: str) -> list[dict[str, Any]]:
    return world.sales.query("salesorderdetails", filter=f"_salesorderid_value eq {order_id}", orderby="sequencenumber")


def test_order_with_lines_created_and_changed_in_sales_reaches_scm(world: World) -> None:
    """A Sales order keeps its CRM-SO number in SCM; a Sales line discount becomes SCM's per-unit discount
    plus a rounding charge; later Sales changes (header and line) follow without clearing SCM's defaults."""
    order_id = world.sales.create(
        "salesorders",
        {
            "name": "Sales-born order",
            "customerid_account@odata.bind": _account_bind(world, "US-002"),
            "order_details": [
                {"productid@odata.bind": _product_bind(world, "D0001"), "quantity": 3, "manualdiscountamount": 10}
            ],
        },
    )
    number = world.sales.retrieve("salesorders", order_id, select=["msdyn_salesordernumber"])["msdyn_salesordernumber"]
    assert number.startswith("CRM-SO")
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    header = world.scm_row("CDSSalesOrderHeaders", key)
    assert_has(
        header,
        {"OrderingCustomerAccountNumber": "US-002", "InvoiceCustomerAccountNumber": "US-002", "CurrencyCode": "USD"},
    )
    line = world.scm_row("CDSSalesOrderLinesV2", {**key, "LineCreationSequenceNumber": 1})
    assert_has(line, {"LineDiscountAmount": 3.33, "TotalChargesAmount": -0.01, "ShippingWarehouseId": "11"})
    world.sales.update(
        "salesorders", order_id, {"msdyn_customersorderreference": "PO-77", "requestdeliveryby": "2031-05-06"}
    )
    world.sales.update(
        "salesorderdetails", _sales_order_lines(world, order_id)[0]["salesorderdetailid"], {"quantity": 4}
    )
    header = world.scm_row("CDSSalesOrderHeaders", key)
    assert_has(
        header,
        {
            "CustomersOrderReference": "PO-77",
            "RequestedShippingDate": "2031-05-06T12:00:00Z",
            "InvoiceCustomerAccountNumber": "US-002",
        },
    )
    line = world.scm_row("CDSSalesOrderLinesV2", {**key, "LineCreationSequenceNumber": 1})
    assert_has(line, {"OrderedSalesQuantity": 4.0, "ShippingSiteId": "1"})


def test_order_created_and_changed_in_scm_appears_in_sales(world: World) -> None:
    """An SCM order and its lines arrive with SCM's number, prices, line status and processing status."""
    header = world.scm.create(
        "CDSSalesOrderHeaders",
        {"dataAreaId": USMF, "OrderingCustomerAccountNumber": "US-001", "CustomersOrderReference": "REF-1"},
    )
    number = header["SalesOrderNumber"]
    world.scm.create(
        "CDSSalesOrderLinesV2",
        {"dataAreaId": USMF, "SalesOrderNumber": number, "ItemNumber": "D0003", "OrderedSalesQuantity": 2},
    )
    order = _sales_order(world, number)
    assert_has(
        order,
        {
            "msdyn_customersorderreference": "REF-1",
            "msdyn_processingstatus": 192350000,
            "statecode": 0,
            "msdyn_isocurrencycode": "USD",
        },
    )
    [line] = _sales_order_lines(world, order["salesorderid"])
    assert_has(line, {"quantity": 2.0, "priceperunit": 120.0, "extendedamount": 240.0, "msdyn_linestatus": 192350001})
    world.scm.update(
        "CDSSalesOrderHeaders", {"dataAreaId": USMF, "SalesOrderNumber": number}, {"CustomersOrderReference": "REF-2"}
    )
    world.scm.update(
        "CDSSalesOrderLinesV2",
        {"dataAreaId": USMF, "SalesOrderNumber": number, "LineCreationSequenceNumber": 1},
        {"OrderedSalesQuantity": 5},
    )
    assert _sales_order(world, number)["msdyn_customersorderreference"] == "REF-2"
    assert _sales_order_lines(world, order["salesorderid"])[0]["quantity"] == 5.0


def _scm_order_with_lines(world: World, customer: str, *items: tuple[str, int]) -> str:
    number = world.scm.create("CDSSalesOrderHeaders", {"dataAreaId": USMF, "OrderingCustomerAccountNumber": customer})[
        "SalesOrderNumber"
    ]
    for item, quantity in items:
        world.scm.create(
            "CDSSalesOrderLinesV2",
            {"dataAreaId": USMF, "SalesOrderNumber": number, "ItemNumber": item, "OrderedSalesQuantity": quantity},
        )
    return number


def test_order_confirmed_in_scm_is_submitted_in_sales_with_scm_totals(world: World) -> None:
    """Confirmation: processing status Confirmed, order Submitted (sales-status map), SCM's totals and tax."""
    number = _scm_order_with_lines(world, "US-001", ("D0001", 2), ("D0003", 1))
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    world.scm.action("SalesOrderHeadersV2", key, "Confirm")
    scm_header = world.scm_row("SalesOrderHeadersV2", key)
    order = _sales_order(world, number)
    assert_has(
        order,
        {
            "msdyn_processingstatus": 192350001,
            "statecode": 1,
            "totalamount": scm_header["OrderTotalAmount"],
            "totaltax": scm_header["OrderTotalTaxAmount"],
        },
    )
    assert scm_header["OrderTotalTaxAmount"] > 0
    assert order["msdyn_confirmedshippingdate"] is not None


def test_order_delivered_and_invoiced_in_scm_is_fulfilled_then_invoiced_in_sales(world: World) -> None:
    """Delivery: Delivered / Fulfilled, lines Delivered. Invoicing: Invoiced / Invoiced, lines Invoiced,
    and the invoice with its lines appears in Sales, Billed, linked to the order, with SCM's totals."""
    number = _scm_order_with_lines(world, "US-001", ("D0001", 2), ("L0001", 3))
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    world.scm.action("SalesOrderHeadersV2", key, "Confirm")
    world.scm.action("SalesOrderHeadersV2", key, "PostPackingSlip")
    order = _sales_order(world, number)
    assert (order["msdyn_processingstatus"], order["statecode"]) == (192350004, 3)
    assert {line["msdyn_linestatus"] for line in _sales_order_lines(world, order["salesorderid"])} == {192350002}

    invoice = world.scm.action("SalesOrderHeadersV2", key, "PostInvoice")
    order = _sales_order(world, number)
    assert (order["msdyn_processingstatus"], order["statecode"], order["statuscode"]) == (192350005, 4, 100003)
    assert {line["msdyn_linestatus"] for line in _sales_order_lines(world, order["salesorderid"])} == {192350003}
    sales_invoice = world.one("invoices", f"msdyn_invoicenumber eq '{invoice['InvoiceNumber']}'")
    assert_has(
        sales_invoice,
        {
            "_salesorderid_value": order["salesorderid"],
            "statecode": 0,
            "statuscode": 4,
            "msdyn_totalamount": invoice["TotalInvoiceAmount"],
            "msdyn_totaltax": invoice["TotalTaxAmount"],
            "msdyn_ledgervoucher": invoice["LedgerVoucher"],
            "msdyn_ordertype": 192350000,
        },
    )
    lines = world.sales.query(
        "invoicedetails",
        filter=f"_invoiceid_value eq {sales_invoice['invoiceid']}",
        orderby="sequencenumber",
        expand=["productid($select=msdyn_productnumber)"],
    )
    assert [(line["sequencenumber"], line["productid"]["msdyn_productnumber"], line["quantity"]) for line in lines] == [
        (1, "D0001", 2.0),
        (2, "L0001", 3.0),
    ]
    scm_lines = world.scm.query(
        "SalesInvoiceLinesV2",
        filter=f"InvoiceNumber eq '{invoice['InvoiceNumber']}'",
        orderby="LineCreationSequenceNumber",
        extra={"cross-company": "true"},
    )
    assert [line["extendedamount"] for line in lines] == [line["LineAmount"] for line in scm_lines]
    assert [line["tax"] for line in lines] == [line["LineTotalTaxAmount"] for line in scm_lines]


def test_order_keeps_scm_totals_in_sales_through_every_step(world: World) -> None:
    """SCM prices everything (docs/reference/dual-write.md 15: "No: SCM prices"): after each line change,
    delivery and invoice Sales shows SCM's total, although mock Sales recomputes a header whenever its lines
    change (the bridge writes line updates before the header's)."""
    number = _scm_order_with_lines(world, "US-001", ("D0001", 1), ("D0003", 2))
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    for action in (None, "Confirm", "PostPackingSlip", "PostInvoice"):
        if action:
            world.scm.action("SalesOrderHeadersV2", key, action)
        scm_header = world.scm_row("SalesOrderHeadersV2", key)
        assert_has(
            _sales_order(world, number),
            {"totalamount": scm_header["OrderTotalAmount"], "totaltax": scm_header["OrderTotalTaxAmount"]},
        )


def test_quotation_keeps_scm_totals_in_sales(world: World) -> None:
    """A line added in SCM changes the quotation's totals; Sales shows SCM's, not its own recomputation."""
    number = world.scm.create(
        "CDSSalesQuotationHeaders", {"dataAreaId": USMF, "RequestingCustomerAccountNumber": "US-001"}
    )["SalesQuotationNumber"]
    world.scm.create(
        "CDSSalesQuotationLines",
        {"dataAreaId": USMF, "SalesQuotationNumber": number, "ItemNumber": "L0001", "RequestedSalesQuantity": 4},
    )
    scm_header = world.scm_row("SalesQuotationHeadersV2", {"dataAreaId": USMF, "SalesQuotationNumber": number})
    assert scm_header["QuotationTotalTaxAmount"] > 0
    assert_has(
        world.one("quotes", f"msdyn_quotenumber eq '{number}'"),
        {"totalamount": scm_header["QuotationTotalAmount"], "totaltax": scm_header["QuotationTotalTaxAmount"]},
    )


def test_partially_invoiced_order_keeps_its_sales_state(world: World) -> None:
    """Partly delivered then invoiced: processing status PartiallyInvoiced, the order stays Active."""
    number = _scm_order_with_lines(world, "US-001", ("D0003", 4))
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    world.scm.action("SalesOrderHeadersV2", key, "Confirm")
    world.scm.action(
        "SalesOrderHeadersV2", key, "PostPackingSlip", {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]}
    )
    assert (_sales_order(world, number)["msdyn_processingstatus"], _sales_order(world, number)["statecode"]) == (
        192350003,
        0,
    )
    world.scm.action("SalesOrderHeadersV2", key, "PostInvoice")
    order = _sales_order(world, number)
    assert (order["msdyn_processingstatus"], order["statecode"]) == (192350006, 0)


def test_order_cancelled_in_scm_is_cancelled_in_sales(world: World) -> None:
    number = _scm_order_with_lines(world, "US-001", ("D0003", 1))
    world.scm.action("SalesOrderHeadersV2", {"dataAreaId": USMF, "SalesOrderNumber": number}, "Cancel")
    order = _sales_order(world, number)
    assert (order["msdyn_processingstatus"], order["statecode"]) == (192350007, 2)


def _scm_store_update(world: World, entity: str, key: dict[str, Any], changes: dict[str, Any]) -> None:
    """Change a row of a read-only SCM entity as SCM itself would (a posting correction), live sync included."""
    runtime = world.stack.apps["scm"].extensions["sandbox"]
    with runtime.db.transaction():
        row = runtime.store.get(entity, key)
        assert row is not None
        runtime.store.update(entity, row, changes, identity="admin", via_api=False)


def test_invoice_changed_in_scm_changes_sales_and_never_syncs_back(world: World) -> None:
    """Invoices are SCM -> Sales only: SCM changes follow; a Sales change stays in Sales."""
    number = _scm_order_with_lines(world, "US-002", ("D0003", 1))
    key = {"dataAreaId": USMF, "SalesOrderNumber": number}
    for action in ("Confirm", "PostPackingSlip"):
        world.scm.action("SalesOrderHeadersV2", key, action)
    invoice = world.scm.action("SalesOrderHeadersV2", key, "PostInvoice")["InvoiceNumber"]
    _scm_store_update(
        world,
        "SalesInvoiceHeaderV2",
        {"dataAreaId": USMF, "InvoiceNumber": invoice},
        {"CustomersOrderReference": "Corrected"},
    )
    _scm_store_update(
        world,
        "SalesInvoiceLineV2",
        {"dataAreaId": USMF, "InvoiceNumber": invoice, "LineCreationSequenceNumber": 1},
        {"ProductName": "Renamed"},
    )
    sales_invoice = world.one("invoices", f"msdyn_invoicenumber eq '{invoice}'")
    assert sales_invoice["description"] == "Corrected"
    line = world.one("invoicedetails", f"_invoiceid_value eq {sales_invoice['invoiceid']}")
    assert line["description"] == "Renamed"
    world.sales.update("invoices", sales_invoice["invoiceid"], {"description": "Changed in Sales"})
    # invoice lines are SCM's: Sales refuses a user's change outright (only dual-write writes them)
    with pytest.raises(ServiceError) as refused:
        world.sales.update("invoicedetails", line["invoicedetailid"], {"description": "Changed in Sales"})
    assert (refused.value.status, refused.value.code) == (403, "0x80040220")
    assert world.one("invoicedetails", f"_invoiceid_value eq {sales_invoice['invoiceid']}")["description"] == "Renamed"
    assert (
        world.scm_row("SalesInvoiceHeadersV2", {"dataAreaId": USMF, "InvoiceNumber": invoice})[
            "CustomersOrderReference"
        ]
        == "Corrected"
    )


def test_free_text_invoice_never_syncs(world: World) -> None:
    """Invoices without a sales order fail the SCM filter (SalesOrderNumber ne '')."""
    invoice = uid("FTI-")
    runtime = world.stack.apps["scm"].extensions["sandbox"]
    with runtime.db.transaction():
        runtime.store.insert(
            "SalesInvoiceHeaderV2",
            {
                "dataAreaId": USMF,
                "InvoiceNumber": invoice,
                "InvoiceCustomerAccountNumber": "US-001",
                "TotalInvoiceAmount": Decimal("10"),
            },
            identity="admin",
        )
    assert world.one("invoices", f"msdyn_invoicenumber eq '{invoice}'") is None


# ---- failures: both sides or neither --------------------------------------------------------------------------------


def test_sales_line_for_a_product_scm_does_not_know_fails_in_both_apps(world: World) -> None:
    """A quote line for a Sales-only product cannot be looked up in SCM: the Sales save is refused with
    dual-write's reason, and neither side has the line."""
    number = uid("SX-")
    world.sales.create(
        "products",
        {
            "name": "Sales-only",
            "productnumber": number,
            "price": 5,
            "defaultuomid@odata.bind": "/uoms(msdyn_symbol='ea')",
        },
    )
    quote_id = world.sales.create(
        "quotes", {"name": "Bad line", "customerid_account@odata.bind": _account_bind(world, "US-001")}
    )
    quote_number = world.sales.retrieve("quotes", quote_id, select=["msdyn_quotenumber"])["msdyn_quotenumber"]
    with pytest.raises(ServiceError) as caught:
        world.sales.create(
            "quotedetails",
            {
                "quoteid@odata.bind": f"/quotes({quote_id})",
                "productid@odata.bind": f"/products(productnumber='{number}')",
                "quantity": 1,
            },
        )
    assert caught.value.status == 400
    assert caught.value.message.startswith(
        "Dual-write: CDS sales quotation lines (quotedetails): Unable to look up ProductNumber"
    )
    assert world.sales.count("quotedetails", f"_quoteid_value eq {quote_id}") == 0
    assert (
        world.scm.query(
            "CDSSalesQuotationLines",
            filter=f"SalesQuotationNumber eq '{quote_number}'",
            extra={"cross-company": "true"},
        )
        == []
    )


def test_scm_line_for_a_product_sales_does_not_know_fails_in_both_apps(world: World) -> None:
    """An SCM order line whose product is missing in Sales is refused in SCM (in SCM's error shape) with
    the Sales lookup failure; neither side has the line."""
    item = uid("TM-")
    world.scm.create(
        "ReleasedProductsV2",
        {
            "dataAreaId": USMF,
            "ItemNumber": item,
            "SalesUnitSymbol": "ea",
            "CurrencyCode": "USD",
            "ProductType": "Service",
        },
    )
    product = world.one("products", f"msdyn_productnumber eq '{item}'")
    world.sales.delete("products", product["productid"])  # products never sync back: SCM keeps it
    number = world.scm.create("CDSSalesOrderHeaders", {"dataAreaId": USMF, "OrderingCustomerAccountNumber": "US-001"})[
        "SalesOrderNumber"
    ]
    with pytest.raises(ServiceError) as caught:
        world.scm.create("CDSSalesOrderLinesV2", {"dataAreaId": USMF, "SalesOrderNumber": number, "ItemNumber": item})
    assert caught.value.status == 400
    assert "Dual-write" in caught.value.message and "product" in caught.value.message
    assert item in caught.value.message
    assert (
        world.scm.query(
            "CDSSalesOrderLinesV2", filter=f"SalesOrderNumber eq '{number}'", extra={"cross-company": "true"}
        )
        == []
    )
    assert world.sales.count("salesorderdetails", f"salesorderid/msdyn_salesordernumber eq '{number}'") == 0


def test_quote_for_a_prospect_fails_in_both_apps(world: World) -> None:
    """A prospect has no customer in SCM: the quote save is refused and names the missing account number."""
    prospect = world.sales.create("accounts", {"name": "Prospect Inc", "customertypecode": 8})
    with pytest.raises(ServiceError) as caught:
        world.sales.create(
            "quotes", {"name": "For a prospect", "customerid_account@odata.bind": f"/accounts({prospect})"}
        )
    assert "the account that customerid_account points at has no accountnumber" in caught.value.message
    assert world.one("quotes", "name eq 'For a prospect'") is None
