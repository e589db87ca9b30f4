"""Live syncs crossing each other: writers on both sides at once, maps live, never wait for each other.

A write to a mapped table holds its own service's database (or rows) while the bridge writes the other
service; the stack's live-sync gate (sandbox.locks) gives every such write one lock order, so writes in
opposite directions take turns instead of each holding what the other waits for. Crossing writes on different
records and on the very same record, on SQLite and PostgreSQL, in one process and with each mock in processes
of its own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from leadtocash.stack import Serving, Stack, StackConfig, Wire, start_stack
from sandbox.clients import SalesClient, ScmClient
from tests.golden import Golden

WRITERS_PER_SIDE = 2
WRITES_PER_WRITER = 30


def _synced_accounts(stack: Stack, top: int) -> list[tuple[str, str]]:
    """(accountid, accountnumber) of up to ``top`` USMF customer accounts the customers map keeps in sync."""
    with SalesClient(stack.url("sales"), transport=stack.transport("sales")) as sales:
        company = sales.query("cdm_companies", filter="cdm_companycode eq 'usmf'", select=["cdm_companyid"])[0]
        rows = sales.query(
            "accounts",
            filter=f"customertypecode eq 3 and _msdyn_company_value eq {company['cdm_companyid']}",
            select=["accountid", "accountnumber"],
            top=top,
        )
    return [(row["accountid"], row["accountnumber"]) for row in rows if row.get("accountnumber")]


def _cross(stack: Stack, label: str) -> dict[str, Any]:
    """Two writers create customers in SCM while two update account phones in Sales, all at once; returns what
    each side was given and every error."""
    accounts = _synced_accounts(stack, 8)
    assert len(accounts) >= WRITERS_PER_SIDE
    errors: list[str] = []
    customers: list[str] = []
    phones: dict[str, str] = {}  # accountnumber -> the last phone written
    lock = threading.Lock()
    start = threading.Barrier(2 * WRITERS_PER_SIDE)

    def scm_writer(writer: int) -> None:
        with ScmClient(stack.url("scm"), transport=stack.transport("scm")) as scm:
            start.wait(30)
            for index in range(WRITES_PER_WRITER):
                number = f"X{label}{writer}-{index:02d}"
                try:
                    scm.create(
                        "CustomersV3",
                        {
                            "dataAreaId": "usmf",
                            "CustomerAccount": number,
                            "OrganizationName": f"Crossing {number}",
                            "CustomerGroupId": "10",
                            "SalesCurrencyCode": "USD",
                        },
                    )
                    with lock:
                        customers.append(number)
                except Exception as exc:  # noqa: BLE001 - every failure is reported by the assertion
                    with lock:
                        errors.append(f"SCM {number}: {exc}")

    def sales_writer(writer: int) -> None:
        mine = accounts[writer::WRITERS_PER_SIDE]  # no account is written by both writers
        with SalesClient(stack.url("sales"), transport=stack.transport("sales")) as sales:
            start.wait(30)
            for index in range(WRITES_PER_WRITER):
                account_id, number = mine[index % len(mine)]
                phone = f"555-{label}{writer}-{index:04d}"
                try:
                    sales.update("accounts", account_id, {"telephone1": phone})
                    with lock:
                        phones[number] = phone
                except Exception as exc:  # noqa: BLE001 - every failure is reported by the assertion
                    with lock:
                        errors.append(f"Sales {number}: {exc}")

    threads = [threading.Thread(target=scm_writer, args=(w,)) for w in range(WRITERS_PER_SIDE)]
    threads += [threading.Thread(target=sales_writer, args=(w,)) for w in range(WRITERS_PER_SIDE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    return {"errors": errors, "customers": customers, "phones": phones}


def _cross_same_records(stack: Stack, label: str, writes: int = WRITES_PER_WRITER) -> dict[str, Any]:
    """Writers on both sides change the phone of the same customers at once (Sales ``telephone1``, SCM
    ``PrimaryContactPhone``, mapped both ways); returns the account numbers written and every error."""
    accounts = _synced_accounts(stack, 2)
    assert len(accounts) == 2
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(2 * WRITERS_PER_SIDE)

    def write(side: str, writer: int) -> None:
        client = (
            SalesClient(stack.url("sales"), transport=stack.transport("sales"))
            if side == "sales"
            else ScmClient(stack.url("scm"), transport=stack.transport("scm"))
        )
        with client:
            start.wait(30)
            for index in range(writes):
                account_id, number = accounts[(writer + index) % len(accounts)]  # both writers of a side, both records
                phone = f"555-{label}{side[1]}{writer}-{index:04d}"
                try:
                    if isinstance(client, SalesClient):
                        client.update("accounts", account_id, {"telephone1": phone})
                    else:
                        key = {"dataAreaId": "usmf", "CustomerAccount": number}
                        client.update("CustomersV3", key, {"PrimaryContactPhone": phone})
                except Exception as exc:  # noqa: BLE001 - every failure is reported by the assertion
                    with lock:
                        errors.append(f"{side} {number}: {exc}")

    threads = [threading.Thread(target=write, args=(side, writer)) for side in ("sales", "scm") for writer in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    return {"errors": errors, "numbers": [number for _, number in accounts]}


def _assert_same_records_converged(stack: Stack, result: dict[str, Any]) -> None:
    """Every write succeeded, and each record carries the same phone on both sides (the last write wins on both:
    crossing writes on one record go one at a time, each with its sync)."""
    assert result["errors"] == []
    with (
        SalesClient(stack.url("sales"), transport=stack.transport("sales")) as sales,
        ScmClient(stack.url("scm"), transport=stack.transport("scm")) as scm,
    ):
        for number in result["numbers"]:
            account = sales.query("accounts", filter=f"accountnumber eq '{number}'", select=["telephone1"])[0]
            customer = scm.retrieve("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": number})
            assert account["telephone1"] == customer["PrimaryContactPhone"], number
            assert account["telephone1"].startswith("555-"), number


def _assert_converged(stack: Stack, result: dict[str, Any]) -> None:
    """Every write succeeded, and both sides hold what the other side was given (live sync: at once)."""
    assert result["errors"] == []
    assert len(result["customers"]) == WRITERS_PER_SIDE * WRITES_PER_WRITER
    with (
        SalesClient(stack.url("sales"), transport=stack.transport("sales")) as sales,
        ScmClient(stack.url("scm"), transport=stack.transport("scm")) as scm,
    ):
        synced = {
            row["accountnumber"]
            for row in sales.query("accounts", filter="startswith(accountnumber,'X')", select=["accountnumber"])
        }
        assert set(result["customers"]) <= synced
        for number, phone in result["phones"].items():
            customer = scm.retrieve("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": number})
            assert customer["PrimaryContactPhone"] == phone, number


def test_live_syncs_in_opposite_directions_all_succeed_and_both_sides_converge(tmp_path: Path, golden: Golden) -> None:
    """2 x 30 SCM creates and 2 x 30 Sales updates at once, in one process, maps live: no write fails (no "busy",
    no timeout) and each side ends with what the other was given."""
    stack = golden.stack(tmp_path / "bridge.sqlite")
    try:
        _assert_converged(stack, _cross(stack, "I"))
    finally:
        stack.close()


def test_live_syncs_crossing_on_the_same_records_all_succeed_and_both_sides_agree(
    tmp_path: Path, golden: Golden
) -> None:
    """Two writers per side change the phone of the same two customers at once, in one process, maps live: no
    write fails and each record ends with one phone on both sides."""
    stack = golden.stack(tmp_path / "bridge.sqlite")
    try:
        _assert_same_records_converged(stack, _cross_same_records(stack, "I"))
    finally:
        stack.close()


@pytest.mark.live
@pytest.mark.parametrize("wire", ["http", "processes"])
def test_live_syncs_in_opposite_directions_over_real_ports_all_succeed(tmp_path: Path, wire: Wire) -> None:
    """The same crossing writers against servers on loopback ports that call each other over HTTP (SQLite files
    in a data folder), in this process or each mock in a child process (the gate is then a lock file): no
    write fails and both sides converge."""
    config = StackConfig(data_dir=tmp_path / "data", seed=1)
    with start_stack(config, wire=wire, serve=Serving("127.0.0.1")) as stack:
        _assert_converged(stack, _cross(stack, wire[0].upper()))
        _assert_same_records_converged(stack, _cross_same_records(stack, wire[0].upper(), writes=10))


@pytest.mark.live
@pytest.mark.parametrize("workers", [1, 2])
def test_live_syncs_crossing_on_the_same_records_on_postgresql_all_succeed_and_both_sides_agree(
    pg_golden_urls: dict[str, str], workers: int
) -> None:
    """On PostgreSQL writes from one side share the gate (row locks keep them apart) and the other side takes
    turns: crossing writes on the same records all succeed and converge, with the services in this process and
    with each mock as two worker processes (the gate is then the lock file). Crossing writes on different records
    on PostgreSQL: ``tests/leadtocash/test_postgres.py``."""
    config = StackConfig(memory=True, seed=1, database_urls=pg_golden_urls, workers=workers)
    with start_stack(config, serve=Serving(), start_maps="new") as stack:
        stack.wait_ready(timeout=120)
        _assert_same_records_converged(stack, _cross_same_records(stack, f"Q{workers}", writes=10))
