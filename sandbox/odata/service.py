"""The generic OData service: routing, CRUD, queries, navigation, references, actions and ``$batch``.

One instance serves one model under one dialect. Mock Sales and mock SCM both build on it; they add
entity behaviors and actions, and their dialect decides every wire detail that differs.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from sandbox import jsonio
from sandbox.auth.settings import resolved_identity
from sandbox.db import Database
from sandbox.errors import BadRequest, MethodNotAllowed, NotFound, PreconditionFailed, SandboxError
from sandbox.odata import batch as batchlib
from sandbox.odata import csdl
from sandbox.odata.actions import ActionContext, ActionRegistry, ActionSpec, CollectionResult, EntityResult
from sandbox.odata.dataverse import codes
from sandbox.odata.dialect import Dialect
from sandbox.odata.endpoints import Endpoints
from sandbox.odata.model import ROWID, ROWVERSION, EntityType, Model, NavigationProperty, Property
from sandbox.odata.query import (
    ExpandItem,
    QueryOptions,
    check_known_options,
    compile_filter,
    parse_orderby,
    parse_query_options,
    parse_select,
)
from sandbox.odata.responses import json_response
from sandbox.odata.store import Row, Store, fold_key_value
from sandbox.odata.urls import Segment, parse_key_predicate, parse_literal, parse_segment, split_args, split_path

IDENTITY_HEADERS = ("X-Sandbox-Identity", "CallerObjectId", "MSCRM.CallerID")
DEFAULT_IDENTITY = "user"


#: what a single row answers to
_ENTITY_METHODS = ("GET", "PATCH", "PUT", "DELETE")


def not_allowed(method: str, allowed: Iterable[str], message: str | None = None) -> MethodNotAllowed:
    """The 405 for ``method`` on a resource that answers ``allowed``, with the ``Allow`` header a 405 must
    carry (RFC 9110, section 15.5.6; empty where the resource takes no method at all)."""
    return MethodNotAllowed(
        message or f"The requested resource does not support http method '{method}'.",
        headers={"Allow": ", ".join(allowed)},
    )


def identity_of(req: Any) -> str:
    """Who is calling: the identity authentication resolved from the token; with auth off the sandbox identity
    header, Dataverse impersonation headers, else a plain user."""
    resolved = resolved_identity(req)
    if resolved is not None:
        return resolved
    for header in IDENTITY_HEADERS:
        value = req.headers.get(header)
        if value:
            return str(value).strip()
    return DEFAULT_IDENTITY


def parse_prefer(header: str | None) -> dict[str, str]:
    """``Prefer: return=representation, odata.maxpagesize=50`` -> {'return': 'representation', ...}."""
    prefs: dict[str, str] = {}
    if not header:
        return prefs
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', header):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


@dataclass
class RequestState:
    """What a handler needs about the current request (kept explicit so ``$batch`` parts work the same)."""

    identity: str
    prefer: dict[str, str]
    args: dict[str, str]
    base_url: str
    #: the resource path below the service root (``accounts(...)/contact_customer_accounts``)
    path: str = ""
    applied: list[str] = field(default_factory=list)
    #: ``@odata.bind`` references this request resolved: text -> (entity, row, the store's change epoch of
    #: the entity when read). A ``$batch`` part is a request of its own, so nothing outlives one part.
    references: dict[str, tuple[EntityType, Row, int]] = field(default_factory=dict)

    @property
    def annotations(self) -> bool:
        return "odata.include-annotations" in self.prefer


#: (property, writable by any caller, text limit or None, stored value of a null): see
#: :meth:`ODataService._body_plan`
_ColumnPlan = tuple[Property, bool, int | None, Any]


class _Associate(dict[str, Any]):
    """An item of a create's deep-insert children that is an existing row to associate, not a body to create
    (from ``"<collection nav>@odata.bind"``)."""

    def __init__(self, row: Row) -> None:
        super().__init__()
        self.row = row


def _cleared_binding(nav: NavigationProperty) -> dict[str, None]:
    """The columns a null binding of ``nav`` clears: its foreign key and the columns of its condition."""
    out: dict[str, None] = {local: None for local, _ in nav.pairs}
    out.update({k: None for k in nav.local_condition})
    return out


class ODataService:
    """Serves ``model`` at ``dialect.root`` with CRUD, queries, actions and ``$batch``."""

    def __init__(
        self,
        *,
        name: str,
        model: Model,
        dialect: Dialect,
        db: Database,
        store: Store,
        actions: ActionRegistry | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.dialect = dialect
        self.db = db
        self.store = store
        self.actions = actions or ActionRegistry()
        self._metadata_cache: dict[bool, str] = {}
        self._body_plans: dict[
            str, tuple[EntityType, dict[str, _ColumnPlan], dict[str, tuple[NavigationProperty, dict[str, None]]]]
        ] = {}
        #: what the dialect serves beside the entity sets and ``actions``
        self.endpoints = Endpoints()
        dialect.register_endpoints(self.endpoints)

    # ---- wiring ---------------------------------------------------------------------------------------
    def register(self, app: Flask) -> None:
        """Mount the service on every root the dialect answers to (Dataverse: v9.0, v9.1, v9.2)."""
        for index, root in enumerate(self.dialect.roots()):
            blueprint = Blueprint(f"{self.name}_odata_{index}", __name__, url_prefix=root.rstrip("/"))
            blueprint.add_url_rule(
                "/",
                "root",
                self._dispatch,
                methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                defaults={"path": ""},
                strict_slashes=False,
            )
            blueprint.add_url_rule(
                "/<path:path>", "resource", self._dispatch, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]
            )
            app.register_blueprint(blueprint)

    def _dispatch(self, path: str) -> Response:
        state = RequestState(
            identity=identity_of(request),
            prefer=parse_prefer(request.headers.get("Prefer")),
            args=self._query_args(),
            base_url=request.host_url.rstrip("/") + self.dialect.root_for(request.path),
            path=path,
        )
        try:
            self.dialect.honour_preferences(state)
            response = self.handle(request.method, path, state)
        except SandboxError as error:
            return self.dialect.render_error(error)
        response.headers.setdefault("OData-Version", "4.0")
        if response.status_code in (204, 304):
            response.headers.pop("Content-Type", None)  # no body: Flask's default text/html would be a lie
        if state.applied:
            response.headers["Preference-Applied"] = ",".join(state.applied)
        return response

    @staticmethod
    def _query_args() -> dict[str, str]:
        args: dict[str, str] = {}
        for name, value in request.args.items(multi=False):
            args[name] = value
        return args

    # ---- top-level routing ----------------------------------------------------------------------------
    def handle(self, method: str, path: str, state: RequestState) -> Response:
        """Answer one request below the service root (also each part of a ``$batch``)."""
        path = urllib.parse.unquote(path) if "%" in path else path
        if path in ("", "/", "$metadata") and method != "GET":
            raise not_allowed(method, ("GET",))
        if path in ("", "/"):
            return json_response(
                {
                    "@odata.context": f"{state.base_url}$metadata",
                    "value": [
                        {"name": e.entity_set, "kind": "EntitySet", "url": e.entity_set}
                        for e in self.model.entities.values()
                    ],
                }
            )
        if path == "$metadata":
            return self._metadata(state)
        if path == "$batch":
            if method != "POST":
                raise not_allowed(method, ("POST",), "$batch accepts POST only.")
            return self._batch(state)
        segments = [parse_segment(s) for s in split_path(path)]
        resource = self.endpoints.resource_for(segments)
        if resource is not None:
            if method != resource.method:
                refusal = resource.refuse_method()
                if refusal.status == 405:
                    refusal.headers.setdefault("Allow", resource.method)
                raise refusal
            return resource.handler(self, segments, state)
        head = segments[0]
        entity = self.model.by_set.get(head.name)
        if entity is None:
            return self._unbound_operation(method, segments, state)
        with self.db.transaction(may_sync=self.may_sync(method, state)):
            return self._entity_set(method, entity, segments, state)

    def _metadata(self, state: RequestState) -> Response:
        annotations = state.args.get("annotations", "").lower() == "true"
        if annotations not in self._metadata_cache:
            self._metadata_cache[annotations] = csdl.render_csdl(
                self.model, self.actions.all(), dialect=self.dialect.csdl_name, annotations=annotations
            )
        return Response(self._metadata_cache[annotations], content_type="application/xml")

    @staticmethod
    def may_sync(method: str, state: RequestState) -> bool:
        """Whether a request's transaction may call the bridge before it commits: anything but a read, unless the
        caller is the integration identity (its writes are never sent back). Such a transaction takes the
        stack's live-sync gate before the database (see :meth:`sandbox.db.Database.transaction`)."""
        from sandbox.livesync import INTEGRATION_IDENTITIES

        return method != "GET" and state.identity not in INTEGRATION_IDENTITIES

    # ---- entity sets ----------------------------------------------------------------------------------
    def _entity_set(self, method: str, entity: EntityType, segments: list[Segment], state: RequestState) -> Response:
        head, rest = segments[0], segments[1:]
        if head.args is None:
            if not rest:
                if method == "GET":
                    return self.read_collection(entity, state)
                if method == "POST":
                    return self.create(entity, self.request_body(), state)
                raise not_allowed(method, ("GET",) if entity.read_only else ("GET", "POST"))
            if rest[0].name == "$count" and len(rest) == 1:
                if method != "GET":
                    raise not_allowed(method, ("GET",))
                return self.count(entity, state)
            if len(rest) == 1:
                return self._bound_operation(method, entity, None, rest[0], state, collection=True)
            raise self.dialect.unknown_set("/".join(s.name for s in segments))
        key = self.resolve_key(entity, head.args, state)
        if not rest:
            if method == "GET":
                return self.read_entity(entity, key, state)
            if method in ("PATCH", "PUT"):
                return self.update_or_upsert(entity, key, self.request_body(), state, method=method)
            if method == "DELETE":
                return self.delete(entity, key, state)
            raise not_allowed(method, _ENTITY_METHODS if not entity.read_only else ("GET",))
        name = rest[0].name
        if name in entity.navigations:
            return self._navigation(method, entity, key, entity.navigations[name], rest, state)
        if name in entity.properties and not entity.properties[name].hidden:
            return self._property(method, entity, key, name, rest[1:], state)
        if len(rest) == 1:
            return self._bound_operation(method, entity, key, rest[0], state, collection=False)
        raise self.dialect.unknown_property(entity, name)

    def resolve_key(self, entity: EntityType, args: str, state: RequestState) -> dict[str, Any]:
        """The URL key predicate as a dict of property values matching the key or an alternate key."""
        named, bare = parse_key_predicate(args)
        if named is None:
            if len(entity.key) != 1:
                raise self.dialect.invalid_key(entity)
            named = {entity.key[0]: bare}
        if set(named) != set(entity.key) and not any(set(named) == set(alt) for alt in entity.alternate_keys):
            raise self.dialect.invalid_key(entity)
        converted: dict[str, Any] = {}
        for name, value in named.items():
            prop = entity.properties[name]
            try:
                converted[name] = self.dialect.key_value(entity, prop, value)
            except SandboxError:
                raise
            except (ValueError, TypeError, ArithmeticError):
                raise self.dialect.type_error(entity, prop, value) from None
        return converted

    def key_text(self, entity: EntityType, key: dict[str, Any]) -> str:
        """How a key is named in messages (the bare value of a single key, else ``name=value`` pairs)."""
        if set(key) == set(entity.key) and len(entity.key) == 1:
            return str(next(iter(key.values())))
        return ",".join(f"{k}={v}" for k, v in key.items())

    def find_row(self, entity: EntityType, key: dict[str, Any], state: RequestState) -> Row | None:
        """The row ``key`` names in this request's scope, or None."""
        row = self._find_by_key(entity, key, state, whole_row=True)
        return dict(row._mapping) if row is not None else None

    def row_exists(self, entity: EntityType, key: dict[str, Any], state: RequestState) -> bool:
        """Whether :meth:`find_row` would find a row (reads its id alone: no columns to decode)."""
        return self._find_by_key(entity, key, state, whole_row=False) is not None

    def row_exists_many(
        self, entity: EntityType, keys: Iterable[dict[str, Any] | None], state: RequestState
    ) -> Callable[[dict[str, Any]], bool]:
        """:meth:`row_exists` for many keys, read up front with one query per key shape: the answers are
        as of this call, and may say yes for a key no row has but that compares alike to one that does
        (text differing only in case, ``"10"`` and ``10``). Keys outside the query (a scope, a null value, a
        value that cannot be compared that way, a key not listed) are asked of :meth:`row_exists` then.

        UpsertMultiple asked row by row, one statement per Target, each a hand-off of the interpreter lock
        that waited behind busy threads (the async drain beside the writers it follows)."""
        Signature = tuple[tuple[str, ...], tuple[str | None, ...]]

        def signature(names: tuple[str, ...], values: Iterable[Any]) -> Signature:
            return names, tuple(fold_key_value(v) for v in values)

        probes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        asked: set[Signature] = set()
        if not self.dialect.scope(entity, state):
            for key in keys:
                if not key:
                    continue
                asking = signature(tuple(key), key.values())
                if None in asking[1]:  # a null, or a value SQL may compare otherwise than the fold does
                    continue
                asked.add(asking)
                probes.setdefault(asking[0], []).append(tuple(key.values()))
        table = entity.table
        assert table is not None
        found = {
            signature(names, values)
            for names, probe in probes.items()
            for values in self.store.find_keys(table, names, probe)
        }

        def exists(key: dict[str, Any]) -> bool:
            asking = signature(tuple(key), key.values())
            return asking in found if asking in asked else self.row_exists(entity, key, state)

        return exists

    def _find_by_key(self, entity: EntityType, key: dict[str, Any], state: RequestState, *, whole_row: bool) -> Any:
        table = entity.table
        assert table is not None
        scope = self.dialect.scope(entity, state)
        if scope or any(v is None for v in key.values()):
            query = sa.select(table if whole_row else table.c[ROWID]).where(
                *[self.dialect.key_condition(entity, table.c[k], v) for k, v in key.items()]
            )
            for condition in scope:
                query = query.where(condition)
            return self.db.connection.execute(query.limit(1)).first()
        # The hot path of every bind, read and write by key: one statement per key shape, reused with
        # bound values (building it and its cache key per call cost more than the lookup).
        query = self.store.statement(
            ("find_by_key", entity.name, tuple(key), whole_row),
            lambda: (
                sa.select(table if whole_row else table.c[ROWID])
                .where(*[self.dialect.key_condition(entity, table.c[k], sa.bindparam(f"sandbox_k_{k}")) for k in key])
                .limit(1)
            ),
        )
        return self.db.connection.execute(query, {f"sandbox_k_{k}": v for k, v in key.items()}).first()

    def require_row(self, entity: EntityType, key: dict[str, Any], state: RequestState) -> Row:
        """The row ``key`` names, or the dialect's not-found error."""
        row = self.find_row(entity, key, state)
        if row is None:
            raise self.dialect.not_found(entity, self.key_text(entity, key))
        return row

    # ---- reads ----------------------------------------------------------------------------------------
    def parse_options(self, entity: EntityType, state: RequestState) -> QueryOptions:
        """The query options of a read of ``entity``, checked against the model and the dialect."""
        check_known_options(state.args)
        self.dialect.check_options(state.args)
        options = parse_query_options(state.args, entity, self.dialect.filter_dialect)
        if options.skip is not None and not self.dialect.allow_skip:
            raise BadRequest("The query parameter $skip is not supported.", codes.QUERY_SYNTAX)
        self._check_expand(entity, options.expand)
        return options

    def _check_expand(self, entity: EntityType, items: list[ExpandItem]) -> None:
        for item in items:
            nav = entity.navigations.get(item.nav)
            if nav is None:
                raise BadRequest(
                    f"Could not find a property named '{item.nav}' on type '{self.dialect.type_label(entity)}'.",
                    codes.UNSPECIFIED,
                )
            if item.ref and nav.many:
                raise BadRequest(
                    "Expand with $ref is only supported on lookup type navigation property.", codes.QUERY_SYNTAX
                )
            self.dialect.check_expand(item)
            target = self.model.entities[nav.target]
            if item.select is not None:
                parse_select(",".join(item.select), target, self.dialect.filter_dialect)
            self._check_expand(target, item.expand)

    def base_query(
        self, entity: EntityType, options: QueryOptions, state: RequestState, extra: Iterable[Any] = ()
    ) -> sa.Select[Any]:
        """The SELECT of ``entity``'s rows in this request's scope, with ``extra`` conditions, the dialect's
        conditions and ``$filter``."""
        table = entity.table
        assert table is not None
        query = sa.select(table)
        for condition in self.dialect.scope(entity, state):
            query = query.where(condition)
        for condition in extra:
            query = query.where(condition)
        for condition in self.dialect.entity_conditions(entity):
            query = query.where(condition)
        if options.filter:
            query = query.where(compile_filter(options.filter, entity, self.model, self.dialect.filter_dialect))
        return query

    def read_collection(
        self, entity: EntityType, state: RequestState, extra: Iterable[Any] = (), context_suffix: str | None = None
    ) -> Response:
        """GET of a collection: a page of rows with the options of the request (or what the dialect
        answers for a read in another query language)."""
        extra = list(extra)
        other = self.dialect.collection_query(self, entity, state, nested=bool(extra))
        if other is not None:
            return other
        options = self.parse_options(entity, state)
        query = self.base_query(entity, options, state, extra)
        body: dict[str, Any] = {"@odata.context": self.context_url(state, entity, options.select, context_suffix)}
        total: int | None = None
        if options.count:
            total = self.db.connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0
            body["@odata.count"] = self.dialect.cap_count(total)
        body.update(self.dialect.collection_annotations(state, total))
        orders = parse_orderby(options.orderby, entity, self.model, self.dialect.filter_dialect)
        table = entity.table
        assert table is not None
        query = query.order_by(*orders, *[table.c[k] for k in entity.key] if not orders else [], table.c[ROWID])
        narrowed = self._selected_columns(entity, options, state)
        if narrowed is not None:
            query = query.with_only_columns(*narrowed)
        page_size = self.dialect.page_size(state)
        offset = self.dialect.page_offset(state, options)
        limit = page_size
        remaining_top = None
        if options.top is not None and not self.dialect.top_ignored_with_paging(state):
            remaining_top = max(options.top - (offset - (options.skip or 0)), 0)
            limit = min(limit, remaining_top)
        result = self.db.connection.execute(query.offset(offset).limit(limit + 1))
        names = tuple(result.keys())
        # All rows in one fetch, then dicts by zip: a page of 5,000 went row by row through the result's
        # per-row fetch and a mapping view each.
        rows = [dict(zip(names, r, strict=True)) for r in result.all()]
        more = len(rows) > limit and (remaining_top is None or remaining_top > limit)
        if options.top is not None and self.dialect.top_ends_paging(state):
            more = False
        rows = rows[:limit]
        body["value"] = self.render_rows(entity, rows, options, state)
        if more:
            body["@odata.nextLink"] = self.dialect.next_link(state, offset + limit, page_size)
        return json_response(body)

    def _selected_columns(self, entity: EntityType, options: QueryOptions, state: RequestState) -> list[Any] | None:
        """The columns a read with ``$select`` renders (and its etag reads), when nothing else looks at its rows
        (no ``$expand``, no annotations); None: every column. A wide row (a customer has about a hundred) costs
        its decoding, on PostgreSQL the driver's description of every column as well, and an existence check by
        key selects one or two."""
        if options.select is None or options.expand or state.annotations:
            return None
        table = entity.table
        assert table is not None
        wanted = [ROWID, ROWVERSION, *entity.key, *(self.dialect.effective_select(entity, options.select) or ())]
        if any(name not in table.c for name in wanted):
            return None
        return [table.c[name] for name in dict.fromkeys(wanted)]

    def render_rows(
        self, entity: EntityType, rows: list[Row], options: QueryOptions, state: RequestState
    ) -> list[dict[str, Any]]:
        """Rows as JSON, with the annotations asked for and their ``$expand``-ed relatives."""
        select = self.dialect.effective_select(entity, options.select)
        rendered = [self.dialect.serialize(entity, row, select, state.annotations) for row in rows]
        if state.annotations:
            self.dialect.annotate(self, entity, rows, rendered, select, state)
        for item in options.expand:
            self._expand(entity, rows, rendered, item, state)
        return rendered

    def _expand(
        self, entity: EntityType, rows: list[Row], rendered: list[dict[str, Any]], item: ExpandItem, state: RequestState
    ) -> None:
        nav = entity.navigations[item.nav]
        target = self.model.entities[nav.target]
        sub = QueryOptions(
            select=item.select, filter=item.filter, orderby=item.orderby, top=item.top, expand=item.expand
        )
        for row, out in zip(rows, rendered, strict=True):
            related = self.related_rows(entity, row, nav, sub, state)
            if item.ref:
                out[item.nav] = (
                    {"@odata.id": self.dialect.entity_url(state.base_url, target, related[0])} if related else None
                )
            elif nav.many:
                out[item.nav] = self.render_rows(target, related, sub, state)
            else:
                out[item.nav] = self.render_rows(target, related[:1], sub, state)[0] if related else None

    def related_rows(
        self,
        entity: EntityType,
        row: Row,
        nav: NavigationProperty,
        options: QueryOptions,
        state: RequestState,
        limit: int | None = None,
    ) -> list[Row]:
        """The rows ``nav`` leads to from ``row``, filtered and ordered by ``options``."""
        target = self.model.entities[nav.target]
        conditions = self.nav_conditions(entity, row, nav)
        if conditions is None:
            return []
        table = target.table
        assert table is not None
        query = (
            self.base_query(target, options, state, conditions)
            if options.filter
            else (sa.select(table).where(*conditions))
        )
        orders = parse_orderby(options.orderby, target, self.model, self.dialect.filter_dialect)
        query = query.order_by(*orders, table.c[ROWID])
        top = options.top if options.top is not None else limit
        if top is not None:
            query = query.limit(top)
        return [dict(r._mapping) for r in self.db.connection.execute(query)]

    def nav_conditions(self, entity: EntityType, row: Row, nav: NavigationProperty) -> list[Any] | None:
        """SQL conditions selecting the rows ``nav`` points at from ``row`` (None: it points nowhere)."""
        target = self.model.entities[nav.target]
        table = target.table
        assert table is not None
        for name, value in nav.local_condition.items():
            if row.get(name) != value:
                return None
        conditions: list[Any] = []
        for local, remote in nav.pairs:
            value = row.get(local)
            if value is None:
                return None
            conditions.append(table.c[remote] == value)
        for name, value in nav.target_condition.items():
            conditions.append(table.c[name] == value)
        return conditions

    def read_entity(self, entity: EntityType, key: dict[str, Any], state: RequestState) -> Response:
        """GET of one row (304 when ``If-None-Match`` holds its etag)."""
        options = self.parse_options(entity, state)
        row = self.require_row(entity, key, state)
        etag = self.dialect.etag(row)
        if_none_match = request.headers.get("If-None-Match")
        if (
            if_none_match
            and if_none_match != "null"
            and if_none_match == etag
            and not options.expand
            and not state.annotations
        ):
            return Response(status=304, headers={"ETag": etag})
        body = {"@odata.context": self.context_url(state, entity, options.select, "/$entity")}
        body.update(self.render_rows(entity, [row], options, state)[0])
        response = json_response(body)
        response.headers["ETag"] = etag
        return response

    def count(self, entity: EntityType, state: RequestState, extra: Iterable[Any] = ()) -> Response:
        """GET ``<set>/$count``: the number of matching rows, as text."""
        options = self.parse_options(entity, state)
        query = self.base_query(entity, options, state, extra)
        total = self.db.connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
        return Response(str(total or 0), content_type="text/plain; charset=utf-8")

    def context_url(
        self, state: RequestState, entity: EntityType, select: list[str] | None, suffix: str | None = None
    ) -> str:
        """The ``@odata.context`` of a response about ``entity`` (with the ``$select`` projection)."""
        projection = f"({','.join(select)})" if select else ""
        return f"{state.base_url}$metadata#{entity.entity_set}{projection}{suffix or ''}"

    # ---- writes ---------------------------------------------------------------------------------------
    def request_body(self) -> dict[str, Any]:
        """The JSON object of the request body ({} when empty); the dialect's error when it is not one."""
        raw = request.get_data()
        if not raw.strip():
            return {}
        try:
            body = jsonio.loads_request(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.dialect.malformed_json(str(exc)) from None
        if not isinstance(body, dict):
            raise self.dialect.malformed_json("The request body must be a JSON object.")
        return body

    def values_from_body(
        self, entity: EntityType, body: dict[str, Any], state: RequestState, *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Validate a JSON body: (column values incl. resolved binds, deep-insert children by nav)."""
        values: dict[str, Any] = {}
        children: dict[str, list[dict[str, Any]]] = {}
        privileged = state.identity in self.dialect.privileged_identities
        columns, binds = self._body_plan(entity)
        in_value = self.dialect.in_value
        for name, value in body.items():
            # Most names are plain columns: settle those first (this loop runs for every field of every row).
            column = columns.get(name)
            if column is not None:
                prop, user_writable, text_limit, null_value = column
                if not user_writable and not privileged:
                    if prop.lookup is not None:
                        raise self.dialect.lookup_write(entity, name)
                    continue  # system-owned columns are ignored on user writes, as the real services do
                if value is None:
                    values[name] = null_value
                elif text_limit is not None and type(value) is str and (not text_limit or len(value) <= text_limit):
                    values[name] = value  # what in_value gives for such text, without the call
                else:
                    values[name] = in_value(entity, prop, value)
                continue
            bind = binds.get(name)
            if bind is not None:  # the commonest other name: "<lookup>@odata.bind" of a single-valued lookup
                nav, cleared = bind
                values.update(cleared if value is None else self.bind_values(entity, nav, value, state))
                continue
            if name.startswith("@odata."):
                self.dialect.check_odata_annotation(entity, name, value)
                continue
            if name.endswith("@odata.bind"):  # not a bindable lookup (those are in the plan)
                nav_name = name[: -len("@odata.bind")]
                named = entity.navigations.get(nav_name)
                if named is not None and named.many:
                    children.setdefault(nav_name, []).extend(
                        self._collection_binds(entity, named, value, state, creating=creating)
                    )
                    continue
                raise self.dialect.unknown_property(entity, nav_name)
            if "@" in name:
                continue  # instance annotations on properties are informational
            deep = entity.navigations.get(name)
            if deep is not None and self.dialect.deep_insert:
                if deep.many:
                    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                        raise self.dialect.malformed_json(f"'{name}' must be an array of objects.")
                    children[name] = value
                elif value is None and deep.owns_fk:
                    values.update(self.bind_values(entity, deep, None, state))
                elif isinstance(value, dict) and deep.owns_fk:
                    target = self.model.entities[deep.target]
                    created = self.create_row(target, value, state)
                    values.update(self.bind_values(entity, deep, created, state))
                else:
                    raise self.dialect.malformed_json(f"'{name}' must be an object.")
                continue
            raise self.dialect.unknown_property(entity, name)  # every column a body may name is in the plan
        self.dialect.complete_values(entity, values, state, creating=creating)
        return values, children

    def _collection_binds(
        self, entity: EntityType, nav: NavigationProperty, value: Any, state: RequestState, *, creating: bool
    ) -> list[dict[str, Any]]:
        """The existing rows ``"<collection nav>@odata.bind": ["/contacts(<id>)", ...]`` associates with a row
        being created (PA ``webapi/associate-disassociate-entities-using-web-api``, "Associate entity records
        on create"); each is pointed at the new row once it exists. Only on create: an update associates
        through ``POST <nav>/$ref``."""
        if not creating:
            raise BadRequest(
                f"The collection-valued navigation property '{nav.name}' can be bound on create only; "
                f"associate existing rows with POST .../{nav.name}/$ref.",
                codes.PAYLOAD_INVALID,
            )
        if self._owning_partner(entity, nav) is None:
            raise BadRequest(
                f"Collection binding on '{nav.name}' is not supported on this table.", codes.PAYLOAD_INVALID
            )
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.dialect.malformed_json(f"The value of '{nav.name}@odata.bind' must be an array of URL strings.")
        associated: list[dict[str, Any]] = []
        for reference in value:
            target, row = self.resolve_reference(reference, state)
            if target.name != nav.target:
                raise BadRequest(
                    f"The reference '{reference}' is not of type '{nav.target}' required by '{nav.name}'.",
                    codes.PAYLOAD_INVALID,
                )
            associated.append(_Associate(row))
        return associated

    def _body_plan(
        self, entity: EntityType
    ) -> tuple[dict[str, _ColumnPlan], dict[str, tuple[NavigationProperty, dict[str, None]]]]:
        """What :meth:`values_from_body` looks names up in, made once per entity:

        - the columns a body may name directly (visible, and not a navigation property where the dialect
          takes deep inserts), each as (property,
          writable by any caller, text limit, null value): the limit is set (0 for none) where the dialect
          stores a text value as given (:meth:`Dialect.stores_text_as_given`), else None; the null value is
          what the dialect stores for a JSON null (None; F&O: "" for text);
        - ``<nav>@odata.bind`` names of the single-valued lookups a body may bind, each with the columns a
          null clears (what :meth:`bind_values` gives for None).
        """
        cached = self._body_plans.get(entity.name)
        if cached is not None and cached[0] is entity:
            return cached[1], cached[2]
        columns: dict[str, _ColumnPlan] = {}
        for name, prop in entity.properties.items():
            if prop.hidden or (name in entity.navigations and self.dialect.deep_insert):
                continue
            writable = prop.lookup is None and not prop.read_only
            limit = (prop.max_length or 0) if self.dialect.stores_text_as_given(entity, prop) else None
            columns[name] = (prop, writable, limit, self.dialect.in_value(entity, prop, None))
        binds = {
            f"{name}@odata.bind": (nav, _cleared_binding(nav))
            for name, nav in entity.navigations.items()
            if nav.owns_fk and not nav.many
        }
        self._body_plans[entity.name] = (entity, columns, binds)
        return columns, binds

    def bind_values(
        self, entity: EntityType, nav: NavigationProperty, value: Any, state: RequestState
    ) -> dict[str, Any]:
        """Columns set by binding ``nav`` to a reference (``"/contacts(<id>)"``) or a row, or cleared by None."""
        if value is None:
            return _cleared_binding(nav)
        if isinstance(value, dict) and ROWID in value:
            target_row = value
            target = self.model.entities[nav.target]
        else:
            if not isinstance(value, str):
                raise self.dialect.malformed_json(f"The value of '{nav.name}@odata.bind' must be a URL string.")
            target, target_row = self._bound_row(value, state)
            if target.name != nav.target:
                raise BadRequest(
                    f"The reference '{value}' is not of type '{nav.target}' required by '{nav.name}'.",
                    codes.PAYLOAD_INVALID,
                )
        out = {local: target_row[remote] for local, remote in nav.pairs}
        out.update(nav.local_condition)
        return out

    def _bound_row(self, value: str, state: RequestState) -> tuple[EntityType, Row]:
        """:meth:`resolve_reference` for an ``@odata.bind``, resolving each distinct reference once a request.

        A bind only copies the target's key columns, so a row found earlier in the request serves as long
        as no row of its table was updated or deleted since (the store's change epoch). Only successful
        look-ups by a fully valued key are kept: a miss is looked up (and refused) again every time, and a
        row created later in the request is found then.
        """
        cached = state.references.get(value)
        if cached is not None and self.store.change_epoch(self.model.storage_name(cached[0].name)) == cached[2]:
            return cached[0], cached[1]
        entity, key = self.reference_key(value, state)
        epoch = self.store.change_epoch(self.model.storage_name(entity.name))
        row = self.require_row(entity, key, state)
        if all(v is not None and v != "" for v in key.values()):
            state.references[value] = (entity, row, epoch)
        return entity, row

    def resolve_reference(self, value: Any, state: RequestState) -> tuple[EntityType, Row]:
        """``/accounts(<id>)``, ``accounts(key='x')``, an absolute URL, or a typed dict -> (entity, row)."""
        if isinstance(value, dict):
            type_name = str(value.get("@odata.type", "")).lstrip("#").rsplit(".", 1)[-1]
            entity = self.model.entities.get(type_name)
            if entity is None:
                raise BadRequest(
                    f"Unknown entity type '{value.get('@odata.type')}' in a parameter.", codes.PAYLOAD_INVALID
                )
            key = {k: value.get(k) for k in entity.key}
            if any(v is None for v in key.values()):
                raise BadRequest(f"The parameter of type '{entity.name}' lacks its key.", codes.PAYLOAD_INVALID)
            converted = {k: self.dialect.key_value(entity, entity.properties[k], v) for k, v in key.items()}
            return entity, self.require_row(entity, converted, state)
        entity, key = self.reference_key(value, state)
        return entity, self.require_row(entity, key, state)

    def reference_key(self, value: Any, state: RequestState) -> tuple[EntityType, dict[str, Any]]:
        """The entity and key a reference URL names (``/accounts(<id>)``, ``accounts(key='x')``, absolute)."""
        if not isinstance(value, str) or not value.strip():
            raise BadRequest("A reference must be a non-empty URL.", codes.PAYLOAD_INVALID)
        text = value.strip()
        for root in self.dialect.roots():
            position = text.find(root)
            if position >= 0:
                text = text[position + len(root) :]
                break
        text = text.lstrip("/")
        segments = [parse_segment(s) for s in split_path(text)]
        if len(segments) != 1 or segments[0].args is None:
            raise BadRequest(f"The reference '{value}' is not a single-entity URL.", codes.PAYLOAD_INVALID)
        entity = self.model.by_set.get(segments[0].name)
        if entity is None:
            raise self.dialect.unknown_set(segments[0].name)
        return entity, self.resolve_key(entity, segments[0].args, state)

    def create_row(
        self, entity: EntityType, body: dict[str, Any], state: RequestState, url_key: dict[str, Any] | None = None
    ) -> Row:
        """Insert one row (and its deep-insert children) from a JSON body."""
        if entity.read_only:
            raise not_allowed(request.method, ("GET",), f"The entity '{entity.entity_set}' is read-only.")
        values, children = self.values_from_body(entity, body, state, creating=True)
        if url_key:
            for name, value in url_key.items():
                values.setdefault(name, value)
        row = self.store.insert(self.model.storage_name(entity.name), values, identity=state.identity, via_api=True)
        for nav_name, items in children.items():
            nav = entity.navigations[nav_name]
            target = self.model.entities[nav.target]
            for item in items:
                if isinstance(item, _Associate):  # "<collection nav>@odata.bind": an existing row to point at row
                    partner = self._owning_partner(entity, nav)
                    assert partner is not None  # checked by _collection_binds
                    self.store.update(
                        self.model.storage_name(target.name),
                        item.row,
                        self.bind_values(target, partner, row, state),
                        identity=state.identity,
                        via_api=True,
                    )
                    continue
                child = dict(item)
                child_values = {remote: row[local] for local, remote in nav.pairs}
                child_values.update(nav.target_condition)
                self.create_row(target, child, state, url_key=child_values)
        return row

    def create_rows_in_bulk(
        self,
        entity: EntityType,
        bodies: list[dict[str, Any]],
        state: RequestState,
        url_keys: list[dict[str, Any] | None] | None = None,
    ) -> list[Row] | None:
        """The rows :meth:`create_row` would make from each body in order, made with a few statements for
        the whole list (:meth:`Store.prepare_many`); or None, having written nothing, when that cannot be
        done with exactly the same outcome.

        That needs rules that allow bulk creates and no deep inserts. Whatever fails in bulk (a bind to a row
        an earlier body creates, a duplicate key, a rule's refusal) gives None: the caller then goes row by
        row and meets exactly the error it always did. ``url_keys`` (upserts) are the keys the bodies were
        looked up by and found missing; each must end up as its row's own key, so that no body could have
        found a row an earlier body creates without the chunk's uniqueness check noticing.
        """
        keys: list[dict[str, Any] | None] = list(url_keys) if url_keys is not None else [None] * len(bodies)
        storage = self.model.storage_name(entity.name)
        if (
            entity.read_only
            or len(bodies) < 2
            or not self.store.can_insert_many(storage)
            or any(self._deep_insert(entity, body) for body in bodies)
        ):
            return None
        try:
            values_list: list[dict[str, Any]] = []
            for body, url_key in zip(bodies, keys, strict=True):
                values, children = self.values_from_body(entity, body, state, creating=True)
                if children:  # collection binds associate rows after the insert: row by row
                    return None
                if url_key:
                    for name, value in url_key.items():
                        values.setdefault(name, value)
                values_list.append(values)
            prepared = self.store.prepare_many(storage, values_list, identity=state.identity, via_api=True)
        except SandboxError:
            return None
        for row, url_key in zip(prepared.rows, keys, strict=True):
            if url_key is not None and not all(
                value is not None and value != "" and type(row.get(name)) is type(value) and row.get(name) == value
                for name, value in url_key.items()
            ):
                return None
        return self.store.write_prepared(prepared)

    def _deep_insert(self, entity: EntityType, body: dict[str, Any]) -> bool:
        """Whether ``body`` names a navigation property (a deep insert, or a lookup cleared by name)."""
        # Navigation property names hold no "@", so no annotation or bind name can be one of them.
        return self.dialect.deep_insert and not entity.navigations.keys().isdisjoint(body)

    def create(self, entity: EntityType, body: dict[str, Any], state: RequestState) -> Response:
        """POST to a collection: create the row and answer the dialect's way."""
        epoch = self.store.change_epoch(self.model.storage_name(entity.name))
        row = self.create_row(entity, body, state)
        if (
            self.dialect.created_response_renders_row(state)
            or self.store.change_epoch(self.model.storage_name(entity.name)) != epoch
        ):
            # Rendered rows show the values as stored; and a later write (a deep-inserted line updating
            # its header) may have changed the row since it was inserted.
            row = self.store.get(entity.name, {ROWID: row[ROWID]}) or row
        return self.dialect.created_response(self, entity, row, state)

    def update_or_upsert(
        self, entity: EntityType, key: dict[str, Any], body: dict[str, Any], state: RequestState, *, method: str
    ) -> Response:
        """PATCH/PUT of one row: update it (If-Match checked), or create it where the dialect upserts."""
        if entity.read_only:
            raise not_allowed(request.method, ("GET",), f"The entity '{entity.entity_set}' is read-only.")
        row = self.find_row(entity, key, state)
        if_match = request.headers.get("If-Match")
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match == "null":
            if_none_match = None
        if row is None:
            if if_match is not None or not self.dialect.patch_upserts:
                raise self.dialect.not_found(entity, self.key_text(entity, key))
            row = self.create_row(entity, body, state, url_key=key)
            return self.dialect.upserted_response(self, entity, row, state, created=True)
        if if_none_match == "*":
            raise PreconditionFailed("A record with matching key values already exists.", codes.DUPLICATE_RECORD)
        self.check_etag(row, if_match)
        values, _children = self.values_from_body(entity, body, state, creating=False)
        for name in key:
            if name not in entity.key:
                values.pop(name, None)  # alternate-key columns in the body are ignored on update
        row = self.store.update(
            self.model.storage_name(entity.name), row, values, identity=state.identity, via_api=True
        )
        return self.dialect.upserted_response(self, entity, row, state, created=False)

    def check_etag(self, row: Row, if_match: str | None) -> None:
        """Refuse (412) a write whose ``If-Match`` names none of the row's etag."""
        if if_match is None or if_match.strip() == "*":
            return
        candidates = [tag.strip() for tag in if_match.split(",")]
        if self.dialect.etag(row) not in candidates:
            raise PreconditionFailed(
                "The version of the existing record doesn't match the RowVersion property provided.",
                codes.CONCURRENCY_VERSION_MISMATCH,
            )

    def delete(self, entity: EntityType, key: dict[str, Any], state: RequestState) -> Response:
        """DELETE of one row (If-Match checked)."""
        if entity.read_only:
            raise not_allowed(request.method, ("GET",), f"The entity '{entity.entity_set}' is read-only.")
        row = self.require_row(entity, key, state)
        self.check_etag(row, request.headers.get("If-Match"))
        self.store.delete(self.model.storage_name(entity.name), row, identity=state.identity, via_api=True)
        return Response(status=204)

    # ---- single properties, navigations, references ---------------------------------------------------
    def _property(
        self, method: str, entity: EntityType, key: dict[str, Any], name: str, rest: list[Segment], state: RequestState
    ) -> Response:
        row = self.require_row(entity, key, state)
        prop = entity.properties[name]
        if method == "GET":
            value = self.dialect.out_value(prop, row.get(name))
            if rest and rest[0].name == "$value":
                if value is None:
                    return Response(status=204)
                return Response(str(value), content_type="text/plain; charset=utf-8")
            if rest:
                raise self.dialect.unknown_property(entity, rest[0].name)
            return json_response(
                {
                    "@odata.context": f"{state.base_url}$metadata#{entity.entity_set}"
                    f"({self.dialect.format_key(entity, row)})/{name}",
                    "value": value,
                }
            )
        if method == "PUT":
            body = self.request_body()
            if "value" not in body:
                raise self.dialect.malformed_json('The body must be {"value": ...}.')
            values, _ = self.values_from_body(entity, {name: body["value"]}, state, creating=False)
        elif method == "DELETE":
            values, _ = self.values_from_body(entity, {name: None}, state, creating=False)
        else:
            raise not_allowed(method, ("GET", "PUT", "DELETE"))
        self.check_etag(row, request.headers.get("If-Match"))
        self.store.update(self.model.storage_name(entity.name), row, values, identity=state.identity, via_api=True)
        return Response(status=204)

    def _navigation(
        self,
        method: str,
        entity: EntityType,
        key: dict[str, Any],
        nav: NavigationProperty,
        rest: list[Segment],
        state: RequestState,
    ) -> Response:
        row = self.require_row(entity, key, state)
        target = self.model.entities[nav.target]
        nav_segment = rest[0]
        is_ref = len(rest) > 1 and rest[-1].name == "$ref"
        if is_ref:
            return self._reference(method, entity, row, nav, nav_segment, state)
        if nav.many and len(rest) == 2 and rest[1].name == "$count" and nav_segment.args is None:
            # <set>(<key>)/<collection nav>/$count: the related rows as a bare number
            if method != "GET":
                raise not_allowed(method, ("GET",))
            return self.count(target, state, extra=self.nav_conditions(entity, row, nav) or [sa.false()])
        if len(rest) > 1:
            raise self.dialect.unknown_property(target, rest[1].name)
        if method != "GET":
            raise not_allowed(method, ("GET",))
        conditions = self.nav_conditions(entity, row, nav)
        if nav.many:
            if conditions is None:
                conditions = [sa.false()]
            return self.read_collection(target, state, extra=conditions)
        if conditions is None:
            return Response(status=204)
        options = self.parse_options(target, state)
        related = self.related_rows(entity, row, nav, QueryOptions(), state, limit=1)
        if not related:
            return Response(status=204)
        body = {"@odata.context": self.context_url(state, target, options.select, "/$entity")}
        body.update(self.render_rows(target, related, options, state)[0])
        return json_response(body)

    def _reference(
        self, method: str, entity: EntityType, row: Row, nav: NavigationProperty, segment: Segment, state: RequestState
    ) -> Response:
        target = self.model.entities[nav.target]
        if not nav.many:
            if not nav.owns_fk:
                raise not_allowed(method, (), "This navigation property cannot be changed through $ref.")
            if method == "GET":
                related = self.related_rows(entity, row, nav, QueryOptions(), state, limit=1)
                if not related:
                    return Response(status=204)
                return json_response({"@odata.id": self.dialect.entity_url(state.base_url, target, related[0])})
            if method == "PUT":
                body = self.request_body()
                values = self.bind_values(entity, nav, body.get("@odata.id"), state)
            elif method == "DELETE":
                values = self.bind_values(entity, nav, None, state)
            else:
                raise not_allowed(method, ("GET", "PUT", "DELETE"))
            self.store.update(self.model.storage_name(entity.name), row, values, identity=state.identity, via_api=True)
            return Response(status=204)
        partner = self._owning_partner(entity, nav)
        if method == "GET":
            conditions = self.nav_conditions(entity, row, nav) or [sa.false()]
            table = target.table
            assert table is not None
            rows = [
                dict(r._mapping)
                for r in self.db.connection.execute(sa.select(table).where(*conditions).order_by(table.c[ROWID]))
            ]
            return json_response(
                {"value": [{"@odata.id": self.dialect.entity_url(state.base_url, target, r)} for r in rows]}
            )
        if partner is None:
            raise not_allowed(method, ("GET",), "This collection cannot be changed through $ref.")
        if method == "POST":
            body = self.request_body()
            child_entity, child = self.resolve_reference(body.get("@odata.id"), state)
            if child_entity.name != target.name:
                raise BadRequest(f"The reference is not of type '{target.name}'.", codes.PAYLOAD_INVALID)
            values = self.bind_values(target, partner, row, state)
        elif method == "DELETE":
            if segment.args is not None:
                child = self.require_row(target, self.resolve_key(target, segment.args, state), state)
            elif state.args.get("$id"):  # DELETE <nav>/$ref?$id=<URL of the related row> (OData 4.0 8.2.9.4)
                child_entity, child = self.resolve_reference(state.args["$id"], state)
                if child_entity.name != target.name:
                    raise BadRequest(f"The reference is not of type '{target.name}'.", codes.PAYLOAD_INVALID)
            else:
                raise BadRequest(
                    "Name the related row to remove: <nav>(<id>)/$ref or <nav>/$ref?$id=<URL>.", codes.PAYLOAD_INVALID
                )
            if self.nav_conditions(entity, row, nav) is None or any(
                child.get(remote) != row.get(local) for local, remote in nav.pairs
            ):
                raise self.dialect.not_found(target, self.dialect.row_id_text(target, child))
            values = self.bind_values(target, partner, None, state)
        else:
            raise not_allowed(method, ("GET", "POST", "DELETE"))
        self.store.update(self.model.storage_name(target.name), child, values, identity=state.identity, via_api=True)
        return Response(status=204)

    def _owning_partner(self, entity: EntityType, nav: NavigationProperty) -> NavigationProperty | None:
        """The single-valued navigation on the target that owns the foreign key behind collection ``nav``."""
        target = self.model.entities[nav.target]
        wanted = {(remote, local) for local, remote in nav.pairs}
        for candidate in target.navigations.values():
            if (
                candidate.owns_fk
                and candidate.target == entity.name
                and set(candidate.pairs) == wanted
                and candidate.local_condition == nav.target_condition
            ):
                return candidate
        return None

    # ---- actions and functions ------------------------------------------------------------------------
    def _operation_name(self, segment: Segment) -> str:
        name = segment.name
        prefix = self.model.namespace + "."
        if name.startswith(prefix):
            return name[len(prefix) :]
        return name

    def _bound_operation(
        self,
        method: str,
        entity: EntityType,
        key: dict[str, Any] | None,
        segment: Segment,
        state: RequestState,
        *,
        collection: bool,
    ) -> Response:
        name = self._operation_name(segment)
        qualified = segment.name.startswith(self.model.namespace + ".")
        base = entity.alias_of
        spec = self.actions.find(name, entity.name, collection) or (
            self.actions.find(name, base, collection) if base else None
        )
        collection_action = self.endpoints.collection_action(name) if qualified and collection else None
        if spec is None and collection_action is None:
            if key is not None and segment.name not in entity.properties:
                raise self.dialect.unknown_property(entity, segment.name)
            raise self.dialect.unknown_set(segment.name)
        if not qualified:
            raise BadRequest(
                "Request message has unresolved parameters: bound operations need the namespace "
                f"'{self.model.namespace}.'.",
                codes.QUERY_SYNTAX,
            )
        if collection_action is not None:
            if method != "POST":
                raise not_allowed(method, ("POST",), f"The action '{name}' accepts POST only.")
            return collection_action.handler(self, entity, self.request_body(), state)
        assert spec is not None
        target = self.require_row(entity, key, state) if key is not None else None
        return self._run_operation(method, spec, target, segment, state)

    def _unbound_operation(self, method: str, segments: list[Segment], state: RequestState) -> Response:
        head = segments[0]
        if len(segments) != 1:
            raise self.dialect.unknown_set(head.name)
        name = self._operation_name(head)
        spec = self.actions.find(name, None, False)
        if spec is None:
            raise self.dialect.unknown_set(head.name)
        with self.db.transaction(may_sync=self.may_sync(method, state)):
            return self._run_operation(method, spec, None, head, state)

    def _run_operation(
        self, method: str, spec: ActionSpec, target: Row | None, segment: Segment, state: RequestState
    ) -> Response:
        if spec.is_function:
            if method != "GET":
                raise not_allowed(method, ("GET",), f"The function '{spec.name}' accepts GET only.")
            params = self._function_params(segment, state)
        else:
            if method != "POST":
                raise NotFound(
                    f"No HTTP resource was found that matches the request URI '{request.url}'.", codes.QUERY_SYNTAX
                )
            params = self.request_body()
        ctx = ActionContext(
            store=self.store,
            identity=state.identity,
            resolve_reference=lambda value: self.resolve_reference(value, state),
            service=self,
        )
        result = spec.handler(ctx, target, params)
        return self.operation_response(result, state)

    def _function_params(self, segment: Segment, state: RequestState) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if segment.args:
            for arg in split_args(segment.args):
                name, _, value = arg.partition("=")
                value = value.strip()
                if value.startswith("@"):
                    value = state.args.get(value, "null")
                params[name.strip()] = parse_literal(value)
        return params

    def operation_response(self, result: Any, state: RequestState) -> Response:
        """The response for what an action or function handler returned (see :mod:`sandbox.odata.actions`)."""
        if result is None:
            return Response(status=204)
        if isinstance(result, EntityResult):
            entity = self.model.entities[result.entity]
            select = result.columns if result.columns else None
            if select is not None:
                select = [c for c in select if c in entity.properties]
                for key in entity.key:
                    if key not in select:
                        select.insert(0, key)
            body = {"@odata.context": self.context_url(state, entity, None, "/$entity")}
            body.update(
                self.dialect.serialize(
                    entity, result.row, self.dialect.effective_select(entity, select), state.annotations
                )
            )
            return json_response(body)
        if isinstance(result, CollectionResult):
            items = []
            for entity_name, row in result.items:
                entity = self.model.entities[entity_name]
                item = {"@odata.type": f"#{self.dialect.type_label(entity)}"}
                item.update(self.dialect.serialize(entity, row, None, state.annotations))
                items.append(item)
            return json_response({"@odata.context": f"{state.base_url}$metadata#{result.context}", "value": items})
        if isinstance(result, Response):
            return result
        if isinstance(result, dict):
            body = dict(result)
            body.setdefault("@odata.context", f"{state.base_url}$metadata")
            return json_response(body)
        raise TypeError(f"unsupported action result {type(result).__name__}")

    # ---- $batch ---------------------------------------------------------------------------------------
    def _batch(self, state: RequestState) -> Response:
        dialect = self.dialect.batch_dialect
        items = batchlib.parse_batch(
            encode_request_lines(request.get_data()), request.headers.get("Content-Type", ""), dialect
        )
        app = _current_app()
        outer_headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "x-sandbox-identity", "callerobjectid", "mscrm.callerid")
        }
        host = request.host_url

        def dispatch(part: batchlib.BatchRequest) -> batchlib.BatchResponse:
            headers = {**outer_headers, **part.headers}
            path, _, query = part.url.partition("?")
            builder = EnvironBuilder(
                path=path,
                base_url=host,
                query_string=query,
                method=part.method,
                headers=list(headers.items()),
                data=part.body,
            )
            try:
                environ = builder.get_environ()
            finally:
                builder.close()
            app_iter, status, response_headers = run_wsgi_app(app.wsgi_app, environ)
            try:
                body = b"".join(app_iter)
            finally:
                if hasattr(app_iter, "close"):
                    app_iter.close()
            code, _, reason = status.partition(" ")
            return batchlib.BatchResponse(
                status=int(code), reason=reason, headers=dict(response_headers), body=body, content_id=part.content_id
            )

        continue_on_error = "odata.continue-on-error" in state.prefer
        if continue_on_error:
            state.applied.append("odata.continue-on-error")
        may_sync = self.may_sync("POST", state)
        status, responses = batchlib.execute_batch(
            items, dispatch, lambda: self.db.transaction(may_sync=may_sync), dialect, continue_on_error
        )
        body, content_type = batchlib.render_batch(responses)
        return Response(body, status=status, content_type=content_type)


_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE) (.+) (HTTP/\d\.\d)(\r?)$", re.MULTILINE)


def encode_request_lines(raw: bytes) -> bytes:
    """Percent-encode spaces and non-ASCII characters in the URLs of ``$batch`` request lines.

    Microsoft's Python client writes query options unencoded into batch parts
    (``GET [root]/accounts?$filter=name eq 'x' HTTP/1.1``), and Dataverse accepts that: its OData batch reader
    takes the URL as everything between the first and the last space of the request line. The batch parser
    splits the line on whitespace, so the URL is encoded here first (existing ``%XX`` escapes are kept).
    """

    def encode(match: re.Match[bytes]) -> bytes:
        url = match.group(2)
        if b" " not in url and url.isascii():
            return match.group(0)
        text = urllib.parse.quote(url.decode("utf-8", errors="replace"), safe="/:?#[]@!$&'()*+,;=%~-._")
        return match.group(1) + b" " + text.encode("ascii") + b" " + match.group(3) + match.group(4)

    return _REQUEST_LINE.sub(encode, raw)


def _current_app() -> Flask:
    from flask import current_app

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


__all__ = ["ODataService", "RequestState", "QueryOptions", "identity_of", "parse_prefer"]
