"""The source side of synchronous live sync: a write calls the bridge before it commits.

When a service has a live-sync sender, every transaction that changed tracked rows hands its changes to
:class:`LiveSyncHook` just before committing. Changes made by an integration identity (the bridge itself)
are echoes and never sent. The rest go to the bridge in one call, as one unit, with the rows their lookups
point at (so the bridge never has to read back from a service that is in the middle of a transaction).
If the bridge refuses, the hook raises and the whole source transaction rolls back: both or neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from sandbox.errors import BadRequest, SandboxError, ServiceUnavailable
from sandbox.odata.dataverse import codes
from sandbox.odata.model import EntityType, Model
from sandbox.odata.store import Store
from sandbox.outbox import dumps
from sandbox.wellknown import INTEGRATION_IDENTITY

#: identities whose writes are the bridge's own and must not come back (echo prevention); kept as a set for
#: the callers that test membership, its one member defined in :mod:`sandbox.wellknown`
INTEGRATION_IDENTITIES = frozenset({INTEGRATION_IDENTITY})

Sender = Callable[[dict[str, Any]], None]


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

    def __init__(self, service_name: str, model: Model, store: Store, sender: Sender) -> None:
        self.service_name = service_name
        self.model = model
        self.store = store
        self.sender = sender
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
            self.sender(payload)
        except SandboxError:
            raise
        except Exception as exc:  # noqa: BLE001 - the bridge being unreachable must not become a 500
            raise ServiceUnavailable(f"Dual-write could not reach the bridge: {exc}") from exc

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

    def send(payload: dict[str, Any]) -> None:
        response = client.post(
            "/api/live", content=dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}
        )
        if response.status_code < 400:
            return
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
