"""``$apply`` on mock Sales, as Microsoft's "Aggregate data using OData" page shows it (PA
``webapi/query/aggregate-data``; ``docs/reference/dataverse-web-api.md`` section 6a).

Expected figures are computed from the same data read row by row, never written down.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from sandbox.testing import assert_dataverse_error

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
FORMATTED = {**JSON, "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}


def rows(client: Any, query: str, headers: dict[str, str] = JSON) -> list[dict[str, Any]]:
    response = client.get(f"{ROOT}/{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["value"])


def apply(client: Any, entity_set: str, text: str, headers: dict[str, str] = JSON, **options: str) -> Any:
    return client.get(f"{ROOT}/{entity_set}", headers=headers, query_string={"$apply": text, **options})


def test_groupby_with_count_answers_one_object_per_group_with_formatted_values(sales: Any) -> None:
    """``groupby((statuscode),aggregate($count as count))``: one object per status, the count and, on ask, its
    formatted value ("8") and the status label; no etags; context ``$metadata#<set>``."""
    expected = Counter(row["statuscode"] for row in rows(sales, "contacts?$select=statuscode"))
    response = apply(sales, "contacts", "groupby((statuscode),aggregate($count as count))", FORMATTED)
    assert response.status_code == 200
    body = response.get_json()
    assert body["@odata.context"].endswith("/$metadata#contacts")
    assert {item["statuscode"]: item["count"] for item in body["value"]} == dict(expected)
    for item in body["value"]:
        assert "@odata.etag" not in item
        assert item["count@OData.Community.Display.V1.FormattedValue"] == f"{item['count']:,}"
        assert item["statuscode@OData.Community.Display.V1.FormattedValue"] in ("Active", "Inactive")
    plain = apply(sales, "contacts", "groupby((statuscode),aggregate($count as count))").get_json()["value"]
    assert all(not any("@" in name for name in item) for item in plain)


def test_aggregate_sum_average_min_max_and_countdistinct_of_the_whole_set(sales: Any) -> None:
    """``aggregate(x with sum|average|min|max|countdistinct as alias)`` gives one object; nulls are not
    counted, as the aggregation extension says; money is formatted as currency."""
    limits = [row["creditlimit"] for row in rows(sales, "accounts?$select=creditlimit")]
    present = [value for value in limits if value is not None]
    names = {row["name"] for row in rows(sales, "accounts?$select=name")}
    text = (
        "aggregate(creditlimit with sum as total,creditlimit with average as mean,creditlimit with min as low,"
        "creditlimit with max as high,name with countdistinct as names,$count as n)"
    )
    [result] = apply(sales, "accounts", text, FORMATTED).get_json()["value"]
    assert result["total"] == pytest.approx(sum(present))
    assert result["mean"] == pytest.approx(sum(present) / len(present))
    assert (result["low"], result["high"]) == (min(present), max(present))
    assert result["names"] == len(names) and result["n"] == len(limits)
    assert result["total@OData.Community.Display.V1.FormattedValue"] == f"${sum(present):,.2f}"


def test_filter_then_groupby_through_a_lookup_names_the_value_after_the_target(sales: Any) -> None:
    """``filter(...)/groupby((primarycontactid/fullname),aggregate(...))``: the filter narrows the rows first and
    the related name comes back as ``contact_fullname`` (the documented answer)."""
    accounts = rows(
        sales,
        "accounts?$select=creditlimit&$filter=customertypecode eq 3&$expand=primarycontactid($select=fullname)",
    )
    expected: dict[str, float] = {}
    for account in accounts:
        contact = account["primarycontactid"]
        if contact is not None and account["creditlimit"] is not None:
            expected[contact["fullname"]] = expected.get(contact["fullname"], 0) + account["creditlimit"]
    text = "filter(customertypecode eq 3)/groupby((primarycontactid/fullname),aggregate(creditlimit with sum as total))"
    answered = {
        item["contact_fullname"]: item["total"]
        for item in apply(sales, "accounts", text).get_json()["value"]
        if "contact_fullname" in item and "total" in item
    }
    assert answered == pytest.approx(expected)
    assert expected, "the seed has customers with a primary contact"


