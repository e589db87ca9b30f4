"""The SCM data entities served at ``/data/``: public names, compound keys, enums, navigations.

Names follow the public F&O entities (``docs/reference/fno-odata.md`` section 12): the collection name is the
entity set (``CustomersV3``), the singular is the type (``CustomerV3``). Company-specific entities carry
``dataAreaId`` as the first key part; shared ones (units, currencies, legal entities) have none.

Conventions of the real service kept here: unset strings are ``""``, unset dates are
``1900-01-01T12:00:00Z``, yes/no flags are the ``NoYes`` enum, enums are stored as integers and serialized by
member name. The dual-write (CDS) flavours of the quotation and order entities are views over the same tables
(``alias_of``). Fields marked read-only are computed by the rules and processes; plain callers cannot set them
(the dual-write and system identities can, and the rules then recompute what is derived).

Emulator extensions (documented, read-only): order lines carry ``DeliveredSalesQuantity``,
``InvoicedSalesQuantity``, ``ReservedSalesQuantity``, ``RemainingSalesPhysicalQuantity`` (still to deliver) and
``RemainingSalesFinancialQuantity`` (delivered, not invoiced); order headers carry ``DocumentStatus`` (the last
posted document, from which the processing status is derived); invoice headers carry ``InvoiceOpenAmount``,
``IsSettled`` and ``DueDate`` so that payments visibly settle invoices; payment journal lines carry
``SettledAmount`` and ``SettledInvoices``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mock_scm import numbering
from sandbox.odata.model import (
    DATETIME,
    DECIMAL,
    INT32,
    STRING,
    EntityType,
    EnumType,
    Model,
    NavigationProperty,
    Property,
)

NAMESPACE = "Microsoft.Dynamics.DataEntities"

#: F&O's "no date": date-only fields are stored at 12:00:00Z.
EMPTY_DATE = dt.datetime(1900, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
ZERO = decimal.Decimal("0")


def _enum(
    name: str, *members: str, values: Iterable[int] | None = None, labels: dict[str, str] | None = None
) -> EnumType:
    numbers = list(values) if values is not None else list(range(len(members)))
    return EnumType(name, dict(zip(members, numbers, strict=True)), namespace=NAMESPACE, labels=labels or {})


# ---- enums (docs/reference/fno-odata.md section 13; integer values as in AX) ----------------------------
NoYes = _enum("NoYes", "No", "Yes")
# Backorder's label is "Open order" (AX 2012 SalesStatus enumeration, gg850643): what a new order shows.
SalesStatus = _enum(
    "SalesStatus", "None", "Backorder", "Delivered", "Invoiced", "Canceled", labels={"Backorder": "Open order"}
)
DocumentStatus = _enum(
    "DocumentStatus",
    "None",
    "Quotation",
    "PurchaseOrder",
    "Confirmation",
    "PickingList",
    "PackingSlip",
    "ReceiptsList",
    "Invoice",
    "ApproveJournal",
    "ProjectInvoice",
    "ProjectPackingSlip",
    "CRMQuotation",
    "Lost",
    "Cancelled",
    "FreeTextInvoice",
)
SalesQuotationStatus = _enum(
    "SalesQuotationStatus",
    "Created",
    "Sent",
    "Confirmed",
    "Lost",
    "Cancelled",
    "Reset",
    "Modified",
    "Submitted",
    "Approved",
    "Revised",
)
SalesOrderProcessingStatus = _enum(
    "SalesOrderProcessingStatus",
    "None",
    "Active",
    "Confirmed",
    "Picked",
    "PartiallyDelivered",
    "Delivered",
    "PartiallyInvoiced",
    "Invoiced",
    "Canceled",
    "DeliveredPartiallyInvoiced",
)
CustVendorBlocked = _enum("CustVendorBlocked", "No", "Invoice", "All", "Payment", "Requisition", "Never")
DirPartyType = _enum("DirPartyType", "None", "Person", "Organization")
Gender = _enum("Gender", "Unknown", "Male", "Female", "NonSpecific")
EcoResProductType = _enum("EcoResProductType", "Item", "Service", values=[1, 2])
EcoResProductSubtype = _enum("EcoResProductSubtype", "Product", "ProductMaster", values=[1, 2])
FieldServiceProductType = _enum("FieldServiceProductType", "Inventory", "NonInventory", "Service")
UnitOfMeasureClass = _enum(
    "UnitOfMeasureClass", "Undefined", "Quantity", "Length", "Area", "Volume", "Mass", "Time", "Temperature"
)
UnitOfMeasureSystemOfUnits = _enum("UnitOfMeasureSystemOfUnits", "None", "Metric", "US")
InventLocationType = _enum("InventLocationType", "Standard", "Quarantine", "Transit", "GoodsInRoute_RU")
PaymTermType = _enum(
    "PaymTermType", "Net", "CurrentMth", "CurrentQuart", "CurrentYear", "CurrentWeek", "COD", "CutOffDate"
)
SalesOrderPromisingMethod = _enum(
    "SalesDeliveryDateControlType", "None", "SalesLeadTime", "ATP", "ATPPlusIssueMargin", "CTP"
)
SalesQuotationHeaderCreationMethod = _enum("SalesQuotationHeaderCreationMethod", "SCM", "Dynamics365Sales")
SalesQuotationOwnership = _enum("SalesQuotationOwnership", "BasedOnOrigin", "SCM", "Dynamics365Sales")
LedgerJournalACType = _enum(
    "LedgerJournalACType", "Ledger", "Cust", "Vend", "Project", "FixedAssets", "Bank", values=[0, 1, 2, 3, 5, 6]
)

ENUMS = [
    NoYes,
    SalesStatus,
    DocumentStatus,
    SalesQuotationStatus,
    SalesOrderProcessingStatus,
    CustVendorBlocked,
    DirPartyType,
    Gender,
    EcoResProductType,
    EcoResProductSubtype,
    FieldServiceProductType,
    UnitOfMeasureClass,
    UnitOfMeasureSystemOfUnits,
    InventLocationType,
    PaymTermType,
    SalesOrderPromisingMethod,
    SalesQuotationHeaderCreationMethod,
    SalesQuotationOwnership,
    LedgerJournalACType,
]

#: The AOT entity behind each public type, named in Infolog messages ("Write failed for table row of type ...").
TECHNICAL_NAMES: dict[str, str] = {
    "LegalEntity": "OMLegalEntity",
    "Currency": "CurrencyEntity",
    "UnitOfMeasure": "UnitOfMeasureEntity",
    "CustomerGroup": "CustCustomerGroupEntity",
    "PaymentTerm": "PaymentTermEntity",
    "DeliveryTerm": "DlvTermEntity",
    "DeliveryMode": "DlvModeEntity",
    "SalesTaxGroup": "TaxGroupEntity",
    "CustomerPaymentMethod": "CustPaymentMethodEntity",
    "PriceCustomerGroup": "PriceDiscGroupEntity",
    "SalesOrderOrigin": "SalesOrderOriginEntity",
    "OperationalSite": "InventOperationalSiteEntity",
    "Warehouse": "InventWarehouseEntity",
    "ReleasedProductV2": "EcoResReleasedProductV2Entity",
    "CDSReleasedDistinctProduct": "EcoResReleasedDistinctProductCDSEntity",
    "WarehouseOnHandV2": "InventWarehouseOnHandV2Entity",
    "CustomerV3": "CustCustomerV3Entity",
    "ContactPersonV2": "ContactPersonV2Entity",
    "SalesQuotationHeaderV2": "SalesQuotationHeaderV2Entity",
    "SalesQuotationLine": "SalesQuotationLineEntity",
    "CDSSalesQuotationHeader": "SalesQuotationHeaderCDSEntity",
    "CDSSalesQuotationLine": "SalesQuotationLineCDSEntity",
    "SalesOrderHeaderV2": "SalesOrderHeaderV2Entity",
    "SalesOrderLine": "SalesOrderLineEntity",
    "CDSSalesOrderHeader": "SalesOrderHeaderCDSEntity",
    "CDSSalesOrderLineV2": "SalesOrderLineCDSEntity",
    "SalesInvoiceHeaderV2": "SalesInvoiceHeaderV2Entity",
    "SalesInvoiceLineV2": "SalesInvoiceLineV2Entity",
    "CustomerPaymentJournalHeader": "CustomerPaymentJournalHeaderEntity",
    "CustomerPaymentJournalLine": "CustomerPaymentJournalLineEntity",
}


#: ``EntityCategory`` of each entity in the metadata service (``/Metadata/DataEntities``); unlisted: Master.
ENTITY_CATEGORIES: dict[str, str] = {
    **{
        name: "Reference"
        for name in (
            "LegalEntity",
            "Currency",
            "UnitOfMeasure",
            "CustomerGroup",
            "PaymentTerm",
            "DeliveryTerm",
            "DeliveryMode",
            "SalesTaxGroup",
            "CustomerPaymentMethod",
            "PriceCustomerGroup",
            "SalesOrderOrigin",
            "OperationalSite",
            "Warehouse",
        )
    },
    **{
        name: "Document"
        for name in (
            "SalesQuotationHeaderV2",
            "SalesQuotationLine",
            "CDSSalesQuotationHeader",
            "CDSSalesQuotationLine",
            "SalesOrderHeaderV2",
            "SalesOrderLine",
            "CDSSalesOrderHeader",
            "CDSSalesOrderLineV2",
            "SalesInvoiceHeaderV2",
            "SalesInvoiceLineV2",
        )
    },
    "WarehouseOnHandV2": "Transaction",
    "CustomerPaymentJournalHeader": "Transaction",
    "CustomerPaymentJournalLine": "Transaction",
}


# ---- property helpers -------------------------------------------------------------------------------------
def text(
    name: str,
    max_length: int | None = None,
    *,
    key: bool = False,
    label: str | None = None,
    read_only: bool = False,
    description: str | None = None,
) -> Property:
    """A string: F&O never returns null strings, unset is ``""``."""
    return Property(
        name,
        STRING,
        nullable=not key,
        max_length=max_length,
        default="",
        label=label,
        read_only=read_only,
        description=description,
    )


def company() -> Property:
    return Property("dataAreaId", STRING, nullable=False, max_length=4, default="", label="Company")


def amount(name: str, *, read_only: bool = False, default: Any = ZERO, label: str | None = None) -> Property:
    """A decimal amount or quantity. ``default=None`` marks "omitted" so the rules can fill a derived default."""
    return Property(name, DECIMAL, precision=32, scale=6, default=default, read_only=read_only, label=label)


def integer(name: str, *, key: bool = False, default: Any = 0, read_only: bool = False) -> Property:
    return Property(name, INT32, nullable=not key, default=default, read_only=read_only)


def date(name: str, *, read_only: bool = False, label: str | None = None) -> Property:
    """A date-only field: stored at 12:00:00Z, unset = 1900-01-01T12:00:00Z."""
    return Property(name, DATETIME, default=EMPTY_DATE, read_only=read_only, label=label)


def enum(
    name: str, enum_type: EnumType, default: str, *, read_only: bool = False, label: str | None = None
) -> Property:
    value = enum_type.members[default]
    return Property(name, INT32, nullable=False, default=value, enum=enum_type, read_only=read_only, label=label)


def noyes(name: str, default: str = "No", *, read_only: bool = False) -> Property:
    return enum(name, NoYes, default, read_only=read_only)


def props(*items: Property) -> dict[str, Property]:
    return {p.name: p for p in items}


def subset(base: EntityType, names: Iterable[str]) -> dict[str, Property]:
    """The alias (view) entity's properties: the named properties of its base, the same objects."""
    return {name: base.properties[name] for name in names}


