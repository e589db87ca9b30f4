"""Bulk writes of mock Sales over HTTP: CreateMultiple and UpsertMultiple in bulk, the per-request cache of
``@odata.bind`` references and the per-transaction memo of the rules' reference look-ups.

Every test runs the same requests twice, on two fresh seeded services: once as the code runs, once with the
bulk path and the bind cache switched off (row by row, every reference resolved again, as before they
existed). Responses, captured changes (with their row versions) and live-sync payloads must be the same,
new ids and timestamps aside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sandbox.odata.service import ODataService
from sandbox.odata.store import Store
from tests.golden import Golden

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
CREATE_MULTIPLE = f"{ROOT}/accounts/Microsoft.Dynamics.CRM.CreateMultiple"
UPSERT_MULTIPLE = f"{ROOT}/accounts/Microsoft.Dynamics.CRM.UpsertMultiple"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Dataverse auto numbers end in a suffix derived from the row's (random) id
_AUTO_NUMBER = re.compile(r"\b(QUO|ORD|INV)-(\d{5})-[A-Z0-9]{6}\b")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


@contextmanager
def row_by_row() -> Iterator[None]:
    """The write path without bulk creates, without the bind cache and without UpsertMultiple's up-front
    existence query: each target, each reference and each key alone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "can_insert_many", lambda self, name: False)
        patch.setattr(
            ODataService,
            "row_exists_many",
            lambda self, entity, keys, state: lambda key: self.row_exists(entity, key, state),
        )
        patch.setattr(ODataService, "_bound_row", lambda self, value, state: self.resolve_reference(value, state))
        yield


@contextmanager
def captured_statements(app: Any) -> Iterator[list[str]]:
    """The SQL statements ``app``'s database runs inside the block."""
    import sqlalchemy as sa

    statements: list[str] = []
    engine = app.extensions["sandbox"].db.engine
    listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


class Outcome:
    """What one run of a scenario showed: responses, changes and live-sync payloads, ids normalized."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self.payloads: list[dict[str, Any]] = []
        self.responses: list[tuple[int, Any]] = []
        runtime = app.extensions["sandbox"]
        runtime.set_live_sync(self.payloads.append)
        self.start = runtime.outbox.latest_seq(runtime.db)

    def company_id(self, code: str = "usmf") -> str:
        rows = self.client.get(f"{ROOT}/cdm_companies?$select=cdm_companyid,cdm_companycode").get_json()["value"]
        return next(r["cdm_companyid"] for r in rows if r["cdm_companycode"] == code)

    def send(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.client.open(url, method=method, headers=JSON, **kwargs)
        body: Any = response.get_data(as_text=True)
        if response.is_json:
            body = response.get_json()
        self.responses.append((response.status_code, body))
        return response

    def changes(self) -> list[dict[str, Any]]:
        page = self.client.get(f"/_sandbox/changes?after={self.start}&limit=5000").get_json()
        return [
            {k: v for k, v in change.items() if k not in ("seq", "created_at", "transaction_id")}
            for change in page["changes"]
        ]

    def normalized(self) -> str:
        """Everything observed, as text with new ids numbered by first appearance and timestamps blanked."""
        text = json.dumps(
            {"responses": self.responses, "changes": self.changes(), "live": self.payloads}, sort_keys=True, default=str
        )
        text = _AUTO_NUMBER.sub(r"\1-\2-<suffix>", _TIMESTAMP.sub("<time>", text))
        seen: dict[str, str] = {}
        return _GUID.sub(lambda m: seen.setdefault(m.group(0), f"<id{len(seen)}>"), text)


@pytest.fixture
def both_ways(golden: Golden) -> Iterator[Callable[[Callable[[Outcome], None]], Outcome]]:
    """Run a scenario on two fresh seeded services (copies of the golden one), in bulk and row by row, assert
    they showed the same, and give the bulk run's outcome (its service stays up until the test ends)."""
    apps: list[Any] = []

    def run(scenario: Callable[[Outcome], None]) -> Outcome:
        seen = []
        for bulk in (True, False):
            app = golden.service_app("sales")
            apps.append(app)
            outcome = Outcome(app)
            if bulk:
                scenario(outcome)
            else:
                with row_by_row():
                    scenario(outcome)
            seen.append((outcome, outcome.normalized()))
        (bulk_outcome, bulk_text), (_, single_text) = seen
        assert bulk_text == single_text
        return bulk_outcome

    yield run
    for app in apps:
        app.extensions["sandbox"].db.dispose()


