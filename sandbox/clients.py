"""Typed HTTP clients for the two mock services and their control planes.

Everything that talks to a service (the bridge, scenario scripts, load tests, the CLI) goes through these
classes, so the wire conventions live in one place: OData headers, key formatting, ``@odata.nextLink``
paging, ``multipart/mixed`` ``$batch`` and the two error shapes. The transport is injectable:
``httpx.WSGITransport(app=flask_app)`` runs a service in-process, the default transport speaks real HTTP,
``httpx.MockTransport`` lets tests pin the exact requests.

The clients never retry. Retrying belongs to the caller (the bridge owns its policy); a failed request
raises :class:`ServiceError`, which carries the parsed error and the ``Retry-After`` hint.

Each client owns one :class:`httpx.Client` and keeps no per-request state on itself, so one instance can
be shared by threads the way an ``httpx.Client`` can.
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import json
import math
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from sandbox import jsonio
from sandbox.errors import SandboxError
from sandbox.odata import batch as wire

__all__ = [
    "BatchOp",
    "BatchResult",
    "ControlClient",
    "DeltaResult",
    "IDENTITY_HEADER",
    "ODataClient",
    "SalesClient",
    "ScmClient",
    "ServiceError",
    "format_key",
    "format_literal",
    "parse_entity_id",
]

#: Header naming the caller to the sandbox services (echo prevention keys on it; the bridge sends "dualwrite").
IDENTITY_HEADER = "X-Sandbox-Identity"

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ENTITY_ID_RE = re.compile(r"\(([^()]*)\)\s*$")

# Characters left readable in URL paths and query values: OData's own syntax (quotes, parentheses,
# commas, '$' options, '@' aliases, '=' in nested options, '/' traversal, '*' F&O wildcards).
# Everything else, notably space, '&', '#', '+', '%', ';' and '?', is percent-encoded so a literal
# can never cut the URL ('/' stays encoded inside key segments, where it would split the path).
_PATH_SAFE = "()'=,:@!$*-._~"
_QUERY_SAFE = "()',:@!$*/=-._~"

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


# --------------------------------------------------------------------------------------------- errors


class ServiceError(Exception):
    """A service answered with a status >= 400.

    ``message`` is the useful text of the service's error body: Dataverse ``error.message``; F&O
    ``error.innererror.message`` (the Infolog) when present, else ``error.message``. ``code`` is the
    Dataverse HRESULT-style code (``"0x80040217"``), often ``""`` for F&O. ``retry_after`` is the
    ``Retry-After`` header in seconds (429/503), ``None`` when absent.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: Any,
        response: httpx.Response,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.response = response
        self.retry_after = retry_after
        super().__init__(self._describe())

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServiceError:
        """Build the error from a failed response, understanding both services' error bodies."""
        body: Any
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = response.text
        code, message = _error_code_and_message(body)
        if not message:
            message = (body.strip()[:500] if isinstance(body, str) else "") or response.reason_phrase
        return cls(
            response.status_code, code, message, body, response, _parse_retry_after(response.headers.get("Retry-After"))
        )

    @property
    def transient(self) -> bool:
        """True for answers worth retrying later (throttling, unavailable, gateway trouble)."""
        return self.status in (408, 429, 502, 503, 504)

    def _describe(self) -> str:
        where = ""
        try:
            request = self.response.request
            where = f" ({request.method} {request.url})"
        except RuntimeError:  # a synthesized response (batch part) may have no request
            pass
        code = f" [{self.code}]" if self.code else ""
        return f"{self.status}{code}: {self.message}{where}"


def _error_code_and_message(body: Any) -> tuple[str, str]:
    if not isinstance(body, Mapping):
        return "", ""
    error = body.get("error")
    if not isinstance(error, Mapping):
        # Non-OData shapes (control plane, proxies): {"message": ...} or {"error": "text"}.
        text = error if isinstance(error, str) else body.get("message")
        return str(body.get("code") or ""), str(text or "")
    code = error.get("code")
    message = str(error.get("message") or "")
    inner = error.get("innererror")
    if isinstance(inner, Mapping) and inner.get("message"):
        message = str(inner["message"])  # F&O: the Infolog is in here, the outer text is generic
    return ("" if code is None else str(code)), message


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 allows both)."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - time.time())


def _raise_for_status(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        response.read()
        raise ServiceError.from_response(response)
    return response


# ------------------------------------------------------------------------------------- key formatting


def _looks_like_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value))


