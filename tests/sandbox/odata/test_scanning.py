"""The one quote-aware scanner URL parsing and every query phase read text with."""

from __future__ import annotations

import pytest

from sandbox.odata.query.scanning import (
    Scanner,
    UnbalancedBrackets,
    UnterminatedLiteral,
    literal_end,
    split_outside,
)


def test_split_outside_ignores_separators_inside_literals_and_brackets() -> None:
    """Commas inside a quoted literal (with an escaped quote) or inside parentheses do not split."""
    text = "a='x,''y',b=f(1,2),c=3"
    assert split_outside(text, ",", "(", ")") == ["a='x,''y'", "b=f(1,2)", "c=3"]


def test_split_outside_reports_an_open_literal() -> None:
    """A literal that never closes is an error, wherever the separators are."""
    with pytest.raises(UnterminatedLiteral):
        split_outside("a='x,b", ",", "(", ")")


def test_split_outside_reports_a_stray_closer_where_it_stands() -> None:
    """A closer without its opener fails at its position; URL paths only count brackets at the end."""
    with pytest.raises(UnbalancedBrackets) as caught:
        split_outside("a),(b", ",", "(", ")")
    assert caught.value.position == 1
    assert split_outside("a)(/b", "/", "(", ")", stray_closer_fails=False) == ["a)(", "b"]
    with pytest.raises(UnbalancedBrackets):
        split_outside("a(/b", "/", "(", ")", stray_closer_fails=False)


def test_double_quoted_strings_are_literals_only_when_asked() -> None:
    """JSON strings (backslash escapes) hide separators when the scanner is told to read them."""
    text = 'a;$filter=x eq "p;\\"q";b'
    assert split_outside(text, ";", "(", ")", double_quotes=True) == ["a", '$filter=x eq "p;\\"q"', "b"]
    assert len(split_outside(text, ";", "(", ")")) == 4


def test_scanner_finds_tokens_after_literals_and_stops_at_the_end() -> None:
    """Tokens inside literals are skipped; None once the text holds no more."""
    scanner = Scanner(r"@\w+")
    text = "x eq '@not' and y eq @p1"
    match = scanner.find(text)
    assert match is not None and match.group() == "@p1"
    assert scanner.find(text, match.end()) is None


def test_literal_end_is_just_past_the_closing_quote() -> None:
    """'' inside a literal is an escaped quote, not its end; an unterminated one raises."""
    assert literal_end("'a''b' rest", 0) == 6
    assert literal_end('"a\\"b" rest', 0, double_quotes=True) == 6
    with pytest.raises(UnterminatedLiteral):
        literal_end("'a''", 0)
