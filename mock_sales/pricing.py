"""Pricing and totals (Dataverse system pricing, kept consistent in one place)::

line:   priceperunit   = price list item amount (product + unit on the header's price list),
                         else product.price; kept as given when ispriceoverridden or write-in
        baseamount     = priceperunit * quantity
        extendedamount = baseamount - volumediscountamount * quantity - manualdiscountamount + tax
header: totallineitemamount         = sum(extendedamount - tax)    ("Detail Amount", tax excluded)
        totallineitemdiscountamount = sum(manualdiscountamount + volumediscountamount * quantity)
        header discount             = totallineitemamount * discountpercentage / 100 + discountamount
        totaldiscountamount         = header discount + totallineitemdiscountamount
        totalamountlessfreight      = totallineitemamount - header discount
        totaltax                    = sum(tax)
        totalamount                 = totalamountlessfreight + freightamount + totaltax
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from mock_sales.values import dec, money
from sandbox.odata.store import Row, Store

#: document -> (line entity, line column pointing at the document)
DOCUMENT_LINES: dict[str, tuple[str, str]] = {
    "opportunity": ("opportunityproduct", "_opportunityid_value"),
    "quote": ("quotedetail", "_quoteid_value"),
    "salesorder": ("salesorderdetail", "_salesorderid_value"),
    "invoice": ("invoicedetail", "_invoiceid_value"),
}
LINE_DOCUMENTS: dict[str, tuple[str, str]] = {line: (doc, fk) for doc, (line, fk) in DOCUMENT_LINES.items()}


def list_price(store: Store, price_list_id: str | None, product: Row, uom_id: str | None) -> Decimal:
    """The unit price of ``product`` in ``uom_id`` on a price list; the product's own price otherwise."""
    if price_list_id and uom_id:
        item = store.get(
            "productpricelevel",
            {"_pricelevelid_value": price_list_id, "_productid_value": product["productid"], "_uomid_value": uom_id},
        )
        if item is not None:
            return _item_price(item, product)
    return money(product.get("price"))


def _item_price(item: Row, product: Row) -> Decimal:
    method = item.get("pricingmethodcode") or 1
    pct = dec(item.get("percentage")) / 100
    if method == 1:
        return money(item.get("amount"))
    if method == 2:
        return money(dec(product.get("price")) * pct)
    cost = dec(product.get("currentcost") if method in (3, 4) else product.get("standardcost"))
    if method in (3, 5):
        return money(cost * (1 + pct))
    return money(cost / (1 - pct)) if pct < 1 else money(cost)


def line_amounts(line: Mapping[str, Any]) -> dict[str, Decimal]:
    """baseamount and extendedamount of one line (see the module docstring)."""
    quantity = dec(line.get("quantity"))
    base = money(dec(line.get("priceperunit")) * quantity)
    extended = money(
        base
        - dec(line.get("volumediscountamount")) * quantity
        - dec(line.get("manualdiscountamount"))
        + dec(line.get("tax"))
    )
    return {"baseamount": base, "extendedamount": extended}


def document_totals(header: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """The header totals of a quote, order, invoice or opportunity (see the module docstring)."""
    detail = line_discounts = tax = Decimal(0)
    for line in lines:
        detail += dec(line.get("extendedamount")) - dec(line.get("tax"))
        line_discounts += dec(line.get("manualdiscountamount")) + dec(line.get("volumediscountamount")) * dec(
            line.get("quantity")
        )
        tax += dec(line.get("tax"))
    header_discount = detail * dec(header.get("discountpercentage")) / 100 + dec(header.get("discountamount"))
    less_freight = detail - header_discount
    return {
        "totallineitemamount": money(detail),
        "totallineitemdiscountamount": money(line_discounts),
        "totaldiscountamount": money(header_discount + line_discounts),
        "totalamountlessfreight": money(less_freight),
        "totaltax": money(tax),
        "totalamount": money(less_freight + dec(header.get("freightamount")) + tax),
    }


def recompute_document(store: Store, document: str, row: Row, identity: str) -> Row:
    """Recompute and store the totals of one document from its lines."""
    line_entity, fk = DOCUMENT_LINES[document]
    lines = store.find(line_entity, {fk: row[f"{document}id"]})
    totals = document_totals(row, lines)
    if document == "opportunity" and row.get("isrevenuesystemcalculated"):
        totals["estimatedvalue"] = totals["totalamount"]
    return store.update(document, row, totals, identity=identity, via_api=False)
