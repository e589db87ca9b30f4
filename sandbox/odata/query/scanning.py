"""The one quote-aware scanner every phase that reads query text or URL segments uses.

OData text mixes syntax with string literals that may hold any character: ``'O''Brien, (Ltd)'`` in a key
predicate, ``$filter``, ``$expand`` or a parameter alias. A :class:`Scanner` finds the next token a phase
cares about (a separator, a bracket, ``@p1``, an identifier) outside such literals, and says where a literal
is left open. Quoted literals are skipped by the regular expression engine in one step each, so the callers
only ever look at the tokens they asked for.

Literals: single-quoted with ``''`` as the escaped quote (OData); optionally double-quoted with backslash
escapes (JSON values inside Dataverse query functions and ``$expand`` options).
"""

from __future__ import annotations

import functools
import re

#: a single-quoted OData literal ('' escapes a quote); possessive, so an unterminated one never matches
SINGLE_QUOTED = r"'(?:[^']|'')*+'"
#: a double-quoted JSON string (backslash escapes)
DOUBLE_QUOTED = r'"(?:[^"\\]|\\[\s\S])*+"'


class UnterminatedLiteral(ValueError):
    """A quote opens a literal that never closes."""

    def __init__(self, position: int, quote: str) -> None:
        super().__init__(f"unterminated literal at {position}")
        self.position = position
        self.quote = quote


class Scanner:
    """Finds ``token`` (a regular expression) in text, outside quoted literals."""

    def __init__(self, token: str, *, double_quotes: bool = False) -> None:
        self.double_quotes = double_quotes
        self._pattern = _compiled(token, double_quotes)

    def find(self, text: str, position: int = 0) -> re.Match[str] | None:
        """The next token at or after ``position`` outside literals, or None at the end of ``text``.

        Raises :class:`UnterminatedLiteral` when a literal before the next token is left open.
        """
        pattern = self._pattern
        while True:
            match = pattern.search(text, position)
            if match is None:
                return None
            if match.lastgroup == "token":
                return match
            if match.lastgroup == "open":
                raise UnterminatedLiteral(match.start(), match.group())
            position = match.end()  # a whole literal: skip it


@functools.cache
def _compiled(token: str, double_quotes: bool) -> re.Pattern[str]:
    literals = f"{SINGLE_QUOTED}|{DOUBLE_QUOTED}" if double_quotes else SINGLE_QUOTED
    opener = "['\"]" if double_quotes else "'"
    return re.compile(f"(?:{literals})|(?P<open>{opener})|(?P<token>{token})")


def literal_end(text: str, position: int, *, double_quotes: bool = False) -> int:
    """The index just past the literal opening at ``position``; raises :class:`UnterminatedLiteral`."""
    match = _literal(double_quotes).match(text, position)
    if match is None:
        raise UnterminatedLiteral(position, text[position : position + 1])
    return match.end()


@functools.cache
def _literal(double_quotes: bool) -> re.Pattern[str]:
    return re.compile(f"{SINGLE_QUOTED}|{DOUBLE_QUOTED}" if double_quotes else SINGLE_QUOTED)


def split_outside(
    text: str,
    separator: str,
    openers: str,
    closers: str,
    *,
    double_quotes: bool = False,
    stray_closer_fails: bool = True,
) -> list[str]:
    """Split ``text`` on ``separator`` where it is outside quoted literals and brackets.

    Raises :class:`UnterminatedLiteral` for an open literal and :class:`UnbalancedBrackets` when the
    brackets do not pair up (the callers word both errors their own way): at a closer without its opener,
    unless ``stray_closer_fails`` is false (then only the count at the end matters, as in URL paths).
    """
    scanner = _bracket_scanner(separator, openers, closers, double_quotes)
    parts: list[str] = []
    start = 0
    depth = 0
    match = scanner.find(text)
    while match is not None:
        char = match.group()
        if char in openers:
            depth += 1
        elif char in closers:
            depth -= 1
            if depth < 0 and stray_closer_fails:
                raise UnbalancedBrackets(match.start())
        elif depth == 0:
            parts.append(text[start : match.start()])
            start = match.end()
        match = scanner.find(text, match.end())
    if depth != 0:
        raise UnbalancedBrackets(len(text))
    parts.append(text[start:])
    return parts


class UnbalancedBrackets(ValueError):
    """A closing bracket without its opener (at ``position``), or an opener never closed (at the end)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"unbalanced brackets at {position}")
        self.position = position


@functools.cache
def _bracket_scanner(separator: str, openers: str, closers: str, double_quotes: bool) -> Scanner:
    return Scanner("[" + re.escape(separator + openers + closers) + "]", double_quotes=double_quotes)
