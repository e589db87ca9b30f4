"""``sandbox maps ...`` and ``sandbox reconcile`` against services served on loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from leadtocash.cli import main
from leadtocash.stack import Serving, Stack
from sandbox.clients import SalesClient, ScmClient
from sandbox.server import free_port
from tests.golden import Golden
from tests.leadtocash.up_process import Up

# waitress's loop can trip over its socket being closed from ServerGroup.stop_all (EBADF in select): a
# shutdown race of the server thread, not of the code under test.
pytestmark = [pytest.mark.live, pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")]

CUSTOMERS = "customers-accounts"


@dataclass
class Served:
    stack: Stack
    urls: dict[str, str]

    @property
    def runtime(self) -> Any:
        return self.stack.apps["bridge"].extensions["bridge"]

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    def maps(self, *args: str) -> Result:
        return self.cli("maps", *args, "--bridge-url", self.urls["bridge"])

    def reconcile(self, *args: str) -> Result:
        return self.cli(
            "reconcile",
            "--sales-url",
            self.urls["sales"],
            "--scm-url",
            self.urls["scm"],
            "--bridge-url",
            self.urls["bridge"],
            *args,
        )


@pytest.fixture
def served(golden: Golden, tmp_path: Path) -> Iterator[Served]:
    """The in-process sandbox (maps running live; a copy of the golden one), each app also served on a free
    loopback port."""
    with golden.stack(tmp_path / "bridge.sqlite") as stack:
        stack.bridge_runtime.worker.poll_wait = 0.2
        stack.serve(Serving("127.0.0.1"))
        yield Served(stack, stack.urls)


def test_maps_list_prints_a_table_of_every_map(served: Served) -> None:
    """`maps list` prints one row per map with its state and mode; exit 0."""
    result = served.maps("list")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["MAP", "STATE", "MODE"]
    row = next(line for line in lines if line.startswith(CUSTOMERS))
    assert "Running" in row and "live" in row


def test_maps_list_json_is_the_bridge_status(served: Served) -> None:
    """`maps list --json` prints the status objects, counters and lag included."""
    result = served.maps("list", "--json")

    rows = json.loads(result.output)
    assert {r["id"] for r in rows} >= {"legal-entities", "customer-groups", CUSTOMERS}
    assert all({"state", "mode", "synced", "failed", "queued", "lag_seconds", "last_error"} <= set(r) for r in rows)


def test_maps_pause_resume_stop_and_run_change_the_state(served: Served) -> None:
    """pause -> Paused; resume -> Running; run --mode async (no initial sync) switches mode; stop -> Not running."""
    assert "Paused" in served.maps("pause", CUSTOMERS).output
    assert served.runtime.lifecycle.status(CUSTOMERS)["state"] == "Paused"
    assert "Running" in served.maps("resume", CUSTOMERS, "--mode", "skip-discard").output

    switched = json.loads(served.maps("run", CUSTOMERS, "--mode", "async", "--no-initial-sync", "--json").output)
    assert switched[0]["mode"] == "async" and switched[0]["state"] == "Running"

    assert "Not running" in served.maps("stop", CUSTOMERS).output
    assert served.runtime.lifecycle.status(CUSTOMERS)["state"] == "Not running"


def test_maps_commands_report_a_refusal_and_exit_non_zero(served: Served) -> None:
    """An unknown map or an illegal transition prints the bridge's message and exits 1."""
    unknown = served.maps("pause", "no-such-map")
    assert unknown.exit_code == 1 and "No table map with id 'no-such-map'" in unknown.output
    illegal = served.maps("resume", CUSTOMERS)
    assert illegal.exit_code == 1 and "409" in illegal.output


