"""The third-party F&O client ``d365fo-client`` (0.3.7) against a served mock SCM, with its default settings.

The client reads an entity's schema from the metadata service (``/Metadata/PublicEntities('<name>')``, falling
back to searching ``/Metadata/DataEntities``) before every create, read, update, delete and bound action, and
identifies the environment with the version actions on ``DataManagementEntities`` and
``SystemNotifications`` before it caches metadata (``client.py``, ``metadata_api.py``, ``crud.py``,
``labels.py``, ``metadata_v2/version_detector.py`` of the client). Each call below is one of its public
methods, called as its README and examples call it; the request journal shows none of them was refused.

The client declares Python >= 3.13, so it is not a dev dependency of this Python 3.11 project and the module
is skipped unless it is importable. It runs unchanged on 3.11: ``pip install --ignore-requires-python
d365fo-client==0.3.7 'mcp<2'`` in the test environment (see docs/development.md).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sandbox.runtime import runtime_of
from sandbox.server import ServerGroup, free_port

d365fo_client = pytest.importorskip("d365fo_client")

pytestmark = pytest.mark.live


@pytest.fixture
def served_scm(scm_app: Flask) -> Iterator[tuple[str, Flask]]:
    """A copy of the seeded mock SCM served on a free loopback port (the client speaks aiohttp, not WSGI)."""
    group = ServerGroup()
    server = group.start("scm", scm_app, free_port())
    try:
        yield server.url, scm_app
    finally:
        group.stop_all()


async def _normal_calls(url: str, cache_dir: Path) -> tuple[dict[str, Any], bool]:
    """Run the client's normal calls; return each result by name and whether the client kept its cache on."""
    from d365fo_client import FOClient, FOClientConfig, QueryOptions

    results: dict[str, Any] = {}
    config = FOClientConfig(base_url=url, metadata_cache_dir=str(cache_dir))
    async with FOClient(config) as client:
        group_key = {"dataAreaId": "usmf", "CustomerGroupId": "D3"}
        calls = [
            ("test_connection", client.test_connection),
            ("test_metadata_connection", client.test_metadata_connection),
            ("get_application_version", client.get_application_version),
            ("get_platform_build_version", client.get_platform_build_version),
            ("get_installed_modules", client.get_installed_modules),
            ("get_data_entities", lambda: client.get_data_entities(QueryOptions(top=5))),
            ("search_data_entities", lambda: client.search_data_entities("customer")),
            ("get_data_entity_info", lambda: client.get_data_entity_info("CustCustomerV3Entity")),
            ("search_public_entities", lambda: client.search_public_entities("Customer")),
            ("get_public_entity_info", lambda: client.get_public_entity_info("CustomerV3")),
            ("get_public_enumeration_info", lambda: client.get_public_enumeration_info("SalesStatus")),
            ("get_label_text", lambda: client.get_label_text("@SCM:CustomerGroup")),
            (
                "get_entities",
                lambda: client.get_entities(
                    "CustomersV3",
                    QueryOptions(
                        select=["CustomerAccount", "Name"], filter="CustomerGroupId eq '30'", top=3, count=True
                    ),
                ),
            ),
            (
                "get_entity",
                lambda: client.get_entity("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US-001"}),
            ),
            (
                "create_entity",
                lambda: client.create_entity("CustomerGroups", {"CustomerGroupId": "D3", "Description": "New"}),
            ),
            ("update_entity", lambda: client.update_entity("CustomerGroups", group_key, {"Description": "Changed"})),
            ("get_entity_by_key", lambda: client.get_entity_by_key("CustomerGroups", group_key)),
            ("delete_entity", lambda: client.delete_entity("CustomerGroups", group_key)),
            ("get_application_build_version", client.get_application_build_version),
            ("download_metadata", lambda: client.download_metadata(force_refresh=True)),
        ]
        for name, call in calls:
            results[name] = await call()
        cache_on = bool(client.config.enable_metadata_cache)
    return results, cache_on


def test_normal_calls_of_d365fo_client_pass_with_its_defaults(served_scm: tuple[str, Flask], tmp_path: Path) -> None:
    """Connection checks, versions, metadata search and schema, labels, a query with ``$count``, and a full
    create-read-update-delete of a customer group: every call answers as against F&O."""
    url, app = served_scm
    results, cache_on = asyncio.run(_normal_calls(url, tmp_path))

    assert results["test_connection"] is True and results["test_metadata_connection"] is True
    assert results["get_application_version"].startswith("10.0.")
    assert results["get_platform_build_version"].startswith("7.0.")
    assert results["get_application_build_version"] == results["get_application_version"]
    assert any("ApplicationSuite" in line for line in results["get_installed_modules"])
    assert len(results["get_data_entities"]["value"]) == 5
    assert "CustCustomerV3Entity" in {e.name for e in results["search_data_entities"]}
    assert results["get_data_entity_info"].public_collection_name == "CustomersV3"
    assert "CustomerV3" in {e.name for e in results["search_public_entities"]}
    schema = results["get_public_entity_info"]
    assert schema.entity_set_name == "CustomersV3" and schema.label_text == "Customers V3"
    assert [p.name for p in schema.properties if p.is_key] == ["dataAreaId", "CustomerAccount"]
    assert [m.name for m in results["get_public_enumeration_info"].members][:2] == ["None", "Backorder"]
    assert results["get_label_text"] == "Customer group"
    customers = results["get_entities"]
    assert customers["@odata.count"] >= len(customers["value"]) > 0
    assert all(set(row) == {"@odata.etag", "CustomerAccount", "Name"} for row in customers["value"])
    assert results["get_entity"]["CustomerAccount"] == "US-001"
    assert results["create_entity"]["CustomerGroupId"] == "D3"
    assert results["update_entity"] == {"success": True}
    assert results["get_entity_by_key"]["Description"] == "Changed"
    assert results["delete_entity"] is True
    # The client turns its metadata cache off where its SQLite lacks FTS5 contentless_delete (before 3.43);
    # with the cache on, download_metadata syncs every metadata collection and must succeed.
    if cache_on or sqlite3.sqlite_version_info >= (3, 43):
        assert results["download_metadata"] is True

    # No refusals but, at most, the ones a real F&O gives too: the client first looks an entity set name up as a
    # public entity name (PublicEntities('CustomersV3')), where F&O answers 404 (the sandbox finds it).
    set_lookups = {
        f"/Metadata/PublicEntities('{name}')" for name in (*runtime_of(app).model.by_set, "DataManagementEntities")
    }
    refused = [
        (entry["method"], entry["path"], entry["status"])
        for entry in runtime_of(app).journal.entries(None, None, None)
        if entry.get("status", 200) >= 400 and not (entry["status"] == 404 and entry["path"] in set_lookups)
    ]
    assert refused == []
