"""Store-level fixtures for mock Sales: a seeded in-memory database, the rules, the actions, and factories.

Each test gets its own database with one transaction open for the whole test, so tests can call
``store.insert/update`` and action handlers directly without the HTTP layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from mock_sales.actions import register_actions
from mock_sales.rules import behaviors
from mock_sales.schema import build_model
from mock_sales.seed import seed
from mock_sales.status import SCM_OWNED_TABLES
from sandbox.db import Database, platform_metadata
from sandbox.errors import BadRequest, NotFound
from sandbox.odata.actions import ActionContext, ActionRegistry
from sandbox.odata.model import EntityType, Model
from sandbox.odata.store import Row, Store
from sandbox.wellknown import INTEGRATION_IDENTITY
from tests.golden import Golden

_REFERENCE = re.compile(r"^/?(?P<set>\w+)\((?P<id>[0-9a-fA-F-]{36})\)$")


@dataclass
class Sales:
    """A seeded mock Sales at Store level, with helpers to build documents and run actions."""

    model: Model
    db: Database
    store: Store
    registry: ActionRegistry

    # -- look-ups --------------------------------------------------------------------------------------
    def one(self, entity: str, **where: Any) -> Row:
        rows = self.store.find(entity, where)
        assert len(rows) == 1, f"expected one {entity} matching {where}, found {len(rows)}"
        return rows[0]

    def get(self, entity: str, row: Row) -> Row:
        """The current version of ``row``."""
        key = self.model.entities[entity].key[0]
        return self.store.require(entity, {key: row[key]})

    def ref(self, entity: str, row: Row) -> str:
        """An ``@odata.bind`` style reference to ``row``."""
        entity_type = self.model.entities[entity]
        return f"/{entity_type.entity_set}({row[entity_type.key[0]]})"

    def account(self, number: str = "US-001") -> Row:
        return self.one("account", accountnumber=number)

    def product(self, number: str = "D0001") -> Row:
        return self.one("product", msdyn_productnumber=number)

    def company(self, code: str = "usmf") -> Row:
        return self.one("cdm_company", cdm_companycode=code)

    @property
    def price_list(self) -> Row:
        return self.one("pricelevel", name="Contoso USD")

    # -- writes ----------------------------------------------------------------------------------------
    def insert(self, entity: str, values: Row, *, via_api: bool = True) -> Row:
        return self.store.insert(entity, values, identity="user", via_api=via_api)

    def update(self, entity: str, row: Row, changes: Row, *, via_api: bool = True) -> Row:
        return self.store.update(entity, self.get(entity, row), changes, identity="user", via_api=via_api)

    def delete(self, entity: str, row: Row, *, via_api: bool = True) -> None:
        self.store.delete(entity, self.get(entity, row), identity="user", via_api=via_api)

    def document(
        self, entity: str = "quote", *, account: str = "US-001", lines: list[tuple[str, Any]] = (), **values: Any
    ) -> Row:
        """A header for ``account`` on the demo price list, with product lines ``[(number, quantity), ...]``."""
        header = self.insert(
            entity,
            {
                "name": f"Test {entity}",
                "_customerid_value": self.account(account)["accountid"],
                "_customerid_type": "account",
                "_pricelevelid_value": self.price_list["pricelevelid"],
                **values,
            },
        )
        line_entity, fk = {
            "quote": ("quotedetail", "_quoteid_value"),
            "salesorder": ("salesorderdetail", "_salesorderid_value"),
            "invoice": ("invoicedetail", "_invoiceid_value"),
            "opportunity": ("opportunityproduct", "_opportunityid_value"),
        }[entity]
        # invoice lines are SCM's: only dual-write writes them (mock_sales.status.SCM_OWNED_TABLES)
        writer = INTEGRATION_IDENTITY if line_entity in SCM_OWNED_TABLES else "user"
        for number, quantity in lines:
            self.store.insert(
                line_entity,
                {
                    fk: header[f"{entity}id"],
                    "_productid_value": self.product(number)["productid"],
                    "quantity": Decimal(str(quantity)),
                },
                identity=writer,
            )
        return self.get(entity, header)

    def lines(self, entity: str, header: Row) -> list[Row]:
        line_entity, fk = {
            "quote": ("quotedetail", "_quoteid_value"),
            "salesorder": ("salesorderdetail", "_salesorderid_value"),
            "invoice": ("invoicedetail", "_invoiceid_value"),
            "opportunity": ("opportunityproduct", "_opportunityid_value"),
        }[entity]
        return self.store.find(line_entity, {fk: header[f"{entity}id"]}, order_by=["sequencenumber"])

    def active_quote(self, lines: list[tuple[str, Any]] = (("D0001", 2),), **values: Any) -> Row:
        quote = self.document("quote", lines=list(lines), **values)
        return self.update("quote", quote, {"statecode": 1, "statuscode": 2})

    # -- actions ---------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> tuple[EntityType, Row]:
        """A small stand-in for the HTTP layer's reference resolution: ``/set(guid)`` or a typed dict."""
        if isinstance(value, dict):
            name = str(value["@odata.type"]).lstrip("#").rsplit(".", 1)[-1]
            entity = self.model.entities[name]
            row_id = value.get(entity.key[0])
        else:
            match = _REFERENCE.match(str(value).split("/api/data/v9.2", 1)[-1])
            if match is None:
                raise BadRequest(f"bad reference {value!r}", "0x80048d19")
            entity = self.model.by_set[match["set"]]
            row_id = match["id"].lower()
        row = self.store.get(entity.name, {entity.key[0]: row_id})
        if row is None:
            raise NotFound(f"Entity '{entity.name}' With Id = {row_id} Does Not Exist")
        return entity, row

    def run(
        self,
        name: str,
        params: dict[str, Any],
        *,
        target: Row | None = None,
        bound_to: str | None = None,
        collection: bool = False,
    ) -> Any:
        spec = self.registry.find(name, bound_to, collection)
        assert spec is not None, f"action {name} is not registered"
        ctx = ActionContext(self.store, "user", resolve_reference=self.resolve)
        return spec.handler(ctx, target, params)


