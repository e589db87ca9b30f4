"""The per-transaction memo and bulk inserts of sandbox/db.py (the rest of Database is exercised by every
other test)."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sandbox.db import Database, insert_many_plain, insert_returning_ids
from sandbox.errors import ServiceUnavailable
from sandbox.locks import SyncGate


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database("sqlite://", [])
    yield database
    database.dispose()


def test_memo_lives_for_one_transaction(db: Database) -> None:
    """What a transaction memoizes is gone in the next one, committed or rolled back."""
    with db.transaction():
        db.memo["x"] = 1
        with db.transaction():
            assert db.memo["x"] == 1  # nested levels share it
    with pytest.raises(RuntimeError), db.transaction():
        assert "x" not in db.memo
        db.memo["y"] = 2
        raise RuntimeError("roll back")
    with db.transaction():
        assert db.memo == {}


def test_memo_is_emptied_when_a_savepoint_rolls_back_and_kept_when_it_releases(db: Database) -> None:
    """A savepoint that fails may have memoized rows it wrote itself; one that succeeds keeps its values."""
    with db.transaction():
        db.memo["before"] = 1
        with db.savepoint():
            db.memo["kept"] = 2
        assert db.memo == {"before": 1, "kept": 2}
        with pytest.raises(RuntimeError), db.savepoint():
            db.memo["doomed"] = 3
            raise RuntimeError("part failed")
        assert db.memo == {}
        db.memo["again"] = 4
        db.forget_memo()
        assert db.memo == {}


def _tables() -> tuple[sa.MetaData, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    plain = sa.Table("plain", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String))
    counted = sa.Table(
        "counted",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String),
        sqlite_autoincrement=True,
    )
    return metadata, plain, counted


def test_insert_returning_ids_gives_the_ids_sqlite_would_in_order() -> None:
    """Ids follow the highest row; an AUTOINCREMENT table never gets a purged id back; the rows read back
    under their ids in the order given."""
    metadata, plain, counted = _tables()
    database = Database("sqlite://", [metadata])
    database.create_all()
    try:
        with database.transaction() as connection:
            assert insert_returning_ids(connection, plain, "id", []) == []
            connection.execute(plain.insert(), [{"id": 7, "name": "seven"}])
            assert insert_returning_ids(connection, plain, "id", [{"name": "a"}, {"name": "b"}]) == [8, 9]
            assert insert_returning_ids(connection, counted, "id", [{"name": "x"}, {"name": "y"}]) == [1, 2]
            connection.execute(counted.delete())
            assert insert_returning_ids(connection, counted, "id", [{"name": "z"}]) == [3]
            names = dict(connection.execute(sa.select(plain.c.id, plain.c.name)).all())
            assert names == {7: "seven", 8: "a", 9: "b"}
    finally:
        database.dispose()


def _typed_tables() -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData()

    def columns() -> list[sa.Column]:
        return [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("at", sa.DateTime(timezone=True)),
            sa.Column("day", sa.Date),
            sa.Column("amount", sa.Numeric(18, 4)),
            sa.Column("flag", sa.Boolean),
            sa.Column("name", sa.String),
        ]

    by_sqlalchemy = sa.Table("by_sqlalchemy", metadata, *columns())
    plain = sa.Table("plain_insert", metadata, *columns())
    defaulted = sa.Table("defaulted", metadata, *columns(), sa.Column("seen", sa.Integer, default=5))
    return metadata, by_sqlalchemy, plain, defaulted


def test_insert_many_plain_stores_what_sqlalchemy_stores() -> None:
    """The same values (temporal, decimal, boolean, null, text) read back alike from a table SQLAlchemy
    filled and one filled by the plain executemany; a column default of the table's own still applies."""
    metadata, by_sqlalchemy, plain, defaulted = _typed_tables()
    rows = [
        {
            "id": 1,
            "at": dt.datetime(2026, 11, 25, 18, 0, 1, 5, tzinfo=dt.UTC),
            "day": dt.date(2026, 1, 2),
            "amount": decimal.Decimal("12.3456"),
            "flag": True,
            "name": "één",
        },
        {"id": 2, "at": None, "day": None, "amount": None, "flag": False, "name": None},
    ]
    database = Database("sqlite://", [metadata])
    database.create_all()
    try:
        with database.transaction() as connection:
            connection.execute(by_sqlalchemy.insert(), [dict(row) for row in rows])
            insert_many_plain(connection, plain, [dict(row) for row in rows])
            insert_many_plain(connection, defaulted, [dict(row) for row in rows])
            insert_many_plain(connection, plain, [])
            expected = connection.execute(sa.select(by_sqlalchemy).order_by(by_sqlalchemy.c.id)).all()
            assert connection.execute(sa.select(plain).order_by(plain.c.id)).all() == expected
            raw = "SELECT at, day, amount, flag FROM {} ORDER BY id"
            assert (
                connection.exec_driver_sql(raw.format("plain_insert")).all()
                == connection.exec_driver_sql(raw.format("by_sqlalchemy")).all()
            )
            assert connection.execute(sa.select(defaulted.c.seen)).scalars().all() == [5, 5]
    finally:
        database.dispose()


