"""Tests of change capture (sandbox/outbox.py): the outbox table, its reader, and the long-polling feed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import flask
import pytest
import sqlalchemy as sa

from sandbox.db import Database, platform_metadata
from sandbox.errors import SandboxError
from sandbox.faults import FaultRegistry
from sandbox.journal import Journal
from sandbox.outbox import ChangeRecord, Outbox, changes_blueprint
from sandbox.wellknown import INTEGRATION_IDENTITY

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "items",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
)


def poll_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class FeedRuntime:
    """Just enough of a ServiceRuntime for the changes blueprint."""

    db: Database
    outbox: Outbox
    name: str = "test"
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    journal: Journal = field(default_factory=Journal)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def render_error(self, err: SandboxError) -> flask.Response:
        response = flask.jsonify({"error": {"code": err.code, "message": err.message}})
        response.status_code = err.status
        return response


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The outbox's database: in-memory SQLite, or a fresh database on the session's PostgreSQL cluster."""
    url = request.getfixturevalue("pg_urls")["sales"] if request.param == "postgresql" else "sqlite://"
    database = Database(url, [METADATA, platform_metadata()])
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def client(db: Database, outbox: Outbox) -> flask.testing.FlaskClient:
    app = flask.Flask(__name__)
    app.register_blueprint(changes_blueprint(FeedRuntime(db, outbox)))
    return app.test_client()


def write(
    db: Database,
    outbox: Outbox,
    item_id: int,
    *,
    table: str = "items",
    identity: str = "user",
    operation: str = "create",
) -> None:
    """One committed write of ``items`` with its change row."""
    with db.transaction() as connection:
        if operation == "create":
            connection.execute(sa.insert(ITEMS).values(id=item_id, name=f"item {item_id}"))
        outbox.record(
            db,
            table,
            {"id": item_id},
            operation,
            ["id", "name"],
            None if operation == "delete" else {"id": item_id, "name": f"item {item_id}"},
            identity,
        )


def change_rows(db: Database) -> int:
    with db.transaction() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(ChangeRecord.__table__)).scalar())


# ---- recording --------------------------------------------------------------------------------------
def test_committed_record_is_read_back_with_every_field(db: Database, outbox: Outbox) -> None:
    """A recorded change comes back as a dict with seq, table, key, operation, changed, after, ids, time."""
    before = dt.datetime.now(dt.UTC)
    write(db, outbox, 1, identity="alice")
    [change] = outbox.read(db, 0, 10, None, None)
    assert change["seq"] == 1
    assert change["table"] == "items"
    assert change["key"] == {"id": 1}
    assert change["operation"] == "create"
    assert change["changed"] == ["id", "name"]
    assert change["after"] == {"id": 1, "name": "item 1"}
    assert change["identity"] == "alice"
    assert len(change["transaction_id"]) == 32
    created = dt.datetime.fromisoformat(change["created_at"])
    assert created.tzinfo is not None and created >= before - dt.timedelta(seconds=1)


def test_decimal_datetime_and_date_values_are_stored_as_iso_and_exact_strings(db: Database, outbox: Outbox) -> None:
    """After-images keep decimals exact (as strings) and temporal values as ISO 8601."""
    moment = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)
    with db.transaction():
        outbox.record(
            db,
            "orders",
            {"id": "A-1"},
            "update",
            ["amount"],
            {"amount": Decimal("12.50"), "at": moment, "day": dt.date(2024, 5, 2)},
            "user",
        )
    [change] = outbox.read(db, 0, 10, None, None)
    assert change["after"] == {"amount": "12.50", "at": "2024-05-01T10:30:00+00:00", "day": "2024-05-02"}


