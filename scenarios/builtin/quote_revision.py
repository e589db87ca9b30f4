"""A quote revised in Sales (dual-write quote lifecycle, "Add efficiency in quote-to-cash"): the original is
closed as Revised on both sides, the revision is a new quote on both sides, and only the revision goes on."""

from __future__ import annotations

from typing import Any

from scenarios import scenario
from scenarios.builtin._helpers import QUOTATION_STATUS, Customer, new_customer, price_list_id, q, sales_product
from scenarios.context import Mismatch, ScenarioContext

QUOTE_COLUMNS = [
    "msdyn_quotenumber",
    "quotenumber",
    "revisionnumber",
    "statecode",
    "statuscode",
    "msdyn_salesquotationstatus",
    "totalamount",
]


def _line(ctx: ScenarioContext, item: str, quantity: float) -> dict[str, Any]:
    product = sales_product(ctx, item)
    return {
        "productid@odata.bind": f"/products({product['productid']})",
        "uomid@odata.bind": f"/uoms({product['_defaultuomid_value']})",
        "quantity": quantity,
    }


def _new_quote(ctx: ScenarioContext, customer: Customer, lines: list[tuple[str, float]]) -> dict[str, Any]:
    quote_id = ctx.sales.create(
        "quotes",
        {
            "name": f"Speakers for {customer.name}",
            "customerid_account@odata.bind": f"/accounts({customer.account_id})",
            "pricelevelid@odata.bind": f"/pricelevels({price_list_id(ctx)})",
            "quote_details": [_line(ctx, item, quantity) for item, quantity in lines],
        },
    )
    return ctx.sales.retrieve("quotes", quote_id, select=QUOTE_COLUMNS)


