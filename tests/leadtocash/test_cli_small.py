"""The small things of the ``sandbox`` command: ``--version``, ``reconcile`` on the standard ports, ``seed`` run
twice and ``--reset``, ``snapshot save|load``, and "did you mean" for misspelled scenario and map names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from leadtocash.cli import did_you_mean, main
from leadtocash.stack import DEFAULT_PORTS, Serving, Stack
from sandbox.clients import SalesClient, ScmClient
from tests.golden import Golden

# waitress's loop can trip over its socket being closed from ServerGroup.stop_all (EBADF in select): a
# shutdown race of the server thread, not of the code under test.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def served(golden: Golden, tmp_path: Path) -> Iterator[Stack]:
    """An in-process stack (maps running live; a copy of the golden one), each service also served on a free
    loopback port."""
    with golden.stack(tmp_path / "bridge.sqlite") as stack:
        stack.serve(Serving("127.0.0.1"))
        yield stack


def test_version_prints_the_installed_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert result.output.startswith(f"sandbox {metadata.version('lead-to-cash-sandbox')} (Python 3.")


def test_did_you_mean_offers_the_close_names_only() -> None:
    assert did_you_mean("lead-to-csh", ["lead-to-cash", "credit-hold"]) == "; did you mean 'lead-to-cash'?"
    assert did_you_mean("zzzz", ["lead-to-cash"]) == ""


def test_a_misspelled_scenario_is_answered_with_the_close_name() -> None:
    result = invoke("scenario", "run", "lead-to-csh")

    assert result.exit_code == 2
    assert "unknown scenario 'lead-to-csh'; did you mean 'lead-to-cash'?" in result.output


def test_reconcile_help_defaults_to_the_standard_ports() -> None:
    result = invoke("reconcile", "--help")

    assert result.exit_code == 0
    for port in DEFAULT_PORTS.values():
        assert f"http://127.0.0.1:{port}" in result.output


@pytest.mark.live
def test_reconcile_needs_no_urls_when_the_environment_names_the_stack(served: Stack) -> None:
    """No --sales-url/--scm-url: the defaults (here from SANDBOX_*_URL, as the standard ports may be taken by
    another run) reach the stack, and the sides are equal."""
    env = {f"SANDBOX_{name.upper()}_URL": served.urls[name] for name in ("sales", "scm", "bridge")}

    result = invoke("reconcile", "--map", "customers-accounts", env=env)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "equal"


@pytest.mark.live
def test_reconcile_with_no_stack_says_to_start_one_and_exits_2() -> None:
    from sandbox.server import free_port

    down = f"http://127.0.0.1:{free_port()}"
    result = invoke("reconcile", "--sales-url", down, "--scm-url", down, "--bridge-url", down)

    assert result.exit_code == 2
    assert "cannot reach the bridge" in result.output and "sandbox up" in result.output


@pytest.mark.live
def test_a_misspelled_map_is_answered_with_the_close_name(served: Stack) -> None:
    """The bridge's 404 for an unknown map, with its closest map ids; reconcile --map says the same."""
    result = invoke("maps", "pause", "customers-acounts", "--bridge-url", served.urls["bridge"])

    assert result.exit_code == 1
    assert "No table map with id 'customers-acounts'; did you mean 'customers-accounts'" in result.output
    assert "sandbox maps list" in result.output

    result = invoke(
        "reconcile",
        "--sales-url",
        served.urls["sales"],
        "--scm-url",
        served.urls["scm"],
        "--map",
        "customers-acounts",
    )
    assert result.exit_code == 2
    assert "customers-acounts; did you mean 'customers-accounts'" in result.output


def customer_accounts(scm_url: str, prefix: str) -> list[str]:
    with ScmClient(scm_url) as scm:
        rows = scm.query("CustomersV3", filter=f"CustomerAccount eq '{prefix}*'", select=["CustomerAccount"])
    return sorted(row["CustomerAccount"] for row in rows)


@pytest.mark.live
def test_seed_twice_with_one_seed_skips_what_exists_and_exits_0(served: Stack) -> None:
    """The second run finds every record of the first and creates nothing; both exit 0."""
    args = ("seed", "--scm-url", served.urls["scm"], "--seed", "4", "--accounts", "3", "--products", "2")

    first = invoke(*args, "--orders", "2")
    second = invoke(*args, "--orders", "3")  # one more order than before: only that one is new

    assert first.exit_code == 0, first.output
    assert "customers 3, products 2, orders 2, already there 0, failed 0" in first.output
    assert second.exit_code == 0, second.output
    assert "customers 0, products 0, orders 1, already there 7, failed 0" in second.output
    assert customer_accounts(served.urls["scm"], "S04-C") == ["S04-C000001", "S04-C000002", "S04-C000003"]


