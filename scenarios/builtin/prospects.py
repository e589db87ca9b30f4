"""Prospects: with the shipped maps a prospect stays in Sales until it becomes a customer; with the example
user map ``scenarios/examples/maps/prospects-accounts.yaml`` prospects reach SCM as customers right away.

``prospect-map-syncs-prospects`` needs a bridge that loaded that map. When the bridge it is given has it
(``sandbox up --maps-dir scenarios/examples/maps``), it runs there; otherwise (the usual case, in-process or
against `sandbox up`) it asks the runner for a throwaway stack of its own whose bridge loads the example maps
(:meth:`~scenarios.context.ScenarioContext.isolated`) and runs on that, so it never changes the maps of shared
servers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sandbox.wellknown import DEFAULT_COMPANY
from scenarios import scenario
from scenarios.builtin._helpers import company_id, customer_columns, map_status, q, unique_number
from scenarios.context import ScenarioContext

EXAMPLE_MAPS = Path(__file__).resolve().parents[1] / "examples" / "maps"
PROSPECT_MAP = "prospects-accounts"
PROSPECT, CUSTOMER = 8, 3


def _scm_customer(ctx: ScenarioContext, number: str) -> dict[str, Any] | None:
    return ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(number)}")


def _qualified_lead(ctx: ScenarioContext) -> dict[str, Any]:
    company_name = ctx.fake.company()
    lead_id = ctx.sales.create(
        "leads",
        {
            "subject": f"Audio for {company_name}",
            "firstname": ctx.fake.first_name(),
            "lastname": ctx.fake.last_name(),
            "companyname": company_name,
            "emailaddress1": ctx.fake.company_email(),
        },
    )
    created = ctx.sales.action(
        "QualifyLead",
        {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3},
        entity_set="leads",
        key=lead_id,
    )
    kinds = {item["@odata.type"].rsplit(".", 1)[-1]: item for item in (created or {}).get("value", [])}
    ctx.check(set(kinds) >= {"account", "contact", "opportunity"}, f"QualifyLead created {sorted(kinds)}")
    return {
        "lead": lead_id,
        "name": company_name,
        "account": kinds["account"]["accountid"],
        "contact": kinds["contact"]["contactid"],
    }


@scenario(
    "prospect-stays-in-sales",
    "A qualified lead's prospect account stays in Sales; it reaches SCM only once it becomes a customer",
)
def prospect_stays_in_sales(ctx: ScenarioContext) -> None:
    """Qualify a lead; number the account as a prospect: the customers map's reversed filter
    (customertypecode eq 3) keeps it, its edits and its contact out of SCM; as a customer it appears in SCM
    with the same number."""
    company = company_id(ctx)
    number = unique_number(ctx, "CRM-R")

    with ctx.step("A lead is qualified into an account, a contact and an opportunity"):
        lead = _qualified_lead(ctx)
        ctx.note("Qualify", "Sales", "account", lead["name"], "Prospect")

    with ctx.step("The numbered prospect stays in Sales: SCM has no customer of that number"):
        ctx.sales.update(
            "accounts",
            lead["account"],
            {
                "customertypecode": PROSPECT,
                "accountnumber": number,
                "msdyn_company@odata.bind": f"/cdm_companies({company})",
            },
        )
        account = ctx.sales.retrieve("accounts", lead["account"], select=["customertypecode", "accountnumber"])
        ctx.check(
            account["customertypecode"] == PROSPECT and account["accountnumber"] == number,
            "Sales has the numbered prospect",
            sales=account,
        )
        ctx.check(_scm_customer(ctx, number) is None, "SCM has no such customer", sales=account)
        filters = map_status(ctx, "customers-accounts").get("filters") or {}
        ctx.check(
            filters.get("sales") == "customertypecode eq 3",
            "the customers map only takes customers (reversed filter customertypecode eq 3)",
            scm=filters,
        )

    with ctx.step("Edits to the prospect and its contact stay in Sales"):
        ctx.sales.update(
            "accounts",
            lead["account"],
            {"name": f"{lead['name']} Holdings", "telephone1": "555-0505", "address1_city": "Tacoma"},
        )
        ctx.sales.update("contacts", lead["contact"], {"jobtitle": "Buyer"})
        account = ctx.sales.retrieve("accounts", lead["account"], select=["name", "telephone1"])
        ctx.check(account["name"] == f"{lead['name']} Holdings", "Sales has the edits", sales=account)
        ctx.check(_scm_customer(ctx, number) is None, "SCM still has no such customer", sales=account)
        contact = ctx.sales.retrieve(
            "contacts", lead["contact"], select=["lastname", "msdyn_sellable", "msdyn_contactpersonid"]
        )
        persons = ctx.scm.query(
            "CustomersV3",
            cross_company=True,
            select=["CustomerAccount"],
            filter=f"PartyType eq {q('Person')} and PersonLastName eq {q(contact['lastname'])}",
        )
        ctx.check(
            not contact.get("msdyn_sellable") and not persons,
            "the lead's contact is no SCM customer",
            sales=contact,
            scm=persons,
        )

    with ctx.step("The prospect becomes a customer and appears in SCM with the same number"):
        ctx.sales.update("accounts", lead["account"], customer_columns(ctx, DEFAULT_COMPANY))
        sales_row, scm_row = ctx.synced(
            sales=("accounts", f"accountid eq {lead['account']}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
            fields={
                "CustomerAccount": "accountnumber",
                "OrganizationName": "name",
                "PrimaryContactPhone": "telephone1",
                "AddressCity": "address1_city",
            },
        )
        ctx.check(
            scm_row["dataAreaId"] == DEFAULT_COMPANY and scm_row["CustomerGroupId"] == "10",
            "in usmf, customer group 10",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.note("Customer", "SCM", "customer", number, "group 10")


@scenario(
    "prospect-map-syncs-prospects",
    "With the example prospects map added, prospects reach SCM at once and become customers in place",
)
def prospect_map_syncs_prospects(ctx: ScenarioContext) -> None:
    """The user map scenarios/examples/maps/prospects-accounts.yaml sends numbered prospects to SCM (group 30):
    create and edit one in Sales and it follows in SCM; an unnumbered prospect stays; when it becomes a customer
    the shipped customers map takes over the same SCM customer, and SCM edits then come back to Sales."""
    if _bridge_has_map(ctx):
        _prospect_map_steps(ctx)
        return
    with contextlib.ExitStack() as cleanup:
        with ctx.step("The bridge has no prospects map: start a throwaway stack whose bridge loads the example"):
            inner = cleanup.enter_context(ctx.isolated([EXAMPLE_MAPS]))
        _prospect_map_steps(inner)


def _bridge_has_map(ctx: ScenarioContext) -> bool:
    if ctx.bridge is None:
        return False
    return any(m["id"] == PROSPECT_MAP for m in ctx.bridge.get("/api/maps").json())


def _prospect_map_steps(ctx: ScenarioContext) -> None:
    company = company_id(ctx)
    number = unique_number(ctx, "CRM-R")

    with ctx.step("The prospects map runs beside the shipped customers map"):
        status = map_status(ctx, PROSPECT_MAP)
        ctx.check(
            status["state"] == "Running" and status["direction"] == "sales_to_scm",
            "the prospects map runs, Sales to SCM",
            scm=status,
        )

    with ctx.step("A numbered prospect made in Sales appears in SCM as a customer in group 30"):
        name = ctx.fake.company()
        account_id = ctx.sales.create(
            "accounts",
            {
                "name": name,
                "accountnumber": number,
                "customertypecode": PROSPECT,
                "telephone1": "555-0606",
                "msdyn_company@odata.bind": f"/cdm_companies({company})",
            },
        )
        sales_row, scm_row = ctx.synced(
            sales=("accounts", f"accountid eq {account_id}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
            fields={
                "CustomerAccount": "accountnumber",
                "OrganizationName": "name",
                "PrimaryContactPhone": "telephone1",
            },
        )
        ctx.check(
            scm_row["CustomerGroupId"] == "30"
            and scm_row["dataAreaId"] == DEFAULT_COMPANY
            and sales_row["customertypecode"] == PROSPECT,
            "a usmf customer of group 30; still a prospect in Sales",
            sales=sales_row,
            scm=scm_row,
        )
        ctx.note("Prospect", "Sales", "account", number, "Prospect")
        ctx.note("Prospect", "SCM", "customer", number, "group 30")

    with ctx.step("Editing the prospect in Sales updates it in SCM"):
        ctx.sales.update("accounts", account_id, {"name": f"{name} Group", "address1_city": "Spokane"})
        ctx.synced(
            sales=("accounts", f"accountid eq {account_id}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
            fields={"OrganizationName": "name", "AddressCity": "address1_city"},
        )

    with ctx.step("A prospect without an account number stays in Sales"):
        unnumbered = ctx.fake.company()
        ctx.sales.create(
            "accounts",
            {
                "name": unnumbered,
                "customertypecode": PROSPECT,
                "msdyn_company@odata.bind": f"/cdm_companies({company})",
            },
        )
        found = ctx.scm.query(
            "CustomersV3", cross_company=True, select=["CustomerAccount"], filter=f"OrganizationName eq {q(unnumbered)}"
        )
        ctx.check(not found, "SCM has no customer of that name", scm=found)

    with ctx.step("The prospect becomes a customer of group 10: the same SCM customer moves to group 10"):
        ctx.sales.update("accounts", account_id, customer_columns(ctx, DEFAULT_COMPANY, group="10"))
        rows = ctx.scm.query(
            "CustomersV3",
            cross_company=True,
            select=["dataAreaId", "CustomerGroupId"],
            filter=f"CustomerAccount eq {q(number)}",
        )
        sales_row = ctx.sales.retrieve("accounts", account_id, select=["customertypecode"])
        ctx.check(
            len(rows) == 1 and rows[0]["CustomerGroupId"] == "10" and sales_row["customertypecode"] == CUSTOMER,
            "one SCM customer, now in group 10; a customer in Sales",
            sales=sales_row,
            scm=rows,
        )

    with ctx.step("SCM edits now come back to Sales, and it stays a customer"):
        ctx.scm.update(
            "CustomersV3",
            {"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": number},
            {"OrganizationName": f"{name} Inc"},
        )
        sales_row, scm_row = ctx.synced(
            sales=("accounts", f"accountid eq {account_id}"),
            scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
            fields={"OrganizationName": "name"},
        )
        ctx.check(sales_row["customertypecode"] == CUSTOMER, "still a customer in Sales", sales=sales_row, scm=scm_row)
        ctx.check(map_status(ctx, PROSPECT_MAP)["synced"] >= 2, "the prospects map counted its writes")
