"""The fiscal-period query functions (``ThisFiscalYear``, ``LastXFiscalPeriods``, ``InFiscalPeriodAndYear``...;
FetchXML ``this-fiscal-year``, ``last-x-fiscal-periods``, ``in-fiscal-period-and-year``...).

Dataverse reads the fiscal calendar from the organization's fiscal year settings (``organization``'s
``fiscalcalendarstart`` and ``fiscalperiodtype``). The sandbox has one fixed calendar, documented in
``docs/reference/dataverse-web-api.md`` ("FetchXML"): **the fiscal year is the calendar year (it starts on
1 January, UTC) and is named by that year, and its periods are the four calendar quarters** (period 1 is
January to March). Windows are computed in UTC like the other date functions.
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from sandbox.odata.model import DATE
from sandbox.odata.query import filtering
from sandbox.odata.query.errors import syntax
from sandbox.odata.query.filtering import TEMPORAL, FilterCompiler, Operand
from sandbox.odata.query.rewrite import QueryFunctionCall

#: months in a fiscal period, and periods in a fiscal year, of the sandbox's fiscal calendar
PERIOD_MONTHS = 3
PERIODS_PER_YEAR = 12 // PERIOD_MONTHS

#: the fiscal query functions (lower case, without the namespace) and their parameters
FISCAL_FUNCTIONS = {
    "thisfiscalyear": (),
    "thisfiscalperiod": (),
    "nextfiscalyear": (),
    "nextfiscalperiod": (),
    "lastfiscalyear": (),
    "lastfiscalperiod": (),
    "lastxfiscalyears": ("PropertyValue",),
    "lastxfiscalperiods": ("PropertyValue",),
    "nextxfiscalyears": ("PropertyValue",),
    "nextxfiscalperiods": ("PropertyValue",),
    "infiscalyear": ("PropertyValue",),
    "infiscalperiod": ("PropertyValue",),
    "infiscalperiodandyear": ("PropertyValue1", "PropertyValue2"),
    "inorbeforefiscalperiodandyear": ("PropertyValue1", "PropertyValue2"),
    "inorafterfiscalperiodandyear": ("PropertyValue1", "PropertyValue2"),
}


def _period_start(year: int, period: int) -> dt.datetime:
    """The first moment of fiscal ``period`` (1-based) of fiscal ``year``; periods past the year roll over."""
    index = (year * PERIODS_PER_YEAR) + (period - 1)
    year, period_index = divmod(index, PERIODS_PER_YEAR)
    return dt.datetime(year, period_index * PERIOD_MONTHS + 1, 1, tzinfo=dt.UTC)


def _integer(function: QueryFunctionCall, name: str, low: int, high: int) -> int:
    raw = function.param(name)
    text = raw.strip() if isinstance(raw, str) else ""
    if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise syntax(f"The query function '{function.name}' needs {name}, a whole number from {low} to {high}.")
    return int(text)


def _window(key: str, now: dt.datetime, function: QueryFunctionCall) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start, end) of a fiscal query function at ``now`` (UTC); None for an open side."""
    year = now.year
    period = (now.month - 1) // PERIOD_MONTHS + 1
    this_period = _period_start(year, period)
    this_year = _period_start(year, 1)
    fixed = {
        "thisfiscalyear": (this_year, _period_start(year + 1, 1)),
        "nextfiscalyear": (_period_start(year + 1, 1), _period_start(year + 2, 1)),
        "lastfiscalyear": (_period_start(year - 1, 1), this_year),
        "thisfiscalperiod": (this_period, _period_start(year, period + 1)),
        "nextfiscalperiod": (_period_start(year, period + 1), _period_start(year, period + 2)),
        "lastfiscalperiod": (_period_start(year, period - 1), this_period),
    }
    if key in fixed:
        return fixed[key]
    if key in ("lastxfiscalyears", "nextxfiscalyears", "lastxfiscalperiods", "nextxfiscalperiods"):
        count = _integer(function, "PropertyValue", 1, 10_000)
        if key == "lastxfiscalyears":
            return _period_start(year - count, 1), this_year
        if key == "nextxfiscalyears":
            return _period_start(year + 1, 1), _period_start(year + 1 + count, 1)
        if key == "lastxfiscalperiods":
            return _period_start(year, period - count), this_period
        return _period_start(year, period + 1), _period_start(year, period + 1 + count)
    if key == "infiscalyear":
        fiscal_year = _integer(function, "PropertyValue", 1900, 9998)
        return _period_start(fiscal_year, 1), _period_start(fiscal_year + 1, 1)
    chosen = _integer(function, "PropertyValue1", 1, PERIODS_PER_YEAR)
    fiscal_year = _integer(function, "PropertyValue2", 1900, 9998)
    start, end = _period_start(fiscal_year, chosen), _period_start(fiscal_year, chosen + 1)
    if key == "infiscalperiodandyear":
        return start, end
    if key == "inorbeforefiscalperiodandyear":
        return None, end
    return start, None


def fiscal_condition(compiler: FilterCompiler, function: QueryFunctionCall, operand: Operand) -> sa.ColumnElement[bool]:
    """The date column ``operand`` falls in the fiscal window ``function`` names (``InFiscalPeriod``: that
    period of any fiscal year)."""
    if operand.edm not in TEMPORAL:
        raise syntax(f"The query function '{function.name}' needs a date or date-time property, not '{operand.name}'.")
    key = function.name.rsplit(".", 1)[-1].lower()
    expr = operand.expr
    if key == "infiscalperiod":
        chosen = _integer(function, "PropertyValue", 1, PERIODS_PER_YEAR)
        month = sa.extract("month", expr)
        return sa.and_(month >= (chosen - 1) * PERIOD_MONTHS + 1, month <= chosen * PERIOD_MONTHS)
    start, end = _window(key, filtering.utcnow(), function)
    conditions = []
    if start is not None:
        conditions.append(expr >= (start.date() if operand.edm == DATE else start))
    if end is not None:
        conditions.append(expr < (end.date() if operand.edm == DATE else end))
    return sa.and_(*conditions)
