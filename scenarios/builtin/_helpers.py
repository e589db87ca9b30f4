"""What the built-in scenarios share: OData literals, companies, fresh keys, customers, orders, status checks.

Every helper goes through the public APIs (``ctx.sales``, ``ctx.scm``, ``ctx.bridge``), so the scenarios run
the same in-process and against running servers. Keys are drawn from ``ctx.rng`` (deterministic on fresh
state) and skipped when taken on either side (so a second run against the same servers still gets new ones).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.odata.literals import format_literal
from sandbox.wellknown import DEFAULT_COMPANY
from scenarios.context import Mismatch, ScenarioContext

NS_SCM = "Microsoft.Dynamics.DataEntities"

#: SCM SalesOrderProcessingStatus -> Sales msdyn_processingstatus (bridge/maps/400-order-headers.yaml)
PROCESSING_STATUS: dict[str, int] = {
    "Active": 192350000,
    "Confirmed": 192350001,
    "Picked": 192350002,
    "PartiallyDelivered": 192350003,
    "Delivered": 192350004,
    "Invoiced": 192350005,
    "PartiallyInvoiced": 192350006,
    "Canceled": 192350007,
    "DeliveredPartiallyInvoiced": 192350008,
}
#: SCM processing status -> Sales order statecode (dual-write sales-status map; None keeps the state it had)
ORDER_STATE: dict[str, int | None] = {
    "Active": 0,
    "Confirmed": 1,
    "Picked": 1,
    "PartiallyDelivered": 0,
    "Delivered": 3,
    "PartiallyInvoiced": None,
    "Invoiced": 4,
    "Canceled": 2,
    "DeliveredPartiallyInvoiced": 3,
}
#: SCM SalesOrderLineStatus -> Sales msdyn_linestatus
LINE_STATUS: dict[str, int] = {
    "None": 192350000,
    "Backorder": 192350001,
    "Delivered": 192350002,
    "Invoiced": 192350003,
    "Canceled": 192350004,
}
#: SCM SalesQuotationStatus -> Sales msdyn_salesquotationstatus
QUOTATION_STATUS: dict[str, int] = {
    "Created": 192350000,
    "Sent": 192350001,
    "Confirmed": 192350002,
    "Lost": 192350003,
    "Cancelled": 192350004,
    "Reset": 192350005,
    "Modified": 192350006,
    "Submitted": 192350007,
    "Approved": 192350008,
    "Revised": 192350009,
}
#: SCM OnHoldStatus -> Sales msdyn_onholdstatus
ON_HOLD: dict[str, int] = {
    "No": 806380000,
    "Invoice": 806380001,
    "All": 806380002,
    "Payment": 806380003,
    "Requisition": 806380004,
    "Never": 806380005,
}


def q(value: Any) -> str:
    """An OData literal (strings always quoted, as both services accept)."""
    return format_literal(value, guid_bare=False)


def company_id(ctx: ScenarioContext, code: str = DEFAULT_COMPANY) -> str:
    """The Sales cdm_companyid of a legal entity (it comes from SCM through the legal entities map)."""
    row = ctx.sales_row("cdm_companies", f"cdm_companycode eq {q(code)}")
    return str(ctx.found(row, f"company {code} is not in Sales (legal entities map not run?)")["cdm_companyid"])


def sales_id(ctx: ScenarioContext, entity_set: str, key_column: str, filter: str) -> str:
    """The GUID of the one Sales row matching ``filter`` (a missing row is a failed check)."""
    row = ctx.sales_row(entity_set, filter, select=[key_column])
    return str(ctx.found(row, f"no {entity_set} matching {filter}")[key_column])


def _unique(ctx: ScenarioContext, prefix: str, what: str, taken: Callable[[str], bool]) -> str:
    """``<prefix><5 digits>`` for which ``taken`` says no (200 tries, then a Mismatch)."""
    for _ in range(200):
        number = f"{prefix}{ctx.rng.randint(10000, 99999)}"
        if not taken(number):
            return number
    raise Mismatch(f"no free {what} with prefix {prefix}")


def unique_number(ctx: ScenarioContext, prefix: str) -> str:
    """A customer account number ``<prefix><5 digits>`` that neither side has in any company yet."""
    return _unique(
        ctx,
        prefix,
        "account number",
        lambda number: (
            ctx.sales_row("accounts", f"accountnumber eq {q(number)}", select=["accountid"]) is not None
            or ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(number)}", select=["CustomerAccount"]) is not None
        ),
    )


def unique_item(ctx: ScenarioContext, prefix: str) -> str:
    """An item number ``<prefix><5 digits>`` that no company releases in SCM and no Sales product carries."""
    return _unique(
        ctx,
        prefix,
        "item number",
        lambda number: (
            ctx.scm_row("ReleasedProductsV2", f"ItemNumber eq {q(number)}", select=["ItemNumber"]) is not None
            or ctx.sales_row("products", f"msdyn_productnumber eq {q(number)}", select=["productid"]) is not None
        ),
    )


# ---- customers --------------------------------------------------------------------------------------------


@dataclass
class Customer:
    """A customer that exists on both sides: the Sales account and the SCM key."""

    account_id: str
    number: str
    company: str
    company_id: str
    name: str

    @property
    def scm_key(self) -> dict[str, str]:
        return {"dataAreaId": self.company, "CustomerAccount": self.number}


def customer_columns(
    ctx: ScenarioContext, company: str, group: str = "10", currency: str = "USD", terms: str | None = "Net30"
) -> dict[str, Any]:
    """The lookups a Sales account needs to become an SCM customer in ``company``."""
    company_guid = company_id(ctx, company)
    body: dict[str, Any] = {
        "customertypecode": 3,
        "msdyn_company@odata.bind": f"/cdm_companies({company_guid})",
        "msdyn_customergroupid@odata.bind": "/msdyn_customergroups("
        + sales_id(
            ctx,
            "msdyn_customergroups",
            "msdyn_customergroupid",
            f"msdyn_groupid eq {q(group)} and _msdyn_company_value eq {company_guid}",
        )
        + ")",
        "transactioncurrencyid@odata.bind": "/transactioncurrencies("
        + sales_id(ctx, "transactioncurrencies", "transactioncurrencyid", f"isocurrencycode eq {q(currency)}")
        + ")",
    }
    if terms:
        row = ctx.sales_row(
            "msdyn_paymentterms",
            f"msdyn_name eq {q(terms)} and _msdyn_company_value eq {company_guid}",
            select=["msdyn_paymenttermid"],
        )
        if row:
            body["msdyn_paymentterm@odata.bind"] = f"/msdyn_paymentterms({row['msdyn_paymenttermid']})"
    return body


def new_customer(
    ctx: ScenarioContext,
    prefix: str,
    *,
    company: str = DEFAULT_COMPANY,
    group: str = "10",
    currency: str = "USD",
    number: str | None = None,
    **columns: Any,
) -> Customer:
    """Create a customer account in Sales and wait until SCM has it, in the same company, with the same name."""
    number = number or unique_number(ctx, prefix)
    name = ctx.fake.company()
    body = {"name": name, "accountnumber": number, **customer_columns(ctx, company, group, currency), **columns}
    account_id = str(ctx.sales.create("accounts", body))  # a GUID: no representation was asked for
    customer = Customer(account_id, number, company, company_id(ctx, company), name)
    sales_row, scm_row = ctx.synced(
        sales=("accounts", f"accountid eq {account_id}"),
        scm=("CustomersV3", f"dataAreaId eq {q(company)} and CustomerAccount eq {q(number)}"),
        fields={"CustomerAccount": "accountnumber", "OrganizationName": "name"},
    )
    ctx.check(
        scm_row["CustomerGroupId"] == group and scm_row["SalesCurrencyCode"] == currency,
        f"customer group {group} and currency {currency} arrive in SCM",
        sales=sales_row,
        scm=scm_row,
    )
    return customer


def customer_rows(
    ctx: ScenarioContext, customer: Customer, sales_select: list[str], scm_select: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The customer as each side has it now."""
    sales_row = ctx.sales.retrieve("accounts", customer.account_id, select=sales_select)
    scm_row = ctx.scm.retrieve("CustomersV3", customer.scm_key, cross_company=True, select=scm_select)
    return sales_row, scm_row