def test_a_page_read_as_one_json_row_equals_the_rows_read_one_by_one(db: Database, outbox: Outbox) -> None:
    """On SQLite a page comes back as one aggregated JSON row: the same changes, values and order as reading
    the rows themselves (text with quotes and non-ASCII, exact decimals, deletes without an image,
    timestamps with and without microseconds)."""
    from sandbox import outbox as module

    with db.transaction():
        outbox.record(
            db,
            "items",
            {"id": 1},
            "create",
            ["id", "name"],
            {"id": 1, "name": 'Römer "Zahn" \\ 😀', "price": Decimal("10.50"), "at": dt.datetime(2026, 1, 2)},
            "user",
        )
        outbox.record(db, "items", {"id": 1}, "delete", [], None, "user")
    write(db, outbox, 2, identity=INTEGRATION_IDENTITY)
    with db.transaction():  # compact images (several changes at once)
        outbox.record_many(
            db, "items", "create", "user", [({"id": i}, ["id", "name"], {"id": i, "name": f"ü {i}"}) for i in (5, 6)]
        )
    with db.transaction() as connection:
        connection.execute(
            sa.update(ChangeRecord.__table__)
            .where(ChangeRecord.__table__.c.seq == 3)
            .values(created_at=dt.datetime(2026, 11, 25, 20, 0, 0, tzinfo=dt.UTC))
        )
    table = ChangeRecord.__table__
    query = sa.select(table).where(table.c.seq > 0).order_by(table.c.seq).limit(10)
    with db.transaction() as connection:
        row_by_row = [
            module._row_to_change(row._mapping, connection, outbox.column_lists) for row in connection.execute(query)
        ]
        aggregated = module._read_changes(connection, query, outbox.column_lists)
    assert aggregated == row_by_row and [c["seq"] for c in aggregated] == [1, 2, 3, 4, 5]
    assert aggregated[4]["after"] == {"id": 6, "name": "ü 6"} and aggregated[4]["changed"] == ["id", "name"]
    assert aggregated[0]["after"]["name"] == 'Römer "Zahn" \\ 😀' and aggregated[1]["after"] is None
    assert aggregated[2]["created_at"] == "2026-11-25T20:00:00+00:00"
    assert outbox.read(db, 1, 10, None, INTEGRATION_IDENTITY) == row_by_row[1:2] + row_by_row[3:]


def test_records_of_one_transaction_share_a_transaction_id(db: Database, outbox: Outbox) -> None:
    """Every change of one DB transaction (nested levels included) carries the same transaction id."""
    with db.transaction():
        outbox.record(db, "items", {"id": 1}, "create", ["id"], {"id": 1}, "user")
        with db.transaction():
            outbox.record(db, "items", {"id": 2}, "create", ["id"], {"id": 2}, "user")
    write(db, outbox, 3)
    changes = outbox.read(db, 0, 10, None, None)
    assert [c["seq"] for c in changes] == [1, 2, 3]
    assert changes[0]["transaction_id"] == changes[1]["transaction_id"]
    assert changes[2]["transaction_id"] != changes[0]["transaction_id"]


def test_rolled_back_transaction_leaves_no_change_rows(db: Database, outbox: Outbox) -> None:
    """A change recorded in a transaction that rolls back disappears with the data write."""
    with pytest.raises(RuntimeError), db.transaction() as connection:
        connection.execute(sa.insert(ITEMS).values(id=1, name="x"))
        outbox.record(db, "items", {"id": 1}, "create", ["id"], {"id": 1}, "user")
        raise RuntimeError("boom")
    assert change_rows(db) == 0
    assert outbox.read(db, 0, 10, None, None) == []
    write(db, outbox, 2)  # the outbox keeps working after a rollback
    assert [c["key"] for c in outbox.read(db, 0, 10, None, None)] == [{"id": 2}]


def test_uncommitted_changes_are_invisible_even_to_the_writing_transaction(db: Database, outbox: Outbox) -> None:
    """The feed's watermark stops before the first change of a transaction still open."""
    write(db, outbox, 1)
    with db.transaction():
        outbox.record(db, "items", {"id": 2}, "create", ["id"], {"id": 2}, "user")
        page = outbox.read_page(db, 0, 10)
        assert [c["seq"] for c in page.changes] == [1]
        assert page.next == 1
    assert [c["seq"] for c in outbox.read(db, 0, 10, None, None)] == [1, 2]


def test_unknown_operation_is_refused(db: Database, outbox: Outbox) -> None:
    """Only create, update and delete are change operations."""
    with pytest.raises(ValueError), db.transaction():
        outbox.record(db, "items", {"id": 1}, "upsert", [], None, "user")


