"""Query options of both OData dialects: `$select`, `$orderby`, `$expand`, `$top`/`$skip` and `$filter`.

`$filter` text is parsed with the ``odata-query`` grammar (a maintained LALR parser) and the AST is
translated here, by our own visitor, into a SQLAlchemy Core boolean expression over ``entity.table``.
The library's own SQLAlchemy visitor is not used: the two services disagree with plain OData on
case sensitivity, wildcards, enums, `ne` and null, and on which functions exist, and those rules are
spelled out by :class:`FilterDialect`.

Syntax the library cannot lex is rewritten before parsing, outside quoted strings only:

* F&O enum literals ``Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'``,
* Dataverse query functions ``Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=["0","1"])``,
* F&O ``divby`` (decimal division).

Each construct becomes a placeholder identifier that the visitor looks up; a position map keeps
error positions pointing into the text the client sent.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import functools
import json
import operator
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from odata_query import exceptions as odata_exceptions
from odata_query.grammar import ODataLexer, ODataParser
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from sandbox.errors import BadRequest
from sandbox.odata.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
    DOUBLE,
    GUID,
    INT32,
    INT64,
    STRING,
    EntityType,
    Model,
    NavigationProperty,
    Property,
)

__all__ = [
    "ExpandItem",
    "FilterDialect",
    "SYNTAX_ERROR",
    "UNKNOWN_PROPERTY",
    "compile_filter",
    "parse_expand",
    "parse_int_option",
    "parse_orderby",
    "parse_select",
    "substitute_aliases",
]

# HRESULT-style codes Dataverse puts on query option errors (F&O ignores codes).
SYNTAX_ERROR = "0x80060888"
UNKNOWN_PROPERTY = "0x0"


@dataclass
class FilterDialect:
    """How one service reads query options; everything that differs from plain OData lives here."""

    case_insensitive: bool = False
    string_functions: bool = True
    wildcard_eq: bool = False
    enum_literals: bool = False
    query_functions_namespace: str | None = None
    lambdas: bool = True
    entity_label: Callable[[EntityType], str] = lambda e: e.name
    # OData 4.01 `x in (a,b)`; None follows ``string_functions`` (F&O refuses both, Dataverse takes both).
    in_operator: bool | None = None

    def label(self, entity: EntityType) -> str:
        """The type name used in messages, e.g. ``Microsoft.Dynamics.CRM.account``."""
        return self.entity_label(entity)

    @property
    def allows_in(self) -> bool:
        return self.string_functions if self.in_operator is None else self.in_operator


@dataclass
class ExpandItem:
    """One `$expand` term. ``ref`` is True for ``nav/$ref``; nested options are kept as raw text."""

    nav: str
    select: list[str] | None = None
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    skip: int | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    ref: bool = False


# ---- errors ---------------------------------------------------------------------------------------


def _syntax(message: str) -> BadRequest:
    return BadRequest(message, SYNTAX_ERROR)


def _syntax_at(position: int, text: str) -> BadRequest:
    return _syntax(f"Syntax error at position {position} in '{text}'.")


def _unknown_property(name: str, entity: EntityType, dialect: FilterDialect) -> BadRequest:
    return BadRequest(f"Could not find a property named '{name}' on type '{dialect.label(entity)}'.", UNKNOWN_PROPERTY)


# ---- $top / $skip ---------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_int_option(name: str, text: str | None) -> int | None:
    """Parse `$top`/`$skip`: ``None`` when absent, else a non-negative integer or BadRequest."""
    if text is None:
        return None
    value = text.strip()
    if not _DIGITS.fullmatch(value):
        raise _syntax(
            f"Invalid value '{text}' for {name} query option found. "
            f"The {name} query option requires a non-negative integer value."
        )
    return int(value)


# ---- $select --------------------------------------------------------------------------------------


def _visible(entity: EntityType, name: str) -> Property | None:
    prop = entity.properties.get(name)
    return None if prop is None or prop.hidden else prop


def parse_select(text: str | None, entity: EntityType, dialect: FilterDialect) -> list[str] | None:
    """Parse `$select` into property names (in the order given, without duplicates).

    ``None`` (absent, empty or ``*``) means every property. Names are case-sensitive; an unknown or
    hidden name raises BadRequest ``0x0`` "Could not find a property named 'X' on type '<label>'.".
    """
    if text is None or not text.strip():
        return None
    names: list[str] = []
    seen: set[str] = set()
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            raise _syntax(f"Term '{text}' is not valid in a $select or $expand expression.")
        if name == "*":
            return None
        if _visible(entity, name) is None:
            if "/" in name or "(" in name:
                raise _syntax(f"Term '{name}' is not valid in a $select or $expand expression.")
            raise _unknown_property(name, entity, dialect)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


# ---- navigation paths (shared by $filter and $orderby) -------------------------------------------


@dataclass(frozen=True)
class _Hop:
    """One single-valued navigation step: from ``source`` (an outer table or alias) into ``alias``."""

    source: Any
    nav: NavigationProperty
    alias: Any


def _join_conditions(source: Any, nav: NavigationProperty, alias: Any) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [alias.c[remote] == source.c[local] for local, remote in nav.pairs]
    conditions.extend(source.c[local] == value for local, value in nav.local_condition.items())
    return conditions


def _through(hops: list[_Hop], column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` (of the last hop's alias) as a scalar subquery correlated to the first hop's source."""
    if not hops:
        return column
    conditions: list[sa.ColumnElement[bool]] = []
    for hop in hops:
        conditions.extend(_join_conditions(hop.source, hop.nav, hop.alias))
    aliases = [hop.alias for hop in hops]
    # correlate_except: every outer table (the root and any enclosing lambda alias) stays correlated.
    query = sa.select(column).select_from(*aliases).where(*conditions).correlate_except(*aliases).limit(1)
    return query.scalar_subquery()


_ALIAS_CACHE_DEPTH = 8
_ALIAS_INFO_KEY = "sandbox.odata.options.aliases"


class _Aliases:
    """Hands out a distinct alias per use of a table within one compiled expression.

    Building an alias proxies every column of the table, which dominated compile time; the n-th alias of
    a table is therefore shared between compilations (sibling or separate statements may reuse it; within
    one expression every hop still gets its own). The cache lives in ``table.info`` so it goes away with
    the model.
    """

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}

    def next(self, entity: EntityType) -> Any:
        table = entity.table
        index = self._counts.get(table, 0)
        self._counts[table] = index + 1
        if index >= _ALIAS_CACHE_DEPTH:
            return table.alias()
        cache: dict[int, Any] = table.info.setdefault(_ALIAS_INFO_KEY, {})
        alias = cache.get(index)
        if alias is None:
            alias = cache.setdefault(index, table.alias())
        return alias


def _nav_target(model: Model, entity: EntityType, nav: NavigationProperty) -> EntityType:
    target = model.entities.get(nav.target)
    if target is None:
        raise _syntax(f"The navigation property '{nav.name}' of '{entity.name}' targets an unknown type.")
    return target


# ---- $orderby -------------------------------------------------------------------------------------


