"""``$filter`` translated to SQLAlchemy: the parsed tree becomes a boolean expression over ``entity.table``.

The library's own SQLAlchemy visitor is not used: the two services disagree with plain OData on case
sensitivity, wildcards, enums, ``ne`` and null, and on which functions exist, and those rules are spelled
out by :class:`~sandbox.odata.query.dialect.FilterDialect`. Query functions a dialect adds (Dataverse's
``Microsoft.Dynamics.CRM.*``) are looked up in its :class:`~sandbox.odata.query.dialect.QueryFunctions`
and written with the public helpers of :class:`FilterCompiler`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from odata_query import ast
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
from sandbox.odata.query.dialect import FilterDialect
from sandbox.odata.query.errors import syntax, unknown_function, unknown_property
from sandbox.odata.query.parsing import parse
from sandbox.odata.query.paths import Aliases, Hop, join_conditions, nav_target, through, visible
from sandbox.odata.query.rewrite import EnumLiteral, QueryFunctionCall, substitute_aliases

NUMERIC = {INT32, INT64, DECIMAL, DOUBLE}
INTEGRAL = {INT32, INT64}
TEMPORAL = {DATETIME, DATE}

_OPERATOR_KIND: dict[type, str] = {
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
_OPERATOR_TEXT: dict[type, str] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Lt: "lt",
    ast.LtE: "le",
}
_COMPARE: dict[type, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
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


def utcnow() -> dt.datetime:
    """The clock relative date functions use (a seam for tests)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Operand:
    """A translated sub-expression: a SQL expression with its EDM type, an untyped literal, or a nav."""

    expr: Any = None
    edm: str | None = None
    literal: Any = None  # an ast literal not yet bound to a type
    prop: Property | None = None
    enum_literal: EnumLiteral | None = None
    nav: tuple[Any, NavigationProperty, list[Hop]] | None = None  # (source, nav, hops) of a path ending in a nav
    name: str = ""

    @property
    def is_null(self) -> bool:
        return isinstance(self.literal, ast.Null)


@dataclass(frozen=True)
class Scope:
    """Where names resolve: the entity and table (or alias) of the expression, and the lambda variables."""

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
        raise syntax("The $filter expression is empty.")
    if "@" in text:
        text = substitute_aliases(text, aliases)
    parsed = parse(text, dialect.enum_literals, dialect.query_functions_namespace)
    compiler = FilterCompiler(text, model, dialect, parsed.placeholders)
    scope = Scope(entity, entity.table, {})
    try:
        return compiler.condition(parsed.tree, scope)
    except RecursionError:
        raise syntax(f"The $filter expression '{text}' is nested too deeply.") from None
    except (decimal.InvalidOperation, OverflowError, ValueError) as exc:
        raise syntax(f"The $filter expression '{text}' contains an invalid value: {exc}") from None
    except (sa.exc.SQLAlchemyError, TypeError, AttributeError, LookupError):
        # A construct we do not translate must still answer 400, never a 500.
        raise syntax(f"The $filter expression '{text}' is not supported.") from None


