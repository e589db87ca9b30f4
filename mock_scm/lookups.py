"""Rows the rules and processes look up by key: company, customer, product, documents and their lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.odata.store import Row, Store


def company_of(values: Mapping[str, Any], extra: Mapping[str, Any] | None, default_company: str) -> str:
    """The company a new row belongs to: its dataAreaId, else the request's company, else ``default_company``."""
    company = str(values.get("dataAreaId") or (extra or {}).get("company") or default_company)
    return company.lower()


def legal_entity(store: Store, company: str) -> Row | None:
    # Read for every row written: memoized for the transaction (dropped when it writes a legal entity).
    return store.get_cached("LegalEntity", {"LegalEntityId": company.lower()})


def customer(store: Store, company: str, account: str) -> Row | None:
    if not account:
        return None
    return store.get("CustomerV3", {"dataAreaId": company, "CustomerAccount": account})


def product(store: Store, company: str, item: str = "", product_number: str = "") -> Row | None:
    if item:
        return store.get("ReleasedProductV2", {"dataAreaId": company, "ItemNumber": item})
    if product_number:
        return store.get("ReleasedProductV2", {"dataAreaId": company, "ProductNumber": product_number})
    return None


def order_header(store: Store, company: str, number: str) -> Row | None:
    return store.get("SalesOrderHeaderV2", {"dataAreaId": company, "SalesOrderNumber": number})


def order_lines(store: Store, company: str, number: str) -> list[Row]:
    return store.find(
        "SalesOrderLine",
        {"dataAreaId": company, "SalesOrderNumber": number},
        order_by=["LineNumber", "LineCreationSequenceNumber"],
    )


def quotation_header(store: Store, company: str, number: str) -> Row | None:
    return store.get("SalesQuotationHeaderV2", {"dataAreaId": company, "SalesQuotationNumber": number})


def quotation_lines(store: Store, company: str, number: str) -> list[Row]:
    return store.find(
        "SalesQuotationLine",
        {"dataAreaId": company, "SalesQuotationNumber": number},
        order_by=["LineNumber", "LineCreationSequenceNumber"],
    )


def reread(store: Store, entity_name: str, row: Row) -> Row:
    """The current version of ``row`` (cascading writes may have changed it since it was read)."""
    return store.get(entity_name, {"_rowid": row["_rowid"]}) or row


def journal_lines(store: Store, company: str, batch: str) -> list[Row]:
    return store.find(
        "CustomerPaymentJournalLine", {"dataAreaId": company, "JournalBatchNumber": batch}, order_by=["LineNumber"]
    )
