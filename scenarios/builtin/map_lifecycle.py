"""Table-map lifecycle as dual-write has it: a paused map queues and catches up; a map started on existing
data copies it across (initial sync). Both scenarios leave the maps running as they found them."""

from __future__ import annotations

import json
from typing import Any

from sandbox.wellknown import DEFAULT_COMPANY
from scenarios import scenario
from scenarios.builtin._helpers import (
    Customer,
    customer_columns,
    customer_rows,
    map_restored,
    map_status,
    new_customer,
    q,
    unique_item,
    unique_number,
)
from scenarios.context import ScenarioContext

MAP = "customers-accounts"


def _mentions(rows: list[dict[str, Any]], *numbers: str) -> set[str]:
    """Which of ``numbers`` appear in the keys or images of queue / catch-up error rows."""
    text = json.dumps(rows, default=str)
    return {number for number in numbers if number in text}


def _create_in_scm(ctx: ScenarioContext, prefix: str, company: str = DEFAULT_COMPANY) -> str:
    number = unique_number(ctx, prefix)
    ctx.scm.create(
        "CustomersV3",
        {
            "dataAreaId": company,
            "CustomerAccount": number,
            "OrganizationName": ctx.fake.company(),
            "CustomerGroupId": "20",
            "SalesCurrencyCode": "USD",
        },
    )
    return number


def _agree(ctx: ScenarioContext, number: str, fields: dict[str, str] | None = None) -> tuple[dict, dict]:
    return ctx.synced(
        sales=("accounts", f"accountnumber eq {q(number)}"),
        scm=("CustomersV3", f"CustomerAccount eq {q(number)}"),
        fields=fields or {"CustomerAccount": "accountnumber", "OrganizationName": "name"},
    )


