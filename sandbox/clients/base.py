"""The OData v4 client every service client builds on: headers, errors, paging and ``$batch``."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from sandbox.clients.auth import ClientCredentials
from sandbox.clients.batch import BatchOp, BatchResult, result_from
from sandbox.clients.encoding import (
    IDENTITY_HEADER,
    PATH_SAFE,
    dump_json,
    join_csv,
    json_or_none,
    with_query,
)
from sandbox.clients.errors import ServiceError, raise_for_status
from sandbox.clients.keys import format_key
from sandbox.errors import SandboxError
from sandbox.odata import batch as wire

__all__ = ["HttpOwner", "ODataClient"]

#: a URL that names its own scheme (an ``@odata.nextLink``, a caller's absolute URL)
_ABSOLUTE_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class HttpOwner:
    """A client that owns one :class:`httpx.Client` (``http``): closed by :meth:`close` or a ``with`` block."""

    http: httpx.Client

    @staticmethod
    def open_http(
        base_url: str,
        *,
        transport: httpx.BaseTransport | None,
        identity: str | None,
        token: str,
        timeout: float,
        headers: Mapping[str, str] | None,
        defaults: Mapping[str, str],
        auth: httpx.Auth | None = None,
    ) -> httpx.Client:
        """The :class:`httpx.Client` every request goes through: ``defaults``, the bearer ``token`` and the
        caller's ``identity`` on every request, then the caller's own ``headers`` over them.

        ``auth`` replaces the bearer token with one from the identity service when the service asks for it
        (default: :class:`~sandbox.clients.auth.ClientCredentials` of the well-known development app, which finds
        the identity service from the service's 401 challenge; a stack without authentication never asks)."""
        sent = {**defaults, "Authorization": f"Bearer {token}"}
        if identity is not None:
            sent[IDENTITY_HEADER] = identity
        sent.update(headers or {})
        return httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers=sent,
            auth=auth if auth is not None else ClientCredentials(),
        )

    def close(self) -> None:
        """Close the underlying :class:`httpx.Client` (and its transport)."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Python keyword names accepted by :meth:`ODataClient.get` for the OData system query options.
_SYSTEM_OPTIONS = {
    "select",
    "filter",
    "orderby",
    "top",
    "skip",
    "expand",
    "count",
    "apply",
    "search",
    "format",
    "skiptoken",
    "deltatoken",
}
_PARAM_ALIASES = {"cross_company": "cross-company"}


class ODataClient(HttpOwner):
    """An OData v4 service root over one :class:`httpx.Client`: headers, errors, paging and ``$batch``.

    ``base_url`` is the server origin (``http://127.0.0.1:5101``); subclasses append their service root
    (``root_path``). A ``base_url`` that already ends with the root is taken as the root. ``identity``
    goes out as ``X-Sandbox-Identity``; ``token`` as ``Authorization: Bearer <token>``.
    """

    #: Path of the service root below the origin, with a trailing slash ("" = base_url is the root).
    root_path: ClassVar[str] = ""
    #: Namespace that qualifies bound actions.
    namespace: ClassVar[str] = ""
    #: Whether GUID-looking strings are written bare in keys (Dataverse) or quoted (F&O).
    guid_keys: ClassVar[bool] = True
    #: The query option that widens a read from the caller's company to every company (F&O's
    #: ``cross-company``), sent as ``=true`` for ``cross_company=True``; None: the service has no companies.
    cross_company_option: ClassVar[str | None] = None

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
        self.origin, self.root = _split_root(base_url, self.root_path)
        self.identity = identity
        self.timeout = timeout
        self.http = self.open_http(
            self.root,
            transport=transport,
            identity=identity,
            token=token,
            timeout=timeout,
            headers=headers,
            defaults={"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"},
            auth=auth,
        )

    # ----------------------------------------------------------------------------- plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request relative to the service root; raise :class:`ServiceError` on >= 400.

        ``params`` are encoded OData-style (``%20`` for spaces, ``$`` and quotes readable) and appended
        to any query already in ``path``. ``json_body`` is sent as ``application/json; charset=utf-8``.
        """
        url = with_query(path, params)
        send_headers = dict(headers or {})
        if json_body is not None:
            content = dump_json(json_body)
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response = self.http.request(
            method,
            self.absolute_url(url),
            content=content,
            headers=send_headers,
            timeout=self.timeout if timeout is None else timeout,
        )
        return raise_for_status(response)

    def absolute_url(self, url: str) -> str:
        """``url`` relative to the service root made absolute (an absolute one as it is), as httpx would merge
        it with the client's base URL: given whole, httpx parses it once instead of twice."""
        if _ABSOLUTE_URL.match(url):
            return url
        return self.root + url.lstrip("/")

    def entity_path(self, entity_set: str, key: Any = None) -> str:
        """``entity_set`` or ``entity_set(<key>)``, percent-encoded for a URL path."""
        if key is None:
            return entity_set
        return entity_set + quote(format_key(key, guid_bare=self.guid_keys), safe=PATH_SAFE)

    def _query_params(
        self,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
        expand: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        cross_company: bool = False,
    ) -> dict[str, Any]:
        """The query string of a read: the system query options given, ``extra`` as it is, and
        :attr:`cross_company_option` for ``cross_company`` (a :class:`TypeError` on a service without companies,
        as an unknown keyword would be)."""
        params: dict[str, Any] = {
            "$select": join_csv(select),
            "$filter": filter,
            "$orderby": join_csv(orderby),
            "$top": top,
            "$expand": join_csv(expand),
        }
        params.update(extra or {})
        if cross_company:
            if self.cross_company_option is None:
                raise TypeError(f"{type(self).__name__} reads no companies: cross_company is an F&O option")
            params[self.cross_company_option] = "true"
        return {name: value for name, value in params.items() if value is not None}

    @staticmethod
    def _prefer(*values: str | None) -> dict[str, str]:
        joined = ",".join(value for value in values if value)
        return {"Prefer": joined} if joined else {}

    # ----------------------------------------------------------------------------- reading

    def get(self, path: str, *, headers: Mapping[str, str] | None = None, **params: Any) -> dict[str, Any]:
        """GET ``path`` and return the JSON body (``{}`` for an empty answer).

        Keyword names of system query options get their ``$`` (``select="name"`` -> ``$select=name``);
        ``cross_company=True`` becomes ``cross-company=true``; other names pass unchanged (use
        ``**{"@p1": "'x'"}`` for aliases).
        """
        query: dict[str, Any] = {}
        for name, value in params.items():
            if name in _SYSTEM_OPTIONS:
                name = "$" + name
            query[_PARAM_ALIASES.get(name, name)] = value
        response = self.request("GET", path, params=query, headers=headers)
        return json_or_none(response) or {}

    def iter_pages(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
        expand: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        headers: Mapping[str, str] | None = None,
        cross_company: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the rows of each page, following ``@odata.nextLink`` verbatim until it is absent.

        ``page_size`` asks for ``Prefer: odata.maxpagesize=N``; the same headers go with every page.
        ``cross_company`` reads every company (F&O's ``cross-company=true``; only on a service with companies).
        """
        send_headers = dict(headers or {})
        if page_size is not None:
            send_headers.update(self._prefer(send_headers.pop("Prefer", None), f"odata.maxpagesize={page_size}"))
        params = self._query_params(filter, select, orderby, top, expand, extra, cross_company)
        page = json_or_none(self.request("GET", entity_set, params=params, headers=send_headers)) or {}
        seen: set[str] = set()
        while True:
            yield list(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            if next_link in seen:  # a server bug would otherwise loop forever
                raise RuntimeError(f"@odata.nextLink repeats: {next_link}")
            seen.add(next_link)
            page = json_or_none(self.request("GET", next_link, headers=send_headers)) or {}

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
        expand: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        headers: Mapping[str, str] | None = None,
        cross_company: bool = False,
    ) -> list[dict[str, Any]]:
        """All rows matching the options, every page followed (see :meth:`iter_pages`)."""
        rows: list[dict[str, Any]] = []
        for page in self.iter_pages(
            entity_set,
            filter=filter,
            select=select,
            orderby=orderby,
            top=top,
            expand=expand,
            extra=extra,
            page_size=page_size,
            headers=headers,
            cross_company=cross_company,
        ):
            rows.extend(page)
        return rows

    def count(
        self,
        entity_set: str,
        filter: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        cross_company: bool = False,
    ) -> int:
        """``GET <set>/$count`` (plain-text number), optionally filtered (``cross_company`` as in :meth:`iter_pages`)."""
        params = self._query_params(filter=filter, extra=extra, cross_company=cross_company)
        response = self.request("GET", f"{entity_set}/$count", params=params, headers={"Accept": "text/plain"})
        return int(response.text.strip().lstrip("\ufeff"))

    # ----------------------------------------------------------------------------- $batch

    def batch(
        self,
        operations: Sequence[BatchOp | Sequence[BatchOp]],
        *,
        continue_on_error: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> list[BatchResult]:
        """Send ``operations`` as one ``$batch``; nested lists become atomic change sets.

        The body is ``multipart/mixed`` with CRLF line endings and absolute part URLs. The answer is
        parsed into :class:`BatchResult` parts in response order; failed parts do not raise (the
        multipart answer comes back even with a 4xx outer status). A non-multipart failure raises
        :class:`ServiceError`. ``continue_on_error`` sends ``Prefer: odata.continue-on-error``.
        """
        body, content_type = self.build_batch(operations)
        send_headers = {"Content-Type": content_type, **(headers or {})}
        if continue_on_error:
            send_headers.update(self._prefer(send_headers.pop("Prefer", None), "odata.continue-on-error"))
        response = self.http.request("POST", self.absolute_url("$batch"), content=body, headers=send_headers)
        response_type = response.headers.get("Content-Type", "")
        if not response_type.lower().startswith("multipart/"):
            raise_for_status(response)
            raise ServiceError(
                response.status_code,
                "",
                f"$batch answered {response_type or 'no content type'}, not multipart/mixed",
                response.text,
                response,
            )
        try:
            items = wire.parse_batch_response(response.content, response_type)
        except SandboxError as exc:
            raise ServiceError(
                response.status_code, "", f"unreadable $batch answer: {exc.message}", response.text, response
            ) from exc
        results: list[BatchResult] = []
        for item in items:
            for part in item if isinstance(item, list) else [item]:
                results.append(result_from(part, response.request))
        return results

    def send(self, op: BatchOp, *, headers: Mapping[str, str] | None = None) -> BatchResult:
        """Send one operation as a plain request and answer like a ``$batch`` part (failures do not raise).

        For a unit of one write, a ``$batch`` around it adds nothing but the multipart work on both sides:
        a single request is atomic on its own.
        """
        url = with_query(op.url, op.params)
        send_headers = {**(op.headers or {}), **(headers or {})}
        content = None
        if op.body is not None:
            content = dump_json(op.body)
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response = self.http.request(op.method, self.absolute_url(url), content=content, headers=send_headers)
        parsed: Any = None
        if response.content.strip():
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
        return BatchResult(
            status=response.status_code,
            headers=response.headers,
            json=parsed,
            content_id=op.content_id,
            text=response.text,
            reason=response.reason_phrase,
            request=response.request,
        )

    def build_batch(self, operations: Sequence[BatchOp | Sequence[BatchOp]]) -> tuple[bytes, str]:
        """The ``$batch`` body and its ``Content-Type`` (exposed so tests and tools can inspect it)."""
        position = 0
        used_ids: set[str] = set()

        def part(op: BatchOp, in_change_set: bool) -> wire.BatchRequest:
            nonlocal position
            position += 1
            content_id = op.content_id or (str(position) if in_change_set else None)
            if content_id is not None:
                if content_id in used_ids:
                    raise ValueError(f"duplicate Content-ID {content_id!r} in $batch")
                used_ids.add(content_id)
            return self._batch_request(op, content_id)

        items: list[wire.BatchRequest | wire.ChangeSet] = []
        for entry in operations:
            if isinstance(entry, BatchOp):
                items.append(part(entry, False))
                continue
            if not entry:
                raise ValueError("an empty change set")
            for op in entry:
                if op.method.upper() == "GET":
                    raise ValueError("a change set holds writes only (POST/PATCH/PUT/DELETE)")
            items.append(wire.ChangeSet([part(op, True) for op in entry]))
        return wire.build_batch_request(items)

    def _batch_request(self, op: BatchOp, content_id: str | None) -> wire.BatchRequest:
        url = with_query(op.url, op.params)
        headers = {"Accept": "application/json"}
        payload = b""
        if op.body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            payload = dump_json(op.body)
        headers.update(op.headers or {})
        return wire.BatchRequest(op.method.upper(), self._part_url(url), headers, payload, content_id)

    def _part_url(self, url: str) -> str:
        """Absolute part URL; ``$n`` Content-ID references stay as they are."""
        if url.startswith("$"):
            return url
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
            return str(httpx.URL(url))
        root_path = httpx.URL(self.root).raw_path.decode("ascii")
        if url.startswith("/") and url.startswith(root_path):
            return str(httpx.URL(self.origin + url))
        return str(httpx.URL(self.root + url.lstrip("/")))

    # ----------------------------------------------------------------------------- lifecycle

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r}, identity={self.identity!r})"


def _split_root(base_url: str, root_path: str) -> tuple[str, str]:
    """(origin, service root) from a base URL that may or may not already end with the root path."""
    base = base_url.rstrip("/")
    root = root_path.strip("/")
    if root and base.endswith("/" + root):
        origin = base[: -len(root) - 1]
    else:
        origin = base
    return origin, f"{origin}/{root}/" if root else f"{base}/"
