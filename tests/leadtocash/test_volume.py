"""`sandbox seed`: a deterministic volume through the public APIs, synced across by the bridge."""

from __future__ import annotations

from leadtocash.volume import seed_volume


def test_seed_volume_creates_customers_products_and_orders_that_sync(sandbox) -> None:
    """Customers and products made in SCM reach Sales; orders get their lines; nothing fails."""
    report = seed_volume(sandbox.scm, accounts=5, products=3, orders=4, seed=7)
    assert (report.customers, report.products, report.orders, report.failed) == (5, 3, 4, 0), report.first_error
    assert len(sandbox.sales.query("accounts", filter="startswith(accountnumber,'S07-C')")) == 5
    lines = sandbox.scm.query("SalesOrderLines", filter="SalesOrderNumber eq 'S07-O*'")
    assert len(lines) >= 8


def test_same_seed_gives_same_data(sandbox) -> None:
    """Two runs with one seed make identical customers (names included)."""
    seed_volume(sandbox.scm, accounts=3, products=0, orders=0, seed=3)
    first = [
        (r["CustomerAccount"], r["OrganizationName"])
        for r in sandbox.scm.query("CustomersV3", filter="CustomerAccount eq 'S03-C*'", orderby="CustomerAccount")
    ]
    sandbox.control["scm"].reset()
    sandbox.control["scm"].seed(1)
    seed_volume(sandbox.scm, accounts=3, products=0, orders=0, seed=3)
    second = [
        (r["CustomerAccount"], r["OrganizationName"])
        for r in sandbox.scm.query("CustomersV3", filter="CustomerAccount eq 'S03-C*'", orderby="CustomerAccount")
    ]
    assert first == second and len(first) == 3
