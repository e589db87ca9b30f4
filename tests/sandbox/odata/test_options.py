"""Query option parsing and `$filter` translation, run against a real in-memory SQLite database.

A small Dataverse-like model (account, contact) and an F&O-like one (sales order header/line) are
created once per module; each filter test asserts exactly which rows the compiled expression selects.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox.errors import BadRequest
from sandbox.odata.dataverse.queryfunctions import QUERY_FUNCTIONS
from sandbox.odata.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
    GUID,
    INT32,
    STRING,
    EntityType,
    EnumType,
    Model,
    NavigationProperty,
    Property,
)
from sandbox.odata.query import (
    ExpandItem,
    FilterDialect,
    compile_filter,
    filtering,
    parse_expand,
    parse_int_option,
    parse_orderby,
    parse_select,
)

UTC = dt.UTC
NOW = dt.datetime(2024, 3, 15, 12, 0, tzinfo=UTC)

# ---- model ----------------------------------------------------------------------------------------

STATE = EnumType("account_statecode", {"Active": 0, "Inactive": 1})
CONTACT_STATE = EnumType("contact_statecode", {"Active": 0, "Inactive": 1})
SALES_STATUS = EnumType(
    "SalesStatus",
    {"None": 0, "Backorder": 1, "Delivered": 2, "Invoiced": 3, "Canceled": 4},
    namespace="Microsoft.Dynamics.DataEntities",
)
NO_YES = EnumType("NoYes", {"No": 0, "Yes": 1}, namespace="Microsoft.Dynamics.DataEntities")


def _dataverse_model() -> Model:
    account = EntityType(
        name="account",
        entity_set="accounts",
        key=("accountid",),
        primary_name="name",
        properties={
            "accountid": Property("accountid", GUID),
            "name": Property("name", STRING, max_length=160),
            "revenue": Property("revenue", DECIMAL, precision=19, scale=4),
            "numberofemployees": Property("numberofemployees", INT32),
            "statecode": Property("statecode", INT32, enum=STATE),
            "createdon": Property("createdon", DATETIME),
            "donotemail": Property("donotemail", BOOLEAN),
            "allowemail": Property("allowemail", BOOLEAN),
            "nullcount": Property("nullcount", INT32),
            "_primarycontactid_value": Property("_primarycontactid_value", GUID, lookup="primarycontactid"),
            "secretnote": Property("secretnote", STRING, hidden=True),
        },
        navigations={
            "primarycontactid": NavigationProperty(
                "primarycontactid",
                "contact",
                many=False,
                pairs=[("_primarycontactid_value", "contactid")],
                owns_fk=True,
            ),
            "contact_customer_accounts": NavigationProperty(
                "contact_customer_accounts", "contact", many=True, pairs=[("accountid", "_parentcustomerid_value")]
            ),
        },
    )
    contact = EntityType(
        name="contact",
        entity_set="contacts",
        key=("contactid",),
        primary_name="fullname",
        properties={
            "contactid": Property("contactid", GUID),
            "fullname": Property("fullname", STRING),
            "firstname": Property("firstname", STRING),
            "lastname": Property("lastname", STRING),
            "birthdate": Property("birthdate", DATE),
            "statecode": Property("statecode", INT32, enum=CONTACT_STATE),
            "_parentcustomerid_value": Property("_parentcustomerid_value", GUID),
            "_parentcustomerid_type": Property("_parentcustomerid_type", STRING, hidden=True),
        },
        navigations={
            "parentcustomerid_account": NavigationProperty(
                "parentcustomerid_account",
                "account",
                many=False,
                pairs=[("_parentcustomerid_value", "accountid")],
                owns_fk=True,
                local_condition={"_parentcustomerid_type": "account"},
            ),
            "account_primary_contact": NavigationProperty(
                "account_primary_contact", "account", many=True, pairs=[("contactid", "_primarycontactid_value")]
            ),
        },
    )
    model = Model("Microsoft.Dynamics.CRM", [account, contact])
    model.check()
    return model


def _fno_model() -> Model:
    header = EntityType(
        name="SalesOrderHeaderV2",
        entity_set="SalesOrderHeadersV2",
        key=("dataAreaId", "SalesOrderNumber"),
        company_property="dataAreaId",
        properties={
            "dataAreaId": Property("dataAreaId", STRING, max_length=4),
            "SalesOrderNumber": Property("SalesOrderNumber", STRING),
            "SalesOrderName": Property("SalesOrderName", STRING),
            "SalesOrderStatus": Property("SalesOrderStatus", INT32, enum=SALES_STATUS),
            "IsOnHold": Property("IsOnHold", INT32, enum=NO_YES),
            "OrderTotalAmount": Property("OrderTotalAmount", DECIMAL),
            "LineCount": Property("LineCount", INT32),
        },
        navigations={
            "SalesOrderLines": NavigationProperty(
                "SalesOrderLines",
                "SalesOrderLine",
                many=True,
                pairs=[("dataAreaId", "dataAreaId"), ("SalesOrderNumber", "SalesOrderNumber")],
            ),
        },
    )
    line = EntityType(
        name="SalesOrderLine",
        entity_set="SalesOrderLines",
        key=("dataAreaId", "InventoryLotId"),
        properties={
            "dataAreaId": Property("dataAreaId", STRING),
            "InventoryLotId": Property("InventoryLotId", STRING),
            "SalesOrderNumber": Property("SalesOrderNumber", STRING),
            "ItemNumber": Property("ItemNumber", STRING),
            "LineAmount": Property("LineAmount", DECIMAL),
        },
    )
    model = Model("Microsoft.Dynamics.DataEntities", [header, line])
    model.check()
    return model


DV_MODEL = _dataverse_model()
FNO_MODEL = _fno_model()
ACCOUNT = DV_MODEL.entity("account")
CONTACT = DV_MODEL.entity("contact")
HEADER = FNO_MODEL.entity("SalesOrderHeaderV2")

DATAVERSE = FilterDialect(
    case_insensitive=True,
    string_functions=True,
    query_functions=QUERY_FUNCTIONS,
    entity_label=lambda e: f"Microsoft.Dynamics.CRM.{e.name}",
)
FNO = FilterDialect(
    case_insensitive=True,
    string_functions=False,
    wildcard_eq=True,
    enum_literals=True,
    entity_label=lambda e: f"Microsoft.Dynamics.DataEntities.{e.name}",
)
PLAIN = FilterDialect()

A1 = "11111111-1111-1111-1111-111111111111"
A2 = "22222222-2222-2222-2222-222222222222"
A3 = "33333333-3333-3333-3333-333333333333"
A4 = "44444444-4444-4444-4444-444444444444"
A5 = "55555555-5555-5555-5555-555555555555"
C1 = "c1c1c1c1-0000-0000-0000-000000000001"
C2 = "c2c2c2c2-0000-0000-0000-000000000002"
C3 = "c3c3c3c3-0000-0000-0000-000000000003"
C4 = "c4c4c4c4-0000-0000-0000-000000000004"
C5 = "c5c5c5c5-0000-0000-0000-000000000005"

ACCOUNTS: list[dict[str, Any]] = [
    dict(
        accountid=A1,
        name="Contoso Retail",
        revenue=decimal.Decimal("20000"),
        numberofemployees=50,
        statecode=0,
        createdon=dt.datetime(2024, 3, 14, 9, 0, tzinfo=UTC),
        donotemail=True,
        allowemail=False,
        _primarycontactid_value=C1,
        secretnote="x",
    ),
    dict(
        accountid=A2,
        name="Fabrikam",
        revenue=decimal.Decimal("5000.5"),
        numberofemployees=2000,
        statecode=1,
        createdon=dt.datetime(2024, 1, 1, 10, 0, tzinfo=UTC),
        donotemail=False,
        allowemail=True,
        _primarycontactid_value=C2,
    ),
    dict(
        accountid=A3,
        name="O'Brien & Co",
        revenue=None,
        numberofemployees=None,
        statecode=0,
        createdon=dt.datetime(2023, 6, 15, 0, 0, tzinfo=UTC),
        donotemail=None,
        allowemail=None,
        _primarycontactid_value=None,
    ),
    dict(
        accountid=A4,
        name="contoso_west 100%",
        revenue=decimal.Decimal("100"),
        numberofemployees=5,
        statecode=0,
        createdon=dt.datetime(2024, 3, 5, 8, 0, tzinfo=UTC),
        donotemail=False,
        allowemail=True,
        _primarycontactid_value=C3,
    ),
    dict(
        accountid=A5,
        name="Adventure Works",
        revenue=decimal.Decimal("0"),
        numberofemployees=0,
        statecode=1,
        createdon=dt.datetime(2024, 3, 15, 1, 0, tzinfo=UTC),
        donotemail=False,
        allowemail=True,
        _primarycontactid_value=None,
    ),
]
CONTACTS: list[dict[str, Any]] = [
    dict(
        contactid=C1,
        fullname="Jo Smith",
        firstname="Jo",
        lastname="Smith",
        birthdate=dt.date(1990, 5, 1),
        statecode=0,
        _parentcustomerid_value=A1,
        _parentcustomerid_type="account",
    ),
    dict(
        contactid=C2,
        fullname="Ann Lee",
        firstname="Ann",
        lastname="Lee",
        birthdate=dt.date(1985, 2, 2),
        statecode=1,
        _parentcustomerid_value=A1,
        _parentcustomerid_type="account",
    ),
    dict(
        contactid=C3,
        fullname="Bob Jo",
        firstname="Bob",
        lastname="Jo",
        birthdate=None,
        statecode=0,
        _parentcustomerid_value=A2,
        _parentcustomerid_type="account",
    ),
    dict(
        contactid=C4,
        fullname="Kim Kim",
        firstname="Kim",
        lastname="Kim",
        birthdate=dt.date(2000, 1, 1),
        statecode=0,
        _parentcustomerid_value=None,
        _parentcustomerid_type=None,
    ),
    # Polymorphic lookup pointing at a *contact* whose id happens to equal A2: must not count as an account parent.
    dict(
        contactid=C5,
        fullname="Eve Other",
        firstname="Eve",
        lastname="Other",
        birthdate=dt.date(1970, 1, 1),
        statecode=0,
        _parentcustomerid_value=A2,
        _parentcustomerid_type="contact",
    ),
]
HEADERS: list[dict[str, Any]] = [
    dict(
        dataAreaId="usmf",
        SalesOrderNumber="000001",
        SalesOrderName="Contoso Retail San Diego",
        SalesOrderStatus=1,
        IsOnHold=0,
        OrderTotalAmount=decimal.Decimal("100.5"),
        LineCount=5,
    ),
    dict(
        dataAreaId="usmf",
        SalesOrderNumber="000002",
        SalesOrderName="Forest Wholesales",
        SalesOrderStatus=3,
        IsOnHold=1,
        OrderTotalAmount=decimal.Decimal("2500"),
        LineCount=2,
    ),
    dict(
        dataAreaId="usmf",
        SalesOrderNumber="000003",
        SalesOrderName="abc_100% retail",
        SalesOrderStatus=4,
        IsOnHold=0,
        OrderTotalAmount=decimal.Decimal("0"),
        LineCount=0,
    ),
    dict(
        dataAreaId="usrt",
        SalesOrderNumber="000004",
        SalesOrderName=None,
        SalesOrderStatus=1,
        IsOnHold=0,
        OrderTotalAmount=None,
        LineCount=1,
    ),
]
LINES: list[dict[str, Any]] = [
    dict(
        dataAreaId="usmf",
        InventoryLotId="000221",
        SalesOrderNumber="000001",
        ItemNumber="D0001",
        LineAmount=decimal.Decimal("50"),
    ),
    dict(
        dataAreaId="usmf",
        InventoryLotId="000222",
        SalesOrderNumber="000001",
        ItemNumber="L0001",
        LineAmount=decimal.Decimal("50.5"),
    ),
    dict(
        dataAreaId="usmf",
        InventoryLotId="000223",
        SalesOrderNumber="000002",
        ItemNumber="D0001",
        LineAmount=decimal.Decimal("2500"),
    ),
    # Same order number in another company: must not join to usmf's 000004-less headers.
    dict(
        dataAreaId="usrt",
        InventoryLotId="000224",
        SalesOrderNumber="000003",
        ItemNumber="P0001",
        LineAmount=decimal.Decimal("10"),
    ),
]

ACCOUNT_NAMES = {row["accountid"]: row["name"] for row in ACCOUNTS}


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    """One in-memory database holding both models' tables and rows."""
    eng = sa.create_engine("sqlite://")
    DV_MODEL.metadata.create_all(eng)
    FNO_MODEL.metadata.create_all(eng)
    with eng.begin() as conn:
        for entity, rows in (
            (ACCOUNT, ACCOUNTS),
            (CONTACT, CONTACTS),
            (HEADER, HEADERS),
            (FNO_MODEL.entity("SalesOrderLine"), LINES),
        ):
            # executemany needs every row to name the same columns.
            conn.execute(entity.table.insert(), [{name: row.get(name) for name in entity.properties} for row in rows])
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative date functions see a fixed 'now' (2024-03-15 12:00Z)."""
    monkeypatch.setattr(filtering, "utcnow", lambda: NOW)


def accounts(engine: sa.Engine, text: str, dialect: FilterDialect = DATAVERSE) -> set[str]:
    """Names of the accounts a Dataverse filter selects."""
    table = ACCOUNT.table
    condition = compile_filter(text, ACCOUNT, DV_MODEL, dialect)
    with engine.connect() as conn:
        return {row.name for row in conn.execute(sa.select(table.c.name).where(condition))}


def contacts(engine: sa.Engine, text: str, dialect: FilterDialect = DATAVERSE) -> set[str]:
    """Full names of the contacts a Dataverse filter selects."""
    table = CONTACT.table
    condition = compile_filter(text, CONTACT, DV_MODEL, dialect)
    with engine.connect() as conn:
        return {row.fullname for row in conn.execute(sa.select(table.c.fullname).where(condition))}


def orders(engine: sa.Engine, text: str, dialect: FilterDialect = FNO) -> set[str]:
    """Sales order numbers an F&O filter selects."""
    table = HEADER.table
    condition = compile_filter(text, HEADER, FNO_MODEL, dialect)
    with engine.connect() as conn:
        return {row.SalesOrderNumber for row in conn.execute(sa.select(table.c.SalesOrderNumber).where(condition))}


def bad_request(call: Any, *args: Any) -> BadRequest:
    """Run ``call`` expecting BadRequest and return it."""
    with pytest.raises(BadRequest) as info:
        call(*args)
    assert info.value.status == 400
    return info.value


CONTOSO, FABRIKAM, OBRIEN, WEST, ADVENTURE = (row["name"] for row in ACCOUNTS)
ALL_ACCOUNTS = {CONTOSO, FABRIKAM, OBRIEN, WEST, ADVENTURE}


# ---- comparisons and literals ---------------------------------------------------------------------


def test_eq_string_ignores_case_in_dataverse(engine: sa.Engine) -> None:
    """Dataverse string equality is case-insensitive."""
    assert accounts(engine, "name eq 'CONTOSO retail'") == {CONTOSO}


def test_eq_string_respects_case_in_plain_dialect(engine: sa.Engine) -> None:
    """Without case_insensitive, equality is exact."""
    assert accounts(engine, "name eq 'CONTOSO retail'", PLAIN) == set()
    assert accounts(engine, "name eq 'Contoso Retail'", PLAIN) == {CONTOSO}


def test_string_literal_with_doubled_quote_matches_apostrophe(engine: sa.Engine) -> None:
    """'' inside a literal is one apostrophe."""
    assert accounts(engine, "name eq 'O''Brien & Co'") == {OBRIEN}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("numberofemployees eq 50", {CONTOSO}),
        ("numberofemployees gt 50", {FABRIKAM}),
        ("numberofemployees ge 50", {CONTOSO, FABRIKAM}),
        ("numberofemployees lt 5", {ADVENTURE}),
        ("numberofemployees le 5", {ADVENTURE, WEST}),
        ("revenue gt 5000.25", {CONTOSO, FABRIKAM}),
        ("revenue eq 5000.5", {FABRIKAM}),
        ("numberofemployees gt 49.5", {CONTOSO, FABRIKAM}),
        ("50 lt numberofemployees", {FABRIKAM}),
        ("revenue ge -1", {CONTOSO, FABRIKAM, WEST, ADVENTURE}),
    ],
)
def test_ordering_operators_on_numbers_select_expected_rows(engine: sa.Engine, text: str, expected: set[str]) -> None:
    """eq/gt/ge/lt/le compare numbers, literal on either side, decimals against ints."""
    assert accounts(engine, text) == expected


def test_ne_includes_rows_where_the_column_is_null(engine: sa.Engine) -> None:
    """`ne` follows OData: a null column is 'not equal' to any value."""
    assert accounts(engine, "numberofemployees ne 50") == ALL_ACCOUNTS - {CONTOSO}


def test_eq_null_is_is_null_and_ne_null_is_is_not_null(engine: sa.Engine) -> None:
    """Comparing with null becomes IS NULL / IS NOT NULL; ordering against null is never true."""
    assert accounts(engine, "revenue eq null") == {OBRIEN}
    assert accounts(engine, "revenue ne null") == ALL_ACCOUNTS - {OBRIEN}
    assert accounts(engine, "null eq revenue") == {OBRIEN}
    assert accounts(engine, "revenue gt null") == set()


def test_and_or_not_and_parentheses_combine_conditions(engine: sa.Engine) -> None:
    """Boolean operators keep OData precedence (and before or); parentheses override it."""
    assert accounts(engine, "statecode eq 1 or statecode eq 0 and numberofemployees gt 10") == {
        FABRIKAM,
        ADVENTURE,
        CONTOSO,
    }
    assert accounts(engine, "(statecode eq 1 or statecode eq 0) and numberofemployees gt 10") == {FABRIKAM, CONTOSO}
    assert accounts(engine, "not (statecode eq 1)") == {CONTOSO, OBRIEN, WEST}
    assert accounts(engine, "not (statecode eq 1) and revenue gt 1000") == {CONTOSO}


def test_not_binds_tighter_than_comparison() -> None:
    """As in OData, `not statecode eq 1` means `(not statecode) eq 1`: a type error, not a negated compare."""
    error = bad_request(compile_filter, "not statecode eq 1", ACCOUNT, DV_MODEL, DATAVERSE)
    assert "operator kind 'Not'" in error.message


def test_column_to_column_comparison(engine: sa.Engine) -> None:
    """Two properties can be compared; Dataverse compares strings case-insensitively."""
    assert contacts(engine, "firstname eq lastname") == {"Kim Kim"}
    assert contacts(engine, "tolower(firstname) ne lastname") == {"Jo Smith", "Ann Lee", "Bob Jo", "Eve Other"}
    assert accounts(engine, "revenue gt numberofemployees") == {CONTOSO, FABRIKAM, WEST}


def test_arithmetic_operators_compute_in_sql(engine: sa.Engine) -> None:
    """add, sub, mul, div and mod work on numeric columns and literals."""
    assert accounts(engine, "revenue add 100 gt 20000") == {CONTOSO}
    assert accounts(engine, "revenue sub 0.5 eq 5000") == {FABRIKAM}
    assert accounts(engine, "numberofemployees mul 2 eq 100") == {CONTOSO}
    assert accounts(engine, "numberofemployees mod 7 eq 1") == {CONTOSO}
    assert accounts(engine, "revenue div 4 eq 25") == {WEST}
    assert accounts(engine, "-numberofemployees eq -5") == {WEST}


def test_div_on_integers_truncates(engine: sa.Engine) -> None:
    """OData `div` of two integers is integer division (50 div 3 = 16)."""
    assert accounts(engine, "numberofemployees div 3 eq 16") == {CONTOSO}


def test_divby_divides_exactly_in_fno(engine: sa.Engine) -> None:
    """F&O `divby` is decimal division, unlike `div` on integers."""
    assert orders(engine, "LineCount divby 2 eq 2.5") == {"000001"}
    assert orders(engine, "LineCount div 2 eq 2") == {"000001"}


def test_arithmetic_on_a_string_is_rejected(engine: sa.Engine) -> None:
    """Arithmetic needs numbers on both sides."""
    error = bad_request(accounts, engine, "name add 1 eq 2")
    assert "incompatible types" in error.message


def test_boolean_literals_and_bare_boolean_property(engine: sa.Engine) -> None:
    """true/false compare with booleans; a bare boolean property is a condition of its own."""
    assert accounts(engine, "donotemail eq true") == {CONTOSO}
    assert accounts(engine, "donotemail eq false") == {FABRIKAM, WEST, ADVENTURE}
    assert accounts(engine, "donotemail") == {CONTOSO}
    assert accounts(engine, "not donotemail") == {FABRIKAM, WEST, ADVENTURE}
    assert accounts(engine, "true") == ALL_ACCOUNTS


def test_identifiers_starting_with_keywords_are_properties(engine: sa.Engine) -> None:
    """Names like `allowemail` or `nullcount` are not split into the keyword `all`/`null` plus a rest."""
    assert accounts(engine, "allowemail eq true") == {FABRIKAM, WEST, ADVENTURE}
    assert accounts(engine, "nullcount eq null") == ALL_ACCOUNTS


def test_bare_iso_datetimes_compare_in_utc(engine: sa.Engine) -> None:
    """Bare ISO date-times compare as instants; offsets are converted to UTC."""
    assert accounts(engine, "createdon gt 2024-03-01T00:00:00Z") == {CONTOSO, WEST, ADVENTURE}
    assert accounts(engine, "createdon eq 2024-01-01T12:00:00+02:00") == {FABRIKAM}
    assert accounts(engine, "createdon lt 2024-01-01T10:00:00.5Z") == {FABRIKAM, OBRIEN}


def test_bare_date_against_datetime_column_means_midnight_utc(engine: sa.Engine) -> None:
    """`createdon ge 2024-03-14` compares with 2024-03-14T00:00:00Z."""
    assert accounts(engine, "createdon ge 2024-03-14") == {CONTOSO, ADVENTURE}


def test_date_column_compares_with_dates(engine: sa.Engine) -> None:
    """Edm.Date columns take bare dates."""
    assert contacts(engine, "birthdate eq 1990-05-01") == {"Jo Smith"}
    assert contacts(engine, "birthdate lt 1986-01-01") == {"Ann Lee", "Eve Other"}


def test_guid_literal_bare_quoted_or_upper_case_matches(engine: sa.Engine) -> None:
    """GUIDs may be bare or quoted and any case; they are normalized to lower case."""
    assert accounts(engine, f"accountid eq {A1}") == {CONTOSO}
    assert accounts(engine, f"accountid eq '{A2}'") == {FABRIKAM}
    upper = C1.upper()
    assert accounts(engine, f"_primarycontactid_value eq {upper}") == {CONTOSO}
    assert accounts(engine, f"_primarycontactid_value eq '{upper}'") == {CONTOSO}


def test_invalid_guid_string_is_rejected() -> None:
    """A quoted value that is not a GUID cannot be compared with an Edm.Guid column."""
    error = bad_request(compile_filter, "accountid eq 'not-a-guid'", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.code == "0x80060888"
    assert "Edm.Guid" in error.message


def test_quoted_number_against_int_column_is_a_type_mismatch() -> None:
    """'5' is a string: comparing it with Edm.Int32 is refused with OData's incompatible-types message."""
    error = bad_request(compile_filter, "numberofemployees eq '5'", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == (
        "A binary operator with incompatible types was detected. Found operand types "
        "'Edm.Int32' and 'Edm.String' for operator kind 'Equal'."
    )
    assert error.code == "0x80060888"


def test_string_column_against_number_is_a_type_mismatch() -> None:
    """A number cannot be compared with a string column, nor a string column with a date column."""
    bad_request(compile_filter, "name eq 5", ACCOUNT, DV_MODEL, DATAVERSE)
    bad_request(compile_filter, "name eq createdon", ACCOUNT, DV_MODEL, DATAVERSE)


def test_dataverse_choice_compares_with_ints_only(engine: sa.Engine) -> None:
    """Dataverse choices are integers; a label string is refused."""
    assert accounts(engine, "statecode eq 1") == {FABRIKAM, ADVENTURE}
    assert accounts(engine, "statecode gt 0") == {FABRIKAM, ADVENTURE}
    bad_request(compile_filter, "statecode eq 'Inactive'", ACCOUNT, DV_MODEL, DATAVERSE)


def test_integer_literal_beyond_int64_is_rejected() -> None:
    """Integers the database cannot hold are a BadRequest, not a driver OverflowError."""
    error = bad_request(compile_filter, "numberofemployees eq 99999999999999999999", ACCOUNT, DV_MODEL, DATAVERSE)
    assert "out of range" in error.message


def test_parameter_aliases_are_substituted_outside_literals(engine: sa.Engine) -> None:
    """`@p1` takes its value from the aliases mapping; unset aliases are null; quoted '@p1' stays text."""
    table = ACCOUNT.table

    def names(text: str, aliases: dict[str, str]) -> set[str]:
        condition = compile_filter(text, ACCOUNT, DV_MODEL, DATAVERSE, aliases=aliases)
        with engine.connect() as conn:
            return {row.name for row in conn.execute(sa.select(table.c.name).where(condition))}

    assert names("name eq @p1", {"@p1": "'Fabrikam'"}) == {FABRIKAM}
    assert names("contains(@col,'works')", {"col": "name"}) == {ADVENTURE}
    assert names("revenue eq @missing", {}) == {OBRIEN}
    assert names("name eq '@p1'", {"@p1": "'Fabrikam'"}) == set()


def test_filter_may_be_surrounded_by_whitespace(engine: sa.Engine) -> None:
    """Leading and trailing blanks are ignored."""
    assert accounts(engine, "  numberofemployees eq 50  ") == {CONTOSO}


# ---- string functions -----------------------------------------------------------------------------


def test_contains_startswith_endswith_ignore_case_in_dataverse(engine: sa.Engine) -> None:
    """Dataverse string functions are case-insensitive LIKE searches."""
    assert accounts(engine, "contains(name,'CONTOSO')") == {CONTOSO, WEST}
    assert accounts(engine, "startswith(name,'fab')") == {FABRIKAM}
    assert accounts(engine, "endswith(name, 'WORKS')") == {ADVENTURE}


def test_like_wildcards_in_dataverse_string_functions_pass_through(engine: sa.Engine) -> None:
    """`%` and `_` inside contains/startswith keep their SQL LIKE meaning in Dataverse."""
    assert accounts(engine, "contains(name,'o_t')") == {CONTOSO, WEST}
    assert accounts(engine, "startswith(name,'c%west')") == {WEST}


def test_plain_dialect_string_functions_treat_wildcards_literally(engine: sa.Engine) -> None:
    """Outside Dataverse, `%` and `_` are ordinary characters."""
    assert accounts(engine, "contains(name,'o_w')", PLAIN) == {WEST}
    assert accounts(engine, "endswith(name,'100%')", PLAIN) == {WEST}
    assert accounts(engine, "contains(name,'t%')", PLAIN) == set()


def test_not_contains_negates(engine: sa.Engine) -> None:
    """String functions work under `not`."""
    assert accounts(engine, "not contains(name,'contoso')") == {FABRIKAM, OBRIEN, ADVENTURE}


def test_string_function_over_a_navigation_path(engine: sa.Engine) -> None:
    """Paths through lookups can be searched too."""
    assert accounts(engine, "contains(primarycontactid/fullname,'jo')") == {CONTOSO, WEST}


def test_scalar_functions_transform_values(engine: sa.Engine) -> None:
    """tolower, toupper, trim, length, concat, indexof, substring, year, month, day and round."""
    assert accounts(engine, "tolower(name) eq 'fabrikam'", PLAIN) == {FABRIKAM}
    assert accounts(engine, "toupper(name) eq 'FABRIKAM'", PLAIN) == {FABRIKAM}
    assert accounts(engine, "trim(name) eq 'Fabrikam'", PLAIN) == {FABRIKAM}
    assert accounts(engine, "length(name) eq 8") == {FABRIKAM}
    assert contacts(engine, "concat(firstname,lastname) eq 'JoSmith'", PLAIN) == {"Jo Smith"}
    assert contacts(engine, "indexof(fullname,'Smith') eq 3", PLAIN) == {"Jo Smith"}
    assert contacts(engine, "substring(fullname,1,2) eq 'o '", PLAIN) == {"Jo Smith"}
    assert accounts(engine, "year(createdon) eq 2023") == {OBRIEN}
    assert accounts(engine, "month(createdon) eq 3 and day(createdon) eq 14") == {CONTOSO}
    assert accounts(engine, "round(revenue) eq 5001") == {FABRIKAM}


def test_unknown_function_is_rejected() -> None:
    """A function the grammar does not know raises BadRequest naming it."""
    error = bad_request(compile_filter, "frobnicate(name) eq 1", ACCOUNT, DV_MODEL, DATAVERSE)
    assert "frobnicate" in error.message
    assert error.code == "0x80060888"


def test_known_but_unsupported_function_is_rejected() -> None:
    """Functions the grammar knows but the sandbox does not translate are refused, not crashed on."""
    error = bad_request(compile_filter, "matchesPattern(name,'^A')", ACCOUNT, DV_MODEL, DATAVERSE)
    assert "matchesPattern" in error.message


def test_string_function_needs_a_string_argument() -> None:
    """contains() over a number is refused."""
    bad_request(compile_filter, "contains(revenue,'1')", ACCOUNT, DV_MODEL, DATAVERSE)


def test_wrong_argument_count_is_rejected() -> None:
    """contains() takes exactly two arguments."""
    bad_request(compile_filter, "contains(name)", ACCOUNT, DV_MODEL, DATAVERSE)


def test_in_operator_selects_listed_values(engine: sa.Engine) -> None:
    """OData 4.01 `in` works where the dialect allows it, case-insensitively for strings in Dataverse."""
    assert accounts(engine, "numberofemployees in (5, 50)") == {CONTOSO, WEST}
    assert accounts(engine, "name in ('fabrikam','adventure works')") == {FABRIKAM, ADVENTURE}


# ---- navigation paths and lambdas -----------------------------------------------------------------


def test_single_valued_navigation_path_compares_related_column(engine: sa.Engine) -> None:
    """`primarycontactid/fullname` reads the related contact's column."""
    assert accounts(engine, "primarycontactid/fullname eq 'jo smith'") == {CONTOSO}
    assert accounts(engine, "primarycontactid/fullname eq null") == {OBRIEN, ADVENTURE}


def test_multi_hop_navigation_path(engine: sa.Engine) -> None:
    """Paths may go through several single-valued navigations."""
    assert accounts(engine, "primarycontactid/parentcustomerid_account/name eq 'Fabrikam'") == {WEST}


def test_navigation_local_condition_restricts_polymorphic_lookups(engine: sa.Engine) -> None:
    """A lookup typed 'contact' does not reach an account even when the GUID matches one."""
    assert contacts(engine, "parentcustomerid_account/name eq 'Fabrikam'") == {"Bob Jo"}


def test_single_navigation_eq_null_tests_the_foreign_key(engine: sa.Engine) -> None:
    """`nav eq null` is true when the lookup is empty."""
    assert accounts(engine, "primarycontactid eq null") == {OBRIEN, ADVENTURE}
    assert accounts(engine, "primarycontactid ne null") == {CONTOSO, FABRIKAM, WEST}


def test_navigation_compared_with_a_value_is_rejected() -> None:
    """A navigation property is not a value."""
    bad_request(compile_filter, "primarycontactid eq 'x'", ACCOUNT, DV_MODEL, DATAVERSE)


def test_unknown_property_behind_a_navigation_names_the_target_type() -> None:
    """The error names the type the property was looked up on."""
    error = bad_request(compile_filter, "primarycontactid/bogus eq 1", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == "Could not find a property named 'bogus' on type 'Microsoft.Dynamics.CRM.contact'."
    assert error.code == "0x0"


def test_unknown_property_inside_a_lambda_names_the_collection_type() -> None:
    """Lambda variable paths are checked against the related type."""
    error = bad_request(compile_filter, "contact_customer_accounts/any(c:c/bogus eq 1)", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == "Could not find a property named 'bogus' on type 'Microsoft.Dynamics.CRM.contact'."


def test_property_access_through_a_collection_is_rejected() -> None:
    """Collections need any/all."""
    error = bad_request(compile_filter, "contact_customer_accounts/firstname eq 'x'", ACCOUNT, DV_MODEL, DATAVERSE)
    assert "not a single value" in error.message


def test_any_with_predicate_is_exists(engine: sa.Engine) -> None:
    """`any(c: ...)` keeps rows with at least one matching related row."""
    assert accounts(engine, "contact_customer_accounts/any(c:c/firstname eq 'ann')") == {CONTOSO}
    assert accounts(engine, "contact_customer_accounts/any(c: contains(c/fullname,'jo'))") == {CONTOSO, FABRIKAM}


def test_bare_any_means_non_empty(engine: sa.Engine) -> None:
    """`any()` without a lambda keeps rows that have related rows at all."""
    assert accounts(engine, "contact_customer_accounts/any()") == {CONTOSO, FABRIKAM}
    assert accounts(engine, "not contact_customer_accounts/any()") == {OBRIEN, WEST, ADVENTURE}


def test_all_is_true_for_empty_collections_and_false_on_any_counterexample(engine: sa.Engine) -> None:
    """`all(...)` is NOT EXISTS(NOT ...): vacuously true without related rows."""
    assert accounts(engine, "contact_customer_accounts/all(c:c/statecode eq 0)") == {FABRIKAM, OBRIEN, WEST, ADVENTURE}


def test_all_treats_a_null_predicate_as_false(engine: sa.Engine) -> None:
    """A related row whose predicate is unknown (null birthdate) breaks `all`."""
    assert accounts(engine, "contact_customer_accounts/all(c:c/birthdate gt 1960-01-01)") == {
        CONTOSO,
        OBRIEN,
        WEST,
        ADVENTURE,
    }


def test_lambda_body_may_use_outer_properties_and_paths(engine: sa.Engine) -> None:
    """Unprefixed names in a lambda refer to the outer row; the variable reaches single navigations."""
    assert accounts(engine, "contact_customer_accounts/any(c:c/lastname eq 'smith' and numberofemployees gt 10)") == {
        CONTOSO
    }
    assert accounts(engine, "contact_customer_accounts/any(c:c/parentcustomerid_account/name eq 'Fabrikam')") == {
        FABRIKAM
    }


def test_nested_lambdas_correlate_to_their_own_variable(engine: sa.Engine) -> None:
    """A lambda inside a lambda sees both variables."""
    text = "contact_customer_accounts/any(c:c/account_primary_contact/any(a:a/name eq 'Fabrikam'))"
    assert accounts(engine, text) == {CONTOSO}


def test_lambda_on_a_collection_reached_through_a_lookup(engine: sa.Engine) -> None:
    """`lookup/collection/any(...)` walks the lookup first."""
    assert accounts(engine, "primarycontactid/account_primary_contact/any(a:a/statecode eq 1)") == {FABRIKAM}


def test_lambda_on_a_single_navigation_is_rejected() -> None:
    """any/all need a collection."""
    bad_request(compile_filter, "primarycontactid/any(c:c/firstname eq 'x')", ACCOUNT, DV_MODEL, DATAVERSE)


def test_lambdas_are_refused_when_the_dialect_disallows_them() -> None:
    """FilterDialect(lambdas=False) refuses any/all."""
    dialect = FilterDialect(lambdas=False)
    bad_request(compile_filter, "contact_customer_accounts/any()", ACCOUNT, DV_MODEL, dialect)


def test_fno_lambda_joins_on_compound_keys(engine: sa.Engine) -> None:
    """Navigation pairs join every key part (company and order number)."""
    assert orders(engine, "SalesOrderLines/any(l:l/ItemNumber eq 'D0001')") == {"000001", "000002"}
    assert orders(engine, "SalesOrderLines/any()") == {"000001", "000002"}


# ---- Dataverse query functions --------------------------------------------------------------------


def test_query_function_in_and_notin(engine: sa.Engine) -> None:
    """In/NotIn take JSON-array PropertyValues of strings, converted to the property type."""
    text = 'Microsoft.Dynamics.CRM.In(PropertyName=\'numberofemployees\',PropertyValues=["5","50"])'
    assert accounts(engine, text) == {CONTOSO, WEST}
    assert accounts(engine, "Microsoft.Dynamics.CRM.NotIn(PropertyName='statecode',PropertyValues=[\"0\"])") == {
        FABRIKAM,
        ADVENTURE,
    }


def test_query_function_values_may_hold_quotes_commas_and_parentheses(engine: sa.Engine) -> None:
    """Double-quoted values are taken verbatim, apostrophes and separators included."""
    text = "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"o'brien & co\",\"a,b)\"]) or name eq 'x,y)'"
    assert accounts(engine, text) == {OBRIEN}


def test_query_function_between_and_notbetween(engine: sa.Engine) -> None:
    """Between is inclusive on both ends; NotBetween is its complement (nulls included)."""
    assert accounts(
        engine, 'Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","50"])'
    ) == {CONTOSO, WEST}
    assert accounts(
        engine, 'Microsoft.Dynamics.CRM.NotBetween(PropertyName=\'numberofemployees\',PropertyValues=["5","50"])'
    ) == {FABRIKAM, OBRIEN, ADVENTURE}


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("Today(PropertyName='createdon')", {ADVENTURE}),
        ("Yesterday(PropertyName='createdon')", {CONTOSO}),
        ("Tomorrow(PropertyName='createdon')", set()),
        ("LastXDays(PropertyName='createdon',PropertyValue=7)", {CONTOSO, ADVENTURE}),
        ("LastXDays(PropertyName='createdon',PropertyValue=10)", {CONTOSO, WEST, ADVENTURE}),
        ("NextXDays(PropertyName='createdon',PropertyValue=3)", set()),
        ("LastXHours(PropertyName='createdon',PropertyValue=12)", {ADVENTURE}),
        ("OlderThanXMonths(PropertyName='createdon',PropertyValue=2)", {FABRIKAM, OBRIEN}),
        ("ThisMonth(PropertyName='createdon')", {CONTOSO, WEST, ADVENTURE}),
        ("LastYear(PropertyName='createdon')", {OBRIEN}),
        ("On(PropertyName='createdon',PropertyValue='2024-03-14')", {CONTOSO}),
        ("OnOrAfter(PropertyName='createdon',PropertyValue='2024-03-14')", {CONTOSO, ADVENTURE}),
        ("OnOrBefore(PropertyName='createdon',PropertyValue='2024-01-01')", {FABRIKAM, OBRIEN}),
    ],
)
def test_relative_date_query_functions_use_utc_days(engine: sa.Engine, function: str, expected: set[str]) -> None:
    """Date query functions select whole UTC days relative to now (2024-03-15 12:00Z)."""
    assert accounts(engine, f"Microsoft.Dynamics.CRM.{function}") == expected


