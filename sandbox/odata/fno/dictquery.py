"""OData query options over documents held as plain dicts: the F&O metadata service's collections.

The metadata service (``/Metadata/DataEntities``, ``PublicEntities``, ``PublicEnumerations``) is a small OData
service of its own whose rows are documents the sandbox derives from its model, not SQL rows. Its clients
filter and project them like any OData collection (``docs/reference/fno-odata.md`` section 1)::

    $filter=contains(tolower(Name), 'customer') and IsReadOnly eq false
    $filter=EntityCategory eq Microsoft.Dynamics.Metadata.EntityCategory'Master'
    $select=Name,EntitySetName&$top=10&$skip=10&$count=true&$orderby=Name desc

``$filter`` is parsed with the same grammar and rewrite as ``/data/`` (enum literals included) and evaluated
here over each dict. Unlike ``/data/``, the metadata service has the string functions (``contains``,
``startswith``, ``endswith``, ``tolower``, ``toupper``, ``length``, ``trim``, ``concat``, ``indexof``,
``substring``); lambdas over the nested lists (``Properties/any(...)``) are refused, as the real service does.
String comparisons are case-sensitive here (the documents are in memory, not in SQL Server's collation);
clients that want case-insensitive matching use ``tolower`` as ``d365fo-client`` does.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from odata_query import ast

from sandbox.errors import BadRequest
from sandbox.odata.fno.codes import NO_CODE, ODATA_EXCEPTION
from sandbox.odata.query.parsing import parse
from sandbox.odata.query.rewrite import EnumLiteral

Document = dict[str, Any]

_COMPARATORS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

_OPTIONS = {"$filter", "$select", "$top", "$skip", "$count", "$orderby", "$format"}


def odata_error(message: str) -> BadRequest:
    """A 400 in F&O's shape, typed as OData's own exception (the request could not be read)."""
    return BadRequest("An error has occurred.", NO_CODE, detail=message, extra={"type": ODATA_EXCEPTION})


@dataclass(frozen=True)
class DocumentType:
    """What a collection's documents are: their type name (for errors and enum literals) and properties."""

    qualified_name: str
    properties: tuple[str, ...]
    #: enum-typed properties: property name -> the enum's qualified name
    enums: Mapping[str, str]


@dataclass
class QueryResult:
    """The documents a query selected (projected) and, when ``$count=true``, how many matched."""

    documents: list[Document]
    count: int | None
    select: list[str] | None


def check_options(args: Mapping[str, str]) -> None:
    """Refuse a system query option the metadata service does not have (``$expand``, ``$search``, ...)."""
    for name in args:
        if name.startswith("$") and name not in _OPTIONS:
            raise odata_error(f"The query parameter '{name}' is not supported.")


def parse_select(text: str | None, doc_type: DocumentType) -> list[str] | None:
    """``$select`` as a list of property names (``*`` or nothing: every property)."""
    if text is None or not text.strip() or text.strip() == "*":
        return None
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in doc_type.properties:
            raise unknown_property(name, doc_type)
    return names


def project(document: Document, select: list[str] | None) -> Document:
    """The document with only the ``$select``ed properties (in the document's own order)."""
    if select is None:
        return document
    wanted = set(select)
    return {name: value for name, value in document.items() if name in wanted}


def unknown_property(name: str, doc_type: DocumentType) -> BadRequest:
    return odata_error(f"Could not find a property named '{name}' on type '{doc_type.qualified_name}'.")