def format_literal(value: Any, *, guid_bare: bool = True) -> str:
    """An OData URL literal for ``value`` (not yet percent-encoded).

    Strings are single-quoted with ``'`` doubled; GUID-looking strings and :class:`uuid.UUID` stay bare
    when ``guid_bare`` (Dataverse style; F&O quotes every string); ints, floats and decimals are bare;
    bools are ``true``/``false``; ``None`` is ``null``; datetimes and dates are bare ISO 8601 (UTC as ``Z``).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if guid_bare and _looks_like_guid(value):
            return value
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot format {type(value).__name__} as an OData literal: {value!r}")


def format_key(key: str | int | uuid.UUID | Mapping[str, Any], *, guid_bare: bool = True) -> str:
    """The parenthesised key segment of an entity URL.

    E.g. ``(7eb682f1-...)``, ``(accountnumber='C-1')`` or ``(dataAreaId='usmf',CustomerAccount='US-001')``.

    A scalar is a single (primary) key; a mapping is a named or composite key, written in its order.
    Values are formatted by :func:`format_literal`; the result is not percent-encoded.
    """
    if isinstance(key, Mapping):
        if not key:
            raise ValueError("an entity key needs at least one property")
        inner = ",".join(f"{name}={format_literal(value, guid_bare=guid_bare)}" for name, value in key.items())
    else:
        inner = format_literal(key, guid_bare=guid_bare)
    return f"({inner})"


def parse_entity_id(url: str) -> str:
    """The GUID in an ``OData-EntityId`` (``.../accounts(<guid>)`` or ``.../accounts(accountid=<guid>)``).

    Raises ValueError when the URL names the row by an alternate key instead of a GUID.
    """
    match = _ENTITY_ID_RE.search(url.strip())
    if match:
        inner = match.group(1)
        candidate = inner.split("=", 1)[1] if "=" in inner and "," not in inner else inner
        candidate = candidate.strip().strip("'")
        if _looks_like_guid(candidate):
            return candidate
    raise ValueError(f"no GUID key in entity id {url!r}")


def _encode_query(params: Mapping[str, Any]) -> str:
    """``name=value&...`` with OData-friendly percent-encoding (spaces as %20, never '+')."""
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        parts.append(f"{quote(name, safe='$@-._~')}={quote(_param_text(value), safe=_QUERY_SAFE)}")
    return "&".join(parts)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _join_csv(value: str | Sequence[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return format_literal(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dump_json(body: Any) -> bytes:
    return jsonio.dumps_bytes(body, _json_default)


def _json_or_none(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content.strip():
        return None
    return jsonio.loads(response.content)


# -------------------------------------------------------------------------------------------- $batch


@dataclass
class BatchOp:
    """One request inside a ``$batch``.

    ``url`` is relative to the service root (``"accounts"``, ``"accounts(<guid>)"``), absolute, or a
    Content-ID reference (``"$1"``, ``"$1/lastname"``). ``content_id`` defaults to the operation's
    1-based position in the flattened operation list; it is sent for change-set members (and for any
    operation that sets it explicitly), so ``"$n"`` in a later URL or ``@odata.bind`` refers to the n-th
    operation passed to :meth:`ODataClient.batch`.
    """

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    content_id: str | None = None
    #: Query options appended to ``url``, encoded like :meth:`ODataClient.request` params.
    params: Mapping[str, Any] | None = None

    @classmethod
    def get(cls, url: str, **kwargs: Any) -> BatchOp:
        return cls("GET", url, **kwargs)

    @classmethod
    def post(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("POST", url, body, **kwargs)

    @classmethod
    def patch(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("PATCH", url, body, **kwargs)

    @classmethod
    def put(cls, url: str, body: Any, **kwargs: Any) -> BatchOp:
        return cls("PUT", url, body, **kwargs)

    @classmethod
    def delete(cls, url: str, **kwargs: Any) -> BatchOp:
        return cls("DELETE", url, **kwargs)


@dataclass
class BatchResult:
    """One response part of a ``$batch`` answer, in the order the service returned them.

    A failed change set comes back as a single error part, and without ``continue_on_error`` the
    service stops at the first failure, so there may be fewer results than operations; correlate by
    ``content_id`` (echoed for change-set members).
    """

    status: int
    headers: httpx.Headers
    json: Any
    content_id: str | None = None
    text: str = ""
    reason: str = ""
    request: httpx.Request | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True for a 1xx-3xx part."""
        return self.status < 400

    @property
    def entity_id(self) -> str | None:
        """The GUID from ``OData-EntityId`` (or ``Location``) when the part created/updated a row by GUID."""
        url = self.headers.get("OData-EntityId") or self.headers.get("Location")
        if not url:
            return None
        try:
            return parse_entity_id(url)
        except ValueError:
            return None

    def error(self) -> ServiceError | None:
        """The part's failure as a :class:`ServiceError` (same parsing as a direct call), or None."""
        if self.ok:
            return None
        response = httpx.Response(
            self.status, headers=self.headers, content=self.text.encode("utf-8"), request=self.request
        )
        return ServiceError.from_response(response)

    def raise_for_status(self) -> BatchResult:
        """Raise the part's :class:`ServiceError` when it failed; return self otherwise."""
        error = self.error()
        if error is not None:
            raise error
        return self


