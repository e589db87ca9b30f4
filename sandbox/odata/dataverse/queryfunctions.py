"""Dataverse's query functions in ``$filter``: ``Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=[...])``,
``Between``, ``NotIn``, ``NotBetween`` and the relative date functions (``Today``, ``LastXDays``,
``OnOrAfter``...), the hierarchy functions (``Under``, ``Above``...: :mod:`.hierarchy`) and the fiscal ones
(``ThisFiscalYear``, ``InFiscalPeriodAndYear``...: :mod:`.fiscal`), registered with the shared ``$filter`` translation as :data:`QUERY_FUNCTIONS`.

Parameter values always come as text on the wire; each is read as a value of the named property's type.
Dates are computed in UTC, weeks start on Sunday (en-US), as the real service does for a UTC user.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import sqlalchemy as sa

from sandbox.odata.dataverse.fiscal import FISCAL_FUNCTIONS, fiscal_condition
from sandbox.odata.dataverse.hierarchy import HIERARCHY_FUNCTIONS, hierarchy_condition
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.model import BOOLEAN, DATE, DATETIME, DECIMAL, DOUBLE, GUID, STRING
from sandbox.odata.query import filtering
from sandbox.odata.query.dialect import QueryFunctionHandler, QueryFunctions
from sandbox.odata.query.errors import syntax
from sandbox.odata.query.filtering import (
    INTEGRAL,
    TEMPORAL,
    FilterCompiler,
    Operand,
    guid_literal,
    int_literal,
    parse_datetime,
)
from sandbox.odata.query.rewrite import QueryFunctionCall


def _typed_from_text(text: str, operand: Operand, function: str) -> Any:
    """A PropertyValues entry (always text on the wire) as a value of the property's type."""
    edm = operand.edm
    try:
        if edm == STRING:
            return text
        if edm in INTEGRAL:
            return int_literal(text)
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
            return guid_literal(text)
        if edm == DATETIME:
            return parse_datetime(text)
        if edm == DATE:
            return parse_datetime(text).date()
    except (ValueError, decimal.InvalidOperation):
        pass
    raise syntax(
        f"The value '{text}' of query function '{function}' is not a valid {edm} value for property '{operand.name}'."
    )


def _values(function: QueryFunctionCall, operand: Operand, count: int | None = None) -> list[Any]:
    raw = function.param("PropertyValues")
    if isinstance(raw, str):
        raw = (raw,)
    if raw is None or (count is not None and len(raw) != count) or not raw:
        expected = f"{count} values" if count is not None else "at least one value"
        raise syntax(f"The query function '{function.name}' needs PropertyValues with {expected}.")
    return [_typed_from_text(item, operand, function.name) for item in raw]


def _count(function: QueryFunctionCall) -> int:
    raw = function.param("PropertyValue")
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,9}", raw.strip()):
        raise syntax(f"The query function '{function.name}' needs a non-negative integer PropertyValue.")
    return int(raw)


def _in(
    compiler: FilterCompiler, function: QueryFunctionCall, operand: Operand, negate: bool
) -> sa.ColumnElement[bool]:
    return compiler.membership(operand, _values(function, operand), negate)


def _between(
    compiler: FilterCompiler, function: QueryFunctionCall, operand: Operand, negate: bool
) -> sa.ColumnElement[bool]:
    low, high = _values(function, operand, 2)
    expr = operand.expr
    if operand.edm == STRING and compiler.dialect.case_insensitive:
        expr, low, high = sa.func.lower(expr), low.lower(), high.lower()
    between = expr.between(low, high)
    return sa.or_(sa.not_(between), operand.expr.is_(None)) if negate else between


def _window_condition(
    compiler: FilterCompiler, function: QueryFunctionCall, operand: Operand
) -> sa.ColumnElement[bool]:
    if operand.edm not in TEMPORAL:
        raise syntax(f"The query function '{function.name}' needs a date or date-time property, not '{operand.name}'.")
    key = function.name.rsplit(".", 1)[-1].lower()
    now = filtering.utcnow()  # looked up at each call: tests freeze the clock there
    start, end, inclusive = _window(key, now, function)
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
    key: str, now: dt.datetime, function: QueryFunctionCall
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
            raise syntax(f"The query function '{function.name}' needs a PropertyValue date.")
        try:
            date_start = _day_start(parse_datetime(raw))
        except ValueError:
            raise syntax(f"The value '{raw}' of query function '{function.name}' is not a valid date.") from None
        if key == "on":
            return date_start, date_start + day, False
        if key == "onorafter":
            return date_start, None, False
        return None, date_start + day, False
    count = _count(function)
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


_HANDLERS: dict[str, QueryFunctionHandler] = {
    "in": lambda c, f, o: _in(c, f, o, negate=False),
    "notin": lambda c, f, o: _in(c, f, o, negate=True),
    "between": lambda c, f, o: _between(c, f, o, negate=False),
    "notbetween": lambda c, f, o: _between(c, f, o, negate=True),
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
    _HANDLERS[_name] = _window_condition
for _unit in ("minutes", "hours", "days", "weeks", "months", "years"):
    for _direction in ("last", "next", "olderthan"):
        if _direction != "olderthan" and _unit == "minutes":
            continue
        _HANDLERS[f"{_direction}x{_unit}"] = _window_condition

for _name in HIERARCHY_FUNCTIONS:
    _HANDLERS[_name] = hierarchy_condition
for _name in FISCAL_FUNCTIONS:
    _HANDLERS[_name] = fiscal_condition

#: the query functions Dataverse's ``$filter`` takes (lower-case names without the namespace)
QUERY_FUNCTIONS = QueryFunctions(NAMESPACE, _HANDLERS)
