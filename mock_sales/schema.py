"""The Dataverse tables mock Sales serves: lead-to-cash, dual-write reference data and the WhoAmI trio.

Everything here is declaration: the shared OData layer derives SQL tables, ``$metadata``,
``EntityDefinitions``, validation and serialization from it. Conventions (the HTTP layer relies on them):

- entity name = logical name, entity set = plural, key = ``<logical name>id`` (activities: ``activityid``);
- a lookup is a ``_<nav>_value`` GUID column (``lookup=<nav>``) plus an FK-owning navigation ``<nav>``;
  polymorphic customer lookups add a hidden ``_<nav>_type`` column and one navigation per target type;
- choices are ``Edm.Int32`` with an :class:`EnumType` so formatted values can be rendered;
- money is ``Edm.Decimal`` scale 4 with a read-only ``_base`` twin and ``_transactioncurrencyid_value``.

The state models (:data:`STATE_MODELS`) live here too, because both the enums and the rules in
:mod:`mock_sales.rules` are derived from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.odata.dataverse.entitydefs import REQUIRED_LEVELS
from sandbox.odata.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
    DOUBLE,
    GUID,
    INT32,
    INT64,
    STRING,
    EntityType,
    EnumType,
    Model,
    NavigationProperty,
    Property,
    new_guid,
)

NAMESPACE = "Microsoft.Dynamics.CRM"

#: msdyn_ordertype value dual-write maps filter on (quotes, orders, invoices synced with SCM)
ITEM_BASED_ORDER_TYPE = 192350000


# ---- state models -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateModel:
    """The statecode/statuscode pairs of one table (``docs/reference/dataverse-web-api.md`` section 14).

    ``states`` maps statecode -> (label, default statuscode); ``statuses`` maps statuscode -> (label,
    owning statecode); ``initial`` is the statecode of a new row.
    """

    states: dict[int, tuple[str, int]]
    statuses: dict[int, tuple[str, int]]
    initial: int = 0

    def default_status(self, state: int) -> int:
        return self.states[state][1]

    def state_of(self, status: int) -> int | None:
        entry = self.statuses.get(status)
        return entry[1] if entry else None

    def state_label(self, state: int | None) -> str:
        """The label of ``state`` (the number itself when the model has no such state)."""
        return self.states[state][0] if state in self.states else str(state)


_ACTIVE_INACTIVE = StateModel({0: ("Active", 1), 1: ("Inactive", 2)}, {1: ("Active", 0), 2: ("Inactive", 1)})
_ACTIVITY = StateModel(
    {0: ("Open", 1), 1: ("Completed", 2), 2: ("Canceled", 3)}, {1: ("Open", 0), 2: ("Completed", 1), 3: ("Canceled", 2)}
)

#: statecode/statuscode pairs per table. Labels must be unique inside one table's statuses because an
#: EnumType maps label -> value, so the duplicated real labels are disambiguated (quote 2, invoice 3).
STATE_MODELS: dict[str, StateModel] = {
    "lead": StateModel(
        {0: ("Open", 1), 1: ("Qualified", 3), 2: ("Disqualified", 4)},
        {
            1: ("New", 0),
            2: ("Contacted", 0),
            3: ("Qualified", 1),
            4: ("Lost", 2),
            5: ("Cannot Contact", 2),
            6: ("No Longer Interested", 2),
            7: ("Canceled", 2),
        },
    ),
    "opportunity": StateModel(
        {0: ("Open", 1), 1: ("Won", 3), 2: ("Lost", 4)},
        {1: ("In Progress", 0), 2: ("On Hold", 0), 3: ("Won", 1), 4: ("Canceled", 2), 5: ("Out-Sold", 2)},
    ),
    "quote": StateModel(
        {0: ("Draft", 1), 1: ("Active", 2), 2: ("Won", 4), 3: ("Closed", 7)},
        {
            1: ("In Progress", 0),
            2: ("In Progress (Active)", 1),
            3: ("Open", 1),
            4: ("Won", 2),
            5: ("Lost", 3),
            6: ("Canceled", 3),
            7: ("Revised", 3),
        },
    ),
    "salesorder": StateModel(
        {0: ("Active", 1), 1: ("Submitted", 3), 2: ("Canceled", 4), 3: ("Fulfilled", 100001), 4: ("Invoiced", 100003)},
        {
            1: ("New", 0),
            2: ("Pending", 0),
            3: ("In Progress", 1),
            4: ("No Money", 2),
            100001: ("Complete", 3),
            100002: ("Partial", 3),
            100003: ("Invoiced", 4),
        },
    ),
    # The reference gives 100003 as the default reason of the deprecated Closed state although 100003
    # belongs to Canceled; 3 keeps the pair consistent.
    "invoice": StateModel(
        {0: ("Active", 1), 1: ("Closed (deprecated)", 3), 2: ("Paid", 100001), 3: ("Canceled", 100003)},
        {
            1: ("New", 0),
            2: ("Partially Shipped", 0),
            4: ("Billed", 0),
            5: ("Booked (applies to services)", 0),
            6: ("Installed (applies to services)", 0),
            3: ("Canceled (deprecated)", 1),
            7: ("Paid in Full (deprecated)", 1),
            100001: ("Complete", 2),
            100002: ("Partial", 2),
            100003: ("Canceled", 3),
        },
    ),
    "product": StateModel(
        {0: ("Active", 1), 1: ("Retired", 2), 2: ("Draft", 0), 3: ("Under Revision", 3)},
        {0: ("Draft", 2), 1: ("Active", 0), 2: ("Retired", 1), 3: ("Under Revision", 3)},
        initial=2,
    ),
    "pricelevel": StateModel(
        {0: ("Active", 100001), 1: ("Inactive", 100002)}, {100001: ("Active", 0), 100002: ("Inactive", 1)}
    ),
    "opportunityclose": _ACTIVITY,
    "quoteclose": _ACTIVITY,
    "orderclose": _ACTIVITY,
}
for _name in (
    "account",
    "contact",
    "transactioncurrency",
    "cdm_company",
    "uomschedule",
    "msdyn_customergroup",
    "msdyn_paymentterm",
    "msdyn_termsofdelivery",
    "msdyn_shipvia",
    "msdyn_operationalsite",
    "msdyn_warehouse",
    "msdyn_pricecustomergroup",
    "msdyn_salesorderorigin",
    "msdyn_customerpaymentmethod",
    "msdyn_salestaxgroup",
):
    STATE_MODELS[_name] = _ACTIVE_INACTIVE


# ---- choices ------------------------------------------------------------------------------------------


def _enum(name: str, members: dict[str, int]) -> EnumType:
    return EnumType(name, members)


CUSTOMER_TYPE = _enum(
    "account_customertypecode",
    {
        "Competitor": 1,
        "Consultant": 2,
        "Customer": 3,
        "Investor": 4,
        "Partner": 5,
        "Influencer": 6,
        "Press": 7,
        "Prospect": 8,
        "Reseller": 9,
        "Supplier": 10,
        "Vendor": 11,
        "Other": 12,
    },
)
ADDRESS_TYPE = _enum("address_addresstypecode", {"Bill To": 1, "Ship To": 2, "Primary": 3, "Other": 4})
PAYMENT_TERMS = _enum("paymenttermscode", {"Net 30": 1, "2% 10, Net 30": 2, "Net 45": 3, "Net 60": 4})
SHIPPING_METHOD = _enum(
    "shippingmethodcode",
    {"Airborne": 1, "DHL": 2, "FedEx": 3, "UPS": 4, "Postal Mail": 5, "Full Load": 6, "Will Call": 7},
)
FREIGHT_TERMS = _enum("freighttermscode", {"FOB": 1, "No Charge": 2})
LEAD_SOURCE = _enum(
    "lead_leadsourcecode",
    {
        "Advertisement": 1,
        "Employee Referral": 2,
        "External Referral": 3,
        "Partner": 4,
        "Public Relations": 5,
        "Seminar": 6,
        "Trade Show": 7,
        "Web": 8,
        "Word of Mouth": 9,
        "Other": 10,
    },
)
RATING = _enum("ratingcode", {"Hot": 1, "Warm": 2, "Cold": 3})
PRODUCT_TYPE = _enum(
    "producttypecode", {"Sales Inventory": 1, "Miscellaneous Charges": 2, "Services": 3, "Flat Fees": 4}
)
#: ``producttypecode`` of opportunity, quote, order and invoice lines: the global choice
#: ``qooiproduct_producttype`` (CE ``opportunityproduct``), not the product table's own product types
LINE_PRODUCT_TYPE = _enum(
    "qooiproduct_producttype",
    {
        "Product": 1,
        "Bundle": 2,
        "Required Bundle Product": 3,
        "Optional Bundle Product": 4,
        "Project-based Service": 5,
    },
)
PRODUCT_STRUCTURE = _enum("productstructure", {"Product": 1, "Product Family": 2, "Product Bundle": 3})
FIELD_SERVICE_PRODUCT_TYPE = _enum(
    "msdyn_fieldserviceproducttype", {"Inventory": 690970000, "Non-Inventory": 690970001, "Service": 690970002}
)
PRICING_METHOD = _enum(
    "productpricelevel_pricingmethodcode",
    {
        "Currency Amount": 1,
        "Percent of List": 2,
        "Percent Markup - Current Cost": 3,
        "Percent Margin - Current Cost": 4,
        "Percent Markup - Standard Cost": 5,
        "Percent Margin - Standard Cost": 6,
    },
)
QUANTITY_SELLING = _enum(
    "productpricelevel_quantitysellingcode", {"No Control": 1, "Whole": 2, "Whole and Fractional": 3}
)
ON_HOLD_STATUS = _enum(
    "msdyn_onholdstatus",
    {
        "No": 806380000,
        "Invoice": 806380001,
        "All": 806380002,
        "Payment": 806380003,
        "Requisition": 806380004,
        "Never": 806380005,
    },
)
ORDER_TYPE = _enum("msdyn_ordertype", {"Item based": ITEM_BASED_ORDER_TYPE, "Work based": 192350001})
PROCESSING_STATUS = _enum(
    "msdyn_processingstatus",
    {
        "Active": 192350000,
        "Confirmed": 192350001,
        "Picked": 192350002,
        "Partially delivered": 192350003,
        "Delivered": 192350004,
        "Invoiced": 192350005,
        "Partially invoiced": 192350006,
        "Cancelled": 192350007,
        "Delivered, partially invoiced": 192350008,
    },
)
QUOTATION_STATUS = _enum(
    "msdyn_salesquotationstatus",
    {
        "Created": 192350000,
        "Sent": 192350001,
        "Confirmed": 192350002,
        "Lost": 192350003,
        "Cancelled": 192350004,
        "Reset": 192350005,
        "Modified": 192350006,
        "Submitted": 192350007,
        "Approved": 192350008,
        "Revised": 192350009,
    },
)
PROMISING_METHOD = _enum(
    "msdyn_salesorderpromisingmethod",
    {
        "None": 192350000,
        "Sales lead time": 192350001,
        "ATP": 192350002,
        "ATP + Issue margin": 192350003,
        "CTP": 192350004,
    },
)
QUOTATION_CREATION_METHOD = _enum(
    "msdyn_quotationcreationmethod", {"Supply Chain Management": 776160000, "Dynamics 365 Sales": 776160001}
)
QUOTATION_OWNERSHIP = _enum(
    "msdyn_quotationownership",
    {"Based on origin": 776160000, "Supply Chain Management": 776160001, "Dynamics 365 Sales": 776160002},
)
LINE_STATUS = _enum(
    "msdyn_linestatus",
    {"None": 192350000, "Back order": 192350001, "Delivered": 192350002, "Invoiced": 192350003, "Canceled": 192350004},
)
PROPERTY_CONFIGURATION = _enum("propertyconfigurationstatus", {"Edit": 0, "Rectify": 1, "Not Configured": 2})
SYSTEM_OF_UNITS = _enum("msdyn_systemofunits", {"None": 192350000, "Metric": 192350001, "US": 192350002})


def _state_enums(entity_name: str) -> tuple[EnumType, EnumType]:
    model = STATE_MODELS[entity_name]
    states = _enum(f"{entity_name}_statecode", {label: code for code, (label, _) in model.states.items()})
    statuses = _enum(f"{entity_name}_statuscode", {label: code for code, (label, _) in model.statuses.items()})
    return states, statuses


# ---- column lengths from Microsoft's table reference pages ---------------------------------------------

#: MaxLength of the primary name column per table (ENT/PA table reference pages); others keep 400
PRIMARY_NAME_LENGTH: dict[str, int] = {
    "account": 160,
    "contact": 160,
    "lead": 160,
    "opportunity": 300,
    "quote": 300,
    "salesorder": 300,
    "invoice": 300,
    "product": 100,
    "pricelevel": 100,
    "uom": 100,
    "uomschedule": 200,
    "transactioncurrency": 100,
    "businessunit": 160,
    "organization": 160,
    "systemuser": 200,
}

#: the parts of an address and their MaxLength (account ``address1_*``, quote ``shipto_*``...), in the order
#: the composite address is written
ADDRESS_PARTS: dict[str, int] = {
    "name": 200,
    "line1": 250,
    "line2": 250,
    "line3": 250,
    "city": 80,
    "stateorprovince": 50,
    "postalcode": 20,
    "country": 80,
    "county": 50,
    "fax": 50,
}


def composite_address(row: dict[str, Any], prefix: str) -> str | None:
    """``<prefix>_composite`` as Dataverse writes it for an en-US organization: the street lines, then
    "city, state postal code", then the country, one per line (CRLF), empty parts left out; None when the
    address is empty. Organizations in other locales order the city line differently."""

    def part(name: str) -> str:
        value = row.get(f"{prefix}_{name}")
        return str(value).strip() if value is not None else ""

    city, state, postal = part("city"), part("stateorprovince"), part("postalcode")
    city_line = ", ".join(p for p in (city, state) if p)
    city_line = " ".join(p for p in (city_line, postal) if p)
    lines = [part("line1"), part("line2"), part("line3"), city_line, part("country")]
    text = "\r\n".join(line for line in lines if line)
    return text or None


#: the columns a composite address is computed from
COMPOSITE_SOURCES = ("line1", "line2", "line3", "city", "stateorprovince", "postalcode", "country")


# ---- a small builder so 40 tables stay readable ------------------------------------------------------


@dataclass
class _Table:
    """Accumulates the properties and navigations of one entity type."""

    name: str
    entity_set: str
    primary_name: str | None
    description: str
    key: str = ""
    user_owned: bool = False
    tracked: bool = True
    read_only: bool = False
    props: dict[str, Property] = field(default_factory=dict)
    navs: dict[str, NavigationProperty] = field(default_factory=dict)
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = self.key or f"{self.name}id"
        self.col(self.key, GUID, default=new_guid, nullable=False, description="Unique identifier of the row.")
        if self.primary_name:
            self.col(self.primary_name, STRING, max_length=PRIMARY_NAME_LENGTH.get(self.name, 400))

    # columns
    def col(self, name: str, type: str = STRING, **kwargs: Any) -> _Table:
        if type == STRING and "max_length" not in kwargs:
            kwargs["max_length"] = 100
        self.props[name] = Property(name, type, **kwargs)
        return self

    def cols(self, names: Iterable[str], type: str = STRING, **kwargs: Any) -> _Table:
        for name in names:
            self.col(name, type, **kwargs)
        return self

    def money(self, name: str, *, base: bool = True, read_only: bool = False) -> _Table:
        self.col(name, DECIMAL, precision=23, scale=4, read_only=read_only)
        if base:
            self.col(
                f"{name}_base",
                DECIMAL,
                precision=23,
                scale=4,
                read_only=True,
                description=f"Value of {name} in the base currency.",
            )
        return self

    def choice(self, name: str, enum: EnumType, **kwargs: Any) -> _Table:
        return self.col(name, INT32, enum=enum, **kwargs)

    def state(self) -> _Table:
        states, statuses = _state_enums(self.name)
        self.choice(
            "statecode",
            states,
            default=STATE_MODELS[self.name].initial,
            nullable=False,
            description="Status of the row.",
        )
        self.choice("statuscode", statuses, description="Reason for the status of the row.")
        return self

    def address(self, prefix: str, *, with_type: bool = False, composite: bool = True) -> _Table:
        """The columns of one address (``address1``, ``shipto``...) with the lengths of the table reference
        pages, and its read-only ``<prefix>_composite`` (computed by the rules, :func:`composite_address`).
        The numbered addresses of accounts, contacts and leads carry a county and ``telephone1``-``3``; a
        document's ship-to and bill-to one ``telephone`` and a contact name, and no county (the quote, order
        and invoice reference pages list none); a document line's ship-to has no composite."""
        numbered = prefix.startswith("address")
        for part, length in ADDRESS_PARTS.items():
            if part != "county" or numbered:
                self.col(f"{prefix}_{part}", max_length=length)
        if numbered:
            self.cols([f"{prefix}_telephone{n}" for n in (1, 2, 3)], max_length=50)
        else:
            self.col(f"{prefix}_telephone", max_length=50)
            self.col(f"{prefix}_contactname", max_length=150)
        if composite:
            self.col(
                f"{prefix}_composite",
                max_length=1000,
                read_only=True,
                description="The whole address as one text, computed from its lines, city, state, postal code and "
                "country.",
            )
        if with_type:
            self.choice(f"{prefix}_addresstypecode", ADDRESS_TYPE)
        return self

    # relationships
    def lookup(
        self,
        nav: str,
        target: str,
        *,
        partner: str | None = None,
        description: str | None = None,
        read_only: bool = False,
    ) -> _Table:
        column = f"_{nav}_value"
        self.props[column] = Property(
            column, GUID, lookup=nav, read_only=read_only, description=description or f"Lookup to {target} ({nav})."
        )
        self.navs[nav] = NavigationProperty(
            nav, target, False, [(column, f"{target}id")], owns_fk=True, partner=partner
        )
        return self

    def customer(
        self, base: str, *, partners: tuple[str | None, str | None] = (None, None), description: str | None = None
    ) -> _Table:
        """A polymorphic account-or-contact lookup ``<base>`` (navs ``<base>_account`` / ``<base>_contact``)."""
        column, type_column = f"_{base}_value", f"_{base}_type"
        self.props[column] = Property(
            column, GUID, lookup=base, description=description or f"Customer (account or contact): {base}."
        )
        self.props[type_column] = Property(
            type_column,
            STRING,
            max_length=20,
            hidden=True,
            read_only=True,
            description=f"Logical name of the row {base} points at.",
        )
        for target, partner in zip(("account", "contact"), partners, strict=True):
            nav = f"{base}_{target}"
            self.navs[nav] = NavigationProperty(
                nav,
                target,
                False,
                [(column, f"{target}id")],
                owns_fk=True,
                local_condition={type_column: target},
                partner=partner,
            )
        return self

    def many(
        self,
        nav: str,
        target: str,
        fk: str,
        *,
        partner: str | None = None,
        target_condition: dict[str, Any] | None = None,
    ) -> _Table:
        self.navs[nav] = NavigationProperty(
            nav, target, True, [(self.key, fk)], partner=partner, target_condition=target_condition or {}
        )
        return self

    def company(self) -> _Table:
        return self.lookup(
            "msdyn_company", "cdm_company", description="Legal entity (dual-write company); read-only once saved."
        )

    def owned(self) -> _Table:
        """System columns of user-owned tables."""
        self.col("createdon", DATETIME, read_only=True, description="Date and time the row was created.")
        self.col("modifiedon", DATETIME, read_only=True, description="Date and time the row was last modified.")
        return self.lookup("ownerid", "systemuser", description="Owner of the row.")

    def org_owned(self) -> _Table:
        self.col("createdon", DATETIME, read_only=True, description="Date and time the row was created.")
        self.col("modifiedon", DATETIME, read_only=True, description="Date and time the row was last modified.")
        return self

    def currency(self) -> _Table:
        self.lookup("transactioncurrencyid", "transactioncurrency", description="Currency of the money columns.")
        self.col(
            "exchangerate",
            DECIMAL,
            precision=23,
            scale=10,
            read_only=True,
            description="Units of the row's currency per unit of the base currency, at the last write.",
        )
        return self

    def build(self) -> EntityType:
        return EntityType(
            name=self.name,
            entity_set=self.entity_set,
            key=(self.key,),
            properties=self.props,
            navigations=self.navs,
            alternate_keys=self.alternate_keys,
            primary_name=self.primary_name,
            tracked=self.tracked,
            read_only=self.read_only,
            description=self.description,
        )