def test_record_many_writes_what_one_by_one_records_write(db: Database, outbox: Outbox) -> None:
    """Several changes of one table in one call: the same rows, in order, as one record each, and they
    join the transaction's id like any other record."""
    other = Outbox()
    other_db = Database("sqlite://", [METADATA, platform_metadata()])
    other_db.create_all()
    images = [({"id": i}, ["id", "name"], {"id": i, "name": f"item {i}", "amount": Decimal("1.50")}) for i in range(4)]
    with db.transaction():
        outbox.record(db, "items", {"id": 99}, "update", ["name"], {"id": 99, "name": "first"}, "alice")
        outbox.record_many(db, "items", "create", "alice", images)
    with other_db.transaction():
        other.record(other_db, "items", {"id": 99}, "update", ["name"], {"id": 99, "name": "first"}, "alice")
        for key, changed, after in images:
            other.record(other_db, "items", key, "create", changed, after, "alice")

    def comparable(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k not in ("created_at", "transaction_id")} for c in changes]

    changes = outbox.read(db, 0, 10, None, None)
    assert comparable(changes) == comparable(other.read(other_db, 0, 10, None, None))
    assert [c["seq"] for c in changes] == [1, 2, 3, 4, 5]
    assert len({c["transaction_id"] for c in changes}) == 1
    other_db.dispose()


def test_record_many_stores_images_compactly_and_reads_back_exactly(db: Database, outbox: Outbox) -> None:
    """Changes recorded together store their images' names once (a create's changed list as "*"); reading
    gives back exactly what was recorded: key order, nulls, a changed list that is not the image's names,
    images of another shape in the same call, and names read from the database by a process that never
    wrote them."""
    from sandbox import outbox as module

    every = ["id", "name", "note"]
    changes = [
        ({"id": 1}, every, {"id": 1, "name": "a", "note": None}),
        ({"id": 2}, every, {"id": 2, "name": None, "note": "n"}),
        ({"id": 3}, ["name", "id", "note"], {"name": "c", "id": 3, "note": None}),  # other order
        ({"id": 4}, ["name"], {"id": 4, "name": "d", "note": None}),  # an update's changed list
        ({"id": 5}, every, {"id": 5, "name": "e"}),
    ]  # fewer names
    with db.transaction():
        outbox.record_many(db, "items", "create", "user", changes)
    with db.transaction() as connection:
        stored = connection.execute(
            sa.select(ChangeRecord.__table__.c.changed, ChangeRecord.__table__.c.after).order_by(
                ChangeRecord.__table__.c.seq
            )
        ).all()
        columns = connection.execute(sa.select(sa.func.count()).select_from(module.ChangeColumns.__table__)).scalar()
    assert [changed for changed, _ in stored] == ["*", "*", "*", '["name"]', '["id","name","note"]']
    assert all(after.startswith("[") and '"name"' not in after for _, after in stored) and columns == 3

    def read_back(reader: Outbox) -> list[tuple[Any, Any]]:
        return [(c["changed"], c["after"]) for c in reader.read(db, 0, 10, None, None)]

    expected = [(changed, after) for _, changed, after in changes]
    assert read_back(outbox) == expected
    assert [list(after) for _, after in read_back(outbox)] == [list(after) for _, _, after in changes]
    assert read_back(Outbox()) == expected  # as a process that has not written them


def test_a_compact_image_whose_column_list_is_missing_is_a_clear_error(
    db: Database, outbox: Outbox, client: flask.testing.FlaskClient
) -> None:
    """A change row naming a column list its database lacks (a hand-made snapshot) is answered in the
    service's error shape, saying what is missing, not with a traceback."""
    from sandbox import outbox as module

    with db.transaction():
        outbox.record_many(db, "items", "create", "user", [({"id": i}, ["id"], {"id": i}) for i in (1, 2)])
    with db.transaction() as connection:
        connection.execute(sa.delete(module.ChangeColumns.__table__))
    outbox.column_lists.clear()
    response = client.get("/_sandbox/changes")
    assert response.status_code == 500
    assert "sandbox_outbox_columns" in response.get_json()["error"]["message"]


def test_compact_images_survive_a_reset_of_the_database(db: Database, outbox: Outbox) -> None:
    """After the tables are dropped and made again, the names of compact images are written again even
    though this process has written them before."""
    changes = [({"id": i}, ["id"], {"id": i}) for i in (1, 2)]
    with db.transaction():
        outbox.record_many(db, "items", "create", "user", changes)
    db.drop_all()
    db.create_all()
    with db.transaction():
        outbox.record_many(db, "items", "create", "user", changes)
    outbox.column_lists.clear()
    assert [c["after"] for c in outbox.read(db, 0, 10, None, None)] == [{"id": 1}, {"id": 2}]


