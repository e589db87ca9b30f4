"""Customer payment journals: lines, posting, settlement of invoices (open amount, settled flag)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from mock_scm.schema import LedgerJournalACType, NoYes
from mock_scm.values import as_utc
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm

YES, NO = NoYes.members["Yes"], NoYes.members["No"]
HEADER = "CustomerPaymentJournalHeader"
LINE = "CustomerPaymentJournalLine"


def invoiced(scm: Scm, customer: str = "US-001", item: str = "D0001", quantity: int = 5) -> dict:
    """An order delivered and invoiced; returns the invoice (D0001 x 5 to a 10% customer = 1,204.50)."""
    number = scm.order(customer, [(item, quantity)])
    scm.order_action("PostPackingSlip", number)
    return scm.order_action("PostInvoice", number)


def journal(scm: Scm, *lines: dict) -> str:
    header = scm.insert(HEADER, {"Description": "Lockbox"})
    for line in lines:
        scm.insert(LINE, {"JournalBatchNumber": header["JournalBatchNumber"], **line})
    return header["JournalBatchNumber"]


def post(scm: Scm, batch: str) -> dict:
    return scm.act("Post", HEADER, {"JournalBatchNumber": batch}).row


def invoice_row(scm: Scm, number: str) -> dict:
    return scm.require("SalesInvoiceHeaderV2", {"InvoiceNumber": number})


def test_journal_and_line_defaults(scm_env: Scm) -> None:
    """Journal number per company, name CustPay; lines numbered, dated today, in the customer's currency."""
    batch = journal(
        scm_env,
        {"AccountDisplayValue": "DE-001", "CreditAmount": Decimal(10)},
        {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(5)},
    )
    header = scm_env.require(HEADER, {"JournalBatchNumber": batch})
    assert (batch, header["JournalName"], header["IsPosted"], header["LineCount"]) == ("USMF-000001", "CustPay", NO, 2)
    lines = scm_env.find(LINE, {"JournalBatchNumber": batch})
    assert [(line["LineNumber"], line["CurrencyCode"]) for line in lines] == [(1, "EUR"), (2, "USD")]
    assert as_utc(lines[0]["TransactionDate"]).date() == dt.date(2024, 5, 17)


def test_payment_settles_the_marked_invoice(scm_env: Scm) -> None:
    """Paying the full amount of MarkedInvoice leaves nothing open: IsSettled Yes."""
    invoice = invoiced(scm_env)
    batch = journal(
        scm_env,
        {
            "AccountDisplayValue": "US-001",
            "CreditAmount": Decimal("1204.50"),
            "MarkedInvoice": invoice["InvoiceNumber"],
            "PaymentReference": "CHK-1001",
        },
    )
    header = post(scm_env, batch)
    assert header["IsPosted"] == YES
    settled = invoice_row(scm_env, invoice["InvoiceNumber"])
    assert settled["InvoiceOpenAmount"] == 0 and settled["IsSettled"] == YES
    assert as_utc(settled["LastSettlementDate"]).date() == dt.date(2024, 5, 17)
    line = scm_env.find(LINE, {"JournalBatchNumber": batch})[0]
    assert (line["IsPosted"], line["Voucher"], line["SettledAmount"], line["SettledInvoices"]) == (
        YES,
        "ARP-000001",
        Decimal("1204.50"),
        invoice["InvoiceNumber"],
    )


def test_partial_payment_leaves_an_open_amount(scm_env: Scm) -> None:
    """A payment below the invoice amount lowers InvoiceOpenAmount; the invoice stays unsettled."""
    invoice = invoiced(scm_env)
    post(
        scm_env,
        journal(
            scm_env,
            {
                "AccountDisplayValue": "US-001",
                "CreditAmount": Decimal("200"),
                "MarkedInvoice": invoice["InvoiceNumber"],
            },
        ),
    )
    row = invoice_row(scm_env, invoice["InvoiceNumber"])
    assert row["InvoiceOpenAmount"] == Decimal("1004.50") and row["IsSettled"] == NO
    post(
        scm_env,
        journal(
            scm_env,
            {
                "AccountDisplayValue": "US-001",
                "CreditAmount": Decimal("1004.50"),
                "MarkedInvoice": invoice["InvoiceNumber"],
            },
        ),
    )
    assert invoice_row(scm_env, invoice["InvoiceNumber"])["IsSettled"] == YES


