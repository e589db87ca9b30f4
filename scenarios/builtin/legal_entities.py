"""Company-specific data across legal entities: every record stays in its company on both sides."""

from __future__ import annotations

from sandbox.wellknown import DEFAULT_COMPANY
from scenarios import scenario
from scenarios.builtin._helpers import (
    company_id,
    customer_rows,
    new_customer,
    new_order,
    order_status,
    q,
    scm_order_action,
    scm_update,
    unique_number,
)
from scenarios.context import ScenarioContext


@scenario(
    "second-legal-entity",
    "Customers and orders of a second legal entity stay in their company on both sides, even with equal numbers",
)
def second_legal_entity(ctx: ScenarioContext) -> None:
    """A customer made in Sales for usrt lands in SCM's usrt; the same account number in usmf is a different
    customer on both sides; changes and orders of one company never touch the other; a customer made in
    SCM's demf arrives in Sales under demf with its euro currency."""
    usrt, usmf = company_id(ctx, "usrt"), company_id(ctx, DEFAULT_COMPANY)

    with ctx.step("A customer made in Sales for usrt appears in SCM in usrt only"):
        retail = new_customer(ctx, "CRM-E", company="usrt")
        ctx.check(
            ctx.scm_row("CustomersV3", f"dataAreaId eq {q(DEFAULT_COMPANY)} and CustomerAccount eq {q(retail.number)}")
            is None,
            "usmf has no such customer",
        )
        ctx.note("Customer", "Sales", "account (usrt)", retail.number, "Customer")

    with ctx.step("The same account number made for usmf is a second customer on both sides"):
        manufacturing = new_customer(ctx, "CRM-E", company=DEFAULT_COMPANY, number=retail.number)
        scm_rows = ctx.scm.query(
            "CustomersV3",
            cross_company=True,
            select=["dataAreaId", "OrganizationName"],
            filter=f"CustomerAccount eq {q(retail.number)}",
        )
        sales_rows = ctx.sales.query(
            "accounts", select=["name", "_msdyn_company_value"], filter=f"accountnumber eq {q(retail.number)}"
        )
        ctx.check(
            {r["dataAreaId"]: r["OrganizationName"] for r in scm_rows}
            == {"usrt": retail.name, DEFAULT_COMPANY: manufacturing.name},
            "SCM has one customer per company",
            sales=sales_rows,
            scm=scm_rows,
        )
        ctx.check(
            {r["_msdyn_company_value"]: r["name"] for r in sales_rows} == {usrt: retail.name, usmf: manufacturing.name},
            "Sales has one account per company",
            sales=sales_rows,
            scm=scm_rows,
        )

    with ctx.step("Renaming the usrt customer in SCM changes only the usrt account in Sales"):
        scm_update(ctx, "CustomersV3", retail.scm_key, {"OrganizationName": "Retail only"})
        sales_row, scm_row = customer_rows(ctx, retail, ["name"], ["OrganizationName"])
        ctx.check(sales_row["name"] == "Retail only", "the usrt account is renamed", sales=sales_row, scm=scm_row)
        sales_row, scm_row = customer_rows(ctx, manufacturing, ["name"], ["OrganizationName"])
        ctx.check(
            sales_row["name"] == scm_row["OrganizationName"] == manufacturing.name,
            "the usmf customer keeps its name on both sides",
            sales=sales_row,
            scm=scm_row,
        )

    with ctx.step("Changing the usrt account in Sales changes only the usrt customer in SCM"):
        ctx.sales.update("accounts", retail.account_id, {"telephone1": "555-0404"})
        sales_row, scm_row = customer_rows(ctx, retail, ["telephone1"], ["PrimaryContactPhone"])
        ctx.check(
            scm_row["PrimaryContactPhone"] == "555-0404",
            "SCM's usrt customer has the phone",
            sales=sales_row,
            scm=scm_row,
        )
        sales_row, scm_row = customer_rows(ctx, manufacturing, ["telephone1"], ["PrimaryContactPhone"])
        ctx.check(
            scm_row["PrimaryContactPhone"] != "555-0404" and sales_row["telephone1"] != "555-0404",
            "the usmf customer does not",
            sales=sales_row,
            scm=scm_row,
        )

    with ctx.step("An order for the usrt customer is made in usrt on both sides"):
        order = new_order(ctx, retail, [("D0003", 2)])
        sales_row = ctx.sales.retrieve("salesorders", order.order_id, select=["_msdyn_company_value"])
        ctx.check(sales_row["_msdyn_company_value"] == usrt, "the Sales order belongs to usrt", sales=sales_row)
        ctx.check(
            ctx.scm_row(
                "SalesOrderHeadersV2",
                f"dataAreaId eq {q(DEFAULT_COMPANY)} and SalesOrderNumber eq {q(order.number)} "
                f"and OrderingCustomerAccountNumber eq {q(retail.number)}",
            )
            is None,
            "usmf has no copy of the order",
        )
        ctx.note("Order", "Sales", "sales order (usrt)", order.number, "Active")

    with ctx.step("SCM confirms the order in usrt; Sales shows Confirmed; usmf is untouched"):
        scm_order_action(ctx, order, "Confirm")
        order_status(ctx, order, "Confirmed")
        usmf_orders = ctx.scm.query(
            "SalesOrderHeadersV2",
            cross_company=True,
            select=["SalesOrderNumber"],
            filter=f"dataAreaId eq {q(DEFAULT_COMPANY)} and OrderingCustomerAccountNumber eq {q(retail.number)}",
        )
        ctx.check(not usmf_orders, "no order for that number in usmf", scm=usmf_orders)

    with ctx.step("A euro customer made in SCM's demf arrives in Sales under demf, in EUR"):
        number = unique_number(ctx, "DE-E")
        name = ctx.fake.company()
        ctx.scm.create(
            "CustomersV3",
            {
                "dataAreaId": "demf",
                "CustomerAccount": number,
                "OrganizationName": name,
                "CustomerGroupId": "20",
                "SalesCurrencyCode": "EUR",
            },
        )
        demf = company_id(ctx, "demf")
        sales_row, scm_row = ctx.synced(
            sales=("accounts", f"accountnumber eq {q(number)}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
            fields={"CustomerAccount": "accountnumber", "OrganizationName": "name"},
        )
        euro = ctx.sales_row("transactioncurrencies", "isocurrencycode eq 'EUR'", select=["transactioncurrencyid"])
        ctx.check(
            sales_row["_msdyn_company_value"] == demf and scm_row["dataAreaId"] == "demf",
            "the account belongs to demf",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.check(
            euro is not None and sales_row["_transactioncurrencyid_value"] == euro["transactioncurrencyid"],
            "the account's currency is EUR",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.note("Customer", "SCM", "customer (demf)", number, "EUR")
