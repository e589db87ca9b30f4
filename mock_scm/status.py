"""Document statuses (``docs/reference/fno-odata.md`` section 13): an order line's status from its remaining
quantities, the header's from its lines, the processing status from (SalesStatus, DocumentStatus) with
Backorder + Invoice read as PartiallyInvoiced (a partly delivered order whose delivered part was invoiced)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mock_scm.schema import (
    CustVendorBlocked,
    DocumentStatus,
    SalesOrderProcessingStatus,
    SalesQuotationStatus,
    SalesStatus,
)
from mock_scm.values import dec

S = SalesStatus.members
DOC = DocumentStatus.members
PROC = SalesOrderProcessingStatus.members
QS = SalesQuotationStatus.members
HOLD = CustVendorBlocked.members

#: Quotation statuses from which Send / Confirm / Lose / Cancel are allowed (and edits).
OPEN_QUOTATION = frozenset({QS["Created"], QS["Sent"], QS["Modified"], QS["Reset"], QS["Submitted"], QS["Approved"]})


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
    """Backorder (an open order) without lines, as F&O creates every order; Canceled stays Canceled; otherwise
    the least advanced status of its live lines."""
    if current == S["Canceled"]:
        return current
    statuses = [order_line_status(line) for line in lines]
    if not statuses:
        return S["Backorder"]
    live = [s for s in statuses if s != S["Canceled"]]
    if not live:
        return S["Canceled"]
    for status in (S["Backorder"], S["Delivered"]):
        if status in live:
            return status
    return S["Invoiced"]


def processing_status(sales_status: int, document_status: int) -> int:
    """``SalesOrderProcessingStatus`` from SalesStatus + DocumentStatus (``docs/reference/fno-odata.md`` section 13)."""
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
