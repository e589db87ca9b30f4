"""The lead-to-cash actions of mock Sales, called through the action registry (no HTTP layer)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mock_sales.schema import NAMESPACE
from sandbox.errors import BadRequest, NotFound
from sandbox.odata.actions import CollectionResult, EntityResult

D = Decimal


def _lead(env, **values):
    return env.insert(
        "lead",
        {
            "subject": "Speakers for the new store",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "companyname": "Analytical Engines",
            "emailaddress1": "ada@example.com",
            "estimatedamount": D(5000),
            **values,
        },
    )


def _qualify(env, lead, **params):
    body = {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3, **params}
    return env.run("QualifyLead", body, target=env.get("lead", lead), bound_to="lead")


# ---- registry ----------------------------------------------------------------------------------------------


def test_every_lead_to_cash_action_is_registered_with_its_parameters(env) -> None:
    """The actions of reference section 15 exist with the right binding and declared parameters."""
    expected = {
        ("QualifyLead", "lead", False),
        ("WinOpportunity", None, False),
        ("LoseOpportunity", None, False),
        ("GenerateQuoteFromOpportunity", None, False),
        ("WinQuote", None, False),
        ("CloseQuote", None, False),
        ("ReviseQuote", None, False),
        ("ConvertQuoteToSalesOrder", None, False),
        ("ConvertSalesOrderToInvoice", None, False),
        ("FulfillSalesOrder", "salesorder", True),
        ("CancelSalesOrder", None, False),
        ("LockSalesOrderPricing", None, False),
        ("UnlockSalesOrderPricing", None, False),
        ("LockInvoicePricing", None, False),
        ("UnlockInvoicePricing", None, False),
    }
    for name, bound_to, collection in expected:
        spec = env.registry.find(name, bound_to, collection)
        assert spec is not None, name
        assert spec.parameters and spec.description
    assert env.registry.find("WinQuote", None).parameters == {
        "QuoteClose": f"{NAMESPACE}.quoteclose",
        "Status": "Edm.Int32",
    }
    assert env.registry.find("ConvertQuoteToSalesOrder", None).returns == f"{NAMESPACE}.salesorder"


# ---- QualifyLead ------------------------------------------------------------------------------------------


def test_qualify_lead_creates_linked_account_contact_and_opportunity(env) -> None:
    """The new rows carry originatingleadid; the contact belongs to the account; the opportunity to the account."""
    lead = _lead(env)
    result = _qualify(env, lead)
    assert isinstance(result, CollectionResult)
    assert result.context == f"Collection({NAMESPACE}.crmbaseentity)"
    (_, account), (_, contact), (_, opportunity) = result.items
    assert [name for name, _ in result.items] == ["account", "contact", "opportunity"]
    assert account["name"] == "Analytical Engines" and account["_primarycontactid_value"] == contact["contactid"]
    assert (contact["_parentcustomerid_value"], contact["_parentcustomerid_type"]) == (account["accountid"], "account")
    assert (opportunity["_customerid_value"], opportunity["_customerid_type"]) == (account["accountid"], "account")
    assert opportunity["_parentcontactid_value"] == contact["contactid"]
    assert opportunity["estimatedvalue"] == D(5000) and opportunity["name"] == "Speakers for the new store"
    for row in (account, contact, opportunity):
        assert row["_originatingleadid_value"] == lead["leadid"]
    lead = env.get("lead", lead)
    assert (lead["statecode"], lead["statuscode"]) == (1, 3)
    assert lead["_qualifyingopportunityid_value"] == opportunity["opportunityid"]


def test_qualifying_a_lead_twice_is_refused(env) -> None:
    """A Qualified lead cannot be qualified again."""
    lead = _lead(env)
    _qualify(env, lead)
    with pytest.raises(BadRequest, match="is Qualified and cannot be qualified"):
        _qualify(env, lead)


def test_qualify_lead_only_creates_what_is_asked(env) -> None:
    """CreateAccount/CreateContact false and an OpportunityCustomerId: only the opportunity, for that customer."""
    lead = _lead(env)
    customer = env.account("US-002")
    result = _qualify(
        env,
        lead,
        CreateAccount=False,
        CreateContact=False,
        OpportunityCustomerId={"@odata.type": f"{NAMESPACE}.account", "accountid": customer["accountid"]},
    )
    ((name, opportunity),) = result.items
    assert name == "opportunity" and opportunity["_customerid_value"] == customer["accountid"]


def test_qualify_lead_takes_the_opportunity_currency_parameter(env) -> None:
    """OpportunityCurrencyId sets the opportunity's currency."""
    eur = env.one("transactioncurrency", isocurrencycode="EUR")
    result = _qualify(
        env,
        _lead(env),
        CreateAccount=False,
        CreateContact=False,
        OpportunityCurrencyId={
            "@odata.type": f"{NAMESPACE}.transactioncurrency",
            "transactioncurrencyid": eur["transactioncurrencyid"],
        },
    )
    assert result.items[0][1]["_transactioncurrencyid_value"] == eur["transactioncurrencyid"]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True}, "Required parameter 'Status'"),
        ({"CreateAccount": True, "CreateContact": True, "Status": 3}, "Required parameter 'CreateOpportunity'"),
        ({"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 3, "Bogus": 1}, "Bogus"),
        ({"CreateAccount": "yes", "CreateContact": True, "CreateOpportunity": True, "Status": 3}, "true or false"),
        (
            {"CreateAccount": True, "CreateContact": True, "CreateOpportunity": True, "Status": 4},
            "4 is not a valid status code for state code LeadState.Qualified",
        ),
    ],
)
def test_qualify_lead_refuses_bad_parameters(env, params, message) -> None:
    """Missing, unknown or ill-typed parameters and a reason outside Qualified are 400s."""
    lead = _lead(env)
    with pytest.raises(BadRequest, match=message):
        env.run("QualifyLead", params, target=lead, bound_to="lead")
    assert env.get("lead", lead)["statecode"] == 0


