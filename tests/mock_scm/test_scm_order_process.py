"""The order-to-cash processes: confirmation, picking, packing slip, invoice, cancellation; on-hand and
reservations; the processing status dual-write sends to Sales at each step."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from mock_scm.schema import CustVendorBlocked, DocumentStatus, NoYes, SalesOrderProcessingStatus, SalesStatus
from mock_scm.values import as_utc
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm

S = SalesStatus.members
DOC = DocumentStatus.members
PROC = SalesOrderProcessingStatus.members


def processing(scm: Scm, number: str) -> str:
    return SalesOrderProcessingStatus.name_of(scm.header(number)["SalesOrderProcessingStatus"]) or "?"


def lines_by_seq(scm: Scm, number: str) -> dict[int, dict]:
    return {line["LineCreationSequenceNumber"]: line for line in scm.lines(number)}


# ---- confirmation -----------------------------------------------------------------------------------------
def test_confirm_reserves_stock_and_sets_confirmed(scm_env: Scm) -> None:
    """Confirmation: DocumentStatus Confirmation, processing status Confirmed, on-hand reserved, dates set."""
    number = scm_env.order("US-001", [("D0001", 5)])
    assert scm_env.onhand("D0001")["OnOrderQuantity"] == 5
    result = scm_env.act("Confirm", "SalesOrderHeaderV2", {"SalesOrderNumber": number})
    assert result.entity == "SalesOrderHeaderV2"
    header = result.row
    assert header["DocumentStatus"] == DOC["Confirmation"]
    assert header["SalesOrderProcessingStatus"] == PROC["Confirmed"]
    assert as_utc(header["ConfirmedShippingDate"]).date() == dt.date(2024, 5, 17)
    onhand = scm_env.onhand("D0001")
    assert (
        onhand["OnHandQuantity"],
        onhand["ReservedOnHandQuantity"],
        onhand["AvailableOnHandQuantity"],
        onhand["OnOrderQuantity"],
        onhand["TotalAvailableQuantity"],
    ) == (100, 5, 95, 0, 95)
    assert scm_env.lines(number)[0]["ReservedSalesQuantity"] == 5


def test_confirm_with_short_stock_reserves_what_there_is(scm_env: Scm) -> None:
    """Short stock does not block confirmation: 25 of 30 are reserved, 5 stay on order."""
    number = scm_env.order("US-001", [("D0004", 30)])
    scm_env.order_action("Confirm", number)
    assert scm_env.lines(number)[0]["ReservedSalesQuantity"] == 25
    onhand = scm_env.onhand("D0004")
    assert (
        onhand["ReservedOnHandQuantity"],
        onhand["AvailableOnHandQuantity"],
        onhand["OnOrderQuantity"],
        onhand["TotalAvailableQuantity"],
    ) == (25, 0, 5, -5)


def test_confirm_without_lines_is_refused(scm_env: Scm) -> None:
    """An order in status None has nothing to confirm."""
    number = scm_env.order("US-001", [])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("Confirm", number)
    assert scm_env.refused(excinfo) == f"Infolog: Error: Sales order {number} has no lines; there is nothing to post."


def test_confirm_for_customer_on_hold_is_refused(scm_env: Scm) -> None:
    """US-013 is on hold (All); the order can be created but not confirmed, and nothing is reserved."""
    number = scm_env.order("US-013", [("D0001", 1)])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("Confirm", number)
    assert "Customer US-013 is on hold (All). confirmation is not allowed." in scm_env.refused(excinfo)
    assert scm_env.header(number)["DocumentStatus"] == DOC["None"]
    assert scm_env.onhand("D0001")["ReservedOnHandQuantity"] == 0


def test_stopped_order_cannot_be_processed(scm_env: Scm) -> None:
    """IsSalesProcessingStopped blocks every posting."""
    number = scm_env.order("US-001", [("D0001", 1)], IsSalesProcessingStopped=NoYes.members["Yes"])
    for action in ("Confirm", "PostPickingList", "PostPackingSlip", "PostInvoice"):
        with pytest.raises(SandboxError) as excinfo:
            scm_env.order_action(action, number)
        assert "is stopped" in scm_env.refused(excinfo)


def test_credit_limit_is_checked_on_confirmation_when_mandatory(scm_env: Scm) -> None:
    """US-004 has a mandatory limit of 1,000.00: 963.60 passes, 1,204.50 is refused."""
    small = scm_env.order("US-004", [("D0001", 4)])
    big = scm_env.order("US-004", [("D0001", 5)])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("Confirm", big)
    text = scm_env.refused(excinfo)
    assert "The credit limit for customer US-004 has been exceeded" in text and "1,204.50" in text
    scm_env.order_action("Confirm", small)
    assert processing(scm_env, small) == "Confirmed"


def test_credit_check_counts_open_invoices_and_payment_frees_credit(scm_env: Scm) -> None:
    """An unpaid invoice uses credit; once a payment settles it, the next order fits again."""
    first = scm_env.order("US-004", [("D0001", 4)])
    scm_env.order_action("Confirm", first)
    scm_env.order_action("PostPackingSlip", first)
    invoice = scm_env.order_action("PostInvoice", first)
    second = scm_env.order("US-004", [("D0003", 1)])
    with pytest.raises(SandboxError):
        scm_env.order_action("Confirm", second)
    journal = scm_env.insert("CustomerPaymentJournalHeader", {})
    scm_env.insert(
        "CustomerPaymentJournalLine",
        {
            "JournalBatchNumber": journal["JournalBatchNumber"],
            "AccountDisplayValue": "US-004",
            "CreditAmount": Decimal("963.60"),
            "MarkedInvoice": invoice["InvoiceNumber"],
        },
    )
    scm_env.act("Post", "CustomerPaymentJournalHeader", {"JournalBatchNumber": journal["JournalBatchNumber"]})
    scm_env.order_action("Confirm", second)
    assert processing(scm_env, second) == "Confirmed"


def test_credit_limit_is_not_checked_when_not_mandatory(scm_env: Scm) -> None:
    """Customers without CreditLimitIsMandatory are not limited (US-001 has limit 0)."""
    number = scm_env.order("US-001", [("D0004", 3)])
    scm_env.order_action("Confirm", number)


# ---- picking and delivery ---------------------------------------------------------------------------------
def test_picking_list_sets_picked_and_reserves(scm_env: Scm) -> None:
    """Picking works on unconfirmed orders too (as in F&O) and reserves what is left."""
    number = scm_env.order("US-001", [("L0001", 7)])
    header = scm_env.order_action("PostPickingList", number)
    assert header["DocumentStatus"] == DOC["PickingList"] and processing(scm_env, number) == "Picked"
    assert scm_env.onhand("L0001")["ReservedOnHandQuantity"] == 7


def test_full_packing_slip_delivers_everything_and_consumes_on_hand(scm_env: Scm) -> None:
    """Without quantities the packing slip delivers all; on-hand drops, reservations are consumed."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    scm_env.order_action("Confirm", number)
    header = scm_env.order_action("PostPackingSlip", number)
    assert header["SalesOrderStatus"] == S["Delivered"] and header["DocumentStatus"] == DOC["PackingSlip"]
    assert header["SalesOrderProcessingStatus"] == PROC["Delivered"]
    for line in scm_env.lines(number):
        assert line["SalesOrderLineStatus"] == S["Delivered"]
        assert line["RemainingSalesPhysicalQuantity"] == 0 and line["ReservedSalesQuantity"] == 0
        assert line["RemainingSalesFinancialQuantity"] == line["OrderedSalesQuantity"]
    onhand = scm_env.onhand("D0001")
    assert (onhand["OnHandQuantity"], onhand["ReservedOnHandQuantity"], onhand["AvailableOnHandQuantity"]) == (
        95,
        0,
        95,
    )
    assert scm_env.onhand("D0003")["OnHandQuantity"] == 148