def account_target(number: str, company_id: str, **extra: Any) -> dict[str, Any]:
    """An account Target as the bridge's initial sync sends it: four lookups bound by alternate key."""
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.account",
        "name": f"Bulk {number}",
        "accountnumber": number,
        "revenue": 1000,
        "customertypecode": 3,
        "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')",
        "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
        "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups(msdyn_groupid='10',_msdyn_company_value={company_id})",
        "msdyn_paymentterm@odata.bind": f"/msdyn_paymentterms(msdyn_name='Net30',_msdyn_company_value={company_id})",
        **extra,
    }


def account_count(outcome: Outcome, prefix: str) -> int:
    response = outcome.client.get(f"{ROOT}/accounts?$filter=startswith(accountnumber,'{prefix}')&$count=true")
    return response.get_json()["@odata.count"]


# ---- CreateMultiple --------------------------------------------------------------------------------------
def test_create_multiple_in_bulk_matches_row_by_row(both_ways) -> None:
    """300 accounts with four binds each: same ids answer, same changes and versions, one live-sync call."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        response = o.send(
            "POST", CREATE_MULTIPLE, json={"Targets": [account_target(f"BULK-{i:03d}", company) for i in range(300)]}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert len(response.get_json()["Ids"]) == 300
        # the rows as stored, with their versions (etags), are part of what both ways must show alike
        o.send("GET", f"{ROOT}/accounts?$filter=startswith(accountnumber,'BULK-')&$orderby=accountnumber")

    bulk = both_ways(scenario)
    changes = bulk.changes()
    assert [c["operation"] for c in changes] == ["create"] * 300
    assert [c["after"]["accountnumber"] for c in changes] == [f"BULK-{i:03d}" for i in range(300)]
    created = bulk.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'BULK-299'").get_json()["value"][0]
    assert created["_msdyn_company_value"] == bulk.company_id() and created["exchangerate"] == 1.0
    assert created["_ownerid_value"] and created["statecode"] == 0 and created["revenue_base"] == 1000.0
    assert len(bulk.payloads) == 1 and len(bulk.payloads[0]["changes"]) == 300


def test_create_multiple_runs_a_few_statements_per_chunk_not_per_row(sales_app) -> None:
    """300 Targets with four binds each: each reference, the owner and the exchange rate are read once,
    the keys are checked with one query, and rows and changes are inserted with one statement each."""
    outcome = Outcome(sales_app)
    company = outcome.company_id()
    with captured_statements(sales_app) as statements:
        response = outcome.send(
            "POST", CREATE_MULTIPLE, json={"Targets": [account_target(f"FEW-{i:03d}", company) for i in range(300)]}
        )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(statements) < 40, statements
    assert sum(s.startswith("INSERT INTO accounts") for s in statements) == 1


def test_upsert_multiple_asks_whether_rows_exist_once_not_per_target(sales_app) -> None:
    """300 Targets by alternate key, half of them existing: one query finds which exist (not one per Target),
    the existing rows are updated and the new ones created."""
    outcome = Outcome(sales_app)
    company = outcome.company_id()
    outcome.send(
        "POST", CREATE_MULTIPLE, json={"Targets": [account_target(f"ASK-{i:03d}", company) for i in range(0, 300, 2)]}
    )
    with captured_statements(sales_app) as statements:
        response = outcome.send(
            "POST",
            UPSERT_MULTIPLE,
            json={
                "Targets": [
                    upsert_target(f"ASK-{i:03d}", company, name=f"Asked {i}")
                    for i in [*range(0, 300, 2), *range(1, 300, 2)]
                ]
            },
        )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["RecordCreated"] for r in response.get_json()["Results"]] == [False] * 150 + [True] * 150
    key_reads = [s for s in statements if s.startswith("SELECT") and "FROM accounts" in s and "accountnumber" in s]
    # each update reads its row once to change it; the existence of all 300 is one read, not one each
    assert len(key_reads) < 170, len(key_reads)
    assert account_count(outcome, "ASK-") == 300


def test_upsert_multiple_keys_changed_or_alike_in_case_match_row_by_row(both_ways) -> None:
    """Whether a row exists is read for every Target before any is written: a Target whose key an earlier
    Target moved away creates a row, one naming a key in other case than stored does what row by row does,
    and one naming a key an earlier run created updates it."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        existing = o.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'US-002'&$select=accountid").get_json()
        response = o.send(
            "POST",
            UPSERT_MULTIPLE,
            json={
                "Targets": [
                    upsert_target("CASE-A", company),
                    {"@odata.id": f"accounts({existing['value'][0]['accountid']})", "accountnumber": "MOVED-2"},
                    upsert_target("US-002", company, name="New under the old number"),
                    upsert_target("case-a", company, name="Lower case"),
                    upsert_target("CASE-A", company, name="Again"),
                ]
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        o.send(
            "GET",
            f"{ROOT}/accounts?$filter=startswith(accountnumber,'CASE-') or accountnumber eq 'US-002'"
            " or accountnumber eq 'MOVED-2'&$orderby=accountnumber,name&$select=accountnumber,name",
        )

    bulk = both_ways(scenario)
    assert [r["RecordCreated"] for r in bulk.responses[0][1]["Results"]][:3] == [True, False, True]
    assert any(row["accountnumber"] == "MOVED-2" for row in bulk.responses[1][1]["value"])


def test_create_multiple_rows_get_consecutive_versions_in_target_order(both_ways) -> None:
    """Row versions follow the Targets' order, as when the rows are inserted one at a time."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        o.send("POST", CREATE_MULTIPLE, json={"Targets": [account_target(f"VER-{i}", company) for i in range(5)]})

    bulk = both_ways(scenario)
    rows = bulk.client.get(
        f"{ROOT}/accounts?$filter=startswith(accountnumber,'VER-')&$orderby=accountnumber&$select=accountnumber"
    ).get_json()["value"]
    versions = [int(row["@odata.etag"].strip('W/"')) for row in rows]
    assert versions == list(range(versions[0], versions[0] + 5))


def test_create_multiple_with_a_duplicate_key_inside_the_chunk_fails_whole_and_leaves_nothing(both_ways) -> None:
    """Two Targets with one accountnumber: the row-by-row error (409), no row, no change, no live sync."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"DUP-{i}", company) for i in range(10)]
        targets[7]["accountnumber"] = "DUP-2"
        response = o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})
        assert response.status_code in (409, 412), response.get_data(as_text=True)

    bulk = both_ways(scenario)
    error = bulk.responses[-1][1]["error"]
    assert error["code"] == "0x80040237" and "already exists" in error["message"]
    assert account_count(bulk, "DUP-") == 0 and bulk.changes() == [] and bulk.payloads == []