def test_groupby_alone_gives_distinct_values_and_leaves_nulls_out(sales: Any) -> None:
    """``groupby((a,b))`` is Dataverse's distinct: each combination once; a null value is left out of its object."""
    expected = {
        (row["statecode"], row.get("address1_city")) for row in rows(sales, "accounts?$select=statecode,address1_city")
    }
    answered = apply(sales, "accounts", "groupby((statecode,address1_city))").get_json()["value"]
    assert {(item["statecode"], item.get("address1_city")) for item in answered} == expected
    assert len(answered) == len(expected)
    assert all(None not in item.values() for item in answered)


def test_filter_orderby_top_and_count_combine_with_apply(sales: Any) -> None:
    """``$filter`` narrows the rows like ``filter()``, ``$orderby`` sorts groups by a grouped property, ``$top``
    keeps the first groups and ``$count=true`` counts the groups answered."""
    names = sorted({row["lastname"] for row in rows(sales, "contacts?$select=lastname&$filter=statecode eq 0")})
    response = apply(
        sales,
        "contacts",
        "groupby((lastname),aggregate($count as n))",
        **{"$filter": "statecode eq 0", "$orderby": "lastname desc", "$top": "2", "$count": "true"},
    )
    body = response.get_json()
    assert [item["lastname"] for item in body["value"]] == sorted(names, key=str.lower, reverse=True)[:2]
    assert body["@odata.count"] == 2


@pytest.mark.parametrize(
    ("text", "options", "code", "message"),
    [
        ("groupby((createdon))", {}, "0x80060888", "date and time"),
        (
            "groupby((statuscode),aggregate($count as n))",
            {"$orderby": "n"},
            "0x80060888",
            "SingleValueOpenPropertyAccess",
        ),
        ("groupby((nosuchcolumn))", {}, "0x0", "Could not find a property named 'nosuchcolumn'"),
        ("aggregate(name with sum as x)", {}, "0x80060888", "cannot be applied"),
        ("aggregate(revenue with median as x)", {}, "0x80060888", "not supported"),
        ("groupby((statuscode))/filter(statuscode eq 1)", {}, "0x80060888", "after groupby"),
        ("filter(name eq 'x')", {}, "0x80060888", "use $filter"),
        ("groupby((statuscode),aggregate($count as n))", {"$select": "name"}, "0x80060888", "$select"),
        ("groupby((statuscode),aggregate($count as statuscode))", {}, "0x80060888", "used twice"),
        ("compute(revenue mul 2 as x)", {}, "0x80060888", "not supported"),
        ("groupby((name", {}, "0x80060888", ""),
        ("filter(name eq 'x", {}, "0x80060888", "unterminated"),
        ("", {}, "0x80060888", "empty"),
    ],
)
def test_apply_outside_what_dataverse_takes_is_a_400(
    sales: Any, text: str, options: dict[str, str], code: str, message: str
) -> None:
    """Grouping by a date and time and ordering by an aggregate are refused as the page says; unknown names
    are ``0x0`` like any query; malformed or unsupported transformations ``0x80060888``."""
    assert_dataverse_error(apply(sales, "accounts", text, **options), 400, code=code, contains=message)


def test_more_rows_than_the_aggregate_limit_is_the_documented_error(sales_app: Any) -> None:
    """Aggregates read at most 50,000 rows: beyond, 400 "AggregateQueryRecordLimit exceeded" (PA
    ``fetchxml/aggregate-data``, "Limitations", hexadecimal code 8004E023). The limit is lowered here so a
    test database crosses it; a filter that keeps the rows under it is answered."""
    sales = sales_app.test_client()
    sales_app.extensions["sandbox"].service.dialect.aggregate_limit = 3
    total = len(rows(sales, "accounts?$select=name"))
    assert total > 3
    response = apply(sales, "accounts", "aggregate($count as n)")
    assert_dataverse_error(response, 400, code="0x8004e023", contains="AggregateQueryRecordLimit exceeded")
    second = rows(sales, "accounts?$select=accountid&$orderby=accountid&$top=2")[-1]["accountid"]
    narrowed = apply(sales, "accounts", f"filter(accountid le {second})/aggregate($count as n)")
    assert narrowed.get_json()["value"] == [{"n": 2}]


# ---- aggregate FetchXML --------------------------------------------------------------------------------------


def fetch(client: Any, entity_set: str, xml: str, headers: dict[str, str] = JSON) -> Any:
    return client.get(f"{ROOT}/{entity_set}", headers=headers, query_string={"fetchXml": xml})


