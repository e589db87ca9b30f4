"""``--limits`` and ``--latency-profile`` (leadtocash/limitscli.py): what they put in a stack's configuration reaches
each service, also through the JSON a child process is started with (``--wire processes``, ``--workers N``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from leadtocash.cli import main
from leadtocash.limitscli import limits_line, with_limits
from leadtocash.stack import StackConfig, factory
from sandbox.limits import LATENCY_OPTION, LIMITS_OPTION, load_latency_profile, load_profile, throttle_of


def test_limits_and_latency_reach_a_service_built_in_a_child_process(tmp_path: Path) -> None:
    """The options survive ``StackConfig.to_json``/``from_json`` (how a child process gets its configuration),
    and the service built from them throttles with the profile's figures and delays with its distributions."""
    spec = tmp_path / "tiny.toml"
    spec.write_text("[sales]\nwindow_seconds = 10\nrequests = 10\n")
    config = with_limits(
        StackConfig(memory=True, seed=None, options={"sales": {"other": 1}}),
        load_profile(str(spec)),
        load_latency_profile("cloud"),
        latency_seed=5,
    )
    child = StackConfig.from_json(config.to_json(["sales"]))
    assert child.options["sales"]["other"] == 1  # what was there stays
    assert child.options["sales"][LATENCY_OPTION]["seed"] == 5
    app = factory("sales")(child.service_config("sales"))
    try:
        throttle = throttle_of(app)
        assert throttle is not None and (throttle.limits.requests, throttle.limits.window_seconds) == (10, 10.0)
        assert app.extensions["sandbox_latency"].operations["read"].p50_ms == 60.0
    finally:
        app.extensions["sandbox"].db.dispose()
    assert config.options["bridge"][LIMITS_OPTION] == {"records": 1000, "seconds": 120.0}


def test_the_defaults_change_nothing() -> None:
    config = with_limits(StackConfig(), load_profile("off"), load_latency_profile("none"))
    assert config.options == {}
    assert limits_line(load_profile("off"), load_latency_profile("none")) is None
    assert limits_line(load_profile("real"), load_latency_profile("cloud")) == "limits real, latency profile cloud"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limits", "nosuch.toml"], "Invalid value for --limits: limits profile 'nosuch.toml': no such file"),
        (["--latency-profile", "lan"], "Invalid value for --latency-profile: latency profile 'lan': no such file"),
    ],
)
def test_up_refuses_a_bad_profile_in_one_line_before_starting_anything(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, ["up", "--memory", *args])
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output