def test_record_many_changes_stay_invisible_until_commit(db: Database, outbox: Outbox) -> None:
    """A transaction that starts with record_many holds the feed's watermark back until it commits."""
    write(db, outbox, 1)
    with db.transaction():
        outbox.record_many(db, "items", "create", "user", [({"id": i}, ["id"], {"id": i}) for i in (2, 3)])
        page = outbox.read_page(db, 0, 10)
        assert [c["seq"] for c in page.changes] == [1] and page.next == 1
    assert [c["seq"] for c in outbox.read(db, 0, 10, None, None)] == [1, 2, 3]
    assert outbox.wait(2, timeout=0)


def test_record_many_rolled_back_leaves_nothing(db: Database, outbox: Outbox) -> None:
    """Rolled back with the data write; an unknown operation is refused; no changes is a no-op."""
    with pytest.raises(RuntimeError), db.transaction():
        outbox.record_many(db, "items", "create", "user", [({"id": 1}, ["id"], {"id": 1})])
        raise RuntimeError("roll back")
    with pytest.raises(ValueError), db.transaction():
        outbox.record_many(db, "items", "upsert", "user", [({"id": 1}, [], None)])
    with db.transaction():
        outbox.record_many(db, "items", "create", "user", [])
    assert change_rows(db) == 0 and outbox.read_page(db, 0, 10).latest == 0


# ---- reading ----------------------------------------------------------------------------------------
def test_read_after_cursor_and_limit_pages_in_seq_order(db: Database, outbox: Outbox) -> None:
    """``after`` skips what was seen, ``limit`` caps the page, and ``next`` resumes where it stopped."""
    for item_id in range(1, 6):
        write(db, outbox, item_id)
    page = outbox.read_page(db, 1, 2)
    assert [c["seq"] for c in page.changes] == [2, 3]
    assert page.next == 3 and page.latest == 5
    page = outbox.read_page(db, page.next, 10)
    assert [c["seq"] for c in page.changes] == [4, 5]
    assert page.next == 5


def test_read_filters_by_table_and_excluded_identity(db: Database, outbox: Outbox) -> None:
    """Only the named tables are returned and the excluded identity's own writes are skipped."""
    write(db, outbox, 1, table="accounts")
    write(db, outbox, 2, table="contacts")
    write(db, outbox, 3, table="accounts", identity="bridge")
    write(db, outbox, 4, table="leads")
    changes = outbox.read(db, 0, 10, {"accounts", "contacts"}, "bridge")
    assert [c["seq"] for c in changes] == [1, 2]
    page = outbox.read_page(db, 0, 10, {"accounts"}, "bridge")
    assert page.next == 4  # rows filtered out are not scanned again


def test_latest_seq_is_zero_when_empty_and_follows_commits(db: Database, outbox: Outbox) -> None:
    """``latest_seq`` is the highest committed seq."""
    assert outbox.latest_seq(db) == 0
    write(db, outbox, 1)
    write(db, outbox, 2)
    assert outbox.latest_seq(db) == 2


def test_purge_empties_the_feed_and_never_reuses_a_seq(db: Database, outbox: Outbox) -> None:
    """After a purge the feed is empty and new changes continue above the old sequence numbers."""
    write(db, outbox, 1)
    write(db, outbox, 2)
    assert outbox.purge(db) == 2
    assert outbox.read(db, 0, 10, None, None) == []
    write(db, outbox, 3)
    assert [c["seq"] for c in outbox.read(db, 0, 10, None, None)] == [3]


def test_purge_through_a_seq_keeps_later_changes(db: Database, outbox: Outbox) -> None:
    """``purge(db, through_seq)`` only deletes rows at or below that seq."""
    for item_id in (1, 2, 3):
        write(db, outbox, item_id)
    assert outbox.purge(db, 2) == 2
    assert [c["seq"] for c in outbox.read(db, 0, 10, None, None)] == [3]


def test_wait_returns_true_once_a_commit_lands(db: Database, outbox: Outbox) -> None:
    """``wait`` blocks until a later commit, then reports True; it reports False on timeout."""
    write(db, outbox, 1)
    latest = outbox.latest_seq(db)
    assert outbox.wait(latest, 0.05) is False
    writer = threading.Timer(0.1, lambda: write(db, outbox, 2))
    writer.start()
    try:
        assert outbox.wait(latest, 10) is True
    finally:
        writer.join()
    assert outbox.wait(0, 0) is True


