"""Tests of the OData ``$batch`` parser, renderer and executor (sandbox/odata/batch.py)."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from sandbox.db import Database
from sandbox.errors import BadRequest, Conflict, NotFound, SandboxError
from sandbox.odata.batch import (
    DATAVERSE_BATCH,
    FNO_BATCH,
    MALFORMED_CODE,
    BatchDialect,
    BatchRequest,
    BatchResponse,
    ChangeSet,
    build_batch_request,
    execute_batch,
    header,
    normalize_url,
    parse_batch,
    parse_batch_response,
    render_batch,
    wants_continue_on_error,
)

ORG = "https://org.example.com"
ROOT = "/api/data/v9.2/"


def crlf(text: str) -> bytes:
    """A batch payload written with \\n in the test, sent with CRLF line endings."""
    return text.replace("\n", "\r\n").encode("utf-8")


REFERENCE_EXAMPLE = """--batch_A
Content-Type: multipart/mixed;boundary=changeset_B

--changeset_B
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST https://org.example.com/api/data/v9.2/quotes HTTP/1.1
Content-Type: application/json

{"name":"Q-100","customerid_account@odata.bind":"/accounts(00000000-0000-0000-0000-000000000001)"}
--changeset_B
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

POST https://org.example.com/api/data/v9.2/quotedetails HTTP/1.1
Content-Type: application/json

{"quoteid@odata.bind":"$1","quantity":2}
--changeset_B--
--batch_A
Content-Type: application/http
Content-Transfer-Encoding: binary

GET accounts?$select=name HTTP/1.1
Accept: application/json

--batch_A--
"""


# ---- fakes -------------------------------------------------------------------------------------------
class FakeTransaction:
    """A transaction factory that stages writes and records begin/commit/rollback."""

    def __init__(self, fail_commit: SandboxError | None = None) -> None:
        self.events: list[str] = []
        self.committed: list[tuple[str, dict]] = []
        self.staged: list[tuple[str, dict]] | None = None
        self.fail_commit = fail_commit

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        assert self.staged is None, "transactions must not nest"
        self.events.append("begin")
        self.staged = []
        try:
            yield
            if self.fail_commit is not None:
                raise self.fail_commit
        except BaseException:
            self.events.append("rollback")
            self.staged = None
            raise
        self.committed.extend(self.staged)
        self.staged = None
        self.events.append("commit")


class FakeService:
    """A dispatcher: POST creates (staged in the open transaction), a body or URL containing 'fail'
    answers 400, 'missing' answers 404, 'explode' raises, GET answers 200 JSON, other writes 204."""

    def __init__(self, tx: FakeTransaction, *, entity_header: str = "OData-EntityId") -> None:
        self.tx = tx
        self.seen: list[BatchRequest] = []
        self.next_id = 1
        self.entity_header = entity_header

    def __call__(self, request: BatchRequest) -> BatchResponse:
        assert self.tx.staged is not None, "dispatch must run inside a transaction"
        self.seen.append(request)
        text = request.url + request.body.decode("utf-8", "replace")
        if "explode" in text:
            raise RuntimeError("bug in a handler")
        if "raise-conflict" in text:
            raise Conflict("A record with matching key values already exists.", "0x80040237")
        if "fail" in text:
            return error(400, "0x80040203", "Validation failed.")
        if "missing" in text:
            return error(404, "0x80040217", "Entity 'account' With Id = 42 Does Not Exist")
        if request.method == "GET":
            return BatchResponse(
                200, "OK", {"Content-Type": "application/json; odata.metadata=minimal"}, b'{"value":[]}', None
            )
        if request.method == "POST":
            entity_set = request.url.rsplit("/", 1)[-1]
            self.tx.staged.append((entity_set, json.loads(request.body or b"{}")))
            url = f"{ORG}{ROOT}{entity_set}({self.next_id})"
            self.next_id += 1
            return BatchResponse(204, "No Content", {"OData-Version": "4.0", self.entity_header: url}, b"", None)
        self.tx.staged.append((request.method, {"url": request.url}))
        return BatchResponse(204, "No Content", {"OData-Version": "4.0"}, b"", None)


def error(status: int, code: str, message: str) -> BatchResponse:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return BatchResponse(status, "", {"Content-Type": "application/json; odata.metadata=minimal"}, body, None)


def post(entity_set: str, body: dict, content_id: str | None = None) -> BatchRequest:
    return BatchRequest("POST", entity_set, {"Content-Type": "application/json"}, json.dumps(body).encode(), content_id)


def get(url: str) -> BatchRequest:
    return BatchRequest("GET", url, {"Accept": "application/json"}, b"", None)


# ---- parsing -----------------------------------------------------------------------------------------
def test_parse_reference_example_gives_change_set_then_get() -> None:
    """The documented Dataverse example parses into one change set of two POSTs and one GET."""
    items = parse_batch(crlf(REFERENCE_EXAMPLE), "multipart/mixed;boundary=batch_A", DATAVERSE_BATCH)
    assert len(items) == 2
    changeset, single = items
    assert isinstance(changeset, ChangeSet) and changeset.boundary == "changeset_B"
    first, second = changeset.requests
    assert (first.method, first.url, first.content_id) == ("POST", f"{ORG}{ROOT}quotes", "1")
    assert header(first.headers, "content-type") == "application/json"
    assert json.loads(first.body)["name"] == "Q-100"
    assert second.content_id == "2" and json.loads(second.body)["quoteid@odata.bind"] == "$1"
    assert isinstance(single, BatchRequest)
    assert (single.method, single.url, single.body, single.content_id) == ("GET", "accounts?$select=name", b"", None)


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/mixed; boundary="batch_A"',
        "Multipart/Mixed ;  boundary=batch_A ; charset=utf-8",
        'multipart/mixed;charset=utf-8;boundary="batch_A"',
    ],
)
def test_parse_accepts_quoted_boundary_and_varied_spacing(content_type: str) -> None:
    """The outer boundary is found whether quoted or not, whatever the spacing and parameter order."""
    items = parse_batch(crlf(REFERENCE_EXAMPLE), content_type, DATAVERSE_BATCH)
    assert len(items) == 2


def test_parse_content_id_in_inner_http_headers_is_accepted() -> None:
    """A Content-ID given among the inner HTTP headers (not the MIME headers) is used."""
    body = crlf("""--b
