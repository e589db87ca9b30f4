"""SCM business logic shared by the entity rules and the bound actions.

Settings (module constants, change them to reconfigure the emulator): the default company, sales tax rates,
the quotation validity, whether physical inventory may go negative, and under which identity derived writes
(header totals, on-hand) are recorded.

Pricing (per order or quotation line, as F&O computes it):
``LineAmount = (SalesPrice - LineDiscountAmount - MultilineDiscountAmount) * qty / SalesPriceQuantity
* (1 - LineDiscountPercentage/100) * (1 - MultilineDiscountPercentage/100)`` rounded to cents.
``TotalDiscountAmount`` of a line is the whole line discount; a caller (dual-write) may set it instead of the
per-unit discount: it is split into a per-unit ``LineDiscountAmount`` and the rounding remainder goes to the
line's ``TotalChargesAmount`` (DW ``dual-write-prospect-to-cash``: qty 3, discount 10.00 -> 3.33 each plus a
-0.01 charge).

Tax: a flat rate per company, overridable per sales tax group (:data:`SALES_TAX_RATES`), applied per line to
``LineAmount + TotalChargesAmount`` after the header's end discount (``TotalDiscountPercentage``).
Header totals: ``TotalDiscountAmount`` = the end discount (header ``TotalDiscountPercentage`` of the line sum;
it is what dual-write maps to the Sales order-level ``discountamount``), ``OrderTotalDiscountAmount`` = line
discounts + end discount, ``OrderTotalChargesAmount`` = line charges, ``OrderTotalTaxAmount`` = line taxes,
``OrderTotalAmount`` = lines + charges - end discount + tax. Totals cover every line, cancelled ones included.

Statuses follow ``fno-odata.md`` section 13: line status from its remaining quantities, header status from
its lines, processing status from (SalesStatus, DocumentStatus) with Backorder + Invoice read as
PartiallyInvoiced (a partly delivered order whose delivered part was invoiced).

On-hand (``WarehousesOnHandV2``, per company, item, site, warehouse): ``OnHandQuantity`` changes only by
seed data and packing slips; ``ReservedOnHandQuantity`` is the sum of the reservations of order lines;
``OnOrderQuantity`` the unreserved open order quantity; ``AvailableOnHandQuantity = OnHand - Reserved``;
``AvailableOrderedQuantity = Ordered - ReservedOrdered - OnOrder``; ``TotalAvailableQuantity`` = available
on-hand + available ordered (F&O's definitions).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mock_scm import numbering
from mock_scm.schema import (
    CustVendorBlocked,
    DocumentStatus,
    NoYes,
    SalesOrderProcessingStatus,
    SalesQuotationStatus,
    SalesStatus,
    technical_name,
)
from sandbox.errors import BadRequest
from sandbox.odata.store import Row, Store

# ---- settings ---------------------------------------------------------------------------------------------
#: Company used when a write names none (the HTTP dialect normally fills it from its own setting).
DEFAULT_COMPANY = "usmf"
#: Sales tax rate per company; key "" is the company's flat rate, other keys are sales tax group overrides.
SALES_TAX_RATES: dict[str, dict[str, Decimal]] = {
    "usmf": {"": Decimal("0.10"), "EXEMPT": Decimal("0")},
    "usrt": {"": Decimal("0.05"), "EXEMPT": Decimal("0")},
    "demf": {"": Decimal("0.19"), "EXEMPT": Decimal("0")},
}
#: Rate of companies missing from SALES_TAX_RATES.
DEFAULT_TAX_RATE = Decimal("0")
#: Days a new quotation stays valid (SalesQuotationExpiryDate default).
QUOTATION_VALIDITY_DAYS = 30
#: F&O refuses a packing slip that would take physical on-hand below zero; True lets it go negative.
ALLOW_NEGATIVE_INVENTORY = False
#: The dual-write bridge's identity (documents it creates count as created in Dynamics 365 Sales).
INTEGRATION_IDENTITY = "dualwrite"
#: Identity under which derived writes (header totals and statuses, on-hand) are recorded; None = the caller's.
DERIVED_WRITE_IDENTITY: str | None = None
#: Source of "today" (date-only fields are stored at 12:00:00Z); tests may replace it.
TODAY: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date()

CENT = Decimal("0.01")
QTY = Decimal("0.000001")
ZERO = Decimal("0")
YES = NoYes.members["Yes"]
NO = NoYes.members["No"]
WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
PROCESS_EXCEPTION = "Microsoft.Dynamics.Ax.Xpp.ErrorException"

S = SalesStatus.members
DOC = DocumentStatus.members
PROC = SalesOrderProcessingStatus.members
QS = SalesQuotationStatus.members
HOLD = CustVendorBlocked.members

#: Quotation statuses from which Send / Confirm / Lose / Cancel are allowed (and edits).
OPEN_QUOTATION = {QS["Created"], QS["Sent"], QS["Modified"], QS["Reset"], QS["Submitted"], QS["Approved"]}


# ---- values -----------------------------------------------------------------------------------------------
def dec(value: Any) -> Decimal:
    """Any stored or JSON number as a Decimal (None -> 0)."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def money(value: Any) -> Decimal:
    return dec(value).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def fmt_amount(value: Any) -> str:
    return f"{money(value):,.2f}"


def fmt_qty(value: Any) -> str:
    number = dec(value).normalize()
    return f"{number:f}"


def today() -> dt.datetime:
    """Today as F&O stores a date: 12:00:00 UTC."""
    return dt.datetime.combine(TODAY(), dt.time(12), tzinfo=dt.UTC)


def as_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def is_empty_date(value: Any) -> bool:
    return value is None or (isinstance(value, (dt.datetime, dt.date)) and value.year <= 1900)


