"""Live sync is "both or neither": when the other side cannot take a write, the write fails where it was made."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sandbox.clients import ServiceError
from sandbox.wellknown import DEFAULT_COMPANY
from scenarios import scenario
from scenarios.builtin._helpers import (
    customer_columns,
    customer_rows,
    map_status,
    new_customer,
    new_order,
    order_rows,
    order_status,
    price_list_id,
    q,
    sales_product,
    scm_order_action,
    unique_number,
)
from scenarios.context import ScenarioContext


@contextlib.contextmanager
def failing(ctx: ScenarioContext, side: str, status: int = 503) -> Iterator[dict[str, Any]]:
    """The next write the bridge sends to ``side`` fails with ``status`` (the rule is removed afterwards
    even when the write never got that far, so later steps are not hit by it)."""
    rule = ctx.control[side].fail_bridge_writes(status, times=1)
    try:
        yield rule
    finally:
        with contextlib.suppress(ServiceError):
            ctx.control[side].remove_fault(rule["id"])


def _fired(ctx: ScenarioContext, side: str, rule: dict[str, Any]) -> bool:
    try:
        return int(ctx.control[side].fault(rule["id"]).get("fired") or 0) > 0
    except ServiceError:
        return True  # a rule whose `times` ran out is gone


@scenario(
    "failing-side-rolls-back",
    "When one side fails, a write made on the other fails too and leaves nothing behind on either side",
)
def failing_side_rolls_back(ctx: ScenarioContext) -> None:
    """Faults injected into SCM refuse creates, updates and a multi-row order saved in Sales; faults injected into
    Sales refuse a customer created in SCM and an order confirmation. Every refused write leaves both sides as
    they were, the user sees the other side's error, the bridge counts the failure, and saving again works."""
    number = unique_number(ctx, "CRM-F")
    columns = customer_columns(ctx, DEFAULT_COMPANY)

    with ctx.step("An account saved in Sales while SCM fails is refused; neither side has it"):
        failed_before = map_status(ctx, "customers-accounts")["failed"]
        with failing(ctx, "scm") as rule:
            error = ctx.expect_error(
                lambda: ctx.sales.create("accounts", {"name": "Rolled Back Ltd", "accountnumber": number, **columns}),
                status=503,
                contains="Supply Chain Management",
            )
            ctx.check(_fired(ctx, "scm", rule), "the fault hit the bridge's write to SCM")
        ctx.check(
            ctx.sales_row("accounts", f"accountnumber eq {q(number)}") is None,
            "Sales rolled the account back",
            sales=error.body,
        )
        ctx.check(ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(number)}") is None, "SCM has no such customer")
        status = map_status(ctx, "customers-accounts")
        ctx.check(
            status["failed"] > failed_before and "fault" in (status.get("last_error") or "").lower(),
            "the bridge counts the failure of the customers map",
            scm=status,
        )
        ctx.note("Refused", "Sales", "account", number, f"{error.status}")

    with ctx.step("Saving it again once SCM is back creates it on both sides"):
        customer = new_customer(ctx, "CRM-F", number=number)
        ctx.note("Saved", "Sales", "account", number, "Customer")

    with ctx.step("A rename in Sales while SCM fails is refused; both sides keep the old name"):
        with failing(ctx, "scm"):
            ctx.expect_error(
                lambda: ctx.sales.update("accounts", customer.account_id, {"name": "Renamed Ltd"}), status=503
            )
        sales_row, scm_row = customer_rows(ctx, customer, ["name"], ["OrganizationName"])
        ctx.check(
            sales_row["name"] == customer.name == scm_row["OrganizationName"],
            "both sides still have the old name",
            sales=sales_row,
            scm=scm_row,
        )

    with ctx.step("An order with two lines saved in Sales while SCM fails leaves no header and no line anywhere"):
        product = sales_product(ctx, "D0003")
        line = {
            "productid@odata.bind": f"/products({product['productid']})",
            "uomid@odata.bind": f"/uoms({product['_defaultuomid_value']})",
            "quantity": 1,
        }
        with failing(ctx, "scm"):
            ctx.expect_error(
                lambda: ctx.sales.create(
                    "salesorders",
                    {
                        "name": "Never saved",
                        "customerid_account@odata.bind": f"/accounts({customer.account_id})",
                        "pricelevelid@odata.bind": f"/pricelevels({price_list_id(ctx)})",
                        "order_details": [line, {**line, "quantity": 2}],
                    },
                ),
                status=503,
            )
        sales_orders = ctx.sales.query(
            "salesorders", select=["salesorderid"], filter=f"_customerid_value eq {customer.account_id}"
        )
        scm_orders = ctx.scm.query(
            "SalesOrderHeadersV2",
            cross_company=True,
            select=["SalesOrderNumber"],
            filter=f"OrderingCustomerAccountNumber eq {q(number)}",
        )
        sales_lines = ctx.sales.query(
            "salesorderdetails", select=["salesorderdetailid"], filter="_salesorderid_value eq null"
        )
        ctx.check(
            not sales_orders and not scm_orders and not sales_lines,
            "no order and no orphan line on either side",
            sales=sales_orders,
            scm=scm_orders,
        )

    with ctx.step("A customer created in SCM while Sales fails is refused; neither side has it"):
        scm_number = unique_number(ctx, "FO-F")
        body = {
            "dataAreaId": DEFAULT_COMPANY,
            "CustomerAccount": scm_number,
            "OrganizationName": "Rolled Back GmbH",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        }
        with failing(ctx, "sales"):
            ctx.expect_error(lambda: ctx.scm.create("CustomersV3", body), status=503, contains="Dynamics 365 Sales")
        ctx.check(ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(scm_number)}") is None, "SCM rolled it back")
        ctx.check(ctx.sales_row("accounts", f"accountnumber eq {q(scm_number)}") is None, "Sales has no such account")

    with ctx.step("Created again in SCM once Sales is back, it is on both sides"):
        ctx.scm.create("CustomersV3", body)
        ctx.synced(
            sales=("accounts", f"accountnumber eq {q(scm_number)}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(scm_number)}"),
            fields={"CustomerAccount": "accountnumber", "OrganizationName": "name"},
        )

    with ctx.step("SCM confirming an order while Sales fails is refused; the order stays Active on both sides"):
        order = new_order(ctx, customer, [("D0003", 1)])
        with failing(ctx, "sales"):
            ctx.expect_error(lambda: scm_order_action(ctx, order, "Confirm"), status=503)
        _, scm_row = order_rows(ctx, order)
        ctx.check(scm_row["DocumentStatus"] == "None", "SCM did not keep the confirmation", scm=scm_row)
        order_status(ctx, order, "Active")

    with ctx.step("Confirmed again once Sales is back, both sides show Confirmed"):
        scm_order_action(ctx, order, "Confirm")
        order_status(ctx, order, "Confirmed")
        ctx.note("Confirm", "SCM", "sales order", order.number, "Confirmed")