def test_qualify_lead_without_company_name_cannot_create_an_account(env) -> None:
    """CreateAccount needs the lead's companyname."""
    lead = _lead(env, companyname=None)
    with pytest.raises(BadRequest, match="no companyname"):
        _qualify(env, lead)


# ---- opportunities ---------------------------------------------------------------------------------------


def _opportunity(env, lines=(("D0001", 2),)):
    return env.document("opportunity", lines=list(lines))


def test_win_opportunity_closes_it_as_won_with_an_opportunityclose(env) -> None:
    """WinOpportunity: statecode 1 / statuscode 3, actual value, and a completed opportunityclose."""
    opportunity = _opportunity(env)
    result = env.run(
        "WinOpportunity",
        {
            "Status": 3,
            "OpportunityClose": {
                "@odata.type": f"{NAMESPACE}.opportunityclose",
                "subject": "Won",
                "opportunityid@odata.bind": env.ref("opportunity", opportunity),
                "actualrevenue": 480,
            },
        },
    )
    assert result is None
    opportunity = env.get("opportunity", opportunity)
    assert (opportunity["statecode"], opportunity["statuscode"]) == (1, 3)
    assert opportunity["actualvalue"] == D(480) and opportunity["actualclosedate"] is not None
    close = env.one("opportunityclose", _opportunityid_value=opportunity["opportunityid"])
    assert (close["subject"], close["statecode"], close["actualrevenue"]) == ("Won", 1, D(480))


def test_lose_opportunity_takes_out_sold_and_refuses_closed_ones(env) -> None:
    """LoseOpportunity with Status 5 -> Lost/Out-Sold; closing it again is a 400."""
    opportunity = _opportunity(env)
    body = {
        "Status": 5,
        "OpportunityClose": {"subject": "Lost", "opportunityid@odata.bind": env.ref("opportunity", opportunity)},
    }
    env.run("LoseOpportunity", body)
    lost = env.get("opportunity", opportunity)
    assert (lost["statecode"], lost["statuscode"]) == (2, 5)
    with pytest.raises(BadRequest, match="already Lost: only Open opportunities"):
        env.run("WinOpportunity", {**body, "Status": 3})


def test_win_opportunity_refuses_a_lost_reason_and_a_missing_reference(env) -> None:
    """Status 4 belongs to Lost; an OpportunityClose without the opportunity bind is a 400."""
    opportunity = _opportunity(env)
    with pytest.raises(BadRequest, match="4 is not a valid status code for state code OpportunityState.Won"):
        env.run(
            "WinOpportunity",
            {"Status": 4, "OpportunityClose": {"opportunityid@odata.bind": env.ref("opportunity", opportunity)}},
        )
    with pytest.raises(BadRequest, match="must name the opportunity"):
        env.run("WinOpportunity", {"Status": 3, "OpportunityClose": {"subject": "Won"}})
    with pytest.raises(BadRequest, match="Invalid property 'bogus'"):
        env.run(
            "WinOpportunity",
            {
                "Status": 3,
                "OpportunityClose": {"bogus": 1, "opportunityid@odata.bind": env.ref("opportunity", opportunity)},
            },
        )


