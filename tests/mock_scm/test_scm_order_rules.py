"""Sales order header and line rules: defaults like the real POSTs, pricing, totals, edit and delete limits."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from mock_scm.schema import EMPTY_DATE, SalesOrderProcessingStatus, SalesStatus
from mock_scm.values import as_utc
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from conftest import Scm

S = SalesStatus.members
PROC = SalesOrderProcessingStatus.members


def test_new_header_takes_defaults_from_the_customer(scm_env: Scm) -> None:
    """Currency, terms, delivery mode/terms, invoice account, site/warehouse, tax group and address come from
    the customer; the order starts with status None and processing status Active."""
    row = scm_env.insert("SalesOrderHeaderV2", {"OrderingCustomerAccountNumber": "US-001"})
    assert row["SalesOrderNumber"] == "000001"
    assert (row["CurrencyCode"], row["PaymentTermsName"], row["DeliveryModeCode"], row["DeliveryTermsCode"]) == (
        "USD",
        "Net10",
        "10",
        "FOB",
    )
    assert (row["InvoiceCustomerAccountNumber"], row["DefaultShippingSiteId"], row["DefaultShippingWarehouseId"]) == (
        "US-001",
        "1",
        "11",
    )
    assert row["SalesTaxGroupCode"] == "CA" and row["DeliveryAddressCity"] == "San Diego"
    assert row["SalesOrderName"] == "Contoso Retail San Diego"
    # F&O creates every order as an open order (Backorder), lines or not
    assert row["SalesOrderStatus"] == S["Backorder"] and row["SalesOrderProcessingStatus"] == PROC["Active"]
    assert as_utc(row["RequestedShippingDate"]).date().isoformat() == "2024-05-17"


def test_header_keeps_values_the_caller_gives(scm_env: Scm) -> None:
    """Given values win over customer defaults (e.g. a different warehouse, currency or mode of delivery)."""
    row = scm_env.insert(
        "SalesOrderHeaderV2",
        {
            "OrderingCustomerAccountNumber": "US-001",
            "CurrencyCode": "EUR",
            "DefaultShippingWarehouseId": "21",
            "DeliveryModeCode": "20",
        },
    )
    assert (row["CurrencyCode"], row["DefaultShippingWarehouseId"], row["DeliveryModeCode"]) == ("EUR", "21", "20")


@pytest.mark.parametrize(
    "values,message",
    [
        ({}, "Field 'Customer account' must be filled in."),
        (
            {"OrderingCustomerAccountNumber": "US-999"},
            "The value 'US-999' in field 'Customer account' is not found in the related table 'Customers'.",
        ),
        (
            {"OrderingCustomerAccountNumber": "US-001", "CurrencyCode": "ABC"},
            "The value 'ABC' in field 'Currency' is not found in the related table 'Currencies'.",
        ),
        (
            {"OrderingCustomerAccountNumber": "US-001", "PaymentTermsName": "Net99"},
            "'Net99' in field 'Terms of payment'",
        ),
        ({"OrderingCustomerAccountNumber": "US-001", "DefaultShippingWarehouseId": "99"}, "'99' in field 'Warehouse'"),
    ],
)
def test_header_with_missing_or_unknown_references_is_refused(scm_env: Scm, values: dict, message: str) -> None:
    """Customer, currency, terms and warehouse must exist in the order's company."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("SalesOrderHeaderV2", values)
    text = scm_env.refused(excinfo)
    assert text.startswith("Write failed for table row of type 'SalesOrderHeaderV2Entity'. Infolog: Warning:")
    assert message in text


def test_customer_of_another_company_is_unknown(scm_env: Scm) -> None:
    """usrt's customers cannot order in usmf."""
    with pytest.raises(SandboxError):
        scm_env.insert("SalesOrderHeaderV2", {"OrderingCustomerAccountNumber": "RT-001"})


def test_line_defaults_unit_price_site_and_amounts(scm_env: Scm) -> None:
    """A line needs only the item: unit, price, name, site/warehouse, tax group, numbers and amounts default."""
    number = scm_env.order("US-001", [])
    line = scm_env.insert("SalesOrderLine", {"SalesOrderNumber": number, "ItemNumber": "D0001"})
    assert line["OrderedSalesQuantity"] == 1 and line["SalesPrice"] == Decimal("219")
    assert (line["SalesUnitSymbol"], line["ShippingSiteId"], line["ShippingWarehouseId"]) == ("ea", "1", "11")
    assert (line["InventoryLotId"], line["LineCreationSequenceNumber"], line["LineNumber"]) == ("000001", 1, 1)
    assert line["ProductName"] == line["LineDescription"] == "Mid-Range Speaker"
    assert line["LineAmount"] == Decimal("219.00") and line["TotalTaxAmount"] == Decimal("21.90")
    assert line["SalesOrderLineStatus"] == S["Backorder"] and line["RemainingSalesPhysicalQuantity"] == 1
    second = scm_env.insert("SalesOrderLine", {"SalesOrderNumber": number, "ItemNumber": "D0003"})
    assert (second["LineCreationSequenceNumber"], second["LineNumber"]) == (2, 2)


