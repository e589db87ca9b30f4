"""`sandbox scenario list|run` as a user drives it: the step table, the JSON and JUnit files, exit codes, and
scenario files of one's own.

Most runs use scenario files that never call a service, pointed at URLs where nothing listens: the runner
then builds no stack, so these tests are about the runner and its reports alone. The shipped example file
runs for real, in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from leadtocash.cli import main
from scenarios.registry import load_builtin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "scenarios" / "examples" / "my_scenario.py"
NOWHERE = ["--sales-url", "http://127.0.0.1:9", "--scm-url", "http://127.0.0.1:9"]

PASSING = """
from scenarios import scenario

@scenario("runner-check-passes", "Two steps that pass")
def run(ctx):
    with ctx.step("First step"):
        ctx.check(True, "fine")
    with ctx.step("Second step"):
        ctx.note("Second step", "Sales", "account", "A-1", "Customer", 10)
"""

FAILING = """
from scenarios import scenario

@scenario("runner-check-fails", "The second step fails with both records")
def run(ctx):
    with ctx.step("A step that passes"):
        pass
    with ctx.step("A step that fails"):
        ctx.check(False, "the names differ", sales={"name": "Alpha"}, scm={"OrganizationName": "Beta"})
    with ctx.step("A step never reached"):
        pass
"""

CRASHING = """
from scenarios import scenario

@scenario("runner-check-crashes", "A step raises an unexpected exception")
def run(ctx):
    with ctx.step("A step that crashes"):
        raise RuntimeError("boom in the scenario")
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Scenario files of one's own: one passing, one failing, one crashing."""
    out = {}
    for name, text in (("passing", PASSING), ("failing", FAILING), ("crashing", CRASHING)):
        out[name] = tmp_path / f"{name}.py"
        out[name].write_text(text, encoding="utf-8")
    return out


def cli(*args: str) -> Result:
    """``sandbox scenario <args>`` in this process."""
    return CliRunner().invoke(main, ["scenario", *args], catch_exceptions=False)


def run(*args: str) -> Result:
    """``sandbox scenario run <args>`` in this process."""
    return cli("run", *args)


