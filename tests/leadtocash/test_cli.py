"""The ``sandbox`` command as a user runs it: real processes on loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.server import free_port
from sandbox.testing import poll_until, process_gone
from tests.leadtocash.up_process import Up, authenticated, start_up, stop

pytestmark = pytest.mark.live

#: the services of `sandbox up` check tokens (its default): this client gets them as our own clients do
api = authenticated()


def test_up_serves_both_mocks_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """`sandbox up` prints each service's URL when ready, serves them, and exits 0 on SIGTERM."""
    process, urls = start_up(tmp_path, "--memory")
    try:
        assert set(urls) >= {"sales", "scm"}, urls
        assert urls["sales"].endswith("/api/data/v9.2/") and urls["scm"].endswith("/data/")
        accounts = api.get(urls["sales"] + "accounts?$top=1", headers={"Authorization": "Bearer anything"})
        assert accounts.status_code == 200 and "value" in accounts.json()
        health = api.get(urls["scm"].replace("/data/", "/_sandbox/health"))
        assert health.json()["status"] == "ok"
    finally:
        assert stop(process) == 0


def test_up_prints_one_ready_line_once_every_health_is_200_and_every_map_runs(served_up: Up) -> None:
    """The ``ready`` line comes last, once: by then every service's health answers 200 and every shipped map
    is Running, so a script that waits for it (or for health) can write at once."""
    lines, urls = served_up.lines, served_up.urls
    assert lines[-1].startswith("ready") and sum(line.startswith("ready") for line in lines) == 1
    bridge = urls["bridge"].rstrip("/")
    for url in (urls["sales"].replace("/api/data/v9.2/", ""), urls["scm"].replace("/data/", ""), bridge):
        assert api.get(url + "/_sandbox/health").status_code == 200
    maps = api.get(bridge + "/api/maps").json()
    assert maps and {m["state"] for m in maps} == {"Running"}
    assert lines[-1].split() == ["ready", str(len(maps)), "maps", "Running"]


def test_up_whose_map_cannot_start_says_which_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A map whose initial sync fails ends ``sandbox up`` at once with exit code 1 and a message naming the
    map and the error: no ``ready`` line, no hanging."""
    from click.testing import CliRunner

    from bridge.initial import InitialSync
    from leadtocash.cli import main

    original = InitialSync.run

    def failing(self: InitialSync, table_map: Any, **kwargs: Any) -> Any:
        if table_map.id == "customers-accounts":
            raise RuntimeError("SCM refused the page")
        return original(self, table_map, **kwargs)

    monkeypatch.setattr(InitialSync, "run", failing)
    ports = [str(free_port()) for _ in range(3)]
    result = CliRunner().invoke(
        main,
        ["up", "--memory", "--sales-port", ports[0], "--scm-port", ports[1], "--bridge-port", ports[2]]
        + ["--identity-port", "0"],
    )

    assert result.exit_code == 1, result.output
    assert "map 'customers-accounts': initial sync failed: SCM refused the page" in result.output
    assert "ready" not in result.output.split()


def create_a_customer_in_scm_and_find_it_in_sales(urls: dict[str, str], account: str) -> None:
    """A customer created in SCM over its port is in Sales when the create returns (live sync)."""
    created = api.post(
        urls["scm"] + "CustomersV3",
        json={
            "dataAreaId": "usmf",
            "CustomerAccount": account,
            "OrganizationName": f"Wired {account}",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    assert created.status_code == 201, created.text
    found = api.get(
        urls["sales"] + f"accounts?$filter=accountnumber eq '{account}'&$select=name",
        headers={"Authorization": "Bearer anything"},
    ).json()["value"]
    assert [row["name"] for row in found] == [f"Wired {account}"]


@pytest.mark.parametrize("wire", ["in-process", "http"])
def test_up_syncs_a_new_customer_whichever_way_the_services_are_wired(
    tmp_path: Path, wire: str, request: pytest.FixtureRequest
) -> None:
    """A customer created in SCM over its port is in Sales at once, with the bridge and the mocks calling
    each other in-process (the default: the session's shared `sandbox up`) or over their loopback ports
    (``--wire http``). Across processes (``--wire processes``): see the test of that wiring below."""
    if wire == "in-process":
        create_a_customer_in_scm_and_find_it_in_sales(request.getfixturevalue("served_up").urls, f"W-{wire}")
        return
    process, urls = start_up(tmp_path, "--memory", "--wire", wire)
    try:
        create_a_customer_in_scm_and_find_it_in_sales(urls, f"W-{wire}")
    finally:
        assert stop(process) == 0


def test_up_tls_serves_https_trusted_through_the_generated_ca(tmp_path: Path) -> None:
    """--tls serves HTTPS with a localhost certificate that verifies against the printed CA file."""
    process, urls = start_up(tmp_path, "--memory", "--tls")
    try:
        assert urls["sales"].startswith("https://")
        ca = tmp_path / "data" / "tls" / "ca.pem"
        poll_until(ca.exists, message="the CA file")
        with authenticated(verify=str(ca)) as tls_api:
            response = tls_api.get(urls["sales"] + "WhoAmI()")
        assert response.status_code == 200 and response.json()["UserId"]
    finally:
        assert stop(process) == 0


def test_up_uses_the_database_url_given_for_a_service(tmp_path: Path) -> None:
    """--database-url SERVICE=URL puts that service's data where the URL says."""
    target = tmp_path / "elsewhere.sqlite"
    process, urls = start_up(tmp_path, "--database-url", f"sales=sqlite:///{target}")
    try:
        assert api.post(urls["sales"] + "accounts", json={"name": "Placed"}).status_code == 204
        assert target.exists() and not (tmp_path / "data" / "sales.sqlite").exists()
    finally:
        assert stop(process) == 0


def test_database_url_needs_a_known_service() -> None:
    """A malformed --database-url is a usage error naming the expected form."""
    from click.testing import CliRunner

    from leadtocash.cli import main

    result = CliRunner().invoke(main, ["up", "--database-url", "nope"])
    assert result.exit_code == 2 and "SERVICE=URL" in result.output


def test_up_wire_processes_runs_each_mock_in_a_child_and_leaves_none_behind(tmp_path: Path) -> None:
    """--wire processes prints the same URL lines and the process ids: Sales and SCM in two children, the
    bridge (maps running) in `sandbox up` itself; a customer group written in Sales is in SCM when the
    write returns, a customer created in SCM is in Sales when the create returns; on SIGTERM everything
    stops, children included."""
    lines: list[str] = []
    process, urls = start_up(tmp_path, "--memory", "--wire", "processes", lines=lines)
    try:
        assert set(urls) == {"sales", "scm", "bridge", "identity"}, lines
        pids = dict(
            item.split()
            for item in next(line for line in lines if line.startswith("processes:"))
            .removeprefix("processes:")
            .split(",")
        )
        assert pids["bridge"] == str(process.pid) and len(set(pids.values())) == 3
        maps = api.get(urls["bridge"] + "api/maps").json()
        assert {row["state"] for row in maps} == {"Running"}
        created = api.post(
            urls["sales"] + "msdyn_customergroups",
            headers={"Authorization": "Bearer anything"},
            json={
                "msdyn_groupid": "XP",
                "msdyn_description": "Across processes",
                "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')",
            },
        )
        assert created.status_code == 204, created.text
        found = api.get(
            urls["scm"] + "CustomerGroups",
            params={"$filter": "CustomerGroupId eq 'XP'", "$select": "Description", "cross-company": "true"},
        )
        assert [row["Description"] for row in found.json()["value"]] == ["Across processes"]
        create_a_customer_in_scm_and_find_it_in_sales(urls, "W-processes")
    finally:
        assert stop(process) == 0
    assert all(process_gone(int(pids[name])) for name in ("sales", "scm"))


def test_up_wire_processes_with_a_port_in_use_fails_clearly_and_leaves_nothing_serving(tmp_path: Path) -> None:
    """SCM's port taken: exit 1 naming the service, the port and the option to change, found before any child
    starts (the bind in ServiceProcesses, for a port taken later, is tested in test_stack.py); nothing of
    Sales is left serving."""
    import socket

    sales_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "leadtocash.cli",
                "up",
                "--memory",
                "--wire",
                "processes",
                "--sales-port",
                str(sales_port),
                "--scm-port",
                str(taken),
                "--bridge-port",
                str(free_port()),
                "--identity-port",
                "0",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )

    assert result.returncode == 1, result.stderr
    assert f"mock SCM cannot listen on 127.0.0.1:{taken}" in result.stderr and "in use" in result.stderr
    assert "--scm-port" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{sales_port}/_sandbox/health")


