"""Row-level data access shared by the generic OData handlers and the services' business logic.

Every write goes through :class:`Store`: it applies the entity's :class:`EntityBehavior` hooks (defaults,
number sequences, validation, state transitions, totals), bumps the row version, and records the change in
the outbox, all inside the caller's database transaction. Business actions (QualifyLead, PostInvoice, ...)
use the same methods, so an action's writes are validated, versioned and captured exactly like API writes.

Rows are plain dicts keyed by property name, plus the hidden ``_rowid`` and ``_rowversion``.
"""

from __future__ import annotations

import decimal
import functools
import itertools
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa

from sandbox.db import Database, insert_returning_ids, raise_row_version_counter, reserve_row_versions
from sandbox.errors import BadRequest, Conflict, NotFound, SandboxError
from sandbox.odata.dataverse import codes
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Model, new_guid, utcnow

if TYPE_CHECKING:
    from sandbox.outbox import Outbox

_PENDING_KEY = "sandbox.store.pending"
_MEMO_KEY = "sandbox.store.memo"
#: rows per uniqueness probe of :meth:`Store.prepare_many` (keeps the bound parameters far below any limit)
_PROBE_CHUNK = 500

T = TypeVar("T")

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

    store: Store
    entity: EntityType
    identity: str = DEFAULT_IDENTITY
    via_api: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedInsert:
    """Rows made ready by :meth:`Store.prepare_many`: completed and checked, not yet written."""

    entity: EntityType
    identity: str
    via_api: bool
    extra: dict[str, Any] | None
    #: the values as the caller gave them (a failed bulk write is replayed row by row from these)
    values: list[Mapping[str, Any]]
    contexts: list[WriteContext]
    rows: list[Row]


class _TxMemo:
    """The store's memoized reads of one transaction, and which tables each depends on."""

    __slots__ = ("values", "by_table")

    def __init__(self) -> None:
        self.values: dict[Hashable, Any] = {}
        self.by_table: dict[str, set[Hashable]] = {}


