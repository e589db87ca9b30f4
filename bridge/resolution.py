"""Ambiguous outcomes of live sync: find out what the other side holds before answering the source.

A live-sync write can fail in a way that says nothing about the other side's data: the other side committed
and then answered an error (an injected fault with ``"when": "after"``), the connection dropped, the read
timed out, the process died. Answering the source's error at once would roll the source back while the
other side keeps the row: both-or-neither broken. So when :meth:`SyncEngine.apply` fails a live unit, the
engine hands the failure to :class:`OutcomeResolver` before it answers:

1. **Read back** every write of the unit on the other side by its integration key (the same filter the
   engine writes by) and compare the row with what was sent (:func:`matches`: the columns and lookups of
   the payload; a delete matches when the row is gone).
2. **Every write is there**: the unit is complete on the other side; the source commits and the caller gets
   success (the read-back row is the write's response).
3. **The unit is not there** (none of its writes is; or a row it creates is missing, or one it deletes is
   still there: a unit is one request, so it lands whole or not at all) and the other side *answered*: a
   clean failure; the source rolls back and the caller gets the other side's error, saying nothing was
   written there.
4. **The unit is not there but there was no answer** (timeout, dropped or refused connection): the request
   may still be in flight, so the answer is the same failure, and a *convergence* of those records from the
   source is scheduled a few times over the next seconds, to undo a write that lands late.
5. **The read-back itself fails** (the other side is down), **or the unit is partly there** (some rows hold
   what was sent, the others merely differ): the caller gets one clear 503 saying the outcome is unknown, the
   source rolls back, and a convergence undoes the other side's part once it answers again (retried with
   backoff for up to :attr:`OutcomeResolver.give_up_after`).

A convergence (:meth:`OutcomeResolver.converge`) makes the other side equal the source's *committed* state
of each record: it reads the source row (after the rollback, the state before the failed write), plans it
through the map like any change, and writes only what differs on the other side: a row created by the failed
write is deleted (the source row is absent), an updated row gets its previous image back, a deleted row is
written again. It reads the source again afterwards and repeats when the source changed meanwhile (a newer
write of the same record raced it), so it never leaves an older image behind.

Every resolution goes to the map's activity log (kind ``resolution``): what was unknown, what the read-back
found, what was done. See ``docs/bridge.md`` ("Ambiguous outcomes").
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from bridge.engine import Source, SyncEngine, SyncError, Write, changed_only
from bridge.state import BridgeState
from sandbox.clients import ServiceError
from sandbox.odata.literals import format_literal

log = logging.getLogger(__name__)

#: what one read-back says of one write
Verdict = Literal["present", "absent", "unknown"]

#: the activity-log kind of every resolution
ACTIVITY_KIND = "resolution"


@dataclass
class Finding:
    """What the read-back of one write found on the other side."""

    write: Write
    verdict: Verdict
    row: dict[str, Any] | None = None
    detail: str = ""


@dataclass
class Convergence:
    """Records whose other side must be made equal to the source's committed state (see the module doc)."""

    source: Source
    changes: list[dict[str, Any]]
    map_ids: set[str]
    reason: str
    due: float
    deadline: float
    #: further runs after a successful one (for writes that may still land late), seconds apart
    repeat: list[float] = field(default_factory=list)
    attempts: int = 0


def no_answer(error: BaseException) -> bool:
    """Whether a sync error came from getting no answer at all (timeout, dropped or refused connection),
    rather than from an answer of the other side: then the write may still be in flight."""
    cause = error.__cause__ or error.__context__
    return isinstance(cause, (httpx.TransportError, OSError)) and not isinstance(cause, ServiceError)


def _empty(value: Any) -> bool:
    # F&O writes an unset date as 1900-01-01 (docs/reference/fno-odata.md)
    return value is None or value == "" or (isinstance(value, str) and value.startswith("1900-01-01"))


def _same(sent: Any, found: Any, strict: bool = False) -> bool:
    if _empty(sent):
        # The other side fills what was sent empty (number sequences, defaults): not a difference, unless the
        # source's change emptied this very field.
        return not strict or _empty(found)
    if isinstance(sent, bool) or isinstance(found, bool):
        return bool(sent == found)
    if isinstance(sent, (int, float)) and isinstance(found, (int, float)):
        return abs(float(sent) - float(found)) <= 1e-6
    if isinstance(sent, str) and isinstance(found, str) and sent != found:
        # a date sent as a date may come back as a timestamp at midnight, and the other way round
        return sent.rstrip("Z").removesuffix("T00:00:00") == found.rstrip("Z").removesuffix("T00:00:00")
    return bool(sent == found)


