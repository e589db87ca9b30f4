"""Sales quotations: defaults, totals, the Send / Confirm / Lose / Cancel lifecycle and what it allows."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from mock_scm.schema import SalesQuotationHeaderCreationMethod, SalesQuotationStatus, SalesStatus
from mock_scm.values import as_utc
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm

QS = SalesQuotationStatus.members
V2 = "SalesQuotationHeaderV2"


def quotation(scm: Scm, customer: str = "US-003", lines: list[tuple[str, int]] | None = None, **values) -> str:
    header = scm.insert(V2, {"RequestingCustomerAccountNumber": customer, **values})
    for item, quantity in lines if lines is not None else [("D0001", 2), ("L0001", 4)]:
        scm.insert(
            "SalesQuotationLine",
            {
                "SalesQuotationNumber": header["SalesQuotationNumber"],
                "ItemNumber": item,
                "RequestedSalesQuantity": Decimal(quantity),
            },
        )
    return header["SalesQuotationNumber"]


def q(scm: Scm, number: str) -> dict:
    return scm.require(V2, {"SalesQuotationNumber": number})


def qlines(scm: Scm, number: str) -> list[dict]:
    return scm.find("SalesQuotationLine", {"dataAreaId": "usmf", "SalesQuotationNumber": number})


def test_new_quotation_is_created_with_customer_defaults_and_expiry(scm_env: Scm) -> None:
    """Status Created, number from the sequence, defaults from the customer, valid for 30 days."""
    row = scm_env.insert(V2, {"RequestingCustomerAccountNumber": "US-003"})
    assert row["SalesQuotationNumber"] == "000001" and row["SalesQuotationStatus"] == QS["Created"]
    assert (row["CurrencyCode"], row["PaymentTermsName"], row["InvoiceCustomerAccountNumber"]) == (
        "USD",
        "Net30",
        "US-003",
    )
    assert as_utc(row["SalesQuotationExpiryDate"]).date().isoformat() == "2024-06-16"
    assert row["SalesQuotationHeaderCreationMethod"] == SalesQuotationHeaderCreationMethod.members["SCM"]


def test_quotation_from_dual_write_keeps_its_number_and_counts_as_made_in_sales(scm_env: Scm) -> None:
    """A CRM- numbered quote written by the bridge keeps its number; creation method Dynamics365Sales."""
    row = scm_env.insert(
        V2, {"SalesQuotationNumber": "CRM-QUO-0042", "RequestingCustomerAccountNumber": "US-003"}, identity="dualwrite"
    )
    assert row["SalesQuotationNumber"] == "CRM-QUO-0042"
    assert row["SalesQuotationHeaderCreationMethod"] == SalesQuotationHeaderCreationMethod.members["Dynamics365Sales"]


def test_quotation_needs_a_known_customer(scm_env: Scm) -> None:
    """RequestingCustomerAccountNumber must name a customer of the company."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert(V2, {"RequestingCustomerAccountNumber": "NOPE"})
    assert "'NOPE' in field 'Customer account'" in scm_env.refused(excinfo)


def test_quotation_lines_price_and_total(scm_env: Scm) -> None:
    """Lines default like order lines (WA customer, 10% usmf tax); the header sums them."""
    number = quotation(scm_env)
    lines = qlines(scm_env, number)
    assert [line["LineAmount"] for line in lines] == [Decimal("438.00"), Decimal("596.00")]
    assert [line["LineCreationSequenceNumber"] for line in lines] == [1, 2]
    header = q(scm_env, number)
    assert header["QuotationTotalTaxAmount"] == Decimal("103.40")
    assert header["QuotationTotalAmount"] == Decimal("1137.40")


def test_quotation_line_needs_a_released_item(scm_env: Scm) -> None:
    """Quotation lines are validated like order lines."""
    number = quotation(scm_env, lines=[])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("SalesQuotationLine", {"SalesQuotationNumber": number, "ItemNumber": "Z0000"})
    assert scm_env.refused(excinfo).startswith("Write failed for table row of type 'SalesQuotationLineEntity'.")


def test_send_marks_quotation_and_lines_sent_and_may_be_repeated(scm_env: Scm) -> None:
    """Send: Created -> Sent; sending again is allowed; the lines follow the header status."""
    number = quotation(scm_env)
    result = scm_env.act("Send", V2, {"SalesQuotationNumber": number})
    assert result.entity == V2 and result.row["SalesQuotationStatus"] == QS["Sent"]
    assert {line["SalesQuotationStatus"] for line in qlines(scm_env, number)} == {QS["Sent"]}
    assert scm_env.act("Send", V2, {"SalesQuotationNumber": number}).row["SalesQuotationStatus"] == QS["Sent"]


