"""Async mode: drainers per source service that apply its change feed to the other side, continuously.

Like dual-write's async mode, an async map is eventually consistent: the source write commits on its own
and the bridge catches up from the source outbox (``GET /_sandbox/changes``). The guarantees:

* **At least once, effectively exactly once.** The worker's position per source feed is a durable cursor
  (``bridge_cursor``) that moves only after a source transaction was applied (or kept as an error). A
  kill between the two redelivers that transaction; writes upsert on integration keys and the per-record
  guard (``bridge_applied``: newest seq applied per map and record) skips what was already applied.
* **Per-record order.** A change whose seq is not newer than the guard is never applied, so a duplicated or
  reordered delivery cannot put an older image over a newer one. One source transaction is applied as one
  target change set, parents before children (the engine orders the writes).
* **Retries.** Transient failures (every 5xx, 408, 409, 429, a timeout, a dropped or refused connection:
  :attr:`SyncError.retryable`) are retried with exponential backoff that waits at least the
  ``Retry-After`` the target asked for, a bounded number of times (:class:`RetryPolicy`); each attempt
  plans the unit again, so a write whose answer was lost is found and not made twice. Only a unit that
  keeps failing past the budget, or that the target refuses for its content (any other 4xx), is kept as
  a **catch-up error** of the map, with the number of attempts made: shown beside the queue, retried with
  the map's catch-up "Retry" (which skips rows a newer change has superseded) and counted as failed.
  Keeping the drainer moving rather than blocking the whole feed on one bad record is the trade-off; an
  alert rule can pause the map when errors pile up.
* **Several drainers.** With ``drain_workers`` above one, that many threads per source share each feed
  through claims in the bridge's database (:mod:`bridge.claims`): a record's changes are applied in feed
  order and never two at once, a transaction stays one unit, a unit waits for an earlier unit of a table
  its maps depend on, and the drainers' cursor stays just below the oldest unit not yet handled.
* **Where a map starts.** When a map switches to async, its floor is the feed's latest seq at that moment
  (``bridge_cursor`` row ``async:<map>:<source>``): initial sync covers what existed, the worker the rest.

Deletes, filters and value maps behave as in live sync: the same :meth:`SyncEngine.apply` does the work.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import tenacity

from bridge.claims import Unit, WorkQueue
from bridge.drainer import AsyncDrainer
from bridge.engine import KEY_JSON, Source, SyncEngine, SyncError, Write, record_identity
from bridge.mapping import TableMap
from bridge.state import INITIALIZING, PAUSED, RESUMING, RUNNING, BridgeState
from sandbox.clients import ServiceError
from sandbox.livesync import coalesce
from sandbox.wellknown import INTEGRATION_IDENTITY

if TYPE_CHECKING:
    from bridge.lifecycle import Lifecycle
    from bridge.readiness import Startup
    from sandbox.clients import ControlClient

log = logging.getLogger(__name__)

SOURCES: tuple[Source, ...] = ("sales", "scm")
PAGE_SIZE = 200
#: seconds a drainer waits after a short page before reading the next one: larger pages (one UpsertMultiple,
#: one guard write, one feed read for more changes) for at most this much more lag; writers keep more of
#: their raw rate while async maps drain.
LINGER = 0.3
BULK_SIZE = 200  # single-row upserts sent together in one UpsertMultiple (Dataverse takes up to 1000)
BACKLOG_LIMIT = 5000  # status counts the queue up to this many changes per source (more shows as 5000+)


class Stopping(BaseException):
    """Raised inside a backoff sleep when the worker is stopping; a BaseException so no handler eats it."""


@dataclass
class RetryPolicy:
    """How the worker retries a transient failure (:attr:`bridge.engine.SyncError.retryable`: every 5xx, 408,
    409, 429, a timeout, a dropped or refused connection): ``attempts`` tries in all, exponential backoff
    with jitter from ``initial`` up to ``maximum`` seconds, never shorter than the target's ``Retry-After``
    (capped at ``max_retry_after`` so a silly header cannot park the drainer for hours). The defaults give a
    unit about 80 seconds of trying before it is kept as a catch-up error: a target that fails one request
    in six loses one unit in some 60 million, and a restart of the other side is waited out."""

    attempts: int = 10
    initial: float = 0.2
    maximum: float = 30.0
    max_retry_after: float = 120.0


@dataclass
class Outcome:
    """What happened to one slice of a source transaction (the changes that go to the same set of maps)."""

    map_ids: frozenset[str]
    changes: list[dict[str, Any]]
    written: int = 0
    error: SyncError | None = None
    counted: bool = False  # the engine already counted the failure (its own SyncError)
    #: the ordering-guard entries (map, record, seq) this slice moves forward once it is applied
    entries: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class GroupResult:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0  # changes not applied again: stale (guard) or before a map's async floor

    @property
    def written(self) -> int:
        return sum(o.written for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]


def record_key(change: dict[str, Any]) -> str:
    """How the ordering guard names a source record: its table and its key."""
    return f"{change['table']}|{KEY_JSON.encode(change.get('key') or {})}"


def floor_name(map_id: str, source: str) -> str:
    return f"async:{map_id}:{source}"


def as_sync_error(exc: Exception) -> SyncError:
    """Any failure of one apply as a :class:`SyncError` that says whether retrying may help."""
    if isinstance(exc, SyncError):
        return exc
    if isinstance(exc, ServiceError):  # a read the engine made before writing (lookups, existing rows)
        return SyncError(
            f"Reading from the other side failed: {exc.message}",
            exc.status,
            transient=exc.transient,
            retry_after=exc.retry_after,
            target_status=exc.status,
        )
    if isinstance(exc, httpx.TransportError):
        return SyncError(f"The other side could not be reached: {exc}", 503, transient=True)
    return SyncError(f"Unexpected error: {type(exc).__name__}: {exc}", 500)


def by_transaction(changes: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive changes of one source transaction, together (the feed keeps a transaction contiguous)."""
    groups: list[list[dict[str, Any]]] = []
    for change in changes:
        if groups and groups[-1][0].get("transaction_id") == change.get("transaction_id"):
            groups[-1].append(change)
        else:
            groups.append([change])
    return groups


