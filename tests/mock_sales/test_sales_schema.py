"""The mock Sales model: tables, keys, lookups, choices and money columns follow the Dataverse conventions."""

from __future__ import annotations

import pytest

from mock_sales.schema import NAMESPACE, STATE_MODELS, build_model
from sandbox.odata.model import DATETIME, DECIMAL, GUID, INT32, new_guid

MODEL = build_model()

REQUIRED_TABLES = {
    "lead": "leads",
    "account": "accounts",
    "contact": "contacts",
    "opportunity": "opportunities",
    "opportunityproduct": "opportunityproducts",
    "opportunityclose": "opportunitycloses",
    "quote": "quotes",
    "quotedetail": "quotedetails",
    "quoteclose": "quotecloses",
    "salesorder": "salesorders",
    "salesorderdetail": "salesorderdetails",
    "orderclose": "ordercloses",
    "invoice": "invoices",
    "invoicedetail": "invoicedetails",
    "product": "products",
    "pricelevel": "pricelevels",
    "productpricelevel": "productpricelevels",
    "uom": "uoms",
    "uomschedule": "uomschedules",
    "transactioncurrency": "transactioncurrencies",
    "cdm_company": "cdm_companies",
    "msdyn_customergroup": "msdyn_customergroups",
    "msdyn_paymentterm": "msdyn_paymentterms",
    "msdyn_termsofdelivery": "msdyn_termsofdeliveries",
    "msdyn_shipvia": "msdyn_shipvias",
    "msdyn_operationalsite": "msdyn_operationalsites",
    "msdyn_warehouse": "msdyn_warehouses",
    "systemuser": "systemusers",
    "businessunit": "businessunits",
    "organization": "organizations",
}

ALTERNATE_KEYS = {
    "account": ("accountnumber", "_msdyn_company_value"),
    "contact": ("msdyn_contactpersonid", "_msdyn_company_value"),
    "product": ("msdyn_productnumber", "_msdyn_company_value"),
    "quote": ("msdyn_quotenumber", "_msdyn_company_value"),
    "salesorder": ("msdyn_salesordernumber", "_msdyn_company_value"),
    "invoice": ("msdyn_invoicenumber", "_msdyn_company_value"),
    "quotedetail": ("_quoteid_value", "sequencenumber"),
    "salesorderdetail": ("_salesorderid_value", "sequencenumber"),
    "invoicedetail": ("_invoiceid_value", "sequencenumber"),
    "cdm_company": ("cdm_companycode",),
    "transactioncurrency": ("isocurrencycode",),
    "uom": ("msdyn_symbol",),
    "msdyn_customergroup": ("msdyn_groupid", "_msdyn_company_value"),
    "msdyn_paymentterm": ("msdyn_name", "_msdyn_company_value"),
    "msdyn_termsofdelivery": ("msdyn_termscode", "_msdyn_company_value"),
    "msdyn_shipvia": ("msdyn_name", "_msdyn_company_value"),
    "msdyn_operationalsite": ("msdyn_siteid", "_msdyn_company_value"),
    "msdyn_warehouse": ("msdyn_warehouseidentifier", "_msdyn_company_value"),
}

