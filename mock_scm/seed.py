"""The default SCM data: Contoso-style legal entities, reference data, products with on-hand, customers.

Deterministic: the fixed demo rows (``docs/reference/fno-odata.md`` section 14) come first, then rows generated from
``random.Random(seed)`` and a Faker seeded with ``seed``, so the same seed (and Faker version) always gives
the same data. Everything is written through the store as ``system`` (rules applied, changes recorded), into
an empty database. Number sequences continue after the seeded numbers (US-041 is the next usmf customer).

``options``: ``customers`` = extra generated customers per company (default 0; usrt and demf always get
their own generated customers), ``products`` = extra generated products per company (default 0),
``documents`` = sales orders per company run through the whole process (confirmed, delivered, invoiced;
default 0), ``companies`` = which legal entities to seed (default all three).

Scenario customers in usmf: US-013 Pelican Wholesales is on hold (All); US-004 Cave Wholesales has a
mandatory credit limit of 1,000.00; US-027 is a person; DE-001 Contoso Europe buys in EUR.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from faker import Faker

from mock_scm import lookups, orders
from mock_scm.schema import (
    CustVendorBlocked,
    DirPartyType,
    EcoResProductType,
    NoYes,
    PaymTermType,
    UnitOfMeasureClass,
    UnitOfMeasureSystemOfUnits,
)
from mock_scm.settings import ScmSettings
from mock_scm.values import CENT, NO, YES
from sandbox.odata.store import Row, Store
from sandbox.wellknown import DEFAULT_COMPANY, SYSTEM_IDENTITY

IDENTITY = SYSTEM_IDENTITY

# (id, name, currency, country, language)
COMPANIES = [
    ("usmf", "Contoso Entertainment System USA", "USD", "USA", "en-us"),
    ("usrt", "Contoso Retail USA", "USD", "USA", "en-us"),
    ("demf", "Contoso Entertainment System Germany", "EUR", "DEU", "de"),
]
CURRENCIES = [("USD", "US Dollar", "$"), ("EUR", "Euro", "€"), ("GBP", "Pound sterling", "£")]
# (symbol, description, class, decimals, system of units)
UNITS = [
    ("ea", "Each", "Quantity", 0, "None"),
    ("pcs", "Pieces", "Quantity", 0, "None"),
    ("hr", "Hours", "Time", 2, "None"),
    ("kg", "Kilograms", "Mass", 3, "Metric"),
]
# (name, description, days, type, cash)
PAYMENT_TERMS = [
    ("Net10", "Net 10 days", 10, "Net", False),
    ("Net30", "Net 30 days", 30, "Net", False),
    ("Net45", "Net 45 days", 45, "Net", False),
    ("COD", "Cash on delivery", 0, "COD", True),
]
CUSTOMER_GROUPS = [
    ("10", "Wholesales customers", "Net30"),
    ("20", "Major customers", "Net30"),
    ("30", "Retail customers", "Net10"),
]
DELIVERY_TERMS = [("FOB", "Free on board"), ("CIF", "Cost, insurance and freight")]
DELIVERY_MODES = [("10", "Truck"), ("20", "Air")]
SALES_TAX_GROUPS = [("CA", "California sales tax"), ("WA", "Washington sales tax"), ("EXEMPT", "Tax exempt")]
PAYMENT_METHODS = [("CHECK", "Check"), ("ELECTRONIC", "Electronic payment")]
PRICE_GROUPS = [("RETAIL", "Retail prices"), ("WHOLESALE", "Wholesale prices")]
ORIGINS = [("CRM", "Dynamics 365 Sales"), ("PHONE", "Phone order")]
SITES = [("1", "Main site"), ("2", "West site")]
WAREHOUSES = [("11", "Main warehouse", "1"), ("12", "Secondary warehouse", "1"), ("21", "West warehouse", "2")]
# (item, name, type, unit, price, cost, on-hand by warehouse)
PRODUCTS: list[tuple[str, str, str, str, str, str, dict[str, int]]] = [
    ("D0001", "Mid-Range Speaker", "Item", "ea", "219.00", "130.00", {"11": 100, "12": 40}),
    ("D0003", "Standard Speaker", "Item", "ea", "120.00", "70.00", {"11": 150, "12": 60}),
    ("D0004", "High End Speaker", "Item", "ea", "1630.00", "980.00", {"11": 25, "12": 10}),
    ("L0001", "Wireless Speaker", "Item", "ea", "149.00", "85.00", {"11": 200, "12": 80}),
    ("P0001", "Surround Sound Receiver", "Item", "ea", "899.00", "540.00", {"11": 30, "12": 15}),
    ("S0001", "Installation service", "Service", "hr", "95.00", "40.00", {}),
]
# usmf demo customers: (account, name, group, street, city, state, zip, extra fields)
USMF_CUSTOMERS: list[tuple[str, str, str, str, str, str, str, dict[str, Any]]] = [
    ("US-001", "Contoso Retail San Diego", "30", "123 Coffee Street", "San Diego", "CA", "92101", {}),
    ("US-002", "Contoso Retail Los Angeles", "30", "456 Peach Road", "Los Angeles", "CA", "90071", {}),
    ("US-003", "Forest Wholesales", "10", "789 Moss Bay Blvd", "Kirkland", "WA", "98033", {"SalesTaxGroup": "WA"}),
    (
        "US-004",
        "Cave Wholesales",
        "10",
        "10 Grotto Lane",
        "Redmond",
        "WA",
        "98052",
        {"SalesTaxGroup": "WA", "CreditLimit": Decimal("1000"), "CreditLimitIsMandatory": NoYes.members["Yes"]},
    ),
    ("US-009", "Owl Wholesales", "10", "77 Night Avenue", "Seattle", "WA", "98101", {"SalesTaxGroup": "WA"}),
    (
        "US-013",
        "Pelican Wholesales",
        "10",
        "5 Harbor Drive",
        "San Francisco",
        "CA",
        "94105",
        {"OnHoldStatus": CustVendorBlocked.members["All"]},
    ),
    (
        "US-027",
        "Jodi Christiansen",
        "30",
        "12 Elm Street",
        "Sacramento",
        "CA",
        "95814",
        {"PartyType": DirPartyType.members["Person"], "PersonFirstName": "Jodi", "PersonLastName": "Christiansen"},
    ),
    (
        "US-040",
        "Contoso Retail USA",
        "20",
        "1 Contoso Way",
        "Redmond",
        "WA",
        "98052",
        {"SalesTaxGroup": "WA", "CreditLimit": Decimal("500000")},
    ),
    (
        "DE-001",
        "Contoso Europe",
        "20",
        "Bahnhofstrasse 1",
        "Berlin",
        "",
        "10115",
        {
            "SalesCurrencyCode": "EUR",
            "AddressCountryRegionId": "DEU",
            "AddressCountryRegionISOCode": "DE",
            "SalesTaxGroup": "EXEMPT",
            "LanguageId": "de",
        },
    ),
]
GENERATED_CUSTOMERS = {"usmf": 0, "usrt": 5, "demf": 3}
PRODUCT_WORDS = ["Compact", "Studio", "Outdoor", "Portable", "Premium", "Classic", "Smart", "Micro"]
PRODUCT_NOUNS = ["Subwoofer", "Soundbar", "Amplifier", "Headphones", "Turntable", "Tweeter", "Mixer"]


class _Seeder:
    def __init__(self, store: Store, settings: ScmSettings, seed: int, options: dict[str, Any]) -> None:
        self.store = store
        self.settings = settings
        self.rng = random.Random(seed)
        self.options = options
        self.fakers = {"en": Faker("en_US"), "de": Faker("de_DE")}
        for index, faker in enumerate(self.fakers.values()):
            faker.seed_instance(seed * 10 + index)
        self.counts: dict[str, int] = {}

    def add(self, entity: str, values: dict[str, Any]) -> Row:
        row = self.store.insert(entity, values, identity=IDENTITY, via_api=False)
        entity_set = self.store.model.entities[entity].entity_set
        self.counts[entity_set] = self.counts.get(entity_set, 0) + 1
        return row

    # ---- shared -------------------------------------------------------------------------------------------
    def shared(self, companies: list[tuple[str, str, str, str, str]]) -> None:
        for code, name, symbol in CURRENCIES:
            self.add("Currency", {"CurrencyCode": code, "Name": name, "Symbol": symbol})
        for symbol, description, unit_class, decimals, system in UNITS:
            self.add(
                "UnitOfMeasure",
                {
                    "UnitSymbol": symbol,
                    "UnitDescription": description,
                    "UnitClass": UnitOfMeasureClass.members[unit_class],
                    "DecimalPrecision": decimals,
                    "IsBaseUnit": NoYes.members["Yes"],
                    "IsSystemUnit": NoYes.members["Yes"],
                    "SystemOfUnits": UnitOfMeasureSystemOfUnits.members[system],
                },
            )
        for company, name, currency, country, language in companies:
            self.add(
                "LegalEntity",
                {
                    "LegalEntityId": company,
                    "Name": name,
                    "NameAlias": company.upper(),
                    "AccountingCurrencyCode": currency,
                    "AddressCountryRegionId": country,
                    "LanguageId": language,
                },
            )

    # ---- per company ----------------------------------------------------------------------------------------
    def company(self, company: str, currency: str, country: str, language: str) -> None:
        area = {"dataAreaId": company}
        for name, description, days, kind, cash in PAYMENT_TERMS:
            self.add(
                "PaymentTerm",
                {
                    **area,
                    "Name": name,
                    "Description": description,
                    "NumberOfDays": days,
                    "PaymentMethodType": PaymTermType.members[kind],
                    "IsCashPayment": NoYes.members["Yes" if cash else "No"],
                    "IsDefaultPaymentTerm": NoYes.members["Yes" if name == "Net30" else "No"],
                },
            )
        for group, description, terms in CUSTOMER_GROUPS:
            self.add(
                "CustomerGroup", {**area, "CustomerGroupId": group, "Description": description, "PaymentTermId": terms}
            )
        for code, description in DELIVERY_TERMS:
            self.add("DeliveryTerm", {**area, "TermsCode": code, "TermsDescription": description})
        for code, description in DELIVERY_MODES:
            self.add("DeliveryMode", {**area, "ModeCode": code, "ModeDescription": description})
        for code, description in SALES_TAX_GROUPS:
            self.add("SalesTaxGroup", {**area, "TaxGroupCode": code, "Description": description})
        for code, description in PAYMENT_METHODS:
            self.add("CustomerPaymentMethod", {**area, "Name": code, "Description": description})
        for code, description in PRICE_GROUPS:
            self.add("PriceCustomerGroup", {**area, "GroupCode": code, "Name": description})
        for code, description in ORIGINS:
            self.add("SalesOrderOrigin", {**area, "OriginCode": code, "Description": description})
        for site, name in SITES:
            self.add("OperationalSite", {**area, "SiteId": site, "SiteName": name})
        for warehouse, name, site in WAREHOUSES:
            self.add("Warehouse", {**area, "WarehouseId": warehouse, "WarehouseName": name, "OperationalSiteId": site})
        self.products(company, currency)
        self.customers(company, currency, country, language)

    def products(self, company: str, currency: str) -> None:
        area = {"dataAreaId": company}
        items = list(PRODUCTS)
        for index in range(int(self.options.get("products", 0))):
            name = f"{self.rng.choice(PRODUCT_WORDS)} {self.rng.choice(PRODUCT_NOUNS)}"
            list_price = Decimal(self.rng.randrange(2000, 200000)) / 100
            stock = {"11": self.rng.randrange(0, 300), "12": self.rng.randrange(0, 100)}
            items.append(
                (
                    f"G{index + 1:04d}",
                    name,
                    "Item",
                    "ea",
                    str(list_price),
                    str((list_price * Decimal("0.6")).quantize(CENT)),
                    stock,
                )
            )
        for item, name, kind, unit, price, cost, stock in items:
            self.add(
                "ReleasedProductV2",
                {
                    **area,
                    "ItemNumber": item,
                    "ProductNumber": item,
                    "ProductName": name,
                    "SearchName": name[:20],
                    "ProductDescription": name,
                    "ProductType": EcoResProductType.members[kind],
                    "ItemModelGroupId": "FIFO" if kind == "Item" else "SRV",
                    "ProductGroupId": "Audio" if kind == "Item" else "Services",
                    "InventoryUnitSymbol": unit,
                    "SalesUnitSymbol": unit,
                    "PurchaseUnitSymbol": unit,
                    "SalesPrice": Decimal(price),
                    "UnitCost": Decimal(cost),
                    "CurrencyCode": currency,
                    "DefaultSalesSiteId": "1" if kind == "Item" else "",
                    "DefaultSalesWarehouseId": "11" if kind == "Item" else "",
                },
            )
            for warehouse, quantity in stock.items():
                site = next(s for w, _, s in WAREHOUSES if w == warehouse)
                self.add(
                    "WarehouseOnHandV2",
                    {
                        **area,
                        "ItemNumber": item,
                        "InventorySiteId": site,
                        "InventoryWarehouseId": warehouse,
                        "OnHandQuantity": Decimal(quantity),
                    },
                )

    def customers(self, company: str, currency: str, country: str, language: str) -> None:
        area = {"dataAreaId": company}
        iso = {"USA": "US", "DEU": "DE"}.get(country, "")
        defaults = {
            **area,
            "SalesCurrencyCode": currency,
            "AddressCountryRegionId": country,
            "AddressCountryRegionISOCode": iso,
            "LanguageId": language,
            "SiteId": "1",
            "WarehouseId": "11",
            "DeliveryMode": "10",
            "DeliveryTerms": "FOB",
            "PaymentMethod": "CHECK",
        }
        if company == DEFAULT_COMPANY:
            for account, name, group, street, city, state, zip_code, extra in USMF_CUSTOMERS:
                is_person = extra.get("PartyType") == DirPartyType.members["Person"]
                self.add(
                    "CustomerV3",
                    {
                        **defaults,
                        "CustomerAccount": account,
                        "CustomerGroupId": group,
                        "OrganizationName": "" if is_person else name,
                        "Name": name,
                        "AddressStreet": street,
                        "AddressCity": city,
                        "AddressState": state,
                        "AddressZipCode": zip_code,
                        "SalesTaxGroup": "CA",
                        "PrimaryContactEmail": f"contact@{name.lower().replace(' ', '')}.example.com",
                        **extra,
                    },
                )
            for account in ("US-001", "US-002", "US-003", "US-004"):
                self.contact(company, account)
        faker = self.fakers["de" if language == "de" else "en"]
        count = GENERATED_CUSTOMERS.get(company, 0) + int(self.options.get("customers", 0))
        for _ in range(count):
            name = faker.company()
            self.add(
                "CustomerV3",
                {
                    **defaults,
                    "CustomerGroupId": self.rng.choice(["10", "20", "30"]),
                    "OrganizationName": name,
                    "AddressStreet": faker.street_address(),
                    "AddressCity": faker.city(),
                    "AddressZipCode": faker.postcode(),
                    "AddressState": faker.state_abbr() if iso == "US" else "",
                    "PrimaryContactEmail": faker.company_email(),
                    "PrimaryContactPhone": faker.phone_number(),
                    "CreditLimit": Decimal(self.rng.choice([0, 10000, 25000, 50000])),
                },
            )

    def contact(self, company: str, account: str) -> None:
        faker = self.fakers["en"]
        first, last = faker.first_name(), faker.last_name()
        contact = self.add(
            "ContactPersonV2",
            {
                "dataAreaId": company,
                "CustomerAccount": account,
                "FirstName": first,
                "LastName": last,
                "JobTitle": faker.job()[:60],
                "PrimaryContactEmail": f"{first}.{last}@example.com".lower(),
            },
        )
        cust = lookups.customer(self.store, company, account)
        assert cust is not None
        self.store.update(
            "CustomerV3", cust, {"ContactPersonId": contact["ContactPersonId"]}, identity=IDENTITY, via_api=False
        )

    # ---- documents --------------------------------------------------------------------------------------------
    def documents(self, company: str, count: int) -> None:
        """Sales orders run through confirmation, delivery and invoicing (history for demos)."""
        customers = [
            c
            for c in self.store.find("CustomerV3", {"dataAreaId": company})
            if c["OnHoldStatus"] == CustVendorBlocked.members["No"] and c["CreditLimitIsMandatory"] == NO
        ]
        items = [
            r["ItemNumber"]
            for r in self.store.find("ReleasedProductV2", {"dataAreaId": company})
            if r["IsStockedProduct"] == YES
        ]
        for _ in range(count):
            cust = self.rng.choice(customers)
            header = self.add(
                "SalesOrderHeaderV2", {"dataAreaId": company, "OrderingCustomerAccountNumber": cust["CustomerAccount"]}
            )
            for item in self.rng.sample(items, k=min(len(items), self.rng.randint(1, 3))):
                self.add(
                    "SalesOrderLine",
                    {
                        "dataAreaId": company,
                        "SalesOrderNumber": header["SalesOrderNumber"],
                        "ItemNumber": item,
                        "OrderedSalesQuantity": Decimal(self.rng.randint(1, 3)),
                    },
                )
            header = lookups.order_header(self.store, company, header["SalesOrderNumber"]) or header
            header = orders.confirm_order(self.store, self.settings, header, IDENTITY)
            header = orders.post_packing_slip(self.store, self.settings, header, IDENTITY)
            orders.post_invoice(self.store, self.settings, header, IDENTITY)
            self.counts["SalesInvoiceHeadersV2"] = self.counts.get("SalesInvoiceHeadersV2", 0) + 1


def seed(
    store: Store, seed: int = 1, options: dict[str, Any] | None = None, *, settings: ScmSettings
) -> dict[str, int]:
    """Fill an empty SCM database whose rules run with ``settings``; answers the number of rows made per entity set."""
    options = dict(options or {})
    wanted = options.get("companies")
    companies = [c for c in COMPANIES if wanted is None or c[0] in wanted]
    seeder = _Seeder(store, settings, seed, options)
    with store.db.transaction():
        seeder.shared(companies)
        for company, _name, currency, country, language in companies:
            seeder.company(company, currency, country, language)
        for company, *_ in companies:
            seeder.documents(company, int(options.get("documents", 0)))
    return dict(sorted(seeder.counts.items()))