@pytest.mark.live
def test_seed_reset_deletes_the_seeds_records_on_both_sides_and_makes_them_again(served: Stack) -> None:
    """--reset deletes what the seed made (orders first), the bridge deletes the accounts in Sales, and the run
    creates the same records again; another seed's records stay."""
    scm_url = served.urls["scm"]
    assert invoke("seed", "--scm-url", scm_url, "--seed", "5", "--accounts", "2", "--orders", "0").exit_code == 0
    base = ("seed", "--scm-url", scm_url, "--seed", "6", "--accounts", "2", "--products", "1", "--orders", "2")
    assert invoke(*base).exit_code == 0
    with SalesClient(served.urls["sales"]) as sales:
        sales.update("accounts", _account_id(sales, "S06-C000001"), {"name": "Changed by hand"})

    result = invoke(*base, "--reset")

    assert result.exit_code == 0, result.output
    assert "deleted 5 records of seed 6" in result.output  # 2 orders, 2 customers, 1 product
    assert "customers 2, products 1, orders 2, already there 0, failed 0" in result.output
    with SalesClient(served.urls["sales"]) as sales:
        names = [
            row["name"] for row in sales.query("accounts", filter="accountnumber eq 'S06-C000001'", select=["name"])
        ]
    assert len(names) == 1 and names != ["Changed by hand"], "the account was deleted and synced again"
    assert customer_accounts(scm_url, "S05-C") == ["S05-C000001", "S05-C000002"]


def _account_id(sales: SalesClient, number: str) -> str:
    rows = sales.query("accounts", filter=f"accountnumber eq '{number}'", select=["accountid"])
    assert len(rows) == 1, rows
    return str(rows[0]["accountid"])


@pytest.mark.live
def test_snapshot_save_then_load_brings_back_the_saved_data(served: Stack, tmp_path: Path) -> None:
    """save writes both mocks to one file; a customer made afterwards is gone once the file is loaded."""
    urls = ("--sales-url", served.urls["sales"], "--scm-url", served.urls["scm"])
    file = tmp_path / "state.json"

    saved = invoke("snapshot", "save", str(file), *urls)
    assert saved.exit_code == 0, saved.output
    assert set(json.loads(file.read_text())["services"]) == {"sales", "scm"}
    with ScmClient(served.urls["scm"]) as scm:
        scm.create(
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "SNAP-1",
                "OrganizationName": "After the snapshot",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
        )
    assert customer_accounts(served.urls["scm"], "SNAP-") == ["SNAP-1"]

    loaded = invoke("snapshot", "load", str(file), *urls)

    assert loaded.exit_code == 0, loaded.output
    assert "loaded sales, scm" in loaded.output
    assert customer_accounts(served.urls["scm"], "SNAP-") == []
    with SalesClient(served.urls["sales"]) as sales:
        assert sales.query("accounts", filter="accountnumber eq 'SNAP-1'") == []


@pytest.mark.live
def test_snapshot_load_only_one_service_leaves_the_other(served: Stack, tmp_path: Path) -> None:
    file = tmp_path / "scm.json"
    assert invoke("snapshot", "save", str(file), "--only", "scm", "--scm-url", served.urls["scm"]).exit_code == 0
    assert set(json.loads(file.read_text())["services"]) == {"scm"}

    result = invoke("snapshot", "load", str(file), "--only", "sales", "--sales-url", served.urls["sales"])

    assert result.exit_code == 1 and "holds no snapshot of sales; it has scm" in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ("{not json", "is not JSON"), ('{"tables": {}}', "is not a sandbox snapshot")],
)
def test_snapshot_load_of_a_bad_file_is_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    file = tmp_path / "snap.json"
    if content is not None:
        file.write_text(content)

    result = invoke("snapshot", "load", str(file))

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and expected in result.output, result.output


def test_snapshot_save_with_no_stack_says_to_start_one(tmp_path: Path) -> None:
    from sandbox.server import free_port

    down = f"http://127.0.0.1:{free_port()}"
    result = invoke("snapshot", "save", str(tmp_path / "x.json"), "--sales-url", down, "--scm-url", down)

    assert result.exit_code == 1
    assert "cannot reach mock" in result.output and "sandbox up" in result.output
    assert not (tmp_path / "x.json").exists()