def quotation_status(ctx: ScenarioContext, quote_id: str, expected: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until SCM has the quotation of ``quote_id`` in status ``expected`` and Sales does not say otherwise
    (a status SCM took from a Sales change is not echoed back, so Sales may leave it empty)."""
    last: dict[str, Any] = {}

    def probe() -> tuple[dict[str, Any], dict[str, Any]] | None:
        sales_row = ctx.sales.retrieve("quotes", quote_id, select=QUOTE_COLUMNS)
        scm_row = ctx.scm_row(
            "SalesQuotationHeadersV2",
            f"SalesQuotationNumber eq {q(sales_row['msdyn_quotenumber'])}",
            select=[
                "SalesQuotationNumber",
                "SalesQuotationStatus",
                "dataAreaId",
                "QuotationTotalAmount",
                "GeneratedSalesOrderNumber",
            ],
        )
        last.update(sales=sales_row, scm=scm_row)
        if scm_row is None or scm_row["SalesQuotationStatus"] != expected:
            return None
        if sales_row.get("msdyn_salesquotationstatus") not in (None, QUOTATION_STATUS[expected]):
            return None
        return sales_row, scm_row

    try:
        return ctx.wait_for(probe, f"the quotation to be {expected} in SCM")
    except Mismatch:
        scm_row = last.get("scm") or {}
        raise Mismatch(
            f"expected the quotation {expected} in SCM; SCM has "
            f"{scm_row.get('SalesQuotationStatus', 'no quotation')}, Sales has "
            f"{(last.get('sales') or {}).get('msdyn_salesquotationstatus')}",
            sales=last.get("sales"),
            scm=last.get("scm"),
        ) from None


def quote_lines_agree(ctx: ScenarioContext, quote_id: str, number: str, expected: dict[int, float]) -> None:
    """Both sides have exactly the lines ``expected`` (sequence number -> quantity)."""
    last: dict[str, Any] = {}

    def probe() -> bool:
        sales_lines = ctx.sales.query(
            "quotedetails", select=["sequencenumber", "quantity"], filter=f"_quoteid_value eq {quote_id}"
        )
        scm_lines = ctx.scm.query(
            "SalesQuotationLines",
            cross_company=True,
            select=["LineCreationSequenceNumber", "RequestedSalesQuantity"],
            filter=f"SalesQuotationNumber eq {q(number)}",
        )
        last.update(sales=sales_lines, scm=scm_lines)
        on_sales = {int(line["sequencenumber"]): float(line["quantity"]) for line in sales_lines}
        on_scm = {int(line["LineCreationSequenceNumber"]): float(line["RequestedSalesQuantity"]) for line in scm_lines}
        return on_sales == on_scm == expected

    try:
        ctx.wait_for(probe, f"the lines of quote {number} to agree")
    except Mismatch:
        raise Mismatch(
            f"quote {number}: expected lines {expected}", sales=last.get("sales"), scm=last.get("scm")
        ) from None


@scenario(
    "quote-revision",
    "A quote revised in Sales: the original is Revised on both sides, the revision goes on to an order",
)
def quote_revision(ctx: ScenarioContext) -> None:
    """Draft a quote in Sales and edit its lines (SCM follows); activate it (SCM Sent); revise it: the original
    is Closed/Revised in Sales and Revised in SCM, the revision is a new Draft quote Created in SCM with the
    same lines; edits to the revision leave the original alone; the revision is activated and turned into an
    order, which SCM links to the revision's quotation (Confirmed)."""
    with ctx.step("A quote with two lines made in Sales appears in SCM as Created"):
        customer = new_customer(ctx, "CRM-V")
        quote = _new_quote(ctx, customer, [("D0003", 2), ("D0001", 1)])
        original, number = quote["quoteid"], quote["msdyn_quotenumber"]
        ctx.check(bool(number), "Sales numbered the quote for dual-write (msdyn_quotenumber)", sales=quote)
        _, scm_row = quotation_status(ctx, original, "Created")
        ctx.check(scm_row["dataAreaId"] == customer.company, "the quotation is in the customer's company", scm=scm_row)
        quote_lines_agree(ctx, original, number, {1: 2, 2: 1})
        ctx.note("Quote", "Sales", "quote", quote["quotenumber"], "Draft", quote["totalamount"])
        ctx.note("Quote", "SCM", "sales quotation", number, "Created", scm_row["QuotationTotalAmount"])

    with ctx.step("Editing the draft in Sales (a quantity, a new line) updates the SCM quotation"):
        first = ctx.sales.query(
            "quotedetails", select=["quotedetailid"], filter=f"_quoteid_value eq {original} and sequencenumber eq 1"
        )[0]
        ctx.sales.update("quotedetails", first["quotedetailid"], {"quantity": 5})
        ctx.sales.create("quotedetails", {**_line(ctx, "L0001", 4), "quoteid@odata.bind": f"/quotes({original})"})
        quote_lines_agree(ctx, original, number, {1: 5, 2: 1, 3: 4})

    with ctx.step("Activating the quote in Sales sends the quotation in SCM"):
        ctx.sales.update("quotes", original, {"statecode": 1, "statuscode": 2})
        quotation_status(ctx, original, "Sent")
        ctx.note("Activate", "SCM", "sales quotation", number, "Sent")

    with ctx.step("Revising it closes the original as Revised on both sides"):
        revision = ctx.sales.action("ReviseQuote", {"QuoteId": original, "ColumnSet": {"AllColumns": True}}) or {}
        ctx.check(bool(revision.get("quoteid")), "ReviseQuote returned the revision", sales=revision)
        sales_row, _ = quotation_status(ctx, original, "Revised")
        ctx.check(
            (sales_row["statecode"], sales_row["statuscode"]) == (3, 7),
            "the original is Closed / Revised",
            sales=sales_row,
        )
        ctx.note("Revise", "Sales", "quote", sales_row["quotenumber"], "Closed (Revised)")
        ctx.note("Revise", "SCM", "sales quotation", number, "Revised")

    with ctx.step("The revision is a new Draft quote with the same lines, Created in SCM"):
        revised_id = revision["quoteid"]
        revised = ctx.sales.retrieve("quotes", revised_id, select=QUOTE_COLUMNS)
        ctx.check(
            revised["statecode"] == 0
            and revised["revisionnumber"] == quote["revisionnumber"] + 1
            and revised["quotenumber"] == quote["quotenumber"],
            "a Draft with the next revision number of the same quote",
            sales=revised,
        )
        revised_number = revised["msdyn_quotenumber"]
        ctx.check(
            bool(revised_number) and revised_number != number,
            "the revision has its own quotation number",
            sales=revised,
        )
        quotation_status(ctx, revised_id, "Created")
        quote_lines_agree(ctx, revised_id, revised_number, {1: 5, 2: 1, 3: 4})
        ctx.note("Revision", "Sales", "quote", f"{revised['quotenumber']} rev {revised['revisionnumber']}", "Draft")
        ctx.note("Revision", "SCM", "sales quotation", revised_number, "Created")

    with ctx.step("Changing the revision's lines changes only the revision in SCM"):
        second = ctx.sales.query(
            "quotedetails", select=["quotedetailid"], filter=f"_quoteid_value eq {revised_id} and sequencenumber eq 2"
        )[0]
        ctx.sales.update("quotedetails", second["quotedetailid"], {"quantity": 3})
        quote_lines_agree(ctx, revised_id, revised_number, {1: 5, 2: 3, 3: 4})
        quote_lines_agree(ctx, original, number, {1: 5, 2: 1, 3: 4})
        quotation_status(ctx, original, "Revised")

    with ctx.step("The revision is activated and ordered: SCM has the order, linked to the revision, Confirmed"):
        ctx.sales.update("quotes", revised_id, {"statecode": 1, "statuscode": 2})
        quotation_status(ctx, revised_id, "Sent")
        order = (
            ctx.sales.action("ConvertQuoteToSalesOrder", {"QuoteId": revised_id, "ColumnSet": {"AllColumns": True}})
            or {}
        )
        ctx.check(bool(order.get("salesorderid")), "ConvertQuoteToSalesOrder returned the order", sales=order)
        order_number = ctx.sales.retrieve("salesorders", order["salesorderid"], select=["msdyn_salesordernumber"])[
            "msdyn_salesordernumber"
        ]
        sales_order, scm_order = ctx.synced(
            sales=("salesorders", f"salesorderid eq {order['salesorderid']}"),
            scm=("SalesOrderHeadersV2", f"SalesOrderNumber eq {q(order_number)}"),
            fields={"SalesOrderNumber": "msdyn_salesordernumber", "QuotationNumber": "msdyn_quotationnumber"},
        )
        ctx.check(
            scm_order["QuotationNumber"] == revised_number,
            "the SCM order refers to the revision",
            sales=sales_order,
            scm=scm_order,
        )
        lines = ctx.scm.query(
            "SalesOrderLines",
            cross_company=True,
            select=["OrderedSalesQuantity"],
            filter=f"SalesOrderNumber eq {q(order_number)}",
        )
        ctx.check(
            sorted(float(line["OrderedSalesQuantity"]) for line in lines) == [3, 4, 5],
            "the order has the revision's lines",
            scm=lines,
        )
        won, _ = quotation_status(ctx, revised_id, "Confirmed")
        ctx.check(won["statecode"] == 2, "the revision is Won in Sales", sales=won)
        quotation_status(ctx, original, "Revised")
        ctx.note("Order", "Sales", "sales order", order_number, "Active")
        ctx.note("Order", "SCM", "sales quotation", revised_number, "Confirmed")