def test_query_functions_combine_with_other_conditions(engine: sa.Engine) -> None:
    """A query function is an ordinary boolean term: and/or/not apply."""
    text = "not Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=[\"1\"]) and revenue gt 1000"
    assert accounts(engine, text) == {CONTOSO}


def test_query_function_with_unknown_property_reports_it() -> None:
    """PropertyName is checked like any property reference."""
    error = bad_request(
        compile_filter, "Microsoft.Dynamics.CRM.Today(PropertyName='bogus')", ACCOUNT, DV_MODEL, DATAVERSE
    )
    assert error.code == "0x0"
    assert "'bogus'" in error.message


def test_unknown_query_function_is_rejected() -> None:
    """Names outside the supported set raise BadRequest."""
    error = bad_request(
        compile_filter, "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='name')", ACCOUNT, DV_MODEL, DATAVERSE
    )
    assert "EqualUserId" in error.message


def test_query_function_value_of_wrong_type_is_rejected() -> None:
    """Every PropertyValues entry must convert to the property's type."""
    bad_request(
        compile_filter,
        "Microsoft.Dynamics.CRM.In(PropertyName='numberofemployees',PropertyValues=[\"x\"])",
        ACCOUNT,
        DV_MODEL,
        DATAVERSE,
    )
    bad_request(
        compile_filter,
        "Microsoft.Dynamics.CRM.Between(PropertyName='numberofemployees',PropertyValues=[\"1\"])",
        ACCOUNT,
        DV_MODEL,
        DATAVERSE,
    )
    bad_request(
        compile_filter,
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='name',PropertyValue=1)",
        ACCOUNT,
        DV_MODEL,
        DATAVERSE,
    )


