"""What Dataverse clients send besides plain OData, as mock Sales answers it over the Flask test client.

FetchXML (``?fetchXml=``), the ``BulkDelete`` action and its QueryExpression, ``RetrieveMetadataChanges``,
relationship metadata, the refused ``?sql=`` endpoint, and ``$batch`` request lines with unencoded URLs.
The real clients exercising all of this live in ``tests/mock_sales/test_client_{python,js}.py``.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from sandbox.errors import BadRequest, NotImplementedYet
from sandbox.odata.dataverse.querylanguages import paging_cookie, parse_fetchxml, query_expression
from sandbox.odata.service import encode_request_lines
from sandbox.testing import assert_dataverse_error

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
COOKIE_ANNOTATIONS = {**JSON, "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.*"'}


def fetch(client: Any, entity_set: str, xml: str, headers: dict[str, str] = JSON) -> Any:
    return client.get(f"{ROOT}/{entity_set}?fetchXml={urllib.parse.quote(xml)}", headers=headers)


def account_numbers(client: Any, filter_text: str) -> list[str]:
    response = client.get(
        f"{ROOT}/accounts",
        headers=JSON,
        query_string={"$select": "accountnumber", "$filter": filter_text, "$orderby": "accountnumber"},
    )
    return [row["accountnumber"] for row in response.get_json()["value"]]


# ---- FetchXML -------------------------------------------------------------------------------------------


def test_fetchxml_filters_orders_and_leaves_out_null_columns(sales: Any) -> None:
    """Conditions, order and attributes apply; the primary key is always there; null columns are left out."""
    xml = (
        "<fetch><entity name='account'><attribute name='accountnumber'/><attribute name='fax'/>"
        "<filter type='or'><condition attribute='accountnumber' operator='eq' value='US-002'/>"
        "<condition attribute='accountnumber' operator='in'><value>US-001</value><value>US-003</value>"
        "</condition></filter><order attribute='accountnumber' descending='true'/></entity></fetch>"
    )
    response = fetch(sales, "accounts", xml)
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = response.get_json()["value"]
    assert [row["accountnumber"] for row in rows] == ["US-003", "US-002", "US-001"]
    assert all(set(row) == {"@odata.etag", "accountnumber", "accountid"} for row in rows)


@pytest.mark.parametrize(
    "condition, expected_filter",
    [
        ("<condition attribute='accountnumber' operator='like' value='US-00%'/>", "startswith(accountnumber,'US-00')"),
        ("<condition attribute='accountnumber' operator='not-like' value='%1%'/>", "not contains(accountnumber,'1')"),
        ("<condition attribute='accountnumber' operator='ends-with' value='3'/>", "endswith(accountnumber,'3')"),
        ("<condition attribute='accountnumber' operator='ne' value='US-001'/>", "accountnumber ne 'US-001'"),
        ("<condition attribute='fax' operator='not-null'/>", "fax ne null"),
    ],
)
def test_fetchxml_conditions_match_the_same_rows_as_their_odata_filter(
    sales: Any, condition: str, expected_filter: str
) -> None:
    """Each FetchXML operator selects exactly the rows of the equivalent OData $filter."""
    xml = (
        f"<fetch><entity name='account'><attribute name='accountnumber'/><filter>{condition}</filter>"
        "<order attribute='accountnumber'/></entity></fetch>"
    )
    rows = fetch(sales, "accounts", xml).get_json()["value"]
    assert [row.get("accountnumber") for row in rows] == account_numbers(sales, expected_filter)


def test_fetchxml_pages_by_count_and_page_with_a_paging_cookie_on_request(sales: Any) -> None:
    """count/page page the rows; morerecords and the cookie come only when the annotations are asked for."""
    template = (
        "<fetch count='2' page='{page}'><entity name='account'><attribute name='accountnumber'/>"
        "<filter><condition attribute='accountnumber' operator='begins-with' value='US-'/></filter>"
        "<order attribute='accountnumber'/></entity></fetch>"
    )
    plain = fetch(sales, "accounts", template.format(page=1)).get_json()
    assert "@Microsoft.Dynamics.CRM.morerecords" not in plain and len(plain["value"]) == 2
    everything = account_numbers(sales, "startswith(accountnumber,'US-')")
    collected: list[str] = []
    page = 1
    while True:
        body = fetch(sales, "accounts", template.format(page=page), COOKIE_ANNOTATIONS).get_json()
        collected += [row["accountnumber"] for row in body["value"]]
        if not body["@Microsoft.Dynamics.CRM.morerecords"]:
            assert "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" not in body
            break
        assert f'pagenumber="{page + 1}"' in body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
        page += 1
    assert collected == everything and page == (len(everything) + 1) // 2


def test_fetchxml_top_total_count_and_lookup_attributes(sales: Any) -> None:
    """top limits without paging; returntotalrecordcount adds the count; lookups come back as _x_value."""
    xml = (
        "<fetch top='1' returntotalrecordcount='true'><entity name='contact'>"
        "<attribute name='parentcustomerid'/><filter><condition attribute='parentcustomerid' "
        "operator='not-null'/></filter></entity></fetch>"
    )
    body = fetch(sales, "contacts", xml, {**JSON, "Prefer": 'odata.include-annotations="*"'}).get_json()
    assert len(body["value"]) == 1 and body["value"][0]["_parentcustomerid_value"]
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] > 1
    assert body["@Microsoft.Dynamics.CRM.morerecords"] is False
    assert body["value"][0]["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] in (
        "account",
        "contact",
    )


@pytest.mark.parametrize(
    "xml, status, fragment",
    [
        (
            "<fetch><entity name='account'><link-entity name='contact' from='contactid' to='primarycontactid' "
            "link-type='matchfirstrowusingcrossapply'/></entity></fetch>",
            501,
            "link-type",
        ),
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='createdon' alias='p' groupby='true' "
            "dategrouping='fiscal-period'/></entity></fetch>",
            501,
            "fiscal",
        ),
        ("<fetch aggregate='true'><entity name='account'><attribute name='name'/></entity></fetch>", 400, "alias"),
        ("<fetch><entity name='contact'/></fetch>", 400, "does not match"),
        ("<fetch><entity name='account'><attribute name='nosuch'/></entity></fetch>", 400, "nosuch"),
        ("<fetch><entity name='account'>", 400, "Invalid XML"),
    ],
)
def test_unsupported_or_wrong_fetchxml_is_refused_not_ignored(sales: Any, xml: str, status: int, fragment: str) -> None:
    """Link types and fiscal date groupings the sandbox lacks answer 501, mistakes 400: never the whole table as if the query were
    absent. (Aggregates are answered: ``tests/sandbox/odata/test_dataverse_aggregate.py``.)"""
    response = fetch(sales, "accounts", xml)
    assert response.status_code == status and fragment in response.get_json()["error"]["message"]


def test_sql_parameter_is_refused_with_501(sales: Any) -> None:
    """?sql= is not emulated and says so."""
    response = sales.get(f"{ROOT}/accounts", headers=JSON, query_string={"sql": "x"})
    assert response.status_code == 501 and "not supported by the sandbox" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("name", ["savedQuery", "userQuery"])
def test_a_view_parameter_that_is_no_guid_is_400(sales: Any, name: str) -> None:
    """``?savedQuery=`` and ``?userQuery=`` take a view's id (Microsoft's "Retrieve and execute predefined
    queries" for the Web API); text that is no GUID is a bad request, as in Dataverse, not a 501."""
    response = sales.get(f"{ROOT}/accounts", headers=JSON, query_string={name: "notaguid"})
    assert_dataverse_error(response, 400, code="0x80040203", contains="Guid should contain 32 digits")


