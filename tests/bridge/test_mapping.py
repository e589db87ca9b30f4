"""Table maps as data: the loader, the shipped prospect-to-cash set, and every validation code."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bridge.mapping import (
    BUILTIN_MAPS,
    KEEP,
    NAMED_VALUE_MAPS,
    FieldMap,
    MapValidationError,
    SalesPath,
    TableMap,
    load_maps,
    order_by_dependencies,
    parse_map,
    parse_map_file,
    validate_map,
)
from mock_sales.schema import build_model as build_sales_model
from mock_scm.schema import build_model as build_scm_model
from sandbox.odata.model import Model


@pytest.fixture(scope="module")
def models() -> tuple[Model, Model]:
    """(SCM model, Sales model), built once: validation only reads them."""
    return build_scm_model(), build_sales_model()


def group_map(**changes: Any) -> dict[str, Any]:
    """A valid customer-groups map as YAML data; keyword arguments replace top-level entries."""
    data: dict[str, Any] = {
        "id": "groups",
        "scm": {"entity": "CustomerGroups"},
        "sales": {"table": "msdyn_customergroups"},
        "company": True,
        "keys": [{"scm": "CustomerGroupId", "sales": "msdyn_groupid"}],
        "fields": [
            {"scm": "CustomerGroupId", "dir": "=", "sales": "msdyn_groupid"},
            {"scm": "Description", "dir": "=", "sales": "msdyn_description"},
        ],
    }
    data.update(copy.deepcopy(changes))
    return data


def with_field(data: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    data["fields"].append(item)
    return data


def check(data: dict[str, Any], models: tuple[Model, Model]) -> TableMap:
    table_map = parse_map(data)
    validate_map(table_map, *models)
    return table_map


def code_of(data: dict[str, Any], models: tuple[Model, Model]) -> str:
    with pytest.raises(MapValidationError) as caught:
        check(data, models)
    return caught.value.code


# ---- the shipped maps --------------------------------------------------------------------------------------

SHIPPED = {
    "legal-entities",
    "currencies",
    "units",
    "payment-terms",
    "customer-groups",
    "delivery-terms",
    "delivery-modes",
    "sites",
    "warehouses",
    "price-customer-groups",
    "sales-order-origins",
    "sales-tax-groups",
    "customer-payment-methods",
    "customers-accounts",
    "customers-contacts",
    "products",
    "quotation-headers",
    "quotation-lines",
    "order-headers",
    "order-lines",
    "invoice-headers",
    "invoice-lines",
}
ONE_WAY = {"legal-entities", "units", "products", "invoice-headers", "invoice-lines"}


def test_shipped_maps_load_validate_and_cover_prospect_to_cash(models: tuple[Model, Model]) -> None:
    """Every YAML file in bridge/maps loads and validates; together they are the prospect-to-cash set."""
    maps = load_maps([BUILTIN_MAPS], *models)
    assert {m.id for m in maps} == SHIPPED
    assert len(list(BUILTIN_MAPS.glob("*.yaml"))) == len(SHIPPED)


def test_shipped_maps_come_after_the_maps_they_depend_on(models: tuple[Model, Model]) -> None:
    """load_maps orders by depends_on, whatever the file names say: parents always come first."""
    maps = load_maps([BUILTIN_MAPS], *models)
    position = {m.id: index for index, m in enumerate(maps)}
    for table_map in maps:
        for parent in table_map.depends_on:
            assert position[parent] < position[table_map.id], (parent, table_map.id)
    # a confirmed quotation looks up the order it generated, so orders precede quotations
    assert position["order-headers"] < position["quotation-headers"]


def test_shipped_one_way_maps_are_scm_to_sales_only(models: tuple[Model, Model]) -> None:
    """Legal entities, units, products and invoices flow from SCM to Sales only; the rest both ways."""
    for table_map in load_maps([BUILTIN_MAPS], *models):
        assert table_map.syncs_to_sales
        assert table_map.syncs_to_scm == (table_map.id not in ONE_WAY), table_map.id


def test_shipped_line_maps_take_the_company_of_their_document(models: tuple[Model, Model]) -> None:
    """Line tables have no msdyn_company: the quote, order or invoice they belong to carries it."""
    by_id = {m.id: m for m in load_maps([BUILTIN_MAPS], *models)}
    assert by_id["quotation-lines"].company_from == "quoteid"
    assert by_id["order-lines"].company_from == "salesorderid"
    assert by_id["invoice-lines"].company_from == "invoiceid"


def test_later_folder_overrides_a_shipped_map_by_id(models: tuple[Model, Model], tmp_path: Path) -> None:
    """A user's folder replaces a shipped map with the same id (and keeps the dependency order)."""
    (tmp_path / "units.yaml").write_text(
        "id: units\nname: My units\nscm: {entity: UnitsOfMeasure}\nsales: {table: uoms}\n"
        "keys: [{scm: UnitSymbol, sales: msdyn_symbol}]\n"
        "fields: [{scm: UnitSymbol, dir: '>', sales: msdyn_symbol}]\n",
        encoding="utf-8",
    )
    maps = {m.id: m for m in load_maps([BUILTIN_MAPS, tmp_path], *models)}
    assert maps["units"].name == "My units"
    assert len(maps) == len(SHIPPED)