def parse_orderby(
    text: str | None,
    entity: EntityType,
    model: Model,
    dialect: FilterDialect,
    aliases: Mapping[str, str] | None = None,
) -> list[sa.ColumnElement[Any]]:
    """Parse `$orderby` (``revenue desc,name``) into SQLAlchemy order-by clauses.

    Paths through single-valued navigations (``primarycontactid/fullname``) sort by a correlated scalar
    subquery; a single-valued navigation itself, or a lookup column (``_x_value`` with ``Property.lookup``),
    sorts by the related row's primary name as Dataverse does. Strings sort case-insensitively in a
    case-insensitive dialect. Unknown names raise BadRequest ``0x0``; malformed terms ``0x80060888``.
    ``aliases`` substitutes parameter aliases (``$orderby=@p1&@p1=name``).
    """
    if text is None or not text.strip():
        return []
    if "@" in text:
        text = substitute_aliases(text, aliases)
    clauses: list[sa.ColumnElement[Any]] = []
    for raw in text.split(","):
        parts = raw.split()
        if not parts or len(parts) > 2:
            raise _syntax(f"Syntax error at position {max(text.find(raw), 0)} in '{text}'.")
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise _syntax(f"Syntax error at position {text.find(parts[1])} in '{text}'.")
        expr = _orderby_expression(parts[0], entity, model, dialect, _Aliases())
        clauses.append(expr.desc() if direction == "desc" else expr.asc())
    return clauses


def _orderby_expression(
    path: str, entity: EntityType, model: Model, dialect: FilterDialect, aliases: _Aliases
) -> sa.ColumnElement[Any]:
    segments = path.split("/")
    if any(not s for s in segments):
        raise _syntax(f"Syntax error in '$orderby' path '{path}'.")
    current, source = entity, entity.table
    hops: list[_Hop] = []
    for index, name in enumerate(segments):
        last = index == len(segments) - 1
        prop = _visible(current, name)
        if prop is not None:
            if not last:
                raise _syntax(f"Property '{name}' of type '{dialect.label(current)}' has no properties to navigate.")
            if prop.lookup and prop.lookup in current.navigations:
                named = _primary_name_of(current.navigations[prop.lookup], source, hops, model, aliases)
                if named is not None:
                    return _sortable(named, STRING, dialect)
            return _sortable(_through(hops, source.c[name]), prop.type, dialect)
        nav = current.navigations.get(name)
        if nav is None:
            raise _unknown_property(name, current, dialect)
        if nav.many:
            raise _syntax(
                f"The parent value for a property access of a property '{name}' is not a single value. "
                "Property access can only be applied to a single value."
            )
        if last:
            named = _primary_name_of(nav, source, hops, model, aliases)
            if named is None:
                raise _syntax(f"Cannot order by the navigation property '{name}'.")
            return _sortable(named, STRING, dialect)
        target = _nav_target(model, current, nav)
        alias = aliases.next(target)
        hops.append(_Hop(source, nav, alias))
        current, source = target, alias
    raise AssertionError("unreachable")


def _primary_name_of(
    nav: NavigationProperty, source: Any, hops: list[_Hop], model: Model, aliases: _Aliases
) -> sa.ColumnElement[Any] | None:
    target = model.entities.get(nav.target)
    if nav.many or target is None or not target.primary_name or target.primary_name not in target.properties:
        return None
    alias = aliases.next(target)
    return _through([*hops, _Hop(source, nav, alias)], alias.c[target.primary_name])


def _sortable(expr: sa.ColumnElement[Any], edm: str, dialect: FilterDialect) -> sa.ColumnElement[Any]:
    return sa.func.lower(expr) if dialect.case_insensitive and edm == STRING else expr


# ---- $expand --------------------------------------------------------------------------------------

_NAV_NAME = re.compile(r"[A-Za-z_][\w.]*|\*")
_EXPAND_OPTIONS = ("$select", "$filter", "$orderby", "$top", "$skip", "$expand")


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quotes, parentheses and brackets; BadRequest if unbalanced."""
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "'":
            end = _string_end(text, index)
            if end < 0:
                raise _unterminated(text)
            index = end
            continue
        if char == '"':
            end = _double_quoted_end(text, index)
            if end < 0:
                raise _unterminated(text)
            index = end
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                raise _syntax_at(index, text)
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    if depth != 0:
        raise _syntax_at(length, text)
    parts.append(text[start:])
    return parts


def parse_expand(text: str | None) -> list[ExpandItem]:
    """Parse `$expand` syntax: ``a($select=x,y;$filter=...;$top=5),b/$ref,c($expand=d($select=e))``.

    Commas, semicolons and parentheses inside quoted strings and nested options are respected. Nested
    `$select`/`$filter`/`$orderby` stay raw text (the caller compiles them against the target type);
    `$top`/`$skip` are validated integers; `$expand` recurses. Options other than those six raise
    BadRequest. Navigation names are not checked here.
    """
    if text is None or not text.strip():
        return []
    items: list[ExpandItem] = []
    for term in _split_top_level(text, ","):
        items.append(_expand_item(term.strip(), text))
    return items


def _expand_item(term: str, whole: str) -> ExpandItem:
    invalid = _syntax(f"Term '{term}' is not valid in a $select or $expand expression.")
    if not term:
        raise _syntax(f"Term '{whole}' is not valid in a $select or $expand expression.")
    paren = term.find("(")
    head = (term if paren < 0 else term[:paren]).strip()
    options_text: str | None = None
    if paren >= 0:
        if not term.endswith(")"):
            raise invalid
        options_text = term[paren + 1 : -1]
    ref = False
    if head.endswith("/$ref"):
        ref = True
        head = head[: -len("/$ref")].strip()
        if options_text is not None:
            raise invalid
    if not _NAV_NAME.fullmatch(head):
        raise invalid
    item = ExpandItem(nav=head, ref=ref)
    if options_text is None:
        return item
    if not options_text.strip():
        raise invalid
    seen: set[str] = set()
    for option in _split_top_level(options_text, ";"):
        key, equals, value = option.partition("=")
        key = key.strip()
        if not equals:
            raise invalid
        if key not in _EXPAND_OPTIONS:
            raise _syntax(f"The query option '{key}' is not supported inside $expand.")
        if key in seen:
            raise _syntax(f"Query option '{key}' was specified more than once inside $expand.")
        seen.add(key)
        value = value.strip()
        if key == "$select":
            item.select = [name.strip() for name in value.split(",")] if value and value != "*" else None
            if item.select is not None and not all(item.select):
                raise invalid
        elif key == "$filter":
            item.filter = value
        elif key == "$orderby":
            item.orderby = value
        elif key == "$top":
            item.top = parse_int_option("$top", value)
        elif key == "$skip":
            item.skip = parse_int_option("$skip", value)
        else:
            item.expand = parse_expand(value)
    return item


# ---- $filter: pre-processing ----------------------------------------------------------------------

_ALIAS = re.compile(r"@[A-Za-z_]\w*")


def substitute_aliases(text: str, aliases: Mapping[str, str] | None) -> str:
    """Replace parameter aliases (``@p1``) outside string literals with their values, verbatim.

    Keys may be given with or without the ``@``. An alias with no value becomes ``null`` (OData rule).
    """
    values = {(key if key.startswith("@") else f"@{key}"): value for key, value in (aliases or {}).items()}
    out: list[str] = []
    index = 0
    copied = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "'":
            end = _string_end(text, index)
            if end < 0:
                raise _unterminated(text)
            index = end
            continue
        if char == '"':
            # JSON strings of Dataverse query functions (`PropertyValues=["a@b.com"]`) are values too.
            end = _double_quoted_end(text, index)
            index = end if end > 0 else length
            continue
        if char == "@":
            match = _ALIAS.match(text, index)
            if match is not None:
                out.append(text[copied:index])
                out.append(values.get(match.group(), "null"))
                copied = index = match.end()
                continue
        index += 1
    out.append(text[copied:])
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the single-quoted literal opening at ``start`` ('' escapes), or -1 if unterminated."""
    index = start + 1
    length = len(text)
    while index < length:
        if text[index] == "'":
            if index + 1 < length and text[index + 1] == "'":
                index += 2
                continue
            return index + 1
        index += 1
    return -1


