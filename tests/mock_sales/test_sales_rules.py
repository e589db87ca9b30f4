"""Business rules of mock Sales applied by the Store on every write (no HTTP layer)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from mock_sales import numbering
from mock_sales.pricing import document_totals, line_amounts
from sandbox.errors import BadRequest, Conflict

D = Decimal


# ---- state and status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entity,values,state,status",
    [
        ("lead", {"lastname": "Doe"}, 0, 1),
        ("account", {"name": "A"}, 0, 1),
        ("opportunity", {"name": "O"}, 0, 1),
        ("quote", {"name": "Q"}, 0, 1),
        ("salesorder", {"name": "S"}, 0, 1),
        ("invoice", {"name": "I"}, 0, 1),
        ("product", {"name": "P", "productnumber": "P-1"}, 2, 0),
        ("pricelevel", {"name": "PL"}, 0, 100001),
    ],
)
def test_new_rows_get_the_default_state_and_reason(env, entity, values, state, status) -> None:
    """A create without statecode/statuscode starts in the table's initial state (products in Draft)."""
    row = env.insert(entity, values)
    assert (row["statecode"], row["statuscode"]) == (state, status)


def test_statecode_alone_takes_the_default_reason_of_that_state(env) -> None:
    """PATCH {"statecode":2} on a lead disqualifies it as Lost (4)."""
    lead = env.insert("lead", {"lastname": "Doe"})
    assert env.update("lead", lead, {"statecode": 2})["statuscode"] == 4


def test_statuscode_alone_moves_to_its_state(env) -> None:
    """A reason that belongs to another state brings that state along (lead 6 -> Disqualified)."""
    lead = env.insert("lead", {"lastname": "Doe"})
    row = env.update("lead", lead, {"statuscode": 6})
    assert (row["statecode"], row["statuscode"]) == (2, 6)


def test_statuscode_of_another_state_is_refused_with_the_dataverse_wording(env) -> None:
    """statecode 1 with statuscode 1 on a quote is not a valid pair."""
    quote = env.document("quote")
    with pytest.raises(
        BadRequest,
        match=r"1 is not a valid status code for state code QuoteState\.Active on "
        r"quote with Id",
    ) as err:
        env.update("quote", quote, {"statecode": 1, "statuscode": 1})
    assert err.value.code == "0x80040203"


def test_unknown_statecode_is_refused(env) -> None:
    """A statecode the table does not have gets a 400."""
    account = env.account()
    with pytest.raises(BadRequest, match="7 is not a valid state code for account"):
        env.update("account", account, {"statecode": 7})


def test_reason_given_on_create_selects_its_state(env) -> None:
    """Creating a product with statuscode 1 (Active) makes it Active instead of Draft."""
    product = env.insert("product", {"name": "P", "productnumber": "P-2", "statuscode": 1})
    assert (product["statecode"], product["statuscode"]) == (0, 1)


def test_quote_cannot_be_created_as_won_over_the_api(env) -> None:
    """Creating straight into a state no update could reach is refused."""
    with pytest.raises(BadRequest, match="WinQuote"):
        env.insert("quote", {"name": "Q", "statecode": 2})


# ---- quotes ----------------------------------------------------------------------------------------------


def test_draft_quote_is_editable_and_activates_with_a_patch(env) -> None:
    """Draft quotes take any change; {"statecode":1,"statuscode":2} activates them."""
    quote = env.document("quote", lines=[("D0001", 1)])
    env.update("quote", quote, {"name": "Renamed", "description": "x"})
    active = env.update("quote", quote, {"statecode": 1, "statuscode": 2})
    assert (active["statecode"], active["statuscode"], active["name"]) == (1, 2, "Renamed")


def test_active_quote_refuses_edits_over_the_api(env) -> None:
    """Only Draft quotes are editable: changing the name of an Active quote is a 400 naming the column."""
    quote = env.active_quote()
    with pytest.raises(BadRequest, match=r"is Active and cannot be edited: only Draft quote.*attempted: name"):
        env.update("quote", quote, {"name": "Changed"})


