"""Tests of how the engine writes to the other side (bridge/engine.py): the requests it sends."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bridge.engine import SyncEngine
from bridge.mapping import BUILTIN_MAPS, load_maps
from bridge.pipeline import Record
from mock_sales.schema import build_model as build_sales_model
from mock_scm.schema import build_model as build_scm_model
from sandbox.clients import BatchOp
from sandbox.wellknown import INTEGRATION_IDENTITY


def _bridge_requests(sandbox: Any) -> list[dict[str, Any]]:
    return [e for e in sandbox.sales_control.journal(limit=50) if e.get("identity") == INTEGRATION_IDENTITY]


def test_a_single_write_upserts_by_alternate_key_without_reading_first(sandbox: Any) -> None:
    """A customer created (then renamed) in SCM reaches Sales as one PATCH on the account's alternate key
    (number and company) each time: no query, no $batch, and the second PATCH updates the same row."""
    sandbox.sales_control.clear_journal()
    sandbox.create_customer("ENG-001", "Engine One")
    created = _bridge_requests(sandbox)
    assert [e["method"] for e in created] == ["PATCH"]
    assert "accounts(accountnumber='ENG-001',_msdyn_company_value=" in created[0]["path"] + created[0].get("query", "")
    sandbox.sales_control.clear_journal()
    sandbox.rename_customer("ENG-001", "Engine Renamed")
    assert [e["method"] for e in _bridge_requests(sandbox)] == ["PATCH"]
    company = sandbox.runtime.engine.company_id("usmf")
    rows = sandbox.sales.query("accounts", filter=f"accountnumber eq 'ENG-001' and _msdyn_company_value eq {company}")
    assert [r["name"] for r in rows] == ["Engine Renamed"]


def test_a_refused_single_write_rolls_the_source_back(sandbox: Any) -> None:
    """The PATCH failing in Sales fails the SCM write (both or neither), with Sales' message."""
    sandbox.sales_control.fail_bridge_writes(400, times=1, message="No thanks")
    try:
        sandbox.create_customer("ENG-002", "Engine Two")
    except Exception as exc:  # noqa: BLE001 - the client raises ServiceError
        assert "No thanks" in str(exc)
    else:
        raise AssertionError("the SCM write should have failed")
    assert sandbox.scm.query("CustomersV3", filter="CustomerAccount eq 'ENG-002'") == []
    assert sandbox.account("ENG-002") is None


def test_send_answers_like_a_batch_part(sandbox: Any) -> None:
    """ODataClient.send: a plain request whose answer (ok or not) comes back as a BatchResult."""
    ok = sandbox.sales.send(BatchOp.post("contacts", {"lastname": "Sent"}, content_id="7"))
    assert ok.ok and ok.status == 204 and ok.content_id == "7" and ok.entity_id
    bad = sandbox.sales.send(BatchOp.post("contacts", {"nosuchcolumn": 1}))
    assert not bad.ok and bad.status == 400
    assert "nosuchcolumn" in bad.error().message