def test_partial_packing_slip_by_line_quantity(scm_env: Scm) -> None:
    """Lines: [{LineCreationSequenceNumber, Quantity}] delivers part; the order is PartiallyDelivered until a
    second slip (without quantities) delivers the rest."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    scm_env.order_action("Confirm", number)
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]})
    lines = lines_by_seq(scm_env, number)
    assert (
        lines[1]["DeliveredSalesQuantity"],
        lines[1]["RemainingSalesPhysicalQuantity"],
        lines[1]["ReservedSalesQuantity"],
    ) == (2, 3, 3)
    assert lines[1]["SalesOrderLineStatus"] == S["Backorder"] and lines[2]["DeliveredSalesQuantity"] == 0
    assert processing(scm_env, number) == "PartiallyDelivered"
    assert scm_env.onhand("D0001")["OnHandQuantity"] == 98
    scm_env.order_action("PostPackingSlip", number)
    assert processing(scm_env, number) == "Delivered"
    assert scm_env.onhand("D0001")["OnHandQuantity"] == 95


def test_packing_slip_honours_deliver_now(scm_env: Scm) -> None:
    """When lines carry SalesDeliverNow, only those quantities are delivered, and the field is reset."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    lot = lines_by_seq(scm_env, number)[1]["InventoryLotId"]
    scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"SalesDeliverNow": Decimal(3)})
    scm_env.order_action("PostPackingSlip", number)
    lines = lines_by_seq(scm_env, number)
    assert lines[1]["DeliveredSalesQuantity"] == 3 and lines[1]["SalesDeliverNow"] == 0
    assert lines[2]["DeliveredSalesQuantity"] == 0


