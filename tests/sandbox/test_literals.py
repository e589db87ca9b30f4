"""sandbox/odata/literals.py: the one OData literal formatter (clients, dialects, bridge and scenarios)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from sandbox.odata.literals import format_literal, iso_datetime, looks_like_guid

GUID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"


def test_null_and_booleans_are_keywords() -> None:
    """None is ``null``; bools are ``true``/``false``, never the integers they subclass."""
    assert format_literal(None) == "null"
    assert format_literal(True) == "true"
    assert format_literal(False) == "false"


def test_numbers_are_bare_and_decimals_keep_their_digits() -> None:
    """Ints and floats are bare; a Decimal is written exactly (trailing zeros too), never through a float."""
    assert format_literal(42) == "42"
    assert format_literal(-7) == "-7"
    assert format_literal(1.5) == "1.5"
    assert format_literal(0.1) == "0.1"
    assert format_literal(Decimal("2.50")) == "2.50"
    assert format_literal(Decimal("0.1000000000000000000001")) == "0.1000000000000000000001"


def test_strings_are_quoted_with_single_quotes_doubled() -> None:
    """A string literal is single-quoted; a quote inside it is doubled."""
    assert format_literal("C-1") == "'C-1'"
    assert format_literal("O'Bryan") == "'O''Bryan'"
    assert format_literal("") == "''"


def test_guid_strings_are_bare_only_in_the_dataverse_style() -> None:
    """A GUID-looking string is bare with ``guid_bare`` (the default) and quoted without it."""
    assert format_literal(GUID) == GUID
    assert format_literal(GUID.upper()) == GUID.upper()
    assert format_literal(GUID, guid_bare=False) == f"'{GUID}'"
    assert format_literal(GUID + "0") == f"'{GUID}0'"  # not a GUID: quoted


def test_uuid_objects_are_bare_in_both_styles() -> None:
    """A uuid.UUID is an Edm.Guid, whose OData v4 literal has no quotes in either service."""
    assert format_literal(uuid.UUID(GUID)) == GUID
    assert format_literal(uuid.UUID(GUID), guid_bare=False) == GUID


def test_datetimes_and_dates_are_bare_iso_with_z_for_utc() -> None:
    """Datetimes are bare ISO 8601 with UTC as ``Z``, other offsets kept, naive ones without; dates bare."""
    assert format_literal(dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)) == "2024-01-01T12:00:00Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_literal(dt.datetime(2024, 1, 1, 12, 0, tzinfo=plus_two)) == "2024-01-01T12:00:00+02:00"
    assert format_literal(dt.datetime(2024, 1, 1, 12, 0, 5, 250000)) == "2024-01-01T12:00:05.250000"
    assert format_literal(dt.date(2024, 1, 31)) == "2024-01-31"
    assert iso_datetime(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("wire_value", "literal"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (2.5, "2.5"),
        ("Contoso", "'Contoso'"),
        ("2024-03-01T10:00:00Z", "'2024-03-01T10:00:00Z'"),
        (GUID, GUID),
    ],
)
def test_wire_values_format_as_their_literal(wire_value: object, literal: str) -> None:
    """Values already in JSON wire form (what a dialect's ``out_value`` gives, or a row read from a service)
    come out as the literal the server-side key formatter wrote before it became this one."""
    assert format_literal(wire_value) == literal


def test_other_types_are_a_type_error() -> None:
    """A value with no OData literal is a programming error, not ``str()`` quoted by accident."""
    with pytest.raises(TypeError, match="OData literal"):
        format_literal(object())
    with pytest.raises(TypeError):
        format_literal(["a"])


def test_looks_like_guid_wants_the_hyphenated_form() -> None:
    """Only the 8-4-4-4-12 hexadecimal form counts (no braces, no missing hyphens)."""
    assert looks_like_guid(GUID)
    assert not looks_like_guid("{" + GUID + "}")
    assert not looks_like_guid(GUID.replace("-", ""))
