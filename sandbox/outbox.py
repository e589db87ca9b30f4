"""Change capture: every tracked write leaves a row in the ``sandbox_outbox`` table of the same database.

The :class:`~sandbox.odata.store.Store` calls :meth:`Outbox.record` inside the write's own transaction, so a
change row exists exactly when the data change committed (a rollback takes both away). Rows carry a
gap-tolerant, increasing ``seq``; consumers (the bridge, change tracking) read the feed after a cursor::

    GET /_sandbox/changes?after=<seq>&limit=500&tables=account,contact&exclude_identity=bridge&wait=20

    {"changes": [{"seq", "table", "key", "operation", "changed", "after", "transaction_id",
                  "identity", "created_at"}, ...],
     "next": <cursor to pass as ``after`` next time>, "latest": <highest committed seq>}

Ordering guarantee: a reader never receives a row while a row with a lower ``seq`` may still commit. On
SQLite transactions are serialized, so this holds trivially; on a server database (PostgreSQL) concurrent
transactions can commit out of ``seq`` order, so :meth:`Outbox.read_page` stops short of the first ``seq``
still owned by an open transaction. In this process the outbox knows its open transactions; across processes
(``sandbox up --workers N`` on PostgreSQL) each transaction, before its first change row, takes that row's ``seq`` from
the table's sequence and holds a transaction-scoped advisory lock named by it until it ends. Its other change rows
come after that ``seq``; a reader reads the lowest such lock of the database from ``pg_locks`` (after the highest
committed ``seq``) and stops there. The lock ends with the transaction, however that ends, a crash included.

Waking long-pollers: a commit in this process wakes them at once; on PostgreSQL they also look at the table
every :data:`POLL_SECONDS`, so a commit by another process of the same service wakes them too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Blueprint, Response, request
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from sandbox import jsonio
from sandbox.db import Database, insert_returning_ids
from sandbox.errors import BadRequest, InternalError

if TYPE_CHECKING:
    from sandbox.control import ServiceRuntime

OPERATIONS = ("create", "update", "delete")
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
MAX_WAIT_SECONDS = 30.0
#: PostgreSQL: how often a long-poller looks for changes other processes committed
POLL_SECONDS = 0.05

_BAG_KEY = "sandbox.outbox"
#: the memo key saying this transaction holds its in-flight reservation (PostgreSQL)
_PG_RESERVED = "sandbox.outbox.reserved"


# ---- JSON ----------------------------------------------------------------------------------------------
def dumps(value: Any) -> str:
    """Compact JSON text of change images and control-plane answers: decimals exact (as strings, by
    :func:`sandbox.jsonio.json_default`), temporal values as their ``isoformat()``."""
    return jsonio.dumps(value, jsonio.json_default, iso_temporal=True)


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response encoded by :func:`dumps` (Flask's provider would render datetimes as HTTP dates)."""
    return Response(dumps(payload), status=status, mimetype="application/json")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso_utc(value: dt.datetime) -> str:
    # SQLite hands DateTime back naive; every timestamp this module writes is UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


# ---- the table ---------------------------------------------------------------------------------------
class ChangeRecord(SQLModel, table=True):
    """One captured create/update/delete. JSON columns are stored as text for portability."""

    __tablename__ = "sandbox_outbox"
    # AUTOINCREMENT on SQLite: a purged seq is never handed out again, so consumer cursors stay valid.
    __table_args__ = (sa.Index("ix_sandbox_outbox_table_seq", "table", "seq"), {"sqlite_autoincrement": True})

    seq: int | None = Field(default=None, primary_key=True)
    table: str = Field(max_length=128)
    key: str  # JSON object
    operation: str = Field(max_length=8)
    changed: str  # JSON list of property names, or "*": the names of ``after``, in order
    after: str | None = None  # JSON object, or a compact image (see ChangeColumns); null for a delete
    transaction_id: str = Field(max_length=64)
    identity: str = Field(max_length=128)
    created_at: dt.datetime