@pytest.mark.parametrize(("name", "table"), [("savedQuery", "savedquery"), ("userQuery", "userquery")])
def test_a_view_the_sandbox_does_not_hold_is_404(sales: Any, name: str, table: str) -> None:
    """The sandbox holds no views, so any view id names no row: 404 with Dataverse's does-not-exist error,
    never the table's rows as if the parameter were not there."""
    view_id = "00000000-0000-0000-0000-0000000000AB"
    response = sales.get(f"{ROOT}/accounts", headers=JSON, query_string={name: "{" + view_id + "}"})
    error = assert_dataverse_error(response, 404, code="0x80040217")
    assert error["message"] == f"Entity '{table}' With Id = {view_id.lower()} Does Not Exist"


@pytest.mark.parametrize("query", ["groupby((name),aggregate($count as n))", "aggregate(revenue with sum as total)"])
def test_apply_where_the_sandbox_does_not_aggregate_is_refused_not_ignored(sales: Any, query: str) -> None:
    """An option a service does not carry out must be refused, never ignored: "If a data service does not
    support a system query option, it MUST reject any requests which contain the unsupported option"
    ([MS-ODATA] 2.2.3.6.1, System Query Options). The sandbox aggregates entity sets
    (``tests/sandbox/odata/test_dataverse_aggregate.py``); ``$apply`` on one row, on a related collection or
    inside ``$expand`` is a 400 with the query-syntax code, never the raw rows."""
    account = sales.get(f"{ROOT}/accounts?$top=1", headers=JSON).get_json()["value"][0]["accountid"]
    single = sales.get(f"{ROOT}/accounts({account})", headers=JSON, query_string={"$apply": query})
    assert_dataverse_error(single, 400, code="0x80060888", contains="$apply is supported on an entity set only")
    related = sales.get(
        f"{ROOT}/accounts({account})/contact_customer_accounts", headers=JSON, query_string={"$apply": query}
    )
    assert_dataverse_error(related, 400, code="0x80060888", contains="$apply")
    nested = sales.get(
        f"{ROOT}/accounts", headers=JSON, query_string={"$expand": f"contact_customer_accounts($apply={query})"}
    )
    assert nested.status_code == 400


