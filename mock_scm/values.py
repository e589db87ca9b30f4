"""Values as F&O stores and compares them: decimals, amounts, quantities, dates and NoYes."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from typing import Any

from mock_scm.schema import NoYes

CENT = Decimal("0.01")
QTY = Decimal("0.000001")
ZERO = Decimal("0")
YES = NoYes.members["Yes"]
NO = NoYes.members["No"]


def dec(value: Any) -> Decimal:
    """Any stored or JSON number as a Decimal (None -> 0)."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def money(value: Any) -> Decimal:
    """Rounded to cents, half up (F&O's amounts)."""
    return dec(value).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def fmt_amount(value: Any) -> str:
    """An amount as an Infolog message writes it: ``1,234.50``."""
    return f"{money(value):,.2f}"


def fmt_qty(value: Any) -> str:
    """A quantity without trailing zeros: ``2``, ``2.5``."""
    number = dec(value).normalize()
    return f"{number:f}"


def as_utc(value: Any) -> Any:
    """A naive datetime (SQLite hands them back so) read as UTC; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def is_empty_date(value: Any) -> bool:
    """F&O's empty date is 1900-01-01; None counts as empty too."""
    return value is None or (isinstance(value, (dt.datetime, dt.date)) and value.year <= 1900)


def same(a: Any, b: Any) -> bool:
    """Equal as F&O sees it: numbers by value, datetimes with or without tz as UTC, None as empty."""
    if a is None and b in ("", None):
        return True
    if b is None and a in ("", None):
        return True
    if isinstance(a, (dt.datetime, dt.date)) or isinstance(b, (dt.datetime, dt.date)):
        return as_utc(a) == as_utc(b)
    if (
        isinstance(a, (Decimal, float, int))
        and isinstance(b, (Decimal, float, int))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return dec(a) == dec(b)
    return a == b