def nav(name: str, target: str, many: bool, *pairs: tuple[str, str], partner: str | None = None) -> NavigationProperty:
    return NavigationProperty(name, target, many, list(pairs), partner=partner)


def company_entity(
    name: str,
    entity_set: str,
    key: tuple[str, ...],
    properties: dict[str, Property],
    *,
    navigations: Iterable[NavigationProperty] = (),
    alternate_keys: Iterable[tuple[str, ...]] = (),
    read_only: bool = False,
    alias_of: str | None = None,
    primary_name: str | None = None,
) -> EntityType:
    """A company-specific entity: ``dataAreaId`` first in the key and in the properties."""
    all_props = {"dataAreaId": company()} if "dataAreaId" not in properties else {}
    all_props.update(properties)
    return EntityType(
        name=name,
        entity_set=entity_set,
        key=("dataAreaId", *key),
        properties=all_props,
        navigations={n.name: n for n in navigations},
        alternate_keys=list(alternate_keys),
        company_property="dataAreaId",
        read_only=read_only,
        alias_of=alias_of,
        primary_name=primary_name,
        description=TECHNICAL_NAMES.get(name),
    )


def shared_entity(
    name: str,
    entity_set: str,
    key: tuple[str, ...],
    properties: dict[str, Property],
    *,
    primary_name: str | None = None,
) -> EntityType:
    return EntityType(
        name=name,
        entity_set=entity_set,
        key=key,
        properties=properties,
        primary_name=primary_name,
        description=TECHNICAL_NAMES.get(name),
    )


