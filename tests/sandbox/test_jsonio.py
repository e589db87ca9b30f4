"""sandbox/jsonio.py: orjson on the hot paths, the standard library's behaviour where they differ."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import uuid

import pytest

from sandbox import jsonio
from sandbox.jsonio import json_default


def test_compact_utf8_and_the_callers_default_for_temporal_values() -> None:
    """Temporal values go to ``default`` (here: UTC as ``Z``, orjson's own form would be ``+00:00``)."""
    value = {
        "name": "Zoë",
        "n": 1,
        "when": dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
        "amount": decimal.Decimal("1.50"),
        3: [True, None],
    }
    text = jsonio.dumps(value, json_default)
    assert text == '{"name":"Zoë","n":1,"when":"2026-11-25T12:00:00Z","amount":"1.50","3":[true,null]}'
    assert jsonio.dumps_bytes(value, json_default) == text.encode("utf-8")
    assert json.loads(text) == jsonio.loads(text)
    assert text == json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


def test_iso_temporal_writes_isoformat_in_both_encoders() -> None:
    """With ``iso_temporal`` the text is ``isoformat()``, also when orjson refuses and json writes it."""
    when = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    expected = '"when":"2026-11-25T12:00:00+00:00","day":"2026-11-25"'
    fast = jsonio.dumps({"when": when, "day": when.date()}, json_default, iso_temporal=True)
    slow = jsonio.dumps({"when": when, "day": when.date(), "big": 2**70}, json_default, iso_temporal=True)
    assert fast == "{" + expected + "}"
    assert slow == "{" + expected + ',"big":1180591620717411303424}'


def test_decimal_numbers_are_exact_json_numbers() -> None:
    """With ``decimal_numbers`` a Decimal is a JSON number of its own digits (not a string, not a rounded
    float); NaN becomes null; when orjson refuses the document, json writes the nearest float."""
    value = {"price": decimal.Decimal("2.50"), "tiny": decimal.Decimal("0.1000000000000000000001")}
    assert jsonio.dumps(value, json_default, decimal_numbers=True) == '{"price":2.50,"tiny":0.1000000000000000000001}'
    assert jsonio.dumps({"x": decimal.Decimal("NaN")}, json_default, decimal_numbers=True) == '{"x":null}'
    fallback = jsonio.dumps({"price": decimal.Decimal("2.50"), "big": 2**70}, json_default, decimal_numbers=True)
    assert fallback == '{"price":2.5,"big":1180591620717411303424}'


def test_json_default_renders_each_type_json_lacks() -> None:
    """One default for the whole sandbox: exact decimals, ISO temporal values, GUIDs, enum values, base64
    bytes, sets and tuples as lists; anything else is a TypeError as in json."""

    class Colour(enum.Enum):
        RED = "red"

    guid = uuid.UUID("7eb682f1-ca75-e511-80d4-00155d2a68d1")
    assert json_default(decimal.Decimal("12.50")) == "12.50"
    assert json_default(dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)) == "2024-01-01T12:00:00Z"
    assert json_default(dt.datetime(2024, 1, 1, 12, 0)) == "2024-01-01T12:00:00"
    assert json_default(dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == (
        "2024-01-01T12:00:00+02:00"
    )
    assert json_default(dt.date(2024, 1, 31)) == "2024-01-31"
    assert json_default(dt.time(8, 30)) == "08:30:00"
    assert json_default(guid) == str(guid)
    assert json_default(Colour.RED) == "red"
    assert json_default(b"\x00\xff") == base64.b64encode(b"\x00\xff").decode("ascii")
    assert json_default((1, 2)) == [1, 2]
    assert sorted(json_default({3, 1})) == [1, 3]
    with pytest.raises(TypeError):
        json_default(object())


def test_what_orjson_refuses_falls_back_to_json() -> None:
    assert jsonio.dumps({"big": 2**70}) == '{"big":1180591620717411303424}'
    assert jsonio.loads(b'{"x": NaN}')["x"] != jsonio.loads(b'{"x": NaN}')["x"]  # json reads NaN literals


def test_malformed_json_raises_the_standard_librarys_error() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        jsonio.loads(b'{"a": 1,}')
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(b'{"a": 1,}')
    assert str(caught.value) == str(expected.value)


def test_values_json_cannot_hold_still_fail() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"x": object()})


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_nested_deeper_than_orjsons_limit_is_a_value_error_not_a_recursion_error() -> None:
    """Beyond 1,024 levels the standard library would recurse until RecursionError; loads refuses it as
    malformed JSON instead (a ValueError, which every body parser already turns into a 400)."""
    assert isinstance(jsonio.loads(_nested(jsonio.MAX_DEPTH)), list)
    for document in (_nested(jsonio.MAX_DEPTH + 1), _nested(5000), b'{"a":' * 3000 + b"1" + b"}" * 3000):
        with pytest.raises(ValueError, match="nested deeper than 1024 levels"):
            jsonio.loads(document)


def test_deep_json_that_orjson_refuses_for_another_reason_is_still_a_value_error() -> None:
    """A document orjson refuses for a ``NaN`` literal goes to json, which recurses deeper than the
    interpreter allows long before orjson's own limit."""
    document = b"[" * 1020 + b"NaN" + b"]" * 1020
    with pytest.raises(ValueError, match="nested deeper"):
        jsonio.loads(document)


def test_request_bodies_may_nest_at_most_100_levels() -> None:
    """loads_request keeps any body that nests deeper than REQUEST_MAX_DEPTH from the services (ODataLib's
    default nesting quota), whether it nests arrays or objects and whatever the counts of brackets in its text."""
    assert jsonio.loads_request(_nested(jsonio.REQUEST_MAX_DEPTH)) == jsonio.loads(_nested(100))
    wide = {"rows": [{"a": [1, {"b": 2}]} for _ in range(500)]}  # many brackets, shallow
    assert jsonio.loads_request(jsonio.dumps(wide)) == wide
    assert jsonio.loads_request('{"text": "' + "[" * 500 + '"}') == {"text": "[" * 500}
    for document in (_nested(101), '{"a":' * 101 + "1" + "}" * 101, b'[{"x": ' + _nested(100) + b"}]"):
        with pytest.raises(jsonio.TooDeep, match="nested deeper than 100 levels"):
            jsonio.loads_request(document)
