"""Deterministic demo data for mock Sales, shaped like the Contoso (USMF) demo company of SCM.

Same ``seed`` -> same rows and the same GUIDs: every GUID is a name-based UUID under a namespace drawn
from ``random.Random(seed)``, and Faker is re-seeded per section, so changing one count (``options``) does
not shift the identities of the other rows. Seeding twice is harmless: rows whose GUID exists are skipped.

``options``: ``accounts`` (customer accounts, default 7 = the SCM demo customers; more get generated
names), ``prospects`` (default 3), ``products`` (default 6 = the demo items + a service; more get
generated), ``leads`` (default 3).
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

from faker import Faker

from sandbox.odata.store import Row, Store
from sandbox.wellknown import DEFAULT_COMPANY, INTEGRATION_IDENTITY, SYSTEM_IDENTITY

SEED_IDENTITY = SYSTEM_IDENTITY

COMPANIES = [("usmf", "Contoso Entertainment System USA"), ("usrt", "Contoso Retail USA")]
CURRENCIES = [("USD", "US Dollar", "$", Decimal("1.0")), ("EUR", "Euro", "€", Decimal("0.92"))]
UNITS = [("ea", "Each", True), ("pcs", "Pieces", False), ("hr", "Hours", False), ("kg", "Kilograms", False)]
CUSTOMER_GROUPS = [("10", "Wholesales customers"), ("20", "Major customers"), ("30", "Retail customers")]
PAYMENT_TERMS = [
    ("Net10", "Net 10 days", 10),
    ("Net30", "Net 30 days", 30),
    ("Net45", "Net 45 days", 45),
    ("COD", "Cash on delivery", 0),
]
DELIVERY_TERMS = [("FOB", "Free on board"), ("CIF", "Cost, insurance and freight"), ("EXW", "Ex works")]
DELIVERY_MODES = [("10", "Truck"), ("20", "Air"), ("30", "Ground parcel")]
SITES = [("1", "Main site"), ("2", "Distribution site")]
WAREHOUSES = [("11", "Main warehouse", "1"), ("12", "Secondary warehouse", "1"), ("21", "Distribution warehouse", "2")]
#: SCM demo items (number, name, unit, price, cost, product type 1 item / 3 service)
PRODUCTS = [
    ("D0001", "Mid-Range Speaker", "ea", Decimal("250.00"), Decimal("120.00"), 1),
    ("D0003", "Standard Speaker", "ea", Decimal("150.00"), Decimal("70.00"), 1),
    ("D0004", "High End Speaker", "ea", Decimal("600.00"), Decimal("310.00"), 1),
    ("L0001", "Speaker Cable", "ea", Decimal("25.00"), Decimal("8.00"), 1),
    ("P0001", "Surround Sound Receiver", "ea", Decimal("1200.00"), Decimal("640.00"), 1),
    ("S0001", "Installation Service", "hr", Decimal("95.00"), Decimal("45.00"), 3),
]
#: SCM demo customers of usmf (account number, name, city, state, customer group)
CUSTOMERS = [
    ("US-001", "Contoso Retail San Diego", "San Diego", "CA", "20"),
    ("US-002", "Contoso Retail Los Angeles", "Los Angeles", "CA", "20"),
    ("US-003", "Forest Wholesales", "Seattle", "WA", "10"),
    ("US-004", "Cave Wholesales", "Portland", "OR", "10"),
    ("US-009", "Owl Wholesales", "Phoenix", "AZ", "10"),
    ("US-013", "Pelican Wholesales", "Miami", "FL", "10"),
    ("US-040", "Contoso Retail USA", "Redmond", "WA", "30"),
]
PRICE_LIST = "Contoso USD"


class _Seeder:
    def __init__(self, store: Store, seed: int) -> None:
        self.store = store
        self.seed = seed
        self.namespace = uuid.UUID(int=random.Random(seed).getrandbits(128), version=4)
        self.counts: dict[str, int] = {}

    def guid(self, *parts: Any) -> str:
        return str(uuid.uuid5(self.namespace, ":".join(str(p) for p in parts)))

    def faker(self, section: str) -> Faker:
        fake = Faker("en_US")
        fake.seed_instance(f"{self.seed}:{section}")
        return fake

    def put(self, entity: str, key_parts: tuple[Any, ...], values: Row) -> Row:
        """Insert a row with a stable GUID, or return the existing one."""
        key = f"{self.store.entity(entity).key[0]}"
        row_id = self.guid(entity, *key_parts)
        self.counts[entity] = self.counts.get(entity, 0) + 1
        existing = self.store.get(entity, {key: row_id})
        if existing is not None:
            return existing
        return self.store.insert(entity, {key: row_id, **values}, identity=SEED_IDENTITY, via_api=False)

    def link(self, entity: str, row: Row, changes: Row) -> Row:
        return self.store.update(entity, row, changes, identity=SEED_IDENTITY, via_api=False)


def seed(store: Store, seed: int = 1, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Write the demo data (as identity ``system``) and return how many seed rows each table holds."""
    options = dict(options or {})
    s = _Seeder(store, seed)

    currencies = {
        code: s.put(
            "transactioncurrency",
            (code,),
            {
                "isocurrencycode": code,
                "currencyname": name,
                "currencysymbol": symbol,
                "exchangerate": rate,
                "currencyprecision": 2,
            },
        )
        for code, name, symbol, rate in CURRENCIES
    }
    usd = currencies["USD"]["transactioncurrencyid"]
    organization = s.put("organization", ("org",), {"name": "Contoso", "_basecurrencyid_value": usd})
    companies = {
        code: s.put("cdm_company", (code,), {"cdm_companycode": code, "cdm_name": name}) for code, name in COMPANIES
    }
    # The root unit's company is the default company of rows its users create (dual-write defaulting).
    root_unit = s.put(
        "businessunit",
        ("root",),
        {
            "name": "Contoso",
            "_organizationid_value": organization["organizationid"],
            "_cdm_companyid_value": companies[DEFAULT_COMPANY]["cdm_companyid"],
        },
    )
    for code, _name in COMPANIES:
        s.put(
            "businessunit",
            (code,),
            {
                "name": code.upper(),
                "_parentbusinessunitid_value": root_unit["businessunitid"],
                "_organizationid_value": organization["organizationid"],
                "_cdm_companyid_value": companies[code]["cdm_companyid"],
            },
        )
    fake = s.faker("users")
    first, last = fake.first_name(), fake.last_name()
    s.put(
        "systemuser",
        ("admin",),
        {
            "firstname": first,
            "lastname": last,
            "domainname": f"{first.lower()}.{last.lower()}@contoso.example",
            "internalemailaddress": f"{first.lower()}.{last.lower()}@contoso.example",
            "title": "Sales manager",
            "_businessunitid_value": root_unit["businessunitid"],
            "azureactivedirectoryobjectid": s.guid("aad", "admin"),
        },
    )
    s.put(
        "systemuser",
        (INTEGRATION_IDENTITY,),
        {
            "firstname": "#",
            "lastname": "Dual-write",
            "domainname": INTEGRATION_IDENTITY,
            "applicationid": s.guid("app", INTEGRATION_IDENTITY),
            "_businessunitid_value": root_unit["businessunitid"],
        },
    )

    schedule = s.put(
        "uomschedule",
        ("default",),
        {"name": "Default Unit", "baseuomname": "ea", "description": "Units of the demo items"},
    )
    units: dict[str, Row] = {}
    for symbol, _label, is_base in UNITS:
        units[symbol] = s.put(
            "uom",
            (symbol,),
            {
                "name": symbol,
                "msdyn_symbol": symbol,
                "_uomscheduleid_value": schedule["uomscheduleid"],
                "quantity": Decimal(1),
                "isschedulebaseuom": is_base,
                "msdyn_isbaseunit": is_base,
                "msdyn_decimalprecision": 0 if symbol in ("ea", "pcs") else 2,
            },
        )
    for unit in units.values():
        if not unit.get("_baseuom_value"):
            s.link("uom", unit, {"_baseuom_value": units["ea"]["uomid"]})

    reference: dict[str, dict[str, dict[str, Row]]] = {}
    for code, _ in COMPANIES:
        company_id = companies[code]["cdm_companyid"]
        refs: dict[str, dict[str, Row]] = {name: {} for name in ("terms", "groups", "sites", "warehouses")}
        for name, description, days in PAYMENT_TERMS:
            refs["terms"][name] = s.put(
                "msdyn_paymentterm",
                (code, name),
                {
                    "msdyn_name": name,
                    "msdyn_description": description,
                    "msdyn_numberofdays": days,
                    "_msdyn_company_value": company_id,
                },
            )
        for group, description in CUSTOMER_GROUPS:
            refs["groups"][group] = s.put(
                "msdyn_customergroup",
                (code, group),
                {
                    "msdyn_groupid": group,
                    "msdyn_description": description,
                    "_msdyn_company_value": company_id,
                    "_msdyn_paymentterm_value": refs["terms"]["Net30"]["msdyn_paymenttermid"],
                },
            )
        for term, description in DELIVERY_TERMS:
            s.put(
                "msdyn_termsofdelivery",
                (code, term),
                {
                    "msdyn_termscode": term,
                    "msdyn_name": term,
                    "msdyn_description": description,
                    "_msdyn_company_value": company_id,
                },
            )
        for mode, description in DELIVERY_MODES:
            s.put(
                "msdyn_shipvia",
                (code, mode),
                {"msdyn_name": mode, "msdyn_description": description, "_msdyn_company_value": company_id},
            )
        for site, name in SITES:
            refs["sites"][site] = s.put(
                "msdyn_operationalsite",
                (code, site),
                {"msdyn_siteid": site, "msdyn_sitename": name, "_msdyn_company_value": company_id},
            )
        for warehouse, name, site in WAREHOUSES:
            refs["warehouses"][warehouse] = s.put(
                "msdyn_warehouse",
                (code, warehouse),
                {
                    "msdyn_warehouseidentifier": warehouse,
                    "msdyn_name": name,
                    "_msdyn_company_value": company_id,
                    "_msdyn_operationalsite_value": refs["sites"][site]["msdyn_operationalsiteid"],
                },
            )
        reference[code] = refs

    usmf = companies[DEFAULT_COMPANY]["cdm_companyid"]
    price_list = s.put(
        "pricelevel",
        (PRICE_LIST,),
        {"name": PRICE_LIST, "description": "Sales prices of the USMF demo items", "_transactioncurrencyid_value": usd},
    )
    product_specs = list(PRODUCTS[: _count(options, "products", len(PRODUCTS))])
    fake = s.faker("products")
    for index in range(len(product_specs), _count(options, "products", len(PRODUCTS))):
        price = Decimal(fake.random_int(20, 2000))
        product_specs.append(
            (
                f"D{1000 + index:04d}",
                fake.catch_phrase()[:60],
                "ea",
                price,
                (price * Decimal("0.55")).quantize(Decimal("0.01")),
                1,
            )
        )
    for number, name, unit_symbol, price, cost, product_type in product_specs:
        product = s.put(
            "product",
            (DEFAULT_COMPANY, number),
            {
                "name": name,
                "productnumber": number,
                "msdyn_productnumber": number,
                "msdyn_itemnumber": number,
                "_msdyn_company_value": usmf,
                "_defaultuomid_value": units[unit_symbol]["uomid"],
                "_defaultuomscheduleid_value": schedule["uomscheduleid"],
                "_pricelevelid_value": price_list["pricelevelid"],
                "_transactioncurrencyid_value": usd,
                "producttypecode": product_type,
                "msdyn_fieldserviceproducttype": 690970002 if product_type == 3 else 690970000,
                "quantitydecimal": 2 if product_type == 3 else 0,
                "price": price,
                "currentcost": cost,
                "standardcost": cost,
                "statecode": 0,
                "statuscode": 1,
            },
        )
        s.put(
            "productpricelevel",
            (PRICE_LIST, number, unit_symbol),
            {
                "_pricelevelid_value": price_list["pricelevelid"],
                "_productid_value": product["productid"],
                "_uomid_value": units[unit_symbol]["uomid"],
                "amount": price,
                "pricingmethodcode": 1,
                "quantitysellingcode": 1,
            },
        )

    customers = list(CUSTOMERS[: _count(options, "accounts", len(CUSTOMERS))])
    fake = s.faker("accounts")
    for index in range(len(customers), _count(options, "accounts", len(CUSTOMERS))):
        customers.append(
            (
                f"US-{100 + index:03d}",
                fake.company(),
                fake.city(),
                fake.state_abbr(),
                fake.random_element(["10", "20", "30"]),
            )
        )
    refs = reference[DEFAULT_COMPANY]
    fake = s.faker("customers")
    for number, name, city, state, group in customers:
        account = s.put(
            "account",
            (DEFAULT_COMPANY, number),
            {
                "name": name,
                "accountnumber": number,
                "customertypecode": 3,
                "_msdyn_company_value": usmf,
                "_transactioncurrencyid_value": usd,
                "_defaultpricelevelid_value": price_list["pricelevelid"],
                "_msdyn_customergroupid_value": refs["groups"][group]["msdyn_customergroupid"],
                "_msdyn_paymentterm_value": refs["terms"]["Net30"]["msdyn_paymenttermid"],
                "msdyn_onholdstatus": 806380000,
                "creditlimit": Decimal(fake.random_int(5, 50) * 10000),
                "msdyn_creditlimitismandatory": False,
                "msdyn_onetimecustomer": False,
                "telephone1": fake.numerify("###-555-####"),
                "emailaddress1": f"orders@{_domain(name)}",
                "websiteurl": f"https://www.{_domain(name)}",
                "address1_line1": fake.street_address(),
                "address1_city": city,
                "address1_stateorprovince": state,
                "address1_postalcode": fake.postcode(),
                "address1_country": "USA",
                "address1_addresstypecode": 2,
            },
        )
        _primary_contact(s, fake, account, ("customer", number))

    fake = s.faker("prospects")
    for index in range(_count(options, "prospects", 3)):
        name = fake.company()
        prospect = s.put(
            "account",
            ("prospect", index),
            {
                "name": name,
                "customertypecode": 8,
                "_transactioncurrencyid_value": usd,
                "telephone1": fake.numerify("###-555-####"),
                "websiteurl": f"https://www.{_domain(name)}",
                "address1_city": fake.city(),
                "address1_stateorprovince": fake.state_abbr(),
                "address1_country": "USA",
            },
        )
        _primary_contact(s, fake, prospect, ("prospect", index))

    fake = s.faker("leads")
    for index in range(_count(options, "leads", 3)):
        first, last, company = fake.first_name(), fake.last_name(), fake.company()
        s.put(
            "lead",
            (index,),
            {
                "subject": f"Interested in {fake.random_element([p[1] for p in PRODUCTS])}s",
                "firstname": first,
                "lastname": last,
                "companyname": company,
                "jobtitle": fake.job()[:50],
                "emailaddress1": f"{first.lower()}.{last.lower()}@{_domain(company)}",
                "telephone1": fake.numerify("###-555-####"),
                "address1_city": fake.city(),
                "address1_stateorprovince": fake.state_abbr(),
                "address1_country": "USA",
                "estimatedamount": Decimal(fake.random_int(5, 100) * 1000),
                "_transactioncurrencyid_value": usd,
                "leadsourcecode": fake.random_element([1, 7, 8, 9]),
                "leadqualitycode": fake.random_element([1, 2, 3]),
            },
        )
    return dict(sorted(s.counts.items()))


def _primary_contact(s: _Seeder, fake: Faker, account: Row, key: tuple[Any, ...]) -> Row:
    first, last = fake.first_name(), fake.last_name()
    contact = s.put(
        "contact",
        key,
        {
            "firstname": first,
            "lastname": last,
            "jobtitle": fake.job()[:50],
            "emailaddress1": f"{first.lower()}.{last.lower()}@{_domain(account['name'])}",
            "telephone1": fake.numerify("###-555-####"),
            "_parentcustomerid_value": account["accountid"],
            "_parentcustomerid_type": "account",
            "_transactioncurrencyid_value": account.get("_transactioncurrencyid_value"),
            "address1_city": account.get("address1_city"),
            "address1_stateorprovince": account.get("address1_stateorprovince"),
            "address1_country": account.get("address1_country"),
        },
    )
    if not account.get("_primarycontactid_value"):
        s.link("account", account, {"_primarycontactid_value": contact["contactid"]})
    return contact


def _domain(name: str) -> str:
    cleaned = "".join(ch for ch in name.lower() if ch.isalnum())
    return f"{cleaned[:30] or 'example'}.example"


def _count(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


__all__ = ["seed", "COMPANIES", "PRODUCTS", "CUSTOMERS", "PRICE_LIST"]