# ---- the entities -----------------------------------------------------------------------------------------
def _reference_entities() -> list[EntityType]:
    return [
        shared_entity(
            "LegalEntity",
            "LegalEntities",
            ("LegalEntityId",),
            props(
                text("LegalEntityId", 4, key=True),
                text("Name", 100),
                text("NameAlias", 20),
                text("AccountingCurrencyCode", 3, label="Currency"),
                text("AddressCountryRegionId", 10),
                text("LanguageId", 7),
                text("PartyNumber", 20),
            ),
            primary_name="Name",
        ),
        shared_entity(
            "Currency",
            "Currencies",
            ("CurrencyCode",),
            props(
                text("CurrencyCode", 3, key=True),
                text("Name", 60),
                text("Symbol", 5),
                amount("GeneralRoundingRule", default=decimal.Decimal("0.01")),
                noyes("ReferenceCurrencyForTriangulation"),
            ),
            primary_name="Name",
        ),
        shared_entity(
            "UnitOfMeasure",
            "UnitsOfMeasure",
            ("UnitSymbol",),
            props(
                text("UnitSymbol", 10, key=True),
                text("UnitDescription", 60),
                enum("UnitClass", UnitOfMeasureClass, "Quantity"),
                integer("DecimalPrecision"),
                noyes("IsBaseUnit"),
                noyes("IsSystemUnit"),
                enum("SystemOfUnits", UnitOfMeasureSystemOfUnits, "None"),
            ),
            primary_name="UnitDescription",
        ),
        company_entity(
            "CustomerGroup",
            "CustomerGroups",
            ("CustomerGroupId",),
            props(
                text("CustomerGroupId", 10, key=True),
                text("Description", 60),
                text("PaymentTermId", 10, label="Terms of payment"),
                noyes("IsSalesTaxIncludedInPrice"),
                text("TaxGroupId", 10),
            ),
            primary_name="Description",
        ),
        company_entity(
            "PaymentTerm",
            "PaymentTerms",
            ("Name",),
            props(
                text("Name", 10, key=True),
                text("Description", 60),
                integer("NumberOfDays"),
                integer("NumberOfMonths"),
                enum("PaymentMethodType", PaymTermType, "Net"),
                noyes("IsCashPayment"),
                noyes("IsDefaultPaymentTerm"),
            ),
            primary_name="Description",
        ),
        company_entity(
            "DeliveryTerm",
            "DeliveryTerms",
            ("TermsCode",),
            props(text("TermsCode", 10, key=True), text("TermsDescription", 60)),
            primary_name="TermsDescription",
        ),
        company_entity(
            "DeliveryMode",
            "DeliveryModes",
            ("ModeCode",),
            props(text("ModeCode", 10, key=True), text("ModeDescription", 60)),
            primary_name="ModeDescription",
        ),
        company_entity(
            "SalesTaxGroup",
            "SalesTaxGroups",
            ("TaxGroupCode",),
            props(text("TaxGroupCode", 10, key=True), text("Description", 60)),
            primary_name="Description",
        ),
        company_entity(
            "CustomerPaymentMethod",
            "CustomerPaymentMethods",
            ("Name",),
            props(text("Name", 10, key=True), text("Description", 60)),
            primary_name="Description",
        ),
        company_entity(
            "PriceCustomerGroup",
            "PriceCustomerGroups",
            ("GroupCode",),
            props(text("GroupCode", 10, key=True), text("Name", 60)),
            primary_name="Name",
        ),
        company_entity(
            "SalesOrderOrigin",
            "SalesOrderOrigins",
            ("OriginCode",),
            props(text("OriginCode", 10, key=True), text("Description", 60)),
            primary_name="Description",
        ),
        company_entity(
            "OperationalSite",
            "OperationalSites",
            ("SiteId",),
            props(text("SiteId", 10, key=True), text("SiteName", 60)),
            primary_name="SiteName",
        ),
        company_entity(
            "Warehouse",
            "Warehouses",
            ("WarehouseId",),
            props(
                text("WarehouseId", 10, key=True),
                text("WarehouseName", 60),
                text("OperationalSiteId", 10, label="Site"),
                enum("WarehouseType", InventLocationType, "Standard"),
                noyes("AreWarehouseManagementProcessesUsed"),
            ),
            navigations=[
                nav(
                    "OperationalSite",
                    "OperationalSite",
                    False,
                    ("dataAreaId", "dataAreaId"),
                    ("OperationalSiteId", "SiteId"),
                )
            ],
            primary_name="WarehouseName",
        ),
    ]


PRODUCT_PROPERTIES = props(
    text("ItemNumber", 20, key=True),
    text("ProductNumber", 20),
    text("ProductName", 60),
    text("SearchName", 20),
    text("ProductDescription", 1000),
    enum("ProductType", EcoResProductType, "Item"),
    enum("ProductSubType", EcoResProductSubtype, "Product"),
    enum("FieldServiceProductType", FieldServiceProductType, "Inventory"),
    text("ItemModelGroupId", 10),
    text("ProductGroupId", 10),
    text("StorageDimensionGroupName", 10),
    text("TrackingDimensionGroupName", 10),
    text("InventoryUnitSymbol", 10, label="Inventory unit"),
    text("SalesUnitSymbol", 10, label="Sales unit"),
    text("PurchaseUnitSymbol", 10, label="Purchase unit"),
    integer("SalesUnitDecimalPrecision"),
    amount("SalesPrice"),
    amount("SalesPriceQuantity", default=decimal.Decimal("1")),
    amount("UnitCost"),
    text("CurrencyCode", 3, label="Currency"),
    text("SalesSalesTaxItemGroupCode", 10),
    text("DefaultSalesSiteId", 10, label="Site"),
    text("DefaultSalesWarehouseId", 10, label="Warehouse"),
    noyes("IsStockedProduct", "Yes"),
    noyes("IsSalesProcessingStopped"),
    text("ProductColorId", 10),
    text("ProductSizeId", 10),
    text("ProductStyleId", 10),
    text("ProductConfigurationId", 10),
    text("ProductVersionId", 10),
)