def test_generate_quote_from_opportunity_copies_customer_and_lines(env) -> None:
    """The Draft quote points at the opportunity and carries its products, prices and totals."""
    opportunity = _opportunity(env, [("D0001", 2), ("S0001", 3)])
    result = env.run(
        "GenerateQuoteFromOpportunity",
        {
            "OpportunityId": opportunity["opportunityid"],
            "ColumnSet": {"AllColumns": False, "Columns": ["name", "totalamount"]},
        },
    )
    assert isinstance(result, EntityResult) and result.entity == "quote"
    assert result.columns == ["name", "totalamount"]
    quote = result.row
    assert quote["_opportunityid_value"] == opportunity["opportunityid"] and quote["statecode"] == 0
    assert quote["_customerid_value"] == opportunity["_customerid_value"]
    assert [(line["quantity"], line["priceperunit"]) for line in env.lines("quote", quote)] == [
        (D(2), D(250)),
        (D(3), D(95)),
    ]
    assert quote["totalamount"] == opportunity["totalamount"] == D(785)


def test_generate_quote_refuses_a_closed_opportunity_and_unknown_columns(env) -> None:
    """Quotes come only from Open opportunities; ColumnSet names must exist."""
    opportunity = _opportunity(env)
    with pytest.raises(BadRequest, match="doesn't contain attribute with Name = 'nope'"):
        env.run(
            "GenerateQuoteFromOpportunity",
            {"OpportunityId": opportunity["opportunityid"], "ColumnSet": {"AllColumns": False, "Columns": ["nope"]}},
        )
    env.update("opportunity", opportunity, {"statecode": 2}, via_api=False)
    with pytest.raises(BadRequest, match="is Lost, not Open"):
        env.run("GenerateQuoteFromOpportunity", {"OpportunityId": opportunity["opportunityid"]})
    with pytest.raises(NotFound):
        env.run("GenerateQuoteFromOpportunity", {"OpportunityId": "00000000-0000-0000-0000-000000000001"})


# ---- quotes ----------------------------------------------------------------------------------------------


def _quote_close(env, quote, **values):
    return {"subject": "Closing", "quoteid@odata.bind": env.ref("quote", quote), **values}


def test_win_quote_needs_an_active_quote(env) -> None:
    """WinQuote: Draft is refused; Active -> Won (2/4) with a quoteclose."""
    quote = env.document("quote", lines=[("D0001", 1)])
    with pytest.raises(BadRequest, match="is Draft and cannot be won: only Active quotes"):
        env.run("WinQuote", {"Status": 4, "QuoteClose": _quote_close(env, quote)})
    quote = env.update("quote", quote, {"statecode": 1, "statuscode": 2})
    env.run("WinQuote", {"Status": -1, "QuoteClose": _quote_close(env, quote, subject="Won")})
    won = env.get("quote", quote)
    assert (won["statecode"], won["statuscode"]) == (2, 4) and won["closedon"] is not None
    assert env.one("quoteclose", _quoteid_value=quote["quoteid"])["subject"] == "Won"


@pytest.mark.parametrize("status", [5, 6, 7])
def test_close_quote_sets_the_closed_reason(env, status) -> None:
    """CloseQuote with Lost 5 / Canceled 6 / Revised 7 closes an Active quote."""
    quote = env.active_quote()
    env.run("CloseQuote", {"Status": status, "QuoteClose": _quote_close(env, quote)})
    closed = env.get("quote", quote)
    assert (closed["statecode"], closed["statuscode"]) == (3, status)


def test_close_quote_refuses_the_won_reason_and_a_won_quote(env) -> None:
    """Status 4 is not a Closed reason; a Won quote cannot be closed."""
    quote = env.active_quote()
    with pytest.raises(BadRequest, match="4 is not a valid status code for state code QuoteState.Closed"):
        env.run("CloseQuote", {"Status": 4, "QuoteClose": _quote_close(env, quote)})
    env.run("WinQuote", {"Status": 4, "QuoteClose": _quote_close(env, quote)})
    with pytest.raises(BadRequest, match="is Won and cannot be closed"):
        env.run("CloseQuote", {"Status": 5, "QuoteClose": _quote_close(env, quote)})


