"""Tests of ambiguous live-sync outcomes (bridge/resolution.py): the caller's answer matches the data.

Each test writes one side live while the other side fails in a way that hides whether it wrote: an injected
fault after the write (``when: after``), a dropped connection, a timeout, a target that dies. Whatever the
answer, both sides must agree with it: success -> equal on both sides; error -> no change on either side.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from bridge.resolution import differences, no_answer
from sandbox.clients import SalesClient, ScmClient, ServiceError
from sandbox.testing import poll_until
from sandbox.wellknown import INTEGRATION_IDENTITY
from tests.bridge.conftest import CUSTOMERS, Sandbox

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _activity(sandbox: Sandbox, kind: str = "resolution") -> list[str]:
    rows = sandbox.bridge.get(f"/api/maps/{CUSTOMERS}/activity").get_json()
    return [row["message"] for row in rows if row["kind"] == kind]


def _scm_customer(sandbox: Sandbox, account: str) -> dict[str, Any] | None:
    rows = sandbox.scm.query("CustomersV3", filter=f"CustomerAccount eq '{account}'")
    return rows[0] if rows else None


def _fails(call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        call()
    return raised.value


AFTER = [
    {"status": 503, "when": "after"},
    {"status": 500, "when": "after"},
    {"status": 400, "when": "after"},
    {"status": 503, "drop": True, "when": "after"},
]
BEFORE = [{"status": 503}, {"status": 500}, {"status": 503, "drop": True}]


@pytest.mark.parametrize("fault", AFTER, ids=["503", "500", "400", "dropped"])
def test_a_create_that_landed_before_its_error_completes_on_both_sides(sandbox: Sandbox, fault: dict[str, Any]) -> None:
    """Sales wrote the account, then answered an error (or dropped the connection): the bridge reads the
    account back, finds what it sent, and the SCM write succeeds, so both sides hold the customer."""
    sandbox.sales_control.fail_bridge_writes(times=1, **fault)
    sandbox.create_customer("RES-A1", "Landed Anyway")
    assert sandbox.account_name("RES-A1") == "Landed Anyway"
    assert _scm_customer(sandbox, "RES-A1") is not None
    assert any("completed: the source commits" in message for message in _activity(sandbox))


@pytest.mark.parametrize("fault", BEFORE, ids=["503", "500", "dropped"])
def test_a_create_refused_before_it_landed_fails_cleanly_on_both_sides(sandbox: Sandbox, fault: dict[str, Any]) -> None:
    """Sales failed before writing: the read-back finds nothing, the SCM write fails with one error saying
    nothing was written to Sales, and neither side holds the customer."""
    sandbox.sales_control.fail_bridge_writes(times=1, **fault)
    error = _fails(lambda: sandbox.create_customer("RES-B1", "Never There"))
    assert "nothing was written to Dynamics 365 Sales" in error.message
    assert _scm_customer(sandbox, "RES-B1") is None
    assert sandbox.account("RES-B1") is None
    assert any("the unit of 1 write(s) is not in" in message for message in _activity(sandbox))


def test_updates_and_deletes_with_lost_answers_complete_and_refused_ones_change_nothing(sandbox: Sandbox) -> None:
    """Update and delete: a fault after the write completes the unit on both sides; a fault before it leaves
    both sides as they were."""
    sandbox.create_customer("RES-C1", "Before")
    sandbox.sales_control.fail_bridge_writes(times=1, status=503)
    _fails(lambda: sandbox.rename_customer("RES-C1", "Refused"))
    assert (_scm_customer(sandbox, "RES-C1") or {}).get("OrganizationName") == "Before"
    assert sandbox.account_name("RES-C1") == "Before"

    sandbox.sales_control.fail_bridge_writes(times=1, status=502, when="after")
    sandbox.rename_customer("RES-C1", "After")
    assert (_scm_customer(sandbox, "RES-C1") or {}).get("OrganizationName") == "After"
    assert sandbox.account_name("RES-C1") == "After"

    key = {"dataAreaId": "usmf", "CustomerAccount": "RES-C1"}
    sandbox.sales_control.fail_bridge_writes(times=1, status=503, drop=True)
    _fails(lambda: sandbox.scm.delete("CustomersV3", key))
    assert _scm_customer(sandbox, "RES-C1") is not None and sandbox.account("RES-C1") is not None

    sandbox.sales_control.fail_bridge_writes(times=1, status=503, drop=True, when="after")
    sandbox.scm.delete("CustomersV3", key)
    assert _scm_customer(sandbox, "RES-C1") is None and sandbox.account("RES-C1") is None


def _sales_account(sandbox: Sandbox, number: str, name: str) -> str:
    group = sandbox.sales.query(
        "msdyn_customergroups", filter="msdyn_groupid eq '10'", select=["msdyn_customergroupid"]
    )
    return sandbox.sales.create(
        "accounts",
        {
            "name": name,
            "accountnumber": number,
            "customertypecode": 3,
            "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups({group[0]['msdyn_customergroupid']})",
        },
    )


def test_sales_writes_with_lost_scm_answers_resolve_the_same_way(sandbox: Sandbox) -> None:
    """From Sales to SCM: SCM committing before its error completes the account on both sides; SCM failing
    before writing leaves neither side with it."""
    sandbox.scm_control.fail_bridge_writes(times=1, status=503, when="after")
    _sales_account(sandbox, "RES-D1", "Sales Born")
    assert (_scm_customer(sandbox, "RES-D1") or {}).get("OrganizationName") == "Sales Born"

    sandbox.scm_control.fail_bridge_writes(times=1, status=503)
    _fails(lambda: _sales_account(sandbox, "RES-D2", "Sales Refused"))
    assert sandbox.account("RES-D2") is None and _scm_customer(sandbox, "RES-D2") is None


class FlakySales(httpx.BaseTransport):
    """Sales as the bridge sees it, failing the bridge's next write on purpose.

    ``mode``: ``"timeout-after"`` forwards the write, then raises a read timeout (it landed);
    ``"timeout-before"`` raises the timeout without forwarding; ``"late"`` raises the timeout at once and
    forwards the write ``release`` later (it lands after the bridge answered); ``"die"`` forwards the write,
    then every request fails to connect until :meth:`revive` (a killed Sales that committed first)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.mode: str | None = None
        self.dead = False
        self.release = threading.Event()
        self.landed = threading.Event()

    def revive(self) -> None:
        self.dead = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.dead:
            raise httpx.ConnectError("connection refused (Sales is down)", request=request)
        mode = self.mode if request.method in WRITES else None
        if mode is None:
            return self.inner.handle_request(request)
        self.mode = None
        if mode == "timeout-before":
            raise httpx.ReadTimeout("timed out", request=request)
        if mode == "late":
            request.read()

            def land() -> None:
                self.release.wait(10)
                self.inner.handle_request(request).close()
                self.landed.set()

            threading.Thread(target=land, daemon=True).start()
            raise httpx.ReadTimeout("timed out", request=request)
        self.inner.handle_request(request).close()
        if mode == "die":
            self.dead = True
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        raise httpx.ReadTimeout("timed out", request=request)