class ChangeColumns(SQLModel, table=True):
    """The property names of compact change images, one row per distinct list.

    A change recorded in bulk stores its image as ``[columns id, value, value, ...]``, the values in the
    order of the names this table holds for the id: a create's change row without its image's 50 to 150
    property names (and its changed list, ``"*"``) takes a third of the room, and a 100,000-row initial sync
    wrote 1.8 GB to the Sales database's files instead of 1.1 GB, 13 µs more a row. The id is a hash of the names, so it stands for the same list in every database
    (a reset, a snapshot or another service cannot make it name a different one).
    """

    __tablename__ = "sandbox_outbox_columns"

    id: str = Field(primary_key=True, max_length=32)
    names: str  # JSON list of property names


def _table_of(model: type[SQLModel]) -> sa.Table:
    """The table SQLModel made for ``model`` (its ``__table__``, which SQLModel sets out of the type checker's
    sight)."""
    table = sa.inspect(model).local_table
    assert isinstance(table, sa.Table)
    return table


#: the changed list of a create: every property of its image, in the image's order
_ALL_OF_AFTER = "*"


class ColumnLists:
    """The property-name lists of compact change images, by their content-hash id, remembered both ways.

    Ids are content hashes, so what is remembered is true for any database; each :class:`Outbox` keeps its
    own (nothing outlives the outbox, and a test can forget them to read as a fresh process would).
    """

    def __init__(self) -> None:
        self._names_by_id: dict[str, list[str]] = {}
        self._ids_by_names: dict[tuple[str, ...], str] = {}

    def id_of(self, names: list[str]) -> str:
        """The content-hash id of a list of property names."""
        signature = tuple(names)
        found = self._ids_by_names.get(signature)
        if found is None:
            found = hashlib.sha256(jsonio.dumps(names).encode("utf-8")).hexdigest()[:32]
            self._ids_by_names[signature] = found
            self._names_by_id[found] = list(names)
        return found

    def names_of(self, connection: sa.Connection, columns_id: str) -> list[str]:
        """The names behind ``columns_id``, read from the database the first time."""
        names = self._names_by_id.get(columns_id)
        if names is None:
            table = _table_of(ChangeColumns)
            text = connection.execute(sa.select(table.c.names).where(table.c.id == columns_id)).scalar()
            if text is None:  # only a hand-made snapshot or a damaged database can get here
                raise InternalError(
                    f"A change row names the column list {columns_id!r}, which the table "
                    "sandbox_outbox_columns of this database does not hold."
                )
            names = self._names_by_id[columns_id] = jsonio.loads(text)
        return names

    def save(self, connection: sa.Connection, ids: set[str]) -> None:
        """Make sure the database holds the names of ``ids`` (inside the caller's transaction)."""
        table = _table_of(ChangeColumns)
        insert = postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)
        connection.execute(
            insert.on_conflict_do_nothing(index_elements=["id"]),
            [{"id": columns_id, "names": jsonio.dumps(self._names_by_id[columns_id])} for columns_id in ids],
        )

    def clear(self) -> None:
        """Forget every list (they are read back from the database when next needed)."""
        self._names_by_id.clear()
        self._ids_by_names.clear()


#: databases whose INSERT can skip a row already there (what :meth:`ColumnLists.save` needs)
_COMPACT_DIALECTS = ("sqlite", "postgresql")

#: the columns of a change row, in the order :func:`_read_changes` asks SQLite for them
_CHANGE_COLUMNS = ("seq", "table", "key", "operation", "changed", "after", "transaction_id", "identity", "created_at")


