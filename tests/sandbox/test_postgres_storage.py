"""Storage on PostgreSQL shared by several processes of one service (``sandbox up --workers N``): row versions,
the change feed's order and wake-ups, faults and the journal. Each "process" here is a Database and Outbox of its
own on the same database, which know nothing of each other but what the database tells them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import flask
import pytest
import sqlalchemy as sa

from sandbox.db import Database, platform_metadata, reserve_row_versions
from sandbox.outbox import Outbox, changes_blueprint
from sandbox.shared import SharedFaultRegistry, SharedJournal
from sandbox.testing import poll_until
from tests.sandbox.test_outbox import ITEMS, METADATA, FeedRuntime, write


@pytest.fixture
def url(pg_urls: dict[str, str]) -> str:
    return pg_urls["sales"]


@pytest.fixture
def databases(url: str) -> Iterator[list[Database]]:
    """Two handles on one PostgreSQL database, as two worker processes of a service hold."""
    handles = [Database(url, [METADATA, platform_metadata()]) for _ in range(2)]
    handles[0].create_all()
    handles[1].create_all()  # a second worker starting: idempotent
    yield handles
    for handle in handles:
        handle.dispose()


def test_row_versions_from_concurrent_writers_are_unique_and_a_block_is_consecutive(databases: list[Database]) -> None:
    """Threads on two handles take single versions and blocks at once: no version is handed out twice, and every
    block is consecutive."""
    taken: list[list[int]] = []
    lock = threading.Lock()

    def worker(database: Database, size: int) -> None:
        for _ in range(20):
            with database.transaction(may_sync=False) as connection:
                first = reserve_row_versions(connection, size, lambda: 0)
            with lock:
                taken.append(list(range(first, first + size)))

    threads = [threading.Thread(target=worker, args=(databases[i % 2], 1 + (i % 3) * 4)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [version for block in taken for version in block]
    assert len(every) == len(set(every)) == 20 * (2 * 1 + 2 * 5 + 2 * 9)
    assert min(every) >= 1


def test_a_reader_in_another_process_never_skips_a_change_still_being_committed(databases: list[Database]) -> None:
    """Writer A holds an open transaction with a change; writer B commits a later one. A reader that shares no
    memory with either stops short of A's change (it would otherwise pass it for good), and reads both, in
    order, once A commits."""
    first, second = databases
    reader_db = Database(first.url, [METADATA, platform_metadata()])
    writer_a, writer_b, reader = Outbox(), Outbox(), Outbox()
    release = threading.Event()
    recorded = threading.Event()

    def slow_writer() -> None:
        with first.transaction() as connection:
            connection.execute(sa.insert(ITEMS).values(id=1, name="slow"))
            writer_a.record(first, "items", {"id": 1}, "create", ["id"], {"id": 1}, "user")
            recorded.set()
            release.wait(30)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert recorded.wait(30)
        write(second, writer_b, 2)
        page = reader.read_page(reader_db, 0, 10)
        assert page.changes == [] and page.next == 0
    finally:
        release.set()
        thread.join()
    try:
        seqs = [(change["key"]["id"], change["seq"]) for change in reader.read(reader_db, 0, 10)]
        assert [item for item, _ in seqs] == [1, 2] and seqs[0][1] < seqs[1][1]
    finally:
        reader_db.dispose()


def test_a_long_poll_wakes_up_for_a_change_another_process_committed(databases: list[Database]) -> None:
    """The long-poller's process never sees the commit (another handle and outbox wrote it): it wakes all the same."""
    listener_db, writer_db = databases
    app = flask.Flask(__name__)
    app.register_blueprint(changes_blueprint(FeedRuntime(listener_db, Outbox())))
    answers: list[dict] = []
    poller = threading.Thread(
        target=lambda: answers.append(app.test_client().get("/_sandbox/changes?after=0&wait=20").get_json())
    )
    poller.start()
    write(writer_db, Outbox(), 7)
    poller.join(30)
    assert not poller.is_alive()
    assert [change["key"] for change in answers[0]["changes"]] == [{"id": 7}]


def test_a_fault_added_in_one_process_fires_in_another_and_times_counts_across_them(url: str) -> None:
    """Faults live in the database: one added through one worker fires on the next matching request whichever
    worker takes it, ``times`` counts across workers, and removing it removes it for all."""
    engines = [sa.create_engine(url) for _ in range(2)]
    try:
        one, other = (SharedFaultRegistry(engine, seed=1) for engine in engines)
        fault = one.add({"path": "accounts", "status": 429, "times": 2})
        assert [f.id for f in other.list()] == [fault.id] and len(other) == 1
        assert other.match("GET", "/api/data/v9.2/contacts") is None
        fired = [other.match("GET", "/api/data/v9.2/accounts"), one.match("GET", "/api/data/v9.2/accounts")]
        assert [f.id if f else None for f in fired] == [fault.id, fault.id]
        assert fired[1] is not None and fired[1].fired == 2 and fired[1].times == 0
        assert one.match("GET", "/api/data/v9.2/accounts") is None and other.list() == []
        lasting = other.add({"path": "accounts", "status": 503})
        assert one.get(lasting.id) is not None
        assert one.remove(lasting.id) and other.get(lasting.id) is None and not other.remove(lasting.id)
        other.add({"status": 500})
        one.clear()
        assert len(other) == 0
    finally:
        for engine in engines:
            engine.dispose()


def test_the_journal_is_one_for_every_process_and_keeps_its_capacity(url: str) -> None:
    engines = [sa.create_engine(url) for _ in range(2)]
    try:
        one, other = SharedJournal(engines[0], capacity=3), SharedJournal(engines[1], capacity=3)
        for index in range(4):
            (one if index % 2 else other).add({"method": "GET", "path": f"/p{index}", "status": 200})
        listed = one.entries()
        assert [entry["path"] for entry in listed] == ["/p3", "/p2", "/p1"] and len(other) == 3
        assert [entry["path"] for entry in other.entries(limit=1, path_regex="p2")] == ["/p2"]
        other.clear()
        assert one.entries() == [] and len(one) == 0
    finally:
        for engine in engines:
            engine.dispose()


def test_a_savepoint_rolled_back_after_the_first_change_still_leaves_the_rest_ordered(
    databases: list[Database],
) -> None:
    """The first change row's reservation is taken inside a savepoint that rolls back (releasing it): the next
    change row of the transaction takes a new one, so a reader elsewhere still stops short of it."""
    first, second = databases
    writer, reader = Outbox(), Outbox()
    release, recorded = threading.Event(), threading.Event()

    def writer_thread() -> None:
        with first.transaction() as connection:
            with pytest.raises(RuntimeError), first.savepoint():
                writer.record(first, "items", {"id": 1}, "create", ["id"], {"id": 1}, "user")
                raise RuntimeError("roll the savepoint back")
            connection.execute(sa.insert(ITEMS).values(id=2, name="kept"))
            writer.record(first, "items", {"id": 2}, "create", ["id"], {"id": 2}, "user")
            recorded.set()
            release.wait(30)

    thread = threading.Thread(target=writer_thread)
    thread.start()
    try:
        assert recorded.wait(30)
        write(second, Outbox(), 3)
        assert reader.read(second, 0, 10) == []
    finally:
        release.set()
        thread.join()
    assert [change["key"]["id"] for change in poll_until(lambda: reader.read(second, 0, 10), timeout=10)] == [2, 3]
