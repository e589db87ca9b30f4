"""sandbox/jsonio.py: orjson on the hot paths, the standard library's behaviour where they differ."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest

from sandbox import jsonio
from sandbox.outbox import json_default


def test_compact_utf8_and_the_callers_default_for_temporal_values() -> None:
    value = {
        "name": "Zoë",
        "n": 1,
        "when": dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
        "amount": decimal.Decimal("1.50"),
        3: [True, None],
    }
    text = jsonio.dumps(value, json_default)
    assert text == '{"name":"Zoë","n":1,"when":"2026-11-25T12:00:00+00:00","amount":"1.50","3":[true,null]}'
    assert jsonio.dumps_bytes(value, json_default) == text.encode("utf-8")
    assert json.loads(text) == jsonio.loads(text)


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