def test_active_quote_accepts_a_patch_that_changes_nothing(env) -> None:
    """An upsert that repeats the stored values is not an edit (dual-write sends whole rows)."""
    quote = env.active_quote()
    env.update(
        "quote",
        quote,
        {"name": quote["name"], "discountamount": quote["discountamount"], "statecode": 1, "statuscode": 2},
    )


def test_active_quote_accepts_scm_status_columns(env) -> None:
    """Columns SCM keeps syncing (quotation status) stay writable after activation."""
    quote = env.active_quote()
    assert (
        env.update("quote", quote, {"msdyn_salesquotationstatus": 192350001})["msdyn_salesquotationstatus"] == 192350001
    )


def test_active_quote_reason_can_change_within_active(env) -> None:
    """In Progress (2) -> Open (3) stays inside the Active state and is allowed."""
    quote = env.active_quote()
    assert env.update("quote", quote, {"statuscode": 3})["statecode"] == 1


@pytest.mark.parametrize(
    "changes,hint",
    [
        ({"statecode": 2, "statuscode": 4}, "WinQuote"),
        ({"statecode": 3, "statuscode": 5}, "CloseQuote"),
        ({"statecode": 0, "statuscode": 1}, "ReviseQuote"),
    ],
)
def test_quote_state_changes_other_than_activation_need_actions(env, changes, hint) -> None:
    """Won, Closed and back-to-Draft are refused on PATCH with a pointer to the action to use."""
    quote = env.active_quote()
    with pytest.raises(BadRequest, match=hint):
        env.update("quote", quote, changes)


def test_actions_may_change_a_quote_the_api_may_not(env) -> None:
    """The Draft-only rule binds users: a write with via_api=False (an action) goes through."""
    quote = env.active_quote()
    assert env.update("quote", quote, {"statecode": 2, "statuscode": 4}, via_api=False)["statecode"] == 2
    assert env.update("quote", quote, {"name": "By an action"}, via_api=False)["name"] == "By an action"


def test_won_quote_cannot_be_edited(env) -> None:
    """Editing a Won quote is refused."""
    quote = env.active_quote()
    won = env.update("quote", quote, {"statecode": 2, "statuscode": 4}, via_api=False)
    with pytest.raises(BadRequest, match="is Won and cannot be edited"):
        env.update("quote", won, {"description": "late change"})


def test_lines_of_an_active_quote_cannot_be_added_changed_or_deleted(env) -> None:
    """quotedetail writes over the API need a Draft quote."""
    quote = env.active_quote()
    (line,) = env.lines("quote", quote)
    with pytest.raises(BadRequest, match="lines of the quote .* cannot be changed because the quote is Active"):
        env.insert("quotedetail", {"_quoteid_value": quote["quoteid"], "_productid_value": env.product()["productid"]})
    with pytest.raises(BadRequest, match="cannot be changed because the quote is Active"):
        env.update("quotedetail", line, {"quantity": D(5)})
    with pytest.raises(BadRequest, match="cannot be changed because the quote is Active"):
        env.delete("quotedetail", line)


def test_active_quote_cannot_be_deleted_over_the_api(env) -> None:
    """Deleting an Active quote is refused; a Draft quote is deleted with its lines."""
    active = env.active_quote()
    with pytest.raises(BadRequest, match="is Active and cannot be deleted"):
        env.delete("quote", active)
    draft = env.document("quote", lines=[("D0001", 1), ("D0003", 1)])
    env.delete("quote", draft)
    assert env.store.find("quotedetail", {"_quoteid_value": draft["quoteid"]}) == []


# ---- orders, invoices, opportunities, leads -------------------------------------------------------------


