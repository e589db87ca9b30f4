"""The pytest plugin users load for their own integration tests."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_sandbox_fixture_gives_a_synced_stack(sandbox) -> None:
    """The `sandbox` fixture is a fresh stack with the maps running: an SCM customer shows up in Sales."""
    sandbox.scm.create(
        "CustomersV3",
        {
            "CustomerAccount": "PLUGIN-1",
            "OrganizationName": "Plugin Co",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
    )
    rows = sandbox.sales.query("accounts", filter="accountnumber eq 'PLUGIN-1'", select=["name"])
    assert [r["name"] for r in rows] == ["Plugin Co"]


def test_each_test_gets_fresh_state(sandbox) -> None:
    """What the previous test wrote is gone."""
    assert sandbox.sales.query("accounts", filter="accountnumber eq 'PLUGIN-1'") == []


def test_plugin_works_in_a_users_project(pytester) -> None:
    """A user's test file can use the fixtures without any conftest of its own."""
    pytester.makepyfile(
        test_user="""
        def test_whoami(sandbox):
            assert sandbox.sales.who_am_i()["UserId"]

        def test_context_step(sandbox_context):
            with sandbox_context.step("read customers"):
                assert sandbox_context.scm.query("CustomersV3", top=1)
    """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
