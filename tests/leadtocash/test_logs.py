"""Logs of a served stack: levels, text and JSON lines, no bare tracebacks (:mod:`leadtocash.logs`), and
``sandbox up --log-level info`` showing the requests and the sync of a write."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from leadtocash import cli
from leadtocash.logs import (
    ENVIRONMENT_VARIABLE,
    TRACEBACK_HINT,
    LineFormatter,
    configure_from_environment,
    configure_logging,
    parse_level,
)
from sandbox.logs import NOTICE, REQUEST_LOGGER
from sandbox.testing import poll_until
from tests.leadtocash.up_process import authenticated, start_up, stop


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put the root logger and the quieted libraries back as they were (configure_logging changes them)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quiet = {name: logging.getLogger(name).level for name in ("waitress", "werkzeug", "httpx", "sqlalchemy")}
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


def record(message: str = "hello %s", *args: Any, exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("bridge.sync", logging.INFO, __file__, 1, message, args or None, None)
    if exc is not None:
        try:
            raise exc
        except BaseException:
            made.exc_info = sys.exc_info()
    made.__dict__.update(extra)
    return made


def test_text_lines_have_time_level_and_message() -> None:
    line = LineFormatter("text").format(record("hello %s", "world"))
    assert line.endswith(" INFO    hello world")
    other = logging.LogRecord("waitress", logging.ERROR, __file__, 1, "boom", None, None)
    assert "ERROR   [waitress] boom" in LineFormatter("text").format(other)


def test_json_lines_carry_the_fields_of_the_record() -> None:
    line = LineFormatter("json").format(record("hello %s", "world", map="m", key="accountnumber=A", latency_ms=1.5))
    body = json.loads(line)
    assert body["level"] == "info" and body["logger"] == "bridge.sync" and body["message"] == "hello world"
    assert (body["map"], body["key"], body["latency_ms"]) == ("m", "accountnumber=A", 1.5)
    assert body["time"].endswith("Z")


def test_an_exception_is_one_line_with_class_message_and_hint_unless_debugging() -> None:
    failing = record("request failed", exc=ValueError("bad value"))
    line = LineFormatter("text").format(failing)
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith(f"request failed (ValueError: bad value; {TRACEBACK_HINT})")
    body = json.loads(LineFormatter("json").format(failing))
    assert body["exception"] == "ValueError: bad value" and "traceback" not in body
    assert "Traceback (most recent call last)" in LineFormatter("text", tracebacks=True).format(failing)


def test_unknown_levels_and_formats_are_refused() -> None:
    assert parse_level("NOTICE") == NOTICE
    with pytest.raises(ValueError, match="expected one of debug, info, notice"):
        parse_level("loud")
    with pytest.raises(ValueError, match="unknown log format"):
        LineFormatter("xml")


def test_configure_logging_levels_quiets_libraries_and_tells_children(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("notice", "json", stream)
    logging.getLogger(REQUEST_LOGGER).info("not shown")
    logging.getLogger("bridge.sync").log(NOTICE, "map x state: Paused")
    logging.getLogger("waitress").warning("Task queue depth is 3")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["map x state: Paused"]
    assert configure_from_environment()  # what a child process does with the inherited setting
    assert logging.getLogger().level == NOTICE


def test_an_unexpected_error_in_a_service_logs_one_line_without_traceback(
    sales_app: Any, restore_logging: None
) -> None:
    stream = io.StringIO()
    configure_logging("notice", "text", stream)

    @sales_app.get("/_boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    answer = sales_app.test_client().get("/_boom")
    assert answer.status_code == 500
    output = stream.getvalue()
    assert "unexpected error on GET /_boom (RuntimeError: kaput;" in output
    assert "Traceback" not in output and output.count("\n") == 1


def test_the_request_log_names_service_method_path_status_and_identity(
    sales_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    client = sales_app.test_client()
    client.get("/api/data/v9.2/accounts?$top=1", headers={"X-Sandbox-Identity": "alice"})
    client.post("/_sandbox/reset", headers={"Origin": "http://evil.example"})
    client.get("/_sandbox/health")  # probes are logged at debug only
    lines: Any = [r for r in caplog.records if r.name == REQUEST_LOGGER]
    assert [(r.method, r.path, r.status, r.identity) for r in lines] == [
        ("GET", "/api/data/v9.2/accounts", 200, "alice"),
        ("POST", "/_sandbox/reset", 403, "user"),
    ]
    assert lines[0].getMessage().startswith("sales GET /api/data/v9.2/accounts?$top=1 200 ")
    assert all(r.duration_ms >= 0 for r in lines)


def test_up_and_demo_refuse_an_unknown_log_level() -> None:
    for command in (["up"], ["demo"]):
        result = CliRunner().invoke(cli.main, [*command, "--log-level", "loud"])
        assert result.exit_code == 2 and "'loud' is not one of" in result.output


def test_up_refuses_an_allowed_origin_that_is_no_origin() -> None:
    result = CliRunner().invoke(cli.main, ["up", "--allowed-origin", "localhost:3000"])
    assert result.exit_code == 2 and "is not an origin" in result.output


class Lines:
    """Every line a process writes after start_up returned, collected by a thread."""

    def __init__(self, process: Any) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def having(self, *parts: str) -> str | None:
        return next((line for line in list(self.lines) if all(part in line for part in parts)), None)


@pytest.mark.live
def test_up_at_info_logs_the_request_and_the_sync_of_a_write_and_refuses_foreign_hosts_and_origins(
    tmp_path: Path,
) -> None:
    """One served stack (starting one costs seconds): JSON log lines for a write's request and its sync, a map
    state change at notice, and the edge checks over real sockets."""
    process, urls = start_up(
        tmp_path, "--memory", "--log-level", "info", "--log-format", "json", "--allowed-host", "sandbox.internal"
    )
    client = authenticated()  # auth is on: the well-known app's token
    try:
        output = Lines(process)
        scm = urls["scm"]
        answer = client.post(
            scm + "CustomersV3",
            json={
                "dataAreaId": "usmf",
                "CustomerAccount": "LOG-UP",
                "OrganizationName": "Logged",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
            timeout=60,
        )
        assert answer.status_code == 201, answer.text
        request_line = poll_until(
            lambda: output.having('"method": "POST"', '"path": "/data/CustomersV3"', '"status": 201'),
            timeout=30,
            message="no request line",
        )
        sync_line = poll_until(lambda: output.having('"event": "sync"', "LOG-UP"), timeout=30, message="no sync line")
        request = json.loads(request_line)
        assert (request["service"], request["status"], request["level"]) == ("scm", 201, "info")
        sync = json.loads(sync_line)
        assert (sync["map"], sync["direction"], sync["outcome"]) == ("customers-accounts", "to_sales", "synced")
        assert sync["key"] == "accountnumber=LOG-UP" and sync["latency_ms"] >= 0

        assert client.post(urls["bridge"] + "api/maps/customers-accounts/pause", json={}).status_code == 200
        notice = poll_until(lambda: output.having('"level": "notice"', "Paused"), timeout=30, message="no notice")
        assert json.loads(notice)["map"] == "customers-accounts"

        reset = scm.replace("/data/", "/_sandbox/reset")
        refused = httpx.post(
            reset, content="{}", headers={"Origin": "http://evil.example", "Content-Type": "text/plain"}
        )
        assert refused.status_code == 403 and "Cross-origin" in refused.json()["error"]["message"]
        assert httpx.get(scm + "CustomersV3?$top=1", headers={"Host": "evil.example"}).status_code == 421
        assert httpx.get(urls["bridge"] + "api/maps", headers={"Host": "evil.example"}).status_code == 421
        # an allowed host passes the Host check; authentication comes next (no token here: 401, not 421)
        allowed = httpx.get(scm + "CustomersV3?$top=1&cross-company=true", headers={"Host": "sandbox.internal:80"})
        assert allowed.status_code == 401 and "WWW-Authenticate" in allowed.headers
        for line in list(output.lines):
            json.loads(line)  # every line one JSON object
    finally:
        client.close()
        assert stop(process) == 0


def test_a_command_run_in_process_leaves_logging_as_it_found_it(restore_logging: None) -> None:
    """A test (or any caller) running `sandbox demo` through click must not keep its handler afterwards: later
    commands' output would carry the log lines of threads still running."""
    import click

    from leadtocash.edgecli import start_logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level)

    @click.command()
    def command() -> None:
        start_logging("info", "json")
        assert len(root.handlers) == len(before[0]) + 1 and root.level == logging.INFO
        logging.getLogger(REQUEST_LOGGER).info("inside")

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 0, result.output
    assert '"message": "inside"' in result.output
    assert (list(root.handlers), root.level) == before
    assert ENVIRONMENT_VARIABLE not in os.environ
