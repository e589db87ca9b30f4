"""How the services are built and wired: in one process, and one mock per child process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from leadtocash.processes import ServiceProcesses, ServiceStartError, spawn_services
from leadtocash.stack import StackConfig, build_apps, build_bridge, wire_bridge
from sandbox.server import free_port
from sandbox.testing import poll_until, process_gone

SALES_HEADERS = {"Authorization": "Bearer anything"}


def test_stack_config_travels_as_json_with_only_the_named_services() -> None:
    """What a child is given: the same data folder (absolute), memory flag and seed, and only its own URL."""
    config = StackConfig(
        data_dir=Path("rel"),
        seed=7,
        database_urls={"sales": "sqlite:///s.db", "scm": "sqlite://"},
        options={"scm": {"x": 1}},
    )

    copy = StackConfig.from_json(config.to_json(["sales"]))

    assert copy.data_dir == Path("rel").resolve() and copy.memory is False and copy.seed == 7
    assert copy.database_urls == {"sales": "sqlite:///s.db"} and copy.options == {}
    assert copy.service_config("sales") == config.service_config("sales")


def test_build_bridge_leaves_the_mocks_alone_and_wire_bridge_points_them_at_it() -> None:
    """The bridge for mocks elsewhere is built from URLs alone; wiring apps in this process also sets both
    mocks' live-sync senders."""
    apps = build_apps(StackConfig(memory=True, seed=1))
    try:
        remote = build_bridge({"sales": "http://127.0.0.1:1", "scm": "http://127.0.0.1:2"})
        remote.extensions["bridge"].close()
        assert all(not app.extensions["sandbox"].store.commit_hooks for app in apps.values())

        wired = wire_bridge(apps)
        wired.extensions["bridge"].close()
        assert all(len(app.extensions["sandbox"].store.commit_hooks) == 1 for app in apps.values())
    finally:
        for app in apps.values():
            app.extensions["sandbox"].set_live_sync(None)
            app.extensions["sandbox"].db.dispose()


