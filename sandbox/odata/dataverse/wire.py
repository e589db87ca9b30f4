"""Dataverse wire conventions that are data or pure functions: names, annotations, formatted values and the
paging cookie of ``$skiptoken`` (``docs/reference/dataverse-web-api.md``)."""

from __future__ import annotations

import datetime as dt
import decimal
import html
import re
from typing import TYPE_CHECKING, Any

from sandbox.errors import BadRequest
from sandbox.odata import model as m
from sandbox.odata.dataverse import codes
from sandbox.odata.model import Property

if TYPE_CHECKING:
    from sandbox.odata.service import RequestState

#: the namespace of every Dataverse type, action and function
NAMESPACE = "Microsoft.Dynamics.CRM"
#: the roots the Web API answers at; URLs are printed with the first
ROOTS = ("/api/data/v9.2/", "/api/data/v9.1/", "/api/data/v9.0/")
#: the most rows ``@odata.count`` shows
COUNT_LIMIT = 5000

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAV = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
#: the count of a collection read beyond ``@odata.count`` (PA ``webapi/query/count-rows``)
TOTAL_COUNT = "@Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_COUNT_EXCEEDED = "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"


def annotation_wanted(state: RequestState, name: str) -> bool:
    """Whether ``Prefer: odata.include-annotations`` names ``name`` (``*`` and ``Namespace.*`` match)."""
    requested = state.prefer.get("odata.include-annotations")
    if not requested:
        return False
    for pattern in (part.strip().strip('"') for part in requested.split(",")):
        if pattern == "*" or pattern == name or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
            return True
    return False


def formatted_value(prop: Property, value: Any) -> str | None:
    """The ``FormattedValue`` annotation of a value (en-US), or None where Dataverse writes none."""
    if value is None or prop.lookup is not None:
        return None
    if prop.enum is not None:
        return prop.enum.name_of(value)
    if prop.type == m.BOOLEAN:
        return "Yes" if value else "No"
    if prop.type == m.DECIMAL and (prop.scale or 0) == 4:
        return f"${decimal.Decimal(value):,.2f}"
    if prop.type in (m.DECIMAL, m.DOUBLE, m.INT32, m.INT64) and prop.name not in ("statecode", "statuscode"):
        return f"{value:,}" if not isinstance(value, decimal.Decimal) else f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return f"{value.month}/{value.day}/{value.year} {value.strftime('%I:%M %p').lstrip('0')}"
    return None


def skiptoken_offset(token: str) -> int:
    """The row offset a ``$skiptoken`` paging cookie carries (raw or percent-encoded)."""
    match = re.search(r'pagingcookie="(\d+)"', html.unescape(token)) or re.search(r"pagingcookie=%22(\d+)%22", token)
    if not match:
        raise BadRequest("The $skiptoken is not valid.", codes.QUERY_SYNTAX)
    return int(match.group(1))


def skiptoken(offset: int, page_size: int) -> str:
    """The ``$skiptoken`` of the page starting at ``offset``."""
    page = offset // max(page_size, 1) + 1
    return f'<cookie pagenumber="{page}" pagingcookie="{offset}" istracking="False" />'
