"""The pure pipeline steps, one by one, on plain dicts (no services: the "other side" is a callable or a fake)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bridge.compiled import compile_map, sales_translator
from bridge.filters import compile_predicate, filter_columns
from bridge.mapping import BUILTIN_MAPS, KEEP, FieldMap, SalesPath, TableMap, load_maps, parse_map, validate_map
from bridge.pipeline import (
    PRICE_LIST_NAMESPACE,
    SCM_EMPTY_DATE,
    Drop,
    MissingKey,
    MissingParent,
    Record,
    apply_defaults,
    assign_price_list,
    check_key,
    coerce_values,
    company_scope,
    key_values,
    lookup_bind,
    map_fields,
    polymorphic_fields,
    resolve_lookups,
    scm_read_columns,
    source_filter,
    to_sales_value,
    transform,
)
from mock_sales.schema import build_model as build_sales_model
from mock_scm.schema import build_model as build_scm_model
from sandbox.odata.model import Model

USMF_ID = "11111111-1111-1111-1111-111111111111"


@pytest.fixture(scope="module")
def sales_model() -> Model:
    return build_sales_model()


@pytest.fixture(scope="module")
def maps(sales_model: Model) -> dict[str, TableMap]:
    """The shipped maps by id, validated against the real models."""
    return {m.id: m for m in load_maps([BUILTIN_MAPS], build_scm_model(), sales_model)}


def to_sales(
    table_map: TableMap, source: dict[str, Any], sales_model: Model, company_id: str | None = USMF_ID, **extra: Any
) -> Record:
    return Record(table_map, "to_sales", source, company_id=company_id, sales_model=sales_model, **extra)


def to_scm(
    table_map: TableMap,
    source: dict[str, Any],
    related: dict[str, dict[str, Any] | None] | None = None,
    sales_model: Model | None = None,
) -> Record:
    """A Sales row on its way to SCM; ``related`` answers lookups by navigation name."""
    answers = related or {}

    def lookup(nav: str, row: dict[str, Any]) -> dict[str, Any] | None:
        found = answers.get(nav)
        return found(row) if callable(found) else found

    return Record(table_map, "to_scm", source, related=lookup, sales_model=sales_model)


# ---- filters --------------------------------------------------------------------------------------------------


def test_scm_filter_drops_rows_it_does_not_admit(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Customers V3 -> accounts takes organizations only: persons are dropped with the reason."""
    with pytest.raises(Drop) as dropped:
        source_filter(to_sales(maps["customers-accounts"], {"PartyType": "Person"}, sales_model))
    assert "PartyType eq 'Organization'" in dropped.value.reason
    record = to_sales(maps["customers-accounts"], {"PartyType": "Organization"}, sales_model)
    assert source_filter(record) is record


def test_reversed_filter_keeps_prospects_in_sales(maps: dict[str, TableMap]) -> None:
    """Only customertypecode 3 (Customer) accounts go to SCM; prospects (8) and untyped accounts stay."""
    table_map = maps["customers-accounts"]
    source_filter(to_scm(table_map, {"customertypecode": 3}))
    for value in (8, None):
        with pytest.raises(Drop):
            source_filter(to_scm(table_map, {"customertypecode": value}))


def test_reversed_filter_tells_null_from_empty_string(maps: dict[str, TableMap]) -> None:
    """``msdyn_contactpersonid ne null`` drops null but admits "" (the dual-write null-vs-empty trap)."""
    table_map = maps["customers-contacts"]
    with pytest.raises(Drop):
        source_filter(to_scm(table_map, {"msdyn_sellable": True, "msdyn_contactpersonid": None}))
    with pytest.raises(Drop):
        source_filter(to_scm(table_map, {"msdyn_sellable": False, "msdyn_contactpersonid": "C-1"}))
    source_filter(to_scm(table_map, {"msdyn_sellable": True, "msdyn_contactpersonid": ""}))


def test_filter_compares_strings_without_case_and_numbers_by_value() -> None:
    """Both services compare strings case-insensitively; comparisons with null are false."""
    predicate = compile_predicate("PartyType eq 'organization' and CreditLimit gt 100.5")
    assert predicate({"PartyType": "Organization", "CreditLimit": 200})
    assert not predicate({"PartyType": "Organization", "CreditLimit": None})
    assert compile_predicate("not (statecode eq 1) or name eq null")({"statecode": 1, "name": None})


