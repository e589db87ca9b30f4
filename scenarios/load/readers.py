"""Mixed read traffic with typical OData queries on both mocks (dashboards, list views, lookups)."""

from __future__ import annotations

import random

from locust import between, task

from scenarios.load.common import COMPANY, CUSTOMERS, JSON_HEADERS, SandboxUser, quoted, urls


class Reader(SandboxUser):
    """List views, lookups by key, counts and expands: the read side of an integration's day."""

    weight = 3
    wait_time = between(0.2, 1.0)
    host = "http://reader.invalid"

    def on_start(self) -> None:
        found = urls(self.environment)
        self.sales, self.scm = found["sales"], found["scm"]

    @task(3)
    def sales_accounts(self) -> None:
        self.client.get(
            f"{self.sales}/accounts",
            name="Sales: accounts with primary contact ($expand)",
            headers={**JSON_HEADERS, "Prefer": "odata.maxpagesize=20"},
            params={
                "$select": "name,accountnumber",
                "$filter": "statecode eq 0",
                "$expand": "primarycontactid($select=fullname)",
                "$orderby": "name",
            },
        )

    @task(2)
    def sales_orders(self) -> None:
        self.client.get(
            f"{self.sales}/salesorders",
            name="Sales: recent orders",
            headers={**JSON_HEADERS, "Prefer": "odata.maxpagesize=25"},
            params={"$select": "name,totalamount,msdyn_processingstatus", "$orderby": "createdon desc"},
        )

    @task(1)
    def sales_count(self) -> None:
        self.client.get(f"{self.sales}/leads/$count", name="Sales: count leads", headers=JSON_HEADERS)

    @task(3)
    def scm_customers(self) -> None:
        self.client.get(
            f"{self.scm}/CustomersV3",
            name="SCM: customers of a group (paged)",
            headers=JSON_HEADERS,
            params={
                "$select": "CustomerAccount,OrganizationName,CreditLimit",
                "$filter": f"CustomerGroupId eq {quoted(random.choice(['10', '20', '30']))}",
                "$orderby": "CustomerAccount",
                "$top": "50",
                "$skip": str(random.randint(0, 2) * 50),
            },
        )

    @task(2)
    def scm_customer(self) -> None:
        account = random.choice(CUSTOMERS)
        self.client.get(
            f"{self.scm}/CustomersV3(dataAreaId={quoted(COMPANY)},CustomerAccount={quoted(account)})",
            name="SCM: customer by key",
            headers=JSON_HEADERS,
        )

    @task(2)
    def scm_invoices(self) -> None:
        self.client.get(
            f"{self.scm}/SalesInvoiceHeadersV2",
            name="SCM: invoices with count",
            headers=JSON_HEADERS,
            params={
                "$select": "InvoiceNumber,InvoiceCustomerAccountNumber,TotalInvoiceAmount",
                "$count": "true",
                "$top": "20",
                "$orderby": "InvoiceNumber desc",
            },
        )

    @task(1)
    def scm_on_hand(self) -> None:
        self.client.get(
            f"{self.scm}/WarehousesOnHandV2",
            name="SCM: on-hand of stocked items",
            headers=JSON_HEADERS,
            params={
                "$filter": f"AvailableOnHandQuantity gt 0 and dataAreaId eq {quoted(COMPANY)}",
                "$select": "ItemNumber,InventoryWarehouseId,AvailableOnHandQuantity",
            },
        )