Content-Type: multipart/mixed; boundary=cs

--cs
Content-Type: application/http
Content-Transfer-Encoding: binary

POST /api/data/v9.2/accounts HTTP/1.1
Content-ID: 7
Content-Type: application/json

{}
--cs--
--b--
""")
    [changeset] = parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert isinstance(changeset, ChangeSet)
    assert changeset.requests[0].content_id == "7"


def test_parse_keeps_body_bytes_exactly() -> None:
    """Body bytes (bare LF, CRLF, non-UTF-8 bytes, a trailing newline) reach the request untouched."""
    payload = b'{"a":\n"x\r\ny"}\xff\xfe\r\n'
    body = (
        crlf(
            "--b\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
            "PATCH accounts(1) HTTP/1.1\nContent-Type: application/json\n\n"
        )
        + payload
        + crlf("\n--b--\n")
    )
    [request] = parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert isinstance(request, BatchRequest) and request.body == payload


def test_parse_content_length_trims_body() -> None:
    """An inner Content-Length shorter than the part body trims the trailing bytes."""
    body = crlf("--b\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\nContent-Length: 2\n\n{}\n\n--b--")
    [request] = parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert isinstance(request, BatchRequest) and request.body == b"{}"


def test_parse_get_without_blank_line_after_headers_has_empty_body() -> None:
    """A GET part that ends right after its headers parses with an empty body; preamble/epilogue are ignored."""
    body = crlf(
        "preamble text\n--b\nContent-Type: application/http\n\nGET accounts(1) HTTP/1.1\n"
        "Accept: application/json\n--b--\nepilogue"
    )
    [request] = parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert isinstance(request, BatchRequest)
    assert (request.method, request.url, request.body) == ("GET", "accounts(1)", b"")


def test_parse_lf_only_body_when_crlf_required_raises_stream_not_readable() -> None:
    """Dataverse refuses a body with bare LF line endings: 400, code 0x80048d19, 'Stream was not readable'."""
    with pytest.raises(BadRequest) as caught:
        parse_batch(REFERENCE_EXAMPLE.encode(), "multipart/mixed;boundary=batch_A", DATAVERSE_BATCH)
    assert caught.value.code == MALFORMED_CODE
    assert caught.value.message.endswith("Stream was not readable.")


def test_parse_bare_lf_in_inner_headers_when_crlf_required_raises() -> None:
    """One bare LF among the structural lines of an otherwise CRLF body is refused too."""
    body = crlf("--b\nContent-Type: application/http\n\n") + b"POST accounts HTTP/1.1\nA: b\r\n\r\n{}" + crlf("\n--b--")
    with pytest.raises(BadRequest, match="Stream was not readable"):
        parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)


def test_parse_lf_only_body_when_dialect_allows_parses() -> None:
    """F&O accepts bare LF line endings and parses the same items."""
    items = parse_batch(REFERENCE_EXAMPLE.encode(), "multipart/mixed;boundary=batch_A", FNO_BATCH)
    assert isinstance(items[0], ChangeSet) and len(items[0].requests) == 2
    assert isinstance(items[1], BatchRequest) and items[1].method == "GET"


@pytest.mark.parametrize(
    "content_type, message",
    [
        ("multipart/mixed", "no boundary"),
        ("multipart/mixed; boundary=", "no boundary"),
        ("application/json", "multipart/mixed"),
        ("", "multipart/mixed"),
    ],
)
def test_parse_without_usable_boundary_raises(content_type: str, message: str) -> None:
    """A Content-Type that is not multipart/mixed or lacks the boundary is a 400 with a clear message."""
    with pytest.raises(BadRequest, match=message) as caught:
        parse_batch(crlf(REFERENCE_EXAMPLE), content_type, DATAVERSE_BATCH)
    assert caught.value.code == MALFORMED_CODE


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "no part"),
        ("just text\n", "no part"),
        ("--b--\n", "no part"),
        ("--b\nContent-Type: application/http\n\nGET accounts HTTP/1.1\n", "closing delimiter"),
        ("--b\n\n--b--", "empty"),
        ("--b\nContent-Type: application/http\n\n\n--b--", "no HTTP request"),
        ("--b\nContent-Type: application/http\nGET accounts HTTP/1.1\n\n--b--", "Malformed header line"),
        ("--b\nContent-Type: application/json\n\nGET accounts HTTP/1.1\n\n--b--", "expected application/http"),
        ("--b\nContent-Type: application/http\nContent-Transfer-Encoding: base64\n\nR0VU\n--b--", "base64"),
        ("--b\nContent-Type: application/http\n\nGET accounts HTTP/1.1\nno colon here\n\n--b--", "Malformed header"),
        (
            "--b\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\nContent-Length: x\n\n{}\n--b--",
            "Content-Length",
        ),
        (
            "--b\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\nContent-Length: 99\n\n{}\n--b--",
            "Content-Length 99",
        ),
        ("--b\nContent-Type: multipart/mixed\n\n--cs\n\n--cs--\n--b--", "no boundary"),
        ("--b\nContent-Type: multipart/mixed; boundary=cs\n\n--cs--\n--b--", "no part"),
    ],
)
def test_parse_malformed_multipart_raises_bad_request(body: str, message: str) -> None:
    """Missing parts, a missing closing delimiter, bad MIME or inner headers all raise BadRequest 0x80048d19."""
    with pytest.raises(BadRequest, match=message) as caught:
        parse_batch(crlf(body), "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert caught.value.code == MALFORMED_CODE


@pytest.mark.parametrize(
    "request_line, message",
    [
        ("POST", "malformed request line"),
        ("POST accounts", "malformed request line"),
        ("POST accounts HTTP/1.1 extra", "malformed request line"),
        ("FETCH accounts HTTP/1.1", "HTTP method 'FETCH'"),
        ("POST accounts HTTP/2", "unsupported HTTP version"),
        ("POST accounts HTTPS/1.1", "unsupported HTTP version"),
    ],
)
def test_parse_bad_request_line_raises(request_line: str, message: str) -> None:
    """A request line that is not 'METHOD URL HTTP/1.1' with a known method is a 400."""
    body = crlf(f"--b\nContent-Type: application/http\n\n{request_line}\n\n--b--")
    with pytest.raises(BadRequest, match=message):
        parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)


def test_parse_lowercase_method_is_normalized() -> None:
    """A lower-case method in the request line is accepted and upper-cased."""
    body = crlf("--b\nContent-Type: application/http\n\ndelete accounts(1) HTTP/1.1\n\n--b--")
    [request] = parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)
    assert isinstance(request, BatchRequest) and request.method == "DELETE"


def test_parse_get_inside_change_set_raises() -> None:
    """A change set may hold writes only; a GET inside it makes the whole batch a 400."""
    body = crlf(
        "--b\nContent-Type: multipart/mixed;boundary=cs\n\n--cs\nContent-Type: application/http\n\n"
        "GET accounts HTTP/1.1\n\n--cs--\n--b--"
    )
    with pytest.raises(BadRequest, match="change set may only contain"):
        parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)


def test_parse_nested_change_set_raises() -> None:
    """A multipart part inside a change set (nesting) is refused."""
    body = crlf(
        "--b\nContent-Type: multipart/mixed;boundary=cs\n\n--cs\nContent-Type: multipart/mixed;boundary=x\n\n"
        "--x\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\n\n{}\n--x--\n--cs--\n--b--"
    )
    with pytest.raises(BadRequest, match="cannot be nested"):
        parse_batch(body, "multipart/mixed;boundary=b", DATAVERSE_BATCH)


def test_parse_duplicate_content_id_in_change_set_raises() -> None:
    """Two parts of one change set with the same Content-ID are a 400."""
    body, content_type = build_batch_request([ChangeSet([post("accounts", {}, "1"), post("contacts", {}, "1")])])
    with pytest.raises(BadRequest, match="Content-ID '1' is used twice"):
        parse_batch(body, content_type, DATAVERSE_BATCH)


def test_parse_more_than_max_requests_raises_and_exactly_max_parses() -> None:
    """The request limit counts change-set members; one over the limit is a 400, the limit itself is fine."""
    dialect = replace(DATAVERSE_BATCH, max_requests=3)
    at_limit, content_type = build_batch_request([get("accounts"), ChangeSet([post("a", {}), post("b", {})])])
    assert len(parse_batch(at_limit, content_type, dialect)) == 2
    over, content_type = build_batch_request(
        [get("accounts"), ChangeSet([post("a", {}), post("b", {})]), get("contacts")]
    )
    with pytest.raises(BadRequest, match="maximum number of requests in a batch is 3"):
        parse_batch(over, content_type, dialect)


def test_parse_garbage_and_truncations_raise_only_bad_request() -> None:
    """Random bytes, truncated and corrupted payloads either parse or raise BadRequest, never anything else."""
    valid = crlf(REFERENCE_EXAMPLE)
    rng = random.Random(1234)
    samples = [valid[:cut] for cut in range(0, len(valid), 7)]
    for _ in range(300):
        corrupt = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        samples.append(bytes(corrupt))
    samples += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))) for _ in range(100)]
    for sample in samples:
        for dialect in (DATAVERSE_BATCH, FNO_BATCH):
            try:
                parse_batch(sample, "multipart/mixed;boundary=batch_A", dialect)
            except BadRequest as exc:
                assert exc.code == MALFORMED_CODE


# ---- rendering ---------------------------------------------------------------------------------------
def fixed_guids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"0000000{n}-aaaa-bbbb-cccc-dddddddddddd"


def test_render_lays_out_parts_exactly_like_dataverse() -> None:
    """Change sets nest under changesetresponse_<guid>, each part has MIME headers, Content-ID, a status
    line, headers, a blank line and the body, with CRLF endings and closing delimiters."""
    guids = fixed_guids()
    created = BatchResponse(
        204,
        "No Content",
        {"OData-Version": "4.0", "Location": f"{ORG}{ROOT}tasks(1)", "OData-EntityId": f"{ORG}{ROOT}tasks(1)"},
        b"",
        "1",
    )
    listing = BatchResponse(
        200, "", {"Content-Type": "application/json; odata.metadata=minimal"}, b'{"value":[]}', None
    )
    body, content_type = render_batch([[created], listing], new_guid=lambda: next(guids))
    batch = "batchresponse_00000001-aaaa-bbbb-cccc-dddddddddddd"
    changeset = "changesetresponse_00000002-aaaa-bbbb-cccc-dddddddddddd"
    assert content_type == f"multipart/mixed; boundary={batch}"
    assert body == crlf(
        f"--{batch}\n"
        f"Content-Type: multipart/mixed; boundary={changeset}\n"
        "\n"
        f"--{changeset}\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "Content-ID: 1\n"
        "\n"
        "HTTP/1.1 204 No Content\n"
        "OData-Version: 4.0\n"
        f"Location: {ORG}{ROOT}tasks(1)\n"
        f"OData-EntityId: {ORG}{ROOT}tasks(1)\n"
        "\n"
        "\n"
        f"--{changeset}--\n"
        f"--{batch}\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 200 OK\n"
        "Content-Type: application/json; odata.metadata=minimal\n"
        "\n"
        '{"value":[]}\n'
        f"--{batch}--\n"
    )


def test_render_then_parse_response_round_trips() -> None:
    """parse_batch_response reads back exactly what render_batch wrote, binary bodies included."""
    items = [
        [
            BatchResponse(204, "No Content", {"OData-EntityId": f"{ORG}{ROOT}accounts(1)"}, b"", "1"),
            BatchResponse(201, "Created", {"Content-Type": "application/json"}, b'{"a":"\xc3\xa9\n"}\r\n', "2"),
        ],
        BatchResponse(404, "Not Found", {"Content-Type": "application/json"}, b'{"error":{}}', None),
        BatchResponse(599, "", {}, b"\x00\xff", "x"),
    ]
    body, content_type = render_batch(items)
    assert content_type.startswith("multipart/mixed; boundary=batchresponse_")
    assert parse_batch_response(body, content_type) == items


def test_build_request_then_parse_batch_round_trips() -> None:
    """parse_batch reads back exactly what build_batch_request wrote."""
    items: list[BatchRequest | ChangeSet] = [
        get("accounts?$top=1"),
        ChangeSet(
            [
                post("accounts", {"name": "A"}, "1"),
                BatchRequest(
                    "PATCH", "$1", {"Content-Type": "application/json", "If-Match": "*"}, b'{"name":"B"}', "2"
                ),
            ],
            "changeset_x",
        ),
        BatchRequest("DELETE", f"{ORG}{ROOT}accounts(9)", {}, b"", "d"),
    ]
    body, content_type = build_batch_request(items, "batch_round")
    assert content_type == "multipart/mixed; boundary=batch_round"
    assert parse_batch(body, content_type, DATAVERSE_BATCH) == items


def test_render_unknown_reason_uses_standard_phrase() -> None:
    """An empty reason renders as the standard phrase of the status."""
    body, _ = render_batch([BatchResponse(412, "", {}, b"", None)], "b")
    assert b"HTTP/1.1 412 Precondition Failed\r\n" in body


# ---- URLs and helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, expected",
    [
        (f"{ORG}/api/data/v9.2/accounts(1)?$select=name", "/api/data/v9.2/accounts(1)?$select=name"),
        ("http://localhost:5000/data/CustomersV3", "/data/CustomersV3"),
        ("/api/data/v9.0/accounts", "/api/data/v9.0/accounts"),
        ("accounts(1)/name", "/api/data/v9.2/accounts(1)/name"),
        ("accounts#frag", "/api/data/v9.2/accounts"),
    ],
)
def test_normalize_url_gives_rooted_path_and_query(url: str, expected: str) -> None:
    """Absolute, rooted and relative part URLs all become a rooted path plus query."""
    assert normalize_url(url, ROOT) == expected


@pytest.mark.parametrize(
    "prefer, expected",
    [
        (None, False),
        ("", False),
        ("return=representation", False),
        ("odata.continue-on-error", True),
        ("return=representation, odata.continue-on-error", True),
        ("odata.continue-on-error=true", True),
        ("odata.continue-on-error=false", False),
        ("continue-on-error", True),
    ],
)
def test_wants_continue_on_error_reads_prefer_header(prefer: str | None, expected: bool) -> None:
    """The Prefer header asks for continue-on-error when it names the preference (bare or =true)."""
    assert wants_continue_on_error(prefer) is expected


# ---- execution with fakes ----------------------------------------------------------------------------
def run(
    items: list[BatchRequest | ChangeSet],
    dialect: BatchDialect = DATAVERSE_BATCH,
    *,
    continue_on_error: bool = False,
    tx: FakeTransaction | None = None,
    **service_kwargs,
):
    tx = tx or FakeTransaction()
    service = FakeService(tx, **service_kwargs)
    status, responses = execute_batch(items, service, tx, dialect, continue_on_error)
    return status, responses, service, tx


def test_successful_change_set_commits_once_and_echoes_content_ids() -> None:
    """A change set runs in one transaction that commits; its answer is a list with each Content-ID."""
    status, responses, service, tx = run(
        [ChangeSet([post("accounts", {"name": "A"}, "1"), post("contacts", {"lastname": "B"}, "2")])]
    )
    assert status == 200
    assert tx.events == ["begin", "commit"]
    assert [entity for entity, _ in tx.committed] == ["accounts", "contacts"]
    [answer] = responses
    assert isinstance(answer, list) and [r.content_id for r in answer] == ["1", "2"]
    assert [r.status for r in answer] == [204, 204]


def test_every_url_reaches_dispatch_as_rooted_path() -> None:
    """Absolute, relative and rooted part URLs are normalized before dispatch."""
    _, _, service, _ = run([get(f"{ORG}{ROOT}accounts?$top=2"), get("contacts(1)"), get("/api/data/v9.1/leads")])
    assert [r.url for r in service.seen] == [
        "/api/data/v9.2/accounts?$top=2",
        "/api/data/v9.2/contacts(1)",
        "/api/data/v9.1/leads",
    ]


def test_content_id_reference_at_start_of_url_is_replaced() -> None:
    """`$1/lastname` and `$1` become the URL of the entity part 1 created (from OData-EntityId)."""
    changeset = ChangeSet(
        [
            post("contacts", {"firstname": "Ann"}, "1"),
            BatchRequest("PUT", "$1/lastname", {"Content-Type": "application/json"}, b'{"value":"Lee"}', "2"),
            BatchRequest("PATCH", "$1", {"Content-Type": "application/json"}, b'{"jobtitle":"CEO"}', "3"),
            BatchRequest("PATCH", f"{ORG}{ROOT}$1?x=1", {}, b"{}", "4"),
        ]
    )
    status, _, service, _ = run([changeset])
    assert status == 200
    assert [r.url for r in service.seen[1:]] == [
        "/api/data/v9.2/contacts(1)/lastname",
        "/api/data/v9.2/contacts(1)",
        "/api/data/v9.2/contacts(1)?x=1",
    ]


def test_content_id_reference_in_json_body_is_replaced() -> None:
    """A JSON string value equal to `$n` (a bind, or nested `{"@odata.id":"$2"}`) becomes part n's entity path."""
    changeset = ChangeSet(
        [
            post("quotes", {"name": "Q-100"}, "1"),
            post("accounts", {"name": "A"}, "2"),
            BatchRequest(
                "POST",
                "quotedetails",
                {"Content-Type": "application/json", "Content-Length": "99"},
                json.dumps(
                    {"quoteid@odata.bind": "$1", "links": [{"@odata.id": "$2"}], "note": "$100 off", "unrelated": "$3"}
                ).encode(),
                "3",
            ),
        ]
    )
    status, _, service, _ = run([changeset])
    assert status == 200
    sent = service.seen[2]
    assert json.loads(sent.body) == {
        "quoteid@odata.bind": "/quotes(1)",
        "links": [{"@odata.id": "/accounts(2)"}],
        "note": "$100 off",
        "unrelated": "$3",
    }
    assert header(sent.headers, "Content-Length") == str(len(sent.body))