def units_of(
    engine: SyncEngine,
    state: BridgeState,
    source: Source,
    group: list[dict[str, Any]],
    map_ids: Iterable[str],
    *,
    floors: dict[str, int] | None = None,
    applied: dict[tuple[str, str], int] | None = None,
) -> GroupResult:
    """The slices of one source transaction still to apply, not applied yet.

    The transaction is first coalesced (one change per record, the last image), then each change goes to
    the maps for which it is newer than both the map's floor and the newest change already applied for
    that record (``applied``: the guard, read here when not given). Changes bound for the same set of maps
    form one slice (one :class:`Outcome`).
    """
    wanted = set(map_ids)
    floors = floors or {}
    result = GroupResult()
    changes = coalesce(group)
    relevant = {id(c): [m.id for m in engine.maps_for(source, c["table"]) if m.id in wanted] for c in changes}
    keys = {id(c): record_key(c) for c in changes}
    if applied is None:
        applied = state.applied_seqs(source, wanted, set(keys.values()))
    buckets: dict[frozenset[str], list[dict[str, Any]]] = {}
    for change in changes:
        seq = int(change.get("seq") or 0)
        key = keys[id(change)]
        fresh = frozenset(m for m in relevant[id(change)] if seq > floors.get(m, 0) and seq > applied.get((m, key), 0))
        if not fresh:
            result.skipped += 1
            continue
        buckets.setdefault(fresh, []).append(change)
    for fresh, subset in buckets.items():
        entries = [(m, keys[id(c)], int(c.get("seq") or 0)) for c in subset for m in relevant[id(c)] if m in fresh]
        result.outcomes.append(Outcome(fresh, subset, entries=entries))
    return result


def apply_unit(
    engine: SyncEngine,
    state: BridgeState,
    source: Source,
    outcome: Outcome,
    *,
    via: str,
    call: Callable[[Callable[[], int]], int] | None = None,
) -> None:
    """Apply one slice as one unit (``call`` wraps the attempt, e.g. with retries); after a success the
    guard moves forward. A failure is left in ``outcome.error``, never raised."""
    fresh = outcome.map_ids

    def attempt() -> int:
        try:
            return engine.apply(
                source, outcome.changes, maps=lambda m: m.id in fresh, allow_fetch=True, via=via, partial=True
            )
        except SyncError:
            raise
        except (ServiceError, httpx.TransportError) as exc:
            raise as_sync_error(exc) from exc

    try:
        outcome.written = call(attempt) if call else attempt()
    except Exception as exc:  # noqa: BLE001 - one failing unit must not stop the others
        if not isinstance(exc, (SyncError, ServiceError, httpx.TransportError)):
            log.exception("%s: applying %s changes failed unexpectedly", via, source)
        outcome.error = as_sync_error(exc)
        # The engine counts the SyncErrors it raises itself; failed reads and bugs reach us uncounted.
        outcome.counted = isinstance(exc, SyncError) and exc.__cause__ is None
        return
    state.mark_applied(source, outcome.entries)


def apply_in_order(
    engine: SyncEngine,
    state: BridgeState,
    source: Source,
    group: list[dict[str, Any]],
    map_ids: Iterable[str],
    *,
    via: str,
    floors: dict[str, int] | None = None,
    call: Callable[[Callable[[], int]], int] | None = None,
) -> GroupResult:
    """Apply one source transaction through ``map_ids``, skipping what the ordering guard says is stale
    (see :func:`units_of`), one unit per slice. Failures are returned, never raised, so the caller decides
    whether they become catch-up errors."""
    result = units_of(engine, state, source, group, map_ids, floors=floors)
    for outcome in result.outcomes:
        apply_unit(engine, state, source, outcome, via=via, call=call)
    return result


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def age_seconds(created_at: str | None) -> float | None:
    when = _parse_time(created_at)
    if when is None:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - when).total_seconds())


