"""``sandbox seed``: a deterministic volume of realistic data, written through the public APIs of a stack.

Customers and products are created in SCM (the master of both in prospect-to-cash) and reach Sales through
the bridge; orders are created in SCM with lines. The same seed gives the same rows. Writes go in ``$batch``
requests (one change set per record with its lines) so a large volume stays quick.

Every record's key carries the seed (``S07-C000001``, ``S07-I00001``, ``S07-O000001``), so a second run with the
same seed knows what is already there and skips it (the data is the same, so there is nothing to update);
``reset=True`` first deletes what an earlier run with that seed made, through SCM, and the bridge carries the
deletions to Sales.
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
    """What a run did: records created, already there (skipped), deleted by ``reset``, and failures."""

    customers: int = 0
    products: int = 0
    orders: int = 0
    failed: int = 0
    first_error: str | None = None
    skipped: int = 0
    deleted: int = 0


def seed_volume(
    scm: ScmClient,
    *,
    accounts: int,
    products: int,
    orders: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    reset: bool = False,
) -> VolumeReport:
    """Create ``accounts`` customers, ``products`` released products and ``orders`` orders (2-4 lines each),
    skipping the ones an earlier run with this seed made; with ``reset``, delete those first."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    report = VolumeReport()
    tick = progress or (lambda _n: None)
    prefix = seed_prefix(seed)
    if reset:
        report.deleted = delete_seeded(scm, seed, report)
    # the records are drawn from the seeded generators whether or not they exist, so a rerun makes the same ones
    existing = {kind: _existing(scm, prefix, kind) for kind in SEEDED}

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
    report.customers = _send(scm, _skip(ops, customer_ids, existing["customers"], report, tick), report, tick)

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
    report.products = _send(scm, _skip(ops, item_ids, existing["products"], report, tick), report, tick)

    catalogue = item_ids or [row["ItemNumber"] for row in scm.query("ReleasedProductsV2", select=["ItemNumber"])]
    buyers = customer_ids or [row["CustomerAccount"] for row in scm.query("CustomersV3", select=["CustomerAccount"])]
    order_sets: list[list[BatchOp]] = []
    order_ids: list[str] = []
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
        order_ids.append(number)
    report.orders = _send_sets(scm, _skip(order_sets, order_ids, existing["orders"], report, tick), report, tick)
    return report


#: what a run creates, by kind: the SCM entity set and its key (besides ``dataAreaId``), in creation order
SEEDED: dict[str, tuple[str, str, str]] = {
    "customers": ("CustomersV3", "CustomerAccount", "C"),
    "products": ("ReleasedProductsV2", "ItemNumber", "I"),
    "orders": ("SalesOrderHeadersV2", "SalesOrderNumber", "O"),
}


def seed_prefix(seed: int) -> str:
    """The start of every key a run with ``seed`` makes (``S07``)."""
    return f"S{seed:02d}"


def _existing(scm: ScmClient, prefix: str, kind: str) -> set[str]:
    entity_set, key, letter = SEEDED[kind]
    # F&O's wildcard comparison: every key this seed made of this kind
    rows = scm.query(entity_set, filter=f"{key} eq '{prefix}-{letter}*'", select=[key])
    return {row[key] for row in rows}


def _skip(
    items: list[Any], keys: list[str], existing: set[str], report: VolumeReport, tick: Callable[[int], None]
) -> list[Any]:
    """The items whose key is not there yet; the others count as skipped (and as progress)."""
    kept = [item for item, key in zip(items, keys, strict=True) if key not in existing]
    skipped = len(items) - len(kept)
    if skipped:
        report.skipped += skipped
        tick(skipped)
    return kept


def delete_seeded(scm: ScmClient, seed: int, report: VolumeReport) -> int:
    """Delete what runs with ``seed`` made, orders first (their lines go with them), then customers and products
    (which orders refer to); returns how many records went. A record SCM refuses to delete (an order that was
    invoiced meanwhile, say) counts as failed."""
    prefix = seed_prefix(seed)
    deleted = 0
    for kind in ("orders", "customers", "products"):
        entity_set, key, _letter = SEEDED[kind]
        keys = sorted(_existing(scm, prefix, kind))
        ops = [BatchOp.delete(scm.entity_path(entity_set, {"dataAreaId": COMPANY, key: value})) for value in keys]
        deleted += _send(scm, ops, report, lambda _n: None)
    return deleted


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