def test_content_id_reference_falls_back_to_location_header() -> None:
    """Without OData-EntityId the Location header names the created entity."""
    changeset = ChangeSet([post("contacts", {}, "1"), BatchRequest("DELETE", "$1", {}, b"", "2")])
    _, _, service, _ = run([changeset], entity_header="Location")
    assert service.seen[1].url == "/api/data/v9.2/contacts(1)"


def test_undefined_content_id_reference_fails_the_change_set() -> None:
    """`$9` with no part 9 in the change set is a 400 for that part and rolls the change set back."""
    changeset = ChangeSet([post("contacts", {}, "1"), BatchRequest("PATCH", "$9", {}, b"{}", "2")])
    status, responses, _, tx = run([changeset])
    assert status == 400 and tx.events == ["begin", "rollback"] and tx.committed == []
    [answer] = responses
    assert isinstance(answer, BatchResponse) and answer.content_id == "2"
    assert "$9" in json.loads(answer.body)["error"]["message"]


def test_references_do_not_leak_between_change_sets() -> None:
    """Content-IDs are scoped to their change set: a later change set cannot use `$1` of an earlier one."""
    status, responses, _, _ = run(
        [ChangeSet([post("contacts", {}, "1")]), ChangeSet([BatchRequest("PATCH", "$1", {}, b"{}", "2")])]
    )
    assert status == 400 and isinstance(responses[1], BatchResponse)