def test_revise_quote_copies_it_to_a_new_draft_revision(env) -> None:
    """Same quotenumber, revision + 1, lines copied, new dual-write number; the original is Closed/Revised."""
    quote = env.active_quote(lines=[("D0001", 2), ("D0004", 1)])
    result = env.run("ReviseQuote", {"QuoteId": quote["quoteid"], "ColumnSet": {"AllColumns": True}})
    revision = result.row
    assert result.columns is None
    assert (revision["statecode"], revision["statuscode"]) == (0, 1)
    assert revision["quotenumber"] == quote["quotenumber"] and revision["revisionnumber"] == 1
    assert revision["msdyn_quotenumber"] != quote["msdyn_quotenumber"]
    assert [line["sequencenumber"] for line in env.lines("quote", revision)] == [1, 2]
    assert revision["totalamount"] == quote["totalamount"] == D(1100)
    original = env.get("quote", quote)
    assert (original["statecode"], original["statuscode"]) == (3, 7)
    env.update("quote", revision, {"name": "Editable again"})


def test_revise_quote_refuses_drafts_won_and_already_revised_quotes(env) -> None:
    """Only Active or Lost/Canceled quotes can be revised, and each only once."""
    draft = env.document("quote")
    with pytest.raises(BadRequest, match="cannot be revised: it is Draft"):
        env.run("ReviseQuote", {"QuoteId": draft["quoteid"]})
    active = env.active_quote()
    env.run("ReviseQuote", {"QuoteId": active["quoteid"]})
    with pytest.raises(BadRequest, match="already been revised"):
        env.run("ReviseQuote", {"QuoteId": active["quoteid"]})


def test_revising_a_lost_quote_leaves_it_lost(env) -> None:
    """A Lost quote gets a Draft revision and keeps its own reason."""
    quote = env.active_quote()
    env.run("CloseQuote", {"Status": 5, "QuoteClose": _quote_close(env, quote)})
    revision = env.run("ReviseQuote", {"QuoteId": quote["quoteid"]}).row
    assert revision["revisionnumber"] == 1 and env.get("quote", quote)["statuscode"] == 5


def test_convert_quote_to_sales_order_wins_the_quote_and_copies_lines(env) -> None:
    """An Active quote becomes Won with a quoteclose; the order carries its header, lines and prices."""
    quote = env.active_quote(lines=[("D0001", 2), ("L0001", 10)], discountamount=D(20))
    result = env.run(
        "ConvertQuoteToSalesOrder",
        {
            "QuoteId": quote["quoteid"],
            "QuoteCloseSubject": "Accepted",
            "ColumnSet": {"AllColumns": False, "Columns": ["salesorderid", "ordernumber", "totalamount"]},
        },
    )
    assert result.entity == "salesorder" and result.columns == ["salesorderid", "ordernumber", "totalamount"]
    order = result.row
    assert order["_quoteid_value"] == quote["quoteid"] and (order["statecode"], order["statuscode"]) == (0, 1)
    assert order["_customerid_value"] == quote["_customerid_value"]
    assert order["ordernumber"].startswith("ORD-") and order["msdyn_salesordernumber"].startswith("CRM-SO")
    assert order["msdyn_isreadytosync"] and order["msdyn_quotationnumber"] == quote["msdyn_quotenumber"]
    assert order["totalamount"] == quote["totalamount"] == D(730)
    lines = env.lines("salesorder", order)
    assert [(line["sequencenumber"], line["quantity"]) for line in lines] == [(1, D(2)), (2, D(10))]
    assert all(line["_quotedetailid_value"] for line in lines)
    quote = env.get("quote", quote)
    assert (quote["statecode"], quote["statuscode"]) == (2, 4)
    assert env.one("quoteclose", _quoteid_value=quote["quoteid"])["subject"] == "Accepted"


def test_convert_quote_accepts_a_won_quote_without_a_second_close(env) -> None:
    """The SDK sample wins first and converts next: that works and adds no second quoteclose."""
    quote = env.active_quote()
    env.run("WinQuote", {"Status": 4, "QuoteClose": _quote_close(env, quote)})
    env.run("ConvertQuoteToSalesOrder", {"QuoteId": quote["quoteid"]})
    assert len(env.store.find("quoteclose", {"_quoteid_value": quote["quoteid"]})) == 1


def test_converting_a_draft_quote_is_refused(env) -> None:
    """A Draft quote must be activated before it can become an order."""
    quote = env.document("quote", lines=[("D0001", 1)])
    with pytest.raises(BadRequest, match="is Draft and cannot be converted"):
        env.run("ConvertQuoteToSalesOrder", {"QuoteId": quote["quoteid"]})
    assert env.store.find("salesorder", {"_quoteid_value": quote["quoteid"]}) == []