#: Dataverse columns the prospect-to-cash maps of dual-write.md read or write
DUAL_WRITE_COLUMNS = {
    "account": [
        "accountnumber",
        "name",
        "_msdyn_customergroupid_value",
        "_transactioncurrencyid_value",
        "creditlimit",
        "msdyn_creditrating",
        "msdyn_creditlimitismandatory",
        "_msdyn_billingaccount_value",
        "msdyn_onetimecustomer",
        "msdyn_onholdstatus",
        "_msdyn_paymentterm_value",
        "description",
        "address1_line1",
        "address1_city",
        "address2_line1",
        "emailaddress1",
        "telephone1",
        "fax",
        "websiteurl",
        "numberofemployees",
        "customertypecode",
        "address1_addresstypecode",
        "_msdyn_customerpaymentmethod_value",
        "_msdyn_salestaxgroup_value",
        "msdyn_taxexemptnumber",
    ],
    "contact": ["msdyn_contactpersonid", "msdyn_sellable", "_msdyn_customergroupid_value", "msdyn_onholdstatus"],
    "product": [
        "msdyn_productnumber",
        "name",
        "description",
        "msdyn_itemnumber",
        "_transactioncurrencyid_value",
        "_defaultuomid_value",
        "price",
        "currentcost",
        "producttypecode",
        "quantitydecimal",
        "msdyn_fieldserviceproducttype",
    ],
    "uom": [
        "msdyn_symbol",
        "name",
        "msdyn_externalunitclassname",
        "msdyn_decimalprecision",
        "msdyn_isbaseunit",
        "msdyn_systemofunits",
    ],
    "quote": [
        "msdyn_quotenumber",
        "_customerid_value",
        "name",
        "shipto_line1",
        "shipto_country",
        "billto_city",
        "totalamount",
        "discountamount",
        "totaltax",
        "freightamount",
        "msdyn_totaldiscountpercentage",
        "_msdyn_generatedsalesordernumber_value",
        "_msdyn_paymentterms_value",
        "_msdyn_pricecustomergroup_value",
        "_msdyn_defaultshippingsite_value",
        "_msdyn_defaultshippingwarehouse_value",
        "requestdeliveryby",
        "msdyn_salesquotationstatus",
        "msdyn_salesorderpromisingmethod",
        "msdyn_arepricesincludingsalestax",
        "msdyn_language",
        "msdyn_quotationcreationmethod",
        "msdyn_quotationownership",
        "msdyn_ordertype",
        "msdyn_isreadytosync",
        "statecode",
    ],
    "quotedetail": [
        "sequencenumber",
        "_quoteid_value",
        "quantity",
        "baseamount",
        "extendedamount",
        "priceperunit",
        "ispriceoverridden",
        "isproductoverridden",
        "productdescription",
        "msdyn_linetype",
    ],
    "salesorder": [
        "msdyn_salesordernumber",
        "_customerid_value",
        "_msdyn_invoicecustomerid_value",
        "msdyn_isocurrencycode",
        "shipto_line1",
        "shipto_line2",
        "shipto_city",
        "shipto_postalcode",
        "shipto_stateorprovince",
        "shipto_country",
        "billto_line1",
        "totalamount",
        "discountamount",
        "totaltax",
        "freightamount",
        "msdyn_processingstatus",
        "_msdyn_paymentterms_value",
        "_msdyn_deliverymode_value",
        "_msdyn_deliveryterms_value",
        "_msdyn_salesorderorigin_value",
        "msdyn_quotationnumber",
        "msdyn_requestedreceiptdate",
        "msdyn_confirmedshippingdate",
        "msdyn_confirmedreceiptdate",
        "msdyn_customerrequisitionnumber",
        "msdyn_customersorderreference",
        "msdyn_issalesprocessingstopped",
        "msdyn_isonetimecustomer",
        "_msdyn_contactperson_value",
        "emailaddress",
        "msdyn_url",
        "msdyn_ordertype",
        "msdyn_isreadytosync",
        "ispricelocked",
    ],
    "salesorderdetail": [
        "_salesorderid_value",
        "sequencenumber",
        "_productid_value",
        "description",
        "quantity",
        "_uomid_value",
        "priceperunit",
        "manualdiscountamount",
        "extendedamount",
        "baseamount",
        "tax",
        "msdyn_totalchargesamount",
        "_msdyn_shippingsite_value",
        "_msdyn_shippingwarehouse_value",
        "msdyn_islinestopped",
        "msdyn_linestatus",
        "quantityshipped",
        "msdyn_reservationid",
        "ispriceoverridden",
    ],
    "invoice": [
        "msdyn_invoicenumber",
        "_salesorderid_value",
        "msdyn_invoicedate",
        "msdyn_ledgervoucher",
        "msdyn_totalamount",
        "msdyn_totaltax",
        "freightamount",
        "msdyn_totaldiscountamount",
        "discountamount",
        "description",
        "billto_line1",
        "statuscode",
        "ispricelocked",
        "msdyn_ordertype",
    ],
    "invoicedetail": [
        "_invoiceid_value",
        "sequencenumber",
        "_productid_value",
        "quantity",
        "priceperunit",
        "_uomid_value",
        "extendedamount",
        "manualdiscountamount",
        "tax",
        "_msdyn_inventorysite_value",
        "_msdyn_inventorywarehouse_value",
        "producttypecode",
        "propertyconfigurationstatus",
        "ispriceoverridden",
    ],
}


