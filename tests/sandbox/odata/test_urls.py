"""Parsing of resource paths and key predicates (sandbox/odata/urls.py)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.errors import BadRequest
from sandbox.odata.urls import parse_key_predicate, split_args, split_path


@pytest.mark.parametrize(
    "path,parts",
    [
        ("accounts", ["accounts"]),
        ("accounts(1)/name/$value", ["accounts(1)", "name", "$value"]),
        ("accounts(accountnumber='A/B')/x", ["accounts(accountnumber='A/B')", "x"]),
        ("accounts(name='it''s/here')/x", ["accounts(name='it''s/here')", "x"]),
        ("a(f(x/y))/b", ["a(f(x/y))", "b"]),
        ("/a//b/", ["a", "b"]),
    ],
)
def test_split_path_splits_on_slashes_outside_quotes_and_parentheses(path: str, parts: list[str]) -> None:
    """Slashes inside a quoted literal ('' is an escaped quote) or parentheses do not split."""
    assert split_path(path) == parts


@pytest.mark.parametrize(
    "text,args",
    [
        ("a='x,y',b=2", ["a='x,y'", "b=2"]),
        ("a='it''s, fine' , b=[1,2]", ["a='it''s, fine'", "b=[1,2]"]),
        ("f(1,2),{x,y},z", ["f(1,2)", "{x,y}", "z"]),
        ("", []),
    ],
)
def test_split_args_splits_on_commas_outside_quotes_and_brackets(text: str, args: list[str]) -> None:
    assert split_args(text) == args


@pytest.mark.parametrize(
    "text,message",
    [
        ("a='open", "unterminated literal"),
        ("a='x''", "unterminated literal"),
        ("a=(1", "unbalanced parentheses"),
        ("a=1)", "unbalanced parentheses"),
    ],
)
def test_unbalanced_quotes_and_brackets_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        split_args(text)


@pytest.mark.parametrize(
    "text,named,bare",
    [
        (
            "accountnumber='US-001',_msdyn_company_value=0b0e6c6c-36f5-4d0c-b8a2-3a1f4d5e6f70",
            {"accountnumber": "US-001", "_msdyn_company_value": "0b0e6c6c-36f5-4d0c-b8a2-3a1f4d5e6f70"},
            None,
        ),
        ("name='O''Brien, Ltd'", {"name": "O'Brien, Ltd"}, None),
        ("0B0E6C6C-36F5-4D0C-B8A2-3A1F4D5E6F70", None, "0b0e6c6c-36f5-4d0c-b8a2-3a1f4d5e6f70"),
        ("42", None, 42),
    ],
)
def test_key_predicates_by_name_or_bare(text: str, named: dict[str, Any] | None, bare: Any) -> None:
    assert parse_key_predicate(text) == (named, bare)