@pytest.fixture
def flaky(sandbox: Sandbox) -> FlakySales:
    """The bridge's Sales client (engine and read-backs) through :class:`FlakySales`."""
    transport = FlakySales(sandbox.stack.transport("sales"))
    engine = sandbox.runtime.engine
    engine.sales = SalesClient(sandbox.stack.url("sales"), transport=transport, identity=INTEGRATION_IDENTITY)
    sandbox.runtime.resolver.settle_for = 0.2  # the dead Sales: give up reading back quickly
    return transport


def test_a_timeout_after_the_write_landed_completes_and_one_before_it_fails_cleanly(
    sandbox: Sandbox, flaky: FlakySales
) -> None:
    """A read timeout says nothing: the bridge reads back. Landed: success on both sides. Not landed: one
    error and no row anywhere."""
    flaky.mode = "timeout-after"
    sandbox.create_customer("RES-T1", "Timed Out Late")
    assert sandbox.account_name("RES-T1") == "Timed Out Late"
    flaky.mode = "timeout-before"
    _fails(lambda: sandbox.create_customer("RES-T2", "Timed Out Early"))
    assert sandbox.account("RES-T2") is None and _scm_customer(sandbox, "RES-T2") is None


def test_a_write_that_lands_after_the_timeout_was_answered_is_undone(sandbox: Sandbox, flaky: FlakySales) -> None:
    """The write was still in flight when the bridge read back (nothing there yet) and answered the error;
    it lands afterwards. The bridge watches records that got no answer and deletes the late row, so the
    failed create leaves nothing behind."""
    sandbox.runtime.resolver.watch = (0.0, 0.3, 0.6, 1.0, 2.0)
    flaky.mode = "late"
    _fails(lambda: sandbox.create_customer("RES-L1", "Late Lander"))
    assert _scm_customer(sandbox, "RES-L1") is None
    flaky.release.set()
    assert flaky.landed.wait(10)
    poll_until(
        lambda: any("deleted the row the failed write created" in m for m in _activity(sandbox)),
        timeout=15,
        message="the late row is undone",
    )
    assert sandbox.account("RES-L1") is None