def test_malformed_query_function_arguments_give_a_syntax_error() -> None:
    """A broken argument list is a positioned syntax error."""
    error = bad_request(
        compile_filter,
        "Microsoft.Dynamics.CRM.In(PropertyName='name' PropertyValues=[\"a\"])",
        ACCOUNT,
        DV_MODEL,
        DATAVERSE,
    )
    assert error.message.startswith("Syntax error at position 46 in")


def test_query_functions_are_unknown_without_the_namespace_setting() -> None:
    """A dialect without query functions refuses them."""
    bad_request(compile_filter, "Microsoft.Dynamics.CRM.Today(PropertyName='createdon')", ACCOUNT, DV_MODEL, PLAIN)


# ---- F&O dialect ----------------------------------------------------------------------------------


def test_fno_enum_literal_eq_and_ne(engine: sa.Engine) -> None:
    """`Namespace.Type'Member'` compares with the member's integer value."""
    assert orders(engine, "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'") == {
        "000001",
        "000004",
    }
    assert orders(engine, "SalesOrderStatus ne Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'") == {
        "000002",
        "000003",
    }
    assert orders(engine, "dataAreaId eq 'usmf' and IsOnHold eq Microsoft.Dynamics.DataEntities.NoYes'Yes'") == {
        "000002"
    }


