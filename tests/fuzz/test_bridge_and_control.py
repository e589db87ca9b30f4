"""Property-based fuzzing of the bridge's admin API and of both mocks' control planes (``/_sandbox``):
never a 5xx, errors in the service's shape, a 405 with Allow."""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from leadtocash.stack import Stack
from tests.fuzz.strategies import ANY_METHOD, FUZZ, JSON_VALUE, TEXT, check_answer, deep_json, entity_body

MAP_IDS = st.sampled_from(["customers-accounts", "nope", "", "..", "%00"]) | TEXT.map(urllib.parse.quote)
BRIDGE_PATHS = st.one_of(
    st.sampled_from(["/api/maps", "/api/async", "/api/live", "/api/maps/run-all", "/_sandbox/health", "/metrics"]),
    st.builds(
        lambda map_id, tail: f"/api/maps/{map_id}{tail}",
        MAP_IDS,
        st.sampled_from(
            [
                "",
                "/pause",
                "/resume",
                "/activity",
                "/queued",
                "/catchup-errors",
                "/catchup-errors/retry",
                "/initial-sync",
                "/alerts",
                "/traces",
                "/x",
            ]
        ),
    ),
)
BRIDGE_QUERY = st.dictionaries(st.sampled_from(["limit", "key", "x"]), TEXT | st.integers().map(str), max_size=2)
LIVE_BODY = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["sales", "scm", "crm"]) | TEXT,
        "changes": st.lists(
            st.fixed_dictionaries(
                {
                    "table": st.sampled_from(["CustomerV3", "account", "x"]),
                    "operation": st.sampled_from(["create", "update", "delete", "x"]),
                },
                optional={"after": JSON_VALUE, "key": JSON_VALUE},
            ),
            max_size=2,
        )
        | JSON_VALUE,
    },
    optional={"related": JSON_VALUE},
).map(lambda d: json.dumps(d).encode())
ALERTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={"count": JSON_VALUE, "window_seconds": JSON_VALUE, "action": JSON_VALUE, "kind": JSON_VALUE},
    )
    | JSON_VALUE,
    max_size=3,
).map(lambda rules: json.dumps(rules).encode())


@FUZZ
@given(
    method=ANY_METHOD,
    path=BRIDGE_PATHS,
    query=BRIDGE_QUERY,
    body=st.one_of(LIVE_BODY, ALERTS, entity_body(["count", "kind"]), st.just(deep_json(5000))),
)
def test_the_bridge_api_answers_without_a_5xx(
    stack: Stack, method: str, path: str, query: dict[str, str], body: bytes
) -> None:
    """Any method on the bridge's routes (and near misses), with any query and body."""
    if path.endswith("/run-all") or (path.startswith("/api/maps/customers-accounts") and path.endswith("/resume")):
        method = "GET"  # an initial sync of every map per example would take the whole time budget
    url = path + ("?" + urllib.parse.urlencode(query) if query else "")
    response = stack.apps["bridge"].test_client().open(url, method=method, data=body, content_type="application/json")
    check_answer(response, "bridge", f"{method} {url} {body[:200]!r}")


CONTROL_PATHS = st.sampled_from(
    ["/health", "/info", "/snapshot", "/changes", "/journal", "/faults", "/faults/1", "/faults/nope", "/x", "", "/seed"]
)
CONTROL_QUERY = st.dictionaries(
    st.sampled_from(["after", "limit", "wait", "tables", "exclude_identity", "method", "path", "x"]),
    TEXT
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.sampled_from(["0.01", "nan", "inf", "(", "[a-"]),
    max_size=3,
)
FAULT_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "method": JSON_VALUE,
        "path": JSON_VALUE | st.just("^/nothing-matches$"),
        "status": st.integers(min_value=-5, max_value=700) | JSON_VALUE,
        "probability": JSON_VALUE,
        "latency_ms": st.integers(min_value=-5, max_value=5) | JSON_VALUE,
        "retry_after": JSON_VALUE,
        "count": JSON_VALUE,
        "drop": JSON_VALUE,
        "when": JSON_VALUE,
    },
).map(lambda d: json.dumps(d).encode())
SNAPSHOTS = st.fixed_dictionaries(
    {"format": st.sampled_from([1, 2, "1"]) | JSON_VALUE},
    optional={
        "service": JSON_VALUE,
        "tables": st.dictionaries(st.sampled_from(["accounts", "CustomersV3", "x"]) | TEXT, JSON_VALUE, max_size=2),
    },
).map(lambda d: json.dumps(d).encode())


@FUZZ
@given(
    service=st.sampled_from(["sales", "scm"]),
    method=ANY_METHOD,
    path=CONTROL_PATHS,
    query=CONTROL_QUERY,
    body=st.one_of(FAULT_SPECS, SNAPSHOTS, entity_body(["seed"]), st.just(deep_json(5000))),
)
def test_the_control_planes_answer_without_a_5xx(
    stack: Stack, service: str, method: str, path: str, query: dict[str, str], body: bytes
) -> None:
    """Any method on the control plane's paths, with any query and body, answers in the service's shape.
    A fault it accepts is removed again: an injected 5xx is what a fault is for."""
    if (
        path == "/seed"
        and method == "POST"
        and isinstance(_parsed(body), dict)
        and _is_int(_parsed(body).get("seed", 1))
    ):
        body = b'{"seed": "x"}'  # a real reseed costs a second per example
    if path == "/changes":
        query = {**query, "wait": "0"}  # a long poll would wait out its timeout
    client = stack.apps[service].test_client()
    url = f"/_sandbox{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    try:
        response = client.open(url, method=method, data=body, content_type="application/json")
        check_answer(response, "dataverse" if service == "sales" else "fno", f"{method} {url} {body[:200]!r}")
    finally:
        client.delete("/_sandbox/faults")


def _parsed(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