def test_failed_change_set_rolls_back_and_reports_one_failing_part() -> None:
    """When a member fails, nothing of the change set commits and one response (the failing part's, with its
    Content-ID and real status under Dataverse) stands for the change set; later members never run."""
    changeset = ChangeSet(
        [post("accounts", {"name": "A"}, "1"), post("contacts", {"fail": True}, "2"), post("leads", {}, "3")]
    )
    status, responses, service, tx = run([changeset])
    assert tx.events == ["begin", "rollback"] and tx.committed == []
    assert len(service.seen) == 2
    assert status == 400
    [answer] = responses
    assert isinstance(answer, BatchResponse)
    assert (answer.status, answer.content_id) == (400, "2")
    assert json.loads(answer.body)["error"]["code"] == "0x80040203"


def test_fno_failed_change_set_is_500_part_with_outer_200_and_processing_continues() -> None:
    """F&O reports a failed change set as one 500 part, keeps going, and answers 200 overall."""
    items: list[BatchRequest | ChangeSet] = [
        ChangeSet([post("CustomerGroups", {"CustomerGroupId": "10"}, "1"), post("CustomersV3", {"fail": True}, "2")]),
        get("CustomersV3"),
        ChangeSet([post("CustomerGroups", {"CustomerGroupId": "20"}, "3")]),
    ]
    status, responses, _, tx = run(items, FNO_BATCH)
    assert status == 200
    failed, listing, ok = responses
    assert isinstance(failed, BatchResponse)
    assert (failed.status, failed.reason, failed.content_id) == (500, "", "2")
    body, _ = render_batch(responses)
    assert b"HTTP/1.1 500 Internal Server Error\r\n" in body
    assert isinstance(listing, BatchResponse) and listing.status == 200
    assert isinstance(ok, list) and ok[0].status == 204
    assert tx.committed == [("CustomerGroups", {"CustomerGroupId": "20"})]
    assert tx.events == ["begin", "rollback", "begin", "commit", "begin", "commit"]


