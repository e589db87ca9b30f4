"""Limits and latency profiles: the built-in figures, files that override them, and one-line errors for bad files.

The figures of ``real`` are the published ones (docs/reference/limits.md: Dataverse service protection in section 1,
F&O's user-based limits in section 2, dual-write's live-sync limits in section 3).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sandbox.limits import (
    LATENCY_OPTION,
    LIMITS_OPTION,
    Distribution,
    LimitsError,
    ServiceLimits,
    load_latency_profile,
    load_profile,
    operation_of,
)
from sandbox.limits.latency import MAX_DELAY_MS, Latency


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_real_profile_carries_the_published_figures() -> None:
    """Dataverse: 6,000 requests, 1,200,000 ms of execution time and 52 concurrent requests per user over 300 s
    (PA ``api-limits``); dual-write: 1,000 records and 2 minutes per transaction (DW ``sync-limits``)."""
    profile = load_profile("real")
    sales = profile.for_service("sales")
    assert (sales.window_seconds, sales.requests, sales.execution_ms, sales.concurrent) == (300.0, 6000, 1_200_000, 52)
    assert profile.livesync.records == 1000 and profile.livesync.seconds == 120.0
    assert profile.for_service("scm").requests == 6000


def test_off_profile_sets_nothing_and_gives_no_options() -> None:
    """``off`` (every stack's default) installs nothing anywhere."""
    profile = load_profile("off")
    assert not profile.active
    assert profile.stack_options() == {}


def test_stack_options_round_trip_through_json() -> None:
    """The options travel to child processes as JSON and come back as the same limits."""
    options = json.loads(json.dumps(load_profile("real").stack_options()))
    assert set(options) == {"sales", "scm", "bridge"}
    assert ServiceLimits.from_dict(options["sales"][LIMITS_OPTION]) == load_profile("real").for_service("sales")


@pytest.mark.parametrize("spec", ["real", "off"])
def test_stack_options_round_trip_in_this_process(spec: str) -> None:
    """In-process stacks (`sandbox up`'s default wiring) hand the options over as they are, tuples included."""
    profile = load_profile(spec)
    for name, options in profile.stack_options().items():
        if name != "bridge":
            assert ServiceLimits.from_dict(options[LIMITS_OPTION]) == profile.for_service(name)


def test_a_toml_file_overrides_real_and_false_turns_a_limit_off(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "tiny.toml",
        "[sales]\nwindow_seconds = 10\nrequests = 10\nconcurrent = false\n[dualwrite]\nrecords = 5\n",
    )
    profile = load_profile(spec)
    sales = profile.for_service("sales")
    assert (sales.window_seconds, sales.requests, sales.concurrent, sales.execution_ms) == (10.0, 10, None, 1_200_000)
    assert profile.livesync.records == 5 and profile.livesync.seconds == 120.0
    assert profile.for_service("scm").requests == 6000  # untouched sections keep real's figures


def test_exempt_callers_come_from_the_file_and_survive_the_options(tmp_path: Path) -> None:
    spec = write(tmp_path, "e.toml", '[sales]\nrequests = 5\nexempt = ["dualwrite"]\n')
    sales = load_profile(spec).for_service("sales")
    assert sales.exempt == ("dualwrite",)
    options = json.loads(json.dumps(load_profile(spec).stack_options()))
    assert ServiceLimits.from_dict(options["sales"][LIMITS_OPTION]).exempt == ("dualwrite",)


def test_a_json_file_with_base_off_sets_only_what_it_names(tmp_path: Path) -> None:
    spec = write(tmp_path, "p.json", json.dumps({"base": "off", "scm": {"total_concurrent": 3}}))
    profile = load_profile(spec)
    assert profile.for_service("scm").total_concurrent == 3
    assert not profile.for_service("sales").active and not profile.livesync.active
    assert set(profile.stack_options()) == {"scm"}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("missing.toml", None, "no such file"),
        ("bad.toml", "[sales\n", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("list.json", "[1]", "must be an object"),
        ("s.toml", "[billing]\nrequests = 1\n", "unknown section(s) billing"),
        ("k.toml", "[sales]\nrequest = 1\n", "unknown setting(s) request"),
        ("n.toml", "[sales]\nrequests = -1\n", "'requests' must be above 0"),
        ("f.toml", "[sales]\nrequests = 1.5\n", "'requests' must be a whole number"),
        ("t.toml", '[sales]\nrequests = "many"\n', "'requests' must be a whole number"),
        ("w.toml", "[sales]\nwindow_seconds = false\n", "'window_seconds' cannot be turned off"),
        ("b.toml", 'base = "fast"\n', "'base' must be one of real, off"),
        ("sec.toml", "sales = 3\n", "[sales] must be a table"),
        ("e.toml", '[sales]\nexempt = "dualwrite"\n', "'exempt' must be a list of caller identities"),
    ],
)
def test_a_bad_limits_file_gives_one_line_naming_the_problem(
    tmp_path: Path, name: str, text: str | None, expected: str
) -> None:
    spec = str(tmp_path / name) if text is None else write(tmp_path, name, text)
    with pytest.raises(LimitsError) as caught:
        load_profile(spec)
    message = str(caught.value)
    assert expected in message and "\n" not in message


