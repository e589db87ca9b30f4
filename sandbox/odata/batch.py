"""OData ``$batch``: parse a multipart batch, run it with change-set atomicity, render the multipart answer.

Both services use this module from their ``POST <root>/$batch`` route; a :class:`BatchDialect` holds what
differs between Dataverse and F&O (outer status on failure, stop vs keep going, the status of a failed
change set, strict CRLF, the request limit).

The wire format (OData 4.0 multipart batch)::

    --batch_A
    Content-Type: multipart/mixed;boundary=changeset_B

    --changeset_B
    Content-Type: application/http
    Content-Transfer-Encoding: binary
    Content-ID: 1

    POST https://host/api/data/v9.2/accounts HTTP/1.1
    Content-Type: application/json

    {"name":"Contoso"}
    --changeset_B--
    --batch_A--

The stdlib ``email`` parser rewrites line endings and headers of binary HTTP bodies, so a small
purpose-built parser lives here instead. Every malformed input raises :class:`BadRequest` (code
``0x80048d19``); nothing else escapes :func:`parse_batch`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from sandbox import jsonio
from sandbox.errors import BadRequest, InternalError, SandboxError
from sandbox.odata.dataverse import codes

#: HRESULT Dataverse answers for an unreadable / malformed batch payload.
MALFORMED_CODE = codes.PAYLOAD_INVALID

#: Methods a batch part may use; only the writes may appear inside a change set.
ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_HEADER_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HTTP_VERSION = re.compile(r"^HTTP/1\.[01]$")
_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_REFERENCE_URL = re.compile(r"^\$([^/?#]+)")


# ---- data -------------------------------------------------------------------------------------------
@dataclass
class BatchRequest:
    """One inner HTTP request of a batch. ``headers`` keep the sender's spelling; look them up with
    :func:`header`. ``content_id`` comes from the part's MIME headers or, failing that, the inner headers."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


@dataclass
class ChangeSet:
    """An atomic group of write requests: all commit or none do."""

    requests: list[BatchRequest]
    boundary: str | None = None


@dataclass
class BatchResponse:
    """One inner HTTP response. An empty ``reason`` renders as the standard phrase of ``status``."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


@dataclass
class BatchDialect:
    """What differs between the services' ``$batch`` behaviour.

    ``fail_outer_status``: the outer status becomes the first failure's status (Dataverse) unless the
    client asked for ``Prefer: odata.continue-on-error``; otherwise it is always 200 (F&O).
    ``stop_on_error``: stop at the first failure (Dataverse) unless continue-on-error; F&O keeps going.
    ``changeset_failure_status``: the status a failed change set is reported with (F&O: 500);
    None keeps the failing request's own status.
    ``require_crlf``: bare-LF structure is refused with "... Stream was not readable" (Dataverse).
    ``max_requests``: most requests one batch may hold, change-set members included.
    ``service_root``: the rooted path relative part URLs resolve against, e.g. ``/api/data/v9.2/``.
    """

    fail_outer_status: bool
    stop_on_error: bool
    changeset_failure_status: int | None
    require_crlf: bool
    max_requests: int
    service_root: str


#: Dataverse Web API defaults (dataverse-web-api.md section 10).
DATAVERSE_BATCH = BatchDialect(
    fail_outer_status=True,
    stop_on_error=True,
    changeset_failure_status=None,
    require_crlf=True,
    max_requests=1000,
    service_root="/api/data/v9.2/",
)
#: F&O OData defaults (fno-odata.md sections 8, 9, 10).
FNO_BATCH = BatchDialect(
    fail_outer_status=False,
    stop_on_error=False,
    changeset_failure_status=500,
    require_crlf=False,
    max_requests=5000,
    service_root="/data/",
)

BatchItem = BatchRequest | ChangeSet
ResponseItem = BatchResponse | list[BatchResponse]
Dispatch = Callable[[BatchRequest], BatchResponse]
ErrorResponder = Callable[[SandboxError], BatchResponse]


def header(headers: dict[str, str], name: str, default: str | None = None) -> str | None:
    """The value of header ``name`` (case-insensitive), or ``default``."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return default


