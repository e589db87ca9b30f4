"""Row-level data access shared by the generic OData handlers and the services' business logic.

Every write goes through :class:`Store`: it applies the entity's :class:`EntityBehavior` hooks (defaults,
number sequences, validation, state transitions, totals), bumps the row version, and records the change in
the outbox, all inside the caller's database transaction. Business actions (QualifyLead, PostInvoice, ...)
use the same methods, so an action's writes are validated, versioned and captured exactly like API writes.

Rows are plain dicts keyed by property name, plus the hidden ``_rowid`` and ``_rowversion``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping

import sqlalchemy as sa

from sandbox.db import Database
from sandbox.errors import BadRequest, Conflict, NotFound
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Model, utcnow

if TYPE_CHECKING:
    from sandbox.outbox import Outbox

_PENDING_KEY = "sandbox.store.pending"

Row = dict[str, Any]
Operation = Literal["create", "update", "delete"]

# The identity a write is done as when no caller is named (a person using the app).
DEFAULT_IDENTITY = "user"


@dataclass
class WriteContext:
    """What a behavior hook knows about the write it is checking.

    ``via_api`` is True for a plain create/update/delete over OData and False for writes made by a
    business action or the seeder, so rules like "only Draft quotes are editable" apply to users only.
    """

    store: "Store"
    entity: EntityType
    identity: str = DEFAULT_IDENTITY
    via_api: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class EntityBehavior:
    """Business rules of one entity. Override what applies; every hook may raise a SandboxError."""

    def on_create(self, ctx: WriteContext, values: Row) -> None:
        """Fill defaults, numbers and derived columns in ``values``; validate."""

    def on_update(self, ctx: WriteContext, before: Row, changes: Row) -> None:
        """Validate and complete ``changes`` (only the columns being changed) against ``before``."""

    def on_delete(self, ctx: WriteContext, row: Row) -> None:
        """Refuse or cascade a delete."""

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        """React once the row is written (e.g. recompute a parent's totals)."""


class Store:
    """CRUD over the model's tables inside the current transaction, with hooks and change capture."""

    def __init__(self, model: Model, db: Database, outbox: "Outbox | None" = None,
                 behaviors: Mapping[str, EntityBehavior] | None = None) -> None:
        self.model = model
        self.db = db
        self.outbox = outbox
        self.behaviors: dict[str, EntityBehavior] = dict(behaviors or {})
        self._version_lock = threading.Lock()
        self._versions = itertools.count(1)
        self._version_floor_loaded = False
        #: called once per transaction, just before it commits, with every change it made (live sync)
        self.commit_hooks: list[Callable[[list[dict[str, Any]]], None]] = []
        # Statements built once and reused with bound parameters: building a SQLAlchemy statement and its
        # cache key per call (``.values(**row)``, ``column == value``) cost more than SQLite's work itself.
        self._statements: dict[tuple[Any, ...], Any] = {}

    # ---- reads ------------------------------------------------------------------------------------
    def entity(self, name: str) -> EntityType:
        try:
            return self.model.entities[name]
        except KeyError:
            raise NotFound(f"Entity '{name}' is not known.", "0x8006088a") from None

    def get(self, entity_name: str, key: Mapping[str, Any]) -> Row | None:
        """The row whose columns equal ``key`` (primary or alternate key), or None."""
        rows = self.find(entity_name, key, limit=2)
        return rows[0] if rows else None

    def require(self, entity_name: str, key: Mapping[str, Any]) -> Row:
        row = self.get(entity_name, key)
        if row is None:
            key_text = ",".join(f"{k}={v}" for k, v in key.items())
            raise NotFound(f"Entity '{entity_name}' With Id = {key_text} Does Not Exist")
        return row

    def find(self, entity_name: str, where: Mapping[str, Any] | None = None, *,
             order_by: Iterable[str] = (), limit: int | None = None) -> list[Row]:
        """Rows matching equality conditions, in ``order_by`` (property names; prefix ``-`` = desc)."""
        entity = self.entity(entity_name)
        where = where or {}
        order = tuple(order_by)
        signature = ("find", entity.name, tuple((name, value is None) for name, value in where.items()), order,
                     limit is not None)
        query = self._statements.get(signature)
        if query is None:
            table = entity.table
            assert table is not None
            query = sa.select(table)
            for name, value in where.items():
                column = table.c[name]
                query = query.where(column.is_(None) if value is None else column == sa.bindparam(f"sandbox_w_{name}"))
            orders = [table.c[name[1:]].desc() if name.startswith("-") else table.c[name] for name in order]
            query = query.order_by(*orders, table.c[ROWID]) if orders else query.order_by(table.c[ROWID])
            if limit is not None:
                query = query.limit(sa.bindparam("sandbox_limit", type_=sa.Integer))
            self._statements[signature] = query
        params = {f"sandbox_w_{name}": value for name, value in where.items() if value is not None}
        if limit is not None:
            params["sandbox_limit"] = limit
        return [dict(r._mapping) for r in self.db.connection.execute(query, params)]

    # ---- writes -----------------------------------------------------------------------------------
    def insert(self, entity_name: str, values: Mapping[str, Any], *, identity: str = DEFAULT_IDENTITY,
               via_api: bool = False, extra: dict[str, Any] | None = None) -> Row:
        """Create a row: property defaults, then the behavior's ``on_create``, then the key checks."""
        entity = self.entity(entity_name)
        ctx = WriteContext(self, entity, identity, via_api, extra or {})
        row: Row = {}
        for prop in entity.properties.values():
            if prop.name in values:
                row[prop.name] = values[prop.name]
            else:
                row[prop.name] = prop.default_value()
        self._stamp(entity, row, created=True)
        behavior = self.behavior(entity)
        if behavior is not None:
            behavior.on_create(ctx, row)
        self._check_unique(entity, row, None)
        row[ROWVERSION] = self.next_version()
        table = entity.table
        assert table is not None
        result = self.db.connection.execute(self._statement("insert", table), row)
        row[ROWID] = result.inserted_primary_key[0]
        self._record(entity, "create", row, list(entity.properties), identity)
        if behavior is not None:
            behavior.after_write(ctx, "create", row, None)
        return row

    def update(self, entity_name: str, before: Row, changes: Mapping[str, Any], *,
               identity: str = DEFAULT_IDENTITY, via_api: bool = False,
               extra: dict[str, Any] | None = None) -> Row:
        """Change some columns of ``before`` (a row as read). Unchanged values are not recorded."""
        entity = self.entity(entity_name)
        ctx = WriteContext(self, entity, identity, via_api, extra or {})
        pending: Row = dict(changes)
        behavior = self.behavior(entity)
        if behavior is not None:
            behavior.on_update(ctx, before, pending)
        effective = {k: v for k, v in pending.items() if k in entity.properties and before.get(k) != v}
        if not effective:
            return before
        self._stamp(entity, effective, created=False)
        after = {**before, **effective}
        if any(k in effective for key in [entity.key, *entity.alternate_keys] for k in key):
            self._check_unique(entity, after, before[ROWID])
        after[ROWVERSION] = self.next_version()
        table = entity.table
        assert table is not None
        self.db.connection.execute(self._statement("update", table),
                                   {**effective, ROWVERSION: after[ROWVERSION], "sandbox_rowid": before[ROWID]})
        self._record(entity, "update", after, list(effective), identity)
        if behavior is not None:
            behavior.after_write(ctx, "update", after, before)
        return after

    def delete(self, entity_name: str, row: Row, *, identity: str = DEFAULT_IDENTITY,
               via_api: bool = False, extra: dict[str, Any] | None = None) -> None:
        entity = self.entity(entity_name)
        ctx = WriteContext(self, entity, identity, via_api, extra or {})
        behavior = self.behavior(entity)
        if behavior is not None:
            behavior.on_delete(ctx, row)
        table = entity.table
        assert table is not None
        self.db.connection.execute(self._statement("delete", table), {"sandbox_rowid": row[ROWID]})
        self._record(entity, "delete", row, [], identity)
        if behavior is not None:
            behavior.after_write(ctx, "delete", row, row)

    # ---- helpers ----------------------------------------------------------------------------------
    def _statement(self, kind: str, table: sa.Table) -> Any:
        """The reusable insert/update/delete of ``table`` (updates set the columns given as parameters)."""
        statement = self._statements.get((kind, table.name))
        if statement is None:
            if kind == "insert":
                statement = sa.insert(table)
            elif kind == "update":
                statement = sa.update(table).where(table.c[ROWID] == sa.bindparam("sandbox_rowid"))
            else:
                statement = sa.delete(table).where(table.c[ROWID] == sa.bindparam("sandbox_rowid"))
            self._statements[(kind, table.name)] = statement
        return statement

    def behavior(self, entity: EntityType) -> EntityBehavior | None:
        """The rules of an entity; an alias (a view over another entity's table) shares its base's."""
        return self.behaviors.get(entity.name) or (
            self.behaviors.get(entity.alias_of) if entity.alias_of else None)

    def _stamp(self, entity: EntityType, row: Row, *, created: bool) -> None:
        now = utcnow()
        if created and self.model.created_on and self.model.created_on in entity.properties:
            row[self.model.created_on] = now
        if self.model.modified_on and self.model.modified_on in entity.properties:
            row[self.model.modified_on] = now

    def next_version(self) -> int:
        """A service-wide increasing row version (Dataverse ``versionnumber`` semantics)."""
        with self._version_lock:
            if not self._version_floor_loaded:
                self._load_version_floor()
            return next(self._versions)

    def _load_version_floor(self) -> None:
        highest = 0
        for entity in self.model.entities.values():
            table = entity.table
            assert table is not None
            value = self.db.connection.execute(sa.select(sa.func.max(table.c[ROWVERSION]))).scalar()
            highest = max(highest, value or 0)
        self._versions = itertools.count(highest + 1)
        self._version_floor_loaded = True

    def reset_versions(self) -> None:
        with self._version_lock:
            self._version_floor_loaded = False

    def _check_unique(self, entity: EntityType, row: Row, own_rowid: int | None) -> None:
        table = entity.table
        assert table is not None
        for key in [entity.key, *entity.alternate_keys]:
            values = {k: row.get(k) for k in key}
            if any(v is None or v == "" for v in values.values()):
                if key == entity.key:
                    missing = [k for k, v in values.items() if v is None or v == ""]
                    raise BadRequest(f"The key property '{missing[0]}' of '{entity.name}' must have a value.",
                                     "0x80040203")
                continue
            signature = ("unique", table.name, tuple(key), own_rowid is not None)
            query = self._statements.get(signature)
            if query is None:
                query = sa.select(table.c[ROWID]).where(*[table.c[k] == sa.bindparam(f"sandbox_w_{k}") for k in key])
                if own_rowid is not None:
                    query = query.where(table.c[ROWID] != sa.bindparam("sandbox_own_rowid"))
                query = query.limit(1)
                self._statements[signature] = query
            params = {f"sandbox_w_{k}": v for k, v in values.items()}
            if own_rowid is not None:
                params["sandbox_own_rowid"] = own_rowid
            if self.db.connection.execute(query, params).first() is not None:
                described = ", ".join(f"{k}: {v}" for k, v in values.items())
                raise Conflict("A record with matching key values already exists.", "0x80040237",
                               detail=f"Cannot create a record in {entity.name}. {described}. "
                                      "The record already exists.")

    def _record(self, entity: EntityType, operation: Operation, row: Row, changed: list[str],
                identity: str) -> None:
        if self.outbox is None or not entity.tracked:
            return
        if entity.alias_of is not None:
            entity = self.model.entities[entity.alias_of]
        key = {k: row.get(k) for k in entity.key}
        # A delete keeps the row's last image so consumers can still tell which record it was.
        after = {k: row.get(k) for k in entity.properties}
        self.outbox.record(self.db, entity.name, key, operation, changed, after, identity)
        if self.commit_hooks:
            pending: list[dict[str, Any]] | None = self.db.bag.get(_PENDING_KEY)
            if pending is None:
                pending = self.db.bag[_PENDING_KEY] = []
                self.db.before_commit(lambda: self._run_commit_hooks(pending))
            pending.append({"table": entity.name, "key": key, "operation": operation, "changed": list(changed),
                            "after": after, "identity": identity})

    def _run_commit_hooks(self, changes: list[dict[str, Any]]) -> None:
        for hook in list(self.commit_hooks):
            hook(changes)