class FilterCompiler:
    """Translates one parsed ``$filter`` of one entity; query function handlers use its public helpers."""

    def __init__(self, text: str, model: Model, dialect: FilterDialect, placeholders: dict[str, Any]) -> None:
        self.text = text
        self.model = model
        self.dialect = dialect
        self.placeholders = placeholders
        self.aliases = Aliases()

    # -- entry points --------------------------------------------------------------------------------
    def condition(self, node: Any, scope: Scope) -> sa.ColumnElement[bool]:
        """``node`` as a boolean SQL expression."""
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node, scope)
        return self._as_condition(self.value(node, scope))

    def _as_condition(self, operand: Operand, not_operator: bool = False) -> sa.ColumnElement[bool]:
        if isinstance(operand.literal, ast.Boolean):
            return sa.true() if operand.literal.py_val else sa.false()
        if operand.edm != BOOLEAN or operand.expr is None:
            if not_operator:
                raise syntax(
                    "A unary operator with an incompatible type was detected. Found operand type "
                    f"'{operand.edm or 'null'}' for operator kind 'Not'."
                )
            raise syntax("The $filter expression must evaluate to a single boolean value.")
        if operand.prop is not None:
            # A bare boolean column: compare explicitly so NULL stays false on every database.
            return _condition(operand.expr == sa.true())
        return _condition(operand.expr)

    def value(self, node: Any, scope: Scope) -> Operand:
        """``node`` as an operand (SQL expression, pending literal or navigation)."""
        if isinstance(node, ast.Identifier):
            return self._identifier(node, scope)
        if isinstance(node, ast.Attribute):
            return self._path(_flatten(node), scope)
        if isinstance(node, ast.List):
            return Operand(literal=node)
        if isinstance(node, ast._Literal):
            return Operand(literal=node, edm=_LITERAL_EDM.get(type(node)))
        if isinstance(node, ast.Compare):
            return Operand(expr=self._compare(node, scope), edm=BOOLEAN)
        if isinstance(node, ast.BoolOp):
            return Operand(expr=self._bool_op(node, scope), edm=BOOLEAN)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, scope)
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.CollectionLambda):
            return Operand(expr=self._lambda(node, scope), edm=BOOLEAN)
        raise syntax(f"The $filter expression '{self.text}' is not supported.")

    # -- boolean structure ---------------------------------------------------------------------------
    def _bool_op(self, node: ast.BoolOp, scope: Scope) -> sa.ColumnElement[bool]:
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

    def _unary(self, node: ast.UnaryOp, scope: Scope) -> Operand:
        if isinstance(node.op, ast.Not):
            if isinstance(node.operand, ast.BoolOp):
                return Operand(expr=sa.not_(self._bool_op(node.operand, scope)), edm=BOOLEAN)
            inner = self._as_condition(self.value(node.operand, scope), not_operator=True)
            return Operand(expr=sa.not_(inner), edm=BOOLEAN)
        operand = self.value(node.operand, scope)
        if isinstance(operand.literal, (ast.Integer, ast.Float)):
            # `-(5)` / `- 5`: the lexer only folds the sign into numbers written as `-5`.
            val = operand.literal.val
            negated = val[1:] if val.startswith("-") else "-" + val.lstrip("+")
            return Operand(literal=type(operand.literal)(negated), edm=operand.edm)
        if operand.literal is not None or operand.edm not in NUMERIC or operand.expr is None:
            raise syntax(f"The operator '-' cannot be applied to '{operand.name or operand.edm or 'null'}'.")
        return Operand(expr=-operand.expr, edm=operand.edm)

    # -- names ---------------------------------------------------------------------------------------
    def _identifier(self, node: ast.Identifier, scope: Scope) -> Operand:
        if not node.namespace and node.name in self.placeholders:
            item = self.placeholders[node.name]
            if isinstance(item, EnumLiteral):
                return Operand(enum_literal=item, name=item.text)
            return Operand(expr=self._query_function(item, scope), edm=BOOLEAN)
        return self._path([_full_name(node)], scope)

    def _path(self, segments: list[str], scope: Scope) -> Operand:
        entity, source = scope.entity, scope.source
        if segments[0] in scope.variables:
            entity, source = scope.variables[segments[0]]
            segments = segments[1:]
            if not segments:
                raise syntax(f"The range variable cannot be used as a value in '{self.text}'.")
        hops: list[Hop] = []
        for index, name in enumerate(segments):
            last = index == len(segments) - 1
            prop = visible(entity, name)
            if prop is not None:
                if not last:
                    raise syntax(
                        f"Property '{name}' of type '{self.dialect.label(entity)}' has no properties to navigate."
                    )
                return Operand(expr=through(hops, source.c[name]), edm=prop.type, prop=prop, name="/".join(segments))
            nav = entity.navigations.get(name)
            if nav is None:
                raise unknown_property(name, entity, self.dialect)
            if last:
                return Operand(nav=(source, nav, hops), name="/".join(segments))
            if nav.many:
                raise syntax(
                    f"The parent value for a property access of a property '{segments[index + 1]}' is not a "
                    "single value. Property access can only be applied to a single value."
                )
            target = nav_target(self.model, entity, nav)
            alias = self.aliases.next(target)
            hops.append(Hop(source, nav, alias))
            entity, source = target, alias
        raise syntax(f"The $filter expression '{self.text}' is not supported.")

    # -- comparisons ---------------------------------------------------------------------------------
    def _compare(self, node: ast.Compare, scope: Scope) -> sa.ColumnElement[bool]:
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

    def _compare_literal(self, kind: type, left: Operand, right: Operand) -> sa.ColumnElement[bool]:
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

    def _compare_columns(self, kind: type, left: Operand, right: Operand) -> sa.ColumnElement[bool]:
        if not _compatible(left.edm, right.edm):
            raise self._incompatible(kind, left, right)
        self._check_enum_operator(kind, right)
        lhs, rhs = left.expr, right.expr
        if left.edm == STRING and self.dialect.case_insensitive:
            lhs, rhs = sa.func.lower(lhs), sa.func.lower(rhs)
        if kind is ast.Eq:
            return _condition(lhs == rhs)
        if kind is ast.NotEq:
            return _condition(lhs.is_distinct_from(rhs))
        return _COMPARE[kind](lhs, rhs)

    def _null_compare(self, kind: type, operand: Operand, both_null: bool) -> sa.ColumnElement[bool]:
        if both_null:
            return sa.true() if kind is ast.Eq else sa.false()
        if operand.expr is None:
            # A non-null literal against null (`5 eq null`).
            return sa.true() if kind is ast.NotEq else sa.false()
        if kind is ast.Eq:
            return _condition(operand.expr.is_(None))
        if kind is ast.NotEq:
            return _condition(operand.expr.is_not(None))
        # Ordering against null is never true (OData and SQL agree).
        return sa.false()

    def _nav_null_compare(self, kind: type, left: Operand, right: Operand) -> sa.ColumnElement[bool]:
        nav_side, other = (left, right) if left.nav is not None else (right, left)
        assert nav_side.nav is not None
        source, nav, hops = nav_side.nav
        if not other.is_null or kind not in (ast.Eq, ast.NotEq) or nav.many or not nav.pairs:
            raise syntax(f"The navigation property '{nav_side.name}' can only be compared with null.")
        local = through(hops, source.c[nav.pairs[0][0]])
        return local.is_(None) if kind is ast.Eq else local.is_not(None)

    def _check_enum_operator(self, kind: type, operand: Operand) -> None:
        if (
            self.dialect.enum_literals
            and operand.prop is not None
            and operand.prop.enum is not None
            and kind not in (ast.Eq, ast.NotEq)
        ):
            raise syntax(
                f"The operator '{_OPERATOR_TEXT.get(kind, kind.__name__)}' is not supported for the "
                f"enum property '{operand.name}'; use eq or ne."
            )

    def _enum_literal_compare(self, kind: type, left: Operand, right: Operand) -> sa.ColumnElement[bool]:
        literal_side, other = (right, left) if right.enum_literal is not None else (left, right)
        literal = literal_side.enum_literal
        assert literal is not None
        if kind not in (ast.Eq, ast.NotEq):
            raise syntax(
                f"The operator '{_OPERATOR_TEXT.get(kind, kind.__name__)}' is not supported for enum "
                f"values; use eq or ne."
            )
        enum = other.prop.enum if other.prop is not None else None
        if enum is None or other.expr is None:
            raise syntax(f"The enum literal {literal.text} can only be compared with an enum property.")
        if literal.type_name.rsplit(".", 1)[-1].lower() != enum.name.lower():
            raise syntax(
                f"The enum literal {literal.text} is not of type '{enum.qualified_name}' of property '{other.name}'."
            )
        value = enum.value_of(literal.member)
        if value is None:
            raise syntax(
                f"The string '{literal.member}' is not a valid enumeration type constant of '{enum.qualified_name}'."
            )
        if kind is ast.Eq:
            return _condition(other.expr == value)
        return sa.or_(other.expr != value, other.expr.is_(None))

    def _in(self, left: Operand, right: Operand) -> sa.ColumnElement[bool]:
        if not self.dialect.allows_in:
            raise syntax("The 'in' operator is not supported.")
        if left.expr is None or not isinstance(right.literal, ast.List):
            raise syntax("The 'in' operator needs a property on the left and a list of values on the right.")
        values = [
            self._coerce(
                Operand(literal=item, edm=_LITERAL_EDM.get(type(item))), left.edm or STRING, left.prop, ast.In, left
            )
            for item in right.literal.val
        ]
        return self.membership(left, values, negate=False)

    def membership(self, operand: Operand, values: list[Any], negate: bool) -> sa.ColumnElement[bool]:
        """``operand`` in (or, with ``negate``, not in or null) ``values``, case-insensitive where the
        dialect is."""
        expr = operand.expr
        if operand.edm == STRING and self.dialect.case_insensitive:
            expr, values = sa.func.lower(expr), [v.lower() if isinstance(v, str) else v for v in values]
        if negate:
            return sa.or_(expr.not_in(values), operand.expr.is_(None))
        return _condition(expr.in_(values))

    # -- literal coercion ----------------------------------------------------------------------------
    def _coerce(self, literal_operand: Operand, edm: str, prop: Property | None, kind: type, typed: Operand) -> Any:
        """The Python value of an untyped literal, converted to ``edm`` (the other operand's type)."""
        literal = literal_operand.literal
        enum = prop.enum if prop is not None else None
        if isinstance(literal, ast.Null):
            return None
        if enum is not None and isinstance(literal, ast.String) and self.dialect.enum_literals:
            number = enum.value_of(literal.val)
            if number is None:
                raise syntax(
                    f"The string '{literal.val}' is not a valid enumeration type constant of '{enum.qualified_name}'."
                )
            return number
        try:
            if edm == STRING and isinstance(literal, ast.String):
                return literal.val
            if edm in INTEGRAL and isinstance(literal, ast.Integer):
                return int_literal(literal.val)
            if edm in INTEGRAL and isinstance(literal, ast.Float):
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
                return guid_literal(literal.val)
        except ValueError:
            raise syntax(f"The literal '{literal.val}' is not a valid {edm} value.") from None
        raise self._incompatible(kind, typed, literal_operand)

    def _incompatible(self, kind: type, left: Operand, right: Operand) -> BadRequest:
        def type_name(operand: Operand) -> str:
            if isinstance(operand.literal, ast.List):
                return "Collection"
            return operand.edm or "null"

        operator_kind = _OPERATOR_KIND.get(kind, kind.__name__)
        return syntax(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{type_name(left)}' and '{type_name(right)}' for operator kind '{operator_kind}'."
        )

    # -- arithmetic ----------------------------------------------------------------------------------
    def _arithmetic(self, node: ast.BinOp, scope: Scope) -> Operand:
        kind = type(node.op)
        left = self.value(node.left, scope)
        right = self.value(node.right, scope)
        for operand in (left, right):
            if operand.nav is not None or operand.enum_literal is not None or operand.edm not in NUMERIC:
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
            expr = lhs // rhs if edm in INTEGRAL else lhs / rhs
        else:
            expr = lhs % rhs
        return Operand(expr=expr, edm=edm)

    def _numeric_expr(self, operand: Operand, edm: str) -> Any:
        if operand.literal is None:
            return operand.expr
        literal = operand.literal
        if edm in INTEGRAL:
            return sa.literal(int_literal(literal.val), sa.BigInteger())
        if edm == DOUBLE:
            return sa.literal(float(literal.val), sa.Float())
        return sa.literal(decimal.Decimal(literal.val), sa.Numeric(38, 10))

    # -- functions -----------------------------------------------------------------------------------
    def _call(self, node: ast.Call, scope: Scope) -> Operand:
        name = _full_name(node.func)
        if node.func.namespace:
            raise unknown_function(name)
        if name in _STRING_FUNCTIONS and not self.dialect.string_functions:
            raise syntax(
                f"The function '{name}' is not supported. Use '*' wildcards in an eq string literal to search text."
            )
        args = [self.value(arg, scope) for arg in node.args]
        if name in ("contains", "startswith", "endswith"):
            return Operand(expr=self._like(name, args), edm=BOOLEAN)
        if name in ("tolower", "toupper", "trim"):
            text = self._string_arg(name, args[0])
            function = {"tolower": sa.func.lower, "toupper": sa.func.upper, "trim": sa.func.trim}[name]
            return Operand(expr=function(text), edm=STRING)
        if name == "length":
            return Operand(expr=sa.func.length(self._string_arg(name, args[0])), edm=INT32)
        if name == "concat":
            return Operand(expr=self._string_arg(name, args[0]).concat(self._string_arg(name, args[1])), edm=STRING)
        if name == "indexof":
            return Operand(
                expr=sa.func.instr(self._string_arg(name, args[0]), self._string_arg(name, args[1])) - 1, edm=INT32
            )
        if name == "substring":
            text = self._string_arg(name, args[0])
            start = self._int_arg(name, args[1]) + 1
            if len(args) == 3:
                return Operand(expr=sa.func.substr(text, start, self._int_arg(name, args[2])), edm=STRING)
            return Operand(expr=sa.func.substr(text, start), edm=STRING)
        if name in _DATE_PARTS:
            operand = args[0]
            if operand.expr is None or operand.edm not in TEMPORAL:
                raise syntax(f"The function '{name}' needs a date or date-time argument.")
            return Operand(expr=sa.extract(_DATE_PARTS[name], operand.expr), edm=INT32)
        if name == "round":
            operand = args[0]
            if operand.expr is None or operand.edm not in NUMERIC:
                raise syntax("The function 'round' needs a numeric argument.")
            return Operand(expr=sa.func.round(operand.expr), edm=operand.edm)
        if name == "now":
            return Operand(expr=sa.literal(utcnow(), sa.DateTime(timezone=True)), edm=DATETIME)
        raise syntax(f"The function '{name}' is not supported.")

    def _string_arg(self, function: str, operand: Operand) -> Any:
        if operand.literal is not None and isinstance(operand.literal, ast.String):
            return sa.literal(operand.literal.val, sa.Text())
        if operand.expr is None or operand.edm != STRING:
            raise syntax(
                f"The function '{function}' needs string arguments; got '{operand.edm or operand.name or 'null'}'."
            )
        return operand.expr

    def _int_arg(self, function: str, operand: Operand) -> Any:
        if isinstance(operand.literal, ast.Integer):
            return sa.literal(int_literal(operand.literal.val), sa.Integer())
        if operand.expr is None or operand.edm not in INTEGRAL:
            raise syntax(f"The function '{function}' needs an integer argument.")
        return operand.expr

    def _like(self, name: str, args: list[Operand]) -> sa.ColumnElement[bool]:
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
            return _condition(subject.contains(other, autoescape=isinstance(other, str)))
        if name == "startswith":
            return _condition(subject.startswith(other, autoescape=isinstance(other, str)))
        return _condition(subject.endswith(other, autoescape=isinstance(other, str)))

    # -- lambdas -------------------------------------------------------------------------------------
    def _lambda(self, node: ast.CollectionLambda, scope: Scope) -> sa.ColumnElement[bool]:
        if not self.dialect.lambdas:
            raise syntax("Lambda operators (any/all) are not supported.")
        owner = self.value(node.owner, scope)
        if owner.nav is None:
            raise syntax(
                f"The any/all operator must be applied to a collection navigation property, not '{owner.name}'."
            )
        source, nav, hops = owner.nav
        if not nav.many:
            raise syntax(
                f"The any/all operator cannot be applied to the single-valued navigation property '{owner.name}'."
            )
        target = self.model.entities.get(nav.target)
        if target is None:
            raise syntax(f"The navigation property '{owner.name}' targets an unknown type.")
        alias = self.aliases.next(target)
        aliases = [hop.alias for hop in hops] + [alias]
        conditions: list[sa.ColumnElement[bool]] = []
        for hop in hops:
            conditions.extend(join_conditions(hop.source, hop.nav, hop.alias))
        conditions.extend(join_conditions(source, nav, alias))
        is_all = isinstance(node.operator, ast.All)
        if node.lambda_ is not None:
            variable = node.lambda_.identifier.name
            if variable in scope.variables:
                raise syntax(f"The range variable '{variable}' has already been declared.")
            inner = Scope(scope.entity, scope.source, {**scope.variables, variable: (target, alias)})
            body = self.condition(node.lambda_.expression, inner)
            # all(): a row whose predicate is null (unknown) must count as a counterexample.
            conditions.append(sa.not_(sa.func.coalesce(body, sa.false())) if is_all else body)
        elif is_all:
            raise syntax("The all operator needs a lambda expression.")
        query = sa.select(sa.literal(1)).select_from(*aliases).where(*conditions).correlate_except(*aliases)
        exists = sa.exists(query)
        return sa.not_(exists) if is_all else exists

    # -- query functions of the dialect --------------------------------------------------------------
    def _query_function(self, function: QueryFunctionCall, scope: Scope) -> sa.ColumnElement[bool]:
        functions = self.dialect.query_functions
        handler = functions.handlers.get(function.name.rsplit(".", 1)[-1].lower()) if functions else None
        if handler is None:
            raise unknown_function(function.name)
        property_name = function.param("PropertyName")
        if not isinstance(property_name, str) or not property_name:
            raise syntax(f"The query function '{function.name}' needs a PropertyName parameter.")
        operand = self._path(property_name.split("/"), scope)
        if operand.expr is None:
            raise syntax(f"The query function '{function.name}' needs a property, not '{property_name}'.")
        return handler(self, function, operand)


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


