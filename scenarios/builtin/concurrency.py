"""Edits to the same customer from both apps: interleaved edits all land, the last write wins, nothing echoes,
and edits made on both sides in the same window (while the map could not sync them) converge."""

from __future__ import annotations

from collections import Counter

from scenarios import scenario
from scenarios.builtin._helpers import Customer, customer_rows, map_restored, new_customer
from scenarios.context import ScenarioContext

MAP = "customers-accounts"
SALES_COLUMNS = ["name", "telephone1", "description", "address1_city", "emailaddress1"]
SCM_COLUMNS = ["OrganizationName", "PrimaryContactPhone", "SalesMemo", "AddressCity", "PrimaryContactEmail"]
PAIRS = dict(zip(SCM_COLUMNS, SALES_COLUMNS, strict=True))


def _writes(ctx: ScenarioContext, customer: Customer) -> Counter:
    """How many writes the bridge made for this customer, per direction (its trace log)."""
    traces = ctx.bridge_client().get(f"/api/maps/{MAP}/traces", params={"key": customer.number, "limit": 1000}).json()
    return Counter(t["direction"] for t in traces if t["ok"])


def _both(ctx: ScenarioContext, customer: Customer, expected: dict[str, str]) -> None:
    """Both sides hold ``expected`` (SCM field -> value) for the customer."""
    sales_row, scm_row = customer_rows(ctx, customer, SALES_COLUMNS, SCM_COLUMNS)
    wrong = {
        f: (scm_row.get(f), sales_row.get(PAIRS[f]))
        for f, v in expected.items()
        if scm_row.get(f) != v or sales_row.get(PAIRS[f]) != v
    }
    ctx.check(not wrong, f"expected {expected}; differing (SCM, Sales): {wrong}", sales=sales_row, scm=scm_row)


@scenario(
    "concurrent-edits-on-both-sides",
    "Edits to one customer from both apps: all land, the last write wins, no echo, and both sides converge",
)
def concurrent_edits(ctx: ScenarioContext) -> None:
    """Interleaved edits of different fields from Sales and SCM all arrive on both sides; the same field
    edited on one side and then the other ends with the last value on both; each edit is written across
    once and never echoed back; edits made on both sides in the same window (the map paused, so neither
    could see the other's) converge when the map catches up: each side keeps the other's untouched fields."""
    with ctx.step("A customer exists on both sides"):
        customer = new_customer(ctx, "CRM-W")

    with ctx.step("Interleaved edits of different fields from both sides all arrive on both sides"):
        ctx.sales.update("accounts", customer.account_id, {"telephone1": "555-0701"})
        ctx.scm.update("CustomersV3", customer.scm_key, {"SalesMemo": "memo from SCM"})
        ctx.sales.update("accounts", customer.account_id, {"address1_city": "Bellevue"})
        ctx.scm.update("CustomersV3", customer.scm_key, {"PrimaryContactEmail": "ap@example.com"})
        _both(
            ctx,
            customer,
            {
                "PrimaryContactPhone": "555-0701",
                "SalesMemo": "memo from SCM",
                "AddressCity": "Bellevue",
                "PrimaryContactEmail": "ap@example.com",
            },
        )

    with ctx.step("The same field edited in Sales, then SCM, then Sales: the last value wins on both sides"):
        ctx.sales.update("accounts", customer.account_id, {"name": "First (Sales)"})
        ctx.scm.update("CustomersV3", customer.scm_key, {"OrganizationName": "Second (SCM)"})
        _both(ctx, customer, {"OrganizationName": "Second (SCM)"})
        ctx.sales.update("accounts", customer.account_id, {"name": "Third (Sales)"})
        _both(ctx, customer, {"OrganizationName": "Third (Sales)", "SalesMemo": "memo from SCM"})

    with ctx.step("Each edit is written across exactly once and never echoed back"):
        before = _writes(ctx, customer)
        ctx.sales.update("accounts", customer.account_id, {"telephone1": "555-0702"})
        after_sales = _writes(ctx, customer)
        ctx.scm.update("CustomersV3", customer.scm_key, {"PrimaryContactPhone": "555-0703"})
        after_scm = _writes(ctx, customer)
        ctx.check(
            after_sales - before == Counter({"to_scm": 1}) and after_scm - after_sales == Counter({"to_sales": 1}),
            f"one write per edit (Sales edit: {dict(after_sales - before)}, SCM edit: {dict(after_scm - after_sales)})",
        )
        _both(ctx, customer, {"PrimaryContactPhone": "555-0703"})

    with map_restored(ctx, MAP):
        with ctx.step("Both sides edit the customer in the same window (the map paused)"):
            ctx.map_action(MAP, "pause")
            ctx.sales.update("accounts", customer.account_id, {"telephone1": "555-0704", "name": "Renamed in Sales"})
            ctx.scm.update(
                "CustomersV3", customer.scm_key, {"SalesMemo": "edited in SCM", "OrganizationName": "Renamed in SCM"}
            )
            sales_row, scm_row = customer_rows(ctx, customer, SALES_COLUMNS, SCM_COLUMNS)
            ctx.check(
                sales_row["name"] == "Renamed in Sales" and scm_row["OrganizationName"] == "Renamed in SCM",
                "each side has its own edits",
                sales=sales_row,
                scm=scm_row,
            )

        with ctx.step("When the map catches up, both sides converge and keep each side's untouched edits"):
            status = ctx.map_action(MAP, "resume", mode="catchup")
            ctx.check(status["state"] == "Running", "the map runs", scm=status)
            sales_row, scm_row = customer_rows(ctx, customer, SALES_COLUMNS, SCM_COLUMNS)
            differing = {
                f: (scm_row.get(f), sales_row.get(c)) for f, c in PAIRS.items() if scm_row.get(f) != sales_row.get(c)
            }
            ctx.check(
                not differing, f"both sides agree (differing SCM vs Sales: {differing})", sales=sales_row, scm=scm_row
            )
            ctx.check(
                scm_row["PrimaryContactPhone"] == "555-0704" and scm_row["SalesMemo"] == "edited in SCM",
                "the phone edited only in Sales and the memo edited only in SCM both survive",
                sales=sales_row,
                scm=scm_row,
            )
            ctx.check(
                scm_row["OrganizationName"] in ("Renamed in Sales", "Renamed in SCM"),
                "the name edited on both sides is one of the two edits",
                sales=sales_row,
                scm=scm_row,
            )