# ---- latency profiles -------------------------------------------------------------------------------------
def test_cloud_latency_profile_covers_every_operation_of_both_services() -> None:
    profile = load_latency_profile("cloud")
    for name in ("sales", "scm"):
        assert set(profile.services[name]) == {"read", "write", "batch", "metadata", "default"}
        assert all(d.p95_ms >= d.p50_ms > 0 for d in profile.services[name].values())
    assert set(profile.stack_options()) == {"sales", "scm"}
    assert load_latency_profile("none").stack_options() == {}


def test_a_latency_file_overrides_operations_and_sets_the_seed(tmp_path: Path) -> None:
    spec = write(tmp_path, "lat.toml", 'base = "none"\nseed = 7\n[scm]\nwrite = { fixed_ms = 40 }\n')
    profile = load_latency_profile(spec)
    assert profile.seed == 7 and set(profile.services) == {"scm"}
    assert profile.services["scm"]["write"] == Distribution(40.0, 40.0, 400.0)
    options = profile.stack_options()
    assert options["scm"][LATENCY_OPTION]["seed"] == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sales]\nread = 5\n", "must be a table like"),
        ("[sales]\nread = { p50_ms = 10 }\n", "give fixed_ms, or both p50_ms and p95_ms"),
        ("[sales]\nread = { p50_ms = 50, p95_ms = 10 }\n", "p95_ms (10) is below p50_ms (50)"),
        ("[sales]\nread = { fixed_ms = -1 }\n", "must be a number of milliseconds"),
        ("[sales]\nread = { fixed_ms = 5, p50_ms = 5, p95_ms = 6 }\n", "not both"),
        ("[sales]\nread = { fixed_ms = 5, max_ms = 1000000 }\n", f"at most {MAX_DELAY_MS:g}"),
        ("[sales]\nread = { fixed_ms = 5, jitter = 1 }\n", "unknown setting(s) jitter"),
        ("[sales]\nlist = { fixed_ms = 5 }\n", "unknown operation(s) list"),
        ("[bridge]\nread = { fixed_ms = 5 }\n", "unknown section(s) bridge"),
        ('seed = "x"\n', "'seed' must be a whole number"),
        ('base = "lan"\n', "'base' must be cloud or none"),
    ],
)
def test_a_bad_latency_file_gives_one_line_naming_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    spec = write(tmp_path, "lat.toml", text)
    with pytest.raises(LimitsError) as caught:
        load_latency_profile(spec)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/api/data/v9.2/accounts", "read"),
        ("PATCH", "/api/data/v9.2/accounts(1)", "write"),
        ("POST", "/api/data/v9.2/$batch", "batch"),
        ("GET", "/api/data/v9.2/$metadata", "metadata"),
        ("GET", "/api/data/v9.2/EntityDefinitions(LogicalName='account')", "metadata"),
        ("GET", "/Metadata/DataEntities", "metadata"),
        ("POST", "/data/CustomersV3", "write"),
    ],
)
def test_requests_are_classified_into_the_profile_operations(method: str, path: str, operation: str) -> None:
    assert operation_of(method, path) == operation


def test_a_seeded_lognormal_is_repeatable_bounded_and_centred_on_its_median() -> None:
    """The same seed gives the same delays; none exceeds ``max_ms``; about half fall below the p50 and about 95%
    below the p95 (the lognormal goes through both)."""
    dist = Distribution(100.0, 400.0, 2000.0)
    rng_a, rng_b = random.Random(11), random.Random(11)
    a = [dist.sample(rng_a) for _ in range(4000)]
    b = [dist.sample(rng_b) for _ in range(4000)]
    assert a == b
    assert max(a) <= 2000.0
    below_p50 = sum(v < 100.0 for v in a) / len(a)
    below_p95 = sum(v < 400.0 for v in a) / len(a)
    assert 0.45 < below_p50 < 0.55 and 0.93 < below_p95 < 0.97


def test_latency_sleeps_the_drawn_delay_through_the_injected_sleeper() -> None:
    slept: list[float] = []
    latency = Latency({"write": Distribution(40.0, 40.0, 400.0)}, seed=1, sleep=slept.append)
    assert latency.apply("POST", "/data/CustomersV3") == 40.0
    assert latency.apply("GET", "/data/CustomersV3") == 0.0  # no read and no default: no delay
    assert slept == [0.04]