def test_header_stays_backorder_with_its_first_line_and_totals_follow(scm_env: Scm) -> None:
    """SalesOrderStatus is Backorder before and after the first lines; totals are recomputed from lines."""
    number = scm_env.order("US-001", [("D0001", 5), ("D0003", 2)])
    header = scm_env.header(number)
    assert header["SalesOrderStatus"] == S["Backorder"]
    assert header["OrderTotalTaxAmount"] == Decimal("133.50")
    assert header["OrderTotalAmount"] == Decimal("1468.50")
    assert header["OrderTotalChargesAmount"] == 0 and header["TotalDiscountAmount"] == 0


def test_line_price_given_by_the_caller_is_kept(scm_env: Scm) -> None:
    """An explicit SalesPrice (e.g. Sales' priceperunit through dual-write) wins over the product price."""
    number = scm_env.order("US-001", [])
    line = scm_env.insert(
        "SalesOrderLine",
        {
            "SalesOrderNumber": number,
            "ItemNumber": "D0001",
            "OrderedSalesQuantity": Decimal(2),
            "SalesPrice": Decimal("200"),
        },
    )
    assert line["LineAmount"] == Decimal("400.00")


@pytest.mark.parametrize(
    "discount,amount,total_discount",
    [
        ({"LineDiscountAmount": Decimal("19")}, "1000.00", "95.00"),
        ({"LineDiscountPercentage": Decimal("10")}, "985.50", "109.50"),
        ({"LineDiscountAmount": Decimal("19"), "LineDiscountPercentage": Decimal("10")}, "900.00", "195.00"),
    ],
)
def test_line_amount_applies_per_unit_and_percentage_discounts(
    scm_env: Scm, discount: dict, amount: str, total_discount: str
) -> None:
    """LineAmount = qty * (price - unit discount) * (1 - percentage); TotalDiscountAmount is the difference."""
    number = scm_env.order("US-001", [])
    line = scm_env.insert(
        "SalesOrderLine",
        {"SalesOrderNumber": number, "ItemNumber": "D0001", "OrderedSalesQuantity": Decimal(5), **discount},
    )
    assert line["LineAmount"] == Decimal(amount)
    assert line["TotalDiscountAmount"] == Decimal(total_discount)


def test_total_line_discount_is_split_into_unit_discount_and_rounding_charge(scm_env: Scm) -> None:
    """Sales' whole-line discount 10.00 on 3 units becomes 3.33 per unit plus a -0.01 charge (DW behaviour),
    and reads back as 10.00."""
    number = scm_env.order("US-001", [])
    line = scm_env.insert(
        "SalesOrderLine",
        {
            "SalesOrderNumber": number,
            "ProductNumber": "D0003",
            "OrderedSalesQuantity": Decimal(3),
            "TotalDiscountAmount": Decimal(10),
        },
        identity="dualwrite",
    )
    assert line["ItemNumber"] == "D0003"
    assert (line["LineDiscountAmount"], line["TotalChargesAmount"]) == (Decimal("3.33"), Decimal("-0.01"))
    assert line["LineAmount"] == Decimal("350.01") and line["TotalDiscountAmount"] == Decimal("10.00")
    header = scm_env.header(number)
    assert header["OrderTotalChargesAmount"] == Decimal("-0.01")
    assert header["OrderTotalAmount"] == Decimal("385.00")
    updated = scm_env.update(
        "SalesOrderLine",
        {"InventoryLotId": line["InventoryLotId"]},
        {"TotalDiscountAmount": Decimal(20)},
        identity="dualwrite",
    )
    assert (updated["LineDiscountAmount"], updated["TotalChargesAmount"]) == (Decimal("6.67"), Decimal("0.01"))
    assert updated["TotalDiscountAmount"] == Decimal("20.00")