# ---- parsing --------------------------------------------------------------------------------------------------


def test_named_value_maps_expand_to_their_pairs(models: tuple[Model, Model]) -> None:
    """``values: noyes`` and ``values: country`` stand for the shared value maps."""
    data = group_map(
        scm={"entity": "CustomersV3"},
        sales={"table": "accounts"},
        keys=[{"scm": "CustomerAccount", "sales": "accountnumber"}],
        fields=[
            {"scm": "CustomerAccount", "sales": "accountnumber"},
            {"scm": "IsOneTimeCustomer", "sales": "msdyn_onetimecustomer", "values": "noyes"},
            {"scm": "AddressCountryRegionISOCode", "sales": "address1_country", "values": "country"},
        ],
    )
    table_map = check(data, models)
    assert table_map.fields[1].values == {"No": False, "Yes": True}
    assert table_map.fields[2].values["US"] == "united states"
    assert table_map.fields[2].values is NAMED_VALUE_MAPS["country"]


def test_sales_side_with_bar_is_a_polymorphic_lookup() -> None:
    """``a.x|b.y`` lists the alternatives of a customer lookup, in order."""
    table_map = parse_map(
        group_map(
            fields=[
                {"scm": "CustomerGroupId", "sales": "msdyn_groupid"},
                {
                    "scm": "Description",
                    "sales": "customerid_account.accountnumber|customerid_contact.msdyn_contactpersonid",
                },
            ]
        )
    )
    assert table_map.fields[1].sales == [
        SalesPath("customerid_account", "accountnumber"),
        SalesPath("customerid_contact", "msdyn_contactpersonid"),
    ]
    assert table_map.fields[1].is_lookup


def test_field_options_are_parsed(models: tuple[Model, Model]) -> None:
    """dir defaults to '=', default and scm_default are kept on the field."""
    table_map = check(
        with_field(
            group_map(),
            {"scm": "PaymentTermId", "sales": "msdyn_paymentterm.msdyn_name", "default": "Net30", "scm_default": True},
        ),
        models,
    )
    field = table_map.fields[2]
    assert (field.direction, field.default, field.scm_default) == ("=", "Net30", True)
    assert table_map.fields[0].scm_default is False


def test_sales_computed_and_price_list_are_parsed(models: tuple[Model, Model]) -> None:
    """``sales.computed`` and ``sales.price_list`` reach the TableMap (the products map uses both)."""
    by_id = {m.id: m for m in load_maps([BUILTIN_MAPS], *models)}
    products = by_id["products"]
    assert products.computed_sales == ["productnumber"]
    assert products.price_list is not None and products.price_list.currency == "CurrencyCode"
    assert products.price_list.name == "{currency} price list"


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("not a mapping", "must be a YAML mapping"),
        ({"id": "x", "sales": {"table": "accounts"}}, "'scm.entity' is required"),
        ({"id": "x", "scm": {"entity": "CustomersV3"}}, "'sales.table' is required"),
        (group_map(fields="CustomerGroupId"), "'fields' must be a list"),
        (group_map(fields=[{"scm": "CustomerGroupId", "dir": "<>", "sales": "msdyn_groupid"}]), "direction must be"),
        (
            group_map(fields=[{"scm": "CustomerGroupId", "sales": "msdyn_groupid", "values": "yesno"}]),
            "unknown value map 'yesno'",
        ),
        (
            group_map(fields=[{"scm": "CustomerGroupId", "sales": "msdyn_groupid", "value": {}}]),
            "unknown option(s) value",
        ),
        (group_map(fields=[{"scm": "CustomerGroupId"}]), "needs 'scm' and 'sales'"),
        (group_map(defaults=["x"]), "'defaults' must be a mapping"),
        (group_map(sales={"table": "products", "price_list": {"name": "x"}}), "needs 'currency'"),
    ],
)
def test_malformed_map_is_dipv1000(data: Any, fragment: str) -> None:
    """Shape errors are DIPV1000 and say what is wrong."""
    with pytest.raises(MapValidationError) as caught:
        parse_map(data, source="bad.yaml")
    assert caught.value.code == "DIPV1000"
    assert fragment in caught.value.message


