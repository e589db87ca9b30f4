"""Tests of fault injection (sandbox/faults.py): spec validation, matching, and the request hook."""

from __future__ import annotations

import time

import flask
import httpx
import pytest

from sandbox.errors import BadRequest, SandboxError
from sandbox.faults import DroppedConnection, FaultRegistry, install_fault_hook, parse_fault
from sandbox.wellknown import INTEGRATION_IDENTITY


def render_error(err: SandboxError) -> flask.Response:
    """The error body shape the tests pin: ``{"error": {"code", "message"}}`` with the error's status."""
    response = flask.jsonify({"error": {"code": err.code, "message": err.message}})
    response.status_code = err.status
    return response


class FaultyApp:
    """A tiny service with one data route and a control-plane route, fault hook installed."""

    def __init__(self) -> None:
        self.registry = FaultRegistry(seed=42)
        self.handled = 0
        self.app = flask.Flask(__name__)

        @self.app.route("/api/things", methods=["GET", "POST"])
        def things() -> flask.Response:
            self.handled += 1
            return flask.jsonify({"value": [1, 2]})

        @self.app.route("/_sandbox/health")
        def health() -> flask.Response:
            return flask.jsonify({"status": "ok"})

        install_fault_hook(self.app, self.registry, render_error)
        self.client = self.app.test_client()


@pytest.fixture
def service() -> FaultyApp:
    return FaultyApp()


# ---- validation -------------------------------------------------------------------------------------
def test_spec_defaults_are_unlimited_certain_503() -> None:
    """An empty spec matches everything, always, forever, with 503."""
    fault = parse_fault({})
    assert (fault.status, fault.probability, fault.latency_ms, fault.times, fault.drop) == (503, 1.0, 0, None, False)
    assert fault.retry_after is None and fault.when == "before"
    assert len(fault.id) == 8