def test_fno_failed_single_request_keeps_status_and_outer_200() -> None:
    """Outside a change set F&O keeps the request's own status, keeps going, and answers 200."""
    status, responses, service, _ = run([get("missing"), post("CustomerGroups", {})], FNO_BATCH)
    assert status == 200
    assert [r.status for r in responses if isinstance(r, BatchResponse)] == [404, 204]
    assert len(service.seen) == 2


def test_dataverse_stops_at_first_failure_with_its_status_as_outer_status() -> None:
    """By default Dataverse stops at the first failing request; the answer holds the parts done so far plus
    the failure, and the outer status is the failure's 4xx."""
    items = [post("accounts", {}), get("accounts(missing)"), post("contacts", {})]
    status, responses, service, tx = run(items)
    assert status == 404
    assert [r.status for r in responses if isinstance(r, BatchResponse)] == [204, 404]
    assert len(service.seen) == 2
    assert tx.events == ["begin", "commit", "begin", "rollback"]


def test_dataverse_failed_change_set_stops_the_batch() -> None:
    """A failed change set also stops a Dataverse batch (no continue-on-error); the outer status is its 4xx."""
    status, responses, service, _ = run([ChangeSet([post("accounts", {"fail": 1}, "1")]), post("contacts", {})])
    assert status == 400 and len(responses) == 1 and len(service.seen) == 1


