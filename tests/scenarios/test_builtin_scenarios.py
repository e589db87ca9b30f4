"""Every built-in scenario, run in-process on its own fresh stack, the way `sandbox scenario run NAME` does."""

from __future__ import annotations

import pytest

from leadtocash.runner import Endpoints, ScenarioResult, run_scenario
from scenarios.registry import REGISTRY, load_builtin

BUILTIN = {name: item for name, item in load_builtin().items() if item.module.startswith("scenarios.builtin")}

#: The scenarios the issue asks for (prospects with and without the example user map, and 3-11).
REQUIRED = {
    "lead-to-cash",
    "prospect-stays-in-sales",
    "prospect-map-syncs-prospects",
    "quote-revision",
    "order-cancellation",
    "partial-delivery-and-invoicing",
    "customer-on-hold-blocks-confirmation",
    "second-legal-entity",
    "failing-side-rolls-back",
    "paused-map-catches-up",
    "initial-sync-of-existing-data",
    "concurrent-edits-on-both-sides",
}

#: Scenarios that fail because of a known bug outside the scenarios (name -> where). Each is an xfail
#: with strict=True: when the fix lands the test XPASSes, fails, and the entry must go.
KNOWN_BUGS: dict[str, str] = {}

#: the default in-process stack each scenario asks for is a copy of the session's golden one (see conftest)
pytestmark = pytest.mark.usefixtures("golden_stacks")


def failure_report(result: ScenarioResult) -> str:
    """The failing step (or the scenario error) with both records, as the step table shows it."""
    lines = [f"scenario {result.name} failed"]
    for step in result.steps:
        lines.append(f"  {'ok  ' if step.passed else 'FAIL'}  {step.name}")
        if not step.passed:
            lines.append(f"        {step.error}")
            if step.sales is not None or step.scm is not None:
                lines.append(f"        Sales: {str(step.sales)[:800]}")
                lines.append(f"        SCM:   {str(step.scm)[:800]}")
    if result.error and (not result.steps or result.steps[-1].passed):
        lines.append(f"  error: {result.error}")
    return "\n".join(lines)


def test_every_scenario_the_issue_asks_for_is_registered() -> None:
    """The built-in registry holds the flagship and every scenario of the issue, each with a description."""
    assert REQUIRED <= set(BUILTIN), sorted(REQUIRED - set(BUILTIN))
    assert all(item.description.strip() for item in BUILTIN.values())


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_BUGS[name], strict=True))
        if name in KNOWN_BUGS
        else name
        for name in sorted(BUILTIN)
    ],
)
def test_builtin_scenario_passes_on_a_fresh_in_process_stack(name: str) -> None:
    """The scenario runs on a throwaway in-process stack and every one of its steps passes."""
    result = run_scenario(REGISTRY[name], Endpoints())
    assert result.steps, f"scenario {name} recorded no steps: {result.error}"
    assert result.passed and all(step.passed for step in result.steps), failure_report(result)