def _product_entities() -> list[EntityType]:
    released = company_entity(
        "ReleasedProductV2",
        "ReleasedProductsV2",
        ("ItemNumber",),
        dict(PRODUCT_PROPERTIES),
        alternate_keys=[("dataAreaId", "ProductNumber")],
        primary_name="ProductName",
    )
    distinct = company_entity(
        "CDSReleasedDistinctProduct",
        "CDSReleasedDistinctProducts",
        ("ProductNumber",),
        subset(
            released,
            [
                "dataAreaId",
                "ProductNumber",
                "ItemNumber",
                "ProductName",
                "ProductDescription",
                "ProductType",
                "FieldServiceProductType",
                "SalesUnitSymbol",
                "SalesUnitDecimalPrecision",
                "InventoryUnitSymbol",
                "PurchaseUnitSymbol",
                "SalesPrice",
                "UnitCost",
                "CurrencyCode",
                "IsStockedProduct",
                "ProductColorId",
                "ProductSizeId",
                "ProductStyleId",
                "ProductConfigurationId",
                "ProductVersionId",
                "SearchName",
            ],
        ),
        alias_of="ReleasedProductV2",
        read_only=True,
        primary_name="ProductName",
    )
    onhand = company_entity(
        "WarehouseOnHandV2",
        "WarehousesOnHandV2",
        ("ItemNumber", "InventorySiteId", "InventoryWarehouseId"),
        props(
            text("ItemNumber", 20, key=True),
            text("InventorySiteId", 10, key=True),
            text("InventoryWarehouseId", 10, key=True),
            text("ProductName", 60),
            text("ProductColorId", 10),
            text("ProductSizeId", 10),
            text("ProductStyleId", 10),
            text("ProductConfigurationId", 10),
            text("ProductVersionId", 10),
            amount("OnHandQuantity"),
            amount("ReservedOnHandQuantity"),
            amount("AvailableOnHandQuantity"),
            amount("OrderedQuantity"),
            amount("ReservedOrderedQuantity"),
            amount("AvailableOrderedQuantity"),
            amount("OnOrderQuantity"),
            amount("TotalAvailableQuantity"),
            noyes("AreWarehouseManagementProcessesUsed"),
        ),
        read_only=True,
    )
    return [released, distinct, onhand]


#: (part, length) of the customer's Address*, DeliveryAddress* and InvoiceAddress* fields
CUSTOMER_ADDRESS_PARTS = (
    ("Description", 60),
    ("Street", 250),
    ("StreetNumber", 20),
    ("City", 60),
    ("State", 10),
    ("County", 10),
    ("ZipCode", 10),
    ("CountryRegionId", 10),
)

CUSTOMER_PROPERTIES = props(
    text("CustomerAccount", 20, key=True),
    enum("PartyType", DirPartyType, "Organization"),
    text("PartyNumber", 20),
    text("OrganizationName", 100),
    text("Name", 100),
    text("NameAlias", 20),
    text("PersonFirstName", 25),
    text("PersonMiddleName", 25),
    text("PersonLastName", 25),
    enum("PersonGender", Gender, "Unknown"),
    text("CustomerGroupId", 10, label="Customer group"),
    text("SalesCurrencyCode", 3, label="Currency"),
    text("PaymentTerms", 10, label="Terms of payment"),
    text("PaymentMethod", 10),
    text("PaymentDay", 10),
    text("PaymentSchedule", 10),
    integer("PaymentTermsBaseDays"),
    text("SalesTaxGroup", 10),
    text("TaxExemptNumber", 20),
    text("IdentificationNumber", 50),
    amount("CreditLimit"),
    noyes("CreditLimitIsMandatory"),
    text("CreditRating", 10),
    enum("OnHoldStatus", CustVendorBlocked, "No"),
    text("InvoiceAccount", 20, label="Invoice account"),
    noyes("IsOneTimeCustomer"),
    text("LanguageId", 7),
    text("ContactPersonId", 20),
    text("VendorAccount", 20),
    text("SalesMemo", 1000),
    text("DeliveryMode", 10, label="Mode of delivery"),
    text("DeliveryTerms", 10, label="Delivery terms"),
    text("SiteId", 10, label="Site"),
    text("WarehouseId", 10, label="Warehouse"),
    text("PriceCustomerGroupCode", 10),
    text("SalesOrderOriginCode", 10),
    text("AddressDescription", 60),
    text("AddressStreet", 250),
    text("AddressStreetNumber", 20),
    text("AddressCity", 60),
    text("AddressState", 10),
    text("AddressCounty", 10),
    text("AddressZipCode", 10),
    text("AddressCountryRegionId", 10),
    text("AddressCountryRegionISOCode", 2),
    text("PartyCountry", 10),
    text("PartyState", 10),
    text("PrimaryContactEmail", 255),
    text("PrimaryContactPhone", 255),
    text("PrimaryContactURL", 255),
    text("PrimaryContactFax", 255),
    integer("OrganizationNumberOfEmployees"),
    # the customer's delivery and invoice addresses (the 2020 customer map's DELIVERYADDRESS* / INVOICEADDRESS*);
    # on create they default to the primary address (Address*)
    *(text(f"DeliveryAddress{part}", size) for part, size in CUSTOMER_ADDRESS_PARTS),
    text("DeliveryAddressCountryRegionISOCode", 2),
    *(text(f"InvoiceAddress{part}", size) for part, size in CUSTOMER_ADDRESS_PARTS),
    text("InvoiceAddressCountryRegionISOCode", 2),
)


def _customer_entities() -> list[EntityType]:
    customers = company_entity(
        "CustomerV3",
        "CustomersV3",
        ("CustomerAccount",),
        dict(CUSTOMER_PROPERTIES),
        navigations=[
            nav(
                "CustomerGroup",
                "CustomerGroup",
                False,
                ("dataAreaId", "dataAreaId"),
                ("CustomerGroupId", "CustomerGroupId"),
            )
        ],
        primary_name="Name",
    )
    contacts = company_entity(
        "ContactPersonV2",
        "ContactPersonsV2",
        ("ContactPersonId",),
        props(
            text("ContactPersonId", 20, key=True),
            text("ContactPersonPartyNumber", 20),
            text("AssociatedPartyNumber", 20),
            text("CustomerAccount", 20, label="Customer account"),
            text("FirstName", 25),
            text("MiddleName", 25),
            text("LastName", 25),
            text("ContactPersonName", 100),
            text("JobTitle", 60),
            text("PrimaryContactEmail", 255),
            text("PrimaryContactPhone", 255),
            text("LanguageId", 7),
            noyes("IsInactive"),
        ),
        primary_name="ContactPersonName",
    )
    return [customers, contacts]


