"""Row versions (ETags) come from the service's database: unique and increasing across processes and restarts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from flask import Flask

from leadtocash.stack import factory
from sandbox.runtime import ServiceConfig

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One service's database: a SQLite file, or a fresh PostgreSQL database on the session's cluster (row
    versions come from a counter row there, from a sequence here)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_urls")["scm"])
    return f"sqlite:///{(tmp_path / 'scm.sqlite').as_posix()}"


def _app(url: str, seed: int | None) -> Flask:
    return factory("scm")(ServiceConfig(database_url=url, seed=seed))


def _create(app: Flask, number: str) -> int:
    response = app.test_client().post(
        "/data/CustomersV3",
        json={
            "dataAreaId": "usmf",
            "CustomerAccount": number,
            "OrganizationName": f"Versions {number}",
            "CustomerGroupId": "10",
            "SalesCurrencyCode": "USD",
        },
        headers=HEADERS,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    # F&O's opaque etag: W/"<base64 of 'version,id'>"
    opaque = response.headers["ETag"].removeprefix('W/"').rstrip('"')
    return int(base64.b64decode(opaque).decode().strip("'").split(",")[0])


def test_two_apps_on_one_database_never_hand_out_the_same_row_version(database_url: str) -> None:
    """Two services on one SQLite file (two processes would be the same: nothing is counted in memory) write in
    turn: every version is new and each is higher than the one before."""
    url = database_url
    first = _app(url, seed=1)
    second = _app(url, seed=1)  # finds the database seeded: seeds nothing
    try:
        versions = [
            _create(app, f"RV-{index:03d}-{side}") for index in range(10) for side, app in enumerate((first, second))
        ]
    finally:
        for app in (first, second):
            app.extensions["sandbox"].db.dispose()
    assert len(set(versions)) == len(versions)
    assert versions == sorted(versions)


def test_row_versions_keep_rising_after_a_restart_and_after_a_reset(database_url: str) -> None:
    """A new app on the same file goes on from where the last one stopped; after a reset and a reseed, versions
    start again from the (new) data, never below a row that exists."""
    url = database_url
    app = _app(url, seed=1)
    before = _create(app, "RV-A")
    app.extensions["sandbox"].db.dispose()
    restarted = _app(url, seed=1)
    try:
        after = _create(restarted, "RV-B")
        assert after > before
        runtime = restarted.extensions["sandbox"]
        runtime.reset()
        runtime.seed(1, {})
        with runtime.db.transaction():
            highest = runtime.store._highest_version()
        assert _create(restarted, "RV-C") > highest
    finally:
        restarted.extensions["sandbox"].db.dispose()


def test_a_snapshot_import_never_leaves_the_counter_below_its_rows(database_url: str) -> None:
    """Rows imported with higher versions than the counter holds: the next write is above all of them."""
    app = _app(database_url, seed=1)
    runtime = app.extensions["sandbox"]
    try:
        _create(app, "RV-S")
        with runtime.db.transaction() as connection:
            table = runtime.model.entities["CustomerV3"].table
            connection.execute(table.update().values(_rowversion=10_000_000))
        runtime.after_import()
        assert _create(app, "RV-T") > 10_000_000
    finally:
        runtime.db.dispose()