# ---- products and orders ----------------------------------------------------------------------------------


def sales_product(ctx: ScenarioContext, item: str, company: str = DEFAULT_COMPANY) -> dict[str, Any]:
    """The Sales product of an SCM released product (the products map brings them over)."""
    company_guid = company_id(ctx, company)
    return ctx.wait_for(
        lambda: ctx.sales_row(
            "products",
            f"msdyn_productnumber eq {q(item)} and _msdyn_company_value eq {company_guid}",
            select=["productid", "_defaultuomid_value", "price", "name"],
        ),
        f"product {item} of {company} in Sales",
    )


def price_list_id(ctx: ScenarioContext, currency: str = "USD") -> str:
    """The alphabetically first active price list in ``currency`` (where the products map puts products)."""
    currency_id = sales_id(ctx, "transactioncurrencies", "transactioncurrencyid", f"isocurrencycode eq {q(currency)}")
    rows = ctx.sales.query(
        "pricelevels",
        select=["pricelevelid", "name"],
        orderby="name",
        filter=f"_transactioncurrencyid_value eq {currency_id} and statecode eq 0",
        top=1,
    )
    ctx.check(bool(rows), f"a {currency} price list exists in Sales")
    return rows[0]["pricelevelid"]


@dataclass
class Order:
    """A sales order on both sides: the Sales GUID and the number both sides share."""

    order_id: str
    number: str
    company: str
    lines: dict[int, str] = field(default_factory=dict)  # sequence number -> item

    @property
    def scm_key(self) -> dict[str, str]:
        return {"dataAreaId": self.company, "SalesOrderNumber": self.number}