def test_active_and_submitted_orders_are_editable(env) -> None:
    """Active and Submitted orders take changes; submitting is a PATCH."""
    order = env.document("salesorder", lines=[("D0001", 1)])
    env.update("salesorder", order, {"description": "x"})
    submitted = env.update("salesorder", order, {"statecode": 1})
    assert submitted["statuscode"] == 3
    env.update("salesorder", order, {"description": "y"})


@pytest.mark.parametrize("state,status", [(2, 4), (3, 100001), (4, 100003)])
def test_canceled_fulfilled_and_invoiced_orders_are_read_only(env, state, status) -> None:
    """Closed orders refuse edits to ordinary columns and to their lines."""
    order = env.document("salesorder", lines=[("D0001", 1)])
    closed = env.update("salesorder", order, {"statecode": state, "statuscode": status}, via_api=False)
    with pytest.raises(BadRequest, match="cannot be edited"):
        env.update("salesorder", closed, {"name": "late"})
    (line,) = env.lines("salesorder", closed)
    with pytest.raises(BadRequest, match="cannot be changed because the salesorder is"):
        env.update("salesorderdetail", line, {"quantity": D(3)})


def test_processing_status_stays_writable_on_a_fulfilled_order(env) -> None:
    """SCM keeps pushing processing and line status after the order is Fulfilled (dual-write)."""
    order = env.document("salesorder", lines=[("D0001", 1)])
    closed = env.update("salesorder", order, {"statecode": 3, "statuscode": 100001}, via_api=False)
    env.update("salesorder", closed, {"msdyn_processingstatus": 192350006})
    (line,) = env.lines("salesorder", closed)
    assert env.update("salesorderdetail", line, {"msdyn_linestatus": 192350003})["msdyn_linestatus"] == 192350003


def test_order_moves_to_invoiced_with_a_patch_but_never_back(env) -> None:
    """Fulfilled -> Invoiced is allowed (sales-status map); Invoiced and Canceled are final."""
    order = env.document("salesorder", lines=[("D0001", 1)])
    fulfilled = env.update("salesorder", order, {"statecode": 3}, via_api=False)
    invoiced = env.update("salesorder", fulfilled, {"statecode": 4, "msdyn_processingstatus": 192350005})
    assert (invoiced["statecode"], invoiced["statuscode"]) == (4, 100003)
    with pytest.raises(BadRequest, match="cannot change from Invoiced to Active"):
        env.update("salesorder", invoiced, {"statecode": 0})


def test_paid_invoice_is_read_only(env) -> None:
    """Invoices are editable while Active; marking paid is a PATCH; a Paid invoice refuses edits."""
    invoice = env.document("invoice", lines=[("D0001", 1)])
    paid = env.update("invoice", invoice, {"statecode": 2, "statuscode": 100001})
    with pytest.raises(BadRequest, match="is Paid and cannot be edited"):
        env.update("invoice", paid, {"name": "x"})
    with pytest.raises(BadRequest, match="cannot change from Paid to Active"):
        env.update("invoice", paid, {"statecode": 0})


def test_closed_opportunity_is_read_only_but_can_be_reopened(env) -> None:
    """Won opportunities refuse edits; PATCH statecode 0 reopens them; PATCH to Won is refused."""
    opportunity = env.document("opportunity")
    with pytest.raises(BadRequest, match="WinOpportunity"):
        env.update("opportunity", opportunity, {"statecode": 1, "statuscode": 3})
    won = env.update("opportunity", opportunity, {"statecode": 1, "statuscode": 3}, via_api=False)
    with pytest.raises(BadRequest, match="is Won and cannot be edited"):
        env.update("opportunity", won, {"name": "x"})
    reopened = env.update("opportunity", won, {"statecode": 0})
    assert (reopened["statecode"], reopened["statuscode"]) == (0, 1)