def test_confirm_creates_the_sales_order_with_its_lines(scm_env: Scm) -> None:
    """Confirm: quotation Confirmed, a new order (number from the order sequence) with copied lines, linked both
    ways (GeneratedSalesOrderNumber / QuotationNumber); the action answers with the order."""
    number = quotation(scm_env, TotalDiscountPercentage=Decimal(5))
    scm_env.act("Send", V2, {"SalesQuotationNumber": number})
    result = scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    assert result.entity == "SalesOrderHeaderV2"
    order = result.row
    assert order["SalesOrderNumber"] == "000001" and order["QuotationNumber"] == number
    assert (
        order["OrderingCustomerAccountNumber"] == "US-003"
        and order["SalesOrderStatus"] == SalesStatus.members["Backorder"]
    )
    header = q(scm_env, number)
    assert header["SalesQuotationStatus"] == QS["Confirmed"] and header["GeneratedSalesOrderNumber"] == "000001"
    assert as_utc(header["ConfirmationDate"]).date().isoformat() == "2024-05-17"
    lines = scm_env.lines("000001")
    assert [
        (line["ItemNumber"], line["OrderedSalesQuantity"], line["LineCreationSequenceNumber"]) for line in lines
    ] == [("D0001", 2, 1), ("L0001", 4, 2)]
    assert lines[0]["InventoryLotId"] not in {line["InventoryLotId"] for line in qlines(scm_env, number)}
    assert order["OrderTotalAmount"] == header["QuotationTotalAmount"]


def test_confirm_on_the_cds_view_answers_with_the_cds_order(scm_env: Scm) -> None:
    """The dual-write flavour of the action returns the CDS flavour of the order."""
    number = quotation(scm_env)
    result = scm_env.act("Confirm", "CDSSalesQuotationHeader", {"SalesQuotationNumber": number})
    assert result.entity == "CDSSalesOrderHeader"


def test_confirm_with_an_order_number_creates_or_links_that_order(scm_env: Scm) -> None:
    """SalesOrderNumber names the order to make (a CRM- number from Sales) or an existing one to link."""
    first = quotation(scm_env)
    made = scm_env.act("Confirm", V2, {"SalesQuotationNumber": first}, {"SalesOrderNumber": "CRM-ORD-0007"}).row
    assert made["SalesOrderNumber"] == "CRM-ORD-0007" and len(scm_env.lines("CRM-ORD-0007")) == 2
    existing = scm_env.order("US-003", [("D0004", 1)])
    second = quotation(scm_env)
    linked = scm_env.act("Confirm", V2, {"SalesQuotationNumber": second}, {"SalesOrderNumber": existing}).row
    assert linked["QuotationNumber"] == second and len(scm_env.lines(existing)) == 1
    assert q(scm_env, second)["GeneratedSalesOrderNumber"] == existing


def test_confirm_linking_another_customers_order_is_refused(scm_env: Scm) -> None:
    """The linked order must belong to the quotation's customer."""
    other = scm_env.order("US-001", [("D0001", 1)])
    number = quotation(scm_env)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.act("Confirm", V2, {"SalesQuotationNumber": number}, {"SalesOrderNumber": other})
    assert "belongs to customer US-001" in scm_env.refused(excinfo)
    assert q(scm_env, number)["SalesQuotationStatus"] == QS["Created"]


def test_confirm_without_lines_is_refused(scm_env: Scm) -> None:
    """There is nothing to turn into an order."""
    number = quotation(scm_env, lines=[])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    assert scm_env.refused(excinfo) == f"Infolog: Error: Quotation {number} has no lines; there is nothing to confirm."


def test_confirm_for_customer_on_hold_is_refused_and_makes_no_order(scm_env: Scm) -> None:
    """US-013 is on hold (All): no order is created, the quotation stays open."""
    number = quotation(scm_env, customer="US-013")
    with pytest.raises(SandboxError) as excinfo:
        scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    assert "Customer US-013 is on hold (All)" in scm_env.refused(excinfo)
    assert scm_env.find("SalesOrderHeaderV2") == []
    assert q(scm_env, number)["SalesQuotationStatus"] == QS["Created"]


@pytest.mark.parametrize("action,status", [("Lose", "Lost"), ("Cancel", "Cancelled")])
def test_lose_and_cancel_close_the_quotation(scm_env: Scm, action: str, status: str) -> None:
    """Lose -> Lost, Cancel -> Cancelled; a closed quotation can no longer be sent or confirmed."""
    number = quotation(scm_env)
    assert scm_env.act(action, V2, {"SalesQuotationNumber": number}).row["SalesQuotationStatus"] == QS[status]
    for later in ("Send", "Confirm", "Lose", "Cancel"):
        with pytest.raises(SandboxError) as excinfo:
            scm_env.act(later, V2, {"SalesQuotationNumber": number})
        assert f"has status {status}" in scm_env.refused(excinfo)


def test_confirmed_quotation_is_frozen(scm_env: Scm) -> None:
    """After confirmation: no header or line changes, no new lines, no delete."""
    number = quotation(scm_env)
    scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update(V2, {"SalesQuotationNumber": number}, {"SalesQuotationName": "changed"})
    assert "has status Confirmed and cannot be changed" in scm_env.refused(excinfo)
    with pytest.raises(SandboxError):
        scm_env.insert("SalesQuotationLine", {"SalesQuotationNumber": number, "ItemNumber": "D0003"})
    with pytest.raises(SandboxError):
        scm_env.update(
            "SalesQuotationLine",
            {"InventoryLotId": qlines(scm_env, number)[0]["InventoryLotId"]},
            {"RequestedSalesQuantity": Decimal(9)},
        )
    with pytest.raises(SandboxError) as excinfo:
        scm_env.delete(V2, {"SalesQuotationNumber": number})
    assert "is confirmed" in scm_env.refused(excinfo)