# ---- tables -------------------------------------------------------------------------------------------


def _reference_table(
    name: str,
    entity_set: str,
    code: str,
    description: str,
    *,
    primary_name: str | None = None,
    extra: Iterable[str] = ("msdyn_description",),
) -> _Table:
    """A company-specific dual-write reference table keyed by its code column + company."""
    table = _Table(name, entity_set, primary_name or code, description)
    if code not in table.props:
        table.col(code)
    table.cols(extra)
    table.company().org_owned().state()
    table.alternate_keys.append((code, "_msdyn_company_value"))
    return table


def _header_common(table: _Table) -> _Table:
    """Columns shared by the quote, salesorder and invoice headers (and the money part of opportunity)."""
    table.col("description", max_length=2000)
    table.customer(
        "customerid",
        partners=(f"{_CUSTOMER_REVERSE[table.name]}_accounts", f"{_CUSTOMER_REVERSE[table.name]}_contacts"),
    )
    table.lookup("pricelevelid", "pricelevel", description="Price list the line prices come from.")
    table.currency()
    for name in (
        "totalamount",
        "totalamountlessfreight",
        "totallineitemamount",
        "totaldiscountamount",
        "totallineitemdiscountamount",
        "totaltax",
    ):
        table.money(name, read_only=True)
    table.money("discountamount")
    table.money("freightamount")
    table.col("discountpercentage", DECIMAL, precision=23, scale=2)
    return table


