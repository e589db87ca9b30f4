"""Hypothesis strategies for hostile requests, and the checks every answer must pass.

Inputs are built from the services' own vocabulary (entity sets, property names, option names, header
names) mixed with arbitrary text, so a generated request gets past the first check often enough to reach
the code behind it: keys, query options, headers and bodies of every shape a client could send.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sandbox.odata.batch import BatchRequest, ChangeSet, build_batch_request

#: the profile every fuzz test runs under: deterministic (derandomize: the same examples on every run, so
#: CI is stable), no deadline (the machine is shared), a bounded number of examples per test. Set
#: FUZZ_EXAMPLES to search further locally.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

SALES_ROOT = "/api/data/v9.2"
SCM_ROOT = "/data"
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
ANY_METHOD = st.sampled_from(METHODS) | st.sampled_from(("HEAD", "OPTIONS", "TRACE", "MERGE"))

#: text a hostile client likes: quotes, brackets, escapes, non-ASCII capitals, control characters
NASTY = st.sampled_from(
    [
        "",
        "'",
        "''",
        '"',
        "(",
        ")",
        "()",
        "$",
        "%",
        "%00",
        "%zz",
        "*",
        "/",
        "\\",
        "null",
        "true",
        "-1",
        "0",
        "1e309",
        "NaN",
        "9223372036854775808",
        "9" * 60,
        "00000000-0000-0000-0000-000000000000",
        "Ökonomie",
        "İ",
        "\u0000",
        "\ud7ff",
        "a" * 300,
        "[[[[",
        "{{",
        "eq",
        "and or not",
        "@p1",
        "$1",
    ]
)
TEXT = st.text(max_size=40) | NASTY
WORD = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x17F), max_size=20) | NASTY

JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def deep_json(depth: int) -> bytes:
    """Arrays nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


def entity_body(names: list[str]) -> st.SearchStrategy[bytes]:
    """A request body: mostly a JSON object over the entity's own names (and binds) with hostile values,
    sometimes any JSON, malformed JSON, deep JSON or raw bytes."""
    known = st.sampled_from(names) if names else TEXT
    keys = known | known.map(lambda n: f"{n}@odata.bind") | TEXT
    objects = st.dictionaries(keys, JSON_VALUE, max_size=6).map(lambda d: json.dumps(d).encode())
    return st.one_of(
        objects,
        objects,
        JSON_VALUE.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=60),
        st.sampled_from([b"{", b'{"a":', b"[1,]", b"\xff\xfe", b'{"a": NaN}', deep_json(2000), deep_json(101)]),
    )


def key_predicate(key_names: list[str]) -> st.SearchStrategy[str]:
    """What goes between the parentheses after an entity set: GUIDs, literals, name=value lists, junk."""
    literal = st.one_of(
        st.uuids().map(str),
        TEXT.map(lambda t: "'" + t.replace("'", "''") + "'"),
        TEXT,
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )
    named = st.lists(st.tuples(st.sampled_from(key_names) if key_names else WORD, literal), min_size=1, max_size=3).map(
        lambda pairs: ",".join(f"{n}={v}" for n, v in pairs)
    )
    return st.one_of(literal, named, TEXT)


def filter_expression(names: list[str]) -> st.SearchStrategy[str]:
    """A $filter from a small grammar over the entity's names, with hostile literals and operators."""
    prop = st.sampled_from(names) if names else WORD
    literal = st.one_of(
        TEXT.map(lambda t: "'" + t.replace("'", "''") + "'"),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats(allow_nan=False).map(repr),
        st.uuids().map(str),
        st.sampled_from(
            [
                "null",
                "true",
                "false",
                "2024-01-01",
                "2024-01-01T00:00:00Z",
                "Microsoft.Dynamics.DataEntities.NoYes'Yes'",
            ]
        ),
        NASTY,
    )
    operator = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "has", "in", "add", "eq eq", ""])
    function = st.sampled_from(
        [
            "contains",
            "startswith",
            "endswith",
            "tolower",
            "toupper",
            "substring",
            "length",
            "indexof",
            "trim",
            "year",
            "Microsoft.Dynamics.CRM.In",
            "Microsoft.Dynamics.CRM.Between",
            "Microsoft.Dynamics.CRM.LastXDays",
            "nope",
        ]
    )
    compare = st.builds(lambda p, o, v: f"{p} {o} {v}", prop, operator, literal)
    call = st.builds(lambda f, p, v: f"{f}({p},{v})", function, prop, literal)
    named_call = st.builds(lambda f, p, v: f"{f}(PropertyName='{p}',PropertyValues=[{v}])", function, prop, literal)
    atom = st.one_of(compare, call, named_call, TEXT)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.builds(lambda a, b, j: f"{a} {j} {b}", inner, inner, st.sampled_from(["and", "or"])),
            inner.map(lambda a: f"not ({a})"),
            inner.map(lambda a: f"({a}"),
            st.builds(lambda n, a: f"{n}/any(x:x/{a})", prop, inner),
        ),
        max_leaves=4,
    )


