"""Supply Chain Management over F&O OData data entities: compound keys, companies, bound actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.clients.base import ODataClient
from sandbox.clients.encoding import json_or_none

__all__ = ["ScmClient"]


class ScmClient(ODataClient):
    """Supply Chain Management over F&O OData data entities (``<origin>/data/``).

    Keys are mappings of every key field (``{"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": "US-001"}``); all
    strings are quoted. Reads see the caller's default company unless ``cross_company=True``.
    """

    root_path = "data/"
    namespace = "Microsoft.Dynamics.DataEntities"
    guid_keys = False
    cross_company_option = "cross-company"

    def create(self, entity_set: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a row; returns the created row (201) with defaults and number-sequence values."""
        return self.request("POST", entity_set, json_body=dict(body)).json()

    def retrieve(
        self,
        entity_set: str,
        key: Any,
        *,
        cross_company: bool = False,
        select: str | Sequence[str] | None = None,
        expand: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """GET one row by its full key."""
        params = self._query_params(select=select, expand=expand, cross_company=cross_company)
        return self.request("GET", self.entity_path(entity_set, key), params=params).json()

    def update(self, entity_set: str, key: Any, body: Mapping[str, Any], *, if_match: str | None = None) -> None:
        """PATCH a row (204). F&O needs no If-Match; pass an etag to make it conditional."""
        headers = {"If-Match": if_match} if if_match else None
        self.request("PATCH", self.entity_path(entity_set, key), json_body=dict(body), headers=headers)

    def delete(self, entity_set: str, key: Any) -> None:
        """DELETE a row (204)."""
        self.request("DELETE", self.entity_path(entity_set, key))

    def action(
        self, entity_set: str, key: Any, name: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """``POST set(key)/Microsoft.Dynamics.DataEntities.Name`` (``key=None``: bound to the collection).

        Returns the JSON result, or None for 204.
        """
        path = f"{self.entity_path(entity_set, key)}/{self.namespace}.{name}"
        return json_or_none(self.request("POST", path, json_body=dict(body or {})))