class EntityBehavior:
    """Business rules of one entity. Override what applies; every hook may raise a SandboxError."""

    #: Whether :meth:`Store.insert_many` may prepare a chunk of rows before writing any of them. A behavior
    #: may say True only when its ``on_create`` writes nothing and reads no row of its own table (so rows of
    #: one chunk never need to see each other) and its ``after_write`` does nothing for a create; rows are
    #: then the same, with the same versions and changes, as when inserted one by one.
    bulk_create: bool = False

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

    def __init__(
        self,
        model: Model,
        db: Database,
        outbox: Outbox | None = None,
        behaviors: Mapping[str, EntityBehavior] | None = None,
    ) -> None:
        self.model = model
        self.db = db
        self.outbox = outbox
        self.behaviors: dict[str, EntityBehavior] = dict(behaviors or {})
        #: called once per transaction, just before it commits, with every change it made (live sync)
        self.commit_hooks: list[Callable[[list[dict[str, Any]]], None]] = []
        self._statements: dict[Hashable, Any] = {}  # see statement()
        # table name -> a value that changes whenever a row of the table is updated or deleted (never
        # reset, unique across tables): lets request-scoped caches of rows found by key stay valid
        self._epochs: dict[str, int] = {}
        self._table_names: dict[str, str] = {}
        self._epoch_counter = itertools.count(1)
        #: entity -> (every property with its plain default or None, [(property, callable default, makes a
        #: fresh key)]) for new rows
        self._defaults: dict[str, tuple[dict[str, Any], list[tuple[str, Callable[[], Any], bool]]]] = {}

    # ---- reads ------------------------------------------------------------------------------------
    def entity(self, name: str) -> EntityType:
        try:
            return self.model.entities[name]
        except KeyError:
            raise NotFound(f"Entity '{name}' is not known.", codes.SEGMENT_NOT_FOUND) from None

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

    def find(
        self,
        entity_name: str,
        where: Mapping[str, Any] | None = None,
        *,
        order_by: Iterable[str] = (),
        limit: int | None = None,
    ) -> list[Row]:
        """Rows matching equality conditions, in ``order_by`` (property names; prefix ``-`` = desc)."""
        entity = self.entity(entity_name)
        where = where or {}
        order = tuple(order_by)
        signature = (
            "find",
            entity.name,
            tuple((name, value is None) for name, value in where.items()),
            order,
            limit is not None,
        )

        def build() -> Any:
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
            return query

        query = self.statement(signature, build)
        params = {f"sandbox_w_{name}": value for name, value in where.items() if value is not None}
        if limit is not None:
            params["sandbox_limit"] = limit
        return [dict(r._mapping) for r in self.db.connection.execute(query, params)]

    # ---- memoized reads of reference data ------------------------------------------------------------
    def memoized(self, key: Hashable, tables: Iterable[str], compute: Callable[[], T]) -> T:
        """``compute()`` once per database transaction for ``key``; again after a write to any of ``tables``.

        For the per-row look-ups of reference data that rules make on every write (the caller's owner, an
        exchange rate, a legal entity): a chunk of 500 creates then reads each of them once. Every insert,
        update and delete through the store drops the values that depend on the table it wrote, and a
        rolled-back savepoint drops them all, so a value is never older than the transaction's own writes.
        ``compute`` must only read, and the value must be treated as immutable (it is shared). Outside a
        transaction nothing is kept.
        """
        if not self.db.in_transaction:
            return compute()
        memo: _TxMemo | None = self.db.memo.get(_MEMO_KEY)
        if memo is None:
            memo = self.db.memo[_MEMO_KEY] = _TxMemo()
        try:
            value: T = memo.values[key]
            return value
        except KeyError:
            pass
        value = compute()
        memo.values[key] = value
        for name in tables:
            memo.by_table.setdefault(self._table_name(name), set()).add(key)
        return value

    def get_cached(self, entity_name: str, key: Mapping[str, Any]) -> Row | None:
        """:meth:`get`, memoized for the transaction (see :meth:`memoized`); a fresh copy on every call.

        Meant for reference data (currencies, customer groups, units, ...) that rules look up per row.
        """
        found = self.memoized(
            ("sandbox.get", self._table_name(entity_name), tuple(key.items())),
            (entity_name,),
            lambda: self.get(entity_name, key),
        )
        return dict(found) if found is not None else None

    def change_epoch(self, entity_name: str) -> int:
        """A number that changes whenever a row of the entity's table is updated or deleted through the store.

        Inserts leave it alone: they cannot change which row a unique key finds. Request-scoped caches of
        rows found by key compare it to know whether such a row may have changed since it was read.
        """
        return self._epochs.get(self._table_name(entity_name), 0)

    def _table_name(self, entity_name: str) -> str:
        name = self._table_names.get(entity_name)
        if name is None:  # looked up for every bind of every row: once per entity (models do not change)
            table = self.entity(entity_name).table
            assert table is not None
            name = self._table_names[entity_name] = table.name
        return name

    def _wrote(self, entity: EntityType, *, changed_rows: bool) -> None:
        """After a write to ``entity``'s table: drop memoized values that depend on it; bump its epoch."""
        table = entity.table
        assert table is not None
        if changed_rows:
            self._epochs[table.name] = next(self._epoch_counter)
        memo: _TxMemo | None = self.db.memo.get(_MEMO_KEY)
        if memo is not None:
            for key in memo.by_table.pop(table.name, ()):
                memo.values.pop(key, None)

    # ---- writes -----------------------------------------------------------------------------------
    def insert(
        self,
        entity_name: str,
        values: Mapping[str, Any],
        *,
        identity: str = DEFAULT_IDENTITY,
        via_api: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Row:
        """Create a row: property defaults, then the behavior's ``on_create``, then the key checks."""
        entity = self.entity(entity_name)
        ctx = WriteContext(self, entity, identity, via_api, extra or {})
        row, generated = self._new_row(entity, values)
        behavior = self.behavior(entity)
        if behavior is not None:
            behavior.on_create(ctx, row)
        self._check_unique(entity, row, None, fresh_key=self._key_is_fresh(entity, row, generated))
        row[ROWVERSION] = self.next_version()
        table = entity.table
        assert table is not None
        result = self.db.connection.execute(self._statement("insert", table), row)
        primary_key = result.inserted_primary_key
        assert primary_key is not None
        row[ROWID] = primary_key[0]
        self._wrote(entity, changed_rows=False)
        self._record(entity, "create", row, list(entity.properties), identity)
        if behavior is not None:
            behavior.after_write(ctx, "create", row, None)
        return row

    def can_insert_many(self, entity_name: str) -> bool:
        """Whether :meth:`prepare_many` may be used for the entity (its rules allow bulk creates)."""
        behavior = self.behavior(self.entity(entity_name))
        return behavior is None or behavior.bulk_create

    def insert_many(
        self,
        entity_name: str,
        values: Sequence[Mapping[str, Any]],
        *,
        identity: str = DEFAULT_IDENTITY,
        via_api: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> list[Row]:
        """Create rows as :meth:`insert` on each in turn would (same rows, versions, changes, errors), with a
        few statements per chunk instead of several per row where the entity's rules allow it.

        A chunk that fails a check in bulk is inserted again row by row, so the caller gets exactly the
        error that row-by-row inserts meet first (nothing was written by the failed attempt).
        """
        values = list(values)
        if len(values) < 2 or not self.can_insert_many(entity_name):
            return [self.insert(entity_name, v, identity=identity, via_api=via_api, extra=extra) for v in values]
        try:
            prepared = self.prepare_many(entity_name, values, identity=identity, via_api=via_api, extra=extra)
        except SandboxError:
            return [self.insert(entity_name, v, identity=identity, via_api=via_api, extra=extra) for v in values]
        return self.write_prepared(prepared)

    def prepare_many(
        self,
        entity_name: str,
        values: Sequence[Mapping[str, Any]],
        *,
        identity: str = DEFAULT_IDENTITY,
        via_api: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> PreparedInsert:
        """The first half of :meth:`insert_many`: defaults, stamps and ``on_create`` per row, then the key
        checks for the whole chunk (one query per key, plus duplicates inside the chunk). Writes nothing.

        Raises the first error it finds, which need not be the one row-by-row inserts would meet first;
        :meth:`insert_many` (and the OData layer) replay row by row when that matters.
        """
        entity = self.entity(entity_name)
        behavior = self.behavior(entity)
        if behavior is not None and not behavior.bulk_create:
            raise ValueError(f"the rules of '{entity.name}' do not allow bulk creates")
        contexts: list[WriteContext] = []
        rows: list[Row] = []
        fresh: list[bool] = []
        for given in values:
            ctx = WriteContext(self, entity, identity, via_api, extra or {})
            row, generated = self._new_row(entity, given)
            if behavior is not None:
                behavior.on_create(ctx, row)
            contexts.append(ctx)
            rows.append(row)
            fresh.append(self._key_is_fresh(entity, row, generated))
        self._check_unique_many(entity, rows, fresh)
        return PreparedInsert(entity, identity, via_api, extra, list(values), contexts, rows)

    def write_prepared(self, prepared: PreparedInsert) -> list[Row]:
        """The second half of :meth:`insert_many`: versions, one INSERT for the chunk, one outbox insert,
        then ``after_write`` per row. Returns the rows (with ``_rowid`` and ``_rowversion``) in order."""
        entity, rows = prepared.entity, prepared.rows
        if not rows:
            return []
        if any(row.keys() != rows[0].keys() for row in rows):
            # One statement for many rows needs one set of columns (a rule dropped one from some rows).
            return self._insert_each(prepared)
        table = entity.table
        assert table is not None
        first = self.next_versions(len(rows))
        for offset, row in enumerate(rows):
            row[ROWVERSION] = first + offset
        columns = list(entity.properties)  # every column is a changed column of a create; one list for all
        images = [image for image in (self._change_image(entity, row, columns) for row in rows) if image is not None]
        try:
            # A savepoint, so that a database error (a value too long for PostgreSQL, ...) can be replayed
            # row by row and answered exactly as before instead of with the whole chunk's parameters.
            with self.db.savepoint() as connection:
                rowids = insert_returning_ids(connection, table, ROWID, rows)
                if images and self.outbox is not None:
                    self.outbox.record_many(
                        self.db,
                        images[0][0],
                        "create",
                        prepared.identity,
                        [(key, changed, after) for _, key, changed, after in images],
                    )
        except sa.exc.StatementError:
            return self._insert_each(prepared)
        for row, rowid in zip(rows, rowids, strict=True):
            row[ROWID] = rowid
        self._wrote(entity, changed_rows=False)
        if images and self.commit_hooks:
            changed_once = list(columns)
            for name, key, _changed, after in images:
                self._pend(name, key, "create", changed_once, after, prepared.identity, copy_changed=False)
        behavior = self.behavior(entity)
        if behavior is not None:
            for ctx, row in zip(prepared.contexts, rows, strict=True):
                behavior.after_write(ctx, "create", row, None)
        return rows

    def _insert_each(self, prepared: PreparedInsert) -> list[Row]:
        """The prepared rows' values inserted one by one (as if never prepared)."""
        return [
            self.insert(
                prepared.entity.name, v, identity=prepared.identity, via_api=prepared.via_api, extra=prepared.extra
            )
            for v in prepared.values
        ]

    def update(
        self,
        entity_name: str,
        before: Row,
        changes: Mapping[str, Any],
        *,
        identity: str = DEFAULT_IDENTITY,
        via_api: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Row:
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
        self.db.connection.execute(
            self._statement("update", table),
            {**effective, ROWVERSION: after[ROWVERSION], "sandbox_rowid": before[ROWID]},
        )
        self._wrote(entity, changed_rows=True)
        self._record(entity, "update", after, list(effective), identity)
        if behavior is not None:
            behavior.after_write(ctx, "update", after, before)
        return after

    def delete(
        self,
        entity_name: str,
        row: Row,
        *,
        identity: str = DEFAULT_IDENTITY,
        via_api: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        entity = self.entity(entity_name)
        ctx = WriteContext(self, entity, identity, via_api, extra or {})
        behavior = self.behavior(entity)
        if behavior is not None:
            behavior.on_delete(ctx, row)
        table = entity.table
        assert table is not None
        self.db.connection.execute(self._statement("delete", table), {"sandbox_rowid": row[ROWID]})
        self._wrote(entity, changed_rows=True)
        self._record(entity, "delete", row, [], identity)
        if behavior is not None:
            behavior.after_write(ctx, "delete", row, row)

    # ---- helpers ----------------------------------------------------------------------------------
    def statement(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``'s statement, made once per store for ``key`` and reused with bound parameters.

        Building a SQLAlchemy statement and its cache key per call (``.values(**row)``, ``column == value``)
        cost more than SQLite's work itself. Rules that run their own SQL (number sequences) use it too."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = build()
        return found

    def _statement(self, kind: str, table: sa.Table) -> Any:
        """The reusable insert/update/delete of ``table`` (updates set the columns given as parameters)."""

        def build() -> Any:
            if kind == "insert":
                return sa.insert(table)
            if kind == "update":
                return sa.update(table).where(table.c[ROWID] == sa.bindparam("sandbox_rowid"))
            return sa.delete(table).where(table.c[ROWID] == sa.bindparam("sandbox_rowid"))

        return self.statement((kind, table.name), build)

    def behavior(self, entity: EntityType) -> EntityBehavior | None:
        """The rules of an entity; an alias (a view over another entity's table) shares its base's."""
        return self.behaviors.get(entity.name) or (self.behaviors.get(entity.alias_of) if entity.alias_of else None)

    def _new_row(self, entity: EntityType, values: Mapping[str, Any]) -> tuple[Row, dict[str, Any]]:
        """``values`` completed with property defaults and stamps, and the key values generated here."""
        defaults = self._defaults.get(entity.name)
        if defaults is None:
            plain = {prop.name: None if callable(prop.default) else prop.default for prop in entity.properties.values()}
            made = [
                (prop.name, prop.default, prop.default is new_guid and prop.name in entity.key)
                for prop in entity.properties.values()
                if callable(prop.default)
            ]
            defaults = self._defaults[entity.name] = (plain, made)
        plain, made = defaults
        # Copy and update run in C; the row keeps the properties' order whatever the values' order.
        row: Row = plain.copy()
        if values.keys() <= row.keys():
            row.update(values)
        else:
            row.update((name, value) for name, value in values.items() if name in row)
        generated: dict[str, Any] = {}
        for name, make, fresh_key in made:
            if name not in values:
                row[name] = value = make()
                if fresh_key:
                    generated[name] = value
        self._stamp(entity, row, created=True)
        return row, generated

    @staticmethod
    def _key_is_fresh(entity: EntityType, row: Row, generated: dict[str, Any]) -> bool:
        """Whether the whole primary key is a new uuid4 this store made for the row (and the rules kept):
        no other row can have it, so it needs no uniqueness query. A key a client supplied always does."""
        return len(generated) == len(entity.key) and all(row.get(k) is v for k, v in generated.items())

    def _stamp(self, entity: EntityType, row: Row, *, created: bool) -> None:
        now = utcnow()
        if created and self.model.created_on and self.model.created_on in entity.properties:
            row[self.model.created_on] = now
        if self.model.modified_on and self.model.modified_on in entity.properties:
            row[self.model.modified_on] = now

    def next_version(self) -> int:
        """A service-wide increasing row version (Dataverse ``versionnumber`` semantics), from the database's own
        counter inside the current transaction: unique across processes on one database and across restarts."""
        return self.next_versions(1)

    def next_versions(self, count: int) -> int:
        """``count`` consecutive row versions (see :meth:`next_version`); returns the first."""
        return reserve_row_versions(self.db.connection, count, self._highest_version)

    def _highest_version(self) -> int:
        """The highest row version any row of the service carries (where a new counter starts)."""
        highest = 0
        for entity in self.model.entities.values():
            table = entity.table
            assert table is not None
            if entity.alias_of is not None:
                continue
            value = self.db.connection.execute(sa.select(sa.func.max(table.c[ROWVERSION]))).scalar()
            highest = max(highest, int(value or 0))
        return highest

    def reset_versions(self) -> None:
        """After rows came in around the store (a reset, a snapshot import): the counter never falls behind them."""
        with self.db.transaction(may_sync=False):
            raise_row_version_counter(self.db.connection, self._highest_version())

    @staticmethod
    def _missing_key(entity: EntityType, values: Mapping[str, Any]) -> BadRequest:
        missing = [k for k, v in values.items() if v is None or v == ""]
        return BadRequest(
            f"The key property '{missing[0]}' of '{entity.name}' must have a value.", codes.INVALID_ARGUMENT
        )

    @staticmethod
    def _duplicate(entity: EntityType, values: Mapping[str, Any]) -> Conflict:
        described = ", ".join(f"{k}: {v}" for k, v in values.items())
        return Conflict(
            "A record with matching key values already exists.",
            codes.DUPLICATE_RECORD,
            detail=f"Cannot create a record in {entity.name}. {described}. The record already exists.",
        )

    def _key_to_check(self, entity: EntityType, key: Sequence[str], row: Row, fresh_key: bool) -> dict[str, Any] | None:
        """The values of ``key`` in ``row`` that a uniqueness check must look for, or None when there is nothing
        to check (an alternate key with an empty part, a primary key the store just generated). An empty
        primary key is refused."""
        values = {k: row.get(k) for k in key}
        if any(v is None or v == "" for v in values.values()):
            if list(key) == list(entity.key):
                raise self._missing_key(entity, values)
            return None
        if fresh_key and list(key) == list(entity.key):
            return None
        return values

    def _check_unique(self, entity: EntityType, row: Row, own_rowid: int | None, *, fresh_key: bool = False) -> None:
        table = entity.table
        assert table is not None
        for key in [entity.key, *entity.alternate_keys]:
            values = self._key_to_check(entity, key, row, fresh_key)
            if values is None:
                continue
            query = self.statement(
                ("unique", table.name, tuple(key), own_rowid is not None),
                functools.partial(_unique_query, table, key, excluding_own=own_rowid is not None),
            )
            params = {f"sandbox_w_{k}": v for k, v in values.items()}
            if own_rowid is not None:
                params["sandbox_own_rowid"] = own_rowid
            if self.db.connection.execute(query, params).first() is not None:
                raise self._duplicate(entity, values)

    def _check_unique_many(self, entity: EntityType, rows: list[Row], fresh: list[bool]) -> None:
        """:meth:`_check_unique` for a chunk of new rows: one query per key, and no two rows alike."""
        table = entity.table
        assert table is not None
        for key in [entity.key, *entity.alternate_keys]:
            probe: list[tuple[Any, ...]] = []
            seen: set[tuple[str | None, ...]] = set()
            for row, fresh_key in zip(rows, fresh, strict=True):
                values = self._key_to_check(entity, key, row, fresh_key)
                if values is None:
                    continue
                folded = tuple(fold_key_value(v) for v in values.values())
                if None in folded or folded in seen:
                    # Two rows of the chunk alike (or a value this check cannot compare the way SQL does):
                    # the second one would meet the first, as when inserted one by one.
                    raise self._duplicate(entity, values)
                seen.add(folded)
                probe.append(tuple(values.values()))
            found = self.find_keys(table, key, probe, first=True)
            if found:
                raise self._duplicate(entity, dict(zip(key, found[0], strict=True)))

    def find_keys(
        self, table: sa.Table, key: Sequence[str], probe: list[tuple[Any, ...]], *, first: bool = False
    ) -> list[tuple[Any, ...]]:
        """The ``key`` values of the rows of ``table`` whose ``key`` equals one of ``probe`` (tuples in the
        key's order), as SQL compares them: every such row, or with ``first`` the first one found. A few
        queries for any number of keys (one per :data:`_PROBE_CHUNK`)."""
        found: list[tuple[Any, ...]] = []
        connection = self.db.connection
        for start in range(0, len(probe), _PROBE_CHUNK):
            chunk = probe[start : start + _PROBE_CHUNK]
            leads = list({v[0] for v in chunk})
            if connection.dialect.name == "sqlite" and all(
                type(v) is str or type(v) is int for values in chunk for v in values
            ):
                # The same query written out: SQLAlchemy renders the names of an expanding IN's parameters
                # anew on every call, about a tenth of a bulk create's time. Text and integers need no bind
                # processing.
                result = connection.exec_driver_sql(
                    *_probe_sql(connection, table, list(key), leads, chunk, first=first)
                )
            else:
                query = self.statement(("unique_many", table.name, tuple(key)), lambda: _unique_many_query(table, key))
                params: dict[str, Any] = (
                    {"sandbox_keys": leads} if len(key) == 1 else {"sandbox_leads": leads, "sandbox_keys": chunk}
                )
                result = connection.execute(query, params)
            if first:
                row = result.first()
                if row is not None:
                    return [tuple(row)]
            else:
                found.extend(tuple(row) for row in result)
        return found

    def _change_image(
        self, entity: EntityType, row: Row, changed: list[str]
    ) -> tuple[str, dict[str, Any], list[str], dict[str, Any]] | None:
        """(table, key, changed, after) of a change to record, or None when the entity is not tracked."""
        if self.outbox is None or not entity.tracked:
            return None
        if entity.alias_of is not None:
            entity = self.model.entities[entity.alias_of]
        key = {k: row.get(k) for k in entity.key}
        # A delete keeps the row's last image so consumers can still tell which record it was.
        properties = entity.properties
        after = row.copy()  # a row as the store builds it: every property, and its version and id
        after.pop(ROWVERSION, None)
        after.pop(ROWID, None)
        if after.keys() != properties.keys():
            after = {k: row.get(k) for k in properties}
        return entity.name, key, changed, after

    def _record(self, entity: EntityType, operation: Operation, row: Row, changed: list[str], identity: str) -> None:
        image = self._change_image(entity, row, changed)
        if image is None:
            return
        name, key, changed, after = image
        assert self.outbox is not None
        self.outbox.record(self.db, name, key, operation, changed, after, identity)
        self._pend(name, key, operation, changed, after, identity)

    def _pend(
        self,
        name: str,
        key: dict[str, Any],
        operation: Operation,
        changed: list[str],
        after: dict[str, Any],
        identity: str,
        *,
        copy_changed: bool = True,
    ) -> None:
        """Remember a change for the commit hooks (live sync) of this transaction (``copy_changed=False``:
        ``changed`` is already a list of its own, which a chunk's rows may share: hooks only read it)."""
        if self.commit_hooks:
            pending: list[dict[str, Any]] | None = self.db.bag.get(_PENDING_KEY)
            if pending is None:
                pending = self.db.bag[_PENDING_KEY] = []
                self.db.before_commit(lambda: self._run_commit_hooks(pending))
            pending.append(
                {
                    "table": name,
                    "key": key,
                    "operation": operation,
                    "changed": list(changed) if copy_changed else changed,
                    "after": after,
                    "identity": identity,
                }
            )

    def _run_commit_hooks(self, changes: list[dict[str, Any]]) -> None:
        for hook in list(self.commit_hooks):
            hook(changes)


def _unique_query(table: sa.Table, key: Sequence[str], *, excluding_own: bool) -> Any:
    """Whether a row has ``key``'s values (``sandbox_w_<column>``), other than ``sandbox_own_rowid``."""
    query = sa.select(table.c[ROWID]).where(*[table.c[k] == sa.bindparam(f"sandbox_w_{k}") for k in key])
    if excluding_own:
        query = query.where(table.c[ROWID] != sa.bindparam("sandbox_own_rowid"))
    return query.limit(1)


def _unique_many_query(table: sa.Table, key: Sequence[str]) -> Any:
    """The rows having any of the ``sandbox_keys`` values of ``key`` (see :func:`_probe_sql` for SQLite)."""
    columns = [table.c[k] for k in key]
    if len(columns) == 1:
        return sa.select(*columns).where(columns[0].in_(sa.bindparam("sandbox_keys", expanding=True)))
    # SQLite scans the whole table for a row-value IN; the IN on the key's first column alone lets it search
    # the key's index (PostgreSQL does either way).
    return sa.select(*columns).where(
        columns[0].in_(sa.bindparam("sandbox_leads", expanding=True)),
        sa.tuple_(*columns).in_(sa.bindparam("sandbox_keys", expanding=True)),
    )


def _probe_sql(
    connection: sa.Connection,
    table: sa.Table,
    key: list[str],
    leads: list[Any],
    probe: list[tuple[Any, ...]],
    *,
    first: bool,
) -> tuple[str, tuple[Any, ...]]:
    """(SQL, parameters) of :meth:`Store.find_keys`'s query for ``probe`` (qmark parameters): the key's rows
    found (with ``first``, the first one), searched through the key's first column."""
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in key)
    sql = (
        f"SELECT {names} FROM {connection.dialect.identifier_preparer.format_table(table)} "
        f"WHERE {quote(key[0])} IN ({', '.join('?' * len(leads))})"
    )
    parameters: list[Any] = list(leads)
    if len(key) > 1:
        row_marks = "(" + ", ".join("?" * len(key)) + ")"
        sql += f" AND ({names}) IN (VALUES {', '.join([row_marks] * len(probe))})"
        for values in probe:
            parameters.extend(values)
    return (sql + " LIMIT 1" if first else sql), tuple(parameters)


#: text made only of what a finite number's text may hold (more than that: it may still not be one)
_MAYBE_FINITE_NUMBER = re.compile(r"[\s\d+\-._eE]*").fullmatch


def fold_key_value(value: Any) -> str | None:
    """A key value as SQL equality sees it, loosely: equal values always fold alike (a few unequal ones too,
    which only sends a chunk down the row-by-row path). None for a type this cannot vouch for."""
    if type(value) is str and _MAYBE_FINITE_NUMBER(value) is None:
        # A character no finite number has (GUIDs, names): text, without a failed Decimal() (an exception).
        return value.lower()
    if isinstance(value, (str, bool, int, float, decimal.Decimal)):
        # Numbers and numeric text fold to one canonical number (SQLite compares '10' and 10 as equal in a
        # column with affinity); other text folds to lower case.
        text = str(int(value)) if isinstance(value, bool) else str(value)
        try:
            number = decimal.Decimal(text)
        except decimal.InvalidOperation:
            return text.lower() if isinstance(value, str) else None
        if not number.is_finite():
            return text.lower()
        return format(number.normalize(), "f")
    return None
