"""Dataverse's bulk operations, registered as endpoints: ``CreateMultiple``, ``UpdateMultiple`` and
``UpsertMultiple`` (bound to every entity set's collection) and ``BulkDelete`` (unbound).

Dataverse answers CreateMultiple with the ``Ids``, UpsertMultiple with ``Results`` (``RecordCreated`` and a
typed ``Target``), UpdateMultiple with 204; each takes at most 1,000 ``Targets``. The writes go through the
service, so rules, change tracking and live sync see each row as they see a single write.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from flask import Response

from sandbox.errors import BadRequest, SandboxError
from sandbox.odata.dataverse import codes
from sandbox.odata.dataverse.querylanguages import query_expression
from sandbox.odata.dataverse.wire import NAMESPACE
from sandbox.odata.model import EntityType
from sandbox.odata.query import QueryOptions
from sandbox.odata.responses import json_response, no_content
from sandbox.odata.urls import Segment

if TYPE_CHECKING:
    from sandbox.odata.service import ODataService, RequestState

#: the most Targets one call takes
MAX_TARGETS = 1000


def _targets(body: dict[str, Any]) -> list[dict[str, Any]]:
    targets = body.get("Targets")
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise BadRequest("The parameter 'Targets' must be an array of entity objects.", codes.PAYLOAD_INVALID)
    if len(targets) > MAX_TARGETS:
        raise BadRequest(
            f"The number of records in 'Targets' exceeds the limit of {MAX_TARGETS}.", codes.PAYLOAD_INVALID
        )
    return targets


def create_multiple(service: ODataService, entity: EntityType, body: dict[str, Any], state: RequestState) -> Response:
    """``CreateMultiple``: the new rows' ids, in the order of the Targets."""
    rows = _create_multiple(service, entity, _targets(body), state)
    pk = entity.key[0]
    return json_response(
        {
            "@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.CreateMultipleResponse",
            "Ids": [row[pk] for row in rows],
        }
    )


def update_multiple(service: ODataService, entity: EntityType, body: dict[str, Any], state: RequestState) -> Response:
    """``UpdateMultiple``: every Target names an existing row; 204."""
    for target in _targets(body):
        _write_target(service, entity, "UpdateMultiple", target, state)
    return no_content()


def upsert_multiple(service: ODataService, entity: EntityType, body: dict[str, Any], state: RequestState) -> Response:
    """``UpsertMultiple``: for each Target whether it created its row, and the row as a typed reference."""
    results = [
        {"RecordCreated": created, "Target": _typed_ref(service, entity, row)}
        for row, created in _upsert_multiple(service, entity, _targets(body), state)
    ]
    return json_response(
        {"@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.UpsertMultipleResponse", "Results": results}
    )


def _write_target(
    service: ODataService, entity: EntityType, name: str, target: dict[str, Any], state: RequestState
) -> tuple[dict[str, Any], bool]:
    """One Target of CreateMultiple, UpdateMultiple or UpsertMultiple written on its own: (row, created)."""
    target, key = _body_and_key(service, entity, name, target, state)
    if key is None:
        if name == "UpdateMultiple":
            raise BadRequest(
                f"Each target of UpdateMultiple needs '{entity.key[0]}' or '@odata.id'.", codes.PAYLOAD_INVALID
            )
        return service.create_row(entity, target, state), True
    existing_row = service.find_row(entity, key, state)
    if existing_row is None:
        if name == "UpdateMultiple":
            raise service.dialect.not_found(entity, service.key_text(entity, key))
        return service.create_row(entity, target, state, url_key=key), True
    values, _ = service.values_from_body(entity, target, state, creating=False)
    return service.store.update(entity.name, existing_row, values, identity=state.identity, via_api=True), False