# Document address fields shared by quotation and order headers.
def _address_props() -> list[Property]:
    return [
        text("DeliveryAddressName", 100),
        text("DeliveryAddressDescription", 60),
        text("DeliveryAddressStreet", 250),
        text("DeliveryAddressStreetNumber", 20),
        text("DeliveryAddressCity", 60),
        text("DeliveryAddressStateId", 10),
        text("DeliveryAddressCountyId", 10),
        text("DeliveryAddressZipCode", 10),
        text("DeliveryAddressCountryRegionId", 10),
        text("DeliveryAddressCountryRegionISOCode", 2),
        text("InvoiceAddressStreet", 250),
        text("InvoiceAddressStreetNumber", 20),
        text("InvoiceAddressCity", 60),
        text("InvoiceAddressState", 10),
        text("InvoiceAddressCounty", 10),
        text("InvoiceAddressZipCode", 10),
        text("InvoiceAddressCountryRegionId", 10),
        text("InvoiceAddressCountryRegionISOCode", 2),
    ]


def _line_common() -> list[Property]:
    """Fields quotation and order lines share (item, unit, price, discounts, site/warehouse, tax)."""
    return [
        integer("LineCreationSequenceNumber", default=None),
        amount("LineNumber", default=None),
        text("InventoryLotId", 20, key=True),
        text("ItemNumber", 20, label="Item number"),
        text("ProductNumber", 20),
        text("ProductName", 60),
        text("LineDescription", 1000),
        text("SalesUnitSymbol", 10, label="Unit"),
        amount("SalesPrice", default=None),
        amount("SalesPriceQuantity", default=decimal.Decimal("1")),
        amount("LineDiscountAmount"),
        amount("LineDiscountPercentage"),
        amount("MultilineDiscountAmount"),
        amount("MultilineDiscountPercentage"),
        amount("TotalDiscountAmount", default=None),
        amount("TotalChargesAmount", read_only=True),
        amount("TotalTaxAmount", read_only=True),
        amount("LineAmount", read_only=True),
        text("CurrencyCode", 3),
        text("ShippingSiteId", 10, label="Site"),
        text("ShippingWarehouseId", 10, label="Warehouse"),
        text("SalesTaxGroupCode", 10),
        text("SalesTaxItemGroupCode", 10),
        text("ProductColorId", 10),
        text("ProductSizeId", 10),
        text("ProductStyleId", 10),
        text("ProductConfigurationId", 10),
        date("RequestedShippingDate"),
        date("RequestedReceiptDate"),
        noyes("AreTotalsCalculated", "Yes", read_only=True),
    ]


QUOTATION_CDS_HEADER = [
    "dataAreaId",
    "SalesQuotationNumber",
    "RequestingCustomerAccountNumber",
    "InvoiceCustomerAccountNumber",
    "CurrencyCode",
    "LanguageId",
    "SalesQuotationName",
    "SalesQuotationStatus",
    "SalesQuotationExpiryDate",
    "ConfirmationDate",
    "FollowUpDate",
    "RequestedShippingDate",
    "RequestedReceiptDate",
    "GeneratedSalesOrderNumber",
    "OpportunityId",
    "SkipOpportunityCreationPrompt",
    "QuotationTotalAmount",
    "QuotationTotalTaxAmount",
    "QuotationTotalChargesAmount",
    "TotalDiscountAmount",
    "TotalDiscountPercentage",
    "PaymentTermsName",
    "PriceCustomerGroupCode",
    "DefaultShippingSiteId",
    "DefaultShippingWarehouseId",
    "DeliveryModeCode",
    "DeliveryTermsCode",
    "OperatingUnitPartyNumber",
    "ArePricesIncludingSalesTax",
    "SalesOrderPromisingMethod",
    "SalesQuotationHeaderCreationMethod",
    "SalesQuotationOwnership",
    "CustomersReference",
    "CustomerRequisitionNumber",
    "ContactPersonId",
    "SalesTaxGroupCode",
    "AreTotalsUpdated",
    *[p.name for p in _address_props()],
]

QUOTATION_CDS_LINE = [
    "dataAreaId",
    "SalesQuotationNumber",
    "LineCreationSequenceNumber",
    "LineNumber",
    "InventoryLotId",
    "ProductNumber",
    "ItemNumber",
    "ProductName",
    "LineDescription",
    "RequestedSalesQuantity",
    "SalesUnitSymbol",
    "SalesPrice",
    "LineAmount",
    "LineDiscountAmount",
    "LineDiscountPercentage",
    "MultilineDiscountAmount",
    "MultilineDiscountPercentage",
    "TotalDiscountAmount",
    "TotalChargesAmount",
    "TotalTaxAmount",
    "CurrencyCode",
    "ShippingSiteId",
    "ShippingWarehouseId",
    "SalesQuotationStatus",
    "SalesTaxGroupCode",
    "SalesTaxItemGroupCode",
    "RequestedShippingDate",
    "RequestedReceiptDate",
    "AreTotalsCalculated",
]


