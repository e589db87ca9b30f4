"""Orders made in Sales and fulfilled (or not) in SCM: cancellation, partial delivery and partial invoicing.

SCM owns the processing status; Sales follows it (``msdyn_processingstatus`` and the order state of the
sales-status map) and receives the invoices SCM posts.
"""

from __future__ import annotations

from functools import partial

from scenarios import scenario
from scenarios.builtin._helpers import (
    invoice_synced,
    new_customer,
    new_order,
    on_hand,
    order_lines_agree,
    order_status,
    order_totals_agree,
    q,
    scm_order_action,
)
from scenarios.context import ScenarioContext


@scenario("order-cancellation", "SCM cancels an order made in Sales: both sides show it Canceled, and it stays so")
def order_cancellation(ctx: ScenarioContext) -> None:
    """Cancel a confirmed order in SCM; Sales shows it Canceled; a cancelled order cannot be processed further;
    a delivered order cannot be cancelled."""
    with ctx.step("A customer and a two-line order made in Sales appear in SCM"):
        customer = new_customer(ctx, "CRM-X")
        order = new_order(ctx, customer, [("D0003", 2), ("L0001", 1)])
        order_status(ctx, order, "Active")
        ctx.note("Order", "Sales", "sales order", order.number, "Active")

    with ctx.step("SCM confirms the order and reserves stock; Sales shows Confirmed"):
        scm_order_action(ctx, order, "Confirm")
        order_status(ctx, order, "Confirmed")
        order_totals_agree(ctx, order)
        reserved = ctx.scm.query(
            "SalesOrderLines",
            cross_company=True,
            select=["ReservedSalesQuantity"],
            filter=f"dataAreaId eq {q(order.company)} and SalesOrderNumber eq {q(order.number)}",
        )
        ctx.check(
            sum(float(r["ReservedSalesQuantity"]) for r in reserved) == 3, "all 3 units are reserved", scm=reserved
        )

    with ctx.step("SCM cancels the order; Sales shows it Canceled with canceled lines"):
        scm_order_action(ctx, order, "Cancel")
        sales_row, scm_row = order_status(ctx, order, "Canceled")
        lines = order_lines_agree(ctx, order, expected=2, status={1: "Canceled", 2: "Canceled"})
        ctx.check(
            all(float(line.get("DeliveredSalesQuantity") or 0) == 0 for line in lines),
            "nothing was delivered",
            scm=lines,
        )
        reserved = ctx.scm.query(
            "SalesOrderLines",
            cross_company=True,
            select=["ReservedSalesQuantity"],
            filter=f"dataAreaId eq {q(order.company)} and SalesOrderNumber eq {q(order.number)}",
        )
        ctx.check(
            all(float(r["ReservedSalesQuantity"]) == 0 for r in reserved), "the reservations are released", scm=reserved
        )
        ctx.note("Cancel", "SCM", "sales order", order.number, scm_row["SalesOrderProcessingStatus"])
        ctx.note("Cancel", "Sales", "sales order", order.number, f"state {sales_row['statecode']}")

    with ctx.step("A cancelled order cannot be confirmed, picked or invoiced; both sides keep it Canceled"):
        for action in ("Confirm", "PostPickingList", "PostInvoice"):
            ctx.expect_error(partial(scm_order_action, ctx, order, action), status=400, contains="Canceled")
        ctx.expect_error(lambda: scm_order_action(ctx, order, "Cancel"), status=400, contains="cannot be cancelled")
        order_status(ctx, order, "Canceled")

    with ctx.step("A delivered order cannot be cancelled; both sides keep it Delivered"):
        delivered = new_order(ctx, customer, [("D0003", 1)])
        scm_order_action(ctx, delivered, "Confirm")
        scm_order_action(ctx, delivered, "PostPackingSlip")
        order_status(ctx, delivered, "Delivered")
        ctx.expect_error(lambda: scm_order_action(ctx, delivered, "Cancel"), status=400, contains="cannot be cancelled")
        order_status(ctx, delivered, "Delivered")
        order_lines_agree(ctx, delivered, expected=1, status={1: "Delivered"})
        ctx.note("Deliver", "SCM", "sales order", delivered.number, "Delivered (not cancellable)")


