"""State and status: statecode/statuscode pairs and which changes and edits each state allows.

statecode/statuscode come from :data:`mock_sales.schema.STATE_MODELS`: a statuscode must belong to its
statecode; a statecode alone gets its default statuscode and a statuscode alone its statecode. Over the API
only the transitions in :data:`API_STATE_CHANGES` are allowed; the others need an action. Documents accept
ordinary column changes over the API only in :data:`EDITABLE_STATES` (plus the SCM-owned columns in
:data:`ALWAYS_WRITABLE`).
"""

from __future__ import annotations

from typing import Any

from mock_sales.errors import invalid_status
from mock_sales.schema import STATE_MODELS, StateModel
from sandbox.errors import BadRequest
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT

#: statecode -> statecodes reachable with a plain PATCH (``ctx.via_api``). Tables not listed allow any change.
API_STATE_CHANGES: dict[str, dict[int, set[int]]] = {
    "lead": {0: {2}, 1: {0}, 2: {0}},  # disqualify, reactivate; qualifying needs QualifyLead
    "opportunity": {0: set(), 1: {0}, 2: {0}},  # reopen; win/lose need WinOpportunity/LoseOpportunity
    "quote": {0: {1}, 1: set(), 2: set(), 3: set()},  # activate; the rest are actions
    # Submitted/Fulfilled/Invoiced/Canceled can be set directly: with dual-write's sales-status map
    # (IsSOPIntegrationEnabled) SCM's processing status drives the order state through updates.
    "salesorder": {0: {1, 2, 3, 4}, 1: {0, 2, 3, 4}, 2: set(), 3: {4}, 4: set()},
    "invoice": {0: {2, 3}, 1: set(), 2: set(), 3: set()},  # mark paid, cancel
}

#: Why a refused transition needs an action instead: (entity, target statecode) -> hint.
TRANSITION_HINTS: dict[tuple[str, int], str] = {
    ("lead", 1): "Use the QualifyLead action to qualify a lead.",
    ("opportunity", 1): "Use the WinOpportunity action to close an opportunity as won.",
    ("opportunity", 2): "Use the LoseOpportunity action to close an opportunity as lost.",
    ("quote", 0): "An activated quote cannot go back to Draft; use ReviseQuote to get an editable copy.",
    ("quote", 2): "Use the WinQuote or ConvertQuoteToSalesOrder action to win a quote.",
    ("quote", 3): "Use the CloseQuote action (or ReviseQuote) to close a quote.",
}

#: statecodes in which a document accepts ordinary column changes over the API
EDITABLE_STATES: dict[str, set[int]] = {"opportunity": {0}, "quote": {0}, "salesorder": {0, 1}, "invoice": {0}}

#: Columns still writable over the API when the document or its header is read-only: status columns
#: SCM keeps syncing through dual-write after Sales has locked the document.
ALWAYS_WRITABLE: dict[str, frozenset[str]] = {
    "quote": frozenset(
        {
            "closedon",
            "msdyn_salesquotationstatus",
            "msdyn_quotationownership",
            "_msdyn_generatedsalesordernumber_value",
            "msdyn_isreadytosync",
        }
    ),
    "salesorder": frozenset(
        {
            "msdyn_processingstatus",
            "msdyn_isreadytosync",
            "datefulfilled",
            "submitdate",
            "msdyn_confirmedshippingdate",
            "msdyn_confirmedreceiptdate",
        }
    ),
    "quotedetail": frozenset({"msdyn_salesquotationstatus"}),
    "salesorderdetail": frozenset(
        {
            "msdyn_linestatus",
            "quantityshipped",
            "quantitybackordered",
            "quantitycancelled",
            "msdyn_islinestopped",
            "msdyn_reservationid",
        }
    ),
}


#: Tables whose rows only the integration identity (dual-write) and the system write over the API: Sales keeps the
#: invoices SCM posts read-only (docs/reference/dual-write.md, 9.1); other callers get a missing privilege.
#: Table -> (the entity its privileges are named after, its object type code).
SCM_OWNED_TABLES: dict[str, tuple[str, int]] = {"invoicedetail": ("Invoice", 1091)}


def resolve_state(entity_name: str, state: Any, status: Any, row_id: Any) -> tuple[int, int]:
    """Complete and check a (statecode, statuscode) pair; either may be None (-1 = default reason)."""
    model: StateModel = STATE_MODELS[entity_name]
    if status == -1:
        status = None
    if state is None and status is None:
        state = model.initial
    if state is None:
        state = model.state_of(status)
        if state is None:
            raise BadRequest(f"{status} is not a valid status code for {entity_name}.", INVALID_ARGUMENT)
    if state not in model.states:
        raise BadRequest(f"{state} is not a valid state code for {entity_name}.", INVALID_ARGUMENT)
    if status is None:
        status = model.default_status(state)
    if model.state_of(status) != state:
        raise invalid_status(entity_name, state, status, row_id)
    return int(state), int(status)
