"""Order processing in mock SCM: orders confirmed, picked, delivered and invoiced (synced to Sales)."""

from __future__ import annotations

import random

from locust import between, task

from scenarios.load.common import COMPANY, CUSTOMERS, JSON_HEADERS, SCM_NS, SandboxUser, quoted, unique, urls

#: a service item: no on-hand to run out of, so the whole process can repeat for as long as the test runs
SERVICE_ITEM = "S0001"
STOCKED_ITEMS = ["D0001", "D0003", "L0001"]


class OrderProcessor(SandboxUser):
    """Creates sales orders with lines and posts them through confirmation, picking, delivery and invoice."""

    weight = 2
    wait_time = between(0.5, 2.0)
    host = "http://scm.invalid"

    def on_start(self) -> None:
        self.scm = urls(self.environment)["scm"]

    def _order(self, items: list[str]) -> str | None:
        number = unique("LD-", 12)
        body = {
            "dataAreaId": COMPANY,
            "SalesOrderNumber": number,
            "CurrencyCode": "USD",
            "OrderingCustomerAccountNumber": random.choice(CUSTOMERS),
            "SalesOrderName": "Load test order",
        }
        response = self.client.post(
            f"{self.scm}/SalesOrderHeadersV2", headers=JSON_HEADERS, name="SCM: create order", json=body
        )
        if not response.ok:
            return None
        for line, item in enumerate(items, 1):
            self.client.post(
                f"{self.scm}/SalesOrderLines",
                headers=JSON_HEADERS,
                name="SCM: create order line",
                json={
                    "dataAreaId": COMPANY,
                    "SalesOrderNumber": number,
                    "ItemNumber": item,
                    "OrderedSalesQuantity": random.randint(1, 2),
                    "LineCreationSequenceNumber": line,
                },
            )
        return number

    def _action(self, number: str, action: str) -> bool:
        path = f"{self.scm}/SalesOrderHeadersV2(dataAreaId={quoted(COMPANY)},SalesOrderNumber={quoted(number)})"
        response = self.client.post(f"{path}/{SCM_NS}.{action}", headers=JSON_HEADERS, json={}, name=f"SCM: {action}")
        return response.ok

    @task(2)
    def order_to_invoice(self) -> None:
        number = self._order([SERVICE_ITEM])
        if number is None:
            return
        for action in ("Confirm", "PostPickingList", "PostPackingSlip", "PostInvoice"):
            if not self._action(number, action):
                return

    @task(1)
    def order_only(self) -> None:
        self._order(random.sample(STOCKED_ITEMS, 2))

    @task(2)
    def open_orders(self) -> None:
        self.client.get(
            f"{self.scm}/SalesOrderHeadersV2",
            headers=JSON_HEADERS,
            name="SCM: list open orders (filtered, paged)",
            params={
                "$select": "SalesOrderNumber,OrderingCustomerAccountNumber,SalesOrderStatus",
                "$filter": f"SalesOrderStatus eq {SCM_NS}.SalesStatus'Backorder'",
                "$orderby": "SalesOrderNumber desc",
                "$top": "25",
            },
        )