def _double_quoted_end(text: str, start: int) -> int:
    index = start + 1
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            return index + 1
        index += 1
    return -1


def _unterminated(text: str) -> BadRequest:
    return _syntax(f"There is an unterminated literal at position {len(text)} in '{text}'.")


@dataclass(frozen=True)
class _EnumLiteral:
    type_name: str
    member: str

    @property
    def text(self) -> str:
        return f"{self.type_name}'{self.member}'"


@dataclass(frozen=True)
class _QueryFunction:
    name: str
    params: tuple[tuple[str, Any], ...]  # (name, str | tuple[str, ...])

    def param(self, name: str) -> Any:
        lowered = name.lower()
        for key, value in self.params:
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class _Parsed:
    tree: Any
    placeholders: dict[str, Any]


_PLACEHOLDER = "__sbx_ph{}"
_IDENT_START = re.compile(r"[A-Za-z_]")
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_NOT_ENUM_PREFIXES = {"duration", "geography", "geometry", "binary"}
_BOUNDARY_BEFORE = re.compile(r"[\w.$/']")


class _PositionMap:
    """Maps offsets in the rewritten text back to the text the client sent."""

    def __init__(self, lead: int) -> None:
        self.lead = lead
        self._starts: list[int] = [0]
        self._segments: list[tuple[int, int, bool]] = [(0, 0, False)]  # (out_start, orig_start, replaced)

    def mark(self, out_start: int, orig_start: int, replaced: bool) -> None:
        self._starts.append(out_start)
        self._segments.append((out_start, orig_start, replaced))

    def original(self, out_pos: int) -> int:
        index = bisect.bisect_right(self._starts, out_pos) - 1
        out_start, orig_start, replaced = self._segments[index]
        return self.lead + (orig_start if replaced else orig_start + out_pos - out_start)


def _rewrite(
    body: str, full: str, lead: int, enum_literals: bool, namespace: str | None
) -> tuple[str, dict[str, Any], _PositionMap]:
    """Replace dialect constructs the grammar cannot lex with placeholder identifiers (quote-aware)."""
    out: list[str] = []
    out_len = 0
    placeholders: dict[str, Any] = {}
    positions = _PositionMap(lead)
    ns_lower = namespace.lower() if namespace else None
    index = 0
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

    while index < length:
        char = body[index]
        if char == "'":
            end = _string_end(body, index)
            if end < 0:
                raise _unterminated(full)
            index = end
            continue
        if _IDENT_START.match(char) and (index == 0 or not _BOUNDARY_BEFORE.match(body[index - 1])):
            match = _DOTTED_NAME.match(body, index)
            assert match is not None
            name, end = match.group(), match.end()
            if end < length and body[end] == "'" and enum_literals and name.lower() not in _NOT_ENUM_PREFIXES:
                closing = _string_end(body, end)
                if closing < 0:
                    raise _unterminated(full)
                key = _PLACEHOLDER.format(len(placeholders))
                placeholders[key] = _EnumLiteral(name, body[end + 1 : closing - 1].replace("''", "'"))
                replace(index, closing, key)
                index = closing
                continue
            if ns_lower and "." in name and name.rsplit(".", 1)[0].lower() == ns_lower:
                paren = end
                while paren < length and body[paren].isspace():
                    paren += 1
                if paren < length and body[paren] == "(":
                    params, closing = _query_function_params(body, paren + 1, full, lead)
                    key = _PLACEHOLDER.format(len(placeholders))
                    placeholders[key] = _QueryFunction(name, params)
                    replace(index, closing, key)
                    index = closing
                    continue
            if (
                name.lower() == "divby"
                and 0 < index
                and end < length
                and body[index - 1].isspace()
                and body[end].isspace()
            ):
                # `a divby b` == `a mul 1.0 div b`: same precedence level, left-associative, decimal result.
                replace(index, end, "mul 1.0 div")
            index = end
            continue
        index += 1
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
        return _syntax_at(lead + min(i, length), full)

    def scalar(i: int) -> tuple[str, int]:
        if i >= length:
            raise fail(i)
        if body[i] == "'":
            end = _string_end(body, i)
            if end < 0:
                raise _unterminated(full)
            return body[i + 1 : end - 1].replace("''", "'"), end
        if body[i] == '"':
            end = _double_quoted_end(body, i)
            if end < 0:
                raise _unterminated(full)
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


# ---- $filter: lexing and parsing ------------------------------------------------------------------

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


def _parse(text: str, enum_literals: bool, namespace: str | None) -> _Parsed:
    """Parse (cached for the short texts clients repeat; huge one-off id lists are not kept)."""
    if len(text) <= _CACHEABLE_LENGTH:
        return _parse_cached(text, enum_literals, namespace)
    return _parse_uncached(text, enum_literals, namespace)


def _parse_uncached(text: str, enum_literals: bool, namespace: str | None) -> _Parsed:
    body = text.strip()
    lead = len(text) - len(text.lstrip())
    if not body:
        raise _syntax(f"Expression expected at position 0 in '{text}'.")
    rewritten, placeholders, positions = _rewrite(body, text, lead, enum_literals, namespace)
    try:
        tree = _state.parser.parse(_tokens(rewritten))
    except odata_exceptions.TokenizingException as exc:
        index = getattr(exc.token, "index", 0)
        char = rewritten[index] if index < len(rewritten) else ""
        if char == "'":
            raise _unterminated(text) from None
        raise _syntax(
            f"Syntax error: character '{char}' is not valid at position {positions.original(index)} in '{text}'."
        ) from None
    except odata_exceptions.ParsingException as exc:
        if exc.eof or exc.token is None:
            raise _syntax_at(len(text.rstrip()), text) from None
        index = exc.token.index
        if exc.token.type == "WS" or rewritten[index : index + 1].isspace():
            while index < len(rewritten) and rewritten[index].isspace():
                index += 1
        raise _syntax_at(positions.original(index), text) from None
    except odata_exceptions.UnknownFunctionException as exc:
        raise _unknown_function(exc.function_name) from None
    except odata_exceptions.ArgumentCountException as exc:
        raise _syntax(str(exc)) from None
    except odata_exceptions.ODataException as exc:
        raise _syntax(f"The $filter expression '{text}' is not valid: {exc}") from None
    except (AttributeError, IndexError, TypeError, ValueError, RecursionError):
        # Known grammar gaps (e.g. lambdas owned by three-hop paths) surface as plain Python errors.
        raise _syntax(f"The $filter expression '{text}' is not supported.") from None
    if tree is None:
        raise _syntax(f"Expression expected at position 0 in '{text}'.")
    return _Parsed(tree, placeholders)


_parse_cached = functools.lru_cache(maxsize=512)(_parse_uncached)


def _unknown_function(name: str) -> BadRequest:
    return _syntax(
        f"An unknown function with name '{name}' was found. This may also be a function import or a key "
        "lookup on a navigation property, which is not allowed."
    )


# ---- $filter: translation -------------------------------------------------------------------------

_NUMERIC = {INT32, INT64, DECIMAL, DOUBLE}
_INTEGRAL = {INT32, INT64}
_TEMPORAL = {DATETIME, DATE}

