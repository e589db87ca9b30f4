"""Salespeople working in mock Sales: leads, accounts, quotes and orders (the writes dual-write carries)."""

from __future__ import annotations

import random

from locust import between, task

from scenarios.load.common import CRM_NS, JSON_HEADERS, Reference, SandboxUser, unique, urls


class Salesperson(SandboxUser):
    """Creates and qualifies leads, adds prospects, browses accounts, and takes quotes to orders.

    Quotes and orders are mapped tables: with the maps running each of those writes goes through the
    bridge to SCM before Sales commits (live mode) or is drained later (async mode).
    """

    weight = 3
    wait_time = between(0.5, 2.0)
    host = "http://sales.invalid"  # every request uses an absolute URL from common.urls

    def on_start(self) -> None:
        self.sales = urls(self.environment)["sales"]
        self.reference = Reference.get(self.client, self.sales)

    @task(3)
    def lead(self) -> None:
        name = unique("Lead ")
        response = self.client.post(
            f"{self.sales}/leads",
            headers=JSON_HEADERS,
            name="Sales: create lead",
            json={"subject": f"Speakers for {name}", "firstname": "Load", "lastname": name, "companyname": name},
        )
        if not response.ok or random.random() < 0.5:
            return
        lead_id = response.headers.get("OData-EntityId", "").rsplit("(", 1)[-1].rstrip(")")
        self.client.post(
            f"{self.sales}/leads({lead_id})/{CRM_NS}.QualifyLead",
            headers=JSON_HEADERS,
            name="Sales: QualifyLead",
            json={"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3},
        )

    @task(2)
    def prospect(self) -> None:
        self.client.post(
            f"{self.sales}/accounts",
            headers=JSON_HEADERS,
            name="Sales: create prospect account",
            json={"name": unique("Prospect "), "customertypecode": 8, "telephone1": "555-0100"},
        )

    @task(3)
    def browse_accounts(self) -> None:
        self.client.get(
            f"{self.sales}/accounts",
            name="Sales: list accounts (filtered, paged)",
            headers={**JSON_HEADERS, "Prefer": "odata.maxpagesize=50"},
            params={
                "$select": "name,accountnumber,creditlimit,statecode",
                "$orderby": "name",
                "$filter": "statecode eq 0 and customertypecode eq 3",
            },
        )

    @task(1)
    def quote_to_order(self) -> None:
        ref = self.reference or Reference.get(self.client, self.sales)
        if ref is None:
            return
        self.reference = ref
        account = random.choice(ref["accounts"])
        lines = [
            {
                "productid@odata.bind": f"/products({ref['product']})",
                "quantity": random.randint(1, 3),
                **({"uomid@odata.bind": f"/uoms({ref['uom']})"} if ref["uom"] else {}),
            }
        ]
        created = self.client.post(
            f"{self.sales}/quotes",
            headers=JSON_HEADERS,
            name="Sales: create quote with line",
            json={
                "name": unique("Load quote "),
                "customerid_account@odata.bind": f"/accounts({account})",
                "pricelevelid@odata.bind": f"/pricelevels({ref['price_list']})",
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({ref['currency']})",
                "quote_details": lines,
            },
        )
        if not created.ok:
            return
        quote_id = created.headers.get("OData-EntityId", "").rsplit("(", 1)[-1].rstrip(")")
        activated = self.client.patch(
            f"{self.sales}/quotes({quote_id})",
            headers=JSON_HEADERS,
            name="Sales: activate quote",
            json={"statecode": 1, "statuscode": 2},
        )
        if not activated.ok or random.random() < 0.3:
            return
        self.client.post(
            f"{self.sales}/ConvertQuoteToSalesOrder",
            headers=JSON_HEADERS,
            name="Sales: ConvertQuoteToSalesOrder",
            json={"QuoteId": quote_id, "ColumnSet": {"AllColumns": True}},
        )
