"""FetchXML joins, hierarchy and fiscal operators over mock Sales' Web API, as Microsoft's FetchXML reference
describes them (``docs/reference/dataverse-web-api.md``, "FetchXML"; PA ``fetchxml/reference/link-entity``,
``fetchxml/join-tables``, ``query-hierarchical-data``, ``fetchxml/reference/operators``).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest

from sandbox.odata.query import filtering
from sandbox.testing import assert_dataverse_error

ROOT = "/api/data/v9.2"
ALL = {"Prefer": 'odata.include-annotations="*"'}


def fetch(client: Any, entity_set: str, xml: str, headers: dict[str, str] | None = None) -> Any:
    return client.get(f"{ROOT}/{entity_set}?fetchXml={urllib.parse.quote(xml)}", headers=headers or {})


def rows(client: Any, entity_set: str, xml: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = fetch(client, entity_set, xml, headers)
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["value"]
    return found


def create(client: Any, entity_set: str, body: dict[str, Any]) -> str:
    response = client.post(f"{ROOT}/{entity_set}", json=body, headers={"Prefer": "return=representation"})
    assert response.status_code == 201, response.get_json()
    key = {"accounts": "accountid", "contacts": "contactid"}[entity_set]
    created: str = response.get_json()[key]
    return created


@pytest.fixture
def family(sales: Any) -> dict[str, str]:
    """An account tree: Root > (Child A > Grandchild, Child B), each Child A/B with one contact."""
    root = create(sales, "accounts", {"name": "Hier Root", "accountnumber": "H-ROOT"})
    child_a = create(sales, "accounts", {"name": "Hier Child A", "parentaccountid@odata.bind": f"/accounts({root})"})
    child_b = create(sales, "accounts", {"name": "Hier Child B", "parentaccountid@odata.bind": f"/accounts({root})"})
    grandchild = create(
        sales, "accounts", {"name": "Hier Grandchild", "parentaccountid@odata.bind": f"/accounts({child_a})"}
    )
    contact_a = create(
        sales,
        "contacts",
        {"lastname": "Linked A", "jobtitle": "Buyer", "parentcustomerid_account@odata.bind": f"/accounts({child_a})"},
    )
    contact_b = create(
        sales,
        "contacts",
        {"lastname": "Linked B", "jobtitle": "CEO", "parentcustomerid_account@odata.bind": f"/accounts({child_b})"},
    )
    return {
        "root": root,
        "a": child_a,
        "b": child_b,
        "grandchild": grandchild,
        "contact_a": contact_a,
        "contact_b": contact_b,
    }


# ---- link-entity ----------------------------------------------------------------------------------------


def test_inner_many_to_one_link_returns_linked_columns_as_alias_dot_attribute(
    sales: Any, family: dict[str, str]
) -> None:
    """``contact`` -> ``account`` on ``parentcustomerid``: each contact with its account's name as ``acc.name``;
    contacts without an account are left out by the inner join."""
    xml = (
        "<fetch><entity name='contact'><attribute name='lastname'/>"
        "<filter><condition attribute='lastname' operator='like' value='Linked%'/></filter>"
        "<order attribute='lastname'/>"
        "<link-entity name='account' from='accountid' to='parentcustomerid' alias='acc' link-type='inner'>"
        "<attribute name='name'/><attribute name='parentaccountid'/></link-entity></entity></fetch>"
    )
    found = rows(sales, "contacts", xml)
    assert [(r["lastname"], r["acc.name"]) for r in found] == [
        ("Linked A", "Hier Child A"),
        ("Linked B", "Hier Child B"),
    ]
    assert found[0]["acc.parentaccountid"] == family["root"]


def test_outer_one_to_many_link_repeats_the_parent_per_child_and_keeps_parents_without_children(
    sales: Any, family: dict[str, str]
) -> None:
    """``account`` -> ``contact`` (1:N) outer: one row per contact, and the account without contacts once, without
    the linked columns (FetchXML leaves nulls out)."""
    xml = (
        "<fetch><entity name='account'><attribute name='name'/>"
        "<filter><condition attribute='name' operator='begins-with' value='Hier'/></filter>"
        "<order attribute='name'/>"
        "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='outer' alias='c'>"
        "<attribute name='lastname'/></link-entity></entity></fetch>"
    )
    found = rows(sales, "accounts", xml)
    assert [(r["name"], r.get("c.lastname")) for r in found] == [
        ("Hier Child A", "Linked A"),
        ("Hier Child B", "Linked B"),
        ("Hier Grandchild", None),
        ("Hier Root", None),
    ]


def test_link_filter_inner_limits_parents_and_outer_limits_only_what_joins(sales: Any, family: dict[str, str]) -> None:
    """A link's own filter: with ``inner`` the parents without a matching child go; with ``outer`` they stay,
    and only the matching child's columns come back."""
    for link_type, expected in (
        ("inner", [("Hier Child B", "CEO")]),
        ("outer", [("Hier Child A", None), ("Hier Child B", "CEO"), ("Hier Grandchild", None), ("Hier Root", None)]),
    ):
        xml = (
            "<fetch><entity name='account'><attribute name='name'/>"
            "<filter><condition attribute='name' operator='begins-with' value='Hier'/></filter>"
            "<order attribute='name'/>"
            f"<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='{link_type}' alias='c'>"
            "<attribute name='jobtitle'/><filter><condition attribute='jobtitle' operator='eq' value='CEO'/>"
            "</filter></link-entity></entity></fetch>"
        )
        assert [(r["name"], r.get("c.jobtitle")) for r in rows(sales, "accounts", xml)] == expected, link_type