def _read_changes(connection: sa.Connection, query: sa.Select[Any], columns: ColumnLists) -> list[dict[str, Any]]:
    """The change dicts of the rows ``query`` selects, in ``seq`` order.

    On SQLite the page comes back as one row of JSON (``json_group_array``): the driver steps a statement
    once per row and gives up the interpreter lock at every step, and a reader taking it back from busy
    threads (writers beside the async drainer) waited at each one; 500 rows read row by row beside four
    busy threads took 0.25 s, as one JSON row under a millisecond.
    """
    if connection.dialect.name != "sqlite":
        return [_row_to_change(row._mapping, connection, columns) for row in connection.execute(query)]
    page = query.subquery()
    text = connection.execute(
        sa.select(sa.func.json_group_array(sa.func.json_array(*[page.c[name] for name in _CHANGE_COLUMNS])))
    ).scalar()
    rows = [dict(zip(_CHANGE_COLUMNS, values, strict=True)) for values in jsonio.loads(text or "[]")]
    # The timestamp as stored (text on SQLite): read back by its column type, as a plain SELECT would.
    as_read = page.c.created_at.type.dialect_impl(connection.dialect).result_processor(connection.dialect, None)
    if as_read is not None:
        for row in rows:
            row["created_at"] = as_read(row["created_at"])
    rows.sort(key=lambda row: row["seq"])  # an aggregate's order is not promised: seq is
    return [_row_to_change(row, connection, columns) for row in rows]


def _row_to_change(m: Any, connection: sa.Connection, columns: ColumnLists) -> dict[str, Any]:
    """A change dict from a change row's columns (a mapping by column name)."""
    after = None if m["after"] is None else jsonio.loads(m["after"])
    if isinstance(after, list):  # compact: [columns id, values...]
        names = columns.names_of(connection, after[0])
        if len(names) != len(after) - 1:
            raise InternalError(
                f"The change row {m['seq']} holds {len(after) - 1} values for the "
                f"{len(names)} columns of its column list."
            )
        after = dict(zip(names, after[1:], strict=True))
    changed = m["changed"]
    return {
        "seq": m["seq"],
        "table": m["table"],
        "key": jsonio.loads(m["key"]),
        "operation": m["operation"],
        "changed": list(after or ()) if changed == _ALL_OF_AFTER else jsonio.loads(changed),
        "after": after,
        "transaction_id": m["transaction_id"],
        "identity": m["identity"],
        "created_at": _iso_utc(m["created_at"]),
    }


@dataclass
class _TxChanges:
    """What the outbox remembers about the current DB transaction (kept in ``db.bag``)."""

    transaction_id: str
    first_seq: int
    last_seq: int


@dataclass
class ChangePage:
    """One read of the feed.

    ``next`` is the cursor to resume from: the last returned ``seq`` when the page is full, otherwise the
    highest ``seq`` scanned (so rows filtered out by ``tables``/``exclude_identity`` are not rescanned).
    ``latest`` is the highest committed ``seq`` (0 when the feed is empty).
    """

    changes: list[dict[str, Any]] = field(default_factory=list)
    next: int = 0
    latest: int = 0