def test_packing_slip_lines_may_be_named_by_lot_id(scm_env: Scm) -> None:
    """InventoryLotId names a line as well; a missing Quantity means all that is left."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    lot = lines_by_seq(scm_env, number)[2]["InventoryLotId"]
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"InventoryLotId": lot}]})
    lines = lines_by_seq(scm_env, number)
    assert lines[2]["DeliveredSalesQuantity"] == 2 and lines[1]["DeliveredSalesQuantity"] == 0


@pytest.mark.parametrize(
    "lines,message",
    [
        (
            [{"LineCreationSequenceNumber": 1, "Quantity": 6}],
            "the quantity to deliver 6 exceeds the remaining quantity 5",
        ),
        ([{"LineCreationSequenceNumber": 1, "Quantity": 0}], "must be greater than zero"),
        ([{"LineCreationSequenceNumber": 9, "Quantity": 1}], "has no line with LineCreationSequenceNumber 9"),
        ([{"Quantity": 1}], "must name a line"),
        ([{"LineCreationSequenceNumber": 1}, {"LineCreationSequenceNumber": 1}], "is named twice"),
        ({"LineCreationSequenceNumber": 1}, "must be a list of objects"),
        ([{"LineCreationSequenceNumber": 1, "Quantity": "x"}], "is not a number"),
    ],
)
def test_invalid_packing_slip_quantities_are_refused(scm_env: Scm, lines, message: str) -> None:
    """Each requested quantity names an existing line and lies between zero and what is left."""
    number = scm_env.order("US-001", [("D0001", 5)])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("PostPackingSlip", number, {"Lines": lines})
    assert message in scm_env.refused(excinfo)
    assert scm_env.lines(number)[0]["DeliveredSalesQuantity"] == 0


def test_packing_slip_without_stock_is_refused_and_nothing_is_half_written(scm_env: Scm) -> None:
    """One short line refuses the whole slip: the other line is not delivered and on-hand is untouched."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0004", 30)])
    scm_env.order_action("Confirm", number)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("PostPackingSlip", number)
    text = scm_env.refused(excinfo)
    assert (
        "Item D0004 in warehouse 11: the quantity to deliver 30 is larger than the physical on-hand quantity 25."
        in text
    )
    assert all(line["DeliveredSalesQuantity"] == 0 for line in scm_env.lines(number))
    assert scm_env.onhand("D0001")["OnHandQuantity"] == 100
    assert processing(scm_env, number) == "Confirmed"
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 2, "Quantity": 25}]})
    assert scm_env.onhand("D0004")["OnHandQuantity"] == 0