def test_fno_enum_accepts_member_name_string_and_integer(engine: sa.Engine) -> None:
    """A plain member name (any case) or the integer also works."""
    assert orders(engine, "SalesOrderStatus eq 'invoiced'") == {"000002"}
    assert orders(engine, "SalesOrderStatus eq 4") == {"000003"}


def test_fno_unknown_enum_member_is_named_in_the_error() -> None:
    """An unknown member is a BadRequest naming the member."""
    error = bad_request(
        compile_filter,
        "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Shipped'",
        HEADER,
        FNO_MODEL,
        FNO,
    )
    assert "'Shipped'" in error.message
    error = bad_request(compile_filter, "SalesOrderStatus eq 'Shipped'", HEADER, FNO_MODEL, FNO)
    assert "'Shipped'" in error.message


def test_fno_enums_allow_only_eq_and_ne() -> None:
    """Ordering operators on enums are refused in F&O."""
    bad_request(
        compile_filter,
        "SalesOrderStatus gt Microsoft.Dynamics.DataEntities.SalesStatus'Backorder'",
        HEADER,
        FNO_MODEL,
        FNO,
    )
    bad_request(compile_filter, "SalesOrderStatus gt 1", HEADER, FNO_MODEL, FNO)


def test_fno_enum_literal_of_another_type_or_on_a_plain_property_is_rejected() -> None:
    """The literal's type must be the property's enum."""
    bad_request(
        compile_filter, "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.NoYes'Yes'", HEADER, FNO_MODEL, FNO
    )
    bad_request(compile_filter, "SalesOrderName eq Microsoft.Dynamics.DataEntities.NoYes'Yes'", HEADER, FNO_MODEL, FNO)


