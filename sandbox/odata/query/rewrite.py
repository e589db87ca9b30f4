"""Pre-processing of ``$filter``/``$orderby`` text, before the grammar lexes it (quote-aware throughout).

- Parameter aliases (``@p1``) are replaced by their values, verbatim.
- Syntax the ``odata-query`` grammar cannot lex becomes placeholder identifiers that the translation looks
  up: F&O enum literals ``Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'``, namespace-qualified
  query functions ``Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=["0","1"])``
  (which ones exist is the dialect's :class:`~sandbox.odata.query.dialect.QueryFunctions`), and F&O
  ``divby`` (decimal division). A position map keeps error positions pointing into the text the client sent.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.errors import BadRequest
from sandbox.odata.query.errors import syntax_at, unterminated
from sandbox.odata.query.scanning import Scanner, UnterminatedLiteral, literal_end

#: parameter aliases, outside single-quoted literals and the JSON strings of query functions
#: (``PropertyValues=["a@b.com"]`` holds values too)
_ALIASES = Scanner(r"@[A-Za-z_]\w*", double_quotes=True)
#: a (dotted) name that starts a token: not inside a word, a path or just after a literal
_NAMES = Scanner(r"(?<![\w.$/'])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def substitute_aliases(text: str, aliases: Mapping[str, str] | None) -> str:
    """Replace parameter aliases (``@p1``) outside string literals with their values, verbatim.

    Keys may be given with or without the ``@``. An alias with no value becomes ``null`` (OData rule).
    """
    values = {(key if key.startswith("@") else f"@{key}"): value for key, value in (aliases or {}).items()}
    out: list[str] = []
    copied = 0
    while True:
        try:
            match = _ALIASES.find(text, copied)
        except UnterminatedLiteral as exc:
            if exc.quote == "'":
                raise unterminated(text) from None
            break  # an open JSON string runs to the end: no alias after it
        if match is None:
            break
        out.append(text[copied : match.start()])
        out.append(values.get(match.group(), "null"))
        copied = match.end()
    out.append(text[copied:])
    return "".join(out)


@dataclass(frozen=True)
class EnumLiteral:
    """An F&O enum literal: ``<type name>'<member>'``."""

    type_name: str
    member: str

    @property
    def text(self) -> str:
        """The literal as written."""
        return f"{self.type_name}'{self.member}'"


@dataclass(frozen=True)
class QueryFunctionCall:
    """A call of a namespace-qualified query function, with its named parameters."""

    name: str
    params: tuple[tuple[str, Any], ...]  # (name, str | tuple[str, ...])

    def param(self, name: str) -> Any:
        """The value of parameter ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.params:
            if key.lower() == lowered:
                return value
        return None


_PLACEHOLDER = "__sbx_ph{}"
_NOT_ENUM_PREFIXES = {"duration", "geography", "geometry", "binary"}


class PositionMap:
    """Maps offsets in the rewritten text back to the text the client sent."""

    def __init__(self, lead: int) -> None:
        self.lead = lead
        self._starts: list[int] = [0]
        self._segments: list[tuple[int, int, bool]] = [(0, 0, False)]  # (out_start, orig_start, replaced)

    def mark(self, out_start: int, orig_start: int, replaced: bool) -> None:
        """Text from ``out_start`` of the output comes from ``orig_start`` of the input."""
        self._starts.append(out_start)
        self._segments.append((out_start, orig_start, replaced))

    def original(self, out_pos: int) -> int:
        """The input position of output position ``out_pos``."""
        index = bisect.bisect_right(self._starts, out_pos) - 1
        out_start, orig_start, replaced = self._segments[index]
        return self.lead + (orig_start if replaced else orig_start + out_pos - out_start)


