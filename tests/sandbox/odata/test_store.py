"""The store's write path on a small model of its own: bulk inserts, key checks, memoized reads, epochs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox.db import Database, platform_metadata
from sandbox.errors import BadRequest, Conflict
from sandbox.odata.model import GUID, INT32, STRING, EntityType, Model, Property, new_guid
from sandbox.odata.store import EntityBehavior, Operation, Row, Store, WriteContext, fold_key_value
from sandbox.outbox import Outbox


def build_model() -> Model:
    item = EntityType(
        name="item",
        entity_set="items",
        key=("itemid",),
        properties={
            "itemid": Property("itemid", GUID, default=new_guid),
            "code": Property("code", STRING),
            "name": Property("name", STRING),
            "groupcode": Property("groupcode", STRING),
            "label": Property("label", STRING),
            "seen": Property("seen", INT32),
            "createdon": Property("createdon", "Edm.DateTimeOffset"),
        },
        alternate_keys=[("code", "groupcode")],
    )
    group = EntityType(
        name="group",
        entity_set="groups",
        key=("groupcode",),
        properties={"groupcode": Property("groupcode", STRING), "label": Property("label", STRING)},
    )
    return Model("Test", [item, group], created_on="createdon")


class ItemRules(EntityBehavior):
    """Takes each item's label from its group (a read of another table) and records after_write calls."""

    bulk_create = True

    def __init__(self) -> None:
        self.after: list[tuple[Operation, str]] = []
        self.group_reads = 0

    def on_create(self, ctx: WriteContext, values: Row) -> None:
        if values.get("name") == "refuse":
            raise BadRequest(f"Item {values.get('code')} is refused.", "0x1")
        if values.get("groupcode"):

            def read() -> Any:
                self.group_reads += 1
                return ctx.store.get("group", {"groupcode": values["groupcode"]})

            group = ctx.store.memoized(("group", values["groupcode"]), ("group",), read)
            values["label"] = group["label"] if group else None

    def after_write(self, ctx: WriteContext, operation: Operation, row: Row, before: Row | None) -> None:
        self.after.append((operation, row["code"]))


class CountingRules(ItemRules):
    """Rules that read their own table on create, so rows must be inserted one by one."""

    bulk_create = False

    def on_create(self, ctx: WriteContext, values: Row) -> None:
        values["seen"] = len(ctx.store.find("item"))


class Harness:
    """A store on in-memory SQLite with an outbox and a commit hook that records what it is handed."""

    def __init__(self, rules: EntityBehavior | None = None) -> None:
        self.model = build_model()
        self.db = Database("sqlite://", [self.model.metadata, platform_metadata()])
        self.db.create_all()
        self.outbox = Outbox()
        self.store = Store(self.model, self.db, self.outbox, {"item": rules} if rules is not None else {})
        self.hooked: list[list[dict[str, Any]]] = []
        self.store.commit_hooks.append(lambda changes: self.hooked.append(json.loads(json.dumps(changes, default=str))))
        with self.db.transaction():
            for code, label in (("g1", "Group one"), ("g2", "Group two")):
                self.store.insert("group", {"groupcode": code, "label": label})
        self.hooked.clear()
        self.statements: list[str] = []
        sa.event.listen(
            self.db.engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *a: self.statements.append(statement),
        )

    def items(self) -> list[Row]:
        with self.db.transaction():
            return self.store.find("item", order_by=["code"])

    def changes(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in change.items() if k not in ("seq", "created_at", "transaction_id")}
            for change in self.outbox.read(self.db, 0, 1000, {"item"})
        ]


@pytest.fixture
def rules() -> ItemRules:
    return ItemRules()


@pytest.fixture
def harness(rules: ItemRules) -> Iterator[Harness]:
    h = Harness(rules)
    yield h
    h.db.dispose()


def values(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"code": f"C{i:02d}", "name": f"Item {i}", "groupcode": "g1" if i % 2 else "g2", **extra} for i in range(count)
    ]


def comparable(harness: Harness) -> dict[str, Any]:
    """Rows, changes and hook payloads without generated ids and timestamps."""
    rows = [{k: v for k, v in row.items() if k not in ("itemid", "createdon")} for row in harness.items()]
    changes = [
        {**c, "key": None, "after": {k: v for k, v in c["after"].items() if k not in ("itemid", "createdon")}}
        for c in harness.changes()
    ]
    hooked = [
        [
            {**c, "key": None, "after": {k: v for k, v in c["after"].items() if k not in ("itemid", "createdon")}}
            for c in batch
        ]
        for batch in harness.hooked
    ]
    return {"rows": rows, "changes": changes, "hooked": hooked}


