"""Faults and the request journal kept in the service's database, for a service served by several processes.

With ``sandbox up --workers N`` every mock runs as N processes accepting on one port: a fault installed over
the control plane lands in whichever worker took that request, and the next matching request may reach any
other. So there the :class:`SharedFaultRegistry` and the :class:`SharedJournal` replace the in-memory ones (the
service option :data:`SHARED_STATE_OPTION`): the same interface, their state in two tables of the service's
database (PostgreSQL), outside the model's metadata so that a ``reset`` of the data leaves them alone, as it
leaves the in-memory ones.

A fault's ``times`` is counted down with one conditional ``UPDATE``, so a fault meant to fire once fires once
whichever workers see matching requests at the same moment.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa

from sandbox.faults import Fault, FaultRegistry, parse_fault
from sandbox.journal import Journal

#: the service option (``ServiceConfig.options``) that keeps faults and the journal in the database
SHARED_STATE_OPTION = "shared_state"

_METADATA = sa.MetaData()
_FAULTS = sa.Table(
    "sandbox_shared_faults",
    _METADATA,
    sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("id", sa.String(16), nullable=False, unique=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("times", sa.Integer, nullable=True),
    sa.Column("fired", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
_JOURNAL = sa.Table(
    "sandbox_shared_journal",
    _METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entry", sa.Text, nullable=False),
)


def create_shared_tables(engine: sa.Engine) -> None:
    """Create the two tables unless they exist (several workers starting at once take turns on PostgreSQL)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('sandbox.shared_state'))")
        _METADATA.create_all(connection)


class SharedFaultRegistry(FaultRegistry):
    """:class:`~sandbox.faults.FaultRegistry` with its faults in the database (see the module docstring)."""

    def __init__(self, engine: sa.Engine, seed: int | None = None) -> None:
        super().__init__(seed)
        self.engine = engine
        create_shared_tables(engine)

    @staticmethod
    def _fault(row: Any) -> Fault:
        fault = parse_fault(json.loads(row.spec))
        return dataclasses.replace(fault, id=row.id, times=row.times, fired=row.fired, created_at=row.created_at)

    def _rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(_FAULTS).order_by(_FAULTS.c.position)))

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = parse_fault(spec)  # refuses a bad spec before anything is stored
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(_FAULTS).values(
                    id=fault.id, spec=json.dumps(spec), times=fault.times, fired=0, created_at=fault.created_at
                )
            )
        return fault

    def list(self) -> list[Fault]:
        return [self._fault(row) for row in self._rows()]

    def get(self, fault_id: str) -> Fault | None:
        return next((fault for fault in self.list() if fault.id == fault_id), None)

    def remove(self, fault_id: str) -> bool:
        with self.engine.begin() as connection:
            return bool(connection.execute(sa.delete(_FAULTS).where(_FAULTS.c.id == fault_id)).rowcount)

    def clear(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.delete(_FAULTS))

    def __len__(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(_FAULTS)).scalar() or 0)

    def match(self, method: str, path: str, identity: str | None = None) -> Fault | None:
        for row in self._rows():
            fault = self._fault(row)
            if not fault.applies_to(method, path, identity):
                continue
            if fault.probability < 1.0:
                with self._lock:
                    if self._random.random() >= fault.probability:
                        continue
            with self.engine.begin() as connection:
                # Count it fired and take one of its times, unless another worker took the last one meanwhile.
                taken = connection.execute(
                    sa.update(_FAULTS)
                    .where(_FAULTS.c.id == fault.id, sa.or_(_FAULTS.c.times.is_(None), _FAULTS.c.times > 0))
                    .values(
                        fired=_FAULTS.c.fired + 1,
                        times=sa.case((_FAULTS.c.times.is_(None), None), else_=_FAULTS.c.times - 1),
                    )
                    .returning(_FAULTS.c.times, _FAULTS.c.fired)
                ).first()
                if taken is None:
                    continue
                if taken.times is not None and taken.times <= 0:
                    connection.execute(sa.delete(_FAULTS).where(_FAULTS.c.id == fault.id))
            return dataclasses.replace(fault, times=taken.times, fired=taken.fired)
        return None


class SharedJournal(Journal):
    """:class:`~sandbox.journal.Journal` with its entries in the database (see the module docstring); the
    oldest beyond ``capacity`` are deleted as new ones come."""

    #: entries added between two trims of the table to ``capacity``
    TRIM_EVERY = 50

    def __init__(self, engine: sa.Engine, capacity: int = 1000) -> None:
        super().__init__(capacity)
        self.engine = engine
        self._added = 0
        create_shared_tables(engine)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.engine.begin() as connection:
            new_id = connection.execute(
                sa.insert(_JOURNAL).values(entry=json.dumps(entry, default=str)).returning(_JOURNAL.c.id)
            ).scalar_one()
            with self._lock:
                self._added += 1
                trim = self._added % self.TRIM_EVERY == 0
            if trim:
                connection.execute(sa.delete(_JOURNAL).where(_JOURNAL.c.id <= new_id - self.capacity))
        return {"id": int(new_id), **entry}

    def _snapshot(self) -> list[dict[str, Any]]:
        """The newest ``capacity`` entries, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(_JOURNAL.c.id, _JOURNAL.c.entry).order_by(_JOURNAL.c.id.desc()).limit(self.capacity)
            ).all()
        return [{"id": int(row.id), **json.loads(row.entry)} for row in reversed(rows)]

    def entries(
        self, limit: int | None = None, method: str | None = None, path_regex: str | None = None
    ) -> list[dict[str, Any]]:
        local = Journal(self.capacity)
        local._entries.extend(self._snapshot())  # noqa: SLF001 - the same filtering as the in-memory journal
        return local.entries(limit, method, path_regex)

    def clear(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.delete(_JOURNAL))

    def __len__(self) -> int:
        with self.engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(_JOURNAL)).scalar()
        return min(int(count or 0), self.capacity)


def shared_state(engine: sa.Engine, journal_capacity: int) -> tuple[SharedFaultRegistry, SharedJournal]:
    """The fault registry and journal of a service whose state several processes share."""
    return SharedFaultRegistry(engine), SharedJournal(engine, journal_capacity)