def test_negative_inventory_can_be_allowed(make_scm_env: type[Scm]) -> None:
    """The allow_negative_inventory option lets on-hand go below zero."""
    scm_env = make_scm_env(settings={"allow_negative_inventory": True})
    number = scm_env.order("US-001", [("D0004", 30)])
    scm_env.order_action("PostPackingSlip", number)
    assert scm_env.onhand("D0004")["OnHandQuantity"] == -5


def test_delivered_order_cannot_be_delivered_again(scm_env: Scm) -> None:
    """Once everything is delivered there is nothing left for a packing slip or a confirmation."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("PostPackingSlip", number)
    for action in ("PostPackingSlip", "Confirm"):
        with pytest.raises(SandboxError) as excinfo:
            scm_env.order_action(action, number)
        assert "has status Delivered" in scm_env.refused(excinfo)


def test_service_lines_deliver_without_stock(scm_env: Scm) -> None:
    """Services need no on-hand."""
    number = scm_env.order("US-001", [("S0001", 4)])
    header = scm_env.order_action("PostPackingSlip", number)
    assert header["SalesOrderStatus"] == S["Delivered"]


# ---- invoicing --------------------------------------------------------------------------------------------
def test_invoice_creates_header_and_lines_with_amounts_tax_and_totals(scm_env: Scm) -> None:
    """PostInvoice answers with the invoice: totals, tax, due date from the terms, fully open; order Invoiced."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    scm_env.order_action("Confirm", number)
    scm_env.order_action("PostPackingSlip", number)
    result = scm_env.act("PostInvoice", "SalesOrderHeaderV2", {"SalesOrderNumber": number})
    assert result.entity == "SalesInvoiceHeaderV2"
    invoice = result.row
    assert (invoice["InvoiceNumber"], invoice["LedgerVoucher"], invoice["SalesOrderNumber"]) == (
        "CIV-000001",
        "CI000001",
        number,
    )
    assert (invoice["TotalTaxAmount"], invoice["TotalInvoiceAmount"], invoice["InvoiceOpenAmount"]) == (
        Decimal("133.50"),
        Decimal("1468.50"),
        Decimal("1468.50"),
    )
    assert invoice["IsSettled"] == NoYes.members["No"] and invoice["CurrencyCode"] == "USD"
    assert as_utc(invoice["DueDate"]).date() == dt.date(2024, 5, 27)  # Net10
    lines = scm_env.find("SalesInvoiceLineV2", {"dataAreaId": "usmf", "InvoiceNumber": "CIV-000001"})
    assert [
        (
            line["LineCreationSequenceNumber"],
            line["ItemNumber"],
            line["InvoicedQuantity"],
            line["LineAmount"],
            line["LineTotalTaxAmount"],
        )
        for line in lines
    ] == [(1, "D0001", 5, Decimal("1095.00"), Decimal("109.50")), (2, "D0003", 2, Decimal("240.00"), Decimal("24.00"))]
    header = scm_env.header(number)
    assert header["SalesOrderStatus"] == S["Invoiced"] and header["SalesOrderProcessingStatus"] == PROC["Invoiced"]
    assert {line["SalesOrderLineStatus"] for line in scm_env.lines(number)} == {S["Invoiced"]}


def test_invoice_before_delivery_is_refused(scm_env: Scm) -> None:
    """Only delivered quantities are invoiced: post a packing slip first."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("Confirm", number)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("PostInvoice", number)
    assert "has no delivered quantity to invoice; post a packing slip first" in scm_env.refused(excinfo)
    assert scm_env.find("SalesInvoiceHeaderV2") == []


def test_invoice_for_customer_on_invoice_hold_is_refused(scm_env: Scm) -> None:
    """OnHoldStatus Invoice still lets goods ship but blocks invoicing."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("PostPackingSlip", number)
    scm_env.update("CustomerV3", {"CustomerAccount": "US-001"}, {"OnHoldStatus": CustVendorBlocked.members["Invoice"]})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("PostInvoice", number)
    assert "is on hold (Invoice)" in scm_env.refused(excinfo)


