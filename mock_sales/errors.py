"""Dataverse's refusals of mock Sales that more than one module raises, with the wording of the real service."""

from __future__ import annotations

from typing import Any

from mock_sales.schema import STATE_MODELS
from sandbox.errors import BadRequest
from sandbox.odata.dataverse.codes import INVALID_ARGUMENT

_SCHEMA_NAMES = {
    "salesorder": "SalesOrder",
    "pricelevel": "PriceLevel",
    "transactioncurrency": "TransactionCurrency",
    "opportunityclose": "OpportunityClose",
    "quoteclose": "QuoteClose",
    "orderclose": "OrderClose",
    "uomschedule": "UoMSchedule",
    "cdm_company": "cdm_Company",
}


def schema_name(entity_name: str) -> str:
    """A table's schema name as error messages write it (``SalesOrder``, ``Quote``)."""
    return _SCHEMA_NAMES.get(entity_name, entity_name[:1].upper() + entity_name[1:])


def invalid_status(entity_name: str, state: int, status: Any, row_id: Any) -> BadRequest:
    """Dataverse's refusal of a statuscode that does not belong to the statecode."""
    model = STATE_MODELS[entity_name]
    label = model.state_label(state).split(" (")[0].replace(" ", "")
    return BadRequest(
        f"{status} is not a valid status code for state code {schema_name(entity_name)}State."
        f"{label} on {entity_name} with Id {row_id}.",
        INVALID_ARGUMENT,
    )
