"""Per-service database: one engine, nested transactions scoped to the current thread.

Every request runs inside :meth:`Database.transaction`; a ``$batch`` change set or a business action
that writes several rows opens an outer transaction and every write inside joins it, so the whole unit
commits or rolls back together. Callbacks registered with :meth:`Database.before_commit` run just
before the outermost commit (the live-sync hook uses this: a failure there rolls everything back).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import operator
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME_TYPE
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, SQLModel

from sandbox.errors import ServiceUnavailable
from sandbox.locks import SyncGate

# SQLite has one writer at a time; waiting longer than this for the service's lock (or the stack's live-sync
# gate) means something is stuck: with one lock order nothing waits in a cycle, so contention alone never gets here.
LOCK_TIMEOUT_SECONDS = 30.0
#: the most parameters SQLite takes in one statement (SQLITE_MAX_VARIABLE_NUMBER: 32766 since 3.32, 999 before)
SQLITE_MAX_PARAMETERS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class _TxState(threading.local):
    def __init__(self) -> None:
        self.connection: sa.Connection | None = None
        self.transaction: sa.RootTransaction | None = None
        self.depth = 0
        self.before_commit: list[Callable[[], None]] = []
        self.after_commit: list[Callable[[], None]] = []
        self.after_rollback: list[Callable[[], None]] = []
        self.bag: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}


def sqlite_url_for(data_dir: Path | None, name: str) -> str:
    """The SQLite URL of one service: a file in the data folder, or throwaway memory when no folder."""
    if data_dir is None:
        return "sqlite://"
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / f'{name}.sqlite').as_posix()}"


class Database:
    """An engine plus thread-scoped nested transactions.

    ``metadatas`` are created on :meth:`create_all`; the service model's tables and the platform's own
    SQLModel tables (outbox, journal) live side by side in the same database so they commit together.
    """

    def __init__(self, url: str, metadatas: list[sa.MetaData]) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                # One shared connection keeps the in-memory database alive across threads.
                kwargs["poolclass"] = StaticPool
        self.engine = sa.create_engine(url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite opens transactions lazily and breaks SAVEPOINT; take over BEGIN ourselves.
            sa.event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        self.metadatas = metadatas
        self._state = _TxState()
        # SQLite: serialize transactions (one writer, and a shared in-memory connection). Server DBs need none.
        self._lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        #: the stack's live-sync gate while live sync is on (see :mod:`sandbox.locks`): taken before the database
        #: lock by every transaction that may call the bridge
        self.sync_gate: SyncGate | None = None
        #: the service this database belongs to: on a row-locking store, writes that sync from one service share
        #: the gate (:mod:`sandbox.locks`); on SQLite each takes it alone
        self.sync_side: str | None = None

    # ---- schema -----------------------------------------------------------------------------------
    def create_all(self) -> None:
        for metadata in self.metadatas:
            metadata.create_all(self.engine)
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                create_row_version_sequence(connection)

    def drop_all(self) -> None:
        for metadata in reversed(self.metadatas):
            metadata.drop_all(self.engine)
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                connection.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {ROW_VERSION_SEQUENCE}")

    def analyze(self) -> None:
        """Refresh the planner's statistics (PostgreSQL ``ANALYZE``; SQLite ``PRAGMA optimize``) after a bulk load:
        PostgreSQL plans the queries of a table it believes empty as scans, which halves sync throughput until
        autovacuum's next look."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
            elif self.is_sqlite:
                connection.exec_driver_sql("PRAGMA optimize")

    def tables(self) -> list[sa.Table]:
        return [table for metadata in self.metadatas for table in metadata.sorted_tables]

    # ---- transactions -----------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return self._state.depth > 0

    @property
    def connection(self) -> sa.Connection:
        """The current thread's connection; only valid inside :meth:`transaction`."""
        if self._state.connection is None:
            raise RuntimeError("no transaction is open on this thread")
        return self._state.connection

    @property
    def bag(self) -> dict[str, Any]:
        """Per-transaction scratch space (e.g. the changes recorded by the outbox in this transaction)."""
        return self._state.bag

    @property
    def memo(self) -> dict[Any, Any]:
        """Per-transaction cache of values derived from reads (see :meth:`sandbox.odata.store.Store.memoized`).

        Unlike :attr:`bag` it is emptied when a savepoint rolls back: a value read inside the savepoint may
        describe rows that are gone again. Whoever writes outside the store must call :meth:`forget_memo`.
        """
        return self._state.memo

    def forget_memo(self) -> None:
        """Drop every memoized value of the current transaction (after writes the store did not see)."""
        self._state.memo.clear()

    @contextlib.contextmanager
    def transaction(self, timeout: float | None = None, *, may_sync: bool = True) -> Iterator[sa.Connection]:
        """Open (or join) the thread's transaction. The outermost level commits or rolls back.

        ``may_sync``: whether the transaction may call the bridge before it commits (a write by anyone but the
        integration identity). Such a transaction takes the live-sync gate first, then the database lock
        (:mod:`sandbox.locks`): one lock order for every write that can sync, so two live syncs crossing each
        other wait in turn, never for each other. Reads and the bridge's own writes say False: they call
        nobody while they hold the database. ``timeout`` bounds each wait (default :data:`LOCK_TIMEOUT_SECONDS`).

        The gate is let go as soon as the before-commit hooks (the live-sync call) are done, before the commit
        itself: from then on the transaction waits for nothing the other service holds.
        """
        state = self._state
        if state.depth > 0:
            state.depth += 1
            try:
                yield state.connection  # type: ignore[misc]
            finally:
                state.depth -= 1
            return
        wait = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
        gate = self.sync_gate if may_sync else None
        side = None if self.is_sqlite else self.sync_side  # SQLite: one writer, so each takes the gate alone
        if gate is not None and not gate.acquire(wait, side):
            raise ServiceUnavailable("The database is busy; try again.", headers={"Retry-After": "1"})
        gate_held = gate is not None

        def let_gate_go() -> None:
            nonlocal gate_held
            if gate_held and gate is not None:
                gate_held = False
                gate.release()

        try:
            if self._lock is not None and not self._lock.acquire(timeout=wait):
                raise ServiceUnavailable("The database is busy; try again.", headers={"Retry-After": "1"})
            try:
                yield from self._outermost(state, let_gate_go)
            finally:
                if self._lock is not None:
                    self._lock.release()
        finally:
            let_gate_go()

    def _outermost(self, state: _TxState, synced: Callable[[], None] = lambda: None) -> Iterator[sa.Connection]:
        """The body of an outermost :meth:`transaction`, its locks held; ``synced`` is called once the
        before-commit hooks are done, before the commit."""
        connection = self.engine.connect()
        state.connection = connection
        state.transaction = connection.begin()
        state.depth = 1
        state.bag = {}
        state.memo = {}
        state.before_commit, state.after_commit, state.after_rollback = [], [], []
        try:
            yield connection
            # Before-commit hooks may add more hooks (a sync that writes more rows); drain them all.
            while state.before_commit:
                state.before_commit.pop(0)()
            synced()
            state.transaction.commit()
        except BaseException:
            if state.transaction.is_active:
                state.transaction.rollback()
            for callback in state.after_rollback:
                _quietly(callback)
            raise
        else:
            for callback in state.after_commit:
                _quietly(callback)
        finally:
            connection.close()
            state.connection = None
            state.transaction = None
            state.depth = 0
            state.bag = {}
            state.memo = {}

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[sa.Connection]:
        """A nested unit inside the current transaction that can fail alone (``$batch`` without change set)."""
        with self.transaction() as connection:
            nested = connection.begin_nested()
            try:
                yield connection
            except BaseException:
                if nested.is_active:
                    nested.rollback()
                self._state.memo.clear()
                raise
            else:
                if nested.is_active:
                    nested.commit()

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` just before the outermost commit; raising from it rolls everything back."""
        self._state.before_commit.append(callback)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._state.after_commit.append(callback)

    def after_rollback(self, callback: Callable[[], None]) -> None:
        self._state.after_rollback.append(callback)

    def dispose(self) -> None:
        self.engine.dispose()


#: the key of a table's compiled insert plans in its ``Table.info``
_PLANS_KEY = "sandbox.insert_plans"


def _insert_plans(table: sa.Table) -> dict[tuple[Any, ...], Any]:
    """The insert statements and plans compiled for ``table``, kept on the table itself (``Table.info``): they
    live exactly as long as the model that owns the table, and two models with a table of the same name
    (one per stack built in a process) never share one."""
    plans: dict[tuple[Any, ...], Any] = table.info.setdefault(_PLANS_KEY, {})
    return plans


#: PostgreSQL: ``n`` new ids from the sequence of ``table``'s serial ``column`` (see :func:`insert_returning_ids`)
_PG_NEXT_IDS = sa.text("SELECT nextval(pg_get_serial_sequence(:table, :column)) FROM generate_series(1, :n)")


def insert_returning_ids(
    connection: sa.Connection, table: sa.Table, id_column: str, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` into ``table`` in order and return their new ids (``id_column``) in the same order
    (on PostgreSQL and SQLite each row dict also gets its id: they are not copied, rows are wide).

    PostgreSQL hands the ids out from the column's sequence first, and the rows go in with one
    ``executemany`` (other databases with ordered ``RETURNING``: one batched statement). SQLite cannot
    promise the order of ``RETURNING`` rows, so SQLAlchemy would insert the rows one statement at a time;
    instead the ids are given here, the next ones after the table's highest (and after ``sqlite_sequence``
    for an AUTOINCREMENT table, so a purged id is never handed out again), exactly what SQLite itself would
    give, and the rows go in with :func:`insert_many_plain`. The caller holds the database's write
    transaction, so no other writer can take those ids meanwhile; should one try, the primary key refuses
    it and the insert fails as a whole.
    """
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        # The ids from the column's own sequence, then a plain executemany: with RETURNING, SQLAlchemy sends
        # one statement of thousands of parameters, which psycopg parses anew on every call.
        # One round trip: the sequence found and drawn from in the same statement (NULLs: the column has none).
        drawn = connection.execute(_PG_NEXT_IDS, {"table": table.name, "column": id_column, "n": len(rows)}).scalars()
        values = list(drawn)
        if values and all(value is not None for value in values):
            ids = sorted(int(value) for value in values)
            for row, new_id in zip(rows, ids, strict=True):
                row[id_column] = new_id
            connection.execute(table.insert(), rows)
            return ids
    if connection.dialect.name != "sqlite":
        plans = _insert_plans(table)
        statement = plans.get(("returning", id_column))
        if statement is None:
            statement = sa.insert(table).returning(table.c[id_column], sort_by_parameter_order=True)
            plans[("returning", id_column)] = statement
        return [int(row[0]) for row in connection.execute(statement, rows)]
    highest = int(connection.execute(sa.select(sa.func.max(table.c[id_column]))).scalar() or 0)
    if table.dialect_options["sqlite"].get("autoincrement"):
        used = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).scalar()
        highest = max(highest, int(used or 0))
    ids = list(range(highest + 1, highest + 1 + len(rows)))
    for row, new_id in zip(rows, ids, strict=True):
        row[id_column] = new_id
    insert_many_plain(connection, table, rows)
    return ids


#: a multi-row insert plan: the compiled SQL, the row's values in its order, the converters by position
_PlainPlan = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], tuple[tuple[int, Any], ...]]


def insert_many_plain(
    connection: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    max_parameters: int = SQLITE_MAX_PARAMETERS,
) -> None:
    """``connection.execute(table.insert(), rows)`` for rows that all have the same keys, done as multi-row
    ``INSERT ... VALUES (...), (...)`` statements (as many rows each as ``max_parameters``, SQLite's limit,
    allows) of the compiled statement, with SQLAlchemy's own per-column bind processors.

    SQLAlchemy's executemany rebuilds each row's parameters through its general machinery, about a fifth of
    a bulk create's cost on SQLite. Where the statement needs more than the rows' values (a column default
    of the table's own) or the driver does not take positional (qmark) parameters, SQLAlchemy does it as
    before.
    """
    if not rows:
        return
    keys = tuple(rows[0])
    plans = _insert_plans(table)
    signature = ("plain", connection.dialect.name, keys)
    plan: _PlainPlan | None
    if signature in plans:
        plan = plans[signature]
    else:
        plan = plans[signature] = _plain_plan(connection, table, keys)
    if plan is None:
        connection.execute(table.insert(), rows)
        return
    sql, values_of, converted = plan
    flat: list[Any] = []
    if converted:
        for row in rows:
            values = list(values_of(row))
            for index, processor in converted:
                if values[index] is not None:
                    values[index] = processor(values[index])
            flat.extend(values)
    else:
        for row in rows:
            flat.extend(values_of(row))
    # Many rows to one INSERT ... VALUES (...), (...): one step of the statement instead of one per row.
    # Each step lets go of the interpreter lock, and taking it back from busy threads waits up to the switch
    # interval (5 ms): 2,000 rows took 19 to 27 s one step per row beside two busy threads, 0.1 to 0.2 s so.
    width = len(flat) // len(rows)
    per_statement = max(1, max_parameters // width)
    for start in range(0, len(rows), per_statement):
        count = min(per_statement, len(rows) - start)
        connection.exec_driver_sql(_multi_row_sql(sql, count), tuple(flat[start * width : (start + count) * width]))


def _plain_plan(connection: sa.Connection, table: sa.Table, keys: tuple[str, ...]) -> _PlainPlan | None:
    """How :func:`insert_many_plain` inserts rows with ``keys``, or None where SQLAlchemy must do it."""
    compiled = table.insert().compile(dialect=connection.dialect, column_keys=list(keys))
    positions = tuple(compiled.positiontup or ())
    if connection.dialect.paramstyle != "qmark" or sorted(positions) != sorted(keys) or len(positions) <= 1:
        return None
    processors = compiled._bind_processors  # noqa: SLF001 - the processors SQLAlchemy itself applies
    # One processor per name here: the sequence form is for expanding IN parameters, which an INSERT has none of.
    converted = tuple(
        (index, _faster_processor(table.c.get(name), connection.dialect, cast(Callable[[Any], Any], processors[name])))
        for index, name in enumerate(positions)
        if name in processors
    )
    return compiled.string, operator.itemgetter(*positions), converted


#: SQLite's DATETIME default storage format, positionally (no time zone: SQLAlchemy writes none)
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _faster_processor(
    column: sa.Column[Any] | None, dialect: sa.Dialect, processor: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """``processor``, or where it is SQLite's for DATETIME in its default storage format, a quicker one that
    writes the same text for a plain datetime (the same ``%`` formatting, from a tuple instead of a dict built
    per value: the columns every row has, its created and modified times, and each change's timestamp)."""
    implementation = column.type.dialect_impl(dialect) if column is not None else None
    if not (
        isinstance(implementation, SQLITE_DATETIME_TYPE)
        and implementation._storage_format == SQLITE_DATETIME_TYPE._storage_format
    ):  # noqa: SLF001
        return processor

    def datetime_text(value: Any) -> Any:
        if value.__class__ is dt.datetime:
            return _SQLITE_DATETIME % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )
        return processor(value)

    return datetime_text


@functools.lru_cache(maxsize=256)
def _multi_row_sql(single_row_sql: str, count: int) -> str:
    """``INSERT ... VALUES (?, ?)`` for ``count`` rows: ``INSERT ... VALUES (?, ?), (?, ?), ...``."""
    head, _, marks = single_row_sql.rpartition(" VALUES ")
    return f"{head} VALUES {', '.join([marks] * count)}"


def _quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - post-commit notifications must not undo a committed write
        pass


def unicode_lower(value: Any) -> Any:
    """SQLite's ``lower()`` for every alphabet: Python's ``str.lower`` (SQLite's own folds ASCII only)."""
    if value is None:
        return None
    return (value if isinstance(value, str) else _sql_text(value)).lower()


def unicode_upper(value: Any) -> Any:
    """SQLite's ``upper()`` for every alphabet (see :func:`unicode_lower`)."""
    if value is None:
        return None
    return (value if isinstance(value, str) else _sql_text(value)).upper()


def _sql_text(value: Any) -> str:
    # what SQLite's lower() reads a number or a blob as: its text
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    # $filter compares text case-insensitively through lower() (as SQL Server's case-insensitive collation
    # behind both real services does for every alphabet); SQLite's own lower() folds ASCII only, so 'Ökonomie'
    # could never be found. Registered under the built-in names, so the expression indexes on lower(key)
    # keep serving lookups; deterministic, as a function in an index must be.
    dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)
    dbapi_connection.create_function("upper", 1, unicode_upper, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=OFF")
    # A table of 100,000 rows has indexes of several MB: with the default 2 MB page cache a bulk insert
    # re-reads index pages it just wrote, and checkpoints every 4 MB of WAL rewrite the same index pages
    # over and over (together about 15% of an initial sync's time, measured with `sandbox bench`).
    cursor.execute("PRAGMA cache_size=-65536")  # KiB: up to 64 MB per connection, taken as pages are used
    cursor.execute("PRAGMA wal_autocheckpoint=16384")  # pages: checkpoint at 64 MB of WAL
    cursor.close()


class RowVersionCounter(SQLModel, table=True):
    """The last row version a service's database handed out: one row (``id`` 1), in the service's own database.

    Row versions (ETags, Dataverse ``versionnumber``) come from here, inside the writing transaction, so they
    are unique and increasing per service across processes and restarts: on SQLite the write transaction
    holds the database's writer lock from the counter's update until the commit.
    """

    __tablename__ = "sandbox_row_version"

    id: int = Field(default=1, primary_key=True)
    value: int = 0


def _counter_table() -> sa.Table:
    table = sa.inspect(RowVersionCounter).local_table
    assert isinstance(table, sa.Table)
    return table


#: PostgreSQL: the sequence row versions come from (see :func:`reserve_row_versions`)
ROW_VERSION_SEQUENCE = "sandbox_row_version_seq"
#: PostgreSQL: the advisory lock key (two int4: a namespace and an id) that keeps a block of versions consecutive
_ROW_VERSION_LOCK = "hashtext('sandbox.row_version')"

_PG_ROW_VERSION_DDL = f"""
CREATE SEQUENCE IF NOT EXISTS {ROW_VERSION_SEQUENCE} MINVALUE 0 START WITH 1;
CREATE OR REPLACE FUNCTION sandbox_reserve_row_versions(n bigint) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE first bigint;
BEGIN
  IF NOT (SELECT is_called FROM {ROW_VERSION_SEQUENCE}) THEN
    RETURN NULL;  -- never used: the caller starts it at the highest version its rows carry
  END IF;
  IF n = 1 THEN
    -- single versions never wait for each other, only for a block being taken
    PERFORM pg_advisory_lock_shared({_ROW_VERSION_LOCK});
    first := nextval('{ROW_VERSION_SEQUENCE}');
    PERFORM pg_advisory_unlock_shared({_ROW_VERSION_LOCK});
  ELSE
    PERFORM pg_advisory_lock({_ROW_VERSION_LOCK});
    first := nextval('{ROW_VERSION_SEQUENCE}');
    PERFORM setval('{ROW_VERSION_SEQUENCE}', first + n - 1);
    PERFORM pg_advisory_unlock({_ROW_VERSION_LOCK});
  END IF;
  RETURN first;
END $fn$;
CREATE OR REPLACE FUNCTION sandbox_raise_row_versions(floor bigint) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_lock({_ROW_VERSION_LOCK});
  IF NOT (SELECT is_called FROM {ROW_VERSION_SEQUENCE})
     OR (SELECT last_value FROM {ROW_VERSION_SEQUENCE}) < floor THEN
    PERFORM setval('{ROW_VERSION_SEQUENCE}', greatest(floor, 0), true);  -- called: the next is floor + 1
  END IF;
  PERFORM pg_advisory_unlock({_ROW_VERSION_LOCK});
END $fn$;
"""


def create_row_version_sequence(connection: sa.Connection) -> None:
    """PostgreSQL: the sequence row versions come from, and the two functions that hand them out (idempotent;
    several processes starting on one database at once take turns on an advisory lock)."""
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('sandbox.schema'))")
    connection.exec_driver_sql(_PG_ROW_VERSION_DDL)


