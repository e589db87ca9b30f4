"""Tests of the initial sync's own helpers (bridge/initial.py): row keys and the payloads it sends to Sales.
The whole initial sync against the services is in test_lifecycle.py and test_maps.py."""

from __future__ import annotations

import decimal
import json
import threading
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bridge.compiled import compile_map
from bridge.initial import InitialSync, InitialSyncReport, _Creates, _key_text, _Side
from bridge.mapping import BUILTIN_MAPS, TableMap, load_maps
from bridge.pipeline import Record
from mock_sales.schema import build_model as build_sales_model
from mock_scm.schema import build_model as build_scm_model
from sandbox.clients import ServiceError


@pytest.fixture(scope="module")
def maps() -> dict[str, TableMap]:
    return {m.id: m for m in load_maps([BUILTIN_MAPS], build_scm_model(), build_sales_model())}


# ---- row keys ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("company", "key"),
    [
        ("usmf", {"customeraccount": "US-001"}),
        (None, {"customeraccount": "US-001"}),
        ("usmf", {"salesquotationnumber": "Q-1", "linecreationsequencenumber": "2"}),
        ("usmf", {"b": "2", "a": "1", "C": "3"}),  # written sorted, as sort_keys does
        ("dämf", {"name": 'Römer "Zahn" GmbH & Co. KG\\\n\t\x01€😀'}),  # escaped as ensure_ascii does
        ("usmf", {}),
        ("usmf", {"linecreationsequencenumber": 2}),  # not strings: the encoder writes them
        ("usmf", {"amount": 2.5, "blocked": True, "note": None, "price": decimal.Decimal("1.50")}),
        (3, {"a": "1"}),
    ],
)
def test_row_keys_are_exactly_what_json_dumps_writes(company: Any, key: dict[str, Any]) -> None:
    """Rows of both sides match on this text and an error's key is read back from it, so it must be
    ``json.dumps(..., sort_keys=True, default=str)`` to the character, whichever way it is written."""
    expected = json.dumps({"company": company, "key": key}, sort_keys=True, default=str)
    assert _key_text(company, key) == expected


# ---- payloads to Sales ---------------------------------------------------------------------------------------------


class _Sales:
    """Takes CreateMultiple calls and $batch requests; every row succeeds."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.batched: list[Any] = []

    def action(self, name: str, body: dict[str, Any], *, entity_set: str) -> None:
        assert name == "CreateMultiple"
        self.created.extend(body["Targets"])

    def batch(self, ops: list[Any], **_: Any) -> list[Any]:
        self.batched.extend(ops)
        return [SimpleNamespace(content_id=op.content_id, ok=True) for op in ops]


def _write(table_map: TableMap, targets: list[dict[str, Any]], existing: dict[str, str]) -> tuple[_Sales, list[Record]]:
    sales = _Sales()
    state = SimpleNamespace(count=lambda *a, **k: None)
    sync = InitialSync(SimpleNamespace(sales=sales), state)  # type: ignore[arg-type]
    records = [Record(table_map, "to_sales", {}, target=target) for target in targets]
    side = _Side(ids=existing)
    written = sync._write_sales(
        table_map, [(f"k{i}", r) for i, r in enumerate(records)], side, InitialSyncReport(table_map.id, 1)
    )
    assert written == len(targets)
    return sales, records


def test_payloads_without_polymorphic_lookups_are_sent_as_the_pipeline_made_them(maps: dict[str, TableMap]) -> None:
    """A map without polymorphic lookups cannot carry the engine's hints: new rows go out in CreateMultiple and
    existing ones as PATCHes, each with the transformed payload itself (no copy per row)."""
    targets = [{"accountnumber": "US-1", "name": "One"}, {"accountnumber": "US-2", "name": "Two"}]
    sales, records = _write(maps["customers-accounts"], targets, {"k1": "0000-2"})
    assert sales.created == [targets[0]] and sales.created[0] is records[0].target
    assert [(op.method, op.url, op.body) for op in sales.batched] == [("PATCH", "accounts(0000-2)", targets[1])]


def test_hints_a_polymorphic_lookup_left_unused_never_reach_sales(maps: dict[str, TableMap]) -> None:
    """The engine's pick of a polymorphic alternative ("@sandbox.lookup.<field>") stays behind when the lookup
    was not bound; the payload sent leaves it out, and the record keeps it."""
    hint = "@sandbox.lookup.RequestingCustomerAccountNumber"
    targets = [{"quotenumber": "Q-1", hint: 1}, {"quotenumber": "Q-2", hint: 0, "name": "Two"}]
    sales, records = _write(maps["quotation-headers"], targets, {"k1": "0000-2"})
    assert sales.created == [{"quotenumber": "Q-1"}]
    assert [op.body for op in sales.batched] == [{"quotenumber": "Q-2", "name": "Two"}]
    assert hint in records[0].target


# ---- creates sent as they come -----------------------------------------------------------------------------------


class _SlowSales(_Sales):
    """Records which thread sent each chunk; refuses chunks holding a target named "bad"; may fail outright."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.fail_with = fail_with

    def action(self, name: str, body: dict[str, Any], *, entity_set: str) -> None:
        self.threads.append(threading.current_thread().name)
        if self.fail_with is not None:
            raise self.fail_with
        if any(target.get("name") == "bad" for target in body["Targets"]):
            request = httpx.Request("POST", "http://sales.sandbox/api/data/v9.2/accounts/CreateMultiple")
            raise ServiceError(
                400,
                "0x80040237",
                "A record with matching key values already exists.",
                {},
                httpx.Response(400, request=request),
            )
        super().action(name, body, entity_set=entity_set)