def _quotation_entities() -> list[EntityType]:
    header = company_entity(
        "SalesQuotationHeaderV2",
        "SalesQuotationHeadersV2",
        ("SalesQuotationNumber",),
        props(
            text("SalesQuotationNumber", 20, key=True),
            text("RequestingCustomerAccountNumber", 20, label="Customer account"),
            text("InvoiceCustomerAccountNumber", 20, label="Invoice account"),
            text("CurrencyCode", 3, label="Currency"),
            text("LanguageId", 7),
            text("SalesQuotationName", 100),
            enum("SalesQuotationStatus", SalesQuotationStatus, "Created", read_only=True),
            date("SalesQuotationExpiryDate"),
            date("ConfirmationDate", read_only=True),
            date("FollowUpDate"),
            date("RequestedShippingDate"),
            date("RequestedReceiptDate"),
            text("GeneratedSalesOrderNumber", 20, read_only=True),
            text("OpportunityId", 20),
            noyes("SkipOpportunityCreationPrompt"),
            amount("QuotationTotalAmount", read_only=True),
            amount("QuotationTotalTaxAmount", read_only=True),
            amount("QuotationTotalChargesAmount", read_only=True),
            amount("TotalDiscountAmount", read_only=True),
            amount("TotalDiscountPercentage"),
            text("PaymentTermsName", 10, label="Terms of payment"),
            text("PriceCustomerGroupCode", 10),
            text("DefaultShippingSiteId", 10, label="Site"),
            text("DefaultShippingWarehouseId", 10, label="Warehouse"),
            text("DeliveryModeCode", 10, label="Mode of delivery"),
            text("DeliveryTermsCode", 10, label="Delivery terms"),
            text("OperatingUnitPartyNumber", 20),
            noyes("ArePricesIncludingSalesTax"),
            enum("SalesOrderPromisingMethod", SalesOrderPromisingMethod, "None"),
            enum("SalesQuotationHeaderCreationMethod", SalesQuotationHeaderCreationMethod, "SCM"),
            enum("SalesQuotationOwnership", SalesQuotationOwnership, "BasedOnOrigin"),
            text("CustomersReference", 60),
            text("CustomerRequisitionNumber", 20),
            text("ContactPersonId", 20),
            text("SalesTaxGroupCode", 10),
            noyes("AreTotalsUpdated", "Yes", read_only=True),
            *_address_props(),
        ),
        navigations=[
            nav(
                "SalesQuotationLines",
                "SalesQuotationLine",
                True,
                ("dataAreaId", "dataAreaId"),
                ("SalesQuotationNumber", "SalesQuotationNumber"),
                partner="SalesQuotationHeader",
            )
        ],
        primary_name="SalesQuotationName",
    )
    line = company_entity(
        "SalesQuotationLine",
        "SalesQuotationLines",
        ("InventoryLotId",),
        props(
            text("SalesQuotationNumber", 20),
            *_line_common(),
            amount("RequestedSalesQuantity", default=None),
            enum("SalesQuotationStatus", SalesQuotationStatus, "Created", read_only=True),
        ),
        alternate_keys=[("dataAreaId", "SalesQuotationNumber", "LineCreationSequenceNumber")],
        navigations=[
            nav(
                "SalesQuotationHeader",
                "SalesQuotationHeaderV2",
                False,
                ("dataAreaId", "dataAreaId"),
                ("SalesQuotationNumber", "SalesQuotationNumber"),
                partner="SalesQuotationLines",
            )
        ],
    )
    cds_header = company_entity(
        "CDSSalesQuotationHeader",
        "CDSSalesQuotationHeaders",
        ("SalesQuotationNumber",),
        subset(header, QUOTATION_CDS_HEADER),
        alias_of="SalesQuotationHeaderV2",
        navigations=[
            nav(
                "SalesQuotationLines",
                "CDSSalesQuotationLine",
                True,
                ("dataAreaId", "dataAreaId"),
                ("SalesQuotationNumber", "SalesQuotationNumber"),
                partner="SalesQuotationHeader",
            )
        ],
        primary_name="SalesQuotationName",
    )
    cds_line = company_entity(
        "CDSSalesQuotationLine",
        "CDSSalesQuotationLines",
        ("SalesQuotationNumber", "LineCreationSequenceNumber"),
        subset(line, QUOTATION_CDS_LINE),
        alias_of="SalesQuotationLine",
        alternate_keys=[("dataAreaId", "InventoryLotId")],
        navigations=[
            nav(
                "SalesQuotationHeader",
                "CDSSalesQuotationHeader",
                False,
                ("dataAreaId", "dataAreaId"),
                ("SalesQuotationNumber", "SalesQuotationNumber"),
                partner="SalesQuotationLines",
            )
        ],
    )
    return [header, line, cds_header, cds_line]


ORDER_CDS_HEADER = [
    "dataAreaId",
    "SalesOrderNumber",
    "OrderingCustomerAccountNumber",
    "InvoiceCustomerAccountNumber",
    "CurrencyCode",
    "LanguageId",
    "SalesOrderName",
    "SalesOrderStatus",
    "SalesOrderProcessingStatus",
    "QuotationNumber",
    "RequestedShippingDate",
    "RequestedReceiptDate",
    "ConfirmedShippingDate",
    "ConfirmedReceiptDate",
    "CustomersOrderReference",
    "CustomerRequisitionNumber",
    "PaymentTermsName",
    "DeliveryModeCode",
    "DeliveryTermsCode",
    "DefaultShippingSiteId",
    "DefaultShippingWarehouseId",
    "OrderTotalAmount",
    "OrderTotalTaxAmount",
    "TotalDiscountAmount",
    "TotalDiscountPercentage",
    "OrderTotalChargesAmount",
    "OrderTotalDiscountAmount",
    "SalesOrderOriginCode",
    "IsSalesProcessingStopped",
    "AreTotalsUpdated",
    "SkipGlobalUnifiedPricingCalculation",
    "OrderingCustomerIsExternallyMaintained",
    "InvoiceCustomerIsExternallyMaintained",
    "PriceCustomerGroupCode",
    "ContactPersonId",
    "Email",
    "URL",
    "IsOneTimeCustomer",
    "ArePricesIncludingSalesTax",
    "SalesOrderPromisingMethod",
    "SalesTaxGroupCode",
    *[p.name for p in _address_props()],
]

ORDER_CDS_LINE = [
    "dataAreaId",
    "SalesOrderNumber",
    "LineCreationSequenceNumber",
    "LineNumber",
    "InventoryLotId",
    "ProductNumber",
    "ItemNumber",
    "ProductName",
    "LineDescription",
    "OrderedSalesQuantity",
    "SalesUnitSymbol",
    "SalesPrice",
    "LineAmount",
    "LineDiscountAmount",
    "LineDiscountPercentage",
    "MultilineDiscountAmount",
    "MultilineDiscountPercentage",
    "TotalDiscountAmount",
    "TotalChargesAmount",
    "TotalTaxAmount",
    "CurrencyCode",
    "ShippingSiteId",
    "ShippingWarehouseId",
    "SalesOrderLineStatus",
    "IsLineStopped",
    "DeliveryModeCode",
    "DeliveryTermsId",
    "SalesDeliverNow",
    "InventoryServiceReservationId",
    "AreTotalsCalculated",
    "SalesTaxGroupCode",
    "SalesTaxItemGroupCode",
    "RequestedShippingDate",
    "RequestedReceiptDate",
    "ConfirmedShippingDate",
    "DeliveredSalesQuantity",
    "InvoicedSalesQuantity",
    "RemainingSalesPhysicalQuantity",
]