def _body_and_key(
    service: ODataService, entity: EntityType, name: str, target: dict[str, Any], state: RequestState
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A Target's body (a copy, without ``@odata.type``, which must match, ``@odata.id`` and the key) and
    the key it names (None for a CreateMultiple, or a Target naming none)."""
    pk = entity.key[0]
    body = dict(target)
    service.dialect.check_odata_annotation(
        entity, "@odata.type", body.pop("@odata.type", service.dialect.type_label(entity))
    )
    reference = body.pop("@odata.id", None)
    if name == "CreateMultiple":
        return body, None
    if reference:
        if name == "UpsertMultiple":
            return body, _key_from_reference(service, entity, reference, state)
        _, existing = service.resolve_reference(reference, state)  # UpdateMultiple: the row must exist
        return body, {pk: existing[pk]}
    if body.get(pk):
        return body, {pk: service.dialect.key_value(entity, entity.properties[pk], body.pop(pk))}
    return body, None


def _create_multiple(
    service: ODataService, entity: EntityType, targets: list[dict[str, Any]], state: RequestState
) -> list[dict[str, Any]]:
    """The rows of a CreateMultiple: made in bulk when that gives exactly what Target after Target gives
    (else, e.g. to meet the first error, Target after Target)."""
    bodies: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] | None = None
    try:
        for target in targets:
            bodies.append(_body_and_key(service, entity, "CreateMultiple", target, state)[0])
    except SandboxError:
        pass  # the loop below meets this error in its turn
    else:
        rows = service.create_rows_in_bulk(entity, bodies, state)
    if rows is None:
        rows = [_write_target(service, entity, "CreateMultiple", target, state)[0] for target in targets]
    return rows


def _upsert_multiple(
    service: ODataService, entity: EntityType, targets: list[dict[str, Any]], state: RequestState
) -> list[tuple[dict[str, Any], bool]]:
    """(row, created) for each Target of an UpsertMultiple, in order.

    Targets are taken in order as the row-by-row loop takes them, except that a run of Targets that
    create rows is held back and created in bulk just before the next update (or at the end); a run
    that cannot be created in bulk with exactly the same outcome is written Target after Target. An
    update, or a Target that cannot even be read, first lets the run before it be written, so writes
    and errors come in the loop's order.
    """
    done: list[tuple[dict[str, Any], bool]] = []
    run_targets: list[dict[str, Any]] = []
    run_bodies: list[dict[str, Any]] = []
    run_keys: list[dict[str, Any] | None] = []

    def flush() -> None:
        rows = service.create_rows_in_bulk(entity, run_bodies, state, url_keys=run_keys) if run_bodies else None
        if rows is None:
            done.extend(_write_target(service, entity, "UpsertMultiple", t, state) for t in run_targets)
        else:
            done.extend((row, True) for row in rows)
        run_targets.clear()
        run_bodies.clear()
        run_keys.clear()

    # Reading a Target's body and key writes and reads nothing, so all are read first, and whether their
    # rows exist is asked in one go. An answer made stale by a write of this call (a row created just
    # before, a key changed) changes nothing: a Target wrongly held for a create fails the run's bulk
    # check and the run goes Target after Target; one wrongly sent alone is written as the upsert it is.
    parsed: list[tuple[dict[str, Any], dict[str, Any] | None] | None] = []
    for target in targets:
        try:
            parsed.append(_body_and_key(service, entity, "UpsertMultiple", target, state))
        except SandboxError:
            parsed.append(None)  # the loop meets this error in its turn, after the run before it
    exists = service.row_exists_many(entity, (item[1] for item in parsed if item is not None), state)
    for target, item in zip(targets, parsed, strict=True):
        if item is None:
            creates = False
        else:
            body, key = item
            creates = key is None or not exists(key)
        if creates:
            run_targets.append(target)
            run_bodies.append(body)
            run_keys.append(key)
            continue
        flush()
        done.append(_write_target(service, entity, "UpsertMultiple", target, state))
    flush()
    return done


def _key_from_reference(
    service: ODataService, entity: EntityType, reference: str, state: RequestState
) -> dict[str, Any]:
    text = reference.rsplit("/", 1)[-1]
    if "(" not in text:
        raise BadRequest(f"'{reference}' is not an entity reference.", codes.PAYLOAD_INVALID)
    return service.resolve_key(entity, text[text.index("(") + 1 : -1], state)


def _typed_ref(service: ODataService, entity: EntityType, row: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.type": f"#{service.dialect.type_label(entity)}", entity.key[0]: row[entity.key[0]]}


def bulk_delete(service: ODataService, segments: list[Segment], state: RequestState) -> Response:
    """Delete the rows the ``QuerySet`` QueryExpressions select and answer with a ``JobId``.

    Dataverse runs the job in the background; the sandbox deletes at once, in one transaction, through
    the store (so rules and change tracking see every delete). A row a rule refuses to delete fails the
    whole call with that rule's error instead of being reported in a job log.
    """
    body = service.request_body()
    query_set = body.get("QuerySet")
    if not isinstance(query_set, list) or not query_set:
        raise BadRequest(
            "The parameter 'QuerySet' must be a non-empty array of QueryExpression.", codes.INVALID_ARGUMENT
        )
    for required in (
        "JobName",
        "SendEmailNotification",
        "ToRecipients",
        "CCRecipients",
        "RecurrencePattern",
        "StartDateTime",
    ):
        if required not in body:
            raise BadRequest(
                f"Request message has unresolved parameters: '{required}' is required by BulkDelete.",
                codes.INVALID_ARGUMENT,
            )

    with service.db.transaction():
        for query in query_set:
            entity, filter_text = query_expression(query, service.model)
            if entity.read_only:
                raise BadRequest(f"The entity '{entity.name}' is read-only.", codes.INVALID_ARGUMENT)
            select = service.base_query(entity, QueryOptions(filter=filter_text), state)
            for row in [dict(r._mapping) for r in service.db.connection.execute(select)]:
                service.store.delete(entity.alias_of or entity.name, row, identity=state.identity, via_api=True)
    return json_response(
        {"@odata.context": f"{state.base_url}$metadata#{NAMESPACE}.BulkDeleteResponse", "JobId": str(uuid.uuid4())}
    )
