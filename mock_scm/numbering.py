"""Number sequences per legal entity: customer accounts, quotations, orders, invoices, lot ids, journals.

F&O numbers documents from number sequences scoped to a company. The formats here are configurable
constants; each one must stay disjoint from the numbers Dynamics 365 Sales makes (``CRM-...``), because
dual-write keeps a document's number when it crosses over (DW ``dual-write-prospect-to-cash``: "use disjoint
sequences").

The counters live in a small bookkeeping table beside the entity tables (not an OData entity): they commit
and roll back with the write that used them, so a refused write does not burn a number. A number that
matches a company's format but was supplied by the caller (seed data, a client choosing its own number)
moves the counter past it, so the sequence never hands that number out again; a number that is taken
anyway (e.g. created before the counter existed) is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sandbox.odata.store import Store

#: The prefix Dynamics 365 Sales puts on the numbers it makes (quotes, orders, accounts); SCM never uses it.
SALES_PREFIX = "CRM-"

#: Name of the bookkeeping table holding the counters (in the service's model metadata).
SEQUENCE_TABLE = "_scm_number_sequences"


@dataclass(frozen=True)
class NumberFormat:
    """``prefix`` + the counter zero-padded to ``digits`` + ``suffix``; ``{COMPANY}`` in the prefix is the
    upper-case company id (journal numbers like ``USMF-000001``)."""

    prefix: str = ""
    digits: int = 6
    suffix: str = ""
    start: int = 1

    def render(self, company: str, value: int) -> str:
        return f"{self._prefix(company)}{value:0{self.digits}d}{self.suffix}"

    def parse(self, company: str, number: str) -> int | None:
        """The counter value ``number`` was made from, or None when it does not match this format."""
        pattern = re.escape(self._prefix(company)) + rf"(\d{{{self.digits},}})" + re.escape(self.suffix)
        match = re.fullmatch(pattern, number)
        return int(match.group(1)) if match else None

    def _prefix(self, company: str) -> str:
        return self.prefix.replace("{COMPANY}", company.upper())


# Scopes (one counter per company and scope). "*" is the format of companies without their own entry.
CUSTOMER_ACCOUNT = "CustomerAccount"
SALES_QUOTATION = "SalesQuotation"
SALES_ORDER = "SalesOrder"
SALES_INVOICE = "SalesInvoice"
INVOICE_VOUCHER = "InvoiceVoucher"
INVENTORY_LOT = "InventoryLotId"
PAYMENT_JOURNAL = "PaymentJournal"
PAYMENT_VOUCHER = "PaymentVoucher"
CONTACT_PERSON = "ContactPersonId"
PARTY_NUMBER = "PartyNumber"  # global (the party book is shared by all companies): company "*"

NUMBER_FORMATS: dict[str, dict[str, NumberFormat]] = {
    CUSTOMER_ACCOUNT: {
        "usmf": NumberFormat("US-", 3),
        "usrt": NumberFormat("RT-", 3),
        "demf": NumberFormat("DE-", 3),
        "*": NumberFormat("C-", 6),
    },
    SALES_QUOTATION: {"*": NumberFormat("", 6)},
    SALES_ORDER: {"*": NumberFormat("", 6)},
    SALES_INVOICE: {"*": NumberFormat("CIV-", 6)},
    INVOICE_VOUCHER: {"*": NumberFormat("CI", 6)},
    INVENTORY_LOT: {"*": NumberFormat("", 6)},
    PAYMENT_JOURNAL: {"*": NumberFormat("{COMPANY}-", 6)},
    PAYMENT_VOUCHER: {"*": NumberFormat("ARP-", 6)},
    CONTACT_PERSON: {"*": NumberFormat("", 6)},
    PARTY_NUMBER: {"*": NumberFormat("", 9)},
}

for _scope, _formats in NUMBER_FORMATS.items():
    for _company, _format in _formats.items():
        assert not _format.prefix.upper().startswith(SALES_PREFIX), f"{_scope}/{_company} collides with Sales"


def number_format(scope: str, company: str) -> NumberFormat:
    formats = NUMBER_FORMATS[scope]
    return formats.get(company.lower(), formats["*"])


def sequence_table(metadata: sa.MetaData) -> sa.Table:
    """Declare the counters table in ``metadata`` (called once by ``build_model``)."""
    return sa.Table(
        SEQUENCE_TABLE,
        metadata,
        sa.Column("company", sa.String(8), primary_key=True),
        sa.Column("scope", sa.String(40), primary_key=True),
        sa.Column("next_value", sa.BigInteger, nullable=False),
    )


def _table(store: Store) -> sa.Table:
    return store.model.metadata.tables[SEQUENCE_TABLE]


def _statements(store: Store) -> tuple[Any, Any, Any]:
    """(select, update, insert) of the counter of one (company, scope), built once per store (every created
    customer, order and line uses them)."""
    table = _table(store)

    def build() -> tuple[Any, Any, Any]:
        where = (table.c.company == sa.bindparam("sandbox_company"), table.c.scope == sa.bindparam("sandbox_scope"))
        return (
            sa.select(table.c.next_value).where(*where),
            sa.update(table).where(*where).values(next_value=sa.bindparam("sandbox_value")),
            sa.insert(table).values(
                company=sa.bindparam("sandbox_company"),
                scope=sa.bindparam("sandbox_scope"),
                next_value=sa.bindparam("sandbox_value"),
            ),
        )

    return store.statement(("scm.counter", table.name), build)


def _counter(store: Store, scope: str, company: str) -> int | None:
    select, _, _ = _statements(store)
    return store.db.connection.execute(select, {"sandbox_company": company, "sandbox_scope": scope}).scalar()


def _set_counter(store: Store, scope: str, company: str, value: int) -> None:
    _, update, insert = _statements(store)
    connection = store.db.connection
    params = {"sandbox_company": company, "sandbox_scope": scope, "sandbox_value": value}
    if connection.execute(update, params).rowcount == 0:
        connection.execute(insert, params)


def next_number(store: Store, scope: str, company: str, taken: Callable[[str], bool] | None = None) -> str:
    """The next free number of ``scope`` in ``company`` (``taken`` says whether a candidate already exists)."""
    company = company.lower()
    fmt = number_format(scope, company)
    value = _counter(store, scope, company)
    if value is None:
        value = fmt.start
    while True:
        candidate = fmt.render(company, value)
        value += 1
        if taken is None or not taken(candidate):
            break
    _set_counter(store, scope, company, value)
    return candidate


def note_number(store: Store, scope: str, company: str, number: str) -> None:
    """Move the counter past ``number`` when the caller chose a number in the sequence's own format."""
    company = company.lower()
    parsed = number_format(scope, company).parse(company, number)
    if parsed is None:
        return
    current = _counter(store, scope, company)
    if current is None or current <= parsed:
        _set_counter(store, scope, company, parsed + 1)


def peek(store: Store, scope: str, company: str) -> str:
    """The number the sequence would hand out next (for tests and the seed report); takes nothing."""
    company = company.lower()
    fmt = number_format(scope, company)
    value = _counter(store, scope, company)
    return fmt.render(company, fmt.start if value is None else value)