def test_nested_match_object_is_accepted_and_method_is_uppercased() -> None:
    """``{"match": {"method", "path"}}`` is the same as top-level method/path."""
    fault = parse_fault({"match": {"method": "post", "path": "^/api/"}})
    assert fault.method == "POST" and fault.path == "^/api/"
    assert fault.to_dict()["match"] == {"method": "POST", "path": "^/api/", "identity": None}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"status": 99}, "'status'"),
        ({"status": 600}, "'status'"),
        ({"status": "503"}, "'status'"),
        ({"status": True}, "'status'"),
        ({"probability": 1.5}, "'probability'"),
        ({"probability": -0.1}, "'probability'"),
        ({"latency_ms": 60001}, "'latency_ms'"),
        ({"latency_ms": -1}, "'latency_ms'"),
        ({"path": "(unclosed"}, "regular expression"),
        ({"method": "FETCH"}, "'method'"),
        ({"method": []}, "'method'"),
        ({"method": ["POST", 7]}, "'method'"),
        ({"identity": ""}, "'identity'"),
        ({"identity": 5}, "'identity'"),
        ({"times": 0}, "'times'"),
        ({"retry_after": -3}, "'retry_after'"),
        ({"drop": "yes"}, "'drop'"),
        ({"when": "during"}, "'when'"),
        ({"stauts": 500}, "Unknown fault field"),
        ({"match": {"host": "x"}}, "'match'"),
        ({"path": "a", "match": {"path": "b"}}, "both"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_spec_is_refused_with_a_message_naming_the_problem(spec: object, words: str) -> None:
    """Each bad field gives a BadRequest whose message names it."""
    with pytest.raises(BadRequest) as caught:
        FaultRegistry().add(spec)  # type: ignore[arg-type]
    assert words in caught.value.message


# ---- matching ---------------------------------------------------------------------------------------
def test_fault_matches_by_method_and_path_regex() -> None:
    """Method is exact, path is searched with the regex; anything else does not match."""
    registry = FaultRegistry()
    fault = registry.add({"method": "POST", "path": r"/accounts(\(|$)"})
    assert registry.match("POST", "/api/data/v9.2/accounts").id == fault.id
    assert registry.match("post", "/api/data/v9.2/accounts(1)").id == fault.id
    assert registry.match("GET", "/api/data/v9.2/accounts") is None
    assert registry.match("POST", "/api/data/v9.2/contacts") is None


def test_fault_matches_a_list_of_methods_and_the_callers_identity() -> None:
    """``method`` may list several methods; ``identity`` matches only that caller (None: anyone)."""
    registry = FaultRegistry()
    fault = registry.add({"method": ["post", "PATCH"], "identity": INTEGRATION_IDENTITY, "times": 5})
    assert fault.to_dict()["match"] == {"method": ["POST", "PATCH"], "path": None, "identity": INTEGRATION_IDENTITY}
    assert registry.match("PATCH", "/api/data/v9.2/accounts(1)", INTEGRATION_IDENTITY).id == fault.id
    assert registry.match("POST", "/api/data/v9.2/$batch", INTEGRATION_IDENTITY).id == fault.id
    assert registry.match("GET", "/api/data/v9.2/accounts", INTEGRATION_IDENTITY) is None
    assert registry.match("POST", "/api/data/v9.2/accounts", "user") is None
    assert registry.match("POST", "/api/data/v9.2/accounts") is None


def test_times_counts_down_and_the_spent_fault_disappears() -> None:
    """A fault with ``times=2`` fires twice, then is gone; ``fired`` counts the firings."""
    registry = FaultRegistry()
    fault = registry.add({"times": 2})
    first = registry.match("GET", "/x")
    assert first is not None and first.times == 1 and first.fired == 1
    assert registry.match("GET", "/x") is not None
    assert registry.match("GET", "/x") is None
    assert registry.get(fault.id) is None and registry.list() == []


def test_first_added_matching_fault_wins() -> None:
    """Faults are tried in the order they were added."""
    registry = FaultRegistry()
    first = registry.add({"path": "/a", "status": 500})
    registry.add({"status": 503})
    assert registry.match("GET", "/a").id == first.id
    assert registry.match("GET", "/b").status == 503


def test_probability_rolls_are_deterministic_for_a_seed() -> None:
    """Two registries with the same seed fire on the same requests; roughly ``probability`` of them."""

    def pattern(seed: int) -> list[bool]:
        registry = FaultRegistry(seed=seed)
        registry.add({"probability": 0.3})
        return [registry.match("GET", "/x") is not None for _ in range(400)]

    assert pattern(7) == pattern(7)
    assert 60 <= sum(pattern(7)) <= 180


def test_probability_zero_never_fires_and_a_missed_roll_falls_through() -> None:
    """A fault that loses its roll lets the next matching fault fire."""
    registry = FaultRegistry(seed=1)
    registry.add({"probability": 0.0, "status": 500})
    fallback = registry.add({"status": 502})
    assert all(registry.match("GET", "/x").id == fallback.id for _ in range(50))


def test_remove_and_clear() -> None:
    """``remove`` reports whether the id existed; ``clear`` drops everything."""
    registry = FaultRegistry()
    fault = registry.add({})
    registry.add({})
    assert registry.remove(fault.id) is True
    assert registry.remove(fault.id) is False
    assert len(registry) == 1
    registry.clear()
    assert len(registry) == 0


# ---- the hook ---------------------------------------------------------------------------------------
def test_error_fault_answers_with_the_service_error_body(service: FaultyApp) -> None:
    """A 503 fault short-circuits the handler and answers in the service's error shape."""
    service.registry.add({"path": "^/api/things$", "message": "maintenance"})
    response = service.client.get("/api/things")
    assert response.status_code == 503
    assert response.get_json()["error"]["message"] == "maintenance"
    assert service.handled == 0


def test_429_fault_carries_a_default_retry_after(service: FaultyApp) -> None:
    """A 429 without ``retry_after`` says ``Retry-After: 5``."""
    service.registry.add({"status": 429})
    response = service.client.get("/api/things")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert "Try again in 5 seconds" in response.get_json()["error"]["message"]


def test_429_fault_carries_the_given_retry_after(service: FaultyApp) -> None:
    """``retry_after`` becomes the ``Retry-After`` header."""
    service.registry.add({"status": 429, "retry_after": 2})
    assert service.client.get("/api/things").headers["Retry-After"] == "2"


def test_503_fault_has_no_retry_after_unless_asked(service: FaultyApp) -> None:
    """Only 429 gets a default ``Retry-After``."""
    service.registry.add({"times": 1})
    assert "Retry-After" not in service.client.get("/api/things").headers
    service.registry.add({"retry_after": 1})
    assert service.client.get("/api/things").headers["Retry-After"] == "1"


def test_latency_only_fault_delays_then_serves_normally(service: FaultyApp) -> None:
    """A status-200 fault with latency lets the request through after the delay."""
    service.registry.add({"status": 200, "latency_ms": 150})
    started = time.monotonic()
    response = service.client.get("/api/things")
    assert time.monotonic() - started >= 0.14
    assert response.status_code == 200 and service.handled == 1


def test_fault_only_fires_on_its_method(service: FaultyApp) -> None:
    """A POST-only fault leaves GETs alone."""
    service.registry.add({"method": "POST", "status": 500})
    assert service.client.get("/api/things").status_code == 200
    assert service.client.post("/api/things").status_code == 500


def test_identity_fault_fires_only_for_that_callers_requests(service: FaultyApp) -> None:
    """The hook reads the caller from ``X-Sandbox-Identity``."""
    service.registry.add({"identity": INTEGRATION_IDENTITY, "status": 500})
    assert service.client.post("/api/things").status_code == 200
    assert service.client.post("/api/things", headers={"X-Sandbox-Identity": INTEGRATION_IDENTITY}).status_code == 500


def test_control_plane_paths_are_never_faulted(service: FaultyApp) -> None:
    """``/_sandbox/...`` stays reachable under a catch-all fault, so faults can be removed."""
    service.registry.add({"status": 500})
    assert service.client.get("/_sandbox/health").status_code == 200
    assert service.client.get("/api/things").status_code == 500


def test_after_fault_runs_the_handler_then_replaces_the_response(service: FaultyApp) -> None:
    """``when="after"``: the write happens but the caller sees the error."""
    service.registry.add({"status": 504, "when": "after"})
    response = service.client.post("/api/things")
    assert response.status_code == 504
    assert service.handled == 1


def test_drop_fault_surfaces_as_a_transport_error_in_process(service: FaultyApp) -> None:
    """Over ``httpx.WSGITransport`` a dropped connection raises an ``httpx.TransportError`` subclass."""
    service.registry.add({"drop": True, "times": 1})
    with httpx.Client(transport=httpx.WSGITransport(app=service.app), base_url="http://svc") as client:
        with pytest.raises(httpx.TransportError) as caught:
            client.get("/api/things")
        assert isinstance(caught.value, DroppedConnection)
        assert client.get("/api/things").status_code == 200
    assert service.handled == 1  # the dropped request never reached the handler


def test_drop_after_fault_handles_the_request_then_drops(service: FaultyApp) -> None:
    """``drop`` with ``when="after"``: the handler ran, the caller lost the answer."""
    service.registry.add({"drop": True, "when": "after"})
    with httpx.Client(transport=httpx.WSGITransport(app=service.app), base_url="http://svc") as client:
        with pytest.raises(DroppedConnection):
            client.post("/api/things")
    assert service.handled == 1
