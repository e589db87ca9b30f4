"""Rows the rules look up for (nearly) every row written: base currency, exchange rate, owner, company, customer.

Their answers are memoized for the transaction and dropped when it writes one of the tables they read
(``Store.memoized``), so a chunk of creates asks the database once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mock_sales.values import dec
from sandbox.errors import BadRequest
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT
from sandbox.odata.store import Row, Store


def base_currency_id(store: Store) -> str | None:
    """The organization's base currency, else the first currency."""

    def compute() -> str | None:
        orgs = store.find("organization", limit=1)
        if orgs and orgs[0].get("_basecurrencyid_value"):
            return orgs[0]["_basecurrencyid_value"]
        currencies = store.find("transactioncurrency", limit=1)
        return currencies[0]["transactioncurrencyid"] if currencies else None

    return store.memoized(("sales.base_currency_id",), ("organization", "transactioncurrency"), compute)


def exchange_rate(store: Store, currency_id: str | None) -> Decimal:
    """Units of the currency per unit of the base currency (1 when unknown or unset)."""
    if not currency_id:
        return Decimal(1)

    def compute() -> Decimal:
        currency = store.get("transactioncurrency", {"transactioncurrencyid": currency_id})
        rate = dec(currency.get("exchangerate")) if currency else Decimal(0)
        return rate if rate > 0 else Decimal(1)

    return store.memoized(("sales.exchange_rate", currency_id), ("transactioncurrency",), compute)


def owner_for(store: Store, identity: str) -> str | None:
    """The systemuser a new row belongs to: the one whose domainname is the caller's identity, else the first."""

    def compute() -> str | None:
        users = store.find("systemuser", {"domainname": identity}, limit=1) or store.find("systemuser", limit=1)
        return users[0]["systemuserid"] if users else None

    return store.memoized(("sales.owner_for", identity), ("systemuser",), compute)


def owner_company(store: Store, owner_id: str | None) -> str | None:
    """The dual-write company of the owner's business unit (walking up to the root)."""
    if not owner_id:
        return None

    def compute() -> str | None:
        user = store.get("systemuser", {"systemuserid": owner_id})
        unit_id = user.get("_businessunitid_value") if user else None
        seen: set[str] = set()
        while unit_id and unit_id not in seen:
            seen.add(unit_id)
            unit = store.get("businessunit", {"businessunitid": unit_id})
            if unit is None:
                return None
            if unit.get("_cdm_companyid_value"):
                return unit["_cdm_companyid_value"]
            unit_id = unit.get("_parentbusinessunitid_value")
        return None

    return store.memoized(("sales.owner_company", owner_id), ("systemuser", "businessunit"), compute)


def customer_row(store: Store, row: Mapping[str, Any], base: str = "customerid") -> tuple[str, Row] | None:
    """The (entity, row) a polymorphic customer lookup points at, or None."""
    value, kind = row.get(f"_{base}_value"), row.get(f"_{base}_type")
    if not value:
        return None
    kinds = [kind] if kind in ("account", "contact") else ["account", "contact"]
    for name in kinds:
        found = store.get(name, {f"{name}id": value})
        if found is not None:
            return name, found
    return None


def require_row(store: Store, entity_name: str, row_id: Any, column: str) -> Row:
    """The row a lookup column names, or the refusal of a reference to a row that does not exist."""
    row = store.get(entity_name, {f"{entity_name}id": row_id}) if row_id else None
    if row is None:
        raise BadRequest(
            f"The {column} references {entity_name} with Id {row_id}, which does not exist.", INVALID_ARGUMENT
        )
    return row