# ---- the HTTP feed ----------------------------------------------------------------------------------
def test_changes_endpoint_returns_changes_and_cursors(
    client: flask.testing.FlaskClient, db: Database, outbox: Outbox
) -> None:
    """``GET /_sandbox/changes`` answers ``{"changes", "next", "latest"}``."""
    write(db, outbox, 1)
    write(db, outbox, 2, table="other")
    response = client.get("/_sandbox/changes?after=0&limit=1")
    assert response.status_code == 200
    body = response.get_json()
    assert [c["seq"] for c in body["changes"]] == [1]
    assert body["next"] == 1 and body["latest"] == 2
    body = client.get("/_sandbox/changes?after=0&tables=other").get_json()
    assert [c["table"] for c in body["changes"]] == ["other"]


def test_changes_endpoint_excludes_an_identity(client: flask.testing.FlaskClient, db: Database, outbox: Outbox) -> None:
    """``exclude_identity`` hides that caller's writes (echo prevention)."""
    write(db, outbox, 1, identity="bridge")
    write(db, outbox, 2, identity="user")
    body = client.get("/_sandbox/changes?exclude_identity=bridge").get_json()
    assert [c["identity"] for c in body["changes"]] == ["user"]


def test_long_poll_wakes_up_when_a_change_commits(
    client: flask.testing.FlaskClient, db: Database, outbox: Outbox
) -> None:
    """A waiting request returns as soon as another thread commits a change, well before ``wait`` ends."""
    write(db, outbox, 1)
    writer = threading.Timer(0.2, lambda: write(db, outbox, 2))
    started = time.monotonic()
    writer.start()
    try:
        response = client.get("/_sandbox/changes?after=1&wait=20")
    finally:
        writer.join()
    elapsed = time.monotonic() - started
    body = response.get_json()
    assert [c["seq"] for c in body["changes"]] == [2]
    assert elapsed < 10


def test_long_poll_ignores_changes_of_other_tables_and_keeps_waiting(
    client: flask.testing.FlaskClient, db: Database, outbox: Outbox
) -> None:
    """A commit to a table outside ``tables`` does not end the wait; the matching one does."""

    def writes() -> None:
        write(db, outbox, 1, table="other")
        time.sleep(0.1)
        write(db, outbox, 2, table="wanted")

    writer = threading.Thread(target=writes)
    writer.start()
    try:
        body = client.get("/_sandbox/changes?after=0&tables=wanted&wait=20").get_json()
    finally:
        writer.join()
    assert [c["table"] for c in body["changes"]] == ["wanted"]
    assert body["next"] == 2


def test_long_poll_with_nothing_new_ends_empty_after_the_wait(
    client: flask.testing.FlaskClient, db: Database, outbox: Outbox
) -> None:
    """When nothing arrives the request answers an empty page with the cursor unchanged."""
    write(db, outbox, 1)
    started = time.monotonic()
    body = client.get("/_sandbox/changes?after=1&wait=0.2").get_json()
    assert time.monotonic() - started >= 0.15
    assert body == {"changes": [], "next": 1, "latest": 1}


def test_limit_above_the_maximum_is_capped(client: flask.testing.FlaskClient, db: Database, outbox: Outbox) -> None:
    """``limit`` beyond 5000 is served as 5000 rather than refused."""
    write(db, outbox, 1)
    assert client.get("/_sandbox/changes?limit=100000").status_code == 200


@pytest.mark.parametrize(
    "query", ["after=abc", "after=-1", "limit=0", "limit=x", "wait=soon", "wait=-1", "wait=nan", "tables=,"]
)
def test_bad_feed_parameter_answers_400_in_the_service_shape(client: flask.testing.FlaskClient, query: str) -> None:
    """A malformed cursor, limit, wait or table list is a 400 with the runtime's error body."""
    response = client.get(f"/_sandbox/changes?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] and error["message"]


def test_poll_until_sees_a_change_written_by_another_thread(db: Database, outbox: Outbox) -> None:
    """Changes committed on another thread become visible to readers here."""
    writer = threading.Thread(target=lambda: write(db, outbox, 7))
    writer.start()
    try:
        changes = poll_until(lambda: outbox.read(db, 0, 10, None, None))
    finally:
        writer.join()
    assert changes[0]["key"] == {"id": 7}
