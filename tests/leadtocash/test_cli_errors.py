"""Mistakes a user makes with the ``sandbox`` command: each is one line saying what, where and what to do, with
exit code 1 (setup) or 2 (usage), never a traceback; checked before anything starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from leadtocash.cli import main
from sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def error_line(result: Result) -> str:
    """The one ``Error:`` line of a failed command (and proof that there is no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_up_with_a_busy_port_names_the_service_the_port_and_the_option_to_change(busy_port: int) -> None:
    """The port check runs before any service starts: the bridge's port taken -> exit 1 naming it."""
    result = invoke("up", "--memory", "--sales-port", "0", "--scm-port", "0", "--bridge-port", str(busy_port))

    assert result.exit_code == 1
    line = error_line(result)
    assert f"the bridge cannot listen on 127.0.0.1:{busy_port}" in line and "already in use" in line
    assert "--bridge-port" in line


def test_up_with_one_port_for_two_services_is_a_usage_error() -> None:
    port = str(free_port())
    result = invoke("up", "--memory", "--sales-port", port, "--scm-port", port, "--bridge-port", "0")

    assert result.exit_code == 2
    assert f"--sales-port and --scm-port are both {port}" in error_line(result)


def test_up_with_a_data_dir_inside_a_file_says_which_part_is_not_a_folder(tmp_path: Path) -> None:
    """``--data-dir /dev/null/x``: the part that is a file is named, with what to pass instead."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = invoke("up", "--data-dir", str(blocker / "x"), "--sales-port", "0", "--scm-port", "0")

    assert result.exit_code == 1
    line = error_line(result)
    assert f"{blocker} is not a folder" in line and "--data-dir .sandbox" in line and "--memory" in line


def test_up_with_a_data_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = invoke("up", "--data-dir", str(blocker), "--sales-port", "0", "--scm-port", "0")

    assert result.exit_code == 1 and "not a folder" in error_line(result)


def test_up_with_a_sqlite_url_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = invoke("up", "--memory", "--database-url", f"sales=sqlite:///{missing}/sales.sqlite")

    assert result.exit_code == 1
    line = error_line(result)
    assert f"the folder {missing} does not exist" in line and "--database-url sales=" in line


def test_up_with_a_sqlite_file_that_is_not_a_database_fails_in_one_line(tmp_path: Path) -> None:
    """A file that exists but is no SQLite database is found before anything starts: one line naming the file."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database " * 200)
    result = invoke(
        "up",
        "--memory",
        "--database-url",
        f"sales=sqlite:///{garbage}",
        "--sales-port",
        "0",
        "--scm-port",
        "0",
        "--bridge-port",
        "0",
    )

    assert result.exit_code == 1
    line = error_line(result)
    assert "file is not a database" in line and f"--database-url sales=sqlite:///{garbage}" in line
    assert f"{garbage} is not a SQLite database" in line and "move the file away" in line
    assert garbage.read_bytes() == b"not a database " * 200  # looked at, never changed


def test_up_with_a_data_folder_file_that_is_not_a_database_names_it(tmp_path: Path) -> None:
    """The data folder's ``scm.sqlite`` overwritten by something else: the line names that file; an empty
    file, which SQLite takes as a new database, is no mistake."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "scm.sqlite").write_bytes(b"PK\x03\x04 a zip, say " * 100)
    (data / "sales.sqlite").touch()

    ports = ("--sales-port", "0", "--scm-port", "0", "--bridge-port", "0", "--identity-port", "0")
    result = invoke("up", "--data-dir", str(data), *ports)

    assert result.exit_code == 1
    line = error_line(result)
    assert f"--data-dir {data}: {data / 'scm.sqlite'} is not a SQLite database" in line
    assert "--memory" in line and "sales.sqlite" not in line


def test_up_with_postgresql_but_no_driver_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver is looked for before anything starts; the password stays off the screen."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    result = invoke("up", "--memory", "--database-url", "sales=postgresql+psycopg://me:s3cret@127.0.0.1/sales")

    assert result.exit_code == 1
    line = error_line(result)
    assert "the driver 'psycopg' is not installed" in line and ".[postgres]" in line
    assert "s3cret" not in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [("nonsense", "not a database URL"), ("oracle9://x/y", "unknown database kind 'oracle9'")],
)
def test_up_with_an_unreadable_database_url_says_what_a_url_looks_like(url: str, expected: str) -> None:
    result = invoke("up", "--memory", "--database-url", f"scm={url}")

    assert result.exit_code == 1
    line = error_line(result)
    assert expected in line and "sqlite:///" in line


def test_bench_checks_its_database_urls_the_same_way(tmp_path: Path) -> None:
    result = invoke("bench", "--database-url", f"bridge=sqlite:///{tmp_path}/missing/bridge.sqlite")

    assert result.exit_code == 1 and "does not exist" in error_line(result)


def test_seed_with_no_stack_running_says_to_start_one() -> None:
    port = free_port()  # nothing listens there
    result = invoke("seed", "--scm-url", f"http://127.0.0.1:{port}", "--accounts", "1")

    assert result.exit_code == 1
    line = error_line(result)
    assert f"cannot reach mock SCM at http://127.0.0.1:{port}" in line and "sandbox up" in line
    assert "--scm-url" in line


def test_seed_with_no_stack_running_prints_no_traceback_from_the_real_command() -> None:
    """The installed command as a user runs it: one line on stderr, exit 1."""
    result = subprocess.run(
        [sys.executable, "-m", "leadtocash.cli", "seed", "--scm-url", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: cannot reach mock SCM"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_keep_with_a_busy_port_fails_before_the_journey_runs(busy_port: int) -> None:
    """The ports are checked first: no step of the journey runs, the busy one is named."""
    result = invoke("demo", "--keep", "--sales-port", str(busy_port), "--scm-port", "0", "--bridge-port", "0")

    assert result.exit_code == 1
    assert "Lead to cash, step by step" not in result.output and "Starting" not in result.output
    line = error_line(result)
    assert f"mock Sales cannot listen on 127.0.0.1:{busy_port}" in line and "--sales-port" in line


def test_a_scenario_file_that_does_not_import_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken_scenario.py"
    broken.write_text("def run(ctx:\n")

    result = invoke("scenario", "run", str(broken))

    assert result.exit_code == 1
    line = error_line(result)
    assert f"cannot load scenarios from {broken}: SyntaxError" in line


def test_a_port_taken_after_the_check_is_still_one_line_with_advice() -> None:
    """The start itself failing (a port taken between the check and the start, a child that cannot listen)
    gives the service's own reason and what to do, in one line."""
    from leadtocash.cli import _start_failure
    from leadtocash.stack import ServiceStartError

    error = _start_failure(ServiceStartError("scm: cannot listen on 127.0.0.1:5102: [Errno 98] Address already in use"))

    assert error.exit_code == 1 and "\n" not in error.message
    assert error.message.startswith("scm: cannot listen on 127.0.0.1:5102") and "--scm-port" in error.message
