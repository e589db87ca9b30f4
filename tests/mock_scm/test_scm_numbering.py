"""Number sequences per legal entity: formats, continuation after seed data, gaps and rollbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mock_scm import numbering
from mock_scm.numbering import NUMBER_FORMATS, SALES_PREFIX, NumberFormat
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm


def test_number_format_renders_and_parses_its_own_numbers() -> None:
    """Prefix + zero-padded counter; numbers of another shape are not parsed."""
    fmt = NumberFormat("US-", 3)
    assert fmt.render("usmf", 7) == "US-007"
    assert fmt.parse("usmf", "US-040") == 40
    assert fmt.parse("usmf", "CRM-0001") is None
    assert NumberFormat("{COMPANY}-", 6).render("usrt", 12) == "USRT-000012"


def test_no_scm_format_can_collide_with_sales_numbers() -> None:
    """Sales makes CRM-... numbers; no SCM sequence starts with that prefix."""
    for formats in NUMBER_FORMATS.values():
        for fmt in formats.values():
            assert not fmt.render("usmf", 1).startswith(SALES_PREFIX)


def test_customer_accounts_continue_after_the_seeded_ones(scm_env: Scm) -> None:
    """usmf seeds up to US-040, so the next account is US-041; usrt has its own RT- sequence."""
    created = scm_env.insert(
        "CustomerV3", {"CustomerGroupId": "10", "SalesCurrencyCode": "USD", "OrganizationName": "Heron Wholesales"}
    )
    assert created["CustomerAccount"] == "US-041"
    other = scm_env.insert(
        "CustomerV3",
        {"dataAreaId": "usrt", "CustomerGroupId": "10", "SalesCurrencyCode": "USD", "OrganizationName": "Heron Retail"},
    )
    assert other["CustomerAccount"] == "RT-006"


def test_document_sequences_are_separate_per_company(scm_env: Scm) -> None:
    """Each company numbers its orders from 000001; the same number can exist in both companies."""
    first = scm_env.order("US-001")
    second = scm_env.order("US-002")
    assert (first, second) == ("000001", "000002")
    usrt = scm_env.insert("SalesOrderHeaderV2", {"dataAreaId": "usrt", "OrderingCustomerAccountNumber": "RT-001"})
    assert usrt["SalesOrderNumber"] == "000001"
    assert (
        scm_env.get("SalesOrderHeaderV2", {"SalesOrderNumber": "000001"})["OrderingCustomerAccountNumber"] == "US-001"
    )


def test_explicit_number_in_the_format_moves_the_counter(scm_env: Scm) -> None:
    """A caller-chosen 000050 is never handed out again: the next generated number is 000051."""
    scm_env.insert("SalesOrderHeaderV2", {"SalesOrderNumber": "000050", "OrderingCustomerAccountNumber": "US-001"})
    assert scm_env.order("US-001") == "000051"


def test_sales_numbers_are_kept_and_leave_the_counter_alone(scm_env: Scm) -> None:
    """An order created by dual-write with a CRM- number keeps it; the SCM sequence is unaffected."""
    row = scm_env.insert(
        "SalesOrderHeaderV2",
        {"SalesOrderNumber": "CRM-ORD-01001", "OrderingCustomerAccountNumber": "US-001"},
        identity="dualwrite",
    )
    assert row["SalesOrderNumber"] == "CRM-ORD-01001"
    assert scm_env.order("US-001") == "000001"


def test_taken_numbers_are_skipped(scm_env: Scm) -> None:
    """A number that exists although the counter is behind (e.g. imported) is skipped, not duplicated."""
    with scm_env.db.transaction():
        scm_env.store.insert(
            "SalesOrderHeaderV2",
            {"dataAreaId": "usmf", "SalesOrderNumber": "000001", "OrderingCustomerAccountNumber": "US-001"},
        )
        # Pretend the counter never saw it.
        table = scm_env.model.metadata.tables[numbering.SEQUENCE_TABLE]
        scm_env.db.connection.execute(table.delete())
    assert scm_env.order("US-001") == "000002"


def test_refused_write_does_not_burn_a_number(scm_env: Scm) -> None:
    """The counter rolls back with the refused write, so numbers stay continuous."""
    with pytest.raises(SandboxError):
        scm_env.insert("CustomerV3", {"CustomerGroupId": "10", "SalesCurrencyCode": "XXX", "OrganizationName": "X"})
    with scm_env.db.transaction():
        assert numbering.peek(scm_env.store, numbering.CUSTOMER_ACCOUNT, "usmf") == "US-041"


def test_inventory_lot_ids_are_six_digits_per_company_and_shared_by_quotes_and_orders(scm_env: Scm) -> None:
    """InventoryLotId comes from one sequence for quotation and order lines of a company."""
    number = scm_env.order("US-001", [("D0001", 1), ("D0003", 1)])
    quote = scm_env.insert("SalesQuotationHeaderV2", {"RequestingCustomerAccountNumber": "US-001"})
    qline = scm_env.insert(
        "SalesQuotationLine", {"SalesQuotationNumber": quote["SalesQuotationNumber"], "ItemNumber": "D0001"}
    )
    lots = [line["InventoryLotId"] for line in scm_env.lines(number)]
    assert lots == ["000001", "000002"]
    assert qline["InventoryLotId"] == "000003"


def test_invoice_and_journal_numbers_have_their_own_formats(scm_env: Scm) -> None:
    """Invoices CIV-000001 and payment journals USMF-000001 per company."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("PostPackingSlip", number)
    invoice = scm_env.order_action("PostInvoice", number)
    assert invoice["InvoiceNumber"] == "CIV-000001"
    journal = scm_env.insert("CustomerPaymentJournalHeader", {})
    assert journal["JournalBatchNumber"] == "USMF-000001"