def _document_common(table: _Table) -> _Table:
    """Quote/order/invoice extras: company, order type, addresses, payment terms, dates."""
    table.company()
    table.choice("msdyn_ordertype", ORDER_TYPE, default=ITEM_BASED_ORDER_TYPE)
    table.address("shipto").address("billto")
    table.col("willcall", BOOLEAN, default=False)
    table.choice("paymenttermscode", PAYMENT_TERMS)
    table.choice("shippingmethodcode", SHIPPING_METHOD)
    table.choice("freighttermscode", FREIGHT_TERMS)
    table.col("requestdeliveryby", DATE)
    table.lookup("msdyn_paymentterms", "msdyn_paymentterm", description="Terms of payment (dual-write).")
    return table


def _line_common(table: _Table, header: str) -> _Table:
    """Columns shared by opportunityproduct, quotedetail, salesorderdetail and invoicedetail."""
    table.lookup(f"{header}id", header, partner=_LINES[header])
    table.lookup("productid", "product")
    table.lookup("uomid", "uom")
    table.currency()
    # 850 on invoice lines, 500 on the others (the table reference pages)
    length = 850 if header == "invoice" else 500
    table.col("productdescription", max_length=length, description="Name of a write-in product.")
    table.col("isproductoverridden", BOOLEAN, default=False, description="True for a write-in product.")
    table.col(
        "ispriceoverridden",
        BOOLEAN,
        default=False,
        description="True keeps the given priceperunit; false takes it from the header's price list.",
    )
    table.col("quantity", DECIMAL, precision=23, scale=5)
    table.money("priceperunit")
    table.money("baseamount", read_only=True)
    table.money("manualdiscountamount")
    table.money("volumediscountamount", read_only=True)
    table.money("tax")
    table.money("extendedamount", read_only=True)
    table.col("lineitemnumber", INT32)
    table.col("sequencenumber", INT32, description="Line number within the document (dual-write line key).")
    table.col("description", max_length=2000)
    table.choice("producttypecode", LINE_PRODUCT_TYPE)
    table.choice("propertyconfigurationstatus", PROPERTY_CONFIGURATION)
    table.org_owned()
    return table


