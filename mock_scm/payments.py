"""Customer payment journals: posting a journal settles the customer's open invoices."""

from __future__ import annotations

from mock_scm import numbering
from mock_scm.credit import hold_of
from mock_scm.errors import process_error
from mock_scm.lookups import customer, journal_lines, reread
from mock_scm.settings import ScmSettings
from mock_scm.status import HOLD
from mock_scm.values import NO, YES, dec, fmt_qty
from sandbox.odata.store import Row, Store


def _open_invoices(store: Store, company: str, account: str, currency: str) -> list[Row]:
    invoices = store.find(
        "SalesInvoiceHeaderV2",
        {"dataAreaId": company, "InvoiceCustomerAccountNumber": account, "IsSettled": NO},
        order_by=["InvoiceDate", "InvoiceNumber"],
    )
    return [inv for inv in invoices if inv["CurrencyCode"] == currency and dec(inv["InvoiceOpenAmount"]) > 0]


def post_payment_journal(store: Store, settings: ScmSettings, header: Row, identity: str) -> Row:
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
    posting_date = settings.today()
    for line in lines:
        account = line["AccountDisplayValue"]
        left = dec(line["CreditAmount"])
        settled: list[str] = []
        if line["MarkedInvoice"]:
            # checked above: the marked invoice exists
            targets = [
                store.require("SalesInvoiceHeaderV2", {"dataAreaId": company, "InvoiceNumber": line["MarkedInvoice"]})
            ]
        else:
            targets = _open_invoices(store, company, account, line["CurrencyCode"])
        for invoice in targets:
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