_OPERATOR_KIND = {
    ast.Eq: "Equal",
    ast.NotEq: "NotEqual",
    ast.Gt: "GreaterThan",
    ast.GtE: "GreaterThanOrEqual",
    ast.Lt: "LessThan",
    ast.LtE: "LessThanOrEqual",
    ast.In: "In",
    ast.Add: "Add",
    ast.Sub: "Subtract",
    ast.Mult: "Multiply",
    ast.Div: "Divide",
    ast.Mod: "Modulo",
}
_OPERATOR_TEXT = {ast.Eq: "eq", ast.NotEq: "ne", ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le"}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
}
_LITERAL_EDM: dict[type, str] = {
    ast.String: STRING,
    ast.Integer: INT32,
    ast.Float: DECIMAL,
    ast.Boolean: BOOLEAN,
    ast.DateTime: DATETIME,
    ast.Date: DATE,
    ast.GUID: GUID,
    ast.Time: "Edm.TimeOfDay",
    ast.Duration: "Edm.Duration",
    ast.Geography: "Edm.Geography",
}
_SA_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    STRING: sa.Text,
    INT32: sa.Integer,
    INT64: sa.BigInteger,
    DECIMAL: lambda: sa.Numeric(38, 10),
    DOUBLE: sa.Float,
    BOOLEAN: sa.Boolean,
    DATETIME: lambda: sa.DateTime(timezone=True),
    DATE: sa.Date,
    GUID: lambda: sa.String(36),
}
_STRING_FUNCTIONS = {
    "contains",
    "startswith",
    "endswith",
    "tolower",
    "toupper",
    "trim",
    "length",
    "concat",
    "indexof",
    "substring",
}
_DATE_PARTS = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute", "second": "second"}