def test_enum_literal_syntax_is_a_syntax_error_outside_fno() -> None:
    """Dataverse does not know enum literals."""
    error = bad_request(
        compile_filter, "statecode eq Microsoft.Dynamics.CRM.state'Active'", ACCOUNT, DV_MODEL, DATAVERSE
    )
    assert error.code == "0x80060888"


def test_fno_star_in_eq_literal_is_a_case_insensitive_wildcard(engine: sa.Engine) -> None:
    """`Name eq '*retail*'` is LIKE '%retail%'; `%` and `_` stay literal characters."""
    assert orders(engine, "SalesOrderName eq '*RETAIL*'") == {"000001", "000003"}
    assert orders(engine, "SalesOrderName eq 'forest*'") == {"000002"}
    assert orders(engine, "SalesOrderName eq '*_100%*'") == {"000003"}
    assert orders(engine, "SalesOrderName eq '*0_1*'") == set()


def test_fno_star_in_ne_literal_is_not_like(engine: sa.Engine) -> None:
    """`ne '*x*'` keeps rows that do not match, null names included."""
    assert orders(engine, "SalesOrderName ne '*retail*'") == {"000002", "000004"}


def test_star_is_literal_without_wildcard_eq(engine: sa.Engine) -> None:
    """Dataverse treats '*' as an ordinary character in eq."""
    assert accounts(engine, "name eq '*contoso*'") == set()