def test_a_target_killed_after_committing_is_undone_once_it_answers_again(sandbox: Sandbox, flaky: FlakySales) -> None:
    """Sales commits, then dies before answering; nothing can be read back. The SCM caller gets one 503
    saying the outcome is unknown and being undone, SCM keeps nothing, and once Sales answers again the
    bridge deletes the created account and restores the renamed one."""
    sandbox.create_customer("RES-K1", "Original Name")
    flaky.mode = "die"
    error = _fails(lambda: sandbox.create_customer("RES-K2", "Half Written"))
    assert error.status == 503 and "unknown" in error.message
    assert _scm_customer(sandbox, "RES-K2") is None
    assert sandbox.account("RES-K2") is not None  # Sales (seen directly) did commit before dying
    flaky.revive()
    poll_until(lambda: sandbox.account("RES-K2") is None, timeout=15, message="the created account is undone")

    flaky.mode = "die"
    _fails(lambda: sandbox.rename_customer("RES-K1", "Renamed While Dying"))
    assert sandbox.account_name("RES-K1") == "Renamed While Dying"
    flaky.revive()
    poll_until(
        lambda: any("wrote the source's committed image back" in m for m in _activity(sandbox)),
        timeout=15,
        message="the rename is undone",
    )
    assert sandbox.account_name("RES-K1") == "Original Name"
    assert (_scm_customer(sandbox, "RES-K1") or {}).get("OrganizationName") == "Original Name"
    assert any("could not be read back" in m for m in _activity(sandbox))


def test_an_scm_killed_after_committing_a_sales_write_is_undone_once_it_answers_again(sandbox: Sandbox) -> None:
    """The same from Sales: SCM commits the customer and dies; the Sales caller gets the 503, Sales keeps
    nothing, and once SCM answers again the customer the failed write created there is deleted."""
    transport = FlakySales(sandbox.stack.transport("scm"))
    engine = sandbox.runtime.engine
    engine.scm = ScmClient(sandbox.stack.url("scm"), transport=transport, identity=INTEGRATION_IDENTITY)
    sandbox.runtime.resolver.settle_for = 0.2
    transport.mode = "die"
    error = _fails(lambda: _sales_account(sandbox, "RES-S1", "Sales While SCM Dies"))
    assert error.status == 503 and "unknown" in error.message
    assert sandbox.account("RES-S1") is None
    assert _scm_customer(sandbox, "RES-S1") is not None  # SCM (seen directly) did commit before dying
    transport.revive()
    poll_until(lambda: _scm_customer(sandbox, "RES-S1") is None, timeout=15, message="the SCM customer is undone")


def test_a_target_that_stays_down_is_reported_unresolved_after_the_deadline(
    sandbox: Sandbox, flaky: FlakySales
) -> None:
    """A convergence that cannot reach the other side before its deadline gives up with an error in the
    activity log that names the record and says to reconcile."""
    sandbox.runtime.resolver.give_up_after = 0.3
    flaky.mode = "die"
    _fails(lambda: sandbox.create_customer("RES-U1", "Stays Down"))
    poll_until(
        lambda: any("unresolved" in m for m in _activity(sandbox, "error")),
        timeout=15,
        message="the unresolved convergence is reported",
    )
    poll_until(lambda: sandbox.runtime.resolver.pending() == 0, timeout=15, message="nothing is left pending")


def test_differences_compare_sent_values_and_let_the_other_side_fill_empty_ones() -> None:
    """Numbers compare by value, dates as dates; an empty value sent may come back filled (a number sequence)
    unless the change emptied that field; binds by id compare with the lookup column."""
    row = {"name": "A", "revenue": 10.0, "PartyNumber": "000042", "_parentaccountid_value": "abc", "day": "2026-01-01"}
    lookups = {"parentaccountid": "_parentaccountid_value"}
    assert (
        differences({"name": "A", "revenue": 10, "PartyNumber": "", "day": "2026-01-01T00:00:00Z"}, row, lookups) == []
    )
    assert differences({"PartyNumber": ""}, row, lookups, frozenset({"PartyNumber"})) == ["PartyNumber"]
    assert differences({"name": "B", "parentaccountid@odata.bind": "/accounts(ABC)"}, row, lookups) == ["name"]
    assert differences({"parentaccountid@odata.bind": "/accounts(def)"}, row, lookups) == ["parentaccountid@odata.bind"]


def test_no_answer_tells_transport_failures_from_answers() -> None:
    """An error raised while handling a transport failure had no answer; one raised from an answer had one."""
    try:
        try:
            raise httpx.ReadTimeout("slow")
        except httpx.ReadTimeout:
            raise ValueError("sync failed") from None
    except ValueError as error:
        assert no_answer(error)
    assert not no_answer(ValueError("refused"))