def query_options(names: list[str], navigations: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """A query string's options: the OData ones over the entity's names, and unknown ones. Aggregate and
    joined FetchXML and ``?sql=`` are left out: they are real features the sandbox answers 501 for
    (docs/services.md), not hostile input."""
    prop = st.sampled_from(names) if names else WORD
    nav = st.sampled_from(navigations) if navigations else WORD
    option = st.one_of(
        st.tuples(st.just("$filter"), filter_expression(names)),
        st.tuples(st.just("$select"), st.lists(prop | WORD, max_size=3).map(",".join)),
        st.tuples(
            st.just("$orderby"),
            st.builds(lambda p, d: f"{p} {d}", prop, st.sampled_from(["asc", "desc", "", "sideways"])),
        ),
        st.tuples(st.sampled_from(["$top", "$skip", "$skiptoken", "$count"]), TEXT | st.integers().map(str)),
        st.tuples(
            st.just("$expand"),
            st.builds(
                lambda n, o: f"{n}{o}",
                nav | WORD,
                st.sampled_from(["", "($select=name)", "($top=1;$filter=x eq 1)", "(", "($levels=max)", "($apply=x)"]),
            ),
        ),
        st.tuples(
            st.sampled_from(["$apply", "$search", "$format", "$compute", "$deltatoken", "$levels", "$index", "$foo"]),
            TEXT,
        ),
        st.tuples(
            st.sampled_from(["cross-company", "annotations", "savedQuery", "userQuery", "fetchXml", "@p1", "@p2"]), TEXT
        ),
        st.tuples(
            st.just("fetchXml"),
            st.builds(
                lambda e, a: f"<fetch{a}><entity name='{e}'><attribute name='x'/></entity></fetch>",
                WORD,
                st.sampled_from(["", " top='5'", " count='-1'", " page='x'", " top='x'"]),
            ),
        ),
        st.tuples(TEXT, TEXT),
    )
    return st.lists(option, max_size=4).map(dict)


HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Prefer",
            "If-Match",
            "If-None-Match",
            "Content-Type",
            "Accept",
            "OData-MaxVersion",
            "MSCRM.CallerID",
            "X-Sandbox-Identity",
            "Content-ID",
            "CallerObjectId",
        ]
    ),
    st.one_of(
        st.sampled_from(
            [
                "odata.maxpagesize=2",
                "odata.maxpagesize=x",
                "odata.maxpagesize=99999999999999999999",
                "return=representation",
                'odata.include-annotations="*"',
                "odata.track-changes",
                "odata.continue-on-error",
                "*",
                'W/"1"',
                'W/"x',
                "application/json",
                "multipart/mixed; boundary=",
                "text/plain",
                "dualwrite",
                "system",
                "null",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    ),
    max_size=3,
)


def batch_body(root: str, sets: list[str]) -> st.SearchStrategy[tuple[bytes, str]]:
    """A $batch request: well-formed multipart with hostile parts, or malformed multipart."""
    url = st.one_of(
        st.builds(
            lambda s, k: f"{root}/{s}{k}",
            st.sampled_from(sets),
            st.sampled_from(["", "(x)", "($1)", "/$count", "?$top=x"]),
        ),
        st.sampled_from(["$1", "$2/x", "http://elsewhere/x", "/", "", " ", f"{root}/$batch"]),
        TEXT,
    )
    part = st.builds(
        lambda m, u, b, cid: BatchRequest(
            m, u.replace("\r", "").replace("\n", "") or "/", {"Content-Type": "application/json"}, b, cid
        ),
        st.sampled_from(METHODS),
        url,
        st.one_of(
            st.just(b""),
            st.just(b'{"name":"x"}'),
            JSON_VALUE.map(lambda v: json.dumps(v).encode()),
            st.just(deep_json(3000)),
        ),
        st.none() | st.sampled_from(["1", "2", "x", ""]),
    )
    items = st.lists(part | st.lists(part, min_size=1, max_size=3).map(ChangeSet), min_size=1, max_size=3)
    good = items.map(lambda parts: build_batch_request(parts, "batch_fuzz"))
    broken = st.tuples(
        st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
        st.sampled_from(
            ["multipart/mixed; boundary=batch_fuzz", "multipart/mixed", "application/json", "text/plain", ""]
        ),
    )
    return st.one_of(good, good, broken)


# ---- the checks -------------------------------------------------------------------------------------------
def _json_body(response: Any) -> Any:
    try:
        return json.loads(response.get_data())
    except ValueError:
        return None


def check_answer(response: Any, shape: str, request: str) -> None:
    """No 5xx; an error in the service's own shape; a 405 with Allow."""
    status = response.status_code
    assert status < 500, f"{request} -> {status}: {response.get_data()[:500]!r}"
    if status == 405:
        assert "Allow" in response.headers, f"{request} -> 405 without Allow"
    if status < 400 or response.request.method == "HEAD":
        return
    body = _json_body(response)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{request} -> {status} not an error body: {body!r}"
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], f"{request} -> {body!r}"
    if shape == "dataverse":
        assert isinstance(error.get("code"), str) and "innererror" not in error, f"{request} -> {body!r}"
    elif shape == "fno":
        assert error.get("code") == "", f"{request} -> {body!r}"  # as sandbox.testing.assert_fno_error pins it
    else:
        assert isinstance(error.get("code"), str), f"{request} -> {body!r}"
