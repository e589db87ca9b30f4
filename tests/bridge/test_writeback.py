"""Write-back: what SCM computes during a synced write comes back to the Sales row, in the same unit, once."""

from __future__ import annotations

from typing import Any

from bridge.reconcile import Reconciler
from sandbox.clients import BatchOp
from sandbox.livesync import LiveSyncHook
from sandbox.testing import poll_until
from tests.bridge.conftest import CUSTOMERS, Sandbox

#: the fields SCM fills for a new customer that Sales leaves empty (issue 14's list), Sales column -> SCM field
COMPUTED = {
    "msdyn_partynumber": "PartyNumber",
    "msdyn_paymenttermsbasedays": "PaymentTermsBaseDays",
    "numberofemployees": "OrganizationNumberOfEmployees",
}


def create_sales_account(sandbox: Sandbox, number: str) -> dict[str, Any]:
    """A customer account created in Sales the way a user makes one: no party number, no on-hold status."""
    company = sandbox.runtime.engine.company_id("usmf")
    created = sandbox.sales.create(
        "accounts",
        {
            "name": f"Sales-born {number}",
            "accountnumber": number,
            "customertypecode": 3,
            "msdyn_company@odata.bind": f"/cdm_companies({company})",
            "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
            "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups(msdyn_groupid='10',_msdyn_company_value={company})",
        },
    )
    return created


def scm_customer(sandbox: Sandbox, number: str) -> dict[str, Any]:
    return sandbox.scm.query("CustomersV3", filter=f"CustomerAccount eq '{number}'", cross_company=True)[0]


def assert_computed_values_in_sales(sandbox: Sandbox, number: str) -> None:
    account = sandbox.account(number)
    customer = scm_customer(sandbox, number)
    assert account is not None
    assert customer["PartyNumber"], "SCM numbers the party"
    for column, field in COMPUTED.items():
        assert account[column] == customer[field], column
    assert customer["OnHoldStatus"] == "No" and account["msdyn_onholdstatus"] == 806380000
    assert account["address1_addresstypecode"] == 2, "the map's constant fills the empty address type"


def scm_writes(sandbox: Sandbox, after: int, number: str) -> list[dict[str, Any]]:
    """The bridge's writes to SCM customer ``number`` after SCM change ``after``."""
    changes = sandbox.scm_control.changes(after=after, limit=5000, tables=["CustomerV3"])["changes"]
    return [c for c in changes if c["identity"] == "dualwrite" and c["key"].get("CustomerAccount") == number]


def equal(sandbox: Sandbox, map_id: str) -> bool:
    comparison = Reconciler(sandbox.runtime.lifecycle.initial).compare(sandbox.runtime.engine.by_id[map_id])
    assert comparison.equal, comparison.as_dict()
    return True


def test_a_sales_born_customer_gets_what_scm_computed_in_the_same_commit_and_scm_is_written_once(
    sandbox: Sandbox,
) -> None:
    """Live sync: the party number, the defaults SCM fills and the map's address type are in the Sales row as
    soon as its create answers (applied inside the create's transaction, as the bridge); that write-back is
    not sent again, so SCM sees exactly one write; both sides of the map are then equal."""
    scm_seq = int(sandbox.scm_control.changes(after=0, limit=1)["latest"])
    sales_seq = sandbox.sales_seq()

    create_sales_account(sandbox, "WB-LIVE-1")

    assert_computed_values_in_sales(sandbox, "WB-LIVE-1")
    assert len(scm_writes(sandbox, scm_seq, "WB-LIVE-1")) == 1
    changes = sandbox.sales_control.changes(after=sales_seq, limit=100, tables=["account"])["changes"]
    user, bridge = [c for c in changes if c["identity"] != "dualwrite"], sandbox.bridge_writes_to_sales(sales_seq)
    assert len(user) == 1 and len(bridge) == 1
    assert bridge[0]["transaction_id"] == user[0]["transaction_id"], "one commit: the write and its write-back"
    assert set(COMPUTED) <= set(bridge[0]["changed"])
    assert equal(sandbox, CUSTOMERS)


def test_an_async_map_writes_back_once_the_drainer_applied_the_change(sandbox: Sandbox) -> None:
    """Async: the Sales row is committed when the drainer writes SCM, so the write-back is a write of its
    own, as the bridge; it is not drained back to SCM."""
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="async")
    scm_seq = int(sandbox.scm_control.changes(after=0, limit=1)["latest"])

    create_sales_account(sandbox, "WB-ASYNC-1")

    poll_until(
        lambda: (sandbox.account("WB-ASYNC-1") or {}).get("msdyn_partynumber"),
        timeout=20,
        message="the party number written back to Sales",
    )
    assert_computed_values_in_sales(sandbox, "WB-ASYNC-1")
    sandbox.runtime.lifecycle.run(CUSTOMERS, initial_sync=False, mode="live")  # waits for nothing more to drain
    assert len(scm_writes(sandbox, scm_seq, "WB-ASYNC-1")) == 1
    assert equal(sandbox, CUSTOMERS)