def test_fno_refuses_string_functions() -> None:
    """F&O has no contains/startswith/endswith (nor tolower & co)."""
    for text in ("contains(SalesOrderName,'x')", "startswith(SalesOrderName,'x')", "tolower(SalesOrderName) eq 'x'"):
        error = bad_request(compile_filter, text, HEADER, FNO_MODEL, FNO)
        assert "not supported" in error.message


def test_fno_refuses_the_in_operator() -> None:
    """`in` is unsupported in F&O (it follows string_functions unless in_operator is set)."""
    bad_request(compile_filter, "SalesOrderNumber in ('000001','000002')", HEADER, FNO_MODEL, FNO)


def test_fno_string_compare_ignores_case(engine: sa.Engine) -> None:
    """F&O (SQL Server collation) compares strings case-insensitively when configured."""
    assert orders(engine, "dataAreaId eq 'USMF' and OrderTotalAmount ge 100") == {"000001", "000002"}


# ---- errors ---------------------------------------------------------------------------------------


def test_unterminated_literal_reports_end_position() -> None:
    """An unclosed quote gives Dataverse's exact message with the text length as position."""
    text = "lastname eq 'O'Bryan'"
    error = bad_request(compile_filter, text, CONTACT, DV_MODEL, DATAVERSE)
    assert error.message == "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    assert error.code == "0x80060888"


