"""An example of your own scenario file: run it with

    sandbox scenario run scenarios/examples/my_scenario.py            # fresh in-process sandbox
    sandbox scenario run scenarios/examples/my_scenario.py --sales-url http://127.0.0.1:5101 \\
        --scm-url http://127.0.0.1:5102 --bridge-url http://127.0.0.1:5103   # against `sandbox up`

Each ``ctx.step`` is one row of the report; ``ctx.synced`` waits until both apps hold the record and agree on
the fields (SCM field -> Sales column); ``ctx.check`` fails the step with both records in the report.
"""

from __future__ import annotations

from sandbox.wellknown import DEFAULT_COMPANY
from scenarios import scenario
from scenarios.context import ScenarioContext


@scenario("my-customer-round-trip", "A customer made in SCM shows up in Sales; a rename in Sales goes back")
def run(ctx: ScenarioContext) -> None:
    # A key of our own that neither app has yet (runs against long-lived servers must not collide).
    number = f"MY-{ctx.rng.randint(10000, 99999)}"
    while ctx.scm_row("CustomersV3", f"CustomerAccount eq '{number}'") is not None:
        number = f"MY-{ctx.rng.randint(10000, 99999)}"

    with ctx.step("Create a customer in SCM; it appears in Sales"):
        ctx.scm.create(
            "CustomersV3",
            {
                "dataAreaId": DEFAULT_COMPANY,
                "CustomerAccount": number,
                "OrganizationName": ctx.fake.company(),
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
        )
        account, customer = ctx.synced(
            sales=("accounts", f"accountnumber eq '{number}'"),
            scm=("CustomersV3", f"CustomerAccount eq '{number}'"),
            fields={"CustomerAccount": "accountnumber", "OrganizationName": "name"},
        )
        ctx.check(account["customertypecode"] == 3, "it is a customer in Sales", sales=account, scm=customer)
        ctx.note("Create", "SCM", "customer", number, customer["CustomerGroupId"])

    with ctx.step("Rename it in Sales; SCM has the new name"):
        ctx.sales.update("accounts", account["accountid"], {"name": "Renamed by my scenario"})
        ctx.synced(
            sales=("accounts", f"accountnumber eq '{number}'"),
            scm=("CustomersV3", f"CustomerAccount eq '{number}'"),
            fields={"OrganizationName": "name"},
        )
