"""The lead-to-cash actions of mock Sales (``docs/reference/dataverse-web-api.md`` section 15).

Every handler writes through ``ctx.store`` as the caller (``identity=ctx.identity``) with ``via_api=False``,
so the rules in :mod:`mock_sales.rules` still fill numbers, prices and totals and record every change in
the outbox, while user-only restrictions (Draft-only editing, no Won via PATCH) do not block the action's
own state changes. Preconditions are checked here and answered with 400 and a message naming the problem.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mock_sales.pricing import DOCUMENT_LINES
from mock_sales.schema import NAMESPACE, STATE_MODELS
from mock_sales.status import resolve_state
from sandbox.errors import BadRequest, NotFound
from sandbox.odata.actions import ActionContext, ActionHandler, ActionRegistry, CollectionResult, EntityResult
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT, PAYLOAD_INVALID, UNSPECIFIED
from sandbox.odata.model import GUID, EntityType
from sandbox.odata.store import Row, Store
from sandbox.odata.urls import is_guid

COLUMN_SET = f"{NAMESPACE}.ColumnSet"
CRM_BASE_COLLECTION = f"Collection({NAMESPACE}.crmbaseentity)"

#: columns never copied from one document (or line) to the next: identity, state, numbers, computed values
_NOT_COPIED = frozenset(
    {
        "statecode",
        "statuscode",
        "createdon",
        "modifiedon",
        "_ownerid_value",
        "exchangerate",
        "quotenumber",
        "ordernumber",
        "invoicenumber",
        "revisionnumber",
        "msdyn_quotenumber",
        "msdyn_salesordernumber",
        "msdyn_invoicenumber",
        "msdyn_isreadytosync",
        "msdyn_processingstatus",
        "msdyn_salesquotationstatus",
        "msdyn_quotationcreationmethod",
        "msdyn_quotationownership",
        "_msdyn_generatedsalesordernumber_value",
        "closedon",
        "datefulfilled",
        "submitdate",
        "effectivefrom",
        "effectiveto",
        "expireson",
        "_quoteid_value",
        "_opportunityid_value",
        "_salesorderid_value",
        "_invoiceid_value",
        "_quotedetailid_value",
        "_salesorderdetailid_value",
        "totalamount",
        "totalamountlessfreight",
        "totallineitemamount",
        "totaldiscountamount",
        "totallineitemdiscountamount",
        "totaltax",
        "baseamount",
        "extendedamount",
        "msdyn_linestatus",
        "quantityshipped",
        "quantitybackordered",
        "quantitycancelled",
        "msdyn_reservationid",
        "actualvalue",
        "actualclosedate",
        "estimatedvalue",
        "estimatedclosedate",
        "closeprobability",
    }
)


# ---- parameter helpers ----------------------------------------------------------------------------------


def check_params(action: str, params: dict[str, Any], allowed: Mapping[str, str], required: Iterable[str]) -> None:
    """Refuse unknown and missing parameters the way Dataverse does (400)."""
    if not isinstance(params, dict):
        raise BadRequest(f"The body of {action} must be a JSON object.", PAYLOAD_INVALID)
    for name in params:
        if name.startswith("@"):
            continue
        if name not in allowed:
            raise BadRequest(
                f"Request message has unresolved parameters: '{name}' is not a parameter of "
                f"{action} (expected {', '.join(sorted(allowed))}).",
                INVALID_ARGUMENT,
            )
    missing = [name for name in required if params.get(name) is None]
    if missing:
        raise BadRequest(f"Required parameter '{missing[0]}' of {action} is missing.", INVALID_ARGUMENT)


def int_param(action: str, params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(str(value))
        except ValueError:
            raise BadRequest(
                f"Parameter '{name}' of {action} must be an integer, not {value!r}.", INVALID_ARGUMENT
            ) from None
    return value


def bool_param(action: str, params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if not isinstance(value, bool):
        raise BadRequest(f"Parameter '{name}' of {action} must be true or false, not {value!r}.", INVALID_ARGUMENT)
    return value


def row_by_id(ctx: ActionContext, action: str, entity_name: str, value: Any, param: str) -> Row:
    """The row a GUID parameter (``QuoteId``) or an entity reference names."""
    if isinstance(value, dict) or (isinstance(value, str) and "(" in value):
        entity, referenced = ctx.resolve_reference(value)
        if entity.name != entity_name:
            raise BadRequest(
                f"Parameter '{param}' of {action} must reference a {entity_name}, not a {entity.name}.",
                INVALID_ARGUMENT,
            )
        return referenced
    if not isinstance(value, str) or not is_guid(value):
        raise BadRequest(f"Parameter '{param}' of {action} must be a GUID, not {value!r}.", INVALID_ARGUMENT)
    row = ctx.store.get(entity_name, {f"{entity_name}id": value.lower()})
    if row is None:
        raise NotFound(f"Entity '{entity_name}' With Id = {value} Does Not Exist")
    return row


def column_set(action: str, value: Any, entity: EntityType) -> list[str] | None:
    """``{"AllColumns": true}`` -> None (all); ``{"AllColumns": false, "Columns": [...]}`` -> the columns."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(
            f"Parameter 'ColumnSet' of {action} must be an object with AllColumns/Columns.", INVALID_ARGUMENT
        )
    if value.get("AllColumns"):
        return None
    columns = value.get("Columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(f"ColumnSet.Columns of {action} must be a list of column names.", INVALID_ARGUMENT)
    unknown = [c for c in columns if c not in entity.properties or entity.properties[c].hidden]
    if unknown:
        raise BadRequest(
            f"'{entity.name}' entity doesn't contain attribute with Name = '{unknown[0]}'.", INVALID_ARGUMENT
        )
    return list(columns)


def close_activity(ctx: ActionContext, action: str, value: Any, close_entity: str, document: str) -> tuple[Row, Row]:
    """Parse an ``OpportunityClose``/``QuoteClose``/``OrderClose`` parameter -> (document row, close values)."""
    param = {"opportunityclose": "OpportunityClose", "quoteclose": "QuoteClose", "orderclose": "OrderClose"}[
        close_entity
    ]
    if not isinstance(value, dict):
        raise BadRequest(f"Parameter '{param}' of {action} must be a {close_entity} object.", INVALID_ARGUMENT)
    entity = ctx.store.entity(close_entity)
    nav = f"{document}id"
    document_row: Row | None = None
    values: Row = {}
    for name, item in value.items():
        if name == "@odata.type":
            if str(item).lstrip("#") != f"{NAMESPACE}.{close_entity}":
                raise BadRequest(f"Parameter '{param}' must be of type {NAMESPACE}.{close_entity}.", PAYLOAD_INVALID)
            continue
        if name == f"{nav}@odata.bind" or name == nav:
            if name == nav and isinstance(item, str) and is_guid(item):
                document_row = row_by_id(ctx, action, document, item, f"{param}.{nav}")
            else:
                target, document_row = ctx.resolve_reference(item)
                if target.name != document:
                    raise BadRequest(
                        f"'{param}.{nav}' must reference a {document}, not a {target.name}.", INVALID_ARGUMENT
                    )
            continue
        if name.startswith("@") or "@" in name:
            continue
        prop = entity.properties.get(name)
        if prop is None or prop.hidden or prop.lookup is not None or name in entity.key:
            raise BadRequest(
                f"Invalid property '{name}' was found in entity '{NAMESPACE}.{close_entity}'.", UNSPECIFIED
            )
        values[name] = _coerce(prop.type, item)
    if document_row is None:
        raise BadRequest(
            f"Parameter '{param}' of {action} must name the {document} with "
            f'"{nav}@odata.bind": "/{ctx.store.entity(document).entity_set}(<id>)".',
            INVALID_ARGUMENT,
        )
    return document_row, values


def _coerce(edm_type: str, value: Any) -> Any:
    if value is None:
        return None
    if edm_type == "Edm.Date":
        return _date(value)
    if edm_type == "Edm.Decimal":
        return Decimal(str(value))
    return value


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadRequest(f"'{value}' is not a valid date.", INVALID_ARGUMENT) from None


def _status(entity_name: str, state: int, status: int | None, row_id: Any) -> int:
    return resolve_state(entity_name, state, status, row_id)[1]


def copy_columns(source: Row, source_entity: str, target_entity: str, store: Store, skip: Iterable[str] = ()) -> Row:
    """The columns both tables share, minus identity, state, numbers and computed values."""
    source_props = store.entity(source_entity).properties
    target = store.entity(target_entity)
    excluded = _NOT_COPIED | set(skip) | {target.key[0], f"{source_entity}id"}
    return {
        name: source.get(name)
        for name in target.properties
        if name in source_props and name not in excluded and not name.endswith("_base") and source.get(name) is not None
    }


def copy_lines(
    ctx: ActionContext,
    source_document: str,
    source_id: str,
    target_document: str,
    target_id: str,
    link: str | None = None,
) -> list[Row]:
    """Copy the lines of one document to another, keeping prices and line numbers."""
    source_line, source_fk = DOCUMENT_LINES[source_document]
    target_line, target_fk = DOCUMENT_LINES[target_document]
    created = []
    for line in ctx.store.find(source_line, {source_fk: source_id}, order_by=["sequencenumber"]):
        values = copy_columns(line, source_line, target_line, ctx.store, skip=(source_fk,))
        values[target_fk] = target_id
        if link:
            values[link] = line[f"{source_line}id"]
        created.append(
            ctx.store.insert(target_line, values, identity=ctx.identity, via_api=False, extra={"keep_prices": True})
        )
    return created


def _write(ctx: ActionContext, entity: str, row: Row, changes: Row) -> Row:
    return ctx.store.update(entity, row, changes, identity=ctx.identity, via_api=False)


def _insert(ctx: ActionContext, entity: str, values: Row) -> Row:
    return ctx.store.insert(entity, values, identity=ctx.identity, via_api=False)


def _fresh(ctx: ActionContext, entity: str, row: Row) -> Row:
    return ctx.store.require(entity, {f"{entity}id": row[f"{entity}id"]})


def _state_label(entity: str, row: Row) -> str:
    return STATE_MODELS[entity].state_label(row.get("statecode"))


# ---- actions ------------------------------------------------------------------------------------------


def qualify_lead(ctx: ActionContext, lead: Row | None, params: dict[str, Any]) -> CollectionResult:
    """Qualify a lead: create the requested account, contact and opportunity and close the lead as Qualified."""
    action = "QualifyLead"
    assert lead is not None
    if lead.get("statecode") != 0:
        raise BadRequest(
            f"The lead with Id {lead['leadid']} is {_state_label('lead', lead)} and cannot be "
            "qualified: only Open leads can be qualified.",
            INVALID_ARGUMENT,
        )
    create_account, create_contact, create_opportunity = (
        bool_param(action, params, n) for n in ("CreateAccount", "CreateContact", "CreateOpportunity")
    )
    status = _status("lead", 1, int_param(action, params, "Status"), lead["leadid"])
    currency_id = lead.get("_transactioncurrencyid_value")
    if params.get("OpportunityCurrencyId") is not None:
        currency_id = row_by_id(
            ctx, action, "transactioncurrency", params["OpportunityCurrencyId"], "OpportunityCurrencyId"
        )["transactioncurrencyid"]
    lead_id = lead["leadid"]
    created: list[tuple[str, Row]] = []
    account: Row | None = None
    contact: Row | None = None
    if create_account:
        if not lead.get("companyname"):
            raise BadRequest("QualifyLead cannot create an account: the lead has no companyname.", INVALID_ARGUMENT)
        if lead.get("_parentaccountid_value"):
            raise BadRequest(
                "QualifyLead cannot create an account: the lead already has a parent account (parentaccountid).",
                INVALID_ARGUMENT,
            )
        values = {
            "name": lead["companyname"],
            "_originatingleadid_value": lead_id,
            "_transactioncurrencyid_value": lead.get("_transactioncurrencyid_value"),
            **{
                k: lead.get(k)
                for k in ("emailaddress1", "telephone1", "websiteurl", "description", "numberofemployees", "revenue")
            },
            **{k: lead.get(k) for k in _address_columns("address1")},
        }
        account = _insert(ctx, "account", values)
        created.append(("account", account))
    if create_contact:
        if not (lead.get("firstname") or lead.get("lastname")):
            raise BadRequest(
                "QualifyLead cannot create a contact: the lead has no first or last name.", INVALID_ARGUMENT
            )
        parent = account or (
            ctx.store.get("account", {"accountid": lead["_parentaccountid_value"]})
            if lead.get("_parentaccountid_value")
            else None
        )
        values = {
            k: lead.get(k)
            for k in (
                "firstname",
                "lastname",
                "middlename",
                "jobtitle",
                "salutation",
                "emailaddress1",
                "telephone1",
                "mobilephone",
                "websiteurl",
                *_address_columns("address1"),
            )
        }
        values.update(
            {
                "_originatingleadid_value": lead_id,
                "_transactioncurrencyid_value": lead.get("_transactioncurrencyid_value"),
            }
        )
        if parent is not None:
            values.update({"_parentcustomerid_value": parent["accountid"], "_parentcustomerid_type": "account"})
        contact = _insert(ctx, "contact", values)
        created.append(("contact", contact))
        if account is not None:
            account = _write(ctx, "account", account, {"_primarycontactid_value": contact["contactid"]})
            created[0] = ("account", account)
    opportunity: Row | None = None
    if create_opportunity:
        customer = _opportunity_customer(ctx, action, params, lead, account, contact)
        values = {
            "name": lead.get("subject") or f"Opportunity for {lead.get('fullname') or lead.get('companyname')}",
            "description": lead.get("description"),
            "_originatingleadid_value": lead_id,
            "_transactioncurrencyid_value": currency_id,
            "estimatedvalue": lead.get("estimatedamount"),
            "estimatedclosedate": lead.get("estimatedclosedate"),
        }
        if customer is not None:
            values.update({"_customerid_value": customer[1], "_customerid_type": customer[0]})
            if customer[0] == "account":
                values["_parentaccountid_value"] = customer[1]
        if contact is not None:
            values["_parentcontactid_value"] = contact["contactid"]
        opportunity = _insert(ctx, "opportunity", values)
        created.append(("opportunity", opportunity))
    changes: Row = {"statecode": 1, "statuscode": status}
    if opportunity is not None:
        changes["_qualifyingopportunityid_value"] = opportunity["opportunityid"]
    if account is not None and not lead.get("_parentaccountid_value"):
        changes["_parentaccountid_value"] = account["accountid"]
    if contact is not None and not lead.get("_parentcontactid_value"):
        changes["_parentcontactid_value"] = contact["contactid"]
    _write(ctx, "lead", lead, changes)
    return CollectionResult(items=created, context=CRM_BASE_COLLECTION)


def _address_columns(prefix: str) -> list[str]:
    return [f"{prefix}_{p}" for p in ("line1", "line2", "line3", "city", "stateorprovince", "postalcode", "country")]


def _opportunity_customer(
    ctx: ActionContext, action: str, params: dict[str, Any], lead: Row, account: Row | None, contact: Row | None
) -> tuple[str, str] | None:
    """The opportunity's customer: OpportunityCustomerId, else the new account/contact, else the lead's parents."""
    given = params.get("OpportunityCustomerId")
    if given is not None:
        entity, row = ctx.resolve_reference(given)
        if entity.name not in ("account", "contact"):
            raise BadRequest(
                f"OpportunityCustomerId must reference an account or a contact, not a {entity.name}.", INVALID_ARGUMENT
            )
        return entity.name, row[f"{entity.name}id"]
    if account is not None:
        return "account", account["accountid"]
    if lead.get("_parentaccountid_value"):
        return "account", lead["_parentaccountid_value"]
    if contact is not None:
        return "contact", contact["contactid"]
    if lead.get("_parentcontactid_value"):
        return "contact", lead["_parentcontactid_value"]
    if lead.get("_customerid_value") and lead.get("_customerid_type") in ("account", "contact"):
        return lead["_customerid_type"], lead["_customerid_value"]
    return None


def _close_opportunity(ctx: ActionContext, params: dict[str, Any], action: str, state: int) -> None:
    opportunity, values = close_activity(ctx, action, params["OpportunityClose"], "opportunityclose", "opportunity")
    status = _status("opportunity", state, int_param(action, params, "Status"), opportunity["opportunityid"])
    if opportunity.get("statecode") != 0:
        raise BadRequest(
            f"The opportunity with Id {opportunity['opportunityid']} is already "
            f"{_state_label('opportunity', opportunity)}: only Open opportunities can be closed.",
            INVALID_ARGUMENT,
        )
    close_date = values.get("actualend") or dt.date.today()
    revenue = values.get("actualrevenue")
    if revenue is None and state == 1:
        revenue = opportunity.get("estimatedvalue") or opportunity.get("totalamount")
    values.update(
        {
            "_opportunityid_value": opportunity["opportunityid"],
            "actualend": close_date,
            "actualrevenue": revenue,
            "statecode": 1,
            "statuscode": 2,
            "_transactioncurrencyid_value": opportunity.get("_transactioncurrencyid_value"),
        }
    )
    values.setdefault("subject", f"Opportunity Close - {'Won' if state == 1 else 'Lost'}")
    _insert(ctx, "opportunityclose", values)
    _write(
        ctx,
        "opportunity",
        opportunity,
        {
            "statecode": state,
            "statuscode": status,
            "actualclosedate": close_date,
            "actualvalue": revenue if state == 1 else opportunity.get("actualvalue"),
        },
    )


def win_opportunity(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Close an Open opportunity as Won (statecode 1) and record an opportunityclose activity."""
    _close_opportunity(ctx, params, "WinOpportunity", 1)


def lose_opportunity(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Close an Open opportunity as Lost (statecode 2, Status 4 Canceled or 5 Out-Sold)."""
    _close_opportunity(ctx, params, "LoseOpportunity", 2)


def generate_quote_from_opportunity(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> EntityResult:
    """Create a Draft quote from an Open opportunity, copying its customer, price list and product lines."""
    action = "GenerateQuoteFromOpportunity"
    opportunity = row_by_id(ctx, action, "opportunity", params["OpportunityId"], "OpportunityId")
    columns = column_set(action, params.get("ColumnSet"), ctx.store.entity("quote"))
    if opportunity.get("statecode") != 0:
        raise BadRequest(
            f"A quote cannot be generated from the opportunity with Id {opportunity['opportunityid']}:"
            f" it is {_state_label('opportunity', opportunity)}, not Open.",
            INVALID_ARGUMENT,
        )
    values = copy_columns(
        opportunity,
        "opportunity",
        "quote",
        ctx.store,
        skip=("_parentaccountid_value", "_parentcontactid_value", "_originatingleadid_value"),
    )
    values["_opportunityid_value"] = opportunity["opportunityid"]
    quote = _insert(ctx, "quote", values)
    copy_lines(ctx, "opportunity", opportunity["opportunityid"], "quote", quote["quoteid"])
    return EntityResult("quote", _fresh(ctx, "quote", quote), columns)


def _close_quote(ctx: ActionContext, params: dict[str, Any], action: str, state: int) -> None:
    quote, values = close_activity(ctx, action, params["QuoteClose"], "quoteclose", "quote")
    status = _status("quote", state, int_param(action, params, "Status"), quote["quoteid"])
    if quote.get("statecode") != 1:
        verb = "won" if state == 2 else "closed"
        raise BadRequest(
            f"The quote with Id {quote['quoteid']} is {_state_label('quote', quote)} and cannot be "
            f"{verb}: only Active quotes can be {verb}. Activate the quote first.",
            INVALID_ARGUMENT,
        )
    _finish_quote(ctx, quote, state, status, values, "Won" if state == 2 else "Closed")


def _finish_quote(ctx: ActionContext, quote: Row, state: int, status: int, close: Row, word: str) -> Row:
    close_date = close.get("actualend") or dt.date.today()
    close.update(
        {
            "_quoteid_value": quote["quoteid"],
            "actualend": close_date,
            "revision": quote.get("revisionnumber"),
            "statecode": 1,
            "statuscode": 2,
        }
    )
    close.setdefault("subject", f"Quote Close - {word}: {quote.get('name') or quote.get('quotenumber')}")
    _insert(ctx, "quoteclose", close)
    return _write(ctx, "quote", quote, {"statecode": state, "statuscode": status, "closedon": close_date})


def win_quote(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Close an Active quote as Won (statecode 2, Status 4) and record a quoteclose activity."""
    _close_quote(ctx, params, "WinQuote", 2)


def close_quote(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Close an Active quote (statecode 3) as Lost 5, Canceled 6 or Revised 7."""
    _close_quote(ctx, params, "CloseQuote", 3)


def revise_quote(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> EntityResult:
    """Copy an Active or Closed quote (with lines) to a new Draft revision; an Active original is closed as Revised."""
    action = "ReviseQuote"
    quote = row_by_id(ctx, action, "quote", params["QuoteId"], "QuoteId")
    columns = column_set(action, params.get("ColumnSet"), ctx.store.entity("quote"))
    state, status = quote.get("statecode"), quote.get("statuscode")
    if state not in (1, 3) or status == 7:
        why = "it has already been revised" if status == 7 else f"it is {_state_label('quote', quote)}"
        raise BadRequest(
            f"The quote with Id {quote['quoteid']} cannot be revised: {why}. Only Active quotes and "
            "Lost or Canceled quotes can be revised.",
            INVALID_ARGUMENT,
        )
    if state == 1:
        _finish_quote(ctx, quote, 3, 7, {}, "Revised")
    revisions = ctx.store.find(
        "quote", {"quotenumber": quote.get("quotenumber")}, order_by=["-revisionnumber"], limit=1
    )
    revision = int((revisions[0] if revisions else quote).get("revisionnumber") or 0) + 1
    values = copy_columns(quote, "quote", "quote", ctx.store)
    for name in ("_opportunityid_value", "effectivefrom", "effectiveto", "expireson"):
        values[name] = quote.get(name)
    values.update({"quotenumber": quote.get("quotenumber"), "revisionnumber": revision})
    copy = _insert(ctx, "quote", values)
    copy_lines(ctx, "quote", quote["quoteid"], "quote", copy["quoteid"])
    return EntityResult("quote", _fresh(ctx, "quote", copy), columns)


def convert_quote_to_sales_order(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> EntityResult:
    """Create a sales order (with lines) from an Active or Won quote; an Active quote is won in the same call."""
    action = "ConvertQuoteToSalesOrder"
    quote = row_by_id(ctx, action, "quote", params["QuoteId"], "QuoteId")
    columns = column_set(action, params.get("ColumnSet"), ctx.store.entity("salesorder"))
    if quote.get("statecode") not in (1, 2):
        raise BadRequest(
            f"The quote with Id {quote['quoteid']} is {_state_label('quote', quote)} and cannot be "
            "converted to a sales order: only Active or Won quotes can be converted. Activate it first.",
            INVALID_ARGUMENT,
        )
    if quote.get("statecode") == 1:
        status = _status("quote", 2, int_param(action, params, "QuoteCloseStatus"), quote["quoteid"])
        close: Row = {
            "actualend": _date(params.get("QuoteCloseDate")),
            "description": params.get("QuoteCloseDescription"),
        }
        if params.get("QuoteCloseSubject"):
            close["subject"] = params["QuoteCloseSubject"]
        quote = _finish_quote(ctx, quote, 2, status, {k: v for k, v in close.items() if v is not None}, "Won")
    values = copy_columns(quote, "quote", "salesorder", ctx.store)
    values.update(
        {
            "_quoteid_value": quote["quoteid"],
            "_opportunityid_value": quote.get("_opportunityid_value"),
            "msdyn_quotationnumber": quote.get("msdyn_quotenumber"),
            "msdyn_isreadytosync": True,
        }
    )
    order = _insert(ctx, "salesorder", values)
    copy_lines(ctx, "quote", quote["quoteid"], "salesorder", order["salesorderid"], link="_quotedetailid_value")
    return EntityResult("salesorder", _fresh(ctx, "salesorder", order), columns)


def convert_sales_order_to_invoice(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> EntityResult:
    """Create an invoice (with lines) from a sales order that is not canceled; the order's state is unchanged."""
    action = "ConvertSalesOrderToInvoice"
    order = row_by_id(ctx, action, "salesorder", params["SalesOrderId"], "SalesOrderId")
    columns = column_set(action, params.get("ColumnSet"), ctx.store.entity("invoice"))
    if order.get("statecode") == 2:
        raise BadRequest(
            f"The sales order with Id {order['salesorderid']} is Canceled and cannot be invoiced.", INVALID_ARGUMENT
        )
    values = copy_columns(order, "salesorder", "invoice", ctx.store)
    values.update(
        {
            "_salesorderid_value": order["salesorderid"],
            "_opportunityid_value": order.get("_opportunityid_value"),
            "ispricelocked": bool(order.get("ispricelocked")),
        }
    )
    invoice = _insert(ctx, "invoice", values)
    copy_lines(
        ctx, "salesorder", order["salesorderid"], "invoice", invoice["invoiceid"], link="_salesorderdetailid_value"
    )
    return EntityResult("invoice", _fresh(ctx, "invoice", invoice), columns)


def _close_order(ctx: ActionContext, params: dict[str, Any], action: str, state: int) -> None:
    order, values = close_activity(ctx, action, params["OrderClose"], "orderclose", "salesorder")
    status = _status("salesorder", state, int_param(action, params, "Status"), order["salesorderid"])
    if order.get("statecode") not in (0, 1):
        verb = "fulfilled" if state == 3 else "canceled"
        raise BadRequest(
            f"The sales order with Id {order['salesorderid']} is {_state_label('salesorder', order)} "
            f"and cannot be {verb}: only Active or Submitted orders can be {verb}.",
            INVALID_ARGUMENT,
        )
    close_date = values.get("actualend") or dt.date.today()
    values.update(
        {
            "_salesorderid_value": order["salesorderid"],
            "actualend": close_date,
            "ordernumber": order.get("ordernumber"),
            "statecode": 1,
            "statuscode": 2,
        }
    )
    values.setdefault("subject", f"Order Close - {'Fulfilled' if state == 3 else 'Canceled'}")
    _insert(ctx, "orderclose", values)
    changes: Row = {"statecode": state, "statuscode": status}
    if state == 3:
        changes["datefulfilled"] = close_date
    _write(ctx, "salesorder", order, changes)


def fulfill_sales_order(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Close an Active or Submitted sales order as Fulfilled (statecode 3) with an orderclose activity."""
    _close_order(ctx, params, "FulfillSalesOrder", 3)


def cancel_sales_order(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
    """Cancel an Active or Submitted sales order (statecode 2, Status 4 No Money) with an orderclose activity."""
    _close_order(ctx, params, "CancelSalesOrder", 2)


def _pricing_lock(entity: str, param: str, action: str, locked: bool) -> ActionHandler:
    """A handler setting ``ispricelocked`` on the order or invoice named by ``param``."""

    def handler(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> None:
        row = row_by_id(ctx, action, entity, params[param], param)
        if row.get("statecode") != 0 and (entity == "invoice" or row.get("statecode") != 1):
            raise BadRequest(
                f"The pricing of the {entity} with Id {row[f'{entity}id']} cannot be "
                f"{'locked' if locked else 'unlocked'}: it is {_state_label(entity, row)}.",
                INVALID_ARGUMENT,
            )
        _write(ctx, entity, row, {"ispricelocked": locked})

    handler.__doc__ = (
        f"{'Lock' if locked else 'Unlock'} the prices of a {entity} (ispricelocked = {str(locked).lower()})."
    )
    return handler


@dataclass(frozen=True)
class SalesAction:
    """One lead-to-cash action, declared once: its parameters are both what ``$metadata`` lists and what
    each call is checked against before the handler runs (unknown or missing ones answer 400)."""

    name: str
    handler: ActionHandler
    #: parameter name -> Edm type, in the order ``$metadata`` lists them
    parameters: Mapping[str, str]
    #: parameters a call must give (not null)
    required: tuple[str, ...] = ()
    returns: str | None = None
    bound_to: str | None = None
    collection_bound: bool = False

    def checked_handler(self) -> ActionHandler:
        """The handler, behind the check of the call's parameters against this declaration."""
        handler = self.handler

        @functools.wraps(handler)
        def checked(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> Any:
            check_params(self.name, params, self.parameters, self.required)
            return handler(ctx, target, params)

        return checked

    def register(self, registry: ActionRegistry) -> None:
        registry.action(
            self.name,
            bound_to=self.bound_to,
            collection_bound=self.collection_bound,
            parameters=dict(self.parameters),
            returns=self.returns,
        )(self.checked_handler())


def _closing(activity: str) -> dict[str, str]:
    """The parameters of an action that closes a document with an ``activity`` (OpportunityClose, ...)."""
    return {activity: f"{NAMESPACE}.{activity.lower()}", "Status": "Edm.Int32"}


def _pricing_locks() -> list[SalesAction]:
    return [
        SalesAction(name, _pricing_lock(entity, param, name, locked), {param: GUID}, required=(param,))
        for name, entity, param, locked in (
            ("LockSalesOrderPricing", "salesorder", "SalesOrderId", True),
            ("UnlockSalesOrderPricing", "salesorder", "SalesOrderId", False),
            ("LockInvoicePricing", "invoice", "InvoiceId", True),
            ("UnlockInvoicePricing", "invoice", "InvoiceId", False),
        )
    ]


#: Every lead-to-cash action of mock Sales.
ACTIONS: tuple[SalesAction, ...] = (
    SalesAction(
        "QualifyLead",
        qualify_lead,
        {
            "CreateAccount": "Edm.Boolean",
            "CreateContact": "Edm.Boolean",
            "CreateOpportunity": "Edm.Boolean",
            "Status": "Edm.Int32",
            "OpportunityCurrencyId": f"{NAMESPACE}.transactioncurrency",
            "OpportunityCustomerId": f"{NAMESPACE}.crmbaseentity",
            "SourceCampaignId": f"{NAMESPACE}.crmbaseentity",
            "ProcessInstanceId": f"{NAMESPACE}.crmbaseentity",
            "SuppressDuplicateDetection": "Edm.Boolean",
        },
        required=("CreateAccount", "CreateContact", "CreateOpportunity", "Status"),
        returns=CRM_BASE_COLLECTION,
        bound_to="lead",
    ),
    SalesAction(
        "WinOpportunity", win_opportunity, _closing("OpportunityClose"), required=("OpportunityClose", "Status")
    ),
    SalesAction(
        "LoseOpportunity", lose_opportunity, _closing("OpportunityClose"), required=("OpportunityClose", "Status")
    ),
    SalesAction(
        "GenerateQuoteFromOpportunity",
        generate_quote_from_opportunity,
        {"OpportunityId": GUID, "ColumnSet": COLUMN_SET, "ProcessInstanceId": GUID},
        required=("OpportunityId",),
        returns=f"{NAMESPACE}.quote",
    ),
    SalesAction("WinQuote", win_quote, _closing("QuoteClose"), required=("QuoteClose", "Status")),
    SalesAction("CloseQuote", close_quote, _closing("QuoteClose"), required=("QuoteClose", "Status")),
    SalesAction(
        "ReviseQuote",
        revise_quote,
        {"QuoteId": GUID, "ColumnSet": COLUMN_SET},
        required=("QuoteId",),
        returns=f"{NAMESPACE}.quote",
    ),
    SalesAction(
        "ConvertQuoteToSalesOrder",
        convert_quote_to_sales_order,
        {
            "QuoteId": GUID,
            "ColumnSet": COLUMN_SET,
            "QuoteCloseDate": "Edm.DateTimeOffset",
            "QuoteCloseStatus": "Edm.Int32",
            "QuoteCloseSubject": "Edm.String",
            "QuoteCloseDescription": "Edm.String",
            "ProcessInstanceId": f"{NAMESPACE}.crmbaseentity",
        },
        required=("QuoteId",),
        returns=f"{NAMESPACE}.salesorder",
    ),
    SalesAction(
        "ConvertSalesOrderToInvoice",
        convert_sales_order_to_invoice,
        {"SalesOrderId": GUID, "ColumnSet": COLUMN_SET},
        required=("SalesOrderId",),
        returns=f"{NAMESPACE}.invoice",
    ),
    SalesAction(
        "FulfillSalesOrder",
        fulfill_sales_order,
        _closing("OrderClose"),
        required=("OrderClose", "Status"),
        bound_to="salesorder",
        collection_bound=True,
    ),
    SalesAction("CancelSalesOrder", cancel_sales_order, _closing("OrderClose"), required=("OrderClose", "Status")),
    *_pricing_locks(),
)


def register_actions(registry: ActionRegistry) -> None:
    """Declare the lead-to-cash actions (names, binding, parameters and return types for $metadata)."""
    for action in ACTIONS:
        action.register(registry)


__all__ = [
    "ACTIONS",
    "SalesAction",
    "register_actions",
    "check_params",
    "column_set",
    "close_activity",
    "copy_columns",
    "copy_lines",
]
