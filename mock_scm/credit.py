"""Customer holds and credit limits: the checks that refuse confirming, delivering or invoicing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mock_scm.errors import process_error
from mock_scm.lookups import customer
from mock_scm.schema import CustVendorBlocked
from mock_scm.status import DOC, HOLD, S
from mock_scm.values import YES, ZERO, dec, fmt_amount
from sandbox.odata.store import Row, Store


def hold_of(store: Store, company: str, account: str) -> int:
    """The customer's OnHoldStatus (No for an unknown customer)."""
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
    """What of an order's total is not invoiced yet."""
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