def _creates(sales: _Sales, table_map: TableMap, *, background: bool) -> tuple[_Creates, InitialSyncReport]:
    counted: list[int] = []
    state = SimpleNamespace(count=lambda map_id, synced=0, **_: counted.append(synced))
    sync = InitialSync(SimpleNamespace(sales=sales), state)  # type: ignore[arg-type]
    report = InitialSyncReport(table_map.id, 1)
    return _Creates(sync, table_map, "accounts", report, background=background), report


@pytest.mark.parametrize("background", [False, True])
def test_creates_go_out_in_chunks_in_order_and_a_refused_chunk_row_by_row(
    maps: dict[str, TableMap], background: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of CREATE_CHUNK in the order added (from a thread of their own with ``background``); a chunk Sales
    refuses goes again as a $batch at the end, where only its bad row fails."""
    import bridge.initial as module

    monkeypatch.setattr(module, "CREATE_CHUNK", 3)
    sales = _SlowSales()
    creates, report = _creates(sales, maps["customers-accounts"], background=background)
    names = ["a", "b", "c", "d", "bad", "f", "g"]
    for index, name in enumerate(names):
        creates.add(f"k{index}", {"name": name})
    assert creates.finish() == len(names)  # the $batch stand-in takes every row, the bad one included
    assert [t["name"] for t in sales.created] == ["a", "b", "c", "g"]
    assert [op.body["name"] for op in sales.batched] == ["d", "bad", "f"]
    assert (set(sales.threads) == {"initial-sync-customers-accounts"}) is background
    assert report.errors == []


def test_a_sender_that_fails_stops_the_initial_sync_in_the_callers_thread(
    maps: dict[str, TableMap], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error other than Sales' answer (the connection dropped) ends the sync where the caller is; an abort
    sends nothing more."""
    import bridge.initial as module

    monkeypatch.setattr(module, "CREATE_CHUNK", 2)
    creates, _ = _creates(
        _SlowSales(fail_with=ConnectionError("reset by peer")), maps["customers-accounts"], background=True
    )
    with pytest.raises(ConnectionError):
        for index in range(20):
            creates.add(f"k{index}", {"name": f"n{index}"})
        creates.finish()
    sales = _SlowSales()
    aborted, _ = _creates(sales, maps["customers-accounts"], background=True)
    aborted.add("k1", {"name": "one"})
    aborted.abort()
    assert sales.created == [] and not aborted.thread.is_alive()  # type: ignore[union-attr]


def test_a_second_scm_row_with_the_same_key_is_reported_and_the_first_kept(
    maps: dict[str, TableMap], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first row of a key may already be written when the second is read: the second is left out and
    reported, and ``take`` sees each key once."""
    import bridge.initial as module

    table_map = maps["customers-accounts"]
    rows = [
        {"dataAreaId": "usmf", "CustomerAccount": account, "OrganizationName": name}
        for account, name in (("A-1", "first"), ("B-1", "other"), ("A-1", "second"))
    ]
    engine = SimpleNamespace(
        scm=SimpleNamespace(iter_pages=lambda *a, **k: iter([rows[:2], rows[2:]])),
        related_getter=lambda *a, **k: None,
        sales=None,
        sales_model=None,
        company_id=lambda code: code,
        _choose_polymorphic=lambda record: None,
        compiled=lambda table_map: compile_map(table_map, None),
    )
    monkeypatch.setattr(module, "transform", lambda record: record)
    monkeypatch.setattr(
        module, "_key", lambda m, record, d: _key_text(record.company, {"a": record.source["CustomerAccount"]})
    )
    sync = InitialSync(engine, SimpleNamespace())  # type: ignore[arg-type]
    sync.progress[table_map.id] = {}
    report = InitialSyncReport(table_map.id, 1)
    taken: list[str] = []
    side = sync._read_scm(table_map, lambda key, record: taken.append(record.source["OrganizationName"]), report)
    assert taken == ["first", "other"]
    assert [r.source["OrganizationName"] for r in side.payloads.values()] == ["first", "other"]
    assert [(e["key"], e["direction"]) for e in report.errors] == [
        ({"company": "usmf", "key": {"a": "A-1"}}, "to_sales")
    ]