def test_map_file_that_is_not_yaml_is_dipv1000(tmp_path: Path) -> None:
    """A YAML syntax error names the file."""
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(MapValidationError) as caught:
        parse_map_file(path)
    assert (caught.value.code, caught.value.map_id) == ("DIPV1000", "broken")
    assert "broken.yaml is not valid YAML" in caught.value.message


# ---- FieldMap transforms ------------------------------------------------------------------------------------------


def test_value_map_translates_both_ways_and_passes_unmapped_values() -> None:
    """SCM -> Sales by the pairs, Sales -> SCM backwards; unmapped values pass through unchanged."""
    field = FieldMap(
        "OnHoldStatus", [SalesPath(None, "msdyn_onholdstatus")], values={"No": 806380000, "All": 806380002}
    )
    assert field.value_to_sales("All") == 806380002
    assert field.value_to_sales("all") == 806380002  # F&O enum names compare without case
    assert field.value_to_scm(806380000) == "No"
    assert field.value_to_sales("Never") == "Never"
    assert field.value_to_scm(1) == 1


def test_noyes_value_map_tells_false_from_zero() -> None:
    """Booleans match booleans only, so ``False`` never maps to a 0 and back."""
    field = FieldMap("IsLineStopped", [SalesPath(None, "msdyn_islinestopped")], values=NAMED_VALUE_MAPS["noyes"])
    assert field.value_to_sales("Yes") is True
    assert field.value_to_scm(False) == "No"
    assert field.value_to_scm(0) == 0


def test_default_is_used_for_empty_and_unmapped_values() -> None:
    """The "Default" transform: empty source values (null or "") and, to Sales, unmapped ones."""
    field = FieldMap("ProductType", [SalesPath(None, "producttypecode")], values={"Item": 1, "Service": 3}, default=1)
    assert field.value_to_sales(None) == 1
    assert field.value_to_sales("") == 1
    assert field.value_to_sales("Kit") == 1
    assert field.value_to_sales("Service") == 3
    plain = FieldMap("SalesUnitDecimalPrecision", [SalesPath(None, "quantitydecimal")], default=0)
    assert plain.value_to_sales(None) == 0 and plain.value_to_scm(None) == 0 and plain.value_to_sales(2) == 2


def test_value_mapped_to_a_list_stands_for_several_sales_values() -> None:
    """``Sent: [2, 3]``: both Active status reasons of a quote read back as Sent; Sent writes the first."""
    field = FieldMap(
        "SalesQuotationStatus", [SalesPath(None, "statuscode")], values={"Created": 1, "Sent": [2, 3], "Confirmed": 4}
    )
    assert field.value_to_scm(2) == "Sent" and field.value_to_scm(3) == "Sent"
    assert field.value_to_scm(4) == "Confirmed"
    assert field.value_to_sales("Sent") == 2


def test_value_mapped_to_null_means_keep_the_target() -> None:
    """``PartiallyInvoiced: ~`` answers KEEP (leave the Sales column as it is); null never maps back."""
    field = FieldMap(
        "SalesOrderProcessingStatus", [SalesPath(None, "statecode")], values={"Delivered": 3, "PartiallyInvoiced": None}
    )
    assert field.value_to_sales("PartiallyInvoiced") is KEEP
    assert field.value_to_sales("Delivered") == 3
    assert field.value_to_scm(None) is None


# ---- validation codes ---------------------------------------------------------------------------------------


def test_valid_map_passes_and_gets_its_entity_types(models: tuple[Model, Model]) -> None:
    """A valid map validates and knows its SCM entity and Sales table afterwards."""
    table_map = check(group_map(), models)
    assert table_map.scm_type is not None and table_map.scm_type.name == "CustomerGroup"
    assert table_map.sales_type is not None and table_map.sales_type.name == "msdyn_customergroup"
    assert table_map.bidirectional


