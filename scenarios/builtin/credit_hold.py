"""Credit management across the two apps: holds and credit limits are kept on the customer in either app and
enforced by SCM's order processes."""

from __future__ import annotations

from scenarios import scenario
from scenarios.builtin._helpers import (
    ON_HOLD,
    Customer,
    customer_rows,
    new_customer,
    new_order,
    order_status,
    scm_order_action,
)
from scenarios.context import ScenarioContext

HOLD_COLUMNS = (
    ["msdyn_onholdstatus", "creditlimit", "msdyn_creditlimitismandatory"],
    ["OnHoldStatus", "CreditLimit", "CreditLimitIsMandatory"],
)


def _hold_agrees(ctx: ScenarioContext, customer: Customer, expected: str) -> None:
    """Both sides have the customer on hold ``expected`` (an SCM OnHoldStatus name)."""
    sales_row, scm_row = customer_rows(ctx, customer, *HOLD_COLUMNS)
    # A customer made in Sales without a hold status gets SCM's default (No); the bridge's own write is not
    # echoed back, so Sales keeps the empty value until someone sets one.
    sales_value = sales_row["msdyn_onholdstatus"]
    sales_agrees = sales_value == ON_HOLD[expected] or (sales_value is None and expected == "No")
    ctx.check(
        scm_row["OnHoldStatus"] == expected and sales_agrees,
        f"the customer is on hold '{expected}' on both sides (SCM {scm_row['OnHoldStatus']}, Sales "
        f"{sales_row['msdyn_onholdstatus']})",
        sales=sales_row,
        scm=scm_row,
    )


@scenario(
    "customer-on-hold-blocks-confirmation",
    "A customer on hold, or over a mandatory credit limit, cannot have orders confirmed or invoiced in SCM",
)
def customer_on_hold(ctx: ScenarioContext) -> None:
    """Holds set in SCM or Sales reach the other side and block confirmation (hold All) or invoicing (hold
    Invoice) in SCM until released; a mandatory credit limit set in Sales blocks confirming an order above it
    until SCM raises the limit. Refused processes leave both sides where they were."""
    with ctx.step("A customer and an order made in Sales appear in SCM"):
        customer = new_customer(ctx, "CRM-H")
        order = new_order(ctx, customer, [("D0001", 2)])
        _hold_agrees(ctx, customer, "No")

    with ctx.step("SCM puts the customer on hold (All); Sales shows the hold"):
        ctx.scm.update("CustomersV3", customer.scm_key, {"OnHoldStatus": "All"})
        _hold_agrees(ctx, customer, "All")
        ctx.note("Hold", "SCM", "customer", customer.number, "On hold: All")

    with ctx.step("Confirming the order is refused in SCM; the order stays Active on both sides"):
        ctx.expect_error(lambda: scm_order_action(ctx, order, "Confirm"), status=400, contains="on hold")
        order_status(ctx, order, "Active")

    with ctx.step("Sales releases the hold; SCM confirms the order; Sales shows Confirmed"):
        ctx.sales.update("accounts", customer.account_id, {"msdyn_onholdstatus": ON_HOLD["No"]})
        _hold_agrees(ctx, customer, "No")
        scm_order_action(ctx, order, "Confirm")
        order_status(ctx, order, "Confirmed")
        ctx.note("Release", "Sales", "account", customer.number, "On hold: No")

    with ctx.step("On invoice hold set in Sales, SCM delivers but refuses the invoice; both sides show Delivered"):
        ctx.sales.update("accounts", customer.account_id, {"msdyn_onholdstatus": ON_HOLD["Invoice"]})
        _hold_agrees(ctx, customer, "Invoice")
        scm_order_action(ctx, order, "PostPackingSlip")
        order_status(ctx, order, "Delivered")
        ctx.expect_error(lambda: scm_order_action(ctx, order, "PostInvoice"), status=400, contains="on hold")
        order_status(ctx, order, "Delivered")

    with ctx.step("Releasing the invoice hold in SCM lets the invoice through; Sales shows Invoiced"):
        ctx.scm.update("CustomersV3", customer.scm_key, {"OnHoldStatus": "No"})
        _hold_agrees(ctx, customer, "No")
        invoice = scm_order_action(ctx, order, "PostInvoice") or {}
        ctx.check(bool(invoice.get("InvoiceNumber")), "PostInvoice returned the invoice", scm=invoice)
        order_status(ctx, order, "Invoiced")
        ctx.note(
            "Invoice", "SCM", "sales invoice", invoice["InvoiceNumber"], "Posted", invoice.get("TotalInvoiceAmount")
        )

    with ctx.step("A mandatory credit limit of 500 set in Sales reaches SCM"):
        limited = new_customer(ctx, "CRM-L", creditlimit=500, msdyn_creditlimitismandatory=True)
        sales_row, scm_row = customer_rows(ctx, limited, *HOLD_COLUMNS)
        ctx.check(
            float(scm_row["CreditLimit"]) == 500 and scm_row["CreditLimitIsMandatory"] == "Yes",
            "SCM has the mandatory limit",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.note("Credit limit", "Sales", "account", limited.number, "mandatory", 500)

    with ctx.step("An order above the limit cannot be confirmed; it stays Active on both sides"):
        big = new_order(ctx, limited, [("D0004", 1)])
        ctx.expect_error(lambda: scm_order_action(ctx, big, "Confirm"), status=400, contains="credit limit")
        order_status(ctx, big, "Active")

    with ctx.step("SCM raises the credit limit; Sales shows it; now the order is confirmed on both sides"):
        ctx.scm.update("CustomersV3", limited.scm_key, {"CreditLimit": 100000})
        sales_row, scm_row = customer_rows(ctx, limited, *HOLD_COLUMNS)
        ctx.check(
            float(sales_row["creditlimit"]) == 100000 and sales_row["msdyn_creditlimitismandatory"] is True,
            "Sales has the new limit, still mandatory",
            sales=sales_row,
            scm=scm_row,
        )
        scm_order_action(ctx, big, "Confirm")
        order_status(ctx, big, "Confirmed")
        ctx.note("Raise limit", "SCM", "customer", limited.number, "mandatory", 100000)