def test_condition_with_entityname_filters_on_the_linked_table(sales: Any, family: dict[str, str]) -> None:
    """``<condition entityname='c' ...>`` in the entity's filter, or-ed with a condition on the entity itself;
    the outer join keeps the parents the other branch matches (the documented way to find parents without
    children is ``entityname`` with ``null``)."""
    xml = (
        "<fetch><entity name='account'><attribute name='name'/>"
        "<order attribute='name'/>"
        "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='outer' alias='c'/>"
        "<filter type='and'><condition attribute='name' operator='begins-with' value='Hier'/>"
        "<condition entityname='c' attribute='contactid' operator='null'/></filter></entity></fetch>"
    )
    assert [r["name"] for r in rows(sales, "accounts", xml)] == ["Hier Grandchild", "Hier Root"]
    either = xml.replace(
        "<filter type='and'><condition attribute='name' operator='begins-with' value='Hier'/>"
        "<condition entityname='c' attribute='contactid' operator='null'/></filter>",
        "<filter type='or'><condition attribute='name' operator='eq' value='Hier Root'/>"
        "<condition entityname='c' attribute='jobtitle' operator='eq' value='Buyer'/></filter>",
    )
    assert [r["name"] for r in rows(sales, "accounts", either)] == ["Hier Child A", "Hier Root"]


def test_nested_links_join_to_their_parent_link_and_orders_of_links_follow_the_entitys(
    sales: Any, family: dict[str, str]
) -> None:
    """contact -> account (its parent) -> account (the parent's parent); a generated alias is the table name
    with the link's position (``account2``); the link's order sorts within the entity's order."""
    xml = (
        "<fetch><entity name='contact'><attribute name='lastname'/>"
        "<filter><condition attribute='lastname' operator='like' value='Linked%'/></filter>"
        "<link-entity name='account' from='accountid' to='parentcustomerid' alias='acc'>"
        "<attribute name='name'/><order attribute='name' descending='true'/>"
        "<link-entity name='account' from='accountid' to='parentaccountid'><attribute name='name'/>"
        "</link-entity></link-entity></entity></fetch>"
    )
    found = rows(sales, "contacts", xml)
    assert [(r["acc.name"], r["account2.name"]) for r in found] == [
        ("Hier Child B", "Hier Root"),
        ("Hier Child A", "Hier Root"),
    ]