def _balanced(
    items: list[sa.ColumnElement[bool]], combine: Callable[..., sa.ColumnElement[bool]]
) -> sa.ColumnElement[bool]:
    while len(items) > _CHUNK:
        items = [_Parenthesized(combine(*items[i : i + _CHUNK])) for i in range(0, len(items), _CHUNK)]
    return combine(*items)


def _flatten(node: Any) -> list[str]:
    segments: list[str] = []
    while isinstance(node, ast.Attribute):
        segments.append(node.attr)
        node = node.owner
    if not isinstance(node, ast.Identifier):
        raise syntax("A property path must start with a property name.")
    segments.append(_full_name(node))
    segments.reverse()
    return segments


def _compatible(left: str | None, right: str | None) -> bool:
    if left == right:
        return True
    if left in NUMERIC and right in NUMERIC:
        return True
    return left in TEMPORAL and right in TEMPORAL


def _arithmetic_type(left: str | None, right: str | None) -> str:
    if DOUBLE in (left, right):
        return DOUBLE
    if DECIMAL in (left, right):
        return DECIMAL
    return INT64 if INT64 in (left, right) else INT32


def _sa_type(edm: str | None) -> sa.types.TypeEngine[Any] | None:
    factory = _SA_TYPES.get(edm or "")
    return factory() if factory else None