def _non_negative(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise odata_error(f"Invalid value '{text}' for {name} query option found. It must be an integer.") from None
    if value < 0:
        raise odata_error(f"Invalid value '{text}' for {name} query option found. It must be non-negative.")
    return value


def query(documents: Iterable[Document], args: Mapping[str, str], doc_type: DocumentType) -> QueryResult:
    """Apply ``$filter``, ``$orderby``, ``$count``, ``$skip``, ``$top`` and ``$select`` (in that order)."""
    check_options(args)
    select = parse_select(args.get("$select"), doc_type)
    top = _non_negative("$top", args.get("$top"))
    skip = _non_negative("$skip", args.get("$skip"))
    count_text = args.get("$count")
    if count_text is not None and count_text.lower() not in ("true", "false"):
        raise odata_error(f"'{count_text}' is not a valid count option.")
    rows = list(documents)
    filter_text = args.get("$filter")
    if filter_text is not None:
        predicate = compile_filter(filter_text, doc_type)
        rows = [row for row in rows if predicate(row)]
    orderby = args.get("$orderby")
    if orderby:
        rows = _ordered(rows, orderby, doc_type)
    count = len(rows) if count_text is not None and count_text.lower() == "true" else None
    if skip:
        rows = rows[skip:]
    if top is not None:
        rows = rows[:top]
    return QueryResult([project(row, select) for row in rows], count, select)


def _ordered(rows: list[Document], text: str, doc_type: DocumentType) -> list[Document]:
    # Stable sorts applied from the last key to the first give the multi-key order.
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise odata_error(f"The $orderby expression '{text}' is not valid.")
        if words[0] not in doc_type.properties:
            raise unknown_property(words[0], doc_type)
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    for name, descending in reversed(keys):
        rows = sorted(rows, key=functools.partial(_sort_key_of, name), reverse=descending)
    return rows


def _sort_key_of(name: str, row: Document) -> tuple[int, Any]:
    return _sort_key(row.get(name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))


# ---- $filter ------------------------------------------------------------------------------------------------
Predicate = Callable[[Document], bool]
_Evaluator = Callable[[Document], Any]


def compile_filter(text: str, doc_type: DocumentType) -> Predicate:
    """``$filter`` text as a predicate over one document (every name and function checked up front)."""
    parsed = parse(text, True, None)
    evaluate = _Compiler(doc_type, parsed.placeholders).node(parsed.tree)
    return lambda document: evaluate(document) is True


class _Compiler:
    """Turns the grammar's tree into nested closures (checked once, run for each document)."""

    def __init__(self, doc_type: DocumentType, placeholders: Mapping[str, Any]) -> None:
        self.doc_type = doc_type
        self.placeholders = placeholders

    def node(self, node: Any) -> _Evaluator:
        if isinstance(node, ast.BoolOp):
            left, right = self.node(node.left), self.node(node.right)
            if isinstance(node.op, ast.And):
                return lambda d: left(d) is True and right(d) is True
            return lambda d: left(d) is True or right(d) is True
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = self.node(node.operand)
            return lambda d: operand(d) is not True
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Identifier):
            return self.identifier(node)
        if isinstance(node, ast.Null):
            return lambda d: None
        if isinstance(node, ast.Boolean):
            flag = str(node.val).lower() == "true"
            return lambda d: flag
        if isinstance(node, ast.String):
            text = node.val
            return lambda d: text
        if isinstance(node, ast.Integer):
            number = int(node.val)
            return lambda d: number
        if isinstance(node, ast.Float):
            real = float(node.val)
            return lambda d: real
        if isinstance(node, ast.List):
            items = [self.node(item) for item in node.val]
            return lambda d: [item(d) for item in items]
        if isinstance(node, ast.Lambda | ast.CollectionLambda):
            raise odata_error("Lambda expressions (any, all) are not supported by the metadata service.")
        raise odata_error(f"The $filter expression is not supported by the metadata service: {type(node).__name__}.")

    def identifier(self, node: ast.Identifier) -> _Evaluator:
        placeholder = self.placeholders.get(node.name)
        if isinstance(placeholder, EnumLiteral):
            raise odata_error(f"The enum literal {placeholder.text} can only be compared with an enum property.")
        if node.namespace or node.name not in self.doc_type.properties:
            raise unknown_property(".".join((*node.namespace, node.name)), self.doc_type)
        name = node.name
        return lambda d: d.get(name)

    def compare(self, node: ast.Compare) -> _Evaluator:
        if isinstance(node.comparator, ast.In):
            left = self.node(node.left)
            right = self.node(node.right)
            return lambda d: left(d) in (right(d) or [])
        enum_side = self._enum_literal(node.left) or self._enum_literal(node.right)
        if enum_side is not None:
            return self._enum_compare(node)
        function = _COMPARATORS.get(type(node.comparator))
        if function is None:
            raise odata_error(f"The operator '{type(node.comparator).__name__}' is not supported.")
        left, right = self.node(node.left), self.node(node.right)

        def evaluate(d: Document) -> bool:
            a, b = left(d), right(d)
            if a is None or b is None:
                return function is operator.eq and a is b or function is operator.ne and a is not b
            try:
                return bool(function(a, b))
            except TypeError:
                raise odata_error(
                    f"A binary operator with incompatible types was detected: '{type(a).__name__}' and "
                    f"'{type(b).__name__}'."
                ) from None

        return evaluate

    def _enum_literal(self, node: Any) -> EnumLiteral | None:
        if isinstance(node, ast.Identifier):
            placeholder = self.placeholders.get(node.name)
            if isinstance(placeholder, EnumLiteral):
                return placeholder
        return None

    def _enum_compare(self, node: ast.Compare) -> _Evaluator:
        literal = self._enum_literal(node.right) or self._enum_literal(node.left)
        other = node.left if self._enum_literal(node.right) else node.right
        assert literal is not None
        if not isinstance(node.comparator, ast.Eq | ast.NotEq):
            raise odata_error(f"Only eq and ne can compare the enum literal {literal.text}.")
        if not isinstance(other, ast.Identifier) or other.name not in self.doc_type.enums:
            raise odata_error(f"The enum literal {literal.text} can only be compared with an enum property.")
        expected_type = self.doc_type.enums[other.name]
        if literal.type_name.lower() != expected_type.lower():
            raise odata_error(
                f"The enum literal {literal.text} is not of type '{expected_type}' of property '{other.name}'."
            )
        name, member, equal = other.name, literal.member.lower(), isinstance(node.comparator, ast.Eq)
        return lambda d: (str(d.get(name, "")).lower() == member) is equal

    def call(self, node: ast.Call) -> _Evaluator:
        name = node.func.name.lower()
        spec = _FUNCTIONS.get(name)
        if spec is None or node.func.namespace:
            raise odata_error(f"Unknown function '{node.func.name}'.")
        arity, function = spec
        if len(node.args) not in arity:
            raise odata_error(f"The function '{node.func.name}' takes {' or '.join(map(str, arity))} arguments.")
        args = [self.node(arg) for arg in node.args]

        def evaluate(d: Document) -> Any:
            values = [arg(d) for arg in args]
            if any(value is None for value in values):
                return None
            try:
                return function(*values)
            except (TypeError, AttributeError):
                raise odata_error(f"The function '{node.func.name}' cannot take these arguments.") from None

        return evaluate


def _substring(text: str, start: int, length: int | None = None) -> str:
    return text[start:] if length is None else text[start : start + length]


_FUNCTIONS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "contains": ((2,), lambda a, b: str(b) in str(a)),
    "startswith": ((2,), lambda a, b: str(a).startswith(str(b))),
    "endswith": ((2,), lambda a, b: str(a).endswith(str(b))),
    "tolower": ((1,), lambda a: str(a).lower()),
    "toupper": ((1,), lambda a: str(a).upper()),
    "trim": ((1,), lambda a: str(a).strip()),
    "length": ((1,), lambda a: len(str(a))),
    "indexof": ((2,), lambda a, b: str(a).find(str(b))),
    "concat": ((2,), lambda a, b: f"{a}{b}"),
    "substring": ((2, 3), _substring),
}