def new_order(
    ctx: ScenarioContext,
    customer: Customer,
    lines: list[tuple[str, float]],
    *,
    currency: str = "USD",
    name: str | None = None,
) -> Order:
    """Create a sales order with ``(item, quantity)`` lines in Sales; wait for the header and every line in SCM."""
    details = []
    for item, quantity in lines:
        product = sales_product(ctx, item, customer.company)
        details.append(
            {
                "productid@odata.bind": f"/products({product['productid']})",
                "uomid@odata.bind": f"/uoms({product['_defaultuomid_value']})",
                "quantity": quantity,
            }
        )
    order_id = str(  # a GUID: no representation was asked for
        ctx.sales.create(
            "salesorders",
            {
                "name": name or f"Order for {customer.name}",
                "customerid_account@odata.bind": f"/accounts({customer.account_id})",
                "pricelevelid@odata.bind": f"/pricelevels({price_list_id(ctx, currency)})",
                "order_details": details,
            },
        )
    )
    number = ctx.sales.retrieve("salesorders", order_id, select=["msdyn_salesordernumber"])["msdyn_salesordernumber"]
    ctx.check(bool(number), "Sales numbered the order for dual-write (msdyn_salesordernumber)")
    sales_row, scm_row = ctx.synced(
        sales=("salesorders", f"salesorderid eq {order_id}"),
        scm=("SalesOrderHeadersV2", f"dataAreaId eq {q(customer.company)} and SalesOrderNumber eq {q(number)}"),
        fields={"SalesOrderNumber": "msdyn_salesordernumber"},
    )
    ctx.check(
        scm_row["OrderingCustomerAccountNumber"] == customer.number,
        f"the SCM order belongs to {customer.number}",
        sales=sales_row,
        scm=scm_row,
    )
    order = Order(order_id, number, customer.company)
    scm_lines = order_lines_agree(ctx, order, expected=len(lines))
    order.lines = {int(line["LineCreationSequenceNumber"]): line["ItemNumber"] for line in scm_lines}
    return order


def scm_update(ctx: ScenarioContext, entity_set: str, key: dict[str, Any], body: dict[str, Any]) -> None:
    """PATCH an SCM row of any company (F&O scopes writes to the default company unless cross-company=true)."""
    ctx.scm.request("PATCH", ctx.scm.entity_path(entity_set, key), params={"cross-company": "true"}, json_body=body)


