"""Property test: the metadata service (``/Metadata/``) and the platform actions answer any request below 500,
errors in F&O's shape, 405s with ``Allow`` (the fuzz contract of ``tests/fuzz``, over this endpoint family)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from sandbox.odata.fno.metadata import DATA_ENTITY_TYPE, PUBLIC_ENTITY_TYPE, PUBLIC_ENUMERATION_TYPE
from tests.fuzz.strategies import ANY_METHOD, FUZZ, HEADERS, TEXT, check_answer, filter_expression, key_predicate
from tests.golden import Golden

NAMES = sorted({*DATA_ENTITY_TYPE.properties, *PUBLIC_ENTITY_TYPE.properties, *PUBLIC_ENUMERATION_TYPE.properties})
COLLECTIONS = st.sampled_from(["DataEntities", "PublicEntities", "PublicEnumerations", "Labels", "Nope", ""])
OPTIONS = st.dictionaries(
    st.sampled_from(["$filter", "$select", "$top", "$skip", "$count", "$orderby", "$expand", "$search", "x"]),
    filter_expression(NAMES) | TEXT | st.sampled_from(NAMES),
    max_size=4,
)


@pytest.fixture(scope="module")
def app(golden: Golden) -> Iterator[Flask]:
    """One seeded mock SCM for the module: the metadata service is read-only, so examples cannot interfere."""
    restored = golden.service_app("scm")
    yield restored
    restored.extensions["sandbox"].db.dispose()


@FUZZ
@given(
    method=ANY_METHOD,
    collection=COLLECTIONS,
    key=st.none() | key_predicate(["Name"]) | key_predicate(["Id", "Language"]) | TEXT,
    rest=st.sampled_from(["", "/$count", "/Properties", "/x/y"]),
    options=OPTIONS,
    headers=HEADERS,
)
def test_metadata_service_answers_without_a_5xx(
    app: Flask, method: str, collection: str, key: str | None, rest: str, options: dict[str, str], headers: Any
) -> None:
    """Any method, collection, key, trailing segment, query options and headers."""
    quoted = None if key is None else urllib.parse.quote(key, safe="=',@:")  # a "?" or "#" stays in the key
    path = f"/Metadata/{collection}{'' if quoted is None else f'({quoted})'}{rest}"
    response = app.test_client().open(path, method=method, query_string=options, headers=headers)
    check_answer(response, "fno", f"{method} {path} {options}")


@FUZZ
@given(
    entity_set=st.sampled_from(["DataManagementEntities", "SystemNotifications"]),
    action=st.sampled_from(["GetApplicationVersion", "GetInstalledModules", "query", "Nope"]) | TEXT,
    body=st.dictionaries(TEXT, st.lists(st.integers() | TEXT, max_size=3) | TEXT | st.none(), max_size=3),
    method=ANY_METHOD,
)
def test_platform_actions_answer_without_a_5xx(
    app: Flask, entity_set: str, action: str, body: dict[str, Any], method: str
) -> None:
    """Any action name, body and method on the two platform entity sets."""
    path = f"/data/{entity_set}/Microsoft.Dynamics.DataEntities.{urllib.parse.quote(action, safe='')}"
    response = app.test_client().open(path, method=method, json=body)
    check_answer(response, "fno", f"{method} {path} {body!r}")