def _utcnow() -> dt.datetime:
    """The clock relative date functions use (a seam for tests)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class _Operand:
    """A translated sub-expression: a SQL expression with its EDM type, an untyped literal, or a nav."""

    expr: Any = None
    edm: str | None = None
    literal: Any = None  # an ast literal not yet bound to a type
    prop: Property | None = None
    enum_literal: _EnumLiteral | None = None
    nav: tuple[Any, NavigationProperty, list[_Hop]] | None = None  # (source, nav, hops) of a path ending in a nav
    name: str = ""

    @property
    def is_null(self) -> bool:
        return isinstance(self.literal, ast.Null)


@dataclass(frozen=True)
class _Scope:
    entity: EntityType
    source: Any
    variables: dict[str, tuple[EntityType, Any]]


def compile_filter(
    text: str, entity: EntityType, model: Model, dialect: FilterDialect, aliases: Mapping[str, str] | None = None
) -> sa.ColumnElement[bool]:
    """Translate a `$filter` string into a boolean SQLAlchemy expression over ``entity.table``.

    Every problem (syntax, unknown property/function/enum member, type mismatch, feature the dialect
    refuses) raises :class:`BadRequest`: ``0x0`` for unknown properties, ``0x80060888`` otherwise.
    ``aliases`` are the request's parameter aliases (``{"@p1": "'Contoso'"}``), substituted verbatim;
    an alias without a value is null, as in OData. The parsed tree is cached per text.
    """
    if text is None:
        raise _syntax("The $filter expression is empty.")
    if "@" in text:
        text = substitute_aliases(text, aliases)
    parsed = _parse(text, dialect.enum_literals, dialect.query_functions_namespace)
    compiler = _FilterCompiler(text, model, dialect, parsed.placeholders)
    scope = _Scope(entity, entity.table, {})
    try:
        return compiler.condition(parsed.tree, scope)
    except RecursionError:
        raise _syntax(f"The $filter expression '{text}' is nested too deeply.") from None
    except (decimal.InvalidOperation, OverflowError, ValueError) as exc:
        raise _syntax(f"The $filter expression '{text}' contains an invalid value: {exc}") from None
    except (sa.exc.SQLAlchemyError, TypeError, AttributeError, LookupError):
        # A construct we do not translate must still answer 400, never a 500.
        raise _syntax(f"The $filter expression '{text}' is not supported.") from None


class _FilterCompiler:
    def __init__(self, text: str, model: Model, dialect: FilterDialect, placeholders: dict[str, Any]) -> None:
        self.text = text
        self.model = model
        self.dialect = dialect
        self.placeholders = placeholders
        self.aliases = _Aliases()

    # -- entry points --------------------------------------------------------------------------------
    def condition(self, node: Any, scope: _Scope) -> sa.ColumnElement[bool]:
        """``node`` as a boolean SQL expression."""
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node, scope)
        return self._as_condition(self.value(node, scope))

    def _as_condition(self, operand: _Operand, not_operator: bool = False) -> sa.ColumnElement[bool]:
        if isinstance(operand.literal, ast.Boolean):
            return sa.true() if operand.literal.py_val else sa.false()
        if operand.edm != BOOLEAN or operand.expr is None:
            if not_operator:
                raise _syntax(
                    "A unary operator with an incompatible type was detected. Found operand type "
                    f"'{operand.edm or 'null'}' for operator kind 'Not'."
                )
            raise _syntax("The $filter expression must evaluate to a single boolean value.")
        if operand.prop is not None:
            # A bare boolean column: compare explicitly so NULL stays false on every database.
            return operand.expr == sa.true()
        return operand.expr

    def value(self, node: Any, scope: _Scope) -> _Operand:
        """``node`` as an operand (SQL expression, pending literal or navigation)."""
        if isinstance(node, ast.Identifier):
            return self._identifier(node, scope)
        if isinstance(node, ast.Attribute):
            return self._path(_flatten(node), scope)
        if isinstance(node, ast.List):
            return _Operand(literal=node)
        if isinstance(node, ast._Literal):
            return _Operand(literal=node, edm=_LITERAL_EDM.get(type(node)))
        if isinstance(node, ast.Compare):
            return _Operand(expr=self._compare(node, scope), edm=BOOLEAN)
        if isinstance(node, ast.BoolOp):
            return _Operand(expr=self._bool_op(node, scope), edm=BOOLEAN)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, scope)
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.CollectionLambda):
            return _Operand(expr=self._lambda(node, scope), edm=BOOLEAN)
        raise _syntax(f"The $filter expression '{self.text}' is not supported.")

    # -- boolean structure ---------------------------------------------------------------------------
    def _bool_op(self, node: ast.BoolOp, scope: _Scope) -> sa.ColumnElement[bool]:
        # Long `or` chains (hundreds of ids) nest left-deep; flatten them without recursion.
        kind = type(node.op)
        items: list[sa.ColumnElement[bool]] = []
        stack: list[Any] = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.BoolOp) and type(current.op) is kind:
                stack.append(current.right)
                stack.append(current.left)
            else:
                items.append(self.condition(current, scope))
        return _balanced(items, sa.and_ if kind is ast.And else sa.or_)

    def _unary(self, node: ast.UnaryOp, scope: _Scope) -> _Operand:
        if isinstance(node.op, ast.Not):
            if isinstance(node.operand, ast.BoolOp):
                return _Operand(expr=sa.not_(self._bool_op(node.operand, scope)), edm=BOOLEAN)
            inner = self._as_condition(self.value(node.operand, scope), not_operator=True)
            return _Operand(expr=sa.not_(inner), edm=BOOLEAN)
        operand = self.value(node.operand, scope)
        if isinstance(operand.literal, (ast.Integer, ast.Float)):
            # `-(5)` / `- 5`: the lexer only folds the sign into numbers written as `-5`.
            val = operand.literal.val
            negated = val[1:] if val.startswith("-") else "-" + val.lstrip("+")
            return _Operand(literal=type(operand.literal)(negated), edm=operand.edm)
        if operand.literal is not None or operand.edm not in _NUMERIC or operand.expr is None:
            raise _syntax(f"The operator '-' cannot be applied to '{operand.name or operand.edm or 'null'}'.")
        return _Operand(expr=-operand.expr, edm=operand.edm)

    # -- names ---------------------------------------------------------------------------------------
    def _identifier(self, node: ast.Identifier, scope: _Scope) -> _Operand:
        if not node.namespace and node.name in self.placeholders:
            item = self.placeholders[node.name]
            if isinstance(item, _EnumLiteral):
                return _Operand(enum_literal=item, name=item.text)
            return _Operand(expr=self._query_function(item, scope), edm=BOOLEAN)
        return self._path([node.full_name()], scope)

    def _path(self, segments: list[str], scope: _Scope) -> _Operand:
        entity, source = scope.entity, scope.source
        if segments[0] in scope.variables:
            entity, source = scope.variables[segments[0]]
            segments = segments[1:]
            if not segments:
                raise _syntax(f"The range variable cannot be used as a value in '{self.text}'.")
        hops: list[_Hop] = []
        for index, name in enumerate(segments):
            last = index == len(segments) - 1
            prop = _visible(entity, name)
            if prop is not None:
                if not last:
                    raise _syntax(
                        f"Property '{name}' of type '{self.dialect.label(entity)}' has no properties to navigate."
                    )
                return _Operand(expr=_through(hops, source.c[name]), edm=prop.type, prop=prop, name="/".join(segments))
            nav = entity.navigations.get(name)
            if nav is None:
                raise _unknown_property(name, entity, self.dialect)
            if last:
                return _Operand(nav=(source, nav, hops), name="/".join(segments))
            if nav.many:
                raise _syntax(
                    f"The parent value for a property access of a property '{segments[index + 1]}' is not a "
                    "single value. Property access can only be applied to a single value."
                )
            target = _nav_target(self.model, entity, nav)
            alias = self.aliases.next(target)
            hops.append(_Hop(source, nav, alias))
            entity, source = target, alias
        raise _syntax(f"The $filter expression '{self.text}' is not supported.")

    # -- comparisons ---------------------------------------------------------------------------------
    def _compare(self, node: ast.Compare, scope: _Scope) -> sa.ColumnElement[bool]:
        kind = type(node.comparator)
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        if kind is ast.In:
            return self._in(left, right)
        if left.nav is not None or right.nav is not None:
            return self._nav_null_compare(kind, left, right)
        if left.enum_literal is not None or right.enum_literal is not None:
            return self._enum_literal_compare(kind, left, right)
        if left.literal is not None and right.literal is None:
            # Literal on the left: swap so the typed side leads (`5 lt x` == `x gt 5`).
            left, right = right, left
            kind = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE}.get(kind, kind)
        if isinstance(left.literal, ast.List) or isinstance(right.literal, ast.List):
            raise self._incompatible(kind, left, right)
        self._check_enum_operator(kind, left)
        if right.is_null or left.is_null:
            return self._null_compare(kind, left if right.is_null else right, both_null=left.is_null and right.is_null)
        if left.literal is not None:
            # Two literals: bind both with the left literal's type.
            value = self._coerce(right, left.edm or STRING, None, kind, left)
            lhs = sa.literal(_literal_value(left.literal), _sa_type(left.edm))
            return _COMPARE[kind](lhs, sa.literal(value, _sa_type(left.edm)))
        if right.literal is not None:
            return self._compare_literal(kind, left, right)
        return self._compare_columns(kind, left, right)

    def _compare_literal(self, kind: type, left: _Operand, right: _Operand) -> sa.ColumnElement[bool]:
        literal = right.literal
        if (
            self.dialect.wildcard_eq
            and kind in (ast.Eq, ast.NotEq)
            and left.edm == STRING
            and isinstance(literal, ast.String)
            and "*" in literal.val
        ):
            pattern = _escape_like(literal.val.lower()).replace("*", "%")
            like = sa.func.lower(left.expr).like(pattern, escape="\\")
            return like if kind is ast.Eq else sa.or_(sa.not_(like), left.expr.is_(None))
        value = self._coerce(right, left.edm or STRING, left.prop, kind, left)
        expr = left.expr
        bind_type = _bind_type(left, value)
        if left.edm == STRING and self.dialect.case_insensitive:
            expr, value = sa.func.lower(expr), value.lower()
        bound = sa.literal(value, bind_type) if bind_type is not None else value
        if kind is ast.NotEq:
            # OData: `x ne 'a'` holds for a null x too (SQL `<>` alone would drop those rows).
            return sa.or_(expr != bound, left.expr.is_(None))
        return _COMPARE[kind](expr, bound)

    def _compare_columns(self, kind: type, left: _Operand, right: _Operand) -> sa.ColumnElement[bool]:
        if not _compatible(left.edm, right.edm):
            raise self._incompatible(kind, left, right)
        self._check_enum_operator(kind, right)
        lhs, rhs = left.expr, right.expr
        if left.edm == STRING and self.dialect.case_insensitive:
            lhs, rhs = sa.func.lower(lhs), sa.func.lower(rhs)
        if kind is ast.Eq:
            return lhs == rhs
        if kind is ast.NotEq:
            return lhs.is_distinct_from(rhs)
        return _COMPARE[kind](lhs, rhs)

    def _null_compare(self, kind: type, operand: _Operand, both_null: bool) -> sa.ColumnElement[bool]:
        if both_null:
            return sa.true() if kind is ast.Eq else sa.false()
        if operand.expr is None:
            # A non-null literal against null (`5 eq null`).
            return sa.true() if kind is ast.NotEq else sa.false()
        if kind is ast.Eq:
            return operand.expr.is_(None)
        if kind is ast.NotEq:
            return operand.expr.is_not(None)
        # Ordering against null is never true (OData and SQL agree).
        return sa.false()

    def _nav_null_compare(self, kind: type, left: _Operand, right: _Operand) -> sa.ColumnElement[bool]:
        nav_side, other = (left, right) if left.nav is not None else (right, left)
        assert nav_side.nav is not None
        source, nav, hops = nav_side.nav
        if not other.is_null or kind not in (ast.Eq, ast.NotEq) or nav.many or not nav.pairs:
            raise _syntax(f"The navigation property '{nav_side.name}' can only be compared with null.")
        local = _through(hops, source.c[nav.pairs[0][0]])
        return local.is_(None) if kind is ast.Eq else local.is_not(None)

    def _check_enum_operator(self, kind: type, operand: _Operand) -> None:
        if (
            self.dialect.enum_literals
            and operand.prop is not None
            and operand.prop.enum is not None
            and kind not in (ast.Eq, ast.NotEq)
        ):
            raise _syntax(
                f"The operator '{_OPERATOR_TEXT.get(kind, kind.__name__)}' is not supported for the "
                f"enum property '{operand.name}'; use eq or ne."
            )

    def _enum_literal_compare(self, kind: type, left: _Operand, right: _Operand) -> sa.ColumnElement[bool]:
        literal_side, other = (right, left) if right.enum_literal is not None else (left, right)
        literal = literal_side.enum_literal
        assert literal is not None
        if kind not in (ast.Eq, ast.NotEq):
            raise _syntax(
                f"The operator '{_OPERATOR_TEXT.get(kind, kind.__name__)}' is not supported for enum "
                f"values; use eq or ne."
            )
        enum = other.prop.enum if other.prop is not None else None
        if enum is None or other.expr is None:
            raise _syntax(f"The enum literal {literal.text} can only be compared with an enum property.")
        if literal.type_name.rsplit(".", 1)[-1].lower() != enum.name.lower():
            raise _syntax(
                f"The enum literal {literal.text} is not of type '{enum.qualified_name}' of property '{other.name}'."
            )
        value = enum.value_of(literal.member)
        if value is None:
            raise _syntax(
                f"The string '{literal.member}' is not a valid enumeration type constant of '{enum.qualified_name}'."
            )
        if kind is ast.Eq:
            return other.expr == value
        return sa.or_(other.expr != value, other.expr.is_(None))

    def _in(self, left: _Operand, right: _Operand) -> sa.ColumnElement[bool]:
        if not self.dialect.allows_in:
            raise _syntax("The 'in' operator is not supported.")
        if left.expr is None or not isinstance(right.literal, ast.List):
            raise _syntax("The 'in' operator needs a property on the left and a list of values on the right.")
        values = [
            self._coerce(
                _Operand(literal=item, edm=_LITERAL_EDM.get(type(item))), left.edm or STRING, left.prop, ast.In, left
            )
            for item in right.literal.val
        ]
        return self._membership(left, values, negate=False)

    def _membership(self, operand: _Operand, values: list[Any], negate: bool) -> sa.ColumnElement[bool]:
        expr = operand.expr
        if operand.edm == STRING and self.dialect.case_insensitive:
            expr, values = sa.func.lower(expr), [v.lower() if isinstance(v, str) else v for v in values]
        if negate:
            return sa.or_(expr.not_in(values), operand.expr.is_(None))
        return expr.in_(values)

    # -- literal coercion ----------------------------------------------------------------------------
    def _coerce(self, literal_operand: _Operand, edm: str, prop: Property | None, kind: type, typed: _Operand) -> Any:
        """The Python value of an untyped literal, converted to ``edm`` (the other operand's type)."""
        literal = literal_operand.literal
        enum = prop.enum if prop is not None else None
        if isinstance(literal, ast.Null):
            return None
        if enum is not None and isinstance(literal, ast.String) and self.dialect.enum_literals:
            number = enum.value_of(literal.val)
            if number is None:
                raise _syntax(
                    f"The string '{literal.val}' is not a valid enumeration type constant of '{enum.qualified_name}'."
                )
            return number
        try:
            if edm == STRING and isinstance(literal, ast.String):
                return literal.val
            if edm in _INTEGRAL and isinstance(literal, ast.Integer):
                return _int(literal.val)
            if edm in _INTEGRAL and isinstance(literal, ast.Float):
                return float(literal.val)
            if edm == DECIMAL and isinstance(literal, (ast.Integer, ast.Float)):
                return decimal.Decimal(literal.val)
            if edm == DOUBLE and isinstance(literal, (ast.Integer, ast.Float)):
                return float(literal.val)
            if edm == BOOLEAN and isinstance(literal, ast.Boolean):
                return literal.py_val
            if edm == DATETIME and isinstance(literal, ast.DateTime):
                return _as_utc(literal.py_val)
            if edm == DATETIME and isinstance(literal, ast.Date):
                return dt.datetime.combine(literal.py_val, dt.time(), dt.UTC)
            if edm == DATE and isinstance(literal, ast.Date):
                return literal.py_val
            if edm == DATE and isinstance(literal, ast.DateTime):
                return _as_utc(literal.py_val).date()
            if edm == GUID and isinstance(literal, (ast.GUID, ast.String)):
                return _guid(literal.val)
        except ValueError:
            raise _syntax(f"The literal '{literal.val}' is not a valid {edm} value.") from None
        raise self._incompatible(kind, typed, literal_operand)

    def _incompatible(self, kind: type, left: _Operand, right: _Operand) -> BadRequest:
        def type_name(operand: _Operand) -> str:
            if isinstance(operand.literal, ast.List):
                return "Collection"
            return operand.edm or "null"

        operator_kind = _OPERATOR_KIND.get(kind, kind.__name__)
        return _syntax(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{type_name(left)}' and '{type_name(right)}' for operator kind '{operator_kind}'."
        )

    # -- arithmetic ----------------------------------------------------------------------------------
    def _arithmetic(self, node: ast.BinOp, scope: _Scope) -> _Operand:
        kind = type(node.op)
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        for operand in (left, right):
            if operand.nav is not None or operand.enum_literal is not None or operand.edm not in _NUMERIC:
                raise self._incompatible(kind, left, right)
        edm = _arithmetic_type(left.edm, right.edm)
        lhs = self._numeric_expr(left, edm)
        rhs = self._numeric_expr(right, edm)
        if kind is ast.Add:
            expr = lhs + rhs
        elif kind is ast.Sub:
            expr = lhs - rhs
        elif kind is ast.Mult:
            expr = lhs * rhs
        elif kind is ast.Div:
            # OData `div` on two integers truncates; SQLAlchemy 2's `/` would divide exactly.
            expr = lhs // rhs if edm in _INTEGRAL else lhs / rhs
        else:
            expr = lhs % rhs
        return _Operand(expr=expr, edm=edm)

    def _numeric_expr(self, operand: _Operand, edm: str) -> Any:
        if operand.literal is None:
            return operand.expr
        literal = operand.literal
        if edm in _INTEGRAL:
            return sa.literal(_int(literal.val), sa.BigInteger())
        if edm == DOUBLE:
            return sa.literal(float(literal.val), sa.Float())
        return sa.literal(decimal.Decimal(literal.val), sa.Numeric(38, 10))

    # -- functions -----------------------------------------------------------------------------------
    def _call(self, node: ast.Call, scope: _Scope) -> _Operand:
        name = node.func.full_name()
        if node.func.namespace:
            raise _unknown_function(name)
        if name in _STRING_FUNCTIONS and not self.dialect.string_functions:
            raise _syntax(
                f"The function '{name}' is not supported. Use '*' wildcards in an eq string literal to search text."
            )
        args = [self.value(arg, scope) for arg in node.args]
        if name in ("contains", "startswith", "endswith"):
            return _Operand(expr=self._like(name, args), edm=BOOLEAN)
        if name in ("tolower", "toupper", "trim"):
            text = self._string_arg(name, args[0])
            function = {"tolower": sa.func.lower, "toupper": sa.func.upper, "trim": sa.func.trim}[name]
            return _Operand(expr=function(text), edm=STRING)
        if name == "length":
            return _Operand(expr=sa.func.length(self._string_arg(name, args[0])), edm=INT32)
        if name == "concat":
            return _Operand(expr=self._string_arg(name, args[0]).concat(self._string_arg(name, args[1])), edm=STRING)
        if name == "indexof":
            return _Operand(
                expr=sa.func.instr(self._string_arg(name, args[0]), self._string_arg(name, args[1])) - 1, edm=INT32
            )
        if name == "substring":
            text = self._string_arg(name, args[0])
            start = self._int_arg(name, args[1]) + 1
            if len(args) == 3:
                return _Operand(expr=sa.func.substr(text, start, self._int_arg(name, args[2])), edm=STRING)
            return _Operand(expr=sa.func.substr(text, start), edm=STRING)
        if name in _DATE_PARTS:
            operand = args[0]
            if operand.expr is None or operand.edm not in _TEMPORAL:
                raise _syntax(f"The function '{name}' needs a date or date-time argument.")
            return _Operand(expr=sa.extract(_DATE_PARTS[name], operand.expr), edm=INT32)
        if name == "round":
            operand = args[0]
            if operand.expr is None or operand.edm not in _NUMERIC:
                raise _syntax("The function 'round' needs a numeric argument.")
            return _Operand(expr=sa.func.round(operand.expr), edm=operand.edm)
        if name == "now":
            return _Operand(expr=sa.literal(_utcnow(), sa.DateTime(timezone=True)), edm=DATETIME)
        raise _syntax(f"The function '{name}' is not supported.")

    def _string_arg(self, function: str, operand: _Operand) -> Any:
        if operand.literal is not None and isinstance(operand.literal, ast.String):
            return sa.literal(operand.literal.val, sa.Text())
        if operand.expr is None or operand.edm != STRING:
            raise _syntax(
                f"The function '{function}' needs string arguments; got '{operand.edm or operand.name or 'null'}'."
            )
        return operand.expr

    def _int_arg(self, function: str, operand: _Operand) -> Any:
        if isinstance(operand.literal, ast.Integer):
            return sa.literal(_int(operand.literal.val), sa.Integer())
        if operand.expr is None or operand.edm not in _INTEGRAL:
            raise _syntax(f"The function '{function}' needs an integer argument.")
        return operand.expr

    def _like(self, name: str, args: list[_Operand]) -> sa.ColumnElement[bool]:
        subject = self._string_arg(name, args[0])
        needle = args[1]
        if self.dialect.case_insensitive:
            # Dataverse: `%`, `_` and `[]` in the argument keep their SQL LIKE meaning; nothing is escaped.
            if isinstance(needle.literal, ast.String):
                text = needle.literal.val.lower()
                pattern: Any = {"contains": f"%{text}%", "startswith": f"{text}%", "endswith": f"%{text}"}[name]
            else:
                text_expr = sa.func.lower(self._string_arg(name, needle))
                pattern = {
                    "contains": sa.literal("%").concat(text_expr).concat("%"),
                    "startswith": text_expr.concat("%"),
                    "endswith": sa.literal("%").concat(text_expr),
                }[name]
            return sa.func.lower(subject).like(pattern)
        other = needle.literal.val if isinstance(needle.literal, ast.String) else self._string_arg(name, needle)
        if name == "contains":
            return subject.contains(other, autoescape=isinstance(other, str))
        if name == "startswith":
            return subject.startswith(other, autoescape=isinstance(other, str))
        return subject.endswith(other, autoescape=isinstance(other, str))

    # -- lambdas -------------------------------------------------------------------------------------
    def _lambda(self, node: ast.CollectionLambda, scope: _Scope) -> sa.ColumnElement[bool]:
        if not self.dialect.lambdas:
            raise _syntax("Lambda operators (any/all) are not supported.")
        owner = self.value(node.owner, scope)
        if owner.nav is None:
            raise _syntax(
                f"The any/all operator must be applied to a collection navigation property, not '{owner.name}'."
            )
        source, nav, hops = owner.nav
        if not nav.many:
            raise _syntax(
                f"The any/all operator cannot be applied to the single-valued navigation property '{owner.name}'."
            )
        target = self.model.entities.get(nav.target)
        if target is None:
            raise _syntax(f"The navigation property '{owner.name}' targets an unknown type.")
        alias = self.aliases.next(target)
        aliases = [hop.alias for hop in hops] + [alias]
        conditions: list[sa.ColumnElement[bool]] = []
        for hop in hops:
            conditions.extend(_join_conditions(hop.source, hop.nav, hop.alias))
        conditions.extend(_join_conditions(source, nav, alias))
        is_all = isinstance(node.operator, ast.All)
        if node.lambda_ is not None:
            variable = node.lambda_.identifier.name
            if variable in scope.variables:
                raise _syntax(f"The range variable '{variable}' has already been declared.")
            inner = _Scope(scope.entity, scope.source, {**scope.variables, variable: (target, alias)})
            body = self.condition(node.lambda_.expression, inner)
            # all(): a row whose predicate is null (unknown) must count as a counterexample.
            conditions.append(sa.not_(sa.func.coalesce(body, sa.false())) if is_all else body)
        elif is_all:
            raise _syntax("The all operator needs a lambda expression.")
        query = sa.select(sa.literal(1)).select_from(*aliases).where(*conditions).correlate_except(*aliases)
        exists = sa.exists(query)
        return sa.not_(exists) if is_all else exists

    # -- Dataverse query functions -------------------------------------------------------------------
    def _query_function(self, function: _QueryFunction, scope: _Scope) -> sa.ColumnElement[bool]:
        short = function.name.rsplit(".", 1)[-1]
        key = short.lower()
        handler = _QUERY_FUNCTIONS.get(key)
        if handler is None:
            raise _unknown_function(function.name)
        property_name = function.param("PropertyName")
        if not isinstance(property_name, str) or not property_name:
            raise _syntax(f"The query function '{function.name}' needs a PropertyName parameter.")
        operand = self._path(property_name.split("/"), scope)
        if operand.expr is None:
            raise _syntax(f"The query function '{function.name}' needs a property, not '{property_name}'.")
        return handler(self, function, operand)

    def _typed_from_text(self, text: str, operand: _Operand, function: str) -> Any:
        """A PropertyValues entry (always text on the wire) as a value of the property's type."""
        edm = operand.edm
        try:
            if edm == STRING:
                return text
            if edm in _INTEGRAL:
                return _int(text)
            if edm == DECIMAL:
                return decimal.Decimal(text)
            if edm == DOUBLE:
                return float(text)
            if edm == BOOLEAN:
                lowered = text.lower()
                if lowered in ("true", "1"):
                    return True
                if lowered in ("false", "0"):
                    return False
                raise ValueError(text)
            if edm == GUID:
                return _guid(text)
            if edm == DATETIME:
                return _parse_datetime(text)
            if edm == DATE:
                return _parse_datetime(text).date()
        except (ValueError, decimal.InvalidOperation):
            pass
        raise _syntax(
            f"The value '{text}' of query function '{function}' is not a valid {edm} value for "
            f"property '{operand.name}'."
        )

    def _values(self, function: _QueryFunction, operand: _Operand, count: int | None = None) -> list[Any]:
        raw = function.param("PropertyValues")
        if isinstance(raw, str):
            raw = (raw,)
        if raw is None or (count is not None and len(raw) != count) or not raw:
            expected = f"{count} values" if count is not None else "at least one value"
            raise _syntax(f"The query function '{function.name}' needs PropertyValues with {expected}.")
        return [self._typed_from_text(item, operand, function.name) for item in raw]

    def _count(self, function: _QueryFunction) -> int:
        raw = function.param("PropertyValue")
        if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,9}", raw.strip()):
            raise _syntax(f"The query function '{function.name}' needs a non-negative integer PropertyValue.")
        return int(raw)

    def _qf_in(self, function: _QueryFunction, operand: _Operand, negate: bool) -> sa.ColumnElement[bool]:
        return self._membership(operand, self._values(function, operand), negate)

    def _qf_between(self, function: _QueryFunction, operand: _Operand, negate: bool) -> sa.ColumnElement[bool]:
        low, high = self._values(function, operand, 2)
        expr = operand.expr
        if operand.edm == STRING and self.dialect.case_insensitive:
            expr, low, high = sa.func.lower(expr), low.lower(), high.lower()
        between = expr.between(low, high)
        return sa.or_(sa.not_(between), operand.expr.is_(None)) if negate else between

    def _qf_window(self, function: _QueryFunction, operand: _Operand) -> sa.ColumnElement[bool]:
        if operand.edm not in _TEMPORAL:
            raise _syntax(
                f"The query function '{function.name}' needs a date or date-time property, not '{operand.name}'."
            )
        key = function.name.rsplit(".", 1)[-1].lower()
        now = _utcnow()
        start, end, inclusive = _window(key, now, function, self)
        expr = operand.expr
        conditions = []
        if operand.edm == DATE:
            if start is not None:
                conditions.append(expr >= start.date())
            if end is not None:
                at_midnight = end.timetz().replace(tzinfo=None) == dt.time()
                conditions.append(expr < end.date() if at_midnight and not inclusive else expr <= end.date())
        else:
            if start is not None:
                conditions.append(expr >= start)
            if end is not None:
                conditions.append(expr <= end if inclusive else expr < end)
        return sa.and_(*conditions)