def test_up_refuses_tls_with_wire_processes() -> None:
    """--tls and --wire processes together are a usage error that says so."""
    from click.testing import CliRunner

    from leadtocash.cli import main

    result = CliRunner().invoke(main, ["up", "--tls", "--wire", "processes"])
    assert result.exit_code == 2 and "--tls cannot be combined with --wire processes" in result.output


def test_a_second_up_on_a_data_dir_in_use_is_refused_at_once_and_the_data_survives_a_restart(tmp_path: Path) -> None:
    """The second `sandbox up` on the same --data-dir exits 1 before building anything, naming the folder and
    the pid of the first (not the ports, which a second `up` on one folder most often shares too); the first
    still serves. `--memory` takes no lock; once the first stops, the folder is free again, and without
    --memory what was written survives the restart."""
    first, urls = start_up(tmp_path)
    try:
        created = api.post(urls["sales"] + "accounts", json={"name": "Survivor"})
        assert created.status_code == 204
        same_ports = [
            value
            for name in ("sales", "scm", "bridge")
            for value in (f"--{name}-port", httpx.URL(urls[name]).port and str(httpx.URL(urls[name]).port))
        ]
        second = subprocess.run(
            [sys.executable, "-m", "leadtocash.cli", "up", "--data-dir", str(tmp_path / "data"), *same_ports],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert str((tmp_path / "data").resolve()) in second.stderr and f"process {first.pid}" in second.stderr
        assert "sales" not in second.stdout  # nothing was served
        health = api.get(urls["scm"].replace("/data/", "/_sandbox/health"))
        assert health.json()["status"] == "ok"
        in_memory, memory_urls = start_up(tmp_path, "--memory")
        try:
            assert api.get(memory_urls["scm"].replace("/data/", "/_sandbox/health")).json()["status"] == "ok"
        finally:
            assert stop(in_memory) == 0
    finally:
        assert stop(first) == 0
    lines: list[str] = []
    again, urls = start_up(tmp_path, lines=lines)
    try:
        assert api.get(urls["scm"].replace("/data/", "/_sandbox/health")).json()["status"] == "ok", "".join(lines)
        found = api.get(urls["sales"] + "accounts", params={"$filter": "name eq 'Survivor'"}).json()["value"]
        assert len(found) == 1
    finally:
        assert stop(again) == 0