def test_exists_link_and_any_in_a_filter_keep_parents_once_without_columns(sales: Any, family: dict[str, str]) -> None:
    """``link-type='exists'`` (and ``any`` inside a filter) keep each parent that has a matching row, once;
    ``not any`` keeps the others."""
    base = (
        "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
        "<filter><condition attribute='name' operator='begins-with' value='Hier'/>{inner}</filter>{outer}"
        "</entity></fetch>"
    )
    link = (
        "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='{kind}'>"
        "<attribute name='lastname'/></link-entity>"
    )
    exists = rows(sales, "accounts", base.format(inner="", outer=link.format(kind="exists")))
    assert [r["name"] for r in exists] == ["Hier Child A", "Hier Child B"]
    assert all(set(r) == {"@odata.etag", "name", "accountid"} for r in exists)
    any_ = rows(sales, "accounts", base.format(inner=link.format(kind="any"), outer=""))
    assert [r["name"] for r in any_] == ["Hier Child A", "Hier Child B"]
    none = rows(sales, "accounts", base.format(inner=link.format(kind="not any"), outer=""))
    assert [r["name"] for r in none] == ["Hier Grandchild", "Hier Root"]


def test_all_attributes_of_a_link_and_annotations_of_linked_columns(sales: Any, family: dict[str, str]) -> None:
    """``<all-attributes/>`` in a link returns its columns by logical name (lookups without ``_x_value``); with
    annotations asked for, a linked choice has its formatted value and a linked lookup its table."""
    xml = (
        "<fetch><entity name='contact'><attribute name='lastname'/>"
        "<filter><condition attribute='lastname' operator='eq' value='Linked A'/></filter>"
        "<link-entity name='account' from='accountid' to='parentcustomerid' alias='a'><all-attributes/>"
        "</link-entity></entity></fetch>"
    )
    row = rows(sales, "contacts", xml, ALL)[0]
    assert row["a.accountid"] == family["a"] and row["a.parentaccountid"] == family["root"]
    assert row["a.statecode"] == 0 and row["a.statecode@OData.Community.Display.V1.FormattedValue"] == "Active"
    assert row["a.parentaccountid@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert not any(name.startswith("a._") for name in row)


@pytest.mark.parametrize(
    ("link", "status", "code"),
    [
        ("<link-entity name='nosuch' from='a' to='b'/>", 400, "0x80041102"),
        ("<link-entity name='contact' from='nosuch' to='accountid'/>", 400, "0x80041103"),
        ("<link-entity name='contact' from='parentcustomerid' to='nosuch'/>", 400, "0x80041103"),
        (
            "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='sideways'/>",
            400,
            "0x80041130",
        ),
        ("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='any'/>", 400, "0x80041130"),
        ("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='all'/>", 501, None),
        (
            "<link-entity name='contact' from='parentcustomerid' to='accountid'><bogus/></link-entity>",
            400,
            "0x80041130",
        ),
        ("<filter><condition entityname='zz' attribute='name' operator='null'/></filter>", 400, "0x80041130"),
        ("<order entityname='zz' attribute='name'/>", 400, "0x80041130"),
    ],
)
def test_bad_links_answer_the_dataverse_error(sales: Any, link: str, status: int, code: str | None) -> None:
    """Unknown tables and columns, unknown link types, a filter link type outside a filter, and aliases no link
    has are 400s with Dataverse's codes; the documented link types the sandbox does not emulate are 501."""
    response = fetch(
        sales, "accounts", f"<fetch><entity name='account'><attribute name='name'/>{link}</entity></fetch>"
    )
    if code is None:
        assert response.status_code == status and response.get_json()["error"]["message"]
    else:
        assert_dataverse_error(response, status, code)


def test_aggregate_over_joined_rows_counts_each_combination_and_link_columns_are_501(
    sales: Any, family: dict[str, str]
) -> None:
    """An aggregate query whose links only filter aggregates the joined rows (an inner 1:N link counts a parent
    per child; ``exists`` once); grouping or aggregating a linked column is not emulated: 501, never a silently
    different answer."""
    base = (
        "<fetch aggregate='true'><entity name='account'><attribute name='accountid' alias='n' aggregate='count'/>"
        "<filter><condition attribute='name' operator='begins-with' value='Hier'/></filter>"
        "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='{kind}'/></entity></fetch>"
    )
    assert rows(sales, "accounts", base.format(kind="inner")) == [{"n": 2}]
    assert rows(sales, "accounts", base.format(kind="outer")) == [{"n": 4}]
    assert rows(sales, "accounts", base.format(kind="exists")) == [{"n": 2}]
    grouped = base.format(kind="inner").replace(
        "link-type='inner'/>", "link-type='inner'><attribute name='jobtitle' alias='j' groupby='true'/></link-entity>"
    )
    assert fetch(sales, "accounts", grouped).status_code == 501


# ---- hierarchy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "record", "expected"),
    [
        ("under", "root", {"a", "b", "grandchild"}),
        ("eq-or-under", "a", {"a", "grandchild"}),
        ("not-under", "a", {"root", "a", "b"}),
        ("above", "grandchild", {"a", "root"}),
        ("eq-or-above", "b", {"b", "root"}),
    ],
)
def test_hierarchy_operators_follow_parentaccountid(
    sales: Any, family: dict[str, str], operator: str, record: str, expected: set[str]
) -> None:
    """The hierarchy operators on account's primary key (PA ``query-hierarchical-data``)."""
    xml = (
        "<fetch><entity name='account'><attribute name='accountid'/>"
        "<filter><condition attribute='name' operator='begins-with' value='Hier'/>"
        f"<condition attribute='accountid' operator='{operator}' value='{family[record]}'/></filter></entity></fetch>"
    )
    names = {key for key, value in family.items() if value in {r["accountid"] for r in rows(sales, "accounts", xml)}}
    assert names == expected