def test_unmarked_payment_settles_oldest_invoices_first(scm_env: Scm) -> None:
    """Without MarkedInvoice the payment settles the customer's open invoices in order; the rest stays unapplied."""
    first = invoiced(scm_env, quantity=1)  # 240.90
    second = invoiced(scm_env, quantity=2)  # 481.80
    batch = journal(scm_env, {"AccountDisplayValue": "US-001", "CreditAmount": Decimal("800")})
    post(scm_env, batch)
    assert invoice_row(scm_env, first["InvoiceNumber"])["IsSettled"] == YES
    assert invoice_row(scm_env, second["InvoiceNumber"])["IsSettled"] == YES
    line = scm_env.find(LINE, {"JournalBatchNumber": batch})[0]
    assert line["SettledAmount"] == Decimal("722.70")
    assert line["SettledInvoices"] == f"{first['InvoiceNumber']},{second['InvoiceNumber']}"


def test_payment_in_another_currency_does_not_settle(scm_env: Scm) -> None:
    """Automatic settlement only matches invoices in the payment's currency."""
    invoice = invoiced(scm_env)
    post(
        scm_env,
        journal(scm_env, {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(100), "CurrencyCode": "EUR"}),
    )
    assert invoice_row(scm_env, invoice["InvoiceNumber"])["InvoiceOpenAmount"] == Decimal("1204.50")


def test_marked_invoice_of_another_customer_is_refused_on_the_line(scm_env: Scm) -> None:
    """MarkedInvoice must be an invoice of the paying customer."""
    invoice = invoiced(scm_env)
    header = scm_env.insert(HEADER, {})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert(
            LINE,
            {
                "JournalBatchNumber": header["JournalBatchNumber"],
                "AccountDisplayValue": "US-002",
                "CreditAmount": Decimal(10),
                "MarkedInvoice": invoice["InvoiceNumber"],
            },
        )
    assert "belongs to customer US-001, not to US-002" in scm_env.refused(excinfo)


@pytest.mark.parametrize(
    "line,message",
    [
        ({"AccountDisplayValue": "US-999", "CreditAmount": Decimal(1)}, "'US-999' in field 'Account'"),
        ({"AccountDisplayValue": "", "CreditAmount": Decimal(1)}, "Field 'Account' must be filled in."),
        (
            {"AccountDisplayValue": "US-001", "AccountType": LedgerJournalACType.members["Vend"]},
            "Only customer accounts",
        ),
        ({"AccountDisplayValue": "US-001", "CreditAmount": Decimal(-1)}, "Amounts cannot be negative."),
        ({"AccountDisplayValue": "US-001", "MarkedInvoice": "CIV-999999"}, "'CIV-999999' in field 'Invoice'"),
    ],
)
def test_invalid_payment_line_is_refused(scm_env: Scm, line: dict, message: str) -> None:
    """Payment lines need an existing customer account, a customer account type, non-negative amounts."""
    header = scm_env.insert(HEADER, {})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert(LINE, {"JournalBatchNumber": header["JournalBatchNumber"], **line})
    assert message in scm_env.refused(excinfo)


def test_posting_problems_are_all_named_and_nothing_is_settled(scm_env: Scm) -> None:
    """A journal with a zero line and a line for an already settled invoice is refused as a whole."""
    invoice = invoiced(scm_env)
    post(
        scm_env,
        journal(
            scm_env,
            {
                "AccountDisplayValue": "US-001",
                "CreditAmount": Decimal("1204.50"),
                "MarkedInvoice": invoice["InvoiceNumber"],
            },
        ),
    )
    other = invoiced(scm_env, quantity=1)
    batch = journal(
        scm_env,
        {"AccountDisplayValue": "US-001", "CreditAmount": Decimal("240.90"), "MarkedInvoice": other["InvoiceNumber"]},
        {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(0)},
        {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(5), "MarkedInvoice": invoice["InvoiceNumber"]},
    )
    with pytest.raises(SandboxError) as excinfo:
        post(scm_env, batch)
    text = scm_env.refused(excinfo)
    assert "line 2: a customer payment needs a positive credit amount" in text
    assert f"line 3: invoice {invoice['InvoiceNumber']} is already settled" in text
    assert invoice_row(scm_env, other["InvoiceNumber"])["IsSettled"] == NO
    assert scm_env.require(HEADER, {"JournalBatchNumber": batch})["IsPosted"] == NO