def test_model_declares_every_lead_to_cash_table_under_its_plural_set() -> None:
    """Each required table exists under its Dataverse entity set, in the Microsoft.Dynamics.CRM namespace."""
    assert MODEL.namespace == NAMESPACE
    assert MODEL.created_on == "createdon" and MODEL.modified_on == "modifiedon"
    for name, entity_set in REQUIRED_TABLES.items():
        assert MODEL.entities[name].entity_set == entity_set


@pytest.mark.parametrize("name", sorted(MODEL.entities))
def test_every_table_has_a_generated_guid_key_and_a_description(name: str) -> None:
    """Keys are one Edm.Guid column named <logicalname>id (activityid for close activities) defaulting to a new GUID."""
    entity = MODEL.entities[name]
    (key,) = entity.key
    assert key == (f"{name}id" if not name.endswith("close") else "activityid")
    assert entity.properties[key].type == GUID and entity.properties[key].default is new_guid
    assert entity.description


def test_platform_bookkeeping_columns_are_never_declared() -> None:
    """versionnumber, _rowid and _rowversion belong to the platform, not the model."""
    for entity in MODEL.entities.values():
        assert not {"versionnumber", "_rowid", "_rowversion"} & set(entity.properties)


@pytest.mark.parametrize("name,key", sorted(ALTERNATE_KEYS.items()))
def test_dual_write_integration_keys_are_alternate_keys(name: str, key: tuple[str, ...]) -> None:
    """The dual-write integration keys are addressable as alternate keys."""
    assert key in MODEL.entities[name].alternate_keys


def test_every_lookup_column_has_an_fk_owning_navigation_of_the_same_name() -> None:
    """_x_value columns pair with navigation x (polymorphic: x_account / x_contact with a hidden type column)."""
    for entity in MODEL.entities.values():
        for prop in entity.properties.values():
            if prop.lookup is None:
                continue
            assert prop.name == f"_{prop.lookup}_value" and prop.type == GUID
            navs = [n for n in entity.navigations.values() if n.owns_fk and n.pairs[0][0] == prop.name]
            assert navs, f"{entity.name}.{prop.name} has no navigation"
            if len(navs) > 1:
                type_column = f"_{prop.lookup}_type"
                assert entity.properties[type_column].hidden
                assert {n.name for n in navs} == {f"{prop.lookup}_account", f"{prop.lookup}_contact"}
                assert {n.local_condition[type_column] for n in navs} == {"account", "contact"}


def test_navigation_partners_point_back_at_each_other() -> None:
    """A declared partner exists on the target and targets the declaring table."""
    for entity in MODEL.entities.values():
        for nav in entity.navigations.values():
            if nav.partner:
                partner = MODEL.entities[nav.target].navigations[nav.partner]
                assert partner.target == entity.name, f"{entity.name}.{nav.name} <-> {nav.partner}"


@pytest.mark.parametrize(
    "name,nav,target",
    [
        ("account", "contact_customer_accounts", "contact"),
        ("account", "opportunity_customer_accounts", "opportunity"),
        ("account", "quote_customer_accounts", "quote"),
        ("contact", "contact_customer_contacts", "contact"),
        ("quote", "quote_details", "quotedetail"),
        ("salesorder", "order_details", "salesorderdetail"),
        ("invoice", "invoice_details", "invoicedetail"),
        ("opportunity", "product_opportunities", "opportunityproduct"),
        ("pricelevel", "price_level_product_price_levels", "productpricelevel"),
        ("quote", "Quote_QuoteClose", "quoteclose"),
        ("salesorder", "SalesOrder_OrderClose", "orderclose"),
    ],
)
def test_reverse_collection_navigations_use_the_real_names(name: str, nav: str, target: str) -> None:
    """Collections carry Dataverse's relationship names; customer collections filter on the lookup's type."""
    navigation = MODEL.entities[name].navigations[nav]
    assert navigation.many and navigation.target == target
    if nav.endswith("_customer_accounts") or nav == "contact_customer_accounts":
        assert list(navigation.target_condition.values()) == ["account"]