def test_lead_cannot_be_qualified_with_a_patch(env) -> None:
    """Qualified needs QualifyLead; Disqualified and reactivation are plain updates."""
    lead = env.insert("lead", {"lastname": "Doe"})
    with pytest.raises(BadRequest, match="QualifyLead"):
        env.update("lead", lead, {"statecode": 1, "statuscode": 3})
    env.update("lead", lead, {"statecode": 2, "statuscode": 5})
    assert env.update("lead", lead, {"statecode": 0})["statuscode"] == 1


def test_account_state_changes_freely(env) -> None:
    """Tables without special rules go Active <-> Inactive with a PATCH."""
    account = env.account()
    assert env.update("account", account, {"statecode": 1})["statuscode"] == 2
    assert env.update("account", account, {"statecode": 0})["statuscode"] == 1


# ---- names, owners, companies ----------------------------------------------------------------------------


def test_fullname_is_first_plus_last_name_and_follows_changes(env) -> None:
    """lead and contact fullname = firstname + " " + lastname, recomputed on update."""
    lead = env.insert("lead", {"firstname": "Ada", "lastname": "Lovelace", "fullname": "ignored"})
    assert lead["fullname"] == "Ada Lovelace"
    assert env.update("lead", lead, {"firstname": "Augusta"})["fullname"] == "Augusta Lovelace"
    contact = env.insert("contact", {"lastname": "Hopper"})
    assert contact["fullname"] == "Hopper"


def test_new_rows_are_owned_by_the_callers_user_or_the_first_user(env) -> None:
    """The owner defaults to the systemuser named like the identity, else the first user (WhoAmI)."""
    admin = env.store.find("systemuser", limit=1)[0]
    assert env.insert("account", {"name": "A"})["_ownerid_value"] == admin["systemuserid"]
    row = env.store.insert("account", {"name": "B"}, identity="dualwrite", via_api=True)
    assert row["_ownerid_value"] == env.one("systemuser", domainname="dualwrite")["systemuserid"]


def test_company_defaults_from_the_customer_then_the_business_unit(env) -> None:
    """A quote for a usrt customer is usrt; an account with no hint gets the root business unit's usmf."""
    usrt = env.company("usrt")
    customer = env.insert("account", {"name": "Retail customer", "_msdyn_company_value": usrt["cdm_companyid"]})
    quote = env.insert(
        "quote", {"name": "Q", "_customerid_value": customer["accountid"], "_customerid_type": "account"}
    )
    assert quote["_msdyn_company_value"] == usrt["cdm_companyid"]
    assert env.insert("account", {"name": "A"})["_msdyn_company_value"] == env.company()["cdm_companyid"]


def test_company_cannot_change_once_saved(env) -> None:
    """msdyn_company is read-only after save for API writes."""
    account = env.account()
    with pytest.raises(BadRequest, match="company"):
        env.update("account", account, {"_msdyn_company_value": env.company("usrt")["cdm_companyid"]})


def test_integration_key_duplicates_are_conflicts(env) -> None:
    """A second US-001 in usmf collides with the alternate key; the same number in usrt does not."""
    with pytest.raises(Conflict):
        env.insert(
            "account",
            {"name": "Dup", "accountnumber": "US-001", "_msdyn_company_value": env.company()["cdm_companyid"]},
        )
    env.insert(
        "account",
        {"name": "Other", "accountnumber": "US-001", "_msdyn_company_value": env.company("usrt")["cdm_companyid"]},
    )


def test_contact_used_as_quote_customer_becomes_sellable(env) -> None:
    """dual-write: a contact on a quote, order or invoice is (and stays) sellable."""
    contact = env.insert("contact", {"firstname": "Jo", "lastname": "Buyer"})
    assert not contact["msdyn_sellable"]
    env.insert("quote", {"name": "Q", "_customerid_value": contact["contactid"], "_customerid_type": "contact"})
    assert env.get("contact", contact)["msdyn_sellable"]