@scenario(
    "partial-delivery-and-invoicing",
    "SCM delivers and invoices an order in parts; Sales follows every step and gets each invoice",
)
def partial_delivery_and_invoicing(ctx: ScenarioContext) -> None:
    """Deliver part of a line, invoice it, deliver the rest, invoice the rest: the processing status, the
    line statuses, on-hand and the invoices agree on both sides at each step, and the invoices add up."""
    with ctx.step("A customer and an order for 5 x D0003 and 3 x L0001 made in Sales appear in SCM"):
        customer = new_customer(ctx, "CRM-D")
        order = new_order(ctx, customer, [("D0003", 5), ("L0001", 3)])
        before = {"D0003": on_hand(ctx, "D0003"), "L0001": on_hand(ctx, "L0001")}

    with ctx.step("SCM confirms the order; Sales shows Confirmed and SCM's order total"):
        scm_order_action(ctx, order, "Confirm")
        order_status(ctx, order, "Confirmed")
        order_totals_agree(ctx, order)

    with ctx.step("SCM delivers 2 of the 5 D0003; Sales shows Partially delivered and the order stays Active"):
        scm_order_action(ctx, order, "PostPackingSlip", {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 2}]})
        sales_row, _ = order_status(ctx, order, "PartiallyDelivered")
        ctx.check(sales_row["statecode"] == 0, "a partially delivered order is Active in Sales", sales=sales_row)
        lines = order_lines_agree(ctx, order, expected=2, status={1: "Backorder", 2: "Backorder"})
        delivered = {int(line["LineCreationSequenceNumber"]): float(line["DeliveredSalesQuantity"]) for line in lines}
        ctx.check(delivered == {1: 2.0, 2: 0.0}, f"delivered quantities per line {delivered}", scm=lines)
        ctx.check(on_hand(ctx, "D0003") == before["D0003"] - 2, "on-hand of D0003 drops by 2")
        order_totals_agree(ctx, order)
        ctx.note("Deliver 2 of 5", "SCM", "packing slip", order.number, "PartiallyDelivered")

    invoices: list[str] = []
    with ctx.step("SCM invoices what was delivered; the one-line invoice reaches Sales; Partially invoiced"):
        invoice = scm_order_action(ctx, order, "PostInvoice") or {}
        ctx.check(bool(invoice.get("InvoiceNumber")), "PostInvoice returned the invoice", scm=invoice)
        invoices.append(invoice["InvoiceNumber"])
        sales_invoice, scm_invoice = invoice_synced(ctx, invoice["InvoiceNumber"], lines=1)
        ctx.check(
            sales_invoice.get("_salesorderid_value") == order.order_id,
            "the Sales invoice points at the order",
            sales=sales_invoice,
            scm=scm_invoice,
        )
        sales_lines = ctx.sales.query(
            "invoicedetails", select=["quantity"], filter=f"_invoiceid_value eq {sales_invoice['invoiceid']}"
        )
        ctx.check(float(sales_lines[0]["quantity"]) == 2, "the invoice line is for the 2 delivered", sales=sales_lines)
        order_status(ctx, order, "PartiallyInvoiced")
        ctx.note(
            "Invoice 2", "SCM", "sales invoice", invoice["InvoiceNumber"], "Posted", scm_invoice["TotalInvoiceAmount"]
        )
        ctx.note(
            "Invoice 2", "Sales", "invoice", invoice["InvoiceNumber"], "Billed", sales_invoice["msdyn_totalamount"]
        )

    with ctx.step("Invoicing again with nothing new delivered is refused; both sides are unchanged"):
        ctx.expect_error(lambda: scm_order_action(ctx, order, "PostInvoice"), status=400, contains="packing slip")
        order_status(ctx, order, "PartiallyInvoiced")
        count = len(
            ctx.sales.query("invoices", select=["invoiceid"], filter=f"_salesorderid_value eq {order.order_id}")
        )
        ctx.check(count == 1, f"Sales still has one invoice for the order ({count})")

    with ctx.step("SCM delivers the rest; every line is Delivered on both sides"):
        scm_order_action(ctx, order, "PostPackingSlip")
        order_lines_agree(ctx, order, expected=2, status={1: "Delivered", 2: "Delivered"})
        order_status(ctx, order, "PartiallyInvoiced")
        ctx.check(
            on_hand(ctx, "D0003") == before["D0003"] - 5 and on_hand(ctx, "L0001") == before["L0001"] - 3,
            "on-hand dropped by everything ordered",
        )

    with ctx.step("SCM invoices the rest; Sales gets the second invoice and shows the order Invoiced"):
        invoice = scm_order_action(ctx, order, "PostInvoice") or {}
        invoices.append(invoice["InvoiceNumber"])
        invoice_synced(ctx, invoice["InvoiceNumber"], lines=2)
        sales_row, scm_row = order_status(ctx, order, "Invoiced")
        order_lines_agree(ctx, order, expected=2, status={1: "Invoiced", 2: "Invoiced"})
        ctx.note(
            "Invoice rest",
            "SCM",
            "sales invoice",
            invoice["InvoiceNumber"],
            "Posted",
            invoice.get("TotalInvoiceAmount"),
        )

    with ctx.step("The two invoices add up to the order total on both sides"):
        scm_invoices = ctx.scm.query(
            "SalesInvoiceHeadersV2",
            cross_company=True,
            select=["InvoiceNumber", "TotalInvoiceAmount"],
            filter=f"dataAreaId eq {q(order.company)} and SalesOrderNumber eq {q(order.number)}",
        )
        sales_invoices = ctx.sales.query(
            "invoices",
            select=["msdyn_invoicenumber", "msdyn_totalamount"],
            filter=f"_salesorderid_value eq {order.order_id}",
        )
        ctx.check(
            sorted(i["InvoiceNumber"] for i in scm_invoices)
            == sorted(invoices)
            == sorted(i["msdyn_invoicenumber"] for i in sales_invoices),
            f"both sides have the invoices {invoices}",
            sales=sales_invoices,
            scm=scm_invoices,
        )
        _, scm_row = order_totals_agree(ctx, order)
        scm_total = sum(float(i["TotalInvoiceAmount"]) for i in scm_invoices)
        sales_total = sum(float(i["msdyn_totalamount"]) for i in sales_invoices)
        ctx.check(
            abs(scm_total - float(scm_row["OrderTotalAmount"])) < 0.01 and abs(sales_total - scm_total) < 0.01,
            f"invoiced {scm_total} in SCM, {sales_total} in Sales, order total {scm_row['OrderTotalAmount']}",
            sales=sales_invoices,
            scm=scm_invoices,
        )
        ctx.note("Total", "SCM", "sales order", order.number, "Invoiced", scm_total)