def test_scenario_list_prints_one_line_per_registered_scenario_with_its_description() -> None:
    """Every registered scenario is one line: its name, then its description."""
    registry = load_builtin()
    result = cli("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(registry)
    for name, item in registry.items():
        assert any(line.split()[0] == name and line.endswith(item.description) for line in lines), name


def test_passing_file_prints_the_step_table_and_exits_0(files: dict[str, Path]) -> None:
    """A passing scenario prints PASS with one `ok` row per step and the tally; the exit code is 0."""
    result = run(str(files["passing"]), *NOWHERE)
    assert result.exit_code == 0, result.output
    assert "PASS  runner-check-passes" in result.output and "Two steps that pass" in result.output
    assert [
        line.split()[0] for line in result.output.splitlines() if "step" in line.lower() and line.startswith("  ")
    ] == ["ok", "ok"]
    assert "1 passed, 0 failed" in result.output


def test_failing_step_shows_its_error_and_both_records_and_exits_1(files: dict[str, Path]) -> None:
    """A failed check marks its step FAIL with the message and the Sales and SCM records; later steps do not
    run; the exit code is 1."""
    result = run(str(files["failing"]), *NOWHERE)
    assert result.exit_code == 1
    out = result.output
    assert "FAIL  runner-check-fails" in out
    assert "ok    A step that passes" in out and "FAIL  A step that fails" in out
    assert "the names differ" in out
    assert 'Sales: {"name": "Alpha"}' in out and 'SCM:   {"OrganizationName": "Beta"}' in out
    assert "never reached" not in out
    assert "0 passed, 1 failed" in out


def test_unexpected_exception_fails_its_step_with_the_exception(files: dict[str, Path]) -> None:
    """An exception other than a failed check fails the step (with its type and message), not the runner."""
    result = run(str(files["crashing"]), *NOWHERE)
    assert result.exit_code == 1
    assert "FAIL  A step that crashes" in result.output and "RuntimeError: boom in the scenario" in result.output


def test_one_failing_scenario_among_several_makes_the_run_exit_1(files: dict[str, Path]) -> None:
    """Running a passing and a failing file together reports both and exits 1."""
    result = run(str(files["passing"]), str(files["failing"]), *NOWHERE)
    assert result.exit_code == 1
    assert "PASS  runner-check-passes" in result.output and "FAIL  runner-check-fails" in result.output
    assert "1 passed, 1 failed" in result.output


def test_json_report_is_well_formed_with_every_step(files: dict[str, Path], tmp_path: Path) -> None:
    """--json writes the tally and, per scenario, its steps with pass/fail, timing and the failure."""
    path = tmp_path / "report.json"
    run(str(files["passing"]), str(files["failing"]), *NOWHERE, "--json", str(path))
    report = json.loads(path.read_text(encoding="utf-8"))
    assert (report["passed"], report["failed"]) == (1, 1)
    by_name = {s["name"]: s for s in report["scenarios"]}
    passing, failing = by_name["runner-check-passes"], by_name["runner-check-fails"]
    assert passing["passed"] is True and [s["passed"] for s in passing["steps"]] == [True, True]
    assert passing["journey"][0]["number"] == "A-1"
    assert failing["passed"] is False
    assert [(s["name"], s["passed"]) for s in failing["steps"]] == [
        ("A step that passes", True),
        ("A step that fails", False),
    ]
    failed = failing["steps"][1]
    assert failed["error"] == "the names differ"
    assert failed["sales"] == {"name": "Alpha"} and failed["scm"] == {"OrganizationName": "Beta"}
    assert all(isinstance(s["seconds"], float) for s in failing["steps"])


def test_junit_report_parses_with_a_testcase_per_step_and_a_failure_for_the_failing_one(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """--junit writes XML a CI server reads: one testsuite per scenario, one testcase per step, the failing
    step with a <failure> carrying the message and both records."""
    path = tmp_path / "junit.xml"
    run(str(files["passing"]), str(files["failing"]), *NOWHERE, "--junit", str(path))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert set(suites) == {"runner-check-passes", "runner-check-fails"}
    passing, failing = suites["runner-check-passes"], suites["runner-check-fails"]
    assert (passing.get("tests"), passing.get("failures")) == ("2", "0")
    assert (failing.get("tests"), failing.get("failures")) == ("2", "1")
    cases = failing.findall("testcase")
    assert [c.get("name") for c in cases] == ["A step that passes", "A step that fails"]
    assert all(c.get("classname") == "runner-check-fails" and float(c.get("time", "x")) >= 0 for c in cases)
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "the names differ"
    detail = json.loads(failure.text or "")
    assert detail["sales"] == {"name": "Alpha"} and detail["scm"] == {"OrganizationName": "Beta"}


def test_unknown_scenario_name_is_refused_with_exit_2() -> None:
    """A name that is neither registered nor a .py file is a usage error pointing at `scenario list`."""
    result = CliRunner().invoke(main, ["scenario", "run", "no-such-scenario"])
    assert result.exit_code == 2 and "scenario list" in result.output


def test_missing_scenario_file_is_refused_with_exit_2(tmp_path: Path) -> None:
    """A PATH.py that does not exist is a usage error naming the file."""
    result = CliRunner().invoke(main, ["scenario", "run", str(tmp_path / "absent.py")])
    assert result.exit_code == 2 and "absent.py" in result.output


def test_run_without_any_scenario_is_refused_with_exit_2() -> None:
    """`scenario run` with no name, file or --all says what to give it."""
    result = CliRunner().invoke(main, ["scenario", "run"])
    assert result.exit_code == 2 and "--all" in result.output


def test_sales_url_without_scm_url_is_refused_with_exit_2(files: dict[str, Path]) -> None:
    """Running against servers needs both service URLs."""
    result = CliRunner().invoke(main, ["scenario", "run", str(files["passing"]), "--sales-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--scm-url" in result.output


def test_example_user_scenario_file_passes_on_a_fresh_in_process_sandbox() -> None:
    """The shipped example of a scenario file runs against a throwaway in-process stack and passes."""
    result = run(str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "PASS  my-customer-round-trip" in result.output


def test_exit_codes_of_the_installed_command_in_its_own_process(files: dict[str, Path]) -> None:
    """`python -m leadtocash.cli scenario run` exits 0 for a passing file and 1 for a failing one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    codes = [
        subprocess.run(
            [sys.executable, "-m", "leadtocash.cli", "scenario", "run", str(files[name]), *NOWHERE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).returncode
        for name in ("passing", "failing")
    ]
    assert codes == [0, 1]
