"""The sales order lifecycle: confirmation, picking list, packing slip (delivery), invoice and cancellation.

Each posting checks the order (open, not stopped, customer not on hold), takes the quantities named in its
``Lines`` parameter or the defaults, and moves quantities, on-hand and statuses; a refusal names every
problem at once and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mock_scm import numbering
from mock_scm.credit import check_credit_limit, check_not_on_hold
from mock_scm.errors import process_error
from mock_scm.inventory import is_stocked, onhand_row, refresh_onhand, reserve
from mock_scm.lookups import order_lines, reread
from mock_scm.pricing import document_totals, line_gross_amount, line_tax
from mock_scm.schema import SalesStatus
from mock_scm.settings import ScmSettings
from mock_scm.status import DOC, S, order_line_status
from mock_scm.values import NO, YES, ZERO, dec, fmt_qty, is_empty_date, money, same
from sandbox.odata.store import Row, Store


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


def confirm_order(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
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
            line = reserve(store, settings, line, identity)
            if is_empty_date(line["ConfirmedShippingDate"]):
                shipping = (
                    line["RequestedShippingDate"]
                    if not is_empty_date(line["RequestedShippingDate"])
                    else settings.today()
                )
                store.update(
                    "SalesOrderLine", line, {"ConfirmedShippingDate": shipping}, identity=identity, via_api=False
                )
    header = reread(store, "SalesOrderHeaderV2", header)
    extra: dict[str, Any] = {}
    if is_empty_date(header["ConfirmedShippingDate"]):
        extra["ConfirmedShippingDate"] = (
            header["RequestedShippingDate"] if not is_empty_date(header["RequestedShippingDate"]) else settings.today()
        )
        extra["ConfirmedReceiptDate"] = (
            header["RequestedReceiptDate"]
            if not is_empty_date(header["RequestedReceiptDate"])
            else extra["ConfirmedShippingDate"]
        )
    return _advance_document_status(store, header, DOC["Confirmation"], identity, **extra)


def post_picking_list(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
    """Picking list for everything left to deliver: needs an open order with remaining quantity (not
    necessarily confirmed, as in F&O), not stopped, customer not on hold (All). Reserves what is still
    unreserved (as far as stock allows). DocumentStatus PickingList (processing status Picked)."""
    lines = _check_order_processable(store, header, "picking", {"All"})
    open_lines = [line for line in lines if order_line_status(line) == S["Backorder"]]
    if not open_lines:
        raise process_error(f"Sales order {header['SalesOrderNumber']} has nothing left to pick.")
    for line in open_lines:
        reserve(store, settings, line, identity)
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


def post_packing_slip(
    store: Store, settings: ScmSettings, header: Row, identity: str, params: Mapping[str, Any] | None = None
) -> Row:
    """Packing slip (delivery) by quantity.

    Quantities: ``{"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}, ...]}``; without ``Lines``, the
    lines' ``SalesDeliverNow`` quantities when any line has one, else everything left to deliver. Needs an open
    order (Backorder), not stopped, customer not on hold (All), and enough physical on-hand in each line's
    warehouse (unless ``settings.allow_negative_inventory``). Reduces on-hand, consumes the line's reservation, resets
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
    if not settings.allow_negative_inventory:
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
            settings,
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
    """The due date of an invoice under the terms of payment named ``terms`` (30 days a month)."""
    found = store.get("PaymentTerm", {"dataAreaId": company, "Name": terms}) if terms else None
    if found is None:
        return invoice_date
    return invoice_date + dt.timedelta(days=int(found["NumberOfDays"] or 0) + 30 * int(found["NumberOfMonths"] or 0))


def post_invoice(
    store: Store, settings: ScmSettings, header: Row, identity: str, params: Mapping[str, Any] | None = None
) -> Row:
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
    invoice_date = settings.today()
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
                "LineTotalTaxAmount": line_tax(settings, company, line, end_pct, amount, charges),
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


def cancel_order(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
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
