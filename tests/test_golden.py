"""The golden-database fixtures give each test the state a fresh build would, and a copy of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from leadtocash.stack import Stack, StackConfig, build_stack, factory
from sandbox.db import Database
from sandbox.runtime import ServiceConfig
from tests.golden import MOCKS, SEED, Golden, _first_call_replaced


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table (every table of the database, the platform's outbox included)."""
    with db.transaction() as connection:
        names = sa.inspect(connection).get_table_names()
        return {
            name: int(connection.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar() or 0) for name in names
        }


def keys(db: Database, table: str, column: str) -> set[Any]:
    with db.transaction() as connection:
        return set(connection.execute(sa.text(f'SELECT "{column}" FROM "{table}"')).scalars())


def map_states(stack: Stack) -> dict[str, tuple[Any, ...]]:
    runtime = stack.apps["bridge"].extensions["bridge"]
    return {
        map_id: (row["state"], row["mode"], row["master"], bool(row["initial_sync_done"]))
        for map_id, row in runtime.state.map_rows().items()
    }


def test_a_restored_service_holds_what_seeding_writes(golden: Golden) -> None:
    """Each mock restored from its golden file has the tables, rows and keys of one seeded from scratch."""
    for name in MOCKS:
        make = factory(name)
        assert make is not None
        seeded = make(ServiceConfig(database_url="sqlite://", seed=SEED)).extensions["sandbox"]
        restored = golden.service_app(name).extensions["sandbox"]
        try:
            assert row_counts(restored.db) == row_counts(seeded.db)
            assert restored.outbox.latest_seq(restored.db) == seeded.outbox.latest_seq(seeded.db) > 0
            assert restored.config.seed is None  # nothing seeded on top of the copy
            with restored.db.transaction(), seeded.db.transaction():
                assert restored.store.next_version() == seeded.store.next_version()
        finally:
            seeded.db.dispose()
            restored.db.dispose()
    sales = golden.service_app("sales").extensions["sandbox"]
    fresh = factory("sales")(ServiceConfig(database_url="sqlite://", seed=SEED)).extensions["sandbox"]  # type: ignore[misc]
    try:
        assert keys(sales.db, "accounts", "accountid") == keys(fresh.db, "accounts", "accountid")
    finally:
        sales.db.dispose()
        fresh.db.dispose()


def test_each_restored_service_is_a_copy_of_its_own(golden: Golden) -> None:
    """A write to one test's copy is not seen by the next copy (nor by the golden file)."""
    first = golden.service_app("sales")
    second_before = golden.service_app("sales")
    client = first.test_client()
    response = client.post("/api/data/v9.2/accounts", json={"name": "Only in the first copy"})
    assert response.status_code == 204, response.get_data(as_text=True)
    third = golden.service_app("sales")
    try:
        counts = [row_counts(app.extensions["sandbox"].db)["accounts"] for app in (first, second_before, third)]
        assert counts[0] == counts[1] + 1 == counts[2] + 1
    finally:
        for app in (first, second_before, third):
            app.extensions["sandbox"].db.dispose()


