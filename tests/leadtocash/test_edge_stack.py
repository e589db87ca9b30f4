"""The stack's side of edge safety: what a served stack answers to and takes changes from, the bridge's port
before the bridge is built, and the warning for a non-loopback --host (:mod:`sandbox.websafety`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadtocash.edgecli import warn_if_exposed
from leadtocash.stack import Serving, StackConfig, _StartingBridge, _with_edge_options
from sandbox.runtime import ALLOWED_HOSTS_OPTION, ALLOWED_ORIGINS_OPTION
from sandbox.websafety import mark_served


def test_served_stack_answers_to_its_host_and_the_allowed_names_but_not_to_a_wildcard() -> None:
    assert Serving("10.1.2.3", allowed_hosts=("sandbox.internal",)).edge_hosts() == ["10.1.2.3", "sandbox.internal"]
    assert Serving("0.0.0.0").edge_hosts() == []


def test_served_stack_takes_changes_from_its_services_and_the_allowed_origins() -> None:
    origins = Serving(allowed_origins=("http://localhost:3000",)).edge_origins(["http://127.0.0.1:5103"])
    assert {"http://127.0.0.1:5103", "http://localhost:5103", "http://localhost:3000"} <= origins


def test_mocks_get_the_edge_settings_as_options_so_child_processes_have_them_too() -> None:
    serving = Serving("127.0.0.1", {"sales": 5101, "scm": 0}, allowed_hosts=("box",), allowed_origins=("http://a:1",))
    config = _with_edge_options(StackConfig(memory=True, options={"scm": {"x": 1}}), serving, "http://127.0.0.1:5103")
    for name in ("sales", "scm"):
        options = config.options[name]
        assert options[ALLOWED_HOSTS_OPTION] == ["127.0.0.1", "box"]
        assert {"http://127.0.0.1:5101", "http://localhost:5103", "http://a:1"} <= set(options[ALLOWED_ORIGINS_OPTION])
    assert config.options["scm"]["x"] == 1
    assert StackConfig.from_json(config.to_json(["sales"])).options["sales"][ALLOWED_HOSTS_OPTION] == [
        "127.0.0.1",
        "box",
    ]


def test_the_starting_bridge_port_misdirects_a_foreign_host_over_a_socket() -> None:
    """Before the bridge is built its port answers 503, but a rebound name gets the 421 the bridge gives."""
    gate: Any = mark_served(_StartingBridge(Serving("127.0.0.1", allowed_hosts=("box",))))
    with httpx.Client(transport=httpx.WSGITransport(app=gate), base_url="http://evil.example:5103") as client:
        answer = client.get("/api/maps")
        assert answer.status_code == 421
        assert answer.json()["error"]["code"] == "" and "evil.example" in answer.json()["error"]["message"]
        assert client.get("/api/maps", headers={"Host": "box:5103"}).status_code == 503
        assert client.get("/api/maps", headers={"Host": "localhost:5103"}).status_code == 503


@pytest.mark.parametrize(
    ("host", "warned"), [("127.0.0.1", False), ("::1", False), ("0.0.0.0", True), ("10.0.0.5", True)]
)
def test_a_non_loopback_host_warns_that_authentication_must_stay_on(
    host: str, warned: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    warn_if_exposed(host)
    err = capsys.readouterr().err
    assert ("keep authentication on" in err) is warned
    if warned:
        assert f"listening on {host}" in err