def _result_from(response: wire.BatchResponse, request: httpx.Request | None) -> BatchResult:
    text = response.body.decode("utf-8", errors="replace")
    parsed: Any = None
    if text.strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return BatchResult(
        status=response.status,
        headers=httpx.Headers(response.headers),
        json=parsed,
        content_id=response.content_id,
        text=text,
        reason=response.reason,
        request=request,
    )


# ------------------------------------------------------------------------------------ OData base client


@dataclass
class DeltaResult:
    """One round of Dataverse change tracking: changed rows, removed ids, and the link for the next round."""

    changed: list[dict[str, Any]]
    deleted: list[str]
    delta_link: str | None


class ODataClient:
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

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        identity: str | None = None,
        token: str = "sandbox",
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.origin, self.root = _split_root(base_url, self.root_path)
        self.identity = identity
        self.timeout = timeout
        default_headers = {
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Authorization": f"Bearer {token}",
        }
        if identity is not None:
            default_headers[IDENTITY_HEADER] = identity
        default_headers.update(headers or {})
        self.http = httpx.Client(base_url=self.root, transport=transport, timeout=timeout, headers=default_headers)

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
        url = path
        query = _encode_query(params or {})
        if query:
            url += ("&" if "?" in url else "?") + query
        send_headers = dict(headers or {})
        if json_body is not None:
            content = _dump_json(json_body)
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response = self.http.request(
            method, url, content=content, headers=send_headers, timeout=self.timeout if timeout is None else timeout
        )
        return _raise_for_status(response)

    def entity_path(self, entity_set: str, key: Any = None) -> str:
        """``entity_set`` or ``entity_set(<key>)``, percent-encoded for a URL path."""
        if key is None:
            return entity_set
        return entity_set + quote(format_key(key, guid_bare=self.guid_keys), safe=_PATH_SAFE)

    @staticmethod
    def _query_params(
        filter: str | None = None,
        select: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
        expand: str | Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "$select": _join_csv(select),
            "$filter": filter,
            "$orderby": _join_csv(orderby),
            "$top": top,
            "$expand": _join_csv(expand),
        }
        params.update(extra or {})
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
        return _json_or_none(response) or {}

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
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the rows of each page, following ``@odata.nextLink`` verbatim until it is absent.

        ``page_size`` asks for ``Prefer: odata.maxpagesize=N``; the same headers go with every page.
        """
        send_headers = dict(headers or {})
        if page_size is not None:
            send_headers.update(self._prefer(send_headers.pop("Prefer", None), f"odata.maxpagesize={page_size}"))
        params = self._query_params(filter, select, orderby, top, expand, extra)
        page = _json_or_none(self.request("GET", entity_set, params=params, headers=send_headers)) or {}
        seen: set[str] = set()
        while True:
            yield list(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            if next_link in seen:  # a server bug would otherwise loop forever
                raise RuntimeError(f"@odata.nextLink repeats: {next_link}")
            seen.add(next_link)
            page = _json_or_none(self.request("GET", next_link, headers=send_headers)) or {}

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
        ):
            rows.extend(page)
        return rows

    def count(self, entity_set: str, filter: str | None = None, *, extra: Mapping[str, Any] | None = None) -> int:
        """``GET <set>/$count`` (plain-text number), optionally filtered."""
        params = self._query_params(filter=filter, extra=extra)
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
        response = self.http.request("POST", "$batch", content=body, headers=send_headers)
        response_type = response.headers.get("Content-Type", "")
        if not response_type.lower().startswith("multipart/"):
            _raise_for_status(response)
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
                results.append(_result_from(part, response.request))
        return results

    def send(self, op: BatchOp, *, headers: Mapping[str, str] | None = None) -> BatchResult:
        """Send one operation as a plain request and answer like a ``$batch`` part (failures do not raise).

        For a unit of one write, a ``$batch`` around it adds nothing but the multipart work on both sides:
        a single request is atomic on its own.
        """
        url = op.url
        query = _encode_query(op.params or {})
        if query:
            url += ("&" if "?" in url else "?") + query
        send_headers = {**(op.headers or {}), **(headers or {})}
        content = None
        if op.body is not None:
            content = _dump_json(op.body)
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response = self.http.request(op.method, url, content=content, headers=send_headers)
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
        url = op.url
        query = _encode_query(op.params or {})
        if query:
            url += ("&" if "?" in url else "?") + query
        headers = {"Accept": "application/json"}
        payload = b""
        if op.body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            payload = _dump_json(op.body)
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

    def close(self) -> None:
        """Close the underlying :class:`httpx.Client` (and its transport)."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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


