"""The flagship: a lead in Sales becomes cash in SCM, every step checked on both sides."""

from __future__ import annotations

from typing import Any

from sandbox.wellknown import DEFAULT_COMPANY as COMPANY
from scenarios import scenario
from scenarios.builtin._helpers import NS_SCM, company_id, q, unique_number
from scenarios.context import ScenarioContext


def sales_ref(ctx: ScenarioContext, entity_set: str, filter: str) -> str:
    """An ``@odata.bind`` reference (``/entity_set(guid)``) to the one Sales row matching ``filter``."""
    row = ctx.found(ctx.sales_row(entity_set, filter), f"no {entity_set} matching {filter}")
    key = next(k for k in row if k.endswith("id") and not k.startswith("_") and isinstance(row[k], str))
    return f"/{entity_set}({row[key]})"


def scm_order_action(ctx: ScenarioContext, number: str, action: str, body: dict | None = None) -> dict | None:
    return ctx.scm.action("SalesOrderHeadersV2", {"dataAreaId": COMPANY, "SalesOrderNumber": number}, action, body)


@scenario("lead-to-cash", "A lead in Sales becomes a paid invoice in SCM, synced both ways at every step")
def run(ctx: ScenarioContext) -> None:
    """Lead, qualification, prospect, customer, quote, order, confirmation, delivery, invoice, payment."""
    company = company_id(ctx)
    account_number = unique_number(ctx, "CRM-C")
    state: dict[str, Any] = {}

    with ctx.step("Create a lead in Sales"):
        company_name = ctx.fake.company()
        lead_id = ctx.sales.create(
            "leads",
            {
                "subject": f"Speakers for {company_name}",
                "firstname": ctx.fake.first_name(),
                "lastname": ctx.fake.last_name(),
                "companyname": company_name,
                "emailaddress1": ctx.fake.company_email(),
            },
        )
        lead = ctx.sales.retrieve("leads", lead_id, select=["fullname", "statecode", "subject"])
        ctx.note("Create a lead", "Sales", "lead", lead["fullname"], "Open")

    with ctx.step("Qualify the lead into account, contact and opportunity"):
        created = ctx.sales.action(
            "QualifyLead",
            {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3},
            entity_set="leads",
            key=lead_id,
        )
        kinds = {item["@odata.type"].rsplit(".", 1)[-1]: item for item in (created or {}).get("value", [])}
        ctx.check(set(kinds) >= {"account", "contact", "opportunity"}, f"QualifyLead created {sorted(kinds)}")
        state["account"] = kinds["account"]["accountid"]
        state["opportunity"] = kinds["opportunity"]["opportunityid"]
        lead = ctx.sales.retrieve("leads", lead_id, select=["statecode", "statuscode"])
        ctx.check(lead["statecode"] == 1, "the lead is qualified", sales=lead)
        ctx.note("Qualify the lead", "Sales", "account", company_name, "Prospect")
        ctx.note("Qualify the lead", "Sales", "opportunity", state["opportunity"][:8], "Open")

    with ctx.step("The new account is a prospect and stays in Sales"):
        ctx.sales.update(
            "accounts",
            state["account"],
            {
                "customertypecode": 8,
                "accountnumber": account_number,
                "msdyn_company@odata.bind": f"/cdm_companies({company})",
            },
        )
        ctx.check(
            ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(account_number)}") is None,
            "a prospect must not reach SCM",
        )

    with ctx.step("The prospect becomes a customer and appears in SCM"):
        group = sales_ref(ctx, "msdyn_customergroups", f"msdyn_groupid eq '10' and _msdyn_company_value eq {company}")
        currency = sales_ref(ctx, "transactioncurrencies", "isocurrencycode eq 'USD'")
        terms = ctx.sales_row("msdyn_paymentterms", f"msdyn_name eq 'Net30' and _msdyn_company_value eq {company}")
        body = {
            "customertypecode": 3,
            "msdyn_customergroupid@odata.bind": group,
            "transactioncurrencyid@odata.bind": currency,
        }
        if terms:
            body["msdyn_paymentterm@odata.bind"] = f"/msdyn_paymentterms({terms['msdyn_paymenttermid']})"
        ctx.sales.update("accounts", state["account"], body)
        sales_row, scm_row = ctx.synced(
            sales=("accounts", f"accountnumber eq {q(account_number)}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(account_number)}"),
            fields={"OrganizationName": "name", "CustomerAccount": "accountnumber"},
        )
        ctx.check(
            scm_row["CustomerGroupId"] == "10" and scm_row["SalesCurrencyCode"] == "USD",
            "customer group and currency arrive in SCM",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.note("Customer", "Sales", "account", account_number, "Customer")
        ctx.note("Customer", "SCM", f"customer (group {scm_row.get('CustomerGroupId')})", scm_row["CustomerAccount"])

    with ctx.step("Products come from SCM with their prices"):
        item = ctx.found(
            ctx.scm_row("ReleasedProductsV2", f"dataAreaId eq '{COMPANY}' and ItemNumber eq 'D0001'"),
            "released product D0001 exists in SCM",
        )
        product = ctx.wait_for(
            lambda: ctx.sales_row(
                "products", f"msdyn_productnumber eq {q(item['ProductNumber'])} and _msdyn_company_value eq {company}"
            ),
            "product D0001 in Sales",
        )
        ctx.check(
            abs(float(product.get("price") or 0) - float(item["SalesPrice"])) < 0.01,
            "the Sales price is the SCM sales price",
            sales=product,
            scm=item,
        )
        state["product"] = product["productid"]
        state["uom"] = product.get("_defaultuomid_value")
        ctx.note("Products", "SCM", "released product", item["ItemNumber"], "", item["SalesPrice"])
        ctx.note(
            "Products",
            "Sales",
            "product",
            product.get("productnumber") or product["msdyn_productnumber"],
            "",
            product.get("price"),
        )

    with ctx.step("Create a quote with two lines in Sales; it appears in SCM"):
        price_list = ctx.found(ctx.sales_row("pricelevels", "name ne null"), "a price list exists")
        quote_id = ctx.sales.create(
            "quotes",
            {
                "name": f"Speakers for {company_name}",
                "customerid_account@odata.bind": f"/accounts({state['account']})",
                "pricelevelid@odata.bind": f"/pricelevels({price_list['pricelevelid']})",
                "transactioncurrencyid@odata.bind": currency,
                "opportunityid@odata.bind": f"/opportunities({state['opportunity']})",
                "quote_details": [
                    {
                        "productid@odata.bind": f"/products({state['product']})",
                        "uomid@odata.bind": f"/uoms({state['uom']})",
                        "quantity": 4,
                    },
                    {
                        "productid@odata.bind": f"/products({state['product']})",
                        "uomid@odata.bind": f"/uoms({state['uom']})",
                        "quantity": 2,
                        "manualdiscountamount": 10,
                    },
                ],
            },
        )
        quote = ctx.sales.retrieve("quotes", quote_id, select=["msdyn_quotenumber", "quotenumber", "totalamount"])
        state["quote"], state["quote_number"] = quote_id, quote["msdyn_quotenumber"]
        sales_row, scm_row = ctx.synced(
            sales=("quotes", f"quoteid eq {quote_id}"),
            scm=("SalesQuotationHeadersV2", f"SalesQuotationNumber eq {q(quote['msdyn_quotenumber'])}"),
            fields={"SalesQuotationNumber": "msdyn_quotenumber"},
        )
        lines = ctx.scm.query(
            "SalesQuotationLines", cross_company=True, filter=f"SalesQuotationNumber eq {q(quote['msdyn_quotenumber'])}"
        )
        ctx.check(len(lines) == 2, f"both quote lines reach SCM ({len(lines)} did)", sales=sales_row, scm=lines)
        ctx.note("Quote", "Sales", "quote", quote["quotenumber"], "Draft", quote["totalamount"])
        ctx.note(
            "Quote",
            "SCM",
            "sales quotation",
            scm_row["SalesQuotationNumber"],
            scm_row["SalesQuotationStatus"],
            scm_row.get("QuotationTotalAmount"),
            scm_row.get("QuotationTotalTaxAmount"),
        )

    with ctx.step("Activate the quote in Sales; SCM shows it Sent"):
        ctx.sales.update("quotes", quote_id, {"statecode": 1, "statuscode": 2})
        scm_row = ctx.wait_for(
            lambda: ctx.scm_row(
                "SalesQuotationHeadersV2",
                f"SalesQuotationNumber eq {q(state['quote_number'])} and "
                f"SalesQuotationStatus eq {NS_SCM}.SalesQuotationStatus'Sent'",
            ),
            "the quotation to be Sent in SCM",
        )
        ctx.note("Activate", "SCM", "sales quotation", scm_row["SalesQuotationNumber"], "Sent")

    with ctx.step("Win the quote and convert it into an order; the order and its lines appear in SCM"):
        converted = ctx.sales.action(
            "ConvertQuoteToSalesOrder", {"QuoteId": quote_id, "ColumnSet": {"AllColumns": True}}
        )
        state["order"] = ctx.found((converted or {}).get("salesorderid"), "ConvertQuoteToSalesOrder returned the order")
        order = ctx.sales.retrieve(
            "salesorders", state["order"], select=["ordernumber", "msdyn_salesordernumber", "totalamount"]
        )
        state["order_number"] = order["msdyn_salesordernumber"]
        won = ctx.sales.retrieve("quotes", quote_id, select=["statecode"])
        ctx.check(won["statecode"] == 2, "the quote is Won", sales=won)
        sales_row, scm_row = ctx.synced(
            sales=("salesorders", f"salesorderid eq {state['order']}"),
            scm=("SalesOrderHeadersV2", f"SalesOrderNumber eq {q(state['order_number'])}"),
            fields={"SalesOrderNumber": "msdyn_salesordernumber"},
        )
        lines = ctx.scm.query(
            "SalesOrderLines", cross_company=True, filter=f"SalesOrderNumber eq {q(state['order_number'])}"
        )
        ctx.check(len(lines) == 2, f"both order lines reach SCM ({len(lines)} did)", sales=sales_row, scm=lines)
        ctx.note("Order", "Sales", "sales order", order["ordernumber"], "Active", order["totalamount"])
        ctx.note(
            "Order",
            "SCM",
            "sales order",
            scm_row["SalesOrderNumber"],
            scm_row["SalesOrderStatus"],
            scm_row.get("OrderTotalAmount"),
            scm_row.get("OrderTotalTaxAmount"),
        )

    def processing_status(expected: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            row = ctx.sales.retrieve(
                "salesorders", state["order"], select=["msdyn_processingstatus", "totalamount", "statecode"]
            )
            return row if row_status(row) == expected else None

        return ctx.wait_for(probe, f"the Sales order to show processing status {expected}")

    def row_status(row: dict[str, Any]) -> str:
        value = row.get("msdyn_processingstatus")
        names = {
            192350000: "Active",
            192350001: "Confirmed",
            192350002: "Picked",
            192350003: "Partially delivered",
            192350004: "Delivered",
            192350005: "Invoiced",
            192350006: "Partially invoiced",
            192350007: "Cancelled",
        }
        return names.get(value, str(value)) if isinstance(value, int) else str(value)

    with ctx.step("SCM confirms the order; Sales shows Confirmed"):
        scm_order_action(ctx, state["order_number"], "Confirm")
        row = processing_status("Confirmed")
        ctx.note("Confirm", "SCM", "sales order", state["order_number"], "Confirmed")
        # SCM owns totals (tax included): they reach the Sales order with the first SCM change.
        ctx.note("Confirm", "Sales", "sales order", state["order_number"], row_status(row), row.get("totalamount"))

    with ctx.step("SCM picks the order; Sales shows Picked"):
        scm_order_action(ctx, state["order_number"], "PostPickingList")
        processing_status("Picked")
        ctx.note("Pick", "SCM", "picking list", state["order_number"], "Picked")

    with ctx.step("SCM delivers (packing slip); on-hand goes down; Sales shows Delivered"):
        before = _on_hand(ctx, "D0001")
        scm_order_action(ctx, state["order_number"], "PostPackingSlip")
        processing_status("Delivered")
        after = _on_hand(ctx, "D0001")
        ctx.check(abs(before - after - 6) < 1e-6, f"on-hand of D0001 drops by 6 ({before} -> {after})")
        ctx.note("Deliver", "SCM", "packing slip", state["order_number"], "Delivered")

    with ctx.step("SCM invoices; the invoice with its lines appears in Sales"):
        invoice = scm_order_action(ctx, state["order_number"], "PostInvoice") or {}
        number = invoice.get("InvoiceNumber")
        ctx.check(bool(number), "PostInvoice returned the invoice", scm=invoice)
        state["invoice_number"] = number
        sales_invoice, scm_invoice = ctx.synced(
            sales=("invoices", f"msdyn_invoicenumber eq {q(number)}"),
            scm=("SalesInvoiceHeadersV2", f"InvoiceNumber eq {q(number)}"),
            fields={"InvoiceNumber": "msdyn_invoicenumber", "TotalInvoiceAmount": "totalamount"},
        )
        lines = ctx.sales.query("invoicedetails", filter=f"_invoiceid_value eq {sales_invoice['invoiceid']}")
        ctx.check(len(lines) == 2, f"both invoice lines reach Sales ({len(lines)} did)", sales=lines, scm=scm_invoice)
        processing_status("Invoiced")
        ctx.note(
            "Invoice",
            "SCM",
            "sales invoice",
            number,
            "Posted",
            scm_invoice["TotalInvoiceAmount"],
            scm_invoice.get("TotalTaxAmount"),
        )
        ctx.note(
            "Invoice",
            "Sales",
            "invoice",
            sales_invoice.get("invoicenumber") or number,
            "Active",
            sales_invoice["totalamount"],
        )
        state["amount"] = float(scm_invoice["TotalInvoiceAmount"])

    with ctx.step("The customer pays; the invoice is settled in SCM"):
        journal = ctx.scm.create(
            "CustomerPaymentJournalHeaders",
            {"dataAreaId": COMPANY, "JournalName": "CustPay", "Description": f"Payment {account_number}"},
        )
        ctx.scm.create(
            "CustomerPaymentJournalLines",
            {
                "dataAreaId": COMPANY,
                "JournalBatchNumber": journal["JournalBatchNumber"],
                "AccountType": "Cust",
                "AccountDisplayValue": account_number,
                "CreditAmount": state["amount"],
                "CurrencyCode": "USD",
                "MarkedInvoice": state["invoice_number"],
            },
        )
        ctx.scm.action(
            "CustomerPaymentJournalHeaders",
            {"dataAreaId": COMPANY, "JournalBatchNumber": journal["JournalBatchNumber"]},
            "Post",
        )
        settled = ctx.scm.retrieve(
            "SalesInvoiceHeadersV2", {"dataAreaId": COMPANY, "InvoiceNumber": state["invoice_number"]}
        )
        ctx.check(
            settled.get("IsSettled") == "Yes" and float(settled.get("InvoiceOpenAmount") or 0) == 0,
            "the invoice is settled with nothing left open",
            scm=settled,
        )
        ctx.note("Pay", "SCM", "payment journal", journal["JournalBatchNumber"], "Posted", state["amount"])
        ctx.note("Pay", "SCM", "sales invoice", state["invoice_number"], "Settled", 0)


def _on_hand(ctx: ScenarioContext, item: str) -> float:
    rows = ctx.scm.query(
        "WarehousesOnHandV2", cross_company=True, filter=f"dataAreaId eq '{COMPANY}' and ItemNumber eq {q(item)}"
    )
    return sum(float(r.get("OnHandQuantity") or 0) for r in rows)