def _scm_line_extras(table: _Table) -> _Table:
    """Dual-write columns on quote and order lines."""
    table.lookup("msdyn_shippingsite", "msdyn_operationalsite")
    table.lookup("msdyn_shippingwarehouse", "msdyn_warehouse")
    table.lookup("msdyn_deliverymode", "msdyn_shipvia")
    table.lookup("msdyn_deliveryterms", "msdyn_termsofdelivery")
    table.money("msdyn_totalchargesamount", base=False)
    table.col("msdyn_linetype", INT32, description="Field Service line type (dual-write v2 maps skip 690970000).")
    table.col("requestdeliveryby", DATE)
    table.address("shipto", composite=False)
    table.col("willcall", BOOLEAN, default=False)
    return table


#: document -> its lines' collection navigation name
_LINES = {
    "opportunity": "product_opportunities",
    "quote": "quote_details",
    "salesorder": "order_details",
    "invoice": "invoice_details",
}
#: header -> prefix of the reverse customer navigations on account/contact
_CUSTOMER_REVERSE = {
    "opportunity": "opportunity_customer",
    "quote": "quote_customer",
    "salesorder": "order_customer",
    "invoice": "invoice_customer",
    "lead": "lead_customer",
}


def _tables() -> list[_Table]:
    tables: list[_Table] = []

    # -- platform: organization, business units, users, currencies ------------------------------------
    organization = _Table("organization", "organizations", "name", "Top level of the business hierarchy.")
    organization.lookup("basecurrencyid", "transactioncurrency", description="Base currency of the organization.")
    organization.col("pricingdecimalprecision", INT32, default=2)
    organization.org_owned()
    tables.append(organization)

    bu = _Table("businessunit", "businessunits", "name", "Business unit: a company's division or department.")
    bu.lookup("parentbusinessunitid", "businessunit")
    bu.lookup("organizationid", "organization")
    bu.lookup(
        "cdm_companyid",
        "cdm_company",
        description="Dual-write company of the business unit; rows its users create default to it.",
    )
    bu.col("isdisabled", BOOLEAN, default=False)
    bu.org_owned()
    tables.append(bu)

    user = _Table("systemuser", "systemusers", "fullname", "Person (or application) with access to the system.")
    user.props["fullname"].read_only = True
    user.cols(["firstname", "lastname", "domainname", "internalemailaddress", "title"])
    user.col("azureactivedirectoryobjectid", GUID)
    user.col("applicationid", GUID, description="Set for application (integration) users.")
    user.col("isdisabled", BOOLEAN, default=False)
    user.lookup("businessunitid", "businessunit")
    user.org_owned()
    tables.append(user)

    currency = _Table(
        "transactioncurrency",
        "transactioncurrencies",
        "currencyname",
        "Currency in which a financial transaction is carried out.",
    )
    currency.col("isocurrencycode", max_length=5, required=True)
    currency.col("currencysymbol", max_length=13)
    currency.col(
        "exchangerate",
        DECIMAL,
        precision=23,
        scale=10,
        default=1,
        description="Units of this currency per unit of the base currency.",
    )
    currency.col("currencyprecision", INT32, default=2)
    currency.org_owned().state()
    currency.alternate_keys.append(("isocurrencycode",))
    tables.append(currency)

    company = _Table("cdm_company", "cdm_companies", "cdm_name", "Legal entity (F&O company) for dual-write.")
    company.col("cdm_companycode", max_length=10, required=True, description="F&O dataAreaId.")
    company.org_owned().state()
    company.alternate_keys.append(("cdm_companycode",))
    tables.append(company)

    # -- units and products --------------------------------------------------------------------------
    schedule = _Table("uomschedule", "uomschedules", "name", "Unit group: a grouping of units of measure.")
    schedule.col("baseuomname")
    schedule.col("description", max_length=2000)
    schedule.col("msdyn_externalunitclassname", description="F&O unit class the group comes from.")
    schedule.org_owned().state()
    schedule.many("unit_of_measure_schedule_conversions", "uom", "_uomscheduleid_value", partner="uomscheduleid")
    tables.append(schedule)

    uom = _Table("uom", "uoms", "name", "Unit of measure.")
    uom.lookup("uomscheduleid", "uomschedule", partner="unit_of_measure_schedule_conversions")
    uom.lookup("baseuom", "uom", description="Unit this unit is expressed in.")
    uom.col("quantity", DECIMAL, precision=23, scale=5, default=1)
    uom.col("isschedulebaseuom", BOOLEAN, default=False)
    uom.col("msdyn_symbol", max_length=10, description="F&O unit symbol (dual-write key).")
    uom.col("msdyn_externalunitclassname")
    uom.col("msdyn_decimalprecision", INT32)
    uom.col("msdyn_isbaseunit", BOOLEAN)
    uom.choice("msdyn_systemofunits", SYSTEM_OF_UNITS)
    uom.org_owned()
    uom.alternate_keys.append(("msdyn_symbol",))
    tables.append(uom)

    pricelevel = _Table("pricelevel", "pricelevels", "name", "Price list: prices of products by unit.")
    pricelevel.col("description", max_length=2000)
    pricelevel.currency()
    pricelevel.col("begindate", DATE).col("enddate", DATE)
    pricelevel.org_owned().state()
    pricelevel.many(
        "price_level_product_price_levels", "productpricelevel", "_pricelevelid_value", partner="pricelevelid"
    )
    tables.append(pricelevel)

    product = _Table("product", "products", "name", "Product or service the organization sells.")
    product.col(
        "productnumber",
        required=True,
        description="User-defined product ID (dual-write: company + msdyn_productnumber).",
    )
    product.col("description", max_length=2000)
    product.col("msdyn_productnumber", max_length=70, description="F&O product number (dual-write key).")
    product.col("msdyn_itemnumber", max_length=20, description="F&O item number.")
    product.company()
    product.lookup("defaultuomid", "uom", description="Default unit of the product.")
    product.lookup("defaultuomscheduleid", "uomschedule", description="Unit group of the product.")
    product.lookup("pricelevelid", "pricelevel", description="Default price list of the product.")
    product.currency()
    product.choice("producttypecode", PRODUCT_TYPE, default=1)
    product.choice("productstructure", PRODUCT_STRUCTURE, default=1)
    product.choice("msdyn_fieldserviceproducttype", FIELD_SERVICE_PRODUCT_TYPE)
    product.col("quantitydecimal", INT32, default=0, description="Decimal places allowed in quantities.")
    product.money("price").money("currentcost").money("standardcost")
    product.col("validfromdate", DATE).col("validtodate", DATE)
    product.org_owned().state()
    product.alternate_keys += [("msdyn_productnumber", "_msdyn_company_value"), ("productnumber",)]
    product.many("product_price_levels", "productpricelevel", "_productid_value", partner="productid")
    tables.append(product)

    ppl = _Table(
        "productpricelevel",
        "productpricelevels",
        None,
        "Price list item: the price of a product in one unit on one price list.",
    )
    ppl.lookup("pricelevelid", "pricelevel", partner="price_level_product_price_levels")
    ppl.lookup("productid", "product", partner="product_price_levels")
    ppl.lookup("uomid", "uom")
    ppl.lookup("uomscheduleid", "uomschedule")
    ppl.currency()
    ppl.money("amount")
    ppl.col("percentage", DECIMAL, precision=23, scale=2)
    ppl.choice("pricingmethodcode", PRICING_METHOD, default=1)
    ppl.choice("quantitysellingcode", QUANTITY_SELLING, default=1)
    ppl.col("productnumber", read_only=True)
    ppl.org_owned()
    ppl.alternate_keys.append(("_pricelevelid_value", "_productid_value", "_uomid_value"))
    tables.append(ppl)

    # -- dual-write reference data -------------------------------------------------------------------
    tables.append(
        company_ref := _reference_table(
            "msdyn_customergroup", "msdyn_customergroups", "msdyn_groupid", "Customer group (F&O CustGroup)."
        )
    )
    company_ref.lookup("msdyn_paymentterm", "msdyn_paymentterm", description="Default terms of payment.")
    tables.append(
        _reference_table(
            "msdyn_paymentterm",
            "msdyn_paymentterms",
            "msdyn_name",
            "Terms of payment (F&O PaymTerm).",
            extra=("msdyn_description",),
        )
    )
    tables[-1].col("msdyn_numberofdays", INT32)
    tables.append(
        _reference_table(
            "msdyn_termsofdelivery",
            "msdyn_termsofdeliveries",
            "msdyn_termscode",
            "Terms of delivery (F&O DlvTerm).",
            primary_name="msdyn_name",
            extra=("msdyn_termscode", "msdyn_description"),
        )
    )
    tables.append(
        _reference_table(
            "msdyn_shipvia",
            "msdyn_shipvias",
            "msdyn_name",
            "Mode of delivery (F&O DlvMode).",
            extra=("msdyn_description",),
        )
    )
    tables.append(
        _reference_table(
            "msdyn_operationalsite",
            "msdyn_operationalsites",
            "msdyn_siteid",
            "Site (F&O InventSite).",
            primary_name="msdyn_sitename",
            extra=("msdyn_siteid",),
        )
    )
    warehouse = _reference_table(
        "msdyn_warehouse",
        "msdyn_warehouses",
        "msdyn_warehouseidentifier",
        "Warehouse (F&O InventLocation).",
        primary_name="msdyn_name",
        extra=("msdyn_warehouseidentifier", "msdyn_description"),
    )
    warehouse.lookup("msdyn_operationalsite", "msdyn_operationalsite", description="Site of the warehouse.")
    tables.append(warehouse)
    tables.append(
        _reference_table(
            "msdyn_pricecustomergroup",
            "msdyn_pricecustomergroups",
            "msdyn_groupcode",
            "Price customer group (F&O PriceDiscGroup).",
            primary_name="msdyn_name",
            extra=("msdyn_groupcode", "msdyn_description"),
        )
    )
    tables.append(
        _reference_table(
            "msdyn_salesorderorigin",
            "msdyn_salesorderorigins",
            "msdyn_origincode",
            "Sales order origin code (F&O SalesOrigin).",
            primary_name="msdyn_name",
            extra=("msdyn_origincode", "msdyn_description"),
        )
    )
    tables.append(
        _reference_table(
            "msdyn_customerpaymentmethod",
            "msdyn_customerpaymentmethods",
            "msdyn_name",
            "Customer method of payment (F&O CustPaymMode).",
            extra=("msdyn_description",),
        )
    )
    tables.append(
        _reference_table(
            "msdyn_salestaxgroup",
            "msdyn_salestaxgroups",
            "msdyn_name",
            "Sales tax group (F&O TaxGroup).",
            extra=("msdyn_description",),
        )
    )

    # -- customers -----------------------------------------------------------------------------------
    lead = _Table("lead", "leads", "fullname", "Prospect or potential sales opportunity.")
    lead.props["fullname"].read_only = True
    lead.col("subject", max_length=300, description="Topic of the lead.")
    lead.cols(["firstname", "middlename"], max_length=50)
    lead.col("lastname", max_length=50)
    lead.cols(["jobtitle", "salutation", "companyname", "emailaddress1"], max_length=100)
    lead.col("telephone1", max_length=50).col("mobilephone", max_length=20).col("websiteurl", max_length=200)
    lead.col("description", max_length=2000)
    lead.address("address1")
    lead.col("address1_name", max_length=100)  # 100 on lead (CE ``lead``), 200 on account and contact
    lead.money("estimatedamount").money("budgetamount").money("revenue")
    lead.col("estimatedclosedate", DATE)
    lead.col("numberofemployees", INT32)
    lead.choice("leadsourcecode", LEAD_SOURCE)
    lead.choice("leadqualitycode", RATING, default=2)
    lead.lookup("parentaccountid", "account", partner="lead_parent_account")
    lead.lookup("parentcontactid", "contact", partner="lead_parent_contact")
    lead.customer("customerid", partners=("lead_customer_accounts", "lead_customer_contacts"))
    lead.lookup("qualifyingopportunityid", "opportunity", description="Opportunity created when qualified.")
    lead.currency()
    lead.owned().state()
    for reverse, target in (
        ("account_originating_lead", "account"),
        ("contact_originating_lead", "contact"),
        ("opportunity_originating_lead", "opportunity"),
    ):
        lead.many(reverse, target, "_originatingleadid_value", partner="originatingleadid")
    tables.append(lead)

    account = _Table("account", "accounts", "name", "Business that represents a customer or potential customer.")
    account.col("accountnumber", max_length=20, description="Customer account number (dual-write key with company).")
    account.col("description", max_length=2000)
    account.cols(["emailaddress1", "emailaddress2"], max_length=100)
    account.cols(["telephone1", "telephone2", "fax"], max_length=50).col("websiteurl", max_length=200)
    account.col("numberofemployees", INT32)
    account.money("revenue").money("creditlimit")
    account.col("creditonhold", BOOLEAN, default=False)
    account.choice("customertypecode", CUSTOMER_TYPE, description="Relationship type (3 Customer, 8 Prospect).")
    account.choice("paymenttermscode", PAYMENT_TERMS)
    account.address("address1", with_type=True).address("address2", with_type=True)
    account.lookup("primarycontactid", "contact", partner="account_primary_contact")
    account.lookup("parentaccountid", "account", partner="account_parent_account")
    account.lookup("originatingleadid", "lead", partner="account_originating_lead")
    account.lookup("defaultpricelevelid", "pricelevel")
    account.currency()
    account.company()
    account.lookup("msdyn_customergroupid", "msdyn_customergroup")
    account.lookup("msdyn_paymentterm", "msdyn_paymentterm")
    account.lookup("msdyn_customerpaymentmethod", "msdyn_customerpaymentmethod")
    account.lookup("msdyn_salestaxgroup", "msdyn_salestaxgroup")
    account.lookup("msdyn_billingaccount", "account", description="Invoice account (F&O INVOICEACCOUNT).")
    account.col("msdyn_creditlimitismandatory", BOOLEAN, default=False)
    account.choice("msdyn_onholdstatus", ON_HOLD_STATUS)
    account.col("msdyn_creditrating", max_length=10)
    account.col("msdyn_onetimecustomer", BOOLEAN, default=False)
    account.col("msdyn_taxexemptnumber", max_length=25)
    account.col("msdyn_partynumber", max_length=40)
    account.col("msdyn_identificationnumber", max_length=50)
    account.col("msdyn_paymenttermsbasedays", INT32)
    account.owned().state()
    account.many(
        "contact_customer_accounts",
        "contact",
        "_parentcustomerid_value",
        partner="parentcustomerid_account",
        target_condition={"_parentcustomerid_type": "account"},
    )
    account.many("account_parent_account", "account", "_parentaccountid_value", partner="parentaccountid")
    account.many("lead_parent_account", "lead", "_parentaccountid_value", partner="parentaccountid")
    for header, prefix in _CUSTOMER_REVERSE.items():
        account.many(
            f"{prefix}_accounts",
            header,
            "_customerid_value",
            partner="customerid_account",
            target_condition={"_customerid_type": "account"},
        )
    tables.append(account)

    contact = _Table("contact", "contacts", "fullname", "Person with whom a business unit has a relationship.")
    contact.props["fullname"].read_only = True
    contact.cols(["firstname", "middlename"], max_length=50)
    contact.col("lastname", max_length=50)
    contact.cols(["jobtitle", "salutation", "emailaddress1", "emailaddress2"], max_length=100)
    contact.cols(["telephone1", "mobilephone", "fax"], max_length=50).col("websiteurl", max_length=200)
    contact.col("description", max_length=2000)
    contact.address("address1", with_type=True)
    contact.customer("parentcustomerid", partners=("contact_customer_accounts", "contact_customer_contacts"))
    contact.lookup("originatingleadid", "lead", partner="contact_originating_lead")
    contact.currency()
    contact.money("creditlimit")
    contact.company()
    contact.col(
        "msdyn_contactpersonid",
        max_length=20,
        description="Customer account number of a person customer (dual-write key with company).",
    )
    contact.col(
        "msdyn_sellable",
        BOOLEAN,
        default=False,
        description="True: a consumer usable on quotes and orders; false: a contact person.",
    )
    contact.lookup("msdyn_customergroupid", "msdyn_customergroup")
    contact.lookup("msdyn_paymentterm", "msdyn_paymentterm")
    contact.lookup("msdyn_billingaccount", "account")
    contact.col("msdyn_creditlimitismandatory", BOOLEAN, default=False)
    contact.choice("msdyn_onholdstatus", ON_HOLD_STATUS)
    contact.col("msdyn_creditrating", max_length=10)
    contact.col("msdyn_onetimecustomer", BOOLEAN, default=False)
    contact.col("msdyn_partynumber", max_length=40)
    contact.owned().state()
    contact.many("account_primary_contact", "account", "_primarycontactid_value", partner="primarycontactid")
    contact.many("lead_parent_contact", "lead", "_parentcontactid_value", partner="parentcontactid")
    contact.many(
        "contact_customer_contacts",
        "contact",
        "_parentcustomerid_value",
        partner="parentcustomerid_contact",
        target_condition={"_parentcustomerid_type": "contact"},
    )
    for header, prefix in _CUSTOMER_REVERSE.items():
        contact.many(
            f"{prefix}_contacts",
            header,
            "_customerid_value",
            partner="customerid_contact",
            target_condition={"_customerid_type": "contact"},
        )
    contact.alternate_keys.append(("msdyn_contactpersonid", "_msdyn_company_value"))
    tables.append(contact)
    account.alternate_keys.append(("accountnumber", "_msdyn_company_value"))

    # -- documents -----------------------------------------------------------------------------------
    opportunity = _Table("opportunity", "opportunities", "name", "Potential revenue-generating event or sale.")
    _header_common(opportunity)
    opportunity.lookup("parentaccountid", "account")
    opportunity.lookup("parentcontactid", "contact")
    opportunity.lookup("originatingleadid", "lead", partner="opportunity_originating_lead")
    opportunity.money("estimatedvalue").money("actualvalue")
    opportunity.col("estimatedclosedate", DATE).col("actualclosedate", DATE)
    opportunity.col("closeprobability", INT32)
    opportunity.col("isrevenuesystemcalculated", BOOLEAN, default=False)
    opportunity.choice("opportunityratingcode", RATING, default=2)
    opportunity.owned().state()
    opportunity.many("product_opportunities", "opportunityproduct", "_opportunityid_value", partner="opportunityid")
    opportunity.many("opportunity_quotes", "quote", "_opportunityid_value", partner="opportunityid")
    opportunity.many("opportunity_sales_orders", "salesorder", "_opportunityid_value", partner="opportunityid")
    opportunity.many("opportunity_invoices", "invoice", "_opportunityid_value", partner="opportunityid")
    opportunity.many(
        "Opportunity_OpportunityClose", "opportunityclose", "_opportunityid_value", partner="opportunityid"
    )
    tables.append(opportunity)

    opportunity_line = _Table("opportunityproduct", "opportunityproducts", None, "Product line of an opportunity.")
    _line_common(opportunity_line, "opportunity")
    tables.append(opportunity_line)

    quote = _Table("quote", "quotes", "name", "Formal offer for products and/or services, with prices.")
    _header_common(quote)
    _document_common(quote)
    quote.col("quotenumber", read_only=True, description="Dataverse auto number, e.g. QUO-01001-K5G9W8.")
    quote.col("revisionnumber", INT32, default=0, read_only=True)
    quote.lookup("opportunityid", "opportunity", partner="opportunity_quotes")
    quote.col("effectivefrom", DATE).col("effectiveto", DATE).col("expireson", DATE).col("closedon", DATE)
    quote.col("msdyn_quotenumber", max_length=20, description="SCM quotation number (dual-write key with company).")
    quote.col("msdyn_isreadytosync", BOOLEAN, default=False)
    quote.col("msdyn_totaldiscountpercentage", DECIMAL, precision=23, scale=2)
    quote.lookup("msdyn_pricecustomergroup", "msdyn_pricecustomergroup")
    quote.lookup("msdyn_defaultshippingsite", "msdyn_operationalsite")
    quote.lookup("msdyn_defaultshippingwarehouse", "msdyn_warehouse")
    quote.lookup("msdyn_generatedsalesordernumber", "salesorder", description="Order SCM generated from the quote.")
    quote.choice("msdyn_salesquotationstatus", QUOTATION_STATUS)
    quote.choice("msdyn_salesorderpromisingmethod", PROMISING_METHOD)
    quote.col("msdyn_arepricesincludingsalestax", BOOLEAN, default=False)
    quote.col("msdyn_language", INT32, description="Language choice (42 options on the real table).")
    quote.col("msdyn_quotationexpirydate", DATE).col("msdyn_confirmationdate", DATE).col("msdyn_followupdate", DATE)
    quote.choice("msdyn_quotationcreationmethod", QUOTATION_CREATION_METHOD)
    quote.choice("msdyn_quotationownership", QUOTATION_OWNERSHIP)
    quote.owned().state()
    quote.many("quote_details", "quotedetail", "_quoteid_value", partner="quoteid")
    quote.many("quote_orders", "salesorder", "_quoteid_value", partner="quoteid")
    quote.many("Quote_QuoteClose", "quoteclose", "_quoteid_value", partner="quoteid")
    quote.alternate_keys.append(("msdyn_quotenumber", "_msdyn_company_value"))
    tables.append(quote)

    quote_line = _Table("quotedetail", "quotedetails", None, "Product line of a quote.")
    _line_common(quote_line, "quote")
    _scm_line_extras(quote_line)
    quote_line.choice("msdyn_salesquotationstatus", QUOTATION_STATUS)
    quote_line.alternate_keys.append(("_quoteid_value", "sequencenumber"))
    tables.append(quote_line)

    order = _Table("salesorder", "salesorders", "name", "Quote that has been accepted.")
    _header_common(order)
    _document_common(order)
    order.col("ordernumber", read_only=True, description="Dataverse auto number, e.g. ORD-01001-A1B2C3.")
    order.lookup("quoteid", "quote", partner="quote_orders")
    order.lookup("opportunityid", "opportunity", partner="opportunity_sales_orders")
    order.col("ispricelocked", BOOLEAN, default=False)
    order.col("datefulfilled", DATE).col("submitdate", DATE)
    order.col(
        "msdyn_salesordernumber", max_length=20, description="SCM sales order number (dual-write key with company)."
    )
    # written by dual-write only (the integration identity); other callers' values are ignored, as for system columns
    order.choice(
        "msdyn_processingstatus", PROCESSING_STATUS, read_only=True, description="Owned by SCM; read-only in the app."
    )
    order.col("msdyn_isreadytosync", BOOLEAN, default=False)
    order.customer("msdyn_invoicecustomerid", description="Invoice customer (account or contact).")
    order.col("msdyn_isocurrencycode", max_length=5)
    order.lookup("msdyn_deliverymode", "msdyn_shipvia")
    order.lookup("msdyn_deliveryterms", "msdyn_termsofdelivery")
    order.lookup("msdyn_salesorderorigin", "msdyn_salesorderorigin")
    order.lookup("msdyn_defaultshippingsite", "msdyn_operationalsite")
    order.lookup("msdyn_defaultshippingwarehouse", "msdyn_warehouse")
    order.lookup("msdyn_pricecustomergroup", "msdyn_pricecustomergroup")
    order.lookup("msdyn_contactperson", "contact")
    order.col("msdyn_quotationnumber", max_length=20)
    order.col("msdyn_requestedreceiptdate", DATE).col("msdyn_confirmedshippingdate", DATE)
    order.col("msdyn_confirmedreceiptdate", DATE)
    order.cols(["msdyn_customerrequisitionnumber", "msdyn_customersorderreference"], max_length=60)
    order.col("msdyn_issalesprocessingstopped", BOOLEAN, default=False)
    order.col("msdyn_isonetimecustomer", BOOLEAN, default=False)
    order.col("msdyn_arepricesincludingsalestax", BOOLEAN, default=False)
    order.choice("msdyn_salesorderpromisingmethod", PROMISING_METHOD)
    order.col("msdyn_language", INT32)
    order.col("emailaddress").col("msdyn_url", max_length=255)
    order.owned().state()
    order.many("order_details", "salesorderdetail", "_salesorderid_value", partner="salesorderid")
    order.many("order_invoices", "invoice", "_salesorderid_value", partner="salesorderid")
    order.many("SalesOrder_OrderClose", "orderclose", "_salesorderid_value", partner="salesorderid")
    order.alternate_keys.append(("msdyn_salesordernumber", "_msdyn_company_value"))
    tables.append(order)

    order_line = _Table("salesorderdetail", "salesorderdetails", None, "Product line of a sales order.")
    _line_common(order_line, "salesorder")
    _scm_line_extras(order_line)
    order_line.lookup("quotedetailid", "quotedetail", description="Quote line the order line was copied from.")
    order_line.col("quantityshipped", DECIMAL, precision=23, scale=5)
    order_line.col("quantitybackordered", DECIMAL, precision=23, scale=5)
    order_line.col("quantitycancelled", DECIMAL, precision=23, scale=5)
    order_line.choice("msdyn_linestatus", LINE_STATUS)
    order_line.col("msdyn_islinestopped", BOOLEAN, default=False)
    order_line.col("msdyn_reservationid", max_length=40)
    order_line.alternate_keys.append(("_salesorderid_value", "sequencenumber"))
    tables.append(order_line)

    invoice = _Table("invoice", "invoices", "name", "Order that has been billed.")
    _header_common(invoice)
    _document_common(invoice)
    invoice.col("invoicenumber", read_only=True, description="Dataverse auto number, e.g. INV-01001-A1B2C3.")
    invoice.lookup("salesorderid", "salesorder", partner="order_invoices")
    invoice.lookup("opportunityid", "opportunity", partner="opportunity_invoices")
    invoice.col("ispricelocked", BOOLEAN, default=False)
    invoice.col("datedelivered", DATE).col("duedate", DATE)
    invoice.col("msdyn_invoicenumber", max_length=20, description="SCM invoice number (dual-write key with company).")
    invoice.col("msdyn_invoicedate", DATE)
    invoice.col("msdyn_ledgervoucher", max_length=20)
    invoice.money("msdyn_totalamount", base=False).money("msdyn_totaltax", base=False)
    invoice.money("msdyn_totaldiscountamount", base=False)
    invoice.owned().state()
    invoice.many("invoice_details", "invoicedetail", "_invoiceid_value", partner="invoiceid")
    invoice.alternate_keys.append(("msdyn_invoicenumber", "_msdyn_company_value"))
    tables.append(invoice)

    invoice_line = _Table("invoicedetail", "invoicedetails", None, "Product line of an invoice.")
    _line_common(invoice_line, "invoice")
    invoice_line.lookup("salesorderdetailid", "salesorderdetail", description="Order line the line was copied from.")
    invoice_line.lookup("msdyn_inventorysite", "msdyn_operationalsite")
    invoice_line.lookup("msdyn_inventorywarehouse", "msdyn_warehouse")
    invoice_line.col("quantityshipped", DECIMAL, precision=23, scale=5)
    invoice_line.alternate_keys.append(("_invoiceid_value", "sequencenumber"))
    tables.append(invoice_line)

    # -- close activities ----------------------------------------------------------------------------
    for name, entity_set, document, extra in (
        ("opportunityclose", "opportunitycloses", "opportunity", "Opportunity_OpportunityClose"),
        ("quoteclose", "quotecloses", "quote", "Quote_QuoteClose"),
        ("orderclose", "ordercloses", "salesorder", "SalesOrder_OrderClose"),
    ):
        close = _Table(name, entity_set, "subject", f"Activity created when a {document} is closed.", key="activityid")
        close.props["subject"].max_length = 200
        close.col("description", max_length=2000)
        close.lookup(f"{document}id", document, partner=extra)
        close.col("actualend", DATE)
        close.col("category", max_length=250)
        if name == "opportunityclose":
            close.currency()
            close.money("actualrevenue")
            close.lookup("competitorid", "account", description="Competitor that won (account stands in).")
        else:
            close.col("revision", INT32)
        if name == "orderclose":
            close.col("ordernumber", max_length=100)
        close.owned().state()
        tables.append(close)

    # -- sandbox bookkeeping -------------------------------------------------------------------------
    sequence = _Table(
        "sandbox_numbersequence",
        "sandbox_numbersequences",
        "name",
        "Sandbox bookkeeping: the counters behind auto numbers and dual-write document numbers.",
        tracked=False,
        read_only=True,
    )
    sequence.col("scope", max_length=20, default="", description="Company code for per-company sequences.")
    sequence.col("value", INT64, default=0, description="Last number handed out.")
    sequence.alternate_keys.append(("name", "scope"))
    tables.append(sequence)
    return tables