@pytest.mark.parametrize("name,columns", sorted(DUAL_WRITE_COLUMNS.items()))
def test_columns_used_by_the_dual_write_maps_exist(name: str, columns: list[str]) -> None:
    """Every Dataverse column the prospect-to-cash maps name is declared."""
    missing = [c for c in columns if c not in MODEL.entities[name].properties]
    assert not missing


def test_choices_are_int32_with_an_enum_for_formatted_values() -> None:
    """statecode, statuscode and the other choices carry labels; customertypecode has all twelve options."""
    for entity in MODEL.entities.values():
        for name in ("statecode", "statuscode"):
            if name in entity.properties:
                assert entity.properties[name].type == INT32 and entity.properties[name].enum is not None
    customer_type = MODEL.entities["account"].properties["customertypecode"].enum
    assert customer_type is not None and sorted(customer_type.members.values()) == list(range(1, 13))
    assert customer_type.name_of(3) == "Customer" and customer_type.name_of(8) == "Prospect"
    assert MODEL.entities["account"].properties["customertypecode"].default is None
    assert MODEL.entities["salesorder"].properties["msdyn_processingstatus"].enum.name_of(192350005) == "Invoiced"


def test_state_models_pair_every_default_reason_with_its_own_state() -> None:
    """The default statuscode of each statecode belongs to that statecode, and the enums list them all."""
    for name, model in STATE_MODELS.items():
        for state, (_, default) in model.states.items():
            assert model.state_of(default) == state, f"{name}: {state} -> {default}"
        statuses = MODEL.entities[name].properties["statuscode"].enum
        assert set(statuses.members.values()) == set(model.statuses)
    assert STATE_MODELS["product"].initial == 2


def test_money_columns_are_decimals_with_base_twins_and_a_currency() -> None:
    """Money is Edm.Decimal scale 4; _base twins are read-only; money tables have _transactioncurrencyid_value."""
    for entity in MODEL.entities.values():
        money = [p for p in entity.properties.values() if p.type == DECIMAL and p.scale == 4]
        if money:
            assert "_transactioncurrencyid_value" in entity.properties, entity.name
        for prop in money:
            if prop.name.endswith("_base"):
                assert prop.read_only
    quote = MODEL.entities["quote"].properties
    for name in ("totalamount", "totallineitemamount", "discountamount", "freightamount", "totaltax"):
        assert f"{name}_base" in quote


def test_user_owned_tables_carry_owner_and_timestamps() -> None:
    """Documents, customers and activities have createdon/modifiedon (read-only) and _ownerid_value."""
    for name in ("lead", "account", "contact", "opportunity", "quote", "salesorder", "invoice", "quoteclose"):
        props = MODEL.entities[name].properties
        assert props["createdon"].type == DATETIME and props["createdon"].read_only
        assert props["modifiedon"].read_only
        assert props["_ownerid_value"].lookup == "ownerid"


def test_computed_columns_are_read_only_for_users() -> None:
    """Names, auto numbers and amounts the system computes are read-only; inputs stay writable."""
    assert MODEL.entities["lead"].properties["fullname"].read_only
    assert MODEL.entities["contact"].properties["fullname"].read_only
    assert MODEL.entities["quote"].properties["quotenumber"].read_only
    assert MODEL.entities["quote"].properties["totalamount"].read_only
    assert not MODEL.entities["quote"].properties["discountamount"].read_only
    assert MODEL.entities["quotedetail"].properties["extendedamount"].read_only
    assert not MODEL.entities["quotedetail"].properties["priceperunit"].read_only


def test_number_sequence_table_is_untracked_and_read_only() -> None:
    """The sandbox's counters never reach the change feed and cannot be written over the API."""
    sequence = MODEL.entities["sandbox_numbersequence"]
    assert not sequence.tracked and sequence.read_only