def test_maps_list_without_a_bridge_says_so(served: Served) -> None:
    """Nothing listening at --bridge-url: a clear error, exit 1."""
    result = served.cli("maps", "list", "--bridge-url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1 and "cannot reach the bridge" in result.output


def test_reconcile_exits_zero_when_both_sides_agree(served: Served) -> None:
    """Right after initial sync every running map is equal on both sides."""
    result = served.reconcile("--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["equal"] is True
    running = {m.id for m in served.runtime.maps if served.runtime.lifecycle.status(m.id)["state"] == "Running"}
    assert {m["id"] for m in report["maps"]} == running >= {"legal-entities", "customer-groups", CUSTOMERS}


def test_reconcile_reports_missing_and_differing_rows_and_exits_one(served: Served) -> None:
    """Rows written around the bridge (as its own identity, so never synced) show up as missing in Sales and
    as a differing field; the exit code is 1."""
    sneaky_scm = ScmClient(served.urls["scm"], identity="dualwrite")
    sneaky_scm.create(
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "US-950",
            "OrganizationName": "Only SCM",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    sneaky_sales = SalesClient(served.urls["sales"], identity="dualwrite")
    company = served.runtime.engine.company_id("usmf")
    account = sneaky_sales.query("accounts", filter=f"accountnumber eq 'US-001' and _msdyn_company_value eq {company}")[
        0
    ]
    sneaky_sales.update("accounts", account["accountid"], {"name": "Renamed in Sales only"})

    result = served.reconcile("--json")

    assert result.exit_code == 1, result.output
    customers = next(m for m in json.loads(result.output)["maps"] if m["id"] == CUSTOMERS)
    assert customers["counts"] == {"missing_in_sales": 1, "missing_in_scm": 0, "differing": 1}
    assert customers["missing_in_sales"][0]["key"] == {"customeraccount": "US-950"}
    difference = customers["differing"][0]
    assert difference["company"] == "usmf" and difference["key"] == {"customeraccount": "US-001"}
    assert {
        "scm_field": "OrganizationName",
        "sales_field": "name",
        "sales_value": "Renamed in Sales only",
    }.items() <= difference["fields"][0].items()

    text = served.reconcile()
    assert text.exit_code == 1
    assert "missing in Sales: usmf customeraccount=US-950" in text.output and "DIFFERENT" in text.output


def test_reconcile_compares_only_running_maps(served: Served) -> None:
    """A stopped map is not compared (its sides are expected to drift)."""
    served.runtime.lifecycle.stop(CUSTOMERS)
    ScmClient(served.urls["scm"]).create(
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "US-951",
            "OrganizationName": "Unsynced",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    result = served.reconcile("--json")

    assert result.exit_code == 0, result.output
    assert CUSTOMERS not in {m["id"] for m in json.loads(result.output)["maps"]}


def test_reconcile_of_named_maps_needs_no_bridge(served: Served) -> None:
    """--map compares the named maps without asking a bridge; an unreachable service exits 2."""
    result = served.cli(
        "reconcile",
        "--sales-url",
        served.urls["sales"] + "/api/data/v9.2/",
        "--scm-url",
        served.urls["scm"],
        "--map",
        "customer-groups",
        "--bridge-url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert result.exit_code == 0, result.output
    assert "customer-groups:" in result.output and result.output.strip().endswith("equal")

    down = served.cli(
        "reconcile",
        "--sales-url",
        f"http://127.0.0.1:{free_port()}",
        "--scm-url",
        served.urls["scm"],
        "--map",
        "customer-groups",
    )
    assert down.exit_code == 2


def test_up_serves_the_bridge_with_the_maps_running_so_a_new_customer_appears_on_the_other_side(
    served_up: Up,
) -> None:
    """`sandbox up` prints the bridge URL once its maps run (initial sync done); a customer created in SCM
    over HTTP is in Sales at once, and `maps list` against it shows every map Running."""
    urls = served_up.urls
    assert urls.get("bridge", "").startswith("http://127.0.0.1:"), urls
    scm = ScmClient(urls["scm"])
    scm.create(
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "US-777",
            "OrganizationName": "Up Ltd",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    found = SalesClient(urls["sales"]).query("accounts", filter="accountnumber eq 'US-777'")
    assert [row["name"] for row in found] == ["Up Ltd"]  # live sync: there before the create returned
    listing = CliRunner().invoke(main, ["maps", "list", "--json", "--bridge-url", urls["bridge"]])
    assert {row["state"] for row in json.loads(listing.output)} == {"Running"}
    assert httpx.get(urls["bridge"] + "metrics").status_code == 200


def test_maps_run_shows_initial_sync_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the run call is out, the map's ``initial_sync_progress`` is shown on stderr, one line
    rewritten in place; the answer of the run call is what the command returns."""
    import threading

    from leadtocash import cli

    released = threading.Event()
    calls: list[tuple[str, str]] = []

    def fake_call(bridge_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        calls.append((method, path))
        if method == "POST":
            released.wait(10)
            return {"id": "customers-accounts", "state": "Running"}
        released.set()  # one status read is enough
        return {
            "initial_sync_progress": {
                "phase": "writing",
                "read_scm": 20000,
                "read_sales": 12,
                "to_write": 20000,
                "sent": 5000,
            }
        }

    monkeypatch.setattr(cli, "_bridge_call", fake_call)
    answer = cli._run_map("http://bridge", "customers-accounts", {"initial_sync": True}, show_progress=True)
    assert answer == {"id": "customers-accounts", "state": "Running"}
    assert ("GET", "/api/maps/customers-accounts") in calls
    err = capsys.readouterr().err
    assert "\rcustomers-accounts: initial sync read 20,000 SCM / 12 Sales rows, sent 5,000 of 20,000" in err


def test_maps_run_off_a_terminal_only_calls_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leadtocash import cli

    calls: list[str] = []
    monkeypatch.setattr(cli, "_bridge_call", lambda url, method, path, body=None: calls.append(method) or {})
    cli._run_map("http://bridge", "customers-accounts", {"initial_sync": True}, show_progress=False)
    assert calls == ["POST"] and capsys.readouterr().err == ""
