"""The bridge's HTTP surface answers bad input with a clear 400 in its JSON error shape."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"source": "crm", "changes": []}',
        b'{"source": "scm", "changes": "x"}',
        b'{"source": "scm", "changes": [{"table": "Nope", "operation": "create", "after": {}}]}',
        b'{"source": "scm", "changes": [{"table": "CustomerV3", "operation": "merge", "after": {}}]}',
        b'{"source": "sales", "changes": [{"table": "account", "operation": "update", "after": 5}]}',
        b'{"source": "sales", "changes": [], "related": []}',
    ],
)
def test_live_sync_endpoint_refuses_malformed_payloads(sandbox: Any, body: bytes) -> None:
    """A service that posts a malformed transaction gets a 400 naming the problem, never a 500."""
    response = sandbox.bridge.post("/api/live", data=body, content_type="application/json")
    assert response.status_code == 400, response.data
    assert set(response.get_json()) == {"error"} and response.get_json()["error"]["message"]


def test_alert_rules_need_a_json_list(sandbox: Any) -> None:
    """Malformed alert rules are a 400, and a well-formed list is accepted."""
    bad = sandbox.bridge.put("/api/maps/customers-accounts/alerts", data=b"{oops")
    assert bad.status_code == 400 and "JSON" in bad.get_json()["error"]["message"]
    good = sandbox.bridge.put(
        "/api/maps/customers-accounts/alerts", json=[{"count": 3, "window_seconds": 60, "action": "pause"}]
    )
    assert good.status_code == 200 and good.get_json()[0]["count"] == 3


@pytest.mark.parametrize("kind", ["sometimes", "", "ANY", 3, None, ["any"]])
def test_alert_rules_of_an_unknown_kind_are_refused(sandbox: Any, kind: Any) -> None:
    """A rule whose kind the bridge never counts would be stored and never fire: 400 naming the kinds, and
    the rules already set stay as they were."""
    url = "/api/maps/customers-accounts/alerts"
    assert sandbox.bridge.put(url, json=[{"count": 2, "window_seconds": 60, "kind": "network"}]).status_code == 200
    rules = [{"count": 3, "window_seconds": 60, "action": "pause"}, {"count": 1, "window_seconds": 5, "kind": kind}]
    response = sandbox.bridge.put(url, json=rules)
    assert response.status_code == 400, response.data
    assert set(response.get_json()) == {"error"}
    assert "any, application, network" in response.get_json()["error"]["message"]
    assert [rule.kind for rule in sandbox.runtime.lifecycle.runtime["customers-accounts"].alerts] == ["network"]


@pytest.mark.parametrize("kind", ["any", "application", "network"])
def test_alert_rules_of_each_known_kind_are_stored(sandbox: Any, kind: str) -> None:
    response = sandbox.bridge.put(
        "/api/maps/customers-accounts/alerts", json=[{"count": 1, "window_seconds": 5, "kind": kind}]
    )
    assert response.status_code == 200 and response.get_json()[0]["kind"] == kind


@pytest.mark.parametrize("path", ["/api/live", "/api/maps/customers-accounts/alerts"])
@pytest.mark.parametrize("depth", [101, 1000, 5000])
def test_deeply_nested_json_is_a_400(sandbox: Any, path: str, depth: int) -> None:
    """JSON nested deeper than a request body may be (100 levels) is refused as malformed in the bridge's
    error shape; beyond 1,024 levels it was a 500 RecursionError."""
    body = b"[" * depth + b"]" * depth if path.endswith("alerts") else b'{"a":' * depth + b"1" + b"}" * depth
    response = sandbox.bridge.open(path, method="PUT" if path.endswith("alerts") else "POST", data=body)
    assert response.status_code == 400, response.data
    assert set(response.get_json()) == {"error"} and "nested deeper" in response.get_json()["error"]["message"]


def test_unknown_map_is_a_404(sandbox: Any) -> None:
    """Actions on a map that does not exist answer 404."""
    assert sandbox.bridge.post("/api/maps/no-such-map/pause").status_code == 404


def test_an_unreachable_service_is_a_503_and_the_map_stays_not_running(tmp_path: Any) -> None:
    """A run whose initial sync cannot reach Sales or SCM answers 503 in the bridge's error shape (not a
    500), says which error, and leaves the map Not running."""
    from bridge.app import BridgeConfig, create_app
    from mock_sales.schema import build_model as build_sales_model
    from mock_scm.schema import build_model as build_scm_model
    from sandbox.server import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    app = create_app(
        BridgeConfig(
            sales_model=build_sales_model(),
            scm_model=build_scm_model(),
            sales_url=nowhere,
            scm_url=nowhere,
            start_worker=False,
            database_url=f"sqlite:///{(tmp_path / 'bridge.sqlite').as_posix()}",
        )
    )
    try:
        response = app.test_client().post("/api/maps/legal-entities/run", json={"initial_sync": True})
        assert response.status_code == 503, response.data
        assert response.headers["Retry-After"] == "5"
        assert "did not answer" in response.get_json()["error"]["message"]
        assert app.test_client().get("/api/maps/legal-entities").get_json()["state"] == "Not running"
    finally:
        app.extensions["bridge"].close()


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/maps"), ("DELETE", "/api/live"), ("TRACE", "/")])
def test_a_method_the_route_does_not_take_is_405_with_allow(sandbox: Any, method: str, path: str) -> None:
    """The bridge's 405s carry the Allow header (RFC 9110, section 15.5.6) in its JSON error shape."""
    response = sandbox.bridge.open(path, method=method)
    assert response.status_code == 405 and set(response.get_json()) == {"error"}
    assert method not in response.headers["Allow"] and response.headers["Allow"]
