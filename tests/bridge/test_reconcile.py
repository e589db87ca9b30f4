"""Reconcile: both sides equal after the flows users run; what differs is said direction by direction, with why."""

from __future__ import annotations

from typing import Any

from bridge.reconcile import MapComparison, Reconciler, describe_difference
from leadtocash.runner import scenario_context
from leadtocash.volume import seed_volume
from sandbox.clients import SalesClient, ScmClient
from scenarios.registry import load_builtin
from tests.bridge.conftest import CUSTOMERS, Sandbox


def compare_all(sandbox: Sandbox) -> list[MapComparison]:
    reconciler = Reconciler(sandbox.runtime.lifecycle.initial)
    return [reconciler.compare(table_map) for table_map in sandbox.runtime.engine.maps]


def differences(results: list[MapComparison]) -> dict[str, Any]:
    return {r.id: r.as_dict() for r in results if not r.equal}


def sneaky_sales(sandbox: Sandbox) -> SalesClient:
    """Sales as the bridge's identity: writes that are never synced, so the sides drift on purpose."""
    return SalesClient(sandbox.stack.url("sales"), transport=sandbox.stack.transport("sales"), identity="dualwrite")


def test_every_map_is_equal_after_the_lead_to_cash_demo_and_sales_shows_scms_totals(sandbox: Sandbox) -> None:
    """The demo's journey (quote and order made in Sales, processed in SCM) leaves every map equal; the order's
    and the quote's totals and tax in Sales are SCM's, tax included."""
    with sandbox.stack.clients() as clients:
        ctx = scenario_context(clients)
        load_builtin()["lead-to-cash"](ctx)
    assert all(step.passed for step in ctx.steps)

    assert differences(compare_all(sandbox)) == {}
    for sales_set, scm_set, number, fields in (
        (
            "quotes",
            "CDSSalesQuotationHeaders",
            "msdyn_quotenumber",
            ("QuotationTotalAmount", "QuotationTotalTaxAmount"),
        ),
        ("salesorders", "CDSSalesOrderHeaders", "msdyn_salesordernumber", ("OrderTotalAmount", "OrderTotalTaxAmount")),
    ):
        documents = [r for r in sandbox.sales.query(sales_set) if str(r[number] or "").startswith("CRM-")]
        assert documents, f"the journey made {sales_set} in Sales"
        for document in documents:
            scm_key = "SalesQuotationNumber" if sales_set == "quotes" else "SalesOrderNumber"
            scm_row = sandbox.scm.query(scm_set, filter=f"{scm_key} eq '{document[number]}'", cross_company=True)[0]
            assert scm_row[fields[1]] > 0, "SCM taxes the document"
            assert float(document["totalamount"]) == scm_row[fields[0]]
            assert float(document["totaltax"]) == scm_row[fields[1]]


def test_every_map_is_equal_after_seeding_volume(sandbox: Sandbox) -> None:
    """`sandbox seed`'s customers, products and orders (made in SCM, synced live) leave every map equal."""
    with sandbox.stack.clients() as clients:
        report = seed_volume(clients.scm, accounts=4, products=3, orders=3)
    assert report.failed == 0 and report.orders == 3
    assert differences(compare_all(sandbox)) == {}


def test_a_one_way_field_is_compared_toward_its_direction_only_and_says_why(sandbox: Sandbox) -> None:
    """A Sales order whose SCM-owned tax drifted is one difference SCM -> Sales, naming the map, the fields, the
    direction, the key and both values; a map constant changed in Sales (an account's address type) is not a
    difference."""
    with sandbox.stack.clients() as clients:
        seed_volume(clients.scm, accounts=1, products=1, orders=1)
    order = next(r for r in sandbox.sales.query("salesorders") if r["msdyn_salesordernumber"])
    sneaky = sneaky_sales(sandbox)
    sneaky.update("salesorders", order["salesorderid"], {"totaltax": 12345.5})
    account = sandbox.account("US-001")
    assert account is not None and account["address1_addresstypecode"] == 2
    sneaky.update("accounts", account["accountid"], {"address1_addresstypecode": 1})

    found = differences(compare_all(sandbox))

    assert set(found) == {"order-headers"}
    [record] = found["order-headers"]["differing"]
    [field] = record["fields"]
    assert record["key"] == {"salesordernumber": order["msdyn_salesordernumber"]}
    assert {
        "map": "order-headers",
        "direction": "to_sales",
        "scm_field": "OrderTotalTaxAmount",
        "sales_field": "totaltax",
        "sales_value": 12345.5,
    }.items() <= field.items()
    line_text = describe_difference(record, field)
    assert line_text.startswith(f"differs (SCM -> Sales): {record['company']} ")
    for part in (
        "order-headers",
        "OrderTotalTaxAmount -> totaltax",
        "SCM -> Sales only",
        "12345.5",
        repr(field["scm_value"]),
    ):
        assert part in line_text


def test_a_two_way_field_is_one_difference_and_a_missing_row_says_why(sandbox: Sandbox) -> None:
    """A customer renamed in Sales only is one difference (a two-way field is compared once, toward Sales),
    and a customer only SCM has is missing in Sales with the reason."""
    account = sandbox.account("US-001")
    assert account is not None
    sneaky_sales(sandbox).update("accounts", account["accountid"], {"name": "Renamed in Sales only"})
    ScmClient(sandbox.stack.url("scm"), transport=sandbox.stack.transport("scm"), identity="dualwrite").create(
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "US-960",
            "OrganizationName": "Only SCM",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    result = Reconciler(sandbox.runtime.lifecycle.initial).compare(sandbox.runtime.engine.by_id[CUSTOMERS])

    assert result.counts == {"missing_in_sales": 1, "missing_in_scm": 0, "differing": 1}
    [field] = result.differing[0]["fields"]
    assert field["direction"] == "to_sales" and field["scm_field"] == "OrganizationName"
    assert "both ways" in field["why"] and "'Renamed in Sales only'" in field["why"]
    missing = result.missing_in_sales[0]
    assert missing["key"] == {"customeraccount": "US-960"} and "SCM -> Sales" in missing["why"]