def test_upper_case_scm_names_are_accepted(models: tuple[Model, Model]) -> None:
    """Dual-write writes F&O field names in upper case; the loader matches them without case."""
    check(
        group_map(
            keys=[{"scm": "CUSTOMERGROUPID", "sales": "msdyn_groupid"}],
            fields=[
                {"scm": "CUSTOMERGROUPID", "sales": "msdyn_groupid"},
                {"scm": "DESCRIPTION", "sales": "msdyn_description"},
            ],
        ),
        models,
    )


def test_unknown_entity_or_table_is_dipv1001(models: tuple[Model, Model]) -> None:
    """The SCM entity set and the Sales table must exist."""
    assert code_of(group_map(scm={"entity": "CustomerGroupsV9"}), models) == "DIPV1001"
    assert code_of(group_map(sales={"table": "msdyn_groups"}), models) == "DIPV1001"


def test_missing_integration_key_is_dipv1003(models: tuple[Model, Model]) -> None:
    """Every map needs a key, and each key names both sides."""
    assert code_of(group_map(keys=[]), models) == "DIPV1003"
    assert code_of(group_map(keys=[{"scm": "CustomerGroupId"}]), models) == "DIPV1003"


def test_key_that_is_not_a_mapped_field_is_dipv1014(models: tuple[Model, Model]) -> None:
    """The key must be one of the map's field mappings."""
    assert (
        code_of(group_map(keys=[{"scm": "PaymentTermId", "sales": "msdyn_paymentterm.msdyn_name"}]), models)
        == "DIPV1014"
    )


def test_one_way_key_on_a_two_way_map_is_dipv1004(models: tuple[Model, Model]) -> None:
    """When any field is bidirectional, the key fields must be too."""
    data = group_map(
        fields=[
            {"scm": "CustomerGroupId", "dir": ">", "sales": "msdyn_groupid"},
            {"scm": "Description", "dir": "=", "sales": "msdyn_description"},
        ]
    )
    assert code_of(data, models) == "DIPV1004"
    # one-way maps may have one-way keys
    data["fields"][1]["dir"] = ">"
    check(data, models)


def test_a_map_that_writes_both_ways_through_one_way_fields_needs_a_two_way_key(models: tuple[Model, Model]) -> None:
    """A '>' field plus a '<' field make the map bidirectional too."""
    data = group_map(
        fields=[
            {"scm": "CustomerGroupId", "dir": ">", "sales": "msdyn_groupid"},
            {"scm": "Description", "dir": "<", "sales": "msdyn_description"},
        ]
    )
    assert code_of(data, models) == "DIPV1004"


@pytest.mark.parametrize(
    "item",
    [
        {"scm": "Colour", "sales": "msdyn_description"},  # unknown SCM field
        {"scm": "Description", "sales": "msdyn_colour"},  # unknown Sales column
        {"scm": "PaymentTermId", "sales": "msdyn_terms.msdyn_name"},  # no such lookup
        {"scm": "PaymentTermId", "sales": "msdyn_paymentterm.msdyn_colour"},  # unknown column behind the lookup
    ],
)
def test_unknown_column_is_dipv1008(models: tuple[Model, Model], item: dict[str, str]) -> None:
    """Fields, lookups and the columns behind lookups must exist."""
    data = group_map()
    data["fields"] = [data["fields"][0], item]
    assert code_of(data, models) == "DIPV1008"


def test_default_or_computed_column_that_does_not_exist_is_dipv1008(models: tuple[Model, Model]) -> None:
    """Constants and ``computed`` columns are checked against the models as well."""
    assert code_of(group_map(defaults={"sales": {"msdyn_colour": 1}}), models) == "DIPV1008"
    assert code_of(group_map(defaults={"scm": {"Colour": 1}}), models) == "DIPV1008"
    assert (
        code_of(group_map(sales={"table": "msdyn_customergroups", "computed": ["msdyn_colour"]}), models) == "DIPV1008"
    )