def test_end_discount_percentage_reduces_totals_and_tax(scm_env: Scm) -> None:
    """Header TotalDiscountPercentage gives TotalDiscountAmount (the end discount) and lowers every line's tax."""
    number = scm_env.order("US-001", [("D0001", 5)])
    header = scm_env.update(
        "SalesOrderHeaderV2", {"SalesOrderNumber": number}, {"TotalDiscountPercentage": Decimal(10)}
    )
    header = scm_env.header(number)
    assert header["TotalDiscountAmount"] == Decimal("109.50")
    assert header["OrderTotalTaxAmount"] == Decimal("98.55")
    assert header["OrderTotalAmount"] == Decimal("1084.05")
    assert scm_env.lines(number)[0]["TotalTaxAmount"] == Decimal("98.55")


def test_tax_rate_depends_on_company_and_tax_group(scm_env: Scm) -> None:
    """usmf charges 10%, usrt 5%, and the EXEMPT group nothing."""
    usrt = scm_env.insert("SalesOrderHeaderV2", {"dataAreaId": "usrt", "OrderingCustomerAccountNumber": "RT-001"})
    line = scm_env.insert(
        "SalesOrderLine",
        {
            "dataAreaId": "usrt",
            "SalesOrderNumber": usrt["SalesOrderNumber"],
            "ItemNumber": "D0001",
            "OrderedSalesQuantity": Decimal(2),
        },
    )
    assert line["TotalTaxAmount"] == Decimal("21.90")
    exempt = scm_env.order("DE-001", [("D0001", 2)])
    assert scm_env.header(exempt)["OrderTotalTaxAmount"] == 0
    assert scm_env.header(exempt)["CurrencyCode"] == "EUR"


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"ItemNumber": "Z9999"},
            "The value 'Z9999' in field 'Item number' is not found in the related table 'Released products'",
        ),
        ({}, "Field 'Item number' must be filled in."),
        ({"ItemNumber": "D0001", "OrderedSalesQuantity": Decimal(0)}, "The quantity must be greater than zero"),
        (
            {"ItemNumber": "D0001", "ShippingSiteId": "2", "ShippingWarehouseId": "11"},
            "Warehouse 11 does not belong to site 2.",
        ),
        ({"ItemNumber": "D0001", "SalesUnitSymbol": "box"}, "'box' in field 'Unit'"),
        ({"ItemNumber": "D0001", "SalesDeliverNow": Decimal(3)}, "Deliver now 3 must be between 0"),
    ],
)
def test_invalid_order_line_is_refused(scm_env: Scm, values: dict, message: str) -> None:
    """Lines need a released item, a positive quantity, a consistent site/warehouse and a known unit."""
    number = scm_env.order("US-001", [])
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("SalesOrderLine", {"SalesOrderNumber": number, **values})
    text = scm_env.refused(excinfo)
    assert text.startswith("Write failed for table row of type 'SalesOrderLineEntity'.")
    assert message in text
    assert scm_env.lines(number) == []


def test_line_needs_a_product_released_in_the_orders_company(scm_env: Scm) -> None:
    """A product released only in usmf cannot be sold in usrt."""
    scm_env.insert("ReleasedProductV2", {"ItemNumber": "T0001", "ProductName": "Tuner"})
    usrt = scm_env.insert("SalesOrderHeaderV2", {"dataAreaId": "usrt", "OrderingCustomerAccountNumber": "RT-001"})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert(
            "SalesOrderLine",
            {"dataAreaId": "usrt", "SalesOrderNumber": usrt["SalesOrderNumber"], "ItemNumber": "T0001"},
        )
    assert "Item T0001 is not released to company usrt." in scm_env.refused(excinfo)


def test_line_for_unknown_order_is_refused(scm_env: Scm) -> None:
    """The order must exist in the line's company."""
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("SalesOrderLine", {"SalesOrderNumber": "123456", "ItemNumber": "D0001"})
    assert "'123456' in field 'Sales order' is not found in the related table 'Sales orders'" in scm_env.refused(
        excinfo
    )


def test_lines_from_sales_keep_their_creation_sequence_number(scm_env: Scm) -> None:
    """Dual-write matches lines on LineCreationSequenceNumber, so a given one is kept; duplicates conflict."""
    number = scm_env.order("US-001", [])
    line = scm_env.insert(
        "SalesOrderLine",
        {"SalesOrderNumber": number, "ItemNumber": "D0001", "LineCreationSequenceNumber": 7},
        identity="dualwrite",
    )
    assert line["LineCreationSequenceNumber"] == 7
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert(
            "SalesOrderLine", {"SalesOrderNumber": number, "ItemNumber": "D0003", "LineCreationSequenceNumber": 7}
        )
    assert excinfo.value.status == 409