def test_product_number_defaults_to_company_code_plus_item_and_is_required(env) -> None:
    """productnumber = company code + msdyn_productnumber when not given; neither given is a 400."""
    product = env.insert(
        "product",
        {
            "name": "New",
            "msdyn_productnumber": "X0001",
            "_msdyn_company_value": env.company()["cdm_companyid"],
            "_defaultuomid_value": env.one("uom", msdyn_symbol="ea")["uomid"],
        },
    )
    assert product["productnumber"] == "usmfX0001"
    assert product["_defaultuomscheduleid_value"] == env.one("uomschedule")["uomscheduleid"]
    with pytest.raises(BadRequest, match="productnumber"):
        env.insert("product", {"name": "No number"})


def test_price_list_item_needs_a_unit_of_the_products_unit_group(env) -> None:
    """A unit from another unit group is refused on a price list item."""
    other_group = env.insert("uomschedule", {"name": "Time"})
    minute = env.insert("uom", {"name": "min", "_uomscheduleid_value": other_group["uomscheduleid"]})
    with pytest.raises(BadRequest, match="does not belong to the unit group"):
        env.insert(
            "productpricelevel",
            {
                "_pricelevelid_value": env.price_list["pricelevelid"],
                "_productid_value": env.product()["productid"],
                "_uomid_value": minute["uomid"],
            },
        )


# ---- pricing and totals ----------------------------------------------------------------------------------


def test_line_price_comes_from_the_price_list_item(env) -> None:
    """priceperunit = the productpricelevel amount for the product and unit on the header's price list."""
    item = env.one("productpricelevel", _productid_value=env.product()["productid"])
    env.update("productpricelevel", item, {"amount": D("199.99")})
    quote = env.document("quote", lines=[("D0001", 2)])
    (line,) = env.lines("quote", quote)
    assert line["priceperunit"] == D("199.99")
    assert line["baseamount"] == line["extendedamount"] == D("399.98")


def test_line_price_falls_back_to_the_product_price(env) -> None:
    """A product missing from the price list is priced at product.price."""
    product = env.insert(
        "product",
        {
            "name": "Unlisted",
            "productnumber": "U-1",
            "price": D("12.50"),
            "_defaultuomid_value": env.one("uom", msdyn_symbol="ea")["uomid"],
        },
    )
    quote = env.document("quote")
    line = env.insert(
        "quotedetail", {"_quoteid_value": quote["quoteid"], "_productid_value": product["productid"], "quantity": D(4)}
    )
    assert line["priceperunit"] == D("12.50") and line["extendedamount"] == D("50.00")


def test_overridden_price_is_kept_and_a_list_priced_line_ignores_a_sent_price(env) -> None:
    """ispriceoverridden keeps the given priceperunit; without it the list price wins."""
    quote = env.document("quote")
    product = env.product()["productid"]
    overridden = env.insert(
        "quotedetail",
        {
            "_quoteid_value": quote["quoteid"],
            "_productid_value": product,
            "ispriceoverridden": True,
            "priceperunit": D("10"),
            "quantity": D(1),
        },
    )
    listed = env.insert(
        "quotedetail",
        {"_quoteid_value": quote["quoteid"], "_productid_value": product, "priceperunit": D("10"), "quantity": D(1)},
    )
    assert overridden["priceperunit"] == D("10") and listed["priceperunit"] == D("250")
    assert env.update("quotedetail", listed, {"priceperunit": D("1")})["priceperunit"] == D("250")