@scenario("paused-map-catches-up", "A paused map queues changes from both sides and replays them in order when resumed")
def paused_map_catches_up(ctx: ScenarioContext) -> None:
    """Pause the customers map: changes made on either side stay there and are listed as queued. Resume with
    catch-up: every change is replayed in order and both sides agree. Resume by skipping to live sync: the
    queue becomes catch-up errors, live sync works at once, and retrying the errors applies them."""
    with map_restored(ctx, MAP):
        with ctx.step("Two customers exist on both sides; the customers map is Running"):
            edited_in_sales = new_customer(ctx, "CRM-P")
            edited_in_scm = new_customer(ctx, "CRM-P")
            ctx.check(map_status(ctx, MAP)["state"] == "Running", "the map runs")

        with ctx.step("Pause the customers map"):
            status = ctx.map_action(MAP, "pause")
            ctx.check(status["state"] == "Paused", f"the map is Paused ({status['state']})", scm=status)

        with ctx.step("While paused, changes on both sides stay on their side and are listed as queued"):
            created_in_sales = unique_number(ctx, "CRM-Q")
            ctx.sales.create(
                "accounts",
                {
                    "name": ctx.fake.company(),
                    "accountnumber": created_in_sales,
                    **customer_columns(ctx, DEFAULT_COMPANY),
                },
            )
            ctx.sales.update("accounts", edited_in_sales.account_id, {"name": "Renamed once"})
            ctx.sales.update(
                "accounts", edited_in_sales.account_id, {"name": "Renamed twice", "telephone1": "555-0101"}
            )
            created_in_scm = _create_in_scm(ctx, "FO-Q")
            ctx.scm.update("CustomersV3", edited_in_scm.scm_key, {"PrimaryContactPhone": "555-0202"})
            ctx.check(
                ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(created_in_sales)}") is None,
                "the account made in Sales is not in SCM yet",
            )
            ctx.check(
                ctx.sales_row("accounts", f"accountnumber eq {q(created_in_scm)}") is None,
                "the customer made in SCM is not in Sales yet",
            )
            sales_row, scm_row = customer_rows(ctx, edited_in_sales, ["name"], ["OrganizationName"])
            ctx.check(
                scm_row["OrganizationName"] == edited_in_sales.name,
                "SCM keeps the old name",
                sales=sales_row,
                scm=scm_row,
            )
            sales_row, scm_row = customer_rows(ctx, edited_in_scm, ["telephone1"], ["PrimaryContactPhone"])
            ctx.check(sales_row["telephone1"] != "555-0202", "Sales keeps the old phone", sales=sales_row, scm=scm_row)
            queued = ctx.bridge_client().get(f"/api/maps/{MAP}/queued", params={"limit": 1000}).json()
            expected = {created_in_sales, edited_in_sales.number, created_in_scm, edited_in_scm.number}
            ctx.check(
                _mentions(queued, *expected) == expected,
                f"the queue lists the four changed customers (found {_mentions(queued, *expected)})",
                scm=queued[:5],
            )
            ctx.check(map_status(ctx, MAP)["queued"] >= 5, "the map counts at least 5 queued changes")

        with ctx.step("Resume with catch-up: the queue is replayed in order and both sides agree"):
            status = ctx.map_action(MAP, "resume", mode="catchup")
            ctx.check(status["state"] == "Running" and status["queued"] == 0, "Running with an empty queue", scm=status)
            _agree(ctx, created_in_sales)
            _agree(ctx, created_in_scm)
            sales_row, scm_row = _agree(
                ctx, edited_in_sales.number, {"OrganizationName": "name", "PrimaryContactPhone": "telephone1"}
            )
            ctx.check(
                scm_row["OrganizationName"] == "Renamed twice",
                "the last of the queued renames wins",
                sales=sales_row,
                scm=scm_row,
            )
            sales_row, scm_row = _agree(ctx, edited_in_scm.number, {"PrimaryContactPhone": "telephone1"})
            ctx.check(
                sales_row["telephone1"] == "555-0202", "the SCM phone change arrived", sales=sales_row, scm=scm_row
            )
            ctx.note("Catch-up", "Sales", "account", created_in_sales, "replayed")
            ctx.note("Catch-up", "SCM", "customer", created_in_scm, "replayed")

        with ctx.step("Pause, change, and skip to live sync keeping the queue: the changes become catch-up errors"):
            ctx.map_action(MAP, "pause")
            skipped = unique_number(ctx, "CRM-K")
            ctx.sales.create(
                "accounts",
                {"name": ctx.fake.company(), "accountnumber": skipped, **customer_columns(ctx, DEFAULT_COMPANY)},
            )
            status = ctx.map_action(MAP, "resume", mode="skip_keep")
            ctx.check(status["state"] == "Running", "the map runs again", scm=status)
            ctx.check(
                ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(skipped)}") is None,
                "the skipped account is not in SCM",
            )
            errors = ctx.bridge_client().get(f"/api/maps/{MAP}/catchup-errors", params={"limit": 1000}).json()
            mine = [e for e in errors if skipped in json.dumps(e, default=str)]
            ctx.check(
                len(mine) == 1 and mine[0]["status"] == "Error",
                "the skipped change is a catch-up error",
                scm=mine or errors[:3],
            )

        with ctx.step("Live sync works at once after skipping"):
            live = new_customer(ctx, "CRM-V")
            ctx.note("Live again", "Sales", "account", live.number, "Customer")

        with ctx.step("Retrying the catch-up errors applies them; both sides agree"):
            response = ctx.bridge_client().post(f"/api/maps/{MAP}/catchup-errors/retry", json={"ids": [mine[0]["id"]]})
            ctx.check(
                response.status_code == 200 and response.json()["completed"] == 1,
                f"the retry completed: {response.text}",
            )
            _agree(ctx, skipped)
            errors = ctx.bridge_client().get(f"/api/maps/{MAP}/catchup-errors", params={"limit": 1000}).json()
            mine = [e for e in errors if e["id"] == mine[0]["id"]]
            ctx.check(bool(mine) and mine[0]["status"] == "Completed", "the catch-up error is Completed", scm=mine)