def wants_continue_on_error(prefer: str | None) -> bool:
    """True when a ``Prefer`` header value asks for ``odata.continue-on-error`` (``=true`` or bare)."""
    if not prefer:
        return False
    for preference in _split_params(prefer, ","):
        name, _, value = preference.partition("=")
        if name.strip().lower() in ("odata.continue-on-error", "continue-on-error"):
            return value.strip().strip('"').lower() in ("", "true")
    return False


# ---- parsing ----------------------------------------------------------------------------------------
def _bad(message: str) -> BadRequest:
    return BadRequest(message, MALFORMED_CODE)


def _lf_error() -> BadRequest:
    return _bad("The batch payload uses bare LF line endings where CRLF is required. Stream was not readable.")


def _split_params(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``("multipart/mixed", {"boundary": "batch_A"})`` from a Content-Type value."""
    if not content_type:
        return "", {}
    pieces = _split_params(content_type, ";")
    if not pieces:
        return "", {}
    media = pieces[0].strip().lower()
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, sep, value = piece.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name.strip().lower()] = value
    return media, params


def _boundary_of(content_type: str | None, what: str) -> str:
    media, params = _media_type(content_type)
    if media != "multipart/mixed":
        raise _bad(f"The {what} must have Content-Type multipart/mixed with a boundary; got '{content_type or ''}'.")
    boundary = params.get("boundary", "")
    if not boundary:
        raise _bad(f"The {what} Content-Type '{content_type}' has no boundary parameter.")
    if len(boundary) > 200 or any(ord(c) < 32 or ord(c) > 126 for c in boundary):
        raise _bad(f"The {what} boundary '{boundary}' is not valid.")
    return boundary


class _Lines:
    """Reads CRLF (or, when allowed, bare LF) terminated lines out of a byte string."""

    def __init__(self, data: bytes, require_crlf: bool) -> None:
        self.data = data
        self.pos = 0
        self.require_crlf = require_crlf

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def read(self) -> bytes | None:
        """The next line without its terminator; None at the end of the data."""
        if self.pos >= len(self.data):
            return None
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            line = self.data[self.pos :]
            self.pos = len(self.data)
            return line
        if end > self.pos and self.data[end - 1 : end] == b"\r":
            line = self.data[self.pos : end - 1]
        else:
            if self.require_crlf:
                raise _lf_error()
            line = self.data[self.pos : end]
        self.pos = end + 1
        return line

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _split_multipart(data: bytes, boundary: str, require_crlf: bool, what: str) -> list[bytes]:
    """The body parts between ``--boundary`` delimiters; preamble and epilogue are dropped.

    The line break before a delimiter belongs to the delimiter (RFC 2046), so part bodies keep their
    bytes exactly. A missing closing delimiter ``--boundary--`` is an error.
    """
    delimiter = re.compile(rb"(?:\A|(\r?\n))--" + re.escape(boundary.encode("ascii")) + rb"(--)?[ \t]*(\r?\n|\Z)")
    parts: list[bytes] = []
    start: int | None = None
    closed = False
    for match in delimiter.finditer(data):
        before, closing, after = match.group(1), match.group(2), match.group(3)
        if require_crlf and (before == b"\n" or after == b"\n"):
            raise _lf_error()
        if start is not None:
            parts.append(data[start : match.start()])
        if closing:
            closed = True
            break
        start = match.end()
    if not parts and start is None:
        if require_crlf and re.search(rb"(?<!\r)\n--" + re.escape(boundary.encode("ascii")), data):
            raise _lf_error()
        raise _bad(f"The {what} contains no part delimited by boundary '{boundary}'.")
    if not closed:
        raise _bad(f"The {what} is not terminated by the closing delimiter '--{boundary}--'.")
    return parts


def _read_headers(lines: _Lines, what: str) -> dict[str, str]:
    """Header lines up to a blank line (or the end of the data); repeated names are joined with ', '."""
    headers: dict[str, str] = {}
    while True:
        line = lines.read()
        if line is None or line == b"":
            return headers
        name, sep, value = line.partition(b":")
        if not sep or not _HEADER_NAME.match(name):
            raise _bad(f"Malformed header line '{_text(line)}' in the {what}.")
        key = name.decode("ascii")
        text = value.strip().decode("utf-8", errors="replace")
        existing = next((k for k in headers if k.lower() == key.lower()), None)
        if existing is None:
            headers[key] = text
        else:
            headers[existing] = f"{headers[existing]}, {text}"


def _text(raw: bytes, limit: int = 120) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


def _check_part_headers(mime: dict[str, str], where: str) -> None:
    media, _ = _media_type(header(mime, "Content-Type"))
    if media not in ("", "application/http"):
        raise _bad(f"The {where} has Content-Type '{header(mime, 'Content-Type')}'; expected application/http.")
    encoding = (header(mime, "Content-Transfer-Encoding") or "binary").strip().lower()
    if encoding not in ("binary", "8bit", "7bit"):
        raise _bad(f"The {where} uses Content-Transfer-Encoding '{encoding}'; only binary is supported.")


def _parse_http_request(part: bytes, mime: dict[str, str], require_crlf: bool, where: str) -> BatchRequest:
    lines = _Lines(part, require_crlf)
    request_line = lines.read()
    while request_line == b"":  # tolerate blank lines before the request line (RFC 9112 2.2)
        request_line = lines.read()
    if request_line is None:
        raise _bad(f"The {where} holds no HTTP request.")
    tokens = request_line.split()
    if len(tokens) != 3:
        raise _bad(f"The {where} has a malformed request line '{_text(request_line)}'; expected 'METHOD URL HTTP/1.1'.")
    try:
        method, url, version = (token.decode("ascii") for token in tokens)
    except UnicodeDecodeError:
        raise _bad(f"The {where} request line '{_text(request_line)}' is not ASCII.") from None
    method = method.upper()
    if method not in ALLOWED_METHODS:
        raise _bad(f"The {where} uses HTTP method '{method}'; a batch part may use GET, POST, PUT, PATCH or DELETE.")
    if not _HTTP_VERSION.match(version):
        raise _bad(
            f"The {where} request line '{_text(request_line)}' has an unsupported HTTP version "
            f"'{version}'; only 'HTTP/1.1' is supported."
        )
    headers = _read_headers(lines, where)
    body = lines.rest()
    length = header(headers, "Content-Length")
    if length is not None:
        try:
            size = int(length.strip())
        except ValueError:
            raise _bad(f"The {where} has an invalid Content-Length '{length}'.") from None
        if size < 0 or size > len(body):
            raise _bad(f"The {where} declares Content-Length {size} but carries {len(body)} bytes.")
        body = body[:size]
    content_id = header(mime, "Content-ID") or header(headers, "Content-ID")
    return BatchRequest(method, url, headers, body, content_id.strip() if content_id else None)


def _parse_part(part: bytes, require_crlf: bool, where: str, allow_changeset: bool) -> BatchItem:
    if not part.strip():
        raise _bad(f"The {where} is empty.")
    lines = _Lines(part, require_crlf)
    mime = _read_headers(lines, f"MIME headers of the {where}")
    body = lines.rest()
    media, _ = _media_type(header(mime, "Content-Type"))
    if media.startswith("multipart/"):
        if not allow_changeset:
            raise _bad(f"The {where} nests a multipart body; change sets cannot be nested.")
        boundary = _boundary_of(header(mime, "Content-Type"), where)
        inner = _split_multipart(body, boundary, require_crlf, f"change set '{boundary}'")
        requests = []
        for index, inner_part in enumerate(inner, start=1):
            request = _parse_part(inner_part, require_crlf, f"part {index} of change set '{boundary}'", False)
            assert isinstance(request, BatchRequest)
            requests.append(request)
        return ChangeSet(requests, boundary)
    _check_part_headers(mime, where)
    return _parse_http_request(body, mime, require_crlf, where)


def _validate(items: Iterable[BatchItem], dialect: BatchDialect) -> None:
    """Limits, writes-only change sets and unique Content-IDs; raises :class:`BadRequest`."""
    total = 0
    for index, item in enumerate(items, start=1):
        if isinstance(item, ChangeSet):
            if not item.requests:
                raise _bad(f"Change set {index} of the batch holds no request.")
            seen: set[str] = set()
            for request in item.requests:
                if request.method.upper() not in WRITE_METHODS:
                    raise _bad(
                        f"A change set may only contain POST, PATCH, PUT or DELETE requests; "
                        f"found '{request.method} {request.url}'."
                    )
                if request.content_id is not None:
                    if request.content_id in seen:
                        raise _bad(f"Content-ID '{request.content_id}' is used twice in the same change set.")
                    seen.add(request.content_id)
            total += len(item.requests)
        else:
            total += 1
        if total > dialect.max_requests:
            raise _bad(
                f"The batch holds more than {dialect.max_requests} requests; "
                f"the maximum number of requests in a batch is {dialect.max_requests}."
            )


def parse_batch(body: bytes, content_type: str, dialect: BatchDialect) -> list[BatchRequest | ChangeSet]:
    """Parse a ``$batch`` request body into requests and change sets, in order.

    ``content_type`` is the outer ``Content-Type`` header (``multipart/mixed;boundary=...``; quoting and
    spacing vary). Raises :class:`BadRequest` (code ``0x80048d19``) for a missing boundary, no parts, a
    malformed part or inner request, bare-LF structure when ``dialect.require_crlf``, a GET (or any
    non-write) inside a change set, nested change sets, or more than ``dialect.max_requests`` requests.
    """
    try:
        boundary = _boundary_of(content_type, "batch request")
        parts = _split_multipart(body, boundary, dialect.require_crlf, "batch request")
        if not parts:
            raise _bad("The batch request holds no part.")
        items: list[BatchItem] = []
        count = 0
        for index, part in enumerate(parts, start=1):
            item = _parse_part(part, dialect.require_crlf, f"batch part {index}", True)
            items.append(item)
            count += len(item.requests) if isinstance(item, ChangeSet) else 1
            if count > dialect.max_requests:
                break  # _validate reports it; no need to parse the rest
        _validate(items, dialect)
        return items
    except SandboxError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed payload must never surface as a traceback
        raise _bad(f"The batch request could not be read: {exc}") from exc


# ---- rendering --------------------------------------------------------------------------------------
CRLF = b"\r\n"


def _status_line(status: int, reason: str) -> bytes:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"HTTP/1.1 {status} {reason}".rstrip().encode("latin-1", errors="replace")


def _header_lines(headers: dict[str, str]) -> bytes:
    return b"".join(f"{name}: {value}".encode() + CRLF for name, value in headers.items())


def _render_http_part(response: BatchResponse) -> bytes:
    mime = b"Content-Type: application/http" + CRLF + b"Content-Transfer-Encoding: binary" + CRLF
    if response.content_id is not None:
        mime += f"Content-ID: {response.content_id}".encode() + CRLF
    return (
        mime
        + CRLF
        + _status_line(response.status, response.reason)
        + CRLF
        + _header_lines(response.headers)
        + CRLF
        + response.body
    )


def _render_multipart(boundary: str, parts: list[bytes]) -> bytes:
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for part in parts:
        out += delimiter + CRLF + part + CRLF
    out += delimiter + b"--" + CRLF
    return bytes(out)


def _new_guid() -> str:
    return str(uuid.uuid4())


def render_batch(
    items: list[BatchResponse | list[BatchResponse]],
    boundary: str | None = None,
    *,
    new_guid: Callable[[], str] = _new_guid,
) -> tuple[bytes, str]:
    """Render responses as a multipart ``$batch`` answer, exactly as Dataverse lays it out.

    A :class:`BatchResponse` becomes one ``application/http`` part; a list is a successful change set,
    nested under ``changesetresponse_<guid>``. Returns ``(body, content_type)`` with content type
    ``multipart/mixed; boundary=batchresponse_<guid>``. ``boundary`` overrides the outer boundary and
    ``new_guid`` the GUID source (both for tests). Line endings are CRLF throughout.
    """
    outer = boundary or f"batchresponse_{new_guid()}"
    parts: list[bytes] = []
    for item in items:
        if isinstance(item, list):
            inner = f"changesetresponse_{new_guid()}"
            nested = _render_multipart(inner, [_render_http_part(response) for response in item])
            parts.append(
                f"Content-Type: multipart/mixed; boundary={inner}".encode("ascii")
                + CRLF
                + CRLF
                + nested.removesuffix(CRLF)
            )
        else:
            parts.append(_render_http_part(item))
    return _render_multipart(outer, parts), f"multipart/mixed; boundary={outer}"


def build_batch_request(
    items: list[BatchRequest | ChangeSet], boundary: str | None = None, *, new_guid: Callable[[], str] = _new_guid
) -> tuple[bytes, str]:
    """Render requests as a ``$batch`` request body: the client side of :func:`parse_batch`.

    Returns ``(body, content_type)``; change sets without a boundary get ``changeset_<guid>``.
    Used by the typed clients and tests.
    """
    outer = boundary or f"batch_{new_guid()}"

    def http_part(request: BatchRequest) -> bytes:
        mime = b"Content-Type: application/http" + CRLF + b"Content-Transfer-Encoding: binary" + CRLF
        if request.content_id is not None:
            mime += f"Content-ID: {request.content_id}".encode() + CRLF
        line = f"{request.method} {request.url} HTTP/1.1".encode()
        return mime + CRLF + line + CRLF + _header_lines(request.headers) + CRLF + request.body

    parts: list[bytes] = []
    for item in items:
        if isinstance(item, ChangeSet):
            inner = item.boundary or f"changeset_{new_guid()}"
            nested = _render_multipart(inner, [http_part(request) for request in item.requests])
            parts.append(
                f"Content-Type: multipart/mixed; boundary={inner}".encode("ascii")
                + CRLF
                + CRLF
                + nested.removesuffix(CRLF)
            )
        else:
            parts.append(http_part(item))
    return _render_multipart(outer, parts), f"multipart/mixed; boundary={outer}"


def _parse_http_response(part: bytes, mime: dict[str, str], where: str) -> BatchResponse:
    lines = _Lines(part, False)
    status_line = lines.read()
    while status_line == b"":
        status_line = lines.read()
    if status_line is None:
        raise _bad(f"The {where} holds no HTTP response.")
    match = re.match(rb"^HTTP/1\.[01] (\d{3})(?: (.*))?$", status_line)
    if not match:
        raise _bad(f"The {where} has a malformed status line '{_text(status_line)}'.")
    headers = _read_headers(lines, where)
    content_id = header(mime, "Content-ID") or header(headers, "Content-ID")
    return BatchResponse(
        int(match.group(1)),
        (match.group(2) or b"").decode("latin-1"),
        headers,
        lines.rest(),
        content_id.strip() if content_id else None,
    )


def parse_batch_response(body: bytes, content_type: str) -> list[BatchResponse | list[BatchResponse]]:
    """Parse a multipart ``$batch`` answer: the client side of :func:`render_batch`.

    Change set answers come back as lists. Raises :class:`BadRequest` when the payload is malformed.
    """
    try:
        boundary = _boundary_of(content_type, "batch response")
        result: list[ResponseItem] = []
        for index, part in enumerate(_split_multipart(body, boundary, False, "batch response"), start=1):
            lines = _Lines(part, False)
            mime = _read_headers(lines, f"MIME headers of response part {index}")
            media, _ = _media_type(header(mime, "Content-Type"))
            if media.startswith("multipart/"):
                inner = _boundary_of(header(mime, "Content-Type"), f"response part {index}")
                nested = []
                for sub_index, sub in enumerate(
                    _split_multipart(lines.rest(), inner, False, "change set response"), start=1
                ):
                    sub_lines = _Lines(sub, False)
                    sub_mime = _read_headers(sub_lines, f"MIME headers of change set response part {sub_index}")
                    nested.append(
                        _parse_http_response(sub_lines.rest(), sub_mime, f"change set response part {sub_index}")
                    )
                result.append(nested)
            else:
                result.append(_parse_http_response(lines.rest(), mime, f"response part {index}"))
        return result
    except SandboxError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _bad(f"The batch response could not be read: {exc}") from exc


# ---- execution --------------------------------------------------------------------------------------
class _RollBack(Exception):
    """Raised inside a transaction to undo it; carries the response to report."""

    def __init__(self, response: BatchResponse) -> None:
        super().__init__(response.status)
        self.response = response


def default_error_response(error: SandboxError) -> BatchResponse:
    """A Dataverse-shaped JSON error part: ``{"error":{"code":...,"message":...}}``."""
    body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode("utf-8")
    headers = {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0", **error.headers}
    return BatchResponse(error.status, "", headers, body, None)


def normalize_url(url: str, service_root: str) -> str:
    """A part URL as a rooted path plus query: ``https://h/api/data/v9.2/x?a`` -> ``/api/data/v9.2/x?a``,
    ``x`` -> ``<service_root>x``; a rooted ``/...`` URL is kept. The fragment is dropped."""
    url = url.strip()
    if _ABSOLUTE_URL.match(url):
        parts = urlsplit(url)
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path
    url = url.split("#", 1)[0]
    if url.startswith("/"):
        return url
    root = service_root if service_root.endswith("/") else service_root + "/"
    if not root.startswith("/"):
        root = "/" + root
    return root + url


def _bind_form(rooted: str, service_root: str) -> str:
    """``/api/data/v9.2/accounts(1)`` -> ``/accounts(1)`` (the form ``@odata.bind`` values use)."""
    root = "/" + service_root.strip("/") + "/"
    if rooted.startswith(root):
        return "/" + rooted[len(root) :]
    return rooted


class _References:
    """The entity URL each Content-ID of the running change set produced."""

    def __init__(self, service_root: str) -> None:
        self.service_root = service_root
        self.urls: dict[str, str] = {}

    def record(self, request: BatchRequest, response: BatchResponse) -> None:
        if request.content_id is None:
            return
        location = header(response.headers, "OData-EntityId") or header(response.headers, "Location")
        if location:
            self.urls[request.content_id] = normalize_url(location, self.service_root)
        elif request.method.upper() != "POST":
            # A PATCH/PUT/DELETE addresses its entity itself.
            self.urls[request.content_id] = request.url

    def lookup(self, content_id: str) -> str:
        try:
            return self.urls[content_id]
        except KeyError:
            raise BadRequest(
                f"Content-ID reference '${content_id}' does not match an entity created or "
                "changed earlier in this change set.",
                MALFORMED_CODE,
            ) from None

    def resolve_url(self, url: str) -> str:
        """``$1/lastname`` -> ``<url of part 1>/lastname``; other URLs unchanged."""
        text = url.strip()
        match = _REFERENCE_URL.match(text)
        if not match:
            # A reference written after the service root: /api/data/v9.2/$1 or https://host/data/$1
            rooted = normalize_url(text, self.service_root)
            root = "/" + self.service_root.strip("/") + "/"
            if rooted.startswith(root) and _REFERENCE_URL.match(rooted[len(root) :]):
                text = rooted[len(root) :]
                match = _REFERENCE_URL.match(text)
            if not match:
                return url
        name = match.group(1)
        if name in self.urls or name.isdigit():
            return self.lookup(name) + text[match.end() :]
        return url

    def resolve_body(self, request: BatchRequest) -> bytes:
        """The body with every JSON string value equal to ``$n`` replaced by part n's entity URL."""
        if not self.urls or not request.body.strip() or b"$" not in request.body:
            return request.body
        try:
            document = jsonio.loads_request(request.body)
        except (ValueError, UnicodeDecodeError):
            return request.body  # not JSON: the dispatcher reports it
        changed = False

        def walk(value: Any) -> Any:
            nonlocal changed
            if isinstance(value, str) and value.startswith("$") and value[1:] in self.urls:
                changed = True
                return _bind_form(self.urls[value[1:]], self.service_root)
            if isinstance(value, dict):
                return {key: walk(item) for key, item in value.items()}
            if isinstance(value, list):
                return [walk(item) for item in value]
            return value

        document = walk(document)
        if not changed:
            return request.body
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _run_one(
    request: BatchRequest,
    dispatch: Dispatch,
    on_error: ErrorResponder,
    references: _References | None,
    service_root: str,
) -> BatchResponse:
    """Resolve references, normalize the URL, dispatch; errors become error responses."""
    try:
        url, body, headers = request.url, request.body, dict(request.headers)
        if references is not None:
            url = references.resolve_url(url)
            body = references.resolve_body(request)
            if body is not request.body:
                for key in [k for k in headers if k.lower() == "content-length"]:
                    headers[key] = str(len(body))
        prepared = replace(request, url=normalize_url(url, service_root), body=body, headers=headers)
        response = dispatch(prepared)
        if references is not None and response.status < 400:
            references.record(prepared, response)
    except SandboxError as error:
        response = on_error(error)
    except Exception:  # noqa: BLE001 - one bad part must not break the batch
        response = on_error(InternalError("An unexpected error occurred while processing the batch part."))
    return replace(response, content_id=request.content_id)


def _fail_changeset(response: BatchResponse, dialect: BatchDialect) -> BatchResponse:
    if dialect.changeset_failure_status is None or response.status == dialect.changeset_failure_status:
        return response
    return replace(response, status=dialect.changeset_failure_status, reason="")


def _run_changeset(
    changeset: ChangeSet,
    dispatch: Dispatch,
    transaction: Callable[[], AbstractContextManager[Any]],
    dialect: BatchDialect,
    on_error: ErrorResponder,
) -> ResponseItem:
    references = _References(dialect.service_root)
    responses: list[BatchResponse] = []
    try:
        with transaction():
            for request in changeset.requests:
                response = _run_one(request, dispatch, on_error, references, dialect.service_root)
                if response.status >= 400:
                    raise _RollBack(response)
                responses.append(response)
    except _RollBack as rollback:
        return _fail_changeset(rollback.response, dialect)
    except SandboxError as error:  # the transaction could not open or commit (lock, before-commit hook)
        return _fail_changeset(on_error(error), dialect)
    except Exception:  # noqa: BLE001
        return _fail_changeset(on_error(InternalError("The change set could not be committed.")), dialect)
    return responses


def _run_single(
    request: BatchRequest,
    dispatch: Dispatch,
    transaction: Callable[[], AbstractContextManager[Any]],
    dialect: BatchDialect,
    on_error: ErrorResponder,
) -> BatchResponse:
    try:
        with transaction():
            response = _run_one(request, dispatch, on_error, None, dialect.service_root)
            if response.status >= 400:
                raise _RollBack(response)
    except _RollBack as rollback:
        return rollback.response
    except SandboxError as error:
        return replace(on_error(error), content_id=request.content_id)
    except Exception:  # noqa: BLE001
        return replace(on_error(InternalError("The request could not be committed.")), content_id=request.content_id)
    return response


def execute_batch(
    items: list[BatchRequest | ChangeSet],
    dispatch: Dispatch,
    transaction: Callable[[], AbstractContextManager[Any]],
    dialect: BatchDialect,
    continue_on_error: bool,
    *,
    error_response: ErrorResponder | None = None,
) -> tuple[int, list[BatchResponse | list[BatchResponse]]]:
    """Run parsed batch items in order; return ``(outer_status, responses)`` for :func:`render_batch`.

    Each change set runs in one ``with transaction():`` and is all-or-nothing: when a member answers
    >= 400 (or the commit fails) it is rolled back and reported as ONE response, the failing member's
    (status replaced by ``dialect.changeset_failure_status`` when set), with its Content-ID. A successful
    change set yields a list of responses. Inside a change set ``$n`` in a URL or as a JSON string value
    refers to the entity part n created (``OData-EntityId``, else ``Location``). A request outside a
    change set runs in its own transaction. Every URL reaches ``dispatch`` as a rooted path + query.

    With ``dialect.stop_on_error`` and not ``continue_on_error`` processing stops after the first
    failure. The outer status is 200, or that failure's status when ``dialect.fail_outer_status`` and
    not ``continue_on_error``. ``error_response`` renders an error raised by ``dispatch`` or the
    transaction (default: Dataverse JSON). Raises :class:`BadRequest` for a non-write in a change set or
    too many requests, before anything runs.
    """
    _validate(items, dialect)
    on_error = error_response or default_error_response
    stop = dialect.stop_on_error and not continue_on_error
    results: list[ResponseItem] = []
    first_failure: int | None = None
    for item in items:
        if isinstance(item, ChangeSet):
            result = _run_changeset(item, dispatch, transaction, dialect, on_error)
        else:
            result = _run_single(item, dispatch, transaction, dialect, on_error)
        results.append(result)
        if isinstance(result, BatchResponse) and result.status >= 400:
            if first_failure is None:
                first_failure = result.status
            if stop:
                break
    status = 200
    if first_failure is not None and dialect.fail_outer_status and not continue_on_error:
        status = first_failure
    return status, results


__all__ = [
    "ALLOWED_METHODS",
    "BatchDialect",
    "BatchRequest",
    "BatchResponse",
    "ChangeSet",
    "DATAVERSE_BATCH",
    "FNO_BATCH",
    "MALFORMED_CODE",
    "WRITE_METHODS",
    "build_batch_request",
    "default_error_response",
    "execute_batch",
    "header",
    "normalize_url",
    "parse_batch",
    "parse_batch_response",
    "render_batch",
    "wants_continue_on_error",
]