def test_write_in_product_needs_a_description_and_no_product(env) -> None:
    """isproductoverridden + productdescription makes a write-in line priced as given."""
    quote = env.document("quote")
    line = env.insert(
        "quotedetail",
        {
            "_quoteid_value": quote["quoteid"],
            "isproductoverridden": True,
            "productdescription": "Custom cabling",
            "priceperunit": D("80"),
            "quantity": D(2),
        },
    )
    assert line["extendedamount"] == D("160") and line["_productid_value"] is None
    with pytest.raises(BadRequest, match="needs a productdescription"):
        env.insert("quotedetail", {"_quoteid_value": quote["quoteid"], "isproductoverridden": True})
    with pytest.raises(BadRequest, match="cannot also reference an existing product"):
        env.insert(
            "quotedetail",
            {
                "_quoteid_value": quote["quoteid"],
                "isproductoverridden": True,
                "productdescription": "x",
                "_productid_value": env.product()["productid"],
            },
        )


def test_line_without_product_or_header_is_refused(env) -> None:
    """A line needs its document and a product (or a write-in)."""
    quote = env.document("quote")
    with pytest.raises(BadRequest, match="needs a productid"):
        env.insert("quotedetail", {"_quoteid_value": quote["quoteid"]})
    with pytest.raises(BadRequest, match="needs its quote"):
        env.insert("quotedetail", {"_productid_value": env.product()["productid"]})


def test_line_unit_defaults_from_the_product_and_must_be_in_its_group(env) -> None:
    """uomid defaults to the product's default unit; a unit of another group is refused; a line of a service
    product is of the lines' type 1 "Product" (the lines' own choice, not the product table's "Services")."""
    quote = env.document("quote", lines=[("S0001", 3)])
    (line,) = env.lines("quote", quote)
    assert line["_uomid_value"] == env.one("uom", msdyn_symbol="hr")["uomid"]
    assert line["producttypecode"] == 1
    other_group = env.insert("uomschedule", {"name": "Time"})
    minute = env.insert("uom", {"name": "min", "_uomscheduleid_value": other_group["uomscheduleid"]})
    with pytest.raises(BadRequest, match="does not belong to the unit group"):
        env.insert(
            "quotedetail",
            {
                "_quoteid_value": quote["quoteid"],
                "_productid_value": env.product()["productid"],
                "_uomid_value": minute["uomid"],
            },
        )


def test_retired_product_cannot_be_added_over_the_api(env) -> None:
    """Retired products are refused on new lines."""
    product = env.product("D0003")
    env.update("product", product, {"statecode": 1})
    quote = env.document("quote")
    with pytest.raises(BadRequest, match="is retired"):
        env.insert("quotedetail", {"_quoteid_value": quote["quoteid"], "_productid_value": product["productid"]})


def test_header_totals_follow_line_creates_updates_and_deletes(env) -> None:
    """totallineitemamount and totalamount are recomputed after every line write."""
    quote = env.document("quote", lines=[("D0001", 2), ("D0003", 1)])
    assert quote["totallineitemamount"] == D("650") and quote["totalamount"] == D("650")
    first, second = env.lines("quote", quote)
    env.update("quotedetail", first, {"quantity": D(1), "manualdiscountamount": D("50"), "tax": D("10")})
    quote = env.get("quote", quote)
    assert quote["totallineitemamount"] == D("350")  # (250 - 50) + 150, tax excluded
    assert (quote["totaltax"], quote["totalamount"], quote["totallineitemdiscountamount"]) == (D(10), D(360), D(50))
    env.delete("quotedetail", second)
    assert env.get("quote", quote)["totalamount"] == D("210")


def test_header_discount_and_freight_enter_the_total(env) -> None:
    """totalamount = detail - (detail * discount% + discount) + freight + tax."""
    quote = env.document("quote", lines=[("D0001", 4)])  # detail 1000
    quote = env.update("quote", quote, {"discountpercentage": D(10), "discountamount": D(50), "freightamount": D(25)})
    assert quote["totalamountlessfreight"] == D("850")
    assert quote["totaldiscountamount"] == D("150")
    assert quote["totalamount"] == D("875")
    assert quote["totalamount_base"] == D("875")


