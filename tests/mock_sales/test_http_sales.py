"""Mock Sales over HTTP: the lead-to-cash rules and actions as a Dataverse Web API client sees them."""

from __future__ import annotations

from typing import Any

ROOT = "/api/data/v9.2"
JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
REPRESENTATION = {**JSON, "Prefer": "return=representation"}


def _first(client, query: str) -> dict[str, Any]:
    response = client.get(f"{ROOT}/{query}", headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["value"][0]


def _draft_quote(client, quantity: int = 2) -> dict[str, Any]:
    account = _first(client, "accounts?$filter=accountnumber eq 'US-001'")
    price_list = _first(client, "pricelevels?$filter=name eq 'Contoso USD'")
    product = _first(client, "products?$filter=msdyn_productnumber eq 'D0001'")
    response = client.post(
        f"{ROOT}/quotes",
        headers=REPRESENTATION,
        json={
            "name": "HTTP quote",
            "customerid_account@odata.bind": f"/accounts({account['accountid']})",
            "pricelevelid@odata.bind": f"/pricelevels({price_list['pricelevelid']})",
            "totalamount": 12345,
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    quote = response.get_json()
    response = client.post(
        f"{ROOT}/quotedetails",
        headers=JSON,
        json={
            "quoteid@odata.bind": f"/quotes({quote['quoteid']})",
            "productid@odata.bind": f"/products({product['productid']})",
            "quantity": quantity,
        },
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    return client.get(f"{ROOT}/quotes({quote['quoteid']})", headers=JSON).get_json()


def test_quote_totals_and_numbers_come_from_the_server(sales) -> None:
    """A user-sent totalamount is ignored; the line price comes from the price list; numbers are assigned."""
    quote = _draft_quote(sales, quantity=3)
    assert quote["totalamount"] == 750.0 and quote["totallineitemamount"] == 750.0
    assert quote["quotenumber"].startswith("QUO-") and quote["msdyn_quotenumber"] == "CRM-Q000001"
    assert quote["_msdyn_company_value"] and quote["_transactioncurrencyid_value"]
    lines = sales.get(f"{ROOT}/quotes({quote['quoteid']})/quote_details", headers=JSON).get_json()["value"]
    assert [(line["priceperunit"], line["sequencenumber"]) for line in lines] == [(250.0, 1)]


def test_activated_quote_refuses_edits_with_a_dataverse_error(sales) -> None:
    """PATCH statecode 1/2 activates (204); then editing the quote or adding a line answers 400."""
    quote = _draft_quote(sales)
    url = f"{ROOT}/quotes({quote['quoteid']})"
    assert sales.patch(url, headers=JSON, json={"statecode": 1, "statuscode": 2}).status_code == 204
    response = sales.patch(url, headers=JSON, json={"name": "Changed"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "0x80040203" and "only Draft quote" in error["message"]
    product = _first(sales, "products?$filter=msdyn_productnumber eq 'D0003'")
    response = sales.post(
        f"{ROOT}/quotedetails",
        headers=JSON,
        json={
            "quoteid@odata.bind": f"/quotes({quote['quoteid']})",
            "productid@odata.bind": f"/products({product['productid']})",
        },
    )
    assert response.status_code == 400
    response = sales.patch(url, headers=JSON, json={"statecode": 2, "statuscode": 4})
    assert response.status_code == 400 and "WinQuote" in response.get_json()["error"]["message"]


def test_convert_quote_to_sales_order_over_http(sales) -> None:
    """POST /ConvertQuoteToSalesOrder answers 200 with the order's selected columns; the quote is Won."""
    quote = _draft_quote(sales)
    sales.patch(f"{ROOT}/quotes({quote['quoteid']})", headers=JSON, json={"statecode": 1, "statuscode": 2})
    response = sales.post(
        f"{ROOT}/ConvertQuoteToSalesOrder",
        headers=JSON,
        json={
            "QuoteId": quote["quoteid"],
            "ColumnSet": {"AllColumns": False, "Columns": ["salesorderid", "ordernumber", "totalamount"]},
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["@odata.context"].endswith("$metadata#salesorders/$entity")
    assert body["ordernumber"].startswith("ORD-") and body["totalamount"] == 500.0
    assert "name" not in body
    won = sales.get(
        f"{ROOT}/quotes({quote['quoteid']})?$select=statecode,statuscode",
        headers={**JSON, "Prefer": 'odata.include-annotations="*"'},
    ).get_json()
    assert won["statecode@OData.Community.Display.V1.FormattedValue"] == "Won"
    lines = sales.get(f"{ROOT}/salesorders({body['salesorderid']})/order_details", headers=JSON).get_json()["value"]
    assert len(lines) == 1


def test_qualify_lead_over_http_returns_the_created_rows(sales) -> None:
    """The bound action answers a crmbaseentity collection; a second call is a 400."""
    lead = _first(sales, "leads?$filter=statecode eq 0")
    url = f"{ROOT}/leads({lead['leadid']})/Microsoft.Dynamics.CRM.QualifyLead"
    body = {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3}
    response = sales.post(url, headers=JSON, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result["@odata.context"].endswith("$metadata#Collection(Microsoft.Dynamics.CRM.crmbaseentity)")
    assert [item["@odata.type"] for item in result["value"]] == [
        "#Microsoft.Dynamics.CRM.account",
        "#Microsoft.Dynamics.CRM.contact",
        "#Microsoft.Dynamics.CRM.opportunity",
    ]
    assert sales.post(url, headers=JSON, json=body).status_code == 400


def test_win_opportunity_and_fulfill_order_over_http(sales) -> None:
    """Unbound WinOpportunity and collection-bound FulfillSalesOrder answer 204 and change state."""
    account = _first(sales, "accounts?$filter=accountnumber eq 'US-002'")
    response = sales.post(
        f"{ROOT}/opportunities",
        headers=REPRESENTATION,
        json={"name": "Big deal", "customerid_account@odata.bind": f"/accounts({account['accountid']})"},
    )
    opportunity = response.get_json()
    response = sales.post(
        f"{ROOT}/WinOpportunity",
        headers=JSON,
        json={
            "Status": 3,
            "OpportunityClose": {
                "subject": "Won",
                "opportunityid@odata.bind": f"/opportunities({opportunity['opportunityid']})",
            },
        },
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    won = sales.get(f"{ROOT}/opportunities({opportunity['opportunityid']})", headers=JSON).get_json()
    assert (won["statecode"], won["statuscode"]) == (1, 3)

    response = sales.post(
        f"{ROOT}/salesorders",
        headers=REPRESENTATION,
        json={"name": "Direct order", "customerid_account@odata.bind": f"/accounts({account['accountid']})"},
    )
    order = response.get_json()
    response = sales.post(
        f"{ROOT}/salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder",
        headers=JSON,
        json={
            "Status": 100001,
            "OrderClose": {"subject": "Done", "salesorderid@odata.bind": f"/salesorders({order['salesorderid']})"},
        },
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    fulfilled = sales.get(f"{ROOT}/salesorders({order['salesorderid']})", headers=JSON).get_json()
    assert fulfilled["statecode"] == 3


def test_documents_are_addressable_by_their_dual_write_key(sales) -> None:
    """quotes(msdyn_quotenumber='...',_msdyn_company_value=...) finds the Sales-born quote."""
    quote = _draft_quote(sales)
    response = sales.get(
        f"{ROOT}/quotes(msdyn_quotenumber='{quote['msdyn_quotenumber']}',"
        f"_msdyn_company_value={quote['_msdyn_company_value']})",
        headers=JSON,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["quoteid"] == quote["quoteid"]


def test_metadata_lists_the_sales_actions_and_tables(sales) -> None:
    """$metadata declares the entity sets and the lead-to-cash actions."""
    text = sales.get(f"{ROOT}/$metadata").get_data(as_text=True)
    for name in (
        "QualifyLead",
        "ConvertQuoteToSalesOrder",
        "FulfillSalesOrder",
        'Name="quotedetails"',
        'Name="cdm_companies"',
    ):
        assert name in text


def test_a_select_read_answers_the_selected_part_of_the_whole_row(sales) -> None:
    """A read with ``$select`` reads only the columns it renders (with the key and the currency Dataverse adds);
    with ``$expand`` or annotations it reads whole rows: the answers are the whole row's, cut to the selection."""
    root = "/api/data/v9.2/accounts"
    whole = sales.get(f"{root}?$filter=customertypecode eq 3&$top=3").get_json()["value"]
    assert len(whole) == 3
    narrow = sales.get(f"{root}?$filter=customertypecode eq 3&$top=3&$select=name,creditlimit").get_json()["value"]
    assert narrow == [
        {
            "@odata.etag": row["@odata.etag"],
            **{k: row[k] for k in ("name", "creditlimit", "accountid", "_transactioncurrencyid_value")},
        }
        for row in whole
    ]
    annotated = sales.get(
        f"{root}?$filter=customertypecode eq 3&$top=3&$select=name,customertypecode",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).get_json()["value"]
    assert [row["customertypecode@OData.Community.Display.V1.FormattedValue"] for row in annotated] == ["Customer"] * 3
    expanded = sales.get(
        f"{root}?$filter=customertypecode eq 3&$top=3&$select=name&$expand=transactioncurrencyid($select=isocurrencycode)"
    ).get_json()["value"]
    assert [row["name"] for row in expanded] == [row["name"] for row in whole]
    assert all(row["transactioncurrencyid"]["isocurrencycode"] for row in expanded)
