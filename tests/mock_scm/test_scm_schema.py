"""The SCM model: public names, compound keys, enums, F&O value conventions, CDS views."""

from __future__ import annotations

import pytest

from mock_scm import schema
from mock_scm.schema import EMPTY_DATE, NAMESPACE, build_model
from sandbox.odata.model import DATETIME, ROWID, ROWVERSION, STRING

EXPECTED_KEYS = {
    "LegalEntities": ("LegalEntityId",),
    "Currencies": ("CurrencyCode",),
    "UnitsOfMeasure": ("UnitSymbol",),
    "CustomerGroups": ("dataAreaId", "CustomerGroupId"),
    "PaymentTerms": ("dataAreaId", "Name"),
    "DeliveryTerms": ("dataAreaId", "TermsCode"),
    "DeliveryModes": ("dataAreaId", "ModeCode"),
    "OperationalSites": ("dataAreaId", "SiteId"),
    "Warehouses": ("dataAreaId", "WarehouseId"),
    "ReleasedProductsV2": ("dataAreaId", "ItemNumber"),
    "CDSReleasedDistinctProducts": ("dataAreaId", "ProductNumber"),
    "CustomersV3": ("dataAreaId", "CustomerAccount"),
    "ContactPersonsV2": ("dataAreaId", "ContactPersonId"),
    "SalesQuotationHeadersV2": ("dataAreaId", "SalesQuotationNumber"),
    "SalesQuotationLines": ("dataAreaId", "InventoryLotId"),
    "CDSSalesQuotationHeaders": ("dataAreaId", "SalesQuotationNumber"),
    "CDSSalesQuotationLines": ("dataAreaId", "SalesQuotationNumber", "LineCreationSequenceNumber"),
    "SalesOrderHeadersV2": ("dataAreaId", "SalesOrderNumber"),
    "SalesOrderLines": ("dataAreaId", "InventoryLotId"),
    "CDSSalesOrderHeaders": ("dataAreaId", "SalesOrderNumber"),
    "CDSSalesOrderLinesV2": ("dataAreaId", "SalesOrderNumber", "LineCreationSequenceNumber"),
    "SalesInvoiceHeadersV2": ("dataAreaId", "InvoiceNumber"),
    "SalesInvoiceLinesV2": ("dataAreaId", "InvoiceNumber", "LineCreationSequenceNumber"),
    "WarehousesOnHandV2": ("dataAreaId", "ItemNumber", "InventorySiteId", "InventoryWarehouseId"),
    "CustomerPaymentJournalHeaders": ("dataAreaId", "JournalBatchNumber"),
    "CustomerPaymentJournalLines": ("dataAreaId", "JournalBatchNumber", "LineNumber"),
}


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.mark.parametrize("entity_set,key", sorted(EXPECTED_KEYS.items()))
def test_entity_set_has_public_name_and_compound_key(model, entity_set: str, key: tuple[str, ...]) -> None:
    """Every required entity set exists under its public name with the real key (dataAreaId first)."""
    assert model.by_set[entity_set].key == key


def test_shared_entities_have_no_company_and_company_entities_do(model) -> None:
    """Units, currencies and legal entities are shared; everything else is scoped by dataAreaId."""
    for entity in model.entities.values():
        if entity.entity_set in ("LegalEntities", "Currencies", "UnitsOfMeasure"):
            assert entity.company_property is None and "dataAreaId" not in entity.properties
        else:
            assert entity.company_property == "dataAreaId" and entity.key[0] == "dataAreaId"


def test_type_names_are_the_singular_public_names(model) -> None:
    """The type of CustomersV3 is CustomerV3, of SalesOrderHeadersV2 SalesOrderHeaderV2, and so on."""
    names = {e.entity_set: e.name for e in model.entities.values()}
    assert names["CustomersV3"] == "CustomerV3"
    assert names["SalesOrderHeadersV2"] == "SalesOrderHeaderV2"
    assert names["SalesOrderLines"] == "SalesOrderLine"
    assert names["CustomerGroups"] == "CustomerGroup"
    assert names["LegalEntities"] == "LegalEntity"
    assert model.namespace == NAMESPACE == "Microsoft.Dynamics.DataEntities"


