"""The dialect contract: every hook the service calls is declared, and a dialect must answer the abstract ones."""

from __future__ import annotations

import pytest

from sandbox.odata.dataverse import DataverseDialect
from sandbox.odata.dialect import Dialect
from sandbox.odata.endpoints import Endpoints
from sandbox.odata.fno import FnoDialect
from sandbox.odata.urls import Segment


def test_the_base_dialect_cannot_be_instantiated() -> None:
    """Dialect is abstract: a service cannot be built on it by mistake."""
    with pytest.raises(TypeError):
        Dialect()  # type: ignore[abstract]


def test_a_dialect_missing_a_hook_cannot_be_instantiated() -> None:
    """A subclass that leaves an abstract hook unanswered fails when built, not on the first request."""

    class Partial(Dialect):
        name = "partial"

    with pytest.raises(TypeError, match="key_value"):
        Partial()  # type: ignore[abstract]


def test_both_dialects_answer_every_hook() -> None:
    """The two services' dialects are complete."""
    assert DataverseDialect().name == "dataverse"
    assert FnoDialect().name == "fno"


def test_dataverse_registers_its_endpoints_and_fno_none() -> None:
    """Dataverse declares its resources (qualified names too) and bulk actions; F&O serves only entity sets."""
    dataverse = Endpoints()
    DataverseDialect().register_endpoints(dataverse)
    assert dataverse.resource_for([Segment("EntityDefinitions")]) is not None
    assert dataverse.resource_for([Segment("Microsoft.Dynamics.CRM.WhoAmI")]) is not None
    assert dataverse.resource_for([Segment("BulkDelete"), Segment("x")]) is None  # one segment only
    assert dataverse.collection_action("UpsertMultiple") is not None
    fno = Endpoints()
    FnoDialect().register_endpoints(fno)
    assert fno.resource_for([Segment("EntityDefinitions")]) is None
    assert fno.collection_action("CreateMultiple") is None
