"""How one mock SCM behaves where F&O is configurable: read once from the service config, then frozen.

Each app builds its :class:`ScmSettings` from ``ServiceConfig.options`` (see :meth:`ScmSettings.from_options`)
and hands it to the rules, the actions and the seeder it is made of, so two apps in one process never share
or leak configuration and a test configures an app instead of patching module state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sandbox.wellknown import DEFAULT_COMPANY

#: Sales tax rate per company; key "" is the company's flat rate, other keys are sales tax group overrides.
DEFAULT_SALES_TAX_RATES: Mapping[str, Mapping[str, Decimal]] = MappingProxyType(
    {
        "usmf": MappingProxyType({"": Decimal("0.10"), "EXEMPT": Decimal("0")}),
        "usrt": MappingProxyType({"": Decimal("0.05"), "EXEMPT": Decimal("0")}),
        "demf": MappingProxyType({"": Decimal("0.19"), "EXEMPT": Decimal("0")}),
    }
)


def utc_today() -> dt.date:
    """The current date in UTC (F&O's date-only fields are UTC dates)."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class ScmSettings:
    """The configurable behaviour of one mock SCM. Every field has F&O's (or the demo data's) default."""

    #: Company used when a write names none (the HTTP dialect fills it from the same setting).
    default_company: str = DEFAULT_COMPANY
    #: Rows per page of a collection read (F&O pages at 10,000).
    page_size: int = 10000
    #: Sales tax rate per company; key "" is the company's flat rate, other keys are sales tax group overrides.
    sales_tax_rates: Mapping[str, Mapping[str, Decimal]] = field(default_factory=lambda: DEFAULT_SALES_TAX_RATES)
    #: Rate of companies missing from ``sales_tax_rates``.
    default_tax_rate: Decimal = Decimal("0")
    #: Days a new quotation stays valid (SalesQuotationExpiryDate default).
    quotation_validity_days: int = 30
    #: F&O refuses a packing slip that would take physical on-hand below zero; True lets it go negative.
    allow_negative_inventory: bool = False
    #: Identity under which derived writes (header totals and statuses, on-hand) are recorded; None = the caller's.
    derived_write_identity: str | None = None
    #: Source of "today"; a fixed date makes documents' dates reproducible.
    clock: Callable[[], dt.date] = field(default=utc_today)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ScmSettings:
        """Settings from ``ServiceConfig.options``; options this class does not name are left to others.

        ``today`` may be a date, an ISO date string or a callable returning a date; ``sales_tax_rates`` maps
        a company to ``{"": flat rate, tax group: rate}`` (numbers or numeric strings).
        """
        values: dict[str, Any] = {}
        if options.get("default_company"):
            values["default_company"] = str(options["default_company"])
        if options.get("page_size") is not None:
            values["page_size"] = int(options["page_size"])
        if options.get("sales_tax_rates") is not None:
            values["sales_tax_rates"] = MappingProxyType(
                {
                    str(company).lower(): MappingProxyType(
                        {str(group): Decimal(str(rate)) for group, rate in rates.items()}
                    )
                    for company, rates in options["sales_tax_rates"].items()
                }
            )
        if options.get("default_tax_rate") is not None:
            values["default_tax_rate"] = Decimal(str(options["default_tax_rate"]))
        if options.get("quotation_validity_days") is not None:
            values["quotation_validity_days"] = int(options["quotation_validity_days"])
        if options.get("allow_negative_inventory") is not None:
            values["allow_negative_inventory"] = bool(options["allow_negative_inventory"])
        if options.get("derived_write_identity"):
            values["derived_write_identity"] = str(options["derived_write_identity"])
        if options.get("today") is not None:
            values["clock"] = _clock(options["today"])
        return cls(**values)

    def today(self) -> dt.datetime:
        """Today as F&O stores a date: 12:00:00 UTC."""
        return dt.datetime.combine(self.clock(), dt.time(12), tzinfo=dt.UTC)

    def derived_identity(self, identity: str) -> str:
        """The identity a derived write (totals, statuses, on-hand) caused by ``identity`` is recorded under."""
        return self.derived_write_identity or identity


def _clock(today: Any) -> Callable[[], dt.date]:
    if callable(today):
        return today
    if isinstance(today, dt.datetime):
        fixed = today.date()
    elif isinstance(today, dt.date):
        fixed = today
    else:
        fixed = dt.date.fromisoformat(str(today))
    return lambda: fixed