def differences(
    payload: dict[str, Any], row: dict[str, Any], lookups: dict[str, str], strict: frozenset[str] = frozenset()
) -> list[str]:
    """The payload fields whose values the row does not hold. ``lookups`` maps a Sales navigation name to its
    lookup column (``parentaccountid`` -> ``_parentaccountid_value``): a bind is compared by the id it names
    when it names one; a bind by alternate key (resolved by Sales) is not compared. A field sent empty counts
    as held whatever the row has (the other side may fill it), unless it is in ``strict``."""
    out: list[str] = []
    for name, value in payload.items():
        if name.endswith("@odata.bind") and not name.startswith("@"):
            column = lookups.get(name[: -len("@odata.bind")])
            if column is None or not isinstance(value, str) or "=" in value:
                continue
            bound = value[value.find("(") + 1 : -1] if value.endswith(")") and "(" in value else None
            if bound is not None and str(row.get(column) or "").lower() != bound.lower():
                out.append(name)
            continue
        if "@" in name or name not in row:
            continue
        if not _same(value, row.get(name), name in strict):
            out.append(name)
    return out


class OutcomeResolver:
    """Resolves live units whose outcome on the other side is unknown (see the module docstring).

    ``settle_for`` bounds how long the read-back retries a failing read before the outcome counts as
    unknown; ``watch`` lists when (seconds after a failure without an answer) the records are converged to
    catch a write that lands late; ``give_up_after`` bounds how long a convergence keeps trying while the other
    side does not answer (then it says so in the activity log and the map's last error)."""

    def __init__(
        self,
        engine: SyncEngine,
        state: BridgeState,
        *,
        settle_for: float = 3.0,
        watch: tuple[float, ...] = (0.2, 2.0, 10.0),
        give_up_after: float = 600.0,
    ) -> None:
        self.engine = engine
        self.state = state
        self.settle_for = settle_for
        self.watch = watch
        self.give_up_after = give_up_after
        self._pending: list[Convergence] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._busy = 0

    # ---- the live path ---------------------------------------------------------------------------------
    def resolve(self, source: Source, writes: list[Write], error: SyncError) -> SyncError | None:
        """Find out what the other side holds after ``error`` failed ``writes``; None when every write is
        there (the unit is complete: answer success), else the error to answer (see the module docstring)."""
        if error.unsent:
            return error  # failed while reading before any write went out: nothing to find out
        findings = self.read_back(writes)
        unknown = [f for f in findings if f.verdict == "unknown"]
        present = [f for f in findings if self._applied(f)]
        side = self.engine._label(writes[0].target)
        what = error.message
        if not unknown and len(present) == len(findings):
            for finding in findings:
                finding.write.response = {"status": 200, "body": finding.row, "resolved": True}
            self._log(
                writes,
                f"live: {what} -> read back by integration key: all {len(findings)} write(s) are in {side}; "
                "completed: the source commits and the caller gets success",
            )
            return None
        # A unit goes to the other side as one request (one write or one atomic change set): it landed whole
        # or not at all. A row missing that the unit creates, or still there that it deletes, proves it did not
        # land; a row that merely differs from what was sent is weaker evidence (the other side may recompute
        # a column), so a unit found partly there for that reason only is undone to be safe.
        missing = [f for f in findings if not self._applied(f) and self._proves_not_landed(f)]
        if not unknown and (not present or missing):
            late = no_answer(error)
            if late:
                self._schedule(source, writes, f"{what} (no answer: watching for a late write)", self.watch)
            self._log(
                writes,
                f"live: {what} -> read back by integration key: the unit of {len(findings)} write(s) is not in {side}; "
                "failed cleanly: the source rolls back"
                + ("; the records are checked again shortly in case the write lands late" if late else ""),
            )
            return self._error(error, f"{what} (checked: nothing was written to {side})")
        if unknown:
            found = f"{side} could not be read back ({unknown[0].detail})"
        else:
            found = f"{len(present)} of {len(findings)} write(s) are in {side}"
        self._schedule(source, writes, what, (0.0,))
        self._log(
            writes,
            f"live: {what} -> {found}; the source rolls back and {side} is brought back to the source's "
            "committed state (undo) as soon as it answers",
        )
        message = (
            f"{what} (the outcome in {side} is unknown: {found}; nothing was committed here, and what reached "
            f"{side} is being undone)"
        )
        return self._error(error, message, status=503, transient=True)

    @staticmethod
    def _proves_not_landed(finding: Finding) -> bool:
        if finding.write.operation == "delete":
            return finding.verdict == "present"
        return finding.verdict == "absent" and finding.row is None

    @staticmethod
    def _applied(finding: Finding) -> bool:
        write = finding.write
        if write.operation == "delete":
            return finding.verdict == "absent"
        return finding.verdict == "present"

    @staticmethod
    def _error(error: SyncError, message: str, status: int | None = None, transient: bool | None = None) -> SyncError:
        out = SyncError(
            message,
            error.status if status is None else status,
            transient=error.transient if transient is None else transient,
            retry_after=error.retry_after,
            target_status=error.target_status,
        )
        out.attempts = error.attempts
        return out

    # ---- reading back ------------------------------------------------------------------------------------
    def read_back(self, writes: list[Write]) -> list[Finding]:
        """Each write's row on the other side, retried for up to :attr:`settle_for` while reads fail."""
        deadline = time.monotonic() + self.settle_for
        delay = 0.05
        while True:
            findings = [self.find(write) for write in writes]
            if all(f.verdict != "unknown" for f in findings) or time.monotonic() >= deadline:
                return findings
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)

    def find(self, write: Write) -> Finding:
        """Read ``write``'s row on the other side by integration key; ``present`` only when it holds what the
        write sent (for a delete: ``absent`` when it is gone)."""
        try:
            rows = self._rows(write)
        except SyncError as exc:  # the company is unknown to Sales: nothing can have been written there
            return Finding(write, "absent", None, exc.message)
        except ServiceError as exc:
            if exc.status < 500 and exc.status not in (408, 429):
                return Finding(write, "absent", None, f"read refused: {exc.message}")
            return Finding(write, "unknown", None, f"{exc.status} {exc.message}")
        except (httpx.TransportError, OSError) as exc:
            return Finding(write, "unknown", None, f"{type(exc).__name__}: {exc}")
        if not rows:
            return Finding(write, "absent", None, "no row with this integration key")
        row = rows[0]
        if write.operation == "delete":
            return Finding(write, "present", row, "the row is still there")
        strict: frozenset[str] = frozenset()
        if write.change.get("operation") == "update":
            changed = write.change.get("changed") or []
            strict = frozenset(changed_only(write.map, write.payload, changed, to_sales=write.target == "sales"))
        diff = differences(write.payload, row, self._lookups(write), strict)
        if diff:
            return Finding(write, "absent", row, f"the row differs in {', '.join(diff[:5])}")
        return Finding(write, "present", row, "the row holds what was sent")

    def _lookups(self, write: Write) -> dict[str, str]:
        if write.target != "sales" or write.map.sales_type is None:
            return {}
        out: dict[str, str] = {}
        for name, nav in write.map.sales_type.navigations.items():
            if not nav.many and nav.owns_fk and len(nav.pairs) == 1:
                out[name] = nav.pairs[0][0]
        return out

    def _rows(self, write: Write) -> list[dict[str, Any]]:
        engine = self.engine
        if write.target == "sales":
            entity = write.map.sales_type
            assert entity is not None
            return engine.sales.query(entity.entity_set, filter=engine._sales_filter(write), top=2)
        scm_entity = write.map.scm_type
        assert scm_entity is not None
        parts = [f"{name} eq {format_literal(value, guid_bare=False)}" for name, value in write.key.items()]
        company = write.payload.get("dataAreaId") or write.company
        if scm_entity.company_property and company:
            parts.append(f"dataAreaId eq {format_literal(company, guid_bare=False)}")
        return engine.scm.query(scm_entity.entity_set, filter=" and ".join(parts), top=2, cross_company=True)

    # ---- converging from the source ----------------------------------------------------------------------
    def converge(self, item: Convergence) -> str:
        """Make the other side equal the source's committed state of ``item``'s records (see the module
        docstring); returns what it did. Raises :class:`SyncError`, ``ServiceError`` or a transport error when
        a side does not answer (the caller tries again)."""
        done: list[str] = []
        for change in item.changes:
            for _ in range(3):  # a newer write of the record racing this one: read, write, read again
                before = self._source_row(item.source, change)
                done.extend(self._converge_one(item, change, before))
                if self._source_row(item.source, change) == before:
                    break
        return "; ".join(done) or "nothing to do"

    def _source_row(self, source: Source, change: dict[str, Any]) -> dict[str, Any] | None:
        engine = self.engine
        model = engine.scm_model if source == "scm" else engine.sales_model
        entity = model.entities[change["table"]]
        key = change.get("key") or {k: (change.get("after") or {}).get(k) for k in entity.key}
        try:
            if source == "scm":
                return engine.scm.retrieve(entity.entity_set, key, cross_company=bool(entity.company_property))
            return engine.sales.retrieve(entity.entity_set, key[entity.key[0]] if isinstance(key, dict) else key)
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise

    def _converge_one(self, item: Convergence, change: dict[str, Any], row: dict[str, Any] | None) -> list[str]:
        engine = self.engine
        if row is None:
            current = {**change, "operation": "delete", "changed": []}
        else:
            current = {**change, "operation": "update", "changed": [], "after": row}
        writes = engine.plan(item.source, [current], maps=lambda m: m.id in item.map_ids, allow_fetch=True)
        done: list[str] = []
        needed = []
        for write in writes:
            finding = self.find(write)
            if finding.verdict == "unknown":
                raise SyncError(f"reading back failed: {finding.detail}", 503, transient=True)
            if self._applied(finding):
                continue
            needed.append(write)
            what = (
                "deleted the row the failed write created"
                if write.operation == "delete"
                else ("wrote the source's committed image back" if finding.row is not None else "wrote the row again")
            )
            done.append(f"{engine._describe_key(write)}: {finding.detail}; {what}")
        if needed:
            engine.execute(needed)
        return done

    # ---- the background runs -----------------------------------------------------------------------------
    def _schedule(self, source: Source, writes: list[Write], reason: str, delays: tuple[float, ...]) -> None:
        changes: list[dict[str, Any]] = []
        seen: set[int] = set()
        for write in writes:
            if id(write.change) not in seen:
                seen.add(id(write.change))
                changes.append(write.change)
        now = time.monotonic()
        item = Convergence(
            source,
            changes,
            {w.map.id for w in writes},
            reason,
            due=now + delays[0],
            deadline=now + self.give_up_after,
            repeat=[b - a for a, b in zip(delays, delays[1:], strict=False)],
        )
        with self._wake:
            if self._stopped:
                return
            self._pending.append(item)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bridge-resolver", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and self._pending:
                    now = time.monotonic()
                    due = [p for p in self._pending if p.due <= now]
                    if due:
                        break
                    self._wake.wait(min(p.due for p in self._pending) - now)
                if self._stopped or not self._pending:
                    self._thread = None
                    return
                item = due[0]
                self._pending.remove(item)
                self._busy += 1
            try:
                self._attempt(item)
            finally:
                with self._wake:
                    self._busy -= 1
                    self._wake.notify_all()

    def _attempt(self, item: Convergence) -> None:
        item.attempts += 1
        try:
            did = self.converge(item)
        except Exception as exc:  # noqa: BLE001 - a side not answering: try again later
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= item.deadline:
                text = f"unresolved after {item.attempts} attempt(s): {item.reason} -> {message}; run reconcile"
                for map_id in item.map_ids:
                    self.state.activity(map_id, "error", f"{ACTIVITY_KIND}: {text}")
                    self.state.count(map_id, error=text)
                return
            item.due = time.monotonic() + min(0.25 * 2 ** min(item.attempts, 5), 5.0)
            with self._wake:
                if not self._stopped:
                    self._pending.append(item)
            return
        if did != "nothing to do" or item.attempts > 1:
            for map_id in item.map_ids:
                self.state.activity(map_id, ACTIVITY_KIND, f"converged from the source after '{item.reason}': {did}")
        if item.repeat:
            item.due = time.monotonic() + item.repeat.pop(0)
            with self._wake:
                if not self._stopped:
                    self._pending.append(item)

    def pending(self) -> int:
        """Convergences waiting or running."""
        with self._wake:
            return len(self._pending) + self._busy

    def stop(self) -> None:
        """Drop what is pending and end the background thread (the bridge is closing)."""
        with self._wake:
            self._stopped = True
            self._pending.clear()
            self._wake.notify_all()

    def _log(self, writes: list[Write], message: str) -> None:
        for map_id in dict.fromkeys(w.map.id for w in writes):
            self.state.activity(map_id, ACTIVITY_KIND, message)