class AsyncWorker(AsyncDrainer):
    """The drainer threads of each source service; owns the async cursors and the ordering guard.

    ``drain_workers`` 1: one thread per source reads its feed and applies it page by page. More: that many
    threads per source share the feed through claims in the bridge's database (:mod:`bridge.claims`), keeping
    per-record order, transactions whole and parents before children.

    ``deliver``, ``drain_once`` and ``drain`` work without the threads (tests drive them step by step); ``start``
    runs them continuously until ``stop``. The lifecycle drives it once it is attached
    (:meth:`bridge.lifecycle.Lifecycle.attach_drainer`).
    """

    def __init__(
        self,
        engine: SyncEngine,
        state: BridgeState,
        lifecycle: Lifecycle,
        controls: dict[Source, ControlClient],
        *,
        poll_wait: float = 1.0,
        retry: RetryPolicy | None = None,
        linger: float = LINGER,
        drain_workers: int = 1,
    ) -> None:
        if drain_workers < 1:
            raise ValueError(f"drain_workers must be at least 1, got {drain_workers}")
        self.engine = engine
        self.state = state
        self.lifecycle = lifecycle
        self.controls = controls
        self.poll_wait = poll_wait
        self.linger = linger
        self.retry = retry or RetryPolicy()
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.last_error: dict[str, str | None] = {source: None for source in SOURCES}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        # Cursor moves and rewinds (a map joining async mode) must not interleave: a drainer that read a
        # page before a rewind must not then move the cursor past the rewound position.
        self._cursor_lock = threading.Lock()
        self._epoch = {source: 0 for source in SOURCES}
        #: told which maps the recovery finishes, and how each ended (the bridge's health waits for them)
        self.startup: Startup | None = None
        #: per map, the unit the drainer is backing off on: attempt so far, of how many, when next, last error
        self.retrying: dict[str, dict[str, Any]] = {}
        self._retrying_lock = threading.Lock()
        #: drainer threads per source; above one they share the work through claims (:mod:`bridge.claims`)
        self.drain_workers = drain_workers
        self.claims: WorkQueue | None = WorkQueue(state.db) if drain_workers > 1 else None
        #: told when units were copied or finished (a drainer with nothing to claim waits for it)
        self._news = {source: threading.Condition() for source in SOURCES}
        #: when the next copy of a feed may read (after a short page: lingers, as one drainer does)
        self._next_read = {source: 0.0 for source in SOURCES}
        self._parents: dict[tuple[Source, str], frozenset[str]] = {}

    # ---- which maps ----------------------------------------------------------------------------------
    def async_maps(self, source: Source) -> list[TableMap]:
        """Maps running in async mode that read from ``source``."""
        rows = self.state.map_rows()
        found = []
        for table_map in self.engine.maps:
            row = rows.get(table_map.id)
            if (
                row
                and row["state"] == RUNNING
                and row["mode"] == "async"
                and source in self.lifecycle.sources(table_map)
            ):
                found.append(table_map)
        return found

    def latest(self, source: Source) -> int:
        return int(self.controls[source].changes(after=0, limit=1)["latest"])

    def begin(self, table_map: TableMap) -> None:
        """A map is switching to async: its floor is the feed's latest seq now; rewind the drainer to it."""
        for source in self.lifecycle.sources(table_map):
            seq = self.latest(source)
            self.state.set_cursor(floor_name(table_map.id, source), seq)
            with self._cursor_lock:
                cursor = self.state.cursor(source)
                if cursor is None or cursor > seq:
                    self.state.set_cursor(source, seq)
                    self._epoch[source] += 1
                if self.claims is not None:
                    read = self.claims.read_cursor(source)
                    if read is not None and read > seq:
                        self.claims.restart_at(source, seq)
                    # a page being copied now was read with the tables of the maps before this one: copy it again
                    self._epoch[source] += 1
        self.wake()

    def floor(self, table_map: TableMap, source: Source) -> int:
        value = self.state.cursor(floor_name(table_map.id, source))
        if value is None:  # async set some other way (an older database): start where the drainer is
            value = self.state.cursor(source) or self.latest(source)
            self.state.set_cursor(floor_name(table_map.id, source), value)
        return value

    def position(self, table_map: TableMap, source: Source) -> int:
        """The seq through which ``source``'s changes have been handled for ``table_map``."""
        return max(self.state.cursor(source) or 0, self.floor(table_map, source))

    def wake(self) -> None:
        self._wake.set()
        for news in self._news.values():
            with news:
                news.notify_all()

    # ---- applying ------------------------------------------------------------------------------------
    def deliver(self, source: Source, changes: list[dict[str, Any]], maps: list[TableMap] | None = None) -> GroupResult:
        """Apply ``changes`` (as delivered: maybe duplicated or out of order) to the async maps; no cursor move.

        Failures become catch-up errors. Returns the combined result of every transaction.
        """
        maps = self.async_maps(source) if maps is None else maps
        floors = {m.id: self.floor(m, source) for m in maps}
        return self._deliver_groups(source, by_transaction(changes), {m.id for m in maps}, floors)

    def _deliver_groups(
        self, source: Source, groups: list[list[dict[str, Any]]], map_ids: set[str], floors: dict[str, int]
    ) -> GroupResult:
        """Apply consecutive source transactions in feed order, each as its own unit.

        Units that are one Sales upsert by alternate key (a customer created or changed in SCM) do not go
        out one request each: neighbouring ones are collected and sent together as one ``UpsertMultiple``
        (see :meth:`_apply_bulk`). Any other unit first sends what was collected, so the order of the feed
        is kept. The ordering guard is read once for all the groups and kept current here as units go out
        (a delivery may repeat or reorder changes).
        """
        total = GroupResult()
        applied = self.state.applied_seqs(source, map_ids, {record_key(c) for group in groups for c in group})
        pending: list[tuple[Outcome, Write]] = []
        identities: set[tuple[str, str, tuple[str, ...]]] = set()

        def send_pending() -> None:
            if pending:
                self._apply_bulk(source, list(pending))
                pending.clear()
                identities.clear()

        for group in groups:
            if self._stop.is_set():
                raise Stopping()
            result = units_of(self.engine, self.state, source, group, map_ids, floors=floors, applied=applied)
            total.skipped += result.skipped
            for outcome in result.outcomes:
                total.outcomes.append(outcome)
                for map_id, key, seq in outcome.entries:
                    applied[(map_id, key)] = max(seq, applied.get((map_id, key), 0))
                write = self._bulk_write(source, outcome)
                if write is None:
                    send_pending()
                    apply_unit(
                        self.engine,
                        self.state,
                        source,
                        outcome,
                        via="async",
                        call=functools.partial(self._with_retry, source=source, map_ids=outcome.map_ids),
                    )
                    self._report(source, outcome)
                    continue
                identity = record_identity(write)
                if pending and (
                    pending[0][1].map.sales_type is not write.map.sales_type
                    or identity in identities
                    or len(pending) >= BULK_SIZE
                ):
                    send_pending()
                pending.append((outcome, write))
                identities.add(identity)
        send_pending()
        return total

    def _bulk_write(self, source: Source, outcome: Outcome) -> Write | None:
        """The one Sales upsert a slice comes down to, when it can go out in bulk; None otherwise."""
        if source != "scm":
            return None  # F&O has no UpsertMultiple: Sales -> SCM units go out one by one
        try:
            writes = self.engine.plan(
                source, outcome.changes, maps=lambda m: m.id in outcome.map_ids, allow_fetch=True, partial=True
            )
        except Exception:  # noqa: BLE001 - the unit path plans again and reports the failure properly
            return None
        return writes[0] if writes and self.engine.bulk_upsertable(writes) else None

    def _apply_bulk(self, source: Source, pending: list[tuple[Outcome, Write]]) -> None:
        """Send collected single-upsert units in one ``UpsertMultiple`` (retried like any unit).

        It is all or nothing. When a row of several is refused, the units are applied again one by one, so
        only the bad one becomes a catch-up error; when the target stays unavailable past the retries (or the
        only unit is refused), every unit is kept as a catch-up error at once (retrying each alone would only
        wait longer).
        """
        writes = [write for _, write in pending]

        def attempt() -> int:
            self.engine.upsert_many(writes)
            return len(writes)

        map_ids = {map_id for outcome, _ in pending for map_id in outcome.map_ids}
        try:
            self._with_retry(attempt, source, map_ids)
        except SyncError as error:
            for outcome, write in pending:
                if error.retryable or len(pending) == 1:
                    self.engine.record_failure([write], error, "async")
                    outcome.error, outcome.counted = error, True
                else:
                    apply_unit(
                        self.engine,
                        self.state,
                        source,
                        outcome,
                        via="async",
                        call=functools.partial(self._with_retry, source=source, map_ids=outcome.map_ids),
                    )
                self._report(source, outcome)
            return
        with self.state.db.transaction():  # one commit for the traces, counters and guard entries
            self.engine.record_success(writes, "async")
            self.state.mark_applied(source, [entry for outcome, _ in pending for entry in outcome.entries])
        for outcome, _ in pending:
            outcome.written = 1
            self._report(source, outcome)

    def _report(self, source: Source, outcome: Outcome) -> None:
        """Tell listeners a slice was applied, or keep it as catch-up errors when it failed for good."""
        if outcome.error is None:
            if not outcome.written:
                return  # filtered out by the map: nothing reached the other side
            ages = [a for a in (age_seconds(c.get("created_at")) for c in outcome.changes) if a is not None]
            self._emit(
                "applied",
                {
                    "source": source,
                    "maps": sorted(outcome.map_ids),
                    "changes": len(outcome.changes),
                    "latency": max(ages) if ages else None,
                },
            )
        else:
            self._keep(source, outcome)

    def _keep(self, source: Source, outcome: Outcome) -> None:
        """A unit that failed for good: keep its changes as catch-up errors of each map it was bound for."""
        error = outcome.error
        assert error is not None
        tried = f"gave up after {error.attempts} attempts: " if error.retryable else ""
        for map_id in sorted(outcome.map_ids):
            mine = [c for c in outcome.changes if any(m.id == map_id for m in self.engine.maps_for(source, c["table"]))]
            for change in mine:
                self.state.add_catchup_error(
                    map_id, change, source, f"Async: {tried}{error.message}", attempts=error.attempts
                )
            if not outcome.counted:
                self.state.count(map_id, failed=1, error=error.message)
            self.state.activity(
                map_id, "error", f"async: {len(mine)} change(s) kept as catch-up errors ({tried}{error.message})"
            )
        self._emit("kept", {"source": source, "maps": sorted(outcome.map_ids), "changes": len(outcome.changes)})

    def _with_retry(self, attempt: Callable[[], int], source: Source, map_ids: Iterable[str] = ()) -> int:
        """Run ``attempt`` until it succeeds, fails for good (not :attr:`SyncError.retryable`) or runs out of
        attempts; the error raised then carries how many attempts were made. While it backs off, the maps
        ``map_ids`` show the retry in their status (``retrying``)."""
        tries = 0

        def counted() -> int:
            nonlocal tries
            tries += 1
            return attempt()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, SyncError) and exc.retryable),
            sleep=self._sleep,
            before_sleep=lambda retry_state: self._before_sleep(retry_state, source, map_ids),
            reraise=True,
        )
        try:
            return retrying(counted)
        except SyncError as error:
            error.attempts = tries
            raise
        finally:
            with self._retrying_lock:
                for map_id in map_ids:
                    self.retrying.pop(map_id, None)

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        """Exponential backoff, but never sooner than the target's Retry-After."""
        # initial, 2x, 4x ... up to maximum, plus up to one `initial` of jitter so retries do not align
        policy = self.retry
        backoff = (
            tenacity.wait_exponential(multiplier=policy.initial, max=policy.maximum)
            + tenacity.wait_random(0, policy.initial)
        )(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(error, "retry_after", None) or 0.0
        return min(max(backoff, float(hint)), max(policy.max_retry_after, policy.maximum))

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Stopping()

    def _before_sleep(self, retry_state: tenacity.RetryCallState, source: Source, map_ids: Iterable[str]) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        message = getattr(error, "message", str(error))
        if self.claims is not None:
            self.claims.renew(source)  # a unit being retried stays this drainer's
        now = dt.datetime.now(dt.UTC)
        with self._retrying_lock:
            for map_id in map_ids:
                self.retrying[map_id] = {
                    "source": source,
                    "attempt": retry_state.attempt_number,
                    "of": self.retry.attempts,
                    "next_at": (now + dt.timedelta(seconds=wait)).isoformat().replace("+00:00", "Z"),
                    "error": message,
                }
        self._emit(
            "retry",
            {"source": source, "attempt": retry_state.attempt_number, "wait": wait, "error": message},
        )

    def _emit(self, event: str, detail: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event, detail)
            except Exception:  # noqa: BLE001 - observers must not break the drainer
                log.exception("async listener failed")

    # ---- draining ------------------------------------------------------------------------------------
    def drain_once(self, source: Source, wait: float = 0.0) -> int:
        """Read one page of ``source``'s feed after the cursor and apply it; returns how many changes it read."""
        maps = self.async_maps(source)
        if not maps:
            return 0
        floors = {m.id: self.floor(m, source) for m in maps}
        tables = sorted({self.lifecycle.source_table(m, source) for m in maps})
        with self._cursor_lock:
            cursor = self.state.cursor(source)
            if cursor is None:
                cursor = min(floors.values())
                self.state.set_cursor(source, cursor)
            epoch = self._epoch[source]
        page = self.controls[source].changes(
            after=cursor, limit=PAGE_SIZE, tables=tables, exclude_identity=INTEGRATION_IDENTITY, wait=wait
        )
        changes = page.get("changes") or []
        if int(page.get("latest") or 0) < cursor:
            self._feed_rewound(source, maps, int(page.get("latest") or 0))
            return 0
        self._deliver_groups(source, by_transaction(changes), {m.id for m in maps}, floors)
        # A rewind meanwhile (a map joined async) leaves the cursor where it was put: read again from there.
        self._advance(source, epoch, int(page.get("next") or cursor))
        return len(changes)

    def _feed_rewound(self, source: Source, maps: list[TableMap], latest: int) -> None:
        """The source's feed restarted below our cursor (a control-plane reset): its seqs mean new rows now.

        Every position and guard of that feed is void; the async maps continue from its latest change, as
        if switched to async now (an initial sync settles whatever the reset changed).
        """
        with self._cursor_lock:
            self.state.clear_applied(source)
            self.state.set_cursor(source, latest)
            for table_map in maps:
                self.state.set_cursor(floor_name(table_map.id, source), latest)
            if self.claims is not None:
                self.claims.restart_at(source, latest)
            self._epoch[source] += 1
        for table_map in maps:
            self.state.activity(
                table_map.id,
                "state",
                f"The {source} change feed was reset: async sync continues "
                "from its latest change (run an initial sync to settle)",
            )

    def _advance(self, source: Source, epoch: int, seq: int) -> bool:
        with self._cursor_lock:
            if self._epoch[source] != epoch:
                return False
            if seq > (self.state.cursor(source) or 0):
                self.state.set_cursor(source, seq)
            return True

    def drain(self, source: Source | None = None, max_pages: int = 1000) -> int:
        """Apply everything pending now (no waiting); returns how many changes were read."""
        total = 0
        for name in [source] if source else SOURCES:
            for _ in range(max_pages):
                if self.claims is not None:
                    read, applied = self.drain_claimed(name, eager=True)
                    total += read
                    if not read and not applied:
                        break
                    continue
                read = self.drain_once(name)
                total += read
                if not read:
                    break
        return total

    # ---- several drainers: claims (bridge.claims) ------------------------------------------------------
    def drain_claimed(self, source: Source, wait: float = 0.0, *, eager: bool = False) -> tuple[int, int]:
        """One step of a drainer sharing ``source``'s feed with others: copy a page of the feed into units when few
        wait (one drainer at a time), then claim a share of the free units and apply them in feed order. Returns
        how many changes it copied and how many it applied (both 0: nothing to do now). ``eager``: copy without
        lingering after a short page (a drain by hand)."""
        claims = self.claims
        assert claims is not None, "drain_claimed needs drain_workers > 1"
        maps = self.async_maps(source)
        if not maps:
            return 0, 0
        floors = {m.id: self.floor(m, source) for m in maps}
        waiting = claims.waiting(source)
        copied = 0
        if waiting < PAGE_SIZE:
            copied = self._copy(source, maps, floors, wait=0.0 if waiting else wait, eager=eager)
            if copied:
                waiting = claims.waiting(source)
        # A fair share of what waits, so that the other drainers find work too; at most one bulk write's worth.
        # A drain by hand is the only caller: it takes what one page of a single drainer would.
        share = BULK_SIZE if eager else max(1, min(BULK_SIZE, -(-waiting // self.drain_workers)))
        units = claims.claim(source, share)
        if not units:
            return copied, 0
        try:
            self._deliver_groups(source, [unit.changes for unit in units], {m.id for m in maps}, floors)
        except BaseException:
            claims.release(source, units)  # stopping mid-claim (or a bug): another drainer applies the rest
            raise
        claims.done(source, units)
        self._tell(source)
        return copied, sum(len(unit.changes) for unit in units)

    def _copy(self, source: Source, maps: list[TableMap], floors: dict[str, int], *, wait: float, eager: bool) -> int:
        """Copy one page of ``source``'s feed after the read cursor into units; returns how many changes it read
        (0 also when another drainer is copying, or while lingering after a short page)."""
        claims = self.claims
        assert claims is not None
        if not eager and time.monotonic() < self._next_read[source]:
            return 0
        reading = claims.reading[source]
        if not reading.acquire(blocking=False):
            return 0
        try:
            with self._cursor_lock:
                after = claims.read_cursor(source)
                if after is None:  # where a single drainer left off, or the maps' floors
                    after = self.state.cursor(source)
                    after = min(floors.values()) if after is None else after
                epoch = self._epoch[source]
            tables = sorted({self.lifecycle.source_table(m, source) for m in maps})
            page = self.controls[source].changes(
                after=after, limit=PAGE_SIZE, tables=tables, exclude_identity=INTEGRATION_IDENTITY, wait=wait
            )
            latest = int(page.get("latest") or 0)
            if latest < max(after, self.state.cursor(source) or 0):
                self._feed_rewound(source, maps, latest)
                return 0
            changes = page.get("changes") or []
            units = [self._unit(source, group) for group in by_transaction(changes)]
            with self._cursor_lock:
                if self._epoch[source] != epoch:  # a map joined async meanwhile: read again with its table
                    return 0
                claims.add(source, after, units, int(page.get("next") or after))
            if 0 < len(changes) < PAGE_SIZE and self.linger > 0:
                # a short page: let a few more changes gather for the next (as a single drainer does)
                self._next_read[source] = time.monotonic() + self.linger
            return len(changes)
        finally:
            reading.release()
            self._tell(source)

    def _unit(self, source: Source, group: list[dict[str, Any]]) -> Unit:
        """One source transaction as a unit to claim: its records, its tables, and the tables it depends on."""
        tables = frozenset(str(change["table"]) for change in group)
        parents: set[str] = set()
        for table in tables:
            parents |= self._parent_tables(source, table)
        seqs = [int(change.get("seq") or 0) for change in group]
        return Unit(
            source,
            min(seqs),
            max(seqs),
            group,
            frozenset(record_key(change) for change in group),
            tables,
            frozenset(parents),
        )

    def _parent_tables(self, source: Source, table: str) -> frozenset[str]:
        """The ``source`` tables of the maps that the maps of ``table`` depend on (its parents' tables)."""
        cached = self._parents.get((source, table))
        if cached is None:
            found: set[str] = set()
            for table_map in self.engine.maps_for(source, table):
                for parent_id in table_map.depends_on:
                    parent = self.engine.by_id.get(parent_id)
                    if parent is not None and source in self.lifecycle.sources(parent):
                        found.add(self.lifecycle.source_table(parent, source))
            cached = self._parents[(source, table)] = frozenset(found)
        return cached

    def _tell(self, source: Source) -> None:
        """Units were copied or finished: drainers waiting for work look again."""
        news = self._news[source]
        with news:
            news.notify_all()

    def _run_claimed(self, source: Source) -> None:
        """A drainer thread sharing ``source``'s feed with the others (:meth:`drain_claimed` until stopped)."""
        news = self._news[source]

        def step() -> None:
            copied, applied = self.drain_claimed(source, wait=self.poll_wait)
            if not copied and not applied:
                # nothing free for this drainer: wait for news (a copy, a finished unit) or the next look
                pause = max(0.01, min(self.poll_wait, self._next_read[source] - time.monotonic()))
                with news:
                    news.wait(pause)

        self._drain_until_stopped(source, step)

    def flush(self, table_map: TableMap) -> int:
        """Apply what is pending for one map right now (before it leaves async mode)."""
        total = 0
        for source in self.lifecycle.sources(table_map):
            after = self.position(table_map, source)
            floors = {table_map.id: self.floor(table_map, source)}
            while True:
                page = self.controls[source].changes(
                    after=after,
                    limit=PAGE_SIZE,
                    tables=[self.lifecycle.source_table(table_map, source)],
                    exclude_identity=INTEGRATION_IDENTITY,
                )
                changes = page.get("changes") or []
                self._deliver_groups(source, by_transaction(changes), {table_map.id}, floors)
                total += len(changes)
                if not changes:
                    break
                after = int(page["next"])
        return total

    # ---- status --------------------------------------------------------------------------------------
    def backlog(self, table_map: TableMap, row: dict[str, Any]) -> tuple[int, float | None]:
        """How many changes wait for ``table_map`` and the age in seconds of the oldest (0.0 when none)."""
        queued = 0
        oldest: float | None = None
        for source in self.lifecycle.sources(table_map):
            if row["state"] in (PAUSED, RESUMING):
                after = row[f"paused_{source}_seq"] or 0
            else:
                after = self.position(table_map, source)
            page = self.controls[source].changes(
                after=after,
                limit=BACKLOG_LIMIT,
                tables=[self.lifecycle.source_table(table_map, source)],
                exclude_identity=INTEGRATION_IDENTITY,
            )
            changes = page.get("changes") or []
            queued += len(changes)
            if changes:
                age = age_seconds(changes[0].get("created_at"))
                if age is not None:
                    oldest = age if oldest is None else max(oldest, age)
        return queued, (oldest if oldest is not None else 0.0)

    def status_fields(self, table_map: TableMap, row: dict[str, Any]) -> dict[str, Any]:
        """Fields the map status gains: ``queued``, ``lag_seconds`` (age of the oldest unapplied change) and,
        while the drainer backs off on a unit of the map, ``retrying`` (attempt, of, next_at, error)."""
        state, mode = row["state"], row["mode"]
        if state == RUNNING and mode == "live":
            return {"lag_seconds": 0.0}
        if not ((state == RUNNING and mode == "async") or state in (PAUSED, RESUMING)):
            return {"lag_seconds": None}
        try:
            queued, lag = self.backlog(table_map, row)
        except Exception as exc:  # noqa: BLE001 - a status page must render when a service is down
            return {"lag_seconds": None, "feed_error": str(exc)}
        fields: dict[str, Any] = {"lag_seconds": round(lag, 3) if lag is not None else None}
        if state == RUNNING:  # paused maps already count their queue the lifecycle's way
            fields["queued"] = queued
        with self._retrying_lock:
            retrying = self.retrying.get(table_map.id)
        if retrying is not None:
            fields["retrying"] = dict(retrying)
        return fields

    def info(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "cursors": {source: self.state.cursor(source) for source in SOURCES},
            "last_error": dict(self.last_error),
            "poll_wait": self.poll_wait,
            "drain_workers": self.drain_workers,
            "retry": {"attempts": self.retry.attempts, "initial": self.retry.initial, "maximum": self.retry.maximum},
            "retrying": self._retrying_now(),
        }

    def _retrying_now(self) -> dict[str, dict[str, Any]]:
        with self._retrying_lock:
            return {map_id: dict(detail) for map_id, detail in self.retrying.items()}

    # ---- threads -------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self, recover: bool = True) -> None:
        """Start the drainers (and, once, carry on what a previous run left half done)."""
        if self.running:
            return
        self._stop.clear()
        if self.claims is None:
            self._threads = [
                threading.Thread(target=self._run, args=(source,), name=f"bridge-async-{source}", daemon=True)
                for source in SOURCES
            ]
        else:
            self._threads = [
                threading.Thread(
                    target=self._run_claimed, args=(source,), name=f"bridge-async-{source}-{number}", daemon=True
                )
                for source in SOURCES
                for number in range(1, self.drain_workers + 1)
            ]
        if recover:
            # The states a previous run left, read now: a map this run starts meanwhile is Initializing too,
            # and must not look interrupted to the recovery thread.
            left = {map_id: row["state"] for map_id, row in self.state.map_rows().items()}
            if self.startup is not None:  # told before the thread starts: health never sees them as done
                self.startup.recover({map_id for map_id, state in left.items() if state in (RESUMING, INITIALIZING)})
            self._threads.append(
                threading.Thread(target=self.recover, args=(left,), name="bridge-recover", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the drainers; an in-flight long poll ends within ``poll_wait``, a backoff sleep at once."""
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=timeout if timeout is not None else self.poll_wait + 30.0)
        if self.claims is not None and self._threads and not self.running:
            self.claims.release()  # what a drainer still held goes back to the queue (a thread stuck: lease ends)
        if not self.running:
            # Stopped for good: drain()/deliver() may still be called by hand (tests, a flush).
            self._threads = []
            self._stop.clear()

    def _run(self, source: Source) -> None:
        """The single drainer of ``source`` (:meth:`drain_once` until stopped)."""

        def step() -> None:
            read = self.drain_once(source, wait=self.poll_wait)
            if 0 < read < PAGE_SIZE and self.linger > 0:
                # A short page: let a few more changes gather, so the next page goes out in one
                # UpsertMultiple rather than several small ones (lag grows by at most `linger`).
                self._stop.wait(self.linger)

        self._drain_until_stopped(source, step)

    def _drain_until_stopped(self, source: Source, step: Callable[[], None]) -> None:
        """Run a drainer's ``step`` until the worker stops: idle while no map of ``source`` is async, and back off
        from a failing step (see :meth:`_back_off`)."""
        failures = 0
        while not self._stop.is_set():
            try:
                if not self.async_maps(source):
                    self._wake.wait(1.0)  # begin() wakes us at once when a map switches to async
                    self._wake.clear()
                    continue
                step()
                failures = 0
                self.last_error[source] = None
            except Stopping:
                return
            except Exception as exc:  # noqa: BLE001 - the feed being down must not kill the drainer
                failures += 1
                if self._back_off(source, exc, failures):
                    return

    def _back_off(self, source: Source, exc: Exception, failures: int) -> bool:
        """A drainer's step failed for the ``failures``-th time in a row: note and log it, then wait longer each
        time (at most 30 s); whether the worker is stopping meanwhile."""
        self.last_error[source] = f"{type(exc).__name__}: {exc}"
        log.warning("async %s drainer: %s", source, exc)
        return self._stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))

    def recover(self, left: dict[str, str] | None = None) -> None:
        """Finish what a killed bridge left half done: resume interrupted catch-ups, rerun initial syncs.

        ``left``: each map's state as the previous run left it (read before anything else ran); a map
        whose state has moved on since is this run's own business."""
        for table_map in self.engine.maps:
            if self._stop.is_set():
                return
            row = self.state.map_row(table_map.id)
            error: str | None = None
            try:
                if left is not None and left.get(table_map.id) != row["state"]:
                    continue
                if row["state"] == RESUMING:
                    self.state.activity(table_map.id, "state", "Restarted while resuming: continuing the catch-up")
                    self.lifecycle.resume(table_map.id, "catchup")
                elif row["state"] == INITIALIZING:
                    self.state.activity(table_map.id, "state", "Restarted during initial sync: running it again")
                    self.lifecycle.run(table_map.id, initial_sync=True, master=row["master"], mode=row["mode"])
            except Exception as exc:  # noqa: BLE001 - one map failing to recover must not stop the others
                error = f"recovery after restart failed: {getattr(exc, 'message', None) or exc}"
                self.state.activity(table_map.id, "error", f"Recovery after restart failed: {exc}")
            finally:
                if self.startup is not None:
                    self.startup.recovered(table_map.id, error)


__all__ = ["AsyncWorker", "RetryPolicy", "apply_in_order", "record_key", "by_transaction", "Stopping"]
