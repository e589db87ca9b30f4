"""Map filters: a map's OData ``$filter`` text on the row's own columns, as an in-memory predicate.

A filter is parsed once, when its map is compiled (:mod:`bridge.compiled`), into nested closures; the
closures then run for every row the map sees (an initial sync runs them on every row of the table).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

from odata_query import ast as q
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

#: a compiled map filter: does the row pass?
Predicate = Callable[[dict[str, Any]], bool]

#: the nodes a map filter may hold: comparisons of columns and literals joined by and/or/not
_ALLOWED = (
    q.Compare,
    q.BoolOp,
    q.UnaryOp,
    q.Identifier,
    q.String,
    q.Integer,
    q.Float,
    q.Boolean,
    q.Null,
    q.GUID,
    q.DateTime,
    q.Date,
)


def _parse(text: str) -> Any:
    # A lexer and a parser per call: both are cheap to make, and a parser holds state while it parses, so
    # sharing one between threads would need a lock.
    try:
        return ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise ValueError(str(exc)) from None


def compile_predicate(text: str) -> Predicate:
    """An in-memory predicate for a map filter (OData ``$filter`` syntax on the row's own columns).

    Raises ``ValueError`` for text that does not parse or uses anything but comparisons, and/or/not,
    columns and literals."""
    tree = _parse(text)
    if tree is None:
        raise ValueError("empty filter")
    _check_tree(tree)
    evaluate = _compile(tree)
    return lambda row: bool(evaluate(row))


def filter_columns(text: str) -> set[str]:
    """The column names a map filter reads."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, q.Identifier):
            names.add(node.name)
        for child in ("left", "right", "operand"):
            if hasattr(node, child):
                walk(getattr(node, child))

    walk(_parse(text))
    return names


def _check_tree(node: Any) -> None:
    if not isinstance(node, _ALLOWED):
        raise ValueError(f"unsupported expression {type(node).__name__} in a map filter")
    for child in ("left", "right", "operand"):
        if hasattr(node, child):
            _check_tree(getattr(node, child))


def _compile(node: Any) -> Callable[[dict[str, Any]], Any]:
    """The expression as nested closures: the tree is walked once, not for every row a filter sees."""
    if isinstance(node, q.BoolOp):
        left, right = _compile(node.left), _compile(node.right)
        if isinstance(node.op, q.And):
            return lambda row: bool(left(row)) and bool(right(row))
        return lambda row: bool(left(row)) or bool(right(row))
    if isinstance(node, q.UnaryOp):
        operand = _compile(node.operand)
        return lambda row: not operand(row)
    if isinstance(node, q.Compare):
        op, left, right = node.comparator, _compile(node.left), _compile(node.right)
        return lambda row: _compare(op, left(row), right(row))
    if isinstance(node, q.Identifier):
        name = node.name
        return lambda row: row.get(name)
    constant = _literal(node)
    return lambda row: constant


def _literal(node: Any) -> Any:
    """The value of a literal node (literals are immutable values, computed once per filter)."""
    if isinstance(node, q.Null):
        return None
    if isinstance(node, q.Boolean):
        return node.val.lower() == "true" if isinstance(node.val, str) else bool(node.val)
    if isinstance(node, q.Integer):
        return int(node.val)
    if isinstance(node, q.Float):
        return decimal.Decimal(str(node.val))
    return node.val


def _compare(op: Any, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()  # both services compare strings without case
    if isinstance(op, q.Eq):
        return bool(left == right)
    if isinstance(op, q.NotEq):
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if isinstance(op, q.Lt):
            return bool(left < right)
        if isinstance(op, q.LtE):
            return bool(left <= right)
        if isinstance(op, q.Gt):
            return bool(left > right)
        if isinstance(op, q.GtE):
            return bool(left >= right)
    except TypeError:
        return False
    raise ValueError(f"unsupported comparison {type(op).__name__}")


__all__ = ["Predicate", "compile_predicate", "filter_columns"]
