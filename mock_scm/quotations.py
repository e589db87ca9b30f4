"""The sales quotation lifecycle: send, lose, cancel, revise and confirm (into a sales order), and the
statuses dual-write writes over OData read as requests for the same moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_scm.credit import check_not_on_hold
from mock_scm.errors import process_error
from mock_scm.lookups import order_header, quotation_lines, reread
from mock_scm.schema import SalesQuotationStatus
from mock_scm.settings import ScmSettings
from mock_scm.status import OPEN_QUOTATION, QS
from sandbox.odata.store import Row, Store


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


def send_quotation(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
    """Created/Sent/Modified -> Sent (the quotation journal). Sending again is allowed, as in F&O."""
    _check_quotation_open(header, "sent")
    return _set_quotation_status(store, header, QS["Sent"], identity)


def lose_quotation(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
    """Open -> Lost (the customer declined)."""
    _check_quotation_open(header, "marked as lost")
    return _set_quotation_status(store, header, QS["Lost"], identity)


def cancel_quotation(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
    """Open -> Cancelled."""
    _check_quotation_open(header, "cancelled")
    return _set_quotation_status(store, header, QS["Cancelled"], identity)


def revise_quotation(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
    """Open -> Revised (the quote was revised in Sales: this version is closed, the revision is a new one)."""
    _check_quotation_open(header, "revised")
    return _set_quotation_status(store, header, QS["Revised"], identity)


def request_quotation_status(
    store: Store, settings: ScmSettings, header: Row, target: int, identity: str, order_number: str = ""
) -> Row:
    """A quotation status written over OData by dual-write, read as a lifecycle request.

    Sent, Lost, Cancelled and Revised run the same transition as the actions (and refuse the same way).
    Confirmed marks the quotation confirmed and links ``order_number`` (or the already linked order) in
    GeneratedSalesOrderNumber, without creating an order: a quote won in Sales brings its order over its own
    map. Created, Modified, Reset and the approval statuses are not moves SCM takes from outside: ignored.
    """
    header = reread(store, "SalesQuotationHeaderV2", header)
    if header["SalesQuotationStatus"] == target:
        return header
    moves: dict[int, Callable[[Store, ScmSettings, Row, str], Row]] = {
        QS["Sent"]: send_quotation,
        QS["Lost"]: lose_quotation,
        QS["Cancelled"]: cancel_quotation,
        QS["Revised"]: revise_quotation,
    }
    if target in moves:
        return moves[target](store, settings, header, identity)
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
        store, header, QS["Confirmed"], identity, GeneratedSalesOrderNumber=number, ConfirmationDate=settings.today()
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


def confirm_quotation(store: Store, settings: ScmSettings, header: Row, identity: str, order_number: str = "") -> Row:
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
        ConfirmationDate=settings.today(),
    )
    return reread(store, "SalesOrderHeaderV2", order)