def test_posting_twice_or_empty_is_refused(scm_env: Scm) -> None:
    """A journal posts once and needs lines."""
    empty = journal(scm_env)
    with pytest.raises(SandboxError) as excinfo:
        post(scm_env, empty)
    assert "has no lines" in scm_env.refused(excinfo)
    batch = journal(scm_env, {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(10)})
    post(scm_env, batch)
    with pytest.raises(SandboxError) as excinfo:
        post(scm_env, batch)
    assert "has already been posted" in scm_env.refused(excinfo)


def test_payment_from_customer_on_hold_is_refused(scm_env: Scm) -> None:
    """Customers on hold (All) cannot have payments posted."""
    batch = journal(scm_env, {"AccountDisplayValue": "US-013", "CreditAmount": Decimal(10)})
    with pytest.raises(SandboxError) as excinfo:
        post(scm_env, batch)
    assert "customer US-013 is on hold (All)" in scm_env.refused(excinfo)


def test_posted_journal_is_frozen(scm_env: Scm) -> None:
    """After posting: no edits, no new lines, no deletes of journal or lines."""
    batch = journal(scm_env, {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(10)})
    post(scm_env, batch)
    line = scm_env.find(LINE, {"JournalBatchNumber": batch})[0]
    with pytest.raises(SandboxError):
        scm_env.update(
            LINE, {"JournalBatchNumber": batch, "LineNumber": line["LineNumber"]}, {"CreditAmount": Decimal(20)}
        )
    with pytest.raises(SandboxError):
        scm_env.insert(LINE, {"JournalBatchNumber": batch, "AccountDisplayValue": "US-001"})
    with pytest.raises(SandboxError):
        scm_env.delete(LINE, {"JournalBatchNumber": batch, "LineNumber": line["LineNumber"]})
    with pytest.raises(SandboxError):
        scm_env.delete(HEADER, {"JournalBatchNumber": batch})
    with pytest.raises(SandboxError):
        scm_env.update(HEADER, {"JournalBatchNumber": batch}, {"Description": "changed"})


def test_deleting_an_open_journal_deletes_its_lines(scm_env: Scm) -> None:
    """Lines go with their journal."""
    batch = journal(scm_env, {"AccountDisplayValue": "US-001", "CreditAmount": Decimal(10)})
    scm_env.delete(HEADER, {"JournalBatchNumber": batch})
    assert scm_env.find(LINE, {"JournalBatchNumber": batch}) == []


def test_lead_to_cash_ends_in_cash(scm_env: Scm) -> None:
    """Quotation -> order -> confirmation -> delivery -> invoice -> payment: the invoice is settled."""
    quote = scm_env.insert("SalesQuotationHeaderV2", {"RequestingCustomerAccountNumber": "US-009"})
    scm_env.insert(
        "SalesQuotationLine",
        {
            "SalesQuotationNumber": quote["SalesQuotationNumber"],
            "ItemNumber": "P0001",
            "RequestedSalesQuantity": Decimal(2),
        },
    )
    scm_env.act("Send", "SalesQuotationHeaderV2", {"SalesQuotationNumber": quote["SalesQuotationNumber"]})
    order = scm_env.act(
        "Confirm", "SalesQuotationHeaderV2", {"SalesQuotationNumber": quote["SalesQuotationNumber"]}
    ).row
    number = order["SalesOrderNumber"]
    for action in ("Confirm", "PostPickingList", "PostPackingSlip"):
        scm_env.order_action(action, number)
    invoice = scm_env.order_action("PostInvoice", number)
    assert invoice["TotalInvoiceAmount"] == Decimal("1977.80")
    post(
        scm_env,
        journal(
            scm_env,
            {
                "AccountDisplayValue": "US-009",
                "CreditAmount": invoice["TotalInvoiceAmount"],
                "MarkedInvoice": invoice["InvoiceNumber"],
            },
        ),
    )
    assert invoice_row(scm_env, invoice["InvoiceNumber"])["IsSettled"] == YES
    assert scm_env.onhand("P0001")["OnHandQuantity"] == 28