def test_paging_cookie_double_encodes_the_inner_cookie() -> None:
    """The cookie carries the next page number and the first/last key of the page, URL-encoded twice."""
    cookie = paging_cookie(
        1, "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002", "accountid"
    )
    assert cookie.startswith('<cookie pagenumber="2" pagingcookie="%253ccookie%2520page%253d%25221%2522')
    inner = urllib.parse.unquote(urllib.parse.unquote(cookie.split('pagingcookie="')[1].split('"')[0]))
    assert inner == (
        '<cookie page="1"><accountid last="{AAAAAAAA-0000-0000-0000-000000000002}" '
        'first="{AAAAAAAA-0000-0000-0000-000000000001}" /></cookie>'
    )


def test_fetchxml_parser_maps_date_operators_to_query_functions(sales_app: Any) -> None:
    """Relative date operators become Microsoft.Dynamics.CRM query functions on the property."""
    model = sales_app.extensions["sandbox"].model
    query = parse_fetchxml(
        "<fetch><entity name='account'><filter><condition attribute='createdon' "
        "operator='last-x-days' value='7'/><condition attribute='modifiedon' "
        "operator='today'/></filter></entity></fetch>",
        model,
    )
    assert query.filter == (
        "((Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue='7')) and "
        "(Microsoft.Dynamics.CRM.Today(PropertyName='modifiedon')))"
    )
    assert query.select == ["accountid"]
    with pytest.raises(BadRequest):
        parse_fetchxml(
            "<fetch><entity name='account'><filter><condition attribute='numberofemployees' "
            "operator='eq' value='many'/></filter></entity></fetch>",
            model,
        )


# ---- BulkDelete ----------------------------------------------------------------------------------------------


def bulk_delete_body(conditions: list[dict[str, Any]], entity: str = "account") -> dict[str, Any]:
    return {
        "JobName": "test",
        "SendEmailNotification": False,
        "ToRecipients": [],
        "CCRecipients": [],
        "RecurrencePattern": "",
        "StartDateTime": "2024-01-01T00:00:00Z",
        "QuerySet": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
                "EntityName": entity,
                "ColumnSet": {"AllColumns": False, "Columns": []},
                "Criteria": {"FilterOperator": "And", "Conditions": conditions},
            }
        ],
    }