def test_catch_up_and_initial_sync_write_back_what_scm_computed(sandbox: Sandbox) -> None:
    """A customer queued while the map was paused, and one created while it was stopped and then brought
    over by initial sync (Sales master), both end with SCM's values in Sales."""
    lifecycle = sandbox.runtime.lifecycle
    lifecycle.pause(CUSTOMERS)
    create_sales_account(sandbox, "WB-PAUSED-1")
    assert sandbox.account("WB-PAUSED-1")["msdyn_partynumber"] is None
    lifecycle.resume(CUSTOMERS, mode="catchup")
    assert_computed_values_in_sales(sandbox, "WB-PAUSED-1")

    lifecycle.stop(CUSTOMERS)
    create_sales_account(sandbox, "WB-INITIAL-1")
    report = lifecycle.run(CUSTOMERS, initial_sync=True, master="sales")
    assert report["state"] == "Running"
    assert_computed_values_in_sales(sandbox, "WB-INITIAL-1")
    assert equal(sandbox, CUSTOMERS)


def test_a_write_back_the_source_refuses_is_left_out_and_the_rest_commits(sandbox: Sandbox) -> None:
    """The other side has committed, so a write-back item the source cannot take (an unknown table, a row
    that is gone, a value of the wrong type) is logged and skipped; the valid ones apply, as the bridge."""
    account = sandbox.account("US-001")
    assert account is not None
    runtime = sandbox.stack.apps["sales"].extensions["sandbox"]
    hook = LiveSyncHook("sales", runtime.model, runtime.store, lambda payload: None, runtime.service)
    key = {"accountid": account["accountid"]}
    items = [
        {"table": "no_such_table", "key": key, "values": {"name": "x"}},
        {"table": "account", "key": {"accountid": "00000000-0000-0000-0000-000000000001"}, "values": {"name": "x"}},
        {"table": "account", "key": key, "values": {"numberofemployees": "many"}},
        {"table": "account", "key": key, "values": {"msdyn_partynumber": "P-42", "name": account["name"]}},
        "not an item",
    ]
    with runtime.db.transaction():
        applied = hook.apply_writeback(items)

    assert applied == 1
    after = sandbox.account("US-001")
    assert after is not None and after["msdyn_partynumber"] == "P-42"
    assert after["numberofemployees"] == account["numberofemployees"]
    last = sandbox.sales_control.changes(after=0, limit=5000, tables=["account"])["changes"][-1]
    assert last["identity"] == "dualwrite" and "name" not in last["changed"], "only what differed"


def test_a_hook_without_the_service_ignores_write_back(sandbox: Sandbox) -> None:
    """A live-sync hook built without the service (older wiring) takes the bridge's answer and applies nothing."""
    runtime = sandbox.stack.apps["sales"].extensions["sandbox"]
    hook = LiveSyncHook("sales", runtime.model, runtime.store, lambda payload: None)
    with runtime.db.transaction():
        assert hook.apply_writeback([{"table": "account", "key": {}, "values": {"name": "x"}}]) == 0


def test_customers_created_together_in_one_change_set_each_get_their_own_values(sandbox: Sandbox) -> None:
    """A Sales transaction of several rows is one unit: the rows are read back from SCM together after the
    change set, and each Sales row gets its own party number."""
    company = sandbox.runtime.engine.company_id("usmf")
    ops = [
        BatchOp.post(
            "accounts",
            {
                "name": f"Batch-born {number}",
                "accountnumber": number,
                "customertypecode": 3,
                "msdyn_company@odata.bind": f"/cdm_companies({company})",
                "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
                "msdyn_customergroupid@odata.bind": (
                    f"/msdyn_customergroups(msdyn_groupid='10',_msdyn_company_value={company})"
                ),
            },
        )
        for number in ("WB-SET-1", "WB-SET-2", "WB-SET-3")
    ]
    results = sandbox.sales.batch([ops])
    assert all(result.ok for result in results)

    parties = set()
    for number in ("WB-SET-1", "WB-SET-2", "WB-SET-3"):
        assert_computed_values_in_sales(sandbox, number)
        parties.add(sandbox.account(number)["msdyn_partynumber"])
    assert len(parties) == 3
    assert equal(sandbox, CUSTOMERS)