def same(a: Any, b: Any) -> bool:
    """Equal as F&O sees it: numbers by value, datetimes with or without tz as UTC, None as empty."""
    if a is None and b in ("", None):
        return True
    if b is None and a in ("", None):
        return True
    if isinstance(a, (dt.datetime, dt.date)) or isinstance(b, (dt.datetime, dt.date)):
        return as_utc(a) == as_utc(b)
    if (
        isinstance(a, (Decimal, float, int))
        and isinstance(b, (Decimal, float, int))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return dec(a) == dec(b)
    return a == b


def derived_identity(identity: str) -> str:
    return DERIVED_WRITE_IDENTITY or identity


# ---- errors (Infolog style) -------------------------------------------------------------------------------
def not_in_related(value: Any, field_label: str, table_label: str) -> str:
    return f"The value '{value}' in field '{field_label}' is not found in the related table '{table_label}'."


def must_be_filled(field_label: str) -> str:
    return f"Field '{field_label}' must be filled in."


def write_error(entity_name: str, *warnings: str, field: str | None = None, verb: str = "Write") -> BadRequest:
    """A refused write: ``Write failed for table row of type 'X'. Infolog: Warning: ...``, answered as 400."""
    technical = technical_name(entity_name)
    parts = [f"Warning: {w}" for w in warnings]
    if field is not None:
        parts.append(f"Warning: validateField failed on field '{technical}.{field}'.")
    detail = f"{verb} failed for table row of type '{technical}'. Infolog: " + "; ".join(parts)
    return BadRequest("An error has occurred.", "", detail=detail, extra={"type": WRITE_EXCEPTION})


def process_error(*errors: str) -> BadRequest:
    """A refused business operation (posting, confirmation, ...): ``Infolog: Error: ...``, answered as 400."""
    detail = "Infolog: " + "; ".join(f"Error: {e}" for e in errors)
    return BadRequest("An error has occurred.", "", detail=detail, extra={"type": PROCESS_EXCEPTION})


# ---- lookups ----------------------------------------------------------------------------------------------
def company_of(values: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    company = str(values.get("dataAreaId") or (extra or {}).get("company") or DEFAULT_COMPANY)
    return company.lower()


def legal_entity(store: Store, company: str) -> Row | None:
    # Read for every row written: memoized for the transaction (dropped when it writes a legal entity).
    return store.get_cached("LegalEntity", {"LegalEntityId": company.lower()})


def customer(store: Store, company: str, account: str) -> Row | None:
    if not account:
        return None
    return store.get("CustomerV3", {"dataAreaId": company, "CustomerAccount": account})


def product(store: Store, company: str, item: str = "", product_number: str = "") -> Row | None:
    if item:
        return store.get("ReleasedProductV2", {"dataAreaId": company, "ItemNumber": item})
    if product_number:
        return store.get("ReleasedProductV2", {"dataAreaId": company, "ProductNumber": product_number})
    return None


def order_header(store: Store, company: str, number: str) -> Row | None:
    return store.get("SalesOrderHeaderV2", {"dataAreaId": company, "SalesOrderNumber": number})


def order_lines(store: Store, company: str, number: str) -> list[Row]:
    return store.find(
        "SalesOrderLine",
        {"dataAreaId": company, "SalesOrderNumber": number},
        order_by=["LineNumber", "LineCreationSequenceNumber"],
    )


def quotation_header(store: Store, company: str, number: str) -> Row | None:
    return store.get("SalesQuotationHeaderV2", {"dataAreaId": company, "SalesQuotationNumber": number})


def quotation_lines(store: Store, company: str, number: str) -> list[Row]:
    return store.find(
        "SalesQuotationLine",
        {"dataAreaId": company, "SalesQuotationNumber": number},
        order_by=["LineNumber", "LineCreationSequenceNumber"],
    )


def reread(store: Store, entity_name: str, row: Row) -> Row:
    """The current version of ``row`` (cascading writes may have changed it since it was read)."""
    return store.get(entity_name, {"_rowid": row["_rowid"]}) or row


# ---- pricing, tax, totals ---------------------------------------------------------------------------------
def tax_rate(company: str, tax_group: str = "") -> Decimal:
    rates = SALES_TAX_RATES.get(company.lower())
    if rates is None:
        return DEFAULT_TAX_RATE
    if tax_group and tax_group in rates:
        return rates[tax_group]
    return rates.get("", DEFAULT_TAX_RATE)


def line_net_amount(line: Mapping[str, Any], quantity: Any) -> Decimal:
    """The net amount of ``quantity`` units of a line (price, per-unit and percentage discounts)."""
    qty = dec(quantity)
    price_unit = dec(line.get("SalesPriceQuantity")) or Decimal(1)
    unit = dec(line.get("SalesPrice")) - dec(line.get("LineDiscountAmount")) - dec(line.get("MultilineDiscountAmount"))
    factor = (1 - dec(line.get("LineDiscountPercentage")) / 100) * (
        1 - dec(line.get("MultilineDiscountPercentage")) / 100
    )
    return money(unit * qty / price_unit * factor)


def line_gross_amount(line: Mapping[str, Any], quantity: Any) -> Decimal:
    price_unit = dec(line.get("SalesPriceQuantity")) or Decimal(1)
    return money(dec(line.get("SalesPrice")) * dec(quantity) / price_unit)


def split_total_discount(total: Decimal, quantity: Decimal) -> tuple[Decimal, Decimal]:
    """A whole-line discount as (per-unit discount, charge for the rounding remainder)."""
    if quantity == 0:
        return ZERO, ZERO
    per_unit = money(total / quantity)
    return per_unit, money(per_unit * quantity - total)


def line_tax(
    company: str,
    line: Mapping[str, Any],
    end_discount_pct: Any,
    amount: Decimal | None = None,
    charges: Decimal | None = None,
) -> Decimal:
    base = (dec(line.get("LineAmount")) if amount is None else amount) + (
        dec(line.get("TotalChargesAmount")) if charges is None else charges
    )
    base = base * (1 - dec(end_discount_pct) / 100)
    return money(base * tax_rate(company, str(line.get("SalesTaxGroupCode") or "")))


def document_totals(lines: Iterable[Mapping[str, Any]], end_discount_pct: Any) -> dict[str, Decimal]:
    """Sums over a document's lines (see the module docstring for the definitions)."""
    line_sum = charges = tax = line_discounts = ZERO
    for line in lines:
        line_sum += dec(line.get("LineAmount"))
        charges += dec(line.get("TotalChargesAmount"))
        tax += dec(line.get("TotalTaxAmount"))
        line_discounts += dec(line.get("TotalDiscountAmount"))
    end_discount = money((line_sum + charges) * dec(end_discount_pct) / 100)
    return {
        "lines": money(line_sum),
        "charges": money(charges),
        "tax": money(tax),
        "end_discount": end_discount,
        "all_discounts": money(line_discounts + end_discount),
        "total": money(line_sum + charges - end_discount + tax),
    }


# ---- statuses ---------------------------------------------------------------------------------------------
def order_line_status(line: Mapping[str, Any]) -> int:
    """Backorder while anything is left to deliver; Delivered while delivered quantity awaits its invoice;
    Invoiced when all that was delivered is invoiced; Canceled when the rest was cancelled before delivery."""
    if dec(line.get("RemainingSalesPhysicalQuantity")) > 0:
        return S["Backorder"]
    if dec(line.get("RemainingSalesFinancialQuantity")) > 0:
        return S["Delivered"]
    if dec(line.get("InvoicedSalesQuantity")) > 0:
        return S["Invoiced"]
    return S["Canceled"]


def order_header_status(current: int, lines: Iterable[Mapping[str, Any]]) -> int:
    """None without lines; Canceled stays Canceled; otherwise the least advanced status of its live lines."""
    if current == S["Canceled"]:
        return current
    statuses = [order_line_status(line) for line in lines]
    if not statuses:
        return S["None"]
    live = [s for s in statuses if s != S["Canceled"]]
    if not live:
        return S["Canceled"]
    for status in (S["Backorder"], S["Delivered"]):
        if status in live:
            return status
    return S["Invoiced"]


def processing_status(sales_status: int, document_status: int) -> int:
    """``SalesOrderProcessingStatus`` from SalesStatus + DocumentStatus (fno-odata.md section 13)."""
    if sales_status == S["Canceled"]:
        return PROC["Canceled"]
    if sales_status == S["Invoiced"]:
        return PROC["Invoiced"]
    if sales_status == S["Delivered"]:
        return PROC["PartiallyInvoiced"] if document_status == DOC["Invoice"] else PROC["Delivered"]
    if sales_status == S["Backorder"]:
        return {
            DOC["Confirmation"]: PROC["Confirmed"],
            DOC["PickingList"]: PROC["Picked"],
            DOC["PackingSlip"]: PROC["PartiallyDelivered"],
            DOC["Invoice"]: PROC["PartiallyInvoiced"],
        }.get(document_status, PROC["Active"])
    return PROC["Active"]


# ---- header synchronisation (called after every line write) ----------------------------------------------
def sync_order_header(store: Store, company: str, number: str, identity: str) -> Row | None:
    """Recompute an order header's totals and SalesOrderStatus from its lines."""
    header = order_header(store, company, number)
    if header is None:
        return None
    lines = order_lines(store, company, number)
    totals = document_totals(lines, header["TotalDiscountPercentage"])
    changes = {
        "OrderTotalAmount": totals["total"],
        "OrderTotalTaxAmount": totals["tax"],
        "TotalDiscountAmount": totals["end_discount"],
        "OrderTotalChargesAmount": totals["charges"],
        "OrderTotalDiscountAmount": totals["all_discounts"],
        "AreTotalsUpdated": YES,
        "SalesOrderStatus": order_header_status(header["SalesOrderStatus"], lines),
    }
    return store.update("SalesOrderHeaderV2", header, changes, identity=derived_identity(identity), via_api=False)


def sync_quotation_header(store: Store, company: str, number: str, identity: str) -> Row | None:
    """Recompute a quotation header's totals from its lines."""
    header = quotation_header(store, company, number)
    if header is None:
        return None
    totals = document_totals(quotation_lines(store, company, number), header["TotalDiscountPercentage"])
    changes = {
        "QuotationTotalAmount": totals["total"],
        "QuotationTotalTaxAmount": totals["tax"],
        "TotalDiscountAmount": totals["end_discount"],
        "QuotationTotalChargesAmount": totals["charges"],
        "AreTotalsUpdated": YES,
    }
    return store.update("SalesQuotationHeaderV2", header, changes, identity=derived_identity(identity), via_api=False)


# ---- on-hand ----------------------------------------------------------------------------------------------
def is_stocked(store: Store, company: str, item: str) -> bool:
    found = product(store, company, item)
    return found is not None and found["IsStockedProduct"] == YES


def onhand_row(store: Store, company: str, item: str, site: str, warehouse: str) -> Row | None:
    return store.get(
        "WarehouseOnHandV2",
        {"dataAreaId": company, "ItemNumber": item, "InventorySiteId": site, "InventoryWarehouseId": warehouse},
    )


def refresh_onhand(
    store: Store, company: str, item: str, site: str, warehouse: str, identity: str, on_hand_delta: Decimal = ZERO
) -> Row | None:
    """Recompute reservations and open demand of one item in one warehouse (creating the on-hand row of a
    stocked item on first use), optionally moving physical on-hand by ``on_hand_delta``."""
    if not (item and site and warehouse):
        return None
    found = product(store, company, item)
    if found is None or found["IsStockedProduct"] != YES:
        return None
    identity = derived_identity(identity)
    row = onhand_row(store, company, item, site, warehouse)
    if row is None:
        row = store.insert(
            "WarehouseOnHandV2",
            {
                "dataAreaId": company,
                "ItemNumber": item,
                "InventorySiteId": site,
                "InventoryWarehouseId": warehouse,
                "ProductName": found["ProductName"],
            },
            identity=identity,
            via_api=False,
        )
    reserved, on_order = open_demand(store, company, item, site, warehouse)
    on_hand = dec(row["OnHandQuantity"]) + on_hand_delta
    ordered, reserved_ordered = dec(row["OrderedQuantity"]), dec(row["ReservedOrderedQuantity"])
    available_ordered = ordered - reserved_ordered - on_order
    changes = {
        "OnHandQuantity": on_hand,
        "ReservedOnHandQuantity": reserved,
        "AvailableOnHandQuantity": on_hand - reserved,
        "OnOrderQuantity": on_order,
        "AvailableOrderedQuantity": available_ordered,
        "TotalAvailableQuantity": on_hand - reserved + available_ordered,
    }
    return store.update("WarehouseOnHandV2", row, changes, identity=identity, via_api=False)


def open_demand(store: Store, company: str, item: str, site: str, warehouse: str) -> tuple[Decimal, Decimal]:
    """(reserved, unreserved) quantity of the open order lines of one item in one warehouse.

    Only lines with something left to deliver count (a reservation never exceeds that), which the
    (company, item, site, warehouse, remaining) index finds without reading the order history.
    """
    table = store.model.entities["SalesOrderLine"].table
    assert table is not None
    remaining, reserved = table.c.RemainingSalesPhysicalQuantity, table.c.ReservedSalesQuantity
    unreserved = sa.case((remaining > reserved, remaining - reserved), else_=0)
    query = sa.select(sa.func.coalesce(sa.func.sum(reserved), 0), sa.func.coalesce(sa.func.sum(unreserved), 0)).where(
        table.c.dataAreaId == company,
        table.c.ItemNumber == item,
        table.c.ShippingSiteId == site,
        table.c.ShippingWarehouseId == warehouse,
        remaining > 0,
    )
    total_reserved, total_unreserved = store.db.connection.execute(query).one()
    # SQLite sums NUMERIC as floats; round back to the quantity precision of the model.
    return (dec(total_reserved).quantize(QTY), dec(total_unreserved).quantize(QTY))


def available_on_hand(store: Store, company: str, item: str, site: str, warehouse: str) -> Decimal:
    row = onhand_row(store, company, item, site, warehouse)
    return ZERO if row is None else dec(row["OnHandQuantity"]) - dec(row["ReservedOnHandQuantity"])


def reserve(store: Store, line: Row, identity: str) -> Row:
    """Reserve what the line still needs from the free physical on-hand (partially when stock is short)."""
    company = line["dataAreaId"]
    if not is_stocked(store, company, line["ItemNumber"]):
        return line
    need = dec(line["RemainingSalesPhysicalQuantity"]) - dec(line["ReservedSalesQuantity"])
    if need <= 0:
        return line
    refresh_onhand(store, company, line["ItemNumber"], line["ShippingSiteId"], line["ShippingWarehouseId"], identity)
    free = available_on_hand(store, company, line["ItemNumber"], line["ShippingSiteId"], line["ShippingWarehouseId"])
    take = min(need, max(free, ZERO))
    if take <= 0:
        return line
    return store.update(
        "SalesOrderLine",
        line,
        {"ReservedSalesQuantity": dec(line["ReservedSalesQuantity"]) + take},
        identity=identity,
        via_api=False,
    )


# ---- credit and holds -------------------------------------------------------------------------------------
def hold_of(store: Store, company: str, account: str) -> int:
    found = customer(store, company, account)
    return HOLD["No"] if found is None else found["OnHoldStatus"]


def check_not_on_hold(store: Store, company: str, account: str, blocked: set[str], doing: str) -> None:
    """Refuse ``doing`` when the customer's OnHoldStatus is one of ``blocked``."""
    status = hold_of(store, company, account)
    name = CustVendorBlocked.name_of(status)
    if name in blocked:
        raise process_error(f"Customer {account} is on hold ({name}). {doing} is not allowed.")


def open_balance(store: Store, company: str, account: str) -> Decimal:
    """The customer's open invoice amounts."""
    return sum(
        (
            dec(inv["InvoiceOpenAmount"])
            for inv in store.find(
                "SalesInvoiceHeaderV2", {"dataAreaId": company, "InvoiceCustomerAccountNumber": account}
            )
        ),
        ZERO,
    )


def uninvoiced_order_value(store: Store, header: Mapping[str, Any]) -> Decimal:
    invoiced = sum(
        (
            dec(inv["TotalInvoiceAmount"])
            for inv in store.find(
                "SalesInvoiceHeaderV2",
                {"dataAreaId": header["dataAreaId"], "SalesOrderNumber": header["SalesOrderNumber"]},
            )
        ),
        ZERO,
    )
    return max(dec(header["OrderTotalAmount"]) - invoiced, ZERO)


def check_credit_limit(store: Store, header: Row) -> None:
    """When the invoice account's credit limit is mandatory, refuse if open invoices + other confirmed,
    uninvoiced orders + this order's uninvoiced value exceed it (amounts are not converted between currencies)."""
    company = header["dataAreaId"]
    account = header["InvoiceCustomerAccountNumber"] or header["OrderingCustomerAccountNumber"]
    cust = customer(store, company, account)
    if cust is None or cust["CreditLimitIsMandatory"] != YES:
        return
    exposure = open_balance(store, company, account)
    for other in store.find("SalesOrderHeaderV2", {"dataAreaId": company, "InvoiceCustomerAccountNumber": account}):
        if other["SalesOrderNumber"] == header["SalesOrderNumber"]:
            continue
        if other["DocumentStatus"] >= DOC["Confirmation"] and other["SalesOrderStatus"] in (
            S["Backorder"],
            S["Delivered"],
        ):
            exposure += uninvoiced_order_value(store, other)
    exposure += uninvoiced_order_value(store, header)
    limit = dec(cust["CreditLimit"])
    if exposure > limit:
        raise process_error(
            f"The credit limit for customer {account} has been exceeded: balance including this order "
            f"{fmt_amount(exposure)} {header['CurrencyCode']}, credit limit {fmt_amount(limit)}.",
            f"Sales order {header['SalesOrderNumber']} cannot be confirmed.",
        )


# ---- sales quotation lifecycle ----------------------------------------------------------------------------
def _quotation_status_name(value: int) -> str:
    return SalesQuotationStatus.name_of(value) or str(value)


def _set_quotation_status(store: Store, header: Row, status: int, identity: str, **extra: Any) -> Row:
    for line in quotation_lines(store, header["dataAreaId"], header["SalesQuotationNumber"]):
        store.update("SalesQuotationLine", line, {"SalesQuotationStatus": status}, identity=identity, via_api=False)
    header = reread(store, "SalesQuotationHeaderV2", header)
    return store.update(
        "SalesQuotationHeaderV2", header, {"SalesQuotationStatus": status, **extra}, identity=identity, via_api=False
    )


def _check_quotation_open(header: Row, doing: str) -> None:
    if header["SalesQuotationStatus"] not in OPEN_QUOTATION:
        raise process_error(
            f"Quotation {header['SalesQuotationNumber']} has status "
            f"{_quotation_status_name(header['SalesQuotationStatus'])}; it cannot be {doing}."
        )


def send_quotation(store: Store, header: Row, identity: str) -> Row:
    """Created/Sent/Modified -> Sent (the quotation journal). Sending again is allowed, as in F&O."""
    _check_quotation_open(header, "sent")
    return _set_quotation_status(store, header, QS["Sent"], identity)


def lose_quotation(store: Store, header: Row, identity: str) -> Row:
    _check_quotation_open(header, "marked as lost")
    return _set_quotation_status(store, header, QS["Lost"], identity)


def cancel_quotation(store: Store, header: Row, identity: str) -> Row:
    _check_quotation_open(header, "cancelled")
    return _set_quotation_status(store, header, QS["Cancelled"], identity)


def revise_quotation(store: Store, header: Row, identity: str) -> Row:
    """Open -> Revised (the quote was revised in Sales: this version is closed, the revision is a new one)."""
    _check_quotation_open(header, "revised")
    return _set_quotation_status(store, header, QS["Revised"], identity)


def request_quotation_status(store: Store, header: Row, target: int, identity: str, order_number: str = "") -> Row:
    """A quotation status written over OData by dual-write, read as a lifecycle request.

    Sent, Lost, Cancelled and Revised run the same transition as the actions (and refuse the same way).
    Confirmed marks the quotation confirmed and links ``order_number`` (or the already linked order) in
    GeneratedSalesOrderNumber, without creating an order: a quote won in Sales brings its order over its own
    map. Created, Modified, Reset and the approval statuses are not moves SCM takes from outside: ignored.
    """
    header = reread(store, "SalesQuotationHeaderV2", header)
    if header["SalesQuotationStatus"] == target:
        return header
    moves = {
        QS["Sent"]: send_quotation,
        QS["Lost"]: lose_quotation,
        QS["Cancelled"]: cancel_quotation,
        QS["Revised"]: revise_quotation,
    }
    if target in moves:
        return moves[target](store, header, identity)
    if target != QS["Confirmed"]:
        return header
    _check_quotation_open(header, "confirmed")
    number = order_number or header["GeneratedSalesOrderNumber"]
    order = order_header(store, header["dataAreaId"], number) if number else None
    if order is not None and not order["QuotationNumber"]:
        store.update(
            "SalesOrderHeaderV2",
            order,
            {"QuotationNumber": header["SalesQuotationNumber"]},
            identity=identity,
            via_api=False,
        )
    return _set_quotation_status(
        store, header, QS["Confirmed"], identity, GeneratedSalesOrderNumber=number, ConfirmationDate=today()
    )


#: Quotation header fields copied to the sales order it becomes (quotation name -> order name).
QUOTATION_TO_ORDER = {
    "RequestingCustomerAccountNumber": "OrderingCustomerAccountNumber",
    "InvoiceCustomerAccountNumber": "InvoiceCustomerAccountNumber",
    "CurrencyCode": "CurrencyCode",
    "LanguageId": "LanguageId",
    "SalesQuotationName": "SalesOrderName",
    "PaymentTermsName": "PaymentTermsName",
    "DeliveryModeCode": "DeliveryModeCode",
    "DeliveryTermsCode": "DeliveryTermsCode",
    "DefaultShippingSiteId": "DefaultShippingSiteId",
    "DefaultShippingWarehouseId": "DefaultShippingWarehouseId",
    "TotalDiscountPercentage": "TotalDiscountPercentage",
    "PriceCustomerGroupCode": "PriceCustomerGroupCode",
    "CustomersReference": "CustomersOrderReference",
    "CustomerRequisitionNumber": "CustomerRequisitionNumber",
    "ContactPersonId": "ContactPersonId",
    "SalesTaxGroupCode": "SalesTaxGroupCode",
    "RequestedShippingDate": "RequestedShippingDate",
    "RequestedReceiptDate": "RequestedReceiptDate",
    "ArePricesIncludingSalesTax": "ArePricesIncludingSalesTax",
    "SalesOrderPromisingMethod": "SalesOrderPromisingMethod",
}
QUOTATION_LINE_TO_ORDER_LINE = {
    "LineCreationSequenceNumber": "LineCreationSequenceNumber",
    "LineNumber": "LineNumber",
    "ItemNumber": "ItemNumber",
    "ProductName": "ProductName",
    "LineDescription": "LineDescription",
    "RequestedSalesQuantity": "OrderedSalesQuantity",
    "SalesUnitSymbol": "SalesUnitSymbol",
    "SalesPrice": "SalesPrice",
    "SalesPriceQuantity": "SalesPriceQuantity",
    "LineDiscountAmount": "LineDiscountAmount",
    "LineDiscountPercentage": "LineDiscountPercentage",
    "MultilineDiscountAmount": "MultilineDiscountAmount",
    "MultilineDiscountPercentage": "MultilineDiscountPercentage",
    "ShippingSiteId": "ShippingSiteId",
    "ShippingWarehouseId": "ShippingWarehouseId",
    "SalesTaxGroupCode": "SalesTaxGroupCode",
    "SalesTaxItemGroupCode": "SalesTaxItemGroupCode",
    "RequestedShippingDate": "RequestedShippingDate",
    "RequestedReceiptDate": "RequestedReceiptDate",
    "ProductColorId": "ProductColorId",
    "ProductSizeId": "ProductSizeId",
    "ProductStyleId": "ProductStyleId",
    "ProductConfigurationId": "ProductConfigurationId",
}


def confirm_quotation(store: Store, header: Row, identity: str, order_number: str = "") -> Row:
    """Open quotation with lines -> Confirmed; creates (or, when ``order_number`` names an existing order of
    the same customer, links) the sales order and records it in GeneratedSalesOrderNumber. Returns the order."""
    _check_quotation_open(header, "confirmed")
    company, number = header["dataAreaId"], header["SalesQuotationNumber"]
    lines = quotation_lines(store, company, number)
    if not lines:
        raise process_error(f"Quotation {number} has no lines; there is nothing to confirm.")
    check_not_on_hold(store, company, header["RequestingCustomerAccountNumber"], {"All"}, "Confirming a quotation")
    existing = order_header(store, company, order_number) if order_number else None
    if existing is not None:
        if existing["OrderingCustomerAccountNumber"] != header["RequestingCustomerAccountNumber"]:
            raise process_error(
                f"Sales order {order_number} belongs to customer "
                f"{existing['OrderingCustomerAccountNumber']}, not to "
                f"{header['RequestingCustomerAccountNumber']} of quotation {number}."
            )
        order = store.update(
            "SalesOrderHeaderV2", existing, {"QuotationNumber": number}, identity=identity, via_api=False
        )
    else:
        values: dict[str, Any] = {"dataAreaId": company, "QuotationNumber": number}
        if order_number:
            values["SalesOrderNumber"] = order_number
        for source, target in QUOTATION_TO_ORDER.items():
            values[target] = header[source]
        for name in header:
            if name.startswith(("DeliveryAddress", "InvoiceAddress")):
                values[name] = header[name]
        order = store.insert("SalesOrderHeaderV2", values, identity=identity, via_api=False)
        for line in lines:
            line_values = {"dataAreaId": company, "SalesOrderNumber": order["SalesOrderNumber"]}
            for source, target in QUOTATION_LINE_TO_ORDER_LINE.items():
                line_values[target] = line[source]
            store.insert("SalesOrderLine", line_values, identity=identity, via_api=False)
    _set_quotation_status(
        store,
        reread(store, "SalesQuotationHeaderV2", header),
        QS["Confirmed"],
        identity,
        GeneratedSalesOrderNumber=order["SalesOrderNumber"],
        ConfirmationDate=today(),
    )
    return reread(store, "SalesOrderHeaderV2", order)


# ---- sales order lifecycle --------------------------------------------------------------------------------
def _status_name(value: int) -> str:
    return SalesStatus.name_of(value) or str(value)


def _check_order_processable(store: Store, header: Row, doing: str, holds: set[str]) -> list[Row]:
    """Common preconditions of order postings; returns the order's lines."""
    number = header["SalesOrderNumber"]
    status = header["SalesOrderStatus"]
    if header["IsSalesProcessingStopped"] == YES:
        raise process_error(f"Sales order {number} is stopped (IsSalesProcessingStopped); {doing} is not allowed.")
    if status in (S["Canceled"], S["Invoiced"]):
        raise process_error(f"Sales order {number} has status {_status_name(status)}; {doing} is not allowed.")
    lines = order_lines(store, header["dataAreaId"], number)
    if not lines:
        raise process_error(f"Sales order {number} has no lines; there is nothing to post.")
    check_not_on_hold(store, header["dataAreaId"], header["OrderingCustomerAccountNumber"], holds, doing)
    return lines


def _advance_document_status(store: Store, header: Row, document: int, identity: str, **extra: Any) -> Row:
    header = reread(store, "SalesOrderHeaderV2", header)
    return store.update(
        "SalesOrderHeaderV2",
        header,
        {"DocumentStatus": max(header["DocumentStatus"], document), **extra},
        identity=identity,
        via_api=False,
    )


def confirm_order(store: Store, header: Row, identity: str) -> Row:
    """Sales order confirmation.

    Needs an open order (Backorder: it has lines and something left to deliver), not stopped, a customer not
    on hold (All), and — when the invoice account's credit limit is mandatory — enough credit. Reserves
    physical on-hand for every stocked line (partially, or not at all, when stock is short: confirmation is
    not refused for stock). DocumentStatus becomes Confirmation (processing status Confirmed); confirming
    again after later documents keeps the later DocumentStatus.
    """
    lines = _check_order_processable(store, header, "confirmation", {"All"})
    if header["SalesOrderStatus"] != S["Backorder"]:
        raise process_error(
            f"Sales order {header['SalesOrderNumber']} has status "
            f"{_status_name(header['SalesOrderStatus'])}; only open orders can be confirmed."
        )
    check_credit_limit(store, header)
    for line in lines:
        if order_line_status(line) == S["Backorder"]:
            line = reserve(store, line, identity)
            if is_empty_date(line["ConfirmedShippingDate"]):
                shipping = (
                    line["RequestedShippingDate"] if not is_empty_date(line["RequestedShippingDate"]) else today()
                )
                store.update(
                    "SalesOrderLine", line, {"ConfirmedShippingDate": shipping}, identity=identity, via_api=False
                )
    header = reread(store, "SalesOrderHeaderV2", header)
    extra: dict[str, Any] = {}
    if is_empty_date(header["ConfirmedShippingDate"]):
        extra["ConfirmedShippingDate"] = (
            header["RequestedShippingDate"] if not is_empty_date(header["RequestedShippingDate"]) else today()
        )
        extra["ConfirmedReceiptDate"] = (
            header["RequestedReceiptDate"]
            if not is_empty_date(header["RequestedReceiptDate"])
            else extra["ConfirmedShippingDate"]
        )
    return _advance_document_status(store, header, DOC["Confirmation"], identity, **extra)


def post_picking_list(store: Store, header: Row, identity: str) -> Row:
    """Picking list for everything left to deliver: needs an open order with remaining quantity (not
    necessarily confirmed, as in F&O), not stopped, customer not on hold (All). Reserves what is still
    unreserved (as far as stock allows). DocumentStatus PickingList (processing status Picked)."""
    lines = _check_order_processable(store, header, "picking", {"All"})
    open_lines = [line for line in lines if order_line_status(line) == S["Backorder"]]
    if not open_lines:
        raise process_error(f"Sales order {header['SalesOrderNumber']} has nothing left to pick.")
    for line in open_lines:
        reserve(store, line, identity)
    return _advance_document_status(store, header, DOC["PickingList"], identity)


def find_line(lines: list[Row], spec: Mapping[str, Any], number: str) -> Row:
    """The line a parameter item names by LineCreationSequenceNumber, InventoryLotId or LineNumber."""
    for field in ("LineCreationSequenceNumber", "InventoryLotId", "LineNumber"):
        if spec.get(field) not in (None, ""):
            wanted = spec[field]
            for line in lines:
                if same(line[field], wanted) or str(line[field]) == str(wanted):
                    return line
            raise process_error(f"Document {number} has no line with {field} {wanted}.")
    raise process_error(
        "Each item of 'Lines' must name a line by LineCreationSequenceNumber, InventoryLotId or LineNumber."
    )


def requested_quantities(
    lines: list[Row],
    params: Mapping[str, Any],
    number: str,
    remaining: Callable[[Row], Decimal],
    default: Callable[[Row], Decimal],
    what: str,
) -> list[tuple[Row, Decimal]]:
    """(line, quantity) pairs to post: the ``Lines`` parameter, or ``default(line)`` for every line.

    Each requested quantity must be positive and at most ``remaining(line)``; a ``Lines`` item without
    ``Quantity`` takes the line's remaining quantity.
    """
    items = params.get("Lines") if isinstance(params, Mapping) else None
    chosen: list[tuple[Row, Decimal]] = []
    if items is None:
        for line in lines:
            qty = default(line)
            if qty > 0:
                chosen.append((line, qty))
        return chosen
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise process_error("The parameter 'Lines' must be a list of objects.")
    seen: set[str] = set()
    for item in items:
        line = find_line(lines, item, number)
        if line["InventoryLotId"] in seen:
            raise process_error(f"Line {line['LineCreationSequenceNumber']} of {number} is named twice in 'Lines'.")
        seen.add(line["InventoryLotId"])
        left = remaining(line)
        try:
            qty = dec(item["Quantity"]) if item.get("Quantity") is not None else left
        except (decimal.InvalidOperation, TypeError, ValueError):
            raise process_error(f"Quantity '{item.get('Quantity')}' is not a number.") from None
        if qty <= 0:
            raise process_error(
                f"Line {line['LineCreationSequenceNumber']} of {number}: the quantity to {what} "
                f"must be greater than zero (remaining {fmt_qty(left)})."
            )
        if qty > left:
            raise process_error(
                f"Line {line['LineCreationSequenceNumber']} of {number}: the quantity to {what} "
                f"{fmt_qty(qty)} exceeds the remaining quantity {fmt_qty(left)}."
            )
        chosen.append((line, qty))
    return chosen


def post_packing_slip(store: Store, header: Row, identity: str, params: Mapping[str, Any] | None = None) -> Row:
    """Packing slip (delivery) by quantity.

    Quantities: ``{"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}, ...]}``; without ``Lines``, the
    lines' ``SalesDeliverNow`` quantities when any line has one, else everything left to deliver. Needs an open
    order (Backorder), not stopped, customer not on hold (All), and enough physical on-hand in each line's
    warehouse (unless ALLOW_NEGATIVE_INVENTORY). Reduces on-hand, consumes the line's reservation, resets
    SalesDeliverNow, moves line and header statuses (Backorder -> Delivered when nothing is left) and sets
    DocumentStatus PackingSlip (processing status PartiallyDelivered or Delivered).
    """
    lines = _check_order_processable(store, header, "delivery", {"All"})
    number = header["SalesOrderNumber"]
    if header["SalesOrderStatus"] != S["Backorder"]:
        raise process_error(
            f"Sales order {number} has status {_status_name(header['SalesOrderStatus'])}; "
            "there is nothing left to deliver."
        )
    open_lines = [line for line in lines if order_line_status(line) == S["Backorder"]]
    deliver_now = any(dec(line["SalesDeliverNow"]) > 0 for line in open_lines)

    def default(line: Row) -> Decimal:
        if deliver_now:
            return min(dec(line["SalesDeliverNow"]), dec(line["RemainingSalesPhysicalQuantity"]))
        return dec(line["RemainingSalesPhysicalQuantity"])

    chosen = requested_quantities(
        lines, params or {}, number, lambda line: dec(line["RemainingSalesPhysicalQuantity"]), default, "deliver"
    )
    if not chosen:
        raise process_error(f"Sales order {number} has nothing left to deliver.")
    company = header["dataAreaId"]
    # Check every line's stock before writing anything, so a refusal names all shortages at once.
    needed: dict[tuple[str, str, str], Decimal] = {}
    for line, qty in chosen:
        if is_stocked(store, company, line["ItemNumber"]):
            where = (line["ItemNumber"], line["ShippingSiteId"], line["ShippingWarehouseId"])
            needed[where] = needed.get(where, ZERO) + qty
    if not ALLOW_NEGATIVE_INVENTORY:
        shortages = []
        for (item, site, warehouse), qty in needed.items():
            row = onhand_row(store, company, item, site, warehouse)
            on_hand = ZERO if row is None else dec(row["OnHandQuantity"])
            if qty > on_hand:
                shortages.append(
                    f"Item {item} in warehouse {warehouse}: the quantity to deliver {fmt_qty(qty)} "
                    f"is larger than the physical on-hand quantity {fmt_qty(on_hand)}."
                )
        if shortages:
            raise process_error(*shortages, f"The packing slip for sales order {number} was not posted.")
    for line, qty in chosen:
        line = reread(store, "SalesOrderLine", line)
        reserved = dec(line["ReservedSalesQuantity"])
        store.update(
            "SalesOrderLine",
            line,
            {
                "DeliveredSalesQuantity": dec(line["DeliveredSalesQuantity"]) + qty,
                "RemainingSalesPhysicalQuantity": dec(line["RemainingSalesPhysicalQuantity"]) - qty,
                "RemainingSalesFinancialQuantity": dec(line["RemainingSalesFinancialQuantity"]) + qty,
                "ReservedSalesQuantity": max(reserved - qty, ZERO),
                "SalesDeliverNow": ZERO,
            },
            identity=identity,
            via_api=False,
        )
        refresh_onhand(
            store,
            company,
            line["ItemNumber"],
            line["ShippingSiteId"],
            line["ShippingWarehouseId"],
            identity,
            on_hand_delta=-qty,
        )
    return _advance_document_status(store, header, DOC["PackingSlip"], identity)


def _invoiced_so_far(store: Store, line: Row) -> tuple[Decimal, Decimal]:
    """(amount, charges) already invoiced for an order line."""
    amount = charges = ZERO
    for inv in store.find(
        "SalesInvoiceLineV2", {"dataAreaId": line["dataAreaId"], "InventoryLotId": line["InventoryLotId"]}
    ):
        amount += dec(inv["LineAmount"])
        charges += dec(inv["LineTotalChargesAmount"])
    return amount, charges


def due_date(store: Store, company: str, terms: str, invoice_date: dt.datetime) -> dt.datetime:
    found = store.get("PaymentTerm", {"dataAreaId": company, "Name": terms}) if terms else None
    if found is None:
        return invoice_date
    return invoice_date + dt.timedelta(days=int(found["NumberOfDays"] or 0) + 30 * int(found["NumberOfMonths"] or 0))


def post_invoice(store: Store, header: Row, identity: str, params: Mapping[str, Any] | None = None) -> Row:
    """Invoice delivered quantities: creates SalesInvoiceHeadersV2 / SalesInvoiceLinesV2 and returns the header.

    Quantities: ``{"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]}``, at most what was delivered
    and not yet invoiced; without ``Lines``, everything delivered and not invoiced. Refused when nothing is
    delivered (post a packing slip first), when the order is stopped, cancelled or fully invoiced, or when the
    customer is on hold (Invoice or All). Line amounts are proportional to the quantity; the invoice that
    completes a line takes the rest, so partial invoices add up to the line amount. The invoice starts fully
    open (InvoiceOpenAmount = TotalInvoiceAmount, IsSettled No) with DueDate from the terms of payment.
    """
    lines = _check_order_processable(store, header, "invoicing", {"All", "Invoice"})
    number, company = header["SalesOrderNumber"], header["dataAreaId"]
    chosen = requested_quantities(
        lines,
        params or {},
        number,
        lambda line: dec(line["RemainingSalesFinancialQuantity"]),
        lambda line: dec(line["RemainingSalesFinancialQuantity"]),
        "invoice",
    )
    if not chosen:
        raise process_error(f"Sales order {number} has no delivered quantity to invoice; post a packing slip first.")
    invoice_number = numbering.next_number(
        store,
        numbering.SALES_INVOICE,
        company,
        lambda n: store.get("SalesInvoiceHeaderV2", {"dataAreaId": company, "InvoiceNumber": n}) is not None,
    )
    voucher = numbering.next_number(store, numbering.INVOICE_VOUCHER, company)
    invoice_date = today()
    end_pct = header["TotalDiscountPercentage"]
    invoice_lines = []
    for index, (line, qty) in enumerate(chosen, start=1):
        ordered = dec(line["OrderedSalesQuantity"])
        done_amount, done_charges = _invoiced_so_far(store, line)
        # The invoice that completes a line takes the rest, so rounding never leaves a cent behind.
        if dec(line["InvoicedSalesQuantity"]) + qty >= ordered:
            amount = dec(line["LineAmount"]) - done_amount
            charges = dec(line["TotalChargesAmount"]) - done_charges
        else:
            amount = money(dec(line["LineAmount"]) * qty / ordered) if ordered else ZERO
            charges = money(dec(line["TotalChargesAmount"]) * qty / ordered) if ordered else ZERO
        gross = line_gross_amount(line, qty)
        invoice_lines.append(
            {
                "dataAreaId": company,
                "InvoiceNumber": invoice_number,
                "InvoiceDate": invoice_date,
                "LineCreationSequenceNumber": line["LineCreationSequenceNumber"],
                "LineNumber": Decimal(index),
                "SalesOrderNumber": number,
                "InventoryLotId": line["InventoryLotId"],
                "ItemNumber": line["ItemNumber"],
                "ProductNumber": line["ProductNumber"],
                "ProductName": line["ProductName"],
                "LineDescription": line["LineDescription"],
                "InvoicedQuantity": qty,
                "SalesUnitSymbol": line["SalesUnitSymbol"],
                "SalesPrice": line["SalesPrice"],
                "LineAmount": amount,
                "LineTotalDiscountAmount": max(gross - amount - charges, ZERO),
                "LineTotalChargesAmount": charges,
                "LineTotalTaxAmount": line_tax(company, line, end_pct, amount, charges),
                "CurrencyCode": header["CurrencyCode"],
                "InventorySiteId": line["ShippingSiteId"],
                "InventoryWarehouseId": line["ShippingWarehouseId"],
                "SalesTaxGroupCode": line["SalesTaxGroupCode"],
            }
        )
    totals = document_totals(
        [
            {
                "LineAmount": i["LineAmount"],
                "TotalChargesAmount": i["LineTotalChargesAmount"],
                "TotalTaxAmount": i["LineTotalTaxAmount"],
                "TotalDiscountAmount": i["LineTotalDiscountAmount"],
            }
            for i in invoice_lines
        ],
        end_pct,
    )
    invoice = store.insert(
        "SalesInvoiceHeaderV2",
        {
            "dataAreaId": company,
            "InvoiceNumber": invoice_number,
            "InvoiceDate": invoice_date,
            "DueDate": due_date(store, company, header["PaymentTermsName"], invoice_date),
            "SalesOrderNumber": number,
            "InvoiceCustomerAccountNumber": header["InvoiceCustomerAccountNumber"],
            "OrderingCustomerAccountNumber": header["OrderingCustomerAccountNumber"],
            "LedgerVoucher": voucher,
            "CustomersOrderReference": header["CustomersOrderReference"],
            "CurrencyCode": header["CurrencyCode"],
            "PaymentTermsName": header["PaymentTermsName"],
            "DeliveryModeCode": header["DeliveryModeCode"],
            "DeliveryTermsCode": header["DeliveryTermsCode"],
            "TotalInvoiceAmount": totals["total"],
            "TotalTaxAmount": totals["tax"],
            "TotalChargeAmount": totals["charges"],
            "TotalDiscountAmount": totals["end_discount"],
            "TotalDiscountCustomerGroupCode": "",
            "InvoiceOpenAmount": totals["total"],
            "IsSettled": YES if totals["total"] <= 0 else NO,
            "InvoiceAddressStreet": header["InvoiceAddressStreet"],
            "InvoiceAddressCity": header["InvoiceAddressCity"],
            "InvoiceAddressState": header["InvoiceAddressState"],
            "InvoiceAddressZipCode": header["InvoiceAddressZipCode"],
            "InvoiceAddressCountryRegionId": header["InvoiceAddressCountryRegionId"],
            "InvoiceAddressCountryRegionISOCode": header["InvoiceAddressCountryRegionISOCode"],
        },
        identity=identity,
        via_api=False,
    )
    for values in invoice_lines:
        store.insert("SalesInvoiceLineV2", values, identity=identity, via_api=False)
    for line, qty in chosen:
        line = reread(store, "SalesOrderLine", line)
        store.update(
            "SalesOrderLine",
            line,
            {
                "InvoicedSalesQuantity": dec(line["InvoicedSalesQuantity"]) + qty,
                "RemainingSalesFinancialQuantity": dec(line["RemainingSalesFinancialQuantity"]) - qty,
            },
            identity=identity,
            via_api=False,
        )
    _advance_document_status(store, header, DOC["Invoice"], identity)
    return reread(store, "SalesInvoiceHeaderV2", invoice)


def cancel_order(store: Store, header: Row, identity: str) -> Row:
    """Cancel an order that has nothing delivered: every line and the header become Canceled, reservations
    are released. Refused for cancelled, delivered or invoiced orders and for partially delivered ones
    (cancelling the remainder of a partly delivered order is not emulated)."""
    number = header["SalesOrderNumber"]
    status = header["SalesOrderStatus"]
    if status in (S["Canceled"], S["Delivered"], S["Invoiced"]):
        raise process_error(f"Sales order {number} has status {_status_name(status)}; it cannot be cancelled.")
    lines = order_lines(store, header["dataAreaId"], number)
    delivered = [line for line in lines if dec(line["DeliveredSalesQuantity"]) > 0]
    if delivered:
        raise process_error(f"Sales order {number} has been partially delivered; it cannot be cancelled.")
    header = store.update(
        "SalesOrderHeaderV2", header, {"SalesOrderStatus": S["Canceled"]}, identity=identity, via_api=False
    )
    for line in lines:
        line = reread(store, "SalesOrderLine", line)
        store.update(
            "SalesOrderLine",
            line,
            {"RemainingSalesPhysicalQuantity": ZERO, "ReservedSalesQuantity": ZERO, "SalesDeliverNow": ZERO},
            identity=identity,
            via_api=False,
        )
    return reread(store, "SalesOrderHeaderV2", header)


# ---- payments ---------------------------------------------------------------------------------------------
def journal_lines(store: Store, company: str, batch: str) -> list[Row]:
    return store.find(
        "CustomerPaymentJournalLine", {"dataAreaId": company, "JournalBatchNumber": batch}, order_by=["LineNumber"]
    )


def _open_invoices(store: Store, company: str, account: str, currency: str) -> list[Row]:
    invoices = store.find(
        "SalesInvoiceHeaderV2",
        {"dataAreaId": company, "InvoiceCustomerAccountNumber": account, "IsSettled": NO},
        order_by=["InvoiceDate", "InvoiceNumber"],
    )
    return [inv for inv in invoices if inv["CurrencyCode"] == currency and dec(inv["InvoiceOpenAmount"]) > 0]


def post_payment_journal(store: Store, header: Row, identity: str) -> Row:
    """Post a customer payment journal: every line's CreditAmount is a payment from the customer named in
    AccountDisplayValue (AccountType Cust). A line naming MarkedInvoice settles that invoice (it must belong to
    the customer, be in the line's currency and still be open); a line without one settles the customer's open
    invoices in that currency oldest first (automatic settlement). What exceeds the open amounts stays on the
    customer as an unapplied payment. Settled invoices get a lower InvoiceOpenAmount, IsSettled Yes when
    nothing is left, and LastSettlementDate. Refused when the journal is posted already, has no lines, a line
    has no positive CreditAmount, a line's customer does not exist or is on hold (All)."""
    company, batch = header["dataAreaId"], header["JournalBatchNumber"]
    if header["IsPosted"] == YES:
        raise process_error(f"Journal {batch} has already been posted.")
    lines = journal_lines(store, company, batch)
    if not lines:
        raise process_error(f"Journal {batch} has no lines; there is nothing to post.")
    problems = []
    for line in lines:
        label = f"Journal {batch}, line {fmt_qty(line['LineNumber'])}"
        account = line["AccountDisplayValue"]
        if customer(store, company, account) is None:
            problems.append(f"{label}: customer account '{account}' does not exist.")
            continue
        if dec(line["CreditAmount"]) <= 0 or dec(line["DebitAmount"]) != 0:
            problems.append(f"{label}: a customer payment needs a positive credit amount and no debit amount.")
        if hold_of(store, company, account) == HOLD["All"]:
            problems.append(f"{label}: customer {account} is on hold (All).")
        if line["MarkedInvoice"]:
            invoice = store.get("SalesInvoiceHeaderV2", {"dataAreaId": company, "InvoiceNumber": line["MarkedInvoice"]})
            if invoice is None or invoice["InvoiceCustomerAccountNumber"] != account:
                problems.append(f"{label}: invoice {line['MarkedInvoice']} is not an invoice of customer {account}.")
            elif invoice["CurrencyCode"] != line["CurrencyCode"]:
                problems.append(
                    f"{label}: invoice {line['MarkedInvoice']} is in {invoice['CurrencyCode']}, the "
                    f"payment in {line['CurrencyCode']}."
                )
            elif dec(invoice["InvoiceOpenAmount"]) <= 0:
                problems.append(f"{label}: invoice {line['MarkedInvoice']} is already settled.")
    if problems:
        raise process_error(*problems, f"Journal {batch} was not posted.")
    posting_date = today()
    for line in lines:
        account = line["AccountDisplayValue"]
        left = dec(line["CreditAmount"])
        settled: list[str] = []
        if line["MarkedInvoice"]:
            targets = [
                store.get("SalesInvoiceHeaderV2", {"dataAreaId": company, "InvoiceNumber": line["MarkedInvoice"]})
            ]
        else:
            targets = _open_invoices(store, company, account, line["CurrencyCode"])
        for invoice in targets:
            assert invoice is not None
            if left <= 0:
                break
            open_amount = dec(invoice["InvoiceOpenAmount"])
            applied = min(left, open_amount)
            if applied <= 0:
                continue
            left -= applied
            remaining = open_amount - applied
            store.update(
                "SalesInvoiceHeaderV2",
                invoice,
                {
                    "InvoiceOpenAmount": remaining,
                    "IsSettled": YES if remaining <= 0 else NO,
                    "LastSettlementDate": posting_date,
                },
                identity=identity,
                via_api=False,
            )
            settled.append(invoice["InvoiceNumber"])
        voucher = numbering.next_number(store, numbering.PAYMENT_VOUCHER, company)
        store.update(
            "CustomerPaymentJournalLine",
            reread(store, "CustomerPaymentJournalLine", line),
            {
                "IsPosted": YES,
                "Voucher": voucher,
                "SettledAmount": dec(line["CreditAmount"]) - left,
                "SettledInvoices": ",".join(settled),
            },
            identity=identity,
            via_api=False,
        )
    header = reread(store, "CustomerPaymentJournalHeader", header)
    return store.update(
        "CustomerPaymentJournalHeader",
        header,
        {"IsPosted": YES, "PostingDate": posting_date},
        identity=identity,
        via_api=False,
    )
