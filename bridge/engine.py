"""The dual-write engine: plans target writes from source changes and executes them as one unit.

Live sync, catch-up, async draining and initial sync all come down to the same two moves:
:meth:`SyncEngine.plan` (source changes -> transformed :class:`Write` objects, through the pure pipeline)
and :meth:`SyncEngine.execute` (the writes of one source transaction -> one atomic ``$batch`` change set on
the target, parents before children; a unit of one Sales row is a single upsert by alternate key instead).
:meth:`SyncEngine.upsert_many` sends many such one-row units at once (async mode). Reads of the other side
(does the row exist? which company id?) go through the typed clients; the engine never touches a database of
a service.
"""

from __future__ import annotations

import decimal
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from bridge import writeback
from bridge.compiled import CompiledMap, compile_map
from bridge.mapping import TableMap
from bridge.pipeline import Drop, MissingParent, Record, key_values, transform
from bridge.state import BridgeState
from sandbox.clients import BatchOp, SalesClient, ScmClient, ServiceError, format_key
from sandbox.livesync import related_token
from sandbox.odata.literals import format_literal
from sandbox.odata.model import EntityType, Model
from sandbox.wellknown import INTEGRATION_IDENTITY

if TYPE_CHECKING:
    from bridge.livelimits import LiveUnitLimits
    from bridge.resolution import OutcomeResolver

log = logging.getLogger(__name__)

Source = Literal["sales", "scm"]


#: 4xx answers that say "not now" rather than "not this row": a timeout, a conflict with a concurrent write,
#: throttling. With every 5xx and every failure to get an answer at all they are worth trying again; any
#: other 4xx refuses the row for its content, and trying again would only be refused again.
RETRYABLE_4XX = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """Whether an answer with this HTTP status is worth trying again (see :data:`RETRYABLE_4XX`)."""
    return status >= 500 or status in RETRYABLE_4XX


class SyncError(Exception):
    """A sync unit failed; ``message`` says what failed on which side (shown to the writing user).

    ``transient``: the other side was unavailable (429, 408, 502-504, or no answer): a live writer gets a
    503. ``target_status`` is the HTTP status the other side answered, when it answered; with ``transient``
    it decides whether the async drainer tries again (:attr:`retryable`). ``attempts`` counts the tries made
    before the error was kept.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        transient: bool = False,
        retry_after: float | None = None,
        target_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.target_status = target_status
        self.attempts = 1
        #: failed before any write request went out (reading the other side first): the outcome is known
        self.unsent = False

    @property
    def retryable(self) -> bool:
        """Worth trying again: the other side was unreachable or answered 5xx, 408, 409 or 429."""
        return self.transient or (self.target_status is not None and retryable_status(self.target_status))


@dataclass
class Write:
    """One write on the target side, derived from one source change through one map."""

    map: TableMap
    target: Source
    operation: Literal["upsert", "delete"]
    key: dict[str, Any]
    payload: dict[str, Any]
    company: str | None
    company_id: str | None
    change: dict[str, Any]
    order: int = 0
    response: dict[str, Any] = field(default_factory=dict)


#: ``json.dumps(..., sort_keys=True, default=str)``'s encoder, made once instead of once per call: how keys of
#: records are written where they are matched or stored (initial sync, the async ordering guard)
KEY_JSON = json.JSONEncoder(sort_keys=True, default=str)


# ---- wire normalization ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WirePlan:
    """What :func:`wire_row` does to one entity's images: the columns it keeps and the few it converts."""

    names: frozenset[str]
    enums: tuple[tuple[str, Any], ...]  # (column, enum type) written as member names
    decimals: tuple[str, ...]  # Edm.Decimal columns (stored as text in change images)

    @classmethod
    def of(cls, entity: EntityType, enums_as_names: bool) -> WirePlan:
        properties = entity.properties
        return cls(
            names=frozenset(properties),
            enums=tuple((n, p.enum) for n, p in properties.items() if p.enum is not None) if enums_as_names else (),
            decimals=tuple(n for n, p in properties.items() if p.type == "Edm.Decimal" and p.enum is None),
        )

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """``raw`` in the wire format (see :func:`wire_row`); the unconverted columns are copied in one step."""
        out = dict(raw) if raw.keys() <= self.names else {k: v for k, v in raw.items() if k in self.names}
        for name, enum in self.enums:
            value = out.get(name)
            if isinstance(value, int):
                out[name] = enum.name_of(value) or value
        for name in self.decimals:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    out[name] = float(decimal.Decimal(value))
                except decimal.InvalidOperation:
                    pass
        if decimal.Decimal in map(type, out.values()):  # images built in this process rather than read as JSON
            for name, value in out.items():
                if isinstance(value, decimal.Decimal):
                    out[name] = float(value)
        return out