# ---- insert_many --------------------------------------------------------------------------------------------
def test_insert_many_writes_what_one_by_one_inserts_write() -> None:
    """Same rows (labels, row ids, versions), same change records in order, same commit-hook payload,
    after_write once per row in order."""
    bulk_rules, single_rules = ItemRules(), ItemRules()
    bulk, single = Harness(bulk_rules), Harness(single_rules)
    with bulk.db.transaction():
        returned = bulk.store.insert_many("item", values(6), identity="someone", via_api=True)
    with single.db.transaction():
        for given in values(6):
            single.store.insert("item", given, identity="someone", via_api=True)
    assert comparable(bulk) == comparable(single)
    assert [row["_rowid"] for row in returned] == [row["_rowid"] for row in bulk.items()]
    assert [row["label"] for row in bulk.items()] == ["Group two", "Group one"] * 3
    assert bulk_rules.after == single_rules.after == [("create", f"C{i:02d}") for i in range(6)]
    assert len(bulk.hooked) == 1 and len(bulk.hooked[0]) == 6
    assert bulk_rules.group_reads == 2  # one per group for the whole chunk, memoized


def test_insert_many_gives_consecutive_versions_in_order(harness: Harness) -> None:
    """Versions follow the order of the values, one apart, as one-by-one inserts hand them out."""
    with harness.db.transaction():
        rows = harness.store.insert_many("item", values(5))
    versions = [row["_rowversion"] for row in rows]
    assert versions == list(range(versions[0], versions[0] + 5))
    assert [r["_rowversion"] for r in harness.items()] == versions


def test_insert_many_uses_one_insert_and_one_key_query(harness: Harness) -> None:
    """A chunk of new rows: one key query (the alternate key; the fresh primary keys need none), one insert
    of the rows, one of their change records and one of the names of their images, however many rows
    there are."""
    counts = []
    for size, prefix in ((10, "S"), (40, "L")):
        with harness.db.transaction():
            harness.statements.clear()
            harness.store.insert_many("item", [{**v, "code": prefix + v["code"]} for v in values(size)])
            statements = list(harness.statements)
        assert sum(s.startswith("INSERT INTO items") for s in statements) == 1
        assert sum(s.startswith("INSERT INTO sandbox_outbox ") for s in statements) == 1
        assert sum(s.startswith("INSERT INTO sandbox_outbox_columns ") for s in statements) == 1
        assert sum(s.startswith("SELECT ") and " FROM items " in s for s in statements) == 1
        counts.append(len(statements))
    assert counts[0] == counts[1]


def test_the_chunks_alternate_key_query_searches_the_keys_index(harness: Harness) -> None:
    """The one key query of a chunk finds existing keys through the alternate key's index: SQLite scans the
    whole table for a row-value IN, which made every chunk of a large initial sync slower than the last."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith("SELECT ") and " FROM items " in statement:
            captured.append((statement, parameters))

    sa.event.listen(harness.db.engine, "before_cursor_execute", capture)
    try:
        with harness.db.transaction():
            harness.store.insert_many("item", values(20))
    finally:
        sa.event.remove(harness.db.engine, "before_cursor_execute", capture)
    assert len(captured) == 1
    statement, parameters = captured[0]
    with harness.db.transaction() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any(step.startswith("SEARCH items USING") for step in plan), plan
    assert not any(step.startswith("SCAN items") for step in plan), plan


def test_duplicate_alternate_key_inside_the_chunk_fails_like_one_by_one(harness: Harness) -> None:
    """Two rows with one (code, group): the Conflict one-by-one inserts raise; the transaction leaves nothing."""
    given = values(5)
    given[3]["code"], given[3]["groupcode"] = given[1]["code"], given[1]["groupcode"]
    with pytest.raises(Conflict) as excinfo:
        with harness.db.transaction():
            harness.store.insert_many("item", given)
    assert excinfo.value.code == "0x80040237"
    assert (
        excinfo.value.detail == "Cannot create a record in item. code: C01, groupcode: g1. The record already exists."
    )
    assert harness.items() == [] and harness.changes() == [] and harness.hooked == []


def test_duplicate_of_an_existing_row_fails_like_one_by_one(harness: Harness) -> None:
    """A row whose alternate key an existing row has: the same Conflict, nothing of the chunk written."""
    with harness.db.transaction():
        harness.store.insert("item", {"code": "C03", "groupcode": "g1"})
    with pytest.raises(Conflict) as excinfo:
        with harness.db.transaction():
            harness.store.insert_many("item", values(6))
    assert "code: C03, groupcode: g1" in str(excinfo.value.detail)
    assert [row["code"] for row in harness.items()] == ["C03"]


def test_a_refusal_in_a_later_row_is_the_error_after_an_earlier_duplicate(harness: Harness) -> None:
    """Errors come in row order: a duplicate in row 2 wins over a rule's refusal in row 4."""
    with harness.db.transaction():
        harness.store.insert("item", {"code": "C02", "groupcode": "g2"})
    given = values(6)
    given[4]["name"] = "refuse"
    with pytest.raises(Conflict):
        with harness.db.transaction():
            harness.store.insert_many("item", given)
    given = values(6)
    given[1]["name"] = "refuse"
    with pytest.raises(BadRequest, match="Item C01 is refused"):
        with harness.db.transaction():
            harness.store.insert_many("item", given)