def _day_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    days_in_month = [
        31,
        29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days_in_month))


def _window(
    key: str, now: dt.datetime, function: _QueryFunction, compiler: _FilterCompiler
) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """(start, end, end_inclusive) of a relative date query function, in UTC."""
    today = _day_start(now)
    day = dt.timedelta(days=1)
    week_start = today - dt.timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday (en-US)
    month_start = today.replace(day=1)
    year_start = today.replace(month=1, day=1)
    fixed = {
        "today": (today, today + day),
        "yesterday": (today - day, today),
        "tomorrow": (today + day, today + 2 * day),
        "last7days": (today - 7 * day, now),
        "next7days": (now, today + 8 * day),
        "thisweek": (week_start, week_start + 7 * day),
        "lastweek": (week_start - 7 * day, week_start),
        "nextweek": (week_start + 7 * day, week_start + 14 * day),
        "thismonth": (month_start, _add_months(month_start, 1)),
        "lastmonth": (_add_months(month_start, -1), month_start),
        "nextmonth": (_add_months(month_start, 1), _add_months(month_start, 2)),
        "thisyear": (year_start, year_start.replace(year=year_start.year + 1)),
        "lastyear": (year_start.replace(year=year_start.year - 1), year_start),
        "nextyear": (year_start.replace(year=year_start.year + 1), year_start.replace(year=year_start.year + 2)),
    }
    if key in fixed:
        start, end = fixed[key]
        return start, end, key == "last7days"  # the only fixed window that ends at "now", inclusively
    if key in ("on", "onorafter", "onorbefore"):
        raw = function.param("PropertyValue")
        if not isinstance(raw, str):
            raise _syntax(f"The query function '{function.name}' needs a PropertyValue date.")
        try:
            date_start = _day_start(_parse_datetime(raw))
        except ValueError:
            raise _syntax(f"The value '{raw}' of query function '{function.name}' is not a valid date.") from None
        if key == "on":
            return date_start, date_start + day, False
        if key == "onorafter":
            return date_start, None, False
        return None, date_start + day, False
    count = compiler._count(function)
    direction, unit = re.fullmatch(r"(last|next|olderthan)x(\w+?)s?", key).groups()  # type: ignore[union-attr]
    span_units = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": day, "week": 7 * day}
    if unit in span_units:
        span = span_units[unit] * count
        if direction == "olderthan":
            return None, now - span, False
        if unit in ("minute", "hour"):
            return (now - span, now, True) if direction == "last" else (now, now + span, True)
        return (today - span, now, True) if direction == "last" else (now, today + span + day, False)
    months = count * (12 if unit == "year" else 1)
    if direction == "olderthan":
        return None, _add_months(now, -months), False
    if direction == "last":
        return _add_months(today, -months), now, True
    return now, _add_months(today, months) + day, False


