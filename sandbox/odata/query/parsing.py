"""Lexing and parsing of ``$filter`` with the ``odata-query`` grammar (a maintained LALR parser).

The text is rewritten first (:mod:`sandbox.odata.query.rewrite`); the tree is cached per text for the
short texts clients repeat.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from odata_query import ast
from odata_query import exceptions as odata_exceptions
from odata_query.grammar import ODataLexer, ODataParser

from sandbox.odata.query.errors import syntax, syntax_at, unknown_function, unterminated
from sandbox.odata.query.rewrite import rewrite


@dataclass(frozen=True)
class Parsed:
    """A parsed ``$filter``: the grammar's tree and the placeholders the rewrite put in it."""

    tree: Any
    placeholders: dict[str, Any]


# The library lexes keywords before identifiers, so `allowemail`, `nullable`, `trueup` or `anything`
# would split into keyword + identifier; such tokens are glued back into one identifier.
_KEYWORD_TOKENS = {"ANY", "ALL", "NULL", "BOOLEAN"}
_LIB_IDENTIFIER = re.compile(r"[_a-z](?:\.?\w){0,127}", re.I)


class _ParserState(threading.local):
    """sly lexers/parsers keep per-parse state on the instance, so each thread gets its own pair."""

    def __init__(self) -> None:
        self.lexer = ODataLexer()
        self.parser = ODataParser()


_state = _ParserState()


def _tokens(text: str) -> Iterator[Any]:
    swallow_until = -1
    for token in _state.lexer.tokenize(text):
        if token.index < swallow_until:
            continue
        if token.type in _KEYWORD_TOKENS:
            match = _LIB_IDENTIFIER.match(text, token.index)
            keyword = {"ANY": 3, "ALL": 3, "NULL": 4}.get(token.type) or len(token.value.val)
            if match is not None and match.end() > token.index + keyword:
                *namespace, name = match.group().split(".")
                token.type = "ODATA_IDENTIFIER"
                token.value = ast.Identifier(name, tuple(namespace))
                swallow_until = match.end()
        yield token


_CACHEABLE_LENGTH = 4096


def parse(text: str, enum_literals: bool, namespace: str | None) -> Parsed:
    """Parse (cached for the short texts clients repeat; huge one-off id lists are not kept)."""
    if len(text) <= _CACHEABLE_LENGTH:
        return _parse_cached(text, enum_literals, namespace)
    return _parse_uncached(text, enum_literals, namespace)


def _parse_uncached(text: str, enum_literals: bool, namespace: str | None) -> Parsed:
    body = text.strip()
    lead = len(text) - len(text.lstrip())
    if not body:
        raise syntax(f"Expression expected at position 0 in '{text}'.")
    rewritten, placeholders, positions = rewrite(body, text, lead, enum_literals, namespace)
    try:
        tree = _state.parser.parse(_tokens(rewritten))
    except odata_exceptions.TokenizingException as exc:
        index = getattr(exc.token, "index", 0)
        char = rewritten[index] if index < len(rewritten) else ""
        if char == "'":
            raise unterminated(text) from None
        raise syntax(
            f"Syntax error: character '{char}' is not valid at position {positions.original(index)} in '{text}'."
        ) from None
    except odata_exceptions.ParsingException as exc:
        if exc.eof or exc.token is None:
            raise syntax_at(len(text.rstrip()), text) from None
        index = exc.token.index
        if exc.token.type == "WS" or rewritten[index : index + 1].isspace():
            while index < len(rewritten) and rewritten[index].isspace():
                index += 1
        raise syntax_at(positions.original(index), text) from None
    except odata_exceptions.UnknownFunctionException as exc:
        raise unknown_function(exc.function_name) from None
    except odata_exceptions.ArgumentCountException as exc:
        raise syntax(str(exc)) from None
    except odata_exceptions.ODataException as exc:
        raise syntax(f"The $filter expression '{text}' is not valid: {exc}") from None
    except (AttributeError, IndexError, TypeError, ValueError, RecursionError):
        # Known grammar gaps (e.g. lambdas owned by three-hop paths) surface as plain Python errors.
        raise syntax(f"The $filter expression '{text}' is not supported.") from None
    if tree is None:
        raise syntax(f"Expression expected at position 0 in '{text}'.")
    return Parsed(tree, placeholders)


_parse_cached = functools.lru_cache(maxsize=512)(_parse_uncached)
