"""Dataverse change tracking: ``Prefer: odata.track-changes`` on a collection read, then delta links."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import BadRequest
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType
from sandbox.odata.responses import json_response, query_string

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState


def wants_change_tracking(state: RequestState) -> bool:
    """Whether a collection read asks for changes (``Prefer: odata.track-changes`` or a delta token)."""
    return "odata.track-changes" in state.prefer or "$deltatoken" in state.args


def change_tracking(service: ODataService, entity: EntityType, state: RequestState) -> Response:
    """Every row with a delta link, or (``$deltatoken``) the rows changed and deleted since, read from the
    outbox: the last operation on each key wins."""
    dialect = service.dialect
    for option in ("$filter", "$orderby", "$expand", "$top"):
        if option in state.args:
            raise BadRequest(
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.', codes.QUERY_SYNTAX
            )
    if not entity.tracked:
        raise BadRequest(f"Change tracking is not enabled for entity '{entity.name}'.", codes.QUERY_SYNTAX)
    outbox = service.store.outbox
    if outbox is None:
        raise BadRequest("Change tracking is not available on this service.", codes.QUERY_SYNTAX)
    if "odata.track-changes" in state.prefer:
        state.applied.append("odata.track-changes")
    options = service.parse_options(entity, state)
    select = dialect.effective_select(entity, options.select)
    token = state.args.get("$deltatoken")
    latest = outbox.latest_seq(service.db)
    body: dict[str, Any]
    if token is None:
        rows = service.store.find(entity.name)
        body = {
            "@odata.context": service.context_url(state, entity, options.select),
            "value": [dialect.serialize(entity, r, select) for r in rows],
        }
    else:
        try:
            since = int(urllib.parse.unquote(token).split("!", 1)[0])
        except ValueError:
            raise BadRequest(f"The delta token '{token}' is not valid.", codes.QUERY_SYNTAX) from None
        changes = outbox.read(service.db, since, 1_000_000, {entity.name}, None)
        last_op: dict[str, str] = {}
        for change in changes:
            key = change["key"]
            last_op[str(key.get(entity.key[0]))] = change["operation"]
        values: list[dict[str, Any]] = []
        for key_value, operation in last_op.items():
            row = service.store.get(entity.name, {entity.key[0]: key_value})
            if row is not None:
                values.append(dialect.serialize(entity, row, select))
            elif operation == "delete":
                values.append(
                    {
                        "@odata.context": f"{state.base_url}$metadata#{entity.entity_set}/$deletedEntity",
                        "id": key_value,
                        "reason": "deleted",
                    }
                )
        body = {"@odata.context": service.context_url(state, entity, options.select, "/$delta"), "value": values}
    stamp = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
    args = {k: v for k, v in state.args.items() if k not in ("$deltatoken", "$skiptoken")}
    args["$deltatoken"] = f"{latest}!{stamp}"
    body["@odata.deltaLink"] = f"{state.base_url}{entity.entity_set}?{query_string(args)}"
    return json_response(body)