def test_create_multiple_with_a_key_of_an_existing_row_fails_whole_and_leaves_nothing(both_ways) -> None:
    """A Target repeating a seeded account's number and company: the row-by-row error, nothing written."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"EXIST-{i}", company) for i in range(10)]
        targets[4]["accountnumber"] = "US-001"
        response = o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})
        assert response.status_code >= 400

    bulk = both_ways(scenario)
    assert bulk.responses[-1][1]["error"]["code"] == "0x80040237"
    assert account_count(bulk, "EXIST-") == 0 and bulk.changes() == []


def test_create_multiple_with_a_bad_bind_in_the_300th_target_fails_whole(both_ways) -> None:
    """A reference to a company that does not exist in Target 300: the same 404, nothing written."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"BIND-{i:03d}", company) for i in range(400)]
        targets[299]["msdyn_company@odata.bind"] = "/cdm_companies(cdm_companycode='nope')"
        response = o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})
        assert response.status_code == 404, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert "nope" in bulk.responses[-1][1]["error"]["message"]
    assert account_count(bulk, "BIND-") == 0 and bulk.changes() == []


def test_create_multiple_with_a_value_too_long_for_its_column_matches_row_by_row(both_ways) -> None:
    """An accountnumber longer than its 20 characters in Target 5: the row-by-row 400, nothing written."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"LONG-{i}", company) for i in range(6)]
        targets[4]["accountnumber"] = "L" * 30
        response = o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})
        assert response.status_code == 400, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert account_count(bulk, "L") == 0


def test_create_multiple_error_order_follows_the_targets(both_ways) -> None:
    """An early duplicate and a later bad bind: the duplicate is reported, as row by row."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"ORD-{i}", company) for i in range(20)]
        targets[3]["accountnumber"] = "US-001"
        targets[15]["transactioncurrencyid@odata.bind"] = "/transactioncurrencies(isocurrencycode='XXX')"
        o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})

    bulk = both_ways(scenario)
    assert bulk.responses[-1][1]["error"]["code"] == "0x80040237"