def test_dataverse_continue_on_error_runs_everything_with_outer_200() -> None:
    """With Prefer: odata.continue-on-error every request runs and the outer status stays 200."""
    items = [
        post("accounts", {}),
        get("accounts(missing)"),
        ChangeSet([post("x", {"fail": 1}, "1")]),
        post("contacts", {}),
    ]
    status, responses, service, _ = run(items, continue_on_error=True)
    assert status == 200
    assert [r.status for r in responses if isinstance(r, BatchResponse)] == [204, 404, 400, 204]
    assert len(service.seen) == 4


def test_requests_outside_change_sets_each_get_their_own_transaction() -> None:
    """Every request outside a change set (GETs included) runs in its own transaction; a failing one rolls back."""
    items = [get("accounts"), post("accounts", {}), post("contacts", {"fail": 1}), get("leads")]
    _, _, _, tx = run(items, continue_on_error=True)
    assert tx.events == ["begin", "commit", "begin", "commit", "begin", "rollback", "begin", "commit"]
    assert [entity for entity, _ in tx.committed] == ["accounts"]


def test_dispatch_raising_sandbox_error_becomes_error_part() -> None:
    """A SandboxError raised by dispatch becomes that status's JSON error part, not an exception."""
    status, responses, _, _ = run([post("accounts", {"raise-conflict": 1})])
    [answer] = responses
    assert status == 409 and isinstance(answer, BatchResponse) and answer.status == 409
    assert json.loads(answer.body) == {
        "error": {"code": "0x80040237", "message": "A record with matching key values already exists."}
    }