def test_client_supplied_primary_keys_are_checked(harness: Harness) -> None:
    """A primary key the caller chose is checked against the table and inside the chunk; a missing one is
    refused like a single insert refuses it."""
    supplied = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    with harness.db.transaction():
        harness.store.insert("item", {"itemid": supplied, "code": "X"})
    with pytest.raises(Conflict):
        with harness.db.transaction():
            harness.store.insert_many("item", [{"itemid": supplied, "code": "Y"}, {"code": "Z"}])
    other = "3f2504e0-4f89-11d3-9a0c-0305e82c3302"
    with pytest.raises(Conflict):
        with harness.db.transaction():
            harness.store.insert_many("item", [{"itemid": other, "code": "Y"}, {"itemid": other, "code": "Z"}])
    with pytest.raises(BadRequest, match="The key property 'itemid' of 'item' must have a value."):
        with harness.db.transaction():
            harness.store.insert_many("item", [{"code": "Y"}, {"itemid": "", "code": "Z"}])
    assert [row["code"] for row in harness.items()] == ["X"]


def test_single_insert_skips_the_key_query_only_for_a_fresh_key(harness: Harness) -> None:
    """A generated uuid4 needs no uniqueness query; a supplied primary key does."""

    def key_queries(row: dict[str, Any]) -> int:
        with harness.db.transaction():
            harness.statements.clear()
            harness.store.insert("item", row)
            return sum("items.itemid = " in s for s in harness.statements if s.startswith("SELECT items._rowid"))

    assert key_queries({"code": "A"}) == 0
    assert key_queries({"code": "B", "itemid": "3f2504e0-4f89-11d3-9a0c-0305e82c3309"}) == 1


def test_rules_that_read_their_own_table_insert_one_by_one() -> None:
    """Without ``bulk_create`` every row sees the rows inserted before it; prepare_many refuses."""
    harness = Harness(CountingRules())
    with harness.db.transaction():
        harness.store.insert_many("item", values(4))
    assert [row["seen"] for row in harness.items()] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        with harness.db.transaction():
            harness.store.prepare_many("item", values(2))
    harness.db.dispose()


class DroppingRules(ItemRules):
    """Rules that leave a column out of some rows (so a chunk has no single set of columns)."""

    def on_create(self, ctx: WriteContext, values: Row) -> None:
        super().on_create(ctx, values)
        if values.get("name") == "drop":
            del values["label"]


def test_rows_with_different_columns_are_inserted_one_by_one() -> None:
    """A chunk whose rows do not share one set of columns still gets every row, in order."""
    harness = Harness(DroppingRules())
    given = values(4)
    given[1]["name"] = "drop"
    with harness.db.transaction():
        rows = harness.store.insert_many("item", given)
    assert [row["code"] for row in harness.items()] == [row["code"] for row in rows] == ["C00", "C01", "C02", "C03"]
    assert [row["label"] for row in harness.items()] == ["Group two", None, "Group two", "Group one"]
    harness.db.dispose()


def test_a_database_error_in_bulk_is_replayed_row_by_row(harness: Harness) -> None:
    """A row the database refuses: the chunk is rolled back to its savepoint and inserted row by row, so the
    error is the one a single insert of that row raises (its own parameters, not the chunk's)."""
    with harness.db.transaction() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER no_boom BEFORE INSERT ON items WHEN NEW.name = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
        )
    given = values(4)
    given[2]["name"] = "boom"
    with pytest.raises(sa.exc.IntegrityError) as excinfo:
        with harness.db.transaction():
            harness.store.insert_many("item", given)
    assert "boom refused" in str(excinfo.value)
    assert "RETURNING" not in excinfo.value.statement  # the single insert's statement
    assert isinstance(excinfo.value.params, tuple) and "C02" in excinfo.value.params
    assert harness.items() == [] and harness.changes() == []


