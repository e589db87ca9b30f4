"""Shared fixtures: each test gets its own in-memory services."""

from __future__ import annotations

import pytest


@pytest.fixture
def sales_app():
    """A fresh mock Sales app on in-memory SQLite, seeded with the default demo data."""
    from mock_sales import create_app
    from sandbox.runtime import ServiceConfig

    app = create_app(ServiceConfig(database_url="sqlite://", seed=1))
    yield app
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def sales(sales_app):
    """A Flask test client on mock Sales."""
    return sales_app.test_client()


@pytest.fixture
def scm_app():
    """A fresh mock SCM app on in-memory SQLite, seeded with the default demo data."""
    from mock_scm import create_app
    from sandbox.runtime import ServiceConfig

    app = create_app(ServiceConfig(database_url="sqlite://", seed=1))
    yield app
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def scm(scm_app):
    """A Flask test client on mock SCM."""
    return scm_app.test_client()
