"""Tests of the control plane (sandbox/control.py) and the request journal (sandbox/journal.py)."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import flask
import pytest
import sqlalchemy as sa

from sandbox.control import control_blueprint, decode_value, encode_value, mask_url
from sandbox.db import Database, platform_metadata
from sandbox.errors import SandboxError
from sandbox.faults import FaultRegistry, install_fault_hook
from sandbox.journal import BODY_LIMIT, Journal, install_journal_hook
from sandbox.outbox import Outbox

METADATA = sa.MetaData()
WIDGETS = sa.Table(
    "widgets",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("price", sa.Numeric(19, 4, asdecimal=True)),
    sa.Column("weight", sa.Float),
    sa.Column("active", sa.Boolean),
    sa.Column("made_on", sa.Date),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
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


class FakeRuntime:
    """A ServiceRuntime over one ``widgets`` table in a private in-memory database."""

    def __init__(self) -> None:
        self.name = "widgets"
        self.db = Database("sqlite://", [METADATA, platform_metadata()])
        self.db.create_all()
        self.outbox = Outbox()
        self.faults = FaultRegistry(seed=1)
        self.journal = Journal(capacity=50)
        self.started_at = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        self.seed_error: Exception | None = None
        self.imports = 0

    def render_error(self, err: SandboxError) -> flask.Response:
        response = flask.jsonify({"error": {"code": err.code, "message": err.message}})
        response.status_code = err.status
        return response

    def reset(self) -> None:
        self.db.drop_all()
        self.db.create_all()

    def seed(self, seed: int, options: dict[str, Any]) -> dict[str, Any]:
        if self.seed_error is not None:
            raise self.seed_error
        rng = random.Random(seed)
        count = int(options.get("widgets", 3))
        for index in range(count):
            self.add_widget(f"widget {rng.randint(1000, 9999)}-{index}", Decimal(rng.randint(100, 99999)) / 100)
        return {"widgets": count}

    def info(self) -> dict[str, Any]:
        return {"dialect": "test"}

    def after_import(self) -> None:
        self.imports += 1

    def add_widget(self, name: str, price: Decimal, identity: str = "user") -> int:
        values = {
            "name": name,
            "price": price,
            "weight": 1.25,
            "active": True,
            "made_on": dt.date(2024, 2, 29),
            "updated_at": dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
        }
        with self.db.transaction() as connection:
            widget_id = connection.execute(sa.insert(WIDGETS).values(**values)).inserted_primary_key[0]
            self.outbox.record(self.db, "widgets", {"id": widget_id}, "create", list(values), values, identity)
        return int(widget_id)

    def widgets(self) -> list[dict[str, Any]]:
        with self.db.transaction() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.select(WIDGETS).order_by(WIDGETS.c.id))]


@pytest.fixture
def runtime() -> Iterator[FakeRuntime]:
    rt = FakeRuntime()
    yield rt
    rt.db.dispose()


@pytest.fixture
def app(runtime: FakeRuntime) -> flask.Flask:
    application = flask.Flask(__name__)
    application.register_blueprint(control_blueprint(runtime))
    install_journal_hook(application, runtime.journal, lambda request: request.headers.get("X-Identity", "user"))
    install_fault_hook(application, runtime.faults, runtime.render_error)

    @application.route("/api/widgets", methods=["GET", "POST"])
    def widgets() -> flask.Response:
        if flask.request.method == "POST":
            body = flask.request.get_json()
            widget_id = runtime.add_widget(
                body["name"], Decimal(str(body.get("price", "1"))), flask.request.headers.get("X-Identity", "user")
            )
            return flask.jsonify({"id": widget_id}), 201
        return flask.jsonify({"value": [w["name"] for w in runtime.widgets()]})

    return application


@pytest.fixture
def client(app: flask.Flask) -> flask.testing.FlaskClient:
    return app.test_client()


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """The response is ``status`` with the runtime's ``{"error": {"code", "message"}}`` JSON body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and error["message"]
    return error


