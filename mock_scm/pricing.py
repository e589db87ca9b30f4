"""Pricing, tax and document totals, as F&O computes them per order or quotation line and header.

Line: ``LineAmount = (SalesPrice - LineDiscountAmount - MultilineDiscountAmount) * qty / SalesPriceQuantity
* (1 - LineDiscountPercentage/100) * (1 - MultilineDiscountPercentage/100)`` rounded to cents.
``TotalDiscountAmount`` of a line is the whole line discount; a caller (dual-write) may set it instead of the
per-unit discount: it is split into a per-unit ``LineDiscountAmount`` and the rounding remainder goes to the
line's ``TotalChargesAmount`` (``dual-write-prospect-to-cash``: qty 3, discount 10.00 -> 3.33 each plus a
-0.01 charge).

Tax: a flat rate per company, overridable per sales tax group (:attr:`ScmSettings.sales_tax_rates`), applied
per line to ``LineAmount + TotalChargesAmount`` after the header's end discount (``TotalDiscountPercentage``).

Header totals: ``TotalDiscountAmount`` = the end discount (header ``TotalDiscountPercentage`` of the line sum;
it is what dual-write maps to the Sales order-level ``discountamount``), ``OrderTotalDiscountAmount`` = line
discounts + end discount, ``OrderTotalChargesAmount`` = line charges, ``OrderTotalTaxAmount`` = line taxes,
``OrderTotalAmount`` = lines + charges - end discount + tax. Totals cover every line, cancelled ones included;
they are recomputed after every line write (:func:`sync_order_header`, :func:`sync_quotation_header`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from mock_scm.lookups import order_header, order_lines, quotation_header, quotation_lines
from mock_scm.settings import ScmSettings
from mock_scm.status import order_header_status
from mock_scm.values import YES, ZERO, dec, money
from sandbox.odata.store import Row, Store


def tax_rate(settings: ScmSettings, company: str, tax_group: str = "") -> Decimal:
    """The company's sales tax rate, or its override for ``tax_group``."""
    rates = settings.sales_tax_rates.get(company.lower())
    if rates is None:
        return settings.default_tax_rate
    if tax_group and tax_group in rates:
        return rates[tax_group]
    return rates.get("", settings.default_tax_rate)


def line_net_amount(line: Mapping[str, Any], quantity: Any) -> Decimal:
    """The net amount of ``quantity`` units of a line (price, per-unit and percentage discounts)."""
    qty = dec(quantity)
    price_unit = dec(line.get("SalesPriceQuantity")) or Decimal(1)
    unit = dec(line.get("SalesPrice")) - dec(line.get("LineDiscountAmount")) - dec(line.get("MultilineDiscountAmount"))
    factor = (1 - dec(line.get("LineDiscountPercentage")) / 100) * (
        1 - dec(line.get("MultilineDiscountPercentage")) / 100
    )
    return money(unit * qty / price_unit * factor)


def line_gross_amount(line: Mapping[str, Any], quantity: Any) -> Decimal:
    """The amount of ``quantity`` units of a line before any discount."""
    price_unit = dec(line.get("SalesPriceQuantity")) or Decimal(1)
    return money(dec(line.get("SalesPrice")) * dec(quantity) / price_unit)


def split_total_discount(total: Decimal, quantity: Decimal) -> tuple[Decimal, Decimal]:
    """A whole-line discount as (per-unit discount, charge for the rounding remainder)."""
    if quantity == 0:
        return ZERO, ZERO
    per_unit = money(total / quantity)
    return per_unit, money(per_unit * quantity - total)


def line_tax(
    settings: ScmSettings,
    company: str,
    line: Mapping[str, Any],
    end_discount_pct: Any,
    amount: Decimal | None = None,
    charges: Decimal | None = None,
) -> Decimal:
    """A line's sales tax on its amount and charges after the header's end discount (``amount`` and
    ``charges`` stand in for the line's own when a part of the line is invoiced)."""
    base = (dec(line.get("LineAmount")) if amount is None else amount) + (
        dec(line.get("TotalChargesAmount")) if charges is None else charges
    )
    base = base * (1 - dec(end_discount_pct) / 100)
    return money(base * tax_rate(settings, company, str(line.get("SalesTaxGroupCode") or "")))


def document_totals(lines: Iterable[Mapping[str, Any]], end_discount_pct: Any) -> dict[str, Decimal]:
    """Sums over a document's lines (see the module docstring for the definitions)."""
    line_sum = charges = tax = line_discounts = ZERO
    for line in lines:
        line_sum += dec(line.get("LineAmount"))
        charges += dec(line.get("TotalChargesAmount"))
        tax += dec(line.get("TotalTaxAmount"))
        line_discounts += dec(line.get("TotalDiscountAmount"))
    end_discount = money((line_sum + charges) * dec(end_discount_pct) / 100)
    return {
        "lines": money(line_sum),
        "charges": money(charges),
        "tax": money(tax),
        "end_discount": end_discount,
        "all_discounts": money(line_discounts + end_discount),
        "total": money(line_sum + charges - end_discount + tax),
    }


def sync_order_header(store: Store, settings: ScmSettings, company: str, number: str, identity: str) -> Row | None:
    """Recompute an order header's totals and SalesOrderStatus from its lines."""
    header = order_header(store, company, number)
    if header is None:
        return None
    lines = order_lines(store, company, number)
    totals = document_totals(lines, header["TotalDiscountPercentage"])
    changes = {
        "OrderTotalAmount": totals["total"],
        "OrderTotalTaxAmount": totals["tax"],
        "TotalDiscountAmount": totals["end_discount"],
        "OrderTotalChargesAmount": totals["charges"],
        "OrderTotalDiscountAmount": totals["all_discounts"],
        "AreTotalsUpdated": YES,
        "SalesOrderStatus": order_header_status(header["SalesOrderStatus"], lines),
    }
    return store.update(
        "SalesOrderHeaderV2", header, changes, identity=settings.derived_identity(identity), via_api=False
    )


def sync_quotation_header(store: Store, settings: ScmSettings, company: str, number: str, identity: str) -> Row | None:
    """Recompute a quotation header's totals from its lines."""
    header = quotation_header(store, company, number)
    if header is None:
        return None
    totals = document_totals(quotation_lines(store, company, number), header["TotalDiscountPercentage"])
    changes = {
        "QuotationTotalAmount": totals["total"],
        "QuotationTotalTaxAmount": totals["tax"],
        "TotalDiscountAmount": totals["end_discount"],
        "QuotationTotalChargesAmount": totals["charges"],
        "AreTotalsUpdated": YES,
    }
    return store.update(
        "SalesQuotationHeaderV2", header, changes, identity=settings.derived_identity(identity), via_api=False
    )