def test_create_multiple_with_an_unknown_property_fails_like_row_by_row(both_ways) -> None:
    """An undeclared property in one Target answers the row-by-row 400."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"PROP-{i}", company) for i in range(5)]
        targets[2]["nosuchcolumn"] = 1
        o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})

    bulk = both_ways(scenario)
    assert bulk.responses[-1][0] == 400 and account_count(bulk, "PROP-") == 0


def test_create_multiple_binding_to_a_row_an_earlier_target_creates_succeeds(both_ways) -> None:
    """Target 5 binds its parent to Target 0 by alternate key: found, as when created one by one."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = [account_target(f"PAR-{i}", company) for i in range(8)]
        targets[5]["parentaccountid@odata.bind"] = f"/accounts(accountnumber='PAR-0',_msdyn_company_value={company})"
        response = o.send("POST", CREATE_MULTIPLE, json={"Targets": targets})
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    child = bulk.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'PAR-5'").get_json()["value"][0]
    parent = bulk.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'PAR-0'").get_json()["value"][0]
    assert child["_parentaccountid_value"] == parent["accountid"]


def test_create_multiple_of_contacts_goes_row_by_row_and_matches(both_ways) -> None:
    """Contacts (whose company may come from a parent contact) are not created in bulk; same outcome."""

    def scenario(o: Outcome) -> None:
        response = o.send(
            "POST",
            f"{ROOT}/contacts/Microsoft.Dynamics.CRM.CreateMultiple",
            json={"Targets": [{"firstname": "Bulk", "lastname": f"Contact {i}"} for i in range(4)]},
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    both_ways(scenario)


# ---- UpsertMultiple ---------------------------------------------------------------------------------------
def test_upsert_multiple_that_only_creates_matches_row_by_row(both_ways) -> None:
    """Every Target names a missing alternate key: all created (in bulk), each RecordCreated true."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        targets = []
        for i in range(6):
            target = account_target(f"UPS-{i}", company)
            del target["accountnumber"]
            target["@odata.id"] = f"accounts(accountnumber='UPS-{i}',_msdyn_company_value={company})"
            targets.append(target)
        response = o.send("POST", UPSERT_MULTIPLE, json={"Targets": targets})
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert [r["RecordCreated"] for r in bulk.responses[-1][1]["Results"]] == [True] * 6
    assert account_count(bulk, "UPS-") == 6


def test_upsert_multiple_naming_one_new_key_twice_creates_then_updates(both_ways) -> None:
    """The second Target with the same missing key updates the row the first created, as row by row."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        key = f"accounts(accountnumber='TWICE',_msdyn_company_value={company})"
        first = account_target("X", company)
        del first["accountnumber"]
        response = o.send(
            "POST",
            UPSERT_MULTIPLE,
            json={
                "Targets": [
                    {**first, "@odata.id": key, "name": "First"},
                    {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": key, "name": "Second"},
                ]
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert [r["RecordCreated"] for r in bulk.responses[-1][1]["Results"]] == [True, False]
    row = bulk.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'TWICE'").get_json()["value"]
    assert [r["name"] for r in row] == ["Second"]


def test_upsert_multiple_target_whose_body_contradicts_its_key_matches_row_by_row(both_ways) -> None:
    """Target 2 is looked up by a number Target 1 creates, while its body sets another: row by row it finds
    (and updates) Target 1's row, so the bulk path must not create two rows."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        created = account_target("CONTRA-K", company)
        contradicting = account_target("CONTRA-Z", company)
        del contradicting["accountnumber"]
        contradicting["@odata.id"] = f"accounts(accountnumber='CONTRA-K',_msdyn_company_value={company})"
        contradicting["accountnumber"] = "CONTRA-Z"
        response = o.send("POST", UPSERT_MULTIPLE, json={"Targets": [created, contradicting]})
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert [r["RecordCreated"] for r in bulk.responses[-1][1]["Results"]] == [True, False]
    assert account_count(bulk, "CONTRA-") == 1


def upsert_target(number: str, company_id: str, **extra: Any) -> dict[str, Any]:
    """An UpsertMultiple Target addressed by (accountnumber, company)."""
    target = account_target(number, company_id, **extra)
    del target["accountnumber"]
    target["@odata.id"] = f"accounts(accountnumber='{number}',_msdyn_company_value={company_id})"
    return target


def test_upsert_multiple_mixing_creates_and_updates_matches_row_by_row(both_ways) -> None:
    """Runs of creates between updates (the bridge's async drainer batches neighbouring upserts): each run
    is created in bulk just before the next update; a key repeated later in the call is an update."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        response = o.send(
            "POST",
            UPSERT_MULTIPLE,
            json={
                "Targets": [
                    upsert_target("MIX-A", company),
                    upsert_target("MIX-B", company),
                    upsert_target("US-001", company, name="Renamed once"),
                    upsert_target("MIX-C", company),
                    upsert_target("MIX-D", company),
                    upsert_target("MIX-B", company, name="B again"),
                    upsert_target("MIX-E", company),
                    upsert_target("US-001", company, name="Renamed twice"),
                ]
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        o.send(
            "GET",
            f"{ROOT}/accounts?$filter=startswith(accountnumber,'MIX-') or accountnumber eq 'US-001'"
            "&$orderby=accountnumber&$select=accountnumber,name",
        )

    bulk = both_ways(scenario)
    assert [r["RecordCreated"] for r in bulk.responses[0][1]["Results"]] == [
        True,
        True,
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    names = {row["accountnumber"]: row["name"] for row in bulk.responses[1][1]["value"]}
    assert names["MIX-B"] == "B again" and names["US-001"] == "Renamed twice" and len(names) == 6


def test_upsert_multiple_errors_come_in_target_order(both_ways) -> None:
    """A duplicate created in a run, then a Target of the wrong type: the duplicate is reported; a wrong
    type after a clean run is reported too; nothing is written either way."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        duplicate = account_target("DUP-RUN", company)
        duplicate["accountnumber"] = "US-001"
        wrong_type = {**upsert_target("TYPE-X", company), "@odata.type": "Microsoft.Dynamics.CRM.contact"}
        o.send("POST", UPSERT_MULTIPLE, json={"Targets": [upsert_target("RUN-A", company), duplicate, wrong_type]})
        o.send(
            "POST",
            UPSERT_MULTIPLE,
            json={"Targets": [upsert_target("RUN-B", company), upsert_target("RUN-C", company), wrong_type]},
        )

    bulk = both_ways(scenario)
    assert bulk.responses[0][1]["error"]["code"] == "0x80040237"
    assert "contact" in bulk.responses[1][1]["error"]["message"]
    assert account_count(bulk, "RUN-") == 0


def test_upsert_multiple_bind_after_an_update_changed_the_key_is_looked_up_again(both_ways) -> None:
    """A reference resolved earlier in the request is not reused once its row's key changed: 404."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        rows = o.client.get(
            f"{ROOT}/accounts?$filter=_msdyn_company_value eq {company} and accountnumber ne null"
            "&$orderby=accountnumber&$select=accountid,accountnumber&$top=3"
        ).get_json()["value"]
        first, second, third = rows
        moved = f"/accounts(accountnumber='{first['accountnumber']}',_msdyn_company_value={company})"
        response = o.send(
            "POST",
            UPSERT_MULTIPLE,
            json={
                "Targets": [
                    {"@odata.id": f"accounts({second['accountid']})", "parentaccountid@odata.bind": moved},
                    {"@odata.id": f"accounts({first['accountid']})", "accountnumber": "MOVED-1"},
                    {"@odata.id": f"accounts({third['accountid']})", "parentaccountid@odata.bind": moved},
                ]
            },
        )
        assert response.status_code == 404, response.get_data(as_text=True)
        assert "accountnumber=US-" in response.get_json()["error"]["message"]

    bulk = both_ways(scenario)
    assert bulk.changes() == []


# ---- $batch -------------------------------------------------------------------------------------------------
def batch_body(parts: list[tuple[str, str, dict[str, Any] | None]], *, changeset: bool = True) -> bytes:
    """A multipart $batch body; with ``changeset`` all parts form one change set (one transaction)."""
    lines = ["--batch_A"]
    if changeset:
        lines += ["Content-Type: multipart/mixed;boundary=changeset_B", ""]
    for index, (method, url, body) in enumerate(parts, 1):
        lines += ["--changeset_B"] if changeset else ([] if index == 1 else ["--batch_A"])
        lines += [
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {index}",
            "",
            f"{method} {ROOT}/{url} HTTP/1.1",
            "Content-Type: application/json",
            "",
            json.dumps(body) if body is not None else "",
            "",
        ]
    lines += ["--changeset_B--", "--batch_A--", ""] if changeset else ["--batch_A--", ""]
    return "\r\n".join(lines).encode()


def send_batch(o: Outcome, parts: list[tuple[str, str, dict[str, Any] | None]], *, changeset: bool = True) -> Any:
    return o.send(
        "POST",
        f"{ROOT}/$batch",
        data=batch_body(parts, changeset=changeset),
        content_type="multipart/mixed;boundary=batch_A",
    )


def test_batch_change_set_binds_to_a_row_an_earlier_part_created(both_ways) -> None:
    """Part 1 creates an account; part 2's CreateMultiple binds parents to it by alternate key."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        parent = account_target("BATCH-P", company)
        del parent["@odata.type"]
        bound = f"/accounts(accountnumber='BATCH-P',_msdyn_company_value={company})"
        response = send_batch(
            o,
            [
                ("POST", "accounts", parent),
                (
                    "POST",
                    "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
                    {
                        "Targets": [
                            account_target(f"BATCH-C{i}", company, **{"parentaccountid@odata.bind": bound})
                            for i in range(4)
                        ]
                    },
                ),
            ],
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    assert account_count(bulk, "BATCH-") == 5
    children = bulk.client.get(f"{ROOT}/accounts?$filter=startswith(accountnumber,'BATCH-C')").get_json()["value"]
    assert len({child["_parentaccountid_value"] for child in children}) == 1


def test_batch_bind_to_a_row_deleted_by_an_earlier_part_is_refused(both_ways) -> None:
    """Create, bind (resolved), delete, bind again in one change set: the last bind is a 404, all rolled back."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        parent = account_target("GONE", company)
        del parent["@odata.type"]
        key = f"accounts(accountnumber='GONE',_msdyn_company_value={company})"
        child = account_target("GONE-C1", company, **{"parentaccountid@odata.bind": f"/{key}"})
        del child["@odata.type"]
        again = {**child, "accountnumber": "GONE-C2"}
        send_batch(
            o,
            [
                ("POST", "accounts", parent),
                ("POST", "accounts", child),
                ("DELETE", key, None),
                ("POST", "accounts", again),
            ],
        )

    bulk = both_ways(scenario)
    assert bulk.responses[-1][0] == 404 or "404" in str(bulk.responses[-1][1])
    assert account_count(bulk, "GONE") == 0 and bulk.changes() == []


def test_batch_without_change_set_bind_after_a_failed_part_is_refused(both_ways) -> None:
    """Independent parts: a failed part's row is gone, so a later part's bind to it is a 404."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        good = account_target("SOLO-1", company)
        del good["@odata.type"]
        bad = {**good, "accountnumber": "SOLO-2", "nosuchcolumn": 1}
        child = {
            **good,
            "accountnumber": "SOLO-3",
            "parentaccountid@odata.bind": f"/accounts(accountnumber='SOLO-2',_msdyn_company_value={company})",
        }
        send_batch(
            o, [("POST", "accounts", good), ("POST", "accounts", bad), ("POST", "accounts", child)], changeset=False
        )

    bulk = both_ways(scenario)
    assert account_count(bulk, "SOLO-") == 1


def test_batch_change_set_sees_an_exchange_rate_changed_by_an_earlier_part(both_ways) -> None:
    """Accounts in EUR, then the EUR rate changes, then more accounts: the later ones use the new rate."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        euro = o.client.get(f"{ROOT}/transactioncurrencies?$filter=isocurrencycode eq 'EUR'").get_json()["value"][0]
        in_euro = {"transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='EUR')"}
        response = send_batch(
            o,
            [
                (
                    "POST",
                    "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
                    {"Targets": [account_target(f"EUR-A{i}", company, **in_euro) for i in range(3)]},
                ),
                ("PATCH", f"transactioncurrencies({euro['transactioncurrencyid']})", {"exchangerate": 2}),
                (
                    "POST",
                    "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
                    {"Targets": [account_target(f"EUR-B{i}", company, **in_euro) for i in range(3)]},
                ),
            ],
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    bulk = both_ways(scenario)
    rows = bulk.client.get(
        f"{ROOT}/accounts?$filter=startswith(accountnumber,'EUR-')&$orderby=accountnumber"
        "&$select=accountnumber,exchangerate,revenue_base"
    ).get_json()["value"]
    assert [(r["exchangerate"], r["revenue_base"]) for r in rows] == [(0.92, 1086.9565)] * 3 + [(2.0, 500.0)] * 3


# ---- single writes --------------------------------------------------------------------------------------------
def test_post_and_patch_upsert_match_row_by_row(both_ways) -> None:
    """Plain POSTs and PATCH upserts by alternate key answer and record the same as before."""

    def scenario(o: Outcome) -> None:
        company = o.company_id()
        for i in range(3):
            body = account_target(f"ONE-{i}", company)
            del body["@odata.type"]
            o.send("POST", f"{ROOT}/accounts", json=body)
            number = body.pop("accountnumber")
            o.send("PATCH", f"{ROOT}/accounts(accountnumber='{number}-U',_msdyn_company_value={company})", json=body)
            o.send(
                "PATCH",
                f"{ROOT}/accounts(accountnumber='{number}-U',_msdyn_company_value={company})",
                json={"name": "changed"},
            )

    both_ways(scenario)


def test_post_answers_the_etag_of_the_row_as_stored(both_ways) -> None:
    """POST's ETag is the version a GET shows, also when a deep-inserted line updated the header after it."""

    def scenario(o: Outcome) -> None:
        account = o.client.get(f"{ROOT}/accounts?$filter=accountnumber eq 'US-001'").get_json()["value"][0]
        product = o.client.get(f"{ROOT}/products?$filter=msdyn_productnumber eq 'D0001'").get_json()["value"][0]
        plain = o.send("POST", f"{ROOT}/accounts", json={"name": "Etag"})
        deep = o.send(
            "POST",
            f"{ROOT}/quotes",
            json={
                "name": "Deep",
                "customerid_account@odata.bind": f"/accounts({account['accountid']})",
                "quote_details": [{"productid@odata.bind": f"/products({product['productid']})", "quantity": 2}],
            },
        )
        for response in (plain, deep):
            assert response.status_code == 204, response.get_data(as_text=True)
            url = response.headers["OData-EntityId"].split("/api/data/v9.2", 1)[1]
            assert o.client.get(f"{ROOT}{url}").headers["ETag"] == response.headers["ETag"]

    both_ways(scenario)