#: columns whose RequiredLevel is ApplicationRequired (Business Required) in the table reference pages.
#: Dataverse enforces it in forms, not in the Web API: the sandbox reports it in EntityDefinitions
#: (:data:`sandbox.odata.dataverse.entitydefs.REQUIRED_LEVELS`) and, as Dataverse, does not refuse a create
#: without it. It is kept apart from ``Property.required``, which the bridge's map validation (DIPV1010) reads
#: as "a map must write it".
APPLICATION_REQUIRED: dict[str, tuple[str, ...]] = {
    "account": ("name",),
    "contact": ("lastname",),
    "lead": ("subject", "lastname"),
    "opportunity": ("name", "_customerid_value", "_transactioncurrencyid_value"),
    "quote": ("name", "_customerid_value", "_pricelevelid_value"),
    "salesorder": ("name", "_customerid_value", "_pricelevelid_value"),
    "invoice": ("name", "_customerid_value", "_pricelevelid_value"),
    "quotedetail": ("quantity",),
    "salesorderdetail": ("quantity",),
    "invoicedetail": ("quantity",),
    "opportunityproduct": ("quantity",),
    "product": ("name",),
    "pricelevel": ("name",),
    "productpricelevel": ("_uomid_value", "amount", "percentage", "pricingmethodcode", "quantitysellingcode"),
    "uom": ("name",),
    "uomschedule": ("name",),
    "transactioncurrency": ("currencyname", "currencysymbol"),
}

