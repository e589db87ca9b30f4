"""The data browser: HTML pages over a service's own OData layer, the same for both mocks.

* ``GET /`` with ``Accept: text/html`` (a browser): the entity sets with their row counts. Any other client
  gets what it always got there (the dialect's 404).
* ``GET /_browse/<set>``: a table with paging (``page``, ``size``), column choice (``cols``) and a filter box
  taking the service's own ``$filter`` syntax; a refused filter is shown in the page with the service's
  message. ``find=1`` opens the record itself when exactly one row matches (how cross-links land).
* ``GET /_browse/<set>/<key>``: one record (``key`` is the OData key predicate without its parentheses), its
  formatted values (Dataverse option set labels), links to the records its lookups point at and, for a table
  a bridge map syncs, links to the same record on the other side and to its traces in the bridge console.

Reads run in this process as the system identity (:mod:`sandbox.browse.reader`). The links to the other side
come from the service option :data:`BROWSE_OPTION` (plain JSON, set by whoever composes the stack, see
:class:`BrowseLinks`): the mocks know neither each other nor the bridge's maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Flask, Response, abort, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.browse.reader import Reader, ReadError, Record
from sandbox.odata.literals import format_literal
from sandbox.odata.model import EntityType
from sandbox.static import static_blueprint

if TYPE_CHECKING:
    from sandbox.runtime import Runtime

#: the service option holding the browser's links (:meth:`BrowseLinks.from_option`)
BROWSE_OPTION = "browse"
BROWSE_PREFIX = "/_browse"
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
#: the largest page the browser asks for (``size``; the menu offers :data:`PAGE_SIZES`)
MAX_PAGE_SIZE = 500


@dataclass
class SyncedTable:
    """A bridge map syncing one of this service's entity sets: the other side's set and the key pairs."""

    map_id: str
    peer_set: str
    #: (this side's property, the other side's property) of each integration key field
    keys: list[tuple[str, str]]


@dataclass
class BrowseLinks:
    """Where the other side and the bridge console are, and which of this service's tables are synced.

    The option's JSON: ``{"peer": {"name": "scm", "url": "http://127.0.0.1:5102"}, "bridge_url": "...",
    "synced": {"accounts": [{"map": "customers-accounts", "peer_set": "CustomersV3",
    "keys": [["accountnumber", "CustomerAccount"]]}]}}``. Every part is optional: without it, no such link.
    """

    peer_name: str | None = None
    peer_url: str | None = None
    bridge_url: str | None = None
    synced: dict[str, list[SyncedTable]] = field(default_factory=dict)

    @classmethod
    def from_option(cls, value: Any) -> BrowseLinks:
        if not isinstance(value, dict):
            return cls()
        peer = value.get("peer") or {}
        synced: dict[str, list[SyncedTable]] = {}
        for entity_set, maps in (value.get("synced") or {}).items():
            synced[entity_set] = [
                SyncedTable(str(m["map"]), str(m["peer_set"]), [(str(a), str(b)) for a, b in m.get("keys", [])])
                for m in maps
            ]
        return cls(peer.get("name"), _origin(peer.get("url")), _origin(value.get("bridge_url")), synced)


def _origin(url: Any) -> str | None:
    return str(url).rstrip("/") if url else None


def wants_html() -> bool:
    """Whether the client prefers HTML to JSON (a browser does; curl's ``*/*`` and API clients do not)."""
    accept = request.accept_mimetypes
    return accept["text/html"] > 0 and accept.best_match(["application/json", "text/html"]) == "text/html"


def install_browser(app: Flask, runtime: Runtime) -> None:
    """Mount the data browser and the shared static files on a service's app."""
    app.register_blueprint(static_blueprint())
    app.register_blueprint(browse_blueprint(runtime))


def browse_blueprint(runtime: Runtime) -> Blueprint:
    """``GET /`` (browsers only), ``GET /_browse/<set>`` and ``GET /_browse/<set>/<key>``."""
    blueprint = Blueprint("sandbox_browse", __name__, template_folder=str(Path(__file__).parent / "templates"))

    def reader() -> Reader:
        return Reader(runtime.service, request.host_url.rstrip("/"))

    def links() -> BrowseLinks:
        return BrowseLinks.from_option(runtime.config.options.get(BROWSE_OPTION))

    def page(template: str, status: int = 200, **context: Any) -> Response:
        html = render_template(
            f"browse/{template}",
            service=runtime.name,
            title_name={"sales": "Sales", "scm": "SCM"}.get(runtime.name, runtime.name),
            root=runtime.dialect.root,
            prefix=BROWSE_PREFIX,
            links=links(),
            record_url=record_url,
            **context,
        )
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    # every method, OPTIONS too (not Flask's automatic answer): only a browser's GET is new here
    @blueprint.route("/", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], provide_automatic_options=False)
    def service_origin() -> Response:
        if request.method != "GET" or not wants_html():
            abort(404)  # what every other client got here before: the dialect's own 404
        return index()

    @blueprint.get(BROWSE_PREFIX)
    @blueprint.get(BROWSE_PREFIX + "/")
    def index() -> Response:
        read = reader()
        sets = [(e, read.count(e)) for e in read.entity_sets()]
        return page("index.html", sets=sets, total=sum(c or 0 for _, c in sets))

    @blueprint.get(BROWSE_PREFIX + "/<entity_set>")
    def entity_list(entity_set: str) -> BaseResponse:
        read = reader()
        try:
            entity = read.entity(entity_set)
        except ReadError as error:
            return page("error.html", error.status, error_status=error.status, message=error.message)
        available = read.columns(entity)
        chosen = [c for c in _multi("cols") if c in entity.properties] or read.default_columns(entity)
        filter_text = (request.args.get("filter") or "").strip()
        size = _int_arg("size", DEFAULT_PAGE_SIZE)
        size = size if 1 <= size <= MAX_PAGE_SIZE else DEFAULT_PAGE_SIZE
        number = max(_int_arg("page", 0), 0)
        refusal: str | None = None
        rows: list[dict[str, Any]] = []
        total: int | None = None
        has_next = False
        try:
            result = read.page(entity, columns=chosen, filter_text=filter_text, number=number, size=size)
            rows, total, has_next = result.rows, result.total, result.has_next
        except ReadError as failure:
            refusal = failure.message
        if request.args.get("find") and not refusal and len(rows) == 1 and number == 0:
            key = read.key_of(entity, rows[0])
            if key is not None:
                return redirect(record_url(entity.entity_set, key), code=303)
        return page(
            "list.html",
            entity=entity,
            available=available,
            chosen=chosen,
            filter_text=filter_text,
            rows=[(row, read.key_of(entity, row)) for row in rows],
            total=total,
            number=number,
            size=size,
            sizes=sorted({*PAGE_SIZES, size}),
            pages=math.ceil(total / size) if total else None,
            has_next=has_next,
            error=refusal,
            here=_here,
        )

    @blueprint.get(BROWSE_PREFIX + "/<entity_set>/<path:key>")
    def one_record(entity_set: str, key: str) -> Response:
        read = reader()
        try:
            entity = read.entity(entity_set)
            record = read.record(entity, key)
        except ReadError as error:
            status = error.status if error.status in (400, 404) else 400
            return page("error.html", status, error_status=status, message=error.message)
        return page(
            "record.html",
            entity=entity,
            record=record,
            key=key,
            columns=[c for c in read.columns(entity) if c in record.row]
            + [c for c in record.row if c not in entity.properties],
            others=other_side(links(), entity, record),
        )

    return blueprint