def test_bulk_delete_deletes_what_the_query_expression_selects_and_returns_a_job_id(sales: Any) -> None:
    """The Python client's shape (In on the primary key with typed values) deletes exactly those rows."""
    ids = []
    for name in ("Bulk 1", "Bulk 2", "Keep"):
        response = sales.post(f"{ROOT}/accounts", headers=JSON, json={"name": name})
        ids.append(response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))
    response = sales.post(
        f"{ROOT}/BulkDelete",
        headers=JSON,
        json=bulk_delete_body(
            [
                {
                    "AttributeName": "accountid",
                    "Operator": "In",
                    "Values": [{"Value": i, "Type": "System.Guid"} for i in ids[:2]],
                }
            ]
        ),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["JobId"]
    statuses = [sales.get(f"{ROOT}/accounts({i})", headers=JSON).status_code for i in ids]
    assert statuses == [404, 404, 200]


def test_bulk_delete_refuses_a_malformed_request(sales: Any) -> None:
    """Missing parameters and unknown operators answer errors; GET is not the way to call an action."""
    body = bulk_delete_body([{"AttributeName": "name", "Operator": "Equal", "Values": ["x"]}])
    del body["JobName"]
    assert sales.post(f"{ROOT}/BulkDelete", headers=JSON, json=body).status_code == 400
    body = bulk_delete_body([{"AttributeName": "name", "Operator": "SoundsLike", "Values": ["x"]}])
    assert sales.post(f"{ROOT}/BulkDelete", headers=JSON, json=body).status_code == 501
    assert sales.get(f"{ROOT}/BulkDelete", headers=JSON).status_code == 404


def test_query_expression_nested_filters_become_an_odata_filter(sales_app: Any) -> None:
    """Conditions and nested Filters join with their FilterOperator; lookup names map to _x_value."""
    model = sales_app.extensions["sandbox"].model
    entity, text = query_expression(
        {
            "EntityName": "contact",
            "Criteria": {
                "FilterOperator": "Or",
                "Conditions": [{"AttributeName": "parentcustomerid", "Operator": "Null"}],
                "Filters": [
                    {
                        "Conditions": [
                            {"AttributeName": "lastname", "Operator": "BeginsWith", "Values": ["A"]},
                            {"AttributeName": "statecode", "Operator": "Equal", "Values": [0]},
                        ]
                    }
                ],
            },
        },
        model,
    )
    assert entity.name == "contact"
    assert text == "(_parentcustomerid_value eq null) or ((startswith(lastname,'A')) and (statecode eq 0))"
    with pytest.raises(NotImplementedYet):
        query_expression({"EntityName": "contact", "LinkEntities": [{}]}, model)


# ---- metadata --------------------------------------------------------------------------------------------------


def test_retrieve_metadata_changes_filters_entities_and_projects_attributes(sales: Any) -> None:
    """RetrieveMetadataChanges(Query=@p1): entity criteria on LogicalName, attribute criteria and properties."""
    query = {
        "Criteria": {
            "Conditions": [
                {
                    "PropertyName": "LogicalName",
                    "ConditionOperator": "Equals",
                    "Value": {"Type": "System.String", "Value": "account"},
                }
            ]
        },
        "Properties": {"PropertyNames": ["LogicalName", "Attributes"]},
        "AttributeQuery": {
            "Properties": {"PropertyNames": ["LogicalName", "MaxLength"]},
            "Criteria": {
                "Conditions": [
                    {
                        "PropertyName": "LogicalName",
                        "ConditionOperator": "In",
                        "Value": {"Value": ["name", "accountnumber"]},
                    }
                ]
            },
        },
    }
    response = sales.get(
        f"{ROOT}/RetrieveMetadataChanges(Query=@p1)", headers=JSON, query_string={"@p1": json.dumps(query)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (entity,) = response.get_json()["EntityMetadata"]
    assert entity["LogicalName"] == "account" and "EntitySetName" not in entity
    attributes = {a["LogicalName"]: a for a in entity["Attributes"]}
    assert set(attributes) == {"name", "accountnumber"} and attributes["name"]["MaxLength"]
    assert set(attributes["name"]) == {"@odata.type", "MetadataId", "LogicalName", "MaxLength"}


def test_relationship_metadata_per_entity_and_as_a_set(sales: Any) -> None:
    """Lookups appear as ManyToOne of the referencing table, OneToMany of the referenced one, and in
    RelationshipDefinitions; the schema name is the collection navigation of the referenced table."""
    many_to_one = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='account')/ManyToOneRelationships",
        headers=JSON,
        query_string={"$filter": "ReferencedEntity eq 'contact'"},
    ).get_json()["value"]
    names = {r["ReferencingEntityNavigationPropertyName"]: r["SchemaName"] for r in many_to_one}
    assert names["primarycontactid"] == "account_primary_contact"
    one_to_many = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='contact')/OneToManyRelationships",
        headers=JSON,
        query_string={"$select": "SchemaName"},
    ).get_json()["value"]
    assert "account_primary_contact" in {r["SchemaName"] for r in one_to_many}
    assert (
        sales.get(f"{ROOT}/EntityDefinitions(LogicalName='account')/ManyToManyRelationships", headers=JSON).get_json()[
            "value"
        ]
        == []
    )
    single = sales.get(f"{ROOT}/RelationshipDefinitions(SchemaName='account_primary_contact')", headers=JSON)
    assert single.status_code == 200 and single.get_json()["ReferencingAttribute"] == "primarycontactid"
    expanded = sales.get(
        f"{ROOT}/EntityDefinitions(LogicalName='account')",
        headers=JSON,
        query_string={"$select": "LogicalName", "$expand": "ManyToOneRelationships($select=SchemaName)"},
    ).get_json()
    assert {
        "SchemaName": "account_primary_contact",
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": single.get_json()["MetadataId"],
    } in (expanded["ManyToOneRelationships"])