def test_partial_invoices_add_up_to_the_line_amount(scm_env: Scm) -> None:
    """Invoicing 1 + 1 + 1 of a 3-unit line with an odd amount: 30.00 + 30.00 + 29.99 = 89.99."""
    number = scm_env.order("US-001", [])
    scm_env.insert(
        "SalesOrderLine",
        {
            "SalesOrderNumber": number,
            "ItemNumber": "D0003",
            "SalesPrice": Decimal("33.33"),
            "OrderedSalesQuantity": Decimal(3),
            "LineDiscountPercentage": Decimal(10),
        },
    )
    assert scm_env.lines(number)[0]["LineAmount"] == Decimal("89.99")
    scm_env.order_action("PostPackingSlip", number)
    amounts = []
    for _ in range(3):
        invoice = scm_env.order_action(
            "PostInvoice", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]}
        )
        amounts.append(scm_env.find("SalesInvoiceLineV2", {"InvoiceNumber": invoice["InvoiceNumber"]})[0]["LineAmount"])
    assert amounts == [Decimal("30.00"), Decimal("30.00"), Decimal("29.99")]
    assert processing(scm_env, number) == "Invoiced"


def test_invoice_quantity_cannot_exceed_what_was_delivered(scm_env: Scm) -> None:
    """Invoiced quantity is limited by delivered-not-invoiced."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("PostInvoice", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 3}]})
    assert "the quantity to invoice 3 exceeds the remaining quantity 2" in scm_env.refused(excinfo)


def test_processing_status_follows_every_step(scm_env: Scm) -> None:
    """Active -> Confirmed -> Picked -> PartiallyDelivered -> PartiallyInvoiced -> (rest delivered, still
    PartiallyInvoiced) -> Invoiced, as fno-odata.md section 13 derives it."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    seen = [processing(scm_env, number)]
    scm_env.order_action("Confirm", number)
    seen.append(processing(scm_env, number))
    scm_env.order_action("PostPickingList", number)
    seen.append(processing(scm_env, number))
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]})
    seen.append(processing(scm_env, number))
    scm_env.order_action("PostInvoice", number)
    seen.append(processing(scm_env, number))
    assert scm_env.header(number)["SalesOrderStatus"] == S["Backorder"]
    scm_env.order_action("PostPackingSlip", number)
    seen.append(processing(scm_env, number))
    assert scm_env.header(number)["SalesOrderStatus"] == S["Delivered"]
    scm_env.order_action("PostInvoice", number)
    seen.append(processing(scm_env, number))
    assert seen == [
        "Active",
        "Confirmed",
        "Picked",
        "PartiallyDelivered",
        "PartiallyInvoiced",
        "PartiallyInvoiced",
        "Invoiced",
    ]
    assert len(scm_env.find("SalesInvoiceHeaderV2", {"SalesOrderNumber": number})) == 2


def test_delivered_then_partially_invoiced_order(scm_env: Scm) -> None:
    """Delivered + invoice of part of it = PartiallyInvoiced; invoicing the rest = Invoiced."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("PostPackingSlip", number)
    assert processing(scm_env, number) == "Delivered"
    scm_env.order_action("PostInvoice", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]})
    assert processing(scm_env, number) == "PartiallyInvoiced"
    assert scm_env.lines(number)[0]["SalesOrderLineStatus"] == S["Delivered"]
    scm_env.order_action("PostInvoice", number)
    assert processing(scm_env, number) == "Invoiced"
    invoiced = scm_env.find("SalesInvoiceHeaderV2", {"SalesOrderNumber": number})
    assert sum(i["TotalInvoiceAmount"] for i in invoiced) == scm_env.header(number)["OrderTotalAmount"]


def test_invoiced_order_cannot_be_posted_again(scm_env: Scm) -> None:
    """Every posting on an Invoiced order is refused."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("PostPackingSlip", number)
    scm_env.order_action("PostInvoice", number)
    for action in ("Confirm", "PostPickingList", "PostPackingSlip", "PostInvoice", "Cancel"):
        with pytest.raises(SandboxError) as excinfo:
            scm_env.order_action(action, number)
        assert "has status Invoiced" in scm_env.refused(excinfo)