@pytest.mark.parametrize(
    ("text", "row", "admitted"),
    [
        ("CreditLimit gt 100.5", {"CreditLimit": decimal.Decimal("100.6")}, True),
        ("CreditLimit gt 100.5", {"CreditLimit": 100.5}, False),
        ("CreditLimit ge 100", {"CreditLimit": 100}, True),
        ("Blocked eq true", {"Blocked": True}, True),
        ("Blocked eq false", {"Blocked": True}, False),
        ("Blocked ne null", {}, False),
        ("Blocked eq null", {}, True),
        ("id eq 11111111-1111-1111-1111-111111111111", {"id": "11111111-1111-1111-1111-111111111111"}, True),
        ("Due lt 2024-01-01", {"Due": "2023-12-31"}, True),  # rows are in wire format: ISO dates order as text
        ("Due lt 2024-01-01", {"Due": dt.date(2023, 12, 31)}, False),  # what does not compare is not admitted
        ("not (a eq 1) and (b eq 2 or c eq 3)", {"a": 2, "b": 0, "c": 3}, True),
        ("not (a eq 1) and (b eq 2 or c eq 3)", {"a": 1, "b": 2, "c": 3}, False),
    ],
)
def test_filter_literals_and_operators_evaluate_per_row(text: str, row: dict[str, Any], admitted: bool) -> None:
    """A compiled filter reads the row's columns afresh for every row; its literals (decimal, boolean, null,
    GUID, date) are typed once and compare like the services compare them."""
    predicate = compile_predicate(text)
    assert predicate(row) is admitted
    assert predicate(dict(row)) is admitted  # the same predicate, again


@pytest.mark.parametrize("text", ["", "contains(name,'a')", "Price add 1 gt 2", "name eq"])
def test_filter_that_is_not_a_plain_comparison_is_refused(text: str) -> None:
    """Functions, arithmetic and syntax errors are ValueErrors (the loader turns them into DIPV1012)."""
    with pytest.raises(ValueError):
        compile_predicate(text)


# ---- fields and value maps ----------------------------------------------------------------------------------