@pytest.fixture(scope="session")
def _seeded_template() -> Iterator[tuple[Model, Database]]:
    """One seeded database per test session; each test works on its own copy."""
    model = build_model()
    db = Database("sqlite://", [model.metadata, platform_metadata()])
    db.create_all()
    with db.transaction():
        seed(Store(model, db, None, behaviors()), 1)
    yield model, db
    db.dispose()


@pytest.fixture
def env(_seeded_template: tuple[Model, Database]) -> Iterator[Sales]:
    """A seeded mock Sales (seed 1) inside one open transaction, private to the test."""
    model, template = _seeded_template
    db = Database("sqlite://", [model.metadata, platform_metadata()])
    source, target = template.engine.raw_connection(), db.engine.raw_connection()
    try:
        # Copying the seeded file is ~10x faster than seeding again for every test.
        source.driver_connection.backup(target.driver_connection)
    finally:
        source.close()
        target.close()
    store = Store(model, db, None, behaviors())
    registry = ActionRegistry()
    register_actions(registry)
    with db.transaction():
        yield Sales(model, db, store, registry)
    db.dispose()


@pytest.fixture(scope="module")
def https_sales(tmp_path_factory: pytest.TempPathFactory, golden: Golden) -> Iterator[tuple[str, Any, Any]]:
    """Mock Sales (seed 1, in memory) served over HTTPS on a free loopback port for one module:
    ``(url, CA file, app)``; the real-client tests point Microsoft's and the JavaScript client at it."""
    from sandbox.server import ServerGroup, ensure_tls_files

    tls = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    app = golden.service_app("sales")
    group = ServerGroup(host="127.0.0.1", tls=tls)
    server = group.start("sales", app, 0)
    try:
        yield server.url, tls.ca_cert, app
    finally:
        group.stop_all()
        app.extensions["sandbox"].db.dispose()
