"""Shared fixtures: each test gets its own in-memory services, copied from golden databases built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.golden import Golden

# the session's PostgreSQL cluster and databases on it (tests/postgres.py); the session's shared `sandbox up`
# process (served_up in tests/leadtocash/up_process.py)
pytest_plugins = ["tests.postgres", "tests.leadtocash.up_process"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores. The live-server tests spend much of their time waiting for
    child processes and sockets, so a third worker on two cores finishes the suite about a quarter sooner."""
    return (os.cpu_count() or 1) + 1


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    """The golden databases of this session (of this xdist worker): each is built when first asked for."""
    return Golden(tmp_path_factory.mktemp("golden"))


@pytest.fixture
def sales_app(golden: Golden) -> Iterator[Flask]:
    """A fresh mock Sales app on in-memory SQLite, seeded with the default demo data (a copy of the golden one)."""
    app = golden.service_app("sales")
    yield app
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def sales(sales_app: Flask) -> FlaskClient:
    """A Flask test client on mock Sales."""
    return sales_app.test_client()


@pytest.fixture
def scm_app(golden: Golden) -> Iterator[Flask]:
    """A fresh mock SCM app on in-memory SQLite, seeded with the default demo data (a copy of the golden one)."""
    app = golden.service_app("scm")
    yield app
    app.extensions["sandbox"].db.dispose()


@pytest.fixture
def scm(scm_app: Flask) -> FlaskClient:
    """A Flask test client on mock SCM."""
    return scm_app.test_client()


@pytest.fixture(autouse=True)
def scenario_registry_kept() -> Iterator[None]:
    """Scenarios a test loads from its own files stay that test's: the registry is one dict per process, and a
    later `sandbox scenario run --all` on the same xdist worker would otherwise run them too."""
    from scenarios.registry import REGISTRY, load_builtin

    before = dict(load_builtin())  # the built-in modules register once per process: keep them in the snapshot
    yield
    REGISTRY.clear()
    REGISTRY.update(before)