class _ExistingRows:
    """Answers the engine's "does it exist?" queries from a set of entity sets; records every query."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.queries: list[tuple[str, str | None]] = []

    def query(self, entity_set: str, *, filter: str | None = None, **_: Any) -> list[dict[str, Any]]:
        self.queries.append((entity_set, filter))
        return [{"id": 1}] if entity_set in self.existing else []


def test_polymorphic_lookups_pick_the_first_alternative_that_exists_in_sales() -> None:
    """Only the fields with alternatives are looked at: a quotation's customer is tried as an account, then as
    a contact (the engine marks the one found); a customer account has no such field and reads nothing."""
    sales_model = build_sales_model()
    maps = {m.id: m for m in load_maps([BUILTIN_MAPS], build_scm_model(), sales_model)}
    sales = _ExistingRows({"contacts"})
    engine = SyncEngine(list(maps.values()), sales, None, sales_model, build_scm_model(), None)  # type: ignore[arg-type]
    quote = Record(
        maps["quotation-headers"],
        "to_sales",
        {"RequestingCustomerAccountNumber": "US-027"},
        company_id="c1",
        compiled_map=engine.compiled(maps["quotation-headers"]),
    )
    engine._choose_polymorphic(quote)
    assert quote.target == {"@sandbox.lookup.RequestingCustomerAccountNumber": 1}
    assert sales.queries == [
        ("accounts", "accountnumber eq 'US-027' and _msdyn_company_value eq c1"),
        ("contacts", "msdyn_contactpersonid eq 'US-027' and _msdyn_company_value eq c1"),
    ]
    sales.queries.clear()
    account = Record(maps["customers-accounts"], "to_sales", {"CustomerAccount": "US-1", "InvoiceAccount": "US-2"})
    engine._choose_polymorphic(account)
    assert account.target == {} and sales.queries == []


def test_an_engine_compiles_the_maps_it_is_given_and_refuses_maps_it_does_not_hold() -> None:
    """The engine compiles its maps when it gets them and hands out that one compiled form; a changed map (a
    new TableMap with the same id) is not its map until the engine is given it, which compiles it anew."""
    sales_model, scm_model = build_sales_model(), build_scm_model()
    maps = load_maps([BUILTIN_MAPS], scm_model, sales_model)
    engine = SyncEngine(maps, None, None, sales_model, scm_model, None)  # type: ignore[arg-type]
    accounts = engine.by_id["customers-accounts"]
    compiled = engine.compiled(accounts)
    assert compiled.map is accounts and engine.compiled(accounts) is compiled
    assert compiled.scm_filter is not None and not compiled.scm_filter({"PartyType": "Person"})
    changed = dataclasses.replace(accounts, scm_filter="PartyType eq 'Person'")
    with pytest.raises(ValueError, match="not one of this engine's maps"):
        engine.compiled(changed)
    engine.maps = [changed if m is accounts else m for m in maps]
    recompiled = engine.compiled(changed)
    assert engine.by_id["customers-accounts"] is changed and recompiled.map is changed
    assert recompiled.scm_filter is not None and recompiled.scm_filter({"PartyType": "Person"})
    with pytest.raises(ValueError, match="not one of this engine's maps"):
        engine.compiled(accounts)


def test_wire_row_keeps_the_entity_columns_and_writes_enums_and_decimals_as_the_wire_does() -> None:
    """An image in the service's wire format: unknown columns dropped, F&O enums as member names (only
    with ``enums_as_names``; a number no member has stays a number), decimals as numbers whether stored as
    text or held as Decimal, text that is not a number left alone, key order kept."""
    from decimal import Decimal

    from bridge.engine import wire_row

    customers = build_scm_model().entities["CustomerV3"]
    blocked = customers.properties["OnHoldStatus"].enum
    number = blocked.members["No"]
    raw = {
        "CustomerAccount": "C-1",
        "not a column": 1,
        "OnHoldStatus": number,
        "CreditLimit": "12.50",
        "CustomerGroupId": "10",
        "NameAlias": None,
    }
    assert wire_row(customers, raw, enums_as_names=True) == {
        "CustomerAccount": "C-1",
        "OnHoldStatus": "No",
        "CreditLimit": 12.5,
        "CustomerGroupId": "10",
        "NameAlias": None,
    }
    assert list(wire_row(customers, raw, enums_as_names=True)) == [k for k in raw if k != "not a column"]
    assert wire_row(customers, raw, enums_as_names=False)["OnHoldStatus"] == number
    odd = {"OnHoldStatus": 987, "CreditLimit": "n/a", "CustomerAccount": Decimal("7.25")}
    assert wire_row(customers, odd, enums_as_names=True) == {
        "OnHoldStatus": 987,
        "CreditLimit": "n/a",
        "CustomerAccount": 7.25,
    }
    assert wire_row(customers, {"CreditLimit": Decimal("3.5")}, enums_as_names=True) == {"CreditLimit": 3.5}