class Outbox:
    """Writes change rows inside the caller's transaction and serves them in ``seq`` order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0  # bumps on every commit that recorded changes (and every notify())
        self._latest = 0  # highest seq known committed; refreshed exactly by latest_seq()
        self._in_flight: set[int] = set()  # first seq of each open transaction that recorded changes
        self.table = _table_of(ChangeRecord)
        self.column_lists = ColumnLists()
        self._insert = sa.insert(self.table)  # built once: a statement per change cost more than the insert

    # ---- writing ----------------------------------------------------------------------------------
    def record(
        self,
        db: Database,
        entity_name: str,
        key: dict[str, Any],
        operation: str,
        changed: list[str],
        after: dict[str, Any] | None,
        identity: str,
    ) -> None:
        """Insert one change row on ``db.connection`` (the data write's transaction).

        All records of one DB transaction share a ``transaction_id``; listeners are notified once the
        outermost transaction commits. Must be called inside ``db.transaction()``.
        """
        self.record_many(db, entity_name, operation, identity, [(key, changed, after)])

    def record_many(
        self,
        db: Database,
        entity_name: str,
        operation: str,
        identity: str,
        changes: Sequence[tuple[dict[str, Any], list[str], dict[str, Any] | None]],
    ) -> None:
        """:meth:`record` for several changes of one table at once, ``changes`` being (key, changed, after)
        in order: one INSERT, and the same changes (seq order included) as recording them one by one.

        Several changes are stored compactly (their images' property names once, in ``ChangeColumns``); a
        change whose ``changed`` lists its image's every property, in order (a create), stores ``"*"``.
        Reading gives back exactly the lists and images recorded.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown outbox operation {operation!r}")
        if not changes:
            return
        tx: _TxChanges | None = db.bag.get(_BAG_KEY)
        transaction_id = tx.transaction_id if tx else uuid.uuid4().hex
        compact = len(changes) > 1 and db.connection.dialect.name in _COMPACT_DIALECTS
        rows: list[dict[str, Any]] = []
        columns_ids: set[str] = set()
        # Rows of one chunk share their names (and a create's changed list): worked out again only on a change.
        last_changed: list[str] | None = None
        last_names: list[str] | None = None
        changed_text, columns_id = "", ""
        for key, changed, after in changes:
            names = None if after is None else list(after)
            if changed is not last_changed or names != last_names:
                last_changed, last_names = changed, names
                changed_text = _ALL_OF_AFTER if names is not None and changed == names else dumps(list(changed))
                if compact and names is not None:
                    columns_id = self.column_lists.id_of(names)
                    columns_ids.add(columns_id)
            if after is None:
                after_text = None
            elif compact:
                after_text = dumps([columns_id, *after.values()])
            else:
                after_text = dumps(after)
            rows.append(
                {
                    "table": entity_name,
                    "key": dumps(key),
                    "operation": operation,
                    "changed": changed_text,
                    "after": after_text,
                    "transaction_id": transaction_id,
                    "identity": identity,
                    "created_at": _utcnow(),
                }
            )
        created = False
        # Insert and in-flight registration are atomic with respect to readers' watermark snapshot.
        if columns_ids:
            self.column_lists.save(db.connection, columns_ids)
        reserved: int | None = None
        if _PG_RESERVED not in db.memo and db.connection.dialect.name == "postgresql":
            # Before this transaction's first change row: its seq, taken now and held as an advisory lock until the
            # transaction ends, so readers in every process stop short of its rows until then (module docstring).
            # Kept in the memo, which a savepoint's rollback empties: that rollback also releases a lock taken
            # inside it, and the next change row must take one again.
            reserved = int(db.connection.exec_driver_sql(_PG_RESERVE_IN_FLIGHT).scalar_one())
            db.memo[_PG_RESERVED] = True
        with self._cond:
            seqs = []
            if reserved is not None:
                rows[0]["seq"] = reserved
                db.connection.execute(self._insert, rows[0])
                seqs.append(reserved)
                rows = rows[1:]
            if len(rows) == 1:  # a single write's change: one INSERT (ids in bulk take two reads first)
                inserted = db.connection.execute(self._insert, rows[0]).inserted_primary_key
                assert inserted is not None  # an INSERT of one row always has its key
                seqs.append(int(inserted[0]))
            elif rows:
                seqs += insert_returning_ids(db.connection, self.table, "seq", rows)
            if tx is None:
                tx = _TxChanges(transaction_id, min(seqs), max(seqs))
                db.bag[_BAG_KEY] = tx
                self._in_flight.add(tx.first_seq)
                created = True
            else:
                tx.last_seq = max(tx.last_seq, max(seqs))
        if created:
            committed_tx = tx
            db.after_commit(lambda: self._committed(committed_tx))
            db.after_rollback(lambda: self._rolled_back(committed_tx))

    def _committed(self, tx: _TxChanges) -> None:
        with self._cond:
            self._in_flight.discard(tx.first_seq)
            self._latest = max(self._latest, tx.last_seq)
        self.notify()

    def _rolled_back(self, tx: _TxChanges) -> None:
        with self._cond:
            self._in_flight.discard(tx.first_seq)
            # A rolled-back writer may have held back the watermark: let waiting readers look again.
            self._generation += 1
            self._cond.notify_all()

    def notify(self) -> None:
        """Wake every long-poller (called after each commit that recorded changes)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # ---- reading ----------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """A counter that changes whenever new changes may be readable; pair with :meth:`wait_for_change`."""
        with self._cond:
            return self._generation

    def latest_seq(self, db: Database) -> int:
        """The highest committed ``seq`` (0 when empty); also refreshes the cache :meth:`wait` uses."""
        with self._cond:
            generation = self._generation
        with db.transaction(may_sync=False) as connection:
            value = int(connection.execute(sa.select(sa.func.max(self.table.c.seq))).scalar() or 0)
        with self._cond:
            # Set exactly (a reset may have rewound the feed) unless a commit raced with our query.
            self._latest = value if self._generation == generation else max(self._latest, value)
        return value

    def read_page(
        self,
        db: Database,
        after_seq: int = 0,
        limit: int = DEFAULT_LIMIT,
        tables: set[str] | None = None,
        exclude_identity: str | None = None,
    ) -> ChangePage:
        """Changes with ``seq > after_seq`` in ``seq`` order, at most ``limit``, optionally filtered."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        latest = self.latest_seq(db)  # committed before the watermark snapshot below
        with self._cond:
            ceiling = min([latest, *(seq - 1 for seq in self._in_flight)])
        if db.engine.dialect.name == "postgresql":
            with db.transaction(may_sync=False) as connection:
                reserved = connection.exec_driver_sql(_PG_LOWEST_IN_FLIGHT).scalar()
            if reserved is not None:
                ceiling = min(ceiling, int(reserved) - 1)
        query = (
            sa.select(self.table)
            .where(self.table.c.seq > after_seq, self.table.c.seq <= ceiling)
            .order_by(self.table.c.seq)
            .limit(limit)
        )
        if tables is not None:
            query = query.where(self.table.c.table.in_(sorted(tables)))
        if exclude_identity is not None:
            query = query.where(self.table.c.identity != exclude_identity)
        with db.transaction(may_sync=False) as connection:
            changes = _read_changes(connection, query, self.column_lists)
        if len(changes) >= limit:
            next_seq = changes[-1]["seq"]
        else:
            next_seq = max(after_seq, ceiling)
        return ChangePage(changes, next_seq, latest)

    def read(
        self,
        db: Database,
        after_seq: int = 0,
        limit: int = DEFAULT_LIMIT,
        tables: set[str] | None = None,
        exclude_identity: str | None = None,
    ) -> list[dict[str, Any]]:
        """The change dicts of :meth:`read_page` (without the cursors)."""
        return self.read_page(db, after_seq, limit, tables, exclude_identity).changes

    def wait(self, after_seq: int, timeout: float) -> bool:
        """Block until a change with ``seq > after_seq`` is known committed, or ``timeout`` seconds pass.

        Knowledge comes from commits seen by this process and from the last :meth:`latest_seq` call;
        call :meth:`latest_seq` first after a restart. Returns whether such a change exists.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._latest > after_seq, timeout=max(0.0, timeout))

    def wait_for_change(self, generation: int, timeout: float) -> bool:
        """Block until :attr:`generation` differs from ``generation`` or ``timeout`` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != generation, timeout=max(0.0, timeout))

    def purge(self, db: Database, through_seq: int | None = None) -> int:
        """Delete change rows (all, or those with ``seq <= through_seq``); returns how many."""
        statement = sa.delete(self.table)
        if through_seq is not None:
            statement = statement.where(self.table.c.seq <= through_seq)
        with db.transaction() as connection:
            count = connection.execute(statement).rowcount
        self.latest_seq(db)
        self.notify()
        return int(count or 0)


# ---- PostgreSQL: the lowest seq an open transaction may still commit, across processes ----------------------
# A bigint advisory lock shows in pg_locks as classid (high 32 bits), objid (low 32 bits) and objsubid 1; the
# sandbox takes no other bigint-keyed advisory lock in a service's database (its others are two-int4 keys).
_PG_RESERVE_IN_FLIGHT = (
    "SELECT reserved FROM (SELECT nextval(pg_get_serial_sequence('sandbox_outbox', 'seq')) AS reserved) AS s, "
    "LATERAL (SELECT pg_advisory_xact_lock(s.reserved)) AS locked"
)
_PG_LOWEST_IN_FLIGHT = (
    "SELECT min((classid::bigint << 32) | objid::bigint) FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


# ---- the feed over HTTP ------------------------------------------------------------------------------
#: the largest integer a query parameter may carry: SQLite's INTEGER (and PostgreSQL's BIGINT) is 64-bit
MAX_INT_ARG = 2**63 - 1


def int_arg(name: str, default: int, minimum: int) -> int:
    """An integer query parameter (``default`` when absent), or a 400 naming the parameter (also for one
    beyond :data:`MAX_INT_ARG`, which no database column could be compared with)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer, got '{raw}'.") from None
    if value < minimum:
        raise BadRequest(f"Query parameter '{name}' must be at least {minimum}, got {value}.")
    if value > MAX_INT_ARG:
        raise BadRequest(f"Query parameter '{name}' must be at most {MAX_INT_ARG}, got {value}.")
    return value


def _float_arg(name: str, default: float, minimum: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be a number of seconds, got '{raw}'.") from None
    if not value >= minimum:  # also rejects NaN
        raise BadRequest(f"Query parameter '{name}' must be at least {minimum}, got '{raw}'.")
    return value


def changes_view(runtime: ServiceRuntime) -> Response:
    """``GET /_sandbox/changes``: one page of the feed, long-polling up to ``wait`` seconds when empty."""
    after = int_arg("after", 0, 0)
    limit = min(int_arg("limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
    wait = min(_float_arg("wait", 0.0, 0.0), MAX_WAIT_SECONDS)
    tables_raw = request.args.get("tables")
    tables = None
    if tables_raw is not None:
        tables = {name.strip() for name in tables_raw.split(",") if name.strip()}
        if not tables:
            raise BadRequest("Query parameter 'tables' must name at least one table.")
    exclude_identity = request.args.get("exclude_identity") or None
    outbox, db = runtime.outbox, runtime.db
    if db.in_transaction:
        # Waiting inside a transaction would hold SQLite's writer lock and starve the writers we wait for.
        wait = 0.0
    deadline = time.monotonic() + wait
    cursor = after
    while True:
        generation = outbox.generation  # before the read, so a commit during the read is not missed
        page = outbox.read_page(db, cursor, limit, tables, exclude_identity)
        remaining = deadline - time.monotonic()
        if page.changes or remaining <= 0:
            break
        cursor = page.next  # filtered-out rows need not be scanned again
        if not db.is_sqlite:  # other processes may write this database: look again now and then
            remaining = min(remaining, POLL_SECONDS)
        outbox.wait_for_change(generation, remaining)
    return json_response({"changes": page.changes, "next": page.next, "latest": page.latest})


def add_changes_route(blueprint: Blueprint, runtime: ServiceRuntime) -> None:
    """Register ``GET changes`` on ``blueprint`` (the control blueprint shares its URL prefix and errors)."""
    blueprint.add_url_rule("/changes", "changes", lambda: changes_view(runtime), methods=["GET"])


def changes_blueprint(runtime: ServiceRuntime) -> Blueprint:
    """A stand-alone blueprint serving only ``GET /_sandbox/changes``.

    :func:`sandbox.control.control_blueprint` already includes this route; register one or the other.
    """
    blueprint = Blueprint("sandbox_changes", __name__, url_prefix="/_sandbox")
    add_changes_route(blueprint, runtime)
    from sandbox.control import install_error_handlers  # control imports this module at load time

    install_error_handlers(blueprint, runtime)
    return blueprint