def scm_action(
    ctx: ScenarioContext, entity_set: str, key: dict[str, Any], action: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """A bound SCM action on a row of any company; the JSON result, or None for 204."""
    response = ctx.scm.request(
        "POST",
        f"{ctx.scm.entity_path(entity_set, key)}/{NS_SCM}.{action}",
        params={"cross-company": "true"},
        json_body=dict(body or {}),
    )
    return response.json() if response.status_code != 204 and response.content else None


def scm_order_action(
    ctx: ScenarioContext, order: Order, action: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Run an SCM sales order process (Confirm, PostPickingList, PostPackingSlip, PostInvoice, Cancel)."""
    return scm_action(ctx, "SalesOrderHeadersV2", order.scm_key, action, body)


def order_rows(ctx: ScenarioContext, order: Order) -> tuple[dict[str, Any], dict[str, Any]]:
    sales_row = ctx.sales.retrieve(
        "salesorders",
        order.order_id,
        select=["msdyn_processingstatus", "statecode", "statuscode", "totalamount", "msdyn_salesordernumber"],
    )
    scm_row = ctx.scm.retrieve(
        "SalesOrderHeadersV2",
        order.scm_key,
        cross_company=True,
        select=[
            "SalesOrderNumber",
            "SalesOrderProcessingStatus",
            "SalesOrderStatus",
            "DocumentStatus",
            "OrderTotalAmount",
        ],
    )
    return sales_row, scm_row


def _status_agrees(sales_row: dict[str, Any], scm_status: str) -> bool:
    value = sales_row.get("msdyn_processingstatus")
    # An order made in Sales has no processing status in Sales until SCM changes it (the bridge's own write
    # is not echoed back): "Active" on the SCM side.
    if value != PROCESSING_STATUS.get(scm_status) and not (value is None and scm_status == "Active"):
        return False
    state = ORDER_STATE.get(scm_status)
    return state is None or sales_row.get("statecode") == state


def order_status(ctx: ScenarioContext, order: Order, expected: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until SCM shows processing status ``expected`` and Sales shows the same status and order state."""
    last: dict[str, Any] = {}

    def probe() -> tuple[dict[str, Any], dict[str, Any]] | None:
        sales_row, scm_row = order_rows(ctx, order)
        last.update(sales=sales_row, scm=scm_row)
        if scm_row["SalesOrderProcessingStatus"] == expected and _status_agrees(sales_row, expected):
            return sales_row, scm_row
        return None

    try:
        return ctx.wait_for(probe, f"order {order.number} to be {expected} on both sides")
    except Mismatch:
        sales_row, scm_row = last.get("sales") or {}, last.get("scm") or {}
        raise Mismatch(
            f"order {order.number}: expected {expected} (Sales {PROCESSING_STATUS.get(expected)}, state "
            f"{ORDER_STATE.get(expected)}); SCM has {scm_row.get('SalesOrderProcessingStatus')}, Sales has "
            f"{sales_row.get('msdyn_processingstatus')} / state {sales_row.get('statecode')}",
            sales=sales_row,
            scm=scm_row,
        ) from None


def order_totals_agree(ctx: ScenarioContext, order: Order) -> tuple[dict[str, Any], dict[str, Any]]:
    """SCM prices the order: once SCM has changed it, Sales shows SCM's order total (tax included)."""
    sales_row, scm_row = order_rows(ctx, order)
    ctx.check(
        abs(float(sales_row["totalamount"] or 0) - float(scm_row["OrderTotalAmount"] or 0)) < 0.01,
        f"order total: SCM {scm_row['OrderTotalAmount']}, Sales {sales_row['totalamount']}",
        sales=sales_row,
        scm=scm_row,
    )
    return sales_row, scm_row


def order_lines_agree(
    ctx: ScenarioContext, order: Order, expected: int | None = None, status: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """Wait until both sides have the same order lines (sequence, quantity, line status); ``status`` pins the
    SCM line status per sequence number. Returns the SCM lines."""
    last: dict[str, Any] = {}

    def probe() -> list[dict[str, Any]] | None:
        scm_lines = ctx.scm.query(
            "SalesOrderLines",
            cross_company=True,
            select=[
                "LineCreationSequenceNumber",
                "ItemNumber",
                "OrderedSalesQuantity",
                "SalesOrderLineStatus",
                "DeliveredSalesQuantity",
                "InvoicedSalesQuantity",
                "LineAmount",
            ],
            filter=f"dataAreaId eq {q(order.company)} and SalesOrderNumber eq {q(order.number)}",
        )
        sales_lines = ctx.sales.query(
            "salesorderdetails",
            select=["sequencenumber", "quantity", "msdyn_linestatus"],
            filter=f"_salesorderid_value eq {order.order_id}",
        )
        last.update(sales=sales_lines, scm=scm_lines)
        if expected is not None and len(scm_lines) != expected:
            return None
        by_sequence = {int(line["sequencenumber"] or 0): line for line in sales_lines}
        if len(by_sequence) != len(scm_lines):
            return None
        for line in scm_lines:
            sequence = int(line["LineCreationSequenceNumber"])
            sales_line = by_sequence.get(sequence)
            if sales_line is None or abs(float(sales_line["quantity"]) - float(line["OrderedSalesQuantity"])) > 1e-6:
                return None
            scm_status = line["SalesOrderLineStatus"]
            if status and sequence in status and scm_status != status[sequence]:
                return None
            sales_status = sales_line.get("msdyn_linestatus")
            if sales_status is not None and sales_status != LINE_STATUS.get(scm_status):
                return None
            if sales_status is None and scm_status not in ("Backorder", "None"):
                return None
        return scm_lines

    try:
        return ctx.wait_for(probe, f"the lines of order {order.number} to agree")
    except Mismatch:
        raise Mismatch(
            f"the lines of order {order.number} differ (expected {expected} lines, SCM status {status})",
            sales=last.get("sales"),
            scm=last.get("scm"),
        ) from None


def invoice_synced(ctx: ScenarioContext, number: str, lines: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until the SCM invoice ``number`` is in Sales with the same total and its ``lines`` lines."""
    sales_row, scm_row = ctx.synced(
        sales=("invoices", f"msdyn_invoicenumber eq {q(number)}"),
        scm=("SalesInvoiceHeadersV2", f"InvoiceNumber eq {q(number)}"),
        fields={"InvoiceNumber": "msdyn_invoicenumber", "TotalInvoiceAmount": "msdyn_totalamount"},
    )
    sales_lines = ctx.sales.query(
        "invoicedetails",
        select=["quantity", "sequencenumber", "extendedamount"],
        filter=f"_invoiceid_value eq {sales_row['invoiceid']}",
    )
    ctx.check(
        len(sales_lines) == lines,
        f"invoice {number} has {lines} line(s) in Sales ({len(sales_lines)} do)",
        sales=sales_lines,
        scm=scm_row,
    )
    return sales_row, scm_row


def on_hand(ctx: ScenarioContext, item: str, company: str = DEFAULT_COMPANY) -> float:
    rows = ctx.scm.query(
        "WarehousesOnHandV2",
        cross_company=True,
        select=["OnHandQuantity"],
        filter=f"dataAreaId eq {q(company)} and ItemNumber eq {q(item)}",
    )
    return sum(float(r.get("OnHandQuantity") or 0) for r in rows)


# ---- bridge maps ------------------------------------------------------------------------------------------


def map_status(ctx: ScenarioContext, map_id: str) -> dict[str, Any]:
    """The bridge's status of one map (state, mode, counters, filters ...)."""
    response = ctx.bridge_client().get(f"/api/maps/{map_id}")
    if response.status_code >= 400:
        raise Mismatch(f"the bridge has no map {map_id}: {response.text}")
    return response.json()


@contextlib.contextmanager
def map_restored(ctx: ScenarioContext, map_id: str) -> Iterator[dict[str, Any]]:
    """Leave ``map_id`` running as it was found, whatever the scenario did to it (running servers are shared)."""
    before = map_status(ctx, map_id)
    try:
        yield before
    finally:
        if before["state"] == "Running":
            now = map_status(ctx, map_id)["state"]
            if now in ("Paused", "Resuming"):
                ctx.map_action(map_id, "resume", mode="catchup")
            elif now == "Not running":
                ctx.map_action(map_id, "run", initial_sync=False, mode=before.get("mode") or "live")