#: PostgreSQL: the statements :func:`reserve_row_versions` runs, built once: a statement built per call costs
#: SQLAlchemy a cache key computation each time, and every write takes a row version
_PG_RESERVE = sa.text("SELECT sandbox_reserve_row_versions(:n)")
_PG_RAISE = sa.text("SELECT sandbox_raise_row_versions(:floor)")


@functools.cache
def _counter_bump() -> sa.Update:
    """SQLite: the counter's ``UPDATE ... RETURNING``, built once (see ``_PG_RESERVE``)."""
    table = _counter_table()
    return (
        sa.update(table)
        .where(table.c.id == 1)
        .values(value=table.c.value + sa.bindparam("sandbox_count", type_=sa.Integer))
        .returning(table.c.value)
    )


def reserve_row_versions(connection: sa.Connection, count: int, floor: Callable[[], int]) -> int:
    """Take ``count`` consecutive row versions and return the first.

    Must run inside the caller's write transaction. A database that never handed one out (a new one, a reset,
    an older snapshot) starts at ``floor()``, the highest version its rows already carry.

    SQLite: a counter row, bumped in the transaction (which holds the database's only writer lock anyway).
    PostgreSQL: a sequence, so that writers never queue on one row lock until the other commits; a block of
    several versions is taken under a short advisory lock (released at once, not at commit) so it is consecutive.
    """
    if connection.dialect.name == "postgresql":
        reserve = _PG_RESERVE
        first = connection.execute(reserve, {"n": count}).scalar()
        if first is None:
            connection.execute(_PG_RAISE, {"floor": floor()})
            first = connection.execute(reserve, {"n": count}).scalar()
        assert first is not None
        return int(first)
    table = _counter_table()
    bump = _counter_bump()
    value = connection.execute(bump, {"sandbox_count": count}).scalar()
    if value is None:
        insert = postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite_dialect.insert(table)
        connection.execute(insert.on_conflict_do_nothing(index_elements=["id"]), {"id": 1, "value": floor()})
        value = connection.execute(bump, {"sandbox_count": count}).scalar()
    assert value is not None
    return int(value) - count + 1


def raise_row_version_counter(connection: sa.Connection, floor: int) -> None:
    """Make sure the counter is at least ``floor`` (after rows came in around it: a snapshot import)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_PG_RAISE, {"floor": floor})
        return
    table = _counter_table()
    connection.execute(sa.update(table).where(table.c.id == 1, table.c.value < floor).values(value=floor))


def platform_metadata() -> sa.MetaData:
    """The metadata of the platform's own SQLModel tables (outbox, journal, ...)."""
    return SQLModel.metadata