def test_total_formulas_are_consistent() -> None:
    """line_amounts and document_totals implement the documented formulas."""
    line = {
        "priceperunit": D(10),
        "quantity": D(3),
        "volumediscountamount": D(1),
        "manualdiscountamount": D(2),
        "tax": D(4),
    }
    amounts = line_amounts(line)
    assert amounts == {"baseamount": D(30), "extendedamount": D(29)}
    totals = document_totals({"discountpercentage": D(50), "freightamount": D(5)}, [{**line, **amounts}])
    assert totals["totallineitemamount"] == D(25) and totals["totallineitemdiscountamount"] == D(5)
    assert totals["totalamount"] == D("12.5") + D(5) + D(4)


def test_line_currency_comes_from_the_header_and_base_amounts_use_its_rate(env) -> None:
    """Lines inherit the header's currency; _base twins divide by the exchange rate (EUR 0.92)."""
    eur = env.one("transactioncurrency", isocurrencycode="EUR")
    euro_list = env.insert(
        "pricelevel", {"name": "Contoso EUR", "_transactioncurrencyid_value": eur["transactioncurrencyid"]}
    )
    quote = env.insert("quote", {"name": "EUR quote", "_pricelevelid_value": euro_list["pricelevelid"]})
    assert quote["_transactioncurrencyid_value"] == eur["transactioncurrencyid"]
    line = env.insert(
        "quotedetail",
        {
            "_quoteid_value": quote["quoteid"],
            "_productid_value": env.product()["productid"],
            "quantity": D(1),
            "_transactioncurrencyid_value": None,
        },
    )
    assert line["_transactioncurrencyid_value"] == eur["transactioncurrencyid"]
    assert line["extendedamount_base"] == (D(250) / D("0.92")).quantize(D("0.0001"))


def test_price_list_in_another_currency_is_refused(env) -> None:
    """A USD price list on a EUR quote is a 400."""
    eur = env.one("transactioncurrency", isocurrencycode="EUR")
    with pytest.raises(BadRequest, match="currency of the price list"):
        env.insert(
            "quote",
            {
                "name": "Q",
                "_pricelevelid_value": env.price_list["pricelevelid"],
                "_transactioncurrencyid_value": eur["transactioncurrencyid"],
            },
        )


def test_changing_the_price_list_reprices_lines_unless_pricing_is_locked(env) -> None:
    """A new price list re-prices list-priced lines; a locked order keeps its prices."""
    usd = env.one("transactioncurrency", isocurrencycode="USD")["transactioncurrencyid"]
    cheap = env.insert("pricelevel", {"name": "Cheap", "_transactioncurrencyid_value": usd})
    env.insert(
        "productpricelevel",
        {
            "_pricelevelid_value": cheap["pricelevelid"],
            "_productid_value": env.product()["productid"],
            "_uomid_value": env.one("uom", msdyn_symbol="ea")["uomid"],
            "amount": D(100),
        },
    )
    order = env.document("salesorder", lines=[("D0001", 1)])
    order = env.update("salesorder", order, {"_pricelevelid_value": cheap["pricelevelid"]})
    assert env.lines("salesorder", order)[0]["priceperunit"] == D(100)
    assert env.get("salesorder", order)["totalamount"] == D(100)
    locked = env.document("salesorder", lines=[("D0001", 1)])
    locked = env.update("salesorder", locked, {"ispricelocked": True})
    env.update("salesorder", locked, {"_pricelevelid_value": cheap["pricelevelid"]})
    assert env.lines("salesorder", locked)[0]["priceperunit"] == D(250)


def test_privileged_writers_may_supply_the_line_amounts(env) -> None:
    """Amounts given explicitly (dual-write passes SCM's line amount) are kept on that write."""
    quote = env.document("quote")
    line = env.insert(
        "quotedetail",
        {
            "_quoteid_value": quote["quoteid"],
            "_productid_value": env.product()["productid"],
            "ispriceoverridden": True,
            "priceperunit": D(100),
            "quantity": D(1),
            "extendedamount": D(90),
        },
        via_api=False,
    )
    assert line["extendedamount"] == D(90) and line["baseamount"] == D(100)