_QUERY_FUNCTIONS: dict[str, Callable[[_FilterCompiler, _QueryFunction, _Operand], sa.ColumnElement[bool]]] = {
    "in": lambda c, f, o: c._qf_in(f, o, negate=False),
    "notin": lambda c, f, o: c._qf_in(f, o, negate=True),
    "between": lambda c, f, o: c._qf_between(f, o, negate=False),
    "notbetween": lambda c, f, o: c._qf_between(f, o, negate=True),
}
for _name in (
    "today",
    "yesterday",
    "tomorrow",
    "last7days",
    "next7days",
    "thisweek",
    "lastweek",
    "nextweek",
    "thismonth",
    "lastmonth",
    "nextmonth",
    "thisyear",
    "lastyear",
    "nextyear",
    "on",
    "onorafter",
    "onorbefore",
):
    _QUERY_FUNCTIONS[_name] = lambda c, f, o: c._qf_window(f, o)
for _unit in ("minutes", "hours", "days", "weeks", "months", "years"):
    for _direction in ("last", "next", "olderthan"):
        if _direction != "olderthan" and _unit == "minutes":
            continue
        _QUERY_FUNCTIONS[f"{_direction}x{_unit}"] = lambda c, f, o: c._qf_window(f, o)


# ---- small helpers --------------------------------------------------------------------------------