def test_derived_fields_are_never_taken_from_callers_not_even_dual_write(scm_env: Scm) -> None:
    """Statuses, totals and line amounts written over OData are ignored (the bridge may send them back)."""
    number = scm_env.order("US-001", [("D0001", 1)])
    lot = scm_env.lines(number)[0]["InventoryLotId"]
    scm_env.update(
        "SalesOrderHeaderV2",
        {"SalesOrderNumber": number},
        {
            "SalesOrderProcessingStatus": PROC["Invoiced"],
            "OrderTotalAmount": Decimal(1),
            "SalesOrderStatus": S["Invoiced"],
        },
        identity="dualwrite",
    )
    scm_env.update(
        "SalesOrderLine",
        {"InventoryLotId": lot},
        {"LineAmount": Decimal(1), "SalesOrderLineStatus": S["Delivered"]},
        identity="dualwrite",
    )
    header = scm_env.header(number)
    assert header["SalesOrderProcessingStatus"] == PROC["Active"] and header["SalesOrderStatus"] == S["Backorder"]
    assert header["OrderTotalAmount"] == Decimal("240.90")
    line = scm_env.lines(number)[0]
    assert line["LineAmount"] == Decimal("219.00") and line["SalesOrderLineStatus"] == S["Backorder"]


def test_unchanged_values_are_not_written(scm_env: Scm) -> None:
    """An update repeating the current values (dates with or without tz, equal decimals) changes nothing."""
    number = scm_env.order("US-001", [("D0001", 1)])
    header = scm_env.header(number)
    after = scm_env.update(
        "SalesOrderHeaderV2",
        {"SalesOrderNumber": number},
        {
            "RequestedShippingDate": as_utc(header["RequestedShippingDate"]),
            "TotalDiscountPercentage": 0.0,
            "CurrencyCode": "USD",
        },
    )
    assert after["_rowversion"] == header["_rowversion"]


def test_changing_quantity_recomputes_amounts_and_totals(scm_env: Scm) -> None:
    """Quantity, price or discount changes recompute the line and its order."""
    number = scm_env.order("US-001", [("D0001", 1)])
    lot = scm_env.lines(number)[0]["InventoryLotId"]
    line = scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"OrderedSalesQuantity": Decimal(4)})
    assert line["LineAmount"] == Decimal("876.00") and line["RemainingSalesPhysicalQuantity"] == 4
    assert scm_env.header(number)["OrderTotalAmount"] == Decimal("963.60")


def test_changing_the_item_brings_its_price_name_and_unit(scm_env: Scm) -> None:
    """A new item re-defaults price, name and unit unless the same write sets them."""
    number = scm_env.order("US-001", [("D0001", 2)])
    lot = scm_env.lines(number)[0]["InventoryLotId"]
    line = scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"ItemNumber": "L0001"})
    assert (line["SalesPrice"], line["ProductName"], line["LineAmount"]) == (
        Decimal("149"),
        "Wireless Speaker",
        Decimal("298.00"),
    )


def test_quantity_cannot_drop_below_what_was_delivered(scm_env: Scm) -> None:
    """After delivering 3, the ordered quantity can go down to 3 but not to 2."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 3}]})
    lot = scm_env.lines(number)[0]["InventoryLotId"]
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"OrderedSalesQuantity": Decimal(2)})
    assert "less than the quantity already delivered (3)" in scm_env.refused(excinfo)
    line = scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"OrderedSalesQuantity": Decimal(3)})
    assert line["SalesOrderLineStatus"] == S["Delivered"] and line["RemainingSalesPhysicalQuantity"] == 0
    assert scm_env.header(number)["SalesOrderStatus"] == S["Delivered"]


def test_delivered_line_keeps_item_and_warehouse(scm_env: Scm) -> None:
    """Item, site and warehouse are fixed once something was delivered."""
    number = scm_env.order("US-001", [("D0001", 5)])
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]})
    lot = scm_env.lines(number)[0]["InventoryLotId"]
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("SalesOrderLine", {"InventoryLotId": lot}, {"ShippingWarehouseId": "12"})
    assert "has been delivered" in scm_env.refused(excinfo)


@pytest.mark.parametrize("final_step", ["PostInvoice", "Cancel"])
def test_invoiced_or_cancelled_order_is_not_editable(scm_env: Scm, final_step: str) -> None:
    """Neither header nor lines of an Invoiced or Canceled order change over the API; no lines are added."""
    number = scm_env.order("US-001", [("D0001", 1)])
    if final_step == "PostInvoice":
        scm_env.order_action("PostPackingSlip", number)
    scm_env.order_action(final_step, number)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("SalesOrderHeaderV2", {"SalesOrderNumber": number}, {"CustomersOrderReference": "PO-1"})
    assert "cannot be changed" in scm_env.refused(excinfo)
    with pytest.raises(SandboxError):
        scm_env.update(
            "SalesOrderLine",
            {"InventoryLotId": scm_env.lines(number)[0]["InventoryLotId"]},
            {"OrderedSalesQuantity": Decimal(2)},
        )
    with pytest.raises(SandboxError) as excinfo:
        scm_env.insert("SalesOrderLine", {"SalesOrderNumber": number, "ItemNumber": "D0003"})
    assert "no lines can be added" in scm_env.refused(excinfo)


def test_customer_cannot_change_after_confirmation(scm_env: Scm) -> None:
    """Once a document is posted, customer, invoice account and currency are fixed."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("Confirm", number)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.update("SalesOrderHeaderV2", {"SalesOrderNumber": number}, {"OrderingCustomerAccountNumber": "US-002"})
    assert "has posted documents" in scm_env.refused(excinfo)
    # Other fields stay editable on an open, confirmed order.
    assert (
        scm_env.update("SalesOrderHeaderV2", {"SalesOrderNumber": number}, {"CustomersOrderReference": "PO-7"})[
            "CustomersOrderReference"
        ]
        == "PO-7"
    )


