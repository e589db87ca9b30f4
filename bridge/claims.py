"""Work claims: how several async drainers share one change feed without breaking per-record order.

With ``drain_workers`` above one (``sandbox up --drainers N``), the drainers of a source service do not each read
the feed. One of them at a time (the *reader*) copies the feed's transactions into the bridge's own database as
**units** (``bridge_work``: one row per source transaction, in feed order), and every drainer **claims** units from
there, applies them, and deletes them. Rows and claims live in the bridge's database, so drainers in several bridge
processes on one PostgreSQL database share the work too (on SQLite: the drainers of one process).

What a drainer may claim follows one rule, safe and simple: walking the units in feed order, a unit is free unless
an earlier unit that is not (or not yet) its own claim

* shares a record with it (``keys``: table and key of every changed record), so two changes of one record are
  applied in feed order and never at the same time; or
* is its **parent**: changes a table that one of the unit's maps depends on (``depends_on`` in the map, e.g. an
  account before the contacts that look it up), so a child never overtakes the parent it may refer to.

A drainer claims free units in order, up to its share, and applies its claim in feed order (so two units of one
record within one claim are fine). A unit stays whole: a source transaction is one unit.

Claims are leases (``owner``, ``claimed_until``): a drainer that stops hands its claims back; one whose process
died loses them when the lease runs out (at once, when the dead process ran on this host) and another drainer
applies them again: the ordering guard (``bridge_applied``) skips what the dead one had already applied, so the
effect stays exactly once.

**Positions stay truthful.** The read cursor (``read:<source>``) says how far the feed was copied; the drainers'
cursor (``<source>``, what the map status, the console, the metrics and a restart read) says through which seq every
change has been handled: just below the oldest unit still waiting, or the read cursor when none waits.

On PostgreSQL a claim locks the rows it takes with ``SELECT ... FOR UPDATE SKIP LOCKED``: two drainers claiming at
the same moment never take the same unit, and a unit another drainer is taking right then counts as taken by it (the
units after it that share its records or depend on it wait). Copying the feed moves the read cursor under a row lock
(``FOR UPDATE``) in the same transaction as the units it adds, so a page read twice adds its units once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bridge.state import BridgeMetadata, CursorRow
from sandbox.db import Database

#: how long a claim holds without being renewed (a drainer renews its claims while it retries a unit)
CLAIM_LEASE_SECONDS = 120.0
#: how many waiting units one claim looks at (the rest wait for the next claim)
CLAIM_WINDOW = 2000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _ClaimsBase(SQLModel):
    metadata = BridgeMetadata.metadata


class WorkRow(_ClaimsBase, table=True):
    """One source transaction waiting to be applied by the async drainers (see the module's docstring)."""

    __tablename__ = "bridge_work"
    source: str = Field(primary_key=True)
    #: the seq of the transaction's first change: its place in the feed
    first_seq: int = Field(primary_key=True)
    last_seq: int = 0
    changes: str = "[]"  # JSON of the transaction's changes, as the feed gave them
    keys: str = "[]"  # JSON of the records it changes (bridge.worker.record_key)
    tables: str = "[]"  # JSON of the tables it changes
    parents: str = "[]"  # JSON of the tables its maps depend on
    owner: str | None = Field(default=None, index=True)
    claimed_until: dt.datetime | None = None


@dataclass
class Unit:
    """A claimed unit: one source transaction."""

    source: str
    first_seq: int
    last_seq: int
    changes: list[dict[str, Any]]
    keys: frozenset[str] = field(default_factory=frozenset)
    tables: frozenset[str] = field(default_factory=frozenset)
    parents: frozenset[str] = field(default_factory=frozenset)


def read_cursor_name(source: str) -> str:
    """The cursor row of how far ``source``'s feed was copied into units."""
    return f"read:{source}"


def new_owner() -> str:
    """A name for one drainer set's claims: host, process and a nonce (``host:pid:nonce``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str) -> bool:
    """The claim's owner ran on this host in a process that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class WorkQueue:
    """The ``bridge_work`` units of the async drainers, and the claims on them (each call one short transaction)."""

    def __init__(self, db: Database, owner: str | None = None) -> None:
        self.db = db
        self.owner = owner or new_owner()
        self.postgres = db.engine.dialect.name == "postgresql"
        #: one copier of a feed at a time in this process (across processes the read cursor's row lock decides)
        self.reading = {name: threading.Lock() for name in ("sales", "scm")}

    @property
    def work(self) -> sa.Table:
        table = WorkRow.__table__  # type: ignore[attr-defined]
        assert isinstance(table, sa.Table)
        return table

    @property
    def cursors(self) -> sa.Table:
        table = CursorRow.__table__  # type: ignore[attr-defined]
        assert isinstance(table, sa.Table)
        return table

    # ---- copying the feed -------------------------------------------------------------------------------
    def read_cursor(self, source: str) -> int | None:
        with self.db.transaction(may_sync=False) as connection:
            value = connection.execute(
                sa.select(self.cursors.c.seq).where(self.cursors.c.source == read_cursor_name(source))
            ).scalar()
        return None if value is None else int(value)

    def add(self, source: str, after: int, units: Sequence[Unit], next_seq: int) -> bool:
        """Add the units of a feed page read after seq ``after`` and move the read cursor to ``next_seq``, in one
        transaction (and the drainers' cursor to what is now handled); False (nothing added) when another reader
        moved the read cursor meanwhile."""
        name = read_cursor_name(source)
        cursors, work = self.cursors, self.work
        with self.db.transaction(may_sync=False) as connection:
            current = connection.execute(
                sa.select(cursors.c.seq).where(cursors.c.source == name).with_for_update()
            ).scalar()
            if current is None:
                connection.execute(sa.insert(cursors).values(source=name, seq=after))
                current = after
            if int(current) != after:
                return False
            if units:
                existing = set(
                    connection.execute(
                        sa.select(work.c.first_seq).where(
                            work.c.source == source, work.c.first_seq.in_([u.first_seq for u in units])
                        )
                    ).scalars()
                )
                rows = [self._row(unit) for unit in units if unit.first_seq not in existing]
                if rows:
                    connection.execute(sa.insert(work), rows)
            if next_seq > after:
                connection.execute(sa.update(cursors).where(cursors.c.source == name).values(seq=next_seq))
            self._settle(connection, source)  # a page of nothing to apply is handled once copied
        return True

    @staticmethod
    def _row(unit: Unit) -> dict[str, Any]:
        return {
            "source": unit.source,
            "first_seq": unit.first_seq,
            "last_seq": unit.last_seq,
            "changes": json.dumps(unit.changes, default=str),
            "keys": json.dumps(sorted(unit.keys)),
            "tables": json.dumps(sorted(unit.tables)),
            "parents": json.dumps(sorted(unit.parents)),
            "owner": None,
            "claimed_until": None,
        }

    def waiting(self, source: str) -> int:
        """How many units of ``source`` wait (claimed or not)."""
        with self.db.transaction(may_sync=False) as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(self.work).where(self.work.c.source == source)
                ).scalar()
                or 0
            )

    # ---- claiming -------------------------------------------------------------------------------------
    def claim(self, source: str, share: int) -> list[Unit]:
        """Claim up to ``share`` free units of ``source`` (see the module's docstring), oldest first."""
        work = self.work
        now = utcnow()
        with self.db.transaction(may_sync=False) as connection:
            rows = connection.execute(
                sa.select(work).where(work.c.source == source).order_by(work.c.first_seq).limit(CLAIM_WINDOW)
            ).all()
            blocked_keys: set[str] = set()
            blocked_tables: set[str] = set()
            candidates: list[Any] = []
            for row in rows:
                keys, tables, parents = (
                    set(json.loads(row.keys)),
                    set(json.loads(row.tables)),
                    json.loads(row.parents),
                )
                taken = row.owner is not None and not self._lapsed(row.owner, row.claimed_until, now)
                if (
                    not taken
                    and len(candidates) < share
                    and not keys & blocked_keys
                    and not blocked_tables.intersection(parents)
                ):
                    candidates.append(row)
                    continue
                blocked_keys |= keys
                blocked_tables |= tables
                if len(candidates) >= share:
                    break
            if not candidates:
                return []
            seqs = [row.first_seq for row in candidates]
            if self.postgres:
                # Rows another drainer is claiming right now are skipped, not waited for; the units after one of
                # them that share its records or depend on it must then wait too.
                locked = set(
                    connection.execute(
                        sa.select(work.c.first_seq)
                        .where(work.c.source == source, work.c.first_seq.in_(seqs))
                        .with_for_update(skip_locked=True)
                    ).scalars()
                )
                fresh = {
                    row.first_seq: row
                    for row in connection.execute(
                        sa.select(work).where(work.c.source == source, work.c.first_seq.in_(locked))
                    )
                }
                kept, blocked_keys, blocked_tables = [], set(), set()
                for row in candidates:
                    current = fresh.get(row.first_seq)
                    keys, tables = set(json.loads(row.keys)), set(json.loads(row.tables))
                    usable = (
                        current is not None
                        and (current.owner is None or self._lapsed(current.owner, current.claimed_until, now))
                        and not keys & blocked_keys
                        and not blocked_tables.intersection(json.loads(row.parents))
                    )
                    if usable:
                        kept.append(row)
                    else:
                        blocked_keys |= keys
                        blocked_tables |= tables
                candidates = kept
                seqs = [row.first_seq for row in candidates]
                if not seqs:
                    return []
            connection.execute(
                sa.update(work)
                .where(work.c.source == source, work.c.first_seq.in_(seqs))
                .values(owner=self.owner, claimed_until=now + dt.timedelta(seconds=CLAIM_LEASE_SECONDS))
            )
        return [
            Unit(
                source,
                int(row.first_seq),
                int(row.last_seq),
                json.loads(row.changes),
                frozenset(json.loads(row.keys)),
                frozenset(json.loads(row.tables)),
                frozenset(json.loads(row.parents)),
            )
            for row in candidates
        ]

    def _lapsed(self, owner: str, until: dt.datetime | None, now: dt.datetime) -> bool:
        """A claim no one holds any more: its lease ran out, or its process on this host is gone."""
        if owner == self.owner:
            return False
        expiry = _as_utc(until)
        return expiry is None or expiry < now or _owner_dead(owner)

    def renew(self, source: str) -> None:
        """Extend the lease of this owner's claims on ``source`` (a drainer retrying a unit keeps it)."""
        with self.db.transaction(may_sync=False) as connection:
            connection.execute(
                sa.update(self.work)
                .where(self.work.c.source == source, self.work.c.owner == self.owner)
                .values(claimed_until=utcnow() + dt.timedelta(seconds=CLAIM_LEASE_SECONDS))
            )

    def release(self, source: str | None = None, units: Iterable[Unit] | None = None) -> None:
        """Hand this owner's claims back (all of them, or ``units``) for another drainer to take."""
        work = self.work
        condition = work.c.owner == self.owner
        if source is not None:
            condition = sa.and_(condition, work.c.source == source)
        if units is not None:
            seqs = [unit.first_seq for unit in units]
            if not seqs:
                return
            condition = sa.and_(condition, work.c.first_seq.in_(seqs))
        with self.db.transaction(may_sync=False) as connection:
            connection.execute(sa.update(work).where(condition).values(owner=None, claimed_until=None))

    # ---- done -----------------------------------------------------------------------------------------
    def done(self, source: str, units: Iterable[Unit]) -> int:
        """Delete the handled ``units`` and move the drainers' cursor of ``source`` to what is now handled; returns
        that position."""
        seqs = [unit.first_seq for unit in units]
        with self.db.transaction(may_sync=False) as connection:
            if seqs:
                connection.execute(
                    sa.delete(self.work).where(self.work.c.source == source, self.work.c.first_seq.in_(seqs))
                )
            return self._settle(connection, source)

    def settle(self, source: str) -> int:
        """Move the drainers' cursor of ``source`` to what is handled now (see :meth:`handled`)."""
        with self.db.transaction(may_sync=False) as connection:
            return self._settle(connection, source)

    def _settle(self, connection: sa.Connection, source: str) -> int:
        position = self._handled(connection, source)
        cursors = self.cursors
        current = connection.execute(
            sa.select(cursors.c.seq).where(cursors.c.source == source).with_for_update()
        ).scalar()
        if current is None:
            connection.execute(sa.insert(cursors).values(source=source, seq=position))
        elif int(current) != position:
            connection.execute(sa.update(cursors).where(cursors.c.source == source).values(seq=position))
        return position

    def _handled(self, connection: sa.Connection, source: str) -> int:
        """The seq through which every change of ``source`` has been handled: just below the oldest waiting unit,
        else the read cursor."""
        oldest = connection.execute(
            sa.select(sa.func.min(self.work.c.first_seq)).where(self.work.c.source == source)
        ).scalar()
        if oldest is not None:
            return int(oldest) - 1
        read = connection.execute(
            sa.select(self.cursors.c.seq).where(self.cursors.c.source == read_cursor_name(source))
        ).scalar()
        return int(read or 0)

    def restart_at(self, source: str, seq: int) -> None:
        """Forget every unit of ``source`` and copy its feed again after ``seq`` (a map joined async mode below the
        read cursor, or the feed was reset)."""
        name = read_cursor_name(source)
        cursors = self.cursors
        with self.db.transaction(may_sync=False) as connection:
            connection.execute(sa.delete(self.work).where(self.work.c.source == source))
            if not connection.execute(sa.update(cursors).where(cursors.c.source == name).values(seq=seq)).rowcount:
                connection.execute(sa.insert(cursors).values(source=name, seq=seq))
            self._settle(connection, source)


__all__ = [
    "CLAIM_LEASE_SECONDS",
    "Unit",
    "WorkQueue",
    "WorkRow",
    "new_owner",
    "read_cursor_name",
]