def test_convert_keeps_quote_prices_even_if_the_price_list_changed(env) -> None:
    """The order copies the quoted prices instead of re-pricing from the current list."""
    quote = env.active_quote()
    item = env.one("productpricelevel", _productid_value=env.product()["productid"])
    env.update("productpricelevel", item, {"amount": D(999)})
    order = env.run("ConvertQuoteToSalesOrder", {"QuoteId": quote["quoteid"]}).row
    assert env.lines("salesorder", order)[0]["priceperunit"] == D(250)


# ---- orders and invoices ---------------------------------------------------------------------------------


def _order(env):
    quote = env.active_quote(lines=[("D0001", 2), ("D0003", 1)])
    return env.run("ConvertQuoteToSalesOrder", {"QuoteId": quote["quoteid"]}).row


def test_convert_sales_order_to_invoice_copies_lines_and_leaves_the_order(env) -> None:
    """The invoice links to the order with the same lines and totals; the order keeps its state."""
    order = _order(env)
    invoice = env.run("ConvertSalesOrderToInvoice", {"SalesOrderId": order["salesorderid"]}).row
    assert invoice["_salesorderid_value"] == order["salesorderid"] and invoice["invoicenumber"].startswith("INV-")
    assert invoice["totalamount"] == order["totalamount"] == D(650)
    assert len(env.lines("invoice", invoice)) == 2
    assert all(line["_salesorderdetailid_value"] for line in env.lines("invoice", invoice))
    assert env.get("salesorder", order)["statecode"] == 0


def test_fulfill_sales_order_is_collection_bound_and_closes_the_order(env) -> None:
    """FulfillSalesOrder -> Fulfilled/Complete with an orderclose; fulfilling twice is refused."""
    order = _order(env)
    body = {
        "Status": 100001,
        "OrderClose": {"subject": "Done", "salesorderid@odata.bind": env.ref("salesorder", order)},
    }
    env.run("FulfillSalesOrder", body, bound_to="salesorder", collection=True)
    fulfilled = env.get("salesorder", order)
    assert (fulfilled["statecode"], fulfilled["statuscode"]) == (3, 100001) and fulfilled["datefulfilled"]
    close = env.one("orderclose", _salesorderid_value=order["salesorderid"])
    assert close["subject"] == "Done" and close["ordernumber"] == order["ordernumber"]
    with pytest.raises(BadRequest, match="is Fulfilled and cannot be fulfilled"):
        env.run("FulfillSalesOrder", body, bound_to="salesorder", collection=True)


def test_cancel_sales_order_and_invoicing_a_canceled_order(env) -> None:
    """CancelSalesOrder -> Canceled/No Money; a canceled order cannot be invoiced or canceled again."""
    order = _order(env)
    body = {"Status": 4, "OrderClose": {"salesorderid@odata.bind": env.ref("salesorder", order)}}
    env.run("CancelSalesOrder", body)
    canceled = env.get("salesorder", order)
    assert (canceled["statecode"], canceled["statuscode"]) == (2, 4)
    with pytest.raises(BadRequest, match="is Canceled and cannot be invoiced"):
        env.run("ConvertSalesOrderToInvoice", {"SalesOrderId": order["salesorderid"]})
    with pytest.raises(BadRequest, match="is Canceled and cannot be canceled"):
        env.run("CancelSalesOrder", body)


def test_fulfill_refuses_a_canceled_reason(env) -> None:
    """Status 4 is not a Fulfilled reason."""
    order = _order(env)
    with pytest.raises(BadRequest, match="4 is not a valid status code for state code SalesOrderState.Fulfilled"):
        env.run(
            "FulfillSalesOrder",
            {"Status": 4, "OrderClose": {"salesorderid@odata.bind": env.ref("salesorder", order)}},
            bound_to="salesorder",
            collection=True,
        )


def test_pricing_locks_toggle_ispricelocked(env) -> None:
    """Lock/UnlockSalesOrderPricing and Lock/UnlockInvoicePricing set ispricelocked."""
    order = _order(env)
    env.run("LockSalesOrderPricing", {"SalesOrderId": order["salesorderid"]})
    assert env.get("salesorder", order)["ispricelocked"] is True
    invoice = env.run("ConvertSalesOrderToInvoice", {"SalesOrderId": order["salesorderid"]}).row
    assert invoice["ispricelocked"] is True
    env.run("UnlockInvoicePricing", {"InvoiceId": invoice["invoiceid"]})
    assert env.get("invoice", invoice)["ispricelocked"] is False
    env.run("UnlockSalesOrderPricing", {"SalesOrderId": order["salesorderid"]})
    assert env.get("salesorder", order)["ispricelocked"] is False
    with pytest.raises(BadRequest, match="must be a GUID"):
        env.run("LockInvoicePricing", {"InvoiceId": "not-a-guid"})