def test_confirmed_order_cannot_be_deleted(scm_env: Scm) -> None:
    """Deleting a processed order is refused; its lines stay."""
    number = scm_env.order("US-001", [("D0001", 1)])
    scm_env.order_action("Confirm", number)
    with pytest.raises(SandboxError) as excinfo:
        scm_env.delete("SalesOrderHeaderV2", {"SalesOrderNumber": number})
    assert "Delete failed for table row of type 'SalesOrderHeaderV2Entity'" in scm_env.refused(excinfo)
    assert len(scm_env.lines(number)) == 1


def test_deleting_an_unconfirmed_order_deletes_its_lines_and_frees_on_order(scm_env: Scm) -> None:
    """The lines go with the header, and the open demand they put on the warehouse disappears."""
    number = scm_env.order("US-001", [("D0001", 4), ("D0003", 1)])
    assert scm_env.onhand("D0001")["OnOrderQuantity"] == 4
    scm_env.delete("SalesOrderHeaderV2", {"SalesOrderNumber": number})
    assert scm_env.lines(number) == []
    assert scm_env.onhand("D0001")["OnOrderQuantity"] == 0


def test_delivered_line_cannot_be_deleted(scm_env: Scm) -> None:
    """A line with a posted packing slip stays."""
    number = scm_env.order("US-001", [("D0001", 2)])
    scm_env.order_action("PostPackingSlip", number, {"Lines": [{"LineCreationSequenceNumber": 1, "Quantity": 1}]})
    with pytest.raises(SandboxError) as excinfo:
        scm_env.delete("SalesOrderLine", {"InventoryLotId": scm_env.lines(number)[0]["InventoryLotId"]})
    assert "has been delivered and cannot be deleted" in scm_env.refused(excinfo)


def test_deleting_a_line_recomputes_status_and_totals(scm_env: Scm) -> None:
    """Without lines the order is an open order again (Backorder) with zero totals."""
    number = scm_env.order("US-001", [("D0001", 2)])
    scm_env.delete("SalesOrderLine", {"InventoryLotId": scm_env.lines(number)[0]["InventoryLotId"]})
    header = scm_env.header(number)
    assert header["SalesOrderStatus"] == S["Backorder"] and header["OrderTotalAmount"] == 0


def test_service_lines_need_no_site_and_touch_no_on_hand(scm_env: Scm) -> None:
    """Services are not stocked: no warehouse required, no on-hand row."""
    number = scm_env.order("US-001", [])
    header = scm_env.update(
        "SalesOrderHeaderV2",
        {"SalesOrderNumber": number},
        {"DefaultShippingSiteId": "", "DefaultShippingWarehouseId": ""},
    )
    assert header["DefaultShippingWarehouseId"] == ""
    line = scm_env.insert(
        "SalesOrderLine", {"SalesOrderNumber": number, "ItemNumber": "S0001", "OrderedSalesQuantity": Decimal(3)}
    )
    assert line["SalesUnitSymbol"] == "hr" and line["LineAmount"] == Decimal("285.00")
    assert scm_env.find("WarehouseOnHandV2", {"ItemNumber": "S0001"}) == []
    assert (
        line["ConfirmedShippingDate"] == EMPTY_DATE.replace(tzinfo=None)
        or as_utc(line["ConfirmedShippingDate"]) == EMPTY_DATE
    )