# ---- $batch request lines ------------------------------------------------------------------------------------


def test_batch_request_line_urls_with_spaces_are_encoded() -> None:
    """Only the URL of a request line changes: spaces and non-ASCII become %XX, existing escapes stay."""
    raw = (
        b"--b\r\nContent-Type: application/http\r\n\r\n"
        b"GET https://h/api/data/v9.2/accounts?$filter=name eq 'A B%20' HTTP/1.1\r\n\r\n"
        b'--b\r\n\r\nPOST /api/data/v9.2/accounts HTTP/1.1\r\n\r\n{"name": "GET x HTTP/1.1"}\r\n--b--\r\n'
    )
    encoded = encode_request_lines(raw)
    assert b"GET https://h/api/data/v9.2/accounts?$filter=name%20eq%20'A%20B%20' HTTP/1.1\r\n" in encoded
    assert encoded.replace(b"name%20eq%20'A%20B%20'", b"name eq 'A B%20'") == raw
    assert encode_request_lines("GET /x?$filter=name eq 'Zoë' HTTP/1.1".encode()) == (
        b"GET /x?$filter=name%20eq%20'Zo%C3%AB' HTTP/1.1"
    )


def test_batch_get_with_an_unencoded_filter_is_answered(sales: Any) -> None:
    """A part written like the Python client writes it (spaces in the URL) runs like an encoded one."""
    body = (
        "--batch_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET http://localhost{ROOT}/accounts?$select=accountnumber&$filter=accountnumber eq 'US-001' HTTP/1.1\r\n"
        "\r\n--batch_x--\r\n"
    )
    response = sales.post(
        f"{ROOT}/$batch", headers={**JSON, "Content-Type": "multipart/mixed; boundary=batch_x"}, data=body.encode()
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert '"accountnumber":"US-001"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("operator", "status", "code"),
    [("zzz", 400, "0x80041130"), ("eq eq", 400, "0x80041130"), ("eq-useroruserhierarchy", 501, "0x8004801a")],
)
def test_an_operator_fetchxml_does_not_know_is_400_one_it_documents_but_the_sandbox_lacks_501(
    sales: Any, operator: str, status: int, code: str
) -> None:
    """Text that is no FetchXML condition operator is an invalid query (400, the invalid-FetchXML code); a
    documented one the sandbox does not carry out says so with a 501."""
    xml = (
        "<fetch><entity name='account'><filter>"
        f"<condition attribute='name' operator='{operator}' value='a'/></filter></entity></fetch>"
    )
    assert_dataverse_error(fetch(sales, "accounts", xml), status, code=code)


