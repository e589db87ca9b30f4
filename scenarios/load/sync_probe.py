"""The sync probe: writes on one side, polls the other, and reports the propagation latency as ``SYNC``.

Two directions of the ``customers-accounts`` map, each its own ``SYNC`` entry in the Locust stats (so the
percentiles of the report are the percentiles of propagation latency):

* ``customers-accounts scm->sales``: a customer created in SCM until its account is readable in Sales;
* ``customers-accounts sales->scm``: a phone number changed on that account in Sales until SCM shows it.

In live mode the other side has the row when the write returns (latency is about one poll); in async
mode it is the bridge's drain delay. A propagation that takes longer than ``SANDBOX_SYNC_TIMEOUT`` seconds
(default 15) is a failure of its ``SYNC`` entry.
"""

from __future__ import annotations

import random
import time

from locust import constant, task

from scenarios.load.common import COMPANY, JSON_HEADERS, SandboxUser, fire_sync, poll_until, quoted, unique, urls


class SyncProbe(SandboxUser):
    """One probe per test (``fixed_count``), whatever the number of users."""

    fixed_count = 1
    wait_time = constant(0.5)
    host = "http://probe.invalid"

    def on_start(self) -> None:
        found = urls(self.environment)
        self.sales, self.scm = found["sales"], found["scm"]
        self.accounts: list[tuple[str, str]] = []  # (Sales accountid, CustomerAccount) of the probe's customers

    def _sales_account(self, number: str) -> str | None:
        response = self.client.get(
            f"{self.sales}/accounts",
            headers=JSON_HEADERS,
            name="[probe] poll Sales account",
            params={"$select": "accountid", "$filter": f"accountnumber eq {quoted(number)}"},
        )
        rows = response.json().get("value", []) if response.ok else []
        return rows[0]["accountid"] if rows else None

    @task(2)
    def scm_to_sales(self) -> None:
        number = unique("LP-")
        started = time.perf_counter()
        created = self.client.post(
            f"{self.scm}/CustomersV3",
            headers=JSON_HEADERS,
            name="[probe] SCM: create customer",
            json={
                "dataAreaId": COMPANY,
                "CustomerAccount": number,
                "OrganizationName": f"Probe {number}",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
        )
        if not created.ok:
            return  # the write failed (its own failure is in the stats); nothing to propagate
        account_id = poll_until(lambda: self._sales_account(number))
        if account_id is None:
            fire_sync(
                self.environment,
                "customers-accounts scm->sales",
                started,
                TimeoutError(f"customer {number} not in Sales"),
            )
            return
        fire_sync(self.environment, "customers-accounts scm->sales", started)
        self.accounts.append((account_id, number))
        del self.accounts[:-20]

    @task(1)
    def sales_to_scm(self) -> None:
        if not self.accounts:
            return
        account_id, number = random.choice(self.accounts)
        phone = f"555-{random.randint(0, 9999):04d}-{random.randint(0, 999):03d}"
        started = time.perf_counter()
        updated = self.client.patch(
            f"{self.sales}/accounts({account_id})",
            headers=JSON_HEADERS,
            name="[probe] Sales: update account phone",
            json={"telephone1": phone},
        )
        if not updated.ok:
            return
        key = f"dataAreaId={quoted(COMPANY)},CustomerAccount={quoted(number)}"

        def arrived() -> bool:
            response = self.client.get(
                f"{self.scm}/CustomersV3({key})",
                headers=JSON_HEADERS,
                name="[probe] poll SCM customer",
                params={"$select": "PrimaryContactPhone"},
            )
            return response.ok and response.json().get("PrimaryContactPhone") == phone

        if poll_until(arrived):
            fire_sync(self.environment, "customers-accounts sales->scm", started)
        else:
            fire_sync(
                self.environment,
                "customers-accounts sales->scm",
                started,
                TimeoutError(f"phone of {number} not in SCM"),
            )