def test_dispatch_raising_unexpected_exception_becomes_500_part() -> None:
    """A bug in a handler becomes a 500 part (and a rolled-back change set), never a traceback."""
    status, responses, _, tx = run([ChangeSet([post("accounts", {"explode": 1}, "1")])], continue_on_error=True)
    [answer] = responses
    assert status == 200 and isinstance(answer, BatchResponse)
    assert (answer.status, answer.content_id) == (500, "1")
    assert tx.events == ["begin", "rollback"]


def test_custom_error_response_renders_raised_errors() -> None:
    """The service's error_response callback renders errors raised by dispatch (e.g. the F&O error shape)."""
    tx = FakeTransaction()

    def fno_error(exc: SandboxError) -> BatchResponse:
        return BatchResponse(
            exc.status,
            "",
            {},
            json.dumps({"error": {"code": "", "message": exc.message, "innererror": {}}}).encode(),
            None,
        )

    _, responses = execute_batch(
        [post("CustomersV3", {"raise-conflict": 1}, "5")],
        FakeService(tx),
        tx,
        FNO_BATCH,
        False,
        error_response=fno_error,
    )
    [answer] = responses
    assert isinstance(answer, BatchResponse) and answer.content_id == "5"
    assert "innererror" in json.loads(answer.body)["error"]


def test_commit_failure_fails_the_change_set() -> None:
    """An error while committing (e.g. a before-commit sync hook) fails the change set as one error part."""
    tx = FakeTransaction(fail_commit=NotFound("sync target missing"))
    status, responses, _, _ = run([ChangeSet([post("accounts", {}, "1")])], FNO_BATCH, tx=tx)
    [answer] = responses
    assert status == 200 and isinstance(answer, BatchResponse) and answer.status == 500
    assert tx.committed == [] and tx.events == ["begin", "rollback"]