# ------------------------------------------------------------------------------------------ Dataverse


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
            params = {"$select": _join_csv(select)}
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
        return _json_or_none(self.request("POST", path, json_body=dict(body or {})))

    def function(self, name: str, **params: Any) -> dict[str, Any]:
        """Call an unbound function: ``GET Name()`` or ``GET Name(p=@p)?@p=<literal>``.

        Values become OData literals (strings quoted); lists and dicts are sent as JSON.
        """
        if not params:
            return self.get(f"{name}()")
        signature = ",".join(f"{param}=@{param}" for param in params)
        aliases = {f"@{param}": _function_literal(value) for param, value in params.items()}
        return self.get(f"{name}({signature})", **aliases)

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
        return json.dumps(value, default=_json_default, separators=(",", ":"))
    return format_literal(value)


# ------------------------------------------------------------------------------------------------ F&O


class ScmClient(ODataClient):
    """Supply Chain Management over F&O OData data entities (``<origin>/data/``).

    Keys are mappings of every key field (``{"dataAreaId": "usmf", "CustomerAccount": "US-001"}``); all
    strings are quoted. Reads see the caller's default company unless ``cross_company=True``.
    """

    root_path = "data/"
    namespace = "Microsoft.Dynamics.DataEntities"
    guid_keys = False

    @staticmethod
    def _company(extra: Mapping[str, Any] | None, cross_company: bool) -> dict[str, Any]:
        params = dict(extra or {})
        if cross_company:
            params["cross-company"] = "true"
        return params

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
        params = self._query_params(select=select, expand=expand, extra=self._company(None, cross_company))
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
        return _json_or_none(self.request("POST", path, json_body=dict(body or {})))

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
        """As :meth:`ODataClient.iter_pages`; ``cross_company`` adds ``cross-company=true``."""
        return super().iter_pages(
            entity_set,
            filter=filter,
            select=select,
            orderby=orderby,
            top=top,
            expand=expand,
            extra=self._company(extra, cross_company),
            page_size=page_size,
            headers=headers,
        )

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
        """As :meth:`ODataClient.query`; ``cross_company`` adds ``cross-company=true``."""
        return super().query(
            entity_set,
            filter=filter,
            select=select,
            orderby=orderby,
            top=top,
            expand=expand,
            extra=self._company(extra, cross_company),
            page_size=page_size,
            headers=headers,
        )

    def count(
        self,
        entity_set: str,
        filter: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        cross_company: bool = False,
    ) -> int:
        """As :meth:`ODataClient.count`; ``cross_company`` adds ``cross-company=true``."""
        return super().count(entity_set, filter, extra=self._company(extra, cross_company))


# -------------------------------------------------------------------------------------- control plane


class ControlClient:
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
    ) -> None:
        self.origin = base_url.rstrip("/")
        self.timeout = timeout
        default_headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        if identity is not None:
            default_headers[IDENTITY_HEADER] = identity
        default_headers.update(headers or {})
        self.http = httpx.Client(
            base_url=f"{self.origin}/{self.prefix}/", transport=transport, timeout=timeout, headers=default_headers
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
            content = _dump_json(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        query = _encode_query(params or {})
        url = f"{path}?{query}" if query else path
        response = self.http.request(
            method, url, content=content, headers=headers, timeout=self.timeout if timeout is None else timeout
        )
        return _json_or_none(_raise_for_status(response))

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
        request path, ``match_identity`` the caller's ``X-Sandbox-Identity`` (``"dualwrite"``: the bridge);
        None matches anything. ``times=None`` fires until removed. ``extra`` passes further rule fields
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
        """Make the bridge's next ``times`` writes to this service fail with ``status`` (a fault matching the
        ``dualwrite`` identity on any write method, single request or ``$batch`` alike)."""
        return self.add_fault(
            match_method=["POST", "PATCH", "PUT", "DELETE"],
            match_identity="dualwrite",
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
            "tables": _join_csv(tables),
            "exclude_identity": exclude_identity,
            "wait": wait or None,
        }
        timeout = max(self.timeout, wait + 10.0) if wait else None
        return self._call("GET", "changes", params=params, timeout=timeout) or {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