def _order_entities() -> list[EntityType]:
    header = company_entity(
        "SalesOrderHeaderV2",
        "SalesOrderHeadersV2",
        ("SalesOrderNumber",),
        props(
            text("SalesOrderNumber", 20, key=True),
            text("OrderingCustomerAccountNumber", 20, label="Customer account"),
            text("InvoiceCustomerAccountNumber", 20, label="Invoice account"),
            text("CurrencyCode", 3, label="Currency"),
            text("LanguageId", 7),
            text("SalesOrderName", 100),
            enum("SalesOrderStatus", SalesStatus, "Backorder", read_only=True),
            enum("DocumentStatus", DocumentStatus, "None", read_only=True),
            enum("SalesOrderProcessingStatus", SalesOrderProcessingStatus, "Active", read_only=True),
            text("QuotationNumber", 20),
            date("RequestedShippingDate"),
            date("RequestedReceiptDate"),
            date("ConfirmedShippingDate", read_only=True),
            date("ConfirmedReceiptDate", read_only=True),
            text("CustomersOrderReference", 60),
            text("CustomerRequisitionNumber", 20),
            text("PaymentTermsName", 10, label="Terms of payment"),
            text("DeliveryModeCode", 10, label="Mode of delivery"),
            text("DeliveryTermsCode", 10, label="Delivery terms"),
            text("DefaultShippingSiteId", 10, label="Site"),
            text("DefaultShippingWarehouseId", 10, label="Warehouse"),
            amount("OrderTotalAmount", read_only=True),
            amount("OrderTotalTaxAmount", read_only=True),
            amount("TotalDiscountAmount", read_only=True),
            amount("TotalDiscountPercentage"),
            amount("OrderTotalChargesAmount", read_only=True),
            amount("OrderTotalDiscountAmount", read_only=True),
            text("SalesOrderOriginCode", 10),
            noyes("IsSalesProcessingStopped"),
            noyes("AreTotalsUpdated", "Yes", read_only=True),
            noyes("SkipGlobalUnifiedPricingCalculation"),
            noyes("OrderingCustomerIsExternallyMaintained"),
            noyes("InvoiceCustomerIsExternallyMaintained"),
            text("PriceCustomerGroupCode", 10),
            text("ContactPersonId", 20),
            text("Email", 255),
            text("URL", 255),
            noyes("IsOneTimeCustomer"),
            noyes("ArePricesIncludingSalesTax"),
            enum("SalesOrderPromisingMethod", SalesOrderPromisingMethod, "None"),
            text("SalesTaxGroupCode", 10),
            *_address_props(),
        ),
        navigations=[
            nav(
                "SalesOrderLines",
                "SalesOrderLine",
                True,
                ("dataAreaId", "dataAreaId"),
                ("SalesOrderNumber", "SalesOrderNumber"),
                partner="SalesOrderHeader",
            ),
            nav(
                "Customer",
                "CustomerV3",
                False,
                ("dataAreaId", "dataAreaId"),
                ("OrderingCustomerAccountNumber", "CustomerAccount"),
            ),
        ],
        primary_name="SalesOrderName",
    )
    line = company_entity(
        "SalesOrderLine",
        "SalesOrderLines",
        ("InventoryLotId",),
        props(
            text("SalesOrderNumber", 20),
            *_line_common(),
            amount("OrderedSalesQuantity", default=None),
            enum("SalesOrderLineStatus", SalesStatus, "Backorder", read_only=True),
            noyes("IsLineStopped"),
            text("DeliveryModeCode", 10),
            text("DeliveryTermsId", 10),
            amount("SalesDeliverNow"),
            text("InventoryServiceReservationId", 40),
            date("ConfirmedShippingDate", read_only=True),
            amount("DeliveredSalesQuantity", read_only=True),
            amount("InvoicedSalesQuantity", read_only=True),
            amount("ReservedSalesQuantity", read_only=True),
            amount("RemainingSalesPhysicalQuantity", read_only=True),
            amount("RemainingSalesFinancialQuantity", read_only=True),
        ),
        alternate_keys=[("dataAreaId", "SalesOrderNumber", "LineCreationSequenceNumber")],
        navigations=[
            nav(
                "SalesOrderHeader",
                "SalesOrderHeaderV2",
                False,
                ("dataAreaId", "dataAreaId"),
                ("SalesOrderNumber", "SalesOrderNumber"),
                partner="SalesOrderLines",
            )
        ],
    )
    cds_header = company_entity(
        "CDSSalesOrderHeader",
        "CDSSalesOrderHeaders",
        ("SalesOrderNumber",),
        subset(header, ORDER_CDS_HEADER),
        alias_of="SalesOrderHeaderV2",
        navigations=[
            nav(
                "SalesOrderLines",
                "CDSSalesOrderLineV2",
                True,
                ("dataAreaId", "dataAreaId"),
                ("SalesOrderNumber", "SalesOrderNumber"),
                partner="SalesOrderHeader",
            )
        ],
        primary_name="SalesOrderName",
    )
    cds_line = company_entity(
        "CDSSalesOrderLineV2",
        "CDSSalesOrderLinesV2",
        ("SalesOrderNumber", "LineCreationSequenceNumber"),
        subset(line, ORDER_CDS_LINE),
        alias_of="SalesOrderLine",
        alternate_keys=[("dataAreaId", "InventoryLotId")],
        navigations=[
            nav(
                "SalesOrderHeader",
                "CDSSalesOrderHeader",
                False,
                ("dataAreaId", "dataAreaId"),
                ("SalesOrderNumber", "SalesOrderNumber"),
                partner="SalesOrderLines",
            )
        ],
    )
    return [header, line, cds_header, cds_line]


