"""Number sequences of mock Sales: Dataverse auto numbers and Sales-born dual-write document numbers.

Two kinds of numbers are handed out here:

- **Dataverse auto numbers** (``quotenumber``, ``ordernumber``, ``invoicenumber``), e.g. ``QUO-01001-K5G9W8``:
  a prefix, a service-wide counter and a six-character suffix. The real suffix is random; here it is derived
  from the row's GUID so that seeded data stays reproducible.
- **Dual-write document numbers** for documents born in Sales (``msdyn_quotenumber``,
  ``msdyn_salesordernumber``). SCM numbers its documents with zero-padded six-digit sequences ("000123"),
  and number sequences are not shared (``docs/reference/dual-write.md`` section 8), so Sales uses its own
  prefix that can never collide: ``CRM-Q000001``, ``CRM-SO000001``, counted per company.

Counters live in the ``sandbox_numbersequence`` table (untracked, read-only over the API) and are bumped
inside the caller's transaction, so a rolled-back write gives its number back.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from sandbox.odata.store import Store
from sandbox.wellknown import SYSTEM_IDENTITY

#: Dataverse auto-number prefixes (Settings > Auto-numbering in the real app)
AUTO_NUMBER_PREFIXES: dict[str, tuple[str, str]] = {
    # entity -> (column, prefix)
    "quote": ("quotenumber", "QUO"),
    "salesorder": ("ordernumber", "ORD"),
    "invoice": ("invoicenumber", "INV"),
}
#: first value of every auto-number counter
AUTO_NUMBER_START = 1001

#: Prefixes of dual-write numbers for documents created in Sales; SCM's own numbers are bare digits.
SALES_DOCUMENT_PREFIXES: dict[str, tuple[str, str]] = {
    # entity -> (column, prefix)
    "quote": ("msdyn_quotenumber", "CRM-Q"),
    "salesorder": ("msdyn_salesordernumber", "CRM-SO"),
}
#: digits of the counter part of a dual-write document number
SALES_DOCUMENT_DIGITS = 6

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SEQUENCE_ENTITY = "sandbox_numbersequence"


def next_value(store: Store, name: str, scope: str = "", *, floor: int = 0) -> int:
    """Bump and return the counter ``name`` in ``scope``; a new counter starts above ``floor``."""
    entity = store.entity(SEQUENCE_ENTITY)
    table = entity.table
    assert table is not None
    query = store.statement(
        ("sales.counter", table.name),
        lambda: (
            sa.select(table)
            .where(table.c.name == sa.bindparam("sandbox_name"), table.c.scope == sa.bindparam("sandbox_scope"))
            .limit(1)
            .with_for_update()
        ),
    )
    found = store.db.connection.execute(query, {"sandbox_name": name, "sandbox_scope": scope}).first()
    if found is None:
        value = floor + 1
        store.insert(SEQUENCE_ENTITY, {"name": name, "scope": scope, "value": value}, identity=SYSTEM_IDENTITY)
        return value
    row = dict(found._mapping)
    value = max(int(row["value"] or 0), floor) + 1
    store.update(SEQUENCE_ENTITY, row, {"value": value}, identity=SYSTEM_IDENTITY)
    return value


def auto_number(store: Store, entity_name: str, row_id: str) -> str:
    """The next Dataverse auto number of ``entity_name``, e.g. ``QUO-01001-K5G9W8``."""
    _, prefix = AUTO_NUMBER_PREFIXES[entity_name]
    value = next_value(store, f"{entity_name}.auto", floor=AUTO_NUMBER_START - 1)
    return f"{prefix}-{value:05d}-{_suffix(row_id)}"


def document_number(store: Store, entity_name: str, company_id: str | None) -> str:
    """The next free Sales-side dual-write number of ``entity_name`` in the row's company."""
    column, prefix = SALES_DOCUMENT_PREFIXES[entity_name]
    scope = _company_code(store, company_id)
    name = f"{entity_name}.{column}"
    floor = _highest_used(store, entity_name, column, prefix, company_id)
    while True:
        value = next_value(store, name, scope, floor=floor)
        number = f"{prefix}{value:0{SALES_DOCUMENT_DIGITS}d}"
        # Someone may have typed a number from our range by hand; never hand it out twice.
        if store.get(entity_name, {column: number, "_msdyn_company_value": company_id}) is None:
            return number
        floor = value


def _suffix(row_id: str) -> str:
    digest = hashlib.sha256(str(row_id).encode()).digest()
    return "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:6])


def _company_code(store: Store, company_id: str | None) -> str:
    if not company_id:
        return ""
    company = store.get_cached("cdm_company", {"cdm_companyid": company_id})
    return str(company["cdm_companycode"]).lower() if company and company.get("cdm_companycode") else company_id


def _highest_used(store: Store, entity_name: str, column: str, prefix: str, company_id: str | None) -> int:
    """The highest counter value already used in the table (a floor after a snapshot import)."""
    table = store.entity(entity_name).table
    assert table is not None
    col = table.c[column]
    query: Any = sa.select(sa.func.max(col)).where(
        col.like(f"{prefix}%"), sa.func.length(col) == len(prefix) + SALES_DOCUMENT_DIGITS
    )
    company_col = table.c["_msdyn_company_value"]
    query = query.where(company_col.is_(None) if company_id is None else company_col == company_id)
    highest = store.db.connection.execute(query).scalar()
    if not highest:
        return 0
    digits = str(highest)[len(prefix) :]
    return int(digits) if digits.isdigit() else 0


__all__ = [
    "AUTO_NUMBER_PREFIXES",
    "AUTO_NUMBER_START",
    "SALES_DOCUMENT_PREFIXES",
    "SALES_DOCUMENT_DIGITS",
    "next_value",
    "auto_number",
    "document_number",
]