def test_status_written_by_dual_write_sends_the_quotation(scm_env: Scm) -> None:
    """The quote map copies the status: Sent written by the bridge runs Send (lines follow), with other edits."""
    number = quotation(scm_env)
    scm_env.update(
        V2,
        {"SalesQuotationNumber": number},
        {"SalesQuotationStatus": QS["Sent"], "SalesQuotationName": "Speakers"},
        identity="dualwrite",
    )
    header = q(scm_env, number)
    assert header["SalesQuotationStatus"] == QS["Sent"] and header["SalesQuotationName"] == "Speakers"
    assert {line["SalesQuotationStatus"] for line in qlines(scm_env, number)} == {QS["Sent"]}


def test_confirmed_written_by_dual_write_links_the_order_from_sales(scm_env: Scm) -> None:
    """Confirmed + GeneratedSalesOrderNumber (a quote won in Sales) confirms and links; no order is made in SCM."""
    number = quotation(scm_env)
    order = scm_env.order("US-003", [("D0001", 2)], SalesOrderNumber="CRM-ORD-0100")
    scm_env.update(
        V2,
        {"SalesQuotationNumber": number},
        {"SalesQuotationStatus": QS["Confirmed"], "GeneratedSalesOrderNumber": order},
        identity="dualwrite",
    )
    header = q(scm_env, number)
    assert header["SalesQuotationStatus"] == QS["Confirmed"] and header["GeneratedSalesOrderNumber"] == order
    assert scm_env.header(order)["QuotationNumber"] == number
    assert len(scm_env.find("SalesOrderHeaderV2")) == 1


def test_status_writes_that_are_not_moves_are_ignored(scm_env: Scm) -> None:
    """Created (Sales' draft status) written to a Sent quotation leaves it Sent; an empty order link clears nothing."""
    number = quotation(scm_env)
    scm_env.act("Send", V2, {"SalesQuotationNumber": number})
    scm_env.update(
        V2,
        {"SalesQuotationNumber": number},
        {"SalesQuotationStatus": QS["Created"], "GeneratedSalesOrderNumber": ""},
        identity="dualwrite",
    )
    assert q(scm_env, number)["SalesQuotationStatus"] == QS["Sent"]
    scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    scm_env.update(V2, {"SalesQuotationNumber": number}, {"GeneratedSalesOrderNumber": ""}, identity="dualwrite")
    assert q(scm_env, number)["GeneratedSalesOrderNumber"] == "000001"


def test_illegal_status_write_is_refused(scm_env: Scm) -> None:
    """Lost written to a confirmed quotation is refused like the Lose action (the Sales write rolls back)."""
    number = quotation(scm_env)
    scm_env.act("Confirm", V2, {"SalesQuotationNumber": number})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update(V2, {"SalesQuotationNumber": number}, {"SalesQuotationStatus": QS["Lost"]}, identity="dualwrite")
    assert "has status Confirmed; it cannot be marked as lost" in scm_env.refused(excinfo)


def test_revised_status_closes_the_quotation(scm_env: Scm) -> None:
    """A quote revised in Sales: the old version becomes Revised in SCM and is frozen."""
    number = quotation(scm_env)
    scm_env.update(V2, {"SalesQuotationNumber": number}, {"SalesQuotationStatus": QS["Revised"]}, identity="dualwrite")
    assert q(scm_env, number)["SalesQuotationStatus"] == QS["Revised"]
    with pytest.raises(SandboxError):
        scm_env.act("Send", V2, {"SalesQuotationNumber": number})


def test_deleting_an_open_quotation_deletes_its_lines(scm_env: Scm) -> None:
    """Lines go with their quotation."""
    number = quotation(scm_env)
    scm_env.delete(V2, {"SalesQuotationNumber": number})
    assert qlines(scm_env, number) == []


def test_quotation_end_discount_updates_totals(scm_env: Scm) -> None:
    """TotalDiscountPercentage on the header lowers totals and tax."""
    number = quotation(scm_env, lines=[("D0001", 10)])
    scm_env.update(V2, {"SalesQuotationNumber": number}, {"TotalDiscountPercentage": Decimal(50)})
    header = q(scm_env, number)
    assert header["TotalDiscountAmount"] == Decimal("1095.00")
    assert header["QuotationTotalAmount"] == Decimal("1204.50")


def test_unknown_action_parameter_is_refused(scm_env: Scm) -> None:
    """Action bodies are checked: a misspelt parameter is a 400, not silently ignored."""
    number = quotation(scm_env)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.act("Confirm", V2, {"SalesQuotationNumber": number}, {"OrderNumber": "x"})
    assert "The parameter 'OrderNumber' is not a parameter of action 'Confirm'" in scm_env.refused(excinfo)