def test_execute_rejects_get_in_change_set_and_too_many_requests_before_running() -> None:
    """execute_batch validates programmatic items too: nothing runs when the batch is invalid."""
    tx = FakeTransaction()
    service = FakeService(tx)
    with pytest.raises(BadRequest, match="change set may only contain"):
        execute_batch([post("a", {}), ChangeSet([get("accounts")])], service, tx, DATAVERSE_BATCH, False)
    with pytest.raises(BadRequest, match="maximum number of requests"):
        execute_batch([get("a")] * 3, service, tx, replace(DATAVERSE_BATCH, max_requests=2), False)
    assert service.seen == [] and tx.events == []


def test_full_round_trip_parse_execute_render() -> None:
    """The reference example parses, runs with `$1` bound to the new quote, and renders a readable answer."""
    items = parse_batch(crlf(REFERENCE_EXAMPLE), "multipart/mixed;boundary=batch_A", DATAVERSE_BATCH)
    status, responses, service, tx = run(items)
    assert status == 200
    assert tx.committed[1] == ("quotedetails", {"quoteid@odata.bind": "/quotes(1)", "quantity": 2})
    assert service.seen[2].url == "/api/data/v9.2/accounts?$select=name"
    body, content_type = render_batch(responses)
    parsed = parse_batch_response(body, content_type)
    assert isinstance(parsed[0], list) and [r.content_id for r in parsed[0]] == ["1", "2"]
    assert isinstance(parsed[1], BatchResponse) and parsed[1].status == 200


# ---- execution against a real database ---------------------------------------------------------------
@pytest.fixture()
def database() -> Iterator[tuple[Database, sa.Table]]:
    metadata = sa.MetaData()
    table = sa.Table(
        "items", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String, nullable=False)
    )
    db = Database("sqlite://", [metadata])
    db.create_all()
    yield db, table
    db.dispose()


def db_dispatch(db: Database, table: sa.Table, depths: list[bool]):
    """Insert the body's name (joining the batch's transaction); a name 'bad' inserts then answers 400."""

    def dispatch(request: BatchRequest) -> BatchResponse:
        depths.append(db.in_transaction)
        with db.transaction() as connection:
            name = json.loads(request.body)["name"]
            new_id = connection.execute(sa.insert(table).values(name=name)).inserted_primary_key[0]
        if name == "bad":
            return error(400, "0x80040203", "bad name")
        return BatchResponse(204, "", {"OData-EntityId": f"{ORG}{ROOT}items({new_id})"}, b"", None)

    return dispatch


def names(db: Database, table: sa.Table) -> list[str]:
    with db.engine.connect() as connection:
        return [row.name for row in connection.execute(sa.select(table.c.name).order_by(table.c.id))]


def test_real_database_failed_change_set_leaves_no_rows(database: tuple[Database, sa.Table]) -> None:
    """With sandbox.db transactions, a change set whose last member fails leaves none of its rows, while a
    successful change set and a lone request commit."""
    db, table = database
    depths: list[bool] = []
    items: list[BatchRequest | ChangeSet] = [
        ChangeSet(
            [
                post("items", {"name": "a1"}, "1"),
                post("items", {"name": "a2"}, "2"),
                post("items", {"name": "bad"}, "3"),
            ]
        ),
        ChangeSet([post("items", {"name": "b1"}, "1"), post("items", {"name": "b2"}, "2")]),
        post("items", {"name": "c1"}),
        post("items", {"name": "bad"}),
    ]
    status, responses = execute_batch(items, db_dispatch(db, table, depths), db.transaction, FNO_BATCH, False)
    assert status == 200
    assert names(db, table) == ["b1", "b2", "c1"]
    assert all(depths), "dispatch always runs inside the batch's transaction"
    assert not db.in_transaction
    failed = responses[0]
    assert isinstance(failed, BatchResponse) and (failed.status, failed.content_id) == (500, "3")
    assert isinstance(responses[3], BatchResponse) and responses[3].status == 400


def test_real_database_before_commit_failure_rolls_back_change_set(database: tuple[Database, sa.Table]) -> None:
    """A before-commit hook that raises (the live-sync hook) rolls the change set back and fails it."""
    db, table = database
    inner = db_dispatch(db, table, [])

    def dispatch(request: BatchRequest) -> BatchResponse:
        def hook() -> None:
            raise BadRequest("sync refused", "0x80040265")

        db.before_commit(hook)
        return inner(request)

    status, responses = execute_batch(
        [ChangeSet([post("items", {"name": "x"}, "1")])], dispatch, db.transaction, DATAVERSE_BATCH, False
    )
    [answer] = responses
    assert status == 400 and isinstance(answer, BatchResponse)
    assert json.loads(answer.body)["error"]["message"] == "sync refused"
    assert names(db, table) == []
