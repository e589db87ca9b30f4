"""The ``dynamics-web-api`` npm client (v2, the most used Dataverse JavaScript client) against mock Sales.

Mock Sales runs with TLS on a loopback port; ``js/client_check.mjs`` runs a list of client calls against it,
configured only with the server URL and a token callback returning any string, with Node trusting the sandbox
CA through ``NODE_EXTRA_CA_CERTS``. The script prints one JSON document of step results that the tests below
assert on, together with what the request journal recorded on the wire.

The package is installed once into ``.cache/npm-clients/`` (gitignored) with npm; ``node`` and ``npm`` are
required, on developer machines and on CI alike.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sandbox.runtime import Runtime

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]
CLIENT_HOME = REPO / ".cache" / "npm-clients"
PACKAGE = "dynamics-web-api@2"
SCRIPT = Path(__file__).resolve().parent / "js" / "client_check.mjs"
ROOT = "/api/data/v9.2"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"'{name}' is not on PATH: the JavaScript client tests need Node.js 18+ and npm "
            "(install them, e.g. `apt-get install nodejs npm`).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def client_home() -> Path:
    """The folder whose node_modules holds dynamics-web-api (npm install runs only when it is missing)."""
    node = _tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        pytest.fail(f"Node.js {version} is too old for dynamics-web-api 2 (needs 18+).", pytrace=False)
    if not (CLIENT_HOME / "node_modules" / "dynamics-web-api" / "package.json").exists():
        npm = _tool("npm")
        CLIENT_HOME.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", PACKAGE],
            cwd=CLIENT_HOME,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm install {PACKAGE} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return CLIENT_HOME


class Sandbox:
    """The running mock Sales: its HTTPS URL, CA file and runtime (for the request journal)."""

    def __init__(self, url: str, ca_file: Path, app: Flask) -> None:
        self.url = url
        self.ca_file = ca_file
        self.runtime: Runtime = app.extensions["sandbox"]


@pytest.fixture(scope="module")
def sandbox(https_sales: tuple[str, Path, Flask]) -> Sandbox:
    """Mock Sales (seed 1, in memory) served over HTTPS on a free loopback port for this module."""
    return Sandbox(*https_sales)


class Run:
    """One run of client_check.mjs: its step results and the requests mock Sales journaled meanwhile."""

    def __init__(self, steps: dict[str, dict[str, Any]], wire: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.wire = wire

    def result(self, name: str) -> Any:
        """The result of a step that must have succeeded."""
        step = self.steps[name]
        assert step["ok"], f"{name} failed: {step['error']}"
        return step["result"]

    def error(self, name: str) -> dict[str, Any]:
        """The error of a step that must have failed."""
        step = self.steps[name]
        assert not step["ok"], f"{name} unexpectedly succeeded: {step['result']}"
        return step["error"]

    def calls(self, method: str, path_part: str) -> list[dict[str, Any]]:
        return [e for e in self.wire if e["method"] == method and path_part in e["path"]]


@pytest.fixture(scope="module")
def run(client_home: Path, sandbox: Sandbox) -> Run:
    """Run the script once for the module (well under a second against the sandbox)."""
    sandbox.runtime.journal.clear()
    env = {
        **os.environ,
        "SANDBOX_URL": sandbox.url + "/",
        "DWA_HOME": str(client_home),
        "NODE_EXTRA_CA_CERTS": str(sandbox.ca_file),
    }
    done = subprocess.run([_tool("node"), str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"client_check.mjs exited {done.returncode}:\n{done.stderr}"
    steps = json.loads(done.stdout)["steps"]
    wire = list(reversed(sandbox.runtime.journal.entries(None)))
    return Run(steps, wire)


# ---- functions, create, retrieve ---------------------------------------------------------------------------


def test_whoami_function_returns_the_user_business_unit_and_organization(run: Run) -> None:
    """callFunction("WhoAmI") GETs WhoAmI() with the bearer token the callback returned."""
    who = run.result("whoAmI")
    assert {"UserId", "BusinessUnitId", "OrganizationId"} <= set(who)
    assert run.calls("GET", "/WhoAmI")[0]["status"] == 200


def test_create_returns_the_id_from_odata_entityid(run: Run) -> None:
    """create() without representation gets 204 + OData-EntityId and returns the new GUID."""
    created = run.result("create")["id"]
    assert isinstance(created, str) and len(created) == 36
    assert any(e["status"] == 204 for e in run.calls("POST", f"{ROOT}/accounts"))


def test_create_with_representation_returns_the_selected_columns(run: Run) -> None:
    """returnRepresentation + select: 201 with the row, its etag and only the selected columns plus the key."""
    row = run.result("createWithRepresentation")
    assert row["telephone1"] == "555-0102" and row["accountid"] and row["@odata.etag"].startswith('W/"')
    assert row["@odata.context"].endswith("$metadata#accounts(name,telephone1)/$entity")


def test_retrieve_with_select_and_formatted_values(run: Run) -> None:
    """retrieve() with includeAnnotations gets the FormattedValue annotation the library maps to _Formatted."""
    row = run.result("retrieve")
    assert row["customertypecode"] == 3 and row["customertypecode_Formatted"] == "Customer"
    assert set(k for k in row if not k.startswith("@") and not k.startswith("oData")) == {
        "name",
        "customertypecode",
        "accountid",
        "customertypecode@OData.Community.Display.V1.FormattedValue",
        "customertypecode_Formatted",
    }


# ---- update, upsert, associate, delete ---------------------------------------------------------------------


def test_update_and_update_single_property_change_the_row(run: Run) -> None:
    """update() PATCHes with If-Match: * and returns true; updateSingleProperty PUTs accounts(<id>)/description."""
    assert run.result("update") == {"updated": True, "telephone1": "555-0101"}
    assert run.result("updateSingleProperty") == {"description": "set alone"}
    assert any(e["path"].endswith("/description") and e["status"] == 204 for e in run.calls("PUT", "accounts("))


def test_update_with_a_stale_etag_is_refused_with_412(run: Run) -> None:
    """A wrong If-Match answers 412, which update() reports as false (the library's contract)."""
    assert run.result("updateWithStaleEtag") is False
    assert any(e["status"] == 412 for e in run.calls("PATCH", "accounts("))


def test_associate_single_valued_sets_the_lookup_through_ref(run: Run) -> None:
    """associateSingleValued PUTs accounts(<id>)/primarycontactid/$ref with an absolute @odata.id."""
    result = run.result("associateSingleValued")
    assert result["primarycontact"] == result["contactId"]
    (call,) = run.calls("PUT", "/primarycontactid/$ref")
    assert call["status"] == 204 and "https://127.0.0.1:" in call["request_body"]


def test_upsert_by_alternate_key_creates_then_updates_the_same_row(run: Run) -> None:
    """upsert() PATCHes products(productnumber='...'): first a create (id returned), then an update."""
    created_id = run.result("upsertCreatesByAlternateKey")
    updated = run.result("upsertUpdatesByAlternateKey")
    assert updated["count"] == 1 and updated["name"].endswith("renamed")
    assert updated["returned"]["productid"] == created_id
    assert all("productnumber='JS-" in e["path"] for e in run.calls("PATCH", "products("))


def test_upsert_by_composite_alternate_key_with_a_lookup_column(run: Run) -> None:
    """The account key (accountnumber, _msdyn_company_value) in the URL creates once, then updates."""
    rows = run.result("upsertCompositeAlternateKey")
    assert len(rows) == 1 and rows[0]["name"].startswith("JS keyed") and rows[0]["telephone1"] == "555-0199"


def test_delete_removes_the_row_and_a_second_delete_is_404(run: Run) -> None:
    """deleteRecord() returns true; retrieving the row afterwards, or deleting it again, answers 404."""
    assert run.result("deleteRecord") == {"deleted": True, "retrieveStatus": 404}
    error = run.error("deleteMissing")
    assert error["status"] == 404 and error["code"] == "0x80040217"


# ---- queries ---------------------------------------------------------------------------------------------------


def test_retrieve_multiple_pages_with_max_page_size_and_the_next_link(run: Run) -> None:
    """maxPageSize sends odata.maxpagesize; passing oDataNextLink back fetches the next page in order."""
    paged = run.result("retrieveMultiplePaged")
    assert paged["hasNextLink"] and len(paged["firstPage"]) == 5
    numbers = paged["firstPage"] + paged["secondPage"]
    assert numbers == sorted(numbers) and all(n.startswith("US-") for n in numbers)
    assert any("skiptoken" in e["query"] for e in run.calls("GET", f"{ROOT}/accounts"))


def test_retrieve_all_count_and_count_all_agree(run: Run) -> None:
    """retrieveAll follows every next link; count() reads @odata.count ($count=true) with a filter and the
    text/plain <set>/$count without one; countAll counts the rows it pages through."""
    everything = run.result("retrieveAll")
    assert everything["count"] == len(set(everything["numbers"])) == run.result("count") == run.result("countAll")
    assert any("$count=true" in e["query"] for e in run.calls("GET", f"{ROOT}/accounts"))
    assert isinstance(run.result("countWholeTable"), int) and run.result("countWholeTable") >= 1
    assert run.calls("GET", "/transactioncurrencies/$count")[0]["status"] == 200


def test_top_order_by_and_expand(run: Run) -> None:
    """$top with $orderby returns that many rows in order; $expand brings the related account's name."""
    names = run.result("retrieveMultipleTop")
    assert len(names) == 3 and names == sorted(names, reverse=True)
    contact = run.result("retrieveMultipleExpand")
    assert contact["parentcustomerid_account"]["name"] and contact["parentcustomerid_account"]["accountid"]


def test_entity_names_are_resolved_through_entity_definitions(run: Run) -> None:
    """useEntityNames: the library reads EntityDefinitions once and maps logical names to entity sets."""
    assert run.result("useEntityNames") == {"count": 2, "collection": "opportunities"}
    assert any("EntitySetName" in e["query"] for e in run.calls("GET", f"{ROOT}/EntityDefinitions"))


def test_track_changes_returns_a_delta_link_that_lists_changed_rows(run: Run) -> None:
    """trackChanges gets @odata.deltaLink; replaying it returns only the row changed since."""
    tracked = run.result("trackChanges")
    assert tracked["hasDeltaLink"] and len(tracked["changed"]) == 1 and tracked["changed"][0].endswith("tracked")


def test_fetchxml_is_translated_not_ignored(run: Run) -> None:
    """fetch() with a like condition returns only matching rows, ordered, leaving out null columns."""
    assert run.result("fetchXml") == ["US-001", "US-002", "US-003", "US-004", "US-009"]
    fetches = [e for e in run.calls("GET", f"{ROOT}/accounts") if "fetchXml" in e["query"]]
    assert fetches and all(e["status"] == 200 for e in fetches)


def test_fetch_all_follows_the_paging_cookie(run: Run) -> None:
    """fetchAll with the fetchxmlpagingcookie annotation pages (count=2) until the cookie stops coming."""
    numbers = run.result("fetchAllPaged")
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == len(set(numbers)) > 2


# ---- actions and $batch ------------------------------------------------------------------------------------------


def test_call_action_create_multiple_returns_ids(run: Run) -> None:
    """callAction on a collection POSTs accounts/Microsoft.Dynamics.CRM.CreateMultiple and gets Ids back."""
    result = run.result("callActionCreateMultiple")
    assert len(result["Ids"]) == 2


def test_call_action_runs_lead_to_cash_actions(run: Run) -> None:
    """A bound QualifyLead creates an opportunity; the unbound WinOpportunity (204) closes it as won."""
    result = run.result("callActionQualifyLeadThenWinOpportunity")
    assert result["createdTypes"] == ["#Microsoft.Dynamics.CRM.opportunity"]
    assert result["winResult"] is None and result["leadState"] == 1 and result["opportunityState"] == [1, 3]


def test_execute_batch_runs_a_changeset_with_content_id_and_reads(run: Run) -> None:
    """executeBatch: create ($1) and update $1 in a change set, then GET and WhoAmI() outside it."""
    created_id, updated, listed, who = run.result("executeBatch")
    assert updated is True and "UserId" in who
    assert [(row["accountid"], row["telephone1"]) for row in listed["value"]] == [(created_id, "555-0150")]
    (batch,) = [e for e in run.calls("POST", "$batch") if "JS batch" in (e["request_body"] or "")]
    assert batch["status"] == 200


def test_execute_batch_rejects_with_the_failing_parts_error(run: Run) -> None:
    """A change set with a bad part rolls back; executeBatch rejects with that part's 400 and message."""
    result = run.result("executeBatchFailing")
    assert result["rejected"]
    (error,) = result["errors"]
    assert error["status"] == 400 and "nosuchcolumn" in error["inner"]


# ---- metadata ----------------------------------------------------------------------------------------------------


def test_metadata_entity_attributes_and_relationships(run: Run) -> None:
    """retrieveEntity / retrieveAttributes (Picklist cast + OptionSet) / retrieveEntities / retrieveRelationships."""
    entity = run.result("retrieveEntity")
    assert (
        entity["LogicalName"],
        entity["EntitySetName"],
        entity["PrimaryIdAttribute"],
        entity["PrimaryNameAttribute"],
    ) == ("account", "accounts", "accountid", "name")
    attributes = run.result("retrieveAttributes")
    assert "customertypecode" in attributes["names"] and "Prospect" in attributes["customerLabels"]
    assert run.result("retrieveEntities") == [
        {
            "MetadataId": run.result("retrieveEntities")[0]["MetadataId"],
            "LogicalName": "salesorder",
            "EntitySetName": "salesorders",
        }
    ]
    (relationship,) = run.result("retrieveRelationships")
    assert (
        relationship["ReferencingEntity"],
        relationship["ReferencedEntity"],
        relationship["ReferencingEntityNavigationPropertyName"],
    ) == ("account", "contact", "primarycontactid")


def test_every_step_of_the_client_script_succeeds_except_the_deliberate_failures(run: Run) -> None:
    """Nothing the client does against mock Sales fails unless the step is meant to fail."""
    meant_to_fail = {"deleteMissing"}
    failed = {name: step["error"] for name, step in run.steps.items() if not step["ok"]}
    assert set(failed) == meant_to_fail, failed