@pytest.mark.live
def test_service_processes_serve_each_mock_from_a_child_of_its_own_and_leave_none_behind(tmp_path: Path) -> None:
    """Both mocks answer health and OData on their ports from two other processes, built from the stack
    configuration (seeded, SQLite files in the data folder, a service's own database URL); once stopped,
    the children are gone."""
    elsewhere = tmp_path / "elsewhere.sqlite"
    config = StackConfig(data_dir=tmp_path / "data", seed=1, database_urls={"scm": f"sqlite:///{elsewhere}"})
    ports = {"sales": free_port(), "scm": free_port()}

    with spawn_services(config, ["sales", "scm"], host="127.0.0.1", ports=ports, bridge_url=None) as services:
        assert services.urls == {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        pids = services.pids
        assert len({os.getpid(), *pids.values()}) == 3
        for name, url in services.urls.items():
            assert httpx.get(url + "/_sandbox/health").json() == {"status": "ok", "service": name}
        accounts = httpx.get(services.urls["sales"] + "/api/data/v9.2/accounts?$top=1", headers=SALES_HEADERS)
        customers = httpx.get(services.urls["scm"] + "/data/CustomersV3?$top=1&cross-company=true")
        assert len(accounts.json()["value"]) == 1 and len(customers.json()["value"]) == 1
        assert (tmp_path / "data" / "sales.sqlite").exists() and elsewhere.exists()
        assert not (tmp_path / "data" / "scm.sqlite").exists()

    assert all(process_gone(pid) for pid in pids.values())


@pytest.mark.live
def test_a_port_in_use_is_a_clear_error_and_leaves_no_child_running() -> None:
    """A port that cannot be bound fails the start naming the service and port, before any child runs; the
    port already bound for the other service is let go again."""
    sales_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        services = ServiceProcesses(
            StackConfig(memory=True), ["sales", "scm"], ports={"sales": sales_port, "scm": port}
        )
        with pytest.raises(ServiceStartError, match=f"scm: cannot listen on 127.0.0.1:{port}: .*in use"):
            services.start()

    assert services.pids == {}
    with socket.socket() as again:
        again.bind(("127.0.0.1", sales_port))


def test_reserve_names_each_childs_origin_before_it_starts() -> None:
    """The origins come from sockets bound here (any free port for 0), the same ones the children then serve
    on; reserving twice binds nothing new."""
    services = ServiceProcesses(StackConfig(memory=True), ["sales", "scm"], ports={"sales": 0})
    try:
        origins = services.reserve()
        assert set(origins) == {"sales", "scm"} and len(set(origins.values())) == 2
        for origin in origins.values():
            host, port = origin.removeprefix("http://").rsplit(":", 1)
            assert host == "127.0.0.1" and int(port) > 0
            with socket.create_connection((host, int(port)), timeout=5):
                pass  # the socket already listens, before any child accepts
        assert services.reserve() == origins
        assert services.pids == {}
    finally:
        services.stop()


@pytest.mark.live
def test_a_child_stops_by_itself_when_its_parent_goes_away() -> None:
    """Its stdin closing (the parent killed outright, say) ends a child cleanly: no orphan keeps the port."""
    with spawn_services(StackConfig(memory=True), ["sales"]) as services:
        child = services.children["sales"].process
        assert child.stdin is not None
        child.stdin.close()

        poll_until(lambda: child.poll() is not None, timeout=10, message="the child to exit")
        assert child.returncode == 0


def test_the_bridge_port_answers_503_in_the_bridge_shape_until_the_bridge_is_attached() -> None:
    """The bridge's port is bound before the mocks start (no free-port race); until the bridge is built, a live
    sync or a user reaching it gets a 503 with Retry-After, then the bridge itself answers."""
    import httpx
    from flask import Flask

    from leadtocash.stack import _StartingBridge

    gate = _StartingBridge()
    with httpx.Client(transport=httpx.WSGITransport(app=gate), base_url="http://bridge.sandbox") as client:
        early = client.get("/api/maps")
        assert early.status_code == 503 and early.headers["Retry-After"] == "1"
        assert early.json()["error"]["code"] == ""  # the code the bridge's own 503s carry
        assert early.json()["error"]["message"].startswith("The bridge is starting")
        app = Flask("stand-in")
        app.add_url_rule("/api/maps", "maps", lambda: {"value": []})
        gate.app = app
        assert client.get("/api/maps").json() == {"value": []}


@pytest.mark.live
@pytest.mark.parametrize("wire", ["http", "processes"])
def test_right_after_the_bridge_health_first_answers_200_every_shipped_map_is_running(wire: str) -> None:
    """Polled from the moment the stack starts (real servers on free ports), the bridge's health answers 503
    or nothing while its maps initialize; the first 200 comes only once every shipped map is Running."""
    import threading

    from leadtocash.stack import Serving, start_stack

    bridge = f"http://127.0.0.1:{free_port()}"
    started: dict[str, object] = {}

    def start() -> None:
        try:
            started["stack"] = start_stack(
                StackConfig(memory=True, seed=1),
                wire=wire,
                serve=Serving(ports={"bridge": int(bridge.rsplit(":", 1)[1])}),
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            started["error"] = exc

    thread = threading.Thread(target=start)
    thread.start()
    answers: list[int] = []

    def healthy() -> bool:
        assert "error" not in started, started.get("error")
        try:
            status = httpx.get(bridge + "/_sandbox/health", timeout=5.0).status_code
        except httpx.TransportError:
            return False
        answers.append(status)
        return status == 200

    try:
        poll_until(healthy, timeout=120, interval=0.02, message="the bridge's health answers 200")
        maps = httpx.get(bridge + "/api/maps", timeout=30.0).json()
        assert maps and {m["id"]: m["state"] for m in maps} == {m["id"]: "Running" for m in maps}
        assert set(answers[:-1]) <= {503}
    finally:
        thread.join(120)
        stack = started.get("stack")
        if stack is not None:
            stack.close()  # type: ignore[attr-defined]