#: columns whose RequiredLevel is SystemRequired in the table reference pages although the sandbox, as
#: Dataverse, fills them itself when a create leaves them out (the document numbers) or keeps them nullable
SYSTEM_REQUIRED: dict[str, tuple[str, ...]] = {
    "quote": ("quotenumber",),
    "salesorder": ("ordernumber",),
    "invoice": ("invoicenumber",),
    "product": ("productnumber",),
    "opportunityproduct": ("_opportunityid_value", "producttypecode", "propertyconfigurationstatus"),
    "productpricelevel": ("_pricelevelid_value", "_productid_value", "productnumber"),
}


GENDER = _enum("contact_gendercode", {"Male": 1, "Female": 2})
FAMILY_STATUS = _enum("contact_familystatuscode", {"Single": 1, "Married": 2, "Divorced": 3, "Widowed": 4})

#: the F&O address details the CDS document maps carry as msdyn_ columns, with the length of the F&O field
_DELIVERY_DETAILS = {
    "countyid": 10,
    "description": 60,
    "districtname": 60,
    "dunsnumber": 9,
    "locationid": 20,
    "name": 100,
    "postbox": 20,
}
_INVOICE_DETAILS = {"countyid": 10, "districtname": 60, "postbox": 20}


def _contact_channels(table: _Table) -> None:
    """The contact-channel columns Customers V3 maps to accounts and contacts (descriptions, extensions,
    social ids), with the lengths of the F&O fields they carry (Description 60, extension 10, locator 255)."""
    table.cols(
        [
            "msdyn_emailaddress1description",
            "msdyn_faxdescription",
            "msdyn_telephone1description",
            "msdyn_primaryfacebookdescription",
            "msdyn_primarylinkedindescrption",  # sic: the published column name
            "msdyn_primarytwitteriddescription",
            "msdyn_websiteurldescription",
        ],
        max_length=60,
    )
    table.cols(["msdyn_faxextension", "msdyn_telephone1extension"], max_length=10)
    table.cols(["msdyn_partycountry", "msdyn_partystateprovince"], max_length=10)