def test_a_restored_stack_is_the_stack_build_stack_starts(golden: Golden, tmp_path: Path) -> None:
    """Same rows in Sales and SCM, same change feeds, the same map states and initial-sync reports, and the
    Sales companies already known to the bridge, as after ``build_stack`` ran the initial sync itself."""
    fresh = build_stack(
        StackConfig(
            memory=True, seed=SEED, database_urls={"bridge": f"sqlite:///{(tmp_path / 'fresh.sqlite').as_posix()}"}
        )
    )
    restored = golden.stack(tmp_path / "restored.sqlite")
    try:
        for name in MOCKS:
            ours, theirs = restored.apps[name].extensions["sandbox"], fresh.apps[name].extensions["sandbox"]
            assert row_counts(ours.db) == row_counts(theirs.db), name
            assert ours.outbox.latest_seq(ours.db) == theirs.outbox.latest_seq(theirs.db), name
            assert ours.store.commit_hooks and theirs.store.commit_hooks, f"{name} is not wired to the bridge"
        assert map_states(restored) == map_states(fresh)
        assert {state for state, *_ in map_states(restored).values()} == {"Running"}
        ours_bridge, theirs_bridge = (
            restored.apps["bridge"].extensions["bridge"],
            fresh.apps["bridge"].extensions["bridge"],
        )
        assert ours_bridge.worker.running and theirs_bridge.worker.running
        # the companies the initial sync read (demf is created by it, under a new id each time)
        assert set(ours_bridge.engine._companies) == set(theirs_bridge.engine._companies)
        assert set(ours_bridge.engine._companies.values()) == keys(
            restored.apps["sales"].extensions["sandbox"].db, "cdm_companies", "cdm_companyid"
        )
        ours_reports = ours_bridge.lifecycle.initial.last_reports
        theirs_reports = theirs_bridge.lifecycle.initial.last_reports
        assert {k: (r.execution, r.to_sales, r.to_scm, r.errors) for k, r in ours_reports.items()} == {
            k: (r.execution, r.to_sales, r.to_scm, r.errors) for k, r in theirs_reports.items()
        }
        for runtime in (ours_bridge, theirs_bridge):
            runtime.state.flush()  # traces and counts wait in memory for a moment before they are written
        bridge_counts = row_counts(ours_bridge.db)
        assert bridge_counts == row_counts(theirs_bridge.db)
    finally:
        restored.close()
        fresh.close()


def test_a_restored_stack_syncs_live_and_keeps_its_writes_to_itself(golden: Golden, tmp_path: Path) -> None:
    """A customer created in one restored stack's SCM reaches its Sales, and not the next restored stack's."""
    from sandbox.clients import SalesClient, ScmClient

    first = golden.stack(tmp_path / "first.sqlite")
    second = golden.stack(tmp_path / "second.sqlite")
    try:
        ScmClient(first.url("scm"), transport=first.transport("scm")).create(
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "GOLD-1",
                "OrganizationName": "Golden",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
        )

        def named(stack: Stack) -> list[str]:
            sales = SalesClient(stack.url("sales"), transport=stack.transport("sales"))
            return [row["name"] for row in sales.query("accounts", filter="accountnumber eq 'GOLD-1'")]

        assert named(first) == ["Golden"]
        assert named(second) == []
    finally:
        first.close()
        second.close()


def test_restoring_leaves_schema_creation_and_key_generation_as_they_were(golden: Golden, tmp_path: Path) -> None:
    """The shortcuts of a restore (the schema from the golden file, the session's signing key) apply to the
    restore only: restored stacks share one key, an identity built afterwards gets a fresh one, and a database
    made afterwards still creates its schema."""
    from sandbox.identity import create_app
    from sandbox.identity.app import identity_runtime
    from sandbox.identity.keys import SigningKey

    generate, create_all = SigningKey.__dict__["generate"], Database.__dict__["create_all"]
    stacks = [golden.stack(tmp_path / f"bridge-{number}.sqlite") for number in (1, 2)]
    try:
        kids = {identity_runtime(stack.identity).key.kid for stack in stacks if stack.identity is not None}
        assert kids == {golden.signing_key().kid}
        assert stacks[0].apps["sales"].extensions["sandbox"].db is not stacks[1].apps["sales"].extensions["sandbox"].db
    finally:
        for stack in stacks:
            stack.close()
    assert SigningKey.__dict__["generate"] is generate and Database.__dict__["create_all"] is create_all
    assert identity_runtime(create_app()).key.kid != golden.signing_key().kid
    app = factory("scm")(ServiceConfig(database_url="sqlite://", seed=None))
    try:
        db = app.extensions["sandbox"].db
        assert {table.name for table in db.tables()} <= set(sa.inspect(db.engine).get_table_names())
    finally:
        app.extensions["sandbox"].db.dispose()


def test_a_shortcut_that_no_longer_applies_fails_the_restore() -> None:
    """Should a restore stop calling what it replaces, the restore fails instead of silently doing the slow
    thing (or, worse, skipping it), and what was replaced is put back all the same."""
    create_all = Database.__dict__["create_all"]
    with pytest.raises(AssertionError, match="was not called"):
        with _first_call_replaced(Database, "create_all", lambda db: None, lambda db: True):
            pass
    assert Database.__dict__["create_all"] is create_all
