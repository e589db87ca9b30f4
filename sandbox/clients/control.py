"""The ``/_sandbox/`` control plane client: health, reset, seed, snapshots, journal, faults, change feed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from sandbox.clients.base import HttpOwner
from sandbox.clients.encoding import dump_json, join_csv, json_or_none, with_query
from sandbox.clients.errors import raise_for_status
from sandbox.wellknown import INTEGRATION_IDENTITY

__all__ = ["ControlClient"]


class ControlClient(HttpOwner):
    """The ``/_sandbox/`` control plane of any service; ``base_url`` is the server origin.

    Routes (``sandbox/control.py``): ``GET health``, ``GET info``, ``POST reset``, ``POST seed``,
    ``GET snapshot`` (export), ``POST snapshot`` (import), ``GET``/``DELETE journal``,
    ``GET``/``POST``/``DELETE faults``, ``GET``/``DELETE faults/<id>``, ``GET changes``.
    """

    prefix: ClassVar[str] = "_sandbox"

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        identity: str | None = None,
        token: str = "sandbox",
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.origin = base_url.rstrip("/")
        self.timeout = timeout
        self.http = self.open_http(
            f"{self.origin}/{self.prefix}/",
            transport=transport,
            identity=identity,
            token=token,
            timeout=timeout,
            headers=headers,
            defaults={"Accept": "application/json"},
            auth=auth,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        headers = {}
        content = None
        if body is not None:
            content = dump_json(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        url = with_query(path, params)
        response = self.http.request(
            method, url, content=content, headers=headers, timeout=self.timeout if timeout is None else timeout
        )
        return json_or_none(raise_for_status(response))

    def health(self) -> dict[str, Any]:
        """Liveness and component status."""
        return self._call("GET", "health") or {}

    def info(self) -> dict[str, Any]:
        """Service name, version, storage, counts."""
        return self._call("GET", "info") or {}

    def reset(self) -> None:
        """Drop all data (and the journal) back to an empty service."""
        self._call("POST", "reset")

    def seed(self, seed: int = 1, **options: Any) -> dict[str, Any]:
        """Load deterministic demo data from ``seed``; ``options`` pass through (e.g. ``customers=50``)."""
        return self._call("POST", "seed", body={"seed": seed, **options}) or {}

    def snapshot(self) -> dict[str, Any]:
        """Export the whole service state as JSON."""
        return self._call("GET", "snapshot") or {}

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the service state with an exported snapshot."""
        self._call("POST", "snapshot", body=dict(snapshot))

    def journal(self, limit: int = 100, *, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The latest recorded requests (``path`` is a regular expression the service applies)."""
        data = self._call("GET", "journal", params={"limit": limit, "method": method, "path": path})
        return _unwrap_list(data, "entries")

    def clear_journal(self) -> None:
        """Forget every recorded request."""
        self._call("DELETE", "journal")

    def add_fault(
        self,
        match_method: str | Sequence[str] | None = None,
        match_path: str | None = None,
        status: int = 503,
        probability: float = 1.0,
        latency_ms: int = 0,
        retry_after: float | None = None,
        times: int | None = None,
        match_identity: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Inject a fault; returns the stored rule (with its ``id``).

        ``match_method`` is exact (or a list of methods), ``match_path`` a regular expression searched in the
        request path, ``match_identity`` the caller's ``X-Sandbox-Identity`` (the bridge's requests carry
        :data:`~sandbox.wellknown.INTEGRATION_IDENTITY`); None matches anything. ``times=None`` fires until removed. ``extra`` passes further rule fields
        (``drop=True`` for a dropped connection, ``when="after"``, ``message``). Retry-After is whole
        seconds on the wire, so a fractional ``retry_after`` is rounded up.
        """
        method = match_method if match_method is None or isinstance(match_method, str) else list(match_method)
        rule: dict[str, Any] = {
            "method": method,
            "path": match_path,
            "identity": match_identity,
            "status": status,
            "probability": probability,
            "latency_ms": int(latency_ms),
            "retry_after": None if retry_after is None else math.ceil(retry_after),
            "times": times,
            **extra,
        }
        return self._call("POST", "faults", body={k: v for k, v in rule.items() if v is not None}) or {}

    def fail_bridge_writes(self, status: int = 503, *, times: int | None = 1, **extra: Any) -> dict[str, Any]:
        """Make the bridge's next ``times`` writes to this service fail with ``status``.

        The fault matches the integration identity (:data:`~sandbox.wellknown.INTEGRATION_IDENTITY`) on any
        write method, single request or ``$batch`` alike.
        """
        return self.add_fault(
            match_method=["POST", "PATCH", "PUT", "DELETE"],
            match_identity=INTEGRATION_IDENTITY,
            status=status,
            times=times,
            **extra,
        )

    def faults(self) -> list[dict[str, Any]]:
        """The active fault rules."""
        return _unwrap_list(self._call("GET", "faults"), "faults")

    def fault(self, id: str) -> dict[str, Any]:
        """One fault rule by id (404 ServiceError when gone, e.g. after its ``times`` ran out)."""
        return self._call("GET", f"faults/{quote(str(id), safe='')}") or {}

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "faults")

    def remove_fault(self, id: str | int) -> None:
        """Remove one fault rule (404 ServiceError when unknown)."""
        self._call("DELETE", f"faults/{quote(str(id), safe='')}")

    def changes(
        self,
        after: int = 0,
        limit: int = 500,
        tables: str | Sequence[str] | None = None,
        exclude_identity: str | None = None,
        wait: float = 0,
    ) -> dict[str, Any]:
        """Outbox entries with sequence > ``after``: ``{"changes": [...], "next": int, "latest": int}``.

        ``wait`` > 0 long-polls up to that many seconds; the read timeout is stretched to cover it.
        """
        params = {
            "after": after,
            "limit": limit,
            "tables": join_csv(tables),
            "exclude_identity": exclude_identity,
            "wait": wait or None,
        }
        timeout = max(self.timeout, wait + 10.0) if wait else None
        return self._call("GET", "changes", params=params, timeout=timeout) or {}

    def __repr__(self) -> str:
        return f"ControlClient({self.origin!r})"


def _unwrap_list(data: Any, *names: str) -> list[Any]:
    """A list answer, tolerating ``{"value": [...]}`` or ``{"<name>": [...]}`` wrappers."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    for name in ("value", *names):
        if isinstance(data.get(name), list):
            return data[name]
    raise ValueError(f"expected a list, got {data!r}"[:300])
