"""Ready means ready: the bridge's health answers 503 with what it waits for until its maps run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bridge.lifecycle import Lifecycle
from bridge.readiness import Startup, StartupError, readiness
from leadtocash.stack import wire_bridge
from sandbox.clients import ControlClient
from sandbox.testing import poll_until
from sandbox.wellknown import INTEGRATION_IDENTITY
from tests.golden import Golden

CUSTOMERS = "customers-accounts"


@dataclass
class Unstarted:
    """Seeded mocks and a bridge wired to them whose maps nobody started yet (as right after it serves)."""

    apps: dict[str, Flask]

    @property
    def runtime(self) -> Any:
        return self.apps["bridge"].extensions["bridge"]

    def health(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        response = self.apps["bridge"].test_client().get("/_sandbox/health")
        return response.status_code, response.get_json(), dict(response.headers)


@pytest.fixture
def unstarted(golden: Golden, tmp_path: Path) -> Iterator[Unstarted]:
    apps = {name: golden.service_app(name) for name in ("sales", "scm")}
    apps["bridge"] = wire_bridge(apps, bridge_database_url=f"sqlite:///{(tmp_path / 'bridge.sqlite').as_posix()}")
    apps["bridge"].extensions["bridge"].worker.poll_wait = 0.2
    yield Unstarted(apps)
    apps["bridge"].extensions["bridge"].close()
    for name in ("sales", "scm"):
        apps[name].extensions["sandbox"].set_live_sync(None)
        apps[name].extensions["sandbox"].db.dispose()


def test_a_bridge_whose_maps_nobody_starts_is_ready_at_once(unstarted: Unstarted) -> None:
    """Without a startup to wait for (bench, tests that run maps themselves) health is 200 from the start."""
    assert unstarted.health()[:2] == (200, {"status": "ok", "service": "bridge"})


def test_health_is_503_naming_each_map_until_the_startup_runs_them_all(
    unstarted: Unstarted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected to start its maps, the bridge answers 503 (Retry-After) listing every map not yet Running,
    with the state and initial-sync progress of the one initializing; 200 once every map runs."""
    runtime = unstarted.runtime
    map_ids = [m.id for m in runtime.maps]
    runtime.startup.expect()

    status, body, headers = unstarted.health()
    assert status == 503 and headers["Retry-After"] == "1"
    assert body["status"] == "starting" and [w["map"] for w in body["waiting_for"]] == map_ids
    assert {w["state"] for w in body["waiting_for"]} == {"Not running"}

    seen: list[tuple[int, dict[str, Any]]] = []
    original = runtime.lifecycle.initial._run

    def spy(table_map: Any, *args: Any, **kwargs: Any) -> Any:
        if table_map.id == CUSTOMERS:  # during the customers' initial sync
            seen.append(unstarted.health()[:2])
        return original(table_map, *args, **kwargs)

    monkeypatch.setattr(runtime.lifecycle.initial, "_run", spy)
    runtime.start_maps(master="scm")

    ((status, body),) = seen
    waiting = {w["map"]: w for w in body["waiting_for"]}
    assert status == 503 and body["status"] == "starting"
    assert list(waiting) == map_ids[map_ids.index(CUSTOMERS) :]  # the maps before it run already
    assert waiting[CUSTOMERS]["state"] == "Initializing" and "initial_sync_progress" in waiting[CUSTOMERS]
    assert unstarted.health()[:2] == (200, {"status": "ok", "service": "bridge"})
    assert {row["state"] for row in runtime.state.map_rows().values()} == {"Running"}


def test_a_map_whose_initial_sync_fails_ends_the_startup_and_health_reports_its_error(
    unstarted: Unstarted,
) -> None:
    """SCM refusing the bridge's reads: the startup stops at the first map with StartupError naming it, and
    health answers 503 ``failed`` with that map's state and error instead of waiting forever."""
    runtime = unstarted.runtime
    first = runtime.maps[0].id
    scm = ControlClient("http://scm.sandbox", transport=runtime.config.scm_transport)
    scm.add_fault(match_method="GET", match_identity=INTEGRATION_IDENTITY, status=500, message="reads are broken")
    runtime.startup.expect()

    with pytest.raises(StartupError) as raised:
        runtime.start_maps(master="scm")

    assert raised.value.failures.keys() == {first} and "reads are broken" in str(raised.value)
    status, body, _ = unstarted.health()
    assert status == 503 and body["status"] == "failed"
    assert body["errors"] == [{"map": first, "state": "Not running", "error": raised.value.failures[first]}]


def test_a_restarted_bridge_is_not_ready_until_it_recovered_an_interrupted_initial_sync(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A map a kill left Initializing is run again by the restarted bridge; health waits for it (503 naming
    it), then answers 200 with the map Running."""
    sandbox.runtime.state.update_map(CUSTOMERS, state="Initializing")
    release = threading.Event()
    original = Lifecycle.run

    def held(self: Lifecycle, map_id: str, **kwargs: Any) -> dict[str, Any]:
        release.wait(30)
        return original(self, map_id, **kwargs)

    monkeypatch.setattr(Lifecycle, "run", held)
    runtime = sandbox.restart_bridge()

    response = sandbox.bridge.get("/_sandbox/health")
    assert response.status_code == 503
    assert response.get_json()["waiting_for"] == [{"map": CUSTOMERS, "state": "Initializing"}]
    release.set()
    poll_until(lambda: sandbox.bridge.get("/_sandbox/health").status_code == 200, message="health 200")
    assert runtime.state.map_row(CUSTOMERS)["state"] == "Running"


def test_a_recovery_that_fails_is_reported_by_health(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the restarted bridge cannot finish an interrupted initial sync, health says which map and why."""
    sandbox.runtime.state.update_map(CUSTOMERS, state="Initializing")

    def broken(self: Lifecycle, map_id: str, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("SCM is gone")

    monkeypatch.setattr(Lifecycle, "run", broken)
    sandbox.restart_bridge()

    def failed() -> dict[str, Any] | None:
        body = sandbox.bridge.get("/_sandbox/health").get_json()
        return body if body["status"] == "failed" else None

    body = poll_until(failed, message="health reports the failed recovery")
    assert body["errors"][0]["map"] == CUSTOMERS and "SCM is gone" in body["errors"][0]["error"]


def test_readiness_lists_only_what_the_startup_still_waits_for() -> None:
    """The pure rule: pending waits for every map; starting for its maps not Running; recovering maps even
    when Running; failures make it ``failed``; otherwise ready."""
    maps = ["a", "b", "c"]
    running = {m: {"state": "Running"} for m in maps}
    startup = Startup()
    assert readiness(startup, maps, running).ready

    startup.expect()
    assert [w["map"] for w in readiness(startup, maps, {}).body["waiting_for"]] == maps

    startup.begin(["b", "c"])
    states = {"a": {"state": "Paused"}, "b": {"state": "Running"}, "c": {"state": "Initializing"}}
    pending = readiness(startup, maps, states)
    assert not pending.ready and pending.status_code == 503
    assert pending.body["waiting_for"] == [{"map": "c", "state": "Initializing"}]

    startup.finish()
    startup.recover({"a"})
    assert [w["map"] for w in readiness(startup, maps, running).body["waiting_for"]] == ["a"]
    startup.recovered("a")
    assert readiness(startup, maps, running).ready

    startup.recovered("b", "boom")
    failed = readiness(startup, maps, running)
    assert failed.body["status"] == "failed" and failed.body["errors"] == [
        {"map": "b", "state": "Running", "error": "boom"}
    ]
