"""On-hand inventory (``WarehousesOnHandV2``, per company, item, site, warehouse) and reservations.

``OnHandQuantity`` changes only by seed data and packing slips; ``ReservedOnHandQuantity`` is the sum of the
reservations of order lines; ``OnOrderQuantity`` the unreserved open order quantity;
``AvailableOnHandQuantity = OnHand - Reserved``; ``AvailableOrderedQuantity = Ordered - ReservedOrdered -
OnOrder``; ``TotalAvailableQuantity`` = available on-hand + available ordered (F&O's definitions).
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from mock_scm.lookups import product
from mock_scm.settings import ScmSettings
from mock_scm.values import QTY, YES, ZERO, dec
from sandbox.odata.store import Row, Store


def is_stocked(store: Store, company: str, item: str) -> bool:
    """Whether the released product keeps inventory (services and non-stocked items do not)."""
    found = product(store, company, item)
    return found is not None and found["IsStockedProduct"] == YES


def onhand_row(store: Store, company: str, item: str, site: str, warehouse: str) -> Row | None:
    """The on-hand row of one item in one warehouse, if it has one yet."""
    return store.get(
        "WarehouseOnHandV2",
        {"dataAreaId": company, "ItemNumber": item, "InventorySiteId": site, "InventoryWarehouseId": warehouse},
    )


def refresh_onhand(
    store: Store,
    settings: ScmSettings,
    company: str,
    item: str,
    site: str,
    warehouse: str,
    identity: str,
    on_hand_delta: Decimal = ZERO,
) -> Row | None:
    """Recompute reservations and open demand of one item in one warehouse (creating the on-hand row of a
    stocked item on first use), optionally moving physical on-hand by ``on_hand_delta``."""
    if not (item and site and warehouse):
        return None
    found = product(store, company, item)
    if found is None or found["IsStockedProduct"] != YES:
        return None
    identity = settings.derived_identity(identity)
    row = onhand_row(store, company, item, site, warehouse)
    if row is None:
        row = store.insert(
            "WarehouseOnHandV2",
            {
                "dataAreaId": company,
                "ItemNumber": item,
                "InventorySiteId": site,
                "InventoryWarehouseId": warehouse,
                "ProductName": found["ProductName"],
            },
            identity=identity,
            via_api=False,
        )
    reserved, on_order = open_demand(store, company, item, site, warehouse)
    on_hand = dec(row["OnHandQuantity"]) + on_hand_delta
    ordered, reserved_ordered = dec(row["OrderedQuantity"]), dec(row["ReservedOrderedQuantity"])
    available_ordered = ordered - reserved_ordered - on_order
    changes = {
        "OnHandQuantity": on_hand,
        "ReservedOnHandQuantity": reserved,
        "AvailableOnHandQuantity": on_hand - reserved,
        "OnOrderQuantity": on_order,
        "AvailableOrderedQuantity": available_ordered,
        "TotalAvailableQuantity": on_hand - reserved + available_ordered,
    }
    return store.update("WarehouseOnHandV2", row, changes, identity=identity, via_api=False)


def open_demand(store: Store, company: str, item: str, site: str, warehouse: str) -> tuple[Decimal, Decimal]:
    """(reserved, unreserved) quantity of the open order lines of one item in one warehouse.

    Only lines with something left to deliver count (a reservation never exceeds that), which the
    (company, item, site, warehouse, remaining) index finds without reading the order history.
    """
    table = store.model.entities["SalesOrderLine"].table
    assert table is not None
    remaining, reserved = table.c.RemainingSalesPhysicalQuantity, table.c.ReservedSalesQuantity
    unreserved = sa.case((remaining > reserved, remaining - reserved), else_=0)
    query = sa.select(sa.func.coalesce(sa.func.sum(reserved), 0), sa.func.coalesce(sa.func.sum(unreserved), 0)).where(
        table.c.dataAreaId == company,
        table.c.ItemNumber == item,
        table.c.ShippingSiteId == site,
        table.c.ShippingWarehouseId == warehouse,
        remaining > 0,
    )
    total_reserved, total_unreserved = store.db.connection.execute(query).one()
    # SQLite sums NUMERIC as floats; round back to the quantity precision of the model.
    return (dec(total_reserved).quantize(QTY), dec(total_unreserved).quantize(QTY))


def available_on_hand(store: Store, company: str, item: str, site: str, warehouse: str) -> Decimal:
    """Physical on-hand not reserved yet."""
    row = onhand_row(store, company, item, site, warehouse)
    return ZERO if row is None else dec(row["OnHandQuantity"]) - dec(row["ReservedOnHandQuantity"])


def reserve(store: Store, settings: ScmSettings, line: Row, identity: str) -> Row:
    """Reserve what the line still needs from the free physical on-hand (partially when stock is short)."""
    company = line["dataAreaId"]
    if not is_stocked(store, company, line["ItemNumber"]):
        return line
    need = dec(line["RemainingSalesPhysicalQuantity"]) - dec(line["ReservedSalesQuantity"])
    if need <= 0:
        return line
    refresh_onhand(
        store, settings, company, line["ItemNumber"], line["ShippingSiteId"], line["ShippingWarehouseId"], identity
    )
    free = available_on_hand(store, company, line["ItemNumber"], line["ShippingSiteId"], line["ShippingWarehouseId"])
    take = min(need, max(free, ZERO))
    if take <= 0:
        return line
    return store.update(
        "SalesOrderLine",
        line,
        {"ReservedSalesQuantity": dec(line["ReservedSalesQuantity"]) + take},
        identity=identity,
        via_api=False,
    )
