"""``sandbox seed``: a deterministic volume of realistic data, written through the public APIs of a stack.

Customers and products are created in SCM (the master of both in prospect-to-cash) and reach Sales through
the bridge; orders are created in SCM with lines. The same seed gives the same rows. Writes go in ``$batch``
requests (one change set per record with its lines) so a large volume stays quick.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faker import Faker

from sandbox.clients import BatchOp, ScmClient
from sandbox.wellknown import DEFAULT_COMPANY

COMPANY = DEFAULT_COMPANY
BATCH = 100


@dataclass
class VolumeReport:
    customers: int = 0
    products: int = 0
    orders: int = 0
    failed: int = 0
    first_error: str | None = None


def seed_volume(
    scm: ScmClient,
    *,
    accounts: int,
    products: int,
    orders: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
) -> VolumeReport:
    """Create ``accounts`` customers, ``products`` released products and ``orders`` orders (2-4 lines each)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    report = VolumeReport()
    tick = progress or (lambda _n: None)
    prefix = f"S{seed:02d}"

    customer_ids = [f"{prefix}-C{index:06d}" for index in range(1, accounts + 1)]
    ops = [
        BatchOp.post(
            "CustomersV3",
            {
                "dataAreaId": COMPANY,
                "CustomerAccount": number,
                "OrganizationName": fake.company(),
                "CustomerGroupId": rng.choice(["10", "20", "30"]),
                "SalesCurrencyCode": "USD",
                "PartyType": "Organization",
                "AddressCity": fake.city(),
                "AddressStreet": fake.street_address(),
                "CreditLimit": rng.choice([0, 50000, 100000]),
            },
        )
        for number in customer_ids
    ]
    report.customers = _send(scm, ops, report, tick)

    item_ids = [f"{prefix}-I{index:05d}" for index in range(1, products + 1)]
    ops = [
        BatchOp.post(
            "ReleasedProductsV2",
            {
                "dataAreaId": COMPANY,
                "ItemNumber": number,
                "ProductNumber": number,
                "ProductName": f"{fake.color_name()} {rng.choice(['Speaker', 'Amplifier', 'Receiver', 'Subwoofer', 'Cable'])}",
                "SalesUnitSymbol": "ea",
                "InventoryUnitSymbol": "ea",
                "SalesPrice": round(rng.uniform(20, 900), 2),
                "DefaultSalesSiteId": "1",
                "DefaultSalesWarehouseId": "11",
            },
        )
        for number in item_ids
    ]
    report.products = _send(scm, ops, report, tick)

    catalogue = item_ids or [row["ItemNumber"] for row in scm.query("ReleasedProductsV2", select=["ItemNumber"])]
    buyers = customer_ids or [row["CustomerAccount"] for row in scm.query("CustomersV3", select=["CustomerAccount"])]
    order_sets: list[list[BatchOp]] = []
    for index in range(1, orders + 1):
        number = f"{prefix}-O{index:06d}"
        header = BatchOp.post(
            "SalesOrderHeadersV2",
            {
                "dataAreaId": COMPANY,
                "SalesOrderNumber": number,
                "OrderingCustomerAccountNumber": rng.choice(buyers),
                "CurrencyCode": "USD",
                "SalesOrderName": fake.catch_phrase()[:60],
            },
        )
        lines = [
            BatchOp.post(
                "SalesOrderLines",
                {
                    "dataAreaId": COMPANY,
                    "SalesOrderNumber": number,
                    "ItemNumber": rng.choice(catalogue),
                    "OrderedSalesQuantity": rng.randint(1, 10),
                    "LineCreationSequenceNumber": line,
                },
            )
            for line in range(1, rng.randint(2, 4) + 1)
        ]
        order_sets.append([header, *lines])
    report.orders = _send_sets(scm, order_sets, report, tick)
    return report


def _send(scm: ScmClient, ops: list[BatchOp], report: VolumeReport, tick: Callable[[int], None]) -> int:
    written = 0
    for start in range(0, len(ops), BATCH):
        chunk = ops[start : start + BATCH]
        results = scm.batch(chunk)
        for result in results:
            if result.ok:
                written += 1
            else:
                _failed(report, result)
        tick(len(chunk))
    return written


def _send_sets(scm: ScmClient, sets: list[list[BatchOp]], report: VolumeReport, tick: Callable[[int], None]) -> int:
    written = 0
    per_request = max(1, BATCH // 4)
    for start in range(0, len(sets), per_request):
        chunk = sets[start : start + per_request]
        results = scm.batch(chunk)
        failed_sets = sum(1 for r in results if not r.ok)
        for result in results:
            if not result.ok:
                _failed(report, result)
        written += len(chunk) - failed_sets
        tick(len(chunk))
    return written


def _failed(report: VolumeReport, result: Any) -> None:
    report.failed += 1
    if report.first_error is None:
        error = result.error()
        report.first_error = error.message if error else f"status {result.status}"