@scenario(
    "initial-sync-of-existing-data",
    "Starting a map copies what already exists on each side across; the master side settles differences",
)
def initial_sync_of_existing_data(ctx: ScenarioContext) -> None:
    """Stop the customers and products maps; create and change rows on each side while they are stopped
    (nothing crosses); run them again with initial sync: rows on one side only are copied to the other,
    rows that differ are settled by the master (Sales for customers), and live sync resumes."""
    with map_restored(ctx, MAP), map_restored(ctx, "products"):
        with ctx.step("A customer exists on both sides"):
            shared: Customer = new_customer(ctx, "CRM-I")

        with ctx.step("Stop the customers and products maps"):
            for map_id in (MAP, "products"):
                status = ctx.map_action(map_id, "stop")
                ctx.check(status["state"] == "Not running", f"{map_id} is Not running", scm=status)

        with ctx.step("While stopped, data made or changed on one side stays there"):
            in_sales = unique_number(ctx, "CRM-I")
            ctx.sales.create(
                "accounts",
                {"name": ctx.fake.company(), "accountnumber": in_sales, **customer_columns(ctx, DEFAULT_COMPANY)},
            )
            in_scm = _create_in_scm(ctx, "FO-I")
            ctx.sales.update("accounts", shared.account_id, {"name": "Name from Sales"})
            ctx.scm.update("CustomersV3", shared.scm_key, {"OrganizationName": "Name from SCM"})
            item = unique_item(ctx, "IS-")
            ctx.scm.create(
                "ReleasedProductsV2",
                {
                    "dataAreaId": DEFAULT_COMPANY,
                    "ItemNumber": item,
                    "ProductNumber": item,
                    "ProductName": "Initial sync speaker",
                    "ProductType": "Item",
                    "SalesUnitSymbol": "ea",
                    "InventoryUnitSymbol": "ea",
                    "PurchaseUnitSymbol": "ea",
                    "SalesPrice": 321.5,
                    "CurrencyCode": "USD",
                    "DefaultSalesSiteId": "1",
                    "DefaultSalesWarehouseId": "11",
                },
            )
            ctx.check(ctx.scm_row("CustomersV3", f"CustomerAccount eq {q(in_sales)}") is None, "not in SCM")
            ctx.check(ctx.sales_row("accounts", f"accountnumber eq {q(in_scm)}") is None, "not in Sales")
            ctx.check(ctx.sales_row("products", f"msdyn_productnumber eq {q(item)}") is None, "product not in Sales")
            sales_row, scm_row = customer_rows(ctx, shared, ["name"], ["OrganizationName"])
            ctx.check(
                sales_row["name"] != scm_row["OrganizationName"],
                "the shared customer now differs",
                sales=sales_row,
                scm=scm_row,
            )

        with ctx.step("Run the customers map with initial sync, Sales as master: everything is copied across"):
            status = ctx.map_action(MAP, "run", initial_sync=True, master="sales")
            ctx.check(
                status["state"] == "Running" and status["initial_sync_done"], "Running after initial sync", scm=status
            )
            _agree(ctx, in_sales)
            _agree(ctx, in_scm)
            sales_row, scm_row = _agree(ctx, shared.number)
            ctx.check(
                scm_row["OrganizationName"] == "Name from Sales",
                "the master (Sales) settled the difference",
                sales=sales_row,
                scm=scm_row,
            )
            report = ctx.bridge_client().get(f"/api/maps/{MAP}/initial-sync").json()["last"]
            ctx.check(
                report is not None and report["to_sales"] >= 1 and report["to_scm"] >= 2 and report["error_count"] == 0,
                f"the initial sync report: {report}",
                scm=report,
            )
            ctx.note("Initial sync", "Sales", "account", in_sales, "copied to SCM")
            ctx.note("Initial sync", "SCM", "customer", in_scm, "copied to Sales")

        with ctx.step("Run the products map with initial sync: the new product arrives in Sales with its price"):
            status = ctx.map_action("products", "run", initial_sync=True, master="scm")
            ctx.check(status["state"] == "Running", "products map Running", scm=status)
            product = ctx.wait_for(
                lambda: ctx.sales_row("products", f"msdyn_productnumber eq {q(item)}"), f"product {item} in Sales"
            )
            ctx.check(abs(float(product.get("price") or 0) - 321.5) < 0.01, "with the SCM sales price", sales=product)
            ctx.note("Initial sync", "SCM", "released product", item, "copied to Sales", 321.5)

        with ctx.step("Live sync works again after the initial sync"):
            ctx.scm.update(
                "CustomersV3",
                {"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": in_sales},
                {"PrimaryContactPhone": "555-0303"},
            )
            _agree(ctx, in_sales, {"PrimaryContactPhone": "telephone1"})