def _bind_type(operand: Operand, value: Any) -> sa.types.TypeEngine[Any] | None:
    # An Int32 column compared with 5.5 must bind a float: the column's Integer type would hand the
    # driver a value it truncates or cannot bind.
    if operand.edm in INTEGRAL and isinstance(value, float):
        return sa.Float()
    return None


_INT64_LIMIT = 2**63


def int_literal(text: str) -> int:
    """An integer literal, refused (400) outside Edm.Int64."""
    value = int(text)
    if not -_INT64_LIMIT <= value < _INT64_LIMIT:
        raise syntax(f"The integer literal '{text}' is out of range.")
    return value


def _literal_value(literal: Any) -> Any:
    if isinstance(literal, ast.Integer):
        return int_literal(literal.val)
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


def parse_datetime(text: str) -> dt.datetime:
    """An ISO date or date-time (``Z`` or an offset) as an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        return _as_utc(dt.datetime.fromisoformat(value))
    except ValueError:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)


def guid_literal(text: str) -> str:
    """A GUID in its canonical lower-case form."""
    return str(uuid.UUID(text.strip()))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(expr: Any) -> sa.ColumnElement[bool]:
    """An expression built from operands, as the boolean SQL expression it is (operands hold any SQL
    expression, so what is built from them is typed ``Any``)."""
    return expr  # type: ignore[no-any-return]


def _full_name(node: ast.Identifier) -> str:
    """``Namespace.Name`` of an identifier (the library's own ``full_name`` is untyped)."""
    return ".".join((*node.namespace, node.name))