# ---- health, info, reset, seed ----------------------------------------------------------------------
def test_health_reports_ok_and_the_service_name(client: flask.testing.FlaskClient) -> None:
    """``GET /_sandbox/health`` is a 200 naming the service."""
    response = client.get("/_sandbox/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "service": "widgets"}


def test_health_is_503_naming_a_seed_in_progress_until_it_finishes(
    app: flask.Flask, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a seed runs the data is half there: health answers 503 (Retry-After) naming it, then 200."""
    entered, release = threading.Event(), threading.Event()
    seed = runtime.seed

    def slow_seed(value: int, options: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return seed(value, options)

    monkeypatch.setattr(runtime, "seed", slow_seed)
    seeding = threading.Thread(target=lambda: app.test_client().post("/_sandbox/seed", json={"seed": 1}))
    seeding.start()
    try:
        assert entered.wait(10)
        response = app.test_client().get("/_sandbox/health")
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.get_json() == {"status": "starting", "service": "widgets", "waiting_for": ["seed"]}
    finally:
        release.set()
        seeding.join(10)
    assert app.test_client().get("/_sandbox/health").status_code == 200


def test_health_is_503_with_what_the_runtimes_waiting_for_hook_names(
    client: flask.testing.FlaskClient, runtime: FakeRuntime
) -> None:
    """A runtime's optional ``waiting_for()`` hook holds health at 503 until it returns nothing."""
    reasons = ["warming the cache"]
    runtime.waiting_for = lambda: list(reasons)  # type: ignore[attr-defined]

    body = client.get("/_sandbox/health").get_json()
    assert body == {"status": "starting", "service": "widgets", "waiting_for": ["warming the cache"]}
    reasons.clear()
    assert client.get("/_sandbox/health").status_code == 200


def test_info_reports_runtime_facts_and_service_extras(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """``GET /_sandbox/info`` has name, version, start time, database, counts, outbox, faults and extras."""
    runtime.add_widget("a", Decimal("1.00"))
    runtime.faults.add({"status": 500, "path": "^/nowhere$"})
    info = client.get("/_sandbox/info").get_json()
    assert info["name"] == "widgets"
    assert isinstance(info["version"], str) and info["version"]
    assert info["started_at"] == "2024-01-02T03:04:05+00:00"
    assert info["database"] == "sqlite://"
    assert info["tables"]["widgets"] == 1 and info["tables"]["sandbox_outbox"] == 1
    assert info["outbox"] == {"latest_seq": 1}
    assert info["faults"] == 1
    assert info["dialect"] == "test"


def test_database_url_password_is_masked() -> None:
    """Credentials never appear in ``info``."""
    masked = mask_url("postgresql+psycopg://sales:s3cret@db.local:5432/sales")
    assert "s3cret" not in masked and "***" in masked and "db.local" in masked


def test_reset_empties_every_table(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """``POST /_sandbox/reset`` answers 204 and leaves data and outbox empty."""
    runtime.add_widget("a", Decimal("1"))
    response = client.post("/_sandbox/reset")
    assert response.status_code == 204 and response.data == b""
    assert runtime.widgets() == []
    assert client.get("/_sandbox/changes").get_json() == {"changes": [], "next": 0, "latest": 0}


def test_seed_passes_seed_and_options_and_returns_counts(
    client: flask.testing.FlaskClient, runtime: FakeRuntime
) -> None:
    """``POST /_sandbox/seed`` hands the seed and remaining options to the runtime; same seed, same data."""
    response = client.post("/_sandbox/seed", json={"seed": 7, "widgets": 2})
    assert response.status_code == 200
    assert response.get_json() == {"seed": 7, "counts": {"widgets": 2}}
    first = [w["name"] for w in runtime.widgets()]
    client.post("/_sandbox/reset")
    client.post("/_sandbox/seed", json={"seed": 7, "widgets": 2})
    assert [w["name"] for w in runtime.widgets()] == first


def test_seed_without_body_uses_seed_1(client: flask.testing.FlaskClient) -> None:
    """An empty body means ``{"seed": 1}``."""
    assert client.post("/_sandbox/seed").get_json() == {"seed": 1, "counts": {"widgets": 3}}


@pytest.mark.parametrize("body", ['{"seed": "x"}', '{"seed": true}', "[1]", "{not json"])
def test_seed_with_bad_body_is_400(client: flask.testing.FlaskClient, body: str) -> None:
    """A non-integer seed, a non-object body or malformed JSON is a 400."""
    assert_error(client.post("/_sandbox/seed", data=body, content_type="application/json"), 400)


def test_unexpected_runtime_failure_is_a_500_in_the_service_shape(
    client: flask.testing.FlaskClient, runtime: FakeRuntime
) -> None:
    """A bug in the runtime still answers JSON in the error shape, never an HTML page."""
    runtime.seed_error = KeyError("oops")
    assert_error(client.post("/_sandbox/seed", json={}), 500)


# ---- snapshot ---------------------------------------------------------------------------------------
def test_snapshot_round_trip_restores_the_exact_data(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """Export, change the data, import the export: a second export equals the first, types included."""
    runtime.add_widget("a", Decimal("12.3456"))
    runtime.add_widget("b", Decimal("0.5"))
    exported = client.get("/_sandbox/snapshot").get_json()
    assert exported["service"] == "widgets" and exported["format"] == 1
    assert [row["name"] for row in exported["tables"]["widgets"]] == ["a", "b"]
    before = runtime.widgets()

    client.post("/api/widgets", json={"name": "c", "price": "9"})
    with runtime.db.transaction() as connection:
        connection.execute(sa.update(WIDGETS).where(WIDGETS.c.id == 1).values(name="changed"))

    response = client.post("/_sandbox/snapshot", json=exported)
    assert response.status_code == 204
    assert client.get("/_sandbox/snapshot").get_json() == exported
    restored = runtime.widgets()
    assert restored == before
    assert isinstance(restored[0]["price"], Decimal) and isinstance(restored[0]["made_on"], dt.date)
    assert runtime.imports == 1


def test_snapshot_import_restores_the_outbox_feed(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """The outbox is a table like any other: its rows come back and new changes continue after them."""
    runtime.add_widget("a", Decimal("1"))
    exported = client.get("/_sandbox/snapshot").get_json()
    client.post("/_sandbox/reset")
    assert client.post("/_sandbox/snapshot", json=exported).status_code == 204
    feed = client.get("/_sandbox/changes").get_json()
    assert [c["key"] for c in feed["changes"]] == [{"id": 1}]
    runtime.add_widget("b", Decimal("2"))
    assert client.get("/_sandbox/changes?after=1").get_json()["changes"][0]["seq"] == 2


def test_snapshot_omitting_a_table_empties_it(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """Import replaces all data: a table absent from the snapshot ends up empty."""
    runtime.add_widget("a", Decimal("1"))
    assert client.post("/_sandbox/snapshot", json={"service": "widgets", "format": 1, "tables": {}}).status_code == 204
    assert runtime.widgets() == []


@pytest.mark.parametrize(
    ("snapshot", "words"),
    [
        ({"service": "widgets", "format": 1, "tables": {"gadgets": []}}, "unknown table"),
        ({"service": "widgets", "format": 2, "tables": {}}, "format"),
        ({"service": "sales", "format": 1, "tables": {}}, "service"),
        ({"service": "widgets", "format": 1, "tables": []}, "tables"),
        (
            {"service": "widgets", "format": 1, "tables": {"widgets": [{"id": 9, "name": "x", "colour": "red"}]}},
            "unknown column",
        ),
        (
            {"service": "widgets", "format": 1, "tables": {"widgets": [{"id": 9, "name": "x", "price": "lots"}]}},
            "price",
        ),
        (
            {"service": "widgets", "format": 1, "tables": {"widgets": [{"id": 9, "name": "x", "made_on": "29/02"}]}},
            "made_on",
        ),
        ({"service": "widgets", "format": 1, "tables": {"widgets": [{"id": "nine", "name": "x"}]}}, "id"),
        ({"service": "widgets", "format": 1, "tables": {"widgets": ["row"]}}, "object"),
    ],
)
def test_bad_snapshot_is_400_and_changes_nothing(
    client: flask.testing.FlaskClient, runtime: FakeRuntime, snapshot: Any, words: str
) -> None:
    """An invalid snapshot is refused as a whole before any table is touched."""
    runtime.add_widget("keep", Decimal("1"))
    before = client.get("/_sandbox/snapshot").get_json()
    error = assert_error(client.post("/_sandbox/snapshot", json=snapshot), 400)
    assert words in error["message"]
    assert client.get("/_sandbox/snapshot").get_json() == before


def test_snapshot_rejected_by_the_database_rolls_back_completely(
    client: flask.testing.FlaskClient, runtime: FakeRuntime
) -> None:
    """A row that breaks a constraint (NOT NULL name) undoes the deletes already made."""
    runtime.add_widget("keep", Decimal("1"))
    before = client.get("/_sandbox/snapshot").get_json()
    bad = {"service": "widgets", "format": 1, "tables": {"widgets": [{"id": 1, "name": None}]}}
    response = client.post("/_sandbox/snapshot", json=bad)
    assert response.status_code >= 400
    assert_error(response, response.status_code)
    assert client.get("/_sandbox/snapshot").get_json() == before


def test_malformed_snapshot_json_is_400(client: flask.testing.FlaskClient) -> None:
    """A body that is not JSON is a 400 in the service's shape."""
    assert_error(client.post("/_sandbox/snapshot", data="{", content_type="application/json"), 400)
    assert_error(client.post("/_sandbox/snapshot"), 400)


def test_value_codec_round_trips_each_column_type() -> None:
    """Decimal, float, bool, date and aware datetime survive encode -> JSON -> decode."""
    values = {
        "price": Decimal("1.2300"),
        "weight": 2.5,
        "active": False,
        "made_on": dt.date(2024, 1, 31),
        "updated_at": dt.datetime(2024, 1, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
    }
    for name, value in values.items():
        encoded = json.loads(json.dumps(encode_value(value)))
        assert decode_value(WIDGETS.c[name], encoded) == value


# ---- journal ----------------------------------------------------------------------------------------
def test_journal_records_service_requests_but_not_control_calls(client: flask.testing.FlaskClient) -> None:
    """Each API request is journaled with method, path, query, status, timing, identity and bodies."""
    client.post("/api/widgets?x=1", json={"name": "a"}, headers={"X-Identity": "bridge"})
    client.get("/_sandbox/health")
    [entry] = client.get("/_sandbox/journal").get_json()["entries"]
    assert entry["method"] == "POST" and entry["path"] == "/api/widgets" and entry["query"] == "x=1"
    assert entry["status"] == 201 and entry["identity"] == "bridge"
    assert json.loads(entry["request_body"]) == {"name": "a"}
    assert json.loads(entry["response_body"]) == {"id": 1}
    assert entry["duration_ms"] >= 0 and entry["fault"] is None
    assert dt.datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_journal_lists_newest_first_and_filters(client: flask.testing.FlaskClient) -> None:
    """``limit``, ``method`` and ``path`` (a regex) narrow the list, newest first."""
    client.get("/api/widgets")
    client.post("/api/widgets", json={"name": "a"})
    client.get("/api/widgets?second")
    entries = client.get("/_sandbox/journal").get_json()["entries"]
    assert [e["method"] for e in entries] == ["GET", "POST", "GET"]
    assert entries[0]["id"] > entries[1]["id"]
    assert len(client.get("/_sandbox/journal?limit=1").get_json()["entries"]) == 1
    assert [e["method"] for e in client.get("/_sandbox/journal?method=post").get_json()["entries"]] == ["POST"]
    assert client.get("/_sandbox/journal?path=^/other").get_json()["entries"] == []


def test_journal_truncates_bodies_to_2kb(client: flask.testing.FlaskClient) -> None:
    """Bodies longer than 2 KB are cut (and marked) so the journal stays small."""
    client.post("/api/widgets", json={"name": "x" * 5000})
    entry = client.get("/_sandbox/journal").get_json()["entries"][0]
    assert len(entry["request_body"]) == BODY_LIMIT + 1 and entry["request_body"].endswith("…")


def test_journal_keeps_only_the_last_capacity_entries() -> None:
    """The ring buffer drops the oldest entry when full."""
    journal = Journal(capacity=3)
    for index in range(5):
        journal.add({"method": "GET", "path": f"/{index}"})
    assert [e["path"] for e in journal.entries()] == ["/4", "/3", "/2"]


def test_journal_notes_the_fault_that_fired(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """A faulted request is journaled with its status and the fault id."""
    fault = runtime.faults.add({"status": 429, "times": 1})
    client.get("/api/widgets")
    entry = client.get("/_sandbox/journal").get_json()["entries"][0]
    assert entry["status"] == 429 and entry["fault"] == fault.id


def test_delete_journal_empties_it(client: flask.testing.FlaskClient) -> None:
    """``DELETE /_sandbox/journal`` is a 204 and the list is empty afterwards."""
    client.get("/api/widgets")
    assert client.delete("/_sandbox/journal").status_code == 204
    assert client.get("/_sandbox/journal").get_json() == {"entries": []}


@pytest.mark.parametrize("query", ["limit=x", "limit=0", "path=(bad"])
def test_bad_journal_query_is_400(client: flask.testing.FlaskClient, query: str) -> None:
    """A malformed limit or path regex is a 400."""
    assert_error(client.get(f"/_sandbox/journal?{query}"), 400)


# ---- faults over HTTP -------------------------------------------------------------------------------
def test_fault_lifecycle_over_http(client: flask.testing.FlaskClient) -> None:
    """Add (201 + id + Location), list, get, fire, delete one (204) and delete unknown (404)."""
    response = client.post("/_sandbox/faults", json={"method": "GET", "path": "^/api/widgets$", "status": 503})
    assert response.status_code == 201
    fault = response.get_json()
    assert fault["status"] == 503 and fault["match"] == {"method": "GET", "path": "^/api/widgets$", "identity": None}
    assert response.headers["Location"].endswith(f"/_sandbox/faults/{fault['id']}")
    assert [f["id"] for f in client.get("/_sandbox/faults").get_json()["faults"]] == [fault["id"]]

    assert_error(client.get("/api/widgets"), 503)
    assert client.get(f"/_sandbox/faults/{fault['id']}").get_json()["fired"] == 1

    assert client.delete(f"/_sandbox/faults/{fault['id']}").status_code == 204
    assert client.get("/api/widgets").status_code == 200
    assert_error(client.delete(f"/_sandbox/faults/{fault['id']}"), 404)
    assert_error(client.get(f"/_sandbox/faults/{fault['id']}"), 404)


def test_delete_all_faults(client: flask.testing.FlaskClient) -> None:
    """``DELETE /_sandbox/faults`` removes every fault."""
    client.post("/_sandbox/faults", json={"status": 500})
    client.post("/_sandbox/faults", json={"status": 502})
    assert client.delete("/_sandbox/faults").status_code == 204
    assert client.get("/_sandbox/faults").get_json() == {"faults": []}
    assert client.get("/api/widgets").status_code == 200


def test_429_fault_over_http_carries_retry_after(client: flask.testing.FlaskClient) -> None:
    """An injected 429 answers with ``Retry-After``."""
    client.post("/_sandbox/faults", json={"status": 429, "retry_after": 3})
    response = client.get("/api/widgets")
    assert_error(response, 429)
    assert response.headers["Retry-After"] == "3"


def test_latency_fault_over_http_delays_the_answer(client: flask.testing.FlaskClient) -> None:
    """A latency-only fault slows the request by about its ``latency_ms``."""
    client.post("/_sandbox/faults", json={"status": 200, "latency_ms": 100})
    started = time.monotonic()
    assert client.get("/api/widgets").status_code == 200
    assert time.monotonic() - started >= 0.09


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"status": 42}', "'status'"),
        ('{"path": "[z-a]"}', "regular expression"),
        ('{"probability": 2}', "'probability'"),
        ('{"status": 503', "not valid JSON"),
        ("", "required"),
    ],
)
def test_bad_fault_spec_is_400_with_a_clear_message(client: flask.testing.FlaskClient, body: str, words: str) -> None:
    """An invalid fault is refused with a message naming the problem and nothing is added."""
    error = assert_error(client.post("/_sandbox/faults", data=body, content_type="application/json"), 400)
    assert words in error["message"]
    assert client.get("/_sandbox/faults").get_json() == {"faults": []}


# ---- the change feed and routing errors -------------------------------------------------------------
def test_control_blueprint_serves_the_change_feed(client: flask.testing.FlaskClient, runtime: FakeRuntime) -> None:
    """``GET /_sandbox/changes`` is part of the control plane; API writes appear with the caller identity."""
    client.post("/api/widgets", json={"name": "a", "price": "2.50"}, headers={"X-Identity": "bridge"})
    body = client.get("/_sandbox/changes").get_json()
    [change] = body["changes"]
    assert change["identity"] == "bridge" and change["after"]["price"] == "2.50"
    assert client.get("/_sandbox/changes?exclude_identity=bridge").get_json()["changes"] == []
    assert_error(client.get("/_sandbox/changes?after=first"), 400)


def test_change_feed_long_poll_wakes_on_an_api_write(app: flask.Flask, runtime: FakeRuntime) -> None:
    """A long-poll started before a write returns that write once it commits."""
    result: dict[str, Any] = {}

    def long_poll() -> None:
        result["body"] = app.test_client().get("/_sandbox/changes?after=0&wait=20").get_json()

    poller = threading.Thread(target=long_poll)
    poller.start()
    try:
        threading.Timer(0.2, lambda: runtime.add_widget("late", Decimal("1"))).start()
        body = poll_until(lambda: result.get("body"), timeout=10)
    finally:
        poller.join()
    assert [c["after"]["name"] for c in body["changes"]] == ["late"]


def test_unknown_control_path_is_404_in_the_service_shape(client: flask.testing.FlaskClient) -> None:
    """Typos under ``/_sandbox`` answer the service's JSON error, not Flask's HTML page."""
    assert_error(client.get("/_sandbox/nope"), 404)


def test_wrong_method_on_a_control_path_is_405_with_allow(client: flask.testing.FlaskClient) -> None:
    """A known control path with the wrong method is a 405 naming the allowed methods."""
    response = client.put("/_sandbox/health")
    assert_error(response, 405)
    assert response.headers["Allow"] == "GET"
    assert set(client.patch("/_sandbox/faults").headers["Allow"].split(", ")) == {"GET", "POST", "DELETE"}