def test_price_list_rule_needs_a_price_list_lookup_and_a_currency_field(models: tuple[Model, Model]) -> None:
    """``price_list`` applies to tables with a pricelevelid lookup, naming an existing SCM field."""
    assert (
        code_of(group_map(sales={"table": "msdyn_customergroups", "price_list": {"currency": "Description"}}), models)
        == "DIPV1008"
    )
    products = {
        "id": "p",
        "scm": {"entity": "CDSReleasedDistinctProducts"},
        "company": True,
        "sales": {"table": "products", "computed": ["productnumber"], "price_list": {"currency": "Money"}},
        "keys": [{"scm": "ProductNumber", "sales": "msdyn_productnumber"}],
        "fields": [{"scm": "ProductNumber", "dir": ">", "sales": "msdyn_productnumber"}],
    }
    assert code_of(products, models) == "DIPV1008"
    products["sales"]["price_list"] = {"currency": "CurrencyCode"}
    check(products, models)


def test_lookup_column_without_alternate_key_is_dipv1027(models: tuple[Model, Model]) -> None:
    """A lookup is resolved by the related table's key: msdyn_description is not one."""
    data = with_field(group_map(), {"scm": "PaymentTermId", "sales": "msdyn_paymentterm.msdyn_description"})
    assert code_of(data, models) == "DIPV1027"


def test_two_mappings_writing_one_scm_field_is_dipv1023(models: tuple[Model, Model]) -> None:
    """Two fields that write the same SCM field towards SCM are ambiguous."""
    data = with_field(group_map(), {"scm": "Description", "dir": "<", "sales": "msdyn_groupid"})
    assert code_of(data, models) == "DIPV1023"


def test_two_mappings_writing_one_sales_column_is_dipv1029(models: tuple[Model, Model]) -> None:
    """Two fields that write the same Sales column are ambiguous; one SCM field feeding two columns is fine."""
    data = with_field(group_map(), {"scm": "PaymentTermId", "dir": ">", "sales": "msdyn_description"})
    assert code_of(data, models) == "DIPV1029"
    terms = {
        "id": "t",
        "scm": {"entity": "DeliveryTerms"},
        "sales": {"table": "msdyn_termsofdeliveries"},
        "company": True,
        "keys": [{"scm": "TermsCode", "sales": "msdyn_termscode"}],
        "fields": [
            {"scm": "TermsCode", "sales": "msdyn_termscode"},
            {"scm": "TermsCode", "dir": ">", "sales": "msdyn_name"},
        ],
    }
    check(terms, models)


def test_mandatory_target_not_mapped_is_dipv1010(models: tuple[Model, Model]) -> None:
    """products.productnumber is required in Sales: a map to products must write it or declare it computed."""
    products = {
        "id": "p",
        "scm": {"entity": "CDSReleasedDistinctProducts"},
        "sales": {"table": "products"},
        "company": True,
        "keys": [{"scm": "ProductNumber", "sales": "msdyn_productnumber"}],
        "fields": [{"scm": "ProductNumber", "dir": ">", "sales": "msdyn_productnumber"}],
    }
    with pytest.raises(MapValidationError) as caught:
        check(products, models)
    assert caught.value.code == "DIPV1010" and "products.productnumber" in caught.value.message
    products["sales"]["computed"] = ["productnumber"]
    check(products, models)


def test_mandatory_target_given_as_a_constant_is_fine(models: tuple[Model, Model]) -> None:
    """A constant for the target counts as mapping the mandatory column."""
    currencies = {
        "id": "c",
        "scm": {"entity": "Currencies"},
        "sales": {"table": "transactioncurrencies"},
        "keys": [{"scm": "CurrencyCode", "sales": "currencysymbol"}],
        "fields": [{"scm": "CurrencyCode", "dir": ">", "sales": "currencysymbol"}],
    }
    assert code_of(currencies, models) == "DIPV1010"
    currencies["defaults"] = {"sales": {"isocurrencycode": "XXX"}}
    check(currencies, models)


@pytest.mark.parametrize(
    "item",
    [
        {"scm": "OnHoldStatus", "sales": "msdyn_onholdstatus"},  # enum vs choice needs a value map
        {"scm": "CreditLimit", "sales": "name"},  # decimal vs string
        {"scm": "CreditLimitIsMandatory", "sales": "msdyn_creditlimitismandatory"},  # NoYes vs boolean
    ],
)
def test_type_mismatch_is_dipv1030(models: tuple[Model, Model], item: dict[str, str]) -> None:
    """Incompatible types need a value map; with one the field validates."""
    data = {
        "id": "a",
        "scm": {"entity": "CustomersV3"},
        "sales": {"table": "accounts"},
        "company": True,
        "keys": [{"scm": "CustomerAccount", "sales": "accountnumber"}],
        "fields": [{"scm": "CustomerAccount", "sales": "accountnumber"}, dict(item)],
    }
    assert code_of(data, models) == "DIPV1030"


