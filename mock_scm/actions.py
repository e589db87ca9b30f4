"""The SCM business processes as bound OData actions (``Microsoft.Dynamics.DataEntities.<Action>``).

``POST /data/SalesOrderHeadersV2(dataAreaId='usmf',SalesOrderNumber='000012')/Microsoft.Dynamics.DataEntities.Confirm``

| bound to | action | parameters | result |
|---|---|---|---|
| SalesQuotationHeaderV2, CDSSalesQuotationHeader | Send, Lose, Cancel | - | the quotation |
| SalesQuotationHeaderV2, CDSSalesQuotationHeader | Confirm | SalesOrderNumber (optional) | the sales order made |
| SalesOrderHeaderV2, CDSSalesOrderHeader | Confirm, PostPickingList, Cancel | - | the order |
| SalesOrderHeaderV2, CDSSalesOrderHeader | PostPackingSlip | Lines (optional) | the order |
| SalesOrderHeaderV2, CDSSalesOrderHeader | PostInvoice | Lines (optional) | the invoice (SalesInvoiceHeaderV2) |
| CustomerPaymentJournalHeader | Post | - | the journal |

``Lines`` is ``[{"LineCreationSequenceNumber": 1, "Quantity": 2}, ...]`` (a line may also be named by
``InventoryLotId`` or ``LineNumber``; a missing ``Quantity`` means all that is left). The preconditions and
effects of each process are in :mod:`mock_scm.quotations`, :mod:`mock_scm.orders` and :mod:`mock_scm.payments`.
Every refusal is a 400 whose Infolog names the problem; an action's writes share the request's transaction,
so a refusal leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_scm import orders, payments, quotations
from mock_scm.settings import ScmSettings
from sandbox.errors import BadRequest
from sandbox.odata.actions import ActionContext, ActionRegistry, ActionSpec, EntityResult
from sandbox.odata.store import Row, Store

QUOTATION_TYPES = ("SalesQuotationHeaderV2", "CDSSalesQuotationHeader")
ORDER_TYPES = ("SalesOrderHeaderV2", "CDSSalesOrderHeader")
#: The order type an action on a quotation type answers with (same flavour: V2 or CDS).
ORDER_FOR_QUOTATION = {"SalesQuotationHeaderV2": "SalesOrderHeaderV2", "CDSSalesQuotationHeader": "CDSSalesOrderHeader"}

LINES_TYPE = "Collection(Edm.Untyped)"

Process = Callable[[Store, ScmSettings, Row, str, dict[str, Any]], Row]


def _check_params(action: str, params: Any, allowed: set[str]) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadRequest("An error has occurred.", "", detail=f"The body of action '{action}' must be a JSON object.")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadRequest(
            "An error has occurred.",
            "",
            detail=f"The parameter '{unknown[0]}' is not a parameter of action '{action}'. "
            f"Parameters: {', '.join(sorted(allowed)) or 'none'}.",
            extra={"type": "Microsoft.OData.ODataException"},
        )
    return params


def _handler(
    settings: ScmSettings, action: str, bound: str, result_entity: str, process: Process, allowed: set[str], doc: str
) -> Callable[[ActionContext, Row | None, dict[str, Any]], EntityResult]:
    """An action handler for one binding: checks parameters, runs ``process``, answers with the result row."""

    def handler(ctx: ActionContext, target: Row | None, params: dict[str, Any]) -> EntityResult:
        if target is None:
            raise BadRequest("An error has occurred.", "", detail=f"Action '{action}' must be bound to one {bound}.")
        checked = _check_params(action, params, allowed)
        row = process(ctx.store, settings, target, ctx.identity, checked)
        return EntityResult(result_entity, row)

    handler.__doc__ = doc
    handler.__name__ = f"{bound}_{action}"
    return handler


def _register(
    registry: ActionRegistry,
    settings: ScmSettings,
    action: str,
    bound: str,
    result_entity: str,
    process: Process,
    parameters: dict[str, str],
    doc: str,
) -> None:
    registry.add(
        ActionSpec(
            name=action,
            handler=_handler(settings, action, bound, result_entity, process, set(parameters), doc),
            bound_to=bound,
            parameters=parameters,
            returns=result_entity,
            description=doc.strip().split("\n")[0],
        )
    )


def register_actions(registry: ActionRegistry, settings: ScmSettings) -> None:
    """Register every SCM process on the V2 entities and on their CDS (dual-write) views, run with ``settings``."""
    for bound in QUOTATION_TYPES:
        _register(
            registry,
            settings,
            "Send",
            bound,
            bound,
            lambda store, settings, row, identity, params: quotations.send_quotation(store, settings, row, identity),
            {},
            "Send the quotation: status Sent (allowed from Created, Sent, Modified).",
        )
        _register(
            registry,
            settings,
            "Confirm",
            bound,
            ORDER_FOR_QUOTATION[bound],
            lambda store, settings, row, identity, params: quotations.confirm_quotation(
                store, settings, row, identity, str(params.get("SalesOrderNumber") or "")
            ),
            {"SalesOrderNumber": "Edm.String"},
            "Confirm the quotation: status Confirmed; creates the sales order with its lines (or links the "
            "existing order named by SalesOrderNumber) and records it in GeneratedSalesOrderNumber.",
        )
        _register(
            registry,
            settings,
            "Lose",
            bound,
            bound,
            lambda store, settings, row, identity, params: quotations.lose_quotation(store, settings, row, identity),
            {},
            "Mark the quotation as lost: status Lost.",
        )
        _register(
            registry,
            settings,
            "Cancel",
            bound,
            bound,
            lambda store, settings, row, identity, params: quotations.cancel_quotation(store, settings, row, identity),
            {},
            "Cancel the quotation: status Cancelled.",
        )
    for bound in ORDER_TYPES:
        _register(
            registry,
            settings,
            "Confirm",
            bound,
            bound,
            lambda store, settings, row, identity, params: orders.confirm_order(store, settings, row, identity),
            {},
            "Confirm the sales order: checks hold and credit limit, reserves stock; processing status Confirmed.",
        )
        _register(
            registry,
            settings,
            "PostPickingList",
            bound,
            bound,
            lambda store, settings, row, identity, params: orders.post_picking_list(store, settings, row, identity),
            {},
            "Post the picking list: reserves what is left; processing status Picked.",
        )
        _register(
            registry,
            settings,
            "PostPackingSlip",
            bound,
            bound,
            lambda store, settings, row, identity, params: orders.post_packing_slip(
                store, settings, row, identity, params
            ),
            {"Lines": LINES_TYPE},
            "Post a packing slip (delivery), all or by line quantity: reduces on-hand; processing status "
            "PartiallyDelivered or Delivered.",
        )
        _register(
            registry,
            settings,
            "PostInvoice",
            bound,
            "SalesInvoiceHeaderV2",
            lambda store, settings, row, identity, params: orders.post_invoice(store, settings, row, identity, params),
            {"Lines": LINES_TYPE},
            "Post an invoice for delivered quantities (all or by line): creates the SalesInvoiceHeadersV2 "
            "and SalesInvoiceLinesV2 rows; processing status PartiallyInvoiced or Invoiced.",
        )
        _register(
            registry,
            settings,
            "Cancel",
            bound,
            bound,
            lambda store, settings, row, identity, params: orders.cancel_order(store, settings, row, identity),
            {},
            "Cancel an undelivered sales order: lines and header Canceled, reservations released.",
        )
    _register(
        registry,
        settings,
        "Post",
        "CustomerPaymentJournalHeader",
        "CustomerPaymentJournalHeader",
        lambda store, settings, row, identity, params: payments.post_payment_journal(store, settings, row, identity),
        {},
        "Post the customer payment journal: settles the marked (or the oldest open) invoices.",
    )