def test_fields_go_through_value_maps_in_each_direction(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Enum names become choice values to Sales, and back; NoYes becomes false/true, and back."""
    table_map = maps["customers-accounts"]
    out = map_fields(
        to_sales(
            table_map,
            {"CustomerAccount": "US-1", "OnHoldStatus": "Invoice", "CreditLimitIsMandatory": "Yes", "CreditLimit": 10},
            sales_model,
        )
    ).target
    assert out["msdyn_onholdstatus"] == 806380001
    assert out["msdyn_creditlimitismandatory"] is True
    assert out["accountnumber"] == "US-1" and out["creditlimit"] == 10
    back = map_fields(
        to_scm(
            table_map, {"accountnumber": "US-1", "msdyn_onholdstatus": 806380005, "msdyn_creditlimitismandatory": False}
        )
    ).target
    assert back["OnHoldStatus"] == "Never" and back["CreditLimitIsMandatory"] == "No"
    assert back["CustomerAccount"] == "US-1"


def test_upper_case_scm_names_find_their_values(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Rows keyed in dual-write's upper case still map (SCM names compare without case)."""
    out = map_fields(
        to_sales(maps["customer-groups"], {"CUSTOMERGROUPID": "10", "DESCRIPTION": "Wholesale"}, sales_model)
    ).target
    assert out == {"msdyn_groupid": "10", "msdyn_description": "Wholesale"}


def test_one_way_fields_are_not_written_backwards(maps: dict[str, TableMap]) -> None:
    """'>' fields (totals owned by SCM) never appear in a payload for SCM."""
    out = map_fields(
        to_scm(
            maps["order-headers"],
            {
                "msdyn_salesordernumber": "CRM-SO1",
                "totalamount": 5,
                "name": "Order",
                "msdyn_processingstatus": 192350001,
            },
        )
    ).target
    assert "OrderTotalAmount" not in out and "SalesOrderName" not in out
    assert "SalesOrderProcessingStatus" not in out
    assert out["SalesOrderNumber"] == "CRM-SO1"


def test_value_mapped_to_null_leaves_the_sales_column_out(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Processing status drives the order state, except PartiallyInvoiced, which keeps the state it has."""
    table_map = maps["order-headers"]
    out = map_fields(to_sales(table_map, {"SalesOrderProcessingStatus": "Delivered"}, sales_model)).target
    assert (out["statecode"], out["msdyn_processingstatus"]) == (3, 192350004)
    out = map_fields(to_sales(table_map, {"SalesOrderProcessingStatus": "PartiallyInvoiced"}, sales_model)).target
    assert "statecode" not in out
    assert out["msdyn_processingstatus"] == 192350006


def test_default_fills_an_empty_source_value(sales_model: Model) -> None:
    """A field's default is written when the source has nothing."""
    table_map = parse_map(
        {
            "id": "p",
            "scm": {"entity": "CDSReleasedDistinctProducts"},
            "company": True,
            "sales": {"table": "products", "computed": ["productnumber"]},
            "keys": [{"scm": "ProductNumber", "sales": "msdyn_productnumber"}],
            "fields": [
                {"scm": "ProductNumber", "dir": ">", "sales": "msdyn_productnumber"},
                {"scm": "SalesUnitDecimalPrecision", "dir": ">", "sales": "quantitydecimal", "default": 0},
                {"scm": "ProductDescription", "dir": ">", "sales": "description", "default": "(none)"},
            ],
        }
    )
    validate_map(table_map, build_scm_model(), sales_model)
    out = map_fields(
        to_sales(
            table_map, {"ProductNumber": "X", "SalesUnitDecimalPrecision": None, "ProductDescription": ""}, sales_model
        )
    ).target
    assert out == {"msdyn_productnumber": "X", "quantitydecimal": 0, "description": "(none)"}


def _probes(item: FieldMap) -> list[Any]:
    """Values to try on a field toward Sales: its value map's entries in several cases, and others."""
    out: list[Any] = [None, "", "unknown", "UNKNOWN", 0, 1, 1.0, True, False, decimal.Decimal("1")]
    for entry in item.values:
        out.append(entry)
        if isinstance(entry, str):
            out += [entry.upper(), entry.lower(), entry.swapcase()]
    return out


def test_value_maps_toward_sales_answer_exactly_like_value_to_sales(maps: dict[str, TableMap]) -> None:
    """The pipeline's translator of a field (a value map's string entries worked out once) gives what
    ``FieldMap.value_to_sales`` gives, the same object, for every shipped field and any value; fields
    without default or value map have none (their values pass as they are)."""
    for table_map in maps.values():
        for item in table_map.fields:
            translate = sales_translator(item)
            if not item.values and item.default is None:
                assert translate is None
                continue
            assert translate is not None
            for value in _probes(item):
                assert translate(value) is item.value_to_sales(value), (table_map.id, item.scm, value)


def test_value_map_translator_keeps_first_match_keep_lists_and_default() -> None:
    """Entries equal but for case: the first one wins; null means KEEP; a list writes its first value; an
    empty value takes the default even where "" has an entry; unmapped values get the default."""
    item = FieldMap(
        "Status",
        [SalesPath(None, "statuscode")],
        values={"Open": 1, "OPEN": 2, "Held": None, "Multi": [7, 8], "": 9, "Gone": []},
        default=5,
    )
    translate = sales_translator(item)
    assert translate is not None
    cases = {"open": 1, "Open": 1, "OPEN": 1, "held": KEEP, "MULTI": 7, "": 5, None: 5, "gone": KEEP, "other": 5, 3: 5}
    for value, expected in cases.items():
        assert translate(value) is item.value_to_sales(value)
        assert translate(value) == expected, value


def test_a_record_reads_the_compiled_form_of_its_own_map_object(sales_model: Model) -> None:
    """A changed map is a new TableMap: a record reads what was compiled from it, never the compiled form of
    the map it replaces (given one, the record refuses it)."""

    def customer_groups(default: str | None) -> TableMap:
        description: dict[str, Any] = {"scm": "Description", "dir": "=", "sales": "msdyn_description"}
        if default is not None:
            description["default"] = default
        table_map = parse_map(
            {
                "id": "cg",
                "scm": {"entity": "CustomerGroups"},
                "sales": {"table": "msdyn_customergroups"},
                "company": True,
                "keys": [{"scm": "CustomerGroupId", "sales": "msdyn_groupid"}],
                "fields": [{"scm": "CustomerGroupId", "dir": "=", "sales": "msdyn_groupid"}, description],
            }
        )
        validate_map(table_map, build_scm_model(), sales_model)
        return table_map

    before, after = customer_groups(None), customer_groups("(none)")
    source = {"CustomerGroupId": "10", "Description": ""}
    assert map_fields(to_sales(before, dict(source), sales_model)).target["msdyn_description"] == ""
    assert map_fields(to_sales(after, dict(source), sales_model)).target["msdyn_description"] == "(none)"
    compiled = compile_map(before, sales_model)
    assert to_sales(before, dict(source), sales_model, compiled_map=compiled).compiled is compiled
    with pytest.raises(ValueError, match="not that of map 'cg'"):
        to_sales(after, dict(source), sales_model, compiled_map=compiled)


def test_empty_sales_value_of_an_scm_default_field_is_not_sent(maps: dict[str, TableMap]) -> None:
    """SCM fills site, warehouse and invoice account itself: Sales' nulls must not clear them."""
    table_map = maps["order-lines"]
    source = {"sequencenumber": 1, "quantity": 2, "requestdeliveryby": None}
    out = resolve_lookups(map_fields(to_scm(table_map, source, {"salesorderid": {"msdyn_salesordernumber": "S1"}})))
    assert "RequestedShippingDate" not in out.target
    assert "ShippingSiteId" not in out.target and "ShippingWarehouseId" not in out.target
    assert out.target["SalesOrderNumber"] == "S1"
    out = resolve_lookups(
        map_fields(
            to_scm(
                table_map,
                {**source, "requestdeliveryby": "2027-01-02"},
                {"salesorderid": {"msdyn_salesordernumber": "S1"}, "msdyn_shippingsite": {"msdyn_siteid": "2"}},
            )
        )
    )
    assert out.target["RequestedShippingDate"] == "2027-01-02" and out.target["ShippingSiteId"] == "2"


# ---- constants ----------------------------------------------------------------------------------------------


def test_constants_are_written_per_direction(maps: dict[str, TableMap], sales_model: Model) -> None:
    """customertypecode := 3 towards Sales, PartyType := Organization towards SCM."""
    table_map = maps["customers-accounts"]
    assert apply_defaults(to_sales(table_map, {}, sales_model)).target == {
        "customertypecode": 3,
        "address1_addresstypecode": 2,
    }
    assert apply_defaults(to_scm(table_map, {})).target == {"PartyType": "Organization"}


def test_mapped_value_wins_over_a_constant(maps: dict[str, TableMap], sales_model: Model) -> None:
    """A constant only fills what the fields left unset."""
    record = to_sales(maps["customers-accounts"], {}, sales_model)
    record.target["customertypecode"] = 9
    assert apply_defaults(record).target["customertypecode"] == 9


# ---- lookups ---------------------------------------------------------------------------------------------------


def test_lookup_to_sales_binds_by_alternate_key_with_the_company(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Company-specific targets are addressed by code + company; shared ones by code alone."""
    out = resolve_lookups(
        to_sales(maps["customers-accounts"], {"CustomerGroupId": "10", "SalesCurrencyCode": "USD"}, sales_model)
    ).target
    assert out["msdyn_customergroupid@odata.bind"] == (
        f"/msdyn_customergroups(msdyn_groupid='10',_msdyn_company_value={USMF_ID})"
    )
    assert out["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"


def test_empty_lookup_to_sales_clears_the_reference(maps: dict[str, TableMap], sales_model: Model) -> None:
    """F&O's "" for an unset reference becomes a null bind."""
    out = resolve_lookups(to_sales(maps["customers-accounts"], {"InvoiceAccount": ""}, sales_model)).target
    assert out["msdyn_billingaccount@odata.bind"] is None


def test_company_scoped_lookup_without_a_known_company_is_a_missing_parent(
    maps: dict[str, TableMap], sales_model: Model
) -> None:
    """If Sales does not know the row's company, a company-scoped lookup cannot be addressed."""
    with pytest.raises(MissingParent, match="company"):
        resolve_lookups(to_sales(maps["customers-accounts"], {"CustomerGroupId": "10"}, sales_model, company_id=None))


def test_polymorphic_lookup_to_sales_uses_the_alternative_the_engine_chose(
    maps: dict[str, TableMap], sales_model: Model
) -> None:
    """The engine marks which alternative exists (``@sandbox.lookup.<field>``); the default is the first."""
    table_map = maps["quotation-headers"]
    record = to_sales(table_map, {"RequestingCustomerAccountNumber": "US-027"}, sales_model)
    record.target["@sandbox.lookup.RequestingCustomerAccountNumber"] = 1
    out = resolve_lookups(record).target
    assert out["customerid_contact@odata.bind"] == (
        f"/contacts(msdyn_contactpersonid='US-027',_msdyn_company_value={USMF_ID})"
    )
    assert "@sandbox.lookup.RequestingCustomerAccountNumber" not in out
    out = resolve_lookups(to_sales(table_map, {"RequestingCustomerAccountNumber": "US-001"}, sales_model)).target
    assert out["customerid_account@odata.bind"].startswith("/accounts(accountnumber='US-001',")


def test_polymorphic_fields_are_the_fields_toward_sales_with_alternatives(maps: dict[str, TableMap]) -> None:
    """What the engine picks an alternative for before the pipeline runs: nothing for accounts."""
    assert polymorphic_fields(maps["customers-accounts"]) == ()
    assert [item.scm for item in polymorphic_fields(maps["quotation-headers"])] == ["RequestingCustomerAccountNumber"]
    assert [item.scm for item in polymorphic_fields(maps["order-headers"])] == [
        item.scm for item in maps["order-headers"].fields if item.to_sales and len(item.sales) > 1
    ]


def test_lookup_binds_follow_the_model_they_are_made_with(maps: dict[str, TableMap], sales_model: Model) -> None:
    """What a bind needs from the model (target set, whether its key includes the company) comes from the
    model the bind is made with: another model with another alternate key gets its own answer."""
    entity = maps["customers-accounts"].sales_type
    path = SalesPath("msdyn_customergroupid", "msdyn_groupid")
    scoped = (
        "msdyn_customergroupid@odata.bind",
        f"/msdyn_customergroups(msdyn_groupid='O''Neil',_msdyn_company_value={USMF_ID})",
    )
    assert lookup_bind(sales_model, entity, path, "O'Neil", USMF_ID) == scoped
    other = build_sales_model()
    other.entities["msdyn_customergroup"].alternate_keys = [("msdyn_groupid",)]
    assert lookup_bind(other, entity, path, "O'Neil", None) == (
        "msdyn_customergroupid@odata.bind",
        "/msdyn_customergroups(msdyn_groupid='O''Neil')",
    )
    assert lookup_bind(sales_model, entity, path, "O'Neil", USMF_ID) == scoped
    with pytest.raises(MissingParent, match="msdyn_customergroups msdyn_groupid=10 is not known"):
        lookup_bind(sales_model, entity, path, "10", None)


def test_lookup_to_scm_reads_the_related_row_through_the_callable(maps: dict[str, TableMap]) -> None:
    """Towards SCM a lookup becomes the related row's key value; the first answering alternative wins."""
    table_map = maps["quotation-headers"]
    out = resolve_lookups(
        to_scm(
            table_map,
            {},
            {
                "customerid_account": None,
                "customerid_contact": {"msdyn_contactpersonid": "US-027"},
                "transactioncurrencyid": {"isocurrencycode": "EUR"},
            },
        )
    ).target
    assert out["RequestingCustomerAccountNumber"] == "US-027"
    assert out["CurrencyCode"] == "EUR"


def test_unset_lookup_to_scm_is_empty(maps: dict[str, TableMap]) -> None:
    """No related row: F&O's empty reference ""."""
    out = resolve_lookups(to_scm(maps["customers-accounts"], {})).target
    assert out["CustomerGroupId"] == "" and out["InvoiceAccount"] == ""
    assert "PaymentTerms" not in out  # scm_default: the customer group's terms apply in SCM


def test_lookup_to_a_row_without_key_is_a_missing_parent(maps: dict[str, TableMap]) -> None:
    """A quote for a prospect (an account without a number) cannot be looked up in SCM."""
    with pytest.raises(MissingParent) as caught:
        resolve_lookups(
            to_scm(
                maps["quotation-headers"],
                {},
                {"customerid_account": {"accountnumber": None, "@sandbox.table": "account"}},
            )
        )
    assert str(caught.value) == (
        "Unable to look up RequestingCustomerAccountNumber: the account that "
        "customerid_account points at has no accountnumber"
    )


# ---- companies -------------------------------------------------------------------------------------------------


def test_company_to_sales_binds_msdyn_company(maps: dict[str, TableMap], sales_model: Model) -> None:
    """dataAreaId (any case) becomes the row's company and the msdyn_company lookup."""
    record = company_scope(to_sales(maps["customer-groups"], {"dataAreaId": "USMF"}, sales_model))
    assert record.company == "usmf"
    assert record.target == {"msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')"}


def test_scm_row_without_company_is_dropped(maps: dict[str, TableMap], sales_model: Model) -> None:
    with pytest.raises(Drop):
        company_scope(to_sales(maps["customer-groups"], {"dataAreaId": ""}, sales_model))


def test_company_to_scm_comes_from_the_msdyn_company_row(maps: dict[str, TableMap]) -> None:
    """The related cdm_company gives dataAreaId; a Sales row without a company is not synced."""
    record = company_scope(to_scm(maps["customer-groups"], {}, {"msdyn_company": {"cdm_companycode": "USRT"}}))
    assert (record.company, record.target) == ("usrt", {"dataAreaId": "usrt"})
    with pytest.raises(Drop, match="without a company"):
        company_scope(to_scm(maps["customer-groups"], {}, {"msdyn_company": None}))


def test_line_takes_the_company_of_its_document(maps: dict[str, TableMap], sales_model: Model) -> None:
    """company_from: a quote line's company is its quote's; lines have no msdyn_company to bind."""
    quote = {"_msdyn_company_value": USMF_ID}

    def lookup(nav: str, row: dict[str, Any]) -> dict[str, Any] | None:
        return quote if nav == "quoteid" else ({"cdm_companycode": "usmf"} if row is quote else None)

    record = company_scope(Record(maps["quotation-lines"], "to_scm", {}, related=lookup))
    assert record.target == {"dataAreaId": "usmf"}
    record = company_scope(to_sales(maps["quotation-lines"], {"dataAreaId": "usmf"}, sales_model))
    assert record.company == "usmf" and record.target == {}
    with pytest.raises(Drop, match="quoteid"):
        company_scope(Record(maps["quotation-lines"], "to_scm", {}, related=lambda nav, row: None))


def test_shared_map_has_no_company(maps: dict[str, TableMap], sales_model: Model) -> None:
    record = company_scope(to_sales(maps["currencies"], {"CurrencyCode": "USD"}, sales_model))
    assert record.company is None and record.target == {}


# ---- target conventions --------------------------------------------------------------------------------------


def test_values_to_sales_follow_dataverse_conventions(maps: dict[str, TableMap], sales_model: Model) -> None:
    """ "" -> null, F&O "no date" -> null, dates without time, whole numbers for integer columns."""
    record = to_sales(maps["order-headers"], {}, sales_model)
    record.target.update(
        {
            "name": "",
            "requestdeliveryby": "1900-01-01T12:00:00Z",
            "msdyn_requestedreceiptdate": "2027-03-04T12:00:00+00:00",
            "msdyn_language": 3.0,
            "totalamount": 12.5,
            "customerid_account@odata.bind": "/accounts(x)",
        }
    )
    assert coerce_values(record).target == {
        "name": None,
        "requestdeliveryby": None,
        "msdyn_requestedreceiptdate": "2027-03-04",
        "msdyn_language": 3,
        "totalamount": 12.5,
        "customerid_account@odata.bind": "/accounts(x)",
    }


@pytest.mark.parametrize("table", ["account", "salesorder", "quotedetail", "product"])
def test_coercion_to_sales_is_to_sales_value_on_every_column(sales_model: Model, table: str) -> None:
    """coerce_values only looks at the columns to_sales_value can change (plain strings, dates, whole
    numbers): on every column of the table, with any value, it gives exactly what to_sales_value gives."""
    entity = sales_model.entities[table]
    table_map = TableMap("t", "t", "S", entity.entity_set, keys=[], fields=[], sales_type=entity)
    values: list[Any] = [
        None,
        "",
        "x",
        "1900-01-01T12:00:00Z",
        "2027-03-04T12:00:00Z",
        "2027-03-04",
        3.0,
        3.5,
        3,
        True,
        decimal.Decimal("2"),
        dt.date(2027, 3, 4),
    ]
    for name, prop in entity.properties.items():
        for value in values:
            record = Record(table_map, "to_sales", {}, target={name: value, "x@odata.bind": ""})
            out = coerce_values(record).target
            expected = to_sales_value(prop, value)
            assert out[name] is expected or (out[name] == expected and type(out[name]) is type(expected)), (name, value)
            assert out["x@odata.bind"] == ""


def test_values_to_scm_follow_fno_conventions(maps: dict[str, TableMap]) -> None:
    """null strings -> "", missing date -> 1900-01-01T12:00:00Z, dates at noon UTC, null numbers/enums left out."""
    record = to_scm(maps["order-headers"], {})
    record.target.update(
        {
            "SalesOrderName": None,
            "RequestedShippingDate": None,
            "RequestedReceiptDate": "2027-03-04",
            "TotalDiscountPercentage": None,
            "SalesOrderPromisingMethod": None,
            "IsSalesProcessingStopped": "No",
        }
    )
    assert coerce_values(record).target == {
        "SalesOrderName": "",
        "RequestedShippingDate": SCM_EMPTY_DATE,
        "RequestedReceiptDate": "2027-03-04T12:00:00Z",
        "IsSalesProcessingStopped": "No",
    }


# ---- integration key -------------------------------------------------------------------------------------------


def test_empty_integration_key_is_refused(maps: dict[str, TableMap], sales_model: Model) -> None:
    """A customer account without a number could never be matched again: MissingKey (a MissingParent)."""
    record = to_scm(maps["customers-accounts"], {})
    record.target["CustomerAccount"] = ""
    with pytest.raises(MissingKey, match="accountnumber has no value") as caught:
        check_key(record)
    assert isinstance(caught.value, MissingParent)
    record.target["CustomerAccount"] = "C-1"
    check_key(record)
    with pytest.raises(MissingKey):
        check_key(to_sales(maps["customers-accounts"], {"CustomerAccount": None}, sales_model))


# ---- price list of new products ---------------------------------------------------------------------------------


class FakeSales:
    """Answers queries from canned rows per entity set and records every call."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, str | None, Any]] = []
        self.upserts: list[tuple[str, Any, dict[str, Any]]] = []

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
    ) -> list[dict[str, Any]]:
        self.queries.append((entity_set, filter, orderby))
        return list(self.rows.get(entity_set, []))

    def upsert(self, entity_set: str, key: Any, body: Mapping[str, Any]) -> None:
        self.upserts.append((entity_set, key, dict(body)))


PRODUCT = {"dataAreaId": "usmf", "ProductNumber": "D9", "CurrencyCode": "EUR"}


def test_new_product_lands_on_the_first_price_list_in_its_currency(
    maps: dict[str, TableMap], sales_model: Model
) -> None:
    """The alphabetically first active list in the product's currency becomes its price list."""
    sales = FakeSales(
        {"pricelevels": [{"pricelevelid": "aaaa", "name": "Alpha EUR"}, {"pricelevelid": "bbbb", "name": "Beta EUR"}]}
    )
    out = assign_price_list(to_sales(maps["products"], PRODUCT, sales_model, sales=sales)).target
    assert out["pricelevelid@odata.bind"] == "/pricelevels(aaaa)"
    existence, lists = sales.queries
    assert existence == ("products", f"msdyn_productnumber eq 'D9' and _msdyn_company_value eq {USMF_ID}", None)
    assert lists == ("pricelevels", "statecode eq 0 and transactioncurrencyid/isocurrencycode eq 'EUR'", "name")
    assert sales.upserts == []


def test_missing_price_list_is_created_once_with_a_stable_id(maps: dict[str, TableMap], sales_model: Model) -> None:
    """No list in the currency: one named "<ISO> price list" is upserted under an id derived from the currency."""
    import uuid

    sales = FakeSales({})
    out = assign_price_list(to_sales(maps["products"], PRODUCT, sales_model, sales=sales)).target
    expected_id = str(uuid.uuid5(PRICE_LIST_NAMESPACE, "EUR"))
    assert out["pricelevelid@odata.bind"] == f"/pricelevels({expected_id})"
    assert sales.upserts == [
        (
            "pricelevels",
            expected_id,
            {
                "name": "EUR price list",
                "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='EUR')",
            },
        )
    ]


def test_existing_product_keeps_its_price_list(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Updates never move a product to another price list."""
    sales = FakeSales({"products": [{"productid": "p1"}], "pricelevels": [{"pricelevelid": "aaaa"}]})
    out = assign_price_list(to_sales(maps["products"], PRODUCT, sales_model, sales=sales)).target
    assert "pricelevelid@odata.bind" not in out and len(sales.queries) == 1


def test_price_list_step_needs_a_reader_and_a_rule(maps: dict[str, TableMap], sales_model: Model) -> None:
    """Without a Sales reader (plain unit use) or on maps without ``price_list``, nothing happens."""
    assert assign_price_list(to_sales(maps["products"], PRODUCT, sales_model)).target == {}
    sales = FakeSales({})
    assign_price_list(to_sales(maps["customer-groups"], PRODUCT, sales_model, sales=sales))
    assert sales.queries == []


# ---- the whole pipeline -------------------------------------------------------------------------------------------


def test_transform_runs_every_step_for_a_customer(maps: dict[str, TableMap], sales_model: Model) -> None:
    """An SCM customer becomes a complete account payload; its key is the account number."""
    source = {
        "dataAreaId": "usmf",
        "CustomerAccount": "US-100",
        "PartyType": "Organization",
        "OrganizationName": "Fabrikam",
        "CustomerGroupId": "20",
        "SalesCurrencyCode": "USD",
        "OnHoldStatus": "No",
        "IsOneTimeCustomer": "No",
        "InvoiceAccount": "",
        "SalesMemo": "",
        "CreditLimit": 5000.0,
    }
    record = transform(to_sales(maps["customers-accounts"], source, sales_model))
    assert record.target["name"] == "Fabrikam" and record.target["accountnumber"] == "US-100"
    assert record.target["customertypecode"] == 3
    assert record.target["msdyn_onholdstatus"] == 806380000 and record.target["msdyn_onetimecustomer"] is False
    assert record.target["description"] is None
    assert record.target["msdyn_company@odata.bind"] == "/cdm_companies(cdm_companycode='usmf')"
    assert key_values(maps["customers-accounts"], record) == {"accountnumber": "US-100"}


def test_transform_drops_what_a_filter_refuses(maps: dict[str, TableMap], sales_model: Model) -> None:
    with pytest.raises(Drop):
        transform(
            to_sales(
                maps["invoice-headers"],
                {"dataAreaId": "usmf", "InvoiceNumber": "FTI-1", "SalesOrderNumber": ""},
                sales_model,
            )
        )


def test_line_key_to_scm_is_document_number_and_sequence(maps: dict[str, TableMap]) -> None:
    """A quote line's integration key: its quote's number (through the lookup) and its sequence number."""
    quote = {"msdyn_quotenumber": "CRM-Q000007", "_msdyn_company_value": USMF_ID}

    def lookup(nav: str, row: dict[str, Any]) -> dict[str, Any] | None:
        if nav == "quoteid":
            return quote
        if nav == "msdyn_company":
            return {"cdm_companycode": "usmf"}
        return {"productid": {"msdyn_productnumber": "D0001"}, "uomid": {"msdyn_symbol": "ea"}}.get(nav)

    record = transform(
        Record(
            maps["quotation-lines"],
            "to_scm",
            {"sequencenumber": 2, "quantity": 3.0, "priceperunit": 10.0},
            related=lookup,
        )
    )
    assert key_values(maps["quotation-lines"], record) == {
        "SalesQuotationNumber": "CRM-Q000007",
        "LineCreationSequenceNumber": 2,
    }
    assert record.target["ProductNumber"] == "D0001" and record.target["SalesUnitSymbol"] == "ea"
    assert record.target["RequestedSalesQuantity"] == 3.0 and record.target["dataAreaId"] == "usmf"


def test_filter_columns_names_every_column_a_filter_reads() -> None:
    assert filter_columns("PartyType eq 'Organization' and (CreditLimit gt 5 or not Blocked eq true)") == {
        "PartyType",
        "CreditLimit",
        "Blocked",
    }


def test_scm_read_columns_are_what_the_pipeline_reads_and_nothing_more(
    maps: dict[str, TableMap], sales_model: Model
) -> None:
    """A row cut down to the selected columns transforms exactly like the whole row (so a bulk read may
    ``$select`` them), and the selection leaves most of a customer's columns out."""
    table_map = maps["customers-accounts"]
    columns = scm_read_columns(table_map)
    assert {"dataAreaId", "CustomerAccount", "PartyType", "OrganizationName"} <= set(columns)
    assert len(columns) < len(table_map.scm_type.properties)
    row = {name: f"value of {name}" for name in table_map.scm_type.properties}
    row.update(
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "US-1",
            "PartyType": "Organization",
            "CreditLimit": 10,
            "SalesCurrencyCode": "USD",
            "CustomerGroupId": "10",
        }
    )
    whole = transform(to_sales(table_map, dict(row), sales_model)).target
    cut = transform(to_sales(table_map, {k: v for k, v in row.items() if k in columns}, sales_model)).target
    assert cut == whole