def test_unknown_property_gives_dataverse_message_and_code() -> None:
    """Unknown names raise code 0x0 with the type label."""
    error = bad_request(compile_filter, "Name eq 'x'", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    assert error.code == "0x0"


def test_hidden_property_is_unknown_in_filters() -> None:
    """Hidden columns cannot be filtered on."""
    error = bad_request(compile_filter, "secretnote eq 'x'", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.code == "0x0"


def test_rowid_is_not_a_property() -> None:
    """The bookkeeping columns are invisible to clients."""
    bad_request(compile_filter, "_rowid eq 1", ACCOUNT, DV_MODEL, DATAVERSE)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("name eq", 5),
        ("name eq 'x' and", 12),
        ("name eq 'x' 'y'", 12),
        ("(name eq 'x'", 12),
        ("name eq 'x')", 11),
        ("name eqq 'x'", 5),
    ],
)
def test_malformed_filter_gives_positioned_syntax_error(text: str, position: int) -> None:
    """Parse failures report where parsing stopped (0-based, in the client's text)."""
    error = bad_request(compile_filter, text, ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == f"Syntax error at position {position} in '{text}'."
    assert error.code == "0x80060888"


def test_invalid_character_is_named_with_its_position() -> None:
    """A character the grammar cannot lex is reported with its position."""
    error = bad_request(compile_filter, 'name eq "x"', ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.message == "Syntax error: character '\"' is not valid at position 8 in 'name eq \"x\"'."


def test_positions_after_a_rewritten_construct_point_into_the_original_text() -> None:
    """Errors after an enum literal still count characters of the text the client sent."""
    text = "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder' and"
    error = bad_request(compile_filter, text, HEADER, FNO_MODEL, FNO)
    assert error.message == f"Syntax error at position {text.rindex('and')} in '{text}'."
    text = "SalesOrderStatus eq Microsoft.Dynamics.DataEntities.SalesStatus'Backorder' ! 1"
    error = bad_request(compile_filter, text, HEADER, FNO_MODEL, FNO)
    assert f"position {text.index('!')} " in error.message


@pytest.mark.parametrize("text", ["", "   ", "name", "5", "'x'", "revenue add 1", "null"])
def test_non_boolean_or_empty_filter_is_rejected(text: str) -> None:
    """A filter must be a boolean expression."""
    bad_request(compile_filter, text, ACCOUNT, DV_MODEL, DATAVERSE)


def test_three_hop_lambda_owner_is_refused_not_crashed() -> None:
    """A grammar gap in the parser library surfaces as BadRequest, never as a 500."""
    text = "primarycontactid/parentcustomerid_account/contact_customer_accounts/any()"
    bad_request(compile_filter, text, ACCOUNT, DV_MODEL, DATAVERSE)


def test_invalid_date_literal_is_rejected() -> None:
    """A date that does not exist is a BadRequest."""
    bad_request(compile_filter, "createdon gt 2024-02-30T00:00:00Z", ACCOUNT, DV_MODEL, DATAVERSE)


def test_long_or_chain_compiles_without_recursion(engine: sa.Engine) -> None:
    """Clients send hundreds of `or` terms; they must not exhaust the stack."""
    text = " or ".join(f"numberofemployees eq {n}" for n in range(3000)) + " or name eq 'Fabrikam'"
    assert accounts(engine, text) == {CONTOSO, WEST, ADVENTURE, FABRIKAM}


def test_compilation_is_thread_safe(engine: sa.Engine) -> None:
    """Concurrent compiles of different filters (each parsed afresh) do not corrupt one another."""
    failures: list[str] = []

    def work(worker: int) -> None:
        for n in range(150):
            value = worker * 1000 + n
            text = f"numberofemployees eq {value} or (name eq 'w{worker}' and revenue gt {n})"
            try:
                condition = compile_filter(text, ACCOUNT, DV_MODEL, DATAVERSE)
                sql = str(condition.compile(compile_kwargs={"literal_binds": True}))
                if str(value) not in sql or f"w{worker}" not in sql:
                    failures.append(sql)
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# ---- $select --------------------------------------------------------------------------------------


def test_select_absent_or_star_means_all() -> None:
    """None, '' and '*' mean every property."""
    assert parse_select(None, ACCOUNT, DATAVERSE) is None
    assert parse_select("", ACCOUNT, DATAVERSE) is None
    assert parse_select("*", ACCOUNT, DATAVERSE) is None


def test_select_returns_names_in_order_without_duplicates() -> None:
    """Names keep their order; repeats are dropped; blanks around names are ignored."""
    assert parse_select("name, revenue,name", ACCOUNT, DATAVERSE) == ["name", "revenue"]


def test_select_unknown_property_gives_dataverse_error() -> None:
    """Names are case-sensitive; unknown ones raise 0x0 with the type label."""
    error = bad_request(parse_select, "Name", ACCOUNT, DATAVERSE)
    assert error.message == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    assert error.code == "0x0"
    assert bad_request(parse_select, "secretnote", ACCOUNT, DATAVERSE).code == "0x0"


def test_select_with_an_empty_term_is_a_syntax_error() -> None:
    """`name,` is malformed."""
    assert bad_request(parse_select, "name,", ACCOUNT, DATAVERSE).code == "0x80060888"


# ---- $orderby -------------------------------------------------------------------------------------


def ordered(engine: sa.Engine, text: str, dialect: FilterDialect = DATAVERSE) -> list[str]:
    """Account names in the order `$orderby` gives (rowid breaks ties)."""
    table = ACCOUNT.table
    clauses = parse_orderby(text, ACCOUNT, DV_MODEL, dialect)
    with engine.connect() as conn:
        query = sa.select(table.c.name).order_by(*clauses, table.c._rowid)
        return [row.name for row in conn.execute(query)]


def test_orderby_absent_is_empty() -> None:
    """No `$orderby` gives no clauses."""
    assert parse_orderby(None, ACCOUNT, DV_MODEL, DATAVERSE) == []


def test_orderby_directions_and_multiple_keys(engine: sa.Engine) -> None:
    """`revenue desc,name` sorts by revenue descending then name (nulls first ascending, as SQL Server)."""
    assert ordered(engine, "revenue desc,name") == [CONTOSO, FABRIKAM, WEST, ADVENTURE, OBRIEN]
    assert ordered(engine, "statecode, numberofemployees DESC") == [CONTOSO, WEST, OBRIEN, FABRIKAM, ADVENTURE]


def test_orderby_strings_ignore_case_in_dataverse(engine: sa.Engine) -> None:
    """'contoso_west' sorts next to 'Contoso Retail', not after every capital letter."""
    assert ordered(engine, "name") == [ADVENTURE, CONTOSO, WEST, FABRIKAM, OBRIEN]
    assert ordered(engine, "name", PLAIN) == [ADVENTURE, CONTOSO, FABRIKAM, OBRIEN, WEST]


def test_orderby_through_a_lookup_path(engine: sa.Engine) -> None:
    """`primarycontactid/fullname` sorts by the related contact's name."""
    assert ordered(engine, "primarycontactid/fullname desc") == [CONTOSO, WEST, FABRIKAM, OBRIEN, ADVENTURE]


def test_orderby_lookup_sorts_by_related_primary_name(engine: sa.Engine) -> None:
    """A lookup (navigation or `_x_value` column) sorts by the related row's primary name."""
    expected = [OBRIEN, ADVENTURE, FABRIKAM, WEST, CONTOSO]  # null, null, Ann Lee, Bob Jo, Jo Smith
    assert ordered(engine, "primarycontactid") == expected
    assert ordered(engine, "_primarycontactid_value") == expected


def test_orderby_parameter_alias_names_the_property(engine: sa.Engine) -> None:
    """`$orderby=@p1 desc` with `@p1=numberofemployees` sorts by that property."""
    clauses = parse_orderby("@p1 desc", ACCOUNT, DV_MODEL, DATAVERSE, aliases={"@p1": "numberofemployees"})
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ACCOUNT.table.c.name).order_by(*clauses)).all()
    assert [row.name for row in rows] == [FABRIKAM, CONTOSO, WEST, ADVENTURE, OBRIEN]