@pytest.mark.parametrize("text", ["customertypecode eq", "contains(name, 'x')", "customertypecode add 3"])
def test_invalid_filter_is_dipv1012(models: tuple[Model, Model], text: str) -> None:
    """Filters must parse and use plain comparisons of the row's own columns."""
    assert code_of(group_map(sales={"table": "msdyn_customergroups", "filter": text}), models) == "DIPV1012"
    assert code_of(group_map(scm={"entity": "CustomerGroups", "filter": text}), models) == "DIPV1012"


def test_company_mismatch_is_dipv1002(models: tuple[Model, Model]) -> None:
    """Both sides company-specific or both shared; line maps name the lookup that carries the company."""
    # company-specific flag on shared tables
    currencies = {
        "id": "c",
        "scm": {"entity": "Currencies"},
        "sales": {"table": "transactioncurrencies"},
        "company": True,
        "keys": [{"scm": "CurrencyCode", "sales": "isocurrencycode"}],
        "fields": [{"scm": "CurrencyCode", "sales": "isocurrencycode"}],
    }
    assert code_of(currencies, models) == "DIPV1002"
    # both sides company-specific but the map says shared
    assert code_of(group_map(company=False), models) == "DIPV1002"
    # a company-specific SCM entity onto a table without msdyn_company needs company_from
    lines = {
        "id": "l",
        "scm": {"entity": "CDSSalesQuotationLines"},
        "sales": {"table": "quotedetails"},
        "keys": [{"scm": "LineCreationSequenceNumber", "sales": "sequencenumber"}],
        "fields": [{"scm": "LineCreationSequenceNumber", "sales": "sequencenumber"}],
    }
    assert code_of(lines, models) == "DIPV1002"
    lines["company_from"] = "uomid"  # units are shared: no company there
    assert code_of(lines, models) == "DIPV1002"
    lines["company_from"] = "quoteid"
    check(lines, models)


def test_unknown_or_circular_dependency_is_dipv1016(models: tuple[Model, Model]) -> None:
    """depends_on must name loaded maps and must not loop."""
    lonely = parse_map(group_map(depends_on=["nowhere"]))
    with pytest.raises(MapValidationError) as caught:
        order_by_dependencies([lonely])
    assert caught.value.code == "DIPV1016" and "nowhere" in caught.value.message
    first = parse_map(group_map(id="a", depends_on=["b"]))
    second = parse_map(group_map(id="b", depends_on=["a"]))
    with pytest.raises(MapValidationError) as caught:
        order_by_dependencies([first, second])
    assert caught.value.code == "DIPV1016" and "circular" in caught.value.message


def test_bad_dependency_in_a_folder_fails_the_load(models: tuple[Model, Model], tmp_path: Path) -> None:
    """load_maps refuses the whole set when one map depends on a map that is not there."""
    (tmp_path / "groups.yaml").write_text(
        "id: my-groups\nscm: {entity: CustomerGroups}\nsales: {table: msdyn_customergroups}\ncompany: true\n"
        "depends_on: [no-such-map]\nkeys: [{scm: CustomerGroupId, sales: msdyn_groupid}]\n"
        "fields: [{scm: CustomerGroupId, sales: msdyn_groupid}]\n",
        encoding="utf-8",
    )
    with pytest.raises(MapValidationError) as caught:
        load_maps([BUILTIN_MAPS, tmp_path], *models)
    assert (caught.value.code, caught.value.map_id) == ("DIPV1016", "my-groups")


def test_validation_error_renders_map_code_and_message() -> None:
    """The error carries the map id and the code, for the admin API and the CLI."""
    error = MapValidationError("units", "DIPV1008", "unknown SCM field UnitsOfMeasure.Colour")
    assert str(error) == "units: DIPV1008: unknown SCM field UnitsOfMeasure.Colour"
    assert error.as_dict() == {"map": "units", "code": "DIPV1008", "message": "unknown SCM field UnitsOfMeasure.Colour"}
