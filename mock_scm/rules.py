"""Business rules of the SCM entities: defaults, number sequences, validation, derived fields, cascades.

Every create, update and delete (over OData, from an action or from the seed) passes through these hooks.
Refusals raise ``BadRequest`` (code ``""``, 400) with the Infolog text of the real service in ``detail``
("Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' in field
'Customer group' is not found in the related table 'Customer groups'.; ..."); since a refusal is raised before
anything is written and the caller's transaction rolls back, nothing is half-written.

Rules that only restrict people (editing a confirmed quotation, changing an invoiced order, deleting a
posted journal) apply when ``ctx.via_api`` is true; business actions and the seeder write with
``via_api=False``. Derived fields (statuses, totals, line amounts, bookkeeping quantities) are recomputed on
every write and never taken from an OData caller, not even from the privileged dual-write identity that the
HTTP layer lets write read-only fields (one exception: a SalesQuotationStatus written by that identity is a
lifecycle request, see :class:`QuotationHeaderBehavior`). Document numbers a caller supplies (e.g. ``CRM-...``
numbers made in Dynamics 365 Sales and brought over by dual-write) are kept as they are; omitted numbers come
from the company's number sequence (:mod:`mock_scm.numbering`). Configurable behaviour (default company, tax
rates, quotation validity, "today") comes from the app's :class:`~mock_scm.settings.ScmSettings`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from mock_scm import lookups, numbering
from mock_scm.errors import must_be_filled, not_in_related, write_error
from mock_scm.inventory import refresh_onhand
from mock_scm.pricing import (
    line_gross_amount,
    line_net_amount,
    line_tax,
    split_total_discount,
    sync_order_header,
    sync_quotation_header,
)
from mock_scm.quotations import request_quotation_status
from mock_scm.schema import (
    CUSTOMER_ADDRESS_PARTS,
    EMPTY_DATE,
    DirPartyType,
    DocumentStatus,
    EcoResProductType,
    FieldServiceProductType,
    LedgerJournalACType,
    SalesQuotationHeaderCreationMethod,
    SalesQuotationStatus,
    SalesStatus,
)
from mock_scm.settings import ScmSettings
from mock_scm.status import DOC, OPEN_QUOTATION, PROC, QS, S, order_line_status, processing_status
from mock_scm.values import NO, YES, ZERO, dec, fmt_qty, is_empty_date, same
from sandbox.odata.store import EntityBehavior, Operation, Row, WriteContext
from sandbox.wellknown import INTEGRATION_IDENTITY

ITEM = EcoResProductType.members["Item"]
SERVICE = EcoResProductType.members["Service"]
CUST = LedgerJournalACType.members["Cust"]
PERSON = DirPartyType.members["Person"]

#: Label of the related table named in "not found in the related table" messages.
TABLE_LABELS = {
    "LegalEntity": "Legal entities",
    "Currency": "Currencies",
    "UnitOfMeasure": "Units",
    "CustomerGroup": "Customer groups",
    "PaymentTerm": "Terms of payment",
    "DeliveryTerm": "Terms of delivery",
    "DeliveryMode": "Modes of delivery",
    "OperationalSite": "Sites",
    "Warehouse": "Warehouses",
    "ReleasedProductV2": "Released products",
    "CustomerV3": "Customers",
    "SalesOrderHeaderV2": "Sales orders",
    "SalesQuotationHeaderV2": "Sales quotations",
    "CustomerPaymentJournalHeader": "Journals",
    "SalesInvoiceHeaderV2": "Customer invoice journal",
}
#: Key property of each referenced entity (besides dataAreaId).
REFERENCE_KEYS = {
    "LegalEntity": "LegalEntityId",
    "Currency": "CurrencyCode",
    "UnitOfMeasure": "UnitSymbol",
    "CustomerGroup": "CustomerGroupId",
    "PaymentTerm": "Name",
    "DeliveryTerm": "TermsCode",
    "DeliveryMode": "ModeCode",
    "OperationalSite": "SiteId",
    "Warehouse": "WarehouseId",
    "ReleasedProductV2": "ItemNumber",
    "CustomerV3": "CustomerAccount",
    "SalesOrderHeaderV2": "SalesOrderNumber",
    "SalesQuotationHeaderV2": "SalesQuotationNumber",
    "CustomerPaymentJournalHeader": "JournalBatchNumber",
    "SalesInvoiceHeaderV2": "InvoiceNumber",
}
SHARED = {"LegalEntity", "Currency", "UnitOfMeasure"}
#: Reference data: read per row by the reference checks, so memoized for the transaction (Store.get_cached)
REFERENCE_DATA = frozenset(
    {
        "LegalEntity",
        "Currency",
        "UnitOfMeasure",
        "CustomerGroup",
        "PaymentTerm",
        "DeliveryTerm",
        "DeliveryMode",
        "OperationalSite",
        "Warehouse",
    }
)


class ScmBehavior(EntityBehavior):
    """Common handling: company, unchanged and derived columns, immutable keys, reference checks.

    Subclasses implement ``create``, ``update`` and ``delete``; ``derived`` columns are never taken from an
    OData caller; ``immutable`` columns cannot change once the row exists.
    """

    derived: tuple[str, ...] = ()
    immutable: tuple[str, ...] = ()

    def __init__(self, settings: ScmSettings) -> None:
        self.settings = settings

    # ---- the EntityBehavior hooks -------------------------------------------------------------------------
    def on_create(self, ctx: WriteContext, values: Row) -> None:
        if ctx.entity.company_property:
            values["dataAreaId"] = lookups.company_of(values, ctx.extra, self.settings.default_company)
            if lookups.legal_entity(ctx.store, values["dataAreaId"]) is None:
                raise write_error(
                    ctx.entity.name,
                    not_in_related(values["dataAreaId"], "Company", "Legal entities"),
                    field="dataAreaId",
                )
        self.create(ctx, values)

    def on_update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        for name in list(changes):
            if name not in before or same(before.get(name), changes[name]):
                changes.pop(name)  # unchanged: no write, no change record, no rule to trip
        if ctx.via_api:
            for name in self.derived:
                changes.pop(name, None)
            for name in self.immutable:
                if name in changes:
                    raise write_error(
                        ctx.entity.name, f"The field '{name}' cannot be changed once the record exists.", field=name
                    )
        if not changes:
            return
        self.update(ctx, before, changes)

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        self.delete(ctx, row)

    # ---- what subclasses implement --------------------------------------------------------------------------
    def create(self, ctx: WriteContext, values: Row) -> None:
        """Fill defaults and validate a new row."""

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        """Validate and complete real changes (unchanged columns are already dropped)."""

    def delete(self, ctx: WriteContext, row: Row) -> None:
        """Refuse or cascade a delete."""

    # ---- helpers --------------------------------------------------------------------------------------------
    def label(self, ctx: WriteContext, field: str) -> str:
        prop = ctx.store.model.entities[ctx.entity.name].properties.get(field)
        return prop.label if prop is not None and prop.label else field

    def reference(
        self,
        ctx: WriteContext,
        values: Row,
        field: str,
        target: str,
        *,
        required: bool = False,
        company: str | None = None,
    ) -> Row | None:
        """The row ``values[field]`` refers to in ``target`` (same company), or a refusal naming the field."""
        value = values.get(field)
        if not value:
            if required:
                raise write_error(ctx.entity.name, must_be_filled(self.label(ctx, field)), field=field)
            return None
        key: dict[str, Any] = {REFERENCE_KEYS[target]: value}
        if target not in SHARED:
            key["dataAreaId"] = company or values.get("dataAreaId")
        row = ctx.store.get_cached(target, key) if target in REFERENCE_DATA else ctx.store.get(target, key)
        if row is None:
            raise write_error(
                ctx.entity.name, not_in_related(value, self.label(ctx, field), TABLE_LABELS[target]), field=field
            )
        return row

    def references(
        self, ctx: WriteContext, values: Row, checks: Iterable[tuple[str, str]], company: str | None = None
    ) -> None:
        for field, target in checks:
            if field in values:
                self.reference(ctx, values, field, target, company=company)

    def refuse_delete_if_used(
        self, ctx: WriteContext, row: Row, users: Iterable[tuple[str, str]], key_field: str, what: str
    ) -> None:
        """Refuse deleting a row other rows still refer to (``users``: (entity, referring field))."""
        for entity, field in users:
            where: dict[str, Any] = {field: row[key_field]}
            if ctx.store.model.entities[entity].company_property and "dataAreaId" in row:
                where["dataAreaId"] = row["dataAreaId"]
            found = ctx.store.find(entity, where, limit=1)
            if found:
                table = TABLE_LABELS.get(ctx.entity.name, what)
                raise write_error(
                    ctx.entity.name,
                    f"Cannot delete a record in {table}. {what}: {row[key_field]}. "
                    "The record is used in "
                    f"{TABLE_LABELS.get(entity, entity)}.",
                    verb="Delete",
                )


def _fill(values: Row, name: str, value: Any) -> None:
    """Set ``values[name]`` when the caller left it empty."""
    if values.get(name) in (None, ""):
        values[name] = value


# ---- reference data ---------------------------------------------------------------------------------------
class LegalEntityBehavior(ScmBehavior):
    immutable = ("LegalEntityId",)

    def create(self, ctx: WriteContext, values: Row) -> None:
        values["LegalEntityId"] = str(values.get("LegalEntityId") or "").lower()
        _fill(values, "Name", values["LegalEntityId"].upper())
        self.references(ctx, values, [("AccountingCurrencyCode", "Currency")])

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        self.references(ctx, changes, [("AccountingCurrencyCode", "Currency")])

    def delete(self, ctx: WriteContext, row: Row) -> None:
        self.refuse_delete_if_used(
            ctx, row, [("CustomerV3", "dataAreaId"), ("ReleasedProductV2", "dataAreaId")], "LegalEntityId", "Company"
        )


class ReferenceBehavior(ScmBehavior):
    """Plain reference data: optional reference checks, refusal to delete what is in use."""

    def __init__(
        self,
        settings: ScmSettings,
        key_field: str,
        what: str,
        users: Iterable[tuple[str, str]] = (),
        checks: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(settings)
        self.key_field = key_field
        self.what = what
        self.users = list(users)
        self.checks = list(checks)
        self.immutable = (key_field,)

    def create(self, ctx: WriteContext, values: Row) -> None:
        self.references(ctx, values, self.checks)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        self.references(ctx, {**before, **changes}, [c for c in self.checks if c[0] in changes])

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api:
            self.refuse_delete_if_used(ctx, row, self.users, self.key_field, self.what)


class WarehouseBehavior(ReferenceBehavior):
    def __init__(self, settings: ScmSettings) -> None:
        super().__init__(settings, "WarehouseId", "Warehouse", users=[("SalesOrderLine", "ShippingWarehouseId")])

    def create(self, ctx: WriteContext, values: Row) -> None:
        self.reference(ctx, values, "OperationalSiteId", "OperationalSite", required=True)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        if "OperationalSiteId" in changes:
            self.reference(ctx, {**before, **changes}, "OperationalSiteId", "OperationalSite", required=True)


# ---- products and on-hand ---------------------------------------------------------------------------------
class ReleasedProductBehavior(ScmBehavior):
    """Released products: product number, names, units (validated), currency, stocked flag from the type."""

    immutable = ("ItemNumber",)

    def create(self, ctx: WriteContext, values: Row) -> None:
        if not values.get("ItemNumber"):
            raise write_error(ctx.entity.name, must_be_filled("Item number"), field="ItemNumber")
        _fill(values, "ProductNumber", values["ItemNumber"])
        _fill(values, "ProductName", values["ItemNumber"])
        _fill(values, "SearchName", str(values["ProductName"])[:20])
        _fill(values, "InventoryUnitSymbol", "ea")
        _fill(values, "SalesUnitSymbol", values["InventoryUnitSymbol"])
        _fill(values, "PurchaseUnitSymbol", values["InventoryUnitSymbol"])
        legal = lookups.legal_entity(ctx.store, values["dataAreaId"])
        _fill(values, "CurrencyCode", legal["AccountingCurrencyCode"] if legal else "")
        self._derive(values)
        self._check(ctx, values, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        after = {**before, **changes}
        if "ProductType" in changes:
            self._derive(after)
            changes.update({k: after[k] for k in ("IsStockedProduct", "FieldServiceProductType")})
        self._check(ctx, after, changes)

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api:
            self.refuse_delete_if_used(
                ctx,
                row,
                [("SalesOrderLine", "ItemNumber"), ("SalesQuotationLine", "ItemNumber")],
                "ItemNumber",
                "Item number",
            )
        for onhand in ctx.store.find(
            "WarehouseOnHandV2", {"dataAreaId": row["dataAreaId"], "ItemNumber": row["ItemNumber"]}
        ):
            ctx.store.delete("WarehouseOnHandV2", onhand, identity=ctx.identity, via_api=False)

    @staticmethod
    def _derive(values: Row) -> None:
        # Services are never stocked: no on-hand, no reservations, no stock check on delivery.
        if values.get("ProductType") == SERVICE:
            values["IsStockedProduct"] = NO
            values["FieldServiceProductType"] = FieldServiceProductType.members["Service"]

    def _check(self, ctx: WriteContext, after: Row, changed: Row) -> None:
        self.references(
            ctx,
            changed,
            [
                ("InventoryUnitSymbol", "UnitOfMeasure"),
                ("SalesUnitSymbol", "UnitOfMeasure"),
                ("PurchaseUnitSymbol", "UnitOfMeasure"),
                ("CurrencyCode", "Currency"),
                ("DefaultSalesSiteId", "OperationalSite"),
                ("DefaultSalesWarehouseId", "Warehouse"),
            ],
            company=after["dataAreaId"],
        )
        if not after.get("SalesUnitSymbol"):
            raise write_error(ctx.entity.name, must_be_filled("Sales unit"), field="SalesUnitSymbol")


class OnHandBehavior(ScmBehavior):
    """On-hand rows: availability figures always follow from on-hand, reservations and orders."""

    def create(self, ctx: WriteContext, values: Row) -> None:
        found = lookups.product(ctx.store, values["dataAreaId"], values.get("ItemNumber", ""))
        if found is None:
            raise write_error(
                ctx.entity.name,
                not_in_related(values.get("ItemNumber"), "Item number", "Released products"),
                field="ItemNumber",
            )
        _fill(values, "ProductName", found["ProductName"])
        self._availability(values, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        self._availability({**before, **changes}, changes)

    @staticmethod
    def _availability(row: Row, out: Row) -> None:
        on_hand, reserved = dec(row.get("OnHandQuantity")), dec(row.get("ReservedOnHandQuantity"))
        available_ordered = (
            dec(row.get("OrderedQuantity")) - dec(row.get("ReservedOrderedQuantity")) - dec(row.get("OnOrderQuantity"))
        )
        out["AvailableOnHandQuantity"] = on_hand - reserved
        out["AvailableOrderedQuantity"] = available_ordered
        out["TotalAvailableQuantity"] = on_hand - reserved + available_ordered


# ---- customers and contacts -------------------------------------------------------------------------------
def _default_customer_addresses(values: Row) -> None:
    """A new customer's delivery and invoice addresses are its primary address unless given (one address
    serves every purpose until the customer gets more)."""
    parts = [part for part, _length in CUSTOMER_ADDRESS_PARTS]
    for prefix in ("DeliveryAddress", "InvoiceAddress"):
        if not any(values.get(f"{prefix}{part}") for part in parts):
            for part in parts:
                _fill(values, f"{prefix}{part}", values.get(f"Address{part}") or "")
    for prefix in ("DeliveryAddress", "InvoiceAddress"):
        if not values.get(f"{prefix}CountryRegionISOCode") and values.get(f"{prefix}CountryRegionId") == values.get(
            "AddressCountryRegionId"
        ):
            values[f"{prefix}CountryRegionISOCode"] = values.get("AddressCountryRegionISOCode") or ""


class CustomerBehavior(ScmBehavior):
    """Customers: account number, party, names, and the references a customer must have (group, currency)."""

    immutable = ("CustomerAccount",)
    checks = [
        ("PaymentTerms", "PaymentTerm"),
        ("DeliveryMode", "DeliveryMode"),
        ("DeliveryTerms", "DeliveryTerm"),
        ("SiteId", "OperationalSite"),
        ("WarehouseId", "Warehouse"),
        ("InvoiceAccount", "CustomerV3"),
    ]

    def create(self, ctx: WriteContext, values: Row) -> None:
        store, company = ctx.store, values["dataAreaId"]
        group = self.reference(ctx, values, "CustomerGroupId", "CustomerGroup", required=True)
        self.reference(ctx, values, "SalesCurrencyCode", "Currency", required=True)
        if not values.get("CustomerAccount"):
            values["CustomerAccount"] = numbering.next_number(
                store, numbering.CUSTOMER_ACCOUNT, company, lambda n: lookups.customer(store, company, n) is not None
            )
        else:
            numbering.note_number(store, numbering.CUSTOMER_ACCOUNT, company, values["CustomerAccount"])
        if not values.get("PartyNumber"):
            values["PartyNumber"] = numbering.next_number(store, numbering.PARTY_NUMBER, "*")
        else:
            numbering.note_number(store, numbering.PARTY_NUMBER, "*", values["PartyNumber"])
        assert group is not None
        _fill(values, "PaymentTerms", group["PaymentTermId"])
        _fill(values, "LanguageId", "en-us")
        _fill(values, "SalesTaxGroup", group["TaxGroupId"])
        self._names(values, values)
        _default_customer_addresses(values)
        if values.get("InvoiceAccount") == values["CustomerAccount"]:
            values["InvoiceAccount"] = ""  # invoicing itself is the default, F&O leaves the field empty
        self.references(ctx, values, self.checks)
        self._site(ctx, values, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        after = {**before, **changes}
        if "CustomerGroupId" in changes:
            self.reference(ctx, after, "CustomerGroupId", "CustomerGroup", required=True)
        if "SalesCurrencyCode" in changes:
            self.reference(ctx, after, "SalesCurrencyCode", "Currency", required=True)
        self.references(ctx, changes, self.checks, company=before["dataAreaId"])
        if {"OrganizationName", "Name", "PersonFirstName", "PersonMiddleName", "PersonLastName"} & set(changes):
            self._names(after, changes, changed=set(changes))
        self._site(ctx, after, changes)

    def delete(self, ctx: WriteContext, row: Row) -> None:
        self.refuse_delete_if_used(
            ctx,
            row,
            [
                ("SalesOrderHeaderV2", "OrderingCustomerAccountNumber"),
                ("SalesOrderHeaderV2", "InvoiceCustomerAccountNumber"),
                ("SalesInvoiceHeaderV2", "InvoiceCustomerAccountNumber"),
                ("SalesQuotationHeaderV2", "RequestingCustomerAccountNumber"),
            ],
            "CustomerAccount",
            "Customer account",
        )

    @staticmethod
    def _names(row: Row, out: Row, changed: set[str] | None = None) -> None:
        """Keep Name in step with OrganizationName (organizations) or the name parts (persons).
        ``changed`` is None on create, else the columns the update changes."""
        if row.get("PartyType") == PERSON:
            parts = ("PersonFirstName", "PersonMiddleName", "PersonLastName")
            if changed is None and not any(row.get(part) for part in parts) and row.get("Name"):
                first, _, last = str(row["Name"]).rpartition(" ")
                out["PersonFirstName"], out["PersonLastName"] = (first, last) if first else (last, "")
                return
            if changed is None or changed & set(parts):
                full = " ".join(str(row[part]) for part in parts if row.get(part))
                if full:
                    out["Name"] = full
            return
        if changed is None:
            if row.get("OrganizationName"):
                out["Name"] = row["OrganizationName"]
            else:
                out["OrganizationName"] = row.get("Name", "")
            if not row.get("NameAlias"):
                out["NameAlias"] = str(out.get("Name") or row.get("Name") or "")[:20]
        elif "OrganizationName" in changed:
            out["Name"] = row["OrganizationName"]
        elif "Name" in changed:
            out["OrganizationName"] = row["Name"]

    def _site(self, ctx: WriteContext, row: Row, out: Row) -> None:
        if row.get("WarehouseId") and not row.get("SiteId"):
            warehouse = ctx.store.get("Warehouse", {"dataAreaId": row["dataAreaId"], "WarehouseId": row["WarehouseId"]})
            if warehouse is not None:
                out["SiteId"] = warehouse["OperationalSiteId"]


class ContactPersonBehavior(ScmBehavior):
    immutable = ("ContactPersonId",)

    def create(self, ctx: WriteContext, values: Row) -> None:
        store, company = ctx.store, values["dataAreaId"]
        if not values.get("ContactPersonId"):
            values["ContactPersonId"] = numbering.next_number(
                store,
                numbering.CONTACT_PERSON,
                company,
                lambda n: store.get("ContactPersonV2", {"dataAreaId": company, "ContactPersonId": n}) is not None,
            )
        else:
            numbering.note_number(store, numbering.CONTACT_PERSON, company, values["ContactPersonId"])
        if not values.get("ContactPersonPartyNumber"):
            values["ContactPersonPartyNumber"] = numbering.next_number(store, numbering.PARTY_NUMBER, "*")
        cust = self.reference(ctx, values, "CustomerAccount", "CustomerV3")
        if cust is not None:
            _fill(values, "AssociatedPartyNumber", cust["PartyNumber"])
        _fill(values, "LanguageId", "en-us")
        self._name(values, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        after = {**before, **changes}
        if "CustomerAccount" in changes:
            cust = self.reference(ctx, after, "CustomerAccount", "CustomerV3")
            if cust is not None:
                changes["AssociatedPartyNumber"] = cust["PartyNumber"]
        if {"FirstName", "MiddleName", "LastName"} & set(changes):
            self._name(after, changes, force=True)

    @staticmethod
    def _name(row: Row, out: Row, force: bool = False) -> None:
        full = " ".join(part for part in (row.get("FirstName"), row.get("MiddleName"), row.get("LastName")) if part)
        if force or not row.get("ContactPersonName"):
            out["ContactPersonName"] = full


# ---- documents: shared header and line logic --------------------------------------------------------------
HEADER_CHECKS = [
    ("CurrencyCode", "Currency"),
    ("PaymentTermsName", "PaymentTerm"),
    ("DeliveryModeCode", "DeliveryMode"),
    ("DeliveryTermsCode", "DeliveryTerm"),
    ("DefaultShippingSiteId", "OperationalSite"),
    ("DefaultShippingWarehouseId", "Warehouse"),
]


def _customer_defaults(values: Row, cust: Row) -> None:
    """Header defaults taken from the customer (as F&O's initFromCustTable)."""
    _fill(values, "InvoiceCustomerAccountNumber", cust["InvoiceAccount"] or cust["CustomerAccount"])
    _fill(values, "CurrencyCode", cust["SalesCurrencyCode"])
    _fill(values, "PaymentTermsName", cust["PaymentTerms"])
    _fill(values, "DeliveryModeCode", cust["DeliveryMode"])
    _fill(values, "DeliveryTermsCode", cust["DeliveryTerms"])
    _fill(values, "LanguageId", cust["LanguageId"] or "en-us")
    _fill(values, "DefaultShippingSiteId", cust["SiteId"])
    _fill(values, "DefaultShippingWarehouseId", cust["WarehouseId"])
    _fill(values, "SalesTaxGroupCode", cust["SalesTaxGroup"])
    _fill(values, "PriceCustomerGroupCode", cust["PriceCustomerGroupCode"])
    _fill(values, "ContactPersonId", cust["ContactPersonId"])
    _fill(values, "DeliveryAddressName", cust["Name"])
    for suffix, source in (
        ("Street", "AddressStreet"),
        ("StreetNumber", "AddressStreetNumber"),
        ("City", "AddressCity"),
        ("ZipCode", "AddressZipCode"),
        ("CountryRegionId", "AddressCountryRegionId"),
        ("CountryRegionISOCode", "AddressCountryRegionISOCode"),
    ):
        _fill(values, f"DeliveryAddress{suffix}", cust[source])
        _fill(values, f"InvoiceAddress{suffix}", cust[source])
    _fill(values, "DeliveryAddressStateId", cust["AddressState"])
    _fill(values, "InvoiceAddressState", cust["AddressState"])


class DocumentHeaderBehavior(ScmBehavior):
    """What quotation and order headers share: number, customer and its defaults, reference checks."""

    entity_name = ""
    number_field = ""
    customer_field = ""
    name_field = ""
    scope = ""
    line_entity = ""

    def create_header(self, ctx: WriteContext, values: Row) -> Row:
        store, company = ctx.store, values["dataAreaId"]
        cust = self.reference(ctx, values, self.customer_field, "CustomerV3", required=True)
        assert cust is not None
        number = values.get(self.number_field)
        if not number:
            values[self.number_field] = numbering.next_number(
                store,
                self.scope,
                company,
                lambda n: store.get(self.entity_name, {"dataAreaId": company, self.number_field: n}) is not None,
            )
        else:
            # A number brought along (e.g. CRM-... from Sales through dual-write) is kept as it is.
            numbering.note_number(store, self.scope, company, number)
        _customer_defaults(values, cust)
        _fill(values, self.name_field, cust["Name"])
        self.reference(ctx, values, "InvoiceCustomerAccountNumber", "CustomerV3")
        self.reference(ctx, values, "CurrencyCode", "Currency", required=True)
        self.references(ctx, values, HEADER_CHECKS[1:])
        if values.get("DefaultShippingWarehouseId") and not values.get("DefaultShippingSiteId"):
            warehouse = self.reference(ctx, values, "DefaultShippingWarehouseId", "Warehouse")
            values["DefaultShippingSiteId"] = warehouse["OperationalSiteId"] if warehouse else ""
        if is_empty_date(values.get("RequestedShippingDate")):
            values["RequestedShippingDate"] = self.settings.today()
        if is_empty_date(values.get("RequestedReceiptDate")):
            values["RequestedReceiptDate"] = values["RequestedShippingDate"]
        return cust

    def check_header_changes(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        after = {**before, **changes}
        if self.customer_field in changes:
            self.reference(ctx, after, self.customer_field, "CustomerV3", required=True)
        if "InvoiceCustomerAccountNumber" in changes:
            self.reference(ctx, after, "InvoiceCustomerAccountNumber", "CustomerV3", required=True)
        if "CurrencyCode" in changes:
            self.reference(ctx, after, "CurrencyCode", "Currency", required=True)
        self.references(ctx, changes, HEADER_CHECKS[1:], company=before["dataAreaId"])

    def reprice_lines(self, ctx: WriteContext, header: Row) -> None:
        """The end discount or tax group changed: recompute every line's tax (the header follows)."""
        company, number = header["dataAreaId"], header[self.number_field]
        for line in ctx.store.find(self.line_entity, {"dataAreaId": company, self.number_field: number}):
            tax = line_tax(self.settings, company, line, header["TotalDiscountPercentage"])
            ctx.store.update(
                self.line_entity,
                line,
                {"TotalTaxAmount": tax},
                identity=self.settings.derived_identity(ctx.identity),
                via_api=False,
                extra={"cascade": True},
            )

    def delete_lines(self, ctx: WriteContext, row: Row) -> None:
        for line in ctx.store.find(
            self.line_entity, {"dataAreaId": row["dataAreaId"], self.number_field: row[self.number_field]}
        ):
            ctx.store.delete(self.line_entity, line, identity=ctx.identity, via_api=False, extra={"cascade": True})


class DocumentLineBehavior(ScmBehavior):
    """What quotation and order lines share: header, item, numbering, unit/price/site defaults, amounts."""

    header_entity = ""
    number_field = ""
    quantity_field = ""
    document_label = ""

    def header_of(self, ctx: WriteContext, values: Row) -> Row:
        number = values.get(self.number_field)
        if not number:
            raise write_error(ctx.entity.name, must_be_filled(self.document_label), field=self.number_field)
        header = ctx.store.get(self.header_entity, {"dataAreaId": values["dataAreaId"], self.number_field: number})
        if header is None:
            raise write_error(
                ctx.entity.name,
                not_in_related(number, self.document_label, TABLE_LABELS[self.header_entity]),
                field=self.number_field,
            )
        return header

    def product_of(self, ctx: WriteContext, values: Row) -> Row:
        """The released product the line names by ItemNumber (or, dual-write style, ProductNumber)."""
        company = values["dataAreaId"]
        item, product_number = values.get("ItemNumber") or "", values.get("ProductNumber") or ""
        if not item and not product_number:
            raise write_error(ctx.entity.name, must_be_filled("Item number"), field="ItemNumber")
        found = lookups.product(ctx.store, company, item, product_number)
        if found is None:
            field, value = ("ItemNumber", item) if item else ("ProductNumber", product_number)
            raise write_error(
                ctx.entity.name,
                not_in_related(value, "Item number", "Released products"),
                f"Item {value} is not released to company {company}.",
                field=field,
            )
        if found["IsSalesProcessingStopped"] == YES:
            raise write_error(ctx.entity.name, f"Item {found['ItemNumber']} is stopped for sales.", field="ItemNumber")
        return found

    def create_line(self, ctx: WriteContext, values: Row, header: Row) -> Row:
        store, company = ctx.store, values["dataAreaId"]
        found = self.product_of(ctx, values)
        values["ItemNumber"], values["ProductNumber"] = found["ItemNumber"], found["ProductNumber"]
        if not values.get("InventoryLotId"):
            values["InventoryLotId"] = numbering.next_number(
                store, numbering.INVENTORY_LOT, company, self._lot_taken(store, company)
            )
        else:
            numbering.note_number(store, numbering.INVENTORY_LOT, company, values["InventoryLotId"])
        siblings = store.find(ctx.entity.name, {"dataAreaId": company, self.number_field: values[self.number_field]})
        if values.get("LineCreationSequenceNumber") in (None, 0):
            values["LineCreationSequenceNumber"] = (
                max((s["LineCreationSequenceNumber"] or 0 for s in siblings), default=0) + 1
            )
        if values.get("LineNumber") in (None, 0):
            values["LineNumber"] = max((dec(s["LineNumber"]) for s in siblings), default=ZERO) + 1
        _fill(values, "ProductName", found["ProductName"])
        _fill(values, "LineDescription", values["ProductName"])
        _fill(values, "SalesUnitSymbol", found["SalesUnitSymbol"])
        if values.get(self.quantity_field) is None:
            values[self.quantity_field] = Decimal(1)
        if values.get("SalesPrice") is None:
            values["SalesPrice"] = dec(found["SalesPrice"])
        for name in ("SalesPriceQuantity",):
            if dec(values.get(name)) <= 0:
                values[name] = Decimal(1)
        values["CurrencyCode"] = header["CurrencyCode"]
        _fill(values, "SalesTaxGroupCode", header["SalesTaxGroupCode"])
        _fill(values, "SalesTaxItemGroupCode", found["SalesSalesTaxItemGroupCode"])
        _fill(values, "ShippingWarehouseId", header["DefaultShippingWarehouseId"] or found["DefaultSalesWarehouseId"])
        _fill(values, "ShippingSiteId", header["DefaultShippingSiteId"] or found["DefaultSalesSiteId"])
        if is_empty_date(values.get("RequestedShippingDate")):
            values["RequestedShippingDate"] = header["RequestedShippingDate"]
        if is_empty_date(values.get("RequestedReceiptDate")):
            values["RequestedReceiptDate"] = header["RequestedReceiptDate"]
        self.check_line(ctx, values, values, found)
        self.price(
            ctx,
            values,
            values,
            header,
            total_discount_given=values.get("TotalDiscountAmount") is not None
            and dec(values.get("LineDiscountAmount")) == 0,
            creating=True,
        )
        return found

    @staticmethod
    def _lot_taken(store: Any, company: str) -> Any:
        # One lot-id sequence serves quotation and order lines alike (InventTransId in F&O).
        def taken(candidate: str) -> bool:
            return any(
                store.get(entity, {"dataAreaId": company, "InventoryLotId": candidate}) is not None
                for entity in ("SalesOrderLine", "SalesQuotationLine")
            )

        return taken

    def check_line(self, ctx: WriteContext, row: Row, changed: Row, found: Row) -> None:
        """Quantity, unit, site and warehouse of a line (and that the warehouse belongs to the site)."""
        company = row["dataAreaId"]
        if self.quantity_field in changed and dec(row[self.quantity_field]) <= 0:
            raise write_error(
                ctx.entity.name,
                f"The quantity must be greater than zero (got {fmt_qty(row[self.quantity_field])}).",
                field=self.quantity_field,
            )
        if any(dec(row.get(name)) < 0 for name in ("SalesPrice", "LineDiscountAmount", "LineDiscountPercentage")):
            raise write_error(ctx.entity.name, "Price and discounts cannot be negative.", field="SalesPrice")
        self.references(ctx, changed, [("SalesUnitSymbol", "UnitOfMeasure")])
        if "ShippingWarehouseId" in changed and row.get("ShippingWarehouseId"):
            warehouse = self.reference(ctx, row, "ShippingWarehouseId", "Warehouse", company=company)
            assert warehouse is not None
            if not row.get("ShippingSiteId"):
                row["ShippingSiteId"] = warehouse["OperationalSiteId"]
                changed["ShippingSiteId"] = warehouse["OperationalSiteId"]
            elif warehouse["OperationalSiteId"] != row["ShippingSiteId"]:
                raise write_error(
                    ctx.entity.name,
                    f"Warehouse {warehouse['WarehouseId']} does not belong to site {row['ShippingSiteId']}.",
                    field="ShippingWarehouseId",
                )
        if "ShippingSiteId" in changed and row.get("ShippingSiteId"):
            self.reference(ctx, row, "ShippingSiteId", "OperationalSite", company=company)
        if found["IsStockedProduct"] == YES:
            for field, label in (("ShippingSiteId", "Site"), ("ShippingWarehouseId", "Warehouse")):
                if not row.get(field):
                    # Site and warehouse are mandatory on stocked lines (defaulted from header or product).
                    raise write_error(ctx.entity.name, must_be_filled(label), field=field)

    def price(
        self,
        ctx: WriteContext,
        row: Row,
        out: Row,
        header: Row,
        *,
        total_discount_given: bool,
        creating: bool = False,
        discount_changed: bool = False,
    ) -> None:
        """LineAmount, TotalDiscountAmount, TotalChargesAmount and TotalTaxAmount of a line into ``out``."""
        qty = dec(row[self.quantity_field])
        if total_discount_given:
            per_unit, charge = split_total_discount(dec(row.get("TotalDiscountAmount")), qty)
            row["LineDiscountAmount"] = out["LineDiscountAmount"] = per_unit
            row["TotalChargesAmount"] = out["TotalChargesAmount"] = charge
        elif creating or discount_changed:
            row["TotalChargesAmount"] = out["TotalChargesAmount"] = ZERO
        amount = line_net_amount(row, qty)
        charges = dec(row.get("TotalChargesAmount"))
        row["LineAmount"] = out["LineAmount"] = amount
        # The whole line discount, rounding charge included, so a total set by the caller reads back unchanged.
        out["TotalDiscountAmount"] = max(line_gross_amount(row, qty) - amount - charges, ZERO)
        out["TotalTaxAmount"] = line_tax(
            self.settings, row["dataAreaId"], row, header["TotalDiscountPercentage"], amount, charges
        )
        out["AreTotalsCalculated"] = YES

    def update_line(self, ctx: WriteContext, before: Row, changes: Row, header: Row) -> None:
        after = {**before, **changes}
        found = lookups.product(ctx.store, before["dataAreaId"], after["ItemNumber"])
        if "ItemNumber" in changes or "ProductNumber" in changes:
            if "ItemNumber" not in changes:
                after["ItemNumber"] = ""
            found = self.product_of(ctx, after)
            changes["ItemNumber"] = after["ItemNumber"] = found["ItemNumber"]
            changes["ProductNumber"] = after["ProductNumber"] = found["ProductNumber"]
            # A new item brings its own name, unit and price unless the same write sets them.
            for field, value in (
                ("ProductName", found["ProductName"]),
                ("LineDescription", found["ProductName"]),
                ("SalesUnitSymbol", found["SalesUnitSymbol"]),
                ("SalesPrice", dec(found["SalesPrice"])),
            ):
                if field not in changes:
                    changes[field] = after[field] = value
        if found is None:
            found = self.product_of(ctx, after)
        if changes.get("SalesPrice", 0) is None:
            changes["SalesPrice"] = after["SalesPrice"] = dec(found["SalesPrice"])
        if self.quantity_field in changes and changes[self.quantity_field] is None:
            raise write_error(ctx.entity.name, must_be_filled("Quantity"), field=self.quantity_field)
        self.check_line(ctx, after, changes, found)
        pricing = {
            self.quantity_field,
            "SalesPrice",
            "SalesPriceQuantity",
            "LineDiscountAmount",
            "LineDiscountPercentage",
            "MultilineDiscountAmount",
            "MultilineDiscountPercentage",
            "TotalDiscountAmount",
            "SalesTaxGroupCode",
            "TotalTaxAmount",
            "ItemNumber",
        }
        if pricing & set(changes):
            total_given = (
                "TotalDiscountAmount" in changes
                and "LineDiscountAmount" not in changes
                and changes["TotalDiscountAmount"] is not None
            )
            if changes.get("TotalDiscountAmount", 0) is None:
                changes.pop("TotalDiscountAmount")
                after["TotalDiscountAmount"] = before["TotalDiscountAmount"]
            self.price(
                ctx,
                after,
                changes,
                header,
                total_discount_given=total_given,
                discount_changed="LineDiscountAmount" in changes,
            )


# ---- quotations -------------------------------------------------------------------------------------------
class QuotationHeaderBehavior(DocumentHeaderBehavior):
    """Sales quotation headers: Created on create; editable while open (Created, Sent, Modified, ...);
    a confirmed quotation cannot be deleted; deleting a header deletes its lines.

    SalesQuotationStatus is read-only for plain callers. When the privileged dual-write identity writes it (the
    quote map copies msdyn_salesquotationstatus both ways), the write is a lifecycle request handled by
    :func:`mock_scm.quotations.request_quotation_status`: Sent, Lost, Cancelled, Revised and Confirmed (linking
    GeneratedSalesOrderNumber, without creating an order) move the quotation; other values are ignored.
    """

    entity_name = "SalesQuotationHeaderV2"
    number_field = "SalesQuotationNumber"
    customer_field = "RequestingCustomerAccountNumber"
    name_field = "SalesQuotationName"
    scope = numbering.SALES_QUOTATION
    line_entity = "SalesQuotationLine"
    derived = (
        "ConfirmationDate",
        "QuotationTotalAmount",
        "QuotationTotalTaxAmount",
        "QuotationTotalChargesAmount",
        "TotalDiscountAmount",
        "AreTotalsUpdated",
    )
    immutable = ("SalesQuotationNumber",)

    def on_update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        request: tuple[int, str] | None = None
        if ctx.via_api:
            target = changes.pop("SalesQuotationStatus", None)
            order_number = changes.get("GeneratedSalesOrderNumber")
            if not order_number:
                changes.pop("GeneratedSalesOrderNumber", None)  # an empty link from Sales never clears SCM's
            if target is not None and not same(target, before["SalesQuotationStatus"]):
                changes.pop("GeneratedSalesOrderNumber", None)
                request = (int(target), str(order_number or ""))
        super().on_update(ctx, before, changes)
        if request is None:
            return
        if changes:
            ctx.extra["quotation_request"] = request  # after this write, in after_write
        else:
            request_quotation_status(ctx.store, self.settings, before, request[0], ctx.identity, request[1])

    def create(self, ctx: WriteContext, values: Row) -> None:
        self.create_header(ctx, values)
        for name, value in (
            ("SalesQuotationStatus", QS["Created"]),
            ("GeneratedSalesOrderNumber", ""),
            ("QuotationTotalAmount", ZERO),
            ("QuotationTotalTaxAmount", ZERO),
            ("QuotationTotalChargesAmount", ZERO),
            ("TotalDiscountAmount", ZERO),
            ("AreTotalsUpdated", YES),
        ):
            values[name] = value
        if is_empty_date(values.get("SalesQuotationExpiryDate")):
            values["SalesQuotationExpiryDate"] = self.settings.today() + dt.timedelta(
                days=self.settings.quotation_validity_days
            )
        if ctx.identity == INTEGRATION_IDENTITY:
            values["SalesQuotationHeaderCreationMethod"] = SalesQuotationHeaderCreationMethod.members[
                "Dynamics365Sales"
            ]

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        link_only = set(changes) <= {"GeneratedSalesOrderNumber"}
        if ctx.via_api and before["SalesQuotationStatus"] not in OPEN_QUOTATION and not link_only:
            status = SalesQuotationStatus.name_of(before["SalesQuotationStatus"])
            raise write_error(
                ctx.entity.name,
                f"Quotation {before['SalesQuotationNumber']} has status {status} and cannot be changed.",
            )
        self.check_header_changes(ctx, before, changes)

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if (
            operation == "update"
            and before is not None
            and not same(before["TotalDiscountPercentage"], row["TotalDiscountPercentage"])
        ):
            self.reprice_lines(ctx, row)
            sync_quotation_header(
                ctx.store, self.settings, row["dataAreaId"], row["SalesQuotationNumber"], ctx.identity
            )
        request = ctx.extra.pop("quotation_request", None)
        if request is not None:
            request_quotation_status(ctx.store, self.settings, row, request[0], ctx.identity, request[1])

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api and row["SalesQuotationStatus"] == QS["Confirmed"]:
            raise write_error(
                ctx.entity.name,
                f"Quotation {row['SalesQuotationNumber']} is confirmed (sales order "
                f"{row['GeneratedSalesOrderNumber']}) and cannot be deleted.",
                verb="Delete",
            )
        self.delete_lines(ctx, row)


class QuotationLineBehavior(DocumentLineBehavior):
    """Sales quotation lines: need an open quotation and a released item; defaults like order lines."""

    header_entity = "SalesQuotationHeaderV2"
    number_field = "SalesQuotationNumber"
    quantity_field = "RequestedSalesQuantity"
    document_label = "Quotation"
    derived = (
        "LineAmount",
        "TotalTaxAmount",
        "TotalChargesAmount",
        "SalesQuotationStatus",
        "AreTotalsCalculated",
        "CurrencyCode",
    )
    immutable = ("InventoryLotId", "SalesQuotationNumber", "LineCreationSequenceNumber")

    def create(self, ctx: WriteContext, values: Row) -> None:
        header = self.header_of(ctx, values)
        if ctx.via_api:
            self._check_open(ctx, header)
        self.create_line(ctx, values, header)
        values["SalesQuotationStatus"] = header["SalesQuotationStatus"]

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        header = self.header_of(ctx, before)
        if ctx.via_api:
            self._check_open(ctx, header)
        if set(changes) - {"SalesQuotationStatus"}:
            self.update_line(ctx, before, changes, header)

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api:
            header = ctx.store.get(
                self.header_entity, {"dataAreaId": row["dataAreaId"], self.number_field: row[self.number_field]}
            )
            if header is not None:
                self._check_open(ctx, header)

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if ctx.extra.get("cascade") and operation == "delete":
            return
        if (
            operation == "update"
            and before is not None
            and all(
                same(before.get(k), row.get(k))
                for k in ("LineAmount", "TotalChargesAmount", "TotalTaxAmount", "TotalDiscountAmount")
            )
        ):
            return  # nothing the header sums changed
        sync_quotation_header(ctx.store, self.settings, row["dataAreaId"], row["SalesQuotationNumber"], ctx.identity)

    def _check_open(self, ctx: WriteContext, header: Row) -> None:
        if header["SalesQuotationStatus"] not in OPEN_QUOTATION:
            status = SalesQuotationStatus.name_of(header["SalesQuotationStatus"])
            raise write_error(
                ctx.entity.name,
                f"Quotation {header['SalesQuotationNumber']} has status {status}; its lines cannot be changed.",
            )


# ---- sales orders -----------------------------------------------------------------------------------------
ORDER_LINE_BOOKKEEPING = (
    "DeliveredSalesQuantity",
    "InvoicedSalesQuantity",
    "ReservedSalesQuantity",
    "RemainingSalesPhysicalQuantity",
    "RemainingSalesFinancialQuantity",
)


class OrderHeaderBehavior(DocumentHeaderBehavior):
    """Sales order headers.

    Create: number from the sequence unless given; the customer must exist; currency, invoice account, terms
    of payment, delivery mode/terms, language, site/warehouse, tax group and addresses default from the
    customer; SalesOrderStatus Backorder (F&O's "Open order", with or without lines), processing status Active. Update: refused
    once the order is Invoiced or Canceled; the customer cannot change after a document was posted. Delete:
    refused once confirmed, delivered or invoiced; otherwise the lines go too. The processing status always
    follows SalesOrderStatus + DocumentStatus.
    """

    entity_name = "SalesOrderHeaderV2"
    number_field = "SalesOrderNumber"
    customer_field = "OrderingCustomerAccountNumber"
    name_field = "SalesOrderName"
    scope = numbering.SALES_ORDER
    line_entity = "SalesOrderLine"
    derived = (
        "SalesOrderStatus",
        "DocumentStatus",
        "SalesOrderProcessingStatus",
        "OrderTotalAmount",
        "OrderTotalTaxAmount",
        "TotalDiscountAmount",
        "OrderTotalChargesAmount",
        "OrderTotalDiscountAmount",
        "AreTotalsUpdated",
        "ConfirmedShippingDate",
        "ConfirmedReceiptDate",
    )
    immutable = ("SalesOrderNumber",)

    def create(self, ctx: WriteContext, values: Row) -> None:
        self.create_header(ctx, values)
        for name, value in (
            ("SalesOrderStatus", S["Backorder"]),
            ("DocumentStatus", DOC["None"]),
            ("SalesOrderProcessingStatus", PROC["Active"]),
            ("OrderTotalAmount", ZERO),
            ("OrderTotalTaxAmount", ZERO),
            ("TotalDiscountAmount", ZERO),
            ("OrderTotalChargesAmount", ZERO),
            ("OrderTotalDiscountAmount", ZERO),
            ("AreTotalsUpdated", YES),
            ("ConfirmedShippingDate", EMPTY_DATE),
            ("ConfirmedReceiptDate", EMPTY_DATE),
        ):
            values[name] = value

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        number = before["SalesOrderNumber"]
        if ctx.via_api:
            if before["SalesOrderStatus"] in (S["Invoiced"], S["Canceled"]):
                status = SalesStatus.name_of(before["SalesOrderStatus"])
                raise write_error(ctx.entity.name, f"Sales order {number} has status {status} and cannot be changed.")
            if before["DocumentStatus"] != DOC["None"] and (
                {"OrderingCustomerAccountNumber", "InvoiceCustomerAccountNumber", "CurrencyCode"} & set(changes)
            ):
                raise write_error(
                    ctx.entity.name,
                    f"Sales order {number} has posted documents; customer, invoice "
                    "account and currency cannot be changed.",
                )
            self.check_header_changes(ctx, before, changes)
        after = {**before, **changes}
        changes["SalesOrderProcessingStatus"] = processing_status(after["SalesOrderStatus"], after["DocumentStatus"])
        if same(changes["SalesOrderProcessingStatus"], before["SalesOrderProcessingStatus"]):
            changes.pop("SalesOrderProcessingStatus")

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if operation != "update" or before is None:
            return
        if not same(before["TotalDiscountPercentage"], row["TotalDiscountPercentage"]):
            self.reprice_lines(ctx, row)
            sync_order_header(ctx.store, self.settings, row["dataAreaId"], row["SalesOrderNumber"], ctx.identity)

    def delete(self, ctx: WriteContext, row: Row) -> None:
        number = row["SalesOrderNumber"]
        if ctx.via_api and (
            row["DocumentStatus"] >= DOC["Confirmation"] or row["SalesOrderStatus"] in (S["Delivered"], S["Invoiced"])
        ):
            document = DocumentStatus.name_of(row["DocumentStatus"])
            raise write_error(
                ctx.entity.name,
                f"Sales order {number} has been processed (last document {document}) and cannot be deleted.",
                verb="Delete",
            )
        self.delete_lines(ctx, row)


class OrderLineBehavior(DocumentLineBehavior):
    """Sales order lines.

    Create: the order must exist (and, over OData, not be Invoiced or Canceled); the item must be released in
    the company (by ItemNumber or ProductNumber); InventoryLotId, LineCreationSequenceNumber and LineNumber are
    numbered when omitted; unit, price, name come from the product, site/warehouse from the header or the
    product, currency and tax group from the header; quantity defaults to 1 and must be positive; the line
    starts Backorder with everything left to deliver. Update over OData: refused for cancelled or invoiced
    lines and orders; the quantity cannot go below what was delivered; item, site and warehouse cannot change
    after a delivery (a reservation is released instead). Delete over OData: refused once delivered.
    Every write recomputes the line amounts, the order totals and status, and the on-hand of the item.
    """

    header_entity = "SalesOrderHeaderV2"
    number_field = "SalesOrderNumber"
    quantity_field = "OrderedSalesQuantity"
    document_label = "Sales order"
    derived = (
        "LineAmount",
        "TotalTaxAmount",
        "TotalChargesAmount",
        "SalesOrderLineStatus",
        "AreTotalsCalculated",
        "CurrencyCode",
        "ConfirmedShippingDate",
        *ORDER_LINE_BOOKKEEPING,
    )
    immutable = ("InventoryLotId", "SalesOrderNumber", "LineCreationSequenceNumber")

    def create(self, ctx: WriteContext, values: Row) -> None:
        header = self.header_of(ctx, values)
        if ctx.via_api and header["SalesOrderStatus"] in (S["Invoiced"], S["Canceled"]):
            status = SalesStatus.name_of(header["SalesOrderStatus"])
            raise write_error(
                ctx.entity.name, f"Sales order {header['SalesOrderNumber']} has status {status}; no lines can be added."
            )
        self.create_line(ctx, values, header)
        qty = dec(values["OrderedSalesQuantity"])
        values.update(
            {
                "DeliveredSalesQuantity": ZERO,
                "InvoicedSalesQuantity": ZERO,
                "ReservedSalesQuantity": ZERO,
                "RemainingSalesPhysicalQuantity": qty,
                "RemainingSalesFinancialQuantity": ZERO,
                "SalesOrderLineStatus": S["Backorder"],
                "ConfirmedShippingDate": EMPTY_DATE,
            }
        )
        _fill(values, "DeliveryModeCode", header["DeliveryModeCode"])
        _fill(values, "DeliveryTermsId", header["DeliveryTermsCode"])
        self._check_deliver_now(ctx, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        header = self.header_of(ctx, before)
        after = {**before, **changes}
        if ctx.via_api:
            self._check_editable(ctx, before, header, changes)
        if (
            set(changes) & {"ItemNumber", "ProductNumber", "ShippingSiteId", "ShippingWarehouseId"}
            and dec(before["ReservedSalesQuantity"]) > 0
        ):
            changes["ReservedSalesQuantity"] = ZERO  # the reservation stays with the old item/warehouse
        if (
            "OrderedSalesQuantity" in changes
            and changes["OrderedSalesQuantity"] is not None
            and before["SalesOrderLineStatus"] != S["Canceled"]
        ):
            delivered = dec(before["DeliveredSalesQuantity"])
            qty = dec(changes["OrderedSalesQuantity"])
            if qty < delivered:
                raise write_error(
                    ctx.entity.name,
                    f"The quantity {fmt_qty(qty)} is less than the quantity already delivered ({fmt_qty(delivered)}).",
                    field="OrderedSalesQuantity",
                )
            remaining = qty - delivered
            changes["RemainingSalesPhysicalQuantity"] = remaining
            if dec(after["ReservedSalesQuantity"]) > remaining:
                changes["ReservedSalesQuantity"] = remaining
        self.update_line(ctx, before, changes, header)
        after = {**before, **changes}
        self._check_deliver_now(ctx, after)
        status = order_line_status(after)
        if not same(status, before["SalesOrderLineStatus"]):
            changes["SalesOrderLineStatus"] = status

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if not ctx.via_api:
            return
        if dec(row["DeliveredSalesQuantity"]) > 0:
            raise write_error(
                ctx.entity.name,
                f"Line {row['LineCreationSequenceNumber']} of sales order "
                f"{row['SalesOrderNumber']} has been delivered and cannot be deleted.",
                verb="Delete",
            )
        header = ctx.store.get(
            self.header_entity, {"dataAreaId": row["dataAreaId"], "SalesOrderNumber": row["SalesOrderNumber"]}
        )
        if (
            header is not None
            and header["SalesOrderStatus"] in (S["Invoiced"], S["Canceled"])
            and not ctx.extra.get("cascade")
        ):
            status = SalesStatus.name_of(header["SalesOrderStatus"])
            raise write_error(
                ctx.entity.name,
                f"Sales order {row['SalesOrderNumber']} has status {status}; its lines cannot be deleted.",
                verb="Delete",
            )

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        company = row["dataAreaId"]
        places = {(row["ItemNumber"], row["ShippingSiteId"], row["ShippingWarehouseId"])}
        if before is not None:
            places.add((before["ItemNumber"], before["ShippingSiteId"], before["ShippingWarehouseId"]))
        stock_fields = (
            "ItemNumber",
            "ShippingSiteId",
            "ShippingWarehouseId",
            "ReservedSalesQuantity",
            "RemainingSalesPhysicalQuantity",
        )
        if operation != "update" or before is None or any(not same(before[k], row[k]) for k in stock_fields):
            for item, site, warehouse in places:
                refresh_onhand(ctx.store, self.settings, company, item, site, warehouse, ctx.identity)
        if ctx.extra.get("cascade") and operation == "delete":
            return
        sync_order_header(ctx.store, self.settings, company, row["SalesOrderNumber"], ctx.identity)

    def _check_editable(self, ctx: WriteContext, before: Row, header: Row, changes: Row) -> None:
        line_no = before["LineCreationSequenceNumber"]
        number = before["SalesOrderNumber"]
        if header["SalesOrderStatus"] in (S["Invoiced"], S["Canceled"]):
            status = SalesStatus.name_of(header["SalesOrderStatus"])
            raise write_error(
                ctx.entity.name, f"Sales order {number} has status {status}; its lines cannot be changed."
            )
        if before["SalesOrderLineStatus"] in (S["Invoiced"], S["Canceled"]):
            status = SalesStatus.name_of(before["SalesOrderLineStatus"])
            raise write_error(
                ctx.entity.name, f"Line {line_no} of sales order {number} has status {status} and cannot be changed."
            )
        if dec(before["DeliveredSalesQuantity"]) > 0 and set(changes) & {
            "ItemNumber",
            "ProductNumber",
            "ShippingSiteId",
            "ShippingWarehouseId",
        }:
            raise write_error(
                ctx.entity.name,
                f"Line {line_no} of sales order {number} has been delivered; item, "
                "site and warehouse cannot be changed.",
            )

    def _check_deliver_now(self, ctx: WriteContext, row: Row) -> None:
        deliver_now = dec(row.get("SalesDeliverNow"))
        if deliver_now < 0 or deliver_now > dec(row.get("RemainingSalesPhysicalQuantity")):
            raise write_error(
                ctx.entity.name,
                f"Deliver now {fmt_qty(deliver_now)} must be between 0 and the "
                f"quantity left to deliver ({fmt_qty(row.get('RemainingSalesPhysicalQuantity'))}).",
                field="SalesDeliverNow",
            )


# ---- payments ---------------------------------------------------------------------------------------------
class PaymentJournalHeaderBehavior(ScmBehavior):
    """Customer payment journals: numbered per company; a posted journal cannot change or be deleted."""

    derived = ("IsPosted", "PostingDate", "LineCount")
    immutable = ("JournalBatchNumber",)

    def create(self, ctx: WriteContext, values: Row) -> None:
        store, company = ctx.store, values["dataAreaId"]
        if not values.get("JournalBatchNumber"):
            values["JournalBatchNumber"] = numbering.next_number(
                store,
                numbering.PAYMENT_JOURNAL,
                company,
                lambda n: (
                    store.get("CustomerPaymentJournalHeader", {"dataAreaId": company, "JournalBatchNumber": n})
                    is not None
                ),
            )
        else:
            numbering.note_number(store, numbering.PAYMENT_JOURNAL, company, values["JournalBatchNumber"])
        _fill(values, "JournalName", "CustPay")
        _fill(values, "Description", "Customer payments")
        values.update({"IsPosted": NO, "PostingDate": EMPTY_DATE, "LineCount": 0})

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        if ctx.via_api and before["IsPosted"] == YES:
            raise write_error(
                ctx.entity.name, f"Journal {before['JournalBatchNumber']} has been posted and cannot be changed."
            )

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api and row["IsPosted"] == YES:
            raise write_error(
                ctx.entity.name,
                f"Journal {row['JournalBatchNumber']} has been posted and cannot be deleted.",
                verb="Delete",
            )
        for line in lookups.journal_lines(ctx.store, row["dataAreaId"], row["JournalBatchNumber"]):
            ctx.store.delete(
                "CustomerPaymentJournalLine", line, identity=ctx.identity, via_api=False, extra={"cascade": True}
            )


class PaymentJournalLineBehavior(ScmBehavior):
    """Customer payment lines: an open journal, an existing customer (AccountType Cust), a currency (default:
    the customer's), a positive CreditAmount; MarkedInvoice, when given, must be an invoice of that customer."""

    derived = ("IsPosted", "Voucher", "SettledAmount", "SettledInvoices")
    immutable = ("JournalBatchNumber", "LineNumber")

    def create(self, ctx: WriteContext, values: Row) -> None:
        header = self._journal(ctx, values)
        if header["IsPosted"] == YES:
            raise write_error(
                ctx.entity.name, f"Journal {header['JournalBatchNumber']} has been posted; no lines can be added."
            )
        if values.get("LineNumber") in (None, 0):
            lines = lookups.journal_lines(ctx.store, values["dataAreaId"], values["JournalBatchNumber"])
            values["LineNumber"] = max((dec(line["LineNumber"]) for line in lines), default=ZERO) + 1
        if is_empty_date(values.get("TransactionDate")):
            values["TransactionDate"] = self.settings.today()
        values.update({"IsPosted": NO, "Voucher": "", "SettledAmount": ZERO, "SettledInvoices": ""})
        self._check(ctx, values, values)

    def update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        if ctx.via_api:
            if before["IsPosted"] == YES:
                raise write_error(
                    ctx.entity.name,
                    f"Journal {before['JournalBatchNumber']} has been posted; its lines cannot be changed.",
                )
            self._check(ctx, {**before, **changes}, changes)

    def delete(self, ctx: WriteContext, row: Row) -> None:
        if ctx.via_api and row["IsPosted"] == YES:
            raise write_error(
                ctx.entity.name,
                f"Journal {row['JournalBatchNumber']} has been posted; its lines cannot be deleted.",
                verb="Delete",
            )

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        if operation == "update" or ctx.extra.get("cascade"):
            return
        header = ctx.store.get(
            "CustomerPaymentJournalHeader",
            {"dataAreaId": row["dataAreaId"], "JournalBatchNumber": row["JournalBatchNumber"]},
        )
        if header is not None:
            count = len(lookups.journal_lines(ctx.store, row["dataAreaId"], row["JournalBatchNumber"]))
            ctx.store.update(
                "CustomerPaymentJournalHeader",
                header,
                {"LineCount": count},
                identity=self.settings.derived_identity(ctx.identity),
                via_api=False,
            )

    def _journal(self, ctx: WriteContext, values: Row) -> Row:
        header = self.reference(ctx, values, "JournalBatchNumber", "CustomerPaymentJournalHeader", required=True)
        assert header is not None
        return header

    def _check(self, ctx: WriteContext, row: Row, changed: Row) -> None:
        if row.get("AccountType") != CUST:
            raise write_error(
                ctx.entity.name,
                "Only customer accounts (AccountType Cust) are supported in customer payment journals.",
                field="AccountType",
            )
        cust = self.reference(ctx, row, "AccountDisplayValue", "CustomerV3", required=True)
        assert cust is not None
        if not row.get("CurrencyCode"):
            row["CurrencyCode"] = changed["CurrencyCode"] = cust["SalesCurrencyCode"]
        if "CurrencyCode" in changed:
            self.reference(ctx, row, "CurrencyCode", "Currency", required=True)
        if dec(row.get("CreditAmount")) < 0 or dec(row.get("DebitAmount")) < 0:
            raise write_error(ctx.entity.name, "Amounts cannot be negative.", field="CreditAmount")
        if row.get("MarkedInvoice") and ({"MarkedInvoice", "AccountDisplayValue"} & set(changed)):
            invoice = self.reference(ctx, row, "MarkedInvoice", "SalesInvoiceHeaderV2")
            assert invoice is not None
            if invoice["InvoiceCustomerAccountNumber"] != row["AccountDisplayValue"]:
                raise write_error(
                    ctx.entity.name,
                    f"Invoice {invoice['InvoiceNumber']} belongs to customer "
                    f"{invoice['InvoiceCustomerAccountNumber']}, not to {row['AccountDisplayValue']}.",
                    field="MarkedInvoice",
                )


def behaviors(settings: ScmSettings) -> dict[str, EntityBehavior]:
    """The rules of every SCM entity by entity name, run with ``settings`` (CDS aliases share their base's rules)."""
    return {
        "LegalEntity": LegalEntityBehavior(settings),
        "Currency": ReferenceBehavior(
            settings, "CurrencyCode", "Currency", users=[("CustomerV3", "SalesCurrencyCode")]
        ),
        "UnitOfMeasure": ReferenceBehavior(
            settings, "UnitSymbol", "Unit", users=[("ReleasedProductV2", "SalesUnitSymbol")]
        ),
        "CustomerGroup": ReferenceBehavior(
            settings,
            "CustomerGroupId",
            "Customer group",
            users=[("CustomerV3", "CustomerGroupId")],
            checks=[("PaymentTermId", "PaymentTerm")],
        ),
        "PaymentTerm": ReferenceBehavior(settings, "Name", "Terms of payment", users=[("CustomerV3", "PaymentTerms")]),
        "DeliveryTerm": ReferenceBehavior(
            settings, "TermsCode", "Delivery terms", users=[("CustomerV3", "DeliveryTerms")]
        ),
        "DeliveryMode": ReferenceBehavior(
            settings, "ModeCode", "Mode of delivery", users=[("CustomerV3", "DeliveryMode")]
        ),
        "OperationalSite": ReferenceBehavior(settings, "SiteId", "Site", users=[("Warehouse", "OperationalSiteId")]),
        "Warehouse": WarehouseBehavior(settings),
        "ReleasedProductV2": ReleasedProductBehavior(settings),
        "WarehouseOnHandV2": OnHandBehavior(settings),
        "CustomerV3": CustomerBehavior(settings),
        "ContactPersonV2": ContactPersonBehavior(settings),
        "SalesQuotationHeaderV2": QuotationHeaderBehavior(settings),
        "SalesQuotationLine": QuotationLineBehavior(settings),
        "SalesOrderHeaderV2": OrderHeaderBehavior(settings),
        "SalesOrderLine": OrderLineBehavior(settings),
        "CustomerPaymentJournalHeader": PaymentJournalHeaderBehavior(settings),
        "CustomerPaymentJournalLine": PaymentJournalLineBehavior(settings),
    }