def test_orderby_unknown_property_gives_0x0() -> None:
    """Unknown names raise the unknown-property error."""
    error = bad_request(parse_orderby, "bogus desc", ACCOUNT, DV_MODEL, DATAVERSE)
    assert error.code == "0x0"
    assert "'bogus'" in error.message
    assert bad_request(parse_orderby, "primarycontactid/bogus", ACCOUNT, DV_MODEL, DATAVERSE).code == "0x0"


@pytest.mark.parametrize(
    "text",
    ["name up", "name asc desc", "name,,revenue", "contact_customer_accounts/fullname", "contact_customer_accounts"],
)
def test_orderby_malformed_terms_are_rejected(text: str) -> None:
    """Bad directions, empty terms and collections raise a syntax error."""
    assert bad_request(parse_orderby, text, ACCOUNT, DV_MODEL, DATAVERSE).code == "0x80060888"


# ---- $expand --------------------------------------------------------------------------------------


def test_expand_absent_is_empty() -> None:
    """No `$expand` gives no items."""
    assert parse_expand(None) == []
    assert parse_expand("  ") == []


def test_expand_parses_nested_options_refs_and_nested_expands() -> None:
    """Options split on top-level `;`, terms on top-level `,`; quotes and parentheses are respected."""
    text = "a($select=x,y;$filter=contains(x,'a;b,c)');$orderby=x desc;$top=5),b/$ref,c($expand=d($select=e;$skip=2)),f"
    assert parse_expand(text) == [
        ExpandItem(nav="a", select=["x", "y"], filter="contains(x,'a;b,c)')", orderby="x desc", top=5),
        ExpandItem(nav="b", ref=True),
        ExpandItem(nav="c", expand=[ExpandItem(nav="d", select=["e"], skip=2)]),
        ExpandItem(nav="f"),
    ]


def test_expand_keeps_query_function_json_values_intact() -> None:
    """Double-quoted JSON strings inside a nested filter are opaque to the splitter."""
    text = 'Account_Tasks($filter=Microsoft.Dynamics.CRM.In(PropertyName=\'subject\',PropertyValues=["a;b","c)"]))'
    [item] = parse_expand(text)
    assert item.filter == 'Microsoft.Dynamics.CRM.In(PropertyName=\'subject\',PropertyValues=["a;b","c)"])'


@pytest.mark.parametrize(
    "text",
    [
        "a(",
        "a($select=x",
        "a)",
        "a,,b",
        "a($count=true)",
        "a($top=-1)",
        "a($top=1;$top=2)",
        "a($select=x,)",
        "a()",
        "a/$ref($select=x)",
        "a b",
        "a($filter='x)",
        "a($select)",
    ],
)
def test_expand_malformed_text_is_rejected(text: str) -> None:
    """Unbalanced parentheses, empty terms, unknown or repeated options and bad integers are BadRequest."""
    bad_request(parse_expand, text)


# ---- $top / $skip ---------------------------------------------------------------------------------


def test_int_option_accepts_non_negative_integers() -> None:
    """Absent is None; digits parse."""
    assert parse_int_option("$top", None) is None
    assert parse_int_option("$top", "0") == 0
    assert parse_int_option("$skip", "25") == 25


@pytest.mark.parametrize("text", ["-1", "abc", "1.5", "", "+3", "99999999999999999999"])
def test_int_option_rejects_everything_else(text: str) -> None:
    """Negative, fractional, empty or huge values raise BadRequest naming the option."""
    error = bad_request(parse_int_option, "$top", text)
    assert error.message == (
        f"Invalid value '{text}' for $top query option found. "
        "The $top query option requires a non-negative integer value."
    )