def _delivery_details(table: _Table, *, invoice: bool) -> None:
    """The delivery (and on headers, invoice) address details of the CDS quotation and order maps."""
    for part, length in _DELIVERY_DETAILS.items():
        table.col(f"msdyn_deliveryaddress{part}", max_length=length)
    table.col("msdyn_deliveryaddresslatitude", DECIMAL, precision=23, scale=6)
    table.col("msdyn_deliveryaddresslongitude", DECIMAL, precision=23, scale=6)
    table.col("msdyn_deliverybuildingcompliment", max_length=60)
    table.col("msdyn_formatteddeliveryaddress", max_length=2000)
    table.col("msdyn_isdeliveryaddressprivate", BOOLEAN, default=False)
    table.col("msdyn_requestedreceiptdate", DATE)
    if not invoice:
        return
    for part, length in _INVOICE_DETAILS.items():
        table.col(f"msdyn_invoiceaddress{part}", max_length=length)
    table.col("msdyn_invoiceaddresslatitude", DECIMAL, precision=23, scale=6)
    table.col("msdyn_invoiceaddresslongitude", DECIMAL, precision=23, scale=6)
    table.col("msdyn_invoicebuildingcompliment", max_length=60)
    table.col("msdyn_formattedinvoiceaddress", max_length=2000)
    table.col("msdyn_isinvoiceaddressprivate", BOOLEAN, default=False)
    table.col("msdyn_isdeliveryaddressorderspecific", BOOLEAN, default=False)
    table.lookup("msdyn_invoicecustomer", "account", description="Invoice account (F&O INVOICECUSTOMERACCOUNTNUMBER).")