# ---- memoized reads -------------------------------------------------------------------------------------------
def test_memoized_value_lasts_until_its_table_is_written(harness: Harness) -> None:
    """Computed once per transaction; an insert, update or delete of a table it depends on drops it."""
    calls: list[int] = []

    def label() -> str | None:
        calls.append(1)
        rows = harness.store.find("group", order_by=["-groupcode"], limit=1)
        return rows[0]["label"] if rows else None

    store = harness.store
    with harness.db.transaction():
        assert [store.memoized("top", ("group",), label) for _ in range(3)] == ["Group two"] * 3
        store.insert("item", {"code": "unrelated"})
        assert store.memoized("top", ("group",), label) == "Group two" and len(calls) == 1
        store.insert("group", {"groupcode": "g3", "label": "Group three"})
        assert store.memoized("top", ("group",), label) == "Group three" and len(calls) == 2
        g3 = store.get("group", {"groupcode": "g3"})
        assert g3 is not None
        store.update("group", g3, {"label": "Renamed"})
        assert store.memoized("top", ("group",), label) == "Renamed" and len(calls) == 3
        store.delete("group", store.get("group", {"groupcode": "g3"}) or {})
        assert store.memoized("top", ("group",), label) == "Group two" and len(calls) == 4
    with harness.db.transaction():
        assert store.memoized("top", ("group",), label) == "Group two" and len(calls) == 5
    outside: list[int] = []
    for _ in range(2):
        store.memoized("outside", ("group",), lambda: outside.append(1))
    assert len(outside) == 2  # no transaction, no memo


def test_memoized_values_are_dropped_when_a_savepoint_rolls_back(harness: Harness) -> None:
    """A value read inside a savepoint that rolls back may describe rows that are gone: it is forgotten."""
    store = harness.store
    with harness.db.transaction():
        with pytest.raises(RuntimeError):
            with harness.db.savepoint():
                store.insert("group", {"groupcode": "g9", "label": "Doomed"})
                assert store.get_cached("group", {"groupcode": "g9"}) is not None
                raise RuntimeError("part failed")
        assert store.get_cached("group", {"groupcode": "g9"}) is None


def test_get_cached_hands_out_copies(harness: Harness) -> None:
    """Changing a row get_cached returned does not change what the next call returns."""
    with harness.db.transaction():
        first = harness.store.get_cached("group", {"groupcode": "g1"})
        assert first is not None
        first["label"] = "scribbled"
        assert harness.store.get_cached("group", {"groupcode": "g1"}) == {**first, "label": "Group one"}
        assert harness.store.get_cached("group", {"groupcode": "nope"}) is None


def test_forget_memo_drops_everything(harness: Harness) -> None:
    """After writes the store did not see (a snapshot import), forget_memo makes every value be read again."""
    with harness.db.transaction() as connection:
        assert harness.store.get_cached("group", {"groupcode": "g1"})["label"] == "Group one"  # type: ignore[index]
        connection.execute(sa.text("UPDATE groups SET label = 'Raw' WHERE groupcode = 'g1'"))
        harness.db.forget_memo()
        assert harness.store.get_cached("group", {"groupcode": "g1"})["label"] == "Raw"  # type: ignore[index]


# ---- change epochs --------------------------------------------------------------------------------------------
def test_change_epoch_moves_on_update_and_delete_only(harness: Harness) -> None:
    """Inserts leave a table's epoch alone (no row found by a unique key can change); updates and deletes
    move it, and only for their own table."""
    store = harness.store
    with harness.db.transaction():
        start, groups = store.change_epoch("item"), store.change_epoch("group")
        row = store.insert("item", {"code": "E"})
        store.insert_many("item", values(3))
        assert store.change_epoch("item") == start
        row = store.update("item", row, {"name": "changed"})
        updated = store.change_epoch("item")
        assert updated != start
        store.update("item", row, {"name": "changed"})  # no real change: no write
        assert store.change_epoch("item") == updated
        store.delete("item", row)
        assert store.change_epoch("item") not in (start, updated)
        assert store.change_epoch("group") == groups


# ---- folding keys for the in-chunk check ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "left,right",
    [
        ("10", 10),
        ("ABC", "abc"),
        (Decimal("1.50"), 1.5),
        ("1.50", Decimal("1.5")),
        (True, 1),
        (" 10 ", "1e1"),
        ("1_0", 10),
        ("647D2DB7-36EE-4FC3-B93A-0912EAC00C2E", "647d2db7-36ee-4fc3-b93a-0912eac00c2e"),
    ],
)
def test_values_sql_may_find_equal_fold_alike(left: Any, right: Any) -> None:
    """Whatever SQL may compare as equal folds alike (a few unequal values too, which only costs speed)."""
    assert fold_key_value(left) == fold_key_value(right)


def test_values_of_other_types_do_not_fold() -> None:
    """A type the check cannot compare like SQL does sends the chunk row by row."""
    assert fold_key_value(dt.datetime(2024, 1, 1)) is None and fold_key_value(b"x") is None
    assert fold_key_value("a") != fold_key_value("b") and fold_key_value(1) != fold_key_value(2)