def test_aggregate_fetchxml_groups_counts_and_sums_by_alias(sales: Any) -> None:
    """PA ``fetchxml/aggregate-data``, "Grouping": ``aggregate='true'`` with ``sum``, ``count`` and a ``groupby``
    attribute, each answered under its alias, ordered by ``<order alias>``; ``countcolumn`` counts values,
    with ``distinct`` distinct values."""
    accounts = rows(sales, "accounts?$select=creditlimit,address1_stateorprovince,address1_city")
    totals: dict[Any, float] = {}
    counts: Counter[Any] = Counter()
    for account in accounts:
        state = account["address1_stateorprovince"]
        counts[state] += 1
        totals[state] = totals.get(state, 0) + (account["creditlimit"] or 0)
    xml = (
        "<fetch aggregate='true'><entity name='account'>"
        "<attribute name='creditlimit' alias='Total' aggregate='sum'/>"
        "<attribute name='address1_city' alias='Count' aggregate='count'/>"
        "<attribute name='address1_stateorprovince' alias='State' groupby='true'/>"
        "<order alias='State' descending='true'/></entity></fetch>"
    )
    response = fetch(sales, "accounts", xml)
    assert response.status_code == 200, response.get_data(as_text=True)
    answered = response.get_json()["value"]
    assert {item.get("State"): item["Count"] for item in answered} == dict(counts)
    assert {item.get("State"): item.get("Total", 0) for item in answered} == pytest.approx(totals)
    states = [item["State"] for item in answered if "State" in item]
    assert states == sorted(states, key=str.lower, reverse=True)
    cities = [account["address1_city"] for account in accounts]
    xml = (
        "<fetch aggregate='true'><entity name='account'>"
        "<attribute name='address1_city' alias='Cities' aggregate='countcolumn'/>"
        "<attribute name='address1_city' alias='Distinct' aggregate='countcolumn' distinct='true'/>"
        "<attribute name='creditlimit' alias='Mean' aggregate='avg'/></entity></fetch>"
    )
    [result] = fetch(sales, "accounts", xml).get_json()["value"]
    assert result["Cities"] == len([c for c in cities if c is not None])
    assert result["Distinct"] == len({c for c in cities if c is not None})


def test_aggregate_fetchxml_groups_by_parts_of_a_date(sales: Any) -> None:
    """``dategrouping='year'``/``'month'`` group by that part of the date (UTC)."""
    created = [row["createdon"] for row in rows(sales, "accounts?$select=createdon")]
    expected = Counter((int(text[:4]), int(text[5:7])) for text in created)
    xml = (
        "<fetch aggregate='true'><entity name='account'>"
        "<attribute name='createdon' alias='Year' groupby='true' dategrouping='year'/>"
        "<attribute name='createdon' alias='Month' groupby='true' dategrouping='month'/>"
        "<attribute name='accountid' alias='n' aggregate='count'/></entity></fetch>"
    )
    answered = fetch(sales, "accounts", xml).get_json()["value"]
    assert {(item["Year"], item["Month"]): item["n"] for item in answered} == dict(expected)


@pytest.mark.parametrize(
    ("xml", "code", "message"),
    [
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='name'/></entity></fetch>",
            "0x80041130",
            "alias",
        ),
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='name' alias='x' aggregate='median'/>"
            "</entity></fetch>",
            "0x80041130",
            "median",
        ),
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='name' alias='x' aggregate='sum'/>"
            "</entity></fetch>",
            "0x80041130",
            "number column",
        ),
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='name' alias='x' aggregate='count'/>"
            "<order attribute='name'/></entity></fetch>",
            "0x80041130",
            "alias",
        ),
        (
            "<fetch><entity name='account'><attribute name='name' alias='x' aggregate='count'/></entity></fetch>",
            "0x80041130",
            "aggregate",
        ),
        (
            "<fetch aggregate='true' aggregatelimit='2'><entity name='account'>"
            "<attribute name='name' alias='x' aggregate='count'/></entity></fetch>",
            "0x8004e023",
            "AggregateQueryRecordLimit exceeded",
        ),
    ],
)
def test_aggregate_fetchxml_mistakes_are_400(sales: Any, xml: str, code: str, message: str) -> None:
    """What Dataverse refuses is a 400 with the FetchXML code; ``aggregatelimit`` lowers the row limit and
    crossing it is the documented AggregateQueryRecordLimit error."""
    assert_dataverse_error(fetch(sales, "accounts", xml), 400, code=code, contains=message)