def _invoice_entities() -> list[EntityType]:
    header = company_entity(
        "SalesInvoiceHeaderV2",
        "SalesInvoiceHeadersV2",
        ("InvoiceNumber",),
        props(
            text("InvoiceNumber", 20, key=True),
            date("InvoiceDate"),
            date("DueDate"),
            text("SalesOrderNumber", 20),
            text("InvoiceCustomerAccountNumber", 20),
            text("OrderingCustomerAccountNumber", 20),
            text("LedgerVoucher", 20),
            text("CustomersOrderReference", 60),
            text("CurrencyCode", 3),
            text("PaymentTermsName", 10),
            text("DeliveryModeCode", 10),
            text("DeliveryTermsCode", 10),
            amount("TotalInvoiceAmount"),
            amount("TotalTaxAmount"),
            amount("TotalChargeAmount"),
            amount("TotalDiscountAmount"),
            text("TotalDiscountCustomerGroupCode", 10),
            amount("InvoiceOpenAmount"),
            noyes("IsSettled"),
            date("LastSettlementDate"),
            text("InvoiceAddressStreet", 250),
            text("InvoiceAddressCity", 60),
            text("InvoiceAddressState", 10),
            text("InvoiceAddressZipCode", 10),
            text("InvoiceAddressCountryRegionId", 10),
            text("InvoiceAddressCountryRegionISOCode", 2),
        ),
        navigations=[
            nav(
                "SalesInvoiceLines",
                "SalesInvoiceLineV2",
                True,
                ("dataAreaId", "dataAreaId"),
                ("InvoiceNumber", "InvoiceNumber"),
                partner="SalesInvoiceHeader",
            )
        ],
        read_only=True,
    )
    line = company_entity(
        "SalesInvoiceLineV2",
        "SalesInvoiceLinesV2",
        ("InvoiceNumber", "LineCreationSequenceNumber"),
        props(
            text("InvoiceNumber", 20, key=True),
            integer("LineCreationSequenceNumber", key=True),
            amount("LineNumber"),
            date("InvoiceDate"),
            text("SalesOrderNumber", 20),
            text("InventoryLotId", 20),
            text("ItemNumber", 20),
            text("ProductNumber", 20),
            text("ProductName", 60),
            text("LineDescription", 1000),
            amount("InvoicedQuantity"),
            text("SalesUnitSymbol", 10),
            amount("SalesPrice"),
            amount("LineAmount"),
            amount("LineTotalDiscountAmount"),
            amount("LineTotalTaxAmount"),
            amount("LineTotalChargesAmount"),
            text("CurrencyCode", 3),
            text("InventorySiteId", 10),
            text("InventoryWarehouseId", 10),
            text("SalesTaxGroupCode", 10),
        ),
        alternate_keys=[("dataAreaId", "InvoiceNumber", "LineNumber")],
        navigations=[
            nav(
                "SalesInvoiceHeader",
                "SalesInvoiceHeaderV2",
                False,
                ("dataAreaId", "dataAreaId"),
                ("InvoiceNumber", "InvoiceNumber"),
                partner="SalesInvoiceLines",
            )
        ],
        read_only=True,
    )
    return [header, line]


def _payment_entities() -> list[EntityType]:
    header = company_entity(
        "CustomerPaymentJournalHeader",
        "CustomerPaymentJournalHeaders",
        ("JournalBatchNumber",),
        props(
            text("JournalBatchNumber", 20, key=True),
            text("JournalName", 10),
            text("Description", 60),
            noyes("IsPosted", read_only=True),
            date("PostingDate", read_only=True),
            integer("LineCount", read_only=True),
        ),
        navigations=[
            nav(
                "CustomerPaymentJournalLines",
                "CustomerPaymentJournalLine",
                True,
                ("dataAreaId", "dataAreaId"),
                ("JournalBatchNumber", "JournalBatchNumber"),
                partner="CustomerPaymentJournalHeader",
            )
        ],
        primary_name="Description",
    )
    line = company_entity(
        "CustomerPaymentJournalLine",
        "CustomerPaymentJournalLines",
        ("JournalBatchNumber", "LineNumber"),
        props(
            text("JournalBatchNumber", 20, key=True),
            Property("LineNumber", DECIMAL, nullable=False, precision=32, scale=6, default=None),
            enum("AccountType", LedgerJournalACType, "Cust"),
            text("AccountDisplayValue", 50, label="Account"),
            date("TransactionDate"),
            amount("CreditAmount"),
            amount("DebitAmount"),
            text("CurrencyCode", 3, label="Currency"),
            text("PaymentMethodName", 10),
            text("PaymentReference", 60),
            text("TransactionText", 60),
            text("MarkedInvoice", 20, label="Invoice"),
            text("OffsetAccountDisplayValue", 50),
            enum("OffsetAccountType", LedgerJournalACType, "Bank"),
            text("Voucher", 20, read_only=True),
            noyes("IsPosted", read_only=True),
            amount("SettledAmount", read_only=True),
            text("SettledInvoices", 500, read_only=True),
        ),
        navigations=[
            nav(
                "CustomerPaymentJournalHeader",
                "CustomerPaymentJournalHeader",
                False,
                ("dataAreaId", "dataAreaId"),
                ("JournalBatchNumber", "JournalBatchNumber"),
                partner="CustomerPaymentJournalLines",
            )
        ],
    )
    return [header, line]


def build_model() -> Model:
    """Every SCM entity, bound to a fresh MetaData (plus the number-sequence counters table)."""
    entities = [
        *_reference_entities(),
        *_product_entities(),
        *_customer_entities(),
        *_quotation_entities(),
        *_order_entities(),
        *_invoice_entities(),
        *_payment_entities(),
    ]
    model = Model(NAMESPACE, entities, ENUMS)
    numbering.sequence_table(model.metadata)
    _lookup_indexes(model)
    model.check()
    return model


def _lookup_indexes(model: Model) -> None:
    """Indexes for the lookups the rules make on every write, so they stay fast as documents pile up."""
    wanted = {
        # open demand and reservations per item and warehouse (on-hand refresh after each line write)
        "SalesOrderLine": (
            "dataAreaId",
            "ItemNumber",
            "ShippingSiteId",
            "ShippingWarehouseId",
            "RemainingSalesPhysicalQuantity",
        ),
        "SalesInvoiceLineV2": ("dataAreaId", "InventoryLotId"),
        "SalesInvoiceHeaderV2": ("dataAreaId", "InvoiceCustomerAccountNumber"),
        "SalesOrderHeaderV2": ("dataAreaId", "InvoiceCustomerAccountNumber"),
    }
    for name, columns in wanted.items():
        table = model.entities[name].table
        assert table is not None
        sa.Index(f"ix_{table.name}_{'_'.join(columns[1:3])}", *[table.c[c] for c in columns])


def technical_name(entity_name: str) -> str:
    return TECHNICAL_NAMES.get(entity_name, entity_name)