def test_cds_entities_are_views_over_the_v2_tables(model) -> None:
    """The dual-write flavours share the base table and expose a subset of its properties."""
    pairs = {
        "CDSSalesQuotationHeader": "SalesQuotationHeaderV2",
        "CDSSalesQuotationLine": "SalesQuotationLine",
        "CDSSalesOrderHeader": "SalesOrderHeaderV2",
        "CDSSalesOrderLineV2": "SalesOrderLine",
        "CDSReleasedDistinctProduct": "ReleasedProductV2",
    }
    for alias, base in pairs.items():
        assert model.entities[alias].alias_of == base
        assert model.entities[alias].table is model.entities[base].table
        assert set(model.entities[alias].properties) <= set(model.entities[base].properties)


def test_lines_declare_creation_sequence_number_as_alternate_key(model) -> None:
    """Dual-write matches lines on document number + LineCreationSequenceNumber, unique per document."""
    assert ("dataAreaId", "SalesOrderNumber", "LineCreationSequenceNumber") in model.entities[
        "SalesOrderLine"
    ].alternate_keys
    assert ("dataAreaId", "SalesQuotationNumber", "LineCreationSequenceNumber") in model.entities[
        "SalesQuotationLine"
    ].alternate_keys
    for name in ("SalesOrderLine", "SalesQuotationLine"):
        assert {"LineCreationSequenceNumber", "LineNumber", "InventoryLotId"} <= set(model.entities[name].properties)


def test_strings_default_to_empty_and_dates_to_1900(model) -> None:
    """F&O never sends null strings and uses 1900-01-01T12:00:00Z for no date."""
    for entity in model.entities.values():
        for prop in entity.properties.values():
            if prop.type == STRING and prop.enum is None:
                assert prop.default == "", f"{entity.name}.{prop.name}"
            if prop.type == DATETIME:
                assert prop.default == EMPTY_DATE, f"{entity.name}.{prop.name}"


def test_platform_columns_are_not_declared(model) -> None:
    """_rowid and _rowversion belong to the platform."""
    for entity in model.entities.values():
        assert ROWID not in entity.properties and ROWVERSION not in entity.properties


def test_enums_are_shared_objects_in_the_dynamics_namespace(model) -> None:
    """Header and line status use one SalesStatus enum; flags are NoYes, never Edm.Boolean."""
    header, line = model.entities["SalesOrderHeaderV2"], model.entities["SalesOrderLine"]
    assert (
        header.properties["SalesOrderStatus"].enum is line.properties["SalesOrderLineStatus"].enum is schema.SalesStatus
    )
    assert schema.SalesStatus.members == {"None": 0, "Backorder": 1, "Delivered": 2, "Invoiced": 3, "Canceled": 4}
    assert schema.DocumentStatus.members["Confirmation"] == 3 and schema.DocumentStatus.members["Invoice"] == 7
    assert header.properties["IsSalesProcessingStopped"].enum is schema.NoYes
    assert model.entities["CustomerV3"].properties["OnHoldStatus"].enum.name_of(2) == "All"
    for enum in model.enums.values():
        assert enum.namespace == NAMESPACE
    assert all(p.type != "Edm.Boolean" for e in model.entities.values() for p in e.properties.values())


def test_processing_status_has_every_dual_write_member() -> None:
    """The processing statuses Sales receives: Active ... Canceled (+ the 10.0.34 DeliveredPartiallyInvoiced)."""
    wanted = {
        "Active",
        "Confirmed",
        "Picked",
        "PartiallyDelivered",
        "Delivered",
        "PartiallyInvoiced",
        "Invoiced",
        "Canceled",
        "DeliveredPartiallyInvoiced",
    }
    assert wanted <= set(schema.SalesOrderProcessingStatus.members)


def test_navigations_pair_headers_and_lines(model) -> None:
    """Orders expand to their lines by company and number, and lines navigate back."""
    nav = model.entities["SalesOrderHeaderV2"].navigations["SalesOrderLines"]
    assert nav.many and nav.pairs == [("dataAreaId", "dataAreaId"), ("SalesOrderNumber", "SalesOrderNumber")]
    back = model.entities["SalesOrderLine"].navigations["SalesOrderHeader"]
    assert not back.many and back.target == "SalesOrderHeaderV2"
    assert model.entities["CDSSalesOrderHeader"].navigations["SalesOrderLines"].target == "CDSSalesOrderLineV2"
    assert model.entities["SalesInvoiceHeaderV2"].navigations["SalesInvoiceLines"].many


def test_posted_documents_and_on_hand_are_read_only(model) -> None:
    """Invoices and on-hand are produced by processes, never written over OData."""
    for name in ("SalesInvoiceHeaderV2", "SalesInvoiceLineV2", "WarehouseOnHandV2", "CDSReleasedDistinctProduct"):
        assert model.entities[name].read_only