def wire_row(entity: EntityType, raw: dict[str, Any], enums_as_names: bool) -> dict[str, Any]:
    """An outbox/after image (JSON of stored values) in the service's wire format: only the entity's columns,
    enums as member names (``enums_as_names``: F&O), decimals as numbers.

    For one image; an engine keeps a :class:`WirePlan` per entity of its models (:meth:`SyncEngine.wire_image`)
    because it converts every change it reads."""
    return WirePlan.of(entity, enums_as_names).apply(raw)


class SyncEngine:
    """Transforms and writes across; owns no thread (the bridge runtime schedules it)."""

    def __init__(
        self,
        maps: list[TableMap],
        sales: SalesClient,
        scm: ScmClient,
        sales_model: Model,
        scm_model: Model,
        state: BridgeState,
    ) -> None:
        self.sales = sales
        self.scm = scm
        self.sales_model = sales_model
        self.scm_model = scm_model
        self.state = state
        # Images of F&O rows carry enums as member names on the wire, Dataverse ones as numbers.
        self._wire_plans: dict[Source, dict[str, WirePlan]] = {
            "scm": {name: WirePlan.of(entity, True) for name, entity in scm_model.entities.items()},
            "sales": {name: WirePlan.of(entity, False) for name, entity in sales_model.entities.items()},
        }
        self.maps = maps
        self._companies: dict[str, str] = {}  # dataAreaId -> cdm_companyid
        self._company_codes: dict[str, str] = {}  # cdm_companyid -> dataAreaId
        self._lock = threading.RLock()
        self.listeners: list[Callable[[str, str, Any], None]] = []
        #: set during a catch-up to drop fields the master side changed too (see Lifecycle.resume)
        self.field_guard: Callable[[Write], None] | None = None
        #: resolves live units whose outcome on the other side is unknown (set by the bridge runtime)
        self.resolver: OutcomeResolver | None = None
        #: dual-write's live-sync limits (records and time per unit; bridge/livelimits.py), None: unlimited
        self.live_limits: LiveUnitLimits | None = None

    # ---- maps -------------------------------------------------------------------------------------------
    @property
    def maps(self) -> list[TableMap]:
        """The engine's maps, in dependency order; assigning new ones compiles them."""
        return self._maps

    @maps.setter
    def maps(self, maps: list[TableMap]) -> None:
        self._maps = list(maps)
        self.by_id = {m.id: m for m in self._maps}
        self.order = {m.id: index for index, m in enumerate(self._maps)}
        self._compiled = {m.id: compile_map(m, self.sales_model) for m in self._maps}

    def compiled(self, table_map: TableMap) -> CompiledMap:
        """``table_map`` as the pipeline reads it, compiled when the engine got its maps."""
        found = self._compiled.get(table_map.id)
        if found is None or found.map is not table_map:
            raise ValueError(f"map {table_map.id!r} is not one of this engine's maps")
        return found

    def wire_image(self, side: Source, table: str, raw: dict[str, Any]) -> dict[str, Any]:
        """An image of a row of ``side``'s ``table`` in that service's wire format (see :func:`wire_row`)."""
        return self._wire_plans[side][table].apply(raw)

    def maps_for(self, source: Source, table: str) -> list[TableMap]:
        found = []
        for table_map in self.maps:
            if source == "scm":
                entity = table_map.scm_type
                if entity is not None and (entity.alias_of or entity.name) == table and table_map.syncs_to_sales:
                    found.append(table_map)
            else:
                entity = table_map.sales_type
                if entity is not None and entity.name == table and table_map.syncs_to_scm:
                    found.append(table_map)
        return found

    # ---- companies ---------------------------------------------------------------------------------------
    def company_id(self, code: str | None) -> str | None:
        """The Sales cdm_companyid of a dataAreaId (cached; None when Sales does not know the company)."""
        if not code:
            return None
        code = code.lower()
        if code not in self._companies:
            rows = self.sales.query(
                "cdm_companies",
                select=["cdm_companyid", "cdm_companycode"],
                filter=f"cdm_companycode eq {format_literal(code, guid_bare=False)}",
            )
            if not rows:
                return None
            self._remember_company(rows[0]["cdm_companycode"], rows[0]["cdm_companyid"])
        return self._companies.get(code)

    def _company_id_for_plan(self, code: str | None) -> str | None:
        """:meth:`company_id` while planning a unit: a failed read of Sales fails the unit cleanly, before any
        write went out (transient when Sales was unavailable or erred), instead of escaping as an unexpected error."""
        try:
            return self.company_id(code)
        except ServiceError as exc:
            error = SyncError(
                f"{self._label('sales')} could not read company {code!r}: {exc}",
                503 if exc.status >= 500 or exc.status in (408, 429) else 400,
                transient=exc.status >= 500 or exc.status in (408, 429),
                target_status=exc.status,
            )
        except httpx.HTTPError as exc:
            error = SyncError(f"{self._label('sales')} could not be reached: {exc}", 503, transient=True)
        error.unsent = True
        raise error

    def company_code(self, company_id: str | None) -> str | None:
        if not company_id:
            return None
        if company_id not in self._company_codes:
            try:
                row = self.sales.retrieve("cdm_companies", company_id, select=["cdm_companycode"])
            except ServiceError as exc:
                if exc.status == 404:
                    return None
                raise  # a failed read is not an absent company: the unit fails (and is retried when transient)
            self._remember_company(row["cdm_companycode"], company_id)
        return self._company_codes.get(company_id)

    def _remember_company(self, code: str, company_id: str) -> None:
        self._companies[code.lower()] = company_id
        self._company_codes[company_id] = code.lower()

    def known_company_id(self, code: str | None) -> str | None:
        """The Sales cdm_companyid of a dataAreaId if already known (never reads Sales, which may be the source
        of a live write in the middle of its transaction)."""
        return self._companies.get(code.lower()) if code else None

    def load_companies(self) -> None:
        """Read every Sales company once (so live sync from Sales never needs to read Sales back)."""
        for row in self.sales.query("cdm_companies", select=["cdm_companyid", "cdm_companycode"]):
            if row.get("cdm_companycode"):
                self._remember_company(row["cdm_companycode"], row["cdm_companyid"])

    # ---- planning ----------------------------------------------------------------------------------------
    def related_getter(
        self, related: dict[str, dict[str, Any]] | None, allow_fetch: bool
    ) -> Callable[[str, dict[str, Any]], dict[str, Any] | None]:
        """How the pipeline finds the Sales row a lookup of a Sales row points at."""
        cache: dict[str, dict[str, Any] | None] = {}

        def get(nav_name: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None:
                return None
            expanded = row.get(nav_name)
            if isinstance(expanded, dict):
                return expanded  # expanded by a query
            table = row.get("@sandbox.table")
            candidates = [self.sales_model.entities[table]] if table else list(self.sales_model.entities.values())
            for entity in candidates:
                nav = entity.navigations.get(nav_name)
                if nav is None or nav.many or not nav.owns_fk:
                    continue
                if any(row.get(k) != v for k, v in nav.local_condition.items()):
                    continue
                values = {remote: row.get(local) for local, remote in nav.pairs}
                if any(v is None for v in values.values()):
                    return None
                target = self.sales_model.entities[nav.target]
                if target.name == "cdm_company":
                    code = (
                        self.company_code(str(next(iter(values.values()))))
                        if allow_fetch
                        else self._company_codes.get(str(next(iter(values.values()))))
                    )
                    if code is None and related:
                        found = related.get(related_token(target.name, values))
                        code = found.get("cdm_companycode") if found else None
                    return {"cdm_companycode": code, "@sandbox.table": "cdm_company"} if code else None
                token = related_token(target.name, values)
                if related and token in related:
                    image = self.wire_image("sales", target.name, related[token])
                    return {**image, "@sandbox.table": target.name}
                if not allow_fetch:
                    return None
                if token not in cache:
                    try:
                        fetched = self.sales.retrieve(target.entity_set, next(iter(values.values())))
                        cache[token] = {**fetched, "@sandbox.table": target.name}
                    except ServiceError as exc:
                        if exc.status != 404:
                            # Only "not found" means no related row; taking a failed read for one would
                            # drop the lookup (or the whole record) for good instead of trying again.
                            raise
                        cache[token] = None
                return cache[token]
            return None

        return get

    def plan(
        self,
        source: Source,
        changes: Iterable[dict[str, Any]],
        *,
        maps: Callable[[TableMap], bool],
        related: dict[str, dict[str, Any]] | None = None,
        allow_fetch: bool = True,
        partial: bool = False,
    ) -> list[Write]:
        """The target writes for ``changes`` through every map ``maps`` admits, parents first.

        ``partial`` (replays: catch-up, async) sends only what each update changed, so edits made on both
        sides while a map was paused converge instead of overwriting each other with whole stale rows.
        """
        writes: list[Write] = []
        getter = self.related_getter(related, allow_fetch)
        target: Source = "sales" if source == "scm" else "scm"
        for position, change in enumerate(changes):
            for table_map in self.maps_for(source, change["table"]):
                if not maps(table_map):
                    continue
                write = self.plan_one(source, target, table_map, change, getter)
                if write is not None and partial and change["operation"] == "update":
                    write.payload = changed_only(
                        table_map, write.payload, change.get("changed") or [], to_sales=(target == "sales")
                    )
                if write is not None and self.field_guard is not None:
                    self.field_guard(write)
                if write is not None:
                    write.order = self.order[table_map.id] * 1_000_000 + position
                    writes.append(write)
        writes.sort(key=lambda w: w.order if w.operation == "upsert" else -w.order)
        return writes

    def plan_one(
        self,
        source: Source,
        target: Source,
        table_map: TableMap,
        change: dict[str, Any],
        getter: Callable[[str, dict[str, Any]], dict[str, Any] | None],
    ) -> Write | None:
        table = change["table"]
        row = self.wire_image(source, table, change.get("after") or {})
        if source == "sales":
            row["@sandbox.table"] = table
        record = Record(
            map=table_map,
            direction="to_sales" if target == "sales" else "to_scm",
            source=row,
            related=getter,
            sales_model=self.sales_model,
            compiled_map=self.compiled(table_map),
        )
        if target == "sales":
            code = str(row.get("dataAreaId") or "").lower() or None
            record.company = code
            record.company_id = (
                self._company_id_for_plan(code) if (table_map.company or table_map.company_from) else None
            )
            record.sales = self.sales  # reads for the price-list rule of product maps (pipeline.assign_price_list)
            self._choose_polymorphic(record)
        try:
            record = transform(record)
        except Drop as dropped:
            if change["operation"] == "delete":
                pass  # a filtered row may still exist on the other side from before; deletes go through
            else:
                log.debug("%s: %s", table_map.id, dropped.reason)
                return None
        except MissingParent as exc:
            raise SyncError(f"{table_map.name}: {exc}") from None
        key = key_values(table_map, record)
        operation: Literal["upsert", "delete"] = "delete" if change["operation"] == "delete" else "upsert"
        if target == "sales":
            record.target.pop("@sandbox.table", None)
        return Write(table_map, target, operation, key, record.target, record.company, record.company_id, change)

    def _choose_polymorphic(self, record: Record) -> None:
        """Polymorphic lookups to Sales: use the first alternative whose row exists in Sales."""
        for item in record.compiled.to_sales.polymorphic:
            value = record.source.get(item.scm)
            if value in (None, ""):
                continue
            entity = record.map.sales_type
            assert entity is not None
            for index, path in enumerate(item.sales):
                nav = entity.navigations[path.nav or ""]
                target = self.sales_model.entities[nav.target]
                conditions = [f"{path.column} eq {format_literal(value, guid_bare=False)}"]
                if record.company_id and "_msdyn_company_value" in target.properties:
                    conditions.append(f"_msdyn_company_value eq {record.company_id}")
                if self.sales.query(target.entity_set, select=[target.key[0]], filter=" and ".join(conditions), top=1):
                    record.target[f"@sandbox.lookup.{item.scm}"] = index
                    break

    # ---- executing ---------------------------------------------------------------------------------------
    def execute(self, writes: list[Write]) -> None:
        """Write everything as one change set per target side; raise :class:`SyncError` on any failure."""
        sides: tuple[Source, ...] = ("sales", "scm")
        for side in sides:
            batch = [w for w in writes if w.target == side]
            if batch:
                self._execute_side(side, batch)

    def _execute_side(self, side: Source, writes: list[Write]) -> None:
        pairs: list[tuple[BatchOp, Write]] = []
        try:
            for write in writes:
                op = self._sales_op(write, alone=len(writes) == 1) if side == "sales" else self._scm_op(write)
                if op is not None:
                    pairs.append((op, write))
        except ServiceError as exc:
            unsent = SyncError(
                f"Reading {self._label(side)} failed: {exc.message}",
                exc.status,
                transient=exc.transient,
                retry_after=exc.retry_after,
                target_status=exc.status,
            )
            unsent.unsent = True
            raise unsent from None
        except (httpx.TransportError, OSError) as exc:  # the other side down before anything was written
            unsent = SyncError(f"{self._label(side)} could not be reached: {exc}", 503, transient=True)
            unsent.unsent = True
            raise unsent from None
        # Deletes (children first) and creates (parents first) keep their order; updates go last, children
        # before parents: a target that recomputes a parent from its children (Sales order totals from its
        # lines) must not overwrite what this unit writes to the parent (SCM's totals and status).
        updates = sorted(
            (p for p in pairs if p[0].method not in ("POST", "DELETE")), key=lambda p: -self.order[p[1].map.id]
        )
        pairs = [p for p in pairs if p[0].method in ("POST", "DELETE")] + updates
        ops = [op for op, _ in pairs]
        described = [write for _, write in pairs]
        if not ops:
            return
        client = self.sales if side == "sales" else self.scm
        headers = {"X-Sandbox-Identity": INTEGRATION_IDENTITY}
        try:
            if len(ops) == 1:
                ops[0].content_id = "1"
                results = [client.send(ops[0], headers=headers)]
            else:
                results = client.batch([ops], headers=headers)
        except ServiceError as exc:
            raise SyncError(
                f"Writing to {self._label(side)} failed: {exc.message}",
                exc.status,
                transient=exc.transient,
                retry_after=exc.retry_after,
                target_status=exc.status,
            ) from None
        except Exception as exc:  # noqa: BLE001 - the other side being down is a sync error, not a crash
            raise SyncError(f"{self._label(side)} could not be reached: {exc}", 503, transient=True) from None
        by_id = {r.content_id: r for r in results if r.content_id}
        for index, write in enumerate(described, 1):
            result = by_id.get(str(index))
            if result is not None:
                write.response = {"status": result.status, "body": result.json}
        failures = [r for r in results if not r.ok]
        if failures:
            failure = failures[0]
            error = failure.error()
            position = int(failure.content_id) - 1 if failure.content_id and failure.content_id.isdigit() else 0
            write = described[min(position, len(described) - 1)]
            for item in described:
                item.response = item.response or {"status": failure.status, "body": failure.json}
            message = error.message if error else f"status {failure.status}"
            raise SyncError(
                f"{write.map.name}: writing {self._describe_key(write)} to {self._label(side)} failed: {message}",
                failure.status if failure.status < 500 else 400,
                transient=bool(error and error.transient),
                retry_after=error.retry_after if error else None,
                target_status=failure.status,
            )

    def bulk_upsertable(self, writes: list[Write]) -> bool:
        """Whether a unit is one Sales upsert addressable by alternate key (what :meth:`upsert_many` takes)."""
        return (
            len(writes) == 1
            and writes[0].target == "sales"
            and writes[0].operation == "upsert"
            and self.sales_key(writes[0]) is not None
        )

    def upsert_many(self, writes: list[Write]) -> None:
        """Upsert the rows of several single-write units into one Sales table with one ``UpsertMultiple``
        call (Targets addressed by alternate key through ``@odata.id``). All or nothing: on any failure
        nothing was written and :class:`SyncError` tells whether a retry may help."""
        entity = writes[0].map.sales_type
        assert entity is not None
        targets = []
        for write in writes:
            key = self.sales_key(write)
            if key is None or write.map.sales_type is not entity:
                raise ValueError("upsert_many takes writes to one table, each addressable by alternate key")
            targets.append(
                {
                    "@odata.type": f"Microsoft.Dynamics.CRM.{entity.name}",
                    "@odata.id": entity.entity_set + format_key(key),
                    **write.payload,
                }
            )
        try:
            answer = self.sales.action("UpsertMultiple", {"Targets": targets}, entity_set=entity.entity_set)
        except ServiceError as exc:
            raise SyncError(
                f"{writes[0].map.name}: writing {len(writes)} rows to {self._label('sales')} failed: {exc.message}",
                exc.status if exc.status < 500 else 400,
                transient=exc.transient,
                retry_after=exc.retry_after,
                target_status=exc.status,
            ) from None
        except httpx.TransportError as exc:
            raise SyncError(f"{self._label('sales')} could not be reached: {exc}", 503, transient=True) from None
        results = (answer or {}).get("Results") or []
        for write, result in zip(writes, results, strict=False):  # an answer may list fewer
            write.response = {"status": 200, "body": result}

    @staticmethod
    def _label(side: str) -> str:
        return "Dynamics 365 Sales" if side == "sales" else "Supply Chain Management"

    @staticmethod
    def _describe_key(write: Write) -> str:
        key = ", ".join(f"{k}={v}" for k, v in write.key.items())
        return f"{key}" + (f" in {write.company}" if write.company else "")

    def _sales_filter(self, write: Write) -> str:
        entity = write.map.sales_type
        assert entity is not None
        parts = []
        for name, value in write.key.items():
            path = name.replace(".", "/")
            parts.append(f"{path} eq null" if value is None else f"{path} eq {format_literal(value, guid_bare=False)}")
        if write.map.company:
            if write.company_id is None:
                raise SyncError(
                    f"{write.map.name}: company '{write.company}' does not exist in Dynamics 365 Sales "
                    "(run the legal entities map first)"
                )
            parts.append(f"_msdyn_company_value eq {write.company_id}")
        elif write.map.company_from and write.company_id:
            parts.append(f"{write.map.company_from}/_msdyn_company_value eq {write.company_id}")
        return " and ".join(parts)

    def sales_key(self, write: Write) -> dict[str, Any] | None:
        """The Sales alternate key that addresses ``write``'s row directly, or None when the map's integration
        key is not one (a key through a lookup, a company taken from the parent row)."""
        entity = write.map.sales_type
        assert entity is not None
        if write.map.company_from or any("." in name or value is None for name, value in write.key.items()):
            return None
        key = dict(write.key)
        if write.map.company:
            if write.company_id is None:
                return None  # _sales_filter says why
            key["_msdyn_company_value"] = write.company_id
        wanted = set(key)
        return key if any(set(columns) == wanted for columns in entity.alternate_keys) else None

    def _sales_op(self, write: Write, *, alone: bool = False) -> BatchOp | None:
        """The Sales request for ``write``. A write ``alone`` in its unit upserts by alternate key, with no
        read first; in a unit of several, creates and updates are told apart (read first) because they go
        in different orders (see :meth:`_execute_side`)."""
        entity = write.map.sales_type
        assert entity is not None
        if alone and write.operation == "upsert":
            key = self.sales_key(write)
            if key is not None:
                return BatchOp.patch(self.sales.entity_path(entity.entity_set, key), write.payload)
        existing = self.sales.query(entity.entity_set, select=[entity.key[0]], filter=self._sales_filter(write), top=1)
        if write.operation == "delete":
            if not existing:
                return None
            return BatchOp.delete(f"{entity.entity_set}({existing[0][entity.key[0]]})")
        if existing:
            return BatchOp.patch(
                f"{entity.entity_set}({existing[0][entity.key[0]]})", write.payload, headers={"If-Match": "*"}
            )
        return BatchOp.post(entity.entity_set, write.payload)

    def _scm_op(self, write: Write) -> BatchOp | None:
        entity = write.map.scm_type
        assert entity is not None
        parts = []
        for name, value in write.key.items():
            parts.append(f"{name} eq {format_literal(value, guid_bare=False)}")
        company = write.payload.get("dataAreaId") or write.company
        if entity.company_property and company:
            parts.append(f"dataAreaId eq {format_literal(company, guid_bare=False)}")
        existing = self.scm.query(
            entity.entity_set, select=list(entity.key), filter=" and ".join(parts), top=1, cross_company=True
        )
        if not existing:
            return None if write.operation == "delete" else BatchOp.post(entity.entity_set, write.payload)
        # Without cross-company, F&O scopes a key to the caller's default company: rows of any other legal
        # entity would be "not found".
        path = self.scm.entity_path(entity.entity_set, {k: existing[0][k] for k in entity.key})
        if entity.company_property:
            path += "?cross-company=true"
        if write.operation == "delete":
            return BatchOp.delete(path)
        return BatchOp.patch(path, {k: v for k, v in write.payload.items() if k not in entity.key})

    # ---- bookkeeping -------------------------------------------------------------------------------------
    def record_success(self, writes: list[Write], via: str) -> None:
        counts: dict[str, int] = defaultdict(int)
        for write in writes:
            counts[write.map.id] += 1
        # Written with others shortly (the next read of traces or maps sees them): not a commit per unit.
        self.state.record_synced(
            [
                (
                    write.map.id,
                    f"to_{write.target}",
                    write.key,
                    write.operation,
                    write.change,
                    write.payload,
                    write.response,
                    True,
                )
                for write in writes
            ],
            dict(counts),
        )
        for map_id, count in counts.items():
            self._notify("synced", map_id, count)
        # Per direction as well, for metrics (a bidirectional map's writes go one way per unit).
        for write in writes:
            self._notify("written", write.map.id, {"direction": f"to_{write.target}", "count": 1, "via": via})

    def record_failure(self, writes: list[Write], error: SyncError, via: str) -> None:
        seen: set[str] = set()
        for write in writes:
            self.state.trace(
                write.map.id,
                f"to_{write.target}",
                write.key,
                write.operation,
                write.change,
                write.payload,
                write.response or {"error": error.message},
                False,
            )
            if write.map.id not in seen:
                seen.add(write.map.id)
                self.state.count(write.map.id, failed=1, error=error.message)
                self.state.activity(write.map.id, "error", f"{via}: {error.message}")
                self._notify("failed", write.map.id, error)
                self._notify(
                    "write_failed", write.map.id, {"direction": f"to_{write.target}", "via": via, "error": error}
                )

    def _notify(self, event: str, map_id: str, detail: Any) -> None:
        for listener in self.listeners:
            try:
                listener(event, map_id, detail)
            except Exception:  # noqa: BLE001 - observers must not break sync
                log.exception("listener failed")

    def apply(
        self,
        source: Source,
        changes: list[dict[str, Any]],
        *,
        maps: Callable[[TableMap], bool],
        related: dict[str, dict[str, Any]] | None = None,
        allow_fetch: bool = True,
        via: str = "live",
        partial: bool = False,
        writeback: list[dict[str, Any]] | None = None,
    ) -> int:
        """Plan and execute one unit; returns how many writes it made. Raises :class:`SyncError`.

        What the target computed for the source rows (:mod:`bridge.writeback`) goes into ``writeback`` when
        given (live sync: the source applies it before it commits), else straight to the committed source."""
        guard = self.live_limits if via == "live" else None
        started = guard.clock() if guard is not None else 0.0
        try:
            if guard is not None and (refused := guard.records_refusal(len(changes))):
                raise SyncError(refused)
            writes = self.plan(source, changes, maps=maps, related=related, allow_fetch=allow_fetch, partial=partial)
            if guard is not None and writes and (refused := guard.time_refusal(started)):
                raise SyncError(refused)
        except SyncError as error:
            involved = [m for c in changes for m in self.maps_for(source, c["table"]) if maps(m)]
            for table_map in {m.id: m for m in involved}.values():
                self.state.count(table_map.id, failed=1, error=error.message)
                self.state.activity(table_map.id, "error", f"{via}: {error.message}")
                self._notify("failed", table_map.id, error)
                self._notify(
                    "write_failed",
                    table_map.id,
                    {"direction": "to_scm" if source == "sales" else "to_sales", "via": via, "error": error},
                )
            raise
        if not writes:
            return 0
        try:
            self.execute(writes)
        except SyncError as error:
            # A live unit must not be answered before the other side's outcome is known (bridge/resolution.py):
            # None means every write is there after all and the unit completes.
            answer = self.resolver.resolve(source, writes, error) if via == "live" and self.resolver else error
            if answer is not None:
                self.record_failure(writes, answer, via)
                raise answer from None
        self.record_success(writes, via)
        self._write_back(source, writes, related, allow_fetch, maps, writeback)
        return len(writes)

    def _write_back(
        self,
        source: Source,
        writes: list[Write],
        related: dict[str, dict[str, Any]] | None,
        allow_fetch: bool,
        maps: Callable[[TableMap], bool],
        collect: list[dict[str, Any]] | None,
    ) -> None:
        try:
            items = writeback.compute(self, source, writes, self.related_getter(related, allow_fetch), maps)
        except Exception:  # noqa: BLE001 - the unit is written on both sides; a failed write-back must not undo it
            log.exception("computing the write-back of a unit failed")
            return
        if collect is not None:
            collect.extend(item.as_dict() for item in items)
        elif items:
            writeback.send(self, items)


def changed_only(table_map: TableMap, payload: dict[str, Any], changed: list[str], *, to_sales: bool) -> dict[str, Any]:
    """The part of a target payload that comes from the source columns an update changed (plus the key
    and the company, which locate the row)."""
    changed_lower = {name.lower() for name in changed}
    keep: set[str] = {"dataAreaId", "msdyn_company@odata.bind"}
    for item in table_map.keys:
        keep.add(item.sales[0].column if to_sales else item.scm)
    for item in table_map.fields:
        if to_sales:
            source_changed = item.scm.lower() in changed_lower
            targets = {p.column if p.nav is None else f"{p.nav}@odata.bind" for p in item.sales}
        else:
            source_changed = any(
                (p.column if p.nav is None else f"_{p.nav}_value").lower() in changed_lower for p in item.sales
            )
            targets = {item.scm}
        if source_changed:
            keep |= targets
    return {k: v for k, v in payload.items() if k in keep or k.lower() in {t.lower() for t in keep}}


def record_identity(write: Write) -> tuple[str, str, tuple[str, ...]]:
    """The same record seen from either side: map, company and integration key values."""
    return (write.map.id, (write.company or "").lower(), tuple(sorted(str(v).lower() for v in write.key.values())))


def scm_field_names(write: Write) -> set[str]:
    """The SCM fields a write's payload carries (its own names toward SCM, mapped back toward Sales)."""
    if write.target == "scm":
        return {k.lower() for k in write.payload}
    names: set[str] = set()
    for item in write.map.fields:
        targets = {p.column if p.nav is None else f"{p.nav}@odata.bind" for p in item.sales}
        if targets & set(write.payload):
            names.add(item.scm.lower())
    return names


def drop_scm_fields(write: Write, protected: set[str]) -> None:
    """Remove from a write's payload the fields that stand for the SCM fields in ``protected``."""
    key_fields = {k.scm.lower() for k in write.map.keys}
    protected = protected - key_fields
    if write.target == "scm":
        write.payload = {k: v for k, v in write.payload.items() if k.lower() not in protected}
        return
    for item in write.map.fields:
        if item.scm.lower() in protected:
            for path in item.sales:
                write.payload.pop(path.column if path.nav is None else f"{path.nav}@odata.bind", None)