def test_hierarchy_on_a_lookup_and_as_a_web_api_query_function(sales: Any, family: dict[str, str]) -> None:
    """``eq-or-under`` on contact's lookup to account finds the contacts of a subtree; the same condition is the
    Web API's ``Microsoft.Dynamics.CRM.UnderOrEqual`` query function."""
    xml = (
        "<fetch><entity name='contact'><attribute name='lastname'/><order attribute='lastname'/><filter>"
        f"<condition attribute='parentcustomerid' operator='eq-or-under' value='{family['root']}'/>"
        "</filter></entity></fetch>"
    )
    assert [r["lastname"] for r in rows(sales, "contacts", xml)] == ["Linked A", "Linked B"]
    query = f"Microsoft.Dynamics.CRM.Under(PropertyName='accountid',PropertyValue='{family['a']}')"
    response = sales.get(f"{ROOT}/accounts?$select=name&$filter={urllib.parse.quote(query)}")
    assert [r["name"] for r in response.get_json()["value"]] == ["Hier Grandchild"]


def test_hierarchy_on_a_table_without_a_hierarchy_is_a_400(sales: Any, family: dict[str, str]) -> None:
    """Contact has no hierarchical relationship: ``under`` on its key is refused."""
    xml = (
        "<fetch><entity name='contact'><attribute name='lastname'/><filter>"
        f"<condition attribute='contactid' operator='under' value='{family['contact_a']}'/></filter></entity></fetch>"
    )
    response = fetch(sales, "contacts", xml)
    assert response.status_code == 400 and "hierarchical" in response.get_json()["error"]["message"]


def test_hierarchy_stops_at_a_cycle(sales: Any, family: dict[str, str]) -> None:
    """A loop in the data (the root made a child of its grandchild) ends; each record comes back once."""
    response = sales.patch(
        f"{ROOT}/accounts({family['root']})", json={"parentaccountid@odata.bind": f"/accounts({family['grandchild']})"}
    )
    assert response.status_code == 204
    xml = (
        "<fetch><entity name='account'><attribute name='accountid'/><filter>"
        f"<condition attribute='accountid' operator='under' value='{family['a']}'/></filter></entity></fetch>"
    )
    ids = [r["accountid"] for r in rows(sales, "accounts", xml)]
    assert sorted(ids) == sorted({family["grandchild"], family["root"], family["a"], family["b"]})