def rewrite(
    body: str, full: str, lead: int, enum_literals: bool, namespace: str | None
) -> tuple[str, dict[str, Any], PositionMap]:
    """Replace dialect constructs the grammar cannot lex with placeholder identifiers (quote-aware).

    ``body`` is ``full`` without its leading blanks (``lead`` of them). Returns the rewritten text, the
    placeholders (:class:`EnumLiteral` or :class:`QueryFunctionCall` by identifier) and the position map.
    """
    out: list[str] = []
    out_len = 0
    placeholders: dict[str, Any] = {}
    positions = PositionMap(lead)
    ns_lower = namespace.lower() if namespace else None
    copied_from = 0
    length = len(body)

    def replace(start: int, end: int, replacement: str) -> None:
        nonlocal out_len, copied_from
        out.append(body[copied_from:start])
        out_len += start - copied_from
        positions.mark(out_len, start, True)
        out.append(replacement)
        out_len += len(replacement)
        positions.mark(out_len, end, False)
        copied_from = end

    position = 0
    while True:
        try:
            match = _NAMES.find(body, position)
        except UnterminatedLiteral:
            raise unterminated(full) from None
        if match is None:
            break
        index, name, end = match.start(), match.group(), match.end()
        position = end
        if end < length and body[end] == "'" and enum_literals and name.lower() not in _NOT_ENUM_PREFIXES:
            try:
                closing = literal_end(body, end)
            except UnterminatedLiteral:
                raise unterminated(full) from None
            key = _PLACEHOLDER.format(len(placeholders))
            placeholders[key] = EnumLiteral(name, body[end + 1 : closing - 1].replace("''", "'"))
            replace(index, closing, key)
            position = closing
            continue
        if ns_lower and "." in name and name.rsplit(".", 1)[0].lower() == ns_lower:
            paren = end
            while paren < length and body[paren].isspace():
                paren += 1
            if paren < length and body[paren] == "(":
                params, closing = _query_function_params(body, paren + 1, full, lead)
                key = _PLACEHOLDER.format(len(placeholders))
                placeholders[key] = QueryFunctionCall(name, params)
                replace(index, closing, key)
                position = closing
                continue
        if name.lower() == "divby" and 0 < index and end < length and body[index - 1].isspace() and body[end].isspace():
            # `a divby b` == `a mul 1.0 div b`: same precedence level, left-associative, decimal result.
            replace(index, end, "mul 1.0 div")
    out.append(body[copied_from:])
    return "".join(out), placeholders, positions


_QF_BARE = re.compile(r"[^,()\[\]\s'\"]+")
_QF_NAME = re.compile(r"[A-Za-z_]\w*")


def _query_function_params(body: str, index: int, full: str, lead: int) -> tuple[tuple[tuple[str, Any], ...], int]:
    """Parse ``Name=value, ...)`` of a Dataverse query function starting after its '('.

    Values are single-quoted strings, bare words/numbers, or JSON-style arrays of double-quoted
    (or single-quoted) strings and numbers. Returns the params and the index just past ')'.
    """
    length = len(body)
    params: list[tuple[str, Any]] = []

    def skip_ws(i: int) -> int:
        while i < length and body[i].isspace():
            i += 1
        return i

    def fail(i: int) -> BadRequest:
        return syntax_at(lead + min(i, length), full)

    def scalar(i: int) -> tuple[str, int]:
        if i >= length:
            raise fail(i)
        if body[i] in "'\"":
            try:
                end = literal_end(body, i, double_quotes=True)
            except UnterminatedLiteral:
                raise unterminated(full) from None
        if body[i] == "'":
            return body[i + 1 : end - 1].replace("''", "'"), end
        if body[i] == '"':
            try:
                return str(json.loads(body[i:end])), end
            except ValueError:
                raise fail(i) from None
        match = _QF_BARE.match(body, i)
        if match is None:
            raise fail(i)
        return match.group(), match.end()

    index = skip_ws(index)
    if index < length and body[index] == ")":
        return (), index + 1
    while True:
        index = skip_ws(index)
        match = _QF_NAME.match(body, index)
        if match is None:
            raise fail(index)
        name = match.group()
        index = skip_ws(match.end())
        if index >= length or body[index] != "=":
            raise fail(index)
        index = skip_ws(index + 1)
        if index < length and body[index] == "[":
            values: list[str] = []
            index = skip_ws(index + 1)
            if index < length and body[index] == "]":
                index += 1
            else:
                while True:
                    value, index = scalar(index)
                    values.append(value)
                    index = skip_ws(index)
                    if index < length and body[index] == ",":
                        index = skip_ws(index + 1)
                        continue
                    if index < length and body[index] == "]":
                        index += 1
                        break
                    raise fail(index)
            params.append((name, tuple(values)))
        else:
            value, index = scalar(index)
            params.append((name, value))
        index = skip_ws(index)
        if index < length and body[index] == ",":
            index += 1
            continue
        if index < length and body[index] == ")":
            return tuple(params), index + 1
        raise fail(index)