# SQLite refuses expression trees deeper than 1000, and renders `a OR b OR c ...` left-deep; parenthesized
# chunks keep a 2,000-term `or` (what a 32 KB URL can hold) far below that.
_CHUNK = 100


class _Parenthesized(ColumnElement[bool]):
    """Explicit parentheses SQLAlchemy will not flatten away (it merges nested `or_`/Grouping chains)."""

    __visit_name__ = "sandbox_parenthesized"
    inherit_cache = True
    _traverse_internals = [("clause", InternalTraversal.dp_clauseelement)]

    def __init__(self, clause: ColumnElement[bool]) -> None:
        self.clause = clause
        self.type = sa.Boolean()


@compiles(_Parenthesized)
def _compile_parenthesized(element: _Parenthesized, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clause, **kw)})"


def _balanced(items: list[Any], combine: Callable[..., Any]) -> Any:
    while len(items) > _CHUNK:
        items = [_Parenthesized(combine(*items[i : i + _CHUNK])) for i in range(0, len(items), _CHUNK)]
    return combine(*items)


def _flatten(node: Any) -> list[str]:
    segments: list[str] = []
    while isinstance(node, ast.Attribute):
        segments.append(node.attr)
        node = node.owner
    if not isinstance(node, ast.Identifier):
        raise _syntax("A property path must start with a property name.")
    segments.append(node.full_name())
    segments.reverse()
    return segments


def _compatible(left: str | None, right: str | None) -> bool:
    if left == right:
        return True
    if left in _NUMERIC and right in _NUMERIC:
        return True
    return left in _TEMPORAL and right in _TEMPORAL


def _arithmetic_type(left: str | None, right: str | None) -> str:
    if DOUBLE in (left, right):
        return DOUBLE
    if DECIMAL in (left, right):
        return DECIMAL
    return INT64 if INT64 in (left, right) else INT32


def _sa_type(edm: str | None) -> sa.types.TypeEngine[Any] | None:
    factory = _SA_TYPES.get(edm or "")
    return factory() if factory else None


def _bind_type(operand: _Operand, value: Any) -> sa.types.TypeEngine[Any] | None:
    # An Int32 column compared with 5.5 must bind a float: the column's Integer type would hand the
    # driver a value it truncates or cannot bind.
    if operand.edm in _INTEGRAL and isinstance(value, float):
        return sa.Float()
    return None


_INT64_LIMIT = 2**63


def _int(text: str) -> int:
    value = int(text)
    if not -_INT64_LIMIT <= value < _INT64_LIMIT:
        raise _syntax(f"The integer literal '{text}' is out of range.")
    return value


def _literal_value(literal: Any) -> Any:
    if isinstance(literal, ast.Integer):
        return _int(literal.val)
    if isinstance(literal, ast.DateTime):
        return _as_utc(literal.py_val)
    if isinstance(literal, (ast.GUID,)):
        return literal.val.lower()
    if isinstance(literal, ast.Float):
        return decimal.Decimal(literal.val)
    return literal.py_val


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _parse_datetime(text: str) -> dt.datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        return _as_utc(dt.datetime.fromisoformat(value))
    except ValueError:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)


def _guid(text: str) -> str:
    return str(uuid.UUID(text.strip()))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