# ---- fiscal ----------------------------------------------------------------------------------------------


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """The query clock at 2024-05-17 12:00 UTC (fiscal period 2 of fiscal year 2024 in the sandbox's calendar)."""
    now = dt.datetime(2024, 5, 17, 12, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(filtering, "utcnow", lambda: now)
    return now


@pytest.mark.parametrize(
    ("operator", "values", "inside", "outside"),
    [
        ("this-fiscal-year", [], "2024-12-31", "2025-01-01"),
        ("this-fiscal-period", [], "2024-04-01", "2024-03-31"),
        ("last-fiscal-period", [], "2024-01-01", "2024-04-01"),
        ("next-fiscal-year", [], "2025-06-01", "2024-06-01"),
        ("last-x-fiscal-periods", ["2"], "2023-10-01", "2023-09-30"),
        ("next-x-fiscal-years", ["1"], "2025-02-01", "2026-01-01"),
        ("in-fiscal-year", ["2023"], "2023-07-04", "2024-07-04"),
        ("in-fiscal-period", ["3"], "2019-08-01", "2019-10-01"),
        ("in-fiscal-period-and-year", ["4", "2022"], "2022-11-30", "2023-11-30"),
        ("in-or-before-fiscal-period-and-year", ["1", "2024"], "2020-01-01", "2024-04-01"),
        ("in-or-after-fiscal-period-and-year", ["1", "2024"], "2024-01-01", "2023-12-31"),
    ],
)
def test_fiscal_operators_use_the_sandboxs_calendar_of_quarters(
    sales: Any, frozen_now: dt.datetime, operator: str, values: list[str], inside: str, outside: str
) -> None:
    """The fiscal operators on an opportunity's estimated close date (a date-only column), against the
    sandbox's documented fiscal calendar: the calendar year in four quarterly periods."""
    made = {}
    for label, day in (("inside", inside), ("outside", outside)):
        response = sales.post(
            f"{ROOT}/opportunities",
            json={"name": f"Fiscal {label} {operator}", "estimatedclosedate": day},
            headers={"Prefer": "return=representation"},
        )
        assert response.status_code == 201, response.get_json()
        made[label] = response.get_json()["opportunityid"]
    value_xml = "".join(f"<value>{v}</value>" for v in values)
    xml = (
        "<fetch><entity name='opportunity'><attribute name='name'/><filter>"
        f"<condition attribute='name' operator='ends-with' value=' {operator}'/>"
        f"<condition attribute='estimatedclosedate' operator='{operator}'>{value_xml}</condition>"
        "</filter></entity></fetch>"
    )
    assert [r["opportunityid"] for r in rows(sales, "opportunities", xml)] == [made["inside"]]


def test_fiscal_operators_with_bad_values_are_400(sales: Any) -> None:
    """A period outside 1..4, a missing year, text for a count: 400, as for the other operators."""
    for condition in (
        "<condition attribute='createdon' operator='in-fiscal-period'><value>5</value></condition>",
        "<condition attribute='createdon' operator='in-fiscal-period-and-year'><value>1</value></condition>",
        "<condition attribute='createdon' operator='last-x-fiscal-years' value='many'/>",
        "<condition attribute='name' operator='this-fiscal-year'/>",
    ):
        xml = f"<fetch><entity name='account'><attribute name='name'/><filter>{condition}</filter></entity></fetch>"
        response = fetch(sales, "accounts", xml)
        assert response.status_code == 400, (condition, response.get_json())


# ---- team and language operators ---------------------------------------------------------------------------


def test_team_operators_follow_the_sandboxs_user_only_ownership(sales: Any) -> None:
    """No team owns a row in the sandbox: ``eq-userteams`` matches none, ``eq-useroruserteams`` the caller's own
    rows as ``eq-userid`` does; ``eq-userlanguage`` compares with English (1033) and needs a number column."""

    def ids(operator: str) -> list[str]:
        xml = (
            "<fetch><entity name='account'><attribute name='accountid'/><filter>"
            f"<condition attribute='ownerid' operator='{operator}'/></filter></entity></fetch>"
        )
        return sorted(r["accountid"] for r in rows(sales, "accounts", xml))

    mine = ids("eq-userid")
    assert mine and ids("eq-useroruserteams") == mine and ids("eq-userteams") == []
    language = (
        "<fetch><entity name='account'><attribute name='accountid'/><filter>"
        "<condition attribute='{column}' operator='eq-userlanguage'/></filter></entity></fetch>"
    )
    assert rows(sales, "accounts", language.format(column="statecode")) == []
    assert fetch(sales, "accounts", language.format(column="name")).status_code == 400
