"""Harness and fixtures for the SCM model, rules and processes, exercised through the store (no HTTP layer).

Each helper call of :class:`Scm` runs in its own database transaction, like one HTTP request: a refusal
rolls back everything the call wrote.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mock_scm import lookups
from mock_scm.actions import register_actions
from mock_scm.rules import behaviors
from mock_scm.schema import build_model
from mock_scm.seed import seed
from mock_scm.settings import ScmSettings
from sandbox.db import Database, platform_metadata
from sandbox.errors import SandboxError
from sandbox.odata.actions import ActionContext, ActionRegistry, EntityResult
from sandbox.odata.store import Row, Store
from tests.golden import Golden, load_database, load_version_floor

#: The fixed "today" every SCM of these tests runs with, so expected dates do not depend on the clock.
TODAY = dt.date(2024, 5, 17)


class Scm:
    """One in-memory SCM database with the real rules, actions and (optionally) the default seed."""

    def __init__(
        self,
        *,
        seeded: bool = True,
        seed_value: int = 1,
        options: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """``options`` are the seed's; ``settings`` the service options the rules and actions run with."""
        self.settings = ScmSettings.from_options({"today": TODAY, **(settings or {})})
        self.model = build_model()
        self.db = Database("sqlite://", [self.model.metadata, platform_metadata()])
        self.db.create_all()
        self.store = Store(self.model, self.db, None, behaviors(self.settings))
        self.registry = ActionRegistry()
        register_actions(self.registry, self.settings)
        self.seed_counts: dict[str, int] = {}
        if seeded:
            self.seed_counts = seed(self.store, seed_value, options, settings=self.settings)

    # ---- CRUD as one request each -----------------------------------------------------------------------
    def insert(self, entity: str, values: dict[str, Any], *, identity: str = "user", via_api: bool = True) -> Row:
        with self.db.transaction():
            return self.store.insert(
                entity,
                {"dataAreaId": "usmf", **values} if self.model.entities[entity].company_property else values,
                identity=identity,
                via_api=via_api,
            )

    def get(self, entity: str, key: dict[str, Any]) -> Row | None:
        with self.db.transaction():
            company = self.model.entities[entity].company_property
            return self.store.get(entity, {"dataAreaId": "usmf", **key} if company else key)

    def require(self, entity: str, key: dict[str, Any]) -> Row:
        row = self.get(entity, key)
        assert row is not None, f"{entity} {key} missing"
        return row

    def update(
        self, entity: str, key: dict[str, Any], changes: dict[str, Any], *, identity: str = "user", via_api: bool = True
    ) -> Row:
        with self.db.transaction():
            company = self.model.entities[entity].company_property
            before = self.store.get(entity, {"dataAreaId": "usmf", **key} if company else key)
            assert before is not None
            return self.store.update(entity, before, changes, identity=identity, via_api=via_api)

    def delete(self, entity: str, key: dict[str, Any], *, via_api: bool = True) -> None:
        with self.db.transaction():
            company = self.model.entities[entity].company_property
            row = self.store.get(entity, {"dataAreaId": "usmf", **key} if company else key)
            assert row is not None
            self.store.delete(entity, row, via_api=via_api)

    def find(self, entity: str, where: dict[str, Any] | None = None) -> list[Row]:
        with self.db.transaction():
            return self.store.find(entity, where)

    # ---- actions ------------------------------------------------------------------------------------------
    def act(
        self,
        name: str,
        bound: str,
        key: dict[str, Any],
        params: dict[str, Any] | None = None,
        *,
        identity: str = "user",
        company: str = "usmf",
    ) -> EntityResult:
        """Run the action ``name`` bound to ``bound`` on the row with ``key`` in ``company``."""
        spec = self.registry.find(name, bound)
        assert spec is not None, f"no action {name} bound to {bound}"
        with self.db.transaction():
            target = self.store.get(bound, {"dataAreaId": company, **key})
            assert target is not None
            ctx = ActionContext(self.store, identity, resolve_reference=_no_references)
            return spec.handler(ctx, target, params or {})

    def order_action(
        self, name: str, number: str, params: dict[str, Any] | None = None, *, company: str = "usmf"
    ) -> Row:
        """Run an order action on SalesOrderHeadersV2 and return the row it answers with."""
        return self.act(name, "SalesOrderHeaderV2", {"SalesOrderNumber": number}, params, company=company).row

    @staticmethod
    def refused(excinfo: pytest.ExceptionInfo[SandboxError]) -> str:
        """The Infolog text of a refusal (after checking it is a 400 with the F&O empty code)."""
        error = excinfo.value
        assert error.status == 400, error.status
        assert error.code == ""
        return error.detail or error.message

    # ---- shortcuts ----------------------------------------------------------------------------------------
    def order(self, customer: str = "US-001", lines: list[tuple[str, Any]] | None = None, **header: Any) -> str:
        """A new sales order with ``lines`` (item, quantity); returns its number."""
        row = self.insert("SalesOrderHeaderV2", {"OrderingCustomerAccountNumber": customer, **header})
        for item, quantity in lines if lines is not None else [("D0001", 5)]:
            self.insert(
                "SalesOrderLine",
                {
                    "dataAreaId": row["dataAreaId"],
                    "SalesOrderNumber": row["SalesOrderNumber"],
                    "ItemNumber": item,
                    "OrderedSalesQuantity": Decimal(str(quantity)),
                },
            )
        return row["SalesOrderNumber"]

    def header(self, number: str) -> Row:
        return self.require("SalesOrderHeaderV2", {"SalesOrderNumber": number})

    def lines(self, number: str, company: str = "usmf") -> list[Row]:
        with self.db.transaction():
            return lookups.order_lines(self.store, company, number)

    def onhand(self, item: str, warehouse: str = "11", site: str = "1", company: str = "usmf") -> Row:
        row = self.get(
            "WarehouseOnHandV2",
            {"dataAreaId": company, "ItemNumber": item, "InventorySiteId": site, "InventoryWarehouseId": warehouse},
        )
        assert row is not None
        return row


def _no_references(value: Any) -> Any:
    raise AssertionError(f"unexpected reference {value!r}")


@pytest.fixture
def scm_app(golden: Golden) -> Iterator[Flask]:
    """Mock SCM with the default seed (a copy of the golden one), its dates computed from a fixed 'today' (TODAY)."""
    app = golden.service_app("scm", options={"today": TODAY})
    yield app
    app.extensions["sandbox"].db.dispose()


@pytest.fixture(scope="session")
def _scm_golden(golden: Golden) -> tuple[Path, dict[str, int]]:
    """The SCM harness's seeded database (seed 1), built once per session, and its seed counts."""
    counts_file = golden.folder / "scm-harness-counts.json"

    def seeded() -> Database:
        scm = Scm()
        counts_file.write_text(json.dumps(scm.seed_counts))
        return scm.db

    path = golden.database("scm-harness", seeded)
    return path, json.loads(counts_file.read_text())


@pytest.fixture
def scm_env(_scm_golden: tuple[Path, dict[str, int]]) -> Scm:
    """The SCM with the default seed (seed 1): a private copy of the session's seeded database."""
    path, counts = _scm_golden
    scm = Scm(seeded=False)
    load_database(path, scm.db)
    load_version_floor(scm.store, scm.db)  # row versions continue after the copied rows'
    scm.seed_counts = dict(counts)
    return scm


@pytest.fixture
def make_scm_env() -> type[Scm]:
    """The harness class itself, for tests that build several SCMs (other seeds, options)."""
    return Scm


@pytest.fixture
def empty_scm_env() -> Scm:
    """The SCM with empty tables."""
    return Scm(seeded=False)
