"""Values as Dataverse stores and compares them: decimals, money (4 places) and unchanged-column checks."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sandbox.odata.model import DATE, DATETIME, DECIMAL, GUID, EntityType, Property
from sandbox.odata.store import Row

#: the precision of Dataverse money columns
MONEY = Decimal("0.0001")


def dec(value: Any) -> Decimal:
    """A Decimal for arithmetic; None counts as zero."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def money(value: Any) -> Decimal:
    """Round to the 4 decimals Dataverse money columns keep."""
    return dec(value).quantize(MONEY, rounding=decimal.ROUND_HALF_UP)


def same_value(prop: Property | None, left: Any, right: Any) -> bool:
    """Whether a write would leave the stored value unchanged (SQLite hands back REAL-backed decimals)."""
    if left is None or right is None:
        return left is None and right is None
    if prop is not None and prop.type == DECIMAL:
        places = Decimal(1).scaleb(-(prop.scale if prop.scale is not None else 10))
        try:
            return dec(left).quantize(places) == dec(right).quantize(places)
        except decimal.InvalidOperation:
            return False
    if prop is not None and prop.type == GUID:
        return str(left).lower() == str(right).lower()
    if prop is not None and prop.type == DATETIME and isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        return _naive_utc(left) == _naive_utc(right)
    if prop is not None and prop.type == DATE:
        return str(left)[:10] == str(right)[:10]
    return left == right


def changed_columns(entity: EntityType, before: Row, changes: Mapping[str, Any]) -> set[str]:
    """The columns of ``changes`` that really differ from ``before``."""
    return {
        name
        for name, value in changes.items()
        if name in entity.properties and not same_value(entity.properties[name], before.get(name), value)
    }


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """A datetime as naive UTC (a naive one is taken as UTC already)."""
    return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
