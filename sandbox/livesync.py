"""The source side of synchronous live sync: a write calls the bridge before it commits.

When a service has a live-sync sender, every transaction that changed tracked rows hands its changes to
:class:`LiveSyncHook` just before committing. Changes made by an integration identity (the bridge itself)
are echoes and never sent. The rest go to the bridge in one call, as one unit, with the rows their lookups
point at (so the bridge never has to read back from a service that is in the middle of a transaction).
If the bridge refuses, the hook raises and the whole source transaction rolls back: both or neither.

The bridge's answer may carry a **write-back**: values the other side computed for the source's rows while
it wrote them (a party number, defaults, SCM's prices, tax and totals). The hook applies them to the source
rows inside the same, still open transaction, as the integration identity, so they commit with the write and
are never sent again (echo prevention). A write-back the source refuses is logged and left out: the other
side has committed, so it must not roll the source back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from sandbox.odata.service import ODataService

from sandbox.errors import BadRequest, SandboxError, ServiceUnavailable
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType, Model
from sandbox.odata.store import Store
from sandbox.outbox import dumps
from sandbox.wellknown import INTEGRATION_IDENTITY

#: identities whose writes are the bridge's own and must not come back (echo prevention); kept as a set for
#: the callers that test membership, its one member defined in :mod:`sandbox.wellknown`
INTEGRATION_IDENTITIES = frozenset({INTEGRATION_IDENTITY})

log = logging.getLogger(__name__)

#: sends one transaction's changes to the bridge; returns the bridge's answer (a dict that may carry
#: ``writeback``), or None
Sender = Callable[[dict[str, Any]], Any]


def coalesce(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One change per row, in first-touch order: the last image wins; create+update stays a create,
    create+delete vanishes, and the changed columns add up."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for change in changes:
        ident = (change["table"], repr(sorted(change["key"].items())))
        previous = merged.get(ident)
        if previous is None:
            merged[ident] = dict(change)
            order.append(ident)
            continue
        if previous["operation"] == "create" and change["operation"] == "delete":
            merged.pop(ident)
            continue
        operation = "create" if previous["operation"] == "create" else change["operation"]
        changed = list(dict.fromkeys([*previous["changed"], *change["changed"]]))
        merged[ident] = {**change, "operation": operation, "changed": changed}
    return [merged[i] for i in order if i in merged]


class LiveSyncHook:
    """Collects a transaction's changes and sends them to the bridge before the commit."""

    def __init__(
        self, service_name: str, model: Model, store: Store, sender: Sender, service: ODataService | None = None
    ) -> None:
        self.service_name = service_name
        self.model = model
        self.store = store
        self.sender = sender
        #: reads write-back bodies as the service reads a PATCH (binds by alternate key, wire values);
        #: without it a write-back is ignored
        self.service = service
        self.enabled = True

    def __call__(self, changes: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        relevant = [c for c in changes if c["identity"] not in INTEGRATION_IDENTITIES]
        if not relevant:
            return
        identity = relevant[0]["identity"]
        payload = {"source": self.service_name, "identity": identity, "changes": coalesce(relevant)}
        payload["related"] = self.related_rows(payload["changes"])
        try:
            answer = self.sender(payload)
        except SandboxError:
            raise
        except Exception as exc:  # noqa: BLE001 - the bridge being unreachable must not become a 500
            raise ServiceUnavailable(f"Dual-write could not reach the bridge: {exc}") from exc
        items = answer.get("writeback") if isinstance(answer, dict) else None
        if isinstance(items, list) and items:
            self.apply_writeback(items)

    def apply_writeback(self, items: list[Any]) -> int:
        """Apply ``{"table", "key", "values"}`` items (``values`` a PATCH body in the service's wire format)
        to rows of this transaction as the integration identity; returns how many rows changed. Each item
        is its own savepoint: one the service refuses (logged) leaves the others and the transaction alone."""
        if self.service is None:
            return 0
        from sandbox.odata.service import RequestState

        state = RequestState(identity=INTEGRATION_IDENTITY, prefer={}, args={}, base_url="")
        applied = 0
        for item in items:
            entity = self.model.entities.get(str(item.get("table"))) if isinstance(item, dict) else None
            key, values = (item.get("key"), item.get("values")) if isinstance(item, dict) else (None, None)
            if entity is None or not isinstance(key, dict) or not isinstance(values, dict) or not values:
                log.warning("%s: ignoring a malformed write-back item: %r", self.service_name, item)
                continue
            storage = self.model.storage_name(entity.name)
            try:
                with self.store.db.savepoint():
                    row = self.store.get(storage, key)
                    if row is None:
                        continue
                    changes, _ = self.service.values_from_body(entity, values, state, creating=False)
                    # Only what differs: a column given again would set off the service's rules for it.
                    changes = {k: v for k, v in changes.items() if row.get(k) != v}
                    if not changes:
                        continue
                    # As the service's own rules write (via_api=False): the row's state may have closed it to
                    # callers in this very transaction (a won quote), not to what its own write computed.
                    self.store.update(storage, row, changes, identity=INTEGRATION_IDENTITY, via_api=False)
                    applied += 1
            except SandboxError as exc:
                log.warning("%s: write-back to %s %s refused: %s", self.service_name, entity.name, key, exc)
        return applied

    def related_rows(self, changes: list[dict[str, Any]], depth: int = 2) -> dict[str, dict[str, Any]]:
        """The rows single-valued lookups of the changed rows point at (and theirs, ``depth`` hops), keyed
        by :func:`related_token`. Two hops cover a line's company (line -> quote -> company)."""
        related: dict[str, dict[str, Any]] = {}
        frontier = [(change["table"], change["after"]) for change in changes if change["after"]]
        for _ in range(depth):
            found: list[tuple[str, dict[str, Any]]] = []
            for table, image in frontier:
                found.extend(self._lookups_of(self.model.entities[table], image, related))
            frontier = found
        return related

    def _lookups_of(
        self, entity: EntityType, image: dict[str, Any], related: dict[str, dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for nav in entity.navigations.values():
            if nav.many or not nav.owns_fk:
                continue
            if any(image.get(k) != v for k, v in nav.local_condition.items()):
                continue
            values = {remote: image.get(local) for local, remote in nav.pairs}
            if any(v is None for v in values.values()):
                continue
            target: EntityType = self.model.entities[nav.target]
            token = related_token(target.name, values)
            if token in related:
                continue
            row = self.store.get(target.name, values)
            if row is not None:
                related[token] = {k: row.get(k) for k in target.properties}
                found.append((target.name, related[token]))
        return found


def related_token(entity_name: str, key: dict[str, Any]) -> str:
    """How a related row is addressed in a live-sync payload."""
    return entity_name + "|" + ",".join(f"{k}={key[k]}" for k in sorted(key))


def refuse(message: str) -> SandboxError:
    """The error a source answers with when the other side refused the write."""
    return BadRequest(message, codes.ISV_ABORTED)


def http_sender(client: httpx.Client) -> Sender:
    """A sender that posts each transaction to the bridge's ``/api/live`` and turns a refusal into the
    error the writing caller sees (in the source service's own error shape)."""

    import httpx

    # parsed once: httpx would parse the path and merge it with the client's base URL on every call
    live_url = client.base_url.join("api/live") if str(client.base_url) else httpx.URL("/api/live")

    def send(payload: dict[str, Any]) -> Any:
        response = client.post(
            live_url, content=dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}
        )
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError:
                return None
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):  # json.JSONDecodeError is a ValueError
            message = response.text or f"status {response.status_code}"
        if response.status_code >= 500:
            raise ServiceUnavailable(
                f"Dual-write: {message}",
                headers={"Retry-After": response.headers.get("Retry-After", "1")},
            )
        raise refuse(f"Dual-write: {message}")

    return send
