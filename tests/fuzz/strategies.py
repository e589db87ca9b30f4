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


#: FetchXML condition operators the sandbox carries out, and text that is none (a 400): the documented ones it
#: does not emulate (the hierarchy-security operators) answer 501 by design and are left out
FETCH_OPERATORS = [
    "eq",
    "ne",
    "gt",
    "le",
    "like",
    "not-like",
    "begins-with",
    "in",
    "not-in",
    "between",
    "null",
    "not-null",
    "today",
    "last-x-days",
    "on-or-after",
    "eq-userid",
    "eq-businessid",
    "eq-userteams",
    "eq-useroruserteams",
    "eq-userlanguage",
    "under",
    "eq-or-under",
    "not-under",
    "above",
    "eq-or-above",
    "this-fiscal-year",
    "last-x-fiscal-periods",
    "in-fiscal-year",
    "in-fiscal-period",
    "in-fiscal-period-and-year",
    "in-or-after-fiscal-period-and-year",
    "contain-values",
    "sideways",
    "",
]


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;").replace('"', "&quot;")


def fetchxml_document(tables: dict[str, list[str]]) -> st.SearchStrategy[tuple[str, str]]:
    """(entity logical name, FetchXML) from a grammar over the model's tables and columns: attributes, orders
    (with ``entityname``), filters of conditions (with ``entityname``, any operator the sandbox carries out,
    hostile values), nested ``<link-entity>`` of the link types the sandbox carries out or none at all, and
    ``any``/``not any`` links in filters; sometimes junk in any place."""
    table = st.sampled_from(sorted(tables))
    safe_text = TEXT.map(_xml_text)

    def column(name: str) -> st.SearchStrategy[str]:
        return st.sampled_from(tables[name]) | WORD.map(_xml_text) if tables.get(name) else WORD.map(_xml_text)

    values = st.lists(
        st.one_of(
            safe_text,
            st.uuids().map(str),
            st.integers(min_value=-5, max_value=3000).map(str),
            st.sampled_from(["2024-05-17", "1", "4", "2024"]),
        ),
        max_size=3,
    )

    def condition(name: str, aliases: list[str]) -> st.SearchStrategy[str]:
        alias = st.sampled_from([None, *aliases, "nosuch"]) if aliases else st.sampled_from([None, None, "nosuch"])
        return st.builds(
            lambda a, attr, op, vs: (
                f"<condition{'' if a is None else ' entityname=' + repr(a)} attribute='{attr}' operator='{op}'>"
                + "".join(f"<value>{v}</value>" for v in vs)
                + "</condition>"
            ),
            alias,
            column(name),
            st.sampled_from(FETCH_OPERATORS),
            values,
        )

    def link(parent: str, depth: int, counter: list[int], in_filter: bool = False) -> st.SearchStrategy[str]:
        def build(name: str) -> st.SearchStrategy[str]:
            counter[0] += 1
            alias = f"l{counter[0]}"
            kinds = ["any", "not any", "sideways"] if in_filter else ["inner", "outer", "exists", "in", "", "sideways"]
            children = st.lists(
                st.one_of(
                    column(name).map(lambda c: f"<attribute name='{c}'/>"),
                    st.just("<all-attributes/>"),
                    column(name).map(lambda c: f"<order attribute='{c}' descending='true'/>"),
                    st.lists(condition(name, []), max_size=2).map(lambda cs: f"<filter>{''.join(cs)}</filter>"),
                    *([link(name, depth - 1, counter)] if depth > 0 else []),
                ),
                max_size=3,
            )
            return st.builds(
                lambda frm, to, kind, body: (
                    f"<link-entity name='{name}' from='{frm}' to='{to}' link-type='{kind}' alias='{alias}'>"
                    f"{''.join(body)}</link-entity>"
                ),
                column(name),
                column(parent),
                st.sampled_from(kinds),
                children,
            )

        return (table | WORD.map(_xml_text)).flatmap(build)

    def document(name: str) -> st.SearchStrategy[tuple[str, str]]:
        counter = [0]
        aliases = [f"l{n}" for n in range(1, 4)]
        parts = st.lists(
            st.one_of(
                column(name).map(lambda c: f"<attribute name='{c}'/>"),
                column(name).map(lambda c: f"<order attribute='{c}'/>"),
                st.sampled_from(aliases).map(lambda a: f"<order entityname='{a}' attribute='name'/>"),
                link(name, 1, counter),
                st.builds(
                    lambda kind, cs, ls: f"<filter type='{kind}'>{''.join(cs)}{''.join(ls)}</filter>",
                    st.sampled_from(["and", "or", "xor"]),
                    st.lists(condition(name, aliases), max_size=3),
                    st.lists(link(name, 0, counter, in_filter=True), max_size=1),
                ),
                safe_text,
            ),
            max_size=5,
        )
        head = st.sampled_from(["", " top='3'", " count='2' page='2'", " returntotalrecordcount='true'", " page='x'"])
        return st.builds(
            lambda h, body: (name, f"<fetch{h}><entity name='{name}'>{''.join(body)}</entity></fetch>"), head, parts
        )

    return table.flatmap(document)


def apply_expression(names: list[str], navigations: list[str]) -> st.SearchStrategy[str]:
    """A ``$apply`` from a grammar: ``filter``, ``groupby`` (also through a lookup), ``aggregate`` with every
    method and ``$count``, chained with ``/``, with hostile names and text."""
    prop = (st.sampled_from(names) if names else WORD) | WORD
    nav = (st.sampled_from(navigations) if navigations else WORD) | WORD
    method = st.sampled_from(["sum", "average", "min", "max", "countdistinct", "median", ""])
    aggregate = st.one_of(
        st.builds(lambda p, m, a: f"{p} with {m} as {a}", prop, method, WORD),
        WORD.map(lambda a: f"$count as {a}"),
        TEXT,
    )
    aggregates = st.lists(aggregate, min_size=1, max_size=3).map(lambda items: f"aggregate({','.join(items)})")
    groups = st.lists(prop | st.builds(lambda n, p: f"{n}/{p}", nav, prop), max_size=3).map(
        lambda items: f"({','.join(items)})"
    )
    transformation = st.one_of(
        aggregates,
        st.builds(lambda g, a: f"groupby({g},{a})", groups, aggregates),
        groups.map(lambda g: f"groupby({g})"),
        filter_expression(names).map(lambda f: f"filter({f})"),
        TEXT,
    )
    return st.lists(transformation, min_size=1, max_size=3).map("/".join)


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