def test_insert_many_plain_puts_many_rows_in_each_statement() -> None:
    """Rows go in as few multi-row INSERTs as SQLite's parameter limit allows, in order, all of them."""
    metadata = sa.MetaData()
    table = sa.Table(
        "many",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("at", sa.DateTime(timezone=True)),
    )
    database = Database("sqlite://", [metadata])
    database.create_all()
    statements: list[str] = []
    sa.event.listen(
        database.engine, "before_cursor_execute", lambda conn, cursor, statement, *args: statements.append(statement)
    )
    moment = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)
    try:
        with database.transaction() as connection:
            rows_in = [{"id": n, "name": f"n{n}", "at": moment} for n in range(1, 8)]
            insert_many_plain(connection, table, rows_in, max_parameters=10)  # 3 columns: 3 rows per statement
            rows = connection.execute(sa.select(table.c.id, table.c.name).order_by(table.c.id)).all()
        inserts = [s for s in statements if s.startswith("INSERT")]
        assert [s.count("(?, ?, ?)") for s in inserts] == [3, 3, 1]
        assert rows == [(n, f"n{n}") for n in range(1, 8)]
    finally:
        database.dispose()


def test_insert_plans_belong_to_their_table_not_to_its_name() -> None:
    """Two models with a table of the same name (two stacks in one process) each get their own compiled
    insert plan: a datetime column's converter is never applied to the other table's text column."""
    first_metadata, second_metadata = sa.MetaData(), sa.MetaData()
    first = sa.Table(
        "same", first_metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", sa.DateTime)
    )
    second = sa.Table(
        "same", second_metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", sa.String)
    )
    moment = dt.datetime(2026, 11, 25, 20, 0)
    databases = [Database("sqlite://", [first_metadata]), Database("sqlite://", [second_metadata])]
    try:
        for database in databases:
            database.create_all()
        with databases[0].transaction() as connection:
            insert_many_plain(connection, first, [{"id": 1, "at": moment}, {"id": 2, "at": moment}])
            assert connection.execute(sa.select(first.c.at)).scalars().all() == [moment, moment]
        with databases[1].transaction() as connection:
            insert_many_plain(connection, second, [{"id": 1, "at": "soon"}, {"id": 2, "at": "later"}])
            assert connection.execute(sa.select(second.c.at).order_by(second.c.id)).scalars().all() == ["soon", "later"]
        assert first.info["sandbox.insert_plans"] is not second.info["sandbox.insert_plans"]
    finally:
        for database in databases:
            database.dispose()


# ---- the live-sync gate: one lock order for every transaction that may sync ---------------------------------
def _gated_pair() -> tuple[Database, Database, SyncGate]:
    gate = SyncGate()
    first, second = Database("sqlite://", []), Database("sqlite://", [])
    first.sync_gate = second.sync_gate = gate
    return first, second, gate


def test_writes_crossing_each_other_take_turns_instead_of_waiting_for_each_other() -> None:
    """Two transactions that may sync, each on one database and then (as the bridge would) on the other: with
    the gate taken before either database they run one after the other, and both commit."""
    first, second, _gate = _gated_pair()
    holding = threading.Event()
    done: list[str] = []
    errors: list[BaseException] = []

    def cross(source: Database, target: Database, name: str, started: threading.Event | None) -> None:
        try:
            with source.transaction():
                if started is not None:
                    started.set()
                    holding.wait(5)  # give the other writer time to start and queue at the gate
                with target.transaction(may_sync=False):  # the bridge's write to the other side
                    done.append(name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = threading.Event()
    one = threading.Thread(target=cross, args=(first, second, "one", started))
    one.start()
    assert started.wait(5)
    two = threading.Thread(target=lambda: (holding.set(), cross(second, first, "two", None)))
    two.start()
    one.join(30)
    two.join(30)
    first.dispose()
    second.dispose()
    assert not errors and sorted(done) == ["one", "two"]


def test_reads_and_integration_writes_do_not_take_the_gate() -> None:
    """A transaction that says it cannot sync goes past a gate someone else holds; one that may sync waits."""
    first, _second, gate = _gated_pair()
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        assert gate.acquire(5)
        held.set()
        release.wait(10)
        gate.release()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with first.transaction(may_sync=False):
            pass  # not blocked by the gate
        with pytest.raises(ServiceUnavailable), first.transaction(timeout=0.05):
            pass
    finally:
        release.set()
        thread.join(10)
    with first.transaction():  # free again
        assert first.sync_gate is gate
    first.dispose()


def test_a_transaction_without_a_gate_takes_only_its_database() -> None:
    database = Database("sqlite://", [])
    assert database.sync_gate is None
    with database.transaction() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    database.dispose()


def test_sqlite_lower_and_upper_fold_every_alphabet_and_keep_expression_indexes() -> None:
    """SQLite's own lower()/upper() fold ASCII only; the database's connections replace them with Python's,
    deterministic, so an index on lower(column) is still built and still serves lower(column) = ?."""
    db = Database("sqlite://", [])
    with db.transaction() as connection:
        assert connection.exec_driver_sql("SELECT lower('ÖKONOMIE Ä'), upper('straße é')").one() == (
            "ökonomie ä",
            "STRASSE É",
        )
        assert connection.exec_driver_sql("SELECT lower(NULL), lower(12), upper(1.5)").one() == (None, "12", "1.5")
        connection.exec_driver_sql("CREATE TABLE t (name TEXT)")
        connection.exec_driver_sql("CREATE INDEX ix_t ON t (lower(name))")
        connection.exec_driver_sql("INSERT INTO t VALUES ('Ökonomie'), ('Other')")
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN SELECT name FROM t WHERE lower(name) = 'ökonomie'")
        assert "USING INDEX ix_t" in " ".join(str(row[-1]) for row in plan)
        found = connection.exec_driver_sql("SELECT name FROM t WHERE lower(name) = 'ökonomie'").scalars().all()
        assert found == ["Ökonomie"]
    db.dispose()
