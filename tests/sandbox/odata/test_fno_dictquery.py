"""OData query options over in-memory documents (the F&O metadata service's collections).

Follows ``docs/reference/fno-odata.md`` section 1: the metadata service filters with the string functions
(unlike ``/data/``), enum literals of its own namespace, ``$select``, ``$orderby``, ``$top``, ``$skip`` and
``$count``; lambdas and ``$expand`` are refused with the OData error.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.errors import BadRequest
from sandbox.odata.fno.dictquery import DocumentType, query

TYPE = DocumentType(
    "Microsoft.Dynamics.Metadata.Thing",
    ("Name", "Size", "Kind", "IsReadOnly", "Note"),
    {"Kind": "Microsoft.Dynamics.Metadata.ThingKind"},
)
DOCS: list[dict[str, Any]] = [
    {"Name": "CustomerV3", "Size": 3, "Kind": "Master", "IsReadOnly": False, "Note": None},
    {"Name": "SalesOrderLine", "Size": 10, "Kind": "Document", "IsReadOnly": False, "Note": "x"},
    {"Name": "Currency", "Size": 1, "Kind": "Reference", "IsReadOnly": True, "Note": None},
]


def names(args: dict[str, str]) -> list[str]:
    return [doc["Name"] for doc in query(DOCS, args, TYPE).documents]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("startswith(Name, 'Cu')", ["CustomerV3", "Currency"]),
        ("endswith(tolower(Name), 'line')", ["SalesOrderLine"]),
        ("toupper(Name) eq 'CURRENCY'", ["Currency"]),
        ("length(Name) gt 8", ["CustomerV3", "SalesOrderLine"]),
        ("substring(Name, 0, 5) eq 'Sales'", ["SalesOrderLine"]),
        ("indexof(Name, 'Order') eq 5", ["SalesOrderLine"]),
        ("Size ge 3 and not (IsReadOnly eq true)", ["CustomerV3", "SalesOrderLine"]),
        ("Size lt 2 or Name eq 'CustomerV3'", ["CustomerV3", "Currency"]),
        ("Note eq null", ["CustomerV3", "Currency"]),
        ("Note ne null", ["SalesOrderLine"]),
        ("Name in ('Currency', 'Nope')", ["Currency"]),
        ("Kind eq Microsoft.Dynamics.Metadata.ThingKind'reference'", ["Currency"]),
        ("Kind ne Microsoft.Dynamics.Metadata.ThingKind'Master'", ["SalesOrderLine", "Currency"]),
    ],
)
def test_filter_selects_the_matching_documents(filter_text: str, expected: list[str]) -> None:
    """Each operator and function of the metadata service's ``$filter`` over plain dicts."""
    assert names({"$filter": filter_text}) == expected


def test_order_top_skip_count_and_select_apply_in_order() -> None:
    """``$count`` counts the filtered documents before ``$skip``/``$top``; ``$select`` keeps the named keys."""
    result = query(
        DOCS,
        {
            "$filter": "Size gt 0",
            "$orderby": "IsReadOnly desc,Name",
            "$skip": "1",
            "$top": "1",
            "$count": "true",
            "$select": "Name,Size",
        },
        TYPE,
    )
    assert result.count == 3
    assert result.documents == [{"Name": "CustomerV3", "Size": 3}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"$filter": "Nope eq 1"}, "Could not find a property named 'Nope'"),
        ({"$filter": "Kind eq Microsoft.Dynamics.Metadata.OtherKind'Master'"}, "is not of type"),
        ({"$filter": "Name eq Microsoft.Dynamics.Metadata.ThingKind'Master'"}, "can only be compared with an enum"),
        ({"$filter": "Kind gt Microsoft.Dynamics.Metadata.ThingKind'Master'"}, "Only eq and ne"),
        ({"$filter": "Name gt 3"}, "incompatible types"),
        ({"$filter": "frobnicate(Name)"}, "frobnicate"),
        ({"$filter": "contains(Name)"}, "takes 2 arguments"),
        ({"$filter": "Name eq"}, "Syntax error"),
        ({"$orderby": "Name sideways"}, "is not valid"),
        ({"$top": "ten"}, "must be an integer"),
        ({"$count": "maybe"}, "not a valid count option"),
        ({"$expand": "Properties"}, "$expand"),
    ],
)
def test_bad_options_are_a_400_odata_error(args: dict[str, str], message: str) -> None:
    """Every refusal is a 400 typed as OData's own exception, saying what was wrong."""
    with pytest.raises(BadRequest) as raised:
        query(DOCS, args, TYPE)
    assert message in (raised.value.detail or raised.value.message)
    assert raised.value.status == 400
