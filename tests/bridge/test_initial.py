"""Tests of the initial sync's own helpers (bridge/initial.py): row keys and the payloads it sends to Sales.
The whole initial sync against the services is in test_lifecycle.py and test_maps.py."""

from __future__ import annotations

import decimal
import json
from types import SimpleNamespace
from typing import Any

import pytest

from bridge.initial import InitialSync, InitialSyncReport, _key_text, _Side
from bridge.mapping import BUILTIN_MAPS, TableMap, load_maps
from bridge.pipeline import Record
from mock_sales.schema import build_model as build_sales_model
from mock_scm.schema import build_model as build_scm_model


@pytest.fixture(scope="module")
def maps() -> dict[str, TableMap]:
    return {m.id: m for m in load_maps([BUILTIN_MAPS], build_scm_model(), build_sales_model())}


# ---- row keys ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("company", "key"), [
    ("usmf", {"customeraccount": "US-001"}),
    (None, {"customeraccount": "US-001"}),
    ("usmf", {"salesquotationnumber": "Q-1", "linecreationsequencenumber": "2"}),
    ("usmf", {"b": "2", "a": "1", "C": "3"}),  # written sorted, as sort_keys does
    ("dämf", {"name": "Römer \"Zahn\" GmbH & Co. KG\\\n\t\x01€😀"}),  # escaped as ensure_ascii does
    ("usmf", {}),
    ("usmf", {"linecreationsequencenumber": 2}),  # not strings: the encoder writes them
    ("usmf", {"amount": 2.5, "blocked": True, "note": None, "price": decimal.Decimal("1.50")}),
    (3, {"a": "1"}),
])
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


def _write(table_map: TableMap, targets: list[dict[str, Any]],
           existing: dict[str, str]) -> tuple[_Sales, list[Record]]:
    sales = _Sales()
    state = SimpleNamespace(count=lambda *a, **k: None)
    sync = InitialSync(SimpleNamespace(sales=sales), state)  # type: ignore[arg-type]
    records = [Record(table_map, "to_sales", {}, target=target) for target in targets]
    side = _Side(ids=existing)
    written = sync._write_sales(table_map, [(f"k{i}", r) for i, r in enumerate(records)], side,
                                InitialSyncReport(table_map.id, 1))
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
