"""Dynamics 365 Sales over the Dataverse Web API: GUID and alternate keys, actions, functions, change tracking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox import jsonio
from sandbox.clients.base import ODataClient
from sandbox.clients.encoding import join_csv, json_or_none
from sandbox.clients.errors import ServiceError
from sandbox.clients.keys import format_key, format_literal, parse_entity_id

__all__ = ["DeltaResult", "SalesClient"]


@dataclass
class DeltaResult:
    """One round of Dataverse change tracking: changed rows, removed ids, and the link for the next round."""

    changed: list[dict[str, Any]]
    deleted: list[str]
    delta_link: str | None


class SalesClient(ODataClient):
    """Dynamics 365 Sales over the Dataverse Web API (``<origin>/api/data/v9.2/``).

    Keys: a GUID string (bare), or a mapping for an alternate key (``{"accountnumber": "C-1"}``).
    """

    root_path = "api/data/v9.2/"
    namespace = "Microsoft.Dynamics.CRM"
    guid_keys = True

    @staticmethod
    def bind(entity_set: str, key: Any) -> str:
        """The ``@odata.bind`` value for a row: ``/accounts(<guid>)`` or ``/accounts(accountnumber='C-1')``."""
        return "/" + entity_set + format_key(key, guid_bare=True)

    def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        return_representation: bool = False,
        select: str | Sequence[str] | None = None,
    ) -> str | dict[str, Any]:
        """POST a row. Returns its GUID (from ``OData-EntityId``), or the row (201) with ``return_representation``."""
        if return_representation:
            params = {"$select": join_csv(select)}
            response = self.request(
                "POST", entity_set, params=params, json_body=dict(body), headers=self._prefer("return=representation")
            )
            if response.content.strip():
                return response.json()
            # The preference was not honoured (204): fetch the row the answer points at.
            return self.request("GET", self._entity_url(response), params=params).json()
        response = self.request("POST", entity_set, json_body=dict(body))
        return parse_entity_id(self._entity_url(response))

    @staticmethod
    def _entity_url(response: httpx.Response) -> str:
        entity_id = response.headers.get("OData-EntityId") or response.headers.get("Location")
        if not entity_id:
            raise ServiceError(
                response.status_code, "", "create answered without OData-EntityId", response.text, response
            )
        return entity_id

    def retrieve(
        self,
        entity_set: str,
        key: Any,
        *,
        select: str | Sequence[str] | None = None,
        expand: str | Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET one row by GUID or alternate key."""
        params = self._query_params(select=select, expand=expand)
        return self.request("GET", self.entity_path(entity_set, key), params=params, headers=headers).json()

    def update(self, entity_set: str, key: Any, body: Mapping[str, Any], *, if_match: str | None = None) -> None:
        """PATCH an existing row (204).

        Sends ``If-Match: *`` unless ``if_match`` names an etag, so a missing row is a 404 rather than
        the upsert a bare PATCH would be (Microsoft's own client does the same).
        """
        self.request(
            "PATCH", self.entity_path(entity_set, key), json_body=dict(body), headers={"If-Match": if_match or "*"}
        )

    def upsert(self, entity_set: str, key: Any, body: Mapping[str, Any]) -> None:
        """PATCH without a condition: update the row, or create it from the key (204 either way)."""
        self.request("PATCH", self.entity_path(entity_set, key), json_body=dict(body))

    def delete(self, entity_set: str, key: Any, *, if_match: str | None = None) -> None:
        """DELETE a row (204); ``if_match`` makes it conditional on that etag."""
        headers = {"If-Match": if_match} if if_match else None
        self.request("DELETE", self.entity_path(entity_set, key), headers=headers)

    def action(
        self, name: str, body: Mapping[str, Any] | None = None, *, entity_set: str | None = None, key: Any = None
    ) -> dict[str, Any] | None:
        """Call an action. Unbound: ``POST /Name``; bound to a row: ``POST set(key)/Microsoft.Dynamics.CRM.Name``;
        bound to a collection (``entity_set`` without ``key``): ``POST set/Microsoft.Dynamics.CRM.Name``.

        Returns the JSON result, or None for 204.
        """
        if entity_set is None:
            if key is not None:
                raise ValueError("a bound action needs entity_set as well as key")
            path = name
        else:
            path = f"{self.entity_path(entity_set, key)}/{self.namespace}.{name}"
        return json_or_none(self.request("POST", path, json_body=dict(body or {})))

    def function(self, name: str, **params: Any) -> dict[str, Any]:
        """Call an unbound function: ``GET Name()`` or ``GET Name(p=@p)?@p=<literal>``.

        Values become OData literals (strings quoted); lists and dicts are sent as JSON.
        """
        if not params:
            return self.get(f"{name}()")
        signature = ",".join(f"{param}=@{param}" for param in params)
        aliases = {f"@{param}": _function_literal(value) for param, value in params.items()}
        return json_or_none(self.request("GET", f"{name}({signature})", params=aliases)) or {}

    def who_am_i(self) -> dict[str, Any]:
        """``GET WhoAmI()`` -> ``{"BusinessUnitId", "UserId", "OrganizationId"}``."""
        return self.function("WhoAmI")

    def track_changes(
        self,
        entity_set: str | None = None,
        *,
        select: str | Sequence[str] | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
    ) -> DeltaResult:
        """One round of Dataverse change tracking (``Prefer: odata.track-changes``).

        First round: pass ``entity_set`` (and ``select``); every row comes back as changed. Later rounds:
        pass the previous ``delta_link``. Pages are followed; ``$deletedEntity`` entries become ``deleted`` ids.
        """
        headers = self._prefer("odata.track-changes", f"odata.maxpagesize={page_size}" if page_size else None)
        if delta_link is not None:
            page = self.request("GET", delta_link, headers=headers).json()
        elif entity_set is not None:
            page = self.request("GET", entity_set, params=self._query_params(select=select), headers=headers).json()
        else:
            raise ValueError("track_changes needs entity_set or delta_link")
        changed: list[dict[str, Any]] = []
        deleted: list[str] = []
        while True:
            for row in page.get("value", []):
                if "$deletedEntity" in str(row.get("@odata.context", "")) or row.get("reason") == "deleted":
                    deleted.append(str(row.get("id")))
                else:
                    changed.append(row)
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return DeltaResult(changed, deleted, page.get("@odata.deltaLink"))
            page = self.request("GET", next_link, headers=headers).json()


def _function_literal(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return jsonio.dumps(value, jsonio.json_default, decimal_numbers=True)
    return format_literal(value)
