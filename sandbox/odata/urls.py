"""Parsing of OData resource paths and key predicates (``accounts(accountnumber='C-1')/name/$value``)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.query.scanning import UnbalancedBrackets, UnterminatedLiteral, split_outside

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?[mMdDfFlL]?$")


@dataclass
class Segment:
    """One path segment: a name and, when it carried parentheses, the raw text inside them."""

    name: str
    args: str | None = None
    key: dict[str, Any] | None = None
    #: a single unnamed key value (``accounts(<guid>)``)
    bare_key: Any = None


@dataclass
class ResourcePath:
    segments: list[Segment] = field(default_factory=list)


def _split_outside(text: str, separator: str, openers: str, closers: str) -> list[str]:
    """Split ``text`` on ``separator`` where it is outside single quotes ('' escapes) and brackets."""
    try:
        return split_outside(text, separator, openers, closers, stray_closer_fails=False)
    except UnterminatedLiteral:
        raise BadRequest(f"There is an unterminated literal in '{text}'.", codes.QUERY_SYNTAX) from None
    except UnbalancedBrackets:
        raise BadRequest(
            f"Bad Request - Error in query syntax: unbalanced parentheses in '{text}'.", codes.QUERY_SYNTAX
        ) from None


def split_path(path: str) -> list[str]:
    """Split on ``/`` outside quotes and parentheses."""
    return [p for p in _split_outside(path, "/", "(", ")") if p != ""]


def parse_segment(text: str) -> Segment:
    if "(" in text and text.endswith(")"):
        name, _, rest = text.partition("(")
        return Segment(name=name, args=rest[:-1])
    if "(" in text or ")" in text:
        raise BadRequest(f"Bad Request - Error in query syntax in segment '{text}'.", codes.QUERY_SYNTAX)
    return Segment(name=text)


def parse_literal(text: str) -> Any:
    """A key or parameter literal: 'string', number, GUID, true/false/null."""
    text = text.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        inner = text[1:-1]
        if re.search(r"(?<!')'(?!')", inner.replace("''", "")):
            raise BadRequest(f"There is an unterminated literal in '{text}'.", codes.QUERY_SYNTAX)
        return inner.replace("''", "'")
    if text.startswith("'"):
        raise BadRequest(f"There is an unterminated literal at position 0 in '{text}'.", codes.QUERY_SYNTAX)
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if _GUID_RE.match(text):
        return str(uuid.UUID(text))
    if _NUMBER_RE.match(text):
        cleaned = text.rstrip("mMdDfFlL")
        return int(cleaned) if re.match(r"^-?\d+$", cleaned) else float(cleaned)
    raise BadRequest(f"Unrecognized literal '{text}' in the key or parameter list.", codes.QUERY_SYNTAX)


def split_args(text: str) -> list[str]:
    """Split ``a='x,y',b=2`` on commas outside quotes and brackets."""
    return [p.strip() for p in _split_outside(text, ",", "([{", ")]}") if p.strip()]


def parse_key_predicate(text: str) -> tuple[dict[str, Any] | None, Any]:
    """``(guid)`` -> (None, guid); ``(a='x',b=1)`` -> ({'a': 'x', 'b': 1}, None)."""
    args = split_args(text)
    if not args:
        raise BadRequest("The key predicate is empty.", codes.QUERY_SYNTAX)
    if len(args) == 1 and "=" not in _outside_quotes(args[0]):
        return None, parse_literal(args[0])
    key: dict[str, Any] = {}
    for arg in args:
        name, eq, value = arg.partition("=")
        if not eq or not name.strip():
            raise BadRequest(
                f"Bad Request - Error in query syntax: key part '{arg}' is not name=value.", codes.QUERY_SYNTAX
            )
        key[name.strip()] = parse_literal(value)
    return key, None


def _outside_quotes(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "", text)


def is_guid(text: Any) -> bool:
    return isinstance(text, str) and bool(_GUID_RE.match(text))