# ---- cancellation -----------------------------------------------------------------------------------------
def test_cancel_releases_reservations_and_cancels_lines(scm_env: Scm) -> None:
    """Cancel: lines and header Canceled, processing status Canceled, reservations and open demand gone."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("Confirm", number)
    header = scm_env.order_action("Cancel", number)
    assert header["SalesOrderStatus"] == S["Canceled"] and header["SalesOrderProcessingStatus"] == PROC["Canceled"]
    line = scm_env.lines(number)[0]
    assert line["SalesOrderLineStatus"] == S["Canceled"] and line["ReservedSalesQuantity"] == 0
    onhand = scm_env.onhand("D0001")
    assert (onhand["ReservedOnHandQuantity"], onhand["OnOrderQuantity"], onhand["AvailableOnHandQuantity"]) == (
        0,
        0,
        100,
    )
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("Confirm", number)
    assert "has status Canceled" in scm_env.refused(excinfo)


def test_cancel_after_partial_delivery_is_refused(scm_env: Scm) -> None:
    """Cancelling the remainder of a partly delivered order is not emulated."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.order_action("Cancel", number)
    assert "has been partially delivered" in scm_env.refused(excinfo)


# ---- flavours and companies -------------------------------------------------------------------------------
def test_actions_on_the_cds_view_answer_with_the_cds_type(scm_env: Scm) -> None:
    """Actions bound to CDSSalesOrderHeader work the same and return the CDS row (invoices stay V2)."""
    number = scm_env.order("US-001", [("D0001", 1)])
    key = {"SalesOrderNumber": number}
    assert scm_env.act("Confirm", "CDSSalesOrderHeader", key).entity == "CDSSalesOrderHeader"
    assert scm_env.act("PostPickingList", "CDSSalesOrderHeader", key).entity == "CDSSalesOrderHeader"
    assert scm_env.act("PostPackingSlip", "CDSSalesOrderHeader", key).entity == "CDSSalesOrderHeader"
    assert scm_env.act("PostInvoice", "CDSSalesOrderHeader", key).entity == "SalesInvoiceHeaderV2"


def test_second_company_processes_touch_only_its_own_data(scm_env: Scm) -> None:
    """A usrt order reduces usrt's on-hand and gets usrt's numbers; usmf is untouched."""
    header = scm_env.insert("SalesOrderHeaderV2", {"dataAreaId": "usrt", "OrderingCustomerAccountNumber": "RT-002"})
    number = header["SalesOrderNumber"]
    scm_env.insert(
        "SalesOrderLine",
        {"dataAreaId": "usrt", "SalesOrderNumber": number, "ItemNumber": "D0001", "OrderedSalesQuantity": Decimal(10)},
    )
    scm_env.order_action("PostPackingSlip", number, company="usrt")
    invoice = scm_env.order_action("PostInvoice", number, company="usrt")
    assert invoice["InvoiceNumber"] == "CIV-000001" and invoice["dataAreaId"] == "usrt"
    assert invoice["TotalTaxAmount"] == Decimal("109.50")  # usrt: 5% of 2,190.00
    assert scm_env.onhand("D0001", company="usrt")["OnHandQuantity"] == 90
    assert scm_env.onhand("D0001")["OnHandQuantity"] == 100
    assert scm_env.find("SalesInvoiceHeaderV2", {"dataAreaId": "usmf"}) == []