def test_fetchxml_olderthan_operators_are_answered_not_refused(sales: Any) -> None:
    """``olderthan-x-days`` (spelled so in the FetchXML condition reference) is a documented operator Dataverse
    accepts: rows created in the last days are not older than three days, and are within the last three."""
    total = len(sales.get(f"{ROOT}/accounts?$select=accountid", headers=JSON).get_json()["value"])

    def names(operator: str) -> list[dict[str, Any]]:
        xml = (
            "<fetch><entity name='account'><attribute name='name'/><filter>"
            f"<condition attribute='createdon' operator='{operator}' value='3'/></filter></entity></fetch>"
        )
        response = fetch(sales, "accounts", xml)
        assert response.status_code == 200, response.get_data(as_text=True)
        return list(response.get_json()["value"])

    assert names("olderthan-x-days") == []
    assert len(names("last-x-days")) == total


def test_fetchxml_contain_values_on_a_column_that_is_no_multi_select_choice_is_400(sales: Any) -> None:
    """``contain-values`` takes a multi-select choice column, which no sandbox table has: an invalid query (400
    ``0x80041130``) as Dataverse answers it for any other column, not a 501."""
    xml = (
        "<fetch><entity name='account'><attribute name='name'/><filter>"
        "<condition attribute='statuscode' operator='contain-values'><value>1</value></condition>"
        "</filter></entity></fetch>"
    )
    assert_dataverse_error(fetch(sales, "accounts", xml), 400, code="0x80041130", contains="multi-select")


def test_fetchxml_eq_userid_and_businessid_compare_with_the_caller(sales: Any) -> None:
    """``eq-userid``/``ne-userid`` compare a user lookup with the caller's systemuser (the one whose domainname
    is the caller's identity), ``eq-businessid`` a business-unit lookup with the caller's business unit; on a
    column that is no such lookup they are an invalid query (400), not a 501."""
    users = sales.get(f"{ROOT}/systemusers?$select=domainname,_businessunitid_value", headers=JSON).get_json()["value"]
    user = next(u for u in users if u["domainname"] != "dualwrite")
    caller = {**JSON, "X-Sandbox-Identity": user["domainname"]}
    created = sales.post(f"{ROOT}/accounts", headers=caller, json={"name": "Mine"})
    assert created.status_code == 204
    owned = {
        row["name"]
        for row in sales.get(
            f"{ROOT}/accounts?$select=name&$filter=_ownerid_value eq {user['systemuserid']}", headers=JSON
        ).get_json()["value"]
    }
    assert "Mine" in owned

    def names(operator: str, attribute: str = "ownerid", entity: str = "account") -> set[str]:
        xml = (
            f"<fetch><entity name='{entity}'><attribute name='{'name' if entity == 'account' else 'fullname'}'/>"
            f"<filter><condition attribute='{attribute}' operator='{operator}'/></filter></entity></fetch>"
        )
        response = sales.get(f"{ROOT}/{entity}s", headers=caller, query_string={"fetchXml": xml})
        assert response.status_code == 200, response.get_data(as_text=True)
        return {row.get("name") or row.get("fullname") for row in response.get_json()["value"]}

    assert names("eq-userid") == owned
    assert not names("ne-userid") & owned
    same_unit = {
        row["fullname"]
        for row in sales.get(
            f"{ROOT}/systemusers?$select=fullname&$filter=_businessunitid_value eq {user['_businessunitid_value']}",
            headers=JSON,
        ).get_json()["value"]
    }
    assert names("eq-businessid", "businessunitid", "systemuser") == same_unit
    bad = sales.get(
        f"{ROOT}/accounts",
        headers=caller,
        query_string={
            "fetchXml": "<fetch><entity name='account'><filter><condition attribute='name' operator='eq-userid'/>"
            "</filter></entity></fetch>"
        },
    )
    assert_dataverse_error(bad, 400, code="0x80041130", contains="lookup to a systemuser")