# ---- numbering -------------------------------------------------------------------------------------------


def test_documents_get_dataverse_auto_numbers(env) -> None:
    """quotenumber / ordernumber / invoicenumber look like QUO-01001-AB12CD and count up."""
    first, second = env.document("quote"), env.document("quote")
    assert re.fullmatch(r"QUO-01001-[A-Z0-9]{6}", first["quotenumber"])
    assert second["quotenumber"].startswith("QUO-01002-")
    assert re.fullmatch(r"ORD-01001-[A-Z0-9]{6}", env.document("salesorder")["ordernumber"])
    assert re.fullmatch(r"INV-01001-[A-Z0-9]{6}", env.document("invoice")["invoicenumber"])


def test_sales_born_documents_get_prefixed_dual_write_numbers_per_company(env) -> None:
    """msdyn_quotenumber/msdyn_salesordernumber use Sales' own CRM- prefix, counted per company."""
    assert env.document("quote")["msdyn_quotenumber"] == "CRM-Q000001"
    assert env.document("quote")["msdyn_quotenumber"] == "CRM-Q000002"
    assert env.document("salesorder")["msdyn_salesordernumber"] == "CRM-SO000001"
    usrt = env.company("usrt")["cdm_companyid"]
    assert env.insert("quote", {"name": "Q", "_msdyn_company_value": usrt})["msdyn_quotenumber"] == "CRM-Q000001"
    assert numbering.SALES_DOCUMENT_PREFIXES["quote"][1] == "CRM-Q"


def test_given_dual_write_number_is_kept_and_never_handed_out_again(env) -> None:
    """A number supplied by SCM stays; a hand-typed number from Sales' range is skipped."""
    assert env.document("quote", msdyn_quotenumber="000123")["msdyn_quotenumber"] == "000123"
    env.document("quote", msdyn_quotenumber="CRM-Q000001")
    assert env.document("quote")["msdyn_quotenumber"] == "CRM-Q000002"


def test_invoices_born_in_sales_get_no_dual_write_number(env) -> None:
    """Invoices come from SCM in dual-write, so Sales does not number them msdyn-wise."""
    assert env.document("invoice")["msdyn_invoicenumber"] is None


def test_lines_are_numbered_per_document(env) -> None:
    """sequencenumber and lineitemnumber count 1, 2, 3 within each document; a given number is kept."""
    quote = env.document("quote", lines=[("D0001", 1), ("D0003", 1)])
    other = env.document("quote", lines=[("D0001", 1)])
    assert [line["sequencenumber"] for line in env.lines("quote", quote)] == [1, 2]
    assert [line["lineitemnumber"] for line in env.lines("quote", quote)] == [1, 2]
    assert env.lines("quote", other)[0]["sequencenumber"] == 1
    line = env.insert(
        "quotedetail",
        {"_quoteid_value": quote["quoteid"], "_productid_value": env.product()["productid"], "sequencenumber": 10},
    )
    assert line["sequencenumber"] == 10
    assert (
        env.insert("quotedetail", {"_quoteid_value": quote["quoteid"], "_productid_value": env.product()["productid"]})[
            "sequencenumber"
        ]
        == 11
    )
    with pytest.raises(Conflict):
        env.insert(
            "quotedetail",
            {"_quoteid_value": quote["quoteid"], "_productid_value": env.product()["productid"], "sequencenumber": 1},
        )


def test_line_cannot_move_to_another_document(env) -> None:
    """Changing a line's quoteid is refused."""
    quote, other = env.document("quote", lines=[("D0001", 1)]), env.document("quote")
    (line,) = env.lines("quote", quote)
    with pytest.raises(BadRequest, match="cannot be moved"):
        env.update("quotedetail", line, {"_quoteid_value": other["quoteid"]})