#: characters of a key predicate left as they are in a record's URL (readable: ``dataAreaId='usmf',...``)
_KEY_SAFE = "=,':"


def record_url(entity_set: str, key: str) -> str:
    """The data browser's page of one record on this service."""
    return f"{BROWSE_PREFIX}/{quote(entity_set)}/{quote(key, safe=_KEY_SAFE)}"


@dataclass
class OtherSide:
    """A synced table's links from one record: the same record in the other service and its bridge traces."""

    map_id: str
    peer_set: str
    record_url: str | None
    traces_url: str | None
    key_text: str


def other_side(links: BrowseLinks, entity: EntityType, record: Record) -> list[OtherSide]:
    """For each map that syncs ``entity``: where the same record is on the other side and its traces."""
    out = []
    for synced in links.synced.get(entity.entity_set, []):
        pairs = [(mine, theirs, record.row.get(mine)) for mine, theirs in synced.keys]
        if not pairs or any(value in (None, "") for _, _, value in pairs):
            continue
        key_text = ", ".join(f"{theirs}={value}" for _, theirs, value in pairs)
        peer_url = None
        if links.peer_url:
            condition = " and ".join(f"{theirs} eq {format_literal(value)}" for _, theirs, value in pairs)
            query = urlencode({"filter": condition, "find": "1"})
            peer_url = f"{links.peer_url}{BROWSE_PREFIX}/{quote(synced.peer_set)}?{query}"
        traces_url = None
        if links.bridge_url:
            traces_url = f"{links.bridge_url}/traces?" + urlencode({"map": synced.map_id, "key": str(pairs[0][2])})
        out.append(OtherSide(synced.map_id, synced.peer_set, peer_url, traces_url, key_text))
    return out


def _multi(name: str) -> list[str]:
    values: list[str] = []
    for value in request.args.getlist(name):
        values.extend(v.strip() for v in value.split(",") if v.strip())
    return values


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _here(**changes: Any) -> str:
    """This list page's URL with ``changes`` to its query (``None`` removes a parameter)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "find"}
    if "cols" in request.args:
        args["cols"] = ",".join(_multi("cols"))
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = value
    return request.path + ("?" + urlencode(args) if args else "")


__all__ = ["BROWSE_OPTION", "BrowseLinks", "SyncedTable", "browse_blueprint", "install_browser", "wants_html"]
