"""SCM settings: read from the service config, frozen, and held per app (two apps never share them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask import Flask

from mock_scm.app import create_app, settings_of
from mock_scm.pricing import tax_rate
from mock_scm.settings import ScmSettings
from sandbox.runtime import ServiceConfig
from sandbox.wellknown import DEFAULT_COMPANY


def test_settings_without_options_have_fno_defaults() -> None:
    """No options: the default company, F&O's page size, the demo tax rates, 30 days, no negative stock."""
    settings = ScmSettings.from_options({})
    assert settings.default_company == DEFAULT_COMPANY and settings.page_size == 10000
    assert tax_rate(settings, "usmf") == Decimal("0.10") and tax_rate(settings, "usmf", "EXEMPT") == 0
    assert tax_rate(settings, "nowhere") == 0
    assert settings.quotation_validity_days == 30 and settings.allow_negative_inventory is False
    assert settings.derived_identity("alice") == "alice"


def test_settings_options_are_parsed_from_config_values() -> None:
    """Numbers may come as strings (a config file), 'today' as an ISO date; unknown options are ignored."""
    settings = ScmSettings.from_options(
        {
            "default_company": "usrt",
            "page_size": "50",
            "sales_tax_rates": {"USRT": {"": "0.07", "CA": 0.0725}},
            "default_tax_rate": "0.01",
            "quotation_validity_days": "10",
            "allow_negative_inventory": True,
            "derived_write_identity": "system",
            "today": "2024-02-29",
            "not_a_setting": 1,
        }
    )
    assert (settings.default_company, settings.page_size, settings.quotation_validity_days) == ("usrt", 50, 10)
    assert tax_rate(settings, "usrt") == Decimal("0.07") and tax_rate(settings, "usrt", "CA") == Decimal("0.0725")
    assert tax_rate(settings, "usmf") == Decimal("0.01")
    assert settings.allow_negative_inventory is True and settings.derived_identity("alice") == "system"
    assert settings.today() == dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)


def test_settings_cannot_be_changed_once_built() -> None:
    """Frozen: neither a field nor the tax table can be reassigned or mutated."""
    settings = ScmSettings.from_options({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.allow_negative_inventory = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sales_tax_rates["usmf"][""] = Decimal("0.5")  # type: ignore[index]


@pytest.fixture
def two_apps() -> Iterator[tuple[Flask, Flask]]:
    """Two SCM apps in one process, one with default settings and one allowing negative stock."""
    plain = create_app(ServiceConfig(database_url="sqlite://", seed=1))
    lenient = create_app(
        ServiceConfig(
            database_url="sqlite://", seed=1, options={"allow_negative_inventory": True, "today": "2024-05-17"}
        )
    )
    yield plain, lenient
    for app in (plain, lenient):
        app.extensions["sandbox"].db.dispose()


def _deliver_more_than_on_hand(app: Flask) -> int:
    """Order 30 of D0004 (25 on hand in the seed) and post the packing slip; answers its status code."""
    client = app.test_client()
    created = client.post("/data/SalesOrderHeadersV2", json={"OrderingCustomerAccountNumber": "US-001"})
    number = created.get_json()["SalesOrderNumber"]
    line = client.post(
        "/data/SalesOrderLines", json={"SalesOrderNumber": number, "ItemNumber": "D0004", "OrderedSalesQuantity": 30}
    )
    assert line.status_code == 201, line.get_json()
    key = f"SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='{number}')"
    return int(client.post(f"/data/{key}/Microsoft.Dynamics.DataEntities.PostPackingSlip", json={}).status_code)


def test_each_app_runs_with_its_own_settings(two_apps: tuple[Flask, Flask]) -> None:
    """Settings given in one app's config change that app only: the other still refuses negative stock."""
    plain, lenient = two_apps
    assert settings_of(plain).allow_negative_inventory is False
    assert settings_of(lenient).allow_negative_inventory is True
    assert _deliver_more_than_on_hand(lenient) == 200
    assert _deliver_more_than_on_hand(plain) == 400