def _line_details(table: _Table) -> None:
    """The line columns the CDS quotation and order line maps carry."""
    _delivery_details(table, invoice=False)
    table.col("msdyn_isdeliveryaddressspecific", BOOLEAN, default=False)
    table.cols(["msdyn_allowedoverdeliverypercentage", "msdyn_allowedunderdeliverypercentage"], DECIMAL, scale=2)
    table.cols(["msdyn_linediscountpercentage", "msdyn_multilinediscountpercentage"], DECIMAL, scale=2)
    table.money("msdyn_linediscountamount", base=False).money("msdyn_multilinediscountamount", base=False)
    table.money("msdyn_fixedpricecharges", base=False)
    table.col("msdyn_salespricequantity", DECIMAL, precision=23, scale=5)
    table.col("msdyn_externalitemnumber", max_length=50)


def _dual_write_sales_fields(tables: dict[str, _Table]) -> None:
    """Sales columns the out-of-box prospect-to-cash maps use that the tables above lack (Microsoft's dual-write
    mapping reference per map; ``docs/reference/dataverse-fields.md`` lists what is still missing and why)."""
    account, contact = tables["account"], tables["contact"]
    for table in (account, contact):
        _contact_channels(table)
        table.cols(["address1_latitude", "address2_latitude"], DOUBLE)
        table.cols(["address1_longitude", "address2_longitude"], DOUBLE)
    account.col("primarytwitterid", max_length=128)
    account.cols(["msdyn_primaryfacebookid", "msdyn_primarylinkedinid"], max_length=255)
    contact.cols(["msdyn_primaryfacebookid", "msdyn_primaryinkedinid", "msdyn_primarytwitterid"], max_length=255)
    contact.address("address2", with_type=True).address("address3", with_type=True)
    contact.col("address2_name", max_length=100)  # PA ``contact``: address2_name 100, address1/3_name 200
    # only address1 carries Bill To/Ship To/Primary/Other; the other two address types offer one "Default Value"
    for prefix in ("address2", "address3"):
        contact.choice(f"{prefix}_addresstypecode", _enum(f"contact_{prefix}_addresstypecode", {"Default Value": 1}))
    contact.cols(["address3_latitude", "address3_longitude"], DOUBLE)
    contact.col("address1_postofficebox", max_length=20)
    contact.choice("gendercode", GENDER).choice("familystatuscode", FAMILY_STATUS)
    contact.col("msdyn_identificationnumber", max_length=50)
    tables["product"].col("msdyn_iscatchweight", BOOLEAN, default=False)

    quote, order, invoice = tables["quote"], tables["salesorder"], tables["invoice"]
    _delivery_details(quote, invoice=True)
    _delivery_details(order, invoice=True)
    quote.cols(["msdyn_customersreference", "msdyn_customerrequisitionnumber"], max_length=60)
    quote.col("msdyn_invoiceaddresscountryregionid", max_length=10)
    quote.cols(
        ["msdyn_salesquotationconfirmationdate", "msdyn_salesquotationexpirydate", "msdyn_salesquotationfollowupdate"],
        DATE,
    )
    quote.col("msdyn_url", max_length=255).col("emailaddress", max_length=100)
    order.col("msdyn_paymenttermsbasedate", DATE)
    for header in (quote, invoice):
        header.lookup("msdyn_contactperson", "contact", description="Contact person (F&O CONTACTPERSONID).")

    quote_line, order_line, invoice_line = tables["quotedetail"], tables["salesorderdetail"], tables["invoicedetail"]
    _line_details(quote_line)
    _line_details(order_line)
    quote_line.choice("msdyn_salesquotationpromisingmethod", PROMISING_METHOD)
    quote_line.col("msdyn_linedescription2", max_length=1000)
    order_line.choice("msdyn_salesorderpromisingmethod", PROMISING_METHOD)
    order_line.col("msdyn_linedescription", max_length=1000)
    for line in (order_line, invoice_line):
        line.col("msdyn_confirmedshippingdate", DATE)
    order_line.col("msdyn_confirmedreceiptdate", DATE)
    invoice_line.money("msdyn_totalchargeamount", base=False)


def build_model() -> Model:
    """The mock Sales entity model (namespace ``Microsoft.Dynamics.CRM``)."""
    tables = _tables()
    _dual_write_sales_fields({table.name: table for table in tables})
    model = Model(NAMESPACE, [table.build() for table in tables], created_on="createdon", modified_on="modifiedon")
    for name, columns in APPLICATION_REQUIRED.items():
        entity = model.entities[name]
        assert entity.table is not None and all(c in entity.properties for c in columns), name
        entity.table.info[REQUIRED_LEVELS] = dict.fromkeys(columns, "ApplicationRequired")
    for name, columns in SYSTEM_REQUIRED.items():
        entity = model.entities[name]
        assert entity.table is not None and all(c in entity.properties for c in columns), name
        entity.table.info.setdefault(REQUIRED_LEVELS, {}).update(dict.fromkeys(columns, "SystemRequired"))
    model.check()
    return model


#: entities with statecode/statuscode whose rules come from :data:`STATE_MODELS`
STATEFUL = tuple(STATE_MODELS)

__all__ = ["build_model", "STATE_MODELS", "StateModel", "NAMESPACE", "ITEM_BASED_ORDER_TYPE", "STATEFUL"]
